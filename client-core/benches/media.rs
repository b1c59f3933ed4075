//! What video costs the engine: scaling, JPEG encode and decode at each quality level, and the
//! budget of a 4-party 480p meeting (each client encodes its own picture once and decodes the
//! three others, 20 times a second).
//!
//! It also measures what end-to-end encryption adds: sealing and opening one 480p frame and
//! one audio packet (`protocol::e2ee`); and what audio redundancy costs the sender and the
//! receiver: encoding the copies of a packet at depth 1 (µ-law) and 4 (ADPCM), and decoding one
//! copy of each encoding (`protocol::redundancy`).
//!
//! Run with `cargo bench -p client-core --bench media`. Besides criterion's per-operation
//! figures it prints the meeting budget as milliseconds of work per 50 ms frame interval and
//! as a share of one core.

use std::hint::black_box;
use std::time::{Duration, Instant};

use client_core::media::{DecodedFrame, RgbFrame, TestPattern, VideoDecoder, VideoEncoder, VideoSource};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

/// The quality ladder (`protocol::quality::LADDER`): name, size, JPEG quality.
const LADDER: [(&str, u16, u16, u8); 4] =
    [("144p", 256, 144, 40), ("240p", 426, 240, 50), ("360p", 640, 360, 60), ("480p", 854, 480, 70)];

fn pattern(width: u32, height: u32) -> RgbFrame {
    let mut frame = RgbFrame::default();
    TestPattern::new(width, height).next_frame(&mut frame).expect("pattern");
    frame
}

fn encoded(frame: &RgbFrame, width: u16, height: u16, quality: u8) -> Vec<u8> {
    let mut jpeg = Vec::new();
    VideoEncoder::new().encode(frame, width, height, quality, &mut jpeg).expect("encode");
    jpeg
}

/// Encode from a 480p picture (the test pattern's size in a meeting): the 480p level encodes
/// without scaling, the lower ones scale first.
fn encode(c: &mut Criterion) {
    let source = pattern(854, 480);
    let mut group = c.benchmark_group("encode_from_480p");
    for (name, w, h, q) in LADDER {
        let mut encoder = VideoEncoder::new();
        let mut jpeg = Vec::new();
        group.throughput(Throughput::Elements(1));
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| encoder.encode(black_box(&source), w, h, q, &mut jpeg).expect("encode"))
        });
    }
    group.finish();
}

/// Decode each level's JPEG to RGBA.
fn decode(c: &mut Criterion) {
    let source = pattern(854, 480);
    let mut group = c.benchmark_group("decode");
    for (name, w, h, q) in LADDER {
        let jpeg = encoded(&source, w, h, q);
        let mut decoder = VideoDecoder::new();
        let mut out = DecodedFrame::default();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| decoder.decode(black_box(&jpeg), &mut out).expect("decode"))
        });
    }
    group.finish();
}

/// Scaling alone (fast_image_resize, bilinear), from a 720p camera picture to each level.
fn scale(c: &mut Criterion) {
    let source = pattern(1280, 720);
    let mut group = c.benchmark_group("scale_from_720p");
    for (name, w, h, _) in LADDER {
        let mut encoder = VideoEncoder::new();
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| black_box(encoder.scale(black_box(&source), w, h).expect("scale").len()))
        });
    }
    group.finish();
}

/// One meeting frame interval for one client: encode its own 480p picture, decode three.
fn meeting(c: &mut Criterion) {
    let mut pattern_source = TestPattern::new(854, 480);
    let mut frame = RgbFrame::default();
    let mut encoder = VideoEncoder::new();
    let mut decoder = VideoDecoder::new();
    let mut own = Vec::new();
    let others: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            pattern_source.next_frame(&mut frame).expect("pattern");
            encoded(&frame, 854, 480, 70)
        })
        .collect();
    let mut outs = vec![DecodedFrame::default(); 3];
    let mut interval = |frame: &mut RgbFrame| {
        pattern_source.next_frame(frame).expect("pattern");
        encoder.encode(frame, 854, 480, 70, &mut own).expect("encode");
        for (jpeg, out) in others.iter().zip(outs.iter_mut()) {
            decoder.decode(jpeg, out).expect("decode");
        }
    };

    // The budget, measured directly over a couple of seconds so the figure printed is one a
    // reader can compare with the 50 ms interval.
    for _ in 0..10 {
        interval(&mut frame);
    }
    let runs = 100;
    let start = Instant::now();
    for _ in 0..runs {
        interval(&mut frame);
    }
    let per_interval = start.elapsed() / runs;
    let share = per_interval.as_secs_f64() / Duration::from_millis(50).as_secs_f64() * 100.0;
    println!(
        "\n4-party 480p meeting (draw + 1 encode + 3 decodes per frame): {:.2} ms per 50 ms frame interval \
         = {share:.1}% of one core at 20 fps\n",
        per_interval.as_secs_f64() * 1000.0
    );

    c.bench_function("meeting_480p_interval", |b| b.iter(|| interval(&mut frame)));
}

/// End-to-end sealing of what a client sends and opening of what it receives: a 480p frame
/// (a real JPEG of the test pattern) and an audio packet's body with and without its
/// redundant copy, as the capture threads seal them and the receive core opens them.
fn e2ee(c: &mut Criterion) {
    use protocol::e2ee::{MediaOpener, MediaSealer, MeetingKey};
    use protocol::media::{AudioCopy, AudioHeader, AudioPayload, CopyEncoding, VideoFrameMeta};

    let key = MeetingKey::from_bytes(1, [0x4d; 32]);
    let jpeg = encoded(&pattern(854, 480), 854, 480, 70);
    let meta = VideoFrameMeta {
        stream: protocol::media::VideoStream::Camera,
        sender_id: 7,
        frame_id: 1,
        capture_ts_us: 2,
        width: 854,
        height: 480,
    };
    let header = AudioHeader { seq: 1, capture_ts_us: 2, sample_rate: 16_000, channels: 1 };
    let (pcm, copy) = ([0x11u8; 640], [0x22u8; 320]);
    let mut audio = Vec::new();
    AudioPayload::plain(&pcm).encode_into(&mut audio).expect("audio");
    let mut audio_red = Vec::new();
    let mut with_copy = AudioPayload::plain(&pcm);
    with_copy.copies[0] = Some(AudioCopy { encoding: CopyEncoding::MuLaw, bytes: &copy });
    with_copy.encode_into(&mut audio_red).expect("audio");
    let (full, half) = ([0x33u8; 163], [0x44u8; 83]);
    let mut audio_deep = Vec::new();
    let mut deep = AudioPayload::plain(&pcm);
    deep.copies = [
        Some(AudioCopy { encoding: CopyEncoding::Adpcm, bytes: &full }),
        Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
        Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
        Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
    ];
    deep.encode_into(&mut audio_deep).expect("audio");

    let mut group = c.benchmark_group("e2ee");
    for (name, aad, plain) in [
        ("480p_frame", &meta.aad()[..], &jpeg[..]),
        ("audio_packet", &header.aad(7)[..], &audio[..]),
        ("audio_packet_with_copy", &header.aad(7)[..], &audio_red[..]),
        ("audio_packet_with_4_copies", &header.aad(7)[..], &audio_deep[..]),
    ] {
        group.throughput(Throughput::Bytes(plain.len() as u64));
        let mut sealer = MediaSealer::new(7);
        sealer.set_key(&key).expect("key");
        let mut sealed = Vec::new();
        group.bench_function(BenchmarkId::new("seal", name), |b| {
            b.iter(|| sealer.seal(black_box(aad), black_box(plain), &mut sealed).expect("seal"))
        });
        // Opening needs a fresh counter each time (a replay is refused): each sample seals its
        // bodies first, untimed, then times opening them in order with one warm opener.
        let mut opener = MediaOpener::new();
        opener.install(key.clone());
        let mut opened = Vec::new();
        group.bench_function(BenchmarkId::new("open", name), |b| {
            b.iter_custom(|iters| {
                let bodies: Vec<Vec<u8>> = (0..iters)
                    .map(|_| {
                        let mut body = Vec::new();
                        sealer.seal(aad, plain, &mut body).expect("seal");
                        body
                    })
                    .collect();
                let start = Instant::now();
                for body in &bodies {
                    opener.open(7, black_box(aad), body, &mut opened).expect("open");
                }
                start.elapsed()
            })
        });
    }
    group.finish();
}

/// Audio redundancy: the sender encodes the copies of every packet; a receiver decodes a copy
/// only for a frame it lost.
fn redundancy(c: &mut Criterion) {
    use protocol::jitter::FRAME_SAMPLES;
    use protocol::media::{AudioCopy, CopyEncoding};
    use protocol::redundancy::{decode_copy, encode_copy, RedundantCopies};

    let speechy: [i16; FRAME_SAMPLES] = std::array::from_fn(|i| ((i as f64 * 0.07).sin() * 9000.0) as i16);
    let mut copies = RedundantCopies::default();
    for _ in 0..4 {
        copies.sent(&speechy);
    }
    let mut group = c.benchmark_group("redundancy");
    for depth in [1, 4] {
        group
            .bench_function(BenchmarkId::new("prepare_copies", depth), |b| b.iter(|| copies.prepare(black_box(depth))));
    }
    for encoding in [CopyEncoding::MuLaw, CopyEncoding::Adpcm, CopyEncoding::AdpcmHalfRate] {
        let mut bytes = Vec::new();
        encode_copy(encoding, &speechy, &mut bytes);
        let copy = AudioCopy { encoding, bytes: &bytes };
        let mut out = [0i16; FRAME_SAMPLES];
        group.bench_function(BenchmarkId::new("decode_copy", format!("{encoding:?}")), |b| {
            b.iter(|| decode_copy(black_box(&copy), &mut out))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = encode, decode, scale, meeting, e2ee, redundancy
}
criterion_main!(benches);
