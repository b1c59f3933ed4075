//! The home screen's microphone level meter: a [`MicLevelMonitor`] on the chosen microphone
//! while the page shows a preview outside a meeting, its levels sent to the page as
//! `mic-level` events.
//!
//! In a meeting the session's capture thread owns the microphone (two readers of one device
//! would each get half its frames on some hosts), so the meter stops and the engine's own
//! level of what it sends takes over (`micLevelDbfs` in the stats). The meter follows the
//! person's noise suppression choice, so the toggle's effect shows on the bar.

use std::sync::Arc;

use client_core::media::{MicLevelMonitor, MonitorReport, VoiceSettings};

use crate::devices::Choice;
use crate::error::AppError;
use crate::payloads::{MicLevel, UiEvent};
use crate::EventSink;

/// What decides whether the meter runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MicMeterState {
    /// The page shows the home screen's or the waiting room's preview.
    pub want_preview: bool,
    pub in_meeting: bool,
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
            state: MicMeterState { want_preview: false, in_meeting: false, microphone, voice },
            running: None,
            events,
        }
    }

    /// The microphone to meter now: a real one, while a preview shows outside a meeting.
    fn wanted(&self) -> Option<Option<String>> {
        if !self.state.want_preview || self.state.in_meeting {
            return None;
        }
        match &self.state.microphone {
            Choice::Mic(name) => Some(Some(name.clone())),
            _ => None,
        }
    }

    /// Starts, stops or switches the meter to match the state. Does not block: the monitor
    /// opens the microphone on its own thread.
    pub fn apply(&mut self) {
        let wanted = self.wanted();
        let running = self.running.as_ref().map(|m| m.device().map(str::to_owned));
        if running == wanted {
            if let Some(monitor) = &self.running {
                monitor.set_voice(self.state.voice);
            }
            return;
        }
        // Close the old device first: a meeting may be about to open it.
        self.running = None;
        let Some(device) = wanted else { return };
        let events = self.events.clone();
        let report = move |report| match report {
            MonitorReport::Level(level) => {
                events.emit(&UiEvent::MicLevel(MicLevel { dbfs: level.rms_dbfs, speaking: level.speaking }))
            }
            MonitorReport::Failed(e) => {
                let error = AppError::Internal(format!("the microphone level meter stopped: {e}"));
                events.emit(&UiEvent::Error((&error).into()))
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
