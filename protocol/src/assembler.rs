//! Video frame reassembly: collects the UDP fragments of each JPEG frame of one sender and
//! hands back whole frames.
//!
//! Fragments may arrive reordered, duplicated, or not at all. A frame is delivered as soon as
//! its last missing fragment arrives, provided it is newer than the last frame delivered: a
//! video frame shown after a newer one would make the picture jump back, so an older frame is
//! never delivered, and once a frame is delivered every older frame still being assembled is
//! abandoned (counted incomplete). A frame still incomplete `deadline` after its first fragment
//! is dropped (counted incomplete); its later fragments count as late.
//!
//! Memory is bounded three ways: at most `max_pending_frames` frames in assembly, at most
//! `max_fragments` fragments per frame, at most `max_total_bytes` of payload held. Beyond a
//! limit the oldest frame in assembly is evicted. Fragments that contradict the frame they
//! belong to (another `frag_count` or size) are counted and dropped; nothing here panics on
//! network input.
//!
//! `frame_id` comparisons are wraparound-aware (serial-number arithmetic, RFC 1982 style).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::media::{VideoHeader, MAX_VIDEO_FRAGMENT_PAYLOAD};

/// How many recently abandoned frame ids are remembered, so that their stragglers count as late
/// rather than starting a new assembly.
const ABANDONED_MEMORY: usize = 32;

/// A fragment this many frames older than the newest delivered frame means the sender restarted
/// its frame counter (a straggler is never 10 s late), so the assembler starts over.
const RESTART_GAP: u32 = 300;

/// Tuning of [`FrameAssembler`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssemblerConfig {
    /// How long after its first fragment an incomplete frame is dropped.
    pub deadline: Duration,
    /// Most frames in assembly at once; a new frame beyond this evicts the oldest.
    pub max_pending_frames: usize,
    /// Largest `frag_count` accepted; fragments claiming more are rejected as inconsistent.
    pub max_fragments: u16,
    /// Most payload bytes held across all frames in assembly.
    pub max_total_bytes: usize,
}

impl Default for AssemblerConfig {
    fn default() -> Self {
        Self {
            deadline: Duration::from_millis(500),
            max_pending_frames: 8,
            max_fragments: 1024,
            // Eight 480p JPEGs are well under 1 MB; 4 MiB leaves room for large key frames.
            max_total_bytes: 4 << 20,
        }
    }
}

/// One reassembled video frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledFrame {
    /// The sender's frame counter.
    pub frame_id: u32,
    /// Sender's capture time, µs since the Unix epoch.
    pub capture_ts_us: u64,
    /// Picture width in pixels, as the sender announced it.
    pub width: u16,
    /// Picture height in pixels, as the sender announced it.
    pub height: u16,
    /// The encoded frame (a JPEG), fragments concatenated in order.
    pub data: Vec<u8>,
}

/// Counters of a [`FrameAssembler`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AssemblerStats {
    /// Frames delivered whole.
    pub complete: u64,
    /// Frames abandoned before completion: deadline passed, evicted by a memory limit, or
    /// superseded by a newer delivered frame.
    pub incomplete: u64,
    /// Fragments that arrived for a frame already delivered or abandoned, or older than the
    /// newest delivered frame.
    pub late: u64,
    /// Fragments received twice for a frame in assembly.
    pub duplicates: u64,
    /// Fragments rejected because they contradict their frame (another `frag_count`, width or
    /// height, an index out of range, more than `max_fragments`, a payload larger than
    /// [`MAX_VIDEO_FRAGMENT_PAYLOAD`]).
    pub inconsistent: u64,
}

/// A frame in assembly.
#[derive(Debug, Clone)]
struct Pending {
    /// The frame's id.
    frame_id: u32,
    /// When its first fragment arrived; the deadline counts from here.
    first_seen: Instant,
    /// Fields every fragment must repeat.
    capture_ts_us: u64,
    width: u16,
    height: u16,
    /// One slot per fragment, `frag_count` long.
    fragments: Vec<Option<Vec<u8>>>,
    /// Number of `Some` slots.
    received: usize,
    /// Payload bytes held.
    bytes: usize,
}

/// Reassembles the video frames of one sender. Sans-IO: feed fragments with
/// [`push`](Self::push), call [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout).
#[derive(Debug, Clone)]
pub struct FrameAssembler {
    /// Limits.
    config: AssemblerConfig,
    /// Frames in assembly, in arrival order of their first fragment (oldest first); never
    /// more than `max_pending_frames`.
    pending: VecDeque<Pending>,
    /// Payload bytes held across `pending`.
    total_bytes: usize,
    /// Newest frame delivered.
    last_delivered: Option<u32>,
    /// Frames recently dropped or evicted (newer than `last_delivered` when dropped).
    abandoned: VecDeque<u32>,
    /// Counters.
    stats: AssemblerStats,
}

/// Whether frame `a` comes after frame `b`, modulo 2^32.
fn is_newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

impl FrameAssembler {
    /// An empty assembler.
    pub fn new(config: AssemblerConfig) -> Self {
        Self {
            config,
            pending: VecDeque::new(),
            total_bytes: 0,
            last_delivered: None,
            abandoned: VecDeque::new(),
            stats: AssemblerStats::default(),
        }
    }

    /// Adds one fragment; returns the frame it completes, if any. Expired frames are dropped
    /// first, so a fragment arriving after its frame's deadline is late.
    pub fn push(&mut self, now: Instant, header: &VideoHeader, payload: &[u8]) -> Option<AssembledFrame> {
        self.handle_timeout(now);
        let id = header.frame_id;

        if let Some(last) = self.last_delivered {
            if !is_newer(id, last) {
                if last.wrapping_sub(id) > RESTART_GAP {
                    self.restart();
                } else {
                    self.stats.late += 1;
                    return None;
                }
            }
        }
        if self.abandoned.contains(&id) {
            self.stats.late += 1;
            return None;
        }

        let count = header.frag_count;
        let index = usize::from(header.frag_index);
        let valid = count >= 1
            && count <= self.config.max_fragments
            && header.frag_index < count
            && payload.len() <= MAX_VIDEO_FRAGMENT_PAYLOAD;
        if !valid {
            self.stats.inconsistent += 1;
            return None;
        }

        let pos = match self.pending.iter().position(|p| p.frame_id == id) {
            Some(pos) => {
                let p = &self.pending[pos];
                if p.fragments.len() != usize::from(count) || p.width != header.width || p.height != header.height {
                    self.stats.inconsistent += 1;
                    return None;
                }
                if p.fragments.get(index).is_some_and(Option::is_some) {
                    self.stats.duplicates += 1;
                    return None;
                }
                pos
            }
            None => {
                self.pending.push_back(Pending {
                    frame_id: id,
                    first_seen: now,
                    capture_ts_us: header.capture_ts_us,
                    width: header.width,
                    height: header.height,
                    fragments: vec![None; usize::from(count)],
                    received: 0,
                    bytes: 0,
                });
                self.pending.len() - 1
            }
        };

        let p = &mut self.pending[pos];
        if let Some(slot) = p.fragments.get_mut(index) {
            *slot = Some(payload.to_vec());
        }
        p.received += 1;
        p.bytes += payload.len();
        self.total_bytes += payload.len();

        if p.received == p.fragments.len() {
            return self.complete(pos);
        }
        self.enforce_limits();
        None
    }

    /// Drops every frame whose deadline has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        let deadline = self.config.deadline;
        while let Some(pos) = self.pending.iter().position(|p| now >= p.first_seen + deadline) {
            self.abandon(pos);
        }
    }

    /// The earliest deadline of a frame in assembly.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.first_seen + self.config.deadline).min()
    }

    /// The counters so far.
    pub fn stats(&self) -> AssemblerStats {
        self.stats
    }

    /// Frames currently in assembly.
    pub fn pending_frames(&self) -> usize {
        self.pending.len()
    }

    /// Payload bytes currently held.
    pub fn buffered_bytes(&self) -> usize {
        self.total_bytes
    }

    /// Removes the whole frame at `pos` and delivers it if it is newer than the last delivered.
    fn complete(&mut self, pos: usize) -> Option<AssembledFrame> {
        let p = self.pending.remove(pos)?;
        self.total_bytes -= p.bytes;
        if self.last_delivered.is_some_and(|last| !is_newer(p.frame_id, last)) {
            // Unreachable in practice (older frames are abandoned on delivery) but cheap to keep
            // the promise: never deliver backwards.
            self.stats.late += 1;
            return None;
        }
        let mut data = Vec::with_capacity(p.bytes);
        for fragment in p.fragments.into_iter().flatten() {
            data.extend_from_slice(&fragment);
        }
        self.stats.complete += 1;
        self.last_delivered = Some(p.frame_id);
        // Older frames can no longer be shown.
        while let Some(pos) = self.pending.iter().position(|q| !is_newer(q.frame_id, p.frame_id)) {
            self.abandon(pos);
        }
        Some(AssembledFrame {
            frame_id: p.frame_id,
            capture_ts_us: p.capture_ts_us,
            width: p.width,
            height: p.height,
            data,
        })
    }

    /// Evicts the oldest frames (by frame id) while a limit is exceeded. The frame just added
    /// to may be the one evicted, if it is the oldest.
    fn enforce_limits(&mut self) {
        while self.pending.len() > self.config.max_pending_frames.max(1)
            || self.total_bytes > self.config.max_total_bytes
        {
            let mut oldest: Option<(usize, u32)> = None;
            for (i, p) in self.pending.iter().enumerate() {
                match oldest {
                    Some((_, id)) if !is_newer(id, p.frame_id) => {}
                    _ => oldest = Some((i, p.frame_id)),
                }
            }
            let Some((pos, _)) = oldest else { break };
            self.abandon(pos);
        }
    }

    /// Drops the frame at `pos` unfinished and remembers its id.
    fn abandon(&mut self, pos: usize) {
        if let Some(p) = self.pending.remove(pos) {
            self.total_bytes -= p.bytes;
            self.stats.incomplete += 1;
            if self.abandoned.len() >= ABANDONED_MEMORY {
                self.abandoned.pop_front();
            }
            self.abandoned.push_back(p.frame_id);
        }
    }

    /// Forgets the sender's history after it restarted its frame counter.
    fn restart(&mut self) {
        while !self.pending.is_empty() {
            self.abandon(0);
        }
        self.abandoned.clear();
        self.last_delivered = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::{fragment_frame, MediaPacket, VideoFrameMeta, MAX_DATAGRAM_LEN};

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// The fragments `fragment_frame` makes for `jpeg`, decoded back into header and payload.
    fn fragments(frame_id: u32, jpeg: &[u8]) -> Vec<(VideoHeader, Vec<u8>)> {
        let meta = VideoFrameMeta {
            stream: crate::media::VideoStream::Camera,
            sender_id: 7,
            frame_id,
            capture_ts_us: 1_000 + u64::from(frame_id),
            width: 854,
            height: 480,
        };
        let mut seq = frame_id.wrapping_mul(100);
        let mut out = [0u8; MAX_DATAGRAM_LEN];
        let mut frags = Vec::new();
        let secret = crate::hop::HopSecret::new([7; crate::hop::HOP_SECRET_LEN]);
        let hop = crate::hop::HopSender::new(secret.to_relay());
        let mut receiver = crate::hop::HopReceiver::new(secret.to_relay());
        fragment_frame(meta, jpeg, &mut seq, &hop, &mut out, |d| {
            match MediaPacket::decode(receiver.open(d).unwrap()) {
                Ok(MediaPacket::VideoFragment { header, payload, .. }) => frags.push((header, payload.to_vec())),
                other => panic!("unexpected {other:?}"),
            }
        })
        .unwrap();
        frags
    }

    fn jpeg(len: usize, salt: u32) -> Vec<u8> {
        (0..len as u32).map(|i| (i.wrapping_mul(31).wrapping_add(salt) % 251) as u8).collect()
    }

    /// Deterministic Fisher-Yates with xorshift32.
    fn shuffle<T>(v: &mut [T], mut state: u32) {
        for i in (1..v.len()).rev() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            v.swap(i, state as usize % (i + 1));
        }
    }

    #[test]
    fn rebuilds_a_40kb_frame_from_shuffled_fragments() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(AssemblerConfig::default());
        let data = jpeg(40_000, 1);
        let mut frags = fragments(42, &data);
        assert!(frags.len() >= 30);
        shuffle(&mut frags, 0x1234_5678);
        let last = frags.len() - 1;
        for (i, (h, p)) in frags.iter().enumerate() {
            let out = a.push(t0 + ms(i as u64), h, p);
            if i < last {
                assert!(out.is_none());
                assert_eq!(a.poll_timeout(), Some(t0 + ms(500)));
            } else {
                let frame = out.expect("last fragment completes the frame");
                assert_eq!(frame.data, data);
                assert_eq!((frame.frame_id, frame.capture_ts_us, frame.width, frame.height), (42, 1042, 854, 480));
            }
        }
        assert_eq!(a.stats(), AssemblerStats { complete: 1, ..Default::default() });
        assert_eq!((a.pending_frames(), a.buffered_bytes(), a.poll_timeout()), (0, 0, None));
        // A retransmitted fragment of the delivered frame is late, not a new frame.
        assert!(a.push(t0 + ms(100), &frags[0].0, &frags[0].1).is_none());
        assert_eq!(a.stats().late, 1);
    }

    #[test]
    fn drops_a_frame_missing_a_fragment_past_its_deadline() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(AssemblerConfig::default());
        let frags = fragments(1, &jpeg(40_000, 2));
        let missing = 5;
        for (h, p) in frags.iter().filter(|(h, _)| h.frag_index != missing) {
            assert!(a.push(t0 + ms(10), h, p).is_none());
        }
        assert_eq!(a.poll_timeout(), Some(t0 + ms(510)));
        a.handle_timeout(t0 + ms(509));
        assert_eq!(a.pending_frames(), 1);
        a.handle_timeout(t0 + ms(510));
        assert_eq!(a.pending_frames(), 0);
        assert_eq!(a.buffered_bytes(), 0);
        assert_eq!(a.stats().incomplete, 1);
        // The missing fragment shows up after the deadline: late, and it does not resurrect
        // the frame.
        let (h, p) = &frags[usize::from(missing)];
        assert!(a.push(t0 + ms(600), h, p).is_none());
        assert_eq!(a.stats(), AssemblerStats { incomplete: 1, late: 1, ..Default::default() });
        assert_eq!(a.pending_frames(), 0);
        // The next frame is unaffected.
        let next = jpeg(3_000, 3);
        let out = fragments(2, &next).into_iter().filter_map(|(h, p)| a.push(t0 + ms(620), &h, &p)).last();
        assert_eq!(out.map(|f| f.data), Some(next));
    }

    #[test]
    fn counts_duplicates_and_still_completes() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(AssemblerConfig::default());
        let data = jpeg(5_000, 4);
        let frags = fragments(9, &data);
        assert!(a.push(t0, &frags[0].0, &frags[0].1).is_none());
        assert!(a.push(t0, &frags[0].0, &frags[0].1).is_none());
        assert!(a.push(t0, &frags[1].0, &frags[1].1).is_none());
        assert!(a.push(t0, &frags[0].0, &frags[0].1).is_none());
        let mut out = None;
        for (h, p) in &frags[2..] {
            out = a.push(t0, h, p);
        }
        assert_eq!(out.unwrap().data, data);
        assert_eq!(a.stats(), AssemblerStats { complete: 1, duplicates: 2, ..Default::default() });
    }

    #[test]
    fn a_stale_frame_is_never_delivered_after_a_newer_one() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(AssemblerConfig::default());
        let old = fragments(10, &jpeg(4_000, 5));
        let new_data = jpeg(2_000, 6);
        let new = fragments(11, &new_data);
        assert!(old.len() >= 3);
        // Half of frame 10, then all of frame 11.
        assert!(a.push(t0, &old[0].0, &old[0].1).is_none());
        let mut out = None;
        for (h, p) in &new {
            out = a.push(t0 + ms(1), h, p);
        }
        assert_eq!(out.unwrap().frame_id, 11);
        assert_eq!(a.stats().incomplete, 1, "frame 10 abandoned: it can no longer be shown");
        assert_eq!(a.pending_frames(), 0);
        // The rest of frame 10 arrives: all late, nothing delivered.
        for (h, p) in &old[1..] {
            assert!(a.push(t0 + ms(2), h, p).is_none());
        }
        let s = a.stats();
        assert_eq!((s.complete, s.late, s.incomplete), (1, old.len() as u64 - 1, 1));
    }

    #[test]
    fn frames_completing_out_of_order_deliver_only_forward() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(AssemblerConfig::default());
        let f1 = fragments(u32::MAX, &jpeg(2_000, 7));
        let f2 = fragments(0, &jpeg(2_000, 8));
        let f3 = fragments(1, &jpeg(2_000, 9));
        // Frame 0 (after u32::MAX: wraparound) completes first; u32::MAX is then stale.
        assert!(a.push(t0, &f1[0].0, &f1[0].1).is_none());
        assert!(a.push(t0, &f2[0].0, &f2[0].1).is_none());
        assert_eq!(a.push(t0, &f2[1].0, &f2[1].1).map(|f| f.frame_id), Some(0));
        assert!(a.push(t0, &f1[1].0, &f1[1].1).is_none());
        assert_eq!(a.push(t0, &f3[0].0, &f3[0].1), None);
        assert_eq!(a.push(t0, &f3[1].0, &f3[1].1).map(|f| f.frame_id), Some(1));
        let s = a.stats();
        assert_eq!((s.complete, s.incomplete, s.late), (2, 1, 1));
    }

    #[test]
    fn inconsistent_fragments_are_counted_not_fatal() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(AssemblerConfig { max_fragments: 64, ..AssemblerConfig::default() });
        let frags = fragments(3, &jpeg(3_000, 10));
        assert!(a.push(t0, &frags[0].0, &frags[0].1).is_none());
        // frag_count changes within the frame.
        let mut h = frags[1].0;
        h.frag_count += 1;
        assert!(a.push(t0, &h, &frags[1].1).is_none());
        // Another picture size within the frame.
        let mut h = frags[1].0;
        h.width = 640;
        assert!(a.push(t0, &h, &frags[1].1).is_none());
        // Index out of range, zero count, too many fragments, oversized payload.
        let mut h = frags[1].0;
        h.frag_index = h.frag_count;
        assert!(a.push(t0, &h, &frags[1].1).is_none());
        let mut h = frags[1].0;
        h.frag_count = 0;
        h.frag_index = 0;
        assert!(a.push(t0, &h, &frags[1].1).is_none());
        let mut h = frags[1].0;
        h.frame_id = 4;
        h.frag_count = 65;
        assert!(a.push(t0, &h, &frags[1].1).is_none());
        let big = vec![0u8; MAX_VIDEO_FRAGMENT_PAYLOAD + 1];
        assert!(a.push(t0, &frags[1].0, &big).is_none());
        assert_eq!(a.stats().inconsistent, 6);
        // The genuine fragments still complete the frame.
        let mut out = None;
        for (h, p) in &frags[1..] {
            out = a.push(t0, h, p);
        }
        assert_eq!(out.map(|f| f.frame_id), Some(3));
    }

    #[test]
    fn memory_is_bounded_by_frame_count_and_bytes() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(AssemblerConfig::default());
        // First fragment only of 20 frames: at most 8 pending, the oldest evicted.
        for id in 0..20u32 {
            let f = fragments(id, &jpeg(3_000, id));
            assert!(a.push(t0, &f[0].0, &f[0].1).is_none());
            assert!(a.pending_frames() <= 8);
        }
        assert_eq!(a.stats().incomplete, 12);
        // An evicted frame's stragglers are late.
        let f = fragments(0, &jpeg(3_000, 0));
        assert!(a.push(t0, &f[1].0, &f[1].1).is_none());
        assert_eq!(a.stats().late, 1);

        // Byte budget: 10 KB, frames of 4 full fragments (4.6 KB) each.
        let config = AssemblerConfig { max_total_bytes: 10_000, ..AssemblerConfig::default() };
        let mut a = FrameAssembler::new(config);
        let size = 4 * MAX_VIDEO_FRAGMENT_PAYLOAD;
        for id in 0..5u32 {
            let f = fragments(id, &jpeg(size, id));
            for (h, p) in &f[..3] {
                assert!(a.push(t0, h, p).is_none());
                assert!(a.buffered_bytes() <= 10_000, "{}", a.buffered_bytes());
            }
        }
        assert!(a.stats().incomplete >= 3);
        // A frame larger than the whole budget cannot be assembled; it is dropped, not kept.
        let huge = fragments(100, &jpeg(12_000, 1));
        for (h, p) in &huge {
            assert!(a.push(t0, h, p).is_none());
        }
        assert!(a.buffered_bytes() <= 10_000);
    }

    #[test]
    fn a_restarted_sender_is_followed() {
        let t0 = Instant::now();
        let mut a = FrameAssembler::new(AssemblerConfig::default());
        for id in [5000u32, 5001] {
            let f = fragments(id, &jpeg(100, id));
            assert!(a.push(t0, &f[0].0, &f[0].1).is_some());
        }
        // A slightly old frame is late; a frame thousands behind means the sender restarted.
        let f = fragments(4990, &jpeg(100, 1));
        assert!(a.push(t0, &f[0].0, &f[0].1).is_none());
        let f = fragments(0, &jpeg(100, 2));
        assert_eq!(a.push(t0, &f[0].0, &f[0].1).map(|f| f.frame_id), Some(0));
        assert_eq!(a.stats().complete, 3);
    }
}
