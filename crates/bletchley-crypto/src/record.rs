//! Small sealed values (catalog records, wrapped keys): AES-256-GCM with a
//! random 96-bit nonce, laid out as `nonce || ciphertext || tag`.
//!
//! Random nonces are safe here because each key seals far fewer than 2^32
//! records (the NIST bound for random GCM nonces).

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use crate::error::{Context, Error, Result};
use crate::keys::{SecretKey, random_bytes};

fn key(k: &SecretKey) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, k.expose())
        .map(LessSafeKey::new)
        .map_err(|_| Error::Malformed {
            what: "key",
            reason: "rejected by AES-256-GCM".into(),
        })
}

/// Seals `plaintext`; `aad` binds it to where it belongs.
pub fn seal(k: &SecretKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = key(k)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| Error::Malformed {
            what: "record",
            reason: "too large to seal".into(),
        })?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

/// Opens a value sealed by [`seal`] with the same key and `aad`.
pub fn open(k: &SecretKey, aad: &[u8], sealed: &[u8], what: Context) -> Result<Vec<u8>> {
    if sealed.len() < NONCE_LEN + 16 {
        return Err(Error::Tampered { what });
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&sealed[..NONCE_LEN]);
    let mut buf = sealed[NONCE_LEN..].to_vec();
    let n = key(k)?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad),
            &mut buf,
        )
        .map_err(|_| Error::Tampered { what })?
        .len();
    buf.truncate(n);
    Ok(buf)
}
