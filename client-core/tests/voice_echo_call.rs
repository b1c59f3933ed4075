//! Echo through the real path: A talks (espeak-ng speech from a WAV file); B is a laptop
//! without headphones, its "microphone" an echo loopback that hears what B's playout thread
//! plays, A's voice, through a simulated room (120 ms, 200 ms tail, -6 dB). What A then
//! receives from B is its own voice coming back. With B's voice processing on it stays below
//! -25 dB relative to A's original, and B — who says nothing — never counts as speaking (its
//! speaking flag reads the processed signal); with it off, neither holds (so the test can fail).

mod common;
mod voice_lab;

use std::path::Path;

use client_core::media::{EchoPath, VoicePreferences, VoiceSettings};
use client_core::{AudioChoice, SessionEvent, SessionOptions, StatsSnapshot, VideoChoice};
use common::{admit, create, start_relay, Bot};

/// Seconds of call, in the session's stats intervals, before and while A's recording is
/// measured: the canceller converges in the first.
const SETTLE_SNAPSHOTS: usize = 4;
const MEASURED_SECONDS: usize = 5;

/// The (level, speaking) of every `MicLevel` among `events`.
fn mic_levels(events: &[SessionEvent]) -> Vec<(f32, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::MicLevel { rms_dbfs, speaking } => Some((*rms_dbfs, *speaking)),
            _ => None,
        })
        .collect()
}

fn rms(samples: &[i16]) -> f64 {
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len().max(1) as f64).sqrt()
}

/// What one call showed.
struct EchoCall {
    /// A's own voice as it came back from B, dB relative to the original.
    returned_db: f64,
    /// B's last stats.
    b_stats: StatsSnapshot,
    /// Of B's microphone levels over the measured seconds, the share that counted as speaking.
    b_speaking: f64,
}

/// Runs one call with B's voice processing set to `voice`.
async fn echo_call(dir: &Path, speech: &Path, voice: VoiceSettings) -> EchoCall {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let recording = dir.join(format!("a-hears-{}.wav", voice.echo_cancellation));
    let a = Bot::connect(
        &addr,
        SessionOptions {
            video: VideoChoice::None,
            audio: AudioChoice::Wav(speech.to_path_buf()),
            record_audio: Some(recording.clone()),
            ..Default::default()
        },
    )
    .await;
    let b = Bot::connect(
        &addr,
        SessionOptions {
            video: VideoChoice::None,
            audio: AudioChoice::EchoLoopback {
                path: EchoPath { delay_ms: 120, tail_ms: 200, gain_db: -6 },
                near_end: None,
            },
            voice: VoicePreferences::fixed(voice),
            ..Default::default()
        },
    )
    .await;
    let (code, _) = create(&a, "A").await;
    let b_id = admit(&a, &b, &code, "B").await;
    // A hears B (its own echo, or what is left of it) from here on.
    let from = a.mark();
    a.first_stats(from, "B's audio at A", |s| {
        s.streams.iter().any(|r| r.participant_id == b_id && r.audio.packets_received > 0)
    })
    .await;
    let settle = a.mark();
    a.nth_stats(settle, SETTLE_SNAPSHOTS).await;
    let measured_from = (a.mark(), b.mark());
    a.nth_stats(measured_from.0, MEASURED_SECONDS).await;
    let b_stats = b.next_stats().await;
    let b_levels = mic_levels(&b.events()[measured_from.1..]);
    assert!(b_levels.len() >= 30, "{} levels of B's microphone in the measured seconds", b_levels.len());
    let b_speaking = b_levels.iter().filter(|(_, speaking)| *speaking).count() as f64 / b_levels.len() as f64;
    // A's own meter: ten levels a second of what it sends, its speech well above silence.
    let a_levels = mic_levels(&a.events());
    assert!(a_levels.len() >= 50, "{} levels of A's microphone in more than 9 s", a_levels.len());
    assert!(a_levels.iter().any(|(l, _)| *l > -40.0), "A's speech never showed on its meter: {a_levels:?}");
    a.close().await;
    b.close().await;
    relay.shutdown().await;

    let heard = voice_lab::read_wav(&recording);
    let measured = &heard[heard.len().saturating_sub(MEASURED_SECONDS * 16_000)..];
    let original = voice_lab::read_wav(speech);
    EchoCall { returned_db: 20.0 * (rms(measured).max(1.0) / rms(&original)).log10(), b_stats, b_speaking }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_does_not_hear_itself_back_through_a_participant_without_headphones() {
    let dir = tempfile::tempdir().unwrap();
    let speech = dir.path().join("speech.wav");
    netlab::lab::pesq::make_speech(&speech).expect("speech from espeak-ng");

    let off = echo_call(dir.path(), &speech, VoiceSettings::OFF).await;
    assert!(!off.b_stats.audio_out.echo_cancellation);
    assert!(
        off.returned_db > -25.0,
        "without the canceller A's voice came back at only {:.1} dB: no echo",
        off.returned_db
    );
    assert!(off.b_speaking > 0.3, "the echo made B look like speaking only {:.0}% of the time", off.b_speaking * 100.0);

    let on = echo_call(dir.path(), &speech, VoiceSettings::ALL_ON).await;
    let b_on = &on.b_stats;
    eprintln!(
        "A's voice came back at {:.1} dB without voice processing, {:.1} dB with it; B looked like speaking \
         {:.0}% / {:.0}% of the time; B's canceller estimated {:?} ms and ERLE {:?} dB",
        off.returned_db,
        on.returned_db,
        off.b_speaking * 100.0,
        on.b_speaking * 100.0,
        b_on.audio_out.aec_delay_ms,
        b_on.audio_out.erle_db
    );
    assert!(b_on.audio_out.echo_cancellation && b_on.audio_out.noise_suppression && b_on.audio_out.gain_control);
    assert!(on.returned_db <= -25.0, "A's voice came back at {:.1} dB with B's canceller on", on.returned_db);
    assert_eq!(on.b_speaking, 0.0, "the echo lit B's speaking flag through the canceller");
    let delay = b_on.audio_out.aec_delay_ms.expect("B's canceller estimated the echo path's delay");
    // The room's 120 ms, give or take the 20 ms frames the two threads' timers hand over and the
    // loopback's playback buffer holds.
    assert!((60..=240).contains(&delay), "estimated {delay} ms for a 120 ms room");
}
