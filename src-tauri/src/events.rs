//! Translates the engine's [`SessionEvent`]s into the page's events ([`UiEvent`]).
//!
//! Nearly every event maps one to one. The exception is file transfers: the page follows each
//! transfer by a `transferId` string the shell hands out when `send_file`/`accept_file` return,
//! while the engine names an upload by its file name until the relay gives it an id. The
//! [`Translator`] keeps that bookkeeping (bounded) and also remembers the address to share,
//! which the engine does not know.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use client_core::stats::FileDirection;
use client_core::SessionEvent;

use crate::error::AppError;
use crate::payloads::{self as p, Direction, UiEvent};

/// Uploads started but not yet given a file id by the relay, at most.
const MAX_PENDING_UPLOADS: usize = 64;
/// Transfers whose id mapping and size are remembered, at most.
const MAX_KNOWN_TRANSFERS: usize = 256;

/// What is remembered about a transfer the page follows.
#[derive(Debug, Clone)]
struct Known {
    transfer_id: String,
    size: u64,
}

/// Someone else's upload, to turn the relay's byte counts into a rate.
#[derive(Debug, Clone, Copy)]
struct RemoteProgress {
    at: Instant,
    bytes: u64,
    rate: f64,
}

/// The page's transfer id of a download of `file_id`.
pub fn download_transfer_id(file_id: u64) -> String {
    format!("d{file_id}")
}

/// The stateful half of the mapping from engine events to page events.
#[derive(Debug, Default)]
pub struct Translator {
    share_addr: String,
    next_upload: u64,
    /// Uploads waiting for their file id: (transfer id, file name as the engine reports it).
    pending_uploads: VecDeque<(String, String)>,
    /// Transfers with a file id, by (direction, file id).
    known: HashMap<(bool, u64), Known>,
    remote: HashMap<u64, RemoteProgress>,
}

impl Translator {
    /// A translator for a session whose meeting others join at `share_addr`.
    pub fn new(share_addr: String) -> Self {
        Self { share_addr, next_upload: 1, ..Default::default() }
    }

    /// Registers an upload of a file the engine will call `name`; returns its transfer id.
    pub fn start_upload(&mut self, name: String) -> String {
        let id = format!("u{}", self.next_upload);
        self.next_upload += 1;
        if self.pending_uploads.len() >= MAX_PENDING_UPLOADS {
            self.pending_uploads.pop_front();
        }
        self.pending_uploads.push_back((id.clone(), name));
        id
    }

    /// Registers a download of `file_id`; returns its transfer id.
    pub fn start_download(&mut self, file_id: u64, size: u64) -> String {
        let id = download_transfer_id(file_id);
        self.remember(false, file_id, Known { transfer_id: id.clone(), size });
        id
    }

    fn remember(&mut self, upload: bool, file_id: u64, known: Known) {
        if self.known.len() >= MAX_KNOWN_TRANSFERS && !self.known.contains_key(&(upload, file_id)) {
            // Forget an arbitrary finished transfer; ids of live ones are re-learned on progress.
            if let Some(key) = self.known.keys().next().copied() {
                self.known.remove(&key);
            }
        }
        self.known.insert((upload, file_id), known);
    }

    /// The transfer id of an upload event, claiming a pending upload of that name when the
    /// file id is new.
    fn upload_id(&mut self, file_id: Option<u64>, name: &str, size: u64) -> String {
        if let Some(fid) = file_id {
            if let Some(k) = self.known.get_mut(&(true, fid)) {
                if size > 0 {
                    k.size = size;
                }
                return k.transfer_id.clone();
            }
        }
        let pos = self.pending_uploads.iter().position(|(_, n)| n == name);
        let id = match pos.and_then(|i| self.pending_uploads.remove(i)) {
            Some((id, _)) => id,
            // An upload the page did not start through this translator (cannot happen in the
            // app); still give it a stable id.
            None => format!("u-{}", file_id.map_or_else(|| name.to_string(), |f| f.to_string())),
        };
        if let Some(fid) = file_id {
            self.remember(true, fid, Known { transfer_id: id.clone(), size });
        }
        id
    }

    fn download_id(&mut self, file_id: u64, size: u64) -> String {
        match self.known.get_mut(&(false, file_id)) {
            Some(k) => {
                if size > 0 {
                    k.size = size;
                }
                k.transfer_id.clone()
            }
            None => self.start_download(file_id, size),
        }
    }

    fn size_of(&self, upload: bool, file_id: u64) -> u64 {
        self.known.get(&(upload, file_id)).map_or(0, |k| k.size)
    }

    /// Maps one engine event to the page's event, if the page has one for it. Video frames are
    /// not events (see `frames`) and map to nothing here.
    pub fn translate(&mut self, event: SessionEvent, now: Instant) -> Option<UiEvent> {
        Some(match event {
            SessionEvent::Waiting { code, request_id } => UiEvent::Waiting(p::Waiting { code, request_id }),
            SessionEvent::Knock { request_id, display_name } => {
                UiEvent::Knock(p::Knock { request_id, name: display_name })
            }
            SessionEvent::KnockWithdrawn { request_id, reason } => {
                UiEvent::KnockWithdrawn(p::KnockWithdrawn { request_id, reason: p::knock_withdrawal(reason) })
            }
            SessionEvent::JoinRefused { reason } => {
                UiEvent::JoinRefused(p::JoinRefused { reason: p::join_refusal(reason) })
            }
            SessionEvent::Joined { welcome } => UiEvent::Joined(p::Joined {
                code: welcome.code,
                participant_id: welcome.participant_id,
                host_id: welcome.host_id,
                relay_addr: self.share_addr.clone(),
                roster: welcome.roster.into_iter().map(Into::into).collect(),
                chat_history: welcome.chat_history.into_iter().map(Into::into).collect(),
            }),
            SessionEvent::ParticipantJoined { participant } => {
                UiEvent::ParticipantJoined(p::ParticipantWrap { participant: participant.into() })
            }
            SessionEvent::ParticipantLeft { participant_id, reason } => {
                UiEvent::ParticipantLeft(p::ParticipantLeft { participant_id, reason: p::leave_reason(reason) })
            }
            SessionEvent::ParticipantUpdated { participant } => {
                UiEvent::ParticipantUpdated(p::ParticipantWrap { participant: participant.into() })
            }
            SessionEvent::HostChanged { host_id } => UiEvent::HostChanged(p::HostChanged { host_id }),
            SessionEvent::Removed => UiEvent::Removed,
            SessionEvent::Chat { message } => UiEvent::Chat(p::ChatWrap { message: message.into() }),
            SessionEvent::FileOffer { file } => UiEvent::FileOffer(p::FileOffer { file: file.into() }),
            SessionEvent::FileProgress(fp) => {
                let upload = fp.direction == FileDirection::Upload;
                let transfer_id = if upload {
                    self.upload_id(Some(fp.file_id), &fp.name, fp.total)
                } else {
                    self.download_id(fp.file_id, fp.total)
                };
                UiEvent::FileProgress(p::FileProgressPayload {
                    transfer_id,
                    direction: fp.direction.into(),
                    file_id: Some(fp.file_id),
                    name: fp.name,
                    size: fp.total,
                    bytes: fp.bytes,
                    rate_bytes_per_sec: fp.rate_bps,
                    cwnd_bytes: fp.cwnd.map(|c| u64::from(c) * p::CHUNK_BYTES),
                })
            }
            SessionEvent::FileDone { file_id, direction, name, path, sha256, verified } => {
                let upload = direction == FileDirection::Upload;
                let transfer_id =
                    if upload { self.upload_id(Some(file_id), &name, 0) } else { self.download_id(file_id, 0) };
                let mut size = self.size_of(upload, file_id);
                if size == 0 {
                    size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                }
                self.known.remove(&(upload, file_id));
                UiEvent::FileDone(p::FileDonePayload {
                    transfer_id,
                    direction: direction.into(),
                    file_id,
                    name,
                    size,
                    sha256,
                    verified,
                    path: (!upload).then(|| path.to_string_lossy().into_owned()),
                })
            }
            SessionEvent::FileFailed { file_id, direction, name, reason, .. } => {
                let upload = direction == FileDirection::Upload;
                let transfer_id = match (upload, file_id) {
                    (true, fid) => self.upload_id(fid, &name, 0),
                    (false, Some(fid)) => self.download_id(fid, 0),
                    (false, None) => format!("d-{name}"),
                };
                if let Some(fid) = file_id {
                    self.known.remove(&(upload, fid));
                }
                UiEvent::FileFailed(p::FileFailedPayload {
                    transfer_id,
                    direction: direction.into(),
                    file_id,
                    name,
                    error: (&AppError::from_transfer_reason(&reason)).into(),
                })
            }
            SessionEvent::RemoteFileProgress { file_id, name, bytes, size, .. } => {
                let rate = self.remote_rate(file_id, bytes, now);
                UiEvent::FileProgress(p::FileProgressPayload {
                    transfer_id: format!("r{file_id}"),
                    direction: Direction::Remote,
                    file_id: Some(file_id),
                    name,
                    size,
                    bytes,
                    rate_bytes_per_sec: rate,
                    cwnd_bytes: None,
                })
            }
            SessionEvent::ActiveSpeaker { participant_id } => {
                UiEvent::ActiveSpeaker(p::ActiveSpeaker { participant_id })
            }
            SessionEvent::Stats(s) => UiEvent::Stats(p::StatsSnapshot::from_engine(&s)),
            SessionEvent::Error { code, message } => UiEvent::Error(match code {
                Some(code) => (&AppError::Relay { code, message }).into(),
                None => (&AppError::Internal(message)).into(),
            }),
            SessionEvent::Disconnected { reason } => UiEvent::Disconnected(p::Disconnected { message: reason }),
            SessionEvent::Connected { .. }
            | SessionEvent::Left
            | SessionEvent::VideoFrame { .. }
            | SessionEvent::AudioLevel { .. }
            | SessionEvent::QualityChanged { .. } => return None,
        })
    }

    /// The `file-done` of someone else's upload, due when the relay offers the file it
    /// produced (the relay reports progress of others' uploads, but their end only as the
    /// offer). The page drops the upload's progress card on it. Emit it before the offer.
    pub fn remote_upload_done(&mut self, event: &SessionEvent) -> Option<UiEvent> {
        let SessionEvent::FileOffer { file } = event else { return None };
        self.remote.remove(&file.file_id)?;
        Some(UiEvent::FileDone(p::FileDonePayload {
            transfer_id: format!("r{}", file.file_id),
            direction: Direction::Remote,
            file_id: file.file_id,
            name: file.name.clone(),
            size: file.size,
            sha256: file.sha256.clone(),
            verified: true,
            path: None,
        }))
    }

    /// Bytes per second of someone else's upload since its previous report, smoothed.
    fn remote_rate(&mut self, file_id: u64, bytes: u64, now: Instant) -> f64 {
        if self.remote.len() >= MAX_KNOWN_TRANSFERS && !self.remote.contains_key(&file_id) {
            let oldest = self.remote.iter().min_by_key(|(_, r)| r.at).map(|(k, _)| *k);
            if let Some(k) = oldest {
                self.remote.remove(&k);
            }
        }
        let entry = self.remote.entry(file_id).or_insert(RemoteProgress { at: now, bytes, rate: 0.0 });
        let dt = now.saturating_duration_since(entry.at).as_secs_f64();
        if dt >= 0.05 {
            let sample = bytes.saturating_sub(entry.bytes) as f64 / dt;
            entry.rate = if entry.rate == 0.0 { sample } else { 0.5 * entry.rate + 0.5 * sample };
            entry.at = now;
            entry.bytes = bytes;
        }
        entry.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use client_core::FileProgress;
    use std::time::Duration;

    fn progress(file_id: u64, direction: FileDirection, name: &str, bytes: u64, total: u64) -> SessionEvent {
        SessionEvent::FileProgress(FileProgress {
            file_id,
            direction,
            name: name.into(),
            bytes,
            total,
            rate_bps: 1000.0,
            cwnd: Some(4),
            ssthresh: None,
            phase: None,
            resumed_from: 0,
        })
    }

    #[test]
    fn uploads_keep_the_transfer_id_handed_out_at_send_file() {
        let mut t = Translator::new("10.1.2.3:5000".into());
        let now = Instant::now();
        let a = t.start_upload("a.bin".into());
        let b = t.start_upload("b.bin".into());
        // b's relay answer comes first.
        let Some(UiEvent::FileProgress(pb)) = t.translate(progress(9, FileDirection::Upload, "b.bin", 0, 100), now)
        else {
            panic!("expected progress")
        };
        assert_eq!(pb.transfer_id, b);
        assert_eq!(pb.cwnd_bytes, Some(4 * p::CHUNK_BYTES));
        let Some(UiEvent::FileProgress(pa)) = t.translate(progress(8, FileDirection::Upload, "a.bin", 10, 50), now)
        else {
            panic!("expected progress")
        };
        assert_eq!(pa.transfer_id, a);
        let done = SessionEvent::FileDone {
            file_id: 8,
            direction: FileDirection::Upload,
            name: "a.bin".into(),
            path: "/nonexistent/a.bin".into(),
            sha256: "00".into(),
            verified: true,
        };
        let Some(UiEvent::FileDone(d)) = t.translate(done, now) else { panic!("expected done") };
        assert_eq!((d.transfer_id.as_str(), d.size, d.path.as_deref()), (a.as_str(), 50, None));
    }

    #[test]
    fn an_upload_failing_before_the_relay_answered_is_matched_by_name() {
        let mut t = Translator::new(String::new());
        let a = t.start_upload("a.bin".into());
        let failed = SessionEvent::FileFailed {
            file_id: None,
            direction: FileDirection::Upload,
            name: "a.bin".into(),
            reason: "relay refused (FileTooLarge): 2 GB".into(),
            resumable: false,
        };
        let Some(UiEvent::FileFailed(f)) = t.translate(failed, Instant::now()) else { panic!("expected failure") };
        assert_eq!(f.transfer_id, a);
        assert_eq!(f.error.code, crate::error::ErrorCode::FileTooLarge);
    }

    #[test]
    fn downloads_report_their_path_and_size() {
        let mut t = Translator::new(String::new());
        let id = t.start_download(4, 1234);
        let done = SessionEvent::FileDone {
            file_id: 4,
            direction: FileDirection::Download,
            name: "x.pdf".into(),
            path: "/tmp/x.pdf".into(),
            sha256: "ab".into(),
            verified: true,
        };
        let Some(UiEvent::FileDone(d)) = t.translate(done, Instant::now()) else { panic!("expected done") };
        assert_eq!(d.transfer_id, id);
        assert_eq!(d.size, 1234);
        assert_eq!(d.path.as_deref(), Some("/tmp/x.pdf"));
    }

    #[test]
    fn remote_uploads_get_a_rate() {
        let mut t = Translator::new(String::new());
        let t0 = Instant::now();
        let ev = |bytes| SessionEvent::RemoteFileProgress {
            file_id: 7,
            name: "v.mp4".into(),
            sender_id: 2,
            bytes,
            size: 1000,
        };
        t.translate(ev(0), t0);
        let Some(UiEvent::FileProgress(pr)) = t.translate(ev(500), t0 + Duration::from_millis(500)) else {
            panic!("expected progress")
        };
        assert_eq!(pr.transfer_id, "r7");
        assert_eq!(pr.direction, Direction::Remote);
        assert!((pr.rate_bytes_per_sec - 1000.0).abs() < 1e-6);
        // The offer of the finished file ends the upload on the page, once.
        let file = protocol::control::FileInfo {
            file_id: 7,
            name: "v.mp4".into(),
            size: 1000,
            sha256: "ab".into(),
            sender_id: 2,
            sender_name: "Bob".into(),
        };
        let offer = SessionEvent::FileOffer { file };
        let Some(UiEvent::FileDone(d)) = t.remote_upload_done(&offer) else { panic!("expected done") };
        assert_eq!((d.transfer_id.as_str(), d.direction, d.size), ("r7", Direction::Remote, 1000));
        assert!(t.remote_upload_done(&offer).is_none());
    }

    #[test]
    fn joined_carries_the_share_address_and_frames_are_not_events() {
        let mut t = Translator::new("192.168.1.20:5000".into());
        let welcome = protocol::control::MeetingWelcome {
            code: "123456".into(),
            participant_id: 1,
            media_token: 9,
            session_token: "s".into(),
            host_id: 1,
            roster: vec![],
            chat_history: vec![],
        };
        let Some(UiEvent::Joined(j)) = t.translate(SessionEvent::Joined { welcome }, Instant::now()) else {
            panic!("expected joined")
        };
        assert_eq!(j.relay_addr, "192.168.1.20:5000");
        let frame = SessionEvent::VideoFrame {
            participant_id: 2,
            frame_id: 0,
            width: 2,
            height: 2,
            capture_ts_us: 0,
            rgba: bytes::Bytes::from_static(&[0; 16]),
        };
        assert!(t.translate(frame, Instant::now()).is_none());
    }
}
