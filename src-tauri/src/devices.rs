//! Capture and playback devices as the page lists them, and the session options they become.
//!
//! Besides the machine's cameras, microphones and speakers, the engine's synthetic sources are
//! offered as devices too (a moving test pattern, a test tone, no sound output), so the app is
//! usable — and testable — on a machine with none. Ids are opaque to the page: `camera:<index>`,
//! `mic:<name>`, `speaker:<name>`, or `synthetic` / `tone` / `null`.

use client_core::media;
use client_core::{AudioChoice, SinkChoice, VideoChoice};

use crate::error::{AppError, DeviceKind};
use crate::payloads::{Device, DeviceList};

/// Id of the test pattern camera.
pub const SYNTHETIC_CAMERA: &str = "synthetic";
/// Id of the test tone microphone.
pub const TONE_MIC: &str = "tone";
/// Id of the silent speaker.
pub const NULL_SPEAKER: &str = "null";

/// One device of each kind, as chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    Camera(u32),
    SyntheticCamera,
    Mic(String),
    Tone,
    Speaker(String),
    NullSpeaker,
}

impl Choice {
    /// Parses an id of `kind` from `list_devices`.
    pub fn parse(kind: DeviceKind, id: &str) -> Result<Self, AppError> {
        let not_found = || AppError::DeviceNotFound { kind, message: format!("no device {id:?}") };
        match kind {
            DeviceKind::Camera if id == SYNTHETIC_CAMERA => Ok(Choice::SyntheticCamera),
            DeviceKind::Camera => {
                id.strip_prefix("camera:").and_then(|i| i.parse().ok()).map(Choice::Camera).ok_or_else(not_found)
            }
            DeviceKind::Microphone if id == TONE_MIC => Ok(Choice::Tone),
            DeviceKind::Microphone => id.strip_prefix("mic:").map(|n| Choice::Mic(n.to_string())).ok_or_else(not_found),
            DeviceKind::Speaker if id == NULL_SPEAKER => Ok(Choice::NullSpeaker),
            DeviceKind::Speaker => {
                id.strip_prefix("speaker:").map(|n| Choice::Speaker(n.to_string())).ok_or_else(not_found)
            }
            // Screens are chosen with `ScreenChoice`, never by a device id.
            DeviceKind::Screen => Err(not_found()),
        }
    }

    /// The id the page sees.
    pub fn id(&self) -> String {
        match self {
            Choice::Camera(i) => format!("camera:{i}"),
            Choice::SyntheticCamera => SYNTHETIC_CAMERA.into(),
            Choice::Mic(n) => format!("mic:{n}"),
            Choice::Tone => TONE_MIC.into(),
            Choice::Speaker(n) => format!("speaker:{n}"),
            Choice::NullSpeaker => NULL_SPEAKER.into(),
        }
    }
}

/// What the machine has right now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// (index, name)
    pub cameras: Vec<(u32, String)>,
    pub microphones: Vec<String>,
    pub speakers: Vec<String>,
}

impl Inventory {
    /// Asks the media backends. Blocking (device queries can take a moment).
    pub fn query() -> Self {
        Self {
            cameras: media::list_cameras().into_iter().map(|c| (c.index, c.name)).collect(),
            microphones: media::list_input_devices(),
            speakers: media::list_output_devices(),
        }
    }
}

/// The devices in use: the stored choice when it still exists, else the first real device,
/// else the synthetic one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub camera: Choice,
    pub microphone: Choice,
    pub speaker: Choice,
}

impl Selection {
    /// Resolves stored ids (possibly stale) against `inv`.
    pub fn resolve(inv: &Inventory, camera: Option<&str>, microphone: Option<&str>, speaker: Option<&str>) -> Self {
        let camera = camera
            .and_then(|id| Choice::parse(DeviceKind::Camera, id).ok())
            .filter(|c| match c {
                Choice::Camera(i) => inv.cameras.iter().any(|(j, _)| j == i),
                _ => true,
            })
            .or_else(|| inv.cameras.first().map(|(i, _)| Choice::Camera(*i)))
            .unwrap_or(Choice::SyntheticCamera);
        let microphone = microphone
            .and_then(|id| Choice::parse(DeviceKind::Microphone, id).ok())
            .filter(|c| match c {
                Choice::Mic(n) => inv.microphones.contains(n),
                _ => true,
            })
            .or_else(|| inv.microphones.first().map(|n| Choice::Mic(n.clone())))
            .unwrap_or(Choice::Tone);
        let speaker = speaker
            .and_then(|id| Choice::parse(DeviceKind::Speaker, id).ok())
            .filter(|c| match c {
                Choice::Speaker(n) => inv.speakers.contains(n),
                _ => true,
            })
            .or_else(|| inv.speakers.first().map(|n| Choice::Speaker(n.clone())))
            .unwrap_or(Choice::NullSpeaker);
        Self { camera, microphone, speaker }
    }

    /// The page's list, with this selection marked.
    pub fn list(&self, inv: &Inventory) -> DeviceList {
        let mark = |choice: Choice, label: String| Device {
            selected: choice == self.camera || choice == self.microphone || choice == self.speaker,
            id: choice.id(),
            label,
        };
        let mut cameras: Vec<Device> =
            inv.cameras.iter().map(|(i, name)| mark(Choice::Camera(*i), name.clone())).collect();
        cameras.push(mark(Choice::SyntheticCamera, "Test pattern".into()));
        let mut microphones: Vec<Device> =
            inv.microphones.iter().map(|n| mark(Choice::Mic(n.clone()), n.clone())).collect();
        microphones.push(mark(Choice::Tone, "Test tone (440 Hz)".into()));
        let mut speakers: Vec<Device> =
            inv.speakers.iter().map(|n| mark(Choice::Speaker(n.clone()), n.clone())).collect();
        speakers.push(mark(Choice::NullSpeaker, "No sound output".into()));
        DeviceList { cameras, microphones, speakers }
    }

    /// The engine's video source.
    pub fn video(&self) -> VideoChoice {
        match self.camera {
            Choice::Camera(i) => VideoChoice::Camera(i),
            _ => VideoChoice::Synthetic,
        }
    }

    /// The engine's audio source.
    pub fn audio(&self) -> AudioChoice {
        match &self.microphone {
            Choice::Mic(n) => AudioChoice::Mic(Some(n.clone())),
            _ => AudioChoice::Tone,
        }
    }

    /// The engine's audio output.
    pub fn sink(&self) -> SinkChoice {
        match &self.speaker {
            Choice::Speaker(n) => SinkChoice::Speaker(Some(n.clone())),
            _ => SinkChoice::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Inventory {
        Inventory {
            cameras: vec![(0, "Integrated".into()), (2, "USB".into())],
            microphones: vec!["Built-in".into()],
            speakers: vec![],
        }
    }

    #[test]
    fn ids_round_trip() {
        for (kind, c) in [
            (DeviceKind::Camera, Choice::Camera(3)),
            (DeviceKind::Camera, Choice::SyntheticCamera),
            (DeviceKind::Microphone, Choice::Mic("a:b".into())),
            (DeviceKind::Microphone, Choice::Tone),
            (DeviceKind::Speaker, Choice::Speaker("x".into())),
            (DeviceKind::Speaker, Choice::NullSpeaker),
        ] {
            assert_eq!(Choice::parse(kind, &c.id()).unwrap(), c);
        }
        let e = Choice::parse(DeviceKind::Camera, "camera:x").unwrap_err();
        assert_eq!(e.device(), Some(DeviceKind::Camera));
    }

    #[test]
    fn stale_choices_fall_back_to_the_first_real_device_then_synthetic() {
        let s = Selection::resolve(&inv(), Some("camera:2"), Some("mic:gone"), None);
        assert_eq!(s.camera, Choice::Camera(2));
        assert_eq!(s.microphone, Choice::Mic("Built-in".into()));
        assert_eq!(s.speaker, Choice::NullSpeaker);
        let s = Selection::resolve(&inv(), Some("camera:9"), Some("tone"), None);
        assert_eq!(s.camera, Choice::Camera(0));
        assert_eq!(s.microphone, Choice::Tone);
        let s = Selection::resolve(&Inventory::default(), None, None, None);
        assert_eq!((s.video(), s.audio(), s.sink()), (VideoChoice::Synthetic, AudioChoice::Tone, SinkChoice::Null));
    }

    #[test]
    fn the_list_marks_exactly_one_device_per_kind() {
        let s = Selection::resolve(&inv(), Some("synthetic"), None, None);
        let list = s.list(&inv());
        for devices in [&list.cameras, &list.microphones, &list.speakers] {
            assert_eq!(devices.iter().filter(|d| d.selected).count(), 1);
        }
        assert_eq!(list.cameras.last().unwrap().id, "synthetic");
        assert!(list.cameras.last().unwrap().selected);
        assert_eq!(list.speakers.len(), 1);
    }
}
