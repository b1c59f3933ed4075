//! The waiting room through the session API: knock, deny, admit, cancel, remove, leave.

mod common;

use client_core::SessionEvent;
use common::*;
use protocol::control::{JoinRefusal, KnockWithdrawal, LeaveReason};

#[tokio::test]
async fn knock_deny_admit_cancel_and_remove() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let host = Bot::connect(&addr, quiet()).await;
    let guest = Bot::connect(&addr, quiet()).await;
    let other = Bot::connect(&addr, quiet()).await;
    assert!(matches!(host.events().first(), Some(SessionEvent::Connected { .. })));
    let (code, host_id) = create(&host, "Host").await;
    assert_eq!(code.len(), 6);

    // Denied.
    let mark = host.mark();
    guest.session.join(&code, "Guest").await.unwrap();
    guest
        .wait("Waiting", LONG, |e| match e {
            SessionEvent::Waiting { code: c, .. } if *c == code => Some(()),
            _ => None,
        })
        .await;
    let request = host
        .wait_from(mark, "Knock", LONG, |e| match e {
            SessionEvent::Knock { request_id, display_name, .. } if display_name == "Guest" => Some(*request_id),
            _ => None,
        })
        .await;
    host.session.deny(request).await.unwrap();
    guest
        .wait("JoinRefused", LONG, |e| match e {
            SessionEvent::JoinRefused { reason: JoinRefusal::Denied } => Some(()),
            _ => None,
        })
        .await;

    // Admitted the second time.
    let mark = host.mark();
    let guest_id = admit(&host, &guest, &code, "Guest").await;
    host.wait_from(mark, "ParticipantJoined", LONG, |e| match e {
        SessionEvent::ParticipantJoined { participant } if participant.id == guest_id => Some(()),
        _ => None,
    })
    .await;
    let roster = guest
        .wait("Joined", LONG, |e| match e {
            SessionEvent::Joined { welcome } => Some(welcome.roster.clone()),
            _ => None,
        })
        .await;
    assert!(roster.iter().any(|p| p.id == host_id && p.is_host));

    // A knock withdrawn by the joiner.
    let mark = host.mark();
    other.session.join(&code, "Other").await.unwrap();
    let request = host
        .wait_from(mark, "Knock", LONG, |e| match e {
            SessionEvent::Knock { request_id, display_name, .. } if display_name == "Other" => Some(*request_id),
            _ => None,
        })
        .await;
    other.wait("Waiting", LONG, |e| matches!(e, SessionEvent::Waiting { .. }).then_some(())).await;
    other.session.cancel_join().await.unwrap();
    host.wait_from(mark, "KnockWithdrawn", LONG, |e| match e {
        SessionEvent::KnockWithdrawn { request_id, reason: KnockWithdrawal::Cancelled } if *request_id == request => {
            Some(())
        }
        _ => None,
    })
    .await;

    // Only the host may remove; the guest's attempt is an error, the host's works.
    let mark = guest.mark();
    guest.session.remove(host_id).await.unwrap();
    guest
        .wait_from(mark, "NOT_HOST error", LONG, |e| {
            matches!(e, SessionEvent::Error { code: Some(_), .. }).then_some(())
        })
        .await;
    let mark = host.mark();
    host.session.remove(guest_id).await.unwrap();
    guest.wait("Removed", LONG, |e| matches!(e, SessionEvent::Removed).then_some(())).await;
    host.wait_from(mark, "ParticipantLeft", LONG, |e| match e {
        SessionEvent::ParticipantLeft { participant_id, reason: LeaveReason::Removed }
            if *participant_id == guest_id =>
        {
            Some(())
        }
        _ => None,
    })
    .await;

    // Leaving keeps the connection for another meeting.
    host.session.leave().await.unwrap();
    host.wait("Left", LONG, |e| matches!(e, SessionEvent::Left).then_some(())).await;
    let mark = host.mark();
    host.session.create_meeting("Host again").await.unwrap();
    host.wait_from(mark, "Joined again", LONG, |e| matches!(e, SessionEvent::Joined { .. }).then_some(())).await;

    for bot in [host, guest, other] {
        bot.close().await;
    }
    relay.shutdown().await;
}
