//! The real `parlor-bot` binary: `create` prints the meeting code, `join` gets in with
//! `--auto-admit`, a file sent with `--send-file` lands in `--save-dir`, and both print
//! their summaries and exit 0.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::start_relay;

const BOT: &str = env!("CARGO_BIN_EXE_parlor-bot");

/// Reads a child's stdout lines on a thread.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
}

fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("parlor-bot did not exit in {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_join_print_code_and_summary() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let stats = dir.path().join("host.jsonl");

    let mut host = Command::new(BOT)
        .args(["create", "--relay", &addr, "--name", "HostBot", "--auto-admit", "--duration", "7s"])
        .arg("--stats-json")
        .arg(&stats)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let host_lines = lines(&mut host);
    let code = loop {
        let line = host_lines.recv_timeout(Duration::from_secs(20)).expect("MEETING_CODE line");
        if let Some(code) = line.strip_prefix("MEETING_CODE ") {
            break code.to_string();
        }
    };
    assert!(protocol::control::is_valid_meeting_code(&code), "{code:?}");
    let invite = host_lines.recv_timeout(Duration::from_secs(20)).expect("INVITE line");
    let invite = invite.strip_prefix("INVITE ").unwrap_or_else(|| panic!("INVITE after MEETING_CODE: {invite}"));
    let parsed = protocol::invite::Invite::parse_link(invite).expect("a valid invitation");
    assert_eq!((parsed.relay.as_str(), parsed.code.as_str()), (addr.as_str(), code.as_str()));
    assert_eq!(parsed.fingerprint, Some(relay.certificate_fingerprint()));

    // The guest joins from the invitation alone: relay, code and certificate.
    let mut guest = Command::new(BOT)
        .args(["join", invite, "--name", "GuestBot", "--duration", "4s", "--audio", "none"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let guest_lines = lines(&mut guest);
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut guest, Duration::from_secs(60))).await.unwrap();
    assert!(status.success(), "guest exit {status:?}");
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut host, Duration::from_secs(60))).await.unwrap();
    assert!(status.success(), "host exit {status:?}");

    let guest_out: Vec<String> = guest_lines.try_iter().collect();
    let host_out: Vec<String> = host_lines.try_iter().collect();
    let joined = guest_out.iter().find(|l| l.starts_with("JOINED")).expect("guest joined");
    assert_eq!(field(joined, "code"), Some(code.as_str()));
    let host_joined = host_out.iter().find(|l| l.starts_with("JOINED")).expect("host joined");
    let host_id = field(host_joined, "participant").unwrap().to_string();

    // The guest's summary: it received the host's video and audio.
    let summary = guest_out.iter().find(|l| l.starts_with("SUMMARY ")).expect("guest SUMMARY");
    assert_eq!(field(summary, "audio_frames_sent"), Some("0"));
    let stream = guest_out
        .iter()
        .find(|l| l.starts_with("SUMMARY_STREAM") && field(l, "participant") == Some(host_id.as_str()))
        .unwrap_or_else(|| panic!("guest SUMMARY_STREAM for the host in {guest_out:?}"));
    let frames: u64 = field(stream, "video_frames_received").unwrap().parse().unwrap();
    assert!(frames >= 20, "{stream}");
    assert_eq!(field(stream, "video_size"), Some("854x480"));
    let audio: u64 = field(stream, "audio_packets_received").unwrap().parse().unwrap();
    assert!(audio >= 100, "{stream}");
    let p50: f64 = field(stream, "video_latency_p50_ms").unwrap().parse().unwrap();
    let p95: f64 = field(stream, "video_latency_p95_ms").unwrap().parse().unwrap();
    assert!(p50 <= p95 && p95 < 2000.0, "{stream}");

    // The host's summary: it received the guest's video (no audio: --audio none).
    let summary = host_out.iter().find(|l| l.starts_with("SUMMARY ")).expect("host SUMMARY");
    let sent: u64 = field(summary, "video_frames_sent").unwrap().parse().unwrap();
    assert!(sent >= 60, "{summary}");
    assert!(host_out.iter().any(|l| l.starts_with("KNOCK")), "auto-admitted a knock");
    assert!(std::fs::read_to_string(&stats).unwrap().lines().count() >= 4, "stats JSON lines written");
    relay.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_sends_a_file_another_saves_it() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, b"meeting notes\n".repeat(1000)).unwrap();
    let save = dir.path().join("saved");

    let mut host = Command::new(BOT)
        .args(["create", "--relay", &addr, "--name", "Host", "--auto-admit", "--duration", "6s"])
        .args(["--video", "none", "--audio", "none", "--save-dir"])
        .arg(&save)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let host_lines = lines(&mut host);
    let code = loop {
        let line = host_lines.recv_timeout(Duration::from_secs(20)).expect("MEETING_CODE line");
        if let Some(code) = line.strip_prefix("MEETING_CODE ") {
            break code.to_string();
        }
    };
    let mut guest = Command::new(BOT)
        .args(["join", &code, "--relay", &addr, "--name", "Guest", "--duration", "3s"])
        .args(["--video", "none", "--audio", "none", "--chat", "hi all", "--send-file"])
        .arg(&file)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let guest_lines = lines(&mut guest);
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut guest, Duration::from_secs(60))).await.unwrap();
    assert!(status.success());
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut host, Duration::from_secs(60))).await.unwrap();
    assert!(status.success());
    let guest_out: Vec<String> = guest_lines.try_iter().collect();
    let host_out: Vec<String> = host_lines.try_iter().collect();
    assert!(guest_out.iter().any(|l| l.starts_with("FILE_SENT")), "{guest_out:?}");
    assert!(host_out.iter().any(|l| l.starts_with("CHAT") && l.contains("hi all")), "{host_out:?}");
    let saved = host_out.iter().find(|l| l.starts_with("FILE_SAVED")).unwrap_or_else(|| panic!("{host_out:?}"));
    let path = saved.split("path=").nth(1).unwrap();
    assert_eq!(std::fs::read(path).unwrap(), std::fs::read(&file).unwrap());
    let summary = host_out.iter().find(|l| l.starts_with("SUMMARY ")).unwrap();
    assert_eq!(field(summary, "files_saved"), Some("1"));
    assert_eq!(field(summary, "chats_received"), Some("1"));
    relay.shutdown().await;
}
