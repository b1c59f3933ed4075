//! Relay memory over load cycles: what a relay process holds with many meetings full of chat,
//! and what it gives back once they have ended (the issue 11 row 9 attack: 1,000 meetings, each
//! sent 200 chat messages of 4,000 four-byte characters, 16 KB apiece).
//!
//! The relay runs as its own process (the release `relay-server` binary, on 127.0.0.1 with
//! free ports), so its RSS is its own and not this load generator's. The per-address and
//! per-participant rates are lifted by flag: the figure is memory, not the limits (the abuse
//! suite tests those). Each cycle opens one connection per meeting, creates the meeting, sends
//! the chat (reading every echo), and measures the relay's RSS; then closes every connection,
//! waits until the relay has logged the end of each meeting, and measures again. Later cycles
//! show whether what is held after the first one grows.
//!
//! Run with `cargo bench -p relay-server --bench memory_cycle` (release build); the sizes are
//! arguments: `-- MEETINGS MESSAGES CYCLES` (default 1000 200 3).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::{stream, SinkExt, StreamExt};
use protocol::framing::{ControlFrames, FrameCodec};
use protocol::{ControlMessage, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

type Control = Framed<tokio_rustls::client::TlsStream<TcpStream>, ControlFrames>;

/// How many meetings are filled at the same time.
const PARALLEL: usize = 16;
/// Longest wait for the relay to say it started, or to end every meeting.
const RELAY_WAIT: Duration = Duration::from_secs(120);

/// The relay process and what it prints.
struct RelayProcess {
    child: Child,
    tcp: SocketAddr,
    /// The certificate fingerprint it printed.
    pin: protocol::fingerprint::Fingerprint,
    /// One `()` per meeting the relay has ended.
    ended: mpsc::Receiver<()>,
}

impl RelayProcess {
    fn start(meetings: usize) -> RelayProcess {
        let lifted = (meetings * 10).to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_relay-server"))
            .args(["--host", "127.0.0.1", "--tcp-port", "0", "--udp-port", "0", "--log", "info"])
            .args(["--liveness-timeout-secs", "3600", "--idle-before-join-secs", "3600"])
            .args(["--max-connections-per-address", &lifted, "--new-meetings-burst", &lifted])
            .args(["--chat-burst", &lifted, "--chat-per-second", &lifted])
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the release relay-server");
        let (addr_tx, addr_rx) = mpsc::channel();
        let (ended_tx, ended) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        std::thread::spawn(move || {
            let mut addr = String::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("parlor relay listening: control tcp://") {
                    addr = rest.split_whitespace().next().unwrap_or_default().to_string();
                } else if let Some(fp) = line.strip_prefix("certificate SHA-256 fingerprint: ") {
                    let _ = addr_tx.send((addr.clone(), fp.trim().to_string()));
                } else if line.contains("meeting ended") && line.contains("meeting_id") {
                    let _ = ended_tx.send(());
                }
            }
        });
        let (addr, fp) = addr_rx.recv_timeout(RELAY_WAIT).expect("the relay prints its address and fingerprint");
        let pin = fp.parse().expect("a fingerprint");
        RelayProcess { child, tcp: addr.parse().expect("a socket address"), pin, ended }
    }

    /// (VmRSS, VmHWM) in MiB.
    fn memory(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("proc status");
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map_or(f64::NAN, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    fn wait_ended(&self, meetings: usize) {
        let deadline = Instant::now() + RELAY_WAIT;
        for n in 0..meetings {
            let left = deadline.saturating_duration_since(Instant::now());
            self.ended.recv_timeout(left).unwrap_or_else(|_| panic!("only {n} of {meetings} meetings ended"));
        }
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn recv(c: &mut Control) -> ControlMessage {
    c.next().await.expect("the relay answers").expect("a well-formed frame").expect("a control message")
}

/// A host connection with its own meeting.
async fn create_meeting(relay: SocketAddr, pin: protocol::fingerprint::Fingerprint, n: usize) -> Control {
    let tcp = TcpStream::connect(relay).await.expect("connect");
    let config = protocol::tls::client_config(protocol::tls::pinned(pin));
    let name = rustls::pki_types::ServerName::try_from("parlor-relay").expect("a DNS name");
    let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config)).connect(name, tcp).await.expect("TLS");
    let mut c = Framed::new(stream, ControlFrames(FrameCodec::default()));
    c.send(ControlMessage::Hello { protocol_version: PROTOCOL_VERSION, client_name: "memory-cycle".into() })
        .await
        .expect("send");
    assert!(matches!(recv(&mut c).await, ControlMessage::Welcome { .. }));
    c.send(ControlMessage::CreateMeeting { display_name: format!("Host {n}"), media_public_key: "0f".repeat(32) })
        .await
        .expect("send");
    match recv(&mut c).await {
        ControlMessage::Joined(_) => c,
        other => panic!("expected JOINED, got {other:?}"),
    }
}

/// Sends `messages` chat messages of `text`, reading each one's echo.
async fn fill_chat(c: &mut Control, messages: usize, text: &str) {
    for _ in 0..messages {
        c.send(ControlMessage::ChatSend { text: text.to_string(), client_msg_id: None }).await.expect("send");
        loop {
            match recv(c).await {
                ControlMessage::Chat { .. } => break,
                ControlMessage::Ping { nonce } => c.send(ControlMessage::Pong { nonce }).await.expect("send"),
                ControlMessage::Error { code, message, .. } => panic!("chat refused: {code:?} {message}"),
                _ => {}
            }
        }
    }
}

/// One cycle; returns the relay's RSS with every meeting full and after they all ended.
async fn cycle(relay: &RelayProcess, meetings: usize, messages: usize, text: &str) -> ((f64, f64), (f64, f64)) {
    let started = Instant::now();
    let mut hosts: Vec<Control> = stream::iter(0..meetings)
        .map(|n| create_meeting(relay.tcp, relay.pin, n))
        .buffer_unordered(PARALLEL)
        .collect()
        .await;
    stream::iter(hosts.iter_mut()).for_each_concurrent(PARALLEL, |c| fill_chat(c, messages, text)).await;
    let full = relay.memory();
    let sent_mb = (meetings * messages * text.len()) as f64 / 1e6;
    println!("  {meetings} meetings filled with {sent_mb:.0} MB of chat in {:.1?}", started.elapsed());
    drop(hosts);
    relay.wait_ended(meetings);
    (full, relay.memory())
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let meetings = args.first().copied().unwrap_or(1000);
    let messages = args.get(1).copied().unwrap_or(200);
    let cycles = args.get(2).copied().unwrap_or(3);
    // 4,000 characters (the longest message) of four bytes each: 16 KB.
    let text = "😀".repeat(4000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let relay = RelayProcess::start(meetings);
    let (idle, _) = relay.memory();
    println!("relay memory over load cycles: {meetings} meetings x {messages} chat messages of 16 KB");
    println!("  started: RSS {idle:.1} MiB");
    for round in 1..=cycles {
        let ((full, _), (after, peak)) = runtime.block_on(cycle(&relay, meetings, messages, &text));
        println!(
            "  cycle {round}: RSS {full:.1} MiB with all meetings live ({:.1} KiB per meeting), \
             {after:.1} MiB after they ended; peak so far {peak:.1} MiB",
            (full - idle) * 1024.0 / meetings as f64
        );
    }
}
