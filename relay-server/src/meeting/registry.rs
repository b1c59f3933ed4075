//! The relay-wide registry: meeting codes, participant and request ids, secrets, the session
//! table of file connections, the spool budget and the per-address limits. Meetings themselves
//! live in [`super::core`]; this is what is shared between them.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use protocol::control::{ErrorCode, MeetingWelcome, ParticipantId};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use tokio_util::sync::CancellationToken;
use tracing::info;

use serde::{Deserialize, Serialize};

use super::core::{validate_display_name, Credentials, MeetingCore, MeetingLimits};
use super::record::MeetingRecord;
use super::{lock, now, ConnHandle, Meeting, OpError};
use crate::config::RelayConfig;
use crate::directory::Directory;
use crate::limits::{AddressKey, AddressLimiter, AddressRate, ConnectionCounts};
use crate::routes::RouteQueue;
use crate::stats::Stats;

/// Attempts at drawing a free meeting code before the relay reports itself busy. With at most
/// `max_meetings` of the 1,000,000 codes in use, running out of attempts means the registry is
/// nearly full.
const CODE_ATTEMPTS: usize = 64;

/// Offers of files lost in a failover that a resuming participant is told about, at most.
const LOST_FILES_KEPT: usize = 1000;

/// The relay-wide counters of ids, kept across a restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IdCounters {
    pub next_meeting_id: u64,
    pub next_file_id: u64,
    pub next_request_id: u64,
    pub next_participant_id: ParticipantId,
}

/// Hands out participant ids: never 0 (the relay's own sender id on the media path) and never
/// one still in use, however long the relay runs (the counter wraps around live ids).
#[derive(Debug)]
struct ParticipantIds {
    next: ParticipantId,
    live: HashSet<ParticipantId>,
}

impl ParticipantIds {
    fn starting_at(next: ParticipantId) -> Self {
        Self { next, live: HashSet::new() }
    }

    /// A free id, now marked live. `None` only if every id is live, which the relay's
    /// participant limits make impossible.
    fn draw(&mut self) -> Option<ParticipantId> {
        for _ in 0..=self.live.len() + 1 {
            let id = self.next;
            self.next = self.next.wrapping_add(1);
            if id != 0 && self.live.insert(id) {
                return Some(id);
            }
        }
        None
    }

    fn release(&mut self, id: ParticipantId) {
        self.live.remove(&id);
    }

    /// Marks `id`, a seat restored after a restart, live.
    fn restore(&mut self, id: ParticipantId) {
        self.live.insert(id);
    }
}

/// State shared by every task of one relay.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: RelayConfig,
    /// Directory holding one spool sub-directory per meeting.
    pub spool_root: PathBuf,
    pub udp_port: u16,
    pub stats: Arc<Stats>,
    pub routes: Arc<RouteQueue>,
    /// Cancelled when the relay stops.
    pub shutdown: CancellationToken,
    /// The cluster directory, when the relay is one of several ([`crate::directory`]).
    pub directory: Option<Arc<Directory>>,
    registry: Mutex<HashMap<String, Arc<Meeting>>>,
    sessions: Mutex<HashMap<String, (Arc<Meeting>, ParticipantId)>>,
    participant_ids: Mutex<ParticipantIds>,
    addresses: Mutex<AddressLimiter>,
    connections: Mutex<ConnectionCounts>,
    next_request_id: AtomicU64,
    next_meeting_id: AtomicU64,
    next_file_id: AtomicU64,
    next_conn_id: AtomicU64,
}

impl Shared {
    pub fn new(
        config: RelayConfig,
        spool_root: PathBuf,
        udp_port: u16,
        stats: Arc<Stats>,
        routes: Arc<RouteQueue>,
        shutdown: CancellationToken,
        directory: Option<Arc<Directory>>,
    ) -> Self {
        let addresses = AddressLimiter::new(config.address_rates, config.address_table_len);
        let first_participant_id = if directory.is_some() { OsRng.gen_range(1..=u32::MAX) } else { 1 };
        Self {
            addresses: Mutex::new(addresses),
            connections: Mutex::new(ConnectionCounts::default()),
            config,
            spool_root,
            udp_port,
            stats,
            routes,
            shutdown,
            directory,
            registry: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            // In a cluster a meeting may move here with its ids: relays count from far apart.
            participant_ids: Mutex::new(ParticipantIds::starting_at(first_participant_id)),
            next_request_id: AtomicU64::new(1),
            next_meeting_id: AtomicU64::new(1),
            next_file_id: AtomicU64::new(1),
            next_conn_id: AtomicU64::new(1),
        }
    }

    /// Whether meetings outlive a restart: the relay has a data directory to keep them in
    /// and a grace window to hold their seats for.
    pub fn keeps_meetings(&self) -> bool {
        self.config.keep_meetings_across_restarts
            && self.config.data_dir.is_some()
            && !self.config.resume_grace.is_zero()
    }

    /// The counters a restart must go on from, so no id is handed out twice.
    pub fn counters(&self) -> IdCounters {
        IdCounters {
            next_meeting_id: self.next_meeting_id.load(Relaxed),
            next_file_id: self.next_file_id.load(Relaxed),
            next_request_id: self.next_request_id.load(Relaxed),
            next_participant_id: lock(&self.participant_ids).next,
        }
    }

    /// Goes on from `counters` (of a previous run), never back.
    pub fn restore_counters(&self, counters: &IdCounters) {
        self.next_meeting_id.fetch_max(counters.next_meeting_id, Relaxed);
        self.next_file_id.fetch_max(counters.next_file_id, Relaxed);
        self.next_request_id.fetch_max(counters.next_request_id, Relaxed);
        let mut ids = lock(&self.participant_ids);
        ids.next = ids.next.max(counters.next_participant_id);
    }

    /// Every live meeting.
    pub fn meetings(&self) -> Vec<Arc<Meeting>> {
        lock(&self.registry).values().cloned().collect()
    }

    /// Brings back the meeting of `record` after a restart, its seats held until `until`.
    /// `None` (and the caller deletes its spool) if the record is unusable, its code is taken
    /// or the relay is full.
    pub fn restore_meeting(&self, record: MeetingRecord, until: Instant, why: &str) -> Option<Arc<Meeting>> {
        let meeting_id = record.meeting_id;
        let counters = IdCounters {
            next_meeting_id: meeting_id.saturating_add(1),
            next_file_id: record
                .files
                .iter()
                .map(|f| f.file_id)
                .chain(record.uploads.iter().map(|u| u.file_id))
                .max()
                .map_or(0, |id| id.saturating_add(1)),
            next_request_id: 0,
            next_participant_id: 0,
        };
        let spool_dir = self.spool_root.join(format!("meeting-{meeting_id}"));
        let limits = MeetingLimits::from(&self.config);
        let meeting = {
            let mut registry = lock(&self.registry);
            if registry.len() >= self.config.max_meetings || registry.contains_key(&record.code) {
                return None;
            }
            let core = MeetingCore::restore(record, limits, now(), until, &spool_dir)?;
            let meeting = Arc::new(Meeting::new(meeting_id, &self.spool_root, core, self.config.resume_grace));
            registry.insert(meeting.code.clone(), meeting.clone());
            meeting
        };
        self.restore_counters(&counters);
        let files_bytes = meeting.files_bytes();
        self.stats.spool_bytes.fetch_add(files_bytes, Relaxed);
        Stats::inc(&self.stats.meetings_live);
        meeting.run(self, |_, _| ());
        info!(meeting = %meeting.code, meeting_id, "meeting restored: {why}");
        Some(meeting)
    }

    /// Brings a meeting of a relay that died here (a cluster's failover), its seats held for
    /// the grace window. It gets an id of this relay; its files stayed on the dead relay, so
    /// their offers are marked lost (in the chat too) and uploads in progress are dropped.
    /// `None` if it cannot be hosted here (full, its code in use, a seat's id taken).
    pub fn take_over_meeting(&self, mut record: MeetingRecord) -> Option<Arc<Meeting>> {
        {
            let ids = lock(&self.participant_ids);
            if record.members.iter().any(|m| ids.live.contains(&m.participant.id)) {
                tracing::warn!(meeting = %record.code, "a seat of the meeting to take over has an id in use here");
                return None;
            }
        }
        record.meeting_id = self.next_meeting_id.fetch_add(1, Relaxed);
        for file in &mut record.files {
            file.lost = true;
        }
        for message in &mut record.chat {
            if let Some(file) = &mut message.file {
                file.lost = true;
            }
        }
        let mut lost_files = std::mem::take(&mut record.files);
        lost_files.truncate(LOST_FILES_KEPT);
        record.uploads.clear();
        let until = Instant::now() + self.config.resume_grace;
        let meeting = self.restore_meeting(record, until, "taken over from a relay that is gone")?;
        *lock(&meeting.lost_files) = lost_files;
        Some(meeting)
    }

    pub fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Relaxed)
    }

    pub fn next_file_id(&self) -> u64 {
        self.next_file_id.fetch_add(1, Relaxed)
    }

    pub fn next_request_id(&self) -> u64 {
        self.next_request_id.fetch_add(1, Relaxed)
    }

    /// A fresh participant id with fresh secrets. The id stays taken until
    /// [`Self::release_participant_id`].
    pub fn credentials(&self) -> Credentials {
        let mut secret = [0u8; 16];
        OsRng.fill_bytes(&mut secret);
        let mut resume_secret = [0u8; 32];
        OsRng.fill_bytes(&mut resume_secret);
        // Participants are bounded by max_meetings × max_participants, far below 2^32.
        let participant_id = lock(&self.participant_ids).draw().expect("fewer live participants than ids");
        Credentials { participant_id, session_token: hex::encode(secret), resume_secret: hex::encode(resume_secret) }
    }

    pub(super) fn release_participant_id(&self, id: ParticipantId) {
        lock(&self.participant_ids).release(id);
    }

    pub(super) fn restore_participant_id(&self, id: ParticipantId) {
        lock(&self.participant_ids).restore(id);
    }

    /// Whether `from` may make a `rate` request now (without spending it); `Err` is the wait.
    pub fn address_check(&self, from: AddressKey, rate: AddressRate) -> Result<(), Duration> {
        lock(&self.addresses).check(now().at, from, rate)
    }

    /// Spends one `rate` request of `from`; `Err` is the wait if it has none left.
    pub fn address_take(&self, from: AddressKey, rate: AddressRate) -> Result<(), Duration> {
        lock(&self.addresses).take(now().at, from, rate)
    }

    /// Counts a new connection from `from`, if it is under its limit of open connections.
    pub fn open_connection(&self, from: AddressKey) -> bool {
        lock(&self.connections).try_open(from, self.config.max_connections_per_address)
    }

    /// A connection counted by [`Self::open_connection`] closed.
    pub fn close_connection(&self, from: AddressKey) {
        lock(&self.connections).close(from);
    }

    /// The live meeting with this code.
    pub fn find_meeting(&self, code: &str) -> Option<Arc<Meeting>> {
        lock(&self.registry).get(code).cloned()
    }

    /// Codes of the live meetings (for embedding apps and tests).
    pub fn live_codes(&self) -> Vec<String> {
        lock(&self.registry).keys().cloned().collect()
    }

    /// Frees the code of `meeting`, which ended.
    pub(super) fn unregister(&self, meeting: &Meeting) {
        let mut registry = lock(&self.registry);
        if registry.get(&meeting.code).is_some_and(|m| m.id == meeting.id) {
            registry.remove(&meeting.code);
            if let Some(directory) = &self.directory {
                directory.release_later(&meeting.code);
            }
        }
    }

    /// Hands meeting `code` over to the relay the directory says hosts it now (two relays
    /// hosted it: one restored it, or took it over, while this one was cut off from the
    /// directory): takes it out of the registry, so a `RESUME` here is redirected there, and
    /// closes its connections, so everyone resumes. Its seats here lapse unannounced.
    pub fn hand_over(&self, code: &str) {
        let Some(meeting) = lock(&self.registry).remove(code) else { return };
        tracing::warn!(meeting = %code, "another relay of the cluster hosts this meeting now: sending everyone there");
        meeting.disconnect_everyone();
    }

    /// The meeting and participant a file connection's session token belongs to.
    pub fn session(&self, token: &str) -> Option<(Arc<Meeting>, ParticipantId)> {
        lock(&self.sessions).get(token).cloned()
    }

    pub(super) fn add_session(&self, token: String, meeting: Arc<Meeting>, participant_id: ParticipantId) {
        lock(&self.sessions).insert(token, (meeting, participant_id));
    }

    pub(super) fn remove_session(&self, token: &str) {
        lock(&self.sessions).remove(token);
    }

    /// Reserves `bytes` of the relay-wide spool budget.
    pub fn reserve_spool(&self, bytes: u64) -> bool {
        let limit = self.config.max_spool_bytes;
        self.stats
            .spool_bytes
            .fetch_update(Relaxed, Relaxed, |used| used.checked_add(bytes).filter(|total| *total <= limit))
            .is_ok()
    }

    /// Whether `bytes` more would fit the spool now (nothing is reserved: uploads are charged
    /// chunk by chunk, so this only refuses at once a file that cannot fit).
    pub fn spool_has_room(&self, bytes: u64) -> bool {
        self.stats.spool_bytes.load(Relaxed).saturating_add(bytes) <= self.config.max_spool_bytes
    }

    /// Gives back spool budget reserved with [`Self::reserve_spool`].
    pub fn release_spool(&self, bytes: u64) {
        let _ = self.stats.spool_bytes.fetch_update(Relaxed, Relaxed, |used| Some(used.saturating_sub(bytes)));
    }

    /// Starts a meeting with `display_name` as its host, under `claimed_code` (claimed across
    /// the cluster) or a fresh code drawn here.
    pub fn create_meeting(
        &self,
        display_name: &str,
        media_public_key: String,
        conn: ConnHandle,
        claimed_code: Option<String>,
    ) -> Result<(Arc<Meeting>, MeetingWelcome), OpError> {
        let display_name = validate_display_name(display_name)?;
        let (meeting, welcome) = {
            let mut registry = lock(&self.registry);
            if registry.len() >= self.config.max_meetings {
                return Err(OpError::new(ErrorCode::ServerBusy, "the relay hosts its maximum number of meetings"));
            }
            let code = match claimed_code {
                // Claimed with `SET … NX` after checking this registry; a meeting of this relay
                // whose claim lapsed while Redis was away could only just have taken it.
                Some(code) if registry.contains_key(&code) => {
                    return Err(OpError::new(ErrorCode::ServerBusy, "the new meeting code is in use: try again"))
                }
                Some(code) => code,
                None => (0..CODE_ATTEMPTS)
                    .map(|_| format!("{:06}", OsRng.gen_range(0..1_000_000u32)))
                    .find(|code| !registry.contains_key(code))
                    .ok_or_else(|| OpError::new(ErrorCode::ServerBusy, "no free meeting code"))?,
            };
            let meeting_id = self.next_meeting_id.fetch_add(1, Relaxed);
            let (core, welcome) = MeetingCore::new(
                code.clone(),
                MeetingLimits::from(&self.config),
                now(),
                self.credentials(),
                display_name,
                media_public_key,
                conn,
            );
            // The host is in the roster before the meeting becomes findable, so a knock that
            // arrives right away already reaches it.
            let meeting = Arc::new(Meeting::new(meeting_id, &self.spool_root, core, self.config.resume_grace));
            registry.insert(code, meeting.clone());
            (meeting, welcome)
        };
        Stats::inc(&self.stats.meetings_created);
        Stats::inc(&self.stats.meetings_live);
        info!(meeting = %meeting.code, meeting_id = meeting.id, host = welcome.participant_id, "meeting created");
        // The host's session and route, queued by the core, go in before it hears its id.
        meeting.run(self, |_, _| ());
        Ok((meeting, welcome))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn participant_ids_skip_zero_and_live_ids_when_they_wrap() {
        let mut ids = ParticipantIds::starting_at(u32::MAX - 1);
        assert_eq!(ids.draw(), Some(u32::MAX - 1));
        assert_eq!(ids.draw(), Some(u32::MAX));
        assert_eq!(ids.draw(), Some(1), "0 is the relay's own id");
        assert_eq!(ids.draw(), Some(2));
        ids.release(u32::MAX);
        ids.release(1);
        // Around again: u32::MAX - 1 and 2 are still live, u32::MAX and 1 are free.
        ids.next = u32::MAX - 1;
        assert_eq!(ids.draw(), Some(u32::MAX));
        assert_eq!(ids.draw(), Some(1));
        assert_eq!(ids.draw(), Some(3));
    }

    #[test]
    fn participant_ids_are_not_handed_out_twice() {
        let mut ids = ParticipantIds::starting_at(1);
        let drawn: HashSet<_> = (0..1000).map(|_| ids.draw().unwrap()).collect();
        assert_eq!(drawn.len(), 1000);
    }
}
