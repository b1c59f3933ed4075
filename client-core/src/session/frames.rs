//! Video frames for the consumer: one latest-frame slot per source, never a queue.
//!
//! The decode worker puts every decoded frame of a participant, and the capture thread every
//! frame of our own camera (with `SessionOptions::local_video`), into that source's slot,
//! replacing the frame before it. A consumer holds a [`VideoFeed`]
//! ([`crate::Session::video_feed`]): it waits with [`VideoFeed::changed`] and takes what is new
//! with [`VideoFeed::take_new`]. A consumer that is slow, or stops reading altogether, only
//! ever misses frames it would not have wanted anyway. The memory the session holds for video
//! is one frame per source (at most [`MAX_SOURCES`]) whatever the consumer does. Control
//! events travel apart, on the event channel, and never wait behind pixels.
//!
//! Several feeds may read at once; each one keeps its own position, so none takes frames away
//! from another.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use protocol::control::ParticipantId;
use tokio::sync::watch;

use super::receive::MAX_REMOTES;

/// Sources with a slot at most: every remote sender's camera and screen, and our own camera.
pub const MAX_SOURCES: usize = 2 * MAX_REMOTES + 1;

/// Whose picture a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrameSource {
    /// A participant's video, decoded.
    Remote(ParticipantId),
    /// Our own camera as captured, before scaling and encoding.
    Local,
    /// A participant's shared screen, as composed from its updates.
    Screen(ParticipantId),
}

/// How a frame's pixels are laid out (row-major, no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    /// 4 bytes a pixel (decoded frames).
    Rgba,
    /// 3 bytes a pixel (captured frames).
    Rgb,
}

/// One picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    pub source: FrameSource,
    /// The sender's frame counter (for our own camera, the capture count).
    pub frame_id: u32,
    pub width: u32,
    pub height: u32,
    /// When it was captured, µs since the Unix epoch (the sender's clock).
    pub capture_ts_us: u64,
    pub format: PixelFormat,
    pub pixels: Bytes,
}

#[derive(Debug, Default)]
struct SlotTable {
    /// Per source, the newest frame and the version it was put with.
    slots: BTreeMap<FrameSource, (u64, VideoFrame)>,
    /// The version the next frame gets (versions grow by one per frame put).
    next_version: u64,
}

/// The slots, shared by the producers and every [`VideoFeed`].
#[derive(Debug)]
pub(crate) struct FrameSlots {
    table: Mutex<SlotTable>,
    /// The latest version put; `u64::MAX` once the session is gone.
    version: watch::Sender<u64>,
}

impl Default for FrameSlots {
    fn default() -> Self {
        Self {
            table: Mutex::new(SlotTable { slots: BTreeMap::new(), next_version: 1 }),
            version: watch::Sender::new(0),
        }
    }
}

/// The version that tells feeds the session is gone.
const CLOSED: u64 = u64::MAX;

impl FrameSlots {
    fn table(&self) -> MutexGuard<'_, SlotTable> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Puts `frame` into its source's slot, replacing the one there. Returns false (and keeps
    /// nothing) for a new source when [`MAX_SOURCES`] slots are taken, or after
    /// [`FrameSlots::close`].
    pub(crate) fn put(&self, frame: VideoFrame) -> bool {
        let version = {
            let mut table = self.table();
            if *self.version.borrow() == CLOSED
                || (!table.slots.contains_key(&frame.source) && table.slots.len() >= MAX_SOURCES)
            {
                return false;
            }
            let version = table.next_version;
            table.next_version += 1;
            table.slots.insert(frame.source, (version, frame));
            version
        };
        self.version.send_if_modified(|v| {
            let newer = *v != CLOSED && version > *v;
            if newer {
                *v = version;
            }
            newer
        });
        true
    }

    /// Drops a source's slot (a participant left).
    pub(crate) fn forget(&self, source: FrameSource) {
        self.table().slots.remove(&source);
    }

    /// Drops every slot (the meeting ended).
    pub(crate) fn clear(&self) {
        self.table().slots.clear();
    }

    /// The session is gone: every feed's [`VideoFeed::changed`] returns false from now on.
    pub(crate) fn close(&self) {
        self.clear();
        self.version.send_replace(CLOSED);
    }

    pub(crate) fn feed(self: &Arc<Self>) -> VideoFeed {
        VideoFeed { slots: self.clone(), changes: self.version.subscribe(), seen: 0 }
    }
}

/// A consumer's view of a session's video; see the module documentation.
#[derive(Debug, Clone)]
pub struct VideoFeed {
    slots: Arc<FrameSlots>,
    changes: watch::Receiver<u64>,
    /// The newest version this feed has taken.
    seen: u64,
}

impl VideoFeed {
    /// Waits until a frame newer than what [`VideoFeed::take_new`] last returned is there.
    /// Returns false once the session is gone.
    pub async fn changed(&mut self) -> bool {
        let seen = self.seen;
        match self.changes.wait_for(|v| *v == CLOSED || *v > seen).await {
            Ok(v) => *v != CLOSED,
            Err(_) => false,
        }
    }

    /// The newest frame of every source whose frame changed since the last call, in source
    /// order (participants by id, then our own camera).
    pub fn take_new(&mut self) -> Vec<VideoFrame> {
        let table = self.slots.table();
        let seen = self.seen;
        let mut newest = seen;
        let frames = table
            .slots
            .values()
            .filter(|(version, _)| *version > seen)
            .map(|(version, frame)| {
                newest = newest.max(*version);
                frame.clone()
            })
            .collect();
        self.seen = newest;
        frames
    }

    /// The newest frame of `source`, if it has one.
    pub fn latest(&self, source: FrameSource) -> Option<VideoFrame> {
        self.slots.table().slots.get(&source).map(|(_, f)| f.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(source: FrameSource, frame_id: u32, len: usize) -> VideoFrame {
        VideoFrame {
            source,
            frame_id,
            width: 1,
            height: 1,
            capture_ts_us: 0,
            format: PixelFormat::Rgba,
            pixels: Bytes::from(vec![0u8; len]),
        }
    }

    fn ids(frames: &[VideoFrame]) -> Vec<(FrameSource, u32)> {
        frames.iter().map(|f| (f.source, f.frame_id)).collect()
    }

    #[test]
    fn a_slow_feed_gets_only_the_newest_frame_of_each_source() {
        let slots = Arc::new(FrameSlots::default());
        let mut feed = slots.feed();
        for id in 0..1000 {
            assert!(slots.put(frame(FrameSource::Remote(2), id, 16)));
            assert!(slots.put(frame(FrameSource::Remote(3), id, 16)));
        }
        slots.put(frame(FrameSource::Local, 5, 16));
        assert_eq!(
            ids(&feed.take_new()),
            vec![(FrameSource::Remote(2), 999), (FrameSource::Remote(3), 999), (FrameSource::Local, 5)]
        );
        assert!(feed.take_new().is_empty(), "nothing new since");
        slots.put(frame(FrameSource::Remote(3), 1000, 16));
        assert_eq!(ids(&feed.take_new()), vec![(FrameSource::Remote(3), 1000)]);
    }

    #[test]
    fn feeds_keep_their_own_position() {
        let slots = Arc::new(FrameSlots::default());
        let (mut a, mut b) = (slots.feed(), slots.feed());
        slots.put(frame(FrameSource::Remote(2), 1, 4));
        assert_eq!(a.take_new().len(), 1);
        slots.put(frame(FrameSource::Remote(2), 2, 4));
        assert_eq!(ids(&b.take_new()), vec![(FrameSource::Remote(2), 2)]);
        assert_eq!(ids(&a.take_new()), vec![(FrameSource::Remote(2), 2)]);
        assert_eq!(a.latest(FrameSource::Remote(2)).map(|f| f.frame_id), Some(2));
    }

    #[test]
    fn slots_are_bounded_and_forgotten_sources_go() {
        let slots = Arc::new(FrameSlots::default());
        for id in 0..MAX_SOURCES as u32 {
            assert!(slots.put(frame(FrameSource::Remote(id), 0, 1)));
        }
        assert!(!slots.put(frame(FrameSource::Remote(9999), 0, 1)));
        assert!(slots.put(frame(FrameSource::Remote(0), 1, 1)), "a known source still gets in");
        slots.forget(FrameSource::Remote(0));
        assert!(slots.feed().latest(FrameSource::Remote(0)).is_none());
        assert!(slots.put(frame(FrameSource::Remote(9999), 0, 1)));
        slots.clear();
        assert!(slots.feed().take_new().is_empty());
    }

    #[tokio::test]
    async fn changed_wakes_on_a_new_frame_and_ends_with_the_session() {
        let slots = Arc::new(FrameSlots::default());
        let mut feed = slots.feed();
        let producer = slots.clone();
        let waiter = tokio::spawn(async move {
            let woke = feed.changed().await;
            (woke, feed.take_new().len(), feed)
        });
        producer.put(frame(FrameSource::Remote(2), 1, 4));
        let (woke, n, mut feed) = waiter.await.unwrap();
        assert!(woke);
        assert_eq!(n, 1);
        slots.close();
        assert!(!feed.changed().await);
        assert!(!slots.put(frame(FrameSource::Remote(2), 2, 4)));
    }
}
