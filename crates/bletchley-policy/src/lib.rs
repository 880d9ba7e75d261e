//! Markings, principals, collections, operations and the gate.
//!
//! Pure: no I/O, no clock (callers pass `now`), no randomness. Everything that
//! decides who may see what lives here, so it can be property-tested alone.

pub mod gate;
pub mod marking;
pub mod nation;
pub mod principal;
pub mod scope;

pub use gate::{Access, Admitted, Denial, Gate, Purpose, SystemGate};
pub use marking::{Classification, Marking, MarkingError, Releasability};
pub use nation::{Nation, NationSet};
pub use principal::{AuditReach, Principal, Role, Standing};
pub use scope::{Collection, CollectionId, Operation, Share, Visibility};
