//! One meeting as a state machine: the waiting room, admission, the roster, host hand-over,
//! the host's controls (lock, co-hosts, mutes enforced on the media path, ending the meeting for
//! everyone), raised hands and reactions, chat with its rate limit, and the files offered in it.
//!
//! Sans-IO in the style of str0m and quinn-proto: no sockets, tasks, locks or clock. Every
//! operation is a method call given the time ([`Now`]) and the new participant's credentials
//! (drawn by the registry); what the meeting wants done in the world comes out as
//! [`Effect`]s, in order, from [`MeetingCore::poll_effect`]: deliver a message to a
//! connection, add or remove a participant's route and session, end the meeting. The async
//! wrapper ([`super::Meeting`]) carries them out; the unit tests below read them directly,
//! with a simulated clock.
//!
//! Connections are whatever the caller uses to reach a peer (`C`, a queue handle in the
//! relay, a number in the tests).

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::control::{
    sanitize_display_text, ChatMessage, ErrorCode, FileInfo, JoinRefusal, KeyDelivery, KnockWithdrawal, LeaveReason,
    MediaDevice, MeetingWelcome, Participant, ParticipantId, Reaction, Role, Secret, MAX_DISPLAY_NAME_CHARS,
};
use protocol::e2ee::is_valid_key_blob;
use protocol::ControlMessage;
use tracing::info;

use super::record::{MeetingRecord, MemberRecord, UploadRecord, RECORD_FORMAT};
use super::{OpError, SpooledFile};
use crate::config::RelayConfig;
use crate::limits::{AddressKey, TokenBucket};
use crate::stats::LimitHit;

/// Room kept free in a `JOINED` frame beyond what [`MeetingCore::welcome`] counts.
const WELCOME_MARGIN: usize = 64;

/// A way to reach one connection, as the core stores it.
pub(crate) trait Connection: Clone {
    /// Relay-wide unique id of the connection.
    fn conn_id(&self) -> u64;
}

/// The time of an operation: the monotonic clock for limits, the wall clock for what
/// participants are shown (join times, chat timestamps).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Now {
    pub at: Instant,
    pub unix_ms: u64,
}

/// Identity and secrets the registry drew for a new participant.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub participant_id: ParticipantId,
    pub session_token: String,
    /// Takes the seat back after a drop ([`MeetingCore::resume`]).
    pub resume_secret: String,
}

/// Secrets are never printed.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("participant_id", &self.participant_id).finish_non_exhaustive()
    }
}

/// The limits of one meeting (a part of [`RelayConfig`]).
#[derive(Debug, Clone)]
pub(crate) struct MeetingLimits {
    pub max_participants: usize,
    pub max_pending_knocks: usize,
    pub max_pending_knocks_per_address: usize,
    pub chat_history_len: usize,
    pub chat_history_bytes: usize,
    /// Largest `JOINED` the meeting may send (the control frame limit).
    pub max_welcome_bytes: usize,
    pub max_chat_chars: usize,
    /// How long a dropped participant's seat is held for a `RESUME`.
    pub resume_grace: Duration,
    pub chat_burst: u32,
    pub chat_per_second: u32,
    pub media_state_burst: u32,
    pub media_state_per_second: u32,
    pub reaction_burst: u32,
    pub reaction_per_second: u32,
    pub max_files: usize,
    pub max_uploads_per_participant: usize,
    pub max_downloads_per_participant: usize,
    /// Spool bytes the meeting's files and uploads may hold…
    pub max_spool_bytes_per_meeting: u64,
    /// …and those of one participant.
    pub max_spool_bytes_per_participant: u64,
}

impl From<&RelayConfig> for MeetingLimits {
    fn from(c: &RelayConfig) -> Self {
        Self {
            max_participants: c.max_participants,
            max_pending_knocks: c.max_pending_knocks,
            max_pending_knocks_per_address: c.max_pending_knocks_per_address,
            chat_history_len: c.chat_history_len,
            chat_history_bytes: c.chat_history_bytes,
            max_welcome_bytes: protocol::framing::DEFAULT_MAX_FRAME_LEN,
            max_chat_chars: c.max_chat_chars,
            resume_grace: c.resume_grace,
            chat_burst: c.chat_burst,
            chat_per_second: c.chat_per_second,
            media_state_burst: c.media_state_burst,
            media_state_per_second: c.media_state_per_second,
            reaction_burst: c.reaction_burst,
            reaction_per_second: c.reaction_per_second,
            max_files: c.max_files_per_meeting,
            max_uploads_per_participant: c.max_uploads_per_participant,
            max_downloads_per_participant: c.max_downloads_per_participant,
            max_spool_bytes_per_meeting: c.max_spool_bytes_per_meeting,
            max_spool_bytes_per_participant: c.max_spool_bytes_per_participant,
        }
    }
}

/// What a participant's `MEDIA_STATE` says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MediaReport {
    pub mic_on: bool,
    pub camera_on: bool,
    pub speaking: bool,
    pub presenting: bool,
}

/// What the meeting asks its driver to do, in the order it must happen.
#[derive(Debug)]
pub(crate) enum Effect<C> {
    /// Write `message` to `to`.
    Deliver { to: C, message: Arc<ControlMessage> },
    /// The knock `request_id` on `to` was admitted as `participant_id`.
    Admitted { to: C, request_id: u64, participant_id: ParticipantId, welcome: Box<MeetingWelcome> },
    /// The knock `request_id` on `to` will not lead into the meeting.
    Refused { to: C, request_id: u64, reason: JoinRefusal },
    /// The host removed the participant on `to` (already off the roster).
    Removed { to: C },
    /// Host `by` ended the meeting: tell the participant on `to` and close its connection
    /// (it is already off the roster).
    EndedBy { to: C, by: ParticipantId },
    /// A moderator muted participant `participant_id` (`blocked`): its audio datagrams are
    /// dropped, not forwarded, until it turns its microphone off and on again (then this comes
    /// with `blocked: false`). Also comes after a `Rerouted` of a muted participant.
    AudioBlocked { participant_id: ParticipantId, blocked: bool },
    /// The participant on `to` resumed on another connection: close this one without a leave.
    Superseded { to: C },
    /// A participant entered: make its session token and media route valid. Comes before
    /// any message that tells the participant its id.
    MemberAdded { credentials: Credentials, conn: C },
    /// A seat came back from a [`MeetingRecord`] after a relay restart, without a connection:
    /// make its session token valid and its participant id taken (no media route until it
    /// resumes).
    SeatRestored { credentials: Credentials },
    /// The participant resumed on `conn`: its media route takes that connection's datagram
    /// keys from now on. Comes before the `RESUMED` that tells it so.
    Rerouted { participant_id: ParticipantId, conn: C },
    /// A participant left: its session token and media route are no longer valid.
    MemberRemoved { participant_id: ParticipantId, session_token: String },
    /// The last participant left: free the code, give back `spool_bytes` of the spool
    /// budget, delete the spool. Comes before the waiting room's refusals.
    Ended { spool_bytes: u64 },
}

/// Result of a knock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KnockOutcome {
    /// The host was asked; the joiner waits for this request id.
    Waiting(u64),
    /// The meeting is at its participant limit.
    Full,
    /// The host locked the meeting.
    Locked,
}

/// How a moderator's mute lifts: the participant's own `MEDIA_STATE` must say the microphone is
/// off, then on (a click on its own unmute), so a client that ignores the mute stays muted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MuteLift {
    /// Waiting for the participant to report its microphone off.
    AwaitingOff,
    /// Reported off since the mute: the next "on" lifts it.
    AwaitingOn,
}

/// A moderator's mute that holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Mute {
    lift: MuteLift,
    /// The moderator who muted, named again to a participant that resumes still muted.
    by: ParticipantId,
}

impl Mute {
    /// The mute after the participant reports its microphone `mic_on`; `None`: lifted.
    fn after_report(self, mic_on: bool) -> Option<Mute> {
        match (self.lift, mic_on) {
            (MuteLift::AwaitingOff, false) => Some(Mute { lift: MuteLift::AwaitingOn, ..self }),
            (MuteLift::AwaitingOn, true) => None,
            _ => Some(self),
        }
    }
}

#[derive(Debug)]
struct Member<C> {
    info: Participant,
    /// `None` for a seat restored after a relay restart and not yet resumed.
    conn: Option<C>,
    credentials: Credentials,
    /// Chat messages and file offers.
    chat: TokenBucket,
    media_state: TokenBucket,
    /// `MEDIA_KEYS` (the host's key rotations).
    media_keys: TokenBucket,
    reactions: TokenBucket,
    /// The microphone and speaking state the participant itself last reported (`info` shows
    /// both off while a moderator's mute holds).
    reported_mic_on: bool,
    reported_speaking: bool,
    /// Set while a moderator's mute holds: its audio is not forwarded.
    mute: Option<Mute>,
    /// Set while the participant's connection is gone and its seat is held for a resume.
    dropped: Option<Dropped>,
    /// The newest `client_msg_id` accepted from it: a chat it sends again after a resume with
    /// an id up to this one already reached the meeting and is not posted twice.
    last_client_msg_id: Option<u64>,
}

/// A seat held for a resume.
#[derive(Debug, Clone, Copy)]
struct Dropped {
    /// When the seat is given up.
    until: Instant,
    /// What the leave will say if nobody resumes it.
    reason: LeaveReason,
}

#[derive(Debug)]
struct Knock<C> {
    request_id: u64,
    display_name: String,
    media_public_key: String,
    /// Server time of the knock, so a moderator sees how long it has waited.
    since_ms: u64,
    conn: C,
    from: AddressKey,
}

impl<C> Knock<C> {
    fn message(&self) -> ControlMessage {
        ControlMessage::Knock {
            request_id: self.request_id,
            display_name: self.display_name.clone(),
            media_public_key: self.media_public_key.clone(),
            waiting_since_ms: self.since_ms,
        }
    }
}

/// A chat message kept for late joiners, with its encoded size.
#[derive(Debug)]
struct Kept {
    message: ChatMessage,
    bytes: usize,
}

/// Checks and cleans a display name.
pub(crate) fn validate_display_name(raw: &str) -> Result<String, OpError> {
    if raw.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(OpError::new(
            ErrorCode::InvalidName,
            format!("display names are at most {MAX_DISPLAY_NAME_CHARS} characters"),
        ));
    }
    sanitize_display_text(raw, MAX_DISPLAY_NAME_CHARS)
        .ok_or_else(|| OpError::new(ErrorCode::InvalidName, "the display name is empty"))
}

/// One meeting's state. See the module doc.
#[derive(Debug)]
pub(crate) struct MeetingCore<C> {
    code: String,
    limits: MeetingLimits,
    ended: bool,
    host_id: ParticipantId,
    /// New knocks are refused (`JOIN_REFUSED {reason: LOCKED}`); those waiting stay.
    locked: bool,
    /// Hands raised so far: each raised hand gets the next number, so everyone orders them alike.
    hands_raised: u64,
    /// In join order: the earliest-joined remaining participant inherits the host role.
    members: Vec<Member<C>>,
    knocks: VecDeque<Knock<C>>,
    /// Oldest first, at most `chat_history_len` messages and `chat_history_bytes`.
    chat: VecDeque<Kept>,
    chat_bytes: usize,
    next_chat_id: u64,
    files: HashMap<u64, SpooledFile>,
    /// Bytes of `files`, given back to the relay's spool budget when the meeting ends.
    files_bytes: u64,
    /// Spool bytes charged to the meeting's quotas: its files and what its uploads in progress
    /// have sent, in all and by uploader.
    spooled: u64,
    spooled_by: HashMap<ParticipantId, u64>,
    uploads: HashMap<ParticipantId, usize>,
    downloads: HashMap<ParticipantId, usize>,
    effects: VecDeque<Effect<C>>,
    /// Counts changes to what a [`MeetingRecord`] holds, so its writer knows when to write.
    changes: u64,
}

impl<C: Connection> MeetingCore<C> {
    /// A meeting with its host in it; returns the host's `JOINED` payload. The first effect
    /// adds the host's session and route.
    pub fn new(
        code: String,
        limits: MeetingLimits,
        now: Now,
        host: Credentials,
        display_name: String,
        media_public_key: String,
        conn: C,
    ) -> (Self, MeetingWelcome) {
        let host_id = host.participant_id;
        let mut core = Self::empty(code, limits, host_id, 1);
        core.add_member(now, host, display_name, media_public_key, true, conn);
        let welcome = core.welcome(host_id, None);
        (core, welcome)
    }

    /// A meeting with nobody in it yet.
    fn empty(code: String, limits: MeetingLimits, host_id: ParticipantId, next_chat_id: u64) -> Self {
        Self {
            code,
            limits,
            ended: false,
            host_id,
            locked: false,
            hands_raised: 0,
            members: Vec::new(),
            knocks: VecDeque::new(),
            chat: VecDeque::new(),
            chat_bytes: 0,
            next_chat_id,
            files: HashMap::new(),
            files_bytes: 0,
            spooled: 0,
            spooled_by: HashMap::new(),
            uploads: HashMap::new(),
            downloads: HashMap::new(),
            effects: VecDeque::new(),
            changes: 0,
        }
    }

    /// The meeting as a restarted relay needs it (see [`MeetingRecord`]), with the uploads
    /// in progress the driver knows of.
    pub fn record(&self, meeting_id: u64, uploads: Vec<UploadRecord>) -> MeetingRecord {
        let mut files: Vec<FileInfo> = self.files.values().map(|f| f.info.clone()).collect();
        files.sort_by_key(|f| f.file_id);
        MeetingRecord {
            format: RECORD_FORMAT,
            meeting_id,
            code: self.code.clone(),
            host_id: self.host_id,
            next_chat_id: self.next_chat_id,
            members: self
                .members
                .iter()
                .map(|m| MemberRecord {
                    participant: Participant { reconnecting: false, speaking: false, ..m.info.clone() },
                    session_token: Secret::new(m.credentials.session_token.clone()),
                    resume_secret: Secret::new(m.credentials.resume_secret.clone()),
                    last_client_msg_id: m.last_client_msg_id,
                    muted_by: m.mute.map(|mute| mute.by),
                })
                .collect(),
            chat: self.chat.iter().map(|kept| kept.message.clone()).collect(),
            files,
            uploads,
            locked: self.locked,
        }
    }

    /// The meeting of `record` after a relay restart: every seat held for a resume until
    /// `until` (shown as reconnecting, with no connection), the chat and the files as they
    /// were, each file spooled in `spool_dir`. Its first effects restore the seats' sessions.
    /// `None` for a record with no seat or a host who is not in it.
    pub fn restore(
        record: MeetingRecord,
        limits: MeetingLimits,
        now: Now,
        until: Instant,
        spool_dir: &Path,
    ) -> Option<Self> {
        if !record.members.iter().any(|m| m.participant.id == record.host_id) {
            return None;
        }
        let mut core = Self::empty(record.code, limits, record.host_id, record.next_chat_id);
        core.locked = record.locked;
        core.hands_raised = record.members.iter().filter_map(|m| m.participant.hand_raised).max().unwrap_or(0);
        // A record that says so (damaged, or edited by hand) cannot make the count overflow.
        if core.hands_raised == u64::MAX {
            core.hands_raised = 0;
        }
        for message in record.chat {
            let bytes = message.encoded_len();
            core.chat_bytes += bytes;
            core.chat.push_back(Kept { message, bytes });
        }
        for info in record.files {
            let path = spool_dir.join(info.file_id.to_string());
            core.files_bytes += info.size;
            core.spooled += info.size;
            *core.spooled_by.entry(info.sender_id).or_insert(0) += info.size;
            core.files.insert(info.file_id, SpooledFile { info, path });
        }
        for seat in record.members {
            let credentials = Credentials {
                participant_id: seat.participant.id,
                session_token: seat.session_token.expose().to_string(),
                resume_secret: seat.resume_secret.expose().to_string(),
            };
            core.effects.push_back(Effect::SeatRestored { credentials: credentials.clone() });
            let info =
                Participant { reconnecting: true, is_host: seat.participant.id == record.host_id, ..seat.participant };
            let member = core.member_with_fresh_limits(now, info, None, credentials);
            core.members.push(Member {
                dropped: Some(Dropped { until, reason: LeaveReason::Disconnected }),
                last_client_msg_id: seat.last_client_msg_id,
                // Strict: the resumed client must report its microphone off, then on.
                mute: seat.muted_by.map(|by| Mute { lift: MuteLift::AwaitingOff, by }),
                ..member
            });
        }
        info!(meeting = %core.code, seats = core.members.len(), files = core.files.len(), "meeting restored");
        Some(core)
    }

    /// An upload in progress before a restart comes back with `bytes` arrived: it takes an
    /// upload slot of `id` and its bytes are charged to the quotas again.
    pub fn restore_upload(&mut self, id: ParticipantId, bytes: u64) -> Result<(), OpError> {
        self.require_member(id)?;
        self.charge_upload(id, bytes)?;
        *self.uploads.entry(id).or_insert(0) += 1;
        Ok(())
    }

    /// Bytes of the files offered.
    pub fn files_bytes(&self) -> u64 {
        self.files_bytes
    }

    /// Counts changes to what [`Self::record`] returns.
    pub fn changes(&self) -> u64 {
        self.changes
    }

    /// The next thing the driver must do.
    #[must_use]
    pub fn poll_effect(&mut self) -> Option<Effect<C>> {
        self.effects.pop_front()
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    #[cfg(test)]
    pub fn host_id(&self) -> ParticipantId {
        self.host_id
    }

    /// Everyone in the meeting, in join order.
    pub fn roster(&self) -> Vec<Participant> {
        self.members.iter().map(|m| m.info.clone()).collect()
    }

    /// Request ids waiting for the host, oldest first.
    #[cfg(test)]
    pub fn waiting(&self) -> Vec<u64> {
        self.knocks.iter().map(|k| k.request_id).collect()
    }

    fn member(&self, id: ParticipantId) -> Option<&Member<C>> {
        self.members.iter().find(|m| m.info.id == id)
    }

    fn member_mut(&mut self, id: ParticipantId) -> Result<&mut Member<C>, OpError> {
        self.members
            .iter_mut()
            .find(|m| m.info.id == id)
            .ok_or_else(|| OpError::new(ErrorCode::InvalidState, "not in this meeting"))
    }

    fn require_member(&self, id: ParticipantId) -> Result<&Member<C>, OpError> {
        self.member(id).ok_or_else(|| OpError::new(ErrorCode::InvalidState, "not in this meeting"))
    }

    fn require_host(&self, id: ParticipantId) -> Result<(), OpError> {
        self.require_member(id)?;
        if self.host_id != id {
            return Err(OpError::new(ErrorCode::NotHost, "only the host may do this"));
        }
        Ok(())
    }

    /// The host or a co-host.
    fn require_moderator(&self, id: ParticipantId) -> Result<(), OpError> {
        if !self.require_member(id)?.info.is_moderator() {
            return Err(OpError::new(ErrorCode::NotHost, "only the host or a co-host may do this"));
        }
        Ok(())
    }

    /// A member other than `by`, for a moderator's action on it.
    fn require_other(&self, by: ParticipantId, target: ParticipantId, action: &str) -> Result<&Member<C>, OpError> {
        if by == target {
            return Err(OpError::new(ErrorCode::InvalidState, format!("{action} acts on someone else")));
        }
        self.member(target).ok_or_else(|| OpError::new(ErrorCode::UnknownParticipant, "no such participant"))
    }

    fn deliver(&mut self, to: C, message: Arc<ControlMessage>) {
        self.effects.push_back(Effect::Deliver { to, message });
    }

    /// The connections of the members (and knockers) connected now.
    pub fn connections(&self) -> Vec<C> {
        let members = self.members.iter().filter(|m| m.dropped.is_none()).filter_map(|m| m.conn.clone());
        members.chain(self.knocks.iter().map(|k| k.conn.clone())).collect()
    }

    /// Sends `message` to the host and the co-hosts, but `except`.
    fn tell_moderators(&mut self, message: ControlMessage, except: Option<ParticipantId>) {
        let message = Arc::new(message);
        let to: Vec<C> = self
            .members
            .iter()
            .filter(|m| m.info.is_moderator() && Some(m.info.id) != except)
            .filter_map(|m| m.conn.clone())
            .collect();
        for to in to {
            self.deliver(to, message.clone());
        }
    }

    /// Sends `message` to every member but `except`.
    fn broadcast(&mut self, message: ControlMessage, except: Option<ParticipantId>) {
        let message = Arc::new(message);
        for m in self.members.iter().filter(|m| Some(m.info.id) != except) {
            if let Some(to) = &m.conn {
                self.effects.push_back(Effect::Deliver { to: to.clone(), message: message.clone() });
            }
        }
    }

    /// The `JOINED` payload for participant `id`, with the meeting key the host sealed to it:
    /// the roster and as much of the newest chat history as fits the control frame, so joining
    /// works whatever was said before.
    pub fn welcome(&self, id: ParticipantId, media_key: Option<String>) -> MeetingWelcome {
        self.welcome_after(id, media_key, 0)
    }

    /// [`Self::welcome`] with only the chat messages after `last_chat_id`.
    fn welcome_after(&self, id: ParticipantId, media_key: Option<String>, last_chat_id: u64) -> MeetingWelcome {
        let me = self.member(id);
        let mut welcome = MeetingWelcome {
            code: self.code.clone(),
            participant_id: id,
            session_token: me.map(|m| m.credentials.session_token.clone()).unwrap_or_default(),
            resume_secret: Secret::new(me.map(|m| m.credentials.resume_secret.clone()).unwrap_or_default()),
            host_id: self.host_id,
            roster: self.roster(),
            chat_history: Vec::new(),
            media_key,
            media_key_from: None,
            locked: self.locked,
        };
        let base = ControlMessage::Joined(welcome.clone()).encoded_len();
        let mut room = self.limits.max_welcome_bytes.saturating_sub(base + WELCOME_MARGIN);
        // Newest first while they fit (each also costs a comma), then back in order.
        let missed = self.chat.iter().rev().take_while(|kept| kept.message.id > last_chat_id);
        let newest = missed.take_while(|kept| match room.checked_sub(kept.bytes + 1) {
            Some(left) => {
                room = left;
                true
            }
            None => false,
        });
        welcome.chat_history = newest.map(|kept| kept.message.clone()).collect();
        welcome.chat_history.reverse();
        welcome
    }

    fn add_member(
        &mut self,
        now: Now,
        credentials: Credentials,
        display_name: String,
        media_public_key: String,
        is_host: bool,
        conn: C,
    ) {
        let id = credentials.participant_id;
        info!(meeting = %self.code, participant = id, name = %display_name, "participant joined");
        self.changes += 1;
        self.effects.push_back(Effect::MemberAdded { credentials: credentials.clone(), conn: conn.clone() });
        let info = Participant {
            id,
            display_name,
            is_host,
            mic_on: false,
            camera_on: false,
            speaking: false,
            joined_at_ms: now.unix_ms,
            media_public_key,
            reconnecting: false,
            is_cohost: false,
            hand_raised: None,
            presenting: false,
        };
        let member = self.member_with_fresh_limits(now, info, Some(conn), credentials);
        self.members.push(member);
    }

    /// A member as it enters (or comes back after a restart): rate limits full.
    fn member_with_fresh_limits(
        &self,
        now: Now,
        info: Participant,
        conn: Option<C>,
        credentials: Credentials,
    ) -> Member<C> {
        let bucket = |burst, per_second: u32| TokenBucket::new(now.at, burst, f64::from(per_second));
        Member {
            conn,
            credentials,
            chat: bucket(self.limits.chat_burst, self.limits.chat_per_second),
            media_state: bucket(self.limits.media_state_burst, self.limits.media_state_per_second),
            media_keys: bucket(self.limits.media_state_burst, self.limits.media_state_per_second),
            reactions: bucket(self.limits.reaction_burst, self.limits.reaction_per_second),
            reported_mic_on: info.mic_on,
            reported_speaking: info.speaking,
            mute: None,
            info,
            dropped: None,
            last_client_msg_id: None,
        }
    }

    /// Asks the host to admit `display_name` (knock `request_id`, drawn by the registry) for
    /// a connection from address `from`, showing the host the knock's public key.
    pub fn knock(
        &mut self,
        now: Now,
        request_id: u64,
        display_name: &str,
        media_public_key: String,
        conn: C,
        from: AddressKey,
    ) -> Result<KnockOutcome, OpError> {
        let display_name = validate_display_name(display_name)?;
        if self.ended {
            return Err(OpError::new(ErrorCode::UnknownMeeting, "no meeting has this code"));
        }
        if self.locked {
            return Ok(KnockOutcome::Locked);
        }
        if self.members.len() >= self.limits.max_participants {
            return Ok(KnockOutcome::Full);
        }
        if self.knocks.len() >= self.limits.max_pending_knocks {
            return Err(OpError::new(ErrorCode::ServerBusy, "too many people are waiting to join this meeting"));
        }
        let max_from_one = self.limits.max_pending_knocks_per_address;
        if self.knocks.iter().filter(|k| k.from == from).count() >= max_from_one {
            return Err(OpError::quota(
                LimitHit::PendingKnocksPerAddress,
                ErrorCode::ServerBusy,
                format!("{max_from_one} people from your address are already waiting to join this meeting"),
            ));
        }
        info!(meeting = %self.code, request_id, name = %display_name, "knock");
        let knock = Knock { request_id, display_name, media_public_key, since_ms: now.unix_ms, conn, from };
        self.tell_moderators(knock.message(), None);
        self.knocks.push_back(knock);
        Ok(KnockOutcome::Waiting(request_id))
    }

    /// A moderator (`by`: the host or a co-host) lets knock `request_id` in, handing it
    /// `media_key` (the meeting key it sealed to the knock's public key) in `JOINED`;
    /// `credentials` is called only if it does. The other moderators hear it was answered.
    pub fn admit(
        &mut self,
        now: Now,
        by: ParticipantId,
        request_id: u64,
        media_key: String,
        credentials: impl FnOnce() -> Credentials,
    ) -> Result<ParticipantId, OpError> {
        self.require_moderator(by)?;
        if !is_valid_key_blob(&media_key) {
            return Err(bad_key_blob());
        }
        let index = self
            .knocks
            .iter()
            .position(|k| k.request_id == request_id)
            .ok_or_else(|| OpError::new(ErrorCode::UnknownParticipant, "no such knock"))?;
        if self.members.len() >= self.limits.max_participants {
            return Err(OpError::new(ErrorCode::MeetingFull, "the meeting is at its participant limit"));
        }
        let Some(knock) = self.knocks.remove(index) else {
            return Err(OpError::new(ErrorCode::UnknownParticipant, "no such knock"));
        };
        let credentials = credentials();
        let participant_id = credentials.participant_id;
        self.add_member(now, credentials, knock.display_name, knock.media_public_key, false, knock.conn.clone());
        if let Some(participant) = self.member(participant_id).map(|m| m.info.clone()) {
            self.broadcast(ControlMessage::ParticipantJoined { participant }, Some(participant_id));
        }
        info!(meeting = %self.code, request_id, participant = participant_id, by, "knock admitted");
        self.tell_moderators(
            ControlMessage::KnockWithdrawn { request_id, reason: KnockWithdrawal::Answered },
            Some(by),
        );
        let mut welcome = Box::new(self.welcome(participant_id, Some(media_key)));
        welcome.media_key_from = Some(by);
        self.effects.push_back(Effect::Admitted { to: knock.conn, request_id, participant_id, welcome });
        Ok(participant_id)
    }

    /// A moderator (`by`) refuses knock `request_id`.
    pub fn deny(&mut self, by: ParticipantId, request_id: u64) -> Result<(), OpError> {
        self.require_moderator(by)?;
        let knock =
            self.take_knock(request_id).ok_or_else(|| OpError::new(ErrorCode::UnknownParticipant, "no such knock"))?;
        info!(meeting = %self.code, request_id, by, "knock denied");
        self.tell_moderators(
            ControlMessage::KnockWithdrawn { request_id, reason: KnockWithdrawal::Answered },
            Some(by),
        );
        self.effects.push_back(Effect::Refused { to: knock.conn, request_id, reason: JoinRefusal::Denied });
        Ok(())
    }

    fn take_knock(&mut self, request_id: u64) -> Option<Knock<C>> {
        let index = self.knocks.iter().position(|k| k.request_id == request_id)?;
        self.knocks.remove(index)
    }

    /// Takes knock `request_id` off the queue because the joiner cancelled it or it expired,
    /// telling the host. False if the knock was already answered (the answer is on its way).
    pub fn withdraw_knock(&mut self, request_id: u64, reason: KnockWithdrawal) -> bool {
        if self.take_knock(request_id).is_none() {
            return false;
        }
        info!(meeting = %self.code, request_id, ?reason, "knock withdrawn");
        self.tell_moderators(ControlMessage::KnockWithdrawn { request_id, reason }, None);
        true
    }

    /// Connection `conn_id` went away for `reason` (closed, or silent for the liveness
    /// timeout): its knock is withdrawn; its participant, if it has one, keeps the seat for the
    /// resume grace window, shown to the others as reconnecting. Returns when the seat will be
    /// given up (the driver calls [`Self::expire`] then), or `None` if nothing is held (no
    /// grace window: the participant has left).
    pub fn remove_conn(&mut self, now: Now, conn_id: u64, reason: LeaveReason) -> Option<Instant> {
        if let Some(request_id) = self.knocks.iter().find(|k| k.conn.conn_id() == conn_id).map(|k| k.request_id) {
            self.withdraw_knock(request_id, KnockWithdrawal::Disconnected);
        }
        let on_conn = |m: &&Member<C>| m.conn.as_ref().is_some_and(|c| c.conn_id() == conn_id) && m.dropped.is_none();
        let id = self.members.iter().find(on_conn)?.info.id;
        if self.limits.resume_grace.is_zero() {
            self.leave(id, reason);
            return None;
        }
        let until = now.at + self.limits.resume_grace;
        let member = self.member_mut(id).ok()?;
        member.dropped = Some(Dropped { until, reason });
        member.info.reconnecting = true;
        let participant = member.info.clone();
        info!(meeting = %self.code, participant = id, ?reason, "connection lost: seat held for a resume");
        self.broadcast(ControlMessage::ParticipantUpdated { participant }, Some(id));
        Some(until)
    }

    /// Gives up the seats whose grace window has passed at `now`: each leaves with the reason
    /// its connection went away for.
    pub fn expire(&mut self, now: Now) {
        let expired: Vec<(ParticipantId, LeaveReason)> = self
            .members
            .iter()
            .filter_map(|m| m.dropped.filter(|d| d.until <= now.at).map(|d| (m.info.id, d.reason)))
            .collect();
        for (id, reason) in expired {
            info!(meeting = %self.code, participant = id, "not resumed within the grace window");
            self.leave(id, reason);
        }
    }

    /// Participant `id` takes its seat back on connection `conn`, proving it with its resume
    /// secret: same id, no knock. Its old connection, if still open, is closed without a
    /// leave; the others see it connected again; a host is shown the knocks still waiting.
    /// Returns the `RESUMED` payload with the chat messages after `last_chat_id`. Every
    /// refusal is the same `RESUME_REFUSED`, whatever was wrong.
    pub fn resume(
        &mut self,
        id: ParticipantId,
        resume_secret: &str,
        conn: C,
        last_chat_id: u64,
    ) -> Result<MeetingWelcome, OpError> {
        let refused = || OpError::new(ErrorCode::ResumeRefused, "no seat to resume: knock again");
        if self.ended {
            return Err(refused());
        }
        let member = self.members.iter_mut().find(|m| m.info.id == id).ok_or_else(refused)?;
        if !protocol::resume::secrets_match(resume_secret, &member.credentials.resume_secret) {
            return Err(refused());
        }
        let old = member.conn.replace(conn.clone());
        let was_dropped = member.dropped.take().is_some();
        member.info.reconnecting = false;
        let participant = member.info.clone();
        let mute = member.mute;
        info!(meeting = %self.code, participant = id, "seat resumed");
        self.effects.push_back(Effect::Rerouted { participant_id: id, conn: conn.clone() });
        if let Some(mute) = mute {
            self.effects.push_back(Effect::AudioBlocked { participant_id: id, blocked: true });
            // A mute that came while it was away (or before a restart) is said again, after
            // `RESUMED`: its client turns the microphone off, and its own click lifts the mute.
            if mute.lift == MuteLift::AwaitingOff {
                self.deliver(conn, Arc::new(ControlMessage::MutedByHost { by: mute.by }));
            }
        }
        if was_dropped {
            self.broadcast(ControlMessage::ParticipantUpdated { participant }, Some(id));
        } else if let Some(old) = old {
            // The client saw its path die before the relay did.
            self.effects.push_back(Effect::Superseded { to: old });
        }
        if self.member(id).is_some_and(|m| m.info.is_moderator()) {
            self.show_knocks_to(id);
        }
        Ok(self.welcome_after(id, None, last_chat_id))
    }

    /// Sends participant `id` every knock still waiting (a new moderator, or one back from a
    /// drop, has not seen them).
    fn show_knocks_to(&mut self, id: ParticipantId) {
        let Some(to) = self.member(id).and_then(|m| m.conn.clone()) else { return };
        let waiting: Vec<_> = self.knocks.iter().map(Knock::message).collect();
        for knock in waiting {
            self.deliver(to.clone(), Arc::new(knock));
        }
    }

    /// A moderator (`by`) removes participant `target`. A co-host cannot remove the host.
    pub fn remove_participant(&mut self, by: ParticipantId, target: ParticipantId) -> Result<(), OpError> {
        self.require_moderator(by)?;
        if target == by {
            return Err(OpError::new(ErrorCode::InvalidState, "to leave, send LEAVE"));
        }
        if target == self.host_id {
            return Err(OpError::new(ErrorCode::NotHost, "nobody removes the host"));
        }
        let conn = self
            .member(target)
            .map(|m| m.conn.clone())
            .ok_or_else(|| OpError::new(ErrorCode::UnknownParticipant, "no such participant"))?;
        self.leave(target, LeaveReason::Removed);
        if let Some(to) = conn {
            self.effects.push_back(Effect::Removed { to });
        }
        Ok(())
    }

    /// Participant `id` leaves (or is dropped) for `reason`. False if it was not a member.
    pub fn leave(&mut self, id: ParticipantId, reason: LeaveReason) -> bool {
        let Some(index) = self.members.iter().position(|m| m.info.id == id) else { return false };
        let member = self.members.remove(index);
        self.changes += 1;
        self.effects
            .push_back(Effect::MemberRemoved { participant_id: id, session_token: member.credentials.session_token });
        self.uploads.remove(&id);
        self.downloads.remove(&id);
        info!(meeting = %self.code, participant = id, ?reason, "participant left");
        if self.members.is_empty() {
            self.end();
            return true;
        }
        self.broadcast(ControlMessage::ParticipantLeft { participant_id: id, reason }, None);
        if self.host_id == id {
            // The earliest-joined participant who is connected; one who is reconnecting only if
            // nobody is.
            let heir = self.members.iter().position(|m| m.dropped.is_none()).unwrap_or(0);
            let new_host = &mut self.members[heir];
            let saw_knocks = new_host.info.is_cohost;
            new_host.info.is_host = true;
            new_host.info.is_cohost = false;
            let host_id = new_host.info.id;
            let participant = new_host.info.clone();
            self.host_id = host_id;
            info!(meeting = %self.code, host = host_id, "host role handed over");
            self.broadcast(ControlMessage::HostChanged { host_id }, None);
            if saw_knocks {
                // Its co-host flag went with the role; everyone sees it, as after SET_ROLE.
                self.broadcast(ControlMessage::ParticipantUpdated { participant }, None);
            } else {
                self.show_knocks_to(host_id);
            }
        }
        true
    }

    /// The host locks or unlocks the meeting: while locked, new knocks are refused at once
    /// (those already waiting stay). Everyone hears of a change.
    pub fn lock(&mut self, host: ParticipantId, locked: bool) -> Result<(), OpError> {
        self.require_host(host)?;
        if self.locked == locked {
            return Ok(());
        }
        self.locked = locked;
        self.changes += 1;
        info!(meeting = %self.code, locked, "meeting lock changed");
        self.broadcast(ControlMessage::MeetingLocked { locked, by: host }, None);
        Ok(())
    }

    /// The host makes `target` host (the sender becomes a participant), co-host, or a plain
    /// participant again.
    pub fn set_role(&mut self, host: ParticipantId, target: ParticipantId, role: Role) -> Result<(), OpError> {
        self.require_host(host)?;
        let member = self.require_other(host, target, "SET_ROLE")?;
        if role == Role::Host && member.dropped.is_some() {
            // Nobody connected would hold the role until it came back, if it does.
            return Err(OpError::new(ErrorCode::InvalidState, "the host role goes to someone connected"));
        }
        let was_cohost = member.info.is_cohost;
        match role {
            Role::Host => {
                for m in self.members.iter_mut().filter(|m| m.info.id == host || m.info.id == target) {
                    m.info.is_host = m.info.id == target;
                    m.info.is_cohost = false;
                }
                self.host_id = target;
                info!(meeting = %self.code, host = target, "host role handed on");
                self.broadcast(ControlMessage::HostChanged { host_id: target }, None);
            }
            Role::CoHost | Role::Participant => {
                let is_cohost = role == Role::CoHost;
                if was_cohost == is_cohost {
                    return Ok(());
                }
                self.member_mut(target)?.info.is_cohost = is_cohost;
                info!(meeting = %self.code, participant = target, is_cohost, "co-host role changed");
            }
        }
        self.changes += 1;
        for id in [host, target] {
            if let Some(participant) = self.member(id).map(|m| m.info.clone()) {
                self.broadcast(ControlMessage::ParticipantUpdated { participant }, None);
            }
        }
        if role != Role::Participant && !was_cohost {
            self.show_knocks_to(target);
        }
        Ok(())
    }

    /// A moderator (`by`) turns `target`'s microphone off. The relay stops forwarding its
    /// audio at once and keeps it stopped until the participant reports its microphone off and
    /// then on (its own click); the participant is told who muted it if its microphone was on.
    pub fn mute(&mut self, now: Now, by: ParticipantId, target: ParticipantId) -> Result<(), OpError> {
        self.require_moderator(by)?;
        self.require_other(by, target, "MUTE_PARTICIPANT")?;
        self.spend_moderation(now, by)?;
        self.mute_one(by, target);
        Ok(())
    }

    /// A moderator (`by`) turns everyone's microphone off but its own.
    pub fn mute_all(&mut self, now: Now, by: ParticipantId) -> Result<(), OpError> {
        self.require_moderator(by)?;
        self.spend_moderation(now, by)?;
        let others: Vec<ParticipantId> = self.members.iter().map(|m| m.info.id).filter(|id| *id != by).collect();
        for target in others {
            self.mute_one(by, target);
        }
        Ok(())
    }

    /// Moderators' actions on others (mute, ask to unmute, lower a hand) share the moderator's
    /// `MEDIA_STATE` rate, so none of them can flood a participant.
    fn spend_moderation(&mut self, now: Now, by: ParticipantId) -> Result<(), OpError> {
        self.member_mut(by)?
            .media_state
            .take(now.at)
            .map_err(|retry_after| OpError::rate_limited(LimitHit::MediaState, "moderating too fast", retry_after))
    }

    fn mute_one(&mut self, by: ParticipantId, target: ParticipantId) {
        let Ok(member) = self.member_mut(target) else { return };
        if member.mute.is_some() {
            return;
        }
        let mic_was_on = member.reported_mic_on;
        let lift = if mic_was_on { MuteLift::AwaitingOff } else { MuteLift::AwaitingOn };
        member.mute = Some(Mute { lift, by });
        let shown_before = (member.info.mic_on, member.info.speaking);
        member.info.mic_on = false;
        member.info.speaking = false;
        let participant = member.info.clone();
        let conn = member.conn.clone();
        self.changes += 1;
        info!(meeting = %self.code, participant = target, by, "muted by a moderator");
        self.effects.push_back(Effect::AudioBlocked { participant_id: target, blocked: true });
        if let (true, Some(to)) = (mic_was_on, conn) {
            self.deliver(to, Arc::new(ControlMessage::MutedByHost { by }));
        }
        if shown_before != (false, false) {
            self.broadcast(ControlMessage::ParticipantUpdated { participant }, None);
        }
    }

    /// A moderator (`by`) asks `target` to turn `device` on; only the participant's own click
    /// does it.
    pub fn request_media(
        &mut self,
        now: Now,
        by: ParticipantId,
        target: ParticipantId,
        device: MediaDevice,
    ) -> Result<(), OpError> {
        self.require_moderator(by)?;
        let conn = self.require_other(by, target, "REQUEST_MEDIA")?.conn.clone();
        self.spend_moderation(now, by)?;
        if let Some(to) = conn {
            self.deliver(to, Arc::new(ControlMessage::MediaRequested { by, device }));
        }
        Ok(())
    }

    /// Participant `id` raises or lowers its own hand. A raised hand gets the meeting's next
    /// number, so everyone lists hands first raised first.
    pub fn raise_hand(&mut self, now: Now, id: ParticipantId, raised: bool) -> Result<(), OpError> {
        let next = self.hands_raised.saturating_add(1);
        let member = self.member_mut(id)?;
        if member.info.hand_raised.is_some() == raised {
            return Ok(());
        }
        if let Err(retry_after) = member.media_state.take(now.at) {
            return Err(OpError::rate_limited(
                LimitHit::MediaState,
                "raising and lowering a hand too fast",
                retry_after,
            ));
        }
        member.info.hand_raised = raised.then_some(next);
        let participant = member.info.clone();
        if raised {
            self.hands_raised = next;
        }
        self.changes += 1;
        self.broadcast(ControlMessage::ParticipantUpdated { participant }, None);
        Ok(())
    }

    /// `by` lowers `target`'s hand: its own, or anyone's for a moderator.
    pub fn lower_hand(&mut self, now: Now, by: ParticipantId, target: ParticipantId) -> Result<(), OpError> {
        if by == target {
            return self.raise_hand(now, by, false);
        }
        self.require_moderator(by)?;
        self.require_other(by, target, "LOWER_HAND")?;
        self.spend_moderation(now, by)?;
        let member = self.member_mut(target)?;
        if member.info.hand_raised.take().is_none() {
            return Ok(());
        }
        let participant = member.info.clone();
        self.changes += 1;
        self.broadcast(ControlMessage::ParticipantUpdated { participant }, None);
        Ok(())
    }

    /// Participant `id` reacts: everyone, the sender included, hears it, within the
    /// participant's reaction rate.
    pub fn react(&mut self, now: Now, id: ParticipantId, reaction: Reaction) -> Result<(), OpError> {
        if let Err(retry_after) = self.member_mut(id)?.reactions.take(now.at) {
            return Err(OpError::rate_limited(LimitHit::Reactions, "reacting too fast", retry_after));
        }
        self.broadcast(ControlMessage::Reaction { participant_id: id, reaction }, None);
        Ok(())
    }

    /// The host ends the meeting for everyone: each participant hears `MEETING_ENDED` and its
    /// connection closes, the waiting room is refused, the files are deleted.
    pub fn end_for_all(&mut self, host: ParticipantId) -> Result<(), OpError> {
        self.require_host(host)?;
        info!(meeting = %self.code, by = host, "meeting ended for everyone by the host");
        for member in std::mem::take(&mut self.members) {
            let participant_id = member.info.id;
            self.effects
                .push_back(Effect::MemberRemoved { participant_id, session_token: member.credentials.session_token });
            if let Some(to) = member.conn {
                self.effects.push_back(Effect::EndedBy { to, by: host });
            }
        }
        self.changes += 1;
        self.end();
        Ok(())
    }

    /// The last participant left: the code is freed, the waiting room refused, the files
    /// forgotten.
    fn end(&mut self) {
        self.ended = true;
        self.files.clear();
        self.spooled = 0;
        self.spooled_by.clear();
        self.uploads.clear();
        self.downloads.clear();
        self.chat = VecDeque::new();
        self.chat_bytes = 0;
        let spool_bytes = std::mem::take(&mut self.files_bytes);
        info!(meeting = %self.code, "meeting ended");
        self.effects.push_back(Effect::Ended { spool_bytes });
        // Last, so a refused joiner that hears this finds the meeting gone everywhere.
        for knock in std::mem::take(&mut self.knocks) {
            self.effects.push_back(Effect::Refused {
                to: knock.conn,
                request_id: knock.request_id,
                reason: JoinRefusal::MeetingEnded,
            });
        }
    }

    /// Stamps and broadcasts a chat message from `sender`.
    pub fn chat(
        &mut self,
        now: Now,
        sender: ParticipantId,
        text: String,
        client_msg_id: Option<u64>,
    ) -> Result<(), OpError> {
        let max = self.limits.max_chat_chars;
        if text.chars().count() > max {
            return Err(OpError::new(ErrorCode::ChatTooLong, format!("chat messages are at most {max} characters")));
        }
        if text.trim().is_empty() {
            return Err(OpError::new(ErrorCode::MalformedMessage, "the chat message is empty"));
        }
        let member = self.member_mut(sender)?;
        if client_msg_id.is_some() && client_msg_id <= member.last_client_msg_id {
            // Sent again after a resume, but the first copy made it: it is in the replay.
            return Ok(());
        }
        if let Err(retry_after) = member.chat.take(now.at) {
            return Err(OpError::rate_limited(LimitHit::Chat, "sending chat messages too fast", retry_after));
        }
        member.last_client_msg_id = client_msg_id.or(member.last_client_msg_id);
        let sender_name = member.info.display_name.clone();
        self.post_chat(now, sender, sender_name, text, client_msg_id, None);
        Ok(())
    }

    fn post_chat(
        &mut self,
        now: Now,
        sender_id: ParticipantId,
        sender_name: String,
        text: String,
        client_msg_id: Option<u64>,
        file: Option<FileInfo>,
    ) {
        let message = ChatMessage {
            id: self.next_chat_id,
            sender_id,
            sender_name,
            text,
            timestamp_ms: now.unix_ms,
            client_msg_id,
            file,
        };
        self.next_chat_id += 1;
        self.changes += 1;
        let bytes = message.encoded_len();
        if self.limits.chat_history_len > 0 && bytes <= self.limits.chat_history_bytes {
            while self.chat.len() >= self.limits.chat_history_len
                || self.chat_bytes + bytes > self.limits.chat_history_bytes
            {
                let Some(oldest) = self.chat.pop_front() else { break };
                self.chat_bytes -= oldest.bytes;
            }
            self.chat_bytes += bytes;
            self.chat.push_back(Kept { message: message.clone(), bytes });
        }
        self.broadcast(ControlMessage::Chat { message }, None);
    }

    /// The host hands out a new meeting key: each blob goes to its participant as `MEDIA_KEY`
    /// from the host. The relay cannot open them; it checks their form, that they come from
    /// the host, and the host's rate. A participant who has left since is skipped.
    pub fn media_keys(&mut self, now: Now, host: ParticipantId, keys: Vec<KeyDelivery>) -> Result<(), OpError> {
        self.require_host(host)?;
        if keys.len() > self.limits.max_participants {
            return Err(OpError::new(ErrorCode::MalformedMessage, "more keys than the meeting has participants"));
        }
        if !keys.iter().all(|k| is_valid_key_blob(&k.media_key)) {
            return Err(bad_key_blob());
        }
        if let Err(retry_after) = self.member_mut(host)?.media_keys.take(now.at) {
            return Err(OpError::rate_limited(LimitHit::MediaState, "handing out media keys too fast", retry_after));
        }
        for KeyDelivery { participant_id, media_key } in keys {
            if participant_id == host {
                continue;
            }
            if let Some(to) = self.member(participant_id).and_then(|m| m.conn.clone()) {
                self.deliver(to, Arc::new(ControlMessage::MediaKey { from: host, media_key }));
            }
        }
        Ok(())
    }

    /// Participant `id` reports its mic, camera, speaking and presenting state; a change is
    /// broadcast, within the participant's rate.
    pub fn media_state(&mut self, now: Now, id: ParticipantId, report: MediaReport) -> Result<(), OpError> {
        let MediaReport { mic_on, camera_on, speaking, presenting } = report;
        let member = self.member_mut(id)?;
        let unchanged =
            (member.reported_mic_on, member.info.camera_on, member.reported_speaking, member.info.presenting)
                == (mic_on, camera_on, speaking, presenting);
        // A moderator's mute lifts once the participant reports its microphone off, then on.
        // Each step happens once per mute (and mutes are within the moderator's rate), so
        // neither is refused by the participant's own rate: the state it reports must hold.
        let mute = member.mute.and_then(|mute| mute.after_report(mic_on));
        let stepped = mute != member.mute;
        if !stepped {
            if unchanged {
                return Ok(());
            }
            if let Err(retry_after) = member.media_state.take(now.at) {
                return Err(OpError::rate_limited(
                    LimitHit::MediaState,
                    "changing mic, camera or speaking state too fast",
                    retry_after,
                ));
            }
        }
        member.mute = mute;
        if stepped && mute.is_none() {
            self.changes += 1;
            info!(meeting = %self.code, participant = id, "unmuted itself after a moderator's mute");
            self.effects.push_back(Effect::AudioBlocked { participant_id: id, blocked: false });
        }
        let member = self.member_mut(id)?;
        member.reported_mic_on = mic_on;
        member.reported_speaking = speaking;
        // While muted by a moderator the others hear nothing: show it so.
        let audible = member.mute.is_none();
        let shown = (mic_on && audible, camera_on, speaking && audible, presenting);
        if (member.info.mic_on, member.info.camera_on, member.info.speaking, member.info.presenting) == shown {
            return Ok(());
        }
        // Speaking comes and goes every few seconds and is not kept across a restart.
        let recorded_change = (member.info.mic_on, member.info.camera_on) != (shown.0, shown.1);
        (member.info.mic_on, member.info.camera_on, member.info.speaking, member.info.presenting) = shown;
        let participant = member.info.clone();
        self.changes += u64::from(recorded_change);
        self.broadcast(ControlMessage::ParticipantUpdated { participant }, None);
        Ok(())
    }

    /// Registers an upload of `size` bytes by `id`: checks membership, the per-participant
    /// limit, the number of files and that the file fits the meeting's and the participant's
    /// spool quotas as they are now, and spends one of the sender's chat messages (the offer
    /// goes to everyone). Returns the uploader's display name.
    pub fn begin_upload(&mut self, now: Now, id: ParticipantId, size: u64) -> Result<String, OpError> {
        self.require_member(id)?;
        if self.files.len() >= self.limits.max_files {
            return Err(OpError::new(ErrorCode::ServerBusy, "this meeting holds its maximum number of files"));
        }
        if self.uploads.get(&id).copied().unwrap_or(0) >= self.limits.max_uploads_per_participant {
            return Err(OpError::new(ErrorCode::ServerBusy, "too many uploads in progress"));
        }
        self.check_spool_quotas(id, size)?;
        let member = self.member_mut(id)?;
        if let Err(retry_after) = member.chat.take(now.at) {
            return Err(OpError::rate_limited(LimitHit::Chat, "sharing files too fast", retry_after));
        }
        let name = member.info.display_name.clone();
        *self.uploads.entry(id).or_insert(0) += 1;
        Ok(name)
    }

    /// Ends an upload registered with [`Self::begin_upload`].
    pub fn end_upload(&mut self, id: ParticipantId) {
        release_slot(&mut self.uploads, id);
    }

    /// Charges `bytes` that arrived for an upload by `id` to the meeting's and the
    /// participant's spool quotas; refuses them (charging nothing) when either would overflow.
    pub fn charge_upload(&mut self, id: ParticipantId, bytes: u64) -> Result<(), OpError> {
        self.check_spool_quotas(id, bytes)?;
        self.spooled += bytes;
        *self.spooled_by.entry(id).or_insert(0) += bytes;
        Ok(())
    }

    /// Gives back what [`Self::charge_upload`] charged for an upload that will not become a
    /// file. A published file keeps its charge until the meeting ends.
    pub fn refund_upload(&mut self, id: ParticipantId, bytes: u64) {
        self.spooled = self.spooled.saturating_sub(bytes);
        if let Some(held) = self.spooled_by.get_mut(&id) {
            *held = held.saturating_sub(bytes);
            if *held == 0 {
                self.spooled_by.remove(&id);
            }
        }
    }

    fn check_spool_quotas(&self, id: ParticipantId, bytes: u64) -> Result<(), OpError> {
        let meeting_limit = self.limits.max_spool_bytes_per_meeting;
        if self.spooled.saturating_add(bytes) > meeting_limit {
            let message =
                format!("this meeting's files would pass its {} of the relay's spool", in_units(meeting_limit));
            return Err(OpError::quota(LimitHit::MeetingSpool, ErrorCode::ServerBusy, message));
        }
        let participant_limit = self.limits.max_spool_bytes_per_participant;
        let held = self.spooled_by.get(&id).copied().unwrap_or(0);
        if held.saturating_add(bytes) > participant_limit {
            let message = format!(
                "your files would pass the {} one participant may share in a meeting",
                in_units(participant_limit)
            );
            return Err(OpError::quota(LimitHit::ParticipantSpool, ErrorCode::ServerBusy, message));
        }
        Ok(())
    }

    /// Offers a verified upload to the meeting: in chat (and its history) and as `FILE_OFFER`.
    /// On error the caller still owns the file and its spool reservation.
    pub fn publish_file(&mut self, now: Now, file: SpooledFile) -> Result<(), OpError> {
        if self.ended {
            return Err(OpError::new(ErrorCode::UnknownFile, "the meeting ended"));
        }
        let info = file.info.clone();
        self.files_bytes += info.size;
        self.files.insert(info.file_id, file);
        info!(meeting = %self.code, file_id = info.file_id, size = info.size, sender = info.sender_id, "file offered");
        self.post_chat(
            now,
            info.sender_id,
            info.sender_name.clone(),
            format!("shared a file: {}", info.name),
            None,
            Some(info.clone()),
        );
        self.broadcast(ControlMessage::FileOffer { file: info }, None);
        Ok(())
    }

    /// Sends `message` (upload progress, or that an upload stopped) to everyone in the meeting.
    pub fn broadcast_progress(&mut self, message: ControlMessage) {
        self.broadcast(message, None);
    }

    /// Whether `file_id` is offered in this meeting and was sent by `id`.
    pub fn is_offered_by(&self, file_id: u64, id: ParticipantId) -> bool {
        self.files.get(&file_id).is_some_and(|file| file.info.sender_id == id)
    }

    /// Whether `id` holds a seat (connected or not).
    pub fn is_member(&self, id: ParticipantId) -> bool {
        self.require_member(id).is_ok()
    }

    /// Registers a download of `file_id` by `id`.
    pub fn begin_download(&mut self, id: ParticipantId, file_id: u64) -> Result<SpooledFile, OpError> {
        self.require_member(id)?;
        let file = self
            .files
            .get(&file_id)
            .cloned()
            .ok_or_else(|| OpError::new(ErrorCode::UnknownFile, "no such file in this meeting"))?;
        let active = self.downloads.entry(id).or_insert(0);
        if *active >= self.limits.max_downloads_per_participant {
            return Err(OpError::new(ErrorCode::ServerBusy, "too many downloads in progress"));
        }
        *active += 1;
        Ok(file)
    }

    /// Ends a download registered with [`Self::begin_download`].
    pub fn end_download(&mut self, id: ParticipantId) {
        release_slot(&mut self.downloads, id);
    }
}

/// A size as a person reads it in an error: "2 GiB", "64 KiB" (whole units, rounded down).
fn bad_key_blob() -> OpError {
    OpError::new(
        ErrorCode::MalformedMessage,
        format!("media_key must be {} hex digits", 2 * protocol::e2ee::SEALED_MEETING_KEY_LEN),
    )
}

fn in_units(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    UNITS
        .iter()
        .find(|(_, size)| bytes >= *size)
        .map_or_else(|| format!("{bytes} bytes"), |(unit, size)| format!("{} {unit}", bytes / size))
}

fn release_slot(slots: &mut HashMap<ParticipantId, usize>, id: ParticipantId) {
    if let Some(n) = slots.get_mut(&id) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            slots.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::*;

    /// A `MEDIA_STATE` without a shared screen.
    fn report(mic_on: bool, camera_on: bool, speaking: bool) -> MediaReport {
        MediaReport { mic_on, camera_on, speaking, presenting: false }
    }

    /// A connection in the tests is just its number.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    struct Conn(u64);

    impl Connection for Conn {
        fn conn_id(&self) -> u64 {
            self.0
        }
    }

    const HOST: Conn = Conn(1);

    /// Connection `n` comes from 10.0.0.n.
    fn addr(n: u64) -> AddressKey {
        AddressKey::from(std::net::IpAddr::from([10, 0, 0, n as u8]))
    }

    fn limits() -> MeetingLimits {
        MeetingLimits {
            max_participants: 3,
            max_pending_knocks: 2,
            max_pending_knocks_per_address: 2,
            chat_history_len: 4,
            chat_history_bytes: 32 * 1024,
            max_welcome_bytes: protocol::framing::DEFAULT_MAX_FRAME_LEN,
            max_chat_chars: 100,
            // A drop is a leave at once, unless a test holds seats.
            resume_grace: Duration::ZERO,
            chat_burst: 3,
            chat_per_second: 2,
            media_state_burst: 2,
            media_state_per_second: 1,
            reaction_burst: 5,
            reaction_per_second: 1,
            max_files: 2,
            max_uploads_per_participant: 1,
            max_downloads_per_participant: 1,
            max_spool_bytes_per_meeting: 1000,
            max_spool_bytes_per_participant: 600,
        }
    }

    /// A simulated clock: starts at an arbitrary instant and only moves when told.
    struct Clock {
        start: Instant,
        elapsed: Duration,
    }

    impl Clock {
        fn new() -> Self {
            Self { start: Instant::now(), elapsed: Duration::ZERO }
        }
        fn now(&self) -> Now {
            Now { at: self.start + self.elapsed, unix_ms: 1_700_000_000_000 + self.elapsed.as_millis() as u64 }
        }
        fn advance(&mut self, by: Duration) {
            self.elapsed += by;
        }
    }

    /// A participant's public key, as `JOIN_REQUEST` carries it (its value does not matter here).
    fn key() -> String {
        "0f".repeat(32)
    }

    /// A meeting key sealed by the host, as `ADMIT` carries it (opaque to the relay).
    fn blob() -> String {
        "5a".repeat(protocol::e2ee::SEALED_MEETING_KEY_LEN)
    }

    fn creds(id: ParticipantId) -> Credentials {
        Credentials { participant_id: id, session_token: format!("session-{id}"), resume_secret: secret(id) }
    }

    fn secret(id: ParticipantId) -> String {
        format!("{id:064x}")
    }

    fn meeting(clock: &Clock, limits: MeetingLimits) -> MeetingCore<Conn> {
        let (mut core, welcome) =
            MeetingCore::new("123456".into(), limits, clock.now(), creds(1), "Host".into(), key(), HOST);
        assert_eq!(welcome.participant_id, 1);
        assert_eq!(welcome.host_id, 1);
        assert_eq!(welcome.session_token, "session-1");
        assert_eq!(welcome.roster.len(), 1);
        assert!(welcome.roster[0].is_host);
        assert!(
            matches!(drain(&mut core)[..], [Effect::MemberAdded { ref credentials, .. }] if credentials.participant_id == 1)
        );
        core
    }

    fn drain(core: &mut MeetingCore<Conn>) -> Vec<Effect<Conn>> {
        std::iter::from_fn(|| core.poll_effect()).collect()
    }

    /// The messages delivered to `conn` among `effects`, in order.
    fn sent_to(effects: &[Effect<Conn>], conn: Conn) -> Vec<ControlMessage> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Deliver { to, message } if *to == conn => Some((**message).clone()),
                _ => None,
            })
            .collect()
    }

    /// Knocks from `conn` and lets the host admit it as `id`.
    fn join(core: &mut MeetingCore<Conn>, clock: &Clock, request_id: u64, id: ParticipantId, conn: Conn) {
        assert_eq!(
            core.knock(clock.now(), request_id, &format!("Guest {id}"), key(), conn, addr(conn.0)).unwrap(),
            KnockOutcome::Waiting(request_id)
        );
        let host = core.host_id();
        assert_eq!(core.admit(clock.now(), host, request_id, blob(), || creds(id)).unwrap(), id);
        drain(core);
    }

    fn file(file_id: u64, size: u64, sender_id: ParticipantId) -> SpooledFile {
        SpooledFile {
            info: FileInfo {
                file_id,
                name: format!("f{file_id}.bin"),
                size,
                sha256: "00".repeat(32),
                sender_id,
                sender_name: "Host".into(),
                lost: false,
            },
            path: PathBuf::from(format!("/nonexistent/{file_id}")),
        }
    }

    #[test]
    fn media_keys_go_only_from_the_host_to_the_named_members_and_the_relay_checks_their_form() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        let delivery = |participant_id| KeyDelivery { participant_id, media_key: blob() };
        // Not the host: refused, nothing delivered.
        let err = core.media_keys(clock.now(), 2, vec![delivery(3)]).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotHost);
        assert!(drain(&mut core).is_empty());
        // Malformed blobs are refused whole.
        let bad = KeyDelivery { participant_id: 3, media_key: "zz".repeat(68) };
        let err = core.media_keys(clock.now(), 1, vec![delivery(2), bad]).unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedMessage);
        assert!(drain(&mut core).is_empty());
        // From the host: each named member gets its own blob, as coming from the host; a
        // participant who already left is skipped.
        core.media_keys(clock.now(), 1, vec![delivery(2), delivery(99), delivery(3)]).unwrap();
        let effects = drain(&mut core);
        let expected = vec![ControlMessage::MediaKey { from: 1, media_key: blob() }];
        assert_eq!(sent_to(&effects, Conn(2)), expected);
        assert_eq!(sent_to(&effects, Conn(3)), expected);
        assert!(sent_to(&effects, HOST).is_empty());
        // More keys than participants is not a rotation.
        let many = (0..=limits().max_participants as u32).map(delivery).collect();
        assert_eq!(core.media_keys(clock.now(), 1, many).unwrap_err().code, ErrorCode::MalformedMessage);
        // The host's rate is bounded.
        let burst = limits().media_state_burst;
        let refused = (0..=burst).filter(|_| core.media_keys(clock.now(), 1, vec![delivery(2)]).is_err()).count();
        assert!(refused >= 1, "the burst of {burst} is a bound");
    }

    #[test]
    fn the_knock_shows_the_joiners_key_and_joined_carries_the_hosts_seal() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        core.knock(clock.now(), 1, "Ada", "ab".repeat(32), Conn(2), addr(2)).unwrap();
        let effects = drain(&mut core);
        assert!(matches!(&sent_to(&effects, HOST)[..],
            [ControlMessage::Knock { media_public_key, .. }] if *media_public_key == "ab".repeat(32)));
        let err = core.admit(clock.now(), 1, 1, "short".into(), || creds(2)).unwrap_err();
        assert_eq!(err.code, ErrorCode::MalformedMessage);
        core.admit(clock.now(), 1, 1, blob(), || creds(2)).unwrap();
        let effects = drain(&mut core);
        let Some(Effect::Admitted { welcome, .. }) = effects.last() else { panic!("not admitted: {effects:?}") };
        assert_eq!(welcome.media_key, Some(blob()));
        assert_eq!(welcome.roster[1].media_public_key, "ab".repeat(32));
        // Only the joiner's JOINED carries a seal; the host's own welcome has none.
        assert_eq!(core.welcome(1, None).media_key, None);
    }

    #[test]
    fn a_knock_reaches_the_host_and_admission_adds_the_member_before_telling_anyone() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        assert_eq!(
            core.knock(clock.now(), 7, "  Ada\u{7}  ", key(), Conn(2), addr(2)).unwrap(),
            KnockOutcome::Waiting(7)
        );
        let effects = drain(&mut core);
        assert_eq!(
            sent_to(&effects, HOST),
            vec![ControlMessage::Knock {
                request_id: 7,
                display_name: "Ada".into(),
                media_public_key: key(),
                waiting_since_ms: clock.now().unix_ms
            }]
        );
        assert_eq!(core.waiting(), vec![7]);

        assert_eq!(core.admit(clock.now(), 1, 7, blob(), || creds(2)).unwrap(), 2);
        let effects = drain(&mut core);
        assert!(matches!(&effects[0], Effect::MemberAdded { credentials, .. } if *credentials == creds(2)));
        let to_host = sent_to(&effects, HOST);
        assert!(
            matches!(&to_host[..], [ControlMessage::ParticipantJoined { participant }] if participant.id == 2 && !participant.is_host)
        );
        assert!(sent_to(&effects, Conn(2)).is_empty(), "the joiner learns the roster from its welcome");
        let Some(Effect::Admitted { to, request_id, participant_id, welcome }) = effects.last() else {
            panic!("admission ends with the joiner's welcome: {effects:?}");
        };
        assert_eq!((*to, *request_id, *participant_id), (Conn(2), 7, 2));
        assert_eq!(welcome.roster.iter().map(|p| p.id).collect::<Vec<_>>(), vec![1, 2]);
        assert!(core.waiting().is_empty());
    }

    #[test]
    fn only_the_host_answers_knocks_and_answers_need_a_live_knock() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        core.knock(clock.now(), 5, "Eve", key(), Conn(3), addr(3)).unwrap();
        drain(&mut core);

        let never = || -> Credentials { panic!("credentials are drawn only for an admission") };
        assert_eq!(core.admit(clock.now(), 2, 5, blob(), never).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.deny(2, 5).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.admit(clock.now(), 1, 99, blob(), never).unwrap_err().code, ErrorCode::UnknownParticipant);
        assert_eq!(core.admit(clock.now(), 42, 5, blob(), never).unwrap_err().code, ErrorCode::InvalidState);

        core.deny(1, 5).unwrap();
        let effects = drain(&mut core);
        assert!(matches!(effects[..], [Effect::Refused { to: Conn(3), request_id: 5, reason: JoinRefusal::Denied }]));
        assert_eq!(core.deny(1, 5).unwrap_err().code, ErrorCode::UnknownParticipant);
    }

    #[test]
    fn a_full_meeting_says_so_at_the_knock_and_at_the_admission() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        // Two knocks while one seat is left: the first admitted fills the meeting.
        core.knock(clock.now(), 2, "A", key(), Conn(3), addr(3)).unwrap();
        core.knock(clock.now(), 3, "B", key(), Conn(4), addr(4)).unwrap();
        core.admit(clock.now(), 1, 2, blob(), || creds(3)).unwrap();
        drain(&mut core);
        assert_eq!(core.admit(clock.now(), 1, 3, blob(), || creds(4)).unwrap_err().code, ErrorCode::MeetingFull);
        assert_eq!(core.waiting(), vec![3], "a refused admission leaves the knock for the host to deny");
        assert_eq!(core.knock(clock.now(), 4, "C", key(), Conn(5), addr(5)).unwrap(), KnockOutcome::Full);
        assert!(drain(&mut core).is_empty(), "a knock on a full meeting bothers nobody");
    }

    #[test]
    fn the_waiting_room_is_bounded() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        core.knock(clock.now(), 1, "A", key(), Conn(2), addr(2)).unwrap();
        core.knock(clock.now(), 2, "B", key(), Conn(3), addr(3)).unwrap();
        assert_eq!(core.knock(clock.now(), 3, "C", key(), Conn(4), addr(4)).unwrap_err().code, ErrorCode::ServerBusy);
        assert_eq!(core.waiting(), vec![1, 2]);
        assert!(core.withdraw_knock(1, KnockWithdrawal::Cancelled));
        assert_eq!(core.knock(clock.now(), 3, "C", key(), Conn(4), addr(4)).unwrap(), KnockOutcome::Waiting(3));
    }

    #[test]
    fn bad_display_names_are_refused_before_anything_happens() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        assert_eq!(
            core.knock(clock.now(), 1, " \u{0}\t ", key(), Conn(2), addr(2)).unwrap_err().code,
            ErrorCode::InvalidName
        );
        let long = "x".repeat(MAX_DISPLAY_NAME_CHARS + 1);
        assert_eq!(
            core.knock(clock.now(), 2, &long, key(), Conn(2), addr(2)).unwrap_err().code,
            ErrorCode::InvalidName
        );
        assert!(core.waiting().is_empty());
        assert!(drain(&mut core).is_empty());
    }

    #[test]
    fn a_withdrawn_or_disconnected_knock_is_taken_back_from_the_host() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        core.knock(clock.now(), 1, "A", key(), Conn(2), addr(2)).unwrap();
        core.knock(clock.now(), 2, "B", key(), Conn(3), addr(3)).unwrap();
        drain(&mut core);

        assert!(core.withdraw_knock(1, KnockWithdrawal::Expired));
        assert!(!core.withdraw_knock(1, KnockWithdrawal::Expired), "a knock is withdrawn once");
        core.remove_conn(clock.now(), 3, LeaveReason::Disconnected);
        let effects = drain(&mut core);
        assert_eq!(
            sent_to(&effects, HOST),
            vec![
                ControlMessage::KnockWithdrawn { request_id: 1, reason: KnockWithdrawal::Expired },
                ControlMessage::KnockWithdrawn { request_id: 2, reason: KnockWithdrawal::Disconnected },
            ]
        );
        assert!(core.waiting().is_empty());
    }

    fn held(limits: MeetingLimits) -> MeetingLimits {
        MeetingLimits { resume_grace: Duration::from_secs(30), ..limits }
    }

    fn updated(participant: &Participant) -> ControlMessage {
        ControlMessage::ParticipantUpdated { participant: participant.clone() }
    }

    #[test]
    fn a_dropped_participant_is_reconnecting_for_the_grace_window_then_leaves() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));

        let until = core.remove_conn(clock.now(), 2, LeaveReason::TimedOut).expect("the seat is held");
        assert_eq!(until, clock.now().at + Duration::from_secs(30));
        let effects = drain(&mut core);
        let guest = core.roster().into_iter().find(|p| p.id == 2).unwrap();
        assert!(guest.reconnecting);
        assert_eq!(sent_to(&effects, HOST), vec![updated(&guest)], "a roster state, not a leave");
        assert_eq!(sent_to(&effects, Conn(3)), vec![updated(&guest)]);
        assert!(!effects.iter().any(|e| matches!(e, Effect::MemberRemoved { .. })), "route and token stay");
        assert!(core.remove_conn(clock.now(), 2, LeaveReason::Disconnected).is_none(), "dropped once");

        clock.advance(Duration::from_millis(29_999));
        core.expire(clock.now());
        assert!(drain(&mut core).is_empty(), "still within the window");
        clock.advance(Duration::from_millis(1));
        core.expire(clock.now());
        let effects = drain(&mut core);
        assert!(matches!(effects[0], Effect::MemberRemoved { participant_id: 2, .. }));
        let left = ControlMessage::ParticipantLeft { participant_id: 2, reason: LeaveReason::TimedOut };
        assert_eq!(sent_to(&effects, HOST), vec![left.clone()]);
        assert_eq!(sent_to(&effects, Conn(3)), vec![left]);
        assert_eq!(core.roster().len(), 2);
        assert_eq!(
            core.resume(2, &secret(2), Conn(4), 0).unwrap_err().code,
            ErrorCode::ResumeRefused,
            "after the window the seat is gone"
        );
    }

    #[test]
    fn resuming_takes_the_seat_back_with_the_chat_missed_and_no_knock() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        core.chat(clock.now(), 2, "before the drop".into(), Some(1)).unwrap();
        core.remove_conn(clock.now(), 2, LeaveReason::Disconnected);
        clock.advance(Duration::from_secs(5));
        core.chat(clock.now(), 1, "during the drop".into(), None).unwrap();
        core.chat(clock.now(), 1, "still away".into(), None).unwrap();
        drain(&mut core);

        // Wrong secret, wrong id: the same refusal, and nothing changes.
        assert_eq!(core.resume(2, &secret(3), Conn(5), 1).unwrap_err().code, ErrorCode::ResumeRefused);
        assert_eq!(core.resume(9, &secret(9), Conn(5), 1).unwrap_err().code, ErrorCode::ResumeRefused);
        assert!(drain(&mut core).is_empty());

        let welcome = core.resume(2, &secret(2), Conn(5), 1).unwrap();
        assert_eq!((welcome.participant_id, welcome.host_id), (2, 1));
        assert_eq!((welcome.session_token.as_str(), welcome.resume_secret.expose()), ("session-2", secret(2).as_str()));
        let replayed: Vec<&str> = welcome.chat_history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(replayed, vec!["during the drop", "still away"], "only what came after last_chat_id 1");
        assert!(welcome.roster.iter().all(|p| !p.reconnecting));
        let effects = drain(&mut core);
        let guest = core.roster().into_iter().find(|p| p.id == 2).unwrap();
        assert!(!guest.reconnecting);
        assert_eq!(sent_to(&effects, HOST), vec![updated(&guest)]);
        assert!(!effects.iter().any(|e| matches!(e, Effect::Superseded { .. } | Effect::MemberAdded { .. })));

        // The new connection is the participant now; the old one's end changes nothing.
        clock.advance(Duration::from_secs(60));
        assert!(core.remove_conn(clock.now(), 2, LeaveReason::Disconnected).is_none());
        core.expire(clock.now());
        assert!(drain(&mut core).is_empty());
        core.chat(clock.now(), 1, "to the new connection".into(), None).unwrap();
        assert_eq!(sent_to(&drain(&mut core), Conn(5)).len(), 1);
    }

    #[test]
    fn a_resume_before_the_relay_saw_the_drop_closes_the_old_connection_quietly() {
        let clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        core.resume(2, &secret(2), Conn(7), 0).unwrap();
        let effects = drain(&mut core);
        assert!(
            matches!(
                effects[..],
                [Effect::Rerouted { participant_id: 2, conn: Conn(7) }, Effect::Superseded { to: Conn(2) }]
            ),
            "{effects:?}"
        );
        assert!(core.remove_conn(clock.now(), 2, LeaveReason::Disconnected).is_none(), "not a leave");
        assert!(drain(&mut core).is_empty());
    }

    #[test]
    fn a_chat_sent_again_after_a_resume_is_posted_once() {
        let clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        core.chat(clock.now(), 2, "one".into(), Some(1)).unwrap();
        core.chat(clock.now(), 2, "two".into(), Some(2)).unwrap();
        drain(&mut core);
        core.remove_conn(clock.now(), 2, LeaveReason::Disconnected);
        core.resume(2, &secret(2), Conn(5), 0).unwrap();
        drain(&mut core);
        // The client never saw 2 come back and sends it again, then a new one.
        core.chat(clock.now(), 2, "two".into(), Some(2)).unwrap();
        core.chat(clock.now(), 2, "three".into(), Some(3)).unwrap();
        let texts: Vec<String> = sent_to(&drain(&mut core), HOST)
            .into_iter()
            .filter_map(|m| match m {
                ControlMessage::Chat { message } => Some(message.text),
                _ => None,
            })
            .collect();
        assert_eq!(texts, vec!["three"]);
    }

    #[test]
    fn a_host_back_from_a_drop_sees_the_knocks_that_came_meanwhile_and_keeps_the_role() {
        let clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        core.remove_conn(clock.now(), HOST.0, LeaveReason::Disconnected);
        core.knock(clock.now(), 8, "Late", key(), Conn(4), addr(4)).unwrap();
        drain(&mut core);
        assert_eq!(core.host_id(), 1, "a reconnecting host stays host");
        core.resume(1, &secret(1), Conn(6), 0).unwrap();
        let effects = drain(&mut core);
        assert_eq!(
            sent_to(&effects, Conn(6)),
            vec![ControlMessage::Knock {
                request_id: 8,
                display_name: "Late".into(),
                media_public_key: key(),
                waiting_since_ms: clock.now().unix_ms
            }]
        );
    }

    #[test]
    fn the_host_role_passes_to_a_connected_participant_before_a_reconnecting_one() {
        let clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        core.remove_conn(clock.now(), 2, LeaveReason::Disconnected);
        core.leave(1, LeaveReason::Left);
        assert_eq!(core.host_id(), 3);
    }

    #[test]
    fn when_the_host_leaves_the_earliest_joiner_inherits_the_role_and_the_waiting_room() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        assert_eq!(core.knock(clock.now(), 9, "Late", key(), Conn(4), addr(4)).unwrap(), KnockOutcome::Waiting(9));
        drain(&mut core);

        core.remove_conn(clock.now(), HOST.0, LeaveReason::Disconnected);
        let effects = drain(&mut core);
        assert!(
            matches!(&effects[0], Effect::MemberRemoved { participant_id: 1, session_token } if session_token == "session-1")
        );
        assert_eq!(
            sent_to(&effects, Conn(2)),
            vec![
                ControlMessage::ParticipantLeft { participant_id: 1, reason: LeaveReason::Disconnected },
                ControlMessage::HostChanged { host_id: 2 },
                ControlMessage::Knock {
                    request_id: 9,
                    display_name: "Late".into(),
                    media_public_key: key(),
                    waiting_since_ms: clock.now().unix_ms
                },
            ]
        );
        assert_eq!(
            sent_to(&effects, Conn(3)),
            vec![
                ControlMessage::ParticipantLeft { participant_id: 1, reason: LeaveReason::Disconnected },
                ControlMessage::HostChanged { host_id: 2 },
            ]
        );
        assert_eq!(core.host_id(), 2);
        assert!(core.roster()[0].is_host);
        assert_eq!(core.admit(clock.now(), 3, 9, blob(), || creds(4)).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.admit(clock.now(), 2, 9, blob(), || creds(4)).unwrap(), 4);
    }

    /// The blocked/unblocked effects among `effects`, as (participant, blocked).
    fn audio_blocks(effects: &[Effect<Conn>]) -> Vec<(ParticipantId, bool)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::AudioBlocked { participant_id, blocked } => Some((*participant_id, *blocked)),
                _ => None,
            })
            .collect()
    }

    fn shown(core: &MeetingCore<Conn>, id: ParticipantId) -> Participant {
        core.roster().into_iter().find(|p| p.id == id).expect("in the roster")
    }

    #[test]
    fn a_locked_meeting_refuses_new_knocks_at_once_and_keeps_those_waiting() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        core.knock(clock.now(), 5, "Early", key(), Conn(5), addr(5)).unwrap();
        drain(&mut core);
        assert_eq!(core.lock(2, true).unwrap_err().code, ErrorCode::NotHost);
        core.lock(1, true).unwrap();
        let effects = drain(&mut core);
        for conn in [HOST, Conn(2)] {
            assert_eq!(sent_to(&effects, conn), vec![ControlMessage::MeetingLocked { locked: true, by: 1 }]);
        }
        core.lock(1, true).unwrap();
        assert!(drain(&mut core).is_empty(), "locking a locked meeting changes nothing");
        assert_eq!(core.knock(clock.now(), 6, "Late", key(), Conn(6), addr(6)).unwrap(), KnockOutcome::Locked);
        assert!(sent_to(&drain(&mut core), HOST).is_empty(), "a refused knock never reaches the host");
        assert_eq!(core.waiting(), vec![5], "the knock from before the lock still waits");
        assert!(core.welcome(2, None).locked);
        // A restart keeps the lock.
        clock.advance(Duration::from_secs(1));
        let record = core.record(1, Vec::new());
        let restored = MeetingCore::<Conn>::restore(record, limits(), clock.now(), clock.now().at, Path::new("/x"));
        assert!(restored.unwrap().welcome(2, None).locked);
        core.lock(1, false).unwrap();
        assert_eq!(sent_to(&drain(&mut core), Conn(2)), vec![ControlMessage::MeetingLocked { locked: false, by: 1 }]);
        assert_eq!(core.knock(clock.now(), 7, "Later", key(), Conn(7), addr(7)).unwrap(), KnockOutcome::Waiting(7));
    }

    #[test]
    fn a_cohost_sees_knocks_admits_with_its_own_seal_and_the_others_hear_it_was_answered() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        core.knock(clock.now(), 7, "Grace", key(), Conn(7), addr(7)).unwrap();
        drain(&mut core);
        // Only the host hands out roles; a plain participant moderates nothing.
        assert_eq!(core.set_role(2, 3, Role::CoHost).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.admit(clock.now(), 2, 7, blob(), || creds(4)).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.remove_participant(2, 3).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.set_role(1, 1, Role::CoHost).unwrap_err().code, ErrorCode::InvalidState);
        assert_eq!(core.set_role(1, 9, Role::CoHost).unwrap_err().code, ErrorCode::UnknownParticipant);

        core.set_role(1, 2, Role::CoHost).unwrap();
        let effects = drain(&mut core);
        let mut cohost = shown(&core, 2);
        assert!(cohost.is_cohost && !cohost.is_host);
        assert_eq!(sent_to(&effects, Conn(3)), vec![updated(&shown(&core, 1)), updated(&cohost)]);
        let to_cohost = sent_to(&effects, Conn(2));
        assert!(matches!(to_cohost.last(), Some(ControlMessage::Knock { request_id: 7, .. })), "{to_cohost:?}");

        core.admit(clock.now(), 2, 7, blob(), || creds(4)).unwrap();
        let effects = drain(&mut core);
        let Some(Effect::Admitted { welcome, .. }) = effects.last() else { panic!("not admitted: {effects:?}") };
        assert_eq!(welcome.media_key_from, Some(2), "the joiner opens the key with the co-host's public key");
        assert!(sent_to(&effects, HOST)
            .contains(&ControlMessage::KnockWithdrawn { request_id: 7, reason: KnockWithdrawal::Answered }));
        assert!(!sent_to(&effects, Conn(2)).iter().any(|m| matches!(m, ControlMessage::KnockWithdrawn { .. })));
        // A co-host moderates but neither locks, hands out roles, ends the meeting nor removes the host.
        assert_eq!(core.lock(2, true).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.set_role(2, 3, Role::CoHost).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.end_for_all(2).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.remove_participant(2, 1).unwrap_err().code, ErrorCode::NotHost);
        core.remove_participant(2, 4).unwrap();
        drain(&mut core);
        core.set_role(1, 2, Role::Participant).unwrap();
        cohost = shown(&core, 2);
        assert!(!cohost.is_cohost);
        assert_eq!(core.remove_participant(2, 3).unwrap_err().code, ErrorCode::NotHost);
    }

    #[test]
    fn a_cohost_who_inherits_the_host_role_is_shown_as_host_only_and_the_role_never_goes_to_someone_away() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, ..held(limits()) });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        core.set_role(1, 2, Role::CoHost).unwrap();
        core.remove_conn(clock.now(), 3, LeaveReason::Disconnected);
        assert_eq!(core.set_role(1, 3, Role::Host).unwrap_err().code, ErrorCode::InvalidState);
        drain(&mut core);
        core.leave(1, LeaveReason::Left);
        let effects = drain(&mut core);
        let heir = shown(&core, 2);
        assert!(heir.is_host && !heir.is_cohost);
        assert_eq!(
            sent_to(&effects, Conn(2)),
            vec![
                ControlMessage::ParticipantLeft { participant_id: 1, reason: LeaveReason::Left },
                ControlMessage::HostChanged { host_id: 2 },
                updated(&heir),
            ]
        );
    }

    #[test]
    fn the_host_hands_its_role_on_and_becomes_a_participant() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        core.knock(clock.now(), 7, "Grace", key(), Conn(7), addr(7)).unwrap();
        drain(&mut core);
        core.set_role(1, 2, Role::Host).unwrap();
        let effects = drain(&mut core);
        assert_eq!(core.host_id(), 2);
        let (old, new) = (shown(&core, 1), shown(&core, 2));
        assert!(!old.is_host && !old.is_cohost && new.is_host);
        let to_new = sent_to(&effects, Conn(2));
        assert_eq!(to_new[..3], [ControlMessage::HostChanged { host_id: 2 }, updated(&old), updated(&new)]);
        assert!(matches!(to_new[3], ControlMessage::Knock { request_id: 7, .. }), "the new host sees the waiting room");
        assert_eq!(core.lock(1, true).unwrap_err().code, ErrorCode::NotHost);
        core.lock(2, true).unwrap();
    }

    #[test]
    fn a_mute_holds_at_the_relay_until_the_participant_turns_its_mic_off_and_on_itself() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, media_state_burst: 20, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        core.media_state(clock.now(), 2, report(true, true, true)).unwrap();
        drain(&mut core);
        assert_eq!(core.mute(clock.now(), 3, 2).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.mute(clock.now(), 1, 1).unwrap_err().code, ErrorCode::InvalidState);
        core.mute(clock.now(), 1, 2).unwrap();
        let effects = drain(&mut core);
        assert_eq!(audio_blocks(&effects), vec![(2, true)]);
        let muted = shown(&core, 2);
        assert!(!muted.mic_on && !muted.speaking && muted.camera_on);
        assert_eq!(sent_to(&effects, Conn(2)), vec![ControlMessage::MutedByHost { by: 1 }, updated(&muted)]);
        assert_eq!(sent_to(&effects, Conn(3)), vec![updated(&muted)]);
        // A client that ignores the mute and says its mic is on stays muted, shown muted.
        core.media_state(clock.now(), 2, report(true, true, false)).unwrap();
        assert!(audio_blocks(&drain(&mut core)).is_empty());
        assert!(!shown(&core, 2).mic_on);
        // Its own click: off, then on.
        core.media_state(clock.now(), 2, report(false, true, false)).unwrap();
        assert!(audio_blocks(&drain(&mut core)).is_empty());
        core.media_state(clock.now(), 2, report(true, true, false)).unwrap();
        let effects = drain(&mut core);
        assert_eq!(audio_blocks(&effects), vec![(2, false)]);
        assert!(shown(&core, 2).mic_on);
        assert_eq!(sent_to(&effects, Conn(3)), vec![updated(&shown(&core, 2))]);
    }

    #[test]
    fn a_mute_that_comes_while_the_participant_is_away_is_told_when_it_resumes() {
        let clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        core.remove_conn(clock.now(), 2, LeaveReason::Disconnected);
        core.mute(clock.now(), 1, 2).unwrap();
        drain(&mut core);
        core.resume(2, &secret(2), Conn(5), 0).unwrap();
        let effects = drain(&mut core);
        assert_eq!(sent_to(&effects, Conn(5)), vec![ControlMessage::MutedByHost { by: 1 }]);
        // Its client turns the microphone off and the person unmutes: heard again.
        core.media_state(clock.now(), 2, report(false, false, false)).unwrap();
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        assert_eq!(audio_blocks(&drain(&mut core)), vec![(2, false)]);
    }

    #[test]
    fn unmuting_oneself_is_never_refused_by_the_rate_and_everyone_sees_it() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        core.mute(clock.now(), 1, 2).unwrap();
        // The participant spends its whole MEDIA_STATE allowance (burst 2).
        core.media_state(clock.now(), 2, report(true, false, true)).unwrap();
        assert_eq!(
            core.media_state(clock.now(), 2, report(true, true, false)).unwrap_err().code,
            ErrorCode::RateLimited
        );
        drain(&mut core);
        core.media_state(clock.now(), 2, report(false, false, false)).unwrap();
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        let effects = drain(&mut core);
        assert_eq!(audio_blocks(&effects), vec![(2, false)]);
        assert!(shown(&core, 2).mic_on);
        assert_eq!(sent_to(&effects, HOST), vec![updated(&shown(&core, 2))], "everyone sees it unmuted");
    }

    #[test]
    fn mute_all_mutes_everyone_but_the_sender_and_tells_only_those_whose_mic_was_on() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        core.media_state(clock.now(), 1, report(true, false, false)).unwrap();
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        drain(&mut core);
        core.mute_all(clock.now(), 1).unwrap();
        let effects = drain(&mut core);
        assert_eq!(audio_blocks(&effects), vec![(2, true), (3, true)]);
        assert!(shown(&core, 1).mic_on, "the sender keeps its microphone");
        assert_eq!(sent_to(&effects, Conn(2))[0], ControlMessage::MutedByHost { by: 1 });
        assert!(sent_to(&effects, Conn(3)).iter().all(|m| !matches!(m, ControlMessage::MutedByHost { .. })));
        // Participant 3's mic was off: the next "on" is its own click and lifts the mute.
        core.media_state(clock.now(), 3, report(true, false, false)).unwrap();
        assert_eq!(audio_blocks(&drain(&mut core)), vec![(3, false)]);
    }

    #[test]
    fn a_muted_participant_that_resumes_stays_muted_on_its_new_route() {
        let clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        core.mute(clock.now(), 1, 2).unwrap();
        drain(&mut core);
        core.remove_conn(clock.now(), 2, LeaveReason::Disconnected);
        core.resume(2, &secret(2), Conn(5), 0).unwrap();
        let effects = drain(&mut core);
        let rerouted = effects.iter().position(|e| matches!(e, Effect::Rerouted { participant_id: 2, .. }));
        let blocked =
            effects.iter().position(|e| matches!(e, Effect::AudioBlocked { participant_id: 2, blocked: true }));
        assert!(rerouted < blocked && rerouted.is_some(), "{effects:?}");
        assert_eq!(
            sent_to(&effects, Conn(5)),
            vec![ControlMessage::MutedByHost { by: 1 }],
            "told again on its new connection"
        );
        // A restart keeps it too: the seat must report off, then on.
        let record = core.record(1, Vec::new());
        assert_eq!(record.members[1].muted_by, Some(1));
        let mut restored =
            MeetingCore::<Conn>::restore(record, limits(), clock.now(), clock.now().at, Path::new("/x")).unwrap();
        drain(&mut restored);
        restored.resume(2, &secret(2), Conn(6), 0).unwrap();
        let effects = drain(&mut restored);
        assert_eq!(audio_blocks(&effects), vec![(2, true)]);
        assert_eq!(sent_to(&effects, Conn(6)), vec![ControlMessage::MutedByHost { by: 1 }]);
        restored.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        assert!(audio_blocks(&drain(&mut restored)).is_empty(), "on without off first lifts nothing");
    }

    #[test]
    fn a_moderator_asks_for_a_device_and_only_the_participant_hears_it() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        assert_eq!(core.request_media(clock.now(), 3, 2, MediaDevice::Mic).unwrap_err().code, ErrorCode::NotHost);
        core.request_media(clock.now(), 1, 2, MediaDevice::Camera).unwrap();
        let effects = drain(&mut core);
        assert_eq!(
            sent_to(&effects, Conn(2)),
            vec![ControlMessage::MediaRequested { by: 1, device: MediaDevice::Camera }]
        );
        assert!(sent_to(&effects, Conn(3)).is_empty());
        assert!(!shown(&core, 2).camera_on, "nothing turns on by itself");
        // Asking is within the moderator's rate.
        let refused = (0..10).filter(|_| core.request_media(clock.now(), 1, 2, MediaDevice::Mic).is_err()).count();
        assert!(refused > 0);
    }

    #[test]
    fn hands_are_numbered_in_the_order_raised_and_lowered_by_their_owner_or_a_moderator() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        core.raise_hand(clock.now(), 3, true).unwrap();
        core.raise_hand(clock.now(), 2, true).unwrap();
        core.raise_hand(clock.now(), 2, true).unwrap();
        let effects = drain(&mut core);
        assert_eq!(sent_to(&effects, HOST), vec![updated(&shown(&core, 3)), updated(&shown(&core, 2))]);
        assert_eq!((shown(&core, 3).hand_raised, shown(&core, 2).hand_raised), (Some(1), Some(2)));
        assert_eq!(core.lower_hand(clock.now(), 2, 3).unwrap_err().code, ErrorCode::NotHost);
        core.lower_hand(clock.now(), 1, 3).unwrap();
        assert_eq!(shown(&core, 3).hand_raised, None);
        clock.advance(Duration::from_secs(2));
        core.lower_hand(clock.now(), 2, 2).unwrap();
        assert_eq!(shown(&core, 2).hand_raised, None);
        clock.advance(Duration::from_secs(2));
        core.raise_hand(clock.now(), 3, true).unwrap();
        assert_eq!(shown(&core, 3).hand_raised, Some(3), "a hand raised again goes to the end of the line");
        // Raising and lowering shares the MEDIA_STATE rate.
        let flips = (0..6).filter(|i| core.raise_hand(clock.now(), 2, i % 2 == 0).is_err()).count();
        assert!(flips > 0);
    }

    #[test]
    fn reactions_reach_everyone_within_a_burst_of_five_then_one_a_second() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        for _ in 0..5 {
            core.react(clock.now(), 2, Reaction::Clap).unwrap();
        }
        let effects = drain(&mut core);
        let clap = ControlMessage::Reaction { participant_id: 2, reaction: Reaction::Clap };
        assert_eq!(sent_to(&effects, HOST), vec![clap.clone(); 5]);
        assert_eq!(sent_to(&effects, Conn(2)), vec![clap; 5], "the sender sees its own reactions as everyone does");
        let refused = core.react(clock.now(), 2, Reaction::Heart).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.hit, Some(LimitHit::Reactions));
        assert!(drain(&mut core).is_empty());
        clock.advance(Duration::from_secs(1));
        core.react(clock.now(), 2, Reaction::Heart).unwrap();
        assert!(core.react(clock.now(), 2, Reaction::Heart).is_err());
    }

    #[test]
    fn the_host_ends_the_meeting_for_everyone() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_participants: 4, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        core.set_role(1, 2, Role::CoHost).unwrap();
        core.publish_file(clock.now(), file(1, 300, 1)).unwrap();
        core.knock(clock.now(), 9, "Late", key(), Conn(9), addr(9)).unwrap();
        drain(&mut core);
        assert_eq!(core.end_for_all(3).unwrap_err().code, ErrorCode::NotHost);
        core.end_for_all(1).unwrap();
        let effects = drain(&mut core);
        let removed: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::MemberRemoved { participant_id, .. } => Some(*participant_id),
                _ => None,
            })
            .collect();
        assert_eq!(removed, vec![1, 2, 3]);
        let told: Vec<_> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::EndedBy { to, by: 1 } => Some(*to),
                _ => None,
            })
            .collect();
        assert_eq!(told, vec![HOST, Conn(2), Conn(3)]);
        assert!(effects.iter().any(|e| matches!(e, Effect::Ended { spool_bytes: 300 })));
        assert!(matches!(
            effects.last(),
            Some(Effect::Refused { request_id: 9, reason: JoinRefusal::MeetingEnded, .. })
        ));
        assert!(effects.iter().all(|e| !matches!(e, Effect::Deliver { .. })), "no PARTICIPANT_LEFT for anyone");
        assert!(core.is_ended() && core.roster().is_empty());
    }

    #[test]
    fn the_last_leave_ends_the_meeting_gives_back_the_spool_and_refuses_the_waiting_room() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        core.publish_file(clock.now(), file(1, 300, 1)).unwrap();
        core.publish_file(clock.now(), file(2, 45, 1)).unwrap();
        core.knock(clock.now(), 4, "A", key(), Conn(2), addr(2)).unwrap();
        drain(&mut core);

        assert!(core.leave(1, LeaveReason::Left));
        let effects = drain(&mut core);
        assert!(matches!(&effects[0], Effect::MemberRemoved { participant_id: 1, .. }));
        assert!(matches!(effects[1], Effect::Ended { spool_bytes: 345 }));
        assert!(matches!(
            effects[2..],
            [Effect::Refused { to: Conn(2), request_id: 4, reason: JoinRefusal::MeetingEnded }]
        ));
        assert!(core.is_ended());
        assert!(!core.leave(1, LeaveReason::Left), "nobody is left to leave");
        assert_eq!(
            core.knock(clock.now(), 5, "B", key(), Conn(3), addr(3)).unwrap_err().code,
            ErrorCode::UnknownMeeting
        );
        assert_eq!(core.publish_file(clock.now(), file(3, 1, 1)).unwrap_err().code, ErrorCode::UnknownFile);
    }

    #[test]
    fn a_recorded_meeting_restores_with_every_seat_held_its_chat_and_files_and_ids_going_on() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, held(limits()));
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));
        let changes = core.changes();
        core.chat(clock.now(), 2, "hello".into(), Some(4)).unwrap();
        assert!(core.changes() > changes, "a chat is a change to record");
        core.publish_file(clock.now(), file(1, 300, 1)).unwrap();
        drain(&mut core);

        let record = core.record(7, Vec::new());
        assert!(!format!("{record:?}").contains(&secret(2)), "no secret in a record's Debug");
        let json = serde_json::to_string(&record).unwrap();
        assert_eq!(serde_json::from_str::<MeetingRecord>(&json).unwrap(), record, "a record survives the disk");

        let until = clock.now().at + Duration::from_secs(20);
        let mut back =
            MeetingCore::<Conn>::restore(record.clone(), held(limits()), clock.now(), until, Path::new("/spool/m7"))
                .expect("a record with its host");
        let restored: Vec<ParticipantId> = drain(&mut back)
            .into_iter()
            .map(|e| match e {
                Effect::SeatRestored { credentials } => {
                    let id = credentials.participant_id;
                    assert!(credentials == creds(id), "seat {id} comes back with its own secrets");
                    id
                }
                other => panic!("only seats come back at first: {other:?}"),
            })
            .collect();
        assert_eq!(restored, vec![1, 2, 3]);
        assert_eq!(back.code(), "123456");
        assert!(back.roster().iter().all(|p| p.reconnecting), "nobody is connected yet");
        assert_eq!(back.host_id(), 1);
        assert_eq!(back.files_bytes(), 300);

        // A seat is taken back with its secret, as after any drop, on a new route.
        let welcome = back.resume(2, &secret(2), Conn(9), 1).unwrap();
        assert_eq!((welcome.participant_id, welcome.code.as_str()), (2, "123456"));
        let replayed: Vec<&str> = welcome.chat_history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(replayed, vec!["shared a file: f1.bin"], "what came after the chat it had seen");
        let effects = drain(&mut back);
        assert!(matches!(effects[0], Effect::Rerouted { participant_id: 2, conn: Conn(9) }), "{effects:?}");
        assert!(!effects.iter().any(|e| matches!(e, Effect::Superseded { .. })), "no old connection to close");
        assert!(back.is_offered_by(1, 1));
        // Chat ids and the exactly-once rule go on from the record.
        back.chat(clock.now(), 2, "sent again".into(), Some(4)).unwrap();
        assert!(drain(&mut back).is_empty(), "client_msg_id 4 was posted before the restart");
        back.chat(clock.now(), 2, "after".into(), Some(5)).unwrap();
        let sent = sent_to(&drain(&mut back), Conn(9));
        assert!(matches!(&sent[..], [ControlMessage::Chat { message }] if message.id == 3), "{sent:?}");

        // Seats not taken back by `until` are given up; the host role moves to who came back.
        clock.advance(Duration::from_secs(20));
        back.expire(clock.now());
        let gone: Vec<ParticipantId> = drain(&mut back)
            .iter()
            .filter_map(|e| match e {
                Effect::MemberRemoved { participant_id, .. } => Some(*participant_id),
                _ => None,
            })
            .collect();
        assert_eq!(gone, vec![1, 3]);
        assert_eq!(back.host_id(), 2);

        let hostless = MeetingRecord { members: record.members[1..].to_vec(), ..record };
        assert!(MeetingCore::<Conn>::restore(hostless, limits(), clock.now(), until, Path::new("/x")).is_none());
    }

    #[test]
    fn the_host_removes_a_participant_but_not_itself() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));

        assert_eq!(core.remove_participant(2, 3).unwrap_err().code, ErrorCode::NotHost);
        assert_eq!(core.remove_participant(1, 1).unwrap_err().code, ErrorCode::InvalidState);
        assert_eq!(core.remove_participant(1, 77).unwrap_err().code, ErrorCode::UnknownParticipant);
        assert!(drain(&mut core).is_empty());

        core.remove_participant(1, 3).unwrap();
        let effects = drain(&mut core);
        assert!(matches!(&effects[0], Effect::MemberRemoved { participant_id: 3, .. }));
        assert!(matches!(effects.last(), Some(Effect::Removed { to: Conn(3) })));
        assert_eq!(
            sent_to(&effects, Conn(2)),
            vec![ControlMessage::ParticipantLeft { participant_id: 3, reason: LeaveReason::Removed }]
        );
        assert_eq!(core.roster().iter().map(|p| p.id).collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn chat_is_rate_limited_per_sender_and_refills_with_time() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        for n in 0..3 {
            core.chat(clock.now(), 1, format!("m{n}"), Some(n)).unwrap();
        }
        assert_eq!(core.chat(clock.now(), 1, "over".into(), None).unwrap_err().code, ErrorCode::RateLimited);
        // Another sender has its own bucket.
        core.chat(clock.now(), 2, "mine".into(), None).unwrap();
        // Two per second: half a second buys one more message, not two.
        clock.advance(Duration::from_millis(500));
        core.chat(clock.now(), 1, "again".into(), None).unwrap();
        let refused = core.chat(clock.now(), 1, "over".into(), None).unwrap_err();
        assert_eq!(refused.code, ErrorCode::RateLimited);
        assert_eq!(refused.hit, Some(LimitHit::Chat));
        assert_eq!(refused.retry_after, Some(Duration::from_millis(500)));

        let effects = drain(&mut core);
        let to_guest = sent_to(&effects, Conn(2));
        let texts: Vec<_> = to_guest
            .iter()
            .map(|m| match m {
                ControlMessage::Chat { message } => (message.id, message.text.as_str(), message.timestamp_ms),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        let t0 = 1_700_000_000_000;
        assert_eq!(texts, vec![(1, "m0", t0), (2, "m1", t0), (3, "m2", t0), (4, "mine", t0), (5, "again", t0 + 500)]);
    }

    #[test]
    fn chat_refuses_empty_and_over_long_text_and_strangers() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        assert_eq!(core.chat(clock.now(), 1, " \n ".into(), None).unwrap_err().code, ErrorCode::MalformedMessage);
        assert_eq!(core.chat(clock.now(), 1, "é".repeat(101), None).unwrap_err().code, ErrorCode::ChatTooLong);
        core.chat(clock.now(), 1, "é".repeat(100), None).unwrap();
        assert_eq!(core.chat(clock.now(), 9, "hi".into(), None).unwrap_err().code, ErrorCode::InvalidState);
    }

    #[test]
    fn a_late_joiner_sees_the_newest_history_only() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, limits());
        for n in 0..6 {
            clock.advance(Duration::from_secs(1));
            core.chat(clock.now(), 1, format!("m{n}"), None).unwrap();
        }
        core.knock(clock.now(), 1, "Late", key(), Conn(2), addr(2)).unwrap();
        core.admit(clock.now(), 1, 1, blob(), || creds(2)).unwrap();
        let effects = drain(&mut core);
        let Some(Effect::Admitted { welcome, .. }) = effects.last() else { panic!("no welcome in {effects:?}") };
        let history: Vec<_> = welcome.chat_history.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(history, vec!["m2", "m3", "m4", "m5"]);
    }

    #[test]
    fn presenting_is_shown_to_everyone_and_survives_a_moderators_mute() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        let sharing = MediaReport { mic_on: true, camera_on: true, speaking: false, presenting: true };
        core.media_state(clock.now(), 2, sharing).unwrap();
        core.mute(clock.now(), 1, 2).unwrap();
        let effects = drain(&mut core);
        let shown: Vec<(bool, bool)> = sent_to(&effects, HOST)
            .into_iter()
            .filter_map(|m| match m {
                ControlMessage::ParticipantUpdated { participant } => {
                    Some((participant.presenting, participant.mic_on))
                }
                _ => None,
            })
            .collect();
        assert_eq!(shown, vec![(true, true), (true, false)], "muted, still presenting");
        core.media_state(clock.now(), 2, MediaReport { presenting: false, ..sharing }).unwrap();
        let effects = drain(&mut core);
        assert!(
            matches!(&sent_to(&effects, HOST)[..], [ControlMessage::ParticipantUpdated { participant }] if !participant.presenting)
        );
    }

    #[test]
    fn media_state_is_broadcast_only_when_it_changes() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        core.media_state(clock.now(), 2, report(true, false, true)).unwrap();
        let effects = drain(&mut core);
        let updates: Vec<_> = sent_to(&effects, HOST)
            .into_iter()
            .map(|m| match m {
                ControlMessage::ParticipantUpdated { participant } => (participant.mic_on, participant.speaking),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(updates, vec![(true, false), (true, true)]);
        assert_eq!(sent_to(&effects, Conn(2)).len(), 2, "the sender hears its own change too");
        assert_eq!(
            core.media_state(clock.now(), 9, report(true, true, true)).unwrap_err().code,
            ErrorCode::InvalidState
        );
    }

    #[test]
    fn uploads_and_downloads_hold_bounded_slots_that_are_given_back() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));

        assert_eq!(core.begin_upload(clock.now(), 1, 5).unwrap(), "Host");
        assert_eq!(core.begin_upload(clock.now(), 1, 5).unwrap_err().code, ErrorCode::ServerBusy);
        core.begin_upload(clock.now(), 2, 5).unwrap();
        core.end_upload(1);
        core.end_upload(1);
        core.begin_upload(clock.now(), 1, 5).unwrap();
        assert_eq!(core.begin_upload(clock.now(), 9, 5).unwrap_err().code, ErrorCode::InvalidState);

        core.publish_file(clock.now(), file(10, 5, 1)).unwrap();
        let effects = drain(&mut core);
        let to_guest = sent_to(&effects, Conn(2));
        assert!(matches!(&to_guest[..], [
            ControlMessage::Chat { message },
            ControlMessage::FileOffer { file },
        ] if message.file.as_ref().map(|f| f.file_id) == Some(10) && file.file_id == 10));

        assert_eq!(core.begin_download(2, 10).unwrap().info.size, 5);
        assert_eq!(core.begin_download(2, 10).unwrap_err().code, ErrorCode::ServerBusy);
        assert_eq!(core.begin_download(1, 11).unwrap_err().code, ErrorCode::UnknownFile);
        core.end_download(2);
        core.begin_download(2, 10).unwrap();

        core.publish_file(clock.now(), file(11, 5, 1)).unwrap();
        assert_eq!(
            core.begin_upload(clock.now(), 2, 5).unwrap_err().code,
            ErrorCode::ServerBusy,
            "the meeting holds max_files"
        );
    }

    #[test]
    fn a_departing_participant_gives_back_its_transfer_slots() {
        let clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        core.begin_upload(clock.now(), 2, 5).unwrap();
        core.leave(2, LeaveReason::Left);
        join(&mut core, &clock, 2, 2, Conn(3));
        core.begin_upload(clock.now(), 2, 5).unwrap();
    }

    #[test]
    fn media_state_changes_are_rate_limited_and_others_are_not_flooded() {
        let mut clock = Clock::new();
        let mut core = meeting(&clock, limits());
        join(&mut core, &clock, 1, 2, Conn(2));
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        core.media_state(clock.now(), 2, report(false, false, false)).unwrap();
        let refused = core.media_state(clock.now(), 2, report(true, false, false)).unwrap_err();
        assert_eq!((refused.code, refused.hit), (ErrorCode::RateLimited, Some(LimitHit::MediaState)));
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        // Repeating the current state costs nothing and says nothing.
        core.media_state(clock.now(), 2, report(false, false, false)).unwrap();
        // The host's own changes have their own allowance.
        core.media_state(clock.now(), 1, report(true, true, false)).unwrap();
        assert_eq!(sent_to(&drain(&mut core), HOST).len(), 3);
        clock.advance(Duration::from_secs(1));
        core.media_state(clock.now(), 2, report(true, false, false)).unwrap();
        assert!(core.roster()[1].mic_on);
    }

    #[test]
    fn one_address_cannot_fill_the_waiting_room() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_pending_knocks: 10, ..limits() });
        let from = addr(66);
        core.knock(clock.now(), 1, "A", key(), Conn(2), from).unwrap();
        core.knock(clock.now(), 2, "B", key(), Conn(3), from).unwrap();
        let refused = core.knock(clock.now(), 3, "C", key(), Conn(4), from).unwrap_err();
        assert_eq!((refused.code, refused.hit), (ErrorCode::ServerBusy, Some(LimitHit::PendingKnocksPerAddress)));
        assert_eq!(refused.retry_after, None, "a quota, not a rate");
        // Someone else still gets in line, and an answered knock frees its address's place.
        assert_eq!(core.knock(clock.now(), 4, "Guest", key(), Conn(5), addr(5)).unwrap(), KnockOutcome::Waiting(4));
        core.deny(1, 1).unwrap();
        assert_eq!(core.knock(clock.now(), 3, "C", key(), Conn(4), from).unwrap(), KnockOutcome::Waiting(3));
    }

    #[test]
    fn history_is_bounded_in_bytes_and_joined_always_fits_a_frame() {
        let mut clock = Clock::new();
        let limits = MeetingLimits {
            max_participants: 50,
            chat_history_len: 200,
            max_chat_chars: protocol::control::MAX_CHAT_CHARS,
            chat_burst: 1000,
            ..limits()
        };
        let mut core = meeting(&clock, limits.clone());
        // A full roster of the longest names, each character a 4-byte emoji.
        let long_name = "\u{1F600}".repeat(MAX_DISPLAY_NAME_CHARS);
        for n in 2..=50u32 {
            core.knock(clock.now(), u64::from(n), &long_name, key(), Conn(u64::from(n)), addr(u64::from(n))).unwrap();
            core.admit(clock.now(), 1, u64::from(n), blob(), || creds(n)).unwrap();
        }
        drain(&mut core);
        // 17 messages of 4,000 characters, some with quotes that JSON escapes.
        for n in 0..17 {
            clock.advance(Duration::from_millis(10));
            let text = format!("{n}:{}", "\"x".repeat(1998));
            core.chat(clock.now(), 1, text, None).unwrap();
        }
        drain(&mut core);
        let kept: usize = core.chat.iter().map(|k| k.bytes).sum();
        assert!(kept <= limits.chat_history_bytes, "history holds {kept} bytes");
        assert_eq!(core.chat_bytes, kept);
        let welcome = core.welcome(2, None);
        let joined = ControlMessage::Joined(welcome.clone()).encoded_len();
        assert!(joined <= protocol::framing::DEFAULT_MAX_FRAME_LEN, "JOINED is {joined} bytes");
        assert_eq!(joined, ControlMessage::Joined(welcome.clone()).to_json().len());
        // What is sent is the newest messages, in order.
        let texts: Vec<_> = welcome.chat_history.iter().map(|m| m.text.split(':').next().unwrap().to_owned()).collect();
        assert!(!texts.is_empty());
        assert_eq!(texts.last().map(String::as_str), Some("16"));
        assert!(welcome.chat_history.windows(2).all(|w| w[0].id + 1 == w[1].id));
    }

    #[test]
    fn a_message_larger_than_the_history_budget_is_broadcast_but_not_kept() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { chat_history_bytes: 300, ..limits() });
        core.chat(clock.now(), 1, "short".into(), None).unwrap();
        core.chat(clock.now(), 1, "y".repeat(100), None).unwrap();
        assert_eq!(core.welcome(1, None).chat_history.len(), 2);
        // Both no longer fit beside a third: the oldest go first to make room.
        core.chat(clock.now(), 1, "w".repeat(100), None).unwrap();
        let history: Vec<_> = core.welcome(1, None).chat_history.into_iter().map(|m| m.text).collect();
        assert_eq!(history, vec!["w".repeat(100)]);
        assert!(core.chat_bytes <= 300);
        let big = MeetingLimits { chat_history_bytes: 100, ..limits() };
        let mut core = meeting(&clock, big);
        core.chat(clock.now(), 1, "v".repeat(100), None).unwrap();
        assert_eq!(sent_to(&drain(&mut core), HOST).len(), 1);
        assert!(core.welcome(1, None).chat_history.is_empty());
    }

    #[test]
    fn file_offers_spend_the_senders_chat_allowance() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_uploads_per_participant: 10, ..limits() });
        for _ in 0..3 {
            core.begin_upload(clock.now(), 1, 5).unwrap();
        }
        let refused = core.begin_upload(clock.now(), 1, 5).unwrap_err();
        assert_eq!((refused.code, refused.hit), (ErrorCode::RateLimited, Some(LimitHit::Chat)));
        assert_eq!(core.chat(clock.now(), 1, "hi".into(), None).unwrap_err().code, ErrorCode::RateLimited);
    }

    #[test]
    fn spool_quotas_hold_per_participant_and_per_meeting_and_refunds_give_room_back() {
        let clock = Clock::new();
        let mut core = meeting(&clock, MeetingLimits { max_uploads_per_participant: 10, chat_burst: 20, ..limits() });
        join(&mut core, &clock, 1, 2, Conn(2));
        join(&mut core, &clock, 2, 3, Conn(3));

        // A file larger than a participant's share is refused before a byte moves.
        let refused = core.begin_upload(clock.now(), 2, 601).unwrap_err();
        assert_eq!((refused.code, refused.hit), (ErrorCode::ServerBusy, Some(LimitHit::ParticipantSpool)));
        assert!(refused.message.contains("one participant"), "{}", refused.message);

        // Participant 2 fills its share chunk by chunk; the chunk past it charges nothing.
        core.begin_upload(clock.now(), 2, 600).unwrap();
        core.charge_upload(2, 400).unwrap();
        core.charge_upload(2, 200).unwrap();
        let refused = core.charge_upload(2, 1).unwrap_err();
        assert_eq!(refused.hit, Some(LimitHit::ParticipantSpool));
        core.publish_file(clock.now(), file(10, 600, 2)).unwrap();
        core.end_upload(2);
        assert_eq!(core.begin_upload(clock.now(), 2, 1).unwrap_err().hit, Some(LimitHit::ParticipantSpool));

        // Others still have room, up to the meeting's quota: 1000 - 600 = 400 bytes.
        core.begin_upload(clock.now(), 3, 300).unwrap();
        core.charge_upload(3, 300).unwrap();
        let refused = core.begin_upload(clock.now(), 1, 101).unwrap_err();
        assert_eq!((refused.code, refused.hit), (ErrorCode::ServerBusy, Some(LimitHit::MeetingSpool)));
        assert!(refused.message.contains("this meeting"), "{}", refused.message);
        assert_eq!(core.charge_upload(3, 101).unwrap_err().hit, Some(LimitHit::MeetingSpool));

        // An abandoned upload gives its bytes back to both quotas.
        core.refund_upload(3, 300);
        core.end_upload(3);
        core.begin_upload(clock.now(), 1, 400).unwrap();
        core.charge_upload(1, 400).unwrap();
        assert_eq!(core.spooled, 1000);
        assert_eq!(core.spooled_by.get(&3), None, "an empty share is forgotten");

        // A participant who leaves keeps its files offered, and their bytes charged.
        core.leave(2, LeaveReason::Left);
        assert_eq!(core.charge_upload(1, 1).unwrap_err().hit, Some(LimitHit::MeetingSpool));
    }
}
