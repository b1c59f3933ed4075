//! UDP media packets: a fixed big-endian binary header and, for video and audio, a payload.
//!
//! Every packet starts with the same 8-byte common header:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 2 | magic `"PR"` (0x50 0x52) |
//! | 2 | 1 | version (5) |
//! | 3 | 1 | kind ([`PacketKind`]) |
//! | 4 | 4 | sender id (0 = the relay) |
//!
//! followed by a kind-specific header (see `docs/protocol.md` for the byte tables), and the
//! datagram ends with the 24-byte authentication trailer of [`crate::hop`]. This module reads
//! and writes the *packet*, the datagram without its trailer: [`peek_header`] looks at a whole
//! datagram, [`MediaPacket::decode`] at the packet a [`crate::hop::HopReceiver`] verified, and
//! [`crate::hop::HopSender::encode`] writes a packet and seals it.
//! Decoding borrows the payload from the datagram and never allocates, so a relay can look
//! at a packet and forward the very same bytes. Every length is checked against the buffer
//! and decoding never panics.

use thiserror::Error;

use crate::e2ee::SEAL_OVERHEAD;
use crate::hop::{HopSender, HOP_TRAILER_LEN};
use crate::screen::{TileRun, MAX_REFRESH_RANGES};

/// First two bytes of every media packet.
pub const MAGIC: [u8; 2] = *b"PR";
/// Media packet format version: 2 added the authentication trailer and dropped the
/// keepalive's token; 3 carries video frames and audio end-to-end sealed ([`crate::e2ee`]);
/// 4 adds loss runs to receiver reports and up to four redundant copies to audio; 5 adds the
/// screen stream (screen fragments, refresh requests, screen receiver reports).
pub const MEDIA_VERSION: u8 = 5;
/// Largest datagram Parlor sends; fits an IPv4/IPv6 path MTU of 1280 with room for headers.
pub const MAX_DATAGRAM_LEN: usize = 1200;
/// Largest packet: a datagram without its authentication trailer.
pub const MAX_PACKET_LEN: usize = MAX_DATAGRAM_LEN - HOP_TRAILER_LEN;
/// Length of the header shared by every kind.
pub const COMMON_HEADER_LEN: usize = 8;
/// Length of a video (or screen) fragment's header, common header included.
pub const VIDEO_HEADER_LEN: usize = COMMON_HEADER_LEN + 26;
/// Length of an audio packet's header, common header included.
pub const AUDIO_HEADER_LEN: usize = COMMON_HEADER_LEN + 19;
/// Length of the header of an audio packet's redundant block (encoding + length).
pub const AUDIO_REDUNDANCY_HEADER_LEN: usize = 3;
/// Length of the associated data a video frame is sealed with ([`VideoFrameMeta::aad`]).
pub const VIDEO_AAD_LEN: usize = 21;
/// Length of the associated data an audio packet is sealed with ([`AudioHeader::aad`]).
pub const AUDIO_AAD_LEN: usize = 22;
/// Largest JPEG slice carried by one video fragment.
pub const MAX_VIDEO_FRAGMENT_PAYLOAD: usize = MAX_PACKET_LEN - VIDEO_HEADER_LEN;
/// Sender id the relay uses for packets it originates (RTT replies, receiver reports).
pub const RELAY_SENDER_ID: u32 = 0;

/// The kind byte of a media packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketKind {
    VideoFragment = 1,
    Audio = 2,
    RttRequest = 3,
    RttReply = 4,
    ReceiverReport = 5,
    Keepalive = 6,
    ScreenFragment = 7,
    RefreshRequest = 8,
}

impl PacketKind {
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::VideoFragment,
            2 => Self::Audio,
            3 => Self::RttRequest,
            4 => Self::RttReply,
            5 => Self::ReceiverReport,
            6 => Self::Keepalive,
            7 => Self::ScreenFragment,
            8 => Self::RefreshRequest,
            _ => return None,
        })
    }
}

/// Which of a sender's streams a receiver report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MediaKind {
    /// The camera.
    Video = 1,
    Audio = 2,
    /// The shared screen.
    Screen = 3,
}

impl MediaKind {
    pub fn from_u8(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Video),
            2 => Some(Self::Audio),
            3 => Some(Self::Screen),
            _ => None,
        }
    }
}

/// Which of a participant's two picture streams a fragment belongs to. Both are cut and
/// reassembled alike; they differ in their packet kind, their sequence numbers (one counter
/// each) and what the frame holds (a JPEG, or a [`crate::screen`] update).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoStream {
    Camera,
    Screen,
}

impl VideoStream {
    /// The packet kind its fragments carry.
    pub fn packet_kind(self) -> PacketKind {
        match self {
            Self::Camera => PacketKind::VideoFragment,
            Self::Screen => PacketKind::ScreenFragment,
        }
    }

    /// The receiver-report media kind that is about it.
    pub fn media_kind(self) -> MediaKind {
        match self {
            Self::Camera => MediaKind::Video,
            Self::Screen => MediaKind::Screen,
        }
    }
}

/// Why a datagram is not a valid media packet. Used as the reason label when counting drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum PacketError {
    #[error("datagram shorter than its header and trailer")]
    TooShort,
    #[error("datagram longer than {MAX_DATAGRAM_LEN} bytes")]
    TooLong,
    #[error("bad magic")]
    BadMagic,
    #[error("unsupported version {0}")]
    UnsupportedVersion(u8),
    #[error("unknown packet kind {0}")]
    UnknownKind(u8),
    #[error("payload length does not match the datagram")]
    LengthMismatch,
    #[error("invalid field value")]
    InvalidField,
    #[error("output buffer too small")]
    BufferTooSmall,
}

/// Header of one video fragment: a slice of one JPEG frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoHeader {
    /// Increases by one per frame the sender encodes.
    pub frame_id: u32,
    /// Sender's capture time, µs since the Unix epoch.
    pub capture_ts_us: u64,
    /// Increases by one per video packet the sender sends (for loss and jitter).
    pub seq: u32,
    pub width: u16,
    pub height: u16,
    /// Position of this fragment in the frame, `0..frag_count`.
    pub frag_index: u16,
    /// Number of fragments in the frame, at least 1.
    pub frag_count: u16,
}

/// Header of one audio packet; its body is an [`AudioPayload`] sealed end to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioHeader {
    /// Increases by one per audio frame.
    pub seq: u32,
    /// Sender's capture time, µs since the Unix epoch.
    pub capture_ts_us: u64,
    pub sample_rate: u32,
    pub channels: u8,
}

/// Body of an RTT echo request or reply. The relay copies the request's fields into its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RttEcho {
    pub echo_id: u32,
    /// Requester's clock when it sent the request, µs. Opaque to the relay.
    pub sent_ts_us: u64,
}

/// What a receiver (or the relay) observed on one of a sender's streams over the last interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceiverReport {
    /// The sender whose stream this report is about.
    pub source_id: u32,
    pub media: MediaKind,
    /// Fraction of packets lost in the interval, in thousandths (0..=1000).
    pub loss_permille: u16,
    /// Highest sequence number received so far.
    pub highest_seq: u32,
    /// Packets lost since the stream started.
    pub cumulative_lost: u32,
    /// RFC 3550 interarrival jitter, µs.
    pub jitter_us: u32,
    /// Runs of 1, 2, 3 and 4 or more consecutive lost packets in the interval
    /// ([`crate::estimators::LossInterval::loss_runs`]): how bursty the loss is.
    pub loss_runs: [u16; 4],
}

/// A decoded media packet. Payloads borrow from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaPacket<'a> {
    VideoFragment {
        sender_id: u32,
        header: VideoHeader,
        payload: &'a [u8],
    },
    Audio {
        sender_id: u32,
        header: AudioHeader,
        /// An [`AudioPayload`] sealed by [`crate::e2ee::MediaSealer`] with [`AudioHeader::aad`].
        sealed: &'a [u8],
    },
    RttRequest {
        sender_id: u32,
        echo: RttEcho,
    },
    RttReply {
        sender_id: u32,
        echo: RttEcho,
    },
    ReceiverReport {
        sender_id: u32,
        report: ReceiverReport,
    },
    /// Tells the relay where this participant's media comes from. Nothing but the common
    /// header: the trailer proves who sent it.
    Keepalive {
        sender_id: u32,
    },
    /// One slice of one sealed screen update ([`crate::screen`]); the header is a video
    /// fragment's.
    ScreenFragment {
        sender_id: u32,
        header: VideoHeader,
        payload: &'a [u8],
    },
    /// A receiver asks `source_id` to send these tiles of its screen again (it joined late,
    /// or lost part of an update). The relay forwards it to the source, at most one per
    /// receiver and source per [`REFRESH_REQUEST_INTERVAL_MS`].
    RefreshRequest {
        sender_id: u32,
        source_id: u32,
        ranges: RefreshRanges,
    },
}

/// The tile ranges of a refresh request: 1 to [`MAX_REFRESH_RANGES`], none empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshRanges {
    len: u8,
    runs: [TileRun; MAX_REFRESH_RANGES],
}

impl RefreshRanges {
    /// The ranges, or `None` if there are none, too many, or one is empty.
    pub fn new(runs: &[TileRun]) -> Option<Self> {
        if runs.is_empty() || runs.len() > MAX_REFRESH_RANGES || runs.iter().any(|r| r.count == 0) {
            return None;
        }
        let mut all = [TileRun { first: 0, count: 0 }; MAX_REFRESH_RANGES];
        all[..runs.len()].copy_from_slice(runs);
        Some(Self { len: runs.len() as u8, runs: all })
    }

    pub fn as_slice(&self) -> &[TileRun] {
        &self.runs[..usize::from(self.len)]
    }
}

/// The relay forwards at most one refresh request per receiver in this many milliseconds.
pub const REFRESH_REQUEST_INTERVAL_MS: u64 = 150;

/// Reads big-endian fields with bounds checks; every read returns `TooShort` past the end.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PacketError> {
        let end = self.pos.checked_add(n).ok_or(PacketError::TooShort)?;
        let s = self.buf.get(self.pos..end).ok_or(PacketError::TooShort)?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PacketError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PacketError> {
        let s = self.take(2)?;
        Ok(u16::from_be_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, PacketError> {
        let s = self.take(4)?;
        Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Result<u64, PacketError> {
        let s = self.take(8)?;
        let mut b = [0u8; 8];
        b.copy_from_slice(s);
        Ok(u64::from_be_bytes(b))
    }
    fn rest(&self) -> usize {
        self.buf.len() - self.pos
    }
}

/// Writes big-endian fields into a fixed slice whose size was checked up front.
struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.pos..self.pos + bytes.len()].copy_from_slice(bytes);
        self.pos += bytes.len();
    }
}

/// Reads only the common header of a whole datagram (packet and trailer): the packet's kind
/// and sender id. Cheap enough for the relay's hot path, which needs the sender to find the
/// key that verifies the rest.
pub fn peek_header(datagram: &[u8]) -> Result<(PacketKind, u32), PacketError> {
    if datagram.len() > MAX_DATAGRAM_LEN {
        return Err(PacketError::TooLong);
    }
    if datagram.len() < COMMON_HEADER_LEN + HOP_TRAILER_LEN {
        return Err(PacketError::TooShort);
    }
    common_header(datagram)
}

/// The common header at the start of `buf`, which is at least [`COMMON_HEADER_LEN`] long.
fn common_header(buf: &[u8]) -> Result<(PacketKind, u32), PacketError> {
    if buf[0..2] != MAGIC {
        return Err(PacketError::BadMagic);
    }
    if buf[2] != MEDIA_VERSION {
        return Err(PacketError::UnsupportedVersion(buf[2]));
    }
    let kind = PacketKind::from_u8(buf[3]).ok_or(PacketError::UnknownKind(buf[3]))?;
    let sender_id = u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Ok((kind, sender_id))
}

impl<'a> MediaPacket<'a> {
    /// Decodes a packet (a datagram without its trailer). Never panics; never allocates.
    pub fn decode(buf: &'a [u8]) -> Result<Self, PacketError> {
        if buf.len() > MAX_PACKET_LEN {
            return Err(PacketError::TooLong);
        }
        if buf.len() < COMMON_HEADER_LEN {
            return Err(PacketError::TooShort);
        }
        let (kind, sender_id) = common_header(buf)?;
        let mut r = Reader { buf, pos: COMMON_HEADER_LEN };
        let packet = match kind {
            PacketKind::VideoFragment | PacketKind::ScreenFragment => {
                let header = VideoHeader {
                    frame_id: r.u32()?,
                    capture_ts_us: r.u64()?,
                    seq: r.u32()?,
                    width: r.u16()?,
                    height: r.u16()?,
                    frag_index: r.u16()?,
                    frag_count: r.u16()?,
                };
                let len = r.u16()? as usize;
                if header.frag_count == 0 || header.frag_index >= header.frag_count {
                    return Err(PacketError::InvalidField);
                }
                if len != r.rest() {
                    return Err(PacketError::LengthMismatch);
                }
                let payload = r.take(len)?;
                if kind == PacketKind::VideoFragment {
                    MediaPacket::VideoFragment { sender_id, header, payload }
                } else {
                    MediaPacket::ScreenFragment { sender_id, header, payload }
                }
            }
            PacketKind::Audio => {
                let header =
                    AudioHeader { seq: r.u32()?, capture_ts_us: r.u64()?, sample_rate: r.u32()?, channels: r.u8()? };
                let len = r.u16()? as usize;
                if header.channels == 0 || header.sample_rate == 0 {
                    return Err(PacketError::InvalidField);
                }
                if len != r.rest() || len < SEAL_OVERHEAD {
                    return Err(PacketError::LengthMismatch);
                }
                MediaPacket::Audio { sender_id, header, sealed: r.take(len)? }
            }
            PacketKind::RttRequest | PacketKind::RttReply => {
                let echo = RttEcho { echo_id: r.u32()?, sent_ts_us: r.u64()? };
                if kind == PacketKind::RttRequest {
                    MediaPacket::RttRequest { sender_id, echo }
                } else {
                    MediaPacket::RttReply { sender_id, echo }
                }
            }
            PacketKind::ReceiverReport => {
                let source_id = r.u32()?;
                let media = MediaKind::from_u8(r.u8()?).ok_or(PacketError::InvalidField)?;
                let report = ReceiverReport {
                    source_id,
                    media,
                    loss_permille: r.u16()?,
                    highest_seq: r.u32()?,
                    cumulative_lost: r.u32()?,
                    jitter_us: r.u32()?,
                    loss_runs: [r.u16()?, r.u16()?, r.u16()?, r.u16()?],
                };
                if report.loss_permille > 1000 {
                    return Err(PacketError::InvalidField);
                }
                MediaPacket::ReceiverReport { sender_id, report }
            }
            PacketKind::Keepalive => MediaPacket::Keepalive { sender_id },
            PacketKind::RefreshRequest => {
                let source_id = r.u32()?;
                let count = usize::from(r.u8()?);
                let mut runs = [TileRun { first: 0, count: 0 }; MAX_REFRESH_RANGES];
                for run in runs.iter_mut().take(count.min(MAX_REFRESH_RANGES)) {
                    *run = TileRun { first: r.u16()?, count: r.u16()? };
                }
                let ranges = RefreshRanges::new(runs.get(..count).ok_or(PacketError::InvalidField)?)
                    .ok_or(PacketError::InvalidField)?;
                MediaPacket::RefreshRequest { sender_id, source_id, ranges }
            }
        };
        if r.rest() != 0 {
            return Err(PacketError::LengthMismatch);
        }
        Ok(packet)
    }

    pub fn kind(&self) -> PacketKind {
        match self {
            MediaPacket::VideoFragment { .. } => PacketKind::VideoFragment,
            MediaPacket::Audio { .. } => PacketKind::Audio,
            MediaPacket::RttRequest { .. } => PacketKind::RttRequest,
            MediaPacket::RttReply { .. } => PacketKind::RttReply,
            MediaPacket::ReceiverReport { .. } => PacketKind::ReceiverReport,
            MediaPacket::Keepalive { .. } => PacketKind::Keepalive,
            MediaPacket::ScreenFragment { .. } => PacketKind::ScreenFragment,
            MediaPacket::RefreshRequest { .. } => PacketKind::RefreshRequest,
        }
    }

    pub fn sender_id(&self) -> u32 {
        match *self {
            MediaPacket::VideoFragment { sender_id, .. }
            | MediaPacket::Audio { sender_id, .. }
            | MediaPacket::RttRequest { sender_id, .. }
            | MediaPacket::RttReply { sender_id, .. }
            | MediaPacket::ReceiverReport { sender_id, .. }
            | MediaPacket::Keepalive { sender_id, .. }
            | MediaPacket::ScreenFragment { sender_id, .. }
            | MediaPacket::RefreshRequest { sender_id, .. } => sender_id,
        }
    }

    /// Number of bytes [`encode_into`](Self::encode_into) writes.
    pub fn encoded_len(&self) -> usize {
        COMMON_HEADER_LEN
            + match self {
                MediaPacket::VideoFragment { payload, .. } | MediaPacket::ScreenFragment { payload, .. } => {
                    VIDEO_HEADER_LEN - COMMON_HEADER_LEN + payload.len()
                }
                MediaPacket::Audio { sealed, .. } => AUDIO_HEADER_LEN - COMMON_HEADER_LEN + sealed.len(),
                MediaPacket::RttRequest { .. } | MediaPacket::RttReply { .. } => 12,
                MediaPacket::ReceiverReport { .. } => 27,
                MediaPacket::Keepalive { .. } => 0,
                MediaPacket::RefreshRequest { ranges, .. } => 5 + 4 * ranges.as_slice().len(),
            }
    }

    /// Checks the fields [`decode`](Self::decode) would refuse, so that nothing is ever
    /// sent that the peer is bound to drop.
    fn validate(&self) -> Result<(), PacketError> {
        if self.encoded_len() > MAX_PACKET_LEN {
            return Err(PacketError::TooLong);
        }
        let valid = match self {
            MediaPacket::VideoFragment { header: h, payload, .. }
            | MediaPacket::ScreenFragment { header: h, payload, .. } => {
                payload.len() <= usize::from(u16::MAX) && h.frag_count != 0 && h.frag_index < h.frag_count
            }
            MediaPacket::Audio { header: h, sealed, .. } => {
                sealed.len() <= usize::from(u16::MAX)
                    && sealed.len() >= SEAL_OVERHEAD
                    && h.channels != 0
                    && h.sample_rate != 0
            }
            MediaPacket::ReceiverReport { report, .. } => report.loss_permille <= 1000,
            MediaPacket::RttRequest { .. }
            | MediaPacket::RttReply { .. }
            | MediaPacket::Keepalive { .. }
            | MediaPacket::RefreshRequest { .. } => true,
        };
        if valid {
            Ok(())
        } else {
            Err(PacketError::InvalidField)
        }
    }

    /// Writes the packet at the start of `out` and returns its length. Fails (writing
    /// nothing) if `out` is too small, the packet would exceed [`MAX_PACKET_LEN`], or a
    /// field is one [`decode`](Self::decode) refuses (`frag_index >= frag_count`, zero audio
    /// channels or sample rate, audio not whole samples, loss over 1000‰).
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, PacketError> {
        let len = self.encoded_len();
        if out.len() < len {
            return Err(PacketError::BufferTooSmall);
        }
        self.validate()?;
        let mut w = Writer { buf: out, pos: 0 };
        w.put(&MAGIC);
        w.put(&[MEDIA_VERSION, self.kind() as u8]);
        w.put(&self.sender_id().to_be_bytes());
        match self {
            MediaPacket::VideoFragment { header: h, payload, .. }
            | MediaPacket::ScreenFragment { header: h, payload, .. } => {
                // Checked by `validate`.
                let plen = payload.len() as u16;
                w.put(&h.frame_id.to_be_bytes());
                w.put(&h.capture_ts_us.to_be_bytes());
                w.put(&h.seq.to_be_bytes());
                w.put(&h.width.to_be_bytes());
                w.put(&h.height.to_be_bytes());
                w.put(&h.frag_index.to_be_bytes());
                w.put(&h.frag_count.to_be_bytes());
                w.put(&plen.to_be_bytes());
                w.put(payload);
            }
            MediaPacket::Audio { header: h, sealed, .. } => {
                w.put(&h.seq.to_be_bytes());
                w.put(&h.capture_ts_us.to_be_bytes());
                w.put(&h.sample_rate.to_be_bytes());
                w.put(&[h.channels]);
                w.put(&(sealed.len() as u16).to_be_bytes());
                w.put(sealed);
            }
            MediaPacket::RttRequest { echo, .. } | MediaPacket::RttReply { echo, .. } => {
                w.put(&echo.echo_id.to_be_bytes());
                w.put(&echo.sent_ts_us.to_be_bytes());
            }
            MediaPacket::ReceiverReport { report: r, .. } => {
                w.put(&r.source_id.to_be_bytes());
                w.put(&[r.media as u8]);
                w.put(&r.loss_permille.to_be_bytes());
                w.put(&r.highest_seq.to_be_bytes());
                w.put(&r.cumulative_lost.to_be_bytes());
                w.put(&r.jitter_us.to_be_bytes());
                for run in r.loss_runs {
                    w.put(&run.to_be_bytes());
                }
            }
            MediaPacket::Keepalive { .. } => {}
            MediaPacket::RefreshRequest { source_id, ranges, .. } => {
                w.put(&source_id.to_be_bytes());
                w.put(&[ranges.len]);
                for run in ranges.as_slice() {
                    w.put(&run.first.to_be_bytes());
                    w.put(&run.count.to_be_bytes());
                }
            }
        }
        debug_assert_eq!(w.pos, len);
        Ok(len)
    }

    /// Encodes into a new `Vec` (convenient in tests and off the hot path).
    pub fn to_vec(&self) -> Result<Vec<u8>, PacketError> {
        let mut v = vec![0u8; self.encoded_len()];
        self.encode_into(&mut v)?;
        Ok(v)
    }
}

impl AudioHeader {
    /// The associated data an audio packet's body is sealed with: kind (2), sender id, then
    /// this header's fields as on the wire (22 bytes). The relay reads them but cannot change
    /// them unseen.
    pub fn aad(&self, sender_id: u32) -> [u8; AUDIO_AAD_LEN] {
        let mut a = [0u8; AUDIO_AAD_LEN];
        a[0] = PacketKind::Audio as u8;
        a[1..5].copy_from_slice(&sender_id.to_be_bytes());
        a[5..9].copy_from_slice(&self.seq.to_be_bytes());
        a[9..17].copy_from_slice(&self.capture_ts_us.to_be_bytes());
        a[17..21].copy_from_slice(&self.sample_rate.to_be_bytes());
        a[21] = self.channels;
        a
    }
}

/// Most redundant copies an audio packet carries: the frames `seq - 1` to `seq - 4`.
pub const MAX_AUDIO_COPIES: usize = 4;

/// How a redundant copy of an earlier audio frame is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum CopyEncoding {
    /// G.711 µ-law ([`crate::mulaw`]): one byte per sample.
    MuLaw = 1,
    /// IMA ADPCM ([`crate::adpcm`]) at the frame's rate: a 3-byte state, then 4 bits per sample.
    Adpcm = 2,
    /// IMA ADPCM of the frame at half its rate (every pair of samples averaged): a 3-byte state,
    /// then 4 bits per pair of samples. Played back interpolated to the full rate.
    AdpcmHalfRate = 3,
}

impl CopyEncoding {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::MuLaw),
            2 => Some(Self::Adpcm),
            3 => Some(Self::AdpcmHalfRate),
            _ => None,
        }
    }

    /// Bytes of a copy of a frame of `samples` samples.
    pub fn copy_len(self, samples: usize) -> usize {
        match self {
            Self::MuLaw => samples,
            Self::Adpcm => crate::adpcm::encoded_len(samples),
            Self::AdpcmHalfRate => crate::adpcm::encoded_len(samples.div_ceil(2)),
        }
    }
}

/// One redundant copy of an earlier frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioCopy<'a> {
    pub encoding: CopyEncoding,
    pub bytes: &'a [u8],
}

/// What an audio packet carries, before sealing: 20 ms of signed 16-bit big-endian PCM
/// (`pcm_len (2) ‖ pcm`) and up to [`MAX_AUDIO_COPIES`] redundant copies of the frames before
/// it, newest first (`encoding (1) ‖ len (2) ‖ bytes` each): copy `i` is frame `seq - 1 - i`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioPayload<'a> {
    pub pcm: &'a [u8],
    /// The copies, filled from the front: `copies[i]` is frame `seq - 1 - i`. Sent while
    /// receivers report audio loss, as many as its bursts call for
    /// ([`crate::redundancy::AudioRedundancy`]).
    pub copies: [Option<AudioCopy<'a>>; MAX_AUDIO_COPIES],
}

impl<'a> AudioPayload<'a> {
    /// A payload without copies.
    pub fn plain(pcm: &'a [u8]) -> Self {
        Self { pcm, copies: [None; MAX_AUDIO_COPIES] }
    }

    /// How many copies it carries.
    pub fn depth(&self) -> usize {
        self.copies.iter().take_while(|c| c.is_some()).count()
    }

    /// Reads an opened body of `channels`-channel audio. Never panics.
    pub fn decode(buf: &'a [u8], channels: u8) -> Result<Self, PacketError> {
        let mut r = Reader { buf, pos: 0 };
        let len = r.u16()? as usize;
        if channels == 0 {
            return Err(PacketError::InvalidField);
        }
        if len > r.rest() || !len.is_multiple_of(2 * usize::from(channels)) {
            return Err(PacketError::LengthMismatch);
        }
        let pcm = r.take(len)?;
        let samples = len / 2;
        let mut copies = [None; MAX_AUDIO_COPIES];
        for slot in &mut copies {
            if r.rest() == 0 {
                break;
            }
            if r.rest() < AUDIO_REDUNDANCY_HEADER_LEN {
                return Err(PacketError::LengthMismatch);
            }
            let encoding = CopyEncoding::from_u8(r.u8()?).ok_or(PacketError::InvalidField)?;
            let copy_len = r.u16()? as usize;
            if copy_len != encoding.copy_len(samples) || copy_len > r.rest() {
                return Err(PacketError::LengthMismatch);
            }
            *slot = Some(AudioCopy { encoding, bytes: r.take(copy_len)? });
        }
        if r.rest() != 0 {
            // More than MAX_AUDIO_COPIES copies.
            return Err(PacketError::LengthMismatch);
        }
        Ok(Self { pcm, copies })
    }

    /// Bytes [`encode_into`](Self::encode_into) writes.
    pub fn encoded_len(&self) -> usize {
        2 + self.pcm.len()
            + self.copies.iter().flatten().map(|c| AUDIO_REDUNDANCY_HEADER_LEN + c.bytes.len()).sum::<usize>()
    }

    /// Appends the body to `out` (cleared first). Fails if the PCM is too long for its
    /// length field or not whole samples, a copy's length does not match its encoding, or a
    /// copy follows an empty slot.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), PacketError> {
        let len = u16::try_from(self.pcm.len()).map_err(|_| PacketError::TooLong)?;
        let samples = self.pcm.len() / 2;
        let copies_valid = self.copies.iter().flatten().all(|c| c.bytes.len() == c.encoding.copy_len(samples))
            && self.copies.iter().flatten().count() == self.depth();
        if !self.pcm.len().is_multiple_of(2) || !copies_valid {
            return Err(PacketError::InvalidField);
        }
        out.clear();
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(self.pcm);
        for copy in self.copies.iter().flatten() {
            out.push(copy.encoding as u8);
            out.extend_from_slice(&(copy.bytes.len() as u16).to_be_bytes());
            out.extend_from_slice(copy.bytes);
        }
        Ok(())
    }
}

/// Number of fragments a JPEG of `len` bytes is split into.
pub fn fragment_count(len: usize) -> usize {
    len.div_ceil(MAX_VIDEO_FRAGMENT_PAYLOAD).max(1)
}

/// What every fragment of one video frame shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoFrameMeta {
    pub stream: VideoStream,
    pub sender_id: u32,
    pub frame_id: u32,
    pub capture_ts_us: u64,
    pub width: u16,
    pub height: u16,
}

impl VideoFrameMeta {
    /// The associated data a frame is sealed with: kind (1 camera, 7 screen), sender id,
    /// frame id, capture time, width, height (21 bytes): the fields every fragment repeats and
    /// the relay never rewrites (it does rewrite the sequence number). The kind keeps a camera
    /// frame from being passed off as a screen update, and back.
    pub fn aad(&self) -> [u8; VIDEO_AAD_LEN] {
        let mut a = [0u8; VIDEO_AAD_LEN];
        a[0] = self.stream.packet_kind() as u8;
        a[1..5].copy_from_slice(&self.sender_id.to_be_bytes());
        a[5..9].copy_from_slice(&self.frame_id.to_be_bytes());
        a[9..17].copy_from_slice(&self.capture_ts_us.to_be_bytes());
        a[17..19].copy_from_slice(&self.width.to_be_bytes());
        a[19..21].copy_from_slice(&self.height.to_be_bytes());
        a
    }
}

/// Splits one sealed frame into video fragments, each fitting [`MAX_DATAGRAM_LEN`], writing
/// each datagram, sealed by `hop`, into `out` (reused between calls) and handing it to `emit`.
/// Sequence numbers start at `*next_seq`, which is advanced. Returns the number of fragments,
/// or an error if the frame is too large for 65535 fragments.
pub fn fragment_frame(
    meta: VideoFrameMeta,
    jpeg: &[u8],
    next_seq: &mut u32,
    hop: &HopSender,
    out: &mut [u8; MAX_DATAGRAM_LEN],
    mut emit: impl FnMut(&[u8]),
) -> Result<usize, PacketError> {
    let VideoFrameMeta { stream, sender_id, frame_id, capture_ts_us, width, height } = meta;
    let count = fragment_count(jpeg.len());
    let frag_count = u16::try_from(count).map_err(|_| PacketError::InvalidField)?;
    let mut chunks = jpeg.chunks(MAX_VIDEO_FRAGMENT_PAYLOAD);
    for frag_index in 0..frag_count {
        let payload = chunks.next().unwrap_or(&[]);
        let header = VideoHeader { frame_id, capture_ts_us, seq: *next_seq, width, height, frag_index, frag_count };
        let packet = match stream {
            VideoStream::Camera => MediaPacket::VideoFragment { sender_id, header, payload },
            VideoStream::Screen => MediaPacket::ScreenFragment { sender_id, header, payload },
        };
        let len = hop.encode(&packet, out)?;
        *next_seq = next_seq.wrapping_add(1);
        emit(&out[..len]);
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_header_layout_is_big_endian() {
        let payload = [9u8; 3];
        let p = MediaPacket::VideoFragment {
            sender_id: 0x01020304,
            header: VideoHeader {
                frame_id: 5,
                capture_ts_us: 6,
                seq: 7,
                width: 854,
                height: 480,
                frag_index: 1,
                frag_count: 2,
            },
            payload: &payload,
        };
        let bytes = p.to_vec().unwrap();
        assert_eq!(&bytes[0..8], &[b'P', b'R', 5, 1, 1, 2, 3, 4]);
        assert_eq!(&bytes[8..12], &5u32.to_be_bytes());
        assert_eq!(&bytes[24..26], &854u16.to_be_bytes());
        assert_eq!(bytes.len(), VIDEO_HEADER_LEN + 3);
        assert_eq!(MediaPacket::decode(&bytes).unwrap(), p);
    }

    #[test]
    fn one_datagram_limit_for_encoder_and_decoder() {
        let header =
            VideoHeader { frame_id: 1, capture_ts_us: 2, seq: 3, width: 4, height: 4, frag_index: 0, frag_count: 1 };
        let full = [7u8; MAX_VIDEO_FRAGMENT_PAYLOAD];
        let largest = MediaPacket::VideoFragment { sender_id: 1, header, payload: &full }.to_vec().unwrap();
        assert_eq!(largest.len(), MAX_PACKET_LEN);
        assert!(MediaPacket::decode(&largest).is_ok());
        let hop = test_hop();
        let sealed = hop.to_vec(&MediaPacket::decode(&largest).unwrap()).unwrap();
        assert_eq!(sealed.len(), MAX_DATAGRAM_LEN);
        assert!(peek_header(&sealed).is_ok());
        let over = [7u8; MAX_VIDEO_FRAGMENT_PAYLOAD + 1];
        let too_big = MediaPacket::VideoFragment { sender_id: 1, header, payload: &over };
        let mut out = vec![0xEE; too_big.encoded_len()];
        assert_eq!(too_big.encode_into(&mut out), Err(PacketError::TooLong));
        assert!(out.iter().all(|&b| b == 0xEE), "a refused packet writes nothing");
        // The same bytes written by hand are refused by the receiver before anything else.
        let mut packet = largest.clone();
        packet.push(0);
        assert_eq!(MediaPacket::decode(&packet), Err(PacketError::TooLong));
        let mut datagram = sealed.clone();
        datagram.push(0);
        assert_eq!(peek_header(&datagram), Err(PacketError::TooLong));
        assert_eq!(peek_header(&sealed[..COMMON_HEADER_LEN + HOP_TRAILER_LEN - 1]), Err(PacketError::TooShort));
    }

    #[test]
    fn fragments_fit_a_datagram_and_cover_the_frame() {
        let jpeg: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        let mut seq = u32::MAX - 1;
        let mut out = [0u8; MAX_DATAGRAM_LEN];
        let mut rebuilt = Vec::new();
        let mut n = 0;
        let meta = VideoFrameMeta {
            stream: VideoStream::Camera,
            sender_id: 3,
            frame_id: 9,
            capture_ts_us: 1,
            width: 854,
            height: 480,
        };
        let hop = test_hop();
        let mut receiver = crate::hop::HopReceiver::new(test_secret().to_relay());
        let count = fragment_frame(meta, &jpeg, &mut seq, &hop, &mut out, |d| {
            assert!(d.len() <= MAX_DATAGRAM_LEN);
            match MediaPacket::decode(receiver.open(d).unwrap()).unwrap() {
                MediaPacket::VideoFragment { header, payload, .. } => {
                    assert_eq!(header.frag_index as usize, n);
                    rebuilt.extend_from_slice(payload);
                }
                other => panic!("unexpected {other:?}"),
            }
            n += 1;
        })
        .unwrap();
        assert_eq!(count, fragment_count(jpeg.len()));
        assert_eq!(n, count);
        assert_eq!(rebuilt, jpeg);
        assert_eq!(seq, (u32::MAX - 1).wrapping_add(count as u32), "seq wraps");
    }

    #[test]
    fn rejects_bad_lengths_and_fields() {
        let header = AudioHeader { seq: 1, capture_ts_us: 2, sample_rate: 16000, channels: 1 };
        let sealed = [0u8; 2 + 640 + SEAL_OVERHEAD];
        let audio = MediaPacket::Audio { sender_id: 1, header, sealed: &sealed };
        let mut bytes = audio.to_vec().unwrap();
        assert_eq!(MediaPacket::decode(&bytes), Ok(audio));
        assert_eq!(MediaPacket::decode(&bytes[..bytes.len() - 1]), Err(PacketError::LengthMismatch));
        bytes.push(0);
        assert_eq!(MediaPacket::decode(&bytes), Err(PacketError::LengthMismatch));
        let too_short = MediaPacket::Audio { sender_id: 1, header, sealed: &sealed[..SEAL_OVERHEAD - 1] };
        assert_eq!(too_short.to_vec(), Err(PacketError::InvalidField), "a body shorter than its seal");
        assert_eq!(MediaPacket::decode(b"PR"), Err(PacketError::TooShort));
        assert_eq!(MediaPacket::decode(b"XX\x01\x01\0\0\0\0"), Err(PacketError::BadMagic));
        assert_eq!(MediaPacket::decode(b"PR\x04\x01\0\0\0\0"), Err(PacketError::UnsupportedVersion(4)));
        assert_eq!(MediaPacket::decode(b"PR\x05\x09\0\0\0\0"), Err(PacketError::UnknownKind(9)));
        assert_eq!(MediaPacket::decode(b"PR\x05\x06\0\0\0\x07"), Ok(MediaPacket::Keepalive { sender_id: 7 }));
        assert_eq!(MediaPacket::decode(b"PR\x05\x06\0\0\0\x07\0"), Err(PacketError::LengthMismatch));
    }

    #[test]
    fn refresh_requests_carry_one_to_thirty_two_non_empty_ranges() {
        let runs = [TileRun { first: 3, count: 2 }, TileRun { first: 100, count: 1 }];
        let p = MediaPacket::RefreshRequest { sender_id: 8, source_id: 7, ranges: RefreshRanges::new(&runs).unwrap() };
        let bytes = p.to_vec().unwrap();
        assert_eq!(&bytes[8..], &[0, 0, 0, 7, 2, 0, 3, 0, 2, 0, 100, 0, 1]);
        assert_eq!(MediaPacket::decode(&bytes), Ok(p));
        let with_count = |count: u8, body: &[u8]| {
            let mut b = bytes[..12].to_vec();
            b.push(count);
            b.extend_from_slice(body);
            MediaPacket::decode(&b).map(|_| ())
        };
        assert_eq!(with_count(0, &[]), Err(PacketError::InvalidField), "no range");
        assert_eq!(with_count(1, &[0, 1, 0, 0]), Err(PacketError::InvalidField), "an empty range");
        let too_many = MAX_REFRESH_RANGES as u8 + 1;
        assert_eq!(with_count(too_many, &[0, 1, 0, 1].repeat(usize::from(too_many))), Err(PacketError::InvalidField));
        assert_eq!(with_count(2, &[0, 1, 0, 1]), Err(PacketError::TooShort));
        assert_eq!(with_count(1, &[0, 1, 0, 1, 0]), Err(PacketError::LengthMismatch));
        assert!(RefreshRanges::new(&[]).is_none());
        assert!(RefreshRanges::new(&[TileRun { first: 0, count: 1 }; MAX_REFRESH_RANGES + 1]).is_none());
    }

    #[test]
    fn an_audio_payload_is_whole_samples_and_its_copies_cover_earlier_frames() {
        let mut body = Vec::new();
        let plain = AudioPayload::plain(&[0u8; 640]);
        plain.encode_into(&mut body).unwrap();
        assert_eq!(body.len(), plain.encoded_len());
        assert_eq!(AudioPayload::decode(&body, 1), Ok(plain));
        assert_eq!(AudioPayload::decode(&body, 3), Err(PacketError::LengthMismatch), "not whole samples");
        assert_eq!(AudioPayload::decode(&body[..body.len() - 1], 1), Err(PacketError::LengthMismatch));
        let plain_len = body.len();

        let mulaw = AudioCopy { encoding: CopyEncoding::MuLaw, bytes: &[0x55; 320] };
        let mut one = plain;
        one.copies[0] = Some(mulaw);
        let mut red = Vec::new();
        one.encode_into(&mut red).unwrap();
        assert_eq!(red.len(), plain_len + AUDIO_REDUNDANCY_HEADER_LEN + 320);
        assert_eq!(AudioPayload::decode(&red, 1), Ok(one));
        assert_eq!(AudioPayload::decode(&red, 1).unwrap().depth(), 1);
        red[plain_len] = 9;
        assert_eq!(AudioPayload::decode(&red, 1), Err(PacketError::InvalidField), "unknown encoding");
        red[plain_len] = CopyEncoding::MuLaw as u8;
        red.pop();
        assert_eq!(AudioPayload::decode(&red, 1), Err(PacketError::LengthMismatch), "truncated copy");

        // Four copies, the older ones ADPCM: 163 bytes at the full rate, 83 at half of it.
        let (full, half) = ([0x11u8; 163], [0x00u8; 83]);
        let deep = AudioPayload {
            pcm: &[0u8; 640],
            copies: [
                Some(AudioCopy { encoding: CopyEncoding::Adpcm, bytes: &full }),
                Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
                Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
                Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
            ],
        };
        deep.encode_into(&mut red).unwrap();
        assert_eq!(red.len(), plain_len + 4 * AUDIO_REDUNDANCY_HEADER_LEN + 163 + 3 * 83);
        assert_eq!(AudioPayload::decode(&red, 1), Ok(deep));
        assert_eq!(deep.depth(), 4);
        let mut fifth = red.clone();
        fifth.extend_from_slice(&[CopyEncoding::AdpcmHalfRate as u8, 0, 83]);
        fifth.extend_from_slice(&half);
        assert_eq!(AudioPayload::decode(&fifth, 1), Err(PacketError::LengthMismatch), "at most four copies");

        let mut short = plain;
        short.copies[0] = Some(AudioCopy { encoding: CopyEncoding::MuLaw, bytes: &[0x55; 319] });
        assert_eq!(short.encode_into(&mut red), Err(PacketError::InvalidField), "a copy must cover the frame");
        let mut gap = plain;
        gap.copies[1] = Some(mulaw);
        assert_eq!(gap.encode_into(&mut red), Err(PacketError::InvalidField), "copies fill from the front");
    }

    #[test]
    fn four_copies_fit_a_datagram_beside_the_frame() {
        let (full, half) = ([0u8; 163], [0u8; 83]);
        let deep = AudioPayload {
            pcm: &[0u8; 640],
            copies: [
                Some(AudioCopy { encoding: CopyEncoding::Adpcm, bytes: &full }),
                Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
                Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
                Some(AudioCopy { encoding: CopyEncoding::AdpcmHalfRate, bytes: &half }),
            ],
        };
        let sealed = deep.encoded_len() + SEAL_OVERHEAD;
        assert!(AUDIO_HEADER_LEN + sealed <= MAX_PACKET_LEN, "{} bytes", AUDIO_HEADER_LEN + sealed);
    }

    fn test_secret() -> crate::hop::HopSecret {
        crate::hop::HopSecret::new([0x42; crate::hop::HOP_SECRET_LEN])
    }

    fn test_hop() -> HopSender {
        HopSender::new(test_secret().to_relay())
    }
}
