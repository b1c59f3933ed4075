//! Translates the engine's [`SessionEvent`]s into the page's events ([`UiEvent`]).
//!
//! Nearly every event maps one to one. File transfers get the page's `transferId`: `u<n>` for
//! our upload number `n` (the id `Session::send_file` returned, carried by its events), `d<id>`
//! for a download of file `id`, `r<id>` for someone else's upload. The [`Translator`] also
//! remembers transfer sizes (the engine's `FileDone` has none), the rate of others' uploads, the
//! address to share, and the relay and certificate a lost meeting is rejoined through, which the
//! engine does not know.

use std::collections::HashMap;
use std::time::Instant;

use client_core::stats::FileDirection;
use client_core::SessionEvent;

use crate::error::AppError;
use crate::payloads::{self as p, TransferDirection, UiEvent};

/// Transfers whose size (or remote rate) is remembered, at most.
const MAX_KNOWN_TRANSFERS: usize = 256;

/// Someone else's upload, to turn the relay's byte counts into a rate.
#[derive(Debug, Clone, Copy)]
struct RemoteProgress {
    at: Instant,
    bytes: u64,
    rate: f64,
}

/// The page's transfer id of our upload number `upload_id`.
pub fn upload_transfer_id(upload_id: u64) -> String {
    format!("u{upload_id}")
}

/// The page's transfer id of a download of `file_id`.
pub fn download_transfer_id(file_id: u64) -> String {
    format!("d{file_id}")
}

/// The page's transfer id of one of our transfers, from what its event carries.
fn transfer_id(upload_id: Option<u64>, direction: FileDirection, file_id: Option<u64>, name: &str) -> String {
    match (direction, upload_id, file_id) {
        (FileDirection::Upload, Some(upload_id), _) => upload_transfer_id(upload_id),
        (FileDirection::Download, _, Some(file_id)) => download_transfer_id(file_id),
        // Not produced by client-core (uploads always carry their id, downloads their file);
        // still a stable id.
        _ => format!("x-{name}"),
    }
}

/// The stateful half of the mapping from engine events to page events.
#[derive(Debug, Default)]
pub struct Translator {
    /// Where the session connected: a lost meeting is knocked on again there.
    relay_addr: String,
    share_addr: String,
    /// The relay certificate's fingerprint an invitation carries (none for a CA-signed one).
    invitation_pin: Option<protocol::fingerprint::Fingerprint>,
    /// Sizes of our transfers by transfer id, learned from `accept_file` and progress.
    sizes: HashMap<String, u64>,
    remote: HashMap<u64, RemoteProgress>,
}

impl Translator {
    /// A translator for a session connected to `relay_addr`, whose meeting others join at
    /// `share_addr`, checking the relay's certificate by `invitation_pin`.
    pub fn new(
        relay_addr: String,
        share_addr: String,
        invitation_pin: Option<protocol::fingerprint::Fingerprint>,
    ) -> Self {
        Self { relay_addr, share_addr, invitation_pin, ..Default::default() }
    }

    /// Registers a download of `file_id` of `size` bytes; returns its transfer id.
    pub fn start_download(&mut self, file_id: u64, size: u64) -> String {
        let id = download_transfer_id(file_id);
        self.remember_size(&id, size);
        id
    }

    fn remember_size(&mut self, transfer_id: &str, size: u64) {
        if size == 0 {
            return;
        }
        if self.sizes.len() >= MAX_KNOWN_TRANSFERS && !self.sizes.contains_key(transfer_id) {
            // Forget an arbitrary one; sizes of live transfers come back with their progress.
            if let Some(key) = self.sizes.keys().next().cloned() {
                self.sizes.remove(&key);
            }
        }
        self.sizes.insert(transfer_id.to_string(), size);
    }

    /// Maps one engine event to the page's event, if the page has one for it. Video frames are
    /// not events (see `frames`) and map to nothing here.
    pub fn translate(&mut self, event: SessionEvent, now: Instant) -> Option<UiEvent> {
        Some(match event {
            SessionEvent::Waiting { code, request_id } => UiEvent::Waiting(p::Waiting { code, request_id }),
            SessionEvent::Knock { request_id, display_name, waiting_since_ms } => {
                UiEvent::Knock(p::Knock { request_id, name: display_name, waiting_since_ms })
            }
            SessionEvent::KnockWithdrawn { request_id, reason } => {
                UiEvent::KnockWithdrawn(p::KnockWithdrawn { request_id, reason: reason.into() })
            }
            SessionEvent::JoinRefused { reason } => UiEvent::JoinRefused(p::JoinRefused { reason: reason.into() }),
            SessionEvent::Joined { welcome } => UiEvent::Joined(p::Joined {
                invitation: (&protocol::invite::Invite {
                    relay: self.share_addr.clone(),
                    code: welcome.code.clone(),
                    fingerprint: self.invitation_pin,
                })
                    .into(),
                code: welcome.code,
                participant_id: welcome.participant_id,
                host_id: welcome.host_id,
                relay_addr: self.share_addr.clone(),
                roster: welcome.roster.into_iter().map(Into::into).collect(),
                chat_history: welcome.chat_history.into_iter().map(Into::into).collect(),
                locked: welcome.locked,
            }),
            SessionEvent::Encryption { epoch, safety_code } => {
                UiEvent::Encryption(p::Encryption { epoch, safety_code })
            }
            SessionEvent::ParticipantJoined { participant } => {
                UiEvent::ParticipantJoined(p::ParticipantWrap { participant: participant.into() })
            }
            SessionEvent::ParticipantLeft { participant_id, reason } => {
                UiEvent::ParticipantLeft(p::ParticipantLeft { participant_id, reason: reason.into() })
            }
            SessionEvent::ParticipantUpdated { participant } => {
                UiEvent::ParticipantUpdated(p::ParticipantWrap { participant: participant.into() })
            }
            SessionEvent::HostChanged { host_id } => UiEvent::HostChanged(p::HostChanged { host_id }),
            SessionEvent::Removed => UiEvent::Removed,
            SessionEvent::MeetingLocked { locked, by } => UiEvent::MeetingLocked(p::MeetingLocked { locked, by }),
            SessionEvent::MutedByHost { by } => UiEvent::MutedByHost(p::ByModerator { by }),
            SessionEvent::ScreenShareEnded { reason } => UiEvent::ScreenShareEnded(p::ScreenShareEnded { reason }),
            SessionEvent::MediaRequested { by, device } => {
                UiEvent::MediaRequested(p::MediaRequested { by, device: device.into() })
            }
            SessionEvent::MeetingEnded { by } => UiEvent::MeetingEnded(p::ByModerator { by }),
            SessionEvent::Reaction { participant_id, reaction } => {
                UiEvent::Reaction(p::ReactionSent { participant_id, reaction: reaction.into() })
            }
            SessionEvent::Chat { message } => UiEvent::Chat(p::ChatWrap { message: message.into() }),
            SessionEvent::FileOffer { file } => UiEvent::FileOffer(p::FileOffer { file: file.into() }),
            SessionEvent::FileProgress(fp) => {
                let transfer_id = transfer_id(fp.upload_id, fp.direction, Some(fp.file_id), &fp.name);
                self.remember_size(&transfer_id, fp.total);
                UiEvent::FileProgress(p::FileProgress {
                    transfer_id,
                    direction: fp.direction.into(),
                    file_id: Some(fp.file_id),
                    name: fp.name,
                    size: fp.total,
                    bytes: fp.bytes,
                    rate_bytes_per_sec: fp.rate_bps,
                    cwnd_bytes: fp.cwnd.zip(fp.chunk_size).map(|(c, size)| u64::from(c) * u64::from(size)),
                })
            }
            SessionEvent::FileDone { upload_id, file_id, direction, name, path, sha256, verified } => {
                let upload = direction == FileDirection::Upload;
                let transfer_id = transfer_id(upload_id, direction, Some(file_id), &name);
                let size = match self.sizes.remove(&transfer_id) {
                    Some(size) => size,
                    None => std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
                };
                UiEvent::FileDone(p::FileDone {
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
            SessionEvent::FileFailed { upload_id, file_id, direction, name, failure, reason, .. } => {
                let transfer_id = transfer_id(upload_id, direction, file_id, &name);
                self.sizes.remove(&transfer_id);
                UiEvent::FileFailed(p::FileFailed {
                    transfer_id,
                    direction: direction.into(),
                    file_id,
                    name,
                    error: (&AppError::from_transfer_failure(failure, direction, reason)).into(),
                })
            }
            SessionEvent::RemoteFileProgress { file_id, name, bytes, size, .. } => {
                let rate = self.remote_rate(file_id, bytes, now);
                UiEvent::FileProgress(p::FileProgress {
                    transfer_id: format!("r{file_id}"),
                    direction: TransferDirection::Remote,
                    file_id: Some(file_id),
                    name,
                    size,
                    bytes,
                    rate_bytes_per_sec: rate,
                    cwnd_bytes: None,
                })
            }
            SessionEvent::RemoteFileStopped { file_id, name, reason, .. } => {
                self.remote.remove(&file_id);
                UiEvent::FileFailed(p::FileFailed {
                    transfer_id: format!("r{file_id}"),
                    direction: TransferDirection::Remote,
                    file_id: Some(file_id),
                    name,
                    error: (&AppError::remote_upload_stopped(reason)).into(),
                })
            }
            SessionEvent::ActiveSpeaker { participant_id } => {
                UiEvent::ActiveSpeaker(p::ActiveSpeaker { participant_id })
            }
            SessionEvent::Stats(s) => UiEvent::Stats(p::StatsSnapshot::from_engine(&s)),
            SessionEvent::Error { code, message, retry_after_ms } => UiEvent::Error(match code {
                Some(code) => (&AppError::Relay { code, message, retry_after_ms }).into(),
                None => (&AppError::Internal(message)).into(),
            }),
            SessionEvent::Reconnecting { reason, unheard_ms } => {
                UiEvent::Reconnecting(p::Reconnecting { reason, unheard_ms })
            }
            SessionEvent::Resumed { after_ms, attempts } => UiEvent::Resumed(p::Resumed { after_ms, attempts }),
            SessionEvent::Disconnected { reason, meeting_code } => UiEvent::Disconnected(p::Disconnected {
                message: reason,
                rejoin: meeting_code.map(|code| p::Rejoin {
                    code,
                    relay_addr: self.relay_addr.clone(),
                    fingerprint: self.invitation_pin.map(|f| f.to_string()),
                }),
            }),
            SessionEvent::MicLevel { rms_dbfs, speaking } => {
                UiEvent::MicLevel(p::MicLevel { dbfs: rms_dbfs, speaking })
            }
            SessionEvent::Connected { .. }
            | SessionEvent::Left
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
        Some(UiEvent::FileDone(p::FileDone {
            transfer_id: format!("r{}", file.file_id),
            direction: TransferDirection::Remote,
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
    use crate::error::ErrorCode;
    use client_core::{FileFailure, FileProgress};
    use protocol::control::ErrorCode as RelayCode;
    use std::time::Duration;

    fn progress(
        upload_id: Option<u64>,
        file_id: u64,
        direction: FileDirection,
        bytes: u64,
        total: u64,
    ) -> SessionEvent {
        SessionEvent::FileProgress(FileProgress {
            upload_id,
            file_id,
            direction,
            name: "same.bin".into(),
            bytes,
            total,
            rate_bps: 1000.0,
            cwnd: Some(4),
            chunk_size: Some(1000),
            ssthresh: None,
            phase: None,
            resumed_from: 0,
        })
    }

    #[test]
    fn uploads_of_files_with_the_same_name_keep_their_own_transfer_ids() {
        let mut t = Translator::new("10.1.2.3:5000".into(), "10.1.2.3:5000".into(), None);
        let now = Instant::now();
        // Upload 2's relay answer comes first.
        let Some(UiEvent::FileProgress(p2)) = t.translate(progress(Some(2), 9, FileDirection::Upload, 0, 100), now)
        else {
            panic!("expected progress")
        };
        assert_eq!(p2.transfer_id, upload_transfer_id(2));
        assert_eq!(p2.cwnd_bytes, Some(4 * 1000), "cwnd in the relay's chunks");
        let Some(UiEvent::FileProgress(p1)) = t.translate(progress(Some(1), 8, FileDirection::Upload, 10, 50), now)
        else {
            panic!("expected progress")
        };
        assert_eq!(p1.transfer_id, upload_transfer_id(1));
        let done = SessionEvent::FileDone {
            upload_id: Some(1),
            file_id: 8,
            direction: FileDirection::Upload,
            name: "same.bin".into(),
            path: "/nonexistent/same.bin".into(),
            sha256: "00".into(),
            verified: true,
        };
        let Some(UiEvent::FileDone(d)) = t.translate(done, now) else { panic!("expected done") };
        assert_eq!((d.transfer_id.as_str(), d.size, d.path.as_deref()), ("u1", 50, None));
    }

    #[test]
    fn failures_carry_the_engine_s_reason_as_a_code() {
        let mut t = Translator::new(String::new(), String::new(), None);
        let failed = |upload_id, direction, failure| SessionEvent::FileFailed {
            upload_id,
            file_id: None,
            direction,
            name: "a.bin".into(),
            failure,
            reason: "words".into(),
            resumable: false,
        };
        let cases = [
            (Some(3), FileDirection::Upload, FileFailure::Refused(RelayCode::FileTooLarge), ErrorCode::FileTooLarge),
            (Some(4), FileDirection::Upload, FileFailure::LocalFile, ErrorCode::FileNotFound),
            (None, FileDirection::Download, FileFailure::LocalFile, ErrorCode::DownloadDirUnwritable),
            (None, FileDirection::Download, FileFailure::HashMismatch, ErrorCode::HashMismatch),
            (None, FileDirection::Download, FileFailure::Connection, ErrorCode::RelayUnreachable),
        ];
        for (upload_id, direction, failure, code) in cases {
            let Some(UiEvent::FileFailed(f)) = t.translate(failed(upload_id, direction, failure), Instant::now())
            else {
                panic!("expected failure")
            };
            assert_eq!(f.error.code, code, "{failure:?}");
            if let Some(id) = upload_id {
                assert_eq!(f.transfer_id, upload_transfer_id(id));
            }
        }
    }

    #[test]
    fn downloads_report_their_path_and_size() {
        let mut t = Translator::new(String::new(), String::new(), None);
        let id = t.start_download(4, 1234);
        let done = SessionEvent::FileDone {
            upload_id: None,
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
        let mut t = Translator::new(String::new(), String::new(), None);
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
        assert_eq!(pr.direction, TransferDirection::Remote);
        assert!((pr.rate_bytes_per_sec - 1000.0).abs() < 1e-6);
        // The offer of the finished file ends the upload on the page, once.
        let file = protocol::control::FileInfo {
            file_id: 7,
            name: "v.mp4".into(),
            size: 1000,
            sha256: "ab".into(),
            sender_id: 2,
            sender_name: "Bob".into(),
            lost: false,
        };
        let offer = SessionEvent::FileOffer { file };
        let Some(UiEvent::FileDone(d)) = t.remote_upload_done(&offer) else { panic!("expected done") };
        assert_eq!((d.transfer_id.as_str(), d.direction, d.size), ("r7", TransferDirection::Remote, 1000));
        assert!(t.remote_upload_done(&offer).is_none());
    }

    #[test]
    fn a_remote_upload_that_stops_fails_its_card_in_words() {
        let mut t = Translator::new(String::new(), String::new(), None);
        let t0 = Instant::now();
        let progress =
            SessionEvent::RemoteFileProgress { file_id: 8, name: "a.zip".into(), sender_id: 2, bytes: 10, size: 100 };
        t.translate(progress, t0);
        let stopped = SessionEvent::RemoteFileStopped {
            file_id: 8,
            name: "a.zip".into(),
            sender_id: 2,
            reason: protocol::control::UploadStopReason::Disconnected,
        };
        let Some(UiEvent::FileFailed(f)) = t.translate(stopped, t0) else { panic!("expected failed") };
        assert_eq!((f.transfer_id.as_str(), f.direction, f.file_id), ("r8", TransferDirection::Remote, Some(8)));
        assert_eq!(f.error.code, ErrorCode::UploadStopped);
        assert!(f.error.message.contains("connection ended"), "{}", f.error.message);
        // The upload is forgotten: a later offer of the same id is not taken for its end.
        let file = protocol::control::FileInfo {
            file_id: 8,
            name: "a.zip".into(),
            size: 100,
            sha256: "ab".into(),
            sender_id: 2,
            sender_name: "Bob".into(),
            lost: false,
        };
        assert!(t.remote_upload_done(&SessionEvent::FileOffer { file }).is_none());
    }

    #[test]
    fn the_microphone_level_in_a_meeting_feeds_the_same_meter_as_the_home_screen() {
        let mut t = Translator::new(String::new(), String::new(), None);
        let ui = t.translate(SessionEvent::MicLevel { rms_dbfs: -23.5, speaking: true }, Instant::now());
        let (name, payload) = ui.expect("a page event").to_page();
        assert_eq!(name, "mic-level");
        assert_eq!(payload, serde_json::json!({ "dbfs": -23.5, "speaking": true }));
    }

    #[test]
    fn joined_carries_the_share_address_and_the_invitation() {
        let pin = protocol::fingerprint::Fingerprint::of_certificate(b"relay");
        let mut t = Translator::new("127.0.0.1:5000".into(), "192.168.1.20:5000".into(), Some(pin));
        let welcome = protocol::control::MeetingWelcome {
            code: "123456".into(),
            participant_id: 1,
            session_token: "s".into(),
            resume_secret: protocol::control::Secret::new("r"),
            host_id: 1,
            roster: vec![],
            chat_history: vec![],
            media_key: None,
            media_key_from: None,
            locked: true,
        };
        let Some(UiEvent::Joined(j)) = t.translate(SessionEvent::Joined { welcome }, Instant::now()) else {
            panic!("expected joined")
        };
        assert_eq!(j.relay_addr, "192.168.1.20:5000");
        let invite = protocol::invite::Invite::find(&j.invitation.text).expect("the text holds the link");
        assert_eq!(invite.relay, "192.168.1.20:5000");
        assert_eq!(invite.code, "123456");
        assert_eq!(invite.fingerprint, Some(pin));
        assert_eq!(j.invitation.fingerprint, Some(pin.to_string()));
        assert!(j.invitation.text.contains(&j.invitation.link));
    }

    #[test]
    fn a_lost_meeting_names_what_to_knock_on_again() {
        let pin = protocol::fingerprint::Fingerprint::of_certificate(b"relay");
        let mut t = Translator::new("127.0.0.1:7878".into(), "192.168.1.20:7878".into(), Some(pin));
        let now = Instant::now();
        let Some(UiEvent::Reconnecting(r)) =
            t.translate(SessionEvent::Reconnecting { reason: "no answer".into(), unheard_ms: 3000 }, now)
        else {
            panic!("expected reconnecting")
        };
        assert_eq!((r.reason.as_str(), r.unheard_ms), ("no answer", 3000));
        let Some(UiEvent::Resumed(r)) = t.translate(SessionEvent::Resumed { after_ms: 3100, attempts: 2 }, now) else {
            panic!("expected resumed")
        };
        assert_eq!((r.after_ms, r.attempts), (3100, 2));
        let lost = SessionEvent::Disconnected { reason: "gone".into(), meeting_code: Some("123456".into()) };
        let Some(UiEvent::Disconnected(d)) = t.translate(lost, now) else { panic!("expected disconnected") };
        let rejoin = d.rejoin.expect("a meeting to rejoin");
        // The relay the session reached, not the address shared with others, trusting only the
        // certificate it presented.
        assert_eq!((rejoin.code.as_str(), rejoin.relay_addr.as_str()), ("123456", "127.0.0.1:7878"));
        assert_eq!(rejoin.fingerprint, Some(pin.to_string()));
        let plain = SessionEvent::Disconnected { reason: "refused".into(), meeting_code: None };
        let Some(UiEvent::Disconnected(d)) = t.translate(plain, now) else { panic!("expected disconnected") };
        assert_eq!((d.message.as_str(), d.rejoin), ("refused", None));
    }

    #[test]
    fn a_participant_s_dropped_connection_reaches_the_page() {
        let mut t = Translator::new(String::new(), String::new(), None);
        let participant = protocol::control::Participant {
            id: 2,
            display_name: "Grace".into(),
            is_host: false,
            mic_on: true,
            camera_on: true,
            speaking: false,
            joined_at_ms: 1,
            media_public_key: "00".repeat(32),
            reconnecting: true,
            is_cohost: true,
            hand_raised: Some(4),
            presenting: true,
        };
        let Some(UiEvent::ParticipantUpdated(u)) =
            t.translate(SessionEvent::ParticipantUpdated { participant }, Instant::now())
        else {
            panic!("expected participant-updated")
        };
        assert!(u.participant.reconnecting);
        assert_eq!(u.participant.hand_raised, Some(4));
        assert_eq!(UiEvent::ParticipantUpdated(u).to_page().1["participant"]["isCohost"], true);
    }

    #[test]
    fn host_controls_reach_the_page_by_name() {
        use protocol::control::{MediaDevice, Reaction};
        let mut t = Translator::new(String::new(), String::new(), None);
        let mut page = |event| t.translate(event, Instant::now()).expect("the page has it").to_page();
        assert_eq!(
            page(SessionEvent::MeetingLocked { locked: true, by: 1 }),
            ("meeting-locked".to_string(), serde_json::json!({"locked": true, "by": 1}))
        );
        assert_eq!(
            page(SessionEvent::MutedByHost { by: 1 }),
            ("muted-by-host".to_string(), serde_json::json!({"by": 1}))
        );
        assert_eq!(
            page(SessionEvent::MediaRequested { by: 1, device: MediaDevice::Camera }),
            ("media-requested".to_string(), serde_json::json!({"by": 1, "device": "camera"}))
        );
        assert_eq!(
            page(SessionEvent::MeetingEnded { by: 1 }),
            ("meeting-ended".to_string(), serde_json::json!({"by": 1}))
        );
        assert_eq!(
            page(SessionEvent::Reaction { participant_id: 2, reaction: Reaction::ThumbsUp }),
            ("reaction".to_string(), serde_json::json!({"participantId": 2, "reaction": "thumbsUp"}))
        );
        assert_eq!(
            page(SessionEvent::Knock { request_id: 5, display_name: "Grace".into(), waiting_since_ms: 9 }).1,
            serde_json::json!({"requestId": 5, "name": "Grace", "waitingSinceMs": 9})
        );
    }
}
