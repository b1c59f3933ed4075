//! Shared helpers for the session tests: an in-process relay and bots whose events are
//! collected in the background so a test can wait for any of them.
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use client_core::{FrameSource, Session, SessionEvent, SessionOptions, StatsSnapshot, VideoFeed};
use relay_server::{Relay, RelayConfig, RelayHandle};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

pub async fn start_relay() -> RelayHandle {
    Relay::start(RelayConfig::for_tests()).await.expect("relay starts")
}

/// One decoded frame as a bot saw it (pixels only for the newest).
#[derive(Debug, Clone, Copy)]
pub struct SeenFrame {
    pub frame_id: u32,
    pub width: u32,
    pub height: u32,
    pub capture_ts_us: u64,
    pub at: Instant,
}

#[derive(Debug, Default)]
pub struct Log {
    /// Every event but video frames, in order.
    pub events: Vec<SessionEvent>,
    /// Frames per sender.
    pub frames: HashMap<u32, Vec<SeenFrame>>,
    /// The newest frame's pixels per sender.
    pub last_rgba: HashMap<u32, (u32, u32, Bytes)>,
    /// Frames of our own camera seen, and the newest one (width, height, RGB).
    pub local_frames: usize,
    pub last_local: Option<(u32, u32, Bytes)>,
    /// Shared-screen pictures per sharer, each with its PSNR against the synthetic slides at
    /// its capture time (what a sharer of `ScreenChoice::Synthetic` captured).
    pub screens: HashMap<u32, Vec<(SeenFrame, f64)>>,
}

pub struct Bot {
    pub session: Session,
    pub log: Arc<Mutex<Log>>,
    collector: JoinHandle<()>,
    video_collector: JoinHandle<()>,
}

impl Bot {
    pub async fn connect(relay: &str, options: SessionOptions) -> Bot {
        let (session, mut rx) = Session::connect(relay, options).await.expect("connects to the relay");
        let log = Arc::new(Mutex::new(Log::default()));
        let sink = log.clone();
        let collector = tokio::spawn(async move {
            while let Some(ev) = rx.recv().await {
                sink.lock().unwrap().events.push(ev);
            }
        });
        let video_collector = tokio::spawn(collect_video(session.video_feed(), log.clone()));
        Bot { session, log, collector, video_collector }
    }

    /// Index of the next event to be logged, for waiting on events after this point.
    pub fn mark(&self) -> usize {
        self.log.lock().unwrap().events.len()
    }

    /// Waits until an event at index ≥ `from` matches `f`.
    pub async fn wait_from<T>(
        &self,
        from: usize,
        what: &str,
        timeout: Duration,
        mut f: impl FnMut(&SessionEvent) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let log = self.log.lock().unwrap();
                if let Some(t) = log.events.iter().skip(from).find_map(&mut f) {
                    return t;
                }
                if Instant::now() > deadline {
                    let kinds: Vec<String> = log.events.iter().skip(from).map(short).collect();
                    panic!("timed out after {timeout:?} waiting for {what}; events seen: {kinds:?}");
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for a matching event anywhere in the log.
    pub async fn wait<T>(&self, what: &str, timeout: Duration, f: impl FnMut(&SessionEvent) -> Option<T>) -> T {
        self.wait_from(0, what, timeout, f).await
    }

    /// The first stats snapshot taken after `after_ms` (its `timestamp_ms`); they come once a
    /// second.
    pub async fn stats_after(&self, after_ms: u64) -> StatsSnapshot {
        self.wait("a stats snapshot", LONG, |e| match e {
            SessionEvent::Stats(s) if s.timestamp_ms > after_ms => Some((**s).clone()),
            _ => None,
        })
        .await
    }

    /// The first `N` stats snapshots taken after `after_ms`, in order: about `N` seconds of the
    /// session's own stats intervals.
    pub async fn stats_run_after<const N: usize>(&self, after_ms: u64) -> [StatsSnapshot; N] {
        let mut run = Vec::with_capacity(N);
        let mut after = after_ms;
        for _ in 0..N {
            let next = self.stats_after(after).await;
            after = next.timestamp_ms;
            run.push(next);
        }
        run.try_into().unwrap_or_else(|_| unreachable!("exactly N snapshots"))
    }

    /// The first stats snapshot logged at index ≥ `from` (a [`Self::mark`] taken before the
    /// change it should show) for which `f` holds. Searching from the start instead would find
    /// snapshots of before the change: the first seconds of a session look like a camera that
    /// is off or a source that is gone.
    pub async fn first_stats(&self, from: usize, what: &str, f: impl Fn(&StatsSnapshot) -> bool) -> StatsSnapshot {
        self.wait_from(from, what, LONG, |e| match e {
            SessionEvent::Stats(s) if f(s) => Some((**s).clone()),
            _ => None,
        })
        .await
    }

    /// The first stats snapshot logged after this call.
    pub async fn next_stats(&self) -> StatsSnapshot {
        self.nth_stats(self.mark(), 1).await
    }

    /// The `n`-th stats snapshot (counting from 1) logged at index ≥ `from`: a wait of about
    /// `n` seconds measured in the session's own stats intervals.
    pub async fn nth_stats(&self, from: usize, n: usize) -> StatsSnapshot {
        let mut found = None;
        self.wait_until(&format!("stats snapshot #{n}"), LONG + Duration::from_secs(n as u64), |log| {
            found = log
                .events
                .iter()
                .skip(from)
                .filter_map(|e| match e {
                    SessionEvent::Stats(s) => Some(s),
                    _ => None,
                })
                .nth(n.saturating_sub(1))
                .map(|s| (**s).clone());
            found.is_some()
        })
        .await;
        found.expect("wait_until returned")
    }

    /// Waits until `f` holds for the log.
    pub async fn wait_until(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Log) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if f(&self.log.lock().unwrap()) {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn events(&self) -> Vec<SessionEvent> {
        self.log.lock().unwrap().events.clone()
    }

    pub async fn close(self) {
        self.session.close().await;
        self.collector.abort();
        self.video_collector.abort();
    }
}

/// Logs every frame the feed offers, as a consumer that keeps up would see them.
async fn collect_video(mut feed: VideoFeed, sink: Arc<Mutex<Log>>) {
    let mut slides = client_core::media::SyntheticSlides::new();
    let mut expected = client_core::media::RgbFrame::default();
    let mut scaler = client_core::media::VideoEncoder::new();
    while feed.changed().await {
        let frames = feed.take_new();
        let at = Instant::now();
        let mut log = sink.lock().unwrap();
        for f in frames {
            match f.source {
                FrameSource::Screen(id) => {
                    // What the sharer captured, scaled as it scaled it to its ladder's level.
                    slides.render(f.capture_ts_us, &mut expected);
                    let psnr = match scaler.scale_to_fit(&expected, f.width as u16, f.height as u16) {
                        Ok((w, h, pixels)) if (u32::from(w), u32::from(h)) == (f.width, f.height) => {
                            client_core::media::psnr_rgb_rgba(pixels, &f.pixels)
                        }
                        _ => 0.0,
                    };
                    let seen = SeenFrame {
                        frame_id: f.frame_id,
                        width: f.width,
                        height: f.height,
                        capture_ts_us: f.capture_ts_us,
                        at,
                    };
                    log.screens.entry(id).or_default().push((seen, psnr));
                }
                FrameSource::Remote(id) => {
                    let seen = SeenFrame {
                        frame_id: f.frame_id,
                        width: f.width,
                        height: f.height,
                        capture_ts_us: f.capture_ts_us,
                        at,
                    };
                    log.frames.entry(id).or_default().push(seen);
                    log.last_rgba.insert(id, (f.width, f.height, f.pixels));
                }
                FrameSource::Local => {
                    log.local_frames += 1;
                    log.last_local = Some((f.width, f.height, f.pixels));
                }
            }
        }
    }
}

/// A one-line description of an event for failure messages.
pub fn short(ev: &SessionEvent) -> String {
    match ev {
        SessionEvent::Stats(_) => "Stats".into(),
        SessionEvent::AudioLevel { .. } => "AudioLevel".into(),
        other => {
            let s = format!("{other:?}");
            s.chars().take(160).collect()
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift), so a wrong byte anywhere changes the hash.
pub fn test_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Options for a bot that sends no media (waiting-room and file tests).
pub fn quiet() -> SessionOptions {
    SessionOptions {
        video: client_core::VideoChoice::None,
        audio: client_core::AudioChoice::None,
        ..Default::default()
    }
}

pub const LONG: Duration = Duration::from_secs(20);

/// The progress reported among `events` for the transfer of `file_id` (an upload if
/// `upload`), in order: (bytes, resumed_from).
pub fn transfer_progress(events: &[SessionEvent], file_id: u64, upload: bool) -> Vec<(u64, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::FileProgress(p) if p.file_id == file_id && p.upload_id.is_some() == upload => {
                Some((p.bytes, p.resumed_from))
            }
            _ => None,
        })
        .collect()
}

/// Waits until `bot`'s upload `upload_id` is done and returns its file id; panics if it failed.
pub async fn upload_done(bot: &Bot, upload_id: u64, timeout: Duration) -> u64 {
    bot.wait("the upload", timeout, |e| match e {
        SessionEvent::FileDone { upload_id: Some(id), file_id, .. } if *id == upload_id => Some(*file_id),
        SessionEvent::FileFailed { upload_id: Some(id), reason, .. } if *id == upload_id => {
            panic!("the upload failed: {reason}")
        }
        _ => None,
    })
    .await
}

/// Polls `done` until it holds, for state outside the bots' logs (the relay's counters, which
/// it publishes per receive batch).
pub async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Creates a meeting with `host` and returns (code, host participant id).
pub async fn create(host: &Bot, name: &str) -> (String, u32) {
    host.session.create_meeting(name).await.unwrap();
    host.wait("Joined", LONG, |e| match e {
        SessionEvent::Joined { welcome } => Some((welcome.code.clone(), welcome.participant_id)),
        _ => None,
    })
    .await
}

/// Has `guest` knock and `host` admit it; returns the guest's participant id.
pub async fn admit(host: &Bot, guest: &Bot, code: &str, name: &str) -> u32 {
    let mark = host.mark();
    guest.session.join(code, name).await.unwrap();
    let name = name.to_string();
    let request = host
        .wait_from(mark, "Knock", LONG, |e| match e {
            SessionEvent::Knock { request_id, display_name, .. } if *display_name == name => Some(*request_id),
            _ => None,
        })
        .await;
    host.session.admit(request).await.unwrap();
    guest
        .wait("Joined", LONG, |e| match e {
            SessionEvent::Joined { welcome } => Some(welcome.participant_id),
            _ => None,
        })
        .await
}

/// The loopback address servers bind to in tests.
pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// A second loopback address, for taps that must sit on the relay's own UDP port.
pub const TAP_ADDR: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// Bytes a tap records at most; beyond, it still forwards but stops recording.
const TAP_RECORD_LIMIT: usize = 256 << 20;

/// A TCP forwarder on `listen` (any port) to `upstream` that records every byte in both
/// directions.
pub async fn tcp_tap(listen: IpAddr, upstream: SocketAddr) -> (SocketAddr, Arc<Mutex<Vec<u8>>>) {
    let listener = TcpListener::bind((listen, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let Ok(server) = TcpStream::connect(upstream).await else { return };
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::spawn(pipe(cr, sw, record.clone()));
            tokio::spawn(pipe(sr, cw, record.clone()));
        }
    });
    (addr, seen)
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    seen: Arc<Mutex<Vec<u8>>>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let mut seen = seen.lock().unwrap();
        if seen.len() < TAP_RECORD_LIMIT {
            seen.extend_from_slice(&buf[..n]);
        }
    }
    let _ = to.shutdown().await;
}

/// One datagram a UDP tap carried.
#[derive(Debug, Clone)]
pub struct Tapped {
    /// True for client → relay.
    pub to_relay: bool,
    /// The client's address.
    pub client: SocketAddr,
    pub bytes: Vec<u8>,
}

/// A UDP forwarder on `TAP_ADDR` at the relay's own UDP port (a client reaches it by
/// connecting its control connection to `TAP_ADDR`), to `upstream`, recording every datagram
/// both ways. Each client gets its own upstream socket, so the relay sees one peer per client.
pub async fn udp_tap(upstream: SocketAddr) -> Arc<Mutex<Vec<Tapped>>> {
    let seen: Arc<Mutex<Vec<Tapped>>> = Arc::default();
    let record = seen.clone();
    udp_forwarder(upstream, move |to_relay, client, bytes| {
        keep(&record, Tapped { to_relay, client, bytes: bytes.to_vec() });
        true
    })
    .await;
    seen
}

/// A UDP forwarder on `TAP_ADDR` at `upstream`'s port, one upstream socket per client.
/// `pass(to_relay, client, datagram)` sees every datagram and says whether it goes through.
async fn udp_forwarder(upstream: SocketAddr, pass: impl Fn(bool, SocketAddr, &[u8]) -> bool + Send + Sync + 'static) {
    let listen = Arc::new(UdpSocket::bind((TAP_ADDR, upstream.port())).await.expect("forwarder binds 127.0.0.2"));
    let pass = Arc::new(pass);
    tokio::spawn(async move {
        let mut flows: HashMap<SocketAddr, Arc<UdpSocket>> = HashMap::new();
        let mut buf = vec![0u8; 2048];
        while let Ok((n, client)) = listen.recv_from(&mut buf).await {
            let flow = match flows.get(&client) {
                Some(flow) => flow.clone(),
                None => {
                    let up = Arc::new(UdpSocket::bind((LOOPBACK, 0)).await.unwrap());
                    up.connect(upstream).await.unwrap();
                    let (down, listen, pass) = (up.clone(), listen.clone(), pass.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 2048];
                        loop {
                            let n = match down.recv(&mut buf).await {
                                Ok(n) => n,
                                // The relay's port was closed for a while (a restart).
                                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => continue,
                                Err(_) => break,
                            };
                            if pass(false, client, &buf[..n]) {
                                let _ = listen.send_to(&buf[..n], client).await;
                            }
                        }
                    });
                    flows.insert(client, up.clone());
                    up
                }
            };
            if pass(true, client, &buf[..n]) {
                let _ = flow.send(&buf[..n]).await;
            }
        }
    });
}

fn keep(record: &Mutex<Vec<Tapped>>, datagram: Tapped) {
    let mut seen = record.lock().unwrap();
    if seen.len() < TAP_RECORD_LIMIT / 1200 {
        seen.push(datagram);
    }
}

/// A participant's network path to a relay that a test can black-hole: a TCP forwarder on
/// `TAP_ADDR` (any port) and a UDP forwarder on `TAP_ADDR` at the relay's UDP port. While
/// black-holed, datagrams both ways vanish and TCP bytes are held, not delivered (as a dead
/// link does to TCP, which retransmits until it comes back); new connections are accepted but
/// carry nothing. Restoring delivers what TCP held and lets datagrams through again.
pub struct Path {
    /// What the participant connects to (`HOST:PORT`).
    pub addr: String,
    blocked: tokio::sync::watch::Sender<bool>,
    /// Fraction of the relay's datagrams to the participant that are lost, in millionths.
    downlink_loss: Arc<std::sync::atomic::AtomicU64>,
}

impl Path {
    pub async fn start(relay: &RelayHandle) -> Path {
        Self::start_limited(relay, None).await
    }

    /// A path whose TCP carries at most `bytes_per_second` each way (if given), so a transfer
    /// over it takes long enough to be cut in the middle.
    pub async fn start_limited(relay: &RelayHandle, bytes_per_second: Option<u64>) -> Path {
        Self::start_with(relay, bytes_per_second, 0.0).await
    }

    /// A path that also loses `downlink_loss` (0..=1) of the datagrams from the relay to the
    /// participant, at random (a fixed seed: every run loses the same ones).
    pub async fn start_lossy(relay: &RelayHandle, downlink_loss: f64) -> Path {
        Self::start_with(relay, None, downlink_loss).await
    }

    async fn start_with(relay: &RelayHandle, bytes_per_second: Option<u64>, downlink_loss: f64) -> Path {
        let (blocked, watch) = tokio::sync::watch::channel(false);
        let listener = TcpListener::bind((TAP_ADDR, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let upstream = relay.tcp_addr();
        let tcp_watch = watch.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                // A relay that is down (restarting) refuses: so does the path, and it goes on.
                let Ok(server) = TcpStream::connect(upstream).await else { continue };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(held_pipe(cr, sw, tcp_watch.clone(), bytes_per_second));
                tokio::spawn(held_pipe(sr, cw, tcp_watch.clone(), bytes_per_second));
            }
        });
        let rng = std::sync::atomic::AtomicU64::new(0x5eed_1234_abcd_0001);
        let loss = Arc::new(std::sync::atomic::AtomicU64::new((downlink_loss * 1e6) as u64));
        let path_loss = loss.clone();
        let lose = move || {
            let p = path_loss.load(std::sync::atomic::Ordering::Relaxed);
            let mut x = rng.load(std::sync::atomic::Ordering::Relaxed);
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            rng.store(x, std::sync::atomic::Ordering::Relaxed);
            p > 0 && (x >> 11) % 1_000_000 < p
        };
        udp_forwarder(relay.udp_addr(), move |up, _, _| !*watch.borrow() && (up || !lose())).await;
        Path { addr, blocked, downlink_loss: loss }
    }

    /// Nothing gets through from now on.
    pub fn black_hole(&self) {
        self.blocked.send_replace(true);
    }

    /// Everything gets through again.
    pub fn restore(&self) {
        self.blocked.send_replace(false);
    }

    /// Loses `loss` (0..=1) of the datagrams to the participant from now on.
    pub fn set_downlink_loss(&self, loss: f64) {
        self.downlink_loss.store((loss.clamp(0.0, 1.0) * 1e6) as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Copies `from` to `to`, holding each read (and the end of the stream) while the path is
/// black-holed, at most `bytes_per_second` if given.
async fn held_pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut blocked: tokio::sync::watch::Receiver<bool>,
    bytes_per_second: Option<u64>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    while let Ok(n) = from.read(&mut buf).await {
        if blocked.wait_for(|b| !*b).await.is_err() || n == 0 || to.write_all(&buf[..n]).await.is_err() {
            break;
        }
        if let Some(rate) = bytes_per_second {
            // The link's serialization time for what it just carried.
            tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
        }
    }
    let _ = to.shutdown().await;
}
