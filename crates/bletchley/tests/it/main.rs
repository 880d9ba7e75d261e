//! Integration tests that drive the real `bletchley` binary over real data
//! directories.

mod access_matrix;
mod bad_input;
mod campaign;
mod canary;
mod common;
mod crash;
mod dedup_retention;
mod derived;
mod detect;
mod graph;
mod host;
mod hunt;
mod lifecycle;
mod playbook;
mod residency;
mod resilience;
mod search;
mod server;
mod shred;
mod sites;
mod sites_link;
mod speech;
mod tamper;
mod tidy;
mod witness;
