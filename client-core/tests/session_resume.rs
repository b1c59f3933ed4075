//! Calls that survive the network: a participant whose path to a real relay is black-holed
//! (TCP and UDP) takes its seat back when the path returns — same participant id, no knock,
//! the host shown "reconnecting" and never a leave, chat from the gap delivered once each way —
//! and one gone longer than the relay's grace window is announced as left and told its seat
//! is lost, with the meeting's code to knock on again. One cut off for 20 s in the middle of a
//! 20 MB upload and a 20 MB download gets both back, byte-identical, each going on from at
//! least what was acknowledged before the cut.
//!
//! The relay here notices a dead connection after 3 s of silence (`liveness_timeout`), so a
//! short outage shows on the others' rosters; the client notices after 3 s without a datagram.

mod common;

use std::time::Duration;

use client_core::{SessionEvent, SessionOptions, VideoChoice};
use common::*;
use protocol::control::LeaveReason;
use relay_server::{Relay, RelayConfig, RelayHandle};

async fn relay(grace: Duration) -> RelayHandle {
    let config =
        RelayConfig { liveness_timeout: Duration::from_secs(3), resume_grace: grace, ..RelayConfig::for_tests() };
    Relay::start(config).await.expect("relay starts")
}

/// A guest that sends the moving test pattern and no audio.
fn camera_only() -> SessionOptions {
    SessionOptions { video: VideoChoice::Synthetic, ..quiet() }
}

/// The texts of the chat messages `bot` was shown, in order.
fn chat_texts(bot: &Bot) -> Vec<String> {
    bot.events()
        .iter()
        .filter_map(|e| match e {
            SessionEvent::Chat { message } => Some(message.text.clone()),
            _ => None,
        })
        .collect()
}

/// How many frames `bot` decoded from `sender` so far.
fn frames_from(bot: &Bot, sender: u32) -> usize {
    bot.log.lock().unwrap().frames.get(&sender).map_or(0, Vec::len)
}

/// Waits until `bot` was shown a chat message with `text`.
async fn wait_chat(bot: &Bot, what: &str, text: &str) {
    bot.wait_until(what, LONG, |log| {
        log.events.iter().any(|e| matches!(e, SessionEvent::Chat { message } if message.text == text))
    })
    .await
}

/// Waits until the roster `bot` was shown has `id` with `reconnecting` as given.
async fn wait_reconnecting(bot: &Bot, id: u32, reconnecting: bool) {
    bot.wait("participant's connection state", LONG, |e| match e {
        SessionEvent::ParticipantUpdated { participant }
            if participant.id == id && participant.reconnecting == reconnecting =>
        {
            Some(())
        }
        _ => None,
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_participant_cut_off_for_five_seconds_takes_its_seat_back() {
    let relay = relay(Duration::from_secs(30)).await;
    let path = Path::start(&relay).await;
    let host = Bot::connect(&relay.tcp_addr().to_string(), quiet()).await;
    let guest = Bot::connect(&path.addr, camera_only()).await;
    let (code, host_id) = create(&host, "Host").await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;
    // Someone who joins after the guest and leaves while the guest is away: the guest learns of
    // the leave from the resume, and the host's key rotation for it from the host's resend.
    let third = Bot::connect(&relay.tcp_addr().to_string(), quiet()).await;
    let third_id = admit(&host, &third, &code, "Third").await;
    guest
        .wait("the third's join", LONG, |e| match e {
            SessionEvent::ParticipantJoined { participant } if participant.id == third_id => Some(()),
            _ => None,
        })
        .await;
    host.session.send_chat("before the cut").await.unwrap();
    guest
        .wait_until("the host's first chat", LONG, |log| {
            log.events.iter().any(|e| matches!(e, SessionEvent::Chat { .. }))
        })
        .await;
    host.wait_until("the guest's video", LONG, |log| log.frames.get(&guest_id).is_some_and(|f| f.len() >= 5)).await;

    path.black_hole();
    let cut_at = tokio::time::Instant::now();
    host.session.send_chat("during the cut 1").await.unwrap();
    host.session.send_chat("during the cut 2").await.unwrap();
    let (reason, unheard_ms) = guest
        .wait("Reconnecting", LONG, |e| match e {
            SessionEvent::Reconnecting { reason, unheard_ms } => Some((reason.clone(), *unheard_ms)),
            _ => None,
        })
        .await;
    assert!(reason.contains("no media from the relay"), "{reason}");
    assert_eq!(unheard_ms, 3000, "the relay had been silent that long when the break was noticed");
    guest.session.send_chat("typed while away").await.unwrap();
    wait_reconnecting(&host, guest_id, true).await;
    third.close().await;
    host.wait("the key rotation for the third's leave", LONG, |e| {
        matches!(e, SessionEvent::Encryption { epoch: 2, .. }).then_some(())
    })
    .await;
    // The outage lasts five seconds, whatever the test is waiting for.
    tokio::time::sleep_until(cut_at + Duration::from_secs(5)).await;
    let frames_before = frames_from(&host, guest_id);
    path.restore();

    let (after_ms, attempts) = guest
        .wait("Resumed", LONG, |e| match e {
            SessionEvent::Resumed { after_ms, attempts } => Some((*after_ms, *attempts)),
            _ => None,
        })
        .await;
    assert!(after_ms >= 1_000 && attempts >= 1, "resumed after {after_ms} ms, {attempts} attempts");
    wait_reconnecting(&host, guest_id, false).await;
    host.wait_until("the guest's video again", LONG, |log| {
        log.frames.get(&guest_id).is_some_and(|f| f.len() >= frames_before + 10)
    })
    .await;
    wait_chat(&host, "the chat typed while away", "typed while away").await;
    wait_chat(&guest, "the chat sent during the cut", "during the cut 2").await;
    // Give a duplicate time to show up: a round trip of chat after everything else.
    host.session.send_chat("after").await.unwrap();
    wait_chat(&guest, "the last chat", "after").await;
    wait_chat(&host, "the last chat", "after").await;

    assert_eq!(
        chat_texts(&guest),
        vec!["before the cut", "during the cut 1", "during the cut 2", "typed while away", "after"],
        "every message once, in the meeting's order"
    );
    assert_eq!(chat_texts(&host), chat_texts(&guest), "the host saw the same chat");
    let host_events = host.events();
    let guest_events = guest.events();
    let lefts: Vec<u32> = guest_events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ParticipantLeft { participant_id, .. } => Some(*participant_id),
            _ => None,
        })
        .collect();
    assert_eq!(lefts, vec![third_id], "the leave missed while away, once");
    let third_joins = guest_events
        .iter()
        .filter(|e| matches!(e, SessionEvent::ParticipantJoined { participant } if participant.id == third_id))
        .count();
    assert_eq!(third_joins, 1, "a participant already known is not announced again by the resume");
    guest
        .wait("the host's current key", LONG, |e| matches!(e, SessionEvent::Encryption { epoch: 2, .. }).then_some(()))
        .await;
    let knocks = host_events.iter().filter(|e| matches!(e, SessionEvent::Knock { .. })).count();
    let host_lefts: Vec<u32> = host_events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ParticipantLeft { participant_id, .. } => Some(*participant_id),
            _ => None,
        })
        .collect();
    assert!(
        knocks == 2 && host_lefts == vec![third_id],
        "no knock but the two admissions and no leave but the third's: {:?}",
        host_events.iter().map(short).collect::<Vec<_>>()
    );
    let joins = guest_events.iter().filter(|e| matches!(e, SessionEvent::Joined { .. } | SessionEvent::Waiting { .. }));
    assert_eq!(joins.count(), 2, "one WAITING and one JOINED: the seat came back without a second join");
    assert!(!guest_events.iter().any(|e| matches!(e, SessionEvent::Disconnected { .. })));
    let roster_ids: Vec<u32> = host_events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::ParticipantJoined { participant } => Some(participant.id),
            _ => None,
        })
        .collect();
    assert_eq!(roster_ids, vec![guest_id, third_id], "the guest joined once, under one id");
    assert_ne!(host_id, guest_id);
    guest.close().await;
    host.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_participant_gone_past_the_grace_window_has_left_and_is_told_its_seat_is_lost() {
    let relay = relay(Duration::from_secs(2)).await;
    let path = Path::start(&relay).await;
    let host = Bot::connect(&relay.tcp_addr().to_string(), quiet()).await;
    let guest = Bot::connect(&path.addr, quiet()).await;
    let (code, _) = create(&host, "Host").await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;

    path.black_hole();
    guest.wait("Reconnecting", LONG, |e| matches!(e, SessionEvent::Reconnecting { .. }).then_some(())).await;
    wait_reconnecting(&host, guest_id, true).await;
    let reason = host
        .wait("the guest's leave", LONG, |e| match e {
            SessionEvent::ParticipantLeft { participant_id, reason } if *participant_id == guest_id => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, LeaveReason::TimedOut, "announced after the window, with why the connection went");
    path.restore();

    let lost = guest
        .wait("Disconnected", LONG, |e| match e {
            SessionEvent::Disconnected { meeting_code, .. } => Some(meeting_code.clone()),
            _ => None,
        })
        .await;
    assert_eq!(lost, Some(code), "the session says which meeting to knock on again");
    assert!(!guest.events().iter().any(|e| matches!(e, SessionEvent::Resumed { .. })));
    guest.close().await;
    host.close().await;
}

/// Bytes of `file_id` reported done so far among `events`.
fn transfer_bytes(events: &[SessionEvent], file_id: u64, upload: bool) -> u64 {
    transfer_progress(events, file_id, upload).last().map_or(0, |p| p.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_seconds_cut_off_mid_transfer_the_seat_and_both_transfers_come_back() {
    const MB: usize = 1024 * 1024;
    const SIZE: usize = 20 * MB;
    let relay = relay(Duration::from_secs(30)).await;
    // 8 MB/s each way: a 20 MB transfer takes about 2.5 s, long enough to be cut halfway.
    let path = Path::start_limited(&relay, Some(8 * MB as u64)).await;
    let host = Bot::connect(&relay.tcp_addr().to_string(), quiet()).await;
    let guest = Bot::connect(&path.addr, quiet()).await;
    let (code, _) = create(&host, "Host").await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;
    let src = tempfile::tempdir().unwrap();
    let (host_file, guest_file) = (src.path().join("from-host.bin"), src.path().join("from-guest.bin"));
    let (host_data, guest_data) = (test_bytes(SIZE, 21), test_bytes(SIZE, 22));
    std::fs::write(&host_file, &host_data).unwrap();
    std::fs::write(&guest_file, &guest_data).unwrap();

    host.session.send_file(&host_file).await.unwrap();
    let offer = guest
        .wait("the host's file", LONG, |e| match e {
            SessionEvent::FileOffer { file } if file.name == "from-host.bin" => Some(file.clone()),
            _ => None,
        })
        .await;
    let downloads = tempfile::tempdir().unwrap();
    guest.session.accept_file(offer.file_id, downloads.path()).await.unwrap();
    let upload_id = guest.session.send_file(&guest_file).await.unwrap();
    let upload_file_id = guest
        .wait("the upload's file id", LONG, |e| match e {
            SessionEvent::FileProgress(p) if p.upload_id == Some(upload_id) => Some(p.file_id),
            _ => None,
        })
        .await;
    // Cut when both are well under way.
    let half = (SIZE / 2) as u64;
    guest
        .wait_until("both transfers halfway", LONG, |log| {
            transfer_bytes(&log.events, upload_file_id, true) >= half * 4 / 5
                && transfer_bytes(&log.events, offer.file_id, false) >= half * 4 / 5
        })
        .await;
    path.black_hole();
    let cut_at = tokio::time::Instant::now();
    host.session.send_chat("while you were away").await.unwrap();
    wait_reconnecting(&host, guest_id, true).await;
    tokio::time::sleep_until(cut_at + Duration::from_secs(20)).await;
    // What the guest knew was acknowledged when the path went.
    let events = guest.events();
    let (uploaded_before, downloaded_before) =
        (transfer_bytes(&events, upload_file_id, true), transfer_bytes(&events, offer.file_id, false));
    assert!(
        uploaded_before < SIZE as u64 && downloaded_before < SIZE as u64,
        "both transfers were cut: {uploaded_before} and {downloaded_before} of {SIZE} bytes"
    );
    path.restore();

    guest.wait("Resumed", LONG, |e| matches!(e, SessionEvent::Resumed { .. }).then_some(())).await;
    wait_reconnecting(&host, guest_id, false).await;
    wait_chat(&guest, "the chat from the gap", "while you were away").await;
    let saved = guest
        .wait("the download", LONG, |e| match e {
            SessionEvent::FileDone { file_id, path, .. } if *file_id == offer.file_id => Some(path.clone()),
            SessionEvent::FileFailed { file_id: Some(id), reason, .. } if *id == offer.file_id => {
                panic!("the download failed: {reason}")
            }
            _ => None,
        })
        .await;
    assert!(std::fs::read(&saved).unwrap() == host_data, "the download is byte-identical");
    let uploaded = upload_done(&guest, upload_id, LONG).await;
    assert_eq!(uploaded, upload_file_id, "the same upload, not a new one");

    // Each went on from at least what was acknowledged before the cut: at most the window
    // that was in flight was sent again.
    let events = guest.events();
    let resumed = |file_id, upload| transfer_progress(&events, file_id, upload).iter().map(|p| p.1).max().unwrap_or(0);
    let (upload_from, download_from) = (resumed(upload_file_id, true), resumed(offer.file_id, false));
    assert!(
        upload_from >= uploaded_before && upload_from < SIZE as u64,
        "upload resumed from {upload_from}, {uploaded_before} acknowledged before the cut"
    );
    assert!(
        download_from >= downloaded_before && download_from < SIZE as u64,
        "download resumed from {download_from}, {downloaded_before} received before the cut"
    );
    assert_eq!(relay.stats().uploads_resumed, 1);

    // The host gets the guest's file, intact.
    let host_dir = tempfile::tempdir().unwrap();
    let mark = host.mark();
    host.session.accept_file(upload_file_id, host_dir.path()).await.unwrap();
    let got = host
        .wait_from(mark, "the guest's file", LONG, |e| match e {
            SessionEvent::FileDone { file_id, path, .. } if *file_id == upload_file_id => Some(path.clone()),
            _ => None,
        })
        .await;
    assert!(std::fs::read(&got).unwrap() == guest_data, "the resumed upload is byte-identical");
    let host_events = host.events();
    assert!(!host_events.iter().any(|e| matches!(e, SessionEvent::ParticipantLeft { .. })), "no leave");
    assert_eq!(host_events.iter().filter(|e| matches!(e, SessionEvent::Knock { .. })).count(), 1, "no second knock");
    assert_eq!(chat_texts(&guest).iter().filter(|t| *t == "while you were away").count(), 1, "chat once");
    guest.close().await;
    host.close().await;
}
