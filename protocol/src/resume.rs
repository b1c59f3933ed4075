//! A client's side of resuming a meeting after its connection to the relay drops.
//!
//! Two sans-IO pieces, driven by the session's control task with the time passed in:
//!
//! - [`ReconnectSchedule`]: when to try to reconnect and when to give up. The first attempt is
//!   immediate, then about 1, 2 and 4 s apart (each delay ±25 %, so clients that lost the
//!   same relay at once do not come back in lockstep), every 4 s after that, for at most
//!   [`RESUME_WINDOW`] after the drop; a client of a cluster of relays retries at least every
//!   [`CLUSTER_RETRY`] ([`ReconnectSchedule::retry_within`]). The relay holds the seat for its own grace window
//!   (30 s by default) and answers a late `RESUME` with `RESUME_REFUSED`, which ends the
//!   schedule early.
//! - [`ChatLedger`]: exactly-once chat across a resume. It remembers the id of the newest
//!   message seen (the `last_chat_id` of `RESUME`, and the filter for the overlap between what
//!   arrived before the drop and what `RESUMED` replays) and the messages we sent that have not
//!   come back stamped yet; those are sent again after a resume with their original
//!   `client_msg_id`, which the relay uses to drop one it already has.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::control::ChatMessage;

/// Longest wait between attempts for a client whose relay belongs to a cluster: another relay
/// takes the meeting over 4–6 s after its relay died, and the client should be there soon after.
pub const CLUSTER_RETRY: Duration = Duration::from_millis(1500);
/// How long after a drop a client keeps trying to resume.
pub const RESUME_WINDOW: Duration = Duration::from_secs(60);
/// Without any datagram from the relay for this long while in a meeting, the client takes
/// the path as broken and reconnects (the relay answers an RTT request every second).
pub const RELAY_SILENCE: Duration = Duration::from_secs(3);
/// The nominal waits before the 2nd, 3rd, 4th… attempt; the last one repeats.
const BACKOFF: [Duration; 4] = [Duration::ZERO, Duration::from_secs(1), Duration::from_secs(2), Duration::from_secs(4)];
/// Each wait after the first is drawn from ±this fraction around its nominal value.
const JITTER: f64 = 0.25;

/// When to attempt the next reconnection. See the module doc.
#[derive(Debug, Clone)]
pub struct ReconnectSchedule {
    dropped_at: Instant,
    window: Duration,
    /// Attempts made so far.
    attempts: u32,
    next: Option<Instant>,
    /// xorshift64* state for the jitter; never zero.
    rng: u64,
}

impl ReconnectSchedule {
    /// A schedule for a connection that dropped at `now`; `seed` draws the jitter (any value).
    pub fn new(now: Instant, seed: u64) -> Self {
        Self::with_window(now, seed, RESUME_WINDOW)
    }

    /// As [`Self::new`] with another window.
    pub fn with_window(now: Instant, seed: u64, window: Duration) -> Self {
        // SplitMix64 spreads neighbouring seeds apart; xorshift needs a non-zero state.
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Self { dropped_at: now, window, attempts: 0, next: Some(now), rng: (z ^ (z >> 31)) | 1 }
    }

    /// When the next attempt is due; `None` once the window is over (give up).
    pub fn next_attempt(&self) -> Option<Instant> {
        self.next
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Time since the drop.
    pub fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.dropped_at)
    }

    /// An attempt starts at `now`: schedules the one after it (if it fails), or none if that
    /// would fall after the window.
    pub fn on_attempt(&mut self, now: Instant) {
        self.attempts += 1;
        let nominal = BACKOFF[(self.attempts as usize).min(BACKOFF.len() - 1)];
        let wait = nominal.mul_f64(1.0 + JITTER * (2.0 * self.unit() - 1.0));
        let at = now + wait;
        self.next = (at <= self.dropped_at + self.window).then_some(at);
    }

    /// Brings the next attempt forward to at most `max_wait` after `now` (still within the
    /// window): a client of a cluster of relays retries this often while the relays are still
    /// sending it back to the one that died, since another takes the meeting over within
    /// seconds (docs/protocol.md §3.9).
    pub fn retry_within(&mut self, now: Instant, max_wait: Duration) {
        if let Some(next) = self.next {
            self.next = Some(next.min(now + max_wait));
        }
    }

    /// The relay said the seat is gone: no more attempts.
    pub fn give_up(&mut self) {
        self.next = None;
    }

    /// A uniform draw in [0, 1).
    fn unit(&mut self) -> f64 {
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Most messages a client keeps for sending again; older unacknowledged ones are dropped (and
/// reported) rather than growing without bound while the relay is away.
pub const MAX_UNACKNOWLEDGED_CHATS: usize = 100;

/// Exactly-once chat across resumes. See the module doc.
#[derive(Debug, Clone, Default)]
pub struct ChatLedger {
    last_seen: u64,
    /// Sent (or queued while away) and not yet seen stamped, by `client_msg_id`.
    unacknowledged: BTreeMap<u64, String>,
}

impl ChatLedger {
    pub fn new() -> Self {
        Self::default()
    }

    /// The id of the newest message seen: `RESUME`'s `last_chat_id`.
    pub fn last_seen(&self) -> u64 {
        self.last_seen
    }

    /// We send (or queue) `text` as `client_msg_id`. Returns the `client_msg_id` of a message
    /// dropped to stay within [`MAX_UNACKNOWLEDGED_CHATS`], if one was.
    pub fn on_send(&mut self, client_msg_id: u64, text: String) -> Option<u64> {
        self.unacknowledged.insert(client_msg_id, text);
        if self.unacknowledged.len() > MAX_UNACKNOWLEDGED_CHATS {
            return self.unacknowledged.pop_first().map(|(id, _)| id);
        }
        None
    }

    /// A stamped message arrived (live, in a welcome's history or in a resume's replay); `mine`
    /// says whether we sent it. Returns false if it was seen already (drop it).
    pub fn on_message(&mut self, message: &ChatMessage, mine: bool) -> bool {
        if mine {
            if let Some(id) = message.client_msg_id {
                self.unacknowledged.remove(&id);
            }
        }
        if message.id <= self.last_seen {
            return false;
        }
        self.last_seen = message.id;
        true
    }

    /// What to send again after a resume, oldest first, with the original ids.
    pub fn unacknowledged(&self) -> impl Iterator<Item = (u64, &str)> {
        self.unacknowledged.iter().map(|(id, text)| (*id, text.as_str()))
    }
}

/// Whether a presented secret (a resume secret, a session token) equals the one issued, in
/// time that does not depend on where they differ.
pub fn secrets_match(presented: &str, issued: &str) -> bool {
    aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), issued.as_bytes()).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_client_retries_within_its_bound_and_never_past_the_window() {
        let t0 = Instant::now();
        let mut schedule = ReconnectSchedule::new(t0, 7);
        let bound = Duration::from_millis(1500);
        let mut now = t0;
        while let Some(next) = schedule.next_attempt() {
            assert!(next - now <= bound || now == t0, "an attempt {:?} after the last", next - now);
            now = next;
            schedule.on_attempt(now);
            schedule.retry_within(now, bound);
        }
        assert!(schedule.attempts() >= 40, "{} attempts in 60 s", schedule.attempts());
        assert!(now - t0 <= RESUME_WINDOW);
        // Never later than planned: a bound longer than the backoff changes nothing.
        let mut early = ReconnectSchedule::new(t0, 7);
        early.on_attempt(t0);
        let planned = early.next_attempt().unwrap();
        early.retry_within(t0, Duration::from_secs(30));
        assert_eq!(early.next_attempt(), Some(planned));
    }

    #[test]
    fn attempts_come_at_once_then_about_1_2_4_4_seconds_apart_within_the_window() {
        let t0 = Instant::now();
        let mut schedule = ReconnectSchedule::new(t0, 42);
        let mut at = Vec::new();
        while let Some(next) = schedule.next_attempt() {
            at.push(next);
            schedule.on_attempt(next);
        }
        assert_eq!(at[0], t0, "the first attempt is immediate");
        let gaps: Vec<f64> = at.windows(2).map(|w| (w[1] - w[0]).as_secs_f64()).collect();
        for (gap, nominal) in gaps.iter().zip([1.0, 2.0, 4.0, 4.0, 4.0]) {
            assert!((nominal * 0.75..=nominal * 1.25).contains(gap), "gap {gap} s for nominal {nominal} s");
        }
        assert!(gaps[3..].iter().all(|g| (3.0..=5.0).contains(g)), "4 s apart from then on: {gaps:?}");
        let last = *at.last().unwrap();
        assert!(last - t0 <= RESUME_WINDOW && last - t0 > RESUME_WINDOW - Duration::from_secs(5), "{:?}", last - t0);
        assert_eq!(schedule.attempts() as usize, at.len());
        assert!((14..=20).contains(&at.len()), "{} attempts in 60 s", at.len());
    }

    #[test]
    fn clients_that_dropped_together_spread_out() {
        let t0 = Instant::now();
        let second_attempt = |seed| {
            let mut s = ReconnectSchedule::new(t0, seed);
            s.on_attempt(t0);
            s.next_attempt().unwrap()
        };
        let distinct: std::collections::BTreeSet<_> = (0..20).map(second_attempt).collect();
        assert!(distinct.len() >= 18, "jitter spreads 20 clients: {} distinct times", distinct.len());
    }

    #[test]
    fn a_refusal_ends_the_schedule_and_the_window_bounds_it() {
        let t0 = Instant::now();
        let mut s = ReconnectSchedule::with_window(t0, 7, Duration::from_millis(500));
        s.on_attempt(t0);
        assert_eq!(s.next_attempt(), None, "a second attempt would fall after a 0.5 s window");
        let mut s = ReconnectSchedule::new(t0, 7);
        s.on_attempt(t0);
        s.give_up();
        assert_eq!(s.next_attempt(), None);
        assert_eq!(s.elapsed(t0 + Duration::from_secs(3)), Duration::from_secs(3));
    }

    fn chat(id: u64, client_msg_id: Option<u64>) -> ChatMessage {
        ChatMessage {
            id,
            sender_id: 1,
            sender_name: "Ada".into(),
            text: format!("message {id}"),
            timestamp_ms: 0,
            client_msg_id,
            file: None,
        }
    }

    #[test]
    fn a_replay_overlapping_what_arrived_shows_each_message_once() {
        let mut ledger = ChatLedger::new();
        assert!(ledger.on_message(&chat(1, None), false));
        assert!(ledger.on_message(&chat(2, None), false));
        assert_eq!(ledger.last_seen(), 2, "RESUME asks for what came after 2");
        // The relay replays from 2 on (say the client's last_chat_id was stale): 2 is dropped.
        let shown: Vec<u64> = [2, 3, 4].into_iter().filter(|id| ledger.on_message(&chat(*id, None), false)).collect();
        assert_eq!(shown, vec![3, 4]);
        assert_eq!(ledger.last_seen(), 4);
    }

    #[test]
    fn only_messages_that_never_came_back_are_sent_again_with_their_ids() {
        let mut ledger = ChatLedger::new();
        ledger.on_send(1, "reached the relay".into());
        ledger.on_send(2, "lost with the connection".into());
        ledger.on_send(3, "typed while reconnecting".into());
        // The resume's replay carries 1, stamped: it is acknowledged, not sent twice.
        assert!(ledger.on_message(&chat(10, Some(1)), true));
        // Someone else's message with the same client_msg_id acknowledges nothing of ours.
        assert!(ledger.on_message(&chat(11, Some(2)), false));
        let again: Vec<(u64, &str)> = ledger.unacknowledged().collect();
        assert_eq!(again, vec![(2, "lost with the connection"), (3, "typed while reconnecting")]);
        // A live echo after the resend clears it; a duplicate stamped copy is not shown again.
        assert!(ledger.on_message(&chat(12, Some(2)), true));
        assert!(!ledger.on_message(&chat(12, Some(2)), true));
        assert_eq!(ledger.unacknowledged().count(), 1);
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("ab12", "ab12"));
        assert!(!secrets_match("ab13", "ab12"));
        assert!(!secrets_match("ab1", "ab12"));
        assert!(!secrets_match("", "ab12"));
    }

    #[test]
    fn unacknowledged_messages_are_bounded() {
        let mut ledger = ChatLedger::new();
        let dropped: Vec<u64> =
            (1..=MAX_UNACKNOWLEDGED_CHATS as u64 + 2).filter_map(|id| ledger.on_send(id, "x".into())).collect();
        assert_eq!(dropped, vec![1, 2], "the oldest go first");
        assert_eq!(ledger.unacknowledged().count(), MAX_UNACKNOWLEDGED_CHATS);
    }
}
