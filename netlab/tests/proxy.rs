//! The impairment proxy relaying real UDP and TCP on 127.0.0.1.
//!
//! Timing assertions are one-sided (a delay is at least what was configured; a rate limit
//! makes a transfer take at least so long), so a loaded machine cannot make them fail.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use netlab::schedule::{parse_link_params, Schedule};
use netlab::{PortMap, Proxy, ProxyConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// A UDP server that echoes every datagram to its sender.
async fn udp_echo() -> (SocketAddr, JoinHandle<()>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = vec![0u8; 65_535];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let _ = socket.send_to(&buf[..n], from).await;
        }
    });
    (addr, task)
}

/// A TCP server that echoes each connection's bytes and closes after the client's EOF.
async fn tcp_echo() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut rd, mut wr) = conn.split();
                let _ = tokio::io::copy(&mut rd, &mut wr).await;
                let _ = wr.shutdown().await;
            });
        }
    });
    (addr, task)
}

fn schedule(params: &str) -> Schedule {
    let (up, down) = parse_link_params(params).unwrap();
    Schedule::constant(up, down)
}

async fn udp_proxy(upstream: SocketAddr, schedule: Schedule, seed: u64) -> Proxy {
    Proxy::start(ProxyConfig {
        udp: vec![PortMap { listen: "127.0.0.1:0".parse().unwrap(), upstream }],
        schedule,
        seed,
        ..Default::default()
    })
    .await
    .unwrap()
}

/// Sends `n` numbered datagrams 1 ms apart and collects the echoes that come back within
/// `wait` after the last one; returns the numbers received and the round-trip times.
async fn ping(client: &UdpSocket, to: SocketAddr, n: u32, wait: Duration) -> (Vec<u32>, Vec<Duration>) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut rtts = Vec::new();
    let mut buf = [0u8; 64];
    let mut next = 0u32;
    let mut deadline = None;
    loop {
        if next < n && Instant::now() >= start + Duration::from_millis(u64::from(next)) {
            let mut pkt = [0u8; 20];
            pkt[..4].copy_from_slice(&next.to_be_bytes());
            pkt[4..12].copy_from_slice(&(start.elapsed().as_nanos() as u64).to_be_bytes());
            client.send_to(&pkt, to).await.unwrap();
            next += 1;
            if next == n {
                deadline = Some(Instant::now() + wait);
            }
            continue;
        }
        let timeout = match deadline {
            Some(d) if Instant::now() >= d => break,
            Some(d) => d - Instant::now(),
            None => Duration::from_millis(1),
        };
        if let Ok(Ok(len)) = tokio::time::timeout(timeout, client.recv(&mut buf)).await {
            if len == 20 {
                let seq = u32::from_be_bytes(buf[..4].try_into().unwrap());
                let sent = u64::from_be_bytes(buf[4..12].try_into().unwrap());
                got.push(seq);
                rtts.push(start.elapsed() - Duration::from_nanos(sent));
            }
        }
    }
    (got, rtts)
}

#[tokio::test]
async fn udp_round_trip_gets_the_configured_delay_both_ways() {
    let (echo, _server) = udp_echo().await;
    let proxy = udp_proxy(echo, schedule("delay=30ms"), 1).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (got, rtts) = ping(&client, proxy.udp_addrs()[0], 50, Duration::from_secs(2)).await;
    assert_eq!(got.len(), 50, "a clean link loses nothing");
    assert!(rtts.iter().all(|&r| r >= Duration::from_millis(60)), "rtts {rtts:?}");
    let stats = proxy.shutdown().await;
    assert_eq!(stats.udp_up.packets_out, 50);
    assert_eq!(stats.udp_down.packets_out, 50);
    assert_eq!(stats.udp_flows_created, 1);
}

#[tokio::test]
async fn udp_loss_is_applied_upstream_only_and_counted() {
    let (echo, _server) = udp_echo().await;
    let proxy = udp_proxy(echo, schedule("up.loss=30%"), 5).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (got, _) = ping(&client, proxy.udp_addrs()[0], 500, Duration::from_millis(500)).await;
    let stats = proxy.shutdown().await;
    let rate = 1.0 - got.len() as f64 / 500.0;
    assert!((0.2..0.4).contains(&rate), "loss {rate}");
    assert_eq!(stats.udp_up.dropped_loss as usize, 500 - got.len());
    assert_eq!(stats.udp_down.dropped_loss, 0);
    assert_eq!(stats.udp_down.packets_out as usize, got.len());
}

#[tokio::test]
async fn each_client_gets_its_own_flow_and_its_own_replies() {
    let (echo, _server) = udp_echo().await;
    let proxy = Proxy::start(ProxyConfig {
        udp: vec![PortMap { listen: "127.0.0.1:0".parse().unwrap(), upstream: echo }],
        max_udp_flows: 2,
        ..Default::default()
    })
    .await
    .unwrap();
    let to = proxy.udp_addrs()[0];
    let mut clients = Vec::new();
    for i in 0..3u8 {
        let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        c.send_to(&[i; 20], to).await.unwrap();
        let mut buf = [0u8; 64];
        let n = tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf)).await.unwrap().unwrap();
        assert_eq!(&buf[..n], &[i; 20], "client {i} got its own echo");
        clients.push(c);
    }
    let stats = proxy.shutdown().await;
    assert_eq!(stats.udp_flows_created, 3);
    assert_eq!(stats.udp_flows_evicted, 1, "the table holds two flows");
    assert_eq!(stats.udp_flows_active, 2);
}

#[tokio::test]
async fn idle_flows_expire() {
    let (echo, _server) = udp_echo().await;
    let proxy = Proxy::start(ProxyConfig {
        udp: vec![PortMap { listen: "127.0.0.1:0".parse().unwrap(), upstream: echo }],
        udp_flow_idle: Duration::from_millis(100),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    c.send_to(b"x", proxy.udp_addrs()[0]).await.unwrap();
    let mut buf = [0u8; 8];
    tokio::time::timeout(Duration::from_secs(5), c.recv(&mut buf)).await.unwrap().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.stats().udp_flows_expired == 0 {
        assert!(Instant::now() < deadline, "flow never expired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(proxy.stats().udp_flows_active, 0);
}

#[tokio::test]
async fn the_schedule_switches_impairments_during_the_run() {
    let (echo, _server) = udp_echo().await;
    let proxy = udp_proxy(echo, Schedule::parse("0s:clean, 400ms:loss=100%").unwrap(), 1).await;
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let to = proxy.udp_addrs()[0];
    let (before, _) = ping(&client, to, 20, Duration::from_millis(100)).await;
    // Generous bound: on a loaded machine the first pings may still straddle 400 ms.
    assert!(before.len() >= 10, "clean phase delivered {}", before.len());
    let wait = proxy.started_at() + Duration::from_millis(500);
    tokio::time::sleep_until(wait.into()).await;
    let (after, _) = ping(&client, to, 20, Duration::from_millis(300)).await;
    assert!(after.is_empty(), "nothing passes at 100% loss");
    assert_eq!(proxy.stats().current_step, "loss=100%");
}

#[tokio::test]
async fn tcp_bytes_arrive_intact_through_delay_and_rate_limit() {
    let (echo, _server) = tcp_echo().await;
    let proxy = Proxy::start(ProxyConfig {
        tcp: vec![PortMap { listen: "127.0.0.1:0".parse().unwrap(), upstream: echo }],
        schedule: schedule("delay=20ms jitter=5ms up.rate=4M loss=50% dup=50% reorder=50%"),
        ..Default::default()
    })
    .await
    .unwrap();
    let data: Vec<u8> = (0..500_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let start = Instant::now();
    let conn = TcpStream::connect(proxy.tcp_addrs()[0]).await.unwrap();
    let (mut rd, mut wr) = conn.into_split();
    let to_send = data.clone();
    let writer = tokio::spawn(async move {
        wr.write_all(&to_send).await.unwrap();
        // Half-close: the echo server sees EOF through the proxy and closes its side.
        wr.shutdown().await.unwrap();
    });
    let mut echoed = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), rd.read_to_end(&mut echoed)).await.unwrap().unwrap();
    writer.await.unwrap();
    let elapsed = start.elapsed();
    assert!(echoed == data, "stream corrupted: {} of {} bytes", echoed.len(), data.len());
    // 500 kB at 4 Mbit/s is 1 s; loss, duplication and reordering never touch a stream.
    assert!(elapsed >= Duration::from_millis(950), "rate limit not applied: {elapsed:?}");
    let stats = proxy.shutdown().await;
    assert_eq!(stats.tcp_up.bytes_out, 500_000);
    assert_eq!(stats.tcp_down.bytes_out, 500_000);
    assert_eq!(stats.tcp_up.dropped_loss + stats.tcp_up.duplicated + stats.tcp_up.reordered, 0);
    assert_eq!(stats.tcp_connections_accepted, 1);
}

#[tokio::test]
async fn tcp_to_a_dead_upstream_closes_the_client() {
    // Bind then drop, so the port is (almost certainly) closed.
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let proxy = Proxy::start(ProxyConfig {
        tcp: vec![PortMap { listen: "127.0.0.1:0".parse().unwrap(), upstream: dead }],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut conn = TcpStream::connect(proxy.tcp_addrs()[0]).await.unwrap();
    let mut buf = [0u8; 8];
    let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0);
    assert_eq!(proxy.stats().tcp_upstream_failures, 1);
}

#[tokio::test]
async fn the_binary_runs_and_reports_its_counters() {
    let (echo, _server) = udp_echo().await;
    // Find a free port for the binary to listen on.
    let port = UdpSocket::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let listen: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_parlor-impair"))
        .args(["--udp", &format!("{listen}={echo}"), "--impair", "delay=10ms", "--duration", "3s"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    // Wait for the "udp ... -> ..." line that says the socket is bound.
    let mut first = [0u8; 3];
    tokio::time::timeout(Duration::from_secs(10), stdout.read_exact(&mut first)).await.unwrap().unwrap();
    assert_eq!(&first, b"udp");
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (got, rtts) = ping(&client, listen, 10, Duration::from_millis(500)).await;
    assert_eq!(got.len(), 10);
    assert!(rtts.iter().all(|&r| r >= Duration::from_millis(20)));
    let mut rest = String::new();
    tokio::time::timeout(Duration::from_secs(20), stdout.read_to_string(&mut rest)).await.unwrap().unwrap();
    let status = child.wait().await.unwrap();
    assert!(status.success());
    let last: serde_json::Value = serde_json::from_str(rest.lines().last().unwrap()).unwrap();
    assert_eq!(last["final"]["udp_up"]["packets_out"], 10);
}
