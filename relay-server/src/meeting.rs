//! Meetings: codes, the waiting room, the roster, host hand-over and chat.
//!
//! Each live meeting sits behind its own async mutex, so meetings never contend with each
//! other; the relay-wide registry (code → meeting) is a short `std` mutex that is never held
//! across an `.await`. Lock order is meeting → registry/sessions, never the reverse, and no
//! code path holds two meetings' locks.
//!
//! Messages reach a connection through its bounded outbound queue ([`ConnHandle`]). A send is
//! a `try_send` made under the meeting lock, so everyone sees the same order (of chat
//! messages, joins, leaves); a connection whose queue is full is too slow to keep up and is
//! disconnected (its own task then removes it from the meeting), so one stuck client never
//! stalls a meeting nor grows a queue without bound.
//!
//! The UDP routing table is kept in step through [`RouteUpdate`]s sent under the same lock,
//! which keeps adds and removes for a participant in order.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use protocol::control::{
    sanitize_display_text, ChatMessage, ErrorCode, FileInfo, JoinRefusal, KnockWithdrawal, LeaveReason, MeetingWelcome,
    Participant, ParticipantId, MAX_DISPLAY_NAME_CHARS,
};
use protocol::ControlMessage;
use rand::rngs::OsRng;
use rand::{Rng, RngCore};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::RelayConfig;
use crate::stats::Stats;
use crate::udp::RouteUpdate;

/// Attempts at drawing a free meeting code before the relay reports itself busy. With at most
/// `max_meetings` of the 1,000,000 codes in use, running out of attempts means the registry is
/// nearly full.
const CODE_ATTEMPTS: usize = 64;

/// Locks a `std` mutex, ignoring poisoning: no code path panics while holding one, and the
/// maps they guard stay consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Milliseconds since the Unix epoch, for the timestamps clients display.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// A request that failed; the connection answers it with an `ERROR` and carries on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpError {
    pub code: ErrorCode,
    pub message: String,
}

impl OpError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn to_message(&self) -> ControlMessage {
        ControlMessage::error(self.code, self.message.clone())
    }
}

/// What a meeting (or another connection) asks a control connection's task to do.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// Write this message.
    Message(Arc<ControlMessage>),
    /// The knock `request_id` was admitted: the connection is now participant `participant_id`.
    Admitted { meeting: Arc<Meeting>, request_id: u64, participant_id: ParticipantId, welcome: Box<MeetingWelcome> },
    /// The knock `request_id` will not lead into the meeting.
    Refused { request_id: u64, reason: JoinRefusal },
    /// The host removed this participant; write `REMOVED` and close.
    Removed,
}

/// How a meeting reaches one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub id: u64,
    pub tx: mpsc::Sender<Outbound>,
    /// Cancelled to disconnect the connection (its queue overflowed).
    pub kill: CancellationToken,
}

impl ConnHandle {
    /// Queues `out` without waiting. A full queue disconnects the connection; returns false if
    /// the message will not be delivered.
    fn deliver(&self, stats: &Stats, out: Outbound) -> bool {
        match self.tx.try_send(out) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.kill.is_cancelled() {
                    warn!(conn = self.id, "outbound queue full: disconnecting slow connection");
                    Stats::inc(&stats.slow_consumers);
                    self.kill.cancel();
                }
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
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
    pub routes: mpsc::Sender<RouteUpdate>,
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
        routes: mpsc::Sender<RouteUpdate>,
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

    /// The live meeting with this code.
    pub fn find_meeting(&self, code: &str) -> Option<Arc<Meeting>> {
        lock(&self.registry).get(code).cloned()
    }

    /// Codes of the live meetings (for embedding apps and tests).
    pub fn live_codes(&self) -> Vec<String> {
        lock(&self.registry).keys().cloned().collect()
    }

    /// The meeting and participant a file connection's session token belongs to.
    pub fn session(&self, token: &str) -> Option<(Arc<Meeting>, ParticipantId)> {
        lock(&self.sessions).get(token).cloned()
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
    pub async fn create_meeting(
        &self,
        display_name: &str,
        conn: ConnHandle,
    ) -> Result<(Arc<Meeting>, MeetingWelcome), OpError> {
        let display_name = validate_display_name(display_name)?;
        let (participant_id, member) = self.new_member(display_name, true, conn);
        let meeting_id = self.next_meeting_id.fetch_add(1, Relaxed);
        let media_token = member.media_token;
        let mut state = MeetingState::new(participant_id);
        let session_token = member.session_token.clone();
        let display_name = member.info.display_name.clone();
        // The host is in the roster before the meeting becomes findable, so a knock that
        // arrives right away already reaches it.
        state.members.push(member);
        let meeting = {
            let mut registry = lock(&self.registry);
            if registry.len() >= self.config.max_meetings {
                return Err(OpError::new(ErrorCode::ServerBusy, "the relay hosts its maximum number of meetings"));
            }
            let code = (0..CODE_ATTEMPTS)
                .map(|_| format!("{:06}", OsRng.gen_range(0..1_000_000u32)))
                .find(|code| !registry.contains_key(code))
                .ok_or_else(|| OpError::new(ErrorCode::ServerBusy, "no free meeting code"))?;
            let meeting = Arc::new(Meeting {
                id: meeting_id,
                spool_dir: self.spool_root.join(format!("meeting-{meeting_id}")),
                code: code.clone(),
                ended: CancellationToken::new(),
                state: tokio::sync::Mutex::new(state),
            });
            registry.insert(code, meeting.clone());
            meeting
        };
        Stats::inc(&self.stats.meetings_created);
        Stats::inc(&self.stats.meetings_live);
        info!(meeting = %meeting.code, meeting_id, host = participant_id, "meeting created");
        let st = meeting.state.lock().await;
        meeting.register_member(self, participant_id, &display_name, session_token, media_token).await;
        let welcome = meeting.welcome(&st, participant_id);
        drop(st);
        Ok((meeting, welcome))
    }

    /// A new participant with fresh id and secrets, not yet in any meeting.
    fn new_member(&self, display_name: String, is_host: bool, conn: ConnHandle) -> (ParticipantId, Member) {
        let id = self.next_participant_id.fetch_add(1, Relaxed);
        let mut secret = [0u8; 16];
        OsRng.fill_bytes(&mut secret);
        let member = Member {
            info: Participant {
                id,
                display_name,
                is_host,
                mic_on: false,
                camera_on: false,
                speaking: false,
                joined_at_ms: now_ms(),
            },
            conn,
            media_token: OsRng.next_u64(),
            session_token: hex::encode(secret),
            chat: TokenBucket::new(self.config.chat_burst, self.config.chat_per_second),
        };
        (id, member)
    }
}

/// Checks and cleans a display name.
fn validate_display_name(raw: &str) -> Result<String, OpError> {
    if raw.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(OpError::new(
            ErrorCode::InvalidName,
            format!("display names are at most {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    sanitize_display_text(raw, MAX_DISPLAY_NAME_CHARS)
        .ok_or_else(|| OpError::new(ErrorCode::InvalidName, "the display name is empty"))
}

/// A token bucket limiting one participant's chat rate.
#[derive(Debug)]
struct TokenBucket {
    tokens: f64,
    burst: f64,
    per_second: f64,
    last: Instant,
}

impl TokenBucket {
    fn new(burst: u32, per_second: u32) -> Self {
        let burst = f64::from(burst.max(1));
        Self { tokens: burst, burst, per_second: f64::from(per_second), last: Instant::now() }
    }

    fn take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct Member {
    info: Participant,
    conn: ConnHandle,
    media_token: u64,
    session_token: String,
    chat: TokenBucket,
}

#[derive(Debug)]
struct Knock {
    request_id: u64,
    display_name: String,
    conn: ConnHandle,
}

/// A file spooled for a meeting.
#[derive(Debug, Clone)]
pub(crate) struct SpooledFile {
    pub info: FileInfo,
    pub path: PathBuf,
}

/// Result of a join request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnockOutcome {
    /// The host was asked; the joiner waits for this request id.
    Waiting(u64),
    /// The meeting is at its participant limit.
    Full,
}

#[derive(Debug)]
struct MeetingState {
    ended: bool,
    host_id: ParticipantId,
    /// In join order: the earliest-joined remaining participant inherits the host role.
    members: Vec<Member>,
    knocks: VecDeque<Knock>,
    chat: VecDeque<ChatMessage>,
    next_chat_id: u64,
    files: HashMap<u64, SpooledFile>,
    /// Bytes of `files`, given back to the relay's spool budget when the meeting ends.
    files_bytes: u64,
    uploads: HashMap<ParticipantId, usize>,
    downloads: HashMap<ParticipantId, usize>,
}

impl MeetingState {
    fn new(host_id: ParticipantId) -> Self {
        Self {
            ended: false,
            host_id,
            members: Vec::new(),
            knocks: VecDeque::new(),
            chat: VecDeque::new(),
            next_chat_id: 1,
            files: HashMap::new(),
            files_bytes: 0,
            uploads: HashMap::new(),
            downloads: HashMap::new(),
        }
    }

    fn member(&self, id: ParticipantId) -> Option<&Member> {
        self.members.iter().find(|m| m.info.id == id)
    }

    fn require_member(&self, id: ParticipantId) -> Result<&Member, OpError> {
        self.member(id).ok_or_else(|| OpError::new(ErrorCode::InvalidState, "not in this meeting"))
    }

    fn require_host(&self, id: ParticipantId) -> Result<(), OpError> {
        self.require_member(id)?;
        if self.host_id != id {
            return Err(OpError::new(ErrorCode::NotHost, "only the host may do this"));
        }
        Ok(())
    }

    fn host(&self) -> Option<&Member> {
        self.member(self.host_id)
    }

    /// Sends `msg` to every member but `except`.
    fn broadcast(&self, stats: &Stats, msg: ControlMessage, except: Option<ParticipantId>) {
        let msg = Arc::new(msg);
        for m in self.members.iter().filter(|m| Some(m.info.id) != except) {
            m.conn.deliver(stats, Outbound::Message(msg.clone()));
        }
    }

    fn roster(&self) -> Vec<Participant> {
        self.members.iter().map(|m| m.info.clone()).collect()
    }
}

/// One live meeting.
#[derive(Debug)]
pub(crate) struct Meeting {
    /// Relay-wide unique id (codes are reused after a meeting ends; ids never are).
    pub id: u64,
    pub code: String,
    pub spool_dir: PathBuf,
    /// Cancelled when the meeting ends, so its file transfers stop.
    pub ended: CancellationToken,
    state: tokio::sync::Mutex<MeetingState>,
}

impl Meeting {
    fn welcome(&self, st: &MeetingState, participant_id: ParticipantId) -> MeetingWelcome {
        let me = st.member(participant_id);
        MeetingWelcome {
            code: self.code.clone(),
            participant_id,
            media_token: me.map(|m| m.media_token).unwrap_or_default(),
            session_token: me.map(|m| m.session_token.clone()).unwrap_or_default(),
            host_id: st.host_id,
            roster: st.roster(),
            chat_history: st.chat.iter().cloned().collect(),
        }
    }

    /// Enters a new member in the session table and the UDP routing table. Called with the
    /// meeting locked.
    async fn register_member(
        self: &Arc<Self>,
        shared: &Shared,
        participant_id: ParticipantId,
        display_name: &str,
        session_token: String,
        media_token: u64,
    ) {
        lock(&shared.sessions).insert(session_token, (self.clone(), participant_id));
        // Sent (and awaited) before the participant learns its id, so its first keepalive
        // finds the route in place.
        let _ = shared.routes.send(RouteUpdate::Add { meeting_id: self.id, participant_id, media_token }).await;
        Stats::inc(&shared.stats.participants_joined);
        Stats::inc(&shared.stats.participants_live);
        info!(meeting = %self.code, participant = participant_id, name = %display_name, "participant joined");
    }

    /// Asks the host to admit `display_name`.
    pub async fn knock(&self, shared: &Shared, display_name: &str, conn: ConnHandle) -> Result<KnockOutcome, OpError> {
        let display_name = validate_display_name(display_name)?;
        let mut st = self.state.lock().await;
        if st.ended {
            return Err(OpError::new(ErrorCode::UnknownMeeting, "no meeting has this code"));
        }
        if st.members.len() >= shared.config.max_participants {
            return Ok(KnockOutcome::Full);
        }
        if st.knocks.len() >= shared.config.max_pending_knocks {
            return Err(OpError::new(ErrorCode::ServerBusy, "too many people are waiting to join this meeting"));
        }
        let request_id = shared.next_request_id.fetch_add(1, Relaxed);
        if let Some(host) = st.host() {
            host.conn.deliver(
                &shared.stats,
                Outbound::Message(Arc::new(ControlMessage::Knock { request_id, display_name: display_name.clone() })),
            );
        }
        info!(meeting = %self.code, request_id, name = %display_name, "knock");
        Stats::inc(&shared.stats.knocks);
        st.knocks.push_back(Knock { request_id, display_name, conn });
        Ok(KnockOutcome::Waiting(request_id))
    }

    /// The host lets knock `request_id` in.
    pub async fn admit(self: &Arc<Self>, shared: &Shared, host: ParticipantId, request_id: u64) -> Result<(), OpError> {
        let mut st = self.state.lock().await;
        st.require_host(host)?;
        let index = st
            .knocks
            .iter()
            .position(|k| k.request_id == request_id)
            .ok_or_else(|| OpError::new(ErrorCode::UnknownParticipant, "no such knock"))?;
        if st.members.len() >= shared.config.max_participants {
            return Err(OpError::new(ErrorCode::MeetingFull, "the meeting is at its participant limit"));
        }
        let Some(knock) = st.knocks.remove(index) else {
            return Err(OpError::new(ErrorCode::UnknownParticipant, "no such knock"));
        };
        let (participant_id, member) = shared.new_member(knock.display_name, false, knock.conn.clone());
        let participant = member.info.clone();
        let session_token = member.session_token.clone();
        let media_token = member.media_token;
        st.members.push(member);
        self.register_member(shared, participant_id, &participant.display_name, session_token, media_token).await;
        st.broadcast(&shared.stats, ControlMessage::ParticipantJoined { participant }, Some(participant_id));
        info!(meeting = %self.code, request_id, participant = participant_id, "knock admitted");
        let welcome = Box::new(self.welcome(&st, participant_id));
        // If this fails the joiner's connection is gone; its task's cleanup removes the member.
        knock
            .conn
            .deliver(&shared.stats, Outbound::Admitted { meeting: self.clone(), request_id, participant_id, welcome });
        Ok(())
    }

    /// The host refuses knock `request_id`.
    pub async fn deny(&self, shared: &Shared, host: ParticipantId, request_id: u64) -> Result<(), OpError> {
        let mut st = self.state.lock().await;
        st.require_host(host)?;
        let knock = take_knock(&mut st, request_id)
            .ok_or_else(|| OpError::new(ErrorCode::UnknownParticipant, "no such knock"))?;
        info!(meeting = %self.code, request_id, "knock denied");
        knock.conn.deliver(&shared.stats, Outbound::Refused { request_id, reason: JoinRefusal::Denied });
        Ok(())
    }

    /// Takes knock `request_id` off the queue because the joiner cancelled it or it expired,
    /// telling the host. False if the knock was already answered (the answer is on its way).
    pub async fn withdraw_knock(&self, shared: &Shared, request_id: u64, reason: KnockWithdrawal) -> bool {
        let mut st = self.state.lock().await;
        let Some(_knock) = take_knock(&mut st, request_id) else { return false };
        info!(meeting = %self.code, request_id, ?reason, "knock withdrawn");
        if let Some(host) = st.host() {
            host.conn.deliver(
                &shared.stats,
                Outbound::Message(Arc::new(ControlMessage::KnockWithdrawn { request_id, reason })),
            );
        }
        true
    }

    /// Removes whatever connection `conn_id` has in this meeting (a knock or a participant),
    /// when that connection goes away.
    pub async fn remove_conn(&self, shared: &Shared, conn_id: u64, reason: LeaveReason) {
        let mut st = self.state.lock().await;
        if let Some(index) = st.knocks.iter().position(|k| k.conn.id == conn_id) {
            if let Some(knock) = st.knocks.remove(index) {
                info!(meeting = %self.code, request_id = knock.request_id, "knock withdrawn: joiner disconnected");
                if let Some(host) = st.host() {
                    host.conn.deliver(
                        &shared.stats,
                        Outbound::Message(Arc::new(ControlMessage::KnockWithdrawn {
                            request_id: knock.request_id,
                            reason: KnockWithdrawal::Disconnected,
                        })),
                    );
                }
            }
        }
        if let Some(id) = st.members.iter().find(|m| m.conn.id == conn_id).map(|m| m.info.id) {
            self.remove_member(&mut st, shared, id, reason).await;
        }
    }

    /// Participant `id` leaves (or is dropped) for `reason`. False if it was not a member.
    pub async fn leave(&self, shared: &Shared, id: ParticipantId, reason: LeaveReason) -> bool {
        let mut st = self.state.lock().await;
        self.remove_member(&mut st, shared, id, reason).await
    }

    /// The host removes participant `target`.
    pub async fn remove_participant(
        &self,
        shared: &Shared,
        host: ParticipantId,
        target: ParticipantId,
    ) -> Result<(), OpError> {
        let mut st = self.state.lock().await;
        st.require_host(host)?;
        if target == host {
            return Err(OpError::new(ErrorCode::InvalidState, "the host leaves with LEAVE"));
        }
        let conn = st
            .member(target)
            .map(|m| m.conn.clone())
            .ok_or_else(|| OpError::new(ErrorCode::UnknownParticipant, "no such participant"))?;
        self.remove_member(&mut st, shared, target, LeaveReason::Removed).await;
        conn.deliver(&shared.stats, Outbound::Removed);
        Ok(())
    }

    async fn remove_member(
        &self,
        st: &mut MeetingState,
        shared: &Shared,
        id: ParticipantId,
        reason: LeaveReason,
    ) -> bool {
        let Some(index) = st.members.iter().position(|m| m.info.id == id) else { return false };
        let member = st.members.remove(index);
        lock(&shared.sessions).remove(&member.session_token);
        let _ = shared.routes.send(RouteUpdate::Remove { participant_id: id }).await;
        Stats::dec(&shared.stats.participants_live);
        info!(meeting = %self.code, participant = id, ?reason, "participant left");
        if st.members.is_empty() {
            self.end(st, shared).await;
            return true;
        }
        st.broadcast(&shared.stats, ControlMessage::ParticipantLeft { participant_id: id, reason }, None);
        if st.host_id == id {
            let new_host = &mut st.members[0];
            new_host.info.is_host = true;
            let host_id = new_host.info.id;
            st.host_id = host_id;
            info!(meeting = %self.code, host = host_id, "host role handed over");
            st.broadcast(&shared.stats, ControlMessage::HostChanged { host_id }, None);
            // The new host must see who is still waiting.
            if let Some(host) = st.host() {
                for knock in &st.knocks {
                    host.conn.deliver(
                        &shared.stats,
                        Outbound::Message(Arc::new(ControlMessage::Knock {
                            request_id: knock.request_id,
                            display_name: knock.display_name.clone(),
                        })),
                    );
                }
            }
        }
        true
    }

    /// The last participant left: free the code, refuse the waiting room, delete the spool.
    async fn end(&self, st: &mut MeetingState, shared: &Shared) {
        st.ended = true;
        self.ended.cancel();
        {
            let mut registry = lock(&shared.registry);
            if registry.get(&self.code).is_some_and(|m| m.id == self.id) {
                registry.remove(&self.code);
            }
        }
        st.files.clear();
        shared.release_spool(std::mem::take(&mut st.files_bytes));
        match tokio::fs::remove_dir_all(&self.spool_dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(meeting = %self.code, dir = %self.spool_dir.display(), "cannot delete spool: {e}"),
        }
        Stats::dec(&shared.stats.meetings_live);
        info!(meeting = %self.code, meeting_id = self.id, "meeting ended");
        // Last, so a refused joiner that hears this finds the meeting gone everywhere.
        for knock in st.knocks.drain(..) {
            knock.conn.deliver(
                &shared.stats,
                Outbound::Refused { request_id: knock.request_id, reason: JoinRefusal::MeetingEnded },
            );
        }
    }

    /// Stamps and broadcasts a chat message from `sender`.
    pub async fn chat(
        &self,
        shared: &Shared,
        sender: ParticipantId,
        text: String,
        client_msg_id: Option<u64>,
    ) -> Result<(), OpError> {
        let max = shared.config.max_chat_chars;
        if text.chars().count() > max {
            return Err(OpError::new(ErrorCode::ChatTooLong, format!("chat messages are at most {max} characters")));
        }
        if text.trim().is_empty() {
            return Err(OpError::new(ErrorCode::MalformedMessage, "the chat message is empty"));
        }
        let mut st = self.state.lock().await;
        let member = st
            .members
            .iter_mut()
            .find(|m| m.info.id == sender)
            .ok_or_else(|| OpError::new(ErrorCode::InvalidState, "not in this meeting"))?;
        if !member.chat.take(Instant::now()) {
            return Err(OpError::new(ErrorCode::ServerBusy, "sending chat messages too fast"));
        }
        let sender_name = member.info.display_name.clone();
        self.post_chat(&mut st, shared, sender, sender_name, text, client_msg_id, None);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn post_chat(
        &self,
        st: &mut MeetingState,
        shared: &Shared,
        sender_id: ParticipantId,
        sender_name: String,
        text: String,
        client_msg_id: Option<u64>,
        file: Option<FileInfo>,
    ) {
        let message = ChatMessage {
            id: st.next_chat_id,
            sender_id,
            sender_name,
            text,
            timestamp_ms: now_ms(),
            client_msg_id,
            file,
        };
        st.next_chat_id += 1;
        if shared.config.chat_history_len > 0 {
            while st.chat.len() >= shared.config.chat_history_len {
                st.chat.pop_front();
            }
            st.chat.push_back(message.clone());
        }
        Stats::inc(&shared.stats.chat_messages);
        st.broadcast(&shared.stats, ControlMessage::Chat { message }, None);
    }

    /// Participant `id` reports its mic, camera and speaking state.
    pub async fn media_state(
        &self,
        shared: &Shared,
        id: ParticipantId,
        mic_on: bool,
        camera_on: bool,
        speaking: bool,
    ) -> Result<(), OpError> {
        let mut st = self.state.lock().await;
        let member = st
            .members
            .iter_mut()
            .find(|m| m.info.id == id)
            .ok_or_else(|| OpError::new(ErrorCode::InvalidState, "not in this meeting"))?;
        let before = (member.info.mic_on, member.info.camera_on, member.info.speaking);
        if before == (mic_on, camera_on, speaking) {
            return Ok(());
        }
        member.info.mic_on = mic_on;
        member.info.camera_on = camera_on;
        member.info.speaking = speaking;
        let participant = member.info.clone();
        st.broadcast(&shared.stats, ControlMessage::ParticipantUpdated { participant }, None);
        Ok(())
    }

    /// Registers an upload by `id`: checks membership, the per-participant limit and the
    /// number of files. Returns the uploader's display name.
    pub async fn begin_upload(&self, shared: &Shared, id: ParticipantId) -> Result<String, OpError> {
        let mut st = self.state.lock().await;
        let name = st.require_member(id)?.info.display_name.clone();
        if st.files.len() >= shared.config.max_files_per_meeting {
            return Err(OpError::new(ErrorCode::ServerBusy, "this meeting holds its maximum number of files"));
        }
        let active = st.uploads.entry(id).or_insert(0);
        if *active >= shared.config.max_uploads_per_participant {
            return Err(OpError::new(ErrorCode::ServerBusy, "too many uploads in progress"));
        }
        *active += 1;
        Ok(name)
    }

    /// Ends an upload registered with [`Self::begin_upload`].
    pub async fn end_upload(&self, id: ParticipantId) {
        let mut st = self.state.lock().await;
        release_slot(&mut st.uploads, id);
    }

    /// Offers a verified upload to the meeting: in chat (and its history) and as `FILE_OFFER`.
    /// On error the caller still owns the file and its spool reservation.
    pub async fn publish_file(&self, shared: &Shared, file: SpooledFile) -> Result<(), OpError> {
        let mut st = self.state.lock().await;
        if st.ended {
            return Err(OpError::new(ErrorCode::UnknownFile, "the meeting ended"));
        }
        let info = file.info.clone();
        st.files_bytes += info.size;
        st.files.insert(info.file_id, file);
        info!(meeting = %self.code, file_id = info.file_id, size = info.size, sender = info.sender_id, "file offered");
        self.post_chat(
            &mut st,
            shared,
            info.sender_id,
            info.sender_name.clone(),
            format!("shared a file: {}", info.name),
            None,
            Some(info.clone()),
        );
        st.broadcast(&shared.stats, ControlMessage::FileOffer { file: info }, None);
        Ok(())
    }

    /// Sends upload progress to everyone in the meeting.
    pub async fn file_progress(&self, shared: &Shared, msg: ControlMessage) {
        let st = self.state.lock().await;
        st.broadcast(&shared.stats, msg, None);
    }

    /// Registers a download of `file_id` by `id`.
    pub async fn begin_download(
        &self,
        shared: &Shared,
        id: ParticipantId,
        file_id: u64,
    ) -> Result<SpooledFile, OpError> {
        let mut st = self.state.lock().await;
        st.require_member(id)?;
        let file = st
            .files
            .get(&file_id)
            .cloned()
            .ok_or_else(|| OpError::new(ErrorCode::UnknownFile, "no such file in this meeting"))?;
        let active = st.downloads.entry(id).or_insert(0);
        if *active >= shared.config.max_downloads_per_participant {
            return Err(OpError::new(ErrorCode::ServerBusy, "too many downloads in progress"));
        }
        *active += 1;
        Ok(file)
    }

    /// Ends a download registered with [`Self::begin_download`].
    pub async fn end_download(&self, id: ParticipantId) {
        let mut st = self.state.lock().await;
        release_slot(&mut st.downloads, id);
    }
}

fn take_knock(st: &mut MeetingState, request_id: u64) -> Option<Knock> {
    let index = st.knocks.iter().position(|k| k.request_id == request_id)?;
    st.knocks.remove(index)
}

fn release_slot(slots: &mut HashMap<ParticipantId, usize>, id: ParticipantId) {
    if let Some(n) = slots.get_mut(&id) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            slots.remove(&id);
        }
    }
}
