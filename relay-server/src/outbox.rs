//! Outgoing datagrams of one receive batch, grouped per destination for segmentation offload.
//!
//! The media loop handles a batch of received datagrams (one `recvmmsg`) and each one fans out
//! to the other participants of its meeting. Sent one `sendmsg` each, the system call is most
//! of the relay's cost per packet. With UDP generic segmentation offload (GSO, Linux; USO on
//! Windows) one call carries several datagrams to one destination as long as they are the same
//! size, the last one possibly shorter: exactly the fragments of a video frame, which arrive
//! together from their sender and go to each receiver together. The [`Outbox`] collects a
//! batch's datagrams into one lane per destination and hands the lanes to the socket once the
//! batch is handled, each as a single [`Segments`] send.
//!
//! Sans-IO: the caller passes the function that sends, so the grouping is tested without a
//! socket. Nothing is allocated per datagram: lanes and their buffers are reused from batch to
//! batch, and their number is bounded ([`MAX_LANES`]; a batch that reaches more destinations
//! flushes first). Order is kept per destination; across destinations it does not matter.

use std::collections::HashMap;
use std::net::SocketAddr;

/// Most destinations one batch collects before everything is sent.
pub(crate) const MAX_LANES: usize = 1024;

/// Largest total payload of one segmented send (the IPv4 limit is 65,507 bytes of UDP
/// payload; this stays clear of it for IPv6 and for the kernel's own headers).
pub(crate) const MAX_SEGMENTED_BYTES: usize = 65_000;

/// One send: `contents` holds `count` datagrams of `segment_len` bytes, the last one possibly
/// shorter, all for `destination`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Segments<'a> {
    pub destination: SocketAddr,
    pub contents: &'a [u8],
    pub segment_len: usize,
    pub count: usize,
}

/// What a flush could not send: datagrams and bytes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsent {
    pub datagrams: u64,
    pub bytes: u64,
}

#[derive(Debug)]
struct Lane {
    destination: SocketAddr,
    bytes: Vec<u8>,
    segment_len: usize,
    count: usize,
    /// A shorter datagram ended the lane: nothing more can be appended to this send.
    closed: bool,
}

/// Collects datagrams per destination until [`Outbox::flush`].
#[derive(Debug)]
pub(crate) struct Outbox {
    lanes: Vec<Lane>,
    in_use: usize,
    by_destination: HashMap<SocketAddr, usize>,
    max_segments: usize,
    unsent: Unsent,
}

impl Outbox {
    /// `max_segments`: how many datagrams the socket takes in one send (1 where the platform
    /// has no segmentation offload: then every datagram is sent on its own at once).
    pub fn new(max_segments: usize) -> Self {
        Self {
            lanes: Vec::new(),
            in_use: 0,
            by_destination: HashMap::default(),
            max_segments: max_segments.max(1),
            unsent: Unsent::default(),
        }
    }

    /// Datagrams queued and not yet handed to the socket.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.lanes[..self.in_use].iter().map(|l| l.count).sum()
    }

    /// Queues `datagram` for `destination`, sending what must go first: the destination's lane
    /// if the datagram cannot join it, or everything if the batch has reached [`MAX_LANES`]
    /// destinations.
    pub fn push(&mut self, datagram: &[u8], destination: SocketAddr, send: &mut impl FnMut(Segments<'_>) -> bool) {
        if self.max_segments == 1 || datagram.len() > MAX_SEGMENTED_BYTES {
            let one = Segments { destination, contents: datagram, segment_len: datagram.len(), count: 1 };
            if !send(one) {
                self.unsent.datagrams += 1;
                self.unsent.bytes += datagram.len() as u64;
            }
            return;
        }
        if let Some(&index) = self.by_destination.get(&destination) {
            let lane = &mut self.lanes[index];
            let fits = !lane.closed
                && datagram.len() <= lane.segment_len
                && lane.count < self.max_segments
                && lane.bytes.len() + datagram.len() <= MAX_SEGMENTED_BYTES;
            if fits {
                lane.bytes.extend_from_slice(datagram);
                lane.count += 1;
                lane.closed = datagram.len() < lane.segment_len;
                return;
            }
            Self::send_lane(lane, send, &mut self.unsent);
            lane.start(datagram);
            return;
        }
        if self.in_use == MAX_LANES {
            self.flush(send);
        }
        let index = self.in_use;
        if index == self.lanes.len() {
            self.lanes.push(Lane { destination, bytes: Vec::new(), segment_len: 0, count: 0, closed: false });
        }
        let lane = &mut self.lanes[index];
        lane.destination = destination;
        lane.start(datagram);
        self.in_use += 1;
        self.by_destination.insert(destination, index);
    }

    /// Sends every lane, in the order their destinations first appeared.
    pub fn flush(&mut self, send: &mut impl FnMut(Segments<'_>) -> bool) {
        for lane in &mut self.lanes[..self.in_use] {
            Self::send_lane(lane, send, &mut self.unsent);
        }
        self.in_use = 0;
        self.by_destination.clear();
    }

    /// What the sends since the last call could not deliver to the socket, and resets it.
    pub fn take_unsent(&mut self) -> Unsent {
        std::mem::take(&mut self.unsent)
    }

    fn send_lane(lane: &mut Lane, send: &mut impl FnMut(Segments<'_>) -> bool, unsent: &mut Unsent) {
        if lane.count == 0 {
            return;
        }
        let segments = Segments {
            destination: lane.destination,
            contents: &lane.bytes,
            segment_len: lane.segment_len,
            count: lane.count,
        };
        if !send(segments) {
            unsent.datagrams += lane.count as u64;
            unsent.bytes += lane.bytes.len() as u64;
        }
        lane.bytes.clear();
        lane.count = 0;
    }
}

impl Lane {
    fn start(&mut self, datagram: &[u8]) {
        self.bytes.clear();
        self.bytes.extend_from_slice(datagram);
        self.segment_len = datagram.len();
        self.count = 1;
        self.closed = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// What reached the "socket": (destination, segment length, datagrams).
    #[derive(Default)]
    struct Wire(Vec<(SocketAddr, usize, Vec<Vec<u8>>)>);

    impl Wire {
        fn sender(&mut self) -> impl FnMut(Segments<'_>) -> bool + '_ {
            |s: Segments<'_>| {
                let datagrams: Vec<Vec<u8>> = s.contents.chunks(s.segment_len).map(<[u8]>::to_vec).collect();
                assert_eq!(datagrams.len(), s.count, "the count matches the contents");
                self.0.push((s.destination, s.segment_len, datagrams));
                true
            }
        }
    }

    fn datagram(tag: u8, len: usize) -> Vec<u8> {
        vec![tag; len]
    }

    #[test]
    fn a_frames_fragments_to_one_receiver_go_in_one_send_the_short_last_one_included() {
        let mut outbox = Outbox::new(64);
        let mut wire = Wire::default();
        for i in 0..5 {
            outbox.push(&datagram(i, 1200), addr(1), &mut wire.sender());
        }
        outbox.push(&datagram(9, 300), addr(1), &mut wire.sender());
        assert!(wire.0.is_empty(), "nothing leaves before the flush");
        assert_eq!(outbox.queued(), 6);
        outbox.flush(&mut wire.sender());
        assert_eq!(wire.0.len(), 1);
        let (to, segment_len, datagrams) = &wire.0[0];
        assert_eq!((*to, *segment_len), (addr(1), 1200));
        let expected: Vec<Vec<u8>> = (0..5).map(|i| datagram(i, 1200)).chain([datagram(9, 300)]).collect();
        assert_eq!(datagrams, &expected, "every datagram, in order, boundaries kept");
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn each_destination_gets_its_own_send_in_order() {
        let mut outbox = Outbox::new(64);
        let mut wire = Wire::default();
        for round in 0..3u8 {
            for port in 1..=3 {
                outbox.push(&datagram(round * 10 + port as u8, 700), addr(port), &mut wire.sender());
            }
        }
        outbox.flush(&mut wire.sender());
        let got: Vec<(u16, Vec<u8>)> =
            wire.0.iter().map(|(to, _, d)| (to.port(), d.iter().map(|x| x[0]).collect())).collect();
        assert_eq!(got, vec![(1, vec![1, 11, 21]), (2, vec![2, 12, 22]), (3, vec![3, 13, 23])]);
    }

    #[test]
    fn a_datagram_that_cannot_join_sends_the_lane_first_so_order_holds() {
        let mut outbox = Outbox::new(64);
        let mut wire = Wire::default();
        // A short datagram ends a send; a longer one after it cannot share the segment size.
        outbox.push(&datagram(1, 1200), addr(1), &mut wire.sender());
        outbox.push(&datagram(2, 500), addr(1), &mut wire.sender());
        outbox.push(&datagram(3, 1200), addr(1), &mut wire.sender());
        assert_eq!(wire.0.len(), 1, "the closed lane left when the next datagram came");
        outbox.push(&datagram(4, 1200), addr(1), &mut wire.sender());
        outbox.push(&datagram(5, 1300), addr(1), &mut wire.sender());
        outbox.flush(&mut wire.sender());
        let order: Vec<u8> = wire.0.iter().flat_map(|(_, _, d)| d.iter().map(|x| x[0])).collect();
        assert_eq!(order, vec![1, 2, 3, 4, 5]);
        let sizes: Vec<usize> = wire.0.iter().map(|(_, s, d)| s * 100 + d.len()).collect();
        assert_eq!(sizes, vec![120_002, 120_002, 130_001], "segment size and count of each send");
    }

    #[test]
    fn sends_are_bounded_by_the_segment_limit_and_the_byte_limit() {
        let mut outbox = Outbox::new(4);
        let mut wire = Wire::default();
        for i in 0..10 {
            outbox.push(&datagram(i, 1200), addr(1), &mut wire.sender());
        }
        outbox.flush(&mut wire.sender());
        assert_eq!(wire.0.iter().map(|w| w.2.len()).collect::<Vec<_>>(), vec![4, 4, 2]);

        let mut outbox = Outbox::new(64);
        let mut wire = Wire::default();
        for i in 0..64 {
            outbox.push(&datagram(i, 1200), addr(1), &mut wire.sender());
        }
        outbox.flush(&mut wire.sender());
        let per_send = MAX_SEGMENTED_BYTES / 1200;
        assert_eq!(wire.0.iter().map(|w| w.2.len()).collect::<Vec<_>>(), vec![per_send, 64 - per_send]);
        assert!(wire.0.iter().all(|(_, s, d)| s * d.len() <= MAX_SEGMENTED_BYTES));
    }

    #[test]
    fn without_offload_every_datagram_goes_at_once() {
        let mut outbox = Outbox::new(1);
        let mut wire = Wire::default();
        outbox.push(&datagram(1, 1200), addr(1), &mut wire.sender());
        outbox.push(&datagram(2, 1200), addr(1), &mut wire.sender());
        assert_eq!(wire.0.len(), 2);
        assert_eq!(outbox.queued(), 0);
    }

    #[test]
    fn the_number_of_destinations_held_is_bounded() {
        let mut outbox = Outbox::new(64);
        let mut wire = Wire::default();
        for port in 0..(MAX_LANES as u16 + 5) {
            outbox.push(&datagram(1, 100), addr(port), &mut wire.sender());
        }
        assert_eq!(wire.0.len(), MAX_LANES, "reaching the bound sent the batch so far");
        assert_eq!(outbox.queued(), 5);
        outbox.flush(&mut wire.sender());
        assert_eq!(wire.0.len(), MAX_LANES + 5);
    }

    #[test]
    fn failed_sends_are_counted_per_datagram() {
        let mut outbox = Outbox::new(64);
        for i in 0..3 {
            outbox.push(&datagram(i, 1000), addr(1), &mut |_| false);
        }
        outbox.push(&datagram(7, 10), addr(2), &mut |_| false);
        outbox.flush(&mut |s: Segments<'_>| s.destination == addr(2));
        assert_eq!(outbox.take_unsent(), Unsent { datagrams: 3, bytes: 3000 });
        assert_eq!(outbox.take_unsent(), Unsent::default(), "taken once");
    }
}
