//! The real `parlor-bot` binary: `create` prints the meeting code, `join` gets in with
//! `--auto-admit`, a file sent with `--send-file` lands in `--save-dir`, and both print
//! their summaries and exit 0. A bot frozen with `SIGSTOP` for 10 s takes its seat back after
//! `SIGCONT`, printing `RESUMED`.

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

/// Sends `signal` to the process `pid`.
fn signal(pid: u32, signal: libc::c_int) {
    // SAFETY: kill(2) with a child's pid and a valid signal number has no memory effects.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed: {}", std::io::Error::last_os_error());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bot_frozen_for_ten_seconds_resumes_its_seat() {
    use client_core::SessionEvent;
    use common::{create, quiet, Bot, LONG};

    // A relay that notices a silent connection after 3 s, so the freeze outlasts it.
    let config = relay_server::RelayConfig {
        liveness_timeout: Duration::from_secs(3),
        ..relay_server::RelayConfig::for_tests()
    };
    let relay = relay_server::Relay::start(config).await.unwrap();
    let addr = relay.tcp_addr().to_string();
    let host = Bot::connect(&addr, quiet()).await;
    let (code, _) = create(&host, "Host").await;

    let mut guest = Command::new(BOT)
        .args(["join", &code, "--relay", &addr, "--name", "Frozen", "--duration", "20s"])
        .args(["--audio", "none", "--start-level", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let guest_lines = lines(&mut guest);
    let request = host
        .wait("the bot's knock", LONG, |e| match e {
            SessionEvent::Knock { request_id, .. } => Some(*request_id),
            _ => None,
        })
        .await;
    host.session.admit(request).await.unwrap();
    let guest_id = host
        .wait("the bot's join", LONG, |e| match e {
            SessionEvent::ParticipantJoined { participant } => Some(participant.id),
            _ => None,
        })
        .await;
    host.wait_until("the bot's video", LONG, |log| log.frames.get(&guest_id).is_some_and(|f| f.len() >= 5)).await;

    signal(guest.id(), libc::SIGSTOP);
    let stopped_at = tokio::time::Instant::now();
    host.wait("the bot shown reconnecting", LONG, |e| match e {
        SessionEvent::ParticipantUpdated { participant } if participant.id == guest_id && participant.reconnecting => {
            Some(())
        }
        _ => None,
    })
    .await;
    // Frozen for 10 s in all, whatever the wait above took.
    tokio::time::sleep_until(stopped_at + Duration::from_secs(10)).await;
    let frames_before = host.log.lock().unwrap().frames.get(&guest_id).map_or(0, Vec::len);
    signal(guest.id(), libc::SIGCONT);

    host.wait("the bot back", LONG, |e| match e {
        SessionEvent::ParticipantUpdated { participant } if participant.id == guest_id && !participant.reconnecting => {
            Some(())
        }
        _ => None,
    })
    .await;
    host.wait_until("the bot's video again", LONG, |log| {
        log.frames.get(&guest_id).is_some_and(|f| f.len() >= frames_before + 10)
    })
    .await;
    // Before the bot's own leave at the end of its run.
    let host_events = host.events();
    assert!(!host_events.iter().any(|e| matches!(e, SessionEvent::ParticipantLeft { .. })), "no leave");
    assert_eq!(host_events.iter().filter(|e| matches!(e, SessionEvent::Knock { .. })).count(), 1, "no second knock");
    let status = tokio::task::spawn_blocking(move || wait_exit(&mut guest, Duration::from_secs(60))).await.unwrap();
    assert!(status.success(), "the bot ran to its end: {status:?}");
    let out: Vec<String> = guest_lines.try_iter().collect();
    let resumed = out.iter().find(|l| l.starts_with("RESUMED")).unwrap_or_else(|| panic!("no RESUMED in {out:?}"));
    let after_ms: u64 = field(resumed, "after_ms").unwrap().parse().unwrap();
    assert!(after_ms < 10_000, "resumed {after_ms} ms after it noticed: {resumed}");
    assert!(out.iter().any(|l| l.starts_with("RECONNECTING")), "{out:?}");
    assert!(!out.iter().any(|l| l.starts_with("DISCONNECTED")), "{out:?}");
    assert_eq!(out.iter().filter(|l| l.starts_with("JOINED")).count(), 1, "one join, then a resume: {out:?}");
    host.close().await;
    relay.shutdown().await;
}
