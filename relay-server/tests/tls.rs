//! TLS on the relay's TCP port: nothing is spoken in clear, the certificate a relay keeps in its
//! data directory survives a restart, and a client that pinned another certificate gets no
//! connection.

mod common;

use std::sync::Arc;

use common::*;
use futures::{SinkExt, StreamExt};
use protocol::framing::{ControlFrames, FrameCodec};
use protocol::{ControlMessage, PROTOCOL_VERSION};
use relay_server::RelayConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

#[tokio::test]
async fn a_plaintext_hello_gets_no_answer_and_is_counted() {
    let relay = start_default().await;
    let mut raw = TcpStream::connect(relay.tcp_addr()).await.unwrap();
    let mut plain = Framed::new(&mut raw, ControlFrames(FrameCodec::default()));
    plain
        .send(ControlMessage::Hello { protocol_version: PROTOCOL_VERSION, client_name: "plaintext".into() })
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(WAIT, raw.read_to_end(&mut buf)).await.expect("closed in time");
    // The relay may answer with a TLS alert record (content type 21), never with a frame.
    assert!(read.is_err() || buf.is_empty() || buf[0] == 21, "no control frame in clear: {buf:?}");
    eventually("the failed handshake is counted", || relay.stats().tls_handshake_failures == 1).await;
    assert_eq!(relay.stats().control_connections, 0);

    // The same message over TLS is welcomed.
    let mut client = Client::connect(&relay).await;
    client.send(ControlMessage::Ping { nonce: 1 }).await;
    assert_eq!(client.recv().await, ControlMessage::Pong { nonce: 1 });
    relay.shutdown().await;
}

#[tokio::test]
async fn a_relay_keeps_its_certificate_in_its_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let config = RelayConfig { data_dir: Some(dir.path().to_path_buf()), ..RelayConfig::for_tests() };
    let first = start(config.clone()).await;
    let pin = first.certificate_fingerprint();
    first.shutdown().await;
    let again = start(config).await;
    assert_eq!(again.certificate_fingerprint(), pin, "the same certificate after a restart");
    Client::connect(&again).await;
    again.shutdown().await;

    let elsewhere = start_default().await;
    assert_ne!(elsewhere.certificate_fingerprint(), pin, "a relay without a data dir makes its own");
    elsewhere.shutdown().await;
}

#[tokio::test]
async fn a_client_pinning_another_certificate_gets_no_connection() {
    let relay = start_default().await;
    let other = start_default().await;
    let config = protocol::tls::client_config(protocol::tls::pinned(other.certificate_fingerprint()));
    let name = rustls::pki_types::ServerName::try_from("parlor-relay").unwrap();
    let stream = TcpStream::connect(relay.tcp_addr()).await.unwrap();
    let refused = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await;
    let Err(err) = refused else { panic!("the handshake must fail") };
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    eventually("the relay counts the aborted handshake", || relay.stats().tls_handshake_failures == 1).await;

    // And a client that pinned the right one talks.
    let mut client = connect_tls(&relay).await;
    let mut framed = Framed::new(&mut client, ControlFrames(FrameCodec::default()));
    framed.send(ControlMessage::Ping { nonce: 7 }).await.unwrap();
    assert_eq!(framed.next().await.unwrap().unwrap().unwrap(), ControlMessage::Pong { nonce: 7 });
    client.shutdown().await.ok();
    relay.shutdown().await;
    other.shutdown().await;
}
