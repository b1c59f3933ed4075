//! The five scenarios: who runs where, what is impaired when, and the figures each reports.
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
use super::procs::{BotAudio, BotProc, BotSpec, RelayProc};
use super::stats::{BotStats, StatsSnapshot};
use super::svg::{self, Chart, Panel, Phase, Series};
use super::{now_unix_ms, pesq, BotOut, LabError, PhaseOut, Report, RunOptions};
use crate::proxy::{PortMap, Proxy, ProxyConfig, ProxyStats};
use crate::schedule::Schedule;

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
    std::fs::write(o.out_dir.join("report.svg"), svg::render(chart))?;
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

/// Scenario 1: loss 0% → 15% → 0% on the sender's path (both directions, through the proxy).
pub async fn loss_step(o: &RunOptions) -> Result<Report, LabError> {
    let (start, end, total) = if o.short { (6.0, 16.0, 34.0) } else { (10.0, 30.0, 60.0) };
    let relay = RelayProc::start(&o.bins, LOCALHOST, &o.out_dir.join("relay.log")).await?;
    let schedule = Schedule::parse(&format!("0s:clean, {start}s:loss=15%, {end}s:clean"))
        .map_err(|e| LabError::Startup(e.to_string()))?;
    let proxy = loopback_proxy(&relay, Ipv4Addr::new(127, 0, 0, 2), schedule, o.seed).await?;
    let t0 = now_unix_ms();
    let deadline = Instant::now() + secs(total + 4.0) + EXIT_GRACE;

    let mut cast = Cast::new();
    let host = BotSpec::new("receiver", None, relay.tcp_addr, secs(total + 2.0));
    let code = cast.start(o, &host, "host, receives over a clean path", None).await?;
    let mut sender = BotSpec::new("sender", code, proxy.tcp_addrs()[0], secs(total - since(t0)));
    sender.video = true;
    sender.audio = BotAudio::Tone;
    cast.start(o, &sender, "sends video and audio through the lossy proxy", None).await?;
    let bots_out = cast.wait(deadline).await;
    let proxy_stats = proxy.shutdown().await;
    relay.stop().await;

    let bots = cast.load(t0);
    let (s, r) = (find(&bots, "sender")?, find(&bots, "receiver")?);
    let figures = step_figures(s, r, start, end);
    let phases = phases_out(&[(0.0, start, "clean"), (start, end, "loss 15%"), (end, total, "clean")]);
    let chart = standard_chart("Scenario 1: loss 0% → 15% → 0% on the sender's path", &bots, s, &phases, total);
    let plot = write_plot(o, &chart)?;
    let notes = vec![format!(
        "proxy dropped {} of {} sender→relay datagrams and {} of {} relay→sender",
        proxy_stats.udp_up.dropped_loss,
        proxy_stats.udp_up.packets_in,
        proxy_stats.udp_down.dropped_loss,
        proxy_stats.udp_down.packets_in
    )];
    Ok(report(
        o,
        t0,
        total,
        phases,
        figures,
        Outcome { bots: bots_out, proxies: vec![("sender".into(), proxy_stats)], plot, notes },
    ))
}

/// Scenario 2: the sender's uplink, a tbf-shaped veth, cut from 5 Mbit/s to 500 kbit/s and back.
pub async fn bandwidth_cut(o: &RunOptions) -> Result<Report, LabError> {
    const FAST: u64 = 5_000_000;
    const SLOW: u64 = 500_000;
    const QUEUE: Duration = Duration::from_millis(200);
    let (start, end, total) = if o.short { (8.0, 20.0, 40.0) } else { (15.0, 45.0, 90.0) };
    // Declared first so it is dropped (namespace deleted) after every process in it.
    let ns = NsLink::create(1)?;
    ns.shape(Side::Uplink, FAST, QUEUE)?;
    let relay = RelayProc::start(&o.bins, IpAddr::V4(ns.host_ip), &o.out_dir.join("relay.log")).await?;
    let t0 = now_unix_ms();
    let t0_instant = Instant::now();
    let deadline = t0_instant + secs(total + 4.0) + EXIT_GRACE;

    let mut cast = Cast::new();
    let host = BotSpec::new("receiver", None, relay.tcp_addr, secs(total + 2.0));
    let code = cast.start(o, &host, "host, receives on the host side", None).await?;
    let mut sender = BotSpec::new("sender", code, relay.tcp_addr, secs(total - since(t0)));
    sender.video = true;
    sender.audio = BotAudio::Tone;
    cast.start(o, &sender, "sends video and audio from the namespace over the shaped uplink", Some(&ns)).await?;

    tokio::time::sleep_until((t0_instant + Duration::from_secs_f64(start)).into()).await;
    ns.shape(Side::Uplink, SLOW, QUEUE)?;
    tokio::time::sleep_until((t0_instant + Duration::from_secs_f64(end)).into()).await;
    ns.shape(Side::Uplink, FAST, QUEUE)?;
    let tc_stats = netns::run("tc", &["-n", &ns.name, "-s", "qdisc", "show", "dev", &ns.ns_if]).unwrap_or_default();
    let bots_out = cast.wait(deadline).await;
    relay.stop().await;

    let bots = cast.load(t0);
    let (s, r) = (find(&bots, "sender")?, find(&bots, "receiver")?);
    let figures = step_figures(s, r, start, end);
    let phases = phases_out(&[(0.0, start, "5 Mbit/s"), (start, end, "500 kbit/s"), (end, total, "5 Mbit/s")]);
    let chart = standard_chart("Scenario 2: uplink 5 → 0.5 → 5 Mbit/s (tbf)", &bots, s, &phases, total);
    let plot = write_plot(o, &chart)?;
    let notes = vec![
        format!("tbf queue: {} ms at the configured rate", QUEUE.as_millis()),
        format!("tc -s qdisc after the run: {}", tc_stats.split_whitespace().collect::<Vec<_>>().join(" ")),
    ];
    Ok(report(o, t0, total, phases, figures, Outcome { bots: bots_out, proxies: Vec::new(), plot, notes }))
}

/// Figures of one upload in the file-upload scenario.
#[derive(Debug, Clone, Serialize)]
pub struct UploadFigures {
    /// "parlor (Reno, delay signal)" or "plain TCP (cubic)" / "plain TCP (bbr)".
    pub kind: String,
    pub bytes: u64,
    /// When the upload started and ended, seconds from its run's time zero.
    pub start_s: Option<f64>,
    pub end_s: Option<f64>,
    pub goodput_mbit_s: Option<f64>,
    /// The receiver's one-way delay of the uploader's audio, capture to arrival, over the call
    /// up to the end of the upload (the bot's histogram is cumulative; the upload starts
    /// within a few seconds of the call, so it dominates the sample).
    pub audio_owd_p50_ms: Option<f64>,
    pub audio_owd_p95_ms: Option<f64>,
    /// The same before the upload started (the call alone).
    pub audio_owd_p50_before_ms: Option<f64>,
    /// The uploader's RTT to the relay during the upload (its UDP echo), median of the
    /// per-second values, ms.
    pub uploader_rtt_median_ms: Option<f64>,
    pub mean_cwnd: Option<f64>,
    pub completed: bool,
}

/// Which upload a file-upload run makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UploadKind {
    Parlor,
    /// The kernel's TCP with this congestion control.
    PlainTcp(&'static str),
}

/// Scenario 3: a file over a 5 Mbit/s tbf uplink during a call, by Parlor and by plain TCP
/// with CUBIC (the default of Linux, Windows and macOS) and with BBR (this kernel's default).
pub async fn file_upload(o: &RunOptions) -> Result<Report, LabError> {
    const RATE: u64 = 5_000_000;
    const QUEUE: Duration = Duration::from_millis(300);
    let size: u64 = if o.short { 10_000_000 } else { 50_000_000 };
    let file = o.out_dir.join("upload.bin");
    write_test_file(&file, size)?;
    let ns = NsLink::create(2)?;
    ns.shape(Side::Uplink, RATE, QUEUE)?;
    let relay = RelayProc::start(&o.bins, IpAddr::V4(ns.host_ip), &o.out_dir.join("relay.log")).await?;

    let parlor = upload_run(o, &ns, &relay, &file, size, UploadKind::Parlor).await?;
    let cubic = upload_run(o, &ns, &relay, &file, size, UploadKind::PlainTcp("cubic")).await?;
    let bbr = upload_run(o, &ns, &relay, &file, size, UploadKind::PlainTcp("bbr")).await?;
    relay.stop().await;

    let runs = [&parlor, &cubic, &bbr];
    let x_max = runs.iter().map(|r| r.len).fold(0.0, f64::max);
    let chart = upload_chart(&runs, x_max);
    let plot = write_plot(o, &chart)?;
    let phases = runs
        .iter()
        .map(|r| PhaseOut {
            start_s: r.figures.start_s.unwrap_or(0.0),
            end_s: r.figures.end_s.unwrap_or(r.len),
            label: format!("upload: {}", r.figures.kind),
        })
        .collect();
    let notes = vec![
        format!(
            "uplink: tbf {} Mbit/s, queue {} ms; the call is audio only (tone)",
            RATE / 1_000_000,
            QUEUE.as_millis()
        ),
        "the three uploads run one after another, each in its own call with its own time zero; \
         the plot puts them on one axis"
            .into(),
        "the plain-TCP sink's receive buffer is fixed at 4 MB so the sender's congestion control, \
         not the receiver's window, sets the pace"
            .into(),
    ];
    let duration = runs.iter().map(|r| r.len).sum();
    let figures = serde_json::json!({
        "file_bytes": size,
        "parlor": parlor.figures,
        "tcp_cubic": cubic.figures,
        "tcp_bbr": bbr.figures,
    });
    let mut bots_out = parlor.bots_out;
    bots_out.extend(cubic.bots_out);
    bots_out.extend(bbr.bots_out);
    Ok(report(o, parlor.t0, duration, phases, figures, Outcome { bots: bots_out, proxies: Vec::new(), plot, notes }))
}

/// Writes `size` bytes of incompressible data (a xorshift stream).
fn write_test_file(path: &Path, size: u64) -> Result<(), LabError> {
    use std::io::Write;
    let mut w = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut left = size;
    while left > 0 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let bytes = x.to_le_bytes();
        let n = left.min(8) as usize;
        w.write_all(&bytes[..n])?;
        left -= n as u64;
    }
    w.flush()?;
    Ok(())
}

/// One call with one upload; returns its figures, the bots' stats, their report entries and
/// the run's length in seconds.
async fn upload_run(
    o: &RunOptions,
    ns: &NsLink,
    relay: &RelayProc,
    file: &Path,
    size: u64,
    kind: UploadKind,
) -> Result<UploadRun, LabError> {
    let tag = match kind {
        UploadKind::Parlor => "parlor".to_string(),
        UploadKind::PlainTcp(cc) => format!("tcp-{cc}"),
    };
    // Long enough for the slowest plausible upload; the lab stops the bots when it is done.
    let limit = Duration::from_secs(60) + Duration::from_secs(size * 8 / 1_000_000);
    let t0 = now_unix_ms();
    let t0_instant = Instant::now();
    let mut cast = Cast::new();
    let host = BotSpec::new(&format!("{tag}-receiver"), None, relay.tcp_addr, limit);
    let code = cast.start(o, &host, "host, receives the uploader's audio on the host side", None).await?;
    let mut up = BotSpec::new(&format!("{tag}-uploader"), code, relay.tcp_addr, limit);
    up.audio = BotAudio::Tone;
    if kind == UploadKind::Parlor {
        up.send_file = Some(file.to_path_buf());
    }
    cast.start(o, &up, "in the namespace: audio, and the upload over the shaped uplink", Some(ns)).await?;

    let mut tcp_result = None;
    match kind {
        UploadKind::Parlor => {
            // Done when the uploader's stats say the file is complete.
            let stats_path = cast.bots[1].0.stats_path.clone();
            while t0_instant.elapsed() < limit {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let b = BotStats::load("u", &stats_path, t0).unwrap_or_default();
                let done = b
                    .lines
                    .last()
                    .and_then(|(_, s)| s.files.first())
                    .is_some_and(|f| f.state.is_finished() || (f.total > 0 && f.bytes >= f.total));
                if done {
                    break;
                }
            }
            // One more stats line after completion.
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
        UploadKind::PlainTcp(cc) => {
            // Start about when the Parlor upload starts (right after joining, once the file is
            // hashed), so both runs have the same short call-only lead-in.
            tokio::time::sleep(Duration::from_secs(1)).await;
            // A receive buffer larger than the link's queue, so the kernel's congestion
            // control and not the sink's window sets the pace, as on a real path where tens of
            // ms of RTT let autotuning open the window (on this sub-millisecond veth it would
            // stay small and hide what the congestion control does to the queue). The kernel
            // caps it at twice net.core.rmem_max (416 kB by default), which still exceeds the
            // 190 kB tbf queue.
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.set_recv_buffer_size(4 << 20)?;
            socket.bind(SocketAddr::new(IpAddr::V4(ns.host_ip), 0))?;
            let listener = socket.listen(1)?;
            let to = listener.local_addr()?;
            let exe = std::env::current_exe()?;
            let mut sender = ns.command(&exe);
            let log = std::fs::File::create(o.out_dir.join(format!("{tag}-send.log")))?;
            sender
                .args(["tcp-send", "--to", &to.to_string(), "--bytes", &size.to_string(), "--cc", cc])
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true);
            let mut child = sender.spawn()?;
            let sink = tokio::time::timeout(limit, sink(listener, t0)).await;
            let _ = child.wait().await;
            tcp_result = Some(sink.map_err(|_| LabError::Startup("plain TCP upload did not finish".into()))??);
            tokio::time::sleep(Duration::from_millis(1200)).await;
        }
    }
    let bots_out = cast.stop().await;
    let len = t0_instant.elapsed().as_secs_f64();
    let bots = cast.load(t0);
    let receiver = find(&bots, &format!("{tag}-receiver"))?;
    let uploader = find(&bots, &format!("{tag}-uploader"))?;

    let (start_s, end_s, bytes, completed) = match &tcp_result {
        Some(r) => (Some(r.first_s), Some(r.last_s), r.bytes, r.bytes >= size),
        None => {
            let prog = uploader.series(|s| s.files.first().map(|f| f.bytes as f64));
            let start = prog.iter().find(|p| p.1 > 0.0).map(|p| p.0);
            let end = prog.iter().find(|p| p.1 >= size as f64).map(|p| p.0);
            let bytes = prog.last().map_or(0, |p| p.1 as u64);
            // The first stats line with progress is up to a second after the upload began.
            (start.map(|s| (s - 1.0).max(0.0)), end, bytes, end.is_some())
        }
    };
    let upid = uploader.participant_id().unwrap_or(u32::MAX);
    let owd_at = |t: f64, p95: bool| {
        receiver
            .lines
            .iter()
            .rev()
            .find(|(ts, _)| *ts <= t)
            .and_then(|(_, s)| BotStats::stream_from(s, upid))
            .and_then(|st| if p95 { st.audio.latency_p95_ms } else { st.audio.latency_p50_ms })
    };
    let goodput = match (start_s, end_s) {
        (Some(a), Some(b)) if b > a => Some(bytes as f64 * 8.0 / (b - a) / 1e6),
        _ => None,
    };
    let during = |series: Vec<(f64, f64)>| -> Vec<f64> {
        series
            .into_iter()
            .filter(|&(t, _)| start_s.is_some_and(|a| t >= a) && end_s.is_none_or(|b| t <= b))
            .map(|p| p.1)
            .collect()
    };
    let rtts = during(uploader.series(|s| s.rtt_ms));
    let cwnds = during(uploader.series(|s| s.files.first().and_then(|f| f.cwnd).map(f64::from)));
    let figures = UploadFigures {
        kind: match kind {
            UploadKind::Parlor => "parlor (Reno, delay signal)".into(),
            UploadKind::PlainTcp(cc) => format!("plain TCP ({cc})"),
        },
        bytes,
        start_s,
        end_s,
        goodput_mbit_s: goodput,
        audio_owd_p50_ms: end_s.and_then(|t| owd_at(t, false)),
        audio_owd_p95_ms: end_s.and_then(|t| owd_at(t, true)),
        audio_owd_p50_before_ms: start_s.and_then(|t| owd_at(t, false)),
        uploader_rtt_median_ms: super::metrics::percentile(&rtts, 0.5),
        mean_cwnd: (!cwnds.is_empty()).then(|| cwnds.iter().sum::<f64>() / cwnds.len() as f64),
        completed,
    };
    let progress = match &tcp_result {
        Some(r) => r.progress.clone(),
        None => uploader.series(|s| s.files.first().map(|f| f.bytes as f64 / 1e6)),
    };
    Ok(UploadRun { figures, bots, bots_out, len, t0, progress })
}

/// Everything one upload run produced.
struct UploadRun {
    figures: UploadFigures,
    bots: Vec<BotStats>,
    bots_out: Vec<BotOut>,
    /// Length of the run, seconds.
    len: f64,
    t0: u64,
    /// `(t_s, MB uploaded)`.
    progress: Vec<(f64, f64)>,
}

/// What the plain-TCP sink received.
#[derive(Debug, Clone)]
struct SinkResult {
    bytes: u64,
    first_s: f64,
    last_s: f64,
    /// `(t_s, MB received)`, about every half second.
    progress: Vec<(f64, f64)>,
}

/// Accepts one connection and reads it to the end.
async fn sink(listener: TcpListener, t0_ms: u64) -> Result<SinkResult, LabError> {
    let (mut conn, _) = listener.accept().await?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    let mut first_s = None;
    let mut last_s = 0.0;
    let mut progress: Vec<(f64, f64)> = Vec::new();
    loop {
        let n = conn.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        let t = since(t0_ms);
        first_s.get_or_insert(t);
        last_s = t;
        if progress.last().is_none_or(|p| t - p.0 >= 0.5) {
            progress.push((t, bytes as f64 / 1e6));
        }
    }
    progress.push((last_s, bytes as f64 / 1e6));
    Ok(SinkResult { bytes, first_s: first_s.unwrap_or(last_s), last_s, progress })
}

/// The file-upload plot: both runs on one time axis.
fn upload_chart(runs: &[&UploadRun], x_max: f64) -> Chart {
    let mut audio_owd = Vec::new();
    let mut jitter = Vec::new();
    let mut rtt = Vec::new();
    let mut cwnd = Vec::new();
    let mut progress = Vec::new();
    for run in runs {
        let bots = &run.bots;
        let uploader = bots.iter().find(|b| b.name.ends_with("-uploader"));
        let receiver = bots.iter().find(|b| b.name.ends_with("-receiver"));
        let upid = uploader.and_then(|u| u.participant_id()).unwrap_or(u32::MAX);
        if let Some(r) = receiver {
            audio_owd.push(Series {
                name: r.name.clone(),
                points: r.series(|s| BotStats::stream_from(s, upid).and_then(|st| st.audio.latency_p50_ms)),
            });
            jitter.push(Series {
                name: r.name.clone(),
                points: r.series(|s| BotStats::stream_from(s, upid).map(|st| st.audio.jitter_buffer_ms)),
            });
        }
        if let Some(u) = uploader {
            rtt.push(Series { name: u.name.clone(), points: u.series(|s| s.rtt_ms) });
            let c = u.series(|s| s.files.first().and_then(|f| f.cwnd).map(f64::from));
            if !c.is_empty() {
                cwnd.push(Series { name: u.name.clone(), points: c });
            }
            progress.push(Series { name: u.name.clone(), points: run.progress.clone() });
        }
    }
    let panel = |title: &str, series| Panel { title: title.into(), series, ..Default::default() };
    Chart {
        title: "Scenario 3: a file over a 5 Mbit/s uplink during a call".into(),
        panels: vec![
            panel("audio one-way delay ms (receiver, p50 since the call began)", audio_owd),
            panel("uploader RTT ms", rtt),
            panel("cwnd (chunks)", cwnd),
            panel("uploaded MB", progress),
            panel("jitter buffer ms", jitter),
        ],
        phases: Vec::new(),
        x_max,
    }
}

/// `parlor-lab tcp-send`: the plain upload, with the kernel's TCP and, if given, the
/// congestion control `cc` (e.g. "cubic"; root may pick any the kernel has loaded).
pub async fn tcp_send(to: SocketAddr, bytes: u64, cc: Option<&str>) -> std::io::Result<Duration> {
    use std::os::fd::AsRawFd;
    use tokio::io::AsyncWriteExt;
    let start = Instant::now();
    let socket = if to.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    if let Some(cc) = cc {
        // SAFETY: the pointer and length describe `cc`'s bytes, which outlive the call, and
        // the descriptor is the open socket owned by `socket`.
        let rc = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::IPPROTO_TCP,
                libc::TCP_CONGESTION,
                cc.as_ptr().cast(),
                cc.len() as libc::socklen_t,
            )
        };
        if rc != 0 {
            let err = std::io::Error::last_os_error();
            return Err(std::io::Error::new(err.kind(), format!("congestion control {cc}: {err}")));
        }
    }
    let mut conn = socket.connect(to).await?;
    let chunk: Vec<u8> = (0..64 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        conn.write_all(&chunk[..n]).await?;
        left -= n as u64;
    }
    conn.shutdown().await?;
    Ok(start.elapsed())
}

/// Per-receiver figures of the thinning scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ReceiverFps {
    pub name: String,
    pub impaired: bool,
    pub fps_mean: Option<f64>,
    pub fps_min: Option<f64>,
    pub video_loss_mean: Option<f64>,
    /// Mean received FPS over the sender's mean sent FPS.
    pub ratio_to_sender: Option<f64>,
}

/// Figures of the thinning scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ThinningFigures {
    /// Seconds ignored at the start while everyone joins.
    pub warmup_s: f64,
    pub sender_fps_mean: Option<f64>,
    pub sender_level_min: Option<f64>,
    pub receivers: Vec<ReceiverFps>,
    /// The worst ratio among the good receivers.
    pub good_min_ratio: Option<f64>,
    pub impaired_ratio: Option<f64>,
}

/// Scenario 4: one receiver behind 20% loss among three good receivers.
pub async fn thinning(o: &RunOptions) -> Result<Report, LabError> {
    let (warmup, total) = if o.short { (6.0, 22.0) } else { (8.0, 45.0) };
    let relay = RelayProc::start(&o.bins, LOCALHOST, &o.out_dir.join("relay.log")).await?;
    let schedule = Schedule::parse("0s:loss=20%").map_err(|e| LabError::Startup(e.to_string()))?;
    let proxy = loopback_proxy(&relay, Ipv4Addr::new(127, 0, 0, 2), schedule, o.seed).await?;
    let t0 = now_unix_ms();
    let deadline = Instant::now() + secs(total + 4.0) + EXIT_GRACE;

    let mut cast = Cast::new();
    let mut sender = BotSpec::new("sender", None, relay.tcp_addr, secs(total + 2.0));
    sender.video = true;
    sender.audio = BotAudio::Tone;
    let code = cast.start(o, &sender, "host, sends video and audio", None).await?;
    for name in ["good-1", "good-2", "good-3"] {
        let spec = BotSpec::new(name, code.clone(), relay.tcp_addr, secs(total - since(t0)));
        cast.start(o, &spec, "receives over a clean path", None).await?;
    }
    let bad = BotSpec::new("lossy", code, proxy.tcp_addrs()[0], secs(total - since(t0)));
    cast.start(o, &bad, "receives behind 20% loss (both directions)", None).await?;
    let bots_out = cast.wait(deadline).await;
    let proxy_stats = proxy.shutdown().await;
    relay.stop().await;

    let bots = cast.load(t0);
    let s = find(&bots, "sender")?;
    let spid = s.participant_id().unwrap_or(u32::MAX);
    let sender_fps = mean_in(&s.series(|x| Some(x.video_out.fps)), warmup, total);
    let mut receivers = Vec::new();
    for name in ["good-1", "good-2", "good-3", "lossy"] {
        let b = find(&bots, name)?;
        let fps = b.series(|x| BotStats::stream_from(x, spid).map(|st| st.video.fps));
        let loss = b.series(|x| BotStats::stream_from(x, spid).map(|st| st.video.loss));
        let fps_mean = mean_in(&fps, warmup, total);
        receivers.push(ReceiverFps {
            name: name.to_string(),
            impaired: name == "lossy",
            fps_mean,
            fps_min: min_in(&fps, warmup, total),
            video_loss_mean: mean_in(&loss, warmup, total),
            ratio_to_sender: fps_mean.zip(sender_fps).filter(|(_, s)| *s > 0.0).map(|(r, s)| r / s),
        });
    }
    let good_min_ratio =
        receivers.iter().filter(|r| !r.impaired).map(|r| r.ratio_to_sender.unwrap_or(0.0)).reduce(f64::min);
    let impaired_ratio = receivers.iter().find(|r| r.impaired).and_then(|r| r.ratio_to_sender);
    let figures = ThinningFigures {
        warmup_s: warmup,
        sender_fps_mean: sender_fps,
        sender_level_min: min_in(&s.series(|x| Some(x.quality.level as f64)), warmup, total),
        receivers,
        good_min_ratio,
        impaired_ratio,
    };
    let phases = phases_out(&[(0.0, warmup, "warm-up (not counted)"), (warmup, total, "measured")]);
    let chart = standard_chart("Scenario 4: one receiver behind 20% loss, three good ones", &bots, s, &phases, total);
    let plot = write_plot(o, &chart)?;
    Ok(report(
        o,
        t0,
        total,
        phases,
        figures,
        Outcome { bots: bots_out, proxies: vec![("lossy".into(), proxy_stats)], plot, notes: Vec::new() },
    ))
}

/// One loss condition of the audio scenario.
#[derive(Debug, Clone, Serialize)]
pub struct PesqCondition {
    pub loss: f64,
    pub pesq_mean: Option<f64>,
    pub pesq_min: Option<f64>,
    pub scores: Vec<f64>,
    /// Loss the proxy actually applied.
    pub measured_loss: f64,
    /// Concealed frames / played frames at this receiver.
    pub concealment_rate: Option<f64>,
    pub recording: String,
}

/// Scenario 5: speech through 0, 2, 5 and 10% random loss, scored with PESQ wideband.
pub async fn audio_pesq(o: &RunOptions) -> Result<Report, LabError> {
    const LOSSES: [f64; 4] = [0.0, 0.02, 0.05, 0.10];
    let python = pesq::ensure_venv(&o.venv)?;
    let speech = o.out_dir.join("speech.wav");
    pesq::make_speech(&speech)?;
    let speech_s = wav_seconds(&speech)?;
    let loops = if o.short { 1 } else { 4 };
    // Receivers join at an arbitrary point of the sender's loop, so `loops` whole copies
    // need one more loop of recording, plus the join and warm-up.
    let skip = 1.5;
    let total = skip + speech_s * (loops as f64 + 1.0) + 1.5;

    let relay = RelayProc::start(&o.bins, LOCALHOST, &o.out_dir.join("relay.log")).await?;
    let mut proxies = Vec::new();
    for (i, loss) in LOSSES.iter().enumerate() {
        // Loss on the way to the receiver only: the speech crosses it once.
        let schedule =
            Schedule::parse(&format!("0s:down.loss={loss}")).map_err(|e| LabError::Startup(e.to_string()))?;
        let ip = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
        proxies.push(loopback_proxy(&relay, ip, schedule, o.seed.wrapping_add(i as u64)).await?);
    }
    let t0 = now_unix_ms();
    let deadline = Instant::now() + secs(total + 4.0) + EXIT_GRACE;
    let mut cast = Cast::new();
    let mut sender = BotSpec::new("speaker", None, relay.tcp_addr, secs(total + 2.0));
    sender.audio = BotAudio::Wav(speech.clone());
    let code = cast.start(o, &sender, "host, sends the speech on a loop", None).await?;
    let names: Vec<String> = LOSSES.iter().map(|l| format!("listener-{}pct", (l * 100.0).round())).collect();
    for (name, proxy) in names.iter().zip(&proxies) {
        let mut spec = BotSpec::new(name, code.clone(), proxy.tcp_addrs()[0], secs(total - since(t0)));
        spec.record_audio = Some(o.out_dir.join(format!("{name}.wav")));
        cast.start(o, &spec, "records what it plays", None).await?;
    }
    let bots_out = cast.wait(deadline).await;
    let mut proxy_stats = Vec::new();
    for (name, p) in names.iter().zip(proxies) {
        proxy_stats.push((name.clone(), p.shutdown().await));
    }
    relay.stop().await;

    let bots = cast.load(t0);
    let s = find(&bots, "speaker")?;
    let spid = s.participant_id().unwrap_or(u32::MAX);
    let mut conditions = Vec::new();
    for ((loss, name), (_, ps)) in LOSSES.iter().zip(&names).zip(&proxy_stats) {
        let rec = o.out_dir.join(format!("{name}.wav"));
        let result = pesq::score(&python, &o.out_dir, &speech, &rec, skip, loops)?;
        let b = find(&bots, name)?;
        let concealed = b.series(|x| BotStats::stream_from(x, spid).map(|st| st.audio.concealed_frames as f64));
        let played = b.series(|x| BotStats::stream_from(x, spid).map(|st| st.audio.played_frames as f64));
        let concealment_rate = match (concealed.last(), played.last()) {
            (Some(c), Some(p)) if p.1 > 0.0 => Some(c.1 / p.1),
            _ => None,
        };
        let measured_loss = if ps.udp_down.packets_in > 0 {
            ps.udp_down.dropped_loss as f64 / ps.udp_down.packets_in as f64
        } else {
            0.0
        };
        conditions.push(PesqCondition {
            loss: *loss,
            pesq_mean: result.mean,
            pesq_min: result.min,
            scores: result.scores,
            measured_loss,
            concealment_rate,
            recording: format!("{name}.wav"),
        });
    }
    let phases = phases_out(&[(skip, total, "speech on a loop (scored from here)")]);
    let chart = audio_chart(&bots, s, &phases, total);
    let plot = write_plot(o, &chart)?;
    let figures = serde_json::json!({ "speech_s": speech_s, "loops_scored": loops, "conditions": conditions });
    let notes = vec!["loss applies relay → listener only; each listener has its own proxy and seed".into()];
    Ok(report(o, t0, total, phases, figures, Outcome { bots: bots_out, proxies: proxy_stats, plot, notes }))
}

/// The audio scenario's plot: what each listener got of the speaker's audio.
fn audio_chart(bots: &[BotStats], speaker: &BotStats, phases: &[PhaseOut], x_max: f64) -> Chart {
    let spid = speaker.participant_id().unwrap_or(u32::MAX);
    let listeners: Vec<&BotStats> = bots.iter().filter(|b| b.name != speaker.name).collect();
    let series = |f: &dyn Fn(&super::stats::AudioInStats) -> f64| -> Vec<Series> {
        listeners
            .iter()
            .map(|b| Series {
                name: b.name.clone(),
                points: b.series(|x| BotStats::stream_from(x, spid).map(|st| f(&st.audio))),
            })
            .collect()
    };
    // Concealed frames per second, from the cumulative counter.
    let concealed: Vec<Series> = series(&|a| a.concealed_frames as f64)
        .into_iter()
        .map(|s| Series {
            name: s.name,
            points: s.points.windows(2).map(|w| (w[1].0, (w[1].1 - w[0].1) / (w[1].0 - w[0].0).max(1e-3))).collect(),
        })
        .collect();
    let panel = |title: &str, series| Panel { title: title.into(), series, ..Default::default() };
    Chart {
        title: "Scenario 5: speech through 0/2/5/10% loss".into(),
        panels: vec![
            panel("audio loss %", series(&|a| a.loss * 100.0)),
            panel("concealed frames per second (of 50)", concealed),
            panel("jitter buffer ms", series(&|a| a.jitter_buffer_ms)),
            panel(
                "RTT ms",
                bots.iter().map(|b| Series { name: b.name.clone(), points: b.series(|x| x.rtt_ms) }).collect(),
            ),
        ],
        phases: phases.iter().map(|p| Phase { start_s: p.start_s, end_s: p.end_s, label: p.label.clone() }).collect(),
        x_max,
    }
}

/// Length of a 16-bit PCM WAV file in seconds (from its header and size).
fn wav_seconds(path: &Path) -> Result<f64, LabError> {
    let data = std::fs::read(path)?;
    let rate = data.get(24..28).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).unwrap_or(0);
    let channels = data.get(22..24).map(|b| u16::from_le_bytes([b[0], b[1]])).unwrap_or(0);
    if rate == 0 || channels == 0 {
        return Err(LabError::NoData(format!("{} is not a WAV file", path.display())));
    }
    Ok(data.len().saturating_sub(44) as f64 / (rate as f64 * 2.0 * f64::from(channels)))
}
