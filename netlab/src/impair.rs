//! The impairment model of one direction of a link, sans IO.
//!
//! [`Impairment`] decides what happens to each packet handed to it and when it comes out, but
//! never touches a socket or reads the clock: the caller passes `now` to every method, so a
//! test drives it with a simulated clock and the proxy drives it with the real one.
//!
//! A packet goes through these stages, in the order a real path applies them:
//!
//! 1. **loss**: independent random loss, or the two-state Gilbert–Elliott model for bursts;
//! 2. **rate limit**: a bottleneck that serializes packets at `rate_bps` behind a drop-tail
//!    queue of `queue_bytes` (a packet that does not fit is dropped, as a router would);
//! 3. **delay and jitter**: a fixed propagation delay plus a uniform random jitter in
//!    `[-jitter, +jitter]`. Jitter alone keeps packets in order (a later packet never leaves
//!    before an earlier one), because on real paths delay variation mostly comes from queues,
//!    which are FIFO;
//! 4. **reordering**: a packet picked with probability `reorder` is held back an extra
//!    `reorder_gap` and later packets overtake it;
//! 5. **duplication**: with probability `duplicate` a second copy leaves right after the first.
//!
//! Stream data (a TCP byte stream cut into chunks, see [`PacketClass::Stream`]) only goes
//! through the rate limit and the delay: a stream cannot lose, duplicate or reorder bytes, and
//! a full queue is the caller's cue to stop reading (back-pressure) rather than a drop.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Upper bound on packets held inside one [`Impairment`] (queued or in the delay line), so that
/// a huge delay times a high packet rate cannot grow memory without limit.
pub const MAX_HELD_PACKETS: usize = 65_536;

/// How packets are lost.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum LossModel {
    /// Nothing is lost.
    #[default]
    None,
    /// Each packet is lost independently with probability `p`.
    Random { p: f64 },
    /// Gilbert–Elliott: a Markov chain with a good and a bad state, each with its own loss
    /// probability. Before each packet the chain moves good→bad with probability
    /// `p_good_to_bad` and bad→good with probability `p_bad_to_good`, so a loss burst lasts
    /// `1 / p_bad_to_good` packets on average and the long-run loss rate is
    /// `(p_gb·loss_bad + p_bg·loss_good) / (p_gb + p_bg)`.
    GilbertElliott { p_good_to_bad: f64, p_bad_to_good: f64, loss_in_bad: f64, loss_in_good: f64 },
}

impl LossModel {
    /// Gilbert–Elliott loss of `loss` in the long run, in bursts of `mean_burst` packets on
    /// average, every packet of the bad state lost.
    pub fn bursty(loss: f64, mean_burst: f64) -> Self {
        let p_bad_to_good = 1.0 / mean_burst;
        LossModel::GilbertElliott {
            p_good_to_bad: loss * p_bad_to_good / (1.0 - loss),
            p_bad_to_good,
            loss_in_bad: 1.0,
            loss_in_good: 0.0,
        }
    }

    /// The long-run fraction of packets this model loses.
    pub fn mean_loss(&self) -> f64 {
        match *self {
            LossModel::None => 0.0,
            LossModel::Random { p } => p,
            LossModel::GilbertElliott { p_good_to_bad, p_bad_to_good, loss_in_bad, loss_in_good } => {
                let sum = p_good_to_bad + p_bad_to_good;
                if sum <= 0.0 {
                    // The chain never moves: it stays in the good state it starts in.
                    loss_in_good
                } else {
                    (p_good_to_bad * loss_in_bad + p_bad_to_good * loss_in_good) / sum
                }
            }
        }
    }
}

/// The impairments of one direction of a link. `Default` is a clean link.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinkConfig {
    pub loss: LossModel,
    /// Fixed one-way delay added to every packet.
    pub delay: Duration,
    /// Half-width of the uniform delay variation around `delay`.
    pub jitter: Duration,
    /// Probability that a packet is held back so that later ones overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back beyond its normal departure.
    pub reorder_gap: Duration,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Bottleneck rate in bits per second; `None` is unlimited.
    pub rate_bps: Option<u64>,
    /// Drop-tail limit of the bottleneck queue in bytes (only used with a rate).
    pub queue_bytes: usize,
}

/// Default reorder gap: longer than the spacing of media packets, so a held packet is
/// overtaken, and shorter than a jitter buffer, so it is still useful when it arrives.
pub const DEFAULT_REORDER_GAP: Duration = Duration::from_millis(20);
/// Default drop-tail queue: 64 kB, about 100 ms at 5 Mbit/s and 1 s at 500 kbit/s.
pub const DEFAULT_QUEUE_BYTES: usize = 64_000;

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            loss: LossModel::None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            reorder: 0.0,
            reorder_gap: DEFAULT_REORDER_GAP,
            duplicate: 0.0,
            rate_bps: None,
            queue_bytes: DEFAULT_QUEUE_BYTES,
        }
    }
}

impl LinkConfig {
    /// True when this configuration changes nothing.
    pub fn is_clean(&self) -> bool {
        self.loss.mean_loss() == 0.0
            && self.delay.is_zero()
            && self.jitter.is_zero()
            && self.reorder == 0.0
            && self.duplicate == 0.0
            && self.rate_bps.is_none()
    }
}

/// What a packet is: a datagram, which may be lost, or a chunk of a byte stream, which may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketClass {
    Datagram,
    Stream,
}

/// Why a packet was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// The loss model picked it.
    Loss,
    /// The bottleneck queue was full (drop-tail).
    QueueFull,
    /// [`MAX_HELD_PACKETS`] packets were already held.
    Overflow,
}

/// What [`Impairment::on_packet`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Dropped(DropReason),
    /// The packet will come out of [`Impairment::poll_release`] at `release_at`
    /// (twice if `duplicated`).
    Scheduled {
        release_at: Instant,
        reordered: bool,
        duplicated: bool,
    },
}

/// Counters of one direction since it was created.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImpairmentStats {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub dropped_loss: u64,
    pub dropped_queue: u64,
    pub dropped_overflow: u64,
    pub duplicated: u64,
    pub reordered: u64,
}

/// A packet waiting in the delay line, ordered by release time then by arrival order.
#[derive(Debug)]
struct Held<T> {
    release_at: Instant,
    order: u64,
    len: usize,
    payload: T,
}

impl<T> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        self.release_at == other.release_at && self.order == other.order
    }
}
impl<T> Eq for Held<T> {}
impl<T> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Held<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.release_at, self.order).cmp(&(other.release_at, other.order))
    }
}

/// One direction of an impaired link, generic over the payload it carries (`Bytes` in the
/// proxy, a sequence number in tests). See the module documentation for the stages.
#[derive(Debug)]
pub struct Impairment<T> {
    config: LinkConfig,
    rng: StdRng,
    /// Gilbert–Elliott state: true while in the bad state.
    ge_bad: bool,
    /// When the bottleneck finishes serializing everything queued so far.
    link_free_at: Option<Instant>,
    /// Packets in the bottleneck: (time they finish serializing, bytes), oldest first.
    backlog: VecDeque<(Instant, usize)>,
    backlog_bytes: usize,
    /// Latest release of a packet that keeps FIFO order; jitter never releases before it.
    last_fifo_release: Option<Instant>,
    held: BinaryHeap<Reverse<Held<T>>>,
    held_bytes: usize,
    next_order: u64,
    stats: ImpairmentStats,
}

impl<T: Clone> Impairment<T> {
    /// A link direction with `config`, drawing every random decision from a generator seeded
    /// with `seed`: the same seed and the same packet arrivals give the same decisions.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Impairment {
            config,
            rng: StdRng::seed_from_u64(seed),
            ge_bad: false,
            link_free_at: None,
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            last_fifo_release: None,
            held: BinaryHeap::new(),
            held_bytes: 0,
            next_order: 0,
            stats: ImpairmentStats::default(),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Changes the impairments from now on. Packets already scheduled keep their release time.
    pub fn set_config(&mut self, config: LinkConfig) {
        if !matches!(config.loss, LossModel::GilbertElliott { .. }) {
            self.ge_bad = false;
        }
        self.config = config;
    }

    /// Counters since creation.
    pub fn stats(&self) -> ImpairmentStats {
        self.stats
    }

    /// Packets held (queued at the bottleneck or in the delay line).
    pub fn held_packets(&self) -> usize {
        self.held.len()
    }

    /// Bytes held (queued at the bottleneck or in the delay line).
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Bytes queued at the bottleneck at `now`, the packet being serialized included.
    pub fn queued_bytes(&mut self, now: Instant) -> usize {
        self.drain_backlog(now);
        self.backlog_bytes
    }

    /// Hands a packet of `len` bytes to the link at `now`.
    pub fn on_packet(&mut self, now: Instant, len: usize, class: PacketClass, payload: T) -> Verdict {
        self.stats.packets_in += 1;
        self.stats.bytes_in += len as u64;
        let datagram = class == PacketClass::Datagram;

        if datagram && self.draw_loss() {
            self.stats.dropped_loss += 1;
            return Verdict::Dropped(DropReason::Loss);
        }
        let duplicated = datagram && self.config.duplicate > 0.0 && self.rng.gen::<f64>() < self.config.duplicate;
        let copies = if duplicated { 2 } else { 1 };
        if self.held.len() + copies > MAX_HELD_PACKETS {
            self.stats.dropped_overflow += 1;
            return Verdict::Dropped(DropReason::Overflow);
        }

        // Bottleneck: serialize behind everything queued, or drop the tail.
        let mut departure = now;
        if let Some(rate) = self.config.rate_bps.filter(|&r| r > 0) {
            self.drain_backlog(now);
            if datagram && !self.backlog.is_empty() && self.backlog_bytes + len > self.config.queue_bytes {
                self.stats.dropped_queue += 1;
                return Verdict::Dropped(DropReason::QueueFull);
            }
            let start = self.link_free_at.map_or(now, |t| t.max(now));
            let finish = start + serialization_time(len, rate);
            self.link_free_at = Some(finish);
            self.backlog.push_back((finish, len));
            self.backlog_bytes += len;
            departure = finish;
        }

        // Propagation delay and jitter, in order.
        let mut release_at = departure + self.config.delay;
        if !self.config.jitter.is_zero() {
            let j = self.config.jitter.as_secs_f64();
            let offset = self.rng.gen_range(-j..=j);
            release_at = if offset >= 0.0 {
                release_at + Duration::from_secs_f64(offset)
            } else {
                // Never earlier than the packet left the bottleneck.
                release_at.checked_sub(Duration::from_secs_f64(-offset)).unwrap_or(departure).max(departure)
            };
        }
        if let Some(last) = self.last_fifo_release {
            release_at = release_at.max(last);
        }

        let reordered = datagram && self.config.reorder > 0.0 && self.rng.gen::<f64>() < self.config.reorder;
        if reordered {
            self.stats.reordered += 1;
            release_at += self.config.reorder_gap;
        } else {
            self.last_fifo_release = Some(release_at);
        }

        if duplicated {
            self.stats.duplicated += 1;
            self.hold(release_at, len, payload.clone());
        }
        self.hold(release_at, len, payload);
        Verdict::Scheduled { release_at, reordered, duplicated }
    }

    /// The next packet whose release time has come by `now`, if any. Call until `None`.
    pub fn poll_release(&mut self, now: Instant) -> Option<T> {
        if self.held.peek().is_some_and(|Reverse(h)| h.release_at <= now) {
            let Reverse(h) = self.held.pop()?;
            self.held_bytes -= h.len;
            self.stats.packets_out += 1;
            self.stats.bytes_out += h.len as u64;
            Some(h.payload)
        } else {
            None
        }
    }

    /// When the next held packet is due, for the caller's timer.
    pub fn next_release(&self) -> Option<Instant> {
        self.held.peek().map(|Reverse(h)| h.release_at)
    }

    fn hold(&mut self, release_at: Instant, len: usize, payload: T) {
        let order = self.next_order;
        self.next_order += 1;
        self.held_bytes += len;
        self.held.push(Reverse(Held { release_at, order, len, payload }));
    }

    fn drain_backlog(&mut self, now: Instant) {
        while let Some(&(finish, len)) = self.backlog.front() {
            if finish > now {
                break;
            }
            self.backlog.pop_front();
            self.backlog_bytes -= len;
        }
    }

    fn draw_loss(&mut self) -> bool {
        match self.config.loss {
            LossModel::None => false,
            LossModel::Random { p } => p > 0.0 && self.rng.gen::<f64>() < p,
            LossModel::GilbertElliott { p_good_to_bad, p_bad_to_good, loss_in_bad, loss_in_good } => {
                let flip = if self.ge_bad { p_bad_to_good } else { p_good_to_bad };
                if self.rng.gen::<f64>() < flip {
                    self.ge_bad = !self.ge_bad;
                }
                let p = if self.ge_bad { loss_in_bad } else { loss_in_good };
                p > 0.0 && self.rng.gen::<f64>() < p
            }
        }
    }
}

/// How long `len` bytes take on a link of `rate_bps`.
pub fn serialization_time(len: usize, rate_bps: u64) -> Duration {
    Duration::from_nanos(((len as u128 * 8 * 1_000_000_000) / rate_bps.max(1) as u128).min(u64::MAX as u128) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Sends `n` datagrams of `len` bytes every `gap` and releases them as time advances;
    /// returns (arrival order of sequence numbers, their release times relative to t0).
    fn run(imp: &mut Impairment<u32>, n: u32, len: usize, gap: Duration) -> Vec<(u32, Duration)> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        let mut now = t0;
        for seq in 0..n {
            now = t0 + gap * seq;
            // Release everything due before this arrival at its exact time.
            while let Some(at) = imp.next_release().filter(|&at| at <= now) {
                while let Some(s) = imp.poll_release(at) {
                    out.push((s, at - t0));
                }
            }
            imp.on_packet(now, len, PacketClass::Datagram, seq);
            while let Some(s) = imp.poll_release(now) {
                out.push((s, now - t0));
            }
        }
        // Drain everything, stepping to each release time exactly.
        while let Some(at) = imp.next_release() {
            now = now.max(at);
            while let Some(s) = imp.poll_release(now) {
                out.push((s, now - t0));
            }
        }
        out
    }

    fn loss_runs(delivered: &[u32], n: u32) -> Vec<u32> {
        let mut got = vec![false; n as usize];
        for &s in delivered {
            got[s as usize] = true;
        }
        let mut runs = Vec::new();
        let mut cur = 0;
        for g in got {
            if g {
                if cur > 0 {
                    runs.push(cur);
                }
                cur = 0;
            } else {
                cur += 1;
            }
        }
        if cur > 0 {
            runs.push(cur);
        }
        runs
    }

    #[test]
    fn clean_link_passes_everything_at_once_in_order() {
        let mut imp = Impairment::new(LinkConfig::default(), 1);
        let out = run(&mut imp, 1000, 1200, MS);
        assert_eq!(out.len(), 1000);
        assert!(out.windows(2).all(|w| w[0].0 + 1 == w[1].0));
        assert!(out.iter().all(|&(s, t)| t == MS * s));
        assert_eq!(imp.held_packets(), 0);
        assert_eq!(imp.stats().packets_out, 1000);
    }

    #[test]
    fn random_loss_rate_within_tolerance_and_reproducible() {
        let cfg = LinkConfig { loss: LossModel::Random { p: 0.15 }, ..Default::default() };
        let n = 20_000;
        let mut a = Impairment::new(cfg.clone(), 42);
        let out_a = run(&mut a, n, 200, MS);
        let lost = f64::from(n) - out_a.len() as f64;
        let rate = lost / f64::from(n);
        assert!((rate - 0.15).abs() < 0.01, "loss rate {rate}");
        assert_eq!(a.stats().dropped_loss as usize, n as usize - out_a.len());

        let mut b = Impairment::new(cfg.clone(), 42);
        assert_eq!(run(&mut b, n, 200, MS), out_a, "same seed, same decisions");
        let mut c = Impairment::new(cfg, 43);
        assert_ne!(run(&mut c, n, 200, MS), out_a, "another seed, other decisions");
    }

    #[test]
    fn gilbert_elliott_loss_comes_in_bursts() {
        // Mean loss 0.05/(0.05+0.25) = 1/6 with bursts of 4 packets on average.
        let ge =
            LossModel::GilbertElliott { p_good_to_bad: 0.05, p_bad_to_good: 0.25, loss_in_bad: 1.0, loss_in_good: 0.0 };
        assert!((ge.mean_loss() - 1.0 / 6.0).abs() < 1e-12);
        let n = 50_000;
        let mut imp = Impairment::new(LinkConfig { loss: ge, ..Default::default() }, 7);
        let delivered: Vec<u32> = run(&mut imp, n, 200, MS).into_iter().map(|(s, _)| s).collect();
        let rate = 1.0 - delivered.len() as f64 / f64::from(n);
        assert!((rate - 1.0 / 6.0).abs() < 0.02, "GE loss rate {rate}");
        let runs = loss_runs(&delivered, n);
        let mean_run = runs.iter().map(|&r| f64::from(r)).sum::<f64>() / runs.len() as f64;
        assert!((mean_run - 4.0).abs() < 0.5, "mean GE burst {mean_run}");

        // Independent loss at the same rate has bursts of 1/(1-p) = 1.2 packets.
        let mut rnd = Impairment::new(LinkConfig { loss: LossModel::Random { p: 1.0 / 6.0 }, ..Default::default() }, 7);
        let delivered: Vec<u32> = run(&mut rnd, n, 200, MS).into_iter().map(|(s, _)| s).collect();
        let runs = loss_runs(&delivered, n);
        let mean_random_run = runs.iter().map(|&r| f64::from(r)).sum::<f64>() / runs.len() as f64;
        assert!(mean_random_run < 1.4, "random burst {mean_random_run}");
        assert!(mean_run > 2.5 * mean_random_run);
    }

    #[test]
    fn rate_limit_holds_the_configured_bitrate() {
        // Offer 1200-byte packets every 1 ms (9.6 Mbit/s) to a 2 Mbit/s bottleneck for 10 s.
        let cfg = LinkConfig { rate_bps: Some(2_000_000), queue_bytes: 30_000, ..Default::default() };
        let mut imp = Impairment::new(cfg, 3);
        let out = run(&mut imp, 10_000, 1200, MS);
        // Count what left within the 10 s of offered load (the queue drains afterwards).
        let in_window = out.iter().filter(|&&(_, t)| t <= Duration::from_secs(10)).count();
        let bps = in_window as f64 * 1200.0 * 8.0 / 10.0;
        assert!((bps - 2_000_000.0).abs() / 2_000_000.0 < 0.02, "delivered {bps} bit/s");
        // Departures are spaced by at least the serialization time of one packet.
        let spacing = serialization_time(1200, 2_000_000);
        assert!(out.windows(2).all(|w| w[1].1 - w[0].1 >= spacing - Duration::from_micros(1)));
        assert!(imp.stats().dropped_queue > 7000);
    }

    #[test]
    fn queue_is_bounded_and_drops_the_tail() {
        let cfg = LinkConfig { rate_bps: Some(1_000_000), queue_bytes: 12_000, ..Default::default() };
        let mut imp = Impairment::new(cfg, 3);
        let t0 = Instant::now();
        // A burst of 100 packets at the same instant: only 10 fit the queue.
        let verdicts: Vec<Verdict> = (0..100).map(|s| imp.on_packet(t0, 1200, PacketClass::Datagram, s)).collect();
        let accepted = verdicts.iter().filter(|v| matches!(v, Verdict::Scheduled { .. })).count();
        assert_eq!(accepted, 10);
        assert!(verdicts[10..].iter().all(|v| *v == Verdict::Dropped(DropReason::QueueFull)));
        assert!(imp.queued_bytes(t0) <= 12_000);
        // The last accepted one leaves after 10 serialization times: 96 ms at 1 Mbit/s.
        let last = match verdicts[9] {
            Verdict::Scheduled { release_at, .. } => release_at - t0,
            v => panic!("{v:?}"),
        };
        assert_eq!(last, serialization_time(1200, 1_000_000) * 10);
        // Once the queue drains there is room again.
        assert!(matches!(imp.on_packet(t0 + last, 1200, PacketClass::Datagram, 100), Verdict::Scheduled { .. }));
        assert_eq!(imp.queued_bytes(t0 + last), 1200);
    }

    #[test]
    fn stream_chunks_are_never_dropped_by_the_queue() {
        let cfg = LinkConfig {
            rate_bps: Some(1_000_000),
            queue_bytes: 1000,
            loss: LossModel::Random { p: 0.5 },
            duplicate: 0.5,
            reorder: 0.5,
            ..Default::default()
        };
        let mut imp = Impairment::new(cfg, 3);
        let t0 = Instant::now();
        for s in 0..50 {
            assert!(matches!(imp.on_packet(t0, 16_000, PacketClass::Stream, s), Verdict::Scheduled { .. }));
        }
        assert_eq!(imp.queued_bytes(t0), 800_000);
        let mut out = Vec::new();
        while let Some(at) = imp.next_release() {
            while let Some(s) = imp.poll_release(at) {
                out.push(s);
            }
        }
        assert_eq!(out, (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn delay_and_jitter_are_applied() {
        let cfg = LinkConfig { delay: 50 * MS, jitter: 10 * MS, ..Default::default() };
        let mut imp = Impairment::new(cfg, 9);
        let t0 = Instant::now();
        let mut delays = Vec::new();
        // Packets 20 ms apart: jitter (±10 ms) cannot make one wait for the previous one.
        for s in 0..2000u32 {
            let now = t0 + 20 * MS * s;
            match imp.on_packet(now, 100, PacketClass::Datagram, s) {
                Verdict::Scheduled { release_at, .. } => delays.push(release_at - now),
                v => panic!("{v:?}"),
            }
        }
        assert!(delays.iter().all(|&d| d >= 40 * MS && d <= 60 * MS));
        let mean = delays.iter().map(|d| d.as_secs_f64()).sum::<f64>() / delays.len() as f64;
        assert!((mean - 0.050).abs() < 0.001, "mean delay {mean}");
        assert!(delays.iter().any(|&d| d < 42 * MS) && delays.iter().any(|&d| d > 58 * MS));
    }

    #[test]
    fn jitter_alone_keeps_order() {
        let cfg = LinkConfig { delay: 30 * MS, jitter: 20 * MS, ..Default::default() };
        let mut imp = Impairment::new(cfg, 5);
        let out = run(&mut imp, 5000, 200, MS);
        assert_eq!(out.len(), 5000);
        assert!(out.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn reordering_occurs_at_the_configured_rate() {
        let cfg = LinkConfig { reorder: 0.1, reorder_gap: 5 * MS, ..Default::default() };
        let mut imp = Impairment::new(cfg, 11);
        let out = run(&mut imp, 10_000, 200, MS);
        assert_eq!(out.len(), 10_000, "reordering loses nothing");
        // A packet is out of order when a higher sequence number arrived before it.
        let mut max_seen = None;
        let mut late = 0u32;
        for &(s, _) in &out {
            match max_seen {
                Some(m) if s < m => late += 1,
                _ => max_seen = Some(s),
            }
        }
        let rate = f64::from(late) / 10_000.0;
        assert!((rate - 0.1).abs() < 0.015, "reordered {rate}");
        assert_eq!(imp.stats().reordered, u64::from(late));
    }

    #[test]
    fn duplicates_arrive_twice() {
        let cfg = LinkConfig { duplicate: 0.05, ..Default::default() };
        let mut imp = Impairment::new(cfg, 13);
        let out = run(&mut imp, 10_000, 200, MS);
        let dups = out.len() - 10_000;
        assert!((dups as f64 / 10_000.0 - 0.05).abs() < 0.01, "{dups} duplicates");
        assert_eq!(imp.stats().duplicated as usize, dups);
    }

    #[test]
    fn held_packets_are_bounded() {
        let cfg = LinkConfig { delay: Duration::from_secs(3600), ..Default::default() };
        let mut imp = Impairment::new(cfg, 1);
        let t0 = Instant::now();
        for s in 0..(MAX_HELD_PACKETS as u32 + 10) {
            imp.on_packet(t0, 1, PacketClass::Datagram, s);
        }
        assert_eq!(imp.held_packets(), MAX_HELD_PACKETS);
        assert_eq!(imp.stats().dropped_overflow, 10);
    }

    #[test]
    fn config_change_applies_to_later_packets_only() {
        let mut imp = Impairment::new(LinkConfig { delay: 100 * MS, ..Default::default() }, 1);
        let t0 = Instant::now();
        imp.on_packet(t0, 10, PacketClass::Datagram, 1);
        imp.set_config(LinkConfig::default());
        imp.on_packet(t0 + MS, 10, PacketClass::Datagram, 2);
        // The clean link still does not overtake the delayed packet (FIFO), and the first
        // packet keeps its 100 ms.
        assert_eq!(imp.poll_release(t0 + 99 * MS), None);
        assert_eq!(imp.poll_release(t0 + 100 * MS), Some(1));
        assert_eq!(imp.poll_release(t0 + 100 * MS), Some(2));
        imp.set_config(LinkConfig { loss: LossModel::Random { p: 1.0 }, ..Default::default() });
        assert_eq!(imp.on_packet(t0 + 200 * MS, 10, PacketClass::Datagram, 3), Verdict::Dropped(DropReason::Loss));
    }
}
