//! What a [`crate::Session`] reports: the [`SessionEvent`] enum and the channel it travels on.
//!
//! Every event serializes with serde (internally tagged by `"type"`, snake_case), so the
//! desktop shell can forward events to its UI unchanged.
//!
//! The channel is bounded and carries control events only (roster, chat, files, stats…):
//! video frames wait in latest-frame slots instead ([`super::frames`]), so a consumer that
//! falls behind on pixels holds up nothing here. Events never wait for a slow consumer (the
//! engine's tasks must keep answering the relay); one that stops reading loses events,
//! counted and logged.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use protocol::control::{
    ChatMessage, ErrorCode, FileInfo, JoinRefusal, KnockWithdrawal, LeaveReason, MediaDevice, MeetingWelcome,
    Participant, ParticipantId, Reaction, UploadStopReason,
};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::stats::{FileDirection, QualityInfo, StatsSnapshot};

/// Capacity of the event channel.
pub const EVENT_CHANNEL_CAPACITY: usize = 4096;
/// Something that happened in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SessionEvent {
    /// The relay accepted our `HELLO`; media goes to `udp_port` on the relay's host.
    Connected {
        server_name: String,
        udp_port: u16,
    },
    /// We are in the waiting room; the host has been asked.
    Waiting {
        code: String,
        request_id: u64,
    },
    /// (host or co-host) Someone asks to join; answer with `admit` or `deny`. `waiting_since_ms`:
    /// the relay's time of the knock (ms since the Unix epoch).
    Knock {
        request_id: u64,
        display_name: String,
        waiting_since_ms: u64,
    },
    /// (host or co-host) A knock went away unanswered by us (or another moderator answered it).
    KnockWithdrawn {
        request_id: u64,
        reason: KnockWithdrawal,
    },
    /// Our join request did not lead into the meeting.
    JoinRefused {
        reason: JoinRefusal,
    },
    /// We are in the meeting (created it, or were admitted).
    Joined {
        welcome: MeetingWelcome,
    },
    /// Media is end-to-end encrypted under the meeting key of `epoch`; `safety_code` (twelve
    /// digits) is the same for everyone who holds that key with the same roster. Sent after
    /// `Joined` and whenever the key or the roster changes.
    Encryption {
        epoch: u32,
        safety_code: String,
    },
    ParticipantJoined {
        participant: Participant,
    },
    ParticipantLeft {
        participant_id: ParticipantId,
        reason: LeaveReason,
    },
    ParticipantUpdated {
        participant: Participant,
    },
    HostChanged {
        host_id: ParticipantId,
    },
    /// The host removed us; we are out of the meeting (the relay closes the connection).
    Removed,
    /// The host (`by`) locked or unlocked the meeting.
    MeetingLocked {
        locked: bool,
        by: ParticipantId,
    },
    /// A moderator (`by`) muted us: the microphone is already off (`set_mic(true)` unmutes).
    MutedByHost {
        by: ParticipantId,
    },
    /// A moderator (`by`) asks us to turn `device` on; nothing turns on by itself.
    MediaRequested {
        by: ParticipantId,
        device: MediaDevice,
    },
    /// The host (`by`) ended the meeting for everyone; we are out of it.
    MeetingEnded {
        by: ParticipantId,
    },
    /// Our screen share stopped by itself: the capture failed or the shared window closed.
    ScreenShareEnded {
        reason: String,
    },
    /// Someone (us included) reacted.
    Reaction {
        participant_id: ParticipantId,
        reaction: Reaction,
    },
    /// We left the meeting after `leave()`.
    Left,
    Chat {
        message: ChatMessage,
    },
    /// A file can be downloaded with `accept_file`.
    FileOffer {
        file: FileInfo,
    },
    /// Progress of one of our uploads or downloads.
    FileProgress(FileProgress),
    /// An upload was accepted by the relay (`path` = the local file) or a download was saved
    /// and its SHA-256 matched (`path` = where it was saved).
    FileDone {
        /// The id `send_file` returned, for uploads.
        upload_id: Option<u64>,
        file_id: u64,
        direction: FileDirection,
        name: String,
        path: PathBuf,
        sha256: String,
        verified: bool,
    },
    /// A transfer failed. `resumable` downloads keep their `.part` file; accepting the same
    /// offer again continues where it stopped.
    FileFailed {
        /// The id `send_file` returned, for uploads.
        upload_id: Option<u64>,
        /// None for an upload the relay never gave an id.
        file_id: Option<u64>,
        direction: FileDirection,
        name: String,
        /// What went wrong, for a program to act on.
        failure: FileFailure,
        /// What went wrong, in words.
        reason: String,
        resumable: bool,
    },
    /// Someone else's upload, as the relay reports it (never this session's own).
    RemoteFileProgress {
        file_id: u64,
        name: String,
        sender_id: ParticipantId,
        bytes: u64,
        size: u64,
    },
    /// Someone else's upload stopped before its file was offered (after `RemoteFileProgress`
    /// of it): it will not finish.
    RemoteFileStopped {
        file_id: u64,
        name: String,
        sender_id: ParticipantId,
        reason: UploadStopReason,
    },
    /// Audio levels of the remote participants, a few times a second.
    AudioLevel {
        levels: Vec<ParticipantLevel>,
    },
    /// The level of what our microphone sends (after voice processing) over the last 100 ms,
    /// ten times a second while a source is open; silence while muted.
    MicLevel {
        rms_dbfs: f32,
        speaking: bool,
    },
    /// The loudest remote participant who is speaking changed (`None`: nobody speaks).
    ActiveSpeaker {
        participant_id: Option<ParticipantId>,
    },
    /// The encoder moved on the quality ladder.
    QualityChanged {
        quality: QualityInfo,
    },
    Stats(Box<StatsSnapshot>),
    /// Something went wrong; the session goes on unless a `Disconnected` follows. `code` is
    /// set when the relay sent the error; `retry_after_ms` when the relay rate-limited the
    /// request (`RATE_LIMITED`) and said when it may be repeated.
    Error {
        code: Option<ErrorCode>,
        message: String,
        retry_after_ms: Option<u64>,
    },
    /// The connection to the relay broke while we were in a meeting (it closed, or nothing
    /// came from the relay for a few seconds): the session reconnects and takes its seat back
    /// on its own. `Resumed` or `Disconnected` follows. The others see us as reconnecting;
    /// media still flows wherever the path allows.
    Reconnecting {
        reason: String,
        /// How long nothing had come from the relay when the break was noticed (0 when the
        /// connection closed or failed outright): the drop began that long before this event.
        unheard_ms: u64,
    },
    /// Our seat is back, `after_ms` after the connection broke, at the `attempts`-th attempt:
    /// same participant id, no knock. What changed meanwhile arrives as the usual events
    /// (participants joined, left or updated, the host, chat we missed) before this one.
    Resumed {
        after_ms: u64,
        attempts: u32,
    },
    /// The control connection is gone; the session is over. `meeting_code` is the meeting we
    /// were in when it was lost for good (the seat could not be resumed): knocking on it again
    /// from a new session gets back in.
    Disconnected {
        reason: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meeting_code: Option<String>,
    },
}

/// One participant's audio level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticipantLevel {
    pub participant_id: ParticipantId,
    pub rms_dbfs: f32,
    pub speaking: bool,
}

/// Why a file transfer failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "code", rename_all = "snake_case")]
pub enum FileFailure {
    /// The relay refused the transfer with this code (file too large, unknown file, busy…).
    Refused(ErrorCode),
    /// The downloaded bytes did not hash to the offer's SHA-256; the file was removed.
    HashMismatch,
    /// Reading the file to upload or writing the download failed.
    LocalFile,
    /// The relay could not be reached, closed the connection or stopped answering.
    Connection,
    /// The relay broke the file protocol.
    Protocol,
    /// Every numbered variant of the download's name is taken in the folder.
    NoFreeName,
    /// Not started: not in a meeting, or too many transfers at once.
    NotStarted,
    /// Cancelled by `cancel_file`.
    Cancelled,
}

/// Progress of one file transfer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileProgress {
    /// The id `send_file` returned, for uploads.
    pub upload_id: Option<u64>,
    pub file_id: u64,
    pub direction: FileDirection,
    pub name: String,
    /// Bytes acknowledged by the relay (upload) or written to disk (download).
    pub bytes: u64,
    pub total: u64,
    /// Throughput over the last second, bytes/s.
    pub rate_bps: f64,
    /// Congestion window, chunks (uploads only: downloads are paced by the relay).
    pub cwnd: Option<u32>,
    /// Bytes per chunk, the unit of `cwnd` and `ssthresh` (uploads only; the relay sets it).
    pub chunk_size: Option<u32>,
    pub ssthresh: Option<u32>,
    /// Which growth rule the upload's window follows (uploads only).
    pub phase: Option<protocol::reno::RenoPhase>,
    /// Where this download resumed (0 for a fresh one).
    pub resumed_from: u64,
}

/// Receiving end of a session's events.
pub type EventReceiver = mpsc::Receiver<SessionEvent>;

/// Sending end of the event channel, shared by every task and thread of a session.
#[derive(Debug, Clone)]
pub(crate) struct EventSender {
    tx: mpsc::Sender<SessionEvent>,
    dropped: Arc<AtomicU64>,
}

impl EventSender {
    pub(crate) fn new(tx: mpsc::Sender<SessionEvent>) -> Self {
        Self { tx, dropped: Arc::new(AtomicU64::new(0)) }
    }

    /// Queues an event without waiting. Only a consumer that stopped reading loses events;
    /// those are counted and logged.
    pub(crate) fn emit(&self, event: SessionEvent) {
        match self.tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(ev)) => {
                let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n.is_power_of_two() {
                    tracing::warn!(dropped = n, kind = ?std::mem::discriminant(&ev), "event consumer is not keeping up");
                }
            }
        }
    }

    /// Shorthand for an [`SessionEvent::Error`] raised by the engine itself.
    pub(crate) fn error(&self, message: impl Into<String>) {
        let message = message.into();
        tracing::warn!("{message}");
        self.emit(SessionEvent::Error { code: None, message, retry_after_ms: None });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialize_with_a_type_tag() {
        let ev = SessionEvent::HostChanged { host_id: 2 };
        let json = serde_json::to_value(&ev).unwrap();
        assert_eq!(json["type"], "host_changed");
        assert_eq!(json["host_id"], 2);
        let ev = SessionEvent::Error { code: Some(ErrorCode::NotHost), message: "x".into(), retry_after_ms: None };
        let json = serde_json::to_string(&ev).unwrap();
        assert_eq!(serde_json::from_str::<SessionEvent>(&json).unwrap(), ev);
    }

    #[test]
    fn a_full_channel_drops_and_counts_instead_of_waiting() {
        let (tx, mut rx) = mpsc::channel(3);
        let events = EventSender::new(tx);
        for _ in 0..10 {
            events.emit(SessionEvent::Left);
        }
        assert_eq!(events.dropped.load(Ordering::Relaxed), 7);
        let mut n = 0;
        while rx.try_recv().is_ok() {
            n += 1;
        }
        assert_eq!(n, 3);
    }
}
