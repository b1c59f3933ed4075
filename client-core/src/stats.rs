//! Stats snapshots: what the engine measured over the last second, for every stream.
//!
//! A [`StatsSnapshot`] is produced once a second while in a meeting. It goes out as a
//! [`crate::SessionEvent::Stats`] event, is kept as the session's latest figures
//! ([`crate::Session::stats`]), and, on request, is appended to a JSON-lines file
//! ([`JsonLinesWriter`]) so a run can be charted afterwards. The snapshot's types live in
//! [`protocol::stats`], so the network lab reads the files with the very same types.
//!
//! One-way latency is measured from the capture timestamps the senders put in every packet
//! (µs since the Unix epoch). It is only meaningful when sender and receiver share a clock,
//! e.g. bots on one machine; [`LatencyHistogram`] keeps it in fixed 1 ms buckets so memory
//! stays bounded however long a run lasts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

pub use protocol::stats::{
    AudioInStats, AudioOutStats, FileDirection, FileTransferStats, QualityInfo, RemoteStreamStats, ScreenInStats,
    ScreenOutStats, StatsSnapshot, TransferState, VideoInStats, VideoOutStats,
};
use serde::Serialize;

/// Capture-to-receive latency in 1 ms buckets up to [`LatencyHistogram::MAX_MS`]; bounded
/// memory, exact percentiles at 1 ms resolution.
#[derive(Debug, Clone)]
pub struct LatencyHistogram {
    buckets: Vec<u32>,
    count: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl LatencyHistogram {
    /// Samples above this land in the last bucket.
    pub const MAX_MS: usize = 5_000;

    pub fn new() -> Self {
        Self { buckets: vec![0; Self::MAX_MS + 1], count: 0 }
    }

    /// Records one sample from capture and arrival timestamps (µs). A sample from the
    /// future (clocks not shared) is ignored.
    pub fn record_us(&mut self, capture_ts_us: u64, now_us: u64) {
        let Some(delta) = now_us.checked_sub(capture_ts_us) else { return };
        let ms = (delta / 1000) as usize;
        let slot = ms.min(Self::MAX_MS);
        if let Some(b) = self.buckets.get_mut(slot) {
            *b = b.saturating_add(1);
            self.count += 1;
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The `p`-th percentile (0..=1) in ms, or `None` without samples.
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((p.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (ms, n) in self.buckets.iter().enumerate() {
            seen += u64::from(*n);
            if seen >= rank {
                return Some(ms as f64);
            }
        }
        Some(Self::MAX_MS as f64)
    }

    /// Forgets every sample (e.g. after a warm-up period).
    pub fn clear(&mut self) {
        self.buckets.iter_mut().for_each(|b| *b = 0);
        self.count = 0;
    }
}

/// Appends one JSON object per line to a file.
#[derive(Debug)]
pub struct JsonLinesWriter {
    out: BufWriter<File>,
}

impl JsonLinesWriter {
    /// Creates (truncates) the file.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        Ok(Self { out: BufWriter::new(File::create(path)?) })
    }

    /// Writes one value as a line and flushes, so the file is readable while the run goes on.
    pub fn write<T: Serialize>(&mut self, value: &T) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, value)?;
        self.out.write_all(b"\n")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_from_buckets() {
        let mut h = LatencyHistogram::new();
        assert_eq!(h.percentile_ms(0.5), None);
        for ms in 1..=100u64 {
            h.record_us(1_000_000, 1_000_000 + ms * 1000 + 300);
        }
        assert_eq!(h.count(), 100);
        assert_eq!(h.percentile_ms(0.5), Some(50.0));
        assert_eq!(h.percentile_ms(0.95), Some(95.0));
        assert_eq!(h.percentile_ms(1.0), Some(100.0));
        h.record_us(10, 5); // from the future: ignored
        assert_eq!(h.count(), 100);
        h.record_us(0, 3_600_000_000); // an hour late: clamped
        assert_eq!(h.percentile_ms(1.0), Some(LatencyHistogram::MAX_MS as f64));
        h.clear();
        assert_eq!(h.percentile_ms(0.5), None);
    }

    #[test]
    fn json_lines_are_one_object_per_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.jsonl");
        let mut w = JsonLinesWriter::create(&path).unwrap();
        let mut s = StatsSnapshot { participant_id: 3, ..Default::default() };
        w.write(&s).unwrap();
        s.participant_id = 4;
        w.write(&s).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<StatsSnapshot> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].participant_id, 4);
    }
}
