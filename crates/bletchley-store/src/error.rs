use bletchley_policy::Denial;

/// Errors from the store. The `Display` of [`Error::NotFoundOrNotPermitted`]
/// is the only thing a principal learns about an item it may not see.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The item or collection does not exist, or the principal may not see it.
    /// The same words for both, so existence is not revealed.
    #[error("not found or not permitted")]
    NotFoundOrNotPermitted {
        /// Why, for the audit log only; never shown.
        reason: Option<Denial>,
    },
    /// A bulk collection was read or listed without a justification.
    #[error(
        "collection {collection} holds bulk data: give --justification TEXT stating why you need it"
    )]
    JustificationRequired {
        /// The collection, as `agency/name`.
        collection: String,
    },
    /// The principal is disabled or suspended: it may do nothing until an
    /// admin enables it or the suspension ends.
    #[error("principal {principal} is {why}: ask an agency admin")]
    Inactive {
        /// Who.
        principal: String,
        /// Disabled, or suspended until when.
        why: String,
    },
    /// The principal lacks a role the act needs.
    #[error("principal {principal} needs the {role} role to {act}")]
    RoleRequired {
        /// Who.
        principal: String,
        /// Which role.
        role: &'static str,
        /// What it tried.
        act: &'static str,
    },
    /// No writable location is in a jurisdiction the residency policy allows.
    #[error(
        "residency refused: no writable location in an allowed jurisdiction ({allowed}); nothing was written"
    )]
    Residency {
        /// The jurisdictions allowed.
        allowed: String,
    },
    /// The mass-destruction brake stopped a principal's shredding.
    #[error(
        "the mass-destruction brake stopped {principal}: more than {max} shreds within {window_s} s; nothing more is shredded until a second admin of {agency} releases it (bletchley --as ADMIN brake release {principal})"
    )]
    Braked {
        /// Who was stopped.
        principal: String,
        /// Their agency.
        agency: String,
        /// Shreds allowed per window.
        max: u32,
        /// The window, in seconds.
        window_s: u64,
    },
    /// A principal, agency, collection, operation or location name is unknown.
    #[error("unknown {kind} {name:?}")]
    Unknown {
        /// What kind of thing.
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// A name already taken.
    #[error("{kind} {name:?} already exists")]
    Exists {
        /// What kind of thing.
        kind: &'static str,
        /// The name given.
        name: String,
    },
    /// Input that is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// The item's collection is under legal hold: nothing in it is destroyed until the hold
    /// is released.
    #[error(
        "collection {collection} is under legal hold ({reason}): nothing in it may be shredded until an operator releases the hold"
    )]
    Held {
        /// The collection, as `agency/name`.
        collection: String,
        /// Why it is held, as the operator wrote it.
        reason: String,
    },
    /// The data directory is not initialised or not compatible.
    #[error("{0}")]
    Layout(String),
    /// A passphrase could not be obtained.
    #[error("{0}")]
    Passphrase(String),
    /// An agency's key file could not be unlocked for an item of that
    /// agency: to the principal, the same words as an item it may not see
    /// (which agency owns an item is not theirs to learn); the audit entry
    /// says which key and why.
    #[error("not found or not permitted")]
    KeyUnavailable {
        /// The agency whose key was wanted.
        agency: String,
        /// Why it could not be unlocked.
        reason: String,
    },
    /// Something the host holds was altered, swapped, rolled back or
    /// removed: what is named, nothing else is returned.
    #[error("the store is damaged: {0}")]
    Damaged(String),
    /// A stored item failed authentication.
    #[error("item {id}: {source}")]
    Corrupt {
        /// The item.
        id: String,
        /// What failed.
        source: bletchley_crypto::Error,
    },
    /// Keys and sealing.
    #[error(transparent)]
    Crypto(#[from] bletchley_crypto::Error),
    /// The audit log.
    #[error("audit log: {0}")]
    Audit(#[from] bletchley_audit::Error),
    /// The catalog database.
    #[error("catalog: {0}")]
    Catalog(#[from] rusqlite::Error),
    /// The object store.
    #[error("object store: {0}")]
    Object(#[from] object_store::Error),
    /// Local file I/O.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}
