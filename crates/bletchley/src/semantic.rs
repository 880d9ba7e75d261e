//! Semantic search in the platform: the operator's switch (`semantic enable|disable|status`),
//! the embedding jobs the worker runs, and `search --mode semantic|hybrid`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bletchley_ai::embed::SentenceModel;
use bletchley_ai::models;
use bletchley_ai::pipeline::{JobAnswers, JobError};
use bletchley_store::jobs::EMBED;
use bletchley_store::vectors::{ItemVectors, MAX_CHUNKS, VectorChunk};
use bletchley_store::{Job, Platform};

use crate::speech::default_models_dir;

/// Sentences consecutive chunks of an item share.
const OVERLAP: usize = 1;

/// Chunks embedded at a time, so a long item's memory stays bounded.
const EMBED_GROUP: usize = 256;

/// How often a worker embedding a batch tells the queue it is alive.
const HEARTBEAT: Duration = Duration::from_secs(20);

/// The most chunks the job embeds of one item (about 2.5 million tokens, some minutes on two
/// cores); a longer text fails its job with a clear message rather than being cut silently.
pub const ITEM_MAX_CHUNKS: usize = 10_000;

/// The sentence-embedding model a worker loaded, by name.
#[derive(Default)]
pub struct ModelCache {
    loaded: Option<(String, SentenceModel)>,
}

impl ModelCache {
    fn get(&mut self, name: &str) -> Result<&SentenceModel, JobError> {
        if self.loaded.as_ref().is_none_or(|(n, _)| n != name) {
            let dir = model_dir(name).map_err(|e| JobError::Transient(e.to_string()))?;
            let m = SentenceModel::load(&dir).map_err(|e| {
                JobError::Transient(format!("loading the embedding model {name}: {e}"))
            })?;
            self.loaded = Some((name.to_owned(), m));
        }
        match &self.loaded {
            Some((_, m)) => Ok(m),
            None => Err(JobError::Transient("no embedding model loaded".into())),
        }
    }
}

/// Where the installed model `name` is.
fn model_dir(name: &str) -> Result<PathBuf> {
    Ok(models::embedding_model_dir(&default_models_dir(), name)?)
}

/// Whether a job is an embedding job.
pub fn is_embedding(kind: &str) -> bool {
    kind == EMBED
}

/// Runs a batch of embedding jobs, one answer per job in order: the items read in one audited
/// system read, chunked and embedded with the model the platform's setting names, and every
/// item's vectors stored in one commit. An item with vectors already (an earlier attempt
/// stored them) is not embedded again; audio and event logs, and items with no text, get an
/// empty set of vectors.
pub fn run_embeddings(p: &mut Platform, jobs: &[Job], cache: &mut ModelCache) -> JobAnswers {
    let fail_all = |e: JobError| -> JobAnswers {
        jobs.iter()
            .map(|_| {
                Some(Err(match &e {
                    JobError::Permanent(m) => JobError::Permanent(m.clone()),
                    JobError::Transient(m) => JobError::Transient(m.clone()),
                }))
            })
            .collect()
    };
    let name = match p.semantic_model() {
        Ok(Some(n)) => n,
        // Turned off since the jobs were queued: nothing to make.
        Ok(None) => return jobs.iter().map(|_| Some(Ok(Vec::new()))).collect(),
        Err(e) => return fail_all(JobError::Transient(e.to_string())),
    };
    let model = match cache.get(&name) {
        Ok(m) => m,
        Err(e) => return fail_all(e),
    };
    let mut answers: JobAnswers = jobs.iter().map(|_| None).collect();
    let mut todo: Vec<usize> = Vec::new();
    for (n, job) in jobs.iter().enumerate() {
        match p.has_vectors(&job.item) {
            Ok(true) => answers[n] = Some(Ok(Vec::new())),
            Ok(false) => todo.push(n),
            Err(e) => answers[n] = Some(Err(JobError::Transient(e.to_string()))),
        }
    }
    let ids: Vec<String> = todo.iter().map(|&n| jobs[n].item.clone()).collect();
    let read = match p.read_for_embedding(&ids) {
        Ok(r) => r,
        // One item that does not open (damaged, or its key shredded under the batch) must not
        // hold the others back: each is read alone, and only it fails.
        Err(_) if todo.len() > 1 => {
            let mut read = Vec::with_capacity(todo.len());
            for &n in &todo {
                match p.read_for_embedding(std::slice::from_ref(&jobs[n].item)) {
                    Ok(mut one) => read.append(&mut one),
                    Err(e) => {
                        answers[n] =
                            Some(Err(JobError::Transient(format!("reading the item: {e}"))));
                    }
                }
            }
            read
        }
        Err(e) => {
            for &n in &todo {
                answers[n] = Some(Err(JobError::Transient(format!("reading the item: {e}"))));
            }
            return answers;
        }
    };
    let mut made: Vec<(String, ItemVectors)> = Vec::new();
    let mut last_beat = Instant::now();
    for it in read {
        let Some(&n) = todo.iter().find(|&&n| jobs[n].item == it.meta.id) else {
            continue;
        };
        let doc = Document {
            title: &it.meta.title,
            content: &it.content,
            generation: it.meta.generation,
        };
        // The batch's jobs keep their leases while a long item is embedded.
        let mut beat = || {
            if last_beat.elapsed() > HEARTBEAT {
                last_beat = Instant::now();
                for &m in &todo {
                    // A lost heartbeat only lets another worker take the job again.
                    let _ = p.job_progress(jobs[m].id, 0.5);
                }
            }
        };
        match embed_item(model, &name, &doc, &mut beat) {
            Ok(v) => made.push((it.meta.id.clone(), v)),
            Err(e) => answers[n] = Some(Err(e)),
        }
    }
    let stored: Vec<String> = made.iter().map(|(id, _)| id.clone()).collect();
    let outcome = p.store_vectors(&made);
    for &n in &todo {
        if answers[n].is_some() {
            continue;
        }
        answers[n] = Some(if !stored.contains(&jobs[n].item) {
            Err(JobError::Permanent(
                "the item is no longer in the catalog".into(),
            ))
        } else {
            match &outcome {
                Ok(()) => Ok(Vec::new()),
                Err(e) => Err(JobError::Transient(format!("storing the vectors: {e}"))),
            }
        });
    }
    answers
}

/// An item's chunks and their vectors. Recordings and event logs have their own jobs (their
/// transcripts are embedded as items of their own) and get none.
/// An item as stored, for extracting its text as the index does.
struct Document<'a> {
    title: &'a str,
    content: &'a [u8],
    generation: u32,
}

fn embed_item(
    model: &SentenceModel,
    name: &str,
    doc: &Document<'_>,
    beat: &mut dyn FnMut(),
) -> Result<ItemVectors, JobError> {
    let Document {
        title,
        content,
        generation,
    } = *doc;
    let mut out = ItemVectors {
        model: name.to_owned(),
        dim: model.dim(),
        chunks: Vec::new(),
    };
    if bletchley_index::extract::is_audio(title, content)
        || bletchley_index::extract::is_event_log(title, content)
    {
        return Ok(out);
    }
    let text = bletchley_index::extract::extract_item(title, content, generation).text;
    let chunks = model
        .chunks(&text, OVERLAP)
        .map_err(|e| JobError::Permanent(format!("cutting the text into chunks: {e}")))?;
    if chunks.len() > ITEM_MAX_CHUNKS.min(MAX_CHUNKS) {
        return Err(JobError::Permanent(format!(
            "its text makes {} chunks, more than the {ITEM_MAX_CHUNKS} an item's embedding may have: not embedded (nothing was cut)",
            chunks.len()
        )));
    }
    for group in chunks.chunks(EMBED_GROUP) {
        beat();
        let texts: Vec<&str> = group.iter().map(|c| c.text(&text)).collect();
        let vectors = model
            .embed(&texts)
            .map_err(|e| JobError::Transient(format!("embedding: {e}")))?;
        for (c, vector) in group.iter().zip(vectors) {
            out.chunks.push(VectorChunk {
                start: c.start as u64,
                end: c.end as u64,
                vector,
            });
        }
    }
    Ok(out)
}

/// `semantic enable [--model NAME]`: embedding at ingest on, with a backfill of every item
/// stored before.
pub fn enable(p: &mut Platform, model: &str, backfill: bool) -> Result<ExitCode> {
    let (dim, queued) = turn_on(p, model, backfill)?;
    eprintln!(
        "semantic search on: items are embedded with {model} ({dim} numbers a chunk) by the job worker (`bletchley work`, or `serve`)"
    );
    if backfill {
        eprintln!("{queued} items stored before were queued for embedding");
    }
    Ok(ExitCode::SUCCESS)
}

/// Turns embedding on with `model` after loading it whole (a model that does not load would
/// fail every job), and queues the items stored before when `backfill`. Returns the model's
/// width and the jobs queued.
pub fn turn_on(p: &mut Platform, model: &str, backfill: bool) -> Result<(usize, usize)> {
    let dir = model_dir(model)?;
    let loaded = SentenceModel::load(&dir)
        .with_context(|| format!("loading the embedding model {}", dir.display()))?;
    p.set_semantic_model(Some(model))?;
    let mut queued = 0;
    if backfill {
        let ids = p.items_without_vectors()?;
        let queue: Vec<(&str, &str)> = ids.iter().map(|i| (EMBED, i.as_str())).collect();
        for batch in queue.chunks(1000) {
            queued += p.enqueue_jobs("operator", batch)?.len();
        }
    }
    Ok((loaded.dim(), queued))
}

/// `semantic disable`: nothing more is embedded; vectors already made stay, sealed, until
/// their items go.
pub fn disable(p: &mut Platform) -> Result<ExitCode> {
    p.set_semantic_model(None)?;
    eprintln!("semantic search off: items ingested from now on are not embedded");
    Ok(ExitCode::SUCCESS)
}

/// `semantic status`.
pub fn status(p: &mut Platform, json: bool) -> Result<ExitCode> {
    let model = p.semantic_model()?;
    let without = p.items_without_vectors()?.len();
    if json {
        println!(
            "{}",
            serde_json::json!({ "model": model, "items_without_vectors": without })
        );
    } else {
        match &model {
            Some(m) => println!("semantic search on, model {m}"),
            None => println!("semantic search off"),
        }
        println!("{without} items have no vectors yet");
    }
    Ok(ExitCode::SUCCESS)
}

/// The platform's embedding model, loaded, and the vector index brought up to the catalog.
pub fn open_semantic(
    p: &mut Platform,
) -> Result<(SentenceModel, bletchley_index::semantic::SemanticIndex)> {
    let Some(name) = p.semantic_model()? else {
        bail!(
            "semantic search is off on this platform: the operator turns it on with `bletchley semantic enable`"
        );
    };
    let dir = model_dir(&name)?;
    let model = SentenceModel::load(&dir)
        .with_context(|| format!("loading the embedding model {}", dir.display()))?;
    let index = bletchley_index::semantic::open_synced(p, &name, model.dim())?;
    Ok((model, index))
}

/// The query's vector.
pub fn embed_query(model: &SentenceModel, query: &str) -> Result<Vec<f32>> {
    let mut v = model.embed(&[query])?;
    v.pop()
        .context("the embedding model returned no vector for the query")
}
