//! The server's certificate. Generated for `localhost` when none is
//! configured; the private key is sealed at rest under a key derived from
//! the platform key (rule 2), the certificate is public and stays in PEM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bletchley_crypto::{Context, record};
use bletchley_store::Platform;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::ServeError;

const AAD: &[u8] = b"bletchley-tls-key";

/// Where the certificate and the sealed key live.
pub fn paths(data: &Path) -> (PathBuf, PathBuf) {
    let dir = data.join("tls");
    (dir.join("cert.pem"), dir.join("key.sealed"))
}

/// Makes a self-signed certificate for localhost (and 127.0.0.1, ::1) if
/// the data directory has none; returns the certificate's path.
pub fn ensure_certificate(p: &Platform) -> Result<PathBuf, ServeError> {
    let (cert_path, key_path) = paths(p.root());
    if cert_path.exists() && key_path.exists() {
        return Ok(cert_path);
    }
    let names = vec![
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
        "::1".to_owned(),
    ];
    let ck = rcgen::generate_simple_self_signed(names)
        .map_err(|e| ServeError::Tls(format!("generating a certificate: {e}")))?;
    let key_pem = ck.signing_key.serialize_pem();
    let sealed = record::seal(&p.derived_key("tls-key"), AAD, key_pem.as_bytes())
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    let dir = cert_path.parent().unwrap_or(p.root());
    std::fs::create_dir_all(dir).map_err(|e| ServeError::Io(dir.display().to_string(), e))?;
    bletchley_crypto::keyfile::write_atomic(&key_path, &sealed)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    bletchley_crypto::keyfile::write_atomic(&cert_path, ck.cert.pem().as_bytes())
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    Ok(cert_path)
}

/// The rustls server configuration: the configured PEM pair if given, or
/// the data directory's own certificate and sealed key.
pub fn server_config(
    p: &Platform,
    configured: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    let (certs, key) = match configured {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ServeError::Tls(format!("{}: {e}", cert.display())))?;
            let key = PrivateKeyDer::from_pem_file(key)
                .map_err(|e| ServeError::Tls(format!("{}: {e}", key.display())))?;
            (certs, key)
        }
        None => {
            let cert_path = ensure_certificate(p)?;
            let (_, key_path) = paths(p.root());
            let certs = CertificateDer::pem_file_iter(&cert_path)
                .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                .map_err(|e| ServeError::Tls(format!("{}: {e}", cert_path.display())))?;
            let sealed = std::fs::read(&key_path)
                .map_err(|e| ServeError::Io(key_path.display().to_string(), e))?;
            let pem = record::open(&p.derived_key("tls-key"), AAD, &sealed, Context::Record)
                .map_err(|e| ServeError::Tls(format!("{}: {e}", key_path.display())))?;
            let key = PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| ServeError::Tls(format!("{}: {e}", key_path.display())))?;
            (certs, key)
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}
