//! Stream framing for TCP: every frame is a 4-byte big-endian payload length followed by the
//! payload.
//!
//! Decoding is check-then-parse: [`FrameCodec::decode`] first looks at the length prefix,
//! refuses a length over the limit *before* buffering or allocating for it, returns
//! `Ok(None)` while the frame is incomplete, and only then hands the complete payload on.
//! Control connections carry JSON payloads ([`crate::ControlMessage`]); file connections mix
//! JSON payloads with binary chunk payloads ([`crate::file::FileFrame`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;

/// Size of the length prefix in bytes.
pub const LENGTH_PREFIX_LEN: usize = 4;

/// Default largest payload accepted on a control connection.
pub const DEFAULT_MAX_FRAME_LEN: usize = 64 * 1024;

/// Everything that can be wrong with a frame.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrameError {
    /// The length prefix announces more than the connection allows. The stream cannot be
    /// resynchronized after this, so the connection must be closed.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    TooLong { len: usize, max: usize },
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({have} of {need} bytes)")]
    Truncated { have: usize, need: usize },
    /// The payload is not UTF-8.
    #[error("frame payload is not valid UTF-8")]
    NotUtf8,
    /// The payload is UTF-8 but not a valid message.
    #[error("frame payload is not a valid message: {0}")]
    InvalidJson(String),
    /// The payload is a binary frame that could not be decoded.
    #[error("invalid binary frame: {0}")]
    InvalidBinary(String),
    /// An I/O error from the underlying stream (only produced by the tokio codec adapter).
    #[error("i/o error: {0}")]
    Io(String),
}

impl FrameError {
    /// True if the stream can go on after this error (the bad frame was consumed whole).
    /// Over-long and truncated frames leave the stream unusable.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, FrameError::NotUtf8 | FrameError::InvalidJson(_) | FrameError::InvalidBinary(_))
    }
}

/// Length-prefix codec with a per-connection payload limit.
#[derive(Debug, Clone, Copy)]
pub struct FrameCodec {
    max_frame_len: usize,
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl FrameCodec {
    pub fn new(max_frame_len: usize) -> Self {
        Self { max_frame_len }
    }

    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Takes one complete payload off the front of `src`, or returns `Ok(None)` if `src`
    /// does not hold a whole frame yet. On `Ok(None)` it reserves room for the rest of the
    /// frame, which is bounded by the limit checked first.
    pub fn decode(&self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if src.len() < LENGTH_PREFIX_LEN {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize;
        if len > self.max_frame_len {
            return Err(FrameError::TooLong { len, max: self.max_frame_len });
        }
        let need = LENGTH_PREFIX_LEN + len;
        if src.len() < need {
            src.reserve(need - src.len());
            return Ok(None);
        }
        src.advance(LENGTH_PREFIX_LEN);
        Ok(Some(src.split_to(len).freeze()))
    }

    /// Call when the stream has ended: any bytes left are a truncated frame.
    pub fn decode_eof(&self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if src.is_empty() => Ok(None),
            None => {
                let need = if src.len() >= LENGTH_PREFIX_LEN {
                    LENGTH_PREFIX_LEN + u32::from_be_bytes([src[0], src[1], src[2], src[3]]) as usize
                } else {
                    LENGTH_PREFIX_LEN
                };
                Err(FrameError::Truncated { have: src.len(), need })
            }
        }
    }

    /// Appends one frame carrying `payload` to `dst`.
    pub fn encode(&self, payload: &[u8], dst: &mut BytesMut) -> Result<(), FrameError> {
        if payload.len() > self.max_frame_len {
            return Err(FrameError::TooLong { len: payload.len(), max: self.max_frame_len });
        }
        dst.reserve(LENGTH_PREFIX_LEN + payload.len());
        dst.put_u32(payload.len() as u32);
        dst.put_slice(payload);
        Ok(())
    }

    /// Decodes one control message. A frame that is complete but not a valid message is
    /// consumed and reported as a recoverable error, so the caller can answer with an
    /// `ERROR` and go on reading.
    pub fn decode_message(&self, src: &mut BytesMut) -> Result<Option<crate::ControlMessage>, FrameError> {
        match self.decode(src)? {
            Some(payload) => crate::ControlMessage::from_json(&payload).map(Some),
            None => Ok(None),
        }
    }

    /// Appends one control message as a frame.
    pub fn encode_message(&self, msg: &crate::ControlMessage, dst: &mut BytesMut) -> Result<(), FrameError> {
        self.encode(&msg.to_json(), dst)
    }
}

#[cfg(feature = "tokio-codec")]
mod tokio_codec {
    //! Adapters so the edges can use `tokio_util::codec::Framed` with the same limits.
    use super::*;
    use crate::ControlMessage;

    /// `Framed` codec yielding raw payloads (file connections).
    #[derive(Debug, Clone, Copy, Default)]
    pub struct RawFrames(pub FrameCodec);

    /// `Framed` codec yielding control messages. A malformed but complete frame yields
    /// `Ok(Some(Err(..)))` so the reader can reply with an error and keep going; only
    /// unrecoverable framing errors end the stream.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct ControlFrames(pub FrameCodec);

    impl From<std::io::Error> for FrameError {
        fn from(e: std::io::Error) -> Self {
            FrameError::Io(e.to_string())
        }
    }

    impl tokio_util::codec::Decoder for RawFrames {
        type Item = Bytes;
        type Error = FrameError;
        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
            self.0.decode(src)
        }
        fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
            self.0.decode_eof(src)
        }
    }

    impl tokio_util::codec::Encoder<Bytes> for RawFrames {
        type Error = FrameError;
        fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), FrameError> {
            self.0.encode(&item, dst)
        }
    }

    impl tokio_util::codec::Decoder for ControlFrames {
        type Item = Result<ControlMessage, FrameError>;
        type Error = FrameError;
        fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
            Ok(self.0.decode(src)?.map(|payload| ControlMessage::from_json(&payload)))
        }
        fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
            Ok(self.0.decode_eof(src)?.map(|payload| ControlMessage::from_json(&payload)))
        }
    }

    impl tokio_util::codec::Encoder<&ControlMessage> for ControlFrames {
        type Error = FrameError;
        fn encode(&mut self, item: &ControlMessage, dst: &mut BytesMut) -> Result<(), FrameError> {
            self.0.encode_message(item, dst)
        }
    }

    impl tokio_util::codec::Encoder<ControlMessage> for ControlFrames {
        type Error = FrameError;
        fn encode(&mut self, item: ControlMessage, dst: &mut BytesMut) -> Result<(), FrameError> {
            self.0.encode_message(&item, dst)
        }
    }
}

#[cfg(feature = "tokio-codec")]
pub use tokio_codec::{ControlFrames, RawFrames};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ControlMessage;

    #[test]
    fn decodes_a_frame_split_across_reads() {
        let codec = FrameCodec::default();
        let mut wire = BytesMut::new();
        codec.encode_message(&ControlMessage::Ping { nonce: 7 }, &mut wire).unwrap();
        let mut src = BytesMut::new();
        for (i, b) in wire.iter().enumerate() {
            src.put_u8(*b);
            let got = codec.decode_message(&mut src).unwrap();
            if i + 1 < wire.len() {
                assert!(got.is_none());
            } else {
                assert_eq!(got, Some(ControlMessage::Ping { nonce: 7 }));
            }
        }
        assert!(src.is_empty());
    }

    #[test]
    fn rejects_an_oversized_length_before_buffering_it() {
        let codec = FrameCodec::new(1024);
        let mut src = BytesMut::from(&[0xFF, 0xFF, 0xFF, 0xF0][..]);
        let before = src.capacity();
        assert_eq!(codec.decode(&mut src), Err(FrameError::TooLong { len: 0xFFFF_FFF0, max: 1024 }));
        assert_eq!(src.capacity(), before, "no allocation for the announced length");
    }

    #[test]
    fn typed_errors_for_bad_payloads_consume_the_frame() {
        let codec = FrameCodec::default();
        let mut src = BytesMut::new();
        codec.encode(&[0xff, 0xfe], &mut src).unwrap();
        codec.encode(b"{not json", &mut src).unwrap();
        codec.encode(br#"{"type":"LEAVE"}"#, &mut src).unwrap();
        assert_eq!(codec.decode_message(&mut src), Err(FrameError::NotUtf8));
        assert!(matches!(codec.decode_message(&mut src), Err(FrameError::InvalidJson(_))));
        assert_eq!(codec.decode_message(&mut src), Ok(Some(ControlMessage::Leave)));
    }

    #[test]
    fn eof_inside_a_frame_is_truncated() {
        let codec = FrameCodec::default();
        let mut src = BytesMut::from(&[0, 0, 0, 10, b'{'][..]);
        assert_eq!(codec.decode_eof(&mut src), Err(FrameError::Truncated { have: 5, need: 14 }));
        let mut empty = BytesMut::new();
        assert_eq!(codec.decode_eof(&mut empty), Ok(None));
    }

    #[test]
    fn encode_refuses_oversized_payloads() {
        let codec = FrameCodec::new(4);
        let mut dst = BytesMut::new();
        assert!(codec.encode(b"12345", &mut dst).is_err());
        assert!(dst.is_empty());
    }
}
