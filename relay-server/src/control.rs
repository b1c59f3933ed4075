//! Control connections: one task per TCP connection.
//!
//! The first message decides what the connection is: `HELLO` makes it a control connection
//! (this module), `FILE_UPLOAD` / `FILE_DOWNLOAD` a file connection ([`crate::files`]). A
//! frame that is not a valid message gets an `ERROR` (`MALFORMED_MESSAGE`) and the connection
//! goes on; a length prefix over the limit cannot be resynchronized, so it closes that
//! connection only.
//!
//! A control connection is in one of three states: idle (said hello), waiting (knocked on a
//! meeting) or in a meeting. Its task `select!`s over the socket, its outbound queue (messages
//! and state changes pushed by meetings), a ping timer for liveness, while waiting the
//! knock's expiry and while idle the idle-before-join limit (a connection that joins nothing
//! gives its slot back). Writes are bounded by the liveness timeout, so a peer that stops
//! reading cannot pin the task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::control::{is_valid_meeting_code, ErrorCode, JoinRefusal, KnockWithdrawal, LeaveReason, ParticipantId};
use protocol::framing::{ControlFrames, FrameCodec, FrameError};
use protocol::{ControlMessage, PROTOCOL_VERSION};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::directory::{Directory, DirectoryError, Lookup, RelayRecord, ResumeLookup};
use crate::limits::{AddressKey, AddressRate};
use crate::meeting::{lock, ConnHandle, KnockOutcome, MediaReport, Meeting, OpError, Outbound, Shared};
use crate::stats::{LimitHit, Stats};
use crate::Stream;

type ControlStream = Framed<Stream, ControlFrames>;
use protocol::hop::HopSecret;

/// Serves one accepted TCP connection until it closes or the relay shuts down.
pub(crate) async fn serve(shared: Arc<Shared>, stream: Stream, peer: SocketAddr, shutdown: CancellationToken) {
    let mut framed = Framed::new(stream, ControlFrames(FrameCodec::default()));
    let liveness = shared.config.liveness_timeout;
    let deadline = Instant::now() + liveness;
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = tokio::time::timeout_at(deadline, framed.next()) => next,
        };
        let msg = match next {
            Err(_) => {
                debug!(%peer, "no first message in time: closing");
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => return frame_error(&shared, peer, e),
            Ok(Some(Ok(Err(e)))) => {
                Stats::inc(&shared.stats.malformed_messages);
                if !send_bounded(
                    &mut framed,
                    &ControlMessage::error(ErrorCode::MalformedMessage, e.to_string()),
                    liveness,
                )
                .await
                {
                    return;
                }
                continue;
            }
            Ok(Some(Ok(Ok(msg)))) => msg,
        };
        match msg {
            ControlMessage::Hello { protocol_version, client_name } => {
                if protocol_version != PROTOCOL_VERSION {
                    let error = ControlMessage::error(
                        ErrorCode::UnsupportedVersion,
                        format!("this relay speaks protocol version {PROTOCOL_VERSION}"),
                    );
                    send_bounded(&mut framed, &error, liveness).await;
                    return;
                }
                let welcome = ControlMessage::Welcome {
                    protocol_version: PROTOCOL_VERSION,
                    udp_port: shared.udp_port,
                    server_name: shared.config.server_name.clone(),
                    relays: shared.directory.as_ref().map(|d| d.other_relays()).unwrap_or_default(),
                };
                if !send_bounded(&mut framed, &welcome, liveness).await {
                    return;
                }
                // The keys of this participant's datagrams, known only to the two ends.
                let hop = match protocol::tls::export_hop_secret(&**framed.get_ref().get_ref().1) {
                    Ok(hop) => hop,
                    Err(e) => {
                        warn!(%peer, "cannot derive media keys from the TLS session: {e}");
                        return;
                    }
                };
                Stats::inc(&shared.stats.control_connections);
                debug!(%peer, client = %client_name, "control connection");
                return Session::new(shared, framed, hop, peer, shutdown).run().await;
            }
            msg @ (ControlMessage::FileUpload { .. }
            | ControlMessage::FileUploadResume { .. }
            | ControlMessage::FileDownload { .. }) => {
                return crate::files::serve(shared, framed, msg, peer, shutdown).await;
            }
            ControlMessage::Ping { nonce } => {
                if !send_bounded(&mut framed, &ControlMessage::Pong { nonce }, liveness).await {
                    return;
                }
            }
            other => {
                let error = ControlMessage::error(
                    ErrorCode::InvalidState,
                    format!(
                        "{} before HELLO; start with HELLO, FILE_UPLOAD, FILE_UPLOAD_RESUME or FILE_DOWNLOAD",
                        other.type_name()
                    ),
                );
                if !send_bounded(&mut framed, &error, liveness).await {
                    return;
                }
            }
        }
    }
}

/// Answers a connection over its address's connection limit with `SERVER_BUSY` and closes it.
pub(crate) async fn refuse(shared: Arc<Shared>, stream: Stream) {
    let mut framed = Framed::new(stream, ControlFrames(FrameCodec::default()));
    let max = shared.config.max_connections_per_address;
    let error =
        ControlMessage::error(ErrorCode::ServerBusy, format!("{max} connections from this address are already open"));
    // Bounded: a peer that does not read cannot hold the slot.
    if send_bounded(&mut framed, &error, Duration::from_secs(1)).await {
        close_tls(&mut framed).await;
    }
}

/// Ends the connection's TLS session with a `close_notify` alert, so the peer can tell the
/// relay's deliberate end from a cut. Bounded: a peer that does not read cannot hold the task.
pub(crate) async fn close_tls<T>(framed: &mut Framed<Stream, T>) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(Duration::from_secs(1), framed.get_mut().shutdown()).await;
}

/// Logs an unrecoverable framing error (the connection then closes).
pub(crate) fn frame_error(shared: &Shared, peer: SocketAddr, e: FrameError) {
    if let FrameError::TooLong { len, max } = e {
        Stats::inc(&shared.stats.oversized_frames);
        warn!(%peer, len, max, "frame over the limit: closing the connection");
    } else {
        debug!(%peer, "connection closed: {e}");
    }
}

/// Writes one message, giving up after `limit` (a peer that does not read).
pub(crate) async fn send_bounded<T>(framed: &mut Framed<Stream, T>, msg: &ControlMessage, limit: Duration) -> bool
where
    T: for<'a> tokio_util::codec::Encoder<&'a ControlMessage, Error = FrameError>,
{
    matches!(tokio::time::timeout(limit, framed.send(msg)).await, Ok(Ok(())))
}

/// Why a control connection's task ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Exit {
    /// The peer closed the connection or broke the framing.
    Closed,
    /// Nothing heard for the liveness timeout, or a write did not complete in it.
    TimedOut,
    /// Its outbound queue overflowed.
    Killed,
    /// The host removed it.
    Removed,
    /// It stayed in no meeting and no waiting room for the idle limit.
    IdleTooLong,
    /// The relay is shutting down.
    Shutdown,
}

#[derive(Debug)]
enum State {
    Idle,
    Waiting {
        meeting: Arc<Meeting>,
        request_id: u64,
        /// When the knock expires; `None` once the answer is known to be on its way.
        deadline: Option<Instant>,
        /// The joiner cancelled after the host had already answered: an admission that
        /// arrives is undone instead of announced.
        cancelled: bool,
    },
    InMeeting {
        meeting: Arc<Meeting>,
        id: ParticipantId,
    },
}

enum Step {
    Exit(Exit),
    Event(Option<Outbound>),
    Frame(Option<Result<Result<ControlMessage, FrameError>, FrameError>>),
    Ping,
    KnockExpired,
    IdleTooLong,
}

struct Session {
    shared: Arc<Shared>,
    framed: ControlStream,
    conn: ConnHandle,
    rx: mpsc::Receiver<Outbound>,
    state: State,
    last_heard: Instant,
    peer: SocketAddr,
    /// What the per-address limits count this connection as.
    from: AddressKey,
    shutdown: CancellationToken,
    next_nonce: u64,
}

impl Session {
    fn new(
        shared: Arc<Shared>,
        framed: ControlStream,
        hop: HopSecret,
        peer: SocketAddr,
        shutdown: CancellationToken,
    ) -> Self {
        let (tx, rx) = mpsc::channel(shared.config.outbound_queue_len.max(1));
        let conn = ConnHandle { id: shared.next_conn_id(), tx, kill: CancellationToken::new(), hop: Arc::new(hop) };
        Self {
            shared,
            framed,
            conn,
            rx,
            state: State::Idle,
            last_heard: Instant::now(),
            peer,
            from: AddressKey::from(peer.ip()),
            shutdown,
            next_nonce: 1,
        }
    }

    async fn run(mut self) {
        let liveness = self.shared.config.liveness_timeout;
        let ping_every = (liveness / 3).max(Duration::from_millis(10));
        let mut ping = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let idle_limit = self.shared.config.idle_before_join_timeout;
        // When the connection last became idle (in no meeting and no waiting room).
        let mut idle_since = Some(Instant::now());
        let exit = loop {
            let knock_deadline = match &self.state {
                State::Waiting { deadline: Some(d), .. } => Some(*d),
                _ => None,
            };
            idle_since = match (&self.state, idle_since) {
                (State::Idle, since) => since.or_else(|| Some(Instant::now())),
                _ => None,
            };
            let idle_deadline = idle_since.map(|since| since + idle_limit);
            let step = tokio::select! {
                biased;
                _ = self.shutdown.cancelled() => Step::Exit(Exit::Shutdown),
                _ = self.conn.kill.cancelled() => Step::Exit(Exit::Killed),
                event = self.rx.recv() => Step::Event(event),
                frame = self.framed.next() => Step::Frame(frame),
                _ = ping.tick() => Step::Ping,
                _ = tokio::time::sleep_until(knock_deadline.unwrap_or_else(Instant::now)), if knock_deadline.is_some() => Step::KnockExpired,
                _ = tokio::time::sleep_until(idle_deadline.unwrap_or_else(Instant::now)), if idle_deadline.is_some() => Step::IdleTooLong,
            };
            let result = match step {
                Step::Exit(exit) => Err(exit),
                // The session holds a sender itself, so the queue never closes while it runs.
                Step::Event(None) => Ok(()),
                Step::Event(Some(event)) => self.on_event(event).await,
                Step::Frame(frame) => self.on_frame(frame).await,
                Step::Ping => self.on_ping(liveness).await,
                Step::KnockExpired => self.on_knock_expired().await,
                Step::IdleTooLong => self.on_idle_too_long(idle_limit).await,
            };
            if let Err(exit) = result {
                break exit;
            }
        };
        self.cleanup(exit).await;
    }

    async fn send(&mut self, msg: &ControlMessage) -> Result<(), Exit> {
        let limit = self.shared.config.liveness_timeout;
        tokio::select! {
            result = tokio::time::timeout(limit, self.framed.send(msg)) => match result {
                Ok(Ok(())) => Ok(()),
                Ok(Err(_)) => Err(Exit::Closed),
                Err(_) => Err(Exit::TimedOut),
            },
            _ = self.conn.kill.cancelled() => Err(Exit::Killed),
        }
    }

    async fn on_frame(
        &mut self,
        frame: Option<Result<Result<ControlMessage, FrameError>, FrameError>>,
    ) -> Result<(), Exit> {
        match frame {
            None => Err(Exit::Closed),
            Some(Err(e)) => {
                frame_error(&self.shared, self.peer, e);
                Err(Exit::Closed)
            }
            Some(Ok(Err(e))) => {
                self.last_heard = Instant::now();
                Stats::inc(&self.shared.stats.malformed_messages);
                self.send(&ControlMessage::error(ErrorCode::MalformedMessage, e.to_string())).await
            }
            Some(Ok(Ok(msg))) => {
                self.last_heard = Instant::now();
                let reply = match self.on_message(msg).await {
                    Ok(reply) => reply,
                    Err(e) => Some(e.reply(&self.shared.stats)),
                };
                match reply {
                    Some(reply) => self.send(&reply).await,
                    None => Ok(()),
                }
            }
        }
    }

    /// Handles one request; returns the direct reply, if any.
    async fn on_message(&mut self, msg: ControlMessage) -> Result<Option<ControlMessage>, OpError> {
        use ControlMessage as M;
        let shared = self.shared.clone();
        let shared = &*shared;
        match msg {
            M::Ping { nonce } => Ok(Some(M::Pong { nonce })),
            M::Pong { .. } => Ok(None),
            M::CreateMeeting { display_name, media_public_key } => {
                self.require_idle()?;
                validate_public_key(&media_public_key)?;
                let over_rate = |retry_after| {
                    OpError::rate_limited(LimitHit::NewMeetings, "too many new meetings from this address", retry_after)
                };
                shared.address_check(self.from, AddressRate::NewMeeting).map_err(over_rate)?;
                // In a cluster: on a less loaded relay if this one is full, else under a code
                // claimed cluster-wide.
                let claimed_code = match &shared.directory {
                    None => None,
                    Some(directory) => {
                        if let Some(relay) = directory.placement() {
                            Stats::inc(&shared.stats.redirects);
                            info!(peer = %self.peer, to = %relay.address, "new meeting placed on a less loaded relay");
                            return Ok(Some(M::Redirect { relay: relay.address, fingerprint: relay.fingerprint, code: None }));
                        }
                        Some(directory.claim_new_code(shared).await.map_err(directory_unavailable)?)
                    }
                };
                let created = shared.address_take(self.from, AddressRate::NewMeeting).map_err(over_rate).and_then(|()| {
                    shared.create_meeting(&display_name, media_public_key, self.conn.clone(), claimed_code.clone())
                });
                let (meeting, welcome) = match created {
                    Ok(created) => created,
                    Err(e) => {
                        if let (Some(directory), Some(code)) = (&shared.directory, &claimed_code) {
                            // Not if a meeting here holds the code (the claim is then its).
                            if shared.find_meeting(code).is_none() {
                                directory.release_later(code);
                            }
                        }
                        return Err(e);
                    }
                };
                self.state = State::InMeeting { meeting, id: welcome.participant_id };
                Ok(Some(M::Joined(welcome)))
            }
            M::JoinRequest { code, display_name, media_public_key } => {
                self.require_idle()?;
                if !is_valid_meeting_code(&code) {
                    return Err(OpError::new(ErrorCode::InvalidCode, "meeting codes are six digits"));
                }
                validate_public_key(&media_public_key)?;
                let meeting = match self.find_meeting(&code).await? {
                    Found::Here(meeting) => meeting,
                    Found::Elsewhere(relay) => {
                        // Charged as a knock here would be: the answer says the code exists.
                        self.take_knock()?;
                        Stats::inc(&shared.stats.redirects);
                        debug!(peer = %self.peer, meeting = %code, to = %relay.address, "join redirected");
                        return Ok(Some(M::Redirect { relay: relay.address, fingerprint: relay.fingerprint, code: Some(code) }));
                    }
                };
                self.take_knock()?;
                match meeting.knock(shared, &display_name, media_public_key, self.conn.clone(), self.from)? {
                    KnockOutcome::Full => Ok(Some(M::JoinRefused { reason: JoinRefusal::MeetingFull })),
                    KnockOutcome::Locked => Ok(Some(M::JoinRefused { reason: JoinRefusal::Locked })),
                    KnockOutcome::Waiting(request_id) => {
                        let deadline = Some(Instant::now() + shared.config.knock_timeout);
                        self.state = State::Waiting { meeting, request_id, deadline, cancelled: false };
                        Ok(Some(M::Waiting { code, request_id }))
                    }
                }
            }
            M::Resume { code, participant_id, resume_secret, last_chat_id } => {
                self.require_idle()?;
                let refused = || OpError::new(ErrorCode::ResumeRefused, "no seat to resume: knock again");
                // A wrong code or secret costs a failed join, so RESUME cannot scan for codes.
                shared.address_check(self.from, AddressRate::FailedJoin).map_err(|retry_after| {
                    OpError::rate_limited(LimitHit::FailedJoins, "too many failed joins from this address", retry_after)
                })?;
                let mut meeting = shared.find_meeting(&code).filter(|_| is_valid_meeting_code(&code));
                if let (None, Some(directory), true) = (&meeting, &shared.directory, is_valid_meeting_code(&code)) {
                    match self.resume_in_cluster(directory, &code, participant_id, resume_secret.expose()).await? {
                        InCluster::Elsewhere(relay) => {
                            // The secret is not checked here: the answer is charged as a knock.
                            self.take_knock()?;
                            Stats::inc(&shared.stats.redirects);
                            debug!(peer = %self.peer, meeting = %code, to = %relay.address, "resume redirected");
                            let fingerprint = relay.fingerprint;
                            return Ok(Some(M::Redirect { relay: relay.address, fingerprint, code: Some(code) }));
                        }
                        InCluster::TakenOver(taken) => meeting = Some(taken),
                        InCluster::Nowhere => {}
                    }
                }
                let resumed = match meeting {
                    Some(meeting) => meeting
                        .resume(shared, participant_id, resume_secret.expose(), self.conn.clone(), last_chat_id)
                        .map(|welcome| (meeting, welcome)),
                    None => Err(refused()),
                };
                match resumed {
                    Ok((meeting, welcome)) => {
                        info!(peer = %self.peer, meeting = %meeting.code, participant = participant_id, "resumed");
                        // After RESUMED: the offers of files lost with the relay that died.
                        for file in lock(&meeting.lost_files).iter().cloned() {
                            let offer = Arc::new(M::FileOffer { file });
                            let _ = self.conn.tx.try_send(Outbound::Message(offer));
                        }
                        self.state = State::InMeeting { meeting, id: participant_id };
                        Ok(Some(M::Resumed(welcome)))
                    }
                    Err(e) => {
                        let _ = shared.address_take(self.from, AddressRate::FailedJoin);
                        Err(e)
                    }
                }
            }
            M::CancelJoin => {
                self.cancel_knock().await?;
                Ok(None)
            }
            M::Admit { request_id, media_key } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.admit(shared, id, request_id, media_key)?;
                Ok(None)
            }
            M::MediaKeys { keys } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.media_keys(shared, id, keys)?;
                Ok(None)
            }
            M::Deny { request_id } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.deny(shared, id, request_id)?;
                Ok(None)
            }
            M::RemoveParticipant { participant_id } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.remove_participant(shared, id, participant_id)?;
                Ok(None)
            }
            M::LockMeeting { locked } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.lock(shared, id, locked)?;
                Ok(None)
            }
            M::SetRole { participant_id, role } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.set_role(shared, id, participant_id, role)?;
                Ok(None)
            }
            M::MuteParticipant { participant_id } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.mute(shared, id, Some(participant_id))?;
                Ok(None)
            }
            M::MuteAll => {
                let (meeting, id) = self.require_meeting()?;
                meeting.mute(shared, id, None)?;
                Ok(None)
            }
            M::RequestMedia { participant_id, device } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.request_media(shared, id, participant_id, device)?;
                Ok(None)
            }
            M::RaiseHand { raised } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.raise_hand(shared, id, raised)?;
                Ok(None)
            }
            M::LowerHand { participant_id } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.lower_hand(shared, id, participant_id)?;
                Ok(None)
            }
            M::React { reaction } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.react(shared, id, reaction)?;
                Ok(None)
            }
            M::EndMeeting => {
                let (meeting, id) = self.require_meeting()?;
                // The meeting's own `MEETING_ENDED` reaches this connection too and closes it.
                meeting.end_for_all(shared, id).await?;
                Ok(None)
            }
            M::MediaState { mic_on, camera_on, speaking, presenting } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.media_state(shared, id, MediaReport { mic_on, camera_on, speaking, presenting })?;
                Ok(None)
            }
            M::ChatSend { text, client_msg_id } => {
                let (meeting, id) = self.require_meeting()?;
                meeting.chat(shared, id, text, client_msg_id)?;
                Ok(None)
            }
            M::StatsReport { report } => {
                if let State::InMeeting { meeting, id } = &self.state {
                    debug!(meeting = %meeting.code, participant = id, ?report, "client stats");
                }
                Ok(None)
            }
            M::Leave => match std::mem::replace(&mut self.state, State::Idle) {
                State::InMeeting { meeting, id } => {
                    meeting.leave(shared, id, LeaveReason::Left).await;
                    Ok(None)
                }
                waiting @ State::Waiting { .. } => {
                    self.state = waiting;
                    self.cancel_knock().await?;
                    Ok(None)
                }
                State::Idle => Err(OpError::new(ErrorCode::InvalidState, "not in a meeting")),
            },
            M::Error { code, message, .. } => {
                debug!(peer = %self.peer, ?code, %message, "client reported an error");
                Ok(None)
            }
            M::Hello { .. } => Err(OpError::new(ErrorCode::InvalidState, "HELLO was already received")),
            M::FileUpload { .. } | M::FileUploadResume { .. } | M::FileDownload { .. } => Err(OpError::new(
                ErrorCode::InvalidState,
                "file transfers use their own connection (FILE_UPLOAD, FILE_UPLOAD_RESUME or FILE_DOWNLOAD as its first message)",
            )),
            other => Err(OpError::new(
                ErrorCode::InvalidState,
                format!("{} is sent by the relay, not to it", other.type_name()),
            )),
        }
    }

    /// The meeting with `code`, charging a miss to this address's failed joins: an address
    /// out of them is refused before the lookup, so a scan learns nothing while locked out.
    /// The meeting `code`, here or (in a cluster) on the relay the directory names. A code no
    /// relay hosts is charged as a failed join.
    async fn find_meeting(&self, code: &str) -> Result<Found, OpError> {
        let shared = &self.shared;
        let locked_out = |retry_after| {
            OpError::rate_limited(
                LimitHit::FailedJoins,
                "too many joins with wrong codes from this address",
                retry_after,
            )
        };
        shared.address_check(self.from, AddressRate::FailedJoin).map_err(locked_out)?;
        if let Some(meeting) = shared.find_meeting(code) {
            return Ok(Found::Here(meeting));
        }
        if let Some(directory) = &shared.directory {
            match directory.lookup(code).await.map_err(directory_unavailable)? {
                Lookup::Elsewhere(relay) => return Ok(Found::Elsewhere(relay)),
                Lookup::OwnerGone => {
                    let _ = shared.address_take(self.from, AddressRate::Knock);
                    return Err(OpError::new(
                        ErrorCode::DirectoryUnavailable,
                        "the relay hosting this meeting is not answering: try again in a few seconds",
                    ));
                }
                // Ended a moment ago, or never existed.
                Lookup::Here | Lookup::Unknown => {}
            }
        }
        // The miss is charged; if it was the last one allowed, say so once.
        let charged = shared.address_take(self.from, AddressRate::FailedJoin);
        if let (Ok(()), Err(retry_after)) = (charged, shared.address_check(self.from, AddressRate::FailedJoin)) {
            warn!(peer = %self.peer, ?retry_after, "too many joins with wrong codes: address locked out of joining");
        }
        Err(OpError::new(ErrorCode::UnknownMeeting, "no meeting has this code"))
    }

    /// A `RESUME` for a meeting this relay does not host, in a cluster: the relay hosting it,
    /// or the meeting itself, taken over from a relay that died (only for a participant whose
    /// secret the meeting's state holds; of relays taking it over at once, one wins and the
    /// others redirect to it).
    async fn resume_in_cluster(
        &self,
        directory: &Directory,
        code: &str,
        participant_id: ParticipantId,
        resume_secret: &str,
    ) -> Result<InCluster, OpError> {
        let (record, owner) = match directory.locate_for_resume(code).await.map_err(directory_unavailable)? {
            ResumeLookup::Unknown => return Ok(InCluster::Nowhere),
            ResumeLookup::Elsewhere(relay) => return Ok(InCluster::Elsewhere(relay)),
            ResumeLookup::Orphaned { record, owner } => (record, owner),
        };
        let seat_holder = record.members.iter().any(|m| {
            m.participant.id == participant_id
                && protocol::resume::secrets_match(resume_secret, m.resume_secret.expose())
        });
        if !seat_holder {
            return Ok(InCluster::Nowhere);
        }
        let won = directory.take_over(code, owner.as_deref()).await.map_err(directory_unavailable)?;
        // Another seat holder's resume here took it over a moment ago.
        if let Some(meeting) = self.shared.find_meeting(code) {
            return Ok(InCluster::TakenOver(meeting));
        }
        if !won {
            return match directory.lookup(code).await.map_err(directory_unavailable)? {
                Lookup::Elsewhere(relay) => Ok(InCluster::Elsewhere(relay)),
                _ => Err(OpError::new(
                    ErrorCode::DirectoryUnavailable,
                    "the meeting is moving to another relay: try again in a few seconds",
                )),
            };
        }
        match self.shared.take_over_meeting(*record) {
            Some(meeting) => {
                info!(meeting = %code, from = owner.as_deref().unwrap_or("?"), "meeting taken over from a relay that is gone");
                Ok(InCluster::TakenOver(meeting))
            }
            // The claim lapses unrenewed and the state stays, for another relay to take it over.
            None => match self.shared.find_meeting(code) {
                Some(meeting) => Ok(InCluster::TakenOver(meeting)),
                None => {
                    Err(OpError::new(ErrorCode::ServerBusy, "this relay cannot take the meeting over: try another"))
                }
            },
        }
    }

    /// Spends one of the address's knocks (a knock, or an answer that tells a code is in use).
    fn take_knock(&self) -> Result<(), OpError> {
        self.shared.address_take(self.from, AddressRate::Knock).map_err(|retry_after| {
            OpError::rate_limited(LimitHit::Knocks, "knocking too often from this address", retry_after)
        })
    }

    fn require_idle(&self) -> Result<(), OpError> {
        match self.state {
            State::Idle => Ok(()),
            State::Waiting { .. } => Err(OpError::new(ErrorCode::InvalidState, "already waiting to join a meeting")),
            State::InMeeting { .. } => Err(OpError::new(ErrorCode::InvalidState, "already in a meeting")),
        }
    }

    fn require_meeting(&self) -> Result<(Arc<Meeting>, ParticipantId), OpError> {
        match &self.state {
            State::InMeeting { meeting, id } => Ok((meeting.clone(), *id)),
            _ => Err(OpError::new(ErrorCode::InvalidState, "not in a meeting")),
        }
    }

    async fn cancel_knock(&mut self) -> Result<(), OpError> {
        let State::Waiting { meeting, request_id, cancelled: false, .. } = &self.state else {
            return Err(OpError::new(ErrorCode::InvalidState, "not waiting to join a meeting"));
        };
        let (meeting, request_id) = (meeting.clone(), *request_id);
        if meeting.withdraw_knock(&self.shared, request_id, KnockWithdrawal::Cancelled) {
            self.state = State::Idle;
        } else {
            // The host answered first; its answer is in our queue and will be undone.
            self.state = State::Waiting { meeting, request_id, deadline: None, cancelled: true };
        }
        Ok(())
    }

    /// In no meeting and no waiting room for the whole idle limit: says why, then closes.
    async fn on_idle_too_long(&mut self, limit: Duration) -> Result<(), Exit> {
        self.shared.stats.limit_hit(LimitHit::IdleBeforeJoin);
        debug!(peer = %self.peer, "closing a connection that joined nothing");
        let message = format!("no meeting was created or joined within {} s; connect again", limit.as_secs_f64());
        self.send(&ControlMessage::error(ErrorCode::InvalidState, message)).await?;
        Err(Exit::IdleTooLong)
    }

    async fn on_knock_expired(&mut self) -> Result<(), Exit> {
        let State::Waiting { meeting, request_id, .. } = &mut self.state else { return Ok(()) };
        let (meeting, request_id) = (meeting.clone(), *request_id);
        if meeting.withdraw_knock(&self.shared, request_id, KnockWithdrawal::Expired) {
            self.state = State::Idle;
            self.send(&ControlMessage::JoinRefused { reason: JoinRefusal::Expired }).await
        } else {
            if let State::Waiting { deadline, .. } = &mut self.state {
                *deadline = None;
            }
            Ok(())
        }
    }

    async fn on_ping(&mut self, liveness: Duration) -> Result<(), Exit> {
        if self.last_heard.elapsed() >= liveness {
            info!(peer = %self.peer, "nothing heard for {liveness:?}: dropping the connection");
            return Err(Exit::TimedOut);
        }
        let nonce = self.next_nonce;
        self.next_nonce += 1;
        self.send(&ControlMessage::Ping { nonce }).await
    }

    async fn on_event(&mut self, event: Outbound) -> Result<(), Exit> {
        match event {
            Outbound::Message(msg) => self.send(&msg).await,
            Outbound::Admitted { meeting, request_id, participant_id, welcome } => match &self.state {
                State::Waiting { request_id: waiting_for, cancelled: false, .. } if *waiting_for == request_id => {
                    self.state = State::InMeeting { meeting, id: participant_id };
                    self.send(&ControlMessage::Joined(*welcome)).await
                }
                _ => {
                    // Cancelled (or stale): undo the admission.
                    if matches!(&self.state, State::Waiting { request_id: r, .. } if *r == request_id) {
                        self.state = State::Idle;
                    }
                    meeting.leave(&self.shared, participant_id, LeaveReason::Left).await;
                    Ok(())
                }
            },
            Outbound::Refused { request_id, reason } => match &self.state {
                State::Waiting { request_id: waiting_for, cancelled, .. } if *waiting_for == request_id => {
                    let cancelled = *cancelled;
                    self.state = State::Idle;
                    if cancelled {
                        Ok(())
                    } else {
                        self.send(&ControlMessage::JoinRefused { reason }).await
                    }
                }
                _ => Ok(()),
            },
            Outbound::Removed => {
                // The meeting already took this participant off its roster.
                self.state = State::Idle;
                self.send(&ControlMessage::Removed).await?;
                Err(Exit::Removed)
            }
            Outbound::MeetingEnded { by } => {
                // The meeting ended with everyone off its roster.
                self.state = State::Idle;
                self.send(&ControlMessage::MeetingEnded { by }).await?;
                Err(Exit::Removed)
            }
        }
    }

    async fn cleanup(mut self, exit: Exit) {
        let reason = match exit {
            Exit::TimedOut => LeaveReason::TimedOut,
            _ => LeaveReason::Disconnected,
        };
        match std::mem::replace(&mut self.state, State::Idle) {
            // The relay is stopping and keeps the meeting: the participant resumes once it is back.
            State::InMeeting { .. } if exit == Exit::Shutdown && self.shared.keeps_meetings() => {
                let grace = self.shared.config.resume_grace;
                let resume_within_ms = u64::try_from(grace.as_millis()).unwrap_or(u64::MAX);
                let restarting = ControlMessage::RelayRestarting { resume_within_ms };
                // Bounded: a peer that does not read cannot hold the stop up.
                if send_bounded(&mut self.framed, &restarting, Duration::from_secs(1)).await {
                    close_tls(&mut self.framed).await;
                }
                debug!(peer = %self.peer, "control connection closed: relay restarting");
                return;
            }
            // The relay is stopping: nothing it holds survives it, so there is no seat to keep.
            State::InMeeting { meeting, id } if exit == Exit::Shutdown => {
                meeting.leave(&self.shared, id, reason).await;
            }
            // A participant's seat is held for a resume; a knock is withdrawn.
            State::InMeeting { meeting, .. } | State::Waiting { meeting, .. } => {
                meeting.remove_conn(&self.shared, self.conn.id, reason).await
            }
            State::Idle => {}
        }
        // An admission may have been queued while the connection was ending.
        self.rx.close();
        while let Ok(event) = self.rx.try_recv() {
            if let Outbound::Admitted { meeting, participant_id, .. } = event {
                meeting.leave(&self.shared, participant_id, reason).await;
            }
        }
        if !matches!(exit, Exit::Closed | Exit::TimedOut) {
            close_tls(&mut self.framed).await;
        }
        debug!(peer = %self.peer, ?exit, "control connection closed");
    }
}

/// Where a meeting asked for is.
enum Found {
    Here(Arc<Meeting>),
    /// On another relay of the cluster.
    Elsewhere(RelayRecord),
}

/// Where a meeting to resume is, in a cluster.
enum InCluster {
    Nowhere,
    Elsewhere(RelayRecord),
    /// Here now, taken over from a relay that is gone.
    TakenOver(Arc<Meeting>),
}

/// The `ERROR` for a request the cluster directory could not answer.
fn directory_unavailable(e: DirectoryError) -> OpError {
    OpError::new(ErrorCode::DirectoryUnavailable, format!("{e}: try again in a few seconds"))
}

/// Refuses a `media_public_key` that is not an X25519 public key's 64 hex digits.
fn validate_public_key(key: &str) -> Result<(), OpError> {
    if protocol::e2ee::is_valid_public_key(key) {
        Ok(())
    } else {
        Err(OpError::new(ErrorCode::MalformedMessage, "media_public_key must be 64 hex digits"))
    }
}
