//! The shell's state machine against real components, without a window: the app hosts a
//! meeting on its embedded relay (bound to 127.0.0.1), a client-core session joins as a second
//! participant, and the test checks what the page would see — events with their camelCase
//! payloads, I420 frames after `video_frame_drawn`, chat ids, a verified download — and the
//! errors a user gets for a wrong code, an unreachable relay and bad input.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use client_core::{AudioChoice, Session, SessionEvent, SessionOptions, SinkChoice, VideoChoice};
use parlor_app_lib::app::{App, AppPaths, EventSink};
use parlor_app_lib::error::ErrorCode;
use parlor_app_lib::frames::{FrameSink, FORMAT_I420, HEADER_LEN};
use parlor_app_lib::payloads::{DeviceChoice, FileOpened, UiEvent};
use parlor_app_lib::relay::BindPlan;
use serde_json::Value;

/// Generous: the machine may be busy building; nothing here is a timing assertion.
const WAIT: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, Value)>>);

impl EventSink for Recorder {
    fn emit(&self, event: &UiEvent) {
        // What the page would receive: the same name and payload the app's handle emits.
        self.0.lock().unwrap().push(event.to_page());
    }
}

impl Recorder {
    /// The first event called `name` whose payload satisfies `pred`, waiting for it.
    async fn wait(&self, name: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some((_, v)) = self.0.lock().unwrap().iter().find(|(n, v)| n == name && pred(v)) {
                return v.clone();
            }
            assert!(Instant::now() < deadline, "no {name} event; got {:?}", self.names());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn names(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().map(|(n, _)| n.clone()).collect()
    }
}

#[derive(Default)]
struct Frames(Mutex<Vec<Vec<u8>>>);

impl FrameSink for Frames {
    fn send(&self, message: Vec<u8>) -> bool {
        self.0.lock().unwrap().push(message);
        true
    }
}

async fn next_event(rx: &mut client_core::EventReceiver, mut pred: impl FnMut(&SessionEvent) -> bool) -> SessionEvent {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(ev)) if pred(&ev) => return ev,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the bot's session ended"),
            Err(_) => panic!("the bot did not get the expected event"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosts_a_meeting_on_the_embedded_relay_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let downloads = dir.path().join("Downloads");
    let recorder = Arc::new(Recorder::default());
    let plan = BindPlan { host: IpAddr::V4(Ipv4Addr::LOCALHOST), port: 0 };
    let paths = AppPaths {
        settings: dir.path().join("conf/settings.json"),
        data_dir: dir.path().join("data"),
        downloads: downloads.clone(),
    };
    let app = Arc::new(App::new(recorder.clone(), paths, plan));
    let frames = Arc::new(Frames::default());
    app.pump().set_sink(frames.clone());

    // Bad input is refused before anything is opened.
    assert_eq!(app.create_meeting("  ".into(), None).await.unwrap_err().code(), ErrorCode::InvalidName);
    let e = app.join_meeting("12ab".into(), "Ada".into(), "127.0.0.1:5000".into(), None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidCode);
    let e = app.join_meeting("123456".into(), "Ada".into(), "no port".into(), None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidRelayAddr);
    assert_eq!(app.send_chat("hi".into()).await.unwrap_err().code(), ErrorCode::InvalidState);

    let choice = DeviceChoice {
        camera: Some("synthetic".into()),
        microphone: Some("tone".into()),
        speaker: Some("null".into()),
    };
    app.choose_devices(choice).await.unwrap();
    app.set_mic(false).await.unwrap();
    let created = app.create_meeting("Ada".into(), None).await.unwrap();
    assert_eq!(created.code.len(), 6);
    assert!(created.relay_addr.starts_with("127.0.0.1:"), "{}", created.relay_addr);
    let joined = recorder.wait("joined", |_| true).await;
    assert_eq!(joined["relayAddr"], created.relay_addr.as_str());
    assert_eq!(joined["participantId"], created.participant_id);
    assert_eq!(joined["roster"][0]["displayName"], "Ada");
    let invitation = joined["invitation"]["text"].as_str().expect("an invitation to copy");
    let invited = app.read_invitation(invitation).expect("the app reads its own invitation");
    assert_eq!(
        (invited.relay_addr.as_str(), invited.code.as_str()),
        (created.relay_addr.as_str(), created.code.as_str())
    );
    let fingerprint = invited.fingerprint.expect("the embedded relay's certificate is pinned in the invitation");
    assert_eq!(app.read_invitation("123456").unwrap_err().code(), ErrorCode::InvalidInvitation);

    // A second participant knocks from the invitation alone, and is admitted.
    let opts = SessionOptions {
        video: VideoChoice::Synthetic,
        audio: AudioChoice::Tone,
        sink: SinkChoice::Null,
        trust: client_core::RelayTrust::expecting(fingerprint.parse().unwrap()),
        ..Default::default()
    };
    let (bot, mut bot_rx) = Session::connect(&invited.relay_addr, opts).await.unwrap();
    bot.join(&invited.code, "Bob").await.unwrap();
    let knock = recorder.wait("knock", |v| v["name"] == "Bob").await;
    app.admit(knock["requestId"].as_u64().unwrap()).await.unwrap();
    let bob = recorder.wait("participant-joined", |v| v["participant"]["displayName"] == "Bob").await;
    let bob_id = bob["participant"]["id"].as_u64().unwrap() as u32;
    next_event(&mut bot_rx, |e| matches!(e, SessionEvent::Joined { .. })).await;

    // Frames of Bob reach the page as I420 at the tile's size, once the page asked for them.
    app.pump().drawn(bob_id, 320, 180);
    let deadline = Instant::now() + WAIT;
    let frame = loop {
        if let Some(f) = frames.0.lock().unwrap().iter().find(|f| f[0..4] == bob_id.to_le_bytes()).cloned() {
            break f;
        }
        assert!(Instant::now() < deadline, "no frame of the bot");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(u16::from_le_bytes([frame[4], frame[5]]), 320);
    assert_eq!(u16::from_le_bytes([frame[6], frame[7]]), 180);
    assert_eq!(frame[8], FORMAT_I420);
    assert_eq!(frame.len(), HEADER_LEN + 320 * 180 * 3 / 2);
    let luma = &frame[HEADER_LEN..HEADER_LEN + 320 * 180];
    assert!(luma.iter().max().unwrap() - luma.iter().min().unwrap() > 50, "the test pattern has contrast");

    // Chat both ways, with the id the page matches its pending copy by.
    let sent = app.send_chat("hello Bob".into()).await.unwrap();
    assert_eq!(sent.client_msg_id, 1);
    let echo = recorder.wait("chat", |v| v["message"]["text"] == "hello Bob").await;
    assert_eq!(echo["message"]["clientMsgId"], 1);
    next_event(&mut bot_rx, |e| matches!(e, SessionEvent::Chat { message } if message.text == "hello Bob")).await;
    bot.send_chat("hi Ada").await.unwrap();
    recorder.wait("chat", |v| v["message"]["text"] == "hi Ada" && v["message"]["senderName"] == "Bob").await;

    // Bob sends a file; the app downloads it into its download folder, verified.
    let original = dir.path().join("notes.bin");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(&original, &bytes).unwrap();
    bot.send_file(&original).await.unwrap();
    let offer = recorder.wait("file-offer", |v| v["file"]["name"] == "notes.bin").await;
    let file_id = offer["file"]["fileId"].as_u64().unwrap();
    let started = app.accept_file(file_id).await.unwrap();
    let done = recorder.wait("file-done", |v| v["transferId"] == started.transfer_id.as_str()).await;
    assert_eq!(done["verified"], true);
    assert_eq!(done["direction"], "download");
    assert_eq!(done["size"], bytes.len());
    let path = std::path::PathBuf::from(done["path"].as_str().unwrap());
    assert!(path.starts_with(&downloads));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    assert!(app.may_open(&path));
    assert!(!app.may_open(&original));
    assert_eq!(app.how_to_open(&path).unwrap(), FileOpened::Opened);
    assert_eq!(app.how_to_open(&original).unwrap_err().code(), ErrorCode::InvalidState);
    // A program someone sent is shown in its folder, never run by a click.
    let program = dir.path().join("setup.exe");
    std::fs::write(&program, b"MZ").unwrap();
    bot.send_file(&program).await.unwrap();
    let offer = recorder.wait("file-offer", |v| v["file"]["name"] == "setup.exe").await;
    let started = app.accept_file(offer["file"]["fileId"].as_u64().unwrap()).await.unwrap();
    let done = recorder.wait("file-done", |v| v["transferId"] == started.transfer_id.as_str()).await;
    let saved = std::path::PathBuf::from(done["path"].as_str().unwrap());
    assert_eq!(app.how_to_open(&saved).unwrap(), FileOpened::ShownInFolder);

    // Only files the person chose (dialog or drop) can be sent: a page made to ask for
    // another path gets nothing.
    let e = app.send_file(original.to_string_lossy().into_owned()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::InvalidState);
    app.remember_chosen([original.clone(), dir.path().join("missing")]);
    // The app uploads a file too; its transfer id follows it to the relay's confirmation.
    let up = app.send_file(original.to_string_lossy().into_owned()).await.unwrap();
    let done = recorder.wait("file-done", |v| v["transferId"] == up.transfer_id.as_str()).await;
    assert_eq!((done["direction"].as_str(), done["verified"].as_bool()), (Some("upload"), Some(true)));
    let e = app.send_file(dir.path().join("missing").to_string_lossy().into_owned()).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::FileNotFound);

    // Stats once a second, with a row for Bob.
    let stats = recorder.wait("stats", |v| v["participants"].as_array().is_some_and(|p| !p.is_empty())).await;
    assert_eq!(stats["participants"][0]["participantId"], bob_id);
    assert!(app.stats().await.is_some());

    // Leaving keeps the embedded relay up for the others.
    app.leave_meeting().await.unwrap();
    next_event(&mut bot_rx, |e| matches!(e, SessionEvent::HostChanged { .. })).await;
    assert!(app.stats().await.is_none());

    // Errors a user can act on, as the command's rejection.
    let e = app.join_meeting("000000".into(), "Ada".into(), created.relay_addr.clone(), None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::UnknownMeeting);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let e = app.join_meeting("123456".into(), "Ada".into(), closed.to_string(), None).await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::RelayUnreachable);
    // An invitation whose fingerprint is not this relay's is refused, saying which differ.
    let wrong = "0".repeat(64);
    let e = app
        .join_meeting(created.code.clone(), "Ada".into(), created.relay_addr.clone(), Some(wrong.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::NotTheInvitedRelay);
    let mismatch = e.certificate_mismatch().expect("the certificates named");
    assert_eq!((mismatch.expected.as_str(), mismatch.presented.as_str()), (wrong.as_str(), fingerprint.as_str()));
    assert!(dir.path().join("data/relay-pins.json").exists(), "pins are kept in the data directory");

    // Rejoining the meeting Bob now hosts goes through the waiting room.
    app.join_meeting(created.code.clone(), "Ada again".into(), created.relay_addr.clone(), None).await.unwrap();
    recorder.wait("waiting", |v| v["code"] == created.code.as_str()).await;
    let knock = next_event(&mut bot_rx, |e| matches!(e, SessionEvent::Knock { .. })).await;
    let SessionEvent::Knock { request_id, .. } = knock else { unreachable!() };
    bot.deny(request_id).await.unwrap();
    recorder.wait("join-refused", |v| v["reason"] == "denied").await;

    bot.close().await;
    app.shutdown().await;
    // Settings were written where the app keeps them.
    assert!(dir.path().join("conf/settings.json").exists());
}
