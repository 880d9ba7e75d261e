//! Keys and sealing: the key hierarchy, the streaming AEAD for content, small
//! sealed records for the catalog, keyed tags, audit payload sealing and
//! checkpoint signatures.
//!
//! No primitive is implemented here: AES-256-GCM, HMAC, HKDF, SHA-256 and
//! Ed25519 come from `ring`; X25519 from `x25519-dalek`; argon2id from
//! `argon2`. This crate only composes them, and every composition binds its
//! context (what a ciphertext is for) into the associated data so that a
//! sealed value cannot be moved to another place and still open.

mod error;
pub mod keyfile;
pub mod keys;
pub mod oversight;
pub mod password;
pub mod record;
pub mod signing;
pub mod stream;
pub mod totp;

pub use error::{Context, Error, Result};
pub use keyfile::{KdfParams, KeyFile};
pub use keys::{
    DataKey, KeyProvider, PassphraseProvider, SecretKey, WrappedKey, keyed_tag, random_bytes,
};
pub use oversight::{OversightPublicKey, OversightSealer, OversightSecretKey};
pub use signing::{SigningKey, VerifyingKey};

/// Whether two MACs or tags are equal, in time that depends only on their
/// lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// SHA-256 over several parts, without concatenating them first.
pub fn sha256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}
