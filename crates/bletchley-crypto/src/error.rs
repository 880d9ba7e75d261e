use std::fmt;

/// Errors from sealing, opening and key handling. Messages never contain key
/// material or plaintext.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A ciphertext failed authentication: it was altered, truncated,
    /// reordered, spliced or opened with the wrong key.
    #[error("{what} failed authentication (altered, truncated or wrong key)")]
    Tampered {
        /// What was being opened.
        what: Context,
    },
    /// The passphrase does not open the key file.
    #[error("wrong passphrase for key file {label:?}")]
    WrongPassphrase {
        /// The key file's label.
        label: String,
    },
    /// A sealed stream ended before its final chunk.
    #[error("sealed content is truncated (final chunk missing)")]
    Truncated,
    /// Bytes that are not in the expected format.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being read.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A wrapped key names a key-encryption key version the provider lacks
    /// (destroyed by rotation, or never held).
    #[error("key-encryption key version {0} is not held by this provider")]
    UnknownKeyVersion(u32),
    /// The operating system's random source failed.
    #[error("system random source failed")]
    Random,
    /// Reading or writing a key file.
    #[error("key file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// What a failed open was about, for error messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Context {
    /// Item content.
    Content,
    /// A wrapped data key.
    WrappedKey,
    /// A sealed catalog record.
    Record,
    /// A key file.
    KeyFile,
    /// An audit payload.
    AuditPayload,
}

impl fmt::Display for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Context::Content => "sealed content",
            Context::WrappedKey => "wrapped data key",
            Context::Record => "sealed catalog record",
            Context::KeyFile => "key file",
            Context::AuditPayload => "audit payload",
        })
    }
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
