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

use std::io::{Read, Write};

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

/// Seals a stream chunk by chunk into `W`, holding one chunk in memory.
///
/// A full chunk is sealed only when more data arrives (or at
/// [`StreamSealer::finish`]), because whether it is the last one decides its
/// nonce.
pub struct StreamSealer<W: Write> {
    key: LessSafeKey,
    prefix: [u8; 7],
    aad: Vec<u8>,
    index: u32,
    buf: Vec<u8>,
    out: W,
}

impl<W: Write> StreamSealer<W> {
    /// Starts a stream for the object named by `context`; writes the header.
    pub fn new(k: &SecretKey, context: &[u8], mut out: W) -> Result<StreamSealer<W>> {
        let key = aead_key(k)?;
        let mut prefix = [0u8; 7];
        random_bytes(&mut prefix)?;
        let mut header = Vec::with_capacity(HEADER_LEN + context.len());
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&(CHUNK_SIZE as u32).to_be_bytes());
        header.extend_from_slice(&prefix);
        out.write_all(&header).map_err(write_err)?;
        header.extend_from_slice(context);
        Ok(StreamSealer {
            key,
            prefix,
            aad: header,
            index: 0,
            buf: Vec::with_capacity(CHUNK_SIZE + TAG_LEN),
            out,
        })
    }

    fn emit(&mut self, last: bool) -> Result<()> {
        let tag = self
            .key
            .seal_in_place_separate_tag(
                nonce(&self.prefix, self.index, last),
                Aad::from(&self.aad[..]),
                &mut self.buf,
            )
            .map_err(|_| Error::Malformed {
                what: "content",
                reason: "chunk too large".into(),
            })?;
        self.out.write_all(&self.buf).map_err(write_err)?;
        self.out.write_all(tag.as_ref()).map_err(write_err)?;
        self.buf.clear();
        self.index = self.index.checked_add(1).ok_or_else(|| Error::Malformed {
            what: "content",
            reason: "more than 2^32 chunks".into(),
        })?;
        Ok(())
    }

    /// Adds plaintext.
    pub fn write_all(&mut self, mut data: &[u8]) -> Result<()> {
        while !data.is_empty() {
            if self.buf.len() == CHUNK_SIZE {
                self.emit(false)?;
            }
            let take = (CHUNK_SIZE - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
        }
        Ok(())
    }

    /// Seals the final chunk and returns the writer.
    pub fn finish(mut self) -> Result<W> {
        self.emit(true)?;
        self.out.flush().map_err(write_err)?;
        Ok(self.out)
    }
}

fn write_err(e: std::io::Error) -> Error {
    Error::Io {
        path: "sealed stream".into(),
        source: e,
    }
}

/// Seals `plaintext` for the object named by `context`.
pub fn seal(k: &SecretKey, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let mut s = StreamSealer::new(k, context, Vec::with_capacity(sealed_len(plaintext.len())))?;
    s.write_all(plaintext)?;
    s.finish()
}

/// Opens a sealed stream from `input` and writes the plaintext to `out` chunk
/// by chunk, each chunk authenticated before it is written. A truncated or
/// altered stream ends in an error, possibly after earlier chunks were
/// written: callers that must not release partial plaintext use [`open`].
pub fn open_to<R: Read, W: Write>(
    k: &SecretKey,
    context: &[u8],
    mut input: R,
    mut out: W,
) -> Result<u64> {
    let key = aead_key(k)?;
    let mut header = [0u8; HEADER_LEN];
    read_full(&mut input, &mut header)?;
    if header.len() < HEADER_LEN || &header[..8] != MAGIC {
        return Err(Error::Malformed {
            what: "sealed content",
            reason: "missing header".into(),
        });
    }
    let chunk_size = u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize;
    if !(1024..=16 * 1024 * 1024).contains(&chunk_size) {
        return Err(Error::Malformed {
            what: "sealed content",
            reason: format!("chunk size {chunk_size} out of range"),
        });
    }
    let mut prefix = [0u8; 7];
    prefix.copy_from_slice(&header[12..HEADER_LEN]);
    let mut aad = header.to_vec();
    aad.extend_from_slice(context);
    let stored = chunk_size + TAG_LEN;
    let mut cur = vec![0u8; stored];
    let mut next = vec![0u8; stored];
    let mut cur_len = read_full(&mut input, &mut cur)?;
    let mut index: u32 = 0;
    let mut total = 0u64;
    loop {
        // The chunk is last if nothing follows it.
        let next_len = if cur_len == stored {
            read_full(&mut input, &mut next)?
        } else {
            0
        };
        let last = next_len == 0;
        if cur_len < TAG_LEN {
            return Err(if cur_len == 0 && index > 0 {
                Error::Truncated
            } else {
                Error::Tampered {
                    what: Context::Content,
                }
            });
        }
        // ring leaves a buffer unspecified after a failed open; keep the final
        // chunk's ciphertext to tell truncation from tampering.
        let backup = last.then(|| cur[..cur_len].to_vec());
        let piece = &mut cur[..cur_len];
        match key.open_in_place(nonce(&prefix, index, last), Aad::from(&aad[..]), piece) {
            Ok(pt) => {
                out.write_all(pt).map_err(write_err)?;
                total += pt.len() as u64;
            }
            Err(_) => {
                // A final chunk that opens as a middle chunk means the tail was cut off.
                if let Some(mut again) = backup
                    && key
                        .open_in_place(
                            nonce(&prefix, index, false),
                            Aad::from(&aad[..]),
                            &mut again,
                        )
                        .is_ok()
                {
                    return Err(Error::Truncated);
                }
                return Err(Error::Tampered {
                    what: Context::Content,
                });
            }
        }
        if last {
            out.flush().map_err(write_err)?;
            return Ok(total);
        }
        std::mem::swap(&mut cur, &mut next);
        cur_len = next_len;
        index = index.checked_add(1).ok_or(Error::Tampered {
            what: Context::Content,
        })?;
    }
}

/// Reads until `buf` is full or the input ends; returns how much was read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Io {
                    path: "sealed stream".into(),
                    source: e,
                });
            }
        }
    }
    Ok(n)
}

/// Opens content sealed by [`seal`] under the same key and context; returns
/// the plaintext only if the whole stream authenticates.
pub fn open(k: &SecretKey, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < HEADER_LEN + TAG_LEN || &sealed[..8] != MAGIC {
        return Err(Error::Malformed {
            what: "sealed content",
            reason: "missing header".into(),
        });
    }
    let mut out = Vec::with_capacity(sealed.len());
    open_to(k, context, sealed, &mut out)?;
    Ok(out)
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

    #[test]
    fn streaming_matches_whole_and_splits_anywhere() {
        let pt: Vec<u8> = (0..(2 * CHUNK_SIZE + 77)).map(|i| (i * 13) as u8).collect();
        for split in [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, 2 * CHUNK_SIZE + 77] {
            let mut s = StreamSealer::new(&key(), b"c", Vec::new()).unwrap();
            s.write_all(&pt[..split]).unwrap();
            s.write_all(&pt[split..]).unwrap();
            let sealed = s.finish().unwrap();
            let mut out = Vec::new();
            assert_eq!(
                open_to(&key(), b"c", &sealed[..], &mut out).unwrap(),
                pt.len() as u64
            );
            assert_eq!(out, pt);
        }
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
