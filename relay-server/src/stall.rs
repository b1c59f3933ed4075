//! Telling a slow upload from a stalled one: an upload must move at least `min_bytes` in every
//! `window`, or the relay cuts it.
//!
//! The file connection's idle timeout alone does not catch a client that sends one byte just
//! before each timeout: it keeps a connection slot, an upload slot and the other participants'
//! progress bar for as long as it likes. Counting the bytes of each window does. The defaults
//! (16 KiB in 15 s, about 9 kbit/s) are far below any link a call can run over. Sans-IO: the
//! caller passes the time in, so the rule is tested with a simulated clock.

use std::time::{Duration, Instant};

/// The byte count of the current window of one upload.
#[derive(Debug, Clone)]
pub(crate) struct StallWatch {
    window: Duration,
    min_bytes: u64,
    window_start: Instant,
    bytes: u64,
}

impl StallWatch {
    pub fn new(now: Instant, window: Duration, min_bytes: u64) -> Self {
        Self { window, min_bytes, window_start: now, bytes: 0 }
    }

    /// Counts bytes that arrived.
    pub fn on_bytes(&mut self, n: u64) {
        self.bytes = self.bytes.saturating_add(n);
    }

    /// When the current window closes: call [`Self::is_stalled`] then.
    pub fn deadline(&self) -> Instant {
        self.window_start + self.window
    }

    /// At or after the deadline: whether the window that closed fell short. If it did not, the
    /// next window starts. Before the deadline: false.
    pub fn is_stalled(&mut self, now: Instant) -> bool {
        if now < self.deadline() {
            return false;
        }
        if self.bytes < self.min_bytes {
            return true;
        }
        self.window_start = now;
        self.bytes = 0;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(15);

    #[test]
    fn an_upload_that_keeps_moving_is_never_stalled() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(t0, WINDOW, 16_384);
        for window in 1..=4u32 {
            // 16 KiB spread over each window, in small pieces.
            for _ in 0..16 {
                w.on_bytes(1024);
            }
            let deadline = w.deadline();
            assert_eq!(deadline, t0 + WINDOW * window);
            assert!(!w.is_stalled(deadline - Duration::from_millis(1)), "not judged before its end");
            assert!(!w.is_stalled(deadline), "window {window} moved enough");
            assert_eq!(w.deadline(), deadline + WINDOW, "the next window starts at the check");
        }
    }

    #[test]
    fn a_trickle_is_stalled_at_the_end_of_its_window() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(t0, WINDOW, 16_384);
        // One byte every 10 s keeps a connection's idle timer happy, but not this.
        w.on_bytes(1);
        assert!(!w.is_stalled(t0 + Duration::from_secs(10)));
        w.on_bytes(1);
        assert!(w.is_stalled(t0 + WINDOW));
        // It stays stalled: the caller cuts the upload.
        assert!(w.is_stalled(t0 + WINDOW + Duration::from_secs(1)));
    }

    #[test]
    fn bytes_of_an_earlier_window_do_not_count_for_a_later_one() {
        let t0 = Instant::now();
        let mut w = StallWatch::new(t0, WINDOW, 16_384);
        w.on_bytes(1 << 20);
        assert!(!w.is_stalled(t0 + WINDOW));
        w.on_bytes(100);
        assert!(w.is_stalled(t0 + WINDOW * 2), "a megabyte early does not buy a silent window later");
    }
}
