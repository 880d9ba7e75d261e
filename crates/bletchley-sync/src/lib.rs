//! Replication between the hub and field sites.
//!
//! Each node may be a site: the hub, or a field site with a jurisdiction, a clearance ceiling and
//! the nationalities of its staff. The hub keeps, per field site, an operation log (item added,
//! item removed, erase ordered), hash-chained and signed; what a site may hold is decided by the
//! store's site gate at the sender. Logs travel in sealed, signed bundles on removable media: only
//! the addressee can open one, anyone can tell it was altered, and importing one twice changes
//! nothing. Received items are sealed again under the receiving node's own keys, so a field site
//! never holds a hub key.

mod admin;
mod bundle;
mod code;
mod error;
mod field;
#[cfg(feature = "fuzz")]
pub mod fuzz;
mod hub;
mod identity;
mod oplog;
mod site;
mod staging;
mod tls;
mod wire;

pub use admin::{AgencySite, agency_sites};
pub use bundle::BundleHeader;
pub use error::{Error, Result};
pub use field::{SyncEvent, SyncOptions, SyncReport, sync};
pub use hub::{ListenOptions, listen};
pub use identity::{SiteIdentity, SiteRole};
pub use oplog::{Op, OpKind};
pub use site::{
    Enrolled, Erased, Exported, ImportReport, PeerStatus, SiteInit, SiteStatus, accept, assign,
    enrol, erase, export_bundle, export_bundle_reporting, held_back, identity_file, import_bundle,
    import_bundle_reporting, init, revoke, status,
};
pub use wire::parse_rate;
