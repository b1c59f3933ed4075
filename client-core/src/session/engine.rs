//! The media engine of one meeting: the network task and the threads around it.
//!
//! ```text
//!  video capture thread ──JPEG fragments──▶ UDP ──▶ relay
//!  audio capture thread ──20 ms PCM───────▶ UDP ──▶ relay
//!  relay ──▶ UDP ──▶ network task ──complete JPEG──▶ decode worker ──▶ VideoFrame events
//!                         └──PCM──▶ jitter buffers ◀── playout thread (mix → sink, WAV)
//! ```
//!
//! The **network task** (tokio) owns the receiving side of the UDP socket and every per-sender
//! receive state (frame assemblers, loss and jitter estimators). Once a second it sends a
//! keepalive with the media token, an RTT echo request and a receiver report per remote
//! stream, feeds the [`QualityController`], and publishes a [`StatsSnapshot`]. It never
//! decodes anything itself: complete frames are handed to the decode worker, which only ever
//! keeps the newest pending frame per sender.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use protocol::assembler::{AssembledFrame, AssemblerConfig, FrameAssembler};
use protocol::control::StatsReport;
use protocol::estimators::{InterarrivalJitter, LossEstimator, LossInterval, RttEstimator};
use protocol::jitter::{JitterBuffer, JitterConfig, FRAME_SAMPLES, SAMPLE_RATE};
use protocol::media::{
    AudioHeader, MediaKind, MediaPacket, ReceiverReport, RttEcho, VideoHeader, MAX_DATAGRAM_LEN, RELAY_SENDER_ID,
};
use protocol::mulaw;
use protocol::quality::{QualityConfig, QualityController, QualityInput, QualitySetting, LADDER};
use protocol::redundancy::{AudioRedundancy, RedundancyConfig};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::events::{EventSender, SessionEvent};
use super::options::SessionOptions;
use super::SessionShared;
use crate::media::now_us;
use crate::net::udp;
use crate::stats::{
    AudioInStats, AudioOutStats, JsonLinesWriter, LatencyHistogram, QualityInfo, RemoteStreamStats, StatsSnapshot,
    VideoInStats, VideoOutStats,
};

/// Remote senders tracked at once (the relay's participant limit is below this).
pub(crate) const MAX_REMOTES: usize = 64;
/// How often keepalives, RTT requests, receiver reports, adaptation and stats run.
const TICK: Duration = Duration::from_secs(1);
/// How often frame assemblers expire incomplete frames.
const ASSEMBLER_TICK: Duration = Duration::from_millis(50);
/// A stats report goes to the relay every this many ticks.
const RELAY_REPORT_EVERY: u64 = 5;
/// A receiver's report on our video counts for adaptation this long.
const REPORT_FRESHNESS: Duration = Duration::from_secs(3);
/// A remote sender nothing was heard from for this long is forgotten.
const REMOTE_IDLE: Duration = Duration::from_secs(30);
/// How long media from a participant who left is ignored.
const DEPARTED_QUARANTINE: Duration = Duration::from_secs(5);
/// RTT echo requests remembered for matching replies.
const ECHOS_REMEMBERED: usize = 8;

/// Messages from the engine to the control task.
#[derive(Debug)]
pub(crate) enum Internal {
    /// Our speaking state changed (drives `MEDIA_STATE`).
    Speaking(bool),
    /// A periodic `STATS_REPORT` for the relay.
    Report(StatsReport),
}

/// What the engine needs to start.
pub(crate) struct EngineParams {
    pub my_id: u32,
    pub media_token: u64,
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

/// Counters of the outgoing audio stream, written by the capture thread.
#[derive(Debug, Default)]
pub(crate) struct AudioOutCounters {
    pub active: AtomicBool,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub level_dbfs_bits: AtomicU32,
    pub speaking: AtomicBool,
    pub source: Mutex<String>,
    /// Whether packets carry a µ-law copy of the previous frame (set by the network task from
    /// receivers' reports, read by the capture thread).
    pub redundancy: AtomicBool,
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
}

/// Frames waiting for the decode worker: at most one per sender, the newest.
#[derive(Debug, Default)]
pub(crate) struct DecodeState {
    pub pending: BTreeMap<u32, AssembledFrame>,
    pub senders: BTreeMap<u32, DecodedCounters>,
    pub closed: bool,
}

/// State shared by the network task and the engine's threads.
#[derive(Debug)]
pub(crate) struct EngineShared {
    pub running: AtomicBool,
    pub my_id: u32,
    pub setting: Mutex<QualitySetting>,
    pub session: Arc<SessionShared>,
    pub video_out: VideoOutCounters,
    pub audio_out: AudioOutCounters,
    pub jitter: Mutex<BTreeMap<u32, JitterBuffer>>,
    /// Latest level and speaking flag per remote participant, from the playout thread.
    pub remote_levels: Mutex<BTreeMap<u32, (f32, bool)>>,
    pub decode: Mutex<DecodeState>,
    pub decode_ready: Condvar,
}

impl EngineShared {
    pub(crate) fn running(&self) -> bool {
        self.running.load(Ordering::Relaxed)
    }

    pub(crate) fn setting(&self) -> QualitySetting {
        match self.setting.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
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
    net_cmd: mpsc::Sender<u32>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Engine {
    /// Opens the UDP socket and starts the network task and the threads.
    pub(crate) fn start(params: EngineParams) -> std::io::Result<Engine> {
        let EngineParams { my_id, media_token, udp_addr, options, events, shared: session, internal } = params;
        let (socket, sender) = udp::open(udp_addr)?;
        let mut config = QualityConfig::default();
        if let Some(level) = options.start_level {
            config.start_level = level.min(LADDER.len() - 1);
        }
        let controller = QualityController::new(config, Instant::now());
        let shared = Arc::new(EngineShared {
            running: AtomicBool::new(true),
            my_id,
            setting: Mutex::new(controller.setting()),
            session,
            video_out: VideoOutCounters::default(),
            audio_out: AudioOutCounters::default(),
            jitter: Mutex::new(BTreeMap::new()),
            remote_levels: Mutex::new(BTreeMap::new()),
            decode: Mutex::new(DecodeState::default()),
            decode_ready: Condvar::new(),
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
            let (s, e, a, sock, i) =
                (shared.clone(), events.clone(), options.audio.clone(), sender.try_clone()?, internal.clone());
            engine_threads
                .push(spawn("parlor-audio-tx", Box::new(move || super::audio::capture_thread(s, e, a, sock, i)))?);
        }
        {
            let (s, e, sink, rec) =
                (shared.clone(), events.clone(), options.sink.clone(), options.record_audio.clone());
            engine_threads
                .push(spawn("parlor-playout", Box::new(move || super::audio::playout_thread(s, e, sink, rec)))?);
        }
        {
            let (s, e) = (shared.clone(), events.clone());
            engine_threads.push(spawn("parlor-video-rx", Box::new(move || super::video::decode_thread(s, e)))?);
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
        let task = NetTask {
            socket,
            shared: shared.clone(),
            events,
            internal,
            media_token,
            remotes: HashMap::new(),
            rtt: RttEstimator::new(),
            echoes: VecDeque::new(),
            next_echo: 1,
            uplink_video: None,
            receiver_reports: HashMap::new(),
            departed: HashMap::new(),
            controller,
            redundancy: AudioRedundancy::new(RedundancyConfig::default()),
            stats_writer,
            ticks: 0,
            last_tick: Instant::now(),
            prev_video_frames: 0,
            prev_video_bytes: 0,
            prev_audio_bytes: 0,
            prev_encode_us: 0,
            malformed: 0,
            last_input_loss: 0.0,
            last_receivers_loss: None,
        };
        let net = tokio::spawn(task.run(net_rx));
        Ok(Engine { shared, net, net_cmd, threads: engine_threads })
    }

    /// Forgets everything about a participant who left.
    pub(crate) fn participant_left(&self, id: u32) {
        let _ = self.net_cmd.try_send(id);
    }

    /// Stops the network task and every thread, and waits for the threads (the playout
    /// thread finishes the WAV recording).
    pub(crate) async fn stop(mut self) {
        self.shared.running.store(false, Ordering::Relaxed);
        self.shared.close_decoder();
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

/// Receive state for one remote participant.
struct Remote {
    assembler: FrameAssembler,
    video_loss: LossEstimator,
    video_jitter: InterarrivalJitter,
    video_packets: u64,
    audio_loss: LossEstimator,
    audio_jitter: InterarrivalJitter,
    audio_packets: u64,
    audio_latency: LatencyHistogram,
    bytes_interval: u64,
    last_seen: Instant,
    last_video_interval: Option<LossInterval>,
    last_audio_interval: Option<LossInterval>,
    prev_decoded: u64,
}

impl Remote {
    fn new(now: Instant) -> Self {
        Self {
            assembler: FrameAssembler::new(AssemblerConfig::default()),
            video_loss: LossEstimator::new(),
            video_jitter: InterarrivalJitter::new(),
            video_packets: 0,
            audio_loss: LossEstimator::new(),
            audio_jitter: InterarrivalJitter::new(),
            audio_packets: 0,
            audio_latency: LatencyHistogram::new(),
            bytes_interval: 0,
            last_seen: now,
            last_video_interval: None,
            last_audio_interval: None,
            prev_decoded: 0,
        }
    }
}

struct NetTask {
    socket: tokio::net::UdpSocket,
    shared: Arc<EngineShared>,
    events: EventSender,
    internal: mpsc::Sender<Internal>,
    media_token: u64,
    remotes: HashMap<u32, Remote>,
    rtt: RttEstimator,
    echoes: VecDeque<(u32, Instant)>,
    next_echo: u32,
    /// Loss the relay last reported on our uplink video, and when.
    uplink_video: Option<(f64, Instant)>,
    /// Loss each receiver last reported on our video, and when.
    receiver_reports: HashMap<u32, (f64, Instant)>,
    /// Participants who left recently, and when.
    departed: HashMap<u32, Instant>,
    controller: QualityController,
    /// Whether our audio goes out with redundancy, from the audio loss reported to us.
    redundancy: AudioRedundancy,
    stats_writer: Option<JsonLinesWriter>,
    ticks: u64,
    last_tick: Instant,
    prev_video_frames: u64,
    prev_video_bytes: u64,
    prev_audio_bytes: u64,
    prev_encode_us: u64,
    malformed: u64,
    last_input_loss: f64,
    last_receivers_loss: Option<f64>,
}

impl NetTask {
    async fn run(mut self, mut left: mpsc::Receiver<u32>) {
        let mut buf = vec![0u8; MAX_DATAGRAM_LEN + 512];
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut assembler_tick = tokio::time::interval(ASSEMBLER_TICK);
        assembler_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // The relay learns our address from the first keepalive; send one right away and a
        // couple more soon after in case the first is lost.
        self.send_keepalive().await;
        let mut early_keepalives = 3u32;
        let mut early = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                r = self.socket.recv(&mut buf) => match r {
                    Ok(n) => {
                        let now = Instant::now();
                        if let Some(datagram) = buf.get(..n) {
                            self.on_datagram(now, datagram).await;
                        }
                    }
                    // ICMP port unreachable surfaces as ECONNREFUSED on a connected socket
                    // (relay restarting); keep listening.
                    Err(e) => {
                        tracing::debug!("udp receive: {e}");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                t = tick.tick() => self.on_tick(t.into_std()).await,
                _ = assembler_tick.tick() => {
                    let now = Instant::now();
                    for r in self.remotes.values_mut() {
                        r.assembler.handle_timeout(now);
                    }
                }
                _ = early.tick(), if early_keepalives > 0 => {
                    early_keepalives -= 1;
                    self.send_keepalive().await;
                }
                Some(id) = left.recv() => self.forget(id),
            }
        }
    }

    fn forget(&mut self, id: u32) {
        let now = Instant::now();
        self.departed.retain(|_, at| now.saturating_duration_since(*at) < DEPARTED_QUARANTINE);
        if self.departed.len() < MAX_REMOTES {
            self.departed.insert(id, now);
        }
        self.remotes.remove(&id);
        self.receiver_reports.remove(&id);
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
    }

    async fn send_packet(&self, packet: MediaPacket<'_>) {
        let mut out = [0u8; 64];
        match packet.encode_into(&mut out) {
            Ok(len) => {
                if let Some(bytes) = out.get(..len) {
                    if let Err(e) = self.socket.send(bytes).await {
                        tracing::debug!("udp send: {e}");
                    }
                }
            }
            Err(e) => tracing::warn!("cannot encode {:?}: {e}", packet.kind()),
        }
    }

    async fn send_keepalive(&self) {
        self.send_packet(MediaPacket::Keepalive { sender_id: self.shared.my_id, media_token: self.media_token }).await;
    }

    fn remote(&mut self, id: u32, now: Instant) -> Option<&mut Remote> {
        if id == RELAY_SENDER_ID || id == self.shared.my_id {
            return None;
        }
        if !self.remotes.contains_key(&id) {
            if self.remotes.len() >= MAX_REMOTES {
                return None;
            }
            // Packets still in flight from someone who just left must not bring them back.
            if self.departed.get(&id).is_some_and(|at| now.saturating_duration_since(*at) < DEPARTED_QUARANTINE) {
                return None;
            }
        }
        let r = self.remotes.entry(id).or_insert_with(|| Remote::new(now));
        r.last_seen = now;
        Some(r)
    }

    async fn on_datagram(&mut self, now: Instant, datagram: &[u8]) {
        let packet = match MediaPacket::decode(datagram) {
            Ok(p) => p,
            Err(e) => {
                self.malformed += 1;
                tracing::trace!("malformed datagram: {e}");
                return;
            }
        };
        let len = datagram.len() as u64;
        match packet {
            MediaPacket::VideoFragment { sender_id, header, payload } => {
                self.on_video(now, sender_id, &header, payload, len)
            }
            MediaPacket::Audio { sender_id, header, payload, redundant } => {
                self.on_audio(now, sender_id, &header, payload, redundant, len)
            }
            MediaPacket::ReceiverReport { report, .. }
                if report.source_id == self.shared.my_id && report.media == MediaKind::Audio =>
            {
                self.redundancy.on_report(now, f64::from(report.loss_permille) / 1000.0);
                self.shared.audio_out.redundancy.store(self.redundancy.is_on(now), Ordering::Relaxed);
            }
            MediaPacket::RttReply { sender_id: RELAY_SENDER_ID, echo } => {
                if let Some(pos) = self.echoes.iter().position(|(id, _)| *id == echo.echo_id) {
                    if let Some((_, sent)) = self.echoes.remove(pos) {
                        self.rtt.on_sample(now.saturating_duration_since(sent));
                    }
                }
            }
            MediaPacket::RttRequest { sender_id: RELAY_SENDER_ID, echo } => {
                self.send_packet(MediaPacket::RttReply { sender_id: self.shared.my_id, echo }).await;
            }
            MediaPacket::ReceiverReport { sender_id, report }
                if report.source_id == self.shared.my_id && report.media == MediaKind::Video =>
            {
                let loss = f64::from(report.loss_permille) / 1000.0;
                if sender_id == RELAY_SENDER_ID {
                    self.uplink_video = Some((loss, now));
                } else if self.receiver_reports.contains_key(&sender_id) || self.receiver_reports.len() < MAX_REMOTES {
                    self.receiver_reports.insert(sender_id, (loss, now));
                }
            }
            _ => {}
        }
    }

    fn on_video(&mut self, now: Instant, sender: u32, header: &VideoHeader, payload: &[u8], len: u64) {
        let Some(r) = self.remote(sender, now) else { return };
        r.video_loss.on_packet(header.seq);
        r.video_jitter.on_packet(now, header.capture_ts_us);
        r.video_packets += 1;
        r.bytes_interval += len;
        if let Some(frame) = r.assembler.push(now, header, payload) {
            self.shared.submit_frame(sender, frame);
        }
    }

    fn on_audio(
        &mut self,
        now: Instant,
        sender: u32,
        header: &AudioHeader,
        payload: &[u8],
        redundant: Option<&[u8]>,
        len: u64,
    ) {
        if header.sample_rate != SAMPLE_RATE || header.channels != 1 || payload.len() != FRAME_SAMPLES * 2 {
            self.malformed += 1;
            return;
        }
        let Some(r) = self.remote(sender, now) else { return };
        r.audio_loss.on_packet(header.seq);
        r.audio_jitter.on_packet(now, header.capture_ts_us);
        r.audio_packets += 1;
        r.bytes_interval += len;
        r.audio_latency.record_us(header.capture_ts_us, now_us());
        let mut samples = [0i16; FRAME_SAMPLES];
        for (s, b) in samples.iter_mut().zip(payload.chunks_exact(2)) {
            *s = i16::from_be_bytes([b[0], b[1]]);
        }
        if let Ok(mut buffers) = self.shared.jitter.lock() {
            if !buffers.contains_key(&sender) && buffers.len() >= MAX_REMOTES {
                return;
            }
            let buffer = buffers.entry(sender).or_insert_with(|| JitterBuffer::new(jitter_config()));
            buffer.push(now, header.seq, &samples);
            let previous_seq = header.seq.wrapping_sub(1);
            if let Some(previous) = redundant.filter(|_| buffer.would_recover(previous_seq)) {
                // The decoder checked it has one byte per sample of the payload.
                mulaw::decode(previous, &mut samples);
                buffer.push_recovered(previous_seq, &samples);
            }
        }
    }

    async fn on_tick(&mut self, tick: Instant) {
        let now = Instant::now();
        self.ticks += 1;
        self.send_keepalive().await;

        let echo_id = self.next_echo;
        self.next_echo = self.next_echo.wrapping_add(1);
        self.echoes.push_back((echo_id, now));
        while self.echoes.len() > ECHOS_REMEMBERED {
            self.echoes.pop_front();
        }
        self.send_packet(MediaPacket::RttRequest {
            sender_id: self.shared.my_id,
            echo: RttEcho { echo_id, sent_ts_us: now_us() },
        })
        .await;

        self.remotes.retain(|_, r| now.saturating_duration_since(r.last_seen) < REMOTE_IDLE);
        self.shared.audio_out.redundancy.store(self.redundancy.is_on(now), Ordering::Relaxed);
        self.send_receiver_reports().await;
        self.adapt(tick);
        let snapshot = self.snapshot(now);
        self.last_tick = now;
        if let Some(w) = &mut self.stats_writer {
            if let Err(e) = w.write(&snapshot) {
                self.events.error(format!("cannot write stats: {e}"));
                self.stats_writer = None;
            }
        }
        if self.ticks.is_multiple_of(RELAY_REPORT_EVERY) {
            let _ = self.internal.try_send(Internal::Report(relay_report(&snapshot)));
        }
        if let Ok(mut latest) = self.shared.session.latest_stats.lock() {
            *latest = Some(snapshot.clone());
        }
        self.events.emit(SessionEvent::Stats(Box::new(snapshot)));
    }

    async fn send_receiver_reports(&mut self) {
        let my_id = self.shared.my_id;
        let mut reports = Vec::with_capacity(self.remotes.len() * 2);
        for (id, r) in self.remotes.iter_mut() {
            for (media, loss, jitter, last) in [
                (MediaKind::Video, &mut r.video_loss, &r.video_jitter, &mut r.last_video_interval),
                (MediaKind::Audio, &mut r.audio_loss, &r.audio_jitter, &mut r.last_audio_interval),
            ] {
                let Some(highest_seq) = loss.highest_seq() else { continue };
                let interval = loss.take_interval();
                reports.push(ReceiverReport {
                    source_id: *id,
                    media,
                    loss_permille: interval.permille(),
                    highest_seq,
                    cumulative_lost: u32::try_from(loss.cumulative_lost()).unwrap_or(u32::MAX),
                    jitter_us: u32::try_from(jitter.jitter().as_micros()).unwrap_or(u32::MAX),
                });
                *last = Some(interval);
            }
        }
        for report in reports {
            self.send_packet(MediaPacket::ReceiverReport { sender_id: my_id, report }).await;
        }
    }

    /// Feeds the quality controller. The loss figure is the worse of what the relay saw on
    /// our uplink and the median of what our receivers saw: the median, because the relay
    /// thins frames for a receiver on a bad link, so one bad receiver should not make
    /// everyone else watch 144p.
    fn adapt(&mut self, tick: Instant) {
        let now = Instant::now();
        let uplink =
            self.uplink_video.filter(|(_, at)| now.saturating_duration_since(*at) < REPORT_FRESHNESS).map(|(l, _)| l);
        let mut fresh: Vec<f64> = self
            .receiver_reports
            .values()
            .filter(|(_, at)| now.saturating_duration_since(*at) < REPORT_FRESHNESS)
            .map(|(l, _)| *l)
            .collect();
        self.receiver_reports.retain(|_, (_, at)| now.saturating_duration_since(*at) < REPORT_FRESHNESS);
        let receivers = median(&mut fresh);
        self.last_receivers_loss = receivers;
        let measured = uplink.unwrap_or(0.0).max(receivers.unwrap_or(0.0));
        let loss = self.shared.session.loss_override().unwrap_or(measured);
        self.last_input_loss = loss;
        let input = QualityInput { loss, rtt: self.rtt.smoothed() };
        if let Some(setting) = self.controller.on_interval(tick, input) {
            tracing::info!(level = setting.level, loss, "quality level changed");
            if let Ok(mut s) = self.shared.setting.lock() {
                *s = setting.clone();
            }
            self.events.emit(SessionEvent::QualityChanged {
                quality: quality_info(&setting, self.controller.level_changes()),
            });
        }
    }

    fn snapshot(&mut self, now: Instant) -> StatsSnapshot {
        let secs = now.saturating_duration_since(self.last_tick).as_secs_f64().max(0.001);
        let kbps = |bytes: u64| bytes as f64 * 8.0 / 1000.0 / secs;
        let shared = &self.shared;

        let vo = &shared.video_out;
        let frames = vo.frames.load(Ordering::Relaxed);
        let bytes = vo.bytes.load(Ordering::Relaxed);
        let encode_us = vo.encode_us.load(Ordering::Relaxed);
        let dims = vo.last_dims.load(Ordering::Relaxed);
        let new_frames = frames.saturating_sub(self.prev_video_frames);
        let video_out = VideoOutStats {
            enabled: vo.active.load(Ordering::Relaxed),
            source: vo.source.lock().map(|s| s.clone()).unwrap_or_default(),
            frames_sent: frames,
            packets_sent: vo.packets.load(Ordering::Relaxed),
            fps: new_frames as f64 / secs,
            bitrate_kbps: kbps(bytes.saturating_sub(self.prev_video_bytes)),
            last_frame_bytes: vo.last_frame_bytes.load(Ordering::Relaxed),
            last_frame_width: (dims >> 16) as u16,
            last_frame_height: (dims & 0xffff) as u16,
            encode_ms: if new_frames > 0 {
                encode_us.saturating_sub(self.prev_encode_us) as f64 / 1000.0 / new_frames as f64
            } else {
                0.0
            },
            send_errors: vo.send_errors.load(Ordering::Relaxed),
        };
        let ao = &shared.audio_out;
        let audio_bytes = ao.bytes.load(Ordering::Relaxed);
        let audio_out = AudioOutStats {
            enabled: ao.active.load(Ordering::Relaxed),
            source: ao.source.lock().map(|s| s.clone()).unwrap_or_default(),
            frames_sent: ao.frames.load(Ordering::Relaxed),
            bitrate_kbps: kbps(audio_bytes.saturating_sub(self.prev_audio_bytes)),
            level_dbfs: f32::from_bits(ao.level_dbfs_bits.load(Ordering::Relaxed)),
            speaking: ao.speaking.load(Ordering::Relaxed),
            redundancy: ao.redundancy.load(Ordering::Relaxed),
        };
        let bitrate_out_kbps = video_out.bitrate_kbps + audio_out.bitrate_kbps;
        self.prev_video_frames = frames;
        self.prev_video_bytes = bytes;
        self.prev_audio_bytes = audio_bytes;
        self.prev_encode_us = encode_us;

        let jitter_stats: BTreeMap<u32, _> =
            shared.jitter.lock().map(|j| j.iter().map(|(id, b)| (*id, b.stats())).collect()).unwrap_or_default();
        let levels = shared.remote_levels.lock().map(|l| l.clone()).unwrap_or_default();
        let mut streams = Vec::with_capacity(self.remotes.len());
        let mut bitrate_in_kbps = 0.0;
        if let Ok(decode) = shared.decode.lock() {
            let mut ids: Vec<u32> = self.remotes.keys().copied().collect();
            ids.sort_unstable();
            for id in ids {
                let Some(r) = self.remotes.get_mut(&id) else { continue };
                let dec = decode.senders.get(&id);
                let decoded = dec.map_or(0, |d| d.frames);
                let asm = r.assembler.stats();
                let video = VideoInStats {
                    frames_received: decoded,
                    packets_received: r.video_packets,
                    fps: decoded.saturating_sub(r.prev_decoded) as f64 / secs,
                    loss: r.last_video_interval.as_ref().map_or(0.0, |i| i.fraction),
                    cumulative_lost: r.video_loss.cumulative_lost(),
                    jitter_ms: r.video_jitter.jitter().as_secs_f64() * 1000.0,
                    frames_incomplete: asm.incomplete,
                    frames_skipped: dec.map_or(0, |d| d.skipped),
                    decode_errors: dec.map_or(0, |d| d.errors),
                    last_width: dec.map_or(0, |d| d.last_width),
                    last_height: dec.map_or(0, |d| d.last_height),
                    latency_p50_ms: dec.and_then(|d| d.latency.percentile_ms(0.5)),
                    latency_p95_ms: dec.and_then(|d| d.latency.percentile_ms(0.95)),
                };
                r.prev_decoded = decoded;
                let js = jitter_stats.get(&id);
                let (level_dbfs, speaking) = levels.get(&id).copied().unwrap_or((-120.0, false));
                let audio = AudioInStats {
                    packets_received: r.audio_packets,
                    loss: r.last_audio_interval.as_ref().map_or(0.0, |i| i.fraction),
                    cumulative_lost: r.audio_loss.cumulative_lost(),
                    jitter_ms: r.audio_jitter.jitter().as_secs_f64() * 1000.0,
                    jitter_buffer_ms: js.map_or(0.0, |s| s.current_delay.as_secs_f64() * 1000.0),
                    jitter_target_ms: js.map_or(0.0, |s| s.target_delay.as_secs_f64() * 1000.0),
                    concealed_frames: js.map_or(0, |s| s.concealed_frames),
                    underruns: js.map_or(0, |s| s.underruns),
                    late_frames: js.map_or(0, |s| s.late_frames),
                    played_frames: js.map_or(0, |s| s.played_frames),
                    recovered_frames: js.map_or(0, |s| s.recovered_frames),
                    latency_p50_ms: r.audio_latency.percentile_ms(0.5),
                    latency_p95_ms: r.audio_latency.percentile_ms(0.95),
                    level_dbfs,
                    speaking,
                };
                let bitrate_kbps = kbps(r.bytes_interval);
                r.bytes_interval = 0;
                bitrate_in_kbps += bitrate_kbps;
                streams.push(RemoteStreamStats { participant_id: id, video, audio, bitrate_kbps });
            }
        }

        StatsSnapshot {
            timestamp_ms: now_us() / 1000,
            participant_id: shared.my_id,
            rtt_ms: self.rtt.smoothed().map(|d| d.as_secs_f64() * 1000.0),
            rtt_latest_ms: self.rtt.latest().map(|d| d.as_secs_f64() * 1000.0),
            quality: quality_info(&self.controller.setting(), self.controller.level_changes()),
            quality_input_loss: self.last_input_loss,
            uplink_video_loss: self.uplink_video.map(|(l, _)| l),
            receivers_video_loss: self.last_receivers_loss,
            video_out,
            audio_out,
            streams,
            bitrate_in_kbps,
            bitrate_out_kbps,
            malformed_packets: self.malformed,
            files: shared.session.files.snapshot(),
        }
    }
}

/// The jitter buffers' tuning: the protocol's defaults, except that the target never drops
/// below 40 ms. On loopback or a quiet LAN the measured network jitter is near zero and the
/// target would settle at 20 ms, leaving no room for the sender's and our own thread
/// scheduling on a busy desktop; every such hiccup would then be an audible underrun.
fn jitter_config() -> JitterConfig {
    JitterConfig { min_target: Duration::from_millis(40), ..JitterConfig::default() }
}

/// The median of `values` (sorted in place), `None` if empty.
fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

pub(crate) fn quality_info(s: &QualitySetting, level_changes: u32) -> QualityInfo {
    QualityInfo {
        level: s.level,
        name: LADDER.get(s.level).map(|l| l.name.to_string()).unwrap_or_default(),
        width: s.width,
        height: s.height,
        fps: s.fps,
        jpeg_quality: s.jpeg_quality,
        level_changes,
    }
}

/// The summary the relay gets every few seconds.
fn relay_report(s: &StatsSnapshot) -> StatsReport {
    let n = s.streams.len().max(1) as f64;
    StatsReport {
        rtt_ms: s.rtt_ms.unwrap_or(0.0),
        loss: s.streams.iter().map(|r| r.video.loss.max(r.audio.loss)).fold(0.0, f64::max),
        jitter_ms: s.streams.iter().map(|r| r.audio.jitter_ms).sum::<f64>() / n,
        fps_sent: s.video_out.fps,
        fps_received: s.streams.iter().map(|r| r.video.fps).sum(),
        bitrate_in_kbps: s.bitrate_in_kbps,
        bitrate_out_kbps: s.bitrate_out_kbps,
        quality_level: u8::try_from(s.quality.level).unwrap_or(u8::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_reports() {
        assert_eq!(median(&mut []), None);
        assert_eq!(median(&mut [0.3]), Some(0.3));
        assert_eq!(median(&mut [0.5, 0.0, 0.01]), Some(0.01));
        assert_eq!(median(&mut [0.4, 0.0, 0.1, 0.0]), Some(0.05));
    }
}
