//! Checkpoints in the C2SP `tlog-checkpoint` format, signed as C2SP signed
//! notes with Ed25519, so standard transparency-log tooling can read them.
//!
//! ```text
//! <origin>
//! <tree size>
//! <base64 root hash>
//! [extension lines, e.g. `bletchley-catalog <hex>`]
//!
//! — <key name> <base64(key id (4 bytes) || signature (64 bytes))>
//! ```

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bletchley_crypto::{SigningKey, VerifyingKey, sha256_parts};

use crate::error::{Error, Result};
use crate::merkle::Hash;

const ED25519_TYPE: u8 = 0x01;

fn key_id(name: &str, pk: &[u8; 32]) -> [u8; 4] {
    let h = sha256_parts(&[name.as_bytes(), b"\n", &[ED25519_TYPE], pk]);
    [h[0], h[1], h[2], h[3]]
}

/// A public verifier key in the signed-note text form
/// `<name>+<hex key id>+<base64(0x01 || public key)>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    /// The key name, which is also the log's origin.
    pub name: String,
    key: VerifyingKey,
}

impl Verifier {
    /// The verifier for a signing key.
    pub fn new(name: &str, key: VerifyingKey) -> Verifier {
        Verifier {
            name: name.to_owned(),
            key,
        }
    }

    /// Renders the text form.
    pub fn render(&self) -> String {
        let mut raw = vec![ED25519_TYPE];
        raw.extend_from_slice(&self.key.0);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(key_id(&self.name, &self.key.0)),
            B64.encode(raw)
        )
    }

    /// Parses the text form.
    pub fn parse(s: &str) -> Result<Verifier> {
        let bad = |r: &str| Error::Malformed {
            what: "verifier key",
            reason: r.to_owned(),
        };
        let s = s.trim();
        // Names never contain '+'; base64 keys may.
        let mut parts = s.splitn(3, '+');
        let (Some(name), Some(id), Some(b64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+keyid+key"));
        };
        let raw = B64.decode(b64).map_err(|_| bad("key is not base64"))?;
        if raw.len() != 33 || raw[0] != ED25519_TYPE {
            return Err(bad("not an Ed25519 key"));
        }
        let mut pk = [0u8; 32];
        pk.copy_from_slice(&raw[1..]);
        if hex::encode(key_id(name, &pk)) != id {
            return Err(bad("key id does not match the key"));
        }
        Ok(Verifier {
            name: name.to_owned(),
            key: VerifyingKey(pk),
        })
    }
}

/// A tree head: origin, size and root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Which log.
    pub origin: String,
    /// Number of entries covered.
    pub size: u64,
    /// Root hash over them.
    pub root: Hash,
    /// Extension lines (C2SP `tlog-checkpoint`), signed with the rest:
    /// Bletchley binds the catalog's state into each checkpoint with one.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    fn body(&self) -> String {
        let mut b = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            b.push_str(e);
            b.push('\n');
        }
        b
    }

    /// The value of the extension line `key <value>`, if there is one.
    pub fn extension(&self, key: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
    }

    /// The signed note text.
    pub fn sign(&self, key: &SigningKey) -> String {
        let body = self.body();
        let sig = key.sign(body.as_bytes());
        let mut raw = key_id(&self.origin, &key.verifying_key().0).to_vec();
        raw.extend_from_slice(&sig);
        format!("{body}\n\u{2014} {} {}\n", self.origin, B64.encode(raw))
    }

    /// Parses a signed note and checks its signature by `verifier`.
    pub fn verify(note: &str, verifier: &Verifier) -> Result<Checkpoint> {
        let bad = |r: String| Error::Malformed {
            what: "checkpoint",
            reason: r,
        };
        let Some((body, sigs)) = note.split_once("\n\n") else {
            return Err(bad(
                "no signature block (expected a blank line after the body)".into(),
            ));
        };
        let body = format!("{body}\n");
        let mut lines = body.lines();
        let origin = lines.next().unwrap_or_default().to_owned();
        let size: u64 = lines
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("second line is not a tree size".into()))?;
        let root: Hash = lines
            .next()
            .and_then(|s| B64.decode(s).ok())
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| bad("third line is not a base64 SHA-256 root".into()))?;
        let extensions: Vec<String> = lines.map(str::to_owned).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("an empty extension line".into()));
        }
        if origin != verifier.name {
            return Err(bad(format!(
                "origin {origin:?} is not the verifier's log {:?}",
                verifier.name
            )));
        }
        let want_id = key_id(&verifier.name, &verifier.key.0);
        for line in sigs.lines() {
            let Some(rest) = line.strip_prefix("\u{2014} ") else {
                return Err(bad(format!("malformed signature line {line:?}")));
            };
            let Some((name, sig)) = rest.rsplit_once(' ') else {
                return Err(bad("signature line lacks a signature".into()));
            };
            let Ok(raw) = B64.decode(sig) else {
                return Err(bad("signature is not base64".into()));
            };
            if name == verifier.name && raw.len() == 68 && raw[..4] == want_id {
                if verifier.key.verify(body.as_bytes(), &raw[4..]) {
                    return Ok(Checkpoint {
                        origin,
                        size,
                        root,
                        extensions,
                    });
                }
                return Err(Error::BadSignature);
            }
        }
        Err(Error::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies() {
        let k = SigningKey::generate().unwrap();
        let v = Verifier::new("bletchley/test", k.verifying_key());
        assert_eq!(Verifier::parse(&v.render()).unwrap(), v);
        let cp = Checkpoint {
            origin: "bletchley/test".into(),
            size: 7,
            root: [9; 32],
            extensions: vec!["bletchley-catalog 00ff".into()],
        };
        let note = cp.sign(&k);
        assert!(note.starts_with("bletchley/test\n7\n"));
        assert_eq!(Checkpoint::verify(&note, &v).unwrap(), cp);
        let forged = note.replace("\n7\n", "\n8\n");
        assert!(Checkpoint::verify(&forged, &v).is_err());
        let forged = note.replace("00ff", "00fe");
        assert!(Checkpoint::verify(&forged, &v).is_err());
        assert_eq!(cp.extension("bletchley-catalog"), Some("00ff"));
        let other = Verifier::new(
            "bletchley/test",
            SigningKey::generate().unwrap().verifying_key(),
        );
        assert!(Checkpoint::verify(&note, &other).is_err());
    }
}
