//! The receive side of the media engine as a sans-IO state machine.
//!
//! [`ReceiveCore`] holds everything the network task used to keep in its own fields: a frame
//! assembler and loss and jitter estimators per remote sender, the RTT echo bookkeeping, the
//! receiver reports we send and the ones we get about our own streams, the
//! [`QualityController`], the audio-redundancy decision and the figures of the once-a-second
//! [`StatsSnapshot`]. It owns no socket, thread or clock, in the style of str0m and quinn-proto:
//!
//! - the driver feeds it [`ReceiveCore::handle_datagram`] for every datagram and
//!   [`ReceiveCore::handle_timeout`] whenever [`ReceiveCore::next_deadline`] has passed, always
//!   passing the time in (a monotonic [`Instant`] and the wall clock in µs since the Unix
//!   epoch, which the wire format's timestamps use);
//! - it drains [`ReceiveCore::poll_transmit`] (datagrams for the relay) and
//!   [`ReceiveCore::poll_event`] (complete frames, audio for the jitter buffers, quality
//!   changes, stats) after each call.
//!
//! What lives on other threads (the capture threads' counters, the decode worker, the
//! jitter buffers the playout thread drains, the file table) reaches the core once a second
//! as plain [`LocalReadings`], read only when a stats tick is due. Both queues are bounded:
//! a driver that stops draining loses the newest items, counted, never memory.
//!
//! The unit tests below drive it with a simulated clock: loss, reordering, a remote leaving,
//! RTT, adaptation steps, redundancy, stats figures and malformed input.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::assembler::{AssembledFrame, AssemblerConfig, FrameAssembler};
use protocol::control::StatsReport;
use protocol::e2ee::{MediaOpener, MeetingKey};
use protocol::estimators::{InterarrivalJitter, LossEstimator, LossInterval, RttEstimator};
use protocol::hop::{HopError, HopReceiver, HopSecret, HopSender};
use protocol::jitter::{JitterBuffer, JitterConfig, JitterStats, FRAME_SAMPLES, SAMPLE_RATE};
use protocol::media::{
    AudioCopy, AudioHeader, AudioPayload, CopyEncoding, MediaKind, MediaPacket, ReceiverReport, RefreshRanges, RttEcho,
    VideoFrameMeta, VideoHeader, VideoStream, MAX_AUDIO_COPIES, MAX_DATAGRAM_LEN, RELAY_SENDER_ID,
};
use protocol::quality::{QualityConfig, QualityController, QualityInput, QualityLevel, QualitySetting, LADDER};
use protocol::redundancy::{self, AudioRedundancy, RedundancyConfig};
use protocol::resume::RELAY_SILENCE;
use protocol::screen::{ScreenReceiver, ScreenSlice, TileGrid, TileRun};

use super::screen::SliceJob;
use crate::media::{VoiceSettings, VoiceStats};
use crate::stats::{
    AudioInStats, AudioOutStats, FileTransferStats, LatencyHistogram, QualityInfo, RemoteStreamStats, ScreenInStats,
    ScreenOutStats, StatsSnapshot, VideoInStats, VideoOutStats,
};

/// Remote senders tracked at once (the relay's participant limit is below this).
pub(crate) const MAX_REMOTES: usize = 64;
/// How often keepalives, RTT requests, receiver reports, adaptation and stats run.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// How often frame assemblers expire incomplete frames.
const ASSEMBLER_TICK: Duration = Duration::from_millis(50);
/// The relay learns our address from the first keepalive; these follow the first tick's in
/// case it is lost, this far apart.
const EARLY_KEEPALIVE_EVERY: Duration = Duration::from_millis(200);
const EARLY_KEEPALIVES: u32 = 3;
/// A tick this late is "missed": the next one is a whole period after it ran, not on the grid
/// (tokio's `MissedTickBehavior::Delay`), so adaptation never sees a burst of catch-up ticks.
const TICK_LATE_SLACK: Duration = Duration::from_millis(5);
/// A stats report goes to the relay every this many ticks.
const RELAY_REPORT_EVERY: u64 = 5;
/// A receiver's report on our video counts for adaptation this long.
const REPORT_FRESHNESS: Duration = Duration::from_secs(3);
/// A sharer whose screen sent nothing for this long is not asked for refreshes (it stopped,
/// or its path is down).
const SCREEN_IDLE: Duration = Duration::from_secs(3);
/// A remote sender nothing was heard from for this long is forgotten.
const REMOTE_IDLE: Duration = Duration::from_secs(30);
/// How long media from a participant who left is ignored.
const DEPARTED_QUARANTINE: Duration = Duration::from_secs(5);
/// RTT echo requests remembered for matching replies.
const ECHOS_REMEMBERED: usize = 8;
/// Datagrams waiting for the driver: a tick sends at most a keepalive, an RTT request and two
/// reports per remote; RTT replies come on top.
const MAX_TRANSMITS: usize = 4 * MAX_REMOTES;
/// Events waiting for the driver, which drains after every call.
const MAX_EVENTS: usize = 1024;

/// What the core needs to start.
#[derive(Debug)]
pub(crate) struct ReceiveConfig {
    /// Our participant id.
    pub my_id: u32,
    /// Seals what we send (shared with the capture threads, for one counter).
    pub hop_out: Arc<HopSender>,
    /// Opens what the relay sends us.
    pub hop_in: HopReceiver,
    /// Tuning of the quality ladder (start level).
    pub quality: QualityConfig,
    /// Opens what the other participants seal end to end (holds the meeting key, if any yet).
    pub opener: MediaOpener,
}

/// Totals of the outgoing video stream, as the capture thread has counted them so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct VideoOutTotals {
    pub active: bool,
    pub source: String,
    pub frames: u64,
    pub packets: u64,
    pub bytes: u64,
    pub last_frame_bytes: u64,
    pub last_width: u16,
    pub last_height: u16,
    pub encode_us: u64,
    pub send_errors: u64,
}

/// Totals of the outgoing screen stream, as the share thread has counted them so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ScreenOutTotals {
    pub active: bool,
    pub source: String,
    pub updates: u64,
    pub slices: u64,
    pub bytes: u64,
    pub encode_us: u64,
    /// Tiles compared and tiles found changed, over every capture.
    pub tiles_compared: u64,
    pub tiles_changed: u64,
    pub last_width: u16,
    pub last_height: u16,
}

/// Totals of the outgoing audio stream, as the capture thread has counted them so far.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct AudioOutTotals {
    pub active: bool,
    pub source: String,
    pub frames: u64,
    pub bytes: u64,
    pub level_dbfs: f32,
    pub speaking: bool,
    pub voice: VoiceSettings,
    pub voice_stats: VoiceStats,
}

/// What the decode worker has done with one sender's frames.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct DecodedTotals {
    pub frames: u64,
    pub skipped: u64,
    pub errors: u64,
    pub last_width: u32,
    pub last_height: u32,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    /// Screen slices that did not decode, and the capture-to-display latency of updates.
    pub screen_errors: u64,
    pub screen_latency_p50_ms: Option<f64>,
    pub screen_latency_p95_ms: Option<f64>,
}

/// What the core reads from the rest of the engine once a second, for adaptation and stats.
#[derive(Debug, Clone, Default)]
pub(crate) struct LocalReadings {
    pub video_out: VideoOutTotals,
    pub screen_out: ScreenOutTotals,
    pub audio_out: AudioOutTotals,
    /// Per sender, the jitter buffer's figures.
    pub jitter: BTreeMap<u32, JitterStats>,
    /// Per sender, the decode worker's figures.
    pub decoded: BTreeMap<u32, DecodedTotals>,
    /// Per sender, the playout thread's latest level (dBFS) and speaking flag.
    pub levels: BTreeMap<u32, (f32, bool)>,
    /// A loss figure forced by the user or a test, replacing the measured one for adaptation.
    pub loss_override: Option<f64>,
    pub files: Vec<FileTransferStats>,
}

/// A redundant copy of an earlier frame, as an audio packet carried it (at most one byte per
/// sample: µ-law is the largest encoding).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CarriedCopy {
    pub encoding: CopyEncoding,
    pub len: usize,
    pub bytes: [u8; FRAME_SAMPLES],
}

impl CarriedCopy {
    fn from_copy(copy: &AudioCopy<'_>) -> Option<Self> {
        let mut bytes = [0u8; FRAME_SAMPLES];
        bytes.get_mut(..copy.bytes.len())?.copy_from_slice(copy.bytes);
        Some(Self { encoding: copy.encoding, len: copy.bytes.len(), bytes })
    }

    fn as_copy(&self) -> AudioCopy<'_> {
        AudioCopy { encoding: self.encoding, bytes: &self.bytes[..self.len] }
    }
}

/// One audio packet for a sender's jitter buffer, decoded, with the copies of the frames
/// before it the packet carried (`copies[i]` is frame `seq - 1 - i`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct AudioArrival {
    pub sender: u32,
    pub seq: u32,
    pub at: Instant,
    pub samples: [i16; FRAME_SAMPLES],
    pub copies: [Option<CarriedCopy>; MAX_AUDIO_COPIES],
}

impl AudioArrival {
    /// Puts the frame into its sender's jitter buffer (made on first use, at most
    /// [`MAX_REMOTES`] of them), and each copy of an earlier frame that buffer is missing. The
    /// number of copies sets the buffer's recovery horizon. Returns whether the frame went in.
    pub(crate) fn deliver(self, buffers: &mut BTreeMap<u32, JitterBuffer>) -> bool {
        if !buffers.contains_key(&self.sender) && buffers.len() >= MAX_REMOTES {
            return false;
        }
        let buffer = buffers.entry(self.sender).or_insert_with(|| JitterBuffer::new(jitter_config()));
        buffer.set_recovery_horizon(self.copies.iter().take_while(|c| c.is_some()).count());
        buffer.push(self.at, self.seq, &self.samples);
        for (i, copy) in self.copies.iter().map_while(Option::as_ref).enumerate() {
            let seq = self.seq.wrapping_sub(1 + i as u32);
            if !buffer.would_recover(seq) {
                continue;
            }
            let mut samples = [0i16; FRAME_SAMPLES];
            if redundancy::decode_copy(&copy.as_copy(), &mut samples).is_some() {
                buffer.push_recovered(seq, &samples);
            }
        }
        true
    }
}

/// What the core has for the rest of the engine.
#[derive(Debug, Clone)]
pub(crate) enum ReceiveEvent {
    /// A complete encoded video frame from `sender`, for the decode worker.
    Frame { sender: u32, frame: AssembledFrame },
    /// An audio frame for a jitter buffer.
    Audio(Box<AudioArrival>),
    /// The quality controller moved to another level: capture should use `setting`.
    QualityChanged { setting: QualitySetting, info: QualityInfo },
    /// A screen slice for the composer (opened, checked, and not older than what it shows).
    ScreenSlice { sender: u32, job: Box<SliceJob> },
    /// The screen ladder moved: the share thread should use `setting`.
    ScreenQualityChanged(QualitySetting),
    /// The loss reported on our screen stream changed (the worse of the relay's and the
    /// receivers' median, in thousandths): the share thread cuts smaller slices under loss.
    ScreenLoss(u16),
    /// A receiver asked for these tiles of our screen again.
    RefreshRequested(Vec<TileRun>),
    /// How many earlier frames our audio packets should carry copies of changed (0: none).
    Redundancy(usize),
    /// The once-a-second stats snapshot.
    Stats(Box<StatsSnapshot>),
    /// The summary for the relay's `STATS_REPORT`, every few ticks.
    RelayReport(StatsReport),
    /// No authentic datagram from the relay for [`RELAY_SILENCE`]: the path is broken (once
    /// per silence; the next datagram re-arms it).
    RelaySilent,
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
    screen: RemoteScreen,
}

/// Receive state of one remote participant's screen stream.
struct RemoteScreen {
    assembler: FrameAssembler,
    loss: LossEstimator,
    jitter: InterarrivalJitter,
    packets: u64,
    bytes_interval: u64,
    last_interval: Option<LossInterval>,
    receiver: ScreenReceiver,
    slices: u64,
    prev_slices: u64,
    /// When the last slice arrived (`None`: never, or since the share stopped).
    last_slice: Option<Instant>,
}

impl RemoteScreen {
    fn new() -> Self {
        Self {
            assembler: FrameAssembler::new(AssemblerConfig::default()),
            loss: LossEstimator::new(),
            jitter: InterarrivalJitter::new(),
            packets: 0,
            bytes_interval: 0,
            last_interval: None,
            receiver: ScreenReceiver::new(),
            slices: 0,
            prev_slices: 0,
            last_slice: None,
        }
    }
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
            screen: RemoteScreen::new(),
        }
    }
}

/// When each periodic job is next due.
#[derive(Debug, Clone)]
struct Timers {
    tick: Instant,
    assembler: Instant,
    early_keepalive: Instant,
    early_keepalives_left: u32,
}

/// The totals of the previous snapshot, to turn totals into rates.
#[derive(Debug, Clone, Default)]
struct PreviousTotals {
    video_frames: u64,
    video_bytes: u64,
    audio_bytes: u64,
    encode_us: u64,
    screen: ScreenOutTotals,
}

/// The receive side of one meeting's media; see the module documentation.
pub(crate) struct ReceiveCore {
    my_id: u32,
    hop_out: Arc<HopSender>,
    hop_in: HopReceiver,
    remotes: BTreeMap<u32, Remote>,
    rtt: RttEstimator,
    echoes: VecDeque<(u32, Instant)>,
    next_echo: u32,
    /// Loss the relay last reported on our uplink video, and when.
    uplink_video: Option<(f64, Instant)>,
    /// Loss each receiver last reported on our video, and when.
    receiver_reports: BTreeMap<u32, (f64, Instant)>,
    /// Participants who left recently, and when.
    departed: BTreeMap<u32, Instant>,
    controller: QualityController,
    /// The screen ladder's controller, on what the relay and receivers report about our screen.
    screen_controller: QualityController,
    uplink_screen: Option<(f64, Instant)>,
    screen_reports: BTreeMap<u32, (f64, Instant)>,
    last_screen_receivers_loss: Option<f64>,
    last_screen_loss_permille: u16,
    redundancy: AudioRedundancy,
    /// The redundancy decision last announced with [`ReceiveEvent::Redundancy`].
    redundancy_depth: usize,
    timers: Timers,
    ticks: u64,
    last_snapshot: Instant,
    previous: PreviousTotals,
    malformed: u64,
    /// Datagrams whose trailer did not verify.
    unauthenticated: u64,
    /// Authentic datagrams seen before or older than the replay window.
    replayed: u64,
    /// Opens the other participants' end-to-end sealed media.
    opener: MediaOpener,
    /// Video frames and audio packets that did not open.
    undecryptable: u64,
    /// Reused for opened bodies.
    opened: Vec<u8>,
    last_input_loss: f64,
    last_receivers_loss: Option<f64>,
    transmits: VecDeque<Vec<u8>>,
    events: VecDeque<ReceiveEvent>,
    /// Items dropped because the driver did not drain a full queue.
    overflowed: u64,
    /// When the last authentic datagram arrived (the join, before the first).
    last_heard: Instant,
    /// [`ReceiveEvent::RelaySilent`] was announced and nothing arrived since.
    relay_silent: bool,
}

impl ReceiveCore {
    /// A core for a meeting joined at `now`. The first tick (keepalive, RTT request, stats)
    /// is due at once.
    pub(crate) fn new(config: ReceiveConfig, now: Instant) -> Self {
        Self {
            my_id: config.my_id,
            hop_out: config.hop_out,
            hop_in: config.hop_in,
            remotes: BTreeMap::new(),
            rtt: RttEstimator::new(),
            echoes: VecDeque::new(),
            next_echo: 1,
            uplink_video: None,
            receiver_reports: BTreeMap::new(),
            departed: BTreeMap::new(),
            controller: QualityController::new(config.quality, now),
            screen_controller: QualityController::new(QualityConfig::screen(), now),
            uplink_screen: None,
            screen_reports: BTreeMap::new(),
            last_screen_receivers_loss: None,
            last_screen_loss_permille: 0,
            redundancy: AudioRedundancy::new(RedundancyConfig::default()),
            redundancy_depth: 0,
            timers: Timers {
                tick: now,
                assembler: now + ASSEMBLER_TICK,
                early_keepalive: now + EARLY_KEEPALIVE_EVERY,
                early_keepalives_left: EARLY_KEEPALIVES,
            },
            ticks: 0,
            last_snapshot: now,
            previous: PreviousTotals::default(),
            malformed: 0,
            unauthenticated: 0,
            replayed: 0,
            opener: config.opener,
            undecryptable: 0,
            opened: Vec::new(),
            last_input_loss: 0.0,
            last_receivers_loss: None,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            overflowed: 0,
            last_heard: now,
            relay_silent: false,
        }
    }

    /// The capture settings the quality controller currently asks for.
    pub(crate) fn setting(&self) -> QualitySetting {
        self.controller.setting()
    }

    /// The screen ladder's setting the share thread should use.
    pub(crate) fn screen_setting(&self) -> QualitySetting {
        self.screen_controller.setting()
    }

    /// The next datagram to send to the relay.
    pub(crate) fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.transmits.pop_front()
    }

    /// The next event for the rest of the engine.
    pub(crate) fn poll_event(&mut self) -> Option<ReceiveEvent> {
        self.events.pop_front()
    }

    /// When [`ReceiveCore::handle_timeout`] should next be called.
    pub(crate) fn next_deadline(&self) -> Instant {
        let t = &self.timers;
        let mut next = t.tick.min(t.assembler);
        if !self.relay_silent {
            next = next.min(self.last_heard + RELAY_SILENCE);
        }
        if t.early_keepalives_left > 0 {
            next.min(t.early_keepalive)
        } else {
            next
        }
    }

    /// Items (datagrams or events) lost because their queue was full.
    #[cfg(test)]
    fn overflowed(&self) -> u64 {
        self.overflowed
    }

    /// One datagram from the relay, received at `now` (`unix_us` on the wall clock).
    pub(crate) fn handle_datagram(&mut self, now: Instant, unix_us: u64, datagram: &[u8]) {
        if datagram.len() > MAX_DATAGRAM_LEN {
            self.malformed += 1;
            return;
        }
        let packet = match self.hop_in.open(datagram) {
            Ok(packet) => packet,
            Err(HopError::Replayed | HopError::Stale) => {
                self.replayed += 1;
                return;
            }
            Err(e) => {
                self.unauthenticated += 1;
                tracing::trace!("unauthenticated datagram: {e}");
                return;
            }
        };
        self.last_heard = now;
        self.relay_silent = false;
        let packet = match MediaPacket::decode(packet) {
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
            MediaPacket::Audio { sender_id, header, sealed } => {
                self.on_audio(now, unix_us, sender_id, &header, sealed, len)
            }
            MediaPacket::ScreenFragment { sender_id, header, payload } => {
                self.on_screen(now, sender_id, &header, payload, len)
            }
            MediaPacket::RefreshRequest { source_id, ranges, .. } if source_id == self.my_id => {
                self.emit(ReceiveEvent::RefreshRequested(ranges.as_slice().to_vec()));
            }
            MediaPacket::ReceiverReport { sender_id, report }
                if report.source_id == self.my_id && report.media == MediaKind::Screen =>
            {
                let loss = f64::from(report.loss_permille) / 1000.0;
                if sender_id == RELAY_SENDER_ID {
                    self.uplink_screen = Some((loss, now));
                } else if self.screen_reports.contains_key(&sender_id) || self.screen_reports.len() < MAX_REMOTES {
                    self.screen_reports.insert(sender_id, (loss, now));
                }
            }
            MediaPacket::ReceiverReport { report, .. }
                if report.source_id == self.my_id && report.media == MediaKind::Audio =>
            {
                self.redundancy.on_report(now, f64::from(report.loss_permille) / 1000.0, report.loss_runs);
                self.announce_redundancy(now);
            }
            MediaPacket::ReceiverReport { sender_id, report }
                if report.source_id == self.my_id && report.media == MediaKind::Video =>
            {
                let loss = f64::from(report.loss_permille) / 1000.0;
                if sender_id == RELAY_SENDER_ID {
                    self.uplink_video = Some((loss, now));
                } else if self.receiver_reports.contains_key(&sender_id) || self.receiver_reports.len() < MAX_REMOTES {
                    self.receiver_reports.insert(sender_id, (loss, now));
                }
            }
            MediaPacket::RttReply { sender_id: RELAY_SENDER_ID, echo } => {
                if let Some(pos) = self.echoes.iter().position(|(id, _)| *id == echo.echo_id) {
                    if let Some((_, sent)) = self.echoes.remove(pos) {
                        self.rtt.on_sample(now.saturating_duration_since(sent));
                    }
                }
            }
            MediaPacket::RttRequest { sender_id: RELAY_SENDER_ID, echo } => {
                self.transmit(MediaPacket::RttReply { sender_id: self.my_id, echo });
            }
            _ => {}
        }
    }

    /// Runs whatever periodic work is due at `now`. `read_local` is called only when a stats
    /// tick is due.
    pub(crate) fn handle_timeout(&mut self, now: Instant, unix_us: u64, read_local: impl FnOnce() -> LocalReadings) {
        if !self.relay_silent && now >= self.last_heard + RELAY_SILENCE {
            self.relay_silent = true;
            self.emit(ReceiveEvent::RelaySilent);
        }
        if self.timers.early_keepalives_left > 0 && now >= self.timers.early_keepalive {
            self.timers.early_keepalives_left -= 1;
            self.timers.early_keepalive = now + EARLY_KEEPALIVE_EVERY;
            self.send_keepalive();
        }
        if now >= self.timers.assembler {
            let mut requests = Vec::new();
            let rtt = self.rtt.smoothed();
            for (id, r) in self.remotes.iter_mut() {
                r.assembler.handle_timeout(now);
                r.screen.assembler.handle_timeout(now);
                let sharing = r.screen.last_slice.is_some_and(|t| now.saturating_duration_since(t) < SCREEN_IDLE);
                if sharing {
                    if let Some(ranges) =
                        r.screen.receiver.poll_refresh(now, rtt).as_deref().and_then(RefreshRanges::new)
                    {
                        requests.push((*id, ranges));
                    }
                }
            }
            for (source_id, ranges) in requests {
                self.transmit(MediaPacket::RefreshRequest { sender_id: self.my_id, source_id, ranges });
            }
            while self.timers.assembler <= now {
                self.timers.assembler += ASSEMBLER_TICK;
            }
        }
        if now >= self.timers.tick {
            let scheduled = self.timers.tick;
            self.timers.tick = if now > scheduled + TICK_LATE_SLACK { now + TICK } else { scheduled + TICK };
            self.tick(now, scheduled, unix_us, read_local());
        }
    }

    /// A participant left: forget them, and ignore their media still in flight for a while.
    pub(crate) fn participant_left(&mut self, now: Instant, id: u32) {
        self.departed.retain(|_, at| now.saturating_duration_since(*at) < DEPARTED_QUARANTINE);
        if self.departed.len() < MAX_REMOTES {
            self.departed.insert(id, now);
        }
        self.remotes.remove(&id);
        self.receiver_reports.remove(&id);
        self.screen_reports.remove(&id);
        self.opener.forget_sender(id);
    }

    fn transmit(&mut self, packet: MediaPacket<'_>) {
        match self.hop_out.to_vec(&packet) {
            Ok(out) => {
                if self.transmits.len() < MAX_TRANSMITS {
                    self.transmits.push_back(out);
                } else {
                    self.overflowed += 1;
                }
            }
            Err(e) => tracing::warn!("cannot encode {:?}: {e}", packet.kind()),
        }
    }

    fn emit(&mut self, event: ReceiveEvent) {
        if self.events.len() < MAX_EVENTS {
            self.events.push_back(event);
        } else {
            self.overflowed += 1;
        }
    }

    fn send_keepalive(&mut self) {
        self.transmit(MediaPacket::Keepalive { sender_id: self.my_id });
    }

    fn announce_redundancy(&mut self, now: Instant) {
        let depth = self.redundancy.depth(now);
        if depth != self.redundancy_depth {
            self.redundancy_depth = depth;
            self.emit(ReceiveEvent::Redundancy(depth));
        }
    }

    /// Whether media from `id` is taken: not from us or the relay, not from someone who just
    /// left, and within the number of senders tracked.
    fn admits(&self, id: u32, now: Instant) -> bool {
        if id == RELAY_SENDER_ID || id == self.my_id {
            return false;
        }
        if self.remotes.contains_key(&id) {
            return true;
        }
        // Packets still in flight from someone who just left must not bring them back.
        self.remotes.len() < MAX_REMOTES
            && self.departed.get(&id).is_none_or(|at| now.saturating_duration_since(*at) >= DEPARTED_QUARANTINE)
    }

    fn remote(&mut self, id: u32, now: Instant) -> Option<&mut Remote> {
        if !self.admits(id, now) {
            return None;
        }
        let r = self.remotes.entry(id).or_insert_with(|| Remote::new(now));
        r.last_seen = now;
        Some(r)
    }

    fn on_video(&mut self, now: Instant, sender: u32, header: &VideoHeader, payload: &[u8], len: u64) {
        let Some(r) = self.remote(sender, now) else { return };
        r.video_loss.on_packet(header.seq);
        r.video_jitter.on_packet(now, header.capture_ts_us);
        r.video_packets += 1;
        r.bytes_interval += len;
        let Some(mut frame) = r.assembler.push(now, header, payload) else { return };
        if !self.open_frame(sender, VideoStream::Camera, &frame) {
            return;
        }
        std::mem::swap(&mut frame.data, &mut self.opened);
        self.emit(ReceiveEvent::Frame { sender, frame });
    }

    /// Opens `sender`'s assembled `frame` of `stream` into `self.opened`: false (and
    /// counted as undecryptable) if it does not open.
    fn open_frame(&mut self, sender: u32, stream: VideoStream, frame: &AssembledFrame) -> bool {
        let meta = VideoFrameMeta {
            stream,
            sender_id: sender,
            frame_id: frame.frame_id,
            capture_ts_us: frame.capture_ts_us,
            width: frame.width,
            height: frame.height,
        };
        match self.opener.open(sender, &meta.aad(), &frame.data, &mut self.opened) {
            Ok(_) => true,
            Err(e) => {
                self.undecryptable += 1;
                tracing::trace!(sender, ?stream, "frame does not open: {e}");
                false
            }
        }
    }

    /// Tiles of `sender`'s screen that arrived but could not be drawn: stale, asked for again.
    pub(crate) fn screen_tiles_lost(&mut self, now: Instant, sender: u32, tiles: &[u32]) {
        if let Some(r) = self.remotes.get_mut(&sender) {
            r.screen.receiver.on_tiles_lost(now, tiles);
        }
    }

    /// A participant stopped sharing its screen: its canvas state goes, and it is asked for
    /// nothing more.
    pub(crate) fn screen_stopped(&mut self, id: u32) {
        if let Some(r) = self.remotes.get_mut(&id) {
            r.screen = RemoteScreen::new();
        }
    }

    fn on_screen(&mut self, now: Instant, sender: u32, header: &VideoHeader, payload: &[u8], len: u64) {
        let Some(r) = self.remote(sender, now) else { return };
        let screen = &mut r.screen;
        screen.loss.on_packet(header.seq);
        screen.jitter.on_packet(now, header.capture_ts_us);
        screen.packets += 1;
        screen.bytes_interval += len;
        r.bytes_interval += len;
        let Some(frame) = screen.assembler.push(now, header, payload) else { return };
        if !self.open_frame(sender, VideoStream::Screen, &frame) {
            return;
        }
        let Ok(grid) = TileGrid::new(frame.width.into(), frame.height.into()) else {
            self.malformed += 1;
            return;
        };
        let slice = match ScreenSlice::decode(&self.opened, &grid) {
            Ok(slice) => slice,
            Err(e) => {
                self.malformed += 1;
                tracing::trace!(sender, "malformed screen slice: {e}");
                return;
            }
        };
        let Some(r) = self.remotes.get_mut(&sender) else { return };
        let screen = &mut r.screen;
        screen.last_slice = Some(now);
        let Some(reset) = screen.receiver.on_slice(now, frame.frame_id, grid, &slice) else { return };
        screen.slices += 1;
        let job = SliceJob {
            grid,
            reset,
            frame_id: frame.frame_id,
            capture_ts_us: frame.capture_ts_us,
            tiles: slice.tiles().collect(),
            jpeg: slice.jpeg.to_vec(),
            ends_update: slice.header.slice_index + 1 == slice.header.slice_count,
            has_picture: screen.receiver.has_picture(),
        };
        self.emit(ReceiveEvent::ScreenSlice { sender, job: Box::new(job) });
    }

    /// The seat resumed on a new control connection at `now`: datagrams are sealed and opened
    /// with its keys from now on (numbered from 0 both ways), and the relay, which learns our
    /// address from an authentic keepalive, gets one at once and a few more shortly after.
    /// The silence clock starts again: the relay had no route for us until the resume.
    pub(crate) fn rekey(&mut self, now: Instant, hop: &HopSecret) {
        self.hop_out.rekey(hop.to_relay());
        self.hop_in = HopReceiver::new(hop.from_relay());
        self.last_heard = now;
        self.relay_silent = false;
        self.timers.early_keepalive = now + EARLY_KEEPALIVE_EVERY;
        self.timers.early_keepalives_left = EARLY_KEEPALIVES;
        self.send_keepalive();
    }

    /// Installs a new meeting key (the previous one keeps opening media still in flight).
    pub(crate) fn install_media_key(&mut self, key: MeetingKey) {
        self.opener.install(key);
    }

    fn on_audio(&mut self, now: Instant, unix_us: u64, sender: u32, header: &AudioHeader, sealed: &[u8], len: u64) {
        if header.sample_rate != SAMPLE_RATE || header.channels != 1 {
            self.malformed += 1;
            return;
        }
        if !self.admits(sender, now) {
            return;
        }
        if let Err(e) = self.opener.open(sender, &header.aad(sender), sealed, &mut self.opened) {
            self.undecryptable += 1;
            tracing::trace!(sender, "audio packet does not open: {e}");
            return;
        }
        let opened = std::mem::take(&mut self.opened);
        self.on_opened_audio(now, unix_us, sender, header, &opened, len);
        self.opened = opened;
    }

    fn on_opened_audio(
        &mut self,
        now: Instant,
        unix_us: u64,
        sender: u32,
        header: &AudioHeader,
        opened: &[u8],
        len: u64,
    ) {
        let Ok(AudioPayload { pcm: payload, copies }) = AudioPayload::decode(opened, header.channels) else {
            self.malformed += 1;
            return;
        };
        if payload.len() != FRAME_SAMPLES * 2 {
            self.malformed += 1;
            return;
        }
        let Some(r) = self.remote(sender, now) else { return };
        r.audio_loss.on_packet(header.seq);
        r.audio_jitter.on_packet(now, header.capture_ts_us);
        r.audio_packets += 1;
        r.bytes_interval += len;
        r.audio_latency.record_us(header.capture_ts_us, unix_us);
        let mut samples = [0i16; FRAME_SAMPLES];
        for (s, b) in samples.iter_mut().zip(payload.chunks_exact(2)) {
            *s = i16::from_be_bytes([b[0], b[1]]);
        }
        // The decoder checked each copy's length against the frame's.
        let copies = copies.map(|c| c.as_ref().and_then(CarriedCopy::from_copy));
        self.emit(ReceiveEvent::Audio(Box::new(AudioArrival { sender, seq: header.seq, at: now, samples, copies })));
    }

    /// The once-a-second work; `scheduled` is when the tick was due (the controller's clock).
    fn tick(&mut self, now: Instant, scheduled: Instant, unix_us: u64, local: LocalReadings) {
        self.ticks += 1;
        self.send_keepalive();

        let echo_id = self.next_echo;
        self.next_echo = self.next_echo.wrapping_add(1);
        self.echoes.push_back((echo_id, now));
        while self.echoes.len() > ECHOS_REMEMBERED {
            self.echoes.pop_front();
        }
        self.transmit(MediaPacket::RttRequest {
            sender_id: self.my_id,
            echo: RttEcho { echo_id, sent_ts_us: unix_us },
        });

        let opener = &mut self.opener;
        self.remotes.retain(|id, r| {
            let live = now.saturating_duration_since(r.last_seen) < REMOTE_IDLE;
            if !live {
                opener.forget_sender(*id);
            }
            live
        });
        self.announce_redundancy(now);
        self.send_receiver_reports();
        self.adapt(now, scheduled, local.loss_override);
        let snapshot = self.snapshot(now, unix_us, local);
        self.last_snapshot = now;
        if self.ticks.is_multiple_of(RELAY_REPORT_EVERY) {
            self.emit(ReceiveEvent::RelayReport(relay_report(&snapshot)));
        }
        self.emit(ReceiveEvent::Stats(Box::new(snapshot)));
    }

    fn send_receiver_reports(&mut self) {
        let mut reports = Vec::with_capacity(self.remotes.len() * 2);
        for (id, r) in self.remotes.iter_mut() {
            for (media, loss, jitter, last) in [
                (MediaKind::Video, &mut r.video_loss, &r.video_jitter, &mut r.last_video_interval),
                (MediaKind::Audio, &mut r.audio_loss, &r.audio_jitter, &mut r.last_audio_interval),
                (MediaKind::Screen, &mut r.screen.loss, &r.screen.jitter, &mut r.screen.last_interval),
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
                    loss_runs: interval.loss_runs,
                });
                *last = Some(interval);
            }
        }
        for report in reports {
            self.transmit(MediaPacket::ReceiverReport { sender_id: self.my_id, report });
        }
    }

    /// Feeds the quality controller. The loss figure is the worse of what the relay saw on
    /// our uplink and the median of what our receivers saw: the median, because the relay
    /// thins frames for a receiver on a bad link, so one bad receiver should not make
    /// everyone else watch 144p.
    fn adapt(&mut self, now: Instant, scheduled: Instant, loss_override: Option<f64>) {
        let uplink =
            self.uplink_video.filter(|(_, at)| now.saturating_duration_since(*at) < REPORT_FRESHNESS).map(|(l, _)| l);
        self.receiver_reports.retain(|_, (_, at)| now.saturating_duration_since(*at) < REPORT_FRESHNESS);
        let mut fresh: Vec<f64> = self.receiver_reports.values().map(|(l, _)| *l).collect();
        let receivers = median(&mut fresh);
        self.last_receivers_loss = receivers;
        let measured = uplink.unwrap_or(0.0).max(receivers.unwrap_or(0.0));
        let loss = loss_override.unwrap_or(measured);
        self.last_input_loss = loss;
        let input = QualityInput { loss, rtt: self.rtt.smoothed() };
        if let Some(setting) = self.controller.on_interval(scheduled, input) {
            tracing::info!(level = setting.level, loss, "quality level changed");
            let info = quality_info(&setting, self.controller.level_changes(), &LADDER);
            self.emit(ReceiveEvent::QualityChanged { setting, info });
        }

        // The screen ladder, the same way on the screen stream's reports.
        let uplink =
            self.uplink_screen.filter(|(_, at)| now.saturating_duration_since(*at) < REPORT_FRESHNESS).map(|(l, _)| l);
        self.screen_reports.retain(|_, (_, at)| now.saturating_duration_since(*at) < REPORT_FRESHNESS);
        let mut fresh: Vec<f64> = self.screen_reports.values().map(|(l, _)| *l).collect();
        let receivers = median(&mut fresh);
        self.last_screen_receivers_loss = receivers;
        let loss = uplink.unwrap_or(0.0).max(receivers.unwrap_or(0.0));
        let permille = (loss * 1000.0).round() as u16;
        if permille != self.last_screen_loss_permille {
            self.last_screen_loss_permille = permille;
            self.emit(ReceiveEvent::ScreenLoss(permille));
        }
        let input = QualityInput { loss, rtt: self.rtt.smoothed() };
        if let Some(setting) = self.screen_controller.on_interval(scheduled, input) {
            tracing::info!(level = setting.level, loss, "screen quality level changed");
            self.emit(ReceiveEvent::ScreenQualityChanged(setting));
        }
    }

    fn snapshot(&mut self, now: Instant, unix_us: u64, local: LocalReadings) -> StatsSnapshot {
        let secs = now.saturating_duration_since(self.last_snapshot).as_secs_f64().max(0.001);
        let kbps = |bytes: u64| bytes as f64 * 8.0 / 1000.0 / secs;

        let vo = local.video_out;
        let new_frames = vo.frames.saturating_sub(self.previous.video_frames);
        let video_out = VideoOutStats {
            enabled: vo.active,
            source: vo.source,
            frames_sent: vo.frames,
            packets_sent: vo.packets,
            fps: new_frames as f64 / secs,
            bitrate_kbps: kbps(vo.bytes.saturating_sub(self.previous.video_bytes)),
            last_frame_bytes: vo.last_frame_bytes,
            last_frame_width: vo.last_width,
            last_frame_height: vo.last_height,
            encode_ms: if new_frames > 0 {
                vo.encode_us.saturating_sub(self.previous.encode_us) as f64 / 1000.0 / new_frames as f64
            } else {
                0.0
            },
            send_errors: vo.send_errors,
        };
        let ao = local.audio_out;
        let audio_out = AudioOutStats {
            enabled: ao.active,
            source: ao.source,
            frames_sent: ao.frames,
            bitrate_kbps: kbps(ao.bytes.saturating_sub(self.previous.audio_bytes)),
            level_dbfs: ao.level_dbfs,
            speaking: ao.speaking,
            redundancy: self.redundancy_depth > 0,
            redundancy_depth: self.redundancy_depth as u8,
            echo_cancellation: ao.voice.echo_cancellation,
            noise_suppression: ao.voice.noise_suppression,
            gain_control: ao.voice.gain_control,
            aec_delay_ms: ao.voice_stats.aec_delay_ms,
            erle_db: ao.voice_stats.erle_db,
        };
        let so = local.screen_out;
        let prev = &self.previous.screen;
        let new_updates = so.updates.saturating_sub(prev.updates);
        let compared = so.tiles_compared.saturating_sub(prev.tiles_compared);
        let screen_out = ScreenOutStats {
            enabled: so.active,
            source: so.source.clone(),
            quality: quality_info(
                &self.screen_controller.setting(),
                self.screen_controller.level_changes(),
                &protocol::quality::SCREEN_LADDER,
            ),
            width: so.last_width,
            height: so.last_height,
            fps: new_updates as f64 / secs,
            updates_sent: so.updates,
            slices_sent: so.slices,
            bitrate_kbps: kbps(so.bytes.saturating_sub(prev.bytes)),
            changed_fraction: if compared > 0 {
                so.tiles_changed.saturating_sub(prev.tiles_changed) as f64 / compared as f64
            } else {
                0.0
            },
            encode_ms: if new_updates > 0 {
                so.encode_us.saturating_sub(prev.encode_us) as f64 / 1000.0 / new_updates as f64
            } else {
                0.0
            },
            uplink_loss: self.uplink_screen.map(|(l, _)| l),
            receivers_loss: self.last_screen_receivers_loss,
        };
        let bitrate_out_kbps = video_out.bitrate_kbps + audio_out.bitrate_kbps + screen_out.bitrate_kbps;
        self.previous = PreviousTotals {
            video_frames: vo.frames,
            video_bytes: vo.bytes,
            audio_bytes: ao.bytes,
            encode_us: vo.encode_us,
            screen: so,
        };

        let mut streams = Vec::with_capacity(self.remotes.len());
        let mut bitrate_in_kbps = 0.0;
        for (&id, r) in self.remotes.iter_mut() {
            let dec = local.decoded.get(&id);
            let decoded = dec.map_or(0, |d| d.frames);
            let video = VideoInStats {
                frames_received: decoded,
                packets_received: r.video_packets,
                fps: decoded.saturating_sub(r.prev_decoded) as f64 / secs,
                loss: r.last_video_interval.as_ref().map_or(0.0, |i| i.fraction),
                cumulative_lost: r.video_loss.cumulative_lost(),
                jitter_ms: r.video_jitter.jitter().as_secs_f64() * 1000.0,
                frames_incomplete: r.assembler.stats().incomplete,
                frames_skipped: dec.map_or(0, |d| d.skipped),
                decode_errors: dec.map_or(0, |d| d.errors),
                last_width: dec.map_or(0, |d| d.last_width),
                last_height: dec.map_or(0, |d| d.last_height),
                latency_p50_ms: dec.and_then(|d| d.latency_p50_ms),
                latency_p95_ms: dec.and_then(|d| d.latency_p95_ms),
            };
            r.prev_decoded = decoded;
            let js = local.jitter.get(&id);
            let (level_dbfs, speaking) = local.levels.get(&id).copied().unwrap_or((-120.0, false));
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
                accelerated_frames: js.map_or(0, |s| s.accelerated_frames),
                latency_p50_ms: r.audio_latency.percentile_ms(0.5),
                latency_p95_ms: r.audio_latency.percentile_ms(0.95),
                level_dbfs,
                speaking,
            };
            let sc = &mut r.screen;
            let screen = sc.receiver.grid().map(|grid| ScreenInStats {
                width: grid.width,
                height: grid.height,
                slices_received: sc.slices,
                packets_received: sc.packets,
                slices_per_second: sc.slices.saturating_sub(sc.prev_slices) as f64 / secs,
                bitrate_kbps: kbps(sc.bytes_interval),
                loss: sc.last_interval.as_ref().map_or(0.0, |i| i.fraction),
                jitter_ms: sc.jitter.jitter().as_secs_f64() * 1000.0,
                stale_tiles: sc.receiver.stale_tiles(),
                stale_ms: sc.receiver.stale_for(now).as_secs_f64() * 1000.0,
                longest_stale_ms: sc.receiver.longest_stale.as_secs_f64() * 1000.0,
                refreshes_requested: sc.receiver.refreshes_requested,
                latency_p50_ms: dec.and_then(|d| d.screen_latency_p50_ms),
                latency_p95_ms: dec.and_then(|d| d.screen_latency_p95_ms),
            });
            sc.prev_slices = sc.slices;
            sc.bytes_interval = 0;
            let bitrate_kbps = kbps(r.bytes_interval);
            r.bytes_interval = 0;
            bitrate_in_kbps += bitrate_kbps;
            streams.push(RemoteStreamStats { participant_id: id, video, audio, screen, bitrate_kbps });
        }

        StatsSnapshot {
            timestamp_ms: unix_us / 1000,
            participant_id: self.my_id,
            rtt_ms: self.rtt.smoothed().map(|d| d.as_secs_f64() * 1000.0),
            rtt_latest_ms: self.rtt.latest().map(|d| d.as_secs_f64() * 1000.0),
            quality: quality_info(&self.controller.setting(), self.controller.level_changes(), &LADDER),
            quality_input_loss: self.last_input_loss,
            uplink_video_loss: self.uplink_video.map(|(l, _)| l),
            receivers_video_loss: self.last_receivers_loss,
            video_out,
            audio_out,
            screen_out,
            streams,
            bitrate_in_kbps,
            bitrate_out_kbps,
            malformed_packets: self.malformed,
            unauthenticated_packets: self.unauthenticated,
            replayed_packets: self.replayed,
            undecryptable_media: self.undecryptable,
            files: local.files,
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

pub(crate) fn quality_info(s: &QualitySetting, level_changes: u32, ladder: &[QualityLevel]) -> QualityInfo {
    QualityInfo {
        level: s.level,
        name: ladder.get(s.level).map(|l| l.name.to_string()).unwrap_or_default(),
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
mod tests;
