//! Voice-processing measurements on made signals, shared by the figures
//! (`benches/voice_processing.rs`) and the test suite's short version
//! (`tests/voice_processing.rs`).
//!
//! The signals are made here: two talkers from espeak-ng (the lab's sentence for the far end,
//! another sentence in a higher voice for the near end) and fan-like noise from sox, all
//! 16 kHz mono. Echo is the far end passed through a [`SimulatedRoom`]. Everything runs
//! through the engine's own [`VoiceProcessor`] frame by frame, far-end frame first, as the
//! capture thread does; PESQ-WB comes from the network lab's scorer.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

use client_core::media::{EchoPath, SimulatedRoom, VoiceProcessor, VoiceSettings};
use protocol::jitter::{FRAME_SAMPLES, SAMPLE_RATE};

const RATE: usize = SAMPLE_RATE as usize;
/// What the near-end talker says while the far end talks too.
const NEAR_END_TEXT: &str = "Sorry to cut in, but could you say that again? The line was breaking up just now.";
/// Silence around a cut-out for the PESQ scorer, which looks for the reference in it.
const MARGIN_S: f64 = 0.25;
/// Far-end-only talk before ERLE is counted: the canceller's convergence.
const CONVERGENCE_S: f64 = 2.0;

/// The talkers, the noise and the PESQ environment.
pub struct Signals {
    pub dir: PathBuf,
    pub python: PathBuf,
    pub far: Vec<i16>,
    pub near: Vec<i16>,
    pub near_path: PathBuf,
    pub far_path: PathBuf,
}

/// The workspace's target directory (the network lab keeps its PESQ environment there).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // <target>/<profile>/deps/<binary>
    exe.ancestors().nth(3).expect("a binary under <target>/<profile>/deps").to_path_buf()
}

pub fn read_wav(path: &Path) -> Vec<i16> {
    hound::WavReader::open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("read the samples")
}

pub fn write_wav(path: &Path, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create a WAV file");
    for &s in samples {
        w.write_sample(s).expect("write a sample");
    }
    w.finalize().expect("finish the WAV file");
}

/// Makes the talkers and the PESQ environment in a work directory named `name`.
pub fn prepare(name: &str) -> Signals {
    let target = target_dir();
    let dir = target.join("voice-lab").join(name);
    std::fs::create_dir_all(&dir).expect("create the work directory");
    let python = netlab::lab::pesq::ensure_venv(&target.join("lab-venv")).expect("PESQ virtual environment");
    let far_path = dir.join("far.wav");
    netlab::lab::pesq::make_speech(&far_path).expect("far-end speech from espeak-ng");
    let near_path = dir.join("near.wav");
    netlab::lab::pesq::make_speech_saying(&near_path, NEAR_END_TEXT, "en-us+f3").expect("near-end speech");
    Signals { far: read_wav(&far_path), near: read_wav(&near_path), dir, python, near_path, far_path }
}

/// `seconds` of sox noise of `colour` (`pinknoise`, `brownnoise`).
pub fn noise(signals: &Signals, colour: &str, seconds: f64) -> Vec<i16> {
    let path = signals.dir.join(format!("{colour}.wav"));
    netlab::lab::pesq::make_noise(&path, colour, seconds).expect("noise from sox");
    read_wav(&path)
}

fn energy(samples: &[i16]) -> f64 {
    samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>()
}

fn rms(samples: &[i16]) -> f64 {
    (energy(samples) / samples.len().max(1) as f64).sqrt()
}

fn db(ratio: f64) -> f64 {
    10.0 * ratio.max(1e-12).log10()
}

/// `len` samples of `source` repeated.
fn looped(source: &[i16], len: usize) -> Vec<i16> {
    source.iter().copied().cycle().take(len).collect()
}

/// Runs `mic` through a processor with `settings`, frame by frame, each preceded by the same
/// frame of `far` as the far-end reference. Returns the output and the processor.
pub fn process(settings: VoiceSettings, far: &[i16], mic: &[i16]) -> (Vec<i16>, VoiceProcessor) {
    let mut processor = VoiceProcessor::new(settings);
    let mut out = Vec::with_capacity(mic.len());
    let silence = [0i16; FRAME_SAMPLES];
    for (n, chunk) in mic.chunks_exact(FRAME_SAMPLES).enumerate() {
        let played: &[i16; FRAME_SAMPLES] =
            far.get(n * FRAME_SAMPLES..(n + 1) * FRAME_SAMPLES).map_or(&silence, |f| f.try_into().expect("a frame"));
        processor.analyze_render(played);
        let mut frame: [i16; FRAME_SAMPLES] = chunk.try_into().expect("a frame");
        processor.process_capture(&mut frame);
        out.extend_from_slice(&frame);
    }
    (out, processor)
}

/// PESQ-WB of `degraded[start..start + reference.len()]` (with a margin around it) against
/// `reference`, both written under `label` in the work directory.
pub fn pesq_of(signals: &Signals, label: &str, reference: &[i16], degraded: &[i16], start: usize) -> f64 {
    let margin = (MARGIN_S * RATE as f64) as usize;
    let from = start.saturating_sub(margin);
    let to = (start + reference.len() + margin).min(degraded.len());
    let ref_path = signals.dir.join(format!("{label}.ref.wav"));
    let deg_path = signals.dir.join(format!("{label}.deg.wav"));
    write_wav(&ref_path, reference);
    let mut cut = vec![0i16; margin.saturating_sub(start)];
    cut.extend_from_slice(&degraded[from..to]);
    cut.resize(reference.len() + 2 * margin, 0);
    write_wav(&deg_path, &cut);
    let result = netlab::lab::pesq::score(&signals.python, &signals.dir, &ref_path, &deg_path, 0.0, 1)
        .unwrap_or_else(|e| panic!("PESQ of {label}: {e}"));
    result.mean.unwrap_or_else(|| panic!("no PESQ score for {label}"))
}

/// What echo cancellation achieved on one echo path.
#[derive(Debug, Clone)]
pub struct EchoFigures {
    pub path: EchoPath,
    /// Echo return loss enhancement during far-end-only talk after the convergence time, dB.
    pub erle_db: f64,
    /// PESQ-WB of the near-end talker during double talk, after processing.
    pub pesq_double_talk: f64,
    /// The same without processing (the echo still in it): what the canceller starts from.
    pub pesq_unprocessed: f64,
    /// The delay the canceller estimated, ms.
    pub estimated_delay_ms: Option<i32>,
}

/// The far end talks alone for `far_only_s` seconds, then the near end talks over it. The
/// microphone hears the far end through a room on `path`, plus the near end.
pub fn echo_run(signals: &Signals, path: EchoPath, settings: VoiceSettings, far_only_s: f64) -> EchoFigures {
    let near_start = (far_only_s * RATE as f64) as usize;
    let len = (near_start + signals.near.len() + RATE).div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
    let far = looped(&signals.far, len);
    let mut echo = vec![0i16; len];
    SimulatedRoom::new(path, 7).process(&far, &mut echo);
    let mut mic = echo.clone();
    for (m, &n) in mic[near_start..].iter_mut().zip(&signals.near) {
        *m = m.saturating_add(n);
    }
    let (out, processor) = process(settings, &far, &mic);
    // Kept for listening, and for trying other cancellers on the very same signals.
    write_wav(&signals.dir.join(format!("echo-{}ms.far.wav", path.delay_ms)), &far);
    write_wav(&signals.dir.join(format!("echo-{}ms.mic.wav", path.delay_ms)), &mic);
    let counted = (CONVERGENCE_S * RATE as f64) as usize..near_start;
    let erle_db = db(energy(&echo[counted.clone()]) / energy(&out[counted]).max(1.0));
    let label = format!("echo-{}ms", path.delay_ms);
    let pesq_double_talk = pesq_of(signals, &format!("{label}-processed"), &signals.near, &out, near_start);
    let pesq_unprocessed = pesq_of(signals, &format!("{label}-unprocessed"), &signals.near, &mic, near_start);
    EchoFigures {
        path,
        erle_db,
        pesq_double_talk,
        pesq_unprocessed,
        estimated_delay_ms: processor.stats().aec_delay_ms,
    }
}

/// What noise suppression achieved at one signal-to-noise ratio.
#[derive(Debug, Clone)]
pub struct NoiseFigures {
    pub colour: String,
    pub snr_db: f64,
    /// PESQ-WB of the noisy speech as captured.
    pub pesq_noisy: f64,
    /// PESQ-WB after processing.
    pub pesq_processed: f64,
    /// The noise left in a pause after the speech, relative to the noise that went in, dB.
    pub pause_noise_db: f64,
}

/// Seconds of noise alone before the speech (the suppressor learns the noise) and after it
/// (where the pause level is measured, after one settling second).
const NOISE_LEAD_S: f64 = 2.0;
const NOISE_TAIL_S: f64 = 3.0;

/// The far-end talker's speech in `noise` of `colour` at `snr_db` (speech energy over its
/// whole length against the noise's), through a processor with `settings`.
pub fn noise_run(signals: &Signals, noise: &[i16], colour: &str, snr_db: f64, settings: VoiceSettings) -> NoiseFigures {
    let lead = (NOISE_LEAD_S * RATE as f64) as usize;
    let len =
        (lead + signals.far.len() + (NOISE_TAIL_S * RATE as f64) as usize).div_ceil(FRAME_SAMPLES) * FRAME_SAMPLES;
    let noise = looped(noise, len);
    let gain = rms(&signals.far) / rms(&noise) / 10f64.powf(snr_db / 20.0);
    let scaled: Vec<i16> = noise.iter().map(|&n| (f64::from(n) * gain).round() as i16).collect();
    let mut mic = scaled.clone();
    for (m, &s) in mic[lead..].iter_mut().zip(&signals.far) {
        *m = m.saturating_add(s);
    }
    let (out, _) = process(settings, &[], &mic);
    let label = format!("noise-{colour}-{snr_db}dB");
    let pesq_processed = pesq_of(signals, &format!("{label}-processed"), &signals.far, &out, lead);
    let pesq_noisy = pesq_of(signals, &format!("{label}-noisy"), &signals.far, &mic, lead);
    let pause = len - 2 * RATE..len;
    let pause_noise_db = db(energy(&out[pause.clone()]) / energy(&scaled[pause]).max(1.0));
    NoiseFigures { colour: colour.to_string(), snr_db, pesq_noisy, pesq_processed, pause_noise_db }
}

/// The lag (samples, up to `max_lag`) at which `output` lines up best with `input`: the
/// delay the processing adds.
pub fn added_delay(input: &[i16], output: &[i16], max_lag: usize) -> usize {
    let n = input.len().min(output.len()).saturating_sub(max_lag);
    (0..=max_lag)
        .max_by(|&a, &b| {
            let corr =
                |lag: usize| -> f64 { (0..n).map(|i| f64::from(input[i]) * f64::from(output[i + lag])).sum::<f64>() };
            corr(a).total_cmp(&corr(b))
        })
        .unwrap_or(0)
}
