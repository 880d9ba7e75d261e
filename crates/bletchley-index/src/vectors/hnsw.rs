//! A hierarchical navigable small-world graph (Malkov and Yashunin, 2016) over unit vectors,
//! similarity by inner product.
//!
//! Deterministic: a node's level comes from a hash of its key, not from a random generator, and
//! nodes are inserted in the order given, so the same vectors in the same order make the same
//! graph. That is what lets two stores that differ only by what a principal may not see give that
//! principal the same answers: each access class has its own graph (see `vectors::mod`).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// The nodes a search has reached: one bit per node (a hash set costs more than the distance).
struct Visited(Vec<u64>);

impl Visited {
    fn new(nodes: usize) -> Visited {
        Visited(vec![0; nodes.div_ceil(64)])
    }

    /// Marks `node`; false if it was marked already (or is not a node).
    fn insert(&mut self, node: u32) -> bool {
        let (word, bit) = (node as usize / 64, 1u64 << (node % 64));
        match self.0.get_mut(word) {
            Some(w) if *w & bit == 0 => {
                *w |= bit;
                true
            }
            _ => false,
        }
    }
}

/// Links per node on the upper levels.
const M: usize = 16;
/// Links per node on the ground level.
const M0: usize = 2 * M;
/// Candidates kept while a node is inserted.
const EF_CONSTRUCTION: usize = 128;
/// The highest level a node can have (a million nodes need about five).
const MAX_LEVEL: usize = 12;

/// Inner product of two equal-length vectors.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight running sums let the compiler keep them in vector registers.
    let mut acc = [0f32; 8];
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    for (x, y) in ca.iter().zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// A node and its similarity to the query, ordered by similarity (then by node, for ties).
#[derive(Clone, Copy, PartialEq)]
struct Near {
    sim: f32,
    node: u32,
}

impl Eq for Near {}

impl Ord for Near {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sim
            .total_cmp(&other.sim)
            .then_with(|| other.node.cmp(&self.node))
    }
}

impl PartialOrd for Near {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// The graph; the vectors live with the caller (node `i` is `vectors[i * dim..][..dim]`).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Graph {
    /// Per node, per level from 0 up to its own, its neighbours.
    pub(crate) links: Vec<Vec<Vec<u32>>>,
    /// The node searches start from (the highest).
    pub(crate) entry: Option<u32>,
}

/// A node's level from its 64-bit key: geometric with ratio 1/M, as the paper draws it.
pub(crate) fn level_of(key: u64) -> usize {
    // splitmix64 spreads nearby keys.
    let mut z = key.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let u = ((z >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let level = (-u.ln() / (M as f64).ln()).floor();
    (level as usize).min(MAX_LEVEL)
}

struct Space<'a> {
    vectors: &'a [f32],
    dim: usize,
}

impl Space<'_> {
    fn vector(&self, node: u32) -> &[f32] {
        &self.vectors[node as usize * self.dim..][..self.dim]
    }
    fn sim(&self, q: &[f32], node: u32) -> f32 {
        dot(q, self.vector(node))
    }
}

impl Graph {
    /// Adds node `links.len()` (its vector already in `vectors`) at `level`.
    pub(crate) fn insert(&mut self, vectors: &[f32], dim: usize, level: usize) {
        let space = Space { vectors, dim };
        let node = self.links.len() as u32;
        self.links.push(vec![Vec::new(); level + 1]);
        let Some(mut entry) = self.entry else {
            self.entry = Some(node);
            return;
        };
        let q = space.vector(node).to_vec();
        let top = self.links[entry as usize].len() - 1;
        let mut nearest = Near {
            sim: space.sim(&q, entry),
            node: entry,
        };
        for l in (level + 1..=top).rev() {
            nearest = self.greedy(&space, &q, nearest, l);
        }
        let mut found = vec![nearest];
        for l in (0..=level.min(top)).rev() {
            found = self.search_level(&space, &q, &found, EF_CONSTRUCTION, l);
            let chosen = select(&space, &found, if l == 0 { M0 } else { M });
            self.links[node as usize][l] = chosen.iter().map(|n| n.node).collect();
            for n in &chosen {
                self.link_back(&space, n.node, node, l);
            }
        }
        if level > top {
            entry = node;
            self.entry = Some(entry);
        }
    }

    /// Adds `node` to `to`'s neighbours at `level`, pruning them back to the limit.
    fn link_back(&mut self, space: &Space, to: u32, node: u32, level: usize) {
        let limit = if level == 0 { M0 } else { M };
        let list = &mut self.links[to as usize][level];
        list.push(node);
        if list.len() <= limit {
            return;
        }
        let base = space.vector(to).to_vec();
        let mut near: Vec<Near> = list
            .iter()
            .map(|&n| Near {
                sim: space.sim(&base, n),
                node: n,
            })
            .collect();
        near.sort_by(|a, b| b.cmp(a));
        let kept = select(space, &near, limit);
        self.links[to as usize][level] = kept.iter().map(|n| n.node).collect();
    }

    fn greedy(&self, space: &Space, q: &[f32], mut best: Near, level: usize) -> Near {
        loop {
            let mut moved = false;
            for &n in &self.links[best.node as usize][level] {
                let sim = space.sim(q, n);
                let cand = Near { sim, node: n };
                if cand > best {
                    best = cand;
                    moved = true;
                }
            }
            if !moved {
                return best;
            }
        }
    }

    /// The `ef` nodes nearest `q` reachable at `level` from `entries`, nearest first.
    fn search_level(
        &self,
        space: &Space,
        q: &[f32],
        entries: &[Near],
        ef: usize,
        level: usize,
    ) -> Vec<Near> {
        let mut visited = Visited::new(self.links.len());
        for e in entries {
            visited.insert(e.node);
        }
        // Candidates to expand, nearest on top; results, farthest on top.
        let mut candidates: BinaryHeap<Near> = entries.iter().copied().collect();
        let mut results: BinaryHeap<std::cmp::Reverse<Near>> =
            entries.iter().copied().map(std::cmp::Reverse).collect();
        while let Some(c) = candidates.pop() {
            let worst = results.peek().map(|r| r.0);
            if let Some(w) = worst
                && results.len() >= ef
                && c < w
            {
                break;
            }
            let Some(levels) = self.links.get(c.node as usize) else {
                continue;
            };
            for &n in levels.get(level).map(Vec::as_slice).unwrap_or_default() {
                if !visited.insert(n) {
                    continue;
                }
                let cand = Near {
                    sim: space.sim(q, n),
                    node: n,
                };
                let worst = results.peek().map(|r| r.0);
                if results.len() < ef || worst.is_some_and(|w| cand > w) {
                    candidates.push(cand);
                    results.push(std::cmp::Reverse(cand));
                    if results.len() > ef {
                        results.pop();
                    }
                }
            }
        }
        let mut out: Vec<Near> = results.into_iter().map(|r| r.0).collect();
        out.sort_by(|a, b| b.cmp(a));
        out
    }

    /// The `ef` nodes nearest `q` (approximately), nearest first, as (node, similarity).
    pub(crate) fn search(
        &self,
        vectors: &[f32],
        dim: usize,
        q: &[f32],
        ef: usize,
    ) -> Vec<(u32, f32)> {
        let space = Space { vectors, dim };
        let Some(entry) = self.entry else {
            return Vec::new();
        };
        let top = self.links[entry as usize].len() - 1;
        let mut nearest = Near {
            sim: space.sim(q, entry),
            node: entry,
        };
        for l in (1..=top).rev() {
            nearest = self.greedy(&space, q, nearest, l);
        }
        self.search_level(&space, q, &[nearest], ef.max(1), 0)
            .into_iter()
            .map(|n| (n.node, n.sim))
            .collect()
    }
}

/// The paper's neighbour heuristic: take candidates nearest first, skipping one that is nearer
/// to a neighbour already taken than to the base, so links spread in every direction; fill up
/// with the skipped ones if fewer than `limit` were taken.
fn select(space: &Space, sorted: &[Near], limit: usize) -> Vec<Near> {
    let mut kept: Vec<Near> = Vec::with_capacity(limit);
    let mut skipped = Vec::new();
    for &c in sorted {
        if kept.len() >= limit {
            break;
        }
        let cv = space.vector(c.node);
        if kept.iter().all(|k| dot(cv, space.vector(k.node)) < c.sim) {
            kept.push(c);
        } else {
            skipped.push(c);
        }
    }
    for s in skipped {
        if kept.len() >= limit {
            break;
        }
        kept.push(s);
    }
    kept
}
