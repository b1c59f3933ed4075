//! A private PulseAudio daemon with a null sink, so the real cpal input and output paths run at
//! real time on a machine without a sound card.
//!
//! [`PulseNullSink::start`] starts `pulseaudio` with its runtime directory and home in a
//! temporary directory, points this process at it (`PULSE_SERVER`; the engine then picks cpal's
//! PulseAudio host, the null sink is the default sink and its monitor the default source), and
//! kills the daemon when dropped. (ALSA's pulse plugin is deliberately not used: it stalls
//! cpal's ALSA backend, see `client_core::media`'s device notes.) It changes this process's
//! environment, so a test binary should use it from a single test, before anything touches
//! audio.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running private PulseAudio daemon; stopped on drop.
pub struct PulseNullSink {
    child: Child,
    dir: tempfile::TempDir,
}

impl PulseNullSink {
    /// Starts the daemon and routes ALSA's default devices to it. Panics with a clear message
    /// if PulseAudio is not installed or does not come up: these tests must not silently skip.
    pub fn start() -> Self {
        let installed =
            Command::new("pulseaudio").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
        if !matches!(installed, Ok(status) if status.success()) {
            panic!(
                "pulseaudio is not installed: this test runs the real cpal capture and playback paths through \
                 PulseAudio's null sink. Install pulseaudio, pulseaudio-utils and libasound2-plugins \
                 (scripts/install-deps.sh does)."
            );
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let runtime = dir.path().join("runtime");
        std::fs::create_dir(&runtime).expect("runtime dir");
        // Never let a client autospawn a daemon of its own if it cannot reach ours.
        let client_conf = dir.path().join("client.conf");
        std::fs::write(&client_conf, "autospawn = no\n").expect("client.conf");
        let env = pulse_env(dir.path(), &runtime, &client_conf);
        for (key, value) in &env {
            std::env::set_var(key, value);
        }
        let log = std::fs::File::create(dir.path().join("pulseaudio.log")).expect("log file");
        let child = Command::new("pulseaudio")
            .args([
                "-n",
                "--daemonize=no",
                "--exit-idle-time=-1",
                // Running as root (CI containers) needs an explicit "not a system daemon".
                "--system=false",
                "--disallow-exit",
                "-L",
                "module-native-protocol-unix",
                "-L",
                "module-null-sink sink_name=nullsink",
                "-L",
                "module-always-sink",
            ])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawning pulseaudio");
        let mut server = Self { child, dir };
        server.wait_ready(&runtime);
        server
    }

    fn wait_ready(&mut self, runtime: &Path) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("pulseaudio exited with {status} before it was ready:\n{}", self.log());
            }
            if runtime.join("native").exists() {
                let info = Command::new("pactl").arg("info").stdout(Stdio::piped()).stderr(Stdio::null()).output();
                if let Ok(out) = info {
                    let text = String::from_utf8_lossy(&out.stdout);
                    if out.status.success() && text.contains("Default Source: nullsink.monitor") {
                        return;
                    }
                }
            }
            if Instant::now() > deadline {
                panic!("pulseaudio did not become ready within 15 s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("pulseaudio.log")).unwrap_or_default()
    }
}

impl Drop for PulseNullSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pulse_env(home: &Path, runtime: &Path, client_conf: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("HOME", home.to_path_buf()),
        ("XDG_RUNTIME_DIR", runtime.to_path_buf()),
        ("PULSE_RUNTIME_PATH", runtime.to_path_buf()),
        ("PULSE_SERVER", PathBuf::from(format!("unix:{}", runtime.join("native").display()))),
        ("PULSE_CLIENTCONFIG", client_conf.to_path_buf()),
        ("XDG_CONFIG_HOME", home.join(".config")),
    ]
}
