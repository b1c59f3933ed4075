//! Control messages: the JSON objects carried in length-prefixed frames over TCP.
//!
//! One enum, [`ControlMessage`], covers both directions. It is internally tagged by a
//! `"type"` field whose value is the variant's name in SCREAMING_SNAKE_CASE, e.g.
//! `{"type":"JOIN_REQUEST","code":"123456","display_name":"Ada"}`. Every message and the
//! direction it travels in is listed, with an example, in `docs/protocol.md`.

use serde::{Deserialize, Serialize};

/// A participant's id inside one meeting. The same number is the participant's
/// `sender_id` in every UDP media packet it sends.
pub type ParticipantId = u32;

/// A meeting code: exactly six ASCII digits.
pub type MeetingCode = String;

/// Maximum length of a chat message, in characters (Unicode scalar values).
pub const MAX_CHAT_CHARS: usize = 4000;

/// Maximum length of a display name, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 64;
/// Longest file name a relay keeps for an upload (characters).
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// Returns true if `code` is six ASCII digits.
pub fn is_valid_meeting_code(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// A secret a message carries (a resume secret): on the wire its plain string, in `Debug`
/// output never.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself, to present or compare.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// Someone in a meeting, as the roster shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub id: ParticipantId,
    pub display_name: String,
    pub is_host: bool,
    pub mic_on: bool,
    pub camera_on: bool,
    pub speaking: bool,
    /// Server time (ms since the Unix epoch) at which the participant was admitted.
    pub joined_at_ms: u64,
    /// The participant's X25519 public key for end-to-end media encryption (64 hex digits),
    /// as it sent it in `CREATE_MEETING` or `JOIN_REQUEST` ([`crate::e2ee`]).
    pub media_public_key: String,
    /// The participant's connection dropped and the relay holds its seat for the resume grace
    /// window; it may `RESUME` (then this turns false) or leave when the window ends. Absent
    /// when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reconnecting: bool,
    /// A co-host: may admit, deny, mute, ask to unmute, lower hands and remove, like the host.
    /// Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_cohost: bool,
    /// Set while the participant's hand is raised: the meeting's count of raised hands when it
    /// went up (1, 2, 3…), so everyone orders the hands the same way, first raised first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hand_raised: Option<u64>,
    /// Sharing a screen (its screen stream is on). Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub presenting: bool,
}

impl Participant {
    /// The host or a co-host: may admit, deny, mute and remove.
    pub fn is_moderator(&self) -> bool {
        self.is_host || self.is_cohost
    }
}

/// One chat message as the relay stamped it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Strictly increasing within a meeting; the order everyone sees.
    pub id: u64,
    pub sender_id: ParticipantId,
    pub sender_name: String,
    pub text: String,
    /// Server time (ms since the Unix epoch) at which the relay accepted the message.
    pub timestamp_ms: u64,
    /// The sender's own id for the message, echoed so it can match its pending copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<u64>,
    /// Set when the message announces a file that can be downloaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
}

/// A file spooled on the relay, ready to download.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    pub file_id: u64,
    /// Display name, sanitized by the relay (no path separators, no `..`, no control chars).
    pub name: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the whole file, verified by the relay.
    pub sha256: String,
    pub sender_id: ParticipantId,
    pub sender_name: String,
    /// The relay that held the file stopped and another relay of the cluster took the meeting
    /// over (docs/protocol.md §3.9): the offer stays in the chat, but the file cannot be
    /// downloaded any more.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lost: bool,
}

/// Another relay of the same cluster, as `WELCOME` lists them: where a client whose relay
/// stops answering can take its seat back (docs/protocol.md §3.9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRelay {
    /// "HOST:PORT" of its TCP port.
    pub relay: String,
    /// Its certificate's SHA-256 fingerprint: accept no other.
    pub fingerprint: crate::fingerprint::Fingerprint,
}

/// Everything a participant needs the moment it is admitted (or creates a meeting).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingWelcome {
    pub code: MeetingCode,
    /// This participant's id, also its UDP `sender_id`.
    pub participant_id: ParticipantId,
    /// Secret that authorizes this participant's file-transfer connections.
    pub session_token: String,
    /// Secret that lets this participant take its seat back with `RESUME` after its control
    /// connection drops (64 hex digits). Never shown, logged or stored outside the session.
    pub resume_secret: Secret,
    pub host_id: ParticipantId,
    /// Everyone in the meeting, this participant included.
    pub roster: Vec<Participant>,
    /// The most recent chat messages (up to 200), oldest first; in `RESUMED`, only those after
    /// the `last_chat_id` the client gave.
    pub chat_history: Vec<ChatMessage>,
    /// The meeting key sealed to this participant by the host's client (the blob of its
    /// `ADMIT`); absent for the participant who created the meeting, which makes the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_key: Option<String>,
    /// Who sealed `media_key`: the host or the co-host who admitted this participant (the
    /// reference relay always names it). Absent: the host, or no `media_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_key_from: Option<ParticipantId>,
    /// The host locked the meeting: new knocks are refused. Absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
}

/// The secrets (`session_token`, `resume_secret`) are never printed.
impl std::fmt::Debug for MeetingWelcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeetingWelcome")
            .field("code", &self.code)
            .field("participant_id", &self.participant_id)
            .field("host_id", &self.host_id)
            .field("roster", &self.roster)
            .field("chat_history", &self.chat_history.len())
            .finish_non_exhaustive()
    }
}

/// A meeting key sealed to one participant ([`crate::e2ee::seal_meeting_key`]), in `MEDIA_KEYS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDelivery {
    pub participant_id: ParticipantId,
    /// 136 hex digits the relay cannot open.
    pub media_key: String,
}

/// Why a participant left the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LeaveReason {
    /// Sent `LEAVE`.
    Left,
    /// Its TCP connection closed.
    Disconnected,
    /// Nothing heard from it for the liveness timeout.
    TimedOut,
    /// The host removed it.
    Removed,
}

/// What the host makes someone with `SET_ROLE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// The host role moves to them; the sender becomes a participant.
    Host,
    /// A co-host: admits, denies, mutes, asks to unmute, lowers hands and removes.
    CoHost,
    /// No moderator rights (takes a co-host's away).
    Participant,
}

/// A device a moderator asks a participant to turn on (`REQUEST_MEDIA`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MediaDevice {
    Mic,
    Camera,
}

/// The reactions a participant can send (`REACT`), one emoji each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Reaction {
    ThumbsUp,
    Heart,
    Laugh,
    Surprised,
    Clap,
    Party,
}

impl Reaction {
    /// Every reaction, in the order the app shows them.
    pub const ALL: [Reaction; 6] =
        [Reaction::ThumbsUp, Reaction::Heart, Reaction::Laugh, Reaction::Surprised, Reaction::Clap, Reaction::Party];

    /// The emoji people see.
    pub fn emoji(self) -> &'static str {
        match self {
            Reaction::ThumbsUp => "\u{1F44D}",
            Reaction::Heart => "\u{2764}\u{FE0F}",
            Reaction::Laugh => "\u{1F602}",
            Reaction::Surprised => "\u{1F62E}",
            Reaction::Clap => "\u{1F44F}",
            Reaction::Party => "\u{1F389}",
        }
    }
}

/// Why someone's upload stopped before its file was offered (`FILE_UPLOAD_STOPPED.reason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UploadStopReason {
    /// The uploader's file connection closed or went silent before the last byte (it was
    /// cancelled, the app quit, or its network went away).
    Disconnected,
    /// Every byte arrived but they do not hash to the announced SHA-256.
    HashMismatch,
    /// The relay refused the upload midway (a malformed chunk, the spool, the meeting's rules).
    Refused,
}

/// Why a join request did not lead into the meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum JoinRefusal {
    /// The host denied it.
    Denied,
    /// Nobody answered before the knock expired.
    Expired,
    /// The meeting ended while the joiner waited.
    MeetingEnded,
    /// The meeting is at its participant limit.
    MeetingFull,
    /// The host locked the meeting.
    Locked,
}

/// Why a knock disappeared from the host's queue without the host answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum KnockWithdrawal {
    /// The joiner cancelled.
    Cancelled,
    /// The knock expired.
    Expired,
    /// The joiner's connection closed.
    Disconnected,
    /// Another moderator (the host or a co-host) answered it.
    Answered,
}

/// Machine-readable error codes carried by [`ControlMessage::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    /// The frame could not be parsed as a control message.
    MalformedMessage,
    /// The peer speaks another protocol version.
    UnsupportedVersion,
    /// A message arrived that is not allowed in the sender's current state.
    InvalidState,
    /// No live meeting has this code.
    UnknownMeeting,
    /// The code is not six digits.
    InvalidCode,
    /// Only the host (or, for moderation, a co-host) may do this.
    NotHost,
    /// The referenced participant or knock does not exist.
    UnknownParticipant,
    /// The meeting is at its participant limit.
    MeetingFull,
    /// A chat message exceeds [`MAX_CHAT_CHARS`].
    ChatTooLong,
    /// A display name is empty or too long.
    InvalidName,
    /// A file exceeds the relay's size limit.
    FileTooLarge,
    /// The referenced file does not exist (or its meeting ended).
    UnknownFile,
    /// The uploaded bytes do not match the announced SHA-256.
    HashMismatch,
    /// The session token is not valid.
    Unauthorized,
    /// The relay is out of a resource (disk, connections, live meetings).
    ServerBusy,
    /// `RESUME` found no seat to take back: the grace window passed (the participant has left),
    /// or the code, participant id or resume secret is wrong. Knock again with `JOIN_REQUEST`.
    ResumeRefused,
    /// The sender (its participant or its address) is over a rate limit; `ERROR` carries
    /// `retry_after_ms`, after which the same request would be accepted.
    RateLimited,
    /// The relay belongs to a cluster of relays (docs/protocol.md §3.9) and cannot reach the
    /// directory they share, or the relay that hosts the meeting is not registered in it any
    /// more: it cannot tell where the meeting is, nor make a new code unique. Nothing is wrong
    /// with the request; send it again after a few seconds.
    DirectoryUnavailable,
    /// Anything else; see the message text.
    Internal,
}

/// Every message on a control connection (and the handshake of a file connection).
///
/// Direction is noted on each variant: C→R is client to relay, R→C relay to client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ControlMessage {
    /// C→R, first message on a control connection.
    Hello { protocol_version: u16, client_name: String },
    /// R→C, answer to `HELLO`: the UDP port the client sends media to, and (from a relay of a
    /// cluster) the other relays of the cluster.
    Welcome {
        protocol_version: u16,
        udp_port: u16,
        server_name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        relays: Vec<ClusterRelay>,
    },

    /// C→R: start a new meeting with the sender as host. `media_public_key`: the sender's
    /// X25519 public key for this meeting, 64 hex digits (also in `JOIN_REQUEST`).
    CreateMeeting { display_name: String, media_public_key: String },
    /// C→R: ask to join the meeting with this code.
    JoinRequest { code: MeetingCode, display_name: String, media_public_key: String },
    /// R→C: the joiner is in the waiting room; the host has been asked.
    Waiting { code: MeetingCode, request_id: u64 },
    /// C→R: the joiner leaves the waiting room.
    CancelJoin,
    /// R→C (host and co-hosts): someone asks to join. Knocks queue; each is answered by id.
    /// `waiting_since_ms`: server time of the `JOIN_REQUEST`.
    Knock { request_id: u64, display_name: String, media_public_key: String, waiting_since_ms: u64 },
    /// R→C (host and co-hosts): a knock went away unanswered (or another moderator answered it).
    KnockWithdrawn { request_id: u64, reason: KnockWithdrawal },
    /// C→R (host or co-host): let the knocker in, with the meeting key sealed to the knock's
    /// public key (the relay hands it over in `JOINED`).
    Admit { request_id: u64, media_key: String },
    /// C→R (host or co-host): refuse the knocker.
    Deny { request_id: u64 },
    /// R→C (joiner): the join did not happen, and why.
    JoinRefused { reason: JoinRefusal },
    /// R→C: the sender is in the meeting (after create or admission).
    Joined(MeetingWelcome),
    /// C→R, instead of `CREATE_MEETING`/`JOIN_REQUEST` on a new connection: take back the seat
    /// of participant `participant_id` in meeting `code` after the old connection dropped,
    /// proving it with the `resume_secret` of its `JOINED`. `last_chat_id`: the id of the
    /// last chat message the client has (0 if none), so the relay sends only newer ones.
    Resume { code: MeetingCode, participant_id: ParticipantId, resume_secret: Secret, last_chat_id: u64 },
    /// R→C: the seat is back (same participant id, no knock): the meeting as it is now, with
    /// the chat messages after `last_chat_id`.
    Resumed(MeetingWelcome),
    /// R→C, instead of the answer to `CREATE_MEETING`, `JOIN_REQUEST` or `RESUME`: another relay of the
    /// same cluster takes this request (it hosts meeting `code`, or it is less loaded). The
    /// client opens a control connection to `relay` ("HOST:PORT"), accepts it only if its
    /// certificate's SHA-256 fingerprint is `fingerprint`, and sends the same request there.
    /// `code` is the meeting's for a `JOIN_REQUEST` or `RESUME`, absent for a `CREATE_MEETING`.
    Redirect {
        relay: String,
        fingerprint: crate::fingerprint::Fingerprint,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<MeetingCode>,
    },
    /// R→C: the relay is stopping and will be back: the meeting is kept, and the receiver's
    /// seat is held for `resume_within_ms`. The connection closes after this; the client
    /// resumes as after any drop.
    RelayRestarting { resume_within_ms: u64 },

    /// R→C: someone joined.
    ParticipantJoined { participant: Participant },
    /// R→C: someone left.
    ParticipantLeft { participant_id: ParticipantId, reason: LeaveReason },
    /// R→C: someone's mic, camera or speaking state changed.
    ParticipantUpdated { participant: Participant },
    /// C→R: the sender's own media state (`presenting`: it shares a screen; absent when
    /// false).
    MediaState {
        mic_on: bool,
        camera_on: bool,
        speaking: bool,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        presenting: bool,
    },
    /// R→C: the host role moved.
    HostChanged { host_id: ParticipantId },
    /// C→R (host or co-host): remove a participant.
    RemoveParticipant { participant_id: ParticipantId },
    /// R→C: the receiver was removed by the host; its connection closes after this.
    Removed,
    /// C→R (host): a new meeting key, sealed to each participant named.
    MediaKeys { keys: Vec<KeyDelivery> },
    /// R→C: a meeting key sealed to the receiver by participant `from` (the host).
    MediaKey { from: ParticipantId, media_key: String },

    /// C→R (host): lock (new knocks are refused) or unlock the meeting.
    LockMeeting { locked: bool },
    /// R→C (everyone): the meeting was locked or unlocked by participant `by`.
    MeetingLocked { locked: bool, by: ParticipantId },
    /// C→R (host or co-host): turn one participant's microphone off.
    MuteParticipant { participant_id: ParticipantId },
    /// C→R (host or co-host): turn everyone's microphone off but the sender's.
    MuteAll,
    /// R→C: moderator `by` turned the receiver's microphone off; the relay forwards none of
    /// its audio until it reports the mic off and then on again (`MEDIA_STATE`).
    MutedByHost { by: ParticipantId },
    /// C→R (host or co-host): ask a participant to turn a device on.
    RequestMedia { participant_id: ParticipantId, device: MediaDevice },
    /// R→C: moderator `by` asks the receiver to turn `device` on (nothing turns on by itself).
    MediaRequested { by: ParticipantId, device: MediaDevice },
    /// C→R (host): make a participant host, co-host or a plain participant again.
    SetRole { participant_id: ParticipantId, role: Role },
    /// C→R (host): end the meeting for everyone.
    EndMeeting,
    /// R→C (everyone): host `by` ended the meeting; the relay closes the connection after this.
    MeetingEnded { by: ParticipantId },
    /// C→R: raise (or lower) the sender's own hand.
    RaiseHand { raised: bool },
    /// C→R (host, co-host, or the participant itself): lower a participant's hand.
    LowerHand { participant_id: ParticipantId },
    /// C→R: send a reaction to everyone.
    React { reaction: Reaction },
    /// R→C (everyone, the sender included): participant `participant_id` reacted.
    Reaction { participant_id: ParticipantId, reaction: Reaction },

    /// C→R: send a chat message.
    ChatSend {
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_msg_id: Option<u64>,
    },
    /// R→C: a chat message, stamped by the relay, in the one order everyone sees.
    Chat { message: ChatMessage },

    /// C→R, first message on a file connection: upload a file.
    FileUpload { session_token: String, name: String, size: u64, sha256: String },
    /// C→R, first message on a file connection: continue an interrupted upload of ours.
    FileUploadResume { session_token: String, file_id: u64 },
    /// R→C: the upload may start (or go on); chunks go as binary frames (see [`crate::file`]),
    /// the first at `offset` (0 for a new upload, the bytes the relay holds for a resumed one).
    FileUploadReady { file_id: u64, chunk_size: u32, offset: u64 },
    /// R→C: all bytes arrived and the hash matched; the file is offered in chat.
    FileUploadComplete { file_id: u64 },
    /// C→R, first message on a file connection: download a file from `offset`.
    FileDownload { session_token: String, file_id: u64, offset: u64 },
    /// R→C: the download starts at `offset`; chunks follow as binary frames.
    FileDownloadReady { file: FileInfo, offset: u64, chunk_size: u32 },
    /// R→C (everyone in the meeting): progress of an upload in progress.
    FileProgress { file_id: u64, name: String, sender_id: ParticipantId, bytes: u64, size: u64 },
    /// R→C (everyone in the meeting): an upload they saw progress of stopped without its file
    /// being offered; nothing of it can be downloaded.
    FileUploadStopped { file_id: u64, name: String, sender_id: ParticipantId, reason: UploadStopReason },
    /// R→C: a file is offered to the meeting (also carried in the matching `CHAT`).
    FileOffer { file: FileInfo },

    /// C→R: the client's periodic stats, for the relay's logs and for thinning decisions.
    StatsReport { report: StatsReport },

    /// Either direction: liveness probe. The peer answers with `PONG` carrying the same nonce.
    Ping { nonce: u64 },
    /// Either direction: answer to `PING`.
    Pong { nonce: u64 },
    /// C→R: leave the meeting.
    Leave,
    /// R→C: the request (or the frame) failed; the connection stays open unless noted.
    /// `retry_after_ms` comes with `RATE_LIMITED` (and only with it): how long until the
    /// same request would be accepted.
    Error {
        code: ErrorCode,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
}

/// A client's summary of its last stats interval, sent once every few seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatsReport {
    pub rtt_ms: f64,
    /// Loss fraction 0..=1 of media received by this client, over the interval.
    pub loss: f64,
    pub jitter_ms: f64,
    pub fps_sent: f64,
    pub fps_received: f64,
    pub bitrate_in_kbps: f64,
    pub bitrate_out_kbps: f64,
    /// Index on the quality ladder (0 = 144p … 3 = 480p).
    pub quality_level: u8,
}

impl ControlMessage {
    /// The wire name of this message (the value of its `"type"` field).
    pub fn type_name(&self) -> &'static str {
        use ControlMessage::*;
        match self {
            Hello { .. } => "HELLO",
            Welcome { .. } => "WELCOME",
            CreateMeeting { .. } => "CREATE_MEETING",
            JoinRequest { .. } => "JOIN_REQUEST",
            Waiting { .. } => "WAITING",
            CancelJoin => "CANCEL_JOIN",
            Knock { .. } => "KNOCK",
            KnockWithdrawn { .. } => "KNOCK_WITHDRAWN",
            Admit { .. } => "ADMIT",
            Deny { .. } => "DENY",
            JoinRefused { .. } => "JOIN_REFUSED",
            Joined(_) => "JOINED",
            Resume { .. } => "RESUME",
            Resumed(_) => "RESUMED",
            Redirect { .. } => "REDIRECT",
            RelayRestarting { .. } => "RELAY_RESTARTING",
            ParticipantJoined { .. } => "PARTICIPANT_JOINED",
            ParticipantLeft { .. } => "PARTICIPANT_LEFT",
            ParticipantUpdated { .. } => "PARTICIPANT_UPDATED",
            MediaState { .. } => "MEDIA_STATE",
            HostChanged { .. } => "HOST_CHANGED",
            RemoveParticipant { .. } => "REMOVE_PARTICIPANT",
            Removed => "REMOVED",
            MediaKeys { .. } => "MEDIA_KEYS",
            MediaKey { .. } => "MEDIA_KEY",
            LockMeeting { .. } => "LOCK_MEETING",
            MeetingLocked { .. } => "MEETING_LOCKED",
            MuteParticipant { .. } => "MUTE_PARTICIPANT",
            MuteAll => "MUTE_ALL",
            MutedByHost { .. } => "MUTED_BY_HOST",
            RequestMedia { .. } => "REQUEST_MEDIA",
            MediaRequested { .. } => "MEDIA_REQUESTED",
            SetRole { .. } => "SET_ROLE",
            EndMeeting => "END_MEETING",
            MeetingEnded { .. } => "MEETING_ENDED",
            RaiseHand { .. } => "RAISE_HAND",
            LowerHand { .. } => "LOWER_HAND",
            React { .. } => "REACT",
            Reaction { .. } => "REACTION",
            ChatSend { .. } => "CHAT_SEND",
            Chat { .. } => "CHAT",
            FileUpload { .. } => "FILE_UPLOAD",
            FileUploadResume { .. } => "FILE_UPLOAD_RESUME",
            FileUploadReady { .. } => "FILE_UPLOAD_READY",
            FileUploadComplete { .. } => "FILE_UPLOAD_COMPLETE",
            FileDownload { .. } => "FILE_DOWNLOAD",
            FileDownloadReady { .. } => "FILE_DOWNLOAD_READY",
            FileProgress { .. } => "FILE_PROGRESS",
            FileUploadStopped { .. } => "FILE_UPLOAD_STOPPED",
            FileOffer { .. } => "FILE_OFFER",
            StatsReport { .. } => "STATS_REPORT",
            Ping { .. } => "PING",
            Pong { .. } => "PONG",
            Leave => "LEAVE",
            Error { .. } => "ERROR",
        }
    }

    /// Shorthand for an `ERROR` message.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ControlMessage::Error { code, message: message.into(), retry_after_ms: None }
    }

    /// A `RATE_LIMITED` error: the request may be repeated after `retry_after`.
    pub fn rate_limited(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX).max(1);
        ControlMessage::Error {
            code: ErrorCode::RateLimited,
            message: message.into(),
            retry_after_ms: Some(retry_after_ms),
        }
    }

    /// Serializes to the JSON payload of a frame.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialization of these plain types cannot fail: no maps with non-string keys,
        // no custom serializers.
        serde_json::to_vec(self).expect("control messages always serialize")
    }

    /// Length in bytes of [`Self::to_json`], without building it.
    pub fn encoded_len(&self) -> usize {
        json_len(self)
    }

    /// Parses the JSON payload of a frame.
    pub fn from_json(payload: &[u8]) -> Result<Self, crate::FrameError> {
        let text = std::str::from_utf8(payload).map_err(|_| crate::FrameError::NotUtf8)?;
        serde_json::from_str(text).map_err(|e| crate::FrameError::InvalidJson(e.to_string()))
    }
}

/// Whether `c` may be shown to people as it is. Not: control characters; invisible format
/// characters (Unicode category Cf: bidi overrides and isolates, zero-width spaces and joiners,
/// the byte-order mark…), which would make a name read as something it is not
/// (`"\u{202E}gnp.exe"` shows as "exe.png"); line and paragraph separators.
fn is_shown_as_is(c: char) -> bool {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    !c.is_control() && !matches!(c.general_category(), G::Format | G::LineSeparator | G::ParagraphSeparator)
}

/// Makes a display name or file name safe to show: strips control and invisible format
/// characters and path separators, collapses `..`, trims whitespace and bounds the length.
/// Returns `None` if nothing printable is left.
pub fn sanitize_display_text(raw: &str, max_chars: usize) -> Option<String> {
    let cleaned: String =
        raw.chars().filter(|c| is_shown_as_is(*c)).map(|c| if c == '/' || c == '\\' { '_' } else { c }).collect();
    let mut cleaned = cleaned.trim().to_string();
    while cleaned.contains("..") {
        cleaned = cleaned.replace("..", ".");
    }
    let cleaned: String = cleaned.trim_matches('.').trim().chars().take(max_chars).collect();
    let cleaned = cleaned.trim_end_matches(['.', ' ']);
    if cleaned.is_empty() {
        None
    } else {
        Some(cleaned.to_string())
    }
}

/// Names Windows reserves for devices, with or without an extension (`nul.txt` too).
const WINDOWS_DEVICE_NAMES: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8", "COM9", "LPT1", "LPT2",
    "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// [`sanitize_display_text`] for a file name that will be saved on any of the platforms the
/// app runs on: also replaces the characters Windows forbids in names (`<>:"|?*`) and
/// prefixes a Windows device name (`CON`, `nul.txt`) with `_`.
pub fn sanitize_file_name(raw: &str, max_chars: usize) -> Option<String> {
    let name: String = sanitize_display_text(raw, max_chars)?
        .chars()
        .map(|c| if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') { '_' } else { c })
        .collect();
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    if WINDOWS_DEVICE_NAMES.iter().any(|device| stem.eq_ignore_ascii_case(device)) {
        return Some(format!("_{name}").chars().take(max_chars).collect());
    }
    Some(name)
}

impl ControlMessage {
    /// Applies [`sanitize_display_text`] to every name this message carries (display names,
    /// senders' names, file names), for a client that shows what a relay sent: the relay
    /// sanitizes what it accepts, but the client does not depend on that.
    pub fn sanitize_names(&mut self) {
        fn name(text: &mut String, max_chars: usize) {
            *text = sanitize_display_text(text, max_chars).unwrap_or_else(|| "?".to_string());
        }
        fn file(f: &mut FileInfo) {
            name(&mut f.name, MAX_FILE_NAME_CHARS);
            name(&mut f.sender_name, MAX_DISPLAY_NAME_CHARS);
        }
        fn chat(m: &mut ChatMessage) {
            name(&mut m.sender_name, MAX_DISPLAY_NAME_CHARS);
            if let Some(f) = &mut m.file {
                file(f);
            }
        }
        match self {
            ControlMessage::Joined(welcome) | ControlMessage::Resumed(welcome) => {
                welcome.roster.iter_mut().for_each(|p| name(&mut p.display_name, MAX_DISPLAY_NAME_CHARS));
                welcome.chat_history.iter_mut().for_each(chat);
            }
            ControlMessage::ParticipantJoined { participant } | ControlMessage::ParticipantUpdated { participant } => {
                name(&mut participant.display_name, MAX_DISPLAY_NAME_CHARS)
            }
            ControlMessage::Knock { display_name, .. } => name(display_name, MAX_DISPLAY_NAME_CHARS),
            ControlMessage::Chat { message } => chat(message),
            ControlMessage::FileOffer { file: f } | ControlMessage::FileDownloadReady { file: f, .. } => file(f),
            ControlMessage::FileProgress { name: n, .. } | ControlMessage::FileUploadStopped { name: n, .. } => {
                name(n, MAX_FILE_NAME_CHARS)
            }
            _ => {}
        }
    }
}

impl ChatMessage {
    /// Length in bytes of this message's JSON (as it appears in `CHAT` and in `JOINED`'s
    /// history).
    pub fn encoded_len(&self) -> usize {
        json_len(self)
    }
}

/// Bytes `value` takes as JSON, counted without allocating.
fn json_len<T: Serialize>(value: &T) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // As in `to_json`: these types always serialize.
    serde_json::to_writer(&mut count, value).expect("control messages always serialize");
    count.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/protocol.md §4.1 lists exactly which numbers an integer field accepts.
    #[test]
    fn integer_fields_accept_plain_json_integers_only() {
        let admit = |n: &str| ControlMessage::from_json(format!(r#"{{"type":"DENY","request_id":{n}}}"#).as_bytes());
        assert_eq!(admit("7").unwrap(), ControlMessage::Deny { request_id: 7 });
        assert_eq!(admit("18446744073709551615").unwrap(), ControlMessage::Deny { request_id: u64::MAX });
        for refused in ["7.0", "7e0", "1e2", "-0", "-1", "07", "18446744073709551616", "\"7\"", "true", "null"] {
            assert!(admit(refused).is_err(), "{refused} must be refused");
        }
        let twice = br#"{"type":"DENY","request_id":1,"request_id":2}"#;
        assert!(ControlMessage::from_json(twice).is_err(), "a duplicate member is refused");
    }

    #[test]
    fn a_welcome_never_prints_its_secrets() {
        let welcome = MeetingWelcome {
            code: "123456".into(),
            participant_id: 2,
            session_token: "token-abc".into(),
            resume_secret: Secret::new("resume-xyz"),
            host_id: 1,
            roster: Vec::new(),
            chat_history: Vec::new(),
            media_key: None,
            media_key_from: None,
            locked: false,
        };
        for printed in [format!("{welcome:?}"), format!("{:?}", ControlMessage::Resumed(welcome.clone()))] {
            assert!(printed.contains("123456") && !printed.contains("token-abc") && !printed.contains("resume-xyz"));
        }
        let resume = ControlMessage::Resume {
            code: "123456".into(),
            participant_id: 2,
            resume_secret: Secret::new("resume-xyz"),
            last_chat_id: 0,
        };
        assert!(!format!("{resume:?}").contains("resume-xyz"));
    }

    #[test]
    fn type_tag_is_screaming_snake_case() {
        let msg = ControlMessage::JoinRequest {
            code: "123456".into(),
            display_name: "Ada".into(),
            media_public_key: "00".repeat(32),
        };
        let json: serde_json::Value = serde_json::from_slice(&msg.to_json()).unwrap();
        assert_eq!(json["type"], "JOIN_REQUEST");
        assert_eq!(json["code"], "123456");
        assert_eq!(msg.type_name(), "JOIN_REQUEST");
    }

    #[test]
    fn unit_variants_are_objects_with_only_a_type() {
        let json = String::from_utf8(ControlMessage::Leave.to_json()).unwrap();
        assert_eq!(json, r#"{"type":"LEAVE"}"#);
        assert_eq!(ControlMessage::from_json(br#"{"type":"CANCEL_JOIN"}"#).unwrap(), ControlMessage::CancelJoin);
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(ControlMessage::from_json(br#"{"type":"NOPE"}"#).is_err());
        assert!(ControlMessage::from_json(br#"{"code":"1"}"#).is_err());
    }

    #[test]
    fn meeting_code_validation() {
        assert!(is_valid_meeting_code("012345"));
        assert!(!is_valid_meeting_code("12345"));
        assert!(!is_valid_meeting_code("12345a"));
        assert!(!is_valid_meeting_code("１２３４５６"));
    }

    #[test]
    fn sanitize_strips_paths_and_control_chars() {
        assert_eq!(sanitize_display_text("../../etc/passwd", 255).unwrap(), "_._etc_passwd");
        assert_eq!(sanitize_display_text("a\u{0}b\nc.txt", 255).unwrap(), "abc.txt");
        assert_eq!(sanitize_display_text("C:\\x\\y.png", 255).unwrap(), "C:_x_y.png");
        assert_eq!(sanitize_display_text("....", 255), None);
        assert_eq!(sanitize_display_text("  \t ", 255), None);
        assert_eq!(sanitize_display_text("abcdef", 3).unwrap(), "abc");
        let s = sanitize_display_text("x/../../y", 255).unwrap();
        assert!(!s.contains("..") && !s.contains('/'));
    }

    #[test]
    fn sanitize_strips_invisible_format_characters() {
        // A right-to-left override would show "\u{202E}gnp.exe" as "exe.png".
        assert_eq!(sanitize_display_text("\u{202E}gnp.exe", 255).unwrap(), "gnp.exe");
        assert_eq!(sanitize_display_text("Al\u{2067}ice\u{2069}\u{200B}\u{FEFF}\u{00AD}", 64).unwrap(), "Alice");
        assert_eq!(sanitize_display_text("a\u{2028}b\u{2029}c", 64).unwrap(), "abc");
        assert_eq!(sanitize_display_text("\u{200E}\u{200F}\u{061C}", 64), None, "nothing visible is left");
        // What is visible stays: accents, scripts written right to left, emoji.
        assert_eq!(sanitize_display_text("Zoë مرحبا 😀", 64).unwrap(), "Zoë مرحبا 😀");
    }

    #[test]
    fn file_names_are_safe_on_windows_too() {
        assert_eq!(sanitize_file_name("a<b>:c\"d|e?f*.txt", 255).unwrap(), "a_b__c_d_e_f_.txt");
        assert_eq!(sanitize_file_name("CON", 255).unwrap(), "_CON");
        assert_eq!(sanitize_file_name("nul.tar.gz", 255).unwrap(), "_nul.tar.gz");
        assert_eq!(sanitize_file_name("Lpt9 .txt", 255).unwrap(), "_Lpt9 .txt");
        assert_eq!(sanitize_file_name("console.txt", 255).unwrap(), "console.txt");
        assert_eq!(sanitize_file_name("report. . ", 255).unwrap(), "report", "no trailing dot or space");
        assert_eq!(sanitize_file_name("\u{202E}gnp.exe", 255).unwrap(), "gnp.exe");
    }

    #[test]
    fn a_client_sanitizes_every_name_a_message_carries() {
        let evil = "\u{202E}gnp.exe".to_string();
        let info = FileInfo {
            file_id: 1,
            name: evil.clone(),
            size: 1,
            sha256: "00".repeat(32),
            sender_id: 2,
            sender_name: evil.clone(),
            lost: false,
        };
        let mut offer = ControlMessage::FileOffer { file: info.clone() };
        offer.sanitize_names();
        assert!(
            matches!(&offer, ControlMessage::FileOffer { file } if file.name == "gnp.exe" && file.sender_name == "gnp.exe")
        );
        let mut knock = ControlMessage::Knock {
            request_id: 1,
            display_name: "\u{2066}".into(),
            media_public_key: String::new(),
            waiting_since_ms: 0,
        };
        knock.sanitize_names();
        assert!(matches!(&knock, ControlMessage::Knock { display_name, .. } if display_name == "?"));
        let mut chat = ControlMessage::Chat {
            message: ChatMessage {
                id: 1,
                sender_id: 2,
                sender_name: evil.clone(),
                text: "text keeps \u{202E} as written".into(),
                timestamp_ms: 0,
                client_msg_id: None,
                file: Some(info),
            },
        };
        chat.sanitize_names();
        let ControlMessage::Chat { message } = chat else { unreachable!() };
        assert_eq!(message.sender_name, "gnp.exe");
        assert_eq!(message.file.unwrap().name, "gnp.exe");
        assert!(message.text.contains('\u{202E}'), "only names are sanitized, not what people write");
    }
}
