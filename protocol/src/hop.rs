//! Hop authentication: every UDP datagram between a participant and the relay proves who sent
//! it and is accepted at most once.
//!
//! Each datagram ends with a 24-byte **trailer**: a 64-bit sequence number and a 16-byte
//! AES-256-GCM tag computed with an empty plaintext (that is, GMAC) over every byte before the
//! tag, the sequence number included. The nonce is four zero bytes and the sequence number, so
//! it never repeats under one key as long as the sender never reuses a number, which
//! [`HopSender`] guarantees by drawing them from one counter.
//!
//! The keys come from the participant's TLS control connection (RFC 8446 §7.5's exporter,
//! label [`EXPORTER_LABEL`], no context, 64 bytes): the first 32 bytes key what the participant
//! sends to the relay, the last 32 what the relay sends to it. Nobody but the two ends of that
//! TLS session can compute them, so a sniffed datagram gives an observer nothing to forge with,
//! and a replayed one is refused by the receiver's [`ReplayWindow`]. No token travels in any
//! datagram.
//!
//! This authenticates each hop, not the media: the relay verifies what a participant sends,
//! and authenticates again, with each receiver's key, what it forwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use thiserror::Error;

use crate::replay::{Replay, ReplayWindow};

/// The TLS exporter label both ends use to derive the hop keys.
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-parlor-media-hop";
/// Bytes exported from the TLS session: two 32-byte keys.
pub const HOP_SECRET_LEN: usize = 64;
/// Length of the trailer's sequence number.
pub const HOP_SEQ_LEN: usize = 8;
/// Length of the trailer's authentication tag.
pub const HOP_TAG_LEN: usize = 16;
/// Length of the trailer every datagram ends with.
pub const HOP_TRAILER_LEN: usize = HOP_SEQ_LEN + HOP_TAG_LEN;

/// Why a datagram's trailer was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum HopError {
    /// Shorter than a trailer.
    #[error("datagram shorter than its authentication trailer")]
    TooShort,
    /// The tag does not match: made up, altered, or sealed with another participant's key.
    #[error("authentication tag does not match")]
    Forged,
    /// A sequence number already accepted.
    #[error("replayed datagram")]
    Replayed,
    /// A sequence number older than the replay window.
    #[error("sequence number older than the replay window")]
    Stale,
}

impl From<Replay> for HopError {
    fn from(r: Replay) -> Self {
        match r {
            Replay::Duplicate => HopError::Replayed,
            Replay::Stale => HopError::Stale,
        }
    }
}

/// The 64 bytes exported from a control connection's TLS session. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct HopSecret([u8; HOP_SECRET_LEN]);

impl std::fmt::Debug for HopSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HopSecret(..)")
    }
}

impl HopSecret {
    pub fn new(bytes: [u8; HOP_SECRET_LEN]) -> Self {
        Self(bytes)
    }

    /// The key of datagrams from the participant to the relay.
    pub fn to_relay(&self) -> HopKey {
        HopKey::new(&self.0[..32])
    }

    /// The key of datagrams from the relay to the participant.
    pub fn from_relay(&self) -> HopKey {
        HopKey::new(&self.0[32..])
    }
}

/// One direction's AES-256-GCM key.
pub struct HopKey(LessSafeKey);

impl std::fmt::Debug for HopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HopKey(..)")
    }
}

fn nonce(seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

impl HopKey {
    /// A key from 32 bytes (the halves of a [`HopSecret`]).
    fn new(raw: &[u8]) -> Self {
        // A 32-byte slice is always a valid AES-256 key.
        let key = UnboundKey::new(&AES_256_GCM, raw).expect("32-byte AES-256-GCM key");
        Self(LessSafeKey::new(key))
    }

    /// Writes `seq` and the tag into the last [`HOP_TRAILER_LEN`] bytes of `datagram`, whose
    /// other bytes are the packet.
    pub fn seal(&self, datagram: &mut [u8], seq: u64) -> Result<(), HopError> {
        let len = datagram.len();
        if len < HOP_TRAILER_LEN {
            return Err(HopError::TooShort);
        }
        let tag_at = len - HOP_TAG_LEN;
        datagram[tag_at - HOP_SEQ_LEN..tag_at].copy_from_slice(&seq.to_be_bytes());
        let (covered, tag_out) = datagram.split_at_mut(tag_at);
        let tag = self
            .0
            .seal_in_place_separate_tag(nonce(seq), Aad::from(&*covered), &mut [])
            .map_err(|_| HopError::Forged)?;
        tag_out.copy_from_slice(tag.as_ref());
        Ok(())
    }

    /// Checks the trailer of `datagram` and returns its sequence number. Does not look at the
    /// replay window: see [`HopReceiver`].
    pub fn verify(&self, datagram: &[u8]) -> Result<u64, HopError> {
        let len = datagram.len();
        if len < HOP_TRAILER_LEN {
            return Err(HopError::TooShort);
        }
        let tag_at = len - HOP_TAG_LEN;
        let mut seq = [0u8; HOP_SEQ_LEN];
        seq.copy_from_slice(&datagram[tag_at - HOP_SEQ_LEN..tag_at]);
        let seq = u64::from_be_bytes(seq);
        let mut tag = [0u8; HOP_TAG_LEN];
        tag.copy_from_slice(&datagram[tag_at..]);
        self.0.open_in_place(nonce(seq), Aad::from(&datagram[..tag_at]), &mut tag).map_err(|_| HopError::Forged)?;
        Ok(seq)
    }
}

/// The sending end of one direction: the key and the counter its sequence numbers come from.
/// Shared by every thread that sends on the direction (`&self` methods). [`Self::rekey`]
/// swaps in the key of a new TLS session (after a resume) and starts its numbers again: a key
/// and its counter are only ever read together, so no number is sealed twice under one key.
#[derive(Debug)]
pub struct HopSender {
    keyed: RwLock<KeyedCounter>,
}

#[derive(Debug)]
struct KeyedCounter {
    key: HopKey,
    next_seq: AtomicU64,
}

impl HopSender {
    pub fn new(key: HopKey) -> Self {
        Self { keyed: RwLock::new(KeyedCounter { key, next_seq: AtomicU64::new(0) }) }
    }

    /// Seals with `key` from now on, numbering from 0 again.
    pub fn rekey(&self, key: HopKey) {
        let mut keyed = self.keyed.write().unwrap_or_else(|poisoned| poisoned.into_inner());
        *keyed = KeyedCounter { key, next_seq: AtomicU64::new(0) };
    }

    /// Seals `datagram` (packet, then room for the trailer) with the next sequence number.
    pub fn seal(&self, datagram: &mut [u8]) -> Result<(), HopError> {
        let keyed = self.keyed.read().unwrap_or_else(|poisoned| poisoned.into_inner());
        let seq = keyed.next_seq.fetch_add(1, Ordering::Relaxed);
        keyed.key.seal(datagram, seq)
    }

    /// Encodes `packet` at the start of `out`, seals it, and returns the datagram's length.
    pub fn encode(&self, packet: &crate::MediaPacket<'_>, out: &mut [u8]) -> Result<usize, crate::PacketError> {
        let len = packet.encoded_len() + HOP_TRAILER_LEN;
        let datagram = out.get_mut(..len).ok_or(crate::PacketError::BufferTooSmall)?;
        packet.encode_into(datagram)?;
        self.seal(datagram).map_err(|_| crate::PacketError::BufferTooSmall)?;
        Ok(len)
    }

    /// [`encode`](Self::encode) into a new buffer of the datagram's size.
    pub fn to_vec(&self, packet: &crate::MediaPacket<'_>) -> Result<Vec<u8>, crate::PacketError> {
        let mut out = vec![0u8; packet.encoded_len() + HOP_TRAILER_LEN];
        self.encode(packet, &mut out)?;
        Ok(out)
    }
}

/// The receiving end of one direction: the key and the replay window.
#[derive(Debug)]
pub struct HopReceiver {
    key: HopKey,
    window: ReplayWindow,
}

impl HopReceiver {
    pub fn new(key: HopKey) -> Self {
        Self { key, window: ReplayWindow::new() }
    }

    /// Checks the tag only; the window is unchanged. Returns the sequence number.
    pub fn verify(&self, datagram: &[u8]) -> Result<u64, HopError> {
        self.key.verify(datagram)
    }

    /// Accepts a verified sequence number once.
    pub fn accept(&mut self, seq: u64) -> Result<(), HopError> {
        Ok(self.window.accept(seq)?)
    }

    /// Verifies `datagram`, accepts its sequence number, and returns the packet (the datagram
    /// without its trailer).
    pub fn open<'a>(&mut self, datagram: &'a [u8]) -> Result<&'a [u8], HopError> {
        let seq = self.verify(datagram)?;
        self.accept(seq)?;
        Ok(&datagram[..datagram.len() - HOP_TRAILER_LEN])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::MediaPacket;

    fn secret(fill: u8) -> HopSecret {
        let mut bytes = [0u8; HOP_SECRET_LEN];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = fill.wrapping_add(i as u8);
        }
        HopSecret::new(bytes)
    }

    #[test]
    fn sealed_datagrams_open_once_and_in_any_order() {
        let s = secret(1);
        let sender = HopSender::new(s.to_relay());
        let mut receiver = HopReceiver::new(s.to_relay());
        let a = sender.to_vec(&MediaPacket::Keepalive { sender_id: 7 }).unwrap();
        let b = sender.to_vec(&MediaPacket::Keepalive { sender_id: 7 }).unwrap();
        assert_eq!(receiver.open(&b).unwrap(), &b[..b.len() - HOP_TRAILER_LEN]);
        assert_eq!(receiver.open(&a).unwrap(), &a[..a.len() - HOP_TRAILER_LEN]);
        assert_eq!(receiver.open(&a), Err(HopError::Replayed));
        let mut fresh = HopReceiver::new(s.to_relay());
        assert_eq!(MediaPacket::decode(fresh.open(&a).unwrap()), Ok(MediaPacket::Keepalive { sender_id: 7 }));
    }

    #[test]
    fn a_rekeyed_sender_seals_under_the_new_key_only_numbering_from_zero() {
        let (old, new) = (secret(1), secret(2));
        let sender = HopSender::new(old.to_relay());
        let mut old_receiver = HopReceiver::new(old.to_relay());
        for _ in 0..3 {
            old_receiver.open(&sender.to_vec(&MediaPacket::Keepalive { sender_id: 7 }).unwrap()).unwrap();
        }
        sender.rekey(new.to_relay());
        let after = sender.to_vec(&MediaPacket::Keepalive { sender_id: 7 }).unwrap();
        assert_eq!(old_receiver.verify(&after), Err(HopError::Forged), "the old session's key opens nothing new");
        assert_eq!(HopReceiver::new(new.to_relay()).verify(&after), Ok(0));
    }

    #[test]
    fn every_altered_byte_and_every_other_key_is_refused() {
        let s = secret(1);
        let sender = HopSender::new(s.to_relay());
        let receiver = HopReceiver::new(s.to_relay());
        let echo = crate::media::RttEcho { echo_id: 9, sent_ts_us: 1_700_000_000_000_000 };
        let datagram = sender.to_vec(&MediaPacket::RttRequest { sender_id: 7, echo }).unwrap();
        assert!(receiver.verify(&datagram).is_ok());
        for i in 0..datagram.len() {
            let mut altered = datagram.clone();
            altered[i] ^= 0x01;
            assert_eq!(receiver.verify(&altered), Err(HopError::Forged), "byte {i}");
        }
        // The other direction's key, and another session's key, open nothing.
        assert_eq!(HopReceiver::new(s.from_relay()).verify(&datagram), Err(HopError::Forged));
        assert_eq!(HopReceiver::new(secret(2).to_relay()).verify(&datagram), Err(HopError::Forged));
        assert_eq!(receiver.verify(&datagram[..HOP_TRAILER_LEN - 1]), Err(HopError::TooShort));
    }

    #[test]
    fn a_window_behind_is_stale() {
        let s = secret(3);
        let sender = HopSender::new(s.from_relay());
        let mut receiver = HopReceiver::new(s.from_relay());
        let first = sender.to_vec(&MediaPacket::Keepalive { sender_id: 0 }).unwrap();
        for _ in 0..crate::replay::REPLAY_WINDOW {
            let d = sender.to_vec(&MediaPacket::Keepalive { sender_id: 0 }).unwrap();
            receiver.open(&d).unwrap();
        }
        assert_eq!(receiver.open(&first), Err(HopError::Stale));
    }

    #[test]
    fn secrets_are_not_printed() {
        let s = secret(0xAB);
        assert_eq!(format!("{s:?}"), "HopSecret(..)");
        assert_eq!(format!("{:?}", s.to_relay()), "HopKey(..)");
    }
}
