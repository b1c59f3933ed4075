//! Adaptation end to end: 15 % loss fed to the sender's quality controller makes its
//! encoder step down the ladder, and the receiver gets smaller frames. How fast it steps is a
//! real-time figure, measured by the lab's loss-step scenario (`step_down_s` in BENCHMARKS.md,
//! about 1 s) rather than asserted here; this test prints what it saw.

mod common;

use std::time::Instant;

use client_core::{AudioChoice, SessionEvent, SessionOptions};
use common::*;
use protocol::quality::LADDER;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifteen_percent_loss_makes_frames_smaller() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let sender = Bot::connect(&addr, SessionOptions { audio: AudioChoice::None, ..Default::default() }).await;
    let receiver = Bot::connect(&addr, quiet()).await;
    let (code, sender_id) = create(&sender, "Sender").await;
    admit(&sender, &receiver, &code, "Receiver").await;

    let top = &LADDER[LADDER.len() - 1];
    receiver
        .wait_until("480p frames", LONG, |log| {
            log.frames.get(&sender_id).is_some_and(|f| {
                f.len() >= 10
                    && f.iter()
                        .rev()
                        .take(5)
                        .all(|f| (f.width, f.height) == (u32::from(top.width), u32::from(top.height)))
            })
        })
        .await;
    // Loopback loses nothing: the level stays at the top without the override.
    let before = sender.nth_stats(sender.mark(), 2).await;
    assert_eq!(before.quality.level, LADDER.len() - 1);
    let big_frame = before.video_out.last_frame_bytes;
    assert!(big_frame > 0);

    let mark = sender.mark();
    let start = Instant::now();
    sender.session.set_loss_override(Some(0.15));
    let quality = sender
        .wait_from(mark, "QualityChanged", LONG, |e| match e {
            SessionEvent::QualityChanged { quality } => Some(quality.clone()),
            _ => None,
        })
        .await;
    let stepped_after = start.elapsed();
    assert!(quality.level < before.quality.level && quality.width < top.width);
    // The next frames are encoded at the new, smaller size.
    sender
        .wait_until("smaller encoded frames", LONG, |_| {
            let s = sender.session.stats().unwrap();
            s.video_out.last_frame_width < top.width && s.video_out.last_frame_bytes < big_frame
        })
        .await;
    let mark_frames = Instant::now();
    receiver
        .wait_until("smaller frames at the receiver", LONG, |log| {
            log.frames[&sender_id].iter().any(|f| f.at > mark_frames && f.width < u32::from(top.width))
        })
        .await;
    let after = sender.session.stats().unwrap();
    assert!((after.quality_input_loss - 0.15).abs() < 1e-9);
    assert!(after.quality.level_changes >= 1);
    println!(
        "level stepped down {stepped_after:?} after the loss started; frame {big_frame} → {} bytes",
        after.video_out.last_frame_bytes
    );

    sender.close().await;
    receiver.close().await;
    relay.shutdown().await;
}
