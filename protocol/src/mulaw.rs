//! G.711 µ-law: 16-bit linear PCM companded to 8 bits per sample (ITU-T G.711, the segment
//! and bias arithmetic of its reference implementation). Parlor uses it only for the redundant
//! copy of the previous audio frame in each audio packet: half the bytes of PCM, about 38 dB
//! signal-to-noise on speech, enough to replace a lost frame without a listener noticing.

/// Added to the magnitude before finding its segment, so that segments start at powers of two.
const BIAS: i32 = 0x84;
/// Largest magnitude that can be encoded (after adding the bias it fits 15 bits).
const CLIP: i32 = 32_635;

/// One sample to µ-law.
pub fn encode_sample(sample: i16) -> u8 {
    let sign: u8 = if sample < 0 { 0x80 } else { 0 };
    let magnitude = i32::from(sample).abs().min(CLIP) + BIAS;
    // Segment: position of the highest set bit above bit 7 (0..=7).
    let segment = (31 - (magnitude as u32).leading_zeros()).saturating_sub(7).min(7) as u8;
    let mantissa = ((magnitude >> (segment + 3)) & 0x0F) as u8;
    !(sign | (segment << 4) | mantissa)
}

/// One µ-law byte back to linear PCM.
pub fn decode_sample(byte: u8) -> i16 {
    let b = !byte;
    let segment = (b >> 4) & 0x07;
    let mantissa = i32::from(b & 0x0F);
    let magnitude = (((mantissa << 3) + BIAS) << segment) - BIAS;
    (if b & 0x80 != 0 { -magnitude } else { magnitude }) as i16
}

/// Encodes `pcm` into `out` (one byte per sample); `out` must be as long as `pcm`.
pub fn encode(pcm: &[i16], out: &mut [u8]) {
    for (o, &s) in out.iter_mut().zip(pcm) {
        *o = encode_sample(s);
    }
}

/// Decodes `mulaw` into `out`; `out` must be as long as `mulaw`.
pub fn decode(mulaw: &[u8], out: &mut [i16]) {
    for (o, &b) in out.iter_mut().zip(mulaw) {
        *o = decode_sample(b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_standard_s_code_points() {
        // Values of G.711's table: silence, the ends of the range, a mid-segment value.
        assert_eq!(encode_sample(0), 0xFF);
        assert_eq!(decode_sample(0xFF), 0);
        assert_eq!(decode_sample(0x7F), 0);
        assert_eq!(encode_sample(i16::MAX), 0x80);
        assert_eq!(encode_sample(i16::MIN), 0x00);
        assert_eq!(decode_sample(0x80), 32_124);
        assert_eq!(decode_sample(0x00), -32_124);
        assert_eq!(encode_sample(1000), 0xCE);
        assert_eq!(encode_sample(-1000), 0x4E);
        assert_eq!(decode_sample(0xCE), 988);
    }

    #[test]
    fn every_code_decodes_to_a_value_that_encodes_back_to_it() {
        for byte in 0..=255u8 {
            let value = decode_sample(byte);
            // 0x7F is "negative zero", which encodes as 0xFF.
            let expected = if byte == 0x7F { 0xFF } else { byte };
            assert_eq!(encode_sample(value), expected, "code {byte:#04x} = {value}");
        }
    }

    #[test]
    fn the_error_is_a_small_fraction_of_the_signal() {
        // The quantization step grows with the level: at most half a step, which is about 1/32
        // of the value (a little more just above a segment boundary), and 4 in the first segment.
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let back = decode_sample(encode_sample(s));
            let error = (i32::from(back) - i32::from(s)).abs();
            let allowed = i32::from(s).abs() / 28 + 4;
            assert!(error <= allowed, "{s} -> {back}");
        }
    }
}
