//! Which relay certificates a client trusts, and the TLS handshake on its TCP connections.
//!
//! A relay's certificate is accepted when (docs/protocol.md §1.1):
//! 1. it is the one an invitation names (its SHA-256 fingerprint, [`RelayTrust::expecting`]);
//!    anything else is refused as [`ConnectError::NotTheInvitedRelay`];
//! 2. or it verifies against the system's root certificates for the relay's name (a relay
//!    with a CA-signed certificate needs no pin);
//! 3. or it is the one pinned for this relay address in the [`PinStore`];
//! 4. or no certificate is pinned for this address yet: it is trusted on first use and pinned.
//!
//! A pinned address presenting another certificate is refused as
//! [`ConnectError::CertificateChanged`], never accepted silently: the user decides, with
//! [`PinStore::trust`], whether the relay was reinstalled or someone is in the way.
//!
//! A session's file connections are pinned to the certificate its control connection saw.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use protocol::fingerprint::Fingerprint;
use protocol::tls::{CertificateDecision, Verifier};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::RootCertStore;
use tokio::net::TcpStream;
use tracing::{info, warn};

use super::control::ConnectError;

/// A TCP connection to the relay after its TLS handshake.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// Where a client keeps the certificate fingerprints it pinned, one per relay address.
#[derive(Debug, Clone)]
pub enum PinStore {
    /// Kept for the life of the process (bots, tests).
    Memory(Arc<Mutex<BTreeMap<String, Fingerprint>>>),
    /// Kept in a JSON file (`{"relay.example.org:5000": "<64 hex digits>"}`), as the app does.
    File(PathBuf),
}

/// Two stores are equal when they are the same file, or maps in memory holding the same pins.
impl PartialEq for PinStore {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Memory(a), Self::Memory(b)) => {
                Arc::ptr_eq(a, b) || matches!((a.lock(), b.lock()), (Ok(a), Ok(b)) if *a == *b)
            }
            (Self::File(a), Self::File(b)) => a == b,
            _ => false,
        }
    }
}

impl Default for PinStore {
    fn default() -> Self {
        Self::Memory(Arc::default())
    }
}

/// Why the pin store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum PinStoreError {
    #[error("cannot read the pinned certificates {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("the pinned certificates {path} are not valid: {source}")]
    Parse { path: PathBuf, source: serde_json::Error },
    #[error("cannot save the pinned certificates {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The key a relay address is pinned under: as typed, without surrounding blanks, lower case.
fn pin_key(relay: &str) -> String {
    relay.trim().to_ascii_lowercase()
}

/// Serialises writers of one process; the file is replaced atomically for the others.
static PIN_FILE_LOCK: Mutex<()> = Mutex::new(());

impl PinStore {
    /// The fingerprint pinned for `relay`, if any.
    pub fn pinned(&self, relay: &str) -> Result<Option<Fingerprint>, PinStoreError> {
        Ok(self.load()?.get(&pin_key(relay)).copied())
    }

    /// Pins `fingerprint` for `relay`, replacing what was pinned: what a user does after being
    /// told a relay's certificate changed, once they know why.
    pub fn trust(&self, relay: &str, fingerprint: Fingerprint) -> Result<(), PinStoreError> {
        match self {
            Self::Memory(map) => {
                if let Ok(mut m) = map.lock() {
                    m.insert(pin_key(relay), fingerprint);
                }
                Ok(())
            }
            Self::File(path) => {
                let _guard = PIN_FILE_LOCK.lock().unwrap_or_else(|p| p.into_inner());
                let mut pins = self.load()?;
                pins.insert(pin_key(relay), fingerprint);
                let err = |source| PinStoreError::Write { path: path.clone(), source };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(err)?;
                }
                let json = serde_json::to_vec_pretty(&pins).expect("a map of strings serialises");
                let temp = path.with_extension("json.tmp");
                std::fs::write(&temp, json).map_err(err)?;
                std::fs::rename(&temp, path).map_err(err)
            }
        }
    }

    fn load(&self) -> Result<BTreeMap<String, Fingerprint>, PinStoreError> {
        match self {
            Self::Memory(map) => Ok(map.lock().map(|m| m.clone()).unwrap_or_default()),
            Self::File(path) => match std::fs::read(path) {
                Ok(bytes) => {
                    serde_json::from_slice(&bytes).map_err(|source| PinStoreError::Parse { path: path.clone(), source })
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
                Err(source) => Err(PinStoreError::Read { path: path.clone(), source }),
            },
        }
    }
}

/// How a client decides whether to trust a relay's certificate (see the [module docs](self)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RelayTrust {
    /// The fingerprint an invitation named, if the client came from one.
    pub expected: Option<Fingerprint>,
    /// Pins by relay address, for relays reached without an invitation.
    pub pins: PinStore,
    /// Root certificates trusted besides the system's (tests make their own CA).
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl RelayTrust {
    /// Trusts exactly the certificate with this fingerprint (from an invitation).
    pub fn expecting(fingerprint: Fingerprint) -> Self {
        Self { expected: Some(fingerprint), ..Self::default() }
    }

    /// Trusts on first use and remembers pins in `pins`.
    pub fn with_pins(pins: PinStore) -> Self {
        Self { pins, ..Self::default() }
    }
}

/// How a relay's certificate came to be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrustedBy {
    /// The fingerprint an invitation named.
    Invitation,
    /// A chain to one of the system's root certificates, for the relay's name.
    CertificateAuthority,
    /// The pin stored for this relay address.
    Pin,
    /// Nothing pinned yet: trusted on first use, and now pinned.
    FirstUse,
}

/// What a finished handshake established about the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayCertificate {
    pub fingerprint: Fingerprint,
    pub trusted_by: TrustedBy,
}

impl RelayCertificate {
    /// The fingerprint an invitation to this relay should carry: none for a CA-signed
    /// certificate (it is checked against the system's roots, and may be renewed any day).
    pub fn invitation_pin(&self) -> Option<Fingerprint> {
        (self.trusted_by != TrustedBy::CertificateAuthority).then_some(self.fingerprint)
    }
}

/// The system's root certificates, loaded once per process.
fn system_roots() -> &'static [CertificateDer<'static>] {
    static ROOTS: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
    ROOTS.get_or_init(|| {
        let loaded = rustls_native_certs::load_native_certs();
        if let Some(e) = loaded.errors.first() {
            warn!("some system root certificates could not be read: {e}");
        }
        loaded.certs
    })
}

/// Runs the TLS handshake with the relay at `relay` on `stream`, deciding by `trust`; pins the
/// certificate when `trust` says to.
pub(crate) async fn handshake(
    relay: &str,
    stream: TcpStream,
    trust: &RelayTrust,
) -> Result<(TlsStream, RelayCertificate), ConnectError> {
    let name = protocol::tls::server_name(relay).ok_or_else(|| ConnectError::NoAddress(relay.to_string()))?;
    let pinned = match trust.expected {
        Some(_) => None,
        None => trust.pins.pinned(relay).map_err(|e| ConnectError::PinStore(e.to_string()))?,
    };
    let verifier = Arc::new(Verifier(RelayDecision {
        expected: trust.expected,
        pinned,
        authorities: authorities(&trust.extra_roots),
        verdict: Mutex::new(None),
    }));
    let config = protocol::tls::client_config(verifier.clone());
    let connected = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, stream).await;
    let verdict = verifier.0.verdict.lock().ok().and_then(|mut v| v.take());
    let relay_name = relay.to_string();
    match (connected, verdict) {
        (Ok(stream), Some(Verdict::Trusted(certificate))) => {
            match certificate.trusted_by {
                TrustedBy::FirstUse | TrustedBy::Invitation if pinned != Some(certificate.fingerprint) => {
                    if certificate.trusted_by == TrustedBy::FirstUse {
                        info!(relay, fingerprint = %certificate.fingerprint, "trusting the relay's certificate on first use");
                    }
                    if let Err(e) = trust.pins.trust(relay, certificate.fingerprint) {
                        warn!("{e}");
                    }
                }
                _ => {}
            }
            Ok((stream, certificate))
        }
        (_, Some(Verdict::Changed { pinned, presented })) => {
            Err(ConnectError::CertificateChanged { relay: relay_name, pinned, presented })
        }
        (_, Some(Verdict::NotInvited { expected, presented })) => {
            Err(ConnectError::NotTheInvitedRelay { relay: relay_name, expected, presented })
        }
        (Ok(_), _) => Err(ConnectError::Tls { relay: relay_name, message: "no certificate was checked".into() }),
        (Err(e), _) => Err(ConnectError::Tls { relay: relay_name, message: e.to_string() }),
    }
}

/// A verifier for the system's roots and `extra`; `None` when there are no roots at all.
fn authorities(extra: &[CertificateDer<'static>]) -> Option<Arc<WebPkiServerVerifier>> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(system_roots().iter().cloned());
    roots.add_parsable_certificates(extra.iter().cloned());
    if roots.is_empty() {
        return None;
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), protocol::tls::provider()).build().ok()
}

/// What the verifier decided, read back after the handshake.
#[derive(Debug)]
enum Verdict {
    Trusted(RelayCertificate),
    Changed { pinned: Fingerprint, presented: Fingerprint },
    NotInvited { expected: Fingerprint, presented: Fingerprint },
}

/// One connection's decision: by the rules in the [module docs](self), recording why.
#[derive(Debug)]
struct RelayDecision {
    expected: Option<Fingerprint>,
    pinned: Option<Fingerprint>,
    authorities: Option<Arc<WebPkiServerVerifier>>,
    verdict: Mutex<Option<Verdict>>,
}

impl RelayDecision {
    fn verdict(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Verdict {
        let presented = Fingerprint::of_certificate(end_entity);
        let trusted = |trusted_by| Verdict::Trusted(RelayCertificate { fingerprint: presented, trusted_by });
        if let Some(expected) = self.expected {
            return if presented == expected {
                trusted(TrustedBy::Invitation)
            } else {
                Verdict::NotInvited { expected, presented }
            };
        }
        let ca_signed = self
            .authorities
            .as_ref()
            .is_some_and(|v| v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now).is_ok());
        match self.pinned {
            _ if ca_signed => trusted(TrustedBy::CertificateAuthority),
            Some(pinned) if pinned == presented => trusted(TrustedBy::Pin),
            Some(pinned) => Verdict::Changed { pinned, presented },
            None => trusted(TrustedBy::FirstUse),
        }
    }
}

impl CertificateDecision for RelayDecision {
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> bool {
        let verdict = self.verdict(end_entity, intermediates, server_name, ocsp_response, now);
        let accepted = matches!(verdict, Verdict::Trusted(_));
        if let Ok(mut v) = self.verdict.lock() {
            *v = Some(verdict);
        }
        accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_kept_per_address_in_the_file_and_replaced_on_trust() {
        let dir = tempfile::tempdir().unwrap();
        let store = PinStore::File(dir.path().join("pins/relays.json"));
        let a = Fingerprint::of_certificate(b"a");
        let b = Fingerprint::of_certificate(b"b");
        assert_eq!(store.pinned("relay.lan:5000").unwrap(), None);
        store.trust(" Relay.LAN:5000 ", a).unwrap();
        store.trust("10.0.0.2:5000", b).unwrap();
        assert_eq!(store.pinned("relay.lan:5000").unwrap(), Some(a));
        store.trust("relay.lan:5000", b).unwrap();
        let reread = PinStore::File(dir.path().join("pins/relays.json"));
        assert_eq!(reread.pinned("RELAY.lan:5000").unwrap(), Some(b));
        assert_eq!(reread.pinned("10.0.0.2:5000").unwrap(), Some(b));

        std::fs::write(dir.path().join("pins/relays.json"), "not json").unwrap();
        assert!(matches!(reread.pinned("relay.lan:5000"), Err(PinStoreError::Parse { .. })));
    }

    #[test]
    fn only_ca_checked_relays_are_invited_without_a_pin() {
        let fingerprint = Fingerprint::of_certificate(b"c");
        let by = |trusted_by| RelayCertificate { fingerprint, trusted_by };
        assert_eq!(by(TrustedBy::CertificateAuthority).invitation_pin(), None);
        for t in [TrustedBy::Invitation, TrustedBy::Pin, TrustedBy::FirstUse] {
            assert_eq!(by(t).invitation_pin(), Some(fingerprint));
        }
    }
}
