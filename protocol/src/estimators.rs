//! Network measurements shared by the client, the relay and the congestion window: round-trip
//! time, packet loss, interarrival jitter and rates.
//!
//! - [`RttEstimator`]: smoothed RTT and RTT variance per RFC 6298 section 2, plus the minimum.
//! - [`LossEstimator`]: loss from sequence-number gaps, RFC 3550 appendix A.3 style, with u32
//!   wraparound, duplicate detection and reordering.
//! - [`InterarrivalJitter`]: RFC 3550 section 6.4.1 interarrival jitter.
//! - [`RateMeter`]: bit rate and event rate (packets, frames) over a sliding window, in bounded
//!   memory.
//!
//! Like everything in this crate they never read the clock: callers pass arrival times in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Round-trip time estimator: latest sample, minimum, and the RFC 6298 smoothed RTT (SRTT)
/// and RTT variance (RTTVAR).
///
/// Ref: RFC 6298 section 2 (alpha = 1/8, beta = 1/4).
#[derive(Debug, Clone, Default)]
pub struct RttEstimator {
    /// The most recent sample.
    latest: Option<Duration>,
    /// Smallest sample ever seen: the path's propagation delay without queueing.
    min: Option<Duration>,
    /// SRTT.
    smoothed: Option<Duration>,
    /// RTTVAR.
    var: Option<Duration>,
}

impl RttEstimator {
    /// An estimator with no samples yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one RTT measurement.
    pub fn on_sample(&mut self, rtt: Duration) {
        self.latest = Some(rtt);
        self.min = Some(self.min.map_or(rtt, |m| m.min(rtt)));
        match (self.smoothed, self.var) {
            (Some(srtt), Some(var)) => {
                // RFC 6298 2.3: RTTVAR is updated with the old SRTT, then SRTT.
                let deviation = srtt.abs_diff(rtt);
                self.var = Some(var * 3 / 4 + deviation / 4);
                self.smoothed = Some(srtt * 7 / 8 + rtt / 8);
            }
            _ => {
                // RFC 6298 2.2: first measurement.
                self.smoothed = Some(rtt);
                self.var = Some(rtt / 2);
            }
        }
    }

    /// The most recent sample.
    pub fn latest(&self) -> Option<Duration> {
        self.latest
    }

    /// SRTT.
    pub fn smoothed(&self) -> Option<Duration> {
        self.smoothed
    }

    /// Smallest sample seen.
    pub fn min(&self) -> Option<Duration> {
        self.min
    }

    /// RTTVAR.
    pub fn rttvar(&self) -> Option<Duration> {
        self.var
    }

    /// `SRTT + max(granularity, 4 * RTTVAR)` (RFC 6298 2.3), before any floor, ceiling or
    /// backoff; `None` until the first sample.
    pub fn rto_base(&self, granularity: Duration) -> Option<Duration> {
        Some(self.smoothed? + granularity.max(self.var? * 4))
    }
}

/// Reordering window of [`LossEstimator`]: a packet up to this many behind the highest is
/// checked against the received bitmap (duplicate or late).
const LOSS_WINDOW: u32 = 1024;
/// Largest forward jump accepted as loss (RFC 3550 A.1 MAX_DROPOUT); a bigger jump, or a packet
/// older than the window, is taken for a sender restart only when confirmed by the next packet.
const MAX_DROPOUT: u32 = 3000;

/// Loss over one reporting interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LossInterval {
    /// Packets the sequence numbers say were sent in the interval.
    pub expected: u64,
    /// Distinct packets received in the interval (late ones from earlier intervals included, as
    /// in RFC 3550).
    pub received: u64,
    /// `expected - received`, or 0 if reordering made that negative.
    pub lost: u64,
    /// `lost / expected`, 0 when nothing was expected.
    pub fraction: f64,
    /// Runs of consecutive missing packets among the numbers the interval covered: of 1, 2, 3
    /// and 4 or more packets (saturating). A packet that turns up after its interval was
    /// taken does not shorten the run it was counted in.
    pub loss_runs: [u16; 4],
}

impl LossInterval {
    /// The lost fraction in thousandths, rounded, 0..=1000 (the receiver-report field).
    pub fn permille(&self) -> u16 {
        (self.fraction * 1000.0).round().clamp(0.0, 1000.0) as u16
    }
}

/// Packet loss from sequence-number gaps (RFC 3550 A.3): expected = extended highest - first + 1,
/// lost = expected - received.
///
/// Sequence numbers are u32 and wrap. Duplicates are recognised (and not counted as received)
/// within a 1024-packet window behind the highest; a reordered packet inside that window fills
/// its gap. Packets older than the window are ignored. A jump of more than 3000, forward or
/// back, is ignored unless the next packet follows it, which means the sender restarted its
/// numbering: counting starts over from there.
#[derive(Debug, Clone, Default)]
pub struct LossEstimator {
    /// First extended sequence number counted.
    base: Option<u64>,
    /// Highest extended sequence number (sequence number plus 2^32 per wrap).
    highest: u64,
    /// Bit `ext % 1024` set: packet `ext` received (for the last 1024 numbers).
    bitmap: Vec<u64>,
    /// Distinct packets received since `base`.
    received: u64,
    /// `expected` at the last `take_interval`.
    expected_prior: u64,
    /// `received` at the last `take_interval`.
    received_prior: u64,
    /// Losses carried over from before a restart.
    lost_before_restart: u64,
    /// A packet after a big jump: if the next one is this, the sender restarted.
    probation: Option<u32>,
    /// Highest extended number whose loss runs were counted.
    runs_counted_to: u64,
    /// Packets ignored: duplicates, too old, unconfirmed jumps.
    discarded: u64,
}

impl LossEstimator {
    /// An estimator that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the arrival of packet `seq`.
    pub fn on_packet(&mut self, seq: u32) {
        if self.base.is_none() {
            self.start(seq);
            return;
        }
        let highest = self.highest as u32;
        let ahead = seq.wrapping_sub(highest);
        let behind = highest.wrapping_sub(seq);
        if ahead == 0 {
            self.discarded += 1;
        } else if ahead <= MAX_DROPOUT {
            self.probation = None;
            let new_highest = self.highest + u64::from(ahead);
            // Clear the bits of the numbers skipped over, which may be reused from 1024 ago.
            for ext in (self.highest + 1)..=new_highest.min(self.highest + u64::from(LOSS_WINDOW)) {
                self.set_bit(ext, false);
            }
            self.highest = new_highest;
            self.set_bit(new_highest, true);
            self.received += 1;
        } else if behind < LOSS_WINDOW {
            let ext = self.highest - u64::from(behind);
            if self.bit(ext) {
                self.discarded += 1;
            } else {
                // Before the first packet counted: the stream started earlier than it seemed
                // (reordering at the start), so expected grows to include it.
                if self.base.is_some_and(|b| ext < b) {
                    self.base = Some(ext);
                }
                self.set_bit(ext, true);
                self.received += 1;
            }
        } else if self.probation == Some(seq) {
            // Two packets in sequence after a big jump: the sender restarted.
            self.lost_before_restart += self.cumulative_lost();
            self.start(seq.wrapping_sub(1));
            self.on_packet(seq);
        } else {
            self.probation = Some(seq.wrapping_add(1));
            self.discarded += 1;
        }
    }

    /// Records that packet `seq` arrived but was thrown away on purpose (a relay shedding load):
    /// it counts as expected and lost, as if it had never come. Only a packet ahead of the
    /// highest moves anything; one behind it is already a gap.
    pub fn on_discarded_ahead(&mut self, seq: u32) {
        let Some(_) = self.base else { return };
        let ahead = seq.wrapping_sub(self.highest as u32);
        if ahead == 0 || ahead > MAX_DROPOUT {
            return;
        }
        self.probation = None;
        let new_highest = self.highest + u64::from(ahead);
        for ext in (self.highest + 1)..=new_highest.min(self.highest + u64::from(LOSS_WINDOW)) {
            self.set_bit(ext, false);
        }
        self.highest = new_highest;
    }

    /// Loss since the previous call (or since the start), RFC 3550 6.4.1 style.
    pub fn take_interval(&mut self) -> LossInterval {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost = expected_interval.saturating_sub(received_interval);
        let fraction = if expected_interval == 0 { 0.0 } else { lost as f64 / expected_interval as f64 };
        LossInterval {
            expected: expected_interval,
            received: received_interval,
            lost,
            fraction,
            loss_runs: self.take_runs(),
        }
    }

    /// Counts the runs of missing numbers after the last ones counted, up to the highest (which
    /// arrived, so no run is cut in two), within the window the bitmap remembers.
    fn take_runs(&mut self) -> [u16; 4] {
        let mut runs = [0u16; 4];
        if self.base.is_none() {
            return runs;
        }
        let from = (self.runs_counted_to + 1).max(self.highest.saturating_sub(u64::from(LOSS_WINDOW) - 1));
        let mut run = 0usize;
        for ext in from..=self.highest {
            if self.bit(ext) {
                if run > 0 {
                    let bucket = &mut runs[run.min(4) - 1];
                    *bucket = bucket.saturating_add(1);
                }
                run = 0;
            } else {
                run += 1;
            }
        }
        self.runs_counted_to = self.highest;
        runs
    }

    /// Packets lost since the stream started (never negative).
    pub fn cumulative_lost(&self) -> u64 {
        self.lost_before_restart + self.expected().saturating_sub(self.received)
    }

    /// Highest sequence number received, if any.
    pub fn highest_seq(&self) -> Option<u32> {
        self.base.map(|_| self.highest as u32)
    }

    /// Packets ignored: duplicates, older than the reordering window, or unconfirmed jumps.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    fn expected(&self) -> u64 {
        self.base.map_or(0, |b| self.highest + 1 - b)
    }

    /// Starts counting at `seq` (as if it had been received), 2^32 up so reordered packets
    /// before it still have room below.
    fn start(&mut self, seq: u32) {
        let ext = (1u64 << 32) + u64::from(seq);
        self.base = Some(ext);
        self.highest = ext;
        self.bitmap = vec![0; LOSS_WINDOW as usize / 64];
        self.set_bit(ext, true);
        self.received = 1;
        self.expected_prior = 0;
        self.received_prior = 0;
        self.probation = None;
        self.runs_counted_to = ext;
    }

    fn bit(&self, ext: u64) -> bool {
        let i = (ext % u64::from(LOSS_WINDOW)) as usize;
        self.bitmap.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn set_bit(&mut self, ext: u64, on: bool) {
        let i = (ext % u64::from(LOSS_WINDOW)) as usize;
        if let Some(w) = self.bitmap.get_mut(i / 64) {
            if on {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }
}

/// RFC 3550 section 6.4.1 interarrival jitter: the mean deviation of the difference in packet
/// spacing at the receiver compared to the sender, `J += (|D| - J) / 16`.
///
/// Timestamps are the sender's capture times in µs; arrivals are receiver `Instant`s. Only
/// differences matter, so the two clocks need no common origin.
#[derive(Debug, Clone, Default)]
pub struct InterarrivalJitter {
    /// Origin of arrival times.
    epoch: Option<Instant>,
    /// Transit time (arrival µs - sender µs) of the previous packet.
    last_transit: Option<i128>,
    /// J, in µs.
    jitter_us: f64,
}

impl InterarrivalJitter {
    /// No packets yet: jitter 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a packet that arrived at `arrival` and was sent (captured) at `sender_ts_us`.
    pub fn on_packet(&mut self, arrival: Instant, sender_ts_us: u64) {
        let epoch = *self.epoch.get_or_insert(arrival);
        let arrival_us = if arrival >= epoch {
            arrival.duration_since(epoch).as_micros() as i128
        } else {
            -(epoch.duration_since(arrival).as_micros() as i128)
        };
        let transit = arrival_us - i128::from(sender_ts_us);
        if let Some(last) = self.last_transit {
            let d = (transit - last).abs() as f64;
            self.jitter_us += (d - self.jitter_us) / 16.0;
        }
        self.last_transit = Some(transit);
    }

    /// The current estimate J.
    pub fn jitter(&self) -> Duration {
        Duration::from_secs_f64(self.jitter_us.max(0.0) / 1e6)
    }
}

/// Number of buckets a [`RateMeter`] window is divided into.
const RATE_BUCKETS: u32 = 32;

/// Bits per second and events (packets, frames) per second over a sliding window.
///
/// Memory is fixed: the window is split into 32 buckets; the oldest bucket, partly outside the
/// window, counts in proportion to its part inside. The rate is always the total over one full
/// window divided by the window, so it ramps up during the first window after the first record.
#[derive(Debug, Clone)]
pub struct RateMeter {
    /// Length of the window.
    window: Duration,
    /// Length of one bucket: `window / 32`.
    bucket: Duration,
    /// Origin of bucket numbering: the first record.
    origin: Option<Instant>,
    /// (bucket number, bytes, events) of the last 33 buckets at most, oldest first.
    buckets: VecDeque<(u64, u64, u64)>,
}

impl RateMeter {
    /// A meter over `window` (at least 32 µs).
    pub fn new(window: Duration) -> Self {
        let window = window.max(Duration::from_micros(u64::from(RATE_BUCKETS)));
        Self { window, bucket: window / RATE_BUCKETS, origin: None, buckets: VecDeque::new() }
    }

    /// Records one event of `bytes` bytes at `now`.
    pub fn record(&mut self, now: Instant, bytes: usize) {
        let origin = *self.origin.get_or_insert(now);
        let index = self.index(origin, now);
        self.evict(index);
        match self.buckets.back_mut() {
            // A record earlier than the newest bucket (callers' clocks are monotonic, but be
            // safe) is counted in the newest bucket.
            Some(b) if b.0 >= index => {
                b.1 += bytes as u64;
                b.2 += 1;
            }
            _ => self.buckets.push_back((index, bytes as u64, 1)),
        }
    }

    /// Bits per second over the window ending at `now`.
    pub fn bits_per_second(&self, now: Instant) -> f64 {
        self.sum(now, |b| b.1) * 8.0 / self.window.as_secs_f64()
    }

    /// Events per second over the window ending at `now`.
    pub fn events_per_second(&self, now: Instant) -> f64 {
        self.sum(now, |b| b.2) / self.window.as_secs_f64()
    }

    /// The window length.
    pub fn window(&self) -> Duration {
        self.window
    }

    fn index(&self, origin: Instant, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(origin).as_nanos();
        (elapsed / self.bucket.as_nanos().max(1)) as u64
    }

    /// Drops buckets entirely outside the window that ends in bucket `current`.
    fn evict(&mut self, current: u64) {
        while self.buckets.front().is_some_and(|b| b.0 + u64::from(RATE_BUCKETS) < current) {
            self.buckets.pop_front();
        }
    }

    /// Sum of `field` over the window ending at `now`, the oldest bucket prorated.
    fn sum(&self, now: Instant, field: impl Fn(&(u64, u64, u64)) -> u64) -> f64 {
        let Some(origin) = self.origin else { return 0.0 };
        let current = self.index(origin, now);
        let bucket_ns = self.bucket.as_nanos().max(1) as f64;
        // How far into the current bucket `now` is, as a fraction.
        let into_current = (now.saturating_duration_since(origin).as_nanos() as f64 / bucket_ns) - current as f64;
        let mut total = 0.0;
        for b in &self.buckets {
            if b.0 > current || b.0 + u64::from(RATE_BUCKETS) < current {
                continue;
            }
            let weight = if b.0 + u64::from(RATE_BUCKETS) == current { 1.0 - into_current } else { 1.0 };
            total += field(b) as f64 * weight;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn packets_discarded_ahead_count_as_lost_in_their_interval() {
        let mut l = LossEstimator::new();
        for seq in 0..4 {
            l.on_packet(seq);
        }
        l.take_interval();
        for seq in 4..8 {
            l.on_discarded_ahead(seq);
        }
        let interval = l.take_interval();
        assert_eq!(
            (interval.expected, interval.received, interval.lost),
            (4, 0, 4),
            "an interval of nothing but discards"
        );
        l.on_packet(8);
        let interval = l.take_interval();
        assert_eq!((interval.expected, interval.received, interval.lost), (1, 1, 0));
        assert_eq!(l.cumulative_lost(), 4);
        assert_eq!(l.highest_seq(), Some(8));
        l.on_discarded_ahead(3);
        assert_eq!(l.cumulative_lost(), 4, "one behind the highest changes nothing");
    }

    #[test]
    fn rtt_follows_rfc6298() {
        let mut e = RttEstimator::new();
        assert_eq!(e.smoothed(), None);
        assert_eq!(e.rto_base(ms(1)), None);
        e.on_sample(ms(100));
        assert_eq!(
            (e.smoothed(), e.rttvar(), e.min(), e.latest()),
            (Some(ms(100)), Some(ms(50)), Some(ms(100)), Some(ms(100)))
        );
        assert_eq!(e.rto_base(ms(1)), Some(ms(300)));
        e.on_sample(ms(180));
        // RTTVAR = 3/4 * 50 + 1/4 * |100 - 180| = 57.5; SRTT = 7/8 * 100 + 1/8 * 180 = 110.
        assert_eq!(e.rttvar(), Some(Duration::from_micros(57_500)));
        assert_eq!(e.smoothed(), Some(ms(110)));
        assert_eq!(e.min(), Some(ms(100)));
        assert_eq!(e.latest(), Some(ms(180)));
        e.on_sample(ms(40));
        assert_eq!(e.min(), Some(ms(40)));
        for _ in 0..200 {
            e.on_sample(ms(40));
        }
        let srtt = e.smoothed().unwrap();
        assert!(srtt >= ms(40) && srtt < ms(41), "SRTT converges to a constant RTT: {srtt:?}");
        assert!(e.rttvar().unwrap() < ms(1));
    }

    #[test]
    fn loss_counts_gaps_across_u32_wraparound() {
        let mut l = LossEstimator::new();
        assert_eq!(l.highest_seq(), None);
        assert_eq!(l.take_interval(), LossInterval::default());
        // 100 packets from u32::MAX - 49 through 50 (wrapping), every 10th lost.
        let start = u32::MAX - 49;
        for i in 0..100u32 {
            if i % 10 != 3 {
                l.on_packet(start.wrapping_add(i));
            }
        }
        assert_eq!(l.highest_seq(), Some(49));
        let iv = l.take_interval();
        assert_eq!((iv.expected, iv.received, iv.lost), (100, 90, 10));
        assert_eq!(iv.permille(), 100);
        assert_eq!(l.cumulative_lost(), 10);
        // Nothing new: an empty interval.
        assert_eq!(l.take_interval(), LossInterval::default());
    }

    #[test]
    fn loss_ignores_duplicates_and_fills_reordered_gaps() {
        let mut l = LossEstimator::new();
        for s in [10u32, 11, 13, 12, 12, 11, 14, 17, 15, 15] {
            l.on_packet(s);
        }
        // 10..=17 expected (8), received 10..=15 and 17 (7): 16 lost; 3 duplicates ignored.
        assert_eq!(l.cumulative_lost(), 1);
        assert_eq!(l.discarded(), 3);
        let iv = l.take_interval();
        assert_eq!((iv.expected, iv.received, iv.lost), (8, 7, 1));
        // 16 arrives late, in the next interval with 18 and 19: the interval's lost would be
        // negative and is clamped; cumulative loss drops to 0.
        for s in [18u32, 16, 19] {
            l.on_packet(s);
        }
        let iv = l.take_interval();
        assert_eq!((iv.expected, iv.received, iv.lost, iv.fraction), (2, 3, 0, 0.0));
        assert_eq!(l.cumulative_lost(), 0);
        // A packet before the first one received, within the window, extends the stream back;
        // one further back leaves a gap.
        l.on_packet(9);
        assert_eq!((l.cumulative_lost(), l.discarded()), (0, 3));
        l.on_packet(7);
        assert_eq!((l.cumulative_lost(), l.discarded()), (1, 3));
        l.on_packet(7);
        assert_eq!(l.discarded(), 4);
        assert_eq!(l.take_interval().expected, 3);
        // Reordering right across the wrap.
        let mut l = LossEstimator::new();
        for s in [u32::MAX - 1, 0, u32::MAX, 2, 1, 0] {
            l.on_packet(s);
        }
        assert_eq!((l.highest_seq(), l.cumulative_lost(), l.discarded()), (Some(2), 0, 1));
    }

    #[test]
    fn loss_runs_are_counted_by_length_once() {
        let mut l = LossEstimator::new();
        // 0..=40 with runs of 1 (5), 2 (8, 9), 3 (14..=16), 6 (20..=25) and 1 (30) missing.
        let missing = [5u32, 8, 9, 14, 15, 16, 20, 21, 22, 23, 24, 25, 30];
        for s in (0..=40u32).filter(|s| !missing.contains(s)) {
            l.on_packet(s);
        }
        let iv = l.take_interval();
        assert_eq!(iv.lost, missing.len() as u64);
        assert_eq!(iv.loss_runs, [2, 1, 1, 1]);
        // The next interval counts only its own numbers: one run of 2 before 44.
        for s in [41u32, 44, 45] {
            l.on_packet(s);
        }
        assert_eq!(l.take_interval().loss_runs, [0, 1, 0, 0]);
        assert_eq!(l.take_interval().loss_runs, [0; 4], "nothing new");
    }

    #[test]
    fn loss_survives_a_sender_restart_and_ignores_a_stray_jump() {
        let mut l = LossEstimator::new();
        for s in 1000..1100u32 {
            l.on_packet(s);
        }
        // One stray packet far away is ignored.
        l.on_packet(5_000_000);
        assert_eq!(l.highest_seq(), Some(1099));
        // Long gaps (up to 3000) are loss.
        l.on_packet(1200);
        assert_eq!(l.cumulative_lost(), 100);
        // The sender restarts from 0: confirmed by the second packet.
        l.on_packet(0);
        l.on_packet(1);
        l.on_packet(3);
        assert_eq!(l.highest_seq(), Some(3));
        assert_eq!(l.cumulative_lost(), 101);
    }

    #[test]
    fn rfc3550_jitter_converges_for_a_constant_deviation() {
        let t0 = Instant::now();
        let mut j = InterarrivalJitter::new();
        assert_eq!(j.jitter(), Duration::ZERO);
        // Packets sent every 20 ms; every other one is delayed 10 ms more than the rest, so
        // |D| = 10 ms for every pair and J converges to 10 ms.
        for i in 0..400u64 {
            let sent_us = 1_700_000_000_000_000 + i * 20_000;
            let arrival = t0 + Duration::from_micros(i * 20_000 + 50_000 + if i % 2 == 1 { 10_000 } else { 0 });
            j.on_packet(arrival, sent_us);
        }
        let jitter = j.jitter().as_secs_f64() * 1000.0;
        assert!((jitter - 10.0).abs() < 0.01, "{jitter}");
        // Constant delay: J decays towards 0 with gain 1/16.
        for i in 400..600u64 {
            j.on_packet(t0 + Duration::from_micros(i * 20_000 + 50_000), 1_700_000_000_000_000 + i * 20_000);
        }
        assert!(j.jitter() < Duration::from_micros(10), "{:?}", j.jitter());
    }

    #[test]
    fn rate_meter_over_a_sliding_window() {
        let t0 = Instant::now();
        let mut r = RateMeter::new(Duration::from_secs(1));
        assert_eq!(r.bits_per_second(t0), 0.0);
        // 100 packets/s of 1000 bytes for 3 s: 800 kbit/s, 100 events/s.
        for i in 0..300u64 {
            r.record(t0 + Duration::from_millis(i * 10), 1000);
        }
        let now = t0 + Duration::from_millis(2995);
        let bps = r.bits_per_second(now);
        let eps = r.events_per_second(now);
        assert!((bps - 800_000.0).abs() < 800_000.0 * 0.04, "{bps}");
        assert!((eps - 100.0).abs() < 4.0, "{eps}");
        // Then 20 packets/s of 500 bytes: after one full window only the new rate remains.
        for i in 0..40u64 {
            r.record(t0 + Duration::from_millis(3000 + i * 50), 500);
        }
        let now = t0 + Duration::from_millis(4999);
        assert!((r.events_per_second(now) - 20.0).abs() < 1.0, "{}", r.events_per_second(now));
        assert!((r.bits_per_second(now) - 80_000.0).abs() < 4_000.0, "{}", r.bits_per_second(now));
        // Silence: the window empties.
        assert_eq!(r.bits_per_second(t0 + Duration::from_secs(7)), 0.0);
        // Storage stays bounded however many records there are.
        for i in 0..100_000u64 {
            r.record(t0 + Duration::from_secs(8) + Duration::from_micros(i * 100), 1);
        }
        assert!(r.buckets.len() <= RATE_BUCKETS as usize + 1);
    }
}
