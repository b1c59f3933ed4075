//! A meeting outlives its relay's restart: a relay with a data directory is stopped (as
//! SIGTERM stops it) in the middle of a call and of a 20 MB upload, and started again on the
//! same ports and data directory. Everyone takes their seat back with no knock — same code,
//! same ids, host still host, chat history kept — media flows again under the resumed
//! connections' keys, and the upload goes on from what the relay had acknowledged and arrives
//! byte-identical. A relay that comes back after the grace window has no seats: participants
//! are told the meeting is lost.

mod common;

use std::path::Path as FsPath;
use std::time::Duration;

use client_core::{SessionEvent, SessionOptions, VideoChoice};
use common::*;
use relay_server::{Relay, RelayConfig, RelayHandle};

/// A relay keeping its meetings in `data_dir`, on the given ports (0: any).
async fn relay(data_dir: &FsPath, grace: Duration, tcp_port: u16, udp_port: u16) -> RelayHandle {
    let config = RelayConfig {
        data_dir: Some(data_dir.to_path_buf()),
        resume_grace: grace,
        liveness_timeout: Duration::from_secs(3),
        tcp_port,
        udp_port,
        ..RelayConfig::for_tests()
    };
    Relay::start(config).await.expect("relay starts")
}

/// The same relay again: its ports, its data directory.
async fn restart(relay_was: (u16, u16), data_dir: &FsPath, grace: Duration) -> RelayHandle {
    relay(data_dir, grace, relay_was.0, relay_was.1).await
}

fn ports(relay: &RelayHandle) -> (u16, u16) {
    (relay.tcp_addr().port(), relay.udp_addr().port())
}

fn camera_only() -> SessionOptions {
    SessionOptions { video: VideoChoice::Synthetic, ..quiet() }
}

async fn wait_chat(bot: &Bot, text: &str) {
    bot.wait_until(text, LONG, |log| {
        log.events.iter().any(|e| matches!(e, SessionEvent::Chat { message } if message.text == text))
    })
    .await
}

async fn wait_resumed(bot: &Bot) {
    bot.wait("Resumed", LONG, |e| matches!(e, SessionEvent::Resumed { .. }).then_some(())).await
}

/// Bytes of upload `file_id` acknowledged so far, as `events` told.
fn uploaded(events: &[SessionEvent], file_id: u64) -> u64 {
    transfer_progress(events, file_id, true).iter().map(|p| p.0).max().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_restarted_mid_call_and_mid_upload_gives_everyone_their_seat_and_the_file() {
    const MB: usize = 1024 * 1024;
    const SIZE: usize = 20 * MB;
    let grace = Duration::from_secs(30);
    let data_dir = tempfile::tempdir().unwrap();
    let relay_a = relay(data_dir.path(), grace, 0, 0).await;
    let was = ports(&relay_a);
    // 8 MB/s on the guest's path: the upload takes about 2.5 s, long enough to be cut.
    let path = Path::start_limited(&relay_a, Some(8 * MB as u64)).await;
    let host = Bot::connect(&relay_a.tcp_addr().to_string(), quiet()).await;
    let guest = Bot::connect(&path.addr, camera_only()).await;
    let third = Bot::connect(&relay_a.tcp_addr().to_string(), quiet()).await;
    let (code, host_id) = create(&host, "Host").await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;
    let third_id = admit(&host, &third, &code, "Third").await;
    host.session.send_chat("before the restart").await.unwrap();
    wait_chat(&third, "before the restart").await;
    host.wait_until("the guest's video", LONG, |log| log.frames.get(&guest_id).is_some_and(|f| f.len() >= 5)).await;

    let src = tempfile::tempdir().unwrap();
    let file = src.path().join("slides.bin");
    let data = test_bytes(SIZE, 31);
    std::fs::write(&file, &data).unwrap();
    let upload_id = guest.session.send_file(&file).await.unwrap();
    let file_id = guest
        .wait("the upload's file id", LONG, |e| match e {
            SessionEvent::FileProgress(p) if p.upload_id == Some(upload_id) => Some(p.file_id),
            _ => None,
        })
        .await;
    guest.wait_until("the upload under way", LONG, |log| uploaded(&log.events, file_id) >= (SIZE / 3) as u64).await;

    // A graceful stop: everyone is told, nobody leaves.
    let marks = (host.mark(), guest.mark(), third.mark());
    relay_a.shutdown().await;
    let acknowledged = uploaded(&guest.events(), file_id);
    assert!(acknowledged < SIZE as u64, "the upload was cut at {acknowledged} of {SIZE} bytes");
    for (bot, from) in [(&host, marks.0), (&guest, marks.1), (&third, marks.2)] {
        let reason = bot
            .wait_from(from, "Reconnecting", LONG, |e| match e {
                SessionEvent::Reconnecting { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .await;
        assert_eq!(reason, "the relay is restarting");
    }
    let frames_before = host.log.lock().unwrap().frames.get(&guest_id).map_or(0, Vec::len);

    let relay_b = restart(was, data_dir.path(), grace).await;
    assert_eq!(relay_b.live_meeting_codes(), vec![code.clone()], "the same meeting code, before anyone is back");
    for bot in [&host, &guest, &third] {
        wait_resumed(bot).await;
    }
    // Same seats: nobody left or joined, the host is still host, no knock was needed.
    for (bot, from) in [(&host, marks.0), (&guest, marks.1), (&third, marks.2)] {
        let events = bot.events().split_off(from);
        assert!(
            !events.iter().any(|e| matches!(
                e,
                SessionEvent::ParticipantLeft { .. } | SessionEvent::Disconnected { .. } | SessionEvent::Knock { .. }
            )),
            "{:?}",
            events.iter().map(short).collect::<Vec<_>>()
        );
    }
    // Media flows again, under the resumed connections' keys.
    host.wait_until("the guest's video after the restart", LONG, |log| {
        log.frames.get(&guest_id).is_some_and(|f| f.len() >= frames_before + 10)
    })
    .await;
    // Chat goes on; the history survived for someone joining now.
    guest.session.send_chat("after the restart").await.unwrap();
    wait_chat(&host, "after the restart").await;
    wait_chat(&third, "after the restart").await;
    let late = Bot::connect(&relay_b.tcp_addr().to_string(), quiet()).await;
    admit(&host, &late, &code, "Late").await;
    let history = late
        .wait("the late joiner's welcome", LONG, |e| match e {
            SessionEvent::Joined { welcome } => Some(welcome.clone()),
            _ => None,
        })
        .await;
    let texts: Vec<&str> = history.chat_history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["before the restart", "after the restart"]);
    assert_eq!(history.host_id, host_id);
    let ids: Vec<u32> = history.roster.iter().map(|p| p.id).collect();
    assert!(ids.starts_with(&[host_id, guest_id, third_id]), "{ids:?}");

    // The upload finishes as the same file, from at least what was acknowledged before.
    let done = upload_done(&guest, upload_id, Duration::from_secs(60)).await;
    assert_eq!(done, file_id, "the same upload, not a new one");
    let resumed_from = transfer_progress(&guest.events(), file_id, true).iter().map(|p| p.1).max().unwrap_or(0);
    assert!(
        resumed_from >= acknowledged && resumed_from < SIZE as u64,
        "resumed from {resumed_from}, {acknowledged} acknowledged before the stop"
    );
    let downloads = tempfile::tempdir().unwrap();
    host.session.accept_file(file_id, downloads.path()).await.unwrap();
    let saved = host
        .wait("the download", LONG, |e| match e {
            SessionEvent::FileDone { file_id: id, path, .. } if *id == file_id => Some(path.clone()),
            _ => None,
        })
        .await;
    assert!(std::fs::read(&saved).unwrap() == data, "the file is byte-identical");

    for bot in [host, guest, third, late] {
        bot.close().await;
    }
    relay_b.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_back_after_the_grace_window_has_no_seats_and_says_so() {
    let grace = Duration::from_secs(2);
    let data_dir = tempfile::tempdir().unwrap();
    let relay_a = relay(data_dir.path(), grace, 0, 0).await;
    let was = ports(&relay_a);
    let host = Bot::connect(&relay_a.tcp_addr().to_string(), quiet()).await;
    let (code, _) = create(&host, "Host").await;
    relay_a.shutdown().await;
    host.wait("Reconnecting", LONG, |e| matches!(e, SessionEvent::Reconnecting { .. }).then_some(())).await;
    // Past the window before the relay is back.
    let stopped = tokio::time::Instant::now();
    tokio::time::sleep_until(stopped + grace + Duration::from_millis(500)).await;
    let relay_b = restart(was, data_dir.path(), grace).await;
    assert!(relay_b.live_meeting_codes().is_empty(), "nothing was restored");
    let lost = host
        .wait("Disconnected", Duration::from_secs(60), |e| match e {
            SessionEvent::Disconnected { meeting_code, .. } => Some(meeting_code.clone()),
            _ => None,
        })
        .await;
    assert_eq!(lost, Some(code), "told which meeting to knock on again");
    assert!(
        std::fs::read_dir(data_dir.path().join("parlor-spool")).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("meeting-")),
        "the stale meeting's spool is deleted"
    );
    relay_b.shutdown().await;
}
