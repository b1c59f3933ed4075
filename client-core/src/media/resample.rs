//! Mono sample-rate conversion with `rubato`, in the two shapes the engine needs.
//!
//! - [`resample_clip`]: a whole clip in memory (a WAV file), any rate → any rate.
//! - [`ChunkResampler`]: a stream, one 20 ms engine frame per call, with a fixed side of
//!   [`FRAME_SAMPLES`](super::FRAME_SAMPLES) at 16 kHz: fixed *output* for capture (device rate
//!   → 16 kHz: each call yields exactly one frame), fixed *input* for playback (one 16 kHz frame
//!   in → about 20 ms at the device rate out). All buffers are sized at construction, so
//!   processing allocates nothing.
//!
//! rubato's synchronous FFT resampler is used throughout: the rates are fixed for the life of a
//! stream, and it is both the fastest and the cleanest of rubato's resamplers.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler};

use super::MediaError;

/// Resamples a mono clip from `from_rate` to `to_rate`, trimming the resampler's delay so the
/// output lines up with the input.
pub(crate) fn resample_clip(input: &[f32], from_rate: u32, to_rate: u32) -> Result<Vec<f32>, MediaError> {
    if from_rate == to_rate || input.is_empty() {
        return Ok(input.to_vec());
    }
    let mut resampler = Fft::<f32>::new(from_rate as usize, to_rate as usize, 1024, 1, FixedSync::Both)
        .map_err(|e| MediaError::Format(format!("cannot resample {from_rate} Hz to {to_rate} Hz: {e}")))?;
    let mut output = vec![0.0f32; resampler.process_all_needed_output_len(input.len())];
    let input_adapter = InterleavedSlice::new(input, 1, input.len()).map_err(resample_error)?;
    let output_frames = output.len();
    let mut output_adapter = InterleavedSlice::new_mut(&mut output, 1, output_frames).map_err(resample_error)?;
    let (_, produced) = resampler
        .process_all_into_buffer(&input_adapter, &mut output_adapter, input.len(), None)
        .map_err(resample_error)?;
    output.truncate(produced);
    Ok(output)
}

/// Which side of a [`ChunkResampler`] has the fixed size of one engine frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fixed {
    /// Capture: every call produces exactly `chunk` output samples.
    Output,
    /// Playback: every call consumes exactly `chunk` input samples.
    Input,
}

/// A streaming mono resampler with a fixed chunk on one side; a plain copy when the rates match.
pub(crate) struct ChunkResampler {
    inner: Option<Fft<f32>>,
    chunk: usize,
    fixed: Fixed,
}

impl ChunkResampler {
    pub(crate) fn new(from_rate: u32, to_rate: u32, chunk: usize, fixed: Fixed) -> Result<Self, MediaError> {
        let inner = if from_rate == to_rate {
            None
        } else {
            let side = match fixed {
                Fixed::Output => FixedSync::Output,
                Fixed::Input => FixedSync::Input,
            };
            Some(
                Fft::<f32>::new(from_rate as usize, to_rate as usize, chunk, 1, side)
                    .map_err(|e| MediaError::Device(format!("cannot resample {from_rate} Hz to {to_rate} Hz: {e}")))?,
            )
        };
        Ok(Self { inner, chunk, fixed })
    }

    /// Input samples the next [`ChunkResampler::process`] call consumes.
    pub(crate) fn input_needed(&self) -> usize {
        self.inner.as_ref().map_or(self.chunk, |r| r.input_frames_next())
    }

    /// The most input any call can ask for: size input buffers with this.
    pub(crate) fn input_max(&self) -> usize {
        self.inner.as_ref().map_or(self.chunk, |r| r.input_frames_max())
    }

    /// The most output any call can produce: size output buffers with this.
    pub(crate) fn output_max(&self) -> usize {
        self.inner.as_ref().map_or(self.chunk, |r| r.output_frames_max())
    }

    /// Resamples exactly [`ChunkResampler::input_needed`] samples from the front of `input`
    /// into the front of `output`; returns how many output samples were written.
    pub(crate) fn process(&mut self, input: &[f32], output: &mut [f32]) -> Result<usize, MediaError> {
        let needed = self.input_needed();
        let Some(resampler) = self.inner.as_mut() else {
            let n = needed.min(input.len()).min(output.len());
            output[..n].copy_from_slice(&input[..n]);
            return Ok(n);
        };
        let output_frames = output.len();
        let input_adapter = InterleavedSlice::new(input, 1, needed).map_err(resample_error)?;
        let mut output_adapter = InterleavedSlice::new_mut(output, 1, output_frames).map_err(resample_error)?;
        let (_, written) =
            resampler.process_into_buffer(&input_adapter, &mut output_adapter, None).map_err(resample_error)?;
        debug_assert!(self.fixed == Fixed::Input || written == self.chunk);
        Ok(written)
    }
}

fn resample_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::Device(format!("resampler: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(rate: u32, freq: f32, len: usize) -> Vec<f32> {
        (0..len).map(|i| (i as f32 * freq * std::f32::consts::TAU / rate as f32).sin() * 0.5).collect()
    }

    #[test]
    fn clip_length_follows_the_rate_ratio() {
        let out = resample_clip(&sine(44_100, 440.0, 44_100), 44_100, 16_000).unwrap();
        assert!((out.len() as i64 - 16_000).abs() <= 2, "got {}", out.len());
    }

    #[test]
    fn capture_side_yields_one_frame_per_call() {
        let mut r = ChunkResampler::new(48_000, 16_000, 320, Fixed::Output).unwrap();
        let input = sine(48_000, 440.0, r.input_max());
        let mut out = vec![0.0; r.output_max()];
        let mut consumed = 0;
        for _ in 0..50 {
            let need = r.input_needed();
            consumed += need;
            assert_eq!(r.process(&input[..need], &mut out).unwrap(), 320);
        }
        // 50 frames of 20 ms at 48 kHz is 48 000 samples, give or take the first call's priming.
        assert!((consumed as i64 - 48_000).abs() < 2_000, "consumed {consumed}");
    }

    #[test]
    fn playback_side_consumes_one_frame_per_call() {
        let mut r = ChunkResampler::new(16_000, 44_100, 320, Fixed::Input).unwrap();
        assert_eq!(r.input_needed(), 320);
        let input = sine(16_000, 440.0, 320);
        let mut out = vec![0.0; r.output_max()];
        let produced: usize = (0..100).map(|_| r.process(&input, &mut out).unwrap()).sum();
        assert!((produced as i64 - 88_200).abs() < 2_000, "produced {produced}");
    }

    #[test]
    fn equal_rates_copy() {
        let mut r = ChunkResampler::new(16_000, 16_000, 320, Fixed::Output).unwrap();
        let input = sine(16_000, 440.0, 320);
        let mut out = vec![0.0; 320];
        assert_eq!(r.process(&input, &mut out).unwrap(), 320);
        assert_eq!(out, input);
    }
}
