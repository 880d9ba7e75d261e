//! The platform: a data directory, its catalog, keys, locations and audit
//! log, and every act on items — each through the gate and into the log.

mod annotations;
mod credentials;
mod feed;
mod jobs;
mod sites;

pub use annotations::{ANNOTATION, Annotation, MAX_ANNOTATION};

pub use sites::SiteScope;

pub use feed::Fed;

pub use credentials::{CertificateRecord, SecondFactor, TokenRecord, TokenScope};

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use bletchley_audit::{AuditLog, Entry, Outcome, Writer};
use bletchley_crypto::{
    DataKey, KdfParams, KeyProvider, OversightSecretKey, SecretKey, SigningKey, WrappedKey,
};
use bletchley_crypto::{keyed_tag, record, stream};
use bletchley_policy::{
    Access, AuditReach, Collection, CollectionId, Denial, Gate, Marking, Nation, Operation,
    Principal, Share, SystemGate, Visibility,
};

use crate::catalog::{
    Catalog, ContentRef, ContentRow, ItemRow, PackSlice, SealedTable, SqliteCatalog, WrappedKeyRow,
};
use crate::error::{Error, Result, io};
use crate::item::{IndexFeedItem, IngestOptions, ItemMeta, Lineage, Listing, NewItem};
use crate::keyring::{AgencyKeys, KeyName, PlatformKeys, Unlock, create_keyfile, open_keyfile};
use crate::location::{Location, LocationSpec, ObjectLocation};
use crate::residency::{self, Jurisdiction, Scope};

/// An operation as one of its members sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct OperationView {
    /// The operation (members, dates, raw shares).
    pub operation: Operation,
    /// Whether it runs now.
    pub active: bool,
    /// Its shares with collection names.
    pub shares: Vec<SharedCollection>,
}

/// A collection shared into an operation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SharedCollection {
    /// `agency/name`.
    pub collection: String,
    /// Unix seconds when shared.
    pub since: i64,
    /// Unix seconds when withdrawn, if it was.
    pub withdrawn: Option<i64>,
}

/// What an auditor asks of the audit trail.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only entries by this principal.
    pub principal: Option<String>,
    /// Only actions starting with this (`item.`, `search`, `login`).
    pub action: Option<String>,
    /// At most this many entries, newest first (1 to 1000).
    pub limit: usize,
}

/// What an auditor sees: the log's integrity, and its entries when the
/// oversight key is on this platform.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditReview {
    /// The chain and checkpoint verification: a report, or why it failed.
    pub integrity: std::result::Result<bletchley_audit::Report, String>,
    /// Matching entries (sequence number, entry), newest first.
    pub entries: Vec<(u64, Entry)>,
    /// Entries in the log that matched, before the limit.
    pub matched: usize,
    /// Why entries could not be read, if they could not.
    pub unreadable: Option<String>,
}

/// Who performs an act, for the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The platform operator (holder of the platform passphrase).
    Operator,
    /// A named principal.
    Principal(String),
    /// The platform itself, doing the work named (no principal may take
    /// these names: see [`SYSTEM_ACTORS`]).
    System(SystemActor),
}

/// The platform's own workers, as the audit log names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SystemActor {
    /// The search index, reading items to index them.
    Indexer,
    /// The job worker (transcription).
    Worker,
    /// Recovery, retention and integrity checks.
    Platform,
}

impl SystemActor {
    /// The name in the audit log.
    pub fn name(self) -> &'static str {
        match self {
            SystemActor::Indexer => "indexer",
            SystemActor::Worker => "worker",
            SystemActor::Platform => "platform",
        }
    }
}

/// Names the audit log uses for the operator and the platform's own
/// workers: no principal may be given one, so an entry by `indexer` is
/// always the indexer's.
pub const SYSTEM_ACTORS: &[&str] = &["operator", "indexer", "worker", "platform", "system"];

impl Actor {
    fn name(&self) -> String {
        match self {
            Actor::Operator => "operator".into(),
            Actor::Principal(p) => p.clone(),
            Actor::System(s) => s.name().into(),
        }
    }
}

/// The checkpoint extension that binds the catalog's state into the audit
/// log.
const CATALOG_EXTENSION: &str = "bletchley-catalog";

/// The data directory format this version writes and reads: 2 binds every
/// sealed row to where it sits and every item to its content, and guards
/// the catalog and the audit log against the host; 3 counts the items, so
/// that a deleted row is noticed.
const FORMAT: &str = "3";

/// Settings chosen at `init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    /// The platform's home nation (unmarked releasability means this only).
    pub home: Nation,
    /// Jurisdiction of the default local location; its country becomes the
    /// default residency.
    pub jurisdiction: Jurisdiction,
    /// argon2id cost for every key file.
    pub kdf: KdfParams,
}

/// Current Unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn valid_name(kind: &'static str, s: &str, max: usize, extra: &[u8]) -> Result<()> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
        && s.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid {kind} name {s:?}: use 1-{max} letters, digits or {}, starting with a letter or digit",
            String::from_utf8_lossy(extra)
        )))
    }
}

/// What an item's sealed metadata says of its content, checked at every
/// read: a catalog row re-pointed at another content is refused, never
/// returned.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct ContentBinding {
    /// The owning agency.
    agency: String,
    /// The content's object name (what its key wrap and stream are bound to).
    object: String,
    /// Plaintext bytes.
    length: u64,
    /// SHA-256 of the plaintext, hex.
    sha256: String,
}

/// An item's metadata as sealed: what principals see, and the binding.
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedMeta {
    #[serde(flatten)]
    meta: ItemMeta,
    content: ContentBinding,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CollectionRecord {
    agency: String,
    name: String,
    bulk: bool,
}

/// Fingerprints of the keys a platform is known by, to keep outside its host.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TrustAnchors {
    /// The audit log's verifier key (C2SP signed-note form): `audit verify --verifier`
    /// takes it, and it checks every checkpoint the platform signs.
    pub audit_verifier: String,
    /// SHA-256 of the X25519 key that audit payloads are sealed to.
    pub oversight_key: String,
}

/// An open data directory.
pub struct Platform {
    root: PathBuf,
    catalog: SqliteCatalog,
    keys: PlatformKeys,
    audit: Writer,
    home: Nation,
    kdf: KdfParams,
    /// The oversight public key, as sealed in the platform key file.
    oversight: [u8; 32],
    unlock: Box<dyn Unlock>,
    agencies: HashMap<String, AgencyKeys>,
    rt: tokio::runtime::Runtime,
    job_lease_ms: i64,
    /// Items stored by this handle, kept for a derived store while on
    /// ([`Platform::feed_from`]).
    feed: Option<feed::Feed>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            path: "tokio runtime".into(),
            source: e,
        })
}

fn oversight_public_path(root: &Path) -> PathBuf {
    root.join("keys").join("oversight.pub")
}

fn read_oversight_public(root: &Path) -> Result<bletchley_crypto::OversightPublicKey> {
    let p = oversight_public_path(root);
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    let bytes: [u8; 32] = hex::decode(text.trim())
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::Layout(format!("{} is not a hex X25519 public key", p.display())))?;
    Ok(bletchley_crypto::OversightPublicKey(bytes))
}

/// Parts of sources that share a collection and settings, stored in one
/// commit by [`Platform::derive_many`].
struct DeriveGroup {
    coll: Collection,
    opts: IngestOptions,
    items: Vec<NewItem>,
    /// Per item.
    lineages: Vec<Lineage>,
    /// Per item: which of the sources given it came from.
    sources: Vec<usize>,
}

impl Platform {
    /// Creates a new data directory: key files, catalog, default location,
    /// residency and an empty audit log.
    pub fn init(root: &Path, opts: &InitOptions, unlock: Box<dyn Unlock>) -> Result<Platform> {
        if root.join("catalog.db").exists() || root.join("keys").exists() {
            return Err(Error::Exists {
                kind: "data directory",
                name: root.display().to_string(),
            });
        }
        let existed = root.exists();
        let r = Platform::init_inner(root, opts, unlock);
        if r.is_err() {
            // Leave nothing half-made behind.
            if existed {
                for name in [
                    "keys",
                    "audit",
                    "objects",
                    "catalog.db",
                    "catalog.db-wal",
                    "catalog.db-shm",
                ] {
                    let p = root.join(name);
                    let _ = if p.is_dir() {
                        std::fs::remove_dir_all(&p)
                    } else {
                        std::fs::remove_file(&p)
                    };
                }
            } else {
                let _ = std::fs::remove_dir_all(root);
            }
        }
        r
    }

    fn init_inner(root: &Path, opts: &InitOptions, unlock: Box<dyn Unlock>) -> Result<Platform> {
        let keys_dir = root.join("keys");
        std::fs::create_dir_all(&keys_dir).map_err(io(&keys_dir))?;
        let signer = SigningKey::generate()?;
        let oversight = OversightSecretKey::generate()?;
        create_keyfile(
            &keys_dir,
            &KeyName::Platform,
            unlock.as_ref(),
            opts.kdf,
            vec![
                ("catalog", SecretKey::generate()?),
                ("index", SecretKey::generate()?),
                ("signing", signer.seed().clone()),
                // The public file beside it is for the overseer; this
                // sealed copy is what the platform trusts.
                (
                    "oversight-pub",
                    SecretKey::from_bytes(oversight.public_key().0),
                ),
            ],
        )?;
        create_keyfile(
            &keys_dir,
            &KeyName::Oversight,
            unlock.as_ref(),
            opts.kdf,
            vec![("oversight", oversight.secret().clone())],
        )?;
        bletchley_crypto::keyfile::write_atomic(
            &oversight_public_path(root),
            format!("{}\n", hex::encode(oversight.public_key().0)).as_bytes(),
        )?;
        let mut id = [0u8; 8];
        bletchley_crypto::random_bytes(&mut id)?;
        let origin = format!("bletchley/{}", hex::encode(id));
        AuditLog::at(root.join("audit")).create(&origin, &signer)?;
        let mut catalog = SqliteCatalog::open(&root.join("catalog.db"), true)?;
        catalog.set_meta("format", FORMAT)?;
        catalog.set_meta("home", opts.home.alpha3())?;
        catalog.set_meta("kdf", &serde_json::to_string(&opts.kdf).unwrap_or_default())?;
        catalog.set_meta("origin", &origin)?;
        let objects = root.join("objects");
        let spec = LocationSpec::Local {
            path: std::path::absolute(&objects).map_err(io(&objects))?,
        };
        catalog.insert_location(
            "local",
            &opts.jurisdiction.to_string(),
            &serde_json::to_string(&spec).unwrap_or_default(),
        )?;
        catalog.set_residency("default", "", &opts.jurisdiction.country)?;
        let kf = open_keyfile(&keys_dir, &KeyName::Platform, unlock.as_ref())?;
        catalog.set_guard(catalog_guard(&PlatformKeys::from_keyfile(&kf)?));
        catalog.seal_state()?;
        drop(catalog);
        let mut p = Platform::open(root, unlock)?;
        p.record(
            Actor::Operator,
            "platform.init",
            vec![origin],
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(p)
    }

    /// Opens an initialised data directory, unlocking the platform key file.
    pub fn open(root: &Path, unlock: Box<dyn Unlock>) -> Result<Platform> {
        let db = root.join("catalog.db");
        if !db.exists() {
            return Err(Error::Layout(format!(
                "{} is not a Bletchley data directory (run `bletchley --data {} init` first)",
                root.display(),
                root.display()
            )));
        }
        let mut catalog = SqliteCatalog::open(&db, false)?;
        if catalog.meta("format")?.as_deref() != Some(FORMAT) {
            return Err(Error::Layout(format!(
                "{} was written by an earlier version of Bletchley, whose catalog and audit log the host could alter unnoticed; this version reads only data directories it made (format {FORMAT}): initialise a new one and ingest again",
                root.display()
            )));
        }
        let kf = open_keyfile(&root.join("keys"), &KeyName::Platform, unlock.as_ref())?;
        let keys = PlatformKeys::from_keyfile(&kf)?;
        catalog.set_guard(catalog_guard(&keys));
        let state = catalog.verify_state()?;
        let home = catalog
            .meta("home")?
            .and_then(|h| Nation::from_alpha3(&h))
            .ok_or_else(|| Error::Layout("catalog lacks the home nation".into()))?;
        let kdf = catalog
            .meta("kdf")?
            .and_then(|k| serde_json::from_str(&k).ok())
            .unwrap_or_default();
        let oversight = trusted_oversight_key(root, &kf)?;
        let log = AuditLog::at(root.join("audit"));
        let audit = log.writer(
            SigningKey::from_seed(keys.signer.seed().clone())?,
            &oversight,
        )?;
        check_against_checkpoint(&log, &keys, &state)?;
        let mut p = Platform {
            root: root.to_owned(),
            catalog,
            keys,
            audit,
            home,
            kdf,
            oversight: oversight.0,
            unlock,
            agencies: HashMap::new(),
            rt: runtime()?,
            job_lease_ms: jobs::LEASE_MS,
            feed: None,
        };
        p.record_cut()?;
        Ok(p)
    }

    /// Audits a tail the audit writer cut off (a torn write, or entries
    /// nobody signed), if it cut one: when it opened the log, or when it
    /// caught up with another process's appends.
    fn record_cut(&mut self) -> Result<()> {
        let Some(cut) = self.audit.take_cut() else {
            return Ok(());
        };
        self.record(
            Actor::System(SystemActor::Platform),
            "audit.tail-cut",
            vec![format!("entries from {}", cut.from_entry)],
            None,
            Outcome::Failed,
            Some(format!(
                "{} bytes past the last checkpoint cut off: {}",
                cut.bytes, cut.detail
            )),
        )
    }

    /// Appends entries durably, with the catalog's current state signed
    /// into the checkpoint.
    fn append_audit(&mut self, entries: &[Entry]) -> Result<()> {
        let state = self.catalog.state()?;
        self.audit
            .set_extension(Some(format!("{CATALOG_EXTENSION} {}", state.current())));
        self.audit.append(entries)?;
        // The cut is taken before recording it, so this recurses once at most.
        self.record_cut()
    }

    /// What the operator and the overseer keep outside this host, printed at `init` and by
    /// `bletchley fingerprints`: the audit verifier key and the oversight key's fingerprint, as
    /// this platform holds them in its sealed key file (never read from the public files beside
    /// it, which the host can swap). A later copy that differs means a different platform.
    pub fn trust_anchors(&self) -> Result<TrustAnchors> {
        let origin = self
            .catalog
            .meta("origin")?
            .ok_or_else(|| Error::Layout("the catalog lacks the audit log's origin".into()))?;
        let verifier = bletchley_audit::Verifier::new(&origin, self.keys.signer.verifying_key());
        Ok(TrustAnchors {
            audit_verifier: verifier.render(),
            oversight_key: format!(
                "sha256:{}",
                hex::encode(bletchley_crypto::sha256(&self.oversight))
            ),
        })
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A key for a derived store (the search index), derived from the
    /// platform catalog key and the purpose. Held by whoever holds the
    /// platform passphrase.
    pub fn derived_key(&self, purpose: &str) -> SecretKey {
        SecretKey::from_bytes(keyed_tag(
            &self.keys.catalog,
            "derived-key",
            purpose.as_bytes(),
        ))
    }

    /// The home nation.
    pub fn home(&self) -> Nation {
        self.home
    }

    /// Appends one audit entry durably.
    pub fn record(
        &mut self,
        actor: Actor,
        action: &str,
        targets: Vec<String>,
        justification: Option<&str>,
        outcome: Outcome,
        reason: Option<String>,
    ) -> Result<()> {
        let e = Entry {
            time_ms: now_ms(),
            principal: actor.name(),
            action: action.to_owned(),
            targets,
            justification: justification.map(str::to_owned),
            outcome,
            reason,
        };
        self.append_audit(&[e])
    }

    /// Records a refusal and returns the error, so callers can `return Err(self.refuse(...))`.
    fn refuse(
        &mut self,
        actor: &Actor,
        action: &str,
        targets: Vec<String>,
        just: Option<&str>,
        err: Error,
    ) -> Error {
        let (outcome, reason) = match &err {
            Error::KeyUnavailable { agency, reason } => (
                Outcome::Denied,
                Some(format!(
                    "agency {agency}'s key could not be unlocked: {reason}"
                )),
            ),
            Error::NotFoundOrNotPermitted { reason } => (
                Outcome::Denied,
                Some(
                    reason
                        .as_ref()
                        .map(|d| d.to_string())
                        .unwrap_or_else(|| "no such object".into()),
                ),
            ),
            other => (Outcome::Refused, Some(other.to_string())),
        };
        match self.record(actor.clone(), action, targets, just, outcome, reason) {
            Ok(()) => err,
            Err(audit) => audit,
        }
    }

    fn tag(&self, domain: &str, name: &str) -> Vec<u8> {
        keyed_tag(&self.keys.index, domain, name.as_bytes()).to_vec()
    }

    /// Seals a catalog record bound to where it sits: its table, the tag
    /// it is found by, its row number and its owning agency.
    fn seal_row(
        &self,
        table: SealedTable,
        tag: &[u8],
        id: i64,
        agency: Option<i64>,
        value: &impl serde::Serialize,
    ) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(value).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(record::seal(
            &self.keys.catalog,
            &row_aad(table, tag, id, agency),
            &json,
        )?)
    }

    /// Opens a catalog record where it sits; one moved, swapped or
    /// re-tagged is refused as damage.
    fn open_row<T: serde::de::DeserializeOwned>(
        &self,
        table: SealedTable,
        row: &crate::catalog::SealedRow,
    ) -> Result<T> {
        let json = record::open(
            &self.keys.catalog,
            &row_aad(table, &row.name_tag, row.id, row.agency_id),
            &row.sealed,
            bletchley_crypto::Context::Record,
        )
        .map_err(|_| {
            Error::Damaged(format!(
                "a record of the catalog's {} table does not open where it sits (row {}): it was altered, moved or swapped",
                table_label(table).trim_end_matches(':'),
                row.id
            ))
        })?;
        serde_json::from_slice(&json)
            .map_err(|e| Error::Layout(format!("catalog record unreadable: {e}")))
    }

    /// Inserts a new sealed record.
    fn insert_row(
        &self,
        table: SealedTable,
        tag: &[u8],
        agency: Option<i64>,
        value: &impl serde::Serialize,
    ) -> Result<i64> {
        self.catalog.insert_sealed(table, tag, agency, &|id| {
            self.seal_row(table, tag, id, agency, value)
        })
    }

    /// Replaces a sealed record in place.
    fn update_row(
        &self,
        table: SealedTable,
        row: &crate::catalog::SealedRow,
        value: &impl serde::Serialize,
    ) -> Result<()> {
        let sealed = self.seal_row(table, &row.name_tag, row.id, row.agency_id, value)?;
        self.catalog.update_sealed(table, row.id, &sealed)
    }

    // ----- agencies -------------------------------------------------------

    /// Adds an agency with its own key file (sealed with its passphrase).
    pub fn add_agency(&mut self, name: &str) -> Result<()> {
        valid_name("agency", name, 32, b"-")?;
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Error::Invalid(format!(
                "agency name {name:?} must be lower case"
            )));
        }
        if self.catalog.agencies()?.iter().any(|(_, n)| n == name) {
            return Err(Error::Exists {
                kind: "agency",
                name: name.into(),
            });
        }
        let kf = create_keyfile(
            &self.root.join("keys"),
            &KeyName::Agency(name.to_owned()),
            self.unlock.as_ref(),
            self.kdf,
            vec![
                ("kek.1", SecretKey::generate()?),
                ("dedup", SecretKey::generate()?),
            ],
        )?;
        let id = self.catalog.insert_agency(name)?;
        self.agencies
            .insert(name.to_owned(), AgencyKeys::from_keyfile(id, name, kf)?);
        self.record(
            Actor::Operator,
            "agency.add",
            vec![name.into()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Agency names.
    pub fn agencies(&self) -> Result<Vec<String>> {
        Ok(self
            .catalog
            .agencies()?
            .into_iter()
            .map(|(_, n)| n)
            .collect())
    }

    fn agency_id(&self, name: &str) -> Result<i64> {
        self.catalog
            .agencies()?
            .into_iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| id)
            .ok_or_else(|| Error::Unknown {
                kind: "agency",
                name: name.into(),
            })
    }

    fn agency_name(&self, id: i64) -> Result<String> {
        self.catalog
            .agencies()?
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n)
            .ok_or_else(|| Error::Layout(format!("catalog names unknown agency {id}")))
    }

    fn agency_keys(&mut self, name: &str) -> Result<&AgencyKeys> {
        if !self.agencies.contains_key(name) {
            let id = self.agency_id(name)?;
            let kf = open_keyfile(
                &self.root.join("keys"),
                &KeyName::Agency(name.to_owned()),
                self.unlock.as_ref(),
            )?;
            self.agencies
                .insert(name.to_owned(), AgencyKeys::from_keyfile(id, name, kf)?);
        }
        self.agencies.get(name).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: name.into(),
        })
    }

    /// Rotates an agency's key-encryption key: a new version wraps every data
    /// key again (content is not re-encrypted), then the old version is
    /// destroyed.
    pub fn rotate_agency_key(&mut self, name: &str) -> Result<usize> {
        let path =
            crate::keyring::key_path(&self.root.join("keys"), &KeyName::Agency(name.to_owned()));
        self.agency_keys(name)?;
        let keys = self.agencies.get_mut(name).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: name.into(),
        })?;
        let new_version = keys.provider.add_version()?;
        let new_key = keys
            .provider
            .keks()
            .last()
            .map(|(_, k)| k.clone())
            .ok_or(Error::Layout("no KEK".into()))?;
        keys.keyfile.set(&format!("kek.{new_version}"), new_key);
        keys.keyfile.save(&path)?;
        let id = keys.id;
        let rows = self.catalog.wrapped_keys(id)?;
        let keys = self.agencies.get(name).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: name.into(),
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let aad = wrap_aad(&row.table, &row.key);
            let dek = keys.provider.unwrap(
                &WrappedKey {
                    kek_version: row.kek_version,
                    bytes: row.wrapped,
                },
                &aad,
            )?;
            let w = keys.provider.wrap(&dek, &aad)?;
            out.push(WrappedKeyRow {
                table: row.table,
                key: row.key,
                kek_version: w.kek_version,
                wrapped: w.bytes,
            });
        }
        self.catalog.rewrap(&out)?;
        let keys = self.agencies.get_mut(name).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: name.into(),
        })?;
        let old: Vec<u32> = keys
            .provider
            .keks()
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| *v != new_version)
            .collect();
        keys.provider.retire_old();
        for v in old {
            keys.keyfile.remove(&format!("kek.{v}"));
        }
        keys.keyfile.save(&path)?;
        let n = out.len();
        self.record(
            Actor::Operator,
            "key.rotate",
            vec![name.into(), format!("version {new_version}")],
            None,
            Outcome::Allowed,
            Some(format!("{n} data keys rewrapped")),
        )?;
        Ok(n)
    }

    // ----- locations and residency ----------------------------------------

    /// Adds a location.
    pub fn add_location(
        &mut self,
        name: &str,
        jurisdiction: Jurisdiction,
        spec: LocationSpec,
    ) -> Result<()> {
        valid_name("location", name, 64, b"-_.")?;
        if self.catalog.locations()?.iter().any(|l| l.name == name) {
            return Err(Error::Exists {
                kind: "location",
                name: name.into(),
            });
        }
        let spec = match spec {
            LocationSpec::Local { path } => LocationSpec::Local {
                path: std::path::absolute(&path).map_err(io(&path))?,
            },
            s => s,
        };
        self.catalog.insert_location(
            name,
            &jurisdiction.to_string(),
            &serde_json::to_string(&spec).unwrap_or_default(),
        )?;
        self.record(
            Actor::Operator,
            "location.add",
            vec![name.into(), jurisdiction.to_string()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Retires a location: it takes no new writes; what rests there stays
    /// readable.
    pub fn retire_location(&mut self, name: &str) -> Result<()> {
        let loc = self
            .locations()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| Error::Unknown {
                kind: "location",
                name: name.into(),
            })?;
        self.catalog.retire_location(loc.id)?;
        self.record(
            Actor::Operator,
            "location.retire",
            vec![name.into()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Every location.
    pub fn locations(&self) -> Result<Vec<Location>> {
        self.catalog
            .locations()?
            .into_iter()
            .map(|l| {
                Ok(Location {
                    id: l.id,
                    name: l.name,
                    jurisdiction: Jurisdiction::parse(&l.jurisdiction)?,
                    spec: serde_json::from_str(&l.spec)
                        .map_err(|e| Error::Layout(format!("location spec: {e}")))?,
                    retired: l.retired,
                })
            })
            .collect()
    }

    /// Sets the allowed jurisdictions for a scope.
    pub fn set_residency(&mut self, scope: Scope, allow: &[Jurisdiction]) -> Result<()> {
        if let Scope::Agency(a) = &scope {
            self.agency_id(a)?;
        }
        let (s, t) = scope.key();
        let allow_s = allow
            .iter()
            .map(|j| j.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.catalog.set_residency(&s, &t, &allow_s)?;
        self.record(
            Actor::Operator,
            "residency.set",
            vec![format!("{s}:{t}"), allow_s],
            None,
            Outcome::Allowed,
            None,
        )
    }

    fn allowed_rules(
        &self,
        agency: &str,
        collection: CollectionId,
        class: &str,
    ) -> Result<Vec<Vec<Jurisdiction>>> {
        let mut out = Vec::new();
        for (scope, target, allow) in self.catalog.residency()? {
            let applies = match scope.as_str() {
                "default" => true,
                "agency" => target == agency,
                "collection" => target == collection.0.to_string(),
                "classification" => target == class,
                _ => false,
            };
            if applies {
                out.push(residency::parse_allow(&allow)?);
            }
        }
        Ok(out)
    }

    // ----- principals, collections, operations ------------------------------

    /// Adds a principal.
    pub fn add_principal(&mut self, p: &Principal) -> Result<()> {
        valid_name("principal", &p.name, 64, b"-_.")?;
        if SYSTEM_ACTORS.contains(&p.name.to_ascii_lowercase().as_str()) {
            return Err(Error::Invalid(format!(
                "principal name {:?} is reserved: the audit log names the platform's own actors so",
                p.name
            )));
        }
        let agency_id = self.agency_id(&p.agency)?;
        let tag = self.tag("principal", &p.name);
        if self
            .catalog
            .find_sealed(SealedTable::Principals, &tag)?
            .is_some()
        {
            return Err(Error::Exists {
                kind: "principal",
                name: p.name.clone(),
            });
        }
        self.insert_row(SealedTable::Principals, &tag, Some(agency_id), p)?;
        self.record(
            Actor::Operator,
            "principal.add",
            vec![p.name.clone()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Looks a principal up.
    pub fn principal(&self, name: &str) -> Result<Principal> {
        let tag = self.tag("principal", name);
        let row = self
            .catalog
            .find_sealed(SealedTable::Principals, &tag)?
            .ok_or_else(|| Error::Unknown {
                kind: "principal",
                name: name.into(),
            })?;
        // The record is bound to the tag of `name` and to its agency's row
        // (`row_aad`); the agencies' names are guarded with the catalog.
        self.open_row(SealedTable::Principals, &row)
    }

    /// Adds a collection `agency/name`.
    pub fn add_collection(&mut self, full: &str, bulk: bool) -> Result<CollectionId> {
        let (agency, name) = full.split_once('/').ok_or_else(|| {
            Error::Invalid(format!("collection {full:?}: write it as AGENCY/NAME"))
        })?;
        valid_name("collection", name, 128, b"-_. ")?;
        let agency_id = self.agency_id(agency)?;
        let tag = self.tag("collection", full);
        if self
            .catalog
            .find_sealed(SealedTable::Collections, &tag)?
            .is_some()
        {
            return Err(Error::Exists {
                kind: "collection",
                name: full.into(),
            });
        }
        let rec = CollectionRecord {
            agency: agency.into(),
            name: name.into(),
            bulk,
        };
        let id = self.insert_row(SealedTable::Collections, &tag, Some(agency_id), &rec)?;
        self.record(
            Actor::Operator,
            "collection.add",
            vec![full.into()],
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(CollectionId(u32::try_from(id).map_err(|_| {
            Error::Layout("too many collections".into())
        })?))
    }

    /// Every collection.
    pub fn collections(&self) -> Result<Vec<Collection>> {
        let mut out = Vec::new();
        for row in self.catalog.all_sealed(SealedTable::Collections)? {
            // Bound to its row number, tag and agency: a swapped or moved
            // record does not open.
            let rec: CollectionRecord = self.open_row(SealedTable::Collections, &row)?;
            out.push(Collection {
                id: CollectionId(
                    u32::try_from(row.id).map_err(|_| Error::Layout("collection id".into()))?,
                ),
                agency: rec.agency,
                name: rec.name,
                bulk: rec.bulk,
            });
        }
        Ok(out)
    }

    fn collection_by_name(&self, full: &str) -> Result<Option<Collection>> {
        Ok(self
            .collections()?
            .into_iter()
            .find(|c| format!("{}/{}", c.agency, c.name) == full))
    }

    /// Adds a joint operation.
    pub fn add_operation(&mut self, op: &Operation) -> Result<()> {
        valid_name("operation", &op.name, 128, b"-_. ")?;
        if op.agencies.is_empty() {
            return Err(Error::Invalid(
                "an operation needs at least one member agency".into(),
            ));
        }
        for a in &op.agencies {
            self.agency_id(a)?;
        }
        for m in &op.members {
            let p = self.principal(m)?;
            if !op.agencies.contains(&p.agency) {
                return Err(Error::Invalid(format!(
                    "member {m} belongs to {}, which is not a member agency",
                    p.agency
                )));
            }
        }
        if op.end.is_some_and(|e| e < op.start) {
            return Err(Error::Invalid("the operation ends before it starts".into()));
        }
        let tag = self.tag("operation", &op.name);
        if self
            .catalog
            .find_sealed(SealedTable::Operations, &tag)?
            .is_some()
        {
            return Err(Error::Exists {
                kind: "operation",
                name: op.name.clone(),
            });
        }
        self.insert_row(SealedTable::Operations, &tag, None, op)?;
        self.record(
            Actor::Operator,
            "operation.add",
            vec![op.name.clone()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Every operation.
    pub fn operations(&self) -> Result<Vec<Operation>> {
        self.catalog
            .all_sealed(SealedTable::Operations)?
            .into_iter()
            .map(|r| self.open_row(SealedTable::Operations, &r))
            .collect()
    }

    /// The operations `principal` is a member of, with their shared
    /// collections by name (current and withdrawn), for the operations
    /// page. Audited; other operations are not mentioned at all.
    pub fn operations_of(&mut self, principal: &str) -> Result<Vec<OperationView>> {
        let actor = Actor::Principal(principal.to_owned());
        let p = match self.principal(principal) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(&actor, "operation.list", vec![], None, e)),
        };
        let names: HashMap<u32, String> = self
            .collections()?
            .into_iter()
            .map(|c| (c.id.0, format!("{}/{}", c.agency, c.name)))
            .collect();
        let mut out: Vec<OperationView> = self
            .operations()?
            .into_iter()
            .filter(|o| o.is_member(&p))
            .map(|o| {
                let shares = o
                    .shares
                    .iter()
                    .map(|s| SharedCollection {
                        collection: names
                            .get(&s.collection.0)
                            .cloned()
                            .unwrap_or_else(|| format!("#{}", s.collection.0)),
                        since: s.since,
                        withdrawn: s.withdrawn,
                    })
                    .collect();
                OperationView {
                    active: o.active(now_ms() / 1000),
                    operation: o,
                    shares,
                }
            })
            .collect();
        out.sort_by(|a, b| a.operation.name.cmp(&b.operation.name));
        self.record(
            actor,
            "operation.list",
            out.iter().map(|o| o.operation.name.clone()).collect(),
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(out)
    }

    /// The audit trail for an auditor: integrity verified from the stored
    /// checkpoint and verifier key, and the entries (filtered, newest first)
    /// opened with the oversight key when it is still beside the data. The
    /// review is itself audited; anyone but an auditor is refused.
    pub fn audit_review(&mut self, principal: &str, q: &AuditQuery) -> Result<AuditReview> {
        let actor = Actor::Principal(principal.to_owned());
        let what = format!(
            "principal={} action={} limit={}",
            q.principal.as_deref().unwrap_or("*"),
            q.action.as_deref().unwrap_or("*"),
            q.limit
        );
        let p = match self.principal(principal) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(&actor, "audit.review", vec![what], None, e)),
        };
        let reach = p.audit_reach();
        if reach == AuditReach::Nobody {
            let e = Error::RoleRequired {
                principal: principal.to_owned(),
                role: "auditor or overseer",
                act: "review the audit trail",
            };
            return Err(self.refuse(&actor, "audit.review", vec![what], None, e));
        }
        if !(1..=1000).contains(&q.limit) {
            return Err(Error::Invalid("limit must be between 1 and 1000".into()));
        }
        self.record(
            actor,
            "audit.review",
            vec![what],
            None,
            Outcome::Allowed,
            None,
        )?;
        let log = AuditLog::at(self.root.join("audit"));
        let integrity = log.verify(None, None).map_err(|e| e.to_string());
        let (mut entries, unreadable) =
            match open_keyfile(&self.root.join("keys"), &KeyName::Oversight, &*self.unlock) {
                Ok(kf) => match kf.get("oversight") {
                    Some(sk) => match log.read(&OversightSecretKey::from_secret(sk.clone())) {
                        Ok(e) => (e, None),
                        Err(e) => (Vec::new(), Some(format!("the entries could not be opened: {e}"))),
                    },
                    None => (Vec::new(), Some("the oversight key file lacks its key".into())),
                },
                Err(_) => (
                    Vec::new(),
                    Some(
                        "the oversight key is not on this platform (it belongs with the oversight body): integrity is shown, entries are not"
                            .into(),
                    ),
                ),
            };
        entries.retain(|(_, e)| {
            q.principal.as_deref().is_none_or(|w| e.principal == w)
                && q.action.as_deref().is_none_or(|a| e.action.starts_with(a))
        });
        if let AuditReach::Agency(agency) = &reach {
            // An agency's auditor sees what its own principals did; the
            // platform's overseer sees everything.
            let mut agency_of: HashMap<String, Option<String>> = HashMap::new();
            entries.retain(|(_, e)| {
                agency_of
                    .entry(e.principal.clone())
                    .or_insert_with(|| self.principal(&e.principal).ok().map(|x| x.agency))
                    .as_deref()
                    == Some(agency.as_str())
            });
        }
        let matched = entries.len();
        entries.reverse();
        entries.truncate(q.limit);
        Ok(AuditReview {
            integrity,
            entries,
            matched,
            unreadable,
        })
    }

    fn update_operation(
        &mut self,
        name: &str,
        f: impl FnOnce(&mut Operation, &[Collection]) -> Result<()>,
    ) -> Result<()> {
        let tag = self.tag("operation", name);
        let row = self
            .catalog
            .find_sealed(SealedTable::Operations, &tag)?
            .ok_or_else(|| Error::Unknown {
                kind: "operation",
                name: name.into(),
            })?;
        let mut op: Operation = self.open_row(SealedTable::Operations, &row)?;
        f(&mut op, &self.collections()?)?;
        self.update_row(SealedTable::Operations, &row, &op)
    }

    /// Shares a collection of a member agency into an operation.
    pub fn share(&mut self, op_name: &str, collection: &str) -> Result<()> {
        let now = now_ms() / 1000;
        self.update_operation(op_name, |op, colls| {
            let c = colls
                .iter()
                .find(|c| format!("{}/{}", c.agency, c.name) == collection)
                .ok_or_else(|| Error::Unknown {
                    kind: "collection",
                    name: collection.into(),
                })?;
            if !op.agencies.contains(&c.agency) {
                return Err(Error::Invalid(format!(
                    "{} is not a member of operation {}",
                    c.agency, op.name
                )));
            }
            if op.shared_at(now).any(|id| id == c.id) {
                return Err(Error::Exists {
                    kind: "share of",
                    name: collection.into(),
                });
            }
            op.shares.push(Share {
                collection: c.id,
                since: now,
                withdrawn: None,
            });
            Ok(())
        })?;
        self.record(
            Actor::Operator,
            "operation.share",
            vec![op_name.into(), collection.into()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Withdraws a shared collection from an operation, from now on.
    pub fn withdraw(&mut self, op_name: &str, collection: &str) -> Result<()> {
        let now = now_ms() / 1000;
        self.update_operation(op_name, |op, colls| {
            let c = colls
                .iter()
                .find(|c| format!("{}/{}", c.agency, c.name) == collection)
                .ok_or_else(|| Error::Unknown {
                    kind: "collection",
                    name: collection.into(),
                })?;
            let mut found = false;
            for s in op
                .shares
                .iter_mut()
                .filter(|s| s.collection == c.id && s.withdrawn.is_none())
            {
                // Withdrawal takes effect at once, even within the same second.
                s.withdrawn = Some(now.min(s.since.max(now)));
                if s.since >= now {
                    s.since = now - 1;
                }
                found = true;
            }
            if !found {
                return Err(Error::Invalid(format!(
                    "{collection} is not shared into {}",
                    op.name
                )));
            }
            Ok(())
        })?;
        self.record(
            Actor::Operator,
            "operation.withdraw",
            vec![op_name.into(), collection.into()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// The gate for a principal now.
    pub fn gate(&self, principal: &str) -> Result<Gate> {
        let p = self.principal(principal)?;
        let vis = Visibility::compute(
            &p,
            &self.collections()?,
            &self.operations()?,
            now_ms() / 1000,
        );
        Ok(Gate::new(p, vis, self.home))
    }

    // ----- items ------------------------------------------------------------

    /// Ingests a batch of items into one collection. Every item is sealed,
    /// placed by residency, audited and cataloged; when this returns `Ok`,
    /// all of them are acknowledged (rule 6). On `Err` none is.
    pub fn ingest(
        &mut self,
        principal: &str,
        opts: &IngestOptions,
        items: Vec<NewItem>,
    ) -> Result<Vec<String>> {
        let actor = Actor::Principal(principal.to_owned());
        let just = opts.justification.as_deref();
        let targets = vec![opts.collection.clone()];
        let gate = match self.gate(principal) {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(&actor, "item.ingest", targets, just, e)),
        };
        let p = gate.principal().clone();
        if !p.may_ingest() {
            let e = Error::RoleRequired {
                principal: p.name.clone(),
                role: "analyst or field",
                act: "ingest",
            };
            return Err(self.refuse(&actor, "item.ingest", targets, just, e));
        }
        let coll = self.collection_by_name(&opts.collection)?;
        let Some(coll) = coll.filter(|c| c.agency == p.agency) else {
            let e = Error::NotFoundOrNotPermitted {
                reason: Some(Denial::NeedToKnow),
            };
            return Err(self.refuse(&actor, "item.ingest", targets, just, e));
        };
        if let Err(d) = gate.check_marking(&opts.marking) {
            let e = Error::Invalid(format!(
                "you may not ingest at marking {} because you could not read it yourself",
                opts.marking
            ));
            return Err(self.refuse(
                &actor,
                "item.ingest",
                targets,
                just,
                match e {
                    Error::Invalid(m) => Error::Invalid(format!("{m} ({d})")),
                    other => other,
                },
            ));
        }
        self.store_items(&actor, &coll, opts, items, &[], None)
    }

    /// Stores items derived from `source` (attachments, archive members,
    /// transcripts): in its collection, at its marking (rule 4: the
    /// high-water mark of a single input is its own), with its authority and
    /// retention, linked to it so that shredding the source shreds them too.
    /// A principal acting must be able to read the source.
    pub fn derive(
        &mut self,
        actor: &Actor,
        source: &str,
        derivation: &str,
        items: Vec<NewItem>,
    ) -> Result<Vec<String>> {
        let mut ids = self.derive_many(actor, derivation, vec![(source.to_owned(), items)])?;
        Ok(ids.pop().unwrap_or_default())
    }

    /// As [`Platform::derive`] for several sources at once: the parts of
    /// every source that shares a collection, marking, authority, retention
    /// and precedence (those of one ingest do) are stored in one commit, as
    /// an ingest stores its batch, rather than one commit and one durable
    /// audit append per source. Returns each source's ids, in order. Every
    /// source is checked first: if any is refused, nothing is stored.
    pub fn derive_many(
        &mut self,
        actor: &Actor,
        derivation: &str,
        sources: Vec<(String, Vec<NewItem>)>,
    ) -> Result<Vec<Vec<String>>> {
        if derivation.is_empty() || derivation.len() > 40 {
            return Err(Error::Invalid(
                "a derivation is named in 1 to 40 characters".into(),
            ));
        }
        let gate = match actor {
            Actor::Principal(name) => match self.gate(name) {
                Ok(g) => Some(g),
                Err(e) => {
                    let targets = sources.iter().map(|(s, _)| s.clone()).collect();
                    return Err(self.refuse(actor, "item.derive", targets, None, e));
                }
            },
            _ => None,
        };
        let collections = self.collections()?;
        // Checked and resolved, all before anything is stored.
        let mut groups: Vec<DeriveGroup> = Vec::new();
        let mut counts = Vec::with_capacity(sources.len());
        for (n, (source, items)) in sources.into_iter().enumerate() {
            let targets = vec![source.clone()];
            let Some(row) = self.catalog.item(&source)? else {
                let e = Error::NotFoundOrNotPermitted { reason: None };
                return Err(self.refuse(actor, "item.derive", targets, None, e));
            };
            let (meta, marking) = self.open_meta(&row)?;
            if let Some(gate) = &gate
                && let Err(d) = gate.decide(&marking, CollectionId(row.collection_id))
            {
                let e = Error::NotFoundOrNotPermitted { reason: Some(d) };
                return Err(self.refuse(actor, "item.derive", targets, None, e));
            }
            let Some(coll) = collections
                .iter()
                .find(|c| c.id.0 == row.collection_id)
                .cloned()
            else {
                return Err(Error::Layout(format!(
                    "item {source} is in an unknown collection"
                )));
            };
            let tag = self.lineage_tag(&coll.agency, &source)?;
            let opts = IngestOptions {
                collection: meta.collection.clone(),
                marking,
                authority: meta.authority.clone(),
                retain_until_ms: meta.retain_until_ms,
                justification: None,
                priority: meta.priority,
            };
            let from = Lineage {
                source,
                derivation: derivation.to_owned(),
                tag,
                generation: meta.generation.saturating_add(1),
            };
            counts.push(items.len());
            let at = match groups
                .iter()
                .position(|g| g.coll.id == coll.id && g.opts == opts)
            {
                Some(at) => at,
                None => {
                    groups.push(DeriveGroup {
                        coll,
                        opts,
                        items: Vec::new(),
                        lineages: Vec::new(),
                        sources: Vec::new(),
                    });
                    groups.len() - 1
                }
            };
            let g = &mut groups[at];
            g.lineages.extend(std::iter::repeat_n(from, items.len()));
            g.sources.extend(std::iter::repeat_n(n, items.len()));
            g.items.extend(items);
        }
        let mut out: Vec<Vec<String>> = counts.iter().map(|&c| Vec::with_capacity(c)).collect();
        for g in groups {
            let ids = self.store_items(actor, &g.coll, &g.opts, g.items, &g.lineages, None)?;
            for (id, n) in ids.into_iter().zip(g.sources) {
                if let Some(o) = out.get_mut(n) {
                    o.push(id);
                }
            }
        }
        Ok(out)
    }

    /// The keyed tag that links derived items to `source`.
    fn lineage_tag(&mut self, agency: &str, source: &str) -> Result<Vec<u8>> {
        self.agency_keys(agency)?;
        let keys = self.agencies.get(agency).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: agency.to_owned(),
        })?;
        Ok(keyed_tag(&keys.dedup, "lineage", source.as_bytes()).to_vec())
    }

    /// Seals, places, audits and catalogs items whose checks are done.
    /// `replica`: the one item is a copy received from another site and keeps
    /// that site's id, time and author.
    fn store_items(
        &mut self,
        actor: &Actor,
        coll: &Collection,
        opts: &IngestOptions,
        items: Vec<NewItem>,
        from: &[Lineage],
        replica: Option<&ItemMeta>,
    ) -> Result<Vec<String>> {
        if !from.is_empty() && from.len() != items.len() {
            return Err(Error::Invalid(format!(
                "{} items given with {} lineages",
                items.len(),
                from.len()
            )));
        }
        let action = if replica.is_some() {
            "sync.receive"
        } else if !from.is_empty() {
            "item.derive"
        } else {
            "item.ingest"
        };
        let just = opts.justification.as_deref();
        let targets = vec![opts.collection.clone()];
        let actor_name = actor.name();
        // Residency: the first writable location every applicable rule allows.
        let rules = self.allowed_rules(
            &coll.agency,
            coll.id,
            opts.marking.classification().as_str(),
        )?;
        let rule_refs: Vec<&[Jurisdiction]> = rules.iter().map(|r| r.as_slice()).collect();
        let locations = self.locations()?;
        let allowed_locs: Vec<&Location> = locations
            .iter()
            .filter(|l| residency::allowed(&l.jurisdiction, &rule_refs))
            .collect();
        let Some(target) = allowed_locs.iter().find(|l| !l.retired).copied() else {
            let allowed = rules
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|j| j.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect::<Vec<_>>()
                .join(" and ");
            let e = Error::Residency { allowed };
            return Err(self.refuse(actor, action, targets, just, e));
        };
        let target = target.clone();
        let allowed_ids: BTreeSet<i64> = allowed_locs.iter().map(|l| l.id).collect();
        let store = target.open()?;
        self.agency_keys(&coll.agency)?;
        let keys = self
            .agencies
            .get(&coll.agency)
            .ok_or_else(|| Error::Unknown {
                kind: "agency",
                name: coll.agency.clone(),
            })?;
        let now = now_ms();
        let mut rows = Vec::with_capacity(items.len());
        let mut batch_objects: HashMap<Vec<u8>, ContentRow> = HashMap::new();
        let mut written = Vec::new();
        let mut pending = Vec::new();
        let mut packs = Packer::default();
        let mut fed = Vec::new();
        for (n, it) in items.into_iter().enumerate() {
            let from = from.get(n);
            let tag = keyed_tag(&keys.dedup, "content", &it.content).to_vec();
            let existing = self
                .catalog
                .find_content(keys.id, &tag)?
                .into_iter()
                .find(|c| {
                    allowed_ids.contains(&c.location_id)
                        && locations
                            .iter()
                            .any(|l| l.id == c.location_id && !l.retired)
                });
            let (content, object) = if let Some(c) = existing {
                (ContentRef::Existing(c.id), c.object)
            } else if let Some(c) = batch_objects.get(&tag) {
                (ContentRef::New(c.clone()), c.object.clone())
            } else {
                let packs_it = it.content.len() <= PACKED_CONTENT_MAX;
                let object = if packs_it {
                    packs.next_name(it.content.len())?
                } else {
                    object_name()?
                };
                let cdek = DataKey::generate()?;
                let sealed = stream::seal(&cdek, object.as_bytes(), &it.content)?;
                let size = sealed.len() as i64;
                let packed = if packs_it {
                    Some(packs.add(sealed)?)
                } else {
                    pending.push((object.clone(), sealed));
                    written.push(object.clone());
                    None
                };
                let w = keys.provider.wrap(&cdek, &wrap_aad("contents", &object))?;
                let c = ContentRow {
                    id: 0,
                    agency_id: keys.id,
                    tag: tag.clone(),
                    location_id: target.id,
                    object,
                    packed,
                    wrapped_key: w.bytes,
                    kek_version: w.kek_version,
                    size,
                };
                batch_objects.insert(tag, c.clone());
                let object = c.object.clone();
                (ContentRef::New(c), object)
            };
            let binding = ContentBinding {
                agency: coll.agency.clone(),
                object,
                length: it.content.len() as u64,
                sha256: hex::encode(bletchley_crypto::sha256(&it.content)),
            };
            let id = replica.map_or_else(|| uuid::Uuid::now_v7().to_string(), |r| r.id.clone());
            let meta = ItemMeta {
                id: id.clone(),
                title: it.title,
                marking: opts.marking.render(),
                collection: opts.collection.clone(),
                authority: opts.authority.clone(),
                size: it.content.len() as u64,
                created_ms: replica.map_or(now, |r| r.created_ms),
                retain_until_ms: opts.retain_until_ms,
                ingested_by: replica.map_or_else(|| actor_name.clone(), |r| r.ingested_by.clone()),
                derived_from: from.map(|f| f.source.clone()),
                derivation: from.map(|f| f.derivation.clone()),
                generation: from.map_or(0, |f| f.generation),
                priority: opts.priority,
            };
            let idek = DataKey::generate()?;
            let w = keys.provider.wrap(&idek, &wrap_aad("items", &id))?;
            let sealed = SealedMeta {
                meta,
                content: binding,
            };
            let json = serde_json::to_vec(&sealed).map_err(|e| Error::Invalid(e.to_string()))?;
            let sealed_meta = record::seal(&idek, &meta_aad(keys.id, &id, coll.id), &json)?;
            if self.feed.is_some() {
                fed.push(IndexFeedItem {
                    meta: sealed.meta,
                    marking: opts.marking.clone(),
                    collection: coll.id,
                    content: it.content,
                });
            }
            rows.push((
                ItemRow {
                    id,
                    agency_id: keys.id,
                    collection_id: coll.id.0,
                    content_id: 0,
                    created_ms: now,
                    retain_until_ms: opts.retain_until_ms,
                    wrapped_key: w.bytes,
                    kek_version: w.kek_version,
                    sealed_meta,
                    lineage: from.map(|f| f.tag.clone()),
                },
                content,
            ));
        }
        let entries: Vec<Entry> = rows
            .iter()
            .enumerate()
            .map(|(n, (r, _))| Entry {
                time_ms: now,
                principal: actor_name.clone(),
                action: action.into(),
                targets: [
                    vec![
                        r.id.clone(),
                        opts.collection.clone(),
                        format!("location {}", target.name),
                    ],
                    from.get(n)
                        .map(|f| vec![format!("derived from {} ({})", f.source, f.derivation)])
                        .unwrap_or_default(),
                ]
                .concat(),
                justification: opts.justification.clone(),
                outcome: Outcome::Allowed,
                reason: None,
            })
            .collect();
        for (pack, bytes) in packs.finish() {
            written.push(pack.clone());
            pending.push((pack, bytes));
        }
        store.put_many(&self.rt, pending)?;
        // Audit first, then the catalog: an item is visible only once its
        // entry is durable; a crash in between leaves an entry for an item
        // that never appeared, never an unaudited item.
        self.append_audit(&entries)?;
        let step = match self.catalog.commit_items(&rows) {
            Ok(step) => step,
            Err(e) => {
                for o in &written {
                    let _ = store.delete(&self.rt, o);
                }
                let ids = rows.iter().map(|(r, _)| r.id.clone()).collect();
                let _ = self.record(
                    actor.clone(),
                    action,
                    ids,
                    just,
                    Outcome::Failed,
                    Some(format!("catalog commit failed: {e}")),
                );
                return Err(e);
            }
        };
        if let Some(feed) = &mut self.feed {
            feed.stored(fed, step);
        }
        Ok(rows.into_iter().map(|(r, _)| r.id).collect())
    }

    /// Opens an item's metadata. Internal: callers must pass the result
    /// through the gate before revealing anything.
    fn open_meta(&mut self, row: &ItemRow) -> Result<(ItemMeta, Marking)> {
        let agency = self.agency_name(row.agency_id)?;
        let (meta, marking, _) = self.open_sealed_meta(row, &agency)?;
        Ok((meta, marking))
    }

    /// [`Self::open_meta`] with what it says of the item's content.
    fn open_sealed_meta(
        &mut self,
        row: &ItemRow,
        agency: &str,
    ) -> Result<(ItemMeta, Marking, ContentBinding)> {
        let agency = agency.to_owned();
        self.agency_keys(&agency)
            .map_err(|e| Error::KeyUnavailable {
                agency: agency.clone(),
                reason: e.to_string(),
            })?;
        let keys = self.agencies.get(&agency).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: agency.clone(),
        })?;
        let idek = keys
            .provider
            .unwrap(
                &WrappedKey {
                    kek_version: row.kek_version,
                    bytes: row.wrapped_key.clone(),
                },
                &wrap_aad("items", &row.id),
            )
            .map_err(|_| {
                Error::Damaged(format!(
                    "item {}'s data key does not unwrap where it sits (altered, or moved to another item or agency)",
                    row.id
                ))
            })?;
        let json = record::open(
            &idek,
            &meta_aad(row.agency_id, &row.id, CollectionId(row.collection_id)),
            &row.sealed_meta,
            bletchley_crypto::Context::Record,
        )
        .map_err(|_| {
            Error::Damaged(format!(
                "item {}'s metadata does not open where it sits (altered, or moved to another collection)",
                row.id
            ))
        })?;
        let sealed: SealedMeta = serde_json::from_slice(&json)
            .map_err(|e| Error::Layout(format!("item metadata: {e}")))?;
        if sealed.meta.id != row.id
            || sealed.content.agency != agency
            || sealed.meta.retain_until_ms != row.retain_until_ms
        {
            return Err(Error::Damaged(format!(
                "item {}'s metadata belongs to another item or agency",
                row.id
            )));
        }
        // The catalog's link to the source decides what a shred takes with it (rule 4): it
        // must be the one the sealed metadata names.
        let lineage = match &sealed.meta.derived_from {
            Some(source) => Some(self.lineage_tag(&agency, source)?),
            None => None,
        };
        if row.lineage != lineage {
            return Err(Error::Damaged(format!(
                "item {}'s link to the item it was derived from was altered (a shred of its source would leave it behind)",
                row.id
            )));
        }
        let marking = sealed
            .meta
            .parsed_marking()
            .map_err(|e| Error::Layout(format!("stored marking: {e}")))?;
        Ok((sealed.meta, marking, sealed.content))
    }

    /// Reads an item: gate, justification for bulk collections, audit entry,
    /// then the content.
    pub fn get(
        &mut self,
        principal: &str,
        id: &str,
        justification: Option<&str>,
    ) -> Result<(ItemMeta, Vec<u8>)> {
        let actor = Actor::Principal(principal.to_owned());
        let targets = vec![id.to_owned()];
        let gate = match self.gate(principal) {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(&actor, "item.get", targets, justification, e)),
        };
        let Some(row) = self.catalog.item(id)? else {
            let e = Error::NotFoundOrNotPermitted { reason: None };
            return Err(self.refuse(&actor, "item.get", targets, justification, e));
        };
        let opened = self
            .agency_name(row.agency_id)
            .and_then(|agency| self.open_sealed_meta(&row, &agency));
        let (meta, marking, binding) = match opened {
            Ok(m) => m,
            Err(e) => return Err(self.refuse(&actor, "item.get", targets, justification, e)),
        };
        if expired(&meta, now_ms()) {
            // Past its retention: gone, whether or not the worker has
            // shredded it yet.
            let e = Error::NotFoundOrNotPermitted { reason: None };
            return Err(self.refuse(&actor, "item.get", targets, justification, e));
        }
        let access = match gate.check(&row.id, &marking, CollectionId(row.collection_id)) {
            Ok(a) => a,
            Err(d) => {
                let e = Error::NotFoundOrNotPermitted { reason: Some(d) };
                return Err(self.refuse(&actor, "item.get", targets, justification, e));
            }
        };
        // The collection the gate decided on must be the one the item's
        // sealed metadata names.
        let coll = self
            .collections()?
            .into_iter()
            .find(|c| c.id.0 == row.collection_id);
        let Some(c) = coll.filter(|c| format!("{}/{}", c.agency, c.name) == meta.collection) else {
            let e = Error::Damaged(format!(
                "item {id} lies in a collection other than the one it was stored in"
            ));
            return Err(self.refuse(&actor, "item.get", targets, justification, e));
        };
        if gate.check_justification(&c, justification).is_err() {
            let e = Error::JustificationRequired {
                collection: meta.collection.clone(),
            };
            return Err(self.refuse(&actor, "item.get", targets, justification, e));
        }
        let content = match self.read_bound_content(access, &row, &binding) {
            Ok(c) => c,
            Err(e) => return Err(self.refuse(&actor, "item.get", targets, justification, e)),
        };
        self.record(
            actor,
            "item.get",
            targets,
            justification,
            Outcome::Allowed,
            None,
        )?;
        Ok((meta, content))
    }

    /// Reads an item's content, checked against what its sealed metadata
    /// says of it.
    fn read_content(&mut self, access: Access, row: &ItemRow) -> Result<Vec<u8>> {
        let agency = self.agency_name(row.agency_id)?;
        let (_, _, binding) = self.open_sealed_meta(row, &agency)?;
        self.read_bound_content(access, row, &binding)
    }

    /// [`Self::read_content`] with the binding already opened.
    fn read_bound_content(
        &mut self,
        access: Access,
        row: &ItemRow,
        binding: &ContentBinding,
    ) -> Result<Vec<u8>> {
        let agency = &binding.agency;
        let c = self
            .catalog
            .content(row.content_id)?
            .ok_or_else(|| Error::Layout(format!("item {} has no content row", row.id)))?;
        let loc = self
            .locations()?
            .into_iter()
            .find(|l| l.id == c.location_id)
            .ok_or_else(|| unknown_location(row))?;
        let cdek = self.content_key(row, &c, agency)?;
        let sealed = match content_span(row, &c)? {
            (name, Some(range)) => loc.open()?.get_range(&self.rt, name, range),
            (name, None) => loc.open()?.get(&self.rt, name),
        }
        .map_err(|e| {
            Error::Damaged(format!(
                "the content of item {} cannot be read from its location: {e}",
                row.id
            ))
        })?;
        open_content(access, row, &c, &cdek, &sealed, binding)
    }

    /// Unwraps the data key of an item's content.
    fn content_key(&mut self, row: &ItemRow, c: &ContentRow, agency: &str) -> Result<DataKey> {
        self.agency_keys(agency)?;
        let keys = self.agencies.get(agency).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: agency.to_owned(),
        })?;
        keys.provider
            .unwrap(
                &WrappedKey {
                    kek_version: c.kek_version,
                    bytes: c.wrapped_key.clone(),
                },
                &wrap_aad("contents", &c.object),
            )
            .map_err(|e| Error::Corrupt {
                id: row.id.clone(),
                source: e,
            })
    }

    /// Lists what the principal may see, optionally in one collection. Bulk
    /// collections are listed only with a justification; without one they are
    /// left out and named in [`Listing::skipped_bulk`] (or, when the one
    /// collection asked for is bulk, the listing is refused).
    pub fn list(
        &mut self,
        principal: &str,
        collection: Option<&str>,
        justification: Option<&str>,
    ) -> Result<Listing> {
        let actor = Actor::Principal(principal.to_owned());
        let targets: Vec<String> = collection.map(|c| vec![c.to_owned()]).unwrap_or_default();
        let gate = match self.gate(principal) {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(&actor, "item.list", targets, justification, e)),
        };
        let visible: Vec<Collection> = self
            .collections()?
            .into_iter()
            .filter(|c| gate.visibility().contains(c.id))
            .collect();
        let chosen: Vec<Collection> = match collection {
            Some(name) => {
                let Some(c) = visible
                    .into_iter()
                    .find(|c| format!("{}/{}", c.agency, c.name) == name)
                else {
                    let e = Error::NotFoundOrNotPermitted {
                        reason: Some(Denial::NeedToKnow),
                    };
                    return Err(self.refuse(&actor, "item.list", targets, justification, e));
                };
                if gate.check_justification(&c, justification).is_err() {
                    let e = Error::JustificationRequired {
                        collection: name.to_owned(),
                    };
                    return Err(self.refuse(&actor, "item.list", targets, justification, e));
                }
                vec![c]
            }
            None => visible,
        };
        let mut listing = Listing::default();
        let mut ids = Vec::new();
        for c in &chosen {
            if gate.check_justification(c, justification).is_err() {
                listing
                    .skipped_bulk
                    .push(format!("{}/{}", c.agency, c.name));
                continue;
            }
            ids.push(c.id.0);
        }
        let rows = self.catalog.items_in(&ids)?;
        let names: HashMap<u32, String> = chosen
            .iter()
            .map(|c| (c.id.0, format!("{}/{}", c.agency, c.name)))
            .collect();
        let now = now_ms();
        for row in rows {
            let (meta, marking) = match self.open_meta(&row) {
                Ok(m) => m,
                // Not readable here, so not listed: nobody may see it now.
                Err(Error::KeyUnavailable { .. }) => continue,
                Err(e) => return Err(self.refuse(&actor, "item.list", targets, justification, e)),
            };
            if names.get(&row.collection_id) != Some(&meta.collection) {
                let e = Error::Damaged(format!(
                    "item {} lies in a collection other than the one it was stored in",
                    row.id
                ));
                return Err(self.refuse(&actor, "item.list", targets, justification, e));
            }
            if gate
                .decide(&marking, CollectionId(row.collection_id))
                .is_ok()
                && !expired(&meta, now)
            {
                listing.items.push(meta);
            }
        }
        // One entry per 500 items listed keeps entries small on big listings.
        let ids: Vec<String> = listing.items.iter().map(|m| m.id.clone()).collect();
        let mut entries = Vec::new();
        for chunk in ids
            .chunks(500)
            .map(<[String]>::to_vec)
            .chain(ids.is_empty().then(Vec::new))
        {
            let mut t = targets.clone();
            t.extend(chunk);
            entries.push(Entry {
                time_ms: now_ms(),
                principal: actor.name(),
                action: "item.list".into(),
                targets: t,
                justification: justification.map(str::to_owned),
                outcome: Outcome::Allowed,
                reason: None,
            });
        }
        self.append_audit(&entries)?;
        Ok(listing)
    }

    /// Crypto-shreds an item: its wrapped keys are deleted with secure delete
    /// and the WAL scrubbed, and its content object (if no other item of the
    /// agency shares it) is deleted. Needs the admin role in the owning
    /// agency.
    pub fn shred(&mut self, principal: &str, id: &str) -> Result<()> {
        let actor = Actor::Principal(principal.to_owned());
        let targets = vec![id.to_owned()];
        let gate = match self.gate(principal) {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(&actor, "item.shred", targets, None, e)),
        };
        let Some(row) = self.catalog.item(id)? else {
            let e = Error::NotFoundOrNotPermitted { reason: None };
            return Err(self.refuse(&actor, "item.shred", targets, None, e));
        };
        let (_, marking) = self.open_meta(&row)?;
        if let Err(d) = gate.decide(&marking, CollectionId(row.collection_id)) {
            let e = Error::NotFoundOrNotPermitted { reason: Some(d) };
            return Err(self.refuse(&actor, "item.shred", targets, None, e));
        }
        let agency = self.agency_name(row.agency_id)?;
        if !gate.principal().may_shred(&agency) {
            let e = Error::RoleRequired {
                principal: principal.into(),
                role: "admin (of the owning agency)",
                act: "shred",
            };
            return Err(self.refuse(&actor, "item.shred", targets, None, e));
        }
        self.shred_row(actor, &row, "item.shred")
    }

    fn shred_row(&mut self, actor: Actor, row: &ItemRow, action: &str) -> Result<()> {
        // What was derived from it goes first (rule 4: a derived item must
        // not outlive its source's shredding), depth first.
        let agency = self.agency_name(row.agency_id)?;
        let tag = self.lineage_tag(&agency, &row.id)?;
        for child in self.catalog.derived_from(&tag)? {
            self.shred_row(actor.clone(), &child, action)?;
        }
        self.record(
            actor.clone(),
            action,
            vec![row.id.clone()],
            None,
            Outcome::Allowed,
            None,
        )?;
        if let Some(orphan) = self.catalog.delete_item(&row.id)?
            && let Some(loc) = self
                .locations()?
                .into_iter()
                .find(|l| l.id == orphan.location_id)
        {
            // A packed content's bytes go with its pack, once no content
            // lies in it: until then they stay, unreadable, since the
            // content's data key went with its catalog row.
            match &orphan.packed {
                Some(p) if self.catalog.pack_in_use(&p.pack)? => {}
                Some(p) => loc.open()?.delete(&self.rt, &p.pack)?,
                None => loc.open()?.delete(&self.rt, &orphan.object)?,
            }
        }
        Ok(())
    }

    /// Changes whenever an item is added or shredded, by this process or
    /// another, never back to an earlier value: a derived store synced at
    /// this value need not reconcile again until it changes
    /// ([`Platform::index_feed`] reads every id).
    pub fn items_generation(&self) -> Result<u64> {
        self.catalog.items_generation()
    }

    /// Starts keeping what this handle stores, for a derived store that
    /// holds the catalog's items as of `generation` (see [`Fed`]); the
    /// search index's bulk ingest takes it batch by batch. Replaces a feed
    /// already on, dropping what it held.
    pub fn feed_from(&mut self, generation: Option<u64>) {
        self.feed = Some(feed::Feed::from(generation));
    }

    /// What was stored since feeding began or since the last call; nothing
    /// when feeding is off.
    pub fn take_fed(&mut self) -> Fed {
        self.feed.as_mut().map(feed::Feed::take).unwrap_or_default()
    }

    /// Stops feeding, dropping what was not taken.
    pub fn stop_feeding(&mut self) {
        self.feed = None;
    }

    /// Reconciles a derived store with the catalog: returns the items it
    /// lacks (those `known` says no to) and the ids it holds that no longer
    /// exist (shredded). System path for the search index, which applies the
    /// gate inside every query; never hand its output to a principal.
    pub fn index_feed(
        &mut self,
        known: &std::collections::HashSet<String>,
    ) -> Result<(Vec<crate::item::IndexFeedItem>, Vec<String>)> {
        let ids = self.catalog.item_ids()?;
        let present: std::collections::HashSet<&String> = ids.iter().collect();
        let removed: Vec<String> = known
            .iter()
            .filter(|k| !present.contains(k))
            .cloned()
            .collect();
        let mut added = Vec::new();
        // The indexer's own access, audited below with every item it opened.
        let system = SystemGate::new("index");
        // Reading back a large store is most of building its index: the
        // lookups that do not change per item (agencies, locations opened)
        // are done once, and each batch's objects are fetched concurrently.
        let agencies: HashMap<i64, String> = self.catalog.agencies()?.into_iter().collect();
        let locations = self.locations()?;
        let mut opened: HashMap<i64, ObjectLocation> = HashMap::new();
        let wanted: Vec<&String> = ids.iter().filter(|i| !known.contains(*i)).collect();
        for batch in wanted.chunks(FEED_BATCH) {
            let mut rows = Vec::with_capacity(batch.len());
            for id in batch {
                let Some(row) = self.catalog.item(id)? else {
                    continue;
                };
                let c = self
                    .catalog
                    .content(row.content_id)?
                    .ok_or_else(|| Error::Layout(format!("item {} has no content row", row.id)))?;
                let agency = agencies.get(&row.agency_id).ok_or_else(|| {
                    Error::Layout(format!("catalog names unknown agency {}", row.agency_id))
                })?;
                let (meta, marking, binding) = self.open_sealed_meta(&row, agency)?;
                let cdek = self.content_key(&row, &c, agency)?;
                rows.push((row, c, cdek, meta, marking, binding));
            }
            for (row, c, ..) in &rows {
                if !opened.contains_key(&c.location_id) {
                    let loc = locations
                        .iter()
                        .find(|l| l.id == c.location_id)
                        .ok_or_else(|| unknown_location(row))?;
                    opened.insert(loc.id, loc.open()?);
                }
            }
            let fetches = rows
                .iter()
                .map(|(row, c, ..)| {
                    let loc = opened
                        .get(&c.location_id)
                        .ok_or_else(|| unknown_location(row))?;
                    let (name, range) = content_span(row, c)?;
                    Ok((loc, name, range))
                })
                .collect::<Result<Vec<_>>>()?;
            let sealed = ObjectLocation::get_many(&self.rt, &fetches)?;
            for ((row, c, cdek, meta, marking, binding), sealed) in rows.into_iter().zip(sealed) {
                let content =
                    open_content(system.allow(&row.id), &row, &c, &cdek, &sealed, &binding)?;
                added.push(crate::item::IndexFeedItem {
                    meta,
                    marking,
                    collection: CollectionId(row.collection_id),
                    content,
                });
            }
        }
        if !added.is_empty() || !removed.is_empty() {
            let mut targets: Vec<String> = added.iter().map(|a| a.meta.id.clone()).collect();
            targets.extend(removed.iter().map(|r| format!("removed {r}")));
            targets.truncate(500);
            self.record(
                Actor::System(SystemActor::Indexer),
                "index.sync",
                targets,
                None,
                Outcome::Allowed,
                Some(format!("{} added, {} removed", added.len(), removed.len())),
            )?;
        }
        Ok((added, removed))
    }

    /// Shreds every item whose retention has passed; returns how many.
    pub fn enforce_retention(&mut self) -> Result<usize> {
        let rows = self.catalog.expired_items(now_ms())?;
        let mut shredded = 0;
        for r in &rows {
            // A derived item may already have gone with its source.
            if self.catalog.item(&r.id)?.is_some() {
                self.shred_row(Actor::Operator, r, "retention.shred")?;
                shredded += 1;
            }
        }
        Ok(shredded)
    }
}

/// Whether an item is past its retention (by its sealed metadata, which the
/// host cannot move).
pub(crate) fn expired(meta: &ItemMeta, now_ms: i64) -> bool {
    meta.retain_until_ms.is_some_and(|t| t <= now_ms)
}

/// Items read back per concurrent fetch in [`Platform::index_feed`].
const FEED_BATCH: usize = 256;

fn table_label(t: SealedTable) -> &'static str {
    match t {
        SealedTable::Principals => "principal:",
        SealedTable::Collections => "collection:",
        SealedTable::Operations => "operation:",
        SealedTable::Credentials => "credentials:",
        SealedTable::Sites => "site:",
    }
}

/// A sealed catalog record's associated data: table, tag, row number and
/// owning agency.
fn row_aad(table: SealedTable, tag: &[u8], id: i64, agency: Option<i64>) -> Vec<u8> {
    let mut aad = table_label(table).as_bytes().to_vec();
    aad.extend_from_slice(&(tag.len() as u32).to_be_bytes());
    aad.extend_from_slice(tag);
    aad.extend_from_slice(&id.to_be_bytes());
    aad.extend_from_slice(&agency.unwrap_or(-1).to_be_bytes());
    aad
}

/// The catalog's integrity guard, under a key derived from the catalog key.
fn catalog_guard(keys: &PlatformKeys) -> crate::catalog::Guard {
    crate::catalog::Guard::new(SecretKey::from_bytes(keyed_tag(
        &keys.catalog,
        "derived-key",
        b"catalog integrity",
    )))
}

/// The oversight public key the platform seals audit payloads to: the copy
/// sealed in the platform key file, after checking that the public file
/// beside it (for the overseer) is the same key.
fn trusted_oversight_key(
    root: &Path,
    kf: &bletchley_crypto::keyfile::KeyFile,
) -> Result<bletchley_crypto::OversightPublicKey> {
    let sealed = kf
        .get("oversight-pub")
        .ok_or_else(|| Error::Layout("the platform key file lacks the oversight key".into()))?;
    let mut key = [0u8; 32];
    key.copy_from_slice(sealed.expose());
    let public = read_oversight_public(root)?;
    if public.0 != key {
        return Err(Error::Damaged(
            "keys/oversight.pub is not the oversight key this platform was initialised with: it was replaced (audit payloads stay sealed to the original)".into(),
        ));
    }
    Ok(bletchley_crypto::OversightPublicKey(key))
}

/// Checks the catalog against the newest signed audit checkpoint: the
/// state it names must be one this catalog passed through. A catalog put
/// back to an earlier copy never reached the newer state.
fn check_against_checkpoint(
    log: &AuditLog,
    keys: &PlatformKeys,
    state: &crate::catalog::CatalogState,
) -> Result<()> {
    let stored = log.verifier()?;
    let verifier = bletchley_audit::Verifier::new(&stored.name, keys.signer.verifying_key());
    let cp = log.newest_checkpoint(&verifier)?;
    match cp.extension(CATALOG_EXTENSION) {
        Some(v) if state.reached(v) => Ok(()),
        Some(_) => Err(Error::Damaged(format!(
            "the catalog is not the one the audit log last vouched for (its checkpoint at {} entries names a catalog state this catalog never reached): the catalog was rolled back or replaced",
            cp.size
        ))),
        None if cp.size == 0 => Ok(()),
        None => Err(Error::Damaged(format!(
            "the audit checkpoint at {} entries binds no catalog state",
            cp.size
        ))),
    }
}

fn wrap_aad(table: &str, key: &str) -> Vec<u8> {
    format!("{table}:{key}").into_bytes()
}

fn meta_aad(agency: i64, id: &str, collection: CollectionId) -> Vec<u8> {
    format!("item-meta/2:{agency}:{id}:{}", collection.0).into_bytes()
}

/// The error for content whose location the catalog does not list.
fn unknown_location(row: &ItemRow) -> Error {
    Error::Layout(format!("content of {} is in an unknown location", row.id))
}

/// Opens an item's sealed content object, and refuses it unless it is the
/// content the item's sealed metadata names: same object, length and digest.
///
/// The one function that decrypts an item's content, and it takes the gate's
/// [`Access`] for that item by value: code that returns content without a
/// gate decision for the very item does not compile.
fn open_content(
    access: Access,
    row: &ItemRow,
    c: &ContentRow,
    cdek: &DataKey,
    sealed: &[u8],
    binding: &ContentBinding,
) -> Result<Vec<u8>> {
    if access.item() != row.id {
        return Err(Error::Layout(format!(
            "an access to {} was used to open {}",
            access.item(),
            row.id
        )));
    }
    if c.object != binding.object {
        return Err(Error::Damaged(format!(
            "item {} points at a content that is not its own (re-pointed in the catalog)",
            row.id
        )));
    }
    let plain = stream::open(cdek, c.object.as_bytes(), sealed).map_err(|_| {
        Error::Damaged(format!(
            "the content of item {} does not open (altered, truncated or swapped)",
            row.id
        ))
    })?;
    if plain.len() as u64 != binding.length
        || hex::encode(bletchley_crypto::sha256(&plain)) != binding.sha256
    {
        return Err(Error::Damaged(format!(
            "the content of item {} is not the one it was stored with",
            row.id
        )));
    }
    Ok(plain)
}

/// Largest content written into a pack; larger ones are objects of their
/// own, so reading one never reads a pack that is mostly others.
const PACKED_CONTENT_MAX: usize = 1 << 20;

/// Size past which a pack is closed and the next begun, which bounds what
/// reading back a whole pack costs.
const PACK_MAX: usize = 16 << 20;

/// The packs of one ingest batch being filled: each content's sealed bytes
/// are appended to the open pack, which is closed when the next content
/// would take it past [`PACK_MAX`].
///
/// A packed content is named after its pack and its place in it
/// (`PACK#N`): unique, as the seal and the key wrap require, and adjacent in
/// the catalog's index of names to the rest of its batch, so that a batch's
/// inserts touch a few index pages rather than one random page each.
#[derive(Default)]
struct Packer {
    done: Vec<(String, Vec<u8>)>,
    open: Option<OpenPack>,
}

/// The pack being filled.
struct OpenPack {
    name: String,
    bytes: Vec<u8>,
    /// Contents named in it so far.
    named: usize,
}

impl Packer {
    /// The name of the next content, of `len` bytes, which the caller seals
    /// under it and then hands to [`Packer::add`].
    fn next_name(&mut self, len: usize) -> Result<String> {
        if let Some(open) = &self.open
            && open.bytes.len() + len > PACK_MAX
        {
            self.done
                .extend(self.open.take().map(|o| (o.name, o.bytes)));
        }
        let open = match &mut self.open {
            Some(open) => open,
            open @ None => open.insert(OpenPack {
                name: object_name()?,
                bytes: Vec::new(),
                named: 0,
            }),
        };
        open.named += 1;
        Ok(format!("{}#{}", open.name, open.named))
    }

    /// Appends the sealed content last named; says where it lies.
    fn add(&mut self, sealed: Vec<u8>) -> Result<PackSlice> {
        let open = self
            .open
            .as_mut()
            .ok_or_else(|| Error::Layout("a content was packed before it was named".into()))?;
        let offset = open.bytes.len() as i64;
        open.bytes.extend_from_slice(&sealed);
        Ok(PackSlice {
            pack: open.name.clone(),
            offset,
        })
    }

    /// Every pack, to be written.
    fn finish(mut self) -> Vec<(String, Vec<u8>)> {
        self.done
            .extend(self.open.take().map(|o| (o.name, o.bytes)));
        self.done
    }
}

/// The object that holds a content's sealed bytes, and which of its bytes
/// they are (`None`: all of them).
fn content_span<'a>(
    row: &ItemRow,
    c: &'a ContentRow,
) -> Result<(&'a str, Option<std::ops::Range<u64>>)> {
    let Some(p) = &c.packed else {
        return Ok((&c.object, None));
    };
    let bad = || {
        Error::Layout(format!(
            "content of {} has an impossible place in its pack",
            row.id
        ))
    };
    let start = u64::try_from(p.offset).map_err(|_| bad())?;
    let len = u64::try_from(c.size).map_err(|_| bad())?;
    let end = start.checked_add(len).ok_or_else(bad)?;
    Ok((&p.pack, Some(start..end)))
}

fn object_name() -> Result<String> {
    let mut b = [0u8; 16];
    bletchley_crypto::random_bytes(&mut b)?;
    let u = hex::encode(b);
    Ok(format!("{}/{}", &u[..2], u))
}

/// Reads audit entries with the oversight key file (no platform key needed).
pub fn read_audit(root: &Path, unlock: &dyn Unlock) -> Result<Vec<(u64, Entry)>> {
    let kf = open_keyfile(&root.join("keys"), &KeyName::Oversight, unlock)?;
    let sk = kf
        .get("oversight")
        .cloned()
        .ok_or_else(|| Error::Layout("oversight key file lacks its key".into()))?;
    Ok(AuditLog::at(root.join("audit")).read(&OversightSecretKey::from_secret(sk))?)
}
