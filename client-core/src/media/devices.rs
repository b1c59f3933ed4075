//! Sound-card capture and playback with `cpal`, real-time safe.
//!
//! The audio callbacks run on the device's real-time thread, where a page fault, an allocation
//! or a lock held by a preempted thread turns into an audible glitch. So each callback does
//! exactly one thing: copy samples between the device buffer and a lock-free `ringbuf` ring
//! (converting the sample format on the way), plus a few relaxed atomic counters. No
//! allocation, no lock, no logging, no resampling. Everything else — downmixing, resampling
//! between the device rate and 16 kHz with `rubato`, waiting — happens on the caller's thread
//! in [`MicSource::read_frame`] and [`SpeakerSink::write_frame`], with buffers sized at open.
//!
//! Waiting is done by sleeping for the time the missing samples take to arrive (or drain) at
//! the device rate, so the caller is paced by the device clock without the callback having to
//! signal anything. A device that stops moving samples for [`STALL_TIMEOUT`] is reported as a
//! [`MediaError::Device`] instead of blocking forever.
//!
//! [`set_audio_callback_probe`] lets a test observe entry to and exit from every callback (that
//! is how the no-allocation guarantee is checked with a counting allocator).
//!
//! Host choice on Linux: cpal's PulseAudio host when a PulseAudio server (or PipeWire's pulse
//! server) is reachable, which is what desktops run and what gives real-time pacing on a
//! machine whose only "card" is PulseAudio's null sink; ALSA otherwise. (Going through ALSA's
//! pulse plugin instead stalls cpal's ALSA backend after a few periods: the plugin returns
//! `EIO` from `snd_pcm_avail_delay` while PulseAudio has no timing data yet, alsa-plugins
//! issue #65.) `PARLOR_AUDIO_HOST=alsa` or `=pulseaudio` forces one. Without a sound card or
//! server, ALSA's `default` device cannot be opened and the constructors return
//! [`MediaError::NoDevice`].

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, Sample, SampleFormat, SizedSample};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};

use super::resample::{ChunkResampler, Fixed};
use super::{f32_to_i16, i16_to_f32, AudioSink, AudioSource, MediaError, FRAME_SAMPLES, SAMPLE_RATE};

/// A device that moves no samples for this long is considered dead.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(3);
/// Capture ring size: how much audio may pile up if the reader is late.
const CAPTURE_RING: Duration = Duration::from_millis(200);
/// Capture backlog beyond this (plus the frame being read) is skipped, so a reader that fell
/// behind once does not carry the extra latency forever.
const CAPTURE_MAX_BACKLOG: Duration = Duration::from_millis(60);
/// Playback ring size: the latency the sink adds on top of the device's own buffer, and how
/// late the writer may be before the device underruns.
const PLAYBACK_RING: Duration = Duration::from_millis(100);
/// Device buffer asked for (20 ms, one engine frame); the device's default if refused.
const DEVICE_BUFFER: Duration = Duration::from_millis(20);
/// Samples converted per step in the playback callback (a stack buffer; a multiple of every
/// channel count up to 8).
const CALLBACK_CHUNK: usize = 480;
/// More channels than this cannot be handled by the fixed callback chunk.
const MAX_CHANNELS: u16 = 32;

static CALLBACK_PROBE: OnceLock<fn(bool)> = OnceLock::new();

/// Installs `probe`, called with `true` on entry to and `false` on exit from every audio data
/// callback, on the audio thread. For tests (a counting allocator checks that nothing between
/// the two calls allocates). Can be installed once per process; returns false if one already is.
pub fn set_audio_callback_probe(probe: fn(bool)) -> bool {
    CALLBACK_PROBE.set(probe).is_ok()
}

#[inline]
fn probe(entering: bool) {
    // An atomic load once set: no lock.
    if let Some(probe) = CALLBACK_PROBE.get() {
        probe(entering);
    }
}

/// What a device stream has done so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceStats {
    /// The device's name.
    pub device: String,
    /// The device's sample rate (the engine resamples to and from 16 kHz).
    pub sample_rate: u32,
    /// The device's channel count (the engine downmixes / duplicates mono).
    pub channels: u16,
    /// The device's sample format ("i16", "f32", ...).
    pub sample_format: String,
    /// Data callbacks so far.
    pub callbacks: u64,
    /// Samples (per channel) moved between the device and the ring.
    pub device_frames: u64,
    /// Capture: samples dropped because the ring was full (the reader was late).
    /// Playback: samples of silence played because the ring was empty after playback had
    /// started (an underrun: the writer was late).
    pub xrun_samples: u64,
}

/// Counters shared between a callback and its owner; atomics only.
#[derive(Default)]
struct Shared {
    callbacks: AtomicU64,
    frames: AtomicU64,
    xrun_samples: AtomicU64,
    failed: AtomicBool,
}

/// Environment variable that forces the audio host: `alsa` or `pulseaudio`.
pub const AUDIO_HOST_ENV: &str = "PARLOR_AUDIO_HOST";

/// The audio host to use: PulseAudio when reachable (or forced), else the platform default.
fn audio_host() -> cpal::Host {
    let forced = std::env::var(AUDIO_HOST_ENV).ok();
    #[cfg(target_os = "linux")]
    {
        if forced.as_deref() != Some("alsa") {
            match cpal::host_from_id(cpal::HostId::PulseAudio) {
                Ok(host) => return host,
                Err(e) if forced.as_deref() == Some("pulseaudio") => {
                    tracing::warn!(error = %e, "PulseAudio forced by {AUDIO_HOST_ENV} but unavailable, using ALSA");
                }
                Err(e) => tracing::debug!(error = %e, "no PulseAudio server, using ALSA"),
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = forced;
    cpal::default_host()
}

/// Names of the capture devices the audio host lists (empty if none or on error).
pub fn list_input_devices() -> Vec<String> {
    match audio_host().input_devices() {
        Ok(devices) => devices.map(|d| device_name(&d)).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "listing input devices failed");
            Vec::new()
        }
    }
}

/// Names of the playback devices the audio host lists (empty if none or on error).
pub fn list_output_devices() -> Vec<String> {
    match audio_host().output_devices() {
        Ok(devices) => devices.map(|d| device_name(&d)).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "listing output devices failed");
            Vec::new()
        }
    }
}

fn device_name(device: &cpal::Device) -> String {
    device
        .description()
        .map(|d| d.name().to_string())
        .or_else(|_| device.id().map(|id| id.to_string()))
        .unwrap_or_else(|_| "unknown device".to_string())
}

/// Whether `device` is the one the user asked for by `name` (its name, ALSA id, or host:id).
fn device_matches(device: &cpal::Device, name: &str) -> bool {
    device_name(device) == name || device.id().is_ok_and(|id| id.id() == name || id.to_string() == name)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Direction {
    Input,
    Output,
}

impl Direction {
    fn noun(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// Finds the device and its default configuration; every failure here means there is no
/// usable device of that kind.
fn open_device(
    name: Option<&str>,
    direction: Direction,
) -> Result<(cpal::Device, cpal::SupportedStreamConfig, String), MediaError> {
    let host = audio_host();
    let noun = direction.noun();
    let device = match name {
        None => match direction {
            Direction::Input => host.default_input_device(),
            Direction::Output => host.default_output_device(),
        }
        .ok_or_else(|| MediaError::NoDevice(format!("no default {noun} device")))?,
        Some(wanted) => {
            let devices = match direction {
                Direction::Input => host.input_devices(),
                Direction::Output => host.output_devices(),
            }
            .map_err(|e| MediaError::NoDevice(format!("cannot list {noun} devices: {e}")))?;
            let mut seen = Vec::new();
            let mut found = None;
            for device in devices {
                if device_matches(&device, wanted) {
                    found = Some(device);
                    break;
                }
                seen.push(device_name(&device));
            }
            found.ok_or_else(|| {
                MediaError::NoDevice(format!("no {noun} device named {wanted:?} (found: {})", seen.join(", ")))
            })?
        }
    };
    let name = device_name(&device);
    let config = match direction {
        Direction::Input => device.default_input_config(),
        Direction::Output => device.default_output_config(),
    }
    .map_err(|e| MediaError::NoDevice(format!("{noun} device {name:?} cannot be used: {e}")))?;
    if config.channels() == 0 || config.channels() > MAX_CHANNELS || config.sample_rate() < 1000 {
        return Err(MediaError::Device(format!(
            "{noun} device {name:?}: unsupported {} channels at {} Hz",
            config.channels(),
            config.sample_rate()
        )));
    }
    Ok((device, config, name))
}

/// Builds a stream, first with a 20 ms device buffer and, if the device refuses that, with its
/// default; then starts it.
fn start_stream(
    name: &str,
    config: &cpal::SupportedStreamConfig,
    mut build: impl FnMut(cpal::StreamConfig) -> Result<cpal::Stream, cpal::Error>,
) -> Result<cpal::Stream, MediaError> {
    let mut stream_config = config.config();
    stream_config.buffer_size =
        cpal::BufferSize::Fixed((u64::from(config.sample_rate()) * DEVICE_BUFFER.as_millis() as u64 / 1000) as u32);
    let stream = match build(stream_config) {
        Ok(stream) => stream,
        Err(fixed_err) => {
            tracing::debug!(device = name, error = %fixed_err, "fixed buffer refused, using the device default");
            stream_config.buffer_size = cpal::BufferSize::Default;
            build(stream_config).map_err(|e| MediaError::Device(format!("{name:?}: cannot open a stream: {e}")))?
        }
    };
    stream.play().map_err(|e| MediaError::Device(format!("{name:?}: cannot start the stream: {e}")))?;
    Ok(stream)
}

/// The stream error callback: transient conditions are logged, anything else marks the stream
/// failed so the owner reports it instead of waiting for samples that will never come.
fn on_stream_error(shared: &Shared, device: &str, error: cpal::Error) {
    match error.kind() {
        cpal::ErrorKind::Xrun | cpal::ErrorKind::DeviceChanged | cpal::ErrorKind::RealtimeDenied => {
            tracing::debug!(device, %error, "audio stream notice");
        }
        _ => {
            tracing::warn!(device, %error, "audio stream failed");
            shared.failed.store(true, Ordering::Release);
        }
    }
}

fn stats(shared: &Shared, device: &str, config: &cpal::SupportedStreamConfig) -> DeviceStats {
    DeviceStats {
        device: device.to_string(),
        sample_rate: config.sample_rate(),
        channels: config.channels(),
        sample_format: config.sample_format().to_string(),
        callbacks: shared.callbacks.load(Ordering::Relaxed),
        device_frames: shared.frames.load(Ordering::Relaxed),
        xrun_samples: shared.xrun_samples.load(Ordering::Relaxed),
    }
}

/// How long `samples` interleaved samples take at the device rate, clamped to a sensible
/// polling interval.
fn wait_time(samples: usize, channels: usize, rate: u32) -> Duration {
    let frames = samples / channels.max(1);
    Duration::from_secs_f64(frames as f64 / f64::from(rate)).clamp(Duration::from_millis(1), Duration::from_millis(20))
}

/// Tracks whether a ring is moving, to tell a slow device from a dead one.
struct StallWatch {
    last_level: usize,
    since: Instant,
}

impl StallWatch {
    fn new(level: usize) -> Self {
        Self { last_level: level, since: Instant::now() }
    }

    /// True once `level` has not changed for [`STALL_TIMEOUT`].
    fn stalled(&mut self, level: usize) -> bool {
        if level != self.last_level {
            self.last_level = level;
            self.since = Instant::now();
            return false;
        }
        self.since.elapsed() > STALL_TIMEOUT
    }
}

macro_rules! dispatch_sample_format {
    ($format:expr, $build:ident, $($args:expr),*) => {
        match $format {
            SampleFormat::I8 => $build::<i8>($($args),*),
            SampleFormat::I16 => $build::<i16>($($args),*),
            SampleFormat::I24 => $build::<cpal::I24>($($args),*),
            SampleFormat::I32 => $build::<i32>($($args),*),
            SampleFormat::I64 => $build::<i64>($($args),*),
            SampleFormat::U8 => $build::<u8>($($args),*),
            SampleFormat::U16 => $build::<u16>($($args),*),
            SampleFormat::U32 => $build::<u32>($($args),*),
            SampleFormat::U64 => $build::<u64>($($args),*),
            SampleFormat::F32 => $build::<f32>($($args),*),
            SampleFormat::F64 => $build::<f64>($($args),*),
            other => Err(MediaError::Device(format!("sample format {other} is not supported"))),
        }
    };
}

// ------------------------------------------------------------------------------------------
// Capture
// ------------------------------------------------------------------------------------------

/// A microphone: cpal input, converted to 16 kHz mono 20 ms frames. Paced by the device.
pub struct MicSource {
    _stream: cpal::Stream,
    ring: HeapCons<f32>,
    shared: Arc<Shared>,
    config: cpal::SupportedStreamConfig,
    name: String,
    channels: usize,
    resampler: ChunkResampler,
    interleaved: Vec<f32>,
    mono: Vec<f32>,
    resampled: Vec<f32>,
    skipped_samples: u64,
}

impl std::fmt::Debug for MicSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicSource").field("stats", &self.stats()).finish()
    }
}

impl MicSource {
    /// Opens the named capture device, or the default one with `None`, and starts capturing.
    ///
    /// [`MediaError::NoDevice`] when there is no such device or it cannot be configured (no
    /// sound card); [`MediaError::Device`] when the stream cannot be started.
    pub fn open(device_name: Option<&str>) -> Result<Self, MediaError> {
        let (device, config, name) = open_device(device_name, Direction::Input)?;
        let channels = usize::from(config.channels());
        let rate = config.sample_rate();
        let capacity = (ring_frames(rate, CAPTURE_RING) * channels).max(1);
        let shared = Arc::new(Shared::default());
        let (stream, consumer) = dispatch_sample_format!(
            config.sample_format(),
            build_input_stream,
            &device,
            &name,
            &config,
            capacity,
            shared.clone()
        )?;
        let resampler = ChunkResampler::new(rate, SAMPLE_RATE, FRAME_SAMPLES, Fixed::Output)?;
        let input_max = resampler.input_max();
        let output_max = resampler.output_max();
        tracing::info!(device = %name, rate, channels, format = %config.sample_format(), "microphone opened");
        Ok(Self {
            _stream: stream,
            ring: consumer,
            shared,
            name,
            channels,
            resampler,
            interleaved: vec![0.0; input_max * channels],
            mono: vec![0.0; input_max],
            resampled: vec![0.0; output_max.max(FRAME_SAMPLES)],
            config,
            skipped_samples: 0,
        })
    }

    /// What the device has done so far.
    pub fn stats(&self) -> DeviceStats {
        stats(&self.shared, &self.name, &self.config)
    }

    /// Samples (per channel) skipped because the reader fell more than 60 ms behind.
    pub fn skipped_samples(&self) -> u64 {
        self.skipped_samples
    }

    /// Device name and format, for logs.
    pub fn describe(&self) -> String {
        describe_stream(&self.name, &self.config, self.channels)
    }
}

/// "name (rate Hz, n ch, format)", the log description of an open input or output stream.
fn describe_stream(name: &str, config: &cpal::SupportedStreamConfig, channels: usize) -> String {
    format!("{name} ({} Hz, {channels} ch, {})", config.sample_rate(), config.sample_format())
}

fn build_input_stream<T>(
    device: &cpal::Device,
    name: &str,
    config: &cpal::SupportedStreamConfig,
    capacity: usize,
    shared: Arc<Shared>,
) -> Result<(cpal::Stream, HeapCons<f32>), MediaError>
where
    T: SizedSample + Send + 'static,
    f32: FromSample<T>,
{
    let channels = usize::from(config.channels());
    // Each attempt (fixed buffer, then default) gets a fresh ring: the producer moves into the
    // callback, and a failed attempt drops it.
    let mut consumer = None;
    let stream = start_stream(name, config, |stream_config| {
        let (mut ring, cons) = HeapRb::<f32>::new(capacity).split();
        consumer = Some(cons);
        let counters = shared.clone();
        let errors = shared.clone();
        let device_label = name.to_string();
        device.build_input_stream::<T, _, _>(
            stream_config,
            move |data: &[T], _: &cpal::InputCallbackInfo| {
                probe(true);
                // Whole device frames only, so the ring never holds half a frame and the
                // reader's channel alignment can't slip.
                let room = ring.vacant_len() / channels * channels;
                let n = data.len().min(room);
                let pushed = ring.push_iter(data[..n].iter().map(|&s| f32::from_sample(s)));
                counters.callbacks.fetch_add(1, Ordering::Relaxed);
                counters.frames.fetch_add((pushed / channels) as u64, Ordering::Relaxed);
                if pushed < data.len() {
                    counters.xrun_samples.fetch_add(((data.len() - pushed) / channels) as u64, Ordering::Relaxed);
                }
                probe(false);
            },
            move |e| on_stream_error(&errors, &device_label, e),
            None,
        )
    })?;
    let consumer = consumer.ok_or_else(|| MediaError::Device(format!("{name:?}: stream built without a ring")))?;
    Ok((stream, consumer))
}

impl AudioSource for MicSource {
    fn read_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        let rate = self.config.sample_rate();
        let frames_needed = self.resampler.input_needed();
        let samples_needed = frames_needed * self.channels;
        let mut watch = StallWatch::new(self.ring.occupied_len());
        loop {
            if self.shared.failed.load(Ordering::Acquire) {
                return Err(MediaError::Device(format!("{}: capture stream failed", self.name)));
            }
            let available = self.ring.occupied_len();
            if available >= samples_needed {
                let backlog_limit = samples_needed + ring_frames(rate, CAPTURE_MAX_BACKLOG) * self.channels;
                if available > backlog_limit {
                    let excess = (available - samples_needed) / self.channels * self.channels;
                    let skipped = self.ring.skip(excess);
                    self.skipped_samples += (skipped / self.channels) as u64;
                }
                break;
            }
            if watch.stalled(available) {
                return Err(MediaError::Device(format!("{}: no audio captured for {STALL_TIMEOUT:?}", self.name)));
            }
            std::thread::sleep(wait_time(samples_needed - available, self.channels, rate));
        }
        let popped = self.ring.pop_slice(&mut self.interleaved[..samples_needed]);
        debug_assert_eq!(popped, samples_needed);
        let scale = 1.0 / self.channels as f32;
        for (mono, frame) in self.mono[..frames_needed].iter_mut().zip(self.interleaved.chunks_exact(self.channels)) {
            *mono = frame.iter().sum::<f32>() * scale;
        }
        let produced = self.resampler.process(&self.mono[..frames_needed], &mut self.resampled)?;
        if produced != FRAME_SAMPLES {
            return Err(MediaError::Device(format!("resampler produced {produced} samples, expected {FRAME_SAMPLES}")));
        }
        for (o, &s) in out.iter_mut().zip(&self.resampled[..FRAME_SAMPLES]) {
            *o = f32_to_i16(s);
        }
        Ok(())
    }

    fn is_paced(&self) -> bool {
        true
    }
}

// ------------------------------------------------------------------------------------------
// Playback
// ------------------------------------------------------------------------------------------

/// A speaker: 16 kHz mono 20 ms frames resampled to the device rate, duplicated to every
/// channel and played with cpal. [`AudioSink::write_frame`] blocks while the ring is full, so
/// the writer is paced by the device clock.
pub struct SpeakerSink {
    _stream: cpal::Stream,
    ring: HeapProd<f32>,
    shared: Arc<Shared>,
    config: cpal::SupportedStreamConfig,
    name: String,
    channels: usize,
    resampler: ChunkResampler,
    input: Vec<f32>,
    resampled: Vec<f32>,
    interleaved: Vec<f32>,
}

impl std::fmt::Debug for SpeakerSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpeakerSink").field("stats", &self.stats()).finish()
    }
}

impl SpeakerSink {
    /// Opens the named playback device, or the default one with `None`, and starts playing
    /// (silence until the first frame is written).
    ///
    /// [`MediaError::NoDevice`] when there is no such device or it cannot be configured (no
    /// sound card); [`MediaError::Device`] when the stream cannot be started.
    pub fn open(device_name: Option<&str>) -> Result<Self, MediaError> {
        let (device, config, name) = open_device(device_name, Direction::Output)?;
        let channels = usize::from(config.channels());
        let rate = config.sample_rate();
        let resampler = ChunkResampler::new(SAMPLE_RATE, rate, FRAME_SAMPLES, Fixed::Input)?;
        let output_max = resampler.output_max();
        // At least two frames' worth, or a write could never find room for a whole frame.
        let capacity = (ring_frames(rate, PLAYBACK_RING).max(2 * output_max) * channels).max(1);
        let shared = Arc::new(Shared::default());
        let (stream, producer) = dispatch_sample_format!(
            config.sample_format(),
            build_output_stream,
            &device,
            &name,
            &config,
            capacity,
            shared.clone()
        )?;
        tracing::info!(device = %name, rate, channels, format = %config.sample_format(), "speaker opened");
        Ok(Self {
            _stream: stream,
            ring: producer,
            shared,
            name,
            channels,
            resampler,
            input: vec![0.0; FRAME_SAMPLES],
            resampled: vec![0.0; output_max],
            interleaved: vec![0.0; output_max * channels],
            config,
        })
    }

    /// What the device has done so far.
    pub fn stats(&self) -> DeviceStats {
        stats(&self.shared, &self.name, &self.config)
    }

    /// Samples (per channel) written but not yet handed to the device.
    pub fn queued_frames(&self) -> usize {
        self.ring.occupied_len() / self.channels
    }

    /// Device name and format, for logs.
    pub fn describe(&self) -> String {
        describe_stream(&self.name, &self.config, self.channels)
    }
}

fn build_output_stream<T>(
    device: &cpal::Device,
    name: &str,
    config: &cpal::SupportedStreamConfig,
    capacity: usize,
    shared: Arc<Shared>,
) -> Result<(cpal::Stream, HeapProd<f32>), MediaError>
where
    T: SizedSample + FromSample<f32> + Send + 'static,
{
    let channels = usize::from(config.channels());
    let chunk = CALLBACK_CHUNK / channels * channels;
    if chunk == 0 {
        return Err(MediaError::Device(format!("{name:?}: {channels} channels are too many")));
    }
    // Each attempt (fixed buffer, then default) gets a fresh ring; see build_input_stream.
    let mut producer = None;
    let stream = start_stream(name, config, |stream_config| {
        let (prod, mut ring) = HeapRb::<f32>::new(capacity).split();
        producer = Some(prod);
        let counters = shared.clone();
        let errors = shared.clone();
        let device_label = name.to_string();
        // Silence before the first sample arrives is start-up, not an underrun.
        let mut started = false;
        device.build_output_stream::<T, _, _>(
            stream_config,
            move |data: &mut [T], _: &cpal::OutputCallbackInfo| {
                probe(true);
                let mut scratch = [0.0f32; CALLBACK_CHUNK];
                let mut missing = 0usize;
                for out in data.chunks_mut(chunk) {
                    let got = ring.pop_slice(&mut scratch[..out.len()]);
                    for (o, &s) in out[..got].iter_mut().zip(&scratch[..got]) {
                        *o = T::from_sample(s);
                    }
                    out[got..].fill(T::EQUILIBRIUM);
                    started |= got > 0;
                    missing += out.len() - got;
                }
                counters.callbacks.fetch_add(1, Ordering::Relaxed);
                counters.frames.fetch_add(((data.len() - missing) / channels) as u64, Ordering::Relaxed);
                if started && missing > 0 {
                    counters.xrun_samples.fetch_add((missing / channels) as u64, Ordering::Relaxed);
                }
                probe(false);
            },
            move |e| on_stream_error(&errors, &device_label, e),
            None,
        )
    })?;
    let producer = producer.ok_or_else(|| MediaError::Device(format!("{name:?}: stream built without a ring")))?;
    Ok((stream, producer))
}

impl AudioSink for SpeakerSink {
    fn write_frame(&mut self, frame: &[i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        for (f, &s) in self.input.iter_mut().zip(frame.iter()) {
            *f = i16_to_f32(s);
        }
        let produced = self.resampler.process(&self.input, &mut self.resampled)?;
        let samples = produced * self.channels;
        for (slot, &s) in self.interleaved.chunks_exact_mut(self.channels).zip(&self.resampled[..produced]) {
            slot.fill(s);
        }
        let rate = self.config.sample_rate();
        let mut watch = StallWatch::new(self.ring.vacant_len());
        loop {
            if self.shared.failed.load(Ordering::Acquire) {
                return Err(MediaError::Device(format!("{}: playback stream failed", self.name)));
            }
            let vacant = self.ring.vacant_len();
            if vacant >= samples {
                break;
            }
            if watch.stalled(vacant) {
                return Err(MediaError::Device(format!("{}: no audio played for {STALL_TIMEOUT:?}", self.name)));
            }
            std::thread::sleep(wait_time(samples - vacant, self.channels, rate));
        }
        let pushed = self.ring.push_slice(&self.interleaved[..samples]);
        debug_assert_eq!(pushed, samples);
        Ok(())
    }

    fn is_paced(&self) -> bool {
        true
    }
}

/// Samples (per channel) in `duration` at `rate`.
fn ring_frames(rate: u32, duration: Duration) -> usize {
    (u64::from(rate) * duration.as_millis() as u64 / 1000) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_that_does_not_exist_is_no_device() {
        let name = "parlor-no-such-device-7f3a";
        match SpeakerSink::open(Some(name)) {
            Err(MediaError::NoDevice(msg)) => assert!(msg.contains(name) || msg.contains("output"), "{msg}"),
            Err(other) => panic!("expected NoDevice, got {other}"),
            Ok(sink) => panic!("opened {}", sink.describe()),
        }
        match MicSource::open(Some(name)) {
            Err(MediaError::NoDevice(_)) => {}
            Err(other) => panic!("expected NoDevice, got {other}"),
            Ok(mic) => panic!("opened {}", mic.describe()),
        }
    }

    #[test]
    fn wait_time_is_clamped() {
        assert_eq!(wait_time(0, 2, 48_000), Duration::from_millis(1));
        assert_eq!(wait_time(960 * 2, 2, 48_000), Duration::from_millis(20));
        assert_eq!(wait_time(480, 1, 48_000), Duration::from_millis(10));
        assert_eq!(wait_time(1_000_000, 1, 48_000), Duration::from_millis(20));
    }
}
