//! Parlor's client engine: everything a participant's machine does, without a GUI.
//!
//! - [`session`]: the [`Session`] API — connect to a relay, create or join a meeting, admit
//!   and deny, chat, send and receive files, and the media engine that captures, encodes,
//!   sends, receives, decodes, buffers, mixes and plays — reporting everything as
//!   [`SessionEvent`]s, with video frames in latest-frame slots read through a [`VideoFeed`].
//! - [`media`]: capture devices and synthetic sources, JPEG, resampling, mixing, levels.
//! - [`net`]: the control connection and the UDP media socket.
//! - [`files`]: Reno-paced uploads and resumable, verified downloads.
//! - [`stats`]: the per-second [`StatsSnapshot`] and its JSON-lines log.
//!
//! The desktop app and `parlor-bot` are both thin layers over [`Session`].

pub mod files;
pub mod media;
pub mod net;
pub mod session;
pub mod stats;

pub use net::tls::{PinStore, RelayCertificate, RelayTrust, TrustedBy};
pub use session::{
    AudioChoice, EventReceiver, FileFailure, FileProgress, FrameSource, ParticipantLevel, PixelFormat, Session,
    SessionError, SessionEvent, SessionOptions, SinkChoice, VideoChoice, VideoFeed, VideoFrame,
};
pub use stats::StatsSnapshot;
