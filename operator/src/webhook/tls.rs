//! The serving certificate: read from PEM files, handed to rustls through a
//! resolver so a rotated certificate is used for the next handshake, without
//! a restart. [`watch`] polls the files (a Secret volume is updated by the
//! kubelet through a symlink swap, which a poll of the contents sees).

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::ring::sign::any_supported_type;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why a certificate could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No certificate in the file.
    #[error("{0}: no PEM certificate in it")]
    NoCertificate(PathBuf),
    /// No private key in the file.
    #[error("{0}: no PEM private key in it")]
    NoKey(PathBuf),
    /// The key is not one rustls can sign with.
    #[error("{path}: unsupported private key: {message}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// rustls' message.
        message: String,
    },
}

/// Parses a PEM certificate chain and key into what rustls serves.
pub fn certified_key_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_path: &Path,
    key_path: &Path,
) -> Result<CertifiedKey, TlsError> {
    let certs: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(cert_path.to_path_buf()));
    }
    let key = rustls_pemfile::private_key(&mut &key_pem[..])
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::NoKey(key_path.to_path_buf()))?;
    let signing_key = any_supported_type(&key).map_err(|e| TlsError::BadKey {
        path: key_path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(CertifiedKey::new(certs, signing_key))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// The current serving certificate, swappable while serving.
#[derive(Debug)]
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: RwLock<(Arc<CertifiedKey>, Vec<u8>)>,
}

impl ReloadingCert {
    /// Loads the files once (an error here is fatal for the server).
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Arc<Self>, TlsError> {
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let key = certified_key_from_pem(&cert_pem, &key_pem, cert_path, key_path)?;
        let mut stamp = cert_pem;
        stamp.extend_from_slice(&key_pem);
        Ok(Arc::new(Self {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            current: RwLock::new((Arc::new(key), stamp)),
        }))
    }

    /// Re-reads the files; swaps the certificate when they changed and parse.
    /// Returns true when a new certificate is in use. A half-written or bad
    /// pair keeps the old certificate (and is retried on the next call).
    pub fn reload(&self) -> Result<bool, TlsError> {
        let cert_pem = read(&self.cert_path)?;
        let key_pem = read(&self.key_path)?;
        let mut stamp = cert_pem.clone();
        stamp.extend_from_slice(&key_pem);
        if self.current.read().expect("cert lock").1 == stamp {
            return Ok(false);
        }
        let key = certified_key_from_pem(&cert_pem, &key_pem, &self.cert_path, &self.key_path)?;
        *self.current.write().expect("cert lock") = (Arc::new(key), stamp);
        Ok(true)
    }

    /// A rustls server config serving this certificate (HTTP/1.1).
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions")
        .with_no_client_auth()
        .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().expect("cert lock").0.clone())
    }
}

/// Re-reads the certificate files every `interval` until the task is dropped.
pub async fn watch(cert: Arc<ReloadingCert>, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match cert.reload() {
            Ok(true) => {
                tracing::info!(path = %cert.cert_path.display(), "serving certificate reloaded")
            }
            Ok(false) => {}
            Err(e) => tracing::warn!("serving certificate not reloaded: {e}"),
        }
    }
}
