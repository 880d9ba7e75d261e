//! Full-text search over exactly what each principal may see.
//!
//! The index rests sealed (`sealed_dir`); the gate is pushed into every
//! query and into the scoring statistics (`search`).

pub mod access;
mod alert_links;
mod class_stats;
pub mod comms;
pub mod entities;
mod error;
pub mod extract;
pub mod feeder;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod graph;
pub mod ingest;
pub mod name_match;
pub mod names;
pub mod schema;
pub mod sealed_dir;
pub mod search;
pub mod semantic;
mod top_ties;
pub mod vectors;
mod visible_set;
pub mod xref;

pub use error::{Error, Result};
pub use search::{Hit, SearchIndex, SearchRequest, SearchResults, SortBy, Suggestion};
