//! The UDP media path over real sockets: forwarding within a meeting only, no echo, drops
//! counted by reason, RTT echo, receiver reports both ways, per-receiver thinning, isolation
//! of parallel meetings.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::*;
use protocol::hop::{HopKey, HopSecret, HopSender, HOP_SECRET_LEN, HOP_TRAILER_LEN};
use protocol::media::{MediaKind, ReceiverReport, RttEcho, VideoHeader, MEDIA_VERSION};
use protocol::{ControlMessage, MediaPacket};
use relay_server::{DropReason, RelayConfig};

const QUIET: Duration = Duration::from_millis(300);

fn video_header(d: &[u8]) -> Option<(u32, VideoHeader)> {
    match MediaPacket::decode(d) {
        Ok(MediaPacket::VideoFragment { sender_id, header, .. }) => Some((sender_id, header)),
        _ => None,
    }
}

#[tokio::test]
async fn media_reaches_the_others_in_the_meeting_and_is_not_echoed() {
    let relay = start_default().await;
    let a = meeting(&relay, &["A1", "A2", "A3"]).await;
    let b = meeting(&relay, &["B1", "B2"]).await;
    let mut am = Vec::new();
    for m in &a {
        am.push(Media::register(&relay, m).await);
    }
    let mut bm = Vec::new();
    for m in &b {
        bm.push(Media::register(&relay, m).await);
    }
    let sent_video = am[0].send_frame(1, 3).await;
    let sent_audio = am[0].send_audio().await;
    let mut expected = sent_video.clone();
    expected.push(sent_audio);
    for receiver in &am[1..] {
        assert_eq!(receiver.drain_media(QUIET).await, expected, "byte-identical, in order");
    }
    assert!(am[0].drain_media(QUIET).await.is_empty(), "never echoed to the sender");
    for receiver in &bm {
        assert!(receiver.drain_media(QUIET).await.is_empty(), "never across meetings");
    }
    let stats = relay.stats();
    assert_eq!(stats.total_drops(), 0, "{stats:?}");
    relay.shutdown().await;
}

#[tokio::test]
async fn bad_packets_are_dropped_and_counted_by_reason() {
    let relay = start_default().await;
    let m = meeting(&relay, &["A", "B"]).await;
    let mut a = Media::register(&relay, &m[0]).await;
    let mut b = Media::register(&relay, &m[1]).await;
    let before = relay.stats();

    // Not media at all.
    a.send(b"hello").await;
    a.send(&[b"XX\x03\x01\0\0\0\x01".as_slice(), &[0; 24]].concat()).await;
    a.send(&[b"PR".as_slice(), &[MEDIA_VERSION, 9], b"\0\0\0\x01", &[0; 24]].concat()).await;
    // A video fragment whose length field disagrees with the packet, correctly sealed.
    let header =
        VideoHeader { frame_id: 1, capture_ts_us: 0, seq: 0, width: 1, height: 1, frag_index: 0, frag_count: 1 };
    let mut frame = MediaPacket::VideoFragment { sender_id: a.id, header, payload: &[1, 2, 3] }.to_vec().unwrap();
    frame.pop();
    frame.resize(frame.len() + HOP_TRAILER_LEN, 0);
    HopKey::seal(&m[0].client.hop.to_relay(), &mut frame, 1 << 40).unwrap();
    a.send(&frame).await;
    // A datagram over the protocol's 1,200-byte limit (the relay reads one byte past it).
    let mut oversized = a.seal(&MediaPacket::VideoFragment { sender_id: a.id, header, payload: &[1; 100] });
    oversized.resize(1500, 0);
    a.send(&oversized).await;
    // An intruder who read A's id off the wire: a keepalive and a frame in A's name, sealed
    // with a key of its own, must neither move A's address nor reach B.
    let intruder = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let intruder_hop = HopSender::new(HopSecret::new([0x66; HOP_SECRET_LEN]).to_relay());
    let forged_keepalive = intruder_hop.to_vec(&MediaPacket::Keepalive { sender_id: a.id }).unwrap();
    intruder.send_to(&forged_keepalive, relay.udp_addr()).await.unwrap();
    let header =
        VideoHeader { frame_id: 2, capture_ts_us: 0, seq: 0, width: 1, height: 1, frag_index: 0, frag_count: 1 };
    let forged = intruder_hop.to_vec(&MediaPacket::VideoFragment { sender_id: a.id, header, payload: &[9; 10] });
    intruder.send_to(&forged.unwrap(), relay.udp_addr()).await.unwrap();
    // A's own, authentic datagram sent again (captured on the path): once from the intruder's
    // address, once from A's.
    let captured = a.seal(&MediaPacket::VideoFragment { sender_id: a.id, header, payload: &[3; 10] });
    a.send(&captured).await;
    assert_eq!(b.drain_media(QUIET).await.len(), 1, "the original goes through");
    intruder.send_to(&captured, relay.udp_addr()).await.unwrap();
    a.send(&captured).await;
    // An unknown sender id.
    let unknown = a.seal(&MediaPacket::VideoFragment { sender_id: 999_999, header, payload: &[9; 10] });
    a.send(&unknown).await;

    assert!(b.drain_media(QUIET).await.is_empty(), "nothing bad is forwarded");
    // Counters are published per receive batch, so wait for all ten drops to be counted.
    eventually("ten drops counted", || relay.stats().total_drops() - before.total_drops() >= 10).await;
    let stats = relay.stats();
    let delta = |r: DropReason| stats.drops(r) - before.drops(r);
    assert_eq!(delta(DropReason::TooShort), 1);
    assert_eq!(delta(DropReason::TooLong), 1);
    assert_eq!(delta(DropReason::BadMagic), 1);
    assert_eq!(delta(DropReason::UnknownKind), 1);
    assert_eq!(delta(DropReason::LengthMismatch), 1);
    assert_eq!(delta(DropReason::Forged), 2);
    assert_eq!(delta(DropReason::WrongAddress), 1, "the replay from elsewhere");
    assert_eq!(delta(DropReason::Replayed), 1, "the replay from A's address");
    assert_eq!(delta(DropReason::UnknownSender), 1);
    assert_eq!(stats.malformed_drops() - before.malformed_drops(), 5);

    // A's real address still works.
    let sent = a.send_frame(3, 1).await;
    assert_eq!(b.drain_media(QUIET).await, sent);

    // A's keepalive, captured and sent again from the intruder's address (loopback delivers
    // the original first): A's media address stays where it is, and B's media keeps going to
    // A and nowhere else.
    let keepalive = a.seal(&MediaPacket::Keepalive { sender_id: a.id });
    a.send(&keepalive).await;
    intruder.send_to(&keepalive, relay.udp_addr()).await.unwrap();
    let replays = |stats: &relay_server::StatsSnapshot| stats.drops(DropReason::Replayed);
    eventually("the replayed keepalive counted", || replays(&relay.stats()) - replays(&before) >= 2).await;
    let sent = b.send_frame(4, 1).await;
    assert_eq!(a.drain_media(QUIET).await, sent, "B's media still reaches A");
    assert!(drain_socket(&intruder, QUIET).await.is_empty(), "and nothing reaches the intruder");
    relay.shutdown().await;
}

#[tokio::test]
async fn rtt_echo_is_answered_with_the_same_fields() {
    let relay = start_default().await;
    let m = meeting(&relay, &["A"]).await;
    let a = Media::register(&relay, &m[0]).await;
    a.drain(Duration::from_millis(50)).await;
    let echo = RttEcho { echo_id: 0xDEAD_BEEF, sent_ts_us: 1_234_567_890_123 };
    a.send_packet(&MediaPacket::RttRequest { sender_id: a.id, echo }).await;
    let reply = a.recv_until(tokio::time::Instant::now() + WAIT).await.expect("reply");
    assert_eq!(MediaPacket::decode(&reply).unwrap(), MediaPacket::RttReply { sender_id: 0, echo });
    relay.shutdown().await;
}

#[tokio::test]
async fn the_relay_reports_each_senders_loss_and_forwards_receivers_reports() {
    let relay = start(RelayConfig { report_interval: Duration::from_millis(200), ..RelayConfig::for_tests() }).await;
    let m = meeting(&relay, &["A", "B"]).await;
    let a = Media::register(&relay, &m[0]).await;
    let b = Media::register(&relay, &m[1]).await;
    // Video seq 0..10 then 15..20: five packets never reached the relay.
    for seq in (0..10).chain(15..20) {
        let header = VideoHeader {
            frame_id: seq,
            capture_ts_us: u64::from(seq) * 1000,
            seq,
            width: 1,
            height: 1,
            frag_index: 0,
            frag_count: 1,
        };
        a.send_packet(&MediaPacket::VideoFragment { sender_id: a.id, header, payload: &[1; 8] }).await;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut report = None;
    while let Some(d) = a.recv_until(deadline).await {
        if let Ok(MediaPacket::ReceiverReport { sender_id: 0, report: r }) = MediaPacket::decode(&d) {
            if r.highest_seq == 19 {
                report = Some(r);
                break;
            }
        }
    }
    let report = report.expect("a receiver report from the relay about A's video");
    assert_eq!(report.source_id, a.id);
    assert_eq!(report.media, MediaKind::Video);
    assert_eq!(report.cumulative_lost, 5);
    assert!(relay.stats().reports_sent >= 1);
    b.drain(QUIET).await;

    // B's own report about A goes to A, untouched (but sealed for A).
    let rr = ReceiverReport {
        source_id: a.id,
        media: MediaKind::Video,
        loss_permille: 20,
        highest_seq: 7,
        cumulative_lost: 1,
        jitter_us: 300,
        loss_runs: [0; 4],
    };
    let datagram = b.send_packet(&MediaPacket::ReceiverReport { sender_id: b.id, report: rr }).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut forwarded = false;
    while let Some(d) = a.recv_until(deadline).await {
        if d == datagram {
            forwarded = true;
            break;
        }
    }
    assert!(forwarded, "B's report reaches A");
    assert!(relay.stats().reports_forwarded >= 1);
    relay.shutdown().await;
}

/// Sends `frames` frames of `frags` fragments, pacing so loopback loses nothing.
async fn send_frames(sender: &mut Media, first: u32, frames: u32, frags: usize) {
    for f in first..first + frames {
        sender.send_frame(f, frags).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Frames received, with the fragment indexes of each; checks they come from `source`.
fn frames_of(datagrams: &[Vec<u8>], source: u32) -> (BTreeMap<u32, BTreeSet<u16>>, Vec<u32>) {
    let mut frames: BTreeMap<u32, BTreeSet<u16>> = BTreeMap::new();
    let mut seqs = Vec::new();
    for d in datagrams {
        let (sender, h) = video_header(d).expect("video");
        assert_eq!(sender, source);
        frames.entry(h.frame_id).or_default().insert(h.frag_index);
        seqs.push(h.seq);
    }
    (frames, seqs)
}

#[tokio::test]
async fn a_congested_receiver_gets_fewer_whole_frames_while_others_get_all() {
    let relay = start_default().await;
    let m = meeting(&relay, &["Sender", "Congested", "Fine"]).await;
    let mut sender = Media::register(&relay, &m[0]).await;
    let congested = Media::register(&relay, &m[1]).await;
    let fine = Media::register(&relay, &m[2]).await;

    // Two reports of 30 % loss: k goes 1 → 2 → 4.
    for _ in 0..2 {
        let rr = ReceiverReport {
            source_id: sender.id,
            media: MediaKind::Video,
            loss_permille: 300,
            highest_seq: 0,
            cumulative_lost: 0,
            jitter_us: 0,
            loss_runs: [0; 4],
        };
        congested.send_packet(&MediaPacket::ReceiverReport { sender_id: congested.id, report: rr }).await;
        // The forwarded copy reaching the sender proves the relay applied it.
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let d = sender.recv_until(deadline).await.expect("forwarded report");
            if matches!(MediaPacket::decode(&d), Ok(MediaPacket::ReceiverReport { sender_id, .. }) if sender_id == congested.id)
            {
                break;
            }
        }
    }

    const FRAMES: u32 = 40;
    const FRAGS: usize = 4;
    // Receivers read while the sender sends, so no socket buffer overflows on the way.
    let (_, fine_got, thin_got) =
        tokio::join!(send_frames(&mut sender, 0, FRAMES, FRAGS), fine.drain_media(QUIET), congested.drain_media(QUIET));
    let (fine_frames, fine_seqs) = frames_of(&fine_got, sender.id);
    let (thin_frames, thin_seqs) = frames_of(&thin_got, sender.id);
    assert_eq!(fine_frames.len(), FRAMES as usize, "the other receiver gets every frame");
    assert_eq!(fine_seqs, (0..FRAMES * FRAGS as u32).collect::<Vec<_>>(), "original sequence numbers");
    assert_eq!(thin_frames.len(), (FRAMES / 4) as usize, "one frame in four");
    for (frame, frags) in &thin_frames {
        assert_eq!(frags.len(), FRAGS, "frame {frame} is complete");
    }
    assert!(thin_seqs.windows(2).all(|w| w[1] == w[0] + 1), "rewritten seq is contiguous: {thin_seqs:?}");
    assert_eq!(relay.stats().thinned, u64::from(FRAMES) * FRAGS as u64 * 3 / 4);

    // Audio is never thinned.
    let audio = sender.send_audio().await;
    assert_eq!(congested.drain_media(QUIET).await, vec![audio]);

    // Recovery: reports of no loss step k back down to 1.
    for _ in 0..3 {
        let rr = ReceiverReport {
            source_id: sender.id,
            media: MediaKind::Video,
            loss_permille: 0,
            highest_seq: 0,
            cumulative_lost: 0,
            jitter_us: 0,
            loss_runs: [0; 4],
        };
        congested.send_packet(&MediaPacket::ReceiverReport { sender_id: congested.id, report: rr }).await;
    }
    sender.drain(QUIET).await;
    let (_, got) = tokio::join!(send_frames(&mut sender, FRAMES, 8, FRAGS), congested.drain_media(QUIET));
    let (frames, _) = frames_of(&got, sender.id);
    assert_eq!(frames.len(), 8, "recovered: every frame again");
    relay.shutdown().await;
}

#[tokio::test]
async fn two_meetings_in_parallel_stay_isolated() {
    let relay = start_default().await;
    let mut x = meeting(&relay, &["X1", "X2"]).await;
    let mut y = meeting(&relay, &["Y1", "Y2"]).await;
    let mut xm = [Media::register(&relay, &x[0]).await, Media::register(&relay, &x[1]).await];
    let mut ym = [Media::register(&relay, &y[0]).await, Media::register(&relay, &y[1]).await];

    // Everyone talks at once: media and chat.
    let (x0, x1) = xm.split_at_mut(1);
    let (y0, y1) = ym.split_at_mut(1);
    let (x0_id, x1_id, y0_id, y1_id) = (x0[0].id, x1[0].id, y0[0].id, y1[0].id);
    let x0_rx = x0[0].socket_clone();
    let x1_rx = x1[0].socket_clone();
    let y0_rx = y0[0].socket_clone();
    let y1_rx = y1[0].socket_clone();
    let sends = async {
        tokio::join!(
            send_frames(&mut x0[0], 0, 20, 2),
            send_frames(&mut x1[0], 100, 20, 2),
            send_frames(&mut y0[0], 200, 20, 2),
            send_frames(&mut y1[0], 300, 20, 2),
        )
    };
    let (_, got_x0, got_x1, got_y0, got_y1) = tokio::join!(
        sends,
        drain_socket(&x0_rx, QUIET),
        drain_socket(&x1_rx, QUIET),
        drain_socket(&y0_rx, QUIET),
        drain_socket(&y1_rx, QUIET),
    );
    // What the sockets got, opened by their participants.
    let open = |media: &Media, got: Vec<Vec<u8>>| got.iter().map(|d| media.open(d)).collect::<Vec<_>>();
    let (got_x0, got_x1) = (open(&xm[0], got_x0), open(&xm[1], got_x1));
    let (got_y0, got_y1) = (open(&ym[0], got_y0), open(&ym[1], got_y1));
    x[0].client.chat("x only").await;
    y[0].client.chat("y only").await;

    for (got, other, own_frames) in
        [(got_x0, x1_id, 100..120), (got_x1, x0_id, 0..20), (got_y0, y1_id, 300..320), (got_y1, y0_id, 200..220)]
    {
        let media: Vec<_> = got.into_iter().filter(|d| video_header(d).is_some()).collect();
        assert!(!media.is_empty());
        let (frames, _) = frames_of(&media, other);
        assert_eq!(frames.keys().copied().collect::<Vec<_>>(), own_frames.collect::<Vec<_>>());
    }
    for (members, text) in [(&mut x, "x only"), (&mut y, "y only")] {
        for m in members.iter_mut() {
            match m.client.recv_until(|msg| matches!(msg, ControlMessage::Chat { .. })).await {
                ControlMessage::Chat { message } => assert_eq!(message.text, text),
                _ => unreachable!(),
            }
            m.client.expect_silence(Duration::from_millis(100)).await;
        }
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn a_participant_who_left_has_no_route() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["A", "B"]).await;
    let mut a = Media::register(&relay, &m[0]).await;
    let b = Media::register(&relay, &m[1]).await;
    m[0].client.send(ControlMessage::Leave).await;
    m[1].client.recv_until(|msg| matches!(msg, ControlMessage::ParticipantLeft { .. })).await;
    let before = relay.stats().drops(DropReason::UnknownSender);
    a.send_frame(1, 1).await;
    assert!(b.drain_media(QUIET).await.is_empty());
    assert_eq!(relay.stats().drops(DropReason::UnknownSender), before + 1);
    relay.shutdown().await;
}

/// A removed participant that keeps its UDP socket open, still sending and listening: nothing
/// it sends reaches anyone (its route is gone with its hop keys), and nothing the others send
/// reaches it. (What it could read if it did is the clients' business: the key rotation of
/// docs/protocol.md §6.10, tested in client-core.)
#[tokio::test]
async fn a_removed_participant_still_sending_and_listening_gets_nothing_and_reaches_no_one() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["A", "B", "C"]).await;
    let mut a = Media::register(&relay, &m[0]).await;
    let b = Media::register(&relay, &m[1]).await;
    let mut c = Media::register(&relay, &m[2]).await;
    let c_id = m[2].id();
    m[0].client.send(ControlMessage::RemoveParticipant { participant_id: c_id }).await;
    m[2].client.recv_until(|msg| matches!(msg, ControlMessage::Removed)).await;
    m[1].client.recv_until(|msg| matches!(msg, ControlMessage::ParticipantLeft { .. })).await;
    let before = relay.stats().drops(DropReason::UnknownSender);
    c.send_packet(&MediaPacket::Keepalive { sender_id: c_id }).await;
    c.send_frame(1, 2).await;
    c.send_audio().await;
    a.send_frame(1, 1).await;
    let to_b = b.drain_media(QUIET).await;
    assert_eq!(to_b.len(), 1, "B gets A's fragment and nothing of C's");
    assert!(c.drain_media(QUIET).await.is_empty(), "the removed participant hears nothing");
    assert_eq!(relay.stats().drops(DropReason::UnknownSender), before + 4);
    relay.shutdown().await;
}

/// A client that ignores the host's mute and keeps sending audio (what a modified client
/// could do): none of it reaches anyone and each packet is counted; its video still does.
/// Reporting its microphone on again changes nothing; off and then on (its own unmute click)
/// lets its audio through again.
#[tokio::test]
async fn a_muted_client_that_keeps_sending_audio_is_not_heard_until_it_unmutes_itself() {
    let relay = start_default().await;
    let mut m = meeting(&relay, &["Host", "Loud"]).await;
    let host = Media::register(&relay, &m[0]).await;
    let mut loud = Media::register(&relay, &m[1]).await;
    let state = |mic_on| ControlMessage::MediaState { mic_on, camera_on: true, speaking: false, presenting: false };
    m[1].client.send(state(true)).await;
    m[0].client
        .recv_until(|msg| matches!(msg, ControlMessage::ParticipantUpdated { participant } if participant.mic_on))
        .await;
    let sent = loud.send_audio().await;
    assert_eq!(host.drain_media(QUIET).await, vec![sent], "heard before the mute");

    let loud_id = m[1].id();
    m[0].client.send(ControlMessage::MuteParticipant { participant_id: loud_id }).await;
    m[1].client.recv_until(|msg| matches!(msg, ControlMessage::MutedByHost { .. })).await;
    let before = relay.stats().drops(DropReason::MutedByHost);
    for _ in 0..5 {
        loud.send_audio().await;
    }
    m[1].client.send(state(true)).await;
    loud.send_audio().await;
    let video = loud.send_frame(1, 1).await;
    assert_eq!(host.drain_media(QUIET).await, video, "only its video gets through");
    eventually("six muted audio packets counted", || relay.stats().drops(DropReason::MutedByHost) - before >= 6).await;

    m[1].client.send(state(false)).await;
    m[1].client.send(state(true)).await;
    m[0].client
        .recv_until(|msg| matches!(msg, ControlMessage::ParticipantUpdated { participant } if participant.mic_on))
        .await;
    let sent = loud.send_audio().await;
    assert_eq!(host.drain_media(QUIET).await, vec![sent], "heard again after its own unmute");
    assert_eq!(relay.stats().drops(DropReason::MutedByHost) - before, 6);
    relay.shutdown().await;
}
