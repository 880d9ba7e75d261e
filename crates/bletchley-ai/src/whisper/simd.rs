//! Vector kernels for the hot loops candle does not cover well on a CPU: the decoder's
//! one-token products (dot products over weight rows held as f32, f16 or int8) and softmax.
//!
//! The build targets plain x86-64, so the compiler may not use AVX2 or AVX-512 on its own.
//! The CPU is asked once and each kernel runs its AVX-512 body where the CPU has it, its
//! AVX2 + FMA + F16C body on the many servers without AVX-512, and the same arithmetic in
//! plain loops elsewhere; `BLETCHLEY_ISA` ([`isa_ceiling`]) forces a lower set, so that each
//! path is tested and measured on any machine. The paths compute the same sums in a different
//! order, so results agree to rounding, not bit for bit. AVX-512 is reached through `pulp`,
//! which wraps the intrinsics safely behind a detected-feature token; AVX2 through functions
//! compiled with its features (see [`avx2`]).
//!
//! Each kernel's body runs inside `V4::vectorize`, which compiles it with AVX-512 enabled, and
//! only code inlined there gets it. The closures handed to `vectorize` therefore consume their
//! output buffer (`move`, then use it by value): an FnOnce closure's body is what `vectorize`
//! calls, where an Fn or FnMut closure is reached through a `call_once` shim that LLVM may
//! leave out of line. Out of line, every intrinsic became a function call: ten times slower,
//! measured. The hot loops avoid `array::from_fn` for the same reason.

/// The kernels this CPU can run, detected once.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Kernels {
    #[cfg(target_arch = "x86_64")]
    v4: Option<pulp::x86::V4>,
    /// AVX2, FMA and F16C, where AVX-512 is absent or not allowed.
    #[cfg(target_arch = "x86_64")]
    v3: Option<avx2::Avx2Kernel>,
}

/// Runs an `avx2` kernel under its token. SAFETY (of the one `unsafe` block): the token
/// exists only where the CPU said it runs AVX2, FMA and F16C, the features every function of
/// `avx2` is compiled with, so calling them executes no instruction the CPU lacks.
#[cfg(target_arch = "x86_64")]
macro_rules! on_avx2 {
    ($token:expr, $call:expr) => {{
        let _: avx2::Avx2Kernel = $token;
        #[allow(unsafe_code)]
        // SAFETY: see the macro's documentation.
        let out = unsafe { $call };
        out
    }};
}

/// The instruction sets the speech kernels may use, lowest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Plain loops (what the compiler makes of them for the build's target).
    Scalar,
    /// AVX2 and FMA: most x86-64 servers of the last decade.
    Avx2,
    /// AVX-512 (and its BF16 dot products for the encoder, where the CPU has them).
    Avx512,
}

impl Isa {
    /// The name `BLETCHLEY_ISA` takes.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }
}

/// The highest instruction set the kernels may use: `BLETCHLEY_ISA` (`avx512`, `avx2` or
/// `scalar`) forces a lower one than the CPU has, so that every path can be tested and
/// measured on one machine; unset, the CPU's best. Read once.
pub fn isa_ceiling() -> Isa {
    static CEILING: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
    // A value that names no set was refused by `check_isa_env` before any work began.
    *CEILING.get_or_init(|| check_isa_env().unwrap_or(Isa::Avx512))
}

/// Reads `BLETCHLEY_ISA`: the ceiling it names (unset: no ceiling), or a clear error for a
/// value that names no instruction set, so that a typo does not silently measure the wrong
/// path. Commands call it before they start.
pub fn check_isa_env() -> crate::Result<Isa> {
    match std::env::var("BLETCHLEY_ISA").as_deref() {
        Ok("scalar") => Ok(Isa::Scalar),
        Ok("avx2") => Ok(Isa::Avx2),
        Ok("avx512") | Err(std::env::VarError::NotPresent) => Ok(Isa::Avx512),
        Ok(other) => Err(crate::Error::Invalid(format!(
            "BLETCHLEY_ISA={other:?} names no instruction set: use avx512, avx2 or scalar"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(crate::Error::Invalid(
            "BLETCHLEY_ISA is not UTF-8: use avx512, avx2 or scalar".into(),
        )),
    }
}

/// The instruction set the kernels run here: the CPU's best under [`isa_ceiling`].
pub fn isa_in_use() -> Isa {
    Kernels::detect().isa()
}

/// A borrowed weight row in one of the layouts the decoder keeps.
#[derive(Clone, Copy)]
pub(crate) enum Row<'a> {
    /// Exact.
    F32(&'a [f32]),
    /// IEEE half-precision bit patterns.
    F16(&'a [u16]),
    /// int8, scaled by the caller.
    I8(&'a [i8]),
}

impl Row<'_> {
    /// How many weights the row holds.
    pub fn len(&self) -> usize {
        match self {
            Row::F32(w) => w.len(),
            Row::F16(w) => w.len(),
            Row::I8(w) => w.len(),
        }
    }
}

impl Kernels {
    /// Asks the CPU which kernels it can run, up to [`isa_ceiling`].
    pub fn detect() -> Self {
        Self::at_most(isa_ceiling())
    }

    /// The kernels of the CPU's best instruction set up to `ceiling`.
    pub fn at_most(ceiling: Isa) -> Self {
        #[cfg(not(target_arch = "x86_64"))]
        let _ = ceiling;
        #[cfg(target_arch = "x86_64")]
        let v4 = if ceiling >= Isa::Avx512 {
            pulp::x86::V4::try_new()
        } else {
            None
        };
        Kernels {
            #[cfg(target_arch = "x86_64")]
            v4,
            #[cfg(target_arch = "x86_64")]
            v3: if v4.is_none() && ceiling >= Isa::Avx2 {
                avx2::Avx2Kernel::detect()
            } else {
                None
            },
        }
    }

    /// Every distinct set of kernels this CPU runs, highest first, for tests.
    #[cfg(test)]
    pub fn every() -> Vec<Self> {
        let mut out: Vec<Kernels> = Vec::new();
        for isa in [Isa::Avx512, Isa::Avx2, Isa::Scalar] {
            let k = Self::at_most(isa);
            if out.iter().all(|o| o.isa() != k.isa()) {
                out.push(k);
            }
        }
        out
    }

    /// The instruction set these kernels use.
    pub fn isa(self) -> Isa {
        #[cfg(target_arch = "x86_64")]
        if self.v4.is_some() {
            return Isa::Avx512;
        } else if self.v3.is_some() {
            return Isa::Avx2;
        }
        Isa::Scalar
    }

    /// Whether the vector kernels run here. Without them, widening f16 costs a call per weight,
    /// so f16 rows are better held as f32 (the same values: widening is exact).
    pub fn wide(self) -> bool {
        self.isa() > Isa::Scalar
    }

    /// `dst[k] = x · rows(k)` for every row `k` (`x` has as many elements as each row).
    pub fn dots(self, x: &[f32], rows: &[Row<'_>], dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            return v4.vectorize(
                #[inline(always)]
                move || {
                    // FnOnce (it consumes `dst`): see the module note.
                    let dst = dst;
                    for (d, row) in dst.iter_mut().zip(rows) {
                        *d = match *row {
                            Row::F32(w) => avx512::dot_f32(v4, x, w),
                            Row::F16(w) => avx512::dot_f16(v4, x, w),
                            Row::I8(w) => avx512::dot_i8(v4, x, w),
                        };
                    }
                },
            );
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.v3 {
            return on_avx2!(v3, avx2::dots(x, rows, dst));
        }
        for (d, row) in dst.iter_mut().zip(rows) {
            *d = match *row {
                Row::F32(w) => portable::dot(x, w, |v| v),
                Row::F16(w) => portable::dot(x, w, |v| half::f16::from_bits(v).to_f32()),
                Row::I8(w) => portable::dot(x, w, f32::from),
            };
        }
    }

    /// `dst[r·rows.len() + k] = xs[r] · rows(k)` for every input row `r` of `xs` (each `width`
    /// long). A beam's hypotheses share each weight row: it is loaded and widened once for up
    /// to eight input rows, where one product at a time would widen it for every hypothesis.
    pub fn dots_many(self, xs: &[f32], width: usize, rows: &[Row<'_>], dst: &mut [f32]) {
        let width = width.max(1);
        let count = rows.len();
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            let group = |xs: &[f32], dst: &mut [f32]| match xs.len() / width {
                2 => avx512::dots_group::<2>(v4, xs, width, rows, dst),
                3 => avx512::dots_group::<3>(v4, xs, width, rows, dst),
                4 => avx512::dots_group::<4>(v4, xs, width, rows, dst),
                5 => avx512::dots_group::<5>(v4, xs, width, rows, dst),
                6 => avx512::dots_group::<6>(v4, xs, width, rows, dst),
                7 => avx512::dots_group::<7>(v4, xs, width, rows, dst),
                8 => avx512::dots_group::<8>(v4, xs, width, rows, dst),
                _ => self.dots(xs, rows, dst),
            };
            for (xs, dst) in xs.chunks(8 * width).zip(dst.chunks_mut(8 * count)) {
                group(xs, dst);
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.v3 {
            // Up to eight input rows at a time: an accumulator each, half of AVX2's sixteen
            // registers.
            let group = |xs: &[f32], dst: &mut [f32]| match xs.len() / width {
                2 => on_avx2!(v3, avx2::dots_group::<2>(xs, width, rows, dst)),
                3 => on_avx2!(v3, avx2::dots_group::<3>(xs, width, rows, dst)),
                4 => on_avx2!(v3, avx2::dots_group::<4>(xs, width, rows, dst)),
                5 => on_avx2!(v3, avx2::dots_group::<5>(xs, width, rows, dst)),
                6 => on_avx2!(v3, avx2::dots_group::<6>(xs, width, rows, dst)),
                7 => on_avx2!(v3, avx2::dots_group::<7>(xs, width, rows, dst)),
                8 => on_avx2!(v3, avx2::dots_group::<8>(xs, width, rows, dst)),
                _ => self.dots(xs, rows, dst),
            };
            for (xs, dst) in xs.chunks(8 * width).zip(dst.chunks_mut(8 * count)) {
                group(xs, dst);
            }
            return;
        }
        for (x, dst) in xs.chunks(width).zip(dst.chunks_mut(count.max(1))) {
            self.dots(x, rows, dst);
        }
    }

    /// `dst = Σ_e x[e] · rows(e)`: a weighted sum of rows as long as `dst` (`x` has one weight
    /// per row). Attention scores against keys stored transposed ([head_dim][time]) come out
    /// of this without a horizontal sum per key: one query against 1,500 keys of 64
    /// dimensions is 64 passes of vector multiply-adds over the time axis, where a dot product
    /// per key would end every 4 multiply-adds in a 16-lane reduction.
    pub fn axpys(self, x: &[f32], rows: &[Row<'_>], dst: &mut [f32]) {
        // Lanes that some row lacks get no share from any row.
        let n = rows.iter().map(Row::len).fold(dst.len(), usize::min);
        let (dst, rest) = dst.split_at_mut(n);
        rest.fill(0.0);
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            return v4.vectorize(
                #[inline(always)]
                move || avx512::axpys(v4, x, rows, dst),
            );
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.v3 {
            return on_avx2!(v3, avx2::axpys(x, rows, dst));
        }
        dst.fill(0.0);
        for (&a, row) in x.iter().zip(rows) {
            match *row {
                Row::F32(w) => portable::axpy(a, w, dst, |v| v),
                Row::F16(w) => portable::axpy(a, w, dst, |v| half::f16::from_bits(v).to_f32()),
                Row::I8(w) => portable::axpy(a, w, dst, f32::from),
            }
        }
    }

    /// [`Kernels::axpys`] for several weight vectors over the same rows: `xs` holds one vector of
    /// `rows.len()` weights per output row of `dst` (each `dst.len() / count` long). A beam's
    /// hypotheses attend over one audio: each of its key rows is loaded and widened once for
    /// up to eight queries, where one query at a time widened it for every hypothesis.
    pub fn axpys_many(self, xs: &[f32], rows: &[Row<'_>], dst: &mut [f32]) {
        let m = rows.len().max(1);
        let count = xs.len() / m;
        if count == 0 {
            return;
        }
        let width = dst.len() / count;
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            // Lanes that some row lacks get no share from any row.
            let n = rows.iter().map(Row::len).fold(width, usize::min);
            for (xs, dst) in xs.chunks(8 * m).zip(dst.chunks_mut(8 * width)) {
                match xs.len() / m {
                    1 => avx512::axpys_group::<1>(v4, xs, rows, dst, width, n),
                    2 => avx512::axpys_group::<2>(v4, xs, rows, dst, width, n),
                    3 => avx512::axpys_group::<3>(v4, xs, rows, dst, width, n),
                    4 => avx512::axpys_group::<4>(v4, xs, rows, dst, width, n),
                    5 => avx512::axpys_group::<5>(v4, xs, rows, dst, width, n),
                    6 => avx512::axpys_group::<6>(v4, xs, rows, dst, width, n),
                    7 => avx512::axpys_group::<7>(v4, xs, rows, dst, width, n),
                    _ => avx512::axpys_group::<8>(v4, xs, rows, dst, width, n),
                }
            }
            return;
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.v3 {
            let n = rows.iter().map(Row::len).fold(width, usize::min);
            for (xs, dst) in xs.chunks(4 * m).zip(dst.chunks_mut(4 * width)) {
                match xs.len() / m {
                    1 => on_avx2!(v3, avx2::axpys_group::<1>(xs, rows, dst, width, n)),
                    2 => on_avx2!(v3, avx2::axpys_group::<2>(xs, rows, dst, width, n)),
                    3 => on_avx2!(v3, avx2::axpys_group::<3>(xs, rows, dst, width, n)),
                    _ => on_avx2!(v3, avx2::axpys_group::<4>(xs, rows, dst, width, n)),
                }
            }
            return;
        }
        for (x, dst) in xs.chunks(m).zip(dst.chunks_mut(width.max(1))) {
            self.axpys(x, rows, dst);
        }
    }

    /// Σ e^(x - max) over `row`: the normaliser of a log-softmax over the vocabulary (51,865
    /// lanes per hypothesis per step).
    pub fn sum_exp(self, row: &[f32], max: f32) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            return v4.vectorize(
                #[inline(always)]
                || avx512::sum_exp(v4, row, max),
            );
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.v3 {
            return on_avx2!(v3, avx2::sum_exp(row, max));
        }
        // In f64: a plain running f32 sum over 51,865 lanes drifts by a few parts in 10^5.
        row.iter().map(|&x| f64::from((x - max).exp())).sum::<f64>() as f32
    }

    /// Widens half-precision bit patterns to f32 (`dst` as long as `src`).
    pub fn widen_f16(self, src: &[u16], dst: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            return v4.vectorize(
                #[inline(always)]
                move || avx512::widen_f16(v4, src, dst),
            );
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.v3 {
            return on_avx2!(v3, avx2::widen_f16(src, dst));
        }
        for (d, &s) in dst.iter_mut().zip(src) {
            *d = half::f16::from_bits(s).to_f32();
        }
    }

    /// Softmax of each `width`-long row of `data`, in place.
    pub fn softmax_rows(self, data: &mut [f32], width: usize) {
        let width = width.max(1);
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            return v4.vectorize(
                #[inline(always)]
                move || {
                    // FnOnce (it consumes `data`): see the module note.
                    let data = data;
                    for row in data.chunks_mut(width) {
                        avx512::softmax(v4, row);
                    }
                },
            );
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.v3 {
            return on_avx2!(v3, avx2::softmax_rows(data, width));
        }
        for row in data.chunks_mut(width) {
            portable::softmax(row);
        }
    }
}

impl Kernels {
    /// GELU with the exact (erf) form Whisper was trained with, in place.
    pub fn gelu_erf(self, data: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if let Some(v4) = self.v4 {
            return v4.vectorize(
                #[inline(always)]
                move || avx512::gelu_erf(v4, data),
            );
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(v3) = self.v3 {
            return on_avx2!(v3, avx2::gelu_erf(data));
        }
        data.iter_mut().for_each(|v| *v = portable::gelu_erf(*v));
    }
}

/// Abramowitz and Stegun 7.1.26: erf(x) = 1 - t·(a1 + t·(a2 + ...))·e^(-x²) with
/// t = 1 / (1 + p·x), for x ≥ 0; absolute error under 1.5e-7, f32's own resolution.
const ERF_P: f32 = 0.327_591_1;
const ERF_A: [f32; 5] = [
    0.254_829_6,
    -0.284_496_74,
    1.421_413_8,
    -1.453_152_1,
    1.061_405_4,
];

mod portable {
    use super::{ERF_A, ERF_P};

    pub fn gelu_erf(x: f32) -> f32 {
        let z = (x * std::f32::consts::FRAC_1_SQRT_2).abs();
        let t = 1.0 / (1.0 + ERF_P * z);
        let poly = ERF_A.iter().rev().fold(0f32, |acc, &a| acc * t + a) * t;
        let erf = 1.0 - poly * (-z * z).exp();
        0.5 * x * (1.0 + erf.copysign(x))
    }

    /// Sixteen independent accumulators over fixed-size blocks, so the compiler vectorises
    /// the loop without bounds checks.
    pub fn dot<T: Copy>(a: &[f32], b: &[T], widen: impl Fn(T) -> f32) -> f32 {
        let (ba, ta) = a.as_chunks::<16>();
        let (bb, tb) = b.as_chunks::<16>();
        let mut acc = [0f32; 16];
        for (pa, pb) in ba.iter().zip(bb) {
            for i in 0..16 {
                acc[i] += pa[i] * widen(pb[i]);
            }
        }
        let tail: f32 = ta.iter().zip(tb).map(|(x, &y)| x * widen(y)).sum();
        acc.iter().sum::<f32>() + tail
    }

    /// `dst += a · w`.
    pub fn axpy<T: Copy>(a: f32, w: &[T], dst: &mut [f32], widen: impl Fn(T) -> f32) {
        for (d, &v) in dst.iter_mut().zip(w) {
            *d += a * widen(v);
        }
    }

    pub fn softmax(row: &mut [f32]) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        row.iter_mut().for_each(|v| *v *= inv);
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use core::arch::x86_64::{__m128i, __m256i, __m512};

    use pulp::x86::V4;

    use super::{ERF_A, ERF_P};

    /// Four accumulators of sixteen lanes, so consecutive fused multiply-adds do not wait on each
    /// other; `widen` turns sixteen stored weights into sixteen f32 lanes (a row's last few,
    /// padded with zeros, too).
    #[inline(always)]
    fn dot<T: Copy + Default>(
        v4: V4,
        a: &[f32],
        b: &[T],
        widen: impl Fn(&[T; 16]) -> __m512,
    ) -> f32 {
        let f = v4.avx512f;
        let (a64, a_rest) = a.as_chunks::<64>();
        let (b64, b_rest) = b.as_chunks::<64>();
        let mut acc = [f._mm512_setzero_ps(); 4];
        for (pa, pb) in a64.iter().zip(b64) {
            prefetch(v4, pb);
            let (qa, _) = pa.as_chunks::<16>();
            let (qb, _) = pb.as_chunks::<16>();
            for k in 0..4 {
                let x: __m512 = pulp::cast(qa[k]);
                acc[k] = f._mm512_fmadd_ps(x, widen(&qb[k]), acc[k]);
            }
        }
        let (a16, a_tail) = a_rest.as_chunks::<16>();
        let (b16, b_tail) = b_rest.as_chunks::<16>();
        for (pa, pb) in a16.iter().zip(b16) {
            let x: __m512 = pulp::cast(*pa);
            acc[0] = f._mm512_fmadd_ps(x, widen(pb), acc[0]);
        }
        let n = a_tail.len().min(b_tail.len());
        if n > 0 {
            acc[1] = f._mm512_fmadd_ps(
                padded_f32(v4, &a_tail[..n]),
                widen(&padded(&b_tail[..n])),
                acc[1],
            );
        }
        let sum = f._mm512_add_ps(
            f._mm512_add_ps(acc[0], acc[1]),
            f._mm512_add_ps(acc[2], acc[3]),
        );
        f._mm512_reduce_add_ps(sum)
    }

    /// Up to sixteen lanes of `a`, zero past its end (a masked load).
    #[inline(always)]
    fn padded_f32(v4: V4, a: &[f32]) -> __m512 {
        use pulp::Simd;
        pulp::cast(v4.partial_load_f32s(a))
    }

    /// Up to sixteen stored weights, zero past their end, for a `widen` closure.
    #[inline(always)]
    fn padded<T: Copy + Default>(w: &[T]) -> [T; 16] {
        let mut out = [T::default(); 16];
        let n = w.len().min(16);
        out[..n].copy_from_slice(&w[..n]);
        out
    }

    /// How far ahead of the weights being summed the kernels ask for lines. The decoder's
    /// products stream ~100 MB per token; the hardware prefetcher alone kept one core at about
    /// 5 GB/s here. Measured on Whisper base, greedy: 1 KB ahead gained little, 2–4 KB cut the
    /// decoder's time by 15–20 %, 8 KB and more by less.
    const PREFETCH_AHEAD: usize = 4096;

    /// Asks for the cache lines `PREFETCH_AHEAD` bytes past `chunk` (weight rows lie end to
    /// end, so these are the rows to come). A prefetch is a hint: past the end of the buffer it
    /// does not fault, and the address is never dereferenced.
    #[inline(always)]
    fn prefetch<T>(v4: V4, chunk: &[T]) {
        let at = chunk.as_ptr().cast::<i8>().wrapping_add(PREFETCH_AHEAD);
        for line in (0..std::mem::size_of_val(chunk)).step_by(64) {
            v4.sse
                ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(at.wrapping_add(line));
        }
    }

    /// How many lanes ahead of the block being summed [`axpys_group`] asks for each row's
    /// next lines. It walks 32 lanes of every row in turn, 64 rows 3 KB apart for an audio
    /// head: more streams than the hardware prefetcher follows.
    const AXPY_AHEAD: usize = 128;

    /// Asks for the cache line of `row` at lane `at` (a hint: past the row's end it does not
    /// fault, and the address is never dereferenced).
    #[inline(always)]
    fn prefetch_lanes(v4: V4, row: super::Row<'_>, at: usize) {
        use super::Row;
        let p = match row {
            Row::F32(w) => w.as_ptr().wrapping_add(at).cast::<i8>(),
            Row::F16(w) => w.as_ptr().wrapping_add(at).cast::<i8>(),
            Row::I8(w) => w.as_ptr().wrapping_add(at),
        };
        v4.sse
            ._mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p);
    }

    #[inline(always)]
    pub fn dot_f32(v4: V4, a: &[f32], b: &[f32]) -> f32 {
        dot(v4, a, b, |w| pulp::cast(*w))
    }

    #[inline(always)]
    pub fn dot_f16(v4: V4, a: &[f32], b: &[u16]) -> f32 {
        let f = v4.avx512f;
        dot(v4, a, b, |w| {
            f._mm512_cvtph_ps(pulp::cast::<[u16; 16], __m256i>(*w))
        })
    }

    #[inline(always)]
    pub fn dot_i8(v4: V4, a: &[f32], b: &[i8]) -> f32 {
        let f = v4.avx512f;
        dot(v4, a, b, |w| {
            f._mm512_cvtepi32_ps(f._mm512_cvtepi8_epi32(pulp::cast::<[i8; 16], __m128i>(*w)))
        })
    }

    /// e^x for sixteen lanes: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by Cephes' degree-6
    /// polynomial (about 1 ulp), scaled by 2^n. Lanes below -104 (masked scores) give 0.
    #[inline(always)]
    fn exp(v4: V4, x: __m512) -> __m512 {
        let f = v4.avx512f;
        let c = |v: f32| f._mm512_set1_ps(v);
        let x = f._mm512_max_ps(x, c(-104.0));
        let x = f._mm512_min_ps(x, c(88.7));
        // Round to nearest, exceptions suppressed.
        let n = f._mm512_roundscale_ps::<0x08>(f._mm512_mul_ps(x, c(std::f32::consts::LOG2_E)));
        let r = f._mm512_fnmadd_ps(n, c(0.693_359_4), x);
        let r = f._mm512_fnmadd_ps(n, c(-2.121_944_4e-4), r);
        let mut p = c(1.987_569_1e-4);
        for k in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            0.166_666_65,
            0.5,
        ] {
            p = f._mm512_fmadd_ps(p, r, c(k));
        }
        let r2 = f._mm512_mul_ps(r, r);
        let e = f._mm512_fmadd_ps(p, r2, f._mm512_add_ps(r, c(1.0)));
        f._mm512_scalef_ps(e, n)
    }

    /// `R` input rows against each weight row, one accumulator per input row; see
    /// [`super::Kernels::dots_many`].
    #[inline(always)]
    fn dot_many<T: Copy + Default, const R: usize>(
        v4: V4,
        xs: &[&[f32]; R],
        w: &[T],
        widen: impl Fn(&[T; 16]) -> __m512,
    ) -> [f32; R] {
        let f = v4.avx512f;
        let chunks: [&[[f32; 16]]; R] = std::array::from_fn(|r| xs[r].as_chunks::<16>().0);
        let (w16, w_tail) = w.as_chunks::<16>();
        let mut acc = [f._mm512_setzero_ps(); R];
        // One prefetch per cache line of weights.
        let per_line = (64 / std::mem::size_of_val(&w[..w.len().min(16)]).max(1)).max(1);
        for (i, wc) in w16.iter().enumerate() {
            if i % per_line == 0 {
                prefetch(v4, &wc[..1]);
            }
            let wv = widen(wc);
            for r in 0..R {
                let x: __m512 = pulp::cast(chunks[r][i]);
                acc[r] = f._mm512_fmadd_ps(x, wv, acc[r]);
            }
        }
        let body = w16.len() * 16;
        if !w_tail.is_empty() {
            let wv = widen(&padded(w_tail));
            for r in 0..R {
                let x = padded_f32(v4, &xs[r][body..(body + w_tail.len()).min(xs[r].len())]);
                acc[r] = f._mm512_fmadd_ps(x, wv, acc[r]);
            }
        }
        // A loop, not `array::from_fn`: a closure left out of line would lose the AVX-512
        // context, and its intrinsics would become function calls.
        let mut sums = [0f32; R];
        for (r, sum) in sums.iter_mut().enumerate() {
            *sum = f._mm512_reduce_add_ps(acc[r]);
        }
        sums
    }

    /// `R` rows of `xs` (each `width` long) against every weight row; `dst` is [R × rows].
    pub fn dots_group<const R: usize>(
        v4: V4,
        xs: &[f32],
        width: usize,
        rows: &[super::Row<'_>],
        dst: &mut [f32],
    ) {
        use super::Row;
        let count = rows.len();
        let f = v4.avx512f;
        v4.vectorize(
            #[inline(always)]
            move || {
                // FnOnce (it consumes `dst`): see the module note.
                let dst = dst;
                let x: [&[f32]; R] = std::array::from_fn(|r| &xs[r * width..(r + 1) * width]);
                for (k, row) in rows.iter().enumerate() {
                    let sums = match *row {
                        Row::F32(w) => dot_many(
                            v4,
                            &x,
                            w,
                            #[inline(always)]
                            |c| pulp::cast(*c),
                        ),
                        Row::F16(w) => dot_many(
                            v4,
                            &x,
                            w,
                            #[inline(always)]
                            |c| f._mm512_cvtph_ps(pulp::cast::<[u16; 16], __m256i>(*c)),
                        ),
                        Row::I8(w) => dot_many(
                            v4,
                            &x,
                            w,
                            #[inline(always)]
                            |c| {
                                f._mm512_cvtepi32_ps(f._mm512_cvtepi8_epi32(pulp::cast::<
                                    [i8; 16],
                                    __m128i,
                                >(
                                    *c
                                )))
                            },
                        ),
                    };
                    for (r, s) in sums.into_iter().enumerate() {
                        dst[r * count + k] = s;
                    }
                }
            },
        )
    }

    #[inline(always)]
    pub fn widen_f16(v4: V4, src: &[u16], dst: &mut [f32]) {
        let f = v4.avx512f;
        let (s16, s_tail) = src.as_chunks::<16>();
        let (d16, d_tail) = dst.as_chunks_mut::<16>();
        for (s, d) in s16.iter().zip(d16) {
            *d = pulp::cast(f._mm512_cvtph_ps(pulp::cast::<[u16; 16], __m256i>(*s)));
        }
        for (d, &s) in d_tail.iter_mut().zip(s_tail) {
            *d = half::f16::from_bits(s).to_f32();
        }
    }

    /// Sixteen weights of row `row` from lane `at`, widened.
    #[inline(always)]
    fn lanes(v4: V4, row: super::Row<'_>, at: usize) -> __m512 {
        use super::Row;
        let f = v4.avx512f;
        match row {
            Row::F32(w) => pulp::cast(*first16(&w[at..])),
            Row::F16(w) => f._mm512_cvtph_ps(pulp::cast::<[u16; 16], __m256i>(*first16(&w[at..]))),
            Row::I8(w) => {
                f._mm512_cvtepi32_ps(
                    f._mm512_cvtepi8_epi32(pulp::cast::<[i8; 16], __m128i>(*first16(&w[at..]))),
                )
            }
        }
    }

    /// The weights of `row` from lane `at` to its end (at most sixteen), widened, and zero in
    /// the lanes past the end: a masked load, where a scalar loop over a row's last few lanes
    /// cost as much as a vector block for the short rows of a step's self-attention.
    #[inline(always)]
    fn tail_lanes(v4: V4, row: super::Row<'_>, at: usize) -> __m512 {
        use super::Row;
        let part = |len: usize| at..len.min(at + 16);
        // pulp's masked loads of 16- and 8-bit lanes do not build for AVX-512 (0.22): those
        // rows are widened from a zeroed copy.
        match row {
            Row::F32(w) => padded_f32(v4, &w[part(w.len())]),
            Row::F16(w) => lanes(v4, Row::F16(&padded(&w[part(w.len())])), 0),
            Row::I8(w) => lanes(v4, Row::I8(&padded(&w[part(w.len())])), 0),
        }
    }

    /// Stores the first `dst.len()` (at most sixteen) lanes of `v`.
    #[inline(always)]
    fn store_lanes(v4: V4, dst: &mut [f32], v: __m512) {
        use pulp::Simd;
        v4.partial_store_f32s(dst, pulp::cast(v));
    }

    #[inline(always)]
    fn first16<T>(s: &[T]) -> &[T; 16] {
        s.first_chunk::<16>()
            .expect("the caller leaves at least sixteen lanes")
    }

    /// See [`super::Kernels::axpys`]: blocks of 128 lanes of `dst` stay in eight registers
    /// while every row adds its share, so the chains of multiply-adds are eight deep.
    #[inline(always)]
    pub fn axpys(v4: V4, x: &[f32], rows: &[super::Row<'_>], dst: &mut [f32]) {
        let f = v4.avx512f;
        let n = dst.len();
        let pairs = || x.iter().zip(rows);
        let mut at = 0;
        while at + 128 <= n {
            let mut acc = [f._mm512_setzero_ps(); 8];
            for (&a, &row) in pairs() {
                let a = f._mm512_set1_ps(a);
                for (j, acc) in acc.iter_mut().enumerate() {
                    *acc = f._mm512_fmadd_ps(a, lanes(v4, row, at + 16 * j), *acc);
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                dst[at + 16 * j..at + 16 * (j + 1)]
                    .copy_from_slice(&pulp::cast::<__m512, [f32; 16]>(*acc));
            }
            at += 128;
        }
        // The last lanes, sixteen at a time and then masked: four accumulators taking rows in
        // turn, so that each multiply-add does not wait on the one before.
        while at < n {
            let mut acc = [f._mm512_setzero_ps(); 4];
            let full = at + 16 <= n;
            for (e, (&a, &row)) in pairs().enumerate() {
                let w = if full {
                    lanes(v4, row, at)
                } else {
                    tail_lanes(v4, row, at)
                };
                acc[e % 4] = f._mm512_fmadd_ps(f._mm512_set1_ps(a), w, acc[e % 4]);
            }
            let sum = f._mm512_add_ps(
                f._mm512_add_ps(acc[0], acc[1]),
                f._mm512_add_ps(acc[2], acc[3]),
            );
            let end = n.min(at + 16);
            store_lanes(v4, &mut dst[at..end], sum);
            at = end;
        }
    }

    /// See [`super::Kernels::axpys_many`]: `R` vectors of weights (`xs`, R × rows) against the
    /// same rows; `dst` is R rows of `width`, of which the first `n` lanes are summed and the
    /// rest zeroed. Blocks of 32 lanes keep 2·R accumulators in registers while each row's
    /// 32 lanes, widened once, are multiplied by every vector's weight.
    pub fn axpys_group<const R: usize>(
        v4: V4,
        xs: &[f32],
        rows: &[super::Row<'_>],
        dst: &mut [f32],
        width: usize,
        n: usize,
    ) {
        let f = v4.avx512f;
        let m = rows.len();
        v4.vectorize(
            #[inline(always)]
            move || {
                // FnOnce (it consumes `dst`): see the module note.
                let dst = dst;
                let mut at = 0;
                while at + 32 <= n {
                    let mut acc = [[f._mm512_setzero_ps(); 2]; R];
                    for (e, &row) in rows.iter().enumerate() {
                        prefetch_lanes(v4, row, at + AXPY_AHEAD);
                        let (w0, w1) = (lanes(v4, row, at), lanes(v4, row, at + 16));
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let a = f._mm512_set1_ps(xs[r * m + e]);
                            acc[0] = f._mm512_fmadd_ps(a, w0, acc[0]);
                            acc[1] = f._mm512_fmadd_ps(a, w1, acc[1]);
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        for (j, acc) in acc.iter().enumerate() {
                            let at = r * width + at + 16 * j;
                            dst[at..at + 16]
                                .copy_from_slice(&pulp::cast::<__m512, [f32; 16]>(*acc));
                        }
                    }
                    at += 32;
                }
                // The last lanes: sixteen at a time, then masked.
                while at < n {
                    let full = at + 16 <= n;
                    let mut acc = [f._mm512_setzero_ps(); R];
                    for (e, &row) in rows.iter().enumerate() {
                        let w = if full {
                            lanes(v4, row, at)
                        } else {
                            tail_lanes(v4, row, at)
                        };
                        for (r, acc) in acc.iter_mut().enumerate() {
                            *acc = f._mm512_fmadd_ps(f._mm512_set1_ps(xs[r * m + e]), w, *acc);
                        }
                    }
                    let end = n.min(at + 16);
                    for (r, acc) in acc.iter().enumerate() {
                        store_lanes(v4, &mut dst[r * width + at..r * width + end], *acc);
                    }
                    at = end;
                }
                for r in 0..R {
                    dst[r * width + n..(r + 1) * width].fill(0.0);
                }
            },
        )
    }

    #[inline(always)]
    pub fn gelu_erf(v4: V4, data: &mut [f32]) {
        let f = v4.avx512f;
        let c = |v: f32| f._mm512_set1_ps(v);
        let (body, tail) = data.as_chunks_mut::<16>();
        for b in body.iter_mut() {
            let x: __m512 = pulp::cast(*b);
            let z = f._mm512_abs_ps(f._mm512_mul_ps(x, c(std::f32::consts::FRAC_1_SQRT_2)));
            let t = f._mm512_div_ps(c(1.0), f._mm512_fmadd_ps(c(ERF_P), z, c(1.0)));
            let mut poly = c(ERF_A[4]);
            for &a in ERF_A[..4].iter().rev() {
                poly = f._mm512_fmadd_ps(poly, t, c(a));
            }
            poly = f._mm512_mul_ps(poly, t);
            let e = exp(v4, f._mm512_mul_ps(f._mm512_sub_ps(c(0.0), z), z));
            // erf(|x|/√2), then 0.5·x·(1 + sign(x)·erf) = 0.5·x + 0.5·|x|·erf.
            let erf = f._mm512_fnmadd_ps(poly, e, c(1.0));
            let half_x = f._mm512_mul_ps(x, c(0.5));
            let half_abs = f._mm512_abs_ps(half_x);
            *b = pulp::cast(f._mm512_fmadd_ps(half_abs, erf, half_x));
        }
        tail.iter_mut()
            .for_each(|v| *v = super::portable::gelu_erf(*v));
    }

    #[inline(always)]
    pub fn sum_exp(v4: V4, row: &[f32], max: f32) -> f32 {
        let f = v4.avx512f;
        let (body, tail) = row.as_chunks::<16>();
        let vmax = f._mm512_set1_ps(max);
        let mut s = f._mm512_setzero_ps();
        for b in body {
            s = f._mm512_add_ps(s, exp(v4, f._mm512_sub_ps(pulp::cast(*b), vmax)));
        }
        f._mm512_reduce_add_ps(s) + tail.iter().map(|&x| (x - max).exp()).sum::<f32>()
    }

    #[inline(always)]
    pub fn softmax(v4: V4, row: &mut [f32]) {
        let f = v4.avx512f;
        let (body, tail) = row.as_chunks_mut::<16>();
        let mut m = f._mm512_set1_ps(f32::NEG_INFINITY);
        for b in body.iter() {
            m = f._mm512_max_ps(m, pulp::cast(*b));
        }
        let max = tail
            .iter()
            .copied()
            .fold(f._mm512_reduce_max_ps(m), f32::max);
        let vmax = f._mm512_set1_ps(max);
        let mut s = f._mm512_setzero_ps();
        for b in body.iter_mut() {
            let e = exp(v4, f._mm512_sub_ps(pulp::cast(*b), vmax));
            s = f._mm512_add_ps(s, e);
            *b = pulp::cast(e);
        }
        let mut sum = f._mm512_reduce_add_ps(s);
        for v in tail.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        let inv = 1.0 / sum;
        let vinv = f._mm512_set1_ps(inv);
        for b in body.iter_mut() {
            *b = pulp::cast(f._mm512_mul_ps(pulp::cast(*b), vinv));
        }
        tail.iter_mut().for_each(|v| *v *= inv);
    }
}

/// The kernels on AVX2, FMA and F16C, eight lanes a register: the same sums as
/// [`avx512`]'s in blocks half as wide.
///
/// pulp's AVX2 token carries no F16C, and widening half precision with integer instructions
/// instead made the decoder's f16 products three times slower than AVX-512's (23 ms a token
/// against 8, Whisper base): so these kernels are functions compiled with the three features
/// enabled, whose intrinsics are safe to call inside them. Calling one from code compiled
/// without them is the `unsafe` act; [`Avx2Kernel`] exists only once the CPU has said it has
/// all three, and each call site takes one (as `bf16.rs` does with its own token).
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use core::arch::x86_64::*;

    use super::Row;

    /// Proof that this CPU runs AVX2, FMA and F16C, obtained only by asking it.
    #[derive(Clone, Copy, Debug)]
    pub struct Avx2Kernel {
        _detected: (),
    }

    impl Avx2Kernel {
        /// The token, where the CPU has the three features.
        pub fn detect() -> Option<Self> {
            (is_x86_feature_detected!("avx2")
                && is_x86_feature_detected!("fma")
                && is_x86_feature_detected!("f16c"))
            .then_some(Avx2Kernel { _detected: () })
        }
    }

    /// Eight weights of `row` from lane `at`, widened (the caller leaves eight lanes).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn lanes(row: Row<'_>, at: usize) -> __m256 {
        match row {
            Row::F32(w) => pulp::cast(*first8(&w[at..])),
            Row::F16(w) => _mm256_cvtph_ps(pulp::cast::<[u16; 8], __m128i>(*first8(&w[at..]))),
            Row::I8(w) => {
                let mut bytes = [0i8; 16];
                bytes[..8].copy_from_slice(first8(&w[at..]));
                _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(pulp::cast::<[i8; 16], __m128i>(bytes)))
            }
        }
    }

    /// The weights of `row` from lane `at` to its end (at most eight), widened, zero past it.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn tail_lanes(row: Row<'_>, at: usize) -> __m256 {
        let part = |len: usize| at..len.min(at + 8);
        match row {
            Row::F32(w) => lanes(Row::F32(&padded(&w[part(w.len())])), 0),
            Row::F16(w) => lanes(Row::F16(&padded(&w[part(w.len())])), 0),
            Row::I8(w) => lanes(Row::I8(&padded(&w[part(w.len())])), 0),
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn first8<T>(s: &[T]) -> &[T; 8] {
        s.first_chunk::<8>()
            .expect("the caller leaves at least eight lanes")
    }

    /// Up to eight values, zero past their end.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn padded<T: Copy + Default>(w: &[T]) -> [T; 8] {
        let mut out = [T::default(); 8];
        let n = w.len().min(8);
        out[..n].copy_from_slice(&w[..n]);
        out
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn sum(v: __m256) -> f32 {
        pulp::cast::<__m256, [f32; 8]>(v).iter().sum()
    }

    /// As far ahead as [`super::avx512`]'s kernels ask for weights (the same memory system).
    const PREFETCH_AHEAD: usize = 4096;

    /// Eight stored weights of each layout, widened.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn w8_f32(w: &[f32; 8]) -> __m256 {
        pulp::cast(*w)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn w8_f16(w: &[u16; 8]) -> __m256 {
        _mm256_cvtph_ps(pulp::cast::<[u16; 8], __m128i>(*w))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn w8_i8(w: &[i8; 8]) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_cvtsi64_si128(pulp::cast::<
            [i8; 8],
            i64,
        >(*w))))
    }

    /// Asks for the cache lines `PREFETCH_AHEAD` bytes past `block` (weight rows lie end to
    /// end, so these are the rows to come; a hint, never a fault or a read).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn prefetch_block<T>(block: &[T]) {
        let at = block.as_ptr().cast::<i8>().wrapping_add(PREFETCH_AHEAD);
        for line in (0..std::mem::size_of_val(block)).step_by(64) {
            _mm_prefetch::<_MM_HINT_T0>(at.wrapping_add(line));
        }
    }

    /// One weight layout's products: `x · w` with four accumulators of eight lanes over
    /// blocks of 32 (consecutive fused multiply-adds do not wait on each other), and `R`
    /// inputs against one row with an accumulator each, the row widened once for all. Each
    /// layout gets loops of its own, so no block of eight asks which layout it holds.
    macro_rules! row_products {
        ($dot:ident, $many:ident, $t:ty, $w8:ident) => {
            #[inline]
            #[target_feature(enable = "avx2,fma,f16c")]
            fn $dot(x: &[f32], w: &[$t]) -> f32 {
                let n = x.len().min(w.len());
                let (x32, x_rest) = x[..n].as_chunks::<32>();
                let (w32, w_rest) = w[..n].as_chunks::<32>();
                let mut acc = [_mm256_setzero_ps(); 4];
                for (px, pw) in x32.iter().zip(w32) {
                    prefetch_block(pw);
                    let (qx, _) = px.as_chunks::<8>();
                    let (qw, _) = pw.as_chunks::<8>();
                    for k in 0..4 {
                        acc[k] = _mm256_fmadd_ps(pulp::cast(qx[k]), $w8(&qw[k]), acc[k]);
                    }
                }
                let (x8, x_tail) = x_rest.as_chunks::<8>();
                let (w8, w_tail) = w_rest.as_chunks::<8>();
                for (px, pw) in x8.iter().zip(w8) {
                    acc[0] = _mm256_fmadd_ps(pulp::cast(*px), $w8(pw), acc[0]);
                }
                if !x_tail.is_empty() {
                    acc[1] =
                        _mm256_fmadd_ps(pulp::cast(padded(x_tail)), $w8(&padded(w_tail)), acc[1]);
                }
                sum(_mm256_add_ps(
                    _mm256_add_ps(acc[0], acc[1]),
                    _mm256_add_ps(acc[2], acc[3]),
                ))
            }

            #[inline]
            #[target_feature(enable = "avx2,fma,f16c")]
            fn $many<const R: usize>(xs: &[&[f32]; R], w: &[$t]) -> [f32; R] {
                let n = xs.iter().map(|x| x.len()).fold(w.len(), usize::min);
                let (w8, w_tail) = w[..n].as_chunks::<8>();
                let mut chunks: [&[[f32; 8]]; R] = [&[]; R];
                for r in 0..R {
                    chunks[r] = xs[r][..n].as_chunks::<8>().0;
                }
                let mut acc = [_mm256_setzero_ps(); R];
                for (i, wc) in w8.iter().enumerate() {
                    if i % 4 == 0 {
                        prefetch_block(&w8[i..i + 1]);
                    }
                    let wv = $w8(wc);
                    for r in 0..R {
                        acc[r] = _mm256_fmadd_ps(pulp::cast(chunks[r][i]), wv, acc[r]);
                    }
                }
                if !w_tail.is_empty() {
                    let body = w8.len() * 8;
                    let wv = $w8(&padded(w_tail));
                    for r in 0..R {
                        let x = pulp::cast(padded(&xs[r][body..n]));
                        acc[r] = _mm256_fmadd_ps(x, wv, acc[r]);
                    }
                }
                let mut sums = [0f32; R];
                for r in 0..R {
                    sums[r] = sum(acc[r]);
                }
                sums
            }
        };
    }

    row_products!(dot_f32, many_f32, f32, w8_f32);
    row_products!(dot_f16, many_f16, u16, w8_f16);
    row_products!(dot_i8, many_i8, i8, w8_i8);

    /// `x · row`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dot(x: &[f32], row: Row<'_>) -> f32 {
        match row {
            Row::F32(w) => dot_f32(x, w),
            Row::F16(w) => dot_f16(x, w),
            Row::I8(w) => dot_i8(x, w),
        }
    }

    /// `dst[k] = x · rows(k)`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dots(x: &[f32], rows: &[Row<'_>], dst: &mut [f32]) {
        for (d, row) in dst.iter_mut().zip(rows) {
            *d = dot(x, *row);
        }
    }

    /// `R` rows of `xs` (each `width` long) against every weight row; `dst` is [R × rows].
    /// Each row's weights are loaded and widened once for the `R` inputs.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn dots_group<const R: usize>(xs: &[f32], width: usize, rows: &[Row<'_>], dst: &mut [f32]) {
        let count = rows.len();
        let mut x: [&[f32]; R] = [&[]; R];
        for (r, x) in x.iter_mut().enumerate() {
            *x = &xs[r * width..(r + 1) * width];
        }
        for (k, row) in rows.iter().enumerate() {
            let sums = match *row {
                Row::F32(w) => many_f32(&x, w),
                Row::F16(w) => many_f16(&x, w),
                Row::I8(w) => many_i8(&x, w),
            };
            for (r, s) in sums.into_iter().enumerate() {
                dst[r * count + k] = s;
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn widen_f16(src: &[u16], dst: &mut [f32]) {
        let n = src.len().min(dst.len());
        let mut at = 0;
        while at + 8 <= n {
            let v = lanes(Row::F16(src), at);
            dst[at..at + 8].copy_from_slice(&pulp::cast::<__m256, [f32; 8]>(v));
            at += 8;
        }
        for (d, &s) in dst[at..n].iter_mut().zip(&src[at..n]) {
            *d = half::f16::from_bits(s).to_f32();
        }
    }

    /// e^x for eight lanes, as [`super::avx512`]'s: x = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by
    /// Cephes' degree-6 polynomial, scaled by 2^n. AVX2 has no `scalef`: 2^n is built in the
    /// exponent bits, in two halves so that each is a normal number down to n = -150. Lanes
    /// below -104 (masked scores) give 0.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn exp(x: __m256) -> __m256 {
        let c = |v: f32| _mm256_set1_ps(v);
        let x = _mm256_max_ps(x, c(-104.0));
        let x = _mm256_min_ps(x, c(88.7));
        // Round to nearest, exceptions suppressed.
        let n = _mm256_round_ps::<0x08>(_mm256_mul_ps(x, c(std::f32::consts::LOG2_E)));
        let r = _mm256_fnmadd_ps(n, c(0.693_359_4), x);
        let r = _mm256_fnmadd_ps(n, c(-2.121_944_4e-4), r);
        let mut p = c(1.987_569_1e-4);
        for k in [
            1.398_199_9e-3,
            8.333_452e-3,
            4.166_579_6e-2,
            0.166_666_65,
            0.5,
        ] {
            p = _mm256_fmadd_ps(p, r, c(k));
        }
        let r2 = _mm256_mul_ps(r, r);
        let e = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, c(1.0)));
        let n = _mm256_cvtps_epi32(n);
        let half = _mm256_srai_epi32::<1>(n);
        let rest = _mm256_sub_epi32(n, half);
        let pow2 = |k: __m256i| {
            _mm256_castsi256_ps(_mm256_slli_epi32::<23>(_mm256_add_epi32(
                k,
                _mm256_set1_epi32(127),
            )))
        };
        _mm256_mul_ps(_mm256_mul_ps(e, pow2(half)), pow2(rest))
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn gelu_erf(data: &mut [f32]) {
        use super::{ERF_A, ERF_P};
        let c = |v: f32| _mm256_set1_ps(v);
        let abs = |v: __m256| _mm256_andnot_ps(c(-0.0), v);
        let (body, tail) = data.as_chunks_mut::<8>();
        for b in body.iter_mut() {
            let x: __m256 = pulp::cast(*b);
            let z = abs(_mm256_mul_ps(x, c(std::f32::consts::FRAC_1_SQRT_2)));
            let t = _mm256_div_ps(c(1.0), _mm256_fmadd_ps(c(ERF_P), z, c(1.0)));
            let mut poly = c(ERF_A[4]);
            for &k in ERF_A[..4].iter().rev() {
                poly = _mm256_fmadd_ps(poly, t, c(k));
            }
            poly = _mm256_mul_ps(poly, t);
            let e = exp(_mm256_mul_ps(_mm256_sub_ps(c(0.0), z), z));
            // erf(|x|/√2), then 0.5·x·(1 + sign(x)·erf) = 0.5·x + 0.5·|x|·erf.
            let erf = _mm256_fnmadd_ps(poly, e, c(1.0));
            let half_x = _mm256_mul_ps(x, c(0.5));
            *b = pulp::cast(_mm256_fmadd_ps(abs(half_x), erf, half_x));
        }
        tail.iter_mut()
            .for_each(|v| *v = super::portable::gelu_erf(*v));
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn sum_exp(row: &[f32], max: f32) -> f32 {
        let (body, tail) = row.as_chunks::<8>();
        let vmax = _mm256_set1_ps(max);
        let mut s = [_mm256_setzero_ps(); 2];
        for (i, b) in body.iter().enumerate() {
            s[i % 2] = _mm256_add_ps(s[i % 2], exp(_mm256_sub_ps(pulp::cast(*b), vmax)));
        }
        sum(_mm256_add_ps(s[0], s[1])) + tail.iter().map(|&x| (x - max).exp()).sum::<f32>()
    }

    /// Softmax of each `width`-long row of `data`, in place.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn softmax_rows(data: &mut [f32], width: usize) {
        for row in data.chunks_mut(width) {
            softmax(row);
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn softmax(row: &mut [f32]) {
        let (body, tail) = row.as_chunks_mut::<8>();
        let mut m = _mm256_set1_ps(f32::NEG_INFINITY);
        for b in body.iter() {
            m = _mm256_max_ps(m, pulp::cast(*b));
        }
        let max = pulp::cast::<__m256, [f32; 8]>(m)
            .into_iter()
            .chain(tail.iter().copied())
            .fold(f32::NEG_INFINITY, f32::max);
        let vmax = _mm256_set1_ps(max);
        let mut s = _mm256_setzero_ps();
        for b in body.iter_mut() {
            let e = exp(_mm256_sub_ps(pulp::cast(*b), vmax));
            s = _mm256_add_ps(s, e);
            *b = pulp::cast(e);
        }
        let mut total = sum(s);
        for v in tail.iter_mut() {
            *v = (*v - max).exp();
            total += *v;
        }
        let inv = 1.0 / total;
        let vinv = _mm256_set1_ps(inv);
        for b in body.iter_mut() {
            *b = pulp::cast(_mm256_mul_ps(pulp::cast(*b), vinv));
        }
        tail.iter_mut().for_each(|v| *v *= inv);
    }

    /// Stores the first `dst.len()` (at most eight) lanes of `v`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    fn store(dst: &mut [f32], v: __m256) {
        let lanes = pulp::cast::<__m256, [f32; 8]>(v);
        let n = dst.len().min(8);
        dst[..n].copy_from_slice(&lanes[..n]);
    }

    /// See [`super::Kernels::axpys`]: blocks of 64 lanes of `dst` stay in eight registers
    /// while every row adds its share.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn axpys(x: &[f32], rows: &[Row<'_>], dst: &mut [f32]) {
        let n = dst.len();
        let pairs = || x.iter().zip(rows);
        let mut at = 0;
        while at + 64 <= n {
            let mut acc = [_mm256_setzero_ps(); 8];
            for (&x, &row) in pairs() {
                let x = _mm256_set1_ps(x);
                for (j, acc) in acc.iter_mut().enumerate() {
                    *acc = _mm256_fmadd_ps(x, lanes(row, at + 8 * j), *acc);
                }
            }
            for (j, acc) in acc.iter().enumerate() {
                store(&mut dst[at + 8 * j..at + 8 * (j + 1)], *acc);
            }
            at += 64;
        }
        // The last lanes, eight at a time and then padded: four accumulators taking rows in
        // turn, so that each multiply-add does not wait on the one before.
        while at < n {
            let mut acc = [_mm256_setzero_ps(); 4];
            let full = at + 8 <= n;
            for (e, (&x, &row)) in pairs().enumerate() {
                let w = if full {
                    lanes(row, at)
                } else {
                    tail_lanes(row, at)
                };
                acc[e % 4] = _mm256_fmadd_ps(_mm256_set1_ps(x), w, acc[e % 4]);
            }
            let total = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            let end = n.min(at + 8);
            store(&mut dst[at..end], total);
            at = end;
        }
    }

    /// See [`super::Kernels::axpys_many`]: `R` vectors of weights (`xs`, R × rows) against the
    /// same rows; `dst` is R rows of `width`, of which the first `n` lanes are summed and the
    /// rest zeroed. Blocks of 16 lanes keep 2·R accumulators in registers while each row's
    /// 16 lanes, widened once, are multiplied by every vector's weight.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub fn axpys_group<const R: usize>(
        xs: &[f32],
        rows: &[Row<'_>],
        dst: &mut [f32],
        width: usize,
        n: usize,
    ) {
        let m = rows.len();
        {
            {
                let mut at = 0;
                while at + 16 <= n {
                    let mut acc = [[_mm256_setzero_ps(); 2]; R];
                    for (e, &row) in rows.iter().enumerate() {
                        let (w0, w1) = (lanes(row, at), lanes(row, at + 8));
                        for (r, acc) in acc.iter_mut().enumerate() {
                            let x = _mm256_set1_ps(xs[r * m + e]);
                            acc[0] = _mm256_fmadd_ps(x, w0, acc[0]);
                            acc[1] = _mm256_fmadd_ps(x, w1, acc[1]);
                        }
                    }
                    for (r, acc) in acc.iter().enumerate() {
                        for (j, acc) in acc.iter().enumerate() {
                            let at = r * width + at + 8 * j;
                            store(&mut dst[at..at + 8], *acc);
                        }
                    }
                    at += 16;
                }
                // The last lanes: eight at a time, then padded.
                while at < n {
                    let full = at + 8 <= n;
                    let mut acc = [_mm256_setzero_ps(); R];
                    for (e, &row) in rows.iter().enumerate() {
                        let w = if full {
                            lanes(row, at)
                        } else {
                            tail_lanes(row, at)
                        };
                        for (r, acc) in acc.iter_mut().enumerate() {
                            *acc = _mm256_fmadd_ps(_mm256_set1_ps(xs[r * m + e]), w, *acc);
                        }
                    }
                    let end = n.min(at + 8);
                    for (r, acc) in acc.iter().enumerate() {
                        store(&mut dst[r * width + at..r * width + end], *acc);
                    }
                    at = end;
                }
                for r in 0..R {
                    dst[r * width + n..(r + 1) * width].fill(0.0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let v = (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8;
                (v % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    /// The same weights as f32, f16 and int8 (scaled by 127), for tests that run every layout.
    struct Layouts {
        w: Vec<f32>,
        h: Vec<u16>,
        q: Vec<i8>,
    }

    impl Layouts {
        fn new(w: Vec<f32>) -> Self {
            let h = w
                .iter()
                .map(|&v| half::f16::from_f32(v).to_bits())
                .collect();
            let q = w.iter().map(|&v| (v * 127.0).round() as i8).collect();
            Layouts { w, h, q }
        }

        /// `count` rows of `width` in layout 0 (f32), 1 (f16) or 2 (int8).
        fn rows(&self, layout: usize, count: usize, width: usize) -> Vec<Row<'_>> {
            (0..count)
                .map(|o| {
                    let span = o * width..(o + 1) * width;
                    match layout {
                        0 => Row::F32(&self.w[span]),
                        1 => Row::F16(&self.h[span]),
                        _ => Row::I8(&self.q[span]),
                    }
                })
                .collect()
        }

        /// Weight `i` of a layout, widened exactly.
        fn wide(&self, layout: usize, i: usize) -> f64 {
            match layout {
                0 => f64::from(self.w[i]),
                1 => f64::from(half::f16::from_bits(self.h[i]).to_f32()),
                _ => f64::from(self.q[i]),
            }
        }
    }

    #[test]
    fn every_path_this_cpu_has_is_tested_and_the_switch_lowers_it() {
        let isas: Vec<Isa> = Kernels::every().iter().map(|k| k.isa()).collect();
        #[cfg(target_arch = "x86_64")]
        {
            let mut want = Vec::new();
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
            {
                want.push(Isa::Avx512);
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                want.push(Isa::Avx2);
            }
            want.push(Isa::Scalar);
            assert_eq!(isas, want);
        }
        assert_eq!(Kernels::at_most(Isa::Scalar).isa(), Isa::Scalar);
        assert!(Kernels::at_most(Isa::Avx2).isa() <= Isa::Avx2);
    }

    #[test]
    fn dots_match_a_double_precision_reference_in_every_layout() {
        for k in Kernels::every() {
            dots_match(k);
        }
    }

    fn dots_match(k: Kernels) {
        for len in [1, 15, 16, 17, 64, 100, 512, 2048] {
            let x = data(len, 1);
            let w = Layouts::new(data(len, 2));
            let want: [f64; 3] = std::array::from_fn(|layout| {
                (0..len).map(|i| f64::from(x[i]) * w.wide(layout, i)).sum()
            });
            let rows: Vec<Row<'_>> = (0..3).flat_map(|layout| w.rows(layout, 1, len)).collect();
            let mut got = [0f32; 3];
            k.dots(&x, &rows, &mut got);
            for (g, w) in got.iter().zip(want) {
                let tol = 1e-4 * (1.0 + w.abs()) * (len as f64).sqrt();
                assert!((f64::from(*g) - w).abs() < tol, "len {len}: {g} vs {w}");
            }
        }
    }

    /// erf by its Taylor series, in f64 (converges fast for |x| ≤ 6).
    fn erf(x: f64) -> f64 {
        let mut term = x;
        let mut sum = x;
        for n in 1..200 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn gelu_matches_the_erf_definition() {
        for k in Kernels::every() {
            gelu_matches(k);
        }
    }

    fn gelu_matches(k: Kernels) {
        let mut xs: Vec<f32> = (-600..=600).map(|i| i as f32 / 100.0).collect();
        xs.push(-0.0);
        let want: Vec<f64> = xs
            .iter()
            .map(|&x| {
                let x = f64::from(x);
                0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
            })
            .collect();
        let mut got = xs.clone();
        k.gelu_erf(&mut got);
        for ((x, g), w) in xs.iter().zip(&got).zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-6 * (1.0 + w.abs()),
                "{x}: {g} vs {w}"
            );
        }
        let mut one: Vec<f32> = xs.iter().map(|&x| portable::gelu_erf(x)).collect();
        k.gelu_erf(&mut one[..0]);
        for ((x, g), w) in xs.iter().zip(&one).zip(&want) {
            assert!(
                (f64::from(*g) - w).abs() < 1e-6 * (1.0 + w.abs()),
                "{x}: {g} vs {w}"
            );
        }
    }

    #[test]
    fn many_rows_at_once_match_one_at_a_time() {
        for k in Kernels::every() {
            many_rows_match(k);
        }
    }

    fn many_rows_match(k: Kernels) {
        for (n, width) in [(1, 64), (2, 100), (5, 512), (8, 33), (11, 64)] {
            let xs = data(n * width, 3);
            let w = Layouts::new(data(7 * width, 4));
            for layout in 0..3 {
                let rows = w.rows(layout, 7, width);
                let mut many = vec![0f32; n * 7];
                k.dots_many(&xs, width, &rows, &mut many);
                for r in 0..n {
                    let mut one = [0f32; 7];
                    k.dots(&xs[r * width..(r + 1) * width], &rows, &mut one);
                    for (a, b) in many[r * 7..(r + 1) * 7].iter().zip(one) {
                        assert!(
                            (a - b).abs() < 1e-3 * (1.0 + b.abs()),
                            "{n}×{width}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn weighted_row_sums_match_a_double_precision_reference() {
        for k in Kernels::every() {
            for (count, width) in [
                (1, 1),
                (7, 15),
                (64, 16),
                (3, 127),
                (64, 128),
                (5, 300),
                (64, 1500),
            ] {
                let x = data(count, 7);
                let w = Layouts::new(data(count * width, 8));
                for layout in 0..3 {
                    let widened: Vec<f64> = (0..count * width).map(|i| w.wide(layout, i)).collect();
                    let rows = w.rows(layout, count, width);
                    // One lane more than the rows hold: it gets nothing.
                    let mut got = vec![f32::NAN; width + 1];
                    k.axpys(&x, &rows, &mut got);
                    for (j, g) in got[..width].iter().enumerate() {
                        let want: f64 = (0..count)
                            .map(|e| f64::from(x[e]) * widened[e * width + j])
                            .sum();
                        let scale = (0..count)
                            .map(|e| (f64::from(x[e]) * widened[e * width + j]).abs())
                            .sum::<f64>();
                        assert!(
                            (f64::from(*g) - want).abs() <= 1e-5 * (1.0 + scale),
                            "{count}×{width} layout {layout} lane {j}: {g} vs {want}"
                        );
                    }
                    assert_eq!(got[width], 0.0);
                }
            }
        }
    }

    #[test]
    fn weighted_row_sums_of_many_vectors_match_one_at_a_time() {
        for k in Kernels::every() {
            for (count, width) in [(1, 1), (7, 15), (64, 33), (3, 127), (64, 1500)] {
                let w = Layouts::new(data(count * width, 11));
                for vectors in [1, 2, 5, 8, 9, 13] {
                    let xs = data(vectors * count, 12);
                    for layout in 0..3 {
                        let rows = w.rows(layout, count, width);
                        // One lane more than the rows hold: it gets nothing.
                        let mut got = vec![f32::NAN; vectors * (width + 1)];
                        k.axpys_many(&xs, &rows, &mut got);
                        for (r, got) in got.chunks(width + 1).enumerate() {
                            let mut want = vec![f32::NAN; width + 1];
                            k.axpys(&xs[r * count..(r + 1) * count], &rows, &mut want);
                            for (j, (g, want)) in got.iter().zip(&want).enumerate() {
                                // The same products; only the order of the sums may differ.
                                let term = |e: usize| {
                                    f64::from(xs[r * count + e]) * w.wide(layout, e * width + j)
                                };
                                let scale: f64 = if j < width {
                                    (0..count).map(|e| term(e).abs()).sum()
                                } else {
                                    0.0
                                };
                                let (g, w) = (f64::from(*g), f64::from(*want));
                                assert!(
                                    (g - w).abs() <= 1e-6 * (1.0 + scale),
                                    "{vectors}×{count}×{width} layout {layout} vector {r} lane {j}: {g} vs {w}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn sum_exp_matches_a_double_precision_reference() {
        for k in Kernels::every() {
            sum_exp_matches(k);
        }
    }

    fn sum_exp_matches(k: Kernels) {
        for len in [1, 16, 40, 51_865] {
            let mut row = data(len, 9);
            row.iter_mut().for_each(|v| *v *= 20.0);
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let want: f64 = row.iter().map(|&v| f64::from(v - max).exp()).sum();
            let got = f64::from(k.sum_exp(&row, max));
            assert!((got - want).abs() < 1e-5 * want, "{len}: {got} vs {want}");
        }
    }

    #[test]
    fn widening_half_precision_is_exact() {
        let bits: Vec<u16> = (0..=u16::MAX)
            .step_by(7)
            .chain([0x7c00, 0xfc00, 1])
            .collect();
        for k in Kernels::every() {
            let mut got = vec![0f32; bits.len()];
            k.widen_f16(&bits, &mut got);
            for (b, g) in bits.iter().zip(&got) {
                let want = half::f16::from_bits(*b).to_f32();
                assert!(
                    g.to_bits() == want.to_bits() || (g.is_nan() && want.is_nan()),
                    "{b:#x}"
                );
            }
        }
    }

    #[test]
    fn softmax_matches_the_definition_and_masks_to_zero() {
        for k in Kernels::every() {
            softmax_matches(k);
        }
    }

    fn softmax_matches(k: Kernels) {
        for width in [1, 7, 16, 33, 1500] {
            let mut rows = data(width * 3, 7);
            rows.iter_mut().for_each(|v| *v *= 30.0);
            rows[0] = f32::NEG_INFINITY;
            let want: Vec<f64> = rows
                .chunks(width)
                .flat_map(|r| {
                    let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    let e: Vec<f64> = r.iter().map(|&v| f64::from(v - m).exp()).collect();
                    let s: f64 = e.iter().sum();
                    e.into_iter().map(move |v| v / s)
                })
                .collect();
            k.softmax_rows(&mut rows, width);
            for (i, (g, w)) in rows.iter().zip(&want).enumerate() {
                if width > 1 || i > 0 {
                    assert!(
                        (f64::from(*g) - w).abs() < 2e-6 * (1.0 + w),
                        "{width}: {g} vs {w}"
                    );
                }
            }
            if width > 1 {
                assert!(rows[0] < 1e-30, "a masked score weighs nothing");
            }
        }
    }
}
