//! Ingest that stores what containers hold as items of their own.
//!
//! An e-mail's attachments and an archive's entries are derived items of
//! their container (rule 4): same collection, same marking, linked to it,
//! shredded with it, and each searchable, with entities, on its own. Every
//! path that ingests (command line, API, console, demo) comes through here.

use bletchley_store::jobs::TRANSCRIBE;
use bletchley_store::{Actor, IngestOptions, NewItem, Platform};

use crate::extract::{MAX_GENERATIONS, parts};

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
    let mut queue: Vec<(String, Vec<crate::extract::Part>, u32)> = ids
        .iter()
        .cloned()
        .zip(found)
        .filter(|(_, parts)| !parts.is_empty())
        .map(|(id, parts)| (id, parts, 1))
        .collect();
    while let Some((source, found, generation)) = queue.pop() {
        let inner: Vec<_> = found
            .iter()
            .map(|part| {
                if generation < MAX_GENERATIONS {
                    parts(&part.title, &part.content)
                } else {
                    Vec::new()
                }
            })
            .collect();
        // One derive per kind of derivation, keeping the parts' order.
        let mut by_kind: Vec<(&'static str, Vec<NewItem>, Vec<usize>)> = Vec::new();
        for (i, part) in found.into_iter().enumerate() {
            let item = NewItem {
                title: part.title,
                content: part.content,
            };
            match by_kind.iter_mut().find(|(k, _, _)| *k == part.derivation) {
                Some((_, v, idx)) => {
                    v.push(item);
                    idx.push(i);
                }
                None => by_kind.push((part.derivation, vec![item], vec![i])),
            }
        }
        let mut inner: Vec<Option<Vec<crate::extract::Part>>> =
            inner.into_iter().map(Some).collect();
        for (kind, batch, idx) in by_kind {
            let child_ids = p.derive(&actor, &source, kind, batch).map_err(|e| {
                bletchley_store::Error::Invalid(format!(
                    "item {source} was stored, but its {kind}s could not be: {e}"
                ))
            })?;
            stored += child_ids.len();
            for (child, i) in child_ids.into_iter().zip(idx) {
                if let Some(grand) = inner.get_mut(i).and_then(Option::take)
                    && !grand.is_empty()
                {
                    queue.push((child, grand, generation + 1));
                }
            }
        }
    }
    Ok(Ingested {
        ids,
        parts: stored,
        jobs,
    })
}
