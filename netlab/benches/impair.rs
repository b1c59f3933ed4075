//! Cost of the impairment model and of the proxy itself, printed as figures:
//! `cargo bench -p netlab --bench impair`.
//!
//! - ns per packet through `Impairment` with every stage on;
//! - datagrams per second the proxy forwards on loopback with a clean link, and the extra
//!   round-trip time it adds (median) at low rate.

use std::time::{Duration, Instant};

use netlab::impair::{Impairment, LinkConfig, LossModel, PacketClass};
use netlab::{PortMap, Proxy, ProxyConfig};
use tokio::net::UdpSocket;

fn model_cost() {
    let cfg = LinkConfig {
        loss: LossModel::GilbertElliott {
            p_good_to_bad: 0.02,
            p_bad_to_good: 0.3,
            loss_in_bad: 0.8,
            loss_in_good: 0.001,
        },
        delay: Duration::from_millis(30),
        jitter: Duration::from_millis(5),
        reorder: 0.01,
        duplicate: 0.01,
        rate_bps: Some(100_000_000),
        queue_bytes: 1_000_000,
        ..Default::default()
    };
    let mut imp = Impairment::new(cfg, 1);
    let n = 2_000_000u64;
    let t0 = Instant::now();
    let sim0 = Instant::now();
    let mut out = 0u64;
    for i in 0..n {
        let now = sim0 + Duration::from_micros(i * 100);
        imp.on_packet(now, 1200, PacketClass::Datagram, i);
        while imp.poll_release(now).is_some() {
            out += 1;
        }
    }
    let el = t0.elapsed();
    println!("impairment model: {:.0} ns/packet ({} packets, {} out)", el.as_nanos() as f64 / n as f64, n, out);
}

async fn proxy_cost() {
    let sink = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let sink_addr = sink.local_addr().unwrap();
    let echo = tokio::spawn(async move {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = sink.recv_from(&mut buf).await {
            let _ = sink.send_to(&buf[..n], from).await;
        }
    });
    let proxy = Proxy::start(ProxyConfig {
        udp: vec![PortMap { listen: "127.0.0.1:0".parse().unwrap(), upstream: sink_addr }],
        ..Default::default()
    })
    .await
    .unwrap();
    let to = proxy.udp_addrs()[0];
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(to).await.unwrap();
    let mut buf = vec![0u8; 2048];

    // Round trips one at a time: the latency the proxy adds (two traversals).
    let mut direct_rtts = Vec::new();
    let direct = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    direct.connect(sink_addr).await.unwrap();
    let mut proxied_rtts = Vec::new();
    for _ in 0..2000 {
        let t = Instant::now();
        direct.send(&[0u8; 200]).await.unwrap();
        direct.recv(&mut buf).await.unwrap();
        direct_rtts.push(t.elapsed());
        let t = Instant::now();
        client.send(&[0u8; 200]).await.unwrap();
        client.recv(&mut buf).await.unwrap();
        proxied_rtts.push(t.elapsed());
    }
    direct_rtts.sort();
    proxied_rtts.sort();
    println!(
        "loopback RTT median: direct {:.0} µs, through the proxy {:.0} µs",
        direct_rtts[1000].as_secs_f64() * 1e6,
        proxied_rtts[1000].as_secs_f64() * 1e6
    );

    // Throughput: windows of 32 datagrams of 1200 bytes in flight.
    let n = 100_000u32;
    let t = Instant::now();
    let mut received = 0u32;
    let mut sent = 0u32;
    while received < n && t.elapsed() < Duration::from_secs(60) {
        while sent < n && sent - received < 32 {
            client.send(&[0u8; 1200]).await.unwrap();
            sent += 1;
        }
        match tokio::time::timeout(Duration::from_millis(50), client.recv(&mut buf)).await {
            Ok(Ok(_)) => received += 1,
            // A datagram lost in a socket buffer: let the window move on.
            _ => received = sent,
        }
    }
    let el = t.elapsed().as_secs_f64();
    println!(
        "proxy throughput (round trip, 1200-byte datagrams): {:.0} datagrams/s each way, {:.0} Mbit/s",
        f64::from(n) / el,
        f64::from(n) * 1200.0 * 8.0 / el / 1e6
    );
    let stats = proxy.shutdown().await;
    println!("proxy forwarded {} up, {} down", stats.udp_up.packets_out, stats.udp_down.packets_out);
    echo.abort();
}

fn main() {
    model_cost();
    tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(proxy_cost());
}
