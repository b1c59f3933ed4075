//! Audio threads: capture → 20 ms packets, and playout (jitter buffers → mix → sink).
//!
//! The **capture thread** reads 20 ms frames from the audio source. A device source (the
//! microphone) paces the loop itself; a synthetic one (tone, WAV) is paced by an absolute
//! 20 ms schedule. Each frame goes through the voice processing (echo cancellation, noise
//! suppression, gain control: `media::VoiceProcessor`), which first takes every frame the
//! playout thread has played since as its far-end reference. Muted frames are read and
//! processed (so the device does not back up and the echo canceller stays adapted) but not
//! sent. A level meter on the processed signal — what we send — drives our `speaking` flag in
//! `MEDIA_STATE`, so echo and noise do not light it.
//!
//! The **playout thread** pops one frame from every participant's jitter buffer per 20 ms,
//! mixes them, and writes the mix to the sink (and the WAV recorder). A speaker sink blocks
//! while its ring is full, so the device clock paces playout; the null sink is paced by a
//! timer. Every mixed frame is handed to the capture thread as it is written (the echo
//! canceller's reference, and an echo loopback source's input). Per-participant level
//! meters feed the audio-level and active-speaker events.

use std::collections::BTreeMap;
use std::net::UdpSocket;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::jitter::{FRAME_DURATION, FRAME_SAMPLES, SAMPLE_RATE};
use protocol::media::{AudioHeader, AudioPayload, MediaPacket, MAX_DATAGRAM_LEN};
use protocol::redundancy::RedundantCopies;
use tokio::sync::mpsc;

use super::engine::{EngineShared, Internal, MAX_REMOTES};
use super::events::{EventSender, ParticipantLevel, SessionEvent};
use super::options::{AudioChoice, SinkChoice};
use super::take_switch;
use crate::media::{
    now_us, AudioSink, AudioSource, EchoLoopbackSource, LevelMeter, LevelWindow, LoopbackSlot, MicSource, Mixer,
    NullSink, RenderFeed, RenderQueue, SpeakerSink, ToneSource, VoicePreferences, VoiceProcessor, WavRecorder,
    WavSource,
};
use crate::net::udp::send_datagram;

/// Frequency and amplitude of the synthetic tone.
const TONE_HZ: f32 = 440.0;
const TONE_AMPLITUDE: f32 = 0.25;
/// A timer-paced loop that falls this far behind skips ahead instead of catching up in a burst.
const MAX_LAG: Duration = Duration::from_millis(100);
/// Audio levels are published every this many frames (200 ms).
const LEVEL_EVERY_FRAMES: u64 = 10;
/// The voice processing's estimates are read every this many frames (1 s).
const VOICE_STATS_EVERY_FRAMES: u64 = 50;

fn open_source(
    choice: &AudioChoice,
    loopback: &LoopbackSlot,
    events: &EventSender,
) -> Option<(Box<dyn AudioSource>, String)> {
    let tone = || -> (Box<dyn AudioSource>, String) {
        (Box::new(ToneSource::new(TONE_HZ, TONE_AMPLITUDE)), format!("tone {TONE_HZ} Hz"))
    };
    match choice {
        AudioChoice::None => None,
        AudioChoice::Tone => Some(tone()),
        AudioChoice::Wav(path) => match WavSource::open(path) {
            Ok(src) => Some((Box::new(src), format!("wav {}", path.display()))),
            Err(e) => {
                events.error(format!("cannot play {} ({e}); sending a tone instead", path.display()));
                Some(tone())
            }
        },
        AudioChoice::Mic(device) => match MicSource::open(device.as_deref()) {
            Ok(src) => Some((Box::new(src), format!("microphone {}", device.as_deref().unwrap_or("(default)")))),
            Err(e) => {
                events.error(format!("microphone unavailable ({e}); sending no audio"));
                None
            }
        },
        AudioChoice::EchoLoopback { path, near_end } => {
            let near = match near_end.as_deref().map(WavSource::open).transpose() {
                Ok(near) => near,
                Err(e) => {
                    events.error(format!("cannot play the near-end talker ({e}); the loopback has none"));
                    None
                }
            };
            let talker = near_end.as_ref().map(|p| format!(" + wav {}", p.display())).unwrap_or_default();
            match EchoLoopbackSource::open(loopback.clone(), *path, near) {
                Ok(src) => Some((
                    Box::new(src),
                    format!(
                        "echo loopback ({} ms, {} ms tail, {} dB){talker}",
                        path.delay_ms, path.tail_ms, path.gain_db
                    ),
                )),
                Err(e) => {
                    events.error(format!("echo loopback unavailable ({e}); sending no audio"));
                    None
                }
            }
        }
    }
}

/// Waits for the next slot of a timer-paced loop; false if the engine stopped meanwhile.
fn wait_slot(shared: &EngineShared, next: &mut Instant) -> bool {
    loop {
        if !shared.running() {
            return false;
        }
        let now = Instant::now();
        if now >= *next {
            break;
        }
        std::thread::sleep((*next - now).min(FRAME_DURATION));
    }
    let now = Instant::now();
    *next += FRAME_DURATION;
    if *next + MAX_LAG < now {
        *next = now + FRAME_DURATION;
    }
    true
}

/// What the audio capture thread starts with.
pub(crate) struct AudioCapture {
    pub choice: AudioChoice,
    pub voice: VoicePreferences,
    /// What the playout thread plays: the echo canceller's far-end reference.
    pub far_end: RenderQueue,
}

pub(crate) fn capture_thread(
    shared: Arc<EngineShared>,
    events: EventSender,
    capture: AudioCapture,
    socket: UdpSocket,
    internal: mpsc::Sender<Internal>,
) {
    let AudioCapture { mut choice, voice: mut preferences, mut far_end } = capture;
    let counters = &shared.audio_out;
    let describe = |source: &Option<(Box<dyn AudioSource>, String)>| {
        if let Ok(mut s) = counters.source.lock() {
            *s = source.as_ref().map(|(_, d)| d.clone()).unwrap_or_default();
        }
    };
    let mut source = open_source(&choice, &shared.echo_loopback, &events);
    describe(&source);
    let mut voice = VoiceProcessor::new(preferences.resolve(choice.is_microphone_like()));
    let publish_voice = |voice: &VoiceProcessor| {
        if let Ok(mut v) = counters.voice.lock() {
            *v = (voice.settings(), voice.stats());
        }
    };
    publish_voice(&voice);
    let mut frames_read: u64 = 0;
    // What we sent over the last 100 ms (silence while muted), for `SessionEvent::MicLevel`.
    let mut level_window = LevelWindow::default();
    let silence = [0i16; FRAME_SAMPLES];
    let mut next = Instant::now();
    let mut frame = [0i16; FRAME_SAMPLES];
    let mut payload = [0u8; FRAME_SAMPLES * 2];
    let mut datagram = [0u8; MAX_DATAGRAM_LEN];
    let (mut plain, mut sealed) = (Vec::new(), Vec::new());
    let mut meter = LevelMeter::new();
    let mut speaking = false;
    let mut seq: u32 = 0;
    // The frames sent last, for the next packet's redundant copies.
    let mut copies = RedundantCopies::default();

    while shared.running() {
        let switched_source = take_switch(&shared.session.switches.audio);
        if let Some(new_choice) = &switched_source {
            // Close the old device first: the new choice may be the same microphone.
            drop(source.take());
            copies.forget();
            choice = new_choice.clone();
            source = open_source(&choice, &shared.echo_loopback, &events);
            describe(&source);
            next = Instant::now();
        }
        if let Some(new_preferences) = take_switch(&shared.session.switches.voice) {
            preferences = new_preferences;
        }
        let settings = preferences.resolve(choice.is_microphone_like());
        if settings != voice.settings() {
            voice.set_settings(settings);
            publish_voice(&voice);
        }
        // Everything played since the last frame, before the frame that may hold its echo.
        far_end.drain(|played| voice.analyze_render(played));
        let Some((source_now, _)) = source.as_mut() else {
            // No source: nobody speaks here; wait for a switch, on the 20 ms schedule.
            counters.active.store(false, Ordering::Relaxed);
            if speaking {
                speaking = false;
                counters.speaking.store(false, Ordering::Relaxed);
                let _ = internal.try_send(Internal::Speaking(false));
            }
            if !wait_slot(&shared, &mut next) {
                break;
            }
            continue;
        };
        if !source_now.is_paced() && !wait_slot(&shared, &mut next) {
            break;
        }
        if let Err(e) = source_now.read_frame(&mut frame) {
            events.error(format!("audio source failed ({e}); no audio is sent"));
            source = None;
            describe(&source);
            continue;
        }
        let capture_ts_us = now_us();
        voice.process_capture(&mut frame);
        frames_read += 1;
        if frames_read.is_multiple_of(VOICE_STATS_EVERY_FRAMES) {
            publish_voice(&voice);
        }
        let mic_on = shared.session.mic_on.load(Ordering::Relaxed);
        counters.active.store(mic_on, Ordering::Relaxed);
        let now_speaking = if mic_on {
            let level = meter.update(&frame);
            counters.level_dbfs_bits.store(level.rms_dbfs.to_bits(), Ordering::Relaxed);
            level.speaking
        } else {
            false
        };
        if now_speaking != speaking {
            speaking = now_speaking;
            counters.speaking.store(speaking, Ordering::Relaxed);
            let _ = internal.try_send(Internal::Speaking(speaking));
        }
        if let Some(rms_dbfs) = level_window.push(if mic_on { &frame } else { &silence }) {
            events.emit(SessionEvent::MicLevel { rms_dbfs, speaking });
        }
        if !mic_on {
            // The frames before the next packet were never sent: no copies of them either.
            copies.forget();
            continue;
        }
        for (b, s) in payload.chunks_exact_mut(2).zip(frame.iter()) {
            b.copy_from_slice(&s.to_be_bytes());
        }
        copies.prepare(counters.redundancy_depth.load(Ordering::Relaxed));
        let header = AudioHeader { seq, capture_ts_us, sample_rate: SAMPLE_RATE, channels: 1 };
        let body = AudioPayload { pcm: &payload, copies: copies.copies() };
        seq = seq.wrapping_add(1);
        let encoded = body.encode_into(&mut plain);
        copies.sent(&frame);
        if let Err(e) = encoded {
            tracing::warn!("cannot encode an audio packet: {e}");
            continue;
        }
        if !shared.seal(&header.aad(shared.my_id), &plain, &mut sealed) {
            continue;
        }
        let packet = MediaPacket::Audio { sender_id: shared.my_id, header, sealed: &sealed };
        match shared.hop_out.encode(&packet, &mut datagram) {
            Ok(len) => {
                if send_datagram(&socket, &datagram[..len]) {
                    counters.frames.fetch_add(1, Ordering::Relaxed);
                    counters.bytes.fetch_add(len as u64, Ordering::Relaxed);
                }
            }
            Err(e) => tracing::warn!("cannot encode an audio packet: {e}"),
        }
    }
    counters.active.store(false, Ordering::Relaxed);
    if speaking {
        let _ = internal.try_send(Internal::Speaking(false));
    }
}

fn open_sink(choice: &SinkChoice, events: &EventSender) -> Box<dyn AudioSink> {
    if let SinkChoice::Speaker(device) = choice {
        match SpeakerSink::open(device.as_deref()) {
            Ok(sink) => return Box::new(sink),
            Err(e) => events.error(format!("speaker unavailable ({e}); audio is not played")),
        }
    }
    Box::new(NullSink::new())
}

/// What the playout thread starts with.
pub(crate) struct Playout {
    pub sink: SinkChoice,
    /// Also write the mix to this WAV file.
    pub record: Option<PathBuf>,
    /// Every mixed frame goes here as it is written to the sink: the echo canceller's
    /// far-end reference...
    pub far_end: RenderFeed,
    /// ...and what an echo loopback source hears.
    pub loopback: RenderFeed,
}

pub(crate) fn playout_thread(shared: Arc<EngineShared>, events: EventSender, playout: Playout) {
    let Playout { sink, record, mut far_end, mut loopback } = playout;
    let mut sink = open_sink(&sink, &events);
    let mut recorder = record.and_then(|path| match WavRecorder::create(&path) {
        Ok(r) => Some(r),
        Err(e) => {
            events.error(format!("cannot record audio to {}: {e}", path.display()));
            None
        }
    });
    let mut paced = sink.is_paced();
    let mut next = Instant::now();
    let mut inputs: Vec<(u32, [i16; FRAME_SAMPLES])> = Vec::with_capacity(MAX_REMOTES);
    let mut mixed = [0i16; FRAME_SAMPLES];
    let mut meters: BTreeMap<u32, LevelMeter> = BTreeMap::new();
    let mut levels: BTreeMap<u32, (f32, bool)> = BTreeMap::new();
    let mut active_speaker: Option<u32> = None;
    let mut frame_no: u64 = 0;

    while shared.running() {
        if let Some(choice) = take_switch(&shared.session.switches.sink) {
            // Close the old device first: the new choice may be the same speaker.
            drop(std::mem::replace(&mut sink, Box::new(NullSink::new())));
            sink = open_sink(&choice, &events);
            paced = sink.is_paced();
            next = Instant::now();
        }
        if !paced && !wait_slot(&shared, &mut next) {
            break;
        }
        let now = Instant::now();
        {
            let Ok(mut buffers) = shared.jitter.lock() else { break };
            inputs.resize(buffers.len(), (0, [0; FRAME_SAMPLES]));
            for ((id, buffer), slot) in buffers.iter_mut().zip(inputs.iter_mut()) {
                slot.0 = *id;
                buffer.pop_into(now, &mut slot.1);
            }
        }
        let refs: Vec<&[i16; FRAME_SAMPLES]> = inputs.iter().map(|(_, f)| f).collect();
        Mixer::mix(&refs, &mut mixed);

        meters.retain(|id, _| inputs.iter().any(|(i, _)| i == id));
        levels.retain(|id, _| inputs.iter().any(|(i, _)| i == id));
        for (id, frame) in &inputs {
            let level = meters.entry(*id).or_default().update(frame);
            levels.insert(*id, (level.rms_dbfs, level.speaking));
        }
        frame_no += 1;
        if frame_no.is_multiple_of(LEVEL_EVERY_FRAMES) {
            publish_levels(&shared, &events, &levels, &mut active_speaker);
        }

        far_end.push(&mixed);
        loopback.push(&mixed);
        if let Err(e) = sink.write_frame(&mixed) {
            events.error(format!("audio output failed ({e}); audio is no longer played"));
            sink = Box::new(NullSink::new());
            paced = false;
            next = Instant::now();
        }
        if let Some(rec) = &mut recorder {
            if let Err(e) = rec.write_frame(&mixed) {
                events.error(format!("audio recording failed: {e}"));
                recorder = None;
            }
        }
    }
    if let Some(rec) = recorder {
        if let Err(e) = rec.finish() {
            events.error(format!("cannot finish the audio recording: {e}"));
        }
    }
}

fn publish_levels(
    shared: &EngineShared,
    events: &EventSender,
    levels: &BTreeMap<u32, (f32, bool)>,
    active_speaker: &mut Option<u32>,
) {
    if let Ok(mut l) = shared.remote_levels.lock() {
        l.clone_from(levels);
    }
    if levels.is_empty() {
        return;
    }
    events.emit(SessionEvent::AudioLevel {
        levels: levels
            .iter()
            .map(|(id, (rms_dbfs, speaking))| ParticipantLevel {
                participant_id: *id,
                rms_dbfs: *rms_dbfs,
                speaking: *speaking,
            })
            .collect(),
    });
    let loudest = levels
        .iter()
        .filter(|(_, (_, speaking))| *speaking)
        .max_by(|a, b| a.1 .0.total_cmp(&b.1 .0))
        .map(|(id, _)| *id);
    // Keep the current speaker while they still speak, so the highlight does not flicker
    // between two people talking at once.
    let keep = active_speaker.is_some_and(|id| levels.get(&id).is_some_and(|(_, s)| *s));
    if !keep && loudest != *active_speaker {
        *active_speaker = loudest;
        events.emit(SessionEvent::ActiveSpeaker { participant_id: loudest });
    }
}
