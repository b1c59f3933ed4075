//! The relay binary keeps its meetings across a restart: stopped with SIGTERM (participants are
//! told `RELAY_RESTARTING`) or killed outright with SIGKILL, then started again on the same ports
//! and data directory, it still has the meeting under the same code, and `RESUME` with the seat's
//! secret takes the seat back — same participant id, chat history kept, no knock. A record that
//! cannot be read is deleted, and ids go on from the previous run. An upload cut by a kill goes
//! on from exactly the bytes the relay had acknowledged.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use protocol::control::MeetingWelcome;
use protocol::file::{FileFrame, MAX_FILE_FRAME_LEN};
use protocol::fingerprint::Fingerprint;
use protocol::framing::{ControlFrames, FrameCodec, RawFrames};
use protocol::{ControlMessage, PROTOCOL_VERSION};
use tokio::net::TcpStream;
use tokio_util::codec::Framed;

const WAIT: Duration = Duration::from_secs(10);

/// Where a relay listens and the certificate it serves.
struct Endpoint {
    tcp: SocketAddr,
    udp: SocketAddr,
    fingerprint: Fingerprint,
}

/// A running relay binary and what it printed about itself.
struct RelayProcess {
    child: Child,
    at: Endpoint,
}

impl RelayProcess {
    /// Starts the binary on 127.0.0.1 at the given ports (0: any), keeping its meetings in
    /// `data_dir` for 30 s, and waits until it says it listens.
    fn start(data_dir: &Path, tcp_port: u16, udp_port: u16) -> RelayProcess {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_relay-server"));
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("PARLOR_") {
                cmd.env_remove(var);
            }
        }
        let mut child = cmd
            .args(["--host", "127.0.0.1", "--tcp-port", &tcp_port.to_string(), "--udp-port", &udp_port.to_string()])
            .args(["--resume-grace-secs", "30", "--log", "warn", "--data-dir"])
            .arg(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run relay-server");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut next = || lines.next().expect("the relay printed its addresses before exiting").expect("UTF-8");
        // "parlor relay listening: control tcp://ADDR  media udp://ADDR"
        let listening = next();
        let addr = |scheme: &str| -> SocketAddr {
            let rest = listening.split(scheme).nth(1).unwrap_or_else(|| panic!("no {scheme} in {listening:?}"));
            rest.split_whitespace().next().unwrap().parse().unwrap()
        };
        let (tcp, udp) = (addr("tcp://"), addr("udp://"));
        let fingerprint_line = next();
        let fingerprint = fingerprint_line.rsplit(' ').next().unwrap().parse().expect("a fingerprint");
        // The rest of stdout is drained, so the relay never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        RelayProcess { child, at: Endpoint { tcp, udp, fingerprint } }
    }

    fn ports(&self) -> (u16, u16) {
        (self.at.tcp.port(), self.at.udp.port())
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill").args([signal, &self.child.id().to_string()]).status().expect("kill");
        assert!(status.success());
    }

    /// Waits for the process to exit.
    fn wait(mut self) -> std::process::ExitStatus {
        self.child.wait().expect("wait for the relay")
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Control = Framed<tokio_rustls::client::TlsStream<TcpStream>, ControlFrames>;

/// A TLS connection to `relay`, its certificate pinned.
async fn connect_tls(relay: &Endpoint) -> tokio_rustls::client::TlsStream<TcpStream> {
    let config = protocol::tls::client_config(protocol::tls::pinned(relay.fingerprint));
    let name = rustls::pki_types::ServerName::try_from("parlor-relay").unwrap();
    let stream = TcpStream::connect(relay.tcp).await.expect("connect");
    tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await.expect("TLS handshake")
}

/// A control connection to `relay`, its certificate pinned, after HELLO / WELCOME.
async fn connect(relay: &Endpoint) -> Control {
    let mut control = Framed::new(connect_tls(relay).await, ControlFrames(FrameCodec::default()));
    control
        .send(ControlMessage::Hello { protocol_version: PROTOCOL_VERSION, client_name: "restart-test".into() })
        .await
        .unwrap();
    match recv(&mut control).await {
        Some(ControlMessage::Welcome { udp_port, .. }) => assert_eq!(udp_port, relay.udp.port()),
        other => panic!("expected WELCOME, got {other:?}"),
    }
    control
}

/// The next message other than PING (answered); `None` once the relay closed the connection.
async fn recv(control: &mut Control) -> Option<ControlMessage> {
    loop {
        let next = tokio::time::timeout(WAIT, control.next()).await.expect("timed out waiting for a message");
        match next? {
            Ok(Ok(ControlMessage::Ping { nonce })) => control.send(ControlMessage::Pong { nonce }).await.unwrap(),
            Ok(Ok(msg)) => return Some(msg),
            Ok(Err(e)) => panic!("malformed message: {e}"),
            // A connection reset by a killed relay.
            Err(_) => return None,
        }
    }
}

/// Creates a meeting and posts one chat message; returns the host's welcome.
async fn meeting_with_chat(relay: &Endpoint, text: &str) -> (Control, MeetingWelcome) {
    let mut host = connect(relay).await;
    let public = "0f".repeat(32);
    host.send(ControlMessage::CreateMeeting { display_name: "Ada".into(), media_public_key: public }).await.unwrap();
    let welcome = match recv(&mut host).await {
        Some(ControlMessage::Joined(welcome)) => welcome,
        other => panic!("expected JOINED, got {other:?}"),
    };
    host.send(ControlMessage::ChatSend { text: text.into(), client_msg_id: Some(1) }).await.unwrap();
    loop {
        if let Some(ControlMessage::Chat { message }) = recv(&mut host).await {
            assert_eq!(message.text, text);
            break;
        }
    }
    (host, welcome)
}

/// Waits until the meeting's record on disk holds `text` (it is written within 250 ms of a
/// change): a chat message's text, or any other piece of its JSON.
async fn wait_recorded(data_dir: &Path, welcome: &MeetingWelcome, text: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let spool = data_dir.join("parlor-spool");
    loop {
        let recorded = std::fs::read_dir(&spool).unwrap().filter_map(Result::ok).any(|dir| {
            std::fs::read_to_string(dir.path().join("meeting.json"))
                .is_ok_and(|json| json.contains(text) && json.contains(&welcome.code))
        });
        if recorded {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "the meeting's record never held the chat");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How a relay stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Graceful,
    Killed,
}

/// Takes `welcome`'s seat back on the restarted `relay` and checks it is the same seat.
async fn resume(relay: &Endpoint, welcome: &MeetingWelcome, text: &str, stop: Stop) {
    let mut control = connect(relay).await;
    control
        .send(ControlMessage::Resume {
            code: welcome.code.clone(),
            participant_id: welcome.participant_id,
            resume_secret: welcome.resume_secret.clone(),
            last_chat_id: 0,
        })
        .await
        .unwrap();
    let resumed = match recv(&mut control).await {
        Some(ControlMessage::Resumed(resumed)) => resumed,
        other => panic!("expected RESUMED, got {other:?}"),
    };
    assert_eq!((resumed.code.as_str(), resumed.participant_id), (welcome.code.as_str(), welcome.participant_id));
    assert_eq!(resumed.host_id, welcome.participant_id, "still the host");
    let history: Vec<&str> = resumed.chat_history.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(history, vec![text]);
    assert!(resumed.roster.iter().all(|p| !p.reconnecting), "{:?}", resumed.roster);
    // The meeting goes on, and no chat id is handed out twice: after a graceful stop the ids go
    // on where they were; after a kill the record may have missed the last messages clients
    // saw, so they go on well past anything handed out before.
    control.send(ControlMessage::ChatSend { text: "and on".into(), client_msg_id: Some(2) }).await.unwrap();
    loop {
        if let Some(ControlMessage::Chat { message }) = recv(&mut control).await {
            assert_eq!(message.text, "and on");
            match stop {
                Stop::Graceful => assert_eq!(message.id, 2),
                Stop::Killed => assert!(message.id > 1_000_000, "chat id {} after a kill", message.id),
            }
            break;
        }
    }
}

#[tokio::test]
async fn a_killed_relay_started_again_gives_the_seat_back() {
    let data_dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(data_dir.path(), 0, 0);
    let (mut host, welcome) = meeting_with_chat(&relay.at, "kept through a kill").await;
    wait_recorded(data_dir.path(), &welcome, "kept through a kill").await;

    let ports = relay.ports();
    relay.signal("-KILL");
    assert!(!relay.wait().success());
    assert!(recv(&mut host).await.is_none(), "a killed relay says nothing");

    let relay = RelayProcess::start(data_dir.path(), ports.0, ports.1);
    resume(&relay.at, &welcome, "kept through a kill", Stop::Killed).await;
}

#[tokio::test]
async fn a_relay_stopped_with_sigterm_says_it_is_restarting_and_gives_the_seat_back() {
    let data_dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(data_dir.path(), 0, 0);
    let (mut host, welcome) = meeting_with_chat(&relay.at, "kept through a restart").await;

    let ports = relay.ports();
    relay.signal("-TERM");
    assert_eq!(recv(&mut host).await, Some(ControlMessage::RelayRestarting { resume_within_ms: 30_000 }));
    assert!(recv(&mut host).await.is_none(), "then the relay closes the connection");
    assert!(relay.wait().success(), "a graceful stop");

    let relay = RelayProcess::start(data_dir.path(), ports.0, ports.1);
    resume(&relay.at, &welcome, "kept through a restart", Stop::Graceful).await;
}

#[tokio::test]
async fn an_unreadable_record_is_deleted_and_ids_go_on_from_the_last_run() {
    use relay_server::{Relay, RelayConfig};
    let data_dir = tempfile::tempdir().unwrap();
    let spool = data_dir.path().join("parlor-spool");
    std::fs::create_dir_all(spool.join("meeting-4")).unwrap();
    std::fs::write(spool.join("meeting-4").join("meeting.json"), b"{not a record").unwrap();
    std::fs::write(spool.join("meeting-4").join("1"), b"a file of the meeting").unwrap();
    // The previous run stopped a moment ago, having handed out meeting ids up to 49.
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
    let relay_json = format!(
        r#"{{"format":1,"counters":{{"next_meeting_id":50,"next_file_id":7,"next_request_id":3,"next_participant_id":9}},"clean_stop":true,"alive_unix_ms":{now_ms}}}"#
    );
    std::fs::write(spool.join("relay.json"), relay_json).unwrap();

    let config = RelayConfig { data_dir: Some(data_dir.path().to_path_buf()), ..RelayConfig::for_tests() };
    let relay = Relay::start(config).await.expect("a bad record does not stop the relay");
    assert!(relay.live_meeting_codes().is_empty());
    assert!(!spool.join("meeting-4").exists(), "the unreadable meeting's directory is deleted");

    // A new meeting's record goes in a directory no earlier meeting had.
    let at = Endpoint { tcp: relay.tcp_addr(), udp: relay.udp_addr(), fingerprint: relay.certificate_fingerprint() };
    let (_host, welcome) = meeting_with_chat(&at, "new").await;
    assert!(welcome.participant_id >= 9, "participant ids go on: {}", welcome.participant_id);
    wait_recorded(data_dir.path(), &welcome, "new").await;
    let dirs: Vec<String> = std::fs::read_dir(&spool)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("meeting-"))
        .collect();
    assert_eq!(dirs, vec!["meeting-50".to_string()]);
    relay.shutdown().await;
}

type FileConn = Framed<tokio_rustls::client::TlsStream<TcpStream>, RawFrames>;

/// A file connection to `relay` that sent `first`; its answer.
async fn file_conn(relay: &Endpoint, first: ControlMessage) -> (FileConn, ControlMessage) {
    let mut conn = Framed::new(connect_tls(relay).await, RawFrames(FrameCodec::new(MAX_FILE_FRAME_LEN)));
    conn.send(FileFrame::Control(first).encode()).await.unwrap();
    let answer = next_file_frame(&mut conn).await;
    let FileFrame::Control(answer) = answer else { panic!("expected a control message, got {answer:?}") };
    (conn, answer)
}

async fn next_file_frame(conn: &mut FileConn) -> FileFrame {
    loop {
        let next = tokio::time::timeout(WAIT, conn.next()).await.expect("timed out on a file connection");
        match FileFrame::decode(next.expect("connection open").expect("framing")).expect("a file frame") {
            FileFrame::Control(ControlMessage::Ping { nonce }) => {
                conn.send(FileFrame::Control(ControlMessage::Pong { nonce }).encode()).await.unwrap()
            }
            frame => return frame,
        }
    }
}

/// Sends `chunks` (chunk `i` at `i * chunk_len`, numbered from 0 on this connection) and reads
/// their ACKs; returns the last `received`.
async fn send_chunks(conn: &mut FileConn, data: &[u8], chunk_len: usize, chunks: std::ops::Range<usize>) -> u64 {
    let mut received = 0;
    for (seq, index) in chunks.enumerate() {
        let start = index * chunk_len;
        let chunk = &data[start..(start + chunk_len).min(data.len())];
        let frame = FileFrame::Data { seq: seq as u32, offset: start as u64, data: Bytes::copy_from_slice(chunk) };
        conn.send(frame.encode()).await.unwrap();
        match next_file_frame(conn).await {
            FileFrame::Ack { received: r, .. } => received = r,
            other => panic!("expected an ACK, got {other:?}"),
        }
    }
    received
}

#[tokio::test]
async fn an_upload_cut_by_a_kill_goes_on_from_every_acknowledged_byte() {
    use sha2::Digest;
    let data_dir = tempfile::tempdir().unwrap();
    let relay = RelayProcess::start(data_dir.path(), 0, 0);
    let (_host, welcome) = meeting_with_chat(&relay.at, "a file follows").await;
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let sha256 = hex::encode(sha2::Sha256::digest(&data));
    let token = welcome.session_token.clone();
    let upload = ControlMessage::FileUpload {
        session_token: token.clone(),
        name: "notes.bin".into(),
        size: data.len() as u64,
        sha256,
    };
    let (mut conn, ready) = file_conn(&relay.at, upload).await;
    let ControlMessage::FileUploadReady { file_id, chunk_size, offset: 0 } = ready else { panic!("{ready:?}") };
    let chunk_len = chunk_size as usize;
    let total_chunks = data.len().div_ceil(chunk_len);
    let acknowledged = send_chunks(&mut conn, &data, chunk_len, 0..total_chunks / 2).await;
    wait_recorded(data_dir.path(), &welcome, &format!(r#""uploads":[{{"file_id":{file_id}"#)).await;

    let ports = relay.ports();
    relay.signal("-KILL");
    assert!(!relay.wait().success());
    let relay = RelayProcess::start(data_dir.path(), ports.0, ports.1);

    // The seat's token still opens file connections; the upload goes on where it was.
    let resume = ControlMessage::FileUploadResume { session_token: token.clone(), file_id };
    let (mut conn, ready) = file_conn(&relay.at, resume).await;
    let ControlMessage::FileUploadReady { offset, .. } = ready else { panic!("{ready:?}") };
    assert_eq!(offset, acknowledged, "every acknowledged byte survived the kill, nothing more was claimed");
    let first = (offset as usize) / chunk_len;
    assert_eq!(send_chunks(&mut conn, &data, chunk_len, first..total_chunks).await, data.len() as u64);
    match next_file_frame(&mut conn).await {
        FileFrame::Control(ControlMessage::FileUploadComplete { file_id: done }) => assert_eq!(done, file_id),
        other => panic!("expected FILE_UPLOAD_COMPLETE, got {other:?}"),
    }

    let download = ControlMessage::FileDownload { session_token: token, file_id, offset: 0 };
    let (mut conn, ready) = file_conn(&relay.at, download).await;
    assert!(matches!(ready, ControlMessage::FileDownloadReady { .. }), "{ready:?}");
    let mut got = Vec::new();
    while got.len() < data.len() {
        match next_file_frame(&mut conn).await {
            FileFrame::Data { seq, data: chunk, .. } => {
                got.extend_from_slice(&chunk);
                conn.send(FileFrame::Ack { seq, received: got.len() as u64 }.encode()).await.unwrap();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(got == data, "the file is byte-identical");
}
