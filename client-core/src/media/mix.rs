//! Mixing participants together, and measuring how loud a frame is.
//!
//! [`Mixer`] sums 20 ms frames with saturation (clipping at full scale rather than wrapping
//! around, which would turn two loud voices into a crack). [`LevelMeter`] reports the RMS level
//! in dBFS and whether someone is speaking, with a short attack and a hangover so the
//! active-speaker highlight neither reacts to a click nor flickers between words.

use super::FRAME_SAMPLES;

/// Level reported for digital silence (the RMS of all-zero samples is -∞ dBFS).
pub const SILENCE_DBFS: f32 = -100.0;

/// Sums frames with saturation.
#[derive(Debug, Clone, Copy, Default)]
pub struct Mixer;

impl Mixer {
    /// Writes the saturating sum of `inputs` into `out`; silence when there are no inputs.
    pub fn mix(inputs: &[&[i16; FRAME_SAMPLES]], out: &mut [i16; FRAME_SAMPLES]) {
        for (i, sample) in out.iter_mut().enumerate() {
            // An i32 holds the sum of 65 536 full-scale i16s without overflow; clamp once at the end.
            let sum: i32 = inputs.iter().map(|frame| i32::from(frame[i])).sum();
            *sample = sum.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16;
        }
    }
}

/// The level of one frame, and the speaking decision after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AudioLevel {
    /// RMS level in dB relative to full scale: 0 for a full-scale square wave, about -3 for a
    /// full-scale sine, [`SILENCE_DBFS`] for silence.
    pub rms_dbfs: f32,
    /// Whether the participant counts as speaking (with attack and hangover applied).
    pub speaking: bool,
}

/// Speaking detection from frame levels: above `threshold_dbfs` for `attack_frames` frames in
/// a row starts speaking; `hangover_frames` frames in a row below it stop.
#[derive(Debug, Clone)]
pub struct LevelMeter {
    threshold_dbfs: f32,
    attack_frames: u32,
    hangover_frames: u32,
    loud_run: u32,
    quiet_run: u32,
    speaking: bool,
}

impl Default for LevelMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl LevelMeter {
    /// Default threshold -45 dBFS (well above a quiet room through a typical microphone,
    /// well below normal speech at -30..-15), 2-frame (40 ms) attack, 15-frame (300 ms) hangover.
    pub fn new() -> Self {
        Self::with_params(-45.0, 2, 15)
    }

    /// A meter with its own threshold, attack and hangover (in 20 ms frames; attack at least 1).
    pub fn with_params(threshold_dbfs: f32, attack_frames: u32, hangover_frames: u32) -> Self {
        Self {
            threshold_dbfs,
            attack_frames: attack_frames.max(1),
            hangover_frames,
            loud_run: 0,
            quiet_run: 0,
            speaking: false,
        }
    }

    /// Measures one frame (any length; 20 ms frames give the documented timings) and updates
    /// the speaking decision.
    pub fn update(&mut self, frame: &[i16]) -> AudioLevel {
        let rms_dbfs = rms_dbfs(frame);
        if rms_dbfs >= self.threshold_dbfs {
            self.loud_run = self.loud_run.saturating_add(1);
            self.quiet_run = 0;
            if self.loud_run >= self.attack_frames {
                self.speaking = true;
            }
        } else {
            self.quiet_run = self.quiet_run.saturating_add(1);
            self.loud_run = 0;
            if self.quiet_run > self.hangover_frames {
                self.speaking = false;
            }
        }
        AudioLevel { rms_dbfs, speaking: self.speaking }
    }

    /// The current speaking decision.
    pub fn is_speaking(&self) -> bool {
        self.speaking
    }
}

/// Frames a [`LevelWindow`] measures over: 100 ms.
pub const LEVEL_WINDOW_FRAMES: usize = 5;

/// The level of a microphone over 100 ms windows, for a level meter: frames go in one by one,
/// and every fifth returns the RMS of the five.
#[derive(Debug, Clone)]
pub struct LevelWindow {
    samples: [i16; FRAME_SAMPLES * LEVEL_WINDOW_FRAMES],
    filled: usize,
}

impl Default for LevelWindow {
    fn default() -> Self {
        Self { samples: [0; FRAME_SAMPLES * LEVEL_WINDOW_FRAMES], filled: 0 }
    }
}

impl LevelWindow {
    /// Adds one frame; the window's level in dBFS when this frame completes it.
    pub fn push(&mut self, frame: &[i16; FRAME_SAMPLES]) -> Option<f32> {
        self.samples[self.filled * FRAME_SAMPLES..(self.filled + 1) * FRAME_SAMPLES].copy_from_slice(frame);
        self.filled += 1;
        if self.filled < LEVEL_WINDOW_FRAMES {
            return None;
        }
        self.filled = 0;
        Some(rms_dbfs(&self.samples))
    }
}

/// RMS level of `samples` in dBFS, [`SILENCE_DBFS`] at the quietest.
pub fn rms_dbfs(samples: &[i16]) -> f32 {
    if samples.is_empty() {
        return SILENCE_DBFS;
    }
    let sum_squares: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    let rms = (sum_squares / samples.len() as f64).sqrt() / 32768.0;
    if rms <= 0.0 {
        return SILENCE_DBFS;
    }
    ((20.0 * rms.log10()) as f32).max(SILENCE_DBFS)
}

#[cfg(test)]
mod tests {
    use super::super::{AudioSource, ToneSource};
    use super::*;

    #[test]
    fn a_level_window_reports_every_fifth_frame_over_all_five() {
        let mut window = LevelWindow::default();
        let loud = [16_384i16; FRAME_SAMPLES];
        let quiet = [0i16; FRAME_SAMPLES];
        for _ in 0..4 {
            assert_eq!(window.push(&quiet), None);
        }
        // One loud frame in five: a fifth of the power, 7 dB under the frame's -6 dBFS.
        let level = window.push(&loud).expect("the fifth frame completes the window");
        assert!((level - (-6.02 - 6.99)).abs() < 0.1, "{level}");
        assert_eq!(window.push(&loud), None, "a new window starts");
    }

    #[test]
    fn mixer_sums_and_saturates() {
        let a = [20_000i16; FRAME_SAMPLES];
        let b = [15_000i16; FRAME_SAMPLES];
        let c = [-30_000i16; FRAME_SAMPLES];
        let mut out = [1i16; FRAME_SAMPLES];
        Mixer::mix(&[&a, &b], &mut out);
        assert!(out.iter().all(|&s| s == i16::MAX));
        Mixer::mix(&[&c, &c], &mut out);
        assert!(out.iter().all(|&s| s == i16::MIN));
        Mixer::mix(&[&a, &c], &mut out);
        assert!(out.iter().all(|&s| s == -10_000));
        Mixer::mix(&[&a, &b, &c], &mut out);
        assert!(out.iter().all(|&s| s == 5_000), "saturates only at the end, not per step");
        Mixer::mix(&[], &mut out);
        assert!(out.iter().all(|&s| s == 0));
    }

    #[test]
    fn levels_in_dbfs() {
        assert_eq!(rms_dbfs(&[0; FRAME_SAMPLES]), SILENCE_DBFS);
        assert_eq!(rms_dbfs(&[]), SILENCE_DBFS);
        let square: Vec<i16> = (0..FRAME_SAMPLES).map(|i| if i % 2 == 0 { i16::MAX } else { -i16::MAX }).collect();
        assert!(rms_dbfs(&square).abs() < 0.01);
        let mut tone = ToneSource::new(440.0, 1.0);
        let mut frame = [0; FRAME_SAMPLES];
        tone.read_frame(&mut frame).unwrap();
        assert!((rms_dbfs(&frame) + 3.01).abs() < 0.2, "full-scale sine is -3 dBFS");
    }

    #[test]
    fn speaking_for_a_tone_not_for_silence_with_attack_and_hangover() {
        let mut meter = LevelMeter::new();
        let silence = [0i16; FRAME_SAMPLES];
        let mut tone = ToneSource::new(300.0, 0.1); // about -23 dBFS, a normal voice
        let mut voice = [0i16; FRAME_SAMPLES];
        for _ in 0..20 {
            assert!(!meter.update(&silence).speaking);
        }
        tone.read_frame(&mut voice).unwrap();
        let first = meter.update(&voice);
        assert!(!first.speaking, "one loud frame (a click) is not speech");
        assert!(first.rms_dbfs > -30.0);
        tone.read_frame(&mut voice).unwrap();
        assert!(meter.update(&voice).speaking);
        // The hangover holds through a 300 ms pause between words...
        for i in 0..15 {
            assert!(meter.update(&silence).speaking, "dropped out {i} frames into the pause");
        }
        // ...and then lets go.
        assert!(!meter.update(&silence).speaking);
        assert!(!meter.is_speaking());
        // A very quiet hiss never counts.
        let hiss: Vec<i16> = (0..FRAME_SAMPLES).map(|i| if i % 2 == 0 { 80 } else { -80 }).collect();
        for _ in 0..10 {
            assert!(!meter.update(&hiss).speaking);
        }
    }
}
