//! What a relay restart must keep of a meeting, as plain data: the roster with each seat's
//! secrets, raised hands and mutes, the host, whether it is locked, the chat history, the files offered and the uploads in progress.
//!
//! The meeting core makes a [`MeetingRecord`] ([`super::core::MeetingCore::record`]) and
//! is rebuilt from one ([`super::core::MeetingCore::restore`]); [`crate::persist`] writes it
//! to `<spool>/meeting-<id>/meeting.json` and reads it back at start. Nothing here is a
//! connection, a key of the media path or a timer: seats come back disconnected, each
//! resume brings its own TLS session and datagram keys, and the grace window starts again
//! from the restart. Secrets are [`Secret`]s, so no `Debug` of a record prints them.

use protocol::control::{ChatMessage, FileInfo, Participant, ParticipantId, Secret};
use serde::{Deserialize, Serialize};

/// Format of `meeting.json`; a relay refuses (and deletes) a record of another format.
pub(crate) const RECORD_FORMAT: u32 = 1;

/// One meeting, as a restarted relay needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MeetingRecord {
    pub format: u32,
    /// The relay-wide meeting id, which names the spool directory.
    pub meeting_id: u64,
    pub code: String,
    pub host_id: ParticipantId,
    /// The id the next chat message gets (ids never go back, across restarts too).
    pub next_chat_id: u64,
    /// In join order.
    pub members: Vec<MemberRecord>,
    /// The history kept for late joiners and resumes, oldest first.
    pub chat: Vec<ChatMessage>,
    /// Files offered, each spooled as `<spool>/meeting-<id>/<file_id>`.
    pub files: Vec<FileInfo>,
    /// Uploads not yet complete, each with what arrived in `<file_id>.part`.
    pub uploads: Vec<UploadRecord>,
    /// The host locked the meeting (absent in records of relays before locking existed).
    #[serde(default)]
    pub locked: bool,
}

/// One seat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct MemberRecord {
    pub participant: Participant,
    pub session_token: Secret,
    pub resume_secret: Secret,
    pub last_client_msg_id: Option<u64>,
    /// The moderator who muted the seat, which has not turned its microphone off and on again
    /// since: its audio stays unforwarded after the restart too.
    #[serde(default)]
    pub muted_by: Option<ParticipantId>,
}

/// An upload in progress: what its `FILE_UPLOAD` said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    pub file_id: u64,
    pub uploader: ParticipantId,
    pub sender_name: String,
    /// Cleaned file name.
    pub name: String,
    pub size: u64,
    /// Lowercase hex SHA-256 the whole file must have.
    pub sha256: String,
}
