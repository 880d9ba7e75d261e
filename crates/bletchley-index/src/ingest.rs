//! Ingest that stores what containers hold as items of their own.
//!
//! An e-mail's attachments and an archive's entries are derived items of
//! their container (rule 4): same collection, same marking, linked to it,
//! shredded with it, and each searchable, with entities, on its own. Every
//! path that ingests (command line, API, console, demo) comes through here.

use bletchley_store::jobs::TRANSCRIBE;
use bletchley_store::{Actor, IngestOptions, NewItem, Platform};

use crate::extract::{MAX_GENERATIONS, Part, parts};

/// What an ingest stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ingested {
    /// Ids of the items given, in order.
    pub ids: Vec<String>,
    /// Derived parts stored, all generations together.
    pub parts: usize,
    /// Transcription jobs queued for the recordings among the items.
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
    let found: Vec<_> = items
        .iter()
        .map(|it| parts(&it.title, &it.content))
        .collect();
    let audio: Vec<bool> = items
        .iter()
        .map(|it| crate::extract::is_audio(&it.title, &it.content))
        .collect();
    let ids = p.ingest(principal, opts, items)?;
    // Recordings get their text from the speech pipeline: queue it durably now, so a crash
    // after this point loses no transcription.
    let mut jobs = Vec::new();
    for (id, _) in ids.iter().zip(&audio).filter(|(_, a)| **a) {
        jobs.push(p.enqueue_job(principal, TRANSCRIBE, id)?);
    }
    let actor = Actor::Principal(principal.to_owned());
    let mut stored = 0;
    // Generation by generation, every container's parts of one kind in one
    // derive: one commit and one durable audit append for the whole batch,
    // not one per e-mail (4,600 e-mails took 19.7 s that way, nearly all of
    // it waiting on the disk).
    let mut level: Vec<(String, Vec<Part>)> = ids
        .iter()
        .cloned()
        .zip(found)
        .filter(|(_, parts)| !parts.is_empty())
        .collect();
    let mut generation = 1;
    while !level.is_empty() {
        // Per kind of derivation, in the order first met: each source's
        // parts, and each part's own parts for the next generation.
        let mut kinds: Vec<Derivation> = Vec::new();
        for (source, found) in level {
            let mut mine: Vec<Derivation> = Vec::new();
            for part in found {
                let inner = if generation < MAX_GENERATIONS {
                    parts(&part.title, &part.content)
                } else {
                    Vec::new()
                };
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
                        });
                        mine.len() - 1
                    }
                };
                let d = &mut mine[at];
                d.sources[0].1.push(item);
                d.inner[0].push(inner);
            }
            for d in mine {
                match kinds.iter_mut().find(|k| k.kind == d.kind) {
                    Some(k) => {
                        k.sources.extend(d.sources);
                        k.inner.extend(d.inner);
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
        } in kinds
        {
            let names: Vec<String> = sources.iter().map(|(s, _)| s.clone()).collect();
            let child_ids = p.derive_many(&actor, kind, sources).map_err(|e| {
                bletchley_store::Error::Invalid(format!(
                    "{} were stored, but their {kind}s could not be: {e}",
                    describe(&names)
                ))
            })?;
            for (children, grand) in child_ids.into_iter().zip(inner) {
                stored += children.len();
                next.extend(
                    children
                        .into_iter()
                        .zip(grand)
                        .filter(|(_, g)| !g.is_empty()),
                );
            }
        }
        level = next;
        generation += 1;
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
    inner: Vec<Vec<Vec<Part>>>,
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
