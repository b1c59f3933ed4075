//! A microphone level meter outside a meeting: the home screen's "is my microphone working?"
//! bar.
//!
//! [`MicLevelMonitor`] opens a microphone on a thread of its own (opening a device can block),
//! runs each 20 ms frame through the noise suppression and gain control the person chose
//! (there is no far end to cancel here), so what the meter shows is what the others will get,
//! and reports the level of each [`MONITOR_REPORT_EVERY`]. Dropping it stops the thread and
//! waits up to [`MONITOR_STOP_WAIT`] for the device to close, so a meeting can open the same
//! microphone next; a thread still stuck in the device (a driver that does not answer) is left
//! to finish on its own rather than blocking the caller.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{
    AudioLevel, AudioSource, LevelMeter, LevelWindow, MediaError, MicSource, VoiceProcessor, VoiceSettings,
    FRAME_SAMPLES,
};

/// How often the level is reported, over what it measures: a [`LevelWindow`] of five frames.
pub const MONITOR_REPORT_EVERY: Duration = Duration::from_millis(100);
/// How long dropping a monitor waits for its thread to close the device.
pub const MONITOR_STOP_WAIT: Duration = Duration::from_millis(250);

/// What a monitor tells its owner, on the monitor's thread.
#[derive(Debug)]
pub enum MonitorReport {
    /// The level of the last 100 ms of processed microphone signal (RMS over all of it), and
    /// the speaking decision after its last frame.
    Level(AudioLevel),
    /// The microphone could not be opened or stopped working; the monitor has stopped.
    Failed(MediaError),
}

/// A running microphone level meter; see the module docs.
pub struct MicLevelMonitor {
    device: Option<String>,
    stop: Arc<AtomicBool>,
    /// Cleared by the thread when it ends (stopped, or the microphone failed).
    alive: Arc<AtomicBool>,
    voice: Arc<Mutex<VoiceSettings>>,
    /// Receives nothing; disconnects when the thread ends, so a drop can wait with a timeout.
    ended: mpsc::Receiver<()>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MicLevelMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MicLevelMonitor").field("device", &self.device).finish()
    }
}

impl MicLevelMonitor {
    /// Starts metering the named microphone (`None`: the default one) with the processing
    /// stages of `voice` (echo cancellation is ignored: nothing plays here). `report` is called
    /// on the monitor's thread. Fails only if the thread cannot be started; a microphone that
    /// cannot be opened is reported as [`MonitorReport::Failed`].
    pub fn start(
        device: Option<String>,
        voice: VoiceSettings,
        mut report: impl FnMut(MonitorReport) + Send + 'static,
    ) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let alive = Arc::new(AtomicBool::new(true));
        let voice = Arc::new(Mutex::new(voice));
        let (ended_tx, ended) = mpsc::channel::<()>();
        let (thread_stop, thread_alive, thread_voice, thread_device) =
            (stop.clone(), alive.clone(), voice.clone(), device.clone());
        let thread = std::thread::Builder::new().name("parlor-mic-meter".into()).spawn(move || {
            let _ended = ended_tx;
            let result = meter_loop(thread_device.as_deref(), &thread_stop, &thread_voice, &mut report);
            // Not running any more before the owner hears why, so it can start a new one.
            thread_alive.store(false, Ordering::Release);
            if let Err(e) = result {
                report(MonitorReport::Failed(e));
            }
        })?;
        Ok(Self { device, stop, alive, voice, ended, thread: Some(thread) })
    }

    /// False once the thread has ended: the microphone failed (after a
    /// [`MonitorReport::Failed`]).
    pub fn is_running(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// The microphone this monitor meters (`None`: the default one).
    pub fn device(&self) -> Option<&str> {
        self.device.as_deref()
    }

    /// Switches noise suppression and gain control from the next frame on.
    pub fn set_voice(&self, voice: VoiceSettings) {
        if let Ok(mut v) = self.voice.lock() {
            *v = voice;
        }
    }
}

impl Drop for MicLevelMonitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread's end disconnects the channel; a device that does not answer in time is
        // left to its thread, which exits once it does.
        if let Err(mpsc::RecvTimeoutError::Disconnected) = self.ended.recv_timeout(MONITOR_STOP_WAIT) {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        } else {
            tracing::debug!("the microphone meter's device is slow to close; not waiting for it");
        }
    }
}

/// Opens the microphone and reports its processed level until `stop` is set or it fails.
fn meter_loop(
    device: Option<&str>,
    stop: &AtomicBool,
    voice: &Mutex<VoiceSettings>,
    report: &mut impl FnMut(MonitorReport),
) -> Result<(), MediaError> {
    let mut mic = MicSource::open(device)?;
    // Nothing plays here: no far end to cancel.
    let current = || VoiceSettings { echo_cancellation: false, ..voice.lock().map(|v| *v).unwrap_or_default() };
    let mut processor = VoiceProcessor::new(current());
    let mut meter = LevelMeter::new();
    let mut window = LevelWindow::default();
    let mut frame = [0i16; FRAME_SAMPLES];
    while !stop.load(Ordering::Relaxed) {
        mic.read_frame(&mut frame)?;
        processor.set_settings(current());
        processor.process_capture(&mut frame);
        let speaking = meter.update(&frame).speaking;
        if let Some(rms_dbfs) = window.push(&frame) {
            report(MonitorReport::Level(AudioLevel { rms_dbfs, speaking }));
        }
    }
    Ok(())
}
