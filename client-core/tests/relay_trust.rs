//! Trust in a relay's certificate, end to end against real relays: first use pins it, a changed
//! certificate is refused until the user trusts it, an invitation's fingerprint overrides the
//! pin and a wrong one is refused, a CA-signed certificate needs no pin; and what a session
//! says over TCP (chat, a file) cannot be read on the wire.

mod common;

use client_core::net::control::ConnectError;
use client_core::{PinStore, RelayTrust, Session, SessionError, SessionEvent, SessionOptions, TrustedBy};
use common::*;
use relay_server::{CertificateSource, Relay, RelayConfig, RelayHandle};

async fn connect(relay: &str, trust: RelayTrust) -> Result<Session, SessionError> {
    let options = SessionOptions { trust, ..quiet() };
    Session::connect(relay, options).await.map(|(session, _events)| session)
}

/// A relay on exactly this TCP port (a restart on the same address).
async fn relay_on(port: u16, certificate: CertificateSource) -> RelayHandle {
    let config = RelayConfig { tcp_port: port, certificate, ..RelayConfig::for_tests() };
    Relay::start(config).await.expect("relay starts")
}

#[tokio::test]
async fn a_pinned_relay_with_a_new_certificate_is_refused_until_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let pins = PinStore::File(dir.path().join("relay-pins.json"));
    let first = start_relay().await;
    let port = first.tcp_addr().port();
    let addr = format!("127.0.0.1:{port}");

    let session = connect(&addr, RelayTrust::with_pins(pins.clone())).await.expect("first use connects");
    assert_eq!(session.relay_certificate().trusted_by, TrustedBy::FirstUse);
    assert_eq!(session.relay_certificate().fingerprint, first.certificate_fingerprint());
    assert_eq!(pins.pinned(&addr).unwrap(), Some(first.certificate_fingerprint()));
    session.close().await;
    let session = connect(&addr, RelayTrust::with_pins(pins.clone())).await.expect("the pin matches");
    assert_eq!(session.relay_certificate().trusted_by, TrustedBy::Pin);
    session.close().await;
    let old = first.certificate_fingerprint();
    first.shutdown().await;

    // The relay comes back on the same address with a new certificate.
    let second = relay_on(port, CertificateSource::SelfSigned).await;
    let new = second.certificate_fingerprint();
    assert_ne!(new, old);
    match connect(&addr, RelayTrust::with_pins(pins.clone())).await {
        Err(SessionError::Connect(ConnectError::CertificateChanged { relay, pinned, presented })) => {
            assert_eq!((relay.as_str(), pinned, presented), (addr.as_str(), old, new));
        }
        other => panic!("a changed certificate must be refused, got {:?}", other.map(|_| ())),
    }
    assert_eq!(second.stats().control_connections, 0, "nothing was said to the relay");
    assert_eq!(pins.pinned(&addr).unwrap(), Some(old), "the refusal keeps the old pin");

    // The user learns the relay was reinstalled and trusts the new certificate.
    pins.trust(&addr, new).unwrap();
    let session = connect(&addr, RelayTrust::with_pins(pins.clone())).await.expect("trusted now");
    assert_eq!(session.relay_certificate().trusted_by, TrustedBy::Pin);
    session.close().await;
    second.shutdown().await;
}

#[tokio::test]
async fn an_invitation_s_fingerprint_connects_without_a_prompt_and_a_wrong_one_is_refused() {
    let relay = start_relay().await;
    let addr = relay.tcp_addr().to_string();
    let pins = PinStore::default();
    // An old pin for this address, from a relay that was there before.
    let stale = relay_server::Fingerprint::of_certificate(b"an older certificate");
    pins.trust(&addr, stale).unwrap();

    let invited = RelayTrust { expected: Some(relay.certificate_fingerprint()), ..RelayTrust::with_pins(pins.clone()) };
    let session = connect(&addr, invited).await.expect("the invitation's fingerprint is enough");
    assert_eq!(session.relay_certificate().trusted_by, TrustedBy::Invitation);
    assert_eq!(pins.pinned(&addr).unwrap(), Some(relay.certificate_fingerprint()), "and it is pinned");
    session.close().await;

    let wrong = RelayTrust::expecting(stale);
    match connect(&addr, wrong).await {
        Err(SessionError::Connect(ConnectError::NotTheInvitedRelay { expected, presented, .. })) => {
            assert_eq!((expected, presented), (stale, relay.certificate_fingerprint()));
        }
        other => panic!("a wrong invitation fingerprint must be refused, got {:?}", other.map(|_| ())),
    }
    relay.shutdown().await;
}

#[tokio::test]
async fn a_ca_signed_relay_needs_no_pin() {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let issue = |name: &str| {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
        let (cert_path, key_path) = (dir.path().join(format!("{name}.crt")), dir.path().join(format!("{name}.key")));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        CertificateSource::Files { cert: cert_path, key: key_path }
    };
    let pins = PinStore::default();
    let trust = RelayTrust { extra_roots: vec![ca.der().clone()], ..RelayTrust::with_pins(pins.clone()) };

    let relay = relay_on(0, issue("first")).await;
    let port = relay.tcp_addr().port();
    let by_name = format!("localhost:{port}");
    let session = connect(&by_name, trust.clone()).await.expect("a CA-signed certificate for the name");
    assert_eq!(session.relay_certificate().trusted_by, TrustedBy::CertificateAuthority);
    assert_eq!(session.relay_certificate().invitation_pin(), None, "invitations carry no pin");
    assert_eq!(pins.pinned(&by_name).unwrap(), None, "nothing to pin");
    session.close().await;
    relay.shutdown().await;

    // Renewed: another certificate from the same CA is accepted as quietly.
    let renewed = relay_on(port, issue("renewed")).await;
    let session = connect(&by_name, trust.clone()).await.expect("a renewed certificate");
    assert_eq!(session.relay_certificate().trusted_by, TrustedBy::CertificateAuthority);
    session.close().await;
    // Reached by an address the certificate does not name, it is one more unknown relay.
    let by_ip = format!("127.0.0.1:{port}");
    let session = connect(&by_ip, trust).await.expect("first use");
    assert_eq!(session.relay_certificate().trusted_by, TrustedBy::FirstUse);
    session.close().await;
    renewed.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_names_and_files_are_unreadable_on_the_wire() {
    let relay = start_relay().await;
    let (tapped, seen) = tcp_tap(LOOPBACK, relay.tcp_addr()).await;
    let tapped = tapped.to_string();
    let host = Bot::connect(&tapped, quiet()).await;
    let guest = Bot::connect(&tapped, quiet()).await;
    let (code, _) = create(&host, "canary-host-name").await;
    admit(&host, &guest, &code, "canary-guest-name").await;

    host.session.send_chat("canary-chat-8d1f").await.unwrap();
    guest
        .wait("the chat message", LONG, |e| match e {
            SessionEvent::Chat { message } if message.text == "canary-chat-8d1f" => Some(()),
            _ => None,
        })
        .await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("canary-file-name.txt");
    let content = "canary-file-content-3b7e ".repeat(4096);
    std::fs::write(&file, &content).unwrap();
    host.session.send_file(&file).await.unwrap();
    let offer = guest
        .wait("the file offer", LONG, |e| match e {
            SessionEvent::FileOffer { file } => Some(file.clone()),
            _ => None,
        })
        .await;
    let mark = guest.mark();
    guest.session.accept_file(offer.file_id, dir.path().join("in")).await.unwrap();
    let saved = guest
        .wait_from(mark, "the download", LONG, |e| match e {
            SessionEvent::FileDone { file_id, path, verified: true, .. } if *file_id == offer.file_id => {
                Some(path.clone())
            }
            _ => None,
        })
        .await;
    assert_eq!(std::fs::read_to_string(saved).unwrap(), content, "the file arrived intact");

    let wire = seen.lock().unwrap().clone();
    assert!(wire.len() > content.len(), "the tap saw the transfer ({} bytes)", wire.len());
    for canary in [
        "canary-chat-8d1f",
        "canary-file-content-3b7e",
        "canary-file-name",
        "canary-host-name",
        "canary-guest-name",
        &code,
        "HELLO",
    ] {
        let found = wire.windows(canary.len()).any(|w| w == canary.as_bytes());
        assert!(!found, "`{canary}` is readable in the TCP bytes");
    }
    host.close().await;
    guest.close().await;
    relay.shutdown().await;
}
