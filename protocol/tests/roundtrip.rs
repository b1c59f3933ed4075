//! Property tests: everything the protocol encodes decodes back to the same value.
//!
//! Control messages go through the length-prefixed [`FrameCodec`] (whole, and fed to the
//! decoder in random splits as TCP delivers them), media packets through
//! `encode_into`/`decode`, file-connection frames through `FileFrame::encode`/`decode` and
//! the file connection's framing, and whole JPEG frames through `fragment_frame` and back.

mod common;

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use common::{OwnedPacket, VARIANT_COUNT};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use protocol::file::{FileFrame, MAX_FILE_FRAME_LEN};
use protocol::media::{
    fragment_count, fragment_frame, peek_header, VideoFrameMeta, MAX_DATAGRAM_LEN, MAX_PACKET_LEN,
    MAX_VIDEO_FRAGMENT_PAYLOAD,
};
use protocol::{ControlMessage, FrameCodec, MediaPacket, PacketError};

/// Feeds `wire` to a fresh buffer in chunks of the given (non-zero) sizes, cycled, decoding
/// after each chunk as a reader of a TCP stream would.
fn decode_in_chunks(codec: &FrameCodec, wire: &[u8], chunk_sizes: &[usize]) -> Vec<ControlMessage> {
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut sizes = chunk_sizes.iter().cycle();
    while pos < wire.len() {
        let n = (*sizes.next().expect("non-empty chunk list")).min(wire.len() - pos);
        src.extend_from_slice(&wire[pos..pos + n]);
        pos += n;
        while let Some(msg) = codec.decode_message(&mut src).expect("valid stream") {
            out.push(msg);
        }
    }
    assert!(src.is_empty(), "{} bytes left undecoded", src.len());
    assert_eq!(codec.decode_eof(&mut src), Ok(None));
    out
}

#[test]
fn fixtures_cover_every_variant_once() {
    let all = common::one_of_each();
    let indices: Vec<usize> = all.iter().map(common::variant_index).collect();
    assert_eq!(indices, (0..VARIANT_COUNT).collect::<Vec<_>>());
    let names: BTreeSet<&str> = all.iter().map(ControlMessage::type_name).collect();
    assert_eq!(names.len(), VARIANT_COUNT, "type names are distinct");
}

#[test]
fn strategy_generates_every_variant() {
    let mut runner = TestRunner::deterministic();
    let strategy = common::control_message();
    let mut seen = BTreeSet::new();
    for _ in 0..5_000 {
        let msg = strategy.new_tree(&mut runner).expect("strategy").current();
        seen.insert(common::variant_index(&msg));
        if seen.len() == VARIANT_COUNT {
            break;
        }
    }
    assert_eq!(seen.len(), VARIANT_COUNT, "variants never generated: {:?}", {
        let all: BTreeSet<usize> = (0..VARIANT_COUNT).collect();
        all.difference(&seen).copied().collect::<Vec<_>>()
    });
}

#[test]
fn every_fixture_round_trips_with_its_type_tag() {
    let codec = FrameCodec::default();
    for msg in common::one_of_each() {
        let json: serde_json::Value = serde_json::from_slice(&msg.to_json()).expect("JSON");
        assert_eq!(json["type"], msg.type_name());
        let mut wire = BytesMut::new();
        codec.encode_message(&msg, &mut wire).unwrap();
        assert_eq!(codec.decode_message(&mut wire).unwrap(), Some(msg));
    }
}

proptest! {
    #![proptest_config(Config { cases: 512, ..Config::default() })]

    #[test]
    fn control_message_round_trips_through_json(msg in common::control_message()) {
        let json = msg.to_json();
        let value: serde_json::Value = serde_json::from_slice(&json).expect("valid JSON");
        prop_assert_eq!(value["type"].as_str(), Some(msg.type_name()));
        prop_assert_eq!(ControlMessage::from_json(&json).expect("decodes"), msg);
    }

    #[test]
    fn control_message_round_trips_through_the_frame_codec(msg in common::control_message()) {
        let codec = FrameCodec::default();
        let mut wire = BytesMut::new();
        codec.encode_message(&msg, &mut wire).unwrap();
        let expected_len = msg.to_json().len();
        prop_assert_eq!(&wire[..4], &(expected_len as u32).to_be_bytes()[..]);
        prop_assert_eq!(codec.decode_message(&mut wire).unwrap(), Some(msg));
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn control_stream_decodes_the_same_whatever_the_splits(
        msgs in proptest::collection::vec(common::control_message(), 1..8),
        chunk_sizes in proptest::collection::vec(prop_oneof![1..4usize, 1..64usize, 1..4096usize], 1..16),
    ) {
        let codec = FrameCodec::default();
        let mut wire = BytesMut::new();
        for msg in &msgs {
            codec.encode_message(msg, &mut wire).unwrap();
        }
        prop_assert_eq!(decode_in_chunks(&codec, &wire, &chunk_sizes), msgs);
    }

    #[test]
    fn media_packet_round_trips(packet in common::valid_packet(), slack in 0..64usize) {
        let p = packet.as_packet();
        let mut out = vec![0xEE; p.encoded_len() + slack];
        let len = p.encode_into(&mut out).expect("valid packet encodes");
        prop_assert_eq!(len, p.encoded_len());
        prop_assert!(out[len..].iter().all(|&b| b == 0xEE), "nothing written past the packet");
        let bytes = &out[..len];
        prop_assert_eq!(MediaPacket::decode(bytes), Ok(p));
        prop_assert_eq!(p.to_vec().unwrap(), bytes.to_vec());
        // Sealed, it is a datagram within the limit whose header peeks and whose trailer opens
        // to the very packet.
        let (hop, mut receiver) = common::hop_pair();
        let datagram = hop.to_vec(&p).unwrap();
        prop_assert!(datagram.len() <= MAX_DATAGRAM_LEN);
        prop_assert_eq!(peek_header(&datagram), Ok((p.kind(), p.sender_id())));
        prop_assert_eq!(receiver.open(&datagram), Ok(bytes));
    }

    #[test]
    fn media_encode_refuses_a_short_buffer_and_writes_nothing(packet in common::valid_packet(), short in 1..8usize) {
        let p = packet.as_packet();
        let mut out = vec![0xEE; p.encoded_len().saturating_sub(short)];
        prop_assert_eq!(p.encode_into(&mut out), Err(PacketError::BufferTooSmall));
        prop_assert!(out.iter().all(|&b| b == 0xEE));
    }

    /// The encoder refuses exactly the packets the decoder would refuse, and writes nothing
    /// when it refuses: nobody can send a packet their peer is bound to drop.
    #[test]
    fn media_encoder_and_decoder_agree_on_validity(packet in common::any_packet()) {
        let p = packet.as_packet();
        let mut out = vec![0xEE; p.encoded_len()];
        match p.encode_into(&mut out) {
            Ok(len) => prop_assert_eq!(MediaPacket::decode(&out[..len]), Ok(p)),
            Err(e) => {
                prop_assert!(matches!(e, PacketError::InvalidField | PacketError::TooLong), "{e:?}");
                if e == PacketError::TooLong {
                    prop_assert!(p.encoded_len() > MAX_PACKET_LEN);
                }
                prop_assert!(out.iter().all(|&b| b == 0xEE), "a refused packet leaves the buffer untouched");
            }
        }
    }

    #[test]
    fn file_frames_round_trip(
        frame in prop_oneof![
            (any::<u32>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..20_000))
                .prop_map(|(seq, offset, data)| FileFrame::Data { seq, offset, data: Bytes::from(data) }),
            (any::<u32>(), any::<u64>()).prop_map(|(seq, received)| FileFrame::Ack { seq, received }),
            common::control_message().prop_map(FileFrame::Control),
        ],
    ) {
        let payload = frame.encode();
        prop_assert_eq!(FileFrame::decode(payload.clone()).unwrap(), frame.clone());

        // And through the file connection's framing.
        let codec = FrameCodec::new(MAX_FILE_FRAME_LEN);
        let mut wire = BytesMut::new();
        codec.encode(&payload, &mut wire).unwrap();
        let got = codec.decode(&mut wire).unwrap().expect("one whole frame");
        prop_assert_eq!(FileFrame::decode(got).unwrap(), frame);
        prop_assert!(wire.is_empty());
    }

    #[test]
    fn file_stream_of_mixed_frames_survives_any_splits(
        frames in proptest::collection::vec(
            prop_oneof![
                (any::<u32>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..3000))
                    .prop_map(|(seq, offset, data)| FileFrame::Data { seq, offset, data: Bytes::from(data) }),
                (any::<u32>(), any::<u64>()).prop_map(|(seq, received)| FileFrame::Ack { seq, received }),
                common::control_message().prop_map(FileFrame::Control),
            ],
            1..10,
        ),
        chunk_sizes in proptest::collection::vec(1..2000usize, 1..8),
    ) {
        let codec = FrameCodec::new(MAX_FILE_FRAME_LEN);
        let mut wire = BytesMut::new();
        for f in &frames {
            codec.encode(&f.encode(), &mut wire).unwrap();
        }
        let mut src = BytesMut::new();
        let mut got = Vec::new();
        let mut pos = 0;
        let mut sizes = chunk_sizes.iter().cycle();
        while pos < wire.len() {
            let n = (*sizes.next().unwrap()).min(wire.len() - pos);
            src.extend_from_slice(&wire[pos..pos + n]);
            pos += n;
            while let Some(payload) = codec.decode(&mut src).unwrap() {
                got.push(FileFrame::decode(payload).unwrap());
            }
        }
        prop_assert_eq!(got, frames);
    }
}

proptest! {
    #![proptest_config(Config { cases: 64, ..Config::default() })]

    /// Any JPEG up to 200 KB splits into datagrams that fit the MTU budget and, decoded and put
    /// back together in whatever order they arrive, give back the exact bytes.
    #[test]
    fn fragmented_frames_reassemble_to_the_input(
        len in prop_oneof![0..=2 * MAX_VIDEO_FRAGMENT_PAYLOAD + 1, 0..=200_000usize],
        seed in any::<u8>(),
        sender_id in any::<u32>(),
        frame_id in any::<u32>(),
        capture_ts_us in any::<u64>(),
        first_seq in prop_oneof![any::<u32>(), Just(u32::MAX - 3)],
        order_seed in any::<u64>(),
    ) {
        let jpeg: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect();
        let meta = VideoFrameMeta { stream: protocol::media::VideoStream::Camera, sender_id, frame_id, capture_ts_us, width: 854, height: 480 };
        let mut next_seq = first_seq;
        let mut out = [0u8; MAX_DATAGRAM_LEN];
        let mut datagrams: Vec<Vec<u8>> = Vec::new();
        let (hop, mut receiver) = common::hop_pair();
        let count =
            fragment_frame(meta, &jpeg, &mut next_seq, &hop, &mut out, |d| datagrams.push(d.to_vec())).unwrap();
        prop_assert_eq!(count, fragment_count(len));
        prop_assert_eq!(datagrams.len(), count);
        prop_assert_eq!(next_seq, first_seq.wrapping_add(count as u32));

        // Deliver in a scrambled order (a deterministic permutation from the seed).
        let mut order: Vec<usize> = (0..count).collect();
        let mut state = order_seed | 1;
        for i in (1..order.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            order.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut slots: Vec<Option<Vec<u8>>> = vec![None; count];
        for &i in &order {
            let d = &datagrams[i];
            prop_assert!(d.len() <= MAX_DATAGRAM_LEN);
            match MediaPacket::decode(receiver.open(d).unwrap()) {
                Ok(MediaPacket::VideoFragment { sender_id: s, header, payload }) => {
                    prop_assert_eq!(s, sender_id);
                    prop_assert_eq!(header.frame_id, frame_id);
                    prop_assert_eq!(header.capture_ts_us, capture_ts_us);
                    prop_assert_eq!((header.width, header.height), (854, 480));
                    prop_assert_eq!(header.frag_count as usize, count);
                    prop_assert_eq!(header.frag_index as usize, i, "emitted in index order");
                    prop_assert_eq!(header.seq, first_seq.wrapping_add(i as u32));
                    let slot = &mut slots[header.frag_index as usize];
                    prop_assert!(slot.is_none(), "each index once");
                    *slot = Some(payload.to_vec());
                }
                other => prop_assert!(false, "not a video fragment: {:?}", other),
            }
        }
        let rebuilt: Vec<u8> = slots.into_iter().flat_map(|s| s.expect("every fragment")).collect();
        prop_assert_eq!(rebuilt, jpeg);
    }
}

#[test]
fn fragment_boundaries_are_exact() {
    let mut out = [0u8; MAX_DATAGRAM_LEN];
    let meta = VideoFrameMeta {
        stream: protocol::media::VideoStream::Camera,
        sender_id: 1,
        frame_id: 1,
        capture_ts_us: 0,
        width: 2,
        height: 2,
    };
    for (len, expect) in [
        (0, 1),
        (1, 1),
        (MAX_VIDEO_FRAGMENT_PAYLOAD, 1),
        (MAX_VIDEO_FRAGMENT_PAYLOAD + 1, 2),
        (3 * MAX_VIDEO_FRAGMENT_PAYLOAD, 3),
    ] {
        let mut sizes = Vec::new();
        let mut seq = 0;
        let (hop, _) = common::hop_pair();
        let n = fragment_frame(meta, &vec![7u8; len], &mut seq, &hop, &mut out, |d| sizes.push(d.len())).unwrap();
        assert_eq!(n, expect, "len {len}");
        assert_eq!(sizes.len(), expect);
        // Every fragment but the last is full.
        for s in &sizes[..sizes.len() - 1] {
            assert_eq!(*s, MAX_DATAGRAM_LEN);
        }
    }
}

#[test]
fn a_frame_needing_more_than_65535_fragments_is_refused_before_sending_any() {
    let too_big = vec![0u8; 65_536 * MAX_VIDEO_FRAGMENT_PAYLOAD];
    let mut out = [0u8; MAX_DATAGRAM_LEN];
    let mut seq = 5;
    let mut emitted = 0;
    let meta = VideoFrameMeta {
        stream: protocol::media::VideoStream::Camera,
        sender_id: 1,
        frame_id: 1,
        capture_ts_us: 0,
        width: 2,
        height: 2,
    };
    let (hop, _) = common::hop_pair();
    let r = fragment_frame(meta, &too_big, &mut seq, &hop, &mut out, |_| emitted += 1);
    assert_eq!(r, Err(PacketError::InvalidField));
    assert_eq!(emitted, 0);
    assert_eq!(seq, 5, "no sequence numbers consumed");
}

#[test]
fn owned_packet_helper_covers_every_kind() {
    // Keeps the strategies honest: each kind is reachable from `valid_packet`.
    let mut runner = TestRunner::deterministic();
    let strategy = common::valid_packet();
    let mut kinds = BTreeSet::new();
    for _ in 0..500 {
        let p: OwnedPacket = strategy.new_tree(&mut runner).unwrap().current();
        kinds.insert(p.as_packet().kind() as u8);
    }
    assert_eq!(kinds, (1..=8).collect());
}
