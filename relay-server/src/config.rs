//! Relay configuration: every limit and timeout the relay enforces, with production defaults.
//!
//! Every queue, map and spool the relay keeps is bounded by one of these numbers, so a
//! misbehaving client can exhaust its own share but never the relay.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::time::Duration;

use crate::thinning::ThinningConfig;

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
    /// Name announced in `WELCOME`.
    pub server_name: String,
    /// Largest file a participant may upload, in bytes.
    pub max_file_size: u64,
    /// Total bytes spooled across all meetings (files and uploads in progress).
    pub max_spool_bytes: u64,
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
    /// Knocks waiting for the host's answer in one meeting.
    pub max_pending_knocks: usize,
    /// How long a knock waits for the host before it expires.
    pub knock_timeout: Duration,
    /// A connection that sends nothing (not even a `PONG`) for this long is dropped. The relay
    /// pings every third of it, so a live client always has something to answer.
    pub liveness_timeout: Duration,
    /// Chat messages a late joiner receives.
    pub chat_history_len: usize,
    /// Longest chat message in characters (at most [`protocol::control::MAX_CHAT_CHARS`]).
    pub max_chat_chars: usize,
    /// Chat messages a participant may send in a burst…
    pub chat_burst: u32,
    /// …and per second after the burst.
    pub chat_per_second: u32,
    /// Messages queued for one connection before it counts as too slow and is disconnected.
    pub outbound_queue_len: usize,
    /// How often the relay sends each sender a receiver report about each of its streams.
    pub report_interval: Duration,
    /// Per-receiver frame thinning thresholds.
    pub thinning: ThinningConfig,
    /// Requested size of the UDP socket's kernel buffers (receive and send), in bytes.
    pub udp_socket_buffer: usize,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            host: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tcp_port: 5000,
            udp_port: 5001,
            data_dir: None,
            server_name: "parlor-relay".to_string(),
            max_file_size: 512 * 1024 * 1024,
            max_spool_bytes: 4 * 1024 * 1024 * 1024,
            max_files_per_meeting: 1000,
            max_uploads_per_participant: 2,
            max_downloads_per_participant: 4,
            max_participants: 50,
            max_meetings: 1000,
            max_connections: 1024,
            max_pending_knocks: 32,
            knock_timeout: Duration::from_secs(120),
            liveness_timeout: Duration::from_secs(15),
            chat_history_len: 200,
            max_chat_chars: protocol::control::MAX_CHAT_CHARS,
            chat_burst: 40,
            chat_per_second: 20,
            outbound_queue_len: 1024,
            report_interval: Duration::from_secs(1),
            thinning: ThinningConfig::default(),
            udp_socket_buffer: 4 * 1024 * 1024,
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
