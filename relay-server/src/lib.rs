//! The Parlor relay: hosts meetings, forwards media between participants, spools files.
//!
//! Start one in-process with [`Relay::start`]; the returned [`RelayHandle`] reports the bound
//! addresses and live counters and shuts the relay down gracefully:
//!
//! ```no_run
//! # async fn demo() -> Result<(), relay_server::RelayError> {
//! use relay_server::{Relay, RelayConfig};
//! let relay = Relay::start(RelayConfig::for_tests()).await?;
//! println!("control on {}, media on {}", relay.tcp_addr(), relay.udp_addr());
//! relay.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Every TCP connection is TLS 1.3 (`tls`: the relay's certificate, self-signed or loaded).
//! Clients open one TCP control connection (length-prefixed JSON, [`protocol::control`]),
//! send media over UDP ([`protocol::media`]) and move files over extra TCP connections
//! ([`protocol::file`]). The modules:
//!
//! - `meeting`: codes, waiting room, roster, host hand-over, chat: a sans-IO core per
//!   meeting (`meeting::core`), the registry, and the wrapper that carries out its effects;
//! - `routes`: route updates from meetings to the UDP task, never waiting;
//! - `limits`: rate limits given the time;
//! - `control`: one task per control connection;
//! - `udp`: the media task, its lock-free routing table, receiver reports;
//! - [`thinning`], per-receiver video frame thinning (sans-IO);
//! - `files`: upload spooling with SHA-256 verification, Reno-paced downloads;
//! - [`stats`], the counters behind [`RelayHandle::stats`];
//! - `directory`: with `--redis`, the cluster directory several relays share (codes unique
//!   across them, redirects to the relay hosting a meeting or with room for a new one);
//! - [`test_redis`]: a private `redis-server` for the tests and benchmarks of clusters;
//! - `metrics`: those counters as Prometheus metrics on their own HTTP port, and `/healthz`.
//!
//! Shutdown follows mini-redis: one cancellation token is broadcast to every task, each
//! task cleans up (participants leave, meetings end, spools are deleted) and the handle waits
//! on a task tracker until all of them have finished.

mod config;
mod control;
mod directory;
mod files;
mod limits;
mod meeting;
mod metrics;
mod outbox;
mod persist;
mod routes;
mod shedding;
mod stall;
pub mod stats;
#[cfg(unix)]
pub mod test_redis;
pub mod thinning;
mod tls;
mod udp;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info};

pub use config::RelayConfig;
pub use limits::{AddressRates, Rate};
pub use protocol::fingerprint::Fingerprint;
pub use stats::{DropReason, LimitHit, StatsSnapshot};
pub use thinning::ThinningConfig;
pub use tls::{CertificateSource, TlsSetupError};

use meeting::Shared;
use stats::Stats;

/// Why the relay could not start.
#[derive(Debug, Error)]
pub enum RelayError {
    #[error("cannot bind {protocol} {addr}: {source}")]
    Bind { protocol: &'static str, addr: SocketAddr, source: std::io::Error },
    #[error("cannot prepare the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: std::io::Error },
    #[error("TLS certificate: {0}")]
    Tls(#[from] TlsSetupError),
    #[error("cluster directory: {0}")]
    Cluster(String),
}

/// Entry point: `Relay::start(config)`.
#[derive(Debug)]
pub struct Relay;

impl Relay {
    /// Binds both sockets, prepares the spool directory and spawns the relay's tasks on the
    /// current tokio runtime.
    pub async fn start(config: RelayConfig) -> Result<RelayHandle, RelayError> {
        let (spool_root, temp_dir) = prepare_data_dir(config.data_dir.as_deref())?;
        let certificate = tls::load(&config.certificate, config.data_dir.as_deref())?;
        let fingerprint = certificate.fingerprint;
        let acceptor = tokio_rustls::TlsAcceptor::from(certificate.config);

        let tcp_bind = SocketAddr::new(config.host, config.tcp_port);
        let listener = TcpListener::bind(tcp_bind).await.map_err(|source| RelayError::Bind {
            protocol: "TCP",
            addr: tcp_bind,
            source,
        })?;
        let tcp_addr =
            listener.local_addr().map_err(|source| RelayError::Bind { protocol: "TCP", addr: tcp_bind, source })?;

        let udp_bind = SocketAddr::new(config.host, config.udp_port);
        let (udp_socket, udp_sender) = udp::bind(udp_bind, config.udp_socket_buffer)
            .map_err(|source| RelayError::Bind { protocol: "UDP", addr: udp_bind, source })?;
        let udp_addr =
            udp_socket.local_addr().map_err(|source| RelayError::Bind { protocol: "UDP", addr: udp_bind, source })?;

        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|source| RelayError::Bind {
                protocol: "HTTP (metrics)",
                addr,
                source,
            })?),
            None => None,
        };
        let metrics_addr = metrics_listener.as_ref().and_then(|l| l.local_addr().ok());

        let stats = Arc::new(Stats::default());
        let routes = Arc::new(routes::RouteQueue::default());
        let shutdown = CancellationToken::new();
        let tracker = TaskTracker::new();

        tracker.spawn(udp::run(
            udp_socket,
            udp_sender,
            routes.clone(),
            stats.clone(),
            config.thinning,
            config.report_interval,
            shutdown.clone(),
        ));

        if let Some(listener) = metrics_listener {
            tracker.spawn(metrics::serve(listener, stats.clone(), shutdown.clone()));
        }
        let max_connections = config.max_connections.max(1);
        let directory = match &config.redis_url {
            None => None,
            Some(url) => {
                let address = public_address(&config, tcp_addr)?;
                let (directory, releases) = directory::Directory::new(
                    url,
                    address,
                    fingerprint,
                    config.capacity,
                    config.max_meetings,
                    config.resume_grace,
                    stats.clone(),
                )
                // The URL may hold a password: the error names neither.
                .map_err(|e| RelayError::Cluster(format!("the Redis URL is not valid ({:?})", e.kind())))?;
                Some((directory, releases))
            }
        };
        let shared = Arc::new(Shared::new(
            config,
            spool_root,
            udp_addr.port(),
            stats.clone(),
            routes,
            shutdown.clone(),
            directory.as_ref().map(|(d, _)| d.clone()),
        ));
        let restored = match persist::restore(&shared) {
            Ok(restored) => restored,
            Err(source) => {
                // The tasks already started stop with it.
                shutdown.cancel();
                return Err(RelayError::DataDir { path: shared.spool_root.clone(), source });
            }
        };
        if shared.keeps_meetings() {
            tracker.spawn(persist::run(shared.clone(), shutdown.clone()));
        }
        if let Some((directory, releases)) = directory {
            tracker.spawn(directory::run(shared.clone(), directory, releases, shutdown.clone()));
        }
        tracker.spawn(accept_loop(
            listener,
            acceptor,
            shared.clone(),
            max_connections,
            tracker.clone(),
            shutdown.clone(),
        ));
        info!(%tcp_addr, %udp_addr, %fingerprint, restored_meetings = restored.meetings, "relay listening");

        Ok(RelayHandle {
            tcp_addr,
            udp_addr,
            metrics_addr,
            fingerprint,
            stats,
            shared,
            shutdown,
            tracker,
            _temp_dir: temp_dir,
        })
    }
}

/// Where clients reach this relay: the configured public address, or the bound one if it is
/// a specific address.
fn public_address(config: &RelayConfig, tcp_addr: SocketAddr) -> Result<String, RelayError> {
    let address = match &config.public_address {
        Some(address) => address.trim().to_string(),
        None if tcp_addr.ip().is_unspecified() => {
            return Err(RelayError::Cluster(format!(
                "the relay listens on {tcp_addr}: say with --public-address where clients reach it"
            )))
        }
        None => tcp_addr.to_string(),
    };
    if !protocol::invite::is_valid_relay_address(&address) {
        return Err(RelayError::Cluster(format!("public address {address:?} is not HOST:PORT")));
    }
    Ok(address)
}

/// Name of the relay's own directory inside a configured data directory.
const SPOOL_DIR_NAME: &str = "parlor-spool";

/// Creates the spool root: a `parlor-spool` directory inside `data_dir`, or a private
/// temporary directory. What a previous run left in it is restored or deleted by
/// [`persist::restore`]; only `meeting-<digits>` directories inside the relay's own
/// `parlor-spool` directory are ever deleted.
fn prepare_data_dir(data_dir: Option<&Path>) -> Result<(PathBuf, Option<tempfile::TempDir>), RelayError> {
    let Some(dir) = data_dir else {
        let temp = tempfile::Builder::new()
            .prefix("parlor-relay-")
            .tempdir()
            .map_err(|source| RelayError::DataDir { path: std::env::temp_dir(), source })?;
        return Ok((temp.path().to_path_buf(), Some(temp)));
    };
    let root = dir.join(SPOOL_DIR_NAME);
    std::fs::create_dir_all(&root).map_err(|source| RelayError::DataDir { path: root.clone(), source })?;
    Ok((root, None))
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    shared: Arc<Shared>,
    max_connections: usize,
    tracker: TaskTracker,
    shutdown: CancellationToken,
) {
    let permits = Arc::new(Semaphore::new(max_connections));
    loop {
        // Wait for a free slot before accepting, so the backlog (not the relay) holds the
        // excess connections.
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            permit = permits.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let from = limits::AddressKey::from(peer.ip());
                let shared = shared.clone();
                let acceptor = acceptor.clone();
                if !shared.open_connection(from) {
                    shared.stats.limit_hit(LimitHit::ConnectionsPerAddress);
                    debug!(%peer, "too many connections from this address: refused");
                    tracker.spawn(async move {
                        // Said over TLS like everything else; a peer that stalls the handshake
                        // gets nothing and gives the slot back within a second.
                        if let Some(stream) =
                            handshake(&shared, &acceptor, stream, peer, REFUSAL_HANDSHAKE_TIMEOUT).await
                        {
                            control::refuse(shared, stream).await;
                        }
                        drop(permit);
                    });
                    continue;
                }
                debug!(%peer, "connection accepted");
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    let limit = shared.config.liveness_timeout;
                    let handshake = tokio::select! {
                        _ = shutdown.cancelled() => None,
                        stream = handshake(&shared, &acceptor, stream, peer, limit) => stream,
                    };
                    if let Some(stream) = handshake {
                        control::serve(shared.clone(), stream, peer, shutdown).await;
                    }
                    shared.close_connection(from);
                    drop(permit);
                });
            }
            Err(e) => {
                // Typically out of file descriptors: back off instead of spinning.
                error!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

/// How long a connection refused for its address's limit may take over its TLS handshake.
const REFUSAL_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// A TCP connection to the relay once its TLS handshake is done.
pub(crate) type Stream = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;

/// Runs the TLS handshake within `limit`; a failure is counted and logged at debug level (it
/// is what a port scanner or a client of an older, plaintext protocol version looks like).
async fn handshake(
    shared: &Shared,
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    limit: std::time::Duration,
) -> Option<Stream> {
    match tokio::time::timeout(limit, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            stats::Stats::inc(&shared.stats.tls_handshake_failures);
            debug!(%peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            stats::Stats::inc(&shared.stats.tls_handshake_failures);
            debug!(%peer, "no TLS handshake in time: closing");
            None
        }
    }
}

/// A running relay.
///
/// Dropping the handle stops the relay's tasks without waiting for them; call
/// [`RelayHandle::shutdown`] to wait until every connection has been closed and every spool
/// deleted.
#[derive(Debug)]
pub struct RelayHandle {
    tcp_addr: SocketAddr,
    udp_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    fingerprint: Fingerprint,
    stats: Arc<Stats>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    _temp_dir: Option<tempfile::TempDir>,
}

impl RelayHandle {
    /// Where clients open control and file connections.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.tcp_addr
    }

    /// Where clients send media.
    pub fn udp_addr(&self) -> SocketAddr {
        self.udp_addr
    }

    /// Where `/metrics` and `/healthz` are served, if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// With a cluster directory: the address this relay registered, where the others redirect
    /// clients to it.
    pub fn public_address(&self) -> Option<&str> {
        self.shared.directory.as_ref().map(|d| d.relay_id())
    }

    /// Whether the cluster directory answered this relay's last heartbeat (`false` without one).
    pub fn directory_available(&self) -> bool {
        self.shared.directory.as_ref().is_some_and(|d| d.is_available())
    }

    /// The SHA-256 fingerprint of the certificate the relay serves: what invitations carry
    /// and clients pin.
    pub fn certificate_fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    /// The directory holding the meetings' spooled files.
    pub fn spool_dir(&self) -> &Path {
        &self.shared.spool_root
    }

    /// A copy of the relay's counters.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Codes of the meetings currently live.
    pub fn live_meeting_codes(&self) -> Vec<String> {
        self.shared.live_codes()
    }

    /// Stops accepting, closes every connection and waits until all of the relay's tasks
    /// have finished. A relay with a data directory and a grace window keeps its meetings
    /// for a restart: participants are told `RELAY_RESTARTING` and the meetings are written
    /// to the data directory. Otherwise participants leave, meetings end and spools are
    /// deleted.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        self.tracker.close();
        self.tracker.wait().await;
        if self.shared.keeps_meetings() {
            persist::save_all(&self.shared).await;
        }
        info!("relay stopped");
    }
}

impl Drop for RelayHandle {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
