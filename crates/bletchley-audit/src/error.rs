/// Errors from the audit log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The log's integrity check failed; `entry` and `offset` say where.
    #[error("audit log integrity failure at entry {entry} (byte {offset}): {detail}")]
    Integrity {
        /// Index of the first entry found wrong.
        entry: u64,
        /// Byte offset of that entry in the log file.
        offset: u64,
        /// What is wrong.
        detail: String,
    },
    /// The log holds fewer entries than a signed checkpoint covers.
    #[error("audit log truncated: checkpoint covers {expected} entries, log holds {found}")]
    Truncated {
        /// Entries the checkpoint covers.
        expected: u64,
        /// Entries found.
        found: u64,
    },
    /// Entries were altered somewhere in a range bounded by two checkpoints.
    #[error(
        "audit log altered: root over {size} entries does not match its checkpoint; first bad entry is in {from}..{size}"
    )]
    RootMismatch {
        /// The checkpoint size whose root fails.
        size: u64,
        /// The largest earlier checkpoint size that still matches.
        from: u64,
    },
    /// Entries past the newest signed checkpoint: nothing vouches for them
    /// (a crash before their checkpoint, which the platform's next start
    /// settles, or entries forged by whoever can write the log).
    #[error(
        "audit log holds {found} entries but the newest signed checkpoint covers {signed}: entries {signed}.. are signed by nobody (a crash before their checkpoint, settled when the platform next opens, or forged)"
    )]
    Unsigned {
        /// Entries the newest checkpoint covers.
        signed: u64,
        /// Entries found.
        found: u64,
    },
    /// No kept checkpoint carries the quorum's cosignatures.
    #[error(
        "no checkpoint is cosigned by {quorum} of the witnesses (the best has {best}, over {best_size} entries): the log's history is not witnessed"
    )]
    NotWitnessed {
        /// Cosignatures required.
        quorum: usize,
        /// The most any kept checkpoint has.
        best: usize,
        /// That checkpoint's size.
        best_size: u64,
    },
    /// A checkpoint's signature does not verify.
    #[error("checkpoint signature does not verify with the log's verifier key")]
    BadSignature,
    /// Bytes that are not in the expected format.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Sealing or opening failed.
    #[error(transparent)]
    Crypto(#[from] bletchley_crypto::Error),
    /// File I/O.
    #[error("audit log {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
