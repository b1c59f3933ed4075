//! The control connection: TLS over TCP to the relay ([`super::tls`]), length-prefixed JSON
//! frames, and the `HELLO` / `WELCOME` handshake that tells the client the relay's UDP port.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::control::{ClusterRelay, ErrorCode};
use protocol::fingerprint::Fingerprint;
use protocol::framing::ControlFrames;
use protocol::hop::HopSecret;
use protocol::{ControlMessage, FrameCodec, FrameError, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

use super::tls::{RelayCertificate, RelayTrust, TlsStream};

/// Relays of a cluster a client keeps, at most (a relay lists 16).
const MAX_CLUSTER_RELAYS: usize = 16;

/// A framed control connection.
pub type ControlConn = Framed<TlsStream, ControlFrames>;

/// Why connecting to a relay failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("cannot resolve relay address {addr}: {source}")]
    Resolve { addr: String, source: std::io::Error },
    #[error("relay address {0} resolves to nothing")]
    NoAddress(String),
    #[error("cannot connect to relay {addr}: {source}")]
    Connect { addr: String, source: std::io::Error },
    #[error("relay {0} did not answer in time")]
    Timeout(String),
    #[error(
        "the relay at {relay} presents another certificate than the one trusted before \
         (fingerprint {} instead of {}): it was reinstalled, or someone is intercepting the connection",
        presented.short(),
        pinned.short()
    )]
    CertificateChanged { relay: String, pinned: Fingerprint, presented: Fingerprint },
    #[error(
        "the relay at {relay} is not the one the invitation names (its certificate's fingerprint is {} \
         instead of {}): someone may be intercepting the connection",
        presented.short(),
        expected.short()
    )]
    NotTheInvitedRelay { relay: String, expected: Fingerprint, presented: Fingerprint },
    #[error("no secure connection to relay {relay}: {message}")]
    Tls { relay: String, message: String },
    #[error("{0}")]
    PinStore(String),
    #[error("control connection: {0}")]
    Frame(#[from] FrameError),
    #[error("relay closed the connection during the handshake")]
    Closed,
    #[error("relay refused the handshake ({code:?}): {message}")]
    Refused { code: ErrorCode, message: String },
    #[error("relay speaks protocol version {0}, this client {PROTOCOL_VERSION}")]
    Version(u16),
    #[error("unexpected {0} during the handshake")]
    Unexpected(&'static str),
}

/// What the relay said in `WELCOME`.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The address the control connection reached (its IP is where media goes too).
    pub relay_addr: SocketAddr,
    pub udp_port: u16,
    pub server_name: String,
    /// The relay's certificate and why it was trusted.
    pub certificate: RelayCertificate,
    /// The keys of our media datagrams, exported from this connection's TLS session.
    pub hop: HopSecret,
    /// The other relays of its cluster (none for a relay alone): where to resume if it dies.
    pub cluster: Vec<ClusterRelay>,
}

impl Handshake {
    /// The relay's UDP media address.
    pub fn udp_addr(&self) -> SocketAddr {
        SocketAddr::new(self.relay_addr.ip(), self.udp_port)
    }
}

/// Resolves `relay` ("HOST:PORT"), connects, checks its certificate by `trust` and completes
/// the handshake within `timeout`.
pub async fn connect(
    relay: &str,
    trust: &RelayTrust,
    client_name: &str,
    timeout: Duration,
) -> Result<(ControlConn, Handshake), ConnectError> {
    tokio::time::timeout(timeout, connect_inner(relay, trust, client_name))
        .await
        .map_err(|_| ConnectError::Timeout(relay.to_string()))?
}

async fn connect_inner(
    relay: &str,
    trust: &RelayTrust,
    client_name: &str,
) -> Result<(ControlConn, Handshake), ConnectError> {
    let stream = connect_tcp(relay).await?;
    let relay_addr = stream.peer_addr().map_err(|source| ConnectError::Connect { addr: relay.to_string(), source })?;
    let (stream, certificate) = super::tls::handshake(relay, stream, trust).await?;
    let hop = protocol::tls::export_hop_secret(&**stream.get_ref().1)
        .map_err(|e| ConnectError::Tls { relay: relay.to_string(), message: e.to_string() })?;
    let mut conn = Framed::new(stream, ControlFrames(FrameCodec::default()));
    conn.send(ControlMessage::Hello { protocol_version: PROTOCOL_VERSION, client_name: client_name.to_string() })
        .await?;
    loop {
        let msg = match conn.next().await {
            None => return Err(ConnectError::Closed),
            Some(frame) => frame??,
        };
        match msg {
            ControlMessage::Welcome { protocol_version, udp_port, server_name, relays } => {
                if protocol_version != PROTOCOL_VERSION {
                    return Err(ConnectError::Version(protocol_version));
                }
                let cluster = relays.into_iter().take(MAX_CLUSTER_RELAYS).collect();
                return Ok((conn, Handshake { relay_addr, udp_port, server_name, certificate, hop, cluster }));
            }
            ControlMessage::Error { code, message, .. } => return Err(ConnectError::Refused { code, message }),
            ControlMessage::Ping { nonce } => conn.send(ControlMessage::Pong { nonce }).await?,
            other => return Err(ConnectError::Unexpected(other.type_name())),
        }
    }
}

/// Opens a TCP connection to the relay, trying each resolved address in turn.
pub(crate) async fn connect_tcp(relay: &str) -> Result<TcpStream, ConnectError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(relay)
        .await
        .map_err(|source| ConnectError::Resolve { addr: relay.to_string(), source })?
        .collect();
    let mut last_err = None;
    for addr in &addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => {
                // Control messages are small and latency-sensitive.
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Err(e) => last_err = Some(e),
        }
    }
    match last_err {
        Some(source) => Err(ConnectError::Connect { addr: relay.to_string(), source }),
        None => Err(ConnectError::NoAddress(relay.to_string())),
    }
}
