//! Strategies and fixtures shared by the protocol's integration tests.
//!
//! Every test crate under `tests/` includes this module, and each uses only part of it, hence
//! the `dead_code` allowance. [`variant_index`] matches every [`ControlMessage`] variant without
//! a wildcard, so adding a variant fails to compile here until the strategies, [`one_of_each`]
//! and the docs examples are brought up to date.
#![allow(dead_code)]

pub mod checks;

use proptest::prelude::*;
use proptest::sample::SizeRange;
use protocol::control::{
    ChatMessage, ErrorCode, FileInfo, JoinRefusal, KeyDelivery, KnockWithdrawal, LeaveReason, MediaDevice,
    MeetingWelcome, Participant, Reaction, Role, Secret, StatsReport, UploadStopReason,
};
use protocol::e2ee::SEAL_OVERHEAD;
use protocol::media::{
    AudioHeader, MediaKind, ReceiverReport, RefreshRanges, RttEcho, VideoHeader, AUDIO_HEADER_LEN, MAX_PACKET_LEN,
    MAX_VIDEO_FRAGMENT_PAYLOAD,
};
use protocol::screen::{TileRun, MAX_REFRESH_RANGES};
use protocol::{ControlMessage, MediaPacket};

/// Number of [`ControlMessage`] variants; [`variant_index`] returns `0..VARIANT_COUNT`.
pub const VARIANT_COUNT: usize = 55;

/// Position of `msg`'s variant in declaration order. No wildcard arm on purpose.
pub fn variant_index(msg: &ControlMessage) -> usize {
    use ControlMessage::*;
    match msg {
        Hello { .. } => 0,
        Welcome { .. } => 1,
        CreateMeeting { .. } => 2,
        JoinRequest { .. } => 3,
        Waiting { .. } => 4,
        CancelJoin => 5,
        Knock { .. } => 6,
        KnockWithdrawn { .. } => 7,
        Admit { .. } => 8,
        Deny { .. } => 9,
        JoinRefused { .. } => 10,
        Joined(_) => 11,
        Resume { .. } => 12,
        Resumed(_) => 13,
        RelayRestarting { .. } => 14,
        ParticipantJoined { .. } => 15,
        ParticipantLeft { .. } => 16,
        ParticipantUpdated { .. } => 17,
        MediaState { .. } => 18,
        HostChanged { .. } => 19,
        RemoveParticipant { .. } => 20,
        Removed => 21,
        MediaKeys { .. } => 22,
        MediaKey { .. } => 23,
        LockMeeting { .. } => 24,
        MeetingLocked { .. } => 25,
        MuteParticipant { .. } => 26,
        MuteAll => 27,
        MutedByHost { .. } => 28,
        RequestMedia { .. } => 29,
        MediaRequested { .. } => 30,
        SetRole { .. } => 31,
        EndMeeting => 32,
        MeetingEnded { .. } => 33,
        RaiseHand { .. } => 34,
        LowerHand { .. } => 35,
        React { .. } => 36,
        Reaction { .. } => 37,
        ChatSend { .. } => 38,
        Chat { .. } => 39,
        FileUpload { .. } => 40,
        FileUploadResume { .. } => 41,
        FileUploadReady { .. } => 42,
        FileUploadComplete { .. } => 43,
        FileDownload { .. } => 44,
        FileDownloadReady { .. } => 45,
        FileProgress { .. } => 46,
        FileUploadStopped { .. } => 47,
        FileOffer { .. } => 48,
        StatsReport { .. } => 49,
        Ping { .. } => 50,
        Pong { .. } => 51,
        Leave => 52,
        Error { .. } => 53,
        Redirect { .. } => 54,
    }
}

// ---------------------------------------------------------------------------------------------
// Field strategies
// ---------------------------------------------------------------------------------------------

/// Any string: arbitrary Unicode scalars (control characters, quotes, backslashes, astral
/// planes, U+0000), printable text, or strings made of the characters JSON must escape.
pub fn text(size: impl Into<SizeRange>) -> impl Strategy<Value = String> {
    let size = size.into();
    prop_oneof![
        proptest::collection::vec(any::<char>(), size.clone()).prop_map(|v| v.into_iter().collect::<String>()),
        proptest::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\u{0}'),
                Just('\n'),
                Just('\u{1f}'),
                Just('\u{7f}'),
                Just('\u{2028}'),
                Just('\u{fffd}'),
                Just('é'),
                Just('😀'),
                Just('{'),
                Just('/'),
            ],
            size.clone(),
        )
        .prop_map(|v| v.into_iter().collect::<String>()),
        "[a-zA-Z0-9 ]{0,24}",
    ]
}

/// Any finite `f64`, including zeros, subnormals and extremes; NaN and infinities have no
/// JSON representation and are never sent.
pub fn finite_f64() -> impl Strategy<Value = f64> {
    use proptest::num::f64 as f;
    prop_oneof![
        f::POSITIVE | f::NEGATIVE | f::NORMAL | f::SUBNORMAL | f::ZERO,
        0.0..1.0f64,
        Just(f64::MAX),
        Just(f64::MIN_POSITIVE),
        Just(-0.0),
    ]
}

/// u64 with the edges (above 2^53, where JavaScript numbers lose precision) well represented.
pub fn wide_u64() -> impl Strategy<Value = u64> {
    prop_oneof![any::<u64>(), 0..1000u64, Just(u64::MAX), Just((1u64 << 53) + 1)]
}

pub fn leave_reason() -> impl Strategy<Value = LeaveReason> {
    prop_oneof![
        Just(LeaveReason::Left),
        Just(LeaveReason::Disconnected),
        Just(LeaveReason::TimedOut),
        Just(LeaveReason::Removed),
    ]
}

pub fn upload_stop_reason() -> impl Strategy<Value = UploadStopReason> {
    prop_oneof![
        Just(UploadStopReason::Disconnected),
        Just(UploadStopReason::HashMismatch),
        Just(UploadStopReason::Refused),
    ]
}

pub fn join_refusal() -> impl Strategy<Value = JoinRefusal> {
    prop_oneof![
        Just(JoinRefusal::Denied),
        Just(JoinRefusal::Expired),
        Just(JoinRefusal::MeetingEnded),
        Just(JoinRefusal::MeetingFull),
        Just(JoinRefusal::Locked),
    ]
}

pub fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Host), Just(Role::CoHost), Just(Role::Participant)]
}

pub fn media_device() -> impl Strategy<Value = MediaDevice> {
    prop_oneof![Just(MediaDevice::Mic), Just(MediaDevice::Camera)]
}

pub fn reaction() -> impl Strategy<Value = Reaction> {
    proptest::sample::select(Reaction::ALL.to_vec())
}

pub fn knock_withdrawal() -> impl Strategy<Value = KnockWithdrawal> {
    prop_oneof![
        Just(KnockWithdrawal::Cancelled),
        Just(KnockWithdrawal::Expired),
        Just(KnockWithdrawal::Disconnected),
        Just(KnockWithdrawal::Answered),
    ]
}

/// Every [`ErrorCode`], in declaration order.
pub const ALL_ERROR_CODES: [ErrorCode; 19] = [
    ErrorCode::MalformedMessage,
    ErrorCode::UnsupportedVersion,
    ErrorCode::InvalidState,
    ErrorCode::UnknownMeeting,
    ErrorCode::InvalidCode,
    ErrorCode::NotHost,
    ErrorCode::UnknownParticipant,
    ErrorCode::MeetingFull,
    ErrorCode::ChatTooLong,
    ErrorCode::InvalidName,
    ErrorCode::FileTooLarge,
    ErrorCode::UnknownFile,
    ErrorCode::HashMismatch,
    ErrorCode::Unauthorized,
    ErrorCode::ServerBusy,
    ErrorCode::ResumeRefused,
    ErrorCode::RateLimited,
    ErrorCode::DirectoryUnavailable,
    ErrorCode::Internal,
];

pub fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ALL_ERROR_CODES.to_vec())
}

pub fn participant() -> impl Strategy<Value = Participant> {
    (any::<u32>(), text(0..24), any::<[bool; 6]>(), wide_u64(), public_key(), proptest::option::of(wide_u64()))
        .prop_map(
            |(
                id,
                display_name,
                [is_host, mic_on, camera_on, speaking, is_cohost, presenting],
                joined_at_ms,
                media_public_key,
                hand_raised,
            )| Participant {
                id,
                display_name,
                is_host,
                mic_on,
                camera_on,
                speaking,
                joined_at_ms,
                media_public_key,
                reconnecting: id % 2 == 0,
                is_cohost,
                hand_raised,
                presenting,
            },
        )
}

/// A public key as the wire carries it, or any text (a relay must refuse what is not one).
pub fn public_key() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{64}", text(0..8)]
}

/// A sealed meeting key as the wire carries it, or any text.
pub fn key_blob() -> impl Strategy<Value = String> {
    prop_oneof!["[0-9a-f]{136}", text(0..8)]
}

pub fn file_info() -> impl Strategy<Value = FileInfo> {
    (
        (wide_u64(), text(0..24), wide_u64()),
        (prop_oneof!["[0-9a-f]{64}", text(0..8)], any::<u32>(), text(0..16), any::<bool>()),
    )
        .prop_map(|((file_id, name, size), (sha256, sender_id, sender_name, lost))| FileInfo {
            file_id,
            name,
            size,
            sha256,
            sender_id,
            sender_name,
            lost,
        })
}

pub fn chat_message() -> impl Strategy<Value = ChatMessage> {
    (
        wide_u64(),
        any::<u32>(),
        text(0..16),
        text(0..48),
        wide_u64(),
        proptest::option::of(wide_u64()),
        proptest::option::of(file_info()),
    )
        .prop_map(|(id, sender_id, sender_name, text, timestamp_ms, client_msg_id, file)| ChatMessage {
            id,
            sender_id,
            sender_name,
            text,
            timestamp_ms,
            client_msg_id,
            file,
        })
}

pub fn meeting_welcome() -> impl Strategy<Value = MeetingWelcome> {
    (
        prop_oneof!["[0-9]{6}", text(0..8)],
        any::<u32>(),
        (text(0..40), prop_oneof!["[0-9a-f]{64}", text(0..8)]),
        any::<u32>(),
        proptest::collection::vec(participant(), 0..6),
        proptest::collection::vec(chat_message(), 0..6),
        (proptest::option::of(key_blob()), proptest::option::of(any::<u32>()), any::<bool>()),
    )
        .prop_map(
            |(
                code,
                participant_id,
                (session_token, resume_secret),
                host_id,
                roster,
                chat_history,
                (media_key, media_key_from, locked),
            )| {
                let resume_secret = Secret::new(resume_secret);
                MeetingWelcome {
                    code,
                    participant_id,
                    session_token,
                    resume_secret,
                    host_id,
                    roster,
                    chat_history,
                    media_key,
                    media_key_from,
                    locked,
                }
            },
        )
}

pub fn stats_report() -> impl Strategy<Value = StatsReport> {
    (finite_f64(), finite_f64(), finite_f64(), finite_f64(), finite_f64(), finite_f64(), finite_f64(), any::<u8>())
        .prop_map(
            |(rtt_ms, loss, jitter_ms, fps_sent, fps_received, bitrate_in_kbps, bitrate_out_kbps, quality_level)| {
                StatsReport {
                    rtt_ms,
                    loss,
                    jitter_ms,
                    fps_sent,
                    fps_received,
                    bitrate_in_kbps,
                    bitrate_out_kbps,
                    quality_level,
                }
            },
        )
}

// ---------------------------------------------------------------------------------------------
// Control messages
// ---------------------------------------------------------------------------------------------

/// Any control message: every variant, every field arbitrary.
pub fn control_message() -> BoxedStrategy<ControlMessage> {
    use ControlMessage as M;
    let code = || prop_oneof!["[0-9]{6}", text(0..10)];
    prop_oneof![
        (any::<u16>(), text(0..32))
            .prop_map(|(protocol_version, client_name)| M::Hello { protocol_version, client_name }),
        (any::<u16>(), any::<u16>(), text(0..32), proptest::collection::vec((text(0..24), any::<[u8; 32]>()), 0..3))
            .prop_map(|(protocol_version, udp_port, server_name, relays)| M::Welcome {
                protocol_version,
                udp_port,
                server_name,
                relays: relays
                    .into_iter()
                    .map(|(relay, fp)| protocol::control::ClusterRelay {
                        relay,
                        fingerprint: protocol::fingerprint::Fingerprint(fp)
                    })
                    .collect(),
            }),
        (text(0..32), public_key())
            .prop_map(|(display_name, media_public_key)| M::CreateMeeting { display_name, media_public_key }),
        (code(), text(0..32), public_key()).prop_map(|(code, display_name, media_public_key)| M::JoinRequest {
            code,
            display_name,
            media_public_key
        }),
        (code(), wide_u64()).prop_map(|(code, request_id)| M::Waiting { code, request_id }),
        Just(M::CancelJoin),
        (wide_u64(), text(0..32), public_key(), wide_u64()).prop_map(
            |(request_id, display_name, media_public_key, waiting_since_ms)| M::Knock {
                request_id,
                display_name,
                media_public_key,
                waiting_since_ms
            }
        ),
        (wide_u64(), knock_withdrawal()).prop_map(|(request_id, reason)| M::KnockWithdrawn { request_id, reason }),
        (wide_u64(), key_blob()).prop_map(|(request_id, media_key)| M::Admit { request_id, media_key }),
        wide_u64().prop_map(|request_id| M::Deny { request_id }),
        join_refusal().prop_map(|reason| M::JoinRefused { reason }),
        meeting_welcome().prop_map(M::Joined),
        (code(), any::<u32>(), prop_oneof!["[0-9a-f]{64}", text(0..8)], wide_u64()).prop_map(
            |(code, participant_id, secret, last_chat_id)| M::Resume {
                code,
                participant_id,
                resume_secret: Secret::new(secret),
                last_chat_id
            }
        ),
        meeting_welcome().prop_map(M::Resumed),
        (text(0..40), any::<[u8; 32]>(), proptest::option::of(code())).prop_map(|(relay, fp, code)| M::Redirect {
            relay,
            fingerprint: protocol::fingerprint::Fingerprint(fp),
            code
        }),
        wide_u64().prop_map(|resume_within_ms| M::RelayRestarting { resume_within_ms }),
        participant().prop_map(|participant| M::ParticipantJoined { participant }),
        (any::<u32>(), leave_reason())
            .prop_map(|(participant_id, reason)| M::ParticipantLeft { participant_id, reason }),
        participant().prop_map(|participant| M::ParticipantUpdated { participant }),
        any::<[bool; 4]>().prop_map(|[mic_on, camera_on, speaking, presenting]| M::MediaState {
            mic_on,
            camera_on,
            speaking,
            presenting
        }),
        any::<u32>().prop_map(|host_id| M::HostChanged { host_id }),
        any::<u32>().prop_map(|participant_id| M::RemoveParticipant { participant_id }),
        Just(M::Removed),
        proptest::collection::vec(
            (any::<u32>(), key_blob())
                .prop_map(|(participant_id, media_key)| KeyDelivery { participant_id, media_key }),
            0..4
        )
        .prop_map(|keys| M::MediaKeys { keys }),
        (any::<u32>(), key_blob()).prop_map(|(from, media_key)| M::MediaKey { from, media_key }),
        any::<bool>().prop_map(|locked| M::LockMeeting { locked }),
        (any::<bool>(), any::<u32>()).prop_map(|(locked, by)| M::MeetingLocked { locked, by }),
        any::<u32>().prop_map(|participant_id| M::MuteParticipant { participant_id }),
        Just(M::MuteAll),
        any::<u32>().prop_map(|by| M::MutedByHost { by }),
        (any::<u32>(), media_device()).prop_map(|(participant_id, device)| M::RequestMedia { participant_id, device }),
        (any::<u32>(), media_device()).prop_map(|(by, device)| M::MediaRequested { by, device }),
        (any::<u32>(), role()).prop_map(|(participant_id, role)| M::SetRole { participant_id, role }),
        Just(M::EndMeeting),
        any::<u32>().prop_map(|by| M::MeetingEnded { by }),
        any::<bool>().prop_map(|raised| M::RaiseHand { raised }),
        any::<u32>().prop_map(|participant_id| M::LowerHand { participant_id }),
        reaction().prop_map(|reaction| M::React { reaction }),
        (any::<u32>(), reaction()).prop_map(|(participant_id, reaction)| M::Reaction { participant_id, reaction }),
        (text(0..64), proptest::option::of(wide_u64()))
            .prop_map(|(text, client_msg_id)| M::ChatSend { text, client_msg_id }),
        chat_message().prop_map(|message| M::Chat { message }),
        (text(0..40), text(0..32), wide_u64(), prop_oneof!["[0-9a-f]{64}", text(0..8)])
            .prop_map(|(session_token, name, size, sha256)| M::FileUpload { session_token, name, size, sha256 }),
        (text(0..40), wide_u64()).prop_map(|(session_token, file_id)| M::FileUploadResume { session_token, file_id }),
        (wide_u64(), any::<u32>(), wide_u64()).prop_map(|(file_id, chunk_size, offset)| M::FileUploadReady {
            file_id,
            chunk_size,
            offset
        }),
        wide_u64().prop_map(|file_id| M::FileUploadComplete { file_id }),
        (text(0..40), wide_u64(), wide_u64()).prop_map(|(session_token, file_id, offset)| M::FileDownload {
            session_token,
            file_id,
            offset
        }),
        (file_info(), wide_u64(), any::<u32>()).prop_map(|(file, offset, chunk_size)| M::FileDownloadReady {
            file,
            offset,
            chunk_size
        }),
        (wide_u64(), text(0..24), any::<u32>(), wide_u64(), wide_u64()).prop_map(
            |(file_id, name, sender_id, bytes, size)| M::FileProgress { file_id, name, sender_id, bytes, size }
        ),
        (wide_u64(), text(0..24), any::<u32>(), upload_stop_reason()).prop_map(|(file_id, name, sender_id, reason)| {
            M::FileUploadStopped { file_id, name, sender_id, reason }
        }),
        file_info().prop_map(|file| M::FileOffer { file }),
        stats_report().prop_map(|report| M::StatsReport { report }),
        wide_u64().prop_map(|nonce| M::Ping { nonce }),
        wide_u64().prop_map(|nonce| M::Pong { nonce }),
        Just(M::Leave),
        (error_code(), text(0..48), proptest::option::of(wide_u64()))
            .prop_map(|(code, message, retry_after_ms)| M::Error { code, message, retry_after_ms }),
    ]
    .boxed()
}

/// One fixed instance of every variant, in declaration order.
pub fn one_of_each() -> Vec<ControlMessage> {
    use ControlMessage as M;
    let participant = Participant {
        id: 2,
        display_name: "Grace".into(),
        is_host: false,
        mic_on: true,
        camera_on: true,
        speaking: false,
        joined_at_ms: 1_700_000_000_000,
        media_public_key: "0f".repeat(32),
        reconnecting: false,
        is_cohost: false,
        hand_raised: None,
        presenting: false,
    };
    let file = FileInfo {
        file_id: 9,
        name: "notes.pdf".into(),
        size: 1_048_576,
        sha256: "ab".repeat(32),
        sender_id: 1,
        sender_name: "Ada".into(),
        lost: false,
    };
    let chat = ChatMessage {
        id: 1,
        sender_id: 1,
        sender_name: "Ada".into(),
        text: "hi".into(),
        timestamp_ms: 1_700_000_000_500,
        client_msg_id: Some(7),
        file: None,
    };
    vec![
        M::Hello { protocol_version: 1, client_name: "test".into() },
        M::Welcome {
            protocol_version: 1,
            udp_port: 7001,
            server_name: "relay".into(),
            relays: vec![protocol::control::ClusterRelay {
                relay: "relay-2.example.org:5000".into(),
                fingerprint: protocol::fingerprint::Fingerprint([0x3c; 32]),
            }],
        },
        M::CreateMeeting { display_name: "Ada".into(), media_public_key: "0e".repeat(32) },
        M::JoinRequest { code: "123456".into(), display_name: "Grace".into(), media_public_key: "0f".repeat(32) },
        M::Waiting { code: "123456".into(), request_id: 3 },
        M::CancelJoin,
        M::Knock {
            request_id: 3,
            display_name: "Grace".into(),
            media_public_key: "0f".repeat(32),
            waiting_since_ms: 1_700_000_000_000,
        },
        M::KnockWithdrawn { request_id: 3, reason: KnockWithdrawal::Cancelled },
        M::Admit { request_id: 3, media_key: "5a".repeat(68) },
        M::Deny { request_id: 3 },
        M::JoinRefused { reason: JoinRefusal::Denied },
        M::Joined(MeetingWelcome {
            code: "123456".into(),
            participant_id: 2,
            session_token: "token".into(),
            resume_secret: Secret::new("1f".repeat(32)),
            host_id: 1,
            roster: vec![participant.clone()],
            chat_history: vec![chat.clone()],
            media_key: Some("5a".repeat(68)),
            media_key_from: Some(1),
            locked: false,
        }),
        M::Resume {
            code: "123456".into(),
            participant_id: 2,
            resume_secret: Secret::new("1f".repeat(32)),
            last_chat_id: 1,
        },
        M::Resumed(MeetingWelcome {
            code: "123456".into(),
            participant_id: 2,
            session_token: "token".into(),
            resume_secret: Secret::new("1f".repeat(32)),
            host_id: 1,
            roster: vec![Participant { reconnecting: true, ..participant.clone() }],
            chat_history: Vec::new(),
            media_key: None,
            media_key_from: None,
            locked: true,
        }),
        M::RelayRestarting { resume_within_ms: 30_000 },
        M::ParticipantJoined { participant: participant.clone() },
        M::ParticipantLeft { participant_id: 2, reason: LeaveReason::Left },
        M::ParticipantUpdated { participant },
        M::MediaState { mic_on: true, camera_on: false, speaking: false, presenting: true },
        M::HostChanged { host_id: 2 },
        M::RemoveParticipant { participant_id: 2 },
        M::Removed,
        M::MediaKeys { keys: vec![KeyDelivery { participant_id: 2, media_key: "5a".repeat(68) }] },
        M::MediaKey { from: 1, media_key: "5a".repeat(68) },
        M::LockMeeting { locked: true },
        M::MeetingLocked { locked: true, by: 1 },
        M::MuteParticipant { participant_id: 2 },
        M::MuteAll,
        M::MutedByHost { by: 1 },
        M::RequestMedia { participant_id: 2, device: MediaDevice::Camera },
        M::MediaRequested { by: 1, device: MediaDevice::Camera },
        M::SetRole { participant_id: 2, role: Role::CoHost },
        M::EndMeeting,
        M::MeetingEnded { by: 1 },
        M::RaiseHand { raised: true },
        M::LowerHand { participant_id: 2 },
        M::React { reaction: Reaction::Clap },
        M::Reaction { participant_id: 2, reaction: Reaction::Clap },
        M::ChatSend { text: "hi".into(), client_msg_id: None },
        M::Chat { message: chat },
        M::FileUpload { session_token: "token".into(), name: "notes.pdf".into(), size: 10, sha256: "ab".repeat(32) },
        M::FileUploadResume { session_token: "token".into(), file_id: 9 },
        M::FileUploadReady { file_id: 9, chunk_size: 16384, offset: 0 },
        M::FileUploadComplete { file_id: 9 },
        M::FileDownload { session_token: "token".into(), file_id: 9, offset: 0 },
        M::FileDownloadReady { file: file.clone(), offset: 0, chunk_size: 16384 },
        M::FileProgress { file_id: 9, name: "notes.pdf".into(), sender_id: 1, bytes: 5, size: 10 },
        M::FileUploadStopped { file_id: 9, name: "notes.pdf".into(), sender_id: 1, reason: UploadStopReason::Refused },
        M::FileOffer { file },
        M::StatsReport {
            report: StatsReport {
                rtt_ms: 12.5,
                loss: 0.01,
                jitter_ms: 3.0,
                fps_sent: 20.0,
                fps_received: 19.5,
                bitrate_in_kbps: 900.0,
                bitrate_out_kbps: 850.0,
                quality_level: 3,
            },
        },
        M::Ping { nonce: 1 },
        M::Pong { nonce: 1 },
        M::Leave,
        M::error(ErrorCode::Internal, "boom"),
        M::Redirect {
            relay: "relay-2.example.org:5000".into(),
            fingerprint: protocol::fingerprint::Fingerprint([0xab; 32]),
            code: Some("482913".into()),
        },
    ]
}

// ---------------------------------------------------------------------------------------------
// Media packets
// ---------------------------------------------------------------------------------------------

/// An owned media packet, so strategies can produce one; [`OwnedPacket::as_packet`] borrows it
/// as the [`MediaPacket`] the codec works on.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedPacket {
    Video { sender_id: u32, header: VideoHeader, payload: Vec<u8> },
    Audio { sender_id: u32, header: AudioHeader, sealed: Vec<u8> },
    RttRequest { sender_id: u32, echo: RttEcho },
    RttReply { sender_id: u32, echo: RttEcho },
    Report { sender_id: u32, report: ReceiverReport },
    Keepalive { sender_id: u32 },
    Screen { sender_id: u32, header: VideoHeader, payload: Vec<u8> },
    Refresh { sender_id: u32, source_id: u32, ranges: RefreshRanges },
}

impl OwnedPacket {
    pub fn as_packet(&self) -> MediaPacket<'_> {
        match self {
            OwnedPacket::Video { sender_id, header, payload } => {
                MediaPacket::VideoFragment { sender_id: *sender_id, header: *header, payload }
            }
            OwnedPacket::Audio { sender_id, header, sealed } => {
                MediaPacket::Audio { sender_id: *sender_id, header: *header, sealed }
            }
            OwnedPacket::RttRequest { sender_id, echo } => {
                MediaPacket::RttRequest { sender_id: *sender_id, echo: *echo }
            }
            OwnedPacket::RttReply { sender_id, echo } => MediaPacket::RttReply { sender_id: *sender_id, echo: *echo },
            OwnedPacket::Report { sender_id, report } => {
                MediaPacket::ReceiverReport { sender_id: *sender_id, report: *report }
            }
            OwnedPacket::Keepalive { sender_id } => MediaPacket::Keepalive { sender_id: *sender_id },
            OwnedPacket::Screen { sender_id, header, payload } => {
                MediaPacket::ScreenFragment { sender_id: *sender_id, header: *header, payload }
            }
            OwnedPacket::Refresh { sender_id, source_id, ranges } => {
                MediaPacket::RefreshRequest { sender_id: *sender_id, source_id: *source_id, ranges: *ranges }
            }
        }
    }
}

pub fn media_kind() -> impl Strategy<Value = MediaKind> {
    prop_oneof![Just(MediaKind::Video), Just(MediaKind::Audio), Just(MediaKind::Screen)]
}

fn rtt_echo() -> impl Strategy<Value = RttEcho> {
    (any::<u32>(), any::<u64>()).prop_map(|(echo_id, sent_ts_us)| RttEcho { echo_id, sent_ts_us })
}

/// A valid video fragment header: `frag_index < frag_count`.
pub fn video_header() -> impl Strategy<Value = VideoHeader> {
    (any::<u32>(), any::<u64>(), any::<u32>(), any::<u16>(), any::<u16>(), 1..=u16::MAX).prop_flat_map(
        |(frame_id, capture_ts_us, seq, width, height, frag_count)| {
            (0..frag_count).prop_map(move |frag_index| VideoHeader {
                frame_id,
                capture_ts_us,
                seq,
                width,
                height,
                frag_index,
                frag_count,
            })
        },
    )
}

/// A valid media packet of any kind, with every field arbitrary within its valid range.
pub fn valid_packet() -> impl Strategy<Value = OwnedPacket> {
    prop_oneof![
        (any::<u32>(), video_header(), proptest::collection::vec(any::<u8>(), 0..=MAX_VIDEO_FRAGMENT_PAYLOAD))
            .prop_map(|(sender_id, header, payload)| OwnedPacket::Video { sender_id, header, payload }),
        (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            1..=u32::MAX,
            prop_oneof![Just(1u8), 1..=u8::MAX],
            proptest::collection::vec(any::<u8>(), SEAL_OVERHEAD..=MAX_PACKET_LEN - AUDIO_HEADER_LEN),
        )
            .prop_map(|(sender_id, seq, capture_ts_us, sample_rate, channels, sealed)| OwnedPacket::Audio {
                sender_id,
                header: AudioHeader { seq, capture_ts_us, sample_rate, channels },
                sealed,
            }),
        (any::<u32>(), rtt_echo()).prop_map(|(sender_id, echo)| OwnedPacket::RttRequest { sender_id, echo }),
        (any::<u32>(), rtt_echo()).prop_map(|(sender_id, echo)| OwnedPacket::RttReply { sender_id, echo }),
        (
            (any::<u32>(), any::<u32>(), media_kind(), 0..=1000u16),
            (any::<u32>(), any::<u32>(), any::<u32>(), any::<[u16; 4]>()),
        )
            .prop_map(
                |(
                    (sender_id, source_id, media, loss_permille),
                    (highest_seq, cumulative_lost, jitter_us, loss_runs),
                )| {
                    OwnedPacket::Report {
                        sender_id,
                        report: ReceiverReport {
                            source_id,
                            media,
                            loss_permille,
                            highest_seq,
                            cumulative_lost,
                            jitter_us,
                            loss_runs,
                        },
                    }
                },
            ),
        any::<u32>().prop_map(|sender_id| OwnedPacket::Keepalive { sender_id }),
        (any::<u32>(), video_header(), proptest::collection::vec(any::<u8>(), 0..=MAX_VIDEO_FRAGMENT_PAYLOAD))
            .prop_map(|(sender_id, header, payload)| OwnedPacket::Screen { sender_id, header, payload }),
        (any::<u32>(), any::<u32>(), refresh_ranges())
            .prop_map(|(sender_id, source_id, ranges)| OwnedPacket::Refresh { sender_id, source_id, ranges }),
    ]
}

/// Valid refresh ranges: 1 to 8 non-empty tile runs.
pub fn refresh_ranges() -> impl Strategy<Value = RefreshRanges> {
    proptest::collection::vec((any::<u16>(), 1..=u16::MAX), 1..=MAX_REFRESH_RANGES).prop_map(|runs| {
        let runs: Vec<TileRun> = runs.into_iter().map(|(first, count)| TileRun { first, count }).collect();
        RefreshRanges::new(&runs).expect("1 to 8 non-empty runs")
    })
}

/// A media packet whose fields may be out of range (zero channels, `frag_index >= frag_count`,
/// loss over 1000‰, odd audio lengths, payloads over 64 KiB): for checking that the encoder
/// refuses exactly what the decoder would refuse.
pub fn any_packet() -> impl Strategy<Value = OwnedPacket> {
    prop_oneof![
        3 => valid_packet(),
        1 => (
            any::<u32>(),
            any::<u32>(),
            any::<u64>(),
            any::<u32>(),
            prop_oneof![0..4u16, any::<u16>()],
            prop_oneof![0..4u16, any::<u16>()],
            prop_oneof![0..64usize, Just(65_535), Just(65_536)],
        )
            .prop_map(|(sender_id, frame_id, capture_ts_us, seq, frag_index, frag_count, len)| OwnedPacket::Video {
                sender_id,
                header: VideoHeader { frame_id, capture_ts_us, seq, width: 4, height: 4, frag_index, frag_count },
                payload: vec![0xAB; len],
            }),
        1 => (
            any::<u32>(),
            prop_oneof![Just(0u32), Just(16_000), any::<u32>()],
            prop_oneof![0..4u8, any::<u8>()],
            prop_oneof![0..64usize, Just(65_534), Just(65_536)],
        )
            .prop_map(|(sender_id, sample_rate, channels, len)| OwnedPacket::Audio {
                sender_id,
                header: AudioHeader { seq: 1, capture_ts_us: 2, sample_rate, channels },
                sealed: vec![0x5A; len],
            }),
        1 => (any::<u32>(), any::<u16>()).prop_map(|(sender_id, loss_permille)| OwnedPacket::Report {
            sender_id,
            report: ReceiverReport {
                source_id: 1,
                media: MediaKind::Audio,
                loss_permille,
                highest_seq: 2,
                cumulative_lost: 3,
                jitter_us: 4,
                loss_runs: [5, 6, 7, 8],
            },
        }),
    ]
}

/// A sender and a receiver of one direction under a fixed test key.
pub fn hop_pair() -> (protocol::hop::HopSender, protocol::hop::HopReceiver) {
    let secret = protocol::hop::HopSecret::new([0x5a; protocol::hop::HOP_SECRET_LEN]);
    (protocol::hop::HopSender::new(secret.to_relay()), protocol::hop::HopReceiver::new(secret.to_relay()))
}
