//! The gate's filter, evaluated once per index generation and access
//! profile and then reused as a bitset.
//!
//! Evaluating the filter (collections, level, nationality, codewords) for
//! every query and again for every term statistic cost four to five times
//! the query itself. The set of documents a profile may see changes only
//! when the index does, so it is computed once per searcher generation into
//! one bitset per segment (deleted documents left out) and every later
//! query, count and statistic intersects with that bitset instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::index::SegmentId;
use tantivy::query::{
    BitSetDocSet, ConstScorer, EnableScoring, Explanation, Query, Scorer, Weight,
};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, DocSet, Score, SegmentOrdinal, SegmentReader, TERMINATED, Term};

use crate::class_stats::{ClassStats, SegmentClasses};

/// The documents one access profile may see in one searcher generation.
pub(crate) struct VisibleSet {
    segments: HashMap<SegmentId, Arc<BitSet>>,
    /// Per segment with a class table that the set is a union of classes
    /// in: the table, and which of its classes are visible.
    classes: HashMap<SegmentId, (Arc<SegmentClasses>, Vec<bool>)>,
    docs: u64,
    /// Field lengths over the set, computed on first use.
    tokens: Mutex<HashMap<Field, u64>>,
    /// Document frequencies over the set, computed on first use: they hold
    /// for the whole generation, and query terms repeat.
    doc_freqs: Mutex<HashMap<Term, u64>>,
}

/// Document frequencies kept per set; past this the cache starts again.
const MAX_CACHED_TERMS: usize = 100_000;

impl VisibleSet {
    /// Evaluates `filter` over every segment of `searcher`, and reads off
    /// which access classes of `tables` it admits.
    pub(crate) fn build(
        searcher: &tantivy::Searcher,
        filter: &dyn Query,
        tables: &ClassStats,
    ) -> tantivy::Result<VisibleSet> {
        let weight = filter.weight(EnableScoring::disabled_from_searcher(searcher))?;
        let mut segments = HashMap::new();
        let mut classes = HashMap::new();
        let mut docs = 0u64;
        for seg in searcher.segment_readers() {
            let mut set = BitSet::with_max_value(seg.max_doc());
            let alive = seg.alive_bitset();
            let mut scorer = weight.scorer(seg, 1.0)?;
            let mut doc = scorer.doc();
            while doc != TERMINATED {
                if alive.is_none_or(|a| a.is_alive(doc)) {
                    set.insert(doc);
                    docs += 1;
                }
                doc = scorer.advance();
            }
            if let Some(table) = tables.get(seg)
                && let Some(visible) = table.visible_classes(&set)
            {
                classes.insert(seg.segment_id(), (table, visible));
            }
            segments.insert(seg.segment_id(), Arc::new(set));
        }
        Ok(VisibleSet {
            segments,
            classes,
            docs,
            tokens: Mutex::default(),
            doc_freqs: Mutex::default(),
        })
    }

    /// Visible documents in all.
    pub(crate) fn docs(&self) -> u64 {
        self.docs
    }

    /// Whether `segment`'s document frequencies come from its class table.
    #[cfg(test)]
    pub(crate) fn uses_table(&self, segment: SegmentId) -> bool {
        self.classes.contains_key(&segment)
    }

    /// Whether `doc` of `segment` is visible.
    pub(crate) fn contains(&self, segment: SegmentId, doc: DocId) -> bool {
        self.segments.get(&segment).is_some_and(|s| s.contains(doc))
    }

    /// Visible documents that hold `term`: from the segment's class table
    /// when the term is frequent there, else its postings checked against
    /// the set, so the cost is at most that of the term's own postings.
    pub(crate) fn doc_freq(
        &self,
        searcher: &tantivy::Searcher,
        term: &Term,
    ) -> tantivy::Result<u64> {
        if let Some(n) = self
            .doc_freqs
            .lock()
            .ok()
            .and_then(|d| d.get(term).copied())
        {
            return Ok(n);
        }
        let mut n = 0u64;
        for seg in searcher.segment_readers() {
            let id = seg.segment_id();
            if let Some((table, visible)) = self.classes.get(&id)
                && let Some(k) = table.doc_freq(term, visible)
            {
                n += k;
                continue;
            }
            let Some(set) = self.segments.get(&id) else {
                continue;
            };
            let inv = seg.inverted_index(term.field())?;
            let Some(mut block) = inv.read_block_postings(term, IndexRecordOption::Basic)? else {
                continue;
            };
            while !block.docs().is_empty() {
                n += block.docs().iter().filter(|d| set.contains(**d)).count() as u64;
                block.advance();
            }
        }
        if let Ok(mut d) = self.doc_freqs.lock() {
            if d.len() >= MAX_CACHED_TERMS {
                d.clear();
            }
            d.insert(term.clone(), n);
        }
        Ok(n)
    }

    /// Total length of `field` over the visible documents.
    pub(crate) fn total_tokens(
        &self,
        searcher: &tantivy::Searcher,
        field: Field,
    ) -> tantivy::Result<u64> {
        if let Some(n) = self.tokens.lock().ok().and_then(|t| t.get(&field).copied()) {
            return Ok(n);
        }
        let mut total = 0u64;
        for seg in searcher.segment_readers() {
            let Some(set) = self.segments.get(&seg.segment_id()) else {
                continue;
            };
            let norms = seg.get_fieldnorms_reader(field)?;
            let mut docs = BitSetDocSet::from(BitSet::clone(set));
            let mut doc = docs.doc();
            while doc != TERMINATED {
                total += u64::from(norms.fieldnorm(doc));
                doc = docs.advance();
            }
        }
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(field, total);
        }
        Ok(total)
    }

    /// The set as a query, to intersect with the user's.
    pub(crate) fn query(self: &Arc<Self>) -> VisibleQuery {
        VisibleQuery(Arc::clone(self))
    }
}

/// A query matching exactly the visible set, with a constant score.
#[derive(Clone)]
pub(crate) struct VisibleQuery(Arc<VisibleSet>);

impl std::fmt::Debug for VisibleQuery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VisibleQuery({} docs)", self.0.docs)
    }
}

impl Query for VisibleQuery {
    fn weight(&self, _scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(VisibleWeight(Arc::clone(&self.0))))
    }
}

struct VisibleWeight(Arc<VisibleSet>);

impl Weight for VisibleWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        // A segment the set was not built over (it cannot happen within one
        // generation) admits nothing: deny rather than guess.
        let set = self
            .0
            .segments
            .get(&reader.segment_id())
            .map(|s| BitSet::clone(s))
            .unwrap_or_else(|| BitSet::with_max_value(reader.max_doc()));
        Ok(Box::new(ConstScorer::new(BitSetDocSet::from(set), boost)))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        if self.0.contains(reader.segment_id(), doc) {
            Ok(Explanation::new("visible to the principal", 1.0))
        } else {
            Err(tantivy::TantivyError::InvalidArgument(
                "document not visible".into(),
            ))
        }
    }
}

/// A collector that passes on only the documents of a visible set: the
/// gate applied as the user's query's matches are collected, each match
/// one bit test, rather than as a clause intersected into the query (which
/// copied the set for every query and, for a common term, walked the set's
/// documents and sought each in the term's postings).
pub(crate) struct VisibleCollector<C> {
    set: Arc<VisibleSet>,
    inner: C,
}

impl<C> VisibleCollector<C> {
    /// `inner`, seeing only what `set` admits.
    pub(crate) fn new(set: &Arc<VisibleSet>, inner: C) -> Self {
        VisibleCollector {
            set: Arc::clone(set),
            inner,
        }
    }
}

impl<C: Collector> Collector for VisibleCollector<C> {
    type Fruit = C::Fruit;
    type Child = VisibleSegmentCollector<C::Child>;

    fn for_segment(
        &self,
        ord: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        // A segment the set was not built over (it cannot happen within one
        // generation) admits nothing: deny rather than guess.
        let set = self
            .set
            .segments
            .get(&reader.segment_id())
            .cloned()
            .unwrap_or_else(|| Arc::new(BitSet::with_max_value(reader.max_doc())));
        Ok(VisibleSegmentCollector {
            set,
            inner: self.inner.for_segment(ord, reader)?,
            buffer: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.inner.requires_scoring()
    }

    fn merge_fruits(
        &self,
        fruits: Vec<<Self::Child as SegmentCollector>::Fruit>,
    ) -> tantivy::Result<Self::Fruit> {
        self.inner.merge_fruits(fruits)
    }
}

/// [`VisibleCollector`] within one segment.
pub(crate) struct VisibleSegmentCollector<S> {
    set: Arc<BitSet>,
    inner: S,
    buffer: Vec<DocId>,
}

impl<S: SegmentCollector> SegmentCollector for VisibleSegmentCollector<S> {
    type Fruit = S::Fruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.set.contains(doc) {
            self.inner.collect(doc, score);
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        self.buffer.clear();
        self.buffer
            .extend(docs.iter().copied().filter(|d| self.set.contains(*d)));
        self.inner.collect_block(&self.buffer);
    }

    fn harvest(self) -> Self::Fruit {
        self.inner.harvest()
    }
}

/// Visible sets of the current generation, by access profile.
#[derive(Default)]
pub(crate) struct VisibleCache {
    inner: Mutex<(u64, HashMap<String, Arc<VisibleSet>>)>,
}

/// Profiles kept per generation; past this the cache starts again.
const MAX_PROFILES: usize = 256;

impl VisibleCache {
    /// The set for `profile` in `searcher`'s generation, built with `build`
    /// when absent.
    pub(crate) fn get_or_build<E>(
        &self,
        searcher: &tantivy::Searcher,
        profile: &str,
        build: impl FnOnce() -> Result<VisibleSet, E>,
    ) -> Result<Arc<VisibleSet>, E> {
        let generation = searcher.generation().generation_id();
        if let Ok(g) = self.inner.lock()
            && g.0 == generation
            && let Some(s) = g.1.get(profile)
        {
            return Ok(Arc::clone(s));
        }
        let set = Arc::new(build()?);
        if let Ok(mut g) = self.inner.lock() {
            if g.0 != generation || g.1.len() >= MAX_PROFILES {
                *g = (generation, HashMap::new());
            }
            g.1.insert(profile.to_owned(), Arc::clone(&set));
        }
        Ok(set)
    }
}
