//! An item's sentence-embedding vectors: what the embedding job makes and the vector index
//! takes.
//!
//! One row per item, sealed under the item's own data key and bound to its id
//! ([`crate::Platform::store_vectors`]), so it opens only where the item does and is gone with
//! the item's key when the item is shredded. The row decides nothing about access (the vector
//! index takes each item's collection and marking from its sealed metadata, never from here),
//! so the integrity record does not digest it: a row the host deletes is an item missing from
//! semantic search, and one it puts back from earlier is the same item's vectors.

use rusqlite::{OptionalExtension, params};

use crate::catalog::SqliteCatalog;
use crate::error::{Error, Result};

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS item_vectors(
  item_id TEXT PRIMARY KEY,
  sealed BLOB NOT NULL);
";

/// The widest vector an item may hold (the widest sentence-embedding models give 4,096).
pub const MAX_DIM: usize = 8192;

/// The most chunks an item may hold (the embedding command's own limit is 10,000).
pub const MAX_CHUNKS: usize = 100_000;

const MAGIC: &[u8; 6] = b"BVEC1\n";

/// A stretch of an item's extracted text and its vector.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorChunk {
    /// First byte of the chunk in the item's extracted text.
    pub start: u64,
    /// One past its last byte.
    pub end: u64,
    /// Unit-length vector of the chunk.
    pub vector: Vec<f32>,
}

/// Every chunk vector of one item, with the model that made them.
#[derive(Clone, Debug, PartialEq)]
pub struct ItemVectors {
    /// The model's name as installed (`all-minilm-l6-v2`): vectors of different models are
    /// never compared.
    pub model: String,
    /// Width of every vector.
    pub dim: usize,
    /// The chunks, in text order.
    pub chunks: Vec<VectorChunk>,
}

impl ItemVectors {
    /// The row's plaintext: a small header, the chunks' byte ranges, then the vectors as
    /// little-endian `f32`.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        self.check()?;
        let mut out =
            Vec::with_capacity(32 + self.model.len() + self.chunks.len() * (16 + 4 * self.dim));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&(self.model.len() as u16).to_le_bytes());
        out.extend_from_slice(self.model.as_bytes());
        out.extend_from_slice(&(self.dim as u32).to_le_bytes());
        out.extend_from_slice(&(self.chunks.len() as u32).to_le_bytes());
        for c in &self.chunks {
            out.extend_from_slice(&c.start.to_le_bytes());
            out.extend_from_slice(&c.end.to_le_bytes());
        }
        for c in &self.chunks {
            for x in &c.vector {
                out.extend_from_slice(&x.to_le_bytes());
            }
        }
        Ok(out)
    }

    /// Reads what [`ItemVectors::to_bytes`] wrote, checking every length.
    pub fn from_bytes(bytes: &[u8]) -> Result<ItemVectors> {
        let bad = |why: &str| Error::Layout(format!("an item's vectors are unreadable: {why}"));
        let rest = bytes.strip_prefix(MAGIC).ok_or_else(|| bad("no header"))?;
        let mut at = 0usize;
        let mut take = |n: usize| -> Result<&[u8]> {
            let end = at.checked_add(n).filter(|&e| e <= rest.len());
            let end = end.ok_or_else(|| bad("cut short"))?;
            let s = &rest[at..end];
            at = end;
            Ok(s)
        };
        let u16_at = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]) as usize;
        let u32_at = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize;
        let model_len = u16_at(take(2)?);
        let model = std::str::from_utf8(take(model_len)?)
            .map_err(|_| bad("the model's name is not UTF-8"))?
            .to_owned();
        let dim = u32_at(take(4)?);
        let n = u32_at(take(4)?);
        if dim == 0 || dim > MAX_DIM || n > MAX_CHUNKS {
            return Err(bad(&format!("{n} vectors of {dim} numbers")));
        }
        let mut ranges = Vec::with_capacity(n);
        for _ in 0..n {
            let r = take(16)?;
            let mut s = [0u8; 8];
            let mut e = [0u8; 8];
            s.copy_from_slice(&r[..8]);
            e.copy_from_slice(&r[8..]);
            ranges.push((u64::from_le_bytes(s), u64::from_le_bytes(e)));
        }
        let mut chunks = Vec::with_capacity(n);
        for (start, end) in ranges {
            let raw = take(4 * dim)?;
            let vector = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            chunks.push(VectorChunk { start, end, vector });
        }
        if at != rest.len() {
            return Err(bad("bytes after the last vector"));
        }
        let v = ItemVectors { model, dim, chunks };
        v.check()?;
        Ok(v)
    }

    /// Every vector `dim` wide, finite and of unit length; ranges in order.
    pub fn check(&self) -> Result<()> {
        let bad = |why: String| Error::Invalid(format!("item vectors: {why}"));
        if self.model.is_empty() || self.model.len() > 200 {
            return Err(bad("a model is named in 1 to 200 bytes".into()));
        }
        if self.dim == 0 || self.dim > MAX_DIM {
            return Err(bad(format!("vectors of {} numbers", self.dim)));
        }
        if self.chunks.len() > MAX_CHUNKS {
            return Err(bad(format!(
                "{} chunks (at most {MAX_CHUNKS})",
                self.chunks.len()
            )));
        }
        for (i, c) in self.chunks.iter().enumerate() {
            if c.vector.len() != self.dim {
                return Err(bad(format!(
                    "chunk {i} has {} numbers, not {}",
                    c.vector.len(),
                    self.dim
                )));
            }
            let norm = c.vector.iter().map(|x| x * x).sum::<f32>().sqrt();
            if !norm.is_finite() || (norm - 1.0).abs() > 1e-3 {
                return Err(bad(format!("chunk {i} has length {norm}, not 1")));
            }
            if c.start > c.end {
                return Err(bad(format!("chunk {i} ends before it starts")));
            }
        }
        Ok(())
    }
}

impl SqliteCatalog {
    /// Stores (replacing) sealed vector rows in one transaction that also moves the items
    /// generation, so the vector index, synced at a generation, takes them up.
    pub(crate) fn set_item_vectors(&self, rows: &[(String, Vec<u8>)]) -> Result<()> {
        self.guarded(&["items"], |tx| {
            for (id, sealed) in rows {
                let n = tx
                    .prepare_cached(
                        "INSERT INTO item_vectors(item_id, sealed) SELECT id, ?2 FROM items WHERE id = ?1
                         ON CONFLICT(item_id) DO UPDATE SET sealed = excluded.sealed",
                    )?
                    .execute(params![id, sealed])?;
                if n != 1 {
                    return Err(Error::NotFoundOrNotPermitted { reason: None });
                }
            }
            crate::catalog::bump_items_generation(tx)?;
            Ok(())
        })
    }

    /// An item's sealed vector row.
    pub(crate) fn item_vectors(&self, id: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .prepare_cached("SELECT sealed FROM item_vectors WHERE item_id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    /// Ids of the items that have vectors.
    pub(crate) fn item_vector_ids(&self) -> Result<Vec<String>> {
        let mut st = self
            .conn
            .prepare("SELECT v.item_id FROM item_vectors v JOIN items i ON i.id = v.item_id")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn unit(v: Vec<f32>) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    proptest! {
        #[test]
        fn bytes_round_trip_and_every_cut_is_refused(
            dim in 1usize..24,
            n in 0usize..6,
            seed in any::<u32>(),
            cut in any::<prop::sample::Index>(),
        ) {
            let chunks = (0..n)
                .map(|i| VectorChunk {
                    start: i as u64 * 10,
                    end: i as u64 * 10 + 12,
                    vector: unit((0..dim).map(|j| 1.0 + ((seed as usize + i * 7 + j * 3) % 11) as f32).collect()),
                })
                .collect();
            let v = ItemVectors { model: "m".into(), dim, chunks };
            let bytes = v.to_bytes().expect("bytes");
            prop_assert_eq!(ItemVectors::from_bytes(&bytes).expect("read"), v);
            let at = cut.index(bytes.len());
            prop_assert!(ItemVectors::from_bytes(&bytes[..at]).is_err());
            let mut longer = bytes.clone();
            longer.push(0);
            prop_assert!(ItemVectors::from_bytes(&longer).is_err());
        }
    }

    #[test]
    fn vectors_that_are_not_unit_length_or_the_wrong_width_are_refused() {
        let v = ItemVectors {
            model: "m".into(),
            dim: 2,
            chunks: vec![VectorChunk {
                start: 0,
                end: 1,
                vector: vec![3.0, 4.0],
            }],
        };
        assert!(v.to_bytes().is_err());
        let w = ItemVectors {
            model: "m".into(),
            dim: 3,
            chunks: vec![VectorChunk {
                start: 0,
                end: 1,
                vector: vec![0.6, 0.8],
            }],
        };
        assert!(w.to_bytes().is_err());
        let nan = ItemVectors {
            model: "m".into(),
            dim: 2,
            chunks: vec![VectorChunk {
                start: 0,
                end: 1,
                vector: vec![f32::NAN, 1.0],
            }],
        };
        assert!(nan.to_bytes().is_err());
    }
}
