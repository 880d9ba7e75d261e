//! The tamper-evident audit log (rule 5): an append-only Merkle tree log in
//! the manner of RFC 9162, entries sealed to the oversight key, checkpoints
//! signed with Ed25519 as C2SP signed notes.
//!
//! Knows files and nothing of items, markings or principals beyond the names
//! written into entries.

pub mod cosign;
pub mod entry;
mod error;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod log;
pub mod merkle;
pub mod note;
pub mod witness;
pub mod witnessed;

pub use cosign::{Cosigner, WitnessKey};
pub use entry::{About, Entry, Outcome};
pub use error::{Error, Result};
pub use log::{AuditLog, Cut, Report, Writer};
pub use note::{Checkpoint, Verifier};
pub use witness::{Refusal, Witness};
pub use witnessed::{
    ConsistencyProof, CosignOutcome, CosignReport, InclusionProof, Transport, WitnessConfig,
    WitnessPolicy, WitnessResult, WitnessedReport,
};
