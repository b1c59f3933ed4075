//! Which uploads of a meeting are running, which are held after their connection broke, and
//! until when: the sans-IO bookkeeping behind resumable uploads (protocol §7.2).
//!
//! An upload is *running* while a file connection carries it; the book keeps a handle to that
//! connection (`L`, a cancellation token in the relay) so that a resume which arrives before
//! the relay noticed the old connection die can take the upload over. When the connection
//! breaks, the upload's state (`S`: bytes held, running hash, quota charged) is *held* until
//! `now + hold`; a `FILE_UPLOAD_RESUME` from the same participant claims it back, and
//! [`UploadBook::expire`] hands out the ones nobody claimed in time, for the caller to delete
//! and refund. Time is passed in; nothing here reads a clock or does I/O.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use protocol::control::ParticipantId;

/// What [`UploadBook::claim`] found for a resume.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Claim<L, S> {
    /// The held upload, now the resumer's to run.
    Held(S),
    /// Still running on a connection the relay has not seen break: stop it with this handle;
    /// it is held as soon as its task lets go, and claimed then.
    Running(L),
    /// No upload of this participant with this id can be resumed.
    Unknown,
}

#[derive(Debug)]
enum Entry<L, S> {
    Running { uploader: ParticipantId, conn: L },
    Held { uploader: ParticipantId, until: Instant, state: S },
}

/// The resumable uploads of one meeting. See the module doc.
#[derive(Debug)]
pub(crate) struct UploadBook<L, S> {
    hold: Duration,
    entries: HashMap<u64, Entry<L, S>>,
}

impl<L: Clone, S> UploadBook<L, S> {
    /// A book whose interrupted uploads are held for `hold`.
    pub fn new(hold: Duration) -> Self {
        Self { hold, entries: HashMap::new() }
    }

    /// Upload `file_id` of `uploader` runs on the connection `conn` (a new one, or a resumed one).
    pub fn running(&mut self, file_id: u64, uploader: ParticipantId, conn: L) {
        self.entries.insert(file_id, Entry::Running { uploader, conn });
    }

    /// Upload `file_id` ended for good (completed or failed): nothing of it can be resumed.
    pub fn finished(&mut self, file_id: u64) {
        self.entries.remove(&file_id);
    }

    /// Upload `file_id` lost its connection at `now`: holds `state` and returns until when, or
    /// gives `state` back, and forgets the upload, if uploads are not held (no hold time) or
    /// the upload is not running.
    pub fn hold(&mut self, now: Instant, file_id: u64, state: S) -> Result<Instant, S> {
        let uploader = match self.entries.get(&file_id) {
            Some(Entry::Running { uploader, .. }) if !self.hold.is_zero() => *uploader,
            Some(Entry::Running { .. }) => {
                self.entries.remove(&file_id);
                return Err(state);
            }
            _ => return Err(state),
        };
        let until = now + self.hold;
        self.entries.insert(file_id, Entry::Held { uploader, until, state });
        Ok(until)
    }

    /// Upload `file_id` of `uploader`, interrupted by a relay restart, is held until `until`.
    pub fn restore(&mut self, file_id: u64, uploader: ParticipantId, until: Instant, state: S) {
        self.entries.insert(file_id, Entry::Held { uploader, until, state });
    }

    /// `uploader` wants to resume `file_id` on the connection `conn`. A held upload is handed
    /// over and from then on runs on `conn`.
    pub fn claim(&mut self, file_id: u64, uploader: ParticipantId, conn: L) -> Claim<L, S> {
        match self.entries.get(&file_id) {
            Some(Entry::Running { uploader: owner, conn }) if *owner == uploader => Claim::Running(conn.clone()),
            Some(Entry::Held { uploader: owner, .. }) if *owner == uploader => {
                match self.entries.insert(file_id, Entry::Running { uploader, conn }) {
                    Some(Entry::Held { state, .. }) => Claim::Held(state),
                    _ => Claim::Unknown,
                }
            }
            _ => Claim::Unknown,
        }
    }

    /// Until when `file_id` is held, if it is.
    pub fn held_until(&self, file_id: u64) -> Option<Instant> {
        match self.entries.get(&file_id) {
            Some(Entry::Held { until, .. }) => Some(*until),
            _ => None,
        }
    }

    /// Removes and returns every held upload (the meeting ended, or the relay stops).
    pub fn drain_held(&mut self) -> Vec<S> {
        self.expire_where(|_| true)
    }

    /// Removes and returns the held uploads whose time is up at `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<S> {
        self.expire_where(|until| until <= now)
    }

    fn expire_where(&mut self, due: impl Fn(Instant) -> bool) -> Vec<S> {
        let due: Vec<u64> = self
            .entries
            .iter()
            .filter_map(|(id, e)| matches!(e, Entry::Held { until, .. } if due(*until)).then_some(*id))
            .collect();
        due.into_iter()
            .filter_map(|id| match self.entries.remove(&id) {
                Some(Entry::Held { state, .. }) => Some(state),
                _ => None,
            })
            .collect()
    }

    /// Number of uploads held now.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.entries.values().filter(|e| matches!(e, Entry::Held { .. })).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOLD: Duration = Duration::from_secs(30);

    fn book() -> UploadBook<&'static str, &'static str> {
        UploadBook::new(HOLD)
    }

    #[test]
    fn a_broken_upload_is_held_for_its_uploader_until_the_window_ends() {
        let t0 = Instant::now();
        let mut book = book();
        book.running(7, 1, "conn-a");
        assert_eq!(book.hold(t0, 7, "half"), Ok(t0 + HOLD));
        assert_eq!(book.held_until(7), Some(t0 + HOLD));
        assert_eq!(book.claim(7, 2, "conn-x"), Claim::Unknown, "someone else's upload is not theirs to resume");
        assert!(book.expire(t0 + HOLD - Duration::from_millis(1)).is_empty());
        assert_eq!(book.claim(7, 1, "conn-b"), Claim::Held("half"));
        assert_eq!(book.held_until(7), None);
        assert_eq!(
            book.claim(7, 1, "conn-c"),
            Claim::Running("conn-b"),
            "claimed once: it runs on the resumer's connection"
        );
        assert_eq!(book.hold(t0 + Duration::from_secs(10), 7, "more"), Ok(t0 + Duration::from_secs(40)));
    }

    #[test]
    fn an_unclaimed_upload_expires_once() {
        let t0 = Instant::now();
        let mut book = book();
        book.running(7, 1, "a");
        book.running(8, 1, "b");
        book.hold(t0, 7, "seven").unwrap();
        book.hold(t0 + Duration::from_secs(5), 8, "eight").unwrap();
        assert_eq!(book.expire(t0 + HOLD), vec!["seven"]);
        assert_eq!(book.expire(t0 + HOLD), Vec::<&str>::new());
        assert_eq!(book.claim(7, 1, "c"), Claim::Unknown, "too late");
        assert_eq!(book.held(), 1);
        assert_eq!(book.drain_held(), vec!["eight"], "the meeting's end takes what is left at once");
        assert_eq!(book.held(), 0);
    }

    #[test]
    fn a_resume_of_a_running_upload_gets_its_connection_to_stop() {
        let t0 = Instant::now();
        let mut book = book();
        book.running(7, 1, "old conn");
        assert_eq!(book.claim(7, 1, "new conn"), Claim::Running("old conn"));
        // The old connection's task lets go; the resume finds it held.
        book.hold(t0, 7, "state").unwrap();
        assert_eq!(book.claim(7, 1, "new conn"), Claim::Held("state"));
    }

    #[test]
    fn finished_or_unheld_uploads_cannot_be_resumed() {
        let t0 = Instant::now();
        let mut book = book();
        book.running(7, 1, "a");
        book.finished(7);
        assert_eq!(book.claim(7, 1, "b"), Claim::Unknown);
        assert_eq!(book.hold(t0, 7, "late"), Err("late"), "an upload that is not running is not held");
        let mut no_hold = UploadBook::<&str, &str>::new(Duration::ZERO);
        no_hold.running(7, 1, "a");
        assert_eq!(no_hold.hold(t0, 7, "state"), Err("state"), "a relay without a grace window holds nothing");
        assert_eq!(no_hold.claim(7, 1, "b"), Claim::Unknown, "and forgets the upload");
    }
}
