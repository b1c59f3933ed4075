//! JPEG video: scale + encode on the way out, decode to RGBA on the way in.
//!
//! The encoder scales a captured RGB picture to the quality level's size with
//! `fast_image_resize` (cropping to the target aspect rather than stretching) and compresses it
//! with `jpeg-encoder`; the decoder turns a received JPEG into RGBA with `zune-jpeg`, converting
//! colour once, straight into the buffer the UI gets. Both keep their buffers between frames:
//! after the first frame of a given size, the scaled picture, the JPEG bytes and the RGBA
//! pixels reuse their allocations. The libraries still allocate their own per-image state:
//! `fast_image_resize` recomputes its filter coefficients on every call (about 1 300 small
//! allocations, ~115 KB, when scaling to 480p; it has no coefficient cache), `jpeg-encoder` ~10
//! and `zune-jpeg` ~17 (~150 KB at 480p). That is tens of µs against milliseconds of coding,
//! on the video threads, never on the audio ones.
//!
//! Received JPEGs are untrusted: their declared size is checked against
//! [`MAX_DECODE_WIDTH`] x [`MAX_DECODE_HEIGHT`] before any pixel buffer is sized for them,
//! and a corrupt stream is a [`MediaError::Codec`], never a panic.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use jpeg_encoder::{ColorType, Encoder, SamplingFactor};
use zune_core::bytestream::ZCursor;
use zune_core::colorspace::ColorSpace;
use zune_core::options::DecoderOptions;
use zune_jpeg::JpegDecoder;

use super::{DecodedFrame, MediaError, RgbFrame};

/// Widest picture the decoder accepts (the ladder tops out at 854; cameras at 1920).
pub const MAX_DECODE_WIDTH: u32 = 1920;
/// Tallest picture the decoder accepts.
pub const MAX_DECODE_HEIGHT: u32 = 1080;

/// Scales RGB pictures to a target size and compresses them to JPEG, reusing its buffers.
pub struct VideoEncoder {
    resizer: Resizer,
    options: ResizeOptions,
    scaled: Vec<u8>,
}

impl std::fmt::Debug for VideoEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VideoEncoder").field("scaled_bytes", &self.scaled.len()).finish()
    }
}

impl Default for VideoEncoder {
    fn default() -> Self {
        Self::new()
    }
}

impl VideoEncoder {
    /// A new encoder; its buffers grow to the largest size it is asked for and stay.
    pub fn new() -> Self {
        Self {
            resizer: Resizer::new(),
            // Bilinear convolution widens its kernel when shrinking, so downscaling is
            // anti-aliased; Lanczos would cost ~2x for no visible gain after JPEG.
            options: ResizeOptions::new()
                .resize_alg(ResizeAlg::Convolution(FilterType::Bilinear))
                .fit_into_destination(None),
            scaled: Vec::new(),
        }
    }

    /// Scales `src` to `width` x `height` (cropping the centre to that aspect if it differs) and
    /// writes it as a baseline JPEG at `quality` (1..=100, clamped) into `out`, which is cleared
    /// first and keeps its allocation.
    pub fn encode(
        &mut self,
        src: &RgbFrame,
        width: u16,
        height: u16,
        quality: u8,
        out: &mut Vec<u8>,
    ) -> Result<(), MediaError> {
        let pixels = self.scale(src, width, height)?;
        out.clear();
        Encoder::new(&mut *out, quality.clamp(1, 100))
            .encode(pixels, width, height, ColorType::Rgb)
            .map_err(|e| MediaError::Codec(format!("JPEG encode {width}x{height}: {e}")))
    }

    /// Compresses an RGB picture as it is (no scaling) into `out`, cleared first: what screen
    /// sharing does with its tile atlases. `full_chroma` keeps the colour at full resolution
    /// (4:4:4: small coloured text stays sharp); otherwise it is halved both ways (4:2:0, as
    /// for camera frames). The standard Huffman tables are used: `jpeg-encoder` 0.7's optimised
    /// tables come out, at 4:2:0 always and at 4:4:4 for some small atlases, as pictures
    /// `zune-jpeg` decodes wrongly (PSNR ~3 dB at 4:2:0; `session::screen`'s composition test
    /// and `media::screen`'s atlas test catch it).
    pub fn encode_rgb(
        pixels: &[u8],
        width: u16,
        height: u16,
        quality: u8,
        full_chroma: bool,
        out: &mut Vec<u8>,
    ) -> Result<(), MediaError> {
        if width == 0 || height == 0 || pixels.len() < usize::from(width) * usize::from(height) * 3 {
            return Err(MediaError::InvalidArgument(format!(
                "{} bytes are not a {width}x{height} RGB picture",
                pixels.len()
            )));
        }
        out.clear();
        let mut encoder = Encoder::new(&mut *out, quality.clamp(1, 100));
        encoder.set_sampling_factor(if full_chroma { SamplingFactor::R_4_4_4 } else { SamplingFactor::R_4_2_0 });
        encoder
            .encode(&pixels[..usize::from(width) * usize::from(height) * 3], width, height, ColorType::Rgb)
            .map_err(|e| MediaError::Codec(format!("JPEG encode {width}x{height}: {e}")))
    }

    /// Scales `src` to fit in `max_width` x `max_height` keeping its aspect ratio (never up),
    /// and returns the size and the pixels: `src`'s own when it already fits.
    pub fn scale_to_fit<'a>(
        &'a mut self,
        src: &'a RgbFrame,
        max_width: u16,
        max_height: u16,
    ) -> Result<(u16, u16, &'a [u8]), MediaError> {
        let (width, height) = fit_within(src.width, src.height, u32::from(max_width), u32::from(max_height));
        let pixels = self.scale(src, width, height)?;
        Ok((width, height, pixels))
    }

    /// Scales `src` to `width` x `height` RGB (cropping the centre to that aspect if it
    /// differs) into the encoder's own buffer and returns it; `src`'s pixels as they are when
    /// the size already matches. What [`VideoEncoder::encode`] compresses; also a local preview.
    pub fn scale<'a>(&'a mut self, src: &'a RgbFrame, width: u16, height: u16) -> Result<&'a [u8], MediaError> {
        if width == 0 || height == 0 {
            return Err(MediaError::InvalidArgument(format!("cannot scale to {width}x{height}")));
        }
        let src_len =
            rgb_len(src.width, src.height).filter(|&len| len > 0 && src.data.len() >= len).ok_or_else(|| {
                MediaError::InvalidArgument(format!(
                    "source frame {}x{} has {} bytes of RGB",
                    src.width,
                    src.height,
                    src.data.len()
                ))
            })?;
        if (src.width, src.height) == (u32::from(width), u32::from(height)) {
            return Ok(&src.data[..src_len]);
        }
        let dst_len = usize::from(width) * usize::from(height) * 3;
        self.scaled.resize(dst_len, 0);
        let src_image = ImageRef::new(src.width, src.height, &src.data[..src_len], PixelType::U8x3)
            .map_err(|e| MediaError::InvalidArgument(format!("source frame: {e}")))?;
        let mut dst_image =
            Image::from_slice_u8(u32::from(width), u32::from(height), &mut self.scaled, PixelType::U8x3)
                .map_err(|e| MediaError::InvalidArgument(format!("scaled frame: {e}")))?;
        self.resizer
            .resize(&src_image, &mut dst_image, &self.options)
            .map_err(|e| MediaError::Codec(format!("scaling {}x{} to {width}x{height}: {e}", src.width, src.height)))?;
        Ok(&self.scaled)
    }
}

/// Decodes JPEG pictures to RGBA, reusing the output buffer.
#[derive(Debug, Clone)]
pub struct VideoDecoder {
    options: DecoderOptions,
}

impl Default for VideoDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl VideoDecoder {
    /// A decoder that accepts pictures up to [`MAX_DECODE_WIDTH`] x [`MAX_DECODE_HEIGHT`].
    pub fn new() -> Self {
        Self::with_limits(MAX_DECODE_WIDTH, MAX_DECODE_HEIGHT)
    }

    /// A decoder that accepts pictures up to `max_width` x `max_height` (a screen's tile
    /// atlas can be a little taller than the screen: it is padded to whole tiles).
    pub fn with_limits(max_width: u32, max_height: u32) -> Self {
        Self {
            options: DecoderOptions::default()
                .jpeg_set_out_colorspace(ColorSpace::RGBA)
                .set_max_width(max_width as usize)
                .set_max_height(max_height as usize),
        }
    }

    /// Decodes `jpeg` into `out` as RGBA. On error `out` keeps its previous size but its pixels
    /// may be partly overwritten.
    pub fn decode(&mut self, jpeg: &[u8], out: &mut DecodedFrame) -> Result<(), MediaError> {
        let mut decoder = JpegDecoder::new_with_options(ZCursor::new(jpeg), self.options);
        decoder.decode_headers().map_err(|e| MediaError::Codec(format!("JPEG headers: {e}")))?;
        let (width, height) =
            decoder.dimensions().ok_or_else(|| MediaError::Codec("JPEG without dimensions".to_string()))?;
        let len = decoder
            .output_buffer_size()
            .ok_or_else(|| MediaError::Codec(format!("JPEG {width}x{height} too large")))?;
        if len != width * height * 4 {
            return Err(MediaError::Codec(format!("JPEG {width}x{height}: unexpected output size {len}")));
        }
        out.rgba.resize(len, 0);
        decoder.decode_into(&mut out.rgba).map_err(|e| MediaError::Codec(format!("JPEG data: {e}")))?;
        // Both fit: the decoder refused anything over MAX_DECODE_WIDTH x MAX_DECODE_HEIGHT.
        out.width = width as u32;
        out.height = height as u32;
        Ok(())
    }
}

/// The largest size with `width`'s aspect ratio within `max_width` x `max_height` (never
/// larger than the picture itself; even, at least 2 x 2).
pub fn fit_within(width: u32, height: u32, max_width: u32, max_height: u32) -> (u16, u16) {
    let (w, h) = (width.max(1) as f64, height.max(1) as f64);
    let scale = (max_width as f64 / w).min(max_height as f64 / h).min(1.0);
    let even = |v: f64| ((v.round() as u32) & !1).clamp(2, u32::from(u16::MAX) & !1) as u16;
    (even(w * scale), even(h * scale))
}

/// Bytes of an RGB24 picture, `None` on overflow.
fn rgb_len(width: u32, height: u32) -> Option<usize> {
    (width as usize).checked_mul(height as usize)?.checked_mul(3)
}

#[cfg(test)]
mod tests {
    use super::super::{TestPattern, VideoSource};
    use super::*;

    fn pattern_frame(w: u32, h: u32) -> RgbFrame {
        let mut frame = RgbFrame::default();
        TestPattern::new(w, h).next_frame(&mut frame).unwrap();
        frame
    }

    #[test]
    fn encodes_at_source_size_without_scaling_and_decodes_back() {
        let frame = pattern_frame(256, 144);
        let (mut enc, mut dec) = (VideoEncoder::new(), VideoDecoder::new());
        let mut jpeg = Vec::new();
        enc.encode(&frame, 256, 144, 80, &mut jpeg).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "JPEG SOI marker");
        let mut out = DecodedFrame::default();
        dec.decode(&jpeg, &mut out).unwrap();
        assert_eq!((out.width, out.height, out.rgba.len()), (256, 144, 256 * 144 * 4));
        assert!(out.rgba.chunks_exact(4).all(|px| px[3] == 255));
        assert_eq!(TestPattern::read_counter(&out.rgba, 256, 144, 4), Some(0));
    }

    #[test]
    fn buffers_are_reused_across_frames() {
        let frame = pattern_frame(854, 480);
        let (mut enc, mut dec) = (VideoEncoder::new(), VideoDecoder::new());
        let (mut jpeg, mut out) = (Vec::new(), DecodedFrame::default());
        enc.encode(&frame, 640, 360, 60, &mut jpeg).unwrap();
        dec.decode(&jpeg, &mut out).unwrap();
        let (scaled_ptr, out_ptr) = (enc.scaled.as_ptr(), out.rgba.as_ptr());
        for _ in 0..3 {
            enc.encode(&frame, 640, 360, 60, &mut jpeg).unwrap();
            dec.decode(&jpeg, &mut out).unwrap();
        }
        assert_eq!(enc.scaled.as_ptr(), scaled_ptr);
        assert_eq!(out.rgba.as_ptr(), out_ptr);
    }

    #[test]
    fn screens_fit_their_box_keeping_the_aspect_ratio() {
        assert_eq!(fit_within(1920, 1080, 1920, 1080), (1920, 1080));
        assert_eq!(fit_within(1920, 1080, 1280, 720), (1280, 720));
        assert_eq!(fit_within(2560, 1600, 1920, 1080), (1728, 1080));
        assert_eq!(fit_within(800, 600, 1920, 1080), (800, 600), "never scaled up");
        assert_eq!(fit_within(3, 1, 1920, 1080), (2, 2));
        let frame = pattern_frame(854, 480);
        let mut enc = VideoEncoder::new();
        let (w, h, pixels) = enc.scale_to_fit(&frame, 428, 428).unwrap();
        assert_eq!((w, h, pixels.len()), (428, 240, 428 * 240 * 3));
        let mut jpeg = Vec::new();
        VideoEncoder::encode_rgb(&frame.data, 854, 480, 90, true, &mut jpeg).unwrap();
        let mut out = DecodedFrame::default();
        VideoDecoder::new().decode(&jpeg, &mut out).unwrap();
        assert_eq!((out.width, out.height), (854, 480));
        assert!(VideoEncoder::encode_rgb(&frame.data[..10], 854, 480, 90, true, &mut jpeg).is_err());
        // A tile atlas of a 1080p screen is 1088 high: refused by the camera's limits only.
        let tall = RgbFrame { width: 64, height: 1088, data: vec![128; 64 * 1088 * 3], capture_ts_us: 0 };
        VideoEncoder::encode_rgb(&tall.data, 64, 1088, 80, true, &mut jpeg).unwrap();
        assert!(VideoDecoder::new().decode(&jpeg, &mut out).is_err());
        VideoDecoder::with_limits(1920, 1088).decode(&jpeg, &mut out).unwrap();
    }

    #[test]
    fn rejects_bad_arguments() {
        let mut enc = VideoEncoder::new();
        let mut jpeg = Vec::new();
        let frame = pattern_frame(256, 144);
        assert!(matches!(enc.encode(&frame, 0, 144, 50, &mut jpeg), Err(MediaError::InvalidArgument(_))));
        let short = RgbFrame { width: 256, height: 144, data: vec![0; 10], capture_ts_us: 0 };
        assert!(matches!(enc.encode(&short, 128, 72, 50, &mut jpeg), Err(MediaError::InvalidArgument(_))));
        let empty = RgbFrame::default();
        assert!(matches!(enc.encode(&empty, 128, 72, 50, &mut jpeg), Err(MediaError::InvalidArgument(_))));
    }

    #[test]
    fn corrupt_or_oversized_jpegs_are_errors_not_panics() {
        let frame = pattern_frame(256, 144);
        let mut jpeg = Vec::new();
        VideoEncoder::new().encode(&frame, 256, 144, 50, &mut jpeg).unwrap();
        let mut dec = VideoDecoder::new();
        let mut out = DecodedFrame::default();
        assert!(dec.decode(&[], &mut out).is_err());
        assert!(dec.decode(b"not a jpeg at all", &mut out).is_err());
        // Every truncation, and a sweep of single-byte corruptions, must come back as Ok or Err.
        for cut in (0..jpeg.len()).step_by(7) {
            let _ = dec.decode(&jpeg[..cut], &mut out);
        }
        for i in (2..jpeg.len()).step_by(3) {
            let mut bad = jpeg.clone();
            bad[i] ^= 0x5A;
            let _ = dec.decode(&bad, &mut out);
        }
        // A header claiming 4000x3000 is refused before any buffer is sized for it.
        let big = pattern_frame(64, 36);
        let mut big_jpeg = Vec::new();
        VideoEncoder::new().encode(&big, 64, 36, 50, &mut big_jpeg).unwrap();
        let sof = big_jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).expect("SOF0");
        big_jpeg[sof + 5..sof + 7].copy_from_slice(&3000u16.to_be_bytes());
        big_jpeg[sof + 7..sof + 9].copy_from_slice(&4000u16.to_be_bytes());
        assert!(matches!(dec.decode(&big_jpeg, &mut out), Err(MediaError::Codec(_))));
    }
}
