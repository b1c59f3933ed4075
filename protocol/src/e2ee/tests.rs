//! The key schedule and media sealing, driven as a meeting would drive them: a host and
//! joiners exchanging the blobs the relay carries, a rotation when someone is removed, and an
//! outsider (the relay, or someone who left) who must open nothing.

use super::*;

fn identity() -> MediaIdentity {
    MediaIdentity::generate().unwrap()
}

/// A host (id 1) and the keyrings of `joiners` more participants (ids 2, 3, …), each admitted
/// the way the relay relays it: knock → admit blob → JOINED → PARTICIPANT_JOINED to the others.
fn meeting(joiners: u32) -> Vec<MeetingKeyring> {
    let host_id = identity();
    let (host, _) = MeetingKeyring::join(host_id, 1, 1, [], None, None).unwrap();
    let mut rings = vec![host];
    for id in 2..2 + joiners {
        let me = identity();
        let public = me.public();
        rings[0].on_knock(u64::from(id), public);
        let blob = rings[0].admit(u64::from(id)).unwrap();
        let roster: Vec<_> = rings.iter().map(|r| (r.me, r.identity.public())).collect();
        let (ring, key) = MeetingKeyring::join(me, id, 1, roster, Some(&blob), None).unwrap();
        assert_eq!(Some(key.epoch()), rings[0].epoch());
        for other in &mut rings {
            let out = other.on_participant_joined(id, public).unwrap();
            // The host re-sends the current key; the joiner already has it and ignores it.
            if other.is_host() {
                assert_eq!(out.deliveries.len(), 1);
                let mut copy = clone_ring(&ring);
                assert!(matches!(
                    copy.on_media_key(1, &out.deliveries[0].media_key),
                    Err(KeyringError::NotNewer { .. })
                ));
            }
        }
        rings.push(ring);
    }
    rings
}

/// A keyring with the same identity and view (tests only need it to try one input).
fn clone_ring(ring: &MeetingKeyring) -> MeetingKeyring {
    MeetingKeyring {
        me: ring.me,
        identity: MediaIdentity { private: clone_private(&ring.identity), public: ring.identity.public },
        host: ring.host,
        members: ring.members.clone(),
        knocks: VecDeque::new(),
        key: ring.key.clone(),
    }
}

fn clone_private(identity: &MediaIdentity) -> PrivateKey {
    use aws_lc_rs::encoding::AsBigEndian;
    let bytes: aws_lc_rs::encoding::Curve25519SeedBin<'_> = identity.private.as_be_bytes().unwrap();
    PrivateKey::from_private_key(&X25519, bytes.as_ref()).unwrap()
}

fn seal(ring: &MeetingKeyring, sender: &mut MediaSealer, aad: &[u8], plain: &[u8]) -> Vec<u8> {
    sender.set_key(ring.key.as_ref().unwrap()).unwrap();
    let mut out = Vec::new();
    sender.seal(aad, plain, &mut out).unwrap();
    out
}

fn opener(ring: &MeetingKeyring) -> MediaOpener {
    let mut o = MediaOpener::new();
    o.install(ring.key.clone().unwrap());
    o
}

#[test]
fn a_sealed_meeting_key_opens_only_for_its_recipient_and_from_its_sealer() {
    let (host, guest, relay) = (identity(), identity(), identity());
    let key = MeetingKey::generate(7).unwrap();
    let blob = seal_meeting_key(&host, &guest.public(), &key).unwrap();
    assert_eq!(blob.len(), 2 * SEALED_MEETING_KEY_LEN);
    assert_eq!(open_meeting_key(&guest, &host.public(), &blob).unwrap(), key);
    // Whoever carries it cannot open it, even claiming to be either end.
    assert_eq!(open_meeting_key(&relay, &host.public(), &blob), Err(E2eeError::KeyBlobForged));
    assert_eq!(open_meeting_key(&relay, &guest.public(), &blob), Err(E2eeError::KeyBlobForged));
    // The recipient refuses it as coming from anyone else.
    assert_eq!(open_meeting_key(&guest, &relay.public(), &blob), Err(E2eeError::KeyBlobForged));
    // Any flipped bit, in the salt, the sealed key or the tag, is refused.
    for i in [0, 20, 2 * SEALED_MEETING_KEY_LEN - 1] {
        let mut bad = blob.clone().into_bytes();
        bad[i] = if bad[i] == b'0' { b'1' } else { b'0' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(open_meeting_key(&guest, &host.public(), &bad), Err(E2eeError::KeyBlobForged), "byte {i}");
    }
    assert_eq!(open_meeting_key(&guest, &host.public(), &blob[2..]), Err(E2eeError::BadKeyBlob));
    // Sealing twice never gives the same bytes (a fresh salt each time).
    assert_ne!(seal_meeting_key(&host, &guest.public(), &key).unwrap(), blob);
}

#[test]
fn media_opens_once_with_its_header_and_never_otherwise() {
    let key = MeetingKey::generate(1).unwrap();
    let mut sealer = MediaSealer::new(5);
    assert_eq!(sealer.seal(b"h", b"x", &mut Vec::new()), Err(E2eeError::NoKey));
    sealer.set_key(&key).unwrap();
    let mut opener = MediaOpener::new();
    opener.install(key.clone());
    let plain = b"\xff\xd8\xff a frame".to_vec();
    let mut sealed = Vec::new();
    sealer.seal(b"header", &plain, &mut sealed).unwrap();
    assert_eq!(sealed.len(), plain.len() + SEAL_OVERHEAD);
    assert!(!sealed.windows(3).any(|w| w == b"\xff\xd8\xff"), "the plaintext shows through");
    let mut out = Vec::new();
    // Another header, another sender id, a flipped byte: refused, and the window does not move.
    assert_eq!(opener.open(5, b"Header", &sealed, &mut out), Err(E2eeError::Forged));
    assert_eq!(opener.open(6, b"header", &sealed, &mut out), Err(E2eeError::Forged));
    let mut flipped = sealed.clone();
    flipped[SEALED_HEADER_LEN] ^= 1;
    assert_eq!(opener.open(5, b"header", &flipped, &mut out), Err(E2eeError::Forged));
    assert_eq!(opener.open(5, b"header", &sealed[..SEAL_OVERHEAD - 1], &mut out), Err(E2eeError::TooShort));
    opener.open(5, b"header", &sealed, &mut out).unwrap();
    assert_eq!(out, plain);
    assert_eq!(opener.open(5, b"header", &sealed, &mut out), Err(E2eeError::Replayed));
    // Counters are accepted out of order within the window; far behind is stale.
    let mut bodies = Vec::new();
    for _ in 0..3000 {
        let mut b = Vec::new();
        sealer.seal(b"header", b"a", &mut b).unwrap();
        bodies.push(b);
    }
    opener.open(5, b"header", &bodies[2999], &mut out).unwrap();
    opener.open(5, b"header", &bodies[2500], &mut out).unwrap();
    assert_eq!(opener.open(5, b"header", &bodies[10], &mut out), Err(E2eeError::Stale));
    // Sealed under a key we do not hold.
    let mut stranger = MediaSealer::new(8);
    stranger.set_key(&MeetingKey::generate(9).unwrap()).unwrap();
    let mut b = Vec::new();
    stranger.seal(b"header", b"a", &mut b).unwrap();
    assert_eq!(opener.open(8, b"header", &b, &mut out), Err(E2eeError::UnknownEpoch));
}

#[test]
fn after_a_rotation_the_previous_epoch_opens_until_its_sender_moves_on() {
    let (old, new) = (MeetingKey::generate(1).unwrap(), MeetingKey::generate(2).unwrap());
    let mut opener = MediaOpener::new();
    opener.install(old.clone());
    opener.install(new.clone());
    opener.install(old.clone());
    assert_eq!(opener.epochs(), vec![1, 2], "an older key never replaces a newer one");
    let mut sealer = MediaSealer::new(3);
    let mut out = Vec::new();
    let (mut a, mut b, mut c) = (Vec::new(), Vec::new(), Vec::new());
    sealer.set_key(&old).unwrap();
    sealer.seal(b"", b"in flight", &mut a).unwrap();
    sealer.seal(b"", b"late", &mut c).unwrap();
    sealer.set_key(&new).unwrap();
    sealer.seal(b"", b"new", &mut b).unwrap();
    opener.open(3, b"", &a, &mut out).unwrap();
    opener.open(3, b"", &b, &mut out).unwrap();
    assert_eq!(opener.open(3, b"", &c, &mut out), Err(E2eeError::OldEpoch));
    // A third epoch forgets the first.
    opener.install(MeetingKey::generate(3).unwrap());
    assert_eq!(opener.epochs(), vec![2, 3]);
}

#[test]
fn everyone_admitted_holds_the_hosts_key_and_reads_the_same_safety_code() {
    let rings = meeting(2);
    let codes: Vec<_> = rings.iter().map(|r| r.safety_code().unwrap()).collect();
    assert_eq!(codes[0], codes[1]);
    assert_eq!(codes[0], codes[2]);
    assert_eq!(codes[0].len(), 14);
    assert!(codes[0].chars().all(|c| c.is_ascii_digit() || c == ' '));
    // Media one participant seals, the others open.
    let mut sealer = MediaSealer::new(2);
    let body = seal(&rings[1], &mut sealer, b"aad", b"hello");
    let mut out = Vec::new();
    opener(&rings[0]).open(2, b"aad", &body, &mut out).unwrap();
    opener(&rings[2]).open(2, b"aad", &body, &mut out).unwrap();
    assert_eq!(out, b"hello");
}

#[test]
fn a_relay_that_swaps_in_its_own_public_key_shows_a_different_safety_code() {
    let mut rings = meeting(1);
    // The host's view with the guest's real key, and the guest's view if the relay had given
    // it a key of its own for the host: the codes differ, so reading them aloud exposes it.
    let honest = rings[0].safety_code().unwrap();
    rings[1].members.insert(1, identity().public());
    assert_ne!(rings[1].safety_code().unwrap(), honest);
}

#[test]
fn removing_someone_rotates_the_key_and_they_open_nothing_sent_after() {
    let mut rings = meeting(2);
    let removed = rings.pop().unwrap();
    let out = rings[0].on_participant_left(3).unwrap();
    let new_key = out.new_key.expect("the host rotates");
    assert_eq!(new_key.epoch(), 2);
    assert_eq!(out.deliveries.iter().map(|d| d.participant_id).collect::<Vec<_>>(), vec![2]);
    assert!(rings[1].on_participant_left(3).unwrap().new_key.is_none(), "only the host rotates");
    let got = rings[1].on_media_key(1, &out.deliveries[0].media_key).unwrap();
    assert_eq!(got, new_key);
    // The one who left cannot open the delivery, and opens no media of the new epoch.
    let mut removed = removed;
    assert!(removed.on_media_key(1, &out.deliveries[0].media_key).is_err());
    let mut sealer = MediaSealer::new(2);
    let body = seal(&rings[1], &mut sealer, b"aad", b"after");
    let mut out_buf = Vec::new();
    assert_eq!(opener(&removed).open(2, b"aad", &body, &mut out_buf), Err(E2eeError::UnknownEpoch));
    opener(&rings[0]).open(2, b"aad", &body, &mut out_buf).unwrap();
    assert_eq!(rings[0].safety_code(), rings[1].safety_code());
}

#[test]
fn keys_come_only_from_the_host_and_only_forward() {
    let mut rings = meeting(2);
    // Participant 2 cannot hand out keys, even well sealed ones.
    let mut two = clone_ring(&rings[1]);
    two.host = 2;
    let forged = two.rotate().unwrap();
    let to_three = &forged.deliveries.iter().find(|d| d.participant_id == 3).unwrap().media_key;
    assert_eq!(rings[2].on_media_key(2, to_three), Err(KeyringError::NotFromHost(2)));
    // From the host, an older key (replayed) is refused.
    let first = rings[0].on_participant_left(99).unwrap();
    let second = rings[0].on_participant_left(98).unwrap();
    let blob = |o: &KeyringOutput| o.deliveries.iter().find(|d| d.participant_id == 3).unwrap().media_key.clone();
    assert_eq!(rings[2].on_media_key(1, &blob(&second)).unwrap().epoch(), 3);
    assert_eq!(rings[2].on_media_key(1, &blob(&first)), Err(KeyringError::NotNewer { got: 2, have: 3 }));
}

#[test]
fn a_new_host_rotates_and_its_keys_are_accepted() {
    let mut rings = meeting(2);
    let old_host = rings.remove(0);
    // The relay's order: PARTICIPANT_LEFT, then HOST_CHANGED to the earliest joiner.
    for ring in &mut rings {
        assert!(ring.on_participant_left(1).unwrap().new_key.is_none());
    }
    let out = rings[0].on_host_changed(2).unwrap();
    assert_eq!(out.new_key.as_ref().map(MeetingKey::epoch), Some(2));
    assert!(rings[1].on_host_changed(2).unwrap().new_key.is_none());
    let blob = &out.deliveries[0].media_key;
    assert_eq!(rings[1].on_media_key(2, blob).unwrap().epoch(), 2);
    assert_eq!(rings[0].safety_code(), rings[1].safety_code());
    assert_ne!(old_host.safety_code(), rings[0].safety_code());
}

#[test]
fn a_joiner_admitted_across_a_rotation_gets_the_current_key() {
    let mut rings = meeting(1);
    let late = identity();
    let late_public = late.public();
    rings[0].on_knock(50, late_public);
    let stale_blob = rings[0].admit(50).unwrap();
    // Someone leaves before the relay processes the admission: the host rotates without them.
    let out = rings[0].on_participant_left(2).unwrap();
    assert!(out.deliveries.is_empty());
    let roster = [(1, rings[0].identity.public())];
    let (mut joiner, key) = MeetingKeyring::join(late, 3, 1, roster, Some(&stale_blob), None).unwrap();
    assert_eq!(key.epoch(), 1);
    // PARTICIPANT_JOINED reaches the host, which sends the current key.
    let resend = rings[0].on_participant_joined(3, late_public).unwrap();
    assert_eq!(joiner.on_media_key(1, &resend.deliveries[0].media_key).unwrap().epoch(), 2);
    joiner.members.insert(1, rings[0].identity.public());
    assert_eq!(joiner.safety_code(), rings[0].safety_code());
}

#[test]
fn admitting_needs_the_knocks_key_and_secrets_never_print() {
    let (mut host, key) = MeetingKeyring::join(identity(), 1, 1, [], None, None).unwrap();
    assert_eq!(host.admit(4), Err(KeyringError::UnknownKnock(4)));
    host.on_knock(4, identity().public());
    host.on_knock_withdrawn(4);
    assert_eq!(host.admit(4), Err(KeyringError::UnknownKnock(4)));
    assert_eq!(
        MeetingKeyring::join(identity(), 2, 1, [(1, identity().public())], None, None).err(),
        Some(KeyringError::MissingKey)
    );
    let printed = format!("{key:?} {host:?} {:?}", MediaSealer::new(1));
    let secret_hex = hex::encode(key.secret);
    assert!(!printed.contains(&secret_hex) && !printed.contains(&format!("{:?}", key.secret)), "{printed}");
    assert_eq!(MediaPublicKey::from_hex("zz"), Err(E2eeError::BadPublicKey));
    let p = identity().public();
    assert_eq!(MediaPublicKey::from_hex(&p.to_hex()), Ok(p));
}

#[test]
fn a_cohost_admits_with_the_key_it_holds_and_the_joiner_opens_it_with_the_cohosts_public_key() {
    let mut rings = meeting(1);
    let cohost_public = rings[1].identity.public();
    let late = identity();
    let late_public = late.public();
    rings[1].on_knock(9, late_public);
    let blob = rings[1].admit(9).unwrap();
    let roster: Vec<_> = rings.iter().map(|r| (r.me, r.identity.public())).collect();
    assert!(
        MeetingKeyring::join(
            MediaIdentity { private: clone_private(&late), public: late.public },
            3,
            1,
            roster.clone(),
            Some(&blob),
            None
        )
        .is_err(),
        "the host did not seal it"
    );
    let (joiner, key) = MeetingKeyring::join(late, 3, 1, roster, Some(&blob), Some(2)).unwrap();
    assert_eq!(Some(key.epoch()), rings[0].epoch());
    assert_eq!(joiner.members.get(&2), Some(&cohost_public));
}
