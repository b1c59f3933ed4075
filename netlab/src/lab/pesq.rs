//! Speech for the audio-quality scenario and its PESQ score.
//!
//! Speech comes from `espeak-ng`, converted by `sox` to the engine's 16 kHz mono 16-bit.
//! Scoring runs `scripts/pesq_score.py` (embedded in this binary) with the `pesq` package
//! from PyPI (ITU-T P.862.2 wideband) in a virtual environment the lab creates on first use.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::LabError;

/// The scoring script, written next to the results of each run.
const SCORE_SCRIPT: &str = include_str!("../../scripts/pesq_score.py");

/// What the lab says: about ten seconds of speech.
const SPEECH: &str = "The quick brown fox jumps over the lazy dog. \
    Parlor measures its audio with real speech, sent through a lossy network and scored against the original.";

fn run(cmd: &mut Command) -> Result<String, LabError> {
    let shown = format!("{cmd:?}");
    let out = cmd.output().map_err(|e| LabError::Command { command: shown.clone(), message: e.to_string() })?;
    if !out.status.success() {
        let mut message = format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
        message.truncate(2000);
        return Err(LabError::Command { command: shown, message });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes the lab's speech sample as a 16 kHz mono 16-bit WAV at `out`, padded with 0.3 s
/// of silence at both ends so consecutive loops are separable.
pub fn make_speech(out: &Path) -> Result<(), LabError> {
    make_speech_saying(out, SPEECH, "en-us")
}

/// Writes `text` spoken by espeak-ng's `voice` (e.g. `en-us`, `en-us+f3` for a second,
/// higher talker) as a 16 kHz mono 16-bit WAV at `out`, padded with 0.3 s of silence at both
/// ends.
pub fn make_speech_saying(out: &Path, text: &str, voice: &str) -> Result<(), LabError> {
    let raw = out.with_extension("espeak.wav");
    run(Command::new("espeak-ng").args(["-v", voice, "-s", "150", "-w"]).arg(&raw).arg(text))
        .map_err(|e| LabError::MissingTool(format!("espeak-ng (Debian package espeak-ng): {e}")))?;
    run(Command::new("sox")
        .arg(&raw)
        .args(["-r", "16000", "-c", "1", "-b", "16"])
        .arg(out)
        .args(["pad", "0.3", "0.3"]))
    .map_err(|e| LabError::MissingTool(format!("sox (Debian package sox): {e}")))?;
    let _ = std::fs::remove_file(&raw);
    Ok(())
}

/// Writes `seconds` of sox's `pinknoise` or `brownnoise` (fan-like noise) as a 16 kHz mono
/// 16-bit WAV at `out`; sox's repeatable mode makes the same noise every time.
pub fn make_noise(out: &Path, colour: &str, seconds: f64) -> Result<(), LabError> {
    run(Command::new("sox").args(["-R", "-n", "-r", "16000", "-c", "1", "-b", "16"]).arg(out).args([
        "synth",
        &seconds.to_string(),
        colour,
    ]))
    .map_err(|e| LabError::MissingTool(format!("sox (Debian package sox): {e}")))?;
    Ok(())
}

/// Returns the Python of a virtual environment at `venv` that has `pesq`, `numpy` and
/// `scipy`, creating it (python3 -m venv, pip install) if needed.
pub fn ensure_venv(venv: &Path) -> Result<PathBuf, LabError> {
    let python = venv.join("bin").join("python");
    let ready = |py: &Path| {
        Command::new(py).args(["-c", "import pesq, numpy, scipy"]).output().is_ok_and(|o| o.status.success())
    };
    if ready(&python) {
        return Ok(python);
    }
    tracing::info!(venv = %venv.display(), "creating the PESQ virtual environment (pip install pesq numpy scipy)");
    let mut created = false;
    let mut last_err = None;
    for base in ["python3", "/usr/bin/python3"] {
        match run(Command::new(base).args(["-m", "venv", "--clear"]).arg(venv)) {
            Ok(_) => {
                created = true;
                break;
            }
            Err(e) => last_err = Some(e),
        }
    }
    if !created {
        return Err(LabError::MissingTool(format!(
            "python3 with venv (Debian package python3-venv, installed by scripts/install-deps.sh): {}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        )));
    }
    // One retry: a download cut short by the package index is the usual failure here.
    let pip = || {
        run(Command::new(venv.join("bin").join("pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "numpy",
            "scipy",
            "pesq",
        ]))
    };
    if let Err(first) = pip() {
        tracing::warn!(error = %first, "pip install failed; trying once more");
        pip()?;
    }
    if !ready(&python) {
        return Err(LabError::MissingTool(format!("pesq did not install into {}", venv.display())));
    }
    Ok(python)
}

/// PESQ scores of the copies of the reference found in one recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PesqResult {
    pub scores: Vec<f64>,
    /// Where each scored copy starts in the recording, seconds.
    pub offsets_s: Vec<f64>,
    pub mean: Option<f64>,
    pub min: Option<f64>,
}

/// Scores `degraded` against `reference`, ignoring the first `skip_s` seconds and scoring at
/// most `max_loops` copies. `work_dir` receives the script.
pub fn score(
    python: &Path,
    work_dir: &Path,
    reference: &Path,
    degraded: &Path,
    skip_s: f64,
    max_loops: usize,
) -> Result<PesqResult, LabError> {
    let script = work_dir.join("pesq_score.py");
    std::fs::write(&script, SCORE_SCRIPT).map_err(LabError::Io)?;
    let out = run(Command::new(python).arg(&script).arg(reference).arg(degraded).args([
        "--skip",
        &skip_s.to_string(),
        "--max-loops",
        &max_loops.to_string(),
    ]))?;
    serde_json::from_str(out.trim())
        .map_err(|e| LabError::Command { command: "pesq_score.py".into(), message: format!("bad output {out:?}: {e}") })
}
