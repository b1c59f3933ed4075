//! The shell's state: at most one [`Session`] with the task that forwards its events to the
//! page, the embedded relay, the frame pump, the local preview and the settings.
//!
//! Every operation of the contract is a method here; `commands` only unwraps Tauri's
//! arguments. Session calls only queue a command for the engine, so most methods return at
//! once; `create_meeting` and `join_meeting` wait for the relay's first answer (joined, waiting,
//! or an error), which the forwarding task hands back through a one-shot [`Waiter`] instead of
//! emitting it, so the page sees each failure once, as the command's rejection.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use client_core::stats::FileDirection;
use client_core::{
    AudioChoice, EventReceiver, FrameSource, PinStore, PixelFormat, RelayTrust, Session, SessionEvent, SessionOptions,
    SinkChoice, VideoChoice, VideoFeed,
};
use protocol::control::{is_valid_meeting_code, JoinRefusal, MAX_CHAT_CHARS, MAX_DISPLAY_NAME_CHARS};
use protocol::fingerprint::Fingerprint;
use protocol::invite::Invite;
use tokio::sync::oneshot;

use crate::devices::{Choice, Inventory, Selection};
use crate::error::{AppError, DeviceKind};
use crate::events::{upload_transfer_id, Translator};
use crate::frames::{screen_tile_id, FramePump, Layout, SourceFrame, LOCAL_ID};
use crate::local_video::{LocalVideo, LocalVideoState, LocalVideoWorker};
use crate::mic_meter::{MicMeter, MicMeterState};
use crate::payloads::{
    ChatSent, DeviceChoice, DeviceList, FileOpened, InvitationFields, MediaDevice, MeetingCreated, Reaction, Role,
    ScreenChoice, Settings, StatsSnapshot, TransferStarted, UiEvent,
};
use crate::relay::{BindPlan, EmbeddedRelay};
use crate::settings::SettingsStore;

/// How long `create_meeting`/`join_meeting` wait for the relay's answer after connecting.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// Paths remembered in each of the lists `send_file` and `open_file` check, at most (the
/// newest are kept).
const MAX_REMEMBERED_PATHS: usize = 512;
/// How long a command waits for the local camera to start (or stop) before saying it is busy.
const CAMERA_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the shell's events go: the page in the app, a recorder in tests.
pub trait EventSink: Send + Sync + 'static {
    fn emit(&self, event: &UiEvent);
}

impl EventSink for tauri::AppHandle {
    fn emit(&self, event: &UiEvent) {
        let (name, payload) = event.to_page();
        tracing::debug!(event = %name, payload = ?event, "to the page");
        if let Err(e) = tauri::Emitter::emit(self, &name, payload) {
            tracing::warn!(event = %name, "cannot emit: {e}");
        }
    }
}

/// What `create_meeting`/`join_meeting` wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Await {
    Joined,
    WaitingOrJoined,
}

/// The relay's first answer to a create or join.
#[derive(Debug)]
enum Answer {
    Joined { code: String, participant_id: u32 },
    Waiting,
}

struct Waiter {
    generation: u64,
    relay: String,
    kind: Await,
    tx: oneshot::Sender<Result<Answer, AppError>>,
}

/// The session of the current meeting (or waiting room).
struct Live {
    session: Arc<Session>,
    generation: u64,
    /// Where the session connected, for error messages.
    relay: String,
    translator: Arc<Mutex<Translator>>,
    in_meeting: bool,
}

/// Everything guarded by one lock.
struct Core {
    live: Option<Live>,
    next_generation: u64,
    embedded: Option<EmbeddedRelay>,
    mic_on: bool,
    camera_on: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The shell.
pub struct App {
    events: Arc<dyn EventSink>,
    pump: Arc<FramePump>,
    core: tokio::sync::Mutex<Core>,
    waiter: Mutex<Option<Waiter>>,
    /// Generation of the live session (0: none); the forwarding tasks of older ones go quiet.
    current: AtomicU64,
    settings: Mutex<SettingsStore>,
    selection: Mutex<Selection>,
    local: LocalVideoWorker,
    /// The home screen's microphone level meter; follows the preview like the local video.
    mic_meter: Mutex<MicMeter>,
    /// Files this app downloaded in this session: the only ones `open_file` opens.
    openable: PathList,
    /// Files the person chose in this session, in the file dialog or by dropping them on the
    /// window: the only ones `send_file` reads, so a page made to call it cannot send others.
    chosen: PathList,
    default_download_dir: PathBuf,
    /// The relay certificates trusted so far, by relay address.
    pins: PinStore,
    /// The embedded relay's data directory: its certificate (so invitations and pins stay
    /// valid across restarts of the app) and its spool.
    embedded_relay_dir: PathBuf,
    relay_plan: BindPlan,
}

/// Where the app keeps its files.
#[derive(Debug, Clone)]
pub struct AppPaths {
    /// The settings file.
    pub settings: PathBuf,
    /// The app's data: pinned relay certificates and the embedded relay's directory.
    pub data_dir: PathBuf,
    /// Where downloads go until the person picks another folder.
    pub downloads: PathBuf,
}

/// The pinned relay certificates, in the data directory.
const PINS_FILE: &str = "relay-pins.json";
/// The embedded relay's directory, in the data directory.
const EMBEDDED_RELAY_DIR: &str = "embedded-relay";

/// Validates a display name the way the relay will.
fn check_name(name: &str) -> Result<String, AppError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_DISPLAY_NAME_CHARS {
        return Err(AppError::InvalidName);
    }
    Ok(name.to_string())
}

/// Reads a certificate fingerprint the page passed on.
fn parse_fingerprint(text: &str) -> Result<Fingerprint, AppError> {
    text.parse().map_err(|e: protocol::fingerprint::FingerprintError| AppError::InvalidInvitation(e.to_string()))
}

/// Validates "host:port".
fn check_relay_addr(addr: &str) -> Result<String, AppError> {
    let addr = addr.trim();
    let bad = || AppError::InvalidRelayAddr(addr.to_string());
    if addr.parse::<SocketAddr>().is_ok() {
        return Ok(addr.to_string());
    }
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if port_ok && host_ok {
        Ok(addr.to_string())
    } else {
        Err(bad())
    }
}

/// Checks that `dir` exists (creating it) and can be written to.
fn check_writable(dir: &Path) -> Result<(), AppError> {
    let err =
        |e: std::io::Error| AppError::DownloadDirUnwritable { path: dir.display().to_string(), reason: e.to_string() };
    std::fs::create_dir_all(dir).map_err(err)?;
    tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    Ok(())
}

impl App {
    /// The shell with its settings in `settings_path` and downloads going to
    /// `default_download_dir` unless the user chose another folder.
    pub fn new(events: Arc<dyn EventSink>, paths: AppPaths, relay_plan: BindPlan) -> Self {
        let AppPaths { settings: settings_path, data_dir, downloads: default_download_dir } = paths;
        let settings = SettingsStore::load(settings_path);
        let inventory = Inventory::query();
        let s = &settings.stored;
        let selection =
            Selection::resolve(&inventory, s.camera.as_deref(), s.microphone.as_deref(), s.speaker.as_deref());
        let pump = Arc::new(FramePump::start());
        let local = LocalVideo::new(pump.clone(), selection.camera.clone());
        let mic_meter = MicMeter::new(events.clone(), selection.microphone.clone(), s.settings.microphone_voice());
        Self {
            mic_meter: Mutex::new(mic_meter),
            events,
            pump,
            core: tokio::sync::Mutex::new(Core {
                live: None,
                next_generation: 1,
                embedded: None,
                mic_on: true,
                camera_on: true,
            }),
            waiter: Mutex::new(None),
            current: AtomicU64::new(0),
            settings: Mutex::new(settings),
            selection: Mutex::new(selection),
            local: LocalVideoWorker::start(local),
            openable: PathList::default(),
            chosen: PathList::default(),
            default_download_dir,
            pins: PinStore::File(data_dir.join(PINS_FILE)),
            embedded_relay_dir: data_dir.join(EMBEDDED_RELAY_DIR),
            relay_plan,
        }
    }

    /// The frame pump (for `video_subscribe` and `video_frame_drawn`).
    pub fn pump(&self) -> &FramePump {
        &self.pump
    }

    /// Applies a change to the local capture on its own thread (opening a camera blocks) and
    /// waits at most [`CAMERA_ANSWER_TIMEOUT`] for it. Call it with no lock held.
    async fn update_local(
        &self,
        change: impl Fn(&mut LocalVideoState) + Clone + Send + 'static,
    ) -> Result<(), AppError> {
        self.follow_preview(&change);
        self.local.change(change, CAMERA_ANSWER_TIMEOUT).await
    }

    /// The microphone meter follows the same preview and meeting state as the local video.
    fn follow_preview(&self, change: &impl Fn(&mut LocalVideoState)) {
        self.update_mic_meter(|m| {
            let mut mirror = LocalVideoState {
                want_preview: m.want_preview,
                in_meeting: m.in_meeting,
                camera_on: true,
                camera: Choice::SyntheticCamera,
            };
            change(&mut mirror);
            m.want_preview = mirror.want_preview;
            m.in_meeting = mirror.in_meeting;
        });
    }

    /// Changes what the microphone meter depends on, and starts or stops it to match. Call it
    /// with no other lock of the app held (stopping waits a moment for the device to close).
    fn update_mic_meter(&self, change: impl FnOnce(&mut MicMeterState)) {
        let mut meter = lock(&self.mic_meter);
        change(&mut meter.state);
        meter.apply();
    }

    /// The same, for changes whose caller does not wait (Leave, the end of a session): the
    /// capture follows when it can, and a failure reaches the page as an `error` event.
    /// The change is queued before this returns, so it keeps its place before later ones.
    fn update_local_later(&self, change: impl Fn(&mut LocalVideoState) + Clone + Send + 'static) {
        self.follow_preview(&change);
        let events = self.events.clone();
        let report = move |e: AppError| events.emit(&UiEvent::Error((&e).into()));
        match self.local.queue(change) {
            Ok(answer) => {
                tokio::spawn(async move {
                    if let Err(e) = LocalVideoWorker::answer(answer, CAMERA_ANSWER_TIMEOUT).await {
                        report(e);
                    }
                });
            }
            Err(e) => report(e),
        }
    }

    fn session_options(&self, core: &Core) -> SessionOptions {
        let sel = lock(&self.selection).clone();
        SessionOptions {
            client_name: format!("parlor-app/{}", env!("CARGO_PKG_VERSION")),
            video: sel.video(),
            audio: sel.audio(),
            sink: sel.sink(),
            voice: lock(&self.settings).stored.settings.voice_preferences(),
            mic_on: core.mic_on,
            camera_on: core.camera_on,
            local_video: true,
            ..SessionOptions::default()
        }
    }

    /// Ends the current session, if any, without telling the page (it asked for this).
    async fn close_live(self: &Arc<Self>, core: &mut Core) {
        if let Some(live) = core.live.take() {
            self.current.store(0, Ordering::Release);
            lock(&self.waiter).take();
            self.pump.forget_remote();
            close_session(live.session).await;
        }
        self.update_mic_meter(|m| m.session_open = false);
    }

    /// Connects a new session to `relay`, trusting exactly the certificate `expected` (from an
    /// invitation, or the embedded relay's) or else by the pins, and starts forwarding its
    /// events.
    async fn open_live(
        self: &Arc<Self>,
        core: &mut Core,
        relay: &str,
        share_addr: String,
        expected: Option<Fingerprint>,
    ) -> Result<Arc<Session>, AppError> {
        let options = SessionOptions {
            trust: RelayTrust { expected, ..RelayTrust::with_pins(self.pins.clone()) },
            ..self.session_options(core)
        };
        // The session's engine opens the microphone once in the meeting: the meter lets go first.
        self.update_mic_meter(|m| m.session_open = true);
        let (session, rx) = Session::connect(relay, options).await.map_err(|e| AppError::from_session(relay, e))?;
        let session = Arc::new(session);
        let generation = core.next_generation;
        core.next_generation += 1;
        self.current.store(generation, Ordering::Release);
        let invitation_pin = session.relay_certificate().invitation_pin();
        let translator = Arc::new(Mutex::new(Translator::new(relay.to_string(), share_addr, invitation_pin)));
        core.live = Some(Live {
            session: session.clone(),
            generation,
            relay: relay.to_string(),
            translator: translator.clone(),
            in_meeting: false,
        });
        tokio::spawn(pump_video(self.clone(), generation, session.video_feed()));
        tokio::spawn(forward(self.clone(), generation, rx, translator));
        Ok(session)
    }

    /// Sends the create or join and waits for the relay's first answer.
    async fn request(
        self: &Arc<Self>,
        core: &mut Core,
        kind: Await,
        send: impl std::future::Future<Output = Result<(), client_core::SessionError>>,
    ) -> Result<Answer, AppError> {
        let (generation, relay) = match &core.live {
            Some(l) => (l.generation, l.relay.clone()),
            None => return Err(AppError::no_session()),
        };
        let (tx, rx) = oneshot::channel();
        *lock(&self.waiter) = Some(Waiter { generation, relay: relay.clone(), kind, tx });
        if let Err(e) = send.await {
            lock(&self.waiter).take();
            return Err(AppError::from_session(&relay, e));
        }
        match tokio::time::timeout(ANSWER_TIMEOUT, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(AppError::RelayUnreachable { addr: relay, reason: "the connection closed".into() }),
            Err(_) => {
                lock(&self.waiter).take();
                Err(AppError::RelayUnreachable { addr: relay, reason: "the relay did not answer in time".into() })
            }
        }
    }

    /// `create_meeting`.
    pub async fn create_meeting(
        self: &Arc<Self>,
        name: String,
        relay_addr: Option<String>,
    ) -> Result<MeetingCreated, AppError> {
        let name = check_name(&name)?;
        let relay_addr = relay_addr.filter(|a| !a.trim().is_empty()).map(|a| check_relay_addr(&a)).transpose()?;
        // The engine needs the camera from here on. Asked before taking the lock, so a camera
        // that is slow to let go holds up only this command.
        self.update_local(|s| s.in_meeting = true).await.ok();
        let mut core = self.core.lock().await;
        self.close_live(&mut core).await;
        let result = async {
            let (connect, share, expected) = match relay_addr {
                Some(addr) => (addr.clone(), addr, None),
                None => {
                    if core.embedded.is_none() {
                        let dir = self.embedded_relay_dir.clone();
                        core.embedded = Some(EmbeddedRelay::start(self.relay_plan, dir).await?);
                    }
                    let relay = core.embedded.as_ref().ok_or_else(|| AppError::EmbeddedRelay("not running".into()))?;
                    (relay.connect_addr(), relay.share_addr().to_string(), Some(relay.certificate_fingerprint()))
                }
            };
            let session = self.open_live(&mut core, &connect, share.clone(), expected).await?;
            let answer = self.request(&mut core, Await::Joined, session.create_meeting(&name)).await?;
            match answer {
                Answer::Joined { code, participant_id } => {
                    let invite = Invite {
                        relay: share.clone(),
                        code: code.clone(),
                        fingerprint: session.relay_certificate().invitation_pin(),
                    };
                    Ok(MeetingCreated { code, relay_addr: share, invitation: (&invite).into(), participant_id })
                }
                Answer::Waiting => Err(AppError::Internal("the relay put the host in a waiting room".into())),
            }
        }
        .await;
        if result.is_err() {
            self.close_live(&mut core).await;
            drop(core);
            self.update_local_later(|s| s.in_meeting = false);
        }
        result
    }

    /// `read_invitation`: the relay, code and fingerprint a pasted invitation names.
    pub fn read_invitation(&self, text: &str) -> Result<InvitationFields, AppError> {
        let invite = Invite::find(text).map_err(|e| AppError::InvalidInvitation(e.to_string()))?;
        Ok(InvitationFields {
            relay_addr: invite.relay,
            code: invite.code,
            fingerprint: invite.fingerprint.map(|f| f.to_string()),
        })
    }

    /// `trust_relay_certificate`: pins `fingerprint` for `relay_addr`, after the person was told
    /// the relay's certificate changed and decided it is the relay's own.
    pub fn trust_relay_certificate(&self, relay_addr: &str, fingerprint: &str) -> Result<(), AppError> {
        let relay = check_relay_addr(relay_addr)?;
        let fingerprint = parse_fingerprint(fingerprint)?;
        self.pins.trust(&relay, fingerprint).map_err(|e| AppError::Internal(e.to_string()))
    }

    /// `join_meeting`. `fingerprint` comes from an invitation: only that certificate is trusted.
    pub async fn join_meeting(
        self: &Arc<Self>,
        code: String,
        name: String,
        relay_addr: String,
        fingerprint: Option<String>,
    ) -> Result<(), AppError> {
        let code: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
        if !is_valid_meeting_code(&code) {
            return Err(AppError::InvalidCode(code));
        }
        let name = check_name(&name)?;
        let relay = check_relay_addr(&relay_addr)?;
        let expected = fingerprint.filter(|f| !f.trim().is_empty()).map(|f| parse_fingerprint(&f)).transpose()?;
        let mut core = self.core.lock().await;
        self.close_live(&mut core).await;
        let result = async {
            let session = self.open_live(&mut core, &relay, relay.clone(), expected).await?;
            self.request(&mut core, Await::WaitingOrJoined, session.join(&code, &name)).await.map(|_| ())
        }
        .await;
        if result.is_err() {
            self.close_live(&mut core).await;
        }
        result
    }

    async fn with_session<T>(
        self: &Arc<Self>,
        f: impl AsyncFnOnce(&mut Live) -> Result<T, client_core::SessionError>,
    ) -> Result<T, AppError> {
        let mut core = self.core.lock().await;
        let live = core.live.as_mut().ok_or_else(AppError::no_session)?;
        let relay = live.relay.clone();
        f(live).await.map_err(|e| AppError::from_session(&relay, e))
    }

    /// `cancel_join`: leaves the waiting room and closes the connection.
    pub async fn cancel_join(self: &Arc<Self>) -> Result<(), AppError> {
        let mut core = self.core.lock().await;
        if let Some(live) = &core.live {
            let _ = live.session.cancel_join().await;
        }
        self.close_live(&mut core).await;
        Ok(())
    }

    pub async fn admit(self: &Arc<Self>, request_id: u64) -> Result<(), AppError> {
        self.with_session(async |l| l.session.admit(request_id).await).await
    }

    pub async fn deny(self: &Arc<Self>, request_id: u64) -> Result<(), AppError> {
        self.with_session(async |l| l.session.deny(request_id).await).await
    }

    pub async fn remove_participant(self: &Arc<Self>, participant_id: u32) -> Result<(), AppError> {
        self.with_session(async |l| l.session.remove(participant_id).await).await
    }

    pub async fn admit_all(self: &Arc<Self>) -> Result<(), AppError> {
        self.with_session(async |l| l.session.admit_all().await).await
    }

    pub async fn lock_meeting(self: &Arc<Self>, locked: bool) -> Result<(), AppError> {
        self.with_session(async |l| l.session.lock_meeting(locked).await).await
    }

    pub async fn set_role(self: &Arc<Self>, participant_id: u32, role: Role) -> Result<(), AppError> {
        self.with_session(async |l| l.session.set_role(participant_id, role.into()).await).await
    }

    /// `mute_participant`; `None` mutes everyone but this app.
    pub async fn mute(self: &Arc<Self>, participant_id: Option<u32>) -> Result<(), AppError> {
        self.with_session(async |l| match participant_id {
            Some(id) => l.session.mute_participant(id).await,
            None => l.session.mute_all().await,
        })
        .await
    }

    pub async fn request_media(self: &Arc<Self>, participant_id: u32, device: MediaDevice) -> Result<(), AppError> {
        self.with_session(async |l| l.session.request_media(participant_id, device.into()).await).await
    }

    pub async fn end_meeting(self: &Arc<Self>) -> Result<(), AppError> {
        self.with_session(async |l| l.session.end_meeting().await).await
    }

    pub async fn raise_hand(self: &Arc<Self>, raised: bool) -> Result<(), AppError> {
        self.with_session(async |l| l.session.raise_hand(raised).await).await
    }

    pub async fn lower_hand(self: &Arc<Self>, participant_id: u32) -> Result<(), AppError> {
        self.with_session(async |l| l.session.lower_hand(participant_id).await).await
    }

    pub async fn react(self: &Arc<Self>, reaction: Reaction) -> Result<(), AppError> {
        self.with_session(async |l| l.session.react(reaction.into()).await).await
    }

    /// `start_screen_share`: shares `choice` in the meeting (or switches to it).
    pub async fn start_screen_share(self: &Arc<Self>, choice: ScreenChoice) -> Result<(), AppError> {
        self.with_session(async |l| l.session.start_screen_share(choice.into()).await).await
    }

    /// `stop_screen_share`.
    pub async fn stop_screen_share(self: &Arc<Self>) -> Result<(), AppError> {
        self.with_session(async |l| l.session.stop_screen_share().await).await
    }

    /// `leave_meeting`: the embedded relay, if any, keeps running for the others.
    pub async fn leave_meeting(self: &Arc<Self>) -> Result<(), AppError> {
        let mut core = self.core.lock().await;
        self.close_live(&mut core).await;
        drop(core);
        // Leaving is done here; the preview comes back on its own time.
        self.update_local_later(|s| s.in_meeting = false);
        Ok(())
    }

    /// `set_mic`.
    pub async fn set_mic(self: &Arc<Self>, on: bool) -> Result<(), AppError> {
        let mut core = self.core.lock().await;
        core.mic_on = on;
        if let Some(live) = &core.live {
            live.session.set_mic(on).await.map_err(|e| AppError::from_session(&live.relay, e))?;
        }
        Ok(())
    }

    /// `set_camera`: also starts or stops the preview / self view.
    pub async fn set_camera(self: &Arc<Self>, on: bool) -> Result<(), AppError> {
        // The preview camera opens with no lock held: Leave and the others do not wait for it.
        if let Err(e) = self.update_local(move |s| s.camera_on = on).await {
            // Turning on failed: the camera stays off (and one still opening closes again).
            self.update_local_later(|s| s.camera_on = false);
            self.core.lock().await.camera_on = false;
            return Err(e);
        }
        let mut core = self.core.lock().await;
        core.camera_on = on;
        if let Some(live) = &core.live {
            live.session.set_camera(on).await.map_err(|e| AppError::from_session(&live.relay, e))?;
        }
        Ok(())
    }

    /// `list_devices`.
    pub async fn list_devices(self: &Arc<Self>) -> Result<DeviceList, AppError> {
        let app = self.clone();
        tokio::task::spawn_blocking(move || {
            let inv = Inventory::query();
            let sel = lock(&app.selection).clone();
            sel.list(&inv)
        })
        .await
        .map_err(|e| AppError::Internal(format!("device query failed: {e}")))
    }

    /// `choose_devices`: remembered, used at once by the preview and by a running meeting, and
    /// by the next meeting.
    pub async fn choose_devices(self: &Arc<Self>, choice: DeviceChoice) -> Result<(), AppError> {
        let DeviceChoice { camera, microphone, speaker } = choice;
        let camera = camera.map(|id| Choice::parse(DeviceKind::Camera, &id)).transpose()?;
        let microphone = microphone.map(|id| Choice::parse(DeviceKind::Microphone, &id)).transpose()?;
        let speaker = speaker.map(|id| Choice::parse(DeviceKind::Speaker, &id)).transpose()?;
        let switched;
        {
            let mut sel = lock(&self.selection);
            let mut settings = lock(&self.settings);
            if let Some(c) = &camera {
                sel.camera = c.clone();
                settings.stored.camera = Some(c.id());
            }
            let microphone_changed = microphone.is_some();
            if let Some(m) = microphone {
                settings.stored.microphone = Some(m.id());
                sel.microphone = m;
            }
            let video = camera.is_some().then(|| sel.video());
            let audio = microphone_changed.then(|| sel.audio());
            let speaker_changed = speaker.is_some();
            if let Some(s) = speaker {
                settings.stored.speaker = Some(s.id());
                sel.speaker = s;
            }
            switched = (video, audio, speaker_changed.then(|| sel.sink()));
            if let Err(e) = settings.save() {
                tracing::warn!("cannot save the device choice: {e}");
            }
        }
        if switched.1.is_some() {
            let microphone = lock(&self.selection).microphone.clone();
            self.update_mic_meter(|m| m.microphone = microphone);
        }
        self.switch_session_devices(switched).await?;
        match camera {
            Some(c) => self.update_local(move |s| s.camera = c.clone()).await,
            None => Ok(()),
        }
    }

    /// Hands devices chosen while a session runs to it: the meeting switches at once, and a
    /// later meeting of the session starts with them.
    async fn switch_session_devices(
        &self,
        (video, audio, sink): (Option<VideoChoice>, Option<AudioChoice>, Option<SinkChoice>),
    ) -> Result<(), AppError> {
        let core = self.core.lock().await;
        let Some(live) = core.live.as_ref() else { return Ok(()) };
        let failed = |e| AppError::from_session(&live.relay, e);
        if let Some(v) = video {
            live.session.set_video_source(v).await.map_err(failed)?;
        }
        if let Some(a) = audio {
            live.session.set_audio_source(a).await.map_err(failed)?;
        }
        if let Some(s) = sink {
            live.session.set_audio_sink(s).await.map_err(failed)?;
        }
        Ok(())
    }

    /// `start_preview` / `stop_preview`.
    pub async fn set_preview(self: &Arc<Self>, on: bool) -> Result<(), AppError> {
        self.update_local(move |s| s.want_preview = on).await
    }

    /// `send_chat`.
    pub async fn send_chat(self: &Arc<Self>, text: String) -> Result<ChatSent, AppError> {
        let chars = text.chars().count();
        if chars > MAX_CHAT_CHARS {
            return Err(AppError::ChatTooLong(chars));
        }
        if text.trim().is_empty() {
            return Err(AppError::InvalidState("empty message".into()));
        }
        let mut core = self.core.lock().await;
        let live = core.live.as_mut().filter(|l| l.in_meeting).ok_or_else(AppError::no_session)?;
        let client_msg_id = live.session.send_chat(&text).await.map_err(|e| AppError::from_session(&live.relay, e))?;
        Ok(ChatSent { client_msg_id })
    }

    /// `send_file`.
    pub async fn send_file(self: &Arc<Self>, path: String) -> Result<TransferStarted, AppError> {
        let path = PathBuf::from(path);
        if !self.chosen.contains(&path) {
            return Err(AppError::InvalidState(format!(
                "{} was not chosen in the file dialog or dropped on the window",
                path.display()
            )));
        }
        let not_found = |reason: String| AppError::FileNotFound { path: path.display().to_string(), reason };
        let meta = tokio::fs::metadata(&path).await.map_err(|e| not_found(e.to_string()))?;
        if !meta.is_file() {
            return Err(not_found("not a file".into()));
        }
        tokio::fs::File::open(&path).await.map_err(|e| not_found(e.to_string()))?;
        let core = self.core.lock().await;
        let live = core.live.as_ref().filter(|l| l.in_meeting).ok_or_else(AppError::no_session)?;
        let upload_id = live.session.send_file(path).await.map_err(|e| AppError::from_session(&live.relay, e))?;
        Ok(TransferStarted { transfer_id: upload_transfer_id(upload_id) })
    }

    /// `accept_file`.
    pub async fn accept_file(self: &Arc<Self>, file_id: u64) -> Result<TransferStarted, AppError> {
        let dir = self.download_dir();
        check_writable(&dir)?;
        let core = self.core.lock().await;
        let live = core.live.as_ref().filter(|l| l.in_meeting).ok_or_else(AppError::no_session)?;
        let transfer_id = lock(&live.translator).start_download(file_id, 0);
        live.session.accept_file(file_id, dir).await.map_err(|e| AppError::from_session(&live.relay, e))?;
        Ok(TransferStarted { transfer_id })
    }

    /// `get_download_dir`.
    pub fn download_dir(&self) -> PathBuf {
        lock(&self.settings).stored.download_dir.clone().unwrap_or_else(|| self.default_download_dir.clone())
    }

    /// `choose_download_dir`.
    pub fn choose_download_dir(&self, dir: String) -> Result<(), AppError> {
        let dir = PathBuf::from(dir);
        check_writable(&dir)?;
        let mut settings = lock(&self.settings);
        settings.stored.download_dir = Some(dir);
        settings.save().map_err(|e| AppError::Internal(format!("cannot save the settings: {e}")))
    }

    /// Whether `open_file` may open `path`: only files this app downloaded.
    pub fn may_open(&self, path: &Path) -> bool {
        self.openable.contains(path)
    }

    /// The person chose these files (in the file dialog, or by dropping them on the window):
    /// `send_file` may read them.
    pub fn remember_chosen(&self, paths: impl IntoIterator<Item = PathBuf>) {
        for path in paths {
            self.chosen.remember(path);
        }
    }

    /// `open_file`: what to do with `path` — open it, or show a program in its folder. Only
    /// files this app downloaded.
    pub fn how_to_open(&self, path: &Path) -> Result<FileOpened, AppError> {
        if !self.may_open(path) {
            return Err(AppError::InvalidState(format!("{} was not downloaded in this session", path.display())));
        }
        Ok(if runs_as_program(path) { FileOpened::ShownInFolder } else { FileOpened::Opened })
    }

    /// `get_stats`.
    pub async fn stats(self: &Arc<Self>) -> Option<StatsSnapshot> {
        let core = self.core.lock().await;
        let live = core.live.as_ref()?;
        live.session.stats().map(|s| StatsSnapshot::from_engine(&s))
    }

    /// `get_settings`.
    pub fn settings(&self) -> Settings {
        lock(&self.settings).stored.settings.clone()
    }

    /// `save_settings`: the voice processing switches apply at once, to the level meter and to
    /// a meeting in progress.
    pub async fn save_settings(self: &Arc<Self>, settings: Settings) -> Result<(), AppError> {
        lock(&self.settings)
            .set_settings(&settings)
            .map_err(|e| AppError::Internal(format!("cannot save the settings: {e}")))?;
        self.update_mic_meter(|m| m.voice = settings.microphone_voice());
        let core = self.core.lock().await;
        if let Some(live) = &core.live {
            live.session
                .set_voice_processing(settings.voice_preferences())
                .await
                .map_err(|e| AppError::from_session(&live.relay, e))?;
        }
        Ok(())
    }

    /// Stops everything: the session, the embedded relay, the preview. Called on exit.
    pub async fn shutdown(self: &Arc<Self>) {
        let mut core = self.core.lock().await;
        self.close_live(&mut core).await;
        if let Some(relay) = core.embedded.take() {
            relay.shutdown().await;
        }
        drop(core);
        self.update_local(|s| {
            s.want_preview = false;
            s.in_meeting = false;
        })
        .await
        .ok();
    }

    /// Emits a page event for `event` through `emit`, unless it is the answer a waiting
    /// create/join reports as its rejection; then hands that answer over. Emitting first means
    /// the page has `waiting`/`joined` by the time the command resolves.
    fn answer(&self, generation: u64, event: &SessionEvent, emit: impl FnOnce()) {
        let mut slot = lock(&self.waiter);
        let Some(waiter) = slot.take_if(|w| w.generation == generation) else {
            drop(slot);
            return emit();
        };
        let relay_gone =
            |reason: &str| AppError::RelayUnreachable { addr: waiter.relay.clone(), reason: reason.to_string() };
        let result = match event {
            SessionEvent::Joined { welcome } => {
                Ok(Answer::Joined { code: welcome.code.clone(), participant_id: welcome.participant_id })
            }
            SessionEvent::Waiting { .. } if waiter.kind == Await::WaitingOrJoined => Ok(Answer::Waiting),
            // A refusal without a waiting room (the page shows the ended screen for it).
            SessionEvent::JoinRefused { reason } if *reason != JoinRefusal::MeetingFull => Ok(Answer::Waiting),
            SessionEvent::JoinRefused { .. } => Err(AppError::Relay {
                code: protocol::control::ErrorCode::MeetingFull,
                message: "the meeting is full".into(),
                retry_after_ms: None,
            }),
            SessionEvent::Error { code: Some(code), message, retry_after_ms } => {
                Err(AppError::Relay { code: *code, message: message.clone(), retry_after_ms: *retry_after_ms })
            }
            SessionEvent::Disconnected { reason, .. } => Err(relay_gone(reason)),
            _ => {
                *slot = Some(waiter);
                drop(slot);
                return emit();
            }
        };
        drop(slot);
        if result.is_ok() {
            emit();
        }
        let _ = waiter.tx.send(result);
    }

    /// The session of `generation` is over (removed, refused, disconnected): drop it.
    async fn session_over(self: &Arc<Self>, generation: u64) {
        let mut core = self.core.lock().await;
        if core.live.as_ref().is_some_and(|l| l.generation == generation) {
            self.close_live(&mut core).await;
            drop(core);
            self.update_local_later(|s| s.in_meeting = false);
        }
    }

    async fn set_in_meeting(self: &Arc<Self>, generation: u64) {
        let mut core = self.core.lock().await;
        if let Some(live) = core.live.as_mut().filter(|l| l.generation == generation) {
            live.in_meeting = true;
        }
        drop(core);
        self.update_local(|s| s.in_meeting = true).await.ok();
    }

    fn remember_download(&self, path: PathBuf) {
        self.openable.remember(path);
    }
}

/// A bounded list of paths the person handed to the app (newest kept).
#[derive(Default)]
struct PathList(Mutex<VecDeque<PathBuf>>);

impl PathList {
    fn remember(&self, path: PathBuf) {
        let mut list = lock(&self.0);
        if list.contains(&path) {
            return;
        }
        if list.len() >= MAX_REMEMBERED_PATHS {
            list.pop_front();
        }
        list.push_back(path);
    }

    fn contains(&self, path: &Path) -> bool {
        lock(&self.0).iter().any(|p| p == path)
    }
}

/// File types that run code when opened with their default program on Windows, macOS or
/// Linux: executables, installers, scripts, shortcuts, disk images. Compared without case.
#[rustfmt::skip]
const PROGRAM_EXTENSIONS: &[&str] = &[
    "exe", "msi", "msix", "msp", "com", "scr", "pif", "bat", "cmd", "ps1", "psm1", "vbs", "vbe", "js", "jse", "wsf",
    "wsh", "hta", "cpl", "msc", "lnk", "url", "reg", "inf", "jar", "appx", "appref-ms", "app", "command", "pkg",
    "mpkg", "dmg", "workflow", "scpt", "sh", "bash", "zsh", "csh", "run", "desktop", "appimage", "deb", "rpm",
    "py", "pyw", "pl", "rb", "php",
];

/// Whether opening `path` with its default program could run it (by its extension, or an
/// execute permission on Unix).
fn runs_as_program(path: &Path) -> bool {
    let by_type = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| PROGRAM_EXTENSIONS.iter().any(|p| p.eq_ignore_ascii_case(e)));
    #[cfg(unix)]
    let executable = {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
    };
    #[cfg(not(unix))]
    let executable = false;
    by_type || executable
}

/// Closes a session, waiting for its threads, unless the forwarding task still holds it (then
/// dropping our handle is enough: the session closes when the last handle goes).
async fn close_session(session: Arc<Session>) {
    match Arc::try_unwrap(session) {
        Ok(session) => session.close().await,
        Err(shared) => drop(shared),
    }
}

/// Hands one session's newest frames to the pump as they come (the pump keeps one per tile
/// until the page has drawn the last). Ends with the session, or once the page left it.
async fn pump_video(app: Arc<App>, generation: u64, mut feed: VideoFeed) {
    while feed.changed().await {
        if app.current.load(Ordering::Acquire) != generation {
            return;
        }
        for frame in feed.take_new() {
            let id = match frame.source {
                FrameSource::Remote(id) => id,
                FrameSource::Local => LOCAL_ID,
                FrameSource::Screen(id) => screen_tile_id(id),
            };
            let layout = layout_of(frame.format);
            let source = SourceFrame { width: frame.width, height: frame.height, layout, pixels: frame.pixels };
            app.pump.push(id, source);
        }
    }
}

fn layout_of(format: PixelFormat) -> Layout {
    match format {
        PixelFormat::Rgba => Layout::Rgba,
        PixelFormat::Rgb => Layout::Rgb,
    }
}

/// Whether `event` is the last of its session, which is then dropped. A broken connection the
/// session is repairing (`Reconnecting`, then `Resumed`) is not: the meeting goes on, and only
/// the `Disconnected` that follows a failed repair ends it.
fn ends_session(event: &SessionEvent) -> bool {
    matches!(
        event,
        SessionEvent::Removed
            | SessionEvent::MeetingEnded { .. }
            | SessionEvent::Disconnected { .. }
            | SessionEvent::JoinRefused { .. }
    )
}

/// Forwards one session's events to the page (and a participant who left to the pump).
/// Events of a session the page already left are dropped.
async fn forward(app: Arc<App>, generation: u64, mut rx: EventReceiver, translator: Arc<Mutex<Translator>>) {
    while let Some(event) = rx.recv().await {
        if app.current.load(Ordering::Acquire) != generation {
            continue;
        }
        match event {
            SessionEvent::ParticipantLeft { participant_id, .. } => {
                app.pump.forget(participant_id);
                app.pump.forget(screen_tile_id(participant_id));
            }
            SessionEvent::ParticipantUpdated { ref participant } if !participant.presenting => {
                app.pump.forget(screen_tile_id(participant.id))
            }
            // The engine turned the microphone off; later sessions start with it off too.
            SessionEvent::MutedByHost { .. } => app.core.lock().await.mic_on = false,
            SessionEvent::FileDone { direction: FileDirection::Download, ref path, verified: true, .. } => {
                app.remember_download(path.clone())
            }
            _ => {}
        }
        let over = ends_session(&event);
        let joined = matches!(event, SessionEvent::Joined { .. });
        let (done, ui) = {
            let mut t = lock(&translator);
            (t.remote_upload_done(&event), t.translate(event.clone(), Instant::now()))
        };
        if let Some(done) = &done {
            app.events.emit(done);
        }
        app.answer(generation, &event, || {
            if let Some(ui) = &ui {
                app.events.emit(ui);
            }
        });
        if joined {
            app.set_in_meeting(generation).await;
        }
        if over {
            app.session_over(generation).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_addresses_are_checked() {
        assert_eq!(check_relay_addr(" 192.168.1.20:5000 ").unwrap(), "192.168.1.20:5000");
        assert!(check_relay_addr("relay.lan:5000").is_ok());
        assert!(check_relay_addr("[::1]:5000").is_ok());
        for bad in ["", "relay.lan", "relay.lan:0", "relay.lan:99999", ":5000", "a b:1", "x:y"] {
            assert!(check_relay_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_a_connection_lost_for_good_ends_the_session() {
        assert!(!ends_session(&SessionEvent::Reconnecting { reason: "no answer".into(), unheard_ms: 3000 }));
        assert!(!ends_session(&SessionEvent::Resumed { after_ms: 1200, attempts: 1 }));
        assert!(ends_session(&SessionEvent::Disconnected {
            reason: "gone".into(),
            meeting_code: Some("123456".into())
        }));
        assert!(ends_session(&SessionEvent::Disconnected { reason: "gone".into(), meeting_code: None }));
        assert!(ends_session(&SessionEvent::Removed));
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("  Ada ").unwrap(), "Ada");
        assert!(check_name("  ").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn programs_are_recognised_by_type_and_by_execute_permission() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["setup.EXE", "run.sh", "Invoice.pdf.js", "a.AppImage", "x.desktop", "tool.bat"] {
            assert!(runs_as_program(&dir.path().join(name)), "{name}");
        }
        for name in ["agenda.pdf", "photo.jpeg", "notes.txt", "exe", "archive.tar.gz"] {
            assert!(!runs_as_program(&dir.path().join(name)), "{name}");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let script = dir.path().join("readme");
            std::fs::write(&script, b"#!/bin/sh").unwrap();
            assert!(!runs_as_program(&script));
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert!(runs_as_program(&script), "an executable file without an extension");
        }
    }

    #[test]
    fn unwritable_download_folders_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(check_writable(&dir.path().join("new").join("deeper")).is_ok());
        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = check_writable(&file.join("sub")).unwrap_err();
        assert_eq!(e.code(), crate::error::ErrorCode::DownloadDirUnwritable);
    }
}
