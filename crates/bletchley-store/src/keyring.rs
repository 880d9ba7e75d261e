//! Unlocking the platform's and agencies' key files.

use std::path::{Path, PathBuf};

use bletchley_crypto::{KdfParams, KeyFile, PassphraseProvider, SecretKey, SigningKey};
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Which key file a passphrase is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyName {
    /// The platform's catalog, index and checkpoint-signing keys.
    Platform,
    /// The oversight body's audit-reading key.
    Oversight,
    /// An agency's key-encryption keys.
    Agency(String),
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyName::Platform => f.write_str("platform"),
            KeyName::Oversight => f.write_str("oversight"),
            KeyName::Agency(a) => write!(f, "agency {a}"),
        }
    }
}

/// Supplies passphrases. The binary implements it from the environment or a
/// prompt; nothing below the binary knows where passphrases come from.
pub trait Unlock: Send {
    /// The passphrase for `key`, or a message saying how to provide one.
    fn passphrase(&self, key: &KeyName) -> std::result::Result<Zeroizing<String>, String>;
}

pub(crate) fn key_path(keys_dir: &Path, name: &KeyName) -> PathBuf {
    match name {
        KeyName::Platform => keys_dir.join("platform.key"),
        KeyName::Oversight => keys_dir.join("oversight.key"),
        KeyName::Agency(a) => keys_dir.join(format!("agency-{a}.key")),
    }
}

pub(crate) fn open_keyfile(
    keys_dir: &Path,
    name: &KeyName,
    unlock: &dyn Unlock,
) -> Result<KeyFile> {
    let path = key_path(keys_dir, name);
    if !path.exists() {
        return Err(Error::Layout(format!(
            "key file for {name} is missing at {}",
            path.display()
        )));
    }
    let pass = unlock.passphrase(name).map_err(Error::Passphrase)?;
    Ok(KeyFile::open(&path, pass.as_bytes())?)
}

pub(crate) fn create_keyfile(
    keys_dir: &Path,
    name: &KeyName,
    unlock: &dyn Unlock,
    kdf: KdfParams,
    secrets: Vec<(&str, SecretKey)>,
) -> Result<KeyFile> {
    let path = key_path(keys_dir, name);
    if path.exists() {
        return Err(Error::Exists {
            kind: "key file",
            name: path.display().to_string(),
        });
    }
    let pass = unlock.passphrase(name).map_err(Error::Passphrase)?;
    let kf = KeyFile::create(
        &name.to_string(),
        pass.as_bytes(),
        kdf,
        secrets
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
    )?;
    kf.save(&path)?;
    Ok(kf)
}

/// The platform's own secrets.
pub(crate) struct PlatformKeys {
    pub catalog: SecretKey,
    pub index: SecretKey,
    pub signer: SigningKey,
}

impl PlatformKeys {
    pub fn from_keyfile(kf: &KeyFile) -> Result<PlatformKeys> {
        let get = |n: &str| {
            kf.get(n)
                .cloned()
                .ok_or_else(|| Error::Layout(format!("platform key file lacks {n}")))
        };
        Ok(PlatformKeys {
            catalog: get("catalog")?,
            index: get("index")?,
            signer: SigningKey::from_seed(get("signing")?)?,
        })
    }
}

/// An agency's unlocked keys.
pub(crate) struct AgencyKeys {
    pub id: i64,
    pub provider: PassphraseProvider,
    pub dedup: SecretKey,
    pub keyfile: KeyFile,
}

impl AgencyKeys {
    pub fn from_keyfile(id: i64, name: &str, kf: KeyFile) -> Result<AgencyKeys> {
        let mut keks: Vec<(u32, SecretKey)> = kf
            .secrets()
            .iter()
            .filter_map(|(k, v)| {
                k.strip_prefix("kek.")
                    .and_then(|n| n.parse().ok())
                    .map(|n| (n, v.clone()))
            })
            .collect();
        keks.sort_by_key(|(n, _)| *n);
        let dedup = kf
            .get("dedup")
            .cloned()
            .ok_or_else(|| Error::Layout(format!("key file of {name} lacks dedup key")))?;
        Ok(AgencyKeys {
            id,
            provider: PassphraseProvider::new(format!("agency {name}"), keks)?,
            dedup,
            keyfile: kf,
        })
    }
}
