//! File transfer through a real relay: a 5 MB file reaches two receivers byte-identical, a
//! download cut in the middle resumes by itself on a new connection, one kept as a partial
//! file goes on from it, an existing name is never
//! overwritten, a partial file with wrong bytes ends in a reported hash failure, and an upload
//! the relay refuses fails with the relay's own words.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use client_core::files::partial_path;
use client_core::stats::FileDirection;
use client_core::{FileFailure, SessionEvent};
use common::*;
use protocol::control::{ErrorCode, FileInfo};
use relay_server::{Relay, RelayConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn write_source(dir: &Path, name: &str, len: usize, seed: u64) -> (PathBuf, Vec<u8>) {
    let data = test_bytes(len, seed);
    let path = dir.join(name);
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

async fn wait_offer(bot: &Bot, name: &str) -> FileInfo {
    let name = name.to_string();
    bot.wait("FileOffer", LONG, |e| match e {
        SessionEvent::FileOffer { file } if file.name == name => Some(file.clone()),
        _ => None,
    })
    .await
}

async fn wait_saved(bot: &Bot, from: usize, file_id: u64) -> PathBuf {
    bot.wait_from(from, "FileDone", LONG, |e| match e {
        SessionEvent::FileDone { file_id: id, direction: FileDirection::Download, path, verified: true, .. }
            if *id == file_id =>
        {
            Some(path.clone())
        }
        SessionEvent::FileFailed { file_id: Some(id), reason, .. } if *id == file_id => {
            panic!("download failed: {reason}")
        }
        _ => None,
    })
    .await
}

async fn meeting_of_three(addr: &str, guest_addr: &str) -> (Bot, Bot, Bot) {
    let a = Bot::connect(addr, quiet()).await;
    let b = Bot::connect(guest_addr, quiet()).await;
    let c = Bot::connect(addr, quiet()).await;
    let (code, _) = create(&a, "Sender").await;
    admit(&a, &b, &code, "B").await;
    admit(&a, &c, &code, "C").await;
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_megabytes_reach_two_receivers_intact() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let (a, b, c) = meeting_of_three(&addr, &addr).await;
    let src = tempfile::tempdir().unwrap();
    let (path, data) = write_source(src.path(), "five.bin", 5 * 1024 * 1024, 7);

    // A second upload of a file with the same name, told apart by its upload id.
    let twin_dir = tempfile::tempdir().unwrap();
    let (twin, _) = write_source(twin_dir.path(), "five.bin", 1000, 8);
    let upload_id = a.session.send_file(&path).await.unwrap();
    let twin_id = a.session.send_file(&twin).await.unwrap();
    assert_ne!(upload_id, twin_id);
    let sent = a
        .wait("upload done", LONG, |e| match e {
            SessionEvent::FileDone {
                upload_id: Some(id), direction: FileDirection::Upload, file_id, sha256, ..
            } if *id == upload_id => Some((*file_id, sha256.clone())),
            SessionEvent::FileFailed { reason, .. } => panic!("upload failed: {reason}"),
            _ => None,
        })
        .await;
    // The upload was paced by a Reno window that grew beyond its start.
    let max_cwnd = a
        .events()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::FileProgress(p) if p.upload_id == Some(upload_id) => {
                assert_eq!(p.chunk_size, Some(protocol::file::DEFAULT_CHUNK_SIZE), "cwnd's unit is reported");
                p.cwnd
            }
            _ => None,
        })
        .max()
        .expect("upload progress with cwnd");
    assert!(max_cwnd > 2, "cwnd grew to {max_cwnd}");

    let twin_file_id = a
        .wait("twin upload done", LONG, |e| match e {
            SessionEvent::FileDone { upload_id: Some(id), file_id, .. } if *id == twin_id => Some(*file_id),
            _ => None,
        })
        .await;
    assert_ne!(twin_file_id, sent.0, "two uploads, two files");

    let (db, dc) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    for (bot, dir) in [(&b, &db), (&c, &dc)] {
        let offer = bot
            .wait("offer", LONG, |e| match e {
                SessionEvent::FileOffer { file } if file.file_id == sent.0 => Some(file.clone()),
                _ => None,
            })
            .await;
        assert_eq!((offer.name.as_str(), offer.sha256.clone()), ("five.bin", sent.1.clone()));
        let mark = bot.mark();
        bot.session.accept_file(offer.file_id, dir.path()).await.unwrap();
        let saved = wait_saved(bot, mark, offer.file_id).await;
        assert_eq!(saved, dir.path().join("five.bin"));
        assert!(std::fs::read(&saved).unwrap() == data, "byte-identical");
        assert!(!partial_path(dir.path(), &offer).exists(), "no partial file left");
        // The relay's progress of the upload (at least its final one) reached the others…
        assert!(bot
            .events()
            .iter()
            .any(|e| matches!(e, SessionEvent::RemoteFileProgress { file_id, .. } if *file_id == sent.0)));
    }
    // …but not the uploader as someone else's: its own upload has its own events.
    a.wait("the offer of its own file", LONG, |e| match e {
        SessionEvent::FileOffer { file } if file.file_id == sent.0 => Some(()),
        _ => None,
    })
    .await;
    assert!(!a.events().iter().any(|e| matches!(e, SessionEvent::RemoteFileProgress { .. })));
    for bot in [a, b, c] {
        bot.close().await;
    }
    relay.shutdown().await;
}

/// A TCP proxy that cuts the first connection that carries more than `cut_after` bytes
/// towards the client (a download), and passes everything else through.
async fn cutting_proxy(upstream: SocketAddr, cut_after: u64) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let cut = cut.clone();
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut buf = vec![0u8; 16 * 1024];
                let mut total = 0u64;
                loop {
                    let n = match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    total += n as u64;
                    if total > cut_after && !cut.swap(true, Ordering::SeqCst) {
                        break;
                    }
                }
                up.abort();
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_download_resumes_by_itself_where_it_stopped() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let proxy = cutting_proxy(relay.tcp_addr(), 1024 * 1024).await.to_string();
    let (a, b, c) = meeting_of_three(&addr, &proxy).await;
    let src = tempfile::tempdir().unwrap();
    let (path, data) = write_source(src.path(), "resume.bin", 4 * 1024 * 1024, 11);
    a.session.send_file(&path).await.unwrap();
    let offer = wait_offer(&b, "resume.bin").await;

    let dir = tempfile::tempdir().unwrap();
    b.session.accept_file(offer.file_id, dir.path()).await.unwrap();
    let saved = wait_saved(&b, 0, offer.file_id).await;
    assert!(std::fs::read(&saved).unwrap() == data, "byte-identical after the resume");
    assert!(!partial_path(dir.path(), &offer).exists());
    // Two connections: the first cut after about 1 MB, the second asking for the rest only.
    let progress: Vec<(u64, u64)> = b
        .events()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::FileProgress(p) if p.file_id == offer.file_id => Some((p.bytes, p.resumed_from)),
            _ => None,
        })
        .collect();
    let cut = progress.iter().position(|p| p.1 > 0).expect("a resumed connection");
    let (held_before, resumed_from) = (progress[cut - 1].0, progress[cut].1);
    assert!(
        resumed_from >= held_before && resumed_from > 0 && resumed_from < offer.size,
        "resumed from {resumed_from} after holding {held_before}: {progress:?}"
    );
    assert!(!b.events().iter().any(|e| matches!(e, SessionEvent::FileFailed { .. })), "no failure was reported");
    for bot in [a, b, c] {
        bot.close().await;
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_download_goes_on_from_a_partial_file_kept_earlier() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let (a, b, c) = meeting_of_three(&addr, &addr).await;
    let src = tempfile::tempdir().unwrap();
    let (path, data) = write_source(src.path(), "kept.bin", 1024 * 1024, 12);
    a.session.send_file(&path).await.unwrap();
    let offer = wait_offer(&b, "kept.bin").await;

    // What an earlier session (or a download given up after its retry window) left behind.
    let dir = tempfile::tempdir().unwrap();
    let part = partial_path(dir.path(), &offer);
    std::fs::write(&part, &data[..300_000]).unwrap();
    b.session.accept_file(offer.file_id, dir.path()).await.unwrap();
    let resumed_from = b
        .wait("progress", LONG, |e| match e {
            SessionEvent::FileProgress(p) if p.file_id == offer.file_id => Some(p.resumed_from),
            _ => None,
        })
        .await;
    assert_eq!(resumed_from, 300_000, "asked the relay for the rest only");
    let saved = wait_saved(&b, 0, offer.file_id).await;
    assert!(std::fs::read(&saved).unwrap() == data, "byte-identical");
    assert!(!part.exists());
    for bot in [a, b, c] {
        bot.close().await;
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn existing_names_are_never_overwritten_and_bad_bytes_are_caught() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let (a, b, c) = meeting_of_three(&addr, &addr).await;
    let src = tempfile::tempdir().unwrap();
    let (path, data) = write_source(src.path(), "report.bin", 300_000, 3);
    a.session.send_file(&path).await.unwrap();
    let offer = wait_offer(&b, "report.bin").await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.bin"), b"mine, keep me").unwrap();
    for expected in ["report (1).bin", "report (2).bin"] {
        let mark = b.mark();
        b.session.accept_file(offer.file_id, dir.path()).await.unwrap();
        let saved = wait_saved(&b, mark, offer.file_id).await;
        assert_eq!(saved, dir.path().join(expected));
        assert!(std::fs::read(&saved).unwrap() == data);
    }
    assert_eq!(std::fs::read(dir.path().join("report.bin")).unwrap(), b"mine, keep me");

    // A partial file whose bytes are not the file's: the download resumes after it, the
    // hash check fails, the failure is reported and nothing is kept.
    let dir = tempfile::tempdir().unwrap();
    let part = partial_path(dir.path(), &offer);
    std::fs::write(&part, vec![0xAA; 1000]).unwrap();
    let offer_c = wait_offer(&c, "report.bin").await;
    let mark = c.mark();
    c.session.accept_file(offer_c.file_id, dir.path()).await.unwrap();
    let reason = c
        .wait_from(mark, "hash failure", LONG, |e| match e {
            SessionEvent::FileFailed { reason, resumable: false, failure, .. } => {
                assert_eq!(*failure, FileFailure::HashMismatch);
                Some(reason.clone())
            }
            SessionEvent::FileDone { .. } => panic!("a corrupt partial file must not verify"),
            _ => None,
        })
        .await;
    assert!(reason.contains("SHA-256"), "{reason}");
    assert!(!part.exists(), "the bad bytes were removed");
    assert!(!dir.path().join("report.bin").exists());
    // And a fresh attempt succeeds.
    let mark = c.mark();
    c.session.accept_file(offer_c.file_id, dir.path()).await.unwrap();
    let saved = wait_saved(&c, mark, offer_c.file_id).await;
    assert!(std::fs::read(&saved).unwrap() == data);

    for bot in [a, b, c] {
        bot.close().await;
    }
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_over_a_quota_fails_in_the_relay_s_words() {
    let config = RelayConfig { max_spool_bytes_per_participant: 64 * 1024, ..RelayConfig::for_tests() };
    let relay = Relay::start(config).await.expect("relay starts");
    let a = Bot::connect(&relay.tcp_addr().to_string(), quiet()).await;
    create(&a, "Sender").await;
    let src = tempfile::tempdir().unwrap();
    let (path, _) = write_source(src.path(), "big.bin", 100 * 1024, 3);
    let upload_id = a.session.send_file(&path).await.unwrap();
    let (failure, reason) = a
        .wait("the refusal", LONG, |e| match e {
            SessionEvent::FileFailed { upload_id: Some(id), failure, reason, .. } if *id == upload_id => {
                Some((*failure, reason.clone()))
            }
            SessionEvent::FileDone { upload_id: Some(id), .. } if *id == upload_id => panic!("the upload went through"),
            _ => None,
        })
        .await;
    assert_eq!(failure, FileFailure::Refused(ErrorCode::ServerBusy));
    assert_eq!(reason, "your files would pass the 64 KiB one participant may share in a meeting");
    a.close().await;
}
