//! Screen sharing end to end through a real relay: a host shares the synthetic slides (text
//! typed into, a new slide every 6 s), receivers compose its updates, and every picture they
//! show is compared with the slide the host captured at that instant (PSNR). A late joiner
//! asks for the tiles it never had and gets a whole picture; a receiver losing 10 % of its
//! datagrams asks for what it lost and is repaired well before the refresh band would come
//! round, and once the loss stops its picture is the slide again; stopping the share takes
//! the screen away everywhere.

mod common;

use std::time::Duration;

use client_core::media::ScreenChoice;
use client_core::{FrameSource, SessionEvent};
use common::*;

/// The goal: a received picture equals the captured one within the JPEG error.
const MIN_PSNR_DB: f64 = 35.0;
/// The same at the screen ladder's lowest rung (720p, quality 75), which 10 % loss reaches
/// (37.7 dB in BENCHMARKS.md): a picture still showing tiles of the previous slide is far
/// below.
const SETTLED_PSNR_DB: f64 = 34.0;

async fn presenting(bot: &Bot, from: usize, id: u32, on: bool) {
    bot.wait_from(from, "presenting", LONG, |e| match e {
        SessionEvent::ParticipantUpdated { participant } if participant.id == id && participant.presenting == on => {
            Some(())
        }
        _ => None,
    })
    .await;
}

/// Screen pictures `bot` was shown of `sharer`'s screen so far.
fn screens(bot: &Bot, sharer: u32) -> Vec<(SeenFrame, f64)> {
    bot.log.lock().unwrap().screens.get(&sharer).cloned().unwrap_or_default()
}

async fn wait_for_pictures(bot: &Bot, sharer: u32, n: usize, timeout: Duration) {
    bot.wait_until(&format!("{n} pictures of the shared screen"), timeout, |log| {
        log.screens.get(&sharer).is_some_and(|s| s.len() >= n)
    })
    .await;
}

#[tokio::test]
async fn a_shared_screen_reaches_every_receiver_whole_and_a_late_joiner_too() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let host = Bot::connect(&addr, quiet()).await;
    let early = Bot::connect(&addr, quiet()).await;
    let (code, host_id) = create(&host, "Host").await;
    admit(&host, &early, &code, "Early").await;

    let mark = early.mark();
    host.session.start_screen_share(ScreenChoice::Synthetic).await.unwrap();
    presenting(&early, mark, host_id, true).await;
    assert!(host.session.presenting());
    // A few seconds of typing: several updates.
    wait_for_pictures(&early, host_id, 15, LONG).await;

    // A late joiner has none of the tiles: it asks, and gets a whole picture.
    let late = Bot::connect(&addr, quiet()).await;
    admit(&host, &late, &code, "Late").await;
    wait_for_pictures(&late, host_id, 5, LONG).await;
    let late_stats = late.next_stats().await;
    let screen = late_stats.streams.iter().find_map(|s| s.screen.clone()).expect("screen stats");
    assert_eq!((screen.width, screen.height), (1920, 1080));
    assert!(screen.refreshes_requested >= 1, "the late joiner asked for what it missed");

    for (who, bot) in [("early", &early), ("late", &late)] {
        let pictures = screens(bot, host_id);
        let worst = pictures.iter().map(|(_, db)| *db).fold(f64::INFINITY, f64::min);
        assert!(worst >= MIN_PSNR_DB, "{who}: a picture at {worst:.1} dB of {} shown", pictures.len());
        assert!(pictures.iter().all(|(f, _)| (f.width, f.height) == (1920, 1080)));
    }

    // The sharer's own stats show what it sends; the receivers' that nothing is stale.
    let sent = host.next_stats().await.screen_out;
    assert!(sent.enabled && sent.updates_sent > 0 && sent.slices_sent >= sent.updates_sent);
    assert_eq!((sent.width, sent.height), (1920, 1080));

    // Stopping: everyone sees it, and the screen goes from the receivers' feeds.
    let mark = early.mark();
    host.session.stop_screen_share().await.unwrap();
    presenting(&early, mark, host_id, false).await;
    let feed = early.session.video_feed();
    eventually("the screen slot is gone", || feed.latest(FrameSource::Screen(host_id)).is_none()).await;
    let stopped_at = screens(&early, host_id).len();
    let after = early.nth_stats(early.mark(), 2).await;
    assert_eq!(screens(&early, host_id).len(), stopped_at, "no picture after the stop");
    assert!(!host.next_stats().await.screen_out.enabled);
    drop(after);

    for bot in [host, early, late] {
        bot.close().await;
    }
}

#[tokio::test]
async fn a_receiver_losing_ten_percent_is_repaired_by_refresh_requests() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let host = Bot::connect(&addr, quiet()).await;
    let (code, host_id) = create(&host, "Host").await;
    let lossy_path = Path::start_lossy(&relay, 0.10).await;
    let lossy = Bot::connect(&lossy_path.addr, quiet()).await;
    admit(&host, &lossy, &code, "Lossy").await;

    host.session.start_screen_share(ScreenChoice::Synthetic).await.unwrap();
    wait_for_pictures(&lossy, host_id, 10, LONG).await;
    // Eight seconds under loss: at least one new slide and a lot of typing.
    let from = lossy.mark();
    // Packets received and lost over the eight seconds (the stats give each second's loss
    // fraction: a quiet second may lose none, so they are weighed by its packets).
    let (mut received, mut lost) = (0.0, 0.0);
    let mut before = None;
    for i in 1..=9 {
        let stats = lossy.nth_stats(from, i).await;
        let Some(sc) = stats.streams.iter().find_map(|s| s.screen.as_ref()) else { continue };
        // The first second is the count to start from.
        let Some(previous) = before.replace(sc.packets_received) else { continue };
        let now_received = sc.packets_received.saturating_sub(previous);
        received += now_received as f64;
        lost += now_received as f64 * sc.loss / (1.0 - sc.loss).max(0.01);
    }
    let stats = lossy.nth_stats(from, 9).await;
    let screen = stats.streams.iter().find_map(|s| s.screen.clone()).expect("screen stats");
    let loss = lost / (received + lost).max(1.0);
    eprintln!(
        "lost {:.1}% of the screen's packets; {} refresh requests; longest stale tile {:.0} ms",
        loss * 100.0,
        screen.refreshes_requested,
        screen.longest_stale_ms
    );
    assert!(loss > 0.04, "the path lost {lost:.0} of {:.0} packets", received + lost);
    assert!(screen.refreshes_requested >= 2, "lost tiles were asked for ({})", screen.refreshes_requested);
    // Repaired by asking, not by the refresh band (which takes 30 s to come round). How long
    // exactly is a figure, not a check (BENCHMARKS.md: 0.7-2.6 s in runs of this test, the
    // goal 3 s); a tile waiting for the band, or for retries that never come, fails this.
    assert!(
        screen.longest_stale_ms < 8_000.0,
        "a tile stayed stale for {:.0} ms (now {} stale for {:.0} ms)",
        screen.longest_stale_ms,
        screen.stale_tiles,
        screen.stale_ms
    );
    // Pictures kept coming; and once the loss stops, the picture is the slide again within
    // the JPEG error of the rung the ladder is on (720p at quality 75 at the lowest).
    assert!(screens(&lossy, host_id).len() >= 10, "{} pictures", screens(&lossy, host_id).len());
    lossy_path.set_downlink_loss(0.0);
    let clean = lossy.mark();
    lossy.nth_stats(clean, 3).await;
    let (last, db) = screens(&lossy, host_id).last().copied().expect("pictures");
    assert!(db >= SETTLED_PSNR_DB, "the picture after the loss stopped: {db:.1} dB at {}x{}", last.width, last.height);

    host.close().await;
    lossy.close().await;
}
