//! What a screen share captures: a whole screen or one window through `xcap`, or synthetic
//! slides for bots and tests.
//!
//! `xcap` is the maintained cross-platform capture crate: X11 (XCB) and Wayland (the desktop
//! portal through PipeWire, or wlroots' screencopy) on Linux, Windows Graphics Capture / GDI
//! on Windows, ScreenCaptureKit / CoreGraphics on macOS, behind one `Monitor` / `Window` API.
//! (`scap` covers fewer platforms' windows and needs a running portal session even on X11.)
//! On an X11 session the captures themselves go through [`super::x11_capture`] (one
//! long-lived connection; `xcap` opens four a capture and some fail under load), `xcap`
//! still listing the screens and windows. A capture that fails (no display, a Wayland
//! compositor without a portal, a window that closed) is a [`MediaError`] saying so; the
//! share then stops.
//!
//! [`SyntheticSlides`] draws 1920 × 1080 "slides": a title bar, bullet lines of 12-pixel glyphs
//! (text-like detail) and on every other slide a code block, a new slide every
//! [`SLIDE_PERIOD_US`], and a line that is typed into,
//! a character every [`TYPING_PERIOD_US`]. The picture is a pure function of the capture
//! time, so a receiver can draw what the sender captured and compare it with what it shows.

use protocol::screen::{encode_slice, pack_tiles, runs_of, RecentSpans, SliceHeader, SliceSizer, TileRun, UpdatePlan};
use serde::{Deserialize, Serialize};

use super::{now_us, MediaError, RgbFrame, VideoEncoder, VideoSource};

/// Bytes of JPEG a slice aims at: five or six fragments.
pub const SLICE_BUDGET: usize = 6_000;
/// ... and on a lossy path: two fragments, so that at 10 % loss a slice is lost one time in
/// five rather than one in two (each slice's JPEG headers then cost about a quarter of it).
pub const LOSSY_SLICE_BUDGET: usize = 2_200;
/// What a slice's JPEG costs besides its tiles: markers, the quantisation tables and the
/// standard Huffman tables (4:4:4).
const JPEG_OVERHEAD: usize = 620;
/// First guess of a tile's JPEG size, before any was measured.
const INITIAL_BYTES_PER_TILE: f64 = 100.0;
/// Quality of updates coded as video (4:2:0): the camera's top rung.
pub const VIDEO_MODE_QUALITY: u8 = 70;

/// Size of the synthetic slides.
pub const SLIDES_WIDTH: u32 = 1920;
pub const SLIDES_HEIGHT: u32 = 1080;
/// A new slide this often (µs).
pub const SLIDE_PERIOD_US: u64 = 6_000_000;
/// One more character typed this often (µs).
pub const TYPING_PERIOD_US: u64 = 150_000;
/// Glyph cell: 6 × 10 pixels of ink in a 7 × 16 advance (about 12-pixel text).
const GLYPH_W: u32 = 6;
const GLYPH_H: u32 = 10;
const ADVANCE_X: u32 = 7;
const LINE_H: u32 = 16;
const MARGIN: u32 = 64;
const BODY_TOP: u32 = 150;
/// Where the typed line is, below the body.
const TYPED_TOP: u32 = 1000;

/// What to share.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum ScreenChoice {
    /// [`SyntheticSlides`].
    Synthetic,
    /// A whole screen by its id ([`list_screen_sources`]); `None`: the primary one.
    Monitor(Option<u32>),
    /// One window by its id ([`list_screen_sources`]).
    Window(u32),
}

/// A screen or window that can be shared, for the picker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScreenSourceInfo {
    pub choice: ScreenChoice,
    /// The screen's or window's name (a window's title, with its application's name).
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// A small JPEG of what it shows now (at most [`THUMBNAIL_WIDTH`] wide), if it could be
    /// captured.
    pub thumbnail_jpeg: Option<Vec<u8>>,
}

/// Width of the picker's thumbnails.
pub const THUMBNAIL_WIDTH: u16 = 320;

/// The screens and windows there are to share, with thumbnails. Windows are listed only
/// where the platform lets them be (on X11 that takes a window manager); screens not at all
/// is an error (no display, or a session `xcap` cannot capture).
pub fn list_screen_sources() -> Result<Vec<ScreenSourceInfo>, MediaError> {
    let monitors = xcap::Monitor::all().map_err(unsupported)?;
    let mut sources = Vec::new();
    for monitor in monitors {
        let (Ok(id), Ok(width), Ok(height)) = (monitor.id(), monitor.width(), monitor.height()) else { continue };
        let name = monitor.friendly_name().or_else(|_| monitor.name()).unwrap_or_else(|_| format!("Screen {id}"));
        let thumbnail_jpeg = monitor.capture_image().ok().and_then(|image| thumbnail(&image));
        sources.push(ScreenSourceInfo { choice: ScreenChoice::Monitor(Some(id)), name, width, height, thumbnail_jpeg });
    }
    if sources.is_empty() {
        return Err(MediaError::NoDevice("no screen to share".to_string()));
    }
    // Without a window manager (X11 under Xvfb) there is no window list: screens only.
    for window in xcap::Window::all().unwrap_or_default() {
        if window.is_minimized().unwrap_or(true) {
            continue;
        }
        let (Ok(id), Ok(width), Ok(height)) = (window.id(), window.width(), window.height()) else { continue };
        if width < 32 || height < 32 {
            continue;
        }
        let title = window.title().unwrap_or_default();
        let app = window.app_name().unwrap_or_default();
        let name = match (title.is_empty(), app.is_empty()) {
            (false, false) if title != app => format!("{title} — {app}"),
            (false, _) => title,
            (true, false) => app,
            (true, true) => format!("Window {id}"),
        };
        let thumbnail_jpeg = window.capture_image().ok().and_then(|image| thumbnail(&image));
        sources.push(ScreenSourceInfo { choice: ScreenChoice::Window(id), name, width, height, thumbnail_jpeg });
    }
    Ok(sources)
}

/// Opens what `choice` names.
pub fn open_screen(choice: &ScreenChoice) -> Result<Box<dyn VideoSource>, MediaError> {
    match choice {
        ScreenChoice::Synthetic => Ok(Box::new(SyntheticSlides::new())),
        ScreenChoice::Monitor(id) => {
            let monitors = xcap::Monitor::all().map_err(unsupported)?;
            let monitor = match id {
                Some(id) => monitors.into_iter().find(|m| m.id().ok() == Some(*id)),
                None => {
                    let primary = monitors.iter().position(|m| m.is_primary().unwrap_or(false)).unwrap_or(0);
                    monitors.into_iter().nth(primary)
                }
            };
            let monitor = monitor.ok_or_else(|| MediaError::NoDevice("that screen is not connected".to_string()))?;
            let name = monitor.name().unwrap_or_else(|_| "screen".to_string());
            #[cfg(all(target_os = "linux", not(target_env = "ohos")))]
            if let Some(id) = monitor.id().ok().filter(|_| super::x11_capture::is_x11_session()) {
                if let Some(source) = x11_source(super::x11_capture::X11Target::Monitor(id), &name)? {
                    return Ok(source);
                }
            }
            Ok(Box::new(XcapSource { target: XcapTarget::Monitor(monitor), name }))
        }
        ScreenChoice::Window(id) => {
            let window = xcap::Window::all()
                .map_err(unsupported)?
                .into_iter()
                .find(|w| w.id().ok() == Some(*id))
                .ok_or_else(|| MediaError::NoDevice("that window is closed".to_string()))?;
            let name = window.title().unwrap_or_else(|_| "window".to_string());
            #[cfg(all(target_os = "linux", not(target_env = "ohos")))]
            if super::x11_capture::is_x11_session() {
                if let Some(source) = x11_source(super::x11_capture::X11Target::Window(*id), &name)? {
                    return Ok(source);
                }
            }
            Ok(Box::new(XcapSource { target: XcapTarget::Window(window, *id), name }))
        }
    }
}

/// `target` captured through [`super::x11_capture`]; `None` where that cannot capture this
/// display (a colour depth other than 24 bits, no RandR) and `xcap` is to try instead. A
/// screen or window that is not there is an error.
#[cfg(all(target_os = "linux", not(target_env = "ohos")))]
fn x11_source(target: super::x11_capture::X11Target, name: &str) -> Result<Option<Box<dyn VideoSource>>, MediaError> {
    match super::x11_capture::X11Capture::open(None, target, name) {
        Ok(capture) => Ok(Some(Box::new(capture))),
        Err(e @ MediaError::NoDevice(_)) => Err(e),
        Err(e) => {
            tracing::info!("capturing through xcap instead: {e}");
            Ok(None)
        }
    }
}

fn unsupported(e: xcap::XCapError) -> MediaError {
    MediaError::Device(format!("screen capture is not supported on this session ({e})"))
}

/// A thumbnail of a captured RGBA image, as a JPEG.
fn thumbnail(image: &xcap::image::RgbaImage) -> Option<Vec<u8>> {
    let mut frame = RgbFrame::default();
    rgba_to_frame(image.as_raw(), image.width(), image.height(), &mut frame);
    let mut encoder = super::VideoEncoder::new();
    let (w, h, pixels) = encoder.scale_to_fit(&frame, THUMBNAIL_WIDTH, THUMBNAIL_WIDTH).ok()?;
    let mut jpeg = Vec::new();
    super::VideoEncoder::encode_rgb(pixels, w, h, 70, false, &mut jpeg).ok()?;
    Some(jpeg)
}

fn rgba_to_frame(rgba: &[u8], width: u32, height: u32, out: &mut RgbFrame) {
    out.width = width;
    out.height = height;
    out.data.clear();
    out.data.reserve(width as usize * height as usize * 3);
    for px in rgba.chunks_exact(4) {
        out.data.extend_from_slice(&px[..3]);
    }
    out.capture_ts_us = now_us();
}

enum XcapTarget {
    Monitor(xcap::Monitor),
    /// The window and its id, to tell "closed" from a failed capture.
    Window(xcap::Window, u32),
}

/// A screen or window captured with `xcap`, one picture per call.
struct XcapSource {
    target: XcapTarget,
    name: String,
}

impl VideoSource for XcapSource {
    fn next_frame(&mut self, out: &mut RgbFrame) -> Result<(), MediaError> {
        let image = match &self.target {
            XcapTarget::Monitor(m) => m.capture_image(),
            XcapTarget::Window(w, id) => {
                let open = xcap::Window::all().map(|all| all.iter().any(|w| w.id().ok() == Some(*id))).unwrap_or(true);
                if !open {
                    return Err(MediaError::NoDevice("the shared window was closed".to_string()));
                }
                w.capture_image()
            }
        }
        .map_err(|e| MediaError::Device(format!("screen capture failed: {e}")))?;
        rgba_to_frame(image.as_raw(), image.width(), image.height(), out);
        Ok(())
    }

    fn describe(&self) -> String {
        match self.target {
            XcapTarget::Monitor(_) => format!("screen {}", self.name),
            XcapTarget::Window(..) => format!("window {}", self.name),
        }
    }
}

/// Codes screen updates into slices (the plaintext the share thread seals and sends): each
/// slice's tiles packed into an atlas and compressed to one JPEG, its header naming the spans
/// of the slices before it. Keeps its buffers and its estimate of a tile's size between
/// updates.
#[derive(Debug)]
pub struct ScreenEncoder {
    sizer: SliceSizer,
    recent: RecentSpans,
    atlas: Vec<u8>,
    jpeg: Vec<u8>,
}

impl Default for ScreenEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ScreenEncoder {
    pub fn new() -> Self {
        Self {
            sizer: SliceSizer::new(SLICE_BUDGET, JPEG_OVERHEAD, INITIAL_BYTES_PER_TILE),
            recent: RecentSpans::default(),
            atlas: Vec::new(),
            jpeg: Vec::new(),
        }
    }

    /// Cuts small slices ([`LOSSY_SLICE_BUDGET`]) while the path loses packets.
    pub fn set_lossy(&mut self, lossy: bool) {
        self.sizer.set_budget(if lossy { LOSSY_SLICE_BUDGET } else { SLICE_BUDGET });
    }

    /// Codes `plan`'s tiles of `pixels` (RGB, the plan's grid) into slices appended to `out`.
    /// `quality`: the JPEG quality with full-resolution colour (4:4:4), or `None` for video
    /// ([`VIDEO_MODE_QUALITY`], 4:2:0).
    pub fn encode(&mut self, plan: &UpdatePlan, pixels: &[u8], quality: Option<u8>, out: &mut Vec<Vec<u8>>) {
        let (quality, full_chroma) = match quality {
            Some(q) => (q, true),
            None => (VIDEO_MODE_QUALITY, false),
        };
        // Slices are cut as they are coded, each from the size the previous ones came out
        // at, so the first slices of a picture already tell how big its tiles are.
        let mut parts: Vec<(Vec<TileRun>, Vec<u8>)> = Vec::new();
        let mut start = 0;
        // A slice also ends where the next tile is more than two rows of tiles away: a
        // receiver that loses a slice counts its whole span as stale, so spans stay tight (a
        // typed character and the refresh band far below it go in two slices).
        let max_gap = 2 * plan.grid.cols;
        while start < plan.tiles.len() && parts.len() < usize::from(u16::MAX) {
            let most = self.sizer.tiles_per_slice().min(plan.tiles.len() - start);
            let mut n = 1;
            while n < most && plan.tiles[start + n] - plan.tiles[start + n - 1] <= max_gap {
                n += 1;
            }
            let tiles = &plan.tiles[start..start + n];
            start += n;
            let Ok((aw, ah)) = pack_tiles(pixels, 3, &plan.grid, tiles, &mut self.atlas) else { continue };
            if let Err(e) =
                VideoEncoder::encode_rgb(&self.atlas, aw as u16, ah as u16, quality, full_chroma, &mut self.jpeg)
            {
                tracing::warn!("screen slice encode failed: {e}");
                continue;
            }
            self.sizer.on_encoded(tiles.len(), self.jpeg.len());
            parts.push((runs_of(tiles), self.jpeg.clone()));
        }
        let slice_count = parts.len() as u16;
        for (index, (runs, jpeg)) in parts.iter().enumerate() {
            if plan.full && index == 0 {
                // A full update starts the picture over (perhaps at a new size).
                self.recent.clear();
            }
            let header = SliceHeader {
                full: plan.full,
                update_id: plan.update_id,
                slice_index: index as u16,
                slice_count,
                recent: self.recent.current(),
            };
            let mut slice = Vec::with_capacity(jpeg.len() + 64);
            encode_slice(&header, runs, jpeg, &mut slice);
            self.recent.sent(runs);
            out.push(slice);
        }
    }
}

/// PSNR of an RGBA picture (4 bytes a pixel) against the RGB picture (3 bytes) it should be,
/// dB over the colour channels; 99 for identical pictures. How the tests, the bot's
/// `--screen-check` and the bench compare a received screen with the captured one.
pub fn psnr_rgb_rgba(rgb: &[u8], rgba: &[u8]) -> f64 {
    let (mut sum, mut n) = (0u64, 0u64);
    for (a, b) in rgb.chunks_exact(3).zip(rgba.chunks_exact(4)) {
        for c in 0..3 {
            let d = i64::from(a[c]) - i64::from(b[c]);
            sum += (d * d) as u64;
        }
        n += 3;
    }
    if sum == 0 || n == 0 {
        return 99.0;
    }
    10.0 * (255.0 * 255.0 * n as f64 / sum as f64).log10()
}

/// Synthetic slides; see the module docs.
#[derive(Debug, Default)]
pub struct SyntheticSlides {
    /// The last slide drawn, without its typed line: (slide number, pixels).
    cached: Option<(u64, Vec<u8>)>,
}

impl SyntheticSlides {
    pub fn new() -> Self {
        Self::default()
    }

    /// Draws the picture captured at `capture_ts_us` into `out`.
    pub fn render(&mut self, capture_ts_us: u64, out: &mut RgbFrame) {
        let slide = capture_ts_us / SLIDE_PERIOD_US;
        let typed = ((capture_ts_us % SLIDE_PERIOD_US) / TYPING_PERIOD_US) as u32;
        if self.cached.as_ref().is_none_or(|(n, _)| *n != slide) {
            self.cached = Some((slide, draw_slide(slide)));
        }
        let Some((_, base)) = &self.cached else { return };
        out.width = SLIDES_WIDTH;
        out.height = SLIDES_HEIGHT;
        out.data.clear();
        out.data.extend_from_slice(base);
        out.capture_ts_us = capture_ts_us;
        for i in 0..typed {
            let x = MARGIN + i * ADVANCE_X;
            if x + GLYPH_W > SLIDES_WIDTH - MARGIN {
                break;
            }
            draw_glyph(&mut out.data, x, TYPED_TOP, glyph_bits(slide, 999, i), [20, 20, 120]);
        }
    }
}

impl VideoSource for SyntheticSlides {
    fn next_frame(&mut self, out: &mut RgbFrame) -> Result<(), MediaError> {
        self.render(now_us(), out);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("synthetic slides {SLIDES_WIDTH}x{SLIDES_HEIGHT}")
    }
}

/// A 64-bit mix (SplitMix64's finaliser), for deterministic "text".
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// The 6 × 10 ink pattern of character `column` of line `line` on slide `slide`.
fn glyph_bits(slide: u64, line: u32, column: u32) -> u64 {
    mix(slide.wrapping_mul(1_000_003) ^ (u64::from(line) << 20) ^ u64::from(column))
}

fn draw_glyph(pixels: &mut [u8], x: u32, y: u32, bits: u64, ink: [u8; 3]) {
    for row in 0..GLYPH_H {
        for col in 0..GLYPH_W {
            if bits >> (row * GLYPH_W + col) & 1 == 1 {
                let i = ((y + row) * SLIDES_WIDTH + x + col) as usize * 3;
                pixels[i..i + 3].copy_from_slice(&ink);
            }
        }
    }
}

fn fill(pixels: &mut [u8], x: u32, y: u32, w: u32, h: u32, colour: [u8; 3]) {
    for row in y..y + h {
        let start = (row * SLIDES_WIDTH + x) as usize * 3;
        for px in pixels[start..start + w as usize * 3].chunks_exact_mut(3) {
            px.copy_from_slice(&colour);
        }
    }
}

/// One slide as slides are: a background, a title bar with a title, and a dozen or so bullet
/// lines of varied lengths and indents, with a code block in every other slide.
fn draw_slide(slide: u64) -> Vec<u8> {
    const BACKGROUNDS: [[u8; 3]; 4] = [[250, 250, 247], [236, 244, 252], [252, 246, 232], [240, 250, 240]];
    let mut pixels = vec![0u8; (SLIDES_WIDTH * SLIDES_HEIGHT * 3) as usize];
    fill(&mut pixels, 0, 0, SLIDES_WIDTH, SLIDES_HEIGHT, BACKGROUNDS[(slide % 4) as usize]);
    fill(&mut pixels, 0, 0, SLIDES_WIDTH, 96, [32, 56, 100]);
    for column in 0..40 {
        draw_glyph(&mut pixels, MARGIN + column * 2 * ADVANCE_X, 40, glyph_bits(slide, 0, column), [255, 255, 255]);
    }
    // Bullets 2.5 lines apart; the second half of an odd slide is a code block, tighter.
    let mut y = BODY_TOP;
    let mut line = 0u32;
    while y + LINE_H < TYPED_TOP - LINE_H {
        let code = slide % 2 == 1 && y > 560;
        let seed = mix(slide ^ u64::from(line) << 32);
        let indent = if code { 2 + (seed % 4) as u32 * 2 } else { (seed % 2) as u32 * 4 };
        let length = if code { 10 + (seed % 50) as u32 } else { 30 + (seed % 110) as u32 };
        let ink = if code {
            [20, 90, 40]
        } else if line.is_multiple_of(5) {
            [150, 30, 30]
        } else {
            [30, 30, 30]
        };
        if !code {
            fill(&mut pixels, MARGIN, y + 3, 5, 5, [60, 60, 60]);
        }
        for column in indent..indent + length {
            // A space every few characters, like words.
            if mix(seed ^ u64::from(column)).is_multiple_of(6) {
                continue;
            }
            let x = MARGIN + 16 + column * ADVANCE_X;
            if x + GLYPH_W > SLIDES_WIDTH - MARGIN {
                break;
            }
            draw_glyph(&mut pixels, x, y, glyph_bits(slide, line + 1, column), ink);
        }
        y += if code { LINE_H } else { LINE_H * 5 / 2 };
        line += 1;
    }
    pixels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slides_are_a_function_of_the_capture_time() {
        let (mut a, mut b) = (SyntheticSlides::new(), SyntheticSlides::new());
        let (mut fa, mut fb) = (RgbFrame::default(), RgbFrame::default());
        let t = 1_765_000_000_000_000;
        a.render(t, &mut fa);
        b.render(t, &mut fb);
        assert_eq!((fa.width, fa.height), (1920, 1080));
        assert!(fa.data == fb.data, "two renderers draw the same picture");
        // One character later, only the typed line changed; a slide later, most of it.
        b.render(t + TYPING_PERIOD_US, &mut fb);
        let differing =
            |x: &RgbFrame, y: &RgbFrame| x.data.chunks(3).zip(y.data.chunks(3)).filter(|(p, q)| p != q).count();
        let typed = differing(&fa, &fb);
        assert!(typed > 0 && typed <= (GLYPH_W * GLYPH_H) as usize, "{typed} pixels");
        b.render(t + SLIDE_PERIOD_US, &mut fb);
        assert!(differing(&fa, &fb) > 20_000);
    }
}

#[cfg(test)]
mod atlas_tests {
    use super::*;
    use crate::media::{DecodedFrame, VideoDecoder};
    use protocol::screen::TileGrid;

    #[test]
    fn small_atlases_decode_to_their_tiles() {
        let mut slides = SyntheticSlides::new();
        let mut frame = RgbFrame::default();
        slides.render(1_765_000_000_000_000, &mut frame);
        let grid = TileGrid::new(1920, 1080).unwrap();
        let mut atlas = Vec::new();
        let mut jpeg = Vec::new();
        let mut out = DecodedFrame::default();
        let mut worst = f64::INFINITY;
        for n in 1..40u32 {
            let tiles: Vec<u32> = (240..240 + n).collect();
            let (aw, ah) = protocol::screen::pack_tiles(&frame.data, 3, &grid, &tiles, &mut atlas).unwrap();
            for (q, full) in [(90, true), (75, true), (70, false)] {
                VideoEncoder::encode_rgb(&atlas, aw as u16, ah as u16, q, full, &mut jpeg).unwrap();
                VideoDecoder::with_limits(4000, 4000).decode(&jpeg, &mut out).unwrap();
                let db = psnr_rgb_rgba(&atlas, &out.rgba);
                worst = worst.min(db);
                assert!(db > 25.0, "{n} tiles, q{q}, 4:4:4 {full}: {db:.1} dB ({aw}x{ah})");
            }
        }
        // Glyph tiles at q70 4:2:0 are the worst case; a decoder fed a corrupt Huffman table
        // comes out near 3 dB.
        assert!(worst > 28.0, "worst {worst:.1} dB");
    }
}
