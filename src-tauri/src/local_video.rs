//! This app's own camera on screen (participant id 0 in frame messages): the preview on the
//! home screen and in the waiting room, and the self view in a meeting.
//!
//! Outside a meeting a capture thread of the shell's own reads the chosen camera (or the test
//! pattern) while the page wants a preview and the camera is on. In a meeting the session's
//! capture thread owns the camera — a camera cannot stream to two readers — and puts each
//! frame it captures into the session's `FrameSource::Local` video slot, which the shell
//! draws as the self view: the picture the others get, whatever the source.
//!
//! Opening a camera blocks, sometimes for seconds, so the capture lives on a thread of its own
//! ([`LocalVideoWorker`]): commands hand it state changes and wait for the answer with a
//! timeout, and no lock of the app is held meanwhile. Changes that queue up while a camera
//! opens are applied together once it has, so a camera the page no longer wants is closed
//! again at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use client_core::media::{self, RgbFrame, TestPattern, VideoSource};
use tokio::sync::oneshot;

use crate::devices::Choice;
use crate::error::{AppError, DeviceKind};
use crate::frames::{FramePump, Layout, SourceFrame, LOCAL_ID};

/// Frames per second of the preview and the self view.
const PREVIEW_FPS: u32 = 20;
/// Size of the test pattern shown locally (the page scales it to the tile).
const PATTERN_SIZE: (u32, u32) = (640, 360);

/// What decides whether the local capture runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalVideoState {
    /// The page asked for a preview (home screen, waiting room).
    pub want_preview: bool,
    /// This app is in a meeting.
    pub in_meeting: bool,
    pub camera_on: bool,
    pub camera: Choice,
}

impl LocalVideoState {
    /// Whether frames of id 0 should flow, and from which source.
    pub fn wanted(&self) -> Option<Choice> {
        if !self.camera_on {
            return None;
        }
        (self.want_preview && !self.in_meeting).then(|| self.camera.clone())
    }
}

/// A running capture thread; dropping it stops the thread and waits for it.
struct Capture {
    source: Choice,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the source of a choice: [`open_source`] in the app, a slow or hanging camera in tests.
pub type Opener = Arc<dyn Fn(&Choice) -> Result<Box<dyn VideoSource>, AppError> + Send + Sync>;

/// The local capture, started and stopped to match a [`LocalVideoState`].
pub struct LocalVideo {
    pub state: LocalVideoState,
    running: Option<Capture>,
    pump: Arc<FramePump>,
    opener: Opener,
}

impl LocalVideo {
    pub fn new(pump: Arc<FramePump>, camera: Choice) -> Self {
        Self::with_opener(pump, camera, Arc::new(open_source))
    }

    pub fn with_opener(pump: Arc<FramePump>, camera: Choice, opener: Opener) -> Self {
        Self {
            state: LocalVideoState { want_preview: false, in_meeting: false, camera_on: true, camera },
            running: None,
            pump,
            opener,
        }
    }

    /// Starts, stops or switches the capture to match the state. Blocking: opening a camera
    /// can take seconds. On failure the capture is stopped and the error says why.
    pub fn apply(&mut self) -> Result<(), AppError> {
        let wanted = self.state.wanted();
        if self.running.as_ref().map(|c| &c.source) == wanted.as_ref() {
            return Ok(());
        }
        // Release the old source first: it may be the very camera about to be opened.
        self.running = None;
        let Some(choice) = wanted else { return Ok(()) };
        let source = (self.opener)(&choice)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (pump, thread_stop) = (self.pump.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("parlor-preview".into())
            .spawn(move || capture(source, pump, thread_stop))
            .map_err(|e| AppError::Internal(format!("cannot start the camera thread: {e}")))?;
        self.running = Some(Capture { source: choice, stop, thread: Some(thread) });
        Ok(())
    }

    /// Whether the capture thread runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }
}

/// A change to the local capture's state, applied on the worker's thread.
pub type Change = Box<dyn FnOnce(&mut LocalVideoState) + Send>;

type Request = (Change, oneshot::Sender<Result<(), AppError>>);

/// The [`LocalVideo`] on a thread of its own; see the module doc.
pub struct LocalVideoWorker {
    requests: Option<mpsc::Sender<Request>>,
    thread: Option<JoinHandle<()>>,
}

impl LocalVideoWorker {
    pub fn start(mut local: LocalVideo) -> Self {
        let (tx, rx) = mpsc::channel::<Request>();
        let thread = std::thread::Builder::new()
            .name("parlor-local-video".into())
            .spawn(move || {
                while let Ok((change, reply)) = rx.recv() {
                    change(&mut local.state);
                    let mut replies = vec![reply];
                    // Whatever queued meanwhile (while a camera opened) is applied in one go.
                    while let Ok((change, reply)) = rx.try_recv() {
                        change(&mut local.state);
                        replies.push(reply);
                    }
                    let result = local.apply();
                    for reply in replies {
                        let _ = reply.send(result.clone());
                    }
                }
            })
            .expect("spawn the local video thread");
        Self { requests: Some(tx), thread: Some(thread) }
    }

    /// Queues `change` at once (changes apply in the order they are queued) and returns the
    /// receiver of its answer, for [`Self::answer`].
    pub fn queue(
        &self,
        change: impl FnOnce(&mut LocalVideoState) + Send + 'static,
    ) -> Result<oneshot::Receiver<Result<(), AppError>>, AppError> {
        let (tx, rx) = oneshot::channel();
        let sent = self.requests.as_ref().is_some_and(|r| r.send((Box::new(change), tx)).is_ok());
        if !sent {
            return Err(AppError::Internal("the local video thread has stopped".into()));
        }
        Ok(rx)
    }

    /// Waits up to `timeout` for a queued change to be applied. A camera still opening after
    /// that is reported busy; it keeps opening, and later changes still apply.
    pub async fn answer(answer: oneshot::Receiver<Result<(), AppError>>, timeout: Duration) -> Result<(), AppError> {
        match tokio::time::timeout(timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(AppError::Internal("the local video thread has stopped".into())),
            Err(_) => Err(AppError::DeviceBusy {
                kind: DeviceKind::Camera,
                message: format!("the camera did not start within {} s", timeout.as_secs_f64()),
            }),
        }
    }

    /// Queues `change` and waits up to `timeout` for the capture to match.
    pub async fn change(
        &self,
        change: impl FnOnce(&mut LocalVideoState) + Send + 'static,
        timeout: Duration,
    ) -> Result<(), AppError> {
        Self::answer(self.queue(change)?, timeout).await
    }
}

impl Drop for LocalVideoWorker {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which stops the capture on its way out.
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens a real camera, or the test pattern for every other choice.
pub fn open_source(choice: &Choice) -> Result<Box<dyn VideoSource>, AppError> {
    match choice {
        Choice::Camera(index) => media::open_camera(*index).map_err(|e| AppError::from_device(DeviceKind::Camera, e)),
        _ => Ok(Box::new(TestPattern::new(PATTERN_SIZE.0, PATTERN_SIZE.1))),
    }
}

fn capture(mut source: Box<dyn VideoSource>, pump: Arc<FramePump>, stop: Arc<AtomicBool>) {
    let interval = Duration::from_secs(1) / PREVIEW_FPS;
    let mut frame = RgbFrame::default();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        // A camera blocks until its next picture; the test pattern is paced here.
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        }
        next = next.max(now) + interval;
        if let Err(e) = source.next_frame(&mut frame) {
            tracing::warn!("local camera stopped: {e}");
            return;
        }
        let pixels = Bytes::from(std::mem::take(&mut frame.data));
        pump.push(LOCAL_ID, SourceFrame { width: frame.width, height: frame.height, layout: Layout::Rgb, pixels });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_the_preview_outside_meetings_only() {
        let mut s =
            LocalVideoState { want_preview: true, in_meeting: false, camera_on: true, camera: Choice::Camera(0) };
        assert_eq!(s.wanted(), Some(Choice::Camera(0)));
        s.camera_on = false;
        assert_eq!(s.wanted(), None);
        s.camera_on = true;
        s.in_meeting = true;
        // The session owns the camera in a meeting and supplies the self view.
        assert_eq!(s.wanted(), None);
        s.camera = Choice::SyntheticCamera;
        assert_eq!(s.wanted(), None);
        s.in_meeting = false;
        assert_eq!(s.wanted(), Some(Choice::SyntheticCamera));
    }

    #[test]
    fn the_pattern_preview_reaches_the_pump_and_stops() {
        struct Count(std::sync::Mutex<usize>);
        impl crate::frames::FrameSink for Count {
            fn send(&self, _: Vec<u8>) -> bool {
                *self.0.lock().unwrap() += 1;
                true
            }
        }
        let pump = Arc::new(FramePump::start());
        let sink = Arc::new(Count(std::sync::Mutex::new(0)));
        pump.set_sink(sink.clone());
        let mut local = LocalVideo::new(pump.clone(), Choice::SyntheticCamera);
        local.state.want_preview = true;
        local.apply().unwrap();
        assert!(local.is_running());
        pump.drawn(LOCAL_ID, 320, 180);
        let deadline = Instant::now() + Duration::from_secs(10);
        while *sink.0.lock().unwrap() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(*sink.0.lock().unwrap(), 1);
        local.state.want_preview = false;
        local.apply().unwrap();
        assert!(!local.is_running());
    }

    /// A camera that stays "opening" until the test lets it, then counts itself closed.
    struct SlowCamera {
        pattern: TestPattern,
        closed: Arc<AtomicBool>,
    }

    impl VideoSource for SlowCamera {
        fn next_frame(&mut self, out: &mut RgbFrame) -> Result<(), media::MediaError> {
            self.pattern.next_frame(out)
        }
        fn describe(&self) -> String {
            "slow camera".into()
        }
    }

    impl Drop for SlowCamera {
        fn drop(&mut self) {
            self.closed.store(true, Ordering::SeqCst);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_camera_that_hangs_is_reported_busy_and_closed_once_no_longer_wanted() {
        let (release, released) = mpsc::channel::<()>();
        let released = std::sync::Mutex::new(released);
        let closed = Arc::new(AtomicBool::new(false));
        let opener: Opener = {
            let closed = closed.clone();
            Arc::new(move |_: &Choice| {
                released.lock().unwrap().recv().ok();
                let camera = SlowCamera { pattern: TestPattern::new(64, 36), closed: closed.clone() };
                Ok(Box::new(camera) as Box<dyn VideoSource>)
            })
        };
        let pump = Arc::new(FramePump::start());
        let worker = LocalVideoWorker::start(LocalVideo::with_opener(pump, Choice::Camera(0), opener));

        // The open hangs until released, so the wait can only end by its timeout.
        let e = worker.change(|s| s.want_preview = true, Duration::from_millis(100)).await.unwrap_err();
        assert!(matches!(e, AppError::DeviceBusy { kind: DeviceKind::Camera, .. }), "{e:?}");

        // The page gives up on the preview while the camera is still opening; the change waits
        // its turn, and the camera that finally opens is closed again at once.
        let worker = Arc::new(worker);
        let off = tokio::spawn({
            let worker = worker.clone();
            async move { worker.change(|s| s.want_preview = false, Duration::from_secs(30)).await }
        });
        release.send(()).unwrap();
        off.await.unwrap().unwrap();
        assert!(closed.load(Ordering::SeqCst), "the late camera is closed");

        // The thread is still there for the next change.
        worker.change(|s| s.camera_on = false, Duration::from_secs(30)).await.unwrap();
    }
}
