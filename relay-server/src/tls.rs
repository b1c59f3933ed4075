//! The relay's TLS certificate: loaded from PEM files, or self-signed and kept in the data
//! directory so that clients' pins hold across restarts.
//!
//! With `tls_cert`/`tls_key` set, the relay serves that chain (a CA-signed certificate that
//! clients verify against their system roots). Otherwise it creates a self-signed certificate
//! with `rcgen` on its first start and keeps it in `<data_dir>/tls/` (`cert.pem`, and
//! `key.pem` readable by the relay's user only); without a data directory it creates a new one
//! at each start. Either way the relay announces the certificate's SHA-256 fingerprint, which
//! invitations carry and clients pin.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protocol::fingerprint::Fingerprint;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use thiserror::Error;
use tracing::info;

/// Where the relay's certificate comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CertificateSource {
    /// Self-signed: created on first start and kept in `<data_dir>/tls/`, or new at each start
    /// when the relay has no data directory.
    #[default]
    SelfSigned,
    /// A certificate chain and its private key, PEM files.
    Files { cert: PathBuf, key: PathBuf },
}

/// Why the relay has no certificate to serve.
#[derive(Debug, Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: PathBuf },
    #[error("{path} holds no PEM private key")]
    NoKey { path: PathBuf },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("cannot create a self-signed certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the certificate and key do not make a TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// What the relay serves.
pub(crate) struct Certificate {
    pub config: Arc<rustls::ServerConfig>,
    pub fingerprint: Fingerprint,
}

/// Names a self-signed certificate carries. Clients check it by its fingerprint, not by name.
const SELF_SIGNED_NAMES: &[&str] = &["parlor-relay", "localhost"];

/// Loads or creates the certificate. `data_dir` keeps a self-signed one across restarts.
pub(crate) fn load(source: &CertificateSource, data_dir: Option<&Path>) -> Result<Certificate, TlsSetupError> {
    let (chain, key) = match source {
        CertificateSource::Files { cert, key } => (read_chain(cert)?, read_key(key)?),
        CertificateSource::SelfSigned => match data_dir {
            Some(dir) => self_signed_in(&dir.join("tls"))?,
            None => {
                let (cert_pem, key_pem) = generate()?;
                (
                    parse_chain(cert_pem.as_bytes(), Path::new("(generated)"))?,
                    parse_key(key_pem.as_bytes(), Path::new("(generated)"))?,
                )
            }
        },
    };
    let fingerprint = Fingerprint::of_certificate(&chain[0]);
    let config = protocol::tls::server_config(chain, key)?;
    Ok(Certificate { config: Arc::new(config), fingerprint })
}

/// The self-signed certificate kept in `dir`, created there when absent.
fn self_signed_in(dir: &Path) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsSetupError> {
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if !cert_path.exists() || !key_path.exists() {
        let (cert_pem, key_pem) = generate()?;
        std::fs::create_dir_all(dir).map_err(|source| TlsSetupError::Write { path: dir.to_path_buf(), source })?;
        write_private(&key_path, key_pem.as_bytes())?;
        std::fs::write(&cert_path, cert_pem)
            .map_err(|source| TlsSetupError::Write { path: cert_path.clone(), source })?;
        info!(cert = %cert_path.display(), "created a self-signed certificate");
    }
    Ok((read_chain(&cert_path)?, read_key(&key_path)?))
}

/// A new self-signed certificate and its key, as PEM.
fn generate() -> Result<(String, String), TlsSetupError> {
    let names: Vec<String> = SELF_SIGNED_NAMES.iter().map(|n| n.to_string()).collect();
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(names)?;
    Ok((cert.pem(), signing_key.serialize_pem()))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsSetupError> {
    use std::io::Write;
    let err = |source| TlsSetupError::Write { path: path.to_path_buf(), source };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(err)?;
    file.write_all(bytes).map_err(err)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsSetupError> {
    std::fs::read(path).map_err(|source| TlsSetupError::Read { path: path.to_path_buf(), source })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    parse_chain(&read(path)?, path)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    parse_key(&read(path)?, path)
}

fn parse_chain(pem: &[u8], path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let chain: Vec<_> = CertificateDer::pem_slice_iter(pem).filter_map(Result::ok).collect();
    if chain.is_empty() {
        return Err(TlsSetupError::NoCertificate { path: path.to_path_buf() });
    }
    Ok(chain)
}

fn parse_key(pem: &[u8], path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsSetupError::NoKey { path: path.to_path_buf() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_self_signed_certificate_is_kept_across_starts_in_the_data_dir() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(&CertificateSource::SelfSigned, Some(dir.path())).unwrap();
        let again = load(&CertificateSource::SelfSigned, Some(dir.path())).unwrap();
        assert_eq!(first.fingerprint, again.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("tls/key.pem")).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
        }
        let ephemeral = load(&CertificateSource::SelfSigned, None).unwrap();
        assert_ne!(ephemeral.fingerprint, first.fingerprint);
    }

    #[test]
    fn certificate_files_load_and_bad_ones_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let (cert_pem, key_pem) = generate().unwrap();
        let cert = dir.path().join("relay.crt");
        let key = dir.path().join("relay.key");
        std::fs::write(&cert, &cert_pem).unwrap();
        std::fs::write(&key, &key_pem).unwrap();
        let loaded = load(&CertificateSource::Files { cert: cert.clone(), key: key.clone() }, None).unwrap();
        let der = CertificateDer::from_pem_slice(cert_pem.as_bytes()).unwrap();
        assert_eq!(loaded.fingerprint, Fingerprint::of_certificate(&der));

        let swapped = load(&CertificateSource::Files { cert: key.clone(), key: cert.clone() }, None);
        let Err(TlsSetupError::NoCertificate { path }) = swapped else { panic!("a key is not a certificate") };
        assert_eq!(path, key);
        let missing = load(&CertificateSource::Files { cert: dir.path().join("nope.crt"), key }, None);
        assert!(matches!(missing, Err(TlsSetupError::Read { .. })));
    }
}
