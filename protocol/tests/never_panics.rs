//! Property tests: no decoder panics, whatever bytes arrive.
//!
//! Every decoder that sees network input is fed arbitrary byte vectors and valid encodings
//! mutated the way a buggy or hostile peer would (bits flipped, bytes overwritten, cut short,
//! extended, spliced, JSON fields swapped for values of the wrong type). A decoder may refuse
//! the input, but must do so with its typed error; and where it accepts, what it returns must
//! be consistent (binary formats re-encode to the very bytes they were decoded from).

mod common;

use common::checks;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use proptest::test_runner::Config;
use protocol::file::{FileFrame, MAX_FILE_FRAME_LEN};
use protocol::framing::{DEFAULT_MAX_FRAME_LEN, LENGTH_PREFIX_LEN};
use protocol::{ControlMessage, FrameCodec, FrameError};
use serde_json::Value;

/// One way of damaging a valid encoding. Positions are taken modulo the buffer's length.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit { at: usize, bit: u8 },
    SetByte { at: usize, value: u8 },
    Truncate { at: usize },
    Extend(Vec<u8>),
    Insert { at: usize, bytes: Vec<u8> },
    Remove { at: usize, n: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Mutation::FlipBit { at, bit }),
        (any::<usize>(), prop_oneof![any::<u8>(), Just(0), Just(0xFF), Just(b'"'), Just(b'{')])
            .prop_map(|(at, value)| Mutation::SetByte { at, value }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        proptest::collection::vec(any::<u8>(), 1..32).prop_map(Mutation::Extend),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1..16usize).prop_map(|(at, n)| Mutation::Remove { at, n }),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    proptest::collection::vec(mutation(), 1..5)
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        let len = bytes.len();
        let pos = |at: usize| if len == 0 { 0 } else { at % len };
        match m {
            Mutation::FlipBit { at, bit } if len > 0 => bytes[pos(*at)] ^= 1 << bit,
            Mutation::SetByte { at, value } if len > 0 => bytes[pos(*at)] = *value,
            Mutation::Truncate { at } => bytes.truncate(pos(*at)),
            Mutation::Extend(extra) => bytes.extend_from_slice(extra),
            Mutation::Insert { at, bytes: extra } => {
                let at = pos(*at);
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Remove { at, n } => {
                let at = pos(*at);
                let end = (at + n).min(len);
                bytes.drain(at..end);
            }
            Mutation::FlipBit { .. } | Mutation::SetByte { .. } => {}
        }
    }
    bytes
}

/// Arbitrary bytes, biased towards short inputs and towards the first bytes every format
/// looks at (media magic and version, file frame tags, JSON braces).
fn arbitrary_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..4096),
        (0..=6u8, proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(kind, rest)| {
            let mut v = vec![b'P', b'R', 1, kind];
            v.extend(rest);
            v
        }),
        (prop_oneof![Just(1u8), Just(2u8), Just(b'{')], proptest::collection::vec(any::<u8>(), 0..40)).prop_map(
            |(tag, rest)| {
                let mut v = vec![tag];
                v.extend(rest);
                v
            }
        ),
    ]
}

/// A JSON value of any shape, for swapping into a valid message's fields.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        common::finite_f64().prop_map(Value::from),
        Just(serde_json::json!(-1)),
        Just(serde_json::json!(1.5)),
        Just(serde_json::json!(1e300)),
        common::text(0..8).prop_map(Value::String),
        Just(serde_json::json!("HELLO")),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Walks `v` in a fixed order and replaces (or, if `remove`, deletes) the `n`-th object member
/// it meets, modulo the number of members.
fn mutate_member(v: &mut Value, n: usize, replacement: Value, remove: bool) {
    fn count(v: &Value) -> usize {
        match v {
            Value::Object(m) => m.len() + m.values().map(count).sum::<usize>(),
            Value::Array(a) => a.iter().map(count).sum(),
            _ => 0,
        }
    }
    fn walk(v: &mut Value, n: &mut usize, replacement: &mut Option<Value>, remove: bool) -> bool {
        match v {
            Value::Object(m) => {
                let keys: Vec<String> = m.keys().cloned().collect();
                for k in keys {
                    if *n == 0 {
                        if remove {
                            m.remove(&k);
                        } else if let Some(r) = replacement.take() {
                            m.insert(k, r);
                        }
                        return true;
                    }
                    *n -= 1;
                    if walk(m.get_mut(&k).expect("key just listed"), n, replacement, remove) {
                        return true;
                    }
                }
                false
            }
            Value::Array(a) => a.iter_mut().any(|x| walk(x, n, replacement, remove)),
            _ => false,
        }
    }
    let total = count(v);
    if total > 0 {
        walk(v, &mut (n % total), &mut Some(replacement), remove);
    }
}

proptest! {
    #![proptest_config(Config { cases: 1024, ..Config::default() })]

    /// A pasted invitation is whatever the clipboard held: damaged links are refused with an
    /// error, and what is accepted makes the same invitation again.
    #[test]
    fn invitations_survive_mutated_links(mutations in proptest::collection::vec(mutation(), 1..4)) {
        let fp = protocol::fingerprint::Fingerprint::of_certificate(b"relay");
        let invite = protocol::invite::Invite { relay: "[fe80::1]:5000".into(), code: "482913".into(), fingerprint: Some(fp) };
        let damaged = apply(invite.text().into_bytes(), &mutations);
        let text = String::from_utf8_lossy(&damaged);
        if let Ok(read) = protocol::invite::Invite::find(&text) {
            prop_assert_eq!(protocol::invite::Invite::parse_link(&read.link()), Ok(read));
        }
    }

    #[test]
    fn frame_codec_survives_arbitrary_bytes(
        bytes in arbitrary_bytes(),
        max in prop_oneof![Just(DEFAULT_MAX_FRAME_LEN), 0..64usize],
        chunk in 1..300usize,
    ) {
        checks::frame_codec(&FrameCodec::new(max), &bytes, chunk);
    }

    #[test]
    fn frame_codec_survives_mutated_streams(
        msgs in proptest::collection::vec(common::control_message(), 1..4),
        muts in mutations(),
        chunk in 1..300usize,
    ) {
        let codec = FrameCodec::default();
        let mut wire = BytesMut::new();
        for m in &msgs {
            codec.encode_message(m, &mut wire).unwrap();
        }
        checks::frame_codec(&codec, &apply(wire.to_vec(), &muts), chunk);
    }

    #[test]
    fn control_json_survives_arbitrary_bytes(bytes in arbitrary_bytes()) {
        checks::control_json(&bytes);
    }

    #[test]
    fn control_json_survives_arbitrary_text(text in common::text(0..200)) {
        checks::control_json(text.as_bytes());
    }

    #[test]
    fn control_json_survives_mutated_messages(msg in common::control_message(), muts in mutations()) {
        checks::control_json(&apply(msg.to_json(), &muts));
    }

    /// Structurally valid JSON with a field of the wrong type, an unexpected shape or a field
    /// missing: a typed error or a message that round-trips.
    #[test]
    fn control_json_survives_wrong_field_types(
        msg in common::control_message(),
        member in any::<usize>(),
        replacement in json_value(),
        remove in any::<bool>(),
    ) {
        let mut value: Value = serde_json::from_slice(&msg.to_json()).unwrap();
        mutate_member(&mut value, member, replacement, remove);
        checks::control_json(&serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn media_decode_survives_arbitrary_bytes(bytes in arbitrary_bytes()) {
        checks::media(&bytes);
    }

    #[test]
    fn media_decode_survives_mutated_packets(packet in common::valid_packet(), muts in mutations()) {
        let bytes = packet.as_packet().to_vec().unwrap();
        checks::media(&apply(bytes, &muts));
    }

    #[test]
    fn screen_slice_decode_survives_arbitrary_and_mutated_slices(
        bytes in arbitrary_bytes(),
        runs in proptest::collection::vec((0..8160u16, 1..40u16), 1..6),
        muts in mutations(),
    ) {
        checks::screen_slice(&bytes);
        // A valid slice of a 1080p picture (sorted, non-overlapping runs), then mutated.
        let mut next = 0u16;
        let runs: Vec<protocol::screen::TileRun> = runs
            .into_iter()
            .filter_map(|(gap, count)| {
                let first = next.checked_add(gap % 200)?;
                next = first.checked_add(count)?;
                (next <= 8160).then_some(protocol::screen::TileRun { first, count })
            })
            .collect();
        let header = protocol::screen::SliceHeader {
            full: false,
            update_id: 1,
            slice_index: 0,
            slice_count: 1,
            recent: Default::default(),
        };
        let mut slice = vec![0x07, 0x7f, 0x04, 0x37];
        let mut body = Vec::new();
        protocol::screen::encode_slice(&header, &runs, b"jpeg", &mut body);
        slice.extend_from_slice(&body);
        checks::screen_slice(&slice);
        checks::screen_slice(&apply(slice, &muts));
    }

    #[test]
    fn file_frame_decode_survives_arbitrary_bytes(bytes in arbitrary_bytes()) {
        checks::file_frame(&bytes);
    }

    #[test]
    fn file_frame_decode_survives_mutated_frames(
        frame in prop_oneof![
            (any::<u32>(), any::<u64>(), proptest::collection::vec(any::<u8>(), 0..200))
                .prop_map(|(seq, offset, data)| FileFrame::Data { seq, offset, data: Bytes::from(data) }),
            (any::<u32>(), any::<u64>()).prop_map(|(seq, received)| FileFrame::Ack { seq, received }),
            common::control_message().prop_map(FileFrame::Control),
        ],
        muts in mutations(),
    ) {
        checks::file_frame(&apply(frame.encode().to_vec(), &muts));
    }

    /// A length prefix over the limit is refused at once: nothing is consumed, nothing is
    /// reserved for the announced length, and every decoding entry point says the same.
    #[test]
    fn oversized_length_prefix_is_refused_without_growing_the_buffer(
        max in prop_oneof![0..1024usize, Just(DEFAULT_MAX_FRAME_LEN), Just(MAX_FILE_FRAME_LEN)],
        excess in prop_oneof![1..16u64, any::<u32>().prop_map(u64::from)],
        trailing in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let len = (max as u64 + excess).min(u64::from(u32::MAX)) as usize;
        prop_assume!(len > max);
        let mut bytes = (len as u32).to_be_bytes().to_vec();
        bytes.extend_from_slice(&trailing);
        let codec = FrameCodec::new(max);
        let expected = Err(FrameError::TooLong { len, max });

        let mut src = BytesMut::from(&bytes[..]);
        let capacity = src.capacity();
        prop_assert_eq!(codec.decode(&mut src), expected.clone());
        prop_assert_eq!(src.capacity(), capacity, "no room reserved for the announced length");
        prop_assert_eq!(&src[..], &bytes[..], "nothing consumed");
        prop_assert_eq!(codec.decode(&mut src), expected.clone(), "the refusal is sticky");
        prop_assert_eq!(codec.decode_eof(&mut src), expected.clone());
        prop_assert_eq!(codec.decode_message(&mut src).map(|_| ()), Err(FrameError::TooLong { len, max }));
        prop_assert_eq!(src.capacity(), capacity);

        // The same prefix behind a valid frame: the frame comes out, then the refusal.
        let mut src = BytesMut::new();
        codec.encode(&[], &mut src).unwrap();
        src.extend_from_slice(&bytes);
        prop_assert_eq!(codec.decode(&mut src), Ok(Some(Bytes::new())));
        let capacity = src.capacity();
        prop_assert_eq!(codec.decode(&mut src), expected);
        prop_assert_eq!(src.capacity(), capacity);
    }

    /// A prefix within the limit but not yet satisfied makes the codec reserve at most what the
    /// limit allows (allowing for the allocator's doubling), never more.
    #[test]
    fn incomplete_frame_reserves_within_the_limit(
        max in 0..70_000usize,
        len_frac in 0.0..=1.0f64,
        have in 0..64usize,
    ) {
        let len = (max as f64 * len_frac) as usize;
        prop_assume!(have < len);
        let mut src = BytesMut::from(&(len as u32).to_be_bytes()[..]);
        src.extend_from_slice(&vec![b' '; have]);
        let before = src.capacity();
        prop_assert_eq!(FrameCodec::new(max).decode(&mut src), Ok(None));
        prop_assert!(src.capacity() <= 2 * before.max(LENGTH_PREFIX_LEN + max));
        prop_assert_eq!(src.len(), LENGTH_PREFIX_LEN + have);
    }
}

#[test]
fn deeply_nested_json_is_an_error_not_a_stack_overflow() {
    for open in ["[", "{\"a\":"] {
        let deep = open.repeat(200_000);
        assert!(matches!(ControlMessage::from_json(deep.as_bytes()), Err(FrameError::InvalidJson(_))));
        let inside = format!("{{\"type\":\"HELLO\",\"protocol_version\":1,\"client_name\":\"x\",\"extra\":{deep}");
        assert!(matches!(ControlMessage::from_json(inside.as_bytes()), Err(FrameError::InvalidJson(_))));
    }
}

#[test]
fn numbers_out_of_range_are_errors() {
    for json in [
        r#"{"type":"PING","nonce":18446744073709551616}"#,
        r#"{"type":"PING","nonce":-1}"#,
        r#"{"type":"PING","nonce":1.5}"#,
        r#"{"type":"HOST_CHANGED","host_id":4294967296}"#,
        r#"{"type":"WELCOME","protocol_version":1,"udp_port":65536,"server_name":"r"}"#,
        r#"{"type":"STATS_REPORT","report":{"rtt_ms":1e999,"loss":0,"jitter_ms":0,"fps_sent":0,"fps_received":0,"bitrate_in_kbps":0,"bitrate_out_kbps":0,"quality_level":0}}"#,
    ] {
        assert!(matches!(ControlMessage::from_json(json.as_bytes()), Err(FrameError::InvalidJson(_))), "{json}");
    }
}

#[test]
fn unknown_fields_are_ignored_so_peers_can_add_fields() {
    let msg = ControlMessage::from_json(br#"{"type":"PING","nonce":3,"future_field":[1,{"x":null}]}"#).unwrap();
    assert_eq!(msg, ControlMessage::Ping { nonce: 3 });
}

#[test]
fn file_frame_with_whitespace_before_json_is_refused_cleanly() {
    // The first byte picks the frame kind; JSON payloads must start with `{`.
    let err = FileFrame::decode(Bytes::from_static(b" {\"type\":\"LEAVE\"}")).unwrap_err();
    assert!(matches!(err, FrameError::InvalidBinary(_)));
}
