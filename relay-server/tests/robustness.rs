//! Bad input over real sockets: malformed frames get an error and the connection goes on;
//! an oversized length prefix closes only that connection while other meetings go on;
//! protocol misuse; graceful shutdown.

mod common;

use std::time::Duration;

use common::*;
use protocol::control::ErrorCode;
use protocol::{ControlMessage, PROTOCOL_VERSION};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn malformed_frames_get_an_error_and_the_connection_goes_on() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["A", "B"]).await;
    let stream = m[0].client.framed.get_mut();
    // Not UTF-8, not JSON, JSON of an unknown type, a known type with a missing field.
    for payload in [&b"\xff\xfe"[..], b"{not json", br#"{"type":"NOPE"}"#, br#"{"type":"CHAT_SEND"}"#] {
        stream.write_all(&(payload.len() as u32).to_be_bytes()).await.unwrap();
        stream.write_all(payload).await.unwrap();
    }
    for _ in 0..4 {
        m[0].client.expect_error(ErrorCode::MalformedMessage).await;
    }
    // Still in the meeting.
    m[0].client.chat("still here").await;
    match m[1].client.recv().await {
        ControlMessage::Chat { message } => assert_eq!(message.text, "still here"),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(relay.stats().malformed_messages, 4);
    relay.shutdown().await;
}

#[tokio::test]
async fn an_oversized_length_prefix_closes_only_that_connection() {
    let relay = start_default().await;
    let mut one = meeting(&relay, &["One-host", "One-guest"]).await;
    let mut two = meeting(&relay, &["Two-host", "Two-guest"]).await;
    let mut one_media = Vec::new();
    for m in &one {
        one_media.push(Media::register(&relay, m).await);
    }
    let guest_id = one[1].id();

    // The guest of meeting one announces a 4 GB frame.
    one[1].client.framed.get_mut().write_all(&[0xFF, 0xFF, 0xFF, 0xF0]).await.unwrap();
    one[1].client.expect_closed().await;
    // Its seat is held for a resume: the host sees it reconnecting, not gone.
    match one[0].client.recv().await {
        ControlMessage::ParticipantUpdated { participant } => {
            assert!(participant.id == guest_id && participant.reconnecting, "{participant:?}")
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(relay.stats().oversized_frames, 1);

    // Meeting two is untouched, meeting one's host carries on.
    two[0].client.chat("two goes on").await;
    for member in &mut two {
        match member.client.recv().await {
            ControlMessage::Chat { message } => assert_eq!(message.text, "two goes on"),
            other => panic!("unexpected {other:?}"),
        }
    }
    one[0].client.send(ControlMessage::Ping { nonce: 9 }).await;
    assert_eq!(one[0].client.recv().await, ControlMessage::Pong { nonce: 9 });

    // Same before HELLO: only that connection closes.
    let mut raw = common::connect_tls(&relay).await;
    raw.write_all(&[0x7F, 0, 0, 0]).await.unwrap();
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(WAIT, raw.read(&mut buf)).await.expect("closed in time").unwrap_or(0);
    assert_eq!(n, 0, "closed without a reply");
    assert_eq!(relay.stats().oversized_frames, 2);
    two[1].client.chat("still fine").await;
    two[0].client.recv_until(|m| matches!(m, ControlMessage::Chat { .. })).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn protocol_misuse_gets_typed_errors() {
    let relay = start_default().await;
    let mut raw = Client::connect_raw(&relay).await;
    raw.send(ControlMessage::CreateMeeting { display_name: "x".into(), media_public_key: common::public_key() }).await;
    raw.expect_error(ErrorCode::InvalidState).await;
    raw.send(ControlMessage::Ping { nonce: 1 }).await;
    assert_eq!(raw.recv().await, ControlMessage::Pong { nonce: 1 });

    let mut old = Client::connect_raw(&relay).await;
    old.send(ControlMessage::Hello { protocol_version: PROTOCOL_VERSION + 1, client_name: "future".into() }).await;
    let seen = old.expect_closed().await;
    assert!(matches!(seen.as_slice(), [ControlMessage::Error { code: ErrorCode::UnsupportedVersion, .. }]), "{seen:?}");

    let mut c = Client::connect(&relay).await;
    c.send(ControlMessage::Hello { protocol_version: PROTOCOL_VERSION, client_name: "again".into() }).await;
    c.expect_error(ErrorCode::InvalidState).await;
    c.send(ControlMessage::Admit { request_id: 1, media_key: common::sealed_key() }).await;
    c.expect_error(ErrorCode::InvalidState).await;
    c.send(ControlMessage::Leave).await;
    c.expect_error(ErrorCode::InvalidState).await;
    c.send(ControlMessage::CancelJoin).await;
    c.expect_error(ErrorCode::InvalidState).await;
    c.send(ControlMessage::HostChanged { host_id: 1 }).await;
    c.expect_error(ErrorCode::InvalidState).await;
    c.send(ControlMessage::FileDownload { session_token: "t".into(), file_id: 1, offset: 0 }).await;
    c.expect_error(ErrorCode::InvalidState).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_everything_and_deletes_spools() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["A", "B"]).await;
    let data = test_bytes(50_000, 5);
    let (done, _) = upload(&relay, &m[0].welcome.session_token, "f", &data, &sha256_hex(&data)).await;
    assert!(matches!(done, ControlMessage::FileUploadComplete { .. }));
    let spool = relay.spool_dir().to_path_buf();
    assert!(spool.exists());
    let tcp = relay.tcp_addr();
    tokio::time::timeout(Duration::from_secs(10), relay.shutdown()).await.expect("shutdown completes");
    for member in &mut m {
        member.client.expect_closed().await;
    }
    assert!(!spool.exists(), "the private spool directory is removed");
    assert!(TcpStream::connect(tcp).await.is_err(), "no longer listening");
}
