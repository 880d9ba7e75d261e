//! Attention of a decoding step over host rows: the audio's keys and values (fixed for a
//! window) and the tokens' own keys and values (growing by one row per step), attended with the
//! dot-product kernels of `simd.rs`. One query against a few hundred or 1,500 keys is a few
//! microseconds of arithmetic, which general matrix calls and tensor concatenation bury in
//! overhead and copies.

use candle_core::Tensor;
use rayon::prelude::*;

use super::simd::{Kernels, Row};
use crate::error::{Error, Result};

/// Host rows in f32 or as half-precision bit patterns.
enum Stored {
    F32(Vec<f32>),
    F16(Vec<u16>),
}

impl Stored {
    fn new(values: Vec<f32>, half: bool) -> Self {
        if half {
            Stored::F16(
                values
                    .iter()
                    .map(|&v| half::f16::from_f32(v).to_bits())
                    .collect(),
            )
        } else {
            Stored::F32(values)
        }
    }

    /// `count` rows of `width` from row `first`.
    fn rows(&self, first: usize, count: usize, width: usize) -> Vec<Row<'_>> {
        (first..first + count)
            .map(|r| match self {
                Stored::F32(v) => Row::F32(&v[r * width..][..width]),
                Stored::F16(v) => Row::F16(&v[r * width..][..width]),
            })
            .collect()
    }
}

/// One layer's cross-attention keys and values of one audio window as host rows.
pub(crate) struct CrossRows {
    /// [heads][d/heads][time]: keys transposed, so that a query's scores are a weighted sum
    /// of rows over the time axis.
    k_t: Stored,
    /// [heads][d/heads][time]: one row per value dimension.
    v_t: Stored,
    pub heads: usize,
    pub time: usize,
    pub head_dim: usize,
    kernels: Kernels,
}

impl CrossRows {
    /// From the keys [1, heads, d/heads, time] and values [1, heads, time, d/heads] of one
    /// audio (beams share it); `None` off the CPU or for a batch of several audios.
    ///
    /// `half` keeps them as f16: every decoding step reads all of them (6 layers × 2 × 1,500 ×
    /// 512 values in Whisper base: 37 MB in f32), so halving them halves the largest share of a
    /// step's memory traffic after the weights. Rounding audio states to f16 is what
    /// CTranslate2's float16 and int8_float16 modes do too; f32 stays exact.
    pub fn new(k_t: &Tensor, v: &Tensor, half: bool) -> Result<Option<Self>> {
        let (b, heads, head_dim, time) = k_t.dims4()?;
        if b != 1 || !k_t.device().is_cpu() {
            return Ok(None);
        }
        let flat = |t: Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        let kernels = Kernels::detect();
        // Widening f16 one value at a time would cost more than the traffic it saves.
        let half = half && kernels.wide();
        Ok(Some(CrossRows {
            k_t: Stored::new(flat(k_t.contiguous()?)?, half),
            v_t: Stored::new(flat(v.transpose(2, 3)?.contiguous()?)?, half),
            heads,
            time,
            head_dim,
            kernels,
        }))
    }

    /// Attends `q` [rows × heads·head_dim] (already scaled); returns the outputs
    /// [rows × heads·head_dim] and, when asked, the attention weights [rows × heads × time]
    /// (empty otherwise).
    ///
    /// One task per head takes every row (the hypotheses of a beam), so the head's keys and
    /// values are read from memory once per step, not once per hypothesis.
    pub fn attend(&self, q: &[f32], want_weights: bool) -> (Vec<f32>, Vec<f32>) {
        let (hd, s, heads) = (self.head_dim, self.time, self.heads);
        let d = heads * hd;
        let rows = q.len() / d.max(1);
        let per_head: Vec<(Vec<f32>, Vec<f32>)> = (0..heads)
            .into_par_iter()
            .map(|h| {
                let k_t = self.k_t.rows(h * hd, hd, s);
                let v_t = self.v_t.rows(h * hd, hd, s);
                let mut w = vec![0f32; rows * s];
                let mut out = vec![0f32; rows * hd];
                for (r, (w, out)) in w.chunks_mut(s).zip(out.chunks_mut(hd)).enumerate() {
                    self.kernels.axpys(&q[r * d + h * hd..][..hd], &k_t, w);
                    self.kernels.softmax_rows(w, s);
                    self.kernels.dots(w, &v_t, out);
                }
                (w, out)
            })
            .collect();
        let mut weights = if want_weights {
            vec![0f32; rows * heads * s]
        } else {
            Vec::new()
        };
        let mut y = vec![0f32; rows * d];
        for (h, (w, out)) in per_head.iter().enumerate() {
            for r in 0..rows {
                if want_weights {
                    weights[(r * heads + h) * s..][..s].copy_from_slice(&w[r * s..][..s]);
                }
                y[r * d + h * hd..][..hd].copy_from_slice(&out[r * hd..][..hd]);
            }
        }
        (y, weights)
    }
}

/// One hypothesis's self-attention keys and values for every layer.
struct HypCache {
    /// Per layer: keys and values transposed, [heads][head_dim][capacity] (see
    /// [`Kernels::axpys`] for why keys are); positions past the decoded length are unused.
    layers: Vec<(Vec<f32>, Vec<f32>)>,
}

/// The decoder's self-attention keys and values as host rows, one [`HypCache`] per hypothesis,
/// sized once for the decoder's whole context so that a step appends in place.
pub(crate) struct SelfRows {
    hyps: Vec<HypCache>,
    layers: usize,
    heads: usize,
    head_dim: usize,
    capacity: usize,
    kernels: Kernels,
}

impl SelfRows {
    /// An empty cache for `layers` layers of `heads` heads over `capacity` positions.
    pub fn new(layers: usize, heads: usize, head_dim: usize, capacity: usize) -> Self {
        SelfRows {
            hyps: Vec::new(),
            layers,
            heads,
            head_dim,
            capacity,
            kernels: Kernels::detect(),
        }
    }

    fn empty(&self) -> HypCache {
        let size = self.heads * self.capacity * self.head_dim;
        HypCache {
            layers: (0..self.layers)
                .map(|_| (vec![0f32; size], vec![0f32; size]))
                .collect(),
        }
    }

    /// Copies the first `len` positions of `src` into `dst`.
    fn copy_prefix(&self, src: &HypCache, dst: &mut HypCache, len: usize) {
        let (cap, hd) = (self.capacity, self.head_dim);
        for ((sk, sv), (dk, dv)) in src.layers.iter().zip(dst.layers.iter_mut()) {
            for row in 0..self.heads * hd {
                let span = row * cap..row * cap + len;
                dk[span.clone()].copy_from_slice(&sk[span.clone()]);
                dv[span.clone()].copy_from_slice(&sv[span]);
            }
        }
    }

    /// Keeps the hypotheses at `rows`, in that order (duplicates allowed), of which `len`
    /// positions are filled. A hypothesis kept once moves without a copy; each further copy
    /// reuses the memory of a dropped one, and copies only the filled positions.
    pub fn reorder(&mut self, rows: &[u32], len: usize) -> Result<()> {
        if self.hyps.is_empty() {
            return Ok(());
        }
        if let Some(r) = rows.iter().find(|&&r| r as usize >= self.hyps.len()) {
            return Err(Error::Model(format!(
                "hypothesis {r} of {} does not exist",
                self.hyps.len()
            )));
        }
        let mut old: Vec<Option<HypCache>> = std::mem::take(&mut self.hyps)
            .into_iter()
            .map(Some)
            .collect();
        let mut uses = vec![0usize; old.len()];
        for &r in rows {
            uses[r as usize] += 1;
        }
        let mut spares: Vec<HypCache> = old
            .iter_mut()
            .zip(&uses)
            .filter(|(_, u)| **u == 0)
            .filter_map(|(h, _)| h.take())
            .collect();
        let mut kept: Vec<Option<HypCache>> = rows.iter().map(|_| None).collect();
        // Every use of a hypothesis but its last is a copy, made while the source is in place.
        for (slot, &r) in kept.iter_mut().zip(rows) {
            let r = r as usize;
            if uses[r] > 1 {
                uses[r] -= 1;
                let mut copy = spares.pop().unwrap_or_else(|| self.empty());
                if let Some(src) = &old[r] {
                    self.copy_prefix(src, &mut copy, len);
                }
                *slot = Some(copy);
            }
        }
        for (slot, &r) in kept.iter_mut().zip(rows) {
            if slot.is_none() {
                *slot = old[r as usize].take();
            }
        }
        self.hyps = kept.into_iter().flatten().collect();
        if self.hyps.len() != rows.len() {
            return Err(Error::Model("beam reorder lost a hypothesis".into()));
        }
        Ok(())
    }

    /// Appends the keys and values `k`, `v` [batch × n × heads·head_dim] of layer `layer` at
    /// positions `past..past+n`, then attends the queries `q` (same shape, already scaled),
    /// each over the positions up to its own. Returns the outputs, same shape.
    pub fn attend(
        &mut self,
        layer: usize,
        past: usize,
        batch: usize,
        q: &[f32],
        k: &[f32],
        v: &[f32],
    ) -> Result<Vec<f32>> {
        let (heads, hd, cap) = (self.heads, self.head_dim, self.capacity);
        let d = heads * hd;
        let n = q.len() / (batch * d).max(1);
        if past + n > cap || layer >= self.layers {
            return Err(Error::Model(format!(
                "the decoder holds at most {cap} tokens"
            )));
        }
        if self.hyps.is_empty() {
            self.hyps = (0..batch).map(|_| self.empty()).collect();
        }
        if self.hyps.len() != batch {
            return Err(Error::Model(format!(
                "{batch} hypotheses fed to a cache of {}",
                self.hyps.len()
            )));
        }
        for (b, hyp) in self.hyps.iter_mut().enumerate() {
            let (kc, vc) = &mut hyp.layers[layer];
            for t in 0..n {
                let (row, pos) = ((b * n + t) * d, past + t);
                for c in 0..d {
                    kc[c * cap + pos] = k[row + c];
                    vc[c * cap + pos] = v[row + c];
                }
            }
        }
        let kernels = self.kernels;
        let hyps = &self.hyps;
        let per_task: Vec<Vec<f32>> = (0..batch * heads)
            .into_par_iter()
            .map(|task| {
                let (b, h) = (task / heads, task % heads);
                let (kc, vc) = &hyps[b].layers[layer];
                let mut out = vec![0f32; n * hd];
                let mut w = vec![0f32; past + n];
                for t in 0..n {
                    let len = past + t + 1;
                    let w = &mut w[..len];
                    let span = |e: usize| (h * hd + e) * cap..(h * hd + e) * cap + len;
                    let keys: Vec<Row<'_>> = (0..hd).map(|e| Row::F32(&kc[span(e)])).collect();
                    let values: Vec<Row<'_>> = (0..hd).map(|e| Row::F32(&vc[span(e)])).collect();
                    kernels.axpys(&q[(b * n + t) * d + h * hd..][..hd], &keys, w);
                    kernels.softmax_rows(w, len);
                    kernels.dots(w, &values, &mut out[t * hd..][..hd]);
                }
                out
            })
            .collect();
        let mut y = vec![0f32; batch * n * d];
        for (task, out) in per_task.iter().enumerate() {
            let (b, h) = (task / heads, task % heads);
            for t in 0..n {
                y[(b * n + t) * d + h * hd..][..hd].copy_from_slice(&out[t * hd..][..hd]);
            }
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADS: usize = 2;
    const HD: usize = 4;
    const D: usize = HEADS * HD;

    fn values(n: usize, seed: u64) -> Vec<f32> {
        (0..n as u64)
            .map(|i| ((i * 7919 + seed * 104_729) % 997) as f32 / 498.5 - 1.0)
            .collect()
    }

    /// Causal attention in f64 straight from the definition: `q`, `k`, `v` are [n × D] of one
    /// hypothesis; row t attends to rows 0..=t.
    fn naive(q: &[f32], k: &[f32], v: &[f32]) -> Vec<f64> {
        let n = q.len() / D;
        let mut y = vec![0f64; n * D];
        for t in 0..n {
            for h in 0..HEADS {
                let s: Vec<f64> = (0..=t)
                    .map(|j| {
                        (0..HD)
                            .map(|e| f64::from(q[t * D + h * HD + e] * k[j * D + h * HD + e]))
                            .sum()
                    })
                    .collect();
                let m = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let z: f64 = s.iter().map(|x| (x - m).exp()).sum();
                for e in 0..HD {
                    y[t * D + h * HD + e] = (0..=t)
                        .map(|j| (s[j] - m).exp() / z * f64::from(v[j * D + h * HD + e]))
                        .sum();
                }
            }
        }
        y
    }

    #[test]
    fn a_prompt_and_single_steps_attend_causally_as_defined() {
        let (q, k, v) = (values(5 * D, 1), values(5 * D, 2), values(5 * D, 3));
        let want = naive(&q, &k, &v);
        // All five tokens as one prompt.
        let mut cache = SelfRows::new(1, HEADS, HD, 8);
        let y = cache.attend(0, 0, 1, &q, &k, &v).expect("attend");
        // Three as a prompt, then one step at a time.
        let mut stepped = SelfRows::new(1, HEADS, HD, 8);
        let mut y2 = stepped
            .attend(0, 0, 1, &q[..3 * D], &k[..3 * D], &v[..3 * D])
            .expect("prompt");
        for t in 3..5 {
            let s = t * D..(t + 1) * D;
            y2.extend(
                stepped
                    .attend(0, t, 1, &q[s.clone()], &k[s.clone()], &v[s])
                    .expect("step"),
            );
        }
        for (got, w) in [y, y2].iter().flat_map(|y| y.iter().zip(&want)) {
            assert!((f64::from(*got) - w).abs() < 1e-5, "{got} vs {w}");
        }
        assert!(stepped.attend(0, 8, 1, &q[..D], &k[..D], &v[..D]).is_err());
    }

    #[test]
    fn reordering_hypotheses_equals_rebuilding_their_histories() {
        // Two hypotheses with three positions each.
        let hist = |b: u64| (values(3 * D, 10 + b), values(3 * D, 20 + b));
        let (k0, v0) = hist(0);
        let (k1, v1) = hist(1);
        let cat = |a: &[f32], b: &[f32]| [a, b].concat();
        let mut cache = SelfRows::new(1, HEADS, HD, 8);
        let q = values(2 * 3 * D, 5);
        cache
            .attend(0, 0, 2, &q, &cat(&k0, &k1), &cat(&v0, &v1))
            .expect("prompt");
        // Fork hypothesis 1 twice and keep 0 last; then one step for all three.
        cache.reorder(&[1, 1, 0], 3).expect("reorder");
        let (qs, ks, vs) = (values(3 * D, 6), values(3 * D, 7), values(3 * D, 8));
        let got = cache.attend(0, 3, 3, &qs, &ks, &vs).expect("step");
        for (slot, (k, v)) in [(&k1, &v1), (&k1, &v1), (&k0, &v0)].into_iter().enumerate() {
            let mut fresh = SelfRows::new(1, HEADS, HD, 8);
            let s = slot * D..(slot + 1) * D;
            fresh
                .attend(0, 0, 1, &values(3 * D, 9), k, v)
                .expect("history");
            let want = fresh
                .attend(0, 3, 1, &qs[s.clone()], &ks[s.clone()], &vs[s.clone()])
                .expect("step");
            assert_eq!(&got[s], want.as_slice(), "hypothesis {slot}");
        }
        assert!(cache.reorder(&[3], 4).is_err());
    }
}
