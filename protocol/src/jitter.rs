//! Adaptive audio jitter buffer for 20 ms frames of 16 kHz mono PCM, modelled on WebRTC
//! NetEq's delay manager.
//!
//! **Delay estimation.** Every arriving frame has a *transit* time, its arrival time minus its
//! place in the stream (`seq * 20 ms`). Its *relative delay* is its transit minus the smallest
//! transit seen in the last 2 s: how much later than the fastest recent frame it arrived. Like
//! NetEq, relative delays go into a histogram of 20 ms buckets that forgets old samples
//! (every bucket is multiplied by `forget_factor`, 0.983, per arrival, and the arrival's bucket
//! gains `1 - forget_factor`). The **target delay** is the upper edge of the bucket holding the
//! `percentile` (95th) quantile, bounded by `min_target`..`max_target`. The histogram starts
//! with all its mass at `initial_target` (60 ms), so the target starts there and moves as
//! measurements replace the prior (about 3.5 s for 95 % of it at 50 frames/s).
//!
//! **Playout.** The caller pulls one frame every 20 ms with [`JitterBuffer::pop_into`]. The
//! *current delay* is how long after its fastest possible arrival the frame being played is
//! played: `now - (epoch + seq * 20 ms + min transit)`. A frame arrives in time exactly when
//! its relative delay is below the current delay, so the buffer keeps the current delay near
//! the target:
//! - playout starts once the first frame has waited `target`;
//! - below `target - 10 ms` it *expands*: plays a concealment frame without advancing, +20 ms;
//! - at `target + 40 ms` or more it *accelerates*, one frame per pop at most, as NetEq's
//!   accelerate does: the next two frames are played as one, the first cross-faded into the
//!   second (counted accelerated), or a missing frame among them is passed over. Buffered audio
//!   is never thrown away to cut the delay, however far above the target it is (the delay
//!   falls 20 ms per pop). This is what keeps the delay from growing without bound when the
//!   sender's clock runs fast or a burst arrives at once, and what brings it down when the
//!   target falls. The 40 ms band between the two thresholds keeps small target changes from
//!   causing any acceleration or expansion.
//!
//! **Recovery horizon.** A sender whose packets carry copies of the `k` frames before them
//! ([`crate::redundancy`]) lets a lost frame be rebuilt from a packet up to `k` frames later,
//! if that packet arrives before the frame's playout. [`JitterBuffer::set_recovery_horizon`]
//! tells the buffer `k`; its target then covers `k - 1` more frames than the arrival statistics
//! alone ask for (a copy one frame later is what the quantile's 20 ms granularity already
//! covers).
//!
//! **Loss and concealment.** A frame missing at its playout time is concealed by
//! [`Concealer`]: the last pitch period repeated in phase, fading out over 60 ms, then silence
//! (see [`crate::conceal`]). Playout then moves on; if the frame turns up later it is counted
//! late. The frame after a concealment is cross-faded in from the synthetic signal.
//!
//! **Underruns.** An underrun is playout running ahead of arrivals: a frame that was missing at
//! its playout time (and concealed) *but did arrive*, too late. It is counted per frame, when the
//! late frame arrives. A frame the network lost is concealed, not an underrun: no playout delay
//! would have saved it, and the loss estimator reports it. If the buffer stays empty for 500 ms
//! (the sender stopped) playout stops and restarts, re-buffered, with the next frame that
//! arrives; no counter runs in between.
//!
//! Memory is bounded: at most `max_buffered_frames` frames (the oldest is dropped, counted, past
//! that), a 2 s window of transit times with at most 256 entries, and a histogram of at most
//! 512 buckets.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crate::conceal::Concealer;

/// Samples per second of the audio the buffer holds.
pub const SAMPLE_RATE: u32 = 16_000;
/// Samples in one 20 ms frame (mono).
pub const FRAME_SAMPLES: usize = 320;
/// Duration of one frame.
pub const FRAME_DURATION: Duration = Duration::from_millis(20);

/// One frame in µs, the unit of all internal delay arithmetic.
const FRAME_US: i64 = 20_000;
/// How far back the minimum transit looks (NetEq uses 2 s as well).
const TRANSIT_WINDOW: Duration = Duration::from_secs(2);
/// Most entries in the transit window (2 s at 50 frames/s is 100; the rest is headroom).
const TRANSIT_WINDOW_MAX: usize = 256;
/// Most histogram buckets (10 s of delay); bounds memory whatever `max_target` says.
const MAX_BUCKETS: usize = 512;
/// Consecutive pops with an empty buffer after which playout stops (500 ms).
const IDLE_AFTER_EMPTY_POPS: u32 = 25;
/// Catch up when the delay reaches target + this.
const CATCH_UP_ABOVE_US: i64 = 2 * FRAME_US;
/// Expand when the delay falls under target - this.
const EXPAND_BELOW_US: i64 = FRAME_US / 2;
/// Playout history kept to tell a late frame from a duplicate.
const HISTORY: i64 = 64;
/// A frame this far (10 s) before the playout point means the sender restarted its numbering.
const RESTART_GAP: i64 = 500;

/// Tuning of [`JitterBuffer`].
#[derive(Debug, Clone, PartialEq)]
pub struct JitterConfig {
    /// Target delay before any measurement.
    pub initial_target: Duration,
    /// Smallest target delay.
    pub min_target: Duration,
    /// Largest target delay.
    pub max_target: Duration,
    /// Quantile of the relative arrival delay the target covers.
    pub percentile: f64,
    /// Weight the histogram keeps per arrival (NetEq: 0.983, about a 60-arrival memory).
    pub forget_factor: f64,
    /// Most frames held; past that the oldest is dropped.
    pub max_buffered_frames: usize,
}

impl Default for JitterConfig {
    fn default() -> Self {
        Self {
            initial_target: Duration::from_millis(60),
            min_target: Duration::from_millis(20),
            max_target: Duration::from_millis(500),
            percentile: 0.95,
            forget_factor: 0.983,
            max_buffered_frames: 50,
        }
    }
}

/// What [`JitterBuffer::pop_into`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Playout {
    /// A received frame.
    Normal,
    /// Synthesized from the audio before it (pitch-period repetition), in place of a missing
    /// frame or to add delay.
    Concealed,
    /// Zeros: nothing to play yet, or concealment faded out.
    Silence,
}

/// Counters and state of a [`JitterBuffer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    /// Delay the buffer aims for.
    pub target_delay: Duration,
    /// Delay of the last frame played (how long after its fastest possible arrival it was
    /// played); zero while not playing.
    pub current_delay: Duration,
    /// Frames concealed because they were missing at their playout time and arrived later.
    pub underruns: u64,
    /// Frames synthesized (pitch-period repetition or silence) in place of a frame missing at its playout
    /// time.
    pub concealed_frames: u64,
    /// Frames that arrived after their playout time.
    pub late_frames: u64,
    /// Received frames played.
    pub played_frames: u64,
    /// Frames in the buffer now.
    pub buffered_frames: usize,
    /// Received frames discarded unplayed: the buffer was full, or the stream restarted.
    pub dropped_frames: u64,
    /// Concealment frames inserted to raise the delay to the target.
    pub expanded_frames: u64,
    /// Frames received twice.
    pub duplicate_frames: u64,
    /// Pushes with a sample count other than [`FRAME_SAMPLES`], ignored.
    pub invalid_frames: u64,
    /// Missing frames filled in from a later packet's redundant copy before their playout.
    pub recovered_frames: u64,
    /// Pops that played two frames as one to bring the delay down (each cuts 20 ms).
    pub accelerated_frames: u64,
}

/// An audio jitter buffer. Sans-IO: [`push`](Self::push) frames as they arrive,
/// [`pop_into`](Self::pop_into) once per 20 ms of playout.
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    /// Tuning.
    config: JitterConfig,
    /// Frames waiting, by extended sequence number.
    frames: BTreeMap<i64, Box<[i16; FRAME_SAMPLES]>>,
    /// Highest extended sequence number received; the reference for unwrapping u32 numbers.
    highest: Option<i64>,
    /// Next frame to play (or, while buffering, the first one that will be).
    next: Option<i64>,
    /// Whether playout has started.
    playing: bool,
    /// Origin of transit times.
    epoch: Option<Instant>,
    /// Last arrival, to notice a sender that went quiet.
    last_arrival: Option<Instant>,
    /// (arrival, transit µs) of recent arrivals with increasing transit: a sliding-window
    /// minimum, its front is the smallest transit of the last 2 s.
    transit_window: VecDeque<(Instant, i64)>,
    /// Smallest recent transit, µs; kept when the window empties.
    min_transit: Option<i64>,
    /// Forgetting histogram of relative delays, 20 ms buckets; sums to 1.
    histogram: Vec<f64>,
    /// Current target delay.
    target: Duration,
    /// Frames later than its own a lost frame's copy may arrive in (0: no copies).
    recovery_horizon: u32,
    /// Synthesizes missing audio from what was played (boxed: it holds ~6 KiB of history).
    concealer: Box<Concealer>,
    /// Consecutive pops that found the buffer empty.
    empty_pops: u32,
    /// Bit i: frame `next - 1 - i` was played.
    played_mask: u64,
    /// Bit i: frame `next - 1 - i` was concealed because it was missing.
    concealed_mask: u64,
    /// Counters (`target_delay`, `current_delay`, `buffered_frames` are filled in by `stats`).
    stats: JitterStats,
}

/// `a - b` in µs, negative if `a` is earlier.
fn signed_us(a: Instant, b: Instant) -> i64 {
    if a >= b {
        i64::try_from(a.duration_since(b).as_micros()).unwrap_or(i64::MAX)
    } else {
        -i64::try_from(b.duration_since(a).as_micros()).unwrap_or(i64::MAX)
    }
}

fn us_to_duration(us: i64) -> Duration {
    Duration::from_micros(u64::try_from(us).unwrap_or(0))
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        let buckets = (config.max_target.as_micros() as usize).div_ceil(FRAME_US as usize).clamp(1, MAX_BUCKETS);
        let mut histogram = vec![0.0; buckets];
        let initial_bucket = (config.initial_target.as_micros() as usize / FRAME_US as usize).saturating_sub(1);
        histogram[initial_bucket.min(buckets - 1)] = 1.0;
        let mut jb = Self {
            frames: BTreeMap::new(),
            highest: None,
            next: None,
            playing: false,
            epoch: None,
            last_arrival: None,
            transit_window: VecDeque::new(),
            min_transit: None,
            histogram,
            target: config.initial_target,
            recovery_horizon: 0,
            concealer: Box::new(Concealer::new()),
            empty_pops: 0,
            played_mask: 0,
            concealed_mask: 0,
            stats: JitterStats::default(),
            config,
        };
        jb.target = jb.quantile_target();
        jb
    }

    /// The sender's packets carry copies of the `frames` frames before them (0 to 4): the target
    /// covers a copy arriving that many frames after its frame.
    pub fn set_recovery_horizon(&mut self, frames: usize) {
        let frames = frames.min(8) as u32;
        if frames != self.recovery_horizon {
            self.recovery_horizon = frames;
            self.target = self.quantile_target();
        }
    }

    /// Adds frame `seq` recovered from a redundant copy carried by a later packet, if it is
    /// still wanted: not played or concealed yet, not buffered already, and within the span the
    /// buffer holds. It is not an arrival, so it leaves the delay statistics and the loss,
    /// late and duplicate counters alone; a frame it replaces counts as recovered.
    pub fn push_recovered(&mut self, seq: u32, samples: &[i16]) {
        let Ok(samples) = <&[i16; FRAME_SAMPLES]>::try_from(samples) else {
            self.stats.invalid_frames += 1;
            return;
        };
        if !self.would_recover(seq) {
            return;
        }
        self.frames.insert(self.extend(seq), Box::new(*samples));
        self.stats.recovered_frames += 1;
    }

    /// Whether [`push_recovered`](Self::push_recovered) would take frame `seq` now, so a
    /// caller can skip decoding a redundant copy nobody needs (the usual case).
    pub fn would_recover(&self, seq: u32) -> bool {
        let (Some(next), Some(highest)) = (self.next, self.highest) else { return false };
        let ext = self.extend(seq);
        ext >= next
            && ext <= highest
            && !self.frames.contains_key(&ext)
            && self.frames.len() < self.config.max_buffered_frames.max(1)
    }

    /// Adds a received frame of [`FRAME_SAMPLES`] samples with sequence number `seq` (u32,
    /// wrapping). Other lengths are counted invalid and ignored.
    pub fn push(&mut self, now: Instant, seq: u32, samples: &[i16]) {
        let Ok(samples) = <&[i16; FRAME_SAMPLES]>::try_from(samples) else {
            self.stats.invalid_frames += 1;
            return;
        };
        if self.last_arrival.is_some_and(|t| now.saturating_duration_since(t) > TRANSIT_WINDOW) {
            // The sender went quiet for longer than the delay statistics reach: start afresh.
            self.reset();
        }
        self.last_arrival = Some(now);

        let mut ext = self.extend(seq);
        if let Some(next) = self.next {
            let too_far_ahead = ext >= next + self.config.max_buffered_frames.max(1) as i64;
            if too_far_ahead || ext < next - RESTART_GAP {
                // An outage longer than the buffer, or a restarted sender: rebuffer from here.
                self.reset();
                ext = self.extend(seq);
            }
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));

        if self.frames.contains_key(&ext) {
            self.stats.duplicate_frames += 1;
            return;
        }
        if let (true, Some(next)) = (self.playing, self.next) {
            if ext < next {
                let age = next - 1 - ext;
                if age < HISTORY && self.played_mask & (1 << age) != 0 {
                    self.stats.duplicate_frames += 1;
                    return;
                }
                self.stats.late_frames += 1;
                if age < HISTORY && self.concealed_mask & (1 << age) != 0 {
                    self.stats.underruns += 1;
                    self.concealed_mask &= !(1 << age);
                }
                self.on_arrival(now, ext);
                return;
            }
        }
        self.on_arrival(now, ext);
        self.frames.insert(ext, Box::new(*samples));
        if !self.playing {
            self.next = Some(self.next.map_or(ext, |n| n.min(ext)));
        }
        while self.frames.len() > self.config.max_buffered_frames.max(1) {
            let Some((oldest, _)) = self.frames.pop_first() else { break };
            self.stats.dropped_frames += 1;
            if let Some(next) = self.next {
                if oldest >= next {
                    self.advance(oldest + 1 - next, false, false);
                }
            }
        }
    }

    /// Writes the next 20 ms of audio into `out`. Call exactly once per 20 ms of playout.
    pub fn pop_into(&mut self, now: Instant, out: &mut [i16; FRAME_SAMPLES]) -> Playout {
        let Some(due) = self.next else {
            return silence(out);
        };
        let target_us = self.target.as_micros() as i64;
        let Some(delay) = self.delay_us(now, due) else {
            return silence(out);
        };
        if !self.playing {
            if delay < target_us {
                return silence(out);
            }
            self.playing = true;
        }

        if delay >= target_us + CATCH_UP_ABOVE_US && self.frames.contains_key(&(due + 1)) {
            if let Some(first) = self.frames.remove(&due) {
                let second = self.frames.remove(&(due + 1)).unwrap_or_else(|| first.clone());
                // Two frames in the time of one: the first fades into the second.
                for (i, (o, (a, b))) in out.iter_mut().zip(first.iter().zip(second.iter())).enumerate() {
                    let w = (i as f32 + 0.5) / FRAME_SAMPLES as f32;
                    *o = (f32::from(*a) * (1.0 - w) + f32::from(*b) * w).round() as i16;
                }
                self.stats.accelerated_frames += 1;
                self.stats.current_delay = us_to_duration(delay - FRAME_US);
                self.concealer.played(out);
                self.empty_pops = 0;
                self.stats.played_frames += 2;
                self.advance(1, true, false);
                self.advance(1, true, false);
                return Playout::Normal;
            }
            // The frame due is missing: it is concealed below, and the next pop accelerates.
        } else if delay < target_us - EXPAND_BELOW_US {
            self.stats.expanded_frames += 1;
            self.stats.current_delay = us_to_duration(delay + FRAME_US);
            return self.conceal(out);
        }
        self.stats.current_delay = us_to_duration(delay);

        if let Some(frame) = self.frames.remove(&due) {
            out.copy_from_slice(&frame[..]);
            self.concealer.played(out);
            self.empty_pops = 0;
            self.stats.played_frames += 1;
            self.advance(1, true, false);
            return Playout::Normal;
        }

        self.stats.concealed_frames += 1;
        if let Some(next) = self.frames.get(&(due + 1)) {
            self.concealer.conceal_before(out, &next[..]);
            self.advance(1, false, true);
            return Playout::Concealed;
        }
        self.advance(1, false, true);
        if self.frames.is_empty() {
            self.empty_pops += 1;
            if self.empty_pops >= IDLE_AFTER_EMPTY_POPS {
                // The sender stopped: stop playing until it comes back, and measure transit
                // afresh then (it may resume with numbering that did not advance meanwhile).
                self.reset();
            }
        } else {
            self.empty_pops = 0;
        }
        self.conceal(out)
    }

    /// Counters and current delays.
    pub fn stats(&self) -> JitterStats {
        JitterStats { target_delay: self.target, buffered_frames: self.frames.len(), ..self.stats }
    }

    /// Whether playout is running (as opposed to waiting for the first frames).
    pub fn is_playing(&self) -> bool {
        self.playing
    }

    /// Unwraps a u32 sequence number around the highest received.
    fn extend(&self, seq: u32) -> i64 {
        match self.highest {
            None => i64::from(seq),
            Some(h) => h + i64::from(seq.wrapping_sub(h as u32) as i32),
        }
    }

    /// Current delay of frame `seq` at `now`, µs.
    fn delay_us(&self, now: Instant, seq: i64) -> Option<i64> {
        let epoch = self.epoch?;
        let min_transit = self.min_transit?;
        Some(signed_us(now, epoch) - seq * FRAME_US - min_transit)
    }

    /// Updates the minimum transit, the histogram and the target with one arrival.
    fn on_arrival(&mut self, now: Instant, ext: i64) {
        let epoch = *self.epoch.get_or_insert(now);
        let transit = signed_us(now, epoch) - ext * FRAME_US;
        while self.transit_window.front().is_some_and(|&(t, _)| now.saturating_duration_since(t) > TRANSIT_WINDOW) {
            self.transit_window.pop_front();
        }
        while self.transit_window.back().is_some_and(|&(_, tr)| tr >= transit) {
            self.transit_window.pop_back();
        }
        if self.transit_window.len() >= TRANSIT_WINDOW_MAX {
            self.transit_window.pop_front();
        }
        self.transit_window.push_back((now, transit));
        let min = self.transit_window.front().map_or(transit, |&(_, tr)| tr);
        self.min_transit = Some(min);

        let relative = transit - min;
        let last = self.histogram.len() - 1;
        let bucket = usize::try_from(relative / FRAME_US).unwrap_or(0).min(last);
        let forget = self.config.forget_factor.clamp(0.0, 1.0);
        for h in &mut self.histogram {
            *h *= forget;
        }
        self.histogram[bucket] += 1.0 - forget;
        self.target = self.quantile_target();
    }

    /// Upper edge of the bucket where the histogram's cumulative mass reaches `percentile`,
    /// bounded by the configured limits.
    fn quantile_target(&self) -> Duration {
        let total: f64 = self.histogram.iter().sum();
        let wanted = self.config.percentile.clamp(0.0, 1.0) * total;
        let mut cumulative = 0.0;
        let mut bucket = self.histogram.len() - 1;
        for (i, h) in self.histogram.iter().enumerate() {
            cumulative += h;
            // A hair of tolerance so that float rounding cannot push a steady quantile up.
            if cumulative >= wanted - 1e-9 {
                bucket = i;
                break;
            }
        }
        let target = FRAME_DURATION * (bucket as u32 + 1 + self.recovery_horizon.saturating_sub(1));
        target.clamp(self.config.min_target, self.config.max_target.max(self.config.min_target))
    }

    /// Moves the playout point `n` frames on, recording what happened to the first of them
    /// (`played`/`concealed` describe the frame at the old `next` when `n == 1`).
    fn advance(&mut self, n: i64, played: bool, concealed: bool) {
        let Some(next) = self.next else { return };
        self.next = Some(next + n);
        let shift = |mask: u64| if n >= HISTORY { 0 } else { mask << n };
        self.played_mask = shift(self.played_mask);
        self.concealed_mask = shift(self.concealed_mask);
        if played {
            self.played_mask |= 1;
        }
        if concealed {
            self.concealed_mask |= 1;
        }
    }

    /// Writes the next concealment frame: audio synthesized from what was played, fading to
    /// silence.
    fn conceal(&mut self, out: &mut [i16; FRAME_SAMPLES]) -> Playout {
        if self.concealer.conceal(out) {
            Playout::Concealed
        } else {
            Playout::Silence
        }
    }

    /// Forgets the stream position and the frames held (counted dropped); keeps the delay
    /// histogram, which describes the network rather than the stream.
    fn reset(&mut self) {
        self.stats.dropped_frames += self.frames.len() as u64;
        self.frames.clear();
        self.highest = None;
        self.next = None;
        self.playing = false;
        self.epoch = None;
        self.transit_window.clear();
        self.min_transit = None;
        self.played_mask = 0;
        self.concealed_mask = 0;
        self.empty_pops = 0;
        self.stats.current_delay = Duration::ZERO;
    }
}

/// Writes zeros.
fn silence(out: &mut [i16; FRAME_SAMPLES]) -> Playout {
    out.fill(0);
    Playout::Silence
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// A frame whose every sample encodes its sequence number, so the output tells which
    /// frame was played.
    fn frame(seq: u32) -> Vec<i16> {
        vec![(seq % 10_000) as i16 + 1; FRAME_SAMPLES]
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        /// Uniform in [0, 1).
        fn unit(&mut self) -> f64 {
            (self.next() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    enum Event {
        Arrive(u32),
        Pop,
    }

    /// Runs a stream: frame k sent at k * 20 ms from `first_seq`, arriving after 40 ms plus
    /// `jitter(k)`, unless `lost(k)`; a pop every 20 ms starting 7 ms in. Calls `check` after
    /// each pop with (pop index, playout, output).
    fn simulate(
        jb: &mut JitterBuffer,
        t0: Instant,
        first_seq: u32,
        frames: u32,
        mut arrival: impl FnMut(u32) -> Option<Duration>,
        mut check: impl FnMut(&JitterBuffer, u32, Playout, &[i16; FRAME_SAMPLES]),
    ) {
        let mut events: Vec<(Instant, u8, Event)> = Vec::new();
        for k in 0..frames {
            if let Some(delay) = arrival(k) {
                events.push((t0 + FRAME_DURATION * k + delay, 0, Event::Arrive(first_seq.wrapping_add(k))));
            }
        }
        for m in 0..frames {
            events.push((t0 + ms(7) + FRAME_DURATION * m, 1, Event::Pop));
        }
        // Arrivals before pops at the same instant.
        events.sort_by_key(|e| (e.0, e.1));
        let mut out = [0i16; FRAME_SAMPLES];
        let mut pops = 0;
        for (t, _, e) in events {
            match e {
                Event::Arrive(seq) => jb.push(t, seq, &frame(seq)),
                Event::Pop => {
                    let p = jb.pop_into(t, &mut out);
                    check(jb, pops, p, &out);
                    pops += 1;
                }
            }
        }
    }

    #[test]
    fn five_percent_loss_and_30ms_jitter_conceals_without_underruns() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        let total = 3_000; // 60 s
        let warm_up = 300; // 6 s
        let mut lost = Vec::new();
        let mut lost_after_warm_up = 0;
        let arrivals: Vec<Option<Duration>> = (0..total)
            .map(|k| {
                let jitter = Duration::from_micros((rng.unit() * 30_000.0) as u64);
                if rng.unit() < 0.05 {
                    lost.push(k);
                    if k > warm_up + 10 {
                        lost_after_warm_up += 1;
                    }
                    None
                } else {
                    Some(ms(40) + jitter)
                }
            })
            .collect();
        // Some arrivals overtake their predecessor.
        let reordered = (1..total as usize)
            .filter(|&k| matches!((arrivals[k - 1], arrivals[k]), (Some(a), Some(b)) if b + FRAME_DURATION < a))
            .count();
        assert!(reordered > 100, "{reordered}");

        let mut at_warm_up = JitterStats::default();
        let mut last_played: Option<i16> = None;
        let mut normal = 0;
        let mut concealed_outputs = 0;
        let mut max_delay = Duration::ZERO;
        let mut max_target = Duration::ZERO;
        simulate(
            &mut jb,
            t0,
            u32::MAX - 1_000, // crosses the u32 wraparound
            total,
            |k| arrivals[k as usize],
            |jb, pop, playout, out| {
                if playout == Playout::Normal {
                    // In order: each played frame is newer than the last one (values encode seq;
                    // the wrap of seq % 10000 happens once, at a known place).
                    let value = out[FRAME_SAMPLES - 1];
                    if let Some(prev) = last_played {
                        assert!(value > prev || (prev > 7_000 && value < 1_000), "{prev} then {value}");
                    }
                    last_played = Some(value);
                }
                if pop == warm_up {
                    at_warm_up = jb.stats();
                }
                if pop > warm_up {
                    let s = jb.stats();
                    max_delay = max_delay.max(s.current_delay);
                    max_target = max_target.max(s.target_delay);
                    match playout {
                        Playout::Normal => normal += 1,
                        _ => concealed_outputs += 1,
                    }
                }
            },
        );
        let end = jb.stats();
        assert_eq!(end.underruns, at_warm_up.underruns, "no underrun after warm-up: {end:?}");
        assert_eq!(end.late_frames, at_warm_up.late_frames, "no late frame after warm-up: {end:?}");
        assert_eq!(end.expanded_frames, at_warm_up.expanded_frames);
        assert_eq!(end.duplicate_frames, 0);
        // Every lost frame after warm-up is concealed (a catch-up skip may pass over one).
        let concealed = end.concealed_frames - at_warm_up.concealed_frames;
        let dropped = end.dropped_frames - at_warm_up.dropped_frames;
        assert!(concealed + dropped >= lost_after_warm_up, "{concealed} + {dropped} < {lost_after_warm_up}");
        assert!(concealed <= lost_after_warm_up + 12, "{concealed} vs {lost_after_warm_up}");
        assert_eq!(concealed_outputs, concealed);
        assert!(normal > (total - warm_up) as u64 * 9 / 10);
        // Bounded delay: 95th percentile of 0-30 ms jitter is the 20-40 ms bucket -> 40 ms.
        assert_eq!(end.target_delay, ms(40), "{end:?}");
        assert!(max_target <= ms(60), "{max_target:?}");
        assert!(max_delay <= ms(80), "{max_delay:?}");
        assert!(end.buffered_frames <= 5, "{end:?}");
        eprintln!("{end:?} lost after warm-up {lost_after_warm_up}");
    }

    #[test]
    fn reordered_frames_play_in_order() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        // Pairs swapped: 1,0,3,2,5,4,... each arriving 20 ms "wrong".
        let mut played = Vec::new();
        simulate(
            &mut jb,
            t0,
            0,
            200,
            |k| Some(if k % 2 == 0 { ms(40) } else { ms(15) }),
            |_, _, p, out| {
                if p == Playout::Normal {
                    played.push(out[0] - 1);
                }
            },
        );
        assert!(played.len() > 190, "{}", played.len());
        assert!(played.windows(2).all(|w| w[1] == w[0] + 1), "{played:?}");
        let s = jb.stats();
        assert_eq!((s.underruns, s.late_frames, s.concealed_frames), (0, 0, 0), "{s:?}");
    }

    #[test]
    fn concealment_fades_then_goes_silent_and_counts_underruns_for_late_frames() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig { initial_target: ms(40), ..JitterConfig::default() });
        let mut out = [0i16; FRAME_SAMPLES];
        let loud = vec![10_000i16; FRAME_SAMPLES];
        // Frames 0..=2 arrive on time; the first pop waits for 40 ms of delay.
        for k in 0..3u32 {
            jb.push(t0 + FRAME_DURATION * k, k, &loud);
        }
        assert_eq!(jb.pop_into(t0 + ms(20), &mut out), Playout::Silence, "buffering");
        assert_eq!(jb.pop_into(t0 + ms(40), &mut out), Playout::Normal);
        assert_eq!(jb.stats().current_delay, ms(40));
        assert_eq!(jb.pop_into(t0 + ms(60), &mut out), Playout::Normal);
        assert_eq!(jb.pop_into(t0 + ms(80), &mut out), Playout::Normal);
        // Frames 3.. are missing: the signal continued, fading over 60 ms, then silence.
        assert_eq!(jb.pop_into(t0 + ms(100), &mut out), Playout::Concealed);
        assert_eq!(out[0], 10_000);
        assert!((7_900..=8_100).contains(&out[FRAME_SAMPLES - 1]), "{}", out[FRAME_SAMPLES - 1]);
        assert_eq!(jb.pop_into(t0 + ms(120), &mut out), Playout::Concealed);
        assert!(out[0] < 8_100 && out[FRAME_SAMPLES - 1] < 4_100 && out[FRAME_SAMPLES - 1] > 3_900);
        assert_eq!(jb.pop_into(t0 + ms(140), &mut out), Playout::Concealed);
        assert!(out[0] < 4_100 && out[FRAME_SAMPLES - 1] < 100);
        assert_eq!(jb.pop_into(t0 + ms(160), &mut out), Playout::Silence);
        assert_eq!(out, [0; FRAME_SAMPLES]);
        let s = jb.stats();
        assert_eq!((s.concealed_frames, s.played_frames, s.underruns), (4, 3, 0));
        // Frame 3 was only late: an underrun. Its second copy is late again, but the underrun
        // counts once.
        jb.push(t0 + ms(165), 3, &loud);
        jb.push(t0 + ms(166), 3, &loud);
        let s = jb.stats();
        assert_eq!((s.underruns, s.late_frames), (1, 2), "counted once per frame: {s:?}");
        // Frame 7 (due at 180) arrives in time and fades in over 10 ms.
        jb.push(t0 + ms(170), 7, &loud);
        assert_eq!(jb.pop_into(t0 + ms(180), &mut out), Playout::Normal);
        assert!(out[0] < 100, "{}", out[0]);
        assert_eq!(out[160..], [10_000; FRAME_SAMPLES - 160]);
        // A duplicate of a played frame is not late.
        jb.push(t0 + ms(181), 7, &loud);
        let s = jb.stats();
        assert_eq!((s.duplicate_frames, s.late_frames), (1, 2));
    }

    #[test]
    fn a_redundant_copy_fills_a_lost_frame_in_time_and_is_ignored_when_late() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig { initial_target: ms(40), ..JitterConfig::default() });
        let mut out = [0i16; FRAME_SAMPLES];
        // Frame 2 is lost; frame 3 arrives with 2's copy, which is recovered.
        for k in [0u32, 1, 3] {
            jb.push(t0 + FRAME_DURATION * k, k, &frame(k));
        }
        jb.push_recovered(2, &frame(2));
        jb.push_recovered(2, &frame(2));
        let mut played = Vec::new();
        for i in 0..4u32 {
            assert_eq!(jb.pop_into(t0 + ms(40) + FRAME_DURATION * i, &mut out), Playout::Normal);
            played.push(out[0]);
        }
        assert_eq!(played, [1, 2, 3, 4], "frame 2 played from its copy");
        let s = jb.stats();
        assert_eq!((s.recovered_frames, s.concealed_frames, s.duplicate_frames, s.late_frames), (1, 0, 0, 0));
        // Frame 4 is lost and its copy comes after its playout time: concealed, the copy ignored.
        jb.push(t0 + ms(80), 5, &frame(5));
        assert_eq!(jb.pop_into(t0 + ms(120), &mut out), Playout::Concealed);
        jb.push_recovered(4, &frame(4));
        assert_eq!(jb.pop_into(t0 + ms(140), &mut out), Playout::Normal);
        assert_eq!(out[FRAME_SAMPLES - 1], 6);
        let s = jb.stats();
        assert_eq!((s.recovered_frames, s.concealed_frames, s.late_frames, s.underruns), (1, 1, 0, 0));
        // A copy of a frame beyond anything received is no evidence of anything: ignored.
        jb.push_recovered(40, &frame(40));
        assert_eq!(jb.stats().buffered_frames, 0);
    }

    #[test]
    fn the_recovery_horizon_holds_audio_until_a_copy_four_frames_later_arrives() {
        let t0 = Instant::now();
        // Steady arrivals 10 ms after sending; frames 50..=53 lost in one burst, rebuilt from
        // packet 54, which carries copies of the four frames before it.
        let run = |horizon: usize| {
            let mut jb = JitterBuffer::new(JitterConfig::default());
            jb.set_recovery_horizon(horizon);
            let mut out = [0i16; FRAME_SAMPLES];
            let mut concealed = 0;
            for k in 0..150u32 {
                let now = t0 + FRAME_DURATION * k + ms(10);
                if !(50..54).contains(&k) {
                    jb.push(now, k, &frame(k));
                }
                if k == 54 {
                    for earlier in 50..54 {
                        jb.push_recovered(earlier, &frame(earlier));
                    }
                }
                if jb.pop_into(now + ms(1), &mut out) != Playout::Normal && k > 60 && k < 120 {
                    concealed += 1;
                }
            }
            (jb.stats(), concealed)
        };
        let (without, _) = run(0);
        let (with, _) = run(4);
        assert_eq!(with.target_delay, without.target_delay + 3 * FRAME_DURATION, "{with:?} vs {without:?}");
        assert_eq!(with.recovered_frames, 4, "the whole burst rebuilt in time: {with:?}");
        assert!(without.recovered_frames < 4, "without the horizon the copies come too late: {without:?}");
        assert_eq!(with.concealed_frames, 0, "{with:?}");
    }

    #[test]
    fn accelerates_one_frame_per_pop_when_far_more_than_the_target_is_buffered() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = [0i16; FRAME_SAMPLES];
        // A steady stream, played normally for 2 s.
        let mut seq = 0u32;
        let mut t = t0;
        for _ in 0..100 {
            jb.push(t, seq, &frame(seq));
            seq += 1;
            t += FRAME_DURATION;
            jb.pop_into(t, &mut out);
        }
        let before = jb.stats();
        assert!(before.current_delay <= ms(80), "{before:?}");
        // Playout stalls for 600 ms while frames keep arriving (30 frames pile up).
        for _ in 0..30 {
            jb.push(t, seq, &frame(seq));
            seq += 1;
            t += FRAME_DURATION;
        }
        assert!(jb.stats().buffered_frames >= 30);
        // After the stall each pop plays two frames as one, the first faded into the second,
        // until the delay is back near the target: nothing buffered is thrown away.
        let mut pops = 0;
        loop {
            let due = jb.next.unwrap();
            let delay_before = jb.delay_us(t, due).unwrap();
            assert_eq!(jb.pop_into(t, &mut out), Playout::Normal);
            let s = jb.stats();
            if s.accelerated_frames == before.accelerated_frames + pops {
                break;
            }
            pops += 1;
            // The output starts as frame `due` and ends as frame `due + 1`.
            assert_eq!(out[0], frame(due as u32)[0], "pop {pops}");
            assert_eq!(out[FRAME_SAMPLES - 1], frame(due as u32 + 1)[0], "pop {pops}");
            assert_eq!(jb.delay_us(t, jb.next.unwrap()).unwrap(), delay_before - 2 * FRAME_US, "20 ms less delay");
            jb.push(t, seq, &frame(seq));
            seq += 1;
            t += FRAME_DURATION;
            assert!(pops < 40, "{s:?}");
        }
        let s = jb.stats();
        assert!(pops >= 25, "one frame per pop: {pops} pops for 30 frames");
        assert_eq!(s.dropped_frames, before.dropped_frames, "nothing dropped: {s:?}");
        assert!(s.current_delay < s.target_delay + 2 * FRAME_DURATION, "{s:?}");

        // Pops stop entirely: the buffer never exceeds its bound.
        for _ in 0..200 {
            jb.push(t, seq, &frame(seq));
            seq += 1;
            t += FRAME_DURATION;
            assert!(jb.stats().buffered_frames <= 50);
        }
        // A sender clock 1 % fast: the delay stays bounded by accelerating.
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut send = t0;
        let mut play = t0 + ms(3);
        let mut seq = 0u32;
        for _ in 0..10_000 {
            while send <= play {
                jb.push(send, seq, &frame(seq));
                seq += 1;
                send += Duration::from_micros(19_800);
            }
            jb.pop_into(play, &mut out);
            play += FRAME_DURATION;
            assert!(jb.stats().current_delay <= ms(100), "{:?}", jb.stats());
        }
        let s = jb.stats();
        assert!(s.accelerated_frames >= 80, "1 % of 10000 frames must be merged away: {s:?}");
        assert_eq!(s.dropped_frames, 0, "{s:?}");
        assert_eq!(s.underruns, 0);
    }

    #[test]
    fn target_rises_with_jitter_and_falls_back() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut rng = XorShift(7);
        let mut out = [0i16; FRAME_SAMPLES];
        let mut late_at_switch = 0;
        let mut target_high = Duration::ZERO;
        // 20 s of 0-150 ms jitter, then 20 s of none.
        simulate(
            &mut jb,
            t0,
            0,
            2_000,
            |k| Some(ms(40) + if k < 1_000 { Duration::from_micros((rng.unit() * 150_000.0) as u64) } else { ms(0) }),
            |jb, pop, _, _| {
                if pop == 990 {
                    target_high = jb.stats().target_delay;
                    late_at_switch = jb.stats().late_frames;
                }
            },
        );
        assert!(target_high >= ms(140) && target_high <= ms(160), "{target_high:?}");
        let s = jb.stats();
        assert_eq!(s.target_delay, ms(20), "{s:?}");
        assert!(s.current_delay <= ms(60), "{s:?}");
        assert!(late_at_switch < 100, "{late_at_switch}");
        // The histogram is bounded by max_target.
        jb.push(t0 + ms(100_000), 5_000, &frame(1));
        assert!(jb.stats().target_delay <= ms(500));
        let _ = jb.pop_into(t0 + ms(100_001), &mut out);
    }

    #[test]
    fn invalid_frames_restarts_and_idle() {
        let t0 = Instant::now();
        let mut jb = JitterBuffer::new(JitterConfig::default());
        let mut out = [0i16; FRAME_SAMPLES];
        jb.push(t0, 1, &[0; 10]);
        assert_eq!(jb.stats().invalid_frames, 1);
        assert_eq!(jb.pop_into(t0, &mut out), Playout::Silence);
        assert!(!jb.is_playing());
        // Play a little, then the sender stops: after 500 ms of nothing, playout stops and
        // no counter runs any more.
        let mut t = t0;
        for k in 0..20u32 {
            jb.push(t, k, &frame(k));
            t += FRAME_DURATION;
            jb.pop_into(t, &mut out);
        }
        assert!(jb.is_playing());
        for _ in 0..60 {
            t += FRAME_DURATION;
            jb.pop_into(t, &mut out);
        }
        assert!(!jb.is_playing());
        let concealed = jb.stats().concealed_frames;
        assert!(concealed <= 30, "{concealed}");
        for _ in 0..60 {
            t += FRAME_DURATION;
            assert_eq!(jb.pop_into(t, &mut out), Playout::Silence);
        }
        assert_eq!(jb.stats().concealed_frames, concealed);
        // The sender comes back with numbering from zero: rebuffered and played.
        for k in 0..10u32 {
            jb.push(t, k, &frame(k));
            t += FRAME_DURATION;
            jb.pop_into(t, &mut out);
        }
        assert!(jb.is_playing());
        assert_eq!(jb.stats().late_frames, 0);
    }
}
