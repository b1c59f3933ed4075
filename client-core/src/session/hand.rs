//! A raised hand lowers itself once its owner has spoken for a few seconds, as in Meet: who
//! raised a hand to speak and then spoke has been heard.
//!
//! Sans-IO: the control task feeds it whether our hand is up (from the roster the relay sends)
//! and whether we speak (the engine's voice-activity flag, only while the microphone is on),
//! each with the time; [`HandAutoLower::deadline`] says when to look again, and
//! [`HandAutoLower::poll`] says, once, that the hand should come down. Speech is counted in
//! total since the hand went up, so the pauses between sentences do not start it over.

use std::time::{Duration, Instant};

/// Speech, in all, after which a raised hand lowers itself.
pub(crate) const SPEECH_LOWERS_HAND: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub(crate) struct HandAutoLower {
    raised: bool,
    /// Speech counted since the hand went up, not counting the current stretch.
    spoken: Duration,
    /// Since when we speak, while we do.
    speaking_since: Option<Instant>,
    /// The hand was asked down for this raise already.
    lowered: bool,
}

impl HandAutoLower {
    /// Our hand is up (or down), as the relay says.
    pub fn set_raised(&mut self, raised: bool, now: Instant) {
        if raised && !self.raised {
            self.spoken = Duration::ZERO;
            self.lowered = false;
            // Speaking as the hand goes up counts from now.
            self.speaking_since = self.speaking_since.map(|_| now);
        }
        self.raised = raised;
    }

    /// We speak (or stopped).
    pub fn set_speaking(&mut self, speaking: bool, now: Instant) {
        match (speaking, self.speaking_since) {
            (true, None) => self.speaking_since = Some(now),
            (false, Some(since)) => {
                if self.raised {
                    self.spoken += now.saturating_duration_since(since);
                }
                self.speaking_since = None;
            }
            _ => {}
        }
    }

    /// When the hand should come down if we go on speaking; `None` while nothing is due.
    pub fn deadline(&self) -> Option<Instant> {
        if !self.raised || self.lowered {
            return None;
        }
        let since = self.speaking_since?;
        Some(since + SPEECH_LOWERS_HAND.saturating_sub(self.spoken))
    }

    /// True once per raise, when the hand should come down now.
    pub fn poll(&mut self, now: Instant) -> bool {
        let due = self.deadline().is_some_and(|at| at <= now);
        if due {
            self.lowered = true;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn speech_in_all_lowers_the_hand_once_pauses_included() {
        let t0 = Instant::now();
        let mut hand = HandAutoLower::default();
        hand.set_raised(true, t0);
        assert_eq!(hand.deadline(), None, "silence: nothing due");
        hand.set_speaking(true, t0 + S);
        assert_eq!(hand.deadline(), Some(t0 + 4 * S));
        hand.set_speaking(false, t0 + 3 * S);
        assert!(!hand.poll(t0 + 10 * S), "two seconds of speech are not enough");
        hand.set_speaking(true, t0 + 20 * S);
        assert_eq!(hand.deadline(), Some(t0 + 21 * S), "one more second after the pause");
        assert!(!hand.poll(t0 + 20 * S + S / 2));
        assert!(hand.poll(t0 + 21 * S));
        assert!(!hand.poll(t0 + 30 * S), "asked down once");
        assert_eq!(hand.deadline(), None);
    }

    #[test]
    fn speech_before_the_hand_went_up_does_not_count_and_a_new_raise_starts_over() {
        let t0 = Instant::now();
        let mut hand = HandAutoLower::default();
        hand.set_speaking(true, t0);
        assert_eq!(hand.deadline(), None, "no hand up");
        hand.set_raised(true, t0 + 10 * S);
        assert_eq!(hand.deadline(), Some(t0 + 13 * S), "counted from the raise");
        assert!(hand.poll(t0 + 13 * S));
        hand.set_raised(false, t0 + 14 * S);
        hand.set_raised(true, t0 + 15 * S);
        assert_eq!(hand.deadline(), Some(t0 + 18 * S), "a new raise counts again");
        hand.set_raised(false, t0 + 16 * S);
        assert!(!hand.poll(t0 + 20 * S), "a hand lowered meanwhile is not asked down");
    }
}
