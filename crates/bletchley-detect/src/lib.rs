//! Sigma detection over Windows event logs, JSON Lines and syslog.
//!
//! Readers (`read`) turn records into [`event::Event`]s; rule files (`rule`) become
//! typed rules; a [`mapping::Mapping`] (data, not code) says which events each
//! `logsource` means and which names fields go by; [`engine::Engine`] compiles a rule
//! set once, with one literal automaton per field shared by every rule, so that the
//! cost of a record grows with its fields, not with the number of rules; and
//! [`correlation`] counts detections across events.

pub mod alerts;
pub mod cases;
pub mod condition;
pub mod correlation;
pub mod engine;
pub mod event;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod hunt;
pub mod iocs;
pub mod job;
pub mod manage;
pub mod mapping;
pub mod pattern;
pub mod playbook;
pub mod read;
pub mod rule;
