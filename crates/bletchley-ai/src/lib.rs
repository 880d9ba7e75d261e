//! Speech models in process: recordings in, timed transcripts and English translations out.
//!
//! Everything runs on the platform's own machines with weights from a local directory (rule 6 of
//! DESIGN.md: nothing is fetched at run time). The crate holds no platform state: the store's job
//! queue and the CLI decide what to transcribe and where the results go.

pub mod audio;
pub mod embed;
mod error;
pub mod follow;
pub mod format;
#[cfg(feature = "fuzz")]
pub mod fuzz;
pub mod marian;
pub mod models;
mod opus;
pub mod pipeline;
pub mod translate;
pub mod vad;
pub mod whisper;

pub use audio::AudioStream;
pub use error::{Error, Result};
pub use whisper::{
    ModelFormat, Progress, Segment, SpeechModel, Task, TranscribeOptions, Transcript, WeightFormat,
};
