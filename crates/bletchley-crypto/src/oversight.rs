//! Sealing audit payloads to the oversight body.
//!
//! The platform holds only the oversight body's X25519 public key. Each writer
//! session draws an ephemeral key pair, derives an AES-256-GCM key with HKDF
//! from the shared secret, and seals every payload under it with the entry's
//! sequence number as the nonce. The ephemeral secret lives only in memory, so
//! a copy of the disks — or the platform itself, later — cannot read old
//! entries; the oversight body's secret key can.

use std::collections::HashMap;

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use ring::hkdf;
use x25519_dalek::{PublicKey, StaticSecret};

use crate::error::{Context, Error, Result};
use crate::keys::{SecretKey, random_bytes};

/// The oversight body's public key: all the platform needs to seal.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OversightPublicKey(pub [u8; 32]);

/// The oversight body's secret key: reads audit payloads.
pub struct OversightSecretKey(SecretKey);

impl OversightSecretKey {
    /// A fresh key pair.
    pub fn generate() -> Result<OversightSecretKey> {
        Ok(OversightSecretKey(SecretKey::generate()?))
    }

    /// From the bytes kept in the oversight key file.
    pub fn from_secret(k: SecretKey) -> OversightSecretKey {
        OversightSecretKey(k)
    }

    /// The bytes to keep in a key file.
    pub fn secret(&self) -> &SecretKey {
        &self.0
    }

    /// The matching public key.
    pub fn public_key(&self) -> OversightPublicKey {
        let s = StaticSecret::from(*self.0.expose());
        OversightPublicKey(PublicKey::from(&s).to_bytes())
    }
}

fn derive(shared: &[u8; 32], epk: &[u8; 32], pk: &[u8; 32]) -> Result<LessSafeKey> {
    let info = [&epk[..], &pk[..]].concat();
    let info_parts = [&info[..]];
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"bletchley-audit-v1").extract(shared);
    let okm = prk
        .expand(&info_parts, &AES_256_GCM)
        .map_err(|_| Error::Malformed {
            what: "audit key",
            reason: "derivation failed".into(),
        })?;
    Ok(LessSafeKey::new(UnboundKey::from(okm)))
}

fn seq_nonce(seq: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&seq.to_be_bytes());
    Nonce::assume_unique_for_key(n)
}

/// Seals payloads for one writer session.
pub struct OversightSealer {
    epk: [u8; 32],
    key: LessSafeKey,
}

impl OversightSealer {
    /// Starts a session sealing to `pk`.
    pub fn new(pk: &OversightPublicKey) -> Result<OversightSealer> {
        let mut e = [0u8; 32];
        random_bytes(&mut e)?;
        let esk = StaticSecret::from(e);
        let epk = PublicKey::from(&esk).to_bytes();
        let shared = esk.diffie_hellman(&PublicKey::from(pk.0));
        if !shared.was_contributory() {
            return Err(Error::Malformed {
                what: "oversight public key",
                reason: "low-order point".into(),
            });
        }
        let key = derive(shared.as_bytes(), &epk, &pk.0)?;
        Ok(OversightSealer { epk, key })
    }

    /// The session's ephemeral public key, stored with each entry.
    pub fn ephemeral_public(&self) -> [u8; 32] {
        self.epk
    }

    /// Seals one payload. `seq` must be unique within the session (the log
    /// sequence number is).
    pub fn seal(&self, seq: u64, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut buf = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(seq_nonce(seq), Aad::from(aad), &mut buf)
            .map_err(|_| Error::Malformed {
                what: "audit payload",
                reason: "too large".into(),
            })?;
        Ok(buf)
    }
}

/// Opens payloads with the oversight secret key, caching one derived key per
/// writer session.
pub struct OversightOpener {
    sk: StaticSecret,
    pk: [u8; 32],
    cache: HashMap<[u8; 32], LessSafeKey>,
}

impl OversightOpener {
    /// An opener for `sk`.
    pub fn new(sk: &OversightSecretKey) -> OversightOpener {
        let s = StaticSecret::from(*sk.0.expose());
        let pk = PublicKey::from(&s).to_bytes();
        OversightOpener {
            sk: s,
            pk,
            cache: HashMap::new(),
        }
    }

    /// Opens the payload of entry `seq` sealed in the session `epk`.
    pub fn open(&mut self, epk: &[u8; 32], seq: u64, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        if !self.cache.contains_key(epk) {
            let shared = self.sk.diffie_hellman(&PublicKey::from(*epk));
            if !shared.was_contributory() {
                return Err(Error::Tampered {
                    what: Context::AuditPayload,
                });
            }
            let k = derive(shared.as_bytes(), epk, &self.pk)?;
            self.cache.insert(*epk, k);
        }
        let key = self.cache.get(epk).ok_or(Error::Tampered {
            what: Context::AuditPayload,
        })?;
        let mut buf = sealed.to_vec();
        let n = key
            .open_in_place(seq_nonce(seq), Aad::from(aad), &mut buf)
            .map_err(|_| Error::Tampered {
                what: Context::AuditPayload,
            })?
            .len();
        buf.truncate(n);
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_to_the_oversight_key_only() {
        let sk = OversightSecretKey::generate().unwrap();
        let s = OversightSealer::new(&sk.public_key()).unwrap();
        let ct = s.seal(5, b"aad", b"who read what").unwrap();
        let mut o = OversightOpener::new(&sk);
        assert_eq!(
            o.open(&s.ephemeral_public(), 5, b"aad", &ct).unwrap(),
            b"who read what"
        );
        assert!(o.open(&s.ephemeral_public(), 6, b"aad", &ct).is_err());
        let other = OversightSecretKey::generate().unwrap();
        assert!(
            OversightOpener::new(&other)
                .open(&s.ephemeral_public(), 5, b"aad", &ct)
                .is_err()
        );
    }
}
