//! Media at the edges of the engine: capture, synthetic sources, scaling, JPEG, audio devices,
//! resampling, mixing and levels.
//!
//! Everything here is blocking and synchronous; the session runs each source and sink on a
//! thread of its own. Pixel and sample layouts are fixed so that no stage has to guess:
//!
//! - capture frames ([`RgbFrame`]) are RGB24, row-major, no padding;
//! - decoded frames for the UI ([`DecodedFrame`]) are RGBA, 4 bytes a pixel;
//! - audio inside the engine is 16 kHz mono `i16`, in 20 ms frames of
//!   `protocol::jitter::FRAME_SAMPLES` (320) samples.
//!
//! Every device-backed constructor ([`open_camera`], [`MicSource::open`], [`SpeakerSink::open`])
//! returns [`MediaError::NoDevice`] when there is nothing to open, so the caller can fall back to
//! [`TestPattern`], [`ToneSource`] or [`NullSink`] with a warning. Nothing here panics on a
//! missing device or on bytes from the network.
//!
//! Times are µs since the Unix epoch ([`now_us`]), so bots on one machine can measure one-way
//! latency from the capture timestamp.

mod camera;
mod codec;
mod devices;
mod mic_monitor;
mod mix;
mod pattern;
mod resample;
mod room;
mod screen;
mod sinks;
mod sources;
mod voice;
#[cfg(all(target_os = "linux", not(target_env = "ohos")))]
mod x11_capture;

use std::time::{SystemTime, UNIX_EPOCH};

use protocol::jitter::{FRAME_SAMPLES, SAMPLE_RATE};

pub use camera::{list_cameras, open_camera, CameraInfo};
pub use codec::{fit_within, VideoDecoder, VideoEncoder, MAX_DECODE_HEIGHT, MAX_DECODE_WIDTH};
pub use devices::{
    list_input_devices, list_output_devices, set_audio_callback_probe, DeviceStats, MicSource, SpeakerSink,
    AUDIO_HOST_ENV, STALL_TIMEOUT,
};
pub use mic_monitor::{MicLevelMonitor, MonitorReport, MONITOR_REPORT_EVERY, MONITOR_STOP_WAIT};
pub use mix::{rms_dbfs, AudioLevel, LevelMeter, LevelWindow, Mixer, LEVEL_WINDOW_FRAMES, SILENCE_DBFS};
pub use pattern::{PatternStamp, TestPattern};
pub use room::{EchoLoopbackSource, EchoPath, LoopbackSlot, SimulatedRoom, MAX_ECHO_MS};
pub use screen::{
    list_screen_sources, open_screen, psnr_rgb_rgba, ScreenChoice, ScreenEncoder, ScreenSourceInfo, SyntheticSlides,
    LOSSY_SLICE_BUDGET, SLICE_BUDGET, SLIDES_HEIGHT, SLIDES_WIDTH, SLIDE_PERIOD_US, THUMBNAIL_WIDTH, TYPING_PERIOD_US,
    VIDEO_MODE_QUALITY,
};
pub use sinks::{NullSink, WavRecorder};
pub use sources::{ToneSource, WavSource, MAX_WAV_SECONDS};
pub use voice::{
    render_reference, RenderFeed, RenderQueue, VoicePreferences, VoiceProcessor, VoiceSettings, VoiceStats,
};

/// Everything that can go wrong in capture, coding and playback.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// There is no such device (or no device at all): fall back to a synthetic source or a null sink.
    #[error("no device: {0}")]
    NoDevice(String),
    /// The device exists but failed: it could not be configured, or its stream stopped.
    #[error("device error: {0}")]
    Device(String),
    /// The system does not let this app use the device (yet): the person has to allow it.
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// A frame could not be encoded or decoded (for a received frame: corrupt or oversized data).
    #[error("codec error: {0}")]
    Codec(String),
    /// A media file is malformed or in a format that is not supported.
    #[error("unsupported or malformed media: {0}")]
    Format(String),
    /// A caller passed something that cannot work (a zero size, a too-short buffer).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Reading or writing a file failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Microseconds since the Unix epoch: the timestamp carried by every captured frame.
///
/// Wall-clock time (not `Instant`) on purpose: two processes on one machine share it, so a
/// receiver can subtract a sender's capture time from its own `now_us()` to get one-way latency.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// One captured picture: RGB24, row-major, `width * height * 3` bytes, no padding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RgbFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 3` bytes of R, G, B.
    pub data: Vec<u8>,
    /// When the picture was captured, µs since the Unix epoch ([`now_us`]).
    pub capture_ts_us: u64,
}

/// One decoded picture for the UI: RGBA, row-major, `width * height * 4` bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DecodedFrame {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `width * height * 4` bytes of R, G, B, A (A is always 255).
    pub rgba: Vec<u8>,
}

/// A source of pictures: a camera or a synthetic pattern.
///
/// Blocking: call it from a dedicated thread.
pub trait VideoSource: Send {
    /// Fills `out` with the next picture, reusing `out.data`'s allocation.
    ///
    /// A paced source ([`VideoSource::is_paced`]) blocks until the device has a new picture;
    /// an unpaced one returns at once and the caller paces it with a timer.
    fn next_frame(&mut self, out: &mut RgbFrame) -> Result<(), MediaError>;

    /// A human-readable description for logs and the UI ("test pattern 854x480", a camera name).
    fn describe(&self) -> String;

    /// True when [`VideoSource::next_frame`] waits for the device (a camera); false when it
    /// returns at once (the test pattern) and the caller must pace it.
    fn is_paced(&self) -> bool {
        false
    }
}

/// A source of 16 kHz mono audio in 20 ms frames.
pub trait AudioSource: Send {
    /// Fills `out` with the next 20 ms. A paced source blocks until the device has produced them.
    fn read_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError>;

    /// True: [`AudioSource::read_frame`] blocks until the device has 20 ms (a microphone).
    /// False: it returns at once (a tone, a WAV file) and the caller paces it.
    fn is_paced(&self) -> bool;
}

/// A consumer of mixed 16 kHz mono audio in 20 ms frames.
pub trait AudioSink: Send {
    /// Takes the next 20 ms. A paced sink blocks while the device's ring is full, so the caller
    /// is paced by the device clock.
    fn write_frame(&mut self, frame: &[i16; FRAME_SAMPLES]) -> Result<(), MediaError>;

    /// False for sinks that never block ([`NullSink`], [`WavRecorder`]): the caller must pace
    /// with a timer.
    fn is_paced(&self) -> bool;
}

/// Converts a float sample in -1.0..=1.0 to `i16`, saturating (a resampler can overshoot a
/// full-scale input slightly).
#[inline]
pub(crate) fn f32_to_i16(sample: f32) -> i16 {
    (sample * 32768.0).round().clamp(i16::MIN as f32, i16::MAX as f32) as i16
}

/// Converts an `i16` sample to a float in -1.0..1.0.
#[inline]
pub(crate) fn i16_to_f32(sample: i16) -> f32 {
    sample as f32 / 32768.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_us_is_after_2020_and_monotonic_enough() {
        let a = now_us();
        let b = now_us();
        assert!(a > 1_577_836_800_000_000, "now_us looks wrong: {a}");
        assert!(b >= a);
    }

    #[test]
    fn sample_conversions_saturate_and_round_trip() {
        assert_eq!(f32_to_i16(2.0), i16::MAX);
        assert_eq!(f32_to_i16(-2.0), i16::MIN);
        assert_eq!(f32_to_i16(0.0), 0);
        for s in [i16::MIN, -1234, -1, 0, 1, 999, i16::MAX] {
            assert_eq!(f32_to_i16(i16_to_f32(s)), s);
        }
    }
}
