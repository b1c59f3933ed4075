//! The JSON shapes the page sees: command results and event payloads of `docs/app-ipc.md`, in
//! camelCase. The page's TypeScript types are generated from these (`ts-rs`, see
//! [`crate::typescript`]) into `ui/src/core/ipc-types.ts`, so the doc comments here are the
//! contract's. The conversions from the engine's and the protocol's types live here too, so the
//! commands stay one-liners.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

use client_core::media::{VoicePreferences, VoiceSettings, SILENCE_DBFS};
use client_core::stats::{FileDirection, TransferState};
use client_core::StatsSnapshot as EngineStats;
use protocol::control::{self as pc, ParticipantId};

use crate::error::{AppError, DeviceKind, ErrorCode};

/// Someone in the meeting as the roster shows them.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    #[ts(type = "ParticipantId")]
    pub id: ParticipantId,
    pub display_name: String,
    pub is_host: bool,
    pub mic_on: bool,
    pub camera_on: bool,
    pub speaking: bool,
    /// Relay time (ms since the Unix epoch) at which the participant was admitted.
    pub joined_at_ms: u64,
    /// The participant's connection dropped and the relay holds their seat for a grace window
    /// (30 s by default): a `participant-updated` with false when they are back, a
    /// `participant-left` when the window ends without them.
    pub reconnecting: bool,
    /// A co-host: admits, denies, mutes and removes like the host.
    pub is_cohost: bool,
    /// Set while their hand is up: the meeting's count of raised hands when it went up, so
    /// listing hands by it, lowest first, puts the first raised first.
    #[ts(type = "number | null")]
    pub hand_raised: Option<u64>,
    /// Sharing a screen: its frames come with the tile id `screenTileId(id)`.
    pub presenting: bool,
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
            reconnecting: p.reconnecting,
            is_cohost: p.is_cohost,
            hand_raised: p.hand_raised,
            presenting: p.presenting,
        }
    }
}

/// What the host makes someone (`set_role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Role {
    /// The host role moves to them; this app becomes a participant.
    Host,
    CoHost,
    Participant,
}

impl From<Role> for pc::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Host => Self::Host,
            Role::CoHost => Self::CoHost,
            Role::Participant => Self::Participant,
        }
    }
}

/// A device the host asks someone to turn on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum MediaDevice {
    Mic,
    Camera,
}

impl From<MediaDevice> for pc::MediaDevice {
    fn from(d: MediaDevice) -> Self {
        match d {
            MediaDevice::Mic => Self::Mic,
            MediaDevice::Camera => Self::Camera,
        }
    }
}

impl From<pc::MediaDevice> for MediaDevice {
    fn from(d: pc::MediaDevice) -> Self {
        match d {
            pc::MediaDevice::Mic => Self::Mic,
            pc::MediaDevice::Camera => Self::Camera,
        }
    }
}

/// A reaction (👍 ❤️ 😂 😮 👏 🎉, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum Reaction {
    ThumbsUp,
    Heart,
    Laugh,
    Surprised,
    Clap,
    Party,
}

impl From<Reaction> for pc::Reaction {
    fn from(r: Reaction) -> Self {
        match r {
            Reaction::ThumbsUp => Self::ThumbsUp,
            Reaction::Heart => Self::Heart,
            Reaction::Laugh => Self::Laugh,
            Reaction::Surprised => Self::Surprised,
            Reaction::Clap => Self::Clap,
            Reaction::Party => Self::Party,
        }
    }
}

impl From<pc::Reaction> for Reaction {
    fn from(r: pc::Reaction) -> Self {
        match r {
            pc::Reaction::ThumbsUp => Self::ThumbsUp,
            pc::Reaction::Heart => Self::Heart,
            pc::Reaction::Laugh => Self::Laugh,
            pc::Reaction::Surprised => Self::Surprised,
            pc::Reaction::Clap => Self::Clap,
            pc::Reaction::Party => Self::Party,
        }
    }
}

/// A file spooled on the relay whose SHA-256 the relay verified.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub file_id: u64,
    pub name: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the whole file.
    pub sha256: String,
    #[ts(type = "ParticipantId")]
    pub sender_id: ParticipantId,
    pub sender_name: String,
    /// The relay that held it stopped and another took the meeting over: it cannot be
    /// downloaded any more.
    pub lost: bool,
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
            lost: f.lost,
        }
    }
}

/// One chat message as the relay stamped it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// Strictly increasing within a meeting: the order everyone sees.
    pub id: u64,
    #[ts(type = "ParticipantId")]
    pub sender_id: ParticipantId,
    pub sender_name: String,
    pub text: String,
    /// Relay time (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// Echo of the id `send_chat` returned, on the sender's own messages only.
    pub client_msg_id: Option<u64>,
    /// Set when the message announces a file.
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// Opaque id to pass back in `choose_devices`.
    pub id: String,
    /// Human-readable name.
    pub label: String,
    /// True for the device currently in use.
    pub selected: bool,
}

/// Result of `list_devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeviceList {
    pub cameras: Vec<Device>,
    pub microphones: Vec<Device>,
    pub speakers: Vec<Device>,
}

/// Arguments of `choose_devices` (ids from `list_devices`): omitted kinds stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct DeviceChoice {
    #[ts(optional)]
    pub camera: Option<String>,
    #[ts(optional)]
    pub microphone: Option<String>,
    #[ts(optional)]
    pub speaker: Option<String>,
}

/// What the app remembers between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub display_name: String,
    /// The relay address last used to join, "host:port"; empty when none.
    pub last_relay_addr: String,
    /// Cancel the echo of what the speaker plays in the microphone signal (on by default).
    pub echo_cancellation: bool,
    /// Suppress steady background noise in the microphone signal (on by default).
    pub noise_suppression: bool,
    /// A desktop notification, while the window is not focused, for a knock, a raised hand
    /// (host) and a chat message (on by default).
    pub notifications: bool,
    /// A short sound when someone joins, leaves or knocks (off by default).
    pub sounds: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            display_name: String::new(),
            last_relay_addr: String::new(),
            echo_cancellation: true,
            noise_suppression: true,
            notifications: true,
            sounds: false,
        }
    }
}

impl Settings {
    /// The engine's voice processing for these settings: a stage switched off here is off;
    /// otherwise the engine decides (on for a microphone). Gain control has no switch.
    pub fn voice_preferences(&self) -> VoicePreferences {
        VoicePreferences {
            echo_cancellation: (!self.echo_cancellation).then_some(false),
            noise_suppression: (!self.noise_suppression).then_some(false),
            gain_control: None,
        }
    }

    /// The stages that run on a microphone with these settings.
    pub fn microphone_voice(&self) -> VoiceSettings {
        self.voice_preferences().resolve(true)
    }
}

/// Result of `create_meeting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MeetingCreated {
    /// Six ASCII digits.
    pub code: String,
    /// The address others should enter to join: the LAN IP and port of the relay.
    pub relay_addr: String,
    /// The invitation "Copy invite" copies (as in the `joined` event).
    pub invitation: Invitation,
    #[ts(type = "ParticipantId")]
    pub participant_id: ParticipantId,
}

/// An invitation to the current meeting (docs/protocol.md §1.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    /// `parlor://join?relay=…&code=…&fp=…`.
    pub link: String,
    /// The link and each part on a line of its own, to paste into a message.
    pub text: String,
    /// The relay certificate's SHA-256 fingerprint the invitation pins (64 hex digits); none
    /// for a relay with a CA-signed certificate.
    pub fingerprint: Option<String>,
}

impl From<&protocol::invite::Invite> for Invitation {
    fn from(invite: &protocol::invite::Invite) -> Self {
        Self { link: invite.link(), text: invite.text(), fingerprint: invite.fingerprint.map(|f| f.to_string()) }
    }
}

/// Result of `read_invitation`: what a pasted invitation names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct InvitationFields {
    pub relay_addr: String,
    pub code: String,
    /// The fingerprint to pass to `join_meeting`, if the invitation pins one.
    pub fingerprint: Option<String>,
}

/// Result of `check_for_update`: a newer, signed version of the app that can be installed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct UpdateInfo {
    /// The new version, e.g. "0.2.0".
    pub version: String,
    /// The version running now.
    pub current_version: String,
    /// The release notes, if the update has any.
    pub notes: Option<String>,
}

/// With `relayCertificateChanged` and `notTheInvitedRelay`: the certificate the app expected
/// and the one the relay presented, as SHA-256 fingerprints (64 hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct CertificateMismatch {
    pub relay_addr: String,
    pub expected: String,
    pub presented: String,
}

/// Result of `send_chat`: the id the relay will echo in the matching `chat` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChatSent {
    pub client_msg_id: u64,
}

/// Result of `send_file` and `accept_file`: the id of the transfer in `file-*` events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct TransferStarted {
    pub transfer_id: String,
}

/// Result of `open_file`: what the shell did with the downloaded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum FileOpened {
    /// Opened with the system's default program.
    Opened,
    /// A program or script (by its type): shown selected in its folder instead, so a click in
    /// a meeting never runs something a stranger sent.
    ShownInFolder,
}

/// Which way a file transfer goes, from this app's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum TransferDirection {
    /// This app uploads a file it sends to the meeting.
    Upload,
    /// This app downloads a file someone offered.
    Download,
    /// Someone else uploads to the relay (progress reported by the relay).
    Remote,
}

impl From<FileDirection> for TransferDirection {
    fn from(d: FileDirection) -> Self {
        match d {
            FileDirection::Upload => TransferDirection::Upload,
            FileDirection::Download => TransferDirection::Download,
        }
    }
}

/// Why a knock vanished from the host's queue without the host answering it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum KnockWithdrawal {
    Cancelled,
    Expired,
    Disconnected,
    Answered,
}

impl From<pc::KnockWithdrawal> for KnockWithdrawal {
    fn from(r: pc::KnockWithdrawal) -> Self {
        match r {
            pc::KnockWithdrawal::Cancelled => Self::Cancelled,
            pc::KnockWithdrawal::Expired => Self::Expired,
            pc::KnockWithdrawal::Disconnected => Self::Disconnected,
            pc::KnockWithdrawal::Answered => Self::Answered,
        }
    }
}

/// Why a join request did not lead into the meeting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum JoinRefusal {
    Denied,
    Expired,
    MeetingEnded,
    MeetingFull,
    /// The host locked the meeting.
    Locked,
}

impl From<pc::JoinRefusal> for JoinRefusal {
    fn from(r: pc::JoinRefusal) -> Self {
        match r {
            pc::JoinRefusal::Denied => Self::Denied,
            pc::JoinRefusal::Expired => Self::Expired,
            pc::JoinRefusal::MeetingEnded => Self::MeetingEnded,
            pc::JoinRefusal::MeetingFull => Self::MeetingFull,
            pc::JoinRefusal::Locked => Self::Locked,
        }
    }
}

/// Why a participant left the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum LeaveReason {
    Left,
    Disconnected,
    TimedOut,
    Removed,
}

impl From<pc::LeaveReason> for LeaveReason {
    fn from(r: pc::LeaveReason) -> Self {
        match r {
            pc::LeaveReason::Left => Self::Left,
            pc::LeaveReason::Disconnected => Self::Disconnected,
            pc::LeaveReason::TimedOut => Self::TimedOut,
            pc::LeaveReason::Removed => Self::Removed,
        }
    }
}

/// Per-participant receive statistics, one row each in the stats panel.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantStats {
    #[ts(type = "ParticipantId")]
    pub participant_id: ParticipantId,
    /// Frames per second received (decoded) from this participant.
    pub fps: f64,
    pub bitrate_kbps: f64,
    /// Loss fraction 0..=1 of this participant's media as received here.
    pub loss: f64,
    pub jitter_ms: f64,
    /// Width of the last decoded frame (0 when none).
    pub width: u32,
    /// Height of the last decoded frame (0 when none).
    pub height: u32,
    /// Their shared screen, while any of it arrives.
    pub screen: Option<ScreenInStats>,
}

/// A remote shared screen in the stats panel.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ScreenInStats {
    pub width: u32,
    pub height: u32,
    /// Slices (parts of updates) received per second.
    pub slices_per_second: f64,
    pub bitrate_kbps: f64,
    pub loss: f64,
    /// Tiles possibly out of date now, and for how long the oldest has been, ms.
    pub stale_tiles: u32,
    pub stale_ms: f64,
    pub refreshes_requested: u64,
}

/// This app's own shared screen in the stats panel.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ScreenOutStats {
    pub width: u16,
    pub height: u16,
    /// Updates sent per second (a still screen sends only its slow refresh).
    pub fps: f64,
    pub bitrate_kbps: f64,
    /// Fraction 0..=1 of the picture that changed per capture.
    pub changed_fraction: f64,
    /// The screen ladder's level, e.g. "1080p".
    pub quality: String,
    pub encode_ms: f64,
}

/// One stats sample; the shell emits one a second (`stats` event) and returns one (`get_stats`).
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    /// Wall-clock time of the sample, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Round-trip time to the relay.
    pub rtt_ms: f64,
    /// Loss fraction 0..=1 of all media received over the last interval.
    pub loss: f64,
    pub jitter_ms: f64,
    pub fps_sent: f64,
    pub fps_received: f64,
    pub bitrate_in_kbps: f64,
    pub bitrate_out_kbps: f64,
    /// Congestion window of the active file transfer, bytes; null when no transfer runs.
    pub cwnd_bytes: Option<u64>,
    /// Index on the quality ladder: 0 = 144p, 1 = 240p, 2 = 360p, 3 = 480p.
    pub quality_level: usize,
    pub participants: Vec<ParticipantStats>,
    /// The level of what the microphone sends (after voice processing), dBFS.
    pub mic_level_dbfs: f32,
    /// Whether echo cancellation and noise suppression run on the microphone.
    pub echo_cancellation: bool,
    pub noise_suppression: bool,
    /// The echo path delay the echo canceller estimated, ms; null while it has none.
    pub aec_delay_ms: Option<i32>,
    /// How much the echo canceller takes off the echo, dB; null while it has no estimate.
    pub erle_db: Option<f64>,
    /// This app's shared screen, while it presents.
    pub screen_out: Option<ScreenOutStats>,
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
                screen: r.screen.as_ref().map(|sc| ScreenInStats {
                    width: sc.width,
                    height: sc.height,
                    slices_per_second: sc.slices_per_second,
                    bitrate_kbps: sc.bitrate_kbps,
                    loss: sc.loss,
                    stale_tiles: sc.stale_tiles,
                    stale_ms: sc.stale_ms,
                    refreshes_requested: sc.refreshes_requested,
                }),
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
            // Nothing is sent while muted (or before the first frame): silence.
            mic_level_dbfs: if s.audio_out.enabled { s.audio_out.level_dbfs } else { SILENCE_DBFS },
            echo_cancellation: s.audio_out.echo_cancellation,
            noise_suppression: s.audio_out.noise_suppression,
            aec_delay_ms: s.audio_out.aec_delay_ms,
            erle_db: s.audio_out.erle_db,
            screen_out: s.screen_out.enabled.then(|| ScreenOutStats {
                width: s.screen_out.width,
                height: s.screen_out.height,
                fps: s.screen_out.fps,
                bitrate_kbps: s.screen_out.bitrate_kbps,
                changed_fraction: s.screen_out.changed_fraction,
                quality: s.screen_out.quality.name.clone(),
                encode_ms: s.screen_out.encode_ms,
            }),
        }
    }
}

/// Every event the shell emits: `name` is the event name the page listens to and `payload` what
/// it receives (`removed` has none: the page gets null). `UiEvent::to_page` splits the two.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(tag = "name", content = "payload", rename_all = "kebab-case")]
#[ts(rename = "SessionEvent")]
pub enum UiEvent {
    /// The joiner is in the waiting room; the host has been asked.
    Waiting(Waiting),
    /// (Host or co-host) someone asks to join. Knocks queue; each is answered by `requestId`.
    Knock(Knock),
    /// (Host or co-host) a knock went away unanswered by this app.
    KnockWithdrawn(KnockWithdrawn),
    /// (Joiner) the join did not happen.
    JoinRefused(JoinRefused),
    /// This app is in the meeting (after create or admission).
    Joined(Joined),
    /// Media is end-to-end encrypted; the safety code to compare (after `joined`, and again
    /// whenever the key or the roster changes).
    Encryption(Encryption),
    ParticipantJoined(ParticipantWrap),
    ParticipantLeft(ParticipantLeft),
    ParticipantUpdated(ParticipantWrap),
    HostChanged(HostChanged),
    /// This app was removed by the host; the session is over.
    Removed,
    /// The host locked or unlocked the meeting.
    MeetingLocked(MeetingLocked),
    /// A moderator turned this app's microphone off (it is off already); the person may turn
    /// it on again.
    MutedByHost(ByModerator),
    /// A moderator asks the person to turn a device on; nothing turns on by itself.
    MediaRequested(MediaRequested),
    /// The host ended the meeting for everyone; the session is over.
    MeetingEnded(ByModerator),
    /// Someone (this app included) reacted: show the emoji over their tile for a few seconds.
    Reaction(ReactionSent),
    /// This app's screen share stopped by itself (the capture failed, the shared window
    /// closed); `participant-updated` shows it not presenting.
    ScreenShareEnded(ScreenShareEnded),
    Chat(ChatWrap),
    FileOffer(FileOffer),
    FileProgress(FileProgress),
    FileDone(FileDone),
    FileFailed(FileFailed),
    /// Who is talking now (loudest recent speaker), or null for silence.
    ActiveSpeaker(ActiveSpeaker),
    Stats(StatsSnapshot),
    /// Something failed outside a command's own reply (e.g. the camera stopped).
    Error(ErrorPayload),
    /// The connection to the relay broke while in a meeting; the session is getting its seat
    /// back on its own (for up to a minute). `resumed` or `disconnected` follows; the meeting
    /// goes on meanwhile.
    Reconnecting(Reconnecting),
    /// The seat is back after a `reconnecting`: same participant id, no knock. What changed
    /// meanwhile (roster, host, chat) arrived as the usual events before this one.
    Resumed(Resumed),
    /// The connection to the relay is gone; the session is over.
    Disconnected(Disconnected),
    /// An invitation link (`parlor://join?…`) was opened while the app runs: the page takes it
    /// with `take_opened_invitation`. No payload.
    InvitationOpened,
    /// The microphone's level outside a meeting (home screen and waiting room), ten times a
    /// second while the page shows a preview and a microphone is chosen.
    MicLevel(MicLevel),
}

/// Payload of `mic-level`.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MicLevel {
    /// RMS level of the last 100 ms after voice processing (noise suppression and gain control
    /// as set), dBFS (-100 for silence).
    pub dbfs: f32,
    /// Whether that counts as speaking.
    pub speaking: bool,
}

impl UiEvent {
    /// The event name and payload as the page receives them, from the one serde shape above.
    pub fn to_page(&self) -> (String, serde_json::Value) {
        // Nothing here can fail to serialize: every map key is a string.
        let mut tagged = serde_json::to_value(self).unwrap_or_default();
        let name = tagged.get("name").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
        let payload = tagged.get_mut("payload").map(serde_json::Value::take).unwrap_or_default();
        (name, payload)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Waiting {
    pub code: String,
    pub request_id: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Knock {
    pub request_id: u64,
    pub name: String,
    /// Relay time (ms since the Unix epoch) of the knock, to show how long they have waited.
    pub waiting_since_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MeetingLocked {
    pub locked: bool,
    #[ts(type = "ParticipantId")]
    pub by: ParticipantId,
}

/// Who (the host or a co-host) did it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ByModerator {
    #[ts(type = "ParticipantId")]
    pub by: ParticipantId,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct MediaRequested {
    #[ts(type = "ParticipantId")]
    pub by: ParticipantId,
    pub device: MediaDevice,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ScreenShareEnded {
    pub reason: String,
}

/// What can be shared: a screen or a window (`list_screen_sources`), for the picker.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ScreenSource {
    pub choice: ScreenChoice,
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// A small picture of it (`data:image/jpeg;base64,…`), null if it could not be captured.
    pub thumbnail: Option<String>,
}

/// What to share (`start_screen_share`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "kind", content = "id", rename_all = "camelCase")]
pub enum ScreenChoice {
    /// A whole screen (null: the primary one).
    Screen(Option<u32>),
    Window(u32),
    /// Synthetic slides (for demos and tests).
    Synthetic,
}

impl From<ScreenChoice> for client_core::media::ScreenChoice {
    fn from(c: ScreenChoice) -> Self {
        match c {
            ScreenChoice::Screen(id) => Self::Monitor(id),
            ScreenChoice::Window(id) => Self::Window(id),
            ScreenChoice::Synthetic => Self::Synthetic,
        }
    }
}

impl From<client_core::media::ScreenChoice> for ScreenChoice {
    fn from(c: client_core::media::ScreenChoice) -> Self {
        match c {
            client_core::media::ScreenChoice::Monitor(id) => Self::Screen(id),
            client_core::media::ScreenChoice::Window(id) => Self::Window(id),
            client_core::media::ScreenChoice::Synthetic => Self::Synthetic,
        }
    }
}

impl From<client_core::media::ScreenSourceInfo> for ScreenSource {
    fn from(s: client_core::media::ScreenSourceInfo) -> Self {
        use base64::Engine as _;
        Self {
            choice: s.choice.into(),
            name: s.name,
            width: s.width,
            height: s.height,
            thumbnail: s.thumbnail_jpeg.map(|jpeg| {
                format!("data:image/jpeg;base64,{}", base64::engine::general_purpose::STANDARD.encode(jpeg))
            }),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ReactionSent {
    #[ts(type = "ParticipantId")]
    pub participant_id: ParticipantId,
    pub reaction: Reaction,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct KnockWithdrawn {
    pub request_id: u64,
    pub reason: KnockWithdrawal,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct JoinRefused {
    pub reason: JoinRefusal,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Joined {
    pub code: String,
    #[ts(type = "ParticipantId")]
    pub participant_id: ParticipantId,
    #[ts(type = "ParticipantId")]
    pub host_id: ParticipantId,
    /// Address to share so others can join (as in `MeetingCreated.relayAddr`).
    pub relay_addr: String,
    /// The invitation "Copy invite" copies: relay address, code and the relay's certificate.
    pub invitation: Invitation,
    /// Everyone, this participant included.
    pub roster: Vec<Participant>,
    /// Most recent chat messages, oldest first.
    pub chat_history: Vec<ChatMessage>,
    /// The host locked the meeting: new knocks are refused.
    pub locked: bool,
}

/// The meeting's end-to-end encryption, as the meeting info shows it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Encryption {
    /// The meeting key's epoch: 1 when the meeting starts, one more at each rotation.
    pub epoch: u32,
    /// Twelve digits in three groups ("0123 4567 8901"): the same for everyone in the meeting
    /// unless someone (the relay included) put itself between participants.
    pub safety_code: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantWrap {
    pub participant: Participant,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ParticipantLeft {
    #[ts(type = "ParticipantId")]
    pub participant_id: ParticipantId,
    pub reason: LeaveReason,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct HostChanged {
    #[ts(type = "ParticipantId")]
    pub host_id: ParticipantId,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ChatWrap {
    pub message: ChatMessage,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FileOffer {
    pub file: FileInfo,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FileProgress {
    pub transfer_id: String,
    pub direction: TransferDirection,
    /// Null for an upload the relay has not yet given an id.
    pub file_id: Option<u64>,
    pub name: String,
    pub size: u64,
    pub bytes: u64,
    /// Throughput over the last second, bytes per second.
    pub rate_bytes_per_sec: f64,
    /// Congestion window of this transfer in bytes (uploads); null when not known.
    pub cwnd_bytes: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FileDone {
    pub transfer_id: String,
    pub direction: TransferDirection,
    pub file_id: u64,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    /// Downloads: the SHA-256 of the bytes on disk matched. Uploads: the relay verified it.
    pub verified: bool,
    /// Downloads: where the file was saved. Null otherwise.
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct FileFailed {
    pub transfer_id: String,
    pub direction: TransferDirection,
    pub file_id: Option<u64>,
    pub name: String,
    pub error: ErrorPayload,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct ActiveSpeaker {
    #[ts(type = "ParticipantId | null")]
    pub participant_id: Option<ParticipantId>,
}

/// What a rejected command or an `error` event carries. The shell's `AppError` serializes
/// through this, its one wire shape, which events can clone and compare.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(rename = "AppError")]
pub struct ErrorPayload {
    pub code: ErrorCode,
    /// Detail in English for logs and as a fallback; the UI prefers its own words per code.
    pub message: String,
    /// For device errors: which device.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub device: Option<DeviceKind>,
    /// For `rateLimited`: milliseconds until the relay accepts the request again.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub retry_after_ms: Option<u64>,
    /// For `relayCertificateChanged` and `notTheInvitedRelay`: which certificates differ.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub certificate: Option<CertificateMismatch>,
}

impl From<&AppError> for ErrorPayload {
    fn from(e: &AppError) -> Self {
        Self {
            code: e.code(),
            message: e.to_string(),
            device: e.device(),
            retry_after_ms: e.retry_after_ms(),
            certificate: e.certificate_mismatch(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Reconnecting {
    /// Why the connection broke, in English (for logs and as a detail).
    pub reason: String,
    /// How long nothing had come from the relay when the break was noticed (0 when the
    /// connection closed outright): the drop began that long before this event.
    pub unheard_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Resumed {
    /// How long the connection was broken.
    pub after_ms: u64,
    /// At which attempt the seat came back (1 = the first).
    pub attempts: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Disconnected {
    pub message: String,
    /// Set when the connection was lost for good while in a meeting (its seat could not be
    /// taken back): `join_meeting` with these and the display name knocks on it again.
    pub rejoin: Option<Rejoin>,
}

/// The meeting a lost connection was in, as `join_meeting` takes it.
#[derive(Debug, Clone, PartialEq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct Rejoin {
    /// Six ASCII digits.
    pub code: String,
    /// The relay the session was connected to ("host:port").
    pub relay_addr: String,
    /// That relay's certificate (SHA-256, 64 hex digits), to trust only it; null for a
    /// CA-signed relay.
    pub fingerprint: Option<String>,
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
            reconnecting: true,
            is_cohost: false,
            hand_raised: Some(2),
            presenting: true,
        };
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!({"id":3,"displayName":"Ada","isHost":true,"micOn":false,"cameraOn":true,"speaking":false,"joinedAtMs":7,"reconnecting":true,"isCohost":false,"handRaised":2,"presenting":true})
        );
        let e =
            UiEvent::ParticipantLeft(ParticipantLeft { participant_id: 3, reason: pc::LeaveReason::TimedOut.into() });
        assert_eq!(e.to_page(), ("participant-left".to_string(), json!({"participantId":3,"reason":"timedOut"})));
        assert_eq!(UiEvent::Removed.to_page(), ("removed".to_string(), json!(null)));
        let refused = UiEvent::JoinRefused(JoinRefused { reason: pc::JoinRefusal::MeetingEnded.into() });
        assert_eq!(refused.to_page().1, json!({"reason":"meetingEnded"}));
        let speaker = UiEvent::ActiveSpeaker(ActiveSpeaker { participant_id: None });
        assert_eq!(speaker.to_page(), ("active-speaker".to_string(), json!({"participantId":null})));
        let resumed = UiEvent::Resumed(Resumed { after_ms: 4200, attempts: 2 });
        assert_eq!(resumed.to_page(), ("resumed".to_string(), json!({"afterMs":4200,"attempts":2})));
        let reconnecting = UiEvent::Reconnecting(Reconnecting { reason: "no answer".into(), unheard_ms: 3000 });
        assert_eq!(
            reconnecting.to_page(),
            ("reconnecting".to_string(), json!({"reason":"no answer","unheardMs":3000}))
        );
        let lost = UiEvent::Disconnected(Disconnected {
            message: "gone".into(),
            rejoin: Some(Rejoin { code: "123456".into(), relay_addr: "10.0.0.7:5000".into(), fingerprint: None }),
        });
        assert_eq!(
            lost.to_page().1,
            json!({"message":"gone","rejoin":{"code":"123456","relayAddr":"10.0.0.7:5000","fingerprint":null}})
        );
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
