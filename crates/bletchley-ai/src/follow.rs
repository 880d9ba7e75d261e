//! A recording's transcript and translation as a reader sees them: the stored items once
//! the job has made them, and what the job has made so far while it runs, so that an analyst
//! reads the first minutes of a two-hour intercept within seconds of their transcription.
//!
//! Every part is read through the gate as the reader: the recording first (its job and
//! partial output are its content), then each stored item on its own marking.

use bletchley_store::{Error as StoreError, ItemMeta, Job, JobState, Platform};

use crate::pipeline::{PartialTranscription, TRANSCRIPT, TRANSLATION};
use crate::whisper::Transcript;

/// One of the two texts, stored or still being made.
#[derive(Clone, Debug)]
pub struct Shown {
    /// The text with its segments and times.
    pub transcript: Transcript,
    /// The stored item it was read from; `None` while the job is still making it.
    pub item: Option<String>,
    /// The stored item's marking (a partial text is the recording's own).
    pub marking: Option<String>,
}

/// What a reader may see of a recording's transcription.
#[derive(Clone, Debug, Default)]
pub struct TranscriptionView {
    /// The transcript in the spoken language.
    pub transcript: Option<Shown>,
    /// The English translation.
    pub translation: Option<Shown>,
    /// The newest transcription job on the recording, if one was queued.
    pub job: Option<Job>,
    /// The recording's own metadata (its title and marking, which a partial text carries).
    pub recording: Option<ItemMeta>,
}

impl TranscriptionView {
    /// Whether more is still to come: the job is queued or running and a text is missing or
    /// partial.
    pub fn running(&self) -> bool {
        let unfinished = |s: &Option<Shown>| s.as_ref().is_none_or(|s| s.item.is_none());
        self.job
            .as_ref()
            .is_some_and(|j| matches!(j.state, JobState::Queued | JobState::Running))
            && (unfinished(&self.transcript) || unfinished(&self.translation))
    }
}

/// Reads a recording's transcription for `who`: the stored transcript and translation where
/// they exist, else what the running job has made of each so far. A reader who may not read
/// the recording gets the gate's refusal and nothing else.
pub fn transcription_view(
    p: &mut Platform,
    who: &str,
    recording: &str,
    justification: Option<&str>,
) -> Result<TranscriptionView, StoreError> {
    let bletchley_store::jobs::JobOnItem { meta, job, partial } = p.job_on_item(
        who,
        recording,
        bletchley_store::jobs::TRANSCRIBE,
        justification,
    )?;
    let partial: PartialTranscription = match partial {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            StoreError::Damaged(format!(
                "the partial transcription of {recording} is unreadable: {e}"
            ))
        })?,
        None => PartialTranscription::default(),
    };
    let mut stored = |derivation: &str| -> Result<Option<Shown>, StoreError> {
        let Some(child) = p.derived_by(recording, derivation)?.into_iter().next() else {
            return Ok(None);
        };
        let (meta, content) = p.get(who, &child, justification)?;
        let transcript: Transcript = serde_json::from_slice(&content).map_err(|e| {
            StoreError::Damaged(format!("{derivation} {child} is not a transcript: {e}"))
        })?;
        Ok(Some(Shown {
            transcript,
            item: Some(child),
            marking: Some(meta.marking),
        }))
    };
    let partial_shown = |t: Option<Transcript>| {
        t.map(|transcript| Shown {
            transcript,
            item: None,
            marking: None,
        })
    };
    let transcript = match stored(TRANSCRIPT)? {
        Some(s) => Some(s),
        None => partial_shown(partial.transcript),
    };
    let translation = match stored(TRANSLATION)? {
        Some(s) => Some(s),
        None => partial_shown(partial.translation),
    };
    Ok(TranscriptionView {
        transcript,
        translation,
        job,
        recording: Some(meta),
    })
}
