//! The media engine of one meeting: the network task and the threads around it.
//!
//! ```text
//!  video capture thread ──JPEG fragments──▶ UDP ──▶ relay
//!  audio capture thread ──20 ms PCM───────▶ UDP ──▶ relay
//!  screen share thread ───slice fragments──▶ UDP ──▶ relay
//!  relay ──▶ UDP ──▶ network task ──complete JPEG──▶ decode worker ──▶ latest-frame slots
//!                         ├──screen slices──▶ decode worker (composer) ──▶ screen slots
//!                         └──PCM──▶ jitter buffers ◀── playout thread (mix → sink, WAV)
//! ```
//!
//! The **network task** (tokio) owns the UDP socket and the clock, and nothing else: every
//! per-sender receive state (frame assemblers, loss and jitter estimators), the keepalives,
//! RTT echoes, receiver reports, quality adaptation, redundancy and the once-a-second
//! [`crate::stats::StatsSnapshot`] live in the sans-IO [`ReceiveCore`], which the task feeds
//! with datagrams and timeouts and drains. It never decodes anything itself: complete frames
//! are handed to the decode worker, which only ever keeps the newest pending frame per sender.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use protocol::assembler::AssembledFrame;
use protocol::control::StatsReport;
use protocol::e2ee::{MediaOpener, MediaSealer, MeetingKey};
use protocol::hop::{HopReceiver, HopSecret, HopSender};
use protocol::jitter::JitterBuffer;
use protocol::media::MAX_DATAGRAM_LEN;
use protocol::quality::{QualityConfig, QualitySetting, LADDER};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::events::{EventSender, SessionEvent};
use super::frames::FrameSource;
use super::options::SessionOptions;
use super::receive::{
    AudioOutTotals, DecodedTotals, LocalReadings, ReceiveConfig, ReceiveCore, ReceiveEvent, ScreenOutTotals,
    VideoOutTotals,
};
use super::screen::{LostTiles, RefreshQueue, SliceJob};
use super::SessionShared;
use crate::media::{now_us, render_reference, LoopbackSlot, VoiceSettings, VoiceStats};
use crate::net::udp;
use crate::stats::{JsonLinesWriter, LatencyHistogram};

pub(crate) use super::receive::MAX_REMOTES;

/// Messages from the engine to the control task.
#[derive(Debug)]
pub(crate) enum Internal {
    /// Our speaking state changed (drives `MEDIA_STATE`).
    Speaking(bool),
    /// A periodic `STATS_REPORT` for the relay.
    Report(StatsReport),
    /// Nothing authentic from the relay for a few seconds: the path broke (reconnect).
    RelaySilent,
    /// The screen share stopped by itself (the capture failed, the window closed): why.
    ScreenShareEnded(String),
}

/// What the control task asks of the network task.
#[derive(Debug)]
enum NetCommand {
    /// A participant left: forget them.
    Forget(u32),
    /// The seat resumed on a new control connection: its keys, and the relay's UDP address
    /// it announced.
    Rekey { hop: HopSecret, udp_addr: SocketAddr },
    /// A participant stopped sharing its screen.
    ScreenStopped(u32),
}

/// What the engine needs to start.
pub(crate) struct EngineParams {
    pub my_id: u32,
    /// The keys of our datagrams, from the control connection's TLS session.
    pub hop: HopSecret,
    /// The meeting's end-to-end media key, if we could get it.
    pub media_key: Option<MeetingKey>,
    pub udp_addr: SocketAddr,
    pub options: SessionOptions,
    pub events: EventSender,
    pub shared: Arc<SessionShared>,
    pub internal: mpsc::Sender<Internal>,
}

/// Counters of the outgoing video stream, written by the capture thread.
#[derive(Debug, Default)]
pub(crate) struct VideoOutCounters {
    pub active: AtomicBool,
    pub frames: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub last_frame_bytes: AtomicU64,
    /// width << 16 | height of the last frame.
    pub last_dims: AtomicU32,
    pub encode_us: AtomicU64,
    pub send_errors: AtomicU64,
    pub source: Mutex<String>,
}

/// Counters of the outgoing screen stream, written by the share thread.
#[derive(Debug, Default)]
pub(crate) struct ScreenOutCounters {
    pub active: AtomicBool,
    pub updates: AtomicU64,
    pub slices: AtomicU64,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub send_errors: AtomicU64,
    pub encode_us: AtomicU64,
    pub tiles_compared: AtomicU64,
    pub tiles_changed: AtomicU64,
    /// width << 16 | height of the last update.
    pub last_dims: AtomicU32,
    pub source: Mutex<String>,
}

impl ScreenOutCounters {
    /// One update went out.
    pub(crate) fn record_update(
        &self,
        plan: &protocol::screen::UpdatePlan,
        slices: u64,
        packets: u64,
        bytes: u64,
        errors: u64,
    ) {
        self.updates.fetch_add(1, Ordering::Relaxed);
        self.slices.fetch_add(slices, Ordering::Relaxed);
        self.packets.fetch_add(packets, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.send_errors.fetch_add(errors, Ordering::Relaxed);
        self.record_capture(plan.grid.tile_count(), plan.changed);
        self.last_dims.store(plan.grid.width << 16 | plan.grid.height, Ordering::Relaxed);
    }

    /// A capture of `tiles` tiles found `changed` of them changed (whether it sent anything).
    pub(crate) fn record_capture(&self, tiles: u32, changed: u32) {
        self.tiles_compared.fetch_add(u64::from(tiles), Ordering::Relaxed);
        self.tiles_changed.fetch_add(u64::from(changed), Ordering::Relaxed);
    }
}

/// Counters of the outgoing audio stream, written by the capture thread.
#[derive(Debug, Default)]
pub(crate) struct AudioOutCounters {
    pub active: AtomicBool,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub level_dbfs_bits: AtomicU32,
    pub speaking: AtomicBool,
    pub source: Mutex<String>,
    /// How many earlier frames packets carry copies of, 0 to 4 (set by the network task from
    /// receivers' reports, read by the capture thread).
    pub redundancy_depth: AtomicUsize,
    /// The voice processing's stages and estimates, refreshed by the capture thread.
    pub voice: Mutex<(VoiceSettings, VoiceStats)>,
}

/// What the decode worker knows about one sender.
#[derive(Debug, Default)]
pub(crate) struct DecodedCounters {
    pub frames: u64,
    pub skipped: u64,
    pub errors: u64,
    pub last_width: u32,
    pub last_height: u32,
    pub latency: LatencyHistogram,
    /// Screen slices that did not decode, and the capture-to-display latency of updates.
    pub screen_errors: u64,
    pub screen_latency: LatencyHistogram,
}

/// Screen slices (and their bytes) waiting for the composer at most; more are dropped and
/// their tiles reported lost, so the receive core asks for them again.
const MAX_PENDING_SLICES: usize = 1024;
const MAX_PENDING_SLICE_BYTES: usize = 32 << 20;

/// Frames waiting for the decode worker: at most one camera frame per sender, the newest,
/// and every screen slice in order (each holds different tiles).
#[derive(Debug, Default)]
pub(crate) struct DecodeState {
    pub pending: BTreeMap<u32, AssembledFrame>,
    pub screen_pending: VecDeque<(u32, Box<SliceJob>)>,
    pub screen_pending_bytes: usize,
    /// Sharers whose canvas the composer should drop.
    pub screen_forget: Vec<u32>,
    pub screen_dropped: u64,
    pub senders: BTreeMap<u32, DecodedCounters>,
    pub closed: bool,
}

impl DecodeState {
    /// Whether the decode worker has anything to do.
    pub(crate) fn has_work(&self) -> bool {
        !self.pending.is_empty() || !self.screen_pending.is_empty() || !self.screen_forget.is_empty()
    }
}

/// State shared by the network task and the engine's threads.
#[derive(Debug)]
pub(crate) struct EngineShared {
    pub running: AtomicBool,
    pub my_id: u32,
    /// Seals every datagram we send: the capture threads' media and the network task's
    /// keepalives, RTT echoes and reports draw their numbers from its one counter.
    pub hop_out: Arc<HopSender>,
    /// Seals our video frames and audio end to end (one counter for both).
    pub sealer: Mutex<MediaSealer>,
    pub setting: Mutex<QualitySetting>,
    pub session: Arc<SessionShared>,
    pub video_out: VideoOutCounters,
    pub audio_out: AudioOutCounters,
    pub screen_out: ScreenOutCounters,
    /// The screen ladder's setting, for the share thread.
    pub screen_setting: Mutex<QualitySetting>,
    /// Tiles receivers asked for, for the share thread.
    pub screen_requests: Mutex<RefreshQueue>,
    /// Loss reported on our screen stream, thousandths (the share thread's slice size).
    pub screen_loss_permille: AtomicU32,
    /// Received screen tiles that could not be drawn, for the receive core.
    pub screen_lost: Mutex<LostTiles>,
    pub jitter: Mutex<BTreeMap<u32, JitterBuffer>>,
    /// Latest level and speaking flag per remote participant, from the playout thread.
    pub remote_levels: Mutex<BTreeMap<u32, (f32, bool)>>,
    pub decode: Mutex<DecodeState>,
    pub decode_ready: Condvar,
    /// What the playout thread plays, for an echo loopback source (`AudioChoice::EchoLoopback`).
    pub echo_loopback: LoopbackSlot,
}

impl EngineShared {
    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    /// Seals `plain` end to end into `out`. False (logged at debug level) if there is no
    /// meeting key: then nothing is sent rather than anything in clear.
    pub(crate) fn seal(&self, aad: &[u8], plain: &[u8], out: &mut Vec<u8>) -> bool {
        let mut sealer = match self.sealer.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        match sealer.seal(aad, plain, out) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!("media not sent: {e}");
                false
            }
        }
    }

    pub(crate) fn setting(&self) -> QualitySetting {
        match self.setting.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub(crate) fn screen_setting(&self) -> QualitySetting {
        match self.screen_setting.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Hands a screen slice to the composer (every one, in order, within a bound).
    fn submit_slice(&self, sender: u32, job: Box<SliceJob>) {
        let Ok(mut d) = self.decode.lock() else { return };
        if !d.senders.contains_key(&sender) && d.senders.len() >= MAX_REMOTES {
            return;
        }
        d.senders.entry(sender).or_default();
        if d.screen_pending.len() >= MAX_PENDING_SLICES
            || d.screen_pending_bytes + job.jpeg.len() > MAX_PENDING_SLICE_BYTES
        {
            d.screen_dropped += 1;
            drop(d);
            self.screen_tiles_lost(sender, &job.tiles);
            return;
        }
        d.screen_pending_bytes += job.jpeg.len();
        d.screen_pending.push_back((sender, job));
        drop(d);
        self.decode_ready.notify_one();
    }

    /// Tiles of `sender`'s screen that arrived but will not be drawn.
    pub(crate) fn screen_tiles_lost(&self, sender: u32, tiles: &[u32]) {
        if let Ok(mut lost) = self.screen_lost.lock() {
            lost.add(sender, tiles);
        }
    }

    /// The composer drops `sender`'s canvas and the UI its screen.
    fn forget_screen(&self, sender: u32) {
        if let Ok(mut d) = self.decode.lock() {
            d.screen_pending.retain(|(s, _)| *s != sender);
            d.screen_forget.push(sender);
        }
        self.decode_ready.notify_one();
        self.session.video.forget(FrameSource::Screen(sender));
    }

    fn close_decoder(&self) {
        if let Ok(mut d) = self.decode.lock() {
            d.closed = true;
        }
        self.decode_ready.notify_all();
    }

    /// Hands a complete frame to the decode worker, replacing a stale one still pending.
    fn submit_frame(&self, sender: u32, frame: AssembledFrame) {
        let Ok(mut d) = self.decode.lock() else { return };
        if !d.senders.contains_key(&sender) && d.senders.len() >= MAX_REMOTES {
            return;
        }
        if d.pending.insert(sender, frame).is_some() {
            d.senders.entry(sender).or_default().skipped += 1;
        } else {
            d.senders.entry(sender).or_default();
        }
        drop(d);
        self.decode_ready.notify_one();
    }
}

/// A running media engine. Dropping it stops the threads without waiting for them;
/// [`Engine::stop`] waits.
pub(crate) struct Engine {
    shared: Arc<EngineShared>,
    net: JoinHandle<()>,
    /// Participants who left and new keys, for the network task.
    net_cmd: mpsc::Sender<NetCommand>,
    /// The newest meeting key, for the network task's opener (only the newest matters).
    media_key: watch::Sender<Option<MeetingKey>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Engine {
    /// Opens the UDP socket and starts the network task and the threads.
    pub(crate) fn start(params: EngineParams) -> std::io::Result<Engine> {
        let EngineParams { my_id, hop, media_key, udp_addr, options, events, shared: session, internal } = params;
        let (socket, sender) = udp::open(udp_addr)?;
        let mut config = QualityConfig::default();
        if let Some(level) = options.start_level {
            config.start_level = level.min(LADDER.len() - 1);
        }
        let hop_out = Arc::new(HopSender::new(hop.to_relay()));
        let hop_in = HopReceiver::new(hop.from_relay());
        let mut opener = MediaOpener::new();
        let mut sealer = MediaSealer::new(my_id);
        if let Some(key) = media_key {
            if let Err(e) = sealer.set_key(&key) {
                events.error(format!("cannot use the meeting key: {e}"));
            }
            opener.install(key);
        }
        let core = ReceiveCore::new(
            ReceiveConfig { my_id, hop_out: hop_out.clone(), hop_in, quality: config, opener },
            Instant::now(),
        );
        // What the playout thread plays goes to the capture thread twice: as the echo
        // canceller's far-end reference, and for an echo loopback source.
        let (render_feed, render_queue) = render_reference();
        let (loopback_feed, loopback_queue) = render_reference();
        let shared = Arc::new(EngineShared {
            running: AtomicBool::new(true),
            my_id,
            hop_out,
            sealer: Mutex::new(sealer),
            setting: Mutex::new(core.setting()),
            session,
            video_out: VideoOutCounters::default(),
            audio_out: AudioOutCounters::default(),
            screen_out: ScreenOutCounters::default(),
            screen_setting: Mutex::new(core.screen_setting()),
            screen_requests: Mutex::new(RefreshQueue::default()),
            screen_loss_permille: AtomicU32::new(0),
            screen_lost: Mutex::new(LostTiles::default()),
            jitter: Mutex::new(BTreeMap::new()),
            remote_levels: Mutex::new(BTreeMap::new()),
            decode: Mutex::new(DecodeState::default()),
            decode_ready: Condvar::new(),
            echo_loopback: Arc::new(Mutex::new(Some(loopback_queue))),
        });
        let mut engine_threads = Vec::new();
        let spawn =
            |name: &str, f: Box<dyn FnOnce() + Send>| std::thread::Builder::new().name(name.to_string()).spawn(f);
        // Any failure below drops `shared`'s running flag through this guard.
        let stop_on_error = StopGuard(shared.clone());
        // Capture threads run even for a `None` choice (idle), so a device can be switched on.
        {
            let (s, e, sock) = (shared.clone(), events.clone(), sender.try_clone()?);
            let capture =
                super::video::CaptureOptions { choice: options.video.clone(), local_video: options.local_video };
            engine_threads
                .push(spawn("parlor-video-tx", Box::new(move || super::video::capture_thread(s, e, capture, sock)))?);
        }
        {
            let (s, e, sock, i) = (shared.clone(), events.clone(), sender.try_clone()?, internal.clone());
            let capture = super::audio::AudioCapture {
                choice: options.audio.clone(),
                voice: options.voice,
                far_end: render_queue,
            };
            engine_threads.push(spawn(
                "parlor-audio-tx",
                Box::new(move || super::audio::capture_thread(s, e, capture, sock, i)),
            )?);
        }
        {
            let (s, e) = (shared.clone(), events.clone());
            let playout = super::audio::Playout {
                sink: options.sink.clone(),
                record: options.record_audio.clone(),
                far_end: render_feed,
                loopback: loopback_feed,
            };
            engine_threads
                .push(spawn("parlor-playout", Box::new(move || super::audio::playout_thread(s, e, playout)))?);
        }
        {
            let (s, sock, i) = (shared.clone(), sender.try_clone()?, internal.clone());
            engine_threads.push(spawn("parlor-screen-tx", Box::new(move || super::screen::share_thread(s, sock, i)))?);
        }
        {
            let s = shared.clone();
            engine_threads.push(spawn("parlor-video-rx", Box::new(move || super::video::decode_thread(s)))?);
        }
        std::mem::forget(stop_on_error);

        let stats_writer = match &options.stats_path {
            None => None,
            Some(path) => match JsonLinesWriter::create(path) {
                Ok(w) => Some(w),
                Err(e) => {
                    events.error(format!("cannot write stats to {}: {e}", path.display()));
                    None
                }
            },
        };
        let (net_cmd, net_rx) = mpsc::channel(64);
        let (media_key, key_rx) = watch::channel(None);
        let task = NetTask { socket, core, shared: shared.clone(), events, internal, stats_writer };
        let net = tokio::spawn(task.run(net_rx, key_rx));
        Ok(Engine { shared, net, net_cmd, media_key, threads: engine_threads })
    }

    /// Forgets everything about a participant who left.
    pub(crate) fn participant_left(&self, id: u32) {
        let _ = self.net_cmd.try_send(NetCommand::Forget(id));
    }

    /// A participant stopped sharing its screen: its canvas and its screen slot go.
    pub(crate) fn screen_stopped(&self, id: u32) {
        let _ = self.net_cmd.try_send(NetCommand::ScreenStopped(id));
    }

    /// The seat resumed on a new control connection (after a broken path or a relay restart):
    /// datagrams go to `udp_addr` under that connection's keys from now on.
    pub(crate) async fn rekey(&self, hop: HopSecret, udp_addr: SocketAddr) {
        let _ = self.net_cmd.send(NetCommand::Rekey { hop, udp_addr }).await;
    }

    /// Seals and opens media with `key` from now on (a rotation).
    pub(crate) fn install_media_key(&self, key: MeetingKey) -> Result<(), protocol::e2ee::E2eeError> {
        match self.shared.sealer.lock() {
            Ok(mut s) => s.set_key(&key)?,
            Err(p) => p.into_inner().set_key(&key)?,
        }
        self.media_key.send_replace(Some(key));
        Ok(())
    }

    /// Stops the network task and every thread, and waits for the threads (the playout
    /// thread finishes the WAV recording).
    pub(crate) async fn stop(mut self) {
        self.shared.running.store(false, Ordering::Relaxed);
        self.shared.close_decoder();
        self.shared.session.video.clear();
        self.net.abort();
        let threads = std::mem::take(&mut self.threads);
        let _ = tokio::task::spawn_blocking(move || {
            for t in threads {
                let _ = t.join();
            }
        })
        .await;
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.shared.running.store(false, Ordering::Relaxed);
        self.shared.close_decoder();
        self.shared.session.video.clear();
        self.net.abort();
    }
}

/// Stops the threads already started if starting the engine fails half-way.
struct StopGuard(Arc<EngineShared>);

impl Drop for StopGuard {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Relaxed);
        self.0.close_decoder();
    }
}

/// The I/O driver of the [`ReceiveCore`]: owns the UDP socket and the clock, feeds the core
/// every datagram and timeout, sends what it asks for and hands its events to the threads
/// (frames to the decode worker, audio to the jitter buffers, stats to the writer, the UI and
/// the control task).
struct NetTask {
    socket: tokio::net::UdpSocket,
    core: ReceiveCore,
    shared: Arc<EngineShared>,
    events: EventSender,
    internal: mpsc::Sender<Internal>,
    stats_writer: Option<JsonLinesWriter>,
}

impl NetTask {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<NetCommand>,
        mut media_key: watch::Receiver<Option<MeetingKey>>,
    ) {
        // One byte more than the limit, so the core sees (and counts) an oversized datagram
        // rather than a truncated one.
        let mut buf = vec![0u8; MAX_DATAGRAM_LEN + 1];
        let timer = tokio::time::sleep_until(self.core.next_deadline().into());
        tokio::pin!(timer);
        loop {
            self.flush().await;
            let deadline = tokio::time::Instant::from_std(self.core.next_deadline());
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            tokio::select! {
                r = self.socket.recv(&mut buf) => match r {
                    Ok(n) => {
                        if let Some(datagram) = buf.get(..n) {
                            self.core.handle_datagram(Instant::now(), now_us(), datagram);
                        }
                    }
                    // ICMP port unreachable surfaces as ECONNREFUSED on a connected socket
                    // (relay restarting); keep listening.
                    Err(e) => {
                        tracing::debug!("udp receive: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                () = &mut timer => {
                    let lost = self.shared.screen_lost.lock().map(|mut l| l.take()).unwrap_or_default();
                    for (sender, tiles) in lost {
                        self.core.screen_tiles_lost(Instant::now(), sender, &tiles);
                    }
                    let shared = &self.shared;
                    self.core.handle_timeout(Instant::now(), now_us(), || local_readings(shared));
                }
                Some(command) = commands.recv() => match command {
                    NetCommand::Forget(id) => self.forget(id),
                    NetCommand::Rekey { hop, udp_addr } => self.rekey(&hop, udp_addr).await,
                    NetCommand::ScreenStopped(id) => {
                        self.core.screen_stopped(id);
                        self.shared.forget_screen(id);
                    }
                },
                Ok(()) = media_key.changed() => {
                    if let Some(key) = media_key.borrow_and_update().clone() {
                        self.core.install_media_key(key);
                    }
                }
            }
        }
    }

    /// Sends the core's datagrams and carries out its events.
    async fn flush(&mut self) {
        while let Some(datagram) = self.core.poll_transmit() {
            if let Err(e) = self.socket.send(&datagram).await {
                tracing::debug!("udp send: {e}");
            }
        }
        while let Some(event) = self.core.poll_event() {
            match event {
                ReceiveEvent::Frame { sender, frame } => self.shared.submit_frame(sender, frame),
                ReceiveEvent::ScreenSlice { sender, job } => self.shared.submit_slice(sender, job),
                ReceiveEvent::ScreenQualityChanged(setting) => {
                    if let Ok(mut s) = self.shared.screen_setting.lock() {
                        *s = setting;
                    }
                }
                ReceiveEvent::ScreenLoss(permille) => {
                    self.shared.screen_loss_permille.store(u32::from(permille), Ordering::Relaxed)
                }
                ReceiveEvent::RefreshRequested(runs) => {
                    if let Ok(mut q) = self.shared.screen_requests.lock() {
                        q.push(&runs);
                    }
                }
                ReceiveEvent::Audio(arrival) => {
                    if let Ok(mut buffers) = self.shared.jitter.lock() {
                        arrival.deliver(&mut buffers);
                    }
                }
                ReceiveEvent::QualityChanged { setting, info } => {
                    if let Ok(mut s) = self.shared.setting.lock() {
                        *s = setting;
                    }
                    self.events.emit(SessionEvent::QualityChanged { quality: info });
                }
                ReceiveEvent::Redundancy(depth) => {
                    self.shared.audio_out.redundancy_depth.store(depth, Ordering::Relaxed)
                }
                ReceiveEvent::Stats(snapshot) => {
                    if let Some(w) = &mut self.stats_writer {
                        if let Err(e) = w.write(&snapshot) {
                            self.events.error(format!("cannot write stats: {e}"));
                            self.stats_writer = None;
                        }
                    }
                    if let Ok(mut latest) = self.shared.session.latest_stats.lock() {
                        *latest = Some((*snapshot).clone());
                    }
                    self.events.emit(SessionEvent::Stats(snapshot));
                }
                ReceiveEvent::RelayReport(report) => {
                    let _ = self.internal.try_send(Internal::Report(report));
                }
                ReceiveEvent::RelaySilent => {
                    tracing::info!("no datagram from the relay for {} s", protocol::resume::RELAY_SILENCE.as_secs());
                    let _ = self.internal.try_send(Internal::RelaySilent);
                }
            }
        }
    }

    /// New keys (and perhaps a new relay address) after a resume. The socket is shared with
    /// the capture threads, so reconnecting it moves their media too.
    async fn rekey(&mut self, hop: &HopSecret, udp_addr: SocketAddr) {
        if self.socket.peer_addr().ok() != Some(udp_addr) {
            if let Err(e) = self.socket.connect(udp_addr).await {
                self.events.error(format!("cannot send media to the relay at {udp_addr}: {e}"));
            }
        }
        self.core.rekey(Instant::now(), hop);
    }

    /// A participant left: the core forgets them, and so do the threads' tables.
    fn forget(&mut self, id: u32) {
        self.core.participant_left(Instant::now(), id);
        if let Ok(mut j) = self.shared.jitter.lock() {
            j.remove(&id);
        }
        if let Ok(mut d) = self.shared.decode.lock() {
            d.pending.remove(&id);
            d.senders.remove(&id);
        }
        if let Ok(mut l) = self.shared.remote_levels.lock() {
            l.remove(&id);
        }
        self.shared.forget_screen(id);
        self.shared.session.video.forget(FrameSource::Remote(id));
    }
}

/// What the core reads from the capture threads, the decode worker, the playout thread and
/// the file table at a stats tick.
fn local_readings(shared: &EngineShared) -> LocalReadings {
    let vo = &shared.video_out;
    let dims = vo.last_dims.load(Ordering::Relaxed);
    let video_out = VideoOutTotals {
        active: vo.active.load(Ordering::Relaxed),
        source: vo.source.lock().map(|s| s.clone()).unwrap_or_default(),
        frames: vo.frames.load(Ordering::Relaxed),
        packets: vo.packets.load(Ordering::Relaxed),
        bytes: vo.bytes.load(Ordering::Relaxed),
        last_frame_bytes: vo.last_frame_bytes.load(Ordering::Relaxed),
        last_width: (dims >> 16) as u16,
        last_height: (dims & 0xffff) as u16,
        encode_us: vo.encode_us.load(Ordering::Relaxed),
        send_errors: vo.send_errors.load(Ordering::Relaxed),
    };
    let so = &shared.screen_out;
    let screen_dims = so.last_dims.load(Ordering::Relaxed);
    let screen_out = ScreenOutTotals {
        active: so.active.load(Ordering::Relaxed),
        source: so.source.lock().map(|s| s.clone()).unwrap_or_default(),
        updates: so.updates.load(Ordering::Relaxed),
        slices: so.slices.load(Ordering::Relaxed),
        bytes: so.bytes.load(Ordering::Relaxed),
        encode_us: so.encode_us.load(Ordering::Relaxed),
        tiles_compared: so.tiles_compared.load(Ordering::Relaxed),
        tiles_changed: so.tiles_changed.load(Ordering::Relaxed),
        last_width: (screen_dims >> 16) as u16,
        last_height: (screen_dims & 0xffff) as u16,
    };
    let ao = &shared.audio_out;
    let (voice, voice_stats) = ao.voice.lock().map(|v| *v).unwrap_or_default();
    let audio_out = AudioOutTotals {
        active: ao.active.load(Ordering::Relaxed),
        source: ao.source.lock().map(|s| s.clone()).unwrap_or_default(),
        frames: ao.frames.load(Ordering::Relaxed),
        bytes: ao.bytes.load(Ordering::Relaxed),
        level_dbfs: f32::from_bits(ao.level_dbfs_bits.load(Ordering::Relaxed)),
        speaking: ao.speaking.load(Ordering::Relaxed),
        voice,
        voice_stats,
    };
    let jitter = shared.jitter.lock().map(|j| j.iter().map(|(id, b)| (*id, b.stats())).collect()).unwrap_or_default();
    let decoded = shared
        .decode
        .lock()
        .map(|d| {
            d.senders
                .iter()
                .map(|(id, c)| {
                    let totals = DecodedTotals {
                        frames: c.frames,
                        skipped: c.skipped,
                        errors: c.errors,
                        last_width: c.last_width,
                        last_height: c.last_height,
                        latency_p50_ms: c.latency.percentile_ms(0.5),
                        latency_p95_ms: c.latency.percentile_ms(0.95),
                        screen_errors: c.screen_errors,
                        screen_latency_p50_ms: c.screen_latency.percentile_ms(0.5),
                        screen_latency_p95_ms: c.screen_latency.percentile_ms(0.95),
                    };
                    (*id, totals)
                })
                .collect()
        })
        .unwrap_or_default();
    LocalReadings {
        video_out,
        screen_out,
        audio_out,
        jitter,
        decoded,
        levels: shared.remote_levels.lock().map(|l| l.clone()).unwrap_or_default(),
        loss_override: shared.session.loss_override(),
        files: shared.session.files.snapshot(),
    }
}
