//! Stats snapshots: what the engine measured over the last second, for every stream.
//!
//! A [`StatsSnapshot`] is produced once a second while in a meeting. It goes out as a
//! [`crate::SessionEvent::Stats`] event, is kept as the session's latest figures
//! ([`crate::Session::stats`]), and, on request, is appended to a JSON-lines file
//! ([`JsonLinesWriter`]) so a run can be charted afterwards.
//!
//! One-way latency is measured from the capture timestamps the senders put in every packet
//! (µs since the Unix epoch). It is only meaningful when sender and receiver share a clock,
//! e.g. bots on one machine; [`LatencyHistogram`] keeps it in fixed 1 ms buckets so memory
//! stays bounded however long a run lasts.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

/// Everything measured over one stats interval (one second).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Wall-clock time of the snapshot, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Our participant id in the meeting.
    pub participant_id: u32,
    /// Smoothed round-trip time to the relay (UDP echo), if measured yet.
    pub rtt_ms: Option<f64>,
    /// Latest round-trip time sample.
    pub rtt_latest_ms: Option<f64>,
    /// The quality level the encoder currently follows.
    pub quality: QualityInfo,
    /// Loss the quality controller was fed for the last interval (0..=1).
    pub quality_input_loss: f64,
    /// Loss the relay reported on our uplink video over the last interval (0..=1).
    pub uplink_video_loss: Option<f64>,
    /// Median loss our receivers reported on our video over the last interval (0..=1).
    pub receivers_video_loss: Option<f64>,
    /// Outgoing video.
    pub video_out: VideoOutStats,
    /// Outgoing audio.
    pub audio_out: AudioOutStats,
    /// Everything received, per remote participant.
    pub streams: Vec<RemoteStreamStats>,
    /// Total received media bitrate, kbit/s.
    pub bitrate_in_kbps: f64,
    /// Total sent media bitrate, kbit/s.
    pub bitrate_out_kbps: f64,
    /// Datagrams dropped because they were not valid media packets.
    pub malformed_packets: u64,
    /// File transfers in progress or finished during this session.
    pub files: Vec<FileTransferStats>,
}

/// The encoder's current setting on the quality ladder.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QualityInfo {
    /// Index on the ladder (0 = 144p … 3 = 480p).
    pub level: usize,
    pub name: String,
    pub width: u16,
    pub height: u16,
    pub fps: u8,
    pub jpeg_quality: u8,
    /// How many times the level changed since the meeting started.
    pub level_changes: u32,
}

/// Our outgoing video stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoOutStats {
    /// Whether the camera (or test pattern) is sending.
    pub enabled: bool,
    /// What the frames come from (e.g. "test pattern 854x480").
    pub source: String,
    pub frames_sent: u64,
    pub packets_sent: u64,
    pub fps: f64,
    pub bitrate_kbps: f64,
    /// Size of the last encoded JPEG, bytes.
    pub last_frame_bytes: u64,
    pub last_frame_width: u16,
    pub last_frame_height: u16,
    /// Mean time to scale and encode one frame over the interval, ms.
    pub encode_ms: f64,
    /// Datagrams the OS refused (socket buffer full).
    pub send_errors: u64,
}

/// Our outgoing audio stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioOutStats {
    pub enabled: bool,
    pub source: String,
    pub frames_sent: u64,
    pub bitrate_kbps: f64,
    /// Our own level, dBFS.
    pub level_dbfs: f32,
    pub speaking: bool,
    /// Whether packets carry a copy of the previous frame (while receivers report loss).
    #[serde(default)]
    pub redundancy: bool,
}

/// What we receive from one remote participant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteStreamStats {
    pub participant_id: u32,
    pub video: VideoInStats,
    pub audio: AudioInStats,
    pub bitrate_kbps: f64,
}

/// One remote video stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VideoInStats {
    /// Frames decoded and delivered since the stream started.
    pub frames_received: u64,
    /// Video packets (fragments) received since the stream started.
    pub packets_received: u64,
    /// Frames delivered per second over the interval.
    pub fps: f64,
    /// Packet loss over the interval (0..=1).
    pub loss: f64,
    /// Packets lost since the stream started.
    pub cumulative_lost: u64,
    /// RFC 3550 interarrival jitter, ms.
    pub jitter_ms: f64,
    /// Frames that never completed (a fragment lost or too late).
    pub frames_incomplete: u64,
    /// Complete frames skipped because a newer one was ready before they were decoded.
    pub frames_skipped: u64,
    /// Frames that failed to decode.
    pub decode_errors: u64,
    pub last_width: u32,
    pub last_height: u32,
    /// Capture-to-display latency, ms (needs a shared clock).
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
}

/// One remote audio stream and its jitter buffer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AudioInStats {
    pub packets_received: u64,
    pub loss: f64,
    pub cumulative_lost: u64,
    pub jitter_ms: f64,
    /// Delay the jitter buffer currently adds, ms.
    pub jitter_buffer_ms: f64,
    /// Delay the jitter buffer aims for, ms.
    pub jitter_target_ms: f64,
    pub concealed_frames: u64,
    pub underruns: u64,
    pub late_frames: u64,
    pub played_frames: u64,
    /// Lost frames filled in from the next packet's redundant copy in time.
    #[serde(default)]
    pub recovered_frames: u64,
    /// Capture-to-arrival latency, ms (needs a shared clock).
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
    pub level_dbfs: f32,
    pub speaking: bool,
}

/// Which way a file moves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileDirection {
    #[default]
    Upload,
    Download,
}

/// One file transfer's progress and congestion window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileTransferStats {
    /// The relay's id for the file (known once the upload was accepted).
    pub file_id: Option<u64>,
    pub direction: FileDirection,
    pub name: String,
    pub bytes: u64,
    pub total: u64,
    /// Throughput over the last second, bytes/s.
    pub rate_bps: f64,
    /// Congestion window in chunks (uploads; downloads are paced by the relay).
    pub cwnd: Option<u32>,
    /// Bytes per chunk, the unit of `cwnd` and `ssthresh` (uploads).
    pub chunk_size: Option<u32>,
    pub ssthresh: Option<u32>,
    /// "slow_start" or "congestion_avoidance".
    pub phase: Option<String>,
    /// "active", "done", "failed" or "cancelled".
    pub state: String,
}

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
