//! The voice-processing figures of BENCHMARKS.md: echo cancellation, noise suppression, their
//! cost and the delay they add, on made signals (espeak-ng speech, sox noise, a simulated
//! room), through the engine's own `VoiceProcessor`.
//!
//! Run with `cargo bench -p client-core --bench voice_processing` (needs espeak-ng, sox and
//! python3-venv; the PESQ environment is the network lab's). It prints one table a measure:
//!
//! - **Echo**: the far end talks alone for 8 s, then the near end talks over it; the
//!   microphone hears the far end through a room (direct path after 40, 120 and 200 ms, a
//!   200 ms tail, -6 dB). ERLE over the far-end-only talk after 2 s of convergence; PESQ-WB
//!   of the near end during the double talk, processed and as captured.
//! - **Noise**: the far-end sentence in pink and brown noise at 5 and 10 dB SNR; PESQ-WB
//!   before and after suppression, and the noise left in the pause after the speech.
//! - **Cost**: processor time per second of audio, the whole chain with the canceller busy.
//! - **Delay**: the lag at which the output lines up with the input.

#[path = "../tests/voice_lab/mod.rs"]
mod voice_lab;

use std::time::Instant;

use client_core::media::{EchoPath, VoiceSettings};

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

fn describe(s: VoiceSettings) -> String {
    format!("aec {} ns {} agc {}", on_off(s.echo_cancellation), on_off(s.noise_suppression), on_off(s.gain_control))
}

fn main() {
    let signals = voice_lab::prepare("bench");
    let aec_only = VoiceSettings { echo_cancellation: true, ..VoiceSettings::OFF };
    let ns_only = VoiceSettings { noise_suppression: true, ..VoiceSettings::OFF };

    println!("== Echo (far end alone 8 s, then double talk; room tail 200 ms, -6 dB)");
    println!(
        "{:<22} {:>9} {:>10} {:>10} {:>12} {:>10}",
        "chain", "delay_ms", "erle_db", "pesq_dt", "pesq_as_is", "est_ms"
    );
    for settings in [aec_only, VoiceSettings::ALL_ON] {
        let mut erle = Vec::new();
        let mut pesq = Vec::new();
        for delay_ms in [40, 120, 200] {
            let path = EchoPath { delay_ms, tail_ms: 200, gain_db: -6 };
            let f = voice_lab::echo_run(&signals, path, settings, 8.0);
            println!(
                "{:<22} {:>9} {:>10.1} {:>10.2} {:>12.2} {:>10}",
                describe(settings),
                delay_ms,
                f.erle_db,
                f.pesq_double_talk,
                f.pesq_unprocessed,
                f.estimated_delay_ms.map_or_else(|| "na".into(), |d| d.to_string())
            );
            erle.push(f.erle_db);
            pesq.push(f.pesq_double_talk);
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        println!("{:<22} {:>9} {:>10.1} {:>10.2}", describe(settings), "mean", mean(&erle), mean(&pesq));
    }

    println!();
    println!("== Noise (the far-end sentence in noise)");
    println!(
        "{:<22} {:<11} {:>7} {:>11} {:>14} {:>9} {:>15}",
        "chain", "noise", "snr_db", "pesq_noisy", "pesq_processed", "gain", "pause_noise_db"
    );
    for colour in ["pinknoise", "brownnoise"] {
        let noise = voice_lab::noise(&signals, colour, 8.0);
        for settings in [ns_only, VoiceSettings::ALL_ON] {
            for snr_db in [5.0, 10.0] {
                let f = voice_lab::noise_run(&signals, &noise, colour, snr_db, settings);
                println!(
                    "{:<22} {:<11} {:>7.0} {:>11.2} {:>14.2} {:>+9.2} {:>15.1}",
                    describe(settings),
                    colour,
                    snr_db,
                    f.pesq_noisy,
                    f.pesq_processed,
                    f.pesq_processed - f.pesq_noisy,
                    f.pause_noise_db
                );
            }
        }
    }

    println!();
    println!("== Cost (processor time per second of audio, one core)");
    let seconds = 30usize;
    let len = seconds * 16_000;
    let far: Vec<i16> = signals.far.iter().copied().cycle().take(len).collect();
    let mut mic = vec![0i16; len];
    client_core::media::SimulatedRoom::new(EchoPath::default(), 3).process(&far, &mut mic);
    for (m, &n) in mic.iter_mut().zip(signals.near.iter().cycle()) {
        *m = m.saturating_add(n / 2);
    }
    for settings in
        [aec_only, ns_only, VoiceSettings { gain_control: true, ..VoiceSettings::OFF }, VoiceSettings::ALL_ON]
    {
        let started = Instant::now();
        let _ = voice_lab::process(settings, &far, &mic);
        let spent = started.elapsed().as_secs_f64();
        println!(
            "{:<22} {:>8.2} ms per second of audio = {:>5.2}% of one core",
            describe(settings),
            spent * 1000.0 / seconds as f64,
            spent * 100.0 / seconds as f64
        );
    }

    println!();
    println!("== Delay added (lag of the best match between output and input)");
    for settings in [aec_only, ns_only, VoiceSettings::ALL_ON] {
        let (out, _) = voice_lab::process(settings, &[], &far[..16_000 * 8]);
        let lag = voice_lab::added_delay(&far[16_000 * 2..16_000 * 8], &out[16_000 * 2..], 480);
        println!("{:<22} {:>6} samples = {:.2} ms", describe(settings), lag, lag as f64 / 16.0);
    }
}
