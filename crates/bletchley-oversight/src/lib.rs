//! The oversight report: what the platform's audit log says was accessed, denied,
//! exported, destroyed, re-marked and changed in a period, counted from the sealed
//! entries the overseer opens with the oversight key, each figure tied to the entries it
//! came from and a sample of them proved against the witnessed log.
//!
//! Compiling is pure (entries in, figures out) so that a test can recount every figure
//! independently; proofs come from whoever holds the log; rendering to PDF needs no
//! browser.

pub mod pdf;
pub mod report;

pub use report::{Body, Figure, Period, Report, Row, compile};
