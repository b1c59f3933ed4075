//! The home screen's microphone level meter: a [`MicLevelMonitor`] on the chosen microphone
//! while the page shows a preview outside a meeting, its levels sent to the page as
//! `mic-level` events.
//!
//! Once a session is open (it may be admitted any moment, and then its engine opens the
//! microphone; two readers of one device fail on some hosts) the meter stops, and in a meeting
//! the engine's own level of what it sends takes over (`micLevelDbfs` in the stats). The meter
//! follows the person's noise suppression choice, so the toggle's effect shows on the bar. When
//! it stops, or its microphone fails, the page gets one last level of silence, so the bar does
//! not freeze at the last one.

use std::sync::Arc;

use client_core::media::{MicLevelMonitor, MonitorReport, VoiceSettings, SILENCE_DBFS};

use crate::devices::Choice;
use crate::error::{AppError, DeviceKind};
use crate::payloads::{MicLevel, UiEvent};
use crate::EventSink;

/// What decides whether the meter runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicMeterState {
    /// The page shows the home screen's or the waiting room's preview.
    pub want_preview: bool,
    pub in_meeting: bool,
    /// A session is connected (waiting, or about to be in a meeting).
    pub session_open: bool,
    pub microphone: Choice,
    pub voice: VoiceSettings,
}

/// The meter, started and stopped to match a [`MicMeterState`].
pub struct MicMeter {
    pub state: MicMeterState,
    running: Option<MicLevelMonitor>,
    events: Arc<dyn EventSink>,
}

impl MicMeter {
    pub fn new(events: Arc<dyn EventSink>, microphone: Choice, voice: VoiceSettings) -> Self {
        Self {
            state: MicMeterState { want_preview: false, in_meeting: false, session_open: false, microphone, voice },
            running: None,
            events,
        }
    }

    /// The microphone to meter now: a real one, while a preview shows outside a meeting.
    fn wanted(&self) -> Option<Option<String>> {
        if !self.state.want_preview || self.state.in_meeting || self.state.session_open {
            return None;
        }
        match &self.state.microphone {
            Choice::Mic(name) => Some(Some(name.clone())),
            _ => None,
        }
    }

    /// Starts, stops or switches the meter to match the state; a meter whose microphone failed
    /// is started again. Stopping waits at most `MONITOR_STOP_WAIT` for the device to close.
    pub fn apply(&mut self) {
        let wanted = self.wanted();
        let running = self.running.as_ref().filter(|m| m.is_running()).map(|m| m.device().map(str::to_owned));
        if running.is_some() && running == wanted {
            if let Some(monitor) = &self.running {
                monitor.set_voice(self.state.voice);
            }
            return;
        }
        // Close the old device first: a meeting may be about to open it.
        if self.running.take().is_some() {
            self.events.emit(&silence());
        }
        let Some(device) = wanted else { return };
        let events = self.events.clone();
        let report = move |report| match report {
            MonitorReport::Level(level) => {
                events.emit(&UiEvent::MicLevel(MicLevel { dbfs: level.rms_dbfs, speaking: level.speaking }))
            }
            MonitorReport::Failed(e) => {
                events.emit(&silence());
                events.emit(&UiEvent::Error((&AppError::from_device(DeviceKind::Microphone, e)).into()))
            }
        };
        match MicLevelMonitor::start(device, self.state.voice, report) {
            Ok(monitor) => self.running = Some(monitor),
            Err(e) => tracing::warn!("cannot start the microphone level meter: {e}"),
        }
    }

    /// Whether a monitor runs.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }
}

/// The level the page shows when the meter stops.
fn silence() -> UiEvent {
    UiEvent::MicLevel(MicLevel { dbfs: SILENCE_DBFS, speaking: false })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;

    /// Sends every event the meter emits to the test.
    struct Events(Mutex<mpsc::Sender<UiEvent>>);

    impl EventSink for Events {
        fn emit(&self, event: &UiEvent) {
            let _ = self.0.lock().unwrap().send(event.clone());
        }
    }

    #[test]
    fn runs_only_for_a_microphone_while_a_preview_shows_outside_a_meeting() {
        let (tx, rx) = mpsc::channel();
        let mut meter = MicMeter::new(Arc::new(Events(Mutex::new(tx))), Choice::Tone, VoiceSettings::ALL_ON);
        meter.state.want_preview = true;
        meter.apply();
        assert!(!meter.is_running(), "a tone is not a microphone");

        meter.state.microphone = Choice::Mic("parlor-no-such-microphone".into());
        meter.state.in_meeting = true;
        meter.apply();
        assert!(!meter.is_running(), "the meeting owns the microphone");

        meter.state.in_meeting = false;
        meter.apply();
        assert!(meter.is_running());
        // That microphone does not exist: the bar drops to silence and the page is told why, in
        // its device terms.
        let silent = UiEvent::MicLevel(MicLevel { dbfs: SILENCE_DBFS, speaking: false });
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).expect("an event"), silent);
        match rx.recv_timeout(Duration::from_secs(10)).expect("an event") {
            UiEvent::Error(e) => assert!(format!("{e:?}").contains("parlor-no-such-microphone"), "{e:?}"),
            other => panic!("expected an error, got {other:?}"),
        }
        // A failed meter is started again on the next change (here: the same state).
        meter.apply();
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)).expect("an event"), silent);

        meter.state.session_open = true;
        meter.apply();
        assert!(!meter.is_running(), "a session may open the microphone any moment");
        meter.state.session_open = false;

        meter.state.want_preview = false;
        meter.apply();
        assert!(!meter.is_running());
    }
}
