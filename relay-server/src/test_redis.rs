//! A private Redis server for tests and benchmarks of relay clusters: Debian's `redis-server`
//! run as a child process on a Unix socket in a temporary directory (no TCP port to collide
//! with anything, nothing kept on disk), stopped with the value. It can be stopped and started
//! again at the same address, empty, as a Redis that crashed and came back is.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long `redis-server` may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `redis-server` (or one stopped with [`RedisServer::stop`], to be started again).
#[derive(Debug)]
pub struct RedisServer {
    dir: tempfile::TempDir,
    child: Option<Child>,
}

/// Why `redis-server` could not be started.
#[derive(Debug, thiserror::Error)]
pub enum RedisStartError {
    #[error("cannot make a directory for redis-server: {0}")]
    Dir(std::io::Error),
    #[error("cannot run redis-server (Debian package redis-server; scripts/install-deps.sh installs it): {0}")]
    Spawn(std::io::Error),
    #[error("redis-server exited at start ({0})")]
    Exited(std::process::ExitStatus),
    #[error("redis-server did not answer PING within {START_TIMEOUT:?}")]
    NoAnswer,
}

impl RedisServer {
    /// Starts one and waits until it answers `PING`.
    pub fn start() -> Result<Self, RedisStartError> {
        let dir = tempfile::Builder::new().prefix("parlor-redis-").tempdir().map_err(RedisStartError::Dir)?;
        let mut server = Self { dir, child: None };
        server.restart()?;
        Ok(server)
    }

    /// Where it listens.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    /// The URL relays are given (`--redis`).
    pub fn url(&self) -> String {
        format!("redis+unix://{}", self.socket().display())
    }

    /// Kills it (as a crash would: nothing is saved).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.socket());
    }

    /// Starts it (again) at the same address, empty, and waits until it answers `PING`.
    pub fn restart(&mut self) -> Result<(), RedisStartError> {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(self.socket())
            .args(["--unixsocketperm", "700", "--save", "", "--appendonly", "no", "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(RedisStartError::Spawn)?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                self.child = None;
                return Err(RedisStartError::Exited(status));
            }
            if self.answers_ping() {
                return Ok(());
            }
            if Instant::now() > deadline {
                self.stop();
                return Err(RedisStartError::NoAnswer);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn answers_ping(&self) -> bool {
        let Ok(mut stream) = UnixStream::connect(self.socket()) else { return false };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok() && stream.read_exact(&mut reply).is_ok() && &reply == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
