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
    /// values are read from memory, and widened, once per step, not once per hypothesis.
    pub fn attend(&self, q: &[f32], want_weights: bool) -> (Vec<f32>, Vec<f32>) {
        let (hd, s, heads) = (self.head_dim, self.time, self.heads);
        let d = heads * hd;
        let rows = q.len() / d.max(1);
        let per_head: Vec<(Vec<f32>, Vec<f32>)> = (0..heads)
            .into_par_iter()
            .map(|h| {
                let k_t = self.k_t.rows(h * hd, hd, s);
                let v_t = self.v_t.rows(h * hd, hd, s);
                // Every hypothesis' query for this head, then all their scores at once: each
                // key and value row is widened once for all of them.
                let qs: Vec<f32> = (0..rows)
                    .flat_map(|r| &q[r * d + h * hd..][..hd])
                    .copied()
                    .collect();
                let mut w = vec![0f32; rows * s];
                let mut out = vec![0f32; rows * hd];
                self.kernels.axpys_many(&qs, &k_t, &mut w);
                self.kernels.softmax_rows(&mut w, s);
                self.kernels.dots_many(&w, s, &v_t, &mut out);
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

/// Positions `span` of the cache rows `rows` (each `cap` long) of `c`.
fn head_rows(
    c: &[f32],
    rows: std::ops::Range<usize>,
    cap: usize,
    span: std::ops::Range<usize>,
) -> Vec<Row<'_>> {
    rows.map(|r| Row::F32(&c[r * cap + span.start..r * cap + span.end]))
        .collect()
}

/// Copies `positions` of every cache row (each `cap` long) of `src` into `dst`.
fn copy_positions(
    src: &HypCache,
    dst: &mut HypCache,
    cap: usize,
    positions: std::ops::Range<usize>,
) {
    for ((sk, sv), (dk, dv)) in src.layers.iter().zip(dst.layers.iter_mut()) {
        for start in (0..sk.len()).step_by(cap.max(1)) {
            let span = start + positions.start..start + positions.end;
            dk[span.clone()].copy_from_slice(&sk[span.clone()]);
            dv[span.clone()].copy_from_slice(&sv[span]);
        }
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
///
/// When one hypothesis forks into a beam (after the prompt), the positions it holds become a
/// prefix shared by every hypothesis: the fork copies nothing, a reorder copies only what each
/// hypothesis decoded after the prompt, and a beam holds one prompt and five short tails. The
/// prompt, with the previous window's text, is most of a window's positions: forks and
/// reorders took 0.15 s of a 79-second recording's beam search, and now take 0.04 s.
pub(crate) struct SelfRows {
    hyps: Vec<HypCache>,
    /// Positions `0..shared_len` of every hypothesis, held once; the hypotheses' own caches
    /// leave those positions unused.
    shared: Option<HypCache>,
    shared_len: usize,
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
            shared: None,
            shared_len: 0,
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

    /// Copies the shared prefix into every hypothesis and stops sharing it: for a write at a
    /// position inside the prefix (a caller that rewinds), which would otherwise change the
    /// prefix of every hypothesis.
    fn unshare(&mut self) {
        if let Some(shared) = self.shared.take() {
            let len = std::mem::take(&mut self.shared_len);
            for hyp in &mut self.hyps {
                copy_positions(&shared, hyp, self.capacity, 0..len);
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
        if self.hyps.len() == 1 && self.shared.is_none() && rows.len() > 1 {
            // One hypothesis forks: what it holds becomes the shared prefix, and the new
            // hypotheses start with nothing of their own.
            self.shared = self.hyps.pop();
            self.shared_len = len;
            self.hyps = rows.iter().map(|_| self.empty()).collect();
            return Ok(());
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
                    copy_positions(src, &mut copy, self.capacity, self.shared_len.min(len)..len);
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
        if past < self.shared_len {
            self.unshare();
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
        let sl = self.shared_len;
        let shared = self.shared.as_ref().map(|c| &c.layers[layer]);
        // One task per head takes every hypothesis: the head's shared prefix stays in cache
        // across them.
        let per_head_task = |h: usize| {
            let rows = |c, from, to| head_rows(c, h * hd..(h + 1) * hd, cap, from..to);
            let (pk, pv) = match shared {
                Some((k, v)) => (rows(k, 0, sl), rows(v, 0, sl)),
                None => (Vec::new(), Vec::new()),
            };
            let mut out = vec![0f32; batch * n * hd];
            let mut w = vec![0f32; past + n];
            let mut part = vec![0f32; hd];
            for (b, hyp) in hyps.iter().enumerate() {
                let (kc, vc) = &hyp.layers[layer];
                for t in 0..n {
                    let len = past + t + 1;
                    let w = &mut w[..len];
                    let qv = &q[(b * n + t) * d + h * hd..][..hd];
                    let dst = &mut out[(b * n + t) * hd..][..hd];
                    let (keys, values) = (rows(kc, sl, len), rows(vc, sl, len));
                    let (wp, wo) = w.split_at_mut(sl.min(len));
                    if !pk.is_empty() {
                        kernels.axpys(qv, &pk, wp);
                    }
                    kernels.axpys(qv, &keys, wo);
                    kernels.softmax_rows(w, len);
                    let (wp, wo) = w.split_at(sl.min(len));
                    kernels.dots(wo, &values, dst);
                    if !pv.is_empty() {
                        kernels.dots(wp, &pv, &mut part);
                        dst.iter_mut().zip(&part).for_each(|(o, p)| *o += p);
                    }
                }
            }
            out
        };
        let per_head: Vec<Vec<f32>> = (0..heads).into_par_iter().map(per_head_task).collect();
        let mut y = vec![0f32; batch * n * d];
        for (h, out) in per_head.iter().enumerate() {
            for (r, o) in out.chunks_exact(hd).enumerate() {
                y[r * d + h * hd..][..hd].copy_from_slice(o);
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

    /// A prompt of one hypothesis forks into a beam (its positions become the shared prefix),
    /// the beam steps, reorders and steps again: every hypothesis attends as one fresh cache
    /// fed its own whole history does. Then a write inside the prefix stops the sharing
    /// without changing any hypothesis' history.
    #[test]
    fn a_shared_prompt_prefix_attends_as_private_histories_do() {
        let prompt = (values(4 * D, 30), values(4 * D, 31), values(4 * D, 32));
        let mut cache = SelfRows::new(1, HEADS, HD, 16);
        cache
            .attend(0, 0, 1, &prompt.0, &prompt.1, &prompt.2)
            .expect("prompt");
        cache.reorder(&[0, 0, 0], 4).expect("fork");
        assert_eq!(cache.shared_len, 4);
        // Each hypothesis' history: the prompt's keys and values, then its own steps.
        let mut hist: Vec<(Vec<f32>, Vec<f32>)> = vec![(prompt.1.clone(), prompt.2.clone()); 3];
        let step = |cache: &mut SelfRows, hist: &[(Vec<f32>, Vec<f32>)], past, seed| {
            let (qs, ks, vs) = (
                values(3 * D, seed),
                values(3 * D, seed + 1),
                values(3 * D, seed + 2),
            );
            let got = cache.attend(0, past, 3, &qs, &ks, &vs).expect("step");
            for (b, (hk, hv)) in hist.iter().enumerate() {
                let s = b * D..(b + 1) * D;
                let mut fresh = SelfRows::new(1, HEADS, HD, 16);
                fresh
                    .attend(0, 0, 1, &values(past * D, 99), hk, hv)
                    .expect("history");
                let want = fresh
                    .attend(0, past, 1, &qs[s.clone()], &ks[s.clone()], &vs[s.clone()])
                    .expect("step");
                for (g, w) in got[s].iter().zip(&want) {
                    assert!((g - w).abs() < 1e-6, "hypothesis {b}: {g} vs {w}");
                }
            }
            (ks, vs)
        };
        let (ks, vs) = step(&mut cache, &hist, 4, 40);
        for (b, (hk, hv)) in hist.iter_mut().enumerate() {
            hk.extend_from_slice(&ks[b * D..(b + 1) * D]);
            hv.extend_from_slice(&vs[b * D..(b + 1) * D]);
        }
        cache.reorder(&[2, 0, 2], 5).expect("reorder");
        hist = vec![hist[2].clone(), hist[0].clone(), hist[2].clone()];
        let (ks, vs) = step(&mut cache, &hist, 5, 50);
        assert_eq!(
            cache.shared_len, 4,
            "the prefix stays shared across reorders"
        );
        for (b, (hk, hv)) in hist.iter_mut().enumerate() {
            hk.extend_from_slice(&ks[b * D..(b + 1) * D]);
            hv.extend_from_slice(&vs[b * D..(b + 1) * D]);
        }

        // Rewinding into the prefix (position 3) gives each hypothesis its own copy first.
        for (hk, hv) in hist.iter_mut() {
            hk.truncate(3 * D);
            hv.truncate(3 * D);
        }
        step(&mut cache, &hist, 3, 60);
        assert_eq!(cache.shared_len, 0);
        assert!(cache.shared.is_none());
    }
}
