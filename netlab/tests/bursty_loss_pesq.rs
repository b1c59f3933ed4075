//! Speech through bursty loss, checked deterministically: the lab's espeak-ng speech is sent as
//! Parlor's audio packets (`protocol::media::AudioPayload` with `protocol::redundancy` copies)
//! through seeded Gilbert–Elliott loss (5%, mean burst 3 packets) and 10–14 ms of one-way delay,
//! and played by the real jitter buffer, which rebuilds lost frames from the copies a later
//! packet carries. Once a second the receiver's report (its loss and loss runs,
//! `protocol::estimators::LossEstimator`) reaches the sender's `AudioRedundancy`, as in a call.
//!
//! The direction this checks: with the depth chosen from the reported bursts, the sender goes
//! above one copy, and speech scores higher (PESQ wideband, as the lab scores a call) than with
//! the depth held at one copy, the format of version 9. Figures from the real call path are in
//! BENCHMARKS.md (`parlor-lab audio-pesq`).

mod speech;

use std::path::Path;
use std::time::{Duration, Instant};

use netlab::impair::LossModel;
use netlab::lab::pesq;
use protocol::estimators::LossEstimator;
use protocol::jitter::{JitterBuffer, JitterConfig, Playout, FRAME_SAMPLES};
use protocol::media::AudioPayload;
use protocol::redundancy::{self, AudioRedundancy, RedundancyConfig, RedundantCopies};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Copies of the speech scored per run (one more is played, so the last is whole).
const LOOPS: usize = 4;

/// How the sender picks its depth.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Depth {
    /// From the receiver's reports, as Parlor does.
    Reported,
    /// One copy whenever loss is reported (version 9).
    AtMostOne,
}

/// What one run did.
struct Run {
    max_depth: usize,
    recovered: u64,
    concealed: u64,
}

/// Gilbert–Elliott loss: bad with probability `to_bad` per packet from good, good again with
/// `to_good` from bad; every packet in the bad state is lost.
struct GilbertElliott {
    bad: bool,
    to_bad: f64,
    to_good: f64,
}

impl GilbertElliott {
    /// Mean loss `loss`, mean burst `burst` packets: the lab's parameters
    /// ([`LossModel::bursty`]).
    fn new(loss: f64, burst: f64) -> Self {
        let LossModel::GilbertElliott { p_good_to_bad, p_bad_to_good, .. } = LossModel::bursty(loss, burst) else {
            unreachable!("bursty loss is Gilbert–Elliott")
        };
        Self { bad: false, to_bad: p_good_to_bad, to_good: p_bad_to_good }
    }

    fn lost(&mut self, rng: &mut StdRng) -> bool {
        self.bad = if self.bad { !rng.gen_bool(self.to_good) } else { rng.gen_bool(self.to_bad) };
        self.bad
    }
}

/// Sends `speech` (looped `LOOPS + 1` times) as audio packets through bursty loss to a jitter
/// buffer and writes what it plays, from its first real frame on.
fn play_through_bursts(speech: &[i16], depth: Depth, seed: u64, out: &Path) -> Run {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut channel = GilbertElliott::new(0.05, 3.0);
    let stream: Vec<i16> = speech.iter().copied().cycle().take(speech.len() * (LOOPS + 1)).collect();
    let frames: Vec<[i16; FRAME_SAMPLES]> =
        stream.chunks_exact(FRAME_SAMPLES).map(|c| c.try_into().expect("a whole frame")).collect();

    let t0 = Instant::now();
    let mut policy = AudioRedundancy::new(RedundancyConfig::default());
    let mut copies = RedundantCopies::default();
    let mut loss = LossEstimator::new();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let mut wav = speech::recorder(out);
    // Packets in flight: (arrival, seq, encoded payload).
    let mut in_flight: Vec<(Duration, u32, Vec<u8>)> = Vec::new();
    let (mut started, mut max_depth) = (false, 0);
    let mut pcm = [0u8; FRAME_SAMPLES * 2];
    let mut buf = [0i16; FRAME_SAMPLES];
    for tick in 0..frames.len() as u64 + 20 {
        let now = Duration::from_micros(tick * 20_000);
        // The sender: one packet per 20 ms, with the copies its policy asks for.
        if let Some(frame) = frames.get(tick as usize) {
            let depth = match depth {
                Depth::Reported => policy.depth(t0 + now),
                Depth::AtMostOne => policy.depth(t0 + now).min(1),
            };
            max_depth = max_depth.max(depth);
            copies.prepare(depth);
            for (b, s) in pcm.chunks_exact_mut(2).zip(frame) {
                b.copy_from_slice(&s.to_be_bytes());
            }
            let mut body = Vec::new();
            AudioPayload { pcm: &pcm, copies: copies.copies() }.encode_into(&mut body).expect("encode");
            copies.sent(frame);
            if !channel.lost(&mut rng) {
                let delay = Duration::from_micros(10_000 + rng.gen_range(0..4_000));
                in_flight.push((now + delay, tick as u32, body));
            }
        }
        // The receiver: what arrived by now, then one frame of playout 5 ms later.
        in_flight.sort_by_key(|p| p.0);
        let arrived = in_flight.iter().take_while(|p| p.0 <= now + Duration::from_millis(5)).count();
        for (at, seq, body) in in_flight.drain(..arrived) {
            loss.on_packet(seq);
            let payload = AudioPayload::decode(&body, 1).expect("decode");
            let mut samples = [0i16; FRAME_SAMPLES];
            for (s, b) in samples.iter_mut().zip(payload.pcm.chunks_exact(2)) {
                *s = i16::from_be_bytes([b[0], b[1]]);
            }
            jb.set_recovery_horizon(payload.depth());
            jb.push(t0 + at, seq, &samples);
            for (i, copy) in payload.copies.iter().flatten().enumerate() {
                let earlier = seq.wrapping_sub(1 + i as u32);
                if jb.would_recover(earlier) && redundancy::decode_copy(copy, &mut samples).is_some() {
                    jb.push_recovered(earlier, &samples);
                }
            }
        }
        started |= jb.pop_into(t0 + now + Duration::from_millis(5), &mut buf) == Playout::Normal;
        if started {
            for s in buf {
                wav.write_sample(s).expect("write the recording");
            }
        }
        // Once a second the receiver reports; the sender hears it a round trip later (~30 ms).
        if tick % 50 == 49 {
            let interval = loss.take_interval();
            policy.on_report(t0 + now + Duration::from_millis(30), interval.fraction, interval.loss_runs);
        }
    }
    wav.finalize().expect("finish the recording");
    let s = jb.stats();
    Run { max_depth, recovered: s.recovered_frames, concealed: s.concealed_frames }
}

#[test]
fn copies_sized_to_the_reported_bursts_beat_a_single_copy() {
    let speech::Speech { dir, path: speech_path, samples: speech, python } = speech::prepare("bursty-loss-pesq");

    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    let mut means = Vec::new();
    let mut rebuilt = Vec::new();
    for depth in [Depth::AtMostOne, Depth::Reported] {
        let (mut scores, mut recovered, mut concealed) = (Vec::new(), 0, 0);
        for seed in 1..=3 {
            let recording = dir.join(format!("{depth:?}-seed-{seed}.wav"));
            let run = play_through_bursts(&speech, depth, seed, &recording);
            let result = pesq::score(&python, &dir, &speech_path, &recording, 0.0, LOOPS).expect("PESQ score");
            println!(
                "{depth:?}, seed {seed}: depth up to {}, {} frames recovered, {} concealed, PESQ-WB {:.2?}",
                run.max_depth, run.recovered, run.concealed, result.scores
            );
            assert_eq!(result.scores.len(), LOOPS, "every copy of the speech was found and scored");
            match depth {
                Depth::AtMostOne => assert_eq!(run.max_depth, 1, "loss turns one copy on"),
                Depth::Reported => assert!(run.max_depth > 1, "bursts call for more than one copy"),
            }
            scores.extend(result.scores);
            recovered += run.recovered;
            concealed += run.concealed;
        }
        println!("{depth:?}: mean PESQ-WB {:.2}, {recovered} frames recovered, {concealed} concealed", mean(&scores));
        means.push(mean(&scores));
        rebuilt.push((recovered, concealed));
    }
    let ((one_recovered, one_concealed), (deep_recovered, deep_concealed)) = (rebuilt[0], rebuilt[1]);
    assert!(
        deep_recovered * 2 > one_recovered * 3 && deep_concealed * 3 < one_concealed * 2,
        "copies sized to the bursts rebuild half again as many frames and conceal a third fewer: \
         {deep_recovered} vs {one_recovered} recovered, {deep_concealed} vs {one_concealed} concealed"
    );
    assert!(
        means[1] > means[0],
        "copies sized to the bursts should score higher than one copy: {:.2} vs {:.2}",
        means[1],
        means[0]
    );
}
