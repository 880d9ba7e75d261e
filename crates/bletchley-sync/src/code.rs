//! One-time enrolment codes.
//!
//! Identity files may travel by any channel, so a file alone proves nothing about who sent it.
//! When the hub enrols a field site it makes a one-time code, which its operator gives the
//! field's operator over a different channel (read out by telephone, in a sealed envelope).
//! The field enrols the hub with that code. At first contact each side proves it holds the code
//! with a keyed digest over both identities' fingerprints, so the proof is worthless for any
//! other pair of identities. The hub sends a site nothing until it has checked the site's proof,
//! and forgets the code once it has; a field accepts nothing from a hub whose proof it has not
//! checked.

use bletchley_crypto::SecretKey;
use bletchley_crypto::keys::{keyed_tag, random_bytes};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The alphabet of codes: no 0/O, 1/I/L, so that a code read aloud is not misheard.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789#";
/// Characters in a code (three groups of five): 31^15, about 74 bits.
const LEN: usize = 15;
/// How long a code may wait for its first contact.
pub const VALID_MS: i64 = 7 * 24 * 3600 * 1000;
/// Wrong proofs before the code is void and the site must be enrolled again.
pub const MAX_ATTEMPTS: u32 = 5;

/// A fresh code, `XXXXX-XXXXX-XXXXX`.
pub fn new_code() -> Result<String> {
    // 31 usable symbols (the last alphabet entry is never drawn); bytes of 248 or more are
    // drawn again, so that every symbol is equally likely.
    let mut chars = Vec::with_capacity(LEN);
    while chars.len() < LEN {
        let mut raw = [0u8; 32];
        random_bytes(&mut raw)?;
        chars.extend(
            raw.iter()
                .filter(|b| **b < 248)
                .map(|b| ALPHABET[(*b as usize) % 31] as char),
        );
    }
    chars.truncate(LEN);
    Ok(chars
        .chunks(5)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-"))
}

/// A code as typed: case, spaces and dashes do not matter.
pub fn normalise(code: &str) -> Result<String> {
    let s: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if s.len() != LEN || !s.bytes().all(|b| ALPHABET[..31].contains(&b)) {
        return Err(Error::Invalid(format!(
            "{code:?} is not an enrolment code (three groups of five letters and digits, as the hub printed it)"
        )));
    }
    Ok(s)
}

/// Who proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Prover {
    /// The hub, to the field site.
    Hub,
    /// The field site, to the hub.
    Field,
}

/// The proof that `prover` holds `code` (normalised), bound to both identities.
pub fn proof(code: &str, prover: Prover, hub_fp: &str, field_fp: &str) -> String {
    let key = SecretKey::from_bytes(Sha256::digest(code.as_bytes()).into());
    let domain = match prover {
        Prover::Hub => "bletchley enrolment v1: hub",
        Prover::Field => "bletchley enrolment v1: field",
    };
    hex::encode(keyed_tag(
        &key,
        domain,
        format!("{hub_fp}/{field_fp}").as_bytes(),
    ))
}

/// Compares proofs without a timing signal.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn codes_read_back_and_proofs_bind_both_sides() {
        let c = new_code().expect("code");
        assert_eq!(c.len(), 17);
        let n = normalise(&c.to_lowercase().replace('-', " ")).expect("normalise");
        assert_eq!(n, c.replace('-', ""));
        assert_ne!(new_code().expect("code"), c);
        let p = proof(&n, Prover::Field, "hubfp", "fieldfp");
        assert!(same(&p, &proof(&n, Prover::Field, "hubfp", "fieldfp")));
        assert!(!same(&p, &proof(&n, Prover::Hub, "hubfp", "fieldfp")));
        assert!(!same(&p, &proof(&n, Prover::Field, "hubfp", "otherfp")));
        let other = normalise(&new_code().expect("code")).expect("n");
        assert!(!same(&p, &proof(&other, Prover::Field, "hubfp", "fieldfp")));
        for bad in [
            "",
            "ABCDE-FGHJK",
            "ABCDE-FGHJK-MNPQ0",
            "ABCDE-FGHJK-MNPQR-S",
        ] {
            assert!(normalise(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn anything_typed_is_a_code_or_an_error(s in ".{0,40}") {
            if let Ok(n) = normalise(&s) {
                prop_assert_eq!(n.len(), LEN);
            }
        }
    }
}
