//! The scenario runner behind `parlor-lab`: starts a relay and bots as processes, impairs
//! their paths (the in-process [`crate::Proxy`] on loopback, or a network namespace with a
//! `tbf`-shaped veth), and writes a report (`report.json`) and a plot (`report.svg`) of
//! quality level, loss, RTT, cwnd, jitter-buffer delay and received FPS over time.
//!
//! Loopback scenarios give each impaired bot its own loopback address (127.0.0.2, …) on
//! which a proxy listens with the relay's own port numbers: the relay announces its UDP port
//! in `WELCOME` and a client sends media to that port on the host it connected to, so the
//! media goes through the proxy too.

pub mod metrics;
pub mod netns;
pub mod pesq;
pub mod plot;
pub mod procs;
pub mod scenarios;
pub mod stats;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use thiserror::Error;

use crate::proxy::{ProxyError, ProxyStats};
use procs::Bins;

/// Why a scenario could not run to the end.
#[derive(Debug, Error)]
pub enum LabError {
    #[error("{0} needs root (network namespaces and tc); run parlor-lab as root")]
    NotRoot(String),
    #[error("missing tool: {0}")]
    MissingTool(String),
    #[error("{} not found: build it with `cargo build -p relay-server -p client-core --bins` (same profile and target directory as parlor-lab) or pass --bin-dir", .0.display())]
    MissingBinary(PathBuf),
    #[error("`{command}` failed: {message}")]
    Command { command: String, message: String },
    #[error("{0}")]
    Startup(String),
    #[error("the run produced no usable data: {0}")]
    NoData(String),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot draw the report figure: {0}")]
    Plot(String),
}

/// The scenarios `parlor-lab run` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// Loss 0% → 15% → 0% on the sender's path (proxy): step-down and recovery.
    LossStep,
    /// Uplink 5 → 0.5 → 5 Mbit/s with tbf in a namespace (root): step-down, recovery,
    /// audio concealment during the cut.
    BandwidthCut,
    /// A file over a 5 Mbit/s tbf uplink during a call, against a plain TCP upload (root).
    FileUpload,
    /// One receiver behind 20% loss among three good ones: relay thinning.
    Thinning,
    /// Speech through 0/2/5/10% loss, recorded and scored with PESQ wideband.
    AudioPesq,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::LossStep => "loss-step",
            Scenario::BandwidthCut => "bandwidth-cut",
            Scenario::FileUpload => "file-upload",
            Scenario::Thinning => "thinning",
            Scenario::AudioPesq => "audio-pesq",
        }
    }

    /// True when the scenario needs root (namespaces, tc).
    pub fn needs_root(self) -> bool {
        matches!(self, Scenario::BandwidthCut | Scenario::FileUpload)
    }
}

/// How to run a scenario.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: Scenario,
    pub out_dir: PathBuf,
    /// The short version (for tests): fewer seconds, smaller files.
    pub short: bool,
    pub bins: Bins,
    pub seed: u64,
    /// Virtual environment for PESQ.
    pub venv: PathBuf,
    /// The command line, recorded in the report.
    pub command_line: String,
}

/// A shaded span of the run in the report and the plot.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseOut {
    pub start_s: f64,
    pub end_s: f64,
    pub label: String,
}

/// One bot of the run, in the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BotOut {
    pub name: String,
    pub role: String,
    /// The bot's stats file and log, relative to the output directory.
    pub stats: String,
    pub log: String,
    /// How it ended ("exit status: 0", "killed after the scenario", …).
    pub ended: String,
}

/// What `report.json` holds.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub short: bool,
    pub command: String,
    pub seed: u64,
    /// Time zero of the run, ms since the Unix epoch; every `t` in the report counts from it.
    pub t0_unix_ms: u64,
    pub duration_s: f64,
    pub phases: Vec<PhaseOut>,
    /// The scenario's figures (see each scenario's documentation).
    pub figures: serde_json::Value,
    pub bots: Vec<BotOut>,
    /// Counters of the impairment proxies, by the name of the bot behind each.
    pub proxies: Vec<(String, ProxyStats)>,
    /// The plot, relative to the output directory.
    pub plot: String,
    pub notes: Vec<String>,
}

/// Milliseconds since the Unix epoch.
pub fn now_unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Runs the scenario, writes `report.json` and `report.svg` into the output directory and
/// returns the report.
pub async fn run(opts: &RunOptions) -> Result<Report, LabError> {
    if opts.scenario.needs_root() {
        netns::require_root(&format!("scenario {}", opts.scenario.name()))?;
        for name in netns::cleanup_stale() {
            tracing::info!(%name, "removed a network namespace left by an earlier run");
        }
    }
    std::fs::create_dir_all(&opts.out_dir)?;
    let report = match opts.scenario {
        Scenario::LossStep => scenarios::loss_step(opts).await?,
        Scenario::BandwidthCut => scenarios::bandwidth_cut(opts).await?,
        Scenario::FileUpload => scenarios::file_upload(opts).await?,
        Scenario::Thinning => scenarios::thinning(opts).await?,
        Scenario::AudioPesq => scenarios::audio_pesq(opts).await?,
    };
    let json = serde_json::to_string_pretty(&report).map_err(|e| LabError::NoData(e.to_string()))?;
    std::fs::write(opts.out_dir.join("report.json"), json + "\n")?;
    Ok(report)
}
