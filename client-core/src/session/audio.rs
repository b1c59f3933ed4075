//! Audio threads: capture → 20 ms packets, and playout (jitter buffers → mix → sink).
//!
//! The **capture thread** reads 20 ms frames from the audio source. A device source (the
//! microphone) paces the loop itself; a synthetic one (tone, WAV) is paced by an absolute
//! 20 ms schedule. Muted frames are read (so the device does not back up) but not sent. A
//! level meter on what we send drives our `speaking` flag in `MEDIA_STATE`.
//!
//! The **playout thread** pops one frame from every participant's jitter buffer per 20 ms,
//! mixes them, and writes the mix to the sink (and the WAV recorder). A speaker sink blocks
//! while its ring is full, so the device clock paces playout; the null sink is paced by a
//! timer. Per-participant level meters feed the audio-level and active-speaker events.

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
    now_us, AudioSink, AudioSource, LevelMeter, MicSource, Mixer, NullSink, SpeakerSink, ToneSource, WavRecorder,
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

fn open_source(choice: &AudioChoice, events: &EventSender) -> Option<(Box<dyn AudioSource>, String)> {
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

pub(crate) fn capture_thread(
    shared: Arc<EngineShared>,
    events: EventSender,
    choice: AudioChoice,
    socket: UdpSocket,
    internal: mpsc::Sender<Internal>,
) {
    let counters = &shared.audio_out;
    let describe = |source: &Option<(Box<dyn AudioSource>, String)>| {
        if let Ok(mut s) = counters.source.lock() {
            *s = source.as_ref().map(|(_, d)| d.clone()).unwrap_or_default();
        }
    };
    let mut source = open_source(&choice, &events);
    describe(&source);
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
        if let Some(choice) = take_switch(&shared.session.switches.audio) {
            // Close the old device first: the new choice may be the same microphone.
            drop(source.take());
            copies.forget();
            source = open_source(&choice, &events);
            describe(&source);
            next = Instant::now();
        }
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

pub(crate) fn playout_thread(
    shared: Arc<EngineShared>,
    events: EventSender,
    sink: SinkChoice,
    record: Option<PathBuf>,
) {
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
