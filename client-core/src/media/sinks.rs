//! Sinks that are not a sound card: discard ([`NullSink`]) or record to a WAV file
//! ([`WavRecorder`]). Neither blocks, so the caller paces them with a 20 ms timer.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use super::sources::wav_error;
use super::{AudioSink, MediaError, FRAME_SAMPLES, SAMPLE_RATE};

/// Discards everything: the speaker of a machine without one.
#[derive(Debug, Clone, Default)]
pub struct NullSink {
    frames: u64,
}

impl NullSink {
    /// A new sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames written so far.
    pub fn frames_written(&self) -> u64 {
        self.frames
    }
}

impl AudioSink for NullSink {
    fn write_frame(&mut self, _frame: &[i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        self.frames += 1;
        Ok(())
    }

    fn is_paced(&self) -> bool {
        false
    }
}

/// Records 16 kHz mono 16-bit audio to a WAV file.
///
/// Call [`WavRecorder::finish`] to write the final header; if the recorder is dropped instead,
/// `hound` finalizes it on a best-effort basis.
pub struct WavRecorder {
    writer: Option<hound::WavWriter<BufWriter<File>>>,
    samples: u64,
}

impl std::fmt::Debug for WavRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder").field("samples", &self.samples).finish()
    }
}

impl WavRecorder {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: impl AsRef<Path>) -> Result<Self, MediaError> {
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: SAMPLE_RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let writer = hound::WavWriter::create(path.as_ref(), spec).map_err(|e| wav_error(path.as_ref(), e))?;
        Ok(Self { writer: Some(writer), samples: 0 })
    }

    /// Appends samples (16 kHz mono). Fails once the file would exceed WAV's 4 GiB limit.
    pub fn write_frame(&mut self, samples: &[i16]) -> Result<(), MediaError> {
        let writer = self.writer.as_mut().ok_or_else(|| MediaError::InvalidArgument("recorder finished".into()))?;
        let mut writer = writer.get_i16_writer(samples.len() as u32);
        for &s in samples {
            writer.write_sample(s);
        }
        writer.flush().map_err(|e| wav_error(Path::new("recording"), e))?;
        self.samples += samples.len() as u64;
        Ok(())
    }

    /// Samples written so far.
    pub fn samples_written(&self) -> u64 {
        self.samples
    }

    /// Writes the final header and closes the file.
    pub fn finish(mut self) -> Result<(), MediaError> {
        match self.writer.take() {
            Some(writer) => writer.finalize().map_err(|e| wav_error(Path::new("recording"), e)),
            None => Ok(()),
        }
    }
}

impl AudioSink for WavRecorder {
    fn write_frame(&mut self, frame: &[i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        WavRecorder::write_frame(self, frame)
    }

    fn is_paced(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_sink_counts_and_is_unpaced() {
        let mut sink = NullSink::new();
        sink.write_frame(&[0; FRAME_SAMPLES]).unwrap();
        sink.write_frame(&[1; FRAME_SAMPLES]).unwrap();
        assert_eq!(sink.frames_written(), 2);
        assert!(!sink.is_paced());
    }

    #[test]
    fn recorder_writes_a_16k_mono_wav_that_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.wav");
        let mut rec = WavRecorder::create(&path).unwrap();
        let frame: [i16; FRAME_SAMPLES] = std::array::from_fn(|i| i as i16 * 3 - 400);
        rec.write_frame(&frame).unwrap();
        AudioSink::write_frame(&mut rec, &frame).unwrap();
        rec.write_frame(&[7, 8, 9]).unwrap();
        assert_eq!(rec.samples_written(), 2 * FRAME_SAMPLES as u64 + 3);
        rec.finish().unwrap();
        let mut reader = hound::WavReader::open(&path).unwrap();
        let spec = reader.spec();
        assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 16_000, 16));
        let back: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(back.len(), 2 * FRAME_SAMPLES + 3);
        assert_eq!(&back[..FRAME_SAMPLES], &frame[..]);
        assert_eq!(&back[2 * FRAME_SAMPLES..], &[7, 8, 9]);
    }

    #[test]
    fn recorder_in_a_missing_directory_is_an_io_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(WavRecorder::create(dir.path().join("no/such/dir/x.wav")), Err(MediaError::Io(_))));
    }
}
