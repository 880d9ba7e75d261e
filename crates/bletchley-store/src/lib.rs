//! Locations, residency, the catalog and items: sealed, placed, gated and
//! audited storage for the crates above.
//!
//! Every function here that hands out item data or metadata first asks the
//! gate (`bletchley-policy`) and appends an audit entry (`bletchley-audit`);
//! every byte it writes is sealed (`bletchley-crypto`).

pub mod catalog;
mod error;
pub mod item;
pub mod jobs;
pub mod keyring;
pub mod location;
pub mod platform;
pub mod residency;
pub mod vectors;

pub use error::{Error, Result};
pub use item::{IndexFeedItem, IngestOptions, ItemMeta, Listing, NewItem, Priority};
pub use jobs::{Job, JobState};
pub use keyring::{KeyName, Unlock};
pub use location::{Location, LocationSpec};
pub use platform::{
    ANNOTATION, Actor, Annotation, AuditQuery, AuditReview, CertificateRecord, Fed, InitOptions,
    MAX_ANNOTATION, OperationView, Platform, PrincipalChange, SYSTEM_ACTORS, SecondFactor,
    SharedCollection, SiteScope, SystemActor, TokenRecord, TokenScope, TrustAnchors, now_ms,
    read_audit,
};
pub use residency::{Jurisdiction, Scope};
