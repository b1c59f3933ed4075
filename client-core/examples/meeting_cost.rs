//! What one bot costs in a 4-party 480p meeting: starts a relay in-process, runs four
//! `parlor-bot` processes (synthetic 480p video at 20 fps, a tone) for `--secs` seconds
//! (default 20) and prints each bot's CPU use (percent of one core) and resident memory,
//! as the bots report them in their summaries.
//!
//! ```text
//! cargo build --release -p client-core --bins --examples
//! target/release/examples/meeting_cost [--secs 20]
//! ```
//!
//! The `parlor-bot` binary is looked up next to this example's directory (or in
//! `$PARLOR_BOT`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use relay_server::{Relay, RelayConfig};

fn bot_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PARLOR_BOT") {
        return Ok(p.into());
    }
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|d| d.parent()).context("no target directory")?;
    let bot = dir.join("parlor-bot");
    if !bot.exists() {
        bail!("{} not found; build the bins first or set PARLOR_BOT", bot.display());
    }
    Ok(bot)
}

fn field<'a>(line: &'a str, key: &str) -> &'a str {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('='))).unwrap_or("na")
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let secs: u64 = match args.iter().position(|a| a == "--secs") {
        Some(i) => args.get(i + 1).context("--secs needs a value")?.parse()?,
        None => 20,
    };
    let bot = bot_path()?;
    let relay = Relay::start(RelayConfig::for_tests()).await?;
    let addr = relay.tcp_addr().to_string();
    let duration = format!("{secs}s");

    let mut host = Command::new(&bot)
        .args(["create", "--relay", &addr, "--name", "bot-0", "--auto-admit", "--duration"])
        .arg(format!("{}s", secs + 3))
        .stdout(Stdio::piped())
        .spawn()?;
    let mut host_out = BufReader::new(host.stdout.take().context("stdout")?).lines();
    let code = loop {
        let line = host_out.next().context("host exited early")??;
        if let Some(code) = line.strip_prefix("MEETING_CODE ") {
            break code.to_string();
        }
    };
    let mut guests = Vec::new();
    for i in 1..4 {
        guests.push(
            Command::new(&bot)
                .args(["join", &code, "--relay", &addr, "--name", &format!("bot-{i}"), "--duration", &duration])
                .stdout(Stdio::piped())
                .spawn()?,
        );
    }
    let mut summaries = Vec::new();
    let guest_outputs =
        tokio::task::spawn_blocking(move || guests.into_iter().map(|g| g.wait_with_output()).collect::<Vec<_>>())
            .await?;
    for out in guest_outputs {
        let out = out?;
        summaries.extend(String::from_utf8_lossy(&out.stdout).lines().map(str::to_string));
    }
    summaries.extend(host_out.map_while(Result::ok));
    let _ = tokio::task::spawn_blocking(move || host.wait()).await?;
    relay.shutdown().await;

    println!("4-party meeting, 480p synthetic video + tone, {secs} s per guest bot:");
    for line in summaries.iter().filter(|l| l.starts_with("SUMMARY ")) {
        println!(
            "  participant {:>3}: cpu {:>5}% of one core, rss {:>6} MiB (peak {} MiB), frames sent {}, quality {}",
            field(line, "participant"),
            field(line, "cpu_percent"),
            field(line, "rss_mib"),
            field(line, "peak_rss_mib"),
            field(line, "video_frames_sent"),
            field(line, "quality"),
        );
    }
    for line in summaries.iter().filter(|l| l.starts_with("SUMMARY_STREAM")) {
        println!(
            "    stream from {:>3}: {} frames {}, loss {}, jitter buffer {} ms, video latency p50/p95 {}/{} ms",
            field(line, "participant"),
            field(line, "video_frames_received"),
            field(line, "video_size"),
            field(line, "video_loss"),
            field(line, "jitter_buffer_ms"),
            field(line, "video_latency_p50_ms"),
            field(line, "video_latency_p95_ms"),
        );
    }
    Ok(())
}
