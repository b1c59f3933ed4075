//! The impairment proxy: real sockets in front of an upstream server, with an [`Impairment`]
//! in each direction.
//!
//! **UDP.** Each listen address forwards to one upstream address. Every client address gets its
//! own upstream socket (so the server sees one peer per client and replies find their way
//! back); the table of these flows is bounded ([`ProxyConfig::max_udp_flows`], the least
//! recently active flow is evicted when full) and idle flows expire
//! ([`ProxyConfig::udp_flow_idle`]). All clients of one listen address share one link: one
//! impairment for client → upstream ("up") and one for upstream → client ("down"), as if
//! they sat behind the same bottleneck.
//!
//! **TCP.** Each accepted connection is connected to the upstream and its bytes are pumped in
//! both directions through the `delay`, `jitter` and `rate` impairments of the schedule.
//! Loss, duplication and reordering do not apply to a byte stream (the kernel's TCP hides them
//! from the application; to make TCP itself see loss, shape a real link with `tc` instead).
//! The rate limit is per connection and direction, and a full queue stops the proxy reading
//! from the socket, so the sender feels back-pressure instead of losing bytes.
//!
//! Impairments follow a [`Schedule`] that starts when the proxy starts. Random decisions come
//! from generators seeded from [`ProxyConfig::seed`].

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch};
use tokio::task::{AbortHandle, JoinSet};

use crate::impair::{Impairment, ImpairmentStats, PacketClass};
use crate::schedule::{Schedule, ScheduleStep};

/// Largest UDP datagram the proxy carries.
const MAX_DATAGRAM: usize = 65_535;
/// Datagrams from upstream waiting for the proxy's main loop; beyond this they are dropped.
const DOWN_CHANNEL_CAPACITY: usize = 4096;
/// Bytes a TCP direction holds (queued or delayed) before it stops reading.
const TCP_WINDOW_BYTES: usize = 1 << 20;
/// Size of one TCP read, and so of the chunks the impairment sees.
const TCP_CHUNK: usize = 16 * 1024;
/// How long to wait for the upstream to accept a TCP connection.
const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One listen address and the upstream it forwards to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMap {
    pub listen: SocketAddr,
    pub upstream: SocketAddr,
}

/// What to proxy and how to impair it.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub udp: Vec<PortMap>,
    pub tcp: Vec<PortMap>,
    pub schedule: Schedule,
    pub seed: u64,
    /// Most UDP client flows per listen address.
    pub max_udp_flows: usize,
    /// A UDP flow with no packet either way for this long is forgotten.
    pub udp_flow_idle: Duration,
    /// Most simultaneous TCP connections per listen address; more are refused (closed).
    pub max_tcp_connections: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            udp: Vec::new(),
            tcp: Vec::new(),
            schedule: Schedule::default(),
            seed: 1,
            max_udp_flows: 256,
            udp_flow_idle: Duration::from_secs(60),
            max_tcp_connections: 256,
        }
    }
}

/// Why the proxy could not start.
#[derive(Debug, Error)]
pub enum ProxyError {
    #[error("cannot bind {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("nothing to proxy: give at least one UDP or TCP mapping")]
    NothingToProxy,
}

/// Counters of the whole proxy since it started.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProxyStats {
    /// UDP, client → upstream, all listen addresses together.
    pub udp_up: ImpairmentStats,
    /// UDP, upstream → client.
    pub udp_down: ImpairmentStats,
    /// TCP chunks, client → upstream, all connections together.
    pub tcp_up: ImpairmentStats,
    /// TCP chunks, upstream → client.
    pub tcp_down: ImpairmentStats,
    pub udp_flows_active: usize,
    pub udp_flows_created: u64,
    pub udp_flows_evicted: u64,
    pub udp_flows_expired: u64,
    /// Datagrams from upstream dropped because the proxy could not keep up.
    pub udp_down_overflow: u64,
    pub tcp_connections_accepted: u64,
    pub tcp_connections_refused: u64,
    pub tcp_upstream_failures: u64,
    /// Label of the schedule step in force.
    pub current_step: String,
}

type SharedStats = Arc<Mutex<ProxyStats>>;

fn with_stats(stats: &SharedStats, f: impl FnOnce(&mut ProxyStats)) {
    f(&mut stats.lock().unwrap_or_else(PoisonError::into_inner));
}

/// Adds what `imp` counted since `last` to `total` and remembers the new counts in `last`.
fn accumulate(total: &mut ImpairmentStats, last: &mut ImpairmentStats, now: ImpairmentStats) {
    total.packets_in += now.packets_in - last.packets_in;
    total.bytes_in += now.bytes_in - last.bytes_in;
    total.packets_out += now.packets_out - last.packets_out;
    total.bytes_out += now.bytes_out - last.bytes_out;
    total.dropped_loss += now.dropped_loss - last.dropped_loss;
    total.dropped_queue += now.dropped_queue - last.dropped_queue;
    total.dropped_overflow += now.dropped_overflow - last.dropped_overflow;
    total.duplicated += now.duplicated - last.duplicated;
    total.reordered += now.reordered - last.reordered;
    *last = now;
}

/// Which direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Up,
    Down,
}

fn step_config(step: &ScheduleStep, dir: Dir) -> crate::impair::LinkConfig {
    match dir {
        Dir::Up => step.up.clone(),
        Dir::Down => step.down.clone(),
    }
}

/// A running proxy. Dropping it (or [`Proxy::shutdown`]) stops every task and closes every
/// socket.
#[derive(Debug)]
pub struct Proxy {
    udp_addrs: Vec<SocketAddr>,
    tcp_addrs: Vec<SocketAddr>,
    started_at: Instant,
    stats: SharedStats,
    tasks: JoinSet<()>,
}

impl Proxy {
    /// Binds every listen address, then starts forwarding. Must run inside a tokio runtime.
    pub async fn start(config: ProxyConfig) -> Result<Proxy, ProxyError> {
        if config.udp.is_empty() && config.tcp.is_empty() {
            return Err(ProxyError::NothingToProxy);
        }
        let mut udp_sockets = Vec::new();
        for map in &config.udp {
            let socket =
                UdpSocket::bind(map.listen).await.map_err(|source| ProxyError::Bind { addr: map.listen, source })?;
            udp_sockets.push((socket, map.upstream));
        }
        let mut tcp_listeners = Vec::new();
        for map in &config.tcp {
            let listener =
                TcpListener::bind(map.listen).await.map_err(|source| ProxyError::Bind { addr: map.listen, source })?;
            tcp_listeners.push((listener, map.upstream));
        }
        let udp_addrs = udp_sockets.iter().filter_map(|(s, _)| s.local_addr().ok()).collect();
        let tcp_addrs = tcp_listeners.iter().filter_map(|(l, _)| l.local_addr().ok()).collect();

        let started_at = Instant::now();
        let schedule = Arc::new(config.schedule.clone());
        let first = Arc::new(schedule.step_at(Duration::ZERO).clone());
        let stats: SharedStats =
            Arc::new(Mutex::new(ProxyStats { current_step: first.label.clone(), ..Default::default() }));
        let (step_tx, step_rx) = watch::channel(first);
        let mut tasks = JoinSet::new();
        tasks.spawn(drive_schedule(schedule, started_at, step_tx, stats.clone()));

        for (i, (socket, upstream)) in udp_sockets.into_iter().enumerate() {
            let link = UdpLink {
                listen: Arc::new(socket),
                upstream,
                steps: step_rx.clone(),
                seed: config.seed.wrapping_add(i as u64 * 2),
                max_flows: config.max_udp_flows.max(1),
                idle: config.udp_flow_idle,
                stats: stats.clone(),
            };
            tasks.spawn(link.run());
        }
        for (i, (listener, upstream)) in tcp_listeners.into_iter().enumerate() {
            let seed = config.seed.wrapping_add(0x1000_0000).wrapping_add(i as u64 * 0x10000);
            tasks.spawn(accept_tcp(
                listener,
                upstream,
                step_rx.clone(),
                seed,
                config.max_tcp_connections,
                stats.clone(),
            ));
        }
        Ok(Proxy { udp_addrs, tcp_addrs, started_at, stats, tasks })
    }

    /// The bound UDP listen addresses, in the order of [`ProxyConfig::udp`].
    pub fn udp_addrs(&self) -> &[SocketAddr] {
        &self.udp_addrs
    }

    /// The bound TCP listen addresses, in the order of [`ProxyConfig::tcp`].
    pub fn tcp_addrs(&self) -> &[SocketAddr] {
        &self.tcp_addrs
    }

    /// When the schedule's clock started.
    pub fn started_at(&self) -> Instant {
        self.started_at
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ProxyStats {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Stops forwarding and closes every socket; returns the final counters.
    pub async fn shutdown(mut self) -> ProxyStats {
        self.tasks.shutdown().await;
        self.stats()
    }
}

/// Publishes each schedule step when its time comes.
async fn drive_schedule(
    schedule: Arc<Schedule>,
    started_at: Instant,
    tx: watch::Sender<Arc<ScheduleStep>>,
    stats: SharedStats,
) {
    while let Some(at) = schedule.next_change(started_at.elapsed()) {
        tokio::time::sleep_until((started_at + at).into()).await;
        let step = schedule.step_at(started_at.elapsed()).clone();
        tracing::info!(at_s = at.as_secs_f64(), step = %step.label, "impairment schedule step");
        with_stats(&stats, |s| s.current_step = step.label.clone());
        tx.send_replace(Arc::new(step));
    }
    // Keep the sender alive so receivers never see the channel close while the proxy runs.
    std::future::pending::<()>().await;
}

/// A client's upstream socket.
struct Flow {
    socket: Arc<UdpSocket>,
    last_active: Instant,
    reader: AbortHandle,
}

/// One UDP listen address and everything that goes through it.
struct UdpLink {
    listen: Arc<UdpSocket>,
    upstream: SocketAddr,
    steps: watch::Receiver<Arc<ScheduleStep>>,
    seed: u64,
    max_flows: usize,
    idle: Duration,
    stats: SharedStats,
}

impl UdpLink {
    async fn run(mut self) {
        let step = self.steps.borrow_and_update().clone();
        let mut up: Impairment<(SocketAddr, Bytes)> = Impairment::new(step.up.clone(), self.seed);
        let mut down: Impairment<(SocketAddr, Bytes)> = Impairment::new(step.down.clone(), self.seed.wrapping_add(1));
        let (mut last_up, mut last_down) = (ImpairmentStats::default(), ImpairmentStats::default());
        let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
        let mut readers = JoinSet::new();
        let (down_tx, mut down_rx) = mpsc::channel::<(SocketAddr, Bytes)>(DOWN_CHANNEL_CAPACITY);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut sweep = tokio::time::interval(Duration::from_secs(1).min(self.idle.max(Duration::from_millis(10))));
        let mut steps_open = true;

        loop {
            let next = up.next_release().into_iter().chain(down.next_release()).min();
            tokio::select! {
                r = self.listen.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        let now = Instant::now();
                        if let Some(flow) = self.flow(&mut flows, &mut readers, from, &down_tx).await {
                            flow.last_active = now;
                            up.on_packet(now, n, PacketClass::Datagram, (from, Bytes::copy_from_slice(&buf[..n])));
                        }
                    }
                    // Linux reports an ICMP error from an earlier send_to here; nothing to do.
                    Err(e) => tracing::debug!(error = %e, "udp listen socket"),
                },
                Some((client, data)) = down_rx.recv() => {
                    let now = Instant::now();
                    if let Some(flow) = flows.get_mut(&client) {
                        flow.last_active = now;
                    }
                    down.on_packet(now, data.len(), PacketClass::Datagram, (client, data));
                }
                _ = sleep_until_opt(next), if next.is_some() => {}
                _ = sweep.tick() => self.expire(&mut flows),
                changed = self.steps.changed(), if steps_open => match changed {
                    Ok(()) => {
                        let step = self.steps.borrow_and_update().clone();
                        up.set_config(step.up.clone());
                        down.set_config(step.down.clone());
                    }
                    Err(_) => steps_open = false,
                },
                Some(_) = readers.join_next(), if !readers.is_empty() => {}
            }
            let now = Instant::now();
            while let Some((client, data)) = up.poll_release(now) {
                if let Some(flow) = flows.get(&client) {
                    if let Err(e) = flow.socket.send(&data).await {
                        tracing::debug!(error = %e, %client, "udp send upstream");
                    }
                }
            }
            while let Some((client, data)) = down.poll_release(now) {
                if let Err(e) = self.listen.send_to(&data, client).await {
                    tracing::debug!(error = %e, %client, "udp send to client");
                }
            }
            with_stats(&self.stats, |s| {
                accumulate(&mut s.udp_up, &mut last_up, up.stats());
                accumulate(&mut s.udp_down, &mut last_down, down.stats());
            });
        }
    }

    /// The flow of `client`, created (evicting the least recently active one if the table is
    /// full) when it is new. `None` if no upstream socket could be opened.
    async fn flow<'a>(
        &self,
        flows: &'a mut HashMap<SocketAddr, Flow>,
        readers: &mut JoinSet<()>,
        client: SocketAddr,
        down_tx: &mpsc::Sender<(SocketAddr, Bytes)>,
    ) -> Option<&'a mut Flow> {
        if !flows.contains_key(&client) {
            if flows.len() >= self.max_flows {
                if let Some(oldest) = flows.iter().min_by_key(|(_, f)| f.last_active).map(|(a, _)| *a) {
                    if let Some(f) = flows.remove(&oldest) {
                        f.reader.abort();
                    }
                    with_stats(&self.stats, |s| s.udp_flows_evicted += 1);
                }
            }
            let socket = match open_upstream_socket(self.upstream).await {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::warn!(error = %e, upstream = %self.upstream, "cannot open an upstream UDP socket");
                    return None;
                }
            };
            let reader = readers.spawn(read_upstream(socket.clone(), client, down_tx.clone(), self.stats.clone()));
            flows.insert(client, Flow { socket, last_active: Instant::now(), reader });
            let active = flows.len();
            with_stats(&self.stats, |s| {
                s.udp_flows_created += 1;
                s.udp_flows_active = active;
            });
        }
        flows.get_mut(&client)
    }

    fn expire(&self, flows: &mut HashMap<SocketAddr, Flow>) {
        let before = flows.len();
        flows.retain(|_, f| {
            let keep = f.last_active.elapsed() < self.idle;
            if !keep {
                f.reader.abort();
            }
            keep
        });
        let (expired, active) = (before - flows.len(), flows.len());
        with_stats(&self.stats, |s| {
            s.udp_flows_expired += expired as u64;
            s.udp_flows_active = active;
        });
    }
}

async fn open_upstream_socket(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let bind: SocketAddr = if upstream.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(upstream).await?;
    Ok(socket)
}

/// Hands what the upstream sends to `client` to the link's main loop.
async fn read_upstream(
    socket: Arc<UdpSocket>,
    client: SocketAddr,
    tx: mpsc::Sender<(SocketAddr, Bytes)>,
    stats: SharedStats,
) {
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => match tx.try_send((client, Bytes::copy_from_slice(&buf[..n]))) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => with_stats(&stats, |s| s.udp_down_overflow += 1),
                Err(mpsc::error::TrySendError::Closed(_)) => return,
            },
            // A connected UDP socket reports ICMP "port unreachable" from the upstream as an
            // error on the next receive; the flow stays usable.
            Err(e) => {
                tracing::debug!(error = %e, %client, "udp receive from upstream");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

async fn accept_tcp(
    listener: TcpListener,
    upstream: SocketAddr,
    steps: watch::Receiver<Arc<ScheduleStep>>,
    seed: u64,
    max_connections: usize,
    stats: SharedStats,
) {
    let mut conns = JoinSet::new();
    let mut n: u64 = 0;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    if conns.len() >= max_connections {
                        tracing::warn!(%peer, "too many TCP connections; refusing");
                        with_stats(&stats, |s| s.tcp_connections_refused += 1);
                        continue;
                    }
                    with_stats(&stats, |s| s.tcp_connections_accepted += 1);
                    n += 1;
                    let conn_seed = seed.wrapping_add(n * 2);
                    conns.spawn(tcp_connection(client, peer, upstream, steps.clone(), conn_seed, stats.clone()));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn tcp_connection(
    client: TcpStream,
    peer: SocketAddr,
    upstream: SocketAddr,
    steps: watch::Receiver<Arc<ScheduleStep>>,
    seed: u64,
    stats: SharedStats,
) {
    let server = match tokio::time::timeout(TCP_CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, %upstream, "cannot connect upstream");
            with_stats(&stats, |s| s.tcp_upstream_failures += 1);
            return;
        }
        Err(_) => {
            tracing::warn!(%upstream, "upstream connect timed out");
            with_stats(&stats, |s| s.tcp_upstream_failures += 1);
            return;
        }
    };
    // Small control messages must not wait for Nagle on top of the configured delay.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_rd, client_wr) = client.into_split();
    let (server_rd, server_wr) = server.into_split();
    let mut pumps = JoinSet::new();
    pumps.spawn(pump(client_rd, server_wr, steps.clone(), Dir::Up, seed, stats.clone()));
    pumps.spawn(pump(server_rd, client_wr, steps, Dir::Down, seed.wrapping_add(1), stats));
    while let Some(done) = pumps.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                // One side broke: tear the whole connection down (dropping the set aborts
                // the other pump and closes its sockets).
                tracing::debug!(error = %e, %peer, "tcp connection closed");
                return;
            }
            Err(_) => return,
        }
    }
}

/// Moves one direction of a TCP connection through an impairment until EOF.
async fn pump(
    mut rd: OwnedReadHalf,
    mut wr: OwnedWriteHalf,
    mut steps: watch::Receiver<Arc<ScheduleStep>>,
    dir: Dir,
    seed: u64,
    stats: SharedStats,
) -> io::Result<()> {
    let mut imp: Impairment<Bytes> = Impairment::new(step_config(&steps.borrow_and_update(), dir), seed);
    let mut last = ImpairmentStats::default();
    let mut buf = vec![0u8; TCP_CHUNK];
    let mut eof = false;
    let mut steps_open = true;
    loop {
        if eof && imp.held_packets() == 0 {
            wr.shutdown().await?;
            return Ok(());
        }
        let next = imp.next_release();
        let can_read = !eof && imp.held_bytes() < TCP_WINDOW_BYTES;
        tokio::select! {
            r = rd.read(&mut buf), if can_read => {
                let n = r?;
                if n == 0 {
                    eof = true;
                } else {
                    imp.on_packet(Instant::now(), n, PacketClass::Stream, Bytes::copy_from_slice(&buf[..n]));
                }
            }
            _ = sleep_until_opt(next), if next.is_some() => {}
            changed = steps.changed(), if steps_open => match changed {
                Ok(()) => imp.set_config(step_config(&steps.borrow_and_update(), dir)),
                Err(_) => steps_open = false,
            },
        }
        while let Some(chunk) = imp.poll_release(Instant::now()) {
            wr.write_all(&chunk).await?;
        }
        with_stats(&stats, |s| {
            let total = match dir {
                Dir::Up => &mut s.tcp_up,
                Dir::Down => &mut s.tcp_down,
            };
            accumulate(total, &mut last, imp.stats());
        });
    }
}
