//! The session API: one connection to a relay, the meeting it is in, its media and files.
//!
//! [`Session::connect`] opens the control connection, does `HELLO`/`WELCOME` (learning the
//! relay's UDP port) and starts the session's control task. Every method only queues a
//! command for that task and returns; what happens is reported on the event channel
//! returned by `connect` ([`SessionEvent`]). Once in a meeting, the control task starts the
//! media engine ([`engine`]): a network task that owns the UDP socket, capture threads for
//! video and audio, a decode worker and an audio playout thread. Video frames do not travel
//! on the event channel: they wait in one latest-frame slot per source ([`frames`]), read
//! through [`Session::video_feed`].
//!
//! Dropping the [`Session`] (or [`Session::close`], which also waits) leaves the meeting,
//! stops every thread and closes the connection.

pub mod events;
pub mod frames;
pub mod options;

mod audio;
mod control;
mod engine;
mod hand;
mod receive;
mod screen;
mod video;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use protocol::control::{MediaDevice, ParticipantId, Reaction, Role};
use protocol::ControlMessage;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::files::TransferTable;
use crate::media::{ScreenChoice, VoicePreferences};
use crate::net::control::{ConnectError, Handshake};
use crate::net::tls::RelayCertificate;
use crate::stats::StatsSnapshot;
pub use events::{EventReceiver, FileFailure, FileProgress, ParticipantLevel, SessionEvent};
pub use frames::{FrameSource, PixelFormat, VideoFeed, VideoFrame};
pub use options::{AudioChoice, SessionOptions, SinkChoice, VideoChoice};

/// Why a session call failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("the session is closed")]
    Closed,
}

/// Commands from the [`Session`] handle to its control task.
#[derive(Debug)]
pub(crate) enum Command {
    CreateMeeting {
        display_name: String,
    },
    Join {
        code: String,
        display_name: String,
    },
    CancelJoin,
    Admit(u64),
    /// Admit every knock waiting.
    AdmitAll,
    Deny(u64),
    Remove(ParticipantId),
    /// A request the relay answers to everyone (host controls, hands, reactions): sent as it is.
    Request(ControlMessage),
    Leave,
    /// The mic or camera flag changed (already stored in the shared state).
    MediaStateChanged,
    /// Start sharing what `Some` names (or switch to it), or stop (`None`).
    ShareScreen(Option<ScreenChoice>),
    /// Capture from / play to other devices, now and in later meetings of this session.
    SwitchDevice(DeviceSwitch),
    Chat {
        text: String,
        client_msg_id: u64,
    },
    SendFile {
        path: PathBuf,
        upload_id: u64,
    },
    AcceptFile {
        file_id: u64,
        dir: PathBuf,
    },
    CancelFile(u64),
    Close(oneshot::Sender<()>),
}

/// A device change asked for with `Session::set_video_source` and friends.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DeviceSwitch {
    Video(VideoChoice),
    Audio(AudioChoice),
    Sink(SinkChoice),
    Voice(VoicePreferences),
}

/// Device changes waiting for the media threads, which take them at their next frame.
#[derive(Debug, Default)]
pub(crate) struct PendingSwitches {
    pub video: Mutex<Option<VideoChoice>>,
    pub audio: Mutex<Option<AudioChoice>>,
    pub sink: Mutex<Option<SinkChoice>>,
    pub voice: Mutex<Option<VoicePreferences>>,
    /// What to share next (taken by the share thread).
    pub screen: Mutex<Option<ScreenChoice>>,
}

/// Puts a switch in its slot, replacing one not taken yet.
/// A reconnection schedule starting now, its jitter seeded from the clock and the process,
/// so clients that lost the same relay at once spread their attempts.
pub(crate) fn reconnect_schedule() -> protocol::resume::ReconnectSchedule {
    let seed = crate::media::now_us() ^ u64::from(std::process::id()).rotate_left(32);
    protocol::resume::ReconnectSchedule::new(std::time::Instant::now(), seed)
}

pub(crate) fn put_switch<T>(slot: &Mutex<Option<T>>, choice: T) {
    if let Ok(mut s) = slot.lock() {
        *s = Some(choice);
    }
}

/// Takes a pending switch out of its slot.
pub(crate) fn take_switch<T>(slot: &Mutex<Option<T>>) -> Option<T> {
    slot.lock().ok().and_then(|mut s| s.take())
}

/// State shared between the handle, the control task and the media engine.
#[derive(Debug)]
pub(crate) struct SessionShared {
    pub switches: PendingSwitches,
    pub mic_on: AtomicBool,
    pub camera_on: AtomicBool,
    /// We share a screen (the share thread sends while it is set).
    pub presenting: AtomicBool,
    pub loss_override: Mutex<Option<f64>>,
    pub latest_stats: Mutex<Option<StatsSnapshot>>,
    pub files: Arc<TransferTable>,
    /// The latest video frame per source, for [`Session::video_feed`].
    pub video: Arc<frames::FrameSlots>,
}

impl SessionShared {
    pub(crate) fn loss_override(&self) -> Option<f64> {
        self.loss_override.lock().ok().and_then(|g| *g)
    }
}

/// A connection to a relay. See the [module docs](self).
#[derive(Debug)]
pub struct Session {
    cmd: mpsc::Sender<Command>,
    shared: Arc<SessionShared>,
    handshake: Handshake,
    task: Mutex<Option<JoinHandle<()>>>,
    /// Last `client_msg_id` given to a chat message (they count from 1 per session).
    last_chat_id: AtomicU64,
    /// Last id given to an upload (they count from 1 per session).
    last_upload_id: AtomicU64,
}

/// How many commands may wait for the control task.
const COMMAND_QUEUE: usize = 256;

impl Session {
    /// Connects to the relay at `relay` ("HOST:PORT" of its TCP port). Returns the session and
    /// its event channel, whose first event is [`SessionEvent::Connected`].
    pub async fn connect(relay: &str, options: SessionOptions) -> Result<(Session, EventReceiver), SessionError> {
        let (conn, handshake) =
            crate::net::control::connect(relay, &options.trust, &options.client_name, options.connect_timeout).await?;
        let (event_tx, event_rx) = mpsc::channel(events::EVENT_CHANNEL_CAPACITY);
        let events = events::EventSender::new(event_tx);
        events
            .emit(SessionEvent::Connected { server_name: handshake.server_name.clone(), udp_port: handshake.udp_port });
        let shared = Arc::new(SessionShared {
            mic_on: AtomicBool::new(options.mic_on),
            camera_on: AtomicBool::new(options.camera_on),
            presenting: AtomicBool::new(false),
            loss_override: Mutex::new(options.loss_override),
            latest_stats: Mutex::new(None),
            files: Arc::new(TransferTable::default()),
            video: Arc::new(frames::FrameSlots::default()),
            switches: PendingSwitches::default(),
        });
        let (cmd_tx, cmd_rx) = mpsc::channel(COMMAND_QUEUE);
        let task = control::ControlTask::new(
            conn,
            relay.to_string(),
            handshake.clone(),
            options,
            events,
            shared.clone(),
            cmd_rx,
        );
        let task = tokio::spawn(task.run());
        let session = Session {
            cmd: cmd_tx,
            shared,
            handshake,
            task: Mutex::new(Some(task)),
            last_chat_id: AtomicU64::new(0),
            last_upload_id: AtomicU64::new(0),
        };
        Ok((session, event_rx))
    }

    async fn send(&self, cmd: Command) -> Result<(), SessionError> {
        self.cmd.send(cmd).await.map_err(|_| SessionError::Closed)
    }

    /// The relay's UDP media address, learned in the handshake.
    pub fn udp_addr(&self) -> SocketAddr {
        self.handshake.udp_addr()
    }

    /// The relay's certificate, and why this session trusted it: what an invitation to this
    /// meeting carries ([`RelayCertificate::invitation_pin`]).
    pub fn relay_certificate(&self) -> RelayCertificate {
        self.handshake.certificate
    }

    /// The relay's name from `WELCOME`.
    pub fn server_name(&self) -> &str {
        &self.handshake.server_name
    }

    /// Starts a new meeting with us as host; `Joined` follows (its welcome has the code).
    pub async fn create_meeting(&self, display_name: &str) -> Result<(), SessionError> {
        self.send(Command::CreateMeeting { display_name: display_name.to_string() }).await
    }

    /// Asks to join the meeting with `code`; `Waiting`, then `Joined` or `JoinRefused` follow.
    pub async fn join(&self, code: &str, display_name: &str) -> Result<(), SessionError> {
        self.send(Command::Join { code: code.to_string(), display_name: display_name.to_string() }).await
    }

    /// Leaves the waiting room.
    pub async fn cancel_join(&self) -> Result<(), SessionError> {
        self.send(Command::CancelJoin).await
    }

    /// (host or co-host) Lets a knocker in.
    pub async fn admit(&self, request_id: u64) -> Result<(), SessionError> {
        self.send(Command::Admit(request_id)).await
    }

    /// (host or co-host) Lets everyone waiting in.
    pub async fn admit_all(&self) -> Result<(), SessionError> {
        self.send(Command::AdmitAll).await
    }

    /// (host or co-host) Refuses a knocker.
    pub async fn deny(&self, request_id: u64) -> Result<(), SessionError> {
        self.send(Command::Deny(request_id)).await
    }

    /// (host or co-host) Removes a participant from the meeting.
    pub async fn remove(&self, participant_id: ParticipantId) -> Result<(), SessionError> {
        self.send(Command::Remove(participant_id)).await
    }

    /// (host) Locks the meeting (new knocks are refused) or unlocks it; `MeetingLocked` follows.
    pub async fn lock_meeting(&self, locked: bool) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::LockMeeting { locked })).await
    }

    /// (host) Makes a participant host (we become a participant), co-host or participant.
    pub async fn set_role(&self, participant_id: ParticipantId, role: Role) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::SetRole { participant_id, role })).await
    }

    /// (host or co-host) Turns a participant's microphone off; the relay holds the mute until
    /// the participant unmutes itself.
    pub async fn mute_participant(&self, participant_id: ParticipantId) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::MuteParticipant { participant_id })).await
    }

    /// (host or co-host) Turns everyone's microphone off but ours.
    pub async fn mute_all(&self) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::MuteAll)).await
    }

    /// (host or co-host) Asks a participant to turn its microphone or camera on.
    pub async fn request_media(&self, participant_id: ParticipantId, device: MediaDevice) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::RequestMedia { participant_id, device })).await
    }

    /// (host) Ends the meeting for everyone; `MeetingEnded` follows.
    pub async fn end_meeting(&self) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::EndMeeting)).await
    }

    /// Raises or lowers our hand.
    pub async fn raise_hand(&self, raised: bool) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::RaiseHand { raised })).await
    }

    /// Lowers a participant's hand: ours, or (host or co-host) anyone's.
    pub async fn lower_hand(&self, participant_id: ParticipantId) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::LowerHand { participant_id })).await
    }

    /// Sends a reaction to everyone; it comes back as a `Reaction` event like everyone's.
    pub async fn react(&self, reaction: Reaction) -> Result<(), SessionError> {
        self.send(Command::Request(ControlMessage::React { reaction })).await
    }

    /// Leaves the meeting (the connection stays open for another one); `Left` follows.
    pub async fn leave(&self) -> Result<(), SessionError> {
        self.send(Command::Leave).await
    }

    /// Mutes (false) or unmutes the microphone.
    pub async fn set_mic(&self, on: bool) -> Result<(), SessionError> {
        self.shared.mic_on.store(on, Ordering::Relaxed);
        self.send(Command::MediaStateChanged).await
    }

    /// Whether the microphone is on (a moderator's mute turns it off).
    pub fn mic_on(&self) -> bool {
        self.shared.mic_on.load(Ordering::Relaxed)
    }

    /// Turns the camera on or off; off stops sending video.
    pub async fn set_camera(&self, on: bool) -> Result<(), SessionError> {
        self.shared.camera_on.store(on, Ordering::Relaxed);
        self.send(Command::MediaStateChanged).await
    }

    /// Shares a screen, a window or the synthetic slides in the meeting (or switches to it if
    /// already sharing); everyone sees us `presenting`. If it cannot be captured, or the
    /// window closes, the share stops with a `ScreenShareEnded` event. Leaving stops it.
    pub async fn start_screen_share(&self, choice: ScreenChoice) -> Result<(), SessionError> {
        self.send(Command::ShareScreen(Some(choice))).await
    }

    /// Stops sharing.
    pub async fn stop_screen_share(&self) -> Result<(), SessionError> {
        self.send(Command::ShareScreen(None)).await
    }

    /// Whether we are sharing a screen.
    pub fn presenting(&self) -> bool {
        self.shared.presenting.load(Ordering::Relaxed)
    }

    /// Captures video from `choice` from now on (in a meeting, within a frame; also in later
    /// meetings of this session). A camera that cannot be opened falls back to the test pattern
    /// with an `Error` event, as at the start.
    pub async fn set_video_source(&self, choice: VideoChoice) -> Result<(), SessionError> {
        self.send(Command::SwitchDevice(DeviceSwitch::Video(choice))).await
    }

    /// Captures audio from `choice` from now on (a microphone that cannot be opened sends no
    /// audio, with an `Error` event).
    pub async fn set_audio_source(&self, choice: AudioChoice) -> Result<(), SessionError> {
        self.send(Command::SwitchDevice(DeviceSwitch::Audio(choice))).await
    }

    /// Plays the meeting's audio to `choice` from now on (a speaker that cannot be opened
    /// falls back to the null sink, with an `Error` event).
    pub async fn set_audio_sink(&self, choice: SinkChoice) -> Result<(), SessionError> {
        self.send(Command::SwitchDevice(DeviceSwitch::Sink(choice))).await
    }

    /// Switches echo cancellation, noise suppression and gain control on or off from the next
    /// captured frame on (also in later meetings of this session).
    pub async fn set_voice_processing(&self, preferences: VoicePreferences) -> Result<(), SessionError> {
        self.send(Command::SwitchDevice(DeviceSwitch::Voice(preferences))).await
    }

    /// Sends a chat message; it comes back as a `Chat` event in the meeting's order, carrying
    /// the `client_msg_id` returned here.
    pub async fn send_chat(&self, text: &str) -> Result<u64, SessionError> {
        let client_msg_id = self.last_chat_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.send(Command::Chat { text: text.to_string(), client_msg_id }).await?;
        Ok(client_msg_id)
    }

    /// Uploads a file to the meeting; `FileProgress`, then `FileDone` or `FileFailed` follow,
    /// each carrying the `upload_id` returned here.
    pub async fn send_file(&self, path: impl Into<PathBuf>) -> Result<u64, SessionError> {
        let upload_id = self.last_upload_id.fetch_add(1, Ordering::Relaxed) + 1;
        self.send(Command::SendFile { path: path.into(), upload_id }).await?;
        Ok(upload_id)
    }

    /// Downloads an offered file into `dir` (resuming a partial download of it there).
    pub async fn accept_file(&self, file_id: u64, dir: impl Into<PathBuf>) -> Result<(), SessionError> {
        self.send(Command::AcceptFile { file_id, dir: dir.into() }).await
    }

    /// Stops a transfer of this file; a download keeps its partial file for a later resume.
    pub async fn cancel_file(&self, file_id: u64) -> Result<(), SessionError> {
        self.send(Command::CancelFile(file_id)).await
    }

    /// The session's video: the newest decoded frame of each participant (and of our own
    /// camera with `SessionOptions::local_video`), to wait on and take. Frames never queue:
    /// a consumer that falls behind only misses stale ones. Any number of feeds may read.
    pub fn video_feed(&self) -> VideoFeed {
        self.shared.video.feed()
    }

    /// The latest stats snapshot (one per second while in a meeting).
    pub fn stats(&self) -> Option<StatsSnapshot> {
        self.shared.latest_stats.lock().ok().and_then(|s| s.clone())
    }

    /// Test hook: feed the quality controller this loss fraction (0..=1) instead of the
    /// measured one, from its next interval on; `None` goes back to measurements.
    pub fn set_loss_override(&self, loss: Option<f64>) {
        if let Ok(mut g) = self.shared.loss_override.lock() {
            *g = loss.map(|l| l.clamp(0.0, 1.0));
        }
    }

    /// Leaves the meeting, closes the connection and waits until every thread has stopped
    /// (so a recorded WAV file is complete when this returns).
    pub async fn close(self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Command::Close(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let task = self.task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}
