//! The search index and the gate inside the query (rule 1).
//!
//! Every query's matches pass an access filter before anything counts them
//! (a collector over the visible set for searches, a query clause for
//! suggestions and listings), where the filter admits only documents the
//! principal may see: visible collections, level at most
//! the clearance, the principal's nationality among the releasable nations,
//! and no codeword the principal lacks. Scoring statistics (document counts,
//! document frequencies, field lengths) and highlight weights are computed
//! over the same filtered set, so hits, counts, facets, highlights and
//! ranking are identical whether or not invisible items exist.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bletchley_crypto::SecretKey;
use bletchley_policy::{Admitted, Classification, CollectionId, Nation};
use bletchley_store::IndexFeedItem;
use tantivy::collector::{Count, FacetCollector, TopDocs};
use tantivy::query::{
    Bm25StatisticsProvider, BooleanQuery, FuzzyTermQuery, Occur, Query, QueryParser, RangeQuery,
    TermQuery, TermSetQuery,
};
use tantivy::schema::{Facet, Field, IndexRecordOption, Value};
use tantivy::snippet::SnippetGenerator;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::class_stats::ClassStats;
use crate::error::{Error, Result};
use crate::schema::{self, Fields};
use crate::sealed_dir::SealedDirectory;
use crate::top_ties::{RankBy, TopWithTies};
use crate::visible_set::{VisibleCache, VisibleCollector, VisibleSet};

/// How to order hits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortBy {
    /// BM25 over the visible set.
    #[default]
    Relevance,
    /// Newest first.
    Time,
}

/// A search as asked.
#[derive(Clone, Debug)]
pub struct SearchRequest {
    /// Query text: terms, "phrases", AND/OR/NOT, `type:`, `lang:`,
    /// `collection:agency/name`, `from:`/`to:` dates (YYYY-MM-DD), `term~`
    /// for fuzzy.
    pub query: String,
    /// Hits per page.
    pub limit: usize,
    /// Hits to skip.
    pub offset: usize,
    /// Ordering.
    pub sort: SortBy,
    /// Whether to count facets.
    pub facets: bool,
}

/// One hit.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Hit {
    /// Item id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Banner.
    pub marking: String,
    /// `agency/name`.
    pub collection: String,
    /// Relevance score over the visible set.
    pub score: f32,
    /// Ingest time, Unix milliseconds.
    pub created_ms: i64,
    /// Best fragment with matches in `<b>`…`</b>`, HTML-escaped.
    pub highlight: String,
    /// Why the item's text is incomplete or missing (unparsable format).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    /// The item it was derived from (an attachment's e-mail), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
}

/// An item another ranking found: its id, its score there, and the byte range of its text
/// that matched, if one did.
pub type FoundElsewhere = (String, f32, Option<(u64, u64)>);

/// What a search returns.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct SearchResults {
    /// Visible matches in total.
    pub total: usize,
    /// This page.
    pub hits: Vec<Hit>,
    /// Facet name → (value, count), over visible matches only.
    pub facets: BTreeMap<String, Vec<(String, u64)>>,
    /// The high-water mark of the markings on this page.
    pub page_marking: Option<String>,
}

/// An item derived from another, as the item view lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct DerivedItem {
    /// Item id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Banner.
    pub marking: String,
    /// `attachment`, `member`, …
    pub derivation: String,
    /// Ingest time, Unix milliseconds.
    pub created_ms: i64,
}

/// The language of `text` as the index records it: an ISO 639-3 code, or
/// `und` when detection is not reliable.
pub fn language_of(text: &str) -> String {
    whatlang_fast::detect(language_sample(text))
        .filter(|i| i.is_reliable())
        .map(|i| i.lang().code().to_owned())
        .unwrap_or_else(|| "und".to_owned())
}

/// Text enough to tell a language: detection cost grows with the text,
/// its answer does not after a few kilobytes.
fn language_sample(text: &str) -> &str {
    const SAMPLE: usize = 4096;
    if text.len() <= SAMPLE {
        return text;
    }
    let mut cut = SAMPLE;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    &text[..cut]
}

/// Shortest prefix completed: shorter ones would count most of the dictionary.
pub const MIN_SUGGEST_PREFIX: usize = 2;

/// A completion and how many visible items hold it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Suggestion {
    /// The word or selector term.
    pub text: String,
    /// Visible items that contain it.
    pub items: u64,
}

/// The sealed full-text index.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    f: Fields,
    home: Nation,
    /// The gate's filter evaluated per access profile, valid for one
    /// searcher generation.
    visible: VisibleCache,
    /// Frequent terms' documents per access class, per segment, once
    /// [`SearchIndex::warm`] asked for them.
    classes: ClassStats,
    /// Ids of indexed items, read from the index once and then kept in step
    /// by `apply`, so reconciling before each query does not reread every
    /// stored document.
    known: std::sync::Mutex<Option<HashSet<String>>>,
    /// The catalog's items generation this index was last reconciled at
    /// ([`crate::access::sync`]), kept in the commit that brought it there
    /// (see [`SYNCED_AT`]) so that a new process need not reconcile again;
    /// `None` when the last commit did not say.
    synced_generation: Option<u64>,
    /// The commit this handle's reader and caches were last brought up to
    /// (its opstamp and payload: a commit of no operations keeps the
    /// opstamp): another process's commit moves the index past it.
    seen_commit: CommitMark,
}

/// Prefix of the commit payload that records the catalog's items generation
/// the index holds exactly.
const SYNCED_AT: &str = "items-generation ";

/// How long a commit waits for another process's to end: a bulk ingest
/// indexing beside its store holds the writer for a few seconds at a time.
const WRITER_WAIT: Duration = Duration::from_secs(60);

/// The index's writer, one indexing thread, waiting while another process
/// holds it; `Error::Busy` if it is held for longer than [`WRITER_WAIT`].
pub(crate) fn writer(index: &Index, threads: usize) -> Result<IndexWriter> {
    let start = Instant::now();
    loop {
        match index.writer_with_num_threads::<TantivyDocument>(threads, WRITER_MEMORY) {
            Err(tantivy::TantivyError::LockFailure(
                tantivy::directory::error::LockError::LockBusy,
                _,
            )) if start.elapsed() < WRITER_WAIT => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(tantivy::TantivyError::LockFailure(
                tantivy::directory::error::LockError::LockBusy,
                _,
            )) => {
                return Err(Error::Busy(WRITER_WAIT.as_secs()));
            }
            other => return Ok(other?),
        }
    }
}

/// The writer's memory budget: a segment is written out when its postings
/// reach it.
const WRITER_MEMORY: usize = 100_000_000;

/// The generation a commit's payload records, if it records one.
fn synced_at(payload: Option<&str>) -> Option<u64> {
    payload?.strip_prefix(SYNCED_AT)?.parse().ok()
}

/// Everything the gate filter needs, taken from the gate.
struct Access {
    collections: Vec<CollectionId>,
    level: u64,
    nationality: Nation,
    held: BTreeSet<String>,
}

fn level(c: Classification) -> u64 {
    match c {
        Classification::Official => 0,
        Classification::Secret => 1,
        Classification::TopSecret => 2,
    }
}

const FACETS: [&str; 5] = ["type", "lang", "collection", "classification", "month"];

fn month(ms: i64) -> String {
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let days = ms.div_euclid(86_400_000);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!("{:04}-{:02}", if m <= 2 { y + 1 } else { y }, m)
}

fn parse_day(s: &str) -> Option<i64> {
    let mut it = s.split('-');
    let (y, m, d): (i64, i64, i64) = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    // Four-digit years only: a longer one overflowed the day arithmetic (found by fuzzing).
    if it.next().is_some()
        || !(0..=9999).contains(&y)
        || !(1..=12).contains(&m)
        || !(1..=31).contains(&d)
    {
        return None;
    }
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some((era * 146_097 + doe - 719_468) * 86_400_000)
}

impl SearchIndex {
    /// Opens or creates the sealed index in `dir`.
    pub fn open(dir: &Path, key: SecretKey, home: Nation) -> Result<SearchIndex> {
        let (schema, f) = schema::build();
        let sealed = SealedDirectory::open(dir, key.clone())
            .map_err(|e| Error::Io(dir.display().to_string(), e))?;
        // The index is derived data: if it was built with another schema (an
        // older release), rebuild it from the catalog.
        let index = match Index::open_or_create(sealed, schema.clone()) {
            Ok(i) => i,
            Err(tantivy::TantivyError::SchemaError(_)) => {
                std::fs::remove_dir_all(dir)
                    .map_err(|e| Error::Io(dir.display().to_string(), e))?;
                let fresh = SealedDirectory::open(dir, key)
                    .map_err(|e| Error::Io(dir.display().to_string(), e))?;
                Index::open_or_create(fresh, schema)?
            }
            Err(e) => return Err(e.into()),
        };
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        let metas = index.load_metas()?;
        Ok(SearchIndex {
            index,
            reader,
            f,
            home,
            visible: VisibleCache::default(),
            classes: ClassStats::default(),
            known: Default::default(),
            synced_generation: synced_at(metas.payload.as_deref()),
            seen_commit: (metas.opstamp, metas.payload),
        })
    }

    /// Every visible item with the selectors it mentions: the material of
    /// the link graph, filtered by the gate like any search.
    pub fn visible_links(&self, admitted: &Admitted) -> Result<Vec<crate::graph::ItemLinks>> {
        let searcher = self.reader.searcher();
        let filter = self.visible_set(&searcher, &Self::access(admitted))?;
        let docs = searcher.search(&filter.query(), &tantivy::collector::DocSetCollector)?;
        let mut out = Vec::with_capacity(docs.len());
        for addr in docs {
            let d: TantivyDocument = searcher.doc(addr)?;
            let id = d
                .get_first(self.f.id)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let entities = d
                .get_all(self.f.entity)
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let text = |field: Field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let events = d
                .get_all(self.f.event)
                .filter_map(|v| v.as_str().and_then(crate::comms::CommEvent::decode))
                .collect();
            let happened_ms = d
                .get_all(self.f.event)
                .find_map(|v| v.as_str().and_then(crate::alert_links::decode_happened));
            out.push(crate::graph::ItemLinks {
                id,
                entities,
                events,
                parent: d
                    .get_first(self.f.parent)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                title: text(self.f.title),
                marking: text(self.f.marking),
                created_ms: d
                    .get_first(self.f.created)
                    .and_then(|v| v.as_i64())
                    .unwrap_or_default(),
                happened_ms,
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// Visible items derived from `id` (attachments, archive members,
    /// transcripts), oldest first. Through the gate like any search: a part
    /// the principal may not see is not listed, nor counted.
    pub fn derived(&self, admitted: &Admitted, id: &str) -> Result<Vec<DerivedItem>> {
        let searcher = self.reader.searcher();
        let set = self.visible_set(&searcher, &Self::access(admitted))?;
        let q = BooleanQuery::new(vec![
            (
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f.parent, id),
                    IndexRecordOption::Basic,
                )) as Box<dyn Query>,
            ),
            (Occur::Must, Box::new(set.query())),
        ]);
        let docs = searcher.search(&q, &tantivy::collector::DocSetCollector)?;
        let mut out = Vec::with_capacity(docs.len());
        for addr in docs {
            let d: TantivyDocument = searcher.doc(addr)?;
            let text = |field: Field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            out.push(DerivedItem {
                id: text(self.f.id),
                title: text(self.f.title),
                marking: text(self.f.marking),
                derivation: text(self.f.derivation),
                created_ms: d
                    .get_first(self.f.created)
                    .and_then(|v| v.as_i64())
                    .unwrap_or_default(),
            });
        }
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    /// A searcher on the current generation, the set of documents `admitted` may see in it, and
    /// the field handles: for readers in this crate that walk postings themselves
    /// (cross-referencing) and must apply the same gate as a search.
    pub(crate) fn gated_searcher(
        &self,
        admitted: &Admitted,
    ) -> Result<(tantivy::Searcher, Arc<VisibleSet>, Fields)> {
        let searcher = self.reader.searcher();
        let set = self.visible_set(&searcher, &Self::access(admitted))?;
        Ok((searcher, set, self.f))
    }

    /// The high-water mark of the markings of `hits`, as banners show it.
    pub fn page_marking(&self, hits: &[Hit]) -> Option<String> {
        let markings: Vec<bletchley_policy::Marking> =
            hits.iter().filter_map(|h| h.marking.parse().ok()).collect();
        bletchley_policy::Marking::high_water_mark(&markings, self.home).map(|m| m.render())
    }

    /// The hits for items found another way (the vector index), in the order given, each
    /// with its score and, as its highlight, the passage `[start, end)` of its text that
    /// matched (HTML-escaped, at most 300 characters). The lexical gate applies as to any
    /// search: an item outside the admitted principal's visible set, or not indexed, is left
    /// out.
    pub fn hits_by_id(&self, admitted: &Admitted, wanted: &[FoundElsewhere]) -> Result<Vec<Hit>> {
        let searcher = self.reader.searcher();
        let set = self.visible_set(&searcher, &Self::access(admitted))?;
        let mut out = Vec::with_capacity(wanted.len());
        for (id, score, passage) in wanted {
            let q = BooleanQuery::new(vec![
                (
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(self.f.id, id),
                        IndexRecordOption::Basic,
                    )) as Box<dyn Query>,
                ),
                (Occur::Must, Box::new(set.query())),
            ]);
            let docs = searcher.search(&q, &tantivy::collector::DocSetCollector)?;
            let Some(addr) = docs.into_iter().next() else {
                continue;
            };
            let d: TantivyDocument = searcher.doc(addr)?;
            let text = |field: Field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            let body = text(self.f.body);
            let highlight = match passage {
                Some((start, end)) => passage_html(&body, *start, *end),
                None => String::new(),
            };
            out.push(Hit {
                id: id.clone(),
                title: text(self.f.title),
                marking: text(self.f.marking),
                collection: text(self.f.collection_name),
                score: *score,
                created_ms: d
                    .get_first(self.f.created)
                    .and_then(|v| v.as_i64())
                    .unwrap_or_default(),
                highlight,
                flag: d
                    .get_first(self.f.flag)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                derived_from: d
                    .get_first(self.f.parent)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
            });
        }
        Ok(out)
    }

    /// Benchmark reference only: runs `query` with no gate and no visible-set
    /// statistics (count, top hits, stored fields, highlights) and returns
    /// nothing, so a benchmark can time the gate's cost.
    #[doc(hidden)]
    pub fn ungated_reference_search(&self, query: &str, limit: usize) -> Result<()> {
        let searcher = self.reader.searcher();
        let mut parser = QueryParser::for_index(&self.index, vec![self.f.title, self.f.body]);
        parser.set_conjunction_by_default();
        let q = parser
            .parse_query(query)
            .map_err(|e| Error::Query(format!("{e}")))?;
        // The same work as a gated search, less the gate: count, top hits,
        // their stored fields and highlights.
        let (_, top) = searcher.search(
            &q,
            &(Count, TopDocs::with_limit(limit.max(1)).order_by_score()),
        )?;
        let snippets = SnippetGenerator::create(&searcher, &*q, self.f.body)?;
        for (_, addr) in top {
            let d: TantivyDocument = searcher.doc(addr)?;
            let _ = snippets.snippet_from_doc(&d).to_html();
        }
        Ok(())
    }

    /// Prepares the index for many queries: counts, once per segment, the
    /// documents of each frequent term per access class, so that a
    /// principal's term statistics are sums instead of walks over postings
    /// (see `class_stats`). Kept up to date by every later [`Self::apply`].
    /// Costs one pass over the frequent terms' postings; a long-lived
    /// searcher (the server) calls it, a one-off command need not.
    pub fn warm(&self) -> Result<()> {
        self.classes.enable();
        self.refresh_classes()
    }

    fn refresh_classes(&self) -> Result<()> {
        let f = &self.f;
        self.classes.refresh(
            &self.reader.searcher(),
            &[f.collection, f.level, f.comp, f.rel],
            &[f.title, f.body],
        )?;
        Ok(())
    }

    /// The catalog's items generation at the last reconciliation.
    pub fn synced_generation(&self) -> Option<u64> {
        self.synced_generation
    }

    /// Brings this handle up to commits made since by another process (a
    /// command-line search beside the server, say): its reader, the ids it
    /// knows and the generation they were synced at. Without this, a
    /// reconciliation here would add again what the other process added.
    pub fn catch_up(&mut self) -> Result<()> {
        let metas = self.index.load_metas()?;
        let commit = (metas.opstamp, metas.payload);
        if commit == self.seen_commit {
            return Ok(());
        }
        self.reader.reload()?;
        if let Ok(mut k) = self.known.lock() {
            *k = None;
        }
        if self.classes.enabled() {
            self.refresh_classes()?;
        }
        self.synced_generation = synced_at(commit.1.as_deref());
        self.seen_commit = commit;
        Ok(())
    }

    /// What an [`crate::feeder::IndexFeeder`] writes with: the index, its
    /// fields and home nation, and the commit this handle stands at.
    pub(crate) fn feeder_parts(&self) -> (Index, Fields, Nation, CommitMark) {
        (
            self.index.clone(),
            self.f,
            self.home,
            self.seen_commit.clone(),
        )
    }

    /// Takes up the commits a feeder made from `start` to `last`, adding
    /// `added` to the ids known; as [`Self::catch_up`] if this handle no
    /// longer stands at `start`.
    pub(crate) fn adopt_feed(
        &mut self,
        start: &CommitMark,
        last: CommitMark,
        added: Vec<String>,
    ) -> Result<()> {
        if self.seen_commit != *start {
            return self.catch_up();
        }
        self.reader.reload()?;
        if let Ok(mut k) = self.known.lock()
            && let Some(k) = k.as_mut()
        {
            k.extend(added);
        }
        if self.classes.enabled() {
            self.refresh_classes()?;
        }
        self.synced_generation = synced_at(last.1.as_deref());
        self.seen_commit = last;
        Ok(())
    }

    /// Ids of every indexed item.
    pub fn known_ids(&self) -> Result<HashSet<String>> {
        if let Ok(guard) = self.known.lock()
            && let Some(k) = guard.as_ref()
        {
            return Ok(k.clone());
        }
        let out = self.read_known_ids()?;
        if let Ok(mut guard) = self.known.lock() {
            *guard = Some(out.clone());
        }
        Ok(out)
    }

    /// Read from the `id` field's term dictionary, not the document store:
    /// the store holds each item's whole text, so reading ids from it
    /// decompressed the entire index (0.6 s at 78,560 items).
    fn read_known_ids(&self) -> Result<HashSet<String>> {
        use tantivy::{DocSet, TERMINATED};
        let searcher = self.reader.searcher();
        let mut out = HashSet::new();
        for seg in searcher.segment_readers() {
            let terms = seg.inverted_index(self.f.id)?;
            let alive = seg.alive_bitset();
            let mut stream = terms.terms().stream()?;
            while stream.advance() {
                // A term stays in a segment until a merge, though every
                // document holding it was deleted (a shredded item).
                let live = match alive {
                    None => true,
                    Some(alive) => {
                        let mut docs = terms.read_postings_from_terminfo(
                            stream.value(),
                            IndexRecordOption::Basic,
                        )?;
                        let mut live = false;
                        while docs.doc() != TERMINATED {
                            if alive.is_alive(docs.doc()) {
                                live = true;
                                break;
                            }
                            docs.advance();
                        }
                        live
                    }
                };
                if live {
                    let id = std::str::from_utf8(stream.key())
                        .map_err(|e| Error::Query(format!("index holds a bad item id: {e}")))?;
                    out.insert(id.to_owned());
                }
            }
        }
        Ok(out)
    }

    /// Adds new items and removes shredded ones, in one commit.
    pub fn apply(&mut self, added: &[IndexFeedItem], removed: &[String]) -> Result<()> {
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        self.commit(added, removed, None)
    }

    /// As [`SearchIndex::apply`], for changes that bring the index to exactly
    /// the catalog's items as of `generation`: the same commit records it, so
    /// this process and later ones skip reconciling until the catalog changes.
    /// Both refuse with [`Error::Behind`], writing nothing, when another
    /// process committed since this handle last caught up.
    pub fn apply_synced(
        &mut self,
        added: &[IndexFeedItem],
        removed: &[String],
        generation: u64,
    ) -> Result<()> {
        if added.is_empty() && removed.is_empty() && self.synced_generation == Some(generation) {
            return Ok(());
        }
        self.commit(added, removed, Some(generation))
    }

    fn commit(
        &mut self,
        added: &[IndexFeedItem],
        removed: &[String],
        generation: Option<u64>,
    ) -> Result<()> {
        let mut w = writer(&self.index, 1)?;
        // The writer holds the index's lock: no other process can commit
        // from here on, so checking now closes the window since `catch_up`.
        let metas = self.index.load_metas()?;
        if (metas.opstamp, metas.payload) != self.seen_commit {
            return Err(Error::Behind);
        }
        for id in removed {
            w.delete_term(Term::from_field_text(self.f.id, id));
        }
        add_documents(&w, &self.f, self.home, added)?;
        self.seen_commit = commit_at(&mut w, generation)?;
        // Merges the commit started would otherwise be thrown away with the
        // writer, and segments pile up one per reconcile. A merge keeps the
        // commit's opstamp and payload, so `seen_commit` still holds.
        w.wait_merging_threads()?;
        self.synced_generation = generation;
        self.reader.reload()?;
        if self.classes.enabled() {
            self.refresh_classes()?;
        }
        if let Ok(mut k) = self.known.lock()
            && let Some(k) = k.as_mut()
        {
            for id in removed {
                k.remove(id);
            }
            k.extend(added.iter().map(|a| a.meta.id.clone()));
        }
        Ok(())
    }

    fn access(admitted: &Admitted) -> Access {
        let p = admitted.gate().principal();
        Access {
            collections: admitted.ids().to_vec(),
            level: level(p.clearance),
            nationality: p.nationality,
            held: p.compartments.iter().cloned().collect(),
        }
    }

    /// Codewords present anywhere in the index (term dictionary).
    fn codewords(&self, searcher: &tantivy::Searcher) -> Result<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for seg in searcher.segment_readers() {
            let inv = seg.inverted_index(self.f.comp)?;
            let mut stream = inv.terms().stream()?;
            while stream.advance() {
                out.insert(String::from_utf8_lossy(stream.key()).into_owned());
            }
        }
        Ok(out)
    }

    /// The documents `a` may see, from the cache or evaluated now.
    fn visible_set(&self, searcher: &tantivy::Searcher, a: &Access) -> Result<Arc<VisibleSet>> {
        let profile = format!(
            "{:?}|{}|{}|{:?}",
            a.collections, a.level, a.nationality, a.held
        );
        self.visible.get_or_build(searcher, &profile, || {
            let q = self.filter_query(searcher, a)?;
            Ok(VisibleSet::build(searcher, &q, &self.classes)?)
        })
    }

    fn filter_query(&self, searcher: &tantivy::Searcher, a: &Access) -> Result<BooleanQuery> {
        let present = self.codewords(searcher)?;
        Ok(access_filter(
            &self.f,
            a.collections.iter().map(|c| u64::from(c.0)),
            a.level,
            a.nationality.alpha3(),
            present
                .iter()
                .filter(|c| !a.held.contains(*c))
                .map(String::as_str),
        ))
    }

    /// Completions of `prefix` with how many visible items hold each:
    /// words of titles and bodies, and selectors (`phone:+4479…`). Every
    /// candidate in the dictionary is counted against the gate, and those no
    /// visible item holds are dropped, so what is suggested, in what order
    /// and with what counts depends on the visible set alone.
    pub fn suggest(
        &self,
        admitted: &Admitted,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<Suggestion>> {
        let chars = prefix.chars().count();
        if !(MIN_SUGGEST_PREFIX..=100).contains(&chars) {
            return Err(Error::Query(format!(
                "a suggestion prefix has {MIN_SUGGEST_PREFIX} to 100 characters (got {chars})"
            )));
        }
        if limit == 0 || limit > 100 {
            return Err(Error::Query("limit must be between 1 and 100".into()));
        }
        let searcher = self.reader.searcher();
        let filter = self.visible_set(&searcher, &Self::access(admitted))?;
        // Text fields are lower-cased by the tokenizer; selector terms keep
        // the normaliser's case (IBANs and Bitcoin addresses are not lower).
        let lower = prefix.to_lowercase();
        let exact = prefix.to_owned();
        let mut candidates: BTreeSet<(bool, String)> = BTreeSet::new();
        for seg in searcher.segment_readers() {
            for (field, key) in [
                (self.f.title, &lower),
                (self.f.body, &lower),
                (self.f.entity, &exact),
            ] {
                let inv = seg.inverted_index(field)?;
                let mut stream = inv.terms().range().ge(key.as_bytes()).into_stream()?;
                while stream.advance() {
                    let k = stream.key();
                    if !k.starts_with(key.as_bytes()) {
                        break;
                    }
                    if let Ok(t) = std::str::from_utf8(k) {
                        candidates.insert((field == self.f.entity, t.to_owned()));
                    }
                }
            }
        }
        let mut out = Vec::new();
        for (is_entity, term) in candidates {
            let matches: Box<dyn Query> = if is_entity {
                Box::new(TermQuery::new(
                    Term::from_field_text(self.f.entity, &term),
                    IndexRecordOption::Basic,
                ))
            } else {
                Box::new(BooleanQuery::new(
                    [self.f.title, self.f.body]
                        .into_iter()
                        .map(|field| {
                            let q: Box<dyn Query> = Box::new(TermQuery::new(
                                Term::from_field_text(field, &term),
                                IndexRecordOption::Basic,
                            ));
                            (Occur::Should, q)
                        })
                        .collect(),
                ))
            };
            let q = BooleanQuery::new(vec![
                (Occur::Must, matches),
                (Occur::Must, Box::new(filter.query())),
            ]);
            let items = searcher.search(&q, &Count)? as u64;
            if items > 0 {
                out.push(Suggestion { text: term, items });
            }
        }
        out.sort_by(|a, b| b.items.cmp(&a.items).then_with(|| a.text.cmp(&b.text)));
        out.dedup_by(|a, b| a.text == b.text);
        out.truncate(limit);
        Ok(out)
    }

    fn parse_user_query(
        &self,
        q: &str,
        collections: &BTreeMap<String, CollectionId>,
    ) -> Result<Box<dyn Query>> {
        let f = &self.f;
        let mut rest = Vec::new();
        let mut extra: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        let (mut from, mut to) = (Bound::Unbounded, Bound::Unbounded);
        // entity:"+44 20 7946 0018" may hold spaces: take those out first.
        static QUOTED_ENTITY: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
            regex::Regex::new(r#"entity:"([^"]*)""#).expect("static pattern")
        });
        let mut q = q.to_owned();
        for c in QUOTED_ENTITY.captures_iter(&q.clone()) {
            let sel = c.get(1).map_or("", |m| m.as_str());
            let term = crate::entities::normalise(sel).ok_or_else(|| {
                Error::Query(format!("entity:\"{sel}\": not a recognised selector"))
            })?;
            extra.push((
                Occur::Must,
                Box::new(TermQuery::new(
                    Term::from_field_text(f.entity, &term),
                    IndexRecordOption::Basic,
                )),
            ));
            q = q.replacen(c.get(0).map_or("", |m| m.as_str()), " ", 1);
        }
        for tok in q.split_whitespace() {
            if let Some(d) = tok.strip_prefix("from:") {
                let ms = parse_day(d)
                    .ok_or_else(|| Error::Query(format!("from:{d}: expected a date YYYY-MM-DD")))?;
                from = Bound::Included(Term::from_field_i64(f.created, ms));
            } else if let Some(d) = tok.strip_prefix("to:") {
                let ms = parse_day(d)
                    .ok_or_else(|| Error::Query(format!("to:{d}: expected a date YYYY-MM-DD")))?;
                to = Bound::Excluded(Term::from_field_i64(f.created, ms + 86_400_000));
            } else if let Some(c) = tok.strip_prefix("collection:") {
                // Unknown and invisible collections read alike: no match.
                let t = collections
                    .get(c)
                    .map(|id| Term::from_field_u64(f.collection, u64::from(id.0)));
                extra.push((Occur::Must, Box::new(TermSetQuery::new(t))));
            } else if let Some(sel) = tok.strip_prefix("entity:") {
                let term = crate::entities::normalise(sel).ok_or_else(|| {
                    Error::Query(format!(
                        "entity:{sel}: not a recognised selector (phone, e-mail, IP, domain, URL, IBAN, wallet, IMEI, coordinates)"
                    ))
                })?;
                extra.push((
                    Occur::Must,
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.entity, &term),
                        IndexRecordOption::Basic,
                    )),
                ));
            } else if let Some((word, dist)) = tok
                .split_once('~')
                .filter(|(w, _)| !w.is_empty() && !w.contains(':') && !w.contains('"'))
            {
                let d: u8 = if dist.is_empty() {
                    1
                } else {
                    dist.parse().map_err(|_| {
                        Error::Query(format!("{tok}: fuzzy distance must be 1 or 2"))
                    })?
                };
                if !(1..=2).contains(&d) {
                    return Err(Error::Query(format!(
                        "{tok}: fuzzy distance must be 1 or 2"
                    )));
                }
                let t = Term::from_field_text(f.body, &word.to_lowercase());
                extra.push((Occur::Must, Box::new(FuzzyTermQuery::new(t, d, true))));
            } else {
                rest.push(tok);
            }
        }
        if !matches!((&from, &to), (Bound::Unbounded, Bound::Unbounded)) {
            extra.push((Occur::Must, Box::new(RangeQuery::new(from, to))));
        }
        let text = rest.join(" ");
        let mut parser = QueryParser::for_index(&self.index, vec![f.title, f.body]);
        parser.set_conjunction_by_default();
        let main: Option<Box<dyn Query>> = if text.trim().is_empty() {
            None
        } else {
            Some(
                parser
                    .parse_query(&text)
                    .map_err(|e| Error::Query(format!("{e}")))?,
            )
        };
        match (main, extra.is_empty()) {
            (Some(m), true) => Ok(m),
            (None, true) => Err(Error::Query("empty query".into())),
            (m, false) => {
                if let Some(m) = m {
                    extra.push((Occur::Must, m));
                }
                Ok(Box::new(BooleanQuery::new(extra)))
            }
        }
    }

    /// Searches what the gate admitted for its principal (bulk collections only with a
    /// justification); `collection:` filters name admitted collections only.
    pub fn search(&self, admitted: &Admitted, req: &SearchRequest) -> Result<SearchResults> {
        if req.limit == 0 || req.limit > 1000 {
            return Err(Error::Query("limit must be between 1 and 1000".into()));
        }
        let searcher = self.reader.searcher();
        let access = Self::access(admitted);
        let set = self.visible_set(&searcher, &access)?;
        let user = self.parse_user_query(&req.query, admitted.names())?;
        // The gate: every collector below is wrapped in `VisibleCollector`,
        // so only documents of the visible set are counted, ranked or
        // faceted, and the statistics come from the same set.
        let stats = VisibleStats {
            searcher: &searcher,
            set: &set,
            df: RefCell::default(),
        };

        // Ties are broken by item id, not by where a document happens to sit in
        // the index, so the page is the same whatever else the index holds:
        // one pass counts the matches and keeps the page's documents and every
        // document tied with its last one.
        let want = req.offset + req.limit;
        let by = match req.sort {
            SortBy::Relevance => RankBy::Score,
            SortBy::Time => RankBy::Newest("created"),
        };
        let (total, fetched) = searcher.search_with_statistics_provider(
            &*user,
            &VisibleCollector::new(&set, (Count, TopWithTies::new(want, by))),
            &stats,
        )?;
        // Past the page, only documents tied with its last one can move into
        // it (by id); the rest are not read at all.
        let boundary = fetched.get(want - 1).map(|(key, _)| *key);
        let mut scored: Vec<(f32, i64, String, TantivyDocument)> = Vec::new();
        for (i, (key, addr)) in fetched.into_iter().enumerate() {
            if i >= want && boundary.is_some_and(|b| key != b) {
                break;
            }
            let d: TantivyDocument = searcher.doc(addr)?;
            let id = d
                .get_first(self.f.id)
                .and_then(|v| v.as_str())
                .unwrap_or_default()
                .to_owned();
            let created = d
                .get_first(self.f.created)
                .and_then(|v| v.as_i64())
                .unwrap_or_default();
            let score = if req.sort == SortBy::Relevance {
                key as f32
            } else {
                0.0
            };
            scored.push((score, created, id, d));
        }
        match req.sort {
            SortBy::Relevance => {
                scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.2.cmp(&b.2)))
            }
            SortBy::Time => scored.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.2.cmp(&b.2))),
        }

        let mut terms: BTreeMap<String, f32> = BTreeMap::new();
        user.query_terms(&mut |t, _| {
            if t.field() == self.f.body
                && let Some(s) = t.value().as_str()
            {
                let df = stats.doc_freq(t).unwrap_or(0);
                if df > 0 {
                    terms.insert(s.to_owned(), 1.0 / (1.0 + df as f32));
                }
            }
        });
        let mut snippets = SnippetGenerator::new(
            terms,
            self.index.tokenizer_for_field(self.f.body)?,
            self.f.body,
            200,
        );
        snippets.set_max_num_chars(200);

        let mut hits = Vec::new();
        for (score, created, id, d) in scored.into_iter().skip(req.offset).take(req.limit) {
            let text = |field: Field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            hits.push(Hit {
                id,
                title: text(self.f.title),
                marking: text(self.f.marking),
                collection: text(self.f.collection_name),
                score,
                created_ms: created,
                highlight: snippets.snippet_from_doc(&d).to_html(),
                flag: d
                    .get_first(self.f.flag)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
                derived_from: d
                    .get_first(self.f.parent)
                    .and_then(|v| v.as_str())
                    .map(str::to_owned),
            });
        }

        let mut facets = BTreeMap::new();
        if req.facets {
            let mut fc = FacetCollector::for_field("facets");
            for name in FACETS {
                fc.add_facet(Facet::from_path([name]));
            }
            let counts = searcher.search_with_statistics_provider(
                &*user,
                &VisibleCollector::new(&set, fc),
                &stats,
            )?;
            for name in FACETS {
                let mut v: Vec<(String, u64)> = counts
                    .get(Facet::from_path([name]))
                    .map(|(facet, n)| {
                        (
                            facet
                                .to_path()
                                .last()
                                .map(|s| s.to_string())
                                .unwrap_or_default(),
                            n,
                        )
                    })
                    .collect();
                v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                facets.insert(name.to_owned(), v);
            }
        }
        let page_marking = self.page_marking(&hits);
        Ok(SearchResults {
            total,
            hits,
            facets,
            page_marking,
        })
    }
}

/// The gate's filter as an index query: a visible collection, a level at
/// most `level`, releasable to `nation`, and none of the codewords
/// `lacking` (those in the index that the principal does not hold).
pub(crate) fn access_filter<'a>(
    f: &Fields,
    collections: impl IntoIterator<Item = u64>,
    level: u64,
    nation: &str,
    lacking: impl IntoIterator<Item = &'a str>,
) -> BooleanQuery {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = vec![
        (
            Occur::Must,
            Box::new(TermSetQuery::new(
                collections
                    .into_iter()
                    .map(|c| Term::from_field_u64(f.collection, c)),
            )),
        ),
        (
            Occur::Must,
            Box::new(RangeQuery::new(
                Bound::Included(Term::from_field_u64(f.level, 0)),
                Bound::Included(Term::from_field_u64(f.level, level)),
            )),
        ),
        (
            Occur::Must,
            Box::new(TermQuery::new(
                Term::from_field_text(f.rel, nation),
                IndexRecordOption::Basic,
            )),
        ),
    ];
    for c in lacking {
        clauses.push((
            Occur::MustNot,
            Box::new(TermQuery::new(
                Term::from_field_text(f.comp, c),
                IndexRecordOption::Basic,
            )),
        ));
    }
    BooleanQuery::new(clauses)
}

/// BM25 statistics over the documents the gate admits, so that scores
/// depend on the visible set alone.
struct VisibleStats<'a> {
    searcher: &'a tantivy::Searcher,
    set: &'a VisibleSet,
    /// Document frequencies already counted in this query.
    df: RefCell<HashMap<Term, u64>>,
}

impl Bm25StatisticsProvider for VisibleStats<'_> {
    fn total_num_tokens(&self, field: Field) -> tantivy::Result<u64> {
        self.set.total_tokens(self.searcher, field)
    }

    fn total_num_docs(&self) -> tantivy::Result<u64> {
        Ok(self.set.docs())
    }

    fn doc_freq(&self, term: &Term) -> tantivy::Result<u64> {
        if let Some(n) = self.df.borrow().get(term) {
            return Ok(*n);
        }
        let n = self.set.doc_freq(self.searcher, term)?;
        self.df.borrow_mut().insert(term.clone(), n);
        Ok(n)
    }
}

/// A commit as a handle knows it: its opstamp and payload.
pub(crate) type CommitMark = (u64, Option<String>);

/// Builds the documents of `added` and hands them to `writer`. Extraction,
/// entities and language detection dominate indexing and are independent
/// per item: they are spread over the cores, each thread handing its
/// documents straight to the writer.
pub(crate) fn add_documents(
    writer: &IndexWriter,
    f: &Fields,
    home: Nation,
    added: &[IndexFeedItem],
) -> Result<()> {
    // Items differ in cost (a call record of thousands of rows beside a
    // two-line note), so threads take a few at a time until none are left
    // rather than half each: no thread waits on another's long tail.
    const TAKE: usize = 8;
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
        .min(added.len().div_ceil(TAKE));
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| -> Result<()> {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let next = &next;
                scope.spawn(move || -> Result<()> {
                    loop {
                        let from = next.fetch_add(TAKE, std::sync::atomic::Ordering::Relaxed);
                        if from >= added.len() {
                            return Ok(());
                        }
                        for it in &added[from..(from + TAKE).min(added.len())] {
                            writer.add_document(document(f, home, it))?;
                        }
                    }
                })
            })
            .collect();
        for h in workers {
            h.join()
                .map_err(|_| Error::Query("an indexing thread panicked".into()))??;
        }
        Ok(())
    })
}

/// The passage `[start, end)` of `body` (byte offsets, moved inside the text to character
/// boundaries), HTML-escaped, cut at 300 characters.
fn passage_html(body: &str, start: u64, end: u64) -> String {
    let mut a = usize::try_from(start).unwrap_or(usize::MAX).min(body.len());
    let mut b = usize::try_from(end)
        .unwrap_or(usize::MAX)
        .min(body.len())
        .max(a);
    while !body.is_char_boundary(a) {
        a -= 1;
    }
    while !body.is_char_boundary(b) {
        b += 1;
    }
    let passage = body[a..b].trim();
    let mut cut: String = passage.chars().take(300).collect();
    if cut.len() < passage.len() {
        cut.push('…');
    }
    cut.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Commits what `w` holds, recording in the commit the catalog's items
/// generation the index then holds exactly, if it is known.
pub(crate) fn commit_at(w: &mut IndexWriter, generation: Option<u64>) -> Result<CommitMark> {
    let mut prepared = w.prepare_commit()?;
    let payload = generation.map(|g| format!("{SYNCED_AT}{g}"));
    if let Some(p) = &payload {
        prepared.set_payload(p);
    }
    Ok((prepared.commit()?, payload))
}

/// The index document of one item: extracted text, access attributes,
/// facets, selectors and events.
pub(crate) fn document(f: &Fields, home: Nation, it: &IndexFeedItem) -> TantivyDocument {
    let extracted = crate::extract::extract_item(&it.meta.title, &it.content, it.meta.generation);
    let (body, kind) = (extracted.text, extracted.kind);
    let flag = extracted.flag;
    let mut d = TantivyDocument::default();
    d.add_text(f.id, &it.meta.id);
    d.add_text(f.title, &it.meta.title);
    d.add_text(f.body, &body);
    if let Some(parent) = &it.meta.derived_from {
        d.add_text(f.parent, parent);
    }
    if let Some(how) = &it.meta.derivation {
        d.add_text(f.derivation, how);
    }
    d.add_u64(f.collection, u64::from(it.collection.0));
    d.add_u64(f.level, level(it.marking.classification()));
    for c in it.marking.compartments() {
        d.add_text(f.comp, c);
    }
    for n in it.marking.releasable_to(home).iter() {
        d.add_text(f.rel, n.alpha3());
    }
    d.add_i64(f.created, it.meta.created_ms);
    let lang = language_of(&body);
    d.add_text(f.lang, &lang);
    d.add_text(f.kind, kind);
    d.add_facet(f.facets, Facet::from_path(["type", kind]));
    d.add_facet(f.facets, Facet::from_path(["lang", lang.as_str()]));
    d.add_facet(
        f.facets,
        Facet::from_path(["collection", it.meta.collection.as_str()]),
    );
    d.add_facet(
        f.facets,
        Facet::from_path(["classification", it.marking.classification().as_str()]),
    );
    d.add_facet(
        f.facets,
        Facet::from_path(["month", month(it.meta.created_ms).as_str()]),
    );
    let mut seen = BTreeSet::new();
    for m in crate::entities::extract(&body) {
        let term = m.term();
        if seen.insert(term.clone()) {
            d.add_text(f.entity, &term);
        }
    }
    if let Some(alert) = crate::alert_links::alert_links(&it.meta.title, &it.content) {
        for t in alert.selectors {
            if seen.insert(t.clone()) {
                d.add_text(f.entity, &t);
            }
        }
        if let Some(ms) = alert.happened_ms {
            d.add_text(f.event, crate::alert_links::encode_happened(ms));
        }
    }
    if let Some(flag) = &flag {
        d.add_text(f.flag, flag);
    }
    for e in crate::comms::events_of(kind, &it.content) {
        // Both ends are selectors of the item even when the text
        // extractor did not see them as such.
        for t in [&e.from, &e.to] {
            if seen.insert(t.clone()) {
                d.add_text(f.entity, t);
            }
        }
        d.add_text(f.event, e.encode());
    }
    d.add_text(f.marking, &it.meta.marking);
    d.add_text(f.collection_name, &it.meta.collection);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        let ms = parse_day("2026-11-29").unwrap();
        assert_eq!(month(ms), "2026-11");
        assert_eq!(month(parse_day("2024-02-29").unwrap()), "2024-02");
        assert_eq!(month(0), "1970-01");
        assert!(parse_day("2026-13-01").is_none());
        assert!(parse_day("yesterday").is_none());
        assert!(parse_day("2029999999999995-01-01").is_none());
    }

    fn feed_item(id: &str, text: &str) -> IndexFeedItem {
        let meta = serde_json::json!({
            "id": id, "title": format!("{id}.txt"), "marking": "SECRET",
            "collection": "mi5/ct", "size": text.len(), "created_ms": 0,
            "ingested_by": "alice",
        });
        IndexFeedItem {
            meta: serde_json::from_value(meta).expect("meta"),
            marking: bletchley_policy::Marking::parse("SECRET").expect("marking"),
            collection: CollectionId(1),
            content: text.as_bytes().to_vec(),
        }
    }

    /// Each reconcile commits a segment; the merges those commits start
    /// land rather than being thrown away with the writer, so a server that
    /// reconciles after every upload does not pile up one segment per
    /// upload (every query visits every segment).
    #[test]
    fn reconciles_do_not_pile_up_segments() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::from_bytes([5; 32]);
        let mut index = SearchIndex::open(dir.path(), key.clone(), Nation::gbr()).expect("open");
        for i in 0..20 {
            index
                .apply(&[feed_item(&format!("item-{i:02}"), "a report")], &[])
                .expect("apply");
        }
        let segments = index.reader.searcher().segment_readers().len();
        assert!(segments < 10, "{segments} segments after 20 commits");
        assert_eq!(index.known_ids().expect("known").len(), 20);
        let fresh = SearchIndex::open(dir.path(), key, Nation::gbr()).expect("open");
        assert_eq!(fresh.known_ids().expect("known").len(), 20);
    }

    /// The ids a reconciliation starts from are the live items, whatever
    /// the segments still hold: after deletions (shredded items, whose terms
    /// stay until a merge), across several commits, and in a new process.
    #[test]
    fn known_ids_are_the_live_items() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::from_bytes([9; 32]);
        let open = || SearchIndex::open(dir.path(), key.clone(), Nation::gbr()).expect("open");
        let mut index = open();
        let ids: Vec<String> = (0..30).map(|i| format!("item-{i:02}")).collect();
        for part in ids.chunks(10) {
            let items: Vec<_> = part.iter().map(|id| feed_item(id, "a report")).collect();
            index.apply(&items, &[]).expect("add");
        }
        let gone: Vec<String> = ids.iter().step_by(3).cloned().collect();
        index.apply(&[], &gone).expect("remove");
        let want: HashSet<String> = ids.iter().filter(|i| !gone.contains(i)).cloned().collect();
        assert_eq!(want.len(), 20);
        assert_eq!(open().known_ids().expect("known"), want, "a new process");
        assert_eq!(index.known_ids().expect("known"), want, "kept in step");
        index
            .apply(&[feed_item("item-00", "back again")], &[])
            .expect("re-add");
        let mut want = want;
        want.insert("item-00".into());
        assert_eq!(
            open().known_ids().expect("known"),
            want,
            "a deleted id added again"
        );
    }

    /// The generation an index was reconciled at outlives the process that
    /// reconciled it, and another handle on the same index takes it up; a
    /// commit that does not say (a plain `apply`) leaves none behind, so the
    /// next search reconciles rather than trusting a stale number.
    #[test]
    fn the_synced_generation_is_kept_in_the_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::from_bytes([7; 32]);
        let open = || SearchIndex::open(dir.path(), key.clone(), Nation::gbr()).expect("open");
        let mut a = open();
        let mut b = open();
        assert_eq!(a.synced_generation(), None);
        a.apply_synced(&[], &[], 42).expect("sync");
        assert_eq!(a.synced_generation(), Some(42));
        assert_eq!(open().synced_generation(), Some(42), "a new process");
        assert_eq!(b.synced_generation(), None);
        let stale = b.apply(&[feed_item("item-1", "a report")], &[]);
        assert!(
            matches!(stale, Err(Error::Behind)),
            "a handle behind another's commit writes nothing: {stale:?}"
        );
        b.catch_up().expect("catch up");
        assert_eq!(b.synced_generation(), Some(42), "a handle opened before");
        b.apply(&[], &["no-such-item".to_owned()]).expect("apply");
        assert_eq!(b.synced_generation(), None);
        assert_eq!(
            open().synced_generation(),
            None,
            "a plain apply says nothing"
        );
        a.catch_up().expect("catch up");
        assert_eq!(a.synced_generation(), None);
        assert!(
            a.known_ids().expect("known").is_empty(),
            "item-1 was not written"
        );
    }
}
