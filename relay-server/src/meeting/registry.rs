//! The relay-wide registry: meeting codes, participant and request ids, secrets, the session
//! table of file connections and the spool budget. Meetings themselves live in
//! [`super::core`]; this is what is shared between them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use protocol::control::{ErrorCode, MeetingWelcome, ParticipantId};
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::core::{validate_display_name, Credentials, MeetingCore, MeetingLimits};
use super::{lock, now, ConnHandle, Meeting, OpError};
use crate::config::RelayConfig;
use crate::routes::RouteQueue;
use crate::stats::Stats;

/// Attempts at drawing a free meeting code before the relay reports itself busy. With at most
/// `max_meetings` of the 1,000,000 codes in use, running out of attempts means the registry is
/// nearly full.
const CODE_ATTEMPTS: usize = 64;

/// State shared by every task of one relay.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: RelayConfig,
    /// Directory holding one spool sub-directory per meeting.
    pub spool_root: PathBuf,
    pub udp_port: u16,
    pub stats: Arc<Stats>,
    pub routes: Arc<RouteQueue>,
    registry: Mutex<HashMap<String, Arc<Meeting>>>,
    sessions: Mutex<HashMap<String, (Arc<Meeting>, ParticipantId)>>,
    next_participant_id: AtomicU32,
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
    ) -> Self {
        Self {
            config,
            spool_root,
            udp_port,
            stats,
            routes,
            registry: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            // 0 is the relay's own sender id on the media path.
            next_participant_id: AtomicU32::new(1),
            next_request_id: AtomicU64::new(1),
            next_meeting_id: AtomicU64::new(1),
            next_file_id: AtomicU64::new(1),
            next_conn_id: AtomicU64::new(1),
        }
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

    /// A fresh participant id with fresh secrets.
    pub fn credentials(&self) -> Credentials {
        let mut secret = [0u8; 16];
        OsRng.fill_bytes(&mut secret);
        Credentials {
            participant_id: self.next_participant_id.fetch_add(1, Relaxed),
            media_token: OsRng.next_u64(),
            session_token: hex::encode(secret),
        }
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
        }
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

    /// Gives back spool budget reserved with [`Self::reserve_spool`].
    pub fn release_spool(&self, bytes: u64) {
        let _ = self.stats.spool_bytes.fetch_update(Relaxed, Relaxed, |used| Some(used.saturating_sub(bytes)));
    }

    /// Starts a meeting with `display_name` as its host.
    pub fn create_meeting(
        &self,
        display_name: &str,
        conn: ConnHandle,
    ) -> Result<(Arc<Meeting>, MeetingWelcome), OpError> {
        let display_name = validate_display_name(display_name)?;
        let (meeting, welcome) = {
            let mut registry = lock(&self.registry);
            if registry.len() >= self.config.max_meetings {
                return Err(OpError::new(ErrorCode::ServerBusy, "the relay hosts its maximum number of meetings"));
            }
            let code = (0..CODE_ATTEMPTS)
                .map(|_| format!("{:06}", OsRng.gen_range(0..1_000_000u32)))
                .find(|code| !registry.contains_key(code))
                .ok_or_else(|| OpError::new(ErrorCode::ServerBusy, "no free meeting code"))?;
            let meeting_id = self.next_meeting_id.fetch_add(1, Relaxed);
            let (core, welcome) = MeetingCore::new(
                code.clone(),
                MeetingLimits::from(&self.config),
                now(),
                self.credentials(),
                display_name,
                conn,
            );
            // The host is in the roster before the meeting becomes findable, so a knock that
            // arrives right away already reaches it.
            let meeting = Arc::new(Meeting {
                id: meeting_id,
                spool_dir: self.spool_root.join(format!("meeting-{meeting_id}")),
                code: code.clone(),
                ended: CancellationToken::new(),
                core: Mutex::new(core),
            });
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
