//! A sliding replay window over 64-bit sequence numbers (RFC 4303 §3.4.3, RFC 3711 §3.3.2).
//!
//! The receiver of an authenticated datagram stream remembers, for the [`REPLAY_WINDOW`]
//! sequence numbers up to the highest it accepted, which ones it has seen. A number seen
//! before is a replay; a number older than the window is stale. Both are refused, so a
//! captured datagram sent again (by anyone, from any address) achieves nothing. Datagrams may
//! arrive out of order within the window: UDP reorders, and a client's video, audio and
//! network threads draw from one counter.
//!
//! The window is only updated by [`ReplayWindow::accept`], which the caller calls after the
//! datagram's authentication tag was verified: an unauthenticated datagram must never move
//! the window (or an attacker could push it past the real sender's numbers).

use thiserror::Error;

/// How many sequence numbers below the highest accepted one are still accepted once.
/// Far above SRTP's minimum of 64: a 480p frame alone is 20–35 datagrams.
pub const REPLAY_WINDOW: u64 = 2048;

const WORDS: usize = (REPLAY_WINDOW / 64) as usize;

/// Why a sequence number was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum Replay {
    /// Already accepted once.
    #[error("sequence number already seen")]
    Duplicate,
    /// Older than the window: whether it was seen can no longer be told.
    #[error("sequence number older than the replay window")]
    Stale,
}

/// Which of the last [`REPLAY_WINDOW`] sequence numbers were accepted.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// The highest number accepted, once one was.
    highest: Option<u64>,
    /// Bit `n % REPLAY_WINDOW` is set when `n` (within the window) was accepted.
    seen: [u64; WORDS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl ReplayWindow {
    pub fn new() -> Self {
        Self { highest: None, seen: [0; WORDS] }
    }

    /// The highest sequence number accepted so far.
    pub fn highest(&self) -> Option<u64> {
        self.highest
    }

    /// Whether `seq` would be accepted, without accepting it.
    pub fn check(&self, seq: u64) -> Result<(), Replay> {
        let Some(highest) = self.highest else { return Ok(()) };
        if seq > highest {
            return Ok(());
        }
        if highest - seq >= REPLAY_WINDOW {
            return Err(Replay::Stale);
        }
        if self.is_set(seq) {
            Err(Replay::Duplicate)
        } else {
            Ok(())
        }
    }

    /// Accepts `seq` if [`check`](Self::check) allows it, and remembers it.
    pub fn accept(&mut self, seq: u64) -> Result<(), Replay> {
        self.check(seq)?;
        match self.highest {
            Some(highest) if seq <= highest => {}
            Some(highest) => {
                // Forget the numbers that slide out of the window: every number in
                // (highest, seq] gets a fresh bit (a jump of a whole window clears all).
                let advance = seq - highest;
                if advance >= REPLAY_WINDOW {
                    self.seen = [0; WORDS];
                } else {
                    for n in highest + 1..=seq {
                        self.clear(n);
                    }
                }
                self.highest = Some(seq);
            }
            None => self.highest = Some(seq),
        }
        self.set(seq);
        Ok(())
    }

    fn position(seq: u64) -> (usize, u64) {
        let bit = seq % REPLAY_WINDOW;
        ((bit / 64) as usize, 1u64 << (bit % 64))
    }

    fn is_set(&self, seq: u64) -> bool {
        let (word, mask) = Self::position(seq);
        self.seen[word] & mask != 0
    }

    fn set(&mut self, seq: u64) {
        let (word, mask) = Self::position(seq);
        self.seen[word] |= mask;
    }

    fn clear(&mut self, seq: u64) {
        let (word, mask) = Self::position(seq);
        self.seen[word] &= !mask;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn in_order_then_duplicates_refused() {
        let mut w = ReplayWindow::new();
        for n in 0..5000 {
            assert_eq!(w.accept(n), Ok(()));
        }
        assert_eq!(w.accept(4999), Err(Replay::Duplicate));
        assert_eq!(w.accept(4999 - (REPLAY_WINDOW - 1)), Err(Replay::Duplicate));
        assert_eq!(w.accept(4999 - REPLAY_WINDOW), Err(Replay::Stale));
        assert_eq!(w.highest(), Some(4999));
    }

    #[test]
    fn reordering_within_the_window_is_accepted_once() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.accept(100), Ok(()));
        assert_eq!(w.accept(90), Ok(()));
        assert_eq!(w.accept(99), Ok(()));
        assert_eq!(w.accept(90), Err(Replay::Duplicate));
        // A number below the first one accepted but inside the window was never seen.
        assert_eq!(w.accept(5), Ok(()));
        assert_eq!(w.check(5), Err(Replay::Duplicate));
        assert_eq!(w.highest(), Some(100));
    }

    #[test]
    fn a_jump_forgets_what_slid_out() {
        let mut w = ReplayWindow::new();
        w.accept(10).unwrap();
        w.accept(10 + REPLAY_WINDOW * 3).unwrap();
        assert_eq!(w.accept(10), Err(Replay::Stale));
        // Bits of the old position must not make a fresh number look seen.
        assert_eq!(w.accept(10 + REPLAY_WINDOW * 3 - 1), Ok(()));
        w.accept(10 + REPLAY_WINDOW * 3 + 64).unwrap();
        assert_eq!(w.accept(10 + REPLAY_WINDOW * 3 + 63), Ok(()));
    }

    #[test]
    fn check_does_not_accept() {
        let mut w = ReplayWindow::new();
        assert_eq!(w.check(7), Ok(()));
        assert_eq!(w.check(7), Ok(()));
        w.accept(7).unwrap();
        assert_eq!(w.check(7), Err(Replay::Duplicate));
        assert_eq!(w.accept(u64::MAX), Ok(()));
        assert_eq!(w.accept(u64::MAX), Err(Replay::Duplicate));
    }

    proptest! {
        /// Against a set of every number ever accepted: the window accepts a number exactly
        /// when it is new and not older than the window below the highest accepted.
        #[test]
        fn agrees_with_a_set(seqs in proptest::collection::vec(0u64..6000, 1..400)) {
            let mut w = ReplayWindow::new();
            let mut seen = std::collections::BTreeSet::new();
            let mut highest: Option<u64> = None;
            for seq in seqs {
                let expected = match highest {
                    Some(h) if seq <= h && h - seq >= REPLAY_WINDOW => Err(Replay::Stale),
                    _ if seen.contains(&seq) => Err(Replay::Duplicate),
                    _ => Ok(()),
                };
                prop_assert_eq!(w.accept(seq), expected);
                if expected.is_ok() {
                    seen.insert(seq);
                    highest = Some(highest.map_or(seq, |h| h.max(seq)));
                }
            }
        }
    }
}
