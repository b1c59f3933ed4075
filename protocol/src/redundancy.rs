//! How many earlier audio frames each audio packet carries, and their encoding. Sans-IO.
//!
//! Loss on Wi-Fi and congested uplinks comes in bursts. A packet carrying a copy of only the
//! previous frame rebuilds only the last frame of a burst; the rest fall to concealment. So a
//! packet carries copies of up to the [`MAX_AUDIO_COPIES`] frames before it (copy `i` is frame
//! `seq - 1 - i`), as many as the bursts the receivers report call for:
//!
//! - **Receivers report their loss runs.** Each receiver report counts the runs of 1, 2, 3 and
//!   4-or-more consecutive lost packets in its interval ([`crate::estimators::LossInterval`]).
//!   A run of `L` lost frames is rebuilt in full by a depth `k ≥ L` (the packet after the run
//!   carries all of them), and in part, its last `k` frames, by a smaller depth.
//! - **The sender picks the depth** ([`AudioRedundancy`]): the runs of every report with 1% loss
//!   or more from the last 8 s are pooled (one second holds too few losses to tell a burst from
//!   two losses that happened to meet). One copy if it would have rebuilt 85% of those lost
//!   frames; otherwise the smallest depth that would have rebuilt
//!   [`RedundancyConfig::coverage`] (90%) of them, up to 4. None once
//!   8 s pass without a lossy report (the last one comes up to a second after the loss ended,
//!   so the copies stop within 10 s of it): they cost bitrate only while loss lasts.
//! - **Encodings** ([`RedundantCopies`]): at depth 1 the previous frame goes as G.711 µ-law (320
//!   bytes, +128 kbit/s; the least distortion, for the random loss that calls for no more). At
//!   depth 2 to 4 the previous frame goes as IMA ADPCM at 16 kHz (163 bytes) and older ones as
//!   IMA ADPCM at 8 kHz (83 bytes): 166, 252, 338 and 424 bytes with their 3-byte headers, or
//!   +66, +101, +135 and +170 kbit/s, so four copies fit a datagram beside the frame itself.
//!
//! The receiver's jitter buffer holds audio long enough for a copy `k` packets later to arrive
//! before the frame's playout ([`crate::jitter::JitterBuffer::set_recovery_horizon`]).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::jitter::FRAME_SAMPLES;
use crate::media::{AudioCopy, CopyEncoding, MAX_AUDIO_COPIES};
use crate::{adpcm, mulaw};

/// Buckets of a loss-run count: runs of 1, 2, 3 and 4 or more lost packets.
pub const LOSS_RUN_BUCKETS: usize = 4;

/// Tuning of [`AudioRedundancy`].
#[derive(Debug, Clone, PartialEq)]
pub struct RedundancyConfig {
    /// Reported loss (fraction) at or above which copies are sent.
    pub loss_on: f64,
    /// How long after a report asked for a depth it stays in use.
    pub hold: Duration,
    /// Share of the reported lost frames the chosen depth would rebuild.
    pub coverage: f64,
    /// Share of the lost frames one copy must rebuild for one copy to do: scattered loss keeps
    /// the single µ-law copy, the best-sounding one, even when two losses meet now and then.
    pub single_copy_coverage: f64,
}

impl Default for RedundancyConfig {
    fn default() -> Self {
        Self { loss_on: 0.01, hold: Duration::from_secs(8), coverage: 0.9, single_copy_coverage: 0.85 }
    }
}

/// The depth that would have rebuilt `coverage` of the frames lost in `runs` (counts of runs of
/// 1, 2, 3 and 4+ lost packets; a 4+ run counts as 4, all a depth of 4 can rebuild of it). 1
/// when the report has loss but no runs.
pub fn depth_for(runs: [u16; LOSS_RUN_BUCKETS], coverage: f64) -> usize {
    (1..=MAX_AUDIO_COPIES).find(|&k| coverage_of(runs, k) >= coverage).unwrap_or(MAX_AUDIO_COPIES)
}

/// The share of the frames lost in `runs` that `depth` copies would rebuild (1 with no runs).
pub fn coverage_of(runs: [u16; LOSS_RUN_BUCKETS], depth: usize) -> f64 {
    let lost: u64 = runs.iter().enumerate().map(|(i, &n)| u64::from(n) * (i as u64 + 1)).sum();
    let rebuilt: u64 = runs.iter().enumerate().map(|(i, &n)| u64::from(n) * (i as u64 + 1).min(depth as u64)).sum();
    if lost == 0 {
        1.0
    } else {
        rebuilt as f64 / lost as f64
    }
}

/// Most lossy reports pooled (10 s of reports from a full meeting's receivers and the relay).
const MAX_POOLED_REPORTS: usize = 256;

/// Decides from receiver reports how many copies audio packets carry. Sans-IO.
#[derive(Debug, Clone)]
pub struct AudioRedundancy {
    config: RedundancyConfig,
    /// The lossy reports of the last `hold`: when each arrived, and its loss runs.
    lossy: VecDeque<(Instant, [u16; LOSS_RUN_BUCKETS])>,
}

impl AudioRedundancy {
    pub fn new(config: RedundancyConfig) -> Self {
        Self { config, lossy: VecDeque::new() }
    }

    /// A report of the fraction of our audio packets lost on the way to one receiver (or to the
    /// relay) over its last interval, and the runs they were lost in.
    pub fn on_report(&mut self, now: Instant, loss: f64, runs: [u16; LOSS_RUN_BUCKETS]) {
        if loss < self.config.loss_on {
            return;
        }
        // Reports past the hold no longer count: forget them.
        while self.lossy.front().is_some_and(|(at, _)| {
            now.saturating_duration_since(*at) >= self.config.hold || self.lossy.len() == MAX_POOLED_REPORTS
        }) {
            self.lossy.pop_front();
        }
        self.lossy.push_back((now, runs));
    }

    /// How many copies packets sent at `now` carry: 0 (none) to [`MAX_AUDIO_COPIES`].
    pub fn depth(&self, now: Instant) -> usize {
        let mut pooled = [0u16; LOSS_RUN_BUCKETS];
        let mut any = false;
        for (at, runs) in &self.lossy {
            if now.saturating_duration_since(*at) < self.config.hold {
                any = true;
                for (p, r) in pooled.iter_mut().zip(runs) {
                    *p = p.saturating_add(*r);
                }
            }
        }
        if !any {
            0
        } else if coverage_of(pooled, 1) >= self.config.single_copy_coverage {
            1
        } else {
            depth_for(pooled, self.config.coverage)
        }
    }
}

/// The encoding of copy `index` (0: the previous frame) at `depth`.
pub fn copy_encoding(depth: usize, index: usize) -> CopyEncoding {
    match (depth, index) {
        (1, _) => CopyEncoding::MuLaw,
        (_, 0) => CopyEncoding::Adpcm,
        _ => CopyEncoding::AdpcmHalfRate,
    }
}

/// Encodes `frame` as a copy in `encoding`, appended to `out`.
pub fn encode_copy(encoding: CopyEncoding, frame: &[i16; FRAME_SAMPLES], out: &mut Vec<u8>) {
    match encoding {
        CopyEncoding::MuLaw => {
            let start = out.len();
            out.resize(start + FRAME_SAMPLES, 0);
            mulaw::encode(frame, &mut out[start..]);
        }
        CopyEncoding::Adpcm => adpcm::encode(frame, out),
        CopyEncoding::AdpcmHalfRate => {
            let mut half = [0i16; FRAME_SAMPLES / 2];
            adpcm::downsample_2x(frame, &mut half);
            adpcm::encode(&half, out);
        }
    }
}

/// Decodes a copy of a frame into `out`. None if its length does not fit a frame.
pub fn decode_copy(copy: &AudioCopy<'_>, out: &mut [i16; FRAME_SAMPLES]) -> Option<()> {
    if copy.bytes.len() != copy.encoding.copy_len(FRAME_SAMPLES) {
        return None;
    }
    match copy.encoding {
        CopyEncoding::MuLaw => mulaw::decode(copy.bytes, out),
        CopyEncoding::Adpcm => adpcm::decode(copy.bytes, out)?,
        CopyEncoding::AdpcmHalfRate => {
            let mut half = [0i16; FRAME_SAMPLES / 2];
            adpcm::decode(copy.bytes, &mut half)?;
            adpcm::upsample_2x(&half, out);
        }
    }
    Some(())
}

/// The sender's side: the frames it sent last and their copies for the next packet.
#[derive(Debug, Clone, Default)]
pub struct RedundantCopies {
    /// The frames sent last, newest first, at most [`MAX_AUDIO_COPIES`].
    history: VecDeque<Box<[i16; FRAME_SAMPLES]>>,
    /// The encoded copies of [`prepare`](Self::prepare), newest first.
    encoded: [(Option<CopyEncoding>, Vec<u8>); MAX_AUDIO_COPIES],
}

impl RedundantCopies {
    /// Encodes copies of up to `depth` of the frames sent last, for the next packet.
    pub fn prepare(&mut self, depth: usize) {
        let depth = depth.min(MAX_AUDIO_COPIES);
        for (i, (encoding, bytes)) in self.encoded.iter_mut().enumerate() {
            bytes.clear();
            *encoding = match self.history.get(i).filter(|_| i < depth) {
                Some(frame) => {
                    let e = copy_encoding(depth, i);
                    encode_copy(e, frame, bytes);
                    Some(e)
                }
                None => None,
            };
        }
    }

    /// The copies [`prepare`](Self::prepare) made, for an [`crate::media::AudioPayload`].
    pub fn copies(&self) -> [Option<AudioCopy<'_>>; MAX_AUDIO_COPIES] {
        std::array::from_fn(|i| {
            let (encoding, bytes) = &self.encoded[i];
            encoding.map(|encoding| AudioCopy { encoding, bytes })
        })
    }

    /// Remembers a frame that was just sent.
    pub fn sent(&mut self, frame: &[i16; FRAME_SAMPLES]) {
        let slot = if self.history.len() == MAX_AUDIO_COPIES {
            self.history.pop_back().map(|mut b| {
                *b = *frame;
                b
            })
        } else {
            None
        };
        self.history.push_front(slot.unwrap_or_else(|| Box::new(*frame)));
    }

    /// Forgets the frames sent: the next packet does not follow them (a device switch, a mute).
    pub fn forget(&mut self) {
        self.history.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::AudioPayload;

    #[test]
    fn the_depth_covers_the_reported_bursts() {
        assert_eq!(depth_for([0, 0, 0, 0], 0.9), 1, "loss without runs");
        assert_eq!(depth_for([20, 1, 0, 0], 0.9), 1, "random loss: nearly all single losses");
        assert_eq!(depth_for([10, 10, 0, 0], 0.9), 2);
        assert_eq!(depth_for([4, 3, 3, 0], 0.9), 3);
        // Gilbert–Elliott with a mean burst of 3: runs of 1, 2, 3, 4+ in proportion 9:6:4:8.
        assert_eq!(depth_for([9, 6, 4, 8], 0.9), 4);
        assert_eq!(depth_for([0, 0, 0, 5], 0.9), 4);
        assert_eq!(depth_for([u16::MAX; 4], 0.9), 3, "no overflow: three copies rebuild 9 of 10");
    }

    #[test]
    fn the_reports_of_the_last_10_s_are_pooled_then_copies_stop() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut r = AudioRedundancy::new(RedundancyConfig::default());
        assert_eq!(r.depth(t0), 0);
        r.on_report(t0, 0.005, [0, 0, 0, 3]);
        assert_eq!(r.depth(t0), 0, "below 1% loss");
        r.on_report(t0 + s(1), 0.05, [9, 6, 4, 8]);
        assert_eq!(r.depth(t0 + s(1)), 4);
        // Pooled with a report of single losses: 29, 7, 4, 8 runs; three copies rebuild 91%.
        r.on_report(t0 + s(2), 0.05, [20, 1, 0, 0]);
        assert_eq!(r.depth(t0 + s(2)), 3);
        assert_eq!(r.depth(t0 + s(9)), 1, "8 s after the bursty report, the random one's depth");
        assert_eq!(r.depth(t0 + s(10)), 0, "8 s after the last lossy report, no copies");

        // Random 5% loss, a second at a time: now and then two losses meet, which alone would
        // ask for two copies; pooled over 10 s they are rare enough for one.
        let mut r = AudioRedundancy::new(RedundancyConfig::default());
        for i in 0..8u64 {
            let runs = if i == 3 { [1, 1, 0, 0] } else { [2, 0, 0, 0] };
            r.on_report(t0 + s(i), 0.05, runs);
        }
        assert_eq!(depth_for([1, 1, 0, 0], 0.9), 2);
        assert_eq!(r.depth(t0 + s(8)), 1);
    }

    /// A voiced test frame.
    fn frame(phase: usize) -> [i16; FRAME_SAMPLES] {
        std::array::from_fn(|i| ((((i + phase) as f64) * 0.07).sin() * 8000.0) as i16)
    }

    #[test]
    fn copies_round_trip_through_a_payload_newest_first() {
        let mut copies = RedundantCopies::default();
        copies.prepare(4);
        assert!(copies.copies().iter().all(Option::is_none), "nothing sent yet");
        for k in 0..6 {
            copies.sent(&frame(k * 320));
        }
        for depth in 1..=4 {
            copies.prepare(depth);
            let payload = AudioPayload { pcm: &[0u8; 640], copies: copies.copies() };
            assert_eq!(payload.depth(), depth);
            let mut body = Vec::new();
            payload.encode_into(&mut body).unwrap();
            let decoded = AudioPayload::decode(&body, 1).unwrap();
            for (i, copy) in decoded.copies.iter().flatten().enumerate() {
                assert_eq!(copy.encoding, copy_encoding(depth, i));
                let mut out = [0i16; FRAME_SAMPLES];
                decode_copy(copy, &mut out).unwrap();
                // Copy i is the frame sent i + 1 frames ago: frame(5 - i).
                let reference = frame((5 - i) * 320);
                let err: f64 = reference.iter().zip(&out).map(|(&a, &b)| (f64::from(a) - f64::from(b)).powi(2)).sum();
                let sig: f64 = reference.iter().map(|&a| f64::from(a).powi(2)).sum();
                let snr = 10.0 * (sig / err.max(1.0)).log10();
                assert!(snr > 10.0, "depth {depth} copy {i}: SNR {snr:.1} dB");
            }
        }
        copies.forget();
        copies.prepare(4);
        assert!(copies.copies().iter().all(Option::is_none), "forgotten");
    }
}
