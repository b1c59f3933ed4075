//! Forwarding-rate figure: the relay's UDP fan-out against a plain-socket fan-out, in the
//! same run, on loopback.
//!
//! Setup for both: one sender thread blasts 1200-byte video fragments as fast as it can;
//! three receiver threads count what reaches them. In the relay run the relay is started
//! in-process (a tokio runtime with one worker thread, like the baseline's one thread) and
//! the four participants join one meeting over its real control protocol; in the baseline
//! run one plain thread does `recv_from` then `send_to` ×3. The figure that matters is the
//! packets/s the forwarder sends out; the ratio relay/baseline is printed last. On Linux the
//! forwarder threads' CPU time is read too, and the CPU per forwarded packet compared: unlike
//! throughput, that figure holds still when other work competes for the machine's cores.
//!
//! Every datagram is sealed with its sender's hop key (protocol version 5). A third run, the
//! same plain forwarder doing what the relay does for authentication (verify the trailer,
//! accept the number in a replay window, seal again for each receiver), gives the cost of
//! authentication per forwarded packet against the plain forwarder without it, same run.
//!
//! The relay run also prints how many receiver reports the relay sent the sender while it was
//! overloaded (one a second is due): a media loop that never waits must not starve them.
//!
//! Run with `cargo bench -p relay-server --bench forwarding` (release build).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{cpu_of, current_tid, hop_secret, meeting, register};
use protocol::hop::{HopReceiver, HopSecret, HopSender, HOP_SECRET_LEN};
use protocol::media::{VideoHeader, MAX_DATAGRAM_LEN, MAX_VIDEO_FRAGMENT_PAYLOAD};
use protocol::MediaPacket;
use relay_server::{Relay, RelayConfig};

mod common;

const RECEIVERS: usize = 3;
const WARMUP: Duration = Duration::from_millis(500);
const MEASURE: Duration = Duration::from_secs(3);
const FRAGS_PER_FRAME: u32 = 8;

/// Counts of one run, over the measurement window.
struct Figures {
    forwarder_in: u64,
    forwarder_out: u64,
    receivers_got: u64,
    sender_sent: u64,
    /// CPU time the forwarder's thread(s) used in the window, if the platform tells.
    forwarder_cpu: Option<Duration>,
}

impl Figures {
    fn print(&self, name: &str) {
        let secs = MEASURE.as_secs_f64();
        println!(
            "{name:>9}: sender {:>9.0} pkt/s | forwarder in {:>9.0} pkt/s, out {:>9.0} pkt/s | receivers got {:>9.0} pkt/s",
            self.sender_sent as f64 / secs,
            self.forwarder_in as f64 / secs,
            self.forwarder_out as f64 / secs,
            self.receivers_got as f64 / secs,
        );
        if let Some(ns) = self.cpu_ns_per_packet_out() {
            println!(
                "           forwarder CPU {:.2?} = {ns:.0} ns per packet out",
                self.forwarder_cpu.unwrap_or_default()
            );
        }
    }

    fn cpu_ns_per_packet_out(&self) -> Option<f64> {
        self.forwarder_cpu.map(|cpu| cpu.as_nanos() as f64 / self.forwarder_out.max(1) as f64)
    }
}

/// Rounds of each run, alternated, so a burst of load from elsewhere on the machine hits
/// both sides alike; the median round is reported.
const ROUNDS: usize = 5;

fn main() {
    println!("1 sender -> forwarder -> {RECEIVERS} receivers, {MAX_DATAGRAM_LEN}-byte datagrams, loopback, {MEASURE:?} per round");
    let mut ratios = Vec::new();
    let mut cpu_ratios = Vec::new();
    let mut auth_ratios = Vec::new();
    for round in 1..=ROUNDS {
        let relay = relay_run();
        let baseline = baseline_run(false);
        let authenticated = baseline_run(true);
        println!("round {round}");
        relay.print("relay");
        baseline.print("baseline");
        authenticated.print("base+auth");
        if let (Some(a), Some(b)) = (authenticated.cpu_ns_per_packet_out(), baseline.cpu_ns_per_packet_out()) {
            println!("    authenticated/plain forwarder CPU per packet out: {:.2}x", a / b);
            auth_ratios.push(a / b);
        }
        let ratio = relay.forwarder_out as f64 / baseline.forwarder_out.max(1) as f64;
        println!("    relay/baseline packets out: {ratio:.2}x");
        ratios.push(ratio);
        if let (Some(r), Some(b)) = (relay.cpu_ns_per_packet_out(), baseline.cpu_ns_per_packet_out()) {
            // Efficiency holds still when the machine is busy; throughput does not.
            println!("    relay/baseline CPU per packet out: {:.2}x", r / b);
            cpu_ratios.push(r / b);
        }
    }
    ratios.sort_by(f64::total_cmp);
    println!("median relay/baseline packets out over {ROUNDS} rounds: {:.2}x", ratios[ROUNDS / 2]);
    if auth_ratios.len() == ROUNDS {
        auth_ratios.sort_by(f64::total_cmp);
        println!(
            "median authenticated/plain forwarder CPU per packet out: {:.2}x (verify + replay window + a seal per receiver)",
            auth_ratios[ROUNDS / 2]
        );
    }
    if cpu_ratios.len() == ROUNDS {
        cpu_ratios.sort_by(f64::total_cmp);
        println!(
            "median relay/baseline CPU per packet out: {:.2}x (= {:.2}x the baseline's forwarding rate per CPU second)",
            cpu_ratios[ROUNDS / 2],
            1.0 / cpu_ratios[ROUNDS / 2]
        );
    }
}

/// The datagram for packet number `i` of the sender's stream, sealed by `hop`.
fn fragment(sender_id: u32, i: u32, hop: &HopSender, out: &mut [u8; MAX_DATAGRAM_LEN]) -> usize {
    static PAYLOAD: [u8; MAX_VIDEO_FRAGMENT_PAYLOAD] = [0x5A; MAX_VIDEO_FRAGMENT_PAYLOAD];
    let header = VideoHeader {
        frame_id: i / FRAGS_PER_FRAME,
        capture_ts_us: u64::from(i) * 100,
        seq: i,
        width: 854,
        height: 480,
        frag_index: (i % FRAGS_PER_FRAME) as u16,
        frag_count: FRAGS_PER_FRAME as u16,
    };
    hop.encode(&MediaPacket::VideoFragment { sender_id, header, payload: &PAYLOAD }, out).expect("fits")
}

/// Blasts fragments at `to` until `stop`; counts what it sent after `measuring` was set.
fn spawn_sender(
    socket: UdpSocket,
    to: SocketAddr,
    sender_id: u32,
    hop: HopSender,
    measuring: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        let mut out = [0u8; MAX_DATAGRAM_LEN];
        let mut i = 0u32;
        let mut counted = 0u64;
        while !stop.load(Relaxed) {
            let len = fragment(sender_id, i, &hop, &mut out);
            if socket.send_to(&out[..len], to).is_ok() && measuring.load(Relaxed) {
                counted += 1;
            }
            i = i.wrapping_add(1);
        }
        counted
    })
}

/// Counts datagrams arriving on `socket` while `measuring`, until `stop`.
fn spawn_receiver(socket: UdpSocket, measuring: Arc<AtomicBool>, stop: Arc<AtomicBool>) -> thread::JoinHandle<u64> {
    thread::spawn(move || {
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let mut buf = [0u8; 2048];
        let mut counted = 0u64;
        while !stop.load(Relaxed) {
            if socket.recv(&mut buf).is_ok() && measuring.load(Relaxed) {
                counted += 1;
            }
        }
        counted
    })
}

fn relay_run() -> Figures {
    let tids = Arc::new(std::sync::Mutex::new(Vec::new()));
    let runtime = {
        let tids = tids.clone();
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .on_thread_start(move || tids.lock().unwrap().extend(current_tid()))
            .enable_all()
            .build()
            .unwrap()
    };
    let config = RelayConfig { liveness_timeout: Duration::from_secs(120), ..RelayConfig::for_tests() };
    let relay = runtime.block_on(Relay::start(config)).expect("relay starts");
    let members = runtime.block_on(meeting(relay.tcp_addr(), relay.certificate_fingerprint(), 1 + RECEIVERS));
    let udp = relay.udp_addr();
    let sockets: Vec<(UdpSocket, HopSender)> = members.iter().map(|(c, w)| register(udp, w, &hop_secret(c))).collect();
    let sender_id = members[0].1.participant_id;

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let mut sockets = sockets.into_iter();
    let (sender_socket, sender_hop) = sockets.next().unwrap();
    let receivers: Vec<_> = sockets.map(|(s, _)| spawn_receiver(s, measuring.clone(), stop.clone())).collect();
    let sender = spawn_sender(sender_socket, udp, sender_id, sender_hop, measuring.clone(), stop.clone());

    thread::sleep(WARMUP);
    let relay_tids = tids.lock().unwrap().clone();
    let before = relay.stats();
    let cpu_before = cpu_of(&relay_tids);
    measuring.store(true, Relaxed);
    thread::sleep(MEASURE);
    measuring.store(false, Relaxed);
    let after = relay.stats();
    let cpu_after = cpu_of(&relay_tids);
    stop.store(true, Relaxed);
    let sender_sent = sender.join().unwrap();
    let receivers_got = receivers.into_iter().map(|r| r.join().unwrap()).sum();
    // The relay owes the sender a receiver report on its video each second, overload or not.
    println!(
        "   relay: {} receiver reports to the sender during the {MEASURE:?} blast (one a second due)",
        after.reports_sent - before.reports_sent
    );
    if after.total_drops() > 0 || after.send_errors > 0 {
        println!("   (relay drops by reason: {:?}, send errors: {})", after.drops, after.send_errors);
    }
    runtime.block_on(async {
        drop(members);
        relay.shutdown().await;
    });
    Figures {
        forwarder_in: after.udp_packets_in - before.udp_packets_in,
        forwarder_out: after.udp_packets_out - before.udp_packets_out,
        receivers_got,
        sender_sent,
        forwarder_cpu: cpu_after.zip(cpu_before).map(|(a, b)| a.saturating_sub(b)),
    }
}

/// The plain forwarder: `recv_from`, then `send_to` to each receiver. With `authenticate` it
/// also does the relay's per-packet authentication work: verify the sender's trailer, accept
/// its number in the replay window, seal each copy with its receiver's key.
fn baseline_run(authenticate: bool) -> Figures {
    // The same kernel buffers the relay asks for, so both forwarders absorb bursts alike.
    let forwarder = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    let buffer = RelayConfig::default().udp_socket_buffer;
    forwarder.set_recv_buffer_size(buffer).unwrap();
    forwarder.set_send_buffer_size(buffer).unwrap();
    forwarder.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let forwarder: UdpSocket = forwarder.into();
    forwarder.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let forwarder_addr = forwarder.local_addr().unwrap();
    let receiver_sockets: Vec<UdpSocket> = (0..RECEIVERS).map(|_| UdpSocket::bind("127.0.0.1:0").unwrap()).collect();
    let targets: Vec<SocketAddr> = receiver_sockets.iter().map(|s| s.local_addr().unwrap()).collect();
    let secret = |n: u8| HopSecret::new([n; HOP_SECRET_LEN]);
    let mut from_sender = HopReceiver::new(secret(0).to_relay());
    let to_receivers: Vec<HopSender> = (1..=RECEIVERS as u8).map(|n| HopSender::new(secret(n).from_relay())).collect();

    let measuring = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let (fwd_in, fwd_out) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let (tid_tx, tid_rx) = std::sync::mpsc::channel();
    let fwd = {
        let (stop, fwd_in, fwd_out) = (stop.clone(), fwd_in.clone(), fwd_out.clone());
        thread::spawn(move || {
            let _ = tid_tx.send(current_tid());
            let mut buf = [0u8; 2048];
            let (mut n_in, mut n_out) = (0u64, 0u64);
            while !stop.load(Relaxed) {
                if let Ok((n, _)) = forwarder.recv_from(&mut buf) {
                    n_in += 1;
                    if authenticate {
                        let Ok(seq) = from_sender.verify(&buf[..n]) else { continue };
                        if from_sender.accept(seq).is_err() {
                            continue;
                        }
                    }
                    for (t, hop) in targets.iter().zip(&to_receivers) {
                        if authenticate && hop.seal(&mut buf[..n]).is_err() {
                            continue;
                        }
                        if forwarder.send_to(&buf[..n], t).is_ok() {
                            n_out += 1;
                        }
                    }
                    if n_in % 64 == 0 {
                        fwd_in.store(n_in, Relaxed);
                        fwd_out.store(n_out, Relaxed);
                    }
                }
            }
        })
    };
    let receivers: Vec<_> =
        receiver_sockets.into_iter().map(|s| spawn_receiver(s, measuring.clone(), stop.clone())).collect();
    let sender_hop = HopSender::new(secret(0).to_relay());
    let sender = spawn_sender(
        UdpSocket::bind("127.0.0.1:0").unwrap(),
        forwarder_addr,
        1,
        sender_hop,
        measuring.clone(),
        stop.clone(),
    );

    thread::sleep(WARMUP);
    let fwd_tids: Vec<u32> = tid_rx.recv().ok().flatten().into_iter().collect();
    let (in0, out0) = (fwd_in.load(Relaxed), fwd_out.load(Relaxed));
    let cpu_before = cpu_of(&fwd_tids);
    measuring.store(true, Relaxed);
    thread::sleep(MEASURE);
    measuring.store(false, Relaxed);
    let (in1, out1) = (fwd_in.load(Relaxed), fwd_out.load(Relaxed));
    let cpu_after = cpu_of(&fwd_tids);
    stop.store(true, Relaxed);
    let sender_sent = sender.join().unwrap();
    let receivers_got = receivers.into_iter().map(|r| r.join().unwrap()).sum();
    fwd.join().unwrap();
    Figures {
        forwarder_in: in1 - in0,
        forwarder_out: out1 - out0,
        receivers_got,
        sender_sent,
        forwarder_cpu: cpu_after.zip(cpu_before).map(|(a, b)| a.saturating_sub(b)),
    }
}
