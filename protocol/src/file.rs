//! Frames of a file-transfer connection.
//!
//! A file connection is a separate TCP connection to the relay's TCP port, so a large
//! transfer never delays chat or roster messages. It uses the same length-prefixed framing
//! as the control connection ([`crate::framing`]), and each payload is one of:
//!
//! - a JSON control message (its first byte is `{`): the `FILE_UPLOAD` / `FILE_DOWNLOAD`
//!   handshake, its `…_READY` answer, `FILE_UPLOAD_COMPLETE` or `ERROR`;
//! - `DATA` (first byte 0x01): `seq` u32, `offset` u64, then the chunk's bytes;
//! - `ACK` (first byte 0x02): `seq` u32 of the chunk acknowledged, `received` u64 = bytes the
//!   receiver now holds contiguously from the start of the file.
//!
//! The sender keeps at most `cwnd` chunks unacknowledged, as [`crate::reno::Reno`] decides.

use bytes::{BufMut, Bytes, BytesMut};

use crate::{ControlMessage, FrameError};

/// Default chunk size of a file transfer.
pub const DEFAULT_CHUNK_SIZE: u32 = 16 * 1024;
/// Largest chunk a peer may announce; bounds the frame limit of file connections.
pub const MAX_CHUNK_SIZE: u32 = 256 * 1024;
/// Frame limit for file connections: the largest chunk plus its header.
pub const MAX_FILE_FRAME_LEN: usize = MAX_CHUNK_SIZE as usize + DATA_HEADER_LEN;

const DATA_TAG: u8 = 0x01;
const ACK_TAG: u8 = 0x02;
const DATA_HEADER_LEN: usize = 1 + 4 + 8;
const ACK_LEN: usize = 1 + 4 + 8;

/// One payload on a file connection.
#[derive(Debug, Clone, PartialEq)]
pub enum FileFrame {
    Control(ControlMessage),
    Data { seq: u32, offset: u64, data: Bytes },
    Ack { seq: u32, received: u64 },
}

impl FileFrame {
    /// Decodes a payload taken off the wire by [`crate::FrameCodec::decode`]. The chunk bytes
    /// of `DATA` share the payload's buffer; nothing is copied.
    pub fn decode(payload: Bytes) -> Result<Self, FrameError> {
        match payload.first() {
            Some(b'{') => ControlMessage::from_json(&payload).map(FileFrame::Control),
            Some(&DATA_TAG) => {
                if payload.len() < DATA_HEADER_LEN {
                    return Err(FrameError::InvalidBinary("DATA frame shorter than its header".into()));
                }
                let seq = u32::from_be_bytes(payload[1..5].try_into().expect("4 bytes"));
                let offset = u64::from_be_bytes(payload[5..13].try_into().expect("8 bytes"));
                Ok(FileFrame::Data { seq, offset, data: payload.slice(DATA_HEADER_LEN..) })
            }
            Some(&ACK_TAG) => {
                if payload.len() != ACK_LEN {
                    return Err(FrameError::InvalidBinary("ACK frame has the wrong length".into()));
                }
                let seq = u32::from_be_bytes(payload[1..5].try_into().expect("4 bytes"));
                let received = u64::from_be_bytes(payload[5..13].try_into().expect("8 bytes"));
                Ok(FileFrame::Ack { seq, received })
            }
            Some(other) => Err(FrameError::InvalidBinary(format!("unknown file frame tag 0x{other:02x}"))),
            None => Err(FrameError::InvalidBinary("empty frame".into())),
        }
    }

    /// Encodes the payload (without the length prefix).
    pub fn encode(&self) -> Bytes {
        match self {
            FileFrame::Control(msg) => Bytes::from(msg.to_json()),
            FileFrame::Data { seq, offset, data } => {
                let mut b = BytesMut::with_capacity(DATA_HEADER_LEN + data.len());
                b.put_u8(DATA_TAG);
                b.put_u32(*seq);
                b.put_u64(*offset);
                b.put_slice(data);
                b.freeze()
            }
            FileFrame::Ack { seq, received } => {
                let mut b = BytesMut::with_capacity(ACK_LEN);
                b.put_u8(ACK_TAG);
                b.put_u32(*seq);
                b.put_u64(*received);
                b.freeze()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_and_ack_round_trip() {
        let data = FileFrame::Data { seq: 3, offset: 1 << 40, data: Bytes::from_static(b"hello") };
        assert_eq!(FileFrame::decode(data.encode()).unwrap(), data);
        let ack = FileFrame::Ack { seq: 3, received: 99 };
        assert_eq!(FileFrame::decode(ack.encode()).unwrap(), ack);
        let ctl = FileFrame::Control(ControlMessage::FileUploadComplete { file_id: 4 });
        assert_eq!(FileFrame::decode(ctl.encode()).unwrap(), ctl);
    }

    #[test]
    fn rejects_short_and_unknown_frames() {
        assert!(FileFrame::decode(Bytes::from_static(&[DATA_TAG, 0, 0])).is_err());
        assert!(FileFrame::decode(Bytes::from_static(&[ACK_TAG, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])).is_err());
        assert!(FileFrame::decode(Bytes::from_static(&[7])).is_err());
        assert!(FileFrame::decode(Bytes::new()).is_err());
    }
}
