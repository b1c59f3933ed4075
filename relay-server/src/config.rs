//! Relay configuration: every limit and timeout the relay enforces, with production defaults.
//!
//! Every queue, map and spool the relay keeps is bounded by one of these numbers, so a
//! misbehaving client can exhaust its own share but never the relay.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::limits::{AddressRates, Rate};
use crate::thinning::ThinningConfig;
use crate::tls::CertificateSource;

/// Everything a [`crate::Relay`] needs to start.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Address both listeners bind to.
    pub host: IpAddr,
    /// TCP port for control and file connections (0 = any free port).
    pub tcp_port: u16,
    /// UDP port for media (0 = any free port).
    pub udp_port: u16,
    /// Where uploaded files are spooled: the relay keeps them in a `parlor-spool` directory
    /// inside it, one sub-directory per live meeting. `None` makes the relay use a private
    /// temporary directory that it deletes when it stops.
    pub data_dir: Option<PathBuf>,
    /// With a data directory and a grace window: keep the meetings across a restart (their
    /// records live in the spool directory; a restart within the grace window holds every
    /// seat for a resume). The desktop app's embedded relay does not:
    /// when its user quits, their meetings end.
    pub keep_meetings_across_restarts: bool,
    /// The TLS certificate every TCP connection is served with ([`crate::tls`]).
    pub certificate: CertificateSource,
    /// Name announced in `WELCOME`.
    pub server_name: String,
    /// Largest file a participant may upload, in bytes.
    pub max_file_size: u64,
    /// Total bytes spooled across all meetings: the files, and what uploads in progress have
    /// sent so far (an upload is charged as its bytes arrive, not for its announced size).
    pub max_spool_bytes: u64,
    /// Of that, what one meeting's files and uploads may hold…
    pub max_spool_bytes_per_meeting: u64,
    /// …and what one participant's may hold in a meeting.
    pub max_spool_bytes_per_participant: u64,
    /// An upload that moves fewer than `upload_stall_min_bytes` in any `upload_stall_window`
    /// is cut ([`crate::stall`]).
    pub upload_stall_window: Duration,
    pub upload_stall_min_bytes: u64,
    /// Files kept per meeting.
    pub max_files_per_meeting: usize,
    /// Uploads one participant may run at the same time.
    pub max_uploads_per_participant: usize,
    /// Downloads one participant may run at the same time.
    pub max_downloads_per_participant: usize,
    /// Participants per meeting, host included.
    pub max_participants: usize,
    /// Live meetings on this relay.
    pub max_meetings: usize,
    /// Open TCP connections (control and file) on this relay.
    pub max_connections: usize,
    /// Open TCP connections from one address (an IPv4 address or an IPv6 /64).
    pub max_connections_per_address: usize,
    /// Knocks waiting for the host's answer in one meeting.
    pub max_pending_knocks: usize,
    /// Knocks from one address waiting in one meeting's waiting room.
    pub max_pending_knocks_per_address: usize,
    /// Per-address rates: failed joins (unknown codes), knocks, new meetings.
    pub address_rates: AddressRates,
    /// Addresses the per-address rate table remembers (the oldest are forgotten beyond it).
    pub address_table_len: usize,
    /// How long a knock waits for the host before it expires.
    pub knock_timeout: Duration,
    /// A connection that sends nothing (not even a `PONG`) for this long is dropped. The relay
    /// pings every third of it, so a live client always has something to answer.
    pub liveness_timeout: Duration,
    /// How long a participant whose control connection dropped (closed, or silent for the
    /// liveness timeout) keeps its seat: the others see it as reconnecting, and a `RESUME`
    /// with its secret takes the seat back. After it the leave is announced. Zero: a drop is
    /// a leave at once.
    pub resume_grace: Duration,
    /// A control connection that is in no meeting and no waiting room for this long (after its
    /// `HELLO`, or after it left one) is closed: it holds a connection slot of its address and
    /// of the relay for nothing.
    pub idle_before_join_timeout: Duration,
    /// Chat messages a late joiner receives…
    pub chat_history_len: usize,
    /// …and at most this many bytes of them (as encoded in `JOINED`), so `JOINED` always fits
    /// a control frame.
    pub chat_history_bytes: usize,
    /// Longest chat message in characters (at most [`protocol::control::MAX_CHAT_CHARS`]).
    pub max_chat_chars: usize,
    /// Chat messages a participant may send in a burst…
    pub chat_burst: u32,
    /// …and per second after the burst.
    pub chat_per_second: u32,
    /// `MEDIA_STATE` changes a participant may send in a burst…
    pub media_state_burst: u32,
    /// …and per second after the burst.
    pub media_state_per_second: u32,
    /// Reactions a participant may send in a burst…
    pub reaction_burst: u32,
    /// …and per second after the burst.
    pub reaction_per_second: u32,
    /// Messages queued for one connection before it counts as too slow and is disconnected.
    pub outbound_queue_len: usize,
    /// How often the relay sends each sender a receiver report about each of its streams.
    pub report_interval: Duration,
    /// Per-receiver frame thinning thresholds.
    pub thinning: ThinningConfig,
    /// Requested size of the UDP socket's kernel buffers (receive and send), in bytes.
    pub udp_socket_buffer: usize,
    /// Where to serve `/metrics` and `/healthz` over HTTP ([`crate::metrics`]); `None`: nowhere.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// The cluster directory ([`crate::directory`]): the URL of a Redis server shared by relays
    /// that act as one service (`redis://HOST:6379/0`, `redis+unix:///PATH`). `None`: this relay
    /// works alone, as the desktop app's embedded relay always does.
    pub redis_url: Option<String>,
    /// Where clients reach this relay's TCP port, "HOST:PORT": what other relays of the cluster
    /// redirect them to. Without it, `host:tcp_port` (refused at start with a cluster directory
    /// if `host` is a wildcard address).
    pub public_address: Option<String>,
    /// Participants this relay hosts before it places new meetings on a less loaded relay of
    /// the cluster (with a directory; a relay alone refuses only at `max_meetings`).
    pub capacity: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tcp_port: 5000,
            udp_port: 5001,
            data_dir: None,
            keep_meetings_across_restarts: true,
            certificate: CertificateSource::SelfSigned,
            server_name: "parlor-relay".to_string(),
            max_file_size: 512 * 1024 * 1024,
            max_spool_bytes: 4 * 1024 * 1024 * 1024,
            // Half the relay's spool for one meeting, two of the largest files for one person.
            max_spool_bytes_per_meeting: 2 * 1024 * 1024 * 1024,
            max_spool_bytes_per_participant: 1024 * 1024 * 1024,
            upload_stall_window: Duration::from_secs(15),
            upload_stall_min_bytes: 16 * 1024,
            max_files_per_meeting: 1000,
            max_uploads_per_participant: 2,
            max_downloads_per_participant: 4,
            max_participants: 50,
            max_meetings: 1000,
            max_connections: 1024,
            max_connections_per_address: 32,
            max_pending_knocks: 32,
            max_pending_knocks_per_address: 3,
            address_rates: AddressRates {
                // 10 wrong codes at once, then one an hour: finding one of 100 live meetings
                // among the 10^6 codes takes an expected 10^4 guesses, over a year from one
                // address and over three days from a hundred.
                failed_joins: Rate::new(10, Duration::from_secs(3600)),
                knocks: Rate::new(10, Duration::from_secs(6)),
                new_meetings: Rate::new(20, Duration::from_secs(30)),
            },
            address_table_len: 65_536,
            knock_timeout: Duration::from_secs(120),
            liveness_timeout: Duration::from_secs(15),
            resume_grace: Duration::from_secs(30),
            idle_before_join_timeout: Duration::from_secs(30),
            chat_history_len: 200,
            chat_history_bytes: 32 * 1024,
            max_chat_chars: protocol::control::MAX_CHAT_CHARS,
            chat_burst: 40,
            chat_per_second: 20,
            media_state_burst: 20,
            media_state_per_second: 10,
            reaction_burst: 5,
            reaction_per_second: 1,
            outbound_queue_len: 1024,
            report_interval: Duration::from_secs(1),
            thinning: ThinningConfig::default(),
            udp_socket_buffer: 4 * 1024 * 1024,
            metrics_addr: None,
            redis_url: None,
            public_address: None,
            // Half of what one core carried at under 0.5% loss (800 participants in meetings of 4,
            // BENCHMARKS.md), so a cluster moves new meetings elsewhere well before.
            capacity: 400,
        }
    }
}

impl RelayConfig {
    /// The defaults, but bound to 127.0.0.1 on free ports with a private temporary spool
    /// directory: what in-process tests and an embedded relay want.
    pub fn for_tests() -> Self {
        Self { host: IpAddr::V4(Ipv4Addr::LOCALHOST), tcp_port: 0, udp_port: 0, data_dir: None, ..Self::default() }
    }
}
