//! Sessions against three relays that act as one service through a real `redis-server`: a
//! bot that knocks through one relay ends up in the meeting another relay hosts (the
//! `REDIRECT` followed without an event of its own) with media flowing both ways through that
//! relay; a bot creating a meeting on a relay that takes none is placed on another; and a
//! directory entry naming a relay that does not answer gives a clear error, after which the
//! session still joins.

mod common;

use client_core::{SessionEvent, SessionOptions};
use common::*;
use relay_server::test_redis::RedisServer;
use relay_server::{RelayConfig, RelayHandle};

async fn start_member(redis: &RedisServer, capacity: usize) -> RelayHandle {
    let relay =
        relay_server::Relay::start(RelayConfig { redis_url: Some(redis.url()), capacity, ..RelayConfig::for_tests() })
            .await
            .expect("relay starts");
    eventually("the relay registers in the directory", || relay.directory_available()).await;
    relay
}

fn no_errors(bot: &Bot) {
    let errors: Vec<String> =
        bot.events().iter().filter(|e| matches!(e, SessionEvent::Error { .. })).map(short).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bots_joining_through_other_relays_end_up_in_one_meeting() {
    let redis = RedisServer::start().expect("redis-server");
    let a = start_member(&redis, 400).await;
    let b = start_member(&redis, 400).await;
    // C hosts nothing itself: every new meeting asked of it goes elsewhere.
    let c = start_member(&redis, 0).await;

    let host = Bot::connect(&a.tcp_addr().to_string(), SessionOptions::default()).await;
    let (code, host_id) = create(&host, "Host").await;

    // Through C, redirected to A: knocks, is admitted, and media flows through A.
    let guest = Bot::connect(&c.tcp_addr().to_string(), SessionOptions::default()).await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;
    assert_eq!(c.stats().redirects, 1);
    assert_eq!(a.stats().participants_live, 2);
    guest.wait_until("video from the host", LONG, |log| log.frames.get(&host_id).is_some_and(|f| f.len() >= 5)).await;
    host.wait_until("video from the guest", LONG, |log| log.frames.get(&guest_id).is_some_and(|f| f.len() >= 5)).await;
    let udp_in = a.stats().udp_packets_in;
    assert!(udp_in > 0 && c.stats().udp_packets_in == 0, "media goes to the meeting's relay: {udp_in} in on A");
    no_errors(&guest);

    // Through B, a third bot joins too, and chat reaches all three.
    let third = Bot::connect(&b.tcp_addr().to_string(), common::quiet()).await;
    admit(&host, &third, &code, "Third").await;
    third.session.send_chat("hello from the third relay's side").await.unwrap();
    for bot in [&host, &guest, &third] {
        bot.wait("the chat", LONG, |e| match e {
            SessionEvent::Chat { message } if message.text == "hello from the third relay's side" => Some(()),
            _ => None,
        })
        .await;
    }
    no_errors(&third);

    // A new meeting asked of C is made on another relay, where its creator then is.
    let creator = Bot::connect(&c.tcp_addr().to_string(), common::quiet()).await;
    let (placed, _) = create(&creator, "Creator").await;
    assert!(c.live_meeting_codes().is_empty());
    assert!(
        a.live_meeting_codes().contains(&placed) || b.live_meeting_codes().contains(&placed),
        "meeting {placed} placed on A or B"
    );
    assert_eq!(c.stats().redirects, 2);
    no_errors(&creator);
}

#[tokio::test]
async fn a_directory_entry_naming_a_dead_relay_gives_a_clear_error() {
    let redis = RedisServer::start().expect("redis-server");
    let a = start_member(&redis, 400).await;

    // A relay that registered, claimed meeting 123456 and died without a trace but its entry:
    // nothing listens on 127.0.0.1:1.
    let dead = "127.0.0.1:1";
    let record = serde_json::json!({
        "id": dead, "address": dead, "fingerprint": "ab".repeat(32),
        "meetings": 1, "participants": 1, "capacity": 400, "accepting": true,
    });
    let client = redis::Client::open(redis.url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("parlor:relay:{dead}"))
        .arg(record.to_string())
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("SET").arg("parlor:meeting:123456").arg(dead).query_async(&mut c).await.unwrap();

    let bot = Bot::connect(&a.tcp_addr().to_string(), common::quiet()).await;
    bot.session.join("123456", "Guest").await.unwrap();
    let message = bot
        .wait("an error", LONG, |e| match e {
            SessionEvent::Error { message, .. } => Some(message.clone()),
            _ => None,
        })
        .await;
    assert!(message.contains("127.0.0.1:1") && message.contains("cannot be reached"), "{message}");

    // The session is where it was: it can still make a meeting on A.
    let (code, _) = create(&bot, "Guest").await;
    assert!(a.live_meeting_codes().contains(&code));
}
