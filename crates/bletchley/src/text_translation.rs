//! Documents translated into English at ingest (an imported Marian model for the language,
//! else Apertium's pair): the operator's switch (`translation
//! enable|disable`) and the jobs the worker runs. A translation is an item derived from its
//! document (`translation`, as a recording's is): same collection and marking (rule 4),
//! shredded with it, searchable in English, and embedded when semantic search is on.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use bletchley_ai::pipeline::{JobAnswers, JobError, TRANSLATION};
use bletchley_ai::translate::{Engines, Limits};
use bletchley_store::jobs::{EMBED, TRANSLATE_TEXT};
use bletchley_store::{Actor, Job, NewItem, Platform};

/// How often a worker translating a batch tells the queue it is alive.
const HEARTBEAT: Duration = Duration::from_secs(20);

/// Whether a job is a document translation.
pub fn is_text_translation(kind: &str) -> bool {
    kind == TRANSLATE_TEXT
}

/// Runs a batch of translation jobs, one answer per job in order. Each document is read as the
/// principal who stored it (audited, the job named as the justification); one whose language
/// has no pair into English here, or that has no text, is done with nothing made; one
/// translated before (an earlier attempt stored its translation) answers with that.
pub fn run_translations(p: &mut Platform, jobs: &[Job]) -> JobAnswers {
    let engine = match p.text_translation() {
        // A neural model on a long report takes minutes where Apertium takes seconds: each
        // document gets up to Marian's time, whichever engine takes it.
        Ok(Some(_)) => Ok(Engines::detect(
            Limits {
                time: bletchley_ai::translate::MARIAN_TIME,
                ..Limits::default()
            },
            &bletchley_ai::models::dir_from_env(),
        )),
        // Turned off since the jobs were queued: nothing to make.
        Ok(None) => return jobs.iter().map(|_| Some(Ok(Vec::new()))).collect(),
        Err(e) => Err(JobError::Transient(e.to_string())),
    };
    let mut last_beat = Instant::now();
    let mut answers = Vec::with_capacity(jobs.len());
    for (n, job) in jobs.iter().enumerate() {
        let answer = match &engine {
            Ok(engine) => translate_one(p, engine, job),
            Err(JobError::Transient(m)) => Err(JobError::Transient(m.clone())),
            Err(JobError::Permanent(m)) => Err(JobError::Permanent(m.clone())),
        };
        answers.push(Some(answer));
        if last_beat.elapsed() > HEARTBEAT {
            last_beat = Instant::now();
            for later in &jobs[n + 1..] {
                // A lost heartbeat only lets another worker take the job again.
                let _ = p.job_progress(later.id, 0.0);
            }
        }
    }
    answers
}

fn translate_one(
    p: &mut Platform,
    engine: &Engines,
    job: &Job,
) -> std::result::Result<Vec<String>, JobError> {
    let transient = |e: bletchley_store::Error| JobError::Transient(e.to_string());
    let existing = p.derived_by(&job.item, TRANSLATION).map_err(transient)?;
    if !existing.is_empty() {
        return Ok(existing);
    }
    let why = format!("translation job {}", job.id);
    let (meta, content) = p
        .get(&job.principal, &job.item, Some(&why))
        .map_err(|e| JobError::Permanent(format!("reading the document: {e}")))?;
    if bletchley_index::extract::is_audio(&meta.title, &content)
        || bletchley_index::extract::is_event_log(&meta.title, &content)
    {
        return Ok(Vec::new());
    }
    let text = bletchley_index::extract::extract_item(&meta.title, &content, meta.generation).text;
    let language = bletchley_index::search::language_of(&text);
    let Some(from) = engine.source_for(&language) else {
        // English, a language with no engine here, or no reliable language at all.
        return Ok(Vec::new());
    };
    let (english, _) = engine
        .translate(&text, &from)
        .map_err(|e| JobError::Permanent(format!("translating from {from}: {e}")))?;
    let item = NewItem {
        title: format!("{}.en.txt", meta.title),
        content: english.into_bytes(),
    };
    let ids = p
        .derive(
            &Actor::Principal(job.principal.clone()),
            &job.item,
            TRANSLATION,
            vec![item],
        )
        .map_err(transient)?;
    // The translation is searched by meaning like any text.
    if p.semantic_model().map_err(transient)?.is_some() {
        let queue: Vec<(&str, &str)> = ids.iter().map(|id| (EMBED, id.as_str())).collect();
        p.enqueue_jobs(&job.principal, &queue).map_err(transient)?;
    }
    Ok(ids)
}

/// `translation enable`: documents in a language with an engine into English (an imported
/// Marian model, an Apertium pair) are translated at ingest from now on.
pub fn enable(p: &mut Platform) -> Result<ExitCode> {
    let engines = Engines::detect(Limits::default(), &bletchley_ai::models::dir_from_env());
    let languages: Vec<String> = engines
        .languages()
        .into_iter()
        .map(|(l, engine)| format!("{l} ({engine})"))
        .collect();
    if languages.is_empty() {
        anyhow::bail!(
            "nothing here translates into English: import an OPUS-MT model (`bletchley models import DIR`) or install an Apertium pair (Debian's apertium-en-es, apertium-en-ca, …)"
        );
    }
    p.set_text_translation(Some("auto"))?;
    eprintln!(
        "translation on: documents in {} are translated into English by the job worker as they are ingested",
        languages.join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

/// `translation disable`.
pub fn disable(p: &mut Platform) -> Result<ExitCode> {
    p.set_text_translation(None)?;
    eprintln!("translation off: documents ingested from now on are not translated");
    Ok(ExitCode::SUCCESS)
}
