//! The relay and the bots of a scenario, run as child processes.
//!
//! Every child is killed when its handle is dropped (`kill_on_drop`), so a scenario that fails
//! half-way leaves nothing running. Each child's output goes to a log file in the run's
//! output directory.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use super::netns::NsLink;
use super::LabError;

/// Where the relay and bot executables are.
#[derive(Debug, Clone)]
pub struct Bins {
    pub relay: PathBuf,
    pub bot: PathBuf,
}

impl Bins {
    /// Finds `relay-server` and `parlor-bot` in `dir`, by default the directory of this
    /// executable (cargo puts every workspace binary in the same target directory).
    pub fn locate(dir: Option<&Path>) -> Result<Bins, LabError> {
        let dir = match dir {
            Some(d) => d.to_path_buf(),
            None => {
                let exe = std::env::current_exe().map_err(LabError::Io)?;
                let mut d = exe.parent().map(Path::to_path_buf).unwrap_or_default();
                // Test executables live one level down, in target/<profile>/deps.
                if d.ends_with("deps") {
                    d.pop();
                }
                d
            }
        };
        let bins = Bins { relay: dir.join("relay-server"), bot: dir.join("parlor-bot") };
        for p in [&bins.relay, &bins.bot] {
            if !p.is_file() {
                return Err(LabError::MissingBinary(p.clone()));
            }
        }
        Ok(bins)
    }
}

/// Spawns `cmd` with stderr (and stdout unless `pipe_stdout`) appended to `log`.
fn spawn_logged(mut cmd: Command, log: &Path, pipe_stdout: bool) -> Result<Child, LabError> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(log).map_err(LabError::Io)?;
    let err = file.try_clone().map_err(LabError::Io)?;
    cmd.stdin(Stdio::null())
        .stderr(Stdio::from(err))
        .stdout(if pipe_stdout { Stdio::piped() } else { Stdio::from(file) })
        .kill_on_drop(true);
    let program = format!("{:?}", cmd.as_std());
    tracing::debug!(%program, "spawning");
    cmd.spawn().map_err(|e| LabError::Command { command: program, message: e.to_string() })
}

/// Copies a child's stdout to its log, handing every line to `on_line` first.
fn tee_stdout(child: &mut Child, log: &Path, mut on_line: impl FnMut(&str) + Send + 'static) {
    let Some(stdout) = child.stdout.take() else { return };
    let log = log.to_path_buf();
    tokio::spawn(async move {
        let mut file = tokio::fs::OpenOptions::new().create(true).append(true).open(&log).await.ok();
        let mut lines = BufReader::new(stdout).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            on_line(&line);
            if let Some(f) = file.as_mut() {
                let _ = f.write_all(format!("{line}\n").as_bytes()).await;
            }
        }
    });
}

/// A running `relay-server`.
#[derive(Debug)]
pub struct RelayProc {
    child: Child,
    pub tcp_addr: SocketAddr,
    pub udp_addr: SocketAddr,
}

impl RelayProc {
    /// Starts the relay on `host` with free ports and waits until it says where it listens.
    pub async fn start(bins: &Bins, host: IpAddr, log: &Path) -> Result<RelayProc, LabError> {
        let mut cmd = Command::new(&bins.relay);
        cmd.args(["--host", &host.to_string(), "--tcp-port", "0", "--udp-port", "0"]);
        let mut child = spawn_logged(cmd, log, true)?;
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        tee_stdout(&mut child, log, move |line| {
            if let (Some(tcp), Some(udp)) = (addr_after(line, "tcp://"), addr_after(line, "udp://")) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send((tcp, udp));
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(20), rx).await {
            Ok(Ok((tcp_addr, udp_addr))) => Ok(RelayProc { child, tcp_addr, udp_addr }),
            _ => Err(LabError::Startup(format!("relay-server did not report its addresses; see {}", log.display()))),
        }
    }

    /// Stops the relay.
    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// The socket address written right after `marker` in `line`.
fn addr_after(line: &str, marker: &str) -> Option<SocketAddr> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split_whitespace().next()?.trim_end_matches(['/', ',']).parse().ok()
}

/// The audio a bot sends.
#[derive(Debug, Clone, PartialEq)]
pub enum BotAudio {
    None,
    Tone,
    Wav(PathBuf),
}

/// The meeting code in a line of `parlor-bot create`'s output: `MEETING_CODE 123456`, or
/// the six digits alone on their line.
fn meeting_code(line: &str) -> Option<String> {
    let t = line.trim();
    let code = t.strip_prefix("MEETING_CODE").map(str::trim).unwrap_or(t);
    (code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())).then(|| code.to_string())
}

/// How to run one bot.
#[derive(Debug, Clone)]
pub struct BotSpec {
    pub name: String,
    /// `None` creates the meeting; `Some(code)` joins it.
    pub join_code: Option<String>,
    /// The relay's TCP address as this bot sees it (possibly a proxy's).
    pub relay: SocketAddr,
    pub video: bool,
    pub audio: BotAudio,
    pub duration: Duration,
    pub send_file: Option<PathBuf>,
    pub record_audio: Option<PathBuf>,
}

impl BotSpec {
    /// A bot with no media, joining `code` (or creating when `None`).
    pub fn new(name: &str, join_code: Option<String>, relay: SocketAddr, duration: Duration) -> BotSpec {
        BotSpec {
            name: name.to_string(),
            join_code,
            relay,
            video: false,
            audio: BotAudio::None,
            duration,
            send_file: None,
            record_audio: None,
        }
    }
}

/// A running `parlor-bot`.
#[derive(Debug)]
pub struct BotProc {
    pub name: String,
    child: Child,
    /// Its stats JSON-lines file.
    pub stats_path: PathBuf,
    pub log_path: PathBuf,
    /// The meeting code, for a bot that created the meeting.
    pub code: Option<String>,
}

impl BotProc {
    /// Starts a bot, in `netns` if given. A creating bot is only returned once it printed the
    /// meeting code.
    pub async fn start(
        bins: &Bins,
        spec: &BotSpec,
        out_dir: &Path,
        netns: Option<&NsLink>,
    ) -> Result<BotProc, LabError> {
        let stats_path = out_dir.join(format!("{}.stats.jsonl", spec.name));
        let log_path = out_dir.join(format!("{}.log", spec.name));
        let _ = std::fs::remove_file(&stats_path);
        let mut cmd = match netns {
            Some(ns) => ns.command(&bins.bot),
            None => Command::new(&bins.bot),
        };
        match &spec.join_code {
            None => cmd.args(["create", "--auto-admit"]),
            Some(code) => cmd.args(["join", code]),
        };
        cmd.arg("--relay").arg(spec.relay.to_string());
        cmd.arg("--name").arg(&spec.name);
        cmd.args(["--video", if spec.video { "synthetic" } else { "none" }]);
        match &spec.audio {
            BotAudio::None => cmd.args(["--audio", "none"]),
            BotAudio::Tone => cmd.args(["--audio", "tone"]),
            BotAudio::Wav(p) => cmd.arg("--audio").arg(format!("wav:{}", p.display())),
        };
        cmd.arg("--duration").arg(format!("{}ms", spec.duration.as_millis()));
        cmd.arg("--stats-json").arg(&stats_path);
        if let Some(f) = &spec.send_file {
            cmd.arg("--send-file").arg(f);
        }
        if let Some(w) = &spec.record_audio {
            cmd.arg("--record-audio").arg(w);
        }
        let creating = spec.join_code.is_none();
        let mut child = spawn_logged(cmd, &log_path, true)?;
        let (tx, rx) = oneshot::channel();
        let mut tx = Some(tx);
        tee_stdout(&mut child, &log_path, move |line| {
            if let Some(code) = meeting_code(line) {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(code);
                }
            }
        });
        let mut bot = BotProc { name: spec.name.clone(), child, stats_path, log_path, code: None };
        if creating {
            match tokio::time::timeout(Duration::from_secs(30), rx).await {
                Ok(Ok(code)) => bot.code = Some(code),
                _ => {
                    return Err(LabError::Startup(format!(
                        "bot {} did not print a meeting code; see {}",
                        spec.name,
                        bot.log_path.display()
                    )))
                }
            }
        }
        Ok(bot)
    }

    /// Waits for the bot to finish, killing it after `timeout`.
    pub async fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, LabError> {
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(status) => status.map_err(LabError::Io),
            Err(_) => {
                let _ = self.child.start_kill();
                let _ = self.child.wait().await;
                Err(LabError::Startup(format!(
                    "bot {} did not finish in time; see {}",
                    self.name,
                    self.log_path.display()
                )))
            }
        }
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_addresses_in_the_relay_banner() {
        let line = "parlor relay listening: control tcp://127.0.0.1:40001  media udp://127.0.0.1:40002";
        assert_eq!(addr_after(line, "tcp://"), Some("127.0.0.1:40001".parse().unwrap()));
        assert_eq!(addr_after(line, "udp://"), Some("127.0.0.1:40002".parse().unwrap()));
        assert_eq!(addr_after("nothing here", "tcp://"), None);
    }

    #[test]
    fn finds_the_meeting_code() {
        assert_eq!(meeting_code("MEETING_CODE 042137").as_deref(), Some("042137"));
        assert_eq!(meeting_code("042137\n").as_deref(), Some("042137"));
        assert_eq!(meeting_code("JOINED code=042137 participant=1"), None);
        assert_eq!(meeting_code("MEETING_CODE 12345"), None);
    }
}
