//! The file relay over real TCP: a 20 MB upload verified by SHA-256 and offered in chat, a
//! byte-identical download, a resumed download, refusals, and spool cleanup.

mod common;

use std::time::Duration;

use common::*;
use futures::StreamExt;
use protocol::control::ErrorCode;
use protocol::file::FileFrame;
use protocol::ControlMessage;
use relay_server::RelayConfig;

const MB: usize = 1024 * 1024;

#[tokio::test]
async fn a_20_mb_file_round_trips_byte_identical_and_resumes_halfway() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["Sender", "Receiver"]).await;
    let data = test_bytes(20 * MB, 7);
    let sha = sha256_hex(&data);

    let (done, file_id) =
        upload(&relay, &m[0].welcome.session_token, "../../etc/\u{202E}holiday\n.mp4", &data, &sha).await;
    assert_eq!(done, ControlMessage::FileUploadComplete { file_id });

    // The spool file is named by id, inside the meeting's directory, never by the user's name.
    let spool: Vec<_> = walk(relay.spool_dir());
    assert_eq!(spool.len(), 1, "{spool:?}");
    assert!(spool[0].ends_with(file_id.to_string()), "{spool:?}");
    assert_eq!(std::fs::metadata(&spool[0]).unwrap().len(), data.len() as u64);

    // Everyone sees progress, then the chat message and the offer.
    let mut progress = 0;
    let offered = loop {
        match m[1].client.recv_with_progress(true).await {
            ControlMessage::FileProgress { file_id: id, bytes, size, .. } => {
                assert_eq!((id, size), (file_id, data.len() as u64));
                assert!(bytes <= size);
                progress += 1;
            }
            ControlMessage::Chat { message } => break message,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert!(progress >= 1, "at least the final progress message");
    let info = offered.file.clone().expect("the chat message carries the file");
    assert_eq!(info.file_id, file_id);
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.sha256, sha);
    assert_eq!(info.sender_id, m[0].id());
    assert_eq!(info.sender_name, "Sender");
    assert!(!info.name.contains('/') && !info.name.contains("..") && !info.name.contains('\n'), "{}", info.name);
    assert!(!info.name.contains('\u{202E}'), "no bidi override: {}", info.name);
    assert!(info.name.ends_with(".mp4"));
    assert_eq!(m[1].client.recv().await, ControlMessage::FileOffer { file: info.clone() });

    let (got, ready) = download(&relay, &m[1].welcome.session_token, file_id, 0).await;
    assert!(matches!(ready, ControlMessage::FileDownloadReady { ref file, offset: 0, .. } if *file == info));
    assert!(got == data, "downloaded bytes differ");
    assert_eq!(sha256_hex(&got), sha);

    // Resume from the middle.
    let half = (data.len() / 2 + 12_345) as u64;
    let (rest, _) = download(&relay, &m[1].welcome.session_token, file_id, half).await;
    assert!(rest[..] == data[half as usize..], "resumed bytes differ");

    // The file is in the chat history of a late joiner.
    let mut late = Client::connect(&relay).await;
    let request_id = late.knock(&m[0].welcome.code, "Late").await;
    m[0].client.expect_knock("Late").await;
    m[0].client.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
    let w = late.expect_joined().await;
    assert_eq!(w.chat_history.last().and_then(|c| c.file.clone()), Some(info));

    let stats = relay.stats();
    assert_eq!(stats.files_uploaded, 1);
    assert_eq!(stats.upload_bytes, data.len() as u64);
    assert_eq!(stats.download_bytes, data.len() as u64 + (data.len() as u64 - half));
    assert_eq!(stats.spool_bytes, data.len() as u64);
    relay.shutdown().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().unwrap().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[tokio::test]
async fn a_hash_mismatch_is_refused_and_deleted() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["A", "B"]).await;
    let data = test_bytes(100_000, 1);
    let wrong = sha256_hex(b"something else");
    let (answer, _) = upload(&relay, &m[0].welcome.session_token, "x.bin", &data, &wrong).await;
    assert!(matches!(answer, ControlMessage::Error { code: ErrorCode::HashMismatch, .. }), "{answer:?}");
    assert!(walk(relay.spool_dir()).is_empty());
    let stats = relay.stats();
    assert_eq!((stats.hash_mismatches, stats.files_uploaded, stats.spool_bytes), (1, 0, 0));
    // Nothing was offered.
    loop {
        match tokio::time::timeout(Duration::from_millis(300), m[1].client.recv_with_progress(true)).await {
            Err(_) => break,
            Ok(ControlMessage::FileProgress { .. }) => {}
            Ok(other) => panic!("unexpected {other:?}"),
        }
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn uploads_and_downloads_are_authorized_and_bounded() {
    let relay = start(RelayConfig { max_file_size: 1000, ..RelayConfig::for_tests() }).await;
    let m = meeting(&relay, &["A"]).await;
    let token = m[0].welcome.session_token.clone();
    let sha = sha256_hex(b"abc");

    let (answer, _) = upload(&relay, "not-a-token", "a", b"abc", &sha).await;
    assert!(matches!(answer, ControlMessage::Error { code: ErrorCode::Unauthorized, .. }), "{answer:?}");
    let big = vec![0u8; 1001];
    let (answer, _) = upload(&relay, &token, "a", &big, &sha256_hex(&big)).await;
    assert!(matches!(answer, ControlMessage::Error { code: ErrorCode::FileTooLarge, .. }), "{answer:?}");
    let (answer, _) = upload(&relay, &token, "a", b"abc", "xyz").await;
    assert!(matches!(answer, ControlMessage::Error { code: ErrorCode::MalformedMessage, .. }), "{answer:?}");

    let (_, ready) = download(&relay, &token, 424242, 0).await;
    assert!(matches!(ready, ControlMessage::Error { code: ErrorCode::UnknownFile, .. }), "{ready:?}");

    let (done, file_id) = upload(&relay, &token, "ok.txt", b"abc", &sha).await;
    assert_eq!(done, ControlMessage::FileUploadComplete { file_id });
    let (_, ready) = download(&relay, &token, file_id, 4).await;
    assert!(matches!(ready, ControlMessage::Error { code: ErrorCode::MalformedMessage, .. }), "{ready:?}");
    let (tail, _) = download(&relay, &token, file_id, 3).await;
    assert!(tail.is_empty(), "a download from the end is complete at once");
    relay.shutdown().await;
}

#[tokio::test]
async fn chunks_out_of_order_abort_the_upload() {
    let relay = start_default().await;
    let m = meeting(&relay, &["A"]).await;
    let data = test_bytes(40_000, 3);
    let mut conn = FileConn::connect(
        &relay,
        ControlMessage::FileUpload {
            session_token: m[0].welcome.session_token.clone(),
            name: "f".into(),
            size: data.len() as u64,
            sha256: sha256_hex(&data),
        },
    )
    .await;
    assert!(matches!(conn.recv_control().await, ControlMessage::FileUploadReady { .. }));
    // A malformed frame gets an error and the upload goes on…
    conn.send_raw(&[0x07, 1, 2]).await;
    assert!(matches!(conn.recv_control().await, ControlMessage::Error { code: ErrorCode::MalformedMessage, .. }));
    conn.send(FileFrame::Data { seq: 0, offset: 0, data: bytes::Bytes::copy_from_slice(&data[..1000]) }).await;
    assert_eq!(conn.recv().await, Some(FileFrame::Ack { seq: 0, received: 1000 }));
    // …a chunk at the wrong offset ends it.
    conn.send(FileFrame::Data { seq: 1, offset: 5000, data: bytes::Bytes::copy_from_slice(&data[5000..6000]) }).await;
    assert!(matches!(conn.recv_control().await, ControlMessage::Error { code: ErrorCode::MalformedMessage, .. }));
    assert_eq!(conn.recv().await, None, "connection closed");
    assert!(walk(relay.spool_dir()).is_empty(), "partial file deleted");
    assert_eq!(relay.stats().spool_bytes, 0);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_download_ack_past_the_end_is_refused() {
    let relay = start_default().await;
    let m = meeting(&relay, &["A"]).await;
    let token = m[0].welcome.session_token.clone();
    let data = test_bytes(100_000, 5);
    let (done, file_id) = upload(&relay, &token, "f.bin", &data, &sha256_hex(&data)).await;
    assert_eq!(done, ControlMessage::FileUploadComplete { file_id });

    let mut conn =
        FileConn::connect(&relay, ControlMessage::FileDownload { session_token: token, file_id, offset: 0 }).await;
    assert!(matches!(conn.recv_control().await, ControlMessage::FileDownloadReady { .. }));
    let Some(FileFrame::Data { seq, .. }) = conn.recv().await else { panic!("expected the first chunk") };
    conn.send(FileFrame::Ack { seq, received: 1_000_000 }).await;
    // The rest of the initial window may still arrive before the refusal.
    let refusal = loop {
        match conn.recv().await {
            Some(FileFrame::Data { .. }) => continue,
            Some(FileFrame::Control(m)) => break m,
            other => panic!("expected the refusal, got {other:?}"),
        }
    };
    assert!(matches!(refusal, ControlMessage::Error { code: ErrorCode::MalformedMessage, .. }), "{refusal:?}");
    assert_eq!(conn.recv().await, None, "connection closed");
    assert!(relay.stats().download_bytes < data.len() as u64, "the lie was not counted as delivered");
    relay.shutdown().await;
}

#[tokio::test]
async fn the_spool_goes_when_the_meeting_ends() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["A", "B"]).await;
    let data = test_bytes(300_000, 9);
    let (done, file_id) = upload(&relay, &m[0].welcome.session_token, "f.bin", &data, &sha256_hex(&data)).await;
    assert_eq!(done, ControlMessage::FileUploadComplete { file_id });
    assert_eq!(walk(relay.spool_dir()).len(), 1);
    let b_token = m[1].welcome.session_token.clone();
    for member in &mut m {
        member.client.send(ControlMessage::Leave).await;
    }
    // The last LEAVE ends the meeting; the relay answers nothing, so poll the registry.
    eventually("the meeting ended", || relay.live_meeting_codes().is_empty()).await;
    assert!(std::fs::read_dir(relay.spool_dir()).unwrap().next().is_none(), "meeting directory deleted");
    assert_eq!(relay.stats().spool_bytes, 0);
    // The session token died with the participant.
    let (_, ready) = download(&relay, &b_token, file_id, 0).await;
    assert!(matches!(ready, ControlMessage::Error { code: ErrorCode::Unauthorized, .. }), "{ready:?}");
    relay.shutdown().await;
}

#[tokio::test]
async fn a_configured_data_dir_keeps_its_other_contents() {
    let data = tempfile::tempdir().unwrap();
    let spool = data.path().join("parlor-spool");
    std::fs::create_dir_all(spool.join("meeting-3")).unwrap();
    std::fs::write(spool.join("meeting-3").join("1"), b"left by a crash").unwrap();
    std::fs::create_dir_all(spool.join("meeting-notes")).unwrap();
    std::fs::create_dir_all(data.path().join("meeting-9")).unwrap();
    // Without a grace window the relay keeps no meeting across a restart (see restart.rs).
    let config = RelayConfig {
        data_dir: Some(data.path().to_path_buf()),
        resume_grace: std::time::Duration::ZERO,
        ..RelayConfig::for_tests()
    };
    let relay = start(config).await;
    assert_eq!(relay.spool_dir(), spool);
    assert!(!spool.join("meeting-3").exists(), "a stale spool of the relay's own is deleted");
    assert!(spool.join("meeting-notes").exists(), "other names are left alone");
    assert!(data.path().join("meeting-9").exists(), "nothing outside parlor-spool is touched");

    let m = meeting(&relay, &["A"]).await;
    let bytes = test_bytes(10_000, 2);
    let (done, file_id) = upload(&relay, &m[0].welcome.session_token, "a", &bytes, &sha256_hex(&bytes)).await;
    assert_eq!(done, ControlMessage::FileUploadComplete { file_id });
    let files = walk(&spool);
    assert_eq!(files.len(), 1);
    assert!(files[0].parent().unwrap().file_name().unwrap().to_str().unwrap().starts_with("meeting-"));
    relay.shutdown().await;
    assert_eq!(walk(&spool), Vec::<std::path::PathBuf>::new(), "the meeting's spool went with it");
    assert!(data.path().exists());
}

/// Sends chunks `from..to` of `data` (chunk `i` at offset `i * chunk`) and reads their ACKs;
/// returns the last `received`.
async fn send_chunks(conn: &mut FileConn, data: &[u8], chunk: usize, from: usize, to: usize) -> u64 {
    for (seq, i) in (from..to).enumerate() {
        let bytes = &data[i * chunk..((i + 1) * chunk).min(data.len())];
        let offset = (i * chunk) as u64;
        conn.send(FileFrame::Data { seq: seq as u32, offset, data: bytes::Bytes::copy_from_slice(bytes) }).await;
    }
    let mut received = 0;
    for seq in 0..(to - from) {
        match conn.recv().await {
            Some(FileFrame::Ack { seq: s, received: r }) => {
                assert_eq!(s as usize, seq);
                received = r;
            }
            other => panic!("expected an ACK, got {other:?}"),
        }
    }
    received
}

/// Starts an upload of `data` by `token`: returns the connection, the file id and the chunk size.
async fn start_upload(relay: &relay_server::RelayHandle, token: &str, data: &[u8]) -> (FileConn, u64, usize) {
    let mut conn = FileConn::connect(
        relay,
        ControlMessage::FileUpload {
            session_token: token.into(),
            name: "talk.mp4".into(),
            size: data.len() as u64,
            sha256: sha256_hex(data),
        },
    )
    .await;
    match conn.recv_control().await {
        ControlMessage::FileUploadReady { file_id, chunk_size, offset: 0 } => (conn, file_id, chunk_size as usize),
        other => panic!("expected FILE_UPLOAD_READY at 0, got {other:?}"),
    }
}

fn resume(token: &str, file_id: u64) -> ControlMessage {
    ControlMessage::FileUploadResume { session_token: token.into(), file_id }
}

/// Whether the relay closed `conn` (cleanly or not) without sending anything more.
async fn closed(conn: &mut FileConn) -> bool {
    matches!(tokio::time::timeout(WAIT, conn.framed.next()).await, Ok(None | Some(Err(_))))
}

#[tokio::test]
async fn an_interrupted_upload_goes_on_from_the_bytes_the_relay_acknowledged() {
    let relay = start_default().await;
    let m = meeting(&relay, &["A", "B"]).await;
    let (a, b) = (m[0].welcome.session_token.clone(), m[1].welcome.session_token.clone());
    let data = test_bytes(MB + 1234, 11);
    let (mut conn, file_id, chunk) = start_upload(&relay, &a, &data).await;
    let held = send_chunks(&mut conn, &data, chunk, 0, 20).await;
    assert_eq!(held, 20 * chunk as u64);
    drop(conn);

    // Only the uploader can take it up, and only an upload that exists.
    let mut other = FileConn::connect(&relay, resume(&b, file_id)).await;
    assert!(matches!(other.recv_control().await, ControlMessage::Error { code: ErrorCode::UnknownFile, .. }));
    let mut unknown = FileConn::connect(&relay, resume(&a, file_id + 1000)).await;
    assert!(matches!(unknown.recv_control().await, ControlMessage::Error { code: ErrorCode::UnknownFile, .. }));

    let mut conn = FileConn::connect(&relay, resume(&a, file_id)).await;
    assert_eq!(
        conn.recv_control().await,
        ControlMessage::FileUploadReady { file_id, chunk_size: chunk as u32, offset: held },
        "the upload goes on where the relay's acknowledgements stopped"
    );
    let chunks = data.len().div_ceil(chunk);
    assert_eq!(send_chunks(&mut conn, &data, chunk, 20, chunks).await, data.len() as u64);
    assert_eq!(conn.recv_control().await, ControlMessage::FileUploadComplete { file_id });

    let (got, _) = download(&relay, &b, file_id, 0).await;
    assert!(got == data, "the resumed upload is byte-identical");
    let stats = relay.stats();
    assert_eq!((stats.uploads_resumed, stats.files_uploaded), (1, 1));
    assert_eq!((stats.upload_bytes, stats.spool_bytes), (data.len() as u64, data.len() as u64), "no byte twice");

    // A resume that comes after the upload completed learns so, and sends nothing.
    let mut late = FileConn::connect(&relay, resume(&a, file_id)).await;
    assert_eq!(late.recv_control().await, ControlMessage::FileUploadComplete { file_id });
    relay.shutdown().await;
}

#[tokio::test]
async fn a_resume_takes_the_upload_over_from_a_connection_the_relay_still_thinks_alive() {
    let relay = start_default().await;
    let m = meeting(&relay, &["A"]).await;
    let a = m[0].welcome.session_token.clone();
    let data = test_bytes(200_000, 12);
    let (mut old, file_id, chunk) = start_upload(&relay, &a, &data).await;
    let held = send_chunks(&mut old, &data, chunk, 0, 3).await;

    // The client saw its connection die (a changed network); the relay did not.
    let mut conn = FileConn::connect(&relay, resume(&a, file_id)).await;
    assert_eq!(
        conn.recv_control().await,
        ControlMessage::FileUploadReady { file_id, chunk_size: chunk as u32, offset: held }
    );
    assert!(closed(&mut old).await, "the old connection is let go");
    let chunks = data.len().div_ceil(chunk);
    send_chunks(&mut conn, &data, chunk, 3, chunks).await;
    assert_eq!(conn.recv_control().await, ControlMessage::FileUploadComplete { file_id });
    assert_eq!(relay.stats().spool_bytes, data.len() as u64);
    relay.shutdown().await;
}

#[tokio::test]
async fn an_upload_not_resumed_within_the_grace_window_is_given_up_and_announced() {
    let relay = start(RelayConfig { resume_grace: Duration::from_secs(1), ..RelayConfig::for_tests() }).await;
    let mut m = meeting(&relay, &["A", "B"]).await;
    let a = m[0].welcome.session_token.clone();
    let data = test_bytes(500_000, 13);
    let (mut conn, file_id, chunk) = start_upload(&relay, &a, &data).await;
    send_chunks(&mut conn, &data, chunk, 0, 1).await;
    // A slow sender: the next chunk comes after the relay's progress interval, so the meeting
    // sees the upload's progress.
    tokio::time::sleep(Duration::from_millis(300)).await;
    conn.send(FileFrame::Data {
        seq: 1,
        offset: chunk as u64,
        data: bytes::Bytes::copy_from_slice(&data[chunk..2 * chunk]),
    })
    .await;
    assert!(matches!(conn.recv().await, Some(FileFrame::Ack { seq: 1, .. })));
    let progress = m[1].client.recv_with_progress(true).await;
    assert!(matches!(progress, ControlMessage::FileProgress { file_id: id, .. } if id == file_id), "{progress:?}");
    drop(conn);

    let stopped = m[1].client.recv_with_progress(false).await;
    assert_eq!(
        stopped,
        ControlMessage::FileUploadStopped {
            file_id,
            name: "talk.mp4".into(),
            sender_id: m[0].id(),
            reason: protocol::control::UploadStopReason::Disconnected,
        }
    );
    let mut late = FileConn::connect(&relay, resume(&a, file_id)).await;
    assert!(matches!(late.recv_control().await, ControlMessage::Error { code: ErrorCode::UnknownFile, .. }));
    assert!(walk(relay.spool_dir()).is_empty(), "its bytes are deleted");
    assert_eq!(relay.stats().spool_bytes, 0, "and given back");
    // Its upload slot is free again: two uploads at once are allowed.
    let (_, _, _) = start_upload(&relay, &a, &data).await;
    let (_, _, _) = start_upload(&relay, &a, &data).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_relay_without_a_grace_window_holds_no_upload() {
    let relay = start(RelayConfig { resume_grace: Duration::ZERO, ..RelayConfig::for_tests() }).await;
    let m = meeting(&relay, &["A"]).await;
    let a = m[0].welcome.session_token.clone();
    let data = test_bytes(100_000, 14);
    let (mut conn, file_id, chunk) = start_upload(&relay, &a, &data).await;
    send_chunks(&mut conn, &data, chunk, 0, 2).await;
    drop(conn);
    eventually("the upload given up", || relay.stats().spool_bytes == 0).await;
    let mut late = FileConn::connect(&relay, resume(&a, file_id)).await;
    assert!(
        matches!(late.recv_control().await, ControlMessage::Error { code: ErrorCode::UnknownFile, .. }),
        "nothing to resume, at once"
    );
    assert!(walk(relay.spool_dir()).is_empty());
    relay.shutdown().await;
}
