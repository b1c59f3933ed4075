//! The bad-input suite: attacks a stranger (or a rude participant) can make, each bounded in
//! count, each checking both halves — the attacker is limited, and a real meeting beside it
//! keeps exchanging chat and media without a disconnect. Attackers connect from their own
//! loopback addresses (127.0.0.x), the real meeting from 127.0.0.1.

mod common;

use common::*;
use futures::{SinkExt, StreamExt};
use protocol::control::{ErrorCode, MeetingWelcome, UploadStopReason};
use protocol::file::FileFrame;
use protocol::{ControlMessage, MediaPacket};
use relay_server::{LimitHit, RelayConfig, RelayHandle};

/// A two-person meeting from 127.0.0.1 with media registered.
struct Bystanders {
    members: Vec<Member>,
    host_media: Media,
    guest_media: Media,
    next_frame: u32,
}

impl Bystanders {
    async fn start(relay: &RelayHandle) -> Bystanders {
        let members = meeting(relay, &["Host", "Guest"]).await;
        let host_media = Media::register(relay, &members[0]).await;
        let guest_media = Media::register(relay, &members[1]).await;
        Bystanders { members, host_media, guest_media, next_frame: 1 }
    }

    fn code(&self) -> String {
        self.members[0].welcome.code.clone()
    }

    /// `name`, connecting from `source`, knocks and the host admits it.
    async fn admit(&mut self, relay: &RelayHandle, source: [u8; 4], name: &str) -> (Client, MeetingWelcome) {
        let mut joiner = Client::connect_from(relay, source).await;
        let request_id = joiner.knock(&self.code(), name).await;
        assert_eq!(self.members[0].client.expect_knock(name).await, request_id);
        self.members[0].client.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
        let welcome = joiner.expect_joined().await;
        (joiner, welcome)
    }

    /// The guest's chat reaches the host and the guest's video frame reaches the host's
    /// socket: the meeting still works.
    async fn still_talk(&mut self) {
        let text = format!("still here {}", self.next_frame);
        self.members[1].client.chat(&text).await;
        let got = self.members[0]
            .client
            .recv_until(|m| matches!(m, ControlMessage::Chat { message } if message.text == text))
            .await;
        assert!(matches!(got, ControlMessage::Chat { .. }));
        let frame_id = self.next_frame;
        self.next_frame += 1;
        self.guest_media.send_frame(frame_id, 2).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let d = self.host_media.recv_until(deadline).await.expect("the guest's frame reaches the host");
            if let Ok(MediaPacket::VideoFragment { header, .. }) = MediaPacket::decode(&d) {
                if header.frame_id == frame_id {
                    break;
                }
            }
        }
    }
}

#[tokio::test]
async fn a_code_scan_is_locked_out_and_learns_nothing_while_real_joins_work() {
    let relay = start_default().await;
    let mut real = Bystanders::start(&relay).await;
    let code = real.code();
    let scanner_addr = [127, 0, 0, 4];
    let mut scanner = Client::connect_from(&relay, scanner_addr).await;
    let wrong = |n: u32| {
        let c = format!("{:06}", (code.parse::<u32>().unwrap() + 1 + n) % 1_000_000);
        assert_ne!(c, code);
        c
    };
    for n in 0..10 {
        scanner.send(common::join_request(wrong(n), "scan")).await;
        scanner.expect_error(ErrorCode::UnknownMeeting).await;
    }
    for n in 10..200 {
        scanner.send(common::join_request(wrong(n), "scan")).await;
        let retry = scanner.expect_rate_limited().await;
        assert!(retry > 3_500_000, "locked out for about an hour, not {retry} ms");
    }
    // Even the right code is refused while locked out: a hit is indistinguishable.
    scanner.send(common::join_request(code.clone(), "scan")).await;
    scanner.expect_rate_limited().await;
    // Another connection from the same address is locked out too.
    let mut again = Client::connect_from(&relay, scanner_addr).await;
    again.send(common::join_request(wrong(500), "scan")).await;
    again.expect_rate_limited().await;
    assert_eq!(relay.stats().limit_hits(LimitHit::FailedJoins), 192);

    // A real joiner from elsewhere gets in at once.
    real.admit(&relay, [127, 0, 0, 5], "Real").await;
    real.still_talk().await;
    assert_eq!(relay.stats().slow_consumers, 0);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_knock_and_cancel_flood_reaches_the_host_only_a_few_times() {
    let relay = start_default().await;
    let mut real = Bystanders::start(&relay).await;
    let code = real.code();
    let attacker = Client::connect_from(&relay, [127, 0, 0, 3]).await;
    let (mut tx, mut rx) = attacker.framed.split();
    const PAIRS: usize = 5_000;
    let sender = tokio::spawn(async move {
        for _ in 0..PAIRS {
            tx.feed(common::join_request(code.clone(), "flood")).await.unwrap();
            tx.feed(ControlMessage::CancelJoin).await.unwrap();
        }
        tx.flush().await.unwrap();
        tx
    });
    // Every JOIN_REQUEST is answered: WAITING while the address has knocks left, then
    // RATE_LIMITED. (CANCEL_JOIN without a knock gets INVALID_STATE.)
    let (mut waiting, mut limited) = (0usize, 0usize);
    while waiting + limited < PAIRS {
        match rx.next().await.expect("open").expect("framing").expect("valid") {
            ControlMessage::Waiting { .. } => waiting += 1,
            ControlMessage::Error { code: ErrorCode::RateLimited, retry_after_ms: Some(_), .. } => limited += 1,
            ControlMessage::Error { code: ErrorCode::InvalidState, .. } | ControlMessage::Ping { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    let _tx = sender.await.unwrap();
    assert!(waiting <= 12, "{waiting} knocks got through");
    assert!(limited >= PAIRS - 12);
    assert!(relay.stats().limit_hits(LimitHit::Knocks) >= (PAIRS - 12) as u64);
    // The host saw only the knocks that got through, and is still in its meeting.
    real.still_talk().await;
    assert!(relay.stats().knocks <= 12);
    assert_eq!(relay.stats().slow_consumers, 0);
    relay.shutdown().await;
}

#[tokio::test]
async fn one_address_cannot_fill_the_waiting_room() {
    let relay = start_default().await;
    let mut real = Bystanders::start(&relay).await;
    let code = real.code();
    let mut knockers = Vec::new();
    for n in 0..3 {
        let mut c = Client::connect_from(&relay, [127, 0, 0, 6]).await;
        c.knock(&code, &format!("Squatter {n}")).await;
        knockers.push(c);
    }
    let mut fourth = Client::connect_from(&relay, [127, 0, 0, 6]).await;
    fourth.send(common::join_request(code.clone(), "Squatter 3")).await;
    fourth.expect_error(ErrorCode::ServerBusy).await;
    assert_eq!(relay.stats().limit_hits(LimitHit::PendingKnocksPerAddress), 1);
    let mut guest = Client::connect_from(&relay, [127, 0, 0, 7]).await;
    let request_id = guest.knock(&code, "Guest 2").await;
    real.members[0].client.expect_knock("Squatter 0").await;
    real.members[0].client.expect_knock("Squatter 1").await;
    real.members[0].client.expect_knock("Squatter 2").await;
    assert_eq!(real.members[0].client.expect_knock("Guest 2").await, request_id);
    real.members[0].client.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
    guest.expect_joined().await;
    real.still_talk().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_media_state_flood_is_refused_and_the_others_keep_their_connections() {
    let relay = start_default().await;
    let mut real = Bystanders::start(&relay).await;
    // The rude participant is admitted into the same meeting.
    let (rude, _) = real.admit(&relay, [127, 0, 0, 8], "Rude").await;
    let (mut tx, mut rx) = rude.framed.split();
    const TOGGLES: usize = 20_000;
    let sender = tokio::spawn(async move {
        for n in 0..TOGGLES {
            let msg =
                ControlMessage::MediaState { mic_on: n % 2 == 0, camera_on: false, speaking: false, presenting: false };
            tx.feed(msg).await.unwrap();
        }
        // The relay answers in order: its PONG says every toggle was handled.
        tx.feed(ControlMessage::Ping { nonce: u64::MAX }).await.unwrap();
        tx.flush().await.unwrap();
        tx
    });
    let mut limited = 0usize;
    let started = std::time::Instant::now();
    loop {
        match rx.next().await.expect("open").expect("framing").expect("valid") {
            ControlMessage::Error { code: ErrorCode::RateLimited, retry_after_ms: Some(_), .. } => limited += 1,
            ControlMessage::Pong { nonce: u64::MAX } => break,
            _ => {}
        }
    }
    let _tx = sender.await.unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    // Half the toggles repeat the state a refused one left in place and cost nothing; the
    // others are refused beyond the allowance.
    let hits = relay.stats().limit_hits(LimitHit::MediaState) as usize;
    assert_eq!(hits, limited);
    assert!(hits >= TOGGLES / 2 - 40, "{hits} refused");
    // What the others were sent is bounded by the allowance: a burst of 20, then 10 a second.
    real.members[1].client.chat("marker").await;
    let mut updates = 0usize;
    loop {
        match real.members[0].client.recv().await {
            ControlMessage::ParticipantUpdated { .. } => updates += 1,
            ControlMessage::Chat { message } if message.text == "marker" => break,
            _ => {}
        }
    }
    assert!(updates as f64 <= 20.0 + 10.0 * (elapsed + 1.0), "{updates} changes broadcast in {elapsed:.1} s");
    assert!(updates >= 20, "the burst went through: {updates}");
    real.still_talk().await;
    assert_eq!(relay.stats().slow_consumers, 0, "nobody was disconnected for being flooded");
    relay.shutdown().await;
}

#[tokio::test]
async fn connections_per_address_are_capped_and_others_still_connect() {
    let relay = start(RelayConfig { max_connections_per_address: 8, ..RelayConfig::for_tests() }).await;
    let mut real = Bystanders::start(&relay).await;
    let mut hoard = Vec::new();
    for _ in 0..8 {
        hoard.push(Client::connect_from(&relay, [127, 0, 0, 9]).await);
    }
    let mut one_more = Client::connect_raw_from(&relay, [127, 0, 0, 9]).await;
    let seen = one_more.expect_closed().await;
    assert!(
        matches!(seen.as_slice(), [ControlMessage::Error { code: ErrorCode::ServerBusy, .. }]),
        "refused with SERVER_BUSY then closed: {seen:?}"
    );
    assert_eq!(relay.stats().limit_hits(LimitHit::ConnectionsPerAddress), 1);
    // Others connect, and the real meeting's file transfer works.
    let mut other = Client::connect_from(&relay, [127, 0, 0, 10]).await;
    other.create("Elsewhere").await;
    let data = test_bytes(40_000, 7);
    let (done, _) = upload(&relay, &real.members[1].welcome.session_token, "a.bin", &data, &sha256_hex(&data)).await;
    assert!(matches!(done, ControlMessage::FileUploadComplete { .. }), "{done:?}");
    real.still_talk().await;
    // A closed connection gives its place back.
    drop(hoard.pop());
    let mut retry = None;
    for _ in 0..100 {
        let mut c = Client::connect_raw_from(&relay, [127, 0, 0, 9]).await;
        c.send(ControlMessage::Ping { nonce: 1 }).await;
        match c.framed.next().await {
            Some(Ok(Ok(ControlMessage::Pong { .. }))) => {
                retry = Some(c);
                break;
            }
            _ => tokio::task::yield_now().await,
        }
    }
    assert!(retry.is_some(), "the place of a closed connection is given back");
    relay.shutdown().await;
}

#[tokio::test]
async fn connections_that_join_nothing_are_closed_and_give_their_place_back() {
    let idle = std::time::Duration::from_secs(1);
    let config =
        RelayConfig { max_connections_per_address: 4, idle_before_join_timeout: idle, ..RelayConfig::for_tests() };
    let relay = start(config).await;
    let mut real = Bystanders::start(&relay).await;
    // Four connections from one address say hello and then nothing: the address's every slot.
    let mut hoard = Vec::new();
    for _ in 0..4 {
        hoard.push(Client::connect_from(&relay, [127, 0, 0, 9]).await);
    }
    for c in &mut hoard {
        let seen = c.expect_closed().await;
        assert!(
            matches!(seen.as_slice(), [ControlMessage::Error { code: ErrorCode::InvalidState, .. }]),
            "told why, then closed: {seen:?}"
        );
    }
    assert_eq!(relay.stats().limit_hits(LimitHit::IdleBeforeJoin), 4);
    // The slots are free again, and a connection that does something keeps its place.
    let mut back = Client::connect_from(&relay, [127, 0, 0, 9]).await;
    back.create("Back").await;
    // The meeting beside it never was idle and carries on, longer than the idle limit.
    real.still_talk().await;
    back.expect_silence(idle + std::time::Duration::from_millis(200)).await;
    real.still_talk().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn meetings_created_per_address_are_limited() {
    let relay = start_default().await;
    let mut real = Bystanders::start(&relay).await;
    let mut hosts = Vec::new();
    // The bystanders' host already created one meeting from 127.0.0.1; the attacker has its own.
    for n in 0..20 {
        let mut c = Client::connect_from(&relay, [127, 0, 0, 11]).await;
        c.create(&format!("Host {n}")).await;
        hosts.push(c);
    }
    let mut c = Client::connect_from(&relay, [127, 0, 0, 11]).await;
    c.send(ControlMessage::CreateMeeting {
        display_name: "One too many".into(),
        media_public_key: common::public_key(),
    })
    .await;
    let retry = c.expect_rate_limited().await;
    assert!(retry > 0 && retry <= 30_000, "{retry}");
    assert_eq!(relay.stats().limit_hits(LimitHit::NewMeetings), 1);
    let mut elsewhere = Client::connect_from(&relay, [127, 0, 0, 12]).await;
    elsewhere.create("Elsewhere").await;
    real.still_talk().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn a_long_chat_history_never_makes_the_meeting_unjoinable() {
    let relay = start(RelayConfig { chat_burst: 1000, ..RelayConfig::for_tests() }).await;
    let mut real = Bystanders::start(&relay).await;
    // 200 ordinary messages of ~220 characters, then 17 of 4,000.
    for n in 0..200 {
        real.members[0].client.chat(&format!("{n:03} {}", "lorem ipsum ".repeat(18))).await;
    }
    for n in 0..17 {
        real.members[0].client.chat(&format!("{n:02} {}", "x".repeat(3990))).await;
    }
    let last = format!("16 {}", "x".repeat(3990));
    real.members[1].client.recv_until(|m| matches!(m, ControlMessage::Chat { message } if message.text == last)).await;
    let (_late, welcome) = real.admit(&relay, [127, 0, 0, 13], "Late").await;
    assert_eq!(welcome.chat_history.last().map(|m| m.text.as_str()), Some(last.as_str()));
    real.still_talk().await;
    relay.shutdown().await;
}

/// How long the killed-upload test listens for progress between two chunks: 64 chunks of it
/// outlast the relay's 250 ms progress interval whatever the machine's speed.
const PROGRESS_POLL: std::time::Duration = std::time::Duration::from_millis(50);

#[tokio::test]
async fn an_upload_killed_midway_is_announced_as_stopped_to_everyone() {
    // The upload is held for a resume for the grace window, then given up.
    let relay =
        start(RelayConfig { resume_grace: std::time::Duration::from_secs(1), ..RelayConfig::for_tests() }).await;
    let mut real = Bystanders::start(&relay).await;
    let guest = real.members[1].id();
    let data = test_bytes(1 << 20, 11);
    let mut conn = FileConn::connect(
        &relay,
        ControlMessage::FileUpload {
            session_token: real.members[1].welcome.session_token.clone(),
            name: "big.bin".into(),
            size: data.len() as u64,
            sha256: sha256_hex(&data),
        },
    )
    .await;
    let (file_id, chunk) = match conn.recv_control().await {
        ControlMessage::FileUploadReady { file_id, chunk_size, .. } => (file_id, chunk_size as usize),
        other => panic!("expected FILE_UPLOAD_READY, got {other:?}"),
    };
    // One chunk at a time, until the host has seen the upload's progress (the relay announces
    // it at most four times a second); then the uploader's app dies.
    let mut offset = 0usize;
    let mut seq = 0u32;
    loop {
        assert!(offset + chunk < data.len(), "progress is announced long before the last chunk");
        let payload = bytes::Bytes::copy_from_slice(&data[offset..offset + chunk]);
        conn.send(FileFrame::Data { seq, offset: offset as u64, data: payload }).await;
        assert!(matches!(conn.recv().await, Some(FileFrame::Ack { .. })));
        offset += chunk;
        seq += 1;
        let heard = tokio::time::timeout(PROGRESS_POLL, real.members[0].client.recv_with_progress(true)).await;
        if matches!(heard, Ok(ControlMessage::FileProgress { file_id: f, .. }) if f == file_id) {
            break;
        }
    }
    drop(conn);
    let stopped = ControlMessage::FileUploadStopped {
        file_id,
        name: "big.bin".into(),
        sender_id: guest,
        reason: UploadStopReason::Disconnected,
    };
    // Everyone who could have seen the progress hears that it stopped once the window passed:
    // the host and the uploader's own control connection.
    for member in &mut real.members {
        let got = member.client.recv_until(|m| matches!(m, ControlMessage::FileUploadStopped { .. })).await;
        assert_eq!(got, stopped);
    }
    // Nothing of it is offered, and the spool gave its room back.
    let (_, end) = download(&relay, &real.members[0].welcome.session_token, file_id, 0).await;
    assert!(matches!(&end, ControlMessage::Error { code: ErrorCode::UnknownFile, .. }), "{end:?}");
    eventually("the spool is empty again", || relay.stats().spool_bytes == 0).await;
    real.still_talk().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn announced_uploads_hold_no_spool_and_a_trickle_is_cut() {
    let window = std::time::Duration::from_secs(1);
    let config = RelayConfig {
        max_spool_bytes: 4 << 20,
        max_file_size: 4 << 20,
        upload_stall_window: window,
        upload_stall_min_bytes: 16_384,
        ..RelayConfig::for_tests()
    };
    let relay = start(config).await;
    let mut real = Bystanders::start(&relay).await;
    // In a meeting of its own, an attacker announces two files that together are the whole
    // spool, and sends one byte of each (reserving the announced sizes left no room here).
    let mut attacker = Client::connect_from(&relay, [127, 0, 0, 9]).await;
    let token = attacker.create("Mallory").await.session_token;
    let mut trickles = Vec::new();
    for n in 0..2 {
        let upload = ControlMessage::FileUpload {
            session_token: token.clone(),
            name: format!("huge-{n}.bin"),
            size: 2 << 20,
            sha256: "ab".repeat(32),
        };
        let mut conn = FileConn::connect(&relay, upload).await;
        assert!(matches!(conn.recv_control().await, ControlMessage::FileUploadReady { .. }));
        conn.send(FileFrame::Data { seq: 0, offset: 0, data: bytes::Bytes::from_static(b"x") }).await;
        assert!(matches!(conn.recv().await, Some(FileFrame::Ack { received: 1, .. })));
        trickles.push(conn);
    }
    assert_eq!(relay.stats().spool_bytes, 2, "an upload holds what it sent, not what it announced");
    // The real meeting's file still fits.
    let data = test_bytes(40_000, 5);
    let (done, _) = upload(&relay, &real.members[1].welcome.session_token, "a.bin", &data, &sha256_hex(&data)).await;
    assert!(matches!(done, ControlMessage::FileUploadComplete { .. }), "{done:?}");
    // Each trickle is cut once its window passes with less than 16 KiB moved.
    for conn in &mut trickles {
        match conn.recv().await {
            Some(FileFrame::Control(ControlMessage::Error { code: ErrorCode::ServerBusy, message, .. })) => {
                assert!(message.contains("fewer than 16384 bytes"), "{message}");
            }
            other => panic!("expected the stalled upload to be refused, got {other:?}"),
        }
        assert!(conn.recv().await.is_none(), "then closed");
    }
    assert_eq!(relay.stats().limit_hits(LimitHit::StalledUpload), 2);
    eventually("the trickles' bytes are given back", || relay.stats().spool_bytes == 40_000).await;
    real.still_talk().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn one_meeting_or_one_person_cannot_fill_the_spool() {
    const MIB: usize = 1 << 20;
    let config = RelayConfig {
        max_spool_bytes: 4 << 20,
        max_spool_bytes_per_meeting: 2 << 20,
        max_spool_bytes_per_participant: 1 << 20,
        max_file_size: 4 << 20,
        ..RelayConfig::for_tests()
    };
    let relay = start(config).await;
    let mut real = Bystanders::start(&relay).await;
    let hoarders = meeting(&relay, &["Mallory", "Trudy", "Eve"]).await;
    let token = |n: usize| hoarders[n].welcome.session_token.clone();
    let busy = |reply: ControlMessage, words: &str| match reply {
        ControlMessage::Error { code: ErrorCode::ServerBusy, message, .. } => {
            assert!(message.contains(words), "{message}")
        }
        other => panic!("expected SERVER_BUSY ({words}), got {other:?}"),
    };

    // More than one person's share is refused before a byte moves…
    let big = test_bytes(MIB + 1, 1);
    busy(upload(&relay, &token(0), "big.bin", &big, &sha256_hex(&big)).await.0, "one participant");
    // …and so is anything past a share that is full.
    let share = test_bytes(MIB, 2);
    let (done, _) = upload(&relay, &token(0), "share.bin", &share, &sha256_hex(&share)).await;
    assert!(matches!(done, ControlMessage::FileUploadComplete { .. }), "{done:?}");
    busy(upload(&relay, &token(0), "more.bin", b"x", &sha256_hex(b"x")).await.0, "one participant");
    // A second person fills the meeting's half of the spool; a third gets nothing in.
    let (done, _) = upload(&relay, &token(1), "share.bin", &share, &sha256_hex(&share)).await;
    assert!(matches!(done, ControlMessage::FileUploadComplete { .. }), "{done:?}");
    busy(upload(&relay, &token(2), "more.bin", b"x", &sha256_hex(b"x")).await.0, "this meeting");
    assert_eq!(relay.stats().spool_bytes, 2 << 20);
    assert_eq!(relay.stats().limit_hits(LimitHit::ParticipantSpool), 2);
    assert_eq!(relay.stats().limit_hits(LimitHit::MeetingSpool), 1);

    // The real meeting still has the other half of the spool.
    let (done, _) = upload(&relay, &real.members[1].welcome.session_token, "a.bin", &share, &sha256_hex(&share)).await;
    assert!(matches!(done, ControlMessage::FileUploadComplete { .. }), "{done:?}");
    real.still_talk().await;
    relay.shutdown().await;
}
