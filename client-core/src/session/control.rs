//! The session's control task: owns the control connection, turns [`Command`]s into
//! control messages and control messages into [`SessionEvent`]s, keeps the connection alive
//! (answers `PING`, sends its own every few seconds, gives up after 15 s of silence), and
//! starts and stops the media engine as the session enters and leaves a meeting.
//!
//! In a meeting, a broken connection (closed, silent, or no datagram from the relay for
//! [`protocol::resume::RELAY_SILENCE`]) is not the end: the task reconnects on the
//! [`ReconnectSchedule`] and presents its resume secret (`RESUME`), keeping the media engine
//! running — its datagram keys belong to the seat, not to the connection, so media flows
//! again as soon as the path does. Meanwhile chat typed is queued, and after `RESUMED` the
//! [`ChatLedger`] sends what never came back (with its original `client_msg_id`, so the relay
//! posts it once) and drops what the replay repeats; roster changes missed are replayed as
//! events and fed to the keyring.
//!
//! A relay of a cluster may answer `CREATE_MEETING` or `JOIN_REQUEST` with `REDIRECT`: the task
//! connects to the relay it names (accepting only the certificate it names), sends the same
//! request there and goes on with that relay, bounded by a [`RedirectTrail`].

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::control::{ErrorCode, FileInfo, MeetingWelcome, Participant};
use protocol::e2ee::{
    KeyringError, KeyringOutput, MediaIdentity, MediaPublicKey, MeetingKey, MeetingKeyring, MAX_REMEMBERED_KNOCKS,
};
use protocol::redirect::RedirectTrail;
use protocol::resume::ChatLedger;
use protocol::ControlMessage;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::engine::{Engine, EngineParams, Internal};
use super::events::{EventSender, FileFailure, SessionEvent};
use super::hand::HandAutoLower;
use super::options::SessionOptions;
use super::{Command, DeviceSwitch, SessionShared};
use crate::files::{self, FileContext};
use crate::net::control::{ControlConn, Handshake};
use crate::net::tls::RelayTrust;
use crate::stats::{FileDirection, FileTransferStats, TransferState};

/// How often we ping the relay.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// Silence after which the relay counts as gone.
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(15);
/// File offers remembered for `accept_file`.
const MAX_OFFERS: usize = 1000;
/// Transfers running at once.
const MAX_ACTIVE_TRANSFERS: usize = 16;
/// How long one resume attempt (connect, TLS, `HELLO`, `RESUME`) may take.
const RESUME_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting to the relay a `REDIRECT` names may take.
const REDIRECT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the session is with respect to a meeting.
enum Phase {
    Idle,
    Waiting,
    InMeeting(Box<Meeting>),
}

struct Meeting {
    welcome: MeetingWelcome,
    engine: Option<Engine>,
    speaking: bool,
    /// The meeting's end-to-end keys; `None` if the key could not be had (nothing is sent).
    keyring: Option<MeetingKeyring>,
    /// Chat seen and chat sent but not yet seen back, for exactly-once across resumes.
    chat: ChatLedger,
    /// (moderator) Knocks waiting, oldest first, for "admit all"; at most
    /// [`MAX_REMEMBERED_KNOCKS`], as the keyring keeps their keys.
    knocks: Vec<u64>,
    /// Lowers our raised hand once we have spoken for a few seconds.
    hand: HandAutoLower,
}

struct Transfer {
    /// The id `send_file` returned, for uploads.
    upload_id: Option<u64>,
    file_id: Option<u64>,
    direction: FileDirection,
    name: String,
    handle: JoinHandle<()>,
}

pub(crate) struct ControlTask {
    conn: ControlConn,
    relay: String,
    handshake: Handshake,
    options: SessionOptions,
    events: EventSender,
    shared: Arc<SessionShared>,
    commands: mpsc::Receiver<Command>,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    phase: Phase,
    /// Token of the last meeting we were in; file transfers keep using it after a leave
    /// until the relay refuses it.
    session_token: Option<String>,
    offers: BTreeMap<u64, FileInfo>,
    transfers: HashMap<u64, Transfer>,
    next_transfer_key: u64,
    next_nonce: u64,
    last_heard: Instant,
    /// Our X25519 key pair for the meeting we are creating or asking to join.
    identity: Option<MediaIdentity>,
    /// The `CREATE_MEETING` or `JOIN_REQUEST` not yet answered, and the relays it went to:
    /// what a `REDIRECT` sends elsewhere.
    pending: Option<PendingRequest>,
}

/// A request a relay of a cluster may redirect (docs/protocol.md §3.9).
struct PendingRequest {
    request: ControlMessage,
    trail: RedirectTrail,
}

/// Why the control loop ended.
enum Exit {
    Closed(Option<oneshot::Sender<()>>),
    Disconnected(String),
    /// Nothing came from the relay for `unheard`: the path is taken as broken.
    Unheard {
        reason: String,
        unheard: Duration,
    },
    /// The seat in meeting `code` could not be taken back.
    Lost {
        reason: String,
        code: String,
    },
}

/// How a relay another relay of its cluster named is checked: by the fingerprint it named,
/// and nothing is pinned (the user's pins stay theirs: the relay that named it vouches for this
/// connection only).
fn cluster_trust(trust: &RelayTrust, fingerprint: protocol::fingerprint::Fingerprint) -> RelayTrust {
    RelayTrust {
        expected: Some(fingerprint),
        pins: crate::net::tls::PinStore::default(),
        extra_roots: trust.extra_roots.clone(),
    }
}

/// What a relay answered a `RESUME`.
enum ResumeAnswer {
    Resumed(Box<(ControlConn, Handshake, MeetingWelcome)>),
    /// Another relay of the cluster hosts the meeting.
    Redirected(String, protocol::fingerprint::Fingerprint),
}

/// Why one resume attempt did not take the seat back.
enum AttemptError {
    /// The relay has no seat for us (the grace window passed): stop trying.
    Refused(String),
    /// Anything else (unreachable, timed out, rate limited): try again on the schedule.
    Failed(String),
}

impl ControlTask {
    pub(crate) fn new(
        conn: ControlConn,
        relay: String,
        handshake: Handshake,
        options: SessionOptions,
        events: EventSender,
        shared: Arc<SessionShared>,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        let (internal_tx, internal_rx) = mpsc::channel(64);
        Self {
            conn,
            relay,
            handshake,
            options,
            events,
            shared,
            commands,
            internal_tx,
            internal_rx,
            phase: Phase::Idle,
            session_token: None,
            offers: BTreeMap::new(),
            transfers: HashMap::new(),
            next_transfer_key: 1,
            next_nonce: 1,
            last_heard: Instant::now(),
            identity: None,
            pending: None,
        }
    }

    pub(crate) async fn run(mut self) {
        let exit = loop {
            let (reason, unheard) = match self.run_loop().await {
                Exit::Disconnected(reason) => (reason, Duration::ZERO),
                Exit::Unheard { reason, unheard } => (reason, unheard),
                exit => break exit,
            };
            // A broken connection: in a meeting, take the seat back (else the session ends).
            match self.reconnect(reason, unheard).await {
                Ok(()) => continue,
                Err(exit) => break exit,
            }
        };
        if let Phase::InMeeting(meeting) = std::mem::replace(&mut self.phase, Phase::Idle) {
            if let Some(engine) = meeting.engine {
                engine.stop().await;
            }
        }
        self.shared.video.close();
        for (_, t) in self.transfers.drain() {
            t.handle.abort();
        }
        match exit {
            Exit::Closed(done) => {
                let _ = SinkExt::<ControlMessage>::close(&mut self.conn).await;
                if let Some(done) = done {
                    let _ = done.send(());
                }
            }
            Exit::Disconnected(reason) | Exit::Unheard { reason, .. } => {
                tracing::info!("disconnected: {reason}");
                self.events.emit(SessionEvent::Disconnected { reason, meeting_code: None });
            }
            Exit::Lost { reason, code } => {
                tracing::info!("connection lost for good: {reason}");
                self.events.emit(SessionEvent::Disconnected { reason, meeting_code: Some(code) });
            }
        }
    }

    async fn run_loop(&mut self) -> Exit {
        let mut ping = tokio::time::interval(PING_INTERVAL);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let hand_due = self.in_meeting().and_then(|m| m.hand.deadline());
            tokio::select! {
                () = tokio::time::sleep_until(hand_due.unwrap_or_else(std::time::Instant::now).into()), if hand_due.is_some() => {
                    if let Err(exit) = self.lower_hand_if_due().await {
                        return exit;
                    }
                }
                frame = self.conn.next() => match frame {
                    None => return Exit::Disconnected("the relay closed the connection".into()),
                    Some(Err(e)) => return Exit::Disconnected(format!("control connection failed: {e}")),
                    Some(Ok(Err(e))) => {
                        // A complete but malformed frame: report it and carry on.
                        self.last_heard = Instant::now();
                        self.events.error(format!("malformed message from the relay: {e}"));
                    }
                    Some(Ok(Ok(msg))) => {
                        self.last_heard = Instant::now();
                        if let Err(exit) = self.on_message(msg).await {
                            return exit;
                        }
                    }
                },
                cmd = self.commands.recv() => match cmd {
                    None => {
                        self.leave_meeting().await;
                        return Exit::Closed(None);
                    }
                    Some(Command::Close(done)) => {
                        self.leave_meeting().await;
                        return Exit::Closed(Some(done));
                    }
                    Some(cmd) => {
                        if let Err(exit) = self.on_command(cmd).await {
                            return exit;
                        }
                    }
                },
                Some(internal) = self.internal_rx.recv() => {
                    if let Err(exit) = self.on_internal(internal).await {
                        return exit;
                    }
                }
                _ = ping.tick() => {
                    if self.last_heard.elapsed() > LIVENESS_TIMEOUT {
                        let reason = format!("nothing heard from the relay for {} s", LIVENESS_TIMEOUT.as_secs());
                        return Exit::Unheard { reason, unheard: self.last_heard.elapsed() };
                    }
                    let nonce = self.next_nonce;
                    self.next_nonce += 1;
                    if let Err(exit) = self.send(ControlMessage::Ping { nonce }).await {
                        return exit;
                    }
                    self.transfers.retain(|_, t| !t.handle.is_finished());
                }
            }
        }
    }

    async fn send(&mut self, msg: ControlMessage) -> Result<(), Exit> {
        self.conn.send(msg).await.map_err(|e| Exit::Disconnected(format!("cannot send to the relay: {e}")))
    }

    /// Sends `CREATE_MEETING` or `JOIN_REQUEST`, remembered until answered in case a relay of a
    /// cluster redirects it.
    async fn send_redirectable(&mut self, request: ControlMessage) -> Result<(), Exit> {
        self.pending =
            Some(PendingRequest { request: request.clone(), trail: RedirectTrail::starting_at(&self.relay) });
        self.send(request).await
    }

    fn in_meeting(&self) -> Option<&Meeting> {
        match &self.phase {
            Phase::InMeeting(m) => Some(m),
            _ => None,
        }
    }

    async fn on_message(&mut self, mut msg: ControlMessage) -> Result<(), Exit> {
        use ControlMessage as M;
        // Names reach the page and the file system; this client does not rely on the relay
        // having stripped what would make them read as something else.
        msg.sanitize_names();
        match msg {
            M::Ping { nonce } => self.send(M::Pong { nonce }).await?,
            M::Pong { .. } => {}
            M::Redirect { relay, fingerprint, code } => self.follow_redirect(relay, fingerprint, code).await?,
            M::Waiting { code, request_id } => {
                self.pending = None;
                self.phase = Phase::Waiting;
                self.events.emit(SessionEvent::Waiting { code, request_id });
            }
            M::Knock { request_id, display_name, media_public_key, waiting_since_ms } => {
                match (MediaPublicKey::from_hex(&media_public_key), self.keyring()) {
                    (Ok(public), Some(keyring)) => keyring.on_knock(request_id, public),
                    (Err(e), _) => tracing::warn!(request_id, "knock without a usable public key: {e}"),
                    (_, None) => {}
                }
                if let Phase::InMeeting(m) = &mut self.phase {
                    m.knocks.retain(|id| *id != request_id);
                    if m.knocks.len() >= MAX_REMEMBERED_KNOCKS {
                        m.knocks.remove(0);
                    }
                    m.knocks.push(request_id);
                }
                self.events.emit(SessionEvent::Knock { request_id, display_name, waiting_since_ms })
            }
            M::KnockWithdrawn { request_id, reason } => {
                self.forget_knock(request_id);
                self.events.emit(SessionEvent::KnockWithdrawn { request_id, reason })
            }
            M::MeetingLocked { locked, by } => {
                if let Phase::InMeeting(m) = &mut self.phase {
                    m.welcome.locked = locked;
                }
                self.events.emit(SessionEvent::MeetingLocked { locked, by });
            }
            M::MutedByHost { by } => {
                // The relay holds the mute: our microphone goes off, and our own click turns it on.
                self.shared.mic_on.store(false, Ordering::Relaxed);
                self.send_media_state().await?;
                self.events.emit(SessionEvent::MutedByHost { by });
            }
            M::MediaRequested { by, device } => self.events.emit(SessionEvent::MediaRequested { by, device }),
            M::MeetingEnded { by } => {
                self.stop_engine().await;
                self.phase = Phase::Idle;
                self.events.emit(SessionEvent::MeetingEnded { by });
            }
            M::Reaction { participant_id, reaction } => {
                self.events.emit(SessionEvent::Reaction { participant_id, reaction })
            }
            M::JoinRefused { reason } => {
                self.pending = None;
                self.phase = Phase::Idle;
                self.events.emit(SessionEvent::JoinRefused { reason });
            }
            M::Joined(welcome) => self.on_joined(welcome).await?,
            M::ParticipantJoined { participant } => {
                let (id, public) = (participant.id, MediaPublicKey::from_hex(&participant.media_public_key));
                self.track_roster(&participant);
                self.events.emit(SessionEvent::ParticipantJoined { participant });
                match public {
                    Ok(public) => self.on_keyring(|k| k.on_participant_joined(id, public)).await?,
                    Err(e) => tracing::warn!(participant = id, "participant without a usable public key: {e}"),
                }
            }
            M::ParticipantLeft { participant_id, reason } => {
                if let Phase::InMeeting(m) = &mut self.phase {
                    m.welcome.roster.retain(|p| p.id != participant_id);
                }
                if let Some(engine) = self.in_meeting().and_then(|m| m.engine.as_ref()) {
                    engine.participant_left(participant_id);
                }
                self.events.emit(SessionEvent::ParticipantLeft { participant_id, reason });
                self.on_keyring(|k| k.on_participant_left(participant_id)).await?;
            }
            M::ParticipantUpdated { participant } => {
                let old = self.track_roster(&participant);
                let was_reconnecting = old.as_ref().is_some_and(|old| old.reconnecting);
                let back = was_reconnecting && !participant.reconnecting;
                if old.is_some_and(|old| old.presenting) && !participant.presenting {
                    if let Some(engine) = self.in_meeting().and_then(|m| m.engine.as_ref()) {
                        engine.screen_stopped(participant.id);
                    }
                }
                let (id, public) = (participant.id, MediaPublicKey::from_hex(&participant.media_public_key));
                self.events.emit(SessionEvent::ParticipantUpdated { participant });
                // Back from a drop, it may have missed a rotation: as host we send the current key.
                if let (true, Ok(public)) = (back, public) {
                    self.on_keyring(|k| k.on_participant_joined(id, public)).await?;
                }
            }
            M::HostChanged { host_id } => {
                if let Phase::InMeeting(m) = &mut self.phase {
                    m.welcome.host_id = host_id;
                    let cohost = m.welcome.roster.iter().any(|p| p.id == m.welcome.participant_id && p.is_cohost);
                    if host_id != m.welcome.participant_id && !cohost {
                        // Knocks go to the moderators only; the ones we were shown are not ours.
                        m.knocks.clear();
                    }
                }
                self.events.emit(SessionEvent::HostChanged { host_id });
                self.on_keyring(|k| k.on_host_changed(host_id)).await?;
            }
            M::MediaKey { from, media_key } => {
                let Some(keyring) = self.keyring() else { return Ok(()) };
                match keyring.on_media_key(from, &media_key) {
                    Ok(key) => self.use_media_key(key),
                    // An older key crossing a newer one is expected; anything else is not.
                    Err(e @ KeyringError::NotNewer { .. }) => tracing::debug!("media key ignored: {e}"),
                    Err(e) => {
                        tracing::warn!("media key refused: {e}");
                        self.events.error(format!("a media key was refused: {e}"));
                    }
                }
            }
            M::Removed => {
                self.stop_engine().await;
                self.phase = Phase::Idle;
                self.events.emit(SessionEvent::Removed);
            }
            M::Chat { message } => self.on_chat(message),
            M::FileOffer { file } => {
                self.remember_offer(file.clone());
                self.events.emit(SessionEvent::FileOffer { file });
            }
            // The relay tells the uploader about its own upload too; that one already has its
            // own `FileProgress`/`FileDone`/`FileFailed` events.
            M::FileProgress { sender_id, .. } | M::FileUploadStopped { sender_id, .. }
                if self.in_meeting().is_some_and(|m| m.welcome.participant_id == sender_id) => {}
            M::FileProgress { file_id, name, sender_id, bytes, size } => {
                self.events.emit(SessionEvent::RemoteFileProgress { file_id, name, sender_id, bytes, size })
            }
            M::FileUploadStopped { file_id, name, sender_id, reason } => {
                self.events.emit(SessionEvent::RemoteFileStopped { file_id, name, sender_id, reason })
            }
            // The relay keeps the meeting across its restart: take the seat back when it is up.
            M::RelayRestarting { resume_within_ms } => {
                tracing::info!(resume_within_ms, "the relay is restarting");
                return Err(Exit::Disconnected("the relay is restarting".into()));
            }
            M::Error { code, message, retry_after_ms } => {
                tracing::warn!(?code, ?retry_after_ms, "relay error: {message}");
                self.events.emit(SessionEvent::Error { code: Some(code), message, retry_after_ms });
            }
            other => {
                tracing::debug!(kind = other.type_name(), "ignoring unexpected message");
            }
        }
        Ok(())
    }

    /// A knock left the waiting room (answered, withdrawn).
    fn forget_knock(&mut self, request_id: u64) {
        if let Some(keyring) = self.keyring() {
            keyring.on_knock_withdrawn(request_id);
        }
        if let Phase::InMeeting(m) = &mut self.phase {
            m.knocks.retain(|id| *id != request_id);
        }
    }

    /// (moderator) Admits knock `request_id` with the meeting key sealed to it.
    async fn admit(&mut self, request_id: u64) -> Result<(), Exit> {
        match self.keyring().map(|k| k.admit(request_id)) {
            Some(Ok(media_key)) => {
                self.forget_knock(request_id);
                self.send(ControlMessage::Admit { request_id, media_key }).await?
            }
            Some(Err(e)) => self.events.error(format!("cannot admit: {e}")),
            None => self.events.error("cannot admit without the meeting key"),
        }
        Ok(())
    }

    /// We have spoken long enough with our hand up: it comes down, as in Meet.
    async fn lower_hand_if_due(&mut self) -> Result<(), Exit> {
        let Phase::InMeeting(m) = &mut self.phase else { return Ok(()) };
        if m.hand.poll(std::time::Instant::now()) {
            tracing::debug!("spoke with the hand up: lowering it");
            self.send(ControlMessage::RaiseHand { raised: false }).await?;
        }
        Ok(())
    }

    /// Keeps our copy of the roster current (what a resume compares the relay's with); returns
    /// the participant's previous entry.
    fn track_roster(&mut self, participant: &Participant) -> Option<Participant> {
        let Phase::InMeeting(m) = &mut self.phase else { return None };
        if participant.id == m.welcome.participant_id {
            m.hand.set_raised(participant.hand_raised.is_some(), std::time::Instant::now());
            if !participant.is_moderator() {
                m.knocks.clear();
            }
        }
        match m.welcome.roster.iter_mut().find(|p| p.id == participant.id) {
            Some(entry) => Some(std::mem::replace(entry, participant.clone())),
            None => {
                m.welcome.roster.push(participant.clone());
                None
            }
        }
    }

    /// Keeps a chat message we send until it comes back stamped, to send again after a resume.
    fn remember_sent_chat(&mut self, client_msg_id: u64, text: String) {
        if let Phase::InMeeting(m) = &mut self.phase {
            if let Some(dropped) = m.chat.on_send(client_msg_id, text) {
                tracing::warn!(client_msg_id = dropped, "an unacknowledged chat message is no longer kept");
            }
        }
    }

    /// A stamped chat message, live or replayed: shown once.
    fn on_chat(&mut self, message: protocol::control::ChatMessage) {
        if let Phase::InMeeting(m) = &mut self.phase {
            let mine = message.sender_id == m.welcome.participant_id;
            if !m.chat.on_message(&message, mine) {
                return;
            }
        }
        if let Some(file) = &message.file {
            self.remember_offer(file.clone());
        }
        self.events.emit(SessionEvent::Chat { message });
    }

    fn remember_offer(&mut self, file: FileInfo) {
        self.offers.insert(file.file_id, file);
        while self.offers.len() > MAX_OFFERS {
            self.offers.pop_first();
        }
    }

    /// Our keyring, in a meeting whose key we have.
    fn keyring(&mut self) -> Option<&mut MeetingKeyring> {
        match &mut self.phase {
            Phase::InMeeting(m) => m.keyring.as_mut(),
            _ => None,
        }
    }

    /// Feeds the keyring a roster change and carries out what it asks: a new key for our
    /// media, keys for the others (we are the host), the safety code shown again.
    async fn on_keyring(
        &mut self,
        input: impl FnOnce(&mut MeetingKeyring) -> Result<KeyringOutput, KeyringError>,
    ) -> Result<(), Exit> {
        let Some(keyring) = self.keyring() else { return Ok(()) };
        let output = match input(keyring) {
            Ok(output) => output,
            Err(e) => {
                tracing::warn!("meeting key: {e}");
                self.events.error(format!("cannot hand out the meeting key: {e}"));
                return Ok(());
            }
        };
        if let Some(key) = output.new_key {
            self.use_media_key(key);
        } else {
            self.emit_encryption();
        }
        if !output.deliveries.is_empty() {
            self.send(ControlMessage::MediaKeys { keys: output.deliveries }).await?;
        }
        Ok(())
    }

    /// Seals and opens our media with `key` from now on.
    fn use_media_key(&mut self, key: MeetingKey) {
        if let Some(engine) = self.in_meeting().and_then(|m| m.engine.as_ref()) {
            if let Err(e) = engine.install_media_key(key) {
                self.events.error(format!("cannot use the new meeting key: {e}"));
            }
        }
        self.emit_encryption();
    }

    /// Tells the UI the key's epoch and the safety code of the key and the roster.
    fn emit_encryption(&mut self) {
        let Some(keyring) = self.keyring() else { return };
        let (Some(epoch), Some(safety_code)) = (keyring.epoch(), keyring.safety_code()) else { return };
        self.events.emit(SessionEvent::Encryption { epoch, safety_code });
    }

    /// A fresh key pair for the meeting we are about to create or knock on; its public half
    /// goes in the request.
    fn new_identity(&mut self) -> Option<String> {
        match MediaIdentity::generate() {
            Ok(identity) => {
                let public = identity.public().to_hex();
                self.identity = Some(identity);
                Some(public)
            }
            Err(e) => {
                self.events.error(format!("cannot make an encryption key: {e}"));
                None
            }
        }
    }

    /// Sends the request a relay redirected to the relay it names, over a new control
    /// connection that accepts only the certificate it names; the request stays as it was
    /// (same key pair), and the session goes on with the new relay (media, files, resumes).
    /// A redirect that cannot be followed is reported, and the session stays where it was.
    async fn follow_redirect(
        &mut self,
        relay: String,
        fingerprint: protocol::fingerprint::Fingerprint,
        code: Option<String>,
    ) -> Result<(), Exit> {
        let Some(mut pending) = self.pending.take() else {
            tracing::debug!(%relay, "REDIRECT without a request waiting for an answer: ignored");
            return Ok(());
        };
        let asked = match &pending.request {
            ControlMessage::JoinRequest { code, .. } => Some(code),
            _ => None,
        };
        if asked != code.as_ref() {
            self.events.error(format!(
                "the relay redirected a request for meeting {} as one for {}: not followed",
                asked.map_or("(new)", String::as_str),
                code.as_deref().unwrap_or("(new)")
            ));
            return Ok(());
        }
        if let Err(e) = pending.trail.follow(&relay) {
            self.events.error(format!("cannot reach the meeting: {e}"));
            return Ok(());
        }
        let trust = cluster_trust(&self.options.trust, fingerprint);
        let connecting =
            crate::net::control::connect(&relay, &trust, &self.options.client_name, REDIRECT_CONNECT_TIMEOUT);
        match connecting.await {
            Ok((conn, handshake)) => {
                tracing::info!(from = %self.relay, to = %relay, "request redirected to another relay of the cluster");
                let mut previous = std::mem::replace(&mut self.conn, conn);
                // The previous relay closes an idle connection anyway; this tells it at once.
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), SinkExt::<ControlMessage>::close(&mut previous)).await;
                self.relay = relay;
                self.handshake = handshake;
                self.last_heard = Instant::now();
                self.send(pending.request.clone()).await?;
                self.pending = Some(pending);
            }
            Err(e) => {
                let place = if code.is_some() { "The meeting is hosted on" } else { "The new meeting was placed on" };
                self.events.error(format!("{place} relay {relay}, which cannot be reached: {e}"));
            }
        }
        Ok(())
    }

    async fn on_joined(&mut self, welcome: MeetingWelcome) -> Result<(), Exit> {
        self.pending = None;
        self.stop_engine().await;
        let keyring = self.identity.take().ok_or(KeyringError::MissingKey).and_then(|identity| {
            let roster = welcome
                .roster
                .iter()
                .filter_map(|p| MediaPublicKey::from_hex(&p.media_public_key).ok().map(|k| (p.id, k)));
            MeetingKeyring::join(
                identity,
                welcome.participant_id,
                welcome.host_id,
                roster,
                welcome.media_key.as_deref(),
                welcome.media_key_from,
            )
        });
        let (keyring, media_key) = match keyring {
            Ok((keyring, key)) => (Some(keyring), Some(key)),
            Err(e) => {
                tracing::warn!("no meeting key: {e}");
                self.events.error(format!("cannot open the meeting's media key ({e}); no media is sent or shown"));
                (None, None)
            }
        };
        let mut chat = ChatLedger::new();
        for message in &welcome.chat_history {
            chat.on_message(message, message.sender_id == welcome.participant_id);
            if let Some(file) = &message.file {
                self.remember_offer(file.clone());
            }
        }
        self.session_token = Some(welcome.session_token.clone());
        // The options already hold any device switched to before this meeting.
        let switches = &self.shared.switches;
        let _ = (super::take_switch(&switches.video), super::take_switch(&switches.audio));
        let _ = super::take_switch(&switches.sink);
        let params = EngineParams {
            my_id: welcome.participant_id,
            hop: self.handshake.hop.clone(),
            media_key,
            udp_addr: self.handshake.udp_addr(),
            options: self.options.clone(),
            events: self.events.clone(),
            shared: self.shared.clone(),
            internal: self.internal_tx.clone(),
        };
        let engine = match Engine::start(params) {
            Ok(engine) => Some(engine),
            Err(e) => {
                self.events.error(format!("cannot start media: {e}"));
                None
            }
        };
        self.phase = Phase::InMeeting(Box::new(Meeting {
            welcome: welcome.clone(),
            engine,
            speaking: false,
            keyring,
            chat,
            knocks: Vec::new(),
            hand: HandAutoLower::default(),
        }));
        self.events.emit(SessionEvent::Joined { welcome });
        self.emit_encryption();
        self.send_media_state().await
    }

    async fn send_media_state(&mut self) -> Result<(), Exit> {
        let mic_on = self.shared.mic_on.load(Ordering::Relaxed);
        let camera_on = self.shared.camera_on.load(Ordering::Relaxed);
        let presenting = self.shared.presenting.load(Ordering::Relaxed);
        let Phase::InMeeting(meeting) = &mut self.phase else { return Ok(()) };
        let speaking = meeting.speaking && mic_on;
        meeting.hand.set_speaking(speaking, std::time::Instant::now());
        self.send(ControlMessage::MediaState { mic_on, camera_on, speaking, presenting }).await
    }

    async fn stop_engine(&mut self) {
        // A share ends with the meeting; the next meeting starts without one.
        self.shared.presenting.store(false, Ordering::Relaxed);
        super::take_switch(&self.shared.switches.screen);
        if let Phase::InMeeting(m) = &mut self.phase {
            if let Some(engine) = m.engine.take() {
                engine.stop().await;
            }
        }
    }

    async fn leave_meeting(&mut self) {
        match &self.phase {
            Phase::InMeeting(_) => {
                let _ = self.send(ControlMessage::Leave).await;
                self.stop_engine().await;
            }
            Phase::Waiting => {
                let _ = self.send(ControlMessage::CancelJoin).await;
            }
            Phase::Idle => {}
        }
        self.phase = Phase::Idle;
    }

    async fn on_command(&mut self, cmd: Command) -> Result<(), Exit> {
        use ControlMessage as M;
        match cmd {
            Command::CreateMeeting { display_name } => {
                if self.in_meeting().is_some() {
                    self.events.error("already in a meeting; leave it first");
                } else if let Some(media_public_key) = self.new_identity() {
                    self.send_redirectable(M::CreateMeeting { display_name, media_public_key }).await?;
                }
            }
            Command::Join { code, display_name } => {
                if self.in_meeting().is_some() {
                    self.events.error("already in a meeting; leave it first");
                } else if let Some(media_public_key) = self.new_identity() {
                    self.send_redirectable(M::JoinRequest { code, display_name, media_public_key }).await?;
                }
            }
            Command::CancelJoin => {
                self.send(M::CancelJoin).await?;
                if matches!(self.phase, Phase::Waiting) {
                    self.phase = Phase::Idle;
                }
            }
            Command::Admit(request_id) => self.admit(request_id).await?,
            Command::AdmitAll => {
                let waiting = self.in_meeting().map(|m| m.knocks.clone()).unwrap_or_default();
                for request_id in waiting {
                    self.admit(request_id).await?;
                }
            }
            Command::Deny(request_id) => {
                self.forget_knock(request_id);
                self.send(M::Deny { request_id }).await?
            }
            Command::Remove(participant_id) => self.send(M::RemoveParticipant { participant_id }).await?,
            Command::Request(message) => {
                if self.in_meeting().is_some() {
                    self.send(message).await?;
                } else {
                    self.events.error("not in a meeting");
                }
            }
            Command::Leave => {
                if self.in_meeting().is_some() {
                    self.leave_meeting().await;
                    self.events.emit(SessionEvent::Left);
                } else {
                    self.events.error("not in a meeting");
                }
            }
            Command::MediaStateChanged => self.send_media_state().await?,
            Command::ShareScreen(choice) => {
                if self.in_meeting().is_none() {
                    self.events.error("not in a meeting");
                } else {
                    self.shared.presenting.store(choice.is_some(), Ordering::Relaxed);
                    if let Some(choice) = choice {
                        super::put_switch(&self.shared.switches.screen, choice);
                    }
                    self.send_media_state().await?;
                }
            }
            Command::SwitchDevice(switch) => {
                // Later meetings start with it; a running engine takes it at its next frame.
                let switches = &self.shared.switches;
                match switch {
                    DeviceSwitch::Video(c) => {
                        self.options.video = c.clone();
                        super::put_switch(&switches.video, c);
                    }
                    DeviceSwitch::Audio(c) => {
                        self.options.audio = c.clone();
                        super::put_switch(&switches.audio, c);
                    }
                    DeviceSwitch::Sink(c) => {
                        self.options.sink = c.clone();
                        super::put_switch(&switches.sink, c);
                    }
                    DeviceSwitch::Voice(v) => {
                        self.options.voice = v;
                        super::put_switch(&switches.voice, v);
                    }
                }
            }
            Command::Chat { text, client_msg_id } => {
                self.remember_sent_chat(client_msg_id, text.clone());
                self.send(M::ChatSend { text, client_msg_id: Some(client_msg_id) }).await?;
            }
            Command::SendFile { path, upload_id } => self.start_upload(path, upload_id),
            Command::AcceptFile { file_id, dir } => self.start_download(file_id, dir),
            Command::CancelFile(file_id) => self.cancel_transfer(file_id),
            Command::Close(_) => unreachable!("handled by the loop"),
        }
        Ok(())
    }

    async fn on_internal(&mut self, internal: Internal) -> Result<(), Exit> {
        match internal {
            Internal::Speaking(speaking) => {
                let changed = match &mut self.phase {
                    Phase::InMeeting(m) if m.speaking != speaking => {
                        m.speaking = speaking;
                        true
                    }
                    _ => false,
                };
                if changed {
                    self.send_media_state().await?;
                }
            }
            Internal::Report(report) => {
                if self.in_meeting().is_some() {
                    self.send(ControlMessage::StatsReport { report }).await?;
                }
            }
            Internal::ScreenShareEnded(reason) => {
                if self.in_meeting().is_some() {
                    self.events.emit(SessionEvent::ScreenShareEnded { reason });
                    self.send_media_state().await?;
                }
            }
            Internal::RelaySilent => {
                if self.in_meeting().is_some() {
                    let silence = protocol::resume::RELAY_SILENCE;
                    let reason = format!("no media from the relay for {} s", silence.as_secs());
                    return Err(Exit::Unheard { reason, unheard: silence });
                }
            }
        }
        Ok(())
    }

    /// The connection broke in a meeting: reconnects on the schedule and resumes the seat,
    /// handling commands meanwhile. `Ok` once resumed (the control loop goes on), or why the
    /// session ends.
    async fn reconnect(&mut self, reason: String, unheard: Duration) -> Result<(), Exit> {
        let Some(code) = self.in_meeting().map(|m| m.welcome.code.clone()) else {
            return Err(Exit::Disconnected(reason));
        };
        tracing::info!("connection to the relay broke ({reason}): resuming");
        self.events.emit(SessionEvent::Reconnecting { reason: reason.clone(), unheard_ms: unheard.as_millis() as u64 });
        let started = Instant::now();
        let mut schedule = super::reconnect_schedule();
        let mut last_failure = reason;
        loop {
            let Some(at) = schedule.next_attempt() else {
                let waited = schedule.elapsed(Instant::now().into_std()).as_secs();
                return Err(Exit::Lost {
                    reason: format!("no way back to the relay in {waited} s: {last_failure}"),
                    code,
                });
            };
            let at = Instant::from_std(at);
            while Instant::now() < at {
                tokio::select! {
                    () = tokio::time::sleep_until(at) => {}
                    cmd = self.commands.recv() => self.on_command_while_away(cmd).await?,
                    Some(internal) = self.internal_rx.recv() => {
                        // Our speaking state goes out with MEDIA_STATE after the resume; a
                        // stats report for the relay can be missed.
                        if let Internal::Speaking(speaking) = internal {
                            if let Phase::InMeeting(m) = &mut self.phase {
                                m.speaking = speaking;
                            }
                        }
                    }
                }
            }
            schedule.on_attempt(Instant::now().into_std());
            match self.attempt_resume().await {
                Ok((conn, handshake, relay, welcome)) => {
                    if relay != self.relay {
                        tracing::info!(from = %self.relay, to = %relay, "seat taken back on another relay of the cluster");
                    }
                    self.conn = conn;
                    self.relay = relay;
                    self.handshake = handshake;
                    self.last_heard = Instant::now();
                    // The relay routes our datagrams under the new connection's keys now.
                    if let Some(engine) = self.in_meeting().and_then(|m| m.engine.as_ref()) {
                        engine.rekey(self.handshake.hop.clone(), self.handshake.udp_addr()).await;
                    }
                    let after = started.elapsed();
                    self.on_resumed(welcome, after, schedule.attempts()).await?;
                    return Ok(());
                }
                Err(AttemptError::Refused(why)) => {
                    schedule.give_up();
                    last_failure = why;
                }
                Err(AttemptError::Failed(why)) => {
                    tracing::debug!(attempt = schedule.attempts(), "resume attempt failed: {why}");
                    last_failure = why;
                    // In a cluster another relay takes the meeting over within seconds.
                    if !self.handshake.cluster.is_empty() {
                        schedule.retry_within(Instant::now().into_std(), protocol::resume::CLUSTER_RETRY);
                    }
                }
            }
        }
    }

    /// A command while the connection is down: chat is queued for after the resume, leaving
    /// and closing end the session, device and file commands work as ever, and what needs
    /// the relay now is refused with an error.
    async fn on_command_while_away(&mut self, cmd: Option<Command>) -> Result<(), Exit> {
        match cmd {
            None => Err(Exit::Closed(None)),
            Some(Command::Close(done)) => Err(Exit::Closed(Some(done))),
            Some(Command::Leave) => {
                self.stop_engine().await;
                self.phase = Phase::Idle;
                self.events.emit(SessionEvent::Left);
                Err(Exit::Disconnected("left the meeting while reconnecting".into()))
            }
            Some(Command::Chat { text, client_msg_id }) => {
                self.remember_sent_chat(client_msg_id, text);
                Ok(())
            }
            // Sent with the resume.
            Some(Command::MediaStateChanged) => Ok(()),
            Some(Command::ShareScreen(choice)) => {
                self.shared.presenting.store(choice.is_some(), Ordering::Relaxed);
                if let Some(choice) = choice {
                    super::put_switch(&self.shared.switches.screen, choice);
                }
                Ok(())
            }
            Some(
                cmd @ (Command::SwitchDevice(_)
                | Command::SendFile { .. }
                | Command::AcceptFile { .. }
                | Command::CancelFile(_)),
            ) => self.on_command(cmd).await,
            Some(_) => {
                self.events.error("reconnecting to the relay: try again when the connection is back");
                Ok(())
            }
        }
    }

    /// One attempt: `RESUME` with our secret on a new control connection to the relay we were
    /// on (the same certificate); if that fails, on each other relay of its cluster in turn
    /// (each pinned to the certificate the cluster listed), following a `REDIRECT` to the relay
    /// that hosts the meeting now. A relay of the cluster takes over the meeting of one that
    /// died (docs/protocol.md §3.9). Returns the relay that took the seat back.
    async fn attempt_resume(&mut self) -> Result<(ControlConn, Handshake, String, MeetingWelcome), AttemptError> {
        let Some(meeting) = self.in_meeting() else { return Err(AttemptError::Refused("not in a meeting".into())) };
        let resume = ControlMessage::Resume {
            code: meeting.welcome.code.clone(),
            participant_id: meeting.welcome.participant_id,
            resume_secret: meeting.welcome.resume_secret.clone(),
            last_chat_id: meeting.chat.last_seen(),
        };
        let pinned = |fingerprint| cluster_trust(&self.options.trust, fingerprint);
        // The relay we were talking to, not whoever answers at its address now (its pin, if
        // it had to be pinned, was stored when we first reached it).
        let own_trust = match self.handshake.certificate.invitation_pin() {
            Some(pin) => pinned(pin),
            None => self.options.trust.clone(),
        };
        let mut candidates: std::collections::VecDeque<(String, RelayTrust)> =
            std::iter::once((self.relay.clone(), own_trust))
                .chain(self.handshake.cluster.iter().map(|r| (r.relay.clone(), pinned(r.fingerprint))))
                .collect();
        let mut tried: Vec<String> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        // Redirects are bounded as a new request's are (at most 3, never back), and so is the
        // whole attempt, whatever the relays answer.
        let mut trail = RedirectTrail::starting_at(&self.relay);
        let deadline = Instant::now() + RESUME_ATTEMPT_TIMEOUT * 3;
        while let Some((relay, trust)) = candidates.pop_front() {
            if tried.iter().any(|t| t.eq_ignore_ascii_case(&relay)) {
                continue;
            }
            if Instant::now() >= deadline {
                failures.push("out of time for this attempt".into());
                break;
            }
            tried.push(relay.clone());
            match self.resume_at(&relay, &trust, &resume).await {
                Ok(ResumeAnswer::Resumed(resumed)) => {
                    let (conn, handshake, welcome) = *resumed;
                    return Ok((conn, handshake, relay, welcome));
                }
                Ok(ResumeAnswer::Redirected(to, fingerprint)) => match trail.follow(&to) {
                    Ok(()) => candidates.push_front((to, pinned(fingerprint))),
                    Err(e) => failures.push(format!("{relay}: {e}")),
                },
                Err(AttemptError::Refused(why)) => return Err(AttemptError::Refused(why)),
                Err(AttemptError::Failed(why)) => failures.push(format!("{relay}: {why}")),
            }
        }
        Err(AttemptError::Failed(failures.join("; ")))
    }

    /// `RESUME` at one relay.
    async fn resume_at(
        &self,
        relay: &str,
        trust: &RelayTrust,
        resume: &ControlMessage,
    ) -> Result<ResumeAnswer, AttemptError> {
        let deadline = Instant::now() + RESUME_ATTEMPT_TIMEOUT;
        let connecting = crate::net::control::connect(relay, trust, &self.options.client_name, RESUME_ATTEMPT_TIMEOUT);
        let (mut conn, handshake) = connecting.await.map_err(|e| AttemptError::Failed(e.to_string()))?;
        conn.send(resume.clone()).await.map_err(|e| AttemptError::Failed(format!("cannot send RESUME: {e}")))?;
        loop {
            let frame = tokio::time::timeout_at(deadline, conn.next())
                .await
                .map_err(|_| AttemptError::Failed("no answer to RESUME".into()))?;
            let msg = match frame {
                None => return Err(AttemptError::Failed("the relay closed the connection".into())),
                Some(Err(e)) => return Err(AttemptError::Failed(e.to_string())),
                Some(Ok(Err(e))) => return Err(AttemptError::Failed(format!("malformed answer to RESUME: {e}"))),
                Some(Ok(Ok(msg))) => msg,
            };
            // Names reach the page; see `on_message`.
            let mut msg = msg;
            msg.sanitize_names();
            match msg {
                ControlMessage::Resumed(welcome) => {
                    return Ok(ResumeAnswer::Resumed(Box::new((conn, handshake, welcome))))
                }
                ControlMessage::Redirect { relay, fingerprint, .. } => {
                    return Ok(ResumeAnswer::Redirected(relay, fingerprint))
                }
                ControlMessage::Error { code: ErrorCode::ResumeRefused, message, .. } => {
                    return Err(AttemptError::Refused(message))
                }
                ControlMessage::Error { message, .. } => return Err(AttemptError::Failed(message)),
                ControlMessage::Ping { nonce } => {
                    let _ = conn.send(ControlMessage::Pong { nonce }).await;
                }
                _ => {}
            }
        }
    }

    /// The seat is back: the roster, host and chat catch up (as events, and in the keyring),
    /// our unacknowledged chat is sent again, and our media state goes out.
    async fn on_resumed(&mut self, welcome: MeetingWelcome, after: Duration, attempts: u32) -> Result<(), Exit> {
        use ControlMessage as M;
        // A moderator is shown the knocks waiting again right after `RESUMED`.
        if let Phase::InMeeting(m) = &mut self.phase {
            m.knocks.clear();
        }
        let Some(meeting) = self.in_meeting() else { return Ok(()) };
        // What changed while we were away, handled as the messages we missed would have been.
        let before = &meeting.welcome;
        let mut missed: Vec<ControlMessage> = before
            .roster
            .iter()
            .filter(|p| !welcome.roster.iter().any(|now| now.id == p.id))
            .map(|p| M::ParticipantLeft { participant_id: p.id, reason: protocol::control::LeaveReason::Disconnected })
            .collect();
        if welcome.host_id != before.host_id {
            missed.push(M::HostChanged { host_id: welcome.host_id });
        }
        if welcome.locked != before.locked {
            missed.push(M::MeetingLocked { locked: welcome.locked, by: welcome.host_id });
        }
        for participant in welcome.roster {
            match before.roster.iter().find(|p| p.id == participant.id) {
                None => missed.push(M::ParticipantJoined { participant }),
                Some(old) if *old != participant => missed.push(M::ParticipantUpdated { participant }),
                Some(_) => {}
            }
        }
        missed.extend(welcome.chat_history.into_iter().map(|message| M::Chat { message }));
        for message in missed {
            self.on_message(message).await?;
        }
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(after_ms, attempts, "resumed");
        self.events.emit(SessionEvent::Resumed { after_ms, attempts });
        let again: Vec<(u64, String)> = self
            .in_meeting()
            .map(|m| m.chat.unacknowledged().map(|(id, text)| (id, text.to_string())).collect())
            .unwrap_or_default();
        for (client_msg_id, text) in again {
            self.send(ControlMessage::ChatSend { text, client_msg_id: Some(client_msg_id) }).await?;
        }
        self.send_media_state().await
    }

    fn file_context(&self) -> Option<FileContext> {
        Some(FileContext {
            relay: self.relay.clone(),
            pin: self.handshake.certificate.fingerprint,
            session_token: self.session_token.clone()?,
            events: self.events.clone(),
            table: self.shared.files.clone(),
        })
    }

    /// A context and table key for a new transfer, or why there can be none now.
    fn admit_transfer(&mut self) -> Result<(FileContext, u64), String> {
        self.transfers.retain(|_, t| !t.handle.is_finished());
        if self.transfers.len() >= MAX_ACTIVE_TRANSFERS {
            return Err(format!("too many transfers at once (at most {MAX_ACTIVE_TRANSFERS})"));
        }
        let ctx = self.file_context().ok_or_else(|| "file transfers need a meeting".to_string())?;
        let key = self.next_transfer_key;
        self.next_transfer_key += 1;
        Ok((ctx, key))
    }

    fn start_upload(&mut self, path: PathBuf, upload_id: u64) {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let (ctx, key) = match self.admit_transfer() {
            Ok(admitted) => admitted,
            Err(reason) => {
                tracing::warn!("{reason}");
                self.events.emit(SessionEvent::FileFailed {
                    upload_id: Some(upload_id),
                    file_id: None,
                    direction: FileDirection::Upload,
                    name,
                    failure: FileFailure::NotStarted,
                    reason,
                    resumable: false,
                });
                return;
            }
        };
        let handle = tokio::spawn(files::upload(ctx, key, upload_id, path));
        self.transfers.insert(
            key,
            Transfer { upload_id: Some(upload_id), file_id: None, direction: FileDirection::Upload, name, handle },
        );
    }

    fn start_download(&mut self, file_id: u64, dir: PathBuf) {
        let Some(info) = self.offers.get(&file_id).cloned() else {
            self.events.error(format!("no file {file_id} has been offered"));
            return;
        };
        if info.lost {
            self.events.error(format!("{} is no longer available: the relay that held it stopped", info.name));
            return;
        }
        if self
            .transfers
            .values()
            .any(|t| t.file_id == Some(file_id) && t.direction == FileDirection::Download && !t.handle.is_finished())
        {
            self.events.error(format!("file {file_id} is already downloading"));
            return;
        }
        let (ctx, key) = match self.admit_transfer() {
            Ok(admitted) => admitted,
            Err(reason) => return self.events.error(reason),
        };
        ctx.table.update(
            key,
            FileTransferStats {
                file_id: Some(file_id),
                direction: FileDirection::Download,
                name: info.name.clone(),
                total: info.size,
                state: TransferState::Active,
                ..Default::default()
            },
        );
        let name = info.name.clone();
        let handle = tokio::spawn(files::download(ctx, key, info, dir));
        self.transfers.insert(
            key,
            Transfer { upload_id: None, file_id: Some(file_id), direction: FileDirection::Download, name, handle },
        );
    }

    fn cancel_transfer(&mut self, file_id: u64) {
        let table = self.shared.files.clone();
        // An upload learns its file id only from the relay; look it up in the table too.
        let upload_keys: Vec<u64> = table
            .keyed_snapshot()
            .into_iter()
            .filter(|(_, s)| s.file_id == Some(file_id) && s.direction == FileDirection::Upload)
            .map(|(k, _)| k)
            .collect();
        let keys: Vec<u64> = self
            .transfers
            .iter()
            .filter(|(k, t)| t.file_id == Some(file_id) || upload_keys.contains(k))
            .map(|(k, _)| *k)
            .collect();
        if keys.is_empty() {
            self.events.error(format!("no transfer of file {file_id} is running"));
        }
        for key in keys {
            if let Some(t) = self.transfers.remove(&key) {
                if t.handle.is_finished() {
                    continue;
                }
                t.handle.abort();
                table.set_state(key, TransferState::Cancelled);
                self.events.emit(SessionEvent::FileFailed {
                    upload_id: t.upload_id,
                    file_id: Some(file_id),
                    direction: t.direction,
                    name: t.name,
                    failure: FileFailure::Cancelled,
                    reason: "cancelled".into(),
                    resumable: t.direction == FileDirection::Download,
                });
            }
        }
    }
}
