//! The short version of the voice-processing figures (the full ones: `cargo bench -p
//! client-core --bench voice_processing`): on made speech, echo cancellation takes more than
//! 15 dB off the echo of the far end and finds the echo path's delay, and noise suppression
//! raises PESQ of speech in pink noise and lowers the noise in pauses.

mod voice_lab;

use client_core::media::{EchoPath, VoiceSettings};

#[test]
fn echo_is_cancelled_and_noise_suppression_improves_speech() {
    let signals = voice_lab::prepare("suite");

    let path = EchoPath { delay_ms: 120, tail_ms: 200, gain_db: -6 };
    let aec_only = VoiceSettings { echo_cancellation: true, ..VoiceSettings::OFF };
    let echo = voice_lab::echo_run(&signals, path, aec_only, 8.0);
    eprintln!("echo: {echo:?}");
    assert!(echo.erle_db > 15.0, "ERLE {:.1} dB", echo.erle_db);
    let delay = echo.estimated_delay_ms.expect("a delay estimate");
    assert!((100..=140).contains(&delay), "estimated {delay} ms for a 120 ms path");

    let noise = voice_lab::noise(&signals, "pinknoise", 8.0);
    let ns_only = VoiceSettings { noise_suppression: true, ..VoiceSettings::OFF };
    let suppressed = voice_lab::noise_run(&signals, &noise, "pinknoise", 5.0, ns_only);
    eprintln!("noise: {suppressed:?}");
    assert!(
        suppressed.pesq_processed > suppressed.pesq_noisy,
        "PESQ {:.2} after suppression, {:.2} before",
        suppressed.pesq_processed,
        suppressed.pesq_noisy
    );
    assert!(suppressed.pause_noise_db < -10.0, "noise in pauses {:.1} dB", suppressed.pause_noise_db);
}
