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
    let verifier = client_verifier(p, provider.clone())?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

// ----- client certificates (mutual TLS) -----------------------------------

const CA_AAD: &[u8] = b"bletchley-client-ca-key";
const CA_NAME: &str = "Bletchley client CA";

/// Where the client CA lives: its certificate (public, PEM) and its key
/// (sealed like the server key).
pub fn client_ca_paths(data: &Path) -> (PathBuf, PathBuf) {
    let dir = data.join("tls");
    (dir.join("client-ca.pem"), dir.join("client-ca.sealed"))
}

/// Makes the platform's client-certificate authority if it has none. Only
/// certificates it issued (`principal cert issue`) are accepted by `serve`.
pub fn ensure_client_ca(p: &Platform) -> Result<PathBuf, ServeError> {
    let (cert_path, key_path) = client_ca_paths(p.root());
    if cert_path.exists() && key_path.exists() {
        return Ok(cert_path);
    }
    let tls = |e: rcgen::Error| ServeError::Tls(format!("client CA: {e}"));
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, CA_NAME);
    params.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(3650);
    let cert = params.self_signed(&key).map_err(tls)?;
    let sealed = record::seal(
        &p.derived_key("client-ca-key"),
        CA_AAD,
        key.serialize_pem().as_bytes(),
    )
    .map_err(|e| ServeError::Tls(e.to_string()))?;
    let dir = cert_path.parent().unwrap_or(p.root());
    std::fs::create_dir_all(dir).map_err(|e| ServeError::Io(dir.display().to_string(), e))?;
    bletchley_crypto::keyfile::write_atomic(&key_path, &sealed)
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    bletchley_crypto::keyfile::write_atomic(&cert_path, cert.pem().as_bytes())
        .map_err(|e| ServeError::Tls(e.to_string()))?;
    Ok(cert_path)
}

/// A client certificate just issued: PEM certificate and key (the key is
/// shown once and never stored by the platform), serial and expiry.
pub struct IssuedCertificate {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// Serial number, hex.
    pub serial: String,
    /// Expiry, Unix milliseconds.
    pub not_after_ms: i64,
}

/// Issues a client certificate for `principal` (its common name), valid
/// for `days`, signed by the platform's client CA. The caller records the
/// serial with `Platform::register_certificate`.
pub fn issue_client_certificate(
    p: &Platform,
    principal: &str,
    days: u32,
) -> Result<IssuedCertificate, ServeError> {
    let tls = |e: rcgen::Error| ServeError::Tls(format!("issuing a client certificate: {e}"));
    let ca_path = ensure_client_ca(p)?;
    let (_, key_path) = client_ca_paths(p.root());
    let ca_pem = std::fs::read_to_string(&ca_path)
        .map_err(|e| ServeError::Io(ca_path.display().to_string(), e))?;
    let sealed =
        std::fs::read(&key_path).map_err(|e| ServeError::Io(key_path.display().to_string(), e))?;
    let ca_key_pem = record::open(
        &p.derived_key("client-ca-key"),
        CA_AAD,
        &sealed,
        Context::Record,
    )
    .map_err(|e| ServeError::Tls(format!("{}: {e}", key_path.display())))?;
    let ca_key = rcgen::KeyPair::from_pem(&String::from_utf8_lossy(&ca_key_pem)).map_err(tls)?;
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(tls)?;

    let mut serial = [0u8; 16];
    bletchley_crypto::random_bytes(&mut serial).map_err(|e| ServeError::Tls(e.to_string()))?;
    serial[0] &= 0x7f; // a positive INTEGER
    let key = rcgen::KeyPair::generate().map_err(tls)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, principal);
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&serial));
    params.is_ca = rcgen::IsCa::ExplicitNoCa;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
    let cert = params.signed_by(&key, &issuer).map_err(tls)?;
    Ok(IssuedCertificate {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        // As the certificate's DER INTEGER carries it: no leading zero bytes.
        serial: serial
            .iter()
            .skip_while(|b| **b == 0)
            .map(|b| format!("{b:02x}"))
            .collect(),
        not_after_ms: params.not_after.unix_timestamp().saturating_mul(1000),
    })
}

/// Verifies client certificates against the platform's client CA, and
/// lets clients without one through (browsers log in with a password).
fn client_verifier(
    p: &Platform,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ServeError> {
    let ca_path = ensure_client_ca(p)?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&ca_path)
        .map_err(|e| ServeError::Tls(format!("{}: {e}", ca_path.display())))?
    {
        let c = c.map_err(|e| ServeError::Tls(format!("{}: {e}", ca_path.display())))?;
        roots
            .add(c)
            .map_err(|e| ServeError::Tls(format!("{}: {e}", ca_path.display())))?;
    }
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .allow_unauthenticated()
        .build()
        .map_err(|e| ServeError::Tls(format!("client verifier: {e}")))
}

/// The principal (common name) and serial (hex) of a client certificate
/// the TLS layer has verified against the client CA.
pub(crate) fn client_identity(der: &[u8]) -> Option<(String, String)> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let cn = cert
        .subject()
        .iter_common_name()
        .next()?
        .as_str()
        .ok()?
        .to_owned();
    let serial: String = cert
        .raw_serial()
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02x}"))
        .collect();
    Some((cn, serial))
}
