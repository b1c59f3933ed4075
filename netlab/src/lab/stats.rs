//! Reading the bots' `--stats-json` files: one JSON object per line, once a second.
//!
//! Each line is a client-core stats snapshot, read with its own type
//! ([`protocol::stats::StatsSnapshot`], which client-core writes), so a renamed or retyped
//! field is a build error here rather than a chart that silently reads 0.

use std::path::Path;

pub use protocol::stats::{AudioInStats, RemoteStreamStats, StatsSnapshot};

use super::LabError;

/// Everything one bot wrote, with times relative to the run's start.
#[derive(Debug, Clone, Default)]
pub struct BotStats {
    pub name: String,
    /// `(t_s, snapshot)` in file order.
    pub lines: Vec<(f64, StatsSnapshot)>,
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
            .filter_map(|l| serde_json::from_str::<StatsSnapshot>(l).ok())
            .map(|s| ((s.timestamp_ms as f64 - t0_ms as f64) / 1000.0, s))
            .collect();
        BotStats { name: name.to_string(), lines }
    }

    /// This bot's participant id (from its last line).
    pub fn participant_id(&self) -> Option<u32> {
        self.lines.last().map(|(_, s)| s.participant_id)
    }

    /// `(t, f(snapshot))` for every line where `f` has a value.
    pub fn series(&self, f: impl Fn(&StatsSnapshot) -> Option<f64>) -> Vec<(f64, f64)> {
        self.lines.iter().filter_map(|(t, s)| f(s).map(|v| (*t, v))).collect()
    }

    /// The stream this bot receives from participant `from`.
    pub fn stream_from(s: &StatsSnapshot, from: u32) -> Option<&RemoteStreamStats> {
        s.streams.iter().find(|st| st.participant_id == from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lines_relative_to_t0_and_skips_garbage() {
        let mut snapshot =
            StatsSnapshot { timestamp_ms: 10_500, participant_id: 2, rtt_ms: Some(12.5), ..Default::default() };
        let mut stream = RemoteStreamStats { participant_id: 1, ..Default::default() };
        stream.video.fps = 19.5;
        stream.audio.latency_p50_ms = Some(3.0);
        snapshot.streams.push(stream);
        let line = serde_json::to_string(&snapshot).unwrap();
        // A line cut short (the bot was killed mid-write) is skipped.
        let text = format!("{line}\n{}\n", &line[..line.len() / 2]);
        let b = BotStats::parse("a", &text, 10_000);
        assert_eq!(b.lines.len(), 1);
        assert_eq!(b.lines[0].0, 0.5);
        assert_eq!(b.lines[0].1, snapshot, "read back with client-core's own type");
        assert_eq!(b.participant_id(), Some(2));
        assert_eq!(b.series(|s| s.rtt_ms), vec![(0.5, 12.5)]);
        let st = BotStats::stream_from(&b.lines[0].1, 1).unwrap();
        assert_eq!(st.video.fps, 19.5);
        assert_eq!(st.audio.latency_p50_ms, Some(3.0));
    }
}
