//! A microphone level meter outside a meeting: the home screen's "is my microphone working?"
//! bar.
//!
//! [`MicLevelMonitor`] opens a microphone on a thread of its own (opening a device can block),
//! runs each 20 ms frame through the noise suppression and gain control the person chose
//! (there is no far end to cancel here), so what the meter shows is what the others will get,
//! and reports the level every [`MONITOR_REPORT_EVERY`]. Dropping it stops the thread and
//! closes the device, so a meeting can open the same microphone next.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{AudioLevel, AudioSource, LevelMeter, MediaError, MicSource, VoiceProcessor, VoiceSettings, FRAME_SAMPLES};

/// How often the level is reported: five frames.
pub const MONITOR_REPORT_EVERY: Duration = Duration::from_millis(100);
const REPORT_EVERY_FRAMES: u32 = 5;

/// What a monitor tells its owner, on the monitor's thread.
#[derive(Debug)]
pub enum MonitorReport {
    /// The level of the last 100 ms of processed microphone signal.
    Level(AudioLevel),
    /// The microphone could not be opened or stopped working; the monitor has stopped.
    Failed(MediaError),
}

/// A running microphone level meter; see the module docs.
pub struct MicLevelMonitor {
    device: Option<String>,
    stop: Arc<AtomicBool>,
    voice: Arc<Mutex<VoiceSettings>>,
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
        let voice = Arc::new(Mutex::new(voice));
        let (thread_stop, thread_voice, thread_device) = (stop.clone(), voice.clone(), device.clone());
        let thread = std::thread::Builder::new().name("parlor-mic-meter".into()).spawn(move || {
            let mut mic = match MicSource::open(thread_device.as_deref()) {
                Ok(mic) => mic,
                Err(e) => return report(MonitorReport::Failed(e)),
            };
            let current = |v: &Mutex<VoiceSettings>| {
                let wanted = v.lock().map(|v| *v).unwrap_or_default();
                VoiceSettings { echo_cancellation: false, ..wanted }
            };
            let mut processor = VoiceProcessor::new(current(&thread_voice));
            let mut meter = LevelMeter::new();
            let mut frame = [0i16; FRAME_SAMPLES];
            let mut frames = 0u32;
            while !thread_stop.load(Ordering::Relaxed) {
                if let Err(e) = mic.read_frame(&mut frame) {
                    return report(MonitorReport::Failed(e));
                }
                processor.set_settings(current(&thread_voice));
                processor.process_capture(&mut frame);
                let level = meter.update(&frame);
                frames += 1;
                if frames.is_multiple_of(REPORT_EVERY_FRAMES) {
                    report(MonitorReport::Level(level));
                }
            }
        })?;
        Ok(Self { device, stop, voice, thread: Some(thread) })
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
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
