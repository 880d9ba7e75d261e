//! Ed25519 keys that sign audit checkpoints.

use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};

use crate::error::{Error, Result};
use crate::keys::SecretKey;

/// A signing key, kept as its 32-byte seed.
pub struct SigningKey {
    seed: SecretKey,
    pair: Ed25519KeyPair,
}

impl SigningKey {
    /// A key from a seed held in a key file.
    pub fn from_seed(seed: SecretKey) -> Result<SigningKey> {
        let pair =
            Ed25519KeyPair::from_seed_unchecked(seed.expose()).map_err(|_| Error::Malformed {
                what: "signing key",
                reason: "bad seed".into(),
            })?;
        Ok(SigningKey { seed, pair })
    }

    /// A fresh key.
    pub fn generate() -> Result<SigningKey> {
        SigningKey::from_seed(SecretKey::generate()?)
    }

    /// The seed, for sealing into a key file.
    pub fn seed(&self) -> &SecretKey {
        &self.seed
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(self.pair.public_key().as_ref());
        VerifyingKey(pk)
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(msg).as_ref());
        out
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct VerifyingKey(pub [u8; 32]);

impl VerifyingKey {
    /// Whether `sig` is a valid signature of `msg`.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(msg, sig)
            .is_ok()
    }
}
