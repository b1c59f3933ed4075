//! Parlor's wire formats and its sans-IO algorithms.
//!
//! This crate never touches a socket, never spawns a thread and **never reads the clock**:
//! every method that depends on time takes `now: Instant` from its caller. That makes every
//! algorithm here (congestion window, jitter buffer, frame reassembly, estimators, quality
//! adaptation) deterministic and testable with a simulated clock.
//!
//! - [`control`]: the JSON control messages exchanged over TCP.
//! - [`framing`]: the 4-byte big-endian length prefix around each TCP frame.
//! - [`media`]: the binary UDP media packets.
//! - [`hop`]: the authentication trailer of every datagram, keyed from the TLS session.
//! - [`replay`]: the sliding replay window behind it.
//! - [`file`]: the binary chunk/ACK frames of a file-transfer connection.
//! - [`reno`]: the file-transfer congestion window (RFC 5681 Reno, RFC 6298 RTO).
//! - [`chunks`]: the file-transfer chunk sender around it, and the one loop both ends use.
//! - [`assembler`]: video frame reassembly from UDP fragments.
//! - [`jitter`]: the adaptive audio jitter buffer.
//! - [`conceal`]: packet-loss concealment for the audio the jitter buffer is missing.
//! - [`mulaw`], [`adpcm`]: G.711 µ-law and IMA ADPCM, for the redundant copies of earlier
//!   audio frames.
//! - [`redundancy`]: how many copies audio packets carry, from the loss runs receivers report.
//! - [`estimators`]: RTT, loss, interarrival jitter and rate measurements.
//! - [`quality`]: the video quality ladder and its adaptation policy.
//! - [`fingerprint`]: SHA-256 fingerprints of relay certificates.
//! - `tls` (feature `tls`): the TLS 1.3 configurations of both ends and certificate
//!   fingerprints.
//! - [`invite`]: invitations (relay address, meeting code, certificate fingerprint) as text
//!   and as `parlor://` links.
//! - [`resume`]: a client's reconnect schedule and exactly-once chat across a resume.
//! - [`stats`]: the shapes of a client's per-second stats snapshots (its `--stats-json` lines).
//!
//! The wire format is documented for implementers in `docs/protocol.md`.

pub mod adpcm;
pub mod assembler;
pub mod chunks;
pub mod conceal;
pub mod control;
pub mod e2ee;
pub mod estimators;
pub mod file;
pub mod fingerprint;
pub mod framing;
pub mod hop;
pub mod invite;
pub mod jitter;
pub mod media;
pub mod mulaw;
pub mod quality;
pub mod redirect;
pub mod redundancy;
pub mod reno;
pub mod replay;
pub mod resume;
pub mod screen;
pub mod stats;
#[cfg(feature = "tls")]
pub mod tls;

pub use control::ControlMessage;
pub use framing::{FrameCodec, FrameError};
pub use media::{MediaPacket, PacketError};

/// Version of the control and media protocol. A relay refuses a client whose `HELLO`
/// carries another major version.
pub const PROTOCOL_VERSION: u16 = 13;
