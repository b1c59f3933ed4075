//! Rate limits as plain structs given the time, so every limit is unit-tested with a simulated
//! clock (the relay's tasks pass `Instant::now()` in; nothing here reads a clock).

use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens at most, refilled at `per_second`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. A burst of 0 still lets one request through at a time.
    pub fn new(now: Instant, burst: u32, per_second: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self { tokens: burst, burst, per_second: f64::from(per_second), last: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
    }

    /// Takes a token, or says how long until one is there (`Duration::MAX` if the bucket never
    /// refills).
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        if self.per_second <= 0.0 {
            return Err(Duration::MAX);
        }
        Err(Duration::from_secs_f64((1.0 - self.tokens) / self.per_second))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 3, 2);
        for _ in 0..3 {
            assert_eq!(bucket.take(t0), Ok(()));
        }
        let wait = bucket.take(t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        assert!(bucket.take(t0 + Duration::from_millis(499)).is_err());
        assert_eq!(bucket.take(t0 + Duration::from_millis(500)), Ok(()));
        // A long pause refills to the burst, not beyond it.
        let later = t0 + Duration::from_secs(60);
        for _ in 0..3 {
            assert_eq!(bucket.take(later), Ok(()));
        }
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn a_bucket_without_refill_says_so() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 1, 0);
        assert_eq!(bucket.take(t0), Ok(()));
        assert_eq!(bucket.take(t0 + Duration::from_secs(3600)), Err(Duration::MAX));
    }

    #[test]
    fn time_going_backwards_neither_refills_nor_panics() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(t0, 1, 1);
        assert_eq!(bucket.take(t0), Ok(()));
        assert!(bucket.take(t0 - Duration::from_secs(5)).is_err());
        assert_eq!(bucket.take(t0 + Duration::from_secs(1)), Ok(()));
    }
}
