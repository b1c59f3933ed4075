//! TLS 1.3 for every TCP connection (control and file): the configurations both ends build,
//! and certificate fingerprints, the pins a client checks a relay's certificate against.
//!
//! Feature `tls`. Everything here is sans-IO: rustls itself never touches a socket, and the
//! verifier is a pure function of the certificate it is shown. The relay builds its
//! [`server_config`]; clients build a [`client_config`] around a [`Verifier`] of some
//! [`CertificateDecision`]: [`pinned`] accepts exactly one certificate (the relay's tests and
//! benches), and client-core's decision adds invitations, pins, trust on first use and CA-signed
//! certificates.
//!
//! A fingerprint is the SHA-256 of the certificate's DER encoding, written as 64 lowercase hex
//! digits (docs/protocol.md §1.1). Parsing also accepts upper case and `:` or space separators,
//! as tools like `openssl x509 -fingerprint -sha256` print them.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{aws_lc_rs, CryptoProvider};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, ServerConfig, SignatureScheme};

pub use crate::fingerprint::Fingerprint;

/// The ALPN protocol name both ends offer: a relay refuses a client that does not speak it.
pub const ALPN: &[u8] = b"parlor";

/// The one crypto provider both ends use: aws-lc-rs, which prefers the post-quantum hybrid key
/// exchange X25519MLKEM768.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(aws_lc_rs::default_provider())
}

/// A relay's TLS configuration: TLS 1.3 only, no client certificates, ALPN [`ALPN`].
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, rustls::Error> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// A client's TLS configuration around `verifier`: TLS 1.3 only, ALPN [`ALPN`].
pub fn client_config(verifier: Arc<dyn ServerCertVerifier>) -> ClientConfig {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the aws-lc-rs provider supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN.to_vec()];
    config
}

/// What decides whether a relay's certificate is trusted. [`Verifier`] wraps a decision with
/// what every one needs: the TLS 1.3 handshake signature check, which proves the relay holds the
/// certificate's key, and the refusal of TLS 1.2.
pub trait CertificateDecision: std::fmt::Debug + Send + Sync {
    /// Whether to trust `end_entity` (with its `intermediates`) for `server_name` at `now`.
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> bool;
}

/// A rustls certificate verifier around a [`CertificateDecision`].
#[derive(Debug)]
pub struct Verifier<D>(pub D);

impl<D: CertificateDecision> ServerCertVerifier for Verifier<D> {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.0.decide(end_entity, intermediates, server_name, ocsp_response, now) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::ApplicationVerificationFailure))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: the configuration offers TLS 1.3 only.
        Err(rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls12NotOffered))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = aws_lc_rs::default_provider().signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, &algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        aws_lc_rs::default_provider().signature_verification_algorithms.supported_schemes()
    }
}

/// Trusts exactly the certificate with this fingerprint, whatever names it carries.
#[derive(Debug, Clone, Copy)]
pub struct Pinned(pub Fingerprint);

impl CertificateDecision for Pinned {
    fn decide(
        &self,
        end_entity: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> bool {
        Fingerprint::of_certificate(end_entity) == self.0
    }
}

/// A verifier that accepts exactly the certificate with fingerprint `pin`.
pub fn pinned(pin: Fingerprint) -> Arc<dyn ServerCertVerifier> {
    Arc::new(Verifier(Pinned(pin)))
}

/// The hop keys of the media datagrams of the participant on this TLS connection
/// ([`crate::hop`]): RFC 8446 §7.5's exporter with [`crate::hop::EXPORTER_LABEL`] and no
/// context. Both ends get the same 64 bytes once the handshake is complete; nobody else can.
pub fn export_hop_secret<D>(conn: &rustls::ConnectionCommon<D>) -> Result<crate::hop::HopSecret, rustls::Error> {
    let bytes = conn.export_keying_material([0u8; crate::hop::HOP_SECRET_LEN], crate::hop::EXPORTER_LABEL, None)?;
    Ok(crate::hop::HopSecret::new(bytes))
}

/// The name a client presents (SNI) for a relay address "HOST:PORT": an IP address as itself,
/// anything else as a DNS name. `None` when the host is neither.
pub fn server_name(relay: &str) -> Option<ServerName<'static>> {
    let host = match relay.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => relay,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_string()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_addresses_give_the_name_a_client_presents() {
        assert_eq!(server_name("relay.example.org:5000").unwrap().to_str(), "relay.example.org");
        assert_eq!(server_name("192.168.1.20:5000").unwrap().to_str(), "192.168.1.20");
        assert_eq!(server_name("[::1]:5000").unwrap().to_str(), "::1");
        assert!(matches!(server_name("10.0.0.1:5000"), Some(ServerName::IpAddress(_))));
        assert!(server_name("bad name!:5000").is_none());
    }
}
