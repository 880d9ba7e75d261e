//! Passphrase-sealed key files: the default key provider's storage.
//!
//! ```json
//! {"format":"bletchley-keyfile-v1","label":"agency:mi5",
//!  "kdf":{"alg":"argon2id","m_kib":65536,"t":3,"p":1},"salt":"…","sealed":"…"}
//! ```
//!
//! The passphrase goes through argon2id to a wrapping key; `sealed` is the
//! named secrets under AES-256-GCM with the header (format, label, KDF
//! parameters, salt) as associated data, so none of it can be swapped.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

use crate::error::{Context, Error, Result};
use crate::keys::{SecretKey, random_bytes};
use crate::record;

const FORMAT: &str = "bletchley-keyfile-v1";

/// argon2id cost parameters, stored in the file so it opens with the cost it
/// was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// RFC 9106's second recommended setting, with one lane: 64 MiB, 3 passes.
    fn default() -> Self {
        KdfParams {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Kdf {
    alg: String,
    #[serde(flatten)]
    params: KdfParams,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct OnDisk {
    format: String,
    label: String,
    kdf: Kdf,
    salt: String,
    sealed: String,
}

/// An unlocked key file: named 256-bit secrets plus what is needed to save it
/// again without asking for the passphrase twice.
pub struct KeyFile {
    label: String,
    params: KdfParams,
    salt: [u8; 16],
    wrapping: SecretKey,
    secrets: BTreeMap<String, SecretKey>,
}

fn header_aad(label: &str, p: &KdfParams, salt: &[u8]) -> Vec<u8> {
    format!(
        "{FORMAT}|{label}|argon2id|{}|{}|{}|{}",
        p.m_kib,
        p.t,
        p.p,
        B64.encode(salt)
    )
    .into_bytes()
}

fn derive(passphrase: &[u8], salt: &[u8], p: &KdfParams) -> Result<SecretKey> {
    let params =
        argon2::Params::new(p.m_kib, p.t, p.p, Some(32)).map_err(|e| Error::Malformed {
            what: "key file",
            reason: format!("bad argon2 parameters: {e}"),
        })?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase, salt, &mut out[..])
        .map_err(|e| Error::Malformed {
            what: "key file",
            reason: format!("argon2: {e}"),
        })?;
    Ok(SecretKey::from_bytes(*out))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to `path` so that after a crash the file holds either the
/// old or the new contents: temporary file, fsync, rename, fsync directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    // A bare file name has the empty path as its parent: that is the working directory.
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(io(path))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

impl KeyFile {
    /// A new key file holding `secrets`, sealed under `passphrase`.
    pub fn create(
        label: &str,
        passphrase: &[u8],
        params: KdfParams,
        secrets: BTreeMap<String, SecretKey>,
    ) -> Result<KeyFile> {
        if passphrase.is_empty() {
            return Err(Error::Malformed {
                what: "passphrase",
                reason: "empty".into(),
            });
        }
        let mut salt = [0u8; 16];
        random_bytes(&mut salt)?;
        let wrapping = derive(passphrase, &salt, &params)?;
        Ok(KeyFile {
            label: label.to_owned(),
            params,
            salt,
            wrapping,
            secrets,
        })
    }

    /// The label stored in the file at `path`, readable without the passphrase
    /// so a prompt can say which key it wants.
    pub fn peek_label(path: &Path) -> Result<String> {
        let text = std::fs::read(path).map_err(io(path))?;
        let d: OnDisk = serde_json::from_slice(&text).map_err(|e| Error::Malformed {
            what: "key file",
            reason: e.to_string(),
        })?;
        Ok(d.label)
    }

    /// Unlocks the key file at `path`.
    pub fn open(path: &Path, passphrase: &[u8]) -> Result<KeyFile> {
        let text = std::fs::read(path).map_err(io(path))?;
        let d: OnDisk = serde_json::from_slice(&text).map_err(|e| Error::Malformed {
            what: "key file",
            reason: e.to_string(),
        })?;
        if d.format != FORMAT || d.kdf.alg != "argon2id" {
            return Err(Error::Malformed {
                what: "key file",
                reason: format!("unsupported format {:?}", d.format),
            });
        }
        let salt: [u8; 16] = B64
            .decode(&d.salt)
            .ok()
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| Error::Malformed {
                what: "key file",
                reason: "bad salt".into(),
            })?;
        let sealed = B64.decode(&d.sealed).map_err(|_| Error::Malformed {
            what: "key file",
            reason: "sealed part is not base64".into(),
        })?;
        let wrapping = derive(passphrase, &salt, &d.kdf.params)?;
        let plain = Zeroizing::new(
            record::open(
                &wrapping,
                &header_aad(&d.label, &d.kdf.params, &salt),
                &sealed,
                Context::KeyFile,
            )
            .map_err(|_| Error::WrongPassphrase {
                label: d.label.clone(),
            })?,
        );
        let named: BTreeMap<String, String> =
            serde_json::from_slice(&plain).map_err(|e| Error::Malformed {
                what: "key file contents",
                reason: e.to_string(),
            })?;
        let mut secrets = BTreeMap::new();
        for (k, v) in named {
            let bytes = Zeroizing::new(B64.decode(v).map_err(|_| Error::Malformed {
                what: "key file contents",
                reason: "bad key".into(),
            })?);
            secrets.insert(k, SecretKey::from_slice(&bytes)?);
        }
        Ok(KeyFile {
            label: d.label,
            params: d.kdf.params,
            salt,
            wrapping,
            secrets,
        })
    }

    /// Seals and writes the file atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let encoded: Vec<(&str, Zeroizing<String>)> = self
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), Zeroizing::new(B64.encode(v.expose()))))
            .collect();
        let named: BTreeMap<&str, &str> = encoded.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let plain = Zeroizing::new(serde_json::to_vec(&named).map_err(|e| Error::Malformed {
            what: "key file",
            reason: e.to_string(),
        })?);
        let sealed = record::seal(
            &self.wrapping,
            &header_aad(&self.label, &self.params, &self.salt),
            &plain,
        )?;
        let d = OnDisk {
            format: FORMAT.into(),
            label: self.label.clone(),
            kdf: Kdf {
                alg: "argon2id".into(),
                params: self.params,
            },
            salt: B64.encode(self.salt),
            sealed: B64.encode(sealed),
        };
        let mut text = serde_json::to_vec_pretty(&d).map_err(|e| Error::Malformed {
            what: "key file",
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        write_atomic(path, &text)
    }

    /// The label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// A named secret.
    pub fn get(&self, name: &str) -> Option<&SecretKey> {
        self.secrets.get(name)
    }

    /// All secrets.
    pub fn secrets(&self) -> &BTreeMap<String, SecretKey> {
        &self.secrets
    }

    /// Sets a named secret (call [`KeyFile::save`] to persist).
    pub fn set(&mut self, name: &str, key: SecretKey) {
        self.secrets.insert(name.to_owned(), key);
    }

    /// Removes a named secret (call [`KeyFile::save`] to persist).
    pub fn remove(&mut self, name: &str) {
        self.secrets.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_passphrase_is_reported() {
        let dir = std::env::temp_dir().join(format!("bly-kf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("k.key");
        let p = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let mut s = BTreeMap::new();
        s.insert("kek.1".to_owned(), SecretKey::from_bytes([3; 32]));
        KeyFile::create("agency:x", b"right", p, s)
            .unwrap()
            .save(&path)
            .unwrap();
        let k = KeyFile::open(&path, b"right").unwrap();
        assert_eq!(k.get("kek.1").unwrap().expose(), &[3; 32]);
        assert!(matches!(
            KeyFile::open(&path, b"wrong"),
            Err(Error::WrongPassphrase { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
