//! Tests of the chunk sender and of [`send_chunks`] over a simulated link with a simulated
//! clock: a receiver that acknowledges each `DATA` after a round trip, optionally holding its
//! ACKs back for a while.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::*;
use crate::file::FileFrame;

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Runs a future that never waits: everything [`SimLink`] does is ready at once.
fn run_ready<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(out) => out,
        Poll::Pending => panic!("the simulated link never waits"),
    }
}

/// Why the simulated transfer failed.
#[derive(Debug, PartialEq)]
enum SimError {
    Chunk(ChunkError),
    /// No ACK pending and no timer: a real link would hit its idle limit here.
    Idle,
}

impl From<ChunkError> for SimError {
    fn from(e: ChunkError) -> Self {
        SimError::Chunk(e)
    }
}

/// A file connection with a simulated clock. The receiver takes each `DATA` as it is fed,
/// stores its bytes and schedules its ACK `rtt` later (or at `hold_until`, if the chunk was
/// sent before it and after `hold_from`).
struct SimLink {
    now: Instant,
    rtt: Duration,
    /// ACKs of chunks fed in `[hold_from, hold_until)` arrive no earlier than `hold_until`.
    hold: Option<(Instant, Instant)>,
    file: Vec<u8>,
    read_at: usize,
    /// Bytes `read_chunk` returns short by, once (to test the length check).
    short_by: usize,
    /// The receiver's copy, and the offsets of the chunks it got, in order.
    received: Vec<u8>,
    offsets: Vec<u64>,
    /// ACKs on their way: (arrival, seq, received).
    acks: VecDeque<(Instant, u32, u64)>,
    /// What the ACKs claim, given the bytes the receiver really holds.
    claim: fn(u64) -> u64,
    progress: Vec<Progress>,
    /// Chunks fed since the last flush; a flush must follow every batch.
    unflushed: usize,
    /// Times `next_ack` wakes with `Timer` before the timer is due (as a real timer may).
    early_wakes: usize,
}

impl SimLink {
    fn new(file: Vec<u8>, offset: usize, rtt: Duration) -> Self {
        Self {
            now: Instant::now(),
            rtt,
            hold: None,
            received: file[..offset].to_vec(),
            read_at: offset,
            file,
            short_by: 0,
            offsets: Vec::new(),
            acks: VecDeque::new(),
            claim: |held| held,
            progress: Vec::new(),
            unflushed: 0,
            early_wakes: 0,
        }
    }

    fn timeouts(&self) -> usize {
        self.progress.iter().filter(|p| **p == Progress::Timeout).count()
    }
}

impl ChunkLink for SimLink {
    type Error = SimError;

    fn now(&self) -> Instant {
        self.now
    }

    async fn read_chunk(&mut self, len: usize) -> Result<Bytes, SimError> {
        let len = len - std::mem::take(&mut self.short_by);
        let chunk = Bytes::copy_from_slice(&self.file[self.read_at..self.read_at + len]);
        self.read_at += len;
        Ok(chunk)
    }

    async fn feed(&mut self, frame: Bytes) -> Result<(), SimError> {
        let FileFrame::Data { seq, offset, data } = FileFrame::decode(frame).expect("a DATA frame") else {
            panic!("the sender only feeds DATA");
        };
        assert_eq!(offset, self.received.len() as u64, "chunks arrive in order, none twice");
        self.offsets.push(offset);
        self.unflushed += 1;
        self.received.extend_from_slice(&data);
        let mut arrival = self.now + self.rtt;
        if let Some((from, until)) = self.hold {
            if self.now >= from && self.now < until {
                arrival = arrival.max(until);
            }
        }
        let received = (self.claim)(self.received.len() as u64);
        self.acks.push_back((arrival, seq, received));
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), SimError> {
        self.unflushed = 0;
        Ok(())
    }

    async fn next_ack(&mut self, timer: Option<Instant>) -> Result<LinkEvent, SimError> {
        assert_eq!(self.unflushed, 0, "fed chunks are flushed before waiting for ACKs");
        if self.early_wakes > 0 && timer.is_some_and(|t| t > self.now) {
            self.early_wakes -= 1;
            return Ok(LinkEvent::Timer);
        }
        let next = self.acks.front().copied();
        match (next, timer) {
            (Some((arrival, _, _)), Some(t)) if t < arrival => {
                self.now = self.now.max(t);
                Ok(LinkEvent::Timer)
            }
            (Some((arrival, seq, received)), _) => {
                self.acks.pop_front();
                self.now = self.now.max(arrival);
                Ok(LinkEvent::Ack { seq, received })
            }
            (None, Some(t)) => {
                self.now = self.now.max(t);
                Ok(LinkEvent::Timer)
            }
            (None, None) => Err(SimError::Idle),
        }
    }

    fn on_progress(&mut self, _sender: &ChunkSender, progress: Progress) {
        self.progress.push(progress);
    }
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[test]
fn chunks_cover_the_file_from_the_resume_offset_within_the_window() {
    let t0 = Instant::now();
    let mut s = ChunkSender::new(RenoConfig::default(), 40_000, 5_000, 16_384);
    assert_eq!((s.acked(), s.sent(), s.start_offset()), (5_000, 5_000, 5_000));
    assert_eq!(s.next_chunk(), Some(Chunk { seq: 0, offset: 5_000, len: 16_384 }));
    // Asking again before sending describes the same chunk.
    assert_eq!(s.next_chunk(), Some(Chunk { seq: 0, offset: 5_000, len: 16_384 }));
    s.on_sent(t0);
    assert_eq!(s.next_chunk(), Some(Chunk { seq: 1, offset: 21_384, len: 16_384 }));
    s.on_sent(t0);
    // The initial window is two chunks.
    assert_eq!(s.next_chunk(), None);
    assert!(s.poll_timeout().is_some());

    assert_eq!(s.on_ack(t0 + ms(20), 0, 21_384), Ok(16_384));
    // Slow start: one ACK opens room for two more, but only 2,232 bytes are left.
    assert_eq!(s.next_chunk(), Some(Chunk { seq: 2, offset: 37_768, len: 2_232 }));
    s.on_sent(t0 + ms(20));
    assert_eq!(s.next_chunk(), None, "nothing left to send");
    assert_eq!(s.sent(), 40_000);
    assert!(!s.is_complete());
    assert_eq!(s.on_ack(t0 + ms(21), 1, 37_768), Ok(16_384));
    assert_eq!(s.on_ack(t0 + ms(40), 2, 40_000), Ok(2_232));
    assert!(s.is_complete());
    assert_eq!(s.poll_timeout(), None, "nothing in flight, no timer");
}

#[test]
fn a_transfer_resumed_at_the_end_is_already_complete() {
    let s = ChunkSender::new(RenoConfig::default(), 1_000, 1_000, 16_384);
    assert!(s.is_complete());
    assert_eq!(s.next_chunk(), None);
    let past = ChunkSender::new(RenoConfig::default(), 1_000, 5_000, 16_384);
    assert!(past.is_complete());
    assert_eq!(past.sent(), 1_000);
    let empty = ChunkSender::new(RenoConfig::default(), 0, 0, 16_384);
    assert!(empty.is_complete());
}

#[test]
fn acks_never_move_backwards_and_never_past_the_end() {
    let t0 = Instant::now();
    let mut s = ChunkSender::new(RenoConfig::default(), 30_000, 0, 10_000);
    s.on_sent(t0);
    s.on_sent(t0);
    assert_eq!(s.on_ack(t0 + ms(10), 1, 20_000), Ok(20_000));
    // A late ACK with a smaller `received`, and a duplicate, acknowledge nothing new.
    assert_eq!(s.on_ack(t0 + ms(11), 0, 10_000), Ok(0));
    assert_eq!(s.on_ack(t0 + ms(12), 1, 20_000), Ok(0));
    assert_eq!(s.acked(), 20_000);
    // A lying ACK of a chunk really in flight: refused, and neither the bytes acknowledged nor
    // the window move.
    s.on_sent(t0 + ms(13));
    let (in_flight, cwnd) = (s.reno().chunks_in_flight(), s.reno().cwnd());
    assert_eq!(in_flight, 1);
    assert_eq!(s.on_ack(t0 + ms(14), 2, 30_001), Err(ChunkError::AckPastEnd { received: 30_001, size: 30_000 }));
    assert_eq!(s.acked(), 20_000, "a rejected ACK changes nothing");
    assert_eq!((s.reno().chunks_in_flight(), s.reno().cwnd()), (in_flight, cwnd));
    assert_eq!(s.on_ack(t0 + ms(15), 2, 30_000), Ok(10_000), "the true ACK still counts");
    assert!(s.is_complete());
}

#[test]
fn a_timeout_shrinks_the_window_and_resends_nothing() {
    let t0 = Instant::now();
    let mut s = ChunkSender::new(RenoConfig::default(), 1 << 20, 0, 1_000);
    while s.next_chunk().is_some() {
        s.on_sent(t0);
    }
    assert_eq!(s.reno().chunks_in_flight(), 2);
    let deadline = s.poll_timeout().expect("armed");
    assert!(!s.handle_timeout(deadline - ms(1)), "not yet due");
    assert!(s.handle_timeout(deadline));
    assert_eq!(s.reno().cwnd(), 1);
    // The two chunks are still in flight (TCP delivers them); with cwnd 1 nothing more goes.
    assert_eq!(s.next_chunk(), None);
    assert_eq!(s.on_ack(deadline + ms(5), 0, 1_000), Ok(1_000));
    assert_eq!(s.on_ack(deadline + ms(5), 1, 2_000), Ok(1_000));
    // The next chunk continues after the last one sent: nothing is sent twice.
    assert_eq!(s.next_chunk().map(|c| (c.seq, c.offset)), Some((2, 2_000)));
}

#[test]
fn send_chunks_delivers_the_file_in_order_and_stops_when_all_is_acknowledged() {
    let file = pattern(1_000_000);
    let mut link = SimLink::new(file.clone(), 0, ms(20));
    let mut sender = ChunkSender::new(RenoConfig::default(), file.len() as u64, 0, 16_384);
    let t0 = link.now;
    run_ready(send_chunks(&mut sender, &mut link)).expect("transfer succeeds");
    assert!(sender.is_complete());
    assert_eq!(link.received, file);
    assert_eq!(link.offsets.len(), 1_000_000usize.div_ceil(16_384));
    assert!(link.acks.is_empty(), "returns only after the last ACK");
    let acked: u64 = link
        .progress
        .iter()
        .map(|p| match p {
            Progress::Acked { newly_acked } => *newly_acked,
            Progress::Timeout => 0,
        })
        .sum();
    assert_eq!(acked, 1_000_000);
    assert_eq!(link.timeouts(), 0);
    // Slow start from two chunks doubles per round trip: 62 chunks take 5 round trips
    // (2 + 4 + 8 + 16 + 32), not 31 as a fixed window of two would.
    assert_eq!(link.now - t0, ms(100));
}

#[test]
fn a_timer_that_wakes_early_changes_nothing() {
    let file = pattern(1_000_000);
    let mut link = SimLink::new(file.clone(), 0, ms(20));
    link.early_wakes = 40;
    let mut sender = ChunkSender::new(RenoConfig::default(), file.len() as u64, 0, 16_384);
    let t0 = link.now;
    run_ready(send_chunks(&mut sender, &mut link)).expect("transfer succeeds");
    assert_eq!(link.early_wakes, 0, "every early wake happened");
    assert_eq!(link.received, file);
    // Nothing counted as a timeout, so slow start ran as on the quiet link: 5 round trips.
    assert_eq!((link.timeouts(), sender.reno().timeouts()), (0, 0));
    assert_eq!(link.now - t0, ms(100));
}

#[test]
fn send_chunks_resumes_from_the_offset() {
    let file = pattern(100_000);
    let mut link = SimLink::new(file.clone(), 60_000, ms(20));
    let mut sender = ChunkSender::new(RenoConfig::default(), 100_000, 60_000, 16_384);
    run_ready(send_chunks(&mut sender, &mut link)).expect("transfer succeeds");
    assert_eq!(link.received, file);
    assert_eq!(link.offsets, [60_000, 76_384, 92_768]);
}

#[test]
fn withheld_acks_fire_the_timer_and_the_transfer_still_completes() {
    let file = pattern(400_000);
    let mut link = SimLink::new(file.clone(), 0, ms(20));
    let t0 = link.now;
    // Every ACK of a chunk fed between 50 ms and 3 s is held until 3 s.
    link.hold = Some((t0 + ms(50), t0 + ms(3_000)));
    let mut sender = ChunkSender::new(RenoConfig::default(), 400_000, 0, 16_384);
    run_ready(send_chunks(&mut sender, &mut link)).expect("transfer succeeds");
    assert_eq!(link.received, file, "every byte once, in order");
    assert!(link.timeouts() >= 1, "{:?}", link.progress);
    assert!(sender.reno().timeouts() >= 1);
    assert!(link.now >= t0 + ms(3_000));
}

#[test]
fn send_chunks_stops_on_a_lying_ack_and_on_a_short_read() {
    let file = pattern(50_000);
    let mut link = SimLink::new(file.clone(), 0, ms(20));
    link.claim = |held| held + 100_000;
    let mut sender = ChunkSender::new(RenoConfig::default(), 50_000, 0, 16_384);
    let err = run_ready(send_chunks(&mut sender, &mut link)).unwrap_err();
    assert_eq!(err, SimError::Chunk(ChunkError::AckPastEnd { received: 116_384, size: 50_000 }));

    let mut link = SimLink::new(file, 0, ms(20));
    link.short_by = 1;
    let mut sender = ChunkSender::new(RenoConfig::default(), 50_000, 0, 16_384);
    let err = run_ready(send_chunks(&mut sender, &mut link)).unwrap_err();
    assert_eq!(err, SimError::Chunk(ChunkError::ShortRead { wanted: 16_384, got: 16_383 }));
}

#[test]
fn a_receiver_that_stops_acknowledging_ends_at_the_links_limit() {
    // The receiver acknowledges every chunk but claims to hold nothing: once all is sent and
    // nothing is in flight there is no timer, and the link's own limit ends the transfer.
    let mut link = SimLink::new(pattern(20_000), 0, ms(20));
    link.claim = |_| 0;
    let mut sender = ChunkSender::new(RenoConfig::default(), 20_000, 0, 16_384);
    let err = run_ready(send_chunks(&mut sender, &mut link)).unwrap_err();
    assert_eq!(err, SimError::Idle);
    assert_eq!((sender.sent(), sender.acked()), (20_000, 0));
    assert_eq!(sender.poll_timeout(), None);
}
