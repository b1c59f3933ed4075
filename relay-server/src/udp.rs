//! The UDP media path: one task owns the socket and the routing table.
//!
//! Control tasks never touch the table; meetings push [`RouteUpdate`]s into a
//! [`RouteQueue`] and the UDP task applies them between receive batches, so the hot path takes no lock. Per datagram
//! the relay reads the 8-byte common header, finds the sender's route by id in a hash map
//! keyed by the relay-assigned participant id, verifies the datagram's authentication trailer
//! with the sender's key ([`protocol::hop`], keyed from its TLS session), validates the packet
//! with the borrowing decoder (no allocation), checks it comes from the address the sender's
//! keepalives established, accepts its sequence number once in the sender's replay window,
//! and only then sends the receive buffer on to every other participant of that meeting, its
//! trailer sealed again for each receiver with that receiver's key. Forged, replayed, stale
//! and unknown datagrams are counted and go nowhere. Nothing is allocated per packet: the
//! receive buffers are reused, and the fan-out rewrites only the trailer before each copy goes
//! into the [`Outbox`].
//!
//! The system calls are batched: datagrams are received up to [`quinn_udp::BATCH_SIZE`] at a
//! time (`recvmmsg`, plus GRO where the kernel coalesces one sender's datagrams), and the
//! copies for one receiver that a batch produces leave in one segmented send (UDP GSO): the
//! fragments of a video frame arrive together and go to each receiver together.
//!
//! Per receiver, video may be thinned (see [`crate::thinning`]); a thinned receiver's video
//! sequence numbers are rewritten in the buffer right before its `send_to`. Audio and screen
//! fragments are never thinned nor rewritten (a screen update depends on the ones before it).
//!
//! The relay measures loss and jitter on each sender's video, audio and screen streams and
//! sends the sender a [`ReceiverReport`] (sender id 0) about each active stream every report
//! interval. Receivers' own reports are forwarded to the source they are about and drive
//! thinning; their screen refresh requests are forwarded to the sharer, at most one per
//! receiver and sharer per [`REFRESH_REQUEST_INTERVAL_MS`].

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use protocol::estimators::{InterarrivalJitter, LossEstimator};
use protocol::hop::{HopReceiver, HopSender, HOP_TRAILER_LEN};
use protocol::media::{
    peek_header, MediaKind, PacketKind, ReceiverReport, REFRESH_REQUEST_INTERVAL_MS, RELAY_SENDER_ID,
};
use protocol::MediaPacket;
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::outbox::{Outbox, Segments};
use crate::routes::{RouteQueue, RouteUpdate};
use crate::shedding::VideoShedding;
use crate::stats::{DropReason, Stats, UdpCounters};
use crate::thinning::{Thinner, ThinningConfig};

/// Byte range of a video fragment's sequence number (after the common header, `frame_id`
/// and `capture_ts_us`).
const VIDEO_SEQ_RANGE: std::ops::Range<usize> = 20..24;

/// Receive calls (each up to [`quinn_udp::BATCH_SIZE`] datagrams, more with GRO) made before
/// the task looks at route updates and timers again.
const RECV_CALLS: usize = 2;

/// Receive buffer size: one byte more than the protocol's datagram limit, so a longer datagram
/// arrives truncated to this length and the decoder drops it as too long (counted under
/// [`DropReason::TooLong`]) instead of misreading its first bytes.
const RECV_BUFFER_LEN: usize = protocol::media::MAX_DATAGRAM_LEN + 1;

/// Hasher for relay-assigned `u32` ids: a multiplicative hash. Ids are sequential, so their
/// low bits (the bucket index) are already distinct and the multiply spreads the high bits
/// (hashbrown's tag). Keys are never chosen by clients, only looked up.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// What the relay measures on one of a sender's streams.
#[derive(Debug)]
struct StreamStats {
    loss: LossEstimator,
    jitter: InterarrivalJitter,
    /// Packets since the last report; a stream with none is not reported.
    packets: u64,
}

impl StreamStats {
    fn new() -> Self {
        Self { loss: LossEstimator::new(), jitter: InterarrivalJitter::new(), packets: 0 }
    }

    fn on_packet(&mut self, now: Instant, seq: u32, capture_ts_us: u64) {
        self.loss.on_packet(seq);
        self.jitter.on_packet(now, capture_ts_us);
        self.packets += 1;
    }

    /// A packet the relay shed: lost as far as the report says, and the stream still reported
    /// on (a sender whose whole second of video was shed hears it as loss, not silence).
    fn on_shed(&mut self, seq: u32) {
        self.loss.on_discarded_ahead(seq);
        self.packets += 1;
    }

    /// The report for the interval that just ended, or `None` if the stream was silent.
    fn take_report(&mut self, source_id: u32, media: MediaKind) -> Option<ReceiverReport> {
        if self.packets == 0 {
            return None;
        }
        self.packets = 0;
        let interval = self.loss.take_interval();
        Some(ReceiverReport {
            source_id,
            media,
            loss_permille: interval.permille().min(1000),
            highest_seq: self.loss.highest_seq().unwrap_or(0),
            cumulative_lost: u32::try_from(self.loss.cumulative_lost()).unwrap_or(u32::MAX),
            jitter_us: u32::try_from(self.jitter.jitter().as_micros()).unwrap_or(u32::MAX),
            loss_runs: interval.loss_runs,
        })
    }
}

/// When a datagram was taken from the socket, and how long it had waited there (the kernel's
/// receive timestamp, where the platform gives it; zero otherwise).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub at: Instant,
    pub queued: Duration,
}

impl Arrival {
    /// A datagram that did not wait.
    #[cfg(test)]
    pub fn fresh(at: Instant) -> Self {
        Self { at, queued: Duration::ZERO }
    }
}

/// One participant as a sender.
#[derive(Debug)]
struct Route {
    /// Index of its meeting's [`Group`].
    group: usize,
    /// Verifies its datagrams and remembers which sequence numbers it already sent.
    hop_in: HopReceiver,
    /// Learned from its keepalives; media from any other address is dropped.
    addr: Option<SocketAddr>,
    video: StreamStats,
    audio: StreamStats,
    screen: StreamStats,
    /// A moderator muted it and it has not unmuted itself since: its audio is not forwarded.
    audio_blocked: bool,
    /// Video loss the relay itself saw arriving from this sender in the last report interval,
    /// in thousandths. A receiver's report includes this upstream loss; only the rest is the
    /// receiver's own downlink, and only that may thin its copy.
    video_uplink_loss_permille: u16,
    /// Which of its video frames the relay sheds while overloaded.
    shedding: VideoShedding,
}

/// One participant as a receiver.
#[derive(Debug)]
struct Receiver {
    id: u32,
    addr: Option<SocketAddr>,
    /// Seals every datagram sent to it.
    hop_out: HopSender,
    /// Thinning state per video source, created on the first congested report about it.
    /// Bounded by the meeting's participant limit.
    thinners: Vec<(u32, Thinner)>,
    /// When a refresh request of this receiver was last forwarded, per sharer (bounded by the
    /// meeting's participant limit).
    last_refresh: Vec<(u32, Instant)>,
}

/// The participants of one meeting.
#[derive(Debug)]
struct Group {
    meeting_id: u64,
    members: Vec<Receiver>,
}

/// The routing table and forwarding logic, without the socket: `send` is called with each
/// datagram to transmit, so the logic is testable without I/O.
#[derive(Debug)]
pub(crate) struct Router {
    routes: IdMap<u32, Route>,
    groups: Vec<Option<Group>>,
    free_groups: Vec<usize>,
    group_of_meeting: IdMap<u64, usize>,
    thinning: ThinningConfig,
    pub counters: UdpCounters,
}

impl Router {
    pub fn new(thinning: ThinningConfig) -> Self {
        Self {
            routes: IdMap::default(),
            groups: Vec::new(),
            free_groups: Vec::new(),
            group_of_meeting: IdMap::default(),
            thinning,
            counters: UdpCounters::default(),
        }
    }

    pub fn apply(&mut self, update: RouteUpdate) {
        match update {
            RouteUpdate::Add { meeting_id, participant_id, hop }
            | RouteUpdate::Reroute { meeting_id, participant_id, hop } => {
                self.remove(participant_id);
                let group = match self.group_of_meeting.get(&meeting_id) {
                    Some(g) => *g,
                    None => {
                        let fresh = Group { meeting_id, members: Vec::new() };
                        let g = match self.free_groups.pop() {
                            Some(g) => {
                                self.groups[g] = Some(fresh);
                                g
                            }
                            None => {
                                self.groups.push(Some(fresh));
                                self.groups.len() - 1
                            }
                        };
                        self.group_of_meeting.insert(meeting_id, g);
                        g
                    }
                };
                if let Some(Some(g)) = self.groups.get_mut(group) {
                    g.members.push(Receiver {
                        id: participant_id,
                        addr: None,
                        hop_out: HopSender::new(hop.from_relay()),
                        thinners: Vec::new(),
                        last_refresh: Vec::new(),
                    });
                }
                self.routes.insert(
                    participant_id,
                    Route {
                        group,
                        hop_in: HopReceiver::new(hop.to_relay()),
                        addr: None,
                        video: StreamStats::new(),
                        audio: StreamStats::new(),
                        screen: StreamStats::new(),
                        audio_blocked: false,
                        video_uplink_loss_permille: 0,
                        shedding: VideoShedding::default(),
                    },
                );
            }
            RouteUpdate::Remove { participant_id } => self.remove(participant_id),
            RouteUpdate::Mute { participant_id, muted } => {
                if let Some(route) = self.routes.get_mut(&participant_id) {
                    route.audio_blocked = muted;
                }
            }
        }
    }

    fn remove(&mut self, participant_id: u32) {
        let Some(route) = self.routes.remove(&participant_id) else { return };
        let Some(slot) = self.groups.get_mut(route.group) else { return };
        let Some(group) = slot else { return };
        group.members.retain(|r| r.id != participant_id);
        for r in &mut group.members {
            r.thinners.retain(|(source, _)| *source != participant_id);
            r.last_refresh.retain(|(source, _)| *source != participant_id);
        }
        if group.members.is_empty() {
            self.group_of_meeting.remove(&group.meeting_id);
            *slot = None;
            self.free_groups.push(route.group);
        }
    }

    /// Number of participants with a route.
    #[cfg(test)]
    pub fn route_count(&self) -> usize {
        self.routes.len()
    }

    /// Handles one datagram received from `from`. `buf` is the receive buffer, which is
    /// modified while fanning out (each receiver's trailer, a thinned receiver's sequence
    /// numbers).
    pub fn handle(
        &mut self,
        buf: &mut [u8],
        from: SocketAddr,
        arrival: Arrival,
        send: &mut impl FnMut(&[u8], SocketAddr) -> bool,
    ) {
        let now = arrival.at;
        self.counters.packets_in += 1;
        self.counters.bytes_in += buf.len() as u64;
        let (kind, sender) = match peek_header(buf) {
            Ok(header) => header,
            Err(e) => return self.counters.drop(e.into()),
        };
        if kind == PacketKind::RttReply {
            return self.counters.drop(DropReason::UnexpectedKind);
        }
        let Some(route) = self.routes.get_mut(&sender) else {
            return self.counters.drop(DropReason::UnknownSender);
        };
        let seq = match route.hop_in.verify(buf) {
            Ok(seq) => seq,
            Err(e) => return self.counters.drop(e.into()),
        };
        let packet = match MediaPacket::decode(&buf[..buf.len() - HOP_TRAILER_LEN]) {
            Ok(p) => p,
            Err(e) => return self.counters.drop(e.into()),
        };
        if let MediaPacket::Keepalive { .. } = packet {
            // Authentic and never seen: only the participant itself can have sent it, so its
            // source is where the participant is now (a NAT rebinding is followed at once).
            if let Err(e) = route.hop_in.accept(seq) {
                return self.counters.drop(e.into());
            }
            self.counters.keepalives += 1;
            if route.addr != Some(from) {
                debug!(participant = sender, %from, "media address learned");
                route.addr = Some(from);
                if let Some(Some(group)) = self.groups.get_mut(route.group) {
                    if let Some(r) = group.members.iter_mut().find(|r| r.id == sender) {
                        r.addr = Some(from);
                    }
                }
            }
            return;
        }
        if route.addr != Some(from) {
            return self.counters.drop(DropReason::WrongAddress);
        }
        if let Err(e) = route.hop_in.accept(seq) {
            return self.counters.drop(e.into());
        }
        let group = route.group;
        match packet {
            MediaPacket::VideoFragment { header, .. } => {
                // Shed, it counts as lost in the relay's report to the sender.
                if route.shedding.shed(header.frame_id, arrival.queued) {
                    route.video.on_shed(header.seq);
                    return self.counters.drop(DropReason::Overloaded);
                }
                route.video.on_packet(now, header.seq, header.capture_ts_us);
                self.forward_video(buf, group, sender, header.frame_id, header.seq, send);
            }
            MediaPacket::Audio { .. } if route.audio_blocked => self.counters.drop(DropReason::MutedByHost),
            MediaPacket::Audio { header, .. } => {
                route.audio.on_packet(now, header.seq, header.capture_ts_us);
                self.forward_all(buf, group, sender, send);
            }
            MediaPacket::RttRequest { echo, .. } => {
                let reply = MediaPacket::RttReply { sender_id: RELAY_SENDER_ID, echo };
                let mut out = [0u8; 64];
                let Some(receiver) = self.receiver(group, sender) else { return };
                if let Ok(len) = receiver.hop_out.encode(&reply, &mut out) {
                    self.counters.rtt_replies += 1;
                    self.transmit(&out[..len], from, send);
                }
            }
            MediaPacket::ScreenFragment { header, .. } => {
                route.screen.on_packet(now, header.seq, header.capture_ts_us);
                self.forward_all(buf, group, sender, send);
            }
            MediaPacket::ReceiverReport { report, .. } => self.on_receiver_report(buf, group, sender, report, send),
            MediaPacket::RefreshRequest { source_id, .. } => {
                self.on_refresh_request(buf, group, sender, source_id, now, send)
            }
            MediaPacket::Keepalive { .. } | MediaPacket::RttReply { .. } => {}
        }
    }

    /// The participant `id` of group `group` as a receiver.
    fn receiver(&self, group: usize, id: u32) -> Option<&Receiver> {
        self.groups.get(group)?.as_ref()?.members.iter().find(|r| r.id == id)
    }

    /// Sends a datagram already sealed for its receiver.
    fn transmit(&mut self, datagram: &[u8], to: SocketAddr, send: &mut impl FnMut(&[u8], SocketAddr) -> bool) {
        if send(datagram, to) {
            self.counters.packets_out += 1;
            self.counters.bytes_out += datagram.len() as u64;
        } else {
            self.counters.send_errors += 1;
        }
    }

    fn forward_all(
        &mut self,
        buf: &mut [u8],
        group: usize,
        sender: u32,
        send: &mut impl FnMut(&[u8], SocketAddr) -> bool,
    ) {
        let Some(Some(g)) = self.groups.get(group) else { return };
        let c = &mut self.counters;
        for r in &g.members {
            if r.id == sender {
                continue;
            }
            if let Some(addr) = r.addr {
                if r.hop_out.seal(buf).is_err() {
                    continue;
                }
                if send(buf, addr) {
                    c.packets_out += 1;
                    c.bytes_out += buf.len() as u64;
                } else {
                    c.send_errors += 1;
                }
            }
        }
    }

    fn forward_video(
        &mut self,
        buf: &mut [u8],
        group: usize,
        sender: u32,
        frame_id: u32,
        seq: u32,
        send: &mut impl FnMut(&[u8], SocketAddr) -> bool,
    ) {
        let Some(Some(g)) = self.groups.get_mut(group) else { return };
        let c = &mut self.counters;
        // The sequence number currently in the buffer.
        let mut in_buffer = seq;
        for r in &mut g.members {
            if r.id == sender {
                continue;
            }
            let Some(addr) = r.addr else { continue };
            let out_seq = match r.thinners.iter_mut().find(|(source, _)| *source == sender) {
                Some((_, thinner)) => {
                    if !thinner.admit(frame_id) {
                        c.thinned += 1;
                        continue;
                    }
                    thinner.rewrite_seq(seq)
                }
                None => seq,
            };
            if out_seq != in_buffer {
                if let Some(field) = buf.get_mut(VIDEO_SEQ_RANGE) {
                    field.copy_from_slice(&out_seq.to_be_bytes());
                    in_buffer = out_seq;
                }
            }
            if r.hop_out.seal(buf).is_err() {
                continue;
            }
            if send(buf, addr) {
                c.packets_out += 1;
                c.bytes_out += buf.len() as u64;
            } else {
                c.send_errors += 1;
            }
        }
    }

    fn on_receiver_report(
        &mut self,
        buf: &mut [u8],
        group: usize,
        reporter: u32,
        report: ReceiverReport,
        send: &mut impl FnMut(&[u8], SocketAddr) -> bool,
    ) {
        let (source_addr, uplink_permille) = match self.routes.get(&report.source_id) {
            Some(source) if source.group == group && report.source_id != reporter => {
                (source.addr, source.video_uplink_loss_permille)
            }
            _ => return self.counters.drop(DropReason::ForeignReport),
        };
        if report.media == MediaKind::Video {
            let downlink_permille = downlink_loss_permille(report.loss_permille, uplink_permille);
            if let Some(Some(g)) = self.groups.get_mut(group) {
                if let Some(r) = g.members.iter_mut().find(|r| r.id == reporter) {
                    let thinning = self.thinning;
                    if let Some((_, thinner)) = r.thinners.iter_mut().find(|(source, _)| *source == report.source_id) {
                        let changed = thinner.on_report(downlink_permille);
                        if changed {
                            debug!(receiver = reporter, source = report.source_id, k = thinner.k(), "thinning changed");
                        }
                    } else if downlink_permille > thinning.congested_permille {
                        // Receivers that never reported congestion carry no thinning state.
                        let mut thinner = Thinner::new(thinning);
                        thinner.on_report(downlink_permille);
                        debug!(receiver = reporter, source = report.source_id, k = thinner.k(), "thinning started");
                        r.thinners.push((report.source_id, thinner));
                    }
                }
            }
        }
        if let Some(addr) = source_addr {
            let Some(source) = self.receiver(group, report.source_id) else { return };
            if source.hop_out.seal(buf).is_ok() {
                self.counters.reports_forwarded += 1;
                self.transmit(buf, addr, send);
            }
        }
    }

    /// Forwards a receiver's refresh request to the sharer it names, if that sharer is in the
    /// receiver's meeting and the receiver's previous request is old enough.
    fn on_refresh_request(
        &mut self,
        buf: &mut [u8],
        group: usize,
        requester: u32,
        source_id: u32,
        now: Instant,
        send: &mut impl FnMut(&[u8], SocketAddr) -> bool,
    ) {
        let source_addr = match self.routes.get(&source_id) {
            Some(source) if source.group == group && source_id != requester => source.addr,
            _ => return self.counters.drop(DropReason::ForeignReport),
        };
        let Some(Some(g)) = self.groups.get_mut(group) else { return };
        let Some(r) = g.members.iter_mut().find(|r| r.id == requester) else { return };
        let spacing = Duration::from_millis(REFRESH_REQUEST_INTERVAL_MS);
        match r.last_refresh.iter_mut().find(|(source, _)| *source == source_id) {
            Some((_, at)) if now.saturating_duration_since(*at) < spacing => {
                return self.counters.drop(DropReason::RefreshLimited);
            }
            Some((_, at)) => *at = now,
            None => r.last_refresh.push((source_id, now)),
        }
        let Some(addr) = source_addr else { return };
        let Some(source) = self.receiver(group, source_id) else { return };
        if source.hop_out.seal(buf).is_ok() {
            self.counters.refreshes_forwarded += 1;
            self.transmit(buf, addr, send);
        }
    }

    /// Sends every sender a report about each of its streams that was active in the interval.
    pub fn send_reports(&mut self, send: &mut impl FnMut(&[u8], SocketAddr) -> bool) {
        let mut out = [0u8; 64];
        let c = &mut self.counters;
        for (id, route) in self.routes.iter_mut() {
            let Some(addr) = route.addr else { continue };
            let Some(Some(group)) = self.groups.get(route.group) else { continue };
            let Some(receiver) = group.members.iter().find(|r| r.id == *id) else { continue };
            let reports = [
                route.video.take_report(*id, MediaKind::Video),
                route.audio.take_report(*id, MediaKind::Audio),
                route.screen.take_report(*id, MediaKind::Screen),
            ];
            if let Some(video) = &reports[0] {
                route.video_uplink_loss_permille = video.loss_permille;
            }
            for report in reports.into_iter().flatten() {
                let packet = MediaPacket::ReceiverReport { sender_id: RELAY_SENDER_ID, report };
                let Ok(len) = receiver.hop_out.encode(&packet, &mut out) else { continue };
                if send(&out[..len], addr) {
                    c.packets_out += 1;
                    c.bytes_out += len as u64;
                    c.reports_sent += 1;
                } else {
                    c.send_errors += 1;
                }
            }
        }
    }
}

/// The part of a receiver's reported loss that happened between the relay and the receiver.
/// Packets reach the receiver only if they survive both legs, so
/// `(1 - reported) = (1 - uplink) * (1 - downlink)`.
fn downlink_loss_permille(reported: u16, uplink: u16) -> u16 {
    let reported = f64::from(reported.min(1000)) / 1000.0;
    let uplink = f64::from(uplink.min(999)) / 1000.0;
    let downlink = 1.0 - (1.0 - reported) / (1.0 - uplink);
    (downlink.clamp(0.0, 1.0) * 1000.0).round() as u16
}

/// Binds the media socket with enlarged kernel buffers. Returns the async socket the task
/// receives on and a clone of it for sending: `send_to` on the clone is a plain non-blocking
/// syscall, with no readiness bookkeeping per datagram.
pub(crate) fn bind(addr: SocketAddr, buffer: usize) -> io::Result<(UdpSocket, std::net::UdpSocket)> {
    let socket =
        socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    // Best effort: the kernel caps these at its configured maximum.
    if let Err(e) = socket.set_recv_buffer_size(buffer) {
        warn!("cannot enlarge the UDP receive buffer: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(buffer) {
        warn!("cannot enlarge the UDP send buffer: {e}");
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    let std_socket: std::net::UdpSocket = socket.into();
    let sender = std_socket.try_clone()?;
    Ok((UdpSocket::from_std(std_socket)?, sender))
}

/// The UDP task: receives, forwards, applies route updates, sends periodic reports.
///
/// Datagrams come in batches (`recvmmsg`, and GRO where the kernel coalesces a sender's
/// datagrams) and the copies each one fans out into go through an [`Outbox`], which sends a
/// batch's datagrams for one receiver in one segmented send (GSO) once the batch is handled.
pub(crate) async fn run(
    socket: UdpSocket,
    sender: std::net::UdpSocket,
    routes: Arc<RouteQueue>,
    stats: Arc<Stats>,
    thinning: ThinningConfig,
    report_interval: Duration,
    shutdown: CancellationToken,
) {
    let state = match quinn_udp::UdpSocketState::new((&socket).into()) {
        Ok(state) => state,
        Err(e) => {
            warn!("media socket cannot be set up for batched I/O: {e}");
            return;
        }
    };
    let mut router = Router::new(thinning);
    let mut outbox = Outbox::new(state.max_gso_segments());
    // One slot per datagram of a receive batch, each large enough for the most datagrams GRO
    // may coalesce into it.
    let slot_len = RECV_BUFFER_LEN * state.gro_segments().max(1);
    let mut storage = vec![0u8; slot_len * quinn_udp::BATCH_SIZE];
    let mut slots: Vec<IoSliceMut<'_>> = storage.chunks_mut(slot_len).map(IoSliceMut::new).collect();
    let mut metas = vec![quinn_udp::RecvMeta::default(); slots.len()];
    let mut transmit = |s: Segments<'_>| {
        let t = quinn_udp::Transmit {
            destination: s.destination,
            ecn: None,
            contents: s.contents,
            segment_size: (s.count > 1).then_some(s.segment_len),
            src_ip: None,
        };
        state.try_send((&sender).into(), &t).is_ok()
    };
    // Reports are due by the clock, checked after every batch as well as waited for: a socket
    // that is always readable never lets the runtime's timers fire, and a relay under
    // overload would otherwise stop reporting just when its senders need to slow down.
    let report_interval = report_interval.max(Duration::from_millis(10));
    let mut reports_due = tokio::time::Instant::now() + report_interval;
    loop {
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            _ = routes.changed() => {}
            _ = tokio::time::sleep_until(reports_due) => {}
            ready = socket.readable() => {
                if let Err(e) = ready {
                    warn!("media socket failed: {e}");
                    break;
                }
            }
        }
        let now = tokio::time::Instant::now();
        if now >= reports_due {
            router.send_reports(&mut |d: &[u8], to: SocketAddr| {
                outbox.push(d, to, &mut transmit);
                true
            });
            outbox.flush(&mut transmit);
            // The next one an interval after this one was due, or an interval from now if this
            // one ran later than that: the rate holds, with no burst of catch-up reports.
            let next = reports_due + report_interval;
            reports_due = if next > now { next } else { now + report_interval };
        }
        // Route changes first, so a keepalive that follows a join finds its route.
        for update in routes.take() {
            router.apply(update);
        }
        for _ in 0..RECV_CALLS {
            let received =
                socket.try_io(tokio::io::Interest::READABLE, || state.recv((&socket).into(), &mut slots, &mut metas));
            let count = match received {
                Ok(count) => count,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // Some platforms report an earlier send's ICMP error on the next receive
                // (Windows: connection reset); it concerns one peer, never the socket.
                Err(e) => {
                    debug!("media receive error: {e}");
                    break;
                }
            };
            let mut queue = |d: &[u8], to: SocketAddr| {
                outbox.push(d, to, &mut transmit);
                true
            };
            // The kernel stamps each datagram as it arrives (Linux): how long it waited in the
            // socket tells when the relay is falling behind.
            let wall_clock = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
            for (slot, meta) in slots.iter_mut().zip(&metas).take(count) {
                let Some(received) = slot.get_mut(..meta.len) else { continue };
                let queued = meta.timestamp.map_or(Duration::ZERO, |stamp| wall_clock.saturating_sub(stamp));
                // GRO: datagrams of one sender coalesced, each `stride` bytes but the last.
                for datagram in received.chunks_mut(meta.stride.max(1)) {
                    router.handle(datagram, meta.addr, Arrival { at: Instant::now(), queued }, &mut queue);
                }
            }
            outbox.flush(&mut transmit);
        }
        let unsent = outbox.take_unsent();
        router.counters.unsent(unsent.datagrams, unsent.bytes);
        stats.publish_udp(&router.counters);
    }
    stats.publish_udp(&router.counters);
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::hop::{HopError, HopSecret, HOP_SECRET_LEN};
    use protocol::media::{AudioHeader, RefreshRanges, RttEcho, VideoHeader};
    use protocol::screen::TileRun;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    struct Sent(Vec<(Vec<u8>, SocketAddr)>);

    impl Sent {
        fn sender(&mut self) -> impl FnMut(&[u8], SocketAddr) -> bool + '_ {
            |d, a| {
                self.0.push((d.to_vec(), a));
                true
            }
        }
    }

    /// The keys participant `id`'s TLS session would export.
    fn secret(id: u32) -> HopSecret {
        HopSecret::new([id as u8; HOP_SECRET_LEN])
    }

    /// The client ends of the participants' hops: what they seal with, what they open with.
    struct Clients {
        senders: BTreeMap<u32, HopSender>,
        receivers: BTreeMap<u32, HopReceiver>,
    }

    impl Clients {
        fn seal(&self, packet: MediaPacket<'_>) -> Vec<u8> {
            self.senders[&packet.sender_id()].to_vec(&packet).unwrap()
        }

        /// What participant `to` makes of a datagram the relay sent it: it must open with its
        /// key, once.
        fn open(&mut self, to: u32, datagram: &[u8]) -> MediaPacket<'static> {
            let packet = self.receivers.get_mut(&to).unwrap().open(datagram).expect("authentic");
            let leaked: &'static [u8] = Box::leak(packet.to_vec().into_boxed_slice());
            MediaPacket::decode(leaked).unwrap()
        }
    }

    use std::collections::BTreeMap;

    fn video(id: u32, frame_id: u32, seq: u32, frag_index: u16, frag_count: u16) -> MediaPacket<'static> {
        let header = VideoHeader { frame_id, capture_ts_us: 1, seq, width: 4, height: 4, frag_index, frag_count };
        MediaPacket::VideoFragment { sender_id: id, header, payload: &[7u8; 10] }
    }

    /// Router with participants 1, 2, 3 in meeting 10 and 4 in meeting 20, all registered.
    fn router() -> (Router, Clients) {
        let mut r = Router::new(ThinningConfig::default());
        let mut clients = Clients { senders: BTreeMap::new(), receivers: BTreeMap::new() };
        for (id, meeting) in [(1, 10), (2, 10), (3, 10), (4, 20)] {
            r.apply(RouteUpdate::Add { meeting_id: meeting, participant_id: id, hop: Arc::new(secret(id)) });
            clients.senders.insert(id, HopSender::new(secret(id).to_relay()));
            clients.receivers.insert(id, HopReceiver::new(secret(id).from_relay()));
            let mut ka = clients.seal(MediaPacket::Keepalive { sender_id: id });
            r.handle(&mut ka, addr(id as u16), Arrival::fresh(Instant::now()), &mut |_, _| true);
        }
        (r, clients)
    }

    #[test]
    fn forwards_within_the_meeting_and_never_back_sealed_for_each_receiver() {
        let (mut r, mut clients) = router();
        let mut sent = Sent(Vec::new());
        let original = video(1, 0, 0, 0, 1);
        let mut pkt = clients.seal(original);
        r.handle(&mut pkt, addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        let to: Vec<_> = sent.0.iter().map(|(_, a)| *a).collect();
        assert_eq!(to, vec![addr(2), addr(3)]);
        for (datagram, to) in &sent.0 {
            let id = u32::from(to.port());
            assert_eq!(clients.open(id, datagram), original, "the packet is forwarded unchanged");
        }
        // Each copy is sealed with its receiver's key only.
        let mut other = HopReceiver::new(secret(3).from_relay());
        assert_eq!(other.open(&sent.0[0].0), Err(HopError::Forged));
    }

    #[test]
    fn drops_are_counted_by_reason() {
        let (mut r, clients) = router();
        let mut sent = Sent(Vec::new());
        r.handle(&mut b"PR".to_vec(), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        let mut unknown = HopSender::new(secret(99).to_relay()).to_vec(&video(99, 0, 0, 0, 1)).unwrap();
        r.handle(&mut unknown, addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        r.handle(&mut clients.seal(video(1, 0, 0, 0, 1)), addr(9), Arrival::fresh(Instant::now()), &mut sent.sender());
        let mut oversized = clients.seal(video(1, 0, 0, 0, 1));
        oversized.resize(protocol::media::MAX_DATAGRAM_LEN + 1, 0);
        r.handle(&mut oversized, addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert!(sent.0.is_empty());
        assert_eq!(r.counters.drops[DropReason::TooLong.index()], 1);
        assert_eq!(r.counters.drops[DropReason::TooShort.index()], 1);
        assert_eq!(r.counters.drops[DropReason::UnknownSender.index()], 1);
        assert_eq!(r.counters.drops[DropReason::WrongAddress.index()], 1);
    }

    /// Participant 3 (or anyone who read the id off the wire) sends as participant 1: a
    /// receiver report that would throttle 1's video, a frame that would replace 1's picture,
    /// a keepalive that would send 1's media elsewhere. None verifies; nothing is forwarded
    /// and nothing changes.
    #[test]
    fn forged_datagrams_change_nothing() {
        let (mut r, mut clients) = router();
        let impostor = HopSender::new(secret(3).to_relay());
        let report = ReceiverReport {
            source_id: 2,
            media: MediaKind::Video,
            loss_permille: 900,
            highest_seq: 0,
            cumulative_lost: 0,
            jitter_us: 0,
            loss_runs: [0; 4],
        };
        let mut sent = Sent(Vec::new());
        for forged in [
            MediaPacket::ReceiverReport { sender_id: 1, report },
            video(1, 5, 5, 0, 1),
            MediaPacket::Keepalive { sender_id: 1 },
        ] {
            // From 1's own address (spoofed) and from the attacker's.
            for from in [addr(1), addr(66)] {
                let mut d = impostor.to_vec(&forged).unwrap();
                r.handle(&mut d, from, Arrival::fresh(Instant::now()), &mut sent.sender());
            }
        }
        assert!(sent.0.is_empty(), "nothing forged is forwarded");
        assert_eq!(r.counters.drops[DropReason::Forged.index()], 6);
        assert_eq!(r.routes[&1].addr, Some(addr(1)), "1's media address did not move");
        // 2 was not thinned: all of 1's next frame reaches it.
        r.handle(&mut clients.seal(video(1, 6, 6, 0, 1)), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert_eq!(sent.0.iter().filter(|(_, a)| *a == addr(2)).count(), 1);
        assert_eq!(r.counters.thinned, 0);
        let (d, _) = sent.0.iter().find(|(_, a)| *a == addr(2)).unwrap();
        assert_eq!(clients.open(2, d), video(1, 6, 6, 0, 1));
    }

    /// A captured datagram sent again, from anywhere: refused once its number was accepted,
    /// and a number a whole window behind is stale. A captured keepalive replayed from the
    /// attacker's address does not move the media address.
    #[test]
    fn replayed_and_stale_datagrams_are_dropped() {
        let (mut r, clients) = router();
        let mut sent = Sent(Vec::new());
        let captured = clients.seal(video(1, 0, 0, 0, 1));
        r.handle(&mut captured.clone(), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert_eq!(sent.0.len(), 2);
        sent.0.clear();
        r.handle(&mut captured.clone(), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        let keepalive = clients.seal(MediaPacket::Keepalive { sender_id: 1 });
        r.handle(&mut keepalive.clone(), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        r.handle(&mut keepalive.clone(), addr(66), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert_eq!(r.routes[&1].addr, Some(addr(1)));
        assert_eq!(r.counters.drops[DropReason::Replayed.index()], 2);
        let old = clients.seal(video(1, 1, 1, 0, 1));
        for n in 0..protocol::replay::REPLAY_WINDOW as u32 {
            let mut d = clients.seal(video(1, 2 + n, 2 + n, 0, 1));
            r.handle(&mut d, addr(1), Arrival::fresh(Instant::now()), &mut |_, _| true);
        }
        r.handle(&mut old.clone(), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert_eq!(r.counters.drops[DropReason::Stale.index()], 1);
        assert!(sent.0.is_empty(), "no replay reaches anyone");
    }

    /// A participant a moderator muted keeps sending audio (a client that ignores the mute):
    /// none of it is forwarded, each datagram is counted, its video still goes through; once
    /// it unmuted itself its audio flows again.
    #[test]
    fn a_muted_participants_audio_is_dropped_and_counted_until_it_unmutes() {
        let (mut r, clients) = router();
        let mut sent = Sent(Vec::new());
        let audio = |seq| {
            let header = AudioHeader { seq, capture_ts_us: 0, sample_rate: 16000, channels: 1 };
            clients.seal(MediaPacket::Audio { sender_id: 1, header, sealed: &[0u8; 40] })
        };
        r.apply(RouteUpdate::Mute { participant_id: 1, muted: true });
        for seq in 0..3 {
            r.handle(&mut audio(seq), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        }
        assert!(sent.0.is_empty(), "no audio of a muted participant is forwarded");
        assert_eq!(r.counters.drops[DropReason::MutedByHost.index()], 3);
        r.handle(&mut clients.seal(video(1, 0, 0, 0, 1)), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert_eq!(sent.0.len(), 2, "its video still reaches 2 and 3");
        sent.0.clear();
        r.apply(RouteUpdate::Mute { participant_id: 1, muted: false });
        r.handle(&mut audio(3), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert_eq!(sent.0.len(), 2, "unmuted: its audio reaches 2 and 3 again");
        assert_eq!(r.counters.drops[DropReason::MutedByHost.index()], 3);
    }

    #[test]
    fn answers_rtt_requests_and_reports_streams() {
        let (mut r, mut clients) = router();
        let mut sent = Sent(Vec::new());
        let echo = RttEcho { echo_id: 5, sent_ts_us: 77 };
        let mut req = clients.seal(MediaPacket::RttRequest { sender_id: 2, echo });
        r.handle(&mut req, addr(2), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert_eq!(sent.0.len(), 1);
        assert_eq!(clients.open(2, &sent.0[0].0), MediaPacket::RttReply { sender_id: 0, echo });
        sent.0.clear();
        let header = AudioHeader { seq: 0, capture_ts_us: 0, sample_rate: 16000, channels: 1 };
        for seq in [0u32, 1, 3] {
            let h = AudioHeader { seq, ..header };
            let mut a = clients.seal(MediaPacket::Audio { sender_id: 4, header: h, sealed: &[0u8; 40] });
            r.handle(&mut a, addr(4), Arrival::fresh(Instant::now()), &mut |_, _| true);
        }
        r.send_reports(&mut sent.sender());
        assert_eq!(sent.0.len(), 1, "one report: participant 4's audio");
        match clients.open(4, &sent.0[0].0) {
            MediaPacket::ReceiverReport { sender_id: 0, report } => {
                assert_eq!(report.source_id, 4);
                assert_eq!(report.media, MediaKind::Audio);
                assert_eq!(report.highest_seq, 3);
                assert_eq!(report.cumulative_lost, 1);
                assert_eq!(report.loss_permille, 250);
            }
            other => panic!("unexpected {other:?}"),
        }
        sent.0.clear();
        r.send_reports(&mut sent.sender());
        assert!(sent.0.is_empty(), "silent streams are not reported");
    }

    #[test]
    fn an_overloaded_relay_sheds_whole_video_frames_never_audio_and_reports_them_lost() {
        let (mut r, mut clients) = router();
        let mut sent = Sent(Vec::new());
        let late = Arrival { at: Instant::now(), queued: crate::shedding::SHED_VIDEO_AFTER };
        // Frame 0 on time, frame 1 found late (all three fragments go, the later two on time),
        // frame 2 on time again.
        let fragments = [(0, 0, 0, false), (0, 1, 1, false), (1, 2, 0, true), (1, 3, 1, false), (1, 4, 2, false)];
        for (frame, seq, index, is_late) in fragments {
            let arrival = if is_late { late } else { Arrival::fresh(Instant::now()) };
            let count = if frame == 0 { 2 } else { 3 };
            r.handle(&mut clients.seal(video(1, frame, seq, index, count)), addr(1), arrival, &mut sent.sender());
        }
        r.handle(&mut clients.seal(video(1, 2, 5, 0, 1)), addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        let header = AudioHeader { seq: 0, capture_ts_us: 0, sample_rate: 16000, channels: 1 };
        let mut audio = clients.seal(MediaPacket::Audio { sender_id: 1, header, sealed: &[0u8; 40] });
        r.handle(&mut audio, addr(1), late, &mut sent.sender());
        let to_2: Vec<MediaPacket<'static>> =
            sent.0.iter().filter(|(_, to)| *to == addr(2)).map(|(d, _)| clients.open(2, d)).collect();
        let video_seqs: Vec<u32> = to_2
            .iter()
            .filter_map(|p| match p {
                MediaPacket::VideoFragment { header, .. } => Some(header.seq),
                _ => None,
            })
            .collect();
        assert_eq!(video_seqs, vec![0, 1, 5], "frame 1 shed whole, frames 0 and 2 forwarded");
        assert!(to_2.iter().any(|p| matches!(p, MediaPacket::Audio { .. })), "late audio is forwarded all the same");
        assert_eq!(r.counters.drops[DropReason::Overloaded.index()], 3);

        // The relay's report on participant 1's video, from the reports it sends now.
        let video_report_to_1 = |r: &mut Router, clients: &mut Clients| {
            let mut sent = Sent(Vec::new());
            r.send_reports(&mut sent.sender());
            sent.0
                .iter()
                .filter(|(_, to)| *to == addr(1))
                .find_map(|(d, _)| match clients.open(1, d) {
                    MediaPacket::ReceiverReport { report, .. } if report.media == MediaKind::Video => Some(report),
                    _ => None,
                })
                .expect("a report on the sender's video")
        };
        let video_report = video_report_to_1(&mut r, &mut clients);
        assert_eq!(video_report.cumulative_lost, 3, "the shed fragments count as lost, so the sender steps down");

        // A second in which all of its video is shed is reported as loss, not silence.
        for (seq, index) in [(6, 0), (7, 1)] {
            r.handle(&mut clients.seal(video(1, 3, seq, index, 2)), addr(1), late, &mut sent.sender());
        }
        let video_report = video_report_to_1(&mut r, &mut clients);
        assert_eq!(
            (video_report.loss_permille, video_report.cumulative_lost),
            (1000, 5),
            "though nothing of it went out"
        );
    }

    #[test]
    fn congested_receiver_is_thinned_with_contiguous_seq() {
        let (mut r, mut clients) = router();
        let report = ReceiverReport {
            source_id: 1,
            media: MediaKind::Video,
            loss_permille: 400,
            highest_seq: 0,
            cumulative_lost: 0,
            jitter_us: 0,
            loss_runs: [0; 4],
        };
        let mut rr = clients.seal(MediaPacket::ReceiverReport { sender_id: 3, report });
        let mut forwarded = Sent(Vec::new());
        r.handle(&mut rr, addr(3), Arrival::fresh(Instant::now()), &mut forwarded.sender());
        assert_eq!(forwarded.0.len(), 1, "report forwarded to the source");
        assert_eq!(forwarded.0[0].1, addr(1));
        assert_eq!(clients.open(1, &forwarded.0[0].0), MediaPacket::ReceiverReport { sender_id: 3, report });

        let mut sent = Sent(Vec::new());
        let mut seq = 0;
        for frame in 0..10u32 {
            for frag in 0..3u16 {
                let mut pkt = clients.seal(video(1, frame, seq, frag, 3));
                r.handle(&mut pkt, addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
                seq += 1;
            }
        }
        let mut headers = |to: u32| -> Vec<VideoHeader> {
            sent.0
                .iter()
                .filter(|(_, a)| *a == addr(to as u16))
                .map(|(d, _)| match clients.open(to, d) {
                    MediaPacket::VideoFragment { header, .. } => header,
                    other => panic!("unexpected {other:?}"),
                })
                .collect()
        };
        let to_2 = headers(2);
        let to_3 = headers(3);
        assert_eq!(to_2.len(), 30);
        assert_eq!(to_3.len(), 15, "k = 2: every other frame, whole");
        assert!(to_3.iter().all(|h| h.frame_id % 2 == 0));
        assert!(to_3.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        // Receiver 2's copies carry the original numbers.
        assert_eq!(to_2.iter().map(|h| h.seq).collect::<Vec<_>>(), (0..30).collect::<Vec<_>>());
    }

    #[test]
    fn downlink_loss_excludes_what_the_relay_already_missed() {
        assert_eq!(downlink_loss_permille(150, 0), 150);
        assert_eq!(downlink_loss_permille(150, 150), 0);
        assert_eq!(downlink_loss_permille(100, 150), 0, "reports from another interval may undershoot");
        // 20 % upstream and 20 % downstream lose 36 % end to end.
        assert_eq!(downlink_loss_permille(360, 200), 200);
        assert_eq!(downlink_loss_permille(1000, 1000), 1000);
    }

    #[test]
    fn upstream_loss_does_not_thin_a_receiver_with_a_clean_downlink() {
        let (mut r, clients) = router();
        // The relay sees 20 % of sender 1's video go missing (seq 0..50, every fifth absent).
        let mut sent = Sent(Vec::new());
        for seq in (0..50u32).filter(|s| s % 5 != 4) {
            let mut pkt = clients.seal(video(1, seq, seq, 0, 1));
            r.handle(&mut pkt, addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        }
        r.send_reports(&mut sent.sender());
        // Receiver 3 reports the same 20 %: all of it upstream, so it keeps every frame.
        let report = ReceiverReport {
            source_id: 1,
            media: MediaKind::Video,
            loss_permille: 200,
            highest_seq: 49,
            cumulative_lost: 10,
            jitter_us: 0,
            loss_runs: [0; 4],
        };
        let mut rr = clients.seal(MediaPacket::ReceiverReport { sender_id: 3, report });
        r.handle(&mut rr, addr(3), Arrival::fresh(Instant::now()), &mut sent.sender());
        let mut after = Sent(Vec::new());
        for frame in 100..110u32 {
            let mut pkt = clients.seal(video(1, frame, frame, 0, 1));
            r.handle(&mut pkt, addr(1), Arrival::fresh(Instant::now()), &mut after.sender());
        }
        assert_eq!(after.0.iter().filter(|(_, a)| *a == addr(3)).count(), 10, "not thinned");
        assert_eq!(r.counters.thinned, 0);
    }

    #[test]
    fn reports_about_other_meetings_are_dropped() {
        let (mut r, clients) = router();
        let report = ReceiverReport {
            source_id: 4,
            media: MediaKind::Video,
            loss_permille: 0,
            highest_seq: 0,
            cumulative_lost: 0,
            jitter_us: 0,
            loss_runs: [0; 4],
        };
        let mut rr = clients.seal(MediaPacket::ReceiverReport { sender_id: 1, report });
        let mut sent = Sent(Vec::new());
        r.handle(&mut rr, addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        assert!(sent.0.is_empty());
        assert_eq!(r.counters.drops[DropReason::ForeignReport.index()], 1);
    }

    fn screen(id: u32, frame_id: u32, seq: u32) -> MediaPacket<'static> {
        let header =
            VideoHeader { frame_id, capture_ts_us: 1, seq, width: 1920, height: 1080, frag_index: 0, frag_count: 1 };
        MediaPacket::ScreenFragment { sender_id: id, header, payload: &[9u8; 10] }
    }

    fn refresh(from: u32, source_id: u32) -> MediaPacket<'static> {
        let ranges = RefreshRanges::new(&[TileRun { first: 0, count: 120 }]).unwrap();
        MediaPacket::RefreshRequest { sender_id: from, source_id, ranges }
    }

    /// A receiver whose camera copy of a source is thinned still gets every screen fragment
    /// of that source, and the sharer gets an uplink report about its screen stream.
    #[test]
    fn screen_fragments_reach_everyone_unthinned_and_are_reported_on() {
        let (mut r, mut clients) = router();
        let report = ReceiverReport {
            source_id: 1,
            media: MediaKind::Video,
            loss_permille: 400,
            highest_seq: 0,
            cumulative_lost: 0,
            jitter_us: 0,
            loss_runs: [0; 4],
        };
        let mut rr = clients.seal(MediaPacket::ReceiverReport { sender_id: 3, report });
        r.handle(&mut rr, addr(3), Arrival::fresh(Instant::now()), &mut |_, _| true);
        let mut sent = Sent(Vec::new());
        for frame in 0..10u32 {
            let mut pkt = clients.seal(screen(1, frame, frame));
            r.handle(&mut pkt, addr(1), Arrival::fresh(Instant::now()), &mut sent.sender());
        }
        let to_3: Vec<u32> = sent
            .0
            .iter()
            .filter(|(_, a)| *a == addr(3))
            .map(|(d, _)| match clients.open(3, d) {
                MediaPacket::ScreenFragment { header, .. } => header.frame_id,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(to_3, (0..10).collect::<Vec<_>>(), "every screen fragment, in order");
        assert_eq!(r.counters.thinned, 0);

        let mut reports = Sent(Vec::new());
        r.send_reports(&mut reports.sender());
        let about_screen: Vec<ReceiverReport> = reports
            .0
            .iter()
            .filter(|(_, a)| *a == addr(1))
            .filter_map(|(d, _)| match clients.open(1, d) {
                MediaPacket::ReceiverReport { sender_id: RELAY_SENDER_ID, report }
                    if report.media == MediaKind::Screen =>
                {
                    Some(report)
                }
                _ => None,
            })
            .collect();
        assert_eq!(about_screen.len(), 1);
        assert_eq!((about_screen[0].highest_seq, about_screen[0].loss_permille), (9, 0));
    }

    /// A refresh request goes to the sharer it names, sealed for it; a second one from the
    /// same receiver within the spacing is dropped and counted, one after it goes through; a
    /// request about someone in another meeting goes nowhere.
    #[test]
    fn refresh_requests_are_forwarded_to_the_sharer_at_a_bounded_rate() {
        let (mut r, mut clients) = router();
        let t0 = Instant::now();
        let mut sent = Sent(Vec::new());
        r.handle(&mut clients.seal(refresh(2, 1)), addr(2), Arrival::fresh(t0), &mut sent.sender());
        assert_eq!(sent.0.len(), 1);
        assert_eq!(sent.0[0].1, addr(1));
        assert_eq!(clients.open(1, &sent.0[0].0), refresh(2, 1));
        let soon = t0 + Duration::from_millis(REFRESH_REQUEST_INTERVAL_MS / 2);
        r.handle(&mut clients.seal(refresh(2, 1)), addr(2), Arrival::fresh(soon), &mut sent.sender());
        assert_eq!(sent.0.len(), 1);
        assert_eq!(r.counters.drops[DropReason::RefreshLimited.index()], 1);
        // Another receiver has its own allowance, and so has a request about another sharer.
        r.handle(&mut clients.seal(refresh(3, 1)), addr(3), Arrival::fresh(soon), &mut sent.sender());
        assert_eq!(sent.0.len(), 2);
        r.handle(&mut clients.seal(refresh(2, 3)), addr(2), Arrival::fresh(soon), &mut sent.sender());
        assert_eq!(sent.0.len(), 3);
        assert_eq!(sent.0[2].1, addr(3));
        let later = t0 + Duration::from_millis(REFRESH_REQUEST_INTERVAL_MS);
        r.handle(&mut clients.seal(refresh(2, 1)), addr(2), Arrival::fresh(later), &mut sent.sender());
        assert_eq!(sent.0.len(), 4);
        assert_eq!(r.counters.refreshes_forwarded, 4);
        r.handle(
            &mut clients.seal(refresh(2, 4)),
            addr(2),
            Arrival::fresh(later + Duration::from_secs(1)),
            &mut sent.sender(),
        );
        r.handle(
            &mut clients.seal(refresh(2, 2)),
            addr(2),
            Arrival::fresh(later + Duration::from_secs(2)),
            &mut sent.sender(),
        );
        assert_eq!(sent.0.len(), 4, "not to another meeting, nor back to the asker");
        assert_eq!(r.counters.drops[DropReason::ForeignReport.index()], 2);
    }

    #[test]
    fn removal_frees_routes_and_groups() {
        let (mut r, clients) = router();
        for id in 1..=4 {
            r.apply(RouteUpdate::Remove { participant_id: id });
        }
        assert_eq!(r.route_count(), 0);
        assert!(r.group_of_meeting.is_empty());
        assert_eq!(r.free_groups.len(), 2);
        // A removed participant's datagrams, however authentic, are from nobody now.
        r.handle(&mut clients.seal(video(1, 9, 9, 0, 1)), addr(1), Arrival::fresh(Instant::now()), &mut |_, _| true);
        assert_eq!(r.counters.drops[DropReason::UnknownSender.index()], 1);
        r.apply(RouteUpdate::Add { meeting_id: 30, participant_id: 5, hop: Arc::new(secret(5)) });
        assert_eq!(r.free_groups.len(), 1, "a freed group slot is reused");
    }
}
