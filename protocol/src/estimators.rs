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

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
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
}
