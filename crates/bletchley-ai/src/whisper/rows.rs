//! Weights kept as plain rows on the host, for products with a handful of input rows.
//!
//! A decoder step multiplies one token (or one per beam) by every weight matrix of the decoder:
//! 46 million weights for Whisper base. That is bound by memory traffic, not arithmetic
//! (measured on this machine kind: about 7 GB/s, so 184 MB of f32 weights cost ~25 ms a token),
//! and the general matrix kernel also repacks the whole matrix on every call. Here each weight
//! row is read once and dotted with every input row while it is in cache, and weights may be
//! held as int8 with one scale per row (as CTranslate2's int8 does), a quarter of the bytes.
//! Activations stay f32: only the weights are rounded.

use rayon::prelude::*;

use super::pages::Pages;
use super::simd::{Kernels, Row};

/// Weight rows [out × inp], on huge pages (see [`Pages`]): every decoder step reads them all.
pub(crate) enum HostRows {
    /// Exact.
    F32(Pages<f32>),
    /// Half precision: exact for the float16 packages Whisper ships in, half the bytes of f32.
    F16(Pages<u16>),
    /// q[o][i] * scale[o] ≈ w[o][i], with scale = max |w[o]| / 127.
    I8 { q: Pages<i8>, scale: Vec<f32> },
}

/// A weight matrix as host rows.
pub(crate) struct RowMatrix {
    pub rows: HostRows,
    pub out: usize,
    pub inp: usize,
    kernels: Kernels,
}

/// Weight rows per parallel task.
const CHUNK: usize = 128;

impl RowMatrix {
    fn new(rows: HostRows, out: usize, inp: usize) -> Self {
        RowMatrix {
            rows,
            out,
            inp,
            kernels: Kernels::detect(),
        }
    }

    /// Keeps f32 rows as they are.
    pub fn f32(w: Vec<f32>, out: usize, inp: usize) -> Self {
        Self::new(HostRows::F32(Pages::new(w)), out, inp)
    }

    /// Rounds rows to half precision (nearest, ties to even). Where the CPU lacks the vector
    /// kernels, the rounded values are held as f32: the same products, without a call per
    /// weight to widen them.
    pub fn f16(w: &[f32], out: usize, inp: usize) -> Self {
        if !Kernels::detect().wide() {
            let rounded = w.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
            return Self::f32(rounded, out, inp);
        }
        let h = w
            .iter()
            .map(|&v| half::f16::from_f32(v).to_bits())
            .collect();
        Self::new(HostRows::F16(Pages::new(h)), out, inp)
    }

    /// Rounds rows to int8 with a per-row scale.
    pub fn int8(w: &[f32], out: usize, inp: usize) -> Self {
        let mut q = Vec::with_capacity(w.len());
        let mut scale = Vec::with_capacity(out);
        for row in w.chunks_exact(inp.max(1)) {
            let max = row.iter().fold(0f32, |m, x| m.max(x.abs()));
            let s = if max > 0.0 { max / 127.0 } else { 1.0 };
            scale.push(s);
            q.extend(
                row.iter()
                    .map(|&x| (x / s).round().clamp(-127.0, 127.0) as i8),
            );
        }
        Self::new(
            HostRows::I8 {
                q: Pages::new(q),
                scale,
            },
            out,
            inp,
        )
    }

    /// Moves the matrices' rows into shared mappings on huge pages (one per storage type), so
    /// that matrices under 2 MB get huge pages too.
    pub fn gather(matrices: Vec<&mut RowMatrix>) {
        let (mut f32s, mut f16s, mut i8s) = (Vec::new(), Vec::new(), Vec::new());
        for m in matrices {
            match &mut m.rows {
                HostRows::F32(w) => f32s.push(w),
                HostRows::F16(w) => f16s.push(w),
                HostRows::I8 { q, .. } => i8s.push(q),
            }
        }
        Pages::gather(&mut f32s);
        Pages::gather(&mut f16s);
        Pages::gather(&mut i8s);
    }

    /// All weights as f32, row-major (for the occasional many-row product).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.rows {
            HostRows::F32(w) => w.to_vec(),
            HostRows::F16(h) => {
                let mut w = vec![0f32; h.len()];
                self.kernels.widen_f16(h, &mut w);
                w
            }
            HostRows::I8 { q, scale } => q
                .chunks_exact(self.inp.max(1))
                .zip(scale)
                .flat_map(|(r, &s)| r.iter().map(move |&v| v as f32 * s))
                .collect(),
        }
    }

    /// Weight row `o`.
    fn row(&self, o: usize) -> Row<'_> {
        let span = o * self.inp..(o + 1) * self.inp;
        match &self.rows {
            HostRows::F32(w) => Row::F32(&w[span]),
            HostRows::F16(h) => Row::F16(&h[span]),
            HostRows::I8 { q, .. } => Row::I8(&q[span]),
        }
    }

    /// `x` [n × inp] times the transposed weights: [n × out].
    pub fn matmul(&self, x: &[f32]) -> Vec<f32> {
        let inp = self.inp;
        let n = x.len() / inp.max(1);
        let mut y = vec![0f32; n * self.out];
        // Each task owns CHUNK output columns of every input row: its weight rows are read once
        // from memory and stay in cache across the (few) input rows.
        let mut columns = vec![0f32; n * self.out];
        columns
            .par_chunks_mut(n * CHUNK)
            .enumerate()
            .for_each(|(chunk, dst)| {
                let first = chunk * CHUNK;
                let count = dst.len() / n.max(1);
                let rows: Vec<Row<'_>> = (first..first + count).map(|o| self.row(o)).collect();
                self.kernels.dots_many(x, inp, &rows, dst);
                if let HostRows::I8 { scale, .. } = &self.rows {
                    for out in dst.chunks_mut(count) {
                        out.iter_mut()
                            .zip(&scale[first..first + count])
                            .for_each(|(v, s)| *v *= s);
                    }
                }
            });
        // columns: per chunk, [n × count] blocks; y: [n × out].
        for (chunk, block) in columns.chunks(n * CHUNK).enumerate() {
            let count = block.len() / n.max(1);
            for r in 0..n {
                let dst = &mut y[r * self.out + chunk * CHUNK..][..count];
                dst.copy_from_slice(&block[r * count..(r + 1) * count]);
            }
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(x: &[f32], w: &[f32], out: usize, inp: usize) -> Vec<f32> {
        let n = x.len() / inp;
        let mut y = vec![0f32; n * out];
        for r in 0..n {
            for o in 0..out {
                y[r * out + o] = (0..inp).map(|i| x[r * inp + i] * w[o * inp + i]).sum();
            }
        }
        y
    }

    #[test]
    fn matches_the_naive_product() {
        let (out, inp) = (300, 37);
        let w: Vec<f32> = (0..out * inp)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let x: Vec<f32> = (0..3 * inp)
            .map(|i| ((i * 13 % 29) as f32 - 14.0) / 7.0)
            .collect();
        let want = naive(&x, &w, out, inp);
        let got = RowMatrix::f32(w.clone(), out, inp).matmul(&x);
        for (a, b) in got.iter().zip(&want) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        let h = RowMatrix::f16(&w, out, inp).matmul(&x);
        for (a, b) in h.iter().zip(&want) {
            // Rounding each weight by at most 2^-11 of itself.
            assert!((a - b).abs() < 0.01, "{a} vs {b}");
        }
        let q = RowMatrix::int8(&w, out, inp).matmul(&x);
        for (a, b) in q.iter().zip(&want) {
            // Rounding each weight by at most half a step of max/127.
            assert!((a - b).abs() < 0.1, "{a} vs {b}");
        }
    }
}
