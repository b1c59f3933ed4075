//! The video pipeline end to end, with the real codecs: test pattern → scale + JPEG at every
//! quality-ladder level → decode to RGBA → the burnt-in counter reads back and advances.

use client_core::media::{DecodedFrame, RgbFrame, TestPattern, VideoDecoder, VideoEncoder, VideoSource};

/// The quality ladder (size and JPEG quality), smallest first, as in `protocol::quality::LADDER`.
const LADDER: [(u16, u16, u8); 4] = [(256, 144, 40), (426, 240, 50), (640, 360, 60), (854, 480, 70)];

#[test]
fn counter_survives_every_ladder_level_and_advances() {
    // The source is bigger than the top level, as a 720p camera would be, so every level scales.
    let mut pattern = TestPattern::new(1280, 720);
    let (mut encoder, mut decoder) = (VideoEncoder::new(), VideoDecoder::new());
    let (mut frame, mut jpeg, mut decoded) = (RgbFrame::default(), Vec::new(), DecodedFrame::default());
    let mut mean_sizes = Vec::new();
    let mut expected = 0u32;
    for &(width, height, quality) in &LADDER {
        let mut total = 0usize;
        let mut last = None;
        for _ in 0..5 {
            pattern.next_frame(&mut frame).unwrap();
            encoder.encode(&frame, width, height, quality, &mut jpeg).unwrap();
            total += jpeg.len();
            decoder.decode(&jpeg, &mut decoded).unwrap();
            assert_eq!((decoded.width, decoded.height), (u32::from(width), u32::from(height)));
            let stamp = TestPattern::read_stamp(&decoded.rgba, decoded.width, decoded.height, 4)
                .unwrap_or_else(|| panic!("no stamp readable at {width}x{height} q{quality}"));
            assert_eq!(stamp.counter, expected, "counter at {width}x{height} q{quality}");
            assert_eq!(stamp.capture_time_us(frame.capture_ts_us), frame.capture_ts_us / 1000 * 1000);
            if let Some(previous) = last {
                assert_eq!(stamp.counter, previous + 1, "counter advances frame to frame");
            }
            last = Some(stamp.counter);
            expected += 1;
        }
        mean_sizes.push(total / 5);
    }
    for pair in mean_sizes.windows(2) {
        assert!(pair[1] > pair[0], "encoded size must grow with the level: {mean_sizes:?}");
    }
}

#[test]
fn counter_survives_upscaling_from_a_small_source() {
    let mut pattern = TestPattern::new(320, 180);
    let (mut encoder, mut decoder) = (VideoEncoder::new(), VideoDecoder::new());
    let (mut frame, mut jpeg, mut decoded) = (RgbFrame::default(), Vec::new(), DecodedFrame::default());
    for expected in 0..3 {
        pattern.next_frame(&mut frame).unwrap();
        encoder.encode(&frame, 854, 480, 70, &mut jpeg).unwrap();
        decoder.decode(&jpeg, &mut decoded).unwrap();
        assert_eq!(TestPattern::read_counter(&decoded.rgba, 854, 480, 4), Some(expected));
    }
}
