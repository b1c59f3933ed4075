//! When to send audio twice. A sender adds a µ-law copy of the previous frame to each audio
//! packet (see [`crate::media::MediaPacket::Audio`]) while any receiver, or the relay, has
//! recently reported audio loss: a single lost packet is then filled from the next one before
//! its playout time, instead of concealed. It costs half the audio bitrate again (128 kbit/s on
//! 256), so it is on only while loss is being reported, and for a while after, since loss
//! comes and goes in bursts.

use std::time::{Duration, Instant};

/// Tuning of [`AudioRedundancy`].
#[derive(Debug, Clone, PartialEq)]
pub struct RedundancyConfig {
    /// Reported loss (fraction) at or above which redundancy turns on.
    pub loss_on: f64,
    /// How long after the last such report it stays on.
    pub hold: Duration,
}

impl Default for RedundancyConfig {
    fn default() -> Self {
        Self { loss_on: 0.01, hold: Duration::from_secs(10) }
    }
}

/// Decides from receiver reports whether audio packets carry the previous frame. Sans-IO.
#[derive(Debug, Clone)]
pub struct AudioRedundancy {
    config: RedundancyConfig,
    /// When a report last showed loss at or above `loss_on`.
    last_lossy_report: Option<Instant>,
}

impl AudioRedundancy {
    pub fn new(config: RedundancyConfig) -> Self {
        Self { config, last_lossy_report: None }
    }

    /// A report of the fraction of our audio packets lost on the way to one receiver (or to the
    /// relay), over its last interval.
    pub fn on_report(&mut self, now: Instant, loss: f64) {
        if loss >= self.config.loss_on {
            self.last_lossy_report = Some(self.last_lossy_report.map_or(now, |t| t.max(now)));
        }
    }

    /// Whether packets sent at `now` should carry the previous frame.
    pub fn is_on(&self, now: Instant) -> bool {
        self.last_lossy_report.is_some_and(|t| now.saturating_duration_since(t) < self.config.hold)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_while_loss_is_reported_and_for_the_hold_after() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = AudioRedundancy::new(RedundancyConfig::default());
        assert!(!r.is_on(t0));
        r.on_report(t0, 0.005);
        assert!(!r.is_on(t0), "below the threshold");
        r.on_report(t0 + s(1), 0.03);
        assert!(r.is_on(t0 + s(1)));
        // Clean reports do not turn it off early.
        r.on_report(t0 + s(2), 0.0);
        assert!(r.is_on(t0 + s(10)));
        assert!(!r.is_on(t0 + s(11)), "off a hold after the last lossy report");
        r.on_report(t0 + s(12), 0.01);
        assert!(r.is_on(t0 + s(21)) && !r.is_on(t0 + s(22)));
        // A report stamped earlier than one already seen does not shorten the hold.
        r.on_report(t0 + s(5), 0.5);
        assert!(r.is_on(t0 + s(21)));
    }
}
