//! Voice processing on the microphone path: echo cancellation, noise suppression and automatic
//! gain control, with WebRTC's audio processing module as ported to Rust by `sonora`.
//!
//! A desktop call without headphones echoes: what the speaker plays comes back through the
//! microphone. [`VoiceProcessor`] removes it with AEC3, given the *far-end reference* — the
//! mixed audio the playout thread hands to the speaker, at the moment it hands it over
//! ([`VoiceProcessor::analyze_render`]). AEC3's own delay estimator finds how much later the
//! echo shows up in the microphone (the speaker's ring, the device buffers and the room), so
//! nothing here measures device latency. Then steady noise is suppressed and the level is
//! brought to a speaking level.
//!
//! The processor is sans-IO: frames in, frames out, no threads or clock. The engine's capture
//! thread owns it and processes each 20 ms frame as two of the module's 10 ms frames right
//! after reading it, before the level meter (so echo and noise do not light the speaking
//! indicator) and before framing. The playout thread hands its frames over through a
//! lock-free ring ([`render_reference`]); the audio device callbacks are untouched.
//!
//! Every stage can be switched on and off at run time ([`VoiceSettings`]); with all three off
//! the frame passes through bit-exact and the module is not even run.

use protocol::jitter::{FRAME_SAMPLES, SAMPLE_RATE};
use ringbuf::traits::{Consumer, Observer, Producer, Split};
use ringbuf::{HeapCons, HeapProd, HeapRb};
use serde::{Deserialize, Serialize};
use sonora::config::{
    AdaptiveDigital, EchoCanceller, GainController2, HighPassFilter, NoiseSuppression, NoiseSuppressionLevel,
};
use sonora::{AudioProcessing, Config, StreamConfig};

/// The module works on 10 ms frames: two per engine frame.
const CHUNK_SAMPLES: usize = SAMPLE_RATE as usize / 100;
/// How much far-end audio may wait for the capture thread before new frames are dropped
/// (the capture thread drains it every 20 ms; this is slack for a stalled microphone).
const RENDER_QUEUE_FRAMES: usize = 25;

/// Which voice-processing stages run on the microphone signal (by default none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VoiceSettings {
    /// Acoustic echo cancellation against what the speaker plays.
    pub echo_cancellation: bool,
    /// Suppression of steady background noise (fans, hum, hiss).
    pub noise_suppression: bool,
    /// Automatic gain control: a quiet or loud microphone is brought to a speaking level.
    pub gain_control: bool,
}

impl VoiceSettings {
    /// Everything on: what a real microphone gets unless the person says otherwise.
    pub const ALL_ON: Self = Self { echo_cancellation: true, noise_suppression: true, gain_control: true };
    /// Everything off: the signal is sent as captured.
    pub const OFF: Self = Self { echo_cancellation: false, noise_suppression: false, gain_control: false };

    /// True if any stage runs.
    pub fn any(self) -> bool {
        self.echo_cancellation || self.noise_suppression || self.gain_control
    }
}

/// A person's or a bot's voice-processing wishes: each stage on, off, or left to the source
/// (`None`: on for a microphone, off for a synthetic source such as a tone or a WAV file,
/// whose signal has no room, no noise and a known level).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct VoicePreferences {
    pub echo_cancellation: Option<bool>,
    pub noise_suppression: Option<bool>,
    pub gain_control: Option<bool>,
}

impl VoicePreferences {
    /// Every stage chosen explicitly.
    pub fn fixed(settings: VoiceSettings) -> Self {
        Self {
            echo_cancellation: Some(settings.echo_cancellation),
            noise_suppression: Some(settings.noise_suppression),
            gain_control: Some(settings.gain_control),
        }
    }

    /// The stages that run for a source; `microphone_like` for a real microphone (or a
    /// simulated one, such as the echo loopback).
    pub fn resolve(self, microphone_like: bool) -> VoiceSettings {
        VoiceSettings {
            echo_cancellation: self.echo_cancellation.unwrap_or(microphone_like),
            noise_suppression: self.noise_suppression.unwrap_or(microphone_like),
            gain_control: self.gain_control.unwrap_or(microphone_like),
        }
    }
}

/// What the echo canceller reports about itself.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VoiceStats {
    /// The echo path delay the canceller estimated (speaker hand-over to microphone), ms.
    pub aec_delay_ms: Option<i32>,
    /// Echo return loss enhancement: how much the canceller took off the echo, dB.
    pub erle_db: Option<f64>,
}

/// Echo cancellation, noise suppression and gain control for 16 kHz mono 20 ms frames.
pub struct VoiceProcessor {
    apm: AudioProcessing,
    settings: VoiceSettings,
    chunk_out: [i16; CHUNK_SAMPLES],
    render_out: [i16; CHUNK_SAMPLES],
}

impl std::fmt::Debug for VoiceProcessor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoiceProcessor").field("settings", &self.settings).finish()
    }
}

impl VoiceProcessor {
    /// A processor running `settings`.
    pub fn new(settings: VoiceSettings) -> Self {
        let stream = StreamConfig::new(SAMPLE_RATE, 1);
        let mut apm = AudioProcessing::builder()
            .config(module_config(settings))
            .capture_config(stream)
            .render_config(stream)
            .build();
        // AEC3 estimates the delay itself; the external hint stays at zero.
        let _ = apm.set_stream_delay_ms(0);
        Self { apm, settings, chunk_out: [0; CHUNK_SAMPLES], render_out: [0; CHUNK_SAMPLES] }
    }

    /// The stages running now.
    pub fn settings(&self) -> VoiceSettings {
        self.settings
    }

    /// Switches stages on or off. The module starts over when its set of stages changes (its
    /// `apply_config` re-initialises every stage), so after a switch the echo canceller
    /// converges again, which takes a second or two of far-end speech.
    pub fn set_settings(&mut self, settings: VoiceSettings) {
        if settings != self.settings {
            self.settings = settings;
            self.apm.apply_config(module_config(settings));
        }
    }

    /// Tells the echo canceller what the speaker is about to play: call with every mixed frame
    /// as it is handed to the speaker, in order. Does nothing while echo cancellation is off.
    pub fn analyze_render(&mut self, frame: &[i16; FRAME_SAMPLES]) {
        if !self.settings.echo_cancellation {
            return;
        }
        for chunk in frame.chunks_exact(CHUNK_SAMPLES) {
            if let Err(e) = self.apm.process_render_i16(chunk, &mut self.render_out) {
                tracing::debug!("far-end frame not analysed: {e}");
            }
        }
    }

    /// Processes one captured frame in place. With every stage off, leaves it untouched.
    pub fn process_capture(&mut self, frame: &mut [i16; FRAME_SAMPLES]) {
        if !self.settings.any() {
            return;
        }
        for chunk in frame.chunks_exact_mut(CHUNK_SAMPLES) {
            match self.apm.process_capture_i16(chunk, &mut self.chunk_out) {
                Ok(()) => chunk.copy_from_slice(&self.chunk_out),
                Err(e) => tracing::debug!("microphone frame not processed: {e}"),
            }
        }
    }

    /// The echo canceller's estimates (none while it is off or before it has any).
    pub fn stats(&self) -> VoiceStats {
        if !self.settings.echo_cancellation {
            return VoiceStats::default();
        }
        let stats = self.apm.statistics();
        VoiceStats { aec_delay_ms: stats.delay_ms, erle_db: stats.echo_return_loss_enhancement }
    }
}

/// The module configuration for `settings`. The high-pass filter (it takes off rumble below
/// ~80 Hz, which carries no speech) runs whenever any stage does.
fn module_config(settings: VoiceSettings) -> Config {
    Config {
        high_pass_filter: settings.any().then(HighPassFilter::default),
        echo_canceller: settings.echo_cancellation.then(EchoCanceller::default),
        noise_suppression: settings
            .noise_suppression
            .then(|| NoiseSuppression { level: NoiseSuppressionLevel::VeryHigh, ..Default::default() }),
        gain_controller2: settings
            .gain_control
            .then(|| GainController2 { adaptive_digital: Some(AdaptiveDigital::default()), ..Default::default() }),
        ..Default::default()
    }
}

/// Creates the ring that carries the far-end reference from the playout thread (which owns
/// the [`RenderFeed`]) to the capture thread (which owns the [`RenderQueue`]).
pub fn render_reference() -> (RenderFeed, RenderQueue) {
    let (producer, consumer) = HeapRb::<i16>::new(RENDER_QUEUE_FRAMES * FRAME_SAMPLES).split();
    (RenderFeed { ring: producer, dropped_frames: 0 }, RenderQueue { ring: consumer, frame: [0; FRAME_SAMPLES] })
}

/// The playout thread's end of the far-end reference.
pub struct RenderFeed {
    ring: HeapProd<i16>,
    dropped_frames: u64,
}

impl std::fmt::Debug for RenderFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderFeed").field("dropped_frames", &self.dropped_frames).finish()
    }
}

impl RenderFeed {
    /// Hands over one mixed frame; dropped (and counted) when the capture thread has not taken
    /// the last half second.
    pub fn push(&mut self, frame: &[i16; FRAME_SAMPLES]) {
        if self.ring.vacant_len() < FRAME_SAMPLES {
            self.dropped_frames += 1;
            return;
        }
        self.ring.push_slice(frame);
    }

    /// Frames dropped because the queue was full.
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_frames
    }
}

/// The capture thread's end of the far-end reference.
pub struct RenderQueue {
    ring: HeapCons<i16>,
    frame: [i16; FRAME_SAMPLES],
}

impl std::fmt::Debug for RenderQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderQueue").field("queued_samples", &self.ring.occupied_len()).finish()
    }
}

impl RenderQueue {
    /// Passes every whole frame waiting to `take`, oldest first.
    pub fn drain(&mut self, mut take: impl FnMut(&[i16; FRAME_SAMPLES])) {
        while self.ring.occupied_len() >= FRAME_SAMPLES {
            self.ring.pop_slice(&mut self.frame);
            take(&self.frame);
        }
    }

    /// Whole frames waiting.
    pub fn queued_frames(&self) -> usize {
        self.ring.occupied_len() / FRAME_SAMPLES
    }

    /// Takes the oldest frame into `out`; false (and `out` untouched) when none is waiting.
    pub fn pop(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> bool {
        if self.ring.occupied_len() < FRAME_SAMPLES {
            return false;
        }
        self.ring.pop_slice(out);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic noise-like signal (a 32-bit LCG), scaled to `amplitude`.
    fn noise(len: usize, seed: u32, amplitude: f32) -> Vec<i16> {
        let mut state = seed;
        (0..len)
            .map(|_| {
                state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let unit = (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
                (unit * amplitude * 32767.0) as i16
            })
            .collect()
    }

    fn energy(samples: &[i16]) -> f64 {
        samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum::<f64>() / samples.len().max(1) as f64
    }

    fn frames(samples: &[i16]) -> impl Iterator<Item = [i16; FRAME_SAMPLES]> + '_ {
        samples.chunks_exact(FRAME_SAMPLES).map(|c| c.try_into().expect("whole frames"))
    }

    #[test]
    fn everything_off_passes_the_frame_through_untouched() {
        let mut processor = VoiceProcessor::new(VoiceSettings::OFF);
        for (i, original) in frames(&noise(FRAME_SAMPLES * 10, 7, 0.3)).enumerate() {
            processor.analyze_render(&original);
            let mut frame = original;
            processor.process_capture(&mut frame);
            assert_eq!(frame, original, "frame {i} was changed");
        }
        assert_eq!(processor.stats(), VoiceStats::default());
    }

    #[test]
    fn the_echo_of_the_far_end_is_removed_once_converged() {
        // The microphone hears the far end 60 ms late at half its level; nobody speaks here.
        let far = noise(SAMPLE_RATE as usize * 5, 11, 0.2);
        let delay = SAMPLE_RATE as usize * 60 / 1000;
        let mut processor = VoiceProcessor::new(VoiceSettings { echo_cancellation: true, ..VoiceSettings::OFF });
        let (mut echo_in, mut echo_out) = (Vec::new(), Vec::new());
        for (n, render) in frames(&far).enumerate() {
            processor.analyze_render(&render);
            let start = n * FRAME_SAMPLES;
            let mut mic = [0i16; FRAME_SAMPLES];
            for (i, m) in mic.iter_mut().enumerate() {
                *m = (start + i).checked_sub(delay).map_or(0, |j| far[j] / 2);
            }
            let captured = mic;
            processor.process_capture(&mut mic);
            if start >= SAMPLE_RATE as usize * 3 {
                echo_in.extend_from_slice(&captured);
                echo_out.extend_from_slice(&mic);
            }
        }
        let erle = 10.0 * (energy(&echo_in) / energy(&echo_out).max(1.0)).log10();
        assert!(erle > 15.0, "echo reduced by only {erle:.1} dB");
        let stats = processor.stats();
        let delay_ms = stats.aec_delay_ms.expect("a delay estimate");
        assert!((40..=80).contains(&delay_ms), "estimated delay {delay_ms} ms for a 60 ms echo path");
    }

    #[test]
    fn preferences_resolve_per_source_and_fixed_ones_win() {
        assert_eq!(VoicePreferences::default().resolve(true), VoiceSettings::ALL_ON);
        assert_eq!(VoicePreferences::default().resolve(false), VoiceSettings::OFF);
        let prefs = VoicePreferences { noise_suppression: Some(false), ..Default::default() };
        assert_eq!(prefs.resolve(true), VoiceSettings { noise_suppression: false, ..VoiceSettings::ALL_ON });
        assert_eq!(VoicePreferences::fixed(VoiceSettings::ALL_ON).resolve(false), VoiceSettings::ALL_ON);
    }

    #[test]
    fn the_render_queue_hands_over_whole_frames_in_order_and_counts_overflow() {
        let (mut feed, mut queue) = render_reference();
        for n in 0..(RENDER_QUEUE_FRAMES as i16 + 3) {
            feed.push(&[n; FRAME_SAMPLES]);
        }
        assert_eq!(feed.dropped_frames(), 3);
        let mut seen = Vec::new();
        queue.drain(|f| seen.push(f[0]));
        assert_eq!(seen, (0..RENDER_QUEUE_FRAMES as i16).collect::<Vec<_>>());
        queue.drain(|_| panic!("nothing left"));
    }
}
