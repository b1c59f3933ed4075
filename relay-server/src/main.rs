//! `relay-server` binary: parses the command line (or environment), starts the relay, prints
//! the addresses it listens on and runs until Ctrl-C / SIGTERM.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use relay_server::{Relay, RelayConfig};
use tracing_subscriber::EnvFilter;

/// Parlor relay: hosts meetings, relays their media and files.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "PARLOR_HOST", default_value = "0.0.0.0")]
    host: IpAddr,
    /// TCP port for control and file connections (0 = any free port).
    #[arg(long, env = "PARLOR_TCP_PORT", default_value_t = 5000)]
    tcp_port: u16,
    /// UDP port for media (0 = any free port).
    #[arg(long, env = "PARLOR_UDP_PORT", default_value_t = 5001)]
    udp_port: u16,
    /// Directory for spooled files [default: a private temporary directory].
    #[arg(long, env = "PARLOR_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Largest file a participant may upload, in bytes.
    #[arg(long, env = "PARLOR_MAX_FILE_SIZE", default_value_t = RelayConfig::default().max_file_size)]
    max_file_size: u64,
    /// Participants per meeting, host included.
    #[arg(long, env = "PARLOR_MAX_PARTICIPANTS", default_value_t = RelayConfig::default().max_participants)]
    max_participants: usize,
    /// Seconds a knock waits for the host.
    #[arg(long, env = "PARLOR_KNOCK_TIMEOUT_SECS", default_value_t = 120)]
    knock_timeout_secs: u64,
    /// Seconds of silence after which a participant is dropped.
    #[arg(long, env = "PARLOR_LIVENESS_TIMEOUT_SECS", default_value_t = 15)]
    liveness_timeout_secs: u64,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or `relay_server=debug`.
    #[arg(long, env = "PARLOR_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_new(&args.log).context("invalid --log filter")?).init();

    let config = RelayConfig {
        host: args.host,
        tcp_port: args.tcp_port,
        udp_port: args.udp_port,
        data_dir: args.data_dir,
        max_file_size: args.max_file_size,
        max_participants: args.max_participants.max(1),
        knock_timeout: Duration::from_secs(args.knock_timeout_secs),
        liveness_timeout: Duration::from_secs(args.liveness_timeout_secs.max(1)),
        ..RelayConfig::default()
    };
    let relay = Relay::start(config).await.context("starting the relay")?;
    println!("parlor relay listening: control tcp://{}  media udp://{}", relay.tcp_addr(), relay.udp_addr());
    println!("spooling files under {}", relay.spool_dir().display());

    wait_for_signal().await;
    println!("shutting down");
    relay.shutdown().await;
    Ok(())
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
