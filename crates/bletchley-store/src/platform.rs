//! The platform: a data directory, its catalog, keys, locations and audit
//! log, and every act on items — each through the gate and into the log.

mod agencies;
mod annotations;
mod audit_review;
mod backup;
mod brake;
mod collections;
mod credentials;
mod feed;
mod health;
mod items;
mod jobs;
mod locations;
mod oversight;
mod overview;
mod packs;
mod principals;
mod read;
mod remark;
mod retention;
mod retention_review;
mod reviews;
mod shred;
mod sites;
mod text_translation;
mod vectors;
mod witnesses;

pub use annotations::{ANNOTATION, Annotation, MAX_ANNOTATION};
pub use audit_review::{AuditQuery, AuditReview, read_audit};
use packs::{PACKED_CONTENT_MAX, Packer, content_span, object_name};
use read::{open_content, unknown_location};

pub use backup::{BackupReport, GenerationInfo, RestoreReport, backup_generations};
pub use brake::{BrakeSetting, Stopped};
pub use health::{LocationHealth, NodeHealth, Probe};
pub use jobs::JobOutcome;
pub use read::ItemRead;
pub use retention::{Destroyed, Retained, RetentionSchedules, ScheduleScope};
pub use retention_review::{Awaiting, ReviewDecision};
pub use sites::{HeldBack, SiteScope};
pub use vectors::VectorFeedItem;

pub use feed::Fed;

pub use credentials::{CertificateRecord, SecondFactor, TokenRecord, TokenScope};
pub use overview::{AgencyOverview, CollectionOverview, JobsOverview};
pub use principals::{AccessTold, PrincipalChange, StandingTold};
pub use remark::{RemarkReport, RemarkRequest, Remarked};
pub use reviews::{ReviewSchedule, ReviewStatus};

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// The name the audit log gives this actor.
    pub fn name(&self) -> String {
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
    /// A legal hold, while one is in force; sealed with the record, so the host cannot lift
    /// it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hold: Option<LegalHold>,
}

/// A legal hold on a collection: while it is in force nothing in the collection is
/// shredded, by a principal or by retention.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LegalHold {
    /// Why (a case or order reference), as the operator wrote it.
    pub reason: String,
    /// Unix milliseconds when it was placed.
    pub since_ms: i64,
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
    /// When this handle next looks for items due under the retention schedules.
    retention_watch: retention::RetentionWatch,
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
            retention_watch: retention::RetentionWatch::default(),
        };
        p.record_cut()?;
        p.restore_witness_file()?;
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
            about: None,
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
