//! The five scenarios, one file each: who runs where, what is impaired when, and the figures
//! each reports. This file holds what they share: the cast of bots, the standard chart and the
//! report.
//!
//! Time zero of a run is when its impairment starts (proxy started or link shaped); bots
//! join within a second or two of it, so every scenario begins with a clean phase long
//! enough for the call to settle.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use super::metrics::{changes, counter_delta, mean_in, min_in, time_until};
use super::netns::{self, NsLink, Side};
use super::plot::{self, Chart, Panel, Phase, Series};
use super::procs::{BotAudio, BotProc, BotSpec, RelayProc};
use super::stats::{BotStats, StatsSnapshot};
use super::{now_unix_ms, pesq, BotOut, LabError, PhaseOut, Report, RunOptions};
use crate::proxy::{PortMap, Proxy, ProxyConfig, ProxyStats};
use crate::schedule::Schedule;

mod audio_pesq;
mod bandwidth_cut;
mod file_upload;
mod loss_step;
mod thinning;

pub use audio_pesq::{audio_pesq, PesqCondition};
pub use bandwidth_cut::bandwidth_cut;
pub use file_upload::{file_upload, tcp_send, UploadFigures};
pub use loss_step::loss_step;
pub use thinning::{thinning, ReceiverFps, ThinningFigures};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// How long bots get beyond their duration to write their summary and exit.
const EXIT_GRACE: Duration = Duration::from_secs(30);

/// Whole seconds, rounded up, as parlor-bot's `--duration` takes them.
fn secs(s: f64) -> Duration {
    Duration::from_secs(s.max(1.0).ceil() as u64)
}

/// Seconds since `t0_ms`.
fn since(t0_ms: u64) -> f64 {
    (now_unix_ms().saturating_sub(t0_ms)) as f64 / 1000.0
}

/// A proxy on `ip` with the relay's own port numbers, in front of the relay.
async fn loopback_proxy(relay: &RelayProc, ip: Ipv4Addr, schedule: Schedule, seed: u64) -> Result<Proxy, LabError> {
    let listen = |port| SocketAddr::new(IpAddr::V4(ip), port);
    Ok(Proxy::start(ProxyConfig {
        udp: vec![PortMap { listen: listen(relay.udp_addr.port()), upstream: relay.udp_addr }],
        tcp: vec![PortMap { listen: listen(relay.tcp_addr.port()), upstream: relay.tcp_addr }],
        schedule,
        seed,
        ..Default::default()
    })
    .await?)
}

/// Bots of a run with their roles, waited for and reported together.
struct Cast {
    bots: Vec<(BotProc, String)>,
}

impl Cast {
    fn new() -> Cast {
        Cast { bots: Vec::new() }
    }

    async fn start(
        &mut self,
        o: &RunOptions,
        spec: &BotSpec,
        role: &str,
        netns: Option<&NsLink>,
    ) -> Result<Option<String>, LabError> {
        let bot = BotProc::start(&o.bins, spec, &o.out_dir, netns).await?;
        let code = bot.code.clone();
        self.bots.push((bot, role.to_string()));
        Ok(code)
    }

    /// Waits for every bot to end on its own (each has a `--duration`).
    async fn wait(&mut self, until: Instant) -> Vec<BotOut> {
        let mut out = Vec::new();
        for (bot, role) in &mut self.bots {
            let left = until.saturating_duration_since(Instant::now()).max(Duration::from_secs(1));
            let ended = match bot.wait(left).await {
                Ok(status) => status.to_string(),
                Err(e) => e.to_string(),
            };
            out.push(bot_out(bot, role, ended));
        }
        out
    }

    /// Kills every bot still running (when the scenario decides it is over).
    async fn stop(&mut self) -> Vec<BotOut> {
        let mut out = Vec::new();
        for (bot, role) in &mut self.bots {
            let ended = if bot.is_running() {
                let _ = bot.wait(Duration::ZERO).await;
                "stopped by the lab when the scenario ended".to_string()
            } else {
                "exited before the scenario ended".to_string()
            };
            out.push(bot_out(bot, role, ended));
        }
        out
    }

    fn load(&self, t0_ms: u64) -> Vec<BotStats> {
        self.bots
            .iter()
            .map(|(b, _)| {
                BotStats::load(&b.name, &b.stats_path, t0_ms)
                    .unwrap_or_else(|_| BotStats { name: b.name.clone(), lines: Vec::new() })
            })
            .collect()
    }
}

fn bot_out(bot: &BotProc, role: &str, ended: String) -> BotOut {
    let rel = |p: &Path| p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    BotOut {
        name: bot.name.clone(),
        role: role.to_string(),
        stats: rel(&bot.stats_path),
        log: rel(&bot.log_path),
        ended,
    }
}

fn find<'a>(bots: &'a [BotStats], name: &str) -> Result<&'a BotStats, LabError> {
    bots.iter()
        .find(|b| b.name == name && !b.lines.is_empty())
        .ok_or_else(|| LabError::NoData(format!("bot {name} wrote no stats; see {name}.log")))
}

fn phases_out(phases: &[(f64, f64, &str)]) -> Vec<PhaseOut> {
    phases.iter().map(|&(a, b, l)| PhaseOut { start_s: a, end_s: b, label: l.to_string() }).collect()
}

/// The six panels every scenario plots: quality level, loss, RTT, cwnd, jitter-buffer delay
/// and received FPS, for the media of `sender` as each other bot receives it.
fn standard_chart(title: &str, bots: &[BotStats], sender: &BotStats, phases: &[PhaseOut], x_max: f64) -> Chart {
    let spid = sender.participant_id().unwrap_or(u32::MAX);
    let receivers: Vec<&BotStats> = bots.iter().filter(|b| b.name != sender.name).collect();
    let rx = |f: &dyn Fn(&StatsSnapshot) -> Option<f64>| -> Vec<Series> {
        receivers
            .iter()
            .map(|b| Series { name: b.name.clone(), points: b.series(f) })
            .filter(|s| !s.points.is_empty())
            .collect()
    };
    let from_sender = |s: &StatsSnapshot| BotStats::stream_from(s, spid).cloned();

    let quality = Panel {
        title: "quality level".into(),
        step: true,
        y_range: Some((0.0, 3.0)),
        y_labels: vec![(0.0, "144p".into()), (1.0, "240p".into()), (2.0, "360p".into()), (3.0, "480p".into())],
        series: bots
            .iter()
            .filter(|b| b.lines.iter().any(|(_, s)| s.video_out.enabled))
            .map(|b| Series { name: b.name.clone(), points: b.series(|s| Some(s.quality.level as f64)) })
            .collect(),
    };
    let mut loss_series = vec![Series {
        name: format!("{} uplink", sender.name),
        points: sender.series(|s| s.uplink_video_loss.map(|l| l * 100.0)),
    }];
    loss_series.extend(rx(&|s| from_sender(s).map(|st| st.video.loss.max(st.audio.loss) * 100.0)));
    let loss = Panel { title: "loss %".into(), series: loss_series, ..Default::default() };
    let rtt = Panel {
        title: "RTT ms".into(),
        series: bots.iter().map(|b| Series { name: b.name.clone(), points: b.series(|s| s.rtt_ms) }).collect(),
        ..Default::default()
    };
    let cwnd_series: Vec<Series> = bots
        .iter()
        .map(|b| Series {
            name: b.name.clone(),
            points: b.series(|s| s.files.first().and_then(|f| f.cwnd).map(f64::from)),
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let cwnd = Panel {
        title: if cwnd_series.is_empty() {
            "cwnd (chunks): no file transfer in this scenario"
        } else {
            "cwnd (chunks)"
        }
        .into(),
        series: cwnd_series,
        ..Default::default()
    };
    let jitter = Panel {
        title: "jitter buffer ms".into(),
        series: rx(&|s| from_sender(s).map(|st| st.audio.jitter_buffer_ms)),
        ..Default::default()
    };
    let mut fps_series =
        vec![Series { name: format!("{} sent", sender.name), points: sender.series(|s| Some(s.video_out.fps)) }];
    fps_series.extend(rx(&|s| from_sender(s).map(|st| st.video.fps)));
    let fps = Panel { title: "received FPS".into(), series: fps_series, ..Default::default() };

    Chart {
        title: title.to_string(),
        panels: vec![quality, loss, rtt, cwnd, jitter, fps],
        phases: phases.iter().map(|p| Phase { start_s: p.start_s, end_s: p.end_s, label: p.label.clone() }).collect(),
        x_max,
    }
}

fn write_plot(o: &RunOptions, chart: &Chart) -> Result<String, LabError> {
    std::fs::write(o.out_dir.join("report.svg"), plot::render(chart)?)?;
    Ok("report.svg".to_string())
}

/// The parts of a report every scenario has.
struct Outcome {
    bots: Vec<BotOut>,
    proxies: Vec<(String, ProxyStats)>,
    plot: String,
    notes: Vec<String>,
}

fn report(
    o: &RunOptions,
    t0_ms: u64,
    duration_s: f64,
    phases: Vec<PhaseOut>,
    figures: impl Serialize,
    out: Outcome,
) -> Report {
    Report {
        scenario: o.scenario,
        short: o.short,
        command: o.command_line.clone(),
        seed: o.seed,
        t0_unix_ms: t0_ms,
        duration_s,
        phases,
        figures: serde_json::to_value(figures).unwrap_or(serde_json::Value::Null),
        bots: out.bots,
        proxies: out.proxies,
        plot: out.plot,
        notes: out.notes,
    }
}

/// Figures of the step scenarios (loss step, bandwidth cut).
#[derive(Debug, Clone, Serialize)]
pub struct StepFigures {
    pub impairment_start_s: f64,
    pub impairment_end_s: f64,
    /// Seconds from the start of the impairment until the sender's level was below 480p.
    pub step_down_s: Option<f64>,
    /// Seconds from the end of the impairment until the sender was back at 480p.
    pub back_to_480p_s: Option<f64>,
    /// Level changes seen in the sender's stats over the run.
    pub level_changes: usize,
    /// The sender's own count of level changes at the end of the run.
    pub level_changes_reported: Option<u32>,
    pub min_level_during_impairment: Option<f64>,
    pub level_at_end: Option<f64>,
    /// Mean video FPS the receiver got before, during and after the impairment.
    pub receiver_fps: [Option<f64>; 3],
    /// Concealed audio frames / played frames at the receiver during the impairment.
    pub audio_concealment_rate_during: Option<f64>,
    /// Concealment rate in the clean phase before it, for comparison.
    pub audio_concealment_rate_before: Option<f64>,
}

fn step_figures(sender: &BotStats, receiver: &BotStats, start: f64, end: f64) -> StepFigures {
    let level = sender.series(|s| Some(s.quality.level as f64));
    let spid = sender.participant_id().unwrap_or(u32::MAX);
    let rx_fps = receiver.series(|s| BotStats::stream_from(s, spid).map(|st| st.video.fps));
    let concealed = receiver.series(|s| BotStats::stream_from(s, spid).map(|st| st.audio.concealed_frames as f64));
    let played = receiver.series(|s| BotStats::stream_from(s, spid).map(|st| st.audio.played_frames as f64));
    let rate = |a: f64, b: f64| match (counter_delta(&concealed, a, b), counter_delta(&played, a, b)) {
        (Some(c), Some(p)) if p > 0.0 => Some(c / p),
        _ => None,
    };
    let settle = 3.0_f64.min(start / 2.0);
    StepFigures {
        impairment_start_s: start,
        impairment_end_s: end,
        step_down_s: time_until(&level, start, |l| l < 3.0).filter(|&t| t <= end - start + 2.0),
        back_to_480p_s: time_until(&level, end, |l| l >= 3.0),
        level_changes: changes(&level),
        level_changes_reported: sender.lines.last().map(|(_, s)| s.quality.level_changes),
        min_level_during_impairment: min_in(&level, start, end + 1.0),
        level_at_end: level.last().map(|&(_, l)| l),
        receiver_fps: [
            mean_in(&rx_fps, settle, start),
            mean_in(&rx_fps, start, end),
            mean_in(&rx_fps, end, f64::INFINITY),
        ],
        audio_concealment_rate_during: rate(start, end),
        audio_concealment_rate_before: rate(settle, start),
    }
}
