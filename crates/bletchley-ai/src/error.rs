//! Errors of the speech pipeline, typed so that callers can say what to do next.

use std::path::PathBuf;

/// Everything that can go wrong between an audio file and a transcript.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read at all.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The bytes are not audio that a decoder here understands.
    #[error("not a recording that can be decoded: {0}")]
    Audio(String),
    /// No model directory where one was expected; the message names the command that fetches it.
    #[error("no speech model at {dir}: run `bletchley models fetch` first (or pass --model DIR)")]
    ModelMissing {
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// A model directory that is present but unusable.
    #[error("model: {0}")]
    Model(String),
    /// A tensor operation failed.
    #[error("tensor computation: {0}")]
    Tensor(#[from] candle_core::Error),
    /// Work stopped at its time limit.
    #[error("{0}")]
    TimeLimit(String),
    /// An option that does not make sense (unknown language, format, ...).
    #[error("{0}")]
    Invalid(String),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
