//! End-to-end encrypted media through a real relay, watched from the wire: sessions whose TCP
//! and UDP traffic passes through taps on a second loopback address. What the taps see of the
//! media is the routing headers and ciphertext, never a JPEG or a waveform; everyone shows the
//! same safety code; when the host removes someone the key rotates, the others carry on under
//! the new epoch, and the removed participant is never given it; when the host leaves, the new
//! host rotates and the call goes on.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use client_core::{SessionEvent, SessionOptions};
use common::*;
use protocol::e2ee::SEALED_HEADER_LEN;
use protocol::hop::HOP_TRAILER_LEN;
use protocol::media::MediaPacket;
use relay_server::RelayHandle;

/// Samples per window the waveform detector looks at.
const WINDOW: usize = 32;

/// Whether `bytes` hold, at any byte offset, `WINDOW` consecutive big-endian 16-bit samples
/// that form a loud, smooth waveform: what a PCM tone (or voice) looks like in the clear, and
/// what ciphertext, whose bytes are uniformly random, practically never does.
fn has_waveform(bytes: &[u8]) -> bool {
    (0..2).any(|align| {
        let samples: Vec<i32> = bytes[align.min(bytes.len())..]
            .chunks_exact(2)
            .map(|b| i32::from(i16::from_be_bytes([b[0], b[1]])))
            .collect();
        samples.windows(WINDOW).any(|w| {
            let loudest = w.iter().map(|s| s.abs()).max().unwrap_or(0);
            loudest >= 500 && w.windows(2).all(|p| (p[1] - p[0]).abs() <= loudest / 4 + 16)
        })
    })
}

/// The media of a captured datagram: a video fragment's payload with its position, or an
/// audio packet's body.
enum Media<'a> {
    Video { frag_index: u16, payload: &'a [u8] },
    Audio { body: &'a [u8] },
}

fn media(datagram: &[u8]) -> Option<(u32, Media<'_>)> {
    let packet = datagram.get(..datagram.len().checked_sub(HOP_TRAILER_LEN)?)?;
    match MediaPacket::decode(packet).ok()? {
        MediaPacket::VideoFragment { sender_id, header, payload } => {
            Some((sender_id, Media::Video { frag_index: header.frag_index, payload }))
        }
        MediaPacket::Audio { sender_id, sealed, .. } => Some((sender_id, Media::Audio { body: sealed })),
        _ => None,
    }
}

/// The key epoch a sealed body (or a frame's first fragment) starts with.
fn epoch_of(body: &[u8]) -> Option<u32> {
    let b = body.get(..SEALED_HEADER_LEN)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

/// A relay and the taps in front of it; sessions connect to `addr`.
struct Tapped {
    relay: RelayHandle,
    addr: String,
    udp: Arc<Mutex<Vec<common::Tapped>>>,
}

async fn tapped_relay() -> Tapped {
    let relay = start_relay().await;
    let udp = udp_tap(relay.udp_addr()).await;
    let (tcp, _) = tcp_tap(TAP_ADDR, relay.tcp_addr()).await;
    Tapped { relay, addr: tcp.to_string(), udp }
}

/// The last safety code a bot was shown, with its epoch.
fn last_encryption(bot: &Bot) -> Option<(u32, String)> {
    bot.events().iter().rev().find_map(|e| match e {
        SessionEvent::Encryption { epoch, safety_code } => Some((*epoch, safety_code.clone())),
        _ => None,
    })
}

/// Ada hosts, Bob and Cy are admitted; all three send the synthetic picture and the tone.
async fn three_in_a_meeting(tapped: &Tapped) -> [(Bot, u32); 3] {
    let a = Bot::connect(&tapped.addr, SessionOptions::default()).await;
    let b = Bot::connect(&tapped.addr, SessionOptions::default()).await;
    let c = Bot::connect(&tapped.addr, SessionOptions::default()).await;
    let (code, a_id) = create(&a, "Ada").await;
    let b_id = admit(&a, &b, &code, "Bob").await;
    let c_id = admit(&a, &c, &code, "Cy").await;
    [(a, a_id), (b, b_id), (c, c_id)]
}

async fn video_from_all(bots: &[(&Bot, u32)], frames: usize) {
    for (bot, me) in bots {
        let others: Vec<u32> = bots.iter().map(|(_, id)| *id).filter(|id| id != me).collect();
        bot.wait_until("video from every other participant", LONG, |log| {
            others.iter().all(|o| log.frames.get(o).is_some_and(|f| f.len() >= frames))
        })
        .await;
    }
}

/// Waits until each of `bots` shows the safety code of the key of epoch 2.
async fn the_key_of_epoch_2_reaches(bots: &[&Bot]) {
    for bot in bots {
        bot.wait("the key of epoch 2", LONG, |e| match e {
            SessionEvent::Encryption { epoch: 2, .. } => Some(()),
            _ => None,
        })
        .await;
    }
}

/// Waits until each of the two has decoded ten more frames from the other (after a rotation:
/// the call goes on under the new key).
async fn new_frames_both_ways((x, x_id): (&Bot, u32), (y, y_id): (&Bot, u32)) {
    let seen = |bot: &Bot, from: u32| bot.log.lock().unwrap().frames.get(&from).map_or(0, Vec::len);
    for (bot, from) in [(x, y_id), (y, x_id)] {
        let before = seen(bot, from);
        bot.wait_until("ten new frames", LONG, |log| log.frames.get(&from).is_some_and(|f| f.len() >= before + 10))
            .await;
    }
}

#[test]
fn the_detectors_recognise_media_in_the_clear() {
    // The tone the sessions send, as it would travel unsealed.
    let tone: Vec<u8> = (0..320)
        .flat_map(|n| {
            let v = (f64::from(n) * 440.0 * std::f64::consts::TAU / 16_000.0).sin() * 0.25 * 32767.0;
            (v as i16).to_be_bytes()
        })
        .collect();
    assert!(has_waveform(&tone));
    assert!(has_waveform(&[&[0x42][..], &tone].concat()), "at an odd offset too");
    // Uniform bytes, like ciphertext, and silence are not a waveform.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    assert!(!has_waveform(&noise));
    assert!(!has_waveform(&[0u8; 640]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn media_on_the_wire_is_sealed_and_everyone_reads_the_same_safety_code() {
    let tapped = tapped_relay().await;
    let [(a, a_id), (b, b_id), (c, c_id)] = three_in_a_meeting(&tapped).await;
    let bots = [(&a, a_id), (&b, b_id), (&c, c_id)];
    video_from_all(&bots, 10).await;
    for (bot, _) in bots {
        bot.wait_until("audio arriving", LONG, |_| {
            bot.session.stats().is_some_and(|s| s.streams.iter().filter(|r| r.audio.packets_received > 0).count() == 2)
        })
        .await;
    }

    // Everyone holds the key of epoch 1 with the same three public keys: one code.
    let shown: Vec<_> = bots.iter().map(|(bot, _)| last_encryption(bot).expect("a safety code")).collect();
    assert_eq!(shown[0].0, 1);
    assert!(shown.iter().all(|s| *s == shown[0]), "safety codes differ: {shown:?}");

    let wire = tapped.udp.lock().unwrap().clone();
    let (mut fragments, mut audio) = (0, 0);
    for d in &wire {
        assert!(!has_waveform(&d.bytes), "a waveform is readable in a datagram of {} bytes", d.bytes.len());
        match media(&d.bytes) {
            Some((_, Media::Video { frag_index: 0, payload })) => {
                // Where a frame's first bytes travel: in the clear they would be a JPEG's.
                assert!(!payload.starts_with(&[0xff, 0xd8, 0xff]), "a JPEG starts a frame's first fragment");
                assert_eq!(epoch_of(payload), Some(1));
                fragments += 1;
            }
            Some((_, Media::Audio { body })) => {
                assert_eq!(epoch_of(body), Some(1));
                audio += 1;
            }
            _ => {}
        }
    }
    assert!(fragments > 50 && audio > 100, "the tap saw the media: {fragments} frames, {audio} audio packets");
    for bot in [a, b, c] {
        bot.close().await;
    }
    tapped.relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_removed_participant_is_left_behind_by_a_key_rotation() {
    let tapped = tapped_relay().await;
    let [(a, a_id), (b, b_id), (c, c_id)] = three_in_a_meeting(&tapped).await;
    video_from_all(&[(&a, a_id), (&b, b_id), (&c, c_id)], 5).await;
    let c_addr: SocketAddr = {
        // Cy's UDP address, as the tap saw it: its media to the relay.
        let wire = tapped.udp.lock().unwrap();
        wire.iter()
            .find(|d| d.to_relay && media(&d.bytes).is_some_and(|(id, _)| id == c_id))
            .expect("Cy's media")
            .client
    };

    a.session.remove(c_id).await.unwrap();
    c.wait("Removed", LONG, |e| matches!(e, SessionEvent::Removed).then_some(())).await;
    the_key_of_epoch_2_reaches(&[&a, &b]).await;
    let mark = tapped.udp.lock().unwrap().len();
    // Ada and Bob carry on under the new key: new frames still decode on both sides.
    new_frames_both_ways((&a, a_id), (&b, b_id)).await;
    assert_eq!(last_encryption(&a), last_encryption(&b), "one code for the two who remain");
    assert_ne!(last_encryption(&a).map(|e| e.1), last_encryption(&c).map(|e| e.1));

    // What the relay sent after the rotation was sealed under epoch 2, which Cy never got,
    // and none of it went to Cy.
    let wire = tapped.udp.lock().unwrap()[mark..].to_vec();
    let mut sealed_after = 0;
    for d in wire.iter().filter(|d| !d.to_relay) {
        assert_ne!(d.client, c_addr, "the relay sent Cy something after its removal");
        if let Some((_, Media::Audio { body } | Media::Video { frag_index: 0, payload: body })) = media(&d.bytes) {
            if epoch_of(body) == Some(2) {
                sealed_after += 1;
            }
        }
    }
    assert!(sealed_after > 20, "{sealed_after} bodies under epoch 2");
    assert!(
        !c.events().iter().any(|e| matches!(e, SessionEvent::Encryption { epoch, .. } if *epoch >= 2)),
        "Cy was given the new key"
    );
    for bot in [a, b, c] {
        bot.close().await;
    }
    tapped.relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn when_the_host_leaves_the_new_host_rotates_and_the_call_goes_on() {
    let tapped = tapped_relay().await;
    let [(a, a_id), (b, b_id), (c, c_id)] = three_in_a_meeting(&tapped).await;
    video_from_all(&[(&a, a_id), (&b, b_id), (&c, c_id)], 5).await;

    a.session.leave().await.unwrap();
    // Bob joined first of those left: he becomes host and hands out the key of epoch 2.
    the_key_of_epoch_2_reaches(&[&b, &c]).await;
    assert_eq!(last_encryption(&b), last_encryption(&c));
    new_frames_both_ways((&b, b_id), (&c, c_id)).await;
    for bot in [a, b, c] {
        bot.close().await;
    }
    tapped.relay.shutdown().await;
}
