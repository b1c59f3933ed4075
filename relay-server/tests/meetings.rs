//! Meetings over real TCP: create, join, admit, deny, queued knocks, knock expiry, cancel,
//! host hand-over, removal, meeting end, roster updates, liveness.

mod common;

use std::time::Duration;

use common::*;
use protocol::control::{is_valid_meeting_code, ErrorCode, JoinRefusal, KnockWithdrawal, LeaveReason};
use protocol::ControlMessage;
use relay_server::RelayConfig;

#[tokio::test]
async fn create_gives_a_random_six_digit_code_and_the_host_role() {
    let relay = start_default().await;
    let mut a = Client::connect(&relay).await;
    let mut b = Client::connect(&relay).await;
    let wa = a.create("Ada").await;
    let wb = b.create("Bob").await;
    assert!(is_valid_meeting_code(&wa.code), "{}", wa.code);
    assert_ne!(wa.code, wb.code);
    assert_eq!(wa.host_id, wa.participant_id);
    assert_eq!(wa.roster.len(), 1);
    assert!(wa.roster[0].is_host);
    assert_eq!(wa.roster[0].display_name, "Ada");
    assert!(wa.participant_id >= 1, "0 is the relay's sender id");
    assert_ne!(wa.participant_id, wb.participant_id, "ids are unique relay-wide");
    assert_eq!(wa.session_token.len(), 32);
    assert!(wa.chat_history.is_empty());
    let mut codes = relay.live_meeting_codes();
    codes.sort();
    let mut expected = vec![wa.code.clone(), wb.code.clone()];
    expected.sort();
    assert_eq!(codes, expected);
    assert_eq!(relay.stats().meetings_live, 2);

    // Already in a meeting: creating another one is refused.
    a.send(ControlMessage::CreateMeeting { display_name: "Ada".into(), media_public_key: common::public_key() }).await;
    a.expect_error(ErrorCode::InvalidState).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn codes_are_not_sequential() {
    let relay = start_default().await;
    let mut codes = Vec::new();
    let mut clients = Vec::new();
    for i in 0..12 {
        let mut c = Client::connect(&relay).await;
        codes.push(c.create(&format!("host{i}")).await.code.parse::<i64>().unwrap());
        clients.push(c);
    }
    let steps: std::collections::HashSet<i64> = codes.windows(2).map(|w| w[1] - w[0]).collect();
    assert!(steps.len() > 1, "codes advance by a constant step: {codes:?}");
    relay.shutdown().await;
}

#[tokio::test]
async fn join_and_admit() {
    let relay = start_default().await;
    let mut host = Client::connect(&relay).await;
    let hw = host.create("Host").await;
    host.send(ControlMessage::MediaState { mic_on: true, camera_on: false, speaking: false, presenting: false }).await;
    host.recv_until(|m| matches!(m, ControlMessage::ParticipantUpdated { .. })).await;

    let mut joiner = Client::connect(&relay).await;
    let request_id = joiner.knock(&hw.code, "Joiner").await;
    assert_eq!(host.expect_knock("Joiner").await, request_id);
    host.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
    let jw = joiner.expect_joined().await;
    assert_eq!(jw.code, hw.code);
    assert_eq!(jw.host_id, hw.participant_id);
    assert_ne!(jw.participant_id, hw.participant_id);
    assert_ne!(jw.session_token, hw.session_token);
    // The late joiner gets the full roster, with the host's current media state.
    assert_eq!(jw.roster.len(), 2);
    assert_eq!(jw.roster[0].id, hw.participant_id);
    assert!(jw.roster[0].is_host && jw.roster[0].mic_on);
    assert_eq!(jw.roster[1].id, jw.participant_id);
    assert!(!jw.roster[1].is_host);
    match host.recv().await {
        ControlMessage::ParticipantJoined { participant } => {
            assert_eq!(participant.id, jw.participant_id);
            assert_eq!(participant.display_name, "Joiner");
        }
        other => panic!("unexpected {other:?}"),
    }

    // Roster updates reach everyone.
    joiner.send(ControlMessage::MediaState { mic_on: true, camera_on: true, speaking: true, presenting: false }).await;
    for c in [&mut host, &mut joiner] {
        match c.recv().await {
            ControlMessage::ParticipantUpdated { participant } => {
                assert_eq!(participant.id, jw.participant_id);
                assert!(participant.mic_on && participant.camera_on && participant.speaking);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let stats = relay.stats();
    assert_eq!(stats.participants_live, 2);
    assert_eq!(stats.knocks, 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn unknown_and_invalid_codes_are_errors() {
    let relay = start_default().await;
    let mut host = Client::connect(&relay).await;
    let code = host.create("Host").await.code;
    let unused = (0..1_000_000).map(|n| format!("{n:06}")).find(|c| *c != code).unwrap();
    let mut c = Client::connect(&relay).await;
    c.send(common::join_request(unused, "X")).await;
    c.expect_error(ErrorCode::UnknownMeeting).await;
    c.send(common::join_request("12a456", "X")).await;
    c.expect_error(ErrorCode::InvalidCode).await;
    c.send(common::join_request(code.clone(), " \n ")).await;
    c.expect_error(ErrorCode::InvalidName).await;
    c.send(ControlMessage::JoinRequest { code, display_name: "x".repeat(65), media_public_key: common::public_key() })
        .await;
    c.expect_error(ErrorCode::InvalidName).await;
    host.expect_silence(Duration::from_millis(200)).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn deny_refuses_and_the_joiner_may_knock_again() {
    let relay = start_default().await;
    let mut host = Client::connect(&relay).await;
    let code = host.create("Host").await.code;
    let mut joiner = Client::connect(&relay).await;
    let first = joiner.knock(&code, "J").await;
    host.expect_knock("J").await;
    host.send(ControlMessage::Deny { request_id: first }).await;
    assert_eq!(joiner.recv().await, ControlMessage::JoinRefused { reason: JoinRefusal::Denied });
    // Answering twice is an error.
    host.send(ControlMessage::Admit { request_id: first, media_key: common::sealed_key() }).await;
    host.expect_error(ErrorCode::UnknownParticipant).await;

    let second = joiner.knock(&code, "J").await;
    assert_ne!(first, second);
    host.expect_knock("J").await;
    host.send(ControlMessage::Admit { request_id: second, media_key: common::sealed_key() }).await;
    joiner.expect_joined().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn only_the_host_answers_knocks() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["Host", "Guest"]).await;
    let code = m[0].welcome.code.clone();
    let mut joiner = Client::connect(&relay).await;
    let request_id = joiner.knock(&code, "J").await;
    m[0].client.expect_knock("J").await;
    m[1].client.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
    m[1].client.expect_error(ErrorCode::NotHost).await;
    let host_id = m[0].id();
    m[1].client.send(ControlMessage::RemoveParticipant { participant_id: host_id }).await;
    m[1].client.expect_error(ErrorCode::NotHost).await;
    relay.shutdown().await;
}

#[tokio::test]
async fn knocks_queue_and_are_answered_by_id() {
    let relay = start_default().await;
    let mut host = Client::connect(&relay).await;
    let code = host.create("Host").await.code;
    let mut joiners = Vec::new();
    let mut ids = Vec::new();
    for name in ["J1", "J2", "J3"] {
        let mut j = Client::connect(&relay).await;
        ids.push(j.knock(&code, name).await);
        joiners.push(j);
    }
    for (name, id) in ["J1", "J2", "J3"].iter().zip(&ids) {
        assert_eq!(host.expect_knock(name).await, *id, "knocks reach the host in order");
    }
    host.send(ControlMessage::Admit { request_id: ids[1], media_key: common::sealed_key() }).await;
    host.send(ControlMessage::Deny { request_id: ids[0] }).await;
    host.send(ControlMessage::Admit { request_id: ids[2], media_key: common::sealed_key() }).await;
    let w2 = joiners[1].expect_joined().await;
    assert_eq!(joiners[0].recv().await, ControlMessage::JoinRefused { reason: JoinRefusal::Denied });
    let w3 = joiners[2].expect_joined().await;
    assert_eq!(w3.roster.iter().map(|p| p.display_name.as_str()).collect::<Vec<_>>(), ["Host", "J2", "J3"]);
    assert_eq!(joiners[1].expect_participant_joined().await, w3.participant_id);
    assert_ne!(w2.participant_id, w3.participant_id);
    relay.shutdown().await;
}

#[tokio::test]
async fn an_unanswered_knock_expires() {
    let relay = start(RelayConfig { knock_timeout: Duration::from_millis(300), ..RelayConfig::for_tests() }).await;
    let mut host = Client::connect(&relay).await;
    let code = host.create("Host").await.code;
    let mut joiner = Client::connect(&relay).await;
    let request_id = joiner.knock(&code, "Late").await;
    host.expect_knock("Late").await;
    assert_eq!(joiner.recv().await, ControlMessage::JoinRefused { reason: JoinRefusal::Expired });
    assert_eq!(host.recv().await, ControlMessage::KnockWithdrawn { request_id, reason: KnockWithdrawal::Expired });
    host.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
    host.expect_error(ErrorCode::UnknownParticipant).await;
    // The expired joiner is idle again and may knock anew.
    let again = joiner.knock(&code, "Late").await;
    host.expect_knock("Late").await;
    host.send(ControlMessage::Admit { request_id: again, media_key: common::sealed_key() }).await;
    joiner.expect_joined().await;
    relay.shutdown().await;
}

#[tokio::test]
async fn the_joiner_may_cancel() {
    let relay = start_default().await;
    let mut host = Client::connect(&relay).await;
    let code = host.create("Host").await.code;
    let mut joiner = Client::connect(&relay).await;
    let request_id = joiner.knock(&code, "J").await;
    host.expect_knock("J").await;
    joiner.send(ControlMessage::CancelJoin).await;
    assert_eq!(host.recv().await, ControlMessage::KnockWithdrawn { request_id, reason: KnockWithdrawal::Cancelled });
    host.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
    host.expect_error(ErrorCode::UnknownParticipant).await;
    joiner.expect_silence(Duration::from_millis(200)).await;
    // A joiner that disconnects while waiting is withdrawn too.
    let mut quitter = Client::connect(&relay).await;
    let quit_id = quitter.knock(&code, "Q").await;
    host.expect_knock("Q").await;
    drop(quitter);
    assert_eq!(
        host.recv().await,
        ControlMessage::KnockWithdrawn { request_id: quit_id, reason: KnockWithdrawal::Disconnected }
    );
    relay.shutdown().await;
}

#[tokio::test]
async fn host_leaving_hands_the_role_to_the_earliest_joined() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["Host", "First", "Second"]).await;
    let (host_id, first_id) = (m[0].id(), m[1].id());
    let code = m[0].welcome.code.clone();
    // A knock is pending when the host leaves: the new host must get it.
    let mut joiner = Client::connect(&relay).await;
    let request_id = joiner.knock(&code, "J").await;
    m[0].client.expect_knock("J").await;

    m[0].client.send(ControlMessage::Leave).await;
    for member in &mut m[1..] {
        assert_eq!(
            member.client.recv().await,
            ControlMessage::ParticipantLeft { participant_id: host_id, reason: LeaveReason::Left }
        );
        assert_eq!(member.client.recv().await, ControlMessage::HostChanged { host_id: first_id });
    }
    assert_eq!(m[1].client.expect_knock("J").await, request_id);
    m[1].client.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
    let w = joiner.expect_joined().await;
    assert_eq!(w.host_id, first_id);
    let roster: Vec<_> = w.roster.iter().map(|p| (p.display_name.as_str(), p.is_host)).collect();
    assert_eq!(roster, [("First", true), ("Second", false), ("J", false)]);
    // The former host is idle and can start something else.
    let other = m[0].client.create("Host again").await;
    assert_ne!(other.code, code);
    relay.shutdown().await;
}

#[tokio::test]
async fn the_host_can_remove_a_participant() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["Host", "A", "B"]).await;
    let b_id = m[2].id();
    m[0].client.send(ControlMessage::RemoveParticipant { participant_id: b_id }).await;
    let seen = m[2].client.expect_closed().await;
    assert!(seen.contains(&ControlMessage::Removed), "{seen:?}");
    for member in &mut m[..2] {
        assert_eq!(
            member.client.recv().await,
            ControlMessage::ParticipantLeft { participant_id: b_id, reason: LeaveReason::Removed }
        );
    }
    m[0].client.send(ControlMessage::RemoveParticipant { participant_id: b_id }).await;
    m[0].client.expect_error(ErrorCode::UnknownParticipant).await;
    assert_eq!(relay.stats().participants_live, 2);
    relay.shutdown().await;
}

#[tokio::test]
async fn the_last_one_out_ends_the_meeting_and_frees_the_code() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["Host", "Guest"]).await;
    let code = m[0].welcome.code.clone();
    let guest_id = m[1].id();
    let mut joiner = Client::connect(&relay).await;
    joiner.knock(&code, "Waiting").await;
    m[0].client.expect_knock("Waiting").await;

    m[1].client.send(ControlMessage::Leave).await;
    assert_eq!(
        m[0].client.recv().await,
        ControlMessage::ParticipantLeft { participant_id: guest_id, reason: LeaveReason::Left }
    );
    m[0].client.send(ControlMessage::Leave).await;
    // The waiting room is told.
    assert_eq!(joiner.recv().await, ControlMessage::JoinRefused { reason: JoinRefusal::MeetingEnded });
    assert!(relay.live_meeting_codes().is_empty());
    let stats = relay.stats();
    assert_eq!((stats.meetings_live, stats.participants_live, stats.meetings_created), (0, 0, 1));
    joiner
        .send(ControlMessage::JoinRequest { code, display_name: "Late".into(), media_public_key: common::public_key() })
        .await;
    joiner.expect_error(ErrorCode::UnknownMeeting).await;
    relay.shutdown().await;
}

/// The others' `PARTICIPANT_UPDATED` about `id`'s connection state.
fn reconnecting(msg: &ControlMessage, id: u32) -> Option<bool> {
    match msg {
        ControlMessage::ParticipantUpdated { participant } if participant.id == id => Some(participant.reconnecting),
        _ => None,
    }
}

#[tokio::test]
async fn a_closed_connection_holds_the_seat_for_the_grace_window_then_is_a_leave() {
    let relay = start(RelayConfig { resume_grace: Duration::from_millis(500), ..RelayConfig::for_tests() }).await;
    let mut m = meeting(&relay, &["Host", "Guest"]).await;
    let guest = m.pop().unwrap();
    let guest_id = guest.id();
    let dropped_at = std::time::Instant::now();
    drop(guest);
    assert_eq!(reconnecting(&m[0].client.recv().await, guest_id), Some(true), "reconnecting, not gone");
    assert_eq!(
        m[0].client.recv().await,
        ControlMessage::ParticipantLeft { participant_id: guest_id, reason: LeaveReason::Disconnected }
    );
    assert!(dropped_at.elapsed() >= Duration::from_millis(500), "left after the window: {:?}", dropped_at.elapsed());
    assert_eq!(relay.stats().participants_live, 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_resume_takes_the_seat_back_with_the_chat_missed_and_a_wrong_secret_is_refused() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["Host", "Guest"]).await;
    let guest = m.pop().unwrap();
    let (guest_id, welcome) = (guest.id(), guest.welcome.clone());
    drop(guest);
    m[0].client.recv_until(|msg| reconnecting(msg, guest_id) == Some(true)).await;
    m[0].client.send(ControlMessage::ChatSend { text: "you froze".into(), client_msg_id: None }).await;
    m[0].client.recv_until(|msg| matches!(msg, ControlMessage::Chat { .. })).await;

    let resume = |secret: &str| ControlMessage::Resume {
        code: welcome.code.clone(),
        participant_id: guest_id,
        resume_secret: protocol::control::Secret::new(secret),
        last_chat_id: 0,
    };
    let mut back = Client::connect(&relay).await;
    back.send(resume(&"00".repeat(32))).await;
    assert!(matches!(back.recv().await, ControlMessage::Error { code: ErrorCode::ResumeRefused, .. }));
    back.send(resume(welcome.resume_secret.expose())).await;
    let ControlMessage::Resumed(resumed) = back.recv().await else { panic!("not RESUMED") };
    assert_eq!((resumed.participant_id, resumed.session_token.as_str()), (guest_id, welcome.session_token.as_str()));
    let missed: Vec<&str> = resumed.chat_history.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(missed, vec!["you froze"]);
    assert!(resumed.roster.iter().all(|p| !p.reconnecting));
    assert_eq!(m[0].client.recv_until(|msg| reconnecting(msg, guest_id).is_some()).await, {
        let participant = resumed.roster.iter().find(|p| p.id == guest_id).unwrap().clone();
        ControlMessage::ParticipantUpdated { participant }
    });
    // The seat is whole again: chat from it reaches the host under its id.
    back.send(ControlMessage::ChatSend { text: "back".into(), client_msg_id: Some(1) }).await;
    let ControlMessage::Chat { message } =
        m[0].client.recv_until(|msg| matches!(msg, ControlMessage::Chat { .. })).await
    else {
        unreachable!()
    };
    assert_eq!((message.sender_id, message.text.as_str()), (guest_id, "back"));
    assert_eq!(relay.stats().resumes, 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_silent_participant_is_dropped() {
    let config = RelayConfig {
        liveness_timeout: Duration::from_secs(1),
        resume_grace: Duration::ZERO,
        ..RelayConfig::for_tests()
    };
    let relay = start(config).await;
    // Before the guest's last message, so the drop cannot come sooner than a timeout after it.
    let started = std::time::Instant::now();
    let mut m = meeting(&relay, &["Host", "Silent"]).await;
    let silent_id = m[1].id();
    // The host keeps answering pings (recv does); the guest never reads nor writes again.
    let left = m[0].client.recv_until(|msg| matches!(msg, ControlMessage::ParticipantLeft { .. })).await;
    assert_eq!(left, ControlMessage::ParticipantLeft { participant_id: silent_id, reason: LeaveReason::TimedOut });
    assert!(started.elapsed() >= Duration::from_secs(1), "dropped too early: {:?}", started.elapsed());
    // The live host outlasts several timeouts.
    m[0].client.expect_silence(Duration::from_millis(2500)).await;
    assert_eq!(relay.stats().participants_live, 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn a_full_meeting_refuses_joiners() {
    let relay = start(RelayConfig { max_participants: 2, ..RelayConfig::for_tests() }).await;
    let m = meeting(&relay, &["Host", "Guest"]).await;
    let mut joiner = Client::connect(&relay).await;
    joiner.send(common::join_request(m[0].welcome.code.clone(), "Third")).await;
    assert_eq!(joiner.recv().await, ControlMessage::JoinRefused { reason: JoinRefusal::MeetingFull });
    relay.shutdown().await;
}
