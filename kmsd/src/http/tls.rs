//! TLS for the AWS endpoint (rustls, the `ring` provider): the certificate
//! chain and private key come from two PEM files, loaded at start and
//! again on each reload (SIGHUP). Connections take the certificate current
//! when their handshake starts, so a reload changes new connections only.
//! A reload that fails (a file missing or garbled, a key that does not
//! belong to the certificate) keeps the certificate served before it.
//!
//! The key file is a secret: opened without following a symlink, refused
//! unless owned by root or kmsd's uid and closed to writing by group and
//! others (`kmsd_client::nofollow::open_secret`), read into a buffer wiped
//! on drop.

use kmsd_client::logsafe::{escape, escape_os};
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use zeroize::Zeroizing;

/// Largest certificate or key file read.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// The two files kmsd serves TLS from.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Why the files did not give a certificate to serve.
#[derive(Debug)]
pub struct TlsError(String);

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads up to [`MAX_PEM_BYTES`] of `f` into a buffer wiped on drop.
fn read_capped(f: std::fs::File, path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsError> {
    let mut buf = Zeroizing::new(Vec::new());
    f.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| TlsError(format!("cannot read {}: {e}", path.display())))?;
    if buf.len() as u64 > MAX_PEM_BYTES {
        return Err(TlsError(format!(
            "{} is larger than {MAX_PEM_BYTES} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Opens the certificate file: symlinks are followed (it is public), but
/// only a regular file is read (a FIFO must not stall a reload).
fn open_cert(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is not a regular file (refused)",
        ));
    }
    Ok(f)
}

/// The chain and key of `files`, checked to belong together.
pub fn load(files: &TlsFiles) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_path = &files.cert;
    let f = open_cert(cert_path).map_err(|e| {
        TlsError(format!(
            "cannot open the certificate {}: {e}",
            cert_path.display()
        ))
    })?;
    let pem = read_capped(f, cert_path)?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError(format!(
                "the certificate {} is not valid PEM: {e}",
                cert_path.display()
            ))
        })?;
    if chain.is_empty() {
        return Err(TlsError(format!(
            "the certificate {} holds no CERTIFICATE block",
            cert_path.display()
        )));
    }

    let key_path = &files.key;
    let f = kmsd_client::nofollow::open_secret(key_path).map_err(|e| {
        TlsError(format!(
            "cannot use the private key {}: {e}",
            key_path.display()
        ))
    })?;
    let pem = read_capped(f, key_path)?;
    // Only the kind of error is told: the message of a parser may quote
    // the key's bytes.
    let key = Zeroizing::new(PrivateKeyDer::from_pem_slice(&pem).map_err(|_| {
        TlsError(format!(
            "the private key {} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
            key_path.display()
        ))
    })?);
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| {
        TlsError(format!(
            "the private key {} is not usable: {e}",
            key_path.display()
        ))
    })?;
    let certified = CertifiedKey::new(chain, signer);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(e) => {
            return Err(TlsError(format!(
                "the private key {} does not belong to the certificate {}: {e}",
                key_path.display(),
                cert_path.display()
            )));
        }
    }
    Ok(Arc::new(certified))
}

/// The certificate served now, swapped by [`CertStore::reload`].
#[derive(Debug)]
pub struct CertStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl CertStore {
    /// Loads `files`; an error here stops kmsd's start.
    pub fn open(files: TlsFiles) -> Result<Arc<CertStore>, TlsError> {
        let current = RwLock::new(load(&files)?);
        Ok(Arc::new(CertStore { files, current }))
    }

    /// Loads the files again: on success the new certificate serves every
    /// later handshake (one info line); on failure the old one stays (one
    /// error line). Returns whether the certificate was replaced.
    pub fn reload(&self) -> bool {
        match load(&self.files) {
            Ok(k) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = k;
                tracing::info!(
                    cert = %escape_os(self.files.cert.as_os_str()),
                    "TLS certificate reloaded"
                );
                true
            }
            Err(e) => {
                tracing::error!(
                    error = %escape(&e.to_string()),
                    "TLS reload failed; still serving the previous certificate"
                );
                false
            }
        }
    }

    /// The certificate served now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The rustls configuration of the endpoint: TLS 1.2 and 1.3, no
    /// client certificates, HTTP/1.1 by ALPN.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError(format!("TLS configuration: {e}")))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

#[cfg(test)]
mod tests;
