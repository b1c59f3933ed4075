//! `relay-server` binary: reads its settings (flags, `PARLOR_*` variables, a TOML file, in that
//! order of precedence), starts the relay, prints the addresses it listens on and runs until
//! Ctrl-C / SIGTERM. `--print-config` prints the merged settings as TOML instead.

use std::ffi::OsString;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{CommandFactory, Parser};
use relay_server::{AddressRates, CertificateSource, Rate, Relay, RelayConfig};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

/// The defaults the flags show.
static D: std::sync::LazyLock<RelayConfig> = std::sync::LazyLock::new(RelayConfig::default);

/// Parlor relay: hosts meetings, relays their media and files.
///
/// Every setting is a flag, a PARLOR_* environment variable and a key of the --config file
/// (named as the flag, with `_` or `-`): a flag wins over a variable, a variable over the file,
/// the file over the default.
#[derive(Debug, Parser, Serialize)]
#[command(version, about, args_override_self = true)]
struct Args {
    /// A TOML file of settings, e.g. `tcp_port = 5000` (see --print-config for every key).
    #[arg(long, env = "PARLOR_CONFIG")]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Print the settings the flags, variables and file make, as TOML, and exit.
    #[arg(long)]
    #[serde(skip)]
    print_config: bool,
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
    /// The TLS certificate chain to serve (PEM), e.g. one from a CA that clients verify against
    /// their system roots [default: a self-signed certificate kept in --data-dir/tls, or a new
    /// one at each start without --data-dir]. Needs --tls-key.
    #[arg(long, env = "PARLOR_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, env = "PARLOR_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Largest file a participant may upload, in bytes.
    #[arg(long, env = "PARLOR_MAX_FILE_SIZE", default_value_t = RelayConfig::default().max_file_size)]
    max_file_size: u64,
    /// Bytes spooled across all meetings (files, and uploads as their bytes arrive).
    #[arg(long, env = "PARLOR_MAX_SPOOL_BYTES", default_value_t = D.max_spool_bytes)]
    max_spool_bytes: u64,
    /// Bytes one meeting's files and uploads may hold in the spool.
    #[arg(long, env = "PARLOR_MAX_SPOOL_BYTES_PER_MEETING", default_value_t = D.max_spool_bytes_per_meeting)]
    max_spool_bytes_per_meeting: u64,
    /// Bytes one participant's files and uploads may hold in the spool, in one meeting.
    #[arg(long, env = "PARLOR_MAX_SPOOL_BYTES_PER_PARTICIPANT", default_value_t = D.max_spool_bytes_per_participant)]
    max_spool_bytes_per_participant: u64,
    /// An upload moving fewer than --upload-stall-min-bytes in this many seconds is cut.
    #[arg(long, env = "PARLOR_UPLOAD_STALL_SECS", default_value_t = D.upload_stall_window.as_secs())]
    upload_stall_secs: u64,
    /// Bytes an upload must move in every --upload-stall-secs.
    #[arg(long, env = "PARLOR_UPLOAD_STALL_MIN_BYTES", default_value_t = D.upload_stall_min_bytes)]
    upload_stall_min_bytes: u64,
    /// Participants per meeting, host included.
    #[arg(long, env = "PARLOR_MAX_PARTICIPANTS", default_value_t = RelayConfig::default().max_participants)]
    max_participants: usize,
    /// Seconds a knock waits for the host.
    #[arg(long, env = "PARLOR_KNOCK_TIMEOUT_SECS", default_value_t = 120)]
    knock_timeout_secs: u64,
    /// Seconds of silence after which a participant is dropped.
    #[arg(long, env = "PARLOR_LIVENESS_TIMEOUT_SECS", default_value_t = 15)]
    liveness_timeout_secs: u64,
    /// Seconds a participant whose connection dropped keeps its seat for a RESUME (0: a drop
    /// is a leave at once).
    #[arg(long, env = "PARLOR_RESUME_GRACE_SECS", default_value_t = D.resume_grace.as_secs())]
    resume_grace_secs: u64,
    /// Seconds a connection may stay in no meeting and no waiting room before it is closed.
    #[arg(long, env = "PARLOR_IDLE_BEFORE_JOIN_SECS", default_value_t = D.idle_before_join_timeout.as_secs())]
    idle_before_join_secs: u64,
    /// Open TCP connections (control and file) on this relay, all addresses together.
    #[arg(long, env = "PARLOR_MAX_CONNECTIONS", default_value_t = D.max_connections)]
    max_connections: usize,
    /// Open connections allowed from one address (IPv4, or an IPv6 /64).
    #[arg(long, env = "PARLOR_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = D.max_connections_per_address)]
    max_connections_per_address: usize,
    /// Knocks from one address waiting in one meeting.
    #[arg(long, env = "PARLOR_MAX_PENDING_KNOCKS_PER_ADDRESS", default_value_t = D.max_pending_knocks_per_address)]
    max_pending_knocks_per_address: usize,
    /// Joins naming an unknown code one address may make at once…
    #[arg(long, env = "PARLOR_FAILED_JOINS_BURST", default_value_t = D.address_rates.failed_joins.burst)]
    failed_joins_burst: u32,
    /// …then one more per this many seconds.
    #[arg(long, env = "PARLOR_FAILED_JOIN_REFILL_SECS", default_value_t = D.address_rates.failed_joins.every.as_secs())]
    failed_join_refill_secs: u64,
    /// Knocks one address may make at once…
    #[arg(long, env = "PARLOR_KNOCKS_BURST", default_value_t = D.address_rates.knocks.burst)]
    knocks_burst: u32,
    /// …then one more per this many seconds.
    #[arg(long, env = "PARLOR_KNOCK_REFILL_SECS", default_value_t = D.address_rates.knocks.every.as_secs())]
    knock_refill_secs: u64,
    /// Meetings one address may create at once…
    #[arg(long, env = "PARLOR_NEW_MEETINGS_BURST", default_value_t = D.address_rates.new_meetings.burst)]
    new_meetings_burst: u32,
    /// …then one more per this many seconds.
    #[arg(long, env = "PARLOR_NEW_MEETING_REFILL_SECS", default_value_t = D.address_rates.new_meetings.every.as_secs())]
    new_meeting_refill_secs: u64,
    /// Chat messages a participant may send at once…
    #[arg(long, env = "PARLOR_CHAT_BURST", default_value_t = D.chat_burst)]
    chat_burst: u32,
    /// …and per second after that.
    #[arg(long, env = "PARLOR_CHAT_PER_SECOND", default_value_t = D.chat_per_second)]
    chat_per_second: u32,
    /// Bytes of chat history a joiner receives in JOINED.
    #[arg(long, env = "PARLOR_CHAT_HISTORY_BYTES", default_value_t = D.chat_history_bytes)]
    chat_history_bytes: usize,
    /// Mic/camera/speaking changes a participant may send at once…
    #[arg(long, env = "PARLOR_MEDIA_STATE_BURST", default_value_t = D.media_state_burst)]
    media_state_burst: u32,
    /// …and per second after that.
    #[arg(long, env = "PARLOR_MEDIA_STATE_PER_SECOND", default_value_t = D.media_state_per_second)]
    media_state_per_second: u32,
    /// Reactions a participant may send at once…
    #[arg(long, env = "PARLOR_REACTION_BURST", default_value_t = D.reaction_burst)]
    reaction_burst: u32,
    /// …and per second after that.
    #[arg(long, env = "PARLOR_REACTION_PER_SECOND", default_value_t = D.reaction_per_second)]
    reaction_per_second: u32,
    /// Serve Prometheus metrics (`/metrics`) and a health check (`/healthz`) over HTTP on this
    /// address, e.g. 127.0.0.1:9464 [default: off]. Keep it private.
    #[arg(long, env = "PARLOR_METRICS_ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,
    /// Join a cluster of relays that act as one service through this Redis server, e.g.
    /// redis://10.0.0.5:6379/0 (a password goes in the URL: redis://:PASSWORD@HOST:6379)
    /// [default: this relay works alone].
    #[arg(long, env = "PARLOR_REDIS")]
    redis: Option<String>,
    /// With --redis: where clients reach this relay's TCP port, HOST:PORT, as the other relays
    /// redirect them to it [default: --host:--tcp-port, if --host is a specific address].
    #[arg(long, env = "PARLOR_PUBLIC_ADDRESS")]
    public_address: Option<String>,
    /// With --redis: participants this relay hosts before new meetings go to a less loaded relay.
    #[arg(long, env = "PARLOR_CAPACITY", default_value_t = D.capacity)]
    capacity: usize,
    /// Log filter (tracing-subscriber EnvFilter syntax), e.g. `info` or `relay_server=debug`.
    #[arg(long, env = "PARLOR_LOG", default_value = "info")]
    log: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if args.print_config {
        print!("{}", toml::to_string(&args).context("printing the settings")?);
        return Ok(());
    }
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_new(&args.log).context("invalid --log filter")?).init();

    let config = RelayConfig {
        host: args.host,
        tcp_port: args.tcp_port,
        udp_port: args.udp_port,
        data_dir: args.data_dir,
        // With --data-dir; --resume-grace-secs 0 turns it off.
        keep_meetings_across_restarts: true,
        certificate: match (args.tls_cert, args.tls_key) {
            (Some(cert), Some(key)) => CertificateSource::Files { cert, key },
            _ => CertificateSource::SelfSigned,
        },
        max_file_size: args.max_file_size,
        max_spool_bytes: args.max_spool_bytes,
        max_spool_bytes_per_meeting: args.max_spool_bytes_per_meeting,
        max_spool_bytes_per_participant: args.max_spool_bytes_per_participant,
        upload_stall_window: Duration::from_secs(args.upload_stall_secs.max(1)),
        upload_stall_min_bytes: args.upload_stall_min_bytes,
        max_participants: args.max_participants.max(1),
        knock_timeout: Duration::from_secs(args.knock_timeout_secs),
        liveness_timeout: Duration::from_secs(args.liveness_timeout_secs.max(1)),
        idle_before_join_timeout: Duration::from_secs(args.idle_before_join_secs.max(1)),
        resume_grace: Duration::from_secs(args.resume_grace_secs),
        max_connections: args.max_connections,
        max_connections_per_address: args.max_connections_per_address,
        max_pending_knocks_per_address: args.max_pending_knocks_per_address,
        address_rates: AddressRates {
            failed_joins: Rate::new(args.failed_joins_burst, Duration::from_secs(args.failed_join_refill_secs)),
            knocks: Rate::new(args.knocks_burst, Duration::from_secs(args.knock_refill_secs)),
            new_meetings: Rate::new(args.new_meetings_burst, Duration::from_secs(args.new_meeting_refill_secs)),
        },
        chat_burst: args.chat_burst,
        chat_per_second: args.chat_per_second,
        chat_history_bytes: args.chat_history_bytes,
        media_state_burst: args.media_state_burst,
        media_state_per_second: args.media_state_per_second,
        reaction_burst: args.reaction_burst,
        reaction_per_second: args.reaction_per_second,
        metrics_addr: args.metrics_addr,
        redis_url: args.redis,
        public_address: args.public_address,
        capacity: args.capacity,
        ..RelayConfig::default()
    };
    let relay = Relay::start(config).await.context("starting the relay")?;
    println!("parlor relay listening: control tcp://{}  media udp://{}", relay.tcp_addr(), relay.udp_addr());
    println!("certificate SHA-256 fingerprint: {}", relay.certificate_fingerprint());
    println!("spooling files under {}", relay.spool_dir().display());
    if let Some(address) = relay.public_address() {
        println!("one relay of a cluster: clients are redirected here at {address}");
    }
    if let Some(addr) = relay.metrics_addr() {
        println!("metrics on http://{addr}/metrics, health on http://{addr}/healthz");
    }

    wait_for_signal().await;
    println!("shutting down");
    relay.shutdown().await;
    Ok(())
}

/// The command line, with the settings of the `--config` file (if any) placed before it, so
/// that a flag given on the command line overrides them; a setting whose `PARLOR_*` variable is
/// set is left out of them, so that the variable does too.
fn parse_args() -> anyhow::Result<Args> {
    let command_line: Vec<OsString> = std::env::args_os().collect();
    let first = Args::parse_from(&command_line);
    let Some(path) = &first.config else { return Ok(first) };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading the settings file {}", path.display()))?;
    let from_file = settings_as_flags(&text, &Args::command())
        .with_context(|| format!("in the settings file {}", path.display()))?;
    let (program, rest) = command_line.split_first().context("no program name")?;
    let argv =
        std::iter::once(program.clone()).chain(from_file.into_iter().map(OsString::from)).chain(rest.iter().cloned());
    Ok(Args::parse_from(argv))
}

/// The settings of a TOML file as `--flag=value` arguments of `command`, leaving out those
/// whose environment variable is set.
fn settings_as_flags(text: &str, command: &clap::Command) -> anyhow::Result<Vec<String>> {
    let table: toml::Table = text.parse().context("not valid TOML")?;
    let mut flags = Vec::new();
    for (key, value) in table {
        let long = key.replace('_', "-");
        let arg = command
            .get_arguments()
            .find(|a| a.get_long() == Some(long.as_str()) && !matches!(long.as_str(), "config" | "print-config"))
            .with_context(|| format!("unknown setting `{key}` (the settings are the flags of --help)"))?;
        if arg.get_env().is_some_and(|var| std::env::var_os(var).is_some()) {
            continue;
        }
        let value = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Float(x) => x.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => anyhow::bail!("`{key}`: expected a string, a number or a boolean, not {}", other.type_str()),
        };
        flags.push(format!("--{long}={value}"));
    }
    Ok(flags)
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
