//! Speech quality under loss with concealment alone, checked deterministically: the lab's
//! espeak-ng speech goes through the real jitter buffer and concealment (`protocol::jitter`)
//! with seeded 5% random loss and a little network jitter, with no redundant copies, and the
//! result is scored with PESQ wideband as the lab scores a call.
//!
//! Calls normally recover nearly every lost frame from the next packet's copy of it
//! (`scenario_audio_pesq.rs`); this is the floor for when that fails: bursts, the first second
//! of loss, a receiver the sender does not hear from. It must stay above the 3.0 target too.

mod speech;

use std::path::Path;
use std::time::{Duration, Instant};

use netlab::lab::pesq;
use protocol::jitter::{JitterBuffer, JitterConfig, Playout, FRAME_SAMPLES};
use rand::{rngs::StdRng, Rng, SeedableRng};

/// Copies of the speech scored per condition (one more is played, so the last is whole).
const LOOPS: usize = 4;

/// Plays `speech` (looped `LOOPS + 1` times) through a jitter buffer with random loss `loss`
/// and 10–14 ms one-way delay, and writes what the buffer plays, from its first real frame on.
fn play_through_loss(speech: &[i16], loss: f64, seed: u64, out: &Path) {
    let mut rng = StdRng::seed_from_u64(seed);
    let stream: Vec<i16> = speech.iter().copied().cycle().take(speech.len() * (LOOPS + 1)).collect();
    let frames: Vec<&[i16]> = stream.chunks_exact(FRAME_SAMPLES).collect();
    let mut arrivals = Vec::new();
    for k in 0..frames.len() as u32 {
        let jitter_us = rng.gen_range(0..4_000);
        if !rng.gen_bool(loss) {
            arrivals.push((Duration::from_micros(u64::from(k) * 20_000 + 10_000 + jitter_us), k));
        }
    }
    arrivals.sort();

    let mut wav = speech::recorder(out);
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let t0 = Instant::now();
    let mut pending = arrivals.into_iter().peekable();
    let mut started = false;
    let mut buf = [0i16; FRAME_SAMPLES];
    for tick in 0..frames.len() as u64 + 10 {
        let now = Duration::from_micros(tick * 20_000 + 5_000);
        while let Some((at, k)) = pending.next_if(|(at, _)| *at <= now) {
            jb.push(t0 + at, k, frames[k as usize]);
        }
        started |= jb.pop_into(t0 + now, &mut buf) == Playout::Normal;
        if started {
            for s in buf {
                wav.write_sample(s).expect("write the recording");
            }
        }
    }
    wav.finalize().expect("finish the recording");
}

#[test]
fn speech_through_5_percent_loss_scores_above_3() {
    let speech::Speech { dir, path: speech_path, samples: speech, python } = speech::prepare("concealment-pesq");

    let score = |loss: f64, seed: u64| {
        let recording = dir.join(format!("loss-{}pct-seed-{seed}.wav", (loss * 100.0) as u32));
        play_through_loss(&speech, loss, seed, &recording);
        let result = pesq::score(&python, &dir, &speech_path, &recording, 0.0, LOOPS).expect("PESQ score");
        println!("loss {loss}, seed {seed}: PESQ-WB {:.2?}", result.scores);
        assert_eq!(result.scores.len(), LOOPS, "every copy of the speech was found and scored");
        result.scores
    };
    let lossless = score(0.0, 1);
    let mean = |s: &[f64]| s.iter().sum::<f64>() / s.len() as f64;
    assert!(mean(&lossless) >= 4.5, "the lossless path should be transparent: PESQ {:.2}", mean(&lossless));
    // Four loss patterns of 4 copies each: a 10 s copy's score depends on which syllables
    // lose a frame, so one pattern alone says little.
    let lossy: Vec<f64> = (1..=4).flat_map(|seed| score(0.05, seed)).collect();
    let (mean5, worst5) = (mean(&lossy), lossy.iter().copied().fold(f64::INFINITY, f64::min));
    println!("5% loss: mean PESQ-WB {mean5:.2} over {} copies, worst {worst5:.2}", lossy.len());
    assert!(mean5 > 3.0, "speech through 5% loss scores {mean5:.2}, the target is above 3.0");
}
