//! The encoder's many-row matrix products on the CPU's bf16 dot-product instruction.
//!
//! An encoder window multiplies 1,500 audio rows by every encoder matrix: 57 of its 87 billion
//! operations, bound by arithmetic, not memory. candle's f32 kernel reaches 130-170 GFLOP/s on
//! two cores here. AVX-512 BF16's `vdpbf16ps` does twice the multiply-adds of an f32 fused
//! multiply-add per instruction (pairs of bf16 products summed into f32 lanes), so the same
//! product runs on half the instructions. bf16 keeps 8 significant bits (the int8 weights
//! faster-whisper runs keep fewer); sums stay f32.
//!
//! Weights are rounded and packed once, at load: per panel of 64 output features, per pair of
//! inputs, the 64 features' two weights side by side, so one 64-byte load feeds sixteen lanes.
//! Each product rounds its input rows to bf16 pairs, then six rows at a time broadcast a pair
//! against the four registers of a panel (24 independent accumulators, enough to hide the
//! instruction's latency). Tasks of 48 rows run in parallel.
//!
//! `pulp` wraps no bf16 instruction, so this module holds `unsafe` code (as `simd.rs`'s AVX2
//! kernels do): two calls into functions compiled with the instruction enabled, made only with
//! a [`Bf16Kernel`], which exists only after the CPU said it has the instruction.

use rayon::prelude::*;

use super::simd::Kernels;

/// Output features per packed panel: four sixteen-lane registers.
const PANEL: usize = 64;
/// Input rows per inner block: 6 rows × 4 registers = 24 accumulators, of 32 registers.
const BLOCK_ROWS: usize = 6;
/// Input rows per parallel task: a task's rows (48 × 2,048 inputs as bf16: 192 KB) stay in L2
/// while every panel passes over them.
const TASK_ROWS: usize = 48;

/// Proof that this CPU runs AVX-512 F and BF16, obtained only by asking it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Bf16Kernel {
    _detected: (),
}

impl Bf16Kernel {
    /// The kernel, where the CPU has the instructions and `BLETCHLEY_ISA` allows AVX-512.
    pub fn detect() -> Option<Self> {
        #[cfg(target_arch = "x86_64")]
        if super::simd::isa_ceiling() >= super::simd::Isa::Avx512
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
        {
            return Some(Bf16Kernel { _detected: () });
        }
        None
    }
}

/// A weight matrix (`out` × `inp`, row-major as the models store it) rounded to bf16 and packed
/// for the kernel, with its bias.
pub(crate) struct PackedBf16 {
    out: usize,
    inp: usize,
    /// Pairs of inputs (`inp` rounded up to even; a missing last input is a zero weight).
    pairs: usize,
    /// Panel after panel, `pairs` entries each: entry `p` of panel `j` holds, for feature
    /// `64j + l`, the bf16 weights of inputs `2p` (low half) and `2p + 1` (high half).
    panels: Vec<[u32; PANEL]>,
    /// The bias per panel (zero past `out`).
    bias: Vec<[f32; PANEL]>,
}

/// A float rounded to bf16 (to nearest, ties to even), as the instruction rounds.
fn bf16_bits(x: f32) -> u32 {
    u32::from(half::bf16::from_f32(x).to_bits())
}

impl PackedBf16 {
    /// Packs `w` (`out` rows of `inp` weights) and an optional bias of `out` values.
    pub fn pack(w: &[f32], out: usize, inp: usize, bias: Option<&[f32]>) -> Self {
        assert_eq!(w.len(), out * inp, "weights are out × inp");
        let pairs = inp.div_ceil(2);
        let n_panels = out.div_ceil(PANEL);
        let mut panels = vec![[0u32; PANEL]; n_panels * pairs];
        let mut biases = vec![[0f32; PANEL]; n_panels];
        for (o, row) in w.chunks_exact(inp.max(1)).take(out).enumerate() {
            let (j, lane) = (o / PANEL, o % PANEL);
            for (p, pair) in row.chunks(2).enumerate() {
                let lo = bf16_bits(pair[0]);
                let hi = pair.get(1).map_or(0, |&x| bf16_bits(x));
                panels[j * pairs + p][lane] = lo | (hi << 16);
            }
            if let Some(b) = bias {
                biases[j][lane] = b[o];
            }
        }
        PackedBf16 {
            out,
            inp,
            pairs,
            panels,
            bias: biases,
        }
    }

    /// Output features.
    pub fn out(&self) -> usize {
        self.out
    }

    /// `x` (`rows` × `inp`) times the matrix transposed, plus the bias: `rows` × `out`.
    pub fn matmul(&self, kernel: Bf16Kernel, x: &[f32]) -> Vec<f32> {
        self.by_tasks(self.out, x, |x, y| {
            self.product_of_pairs(kernel, &rounded_rows(kernel, x, self.inp), y)
        })
    }

    /// `second(gelu(self(x)))`: a Transformer's MLP, each task's hidden rows (48 × 2,048 for
    /// Whisper base) made, activated, rounded and consumed in cache, where separate products
    /// wrote and read back 12 MB per window and layer.
    pub fn mlp(
        &self,
        second: &PackedBf16,
        kernel: Bf16Kernel,
        kernels: Kernels,
        x: &[f32],
    ) -> Vec<f32> {
        assert_eq!(
            self.out, second.inp,
            "the second matrix takes the first's outputs"
        );
        self.by_tasks(second.out, x, |x, y| {
            let mut hidden = vec![0f32; x.len() / self.inp * self.out];
            self.product_of_pairs(kernel, &rounded_rows(kernel, x, self.inp), &mut hidden);
            kernels.gelu_erf(&mut hidden);
            second.product_of_pairs(kernel, &rounded_rows(kernel, &hidden, self.out), y);
        })
    }

    /// Runs `task` on parallel blocks of `TASK_ROWS` input rows (`inp` wide), each writing its
    /// rows of the `width`-wide result.
    fn by_tasks(
        &self,
        width: usize,
        x: &[f32],
        task: impl Fn(&[f32], &mut [f32]) + Sync,
    ) -> Vec<f32> {
        assert_eq!(x.len() % self.inp.max(1), 0, "input rows are inp wide");
        let rows = x.len().checked_div(self.inp).unwrap_or(0);
        let mut y = vec![0f32; rows * width];
        if rows == 0 || width == 0 {
            return y;
        }
        y.par_chunks_mut(TASK_ROWS * width)
            .zip(x.par_chunks(TASK_ROWS * self.inp))
            .for_each(|(y, x)| task(x, y));
        y
    }

    /// Rows already rounded to pairs (`pairs` each) times the matrix, on this thread: every
    /// panel over them, six rows at a time.
    fn product_of_pairs(&self, kernel: Bf16Kernel, a: &[u32], y: &mut [f32]) {
        let _ = kernel;
        let rows = a.len() / self.pairs;
        for (j, panel) in self.panels.chunks_exact(self.pairs).enumerate() {
            let cols = PANEL.min(self.out - j * PANEL);
            let bias = &self.bias[j];
            let mut r = 0;
            while r < rows {
                let n = BLOCK_ROWS.min(rows - r);
                let a = &a[r * self.pairs..(r + n) * self.pairs];
                let out = Outputs {
                    y: &mut y[r * self.out..],
                    stride: self.out,
                    at: j * PANEL,
                    cols,
                };
                #[cfg(target_arch = "x86_64")]
                {
                    #[allow(unsafe_code)]
                    // SAFETY: `block` is safe to call wherever AVX-512 F and BF16 are present, its
                    // only requirement; a `Bf16Kernel` exists only where `detect` found both.
                    unsafe {
                        avx512::block(a, self.pairs, panel, bias, out)
                    };
                }
                r += n;
            }
        }
    }
}

/// Where a block of rows writes: `cols` outputs of row `r` at `y[r * stride + at..]`.
struct Outputs<'a> {
    y: &'a mut [f32],
    stride: usize,
    at: usize,
    cols: usize,
}

/// Rows of `width` floats rounded to bf16 pairs, on this thread.
fn rounded_rows(kernel: Bf16Kernel, x: &[f32], width: usize) -> Vec<u32> {
    let pairs = width.div_ceil(2);
    let mut a = vec![0u32; x.len() / width * pairs];
    for (a, x) in a.chunks_exact_mut(pairs).zip(x.chunks_exact(width)) {
        round_pairs(kernel, x, a);
    }
    a
}

/// Query rows per attention task: scores of 96 × 1,500 (576 KB) stay in L2 between the two
/// products.
const QUERY_ROWS: usize = 96;

/// The encoder's self-attention on bf16 products: `q` (already scaled), `k` and `v` are `t`
/// rows of `heads` heads side by side; returns the heads' outputs side by side, `t` × `d`.
/// Each head's keys and transposed values are packed once, then tasks of 96 queries of one
/// head take scores, softmax (f32) and the weighted sum of values.
pub(crate) fn attention(
    kernel: Bf16Kernel,
    softmax: Kernels,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    t: usize,
    heads: usize,
) -> Vec<f32> {
    let d = q.len() / t.max(1);
    let hd = d / heads.max(1);
    // Per head: its keys as the matrix of the scores' product (t features of hd inputs), its
    // values transposed as that of the output's (hd features of t inputs).
    let packed: Vec<(PackedBf16, PackedBf16)> = (0..heads)
        .into_par_iter()
        .map(|h| {
            let mut keys = Vec::with_capacity(t * hd);
            let mut values_t = vec![0f32; t * hd];
            for s in 0..t {
                let at = s * d + h * hd;
                keys.extend_from_slice(&k[at..at + hd]);
                for (l, &x) in v[at..at + hd].iter().enumerate() {
                    values_t[l * t + s] = x;
                }
            }
            (
                PackedBf16::pack(&keys, t, hd, None),
                PackedBf16::pack(&values_t, hd, t, None),
            )
        })
        .collect();
    let blocks = t.div_ceil(QUERY_ROWS);
    let outputs: Vec<Vec<f32>> = (0..heads * blocks)
        .into_par_iter()
        .map(|task| {
            let (h, start) = (task / blocks, task % blocks * QUERY_ROWS);
            let rows = QUERY_ROWS.min(t - start);
            let (keys, values_t) = &packed[h];
            let mut queries = Vec::with_capacity(rows * hd);
            for s in start..start + rows {
                queries.extend_from_slice(&q[s * d + h * hd..s * d + (h + 1) * hd]);
            }
            let mut scores = vec![0f32; rows * t];
            keys.product_of_pairs(kernel, &rounded_rows(kernel, &queries, hd), &mut scores);
            softmax.softmax_rows(&mut scores, t);
            let mut out = vec![0f32; rows * hd];
            values_t.product_of_pairs(kernel, &rounded_rows(kernel, &scores, t), &mut out);
            out
        })
        .collect();
    let mut y = vec![0f32; t * d];
    for (task, out) in outputs.iter().enumerate() {
        let (h, start) = (task / blocks, task % blocks * QUERY_ROWS);
        for (i, row) in out.chunks_exact(hd).enumerate() {
            let at = (start + i) * d + h * hd;
            y[at..at + hd].copy_from_slice(row);
        }
    }
    y
}

/// One input row rounded to bf16 pairs (a missing last input is zero).
fn round_pairs(kernel: Bf16Kernel, x: &[f32], a: &mut [u32]) {
    let _ = kernel;
    let whole = x.len() / 32;
    #[cfg(target_arch = "x86_64")]
    {
        #[allow(unsafe_code)]
        // SAFETY: as in `PackedBf16::task`: the token proves AVX-512 F and BF16.
        unsafe {
            avx512::round32(&x[..whole * 32], &mut a[..whole * 16])
        };
    }
    for (p, pair) in x[whole * 32..].chunks(2).enumerate() {
        let lo = bf16_bits(pair[0]);
        let hi = pair.get(1).map_or(0, |&v| bf16_bits(v));
        a[whole * 16 + p] = lo | (hi << 16);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::{BLOCK_ROWS, Outputs, PANEL};
    use std::arch::x86_64::{
        __m512, __m512bh, _mm512_add_ps, _mm512_cvtne2ps_pbh, _mm512_dpbf16_ps, _mm512_set1_epi32,
        _mm512_setzero_ps,
    };

    /// Rounds `x` (a multiple of 32 floats) to bf16 pairs, 32 at a time.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) fn round32(x: &[f32], a: &mut [u32]) {
        for (x, a) in x.chunks_exact(32).zip(a.chunks_exact_mut(16)) {
            let lo: __m512 = bytemuck::pod_read_unaligned(bytemuck::cast_slice(&x[..16]));
            let hi: __m512 = bytemuck::pod_read_unaligned(bytemuck::cast_slice(&x[16..]));
            // The second operand fills the low half: inputs 0..16 are the pairs' first 8.
            let bh: __m512bh = _mm512_cvtne2ps_pbh(hi, lo);
            a.copy_from_slice(&bytemuck::cast::<__m512bh, [u32; 16]>(bh));
        }
    }

    /// The 1 to 6 input rows of `a`, `pairs` apart, against one panel.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) fn block(
        a: &[u32],
        pairs: usize,
        panel: &[[u32; PANEL]],
        bias: &[f32; PANEL],
        out: Outputs<'_>,
    ) {
        match a.len() / pairs.max(1) {
            6 => rows::<6>(a, pairs, panel, bias, out),
            5 => rows::<5>(a, pairs, panel, bias, out),
            4 => rows::<4>(a, pairs, panel, bias, out),
            3 => rows::<3>(a, pairs, panel, bias, out),
            2 => rows::<2>(a, pairs, panel, bias, out),
            _ => rows::<1>(a, pairs, panel, bias, out),
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bf16")]
    fn rows<const R: usize>(
        a: &[u32],
        pairs: usize,
        panel: &[[u32; PANEL]],
        bias: &[f32; PANEL],
        out: Outputs<'_>,
    ) {
        const { assert!(R <= BLOCK_ROWS) };
        let row: [&[u32]; R] = std::array::from_fn(|r| &a[r * pairs..(r + 1) * pairs]);
        let mut acc = [[_mm512_setzero_ps(); 4]; R];
        for (p, w) in panel.iter().enumerate().take(pairs) {
            let w: [__m512bh; 4] = bytemuck::cast(*w);
            for r in 0..R {
                let x: __m512bh = bytemuck::cast(_mm512_set1_epi32(row[r][p] as i32));
                for (acc, w) in acc[r].iter_mut().zip(w) {
                    *acc = _mm512_dpbf16_ps(*acc, w, x);
                }
            }
        }
        let bias: [__m512; 4] = bytemuck::cast(*bias);
        let Outputs {
            y,
            stride,
            at,
            cols,
        } = out;
        for (r, acc) in acc.iter().enumerate() {
            let mut sums = [0f32; PANEL];
            for (l, (acc, b)) in acc.iter().zip(bias).enumerate() {
                let sum: [f32; 16] = bytemuck::cast(_mm512_add_ps(*acc, b));
                sums[l * 16..(l + 1) * 16].copy_from_slice(&sum);
            }
            let start = r * stride + at;
            y[start..start + cols].copy_from_slice(&sums[..cols]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product of the bf16-rounded operands, summed in f64: what the kernel computes, up to
    /// the rounding of its f32 sums.
    /// Also returns, per output, the sum of the terms' magnitudes (what the rounding scales with).
    fn reference(w: &[f32], out: usize, inp: usize, bias: &[f32], x: &[f32]) -> Vec<(f64, f64)> {
        let round = |v: f32| f64::from(half::bf16::from_f32(v).to_f32());
        let rows = x.len() / inp;
        let mut y = vec![(0f64, 0f64); rows * out];
        for r in 0..rows {
            for o in 0..out {
                let terms = (0..inp).map(|i| round(x[r * inp + i]) * round(w[o * inp + i]));
                let dot: f64 = terms.clone().sum();
                let size: f64 = terms.map(f64::abs).sum();
                y[r * out + o] = (dot + f64::from(bias[o]), size + f64::from(bias[o]).abs());
            }
        }
        y
    }

    /// A deterministic spread of values of mixed sign and size.
    fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    #[test]
    fn attention_matches_softmax_of_the_rounded_scores() {
        let Some(kernel) = Bf16Kernel::detect() else {
            eprintln!("this CPU has no AVX-512 BF16: the kernel is not used here");
            return;
        };
        let round = |v: f32| f64::from(half::bf16::from_f32(v).to_f32());
        // Query blocks with a short last one; heads narrower and as wide as Whisper's.
        for (t, heads, hd) in [(1, 1, 2), (100, 2, 8), (200, 3, 64)] {
            let d = heads * hd;
            let q: Vec<f32> = values(t * d, 11).iter().map(|x| x * 0.5).collect();
            let k = values(t * d, 12);
            let v = values(t * d, 13);
            let got = attention(kernel, Kernels::detect(), &q, &k, &v, t, heads);
            assert_eq!(got.len(), t * d);
            for h in 0..heads {
                for i in 0..t {
                    let scores: Vec<f64> = (0..t)
                        .map(|j| {
                            (0..hd)
                                .map(|l| {
                                    round(q[i * d + h * hd + l]) * round(k[j * d + h * hd + l])
                                })
                                .sum()
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::MIN, f64::max);
                    let e: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                    let total: f64 = e.iter().sum();
                    for l in 0..hd {
                        let terms = (0..t).map(|j| e[j] / total * round(v[j * d + h * hd + l]));
                        let want: f64 = terms.clone().sum();
                        let size: f64 = terms.map(f64::abs).sum();
                        let g = f64::from(got[i * d + h * hd + l]);
                        // The weights are rounded to bf16 too: 2^-9 of each term, at most.
                        assert!(
                            (g - want).abs() <= size / 256.0 + 1e-4,
                            "t {t}, head {h}, query {i}, lane {l}: {g} against {want}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_fused_mlp_is_its_two_products_and_gelu() {
        let Some(kernel) = Bf16Kernel::detect() else {
            eprintln!("this CPU has no AVX-512 BF16: the kernel is not used here");
            return;
        };
        let kernels = Kernels::detect();
        // Rows over several tasks and a short last one; a hidden width past a panel.
        let (rows, inp, hidden, out) = (101, 40, 130, 70);
        let fc1 = PackedBf16::pack(
            &values(hidden * inp, 21),
            hidden,
            inp,
            Some(&values(hidden, 22)),
        );
        let fc2 = PackedBf16::pack(
            &values(out * hidden, 23),
            out,
            hidden,
            Some(&values(out, 24)),
        );
        let x = values(rows * inp, 25);
        let mut h = fc1.matmul(kernel, &x);
        kernels.gelu_erf(&mut h);
        assert_eq!(fc1.mlp(&fc2, kernel, kernels, &x), fc2.matmul(kernel, &h));
    }

    #[test]
    fn products_match_the_rounded_operands_for_every_tail() {
        let Some(kernel) = Bf16Kernel::detect() else {
            eprintln!("this CPU has no AVX-512 BF16: the kernel is not used here");
            return;
        };
        // Rows past a task and a block, inputs odd and past 32, outputs past a panel.
        for (rows, inp, out) in [
            (1, 1, 1),
            (5, 3, 7),
            (6, 32, 64),
            (7, 33, 65),
            (49, 70, 130),
            (100, 512, 200),
            (13, 2048, 64),
        ] {
            let w = values(out * inp, 1 + rows as u64);
            let bias = values(out, 7);
            let x = values(rows * inp, 3 + out as u64);
            let packed = PackedBf16::pack(&w, out, inp, Some(&bias));
            assert_eq!(packed.out(), out);
            let got = packed.matmul(kernel, &x);
            let want = reference(&w, out, inp, &bias, &x);
            assert_eq!(got.len(), want.len());
            for (i, (&g, &(e, size))) in got.iter().zip(&want).enumerate() {
                // f32 sums: within a small multiple of f32's precision of the terms'
                // magnitudes; one term lost or counted twice is far outside.
                let tol = 1e-5 * size + 1e-6;
                assert!(
                    (f64::from(g) - e).abs() <= tol,
                    "{rows}×{inp}×{out}, output {i}: {g} against {e}"
                );
            }
        }
    }
}
