//! Meetings: the sans-IO state machine of one meeting ([`core`]), the relay-wide registry of
//! codes, ids and secrets ([`registry`]), and the wrapper here that runs the one with the
//! other and carries out what a meeting asks for.
//!
//! Each live meeting sits behind its own `std` mutex, so meetings never contend with each
//! other, and nothing that waits is ever done under it: an operation locks the core, calls it
//! with the time, and carries out its [`Effect`]s in order before unlocking — queueing
//! messages with `try_send`, pushing route updates into the non-blocking
//! [`RouteQueue`](crate::routes::RouteQueue), updating the session table. Doing them under the
//! lock keeps one order for everyone (of chat messages, joins, leaves) and puts a joiner's
//! route in place before it learns its id. The one slow thing, deleting an ended meeting's
//! spool, happens after the lock is released. Lock order is meeting → registry/sessions,
//! never the reverse, and no code path holds two meetings' locks.
//!
//! A connection whose outbound queue is full is too slow to keep up and is disconnected (its
//! own task then removes it from the meeting), so one stuck client never stalls a meeting
//! nor grows a queue without bound.

pub(crate) mod core;
pub(crate) mod record;
mod registry;
pub(crate) mod uploads;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::control::{
    ErrorCode, FileInfo, JoinRefusal, KeyDelivery, KnockWithdrawal, LeaveReason, MediaDevice, MeetingWelcome,
    ParticipantId, Reaction, Role,
};
use protocol::hop::HopSecret;
use protocol::ControlMessage;
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use self::core::{Connection, Effect, MeetingCore, Now};
pub(crate) use self::core::{KnockOutcome, MediaReport};
use self::record::{MeetingRecord, UploadRecord};
pub(crate) use self::registry::{IdCounters, Shared};
use self::uploads::{Claim, UploadBook};
use crate::files::UploadState;
use crate::limits::AddressKey;
use crate::routes::RouteUpdate;
use crate::stats::{LimitHit, Stats};

/// Locks a `std` mutex, ignoring poisoning: no code path panics while holding one, and the
/// maps they guard stay consistent between statements.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The current time for a meeting operation (the only place meetings read the clocks).
fn now() -> Now {
    let unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Now { at: Instant::now(), unix_ms }
}

/// A request that failed; the connection answers it with an `ERROR` and carries on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OpError {
    pub code: ErrorCode,
    pub message: String,
    /// The limit that refused the request, counted when the reply is made.
    pub hit: Option<LimitHit>,
    /// For `RATE_LIMITED`: when the same request would be accepted.
    pub retry_after: Option<Duration>,
}

impl OpError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), hit: None, retry_after: None }
    }

    /// A `RATE_LIMITED` refusal by `limit`, to be retried after `retry_after`.
    pub fn rate_limited(limit: LimitHit, message: impl Into<String>, retry_after: Duration) -> Self {
        Self { code: ErrorCode::RateLimited, message: message.into(), hit: Some(limit), retry_after: Some(retry_after) }
    }

    /// A refusal with `code` by a quota (not a rate: no time makes it pass), counted as `limit`.
    pub fn quota(limit: LimitHit, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { hit: Some(limit), ..Self::new(code, message) }
    }

    /// The `ERROR` that answers the request; counts a limit hit in `stats`.
    pub fn reply(&self, stats: &Stats) -> ControlMessage {
        if let Some(limit) = self.hit {
            stats.limit_hit(limit);
        }
        match self.retry_after {
            Some(retry_after) => ControlMessage::rate_limited(self.message.clone(), retry_after),
            None => ControlMessage::error(self.code, self.message.clone()),
        }
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
    /// Host `by` ended the meeting for everyone; write `MEETING_ENDED` and close.
    MeetingEnded { by: ParticipantId },
}

/// How a meeting reaches one connection.
#[derive(Debug, Clone)]
pub(crate) struct ConnHandle {
    pub id: u64,
    pub tx: mpsc::Sender<Outbound>,
    /// Cancelled to disconnect the connection (its queue overflowed).
    pub kill: CancellationToken,
    /// The keys of the media datagrams of whoever is on this connection, from its TLS session.
    pub hop: Arc<HopSecret>,
}

impl Connection for ConnHandle {
    fn conn_id(&self) -> u64 {
        self.id
    }
}

impl ConnHandle {
    /// Queues `out` without waiting. A full queue disconnects the connection.
    fn deliver(&self, stats: &Stats, out: Outbound) {
        match self.tx.try_send(out) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if !self.kill.is_cancelled() {
                    warn!(conn = self.id, "outbound queue full: disconnecting slow connection");
                    Stats::inc(&stats.slow_consumers);
                    self.kill.cancel();
                }
            }
            // The connection is gone; its task's cleanup takes it out of the meeting.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

/// A file spooled for a meeting.
#[derive(Debug, Clone)]
pub(crate) struct SpooledFile {
    pub info: FileInfo,
    pub path: PathBuf,
}

/// One live meeting: its core behind a lock, and what the relay's tasks need without it.
#[derive(Debug)]
pub(crate) struct Meeting {
    /// Relay-wide unique id (codes are reused after a meeting ends; ids never are).
    pub id: u64,
    pub code: String,
    pub spool_dir: PathBuf,
    /// Cancelled when the meeting ends, so its file transfers stop.
    pub ended: CancellationToken,
    core: Mutex<MeetingCore<ConnHandle>>,
    /// Uploads running and held for a resume; each running one can be stopped by its token.
    uploads: Mutex<UploadBook<CancellationToken, Box<UploadState>>>,
    /// Woken whenever an upload is held or finished, for a resume waiting on a running one.
    pub uploads_changed: Notify,
    /// Uploads not yet complete (running or held), as a restart must know them.
    uploads_in_flight: Mutex<BTreeMap<u64, UploadRecord>>,
    /// Set when something a restart must keep changed since the record was last taken.
    unsaved: AtomicBool,
    /// The same mark for the copy a cluster directory keeps ([`crate::directory`]).
    unsaved_in_directory: AtomicBool,
    /// Held while the meeting's record is written and while its spool is deleted, so the
    /// record of a meeting that ended is never written back.
    pub record_lock: tokio::sync::Mutex<()>,
    /// Files offered before this relay took the meeting over from one that died: they stayed
    /// there. Each participant resuming here is told so (`FILE_OFFER` with `lost`).
    pub lost_files: Mutex<Vec<FileInfo>>,
}

impl Meeting {
    fn new(id: u64, spool_root: &std::path::Path, core: MeetingCore<ConnHandle>, resume_grace: Duration) -> Self {
        Self {
            id,
            spool_dir: spool_root.join(format!("meeting-{id}")),
            code: core.code().to_string(),
            ended: CancellationToken::new(),
            core: Mutex::new(core),
            uploads: Mutex::new(UploadBook::new(resume_grace)),
            uploads_changed: Notify::new(),
            uploads_in_flight: Mutex::new(BTreeMap::new()),
            unsaved: AtomicBool::new(true),
            unsaved_in_directory: AtomicBool::new(true),
            record_lock: tokio::sync::Mutex::new(()),
            lost_files: Mutex::new(Vec::new()),
        }
    }

    /// The meeting as a restarted relay needs it; `None` once it ended.
    pub fn record(&self) -> Option<MeetingRecord> {
        let core = lock(&self.core);
        if core.is_ended() {
            return None;
        }
        let uploads = lock(&self.uploads_in_flight).values().cloned().collect();
        Some(core.record(self.id, uploads))
    }

    /// Whether the record changed since the last call (which clears the mark).
    pub fn take_unsaved(&self) -> bool {
        self.unsaved.swap(false, Ordering::AcqRel)
    }

    /// Closes every connection to this meeting (members keep their seats for a resume; knockers
    /// knock again): what a relay does with a meeting another relay of the cluster now hosts,
    /// after it took the meeting out of its registry, so that everyone resumes there.
    pub fn disconnect_everyone(&self) {
        for conn in lock(&self.core).connections() {
            conn.kill.cancel();
        }
    }

    /// Whether the record changed since the directory last copied it (which clears the mark).
    pub fn take_unsaved_in_directory(&self) -> bool {
        self.unsaved_in_directory.swap(false, Ordering::AcqRel)
    }

    /// Marks the directory's copy as not yet written (a write failed).
    pub fn mark_unsaved_in_directory(&self) {
        self.unsaved_in_directory.store(true, Ordering::Release);
    }

    /// Marks the record as not yet written (it changed, or a write failed).
    pub fn mark_unsaved(&self) {
        self.unsaved.store(true, Ordering::Release);
        self.unsaved_in_directory.store(true, Ordering::Release);
    }

    /// Runs `op` on the core and carries out what it asked for. Returns `op`'s result and
    /// whether this call ended the meeting (then its spool is the caller's to delete, with
    /// [`Self::delete_spool`], once it no longer holds anything).
    fn run<R>(self: &Arc<Self>, shared: &Shared, op: impl FnOnce(&mut MeetingCore<ConnHandle>, Now) -> R) -> (R, bool) {
        let mut core = lock(&self.core);
        let changes = core.changes();
        let result = op(&mut core, now());
        if core.changes() != changes {
            self.mark_unsaved();
        }
        let mut ended = false;
        while let Some(effect) = core.poll_effect() {
            ended |= matches!(effect, Effect::Ended { .. });
            self.carry_out(shared, effect);
        }
        (result, ended)
    }

    fn carry_out(self: &Arc<Self>, shared: &Shared, effect: Effect<ConnHandle>) {
        let stats = &shared.stats;
        match effect {
            Effect::Deliver { to, message } => to.deliver(stats, Outbound::Message(message)),
            Effect::Admitted { to, request_id, participant_id, welcome } => {
                // If this fails the joiner's connection is gone; its task's cleanup removes the member.
                to.deliver(stats, Outbound::Admitted { meeting: self.clone(), request_id, participant_id, welcome })
            }
            Effect::Refused { to, request_id, reason } => to.deliver(stats, Outbound::Refused { request_id, reason }),
            Effect::Removed { to } => to.deliver(stats, Outbound::Removed),
            Effect::EndedBy { to, by } => to.deliver(stats, Outbound::MeetingEnded { by }),
            Effect::AudioBlocked { participant_id, blocked } => {
                shared.routes.push(RouteUpdate::Mute { participant_id, muted: blocked });
            }
            // Its task ends; its cleanup finds the seat on the new connection and leaves it be.
            Effect::Superseded { to } => to.kill.cancel(),
            Effect::MemberAdded { credentials, conn } => {
                let participant_id = credentials.participant_id;
                shared.routes.push(RouteUpdate::Add { meeting_id: self.id, participant_id, hop: conn.hop.clone() });
                shared.add_session(credentials.session_token, self.clone(), participant_id);
                Stats::inc(&stats.participants_joined);
                Stats::inc(&stats.participants_live);
            }
            Effect::SeatRestored { credentials } => {
                shared.restore_participant_id(credentials.participant_id);
                shared.add_session(credentials.session_token, self.clone(), credentials.participant_id);
                Stats::inc(&stats.participants_live);
            }
            Effect::Rerouted { participant_id, conn } => {
                shared.routes.push(RouteUpdate::Reroute { meeting_id: self.id, participant_id, hop: conn.hop.clone() });
            }
            Effect::MemberRemoved { participant_id, session_token } => {
                shared.remove_session(&session_token);
                shared.routes.push(RouteUpdate::Remove { participant_id });
                // After the route removal is queued, so a reused id never meets the old route.
                shared.release_participant_id(participant_id);
                Stats::dec(&stats.participants_live);
            }
            Effect::Ended { spool_bytes } => {
                self.ended.cancel();
                shared.unregister(self);
                shared.release_spool(spool_bytes);
                Stats::dec(&stats.meetings_live);
                info!(meeting = %self.code, meeting_id = self.id, "meeting ended");
            }
        }
    }

    /// Deletes the spool of an ended meeting.
    async fn delete_spool(&self) {
        let _no_record_written = self.record_lock.lock().await;
        // The record first: a meeting that ended must not come back at the next start, even
        // if the rest of its spool cannot be deleted (or the relay dies meanwhile).
        match tokio::fs::remove_file(self.spool_dir.join(crate::persist::MEETING_FILE)).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(meeting = %self.code, "cannot delete the ended meeting's record: {e}"),
        }
        match tokio::fs::remove_dir_all(&self.spool_dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => warn!(meeting = %self.code, dir = %self.spool_dir.display(), "cannot delete spool: {e}"),
        }
    }

    /// Asks the host to admit `display_name`.
    pub fn knock(
        self: &Arc<Self>,
        shared: &Shared,
        display_name: &str,
        media_public_key: String,
        conn: ConnHandle,
        from: AddressKey,
    ) -> Result<KnockOutcome, OpError> {
        let request_id = shared.next_request_id();
        let (outcome, _) =
            self.run(shared, |core, now| core.knock(now, request_id, display_name, media_public_key, conn, from));
        if matches!(outcome, Ok(KnockOutcome::Waiting(_))) {
            Stats::inc(&shared.stats.knocks);
        }
        outcome
    }

    /// The host lets knock `request_id` in, with the meeting key sealed to it.
    pub fn admit(
        self: &Arc<Self>,
        shared: &Shared,
        host: ParticipantId,
        request_id: u64,
        media_key: String,
    ) -> Result<(), OpError> {
        self.run(shared, |core, now| core.admit(now, host, request_id, media_key, || shared.credentials()))
            .0
            .map(|_| ())
    }

    /// The host hands out a new meeting key.
    pub fn media_keys(
        self: &Arc<Self>,
        shared: &Shared,
        host: ParticipantId,
        keys: Vec<KeyDelivery>,
    ) -> Result<(), OpError> {
        self.run(shared, |core, now| core.media_keys(now, host, keys)).0
    }

    /// The host refuses knock `request_id`.
    pub fn deny(self: &Arc<Self>, shared: &Shared, host: ParticipantId, request_id: u64) -> Result<(), OpError> {
        self.run(shared, |core, _| core.deny(host, request_id)).0
    }

    /// Takes knock `request_id` off the queue because the joiner cancelled it or it expired.
    /// False if the knock was already answered (the answer is on its way).
    pub fn withdraw_knock(self: &Arc<Self>, shared: &Shared, request_id: u64, reason: KnockWithdrawal) -> bool {
        self.run(shared, |core, _| core.withdraw_knock(request_id, reason)).0
    }

    /// Connection `conn_id` went away for `reason`: its knock is withdrawn, and its
    /// participant's seat is held for the resume grace window, given up by a task that wakes
    /// when the window ends (or left at once without a window).
    pub async fn remove_conn(self: &Arc<Self>, shared: &Arc<Shared>, conn_id: u64, reason: LeaveReason) {
        let (held_until, ended) = self.run(shared, |core, now| core.remove_conn(now, conn_id, reason));
        if ended {
            self.delete_spool().await;
        }
        if let Some(until) = held_until {
            self.expire_at(shared, until);
        }
    }

    /// Gives up the seats still held at `until` then, unless the relay stops first.
    pub fn expire_at(self: &Arc<Self>, shared: &Arc<Shared>, until: Instant) {
        let (meeting, shared) = (self.clone(), shared.clone());
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(until.into()) => meeting.expire(&shared).await,
                // A relay that keeps its meetings holds the seats again when it starts; one
                // that does not has ended them.
                () = shared.shutdown.cancelled() => {}
            }
        });
    }

    /// Gives up the seats whose grace window has passed.
    pub async fn expire(self: &Arc<Self>, shared: &Shared) {
        let ((), ended) = self.run(shared, |core, now| core.expire(now));
        if ended {
            self.delete_spool().await;
        }
    }

    /// Participant `id` takes its seat back on connection `conn` with its resume secret.
    pub fn resume(
        self: &Arc<Self>,
        shared: &Shared,
        id: ParticipantId,
        resume_secret: &str,
        conn: ConnHandle,
        last_chat_id: u64,
    ) -> Result<MeetingWelcome, OpError> {
        let (result, _) = self.run(shared, |core, _| core.resume(id, resume_secret, conn, last_chat_id));
        if result.is_ok() {
            Stats::inc(&shared.stats.resumes);
        }
        result
    }

    /// Participant `id` leaves (or is dropped) for `reason`. False if it was not a member.
    pub async fn leave(self: &Arc<Self>, shared: &Shared, id: ParticipantId, reason: LeaveReason) -> bool {
        let (left, ended) = self.run(shared, |core, _| core.leave(id, reason));
        if ended {
            self.delete_spool().await;
        }
        left
    }

    /// The host removes participant `target`.
    pub fn remove_participant(
        self: &Arc<Self>,
        shared: &Shared,
        host: ParticipantId,
        target: ParticipantId,
    ) -> Result<(), OpError> {
        self.run(shared, |core, _| core.remove_participant(host, target)).0
    }

    /// The host locks or unlocks the meeting.
    pub fn lock(self: &Arc<Self>, shared: &Shared, host: ParticipantId, locked: bool) -> Result<(), OpError> {
        self.run(shared, |core, _| core.lock(host, locked)).0
    }

    /// The host makes `target` host, co-host or a plain participant.
    pub fn set_role(
        self: &Arc<Self>,
        shared: &Shared,
        host: ParticipantId,
        target: ParticipantId,
        role: Role,
    ) -> Result<(), OpError> {
        self.run(shared, |core, _| core.set_role(host, target, role)).0
    }

    /// A moderator mutes `target`, or everyone else with `None`.
    pub fn mute(
        self: &Arc<Self>,
        shared: &Shared,
        by: ParticipantId,
        target: Option<ParticipantId>,
    ) -> Result<(), OpError> {
        self.run(shared, |core, now| match target {
            Some(target) => core.mute(now, by, target),
            None => core.mute_all(now, by),
        })
        .0
    }

    /// A moderator asks `target` to turn `device` on.
    pub fn request_media(
        self: &Arc<Self>,
        shared: &Shared,
        by: ParticipantId,
        target: ParticipantId,
        device: MediaDevice,
    ) -> Result<(), OpError> {
        self.run(shared, |core, now| core.request_media(now, by, target, device)).0
    }

    /// Participant `id` raises or lowers its hand.
    pub fn raise_hand(self: &Arc<Self>, shared: &Shared, id: ParticipantId, raised: bool) -> Result<(), OpError> {
        self.run(shared, |core, now| core.raise_hand(now, id, raised)).0
    }

    /// `by` lowers `target`'s hand.
    pub fn lower_hand(
        self: &Arc<Self>,
        shared: &Shared,
        by: ParticipantId,
        target: ParticipantId,
    ) -> Result<(), OpError> {
        self.run(shared, |core, now| core.lower_hand(now, by, target)).0
    }

    /// Participant `id` reacts.
    pub fn react(self: &Arc<Self>, shared: &Shared, id: ParticipantId, reaction: Reaction) -> Result<(), OpError> {
        self.run(shared, |core, now| core.react(now, id, reaction)).0
    }

    /// The host ends the meeting for everyone; its spool is deleted.
    pub async fn end_for_all(self: &Arc<Self>, shared: &Shared, host: ParticipantId) -> Result<(), OpError> {
        let (result, ended) = self.run(shared, |core, _| core.end_for_all(host));
        if ended {
            self.delete_spool().await;
        }
        result
    }

    /// Stamps and broadcasts a chat message from `sender`.
    pub fn chat(
        self: &Arc<Self>,
        shared: &Shared,
        sender: ParticipantId,
        text: String,
        client_msg_id: Option<u64>,
    ) -> Result<(), OpError> {
        let (result, _) = self.run(shared, |core, now| core.chat(now, sender, text, client_msg_id));
        if result.is_ok() {
            Stats::inc(&shared.stats.chat_messages);
        }
        result
    }

    /// Participant `id` reports its mic, camera, speaking and presenting state.
    pub fn media_state(
        self: &Arc<Self>,
        shared: &Shared,
        id: ParticipantId,
        report: MediaReport,
    ) -> Result<(), OpError> {
        self.run(shared, |core, now| core.media_state(now, id, report)).0
    }

    /// Registers an upload of `size` bytes by `id`; returns the uploader's display name. A
    /// file that could not fit the meeting's, the participant's or the relay's spool as it is
    /// now is refused at once (nothing is reserved: [`Self::charge_upload`] charges the bytes).
    pub fn begin_upload(self: &Arc<Self>, shared: &Shared, id: ParticipantId, size: u64) -> Result<String, OpError> {
        let name = self.run(shared, |core, now| core.begin_upload(now, id, size)).0?;
        if !shared.spool_has_room(size) {
            self.end_upload(shared, id);
            return Err(OpError::new(ErrorCode::ServerBusy, "the relay's file spool is full"));
        }
        Ok(name)
    }

    /// Ends an upload registered with [`Self::begin_upload`].
    pub fn end_upload(self: &Arc<Self>, shared: &Shared, id: ParticipantId) {
        self.run(shared, |core, _| core.end_upload(id));
    }

    /// Charges `bytes` of an upload by `id` that just arrived to the meeting's and the
    /// participant's quotas and to the relay's spool, all or none of them.
    pub fn charge_upload(self: &Arc<Self>, shared: &Shared, id: ParticipantId, bytes: u64) -> Result<(), OpError> {
        self.run(shared, |core, _| core.charge_upload(id, bytes)).0?;
        if !shared.reserve_spool(bytes) {
            self.run(shared, |core, _| core.refund_upload(id, bytes));
            return Err(OpError::new(ErrorCode::ServerBusy, "the relay's file spool filled up during the upload"));
        }
        Ok(())
    }

    /// Gives back everything [`Self::charge_upload`] charged for an upload that will not
    /// become a file.
    pub fn refund_upload(self: &Arc<Self>, shared: &Shared, id: ParticipantId, bytes: u64) {
        self.run(shared, |core, _| core.refund_upload(id, bytes));
        shared.release_spool(bytes);
    }

    /// Offers a verified upload to the meeting. On error the caller still owns the file and
    /// its spool reservation.
    pub fn publish_file(self: &Arc<Self>, shared: &Shared, file: SpooledFile) -> Result<(), OpError> {
        let (result, _) = self.run(shared, |core, now| core.publish_file(now, file));
        if result.is_ok() {
            Stats::inc(&shared.stats.chat_messages);
        }
        result
    }

    /// Sends news of an upload (`FILE_PROGRESS`, `FILE_UPLOAD_STOPPED`) to everyone in the meeting.
    pub fn file_progress(self: &Arc<Self>, shared: &Shared, msg: ControlMessage) {
        self.run(shared, |core, _| core.broadcast_progress(msg));
    }

    /// Upload `file_id` of `uploader` runs on the connection `conn` can stop.
    pub fn upload_running(&self, file_id: u64, uploader: ParticipantId, conn: CancellationToken) {
        lock(&self.uploads).running(file_id, uploader, conn);
    }

    /// Upload `record` started; a restart keeps it until [`Self::upload_finished`].
    pub fn upload_started(&self, record: UploadRecord) {
        lock(&self.uploads_in_flight).insert(record.file_id, record);
        self.mark_unsaved();
    }

    /// Upload `file_id` ended for good: it can no longer be resumed.
    pub fn upload_finished(&self, file_id: u64) {
        lock(&self.uploads).finished(file_id);
        if lock(&self.uploads_in_flight).remove(&file_id).is_some() {
            self.mark_unsaved();
        }
        self.uploads_changed.notify_waiters();
    }

    /// Upload `state` lost its connection: holds it for a resume and returns until when, or
    /// gives it back (and forgets the upload) when it cannot be held (no grace window, or its
    /// uploader left).
    pub fn hold_upload(&self, state: Box<UploadState>) -> Result<Instant, Box<UploadState>> {
        if !lock(&self.core).is_member(state.uploader()) {
            self.upload_finished(state.file_id());
            return Err(state);
        }
        let held = lock(&self.uploads).hold(Instant::now(), state.file_id(), state);
        self.uploads_changed.notify_waiters();
        held
    }

    /// Bytes of the files offered in the meeting.
    fn files_bytes(&self) -> u64 {
        lock(&self.core).files_bytes()
    }

    /// An upload interrupted by a relay restart comes back as `state` (what arrived of
    /// `record`), held for a resume until `until`: its slot and bytes are charged again.
    /// Gives `state` back if its uploader has no seat or the quotas no longer have room.
    pub fn restore_upload(
        self: &Arc<Self>,
        shared: &Shared,
        record: UploadRecord,
        state: Box<UploadState>,
        until: Instant,
    ) -> Result<(), Box<UploadState>> {
        let received = state.received();
        if let Err(e) = self.run(shared, |core, _| core.restore_upload(record.uploader, received)).0 {
            warn!(meeting = %self.code, file_id = record.file_id, "upload not restored: {}", e.message);
            return Err(state);
        }
        shared.stats.spool_bytes.fetch_add(received, std::sync::atomic::Ordering::Relaxed);
        lock(&self.uploads).restore(record.file_id, record.uploader, until, state);
        lock(&self.uploads_in_flight).insert(record.file_id, record);
        Ok(())
    }

    /// `uploader` asks to resume upload `file_id` on the connection `conn` can stop; a held
    /// upload is handed over and runs on `conn` from now on.
    pub fn claim_upload(
        &self,
        file_id: u64,
        uploader: ParticipantId,
        conn: CancellationToken,
    ) -> Claim<CancellationToken, Box<UploadState>> {
        lock(&self.uploads).claim(file_id, uploader, conn)
    }

    /// Until when upload `file_id` is held, if it still is.
    pub fn upload_held_until(&self, file_id: u64) -> Option<Instant> {
        lock(&self.uploads).held_until(file_id)
    }

    /// Takes the held uploads whose window has passed, or all of them with `all`.
    pub fn expired_uploads(&self, all: bool) -> Vec<UploadState> {
        let mut book = lock(&self.uploads);
        let due = if all { book.drain_held() } else { book.expire(Instant::now()) };
        due.into_iter().map(|up| *up).collect()
    }

    /// Whether `file_id` is offered in this meeting and was sent by `id`.
    pub fn is_offered_by(&self, file_id: u64, id: ParticipantId) -> bool {
        lock(&self.core).is_offered_by(file_id, id)
    }

    /// Registers a download of `file_id` by `id`.
    pub fn begin_download(
        self: &Arc<Self>,
        shared: &Shared,
        id: ParticipantId,
        file_id: u64,
    ) -> Result<SpooledFile, OpError> {
        self.run(shared, |core, _| core.begin_download(id, file_id)).0
    }

    /// Ends a download registered with [`Self::begin_download`].
    pub fn end_download(self: &Arc<Self>, shared: &Shared, id: ParticipantId) {
        self.run(shared, |core, _| core.end_download(id));
    }
}
