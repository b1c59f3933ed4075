//! Runs each fuzz target's body over valid encodings and a deterministic spray of damaged and
//! random inputs, on stable Rust, so the bodies are known to work before a fuzzer runs them.

use protocol::file::FileFrame;
use protocol::hop::{HopSecret, HopSender, HOP_SECRET_LEN};
use protocol::media::{AudioHeader, MediaKind, ReceiverReport, RefreshRanges, RttEcho, VideoHeader};
use protocol::screen::TileRun;
use protocol::{ControlMessage, FrameCodec, MediaPacket};

/// A small xorshift generator: deterministic inputs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn media_seeds() -> Vec<Vec<u8>> {
    let payload = [7u8; 640];
    let packets = [
        MediaPacket::VideoFragment {
            sender_id: 1,
            header: VideoHeader {
                frame_id: 2,
                capture_ts_us: 3,
                seq: 4,
                width: 640,
                height: 360,
                frag_index: 0,
                frag_count: 2,
            },
            payload: &payload[..100],
        },
        MediaPacket::Audio {
            sender_id: 1,
            header: AudioHeader { seq: 5, capture_ts_us: 6, sample_rate: 16_000, channels: 1 },
            sealed: &payload,
        },
        MediaPacket::Audio {
            sender_id: 1,
            header: AudioHeader { seq: 6, capture_ts_us: 7, sample_rate: 16_000, channels: 1 },
            sealed: &payload[..64],
        },
        MediaPacket::RttRequest { sender_id: 1, echo: RttEcho { echo_id: 7, sent_ts_us: 8 } },
        MediaPacket::RttReply { sender_id: 0, echo: RttEcho { echo_id: 7, sent_ts_us: 8 } },
        MediaPacket::ReceiverReport {
            sender_id: 0,
            report: ReceiverReport {
                source_id: 1,
                media: MediaKind::Video,
                loss_permille: 25,
                highest_seq: 9,
                cumulative_lost: 1,
                jitter_us: 1500,
                loss_runs: [0; 4],
            },
        },
        MediaPacket::Keepalive { sender_id: 1 },
        MediaPacket::ScreenFragment {
            sender_id: 1,
            header: VideoHeader {
                frame_id: 9,
                capture_ts_us: 3,
                seq: 1,
                width: 1920,
                height: 1080,
                frag_index: 0,
                frag_count: 1,
            },
            payload: &payload[..200],
        },
        MediaPacket::RefreshRequest {
            sender_id: 2,
            source_id: 1,
            ranges: RefreshRanges::new(&[TileRun { first: 0, count: 120 }, TileRun { first: 500, count: 3 }])
                .expect("two ranges"),
        },
    ];
    // Whole datagrams, as they travel: each packet sealed with a hop key.
    let hop = HopSender::new(HopSecret::new([1; HOP_SECRET_LEN]).to_relay());
    packets.iter().map(|p| hop.to_vec(p).unwrap()).collect()
}

fn control_seeds() -> Vec<Vec<u8>> {
    [
        ControlMessage::Hello { protocol_version: 1, client_name: "fuzz ✓".into() },
        ControlMessage::JoinRequest {
            code: "123456".into(),
            display_name: "Ada".into(),
            media_public_key: "0f".repeat(32),
        },
        ControlMessage::Admit { request_id: 4, media_key: "5a".repeat(68) },
        ControlMessage::ChatSend { text: "hi \"there\"\n".into(), client_msg_id: Some(3) },
        ControlMessage::FileDownload { session_token: "t".into(), file_id: 1, offset: 16384 },
        ControlMessage::Leave,
    ]
    .iter()
    .map(ControlMessage::to_json)
    .collect()
}

fn file_seeds() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        FileFrame::Data { seq: 1, offset: 0, data: bytes::Bytes::from_static(b"chunk") },
        FileFrame::Ack { seq: 1, received: 5 },
    ]
    .iter()
    .map(|f| f.encode().to_vec())
    .collect();
    v.extend(control_seeds());
    v
}

fn framed(payloads: &[Vec<u8>]) -> Vec<u8> {
    let codec = FrameCodec::new(usize::MAX >> 1);
    let mut wire = bytes::BytesMut::new();
    for p in payloads {
        codec.encode(p, &mut wire).unwrap();
    }
    // Limit selector 0 (the control limit), reads of 7 bytes.
    let mut data = vec![0, 7];
    data.extend_from_slice(&wire);
    data
}

/// Seeds, then each seed damaged many times, then random bytes.
fn spray(seeds: &[Vec<u8>], rng: &mut Rng, mut target: impl FnMut(&[u8])) {
    for s in seeds {
        target(s);
        for _ in 0..300 {
            let mut d = s.clone();
            for _ in 0..=rng.below(3) {
                match rng.below(4) {
                    0 if !d.is_empty() => {
                        let i = rng.below(d.len());
                        d[i] ^= 1 << rng.below(8);
                    }
                    1 if !d.is_empty() => {
                        let i = rng.below(d.len());
                        d[i] = rng.next() as u8;
                    }
                    2 => d.truncate(rng.below(d.len() + 1)),
                    _ => d.push(rng.next() as u8),
                }
            }
            target(&d);
        }
    }
    for _ in 0..2000 {
        let len = rng.below(300);
        let d: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        target(&d);
    }
}

#[test]
fn frame_codec_target() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let seeds = vec![framed(&control_seeds()), framed(&file_seeds()), vec![2, 1, 0xFF, 0xFF, 0xFF, 0xFF], vec![]];
    spray(&seeds, &mut rng, parlor_fuzz::frame_codec);
}

#[test]
fn control_json_target() {
    let mut rng = Rng(1);
    spray(&control_seeds(), &mut rng, parlor_fuzz::control_json);
}

#[test]
fn media_packet_target() {
    let mut rng = Rng(2);
    spray(&media_seeds(), &mut rng, parlor_fuzz::media_packet);
}

fn screen_slice_seeds() -> Vec<Vec<u8>> {
    use protocol::screen::{encode_slice, SliceHeader, TileSpan, RECENT_SPANS};
    let mut recent = [TileSpan::default(); RECENT_SPANS];
    recent[0] = TileSpan { first: 3, end: 9 };
    let header = SliceHeader { full: false, update_id: 7, slice_index: 1, slice_count: 2, recent };
    let mut slice = Vec::new();
    encode_slice(&header, &[TileRun { first: 120, count: 4 }, TileRun { first: 240, count: 2 }], &[0xff, 0xd8, 0xff, 0xe0], &mut slice);
    // 1920 x 1080, then the slice.
    let mut seed = vec![0x07, 0x7f, 0x04, 0x37];
    seed.extend_from_slice(&slice);
    vec![seed]
}

#[test]
fn screen_slice_target() {
    let mut rng = Rng(4);
    spray(&screen_slice_seeds(), &mut rng, parlor_fuzz::screen_slice);
}

#[test]
fn file_frame_target() {
    let mut rng = Rng(3);
    spray(&file_seeds(), &mut rng, parlor_fuzz::file_frame);
}
