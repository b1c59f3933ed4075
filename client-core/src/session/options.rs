//! What a session captures, plays and records: [`SessionOptions`].

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::media::{EchoPath, VoicePreferences};

/// Where outgoing video comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum VideoChoice {
    /// The moving test pattern with a burnt-in frame counter and capture time.
    #[default]
    Synthetic,
    /// A camera by index (see `media::list_cameras`); falls back to the test pattern with an
    /// `Error` event if it cannot be opened.
    Camera(u32),
    /// Send no video.
    None,
}

/// Where outgoing audio comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum AudioChoice {
    /// A 440 Hz tone.
    #[default]
    Tone,
    /// A WAV file on loop (any rate, channels and sample format).
    Wav(PathBuf),
    /// A microphone by name (`None`: the default device). If it cannot be opened an `Error`
    /// event is raised and no audio is sent: sending a synthetic tone instead of a person's
    /// voice would only confuse the others.
    Mic(Option<String>),
    /// What this session's own speaker plays, heard through a simulated room, plus an
    /// optional near-end talker from a WAV file: a laptop without headphones, for bots and
    /// tests (`media::EchoLoopbackSource`). Voice processing treats it as a microphone.
    EchoLoopback { path: EchoPath, near_end: Option<PathBuf> },
    /// Send no audio.
    None,
}

/// Where the mixed incoming audio goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum SinkChoice {
    /// Discard (still mixed, measured and recorded, paced by a timer).
    #[default]
    Null,
    /// A speaker by name (`None`: the default device); falls back to `Null` with an `Error`
    /// event if it cannot be opened.
    Speaker(Option<String>),
}

impl AudioChoice {
    /// Whether the signal comes from a room (a microphone, or the simulated one): voice
    /// processing is on for it unless the preferences say otherwise.
    pub fn is_microphone_like(&self) -> bool {
        matches!(self, AudioChoice::Mic(_) | AudioChoice::EchoLoopback { .. })
    }
}

/// Everything a session needs besides the relay's address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionOptions {
    /// Sent in `HELLO`.
    pub client_name: String,
    pub video: VideoChoice,
    pub audio: AudioChoice,
    pub sink: SinkChoice,
    /// Echo cancellation, noise suppression and gain control on the outgoing audio; by
    /// default on for a microphone and off for synthetic sources.
    pub voice: VoicePreferences,
    /// Also write the mixed incoming audio to this WAV file (16 kHz mono s16).
    pub record_audio: Option<PathBuf>,
    /// Append one JSON line per stats snapshot to this file.
    pub stats_path: Option<PathBuf>,
    /// Whether the microphone starts unmuted.
    pub mic_on: bool,
    /// Whether the camera starts on.
    pub camera_on: bool,
    /// Also put each captured frame into the [`super::FrameSource::Local`] video slot, for a
    /// self view (the capture thread owns the camera; nobody else can read it meanwhile).
    pub local_video: bool,
    /// Test hook: the loss fraction (0..=1) fed to the quality controller instead of the
    /// measured one. Also settable at run time with `Session::set_loss_override`.
    pub loss_override: Option<f64>,
    /// Starting level on the quality ladder (default: the controller's, 480p).
    pub start_level: Option<usize>,
    /// Which relay certificates to trust ([`crate::net::tls`]). The default trusts a relay on
    /// first use and keeps the pin in memory: right for bots and tests, not for an app, which
    /// keeps its pins in a file and passes an invitation's fingerprint.
    #[serde(skip)]
    pub trust: crate::net::tls::RelayTrust,
    /// How long `connect` waits for the TCP connection and the relay's `WELCOME`.
    #[serde(with = "duration_ms")]
    pub connect_timeout: Duration,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self {
            client_name: format!("parlor-client-core/{}", env!("CARGO_PKG_VERSION")),
            video: VideoChoice::Synthetic,
            audio: AudioChoice::Tone,
            sink: SinkChoice::Null,
            voice: VoicePreferences::default(),
            record_audio: None,
            stats_path: None,
            mic_on: true,
            camera_on: true,
            local_video: false,
            loss_override: None,
            start_level: None,
            trust: Default::default(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

mod duration_ms {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u128::from(u64::MAX)) as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_round_trip_through_json_and_default_missing_fields() {
        let opts = SessionOptions {
            video: VideoChoice::Camera(1),
            audio: AudioChoice::Wav("a.wav".into()),
            sink: SinkChoice::Speaker(None),
            ..Default::default()
        };
        let json = serde_json::to_string(&opts).unwrap();
        assert_eq!(serde_json::from_str::<SessionOptions>(&json).unwrap(), opts);
        let partial: SessionOptions = serde_json::from_str(r#"{"video":{"kind":"none"}}"#).unwrap();
        assert_eq!(partial.video, VideoChoice::None);
        assert_eq!(partial.audio, AudioChoice::Tone);
    }
}
