//! Shedding video when the relay falls behind, so audio and reports keep flowing.
//!
//! A relay with more work than its core can do falls behind: datagrams wait in its socket's
//! receive queue, every stream's delay grows, and when the queue is full the kernel drops
//! whatever arrives, audio as much as video. The media loop knows how long each datagram
//! waited (the kernel's receive timestamp). Once a video fragment has waited longer than
//! [`SHED_VIDEO_AFTER`], the relay is overloaded: the frame it belongs to is not forwarded —
//! all of its fragments, so receivers never get part of a frame — and the work it would have
//! cost (a seal and a send per receiver per fragment) goes to what is still in the queue.
//! Audio, receiver reports, RTT replies and screen updates are never shed. A frame that has
//! begun to go out is finished, since its first fragments would be wasted otherwise.
//!
//! The shed fragments count as lost in the relay's own receiver report to the sender (a second
//! of video shed whole is reported as loss, not silence): the sender's quality controller steps
//! down, which is what relieves the relay; and the relay's thinning, which subtracts that
//! upstream loss from what receivers report, does not mistake them for receivers' downlink
//! loss.
//!
//! Sans-IO: the caller passes how long the datagram waited.

use std::time::Duration;

/// A video fragment that waited this long in the relay's receive queue means the relay is
/// overloaded: its frame is shed. Well above what a relay keeping up ever shows (its p99.9 is
/// a few ms) and below a jitter buffer's depth.
pub(crate) const SHED_VIDEO_AFTER: Duration = Duration::from_millis(20);

/// Per video sender: which frame is being shed and which is going out.
#[derive(Debug, Default)]
pub(crate) struct VideoShedding {
    shed_frame: Option<u32>,
    forwarded_frame: Option<u32>,
}

impl VideoShedding {
    /// Whether the fragment of `frame_id` that waited `queued` is to be shed.
    pub fn shed(&mut self, frame_id: u32, queued: Duration) -> bool {
        if self.shed_frame == Some(frame_id) {
            return true;
        }
        if self.forwarded_frame == Some(frame_id) {
            return false;
        }
        if queued >= SHED_VIDEO_AFTER {
            self.shed_frame = Some(frame_id);
            true
        } else {
            self.forwarded_frame = Some(frame_id);
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LATE: Duration = SHED_VIDEO_AFTER;
    const ON_TIME: Duration = Duration::from_millis(1);

    #[test]
    fn a_relay_keeping_up_sheds_nothing() {
        let mut s = VideoShedding::default();
        assert!((0..100).all(|frame| (0..4).all(|_| !s.shed(frame, ON_TIME))));
    }

    #[test]
    fn a_late_first_fragment_sheds_its_whole_frame_and_the_next_frame_is_judged_afresh() {
        let mut s = VideoShedding::default();
        assert!(s.shed(7, LATE));
        assert!(s.shed(7, ON_TIME), "the rest of a shed frame goes too, even once the queue is short");
        assert!(s.shed(7, ON_TIME));
        assert!(!s.shed(8, ON_TIME), "the next frame goes out when the relay has caught up");
        assert!(s.shed(9, LATE + Duration::from_millis(5)));
    }

    #[test]
    fn a_frame_that_began_to_go_out_is_finished() {
        let mut s = VideoShedding::default();
        assert!(!s.shed(3, ON_TIME));
        assert!(!s.shed(3, LATE), "its first fragments are out: the rest would be wasted if shed");
        assert!(s.shed(4, LATE));
    }
}
