//! The real cpal playback and capture paths, on a machine with no sound card: a private
//! PulseAudio daemon with a null sink plays our tone at real time, and its monitor source
//! captures it back. Checks that `SpeakerSink` paces its writer by the device clock, that
//! `MicSource` yields frames at real time, that what it captures is the tone we played, and
//! that the home screen's `MicLevelMonitor` meters it.

mod media_common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::jitter::{FRAME_SAMPLES, SAMPLE_RATE};

use client_core::media::{
    rms_dbfs, AudioSink, AudioSource, MicLevelMonitor, MicSource, MonitorReport, SpeakerSink, ToneSource, VoiceSettings,
};

/// How long each side runs, and how much of the start is ignored as buffer-filling warm-up.
const RUN: Duration = Duration::from_millis(2000);
const WARM_UP: Duration = Duration::from_millis(500);

/// Frames per second over the part of a run after the warm-up, from per-frame timestamps.
fn steady_rate(stamps: &[Duration]) -> f64 {
    let steady: Vec<&Duration> = stamps.iter().filter(|t| **t >= WARM_UP).collect();
    let (Some(first), Some(last)) = (steady.first(), steady.last()) else { return 0.0 };
    let span = (**last - **first).as_secs_f64();
    if span <= 0.0 {
        return 0.0;
    }
    (steady.len() - 1) as f64 / span
}

#[test]
fn speaker_and_microphone_run_at_real_time_through_a_pulseaudio_null_sink() {
    let pulse = media_common::PulseNullSink::start();
    let mut speaker =
        SpeakerSink::open(None).unwrap_or_else(|e| panic!("opening the speaker via PulseAudio: {e}\n{}", pulse.log()));
    let mut mic =
        MicSource::open(None).unwrap_or_else(|e| panic!("opening the microphone via PulseAudio: {e}\n{}", pulse.log()));
    assert!(speaker.is_paced() && mic.is_paced());
    eprintln!("speaker: {}\nmicrophone: {}", speaker.describe(), mic.describe());

    // The microphone reads concurrently, as the engine's capture thread would.
    let stop = Arc::new(AtomicBool::new(false));
    let capture = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let (mut stamps, mut samples) = (Vec::new(), Vec::new());
            let mut frame = [0i16; FRAME_SAMPLES];
            while !stop.load(Ordering::Relaxed) && start.elapsed() < RUN + Duration::from_millis(500) {
                mic.read_frame(&mut frame).expect("microphone frame");
                stamps.push(start.elapsed());
                samples.push(frame);
            }
            (mic, stamps, samples)
        })
    };

    let mut tone = ToneSource::new(440.0, 0.5);
    let mut frame = [0i16; FRAME_SAMPLES];
    let start = Instant::now();
    let mut play_stamps = Vec::new();
    while start.elapsed() < RUN {
        tone.read_frame(&mut frame).unwrap();
        speaker.write_frame(&frame).expect("speaker frame");
        play_stamps.push(start.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let (mic, mic_stamps, captured) = capture.join().expect("capture thread");

    let play_rate = steady_rate(&play_stamps);
    let mic_rate = steady_rate(&mic_stamps);
    let speaker_stats = speaker.stats();
    let mic_stats = mic.stats();
    eprintln!(
        "playback: {} frames in {:?}, steady {play_rate:.1}/s, {speaker_stats:?}\n\
         capture: {} frames, steady {mic_rate:.1}/s, {mic_stats:?}",
        play_stamps.len(),
        start.elapsed(),
        mic_stamps.len()
    );
    // 50 frames a second is real time; the bounds are wide for a loaded 2-core machine, but an
    // unpaced device (hundreds or thousands a second) or a stuck one (none) fails them.
    assert!((30.0..80.0).contains(&play_rate), "playback paced at {play_rate:.1} frames/s, want ~50");
    assert!((30.0..80.0).contains(&mic_rate), "capture delivered {mic_rate:.1} frames/s, want ~50");
    assert!(speaker_stats.callbacks > 10 && speaker_stats.device_frames > 0, "{speaker_stats:?}");
    assert!(mic_stats.callbacks > 10 && mic_stats.device_frames > 0, "{mic_stats:?}");

    // The monitor hands back what was played: after the start-up latency, a loud 440 Hz tone.
    let tail: Vec<i16> = captured.iter().rev().skip(5).take(25).rev().flatten().copied().collect();
    assert!(tail.len() >= 10 * FRAME_SAMPLES, "too little captured audio");
    let level = rms_dbfs(&tail);
    let crossings = tail.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    let pitch = crossings as f64 / 2.0 / (tail.len() as f64 / f64::from(SAMPLE_RATE));
    eprintln!("captured tail: {level:.1} dBFS, {pitch:.0} Hz");
    assert!(level > -15.0, "captured level {level:.1} dBFS: the tone did not come back");
    assert!((pitch - 440.0).abs() < 22.0, "captured pitch {pitch:.0} Hz, want 440 ±5%");
    drop(mic);

    // The home screen's level meter opens the same microphone and reports the tone's level
    // about ten times a second.
    let (tx, reports) = std::sync::mpsc::channel();
    let monitor = MicLevelMonitor::start(None, VoiceSettings::OFF, move |r| {
        let _ = tx.send(r);
    })
    .expect("the meter's thread starts");
    let mut levels: Vec<(Instant, f32)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while levels.len() < 15 {
        assert!(Instant::now() < deadline, "only {} meter reports in 20 s\n{}", levels.len(), pulse.log());
        tone.read_frame(&mut frame).unwrap();
        speaker.write_frame(&frame).expect("speaker frame");
        for report in reports.try_iter() {
            match report {
                MonitorReport::Level(l) => levels.push((Instant::now(), l.rms_dbfs)),
                MonitorReport::Failed(e) => panic!("the meter failed: {e}\n{}", pulse.log()),
            }
        }
    }
    drop(monitor);
    eprintln!("meter: {:?}", levels.iter().map(|(_, l)| *l).collect::<Vec<_>>());
    // Reports after the first (the device's start-up) come every 100 ms of audio.
    let span = levels[levels.len() - 1].0 - levels[1].0;
    let rate = (levels.len() - 2) as f64 / span.as_secs_f64();
    assert!((5.0..20.0).contains(&rate), "{rate:.1} reports a second, want ~10");
    let loudest = levels.iter().map(|(_, l)| *l).fold(f32::MIN, f32::max);
    assert!(loudest > -15.0, "the meter showed at most {loudest:.1} dBFS for a loud tone");
    drop(speaker);
    drop(pulse);
}
