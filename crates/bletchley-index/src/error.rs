/// Errors from the search index.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The query could not be understood.
    #[error("invalid query: {0}")]
    Query(String),
    /// The index engine failed.
    #[error("search index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// Opening the index directory.
    #[error("search index {0}: {1}")]
    Io(String, std::io::Error),
    /// Reading index data.
    #[error("search index: {0}")]
    Read(#[from] std::io::Error),
    /// The store.
    #[error(transparent)]
    Store(#[from] bletchley_store::Error),
    /// Another process committed to the index since this handle last caught
    /// up; changes worked out before then may repeat what it did. Nothing
    /// was written: catch up and work them out again.
    #[error("search index: changed by another process; reconcile again")]
    Behind,
    /// Another process held the index's writer for longer than a commit
    /// waits (seconds): a bulk ingest releases it every few seconds, so this
    /// means a process that hangs while holding it.
    #[error("search index: another process has been writing to it for over {0} s; try again")]
    Busy(u64),
}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
