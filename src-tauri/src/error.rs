//! The one error type of the shell's commands and of the page's `error` event.
//!
//! Each variant maps to a machine-readable [`ErrorCode`] the page turns into words
//! (`ui/src/core/errors.ts`); on the wire an error is `{ code, message, device?, retryAfterMs?,
//! certificate? }` in camelCase,
//! as `docs/app-ipc.md` specifies. `message` is the English `Display` text, kept for logs and as
//! the page's fallback.

use serde::{Serialize, Serializer};
use ts_rs::TS;

use client_core::net::control::ConnectError;
use client_core::stats::FileDirection;
use client_core::{FileFailure, SessionError};
use protocol::control::{ErrorCode as RelayCode, UploadStopReason};

use protocol::fingerprint::Fingerprint;

use crate::payloads::{CertificateMismatch, ErrorPayload};

/// Machine-readable reason of a failure, carried by rejected commands and the `error` event,
/// one per row of the contract's error table. The UI turns each into words (core/errors.ts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum ErrorCode {
    RelayUnreachable,
    UnknownMeeting,
    InvalidCode,
    InvalidName,
    InvalidRelayAddr,
    MeetingFull,
    DeviceBusy,
    DeviceNotFound,
    /// The system does not let the app use the device: the person has to allow it.
    DeviceNotAllowed,
    NotHost,
    UnknownParticipant,
    InvalidState,
    ChatTooLong,
    FileNotFound,
    FileTooLarge,
    UnknownFile,
    HashMismatch,
    DownloadDirUnwritable,
    ServerBusy,
    RateLimited,
    UnsupportedVersion,
    Unauthorized,
    /// The relay had no seat to give back after a dropped connection (the grace window passed):
    /// knocking again is the way back in.
    ResumeRefused,
    /// A relay of a cluster cannot reach the cluster's directory (or the meeting's relay is not
    /// answering): it cannot tell where the meeting is, or make a new one. Retrying shortly helps.
    DirectoryUnavailable,
    /// The relay presents another certificate than the one pinned for its address.
    RelayCertificateChanged,
    /// The relay is not the one the invitation names (its certificate differs).
    NotTheInvitedRelay,
    /// A pasted text holds no valid invitation.
    InvalidInvitation,
    /// Someone else's upload stopped before its file was offered (`message` says why).
    UploadStopped,
    /// Checking for, downloading or installing an update of the app failed (`message` says why).
    UpdateFailed,
    Internal,
}

impl From<RelayCode> for ErrorCode {
    fn from(code: RelayCode) -> Self {
        match code {
            RelayCode::UnsupportedVersion => ErrorCode::UnsupportedVersion,
            RelayCode::InvalidState => ErrorCode::InvalidState,
            RelayCode::UnknownMeeting => ErrorCode::UnknownMeeting,
            RelayCode::InvalidCode => ErrorCode::InvalidCode,
            RelayCode::NotHost => ErrorCode::NotHost,
            RelayCode::UnknownParticipant => ErrorCode::UnknownParticipant,
            RelayCode::MeetingFull => ErrorCode::MeetingFull,
            RelayCode::ChatTooLong => ErrorCode::ChatTooLong,
            RelayCode::InvalidName => ErrorCode::InvalidName,
            RelayCode::FileTooLarge => ErrorCode::FileTooLarge,
            RelayCode::UnknownFile => ErrorCode::UnknownFile,
            RelayCode::HashMismatch => ErrorCode::HashMismatch,
            RelayCode::Unauthorized => ErrorCode::Unauthorized,
            RelayCode::ServerBusy => ErrorCode::ServerBusy,
            RelayCode::RateLimited => ErrorCode::RateLimited,
            RelayCode::ResumeRefused => ErrorCode::ResumeRefused,
            RelayCode::DirectoryUnavailable => ErrorCode::DirectoryUnavailable,
            RelayCode::MalformedMessage | RelayCode::Internal => ErrorCode::Internal,
        }
    }
}

/// Which device a device error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub enum DeviceKind {
    Camera,
    Microphone,
    Speaker,
    /// A screen or window to share.
    Screen,
}

/// Why a command (or something the session did on its own) failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// The relay could not be reached, or hung up during the handshake.
    #[error("cannot reach the relay at {addr}: {reason}")]
    RelayUnreachable { addr: String, reason: String },
    /// The relay answered with an `ERROR` (`retry_after_ms` with `RATE_LIMITED`).
    #[error("{message}")]
    Relay { code: RelayCode, message: String, retry_after_ms: Option<u64> },
    /// The relay speaks another protocol version.
    #[error("{0}")]
    UnsupportedVersion(String),
    #[error("a meeting code is six digits, not {0:?}")]
    InvalidCode(String),
    #[error("a display name has 1 to {max} characters", max = protocol::control::MAX_DISPLAY_NAME_CHARS)]
    InvalidName,
    #[error("{0:?} is not a relay address (host:port)")]
    InvalidRelayAddr(String),
    #[error(
        "the relay at {addr} presents another certificate than the one trusted before: \
         it was reinstalled, or someone is intercepting the connection"
    )]
    RelayCertificateChanged { addr: String, pinned: Fingerprint, presented: Fingerprint },
    #[error("the relay at {addr} is not the one the invitation names: someone may be intercepting the connection")]
    NotTheInvitedRelay { addr: String, expected: Fingerprint, presented: Fingerprint },
    #[error("{0}")]
    InvalidInvitation(String),
    #[error("{kind:?} not found: {message}")]
    DeviceNotFound { kind: DeviceKind, message: String },
    #[error("{kind:?} is busy: {message}")]
    DeviceBusy { kind: DeviceKind, message: String },
    #[error("{kind:?} is not allowed: {message}")]
    DeviceNotAllowed { kind: DeviceKind, message: String },
    /// The command makes no sense in the current state (e.g. chat outside a meeting).
    #[error("{0}")]
    InvalidState(String),
    #[error("a chat message has at most {max} characters, this one has {0}", max = protocol::control::MAX_CHAT_CHARS)]
    ChatTooLong(usize),
    #[error("cannot read {path}: {reason}")]
    FileNotFound { path: String, reason: String },
    #[error("cannot write to the download folder {path}: {reason}")]
    DownloadDirUnwritable { path: String, reason: String },
    /// A transfer failed; `code` says why as far as the engine told.
    #[error("{message}")]
    Transfer { code: ErrorCode, message: String },
    /// The embedded relay could not start.
    #[error("cannot start the meeting host on this computer: {0}")]
    EmbeddedRelay(String),
    /// The update check, its download, its signature or its installation failed.
    #[error("updating Parlor failed: {0}")]
    UpdateFailed(String),
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// A device of `kind` that could not be opened or stopped working, in the page's terms.
    pub fn from_device(kind: DeviceKind, error: client_core::media::MediaError) -> Self {
        use client_core::media::MediaError;
        match error {
            MediaError::NoDevice(message) => AppError::DeviceNotFound { kind, message },
            MediaError::NotAllowed(message) => AppError::DeviceNotAllowed { kind, message },
            other => AppError::DeviceBusy { kind, message: other.to_string() },
        }
    }

    /// The code the page shows words for.
    pub fn code(&self) -> ErrorCode {
        match self {
            AppError::RelayUnreachable { .. } => ErrorCode::RelayUnreachable,
            AppError::Relay { code, .. } => (*code).into(),
            AppError::UnsupportedVersion(_) => ErrorCode::UnsupportedVersion,
            AppError::InvalidCode(_) => ErrorCode::InvalidCode,
            AppError::InvalidName => ErrorCode::InvalidName,
            AppError::InvalidRelayAddr(_) => ErrorCode::InvalidRelayAddr,
            AppError::RelayCertificateChanged { .. } => ErrorCode::RelayCertificateChanged,
            AppError::NotTheInvitedRelay { .. } => ErrorCode::NotTheInvitedRelay,
            AppError::InvalidInvitation(_) => ErrorCode::InvalidInvitation,
            AppError::DeviceNotFound { .. } => ErrorCode::DeviceNotFound,
            AppError::DeviceBusy { .. } => ErrorCode::DeviceBusy,
            AppError::DeviceNotAllowed { .. } => ErrorCode::DeviceNotAllowed,
            AppError::InvalidState(_) => ErrorCode::InvalidState,
            AppError::ChatTooLong(_) => ErrorCode::ChatTooLong,
            AppError::FileNotFound { .. } => ErrorCode::FileNotFound,
            AppError::DownloadDirUnwritable { .. } => ErrorCode::DownloadDirUnwritable,
            AppError::Transfer { code, .. } => *code,
            AppError::UpdateFailed(_) => ErrorCode::UpdateFailed,
            AppError::EmbeddedRelay(_) | AppError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The device a device error is about.
    pub fn device(&self) -> Option<DeviceKind> {
        match self {
            AppError::DeviceNotFound { kind, .. }
            | AppError::DeviceBusy { kind, .. }
            | AppError::DeviceNotAllowed { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// For a rate-limited request: how long until the relay accepts it again.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            AppError::Relay { retry_after_ms, .. } => *retry_after_ms,
            _ => None,
        }
    }

    /// For a refused relay certificate: the one expected and the one presented.
    pub fn certificate_mismatch(&self) -> Option<CertificateMismatch> {
        let (addr, expected, presented) = match self {
            AppError::RelayCertificateChanged { addr, pinned, presented } => (addr, pinned, presented),
            AppError::NotTheInvitedRelay { addr, expected, presented } => (addr, expected, presented),
            _ => return None,
        };
        Some(CertificateMismatch {
            relay_addr: addr.clone(),
            expected: expected.to_string(),
            presented: presented.to_string(),
        })
    }

    /// The error for a command that needs a session when there is none.
    pub fn no_session() -> Self {
        AppError::InvalidState("not connected to a meeting".into())
    }

    /// A failed transfer, from the engine's `FileFailed` (`reason` is its words).
    pub fn from_transfer_failure(failure: FileFailure, direction: FileDirection, reason: String) -> Self {
        let code = match failure {
            FileFailure::Refused(code) => code.into(),
            FileFailure::HashMismatch => ErrorCode::HashMismatch,
            FileFailure::LocalFile if direction == FileDirection::Upload => ErrorCode::FileNotFound,
            FileFailure::LocalFile | FileFailure::NoFreeName => ErrorCode::DownloadDirUnwritable,
            FileFailure::Connection => ErrorCode::RelayUnreachable,
            FileFailure::NotStarted | FileFailure::Cancelled => ErrorCode::InvalidState,
            FileFailure::Protocol => ErrorCode::Internal,
        };
        AppError::Transfer { code, message: reason }
    }

    /// Someone else's upload that stopped, in words (the page shows them on its progress card).
    pub fn remote_upload_stopped(reason: UploadStopReason) -> Self {
        let message = match reason {
            UploadStopReason::Disconnected => "the sender's connection ended before the whole file arrived",
            UploadStopReason::HashMismatch => "the file arrived damaged (its SHA-256 did not match) and was discarded",
            UploadStopReason::Refused => "the relay stopped accepting it",
        };
        AppError::Transfer { code: ErrorCode::UploadStopped, message: message.into() }
    }

    /// A session connect failure, for the relay at `addr`.
    pub fn from_connect(addr: &str, e: ConnectError) -> Self {
        match e {
            ConnectError::Refused { code, message } => AppError::Relay { code, message, retry_after_ms: None },
            ConnectError::Version(_) => AppError::UnsupportedVersion(e.to_string()),
            ConnectError::CertificateChanged { pinned, presented, .. } => {
                AppError::RelayCertificateChanged { addr: addr.to_string(), pinned, presented }
            }
            ConnectError::NotTheInvitedRelay { expected, presented, .. } => {
                AppError::NotTheInvitedRelay { addr: addr.to_string(), expected, presented }
            }
            other => AppError::RelayUnreachable { addr: addr.to_string(), reason: other.to_string() },
        }
    }

    /// A session call failure, for the relay at `addr`.
    pub fn from_session(addr: &str, e: SessionError) -> Self {
        match e {
            SessionError::Connect(c) => Self::from_connect(addr, c),
            SessionError::Closed => AppError::InvalidState("the connection to the relay is closed".into()),
        }
    }
}

impl Serialize for AppError {
    /// As [`ErrorPayload`], the one wire shape of an error.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ErrorPayload::from(self).serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serializes_as_code_message_and_device() {
        let e = AppError::Relay {
            code: RelayCode::UnknownMeeting,
            message: "no meeting 123456".into(),
            retry_after_ms: None,
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"code": "unknownMeeting", "message": "no meeting 123456"})
        );
        let e = AppError::Relay {
            code: RelayCode::RateLimited,
            message: "too many joins".into(),
            retry_after_ms: Some(60_000),
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"code": "rateLimited", "message": "too many joins", "retryAfterMs": 60000})
        );
        let e = AppError::DeviceBusy { kind: DeviceKind::Camera, message: "in use".into() };
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["code"], "deviceBusy");
        assert_eq!(v["device"], "camera");
        let e = AppError::RelayUnreachable { addr: "10.0.0.9:5000".into(), reason: "refused".into() };
        assert_eq!(serde_json::to_value(&e).unwrap()["code"], "relayUnreachable");
    }

    #[test]
    fn relay_codes_map_to_the_contract() {
        assert_eq!(ErrorCode::from(RelayCode::MalformedMessage), ErrorCode::Internal);
        assert_eq!(ErrorCode::from(RelayCode::MeetingFull), ErrorCode::MeetingFull);
        assert_eq!(serde_json::to_value(ErrorCode::DownloadDirUnwritable).unwrap(), "downloadDirUnwritable");
    }

    #[test]
    fn connect_failures_are_relay_unreachable_unless_the_relay_refused() {
        let e = AppError::from_connect("127.0.0.1:1", ConnectError::Timeout("127.0.0.1:1".into()));
        assert_eq!(e.code(), ErrorCode::RelayUnreachable);
        let e = AppError::from_connect(
            "x:1",
            ConnectError::Refused { code: RelayCode::ServerBusy, message: "full".into() },
        );
        assert_eq!(e.code(), ErrorCode::ServerBusy);
    }
}
