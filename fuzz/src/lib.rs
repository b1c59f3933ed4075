//! Bodies of Parlor's fuzz targets, one per decoder of untrusted input.
//!
//! They are plain functions so they compile on stable Rust: `fuzz_targets/` only wraps each in
//! libFuzzer's `fuzz_target!`, and the tests in `tests/` run them over seed inputs. The
//! invariants themselves are shared with the protocol's property tests
//! (`protocol/tests/common/checks.rs`), so the fuzzer and proptest check the same contract.

#[path = "../../protocol/tests/common/checks.rs"]
mod checks;

use protocol::file::MAX_FILE_FRAME_LEN;
use protocol::framing::DEFAULT_MAX_FRAME_LEN;
use protocol::FrameCodec;

/// Length-prefix framing: `FrameCodec::decode`, `decode_message` and `decode_eof` on a stream.
///
/// The first byte picks the frame limit (the control connection's, the file connection's, or
/// a tiny one so that over-long prefixes are common) and the second the read size, so the
/// fuzzer explores how frames split across TCP reads.
pub fn frame_codec(data: &[u8]) {
    let (Some(&limit), Some(&chunk)) = (data.first(), data.get(1)) else {
        return;
    };
    let max = match limit % 4 {
        0 => DEFAULT_MAX_FRAME_LEN,
        1 => MAX_FILE_FRAME_LEN,
        _ => usize::from(limit / 4),
    };
    let chunk = usize::from(chunk).max(1);
    checks::frame_codec(&FrameCodec::new(max), data.get(2..).unwrap_or_default(), chunk);
}

/// `ControlMessage::from_json` on a frame's payload.
pub fn control_json(data: &[u8]) {
    checks::control_json(data);
}

/// `MediaPacket::decode` and `peek_header` on a UDP datagram.
pub fn media_packet(data: &[u8]) {
    checks::media(data);
}

/// `ScreenSlice::decode` on a screen frame's plaintext (a sharer in the meeting can send any).
pub fn screen_slice(data: &[u8]) {
    checks::screen_slice(data);
}

/// `FileFrame::decode` on a file connection's frame payload.
pub fn file_frame(data: &[u8]) {
    checks::file_frame(data);
}
