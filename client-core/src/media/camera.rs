//! Camera capture with `nokhwa`: list devices, open one by index, any pixel format → RGB.
//!
//! nokhwa's `Camera` is not `Send`, so each opened camera lives on a capture thread of its own
//! that converts every picture to RGB and hands it over a small channel; [`VideoSource`] is
//! then a blocking receive. Buffers circulate between the two threads instead of being
//! allocated per picture. When the consumer falls behind, the capture thread drops the stale
//! picture rather than queueing it: video wants the newest frame, not every frame.
//!
//! MJPEG (what most USB cameras send at useful sizes) is decoded with `zune-jpeg`, the same
//! decoder as received video; YUYV, NV12, grey, RGB and BGR go through nokhwa's converters.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread;
use std::time::Duration;

use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution};
use nokhwa::{Camera, FormatDecoder};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::{now_us, MediaError, RgbFrame, VideoSource, MAX_DECODE_HEIGHT, MAX_DECODE_WIDTH};

/// How long `next_frame` waits for a picture before declaring the camera stalled.
const STALL_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `open_camera` waits for the device to open and start streaming.
const OPEN_TIMEOUT: Duration = Duration::from_secs(10);

/// A camera the system knows about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraInfo {
    /// What to pass to [`open_camera`].
    pub index: u32,
    /// The device's name ("Integrated Camera").
    pub name: String,
    /// Backend details (driver, bus).
    pub description: String,
}

/// The cameras the native backend (V4L2 on Linux) can see; empty when there are none or the
/// backend is unavailable.
pub fn list_cameras() -> Vec<CameraInfo> {
    let Some(backend) = nokhwa::native_api_backend() else {
        return Vec::new();
    };
    match nokhwa::query(backend) {
        Ok(cameras) => cameras
            .into_iter()
            .filter_map(|info| {
                let index = info.index().as_index().ok()?;
                Some(CameraInfo { index, name: info.human_name(), description: info.description().to_string() })
            })
            .collect(),
        Err(e) => {
            tracing::debug!(error = %e, "camera query failed");
            Vec::new()
        }
    }
}

/// macOS lets an app use the camera only after the person allowed it: the first time, this
/// asks (the system's prompt shows the Info.plist's reason) and returns at once with
/// [`MediaError::NotAllowed`]; turning the camera on again after answering opens it. Elsewhere
/// nokhwa reports the camera as allowed.
fn ensure_camera_permission() -> Result<(), MediaError> {
    if nokhwa::nokhwa_check() {
        return Ok(());
    }
    nokhwa::nokhwa_initialize(|granted| tracing::info!(granted, "camera permission answered"));
    Err(MediaError::NotAllowed(
        "the system has not allowed Parlor to use the camera: answer its prompt, or allow Parlor in the privacy \
         settings (Camera)"
            .into(),
    ))
}

/// Opens camera `index` (from [`list_cameras`]) and starts streaming from it.
///
/// Asks for the format nearest 1280x720 at 30 fps; whatever the camera delivers is converted
/// to RGB. [`MediaError::NoDevice`] if there is no such camera, [`MediaError::Device`] if it
/// exists but cannot be opened.
pub fn open_camera(index: u32) -> Result<Box<dyn VideoSource>, MediaError> {
    let cameras = list_cameras();
    let Some(info) = cameras.iter().find(|c| c.index == index) else {
        return Err(MediaError::NoDevice(if cameras.is_empty() {
            "no camera found".to_string()
        } else {
            format!("no camera with index {index} (found {})", cameras.len())
        }));
    };
    ensure_camera_permission()?;
    let name = info.name.clone();
    let (opened_tx, opened_rx) = mpsc::sync_channel::<Result<String, MediaError>>(1);
    // Two pictures in flight at most: one being converted, one waiting for the consumer.
    let (frames_tx, frames_rx) = mpsc::sync_channel::<RgbFrame>(1);
    let (recycle_tx, recycle_rx) = mpsc::sync_channel::<Vec<u8>>(2);
    thread::Builder::new()
        .name(format!("camera-{index}"))
        .spawn(move || capture_thread(index, opened_tx, frames_tx, recycle_rx))
        .map_err(|e| MediaError::Device(format!("cannot start the capture thread: {e}")))?;
    let description = match opened_rx.recv_timeout(OPEN_TIMEOUT) {
        Ok(Ok(format)) => format!("{name} ({format})"),
        Ok(Err(e)) => return Err(e),
        Err(_) => return Err(MediaError::Device(format!("camera {index} did not start within {OPEN_TIMEOUT:?}"))),
    };
    tracing::info!(camera = %description, "camera opened");
    Ok(Box::new(CameraSource { description, frames: frames_rx, recycle: recycle_tx }))
}

/// The consumer side of an opened camera.
struct CameraSource {
    description: String,
    frames: Receiver<RgbFrame>,
    recycle: SyncSender<Vec<u8>>,
}

impl VideoSource for CameraSource {
    fn next_frame(&mut self, out: &mut RgbFrame) -> Result<(), MediaError> {
        let frame = match self.frames.recv_timeout(STALL_TIMEOUT) {
            Ok(frame) => frame,
            Err(RecvTimeoutError::Timeout) => {
                return Err(MediaError::Device(format!("{}: no picture for {STALL_TIMEOUT:?}", self.description)))
            }
            Err(RecvTimeoutError::Disconnected) => {
                return Err(MediaError::Device(format!("{}: capture stopped", self.description)))
            }
        };
        let old = std::mem::replace(out, frame);
        // Hand the caller's previous buffer back to the capture thread; if its pool is full
        // the buffer is simply dropped.
        let _ = self.recycle.try_send(old.data);
        Ok(())
    }

    fn describe(&self) -> String {
        self.description.clone()
    }

    fn is_paced(&self) -> bool {
        true
    }
}

/// Owns the (non-`Send`) camera: opens it, then converts and forwards pictures until the
/// consumer goes away.
fn capture_thread(
    index: u32,
    opened: SyncSender<Result<String, MediaError>>,
    frames: SyncSender<RgbFrame>,
    recycle: Receiver<Vec<u8>>,
) {
    let requested = RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(CameraFormat::new(
        Resolution::new(1280, 720),
        FrameFormat::MJPEG,
        30,
    )));
    let mut camera = match Camera::new(CameraIndex::Index(index), requested) {
        Ok(camera) => camera,
        Err(e) => {
            let _ = opened.send(Err(MediaError::Device(format!("camera {index}: {e}"))));
            return;
        }
    };
    if let Err(e) = camera.open_stream() {
        let _ = opened.send(Err(MediaError::Device(format!("camera {index}: cannot start streaming: {e}"))));
        return;
    }
    let format = camera.camera_format();
    if opened.send(Ok(format.to_string())).is_err() {
        return;
    }
    // Not strict: camera MJPEG is often slightly off-spec (missing Huffman tables, padding).
    let jpeg_options = DecoderOptions::default()
        .jpeg_set_out_colorspace(ColorSpace::RGB)
        .set_max_width(MAX_DECODE_WIDTH as usize)
        .set_max_height(MAX_DECODE_HEIGHT as usize)
        .set_strict_mode(false);
    let mut spare: Option<Vec<u8>> = None;
    loop {
        let raw = match camera.frame_raw() {
            Ok(raw) => raw,
            Err(e) => {
                tracing::warn!(camera = index, error = %e, "camera stopped delivering pictures");
                return;
            }
        };
        let capture_ts_us = now_us();
        let mut data = spare.take().or_else(|| recycle.try_recv().ok()).unwrap_or_default();
        let converted = convert_to_rgb(&raw, format.format(), format.resolution(), jpeg_options, &mut data);
        drop(raw);
        let (width, height) = match converted {
            Ok(size) => size,
            Err(e) => {
                // One bad picture (a torn MJPEG frame) is not fatal: skip it.
                tracing::debug!(camera = index, error = %e, "dropping a picture that failed to convert");
                spare = Some(data);
                continue;
            }
        };
        match frames.try_send(RgbFrame { width, height, data, capture_ts_us }) {
            Ok(()) => {}
            // The consumer has not taken the previous picture yet: drop this one, keep its buffer.
            Err(TrySendError::Full(frame)) => spare = Some(frame.data),
            Err(TrySendError::Disconnected(_)) => return,
        }
    }
}

/// Converts one raw camera picture to RGB24 in `out`; returns its size.
fn convert_to_rgb(
    raw: &[u8],
    format: FrameFormat,
    resolution: Resolution,
    jpeg_options: DecoderOptions,
    out: &mut Vec<u8>,
) -> Result<(u32, u32), MediaError> {
    if format == FrameFormat::MJPEG {
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(raw), jpeg_options);
        decoder.decode_headers().map_err(|e| MediaError::Codec(format!("MJPEG headers: {e}")))?;
        let (w, h) = decoder.dimensions().ok_or_else(|| MediaError::Codec("MJPEG without dimensions".into()))?;
        out.resize(w * h * 3, 0);
        decoder.decode_into(out).map_err(|e| MediaError::Codec(format!("MJPEG data: {e}")))?;
        // Bounded by MAX_DECODE_WIDTH x MAX_DECODE_HEIGHT.
        return Ok((w as u32, h as u32));
    }
    let (w, h) = (resolution.width(), resolution.height());
    let len = (w as usize)
        .checked_mul(h as usize)
        .and_then(|n| n.checked_mul(3))
        .filter(|&n| n > 0)
        .ok_or_else(|| MediaError::Codec(format!("camera reported {w}x{h}")))?;
    out.resize(len, 0);
    RgbFormat::write_output_buffer(format, resolution, raw, out)
        .map_err(|e| MediaError::Codec(format!("{format} to RGB: {e}")))?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_camera_is_a_clean_no_device_error() {
        // This machine (and CI) has no camera; a high index is absent even where one exists.
        let cameras = list_cameras();
        let absent = cameras.iter().map(|c| c.index).max().map_or(0, |m| m + 1);
        match open_camera(absent) {
            Err(MediaError::NoDevice(msg)) => assert!(!msg.is_empty()),
            Err(other) => panic!("expected NoDevice, got {other}"),
            Ok(source) => panic!("opened a camera that should not exist: {}", source.describe()),
        }
    }

    #[test]
    fn converts_raw_formats_to_rgb() {
        let res = Resolution::new(4, 2);
        let mut out = Vec::new();
        let grey: Vec<u8> = (0..8).map(|i| i * 30).collect();
        let size = convert_to_rgb(&grey, FrameFormat::GRAY, res, DecoderOptions::default(), &mut out).unwrap();
        assert_eq!(size, (4, 2));
        assert_eq!(&out[..6], &[0, 0, 0, 30, 30, 30]);
        let bgr: Vec<u8> = [1u8, 2, 3].repeat(8);
        convert_to_rgb(&bgr, FrameFormat::RAWBGR, res, DecoderOptions::default(), &mut out).unwrap();
        assert_eq!(&out[..3], &[3, 2, 1]);
        // A truncated YUYV picture is an error, not a panic.
        let short = vec![0u8; 5];
        assert!(convert_to_rgb(&short, FrameFormat::YUYV, res, DecoderOptions::default(), &mut out).is_err());
    }
}
