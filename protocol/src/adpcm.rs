//! IMA ADPCM (the Interactive Multimedia Association's 4-bit ADPCM, as in WAV's `0x0011`
//! format): 16-bit PCM to 4 bits per sample and back, with the step table and index table every
//! implementation shares. Parlor uses it for the *older* redundant copies of an audio frame
//! (the previous frame's copy stays µ-law, [`crate::mulaw`]): a 20 ms frame at 16 kHz is 160
//! bytes, and at 8 kHz (every second sample of a low-passed frame) 80 bytes, so four copies fit
//! a datagram beside the frame itself. About 20 dB signal-to-noise on speech: worse than the
//! frame, far better than concealing a lost one.
//!
//! A block starts with the encoder's state, so each block decodes on its own:
//! `predictor (i16, big-endian) ‖ step_index (u8) ‖ codes` with two codes per byte, the first
//! sample in the low nibble.

/// Bytes of a block's state header.
pub const BLOCK_HEADER_LEN: usize = 3;

/// The quantizer step for each of the 89 step indices.
const STEPS: [i32; 89] = [
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60, 66, 73, 80, 88, 97, 107,
    118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371, 408, 449, 494, 544, 598, 658, 724, 796, 876, 963,
    1060, 1166, 1282, 1411, 1552, 1707, 1878, 2066, 2272, 2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894,
    6484, 7132, 7845, 8630, 9493, 10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623, 27086, 29794,
    32767,
];

/// How the step index moves after each 4-bit code (by its magnitude bits).
const INDEX_STEP: [i32; 8] = [-1, -1, -1, -1, 2, 4, 6, 8];

/// The running state of an encoder or decoder.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct State {
    predictor: i32,
    index: i32,
}

impl State {
    /// Applies one code, returning the reconstructed sample.
    fn decode(&mut self, code: u8) -> i16 {
        let step = STEPS[self.index as usize];
        let mut diff = step >> 3;
        if code & 4 != 0 {
            diff += step;
        }
        if code & 2 != 0 {
            diff += step >> 1;
        }
        if code & 1 != 0 {
            diff += step >> 2;
        }
        if code & 8 != 0 {
            self.predictor -= diff;
        } else {
            self.predictor += diff;
        }
        self.predictor = self.predictor.clamp(i32::from(i16::MIN), i32::from(i16::MAX));
        self.index = (self.index + INDEX_STEP[usize::from(code & 7)]).clamp(0, 88);
        self.predictor as i16
    }

    /// The code for `sample` from this state; the state moves as a decoder's would.
    fn encode(&mut self, sample: i16) -> u8 {
        let step = STEPS[self.index as usize];
        let mut diff = i32::from(sample) - self.predictor;
        let mut code = 0u8;
        if diff < 0 {
            code = 8;
            diff = -diff;
        }
        let mut threshold = step;
        for bit in [4u8, 2, 1] {
            if diff >= threshold {
                code |= bit;
                diff -= threshold;
            }
            threshold >>= 1;
        }
        self.decode(code);
        code
    }
}

/// Encoded length of `samples` samples: the state header and half a byte per sample.
pub fn encoded_len(samples: usize) -> usize {
    BLOCK_HEADER_LEN + samples.div_ceil(2)
}

/// Encodes `pcm` as one self-contained block appended to `out`. The first sample starts the
/// predictor, so the block decodes on its own.
pub fn encode(pcm: &[i16], out: &mut Vec<u8>) {
    let first = pcm.first().copied().unwrap_or(0);
    let mut state = State { predictor: i32::from(first), index: initial_index(pcm) };
    out.extend_from_slice(&first.to_be_bytes());
    out.push(state.index as u8);
    for pair in pcm.chunks(2) {
        let low = state.encode(pair[0]);
        let high = pair.get(1).map_or(0, |&s| state.encode(s));
        out.push(low | (high << 4));
    }
}

/// Decodes a block into `out`, one sample per element. None if the block is not exactly
/// [`encoded_len`]`(out.len())` bytes or its step index is out of range.
pub fn decode(block: &[u8], out: &mut [i16]) -> Option<()> {
    if block.len() != encoded_len(out.len()) || block[2] > 88 {
        return None;
    }
    let mut state =
        State { predictor: i32::from(i16::from_be_bytes([block[0], block[1]])), index: i32::from(block[2]) };
    for (i, sample) in out.iter_mut().enumerate() {
        let byte = block[BLOCK_HEADER_LEN + i / 2];
        *sample = state.decode(if i % 2 == 0 { byte & 0x0f } else { byte >> 4 });
    }
    Some(())
}

/// A step index that suits the block's opening: the step nearest a quarter of its first
/// sample-to-sample change, so a loud block does not spend its first samples ramping up.
fn initial_index(pcm: &[i16]) -> i32 {
    let delta = match pcm {
        [a, b, ..] => (i32::from(*b) - i32::from(*a)).abs(),
        _ => 0,
    };
    STEPS.iter().position(|&s| s >= delta / 4).unwrap_or(88) as i32
}

/// Halves the rate of `pcm` into `out` (half as long): each output sample is the mean of a
/// pair, a two-tap low-pass against aliasing.
pub fn downsample_2x(pcm: &[i16], out: &mut [i16]) {
    for (o, pair) in out.iter_mut().zip(pcm.chunks(2)) {
        *o = ((i32::from(pair[0]) + i32::from(*pair.get(1).unwrap_or(&pair[0]))) / 2) as i16;
    }
}

/// Doubles the rate of `pcm` into `out` (twice as long) by linear interpolation between
/// neighbours; the last sample is held.
pub fn upsample_2x(pcm: &[i16], out: &mut [i16]) {
    for (i, pair) in out.chunks_mut(2).enumerate() {
        let s = pcm.get(i).copied().unwrap_or(0);
        let next = pcm.get(i + 1).copied().unwrap_or(s);
        pair[0] = s;
        if let Some(mid) = pair.get_mut(1) {
            *mid = ((i32::from(s) + i32::from(next)) / 2) as i16;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Speech-like test signal: two harmonics with a slow amplitude envelope.
    fn voice(n: usize, rate: f64) -> Vec<i16> {
        (0..n)
            .map(|i| {
                let t = i as f64 / rate;
                let env = 0.5 + 0.5 * (2.0 * std::f64::consts::PI * 3.0 * t).sin();
                let s = (2.0 * std::f64::consts::PI * 180.0 * t).sin()
                    + 0.5 * (2.0 * std::f64::consts::PI * 720.0 * t).sin();
                (env * s * 9000.0) as i16
            })
            .collect()
    }

    fn snr_db(reference: &[i16], decoded: &[i16]) -> f64 {
        let signal: f64 = reference.iter().map(|&s| f64::from(s).powi(2)).sum();
        let noise: f64 = reference.iter().zip(decoded).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
        10.0 * (signal / noise.max(1.0)).log10()
    }

    #[test]
    fn a_frame_round_trips_with_speech_grade_fidelity() {
        let pcm = voice(320, 16_000.0);
        let mut block = Vec::new();
        encode(&pcm, &mut block);
        assert_eq!(block.len(), encoded_len(320));
        assert_eq!(block.len(), 163);
        let mut decoded = [0i16; 320];
        decode(&block, &mut decoded).unwrap();
        let snr = snr_db(&pcm, &decoded);
        assert!(snr > 15.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn the_half_rate_copy_keeps_the_voice_band() {
        let pcm = voice(320, 16_000.0);
        let (mut low, mut block, mut decoded, mut back) = ([0i16; 160], Vec::new(), [0i16; 160], [0i16; 320]);
        downsample_2x(&pcm, &mut low);
        encode(&low, &mut block);
        assert_eq!(block.len(), 83);
        decode(&block, &mut decoded).unwrap();
        upsample_2x(&decoded, &mut back);
        let snr = snr_db(&pcm, &back);
        assert!(snr > 10.0, "SNR {snr:.1} dB");
    }

    #[test]
    fn silence_stays_silent_and_bad_blocks_are_refused() {
        let mut block = Vec::new();
        encode(&[0; 320], &mut block);
        let mut decoded = [0i16; 320];
        decode(&block, &mut decoded).unwrap();
        assert!(decoded.iter().all(|&s| s.abs() <= 8), "{:?}", &decoded[..8]);
        assert!(decode(&block[..100], &mut decoded).is_none(), "short");
        let mut bad_index = block.clone();
        bad_index[2] = 89;
        assert!(decode(&bad_index, &mut decoded).is_none(), "step index out of range");
    }

    #[test]
    fn full_scale_input_does_not_overflow() {
        let square: Vec<i16> = (0..320).map(|i| if (i / 8) % 2 == 0 { i16::MAX } else { i16::MIN }).collect();
        let mut block = Vec::new();
        encode(&square, &mut block);
        let mut decoded = [0i16; 320];
        decode(&block, &mut decoded).unwrap();
        let peak = decoded.iter().map(|s| i32::from(*s).abs()).max().unwrap();
        assert!(peak > 20_000, "the square wave is followed: peak {peak}");
    }
}
