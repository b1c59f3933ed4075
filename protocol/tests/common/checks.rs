//! Invariant checks for every decoder of untrusted input, shared by the `never_panics`
//! property tests and the libFuzzer targets in `fuzz/` (which include this file by path).
//!
//! Each function feeds bytes to one decoder and asserts that it either refuses them with its
//! typed error or returns something consistent: binary formats re-encode to exactly the bytes
//! they were decoded from, control messages survive a round trip. A panic here is a bug.
//! It uses only `protocol` and `bytes`, so it builds in both places.
#![allow(dead_code)]

use bytes::{Bytes, BytesMut};
use protocol::file::FileFrame;
use protocol::media::peek_header;
use protocol::{ControlMessage, FrameCodec, FrameError, MediaPacket};

/// Runs every decoder of the framing layer over `bytes`, fed in `chunk`-sized reads, and checks
/// what each returns is within its contract.
pub fn frame_codec(codec: &FrameCodec, bytes: &[u8], chunk: usize) {
    let mut raw = BytesMut::new();
    let mut msgs = BytesMut::new();
    let mut raw_dead = false;
    let mut msgs_dead = false;
    for piece in bytes.chunks(chunk.max(1)) {
        raw.extend_from_slice(piece);
        msgs.extend_from_slice(piece);
        while !raw_dead {
            match codec.decode(&mut raw) {
                Ok(Some(payload)) => assert!(payload.len() <= codec.max_frame_len()),
                Ok(None) => break,
                Err(e) => {
                    assert!(matches!(e, FrameError::TooLong { .. }), "decode only fails on length: {e:?}");
                    assert!(!e.is_recoverable());
                    raw_dead = true;
                }
            }
        }
        while !msgs_dead {
            match codec.decode_message(&mut msgs) {
                Ok(Some(msg)) => assert_eq!(ControlMessage::from_json(&msg.to_json()).as_ref(), Ok(&msg)),
                Ok(None) => break,
                Err(e) if e.is_recoverable() => {}
                Err(e) => {
                    assert!(matches!(e, FrameError::TooLong { .. }), "{e:?}");
                    msgs_dead = true;
                }
            }
        }
    }
    if !raw_dead {
        match codec.decode_eof(&mut raw) {
            Ok(None) => assert!(raw.is_empty()),
            Ok(Some(_)) => unreachable!("decode already took every whole frame"),
            Err(FrameError::Truncated { have, need }) => {
                assert_eq!(have, raw.len());
                assert!(have < need);
            }
            Err(e) => panic!("unexpected error at end of stream: {e:?}"),
        }
    }
}

/// `peek_header` over a datagram, the trailer check and `MediaPacket::decode` over the packet
/// before the trailer: never a panic; an accepted packet re-encodes to exactly its bytes
/// (every byte of the format is a checked field), and a header error is reported the same by
/// `peek_header` and `decode`. Whatever the bytes, a trailer check under a key they were not
/// sealed with fails as forged or too short, never anything else.
pub fn media(datagram: &[u8]) {
    use protocol::hop::{HopError, HopReceiver, HopSecret, HOP_SECRET_LEN, HOP_TRAILER_LEN};
    let peeked = peek_header(datagram);
    let unrelated = HopReceiver::new(HopSecret::new([0x33; HOP_SECRET_LEN]).to_relay());
    assert!(matches!(unrelated.verify(datagram), Err(HopError::Forged | HopError::TooShort)));
    let packet = &datagram[..datagram.len().saturating_sub(HOP_TRAILER_LEN)];
    match MediaPacket::decode(packet) {
        Ok(p) => {
            assert_eq!(peeked, Ok((p.kind(), p.sender_id())));
            assert_eq!(p.encoded_len(), packet.len());
            assert_eq!(p.to_vec().expect("a decoded packet re-encodes"), packet);
            sealed_body(&p);
        }
        Err(e) => {
            if let Err(pe) = peeked {
                assert_eq!(e, pe, "a header error is reported the same by both");
            }
        }
    }
}

/// What a client does with a decoded packet's sealed media: open it under a meeting key the
/// bytes were not sealed with (refused, never a panic, whatever the epoch, counter or length),
/// and read an audio body's plaintext layout from the same bytes (checked, never a panic).
fn sealed_body(packet: &MediaPacket<'_>) {
    use protocol::e2ee::{E2eeError, MediaOpener, MeetingKey};
    use protocol::media::AudioPayload;
    let (sender, body) = match *packet {
        MediaPacket::VideoFragment { sender_id, payload, .. }
        | MediaPacket::ScreenFragment { sender_id, payload, .. } => (sender_id, payload),
        MediaPacket::Audio { sender_id, sealed, header } => {
            if let Ok(p) = AudioPayload::decode(sealed, header.channels) {
                assert_eq!(p.encoded_len(), sealed.len());
            }
            (sender_id, sealed)
        }
        _ => return,
    };
    let mut opener = MediaOpener::new();
    opener.install(MeetingKey::from_bytes(1, [0x44; 32]));
    let mut out = Vec::new();
    let refused = opener.open(sender, b"aad", body, &mut out).expect_err("random bytes do not open");
    assert!(matches!(refused, E2eeError::TooShort | E2eeError::UnknownEpoch | E2eeError::Forged), "{refused:?}");
}

/// `FileFrame::decode` over `bytes`: binary frames it accepts re-encode to the same bytes,
/// control frames re-decode to the same message.
pub fn file_frame(bytes: &[u8]) {
    let payload = Bytes::copy_from_slice(bytes);
    match FileFrame::decode(payload) {
        Ok(FileFrame::Control(msg)) => {
            assert_eq!(bytes.first(), Some(&b'{'));
            assert_eq!(ControlMessage::from_json(&msg.to_json()), Ok(msg));
        }
        Ok(frame) => assert_eq!(&frame.encode()[..], bytes),
        Err(e) => assert!(e.is_recoverable(), "a bad payload never kills the stream: {e:?}"),
    }
}

/// `ControlMessage::from_json` over `bytes`: an accepted message survives a round trip.
pub fn control_json(bytes: &[u8]) {
    match ControlMessage::from_json(bytes) {
        Ok(msg) => assert_eq!(ControlMessage::from_json(&msg.to_json()), Ok(msg)),
        Err(e) => assert!(matches!(e, FrameError::NotUtf8 | FrameError::InvalidJson(_)), "{e:?}"),
    }
}

/// A screen slice (the plaintext of a sealed screen frame) of a picture whose size the first
/// four bytes give: `ScreenSlice::decode` never panics, and a slice it accepts has tiles inside
/// the grid, in increasing order, as many as its runs say, and encodes back to exactly its
/// bytes.
pub fn screen_slice(data: &[u8]) {
    use protocol::screen::{encode_slice, ScreenSlice, TileGrid, TileRun};
    let Some(size) = data.get(..4) else { return };
    let width = u32::from(u16::from_be_bytes([size[0], size[1]])) % 4000 + 1;
    let height = u32::from(u16::from_be_bytes([size[2], size[3]])) % 2300 + 1;
    let Ok(grid) = TileGrid::new(width, height) else { return };
    let bytes = &data[4..];
    let Ok(slice) = ScreenSlice::decode(bytes, &grid) else { return };
    let tiles: Vec<u32> = slice.tiles().collect();
    assert_eq!(tiles.len() as u32, slice.tile_count());
    assert!(tiles.windows(2).all(|w| w[0] < w[1]), "tiles in increasing order");
    assert!(tiles.iter().all(|t| *t < grid.tile_count()), "tiles inside the grid");
    let runs: Vec<TileRun> = slice.runs().collect();
    let mut again = Vec::new();
    encode_slice(&slice.header, &runs, slice.jpeg, &mut again);
    // The flags byte may carry bits the decoder ignores; everything else is a checked field.
    assert_eq!(again[1..], bytes[1..], "a decoded slice re-encodes to its bytes");
}
