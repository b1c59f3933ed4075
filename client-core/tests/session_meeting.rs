//! Three sessions and a real relay on loopback for several seconds: video at the size of the
//! sender's quality level with an advancing burnt-in counter, audio through bounded jitter
//! buffers without underruns after warm-up, chat to everyone, stats in a JSON-lines file.

mod common;

use client_core::media::TestPattern;
use client_core::{SessionEvent, SessionOptions, StatsSnapshot};
use common::*;

fn media_options(stats: Option<std::path::PathBuf>) -> SessionOptions {
    SessionOptions { stats_path: stats, ..Default::default() }
}

// Four workers: the relay and three bots share this one runtime, and a busy relay task must
// not delay the bots' network tasks the way it never could in separate processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_bots_exchange_video_audio_and_chat() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let stats_path = dir.path().join("a.jsonl");

    let a = Bot::connect(&addr, media_options(Some(stats_path.clone()))).await;
    let b = Bot::connect(&addr, media_options(None)).await;
    let c = Bot::connect(&addr, media_options(None)).await;
    let (code, a_id) = create(&a, "Ada").await;
    let b_id = admit(&a, &b, &code, "Bob").await;
    let c_id = admit(&a, &c, &code, "Cy").await;
    let bots = [(&a, a_id), (&b, b_id), (&c, c_id)];

    // Warm-up: everyone receives video from the two others.
    for (bot, me) in bots {
        let others: Vec<u32> = bots.iter().map(|(_, id)| *id).filter(|id| *id != me).collect();
        bot.wait_until("video from both others", LONG, |log| {
            others.iter().all(|o| log.frames.get(o).is_some_and(|f| f.len() >= 5))
        })
        .await;
    }
    // Warm-up: the jitter buffers replace their 60 ms prior by measurements (≈ 3.5 s): wait
    // for each bot's fourth stats snapshot from now.
    let marks: Vec<usize> = bots.iter().map(|(bot, _)| bot.mark()).collect();
    let mut warm: Vec<StatsSnapshot> = Vec::new();
    for ((bot, _), mark) in bots.iter().zip(&marks) {
        warm.push(bot.nth_stats(*mark, 4).await);
    }

    let ada_msg_ids = [a.session.send_chat("hello from Ada").await.unwrap()];
    let cy_msg_ids = [c.session.send_chat("and Cy").await.unwrap(), c.session.send_chat("twice").await.unwrap()];
    // The meeting runs for at least five seconds in all: four more snapshots from each bot.
    let marks: Vec<usize> = bots.iter().map(|(bot, _)| bot.mark()).collect();
    for ((bot, _), mark) in bots.iter().zip(&marks) {
        bot.nth_stats(*mark, 4).await;
    }

    for (i, (bot, me)) in bots.iter().enumerate() {
        let stats = bot.session.stats().expect("stats");
        let others: Vec<u32> = bots.iter().map(|(_, id)| *id).filter(|id| id != me).collect();
        for other in &others {
            // Video at the size of the sender's current level.
            let sender_stats = bots.iter().find(|(_, id)| id == other).unwrap().0.session.stats().unwrap();
            let (w, h) = (u32::from(sender_stats.quality.width), u32::from(sender_stats.quality.height));
            let log = bot.log.lock().unwrap();
            let frames = &log.frames[other];
            let recent: Vec<_> = frames.iter().rev().take(10).collect();
            assert!(
                recent.iter().all(|f| (f.width, f.height) == (w, h)),
                "bot {me} got frames of {other} not at {w}x{h}: {recent:?}"
            );
            assert!(frames.len() >= 40, "bot {me} got only {} frames from {other}", frames.len());
            assert!(frames.windows(2).all(|p| p[1].frame_id > p[0].frame_id), "frames delivered in order, never stale");
            // The burnt-in counter of the test pattern survives encode → network → decode.
            let (pw, ph, rgba) = &log.last_rgba[other];
            let counter = TestPattern::read_counter(rgba, *pw, *ph, 4).expect("counter readable");
            assert!(counter > 20, "counter {counter} advanced with the frames");
            drop(log);

            let stream = stats.streams.iter().find(|s| s.participant_id == *other).expect("stream stats");
            let before = warm[i].streams.iter().find(|s| s.participant_id == *other).expect("stream stats");
            assert!(
                stream.video.fps > 5.0,
                "fps {} of {other} at {me}: {:?}; sender: {:?} loss in {} uplink {:?} receivers {:?}",
                stream.video.fps,
                stream.video,
                sender_stats.quality,
                sender_stats.quality_input_loss,
                sender_stats.uplink_video_loss,
                sender_stats.receivers_video_loss
            );
            assert!(stream.audio.packets_received > 200, "audio packets {}", stream.audio.packets_received);
            assert!(stream.audio.jitter_buffer_ms <= 200.0, "jitter buffer delay {} ms", stream.audio.jitter_buffer_ms);
            assert_eq!(
                stream.audio.underruns, before.audio.underruns,
                "no underrun after warm-up: bot {me} from {other}: before {:?} after {:?}",
                before.audio, stream.audio
            );
            assert!(stream.audio.played_frames > before.audio.played_frames + 100);
            assert!(stream.audio.latency_p50_ms.is_some() && stream.video.latency_p95_ms.is_some());
            assert!(stream.audio.speaking, "the tone counts as speech");
        }
        assert!(stats.rtt_ms.is_some(), "rtt measured");
        assert!(stats.video_out.frames_sent >= 60 && stats.audio_out.frames_sent >= 200);

        // Chat arrives at everyone, in the relay's order, carrying the ids `send_chat` returned
        // so a sender can match the echo of its own message.
        let chat: Vec<(String, Option<u64>)> = bot
            .events()
            .into_iter()
            .filter_map(|e| match e {
                SessionEvent::Chat { message } => Some((message.text, message.client_msg_id)),
                _ => None,
            })
            .collect();
        assert_eq!(chat.len(), 3, "bot {me} chat: {chat:?}");
        let id_of = |text: &str| chat.iter().find(|(t, _)| t == text).and_then(|(_, id)| *id);
        assert_eq!(id_of("hello from Ada"), Some(ada_msg_ids[0]));
        assert_eq!([id_of("and Cy"), id_of("twice")], [Some(cy_msg_ids[0]), Some(cy_msg_ids[1])]);
        assert_eq!(cy_msg_ids, [1, 2], "ids count from 1 per session");
    }
    // Others see our speaking flag through MEDIA_STATE.
    a.wait("Bob speaking", LONG, |e| match e {
        SessionEvent::ParticipantUpdated { participant } if participant.id == b_id && participant.speaking => Some(()),
        _ => None,
    })
    .await;
    b.wait("active speaker", LONG, |e| match e {
        SessionEvent::ActiveSpeaker { participant_id: Some(_) } => Some(()),
        _ => None,
    })
    .await;

    // Camera off stops sending.
    let mark = a.mark();
    a.session.set_camera(false).await.unwrap();
    let off = a.first_stats(mark, "a snapshot with the camera off", |s| !s.video_out.enabled).await;
    // Take the count from the next snapshot (the first may have read it just before the last
    // frame was counted), then two more must show no growth.
    let [settled, one, two] = a.stats_run_after(off.timestamp_ms).await;
    let sent = settled.video_out.frames_sent;
    assert_eq!((one.video_out.frames_sent, two.video_out.frames_sent), (sent, sent), "camera off sends nothing");
    assert!(!two.video_out.enabled);

    let lines = std::fs::read_to_string(&stats_path).unwrap();
    let parsed: Vec<StatsSnapshot> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(parsed.len() >= 5, "one stats line per second");

    for bot in [a, b, c] {
        bot.close().await;
    }
    relay.shutdown().await;
}
