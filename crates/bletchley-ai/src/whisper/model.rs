//! The Whisper network: encoder, and a decoder that keeps its keys and values.
//!
//! The stock candle example recomputes the whole decoder prefix for every new token; here each
//! self-attention layer appends to a cache, and the cross-attention keys and values are computed
//! once per audio window, so one decoding step costs one token's worth of work. Several hypotheses
//! (beam search) run as one batch; [`DecoderState::reorder`] follows the beams as they are pruned.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::attention_rows::{CrossRows, SelfRows};
use super::bf16::{self, Bf16Kernel, PackedBf16};
use super::config::ModelConfig;
use super::rows::RowMatrix;
use super::simd::Kernels;
use crate::error::{Error, Result};

/// Layer-norm epsilon of every Whisper checkpoint.
const LAYER_NORM_EPS: f64 = 1e-5;

/// Weights by Hugging Face name (`model.encoder.layers.0.fc1.weight`, ...), as both loaders
/// produce them.
pub(crate) type Weights = HashMap<String, Tensor>;

/// How the decoder holds its weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightFormat {
    /// 32-bit floats: the reference.
    F32,
    /// Half precision: exact for the float16 packages Whisper ships in (and what they are
    /// fetched as), with half of f32's memory traffic per token. The default.
    F16,
    /// int8 with one scale per output row, weights only (activations stay f32): a quarter of
    /// the decoder's memory traffic per token.
    ///
    /// In both rounded formats the encoder, bound by arithmetic, multiplies in bf16 with f32
    /// sums where the CPU has AVX-512 BF16 (see `bf16.rs`), and in f32 elsewhere.
    Int8,
}

fn take(w: &mut Weights, name: &str) -> Result<Tensor> {
    w.remove(name)
        .ok_or_else(|| Error::Model(format!("the model has no weight {name}")))
}

/// A linear layer.
enum Linear {
    /// A tensor, for many-row products (the encoder).
    Dense { w: Tensor, b: Option<Tensor> },
    /// Host rows, for few-row products (decoder steps), and where the layer also meets the
    /// audio's 1,500 rows (the cross-attention keys and values), a bf16 copy for those.
    Rows {
        w: RowMatrix,
        /// The bias, on the host: a step adds it to each output row.
        b: Option<Vec<f32>>,
        many: Option<Bf16Rows>,
    },
    /// Rounded to bf16 for the CPU's bf16 dot products (the encoder, in the rounded formats).
    Bf16(Bf16Rows),
}

/// A matrix packed for the bf16 kernel, with the proof that this CPU runs it.
struct Bf16Rows {
    w: PackedBf16,
    kernel: Bf16Kernel,
}

impl Bf16Rows {
    /// `w` (`out` × `inp`) and its bias, where the CPU has the instructions.
    fn pack(w: &[f32], out: usize, inp: usize, bias: Option<&[f32]>) -> Option<Self> {
        Some(Bf16Rows {
            kernel: Bf16Kernel::detect()?,
            w: PackedBf16::pack(w, out, inp, bias),
        })
    }

    /// `x` [n, inp] times the matrix, plus the bias.
    fn forward(&self, flat: &Tensor) -> Result<Tensor> {
        let n = flat.dim(0)?;
        let xs = flat.flatten_all()?.to_vec1::<f32>()?;
        let y = self.w.matmul(self.kernel, &xs);
        Ok(Tensor::from_vec(y, (n, self.w.out()), flat.device())?)
    }
}

/// Up to this many input rows, products run on host rows: every decoder call (a step, a
/// window's prompt of up to 224 tokens, the word-timing pass), which then reads the f16 rows
/// as they are. Widening a whole matrix to f32 for the general matrix kernel cost more than it
/// saved for a prompt (measured: 99 prompt tokens 0.12-0.13 s → 0.09-0.11 s). The audio's
/// 1,500 rows (the cross-attention keys and values, once per window) are faster through it.
const SMALL_ROWS: usize = 512;

impl Linear {
    /// `steps`: the layer runs on a handful of rows at a time (the decoder).
    fn load(
        w: &mut Weights,
        prefix: &str,
        bias: bool,
        format: WeightFormat,
        steps: bool,
    ) -> Result<Self> {
        let weight = take(w, &format!("{prefix}.weight"))?;
        let b = if bias {
            Some(take(w, &format!("{prefix}.bias"))?)
        } else {
            w.remove(&format!("{prefix}.bias"));
            None
        };
        if !weight.device().is_cpu() {
            // On a GPU every product stays a tensor on the device: copying a step's rows to
            // the host and back would cost more than the product.
            return Ok(Linear::Dense { w: weight, b });
        }
        if !steps {
            // f32 is the exact reference: it stays on candle's f32 kernel.
            if format != WeightFormat::F32 && weight.device().is_cpu() {
                let (out, inp) = weight.dims2()?;
                let flat = weight.flatten_all()?.to_vec1::<f32>()?;
                let bias = b.as_ref().map(Tensor::to_vec1::<f32>).transpose()?;
                if let Some(packed) = Bf16Rows::pack(&flat, out, inp, bias.as_deref()) {
                    return Ok(Linear::Bf16(packed));
                }
            }
            return Ok(Linear::Dense { w: weight, b });
        }
        Ok(Linear::Rows {
            w: Self::rows(&weight, format)?,
            b: b.as_ref().map(Tensor::to_vec1::<f32>).transpose()?,
            many: None,
        })
    }

    /// `x` (rows of the layer's input width) times the matrix, plus the bias, on the host: a
    /// decoder step's few rows, without a tensor per operation. Decoder matrices are host rows
    /// by construction; any other is an error.
    fn host(&self, x: &[f32]) -> Result<Vec<f32>> {
        let Linear::Rows { w, b, .. } = self else {
            return Err(Error::Model(
                "a host product asked of a matrix kept as a tensor".into(),
            ));
        };
        let mut y = w.matmul(x);
        if let Some(b) = b {
            for row in y.chunks_exact_mut(w.out.max(1)) {
                row.iter_mut().zip(b).for_each(|(v, b)| *v += b);
            }
        }
        Ok(y)
    }

    /// Adds the bf16 copy for products over the audio's rows (see [`Linear::Rows`]), in the
    /// rounded formats.
    fn for_audio_rows(self, format: WeightFormat) -> Result<Self> {
        let Linear::Rows { w, b, many: None } = self else {
            return Ok(self);
        };
        let many = match format {
            WeightFormat::F32 => None,
            _ => Bf16Rows::pack(&w.to_f32(), w.out, w.inp, b.as_deref()),
        };
        Ok(Linear::Rows { w, b, many })
    }

    fn rows(weight: &Tensor, format: WeightFormat) -> Result<RowMatrix> {
        let (out, inp) = weight.dims2()?;
        let flat = weight.flatten_all()?.to_vec1::<f32>()?;
        Ok(match format {
            WeightFormat::F32 => RowMatrix::f32(flat, out, inp),
            WeightFormat::F16 => RowMatrix::f16(&flat, out, inp),
            WeightFormat::Int8 => RowMatrix::int8(&flat, out, inp),
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let inp = dims[dims.len() - 1];
        let n: usize = dims[..dims.len() - 1].iter().product();
        let flat = x.reshape((n, inp))?;
        let (y, b) = match self {
            Linear::Rows { w, .. } if n <= SMALL_ROWS => {
                let xs = flat.flatten_all()?.to_vec1::<f32>()?;
                (
                    Tensor::from_vec(self.host(&xs)?, (n, w.out), x.device())?,
                    None,
                )
            }
            Linear::Rows {
                many: Some(packed), ..
            }
            | Linear::Bf16(packed) => (packed.forward(&flat)?, None),
            Linear::Rows { w, b, .. } => {
                // The audio's rows, once per window: worth building the matrix as a tensor.
                let wt = Tensor::from_vec(w.to_f32(), (w.out, w.inp), x.device())?;
                let b = b
                    .as_deref()
                    .map(|b| Tensor::new(b, x.device()))
                    .transpose()?;
                (flat.matmul(&wt.t()?)?, b)
            }
            Linear::Dense { w, b } => (flat.matmul(&w.t()?)?, b.clone()),
        };
        let mut out_dims = dims;
        let last = out_dims.len() - 1;
        out_dims[last] = y.dim(1)?;
        let y = y.reshape(out_dims)?;
        Ok(match b {
            Some(b) => y.broadcast_add(&b)?,
            None => y,
        })
    }
}

struct LayerNorm {
    w: Tensor,
    b: Tensor,
    /// The same scale and shift on the host, for decoder steps (see [`DecoderLayer::step_rows`]).
    host: (Vec<f32>, Vec<f32>),
}

impl LayerNorm {
    fn load(w: &mut Weights, prefix: &str) -> Result<Self> {
        let (w, b) = (
            take(w, &format!("{prefix}.weight"))?,
            take(w, &format!("{prefix}.bias"))?,
        );
        let host = (
            w.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
        );
        Ok(LayerNorm { w, b, host })
    }

    /// Normalises each row of `x` (rows as wide as the scale) on the host, with candle's
    /// arithmetic (one pass of sums and sums of squares, in this order), so that a step on
    /// host rows computes what the tensor path computes, bit for bit.
    fn rows(&self, x: &[f32]) -> Vec<f32> {
        let (scale, shift) = &self.host;
        let d = scale.len().max(1);
        let mut y = vec![0f32; x.len()];
        for (row, out) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)) {
            let (mut sum, mut sum2) = (0f32, 0f32);
            for &v in row {
                sum += v;
                sum2 += v * v;
            }
            let mean = sum / d as f32;
            let var = sum2 / d as f32 - mean * mean;
            let inv = (var + LAYER_NORM_EPS as f32).sqrt().recip();
            for (((o, &v), &g), &b) in out.iter_mut().zip(row).zip(scale).zip(shift) {
                *o = (v - mean) * inv * g + b;
            }
        }
        y
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(
            &x.contiguous()?,
            &self.w,
            &self.b,
            LAYER_NORM_EPS as f32,
        )?)
    }
}

/// Softmax over the last dimension with our vector kernel on the CPU (candle's takes e^x one
/// lane at a time: an encoder window takes 108 million of them), candle's elsewhere.
fn softmax_last_dim(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return Ok(candle_nn::ops::softmax_last_dim(x)?);
    }
    Ok(x.contiguous()?
        .apply_op1_no_bwd(&CpuKernel(Pointwise::Softmax, Kernels::detect()))?)
}

/// GELU (erf form) with our vector kernel on the CPU, candle's elsewhere.
fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() {
        return Ok(x.gelu_erf()?);
    }
    Ok(x.contiguous()?
        .apply_op1_no_bwd(&CpuKernel(Pointwise::Gelu, Kernels::detect()))?)
}

/// What [`CpuKernel`] computes.
#[derive(Clone, Copy)]
enum Pointwise {
    Softmax,
    Gelu,
}

/// A tensor operation run by our own vector kernels (`simd.rs`) over a contiguous f32 tensor.
struct CpuKernel(Pointwise, Kernels);

impl candle_core::CustomOp1 for CpuKernel {
    fn name(&self) -> &'static str {
        match self.0 {
            Pointwise::Softmax => "softmax-last-dim",
            Pointwise::Gelu => "gelu-erf",
        }
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        use rayon::prelude::*;
        let candle_core::CpuStorage::F32(data) = storage else {
            candle_core::bail!("{}: f32 tensors only", self.name());
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("{}: contiguous tensors only", self.name());
        };
        let mut out = data[start..end].to_vec();
        let kernels = self.1;
        match self.0 {
            Pointwise::Softmax => {
                let width = layout.dims().last().copied().unwrap_or(1).max(1);
                // Enough rows per task to outweigh handing work between threads.
                let per_task = width * (4096 / width).max(1);
                out.par_chunks_mut(per_task)
                    .for_each(|rows| kernels.softmax_rows(rows, width));
            }
            Pointwise::Gelu => out
                .par_chunks_mut(16 * 1024)
                .for_each(|part| kernels.gelu_erf(part)),
        }
        Ok((candle_core::CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// Query rows per block in the encoder's attention (see [`Attention::attend_blocked`]).
const QUERY_BLOCK: usize = 250;

/// Multi-head attention; `k` has no bias in Whisper.
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    out: Linear,
    heads: usize,
}

impl Attention {
    fn load(
        w: &mut Weights,
        prefix: &str,
        heads: usize,
        format: WeightFormat,
        steps: bool,
    ) -> Result<Self> {
        Ok(Attention {
            q: Linear::load(w, &format!("{prefix}.q_proj"), true, format, steps)?,
            k: Linear::load(w, &format!("{prefix}.k_proj"), false, format, steps)?,
            v: Linear::load(w, &format!("{prefix}.v_proj"), true, format, steps)?,
            out: Linear::load(w, &format!("{prefix}.out_proj"), true, format, steps)?,
            heads,
        })
    }

    /// Cross-attention: the keys and values are computed from the audio's rows, once a window.
    fn for_audio(self, format: WeightFormat) -> Result<Self> {
        Ok(Attention {
            k: self.k.for_audio_rows(format)?,
            v: self.v.for_audio_rows(format)?,
            ..self
        })
    }

    /// [batch, time, d] → [batch, heads, time, d/heads].
    fn split(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, d / self.heads))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    fn keys_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split(&self.k.forward(x)?)?,
            self.split(&self.v.forward(x)?)?,
        ))
    }

    /// Keys already transposed to [batch, heads, d/heads, time], for keys that are reused at
    /// every step (the audio's): the transposition is paid once per window, not per token.
    fn keys_t_values(&self, x: &Tensor) -> Result<(Tensor, Tensor)> {
        let (k, v) = self.keys_values(x)?;
        Ok((k.t()?.contiguous()?, v))
    }

    /// Self-attention of a decoding step over the host cache (see [`SelfRows`]): appends the
    /// new tokens' keys and values, each token attending up to itself.
    fn attend_self_rows(
        &self,
        x: &Tensor,
        cache: &mut SelfRows,
        layer: usize,
        past: usize,
    ) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        let scale = ((d / self.heads.max(1)) as f64).powf(-0.5);
        let host = |t: Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        let q = host((self.q.forward(x)? * scale)?)?;
        let k = host(self.k.forward(x)?)?;
        let v = host(self.v.forward(x)?)?;
        let y = cache.attend(layer, past, b, &q, &k, &v)?;
        self.out
            .forward(&Tensor::from_vec(y, (b, t, d), x.device())?)
    }

    /// Cross-attention of a decoding step over host rows (see [`CrossRows`]).
    fn attend_rows(
        &self,
        x: &Tensor,
        rows: &CrossRows,
        want_weights: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (b, t, d) = x.dims3()?;
        let scale = (rows.head_dim as f64).powf(-0.5);
        let q = (self.q.forward(x)? * scale)?
            .flatten_all()?
            .to_vec1::<f32>()?;
        let (y, weights) = rows.attend(&q, want_weights);
        let y = Tensor::from_vec(y, (b, t, d), x.device())?;
        let out = self.out.forward(&y)?;
        let weights = if want_weights {
            // [rows, heads, time] → [batch, heads, t, time].
            let w = Tensor::from_vec(weights, (b, t, rows.heads, rows.time), x.device())?;
            Some(w.transpose(1, 2)?.contiguous()?)
        } else {
            None
        };
        Ok((out, weights))
    }

    /// The encoder's self-attention over a window's audio rows: on bf16 products where its
    /// projections are (see [`super::bf16::attention`]), else on candle's f32 kernel.
    fn attend_audio(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, d) = x.dims3()?;
        if let (1, Linear::Bf16(q), Linear::Bf16(_), Linear::Bf16(_)) =
            (b, &self.q, &self.k, &self.v)
        {
            let scale = (d as f64 / self.heads as f64).powf(-0.5);
            let host = |proj: &Linear, scale: Option<f64>| -> Result<Vec<f32>> {
                let y = proj.forward(x)?;
                let y = match scale {
                    Some(s) => (y * s)?,
                    None => y,
                };
                Ok(y.flatten_all()?.to_vec1::<f32>()?)
            };
            let y = bf16::attention(
                q.kernel,
                Kernels::detect(),
                &host(&self.q, Some(scale))?,
                &host(&self.k, None)?,
                &host(&self.v, None)?,
                t,
                self.heads,
            );
            return self
                .out
                .forward(&Tensor::from_vec(y, (1, t, d), x.device())?);
        }
        let (k, v) = self.keys_t_values(x)?;
        Ok(self.attend(x, &k, &v, None, false)?.0)
    }

    /// The encoder's attention one head and one block of queries at a time: the scores of a
    /// block (QUERY_BLOCK × 1,500) stay in cache, where all heads' at once (8 × 1,500 × 1,500,
    /// 72 MB) are written to fresh memory and read back twice per layer.
    fn attend_blocked(q: &Tensor, k_t: &Tensor, v: &Tensor) -> Result<Tensor> {
        let (_, heads, t, _) = q.dims4()?;
        let mut per_head = Vec::with_capacity(heads);
        for h in 0..heads {
            let (qh, kh, vh) = (q.narrow(1, h, 1)?, k_t.narrow(1, h, 1)?, v.narrow(1, h, 1)?);
            let mut blocks = Vec::with_capacity(t.div_ceil(QUERY_BLOCK));
            for start in (0..t).step_by(QUERY_BLOCK) {
                let rows = qh.narrow(2, start, QUERY_BLOCK.min(t - start))?;
                let weights = softmax_last_dim(&rows.matmul(&kh)?)?;
                blocks.push(weights.matmul(&vh)?);
            }
            per_head.push(Tensor::cat(&blocks, 2)?);
        }
        Ok(Tensor::cat(&per_head, 1)?)
    }

    /// Attends `x`'s queries over the given (transposed) keys and values. Returns the output and, when asked,
    /// the attention weights (for word timestamps).
    fn attend(
        &self,
        x: &Tensor,
        k_t: &Tensor,
        v: &Tensor,
        mask: Option<&Tensor>,
        want_weights: bool,
    ) -> Result<(Tensor, Option<Tensor>)> {
        let (b, t, d) = x.dims3()?;
        let hd = d / self.heads;
        let scale = (hd as f64).powf(-0.5);
        let q = (self.split(&self.q.forward(x)?)? * scale)?;
        // Hypotheses of a beam share one audio: their queries are folded into one batch over the
        // single copy of the cross-attention keys and values instead of copying those per beam.
        let shared = k_t.dim(0)? == 1 && b > 1;
        let q = if shared {
            q.transpose(0, 1)?.reshape((1, self.heads, b * t, hd))?
        } else {
            q
        };
        if b == 1 && mask.is_none() && !want_weights && t >= 2 * QUERY_BLOCK {
            let y = Self::attend_blocked(&q, k_t, v)?;
            let y = y.transpose(1, 2)?.reshape((b, t, d))?;
            return Ok((self.out.forward(&y)?, None));
        }
        let mut scores = q.matmul(k_t)?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = softmax_last_dim(&scores)?;
        let y = weights.matmul(v)?;
        let (y, weights) = if shared {
            let unfold = |z: Tensor| -> Result<Tensor> {
                let s = z.dim(3)?;
                Ok(z.reshape((self.heads, b, t, s))?
                    .transpose(0, 1)?
                    .contiguous()?)
            };
            (unfold(y)?, unfold(weights)?)
        } else {
            (y, weights)
        };
        let y = y.transpose(1, 2)?.reshape((b, t, d))?;
        let out = self.out.forward(&y)?;
        Ok((out, want_weights.then_some(weights)))
    }
}

struct Mlp {
    fc1: Linear,
    fc2: Linear,
}

impl Mlp {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let (Linear::Bf16(fc1), Linear::Bf16(fc2)) = (&self.fc1, &self.fc2) {
            let mut dims = x.dims().to_vec();
            let xs = x.flatten_all()?.to_vec1::<f32>()?;
            let y = fc1.w.mlp(&fc2.w, fc1.kernel, Kernels::detect(), &xs);
            if let Some(last) = dims.last_mut() {
                *last = fc2.w.out();
            }
            return Ok(Tensor::from_vec(y, dims, x.device())?);
        }
        self.fc2.forward(&gelu_erf(&self.fc1.forward(x)?)?)
    }
}

struct EncoderLayer {
    attn: Attention,
    attn_ln: LayerNorm,
    mlp: Mlp,
    mlp_ln: LayerNorm,
}

struct DecoderLayer {
    attn: Attention,
    attn_ln: LayerNorm,
    cross: Attention,
    cross_ln: LayerNorm,
    mlp: Mlp,
    mlp_ln: LayerNorm,
}

impl DecoderLayer {
    /// One layer over `x` (`batch` × `t` rows of `d`) on the host, with both caches as host
    /// rows. A step is a few rows: candle's per-operation tensors (a dozen a layer, each
    /// allocated, dispatched and some handed to the thread pool) cost more than the products'
    /// arithmetic. Returns the cross-attention weights [rows × heads × time] when asked.
    #[allow(clippy::too_many_arguments)]
    fn step_rows(
        &self,
        x: &mut [f32],
        batch: usize,
        cache: &mut SelfRows,
        cross: &CrossRows,
        layer: usize,
        past: usize,
        want_weights: bool,
        kernels: Kernels,
    ) -> Result<Vec<f32>> {
        let scaled = |mut v: Vec<f32>, scale: f32| {
            v.iter_mut().for_each(|v| *v *= scale);
            v
        };
        let add = |x: &mut [f32], a: &[f32]| x.iter_mut().zip(a).for_each(|(x, a)| *x += a);
        let scale = (cross.head_dim as f32).powf(-0.5);
        let h = self.attn_ln.rows(x);
        let q = scaled(self.attn.q.host(&h)?, scale);
        let y = cache.attend(
            layer,
            past,
            batch,
            &q,
            &self.attn.k.host(&h)?,
            &self.attn.v.host(&h)?,
        )?;
        add(x, &self.attn.out.host(&y)?);
        let h = self.cross_ln.rows(x);
        let q = scaled(self.cross.q.host(&h)?, scale);
        let (y, weights) = cross.attend(&q, want_weights);
        add(x, &self.cross.out.host(&y)?);
        let h = self.mlp_ln.rows(x);
        let mut hidden = self.mlp.fc1.host(&h)?;
        kernels.gelu_erf(&mut hidden);
        add(x, &self.mlp.fc2.host(&hidden)?);
        Ok(weights)
    }
}

/// The audio encoder: log-mel features of one 30-second window to 1,500 audio states.
pub struct Encoder {
    conv1: (Tensor, Tensor),
    conv2: (Tensor, Tensor),
    positions: Tensor,
    layers: Vec<EncoderLayer>,
    ln: LayerNorm,
}

/// The text decoder.
pub struct Decoder {
    tokens: Tensor,
    positions: Tensor,
    layers: Vec<DecoderLayer>,
    ln: LayerNorm,
    /// The output projection, tied to the token embedding.
    logits: Linear,
    /// Whether the audio's keys and values are held as f16 on the host (the rounded weight
    /// formats); f32 weights keep them exact.
    half_audio: bool,
    /// Whether steps run on host rows (the CPU) or on tensors (a GPU): see [`Whisper::placed`].
    host_rows: bool,
}

/// A loaded Whisper model.
pub struct Whisper {
    /// Sizes read from the weights.
    pub config: ModelConfig,
    /// The audio encoder.
    pub encoder: Encoder,
    /// The text decoder.
    pub decoder: Decoder,
    /// Where the tensors live.
    pub device: Device,
}

fn mlp(w: &mut Weights, prefix: &str, format: WeightFormat, steps: bool) -> Result<Mlp> {
    Ok(Mlp {
        fc1: Linear::load(w, &format!("{prefix}.fc1"), true, format, steps)?,
        fc2: Linear::load(w, &format!("{prefix}.fc2"), true, format, steps)?,
    })
}

impl Whisper {
    /// Builds the network from weights named as Hugging Face names them, on the device the
    /// weights are on.
    pub(crate) fn from_weights(
        w: Weights,
        config: ModelConfig,
        format: WeightFormat,
        device: Device,
    ) -> Result<Self> {
        let host_rows = device.is_cpu();
        Self::placed(w, config, format, device, host_rows)
    }

    /// `host_rows`: the decoder runs its steps on host rows (the CPU's fast path); otherwise
    /// every layer stays a tensor, as on a GPU. Tests build the tensor layout on the CPU to
    /// check the GPU's code path against the host one.
    fn placed(
        mut w: Weights,
        config: ModelConfig,
        format: WeightFormat,
        device: Device,
        host_rows: bool,
    ) -> Result<Self> {
        let w = &mut w;
        let mut enc_layers = Vec::new();
        for i in 0..config.encoder_layers {
            let p = format!("model.encoder.layers.{i}");
            enc_layers.push(EncoderLayer {
                // The encoder is bound by arithmetic, not memory: f32, or bf16 products with
                // f32 sums in the rounded formats where the CPU has them.
                attn: Attention::load(
                    w,
                    &format!("{p}.self_attn"),
                    config.encoder_heads,
                    format,
                    false,
                )?,
                attn_ln: LayerNorm::load(w, &format!("{p}.self_attn_layer_norm"))?,
                mlp: mlp(w, &p, format, false)?,
                mlp_ln: LayerNorm::load(w, &format!("{p}.final_layer_norm"))?,
            });
        }
        let encoder = Encoder {
            conv1: (
                take(w, "model.encoder.conv1.weight")?,
                take(w, "model.encoder.conv1.bias")?,
            ),
            conv2: (
                take(w, "model.encoder.conv2.weight")?,
                take(w, "model.encoder.conv2.bias")?,
            ),
            positions: take(w, "model.encoder.embed_positions.weight")?,
            layers: enc_layers,
            ln: LayerNorm::load(w, "model.encoder.layer_norm")?,
        };
        let mut dec_layers = Vec::new();
        for i in 0..config.decoder_layers {
            let p = format!("model.decoder.layers.{i}");
            dec_layers.push(DecoderLayer {
                attn: Attention::load(
                    w,
                    &format!("{p}.self_attn"),
                    config.decoder_heads,
                    format,
                    host_rows,
                )?,
                attn_ln: LayerNorm::load(w, &format!("{p}.self_attn_layer_norm"))?,
                cross: Attention::load(
                    w,
                    &format!("{p}.encoder_attn"),
                    config.decoder_heads,
                    format,
                    host_rows,
                )?
                .for_audio(format)?,
                cross_ln: LayerNorm::load(w, &format!("{p}.encoder_attn_layer_norm"))?,
                mlp: mlp(w, &p, format, host_rows)?,
                mlp_ln: LayerNorm::load(w, &format!("{p}.final_layer_norm"))?,
            });
        }
        let tokens = take(w, "model.decoder.embed_tokens.weight")?;
        let logits = if host_rows {
            Linear::Rows {
                w: Linear::rows(&tokens, format)?,
                b: None,
                many: None,
            }
        } else {
            Linear::Dense {
                w: tokens.clone(),
                b: None,
            }
        };
        let mut decoder = Decoder {
            tokens,
            positions: take(w, "model.decoder.embed_positions.weight")?,
            layers: dec_layers,
            ln: LayerNorm::load(w, "model.decoder.layer_norm")?,
            logits,
            half_audio: format != WeightFormat::F32,
            host_rows,
        };
        // Every decoder step streams all of these: one mapping on huge pages.
        let mut matrices: Vec<&mut Linear> = vec![&mut decoder.logits];
        for l in &mut decoder.layers {
            matrices.extend([
                &mut l.attn.q,
                &mut l.attn.k,
                &mut l.attn.v,
                &mut l.attn.out,
                &mut l.cross.q,
                &mut l.cross.out,
                &mut l.mlp.fc1,
                &mut l.mlp.fc2,
            ]);
        }
        RowMatrix::gather(
            matrices
                .into_iter()
                .filter_map(|m| match m {
                    Linear::Rows { w, .. } => Some(w),
                    _ => None,
                })
                .collect(),
        );
        Ok(Whisper {
            config,
            encoder,
            decoder,
            device,
        })
    }
}

impl Encoder {
    /// Encodes log-mel features [batch, mels, 3000] into audio states [batch, 1500, d].
    pub fn forward(&self, mel: &Tensor) -> Result<Tensor> {
        let x = gelu_erf(
            &mel.conv1d(&self.conv1.0, 1, 1, 1, 1)?
                .broadcast_add(&self.conv1.1.reshape((1, (), 1))?)?,
        )?;
        let x = gelu_erf(
            &x.conv1d(&self.conv2.0, 1, 2, 1, 1)?
                .broadcast_add(&self.conv2.1.reshape((1, (), 1))?)?,
        )?;
        let x = x.transpose(1, 2)?;
        let t = x.dim(1)?;
        let mut x = x.broadcast_add(&self.positions.narrow(0, 0, t)?)?;
        for layer in &self.layers {
            let h = layer.attn_ln.forward(&x)?;
            x = (x + layer.attn.attend_audio(&h)?)?;
            let h = layer.mlp_ln.forward(&x)?;
            x = (&x + layer.mlp.forward(&h)?)?;
        }
        self.ln.forward(&x)
    }
}

/// Per-window decoder memory: the cross-attention keys and values of the audio, and the
/// self-attention keys and values of every token decoded so far, per layer, batched by hypothesis.
pub struct DecoderState {
    cross: Vec<(Tensor, Tensor)>,
    /// The same keys and values as host rows, when the decoder runs on the CPU.
    cross_rows: Vec<Option<CrossRows>>,
    selfs: Vec<Option<(Tensor, Tensor)>>,
    /// The tokens' keys and values as host rows, when the decoder runs on the CPU (then
    /// `selfs` stays empty).
    self_rows: Option<SelfRows>,
    /// How many token positions are cached.
    pub len: usize,
}

impl DecoderState {
    /// Keeps only the hypotheses at `rows`, in that order (duplicates allowed): beam search
    /// prunes and forks hypotheses between steps.
    pub fn reorder(&mut self, rows: &[u32]) -> Result<()> {
        if let Some(cache) = &mut self.self_rows {
            return cache.reorder(rows, self.len);
        }
        let Some(Some((k, _))) = self.selfs.first() else {
            return Ok(());
        };
        let idx = Tensor::new(rows, k.device())?;
        for kv in self.selfs.iter_mut().flatten() {
            *kv = (kv.0.index_select(&idx, 0)?, kv.1.index_select(&idx, 0)?);
        }
        Ok(())
    }
}

impl Decoder {
    /// How many token positions the decoder has (448 for every Whisper checkpoint).
    pub fn max_tokens(&self) -> usize {
        self.positions.dim(0).unwrap_or(0)
    }

    /// Starts decoding over audio states [batch, 1500, d].
    pub fn start(&self, audio: &Tensor) -> Result<DecoderState> {
        let mut cross = Vec::with_capacity(self.layers.len());
        for layer in &self.layers {
            cross.push(layer.cross.keys_t_values(audio)?);
        }
        let cross_rows = if self.host_rows {
            cross
                .iter()
                .map(|(k_t, v)| CrossRows::new(k_t, v, self.half_audio))
                .collect::<Result<_>>()?
        } else {
            std::iter::repeat_with(|| None).take(cross.len()).collect()
        };
        let self_rows = match self.layers.first() {
            Some(layer) if self.host_rows && audio.device().is_cpu() => {
                let d = self.positions.dim(1)?;
                let heads = layer.attn.heads;
                Some(SelfRows::new(
                    self.layers.len(),
                    heads,
                    d / heads.max(1),
                    self.max_tokens(),
                ))
            }
            _ => None,
        };
        Ok(DecoderState {
            cross,
            cross_rows,
            self_rows,
            selfs: vec![None; self.layers.len()],
            len: 0,
        })
    }

    /// Feeds tokens [batch, n] after what the state holds; returns the logits of every new
    /// position [batch, n, vocab] and, when asked, the cross-attention weights per layer
    /// [batch, heads, n, 1500].
    pub fn step(
        &self,
        tokens: &Tensor,
        state: &mut DecoderState,
        want_cross_weights: bool,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        self.step_at(tokens, state, want_cross_weights, None)
    }

    /// As [`Decoder::step`], with logits only at the new positions `at` (indices into the
    /// `n` fed): [batch, at.len(), vocab]. A window's prompt (up to 224 tokens) needs two of
    /// them; projecting every position onto the 51,865-token vocabulary would cost a
    /// 26-million-weight product per position.
    pub fn step_at(
        &self,
        tokens: &Tensor,
        state: &mut DecoderState,
        want_cross_weights: bool,
        at: Option<&[u32]>,
    ) -> Result<(Tensor, Vec<Tensor>)> {
        let (_, n) = tokens.dims2()?;
        let past = state.len;
        if past + n > self.positions.dim(0)? {
            return Err(Error::Model(format!(
                "the decoder holds at most {} tokens",
                self.positions.dim(0)?
            )));
        }
        let emb =
            self.tokens
                .embedding(&tokens.flatten_all()?)?
                .reshape((tokens.dim(0)?, n, ()))?;
        let mut x = emb.broadcast_add(&self.positions.narrow(0, past, n)?)?;
        let mask = if n > 1 {
            let mut m = vec![0f32; n * (past + n)];
            for i in 0..n {
                for j in (past + i + 1)..(past + n) {
                    m[i * (past + n) + j] = f32::NEG_INFINITY;
                }
            }
            Some(Tensor::from_vec(m, (n, past + n), tokens.device())?)
        } else {
            None
        };
        let mut weights = Vec::new();
        if let Some(cache) = &mut state.self_rows
            && let Some(cross) = state
                .cross_rows
                .iter()
                .map(Option::as_ref)
                .collect::<Option<Vec<_>>>()
        {
            let (batch, d) = (x.dim(0)?, x.dim(2)?);
            let mut rows = x.flatten_all()?.to_vec1::<f32>()?;
            let kernels = Kernels::detect();
            for (i, (layer, cross)) in self.layers.iter().zip(cross).enumerate() {
                let w = layer.step_rows(
                    &mut rows,
                    batch,
                    cache,
                    cross,
                    i,
                    past,
                    want_cross_weights,
                    kernels,
                )?;
                if want_cross_weights {
                    // [rows, heads, time] → [batch, heads, t, time].
                    let w = Tensor::from_vec(w, (batch, n, cross.heads, cross.time), x.device())?;
                    weights.push(w.transpose(1, 2)?.contiguous()?);
                }
            }
            x = Tensor::from_vec(rows, (batch, n, d), x.device())?;
        } else {
            for (i, layer) in self.layers.iter().enumerate() {
                let h = layer.attn_ln.forward(&x)?;
                let a = match &mut state.self_rows {
                    Some(cache) => layer.attn.attend_self_rows(&h, cache, i, past)?,
                    None => {
                        // The cache holds keys transposed, [batch, heads, d/heads, time].
                        let (k, v) = layer.attn.keys_t_values(&h)?;
                        let (k, v) = match &state.selfs[i] {
                            Some((pk, pv)) => {
                                (Tensor::cat(&[pk, &k], 3)?, Tensor::cat(&[pv, &v], 2)?)
                            }
                            None => (k, v),
                        };
                        let (a, _) = layer.attn.attend(&h, &k, &v, mask.as_ref(), false)?;
                        state.selfs[i] = Some((k, v));
                        a
                    }
                };
                x = (x + a)?;
                let h = layer.cross_ln.forward(&x)?;
                let (ck, cv) = &state.cross[i];
                let (a, w) = match &state.cross_rows[i] {
                    Some(rows) => layer.cross.attend_rows(&h, rows, want_cross_weights)?,
                    None => layer.cross.attend(&h, ck, cv, None, want_cross_weights)?,
                };
                if let Some(w) = w {
                    weights.push(w);
                }
                x = (x + a)?;
                let h = layer.mlp_ln.forward(&x)?;
                x = (&x + layer.mlp.forward(&h)?)?;
            }
        }
        state.len += n;
        let x = match at {
            Some(at) => {
                if let Some(&bad) = at.iter().find(|&&i| i as usize >= n) {
                    return Err(Error::Model(format!(
                        "logits asked at position {bad} of {n}"
                    )));
                }
                x.index_select(&Tensor::new(at, x.device())?, 1)?
            }
            None => x,
        };
        let x = self.ln.forward(&x)?;
        let logits = self.logits.forward(&x)?;
        Ok((logits, weights))
    }
}

/// Logits of the last position of each hypothesis, as f32 rows.
pub fn last_logits(logits: &Tensor) -> Result<Vec<Vec<f32>>> {
    let n = logits.dim(1)?;
    let last = logits
        .narrow(1, n - 1, 1)?
        .squeeze(1)?
        .to_dtype(DType::F32)?;
    Ok(last.to_vec2()?)
}

/// Log-softmax over the last dimension, on the host.
pub fn log_softmax(row: &[f32]) -> Vec<f32> {
    match log_normaliser(row) {
        Some(lse) => row.iter().map(|&x| x - lse).collect(),
        None => vec![f32::NEG_INFINITY; row.len()],
    }
}

/// log Σ e^x over `row`, so that `x - log_normaliser` is a log-probability; `None` when no
/// entry is finite (every token suppressed). A decoding step that needs a few entries' log
/// probabilities subtracts this from them instead of writing out all 51,865.
pub fn log_normaliser(row: &[f32]) -> Option<f32> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    max.is_finite()
        .then(|| max + Kernels::detect().sum_exp(row, max).ln())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Whisper of random weights, small enough to run in a test: 2 layers, width 64, 2 heads.
    fn tiny(format: WeightFormat) -> Whisper {
        tiny_placed(format, true)
    }

    /// As [`tiny`], with the decoder on host rows or, as on a GPU, on tensors.
    fn tiny_placed(format: WeightFormat, host_rows: bool) -> Whisper {
        let (d, mels, vocab) = (64usize, 8usize, 50usize);
        let dev = Device::Cpu;
        let mut w = Weights::new();
        let mut seed = 0u64;
        let mut put = |w: &mut Weights, name: String, shape: &[usize]| {
            seed += 1;
            let n: usize = shape.iter().product();
            let values: Vec<f32> = (0..n)
                .map(|i| {
                    let x = (i as u64 + 1)
                        .wrapping_mul(2654435761)
                        .wrapping_add(seed * 97);
                    ((x % 2001) as f32 / 1000.0 - 1.0) * 0.2
                })
                .collect();
            let t = Tensor::from_vec(values, shape, &dev).expect("tensor");
            w.insert(name, t);
        };
        let attn =
            |w: &mut Weights, put: &mut dyn FnMut(&mut Weights, String, &[usize]), p: &str| {
                for m in ["q_proj", "k_proj", "v_proj", "out_proj"] {
                    put(w, format!("{p}.{m}.weight"), &[d, d]);
                    if m != "k_proj" {
                        put(w, format!("{p}.{m}.bias"), &[d]);
                    }
                }
            };
        let norm =
            |w: &mut Weights, put: &mut dyn FnMut(&mut Weights, String, &[usize]), p: &str| {
                put(w, format!("{p}.weight"), &[d]);
                put(w, format!("{p}.bias"), &[d]);
            };
        put(&mut w, "model.encoder.conv1.weight".into(), &[d, mels, 3]);
        put(&mut w, "model.encoder.conv1.bias".into(), &[d]);
        put(&mut w, "model.encoder.conv2.weight".into(), &[d, d, 3]);
        put(&mut w, "model.encoder.conv2.bias".into(), &[d]);
        put(
            &mut w,
            "model.encoder.embed_positions.weight".into(),
            &[1500, d],
        );
        norm(&mut w, &mut put, "model.encoder.layer_norm");
        put(
            &mut w,
            "model.decoder.embed_tokens.weight".into(),
            &[vocab, d],
        );
        put(
            &mut w,
            "model.decoder.embed_positions.weight".into(),
            &[448, d],
        );
        norm(&mut w, &mut put, "model.decoder.layer_norm");
        for side in ["encoder", "decoder"] {
            for i in 0..2 {
                let p = format!("model.{side}.layers.{i}");
                attn(&mut w, &mut put, &format!("{p}.self_attn"));
                norm(&mut w, &mut put, &format!("{p}.self_attn_layer_norm"));
                if side == "decoder" {
                    attn(&mut w, &mut put, &format!("{p}.encoder_attn"));
                    norm(&mut w, &mut put, &format!("{p}.encoder_attn_layer_norm"));
                }
                put(&mut w, format!("{p}.fc1.weight"), &[4 * d, d]);
                put(&mut w, format!("{p}.fc1.bias"), &[4 * d]);
                put(&mut w, format!("{p}.fc2.weight"), &[d, 4 * d]);
                put(&mut w, format!("{p}.fc2.bias"), &[d]);
                norm(&mut w, &mut put, &format!("{p}.final_layer_norm"));
            }
        }
        let config = ModelConfig {
            d_model: d,
            n_mels: mels,
            encoder_layers: 2,
            decoder_layers: 2,
            encoder_heads: 2,
            decoder_heads: 2,
            vocab,
            suppress_ids: Vec::new(),
            suppress_ids_begin: Vec::new(),
            alignment_heads: Vec::new(),
        };
        Whisper::placed(w, config, format, dev, host_rows).expect("tiny model")
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let a = a.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("a");
        let b = b.flatten_all().and_then(|t| t.to_vec1::<f32>()).expect("b");
        assert_eq!(a.len(), b.len());
        a.iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max)
    }

    /// The host-rows step (every CPU decode) and the tensor step (other devices, and the
    /// reference) give the same logits and cross-attention weights, for a prompt and the steps
    /// after it, one hypothesis and a beam of three. (To rounding: the tensor path's
    /// self-attention sums in candle's order.)
    #[test]
    fn a_step_on_host_rows_is_the_tensor_step() {
        let model = tiny(WeightFormat::F32);
        let audio: Vec<f32> = (0..30 * 64)
            .map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0)
            .collect();
        let audio = Tensor::from_vec(audio, (1, 30, 64), &Device::Cpu).expect("audio");
        let mut host = model.decoder.start(&audio).expect("start");
        let mut tensor = model.decoder.start(&audio).expect("start");
        assert!(host.self_rows.is_some() && host.cross_rows.iter().all(Option::is_some));
        tensor.self_rows = None;
        tensor.cross_rows.iter_mut().for_each(|c| *c = None);
        let prompt = Tensor::new(&[[1u32, 7, 3, 9, 4]], &Device::Cpu).expect("prompt");
        let (a, wa) = model.decoder.step(&prompt, &mut host, true).expect("host");
        let (b, wb) = model
            .decoder
            .step(&prompt, &mut tensor, true)
            .expect("tensor");
        assert!(
            max_diff(&a, &b) < 1e-5,
            "prompt logits differ by {}",
            max_diff(&a, &b)
        );
        assert_eq!(wa.len(), 2);
        for (x, y) in wa.iter().zip(&wb) {
            assert_eq!(x.dims(), y.dims());
            assert!(max_diff(x, y) < 1e-5, "prompt weights differ");
        }
        host.reorder(&[0, 0, 0]).expect("fork");
        tensor.reorder(&[0, 0, 0]).expect("fork");
        for (step, tokens) in [[[2u32], [5], [8]], [[11], [12], [13]]].iter().enumerate() {
            let tokens = Tensor::new(tokens, &Device::Cpu).expect("tokens");
            let (a, wa) = model
                .decoder
                .step(&tokens, &mut host, step == 1)
                .expect("host");
            let (b, wb) = model
                .decoder
                .step(&tokens, &mut tensor, step == 1)
                .expect("tensor");
            assert!(
                max_diff(&a, &b) < 1e-5,
                "step {step} differs by {}",
                max_diff(&a, &b)
            );
            for (x, y) in wa.iter().zip(&wb) {
                assert!(max_diff(x, y) < 1e-5, "step {step} weights differ");
            }
        }
    }

    /// The layout a GPU runs (every product a tensor, the caches tensors) decodes as the CPU's
    /// host rows do: the same encoder output, then the same logits and cross-attention weights
    /// for a prompt and for beam steps after it. A CUDA build runs this code path with CUDA
    /// kernels; this checks the path itself on the machines CI has.
    #[test]
    fn the_layout_a_gpu_runs_decodes_as_the_host_layout() {
        let host = tiny_placed(WeightFormat::F32, true);
        let gpu = tiny_placed(WeightFormat::F32, false);
        assert!(matches!(gpu.decoder.logits, Linear::Dense { .. }));
        assert!(matches!(host.decoder.logits, Linear::Rows { .. }));
        let mel: Vec<f32> = (0..8 * 60)
            .map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0)
            .collect();
        let mel = Tensor::from_vec(mel, (1, 8, 60), &Device::Cpu).expect("mel");
        let audio_host = host.encoder.forward(&mel).expect("host encoder");
        let audio_gpu = gpu.encoder.forward(&mel).expect("tensor encoder");
        assert!(max_diff(&audio_host, &audio_gpu) < 1e-5);
        let mut a_state = host.decoder.start(&audio_host).expect("start");
        let mut b_state = gpu.decoder.start(&audio_gpu).expect("start");
        assert!(a_state.self_rows.is_some());
        assert!(b_state.self_rows.is_none() && b_state.cross_rows.iter().all(Option::is_none));
        let prompt = Tensor::new(&[[1u32, 7, 3, 9, 4]], &Device::Cpu).expect("prompt");
        let (a, wa) = host
            .decoder
            .step(&prompt, &mut a_state, true)
            .expect("host");
        let (b, wb) = gpu
            .decoder
            .step(&prompt, &mut b_state, true)
            .expect("tensor");
        assert!(
            max_diff(&a, &b) < 1e-5,
            "prompt differs by {}",
            max_diff(&a, &b)
        );
        for (x, y) in wa.iter().zip(&wb) {
            assert!(max_diff(x, y) < 1e-5, "prompt weights differ");
        }
        a_state.reorder(&[0, 0]).expect("fork");
        b_state.reorder(&[0, 0]).expect("fork");
        for (step, tokens) in [[[2u32], [5]], [[11], [12]], [[6], [6]]].iter().enumerate() {
            let tokens = Tensor::new(tokens, &Device::Cpu).expect("tokens");
            let (a, _) = host
                .decoder
                .step(&tokens, &mut a_state, false)
                .expect("host");
            let (b, _) = gpu
                .decoder
                .step(&tokens, &mut b_state, false)
                .expect("tensor");
            assert_eq!(a.dims(), b.dims());
            assert!(
                max_diff(&a, &b) < 1e-5,
                "step {step} differs by {}",
                max_diff(&a, &b)
            );
        }
    }
}
