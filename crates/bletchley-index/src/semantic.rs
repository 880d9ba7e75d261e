//! Semantic search over the store: the vector index kept in step with the catalog, a gated and
//! audited nearest-neighbour search whose hits are checked against each item's sealed
//! metadata, and hybrid ranking by reciprocal-rank fusion with the lexical index.
//!
//! The vector index is derived data, like the search index: it lives sealed under
//! `vectors/<model>/` with a key of its own per model, records the catalog's items generation
//! it holds, and is rebuilt from the catalog (the sealed vector rows the embedding job wrote)
//! whenever it is missing, unreadable or behind. A file the host puts back from an earlier
//! state cannot widen anyone's view: every hit's class is compared with the item's sealed
//! metadata before the hit is shown, and a disagreement rebuilds the index and searches again.

use std::collections::HashMap;

use bletchley_audit::Outcome;
use bletchley_policy::Admitted;
use bletchley_store::{Actor, Platform};

use crate::access::visible;
use crate::sealed_dir::SealedDirectory;
use crate::search::FoundElsewhere;
use crate::vectors::{AccessClass, VectorHit, VectorIndex};
use crate::{Error, Hit, Result, SearchIndex, SearchRequest};

/// The reciprocal-rank-fusion constant: a document's fused score is the sum over the rankings
/// it appears in of `1 / (RRF_K + rank)`, rank counted from 1 (Cormack, Clarke and Büttcher's
/// value, and Elasticsearch's default).
pub const RRF_K: f32 = 60.0;

/// Candidates each ranking contributes to a hybrid search, beyond the page asked for.
const HYBRID_DEPTH: usize = 100;

/// The vector index of one embedding model, with where it is saved.
pub struct SemanticIndex {
    dir: SealedDirectory,
    index: VectorIndex,
    model: String,
    generation: Option<u64>,
}

impl std::fmt::Debug for SemanticIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SemanticIndex")
            .field("model", &self.model)
            .field("chunks", &self.index.len())
            .field("generation", &self.generation)
            .finish()
    }
}

impl SemanticIndex {
    /// The vectors held.
    pub fn vectors(&self) -> &VectorIndex {
        &self.index
    }

    /// The model whose vectors these are.
    pub fn model(&self) -> &str {
        &self.model
    }
}

fn model_dir_name(model: &str) -> Result<&str> {
    if model.is_empty()
        || model.len() > 64
        || !model
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        || model.starts_with('.')
    {
        return Err(Error::Query(format!("an embedding model named {model:?}")));
    }
    Ok(model)
}

/// Opens the vector index of `model` and brings it up to the catalog (see [`sync`]).
pub fn open_synced(p: &mut Platform, model: &str, dim: usize) -> Result<SemanticIndex> {
    let name = model_dir_name(model)?;
    let path = p.root().join("vectors").join(name);
    let dir = SealedDirectory::open(&path, p.derived_key(&format!("vector-index/{name}")))
        .map_err(|e| Error::Io(path.display().to_string(), e))?;
    // An unreadable file (altered, cut, from another model) is rebuilt from the catalog.
    let (generation, index) = match VectorIndex::load(&dir) {
        Ok(Some((g, i))) if i.dim() == dim => (Some(g), i),
        _ => (None, VectorIndex::new(dim)),
    };
    let mut s = SemanticIndex {
        dir,
        index,
        model: model.to_owned(),
        generation,
    };
    sync(p, &mut s)?;
    Ok(s)
}

/// Adds the vectors stored since the index was last synced, drops those of items shredded or
/// re-marked (taken again in their new class), and saves the index with the generation it now
/// holds when that changed anything. Costs one catalog lookup when the catalog did not change.
pub fn sync(p: &mut Platform, s: &mut SemanticIndex) -> Result<()> {
    p.shred_due()?;
    let generation = p.items_generation()?;
    if s.generation == Some(generation) {
        return Ok(());
    }
    let stale = p.vectors_stale()?;
    let (added, removed) = p.vector_feed(&s.index.items(), &stale)?;
    let changed = !added.is_empty() || !removed.is_empty();
    for id in &removed {
        s.index.remove(id);
    }
    if added.len() > 64 {
        s.index.defer_graphs();
    }
    for it in added {
        // Vectors of another model are not comparable with this one's: left for its index.
        if it.vectors.model != s.model || it.vectors.dim != s.index.dim() {
            continue;
        }
        let ranges: Vec<(u64, u64)> = it.vectors.chunks.iter().map(|c| (c.start, c.end)).collect();
        let vectors: Vec<Vec<f32>> = it.vectors.chunks.into_iter().map(|c| c.vector).collect();
        s.index.add(
            AccessClass::of(it.collection, &it.marking),
            &it.id,
            &ranges,
            &vectors,
        )?;
    }
    s.index.refresh();
    // The file is rewritten only when its vectors changed: an ingest that stored no vectors
    // moves the generation too, and a process that opens the file later finds nothing to
    // add or remove for it (one listing of the ids with vectors).
    if changed || s.generation.is_none() {
        s.index.save(&s.dir, generation)?;
    }
    s.generation = Some(generation);
    p.clear_vectors_stale(&stale)?;
    Ok(())
}

/// Empties the index and takes every item's vectors again from the catalog.
fn rebuild(p: &mut Platform, s: &mut SemanticIndex) -> Result<()> {
    s.index = VectorIndex::new(s.index.dim());
    s.generation = None;
    sync(p, s)
}

/// The `k` items nearest `query` that `admitted` may see, each checked against its sealed
/// metadata: if the index disagrees with the catalog about any hit's class (an index file put
/// back from an earlier state), the index is rebuilt and the search run again.
fn checked_search(
    p: &mut Platform,
    s: &mut SemanticIndex,
    admitted: &Admitted,
    query: &[f32],
    k: usize,
) -> Result<Vec<VectorHit>> {
    for attempt in 0..2 {
        let hits = s.index.search(admitted, query, k, false)?;
        let ids: Vec<String> = hits.iter().map(|h| h.chunk.item.clone()).collect();
        let truth = p.access_classes(&ids)?;
        let agrees = hits.iter().zip(&truth).all(|(h, t)| match t {
            Some((collection, marking)) => {
                s.index.class_of(&h.chunk.item) == Some(&AccessClass::of(*collection, marking))
                    && admitted.ids().contains(collection)
                    && admitted.gate().decide(marking, *collection).is_ok()
            }
            None => false,
        });
        if agrees {
            return Ok(hits);
        }
        if attempt == 0 {
            p.record(
                Actor::System(bletchley_store::SystemActor::Indexer),
                "vectors.rebuild",
                vec![s.model.clone()],
                None,
                Outcome::Allowed,
                Some("the vector index disagreed with the catalog about a hit's collection or marking".into()),
            )?;
            rebuild(p, s)?;
        }
    }
    Err(Error::Store(bletchley_store::Error::Damaged(
        "the vector index disagrees with the catalog even after a rebuild".into(),
    )))
}

/// How a search ranks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// BM25 over the words (the lexical index).
    Lexical,
    /// Nearest chunk vectors to the query's.
    Semantic,
    /// Reciprocal-rank fusion of the two.
    Hybrid,
}

impl Mode {
    /// The mode's name, as the command line and the API take it.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "lexical" => Some(Mode::Lexical),
            "semantic" => Some(Mode::Semantic),
            "hybrid" => Some(Mode::Hybrid),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Lexical => "lexical",
            Mode::Semantic => "semantic",
            Mode::Hybrid => "hybrid",
        }
    }
}

/// A semantic or hybrid search's page.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RankedResults {
    /// Candidates ranked in all (at most the depth each ranking contributes, summed).
    pub total: usize,
    /// This page; `score` is the cosine similarity (semantic) or the fused score (hybrid), and
    /// `highlight` the passage that matched best (semantic) or the lexical fragment.
    pub hits: Vec<Hit>,
    /// Facet counts of the lexical ranking (hybrid; empty for semantic).
    pub facets: std::collections::BTreeMap<String, Vec<(String, u64)>>,
    /// The high-water mark of the markings on this page.
    pub page_marking: Option<String>,
}

impl From<RankedResults> for crate::SearchResults {
    fn from(r: RankedResults) -> crate::SearchResults {
        crate::SearchResults {
            total: r.total,
            hits: r.hits,
            facets: r.facets,
            page_marking: r.page_marking,
        }
    }
}

/// A semantic (`Mode::Semantic`) or hybrid (`Mode::Hybrid`) search by `who` for the request's
/// query, whose vector the caller made with `s`'s model: gated, the hits
/// checked against the catalog, audited as `search` with the mode and the hit ids. Returns the
/// page and the bulk collections left out.
pub fn search(
    p: &mut Platform,
    index: &SearchIndex,
    s: &mut SemanticIndex,
    who: &str,
    q: &SemanticQuery<'_>,
) -> Result<(RankedResults, Vec<String>)> {
    let (req, mode, justification) = (q.request, q.mode, q.justification);
    let found = ranked(p, index, s, who, q);
    crate::access::record_search(
        p,
        who,
        req.query.clone(),
        found.as_ref().map(|(r, _)| {
            (
                &r.hits[..],
                format!("{} search: {} candidates", mode.name(), r.total),
            )
        }),
        justification,
    )?;
    found
}

/// What a semantic or hybrid search asks.
#[derive(Clone, Copy, Debug)]
pub struct SemanticQuery<'a> {
    /// The query text (for the lexical half and the audit), page and facets.
    pub request: &'a SearchRequest,
    /// Semantic or hybrid.
    pub mode: Mode,
    /// The query text's vector, made with the index's model.
    pub vector: &'a [f32],
    /// Why (required to include bulk collections).
    pub justification: Option<&'a str>,
}

fn ranked(
    p: &mut Platform,
    index: &SearchIndex,
    s: &mut SemanticIndex,
    who: &str,
    q: &SemanticQuery<'_>,
) -> Result<(RankedResults, Vec<String>)> {
    let (req, mode, query_vector, justification) = (q.request, q.mode, q.vector, q.justification);
    if req.limit == 0 || req.limit > 1000 {
        return Err(Error::Query("limit must be between 1 and 1000".into()));
    }
    if req.offset > 10_000 {
        return Err(Error::Query("an offset of at most 10,000".into()));
    }
    let gate = p.gate(who)?;
    let admitted = visible(p, &gate, justification)?;
    let want = req.offset + req.limit;
    let depth = want.max(HYBRID_DEPTH);
    let vector_hits = checked_search(p, s, &admitted, query_vector, depth)?;
    let (ranked, facets): (Vec<FoundElsewhere>, _) = match mode {
        Mode::Semantic | Mode::Lexical => (
            vector_hits
                .iter()
                .map(|h| {
                    (
                        h.chunk.item.clone(),
                        h.score,
                        Some((h.chunk.start, h.chunk.end)),
                    )
                })
                .collect(),
            Default::default(),
        ),
        Mode::Hybrid => {
            let lexical = index.search(
                &admitted,
                &SearchRequest {
                    query: req.query.clone(),
                    limit: depth.min(1000),
                    offset: 0,
                    sort: crate::SortBy::Relevance,
                    facets: req.facets,
                },
            )?;
            let fused = fuse(
                &lexical
                    .hits
                    .iter()
                    .map(|h| h.id.clone())
                    .collect::<Vec<_>>(),
                &vector_hits
                    .iter()
                    .map(|h| h.chunk.item.clone())
                    .collect::<Vec<_>>(),
            );
            let passage: HashMap<&str, (u64, u64)> = vector_hits
                .iter()
                .map(|h| (h.chunk.item.as_str(), (h.chunk.start, h.chunk.end)))
                .collect();
            (
                fused
                    .into_iter()
                    .map(|(id, score)| {
                        let at = passage.get(id.as_str()).copied();
                        (id, score, at)
                    })
                    .collect(),
                lexical.facets,
            )
        }
    };
    page_of(index, &admitted, ranked, req, facets)
}

/// The page `req` asks for of a ranking, its hits shown through the lexical index (which
/// applies the gate again), with the bulk collections left out.
fn page_of(
    index: &SearchIndex,
    admitted: &Admitted,
    ranked: Vec<FoundElsewhere>,
    req: &SearchRequest,
    facets: std::collections::BTreeMap<String, Vec<(String, u64)>>,
) -> Result<(RankedResults, Vec<String>)> {
    let total = ranked.len();
    let page: Vec<FoundElsewhere> = ranked
        .into_iter()
        .skip(req.offset)
        .take(req.limit)
        .collect();
    let hits = index.hits_by_id(admitted, &page)?;
    let page_marking = index.page_marking(&hits);
    Ok((
        RankedResults {
            total,
            hits,
            facets,
            page_marking,
        },
        admitted.skipped_bulk().to_vec(),
    ))
}

/// "More like this": the items nearest `item` (the normalised mean of its chunk vectors),
/// itself left out, for `who`, who must be able to read it (the read is checked and audited
/// first, with the same answer for an item that does not exist). Audited as `search` with the
/// item named. Returns the page and the bulk collections left out.
pub fn more_like(
    p: &mut Platform,
    index: &SearchIndex,
    s: &mut SemanticIndex,
    who: &str,
    item: &str,
    req: &SearchRequest,
    justification: Option<&str>,
) -> Result<(RankedResults, Vec<String>)> {
    p.get(who, item, justification)?;
    let found = like(p, index, s, who, item, req, justification);
    crate::access::record_search(
        p,
        who,
        format!("like:{item}"),
        found.as_ref().map(|(r, _)| {
            (
                &r.hits[..],
                format!("more like this: {} candidates", r.total),
            )
        }),
        justification,
    )?;
    found
}

fn like(
    p: &mut Platform,
    index: &SearchIndex,
    s: &mut SemanticIndex,
    who: &str,
    item: &str,
    req: &SearchRequest,
    justification: Option<&str>,
) -> Result<(RankedResults, Vec<String>)> {
    if req.limit == 0 || req.limit > 1000 || req.offset > 10_000 {
        return Err(Error::Query(
            "limit must be between 1 and 1000, offset at most 10,000".into(),
        ));
    }
    let rows = s.index.vectors_of(item);
    if rows.is_empty() {
        return Err(Error::Query(format!(
            "item {item} has no vectors: its embedding job has not run yet, or it has no text"
        )));
    }
    let mut q = vec![0f32; s.index.dim()];
    for r in &rows {
        for (a, b) in q.iter_mut().zip(r.iter()) {
            *a += b;
        }
    }
    let norm = q.iter().map(|x| x * x).sum::<f32>().sqrt();
    if !(norm.is_finite() && norm > 0.0) {
        return Err(Error::Query(format!(
            "item {item}'s chunks point in opposite directions: no direction to search"
        )));
    }
    q.iter_mut().for_each(|x| *x /= norm);
    let gate = p.gate(who)?;
    let admitted = visible(p, &gate, justification)?;
    let want = req.offset + req.limit + 1;
    let hits = checked_search(p, s, &admitted, &q, want.max(HYBRID_DEPTH))?;
    let ranked: Vec<FoundElsewhere> = hits
        .into_iter()
        .filter(|h| h.chunk.item != item)
        .map(|h| (h.chunk.item, h.score, Some((h.chunk.start, h.chunk.end))))
        .collect();
    page_of(index, &admitted, ranked, req, Default::default())
}

/// Reciprocal-rank fusion of rankings (best first): each id's score is the sum of
/// `1 / (RRF_K + rank)` over the rankings it appears in; best first, ties by id.
pub fn fuse(lexical: &[String], semantic: &[String]) -> Vec<(String, f32)> {
    let mut score: HashMap<&str, f32> = HashMap::new();
    for ranking in [lexical, semantic] {
        for (i, id) in ranking.iter().enumerate() {
            *score.entry(id.as_str()).or_default() += 1.0 / (RRF_K + (i + 1) as f32);
        }
    }
    let mut out: Vec<(String, f32)> = score
        .into_iter()
        .map(|(id, s)| (id.to_owned(), s))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn fusion_rewards_agreement_and_breaks_ties_by_id() {
        let f = fuse(&ids(&["a", "b", "c"]), &ids(&["c", "b", "d"]));
        let order: Vec<&str> = f.iter().map(|(id, _)| id.as_str()).collect();
        // b: 1/62 + 1/62; c: 1/63 + 1/61 (slightly more); a: 1/61; d: 1/63.
        assert_eq!(order, ["c", "b", "a", "d"]);
        let expect_c = 1.0 / 63.0 + 1.0 / 61.0;
        assert!((f[0].1 - expect_c).abs() < 1e-7);
        let tie = fuse(&ids(&["y"]), &ids(&["x"]));
        assert_eq!(tie[0].0, "x");
    }
}
