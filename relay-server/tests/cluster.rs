//! Relays that act as one service through a shared Redis (a real `redis-server`, started per
//! test on its own Unix socket): joins through any relay reach the meeting by `REDIRECT`,
//! codes stay unique under concurrent creates on three relays, a full relay places new
//! meetings on the least loaded one, and a relay without Redis keeps its meetings, refuses
//! what it cannot check and registers again when Redis is back.

mod common;

use std::time::Duration;

use common::{join_request, public_key, sealed_key, Client, WAIT};
use protocol::control::ErrorCode;
use protocol::ControlMessage;
use relay_server::test_redis::RedisServer;
use relay_server::{RelayConfig, RelayHandle};

fn cluster_config(redis: &RedisServer) -> RelayConfig {
    RelayConfig { redis_url: Some(redis.url()), ..RelayConfig::for_tests() }
}

/// Starts a relay of the cluster and waits until it has registered.
async fn start_registered(config: RelayConfig) -> RelayHandle {
    let relay = common::start(config).await;
    common::eventually("the relay registers in the directory", || relay.directory_available()).await;
    relay
}

async fn redis_connection(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis.url()).expect("redis url");
    client.get_multiplexed_async_connection().await.expect("connect to redis")
}

/// The relay the directory says hosts `code`.
async fn owner_of(redis: &RedisServer, code: &str) -> Option<String> {
    let mut c = redis_connection(redis).await;
    redis::cmd("GET").arg(format!("parlor:meeting:{code}")).query_async(&mut c).await.expect("GET")
}

/// Waits until the directory says `code` is hosted by `relay` (`None`: by no relay).
async fn wait_for_owner(redis: &RedisServer, code: &str, relay: Option<&RelayHandle>) {
    let want = relay.map(|r| r.public_address().expect("a relay of the cluster").to_string());
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let owner = owner_of(redis, code).await;
        if owner == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "meeting {code}: owner {owner:?}, expected {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the directory's record of `relay` satisfies `done`.
async fn wait_for_record(redis: &RedisServer, relay: &RelayHandle, done: impl Fn(&serde_json::Value) -> bool) {
    let key = format!("parlor:relay:{}", relay.public_address().expect("a relay of the cluster"));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let mut c = redis_connection(redis).await;
        let json: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut c).await.expect("GET");
        let record = json.map(|j| serde_json::from_str::<serde_json::Value>(&j).expect("a JSON record"));
        if record.as_ref().is_some_and(&done) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{key}: {record:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends `request` and expects `REDIRECT` to `to`.
async fn expect_redirect(client: &mut Client, request: ControlMessage, to: &RelayHandle) -> Option<String> {
    client.send(request).await;
    match client.recv().await {
        ControlMessage::Redirect { relay, fingerprint, code } => {
            assert_eq!(Some(relay.as_str()), to.public_address());
            assert_eq!(fingerprint, to.certificate_fingerprint());
            code
        }
        other => panic!("expected REDIRECT, got {other:?}"),
    }
}

#[tokio::test]
async fn a_join_through_any_relay_is_redirected_to_the_meeting_s_relay() {
    let redis = RedisServer::start().expect("redis-server");
    let a = start_registered(cluster_config(&redis)).await;
    let b = start_registered(cluster_config(&redis)).await;
    let c = start_registered(cluster_config(&redis)).await;

    let mut host = Client::connect(&a).await;
    let code = host.create("Host").await.code;
    assert_eq!(owner_of(&redis, &code).await.as_deref(), a.public_address(), "claimed by the relay hosting it");

    // Knocking on C: redirected to A, with A's certificate.
    let mut joiner = Client::connect(&c).await;
    let redirected = expect_redirect(&mut joiner, join_request(&code, "Joiner"), &a).await;
    assert_eq!(redirected.as_deref(), Some(code.as_str()));
    assert_eq!(c.stats().redirects, 1);

    // Following it: the same meeting, through its waiting room.
    let mut joiner = Client::connect(&a).await;
    let request_id = joiner.knock(&code, "Joiner").await;
    assert_eq!(host.expect_knock("Joiner").await, request_id);
    host.send(ControlMessage::Admit { request_id, media_key: sealed_key() }).await;
    let welcome = joiner.expect_joined().await;
    assert_eq!(welcome.code, code);
    assert_eq!(welcome.roster.len(), 2);
    assert!(b.live_meeting_codes().is_empty() && c.live_meeting_codes().is_empty());

    // A code nobody hosts is unknown on every relay, and charged as a failed join.
    let unknown = if code == "000000" { "000001" } else { "000000" };
    let mut prober = Client::connect(&b).await;
    prober.send(join_request(unknown, "Prober")).await;
    prober.expect_error(ErrorCode::UnknownMeeting).await;

    // Once the meeting ends, its code is released.
    joiner.send(ControlMessage::Leave).await;
    host.send(ControlMessage::EndMeeting).await;
    wait_for_owner(&redis, &code, None).await;
    let mut late = Client::connect(&c).await;
    late.send(join_request(&code, "Late")).await;
    late.expect_error(ErrorCode::UnknownMeeting).await;
    assert_eq!(c.stats().redirects, 1);
}

#[tokio::test]
async fn codes_stay_unique_across_relays_under_concurrent_creates() {
    const CREATES: usize = 1000;
    const AT_ONCE_PER_RELAY: usize = 8;
    let redis = RedisServer::start().expect("redis-server");
    let config = || RelayConfig {
        // A host whose connection closes keeps its seat (and the meeting its code) this long.
        resume_grace: Duration::from_secs(300),
        max_meetings: CREATES,
        capacity: CREATES * 2,
        max_connections_per_address: 64,
        address_rates: relay_server::AddressRates {
            new_meetings: relay_server::Rate::new(CREATES as u32, Duration::from_secs(1)),
            ..RelayConfig::default().address_rates
        },
        ..cluster_config(&redis)
    };
    let relays = [start_registered(config()).await, start_registered(config()).await, start_registered(config()).await];
    let mut tasks = tokio::task::JoinSet::new();
    for (r, relay) in relays.iter().enumerate() {
        for lane in 0..AT_ONCE_PER_RELAY {
            let addr = relay.tcp_addr();
            let pin = relay.certificate_fingerprint();
            let task = r * AT_ONCE_PER_RELAY + lane;
            let count = (task..CREATES).step_by(relays.len() * AT_ONCE_PER_RELAY).count();
            tasks.spawn(async move {
                let mut codes = Vec::with_capacity(count);
                for _ in 0..count {
                    let mut client = Client::connect_to(addr, pin).await;
                    codes.push(client.create("Host").await.code);
                }
                codes
            });
        }
    }
    let mut codes = Vec::new();
    while let Some(batch) = tasks.join_next().await {
        codes.extend(batch.expect("create task"));
    }
    assert_eq!(codes.len(), CREATES);
    let distinct: std::collections::BTreeSet<&String> = codes.iter().collect();
    assert_eq!(distinct.len(), CREATES, "every meeting got a code of its own");
    let live: usize = relays.iter().map(|r| r.live_meeting_codes().len()).sum();
    assert_eq!(live, CREATES);
    let mut c = redis_connection(&redis).await;
    let claimed: Vec<String> = redis::cmd("KEYS").arg("parlor:meeting:*").query_async(&mut c).await.expect("KEYS");
    assert_eq!(claimed.len(), CREATES, "each code claimed once in the directory");
    for relay in &relays {
        for code in relay.live_meeting_codes().iter().take(20) {
            assert_eq!(owner_of(&redis, code).await.as_deref(), relay.public_address());
        }
    }
    let claims: u64 = relays.iter().map(|r| r.stats().directory_claims).sum();
    assert_eq!(claims, CREATES as u64);
}

#[tokio::test]
async fn a_full_relay_places_new_meetings_on_the_least_loaded_relay() {
    let redis = RedisServer::start().expect("redis-server");
    let b = start_registered(RelayConfig { capacity: 10, ..cluster_config(&redis) }).await;
    let c = start_registered(RelayConfig { capacity: 10, ..cluster_config(&redis) }).await;
    // C carries one participant already; B none.
    let mut on_c = Client::connect(&c).await;
    on_c.create("Busy").await;
    wait_for_record(&redis, &c, |record| record["participants"] == 1).await;
    // A starts after them, so its first heartbeat reads their load (C's now shows 1).
    let a = start_registered(RelayConfig { capacity: 1, ..cluster_config(&redis) }).await;

    let mut first = Client::connect(&a).await;
    let own = first.create("First").await;
    assert!(a.live_meeting_codes().contains(&own.code), "a relay with room keeps the meeting");

    // A is now at its capacity: the next meeting goes to B, the least loaded.
    let mut second = Client::connect(&a).await;
    let create = ControlMessage::CreateMeeting { display_name: "Second".into(), media_public_key: public_key() };
    assert_eq!(expect_redirect(&mut second, create, &b).await, None);
    assert_eq!(a.stats().redirects, 1);
    let mut second = Client::connect(&b).await;
    let placed = second.create("Second").await;
    assert_eq!(b.live_meeting_codes(), vec![placed.code.clone()]);
    wait_for_owner(&redis, &placed.code, Some(&b)).await;
}

#[tokio::test]
async fn without_redis_a_relay_keeps_its_meetings_and_registers_again_when_it_is_back() {
    let mut redis = RedisServer::start().expect("redis-server");
    redis.stop();

    // Redis away at start: the relays start, and refuse what needs the directory.
    let a = common::start(cluster_config(&redis)).await;
    let b = common::start(cluster_config(&redis)).await;
    assert!(!a.directory_available());
    let mut host = Client::connect(&a).await;
    host.send(ControlMessage::CreateMeeting { display_name: "Host".into(), media_public_key: public_key() }).await;
    let message = host.expect_error(ErrorCode::DirectoryUnavailable).await;
    assert!(message.contains("try again"), "{message}");
    assert!(!message.contains(&redis.url()), "the error does not name the directory's URL");

    // Redis comes: both register, and meetings can be made.
    redis.restart().expect("redis-server again");
    common::eventually("both relays register", || a.directory_available() && b.directory_available()).await;
    let code = host.create("Host").await.code;
    let mut member = Client::connect(&a).await;
    let request_id = member.knock(&code, "Member").await;
    assert_eq!(host.expect_knock("Member").await, request_id);
    host.send(ControlMessage::Admit { request_id, media_key: sealed_key() }).await;
    member.expect_joined().await;
    host.expect_participant_joined().await;

    // Redis lost mid-meeting: the meeting goes on; a join through B cannot be checked.
    redis.stop();
    common::eventually("both relays notice the loss", || !a.directory_available() && !b.directory_available()).await;
    member.chat("still here").await;
    match host.recv_until(|m| matches!(m, ControlMessage::Chat { .. })).await {
        ControlMessage::Chat { message } => assert_eq!(message.text, "still here"),
        _ => unreachable!(),
    }
    let mut joiner = Client::connect(&b).await;
    joiner.send(join_request(&code, "Joiner")).await;
    joiner.expect_error(ErrorCode::DirectoryUnavailable).await;
    assert!(a.stats().directory_failures > 0);

    // Redis back, empty: A registers again and claims its meeting's code again.
    redis.restart().expect("redis-server again");
    common::eventually("both relays register again", || a.directory_available() && b.directory_available()).await;
    wait_for_owner(&redis, &code, Some(&a)).await;
    expect_redirect(&mut joiner, join_request(&code, "Joiner"), &a).await;
}

/// The meeting state the directory keeps for `code`.
async fn state_json(redis: &RedisServer, code: &str) -> Option<String> {
    let mut c = redis_connection(redis).await;
    redis::cmd("GET").arg(format!("parlor:state:{code}")).query_async(&mut c).await.expect("GET")
}

fn resume(welcome: &protocol::control::MeetingWelcome, secret: protocol::control::Secret) -> ControlMessage {
    ControlMessage::Resume {
        code: welcome.code.clone(),
        participant_id: welcome.participant_id,
        resume_secret: secret,
        last_chat_id: 0,
    }
}

#[tokio::test]
async fn a_resume_for_a_meeting_whose_relay_is_gone_moves_it_to_one_relay() {
    let redis = RedisServer::start().expect("redis-server");
    let a = start_registered(cluster_config(&redis)).await;
    let b = start_registered(cluster_config(&redis)).await;
    let c = start_registered(cluster_config(&redis)).await;
    let members = common::meeting(&a, &["Host", "Member"]).await;
    let (host, member) = (&members[0].welcome, &members[1].welcome);
    let code = host.code.clone();
    let (host, member) = (host.clone(), member.clone());
    let (host, member) = (&host, &member);
    let mut clients = members.into_iter().map(|m| m.client);
    let (mut host_conn, mut member_conn) = (clients.next().unwrap(), clients.next().unwrap());
    host_conn.chat("before the failover").await;
    member_conn.recv_until(|m| matches!(m, ControlMessage::Chat { .. })).await;
    // The directory holds the meeting's state once a flush followed the chat.
    let deadline = tokio::time::Instant::now() + WAIT;
    let state = loop {
        if let Some(state) = state_json(&redis, &code).await.filter(|s| s.contains("before the failover")) {
            break state;
        }
        assert!(tokio::time::Instant::now() < deadline, "no state of {code} in the directory");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };

    // While A lives, a RESUME through B is sent to A.
    let mut probe = Client::connect(&b).await;
    expect_redirect(&mut probe, resume(host, host.resume_secret.clone()), &a).await;

    // A dies: what it leaves in the directory is its claim and the meeting's state (its
    // registration is gone). A graceful stop would end the meeting, so the state is put back.
    let a_address = a.public_address().unwrap().to_string();
    drop((host_conn, member_conn));
    a.shutdown().await;
    let mut conn = redis_connection(&redis).await;
    let _: () =
        redis::cmd("SET").arg(format!("parlor:meeting:{code}")).arg(&a_address).query_async(&mut conn).await.unwrap();
    let _: () = redis::cmd("SET").arg(format!("parlor:state:{code}")).arg(&state).query_async(&mut conn).await.unwrap();

    // A wrong secret moves nothing.
    let mut intruder = Client::connect(&b).await;
    intruder.send(resume(host, protocol::control::Secret::new("00".repeat(32)))).await;
    intruder.expect_error(ErrorCode::ResumeRefused).await;
    assert!(b.live_meeting_codes().is_empty());

    // Host and member resume through B and C at once: one relay takes the meeting over, the
    // other sends its resumer there.
    let mut via_b = Client::connect(&b).await;
    let mut via_c = Client::connect(&c).await;
    via_b.send(resume(host, host.resume_secret.clone())).await;
    via_c.send(resume(member, member.resume_secret.clone())).await;
    let (answer_b, answer_c) = tokio::join!(via_b.recv(), via_c.recv());
    let takeovers = b.stats().directory_takeovers + c.stats().directory_takeovers;
    assert_eq!(takeovers, 1, "one relay took the meeting over");
    let (winner, winner_name) = if b.stats().directory_takeovers == 1 { (&b, "B") } else { (&c, "C") };
    let mut resumed = Vec::new();
    for (answer, who) in [(answer_b, host), (answer_c, member)] {
        match answer {
            ControlMessage::Resumed(welcome) => resumed.push(welcome),
            ControlMessage::Redirect { relay, fingerprint, code: Some(redirected) } => {
                assert_eq!(Some(relay.as_str()), winner.public_address(), "redirected to {winner_name}");
                assert_eq!(redirected, code);
                let mut follow = Client::connect_to(winner.tcp_addr(), fingerprint).await;
                follow.send(resume(who, who.resume_secret.clone())).await;
                match follow.recv().await {
                    ControlMessage::Resumed(welcome) => resumed.push(welcome),
                    other => panic!("expected RESUMED at {winner_name}, got {other:?}"),
                }
            }
            // The loser saw the claim change before the winner's registration was read.
            ControlMessage::Error { code: ErrorCode::DirectoryUnavailable, .. } => {
                let mut again = Client::connect(winner).await;
                again.send(resume(who, who.resume_secret.clone())).await;
                match again.recv().await {
                    ControlMessage::Resumed(welcome) => resumed.push(welcome),
                    other => panic!("expected RESUMED at {winner_name}, got {other:?}"),
                }
            }
            other => panic!("expected RESUMED or REDIRECT, got {other:?}"),
        }
    }
    assert_eq!(winner.live_meeting_codes(), vec![code.clone()]);
    for welcome in &resumed {
        assert_eq!(welcome.code, code);
        assert_eq!(welcome.host_id, host.participant_id, "the host is still host");
        assert!(welcome.chat_history.iter().any(|m| m.text == "before the failover"), "the chat history came along");
    }
    let ids: std::collections::BTreeSet<_> = resumed.iter().map(|w| w.participant_id).collect();
    assert_eq!(ids, [host.participant_id, member.participant_id].into_iter().collect());
    wait_for_owner(&redis, &code, Some(winner)).await;
}

#[tokio::test]
async fn a_relay_that_lost_its_meeting_s_code_sends_everyone_to_the_relay_that_has_it() {
    let redis = RedisServer::start().expect("redis-server");
    let a = start_registered(cluster_config(&redis)).await;
    let b = start_registered(cluster_config(&redis)).await;
    let members = common::meeting(&a, &["Host", "Member"]).await;
    let code = members[0].welcome.code.clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !state_json(&redis, &code).await.is_some_and(|s| s.contains("Member")) {
        assert!(tokio::time::Instant::now() < deadline, "no state of {code} in the directory");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // As if B had taken the meeting over while A was cut off from the directory.
    let mut conn = redis_connection(&redis).await;
    let b_address = b.public_address().unwrap().to_string();
    let _: () =
        redis::cmd("SET").arg(format!("parlor:meeting:{code}")).arg(&b_address).query_async(&mut conn).await.unwrap();

    // A's next heartbeat sees it and closes the meeting's connections, without a leave.
    let mut welcomes = Vec::new();
    for member in members {
        let mut client = member.client;
        client.expect_closed().await;
        welcomes.push(member.welcome);
    }
    assert!(a.live_meeting_codes().is_empty());
    assert!(a.stats().directory_conflicts >= 1);

    // Resuming at A: sent to B, which restores the meeting from its state; both are back.
    let (host, member) = (&welcomes[0], &welcomes[1]);
    let mut at_a = Client::connect(&a).await;
    expect_redirect(&mut at_a, resume(host, host.resume_secret.clone()), &b).await;
    for who in [host, member] {
        let mut at_b = Client::connect(&b).await;
        at_b.send(resume(who, who.resume_secret.clone())).await;
        match at_b.recv().await {
            ControlMessage::Resumed(welcome) => assert_eq!(welcome.participant_id, who.participant_id),
            other => panic!("expected RESUMED, got {other:?}"),
        }
    }
    assert_eq!(b.live_meeting_codes(), vec![code.clone()]);
    assert_eq!(b.stats().directory_takeovers, 1);
}
