//! `parlor-impair`: an impairment proxy between Parlor clients and a relay.
//!
//! ```text
//! relay-server --host 127.0.0.1 --tcp-port 7000 --udp-port 7001 &
//! parlor-impair --tcp 127.0.0.2:7000=127.0.0.1:7000 --udp 127.0.0.2:7001=127.0.0.1:7001 \
//!     --schedule "0s:clean, 10s:loss=15%, 30s:clean" --seed 7
//! parlor-bot join 123456 --relay 127.0.0.2:7000 ...
//! ```
//!
//! The relay tells clients its UDP port in `WELCOME` and they send media to that port on the
//! host they connected to, so the proxy listens on another loopback address (127.0.0.2) with
//! the relay's own port numbers. See `netlab::schedule` for the impairment syntax.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use netlab::schedule::{parse_duration, Schedule};
use netlab::{PortMap, Proxy, ProxyConfig};
use tokio::io::AsyncWriteExt;

/// The parameter syntax of --impair and of each schedule step (netlab/src/schedule.rs).
const IMPAIRMENT_HELP: &str = "\
IMPAIRMENT PARAMETERS (--impair, and each step of --schedule / --schedule-file):
  `clean`, or key=value pairs separated by spaces or `;`:
    loss=0.15 | loss=15%     independent random loss
    ge=P_GB/P_BG[/LOSS_BAD[/LOSS_GOOD]]
                             Gilbert-Elliott bursty loss: a good and a bad state; P_GB is the
                             chance per packet of going from good to bad, P_BG from bad back to
                             good; LOSS_BAD (default 1) and LOSS_GOOD (default 0) the loss in
                             each. Mean burst = 1/P_BG packets, mean loss = P_GB/(P_GB+P_BG)
                             with the defaults. 5% loss in bursts of 3: ge=0.01754/0.3333
    delay=40ms               one-way delay
    jitter=10ms              uniform jitter of +/- this much (order kept)
    reorder=5%  gap=20ms     chance a packet is held back by `gap` and overtaken
    dup=1%                   duplication
    rate=500k | 5M | 5mbit   bottleneck rate in bit/s;  queue=64k  its drop-tail queue, bytes
  A key applies to both directions. Prefix it with `up.` (client -> upstream) or `down.`
  (upstream -> client) for one direction only: `up.rate=500k down.ge=0.01754/0.3333`.
  A later key replaces an earlier one for the same direction (ge and loss are one setting).

SCHEDULES:
  AT:PARAMS steps separated by commas or newlines, `#` comments; each step replaces the whole
  configuration from its time on: \"0s:clean, 10s:down.loss=15%, 30s:clean\".";

#[derive(Debug, Parser)]
#[command(
    name = "parlor-impair",
    about = "UDP/TCP proxy that adds loss, delay, jitter, reordering, duplication and rate limits",
    after_help = IMPAIRMENT_HELP
)]
struct Args {
    /// UDP mapping LISTEN=UPSTREAM, e.g. 127.0.0.2:7001=127.0.0.1:7001 (repeatable).
    #[arg(long = "udp", value_parser = parse_map)]
    udp: Vec<PortMap>,
    /// TCP mapping LISTEN=UPSTREAM (repeatable). TCP gets delay, jitter and rate only.
    #[arg(long = "tcp", value_parser = parse_map)]
    tcp: Vec<PortMap>,
    /// Impairment schedule, e.g. "0s:clean, 10s:loss=15% delay=20ms, 30s:clean".
    #[arg(long, conflicts_with_all = ["schedule_file", "impair"])]
    schedule: Option<String>,
    /// File with one schedule step per line (AT: PARAMS), `#` comments.
    #[arg(long, conflicts_with = "impair")]
    schedule_file: Option<PathBuf>,
    /// Constant impairment for the whole run, e.g. "loss=5% up.rate=1M".
    #[arg(long)]
    impair: Option<String>,
    /// Seed of every random decision.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Most UDP client flows per listen address.
    #[arg(long, default_value_t = 256)]
    max_flows: usize,
    /// Forget a UDP flow after this long without traffic.
    #[arg(long, default_value = "60s", value_parser = parse_dur)]
    flow_idle: Duration,
    /// Stop after this long (default: run until SIGINT/SIGTERM).
    #[arg(long, value_parser = parse_dur)]
    duration: Option<Duration>,
    /// Append the counters as a JSON line every --stats-interval to this file.
    #[arg(long)]
    stats_json: Option<PathBuf>,
    #[arg(long, default_value = "1s", value_parser = parse_dur)]
    stats_interval: Duration,
}

fn parse_map(s: &str) -> Result<PortMap, String> {
    let (listen, upstream) = s.split_once('=').ok_or_else(|| format!("`{s}` is not LISTEN=UPSTREAM"))?;
    let listen: SocketAddr = listen.trim().parse().map_err(|e| format!("listen address `{listen}`: {e}"))?;
    let upstream: SocketAddr = upstream.trim().parse().map_err(|e| format!("upstream address `{upstream}`: {e}"))?;
    Ok(PortMap { listen, upstream })
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    parse_duration(s).map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "parlor_impair=info,netlab=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if args.udp.is_empty() && args.tcp.is_empty() {
        bail!("give at least one --udp or --tcp mapping");
    }
    let schedule = if let Some(text) = &args.schedule {
        Schedule::parse(text)?
    } else if let Some(path) = &args.schedule_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Schedule::parse(&text).with_context(|| format!("in {}", path.display()))?
    } else if let Some(params) = &args.impair {
        Schedule::parse(&format!("0s:{params}"))?
    } else {
        Schedule::default()
    };
    let config = ProxyConfig {
        udp: args.udp.clone(),
        tcp: args.tcp.clone(),
        schedule,
        seed: args.seed,
        max_udp_flows: args.max_flows,
        udp_flow_idle: args.flow_idle,
        ..Default::default()
    };
    let proxy = Proxy::start(config).await?;
    for (map, addr) in args.udp.iter().zip(proxy.udp_addrs()) {
        println!("udp {addr} -> {}", map.upstream);
    }
    for (map, addr) in args.tcp.iter().zip(proxy.tcp_addrs()) {
        println!("tcp {addr} -> {}", map.upstream);
    }

    let mut stats_file = match &args.stats_json {
        Some(path) => Some(
            tokio::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .await
                .with_context(|| format!("opening {}", path.display()))?,
        ),
        None => None,
    };
    let mut tick = tokio::time::interval(args.stats_interval.max(Duration::from_millis(10)));
    let deadline = args.duration.map(|d| tokio::time::Instant::from_std(proxy.started_at() + d));
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if let Some(file) = stats_file.as_mut() {
                    let line = serde_json::json!({
                        "t_s": proxy.started_at().elapsed().as_secs_f64(),
                        "stats": proxy.stats(),
                    });
                    file.write_all(format!("{line}\n").as_bytes()).await?;
                }
            }
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => break,
        }
    }
    let elapsed = proxy.started_at().elapsed();
    let stats = proxy.shutdown().await;
    println!("{}", serde_json::json!({ "t_s": elapsed.as_secs_f64(), "final": stats }));
    Ok(())
}
