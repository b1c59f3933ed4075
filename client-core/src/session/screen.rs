//! Screen sharing's threads: the **share thread** (capture → tiles that changed → slices →
//! sealed fragments) and the **composer** the decode worker uses to put received slices on a
//! canvas per sharer. The decisions (which tiles, which are stale, what to ask for) are the
//! sans-IO [`protocol::screen`] types'; this module does the pixels, the JPEGs and the sockets.
//!
//! The share thread runs at the frame rate of the screen ladder's current level
//! ([`protocol::quality::SCREEN_LADDER`]), scales the capture to fit the level (keeping its
//! aspect), and sends each update's slices paced over half a frame interval, so a full 1080p
//! update (a few hundred fragments) never hits the network, or the audio sharing the uplink,
//! as one burst. While more than half the picture changes capture after capture (a video
//! played full screen) updates are coded like the camera (quality 70, 4:2:0); all the others
//! at the level's quality with full-resolution colour, so small text stays sharp. Tiles the
//! decode worker could not draw go back to the receive core as lost ([`LostTiles`]).

use std::net::UdpSocket;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use protocol::e2ee::SEAL_OVERHEAD;
use protocol::media::{fragment_count, fragment_frame, VideoFrameMeta, VideoStream, MAX_DATAGRAM_LEN};
use protocol::screen::{ScreenSender, ScreenSenderConfig, TileGrid, TileRun, UpdatePlan};
use tokio::sync::mpsc;

use super::engine::{EngineShared, Internal};
use super::frames::{FrameSource, PixelFormat, VideoFrame};
use super::take_switch;
use crate::media::{
    now_us, open_screen, DecodedFrame, MediaError, RgbFrame, ScreenEncoder, VideoDecoder, VideoEncoder, VideoSource,
};
use crate::net::udp::send_datagram;

/// Captures in a row whose changed area is larger than this are coded like camera video
/// (from the [`VIDEO_MODE_AFTER`]th on): a video plays. A single large change (a new slide, a
/// window brought to the front) stays sharp.
const VIDEO_MODE_FRACTION: f64 = 0.5;
const VIDEO_MODE_AFTER: u32 = 3;
/// Receivers report this much loss (thousandths) or more: slices are cut small.
const LOSSY_FROM_PERMILLE: u32 = 20;
/// An update's fragments are spread over this fraction of the frame interval.
const PACING_FRACTION: u32 = 2;
/// How often an idle share thread looks for something to do.
const IDLE_POLL: Duration = Duration::from_millis(20);
/// Tile runs receivers asked for, waiting for the share thread, at most; more are dropped
/// (the receivers ask again 200 ms later).
const MAX_PENDING_RUNS: usize = 1024;
/// Largest atlas a receiver decodes: a 4K screen padded to whole tiles.
const MAX_ATLAS_WIDTH: u32 = protocol::screen::MAX_SCREEN_WIDTH;
const MAX_ATLAS_HEIGHT: u32 = protocol::screen::MAX_SCREEN_HEIGHT.next_multiple_of(protocol::screen::TILE_SIZE);

/// Tiles receivers asked for, waiting for the share thread's next update or repair.
#[derive(Debug, Default)]
pub(crate) struct RefreshQueue {
    runs: Vec<TileRun>,
}

impl RefreshQueue {
    pub(crate) fn push(&mut self, runs: &[TileRun]) {
        let room = MAX_PENDING_RUNS.saturating_sub(self.runs.len());
        self.runs.extend_from_slice(&runs[..runs.len().min(room)]);
    }

    /// Hands what is queued to `sender` (which keeps one flag per tile) and empties the queue.
    fn drain_into(&mut self, sender: &mut ScreenSender) {
        sender.request_tiles(&self.runs);
        self.runs.clear();
    }
}

/// A screen capture may fail for a moment (X11 refuses a connection, a window is being
/// resized): the share goes on, skipping those captures, until captures have failed for this
/// long in a row.
const CAPTURE_FAILURE_GRACE: Duration = Duration::from_secs(3);

/// Whether failed captures end the share: a source that is gone (the window closed) ends it at
/// once; one that fails otherwise ends it once it has failed for [`CAPTURE_FAILURE_GRACE`]
/// without a capture succeeding in between.
#[derive(Debug, Default)]
struct CaptureHealth {
    failing_since: Option<Instant>,
}

impl CaptureHealth {
    fn captured(&mut self) {
        self.failing_since = None;
    }

    /// A capture failed at `now` with `error`: true if the share should end.
    fn failed(&mut self, now: Instant, error: &MediaError) -> bool {
        if !matches!(error, MediaError::Device(_)) {
            return true;
        }
        let since = *self.failing_since.get_or_insert(now);
        if since == now {
            tracing::warn!(%error, "screen capture failed; trying again");
        }
        now.saturating_duration_since(since) >= CAPTURE_FAILURE_GRACE
    }
}

/// The share stopped by itself: the control task says so (`ScreenShareEnded`) and sends the
/// media state.
fn share_failed(shared: &EngineShared, internal: &mpsc::Sender<Internal>, reason: String) {
    shared.session.presenting.store(false, Ordering::Relaxed);
    tracing::info!("screen sharing stopped: {reason}");
    let _ = internal.try_send(Internal::ScreenShareEnded(reason));
}

/// The screen stream is never sent faster than this (bytes a second, 32 Mbit/s): a new slide
/// or a repair of the whole screen is spread out rather than overflowing a queue on the way.
const MAX_SEND_RATE: f64 = 4_000_000.0;
/// A repair (tiles receivers asked for) goes out at most this often between captures.
const REPAIR_SPACING: Duration = Duration::from_millis(40);
/// How often the share thread, waiting for its next capture, looks for refresh requests.
const REQUEST_POLL: Duration = Duration::from_millis(5);

/// What the share thread keeps between updates to code and send them.
struct SliceSender {
    shared: Arc<EngineShared>,
    socket: UdpSocket,
    coder: ScreenEncoder,
    slices: Vec<Vec<u8>>,
    datagram: [u8; MAX_DATAGRAM_LEN],
    seq: u32,
    frame_id: u32,
}

impl SliceSender {
    /// Codes `plan`'s tiles of `pixels` (RGB) in slices, seals them and sends their fragments
    /// paced over `pace`.
    fn send(&mut self, plan: &UpdatePlan, pixels: &[u8], capture_ts_us: u64, video_mode: bool, pace: Duration) {
        let counters = &self.shared.screen_out;
        let started = Instant::now();
        let setting = self.shared.screen_setting();
        let lossy = self.shared.screen_loss_permille.load(Ordering::Relaxed) >= LOSSY_FROM_PERMILLE;
        self.coder.set_lossy(lossy);
        let quality = if video_mode { None } else { Some(setting.jpeg_quality) };
        let (width, height) = (plan.grid.width as u16, plan.grid.height as u16);
        self.coder.encode(plan, pixels, quality, &mut self.slices);
        let mut frames: Vec<(VideoFrameMeta, Vec<u8>)> = Vec::with_capacity(self.slices.len());
        for slice in self.slices.drain(..) {
            let meta = VideoFrameMeta {
                stream: VideoStream::Screen,
                sender_id: self.shared.my_id,
                frame_id: self.frame_id,
                capture_ts_us,
                width,
                height,
            };
            // The frame id is used up even if the slice cannot be sealed: receivers then see a
            // gap, and the next slice's spans name what it held.
            self.frame_id = self.frame_id.wrapping_add(1);
            let mut sealed = Vec::new();
            if !self.shared.seal(&meta.aad(), &slice, &mut sealed) {
                continue;
            }
            frames.push((meta, sealed));
        }
        counters.encode_us.fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);

        let total: usize = frames.iter().map(|(_, f)| fragment_count(f.len() + SEAL_OVERHEAD)).sum();
        let bytes_out: usize = frames.iter().map(|(_, f)| f.len()).sum();
        let pace = pace.max(Duration::from_secs_f64(bytes_out as f64 / MAX_SEND_RATE));
        let gap = pace / total.max(1) as u32;
        let burst_start = Instant::now();
        let (mut index, mut bytes, mut errors, mut packets) = (0u32, 0u64, 0u64, 0u64);
        let socket = &self.socket;
        for (meta, body) in &frames {
            let result = fragment_frame(*meta, body, &mut self.seq, &self.shared.hop_out, &mut self.datagram, |d| {
                let due = burst_start + gap * index;
                let now = Instant::now();
                if due > now + Duration::from_micros(200) {
                    std::thread::sleep(due - now);
                }
                if send_datagram(socket, d) {
                    bytes += d.len() as u64;
                } else {
                    errors += 1;
                }
                index += 1;
            });
            match result {
                Ok(n) => packets += n as u64,
                Err(e) => tracing::warn!("cannot fragment a {} byte screen slice: {e}", body.len()),
            }
        }
        counters.record_update(plan, frames.len() as u64, packets, bytes, errors);
    }
}

/// Waits for `deadline` (false if the engine stops meanwhile), sending a repair whenever
/// receivers ask for tiles in between.
fn wait_repairing(
    shared: &EngineShared,
    planner: &mut ScreenSender,
    sender: &mut SliceSender,
    deadline: Instant,
    last_capture_ts_us: u64,
) -> bool {
    let mut last_repair = Instant::now();
    loop {
        if !shared.running() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        if now >= last_repair + REPAIR_SPACING {
            if let Ok(mut q) = shared.screen_requests.lock() {
                q.drain_into(planner);
            }
            if let Some(plan) = planner.repair(now) {
                last_repair = now;
                sender.send(&plan, planner.picture(), last_capture_ts_us, false, REPAIR_SPACING);
                continue;
            }
        }
        std::thread::sleep((deadline - now).min(REQUEST_POLL));
    }
}

/// The share thread; idle while nothing is shared.
pub(crate) fn share_thread(shared: Arc<EngineShared>, socket: UdpSocket, internal: mpsc::Sender<Internal>) {
    let counters = &shared.screen_out;
    let mut source: Option<Box<dyn VideoSource>> = None;
    let mut planner = ScreenSender::new(ScreenSenderConfig::default());
    let mut sender = SliceSender {
        shared: shared.clone(),
        socket,
        coder: ScreenEncoder::new(),
        slices: Vec::new(),
        datagram: [0u8; MAX_DATAGRAM_LEN],
        seq: 0,
        frame_id: 0,
    };
    let mut encoder = VideoEncoder::new();
    let mut frame = RgbFrame::default();
    let mut large_changes_in_a_row = 0u32;
    let mut last_capture_ts_us = 0u64;
    let mut next = Instant::now();
    let mut health = CaptureHealth::default();

    while shared.running() {
        if let Some(choice) = take_switch(&shared.session.switches.screen) {
            source = None;
            match open_screen(&choice) {
                Ok(s) => {
                    if let Ok(mut d) = counters.source.lock() {
                        *d = s.describe();
                    }
                    source = Some(s);
                    health = CaptureHealth::default();
                    // Receivers start over with a full update.
                    planner = ScreenSender::new(ScreenSenderConfig::default());
                    next = Instant::now();
                }
                Err(e) => share_failed(&shared, &internal, e.to_string()),
            }
        }
        let presenting = shared.session.presenting.load(Ordering::Relaxed);
        let Some(src) = source.as_mut().filter(|_| presenting) else {
            if !presenting {
                source = None;
            }
            counters.active.store(false, Ordering::Relaxed);
            std::thread::sleep(IDLE_POLL);
            continue;
        };
        counters.active.store(true, Ordering::Relaxed);
        let setting = shared.screen_setting();
        let interval = Duration::from_secs(1) / u32::from(setting.fps.max(1));
        if !wait_repairing(&shared, &mut planner, &mut sender, next, last_capture_ts_us) {
            break;
        }
        let now = Instant::now();
        next += interval;
        if next + interval < now {
            next = now + interval;
        }
        if let Err(e) = src.next_frame(&mut frame) {
            if health.failed(now, &e) {
                source = None;
                share_failed(&shared, &internal, e.to_string());
            }
            continue;
        }
        health.captured();
        let capture_ts_us = if frame.capture_ts_us > 0 { frame.capture_ts_us } else { now_us() };
        let Ok((width, height, pixels)) = encoder.scale_to_fit(&frame, setting.width, setting.height) else { continue };
        if let Ok(mut q) = shared.screen_requests.lock() {
            q.drain_into(&mut planner);
        }
        let Some(plan) = planner.plan(now, pixels, u32::from(width), u32::from(height), 3) else {
            // Nothing changed and no refresh band was due.
            if let Ok(grid) = TileGrid::new(u32::from(width), u32::from(height)) {
                counters.record_capture(grid.tile_count(), 0);
            }
            continue;
        };
        last_capture_ts_us = capture_ts_us;
        large_changes_in_a_row =
            if plan.changed_fraction() > VIDEO_MODE_FRACTION { large_changes_in_a_row + 1 } else { 0 };
        let video_mode = large_changes_in_a_row >= VIDEO_MODE_AFTER;
        sender.send(&plan, pixels, capture_ts_us, video_mode, interval / PACING_FRACTION);
    }
    counters.active.store(false, Ordering::Relaxed);
}

/// Tiles received but not drawn (their slice did not decode, or the queue to the decode worker
/// was full), per sharer, for the receive core to count as stale again. Bounded: past
/// [`MAX_LOST_TILES`] a sharer's whole picture is reported instead.
#[derive(Debug, Default)]
pub(crate) struct LostTiles {
    by_sender: std::collections::BTreeMap<u32, Vec<u32>>,
}

/// Lost tiles remembered per sharer before the whole picture is reported instead.
const MAX_LOST_TILES: usize = 36_000;

impl LostTiles {
    pub(crate) fn add(&mut self, sender: u32, tiles: &[u32]) {
        let lost = self.by_sender.entry(sender).or_default();
        if lost.len() + tiles.len() <= MAX_LOST_TILES {
            lost.extend_from_slice(tiles);
        } else {
            lost.clear();
            lost.extend(0..MAX_LOST_TILES as u32);
        }
    }

    pub(crate) fn take(&mut self) -> std::collections::BTreeMap<u32, Vec<u32>> {
        std::mem::take(&mut self.by_sender)
    }
}

/// One received slice for the composer, opened and checked by the receive core.
#[derive(Debug, Clone)]
pub(crate) struct SliceJob {
    pub grid: TileGrid,
    /// The picture's size changed: start a new canvas.
    pub reset: bool,
    pub frame_id: u32,
    pub capture_ts_us: u64,
    /// Its tiles, in atlas order.
    pub tiles: Vec<u32>,
    pub jpeg: Vec<u8>,
    /// It ends its update: the canvas is worth showing afterwards.
    pub ends_update: bool,
    /// The receiver has had every tile at least once (else the canvas is not shown yet).
    pub has_picture: bool,
}

/// One sharer's canvas.
#[derive(Debug, Default)]
struct Canvas {
    grid: Option<TileGrid>,
    rgba: Vec<u8>,
    /// Updates applied since the canvas was last shown.
    dirty: bool,
    last_capture_ts_us: u64,
    last_frame_id: u32,
    show: bool,
}

/// Puts slices on the canvas of their sharer, for the decode worker.
#[derive(Debug)]
pub(crate) struct Composer {
    decoder: VideoDecoder,
    atlas: DecodedFrame,
    canvases: std::collections::BTreeMap<u32, Canvas>,
}

impl Default for Composer {
    fn default() -> Self {
        Self {
            decoder: VideoDecoder::with_limits(MAX_ATLAS_WIDTH, MAX_ATLAS_HEIGHT),
            atlas: DecodedFrame::default(),
            canvases: std::collections::BTreeMap::new(),
        }
    }
}

impl Composer {
    /// Decodes a slice and copies its tiles to the sharer's canvas. An atlas that does not
    /// decode, or not to the size its tiles need, is an error (its tiles are left as they
    /// were).
    pub(crate) fn apply(&mut self, sender: u32, job: &SliceJob) -> Result<(), String> {
        let canvas = self.canvases.entry(sender).or_default();
        if job.reset || canvas.grid != Some(job.grid) {
            canvas.grid = Some(job.grid);
            canvas.rgba = vec![0; job.grid.width as usize * job.grid.height as usize * 4];
            canvas.show = false;
        }
        self.decoder.decode(&job.jpeg, &mut self.atlas).map_err(|e| e.to_string())?;
        let (aw, ah) = job.grid.atlas_size(job.tiles.len() as u32);
        if (self.atlas.width, self.atlas.height) != (aw, ah) {
            return Err(format!("atlas is {}x{}, its tiles need {aw}x{ah}", self.atlas.width, self.atlas.height));
        }
        protocol::screen::blit_tiles(
            &self.atlas.rgba,
            aw,
            ah,
            4,
            &job.grid,
            job.tiles.iter().copied(),
            &mut canvas.rgba,
        )
        .map_err(|e| e.to_string())?;
        canvas.dirty = true;
        canvas.last_capture_ts_us = job.capture_ts_us;
        canvas.last_frame_id = job.frame_id;
        canvas.show |= job.has_picture;
        Ok(())
    }

    /// The canvas of `sender` as a frame, if it changed since last taken, ends an update
    /// (or `force`) and has been whole once.
    pub(crate) fn take_frame(&mut self, sender: u32, ends_update: bool) -> Option<VideoFrame> {
        let canvas = self.canvases.get_mut(&sender)?;
        let grid = canvas.grid?;
        if !canvas.dirty || !canvas.show || !ends_update {
            return None;
        }
        canvas.dirty = false;
        Some(VideoFrame {
            source: FrameSource::Screen(sender),
            frame_id: canvas.last_frame_id,
            width: grid.width,
            height: grid.height,
            capture_ts_us: canvas.last_capture_ts_us,
            format: PixelFormat::Rgba,
            pixels: Bytes::copy_from_slice(&canvas.rgba),
        })
    }

    /// The sharer stopped or left.
    pub(crate) fn forget(&mut self, sender: u32) {
        self.canvases.remove(&sender);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_capture_failing_for_a_moment_goes_on_and_a_closed_window_ends_the_share() {
        let t0 = Instant::now();
        let flaky = MediaError::Device("Connection error".into());
        let mut health = CaptureHealth::default();
        assert!(!health.failed(t0, &flaky));
        assert!(!health.failed(t0 + Duration::from_secs(2), &flaky));
        health.captured();
        assert!(!health.failed(t0 + Duration::from_secs(4), &flaky), "the grace starts again after a capture");
        assert!(!health.failed(t0 + Duration::from_millis(6_900), &flaky));
        assert!(health.failed(t0 + Duration::from_secs(7), &flaky), "3 s of failures end it");
        let closed = MediaError::NoDevice("the shared window was closed".into());
        assert!(CaptureHealth::default().failed(t0, &closed));
    }
    use crate::media::SyntheticSlides;
    use protocol::screen::ScreenSlice;

    /// Slides through the real coding path: plan, [`ScreenEncoder`] slices, decode and
    /// compose. The composed picture is the slide within JPEG error, after the first (full)
    /// update, after a typed character, and after a new slide coded as video.
    #[test]
    fn composed_slides_equal_the_source_within_jpeg_error() {
        let mut slides = SyntheticSlides::new();
        let mut frame = RgbFrame::default();
        let mut planner = ScreenSender::new(ScreenSenderConfig::default());
        let mut coder = ScreenEncoder::new();
        let mut composer = Composer::default();
        let t0 = Instant::now();
        let ts = 1_765_000_000_000_000u64;
        let mut frame_id = 0;
        let steps = [
            (0, Some(90), 35.0),
            (crate::media::TYPING_PERIOD_US, Some(90), 35.0),
            (crate::media::SLIDE_PERIOD_US, None, 24.0),
        ];
        for (step, (at, quality, min_db)) in steps.into_iter().enumerate() {
            slides.render(ts + at, &mut frame);
            let plan = planner
                .plan(t0 + Duration::from_millis(100 * step as u64), &frame.data, frame.width, frame.height, 3)
                .unwrap();
            let mut slices = Vec::new();
            coder.encode(&plan, &frame.data, quality, &mut slices);
            let mut shown = None;
            for (i, bytes) in slices.iter().enumerate() {
                let slice = ScreenSlice::decode(bytes, &plan.grid).unwrap();
                let job = SliceJob {
                    grid: plan.grid,
                    reset: step == 0 && i == 0,
                    frame_id,
                    capture_ts_us: frame.capture_ts_us,
                    tiles: slice.tiles().collect(),
                    jpeg: slice.jpeg.to_vec(),
                    ends_update: i + 1 == slices.len(),
                    has_picture: true,
                };
                frame_id += 1;
                composer.apply(7, &job).unwrap();
                shown = composer.take_frame(7, job.ends_update).or(shown);
            }
            let shown = shown.expect("the update ends with a picture");
            assert_eq!((shown.width, shown.height), (1920, 1080));
            let db = crate::media::psnr_rgb_rgba(&frame.data, &shown.pixels);
            assert!(db >= min_db, "step {step}: PSNR {db:.1} dB");
        }
    }
}
