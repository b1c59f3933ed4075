//! The JSON shapes the page sees: command results and event payloads of `docs/app-ipc.md`, in
//! camelCase. They mirror `ui/src/core/types.ts` field for field; the conversions from the
//! engine's and the protocol's types live here too, so the commands stay one-liners.

use serde::{Deserialize, Serialize};

use client_core::stats::{FileDirection, TransferState};
use client_core::StatsSnapshot as EngineStats;
use protocol::control::{self as pc, ParticipantId};

use crate::error::AppError;

/// Someone in the meeting.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    pub id: ParticipantId,
    pub display_name: String,
    pub is_host: bool,
    pub mic_on: bool,
    pub camera_on: bool,
    pub speaking: bool,
    pub joined_at_ms: u64,
}

impl From<pc::Participant> for Participant {
    fn from(p: pc::Participant) -> Self {
        Self {
            id: p.id,
            display_name: p.display_name,
            is_host: p.is_host,
            mic_on: p.mic_on,
            camera_on: p.camera_on,
            speaking: p.speaking,
            joined_at_ms: p.joined_at_ms,
        }
    }
}

/// A file spooled on the relay.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub file_id: u64,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub sender_id: ParticipantId,
    pub sender_name: String,
}

impl From<pc::FileInfo> for FileInfo {
    fn from(f: pc::FileInfo) -> Self {
        Self {
            file_id: f.file_id,
            name: f.name,
            size: f.size,
            sha256: f.sha256,
            sender_id: f.sender_id,
            sender_name: f.sender_name,
        }
    }
}

/// One chat message.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: u64,
    pub sender_id: ParticipantId,
    pub sender_name: String,
    pub text: String,
    pub timestamp_ms: u64,
    pub client_msg_id: Option<u64>,
    pub file: Option<FileInfo>,
}

impl From<pc::ChatMessage> for ChatMessage {
    fn from(m: pc::ChatMessage) -> Self {
        Self {
            id: m.id,
            sender_id: m.sender_id,
            sender_name: m.sender_name,
            text: m.text,
            timestamp_ms: m.timestamp_ms,
            client_msg_id: m.client_msg_id,
            file: m.file.map(Into::into),
        }
    }
}

/// A capture or playback device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    pub id: String,
    pub label: String,
    pub selected: bool,
}

/// Result of `list_devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceList {
    pub cameras: Vec<Device>,
    pub microphones: Vec<Device>,
    pub speakers: Vec<Device>,
}

/// What the app remembers between runs, as the page sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub display_name: String,
    pub last_relay_addr: String,
}

/// Result of `create_meeting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MeetingCreated {
    pub code: String,
    pub relay_addr: String,
    pub participant_id: ParticipantId,
}

/// Result of `send_chat`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatSent {
    pub client_msg_id: u64,
}

/// Result of `send_file` and `accept_file`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferStarted {
    pub transfer_id: String,
}

/// Which way a transfer goes, from this app's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Direction {
    Upload,
    Download,
    Remote,
}

impl From<FileDirection> for Direction {
    fn from(d: FileDirection) -> Self {
        match d {
            FileDirection::Upload => Direction::Upload,
            FileDirection::Download => Direction::Download,
        }
    }
}

/// Per-participant receive statistics.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantStats {
    pub participant_id: ParticipantId,
    pub fps: f64,
    pub bitrate_kbps: f64,
    pub loss: f64,
    pub jitter_ms: f64,
    pub width: u32,
    pub height: u32,
}

/// One stats sample as the page charts it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub timestamp_ms: u64,
    pub rtt_ms: f64,
    pub loss: f64,
    pub jitter_ms: f64,
    pub fps_sent: f64,
    pub fps_received: f64,
    pub bitrate_in_kbps: f64,
    pub bitrate_out_kbps: f64,
    pub cwnd_bytes: Option<u64>,
    pub quality_level: usize,
    pub participants: Vec<ParticipantStats>,
}

impl StatsSnapshot {
    /// Condenses the engine's detailed snapshot into the page's figures. Loss and jitter are the
    /// means over the remote streams (of their video and audio, whichever is worse), FPS
    /// received is the mean per remote video stream, so one chart line means the same with one
    /// or ten participants.
    pub fn from_engine(s: &EngineStats) -> Self {
        let participants: Vec<ParticipantStats> = s
            .streams
            .iter()
            .map(|r| ParticipantStats {
                participant_id: r.participant_id,
                fps: r.video.fps,
                bitrate_kbps: r.bitrate_kbps,
                loss: r.video.loss.max(r.audio.loss).clamp(0.0, 1.0),
                jitter_ms: r.video.jitter_ms.max(r.audio.jitter_ms),
                width: r.video.last_width,
                height: r.video.last_height,
            })
            .collect();
        let n = participants.len().max(1) as f64;
        let cwnd_bytes = s
            .files
            .iter()
            .filter(|f| f.direction == FileDirection::Upload && f.state == TransferState::Active)
            .filter_map(|f| Some(u64::from(f.cwnd?) * u64::from(f.chunk_size?)))
            .max();
        Self {
            timestamp_ms: s.timestamp_ms,
            rtt_ms: s.rtt_ms.unwrap_or(0.0),
            // fold from +0.0: an empty f64 sum is -0.0, which the page would print as "-0.0%".
            loss: participants.iter().fold(0.0, |a, p| a + p.loss) / n,
            jitter_ms: participants.iter().fold(0.0, |a, p| a + p.jitter_ms) / n,
            fps_sent: s.video_out.fps,
            fps_received: participants.iter().fold(0.0, |a, p| a + p.fps) / n,
            bitrate_in_kbps: s.bitrate_in_kbps,
            bitrate_out_kbps: s.bitrate_out_kbps,
            cwnd_bytes,
            quality_level: s.quality.level,
            participants,
        }
    }
}

/// Every event the shell emits, with its payload. [`UiEvent::name`] is the event name.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum UiEvent {
    Waiting(Waiting),
    Knock(Knock),
    KnockWithdrawn(KnockWithdrawn),
    JoinRefused(JoinRefused),
    Joined(Joined),
    ParticipantJoined(ParticipantWrap),
    ParticipantLeft(ParticipantLeft),
    ParticipantUpdated(ParticipantWrap),
    HostChanged(HostChanged),
    Removed,
    Chat(ChatWrap),
    FileOffer(FileOffer),
    FileProgress(FileProgressPayload),
    FileDone(FileDonePayload),
    FileFailed(FileFailedPayload),
    ActiveSpeaker(ActiveSpeaker),
    Stats(StatsSnapshot),
    Error(ErrorPayload),
    Disconnected(Disconnected),
}

impl UiEvent {
    /// The event name of the contract.
    pub fn name(&self) -> &'static str {
        match self {
            UiEvent::Waiting(_) => "waiting",
            UiEvent::Knock(_) => "knock",
            UiEvent::KnockWithdrawn(_) => "knock-withdrawn",
            UiEvent::JoinRefused(_) => "join-refused",
            UiEvent::Joined(_) => "joined",
            UiEvent::ParticipantJoined(_) => "participant-joined",
            UiEvent::ParticipantLeft(_) => "participant-left",
            UiEvent::ParticipantUpdated(_) => "participant-updated",
            UiEvent::HostChanged(_) => "host-changed",
            UiEvent::Removed => "removed",
            UiEvent::Chat(_) => "chat",
            UiEvent::FileOffer(_) => "file-offer",
            UiEvent::FileProgress(_) => "file-progress",
            UiEvent::FileDone(_) => "file-done",
            UiEvent::FileFailed(_) => "file-failed",
            UiEvent::ActiveSpeaker(_) => "active-speaker",
            UiEvent::Stats(_) => "stats",
            UiEvent::Error(_) => "error",
            UiEvent::Disconnected(_) => "disconnected",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub code: String,
    pub request_id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Knock {
    pub request_id: u64,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KnockWithdrawn {
    pub request_id: u64,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JoinRefused {
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub code: String,
    pub participant_id: ParticipantId,
    pub host_id: ParticipantId,
    pub relay_addr: String,
    pub roster: Vec<Participant>,
    pub chat_history: Vec<ChatMessage>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantWrap {
    pub participant: Participant,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantLeft {
    pub participant_id: ParticipantId,
    pub reason: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostChanged {
    pub host_id: ParticipantId,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatWrap {
    pub message: ChatMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileOffer {
    pub file: FileInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileProgressPayload {
    pub transfer_id: String,
    pub direction: Direction,
    pub file_id: Option<u64>,
    pub name: String,
    pub size: u64,
    pub bytes: u64,
    pub rate_bytes_per_sec: f64,
    pub cwnd_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileDonePayload {
    pub transfer_id: String,
    pub direction: Direction,
    pub file_id: u64,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub verified: bool,
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileFailedPayload {
    pub transfer_id: String,
    pub direction: Direction,
    pub file_id: Option<u64>,
    pub name: String,
    pub error: ErrorPayload,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSpeaker {
    pub participant_id: Option<ParticipantId>,
}

/// An [`AppError`] frozen into its wire shape, so events can be cloned and compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorPayload {
    pub code: crate::error::ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<crate::error::DeviceKind>,
    /// With `rateLimited`: milliseconds until the relay accepts the request again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl From<&AppError> for ErrorPayload {
    fn from(e: &AppError) -> Self {
        Self { code: e.code(), message: e.to_string(), device: e.device(), retry_after_ms: e.retry_after_ms() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Disconnected {
    pub message: String,
}

/// The contract's word for a withdrawal reason.
pub fn knock_withdrawal(r: pc::KnockWithdrawal) -> &'static str {
    match r {
        pc::KnockWithdrawal::Cancelled => "cancelled",
        pc::KnockWithdrawal::Expired => "expired",
        pc::KnockWithdrawal::Disconnected => "disconnected",
        pc::KnockWithdrawal::Answered => "answered",
    }
}

/// The contract's word for a refusal reason.
pub fn join_refusal(r: pc::JoinRefusal) -> &'static str {
    match r {
        pc::JoinRefusal::Denied => "denied",
        pc::JoinRefusal::Expired => "expired",
        pc::JoinRefusal::MeetingEnded => "meetingEnded",
        pc::JoinRefusal::MeetingFull => "meetingFull",
    }
}

/// The contract's word for a leave reason.
pub fn leave_reason(r: pc::LeaveReason) -> &'static str {
    match r {
        pc::LeaveReason::Left => "left",
        pc::LeaveReason::Disconnected => "disconnected",
        pc::LeaveReason::TimedOut => "timedOut",
        pc::LeaveReason::Removed => "removed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use client_core::stats::{FileTransferStats, RemoteStreamStats};
    use serde_json::json;

    #[test]
    fn payloads_are_camel_case() {
        let p = Participant {
            id: 3,
            display_name: "Ada".into(),
            is_host: true,
            mic_on: false,
            camera_on: true,
            speaking: false,
            joined_at_ms: 7,
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"id":3,"displayName":"Ada","isHost":true,"micOn":false,"cameraOn":true,"speaking":false,"joinedAtMs":7})
        );
        let e = UiEvent::ParticipantLeft(ParticipantLeft {
            participant_id: 3,
            reason: leave_reason(pc::LeaveReason::TimedOut),
        });
        assert_eq!(e.name(), "participant-left");
        assert_eq!(serde_json::to_value(&e).unwrap(), json!({"participantId":3,"reason":"timedOut"}));
        assert_eq!(serde_json::to_value(UiEvent::Removed).unwrap(), json!(null));
        assert_eq!(join_refusal(pc::JoinRefusal::MeetingEnded), "meetingEnded");
    }

    #[test]
    fn stats_condense_streams_and_report_the_upload_window_in_bytes() {
        let mut s = EngineStats { timestamp_ms: 5, rtt_ms: Some(12.5), bitrate_in_kbps: 900.0, ..Default::default() };
        for (id, fps, loss) in [(2u32, 20.0, 0.0), (3, 10.0, 0.2)] {
            let mut r = RemoteStreamStats { participant_id: id, bitrate_kbps: 450.0, ..Default::default() };
            r.video.fps = fps;
            r.video.loss = loss;
            r.video.last_width = 640;
            r.video.last_height = 360;
            s.streams.push(r);
        }
        s.files.push(FileTransferStats {
            direction: FileDirection::Upload,
            cwnd: Some(10),
            chunk_size: Some(16_384),
            state: TransferState::Active,
            ..Default::default()
        });
        s.quality.level = 2;
        let ui = StatsSnapshot::from_engine(&s);
        assert_eq!(ui.rtt_ms, 12.5);
        assert_eq!(ui.fps_received, 15.0);
        assert!((ui.loss - 0.1).abs() < 1e-9);
        assert_eq!(ui.cwnd_bytes, Some(10 * 16_384));
        assert_eq!(ui.quality_level, 2);
        assert_eq!(ui.participants.len(), 2);
        let v = serde_json::to_value(&ui).unwrap();
        assert_eq!(v["participants"][1]["participantId"], 3);
        assert_eq!(v["bitrateInKbps"], 900.0);
        let empty = StatsSnapshot::from_engine(&EngineStats::default());
        assert!(empty.cwnd_bytes.is_none());
        assert!(empty.loss.is_sign_positive() && empty.fps_received.is_sign_positive());
    }
}
