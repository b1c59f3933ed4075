//! Per-receiver video frame thinning, sans-IO.
//!
//! MJPEG frames are independent, so a receiver whose downlink is congested can be sent only
//! every k-th frame and still show a correct (if choppier) picture. One [`Thinner`] exists per
//! (receiver, video source) pair and decides, per fragment, whether this receiver gets it:
//!
//! - The decision is made per `frame_id`, so every fragment of a selected frame is forwarded
//!   and no fragment of a skipped frame is: the receiver never gets a partial frame because of
//!   thinning. The decisions for the two newest frames are remembered, so fragments of two
//!   frames interleaved on the wire still get their frame's decision even when `k` changed in
//!   between.
//! - `k` follows the receiver's own receiver reports about that source: it doubles (up to
//!   [`ThinningConfig::max_k`]) on every report whose loss is above
//!   [`ThinningConfig::congested_permille`], and steps down by one on every report below
//!   [`ThinningConfig::recovered_permille`]; in between it holds (hysteresis).
//! - Withheld packets would look like loss to the receiver, which would keep `k` high for
//!   ever. So the relay rewrites the video sequence number of every packet it forwards to a
//!   thinned receiver to `seq - withheld`: the receiver sees a contiguous sequence and its
//!   reports measure only real network loss.

/// Thresholds of the thinning controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThinningConfig {
    /// Reported loss (‰) above which a receiver counts as congested. Default 100 (10 %).
    pub congested_permille: u16,
    /// Reported loss (‰) below which a receiver counts as recovered. Default 30 (3 %).
    pub recovered_permille: u16,
    /// Largest k: the receiver still gets one frame in `max_k`. Default 8.
    pub max_k: u32,
}

impl Default for ThinningConfig {
    fn default() -> Self {
        Self { congested_permille: 100, recovered_permille: 30, max_k: 8 }
    }
}

/// Thinning state of one receiver for one video source.
#[derive(Debug, Clone)]
pub struct Thinner {
    config: ThinningConfig,
    k: u32,
    /// Decision for the newest frame seen: (frame_id, forwarded?).
    current: Option<(u32, bool)>,
    /// Decision for the frame before it.
    previous: Option<(u32, bool)>,
    /// Video packets of this source withheld from this receiver so far.
    withheld: u32,
}

/// True if `a` is newer than `b` in wrapping u32 arithmetic.
fn is_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < u32::MAX / 2
}

impl Thinner {
    pub fn new(config: ThinningConfig) -> Self {
        Self { config, k: 1, current: None, previous: None, withheld: 0 }
    }

    /// The receiver gets one frame in `k`.
    pub fn k(&self) -> u32 {
        self.k
    }

    /// Video packets withheld from this receiver so far.
    pub fn withheld(&self) -> u32 {
        self.withheld
    }

    /// Applies one receiver report's loss. Returns true if `k` changed.
    pub fn on_report(&mut self, loss_permille: u16) -> bool {
        let before = self.k;
        let max_k = self.config.max_k.max(1);
        if loss_permille > self.config.congested_permille {
            self.k = self.k.saturating_mul(2).min(max_k);
        } else if loss_permille < self.config.recovered_permille {
            self.k = self.k.saturating_sub(1).max(1);
        }
        self.k != before
    }

    /// Decides whether the fragment of `frame_id` goes to this receiver. Call once per
    /// fragment; a withheld fragment is counted for the sequence-number rewrite.
    pub fn admit(&mut self, frame_id: u32) -> bool {
        let forward = self.decide(frame_id);
        if !forward {
            self.withheld = self.withheld.wrapping_add(1);
        }
        forward
    }

    /// The sequence number a forwarded packet carries for this receiver.
    pub fn rewrite_seq(&self, seq: u32) -> u32 {
        seq.wrapping_sub(self.withheld)
    }

    fn decide(&mut self, frame_id: u32) -> bool {
        for (id, forward) in [self.current, self.previous].into_iter().flatten() {
            if id == frame_id {
                return forward;
            }
        }
        let forward = self.k <= 1 || frame_id.is_multiple_of(self.k);
        match self.current {
            Some((newest, _)) if !is_newer(frame_id, newest) => {}
            _ => {
                self.previous = self.current;
                self.current = Some((frame_id, forward));
            }
        }
        forward
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thinner() -> Thinner {
        Thinner::new(ThinningConfig::default())
    }

    #[test]
    fn k_doubles_when_congested_and_steps_down_when_recovered() {
        let mut t = thinner();
        assert_eq!(t.k(), 1);
        assert!(t.on_report(300));
        assert_eq!(t.k(), 2);
        t.on_report(300);
        t.on_report(300);
        assert_eq!(t.k(), 8);
        assert!(!t.on_report(1000), "capped at max_k");
        assert_eq!(t.k(), 8);
        assert!(!t.on_report(50), "between thresholds: hold");
        assert_eq!(t.k(), 8);
        t.on_report(0);
        assert_eq!(t.k(), 7);
        for _ in 0..10 {
            t.on_report(0);
        }
        assert_eq!(t.k(), 1);
    }

    #[test]
    fn unthinned_receiver_gets_everything_unchanged() {
        let mut t = thinner();
        for frame in 0..100u32 {
            for _ in 0..3 {
                assert!(t.admit(frame));
            }
        }
        assert_eq!(t.withheld(), 0);
        assert_eq!(t.rewrite_seq(1234), 1234);
    }

    #[test]
    fn thinned_frames_are_whole_and_seq_stays_contiguous() {
        let mut t = thinner();
        t.on_report(500);
        t.on_report(500);
        assert_eq!(t.k(), 4);
        let mut seq = 0u32;
        let mut out_seqs = Vec::new();
        let mut frames = Vec::new();
        for frame in 0..40u32 {
            let mut got = 0;
            for _ in 0..5 {
                if t.admit(frame) {
                    got += 1;
                    out_seqs.push(t.rewrite_seq(seq));
                }
                seq += 1;
            }
            assert!(got == 0 || got == 5, "frame {frame}: {got} of 5 fragments");
            if got == 5 {
                frames.push(frame);
            }
        }
        assert_eq!(frames.len(), 10);
        assert!(out_seqs.windows(2).all(|w| w[1] == w[0] + 1), "contiguous: {out_seqs:?}");
    }

    #[test]
    fn k_change_mid_frame_does_not_split_the_frame() {
        let mut t = thinner();
        // Frame 3 starts while k = 1: forwarded.
        assert!(t.admit(3));
        t.on_report(900); // k = 2: frame 3 would now be skipped, but it already started.
        assert!(t.admit(3));
        // Interleaved fragments of frames 4 and 3.
        assert!(t.admit(4));
        assert!(t.admit(3), "previous frame keeps its decision");
        assert!(!t.admit(5));
        assert!(t.admit(4));
        assert!(!t.admit(5));
    }

    #[test]
    fn frame_ids_wrap() {
        let mut t = thinner();
        t.on_report(900);
        let start = u32::MAX - 3;
        let mut forwarded = 0;
        for i in 0..8u32 {
            let frame = start.wrapping_add(i);
            if t.admit(frame) {
                forwarded += 1;
                assert!(t.admit(frame));
            } else {
                assert!(!t.admit(frame));
            }
        }
        assert_eq!(forwarded, 4);
        assert!(is_newer(0, u32::MAX));
        assert!(!is_newer(u32::MAX, 0));
    }
}
