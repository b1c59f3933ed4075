//! The Reno-paced chunk sender of a file transfer: which chunk goes next, what the receiver
//! holds, and one driver loop that both ends of a file connection use.
//!
//! A file transfer sends a file (from a resume offset) as numbered `DATA` chunks and gets one
//! `ACK {seq, received}` back per chunk (see [`crate::file`]). The client's upload and the
//! relay's download do exactly the same thing on the sending side, so it lives here once:
//!
//! - [`ChunkSender`] is the sans-IO state: the [`Reno`] window, the next sequence number and
//!   offset, the bytes the receiver acknowledged. It is given `now` with every input and never
//!   reads the clock.
//! - [`send_chunks`] is the loop around it: send while the window allows, flush, wait for an
//!   ACK or the retransmission timer, repeat until the receiver holds the whole file. It is
//!   async but runtime-free: every piece of I/O (reading the file, the socket, sleeping until
//!   the timer, the clock) goes through the [`ChunkLink`] the caller implements, so the loop is
//!   tested here with a simulated link and clock.
//!
//! Over TCP nothing is lost: a timeout only shrinks the window, the chunks stay in flight and
//! nothing is ever retransmitted (see [`crate::reno`]).

use std::future::Future;
use std::time::Instant;

use bytes::Bytes;

use crate::file::FileFrame;
use crate::reno::{Reno, RenoConfig};

/// Why a chunk transfer cannot go on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// An `ACK` claims more bytes than the file has.
    #[error("the receiver acknowledged {received} bytes of a {size}-byte file")]
    AckPastEnd { received: u64, size: u64 },
    /// The link returned a chunk of another length than asked for.
    #[error("read {got} bytes of the file where {wanted} were expected")]
    ShortRead { wanted: usize, got: usize },
}

/// The next chunk to send: sequence number, position in the file and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk {
    pub seq: u32,
    pub offset: u64,
    pub len: usize,
}

/// The sending side of one file transfer. Sans-IO: ask [`next_chunk`](Self::next_chunk), call
/// [`on_sent`](Self::on_sent) once it is on the socket, feed every ACK and the timer.
#[derive(Debug, Clone)]
pub struct ChunkSender {
    reno: Reno,
    /// File size in bytes.
    size: u64,
    /// Chunk length; the last chunk is shorter.
    chunk_size: u64,
    /// Where the transfer started (the resume offset).
    start_offset: u64,
    /// Offset of the next chunk to send.
    next_offset: u64,
    /// Sequence number of the next chunk (wraps).
    next_seq: u32,
    /// Bytes the receiver holds contiguously from the start of the file, as its ACKs said.
    acked: u64,
}

impl ChunkSender {
    /// A transfer of a `size`-byte file from `offset`, in chunks of `chunk_size` bytes (at
    /// least 1), paced by a Reno window with `config`. An offset past the end is treated as
    /// the end: nothing is left to send.
    pub fn new(config: RenoConfig, size: u64, offset: u64, chunk_size: u32) -> Self {
        let offset = offset.min(size);
        Self {
            reno: Reno::new(config),
            size,
            chunk_size: u64::from(chunk_size.max(1)),
            start_offset: offset,
            next_offset: offset,
            next_seq: 0,
            acked: offset,
        }
    }

    /// The chunk the window allows next, if any bytes are left to send. Calling it again
    /// before [`on_sent`](Self::on_sent) describes the same chunk.
    #[must_use]
    pub fn next_chunk(&self) -> Option<Chunk> {
        if self.next_offset >= self.size || !self.reno.can_send() {
            return None;
        }
        let len = self.chunk_size.min(self.size - self.next_offset) as usize;
        Some(Chunk { seq: self.next_seq, offset: self.next_offset, len })
    }

    /// Records that the chunk [`next_chunk`](Self::next_chunk) described was written to the
    /// socket at `now`. Does nothing if there was none.
    pub fn on_sent(&mut self, now: Instant) {
        let Some(chunk) = self.next_chunk() else { return };
        self.reno.on_sent(now, chunk.seq, chunk.len);
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_offset += chunk.len as u64;
    }

    /// Processes `ACK {seq, received}` arriving at `now`. Returns how many bytes it newly
    /// acknowledged (0 for a duplicate or a `received` that did not grow).
    pub fn on_ack(&mut self, now: Instant, seq: u32, received: u64) -> Result<u64, ChunkError> {
        if received > self.size {
            return Err(ChunkError::AckPastEnd { received, size: self.size });
        }
        self.reno.on_ack(now, seq);
        let newly = received.saturating_sub(self.acked);
        self.acked = self.acked.max(received);
        Ok(newly)
    }

    /// The retransmission timer's deadline, while chunks are in flight.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.reno.poll_timeout()
    }

    /// Fires the retransmission timer if its deadline has passed (the window shrinks; nothing
    /// is resent). Returns whether it fired.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        self.reno.handle_timeout(now)
    }

    /// Whether the receiver has acknowledged the whole file.
    pub fn is_complete(&self) -> bool {
        self.acked >= self.size
    }

    /// Bytes the receiver holds from the start of the file.
    pub fn acked(&self) -> u64 {
        self.acked
    }

    /// Bytes handed to the socket so far, counted from the start of the file.
    pub fn sent(&self) -> u64 {
        self.next_offset
    }

    /// File size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The resume offset the transfer started from.
    pub fn start_offset(&self) -> u64 {
        self.start_offset
    }

    /// The congestion window, for stats (cwnd, ssthresh, phase, RTT).
    pub fn reno(&self) -> &Reno {
        &self.reno
    }
}

/// What [`ChunkLink::next_ack`] saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkEvent {
    /// The receiver's `ACK {seq, received}`.
    Ack { seq: u32, received: u64 },
    /// The retransmission deadline passed before an ACK arrived.
    Timer,
}

/// What changed, for [`ChunkLink::on_progress`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// An ACK arrived; it acknowledged `newly_acked` more bytes.
    Acked { newly_acked: u64 },
    /// The retransmission timer fired and shrank the window.
    Timeout,
}

/// The I/O of one sending file connection, as [`send_chunks`] needs it. The implementation
/// owns the socket, the file and the clock, and applies its own limits (an idle deadline, a
/// write timeout, the end of the meeting) by returning an error.
pub trait ChunkLink {
    /// The error the transfer ends with; [`ChunkError`]s turn into it.
    type Error: From<ChunkError>;

    /// The current time, as the sender's inputs take it.
    fn now(&self) -> Instant;

    /// The next `len` bytes of the file (the file is read in order, once).
    fn read_chunk(&mut self, len: usize) -> impl Future<Output = Result<Bytes, Self::Error>> + Send;

    /// Queues one encoded `DATA` frame on the connection.
    fn feed(&mut self, frame: Bytes) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Writes out whatever [`feed`](Self::feed) queued.
    fn flush(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Waits for the receiver's next `ACK`, or returns [`LinkEvent::Timer`] once `timer` has
    /// passed. With no `timer` (nothing in flight) it waits for an ACK until its own limit.
    fn next_ack(&mut self, timer: Option<Instant>) -> impl Future<Output = Result<LinkEvent, Self::Error>> + Send;

    /// Called after every ACK and every timeout, with the sender's new state.
    fn on_progress(&mut self, sender: &ChunkSender, progress: Progress);
}

/// Sends the rest of the file through `link` until the receiver has acknowledged all of it:
/// fill the window, flush, wait for an ACK or the timer, repeat.
pub async fn send_chunks<L: ChunkLink>(sender: &mut ChunkSender, link: &mut L) -> Result<(), L::Error> {
    while !sender.is_complete() {
        let mut fed = false;
        while let Some(chunk) = sender.next_chunk() {
            let data = link.read_chunk(chunk.len).await?;
            if data.len() != chunk.len {
                return Err(ChunkError::ShortRead { wanted: chunk.len, got: data.len() }.into());
            }
            link.feed(FileFrame::Data { seq: chunk.seq, offset: chunk.offset, data }.encode()).await?;
            sender.on_sent(link.now());
            fed = true;
        }
        if fed {
            link.flush().await?;
        }
        match link.next_ack(sender.poll_timeout()).await? {
            LinkEvent::Ack { seq, received } => {
                let newly_acked = sender.on_ack(link.now(), seq, received)?;
                link.on_progress(sender, Progress::Acked { newly_acked });
            }
            LinkEvent::Timer => {
                if sender.handle_timeout(link.now()) {
                    link.on_progress(sender, Progress::Timeout);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
