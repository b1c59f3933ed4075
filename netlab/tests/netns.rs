//! A real namespace behind a tbf-shaped veth: a plain TCP upload from inside it is held to the
//! configured rate, and the namespace and its link disappear when the handle is dropped.
//! Needs root; fails with a clear message otherwise.

use std::process::Command;
use std::time::{Duration, Instant};

use netlab::lab::netns::{self, NsLink, Side};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

#[tokio::test]
async fn shaped_uplink_limits_a_tcp_upload_and_cleans_up() {
    netns::require_root("this test (network namespaces, tc)").expect("run the netlab tests as root");
    let link = NsLink::create(9).unwrap();
    link.shape(Side::Uplink, 2_000_000, Duration::from_millis(100)).unwrap();
    let listener = TcpListener::bind((link.host_ip, 0)).await.unwrap();
    let to = listener.local_addr().unwrap();

    let start = Instant::now();
    let mut sender = link.command(env!("CARGO_BIN_EXE_parlor-lab").as_ref());
    sender.args(["tcp-send", "--to", &to.to_string(), "--bytes", "500000"]).kill_on_drop(true);
    let mut child = sender.spawn().unwrap();
    let (mut conn, peer) = tokio::time::timeout(Duration::from_secs(10), listener.accept()).await.unwrap().unwrap();
    assert_eq!(peer.ip(), link.ns_ip, "the upload comes from inside the namespace");
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut got)).await.unwrap().unwrap();
    let elapsed = start.elapsed();
    assert!(child.wait().await.unwrap().success());
    assert_eq!(got.len(), 500_000);
    // 500 kB at 2 Mbit/s takes 2 s; the bucket lets only a few packets through early.
    assert!(elapsed >= Duration::from_millis(1800), "tbf did not limit the rate: {elapsed:?}");

    let (name, host_if) = (link.name.clone(), link.host_if.clone());
    drop(link);
    let list = String::from_utf8(Command::new("ip").args(["netns", "list"]).output().unwrap().stdout).unwrap();
    assert!(!list.contains(&name), "namespace {name} left behind");
    assert!(!Command::new("ip").args(["link", "show", &host_if]).output().unwrap().status.success());
}
