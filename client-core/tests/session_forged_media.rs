//! The attacks protocol version 4 fell to, against two real sessions: someone who knows the
//! participants' ids (they are small numbers, and the path shows them) sends receiver reports
//! claiming 90 % loss on the host's video, frames in the host's name, and keepalives in the
//! guest's name, sealed with a key of its own. In version 4 the reports pushed the host from
//! 480p to 144p within seconds, a frame every 14 s froze the guest's view, and a keepalive sent
//! the meeting's media to the attacker. Now the relay drops every one of them as forged: the
//! host stays at 480p, the guest keeps getting the host's frames, the attacker gets nothing.

mod common;

use std::time::Duration;

use client_core::{AudioChoice, SessionOptions};
use common::*;
use protocol::hop::{HopSecret, HopSender, HOP_SECRET_LEN};
use protocol::media::{MediaKind, ReceiverReport, VideoHeader};
use protocol::quality::LADDER;
use protocol::MediaPacket;
use relay_server::DropReason;
use tokio::net::UdpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_reports_frames_and_keepalives_change_nothing() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let host = Bot::connect(&addr, SessionOptions { audio: AudioChoice::None, ..Default::default() }).await;
    let guest = Bot::connect(&addr, quiet()).await;
    let (code, host_id) = create(&host, "Host").await;
    let guest_id = admit(&host, &guest, &code, "Guest").await;

    let top = &LADDER[LADDER.len() - 1];
    let at_top = |log: &Log| {
        log.frames.get(&host_id).is_some_and(|f| {
            f.len() >= 10
                && f.iter().rev().take(5).all(|f| (f.width, f.height) == (u32::from(top.width), u32::from(top.height)))
        })
    };
    guest.wait_until("480p frames from the host", LONG, at_top).await;
    let before = host.nth_stats(host.mark(), 1).await;
    assert_eq!(before.quality.level, LADDER.len() - 1);
    let frames_before = guest.log.lock().unwrap().frames.get(&host_id).map_or(0, Vec::len);
    let drops_before = relay.stats().drops(DropReason::Forged);

    // The attacker: its own socket, its own key, the participants' ids.
    let attacker = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let forger = HopSender::new(HopSecret::new([0xA7; HOP_SECRET_LEN]).to_relay());
    let report = ReceiverReport {
        source_id: host_id,
        media: MediaKind::Video,
        loss_permille: 900,
        highest_seq: 0,
        cumulative_lost: 0,
        jitter_us: 0,
        loss_runs: [0; 4],
    };
    let header = VideoHeader {
        frame_id: u32::MAX / 2,
        capture_ts_us: 1,
        seq: 1,
        width: 16,
        height: 16,
        frag_index: 0,
        frag_count: 1,
    };
    const ROUNDS: u64 = 30;
    for round in 0..ROUNDS {
        let forged = [
            MediaPacket::ReceiverReport { sender_id: guest_id, report },
            MediaPacket::VideoFragment {
                sender_id: host_id,
                header: VideoHeader { frame_id: header.frame_id + round as u32, ..header },
                payload: &[0xFF, 0xD8, 0xFF, 0xD9],
            },
            MediaPacket::Keepalive { sender_id: guest_id },
        ];
        for packet in &forged {
            attacker.send_to(&forger.to_vec(packet).unwrap(), relay.udp_addr()).await.unwrap();
        }
        // Spread over three of the host's adaptation intervals, as the measured attack was.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eventually("every forged datagram counted", || {
        relay.stats().drops(DropReason::Forged) - drops_before >= 3 * ROUNDS
    })
    .await;

    // Two more intervals for the host's controller: it saw no loss, so it stayed at the top.
    let after = host.nth_stats(host.mark(), 2).await;
    assert_eq!(after.quality.level, LADDER.len() - 1, "the forged reports never reached the host");
    assert_eq!(after.quality.level_changes, before.quality.level_changes);
    // The guest kept getting the host's 480p frames, and no forged one.
    guest
        .wait_until("more 480p frames from the host", LONG, |log| {
            log.frames.get(&host_id).is_some_and(|f| f.len() >= frames_before + 20) && at_top(log)
        })
        .await;
    let frames = guest.log.lock().unwrap().frames.get(&host_id).cloned().unwrap_or_default();
    assert!(frames.iter().all(|f| f.frame_id < u32::MAX / 2 && f.width == u32::from(top.width)));
    // Nothing was sent to the attacker's address.
    let mut buf = [0u8; 2048];
    let nothing = tokio::time::timeout(Duration::from_millis(300), attacker.recv(&mut buf)).await;
    assert!(nothing.is_err(), "the relay sent the attacker a datagram");
    let guest_stats = guest.next_stats().await;
    assert_eq!(guest_stats.unauthenticated_packets, 0, "the relay forwarded nothing forged");
    host.close().await;
    guest.close().await;
    relay.shutdown().await;
}
