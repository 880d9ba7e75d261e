//! Cosignatures in the C2SP `tlog-cosignature` format (Ed25519, `cosignature/v1`):
//! a witness's statement that, at a time, the checkpoint is the largest consistent
//! tree head it has seen for the log. A log whose checkpoints carry a quorum of
//! them cannot show one history to the overseer and another to anyone else, nor
//! rewrite what it already showed, without a witness refusing.
//!
//! ```text
//! — <witness name> base64(key id (4) || timestamp (u64 BE) || Ed25519 signature (64))
//! ```
//!
//! The signed message is `cosignature/v1\ntime <timestamp>\n` followed by the
//! whole checkpoint body (extension lines included). The key id is
//! `SHA-256(name || "\n" || 0x04 || public key)[..4]`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bletchley_crypto::{SigningKey, VerifyingKey, sha256_parts};

use crate::error::{Error, Result};

/// The signature type byte of an Ed25519 cosignature/v1 key.
const COSIGNATURE_V1_TYPE: u8 = 0x04;

fn key_id(name: &str, pk: &[u8; 32]) -> [u8; 4] {
    let h = sha256_parts(&[name.as_bytes(), b"\n", &[COSIGNATURE_V1_TYPE], pk]);
    [h[0], h[1], h[2], h[3]]
}

/// A witness's public key, in the signed-note verifier-key text form with
/// signature type 0x04: `<name>+<hex key id>+<base64(0x04 || public key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessKey {
    /// The witness's name, a schema-less URL by convention (`witness.ipco.example/w1`).
    pub name: String,
    key: VerifyingKey,
}

impl WitnessKey {
    /// The public key of a witness signing key.
    pub fn new(name: &str, key: VerifyingKey) -> Result<WitnessKey> {
        check_name(name)?;
        Ok(WitnessKey {
            name: name.to_owned(),
            key,
        })
    }

    /// Renders the text form.
    pub fn render(&self) -> String {
        let mut raw = vec![COSIGNATURE_V1_TYPE];
        raw.extend_from_slice(&self.key.0);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(key_id(&self.name, &self.key.0)),
            B64.encode(raw)
        )
    }

    /// Parses the text form; the key id must match the name and key.
    pub fn parse(s: &str) -> Result<WitnessKey> {
        let bad = |r: &str| Error::Malformed {
            what: "witness key",
            reason: r.to_owned(),
        };
        let mut parts = s.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+key"));
        };
        check_name(name)?;
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        if raw.len() != 33 || raw[0] != COSIGNATURE_V1_TYPE {
            return Err(bad(
                "not an Ed25519 cosignature/v1 key (type 0x04, 32 bytes)",
            ));
        }
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&raw[1..]);
        if hex::encode(key_id(name, &pk)) != id {
            return Err(bad("key id does not match the name and key"));
        }
        Ok(WitnessKey {
            name: name.to_owned(),
            key: VerifyingKey(pk),
        })
    }

    /// The time stamp of `line` if it is this witness's valid cosignature on the
    /// checkpoint whose note body (text before the blank line, with its final
    /// newline) is `body`; `None` for another key's line or a bad signature.
    pub fn check(&self, body: &str, line: &str) -> Option<u64> {
        let (name, raw) = signature_line(line)?;
        if name != self.name || raw.len() != 4 + 8 + 64 || raw[..4] != key_id(name, &self.key.0) {
            return None;
        }
        let time = u64::from_be_bytes(raw[4..12].try_into().ok()?);
        if time > i64::MAX as u64 {
            return None;
        }
        self.key
            .verify(&message(time, body), &raw[12..])
            .then_some(time)
    }
}

/// Names are one line with no spaces or `+` (the signed-note rule).
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name
            .chars()
            .any(|c| c.is_whitespace() || c == '+' || c.is_control())
    {
        return Err(Error::Malformed {
            what: "witness key",
            reason: format!(
                "name {name:?} must be non-empty, without spaces, '+' or control characters"
            ),
        });
    }
    Ok(())
}

/// The message a cosignature/v1 signs.
fn message(time: u64, body: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{body}").into_bytes()
}

/// A signature line's key name and decoded bytes.
pub(crate) fn signature_line(line: &str) -> Option<(&str, Vec<u8>)> {
    let rest = line.strip_prefix("\u{2014} ")?;
    let (name, sig) = rest.rsplit_once(' ')?;
    Some((name, B64.decode(sig).ok()?))
}

/// Splits a signed note into its body (with the final newline) and its
/// signature lines.
pub fn split_note(note: &str) -> Result<(String, Vec<&str>)> {
    let Some((body, sigs)) = note.split_once("\n\n") else {
        return Err(Error::Malformed {
            what: "signed note",
            reason: "no blank line between the body and the signatures".into(),
        });
    };
    let lines: Vec<&str> = sigs.lines().filter(|l| !l.is_empty()).collect();
    if lines.iter().any(|l| !l.starts_with("\u{2014} ")) {
        return Err(Error::Malformed {
            what: "signed note",
            reason: "a signature line does not start with '\u{2014} '".into(),
        });
    }
    Ok((format!("{body}\n"), lines))
}

/// A witness's signing key and name: makes cosignature lines.
pub struct Cosigner {
    name: String,
    key: SigningKey,
}

impl Cosigner {
    /// A cosigner named `name` with `key`.
    pub fn new(name: &str, key: SigningKey) -> Result<Cosigner> {
        check_name(name)?;
        Ok(Cosigner {
            name: name.to_owned(),
            key,
        })
    }

    /// Its public key.
    pub fn public(&self) -> WitnessKey {
        WitnessKey {
            name: self.name.clone(),
            key: self.key.verifying_key(),
        }
    }

    /// The cosignature line (with its newline) over `body` at `time` (Unix seconds).
    pub fn cosign(&self, body: &str, time: u64) -> String {
        let sig = self.key.sign(&message(time, body));
        let mut raw = key_id(&self.name, &self.key.verifying_key().0).to_vec();
        raw.extend_from_slice(&time.to_be_bytes());
        raw.extend_from_slice(&sig);
        format!("\u{2014} {} {}\n", self.name, B64.encode(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosigns_and_checks() {
        let c = Cosigner::new("witness.example/w1", SigningKey::generate().unwrap()).unwrap();
        let k = c.public();
        assert_eq!(WitnessKey::parse(&k.render()).unwrap(), k);
        let body = "bletchley/x\n3\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n";
        let line = c.cosign(body, 1_700_000_000);
        assert_eq!(k.check(body, line.trim_end()), Some(1_700_000_000));
        assert_eq!(
            k.check(&body.replace("\n3\n", "\n4\n"), line.trim_end()),
            None
        );
        let other = Cosigner::new("witness.example/w1", SigningKey::generate().unwrap()).unwrap();
        assert_eq!(other.public().check(body, line.trim_end()), None);
        // A changed time stamp breaks the signature.
        let (_, mut raw) = signature_line(line.trim_end()).unwrap();
        raw[11] ^= 1;
        let forged = format!("\u{2014} witness.example/w1 {}", B64.encode(raw));
        assert_eq!(k.check(body, &forged), None);
        assert!(WitnessKey::parse("a b+00000000+AA==").is_err());
        assert!(Cosigner::new("has space", SigningKey::generate().unwrap()).is_err());
    }
}
