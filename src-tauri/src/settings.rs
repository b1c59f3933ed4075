//! What the app remembers between runs, in `settings.json` in the app's config directory: the
//! display name and last relay address the page shows, the voice, notification and sound
//! switches, the download folder and the chosen devices.
//!
//! A missing or unreadable file means defaults (the page then asks for a name), never a failed
//! start. Writes go to a temporary file that is renamed over the old one, so a crash mid-write
//! leaves the previous settings intact.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::payloads::Settings;

/// Longest string kept in any field; the file stays small whatever the page sends.
const MAX_FIELD_CHARS: usize = 1024;

/// Everything stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Stored {
    #[serde(flatten)]
    pub settings: Settings,
    pub download_dir: Option<PathBuf>,
    pub camera: Option<String>,
    pub microphone: Option<String>,
    pub speaker: Option<String>,
}

/// The settings file and its current contents.
#[derive(Debug)]
pub struct SettingsStore {
    path: PathBuf,
    pub stored: Stored,
}

fn bounded(s: &str) -> String {
    s.chars().take(MAX_FIELD_CHARS).collect()
}

impl SettingsStore {
    /// Reads `path`; defaults when it is missing or unreadable.
    pub fn load(path: PathBuf) -> Self {
        let stored = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %path.display(), "settings unreadable, using defaults: {e}");
                Stored::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot read settings, using defaults: {e}");
                Stored::default()
            }
        };
        Self { path, stored }
    }

    /// Where the file lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the page's part of the settings and writes the file.
    pub fn set_settings(&mut self, settings: &Settings) -> std::io::Result<()> {
        self.stored.settings = Settings {
            display_name: bounded(&settings.display_name),
            last_relay_addr: bounded(&settings.last_relay_addr),
            echo_cancellation: settings.echo_cancellation,
            noise_suppression: settings.noise_suppression,
            notifications: settings.notifications,
            sounds: settings.sounds,
        };
        self.save()
    }

    /// Writes the file atomically (temporary file, then rename).
    pub fn save(&self) -> std::io::Result<()> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self.path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(&self.stored).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_survives_a_corrupt_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("conf").join("settings.json");
        let mut s = SettingsStore::load(path.clone());
        assert_eq!(s.stored, Stored::default());
        s.stored.camera = Some("synthetic".into());
        s.set_settings(&Settings {
            display_name: "Ada".into(),
            last_relay_addr: "10.0.0.2:5000".into(),
            noise_suppression: false,
            ..Default::default()
        })
        .unwrap();
        let again = SettingsStore::load(path.clone());
        assert_eq!(again.stored.settings.display_name, "Ada");
        assert!(!again.stored.settings.noise_suppression && again.stored.settings.echo_cancellation);
        assert_eq!(again.stored.camera.as_deref(), Some("synthetic"));
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(json["lastRelayAddr"], "10.0.0.2:5000");

        std::fs::write(&path, b"{not json").unwrap();
        assert_eq!(SettingsStore::load(path).stored, Stored::default());
    }

    #[test]
    fn a_settings_file_from_before_voice_processing_and_notifications_has_their_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, br#"{"displayName":"Ada","lastRelayAddr":"10.0.0.2:5000","camera":"synthetic"}"#)
            .unwrap();
        let s = SettingsStore::load(path);
        assert_eq!(s.stored.settings.display_name, "Ada");
        assert!(s.stored.settings.echo_cancellation && s.stored.settings.noise_suppression);
        assert!(s.stored.settings.notifications && !s.stored.settings.sounds, "notifications on, sounds off");
    }

    #[test]
    fn fields_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = SettingsStore::load(dir.path().join("s.json"));
        s.set_settings(&Settings { display_name: "x".repeat(100_000), ..Default::default() }).unwrap();
        assert_eq!(s.stored.settings.display_name.chars().count(), MAX_FIELD_CHARS);
    }
}
