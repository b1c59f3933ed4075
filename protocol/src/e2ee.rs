//! End-to-end media encryption: the meeting key, how it reaches each participant, and how
//! every video frame and audio packet is sealed under it so that the relay forwards media it
//! cannot read.
//!
//! - **Identities.** Each participant makes an X25519 key pair ([`MediaIdentity`]) for the
//!   meeting and sends its public key with `CREATE_MEETING` or `JOIN_REQUEST`; the relay shows
//!   it to the host in `KNOCK` and to everyone in the roster.
//! - **The meeting key** ([`MeetingKey`]): 32 random bytes and an epoch, made by the host's
//!   client. The host seals it to each participant ([`seal_meeting_key`]): an AES-256-GCM key
//!   from HKDF-SHA256 over the X25519 agreement of the host's private key and the recipient's
//!   public key, a random salt and both public keys. The relay carries these 68-byte blobs
//!   (`ADMIT` → `JOINED`, `MEDIA_KEYS` → `MEDIA_KEY`) and cannot open them.
//! - **Rotation.** When anyone leaves or is removed the host makes a key of the next epoch and
//!   seals it to everyone still there, so a participant who left can read nothing sent after;
//!   a new host takes the rotation over. [`MeetingKeyring`] is that state machine, sans-IO.
//! - **Sealing** ([`MediaSealer`], [`MediaOpener`]): each sender has its own AES-256-GCM key,
//!   HKDF(meeting key, epoch, sender id). A sealed body is `key_epoch (4) ‖ counter (8) ‖
//!   ciphertext ‖ tag (16)`; the nonce is the sender id and the counter, which never repeats;
//!   the associated data are the packet's routing header fields the relay does not rewrite.
//!   Receivers keep a replay window on each sender's counter and, per sender, refuse an epoch
//!   older than the newest they have opened from that sender.
//! - **Safety code** ([`safety_code`]): twelve digits from the meeting key and everyone's
//!   public key, which participants can read aloud to each other: equal codes mean nobody,
//!   the relay included, put itself between them.
//!
//! Secrets print as `(..)`. Nothing here holds a socket, a thread or a clock.

use std::collections::{BTreeMap, HashMap, VecDeque};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::agreement::{self, PrivateKey, UnparsedPublicKey, X25519};
use aws_lc_rs::hkdf::{Salt, HKDF_SHA256};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::control::{KeyDelivery, ParticipantId};
use crate::replay::{Replay, ReplayWindow};

/// Length of an X25519 public key.
pub const MEDIA_PUBLIC_KEY_LEN: usize = 32;
/// Length of a meeting key's secret.
pub const MEETING_KEY_LEN: usize = 32;
/// Length of the salt at the start of a sealed meeting key.
pub const KEY_BLOB_SALT_LEN: usize = 16;
/// Length of the authentication tag of every AES-256-GCM seal here.
pub const TAG_LEN: usize = 16;
/// Length of a sealed meeting key: salt, sealed epoch and secret, tag.
pub const SEALED_MEETING_KEY_LEN: usize = KEY_BLOB_SALT_LEN + 4 + MEETING_KEY_LEN + TAG_LEN;
/// Length of what precedes the ciphertext of a sealed media body: key epoch and counter.
pub const SEALED_HEADER_LEN: usize = 4 + 8;
/// Bytes sealing adds to a media body.
pub const SEAL_OVERHEAD: usize = SEALED_HEADER_LEN + TAG_LEN;
/// HKDF info prefix of the key that seals a meeting key to one participant.
pub const KEY_BLOB_INFO: &[u8] = b"parlor media key v1";
/// HKDF info prefix of a sender's media key.
pub const SENDER_KEY_INFO: &[u8] = b"parlor sender key v1";
/// Hash prefix of the safety code.
pub const SAFETY_CODE_INFO: &[u8] = b"parlor safety code v1";
/// Senders a [`MediaOpener`] keeps replay windows for (the relay's participant limit is below).
pub const MAX_SENDERS: usize = 256;
/// Knocks whose public keys a [`MeetingKeyring`] remembers (the relay bounds its waiting room
/// far below this).
pub const MAX_REMEMBERED_KNOCKS: usize = 1024;

/// Why something here failed. Never carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum E2eeError {
    #[error("not a {MEDIA_PUBLIC_KEY_LEN}-byte public key in hex")]
    BadPublicKey,
    #[error("not a {SEALED_MEETING_KEY_LEN}-byte sealed meeting key in hex")]
    BadKeyBlob,
    #[error("the sealed meeting key does not open with these keys")]
    KeyBlobForged,
    #[error("the key agreement failed")]
    Agreement,
    #[error("the system random generator failed")]
    Random,
    #[error("no meeting key yet")]
    NoKey,
    #[error("sealed body shorter than its header and tag")]
    TooShort,
    #[error("no key for this epoch")]
    UnknownEpoch,
    #[error("an epoch older than this sender already used")]
    OldEpoch,
    #[error("authentication tag does not match")]
    Forged,
    #[error("counter already accepted from this sender")]
    Replayed,
    #[error("counter older than the replay window")]
    Stale,
    #[error("too many senders")]
    TooManySenders,
}

impl From<Replay> for E2eeError {
    fn from(r: Replay) -> Self {
        match r {
            Replay::Duplicate => E2eeError::Replayed,
            Replay::Stale => E2eeError::Stale,
        }
    }
}

/// A participant's X25519 public key, as the roster carries it (lower-case hex on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MediaPublicKey(pub [u8; MEDIA_PUBLIC_KEY_LEN]);

impl MediaPublicKey {
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, E2eeError> {
        let mut key = [0u8; MEDIA_PUBLIC_KEY_LEN];
        hex::decode_to_slice(s, &mut key).map_err(|_| E2eeError::BadPublicKey)?;
        Ok(Self(key))
    }
}

/// Checks that `s` is a sealed meeting key's hex form (the relay's check; it cannot open it).
pub fn is_valid_key_blob(s: &str) -> bool {
    s.len() == 2 * SEALED_MEETING_KEY_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks that `s` is a public key's hex form.
pub fn is_valid_public_key(s: &str) -> bool {
    MediaPublicKey::from_hex(s).is_ok()
}

/// A participant's X25519 key pair for one session. The private key never leaves it.
pub struct MediaIdentity {
    private: PrivateKey,
    public: MediaPublicKey,
}

impl std::fmt::Debug for MediaIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MediaIdentity({})", self.public.to_hex())
    }
}

impl MediaIdentity {
    /// A new random key pair.
    pub fn generate() -> Result<Self, E2eeError> {
        let private = PrivateKey::generate(&X25519).map_err(|_| E2eeError::Random)?;
        Self::from_private(private)
    }

    /// The key pair of a known private key (the checked examples in docs/protocol.md).
    pub fn from_private_bytes(bytes: &[u8; 32]) -> Result<Self, E2eeError> {
        let private = PrivateKey::from_private_key(&X25519, bytes).map_err(|_| E2eeError::Agreement)?;
        Self::from_private(private)
    }

    fn from_private(private: PrivateKey) -> Result<Self, E2eeError> {
        let public = private.compute_public_key().map_err(|_| E2eeError::Agreement)?;
        let public = MediaPublicKey(public.as_ref().try_into().map_err(|_| E2eeError::Agreement)?);
        Ok(Self { private, public })
    }

    pub fn public(&self) -> MediaPublicKey {
        self.public
    }

    /// The AES-256-GCM key that seals a meeting key between us and `peer` (the same on both
    /// ends): HKDF-SHA256 with `salt` over the X25519 agreement, info = [`KEY_BLOB_INFO`] ‖
    /// sealer's public key ‖ recipient's public key.
    fn blob_key(
        &self,
        peer: &MediaPublicKey,
        salt: &[u8],
        sealer: &MediaPublicKey,
        recipient: &MediaPublicKey,
    ) -> Result<LessSafeKey, E2eeError> {
        let peer = UnparsedPublicKey::new(&X25519, peer.0);
        let okm = agreement::agree(&self.private, peer, E2eeError::Agreement, |shared| {
            let prk = Salt::new(HKDF_SHA256, salt).extract(shared);
            let info = [KEY_BLOB_INFO, &sealer.0[..], &recipient.0[..]];
            let mut okm = [0u8; 32];
            prk.expand(&info, HKDF_SHA256).and_then(|o| o.fill(&mut okm)).map_err(|_| E2eeError::Agreement)?;
            Ok(okm)
        })?;
        aead_key(&okm)
    }
}

fn aead_key(bytes: &[u8; 32]) -> Result<LessSafeKey, E2eeError> {
    UnboundKey::new(&AES_256_GCM, bytes).map(LessSafeKey::new).map_err(|_| E2eeError::Agreement)
}

fn random<const N: usize>() -> Result<[u8; N], E2eeError> {
    let mut bytes = [0u8; N];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| E2eeError::Random)?;
    Ok(bytes)
}

/// The meeting's media key of one epoch. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct MeetingKey {
    epoch: u32,
    secret: [u8; MEETING_KEY_LEN],
}

impl std::fmt::Debug for MeetingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MeetingKey(epoch {}, ..)", self.epoch)
    }
}

impl MeetingKey {
    /// A fresh random key for `epoch`.
    pub fn generate(epoch: u32) -> Result<Self, E2eeError> {
        Ok(Self { epoch, secret: random()? })
    }

    /// A key with known bytes (tests and the checked examples).
    pub fn from_bytes(epoch: u32, secret: [u8; MEETING_KEY_LEN]) -> Self {
        Self { epoch, secret }
    }

    pub fn epoch(&self) -> u32 {
        self.epoch
    }

    /// Sender `sender_id`'s AES-256-GCM key of this epoch: HKDF-SHA256, salt = the epoch
    /// (4 bytes, big-endian), IKM = the meeting key, info = [`SENDER_KEY_INFO`] ‖ sender id.
    fn sender_key(&self, sender_id: u32) -> Result<LessSafeKey, E2eeError> {
        let prk = Salt::new(HKDF_SHA256, &self.epoch.to_be_bytes()).extract(&self.secret);
        let id = sender_id.to_be_bytes();
        let info = [SENDER_KEY_INFO, &id[..]];
        let mut okm = [0u8; 32];
        prk.expand(&info, HKDF_SHA256).and_then(|o| o.fill(&mut okm)).map_err(|_| E2eeError::Agreement)?;
        aead_key(&okm)
    }
}

/// Seals `key` to `recipient`: `salt (16) ‖ AES-256-GCM(epoch (4) ‖ key (32)) ‖ tag (16)`,
/// under [`MediaIdentity::blob_key`] with a zero nonce (the key is new for every salt), as
/// lower-case hex.
pub fn seal_meeting_key(
    sealer: &MediaIdentity,
    recipient: &MediaPublicKey,
    key: &MeetingKey,
) -> Result<String, E2eeError> {
    seal_meeting_key_with_salt(sealer, recipient, key, random()?)
}

/// [`seal_meeting_key`] with a given salt (the checked examples).
pub fn seal_meeting_key_with_salt(
    sealer: &MediaIdentity,
    recipient: &MediaPublicKey,
    key: &MeetingKey,
    salt: [u8; KEY_BLOB_SALT_LEN],
) -> Result<String, E2eeError> {
    let aead = sealer.blob_key(recipient, &salt, &sealer.public, recipient)?;
    let mut blob = Vec::with_capacity(SEALED_MEETING_KEY_LEN);
    blob.extend_from_slice(&salt);
    blob.extend_from_slice(&key.epoch.to_be_bytes());
    blob.extend_from_slice(&key.secret);
    let tag = aead
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key([0; NONCE_LEN]),
            Aad::empty(),
            &mut blob[KEY_BLOB_SALT_LEN..],
        )
        .map_err(|_| E2eeError::Agreement)?;
    blob.extend_from_slice(tag.as_ref());
    Ok(hex::encode(blob))
}

/// Opens a meeting key `sealer` sealed to us.
pub fn open_meeting_key(me: &MediaIdentity, sealer: &MediaPublicKey, blob: &str) -> Result<MeetingKey, E2eeError> {
    if !is_valid_key_blob(blob) {
        return Err(E2eeError::BadKeyBlob);
    }
    let mut bytes = hex::decode(blob).map_err(|_| E2eeError::BadKeyBlob)?;
    let (salt, sealed) = bytes.split_at_mut(KEY_BLOB_SALT_LEN);
    let aead = me.blob_key(sealer, salt, sealer, &me.public)?;
    let plain = aead
        .open_in_place(Nonce::assume_unique_for_key([0; NONCE_LEN]), Aad::empty(), sealed)
        .map_err(|_| E2eeError::KeyBlobForged)?;
    let epoch = u32::from_be_bytes([plain[0], plain[1], plain[2], plain[3]]);
    let mut secret = [0u8; MEETING_KEY_LEN];
    secret.copy_from_slice(&plain[4..4 + MEETING_KEY_LEN]);
    Ok(MeetingKey { epoch, secret })
}

/// The twelve-digit safety code (three groups of four) of `key` and the roster's public keys:
/// the first 8 bytes of SHA-256([`SAFETY_CODE_INFO`] ‖ epoch ‖ key ‖ each member's id and
/// public key in id order), as a number modulo 10¹².
pub fn safety_code(key: &MeetingKey, members: &BTreeMap<ParticipantId, MediaPublicKey>) -> String {
    let mut h = Sha256::new();
    h.update(SAFETY_CODE_INFO);
    h.update(key.epoch.to_be_bytes());
    h.update(key.secret);
    for (id, public) in members {
        h.update(id.to_be_bytes());
        h.update(public.0);
    }
    let digest = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(first) % 1_000_000_000_000;
    let digits = format!("{n:012}");
    format!("{} {} {}", &digits[0..4], &digits[4..8], &digits[8..12])
}

fn nonce(sender_id: u32, counter: u64) -> Nonce {
    let mut n = [0u8; NONCE_LEN];
    n[..4].copy_from_slice(&sender_id.to_be_bytes());
    n[4..].copy_from_slice(&counter.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals what one sender sends: its video frames and audio packets share one counter, so a
/// nonce is never used twice under a key.
pub struct MediaSealer {
    sender_id: u32,
    key: Option<(u32, LessSafeKey)>,
    counter: u64,
}

impl std::fmt::Debug for MediaSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSealer")
            .field("sender_id", &self.sender_id)
            .field("epoch", &self.key.as_ref().map(|(e, _)| *e))
            .field("counter", &self.counter)
            .finish()
    }
}

impl MediaSealer {
    pub fn new(sender_id: u32) -> Self {
        Self { sender_id, key: None, counter: 0 }
    }

    /// Seals under `key` from now on (the counter carries on).
    pub fn set_key(&mut self, key: &MeetingKey) -> Result<(), E2eeError> {
        self.key = Some((key.epoch, key.sender_key(self.sender_id)?));
        Ok(())
    }

    /// The epoch sealed under, if any.
    pub fn epoch(&self) -> Option<u32> {
        self.key.as_ref().map(|(e, _)| *e)
    }

    /// Writes `key_epoch ‖ counter ‖ ciphertext ‖ tag` of `plaintext` to `out` (cleared
    /// first), authenticating `aad` too.
    pub fn seal(&mut self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), E2eeError> {
        let Some((epoch, key)) = &self.key else { return Err(E2eeError::NoKey) };
        let counter = self.counter;
        self.counter += 1;
        out.clear();
        out.reserve(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&epoch.to_be_bytes());
        out.extend_from_slice(&counter.to_be_bytes());
        out.extend_from_slice(plaintext);
        let tag = key
            .seal_in_place_separate_tag(nonce(self.sender_id, counter), Aad::from(aad), &mut out[SEALED_HEADER_LEN..])
            .map_err(|_| E2eeError::Agreement)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }
}

/// What a receiver knows about one sender.
struct SenderState {
    window: ReplayWindow,
    /// Newest epoch opened from this sender; older ones are refused from then on.
    newest_epoch: u32,
}

/// Opens what the other participants send: the meeting keys of the current and the previous
/// epoch (media sealed just before a rotation is still in flight), the senders' keys derived
/// from them, and a replay window per sender.
pub struct MediaOpener {
    /// Newest last; at most two.
    keys: VecDeque<MeetingKey>,
    sender_keys: HashMap<(u32, u32), LessSafeKey>,
    senders: HashMap<u32, SenderState>,
}

impl std::fmt::Debug for MediaOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaOpener")
            .field("epochs", &self.keys.iter().map(|k| k.epoch).collect::<Vec<_>>())
            .field("senders", &self.senders.len())
            .finish()
    }
}

impl Default for MediaOpener {
    fn default() -> Self {
        Self::new()
    }
}

impl MediaOpener {
    pub fn new() -> Self {
        Self { keys: VecDeque::new(), sender_keys: HashMap::new(), senders: HashMap::new() }
    }

    /// Accepts `key`: it becomes the newest, the one before it stays for media in flight, any
    /// older one is forgotten. A key no newer than the newest is ignored.
    pub fn install(&mut self, key: MeetingKey) {
        if self.keys.back().is_some_and(|k| k.epoch >= key.epoch) {
            return;
        }
        self.keys.push_back(key);
        while self.keys.len() > 2 {
            self.keys.pop_front();
        }
        let kept: Vec<u32> = self.keys.iter().map(|k| k.epoch).collect();
        self.sender_keys.retain(|(_, epoch), _| kept.contains(epoch));
    }

    /// Epochs that open media, oldest first.
    pub fn epochs(&self) -> Vec<u32> {
        self.keys.iter().map(|k| k.epoch).collect()
    }

    /// Forgets a sender who left.
    pub fn forget_sender(&mut self, sender_id: u32) {
        self.senders.remove(&sender_id);
        self.sender_keys.retain(|(id, _), _| *id != sender_id);
    }

    /// Opens `sealed` from `sender_id` into `out` (cleared first), checking `aad`. Refuses a
    /// replayed or stale counter, an epoch we hold no key for or one older than this sender
    /// already used, and any tampering; only an authentic body moves the replay window.
    pub fn open(&mut self, sender_id: u32, aad: &[u8], sealed: &[u8], out: &mut Vec<u8>) -> Result<(), E2eeError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(E2eeError::TooShort);
        }
        let epoch = u32::from_be_bytes([sealed[0], sealed[1], sealed[2], sealed[3]]);
        let mut c = [0u8; 8];
        c.copy_from_slice(&sealed[4..SEALED_HEADER_LEN]);
        let counter = u64::from_be_bytes(c);
        if let Some(state) = self.senders.get(&sender_id) {
            state.window.check(counter)?;
            if epoch < state.newest_epoch {
                return Err(E2eeError::OldEpoch);
            }
        } else if self.senders.len() >= MAX_SENDERS {
            return Err(E2eeError::TooManySenders);
        }
        // A key derived for a body that then fails to open is not kept: the cache holds keys of
        // senders that have sent something authentic (at most two epochs each), so forged
        // sender ids cannot grow it.
        let derived = match self.sender_keys.get(&(sender_id, epoch)) {
            Some(_) => None,
            None => {
                let meeting_key = self.keys.iter().find(|k| k.epoch == epoch).ok_or(E2eeError::UnknownEpoch)?;
                Some(meeting_key.sender_key(sender_id)?)
            }
        };
        let key = match &derived {
            Some(key) => key,
            None => self.sender_keys.get(&(sender_id, epoch)).ok_or(E2eeError::UnknownEpoch)?,
        };
        out.clear();
        out.extend_from_slice(&sealed[SEALED_HEADER_LEN..]);
        let plain_len =
            key.open_in_place(nonce(sender_id, counter), Aad::from(aad), out).map_err(|_| E2eeError::Forged)?.len();
        out.truncate(plain_len);
        if let Some(key) = derived {
            self.sender_keys.insert((sender_id, epoch), key);
        }
        let state = self
            .senders
            .entry(sender_id)
            .or_insert_with(|| SenderState { window: ReplayWindow::new(), newest_epoch: 0 });
        state.window.accept(counter)?;
        state.newest_epoch = state.newest_epoch.max(epoch);
        Ok(())
    }
}

/// What the keyring asks its driver to do after an input.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct KeyringOutput {
    /// A new meeting key: seal and open media with it from now on.
    pub new_key: Option<MeetingKey>,
    /// Keys to send to participants in one `MEDIA_KEYS` (we are the host).
    pub deliveries: Vec<KeyDelivery>,
}

/// One participant's view of the meeting's keys: who is in the meeting with which public key,
/// who is host, and the current meeting key. As host it makes, seals and rotates the key; as
/// anyone else it accepts keys only from the host, and only newer ones. Sans-IO: the driver
/// feeds it the control messages that matter and sends what it returns.
pub struct MeetingKeyring {
    me: ParticipantId,
    identity: MediaIdentity,
    host: ParticipantId,
    members: BTreeMap<ParticipantId, MediaPublicKey>,
    knocks: VecDeque<(u64, MediaPublicKey)>,
    key: Option<MeetingKey>,
}

impl std::fmt::Debug for MeetingKeyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeetingKeyring")
            .field("me", &self.me)
            .field("host", &self.host)
            .field("members", &self.members.keys().collect::<Vec<_>>())
            .field("epoch", &self.epoch())
            .finish()
    }
}

/// Why the keyring refused an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum KeyringError {
    #[error(transparent)]
    Crypto(#[from] E2eeError),
    #[error("a media key from participant {0}, who is not the host")]
    NotFromHost(ParticipantId),
    #[error("a media key of epoch {got}, not newer than our epoch {have}")]
    NotNewer { got: u32, have: u32 },
    #[error("no public key for participant {0}")]
    UnknownParticipant(ParticipantId),
    #[error("no public key for knock {0}")]
    UnknownKnock(u64),
    #[error("the meeting key arrived without the host's seal")]
    MissingKey,
}

impl MeetingKeyring {
    /// The keyring of participant `me`, entering a meeting whose host is `host`, with the
    /// roster's public keys. The host's own keyring makes the first key (epoch 1); anyone
    /// else's opens `sealed_key`, the blob from `JOINED` sealed by the moderator who admitted
    /// it (`JOINED.media_key_from`; `None`: the host).
    pub fn join(
        identity: MediaIdentity,
        me: ParticipantId,
        host: ParticipantId,
        roster: impl IntoIterator<Item = (ParticipantId, MediaPublicKey)>,
        sealed_key: Option<&str>,
        sealed_by: Option<ParticipantId>,
    ) -> Result<(Self, MeetingKey), KeyringError> {
        let members: BTreeMap<_, _> = roster.into_iter().collect();
        let mut ring = Self { me, identity, host, members, knocks: VecDeque::new(), key: None };
        let key = match sealed_key {
            Some(blob) => {
                let sealer = sealed_by.unwrap_or(host);
                let sealer_public = *ring.members.get(&sealer).ok_or(KeyringError::UnknownParticipant(sealer))?;
                open_meeting_key(&ring.identity, &sealer_public, blob)?
            }
            None if host == me => MeetingKey::generate(1)?,
            None => return Err(KeyringError::MissingKey),
        };
        ring.members.insert(me, ring.identity.public());
        ring.key = Some(key.clone());
        Ok((ring, key))
    }

    pub fn epoch(&self) -> Option<u32> {
        self.key.as_ref().map(|k| k.epoch)
    }

    pub fn is_host(&self) -> bool {
        self.host == self.me
    }

    /// The safety code of the current key and roster.
    pub fn safety_code(&self) -> Option<String> {
        self.key.as_ref().map(|k| safety_code(k, &self.members))
    }

    /// (host or co-host) A knock's public key, remembered until it is admitted.
    pub fn on_knock(&mut self, request_id: u64, public: MediaPublicKey) {
        self.knocks.retain(|(id, _)| *id != request_id);
        if self.knocks.len() >= MAX_REMEMBERED_KNOCKS {
            self.knocks.pop_front();
        }
        self.knocks.push_back((request_id, public));
    }

    /// (host or co-host) A knock went away.
    pub fn on_knock_withdrawn(&mut self, request_id: u64) {
        self.knocks.retain(|(id, _)| *id != request_id);
    }

    /// (host or co-host) The current key sealed to knock `request_id`, for `ADMIT`.
    pub fn admit(&mut self, request_id: u64) -> Result<String, KeyringError> {
        let public = self
            .knocks
            .iter()
            .find(|(id, _)| *id == request_id)
            .map(|(_, p)| *p)
            .ok_or(KeyringError::UnknownKnock(request_id))?;
        let key = self.key.as_ref().ok_or(KeyringError::MissingKey)?;
        let blob = seal_meeting_key(&self.identity, &public, key)?;
        self.on_knock_withdrawn(request_id);
        Ok(blob)
    }

    /// Someone joined. As host we send them the current key: they may have been admitted
    /// with an older one (a rotation crossed their admission, or a previous host let them in).
    pub fn on_participant_joined(
        &mut self,
        id: ParticipantId,
        public: MediaPublicKey,
    ) -> Result<KeyringOutput, KeyringError> {
        self.members.insert(id, public);
        if !self.is_host() || id == self.me {
            return Ok(KeyringOutput::default());
        }
        let key = self.key.as_ref().ok_or(KeyringError::MissingKey)?;
        let media_key = seal_meeting_key(&self.identity, &public, key)?;
        Ok(KeyringOutput { new_key: None, deliveries: vec![KeyDelivery { participant_id: id, media_key }] })
    }

    /// Someone left or was removed. As host we rotate.
    pub fn on_participant_left(&mut self, id: ParticipantId) -> Result<KeyringOutput, KeyringError> {
        self.members.remove(&id);
        if self.is_host() {
            self.rotate()
        } else {
            Ok(KeyringOutput::default())
        }
    }

    /// The host role moved to `host`. If it is us, the previous host left: we rotate.
    pub fn on_host_changed(&mut self, host: ParticipantId) -> Result<KeyringOutput, KeyringError> {
        let was_host = self.is_host();
        self.host = host;
        if self.is_host() && !was_host {
            self.rotate()
        } else {
            Ok(KeyringOutput::default())
        }
    }

    /// A `MEDIA_KEY` from participant `from`: accepted only from the host and only newer.
    pub fn on_media_key(&mut self, from: ParticipantId, blob: &str) -> Result<MeetingKey, KeyringError> {
        if from != self.host {
            return Err(KeyringError::NotFromHost(from));
        }
        let host_public = *self.members.get(&from).ok_or(KeyringError::UnknownParticipant(from))?;
        let key = open_meeting_key(&self.identity, &host_public, blob)?;
        let have = self.epoch().unwrap_or(0);
        if key.epoch <= have {
            return Err(KeyringError::NotNewer { got: key.epoch, have });
        }
        self.key = Some(key.clone());
        Ok(key)
    }

    /// A key of the next epoch, sealed to everyone else.
    fn rotate(&mut self) -> Result<KeyringOutput, KeyringError> {
        let epoch = self.epoch().unwrap_or(0).wrapping_add(1).max(1);
        let key = MeetingKey::generate(epoch)?;
        let mut deliveries = Vec::with_capacity(self.members.len());
        for (&participant_id, public) in self.members.iter().filter(|(id, _)| **id != self.me) {
            deliveries.push(KeyDelivery { participant_id, media_key: seal_meeting_key(&self.identity, public, &key)? });
        }
        self.key = Some(key.clone());
        Ok(KeyringOutput { new_key: Some(key), deliveries })
    }
}

#[cfg(test)]
mod tests;
