//! What can go wrong in replication, worded for the operator who carried the media.

use thiserror::Error;

/// A replication failure. Every refusal leaves the node as it was.
#[derive(Debug, Error)]
pub enum Error {
    /// The store refused or failed.
    #[error(transparent)]
    Store(#[from] bletchley_store::Error),
    /// A key or seal failed.
    #[error(transparent)]
    Crypto(#[from] bletchley_crypto::Error),
    /// Reading or writing a file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The node has no site identity yet.
    #[error("this node is not a site yet: run `bletchley site init` first")]
    NotASite,
    /// A site name that is not enrolled here.
    #[error("no site named {0:?} is enrolled here (see `bletchley site status`)")]
    UnknownSite(String),
    /// Invalid arguments or a malformed identity file.
    #[error("{0}")]
    Invalid(String),
    /// The bundle is cut short or its framing is wrong.
    #[error("bundle is truncated or malformed: {0}")]
    Malformed(String),
    /// The signature does not verify: the bundle was altered or forged.
    #[error("bundle rejected: {0}")]
    Tampered(String),
    /// Addressed to another site.
    #[error("bundle is addressed to site {to:?}, but this is site {this:?}: nothing imported")]
    Misaddressed {
        /// Its addressee.
        to: String,
        /// This site.
        this: String,
    },
    /// Older than what was already applied.
    #[error(
        "bundle replayed: it ends at operation {ends} of {from:?}, and this site has applied up to {applied}: nothing imported"
    )]
    Replayed {
        /// Its sender.
        from: String,
        /// Its last operation.
        ends: u64,
        /// What this site has.
        applied: u64,
    },
    /// Operations between what was applied and the bundle's first are missing.
    #[error(
        "bundle starts at operation {starts} of {from:?}, but this site has applied only up to {applied}: import the earlier bundle first (or ask for one from {next})"
    )]
    Gap {
        /// Its sender.
        from: String,
        /// Its first operation.
        starts: u64,
        /// What this site has.
        applied: u64,
        /// What to ask for.
        next: u64,
    },
    /// The other side broke the replication protocol.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The other side refused the TLS session (an unknown or revoked certificate).
    #[error("refused by the other side: {0}")]
    Refused(String),
    /// This node's policy refuses the other side's request (an unproved enrolment code, a
    /// collection not accepted from it); audited where decided.
    #[error("refused: {0}")]
    Denied(String),
    /// The link failed (cut, reset, timed out); replication resumes where it stopped.
    #[error("link: {0}")]
    Link(String),
    /// The log does not continue what was applied (a fork or a forged history).
    #[error(
        "bundle does not continue the operation log this site holds from {0:?}: nothing imported"
    )]
    Fork(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, Error>;
