//! [`ReceiveCore`] driven by a simulated clock: no sockets, no sleeps, every instant chosen.

use super::*;
use protocol::e2ee::{MediaSealer, MeetingKey};
use protocol::hop::{HopSecret, HOP_SECRET_LEN, HOP_TRAILER_LEN};
use protocol::media::{AudioCopy, AudioHeader, AudioPayload, CopyEncoding};
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

const ME: u32 = 1;
const ALICE: u32 = 7;
const BOB: u32 = 8;
const CAROL: u32 = 9;
/// The keys our control connection's TLS session would export.
fn secret() -> HopSecret {
    HopSecret::new([0x5e; HOP_SECRET_LEN])
}

/// The relay's end of our hop: what seals the datagrams the tests deliver. One counter for
/// every test, so each datagram a test makes is new to its core.
static RELAY: LazyLock<HopSender> = LazyLock::new(|| HopSender::new(secret().from_relay()));

/// The meeting key everyone in the tests holds.
fn meeting_key() -> MeetingKey {
    MeetingKey::from_bytes(1, [0x4b; 32])
}

/// Each remote participant's end-to-end sealer, shared by every test (one counter each).
static SEALERS: LazyLock<Mutex<HashMap<u32, MediaSealer>>> = LazyLock::new(Mutex::default);

/// `plain` sealed by `sender` under `key`, as its client would.
fn seal_with(key: &MeetingKey, sender: u32, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    let mut sealers = SEALERS.lock().unwrap();
    let sealer = sealers.entry(sender).or_insert_with(|| MediaSealer::new(sender));
    sealer.set_key(key).unwrap();
    let mut out = Vec::new();
    sealer.seal(aad, plain, &mut out).unwrap();
    out
}

/// A core, a clock, and everything it has sent and announced so far.
struct Sim {
    core: ReceiveCore,
    t0: Instant,
    now: Instant,
    unix0_us: u64,
    readings: LocalReadings,
    sent: Vec<Vec<u8>>,
    events: Vec<ReceiveEvent>,
}

impl Sim {
    fn new() -> Self {
        Self::with_quality(QualityConfig::default())
    }

    fn with_quality(quality: QualityConfig) -> Self {
        let t0 = Instant::now();
        let config = ReceiveConfig {
            my_id: ME,
            hop_out: Arc::new(HopSender::new(secret().to_relay())),
            hop_in: HopReceiver::new(secret().from_relay()),
            quality,
            opener: {
                let mut opener = MediaOpener::new();
                opener.install(meeting_key());
                opener
            },
        };
        let core = ReceiveCore::new(config, t0);
        Self {
            core,
            t0,
            now: t0,
            unix0_us: 1_800_000_000_000_000,
            readings: LocalReadings::default(),
            sent: Vec::new(),
            events: Vec::new(),
        }
    }

    fn unix_us(&self) -> u64 {
        self.unix0_us + self.now.duration_since(self.t0).as_micros() as u64
    }

    fn drain(&mut self) {
        while let Some(d) = self.core.poll_transmit() {
            self.sent.push(d);
        }
        while let Some(e) = self.core.poll_event() {
            self.events.push(e);
        }
    }

    /// Moves the clock forward by `d`, running every timeout that falls due on the way, as
    /// the driver would.
    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        loop {
            let deadline = self.core.next_deadline();
            if deadline > end {
                break;
            }
            self.now = self.now.max(deadline);
            let readings = self.readings.clone();
            let (now, unix) = (self.now, self.unix_us());
            self.core.handle_timeout(now, unix, || readings);
            self.drain();
        }
        self.now = end;
    }

    /// Runs whatever is due at exactly `at` (which may be late for some timer).
    fn timeout_at(&mut self, at: Instant) {
        self.now = at;
        let readings = self.readings.clone();
        let unix = self.unix_us();
        self.core.handle_timeout(at, unix, || readings);
        self.drain();
    }

    fn receive(&mut self, datagram: &[u8]) {
        let (now, unix) = (self.now, self.unix_us());
        self.core.handle_datagram(now, unix, datagram);
        self.drain();
    }

    /// What the core sent, as the relay reads it: every datagram authentic and new.
    fn sent_packets(&self) -> Vec<MediaPacket<'_>> {
        let mut relay = HopReceiver::new(secret().to_relay());
        self.sent
            .iter()
            .map(|d| {
                relay.open(d).expect("the core seals what it sends");
                MediaPacket::decode(&d[..d.len() - HOP_TRAILER_LEN]).expect("the core sends valid packets")
            })
            .collect()
    }

    fn keepalives(&self) -> usize {
        self.sent_packets().iter().filter(|p| matches!(p, MediaPacket::Keepalive { .. })).count()
    }

    fn rtt_requests(&self) -> Vec<RttEcho> {
        self.sent_packets()
            .into_iter()
            .filter_map(|p| match p {
                MediaPacket::RttRequest { sender_id: ME, echo } => Some(echo),
                _ => None,
            })
            .collect()
    }

    fn reports(&self) -> Vec<ReceiverReport> {
        self.sent_packets()
            .into_iter()
            .filter_map(|p| match p {
                MediaPacket::ReceiverReport { sender_id: ME, report } => Some(report),
                _ => None,
            })
            .collect()
    }

    fn stats(&self) -> Vec<&StatsSnapshot> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ReceiveEvent::Stats(s) => Some(s.as_ref()),
                _ => None,
            })
            .collect()
    }

    fn last_stats(&self) -> &StatsSnapshot {
        self.stats().last().copied().expect("a stats snapshot")
    }

    fn stream(&self, id: u32) -> Option<&RemoteStreamStats> {
        self.last_stats().streams.iter().find(|s| s.participant_id == id)
    }

    fn quality_levels(&self) -> Vec<usize> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ReceiveEvent::QualityChanged { setting, info } => {
                    assert_eq!(setting.level, info.level);
                    Some(setting.level)
                }
                _ => None,
            })
            .collect()
    }

    fn audio_arrivals(&self) -> Vec<&AudioArrival> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ReceiveEvent::Audio(a) => Some(a.as_ref()),
                _ => None,
            })
            .collect()
    }

    fn frames(&self) -> Vec<(u32, &AssembledFrame)> {
        self.events
            .iter()
            .filter_map(|e| match e {
                ReceiveEvent::Frame { sender, frame } => Some((*sender, frame)),
                _ => None,
            })
            .collect()
    }

    fn clear(&mut self) {
        self.sent.clear();
        self.events.clear();
    }
}

/// `packet` as the relay sends it to us: sealed with our from-relay key.
fn encode(packet: MediaPacket<'_>) -> Vec<u8> {
    RELAY.to_vec(&packet).expect("a valid test packet")
}

/// An audio packet whose samples all equal `seq` (so order can be checked), with an optional
/// µ-law copy of the frame before.
fn audio(sender_id: u32, seq: u32, capture_ts_us: u64, redundant: Option<&[u8]>) -> Vec<u8> {
    let sample = (seq as i16).to_be_bytes();
    let payload: Vec<u8> = std::iter::repeat_n(sample, FRAME_SAMPLES).flatten().collect();
    let header = AudioHeader { seq, capture_ts_us, sample_rate: SAMPLE_RATE, channels: 1 };
    audio_packet(&meeting_key(), sender_id, header, &payload, redundant)
}

/// An audio packet of any header and PCM, sealed under `key`.
fn audio_packet(
    key: &MeetingKey,
    sender_id: u32,
    header: AudioHeader,
    pcm: &[u8],
    redundant: Option<&[u8]>,
) -> Vec<u8> {
    let mut plain = Vec::new();
    let mut payload = AudioPayload::plain(pcm);
    payload.copies[0] = redundant.map(|bytes| AudioCopy { encoding: CopyEncoding::MuLaw, bytes });
    payload.encode_into(&mut plain).unwrap();
    let sealed = seal_with(key, sender_id, &header.aad(sender_id), &plain);
    encode(MediaPacket::Audio { sender_id, header, sealed: &sealed })
}

/// The fragments of frame `frame_id` whose picture is `plain`, sealed under `key` and cut in
/// `count` pieces, with sequence numbers from `first_seq`.
fn sealed_video_with(
    key: &MeetingKey,
    sender_id: u32,
    frame_id: u32,
    first_seq: u32,
    plain: &[u8],
    count: u16,
) -> Vec<Vec<u8>> {
    let meta = VideoFrameMeta {
        stream: protocol::media::VideoStream::Camera,
        sender_id,
        frame_id,
        capture_ts_us: 1_000 * u64::from(frame_id),
        width: 640,
        height: 480,
    };
    let sealed = seal_with(key, sender_id, &meta.aad(), plain);
    let piece = sealed.len().div_ceil(usize::from(count));
    sealed
        .chunks(piece)
        .enumerate()
        .map(|(i, chunk)| video(sender_id, frame_id, first_seq + i as u32, (i as u16, count), chunk))
        .collect()
}

fn sealed_video(sender_id: u32, frame_id: u32, first_seq: u32, plain: &[u8], count: u16) -> Vec<Vec<u8>> {
    sealed_video_with(&meeting_key(), sender_id, frame_id, first_seq, plain, count)
}

fn video(sender_id: u32, frame_id: u32, seq: u32, frag: (u16, u16), payload: &[u8]) -> Vec<u8> {
    encode(MediaPacket::VideoFragment {
        sender_id,
        header: VideoHeader {
            frame_id,
            capture_ts_us: 1_000 * u64::from(frame_id),
            seq,
            width: 640,
            height: 480,
            frag_index: frag.0,
            frag_count: frag.1,
        },
        payload,
    })
}

fn report_on_me(from: u32, media: MediaKind, loss_permille: u16) -> Vec<u8> {
    report_on_me_with_runs(from, media, loss_permille, [0; 4])
}

fn report_on_me_with_runs(from: u32, media: MediaKind, loss_permille: u16, loss_runs: [u16; 4]) -> Vec<u8> {
    encode(MediaPacket::ReceiverReport {
        sender_id: from,
        report: ReceiverReport {
            source_id: ME,
            media,
            loss_permille,
            highest_seq: 100,
            cumulative_lost: 0,
            jitter_us: 0,
            loss_runs,
        },
    })
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn first_tick_is_due_at_once_then_keepalives_follow_quickly_then_every_second() {
    let mut sim = Sim::new();
    assert_eq!(sim.core.next_deadline(), sim.t0);
    sim.advance(Duration::ZERO);
    assert_eq!(sim.keepalives(), 1);
    assert_eq!(sim.rtt_requests().len(), 1);
    assert_eq!(sim.stats().len(), 1);
    assert!(matches!(sim.sent_packets()[0], MediaPacket::Keepalive { sender_id: ME }));

    sim.advance(ms(999));
    assert_eq!(sim.keepalives(), 4, "three early keepalives in the first second, in case the first is lost");
    assert_eq!(sim.stats().len(), 1);

    sim.advance(ms(1));
    assert_eq!(sim.stats().len(), 2);
    sim.advance(Duration::from_secs(8));
    assert_eq!(sim.stats().len(), 10);
    assert_eq!(sim.keepalives(), 13, "one per tick after the early ones");
    assert_eq!(sim.rtt_requests().len(), 10);
    let ids: Vec<u32> = sim.rtt_requests().iter().map(|e| e.echo_id).collect();
    assert_eq!(ids, (1..=10).collect::<Vec<_>>());
    assert_eq!(sim.rtt_requests()[3].sent_ts_us, sim.unix0_us + 3_000_000, "requests carry the wall clock");
}

#[test]
fn a_late_tick_restarts_the_grid_instead_of_catching_up() {
    let mut sim = Sim::new();
    sim.timeout_at(sim.t0);
    sim.timeout_at(sim.t0 + ms(2_500));
    assert_eq!(sim.stats().len(), 2, "one tick for the missed ones, not two");
    sim.timeout_at(sim.t0 + ms(3_000));
    assert_eq!(sim.stats().len(), 2, "the next tick is a period after the late one ran");
    sim.timeout_at(sim.t0 + ms(3_500));
    assert_eq!(sim.stats().len(), 3);
}

#[test]
fn audio_loss_and_reordering_reach_the_reports_and_the_stats() {
    let mut sim = Sim::new();
    sim.advance(Duration::ZERO);
    sim.clear();
    // 50 packets, 20 ms apart; 10..15 lost, 20 and 21 swapped.
    let mut order: Vec<u32> = (0..50).filter(|s| !(10..15).contains(s)).collect();
    let (a, b) = (order.iter().position(|&s| s == 20).unwrap(), order.iter().position(|&s| s == 21).unwrap());
    order.swap(a, b);
    for seq in order {
        sim.receive(&audio(ALICE, seq, sim.unix_us(), None));
        sim.advance(ms(19));
    }
    let arrived: Vec<u32> = sim.audio_arrivals().iter().map(|a| a.seq).collect();
    assert_eq!(arrived.len(), 45);
    assert_eq!(&arrived[14..17], &[19, 21, 20], "arrivals keep their order; the jitter buffer sorts them");
    assert!(sim.audio_arrivals().iter().all(|a| a.sender == ALICE && a.samples.iter().all(|&s| s == a.seq as i16)));

    sim.advance(Duration::from_secs(1));
    let report = sim.reports().into_iter().find(|r| r.source_id == ALICE && r.media == MediaKind::Audio).unwrap();
    assert_eq!(report.loss_permille, 100, "5 of 50 lost; the swap is not loss");
    assert_eq!(report.cumulative_lost, 5);
    assert_eq!(report.highest_seq, 49);
    assert!(
        !sim.reports().iter().any(|r| r.source_id == ALICE && r.media == MediaKind::Video),
        "no report on a stream that sent nothing"
    );
    let stream = sim.stream(ALICE).unwrap();
    assert_eq!(stream.audio.packets_received, 45);
    assert_eq!(stream.audio.cumulative_lost, 5);
    assert!((stream.audio.loss - 0.1).abs() < 1e-9);
    assert!(stream.audio.latency_p50_ms.is_some());
    assert!(stream.bitrate_kbps > 0.0);
}

#[test]
fn delivered_audio_fills_a_gap_from_the_next_packets_redundant_copy() {
    let mut sim = Sim::new();
    let copy = [0x55u8; FRAME_SAMPLES];
    for seq in [0, 1, 3] {
        let redundant = (seq == 3).then_some(&copy[..]);
        sim.receive(&audio(ALICE, seq, sim.unix_us(), redundant));
        sim.now += ms(20);
    }
    // Frame 2 is missing when packet 3 brings its copy; frame 3 is there when packet 4 does.
    sim.receive(&audio(ALICE, 4, sim.unix_us(), Some(&copy)));
    let mut buffers = BTreeMap::new();
    for arrival in sim.audio_arrivals() {
        assert!(arrival.clone().deliver(&mut buffers));
    }
    let stats = buffers[&ALICE].stats();
    assert_eq!(stats.recovered_frames, 1, "frame 2 recovered from packet 3's copy; packet 4's copy of 3 not needed");
    assert_eq!(stats.buffered_frames, 5);
}

#[test]
fn jitter_buffers_are_bounded_by_the_remote_limit() {
    let mut buffers = BTreeMap::new();
    let arrival = |sender| AudioArrival {
        sender,
        seq: 0,
        at: Instant::now(),
        samples: [0; FRAME_SAMPLES],
        copies: Default::default(),
    };
    for sender in 0..MAX_REMOTES as u32 {
        assert!(arrival(sender + 100).deliver(&mut buffers));
    }
    assert!(!arrival(5).deliver(&mut buffers));
    assert!(arrival(100).deliver(&mut buffers), "a known sender still gets in");
    assert_eq!(buffers.len(), MAX_REMOTES);
}

#[test]
fn video_fragments_in_any_order_make_one_frame_and_the_stats_count_them() {
    let mut sim = Sim::new();
    sim.advance(Duration::ZERO);
    let fragments = sealed_video(ALICE, 1, 0, b"AABBCC", 3);
    sim.receive(&fragments[1]);
    sim.receive(&fragments[0]);
    assert!(sim.frames().is_empty());
    sim.receive(&fragments[2]);
    let frames = sim.frames();
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].0, ALICE);
    assert_eq!(frames[0].1.data, b"AABBCC");
    assert_eq!((frames[0].1.width, frames[0].1.height), (640, 480));

    // A frame missing a fragment expires in the assembler and is counted incomplete.
    sim.receive(&sealed_video(ALICE, 2, 3, b"DDDD", 2)[0]);
    sim.readings.decoded.insert(ALICE, DecodedTotals { frames: 20, skipped: 2, ..DecodedTotals::default() });
    sim.advance(Duration::from_secs(1));
    let stream = sim.stream(ALICE).unwrap();
    assert_eq!(stream.video.packets_received, 4);
    assert_eq!(stream.video.frames_incomplete, 1);
    assert_eq!(stream.video.frames_received, 20);
    assert_eq!(stream.video.frames_skipped, 2);
    assert!((stream.video.fps - 20.0).abs() < 1e-9, "fps from the decode worker's count over one second");
    sim.readings.decoded.insert(ALICE, DecodedTotals { frames: 30, ..DecodedTotals::default() });
    sim.advance(Duration::from_secs(1));
    assert!((sim.stream(ALICE).unwrap().video.fps - 10.0).abs() < 1e-9);
}

#[test]
fn outgoing_figures_are_rates_over_the_interval() {
    let mut sim = Sim::new();
    sim.advance(Duration::ZERO);
    sim.readings.video_out =
        VideoOutTotals { active: true, frames: 20, bytes: 100_000, encode_us: 60_000, ..VideoOutTotals::default() };
    sim.readings.audio_out = AudioOutTotals { active: true, frames: 50, bytes: 32_000, ..AudioOutTotals::default() };
    sim.advance(Duration::from_secs(1));
    let s = sim.last_stats();
    assert!((s.video_out.fps - 20.0).abs() < 1e-9);
    assert!((s.video_out.bitrate_kbps - 800.0).abs() < 1e-9);
    assert!((s.video_out.encode_ms - 3.0).abs() < 1e-9);
    assert!((s.audio_out.bitrate_kbps - 256.0).abs() < 1e-9);
    assert!((s.bitrate_out_kbps - 1056.0).abs() < 1e-9);
    assert_eq!(s.timestamp_ms, (sim.unix0_us + 1_000_000) / 1000);
    assert_eq!(s.participant_id, ME);
    // Nothing new next second: rates drop to zero, totals stay.
    sim.advance(Duration::from_secs(1));
    let s = sim.last_stats();
    assert_eq!(s.video_out.fps, 0.0);
    assert_eq!(s.video_out.frames_sent, 20);
    assert_eq!(s.video_out.encode_ms, 0.0);
}

#[test]
fn a_remote_who_left_stays_gone_while_their_packets_drain_then_may_return() {
    let mut sim = Sim::new();
    sim.receive(&audio(ALICE, 0, sim.unix_us(), None));
    sim.receive(&audio(BOB, 0, sim.unix_us(), None));
    sim.advance(Duration::ZERO);
    assert!(sim.stream(ALICE).is_some());
    sim.core.participant_left(sim.now, ALICE);
    sim.clear();
    sim.advance(ms(100));
    sim.receive(&audio(ALICE, 1, sim.unix_us(), None));
    sim.receive(&sealed_video(ALICE, 1, 0, b"late", 1)[0]);
    assert!(sim.audio_arrivals().is_empty() && sim.frames().is_empty(), "in-flight media is ignored");
    sim.advance(Duration::from_secs(1));
    assert!(sim.stream(ALICE).is_none());
    assert!(sim.stream(BOB).is_some());
    assert!(!sim.reports().iter().any(|r| r.source_id == ALICE));

    sim.advance(Duration::from_secs(5));
    sim.receive(&audio(ALICE, 0, sim.unix_us(), None));
    assert_eq!(sim.audio_arrivals().len(), 1, "after the quarantine the id may be someone who joined");
}

#[test]
fn a_silent_remote_is_forgotten_after_thirty_seconds() {
    let mut sim = Sim::new();
    sim.receive(&audio(ALICE, 0, sim.unix_us(), None));
    sim.advance(Duration::from_secs(29));
    assert!(sim.stream(ALICE).is_some());
    sim.advance(Duration::from_secs(2));
    assert!(sim.stream(ALICE).is_none());
}

#[test]
fn our_own_packets_and_the_relays_id_are_not_remotes() {
    let mut sim = Sim::new();
    sim.receive(&audio(ME, 0, sim.unix_us(), None));
    sim.receive(&audio(RELAY_SENDER_ID, 0, sim.unix_us(), None));
    sim.advance(Duration::ZERO);
    assert!(sim.audio_arrivals().is_empty());
    assert!(sim.last_stats().streams.is_empty());
}

#[test]
fn rtt_comes_from_replies_to_our_own_requests() {
    let mut sim = Sim::new();
    sim.advance(Duration::ZERO);
    let echo = sim.rtt_requests()[0];
    sim.advance(ms(40));
    // A reply from a participant, or to an id never sent, is not a sample.
    sim.receive(&encode(MediaPacket::RttReply { sender_id: ALICE, echo }));
    sim.receive(&encode(MediaPacket::RttReply { sender_id: RELAY_SENDER_ID, echo: RttEcho { echo_id: 999, ..echo } }));
    sim.receive(&encode(MediaPacket::RttReply { sender_id: RELAY_SENDER_ID, echo }));
    // A duplicate of the same reply is not a second sample.
    sim.advance(ms(500));
    sim.receive(&encode(MediaPacket::RttReply { sender_id: RELAY_SENDER_ID, echo }));
    sim.advance(ms(460));
    let s = sim.last_stats();
    assert!((s.rtt_latest_ms.unwrap() - 40.0).abs() < 1e-6);
    assert!((s.rtt_ms.unwrap() - 40.0).abs() < 1e-6, "one sample: the smoothed figure is that sample");
}

#[test]
fn the_relays_rtt_requests_are_answered_at_once_and_others_are_not() {
    let mut sim = Sim::new();
    let echo = RttEcho { echo_id: 77, sent_ts_us: 123 };
    sim.receive(&encode(MediaPacket::RttRequest { sender_id: RELAY_SENDER_ID, echo }));
    sim.receive(&encode(MediaPacket::RttRequest { sender_id: ALICE, echo }));
    let replies: Vec<_> = sim
        .sent_packets()
        .into_iter()
        .filter_map(|p| match p {
            MediaPacket::RttReply { sender_id, echo } => Some((sender_id, echo)),
            _ => None,
        })
        .collect();
    assert_eq!(replies, vec![(ME, echo)]);
}

#[test]
fn quality_steps_down_on_the_median_receivers_loss_and_back_up_after_good_intervals() {
    let mut sim = Sim::new();
    let top = LADDER.len() - 1;
    assert_eq!(sim.core.setting().level, top);
    sim.advance(Duration::ZERO);

    // One receiver of three on a bad link does not pull everyone down.
    for _ in 0..3 {
        sim.receive(&report_on_me(ALICE, MediaKind::Video, 300));
        sim.receive(&report_on_me(BOB, MediaKind::Video, 0));
        sim.receive(&report_on_me(CAROL, MediaKind::Video, 0));
        sim.advance(Duration::from_secs(1));
    }
    assert!(sim.quality_levels().is_empty());
    assert_eq!(sim.last_stats().receivers_video_loss, Some(0.0));

    // Two of three do. One round of reports counts for 3 s: one step down per interval.
    sim.receive(&report_on_me(ALICE, MediaKind::Video, 300));
    sim.receive(&report_on_me(BOB, MediaKind::Video, 250));
    sim.receive(&report_on_me(CAROL, MediaKind::Video, 0));
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.quality_levels(), vec![top - 1, top - 2]);
    let s = sim.last_stats();
    assert_eq!(s.quality.level, top - 2);
    assert_eq!(s.quality.level_changes, 2);
    assert!((s.quality_input_loss - 0.25).abs() < 1e-9);

    // Then they are stale; three good intervals step up once.
    sim.events.clear();
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.last_stats().receivers_video_loss, None);
    assert_eq!(sim.last_stats().quality_input_loss, 0.0);
    assert!(sim.quality_levels().is_empty());
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.quality_levels(), vec![top - 1]);
}

#[test]
fn the_relays_report_on_our_uplink_counts_and_an_override_replaces_measurement() {
    let mut sim = Sim::new();
    let top = LADDER.len() - 1;
    sim.advance(Duration::ZERO);
    sim.receive(&report_on_me(RELAY_SENDER_ID, MediaKind::Video, 200));
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.quality_levels(), vec![top - 1]);
    assert_eq!(sim.last_stats().uplink_video_loss, Some(0.2));

    let mut sim = Sim::new();
    sim.readings.loss_override = Some(0.5);
    sim.receive(&report_on_me(ALICE, MediaKind::Video, 0));
    sim.advance(Duration::from_secs(2));
    assert_eq!(sim.quality_levels(), vec![top - 1, top - 2]);
    assert_eq!(sim.last_stats().quality_input_loss, 0.5);
}

#[test]
fn redundancy_follows_the_reported_audio_loss_and_its_bursts_and_stops_after_the_hold() {
    let mut sim = Sim::new();
    sim.advance(Duration::ZERO);
    let depths = |sim: &Sim| -> Vec<usize> {
        sim.events
            .iter()
            .filter_map(|e| match e {
                ReceiveEvent::Redundancy(depth) => Some(*depth),
                _ => None,
            })
            .collect()
    };
    sim.receive(&report_on_me(ALICE, MediaKind::Audio, 0));
    assert!(depths(&sim).is_empty(), "no loss, no redundancy");
    sim.receive(&report_on_me_with_runs(ALICE, MediaKind::Audio, 50, [2, 0, 0, 0]));
    assert_eq!(depths(&sim), vec![1], "one copy as soon as a report of single losses arrives");
    sim.receive(&report_on_me_with_runs(BOB, MediaKind::Audio, 50, [2, 0, 0, 0]));
    assert_eq!(depths(&sim), vec![1], "announced once");
    sim.advance(Duration::from_secs(1));
    assert!(sim.last_stats().audio_out.redundancy);
    assert_eq!(sim.last_stats().audio_out.redundancy_depth, 1);
    sim.receive(&report_on_me_with_runs(BOB, MediaKind::Audio, 60, [3, 2, 1, 3]));
    assert_eq!(depths(&sim), vec![1, 4], "bursts of 4 and more: four copies");
    sim.advance(Duration::from_secs(1));
    assert_eq!(sim.last_stats().audio_out.redundancy_depth, 4);
    sim.advance(Duration::from_secs(8));
    assert_eq!(depths(&sim), vec![1, 4, 0], "none once no lossy report came for the hold");
    assert!(!sim.last_stats().audio_out.redundancy);
}

#[test]
fn malformed_datagrams_and_odd_audio_are_counted_and_create_nothing() {
    let mut sim = Sim::new();
    sim.receive(b"");
    sim.receive(&[0xff; 40]);
    sim.receive(&[0u8; MAX_DATAGRAM_LEN + 1]);
    let key = meeting_key();
    let header = AudioHeader { seq: 0, capture_ts_us: 0, sample_rate: 48_000, channels: 1 };
    sim.receive(&audio_packet(&key, ALICE, header, &[0u8; FRAME_SAMPLES * 2], None));
    let header = AudioHeader { seq: 0, capture_ts_us: 0, sample_rate: SAMPLE_RATE, channels: 1 };
    sim.receive(&audio_packet(&key, ALICE, header, &[0u8; 10], None));
    sim.advance(Duration::ZERO);
    let s = sim.last_stats();
    assert_eq!(s.malformed_packets, 3);
    assert_eq!(s.unauthenticated_packets, 2, "too short for a trailer, and garbage");
    assert!(s.streams.is_empty());
    assert!(sim.audio_arrivals().is_empty());
}

/// Datagrams in the relay's name that are not from it (sealed with another key, or altered),
/// and authentic ones delivered again: counted, and nothing comes of them: no stream, no
/// frame, no audio, no report that would change our quality.
#[test]
fn forged_and_replayed_datagrams_are_counted_and_do_nothing() {
    let mut sim = Sim::new();
    let forger = HopSender::new(HopSecret::new([0x99; HOP_SECRET_LEN]).from_relay());
    let report = ReceiverReport {
        source_id: ME,
        media: MediaKind::Video,
        loss_permille: 800,
        highest_seq: 1,
        cumulative_lost: 1,
        jitter_us: 0,
        loss_runs: [0; 4],
    };
    let alice = audio(ALICE, 0, 0, None);
    let alice_packet = MediaPacket::decode(&alice[..alice.len() - HOP_TRAILER_LEN]).unwrap();
    let forged = [
        forger.to_vec(&MediaPacket::ReceiverReport { sender_id: RELAY_SENDER_ID, report }).unwrap(),
        forger.to_vec(&alice_packet).unwrap(),
    ];
    for d in &forged {
        sim.receive(d);
    }
    let mut altered = audio(ALICE, 1, 20_000, None);
    altered[40] ^= 0x80;
    sim.receive(&altered);
    let authentic = audio(BOB, 0, 0, None);
    sim.receive(&authentic);
    sim.receive(&authentic);
    sim.receive(&authentic);
    sim.advance(Duration::ZERO);
    let s = sim.last_stats();
    assert_eq!(s.unauthenticated_packets, 3);
    assert_eq!(s.replayed_packets, 2);
    assert_eq!(s.malformed_packets, 0);
    assert_eq!(sim.audio_arrivals().len(), 1, "Bob's packet, once");
    assert_eq!(s.streams.iter().map(|r| r.participant_id).collect::<Vec<_>>(), vec![BOB]);
    assert!(sim.quality_levels().is_empty(), "the forged loss report changed nothing");
    assert_eq!(s.uplink_video_loss, None);
}

#[test]
fn the_relay_gets_a_summary_every_fifth_tick() {
    let mut sim = Sim::new();
    let reports = |sim: &Sim| sim.events.iter().filter(|e| matches!(e, ReceiveEvent::RelayReport(_))).count();
    sim.advance(Duration::from_secs(3));
    assert_eq!(reports(&sim), 0);
    sim.advance(Duration::from_secs(1));
    assert_eq!(reports(&sim), 1, "ticks 0..4 are the first five");
    sim.advance(Duration::from_secs(5));
    assert_eq!(reports(&sim), 2);
}

#[test]
fn an_undrained_core_holds_a_bounded_amount() {
    let mut sim = Sim::new();
    let (now, unix) = (sim.now, sim.unix_us());
    for i in 0..(MAX_EVENTS as u32 + 500) {
        sim.core.handle_datagram(now, unix, &sealed_video(ALICE, i, i, b"x", 1)[0]);
    }
    for i in 0..(MAX_TRANSMITS as u32 + 10) {
        let echo = RttEcho { echo_id: i, sent_ts_us: 0 };
        sim.core.handle_datagram(now, unix, &encode(MediaPacket::RttRequest { sender_id: RELAY_SENDER_ID, echo }));
    }
    assert_eq!(sim.core.overflowed(), 510);
    sim.drain();
    assert_eq!(sim.frames().len(), MAX_EVENTS);
    assert_eq!(sim.sent.len(), MAX_TRANSMITS);
}

#[test]
fn median_of_reports() {
    assert_eq!(median(&mut []), None);
    assert_eq!(median(&mut [0.3]), Some(0.3));
    assert_eq!(median(&mut [0.5, 0.0, 0.01]), Some(0.01));
    assert_eq!(median(&mut [0.4, 0.0, 0.1, 0.0]), Some(0.05));
}

/// Media the relay delivers faithfully but that does not open with the meeting key (sealed
/// under a key we were not given, or by someone who left before a rotation): counted, and
/// nothing comes of it; after a rotation the new key opens, and the previous epoch still opens
/// what was in flight until its sender moves on.
#[test]
fn media_that_does_not_open_is_counted_and_shows_nothing() {
    let mut sim = Sim::new();
    sim.advance(Duration::ZERO);
    let stranger = MeetingKey::from_bytes(1, [0x66; 32]);
    let ts = sim.unix_us();
    let header = move |seq| AudioHeader { seq, capture_ts_us: ts, sample_rate: SAMPLE_RATE, channels: 1 };
    let pcm = [0u8; FRAME_SAMPLES * 2];
    let forged_audio = audio_packet(&stranger, BOB, header(0), &pcm, None);
    let forged_frame = sealed_video_with(&stranger, BOB, 1, 0, b"\xff\xd8\xff", 1);
    sim.receive(&forged_audio);
    sim.receive(&forged_frame[0]);
    // Altered in the relay's hands: the header the body was sealed with changed.
    let mut plain = Vec::new();
    AudioPayload::plain(&pcm).encode_into(&mut plain).unwrap();
    let sealed = seal_with(&meeting_key(), BOB, &header(1).aad(BOB), &plain);
    sim.receive(&encode(MediaPacket::Audio { sender_id: BOB, header: header(2), sealed: &sealed }));
    assert!(sim.audio_arrivals().is_empty() && sim.frames().is_empty());
    // A rotation: the new key opens, and so does the old one for media already in flight.
    let next = MeetingKey::from_bytes(2, [0x4c; 32]);
    let in_flight = audio_packet(&meeting_key(), CAROL, header(3), &pcm, None);
    sim.core.install_media_key(next.clone());
    sim.receive(&audio_packet(&next, BOB, header(4), &pcm, None));
    sim.receive(&in_flight);
    sim.receive(&sealed_video_with(&next, BOB, 2, 1, b"picture", 1)[0]);
    assert_eq!(sim.audio_arrivals().len(), 2);
    assert_eq!(sim.frames().len(), 1);
    assert_eq!(sim.frames()[0].1.data, b"picture");
    sim.advance(Duration::from_secs(1));
    let stats = sim.last_stats();
    assert_eq!(stats.undecryptable_media, 3);
    assert_eq!((stats.unauthenticated_packets, stats.malformed_packets), (0, 0), "the hop was fine");
}

#[test]
fn three_seconds_without_an_authentic_datagram_from_the_relay_is_announced_once() {
    let mut sim = Sim::new();
    let silent = |sim: &Sim| sim.events.iter().filter(|e| matches!(e, ReceiveEvent::RelaySilent)).count();
    let keepalive_from_relay = || encode(MediaPacket::Keepalive { sender_id: RELAY_SENDER_ID });
    sim.advance(ms(2_000));
    sim.receive(&keepalive_from_relay());
    sim.advance(ms(2_999));
    assert_eq!(silent(&sim), 0, "heard 2.999 s ago");
    // A forged datagram is not the relay.
    let mut forged = keepalive_from_relay();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    sim.receive(&forged);
    sim.advance(ms(1));
    assert_eq!(silent(&sim), 1, "announced at 3 s of silence");
    sim.advance(ms(10_000));
    assert_eq!(silent(&sim), 1, "once per silence");
    sim.receive(&keepalive_from_relay());
    sim.advance(ms(3_000));
    assert_eq!(silent(&sim), 2, "the next datagram re-arms it");
}

#[test]
fn a_rekey_takes_the_new_connections_keys_both_ways_and_tells_the_relay_our_address_at_once() {
    let mut sim = Sim::new();
    let keepalive = MediaPacket::Keepalive { sender_id: RELAY_SENDER_ID };
    sim.advance(ms(2_500));
    sim.receive(&encode(keepalive));
    let sent_before = sim.sent.len();

    let resumed = HopSecret::new([0x77; HOP_SECRET_LEN]);
    sim.core.rekey(sim.now, &resumed);
    sim.drain();
    // The keepalive goes at once, sealed under the new key and numbered from 0.
    let fresh: Vec<Vec<u8>> = sim.sent.split_off(sent_before);
    assert_eq!(fresh.len(), 1, "one keepalive at once");
    let mut relay_in = HopReceiver::new(resumed.to_relay());
    let opened = relay_in.open(&fresh[0]).expect("sealed under the resumed connection's key");
    assert!(matches!(MediaPacket::decode(opened), Ok(MediaPacket::Keepalive { sender_id: ME })));
    assert!(HopReceiver::new(secret().to_relay()).open(&fresh[0]).is_err(), "not under the old key");
    let mut first = vec![0u8; 64];
    let len = HopSender::new(resumed.to_relay()).encode(&MediaPacket::Keepalive { sender_id: ME }, &mut first).unwrap();
    assert_eq!(fresh[0], first[..len], "sequence 0 of the new key");

    // From the relay: the old key is no longer authentic, the new one is (from sequence 0).
    sim.receive(&encode(keepalive));
    let relay_out = HopSender::new(resumed.from_relay());
    sim.receive(&relay_out.to_vec(&keepalive).unwrap());
    sim.advance(ms(1_000));
    assert_eq!(sim.last_stats().unauthenticated_packets, 1, "the old key's datagram");

    // More keepalives follow the first in case it is lost, then the silence clock runs from
    // the last authentic datagram as before.
    let keepalives_after = |sim: &Sim| {
        let mut relay_in = HopReceiver::new(resumed.to_relay());
        sim.sent[sent_before..]
            .iter()
            .filter(|d| {
                relay_in.open(d).is_ok_and(|p| matches!(MediaPacket::decode(p), Ok(MediaPacket::Keepalive { .. })))
            })
            .count()
    };
    assert!(keepalives_after(&sim) >= EARLY_KEEPALIVES as usize, "{} keepalives", keepalives_after(&sim));
    let silent = |sim: &Sim| sim.events.iter().filter(|e| matches!(e, ReceiveEvent::RelaySilent)).count();
    sim.advance(ms(1_999));
    assert_eq!(silent(&sim), 0);
    sim.advance(ms(1));
    assert_eq!(silent(&sim), 1);
}
