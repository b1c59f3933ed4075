//! A simulated room between a speaker and a microphone, and a "microphone" that hears the
//! engine's own speaker through it: how echo is made here, where there is no sound card.
//!
//! [`SimulatedRoom`] convolves a signal with a room impulse response: the direct path after
//! [`EchoPath::delay_ms`], then reflections whose level decays by 60 dB over
//! [`EchoPath::tail_ms`] and whose energy together is 3 dB below the direct path's, the whole
//! response scaled to [`EchoPath::gain_db`]. The response is
//! made from a seeded generator, so a measurement can be repeated exactly.
//!
//! [`EchoLoopbackSource`] is an [`AudioSource`] whose frames are what the playout thread
//! handed to the speaker, passed through the room, plus an optional near-end talker (a WAV
//! file): a laptop without headphones, with the voice processing's far-end reference taken
//! from the very same frames as in a real call. `parlor-bot --audio loopback` uses it, and so
//! does the test that checks a participant no longer hears their own voice come back.

use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::{AudioSource, MediaError, RenderQueue, WavSource, FRAME_SAMPLES, SAMPLE_RATE};

/// The loopback's playback buffer, frames: like a sound card's, it starts playing (and starts
/// again after running dry) only once this much of the speaker's output is waiting, so a
/// playout thread a frame or two late on a busy machine does not shift the echo in time.
const LOOPBACK_PREFILL_FRAMES: usize = 3;
/// Frames of the speaker's output the loopback may hold before it drops back to
/// [`LOOPBACK_PREFILL_FRAMES`] (in one step: one shift of the echo, not many), so a capture
/// thread that fell behind cannot build up delay.
const LOOPBACK_MAX_BACKLOG_FRAMES: usize = 8;
/// Longest delay and tail a room takes; longer ones are cut to this (a bot's flags are not
/// allowed to ask for gigabytes of history).
pub const MAX_ECHO_MS: u32 = 1_000;
/// Direct-to-reverberant ratio: the direct path's energy over all reflections', dB. A laptop's
/// speaker sits a few centimetres from its microphone, so the direct path dominates.
const DIRECT_TO_REVERBERANT_DB: f32 = 3.0;

/// The acoustic path from a speaker to a microphone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EchoPath {
    /// Delay of the direct path, ms.
    pub delay_ms: u32,
    /// Length of the reverberation tail (time to decay by 60 dB), ms.
    pub tail_ms: u32,
    /// Energy gain of the whole path, dB (negative: quieter than played).
    pub gain_db: i32,
}

impl Default for EchoPath {
    /// A laptop in an office: 120 ms to the microphone through the devices' buffers, a
    /// 200 ms tail, 6 dB quieter.
    fn default() -> Self {
        Self { delay_ms: 120, tail_ms: 200, gain_db: -6 }
    }
}

/// A linear room: convolution with a fixed impulse response (see the module docs).
#[derive(Debug, Clone)]
pub struct SimulatedRoom {
    delay: usize,
    /// The response from the direct path on.
    taps: Vec<f32>,
    /// The last `delay + taps.len()` input samples, a ring indexed by `pos`.
    history: Vec<f32>,
    pos: usize,
}

impl SimulatedRoom {
    /// A room for `path` (delay and tail cut to [`MAX_ECHO_MS`]), its reflections drawn from
    /// `seed`.
    pub fn new(path: EchoPath, seed: u64) -> Self {
        let samples = |ms: u32| (u64::from(ms.min(MAX_ECHO_MS)) * u64::from(SAMPLE_RATE) / 1000) as usize;
        let delay = samples(path.delay_ms);
        let tail = samples(path.tail_ms).max(1);
        let mut state = seed | 1;
        let mut taps: Vec<f32> = (0..tail)
            .map(|n| {
                // xorshift64*: uniform in -1..1.
                state ^= state >> 12;
                state ^= state << 25;
                state ^= state >> 27;
                let unit = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0;
                // 60 dB down (a factor 1000) at the end of the tail.
                let decay = (-6.908 * n as f32 / tail as f32).exp();
                if n == 0 {
                    0.0
                } else {
                    unit * decay
                }
            })
            .collect();
        let reflections: f32 = taps.iter().map(|t| t * t).sum();
        if reflections > 0.0 {
            let level = (10f32.powf(-DIRECT_TO_REVERBERANT_DB / 10.0) / reflections).sqrt();
            taps.iter_mut().for_each(|t| *t *= level);
        }
        taps[0] = 1.0;
        let energy: f32 = taps.iter().map(|t| t * t).sum();
        let scale = 10f32.powf(path.gain_db as f32 / 20.0) / energy.sqrt();
        taps.iter_mut().for_each(|t| *t *= scale);
        let history = vec![0.0; delay + taps.len()];
        Self { delay, taps, history, pos: 0 }
    }

    /// The impulse response, direct path at index 0 (after the delay).
    pub fn taps(&self) -> &[f32] {
        &self.taps
    }

    /// Passes `input` through the room into `out` (same length), continuing the previous call.
    pub fn process(&mut self, input: &[i16], out: &mut [i16]) {
        let len = self.history.len();
        for (x, y) in input.iter().zip(out.iter_mut()) {
            self.history[self.pos] = f32::from(*x);
            // The newest sample is at `pos`; the one `delay + k` samples older meets tap k.
            let mut acc = 0.0f32;
            let mut idx = (self.pos + len - self.delay) % len;
            for tap in &self.taps {
                acc += tap * self.history[idx];
                idx = if idx == 0 { len - 1 } else { idx - 1 };
            }
            *y = acc.round().clamp(f32::from(i16::MIN), f32::from(i16::MAX)) as i16;
            self.pos = (self.pos + 1) % len;
        }
    }
}

/// Where a loopback source returns its queue when it is closed, so the next one can have it.
pub type LoopbackSlot = Arc<Mutex<Option<RenderQueue>>>;

/// A microphone that hears the engine's own speaker through a [`SimulatedRoom`], plus an
/// optional near-end talker. See the module docs.
pub struct EchoLoopbackSource {
    queue: Option<RenderQueue>,
    slot: LoopbackSlot,
    room: SimulatedRoom,
    near_end: Option<WavSource>,
    played: [i16; FRAME_SAMPLES],
    near: [i16; FRAME_SAMPLES],
    /// Waiting for [`LOOPBACK_PREFILL_FRAMES`] before playing (at the start and after running dry).
    prefilling: bool,
}

impl std::fmt::Debug for EchoLoopbackSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EchoLoopbackSource").field("near_end", &self.near_end.is_some()).finish()
    }
}

impl EchoLoopbackSource {
    /// Takes the speaker's output from `slot` (what the playout thread played before now is
    /// skipped). [`MediaError::Device`] if another loopback source holds it.
    pub fn open(slot: LoopbackSlot, path: EchoPath, near_end: Option<WavSource>) -> Result<Self, MediaError> {
        let mut queue = slot
            .lock()
            .map_err(|_| MediaError::Device("the echo loopback is unusable".into()))?
            .take()
            .ok_or_else(|| MediaError::Device("the echo loopback is already in use".into()))?;
        queue.drain(|_| {});
        Ok(Self {
            queue: Some(queue),
            slot,
            room: SimulatedRoom::new(path, 0x5eed),
            near_end,
            played: [0; FRAME_SAMPLES],
            near: [0; FRAME_SAMPLES],
            prefilling: true,
        })
    }
}

impl AudioSource for EchoLoopbackSource {
    fn read_frame(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Result<(), MediaError> {
        let Some(queue) = self.queue.as_mut() else {
            return Err(MediaError::Device("the echo loopback was closed".into()));
        };
        if queue.queued_frames() > LOOPBACK_MAX_BACKLOG_FRAMES {
            while queue.queued_frames() > LOOPBACK_PREFILL_FRAMES {
                queue.pop(&mut self.played);
            }
        }
        if self.prefilling && queue.queued_frames() >= LOOPBACK_PREFILL_FRAMES {
            self.prefilling = false;
        }
        if self.prefilling || !queue.pop(&mut self.played) {
            // Nothing to play yet, or the speaker ran dry: the room hears silence.
            self.prefilling = true;
            self.played.fill(0);
        }
        self.room.process(&self.played, out);
        if let Some(near) = &mut self.near_end {
            near.read_frame(&mut self.near)?;
            for (o, n) in out.iter_mut().zip(self.near.iter()) {
                *o = o.saturating_add(*n);
            }
        }
        Ok(())
    }

    fn is_paced(&self) -> bool {
        false
    }
}

impl Drop for EchoLoopbackSource {
    fn drop(&mut self) {
        if let (Some(queue), Ok(mut slot)) = (self.queue.take(), self.slot.lock()) {
            *slot = Some(queue);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{render_reference, RenderFeed};

    fn energy(samples: &[i16]) -> f64 {
        samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum()
    }

    #[test]
    fn an_impulse_comes_back_after_the_delay_at_the_path_gain() {
        let path = EchoPath { delay_ms: 40, tail_ms: 100, gain_db: -6 };
        let mut room = SimulatedRoom::new(path, 1);
        let mut input = vec![0i16; 16_000];
        input[0] = 10_000;
        let mut out = vec![0i16; input.len()];
        room.process(&input[..100], &mut out[..100]);
        room.process(&input[100..], &mut out[100..]);
        let delay = 40 * 16;
        assert!(out[..delay].iter().all(|&s| s == 0), "echo before the direct path");
        assert!(out[delay] > 3_500, "direct path {}", out[delay]);
        let tail_end = delay + 100 * 16;
        assert!(out[tail_end..].iter().all(|&s| s == 0), "echo after the tail");
        let gain_db = 10.0 * (energy(&out) / energy(&input)).log10();
        assert!((gain_db + 6.0).abs() < 0.2, "path gain {gain_db:.2} dB");
    }

    #[test]
    fn the_loopback_hears_what_was_played_and_gives_its_queue_back() {
        let (mut feed, queue) = render_reference();
        let slot: LoopbackSlot = Arc::new(Mutex::new(Some(queue)));
        let path = EchoPath { delay_ms: 0, tail_ms: 0, gain_db: 0 };
        feed.push(&[123; FRAME_SAMPLES]);
        let mut source = EchoLoopbackSource::open(slot.clone(), path, None).unwrap();
        assert!(EchoLoopbackSource::open(slot.clone(), path, None).is_err(), "two loopbacks at once");
        let mut frame = [0i16; FRAME_SAMPLES];
        source.read_frame(&mut frame).unwrap();
        assert_eq!(frame, [0; FRAME_SAMPLES], "played before the source opened");
        for n in 1..=LOOPBACK_PREFILL_FRAMES as i16 {
            feed.push(&[n; FRAME_SAMPLES]);
        }
        source.read_frame(&mut frame).unwrap();
        assert_eq!(frame, [1; FRAME_SAMPLES], "played once the buffer held its prefill");
        drop(source);
        assert!(slot.lock().unwrap().is_some(), "the queue came back");
    }

    /// Reads one frame and returns its first sample (every pushed frame is one value).
    fn read_value(source: &mut EchoLoopbackSource) -> i16 {
        let mut frame = [0i16; FRAME_SAMPLES];
        source.read_frame(&mut frame).unwrap();
        frame[0]
    }

    #[test]
    fn a_late_speaker_frame_does_not_shift_the_echo_but_running_dry_does() {
        let (mut feed, queue) = render_reference();
        let slot: LoopbackSlot = Arc::new(Mutex::new(Some(queue)));
        let path = EchoPath { delay_ms: 0, tail_ms: 0, gain_db: 0 };
        let mut source = EchoLoopbackSource::open(slot, path, None).unwrap();
        let mut played = 0i16;
        let mut play = |feed: &mut RenderFeed| {
            played += 1;
            feed.push(&[played; FRAME_SAMPLES]);
        };
        for _ in 0..LOOPBACK_PREFILL_FRAMES {
            play(&mut feed);
        }
        let mut heard = vec![read_value(&mut source)];
        // The playout thread misses a slot, then catches up with two frames at once.
        heard.push(read_value(&mut source));
        play(&mut feed);
        play(&mut feed);
        heard.push(read_value(&mut source));
        heard.push(read_value(&mut source));
        assert_eq!(heard, [1, 2, 3, 4], "the late frame was absorbed by the buffer");
        // Nothing played for longer than the buffer: silence, then the prefill again.
        heard.clear();
        for _ in 0..2 {
            heard.push(read_value(&mut source));
        }
        assert_eq!(heard, [5, 0]);
        play(&mut feed);
        assert_eq!(read_value(&mut source), 0, "one frame waiting is not the prefill");
        for _ in 1..LOOPBACK_PREFILL_FRAMES {
            play(&mut feed);
        }
        assert_eq!(read_value(&mut source), 6);
        // A capture thread far behind: the backlog drops to the prefill in one step.
        for _ in 0..LOOPBACK_MAX_BACKLOG_FRAMES + 2 {
            play(&mut feed);
        }
        let newest = played;
        assert_eq!(read_value(&mut source), newest - LOOPBACK_PREFILL_FRAMES as i16 + 1);
    }
}
