//! The key hierarchy: per-agency key-encryption keys held by a provider, and
//! per-item data keys that exist at rest only wrapped.

use zeroize::Zeroizing;

use crate::error::{Context, Error, Result};
use crate::record;

/// A 256-bit secret. Zeroed on drop; never printed.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

/// The random key that seals one item's content and metadata. Destroying the
/// only wrapped copy crypto-shreds the item.
pub type DataKey = SecretKey;

impl SecretKey {
    /// A fresh key from the system's random source.
    pub fn generate() -> Result<SecretKey> {
        let mut k = Zeroizing::new([0u8; 32]);
        random_bytes(&mut k[..])?;
        Ok(SecretKey(k))
    }

    /// Wraps raw key bytes (from a key file).
    pub fn from_bytes(bytes: [u8; 32]) -> SecretKey {
        SecretKey(Zeroizing::new(bytes))
    }

    /// Reads a key from a slice, which must be 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<SecretKey> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::Malformed {
            what: "key",
            reason: format!("{} bytes, expected 32", bytes.len()),
        })?;
        Ok(SecretKey::from_bytes(arr))
    }

    /// The raw bytes, for sealing into a key file or deriving subkeys.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

/// Fills `out` from the operating system's random source.
pub fn random_bytes(out: &mut [u8]) -> Result<()> {
    use ring::rand::SecureRandom;
    ring::rand::SystemRandom::new()
        .fill(out)
        .map_err(|_| Error::Random)
}

/// A keyed tag: HMAC-SHA-256 under `key` over a domain label and a message.
/// Used for blind indexes of names and for de-duplication tags, so that equal
/// inputs are recognised only by whoever holds the key.
pub fn keyed_tag(key: &SecretKey, domain: &str, msg: &[u8]) -> [u8; 32] {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose());
    let mut ctx = ring::hmac::Context::with_key(&k);
    ctx.update(domain.as_bytes());
    ctx.update(&[0]);
    ctx.update(msg);
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// A data key sealed under a key-encryption key, with the version of that key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    /// Which key-encryption key sealed it.
    pub kek_version: u32,
    /// Nonce, ciphertext and tag.
    pub bytes: Vec<u8>,
}

/// Holds an agency's key-encryption keys and wraps and unwraps data keys with
/// them. The KEK never leaves the provider, so an HSM or an external KMS can
/// implement this trait.
pub trait KeyProvider: Send + Sync {
    /// Which key this is, for messages.
    fn label(&self) -> &str;
    /// The version new wraps use.
    fn current_version(&self) -> u32;
    /// Seals a data key; `aad` binds it to its place (item id, purpose).
    fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<WrappedKey>;
    /// Opens a wrapped data key sealed with the same `aad`.
    fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<DataKey>;
}

/// The default provider: KEK versions unlocked from a passphrase-sealed key
/// file.
pub struct PassphraseProvider {
    label: String,
    /// (version, key), newest last.
    keks: Vec<(u32, SecretKey)>,
}

fn wrap_aad(version: u32, aad: &[u8]) -> Vec<u8> {
    let mut v = b"bletchley-wrap-v1\0".to_vec();
    v.extend_from_slice(&version.to_be_bytes());
    v.extend_from_slice(aad);
    v
}

impl PassphraseProvider {
    /// A provider over the given KEK versions (newest last).
    pub fn new(
        label: impl Into<String>,
        keks: Vec<(u32, SecretKey)>,
    ) -> Result<PassphraseProvider> {
        if keks.is_empty() {
            return Err(Error::Malformed {
                what: "key file",
                reason: "holds no key-encryption key".into(),
            });
        }
        Ok(PassphraseProvider {
            label: label.into(),
            keks,
        })
    }

    /// The KEK versions held, newest last.
    pub fn keks(&self) -> &[(u32, SecretKey)] {
        &self.keks
    }

    /// Adds a new KEK version, which new wraps will use.
    pub fn add_version(&mut self) -> Result<u32> {
        let v = self.current_version() + 1;
        self.keks.push((v, SecretKey::generate()?));
        Ok(v)
    }

    /// Destroys every KEK version but the newest (after a rotation rewrapped
    /// everything).
    pub fn retire_old(&mut self) {
        if let Some(last) = self.keks.pop() {
            self.keks.clear();
            self.keks.push(last);
        }
    }
}

impl KeyProvider for PassphraseProvider {
    fn label(&self) -> &str {
        &self.label
    }

    fn current_version(&self) -> u32 {
        self.keks.last().map(|k| k.0).unwrap_or(0)
    }

    fn wrap(&self, dek: &DataKey, aad: &[u8]) -> Result<WrappedKey> {
        let (v, kek) = self.keks.last().ok_or(Error::UnknownKeyVersion(0))?;
        let bytes = record::seal(kek, &wrap_aad(*v, aad), dek.expose())?;
        Ok(WrappedKey {
            kek_version: *v,
            bytes,
        })
    }

    fn unwrap(&self, wrapped: &WrappedKey, aad: &[u8]) -> Result<DataKey> {
        let (_, kek) = self
            .keks
            .iter()
            .find(|(v, _)| *v == wrapped.kek_version)
            .ok_or(Error::UnknownKeyVersion(wrapped.kek_version))?;
        let plain = Zeroizing::new(record::open(
            kek,
            &wrap_aad(wrapped.kek_version, aad),
            &wrapped.bytes,
            Context::WrappedKey,
        )?);
        SecretKey::from_slice(&plain)
    }
}
