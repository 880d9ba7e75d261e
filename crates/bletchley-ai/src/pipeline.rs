//! The transcription job: a queued recording becomes two derived items, its transcript in the
//! spoken language and its English translation.
//!
//! The job reads the recording through the gate as the principal who ingested it (so a principal
//! who has since lost access gets nothing transcribed), and stores its results with
//! [`Platform::derive`], so they carry the recording's collection, marking and retention (rule 4)
//! and go with it when it is shredded. Each result is made only if it does not exist yet: a worker
//! killed halfway leaves a job that the next worker finishes without duplicates.

use bletchley_store::{Actor, Job, NewItem, Platform};

use crate::audio::AudioStream;
use crate::format::{Format, render};
use crate::whisper::{SpeechModel, Task, TranscribeOptions, Transcript};

/// Derivation name of the transcript in the spoken language.
pub const TRANSCRIPT: &str = "transcript";
/// Derivation name of the English translation.
pub const TRANSLATION: &str = "translation";

/// What a transcription job keeps while it runs, for readers who follow it: the segments
/// of each task made so far. The transcript is absent once its item is stored (readers read
/// that), and so is the translation before it starts.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct PartialTranscription {
    /// The transcript in the spoken language so far.
    #[serde(default)]
    pub transcript: Option<Transcript>,
    /// The English translation so far.
    #[serde(default)]
    pub translation: Option<Transcript>,
}

/// Why a job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// Retrying cannot help (the recording does not decode, access was refused).
    #[error("{0}")]
    Permanent(String),
    /// Retrying may help (a missing model that an operator can fetch, a storage hiccup).
    #[error("{0}")]
    Transient(String),
}

/// Runs one transcription job; returns the derived items (existing ones included).
pub fn run_transcription(
    p: &mut Platform,
    model: &SpeechModel,
    job: &Job,
    beam_size: usize,
    progress: &mut dyn FnMut(&mut Platform, f32),
) -> Result<Vec<String>, JobError> {
    let why = format!("transcription job {}", job.id);
    let (meta, content) = p
        .get(&job.principal, &job.item, Some(&why))
        .map_err(|e| JobError::Permanent(format!("reading the recording: {e}")))?;
    let existing_transcript = p
        .derived_by(&job.item, TRANSCRIPT)
        .map_err(|e| JobError::Transient(e.to_string()))?;
    let existing_translation = p
        .derived_by(&job.item, TRANSLATION)
        .map_err(|e| JobError::Transient(e.to_string()))?;
    let actor = Actor::Principal(job.principal.clone());
    let extension = meta
        .title
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase());
    let run = |p: &mut Platform,
               task: Task,
               language: Option<String>,
               share: (f32, f32),
               progress: &mut dyn FnMut(&mut Platform, f32)| {
        let mut audio = AudioStream::from_bytes(content.clone(), extension.as_deref())
            .map_err(|e| JobError::Permanent(e.to_string()))?;
        let opts = TranscribeOptions {
            task,
            language,
            beam_size,
            // Analysts jump to a word in the original; the translation's word times would be
            // the English words' guesses at the foreign audio, so they are not made.
            word_timestamps: task == Task::Transcribe,
            ..TranscribeOptions::default()
        };
        let mut kept = 0;
        model
            .transcribe(&mut audio, &opts, &mut |at| {
                let f = if at.known > 0.0 {
                    (at.done / at.known) as f32
                } else {
                    0.0
                };
                if at.segments.len() != kept {
                    // New segments: readers following the job see them now. Best effort: a
                    // partial that cannot be kept only delays what they see until the end.
                    kept = at.segments.len();
                    let so_far = Transcript {
                        language: at.language.to_owned(),
                        language_probability: 0.0,
                        task,
                        duration: at.known,
                        segments: at.segments.to_vec(),
                        timing: Default::default(),
                    };
                    let partial = match task {
                        Task::Transcribe => PartialTranscription {
                            transcript: Some(so_far),
                            translation: None,
                        },
                        Task::Translate => PartialTranscription {
                            transcript: None,
                            translation: Some(so_far),
                        },
                    };
                    if let Ok(json) = serde_json::to_vec(&partial) {
                        let _ = p.save_job_partial(job, &json);
                    }
                }
                progress(p, share.0 + share.1 * f.clamp(0.0, 1.0));
            })
            .map_err(|e| match e {
                crate::Error::Audio(_) | crate::Error::Invalid(_) => {
                    JobError::Permanent(e.to_string())
                }
                other => JobError::Transient(other.to_string()),
            })
    };
    let mut results = Vec::new();
    let transcript: Option<Transcript> = if existing_transcript.is_empty() {
        let t = run(p, Task::Transcribe, None, (0.0, 0.5), progress)?;
        let ids = store(p, &actor, &job.item, TRANSCRIPT, &meta.title, &t)?;
        results.extend(ids);
        Some(t)
    } else {
        results.extend(existing_transcript);
        None
    };
    progress(p, 0.5);
    if existing_translation.is_empty() {
        let language = transcript.as_ref().map(|t| t.language.clone());
        let translation = match &transcript {
            // English needs no translation: the transcript is its own.
            Some(t) if t.language == "en" => Transcript {
                task: Task::Translate,
                ..t.clone()
            },
            _ => run(
                p,
                Task::Translate,
                language.filter(|l| !l.is_empty()),
                (0.5, 0.5),
                progress,
            )?,
        };
        results.extend(store(
            p,
            &actor,
            &job.item,
            TRANSLATION,
            &meta.title,
            &translation,
        )?);
    } else {
        results.extend(existing_translation);
    }
    progress(p, 1.0);
    Ok(results)
}

fn store(
    p: &mut Platform,
    actor: &Actor,
    source: &str,
    derivation: &str,
    title: &str,
    t: &Transcript,
) -> Result<Vec<String>, JobError> {
    let item = NewItem {
        title: format!("{title}.{derivation}.json"),
        content: render(t, Format::Json).into_bytes(),
    };
    let ids = p
        .derive(actor, source, derivation, vec![item])
        .map_err(|e| JobError::Transient(format!("storing the {derivation}: {e}")))?;
    // A transcript and a translation are embedded for semantic search like any text.
    let semantic = p
        .semantic_model()
        .map_err(|e| JobError::Transient(format!("reading the semantic setting: {e}")))?;
    if semantic.is_some() {
        let queue: Vec<(&str, &str)> = ids
            .iter()
            .map(|id| (bletchley_store::jobs::EMBED, id.as_str()))
            .collect();
        p.enqueue_jobs(&actor.name(), &queue).map_err(|e| {
            JobError::Transient(format!("queueing the {derivation}'s embedding: {e}"))
        })?;
    }
    Ok(ids)
}

/// How a worker decodes.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The speech model directory; `None` on a worker without one, which leaves
    /// transcription to others (each such job is deferred, not failed).
    pub model_dir: Option<std::path::PathBuf>,
    /// Decoder weights.
    pub weights: crate::WeightFormat,
    /// Beam width (1: greedy).
    pub beam_size: usize,
    /// Where the model runs (see [`crate::whisper::device_by_name`]); `None`: the first GPU
    /// when built for one, else the CPU.
    pub device: Option<String>,
}

/// What a worker reports as it goes.
pub enum WorkerEvent<'a> {
    /// A job was taken.
    Started(&'a Job),
    /// Progress of the current job, 0 to 1.
    Progress(&'a Job, f32),
    /// A job finished with these items.
    Done(&'a Job, &'a [String]),
    /// An attempt failed; the state says whether it will be retried.
    Failed(&'a Job, &'a str, bletchley_store::JobState),
    /// The job was put back for a worker that can run it.
    Deferred(&'a Job, &'a str),
}

/// How long a job this worker cannot run waits before any worker takes it again.
pub const DEFER_MS: i64 = 60_000;

/// Runs a batch of jobs of kinds other than transcription (detection, from
/// `bletchley-detect`): one answer per job, in order; `None` for a kind it does not know.
pub type OtherJobs<'a> = &'a mut dyn FnMut(&mut Platform, &[Job]) -> JobAnswers;

/// One answer per job of a batch: `None` for a kind the handler does not know, else the
/// items the job produced or why it failed.
pub type JobAnswers = Vec<Option<Result<Vec<String>, JobError>>>;

/// Jobs other than transcriptions claimed, run and finished together: each costs
/// milliseconds, and claiming, auditing and finishing them one by one cost more.
const BATCH: usize = 64;

/// Counts of what a worker did.
#[derive(Clone, Copy, Debug, Default)]
pub struct WorkSummary {
    /// Jobs completed.
    pub done: usize,
    /// Attempts that failed.
    pub failed: usize,
}

/// Runs ready jobs until none is left (`once`) or until `stop` is set, loading the model on the
/// first transcription job; other kinds go to `other`. A job that fails is recorded as failed
/// (or queued again) and the worker goes on.
pub fn work(
    p: &mut Platform,
    opts: &WorkerOptions,
    once: bool,
    stop: &std::sync::atomic::AtomicBool,
    other: OtherJobs<'_>,
    on_event: &mut dyn FnMut(WorkerEvent<'_>),
) -> bletchley_store::Result<WorkSummary> {
    use std::sync::atomic::Ordering;
    let mut model: Option<SpeechModel> = None;
    let mut summary = WorkSummary::default();
    let transcribe = bletchley_store::jobs::TRANSCRIBE;
    while !stop.load(Ordering::Relaxed) {
        let jobs = p.claim_jobs(BATCH, &|kind| kind != transcribe)?;
        let Some(first) = jobs.first() else {
            if once {
                break;
            }
            std::thread::sleep(std::time::Duration::from_secs(2));
            continue;
        };
        if first.kind != transcribe {
            for job in &jobs {
                on_event(WorkerEvent::Started(job));
            }
            let mut answers = other(p, &jobs).into_iter();
            let outcomes: Vec<(&Job, bletchley_store::platform::JobOutcome)> = jobs
                .iter()
                .map(|job| {
                    let answer = answers.next().flatten().unwrap_or_else(|| {
                        Err(JobError::Permanent(format!(
                            "unknown job kind {:?}",
                            job.kind
                        )))
                    });
                    let outcome = answer.map_err(|e| {
                        let permanent = matches!(e, JobError::Permanent(_));
                        (e.to_string(), permanent)
                    });
                    (job, outcome)
                })
                .collect();
            let states = p.finish_jobs(&outcomes)?;
            for ((job, outcome), state) in outcomes.iter().zip(states) {
                match outcome {
                    Ok(results) => {
                        summary.done += 1;
                        on_event(WorkerEvent::Done(job, results));
                    }
                    Err((msg, _)) => {
                        summary.failed += 1;
                        on_event(WorkerEvent::Failed(job, msg, state));
                    }
                }
            }
            continue;
        }
        let job = first;
        let Some(model_dir) = &opts.model_dir else {
            let why = "no speech model on this worker (bletchley models fetch)";
            p.defer_job(job, DEFER_MS, why)?;
            on_event(WorkerEvent::Deferred(job, why));
            continue;
        };
        on_event(WorkerEvent::Started(job));
        if model.is_none() {
            let loaded = SpeechModel::load_named(model_dir, opts.weights, opts.device.as_deref());
            match loaded {
                Ok(m) => model = Some(m),
                Err(e) => {
                    let msg = e.to_string();
                    let state = p.fail_job(job, &msg, false)?;
                    summary.failed += 1;
                    on_event(WorkerEvent::Failed(job, &msg, state));
                    if once {
                        break;
                    }
                    continue;
                }
            }
        }
        let outcome = match &model {
            Some(m) => {
                // Progress goes to the caller at every window, and to the queue (which
                // also renews the lease) at every 2 %.
                let mut last = 0.0f32;
                run_transcription(p, m, job, opts.beam_size, &mut |p, f| {
                    on_event(WorkerEvent::Progress(job, f));
                    if f - last >= 0.02 || f >= 1.0 {
                        last = f;
                        let _ = p.job_progress(job.id, f);
                    }
                })
            }
            None => Err(JobError::Transient("no speech model".into())),
        };
        match outcome {
            Ok(results) => {
                p.complete_job(job, results.clone())?;
                summary.done += 1;
                on_event(WorkerEvent::Done(job, &results));
            }
            Err(e) => {
                let permanent = matches!(e, JobError::Permanent(_));
                let msg = e.to_string();
                let state = p.fail_job(job, &msg, permanent)?;
                summary.failed += 1;
                on_event(WorkerEvent::Failed(job, &msg, state));
            }
        }
    }
    Ok(summary)
}
