//! Load generator: many meetings of a few participants each, sending audio and video at real
//! rates through one relay, and what the relay makes of it.
//!
//! The relay runs as its own process (the `relay-server` binary cargo built beside this bench),
//! pinned to CPU 0 where the machine has two; this process, the load generator, pins itself to
//! the other CPUs. For each load (a number of meetings) a fresh relay is started, the meetings
//! are created and joined over the real control protocol (TLS, knock and admit), each
//! participant's media socket is registered, and then every participant sends, until the end:
//!
//! - audio: a 20 ms packet every 20 ms (a sealed 16 kHz PCM frame, 670 bytes, as the app sends);
//! - video: 240p at 15 frames a second, each frame `--fragments` fragments (the last shorter),
//!   sent back to back as the app does;
//! - an RTT request every second.
//!
//! Every datagram is sealed with its participant's hop key. The generator receives on every
//! participant's socket in batches (quinn-udp) and reads the kernel's receive timestamp of each
//! datagram; senders stamp the send time in the packet's capture timestamp, so the delay from
//! send to receive is on one clock and without the generator's own scheduling delay — an upper
//! bound of what the relay adds (the loopback path is a few µs). Figures over the measurement
//! window: datagrams sent to the relay and delivered from it per second, its CPU and the
//! kernel's drops on full socket buffers (from /proc), audio and video loss at the receivers,
//! delay p50 / p99 / p99.9, the relay's receiver reports and RTT replies that arrived against
//! those due, and the relay's resident memory idle and loaded, per participant; and the relay's
//! drops by reason and send errors over the whole run (its metrics endpoint, read while idle).
//!
//! Run with `cargo bench -p relay-server --bench load` (release build); options:
//! `-- --meetings 50,100,150,200 --size 4 --seconds 10 --fragments 4` (the defaults).
//! `PARLOR_LOAD_RELAY_BINARY=PATH` measures another relay binary (another commit's build).

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, IoSliceMut, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{hop_secret, meeting, register, Control};
use protocol::hop::{HopSender, HOP_TRAILER_LEN};
use protocol::media::{
    AudioHeader, RttEcho, VideoHeader, MAX_DATAGRAM_LEN, MAX_VIDEO_FRAGMENT_PAYLOAD, RELAY_SENDER_ID,
};
use protocol::MediaPacket;

mod common;

/// Seconds of sending before the measurement window opens (the relay learns routes, the
/// kernel buffers settle).
const WARMUP: Duration = Duration::from_secs(2);
/// Audio body: 20 ms of 16 kHz 16-bit mono PCM (642 bytes with its framing) sealed end to end
/// (28 bytes more), as the app sends it without redundant copies.
const AUDIO_PAYLOAD: usize = 670;
const AUDIO_INTERVAL_US: u64 = 20_000;
const VIDEO_FPS: u64 = 15;
/// The last fragment of a frame: a frame is rarely a whole number of fragments.
const LAST_FRAGMENT_PAYLOAD: usize = 500;
/// A generator whose audio leaves later than this at p99 is behind its schedule: its bursts
/// batch better at the relay than steady senders would, and the row is marked.
const GENERATOR_LATE_MS: f64 = 2.0;
/// One meeting's creation and joins, over the control protocol.
const SETUP_TIMEOUT: Duration = Duration::from_secs(10);
/// Receive slots per socket and call.
const RECV_SLOTS: usize = 8;

struct Options {
    meetings: Vec<usize>,
    size: usize,
    seconds: u64,
    fragments: u32,
}

impl Options {
    fn parse() -> Options {
        let mut o = Options { meetings: vec![50, 100, 150, 200], size: 4, seconds: 10, fragments: 4 };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().unwrap_or_else(|| panic!("{arg} needs a value"));
            match arg.as_str() {
                "--meetings" => {
                    o.meetings = value().split(',').map(|n| n.trim().parse().expect("--meetings N,N,…")).collect()
                }
                "--size" => o.size = value().parse().expect("--size N"),
                "--seconds" => o.seconds = value().parse().expect("--seconds N"),
                "--fragments" => o.fragments = value().parse().expect("--fragments N"),
                // cargo bench passes --bench to harness-less benches.
                "--bench" => {}
                other => panic!("unknown option {other}"),
            }
        }
        assert!(o.size >= 2 && o.fragments >= 1 && o.seconds >= 1, "a meeting of 2 or more, 1 fragment or more");
        o
    }
}

fn main() {
    let options = Options::parse();
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    let pinned = cpus >= 2 && pin_self_off_cpu0(cpus);
    println!(
        "load: meetings of {}, audio every 20 ms + 240p at {VIDEO_FPS} fps in {} fragments, RTT request every 1 s, {} s measured per load{}",
        options.size,
        options.fragments,
        options.seconds,
        if pinned { "; relay on CPU 0, generator on the others" } else { "; nothing pinned" }
    );
    let mut table = Vec::new();
    for &meetings in &options.meetings {
        let figures = run(&options, meetings, pinned);
        figures.print();
        table.push(figures);
    }
    println!("\nsummary");
    println!("| meetings × size | pkt/s in | pkt/s out | relay CPU | audio loss | video loss | delay p50 / p99 / p99.9 | reports | RTT replies | RSS per participant | generator late p99 |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for f in &table {
        println!(
            "| {} × {} | {:.0}k | {:.0}k | {:.0}% | {:.3}% | {:.3}% | {:.2} / {:.2} / {:.2} ms | {:.1}% | {:.1}% | {:.1} KiB | {:.1} ms{} |",
            f.meetings,
            f.size,
            f.relay_in_per_s / 1e3,
            f.relay_out_per_s / 1e3,
            f.relay_cpu * 100.0,
            f.audio_loss * 100.0,
            f.video_loss * 100.0,
            f.delay_ms(0.50),
            f.delay_ms(0.99),
            f.delay_ms(0.999),
            f.reports_share * 100.0,
            f.rtt_share * 100.0,
            f.rss_per_participant_kib,
            f.generator_late_p99_ms,
            if f.generator_late_p99_ms > GENERATOR_LATE_MS { " (behind)" } else { "" },
        );
    }
}

/// Moves every thread of this process to the CPUs other than 0 (Linux `taskset`).
fn pin_self_off_cpu0(cpus: usize) -> bool {
    let list = format!("1-{}", cpus - 1);
    Command::new("taskset")
        .args(["-a", "-cp", &list, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The relay under test, in its own process.
struct RelayProcess {
    child: Child,
    tcp: SocketAddr,
    udp: SocketAddr,
    fingerprint: protocol::fingerprint::Fingerprint,
    metrics: SocketAddr,
}

impl RelayProcess {
    fn start(pinned: bool) -> RelayProcess {
        let metrics = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address")
        };
        // Another build can be measured against this one's generator (an A/B of two commits).
        let binary =
            std::env::var("PARLOR_LOAD_RELAY_BINARY").unwrap_or_else(|_| env!("CARGO_BIN_EXE_relay-server").into());
        let mut cmd = if pinned {
            let mut c = Command::new("taskset");
            c.args(["-c", "0", &binary]);
            c
        } else {
            Command::new(binary)
        };
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("PARLOR_") {
                cmd.env_remove(var);
            }
        }
        // One address plays every participant: the per-address limits are opened up.
        cmd.args(["--host", "127.0.0.1", "--tcp-port", "0", "--udp-port", "0", "--log", "warn"])
            .args(["--metrics-addr", &metrics.to_string()])
            .args(["--max-connections", "100000", "--max-connections-per-address", "100000"])
            .args(["--max-pending-knocks-per-address", "10000"])
            .args(["--knocks-burst", "1000000", "--new-meetings-burst", "1000000"])
            .args(["--liveness-timeout-secs", "3600", "--max-participants", "64"]);
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("run relay-server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut next = || lines.next().expect("the relay printed its addresses").expect("UTF-8");
        // "parlor relay listening: control tcp://ADDR  media udp://ADDR"
        let listening = next();
        let addr = |scheme: &str| -> SocketAddr {
            let rest = listening.split(scheme).nth(1).expect("the address");
            rest.split_whitespace().next().expect("ADDR").parse().expect("HOST:PORT")
        };
        let (tcp, udp) = (addr("tcp://"), addr("udp://"));
        // "certificate SHA-256 fingerprint: …"
        let fingerprint = next().rsplit(' ').next().expect("fingerprint").parse().expect("a fingerprint");
        thread::spawn(move || lines.for_each(drop));
        let relay = RelayProcess { child, tcp, udp, fingerprint, metrics };
        let deadline = Instant::now() + Duration::from_secs(10);
        while relay.scrape().is_none() {
            assert!(Instant::now() < deadline, "the relay's metrics endpoint never answered");
            thread::sleep(Duration::from_millis(20));
        }
        relay
    }

    /// The relay's counters: `name` or `name{labels}` → value.
    fn scrape(&self) -> Option<HashMap<String, f64>> {
        let mut stream = TcpStream::connect(self.metrics).ok()?;
        stream.write_all(b"GET /metrics HTTP/1.0\r\nHost: relay\r\n\r\n").ok()?;
        let mut text = String::new();
        stream.read_to_string(&mut text).ok()?;
        let body = text.split("\r\n\r\n").nth(1)?;
        Some(
            body.lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| {
                    let (name, value) = l.rsplit_once(' ')?;
                    Some((name.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }

    /// CPU time the relay process has used (user + system).
    fn cpu(&self) -> Duration {
        process_cpu(&self.child.id().to_string())
    }

    /// Resident memory, KiB.
    fn rss_kib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("the relay's status");
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .expect("VmRSS")
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) process `pid` ("self" for this one) has used so far (Linux).
fn process_cpu(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc/PID/stat");
    let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    // USER_HZ is 100 on every Linux configuration Parlor runs on.
    Duration::from_millis(ticks * 10)
}

/// Microseconds since the Unix epoch: the clock senders stamp and the kernel's receive
/// timestamps are read on.
fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_micros() as u64
}

/// One participant as the sender thread sees it.
struct Sender {
    id: u32,
    socket: UdpSocket,
    hop: HopSender,
    next_audio_us: u64,
    next_video_us: u64,
    next_rtt_us: u64,
    audio_seq: u32,
    video_seq: u32,
    frame_id: u32,
}

/// What the sender thread sent with a send time inside the window.
#[derive(Default)]
struct Sent {
    audio: u64,
    video: u64,
    rtt_requests: u64,
    /// How late each audio packet left against its schedule, µs: a generator behind its
    /// schedule sends in bursts, which a relay batches better than steady senders.
    lateness_us: Vec<u32>,
}

/// What the receivers got, sent (data) or received (reports, replies) inside the window.
#[derive(Default)]
struct Received {
    audio: u64,
    video: u64,
    reports: u64,
    rtt_replies: u64,
    /// Send-to-receive delay of every audio and video datagram, µs.
    delays_us: Vec<u32>,
}

struct Figures {
    meetings: usize,
    size: usize,
    relay_in_per_s: f64,
    relay_out_per_s: f64,
    relay_cpu: f64,
    /// This process's CPU, in cores: where it nears the CPUs it has, the offered load is late.
    generator_cpu: f64,
    drops: Vec<(String, f64)>,
    send_errors: f64,
    /// Datagrams the kernel dropped for a full receive buffer: the relay's socket, and the
    /// generator's sockets (a generator that cannot keep up shows here).
    relay_socket_drops: u64,
    generator_socket_drops: u64,
    audio_loss: f64,
    video_loss: f64,
    delays_us: Vec<u32>,
    reports_share: f64,
    rtt_share: f64,
    rss_idle_kib: f64,
    rss_loaded_kib: f64,
    rss_per_participant_kib: f64,
    sent_per_participant_per_s: f64,
    /// p99 of how late the generator sent audio against its schedule, ms.
    generator_late_p99_ms: f64,
}

impl Figures {
    fn delay_ms(&self, q: f64) -> f64 {
        if self.delays_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.delays_us.len() - 1) as f64 * q).round() as usize;
        f64::from(self.delays_us[i]) / 1000.0
    }

    fn print(&self) {
        println!(
            "\n{} meetings × {} = {} participants, each sending {:.0} datagrams/s",
            self.meetings,
            self.size,
            self.meetings * self.size,
            self.sent_per_participant_per_s
        );
        println!(
            "  relay: {:.0} datagrams/s sent to it, {:.0} delivered from it, CPU {:.1}% of one core ({:.2} µs per datagram delivered), send errors {}",
            self.relay_in_per_s,
            self.relay_out_per_s,
            self.relay_cpu * 100.0,
            self.relay_cpu * 1e6 / self.relay_out_per_s.max(1.0),
            self.send_errors
        );
        let drops: Vec<String> =
            self.drops.iter().filter(|(_, n)| *n > 0.0).map(|(r, n)| format!("{r} {n:.0}")).collect();
        println!(
            "  relay drops over the whole run: {}",
            if drops.is_empty() { "none".to_string() } else { drops.join(", ") }
        );
        println!(
            "  kernel drops for a full receive buffer: relay socket {}, generator sockets {}; load generator CPU {:.0}% of one core, sends late by {:.2} ms at p99{}",
            self.relay_socket_drops,
            self.generator_socket_drops,
            self.generator_cpu * 100.0,
            self.generator_late_p99_ms,
            if self.generator_late_p99_ms > GENERATOR_LATE_MS { " (BEHIND: bursty, not the offered load)" } else { "" }
        );
        println!(
            "  receivers: audio loss {:.3}%, video loss {:.3}%; delay send → receive p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
            self.audio_loss * 100.0,
            self.video_loss * 100.0,
            self.delay_ms(0.5),
            self.delay_ms(0.99),
            self.delay_ms(0.999)
        );
        println!(
            "  relay's receiver reports arrived {:.1}% of those due, RTT replies {:.1}% of requests",
            self.reports_share * 100.0,
            self.rtt_share * 100.0
        );
        println!(
            "  relay RSS {:.1} MiB idle, {:.1} MiB loaded: {:.1} KiB per participant",
            self.rss_idle_kib / 1024.0,
            self.rss_loaded_kib / 1024.0,
            self.rss_per_participant_kib
        );
    }
}

fn run(options: &Options, meetings: usize, pinned: bool) -> Figures {
    let relay = RelayProcess::start(pinned);
    let rss_idle_kib = relay.rss_kib();
    let control_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    // Meetings are created and joined over the control protocol; the connections stay open.
    let members: Vec<(Control, protocol::control::MeetingWelcome)> = control_runtime.block_on(async {
        let mut all = Vec::new();
        for _ in 0..meetings {
            let joined = tokio::time::timeout(SETUP_TIMEOUT, meeting(relay.tcp, relay.fingerprint, options.size));
            all.extend(joined.await.unwrap_or_else(|_| {
                panic!(
                    "meeting {} of {meetings} not set up within {SETUP_TIMEOUT:?}: a relay limit?",
                    all.len() / options.size + 1
                )
            }));
        }
        all
    });
    let participants = members.len();
    let start_us = unix_us() + 200_000;
    let window =
        (start_us + WARMUP.as_micros() as u64, start_us + WARMUP.as_micros() as u64 + options.seconds * 1_000_000);
    let mut senders = Vec::new();
    let mut receive_sockets = Vec::new();
    let mut generator_ports = Vec::new();
    for (i, (control, welcome)) in members.iter().enumerate() {
        let (socket, hop) = register(relay.udp, welcome, &hop_secret(control));
        socket.set_nonblocking(true).unwrap();
        generator_ports.push(socket.local_addr().unwrap().port());
        receive_sockets.push(socket.try_clone().unwrap());
        // Spread over the interval, as independent clients would be.
        let offset = (i as u64 * 7919) % AUDIO_INTERVAL_US;
        senders.push(Sender {
            id: welcome.participant_id,
            socket,
            hop,
            next_audio_us: start_us + offset,
            next_video_us: start_us + (i as u64 * 104_729) % (1_000_000 / VIDEO_FPS),
            next_rtt_us: start_us + (i as u64 * 15_485_863) % 1_000_000,
            audio_seq: 0,
            video_seq: 0,
            frame_id: 0,
        });
    }

    // The relay's counters before and after the load, read while it is idle (an overloaded
    // relay answers its metrics late).
    let m0 = relay.scrape().expect("metrics");
    let stop_receiving = Arc::new(AtomicBool::new(false));
    let receiver = {
        let stop = stop_receiving.clone();
        thread::spawn(move || receive(receive_sockets, window, stop))
    };
    let stop_sending = Arc::new(AtomicBool::new(false));
    let fragments = options.fragments;
    let relay_udp = relay.udp;
    let sender = {
        let stop = stop_sending.clone();
        thread::spawn(move || send(senders, relay_udp, fragments, window, stop))
    };

    // CPU and the kernel's socket drops at the window's edges, from /proc.
    sleep_until_us(window.0);
    let (cpu0, own0, drops0, t0) = (relay.cpu(), process_cpu("self"), socket_drops(), Instant::now());
    sleep_until_us(window.1);
    let (cpu1, own1, drops1, t1) = (relay.cpu(), process_cpu("self"), socket_drops(), Instant::now());
    let kernel_drops = |port: u16| drops1.get(&port).copied().unwrap_or(0) - drops0.get(&port).copied().unwrap_or(0);
    let relay_socket_drops = kernel_drops(relay.udp.port());
    let generator_socket_drops: u64 = generator_ports.iter().map(|p| kernel_drops(*p)).sum();
    let rss_loaded_kib = relay.rss_kib();
    thread::sleep(Duration::from_millis(100));
    stop_sending.store(true, Relaxed);
    let sent = sender.join().unwrap();
    // In-flight datagrams land, then the receivers read what is queued and stop.
    thread::sleep(Duration::from_millis(300));
    stop_receiving.store(true, Relaxed);
    let mut received = receiver.join().unwrap();
    let m1 = relay.scrape().expect("metrics");
    drop(members);
    drop(relay);

    let secs = (t1 - t0).as_secs_f64();
    let delta = |name: &str| m1.get(name).copied().unwrap_or(0.0) - m0.get(name).copied().unwrap_or(0.0);
    let drops = m1
        .keys()
        .filter(|k| k.starts_with("parlor_udp_drops_total{"))
        .map(|k| {
            let reason = k.split('"').nth(1).unwrap_or(k).to_string();
            (reason, delta(k))
        })
        .collect();
    let others = (options.size - 1) as f64;
    let loss = |got: u64, sent: u64| 1.0 - got as f64 / (sent as f64 * others).max(1.0);
    received.delays_us.sort_unstable();
    let seconds = options.seconds as f64;
    // Each sender is owed a report a second on each of its two streams.
    let reports_due = participants as f64 * 2.0 * seconds;
    Figures {
        meetings,
        size: options.size,
        relay_in_per_s: (sent.audio + sent.video + sent.rtt_requests) as f64 / seconds,
        relay_out_per_s: (received.audio + received.video + received.reports + received.rtt_replies) as f64 / seconds,
        relay_cpu: (cpu1 - cpu0).as_secs_f64() / secs,
        generator_cpu: (own1 - own0).as_secs_f64() / secs,
        drops,
        send_errors: delta("parlor_udp_send_errors_total"),
        relay_socket_drops,
        generator_socket_drops,
        audio_loss: loss(received.audio, sent.audio),
        video_loss: loss(received.video, sent.video),
        delays_us: received.delays_us,
        reports_share: received.reports as f64 / reports_due,
        rtt_share: received.rtt_replies as f64 / sent.rtt_requests.max(1) as f64,
        rss_idle_kib,
        rss_loaded_kib,
        rss_per_participant_kib: (rss_loaded_kib - rss_idle_kib) / participants as f64,
        sent_per_participant_per_s: (sent.audio + sent.video + sent.rtt_requests) as f64
            / participants as f64
            / seconds,
        generator_late_p99_ms: {
            let mut late = sent.lateness_us.clone();
            late.sort_unstable();
            late.get(late.len().saturating_sub(1) * 99 / 100).map_or(0.0, |us| f64::from(*us) / 1000.0)
        },
    }
}

/// Datagrams dropped by the kernel per local UDP port on 127.0.0.1 (`/proc/net/udp`).
fn socket_drops() -> HashMap<u16, u64> {
    let table = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let port = u16::from_str_radix(fields.get(1)?.rsplit(':').next()?, 16).ok()?;
            Some((port, fields.last()?.parse::<u64>().ok()?))
        })
        .fold(HashMap::new(), |mut m, (port, drops)| {
            *m.entry(port).or_insert(0) += drops;
            m
        })
}

fn sleep_until_us(t: u64) {
    let now = unix_us();
    if t > now {
        thread::sleep(Duration::from_micros(t - now));
    }
}

/// The sender thread: every participant's audio, video and RTT requests on schedule until
/// `stop`.
fn send(
    mut senders: Vec<Sender>,
    relay: SocketAddr,
    fragments: u32,
    window: (u64, u64),
    stop: Arc<AtomicBool>,
) -> Sent {
    static PAYLOAD: [u8; MAX_VIDEO_FRAGMENT_PAYLOAD] = [0x5A; MAX_VIDEO_FRAGMENT_PAYLOAD];
    let mut out = [0u8; MAX_DATAGRAM_LEN];
    let mut sent = Sent::default();
    let frame_us = 1_000_000 / VIDEO_FPS;
    loop {
        let now = unix_us();
        if stop.load(Relaxed) {
            return sent;
        }
        let in_window = |ts: u64| ts >= window.0 && ts < window.1;
        for s in &mut senders {
            while s.next_audio_us <= now {
                let ts = unix_us();
                let header = AudioHeader { seq: s.audio_seq, capture_ts_us: ts, sample_rate: 16_000, channels: 1 };
                let packet = MediaPacket::Audio { sender_id: s.id, header, sealed: &PAYLOAD[..AUDIO_PAYLOAD] };
                let len = s.hop.encode(&packet, &mut out).expect("fits");
                if s.socket.send_to(&out[..len], relay).is_ok() && in_window(ts) {
                    sent.audio += 1;
                    sent.lateness_us.push(ts.saturating_sub(s.next_audio_us).min(u64::from(u32::MAX)) as u32);
                }
                s.audio_seq = s.audio_seq.wrapping_add(1);
                s.next_audio_us += AUDIO_INTERVAL_US;
            }
            while s.next_video_us <= now {
                for frag_index in 0..fragments {
                    let last = frag_index + 1 == fragments;
                    let ts = unix_us();
                    let header = VideoHeader {
                        frame_id: s.frame_id,
                        capture_ts_us: ts,
                        seq: s.video_seq,
                        width: 426,
                        height: 240,
                        frag_index: frag_index as u16,
                        frag_count: fragments as u16,
                    };
                    let payload = if last { &PAYLOAD[..LAST_FRAGMENT_PAYLOAD] } else { &PAYLOAD[..] };
                    let packet = MediaPacket::VideoFragment { sender_id: s.id, header, payload };
                    let len = s.hop.encode(&packet, &mut out).expect("fits");
                    if s.socket.send_to(&out[..len], relay).is_ok() && in_window(ts) {
                        sent.video += 1;
                    }
                    s.video_seq = s.video_seq.wrapping_add(1);
                }
                s.frame_id = s.frame_id.wrapping_add(1);
                s.next_video_us += frame_us;
            }
            while s.next_rtt_us <= now {
                let ts = unix_us();
                let echo = RttEcho { echo_id: s.next_rtt_us as u32, sent_ts_us: ts };
                let len = s.hop.encode(&MediaPacket::RttRequest { sender_id: s.id, echo }, &mut out).expect("fits");
                if s.socket.send_to(&out[..len], relay).is_ok() && in_window(ts) {
                    sent.rtt_requests += 1;
                }
                s.next_rtt_us += 1_000_000;
            }
        }
        thread::sleep(Duration::from_micros(500));
    }
}

/// The receiver thread: every participant's socket on one single-threaded runtime, received in
/// batches, tallied until `stop`.
fn receive(sockets: Vec<UdpSocket>, window: (u64, u64), stop: Arc<AtomicBool>) -> Received {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let tally = Rc::new(RefCell::new(Received::default()));
    let local = tokio::task::LocalSet::new();
    for socket in sockets {
        let tally = tally.clone();
        let stop = stop.clone();
        local.spawn_local(async move {
            let state = quinn_udp::UdpSocketState::new((&socket).into()).expect("batched receive");
            let socket = tokio::net::UdpSocket::from_std(socket).expect("a tokio socket");
            let slot_len = (MAX_DATAGRAM_LEN + 1) * state.gro_segments().max(1);
            let mut storage = vec![0u8; slot_len * RECV_SLOTS];
            let mut slots: Vec<IoSliceMut<'_>> = storage.chunks_mut(slot_len).map(IoSliceMut::new).collect();
            let mut metas = vec![quinn_udp::RecvMeta::default(); RECV_SLOTS];
            loop {
                // Once told to stop, what is queued is still read: a generator behind its
                // load would otherwise count the datagrams it had not read yet as lost.
                let stopping = stop.load(Relaxed);
                if !stopping && tokio::time::timeout(Duration::from_millis(50), socket.readable()).await.is_err() {
                    continue;
                }
                // Stopping, the socket itself is asked (the runtime's readiness may be stale).
                let received = if stopping {
                    state.recv((&socket).into(), &mut slots, &mut metas)
                } else {
                    socket
                        .try_io(tokio::io::Interest::READABLE, || state.recv((&socket).into(), &mut slots, &mut metas))
                };
                let Ok(count) = received else {
                    if stopping {
                        break;
                    }
                    continue;
                };
                let mut t = tally.borrow_mut();
                for (slot, meta) in slots.iter().zip(&metas).take(count) {
                    let at_us = meta.timestamp.map_or_else(unix_us, |d| d.as_micros() as u64);
                    for datagram in slot[..meta.len].chunks(meta.stride.max(1)) {
                        tally_one(&mut t, datagram, at_us, window);
                    }
                }
            }
        });
    }
    runtime.block_on(local);
    Rc::try_unwrap(tally).ok().expect("every task ended").into_inner()
}

fn tally_one(t: &mut Received, datagram: &[u8], at_us: u64, window: (u64, u64)) {
    let Some(body) = datagram.len().checked_sub(HOP_TRAILER_LEN).map(|n| &datagram[..n]) else { return };
    let in_window = |ts: u64| ts >= window.0 && ts < window.1;
    match MediaPacket::decode(body) {
        Ok(MediaPacket::Audio { header, .. }) if in_window(header.capture_ts_us) => {
            t.audio += 1;
            t.delays_us.push(at_us.saturating_sub(header.capture_ts_us).min(u64::from(u32::MAX)) as u32);
        }
        Ok(MediaPacket::VideoFragment { header, .. }) if in_window(header.capture_ts_us) => {
            t.video += 1;
            t.delays_us.push(at_us.saturating_sub(header.capture_ts_us).min(u64::from(u32::MAX)) as u32);
        }
        Ok(MediaPacket::ReceiverReport { sender_id: RELAY_SENDER_ID, .. }) if in_window(at_us) => t.reports += 1,
        Ok(MediaPacket::RttReply { echo, .. }) if in_window(echo.sent_ts_us) => t.rtt_replies += 1,
        _ => {}
    }
}
