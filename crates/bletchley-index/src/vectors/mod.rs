//! Nearest-neighbour search over chunk vectors, with the gate inside.
//!
//! Vectors are kept per *access class*: a collection and a marking. Whether a principal may see
//! a chunk depends on nothing else (the gate's `decide` takes exactly those two), so a class is
//! wholly visible or wholly invisible to a principal, and the gate is applied by choosing which
//! classes to search — with the gate's own `check_marking`, not a copy of its rules. Each class
//! has its own graph (HNSW, `hnsw.rs`) once it is larger than an exact scan is fast for; smaller
//! ones are scanned exactly. A principal's walk therefore never touches a vector it may not see,
//! and its results, their order, their scores and the work done (hence the time taken) are
//! functions of the visible classes alone: a store with extra items the principal may not see
//! gives it the same answer, bit for bit (`tests`, the two-store property).
//!
//! The index is derived data: it is rebuilt from the sealed vectors in the catalog when lost,
//! and its bytes ([`VectorIndex::to_bytes`]) rest sealed like the text index's files.

mod hnsw;

use std::collections::{BTreeMap, HashMap};

use bletchley_policy::{Admitted, CollectionId, Marking};

use crate::error::{Error, Result};

/// Classes with more chunks than this get a graph; smaller ones are scanned exactly (a scan of
/// this many 384-wide vectors takes about a millisecond).
pub const EXACT_MAX: usize = 4096;

/// Chunks a graph search considers per result asked for (at least [`MIN_EF`]).
const EF_PER_RESULT: usize = 8;
/// The fewest candidates a search over one graph keeps.
const MIN_EF: usize = 128;
/// Candidates beyond k that each graph of a search over several keeps at least.
const MIN_MARGIN: usize = 24;

/// Who may see a chunk: its item's collection and marking.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccessClass {
    /// The item's collection.
    pub collection: CollectionId,
    /// The item's marking, as written (equal banners are one class).
    pub marking: String,
}

impl AccessClass {
    /// The class of an item.
    pub fn of(collection: CollectionId, marking: &Marking) -> AccessClass {
        AccessClass {
            collection,
            marking: marking.render(),
        }
    }

    /// Whether the admitted principal may see this class: the collection was admitted and the
    /// gate accepts the marking. A marking that no longer parses is seen by no one.
    fn visible_to(&self, admitted: &Admitted) -> bool {
        admitted.ids().contains(&self.collection)
            && Marking::parse(&self.marking)
                .is_ok_and(|m| admitted.gate().check_marking(&m).is_ok())
    }
}

/// A chunk of an item: where its text is, for showing the passage that matched.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChunkRef {
    /// The item.
    pub item: String,
    /// The chunk's number within the item.
    pub chunk: u32,
    /// First byte of the chunk in the item's extracted text.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
}

/// An item found, with its best chunk.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorHit {
    /// The best-matching chunk.
    pub chunk: ChunkRef,
    /// Cosine similarity of that chunk to the query (vectors are unit length).
    pub score: f32,
}

#[derive(Clone, Debug, Default, PartialEq)]
struct ClassVectors {
    chunks: Vec<ChunkRef>,
    /// Row `i` is chunk `i`'s vector.
    data: Vec<f32>,
    /// Built once the class is larger than [`EXACT_MAX`]; `None` also after a removal, until
    /// the next [`VectorIndex::refresh`].
    graph: Option<hnsw::Graph>,
}

/// Chunk vectors of every item, by access class.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorIndex {
    dim: usize,
    classes: BTreeMap<AccessClass, ClassVectors>,
    /// Which class holds each item.
    class_of: HashMap<String, AccessClass>,
    /// Classes larger than this get a graph ([`EXACT_MAX`]; smaller in tests).
    exact_max: usize,
    /// Graphs wait for [`VectorIndex::refresh`] (a bulk load builds them once, in parallel).
    deferred: bool,
}

/// A 64-bit key for a chunk's level in the graph.
fn chunk_key(c: &ChunkRef) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in c.item.bytes().chain(c.chunk.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    h
}

impl VectorIndex {
    /// An empty index of `dim`-wide vectors.
    pub fn new(dim: usize) -> VectorIndex {
        VectorIndex {
            dim,
            classes: BTreeMap::new(),
            class_of: HashMap::new(),
            exact_max: EXACT_MAX,
            deferred: false,
        }
    }

    /// Holds back graph building until [`VectorIndex::refresh`], for loading many items at once
    /// (a rebuild): searches scan exactly until then.
    pub fn defer_graphs(&mut self) {
        self.deferred = true;
    }

    /// Width of the vectors.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Chunks held.
    pub fn len(&self) -> usize {
        self.classes.values().map(|c| c.chunks.len()).sum()
    }

    /// Whether no chunk is held.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }

    /// Whether an item's chunks are held.
    pub fn contains(&self, item: &str) -> bool {
        self.class_of.contains_key(item)
    }

    /// The access class an item's chunks are held in.
    pub fn class_of(&self, item: &str) -> Option<&AccessClass> {
        self.class_of.get(item)
    }

    /// An item's chunk vectors, in chunk order (none if it is not held).
    pub fn vectors_of(&self, item: &str) -> Vec<&[f32]> {
        let Some(c) = self.class_of.get(item).and_then(|c| self.classes.get(c)) else {
            return Vec::new();
        };
        c.chunks
            .iter()
            .enumerate()
            .filter(|(_, ch)| ch.item == item)
            .map(|(i, _)| &c.data[i * self.dim..(i + 1) * self.dim])
            .collect()
    }

    /// Every item whose chunks are held.
    pub fn items(&self) -> std::collections::HashSet<String> {
        self.class_of.keys().cloned().collect()
    }

    /// Adds an item's chunks (replacing any it had). Every vector must be `dim` wide, finite
    /// and of unit length (the similarity is an inner product).
    pub fn add(
        &mut self,
        class: AccessClass,
        item: &str,
        chunks: &[(u64, u64)],
        vectors: &[Vec<f32>],
    ) -> Result<()> {
        if chunks.len() != vectors.len() {
            return Err(Error::Query(format!(
                "{item}: {} chunks but {} vectors",
                chunks.len(),
                vectors.len()
            )));
        }
        for v in vectors {
            if v.len() != self.dim {
                return Err(Error::Query(format!(
                    "{item}: a vector of {} numbers where the index holds {}",
                    v.len(),
                    self.dim
                )));
            }
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            if !norm.is_finite() || (norm - 1.0).abs() > 1e-3 {
                return Err(Error::Query(format!(
                    "{item}: a vector of length {norm}, not 1"
                )));
            }
        }
        if self.contains(item) {
            self.remove(item);
        }
        let class_vectors = self.classes.entry(class.clone()).or_default();
        for (i, ((start, end), v)) in chunks.iter().zip(vectors).enumerate() {
            let chunk = ChunkRef {
                item: item.to_owned(),
                chunk: i as u32,
                start: *start,
                end: *end,
            };
            class_vectors.data.extend_from_slice(v);
            let level = hnsw::level_of(chunk_key(&chunk));
            class_vectors.chunks.push(chunk);
            if let Some(g) = &mut class_vectors.graph {
                g.insert(&class_vectors.data, self.dim, level);
            }
        }
        if !self.deferred
            && class_vectors.graph.is_none()
            && class_vectors.chunks.len() > self.exact_max
        {
            class_vectors.graph = Some(build(class_vectors, self.dim));
        }
        self.class_of.insert(item.to_owned(), class);
        Ok(())
    }

    /// Removes an item's chunks (shredded, or re-marked into another class). Its class's graph
    /// is dropped and rebuilt without them by [`VectorIndex::refresh`] (searches scan the class
    /// exactly until then), so no removed vector stays in any graph.
    pub fn remove(&mut self, item: &str) {
        let Some(class) = self.class_of.remove(item) else {
            return;
        };
        let dim = self.dim;
        if let Some(c) = self.classes.get_mut(&class) {
            let mut data = Vec::with_capacity(c.data.len());
            let mut chunks = Vec::with_capacity(c.chunks.len());
            for (i, ch) in c.chunks.drain(..).enumerate() {
                if ch.item != item {
                    data.extend_from_slice(&c.data[i * dim..(i + 1) * dim]);
                    chunks.push(ch);
                }
            }
            c.data = data;
            c.chunks = chunks;
            c.graph = None;
            if c.chunks.is_empty() {
                self.classes.remove(&class);
            }
        }
    }

    /// Builds the graphs that removals dropped or a bulk load deferred, one class per core.
    pub fn refresh(&mut self) {
        self.deferred = false;
        let dim = self.dim;
        let exact_max = self.exact_max;
        let mut todo: Vec<&mut ClassVectors> = self
            .classes
            .values_mut()
            .filter(|c| c.graph.is_none() && c.chunks.len() > exact_max)
            .collect();
        // Largest first, so the longest build starts at once.
        todo.sort_by_key(|c| std::cmp::Reverse(c.chunks.len()));
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let queue = std::sync::Mutex::new(todo.into_iter());
        std::thread::scope(|s| {
            for _ in 0..threads {
                s.spawn(|| {
                    loop {
                        let next = match queue.lock() {
                            Ok(mut q) => q.next(),
                            Err(_) => None,
                        };
                        let Some(c) = next else { break };
                        c.graph = Some(build(c, dim));
                    }
                });
            }
        });
    }

    /// The `k` items nearest `query` (one hit per item: its best chunk) among those the admitted
    /// principal may see, nearest first, ties by item id. Exact in classes of up to
    /// [`EXACT_MAX`] chunks, or everywhere with `exact`.
    pub fn search(
        &self,
        admitted: &Admitted,
        query: &[f32],
        k: usize,
        exact: bool,
    ) -> Result<Vec<VectorHit>> {
        if query.len() != self.dim {
            return Err(Error::Query(format!(
                "a query vector of {} numbers where the index holds {}",
                query.len(),
                self.dim
            )));
        }
        let visible: Vec<(&AccessClass, &ClassVectors)> = self
            .classes
            .iter()
            .filter(|(class, _)| class.visible_to(admitted))
            .collect();
        // The k nearest overall are spread over the classes searched: each graph keeps fewer
        // candidates the more classes share the answer, never fewer than k and a margin.
        let graphs = visible
            .iter()
            .filter(|(_, c)| c.graph.is_some())
            .count()
            .max(1);
        let ef = ((k * EF_PER_RESULT).max(MIN_EF) / graphs).max(k + MIN_MARGIN);
        let mut best: HashMap<&str, (f32, &ChunkRef)> = HashMap::new();
        for (_, c) in visible {
            let mut offer = |i: usize, sim: f32| {
                let ch = &c.chunks[i];
                let e = best.entry(ch.item.as_str()).or_insert((sim, ch));
                if sim > e.0 || (sim == e.0 && ch.chunk < e.1.chunk) {
                    *e = (sim, ch);
                }
            };
            match (&c.graph, exact) {
                (Some(g), false) => {
                    for (node, sim) in g.search(&c.data, self.dim, query, ef) {
                        offer(node as usize, sim);
                    }
                }
                _ => {
                    for (i, row) in c.data.chunks_exact(self.dim).enumerate() {
                        offer(i, hnsw::dot(query, row));
                    }
                }
            }
        }
        let mut hits: Vec<VectorHit> = best
            .into_values()
            .map(|(score, chunk)| VectorHit {
                chunk: chunk.clone(),
                score,
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.chunk.item.cmp(&b.chunk.item))
        });
        hits.truncate(k);
        Ok(hits)
    }

    /// Writes the index into the sealed index directory (`vectors.sealed`, sealed under the
    /// index key and bound to that name), with the catalog generation it was reconciled at, so
    /// that a handle opening it knows what to catch up with.
    pub fn save(&self, dir: &crate::sealed_dir::SealedDirectory, generation: u64) -> Result<()> {
        use tantivy::Directory;
        let mut bytes = generation.to_le_bytes().to_vec();
        bytes.extend_from_slice(&self.to_bytes());
        dir.atomic_write(std::path::Path::new(FILE), &bytes)
            .map_err(|e| Error::Io(FILE.into(), e))
    }

    /// Reads the index [`VectorIndex::save`] wrote and its generation; `None` when there is
    /// none yet. A file that does not open under the key and name, or does not parse, is an
    /// error: the caller rebuilds the index from the catalog.
    pub fn load(dir: &crate::sealed_dir::SealedDirectory) -> Result<Option<(u64, VectorIndex)>> {
        use tantivy::Directory;
        use tantivy::directory::error::OpenReadError;
        let bytes = match dir.atomic_read(std::path::Path::new(FILE)) {
            Ok(b) => b,
            Err(OpenReadError::FileDoesNotExist(_)) => return Ok(None),
            Err(e) => {
                return Err(Error::Io(
                    FILE.into(),
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
                ));
            }
        };
        if bytes.len() < 8 {
            return Err(damaged("cut short"));
        }
        let (head, body) = bytes.split_at(8);
        let mut g = [0u8; 8];
        g.copy_from_slice(head);
        Ok(Some((
            u64::from_le_bytes(g),
            VectorIndex::from_bytes(body)?,
        )))
    }

    /// The index as bytes, to be sealed by the caller.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(self.len() * (self.dim * 4 + 64) + 64);
        w.extend_from_slice(MAGIC);
        put_u32(&mut w, self.dim as u32);
        put_u32(&mut w, self.classes.len() as u32);
        for (class, c) in &self.classes {
            put_u32(&mut w, class.collection.0);
            put_str(&mut w, &class.marking);
            put_u32(&mut w, c.chunks.len() as u32);
            for ch in &c.chunks {
                put_str(&mut w, &ch.item);
                put_u32(&mut w, ch.chunk);
                w.extend_from_slice(&ch.start.to_le_bytes());
                w.extend_from_slice(&ch.end.to_le_bytes());
            }
            for x in &c.data {
                w.extend_from_slice(&x.to_le_bytes());
            }
            match &c.graph {
                None => w.push(0),
                Some(g) => {
                    w.push(1);
                    put_u32(&mut w, g.entry.unwrap_or(u32::MAX));
                    for levels in &g.links {
                        w.push(levels.len() as u8);
                        for l in levels {
                            put_u32(&mut w, l.len() as u32);
                            for n in l {
                                put_u32(&mut w, *n);
                            }
                        }
                    }
                }
            }
        }
        w
    }

    /// Reads what [`VectorIndex::to_bytes`] wrote; anything else is refused as damaged.
    pub fn from_bytes(bytes: &[u8]) -> Result<VectorIndex> {
        let mut r = Reader { bytes, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(damaged("not a vector index"));
        }
        let dim = r.u32()? as usize;
        if dim == 0 || dim > 65_536 {
            return Err(damaged("vector width out of range"));
        }
        let mut index = VectorIndex::new(dim);
        let classes = r.u32()?;
        for _ in 0..classes {
            let class = AccessClass {
                collection: CollectionId(r.u32()?),
                marking: r.str()?,
            };
            let n = r.u32()? as usize;
            // Every chunk takes at least its vector's bytes: a count larger than the rest of
            // the file is refused before anything is allocated for it.
            if n.saturating_mul(dim * 4) > r.left() {
                return Err(damaged("more chunks than bytes"));
            }
            let mut c = ClassVectors::default();
            for _ in 0..n {
                let chunk = ChunkRef {
                    item: r.str()?,
                    chunk: r.u32()?,
                    start: r.u64()?,
                    end: r.u64()?,
                };
                index.class_of.insert(chunk.item.clone(), class.clone());
                c.chunks.push(chunk);
            }
            c.data = r
                .take(n * dim * 4)?
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            if r.u8()? == 1 {
                let entry = r.u32()?;
                let mut links = Vec::with_capacity(n);
                for _ in 0..n {
                    let levels = r.u8()? as usize;
                    let mut node = Vec::with_capacity(levels);
                    for _ in 0..levels {
                        let m = r.u32()? as usize;
                        if m.saturating_mul(4) > r.left() {
                            return Err(damaged("more links than bytes"));
                        }
                        let mut l = Vec::with_capacity(m);
                        for _ in 0..m {
                            let to = r.u32()?;
                            if to as usize >= n {
                                return Err(damaged("a link to no node"));
                            }
                            l.push(to);
                        }
                        node.push(l);
                    }
                    links.push(node);
                }
                let entry = (entry != u32::MAX).then_some(entry);
                if entry.is_some_and(|e| e as usize >= n) || links.iter().any(|l| l.is_empty()) {
                    return Err(damaged("a graph without its levels"));
                }
                c.graph = Some(hnsw::Graph { links, entry });
            }
            index.classes.insert(class, c);
        }
        if r.left() != 0 {
            return Err(damaged("bytes after the end"));
        }
        Ok(index)
    }
}

fn build(c: &ClassVectors, dim: usize) -> hnsw::Graph {
    let mut g = hnsw::Graph::default();
    for (i, ch) in c.chunks.iter().enumerate() {
        g.insert(&c.data[..(i + 1) * dim], dim, hnsw::level_of(chunk_key(ch)));
    }
    g
}

const MAGIC: &[u8] = b"bletchley-vectors/1\n";

/// The vector index's file in the sealed index directory.
const FILE: &str = "vectors.sealed";

fn damaged(why: &str) -> Error {
    Error::Read(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("the vector index is damaged: {why}"),
    ))
}

fn put_u32(w: &mut Vec<u8>, v: u32) {
    w.extend_from_slice(&v.to_le_bytes());
}

fn put_str(w: &mut Vec<u8>, s: &str) {
    put_u32(w, s.len() as u32);
    w.extend_from_slice(s.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn left(&self) -> usize {
        self.bytes.len() - self.at
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.left() {
            return Err(damaged("cut short"));
        }
        let out = &self.bytes[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
    fn str(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| damaged("a name that is not UTF-8"))
    }
}

#[cfg(test)]
mod tests;
