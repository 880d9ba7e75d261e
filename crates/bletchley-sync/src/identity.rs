//! Site identities: who a site is, what it may hold, and the public keys that check its
//! signatures and seal bundles to it.

use bletchley_crypto::{OversightPublicKey, OversightSecretKey, SecretKey, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Whether a node is the hub or a field site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SiteRole {
    /// The hub: sends to field sites what each may hold.
    Hub,
    /// A field site: receives from the hub.
    Field,
}

/// The public description of a site, exchanged out of band at enrolment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteIdentity {
    /// Unique name.
    pub name: String,
    /// Hub or field.
    pub role: SiteRole,
    /// Where its bytes rest (`CC/region`).
    pub jurisdiction: String,
    /// The highest marking it may hold: a classification and the codewords its staff hold.
    pub ceiling: String,
    /// Nationalities of its staff (alpha-3).
    pub nationalities: Vec<String>,
    /// Ed25519 key that signs its bundles (hex).
    pub signing_key: String,
    /// X25519 key that bundles to it are sealed to (hex).
    pub sealing_key: String,
    /// Its TLS certificate (DER, hex), pinned by the other side for mutual TLS.
    #[serde(default)]
    pub certificate: String,
}

/// An identity with its self-signature, as written to a file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SignedIdentity {
    pub identity: SiteIdentity,
    pub signature: String,
}

/// This node's own identity with its secret keys (kept sealed in the catalog).
#[derive(Serialize, Deserialize)]
pub(crate) struct SelfRecord {
    pub identity: SiteIdentity,
    pub signing_seed: String,
    pub sealing_secret: String,
    /// The TLS certificate's private key (PKCS#8 DER, hex).
    #[serde(default)]
    pub tls_key: String,
}

impl SelfRecord {
    pub fn generate(identity_without_keys: SiteIdentity) -> Result<SelfRecord> {
        let signing = SigningKey::generate()?;
        let sealing = OversightSecretKey::generate()?;
        let mut identity = identity_without_keys;
        identity.signing_key = hex::encode(signing.verifying_key().0);
        identity.sealing_key = hex::encode(sealing.public_key().0);
        let tls =
            rcgen::generate_simple_self_signed(vec![format!("{}.site.bletchley", identity.name)])
                .map_err(|e| Error::Invalid(format!("making the TLS certificate: {e}")))?;
        identity.certificate = hex::encode(tls.cert.der());
        Ok(SelfRecord {
            identity,
            signing_seed: hex::encode(signing.seed().expose()),
            sealing_secret: hex::encode(sealing.secret().expose()),
            tls_key: hex::encode(tls.signing_key.serialize_der()),
        })
    }

    pub fn signing_key(&self) -> Result<SigningKey> {
        Ok(SigningKey::from_seed(secret(&self.signing_seed)?)?)
    }

    pub fn sealing_secret(&self) -> Result<OversightSecretKey> {
        Ok(OversightSecretKey::from_secret(secret(
            &self.sealing_secret,
        )?))
    }

    pub fn signed_identity(&self) -> Result<SignedIdentity> {
        let sig = self.signing_key()?.sign(&identity_bytes(&self.identity)?);
        Ok(SignedIdentity {
            identity: self.identity.clone(),
            signature: hex::encode(sig),
        })
    }
}

fn secret(hex_text: &str) -> Result<SecretKey> {
    let bytes =
        hex::decode(hex_text).map_err(|_| Error::Invalid("stored key is not hex".into()))?;
    Ok(SecretKey::from_slice(&bytes)?)
}

fn identity_bytes(id: &SiteIdentity) -> Result<Vec<u8>> {
    let mut out = b"bletchley site identity v1\n".to_vec();
    out.extend(serde_json::to_vec(id).map_err(|e| Error::Invalid(e.to_string()))?);
    Ok(out)
}

impl SiteIdentity {
    /// The Ed25519 key that checks its signatures.
    pub fn verifying_key(&self) -> Result<bletchley_crypto::VerifyingKey> {
        Ok(bletchley_crypto::VerifyingKey(key32(
            &self.signing_key,
            "signing key",
        )?))
    }

    /// The X25519 key bundles to it are sealed to.
    pub fn sealing_key(&self) -> Result<OversightPublicKey> {
        Ok(OversightPublicKey(key32(&self.sealing_key, "sealing key")?))
    }

    /// The TLS certificate, DER.
    pub fn certificate_der(&self) -> Result<Vec<u8>> {
        hex::decode(&self.certificate)
            .ok()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::Invalid("the identity has no TLS certificate".into()))
    }

    /// A short digest of both public keys, read aloud over a separate channel at enrolment so
    /// that a substituted identity file is noticed.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.signing_key.as_bytes());
        h.update(b"/");
        h.update(self.sealing_key.as_bytes());
        h.update(b"/");
        h.update(self.certificate.as_bytes());
        let d = hex::encode(&h.finalize()[..10]);
        d.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-")
    }
}

fn key32(hex_text: &str, what: &str) -> Result<[u8; 32]> {
    hex::decode(hex_text)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::Invalid(format!("the identity's {what} is not 32 bytes of hex")))
}

impl SignedIdentity {
    /// Parses an identity file and checks its self-signature.
    pub fn parse(text: &str) -> Result<SiteIdentity> {
        let s: SignedIdentity = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("not a site identity file: {e}")))?;
        let sig = hex::decode(&s.signature)
            .map_err(|_| Error::Invalid("identity signature is not hex".into()))?;
        let key = s.identity.verifying_key()?;
        s.identity.sealing_key()?;
        s.identity.certificate_der()?;
        if !key.verify(&identity_bytes(&s.identity)?, &sig) {
            return Err(Error::Invalid(
                "the identity's signature does not verify: the file was altered".into(),
            ));
        }
        Ok(s.identity)
    }
}
