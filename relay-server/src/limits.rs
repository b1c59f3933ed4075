//! Rate limits and per-address quotas as plain structs given the time, so every limit is
//! unit-tested with a simulated clock (the relay's tasks pass `Instant::now()` in; nothing here
//! reads a clock).
//!
//! Two kinds of limit keep a stranger from taking a meeting (or the relay) down:
//! - per participant, a [`TokenBucket`] on each message that fans out to the whole meeting
//!   (chat, media state), kept by the meeting core;
//! - per source address ([`AddressKey`]: an IPv4 address, or the /64 of an IPv6 one), an
//!   [`AddressLimiter`] of buckets for failed joins (code scanning), knocks and new meetings.
//!   Its table is bounded: buckets that have refilled carry no information and are forgotten
//!   first, then the least recently used.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens at most, refilled at `per_second` (may be fractional: one
/// token an hour is `1.0 / 3600.0`).
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket at `now`. A burst of 0 still lets one request through at a time.
    pub fn new(now: Instant, burst: u32, per_second: f64) -> Self {
        let burst = f64::from(burst.max(1));
        Self { tokens: burst, burst, per_second: per_second.max(0.0), last: now }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
    }

    /// Whether a token is there, without taking it: `Err` says how long until one is
    /// (`Duration::MAX` if the bucket never refills).
    pub fn check(&mut self, now: Instant) -> Result<(), Duration> {
        self.refill(now);
        if self.tokens >= 1.0 {
            return Ok(());
        }
        if self.per_second <= 0.0 {
            return Err(Duration::MAX);
        }
        // Rounded up to the millisecond, so a client that waits exactly this long succeeds
        // (less a hair, so float error does not add a millisecond to a whole number).
        let ms = (1.0 - self.tokens) / self.per_second * 1000.0;
        Err(Duration::from_millis((ms - 1e-6).ceil().max(1.0) as u64))
    }

    /// Takes a token, or says how long until one is there.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        self.check(now)?;
        self.tokens -= 1.0;
        Ok(())
    }

    /// True when the bucket is (back to) full at `now`: it then remembers nothing.
    fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }
}

/// A burst and a steady rate, as the configuration gives them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Requests allowed at once.
    pub burst: u32,
    /// One more request allowed per this interval after the burst.
    pub every: Duration,
}

impl Rate {
    pub const fn new(burst: u32, every: Duration) -> Self {
        Self { burst, every }
    }

    fn per_second(self) -> f64 {
        if self.every.is_zero() {
            f64::INFINITY
        } else {
            1.0 / self.every.as_secs_f64()
        }
    }

    pub(crate) fn bucket(self, now: Instant) -> TokenBucket {
        TokenBucket::new(now, self.burst, self.per_second())
    }
}

/// The unit a per-address limit counts: an IPv4 address, or the /64 network of an IPv6 one
/// (one host usually owns a whole /64). IPv4-mapped IPv6 addresses count as their IPv4 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressKey {
    V4([u8; 4]),
    V6Net([u8; 8]),
}

impl From<IpAddr> for AddressKey {
    fn from(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => AddressKey::V4(v4.octets()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => AddressKey::V4(v4.octets()),
                None => {
                    let mut net = [0u8; 8];
                    net.copy_from_slice(&v6.octets()[..8]);
                    AddressKey::V6Net(net)
                }
            },
        }
    }
}

/// What an address is limited in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum AddressRate {
    /// `JOIN_REQUEST`s naming a code no meeting has: the cost of scanning for codes.
    FailedJoin,
    /// Knocks on any meeting.
    Knock,
    /// Meetings created.
    NewMeeting,
}

impl AddressRate {
    const ALL: [AddressRate; 3] = [AddressRate::FailedJoin, AddressRate::Knock, AddressRate::NewMeeting];

    fn index(self) -> usize {
        self as usize
    }
}

/// The rates of an [`AddressLimiter`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddressRates {
    pub failed_joins: Rate,
    pub knocks: Rate,
    pub new_meetings: Rate,
}

impl AddressRates {
    fn get(&self, rate: AddressRate) -> Rate {
        match rate {
            AddressRate::FailedJoin => self.failed_joins,
            AddressRate::Knock => self.knocks,
            AddressRate::NewMeeting => self.new_meetings,
        }
    }
}

#[derive(Debug)]
struct AddressEntry {
    buckets: [TokenBucket; 3],
    last_used: Instant,
}

/// Per-address token buckets in a table of at most `capacity` addresses.
#[derive(Debug)]
pub(crate) struct AddressLimiter {
    rates: AddressRates,
    capacity: usize,
    entries: HashMap<AddressKey, AddressEntry>,
}

impl AddressLimiter {
    pub fn new(rates: AddressRates, capacity: usize) -> Self {
        Self { rates, capacity: capacity.max(1), entries: HashMap::new() }
    }

    fn entry(&mut self, now: Instant, key: AddressKey) -> &mut AddressEntry {
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let rates = self.rates;
        let entry = self.entries.entry(key).or_insert_with(|| AddressEntry {
            buckets: AddressRate::ALL.map(|r| rates.get(r).bucket(now)),
            last_used: now,
        });
        entry.last_used = entry.last_used.max(now);
        entry
    }

    /// Forgets every address whose buckets are all full; if none is, the least recently used.
    fn make_room(&mut self, now: Instant) {
        self.entries.retain(|_, e| !e.buckets.iter_mut().all(|b| b.is_full(now)));
        if self.entries.len() >= self.capacity {
            if let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.last_used).map(|(k, _)| *k) {
                self.entries.remove(&oldest);
            }
        }
    }

    /// Whether `key` may make a `rate` request now, without spending it.
    pub fn check(&mut self, now: Instant, key: AddressKey, rate: AddressRate) -> Result<(), Duration> {
        self.entry(now, key).buckets[rate.index()].check(now)
    }

    /// Spends one `rate` request of `key`, or says how long until it could.
    pub fn take(&mut self, now: Instant, key: AddressKey, rate: AddressRate) -> Result<(), Duration> {
        self.entry(now, key).buckets[rate.index()].take(now)
    }

    /// Addresses the table currently remembers.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// Open connections per address, bounded by the relay's connection limit.
#[derive(Debug, Default)]
pub(crate) struct ConnectionCounts {
    open: HashMap<AddressKey, usize>,
}

impl ConnectionCounts {
    /// Counts a new connection from `key` if it has fewer than `max` open.
    pub fn try_open(&mut self, key: AddressKey, max: usize) -> bool {
        let n = self.open.entry(key).or_insert(0);
        if *n >= max {
            if *n == 0 {
                self.open.remove(&key);
            }
            return false;
        }
        *n += 1;
        true
    }

    /// A connection counted by [`Self::try_open`] closed.
    pub fn close(&mut self, key: AddressKey) {
        if let Some(n) = self.open.get_mut(&key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open.remove(&key);
            }
        }
    }

    #[cfg(test)]
    fn addresses(&self) -> usize {
        self.open.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut bucket = TokenBucket::new(t0, 3, 2.0);
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
        let mut bucket = TokenBucket::new(t0, 1, 0.0);
        assert_eq!(bucket.take(t0), Ok(()));
        assert_eq!(bucket.take(t0 + Duration::from_secs(3600)), Err(Duration::MAX));
    }

    #[test]
    fn time_going_backwards_neither_refills_nor_panics() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut bucket = TokenBucket::new(t0, 1, 1.0);
        assert_eq!(bucket.take(t0), Ok(()));
        assert!(bucket.take(t0 - Duration::from_secs(5)).is_err());
        assert_eq!(bucket.take(t0 + Duration::from_secs(1)), Ok(()));
    }

    fn rates() -> AddressRates {
        AddressRates {
            failed_joins: Rate::new(10, Duration::from_secs(3600)),
            knocks: Rate::new(2, Duration::from_secs(10)),
            new_meetings: Rate::new(1, Duration::from_secs(60)),
        }
    }

    fn v4(last: u8) -> AddressKey {
        AddressKey::from(IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn each_address_has_its_own_buckets_and_each_rate_its_own() {
        let t0 = Instant::now();
        let mut limiter = AddressLimiter::new(rates(), 100);
        for _ in 0..10 {
            limiter.take(t0, v4(2), AddressRate::FailedJoin).unwrap();
        }
        let wait = limiter.take(t0, v4(2), AddressRate::FailedJoin).unwrap_err();
        assert_eq!(wait, Duration::from_secs(3600));
        // Checking does not spend: another address and another rate are untouched.
        assert_eq!(limiter.check(t0, v4(3), AddressRate::FailedJoin), Ok(()));
        assert_eq!(limiter.take(t0, v4(2), AddressRate::Knock), Ok(()));
        assert_eq!(
            limiter.check(t0 + Duration::from_secs(3599), v4(2), AddressRate::FailedJoin),
            Err(Duration::from_secs(1))
        );
        assert_eq!(limiter.take(t0 + Duration::from_secs(3600), v4(2), AddressRate::FailedJoin), Ok(()));
    }

    #[test]
    fn ipv6_counts_by_slash_64_and_mapped_v4_as_v4() {
        let a: IpAddr = "2001:db8:1:2::10".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::10".parse().unwrap();
        assert_eq!(AddressKey::from(a), AddressKey::from(b));
        assert_ne!(AddressKey::from(a), AddressKey::from(c));
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(AddressKey::from(mapped), v4(2));
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_refilled_addresses_first() {
        let t0 = Instant::now();
        let mut limiter = AddressLimiter::new(rates(), 3);
        limiter.take(t0, v4(1), AddressRate::NewMeeting).unwrap();
        limiter.take(t0, v4(2), AddressRate::FailedJoin).unwrap();
        limiter.take(t0, v4(3), AddressRate::FailedJoin).unwrap();
        // A minute later address 1 has refilled: it is the one forgotten.
        let t1 = t0 + Duration::from_secs(60);
        limiter.take(t1, v4(4), AddressRate::Knock).unwrap();
        assert_eq!(limiter.len(), 3);
        for _ in 0..9 {
            limiter.take(t1, v4(2), AddressRate::FailedJoin).unwrap();
        }
        assert!(limiter.take(t1, v4(2), AddressRate::FailedJoin).is_err(), "address 2 was remembered");
        // Nothing has refilled: the least recently used (3) goes, the table stays at 3.
        for n in 5..50 {
            limiter.take(t1 + Duration::from_secs(u64::from(n)), v4(n), AddressRate::Knock).unwrap();
            assert!(limiter.len() <= 3);
        }
    }

    #[test]
    fn connections_are_counted_per_address_up_to_the_cap() {
        let mut counts = ConnectionCounts::default();
        assert!(counts.try_open(v4(2), 2));
        assert!(counts.try_open(v4(2), 2));
        assert!(!counts.try_open(v4(2), 2));
        assert!(counts.try_open(v4(3), 2));
        counts.close(v4(2));
        assert!(counts.try_open(v4(2), 2));
        counts.close(v4(2));
        counts.close(v4(2));
        counts.close(v4(3));
        assert_eq!(counts.addresses(), 0, "closed addresses are forgotten");
        assert!(!counts.try_open(v4(9), 0));
        assert_eq!(counts.addresses(), 0);
    }
}
