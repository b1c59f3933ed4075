//! The host's controls, hands and reactions through the session API, against a real relay:
//! lock, co-hosts (whose admissions carry their own seal of the meeting key), admit all, mute
//! (the muted client turns its microphone off), asking for a device, hands, reactions, handing
//! the host role on and ending the meeting for everyone.

mod common;

use client_core::SessionEvent;
use common::*;
use protocol::control::{JoinRefusal, KnockWithdrawal, MediaDevice, Participant, Reaction, Role};

/// The newest `ParticipantUpdated` for `id` after `from` that satisfies `f`.
async fn updated(bot: &Bot, from: usize, id: u32, what: &str, f: impl Fn(&Participant) -> bool) -> Participant {
    bot.wait_from(from, what, LONG, |e| match e {
        SessionEvent::ParticipantUpdated { participant } if participant.id == id && f(participant) => {
            Some(participant.clone())
        }
        _ => None,
    })
    .await
}

/// Waits for a knock named `name` after `from`; its request id.
async fn knock(bot: &Bot, from: usize, name: &str) -> u64 {
    bot.wait_from(from, "Knock", LONG, |e| match e {
        SessionEvent::Knock { request_id, display_name, waiting_since_ms } if display_name == name => {
            assert!(*waiting_since_ms > 1_600_000_000_000, "a wall-clock time: {waiting_since_ms}");
            Some(*request_id)
        }
        _ => None,
    })
    .await
}

async fn joined(bot: &Bot) -> u32 {
    bot.wait("Joined", LONG, |e| match e {
        SessionEvent::Joined { welcome } => Some(welcome.participant_id),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn lock_cohost_admission_and_admit_all() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let host = Bot::connect(&addr, quiet()).await;
    let guest = Bot::connect(&addr, quiet()).await;
    let (code, host_id) = create(&host, "Host").await;

    // Locked: the knock is refused at once and the host is never asked.
    let mark = host.mark();
    host.session.lock_meeting(true).await.unwrap();
    host.wait_from(mark, "MeetingLocked", LONG, |e| {
        matches!(e, SessionEvent::MeetingLocked { locked: true, by } if *by == host_id).then_some(())
    })
    .await;
    guest.session.join(&code, "Guest").await.unwrap();
    guest
        .wait("JoinRefused", LONG, |e| {
            matches!(e, SessionEvent::JoinRefused { reason: JoinRefusal::Locked }).then_some(())
        })
        .await;
    assert!(!host.events()[mark..].iter().any(|e| matches!(e, SessionEvent::Knock { .. })));

    // Unlocked: admitted, and its welcome says unlocked.
    host.session.lock_meeting(false).await.unwrap();
    host.wait_from(mark, "unlocked", LONG, |e| {
        matches!(e, SessionEvent::MeetingLocked { locked: false, .. }).then_some(())
    })
    .await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;

    // A co-host sees knocks and admits with its own seal: the joiner opens the meeting key.
    let mark = host.mark();
    host.session.set_role(guest_id, Role::CoHost).await.unwrap();
    updated(&guest, 0, guest_id, "co-host", |p| p.is_cohost).await;
    let third = Bot::connect(&addr, quiet()).await;
    let guest_mark = guest.mark();
    third.session.join(&code, "Third").await.unwrap();
    let request = knock(&guest, guest_mark, "Third").await;
    assert_eq!(knock(&host, mark, "Third").await, request, "the host sees the same knock");
    guest.session.admit(request).await.unwrap();
    let third_id = joined(&third).await;
    let epoch = third
        .wait("Encryption", LONG, |e| match e {
            SessionEvent::Encryption { epoch, .. } => Some(*epoch),
            _ => None,
        })
        .await;
    assert!(epoch >= 1);
    assert!(
        !third.events().iter().any(|e| matches!(e, SessionEvent::Error { .. })),
        "the co-host's seal opened: {:?}",
        third.events()
    );
    host.wait_from(mark, "KnockWithdrawn ANSWERED", LONG, |e| match e {
        SessionEvent::KnockWithdrawn { request_id, reason: KnockWithdrawal::Answered } if *request_id == request => {
            Some(())
        }
        _ => None,
    })
    .await;

    // Admit all lets every knock in, oldest first.
    let late = [Bot::connect(&addr, quiet()).await, Bot::connect(&addr, quiet()).await];
    let mark = host.mark();
    for (i, bot) in late.iter().enumerate() {
        bot.session.join(&code, &format!("Late {i}")).await.unwrap();
        knock(&host, mark, &format!("Late {i}")).await;
    }
    host.session.admit_all().await.unwrap();
    for bot in &late {
        let id = joined(bot).await;
        assert!(id != third_id && id != guest_id);
    }
    for bot in late.into_iter().chain([third, guest, host]) {
        bot.close().await;
    }
}

#[tokio::test]
async fn mute_ask_hands_reactions_handover_and_end_for_all() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let host = Bot::connect(&addr, quiet()).await;
    let guest = Bot::connect(&addr, quiet()).await;
    let (code, host_id) = create(&host, "Host").await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;
    guest.session.set_mic(true).await.unwrap();
    guest.session.set_camera(false).await.unwrap();
    updated(&host, 0, guest_id, "guest's mic on, camera off", |p| p.mic_on && !p.camera_on).await;

    // Muted by the host: the guest's microphone goes off and it is told so.
    let (host_mark, guest_mark) = (host.mark(), guest.mark());
    host.session.mute_participant(guest_id).await.unwrap();
    guest
        .wait_from(guest_mark, "MutedByHost", LONG, |e| {
            matches!(e, SessionEvent::MutedByHost { by } if *by == host_id).then_some(())
        })
        .await;
    assert!(!guest.session.mic_on());
    updated(&host, host_mark, guest_id, "guest shown muted", |p| !p.mic_on).await;
    // Its own click unmutes it.
    let host_mark = host.mark();
    guest.session.set_mic(true).await.unwrap();
    updated(&host, host_mark, guest_id, "guest unmuted itself", |p| p.mic_on).await;

    // Asked to turn the camera on: a prompt, nothing turns on.
    let asked = host.mark();
    host.session.request_media(guest_id, MediaDevice::Camera).await.unwrap();
    guest
        .wait("MediaRequested", LONG, |e| {
            matches!(e, SessionEvent::MediaRequested { device: MediaDevice::Camera, by } if *by == host_id)
                .then_some(())
        })
        .await;
    assert!(!host.events()[asked..].iter().any(|e| matches!(e,
        SessionEvent::ParticipantUpdated { participant } if participant.id == guest_id && participant.camera_on)));

    // A hand goes up for everyone; the host lowers it.
    let host_mark = host.mark();
    guest.session.raise_hand(true).await.unwrap();
    let raised = updated(&host, host_mark, guest_id, "hand raised", |p| p.hand_raised.is_some()).await;
    assert_eq!(raised.hand_raised, Some(1));
    let guest_mark = guest.mark();
    host.session.lower_hand(guest_id).await.unwrap();
    updated(&guest, guest_mark, guest_id, "hand lowered", |p| p.hand_raised.is_none()).await;

    // A reaction reaches everyone, the sender too; the sixth in a burst is refused.
    let guest_mark = guest.mark();
    for _ in 0..6 {
        guest.session.react(Reaction::Party).await.unwrap();
    }
    for bot in [&host, &guest] {
        bot.wait("Reaction", LONG, |e| {
            matches!(e, SessionEvent::Reaction { participant_id, reaction: Reaction::Party } if *participant_id == guest_id)
                .then_some(())
        })
        .await;
    }
    let retry = guest
        .wait_from(guest_mark, "RATE_LIMITED", LONG, |e| match e {
            SessionEvent::Error { retry_after_ms: Some(ms), .. } => Some(*ms),
            _ => None,
        })
        .await;
    assert!(retry > 0);

    // The host hands its role on; the old host can no longer lock.
    let guest_mark = guest.mark();
    host.session.set_role(guest_id, Role::Host).await.unwrap();
    guest
        .wait_from(guest_mark, "HostChanged", LONG, |e| {
            matches!(e, SessionEvent::HostChanged { host_id } if *host_id == guest_id).then_some(())
        })
        .await;
    let host_mark = host.mark();
    host.session.lock_meeting(true).await.unwrap();
    host.wait_from(host_mark, "NOT_HOST", LONG, |e| {
        matches!(e, SessionEvent::Error { code: Some(protocol::control::ErrorCode::NotHost), .. }).then_some(())
    })
    .await;

    // The new host ends the meeting for everyone.
    guest.session.end_meeting().await.unwrap();
    for bot in [&host, &guest] {
        bot.wait("MeetingEnded", LONG, |e| {
            matches!(e, SessionEvent::MeetingEnded { by } if *by == guest_id).then_some(())
        })
        .await;
    }
    // The code is free: knocking on it finds no meeting.
    let late = Bot::connect(&addr, quiet()).await;
    late.session.join(&code, "Late").await.unwrap();
    late.wait("UNKNOWN_MEETING", LONG, |e| {
        matches!(e, SessionEvent::Error { code: Some(protocol::control::ErrorCode::UnknownMeeting), .. }).then_some(())
    })
    .await;
    for bot in [late, guest, host] {
        bot.close().await;
    }
}

/// As in Meet, a raised hand comes down by itself once its owner has spoken for a few seconds
/// (the test tone is speech to the voice-activity detector); a silent participant's stays up.
#[tokio::test]
async fn a_raised_hand_lowers_itself_after_its_owner_speaks() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let host = Bot::connect(&addr, quiet()).await;
    let talker = Bot::connect(
        &addr,
        client_core::SessionOptions { video: client_core::VideoChoice::None, ..Default::default() },
    )
    .await;
    let silent = Bot::connect(&addr, quiet()).await;
    let (code, _) = create(&host, "Host").await;
    let talker_id = admit(&host, &talker, &code, "Talker").await;
    let silent_id = admit(&host, &silent, &code, "Silent").await;
    updated(&host, 0, talker_id, "the talker speaking", |p| p.speaking).await;
    let mark = host.mark();
    silent.session.raise_hand(true).await.unwrap();
    talker.session.raise_hand(true).await.unwrap();
    updated(&host, mark, talker_id, "the talker's hand up", |p| p.hand_raised.is_some()).await;
    let raised_at = std::time::Instant::now();
    updated(&host, mark, talker_id, "the talker's hand down by itself", |p| p.hand_raised.is_none()).await;
    assert!(raised_at.elapsed() >= std::time::Duration::from_secs(2), "only after a few seconds of speech");
    let silent_now = host.events().into_iter().rev().find_map(|e| match e {
        SessionEvent::ParticipantUpdated { participant } if participant.id == silent_id => Some(participant),
        _ => None,
    });
    assert!(silent_now.is_some_and(|p| p.hand_raised.is_some()), "the silent participant's hand stays up");
    for bot in [silent, talker, host] {
        bot.close().await;
    }
}
