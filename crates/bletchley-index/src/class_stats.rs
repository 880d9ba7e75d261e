//! Document frequencies of frequent terms by access class, counted once per
//! segment, so that a principal's BM25 statistics do not walk long postings.
//!
//! Scores must come from the visible set alone (rule 1), so a term's
//! document frequency is the number of *visible* documents holding it.
//! Counting that by walking the term's postings against the visible set
//! costs up to a million checks for a common word in a million documents,
//! and every new term in a query pays it once: that walk was most of the
//! gated search's 99th percentile.
//!
//! Whether a document is visible depends only on its access attributes
//! (collection, level, codewords, releasable nations). Documents with the
//! same attributes form an *access class*; there are few classes. Each
//! segment, once, counts every frequent term's documents per class. A
//! profile's visible document frequency is then the sum over the classes it
//! sees. Which classes a profile sees is read off its visible set and
//! checked exactly: a class must be wholly visible or wholly invisible, or
//! the segment's table is not used for that profile and its postings are
//! walked as before. The table is therefore an accelerator only; the
//! numbers it gives are the numbers the walk gives.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tantivy::index::SegmentId;
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::{BitSet, DocId, SegmentReader, Term};

/// Terms held by at least this many documents of a segment get a table
/// entry; rarer ones are cheap to walk.
pub(crate) const FREQUENT: u32 = 512;

/// Past this many classes in one segment, the segment gets no table.
const MAX_CLASSES: usize = 4096;

/// A term as the tables key it: its field and value bytes.
type TermKey = (Field, Box<[u8]>);

/// A segment with a given number of deleted documents: its alive set.
type AliveSegment = (SegmentId, u32);

/// One segment's access classes and its frequent terms' counts per class.
pub(crate) struct SegmentClasses {
    /// The class of every document, alive or not.
    class_of: Vec<u16>,
    /// Alive documents per class.
    class_size: Vec<u32>,
    /// Per frequent term (field, value bytes): alive documents per class,
    /// only the classes that hold it.
    counts: HashMap<TermKey, Box<[(u16, u32)]>>,
}

impl SegmentClasses {
    /// Classes `seg`'s documents by the terms of `access_fields` and counts
    /// the frequent terms of `scored_fields` per class. `None` when the
    /// segment has too many classes for a table to pay.
    fn build(
        seg: &SegmentReader,
        access_fields: &[Field],
        scored_fields: &[Field],
        frequent: u32,
    ) -> tantivy::Result<Option<SegmentClasses>> {
        let max = seg.max_doc() as usize;
        // A document's class key: its access terms folded in dictionary
        // order. Equal attributes give equal keys; a collision between
        // unequal ones would only merge classes, which the exact check in
        // `visible_classes` catches.
        let mut key = vec![0u64; max];
        for (i, field) in access_fields.iter().enumerate() {
            let inv = seg.inverted_index(*field)?;
            let mut terms = inv.terms().stream()?;
            while terms.advance() {
                let h = term_hash(i as u64, terms.key());
                let mut block =
                    inv.read_block_postings_from_terminfo(terms.value(), IndexRecordOption::Basic)?;
                while !block.docs().is_empty() {
                    for &d in block.docs() {
                        if let Some(k) = key.get_mut(d as usize) {
                            *k = mix(*k ^ h);
                        }
                    }
                    block.advance();
                }
            }
        }
        let alive = seg.alive_bitset();
        let mut ids: HashMap<u64, u16> = HashMap::new();
        let mut class_of = Vec::with_capacity(max);
        let mut class_size: Vec<u32> = Vec::new();
        for (doc, k) in key.iter().enumerate() {
            let next = ids.len();
            let c = *ids.entry(*k).or_insert(next as u16);
            if ids.len() > MAX_CLASSES {
                return Ok(None);
            }
            if class_size.len() <= c as usize {
                class_size.push(0);
            }
            if alive.is_none_or(|a| a.is_alive(doc as DocId)) {
                class_size[c as usize] += 1;
            }
            class_of.push(c);
        }
        drop(key);
        let mut counts = HashMap::new();
        let mut scratch = vec![0u32; class_size.len()];
        for field in scored_fields {
            let inv = seg.inverted_index(*field)?;
            let mut terms = inv.terms().stream()?;
            while terms.advance() {
                let info = terms.value();
                if info.doc_freq < frequent {
                    continue;
                }
                let mut block =
                    inv.read_block_postings_from_terminfo(info, IndexRecordOption::Basic)?;
                while !block.docs().is_empty() {
                    for &d in block.docs() {
                        if alive.is_none_or(|a| a.is_alive(d))
                            && let Some(&c) = class_of.get(d as usize)
                        {
                            scratch[c as usize] += 1;
                        }
                    }
                    block.advance();
                }
                let per_class: Box<[(u16, u32)]> = scratch
                    .iter_mut()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(c, n)| (c as u16, std::mem::take(n)))
                    .collect();
                counts.insert((*field, Box::from(terms.key())), per_class);
            }
        }
        Ok(Some(SegmentClasses {
            class_of,
            class_size,
            counts,
        }))
    }

    /// Which classes the documents in `visible` make up, or `None` when some
    /// class is partly visible (the set is not a union of classes, so the
    /// table cannot answer for it).
    pub(crate) fn visible_classes(&self, visible: &BitSet) -> Option<Vec<bool>> {
        let mut seen = vec![0u32; self.class_size.len()];
        for (doc, c) in self.class_of.iter().enumerate() {
            if visible.contains(doc as DocId) {
                seen[*c as usize] += 1;
            }
        }
        seen.iter()
            .zip(&self.class_size)
            .map(|(s, size)| match *s {
                0 => Some(false),
                s if s == *size => Some(true),
                _ => None,
            })
            .collect()
    }

    /// Visible documents holding `term`, if the term is frequent here.
    pub(crate) fn doc_freq(&self, term: &Term, visible: &[bool]) -> Option<u64> {
        let per_class = self
            .counts
            .get(&(term.field(), Box::from(term.serialized_value_bytes())))?;
        Some(
            per_class
                .iter()
                .filter(|(c, _)| visible.get(*c as usize).copied().unwrap_or(false))
                .map(|(_, n)| u64::from(*n))
                .sum(),
        )
    }
}

/// The tables of the segments now searched, kept across generations: a
/// segment never changes, and its deletions only grow, so (id, deleted
/// count) names its alive set.
pub(crate) struct ClassStats {
    segments: Mutex<HashMap<AliveSegment, Option<Arc<SegmentClasses>>>>,
    /// Segment document frequency from which a term gets an entry.
    frequent: u32,
    /// Whether tables are kept up to date at each reload: worth it for a
    /// long-lived searcher (the server), not for one command-line query,
    /// which would pay a pass over every posting to answer one search.
    enabled: AtomicBool,
}

impl Default for ClassStats {
    fn default() -> Self {
        ClassStats {
            segments: Mutex::default(),
            frequent: FREQUENT,
            enabled: AtomicBool::new(false),
        }
    }
}

impl ClassStats {
    /// Keeps tables from now on.
    pub(crate) fn enable(&self) {
        self.enabled.store(true, Ordering::Relaxed);
    }

    /// Whether tables are kept.
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// Builds the tables `searcher`'s segments lack and forgets those of
    /// segments it no longer has.
    pub(crate) fn refresh(
        &self,
        searcher: &tantivy::Searcher,
        access_fields: &[Field],
        scored_fields: &[Field],
    ) -> tantivy::Result<()> {
        let wanted: Vec<AliveSegment> = searcher
            .segment_readers()
            .iter()
            .map(|s| (s.segment_id(), s.num_deleted_docs()))
            .collect();
        let missing: Vec<&SegmentReader> = searcher
            .segment_readers()
            .iter()
            .filter(|s| {
                self.segments
                    .lock()
                    .map(|m| !m.contains_key(&(s.segment_id(), s.num_deleted_docs())))
                    .unwrap_or(true)
            })
            .collect();
        let mut built = Vec::with_capacity(missing.len());
        for seg in missing {
            let table = SegmentClasses::build(seg, access_fields, scored_fields, self.frequent)?;
            built.push((
                (seg.segment_id(), seg.num_deleted_docs()),
                table.map(Arc::new),
            ));
        }
        if let Ok(mut m) = self.segments.lock() {
            m.extend(built);
            m.retain(|k, _| wanted.contains(k));
        }
        Ok(())
    }

    /// The table of `seg`, if one was built for its present alive set.
    pub(crate) fn get(&self, seg: &SegmentReader) -> Option<Arc<SegmentClasses>> {
        self.segments
            .lock()
            .ok()?
            .get(&(seg.segment_id(), seg.num_deleted_docs()))
            .cloned()
            .flatten()
    }
}

/// A term's contribution to a class key.
fn term_hash(field: u64, bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(mix(field.wrapping_add(0x9e37_79b9_7f4a_7c15)), |h, b| {
            mix(h ^ u64::from(*b))
        })
}

/// SplitMix64's finaliser: every input bit moves every output bit.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
    use tantivy::{Index, TantivyDocument};

    use super::*;
    use crate::visible_set::VisibleSet;

    /// A document's access attributes and words, as the test writes them.
    #[derive(Clone, Debug)]
    struct Doc {
        collection: u64,
        level: u64,
        comps: BTreeSet<&'static str>,
        rel: BTreeSet<&'static str>,
        words: Vec<&'static str>,
    }

    /// Who is asking: visible collections, clearance level, nationality,
    /// codewords held.
    #[derive(Clone, Debug)]
    struct Profile {
        collections: BTreeSet<u64>,
        level: u64,
        nation: &'static str,
        held: BTreeSet<&'static str>,
    }

    const WORDS: [&str; 5] = ["alpha", "bravo", "charlie", "delta", "echo"];
    const COMPS: [&str; 2] = ["KESTREL", "OSPREY"];
    const NATIONS: [&str; 3] = ["GBR", "USA", "FRA"];

    fn subset<T: Copy + Ord + std::fmt::Debug + 'static>(
        from: &'static [T],
    ) -> impl Strategy<Value = BTreeSet<T>> {
        proptest::collection::vec(proptest::sample::select(from), 0..=from.len())
            .prop_map(|v| v.into_iter().collect())
    }

    fn doc() -> impl Strategy<Value = Doc> {
        (
            0u64..3,
            0u64..3,
            subset(&COMPS),
            subset(&NATIONS),
            proptest::collection::vec(proptest::sample::select(&WORDS[..]), 1..6),
        )
            .prop_map(|(collection, level, comps, rel, words)| Doc {
                collection,
                level,
                comps,
                rel,
                words,
            })
    }

    fn profile() -> impl Strategy<Value = Profile> {
        (
            proptest::collection::btree_set(0u64..3, 0..=3),
            0u64..3,
            proptest::sample::select(&NATIONS[..]),
            subset(&COMPS),
        )
            .prop_map(|(collections, level, nation, held)| Profile {
                collections,
                level,
                nation,
                held,
            })
    }

    /// The gate's rule, written out for the test: what the filter query must
    /// admit.
    fn may_see(p: &Profile, d: &Doc) -> bool {
        p.collections.contains(&d.collection)
            && d.level <= p.level
            && d.rel.contains(p.nation)
            && d.comps.is_subset(&p.held)
    }

    /// The filter the index builds for `p`.
    fn filter(f: &crate::schema::Fields, p: &Profile) -> BooleanQuery {
        crate::search::access_filter(
            f,
            p.collections.iter().copied(),
            p.level,
            p.nation,
            COMPS.iter().copied().filter(|c| !p.held.contains(c)),
        )
    }

    /// Indexes `docs` in `segments` commits and deletes those at `deleted`.
    fn index(docs: &[Doc], segments: usize, deleted: &[usize]) -> (Index, crate::schema::Fields) {
        let (schema, f) = crate::schema::build();
        let index = Index::create_in_ram(schema);
        let mut w = index
            .writer_with_num_threads::<TantivyDocument>(1, 15_000_000)
            .unwrap();
        let per = docs.len().div_ceil(segments.max(1)).max(1);
        for (i, d) in docs.iter().enumerate() {
            let mut t = TantivyDocument::default();
            t.add_text(f.id, format!("doc{i}"));
            t.add_u64(f.collection, d.collection);
            t.add_u64(f.level, d.level);
            for c in &d.comps {
                t.add_text(f.comp, c);
            }
            for n in &d.rel {
                t.add_text(f.rel, n);
            }
            t.add_text(f.body, d.words.join(" "));
            w.add_document(t).unwrap();
            if (i + 1) % per == 0 {
                w.commit().unwrap();
            }
        }
        w.commit().unwrap();
        for i in deleted {
            w.delete_term(Term::from_field_text(f.id, &format!("doc{i}")));
        }
        w.commit().unwrap();
        (index, f)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// With tables, a profile's document frequencies are exactly the
        /// visible documents holding each word, counted from the test's own
        /// data; and a filter that is not a union of classes (here: the
        /// profile's filter and a word) falls back to the walk and is exact
        /// too.
        #[test]
        fn tables_give_the_visible_document_frequency(
            docs in proptest::collection::vec(doc(), 1..80),
            p in profile(),
            segments in 1usize..4,
            deleted in proptest::collection::vec(0usize..80, 0..10),
        ) {
            let (index, f) = index(&docs, segments, &deleted);
            let searcher = index.reader().unwrap().searcher();
            let stats = ClassStats { frequent: 1, ..ClassStats::default() };
            stats.refresh(&searcher, &[f.collection, f.level, f.comp, f.rel], &[f.title, f.body]).unwrap();
            let gone: BTreeSet<usize> = deleted.iter().copied().collect();
            let set = VisibleSet::build(&searcher, &filter(&f, &p), &stats).unwrap();
            let used = searcher.segment_readers().iter().filter(|s| set.uses_table(s.segment_id())).count();
            // The profile's own filter is a union of classes in every segment.
            prop_assert_eq!(used, searcher.segment_readers().len());
            let narrowed = BooleanQuery::new(vec![
                (Occur::Must, Box::new(filter(&f, &p)) as Box<dyn Query>),
                (Occur::Must, Box::new(TermQuery::new(Term::from_field_text(f.body, "alpha"), IndexRecordOption::Basic))),
            ]);
            let narrow = VisibleSet::build(&searcher, &narrowed, &stats).unwrap();
            for w in WORDS {
                let term = Term::from_field_text(f.body, w);
                let expected = docs.iter().enumerate()
                    .filter(|(i, d)| !gone.contains(i) && may_see(&p, d) && d.words.contains(&w))
                    .count() as u64;
                prop_assert_eq!(set.doc_freq(&searcher, &term).unwrap(), expected, "word {}", w);
                let expected_narrow = docs.iter().enumerate()
                    .filter(|(i, d)| !gone.contains(i) && may_see(&p, d) && d.words.contains(&"alpha") && d.words.contains(&w))
                    .count() as u64;
                prop_assert_eq!(narrow.doc_freq(&searcher, &term).unwrap(), expected_narrow, "narrowed, word {}", w);
            }
        }
    }
}
