//! A consumer that stops reading must not make the session hoard video. In a 4-party 480p
//! meeting one session's owner reads its events up to `Joined`, then neither its events nor
//! its video feed for as long as 200 frames per sender take to decode (10 s at 20 fps). The
//! process's resident memory may grow by less than 50 MB meanwhile. Queued frames would add
//! 1.6 MB each: 600 frames, about 1 GB.

mod common;

use std::time::Duration;

use client_core::{Session, SessionEvent, SessionOptions};
use common::*;

/// Frames each sender's stream must decode at the stalled session while nobody reads.
const STALLED_FRAMES: u64 = 200;
const MAX_GROWTH_MIB: f64 = 50.0;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kib / 1024.0
}

/// Frames decoded per sender at `session`, from its latest stats snapshot.
fn decoded(session: &Session, senders: &[u32]) -> Option<Vec<u64>> {
    let stats = session.stats()?;
    senders
        .iter()
        .map(|id| stats.streams.iter().find(|s| s.participant_id == *id).map(|s| s.video.frames_received))
        .collect()
}

async fn wait_decoded(
    session: &Session,
    senders: &[u32],
    at_least: impl Fn(usize) -> u64,
    timeout: Duration,
) -> Vec<u64> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(counts) = decoded(session, senders) {
            if counts.iter().enumerate().all(|(i, n)| *n >= at_least(i)) {
                return counts;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for decoded frames");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_consumer_costs_one_frame_per_sender() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let a = Bot::connect(&addr, SessionOptions::default()).await;
    let b = Bot::connect(&addr, SessionOptions::default()).await;
    let c = Bot::connect(&addr, SessionOptions::default()).await;
    let (code, a_id) = create(&a, "Ada").await;
    let b_id = admit(&a, &b, &code, "Bob").await;
    let c_id = admit(&a, &c, &code, "Cy").await;

    let (stalled, mut events) = Session::connect(&addr, SessionOptions::default()).await.unwrap();
    // Held, never read.
    let _feed = stalled.video_feed();
    let mark = a.mark();
    stalled.join(&code, "Stalled").await.unwrap();
    let request = a
        .wait_from(mark, "the stalled session's knock", LONG, |e| match e {
            SessionEvent::Knock { request_id, display_name, .. } if display_name == "Stalled" => Some(*request_id),
            _ => None,
        })
        .await;
    a.session.admit(request).await.unwrap();
    let joined = tokio::time::timeout(LONG, async {
        while let Some(ev) = events.recv().await {
            if matches!(ev, SessionEvent::Joined { .. }) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(joined, Ok(true), "the stalled session joins");

    let senders = [a_id, b_id, c_id];
    let start = wait_decoded(&stalled, &senders, |_| 5, LONG).await;
    let before = rss_mib();
    let end = wait_decoded(&stalled, &senders, |i| start[i] + STALLED_FRAMES, Duration::from_secs(120)).await;
    let after = rss_mib();
    eprintln!("decoded {start:?} -> {end:?}; RSS {before:.1} -> {after:.1} MiB");
    assert!(
        after - before < MAX_GROWTH_MIB,
        "RSS grew by {:.1} MiB while the consumer stalled ({before:.1} -> {after:.1} MiB)",
        after - before
    );
    let stats = stalled.stats().unwrap();
    assert!(stats.streams.iter().all(|s| s.video.last_width > 0), "the stalled session still decodes");

    drop(events);
    stalled.close().await;
    for bot in [a, b, c] {
        bot.close().await;
    }
    relay.shutdown().await;
}
