//! Shared by the deterministic speech tests (`concealment_pesq.rs`, `bursty_loss_pesq.rs`): the
//! lab's espeak-ng speech and its PESQ environment, kept in the target directory.

use std::path::{Path, PathBuf};

/// The speech to play and what scores it.
pub struct Speech {
    /// Where the test writes its recordings.
    pub dir: PathBuf,
    /// The speech as a WAV file (the PESQ reference).
    pub path: PathBuf,
    /// Its samples, 16 kHz mono.
    pub samples: Vec<i16>,
    /// The Python of the PESQ virtual environment.
    pub python: PathBuf,
}

/// The target directory cargo built this test into; the lab keeps its venv and work there.
fn target_dir() -> PathBuf {
    let lab = Path::new(env!("CARGO_BIN_EXE_parlor-lab"));
    lab.parent().and_then(Path::parent).expect("parlor-lab sits in <target>/<profile>").to_path_buf()
}

/// A 16 kHz mono 16-bit WAV file for what a jitter buffer plays.
pub fn recorder(path: &Path) -> hound::WavWriter<std::io::BufWriter<std::fs::File>> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 16_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    hound::WavWriter::create(path, spec).expect("create the recording")
}

/// Makes the speech and the PESQ environment for the test named `name`.
pub fn prepare(name: &str) -> Speech {
    let dir = target_dir().join("lab-tests").join(name);
    std::fs::create_dir_all(&dir).expect("create the work directory");
    let python = netlab::lab::pesq::ensure_venv(&target_dir().join("lab-venv")).expect("PESQ virtual environment");
    let path = dir.join("speech.wav");
    netlab::lab::pesq::make_speech(&path).expect("speech from espeak-ng");
    let samples: Vec<i16> = hound::WavReader::open(&path)
        .expect("open the speech")
        .samples::<i16>()
        .collect::<Result<_, _>>()
        .expect("read the speech");
    Speech { dir, path, samples, python }
}
