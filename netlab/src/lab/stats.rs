//! Reading the bots' `--stats-json` files: one JSON object per line, once a second.
//!
//! The lab reads only the fields it charts, each with a default, so it keeps working when
//! client-core adds fields (and does not need to link client-core and its media stack).

use std::path::Path;

use serde::Deserialize;

use super::LabError;

/// One line of a bot's stats file (a subset of client-core's `StatsSnapshot`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Snapshot {
    pub timestamp_ms: u64,
    pub participant_id: u32,
    pub rtt_ms: Option<f64>,
    pub quality: Quality,
    pub quality_input_loss: f64,
    pub uplink_video_loss: Option<f64>,
    pub receivers_video_loss: Option<f64>,
    pub video_out: VideoOut,
    pub audio_out: AudioOut,
    pub streams: Vec<Stream>,
    pub bitrate_in_kbps: f64,
    pub bitrate_out_kbps: f64,
    pub files: Vec<FileTransfer>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Quality {
    pub level: usize,
    pub name: String,
    pub fps: u8,
    pub level_changes: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VideoOut {
    pub enabled: bool,
    pub frames_sent: u64,
    pub fps: f64,
    pub bitrate_kbps: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AudioOut {
    pub enabled: bool,
    pub frames_sent: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Stream {
    pub participant_id: u32,
    pub video: VideoIn,
    pub audio: AudioIn,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct VideoIn {
    pub frames_received: u64,
    pub fps: f64,
    pub loss: f64,
    pub jitter_ms: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AudioIn {
    pub packets_received: u64,
    pub loss: f64,
    pub jitter_buffer_ms: f64,
    pub concealed_frames: u64,
    pub played_frames: u64,
    pub underruns: u64,
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct FileTransfer {
    pub direction: String,
    pub bytes: u64,
    pub total: u64,
    pub rate_bps: f64,
    pub cwnd: Option<u32>,
    pub state: String,
}

/// Everything one bot wrote, with times relative to the run's start.
#[derive(Debug, Clone, Default)]
pub struct BotStats {
    pub name: String,
    /// `(t_s, snapshot)` in file order.
    pub lines: Vec<(f64, Snapshot)>,
}

impl BotStats {
    /// Reads `path`; `t0_ms` (ms since the Unix epoch) is time zero of the run. Lines that do
    /// not parse (e.g. the last one, cut short when the bot was killed) are skipped.
    pub fn load(name: &str, path: &Path, t0_ms: u64) -> Result<BotStats, LabError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LabError::Startup(format!("no stats from bot {name} at {}: {e}", path.display())))?;
        Ok(Self::parse(name, &text, t0_ms))
    }

    /// Parses the text of a stats file.
    pub fn parse(name: &str, text: &str, t0_ms: u64) -> BotStats {
        let lines = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Snapshot>(l).ok())
            .map(|s| ((s.timestamp_ms as f64 - t0_ms as f64) / 1000.0, s))
            .collect();
        BotStats { name: name.to_string(), lines }
    }

    /// This bot's participant id (from its last line).
    pub fn participant_id(&self) -> Option<u32> {
        self.lines.last().map(|(_, s)| s.participant_id)
    }

    /// `(t, f(snapshot))` for every line where `f` has a value.
    pub fn series(&self, f: impl Fn(&Snapshot) -> Option<f64>) -> Vec<(f64, f64)> {
        self.lines.iter().filter_map(|(t, s)| f(s).map(|v| (*t, v))).collect()
    }

    /// The stream this bot receives from participant `from`.
    pub fn stream_from(s: &Snapshot, from: u32) -> Option<&Stream> {
        s.streams.iter().find(|st| st.participant_id == from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_relative_to_t0_and_skips_garbage() {
        let text = concat!(
            r#"{"timestamp_ms":10500,"participant_id":2,"rtt_ms":12.5,"quality":{"level":3,"name":"480p","level_changes":0},"streams":[{"participant_id":1,"video":{"fps":19.5},"audio":{"jitter_buffer_ms":60,"latency_p50_ms":3}}],"new_field":1}"#,
            "\n",
            "{\"timestamp_ms\":11500,\"quality\":{\"le",
            "\n"
        );
        let b = BotStats::parse("a", text, 10_000);
        assert_eq!(b.lines.len(), 1);
        assert_eq!(b.lines[0].0, 0.5);
        assert_eq!(b.participant_id(), Some(2));
        assert_eq!(b.series(|s| s.rtt_ms), vec![(0.5, 12.5)]);
        let st = BotStats::stream_from(&b.lines[0].1, 1).unwrap();
        assert_eq!(st.video.fps, 19.5);
        assert_eq!(st.audio.latency_p50_ms, Some(3.0));
    }
}
