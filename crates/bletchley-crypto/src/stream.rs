//! Streaming AEAD for content, in the manner of the STREAM construction
//! (Hoang, Reyhanitabar, Rogaway, Vizár 2015).
//!
//! ```text
//! header = "BLYSTRM1" || chunk_size (u32 BE) || nonce_prefix (7 random bytes)
//! chunk i: AES-256-GCM(key, nonce = prefix || i (u32 BE) || last (0 or 1),
//!                      aad = header || context) -> ciphertext || tag
//! ```
//!
//! The chunk index in the nonce catches reordering; the last-chunk flag catches
//! truncation at a chunk boundary; the header and the caller's context (the
//! object's identity) in the associated data catch splicing chunks from other
//! objects or moving a whole object to another item.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};

use crate::error::{Context, Error, Result};
use crate::keys::{SecretKey, random_bytes};

/// Plaintext bytes per chunk.
pub const CHUNK_SIZE: usize = 64 * 1024;
const MAGIC: &[u8; 8] = b"BLYSTRM1";
const HEADER_LEN: usize = 8 + 4 + 7;
const TAG_LEN: usize = 16;

fn aead_key(k: &SecretKey) -> Result<LessSafeKey> {
    UnboundKey::new(&AES_256_GCM, k.expose())
        .map(LessSafeKey::new)
        .map_err(|_| Error::Malformed {
            what: "key",
            reason: "rejected by AES-256-GCM".into(),
        })
}

fn nonce(prefix: &[u8; 7], index: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&index.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

/// Size of the sealed form of `len` plaintext bytes.
pub fn sealed_len(len: usize) -> usize {
    let chunks = len.div_ceil(CHUNK_SIZE).max(1);
    HEADER_LEN + len + chunks * TAG_LEN
}

/// Seals `plaintext` for the object named by `context`.
pub fn seal(k: &SecretKey, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let key = aead_key(k)?;
    let mut prefix = [0u8; 7];
    random_bytes(&mut prefix)?;
    let mut out = Vec::with_capacity(sealed_len(plaintext.len()));
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
    out.extend_from_slice(&prefix);
    let mut aad = out.clone();
    aad.extend_from_slice(context);
    let chunks: Vec<&[u8]> = if plaintext.is_empty() {
        vec![&[][..]]
    } else {
        plaintext.chunks(CHUNK_SIZE).collect()
    };
    let n = chunks.len();
    for (i, chunk) in chunks.into_iter().enumerate() {
        let index = u32::try_from(i).map_err(|_| Error::Malformed {
            what: "content",
            reason: "too large".into(),
        })?;
        let start = out.len();
        out.extend_from_slice(chunk);
        let tag = key
            .seal_in_place_separate_tag(
                nonce(&prefix, index, i + 1 == n),
                Aad::from(&aad[..]),
                &mut out[start..],
            )
            .map_err(|_| Error::Malformed {
                what: "content",
                reason: "chunk too large".into(),
            })?;
        out.extend_from_slice(tag.as_ref());
    }
    Ok(out)
}

/// Opens content sealed by [`seal`] under the same key and context.
pub fn open(k: &SecretKey, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    let key = aead_key(k)?;
    if sealed.len() < HEADER_LEN + TAG_LEN || &sealed[..8] != MAGIC {
        return Err(Error::Malformed {
            what: "sealed content",
            reason: "missing header".into(),
        });
    }
    let chunk_size = u32::from_be_bytes([sealed[8], sealed[9], sealed[10], sealed[11]]) as usize;
    if !(1024..=16 * 1024 * 1024).contains(&chunk_size) {
        return Err(Error::Malformed {
            what: "sealed content",
            reason: format!("chunk size {chunk_size} out of range"),
        });
    }
    let mut prefix = [0u8; 7];
    prefix.copy_from_slice(&sealed[12..HEADER_LEN]);
    let mut aad = sealed[..HEADER_LEN].to_vec();
    aad.extend_from_slice(context);
    let body = &sealed[HEADER_LEN..];
    let stored = chunk_size + TAG_LEN;
    let mut out = Vec::with_capacity(body.len());
    let mut offset = 0;
    let mut index: u32 = 0;
    loop {
        let end = (offset + stored).min(body.len());
        let piece = &body[offset..end];
        if piece.len() < TAG_LEN {
            return Err(Error::Tampered {
                what: Context::Content,
            });
        }
        let last = end == body.len();
        let start = out.len();
        out.extend_from_slice(piece);
        let opened = key.open_in_place(
            nonce(&prefix, index, last),
            Aad::from(&aad[..]),
            &mut out[start..],
        );
        match opened {
            Ok(pt) => {
                let n = pt.len();
                out.truncate(start + n);
            }
            Err(_) => {
                // A final chunk that opens as a middle chunk means the tail was cut off.
                if last {
                    let mut again = piece.to_vec();
                    if key
                        .open_in_place(
                            nonce(&prefix, index, false),
                            Aad::from(&aad[..]),
                            &mut again,
                        )
                        .is_ok()
                    {
                        return Err(Error::Truncated);
                    }
                }
                return Err(Error::Tampered {
                    what: Context::Content,
                });
            }
        }
        if last {
            return Ok(out);
        }
        offset = end;
        index = index.checked_add(1).ok_or(Error::Tampered {
            what: Context::Content,
        })?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes([7; 32])
    }

    #[test]
    fn round_trips_edge_sizes() {
        for len in [
            0,
            1,
            CHUNK_SIZE - 1,
            CHUNK_SIZE,
            CHUNK_SIZE + 1,
            3 * CHUNK_SIZE,
        ] {
            let pt: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let s = seal(&key(), b"ctx", &pt).unwrap();
            assert_eq!(s.len(), sealed_len(len));
            assert_eq!(open(&key(), b"ctx", &s).unwrap(), pt);
        }
    }

    #[test]
    fn detects_truncation_reordering_and_splicing() {
        let pt = vec![1u8; 3 * CHUNK_SIZE];
        let s = seal(&key(), b"a", &pt).unwrap();
        let stored = CHUNK_SIZE + TAG_LEN;
        // Truncated at a chunk boundary.
        assert!(matches!(
            open(&key(), b"a", &s[..HEADER_LEN + 2 * stored]),
            Err(Error::Truncated)
        ));
        // Truncated mid-chunk.
        assert!(open(&key(), b"a", &s[..s.len() - 5]).is_err());
        // Two chunks swapped.
        let mut r = s.clone();
        let (a, b) = (HEADER_LEN, HEADER_LEN + stored);
        let first = r[a..b].to_vec();
        let second = r[b..b + stored].to_vec();
        r[a..b].copy_from_slice(&second);
        r[b..b + stored].copy_from_slice(&first);
        assert!(open(&key(), b"a", &r).is_err());
        // Moved to another object.
        assert!(open(&key(), b"b", &s).is_err());
        // Chunk spliced from another stream under the same key.
        let other = seal(&key(), b"a", &pt).unwrap();
        let mut sp = s.clone();
        sp[a..b].copy_from_slice(&other[a..b]);
        assert!(open(&key(), b"a", &sp).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_flipped_bit_is_detected(len in 0usize..200_000, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
            let pt = vec![9u8; len];
            let mut s = seal(&key(), b"x", &pt).unwrap();
            let i = pos.index(s.len());
            s[i] ^= 1 << bit;
            prop_assert!(open(&key(), b"x", &s).is_err());
        }

        #[test]
        fn round_trip(pt in proptest::collection::vec(any::<u8>(), 0..150_000)) {
            let s = seal(&key(), b"x", &pt).unwrap();
            prop_assert_eq!(open(&key(), b"x", &s).unwrap(), pt);
        }
    }
}
