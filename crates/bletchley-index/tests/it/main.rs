//! Integration tests of the index crate's parsers on hostile and real input.

// Fixture builders panic on failure like the tests they serve.
#![allow(clippy::unwrap_used)]
mod budget;
mod feeder;
mod formats;
mod names;
