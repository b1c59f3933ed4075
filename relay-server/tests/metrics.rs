//! The metrics endpoint over real HTTP on 127.0.0.1: a scrape during a meeting shows the
//! meeting, its participants, its media and its chat, the figures move between two scrapes, and
//! `/healthz` answers.

mod common;

use common::*;
use relay_server::RelayConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `GET path` with a plain HTTP/1.1 request; returns (status line, headers and body).
async fn get(relay: &relay_server::RelayHandle, path: &str) -> (String, String) {
    let addr = relay.metrics_addr().expect("metrics are on");
    let mut stream = TcpStream::connect(addr).await.expect("connect to the metrics port");
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.expect("send the request");
    let mut response = String::new();
    tokio::time::timeout(WAIT, stream.read_to_string(&mut response)).await.expect("an answer").expect("read");
    let (status, rest) = response.split_once("\r\n").expect("a status line");
    (status.to_string(), rest.to_string())
}

/// The value of the sample line `name` (with its labels, if any) in an OpenMetrics text.
fn sample(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no {name} in:\n{text}"))
        .parse()
        .expect("a whole number")
}

#[tokio::test]
async fn a_scrape_during_a_meeting_shows_it_and_the_counters_move() {
    let config = RelayConfig { metrics_addr: Some("127.0.0.1:0".parse().unwrap()), ..RelayConfig::for_tests() };
    let relay = start(config).await;

    let (status, health) = get(&relay, "/healthz").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(health.ends_with("\r\n\r\nok\n"), "{health}");

    let mut members = meeting(&relay, &["Host", "Guest"]).await;
    let mut guest_media = Media::register(&relay, &members[1]).await;
    let _host_media = Media::register(&relay, &members[0]).await;
    members[1].client.chat("hello").await;
    members[0].client.recv_until(|m| matches!(m, protocol::ControlMessage::Chat { .. })).await;
    guest_media.send_frame(1, 3).await;
    eventually("the relay counted the frame", || relay.stats().udp_packets_in >= 3).await;

    let (status, first) = get(&relay, "/metrics").await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(first.contains("content-type: application/openmetrics-text"), "{first}");
    assert_eq!(sample(&first, "parlor_meetings_live"), 1);
    assert_eq!(sample(&first, "parlor_participants_live"), 2);
    assert_eq!(sample(&first, "parlor_meetings_created_total"), 1);
    assert!(sample(&first, "parlor_udp_packets_in_total") >= 3);
    assert!(sample(&first, "parlor_chat_messages_total") >= 1);
    assert_eq!(sample(&first, "parlor_limit_hits_total{limit=\"chat\"}"), 0);

    // Media sent later shows up in the next scrape.
    let before = relay.stats().udp_packets_in;
    guest_media.send_frame(2, 3).await;
    eventually("the relay counted the second frame", || relay.stats().udp_packets_in >= before + 3).await;
    let (_, second) = get(&relay, "/metrics").await;
    assert!(sample(&second, "parlor_udp_packets_in_total") > sample(&first, "parlor_udp_packets_in_total"));
    assert!(sample(&second, "parlor_udp_packets_out_total") > sample(&first, "parlor_udp_packets_out_total"));

    let (status, _) = get(&relay, "/nowhere").await;
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    relay.shutdown().await;
}
