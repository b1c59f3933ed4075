//! Chat over real TCP: one order for everyone, stamped by the relay; history for late
//! joiners; the length limit.

mod common;

use std::time::Duration;

use common::*;
use protocol::control::{ChatMessage, ErrorCode};
use protocol::ControlMessage;
use relay_server::RelayConfig;

async fn next_chat(c: &mut Client) -> ChatMessage {
    match c.recv_until(|m| matches!(m, ControlMessage::Chat { .. })).await {
        ControlMessage::Chat { message } => message,
        _ => unreachable!(),
    }
}

#[tokio::test]
async fn everyone_sees_the_same_order() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["A", "B", "C"]).await;
    let ids: Vec<_> = m.iter().map(|x| x.id()).collect();
    let before = protocol_time_ms();
    // All three send at once, each several messages.
    let mut senders = Vec::new();
    for (i, member) in m.iter_mut().enumerate() {
        let mut framed_msgs = Vec::new();
        for n in 0..10u64 {
            framed_msgs.push(ControlMessage::ChatSend { text: format!("{i}-{n}"), client_msg_id: Some(n) });
        }
        senders.push((member, framed_msgs));
    }
    futures::future::join_all(senders.into_iter().map(|(member, msgs)| async move {
        for msg in msgs {
            member.client.send(msg).await;
        }
    }))
    .await;

    let mut seen = Vec::new();
    for member in &mut m {
        let mut got = Vec::new();
        for _ in 0..30 {
            got.push(next_chat(&mut member.client).await);
        }
        seen.push(got);
    }
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    let order = &seen[0];
    assert!(order.windows(2).all(|w| w[1].id > w[0].id), "ids increase");
    assert!(order.windows(2).all(|w| w[1].timestamp_ms >= w[0].timestamp_ms));
    assert!(order[0].timestamp_ms >= before);
    for (i, id) in ids.iter().enumerate() {
        // Each sender's own messages keep their order, with sender, name and echoed id.
        let mine: Vec<_> = order.iter().filter(|c| c.sender_id == *id).collect();
        assert_eq!(mine.len(), 10);
        for (n, c) in mine.iter().enumerate() {
            assert_eq!(c.text, format!("{i}-{n}"));
            assert_eq!(c.client_msg_id, Some(n as u64));
            assert_eq!(c.sender_name, ["A", "B", "C"][i]);
            assert!(c.file.is_none());
        }
    }
    relay.shutdown().await;
}

fn protocol_time_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64
}

#[tokio::test]
async fn late_joiners_get_the_last_200_messages() {
    let relay = start(RelayConfig { chat_burst: 1000, ..RelayConfig::for_tests() }).await;
    let mut m = meeting(&relay, &["Host"]).await;
    for n in 1..=210 {
        m[0].client.chat(&format!("message {n}")).await;
    }
    for n in 1..=210u64 {
        assert_eq!(next_chat(&mut m[0].client).await.id, n);
    }
    let mut joiner = Client::connect(&relay).await;
    let request_id = joiner.knock(&m[0].welcome.code, "Late").await;
    m[0].client.expect_knock("Late").await;
    m[0].client.send(ControlMessage::Admit { request_id, media_key: common::sealed_key() }).await;
    let w = joiner.expect_joined().await;
    assert_eq!(w.chat_history.len(), 200);
    assert_eq!(w.chat_history.first().unwrap().text, "message 11");
    assert_eq!(w.chat_history.last().unwrap().text, "message 210");
    assert!(w.chat_history.windows(2).all(|p| p[1].id == p[0].id + 1), "oldest first, contiguous");
    relay.shutdown().await;
}

#[tokio::test]
async fn over_long_messages_get_an_error_not_a_cut() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["A", "B"]).await;
    // 4000 characters of two bytes each: counted in characters, accepted whole.
    let longest = "é".repeat(4000);
    m[0].client.chat(&longest).await;
    for member in &mut m {
        assert_eq!(next_chat(&mut member.client).await.text, longest);
    }
    m[0].client.chat(&"x".repeat(4001)).await;
    m[0].client.expect_error(ErrorCode::ChatTooLong).await;
    m[0].client.chat("   ").await;
    m[0].client.expect_error(ErrorCode::MalformedMessage).await;
    m[1].client.expect_silence(Duration::from_millis(300)).await;
    // Nothing was stored either.
    assert_eq!(relay.stats().chat_messages, 1);
    relay.shutdown().await;
}

#[tokio::test]
async fn chat_needs_a_meeting_and_a_sane_rate() {
    // No refill at all, so the test does not depend on how fast it runs.
    let relay = start(RelayConfig { chat_burst: 5, chat_per_second: 0, ..RelayConfig::for_tests() }).await;
    let mut idle = Client::connect(&relay).await;
    idle.chat("hello?").await;
    idle.expect_error(ErrorCode::InvalidState).await;

    let mut m = meeting(&relay, &["A"]).await;
    for n in 0..6 {
        m[0].client.chat(&format!("{n}")).await;
    }
    for _ in 0..5 {
        next_chat(&mut m[0].client).await;
    }
    m[0].client.expect_error(ErrorCode::RateLimited).await;
    relay.shutdown().await;
}
