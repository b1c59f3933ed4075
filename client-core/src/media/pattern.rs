//! The synthetic camera: a moving test pattern with a machine-readable stamp burnt in.
//!
//! Each picture has colour bars scrolling right, a grey ramp scrolling left, and across the
//! middle a band of 4 × 32 black/white cells that encode the frame counter and the capture time
//! (low 32 bits of the Unix time in ms), each followed by its bitwise complement. The cells
//! are 1/32 of the width by 1/18 of the height (8 × 8 pixels at 256x144), large enough that
//! scaling and JPEG at quality 40 leave their centres clearly black or white, and the
//! complement rows reject anything that is not a stamp. [`TestPattern::read_counter`] reads the
//! counter back from a decoded frame, which is how tests and bots prove that pictures travel
//! end to end, in order, and how old they are.
//!
//! The stamp's geometry is relative to the picture, so it survives any scaling that keeps the
//! aspect ratio; generate the pattern at the aspect of the frames it will be scaled to (16:9
//! for the quality ladder), since the encoder crops to the target aspect.

use super::{now_us, MediaError, RgbFrame, VideoSource};

/// Cells per stamp row: one per bit of a `u32`.
const STAMP_COLS: u32 = 32;
/// Rows of the stamp: counter, !counter, capture ms, !capture ms.
const STAMP_ROWS: u32 = 4;
/// The picture is divided into this many horizontal bands; the stamp rows take `STAMP_ROWS`
/// of them starting at `STAMP_FIRST_BAND`, in the vertical middle where a crop is least likely.
const BANDS: u32 = 18;
const STAMP_FIRST_BAND: u32 = 7;
/// Sizes the pattern is clamped to: below the minimum a stamp cell would be under 2 pixels.
const MIN_WIDTH: u32 = 64;
const MIN_HEIGHT: u32 = 36;
const MAX_WIDTH: u32 = 3840;
const MAX_HEIGHT: u32 = 2160;

/// The eight classic colour bars, left to right.
const BARS: [[u8; 3]; 8] = [
    [235, 235, 235],
    [235, 235, 16],
    [16, 235, 235],
    [16, 235, 16],
    [235, 16, 235],
    [235, 16, 16],
    [16, 16, 235],
    [16, 16, 16],
];

/// What [`TestPattern::read_stamp`] reads back from a picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternStamp {
    /// The frame counter: 0 for the first picture, then +1 per picture (wrapping).
    pub counter: u32,
    /// The low 32 bits of the capture time in ms since the Unix epoch.
    pub capture_ms_low32: u32,
}

impl PatternStamp {
    /// The full capture time in µs since the Unix epoch, rebuilt from the low 32 bits by taking
    /// the value nearest to `reference_us` (the receiver's [`now_us`]); exact to the ms as long
    /// as the picture is less than ~24 days old.
    pub fn capture_time_us(&self, reference_us: u64) -> u64 {
        const SPAN: i64 = 1 << 32;
        let reference_ms = (reference_us / 1000) as i64;
        let mut candidate = (reference_ms & !(SPAN - 1)) | i64::from(self.capture_ms_low32);
        if candidate - reference_ms > SPAN / 2 {
            candidate -= SPAN;
        } else if reference_ms - candidate > SPAN / 2 {
            candidate += SPAN;
        }
        candidate.max(0) as u64 * 1000
    }
}

/// A moving test pattern with the frame counter and capture time burnt in.
///
/// Unpaced: [`VideoSource::next_frame`] draws a picture and returns at once; the caller decides
/// the frame rate.
#[derive(Debug, Clone)]
pub struct TestPattern {
    width: u32,
    height: u32,
    counter: u32,
}

impl TestPattern {
    /// A pattern of `width` x `height` pixels (clamped to 64x36 ..= 3840x2160).
    pub fn new(width: u32, height: u32) -> Self {
        Self { width: width.clamp(MIN_WIDTH, MAX_WIDTH), height: height.clamp(MIN_HEIGHT, MAX_HEIGHT), counter: 0 }
    }

    /// The size of the pictures this pattern draws.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The counter the next picture will carry.
    pub fn next_counter(&self) -> u32 {
        self.counter
    }

    /// Draws picture number `counter` stamped with `capture_ms` into `out` (reusing its buffer).
    pub fn draw(&self, counter: u32, capture_ms: u64, out: &mut RgbFrame) {
        let (w, h) = (self.width as usize, self.height as usize);
        let row_bytes = w * 3;
        out.width = self.width;
        out.height = self.height;
        out.data.resize(row_bytes * h, 0);
        let data = &mut out.data[..];

        let stamp_top = band_edge(STAMP_FIRST_BAND, self.height) as usize;
        let stamp_bottom = band_edge(STAMP_FIRST_BAND + STAMP_ROWS, self.height) as usize;

        // Every row within a region is identical, so draw one row per region and copy it down:
        // drawing a 480p picture costs little more than a memcpy.
        // Colour bars, scrolling right by 1/64 of the width per picture.
        let shift = (counter as usize).wrapping_mul(w / 64 + 1) % w;
        for x in 0..w {
            let bar = ((x + w - shift) % w) * BARS.len() / w;
            data[x * 3..x * 3 + 3].copy_from_slice(&BARS[bar]);
        }
        fill_down(data, row_bytes, 0, stamp_top);

        // The stamp, in the middle.
        let ms_low = capture_ms as u32;
        let words = [counter, !counter, ms_low, !ms_low];
        for (row, word) in words.iter().enumerate() {
            let top = band_edge(STAMP_FIRST_BAND + row as u32, self.height) as usize;
            let bottom = band_edge(STAMP_FIRST_BAND + row as u32 + 1, self.height) as usize;
            for col in 0..STAMP_COLS {
                let bit = (word >> (STAMP_COLS - 1 - col)) & 1;
                let value = if bit == 1 { 255 } else { 0 };
                let (x0, x1) = (cell_edge(col, self.width) as usize, cell_edge(col + 1, self.width) as usize);
                data[top * row_bytes + x0 * 3..top * row_bytes + x1 * 3].fill(value);
            }
            fill_down(data, row_bytes, top, bottom);
        }

        // A grey ramp with a bright marker, scrolling left by 1/32 of the width per picture.
        if stamp_bottom < h {
            let shift = (counter as usize).wrapping_mul(w / 32 + 1) % w;
            let start = stamp_bottom * row_bytes;
            for x in 0..w {
                let pos = (x + shift) % w;
                let level = if pos < w / 40 + 1 { 255 } else { (pos * 200 / w) as u8 + 16 };
                data[start + x * 3..start + x * 3 + 3].copy_from_slice(&[level, level / 2 + 64, 255 - level]);
            }
            fill_down(data, row_bytes, stamp_bottom, h);
        }
    }

    /// Reads the counter back from a picture drawn by a `TestPattern` — possibly scaled and
    /// JPEG-compressed since. `bytes_per_pixel` is 3 for RGB, 4 for RGBA. `None` when the
    /// picture carries no readable stamp.
    pub fn read_counter(rgba_or_rgb: &[u8], width: u32, height: u32, bytes_per_pixel: usize) -> Option<u32> {
        Self::read_stamp(rgba_or_rgb, width, height, bytes_per_pixel).map(|s| s.counter)
    }

    /// Reads the whole stamp (counter and capture time) back from a picture; see
    /// [`TestPattern::read_counter`].
    pub fn read_stamp(pixels: &[u8], width: u32, height: u32, bytes_per_pixel: usize) -> Option<PatternStamp> {
        if !(3..=4).contains(&bytes_per_pixel) || width < MIN_WIDTH || height < MIN_HEIGHT {
            return None;
        }
        let needed = (width as usize).checked_mul(height as usize)?.checked_mul(bytes_per_pixel)?;
        if pixels.len() < needed {
            return None;
        }
        let mut words = [0u32; STAMP_ROWS as usize];
        for (row, word) in words.iter_mut().enumerate() {
            let y0 = band_edge(STAMP_FIRST_BAND + row as u32, height);
            let y1 = band_edge(STAMP_FIRST_BAND + row as u32 + 1, height);
            for col in 0..STAMP_COLS {
                let x0 = cell_edge(col, width);
                let x1 = cell_edge(col + 1, width);
                let luma = centre_luma(pixels, width, bytes_per_pixel, (x0, x1), (y0, y1));
                *word = (*word << 1) | u32::from(luma >= 128);
            }
        }
        (words[1] == !words[0] && words[3] == !words[2])
            .then_some(PatternStamp { counter: words[0], capture_ms_low32: words[2] })
    }
}

impl VideoSource for TestPattern {
    fn next_frame(&mut self, out: &mut RgbFrame) -> Result<(), MediaError> {
        let capture_ts_us = now_us();
        self.draw(self.counter, capture_ts_us / 1000, out);
        out.capture_ts_us = capture_ts_us;
        self.counter = self.counter.wrapping_add(1);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("test pattern {}x{}", self.width, self.height)
    }
}

/// The top edge of horizontal band `band` (of [`BANDS`]) in a picture `height` pixels tall.
fn band_edge(band: u32, height: u32) -> u32 {
    (u64::from(band) * u64::from(height) / u64::from(BANDS)) as u32
}

/// The left edge of stamp column `col` in a picture `width` pixels wide.
fn cell_edge(col: u32, width: u32) -> u32 {
    (u64::from(col) * u64::from(width) / u64::from(STAMP_COLS)) as u32
}

/// Copies row `from` over rows `from + 1 .. to`.
fn fill_down(data: &mut [u8], row_bytes: usize, from: usize, to: usize) {
    for y in from + 1..to {
        data.copy_within(from * row_bytes..(from + 1) * row_bytes, y * row_bytes);
    }
}

/// Mean luma of the middle half (in each direction) of a cell: away from the edges, where
/// scaling blurs and JPEG rings.
fn centre_luma(pixels: &[u8], width: u32, bpp: usize, (x0, x1): (u32, u32), (y0, y1): (u32, u32)) -> u32 {
    let (cx0, cx1) = (x0 + (x1 - x0) / 4, x1 - (x1 - x0) / 4);
    let (cy0, cy1) = (y0 + (y1 - y0) / 4, y1 - (y1 - y0) / 4);
    let (mut sum, mut count) = (0u32, 0u32);
    for y in cy0..cy1.max(cy0 + 1) {
        for x in cx0..cx1.max(cx0 + 1) {
            let i = (y as usize * width as usize + x as usize) * bpp;
            if let Some(px) = pixels.get(i..i + 3) {
                // Rec. 601 weights in integers: the stamp is grey, this only has to tell black from white.
                sum += (u32::from(px[0]) * 77 + u32::from(px[1]) * 150 + u32::from(px[2]) * 29) >> 8;
                count += 1;
            }
        }
    }
    sum.checked_div(count).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamp_round_trips_on_the_raw_picture() {
        for (w, h) in [(256, 144), (854, 480), (64, 36), (1280, 720)] {
            let pattern = TestPattern::new(w, h);
            let mut frame = RgbFrame::default();
            for counter in [0, 1, 0xDEAD_BEEF, u32::MAX] {
                pattern.draw(counter, 1_700_000_123_456, &mut frame);
                assert_eq!(frame.data.len(), (w * h * 3) as usize);
                let stamp = TestPattern::read_stamp(&frame.data, w, h, 3).expect("stamp");
                assert_eq!(stamp.counter, counter);
                assert_eq!(stamp.capture_ms_low32, 1_700_000_123_456u64 as u32);
            }
        }
    }

    #[test]
    fn next_frame_advances_counter_and_stamps_time() {
        let mut pattern = TestPattern::new(320, 180);
        let mut frame = RgbFrame::default();
        for expected in 0..3 {
            let before = now_us();
            pattern.next_frame(&mut frame).unwrap();
            let stamp = TestPattern::read_stamp(&frame.data, 320, 180, 3).unwrap();
            assert_eq!(stamp.counter, expected);
            assert!(frame.capture_ts_us >= before);
            assert_eq!(stamp.capture_time_us(now_us()), frame.capture_ts_us / 1000 * 1000);
        }
    }

    #[test]
    fn pattern_moves_between_frames() {
        let pattern = TestPattern::new(256, 144);
        let (mut a, mut b) = (RgbFrame::default(), RgbFrame::default());
        pattern.draw(10, 0, &mut a);
        pattern.draw(11, 0, &mut b);
        let top = 3 * 256 * 3; // a row inside the bars
        assert_ne!(a.data[top..top + 256 * 3], b.data[top..top + 256 * 3]);
    }

    #[test]
    fn rejects_pictures_without_a_stamp_and_bad_buffers() {
        let grey = vec![128u8; 256 * 144 * 4];
        assert_eq!(TestPattern::read_counter(&grey, 256, 144, 4), None);
        assert_eq!(TestPattern::read_counter(&grey, 256, 144, 2), None);
        assert_eq!(TestPattern::read_counter(&grey[..100], 256, 144, 4), None);
        assert_eq!(TestPattern::read_counter(&grey, u32::MAX, u32::MAX, 4), None);
    }

    #[test]
    fn capture_time_is_rebuilt_across_the_32_bit_wrap() {
        let full_ms: u64 = (5u64 << 32) + 10; // just after a wrap of the low 32 bits
        let stamp = PatternStamp { counter: 0, capture_ms_low32: full_ms as u32 };
        assert_eq!(stamp.capture_time_us((full_ms + 50) * 1000), full_ms * 1000);
        let before_wrap: u64 = (5u64 << 32) - 10;
        let stamp = PatternStamp { counter: 0, capture_ms_low32: before_wrap as u32 };
        assert_eq!(stamp.capture_time_us((before_wrap + 30) * 1000), before_wrap * 1000);
    }
}
