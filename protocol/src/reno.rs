//! TCP Reno congestion window for file transfers, counted in chunks, with an RFC 6298
//! retransmission timer and a queueing-delay congestion signal.
//!
//! Ref: RFC 5681 (slow start, congestion avoidance, window on timeout) / RFC 6298 (RTO).
//!
//! File chunks travel over TCP, so the kernel already retransmits and nothing is ever lost at
//! this level. The window exists to keep the application from stuffing the socket: without it a
//! file transfer fills every buffer on the path and the meeting's audio and video queue behind
//! it. Two signals shrink it:
//!
//! - **Queueing delay**: an ACK whose RTT exceeds the path's minimum RTT by more than
//!   [`RenoConfig::delay_margin`] means chunks are sitting in a queue. Like a loss in Reno,
//!   `ssthresh = max(cwnd / 2, 2)` and `cwnd = ssthresh`. At most one decrease per RTT: only a
//!   chunk sent after the last decrease can trigger another (the same rule as quinn's
//!   `recovery_start_time`; we mark the recovery start by send order rather than by timestamp so
//!   that chunks sent at the very instant of a decrease are classified without ambiguity).
//!   ACKs of chunks sent before the last decrease do not grow the window either: they describe
//!   the congested window that has just been cut.
//! - **Retransmission timeout**: when no ACK arrives for an RTO, `ssthresh = max(cwnd / 2, 2)`,
//!   `cwnd = 1`, and the RTO doubles (RFC 6298 5.5). The chunks stay in flight (TCP still
//!   delivers them) and the caller never retransmits.
//!
//! Timer (RFC 6298 5.1-5.3, 5.6): armed when a chunk is sent and none is running, restarted
//! whenever an ACK acknowledges a chunk and others remain in flight, stopped when nothing is in
//! flight, restarted with the backed-off RTO after it fires.
//!
//! Karn's algorithm exists because a retransmitted segment's ACK is ambiguous. Nothing is
//! retransmitted here, so every ACK identifies exactly one transmission and **every ACK yields
//! an RTT sample**, including ACKs of chunks sent before a timeout (their long RTT is real
//! queueing and should inflate SRTT). What Karn's rule also implies, and we keep, is that the
//! backed-off RTO stays in force until data sent *after* the timeout is acknowledged: the
//! backoff resets only when a chunk sent after the most recent timeout is ACKed.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::estimators::RttEstimator;

/// Clock granularity G of RFC 6298 2.3. `Instant` is far finer; 1 ms keeps the variance term
/// meaningful when RTTVAR collapses to zero on a perfectly steady path.
const CLOCK_GRANULARITY: Duration = Duration::from_millis(1);

/// Largest backoff exponent. `max_rto` caps the RTO long before; this only keeps the shift
/// from overflowing.
const MAX_BACKOFF_EXPONENT: u32 = 16;

/// Tuning of [`Reno`]. Every limit is in chunks (one file-transfer DATA frame each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenoConfig {
    /// Window at the start of a transfer, in chunks.
    pub initial_cwnd: u32,
    /// Slow-start threshold at the start of a transfer, in chunks.
    pub initial_ssthresh: u32,
    /// Largest window, in chunks; bounds the memory the sender keeps for unacknowledged chunks.
    pub max_cwnd: u32,
    /// An ACK whose RTT exceeds the minimum RTT by more than this is a congestion signal.
    pub delay_margin: Duration,
    /// RTO before the first RTT sample (RFC 6298 2.1).
    pub initial_rto: Duration,
    /// Floor of the RTO. RFC 6298 2.4 says 1 s; like Linux we use 200 ms, as the spec allows.
    pub min_rto: Duration,
    /// Ceiling of the RTO, backoff included (RFC 6298 2.5: at least 60 s).
    pub max_rto: Duration,
}

impl Default for RenoConfig {
    fn default() -> Self {
        Self {
            initial_cwnd: 2,
            initial_ssthresh: 64,
            max_cwnd: 1024,
            delay_margin: Duration::from_millis(100),
            initial_rto: Duration::from_secs(1),
            min_rto: Duration::from_millis(200),
            max_rto: Duration::from_secs(60),
        }
    }
}

/// Which growth rule the window follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenoPhase {
    /// `cwnd < ssthresh`: +1 chunk per ACK, so the window doubles every RTT.
    SlowStart,
    /// `cwnd >= ssthresh`: +1 chunk per RTT.
    CongestionAvoidance,
}

/// What an ACK did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AckOutcome {
    /// The chunk left the flight; the window may have grown.
    Acked,
    /// The chunk left the flight and its RTT showed queueing delay: the window was reduced.
    DelaySignal,
    /// No chunk with this sequence number is in flight (duplicate or bogus ACK).
    Unknown,
}

/// One chunk that has been sent and not yet acknowledged.
#[derive(Debug, Clone, Copy)]
struct SentChunk {
    /// The chunk's sequence number, as the ACK will carry it.
    seq: u32,
    /// Position in send order; compared with `recovery_start` and `timeout_start`.
    order: u64,
    /// When it was handed to the socket.
    sent: Instant,
    /// Its size, for `bytes_in_flight`.
    bytes: usize,
}

/// The congestion window of one file-transfer sender. Sans-IO: feed it sends, ACKs and timer
/// expiries; ask it whether another chunk may be sent.
#[derive(Debug, Clone)]
pub struct Reno {
    /// Tuning, fixed at construction.
    config: RenoConfig,
    /// Congestion window, in chunks: how many may be unacknowledged at once. Always >= 1.
    cwnd: u32,
    /// Slow-start threshold, in chunks. Always >= 2.
    ssthresh: u32,
    /// ACKs counted since the last +1 in congestion avoidance: the window grows by one chunk
    /// when this reaches `cwnd`, which is +1/cwnd per ACK, +1 per RTT.
    ca_acks: u32,
    /// Unacknowledged chunks in send order. ACKs normally arrive in order, so the chunk is
    /// found at the front; the queue never holds more than [`Reno::tracking_limit`] entries.
    in_flight: VecDeque<SentChunk>,
    /// Sum of the sizes of the chunks in `in_flight`.
    bytes_in_flight: u64,
    /// SRTT, RTTVAR and minimum RTT from every ACK.
    rtt: RttEstimator,
    /// Number of RTO doublings in force (consecutive timeouts without a fresh ACK).
    backoff: u32,
    /// RTO deadline; `None` when nothing is in flight.
    timer: Option<Instant>,
    /// Send-order number the next chunk will get.
    next_order: u64,
    /// Send-order number at the last window reduction: only chunks with `order >=` this can
    /// grow the window or trigger another reduction (one decrease per RTT).
    recovery_start: Option<u64>,
    /// Send-order number at the last timeout: the backoff resets when a chunk sent after it is
    /// acknowledged.
    timeout_start: u64,
    /// Number of reductions caused by queueing delay.
    delay_signals: u64,
    /// Number of RTO expiries.
    timeouts: u64,
}

impl Reno {
    /// A window in slow start with `initial_cwnd` chunks.
    pub fn new(config: RenoConfig) -> Self {
        let max_cwnd = config.max_cwnd.max(1);
        let config = RenoConfig { max_cwnd, ..config };
        Self {
            cwnd: config.initial_cwnd.clamp(1, max_cwnd),
            ssthresh: config.initial_ssthresh.max(2),
            config,
            ca_acks: 0,
            in_flight: VecDeque::new(),
            bytes_in_flight: 0,
            rtt: RttEstimator::new(),
            backoff: 0,
            timer: None,
            next_order: 0,
            recovery_start: None,
            timeout_start: 0,
            delay_signals: 0,
            timeouts: 0,
        }
    }

    /// Whether the window allows one more chunk: `chunks_in_flight < cwnd`.
    pub fn can_send(&self) -> bool {
        self.chunks_in_flight() < self.cwnd
    }

    /// Records that chunk `seq` of `bytes` bytes was just written to the socket, and arms the
    /// timer if it is not running (RFC 6298 5.1).
    ///
    /// Callers check [`can_send`](Self::can_send) first. If they do not, the chunk is still
    /// tracked, but no more than [`tracking_limit`](Self::tracking_limit) chunks are kept: past
    /// that, the oldest is forgotten (its ACK will be [`AckOutcome::Unknown`]).
    pub fn on_sent(&mut self, now: Instant, seq: u32, bytes: usize) {
        if self.in_flight.len() >= self.tracking_limit() {
            if let Some(old) = self.in_flight.pop_front() {
                self.bytes_in_flight -= old.bytes as u64;
            }
        }
        self.in_flight.push_back(SentChunk { seq, order: self.next_order, sent: now, bytes });
        self.next_order += 1;
        self.bytes_in_flight += bytes as u64;
        if self.timer.is_none() {
            self.timer = Some(now + self.rto());
        }
    }

    /// Processes the ACK of chunk `seq`. The RTT is measured from its [`on_sent`](Self::on_sent)
    /// time.
    pub fn on_ack(&mut self, now: Instant, seq: u32) -> AckOutcome {
        let Some(pos) = self.in_flight.iter().position(|c| c.seq == seq) else {
            return AckOutcome::Unknown;
        };
        let Some(chunk) = self.in_flight.remove(pos) else {
            return AckOutcome::Unknown;
        };
        self.bytes_in_flight -= chunk.bytes as u64;

        let sample = now.saturating_duration_since(chunk.sent);
        self.rtt.on_sample(sample);
        if chunk.order >= self.timeout_start {
            self.backoff = 0;
        }
        // RFC 6298 5.2 / 5.3.
        self.timer = if self.in_flight.is_empty() { None } else { Some(now + self.rto()) };

        let sent_after_reduction = match self.recovery_start {
            Some(start) => chunk.order >= start,
            None => true,
        };
        if !sent_after_reduction {
            return AckOutcome::Acked;
        }
        let queueing = self.rtt.min().is_some_and(|min| sample > min + self.config.delay_margin);
        if queueing {
            self.ssthresh = (self.cwnd / 2).max(2);
            self.cwnd = self.ssthresh.min(self.config.max_cwnd);
            self.ca_acks = 0;
            self.recovery_start = Some(self.next_order);
            self.delay_signals += 1;
            return AckOutcome::DelaySignal;
        }
        if self.cwnd < self.ssthresh {
            self.cwnd += 1;
        } else {
            self.ca_acks += 1;
            if self.ca_acks >= self.cwnd {
                self.ca_acks = 0;
                self.cwnd += 1;
            }
        }
        self.cwnd = self.cwnd.min(self.config.max_cwnd);
        AckOutcome::Acked
    }

    /// The RTO deadline, if chunks are in flight. Call [`handle_timeout`](Self::handle_timeout)
    /// once it has passed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer
    }

    /// Fires the RTO if its deadline has passed: `ssthresh = max(cwnd / 2, 2)`, `cwnd = 1`, the
    /// RTO doubles (up to `max_rto`) and the timer restarts (RFC 6298 5.5-5.6). Returns whether
    /// it fired.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        let Some(deadline) = self.timer else { return false };
        if now < deadline {
            return false;
        }
        if self.in_flight.is_empty() {
            self.timer = None;
            return false;
        }
        self.ssthresh = (self.cwnd / 2).max(2);
        self.cwnd = 1;
        self.ca_acks = 0;
        self.backoff = (self.backoff + 1).min(MAX_BACKOFF_EXPONENT);
        self.recovery_start = Some(self.next_order);
        self.timeout_start = self.next_order;
        self.timeouts += 1;
        self.timer = Some(now + self.rto());
        true
    }

    /// Congestion window, in chunks.
    pub fn cwnd(&self) -> u32 {
        self.cwnd
    }

    /// Slow-start threshold, in chunks.
    pub fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    /// Slow start while `cwnd < ssthresh`, congestion avoidance after.
    pub fn phase(&self) -> RenoPhase {
        if self.cwnd < self.ssthresh {
            RenoPhase::SlowStart
        } else {
            RenoPhase::CongestionAvoidance
        }
    }

    /// Chunks sent and not yet acknowledged.
    pub fn chunks_in_flight(&self) -> u32 {
        u32::try_from(self.in_flight.len()).unwrap_or(u32::MAX)
    }

    /// Bytes sent and not yet acknowledged.
    pub fn bytes_in_flight(&self) -> u64 {
        self.bytes_in_flight
    }

    /// Smoothed RTT (RFC 6298 SRTT) of the ACKs so far.
    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.smoothed()
    }

    /// Smallest RTT seen: the reference for the queueing-delay signal.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.rtt.min()
    }

    /// The RTO in force: `initial_rto` before the first sample, then
    /// `SRTT + max(G, 4 * RTTVAR)` floored at `min_rto`; doubled per timeout in force, capped
    /// at `max_rto`.
    pub fn rto(&self) -> Duration {
        let base = self.rtt.rto_base(CLOCK_GRANULARITY).unwrap_or(self.config.initial_rto);
        let base = base.max(self.config.min_rto).min(self.config.max_rto);
        base.saturating_mul(1 << self.backoff).min(self.config.max_rto)
    }

    /// The RTT estimator fed by the ACKs (latest sample, RTTVAR...).
    pub fn rtt_estimator(&self) -> &RttEstimator {
        &self.rtt
    }

    /// Number of window reductions caused by queueing delay so far.
    pub fn delay_signals(&self) -> u64 {
        self.delay_signals
    }

    /// Number of retransmission timeouts so far.
    pub fn timeouts(&self) -> u64 {
        self.timeouts
    }

    /// Most chunks tracked in flight: four times `max_cwnd`, so a caller that respects
    /// [`can_send`](Self::can_send) never reaches it.
    pub fn tracking_limit(&self) -> usize {
        (self.config.max_cwnd as usize).saturating_mul(4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// Sends as many chunks as the window allows at `at`, numbering from `*seq`.
    fn send_window(r: &mut Reno, at: Instant, seq: &mut u32) -> Vec<u32> {
        let mut sent = Vec::new();
        while r.can_send() {
            r.on_sent(at, *seq, 1000);
            sent.push(*seq);
            *seq += 1;
        }
        sent
    }

    /// ACKs `seqs` at `at`, returning (outcome, cwnd, ssthresh) after each.
    fn ack_all(r: &mut Reno, at: Instant, seqs: &[u32]) -> Vec<(AckOutcome, u32, u32)> {
        seqs.iter().map(|&s| (r.on_ack(at, s), r.cwnd(), r.ssthresh())).collect()
    }

    fn cwnds(trace: &[(AckOutcome, u32, u32)]) -> Vec<u32> {
        trace.iter().map(|t| t.1).collect()
    }

    #[test]
    fn cwnd_trace_through_slow_start_avoidance_delay_signal_and_timeout() {
        let t0 = Instant::now();
        let config = RenoConfig { initial_cwnd: 2, initial_ssthresh: 8, ..RenoConfig::default() };
        let mut r = Reno::new(config);
        let mut seq = 0;
        let mut t = t0;
        assert_eq!((r.cwnd(), r.ssthresh(), r.phase()), (2, 8, RenoPhase::SlowStart));

        // Slow start: +1 per ACK, the window doubles per RTT (2 -> 4 -> 8).
        let sent = send_window(&mut r, t, &mut seq);
        assert_eq!(sent.len(), 2);
        assert!(!r.can_send());
        assert_eq!(r.bytes_in_flight(), 2000);
        t += ms(50);
        assert_eq!(cwnds(&ack_all(&mut r, t, &sent)), [3, 4]);
        let sent = send_window(&mut r, t, &mut seq);
        t += ms(50);
        assert_eq!(cwnds(&ack_all(&mut r, t, &sent)), [5, 6, 7, 8]);
        assert_eq!(r.phase(), RenoPhase::CongestionAvoidance);

        // Congestion avoidance: +1 per RTT (8 ACKs for 8 -> 9, 9 ACKs for 9 -> 10).
        let sent = send_window(&mut r, t, &mut seq);
        assert_eq!(sent.len(), 8);
        t += ms(50);
        assert_eq!(cwnds(&ack_all(&mut r, t, &sent)), [8, 8, 8, 8, 8, 8, 8, 9]);
        let sent = send_window(&mut r, t, &mut seq);
        t += ms(50);
        assert_eq!(cwnds(&ack_all(&mut r, t, &sent)), [9, 9, 9, 9, 9, 9, 9, 9, 10]);
        assert_eq!(r.min_rtt(), Some(ms(50)));
        assert_eq!(r.bytes_in_flight(), 0);

        // Queueing delay: RTT 151 ms > 50 + 100. The first delayed ACK halves the window; the
        // rest of that flight (sent before the decrease) neither cuts again nor grows it.
        let sent = send_window(&mut r, t, &mut seq);
        assert_eq!(sent.len(), 10);
        t += ms(151);
        let trace = ack_all(&mut r, t, &sent);
        assert_eq!(trace[0], (AckOutcome::DelaySignal, 5, 5));
        assert!(trace[1..].iter().all(|&x| x == (AckOutcome::Acked, 5, 5)), "{trace:?}");
        assert_eq!(r.delay_signals(), 1);
        assert_eq!(r.phase(), RenoPhase::CongestionAvoidance);

        // A normal RTT: congestion avoidance resumes from 5.
        let sent = send_window(&mut r, t, &mut seq);
        assert_eq!(sent.len(), 5);
        t += ms(50);
        assert_eq!(cwnds(&ack_all(&mut r, t, &sent)), [5, 5, 5, 5, 6]);

        // Exactly at the margin is not a signal; beyond it, chunks sent after the last decrease
        // may cut again: 6 -> 3.
        let sent = send_window(&mut r, t, &mut seq);
        assert_eq!(sent.len(), 6);
        t += ms(150);
        let trace = ack_all(&mut r, t, &sent[..1]);
        assert_eq!(trace, [(AckOutcome::Acked, 6, 5)]);
        t += ms(1);
        let trace = ack_all(&mut r, t, &sent[1..]);
        assert_eq!(trace[0], (AckOutcome::DelaySignal, 3, 3));
        assert!(trace[1..].iter().all(|&x| x == (AckOutcome::Acked, 3, 3)), "{trace:?}");
        assert_eq!(r.delay_signals(), 2);

        // Timeout: nothing comes back. ssthresh = max(3 / 2, 2) = 2, cwnd = 1.
        let sent = send_window(&mut r, t, &mut seq);
        assert_eq!(sent.len(), 3);
        let rto = r.rto();
        let deadline = r.poll_timeout().expect("timer armed");
        assert_eq!(deadline, t + rto);
        assert!(!r.handle_timeout(deadline - ms(1)));
        assert!(r.handle_timeout(deadline));
        assert_eq!((r.cwnd(), r.ssthresh(), r.phase()), (1, 2, RenoPhase::SlowStart));
        assert_eq!(r.rto(), rto * 2, "exponential backoff");
        assert_eq!(r.poll_timeout(), Some(deadline + rto * 2));
        assert_eq!(r.chunks_in_flight(), 3, "chunks stay in flight over TCP");
        assert!(!r.can_send());

        // The stuck chunks finally arrive: no growth (they belong to the cut window) and the
        // backoff is kept (none was sent after the timeout).
        t = deadline + ms(10);
        let trace = ack_all(&mut r, t, &sent);
        assert!(trace.iter().all(|&x| x == (AckOutcome::Acked, 1, 2)), "{trace:?}");
        assert_eq!(r.poll_timeout(), None);
        assert_eq!(r.on_ack(t, sent[0]), AckOutcome::Unknown, "duplicate ACK");
        let unbacked = |r: &Reno| r.rtt_estimator().rto_base(CLOCK_GRANULARITY).unwrap().clamp(ms(200), ms(60_000));
        assert_eq!(r.rto(), unbacked(&r) * 2, "backoff held: their RTT samples count, but not as fresh data");

        // Fresh chunk sent after the timeout: slow start 1 -> 2, backoff reset.
        let sent = send_window(&mut r, t, &mut seq);
        assert_eq!(sent.len(), 1);
        t += ms(50);
        assert_eq!(ack_all(&mut r, t, &sent), [(AckOutcome::Acked, 2, 2)]);
        assert_eq!(r.phase(), RenoPhase::CongestionAvoidance);
        assert_eq!(r.rto(), unbacked(&r), "backoff cleared by an ACK of data sent after the timeout");
        let sent = send_window(&mut r, t, &mut seq);
        t += ms(50);
        assert_eq!(cwnds(&ack_all(&mut r, t, &sent)), [2, 3]);
        assert_eq!(r.timeouts(), 1);
    }

    #[test]
    fn one_decrease_per_rtt_under_persistent_delay() {
        let t0 = Instant::now();
        let mut r = Reno::new(RenoConfig { initial_cwnd: 32, initial_ssthresh: 64, ..RenoConfig::default() });
        let mut seq = 0;
        // Establish min RTT.
        r.on_sent(t0, seq, 10);
        r.on_ack(t0 + ms(20), seq);
        seq += 1;
        assert_eq!(r.cwnd(), 33);
        // Every ACK from now on is delayed by 300 ms. Each flight is sent at once; each flight
        // may cause exactly one decrease.
        let mut t = t0 + ms(20);
        let mut expected = 33;
        for _ in 0..4 {
            let sent = send_window(&mut r, t, &mut seq);
            t += ms(320);
            let trace = ack_all(&mut r, t, &sent);
            let signals = trace.iter().filter(|x| x.0 == AckOutcome::DelaySignal).count();
            assert_eq!(signals, 1, "{trace:?}");
            expected = (expected / 2).max(2);
            assert_eq!(r.cwnd(), expected);
        }
        assert_eq!(r.delay_signals(), 4);
        assert_eq!(r.cwnd(), 2);
    }

    #[test]
    fn rto_follows_rfc6298_with_floor_and_backoff() {
        let t0 = Instant::now();
        let mut r = Reno::new(RenoConfig::default());
        assert_eq!(r.rto(), ms(1000), "initial RTO");
        assert_eq!(r.poll_timeout(), None);
        r.on_sent(t0, 1, 100);
        assert_eq!(r.poll_timeout(), Some(t0 + ms(1000)));
        // First sample R = 100: SRTT = 100, RTTVAR = 50, RTO = 100 + 4 * 50 = 300.
        r.on_ack(t0 + ms(100), 1);
        assert_eq!(r.srtt(), Some(ms(100)));
        assert_eq!(r.rto(), ms(300));
        // Second sample R = 100: RTTVAR = 37.5, RTO = 250.
        r.on_sent(t0 + ms(100), 2, 100);
        r.on_ack(t0 + ms(200), 2);
        assert_eq!(r.rto(), ms(250));
        // Small steady RTTs: the formula drops under 200 ms and the floor holds.
        let mut t = t0 + ms(200);
        for s in 3..40 {
            r.on_sent(t, s, 100);
            t += ms(10);
            r.on_ack(t, s);
        }
        assert!(r.rtt_estimator().rto_base(CLOCK_GRANULARITY).unwrap() < ms(200));
        assert_eq!(r.rto(), ms(200));

        // Timer restarts on each ACK while chunks remain (RFC 6298 5.3).
        r.on_sent(t, 100, 100);
        r.on_sent(t + ms(5), 101, 100);
        assert_eq!(r.poll_timeout(), Some(t + ms(200)));
        r.on_ack(t + ms(15), 100);
        assert_eq!(r.poll_timeout(), Some(t + ms(15) + r.rto()));

        // Doubling backoff: 200, 400, 800, ... capped at max_rto.
        let mut expected = ms(200);
        let mut fired = 0;
        while let Some(deadline) = r.poll_timeout() {
            assert!(r.handle_timeout(deadline));
            fired += 1;
            expected = (expected * 2).min(ms(60_000));
            assert_eq!(r.rto(), expected);
            assert_eq!(r.poll_timeout(), Some(deadline + expected));
            if fired == 12 {
                break;
            }
        }
        assert_eq!(r.rto(), ms(60_000));
        assert_eq!(r.timeouts(), 12);
        assert_eq!((r.cwnd(), r.ssthresh()), (1, 2));
    }

    #[test]
    fn unknown_acks_and_bounded_tracking() {
        let t0 = Instant::now();
        let mut r = Reno::new(RenoConfig { max_cwnd: 4, ..RenoConfig::default() });
        assert_eq!(r.on_ack(t0, 7), AckOutcome::Unknown);
        assert!(!r.handle_timeout(t0 + ms(10_000)));
        // A caller that ignores can_send cannot make the tracking grow without bound.
        for s in 0..100 {
            r.on_sent(t0, s, 10);
        }
        assert_eq!(r.chunks_in_flight() as usize, r.tracking_limit());
        assert_eq!(r.bytes_in_flight(), 10 * r.tracking_limit() as u64);
        assert_eq!(r.on_ack(t0 + ms(10), 0), AckOutcome::Unknown, "forgotten");
        assert_eq!(r.on_ack(t0 + ms(10), 99), AckOutcome::Acked);
        // The window never exceeds max_cwnd.
        for s in 84..99 {
            r.on_ack(t0 + ms(10), s);
        }
        assert!(r.cwnd() <= 4);
    }
}
