//! Synthetic audio sources: a sine tone and a WAV file on loop.
//!
//! Both are unpaced — they return a frame at once — so the caller runs them on a 20 ms timer.
//! The WAV source decodes and resamples the whole file when it is opened (any rate, channel
//! count and sample format `hound` reads, downmixed to mono and resampled to 16 kHz with
//! `rubato`), so reading a frame later is a copy. Files longer than [`MAX_WAV_SECONDS`] are
//! refused rather than held in memory.

use std::path::Path;

use super::resample::resample_clip;
use super::{f32_to_i16, AudioSource, MediaError, FRAME_SAMPLES, SAMPLE_RATE};

/// The longest WAV file [`WavSource`] accepts (at 16 kHz mono that is ~19 MB in memory).
pub const MAX_WAV_SECONDS: u32 = 600;

/// A continuous sine tone: the synthetic microphone.
#[derive(Debug, Clone)]
pub struct ToneSource {
    /// Phase advance per sample, in cycles.
    step: f64,
    /// Current phase, in cycles (0..1).
    phase: f64,
    amplitude: f64,
}

impl ToneSource {
    /// A tone at `freq_hz` (clamped to 0..=7999 Hz, below 16 kHz's Nyquist) and `amplitude`
    /// (fraction of full scale, clamped to 0..=1).
    pub fn new(freq_hz: f32, amplitude: f32) -> Self {
        let freq = f64::from(freq_hz).clamp(0.0, f64::from(SAMPLE_RATE) / 2.0 - 1.0);
        Self { step: freq / f64::from(SAMPLE_RATE), phase: 0.0, amplitude: f64::from(amplitude).clamp(0.0, 1.0) }
    }
}

impl AudioSource for ToneSource {
    fn read_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        for sample in out.iter_mut() {
            let value = (self.phase * std::f64::consts::TAU).sin() * self.amplitude;
            *sample = f32_to_i16(value as f32);
            self.phase = (self.phase + self.step).fract();
        }
        Ok(())
    }

    fn is_paced(&self) -> bool {
        false
    }
}

/// A WAV file played on loop, as 16 kHz mono.
#[derive(Debug, Clone)]
pub struct WavSource {
    samples: Vec<i16>,
    position: usize,
    description: String,
}

impl WavSource {
    /// Reads the whole file at `path` and converts it to 16 kHz mono.
    ///
    /// Accepts 8/16/24/32-bit integer and 32-bit float PCM, any channel count, rates from
    /// 1 kHz to 384 kHz, up to [`MAX_WAV_SECONDS`] long. An empty file is an error (there
    /// would be nothing to loop).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, MediaError> {
        let path = path.as_ref();
        let mut reader = hound::WavReader::open(path).map_err(|e| wav_error(path, e))?;
        let spec = reader.spec();
        let channels = usize::from(spec.channels);
        if channels == 0 || !(1_000..=384_000).contains(&spec.sample_rate) {
            return Err(MediaError::Format(format!(
                "{}: {} channels at {} Hz is not supported",
                path.display(),
                spec.channels,
                spec.sample_rate
            )));
        }
        let frames = reader.duration();
        if frames > MAX_WAV_SECONDS.saturating_mul(spec.sample_rate) {
            return Err(MediaError::Format(format!(
                "{}: {:.0} s long, the limit is {MAX_WAV_SECONDS} s",
                path.display(),
                f64::from(frames) / f64::from(spec.sample_rate)
            )));
        }
        let interleaved: Vec<f32> = match (spec.sample_format, spec.bits_per_sample) {
            (hound::SampleFormat::Float, 32) => reader.samples::<f32>().collect::<Result<_, _>>(),
            (hound::SampleFormat::Int, bits @ 1..=32) => {
                let scale = 1.0 / (1u64 << (bits - 1)) as f32;
                reader.samples::<i32>().map(|s| s.map(|v| v as f32 * scale)).collect::<Result<_, _>>()
            }
            (format, bits) => {
                return Err(MediaError::Format(format!(
                    "{}: {bits}-bit {format:?} samples are not supported",
                    path.display()
                )))
            }
        }
        .map_err(|e| wav_error(path, e))?;
        let mono: Vec<f32> =
            interleaved.chunks_exact(channels).map(|frame| frame.iter().sum::<f32>() / channels as f32).collect();
        if mono.is_empty() {
            return Err(MediaError::Format(format!("{}: no audio in the file", path.display())));
        }
        let resampled = resample_clip(&mono, spec.sample_rate, SAMPLE_RATE)?;
        let samples: Vec<i16> = resampled.into_iter().map(f32_to_i16).collect();
        if samples.is_empty() {
            return Err(MediaError::Format(format!("{}: too short to play", path.display())));
        }
        let description = format!(
            "{} ({} Hz, {} ch, {:.1} s)",
            path.display(),
            spec.sample_rate,
            spec.channels,
            samples.len() as f64 / f64::from(SAMPLE_RATE)
        );
        Ok(Self { samples, position: 0, description })
    }

    /// The file's length after conversion, in 16 kHz samples.
    pub fn len_samples(&self) -> usize {
        self.samples.len()
    }

    /// Path, original format and length, for logs.
    pub fn describe(&self) -> &str {
        &self.description
    }
}

impl AudioSource for WavSource {
    fn read_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        let mut filled = 0;
        while filled < FRAME_SAMPLES {
            let n = (FRAME_SAMPLES - filled).min(self.samples.len() - self.position);
            out[filled..filled + n].copy_from_slice(&self.samples[self.position..self.position + n]);
            filled += n;
            self.position = (self.position + n) % self.samples.len();
        }
        Ok(())
    }

    fn is_paced(&self) -> bool {
        false
    }
}

/// Maps a WAV library error for `path`, shared by the WAV source and the WAV recorder.
pub(super) fn wav_error(path: &Path, e: hound::Error) -> MediaError {
    match e {
        hound::Error::IoError(io) => MediaError::Io(io),
        other => MediaError::Format(format!("{}: {other}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Zero crossings (sign changes) in a signal: ~2 per cycle.
    fn crossings(samples: &[i16]) -> usize {
        samples.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count()
    }

    #[test]
    fn tone_has_the_right_pitch_and_level() {
        let mut tone = ToneSource::new(440.0, 0.5);
        let mut all = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..50 {
            tone.read_frame(&mut frame).unwrap();
            all.extend_from_slice(&frame);
        }
        let cycles = crossings(&all) as f64 / 2.0;
        assert!((cycles - 440.0).abs() <= 2.0, "{cycles} cycles in 1 s");
        let peak = all.iter().map(|s| s.unsigned_abs()).max().unwrap();
        assert!((16_000..=16_500).contains(&peak), "peak {peak}");
        assert!(!tone.is_paced());
    }

    #[test]
    fn wav_44k1_stereo_becomes_16k_mono_at_the_right_pitch_and_loops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tone.wav");
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: 44_100,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut writer = hound::WavWriter::create(&path, spec).unwrap();
        for i in 0..44_100 {
            let v = ((i as f64 * 440.0 * std::f64::consts::TAU / 44_100.0).sin() * 12_000.0) as i16;
            writer.write_sample(v).unwrap();
            writer.write_sample(v).unwrap();
        }
        writer.finalize().unwrap();

        let mut wav = WavSource::open(&path).unwrap();
        assert!((wav.len_samples() as i64 - 16_000).abs() <= 2, "{} samples", wav.len_samples());
        let mut all = Vec::new();
        let mut frame = [0i16; FRAME_SAMPLES];
        for _ in 0..50 {
            wav.read_frame(&mut frame).unwrap();
            all.extend_from_slice(&frame);
        }
        let cycles = crossings(&all[..16_000.min(all.len())]) as f64 / 2.0;
        assert!((cycles - 440.0).abs() <= 22.0, "{cycles} cycles in 1 s, want 440 ±5%");
        // Keeps going past the end of the file.
        for _ in 0..60 {
            wav.read_frame(&mut frame).unwrap();
        }
        assert!(frame.iter().any(|&s| s.unsigned_abs() > 5_000));
    }

    #[test]
    fn bad_wav_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(WavSource::open(dir.path().join("missing.wav")), Err(MediaError::Io(_))));
        let junk = dir.path().join("junk.wav");
        std::fs::write(&junk, b"RIFF but not really a wave file").unwrap();
        assert!(matches!(WavSource::open(&junk), Err(MediaError::Format(_))));
        let empty = dir.path().join("empty.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 8_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        hound::WavWriter::create(&empty, spec).unwrap().finalize().unwrap();
        assert!(matches!(WavSource::open(&empty), Err(MediaError::Format(_))));
    }
}
