//! The best documents by a key, with every document tied at the boundary,
//! in one pass.
//!
//! A page must not depend on where documents sit in the index (rule 1:
//! invisible documents shift positions), so ties are broken by item id,
//! which is stored, not fast. That needs every document whose key equals
//! the page's last key, however many there are. Fetching the top `k` and
//! fetching again with a larger `k` whenever the tie group ran past it
//! searched some queries twice or more: on a million documents, BM25
//! scores tie often (field lengths are quantised), and the second search
//! was most of the 99th percentile. This collector keeps, per segment, the
//! best `want` documents and every document tied with the worst of them,
//! and the merge keeps exactly the documents whose key is at least the
//! overall `want`-th best.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal, SegmentReader};

/// What documents are ranked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RankBy {
    /// The query's score.
    Score,
    /// An `i64` fast field, largest first.
    Newest(&'static str),
}

/// The best `want` documents by [`RankBy`], largest key first, followed by
/// every other document tied with the `want`-th.
pub(crate) struct TopWithTies {
    want: usize,
    by: RankBy,
}

impl TopWithTies {
    /// At least `want` (if that many match) and every tie at the boundary.
    pub(crate) fn new(want: usize, by: RankBy) -> Self {
        TopWithTies {
            want: want.max(1),
            by,
        }
    }
}

/// A key with a total order (scores are never NaN, but the order must not
/// depend on it).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Key(f64);

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// [`TopWithTies`] within one segment.
pub(crate) struct SegmentTopWithTies {
    want: usize,
    segment: SegmentOrdinal,
    column: Option<Column<i64>>,
    /// The best `want` so far, worst on top.
    best: BinaryHeap<Reverse<(Key, DocId)>>,
    /// Documents outside `best` whose key equals the worst in `best`.
    ties: Vec<DocId>,
}

impl SegmentTopWithTies {
    fn key(&self, doc: DocId, score: Score) -> Key {
        match &self.column {
            None => Key(f64::from(score)),
            // A document without the field ranks last. Milliseconds since
            // 1970 are far below 2^53, so the conversion is exact.
            Some(c) => Key(c.first(doc).map_or(f64::NEG_INFINITY, |v| v as f64)),
        }
    }
}

impl Collector for TopWithTies {
    type Fruit = Vec<(f64, DocAddress)>;
    type Child = SegmentTopWithTies;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTopWithTies> {
        let column = match self.by {
            RankBy::Score => None,
            RankBy::Newest(field) => Some(reader.fast_fields().i64(field)?),
        };
        Ok(SegmentTopWithTies {
            want: self.want,
            segment,
            column,
            best: BinaryHeap::with_capacity(self.want + 1),
            ties: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.by == RankBy::Score
    }

    fn merge_fruits(
        &self,
        fruits: Vec<Vec<(f64, DocAddress)>>,
    ) -> tantivy::Result<Vec<(f64, DocAddress)>> {
        let mut all: Vec<(f64, DocAddress)> = fruits.into_iter().flatten().collect();
        all.sort_by(|a, b| b.0.total_cmp(&a.0));
        // Each segment kept everything at or above its own boundary, and the
        // overall boundary is at or above every segment's: cutting at it
        // keeps exactly the documents at or above it.
        if let Some(&(boundary, _)) = all.get(self.want - 1) {
            let keep = all.partition_point(|(k, _)| k.total_cmp(&boundary) != Ordering::Less);
            all.truncate(keep);
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentTopWithTies {
    type Fruit = Vec<(f64, DocAddress)>;

    fn collect(&mut self, doc: DocId, score: Score) {
        let key = self.key(doc, score);
        if self.best.len() < self.want {
            self.best.push(Reverse((key, doc)));
            return;
        }
        let Some(&Reverse((worst, _))) = self.best.peek() else {
            return;
        };
        match key.cmp(&worst) {
            Ordering::Less => {}
            Ordering::Equal => self.ties.push(doc),
            Ordering::Greater => {
                if let Some(Reverse((_, out))) = self.best.pop() {
                    self.best.push(Reverse((key, doc)));
                    match self.best.peek() {
                        // The boundary stayed: the document pushed out is tied with it.
                        Some(Reverse((w, _))) if *w == worst => self.ties.push(out),
                        // The boundary rose past every earlier tie.
                        _ => self.ties.clear(),
                    }
                }
            }
        }
    }

    fn harvest(self) -> Vec<(f64, DocAddress)> {
        let segment = self.segment;
        let boundary = self.best.peek().map(|Reverse((w, _))| w.0);
        let mut out: Vec<(f64, DocAddress)> = self
            .best
            .into_iter()
            .map(|Reverse((k, d))| (k.0, DocAddress::new(segment, d)))
            .collect();
        if let Some(b) = boundary {
            out.extend(
                self.ties
                    .into_iter()
                    .map(|d| (b, DocAddress::new(segment, d))),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Feeds `keys` (one per document, as scores) through a segment
    /// collector and merges, with documents spread over `segments`.
    fn run(keys: &[u8], want: usize, segments: usize) -> Vec<(f64, DocAddress)> {
        let c = TopWithTies::new(want, RankBy::Score);
        let mut fruits = Vec::new();
        for s in 0..segments {
            let mut seg = SegmentTopWithTies {
                want: c.want,
                segment: s as u32,
                column: None,
                best: BinaryHeap::new(),
                ties: Vec::new(),
            };
            for (doc, k) in keys.iter().enumerate().filter(|(d, _)| d % segments == s) {
                seg.collect(doc as DocId, Score::from(*k));
            }
            fruits.push(seg.harvest());
        }
        c.merge_fruits(fruits).unwrap()
    }

    proptest! {
        /// The result is exactly the documents whose key is at least the
        /// `want`-th largest (all of them when fewer match), worked out here
        /// by sorting every key.
        #[test]
        fn keeps_the_best_and_every_tie_at_the_boundary(
            keys in proptest::collection::vec(0u8..6, 0..200),
            want in 1usize..30,
            segments in 1usize..4,
        ) {
            let got = run(&keys, want, segments);
            let mut sorted: Vec<u8> = keys.clone();
            sorted.sort_unstable_by(|a, b| b.cmp(a));
            let expected: Vec<(usize, u8)> = match sorted.get(want - 1) {
                None => keys.iter().copied().enumerate().collect(),
                Some(b) => keys.iter().copied().enumerate().filter(|(_, k)| k >= b).collect(),
            };
            let mut got_docs: Vec<(usize, u8)> = got
                .iter()
                .map(|(k, a)| {
                    let doc = a.doc_id as usize;
                    prop_assert_eq!(doc % segments, a.segment_ord as usize);
                    prop_assert_eq!(*k, f64::from(keys[doc]));
                    Ok((doc, keys[doc]))
                })
                .collect::<Result<_, _>>()?;
            got_docs.sort_unstable();
            prop_assert_eq!(got_docs, expected);
            // Largest first.
            prop_assert!(got.windows(2).all(|w| w[0].0 >= w[1].0));
        }
    }
}
