//! Video threads: capture → scale → JPEG → paced fragments, and the decode worker.
//!
//! The **capture thread** runs at the frame rate of the current quality setting, encodes at
//! its size and JPEG quality, and spreads the fragments of each frame over a quarter of the
//! frame interval so a 40-fragment 480p frame does not hit the network (and the relay's
//! socket buffer) as one burst. With the camera off it sends nothing.
//!
//! The **decode worker** takes the newest complete frame of each sender (older ones were
//! already replaced and counted as skipped) and decodes it to RGBA off the network task, into
//! that sender's latest-frame slot ([`super::frames`]). It also puts every received screen
//! slice on its sharer's canvas ([`super::screen::Composer`]) and shows the canvas in the
//! sharer's screen slot at the end of each update.

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::e2ee::SEAL_OVERHEAD;
use protocol::media::{fragment_count, fragment_frame, VideoFrameMeta, VideoStream, MAX_DATAGRAM_LEN};

use super::engine::{EngineShared, VideoOutCounters};
use super::events::EventSender;
use super::frames::{FrameSource, PixelFormat, VideoFrame};
use super::options::VideoChoice;
use super::take_switch;
use crate::media::{self, now_us, DecodedFrame, RgbFrame, TestPattern, VideoDecoder, VideoEncoder, VideoSource};
use crate::net::udp::send_datagram;

/// Size of the synthetic test pattern: the top of the ladder, so every level is a downscale.
const PATTERN_WIDTH: u32 = 854;
const PATTERN_HEIGHT: u32 = 480;
/// Fragments of one frame are spread over this fraction of the frame interval.
const PACING_FRACTION: u32 = 4;
/// How often a thread with nothing to do checks whether it should stop.
const IDLE_POLL: Duration = Duration::from_millis(20);

/// Attempts at opening the camera before falling back to the test pattern.
const CAMERA_OPEN_ATTEMPTS: u32 = 5;
/// Wait between attempts.
const CAMERA_RETRY: Duration = Duration::from_millis(200);

/// What the capture thread captures and whom it shows.
#[derive(Debug, Clone)]
pub(crate) struct CaptureOptions {
    pub choice: VideoChoice,
    /// Put each captured frame into the `FrameSource::Local` slot (the self view).
    pub local_video: bool,
}

/// Opens the chosen source (`None` for [`VideoChoice::None`]). A camera gets a few tries: the
/// app may still be releasing it from its waiting-room preview when the meeting starts.
fn open_source(choice: &VideoChoice, shared: &EngineShared, events: &EventSender) -> Option<Box<dyn VideoSource>> {
    if *choice == VideoChoice::None {
        return None;
    }
    if let VideoChoice::Camera(index) = choice {
        let mut attempt = 1;
        loop {
            match media::open_camera(*index) {
                Ok(camera) => return Some(camera),
                Err(e) if attempt < CAMERA_OPEN_ATTEMPTS && sleep_until(shared, Instant::now() + CAMERA_RETRY) => {
                    tracing::debug!(attempt, "camera {index} not ready: {e}");
                    attempt += 1;
                }
                Err(e) => {
                    events.error(format!("camera {index} unavailable ({e}); sending the test pattern instead"));
                    break;
                }
            }
        }
    }
    Some(Box::new(TestPattern::new(PATTERN_WIDTH, PATTERN_HEIGHT)))
}

/// Records what the outgoing video comes from, for the stats.
fn describe(counters: &VideoOutCounters, source: &Option<Box<dyn VideoSource>>) {
    if let Ok(mut s) = counters.source.lock() {
        *s = source.as_ref().map(|s| s.describe()).unwrap_or_default();
    }
}

/// Sleeps until `deadline` in slices, returning early (false) if the engine stops.
pub(crate) fn sleep_until(shared: &EngineShared, deadline: Instant) -> bool {
    loop {
        if !shared.running() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        std::thread::sleep((deadline - now).min(IDLE_POLL));
    }
}

pub(crate) fn capture_thread(
    shared: Arc<EngineShared>,
    events: EventSender,
    options: CaptureOptions,
    socket: UdpSocket,
) {
    let mut source = open_source(&options.choice, &shared, &events);
    let counters = &shared.video_out;
    describe(counters, &source);
    let mut encoder = VideoEncoder::new();
    let mut frame = RgbFrame { width: 0, height: 0, data: Vec::new(), capture_ts_us: 0 };
    let mut jpeg = Vec::with_capacity(256 * 1024);
    let mut datagram = [0u8; MAX_DATAGRAM_LEN];
    let mut sealed = Vec::new();
    let mut seq: u32 = 0;
    let mut frame_id: u32 = 0;
    let mut local_frames: u32 = 0;
    let mut next = Instant::now();

    while shared.running() {
        if let Some(choice) = take_switch(&shared.session.switches.video) {
            // Let go of the old camera first: the new choice may be the same device.
            drop(source.take());
            source = open_source(&choice, &shared, &events);
            describe(counters, &source);
        }
        let Some(source_now) = source.as_mut() else {
            counters.active.store(false, Ordering::Relaxed);
            std::thread::sleep(IDLE_POLL);
            continue;
        };
        if !shared.session.camera_on.load(Ordering::Relaxed) {
            counters.active.store(false, Ordering::Relaxed);
            std::thread::sleep(IDLE_POLL);
            next = Instant::now();
            continue;
        }
        counters.active.store(true, Ordering::Relaxed);
        let setting = shared.setting();
        let interval = Duration::from_secs(1) / u32::from(setting.fps.max(1));
        if !sleep_until(&shared, next) {
            break;
        }
        let now = Instant::now();
        next += interval;
        if next + interval < now {
            // Fell far behind (machine overloaded): skip ahead rather than burst.
            next = now + interval;
        }

        if let Err(e) = source_now.next_frame(&mut frame) {
            events.error(format!("video source failed ({e}); sending the test pattern instead"));
            source = Some(Box::new(TestPattern::new(PATTERN_WIDTH, PATTERN_HEIGHT)));
            describe(counters, &source);
            continue;
        }
        if options.local_video {
            local_frames = local_frames.wrapping_add(1);
            shared.session.video.put(VideoFrame {
                source: FrameSource::Local,
                frame_id: local_frames,
                width: frame.width,
                height: frame.height,
                capture_ts_us: frame.capture_ts_us,
                format: PixelFormat::Rgb,
                pixels: Bytes::copy_from_slice(&frame.data),
            });
        }
        let started = Instant::now();
        if let Err(e) = encoder.encode(&frame, setting.width, setting.height, setting.jpeg_quality, &mut jpeg) {
            tracing::warn!("video encode failed: {e}");
            continue;
        }
        counters.encode_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);

        let meta = VideoFrameMeta {
            stream: VideoStream::Camera,
            sender_id: shared.my_id,
            frame_id,
            capture_ts_us: if frame.capture_ts_us > 0 { frame.capture_ts_us } else { now_us() },
            width: setting.width,
            height: setting.height,
        };
        frame_id = frame_id.wrapping_add(1);
        let count = fragment_count(jpeg.len() + SEAL_OVERHEAD).max(1) as u32;
        let gap = interval / PACING_FRACTION / count;
        let burst_start = Instant::now();
        let mut index = 0u32;
        let mut bytes = 0u64;
        let mut errors = 0u64;
        if !shared.seal(&meta.aad(), &jpeg, &mut sealed) {
            continue;
        }
        let result = fragment_frame(meta, &sealed, &mut seq, &shared.hop_out, &mut datagram, |d| {
            // Absolute schedule: fragment i leaves at start + i·gap; tiny waits are skipped
            // because a sleep costs more than it spreads.
            let due = burst_start + gap * index;
            let now = Instant::now();
            if due > now + Duration::from_micros(200) {
                std::thread::sleep(due - now);
            }
            if send_datagram(&socket, d) {
                bytes += d.len() as u64;
            } else {
                errors += 1;
            }
            index += 1;
        });
        match result {
            Ok(n) => {
                counters.frames.fetch_add(1, Ordering::Relaxed);
                counters.packets.fetch_add(n as u64, Ordering::Relaxed);
                counters.bytes.fetch_add(bytes, Ordering::Relaxed);
                counters.send_errors.fetch_add(errors, Ordering::Relaxed);
                counters.last_frame_bytes.store(jpeg.len() as u64, Ordering::Relaxed);
                counters.last_dims.store(u32::from(setting.width) << 16 | u32::from(setting.height), Ordering::Relaxed);
            }
            Err(e) => tracing::warn!("cannot fragment a {} byte frame: {e}", jpeg.len()),
        }
    }
    counters.active.store(false, Ordering::Relaxed);
}

pub(crate) fn decode_thread(shared: Arc<EngineShared>) {
    let mut decoder = VideoDecoder::new();
    let mut composer = super::screen::Composer::default();
    let mut out = DecodedFrame { width: 0, height: 0, rgba: Vec::new() };
    loop {
        let (batch, slices, forget): (Vec<_>, Vec<_>, Vec<_>) = {
            let Ok(mut state) = shared.decode.lock() else { return };
            while !state.has_work() && !state.closed {
                state = match shared.decode_ready.wait(state) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            if state.closed {
                return;
            }
            (
                std::mem::take(&mut state.pending).into_iter().collect(),
                {
                    state.screen_pending_bytes = 0;
                    std::mem::take(&mut state.screen_pending).into_iter().collect()
                },
                std::mem::take(&mut state.screen_forget),
            )
        };
        for sender in forget {
            composer.forget(sender);
        }
        for (sender, job) in slices {
            let applied = composer.apply(sender, &job);
            let shown = if applied.is_ok() { composer.take_frame(sender, job.ends_update) } else { None };
            let now = now_us();
            let Ok(mut state) = shared.decode.lock() else { return };
            let Some(counters) = state.senders.get_mut(&sender) else { continue };
            match (applied, shown) {
                (Err(e), _) => {
                    counters.screen_errors += 1;
                    drop(state);
                    // Its tiles were counted as received: the receive core asks for them again.
                    shared.screen_tiles_lost(sender, &job.tiles);
                    tracing::debug!(sender, "cannot apply screen slice {}: {e}", job.frame_id);
                }
                (Ok(()), Some(frame)) => {
                    counters.screen_latency.record_us(frame.capture_ts_us, now);
                    drop(state);
                    shared.session.video.put(frame);
                }
                (Ok(()), None) => {}
            }
        }
        for (sender, frame) in batch {
            let ok = decoder.decode(&frame.data, &mut out);
            let now = now_us();
            let Ok(mut state) = shared.decode.lock() else { return };
            let Some(counters) = state.senders.get_mut(&sender) else { continue };
            match ok {
                Err(e) => {
                    counters.errors += 1;
                    tracing::debug!(sender, "cannot decode frame {}: {e}", frame.frame_id);
                }
                Ok(()) => {
                    counters.frames += 1;
                    counters.last_width = out.width;
                    counters.last_height = out.height;
                    counters.latency.record_us(frame.capture_ts_us, now);
                    drop(state);
                    // Hand the pixels over without copying; the next decode allocates anew.
                    let pixels = Bytes::from(std::mem::take(&mut out.rgba));
                    shared.session.video.put(VideoFrame {
                        source: FrameSource::Remote(sender),
                        frame_id: frame.frame_id,
                        width: out.width,
                        height: out.height,
                        capture_ts_us: frame.capture_ts_us,
                        format: PixelFormat::Rgba,
                        pixels,
                    });
                }
            }
        }
    }
}
