//! Keeps `docs/protocol.md` true to the code.
//!
//! - Every ```` ```json ```` block must decode as a [`ControlMessage`] and re-encode to the same
//!   JSON value; every message type must have at least one such example and a `#### TYPE`
//!   section.
//! - Every ```` ```hex ```` block must decode, as a media datagram (if it starts with the `PR`
//!   magic) or as one length-prefixed file-connection frame, and re-encode to the same bytes;
//!   every media packet kind and both binary file frames must have an example.
//! - Every enum value and error code, and the numeric limits a client implementer relies on,
//!   must appear in the document as the code defines them.

mod common;

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use protocol::control::{
    JoinRefusal, KnockWithdrawal, LeaveReason, MediaDevice, Reaction, Role, UploadStopReason, MAX_CHAT_CHARS,
    MAX_DISPLAY_NAME_CHARS,
};
use protocol::e2ee::{
    open_meeting_key, safety_code, MediaIdentity, MediaOpener, MeetingKey, KEY_BLOB_INFO, SAFETY_CODE_INFO,
    SEALED_MEETING_KEY_LEN, SEAL_OVERHEAD, SENDER_KEY_INFO,
};
use protocol::file::{FileFrame, DEFAULT_CHUNK_SIZE, MAX_CHUNK_SIZE, MAX_FILE_FRAME_LEN};
use protocol::framing::DEFAULT_MAX_FRAME_LEN;
use protocol::hop::{HopSecret, EXPORTER_LABEL, HOP_TRAILER_LEN};
use protocol::media::{
    AudioPayload, VideoFrameMeta, VideoStream, AUDIO_AAD_LEN, AUDIO_HEADER_LEN, COMMON_HEADER_LEN, MAX_DATAGRAM_LEN,
    MAX_VIDEO_FRAGMENT_PAYLOAD, VIDEO_AAD_LEN, VIDEO_HEADER_LEN,
};
use protocol::replay::REPLAY_WINDOW;
use protocol::screen::{ScreenSlice, TileGrid};
use protocol::{ControlMessage, FrameCodec, MediaPacket, PROTOCOL_VERSION};
use serde_json::Value;

const DOC_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/protocol.md");

fn doc() -> String {
    std::fs::read_to_string(DOC_PATH).unwrap_or_else(|e| panic!("cannot read {DOC_PATH}: {e}"))
}

/// A fenced code block: its info string, the line its body starts on (1-based) and its body.
struct Block {
    lang: String,
    line: usize,
    body: String,
}

/// The fenced blocks of a Markdown document (``` fences only, which is all the doc uses).
fn fenced_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block { lang: info.trim().to_string(), line: i + 2, body: String::new() });
                }
            }
            Some(mut block) => {
                if trimmed.starts_with("```") {
                    blocks.push(block);
                } else {
                    block.body.push_str(line);
                    block.body.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    assert!(open.is_none(), "unclosed code fence in {DOC_PATH}");
    blocks
}

fn parse_hex(block: &Block) -> Vec<u8> {
    block
        .body
        .split_whitespace()
        .map(|h| u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("line {}: {h:?} is not a hex byte", block.line)))
        .collect()
}

#[test]
fn every_json_example_is_a_valid_message_and_round_trips() {
    let text = doc();
    let mut types = BTreeSet::new();
    let mut count = 0;
    for block in fenced_blocks(&text).into_iter().filter(|b| b.lang == "json") {
        count += 1;
        let msg = ControlMessage::from_json(block.body.as_bytes())
            .unwrap_or_else(|e| panic!("json example at line {}: {e}\n{}", block.line, block.body));
        let example: Value = serde_json::from_str(&block.body).unwrap();
        let reencoded: Value = serde_json::from_slice(&msg.to_json()).unwrap();
        assert_eq!(
            reencoded, example,
            "json example at line {} does not re-encode to itself (extra, missing or null fields?)",
            block.line
        );
        types.insert(msg.type_name());
    }
    assert!(count > 0, "no json examples found");

    let missing: Vec<&str> =
        common::one_of_each().iter().map(ControlMessage::type_name).filter(|t| !types.contains(t)).collect();
    assert!(missing.is_empty(), "message types without a json example in docs/protocol.md: {missing:?}");
}

#[test]
fn every_message_type_has_a_section_and_a_row_in_the_reference_table() {
    let text = doc();
    for msg in common::one_of_each() {
        let name = msg.type_name();
        assert!(text.lines().any(|l| l.trim() == format!("#### {name}")), "no `#### {name}` section");
        let row = format!("| [`{name}`](#{}) |", name.to_ascii_lowercase());
        assert!(text.contains(&row), "no row {row} in the message table");
    }
}

#[test]
fn every_hex_example_decodes_and_re_encodes_exactly() {
    let text = doc();
    let mut media_kinds = BTreeSet::new();
    let mut file_frames = BTreeSet::new();
    for block in fenced_blocks(&text).into_iter().filter(|b| b.lang == "hex") {
        let bytes = parse_hex(&block);
        if bytes.starts_with(b"PR") {
            // A whole datagram: its trailer verifies under the document's example secret
            // (one direction's key or the other's), the packet before it decodes, and the
            // packet re-encoded and sealed with the same sequence number gives the same bytes.
            let secret = HopSecret::new(std::array::from_fn(|i| i as u8));
            let keys = [secret.to_relay(), secret.from_relay()];
            let (key, seq) = keys
                .iter()
                .find_map(|k| k.verify(&bytes).ok().map(|seq| (k, seq)))
                .unwrap_or_else(|| panic!("hex example at line {}: trailer does not verify", block.line));
            let packet_bytes = &bytes[..bytes.len() - HOP_TRAILER_LEN];
            let packet = MediaPacket::decode(packet_bytes)
                .unwrap_or_else(|e| panic!("hex example at line {}: not a media packet: {e}", block.line));
            let mut again = packet.to_vec().unwrap();
            again.resize(again.len() + HOP_TRAILER_LEN, 0);
            key.seal(&mut again, seq).unwrap();
            assert_eq!(again, bytes, "hex example at line {}", block.line);
            media_kinds.insert(packet.kind() as u8);
        } else {
            let codec = FrameCodec::new(MAX_FILE_FRAME_LEN);
            let mut src = BytesMut::from(&bytes[..]);
            let payload: Bytes = codec
                .decode(&mut src)
                .unwrap_or_else(|e| panic!("hex example at line {}: {e}", block.line))
                .unwrap_or_else(|| panic!("hex example at line {}: incomplete frame", block.line));
            assert!(src.is_empty(), "hex example at line {}: bytes after the frame", block.line);
            let frame = FileFrame::decode(payload.clone())
                .unwrap_or_else(|e| panic!("hex example at line {}: {e}", block.line));
            if !matches!(frame, FileFrame::Control(_)) {
                assert_eq!(frame.encode(), payload, "hex example at line {}", block.line);
            }
            file_frames.insert(match frame {
                FileFrame::Control(_) => "JSON",
                FileFrame::Data { .. } => "DATA",
                FileFrame::Ack { .. } => "ACK",
            });
        }
    }
    assert_eq!(media_kinds, (1..=8).collect(), "a media packet kind has no hex example");
    assert!(file_frames.contains("DATA") && file_frames.contains("ACK"), "DATA and ACK need hex examples");
}

/// The JSON form of one of the protocol's string enums: `"VALUE"`.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("enums serialize")
}

#[test]
fn every_enum_value_and_error_code_is_documented() {
    let text = doc();
    let mut values: Vec<String> = common::ALL_ERROR_CODES.iter().map(json).collect();
    values.extend(
        [LeaveReason::Left, LeaveReason::Disconnected, LeaveReason::TimedOut, LeaveReason::Removed].iter().map(json),
    );
    values.extend(
        [UploadStopReason::Disconnected, UploadStopReason::HashMismatch, UploadStopReason::Refused].iter().map(json),
    );
    values.extend(
        [
            JoinRefusal::Denied,
            JoinRefusal::Expired,
            JoinRefusal::MeetingEnded,
            JoinRefusal::MeetingFull,
            JoinRefusal::Locked,
        ]
        .iter()
        .map(json),
    );
    values.extend(
        [
            KnockWithdrawal::Cancelled,
            KnockWithdrawal::Expired,
            KnockWithdrawal::Disconnected,
            KnockWithdrawal::Answered,
        ]
        .iter()
        .map(json),
    );
    values.extend([Role::Host, Role::CoHost, Role::Participant].iter().map(json));
    values.extend([MediaDevice::Mic, MediaDevice::Camera].iter().map(json));
    for v in values {
        // Each value is a row of its table: | `"VALUE"` | meaning |
        let cell = format!("| `{v}` |");
        assert!(text.contains(&cell), "{cell} missing from docs/protocol.md");
    }
    for reaction in Reaction::ALL {
        // The reactions' table shows each value with the emoji a client shows for it.
        let row = format!("| `{}` | {} |", json(&reaction), reaction.emoji());
        assert!(text.contains(&row), "{row} missing from docs/protocol.md");
    }
}

/// Formats `n` the way the document writes numbers: 65536 → "65,536".
fn with_commas(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn the_documented_limits_are_the_code_s() {
    let text = doc();
    let must_mention = [
        (format!("version {PROTOCOL_VERSION}"), "protocol version"),
        (format!("{} bytes** (64 KiB)", with_commas(DEFAULT_MAX_FRAME_LEN)), "control frame limit"),
        (format!("{} bytes** (the largest chunk, 256 KiB", with_commas(MAX_FILE_FRAME_LEN)), "file frame limit"),
        (format!("payload limit is {} bytes", with_commas(MAX_FILE_FRAME_LEN)), "file frame limit (§7.1)"),
        (format!("at most {}", with_commas(MAX_CHUNK_SIZE as usize)), "largest chunk"),
        (format!("{} bytes (announced", with_commas(DEFAULT_CHUNK_SIZE as usize)), "chunk size"),
        (format!("exceeds **{} bytes**", with_commas(MAX_DATAGRAM_LEN)), "datagram size"),
        (format!("{}-byte common header", COMMON_HEADER_LEN), "common header"),
        (format!("{HOP_TRAILER_LEN}-byte authentication trailer"), "trailer"),
        (format!("replay window of {} sequence numbers", with_commas(REPLAY_WINDOW as usize)), "replay window"),
        (format!("label `{}`", String::from_utf8_lossy(EXPORTER_LABEL)), "exporter label"),
        (
            format!(
                "Header {} bytes; payload at most {} bytes",
                VIDEO_HEADER_LEN,
                with_commas(MAX_VIDEO_FRAGMENT_PAYLOAD)
            ),
            "video header",
        ),
        (format!("Header {} bytes.", AUDIO_HEADER_LEN), "audio header"),
        (format!("1 to {} characters", with_commas(MAX_CHAT_CHARS)), "chat length"),
        (format!("1 to {MAX_DISPLAY_NAME_CHARS} characters"), "display name length"),
        ("320 samples = 640 bytes".to_string(), "audio frame"),
        (format!("replay window of {} counters", with_commas(REPLAY_WINDOW as usize)), "end-to-end replay window"),
        (format!("{SEALED_MEETING_KEY_LEN} bytes, written as {} hex digits", 2 * SEALED_MEETING_KEY_LEN), "key blob"),
        (format!("`{}`", String::from_utf8_lossy(KEY_BLOB_INFO)), "key blob HKDF info"),
        (format!("`{}`", String::from_utf8_lossy(SENDER_KEY_INFO)), "sender key HKDF info"),
        (format!("`{}`", String::from_utf8_lossy(SAFETY_CODE_INFO)), "safety code prefix"),
        (format!("video ({VIDEO_AAD_LEN} bytes)"), "video associated data"),
        (format!("audio ({AUDIO_AAD_LEN} bytes)"), "audio associated data"),
        (format!("({SEAL_OVERHEAD} bytes more;"), "sealing overhead"),
    ];
    let missing: Vec<String> = must_mention
        .iter()
        .filter(|(needle, _)| !text.contains(needle.as_str()))
        .map(|(needle, what)| format!("the {what} as {needle:?}"))
        .collect();
    assert!(missing.is_empty(), "docs/protocol.md should state:\n{}", missing.join("\n"));
}

/// The example keys of §6.10: Ada and Grace from their private keys, the meeting keys of epochs
/// 1 and 2.
fn example_identity(first: u8) -> MediaIdentity {
    MediaIdentity::from_private_bytes(&std::array::from_fn(|i| first + i as u8)).unwrap()
}

fn example_key(epoch: u32) -> MeetingKey {
    let first = if epoch == 1 { 0x40 } else { 0x60 };
    MeetingKey::from_bytes(epoch, std::array::from_fn(|i| first + i as u8))
}

/// The end-to-end examples are real: the public keys are the example private keys', the sealed
/// keys open for Grace from Ada to the example meeting keys, the safety codes are what the
/// code computes, and the media examples open under the key of epoch 1.
#[test]
fn the_end_to_end_examples_open_with_the_documented_keys() {
    let text = doc();
    let (ada, grace) = (example_identity(0xa0), example_identity(0xc0));
    let mut seen = BTreeSet::new();
    for block in fenced_blocks(&text).into_iter().filter(|b| b.lang == "json") {
        let msg = ControlMessage::from_json(block.body.as_bytes()).unwrap();
        let line = block.line;
        match msg {
            ControlMessage::CreateMeeting { media_public_key, .. } => {
                assert_eq!(media_public_key, ada.public().to_hex(), "line {line}");
            }
            ControlMessage::JoinRequest { media_public_key, .. } | ControlMessage::Knock { media_public_key, .. } => {
                assert_eq!(media_public_key, grace.public().to_hex(), "line {line}");
            }
            ControlMessage::Admit { media_key, .. }
            | ControlMessage::Joined(protocol::control::MeetingWelcome { media_key: Some(media_key), .. }) => {
                assert_eq!(open_meeting_key(&grace, &ada.public(), &media_key), Ok(example_key(1)), "line {line}");
            }
            ControlMessage::MediaKey { media_key, .. } => {
                assert_eq!(open_meeting_key(&grace, &ada.public(), &media_key), Ok(example_key(2)), "line {line}");
            }
            ControlMessage::MediaKeys { keys } => {
                for k in keys {
                    assert_eq!(open_meeting_key(&grace, &ada.public(), &k.media_key), Ok(example_key(2)));
                }
            }
            _ => continue,
        }
        seen.insert(msg_name(&block.body));
    }
    assert_eq!(seen.len(), 7, "examples checked: {seen:?}");

    let roster = [(1, ada.public()), (2, grace.public())].into_iter().collect();
    for epoch in [1, 2] {
        let code = safety_code(&example_key(epoch), &roster);
        assert!(text.contains(&format!("epoch {epoch} `{code}`")), "safety code of epoch {epoch} is {code}");
    }

    let mut opener = MediaOpener::new();
    opener.install(example_key(1));
    let mut opened = Vec::new();
    let (mut video, mut audio, mut screen) = (0, 0, 0);
    for block in fenced_blocks(&text).into_iter().filter(|b| b.lang == "hex") {
        let bytes = parse_hex(&block);
        if !bytes.starts_with(b"PR") {
            continue;
        }
        match MediaPacket::decode(&bytes[..bytes.len() - HOP_TRAILER_LEN]).unwrap() {
            MediaPacket::VideoFragment { sender_id, header, payload } => {
                let meta = VideoFrameMeta {
                    stream: VideoStream::Camera,
                    sender_id,
                    frame_id: header.frame_id,
                    capture_ts_us: header.capture_ts_us,
                    width: header.width,
                    height: header.height,
                };
                opener.open(sender_id, &meta.aad(), payload, &mut opened).unwrap();
                assert!(opened.starts_with(&[0xff, 0xd8, 0xff]), "line {}: not a JPEG", block.line);
                video += 1;
            }
            MediaPacket::ScreenFragment { sender_id, header, payload } => {
                let meta = VideoFrameMeta {
                    stream: VideoStream::Screen,
                    sender_id,
                    frame_id: header.frame_id,
                    capture_ts_us: header.capture_ts_us,
                    width: header.width,
                    height: header.height,
                };
                opener.open(sender_id, &meta.aad(), payload, &mut opened).unwrap();
                let grid = TileGrid::new(header.width.into(), header.height.into()).unwrap();
                let slice = ScreenSlice::decode(&opened, &grid).unwrap();
                assert_eq!(slice.tiles().collect::<Vec<_>>(), [1234, 1235], "line {}", block.line);
                assert!(slice.jpeg.starts_with(&[0xff, 0xd8, 0xff]), "line {}: not a JPEG", block.line);
                screen += 1;
            }
            MediaPacket::Audio { sender_id, header, sealed } => {
                opener.open(sender_id, &header.aad(sender_id), sealed, &mut opened).unwrap();
                let payload = AudioPayload::decode(&opened, header.channels).unwrap();
                assert_eq!(payload.pcm, [0x00, 0x00, 0x03, 0xe8, 0xfc, 0x18, 0x7f, 0xff], "line {}", block.line);
                audio += 1;
            }
            _ => {}
        }
    }
    assert_eq!((video, audio, screen), (1, 2, 1));
}

/// The `"type"` of a JSON example.
fn msg_name(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    v["type"].as_str().unwrap_or_default().to_string()
}
