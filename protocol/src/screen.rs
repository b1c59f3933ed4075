//! Screen sharing: what a screen update carries, which tiles it sends, and when a receiver asks
//! for a whole picture. Sans-IO: pixels and the time come in, tile lists and decisions go out;
//! the JPEG coding is the client's.
//!
//! A shared screen is mostly still, so the sender does not send pictures but **updates**: the
//! 16×16-pixel tiles that changed since the previous capture ([`ScreenSender::plan`]), plus a
//! thin band of unchanged ones that sweeps the screen every [`ScreenSenderConfig::refresh_period`]
//! (30 s)
//! (so a receiver that missed something is repaired even if it never asks), the tiles
//! receivers asked for in **refresh requests** (they joined late or lost part of an update),
//! or every tile when the picture's size changed (a **full** update).
//!
//! An update is cut into **slices** of a few kilobytes ([`slice_runs`]) so that a lost
//! datagram costs only its slice's tiles, not the update: each slice is one sealed frame on
//! the wire (its own `frame_id`), holding its tiles as runs of tile indices and one JPEG, the
//! **atlas**, in which those tiles sit side by side in reading order ([`pack_tiles`],
//! [`blit_tiles`]). Tiles are multiples of the JPEG's 16-pixel blocks, so no tile's pixels
//! bleed into its neighbour's in the atlas.
//!
//! The receiver keeps a canvas per sender and copies each slice's tiles in. [`ScreenReceiver`]
//! tracks which tiles may be out of date (**stale**): all of them until they first arrive,
//! and, after a gap in frame ids (lost slices), the spans the lost slices covered, which the
//! next slice repeats for the four slices before it.
//! While any is stale it asks the sender for those tiles (a refresh request naming up to
//! [`MAX_REFRESH_RANGES`] tile ranges) at most once per [`REFRESH_RETRY`]; the sender adds
//! them to its next update. A tile already asked for is not asked again until its repair
//! has had time to come back ([`repair_wait`], from the receiver's round trip) unless the
//! next slices say the repair itself was lost.
//!
//! Repairs go to every receiver (the relay forwards one stream), so one receiver on a bad
//! path could make everyone download the screen again and again. The sender therefore
//! grants requested tiles from a budget of [`ScreenSenderConfig::repair_screens_per_second`]
//! (one screen's worth of tiles a second, at most one screen banked); tiles over budget wait,
//! oldest position first, and tiles the update sends anyway cost nothing.
//!
//! Wire layout of a slice (the plaintext of the sealed frame), big-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | flags: bit 0 = part of a full update (every tile) |
//! | 1 | 4 | update id, +1 per update |
//! | 5 | 2 | slice index, `0 .. slice count` |
//! | 7 | 2 | slice count of the update, ≥ 1 |
//! | 9 | 1 | tile size in pixels (16) |
//! | 10 | 16 | the spans of the 4 slices before this one on the stream, newest first: first tile (u16), end (u16, exclusive); 0, 0 for none |
//! | 26 | 2 | run count, ≥ 1 |
//! | 28 | 4 × runs | runs: first tile index (u16), tile count (u16) |
//! | … | rest | the atlas JPEG |

use std::time::{Duration, Instant};

use thiserror::Error;

/// Side of a tile in pixels.
pub const TILE_SIZE: u32 = 16;
/// Largest screen picture: a 4K screen is 240 × 135 = 32,400 tiles, within a u16 index.
pub const MAX_SCREEN_WIDTH: u32 = 3840;
pub const MAX_SCREEN_HEIGHT: u32 = 2160;
/// Bytes of a slice before its runs.
pub const SLICE_HEADER_LEN: usize = 28;
/// Slices before it whose spans a slice repeats.
pub const RECENT_SPANS: usize = 4;
/// Bytes of one run.
pub const RUN_LEN: usize = 4;
/// Flag bit: the slice belongs to a full update.
const FLAG_FULL: u8 = 1;
/// A receiver with stale tiles sends refresh requests at most this often.
pub const REFRESH_RETRY: Duration = Duration::from_millis(200);
/// How long a repair may take before the tiles are asked for again when the round trip is
/// not known yet.
pub const REPAIR_WAIT_UNKNOWN_RTT: Duration = Duration::from_millis(400);

/// How long a receiver waits for the tiles it asked for before asking again, given its
/// smoothed round trip to the relay: the request and the repair each cross the receiver's
/// leg and the sender's (which the receiver cannot see; taken as equal to its own), plus
/// 100 ms for the sender's capture gap and pacing. Never less than [`REFRESH_RETRY`].
pub fn repair_wait(rtt: Option<Duration>) -> Duration {
    rtt.map_or(REPAIR_WAIT_UNKNOWN_RTT, |rtt| rtt * 2 + Duration::from_millis(100)).max(REFRESH_RETRY)
}

/// Why a slice is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ScreenError {
    #[error("slice shorter than its header and runs")]
    TooShort,
    #[error("unsupported tile size {0}")]
    TileSize(u8),
    #[error("picture size out of range")]
    PictureSize,
    #[error("slice index or count out of range")]
    SliceIndex,
    #[error("runs empty, out of order, overlapping or past the last tile")]
    Runs,
    #[error("no JPEG after the runs")]
    NoImage,
    #[error("atlas smaller than its tiles")]
    AtlasSize,
}

/// The tiles of a picture: `cols × rows`, the last column and row cut by the picture's edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileGrid {
    pub width: u32,
    pub height: u32,
    pub cols: u32,
    pub rows: u32,
}

impl TileGrid {
    /// The grid of a `width × height` picture, or an error if it is empty or too large.
    pub fn new(width: u32, height: u32) -> Result<Self, ScreenError> {
        if width == 0 || height == 0 || width > MAX_SCREEN_WIDTH || height > MAX_SCREEN_HEIGHT {
            return Err(ScreenError::PictureSize);
        }
        Ok(Self { width, height, cols: width.div_ceil(TILE_SIZE), rows: height.div_ceil(TILE_SIZE) })
    }

    pub fn tile_count(&self) -> u32 {
        self.cols * self.rows
    }

    /// Pixel rectangle of tile `index`: x, y, width, height (cut at the picture's edge).
    pub fn tile_rect(&self, index: u32) -> (u32, u32, u32, u32) {
        let x = (index % self.cols) * TILE_SIZE;
        let y = (index / self.cols) * TILE_SIZE;
        (x, y, TILE_SIZE.min(self.width - x), TILE_SIZE.min(self.height - y))
    }

    /// Size of the atlas holding `tiles` tiles: as many columns as the grid has (or fewer,
    /// for fewer tiles), and as many rows as that takes. An atlas of every tile is the
    /// picture itself, padded to whole tiles.
    pub fn atlas_size(&self, tiles: u32) -> (u32, u32) {
        let cols = tiles.clamp(1, self.cols);
        (cols * TILE_SIZE, tiles.div_ceil(cols).max(1) * TILE_SIZE)
    }
}

/// Consecutive tiles, in reading order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileRun {
    pub first: u16,
    pub count: u16,
}

/// The tiles `first .. end` (end exclusive); empty (0, 0) for "no slice".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TileSpan {
    pub first: u16,
    pub end: u16,
}

/// What a slice says about the update it belongs to and the slices before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SliceHeader {
    /// The update covers every tile (a refresh, the first picture, or a new size).
    pub full: bool,
    pub update_id: u32,
    pub slice_index: u16,
    pub slice_count: u16,
    /// The spans of the [`RECENT_SPANS`] slices sent before this one on the stream, newest
    /// first: what a receiver that lost them must count as stale.
    pub recent: [TileSpan; RECENT_SPANS],
}

/// The sender's memory of its last slices' spans, for [`SliceHeader::recent`].
#[derive(Debug, Clone, Default)]
pub struct RecentSpans {
    spans: [TileSpan; RECENT_SPANS],
}

impl RecentSpans {
    /// The spans to put in the next slice's header.
    pub fn current(&self) -> [TileSpan; RECENT_SPANS] {
        self.spans
    }

    /// A slice with these runs went out.
    pub fn sent(&mut self, runs: &[TileRun]) {
        let (Some(first), Some(last)) = (runs.first(), runs.last()) else { return };
        let end = (u32::from(last.first) + u32::from(last.count)).min(u32::from(u16::MAX)) as u16;
        self.spans.rotate_right(1);
        self.spans[0] = TileSpan { first: first.first, end };
    }

    /// The picture changed size: earlier spans mean nothing any more.
    pub fn clear(&mut self) {
        self.spans = Default::default();
    }
}

/// A decoded slice; runs and JPEG borrow from the plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScreenSlice<'a> {
    pub header: SliceHeader,
    runs: &'a [u8],
    pub jpeg: &'a [u8],
}

impl<'a> ScreenSlice<'a> {
    /// Reads a slice of a picture laid out as `grid`, checking every run against it.
    pub fn decode(bytes: &'a [u8], grid: &TileGrid) -> Result<Self, ScreenError> {
        let head = bytes.get(..SLICE_HEADER_LEN).ok_or(ScreenError::TooShort)?;
        let header = SliceHeader {
            full: head[0] & FLAG_FULL != 0,
            update_id: u32::from_be_bytes([head[1], head[2], head[3], head[4]]),
            slice_index: u16::from_be_bytes([head[5], head[6]]),
            slice_count: u16::from_be_bytes([head[7], head[8]]),
            recent: [TileSpan::default(); RECENT_SPANS],
        };
        if u32::from(head[9]) != TILE_SIZE {
            return Err(ScreenError::TileSize(head[9]));
        }
        if header.slice_count == 0 || header.slice_index >= header.slice_count {
            return Err(ScreenError::SliceIndex);
        }
        let mut header = header;
        for (i, span) in header.recent.iter_mut().enumerate() {
            let at = 10 + 4 * i;
            *span = TileSpan {
                first: u16::from_be_bytes([head[at], head[at + 1]]),
                end: u16::from_be_bytes([head[at + 2], head[at + 3]]),
            };
            if span.first > span.end {
                return Err(ScreenError::Runs);
            }
        }
        let run_count = usize::from(u16::from_be_bytes([head[26], head[27]]));
        let runs_end = SLICE_HEADER_LEN + run_count * RUN_LEN;
        let runs = bytes.get(SLICE_HEADER_LEN..runs_end).ok_or(ScreenError::TooShort)?;
        let slice = Self { header, runs, jpeg: &bytes[runs_end..] };
        if run_count == 0 {
            return Err(ScreenError::Runs);
        }
        let mut next_free = 0u32;
        for run in slice.runs() {
            let first = u32::from(run.first);
            if run.count == 0 || first < next_free || first + u32::from(run.count) > grid.tile_count() {
                return Err(ScreenError::Runs);
            }
            next_free = first + u32::from(run.count);
        }
        if slice.jpeg.is_empty() {
            return Err(ScreenError::NoImage);
        }
        Ok(slice)
    }

    pub fn runs(&self) -> impl Iterator<Item = TileRun> + 'a {
        self.runs
            .chunks_exact(RUN_LEN)
            .map(|r| TileRun { first: u16::from_be_bytes([r[0], r[1]]), count: u16::from_be_bytes([r[2], r[3]]) })
    }

    /// The slice's tile indices, in reading order (its atlas order).
    pub fn tiles(&self) -> impl Iterator<Item = u32> + 'a {
        self.runs().flat_map(|r| u32::from(r.first)..u32::from(r.first) + u32::from(r.count))
    }

    pub fn tile_count(&self) -> u32 {
        self.runs().map(|r| u32::from(r.count)).sum()
    }
}

/// Writes a slice into `out` (cleared first).
pub fn encode_slice(header: &SliceHeader, runs: &[TileRun], jpeg: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(if header.full { FLAG_FULL } else { 0 });
    out.extend_from_slice(&header.update_id.to_be_bytes());
    out.extend_from_slice(&header.slice_index.to_be_bytes());
    out.extend_from_slice(&header.slice_count.to_be_bytes());
    out.push(TILE_SIZE as u8);
    for span in &header.recent {
        out.extend_from_slice(&span.first.to_be_bytes());
        out.extend_from_slice(&span.end.to_be_bytes());
    }
    out.extend_from_slice(&(runs.len() as u16).to_be_bytes());
    for run in runs {
        out.extend_from_slice(&run.first.to_be_bytes());
        out.extend_from_slice(&run.count.to_be_bytes());
    }
    out.extend_from_slice(jpeg);
}

/// Copies `tiles` of a picture (`bpp` bytes a pixel, rows without padding) into `atlas`, in
/// order, and returns the atlas's width and height. The part of an edge tile outside the
/// picture repeats the tile's last column and row, so the JPEG sees no hard edge there.
pub fn pack_tiles(
    picture: &[u8],
    bpp: usize,
    grid: &TileGrid,
    tiles: &[u32],
    atlas: &mut Vec<u8>,
) -> Result<(u32, u32), ScreenError> {
    let (aw, ah) = grid.atlas_size(tiles.len() as u32);
    if picture.len() < grid.width as usize * grid.height as usize * bpp {
        return Err(ScreenError::AtlasSize);
    }
    atlas.clear();
    atlas.resize(aw as usize * ah as usize * bpp, 0);
    let atlas_cols = aw / TILE_SIZE;
    let stride = grid.width as usize * bpp;
    let atlas_stride = aw as usize * bpp;
    for (slot, &tile) in tiles.iter().enumerate() {
        let (x, y, w, h) = grid.tile_rect(tile);
        let ax = (slot as u32 % atlas_cols) * TILE_SIZE;
        let ay = (slot as u32 / atlas_cols) * TILE_SIZE;
        for row in 0..TILE_SIZE {
            let src_row = (y + row.min(h - 1)) as usize;
            let src = src_row * stride + x as usize * bpp;
            let dst = (ay + row) as usize * atlas_stride + ax as usize * bpp;
            let width = w as usize * bpp;
            atlas[dst..dst + width].copy_from_slice(&picture[src..src + width]);
            let last = src + width - bpp;
            for col in w..TILE_SIZE {
                let d = dst + col as usize * bpp;
                atlas.copy_within(dst + width - bpp..dst + width, d);
                debug_assert_eq!(&atlas[d..d + bpp], &picture[last..last + bpp]);
            }
        }
    }
    Ok((aw, ah))
}

/// Copies the tiles of a decoded atlas (`aw × ah`, `bpp` bytes a pixel) to their places on
/// `canvas` (the picture of `grid`, same pixel format).
pub fn blit_tiles(
    atlas: &[u8],
    aw: u32,
    ah: u32,
    bpp: usize,
    grid: &TileGrid,
    tiles: impl Iterator<Item = u32>,
    canvas: &mut [u8],
) -> Result<(), ScreenError> {
    let stride = grid.width as usize * bpp;
    let atlas_stride = aw as usize * bpp;
    if canvas.len() < stride * grid.height as usize || atlas.len() < atlas_stride * ah as usize {
        return Err(ScreenError::AtlasSize);
    }
    let atlas_cols = aw / TILE_SIZE;
    let atlas_rows = ah / TILE_SIZE;
    for (slot, tile) in tiles.enumerate() {
        let slot = slot as u32;
        if atlas_cols == 0 || slot / atlas_cols >= atlas_rows {
            return Err(ScreenError::AtlasSize);
        }
        let (x, y, w, h) = grid.tile_rect(tile);
        let ax = (slot % atlas_cols) * TILE_SIZE;
        let ay = (slot / atlas_cols) * TILE_SIZE;
        for row in 0..h {
            let src = (ay + row) as usize * atlas_stride + ax as usize * bpp;
            let dst = (y + row) as usize * stride + x as usize * bpp;
            let width = w as usize * bpp;
            canvas[dst..dst + width].copy_from_slice(&atlas[src..src + width]);
        }
    }
    Ok(())
}

/// Cuts a sorted tile list into slices of at most `per_slice` tiles, each as runs.
pub fn slice_runs(tiles: &[u32], per_slice: usize) -> Vec<Vec<TileRun>> {
    tiles.chunks(per_slice.max(1)).map(runs_of).collect()
}

/// A sorted tile list as runs of consecutive tiles.
pub fn runs_of(tiles: &[u32]) -> Vec<TileRun> {
    let mut runs: Vec<TileRun> = Vec::new();
    for &t in tiles {
        match runs.last_mut() {
            Some(r) if u32::from(r.first) + u32::from(r.count) == t && r.count < u16::MAX => r.count += 1,
            _ => runs.push(TileRun { first: t as u16, count: 1 }),
        }
    }
    runs
}

/// Tuning of [`ScreenSender`].
#[derive(Debug, Clone, PartialEq)]
pub struct ScreenSenderConfig {
    /// The refresh band sweeps every tile once in this long, a second's worth at a time.
    pub refresh_period: Duration,
    /// Requested tiles granted a second, in screens (tile counts of the picture); at most
    /// one screen's worth is banked.
    pub repair_screens_per_second: f64,
}

impl Default for ScreenSenderConfig {
    fn default() -> Self {
        Self { refresh_period: Duration::from_secs(30), repair_screens_per_second: 1.0 }
    }
}

/// Which tiles one capture sends.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdatePlan {
    /// Every tile: the receivers can start over from this update.
    pub full: bool,
    pub update_id: u32,
    /// Tiles to send, sorted.
    pub tiles: Vec<u32>,
    /// Tiles whose pixels changed since the previous capture.
    pub changed: u32,
    pub grid: TileGrid,
}

impl UpdatePlan {
    /// Fraction of the picture that changed, 0.0–1.0.
    pub fn changed_fraction(&self) -> f64 {
        f64::from(self.changed) / f64::from(self.grid.tile_count().max(1))
    }
}

/// The sender's side: compares each capture with the previous one; see the module docs.
#[derive(Debug)]
pub struct ScreenSender {
    config: ScreenSenderConfig,
    grid: Option<TileGrid>,
    /// The previous capture, as sent.
    previous: Vec<u8>,
    bpp: usize,
    next_update: u32,
    /// Next tile of the refresh band, and the fraction of a tile owed to it.
    refresh_cursor: u32,
    refresh_credit: f64,
    last_plan: Option<Instant>,
    /// Tiles receivers asked for and not sent yet (for the current grid).
    requested: Vec<bool>,
    /// Requested tiles that may be sent now (the repair budget), and when it was topped up.
    repair_allowance: f64,
    repair_refilled: Option<Instant>,
    /// Where the next grant starts, so that tiles held back by the budget go first next time.
    repair_cursor: usize,
    /// Requested tiles held back by the budget, over the share (each time one waited).
    pub repairs_deferred: u64,
}

impl ScreenSender {
    pub fn new(config: ScreenSenderConfig) -> Self {
        Self {
            config,
            grid: None,
            previous: Vec::new(),
            bpp: 0,
            next_update: 0,
            refresh_cursor: 0,
            refresh_credit: 0.0,
            last_plan: None,
            requested: Vec::new(),
            repair_allowance: 0.0,
            repair_refilled: None,
            repair_cursor: 0,
            repairs_deferred: 0,
        }
    }

    /// Tops the repair budget up for the time since it last was (a full screen's worth at
    /// the first call).
    fn refill_repairs(&mut self, now: Instant, grid: &TileGrid) {
        let screen = f64::from(grid.tile_count());
        let gained = self.repair_refilled.map_or(screen, |t| {
            now.saturating_duration_since(t).as_secs_f64() * screen * self.config.repair_screens_per_second
        });
        self.repair_allowance = (self.repair_allowance + gained).min(screen);
        self.repair_refilled = Some(now);
    }

    /// Adds the requested tiles to `send` as far as the budget goes: a tile `send` holds
    /// already costs nothing; the others are granted from the cursor on, wrapping, while the
    /// allowance lasts, and the rest stay requested.
    fn grant_requests(&mut self, send: &mut [bool]) {
        let count = send.len().min(self.requested.len());
        if count == 0 {
            return;
        }
        let start = self.repair_cursor % count;
        let mut first_deferred = None;
        for tile in (start..count).chain(0..start) {
            if !self.requested[tile] {
                continue;
            }
            if send[tile] {
                self.requested[tile] = false;
            } else if self.repair_allowance >= 1.0 {
                self.repair_allowance -= 1.0;
                self.requested[tile] = false;
                send[tile] = true;
            } else {
                first_deferred.get_or_insert(tile);
                self.repairs_deferred += 1;
            }
        }
        if let Some(tile) = first_deferred {
            self.repair_cursor = tile;
        }
    }

    /// A receiver asked for these tiles: the next update carries them. Tiles past the
    /// current picture (it was smaller when the receiver asked) are ignored; a request before
    /// the first picture changes nothing, as the first update is full anyway.
    pub fn request_tiles(&mut self, runs: &[TileRun]) {
        for run in runs {
            let from = usize::from(run.first);
            let to = (from + usize::from(run.count)).min(self.requested.len());
            for flag in self.requested.iter_mut().take(to).skip(from) {
                *flag = true;
            }
        }
    }

    /// Plans the update for `picture` (`width × height`, `bpp` bytes a pixel) captured at
    /// `now`, and remembers the picture for the next comparison. `None` if there is nothing
    /// to send (no change, no refresh band due) or the size is out of range.
    pub fn plan(&mut self, now: Instant, picture: &[u8], width: u32, height: u32, bpp: usize) -> Option<UpdatePlan> {
        let grid = TileGrid::new(width, height).ok()?;
        if picture.len() < width as usize * height as usize * bpp {
            return None;
        }
        let picture = &picture[..width as usize * height as usize * bpp];
        let elapsed = self.last_plan.map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        self.last_plan = Some(now);
        let new_size = self.grid != Some(grid) || self.bpp != bpp;
        let count = grid.tile_count() as usize;
        let (changed, mut send) = if new_size {
            self.requested = vec![false; count];
            self.refresh_credit = 0.0;
            self.refresh_cursor = 0;
            self.repair_cursor = 0;
            (grid.tile_count(), vec![true; count])
        } else {
            let send: Vec<bool> = (0..grid.tile_count()).map(|t| self.tile_differs(&grid, picture, t)).collect();
            (send.iter().filter(|c| **c).count() as u32, send)
        };
        // The refresh band: the tiles owed for the time since the last plan, sent once they
        // add up to a second's worth (one slice's JPEG headers a second, not one a capture).
        let period = self.config.refresh_period.as_secs_f64().max(0.001);
        let per_second = f64::from(grid.tile_count()) / period;
        // Capped: after a long stall (a suspended laptop) one sweep is owed, not several.
        self.refresh_credit =
            (self.refresh_credit + per_second * elapsed.as_secs_f64()).min(f64::from(grid.tile_count()));
        let band = if self.refresh_credit >= per_second.min(f64::from(grid.tile_count())) {
            (self.refresh_credit.floor() as u32).min(grid.tile_count())
        } else {
            0
        };
        self.refresh_credit -= f64::from(band);
        for _ in 0..band {
            send[self.refresh_cursor as usize] = true;
            self.refresh_cursor = (self.refresh_cursor + 1) % grid.tile_count();
        }
        self.refill_repairs(now, &grid);
        self.grant_requests(&mut send);
        let tiles = flagged_tiles(&send);
        let full = tiles.len() == count;
        self.grid = Some(grid);
        self.bpp = bpp;
        self.previous.clear();
        self.previous.extend_from_slice(picture);
        if tiles.is_empty() {
            return None;
        }
        let update_id = self.next_update;
        self.next_update = self.next_update.wrapping_add(1);
        Some(UpdatePlan { full, update_id, tiles, changed, grid })
    }

    /// The previous capture (what the last plan was made from), `bpp` bytes a pixel.
    pub fn picture(&self) -> &[u8] {
        &self.previous
    }

    /// An update of the tiles receivers asked for (as far as the repair budget allows at
    /// `now`), from the previous capture: a repair sent without waiting for the next capture.
    /// `None` if nothing was asked for, the budget is spent or there is no picture yet.
    pub fn repair(&mut self, now: Instant) -> Option<UpdatePlan> {
        let grid = self.grid?;
        if !self.requested.contains(&true) {
            return None;
        }
        self.refill_repairs(now, &grid);
        let mut send = vec![false; grid.tile_count() as usize];
        self.grant_requests(&mut send);
        let tiles = flagged_tiles(&send);
        if tiles.is_empty() {
            return None;
        }
        let update_id = self.next_update;
        self.next_update = self.next_update.wrapping_add(1);
        Some(UpdatePlan { full: tiles.len() as u32 == grid.tile_count(), update_id, tiles, changed: 0, grid })
    }

    /// Whether tile `tile` of `picture` differs from the previous capture (same grid).
    fn tile_differs(&self, grid: &TileGrid, picture: &[u8], tile: u32) -> bool {
        let (x, y, w, h) = grid.tile_rect(tile);
        let stride = grid.width as usize * self.bpp;
        (y..y + h).any(|row| {
            let start = row as usize * stride + x as usize * self.bpp;
            let end = start + w as usize * self.bpp;
            picture[start..end] != self.previous[start..end]
        })
    }
}

/// The indices of the tiles flagged in `send`, in order.
fn flagged_tiles(send: &[bool]) -> Vec<u32> {
    send.iter().enumerate().filter(|(_, s)| **s).map(|(t, _)| t as u32).collect()
}

/// Picks how many tiles a slice holds so that it stays near a byte budget, from the sizes the
/// previous slices came out at. A JPEG costs a fixed amount whatever it holds (its headers
/// and tables, [`SliceSizer::new`]'s `overhead`) plus so much per tile: the estimate is of the
/// latter, so small slices are not mistaken for expensive tiles.
#[derive(Debug, Clone)]
pub struct SliceSizer {
    budget: usize,
    overhead: f64,
    /// Smoothed JPEG bytes per tile, headers aside.
    bytes_per_tile: f64,
}

impl SliceSizer {
    /// A sizer aiming at `budget` bytes a slice, of which `overhead` is each JPEG's own,
    /// first guessing `initial_bytes_per_tile`.
    pub fn new(budget: usize, overhead: usize, initial_bytes_per_tile: f64) -> Self {
        Self { budget, overhead: overhead as f64, bytes_per_tile: initial_bytes_per_tile.max(1.0) }
    }

    /// Aims at `budget` bytes a slice from now on.
    pub fn set_budget(&mut self, budget: usize) {
        self.budget = budget;
    }

    pub fn tiles_per_slice(&self) -> usize {
        let for_tiles = (self.budget as f64 - self.overhead).max(self.budget as f64 / 4.0);
        ((for_tiles / self.bytes_per_tile) as usize).max(1)
    }

    /// A slice of `tiles` tiles came out at `bytes`.
    pub fn on_encoded(&mut self, tiles: usize, bytes: usize) {
        if tiles == 0 {
            return;
        }
        let sample = (bytes as f64 - self.overhead).max(tiles as f64) / tiles as f64;
        self.bytes_per_tile = 0.5 * self.bytes_per_tile + 0.5 * sample;
    }
}

/// Most tile ranges one refresh request names.
pub const MAX_REFRESH_RANGES: usize = 32;

/// The receiver's side for one sender's screen; see the module docs.
///
/// Every tile of the canvas is either fresh or **stale**: never received since the picture
/// started (or changed size), or possibly missed. When frame ids skip (slices lost), the next
/// slice's [`SliceHeader::recent`] says which tiles the lost ones covered: those spans turn
/// stale (every tile, if more than [`RECENT_SPANS`] slices in a row were lost). Every tile
/// that arrives is fresh again. While tiles are stale, [`poll_refresh`](Self::poll_refresh) asks
/// the sender for them, at most once per [`REFRESH_RETRY`].
#[derive(Debug, Clone, Default)]
pub struct ScreenReceiver {
    grid: Option<TileGrid>,
    /// Per tile: stale since when (`None`: fresh).
    stale: Vec<Option<Instant>>,
    stale_count: u32,
    /// The newest frame id applied.
    last: Option<u32>,
    last_request: Option<Instant>,
    /// Per tile: when it was last asked for (`None`: not since it last turned stale, or the
    /// slices after its repair said the repair was lost).
    asked: Vec<Option<Instant>>,
    /// Longest time a tile stayed stale once every tile had arrived.
    pub longest_stale: Duration,
    /// Per tile: it has arrived at least once since the picture started.
    received: Vec<bool>,
    never_received: u32,
    pub refreshes_requested: u64,
    /// Slices dropped because they came after a newer one.
    pub late_slices: u64,
}

/// True if serial number `a` is newer than `b`.
fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < u32::MAX / 2
}

impl ScreenReceiver {
    pub fn new() -> Self {
        Self::default()
    }

    /// The canvas's grid, once a slice arrived.
    pub fn grid(&self) -> Option<TileGrid> {
        self.grid
    }

    /// Whether every tile is fresh.
    pub fn is_whole(&self) -> bool {
        self.grid.is_some() && self.stale_count == 0
    }

    /// Whether every tile has arrived at least once (the canvas is worth showing: some tiles
    /// may be out of date, none is blank).
    pub fn has_picture(&self) -> bool {
        self.grid.is_some() && self.never_received == 0
    }

    /// Tiles stale now.
    pub fn stale_tiles(&self) -> u32 {
        self.stale_count
    }

    /// A slice of frame `frame_id` of a `grid`-sized picture arrived at `now`. Returns
    /// `None` if it is to be dropped (older than one already applied), else whether the
    /// canvas must start over at the new size before its tiles are copied in.
    pub fn on_slice(&mut self, now: Instant, frame_id: u32, grid: TileGrid, slice: &ScreenSlice<'_>) -> Option<bool> {
        // A late slice (of the old size, perhaps) must not reset a newer picture.
        if self.last.is_some_and(|last| !is_newer(frame_id, last)) {
            self.late_slices += 1;
            return None;
        }
        let reset = self.grid != Some(grid);
        if reset {
            self.grid = Some(grid);
            self.stale = vec![Some(now); grid.tile_count() as usize];
            self.stale_count = grid.tile_count();
            self.received = vec![false; grid.tile_count() as usize];
            self.asked = vec![None; grid.tile_count() as usize];
            self.never_received = grid.tile_count();
            self.last = None;
        }
        if let Some(last) = self.last {
            let missing = frame_id.wrapping_sub(last).wrapping_sub(1);
            if missing as usize <= RECENT_SPANS {
                for span in slice.header.recent.iter().take(missing as usize) {
                    self.mark_stale(now, u32::from(span.first), u32::from(span.end).min(grid.tile_count()));
                }
            } else {
                self.mark_stale(now, 0, grid.tile_count());
            }
        }
        for run in slice.runs() {
            let end = u32::from(run.first) + u32::from(run.count);
            for tile in u32::from(run.first)..end {
                let complete = self.never_received == 0;
                self.asked[tile as usize] = None;
                if let Some(since) = self.stale[tile as usize].take() {
                    self.stale_count -= 1;
                    if complete {
                        self.longest_stale = self.longest_stale.max(now.saturating_duration_since(since));
                    }
                }
                if !std::mem::replace(&mut self.received[tile as usize], true) {
                    self.never_received -= 1;
                }
            }
        }
        self.last = Some(frame_id);
        Some(reset)
    }

    /// Tiles that arrived but could not be drawn (their JPEG did not decode, or the drawing
    /// queue was full): stale again, and asked for.
    pub fn on_tiles_lost(&mut self, now: Instant, tiles: &[u32]) {
        let count = self.stale.len() as u32;
        for &tile in tiles.iter().filter(|t| **t < count) {
            self.mark_stale(now, tile, tile + 1);
        }
    }

    /// Tiles `from..to` may be out of date (lost now, or their repair was): stale, and to be
    /// asked for at the next request whenever they were last asked for.
    fn mark_stale(&mut self, now: Instant, from: u32, to: u32) {
        for asked in self.asked.iter_mut().take(to as usize).skip(from as usize) {
            *asked = None;
        }
        for slot in self.stale.iter_mut().take(to as usize).skip(from as usize) {
            if slot.is_none() {
                *slot = Some(now);
                self.stale_count += 1;
            }
        }
    }

    /// The tiles to ask the sender for now, as at most [`MAX_REFRESH_RANGES`] ranges
    /// covering every stale tile not asked for within [`repair_wait`]`(rtt)` (the closest
    /// ranges merged when there are more), or `None` if there is none or a request went out
    /// less than [`REFRESH_RETRY`] ago. `rtt` is the receiver's smoothed round trip.
    pub fn poll_refresh(&mut self, now: Instant, rtt: Option<Duration>) -> Option<Vec<TileRun>> {
        if self.stale_count == 0 || self.last_request.is_some_and(|t| now.saturating_duration_since(t) < REFRESH_RETRY)
        {
            return None;
        }
        let wait = repair_wait(rtt);
        let mut ranges: Vec<(u32, u32)> = Vec::new();
        for (tile, (slot, asked)) in self.stale.iter().zip(&self.asked).enumerate() {
            if slot.is_none() || asked.is_some_and(|t| now.saturating_duration_since(t) < wait) {
                continue;
            }
            let tile = tile as u32;
            match ranges.last_mut() {
                Some((_, end)) if *end == tile => *end += 1,
                _ => ranges.push((tile, tile + 1)),
            }
        }
        if ranges.len() > MAX_REFRESH_RANGES {
            // Keep the widest gaps between ranges and close the others: sort the gaps once.
            let mut gaps: Vec<(u32, usize)> =
                ranges.windows(2).enumerate().map(|(i, w)| (w[1].0 - w[0].1, i)).collect();
            gaps.sort_unstable_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut kept: Vec<usize> = gaps.iter().take(MAX_REFRESH_RANGES - 1).map(|(_, i)| *i).collect();
            kept.sort_unstable();
            let mut merged = Vec::with_capacity(MAX_REFRESH_RANGES);
            let mut from = 0;
            for gap in kept.into_iter().chain(std::iter::once(ranges.len() - 1)) {
                merged.push((ranges[from].0, ranges[gap].1));
                from = gap + 1;
            }
            ranges = merged;
        }
        if ranges.is_empty() {
            return None;
        }
        for &(from, to) in &ranges {
            for (slot, asked) in
                self.stale[from as usize..to as usize].iter().zip(&mut self.asked[from as usize..to as usize])
            {
                if slot.is_some() {
                    *asked = Some(now);
                }
            }
        }
        self.last_request = Some(now);
        self.refreshes_requested += 1;
        Some(ranges.into_iter().flat_map(|(from, to)| split_run(from, to)).collect())
    }

    /// How long the oldest stale tile has been stale, zero if none is.
    pub fn stale_for(&self, now: Instant) -> Duration {
        self.stale.iter().flatten().map(|t| now.saturating_duration_since(*t)).max().unwrap_or_default()
    }
}

/// The tiles `from..to` as runs (one, unless it is longer than a run can count).
fn split_run(from: u32, to: u32) -> impl Iterator<Item = TileRun> {
    let mut at = from;
    std::iter::from_fn(move || {
        if at >= to {
            return None;
        }
        let count = (to - at).min(u32::from(u16::MAX));
        let run = TileRun { first: at as u16, count: count as u16 };
        at += count;
        Some(run)
    })
}

#[cfg(test)]
mod tests;
