//! Relay counters and the snapshot [`crate::RelayHandle::stats`] returns.
//!
//! The UDP task keeps its counters in plain integers (no atomic per packet) and publishes
//! them into [`Stats`] once per receive batch; the control side updates its atomics directly,
//! which is cheap at control-message rates.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use protocol::hop::HopError;
use protocol::PacketError;

/// Why the relay dropped a UDP datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// Shorter than its header.
    TooShort,
    /// Longer than the protocol's datagram limit ([`protocol::media::MAX_DATAGRAM_LEN`]).
    TooLong,
    /// Does not start with the media magic.
    BadMagic,
    /// Another media format version.
    UnsupportedVersion,
    /// Unknown packet kind.
    UnknownKind,
    /// Payload length disagrees with the datagram.
    LengthMismatch,
    /// A header field is out of range.
    InvalidField,
    /// No admitted participant has this sender id.
    UnknownSender,
    /// The authentication tag does not match the sender's key: made up, altered, or sent
    /// with another participant's id.
    Forged,
    /// A sequence number the sender's replay window already accepted: a captured datagram
    /// sent again.
    Replayed,
    /// A sequence number older than the sender's replay window.
    Stale,
    /// The datagram came from another address than the sender's keepalives.
    WrongAddress,
    /// A kind clients never send (an RTT reply).
    UnexpectedKind,
    /// A receiver report or refresh request about a source that is not in the sender's
    /// meeting.
    ForeignReport,
    /// Audio from a participant a moderator muted, which has not turned its microphone off
    /// and on again since (a client ignoring the mute).
    MutedByHost,
    /// A screen refresh request within [`protocol::media::REFRESH_REQUEST_INTERVAL_MS`] of the
    /// previous one forwarded for the same receiver.
    RefreshLimited,
    /// A video fragment of a frame shed while the relay was overloaded: it had waited longer
    /// than [`crate::shedding::SHED_VIDEO_AFTER`] in the relay's receive queue (audio is never
    /// shed).
    Overloaded,
}

impl DropReason {
    /// Every reason, in the order of [`StatsSnapshot::drops`].
    pub const ALL: [DropReason; 17] = [
        DropReason::TooShort,
        DropReason::TooLong,
        DropReason::BadMagic,
        DropReason::UnsupportedVersion,
        DropReason::UnknownKind,
        DropReason::LengthMismatch,
        DropReason::InvalidField,
        DropReason::UnknownSender,
        DropReason::Forged,
        DropReason::Replayed,
        DropReason::Stale,
        DropReason::WrongAddress,
        DropReason::UnexpectedKind,
        DropReason::ForeignReport,
        DropReason::MutedByHost,
        DropReason::RefreshLimited,
        DropReason::Overloaded,
    ];

    /// Number of reasons.
    pub const COUNT: usize = Self::ALL.len();

    /// Short label for logs and stats displays.
    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::TooShort => "too_short",
            DropReason::TooLong => "too_long",
            DropReason::BadMagic => "bad_magic",
            DropReason::UnsupportedVersion => "unsupported_version",
            DropReason::UnknownKind => "unknown_kind",
            DropReason::LengthMismatch => "length_mismatch",
            DropReason::InvalidField => "invalid_field",
            DropReason::UnknownSender => "unknown_sender",
            DropReason::Forged => "forged",
            DropReason::Replayed => "replayed",
            DropReason::Stale => "stale",
            DropReason::WrongAddress => "wrong_address",
            DropReason::UnexpectedKind => "unexpected_kind",
            DropReason::ForeignReport => "foreign_report",
            DropReason::MutedByHost => "muted_by_host",
            DropReason::RefreshLimited => "refresh_limited",
            DropReason::Overloaded => "overloaded",
        }
    }

    /// True for the reasons that mean "not a valid media packet".
    pub fn is_malformed(self) -> bool {
        matches!(
            self,
            DropReason::TooShort
                | DropReason::TooLong
                | DropReason::BadMagic
                | DropReason::UnsupportedVersion
                | DropReason::UnknownKind
                | DropReason::LengthMismatch
                | DropReason::InvalidField
        )
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl From<HopError> for DropReason {
    fn from(e: HopError) -> Self {
        match e {
            HopError::TooShort => DropReason::TooShort,
            HopError::Forged => DropReason::Forged,
            HopError::Replayed => DropReason::Replayed,
            HopError::Stale => DropReason::Stale,
        }
    }
}

impl From<PacketError> for DropReason {
    fn from(e: PacketError) -> Self {
        match e {
            PacketError::TooShort => DropReason::TooShort,
            PacketError::TooLong => DropReason::TooLong,
            PacketError::BadMagic => DropReason::BadMagic,
            PacketError::UnsupportedVersion(_) => DropReason::UnsupportedVersion,
            PacketError::UnknownKind(_) => DropReason::UnknownKind,
            PacketError::LengthMismatch => DropReason::LengthMismatch,
            // Decoding never reports a small output buffer; count it with bad fields if it did.
            PacketError::InvalidField | PacketError::BufferTooSmall => DropReason::InvalidField,
        }
    }
}

/// Counters owned by the UDP task, published as a whole.
#[derive(Debug, Clone, Default)]
pub(crate) struct UdpCounters {
    pub packets_in: u64,
    pub bytes_in: u64,
    pub packets_out: u64,
    pub bytes_out: u64,
    pub drops: [u64; DropReason::COUNT],
    pub thinned: u64,
    pub send_errors: u64,
    pub keepalives: u64,
    pub rtt_replies: u64,
    pub reports_sent: u64,
    pub reports_forwarded: u64,
    pub refreshes_forwarded: u64,
}

impl UdpCounters {
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    /// Datagrams counted out when they were queued that the socket then refused: they are
    /// send errors, not packets out.
    pub fn unsent(&mut self, datagrams: u64, bytes: u64) {
        self.packets_out = self.packets_out.saturating_sub(datagrams);
        self.bytes_out = self.bytes_out.saturating_sub(bytes);
        self.send_errors += datagrams;
    }
}

#[derive(Debug, Default)]
struct UdpAtomics {
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    packets_out: AtomicU64,
    bytes_out: AtomicU64,
    drops: [AtomicU64; DropReason::COUNT],
    thinned: AtomicU64,
    send_errors: AtomicU64,
    keepalives: AtomicU64,
    rtt_replies: AtomicU64,
    reports_sent: AtomicU64,
    reports_forwarded: AtomicU64,
    refreshes_forwarded: AtomicU64,
}

/// A limit the relay enforced: each refusal is counted by which limit it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitHit {
    /// A participant's chat (or file offers) over its rate.
    Chat,
    /// A participant's `MEDIA_STATE` changes (or hand raises) over their rate.
    MediaState,
    /// A participant's reactions over their rate.
    Reactions,
    /// An address over its failed joins (unknown codes).
    FailedJoins,
    /// An address over its knock rate.
    Knocks,
    /// An address with its maximum of knocks waiting in one meeting.
    PendingKnocksPerAddress,
    /// An address with its maximum of open connections.
    ConnectionsPerAddress,
    /// An address over its rate of new meetings.
    NewMeetings,
    /// A connection in no meeting and no waiting room for too long, closed.
    IdleBeforeJoin,
    /// An upload that moved too few bytes in a window, cut.
    StalledUpload,
    /// A meeting's files and uploads at its spool quota.
    MeetingSpool,
    /// A participant's files and uploads at its spool quota in the meeting.
    ParticipantSpool,
}

impl LimitHit {
    /// Every limit, in the order of [`StatsSnapshot::limits_hit`].
    pub const ALL: [LimitHit; 12] = [
        LimitHit::Chat,
        LimitHit::MediaState,
        LimitHit::Reactions,
        LimitHit::FailedJoins,
        LimitHit::Knocks,
        LimitHit::PendingKnocksPerAddress,
        LimitHit::ConnectionsPerAddress,
        LimitHit::NewMeetings,
        LimitHit::IdleBeforeJoin,
        LimitHit::StalledUpload,
        LimitHit::MeetingSpool,
        LimitHit::ParticipantSpool,
    ];

    /// Number of limits.
    pub const COUNT: usize = Self::ALL.len();

    /// Short label for logs and stats displays.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitHit::Chat => "chat",
            LimitHit::MediaState => "media_state",
            LimitHit::Reactions => "reactions",
            LimitHit::FailedJoins => "failed_joins",
            LimitHit::Knocks => "knocks",
            LimitHit::PendingKnocksPerAddress => "pending_knocks_per_address",
            LimitHit::ConnectionsPerAddress => "connections_per_address",
            LimitHit::NewMeetings => "new_meetings",
            LimitHit::IdleBeforeJoin => "idle_before_join",
            LimitHit::StalledUpload => "stalled_upload",
            LimitHit::MeetingSpool => "meeting_spool",
            LimitHit::ParticipantSpool => "participant_spool",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Live counters shared by the relay's tasks.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    udp: UdpAtomics,
    pub meetings_created: AtomicU64,
    pub meetings_live: AtomicU64,
    pub participants_joined: AtomicU64,
    pub participants_live: AtomicU64,
    /// Seats taken back with `RESUME`.
    pub resumes: AtomicU64,
    /// Interrupted uploads taken up again with `FILE_UPLOAD_RESUME`.
    pub uploads_resumed: AtomicU64,
    pub knocks: AtomicU64,
    pub control_connections: AtomicU64,
    pub file_connections: AtomicU64,
    pub malformed_messages: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub oversized_frames: AtomicU64,
    pub slow_consumers: AtomicU64,
    pub chat_messages: AtomicU64,
    pub files_uploaded: AtomicU64,
    pub upload_bytes: AtomicU64,
    pub download_bytes: AtomicU64,
    pub hash_mismatches: AtomicU64,
    pub spool_bytes: AtomicU64,
    /// Requests answered with `REDIRECT` (to the meeting's relay, or a less loaded one).
    pub redirects: AtomicU64,
    /// Codes this relay claimed in the cluster directory for new meetings.
    pub directory_claims: AtomicU64,
    /// Codes of meetings hosted here that the directory showed claimed by another relay.
    pub directory_conflicts: AtomicU64,
    /// Directory operations that failed (Redis unreachable, slow or answering nonsense).
    pub directory_failures: AtomicU64,
    /// Meetings of a relay that died, taken over here when a participant resumed.
    pub directory_takeovers: AtomicU64,
    /// 1 while the cluster directory answers (0 without one, or while it is lost).
    pub directory_available: AtomicU64,
    limits_hit: [AtomicU64; LimitHit::COUNT],
}

impl Stats {
    /// Counts one refusal by `limit`.
    pub fn limit_hit(&self, limit: LimitHit) {
        self.limits_hit[limit.index()].fetch_add(1, Relaxed);
    }

    /// Stores the UDP task's running totals (it is their only writer).
    pub fn publish_udp(&self, c: &UdpCounters) {
        let u = &self.udp;
        u.packets_in.store(c.packets_in, Relaxed);
        u.bytes_in.store(c.bytes_in, Relaxed);
        u.packets_out.store(c.packets_out, Relaxed);
        u.bytes_out.store(c.bytes_out, Relaxed);
        for (a, v) in u.drops.iter().zip(c.drops.iter()) {
            a.store(*v, Relaxed);
        }
        u.thinned.store(c.thinned, Relaxed);
        u.send_errors.store(c.send_errors, Relaxed);
        u.keepalives.store(c.keepalives, Relaxed);
        u.rtt_replies.store(c.rtt_replies, Relaxed);
        u.reports_sent.store(c.reports_sent, Relaxed);
        u.reports_forwarded.store(c.reports_forwarded, Relaxed);
        u.refreshes_forwarded.store(c.refreshes_forwarded, Relaxed);
    }

    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Relaxed);
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    pub fn dec(counter: &AtomicU64) {
        counter.fetch_sub(1, Relaxed);
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let u = &self.udp;
        let mut drops = [0u64; DropReason::COUNT];
        for (d, a) in drops.iter_mut().zip(u.drops.iter()) {
            *d = a.load(Relaxed);
        }
        StatsSnapshot {
            udp_packets_in: u.packets_in.load(Relaxed),
            udp_bytes_in: u.bytes_in.load(Relaxed),
            udp_packets_out: u.packets_out.load(Relaxed),
            udp_bytes_out: u.bytes_out.load(Relaxed),
            drops,
            thinned: u.thinned.load(Relaxed),
            send_errors: u.send_errors.load(Relaxed),
            keepalives: u.keepalives.load(Relaxed),
            rtt_replies: u.rtt_replies.load(Relaxed),
            reports_sent: u.reports_sent.load(Relaxed),
            reports_forwarded: u.reports_forwarded.load(Relaxed),
            refreshes_forwarded: u.refreshes_forwarded.load(Relaxed),
            meetings_created: self.meetings_created.load(Relaxed),
            meetings_live: self.meetings_live.load(Relaxed),
            participants_joined: self.participants_joined.load(Relaxed),
            participants_live: self.participants_live.load(Relaxed),
            resumes: self.resumes.load(Relaxed),
            uploads_resumed: self.uploads_resumed.load(Relaxed),
            knocks: self.knocks.load(Relaxed),
            control_connections: self.control_connections.load(Relaxed),
            file_connections: self.file_connections.load(Relaxed),
            malformed_messages: self.malformed_messages.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            oversized_frames: self.oversized_frames.load(Relaxed),
            slow_consumers: self.slow_consumers.load(Relaxed),
            chat_messages: self.chat_messages.load(Relaxed),
            files_uploaded: self.files_uploaded.load(Relaxed),
            upload_bytes: self.upload_bytes.load(Relaxed),
            download_bytes: self.download_bytes.load(Relaxed),
            hash_mismatches: self.hash_mismatches.load(Relaxed),
            spool_bytes: self.spool_bytes.load(Relaxed),
            redirects: self.redirects.load(Relaxed),
            directory_claims: self.directory_claims.load(Relaxed),
            directory_conflicts: self.directory_conflicts.load(Relaxed),
            directory_failures: self.directory_failures.load(Relaxed),
            directory_takeovers: self.directory_takeovers.load(Relaxed),
            directory_available: self.directory_available.load(Relaxed),
            limits_hit: std::array::from_fn(|i| self.limits_hit[i].load(Relaxed)),
        }
    }
}

/// A copy of the relay's counters at one moment. UDP counters lag by at most one receive
/// batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Datagrams received on the media socket (dropped ones included).
    pub udp_packets_in: u64,
    pub udp_bytes_in: u64,
    /// Datagrams sent: forwarded media and reports, RTT replies, the relay's own reports.
    pub udp_packets_out: u64,
    pub udp_bytes_out: u64,
    /// Dropped datagrams by reason, indexed like [`DropReason::ALL`]; see [`Self::drops`].
    pub drops: [u64; DropReason::COUNT],
    /// Video fragments withheld from a receiver by frame thinning (per receiver).
    pub thinned: u64,
    /// Sends the kernel refused (full socket buffer, unreachable address).
    pub send_errors: u64,
    /// Valid keepalives received.
    pub keepalives: u64,
    pub rtt_replies: u64,
    /// Receiver reports the relay wrote about senders' streams.
    pub reports_sent: u64,
    /// Receivers' own reports forwarded to the source they are about.
    pub reports_forwarded: u64,
    /// Screen refresh requests forwarded to the sharer they are about.
    pub refreshes_forwarded: u64,
    pub meetings_created: u64,
    pub meetings_live: u64,
    pub participants_joined: u64,
    pub participants_live: u64,
    /// Seats taken back with `RESUME` (cumulative).
    pub resumes: u64,
    /// Interrupted uploads taken up again with `FILE_UPLOAD_RESUME` (cumulative).
    pub uploads_resumed: u64,
    pub knocks: u64,
    /// Connections that sent `HELLO` (cumulative).
    pub control_connections: u64,
    /// File-transfer connections (cumulative).
    pub file_connections: u64,
    /// Frames that were not valid messages (answered with an `ERROR`).
    pub malformed_messages: u64,
    /// Connections closed because their TLS handshake failed or did not finish in time.
    pub tls_handshake_failures: u64,
    /// Connections closed because a length prefix exceeded the limit.
    pub oversized_frames: u64,
    /// Connections dropped because their outbound queue overflowed.
    pub slow_consumers: u64,
    pub chat_messages: u64,
    pub files_uploaded: u64,
    pub upload_bytes: u64,
    pub download_bytes: u64,
    pub hash_mismatches: u64,
    /// Bytes currently spooled or reserved by uploads in progress.
    pub spool_bytes: u64,
    /// Requests answered with `REDIRECT` (cumulative).
    pub redirects: u64,
    /// Codes claimed in the cluster directory for new meetings (cumulative).
    pub directory_claims: u64,
    /// Codes of meetings hosted here found claimed by another relay (cumulative).
    pub directory_conflicts: u64,
    /// Directory operations that failed (cumulative).
    pub directory_failures: u64,
    /// Meetings of a dead relay taken over here (cumulative): failovers.
    pub directory_takeovers: u64,
    /// 1 while the cluster directory answers.
    pub directory_available: u64,
    /// Requests refused by each limit, indexed like [`LimitHit::ALL`]; see [`Self::limit_hits`].
    pub limits_hit: [u64; LimitHit::COUNT],
}

impl StatsSnapshot {
    /// Datagrams dropped for `reason`.
    pub fn drops(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// Datagrams dropped because they were not valid media packets.
    pub fn malformed_drops(&self) -> u64 {
        DropReason::ALL.iter().filter(|r| r.is_malformed()).map(|r| self.drops(*r)).sum()
    }

    /// Requests refused by `limit`.
    pub fn limit_hits(&self, limit: LimitHit) -> u64 {
        self.limits_hit[limit.index()]
    }

    /// All dropped datagrams.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }
}
