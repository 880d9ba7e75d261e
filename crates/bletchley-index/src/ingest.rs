//! Ingest that stores what containers hold as items of their own.
//!
//! An e-mail's attachments and an archive's entries are derived items of
//! their container (rule 4): same collection, same marking, linked to it,
//! shredded with it, and each searchable, with entities, on its own. Every
//! path that ingests (command line, API, console, demo) comes through here.

use bletchley_store::jobs::{DETECT, EMBED, TRANSCRIBE, TRANSLATE_TEXT};
use bletchley_store::{Actor, IngestOptions, NewItem, Platform};

use crate::extract::{MAX_GENERATIONS, Part, parts};

/// What an ingest stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Ids of the items given, in order.
    pub ids: Vec<String>,
    /// Derived parts stored, all generations together.
    pub parts: usize,
    /// Jobs queued: transcription for the recordings among the items, detection for the
    /// event logs, and (when the operator turned them on) embedding and translation for
    /// everything else with text, derived parts included.
    pub jobs: Vec<i64>,
}

/// Ingests `items` as [`Platform::ingest`] does, then stores the parts of
/// every container among them as derived items, to
/// [`MAX_GENERATIONS`] generations. The items given are acknowledged first;
/// should storing a part fail, the error says which item's parts are
/// missing (the item itself stays stored and audited).
pub fn ingest(
    p: &mut Platform,
    principal: &str,
    opts: &IngestOptions,
    items: Vec<NewItem>,
) -> bletchley_store::Result<Ingested> {
    // Every generation of every container is expanded before anything is
    // stored, within one budget per file given: a file that expands beyond
    // it is refused whole, and nothing of the batch is written.
    let found = items
        .iter()
        .map(|it| {
            let mut budget = Budget::default();
            expand(&it.title, &it.content, 1, &mut budget).map_err(|e| {
                bletchley_store::Error::Invalid(format!("{}: {e}; nothing was stored", it.title))
            })
        })
        .collect::<bletchley_store::Result<Vec<_>>>()?;
    let audio: Vec<bool> = items
        .iter()
        .map(|it| crate::extract::is_audio(&it.title, &it.content))
        .collect();
    let logs: Vec<bool> = items
        .iter()
        .map(|it| crate::extract::is_event_log(&it.title, &it.content))
        .collect();
    let ids = p.ingest(principal, opts, items)?;
    // Recordings get their text from the speech pipeline: queue it durably now, so a crash
    // after this point loses no transcription.
    let mut queue: Vec<(&str, &str)> = Vec::new();
    for (id, _) in ids.iter().zip(&audio).filter(|(_, a)| **a) {
        queue.push((TRANSCRIBE, id));
    }
    // Event logs get their alerts from detection, durably queued in the same way.
    for (id, _) in ids.iter().zip(&logs).filter(|(_, l)| **l) {
        queue.push((DETECT, id));
    }
    // Everything else with text is embedded for semantic search, and translated into English
    // when its language has an engine, as the operator turned each on.
    let semantic = p.semantic_model()?.is_some();
    let translate = p.text_translation()?.is_some();
    let text_jobs: Vec<&str> = [(semantic, EMBED), (translate, TRANSLATE_TEXT)]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, kind)| *kind)
        .collect();
    for ((id, a), l) in ids.iter().zip(&audio).zip(&logs) {
        if !a && !l {
            queue.extend(text_jobs.iter().map(|kind| (*kind, id.as_str())));
        }
    }
    let mut jobs = p.enqueue_jobs(principal, &queue)?;
    let mut text_parts: Vec<String> = Vec::new();
    let actor = Actor::Principal(principal.to_owned());
    let mut stored = 0;
    // Generation by generation, every container's parts of one kind in one
    // derive: one commit and one durable audit append for the whole batch,
    // not one per e-mail (4,600 e-mails took 19.7 s that way, nearly all of
    // it waiting on the disk).
    let mut level: Vec<(String, Vec<Node>)> = ids
        .iter()
        .cloned()
        .zip(found)
        .filter(|(_, parts)| !parts.is_empty())
        .collect();
    while !level.is_empty() {
        // Per kind of derivation, in the order first met: each source's
        // parts, and each part's own parts for the next generation.
        let mut kinds: Vec<Derivation> = Vec::new();
        for (source, found) in level {
            let mut mine: Vec<Derivation> = Vec::new();
            for Node {
                part,
                children: inner,
            } in found
            {
                let has_text = !text_jobs.is_empty()
                    && !crate::extract::is_audio(&part.title, &part.content)
                    && !crate::extract::is_event_log(&part.title, &part.content);
                let item = NewItem {
                    title: part.title,
                    content: part.content,
                };
                let at = match mine.iter().position(|d| d.kind == part.derivation) {
                    Some(at) => at,
                    None => {
                        mine.push(Derivation {
                            kind: part.derivation,
                            sources: vec![(source.clone(), Vec::new())],
                            inner: vec![Vec::new()],
                            text: vec![Vec::new()],
                        });
                        mine.len() - 1
                    }
                };
                let d = &mut mine[at];
                d.sources[0].1.push(item);
                d.inner[0].push(inner);
                d.text[0].push(has_text);
            }
            for d in mine {
                match kinds.iter_mut().find(|k| k.kind == d.kind) {
                    Some(k) => {
                        k.sources.extend(d.sources);
                        k.inner.extend(d.inner);
                        k.text.extend(d.text);
                    }
                    None => kinds.push(d),
                }
            }
        }
        let mut next = Vec::new();
        for Derivation {
            kind,
            sources,
            inner,
            text,
        } in kinds
        {
            let names: Vec<String> = sources.iter().map(|(s, _)| s.clone()).collect();
            let child_ids = p.derive_many(&actor, kind, sources).map_err(|e| {
                bletchley_store::Error::Invalid(format!(
                    "{} were stored, but their {kind}s could not be: {e}",
                    describe(&names)
                ))
            })?;
            for ((children, grand), text) in child_ids.into_iter().zip(inner).zip(text) {
                stored += children.len();
                text_parts.extend(
                    children
                        .iter()
                        .zip(text)
                        .filter(|(_, e)| *e)
                        .map(|(c, _)| c.clone()),
                );
                next.extend(
                    children
                        .into_iter()
                        .zip(grand)
                        .filter(|(_, g)| !g.is_empty()),
                );
            }
        }
        level = next;
    }
    if !text_parts.is_empty() {
        let queue: Vec<(&str, &str)> = text_parts
            .iter()
            .flat_map(|c| text_jobs.iter().map(move |kind| (*kind, c.as_str())))
            .collect();
        jobs.extend(p.enqueue_jobs(principal, &queue)?);
    }
    Ok(Ingested {
        ids,
        parts: stored,
        jobs,
    })
}

/// One kind of derivation at one generation: the sources with their parts,
/// and each part's own parts.
struct Derivation {
    kind: &'static str,
    sources: Vec<(String, Vec<NewItem>)>,
    inner: Vec<Vec<Vec<Node>>>,
    /// Per source, per part: whether it has text jobs (embedding, translation).
    text: Vec<Vec<bool>>,
}

/// A part of a container, with its own parts.
pub(crate) struct Node {
    part: Part,
    children: Vec<Node>,
}

/// Bytes all the parts of one ingested file may expand to, every
/// generation together (each archive is also bounded on its own).
pub const MAX_EXPANDED: u64 = 256 * 1024 * 1024;
/// Parts one ingested file may hold, every generation together.
pub const MAX_PARTS: usize = 10_000;

/// What one file's expansion has used.
#[derive(Default)]
pub(crate) struct Budget {
    pub(crate) bytes: u64,
    pub(crate) parts: usize,
}

/// The parts of `content` and theirs, to [`MAX_GENERATIONS`], within
/// `budget`, which is shared across the whole nesting.
pub(crate) fn expand(
    title: &str,
    content: &[u8],
    generation: u32,
    budget: &mut Budget,
) -> Result<Vec<Node>, String> {
    let found = parts(title, content);
    budget.parts += found.len();
    budget.bytes += found.iter().map(|p| p.content.len() as u64).sum::<u64>();
    if budget.parts > MAX_PARTS || budget.bytes > MAX_EXPANDED {
        return Err(format!(
            "its archives and attachments expand beyond what one file may ({} parts or {} MiB in all, at every depth together; possible archive bomb)",
            MAX_PARTS,
            MAX_EXPANDED >> 20
        ));
    }
    let mut out = Vec::with_capacity(found.len());
    for part in found {
        let children = if generation < MAX_GENERATIONS {
            expand(&part.title, &part.content, generation + 1, budget)?
        } else {
            Vec::new()
        };
        out.push(Node { part, children });
    }
    Ok(out)
}

/// `item X` or `items X, Y and 3 more`, for an error naming sources.
fn describe(ids: &[String]) -> String {
    match ids {
        [one] => format!("item {one}"),
        [a, b] => format!("items {a} and {b}"),
        [a, b, rest @ ..] => format!("items {a}, {b} and {} more", rest.len()),
        [] => "no items".to_owned(),
    }
}
