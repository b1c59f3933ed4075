//! The shapes of a client's stats snapshots: what its engine measured over the last second,
//! for every stream.
//!
//! client-core produces one [`StatsSnapshot`] a second and can append each to a JSON-lines
//! file (`--stats-json`); the network lab reads those files back with these same types, so a
//! renamed or retyped field breaks the build, not the charts. They are plain data: the
//! measuring is done by client-core.

use serde::{Deserialize, Serialize};

use crate::reno::RenoPhase;

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
    /// Our shared screen, while we present.
    #[serde(default)]
    pub screen_out: ScreenOutStats,
    /// Everything received, per remote participant.
    pub streams: Vec<RemoteStreamStats>,
    /// Total received media bitrate, kbit/s.
    pub bitrate_in_kbps: f64,
    /// Total sent media bitrate, kbit/s.
    pub bitrate_out_kbps: f64,
    /// Datagrams dropped because they were not valid media packets.
    pub malformed_packets: u64,
    /// Datagrams dropped because their authentication trailer did not verify with the key
    /// the relay seals with for us: forged, altered, or not from our relay.
    #[serde(default)]
    pub unauthenticated_packets: u64,
    /// Authentic datagrams dropped because their number was seen before or is older than the
    /// replay window: a copy sent again.
    #[serde(default)]
    pub replayed_packets: u64,
    /// Video frames and audio packets that came through the relay but did not open with the
    /// meeting's end-to-end keys: sealed under a key we were not given (a participant who
    /// left, a key not delivered yet), altered, or replayed by another participant.
    #[serde(default)]
    pub undecryptable_media: u64,
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
    /// Whether packets carry copies of earlier frames (while receivers report loss).
    #[serde(default)]
    pub redundancy: bool,
    /// How many earlier frames each packet carries copies of (0 to 4), from the loss runs
    /// receivers report.
    #[serde(default)]
    pub redundancy_depth: u8,
    /// Voice processing on the microphone signal: which stages run.
    #[serde(default)]
    pub echo_cancellation: bool,
    #[serde(default)]
    pub noise_suppression: bool,
    #[serde(default)]
    pub gain_control: bool,
    /// The echo path delay the echo canceller estimated (speaker to microphone), ms.
    #[serde(default)]
    pub aec_delay_ms: Option<i32>,
    /// How much the echo canceller takes off the echo (echo return loss enhancement), dB.
    #[serde(default)]
    pub erle_db: Option<f64>,
}

/// Our outgoing screen stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScreenOutStats {
    /// Whether a screen is being shared.
    pub enabled: bool,
    /// What is shared (e.g. "screen :99.0", "synthetic slides 1920x1080").
    pub source: String,
    /// The screen ladder's current level.
    pub quality: QualityInfo,
    /// Size of the pictures sent (the capture scaled to fit the level).
    pub width: u16,
    pub height: u16,
    /// Updates sent per second (a capture in which nothing changed sends none).
    pub fps: f64,
    pub updates_sent: u64,
    pub slices_sent: u64,
    pub bitrate_kbps: f64,
    /// Fraction of the picture that changed per capture over the interval (0..=1).
    pub changed_fraction: f64,
    /// Mean time to scale, compare, pack and encode one update over the interval, ms.
    pub encode_ms: f64,
    /// Loss the relay reported on our screen uplink, and the median of our receivers'.
    pub uplink_loss: Option<f64>,
    pub receivers_loss: Option<f64>,
}

/// What we receive from one remote participant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RemoteStreamStats {
    pub participant_id: u32,
    pub video: VideoInStats,
    pub audio: AudioInStats,
    /// Their shared screen, once any of it arrived.
    #[serde(default)]
    pub screen: Option<ScreenInStats>,
    pub bitrate_kbps: f64,
}

/// One remote screen stream.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScreenInStats {
    pub width: u32,
    pub height: u32,
    /// Slices applied to the canvas since the share started.
    pub slices_received: u64,
    pub packets_received: u64,
    /// Slices per second over the interval.
    pub slices_per_second: f64,
    pub bitrate_kbps: f64,
    /// Packet loss over the interval (0..=1).
    pub loss: f64,
    pub jitter_ms: f64,
    /// Tiles that may be out of date now (lost, or never received).
    pub stale_tiles: u32,
    /// How long the oldest stale tile has been stale, ms.
    pub stale_ms: f64,
    /// Longest time a tile stayed stale since the picture was first whole, ms.
    pub longest_stale_ms: f64,
    /// Refresh requests sent to the sharer.
    pub refreshes_requested: u64,
    /// Capture-to-display latency of the updates, ms (needs a shared clock).
    pub latency_p50_ms: Option<f64>,
    pub latency_p95_ms: Option<f64>,
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
    /// Lost frames filled in from a later packet's redundant copy in time.
    #[serde(default)]
    pub recovered_frames: u64,
    /// Times the jitter buffer played two frames as one to bring its delay down.
    #[serde(default)]
    pub accelerated_frames: u64,
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
    /// Which growth rule the upload's window follows (uploads).
    pub phase: Option<RenoPhase>,
    pub state: TransferState,
}

/// Where a file transfer stands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferState {
    /// Bytes are moving.
    #[default]
    Active,
    /// Every byte arrived and the SHA-256 matched.
    Done,
    /// It stopped on an error (a download may be resumed).
    Failed,
    /// The user stopped it.
    Cancelled,
}

impl TransferState {
    /// Whether the transfer is over, one way or another.
    pub fn is_finished(self) -> bool {
        self != TransferState::Active
    }
}
