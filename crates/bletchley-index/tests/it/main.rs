//! Integration tests of the index crate's parsers on hostile and real input.

mod formats;
