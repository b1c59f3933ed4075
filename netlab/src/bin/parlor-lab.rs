//! `parlor-lab`: runs a network scenario against real relay and bot processes and writes a
//! report (`report.json`) and a plot (`report.svg`).
//!
//! ```text
//! parlor-lab run loss-step --out lab-out/loss-step [--short] [--bin-dir target/release]
//! parlor-lab list
//! parlor-lab cleanup          # remove network namespaces left by a killed run
//! ```
//! `bandwidth-cut` and `file-upload` need root (network namespaces, `tc`).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use netlab::lab::{self, netns, procs::Bins, RunOptions, Scenario};

#[derive(Debug, Parser)]
#[command(name = "parlor-lab", about = "Parlor's network lab: scenarios with impaired links, measured")]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run one scenario and write report.json and report.svg into --out.
    Run {
        scenario: Scenario,
        /// Output directory (created).
        #[arg(long)]
        out: PathBuf,
        /// The short version used by the tests.
        #[arg(long)]
        short: bool,
        /// Directory with relay-server and parlor-bot [default: this executable's directory].
        #[arg(long)]
        bin_dir: Option<PathBuf>,
        /// Seed of the impairment proxies.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Python virtual environment for PESQ [default: <bin-dir>/../lab-venv].
        #[arg(long)]
        venv: Option<PathBuf>,
    },
    /// List the scenarios.
    List,
    /// Remove network namespaces left behind by lab runs that were killed.
    Cleanup,
    /// (internal) Upload BYTES to an address with plain TCP; used inside a namespace.
    #[command(hide = true)]
    TcpSend {
        #[arg(long)]
        to: SocketAddr,
        #[arg(long)]
        bytes: u64,
        /// TCP congestion control for this connection (e.g. cubic, bbr, reno).
        #[arg(long)]
        cc: Option<String>,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "netlab=info,parlor_lab=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match Args::parse().command {
        Cmd::List => {
            for s in Scenario::value_variants() {
                let help = s.to_possible_value().and_then(|v| v.get_help().map(|h| h.to_string())).unwrap_or_default();
                println!("{:<14} {}{}", s.name(), help, if s.needs_root() { " [root]" } else { "" });
            }
            Ok(())
        }
        Cmd::Cleanup => {
            for name in netns::cleanup_stale() {
                println!("removed {name}");
            }
            Ok(())
        }
        Cmd::TcpSend { to, bytes, cc } => {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let took = rt
                .block_on(lab::scenarios::tcp_send(to, bytes, cc.as_deref()))
                .with_context(|| format!("sending to {to}"))?;
            println!("sent {bytes} bytes in {:.2} s", took.as_secs_f64());
            Ok(())
        }
        Cmd::Run { scenario, out, short, bin_dir, seed, venv } => {
            let bins = Bins::locate(bin_dir.as_deref())?;
            let venv = venv.unwrap_or_else(|| {
                bins.bot
                    .parent()
                    .and_then(|d| d.parent())
                    .map(|d| d.join("lab-venv"))
                    .unwrap_or_else(|| "lab-venv".into())
            });
            let opts = RunOptions {
                scenario,
                out_dir: out.clone(),
                short,
                bins,
                seed,
                venv,
                command_line: std::env::args().collect::<Vec<_>>().join(" "),
            };
            let rt = tokio::runtime::Runtime::new()?;
            let report = rt.block_on(async {
                tokio::select! {
                    r = lab::run(&opts) => r.map_err(anyhow::Error::from),
                    // Dropping the scenario's future kills its processes and deletes its
                    // namespaces on the way out.
                    _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
                    _ = sigterm() => Err(anyhow::anyhow!("terminated")),
                }
            });
            // The failure is also kept next to the run's logs, so whoever ran it (a test, a
            // CI log cut to its last lines) can say why without the whole stderr.
            let report = report.inspect_err(|e| {
                let _ = std::fs::create_dir_all(&out);
                let _ = std::fs::write(out.join("error.txt"), format!("{e:#}\n"));
            })?;
            println!("{}", serde_json::to_string_pretty(&report.figures)?);
            println!("report: {}  plot: {}", out.join("report.json").display(), out.join(&report.plot).display());
            Ok(())
        }
    }
}

async fn sigterm() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut s) => {
            s.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
