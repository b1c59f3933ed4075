//! Video frames to the page: one latest-frame slot per participant, sent only when the page has
//! drawn the previous one, scaled to the tile and converted to I420.
//!
//! The page draws frames that arrive on a `tauri::ipc::Channel`, which has no backpressure: a
//! frame pushed while the page is busy just queues, and a queue of 1.6 MB frames costs memory,
//! copies and latency for pictures nobody will see. So the shell drops frames itself
//! ([`Slots`]): each participant has one slot that newer frames overwrite and a `ready` flag
//! that only the page's `video_frame_drawn` sets (docs/app-ipc.md, "Flow control").
//!
//! What goes out is as small as the tile allows ([`Renderer`]): the source is cropped to the
//! tile's aspect ratio (the page draws with `object-fit: cover`, so the cropped-off parts would
//! not show anyway), scaled down (never up: the GPU upscales for free) to the tile's size in
//! device pixels, and converted to I420 (1.5 bytes a pixel instead of 4), which the page turns
//! back into RGB in a WebGL shader. Scaling and conversion run on one worker thread with reused
//! buffers, off the async runtime.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use yuvutils_rs::{BufferStoreMut, YuvConversionMode, YuvPlanarImageMut, YuvRange, YuvStandardMatrix};

/// Length of the frame header.
pub const HEADER_LEN: usize = 12;
/// Header format byte of an RGBA frame.
pub const FORMAT_RGBA: u8 = 1;
/// Header format byte of an I420 frame.
pub const FORMAT_I420: u8 = 2;
/// The participant id of this app's own camera in frame messages.
pub const LOCAL_ID: u32 = 0;
/// Set in the id of a participant's shared screen in frame messages (the page's
/// `screenTileId`); participant ids never have it (the relay counts them from 1).
pub const SCREEN_TILE_FLAG: u32 = 1 << 31;

/// The frame-message id of participant `participant_id`'s shared screen.
pub fn screen_tile_id(participant_id: u32) -> u32 {
    participant_id | SCREEN_TILE_FLAG
}
/// Participants with a slot at most (the relay admits 50 a meeting; the page asks for fewer).
pub const MAX_SLOTS: usize = 128;
/// Largest tile side honoured, in device pixels; the page's numbers are clamped to it.
pub const MAX_TILE_SIDE: u32 = 8192;

/// How a source frame's pixels are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// 3 bytes a pixel (captured frames).
    Rgb,
    /// 4 bytes a pixel (decoded frames).
    Rgba,
}

impl Layout {
    fn bytes_per_pixel(self) -> usize {
        match self {
            Layout::Rgb => 3,
            Layout::Rgba => 4,
        }
    }

    fn pixel_type(self) -> PixelType {
        match self {
            Layout::Rgb => PixelType::U8x3,
            Layout::Rgba => PixelType::U8x4,
        }
    }
}

/// A decoded or captured picture, row-major without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFrame {
    pub width: u32,
    pub height: u32,
    pub layout: Layout,
    pub pixels: Bytes,
}

/// Why a frame could not be rendered (it is skipped).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RenderError {
    #[error("frame of {width}x{height} has {len} bytes, expected {expected}")]
    ShortBuffer { width: u32, height: u32, len: usize, expected: usize },
    #[error("empty frame or tile")]
    Empty,
    #[error("scaling failed: {0}")]
    Resize(String),
    #[error("colour conversion failed: {0}")]
    Convert(String),
}

/// Which part of the source is sent, and at what size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    /// Crop box in source pixels: left, top, width, height.
    pub crop: (f64, f64, f64, f64),
    /// Size of the frame sent, even in both directions.
    pub width: u32,
    pub height: u32,
}

/// Crops `src` to the tile's aspect ratio (centred) and scales it to the tile, never up.
/// Sizes are rounded down to even numbers (I420 chroma is subsampled 2×2) and at least 2.
pub fn fit(src_w: u32, src_h: u32, tile_w: u32, tile_h: u32) -> Option<Fit> {
    if src_w < 2 || src_h < 2 || tile_w == 0 || tile_h == 0 {
        return None;
    }
    let (tw, th) = (f64::from(tile_w.min(MAX_TILE_SIDE)), f64::from(tile_h.min(MAX_TILE_SIDE)));
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let (cw, ch) = if sw * th > tw * sh { (sh * tw / th, sh) } else { (sw, sw * th / tw) };
    let scale = (tw / cw).min(1.0);
    let even = |x: f64| ((x.round() as u32) & !1).max(2);
    let crop = ((sw - cw) / 2.0, (sh - ch) / 2.0, cw, ch);
    Some(Fit {
        crop,
        width: even(cw * scale).min(u32::from(u16::MAX) - 1),
        height: even(ch * scale).min(u32::from(u16::MAX) - 1),
    })
}

/// Scales all of `src` to fit in the tile, never up and never cropped: a shared screen is
/// drawn whole (`object-fit: contain`). Sizes are even and at least 2.
pub fn fit_whole(src_w: u32, src_h: u32, tile_w: u32, tile_h: u32) -> Option<Fit> {
    if src_w < 2 || src_h < 2 || tile_w == 0 || tile_h == 0 {
        return None;
    }
    let (tw, th) = (f64::from(tile_w.min(MAX_TILE_SIDE)), f64::from(tile_h.min(MAX_TILE_SIDE)));
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let scale = (tw / sw).min(th / sh).min(1.0);
    let even = |x: f64| ((x.round() as u32) & !1).max(2);
    Some(Fit {
        crop: (0.0, 0.0, sw, sh),
        width: even(sw * scale).min(u32::from(u16::MAX) - 1),
        height: even(sh * scale).min(u32::from(u16::MAX) - 1),
    })
}

/// Writes the 12-byte header of the contract.
pub fn write_header(out: &mut [u8], participant_id: u32, width: u16, height: u16, format: u8) {
    if out.len() < HEADER_LEN {
        return;
    }
    out[0..4].copy_from_slice(&participant_id.to_le_bytes());
    out[4..6].copy_from_slice(&width.to_le_bytes());
    out[6..8].copy_from_slice(&height.to_le_bytes());
    out[8] = format;
    out[9..12].fill(0);
}

/// Turns source frames into I420 frame messages; keeps its scaling buffer between frames.
pub struct Renderer {
    resizer: Resizer,
    scaled: Vec<u8>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        Self { resizer: Resizer::new(), scaled: Vec::new() }
    }

    /// The message for `frame` of `participant_id` drawn in a tile of `tile` device pixels.
    pub fn render(
        &mut self,
        participant_id: u32,
        frame: &SourceFrame,
        tile: (u32, u32),
    ) -> Result<Vec<u8>, RenderError> {
        let bpp = frame.layout.bytes_per_pixel();
        let expected = frame.width as usize * frame.height as usize * bpp;
        if frame.pixels.len() < expected {
            return Err(RenderError::ShortBuffer {
                width: frame.width,
                height: frame.height,
                len: frame.pixels.len(),
                expected,
            });
        }
        let fit = if participant_id & SCREEN_TILE_FLAG != 0 {
            fit_whole(frame.width, frame.height, tile.0, tile.1)
        } else {
            fit(frame.width, frame.height, tile.0, tile.1)
        }
        .ok_or(RenderError::Empty)?;
        let (w, h) = (fit.width, fit.height);
        let src: &[u8] = if (w, h) == (frame.width, frame.height) {
            &frame.pixels[..expected]
        } else {
            let src = ImageRef::new(frame.width, frame.height, &frame.pixels[..expected], frame.layout.pixel_type())
                .map_err(|e| RenderError::Resize(e.to_string()))?;
            self.scaled.resize(w as usize * h as usize * bpp, 0);
            let mut dst = Image::from_slice_u8(w, h, &mut self.scaled, frame.layout.pixel_type())
                .map_err(|e| RenderError::Resize(e.to_string()))?;
            let (left, top, cw, ch) = fit.crop;
            let options = ResizeOptions::new()
                .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
                .crop(left, top, cw, ch)
                .use_alpha(false);
            self.resizer.resize(&src, &mut dst, &options).map_err(|e| RenderError::Resize(e.to_string()))?;
            &self.scaled
        };
        encode_i420(participant_id, src, w, h, frame.layout)
    }
}

/// Builds an I420 frame message from tightly packed RGB(A) pixels of an even-sized picture.
fn encode_i420(participant_id: u32, pixels: &[u8], w: u32, h: u32, layout: Layout) -> Result<Vec<u8>, RenderError> {
    let y_len = w as usize * h as usize;
    let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
    let c_len = cw as usize * ch as usize;
    let mut out = vec![0u8; HEADER_LEN + y_len + 2 * c_len];
    write_header(&mut out, participant_id, w as u16, h as u16, FORMAT_I420);
    let (y, rest) = out[HEADER_LEN..].split_at_mut(y_len);
    let (u, v) = rest.split_at_mut(c_len);
    let mut planar = YuvPlanarImageMut {
        y_plane: BufferStoreMut::Borrowed(y),
        y_stride: w,
        u_plane: BufferStoreMut::Borrowed(u),
        u_stride: cw,
        v_plane: BufferStoreMut::Borrowed(v),
        v_stride: cw,
        width: w,
        height: h,
    };
    let stride = w * layout.bytes_per_pixel() as u32;
    // Limited range BT.601: the coefficients of the page's shader (ui/src/views/video.ts).
    let (range, matrix, mode) = (YuvRange::Limited, YuvStandardMatrix::Bt601, YuvConversionMode::Balanced);
    let result = match layout {
        Layout::Rgba => yuvutils_rs::rgba_to_yuv420(&mut planar, pixels, stride, range, matrix, mode),
        Layout::Rgb => yuvutils_rs::rgb_to_yuv420(&mut planar, pixels, stride, range, matrix, mode),
    };
    result.map_err(|e| RenderError::Convert(e.to_string()))?;
    Ok(out)
}

/// One participant's slot.
#[derive(Debug, Default)]
struct Slot {
    latest: Option<SourceFrame>,
    /// The page drew the last frame sent (or asked for a first one).
    ready: bool,
    tile: (u32, u32),
}

/// A frame taken out of its slot to be rendered and sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub participant_id: u32,
    pub frame: SourceFrame,
    pub tile: (u32, u32),
}

/// The flow-control state of every participant's video, without threads or I/O.
#[derive(Debug, Default)]
pub struct Slots {
    map: HashMap<u32, Slot>,
    /// The last participant served, so that ready slots are served in turn.
    cursor: u32,
    replaced: u64,
}

impl Slots {
    fn slot(&mut self, id: u32) -> Option<&mut Slot> {
        if !self.map.contains_key(&id) && self.map.len() >= MAX_SLOTS {
            return None;
        }
        Some(self.map.entry(id).or_default())
    }

    /// Stores the newest frame of `id`, replacing an unsent older one. Returns whether a frame
    /// can be sent now.
    pub fn push(&mut self, id: u32, frame: SourceFrame) -> bool {
        let Some(slot) = self.slot(id) else { return false };
        if slot.latest.replace(frame).is_some() {
            self.replaced += 1;
        }
        self.map.get(&id).is_some_and(|s| s.ready)
    }

    /// The page drew a frame of `id` (or its tile appeared or changed size) at `w`×`h`.
    /// Returns whether a frame can be sent now.
    pub fn drawn(&mut self, id: u32, w: u32, h: u32) -> bool {
        let Some(slot) = self.slot(id) else { return false };
        slot.ready = true;
        slot.tile = (w, h);
        slot.latest.is_some()
    }

    /// Takes the next frame to send: from a ready slot that holds one, serving participants in
    /// turn. Clears that slot's `ready`.
    pub fn take(&mut self) -> Option<Job> {
        let next = self
            .map
            .iter()
            .filter(|(_, s)| s.ready && s.latest.is_some())
            .map(|(id, _)| *id)
            // The first id after the cursor, wrapping around.
            .min_by_key(|id| (*id <= self.cursor, *id))?;
        self.cursor = next;
        let slot = self.map.get_mut(&next)?;
        slot.ready = false;
        let frame = slot.latest.take()?;
        Some(Job { participant_id: next, frame, tile: slot.tile })
    }

    /// A frame could not be sent: the page is still waiting for one.
    pub fn restore(&mut self, id: u32) {
        if let Some(slot) = self.map.get_mut(&id) {
            slot.ready = true;
        }
    }

    /// Forgets `id` (it left).
    pub fn forget(&mut self, id: u32) {
        self.map.remove(&id);
    }

    /// Forgets every participant but this app's own camera (the meeting is over).
    pub fn forget_remote(&mut self) {
        self.map.retain(|id, _| *id == LOCAL_ID);
    }

    /// Drops every pending frame and readiness (a new page subscribed: it asks anew).
    pub fn reset(&mut self) {
        self.map.clear();
    }

    /// Frames overwritten in their slot before they could be sent.
    pub fn replaced(&self) -> u64 {
        self.replaced
    }
}

/// Where frame messages go: the page's Channel in the app, a collector in tests.
pub trait FrameSink: Send + Sync {
    /// Sends one message; false when the receiver is gone.
    fn send(&self, message: Vec<u8>) -> bool;
}

impl FrameSink for tauri::ipc::Channel<tauri::ipc::InvokeResponseBody> {
    fn send(&self, message: Vec<u8>) -> bool {
        tauri::ipc::Channel::send(self, tauri::ipc::InvokeResponseBody::Raw(message)).is_ok()
    }
}

#[derive(Default)]
struct PumpState {
    slots: Slots,
    sink: Option<Arc<dyn FrameSink>>,
    stopped: bool,
    sent: u64,
    /// When each participant's last frame went out, until the page acknowledges it.
    in_flight: HashMap<u32, Instant>,
    timing: LoopTiming,
}

/// Where a frame's time goes, logged every few seconds at debug level: rendering in the shell,
/// and the round trip through the page (delivery, drawing, the acknowledgement).
#[derive(Default)]
struct LoopTiming {
    frames: u64,
    render: Duration,
    acks: u64,
    round_trip: Duration,
    since: Option<Instant>,
}

impl LoopTiming {
    const EVERY: Duration = Duration::from_secs(5);

    fn maybe_log(&mut self, now: Instant) {
        let since = *self.since.get_or_insert(now);
        if now.duration_since(since) < Self::EVERY || self.frames == 0 {
            return;
        }
        let secs = now.duration_since(since).as_secs_f64();
        tracing::debug!(
            fps = format!("{:.1}", self.frames as f64 / secs),
            render_ms = format!("{:.2}", self.render.as_secs_f64() * 1e3 / self.frames as f64),
            round_trip_ms = format!("{:.1}", self.round_trip.as_secs_f64() * 1e3 / self.acks.max(1) as f64),
            "frames to the page"
        );
        *self = LoopTiming { since: Some(now), ..LoopTiming::default() };
    }
}

struct Shared {
    state: Mutex<PumpState>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, PumpState> {
        // A panic while holding the lock cannot leave the slots inconsistent in a way that
        // matters more than losing video, so carry on with the data.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The slots plus the worker thread that renders and sends. Dropping it stops the thread.
pub struct FramePump {
    shared: Arc<Shared>,
    worker: Option<JoinHandle<()>>,
}

impl FramePump {
    /// Starts the worker thread.
    pub fn start() -> Self {
        let shared = Arc::new(Shared { state: Mutex::new(PumpState::default()), wake: Condvar::new() });
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name("parlor-frames".into())
            .spawn(move || worker(worker_shared))
            .map_err(|e| tracing::error!("cannot start the frame thread: {e}"))
            .ok();
        Self { shared, worker }
    }

    fn update(&self, f: impl FnOnce(&mut PumpState) -> bool) {
        let wake = f(&mut self.shared.lock());
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Sends frames to `sink` from now on; every slot starts over (the page asks anew).
    pub fn set_sink(&self, sink: Arc<dyn FrameSink>) {
        self.update(|s| {
            s.slots.reset();
            s.in_flight.clear();
            s.sink = Some(sink);
            false
        });
    }

    /// A new frame of `id`.
    pub fn push(&self, id: u32, frame: SourceFrame) {
        self.update(|s| s.slots.push(id, frame));
    }

    /// The page's `video_frame_drawn`.
    pub fn drawn(&self, id: u32, width: u32, height: u32) {
        self.update(|s| {
            if let Some(at) = s.in_flight.remove(&id) {
                s.timing.acks += 1;
                s.timing.round_trip += at.elapsed();
            }
            s.slots.drawn(id, width, height)
        });
    }

    /// `id` left the meeting.
    pub fn forget(&self, id: u32) {
        self.update(|s| {
            s.slots.forget(id);
            false
        });
    }

    /// The meeting is over: drop every remote participant's slot.
    pub fn forget_remote(&self) {
        self.update(|s| {
            s.slots.forget_remote();
            false
        });
    }

    /// (frames sent, frames replaced before they could be sent)
    pub fn counters(&self) -> (u64, u64) {
        let s = self.shared.lock();
        (s.sent, s.slots.replaced())
    }
}

impl Drop for FramePump {
    fn drop(&mut self) {
        self.shared.lock().stopped = true;
        self.shared.wake.notify_all();
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

fn worker(shared: Arc<Shared>) {
    let mut renderer = Renderer::new();
    loop {
        let (sink, job) = {
            let mut state = shared.lock();
            loop {
                if state.stopped {
                    return;
                }
                if let Some(sink) = state.sink.clone() {
                    if let Some(job) = state.slots.take() {
                        break (sink, job);
                    }
                }
                state = shared.wake.wait(state).unwrap_or_else(|e| e.into_inner());
            }
        };
        let started = Instant::now();
        let sent = match renderer.render(job.participant_id, &job.frame, job.tile) {
            Ok(message) => sink.send(message),
            Err(e) => {
                tracing::debug!(participant = job.participant_id, "frame skipped: {e}");
                false
            }
        };
        let now = Instant::now();
        let mut state = shared.lock();
        if sent {
            state.sent += 1;
            state.timing.frames += 1;
            state.timing.render += now - started;
            if state.in_flight.len() < MAX_SLOTS {
                state.in_flight.insert(job.participant_id, now);
            }
            state.timing.maybe_log(now);
        } else {
            state.slots.restore(job.participant_id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, layout: Layout, rgb: [u8; 3]) -> SourceFrame {
        let px: Vec<u8> = match layout {
            Layout::Rgb => rgb.to_vec(),
            Layout::Rgba => vec![rgb[0], rgb[1], rgb[2], 255],
        };
        let pixels = px.iter().copied().cycle().take(px.len() * (width * height) as usize).collect::<Vec<_>>();
        SourceFrame { width, height, layout, pixels: Bytes::from(pixels) }
    }

    fn parse(msg: &[u8]) -> (u32, u16, u16, u8) {
        (
            u32::from_le_bytes(msg[0..4].try_into().unwrap()),
            u16::from_le_bytes(msg[4..6].try_into().unwrap()),
            u16::from_le_bytes(msg[6..8].try_into().unwrap()),
            msg[8],
        )
    }

    #[test]
    fn fit_crops_to_the_tile_aspect_and_never_upscales() {
        // A 16:9 source in a 4:3 tile: the sides are cropped.
        let f = fit(854, 480, 320, 240).unwrap();
        assert_eq!((f.width, f.height), (320, 240));
        assert!((f.crop.2 - 640.0).abs() < 1e-9 && (f.crop.0 - 107.0).abs() < 1e-9);
        // A tile bigger than the source: the crop is sent as it is.
        let f = fit(854, 480, 1600, 1200).unwrap();
        assert_eq!((f.width, f.height), (640, 480));
        // Same aspect, smaller: plain downscale, even sizes.
        let f = fit(854, 480, 427, 240).unwrap();
        assert_eq!((f.width, f.height), (426, 240));
        assert_eq!(f.crop, (0.0, 0.0, 854.0, 480.0));
        assert!(fit(854, 480, 0, 10).is_none());
        assert!(fit(1, 480, 10, 10).is_none());
        // Absurd tiles are clamped and still give even, bounded sizes.
        let f = fit(640, 480, u32::MAX, 1).unwrap();
        assert!(f.width <= 640 && f.height >= 2 && f.width.is_multiple_of(2));
    }

    #[test]
    fn a_shared_screen_is_fitted_whole_never_cropped() {
        // A 16:9 screen in a 4:3 tile: letterboxed, all of it sent.
        let f = fit_whole(1920, 1080, 800, 600).unwrap();
        assert_eq!(f.crop, (0.0, 0.0, 1920.0, 1080.0));
        assert_eq!((f.width, f.height), (800, 450));
        let f = fit_whole(1280, 720, 4000, 4000).unwrap();
        assert_eq!((f.width, f.height), (1280, 720), "never scaled up");
        let mut r = Renderer::new();
        let msg = r.render(screen_tile_id(5), &solid(1920, 1080, Layout::Rgba, [200, 10, 10]), (960, 960)).unwrap();
        assert_eq!(parse(&msg), (screen_tile_id(5), 960, 540, FORMAT_I420));
    }

    #[test]
    fn renders_i420_with_the_contract_header_and_limited_range_bt601() {
        let mut r = Renderer::new();
        for layout in [Layout::Rgb, Layout::Rgba] {
            let msg = r.render(7, &solid(854, 480, layout, [255, 0, 0]), (320, 180)).unwrap();
            let (id, w, h, format) = parse(&msg);
            assert_eq!((id, w, h, format), (7, 320, 180, FORMAT_I420));
            assert_eq!(msg[9..12], [0, 0, 0]);
            assert_eq!(msg.len(), HEADER_LEN + 320 * 180 * 3 / 2);
            let y = msg[HEADER_LEN + 1000];
            let u = msg[HEADER_LEN + 320 * 180 + 100];
            let v = msg[HEADER_LEN + 320 * 180 + 160 * 90 + 100];
            // Pure red in BT.601 limited range: Y 81, Cb 90, Cr 240.
            assert!((i32::from(y) - 81).abs() <= 2, "Y {y}");
            assert!((i32::from(u) - 90).abs() <= 2, "U {u}");
            assert!((i32::from(v) - 240).abs() <= 2, "V {v}");
        }
        let white = r.render(1, &solid(64, 48, Layout::Rgba, [255, 255, 255]), (64, 48)).unwrap();
        assert!((i32::from(white[HEADER_LEN]) - 235).abs() <= 1);
    }

    #[test]
    fn short_or_empty_frames_are_refused_without_panicking() {
        let mut r = Renderer::new();
        let mut f = solid(64, 48, Layout::Rgba, [1, 2, 3]);
        f.pixels = f.pixels.slice(..100);
        assert!(matches!(r.render(1, &f, (64, 48)), Err(RenderError::ShortBuffer { .. })));
        assert_eq!(r.render(1, &solid(64, 48, Layout::Rgb, [0; 3]), (0, 0)), Err(RenderError::Empty));
    }

    #[test]
    fn slots_send_only_the_latest_frame_after_the_page_drew() {
        let mut s = Slots::default();
        let a = solid(4, 4, Layout::Rgba, [1, 1, 1]);
        let b = solid(4, 4, Layout::Rgba, [2, 2, 2]);
        // Nothing goes out before the page asked for it.
        assert!(!s.push(3, a.clone()));
        assert!(s.take().is_none());
        assert!(!s.push(3, b.clone()));
        assert_eq!(s.replaced(), 1);
        assert!(s.drawn(3, 100, 50));
        let job = s.take().unwrap();
        assert_eq!((job.participant_id, job.tile), (3, (100, 50)));
        assert_eq!(job.frame, b);
        // Not ready again until the page drew it.
        assert!(!s.push(3, a.clone()));
        assert!(s.take().is_none());
        // Two acknowledgements still allow one frame: a flag, not a credit counter.
        s.drawn(3, 100, 50);
        s.drawn(3, 120, 60);
        assert_eq!(s.take().unwrap().tile, (120, 60));
        s.push(3, a.clone());
        assert!(s.take().is_none());
    }

    #[test]
    fn slots_serve_participants_in_turn_and_are_bounded() {
        let mut s = Slots::default();
        let f = solid(2, 2, Layout::Rgba, [0; 3]);
        for id in [1, 2, 3] {
            s.drawn(id, 10, 10);
        }
        let mut order = Vec::new();
        for _ in 0..6 {
            for id in [1, 2, 3] {
                s.push(id, f.clone());
            }
            let job = s.take().unwrap();
            order.push(job.participant_id);
            s.drawn(job.participant_id, 10, 10);
        }
        assert_eq!(order, vec![1, 2, 3, 1, 2, 3]);
        for id in 100..100 + MAX_SLOTS as u32 * 2 {
            s.drawn(id, 10, 10);
        }
        assert_eq!(s.map.len(), MAX_SLOTS);
        s.forget_remote();
        assert!(s.map.is_empty());
    }

    #[derive(Default)]
    struct Collector(Mutex<Vec<Vec<u8>>>);

    impl FrameSink for Collector {
        fn send(&self, message: Vec<u8>) -> bool {
            self.0.lock().unwrap().push(message);
            true
        }
    }

    impl Collector {
        fn wait_for(&self, n: usize) -> Vec<Vec<u8>> {
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                let got = self.0.lock().unwrap().clone();
                if got.len() >= n || Instant::now() > deadline {
                    return got;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    #[test]
    fn the_pump_sends_one_frame_per_acknowledgement() {
        let pump = FramePump::start();
        let sink = Arc::new(Collector::default());
        pump.set_sink(sink.clone());
        for i in 0..5u8 {
            pump.push(2, solid(64, 36, Layout::Rgba, [i, i, i]));
        }
        pump.drawn(2, 32, 18);
        let got = sink.wait_for(1);
        assert_eq!(got.len(), 1);
        assert_eq!(parse(&got[0]), (2, 32, 18, FORMAT_I420));
        // More frames without an acknowledgement stay in the slot.
        pump.push(2, solid(64, 36, Layout::Rgba, [9, 9, 9]));
        pump.push(LOCAL_ID, solid(64, 36, Layout::Rgb, [9, 9, 9]));
        pump.drawn(LOCAL_ID, 64, 36);
        let got = sink.wait_for(2);
        assert_eq!(got.len(), 2);
        assert_eq!(parse(&got[1]), (LOCAL_ID, 64, 36, FORMAT_I420));
        pump.drawn(2, 32, 18);
        assert_eq!(sink.wait_for(3).len(), 3);
        // The counter moves just after the sink returned.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pump.counters().0 < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(pump.counters(), (3, 4));
    }
}
