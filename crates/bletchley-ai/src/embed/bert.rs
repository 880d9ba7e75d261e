//! The BERT-family encoder (BERT, RoBERTa, XLM-RoBERTa, MiniLM) on candle, as Hugging Face's
//! `BertModel` computes it: embeddings and a layer norm, then post-norm transformer layers, for a
//! batch of right-padded sequences whose padding no real token attends to.

use std::collections::HashMap;

use candle_core::{D, DType, Device, Tensor};

use super::layout::{EncoderConfig, Layout};
use crate::error::{Error, Result};

struct Linear {
    /// `(in, out)`, contiguous, so the product reads it row by row.
    weight_t: Tensor,
    bias: Tensor,
}

impl Linear {
    /// `x` is `(batch, len, in)`; one product over all the batch's rows.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (batch, len, inputs) = x.dims3()?;
        let outputs = self.weight_t.dim(1)?;
        Ok(x.reshape((batch * len, inputs))?
            .matmul(&self.weight_t)?
            .broadcast_add(&self.bias)?
            .reshape((batch, len, outputs))?)
    }
}

struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(candle_nn::ops::layer_norm(
            x,
            &self.weight,
            &self.bias,
            self.eps,
        )?)
    }
}

struct Layer {
    query: Linear,
    key: Linear,
    value: Linear,
    attention_out: Linear,
    attention_norm: LayerNorm,
    intermediate: Linear,
    output: Linear,
    output_norm: LayerNorm,
}

#[derive(Clone, Copy)]
enum Activation {
    GeluErf,
    GeluTanh,
    Relu,
}

/// The encoder's weights and shape.
pub(super) struct Encoder {
    words: Tensor,
    positions: Tensor,
    token_type: Tensor,
    embedding_norm: LayerNorm,
    layers: Vec<Layer>,
    heads: usize,
    hidden: usize,
    activation: Activation,
    position_offset: usize,
}

/// The weights by name, with a checkpoint's model prefix (`bert.`, `roberta.`, `model.`) taken
/// off, so bare and wrapped checkpoints read alike.
struct Weights {
    map: HashMap<String, Tensor>,
}

impl Weights {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let t = self
            .map
            .remove(name)
            .ok_or_else(|| Error::Model(format!("the weights have no tensor {name}")))?;
        if t.dims() != shape {
            return Err(Error::Model(format!(
                "the tensor {name} has shape {:?}, the configuration says {shape:?}",
                t.dims()
            )));
        }
        Ok(t)
    }

    fn linear(&mut self, prefix: &str, inputs: usize, outputs: usize) -> Result<Linear> {
        let weight = self.take(&format!("{prefix}.weight"), &[outputs, inputs])?;
        Ok(Linear {
            weight_t: weight.t()?.contiguous()?,
            bias: self.take(&format!("{prefix}.bias"), &[outputs])?,
        })
    }

    fn norm(&mut self, prefix: &str, width: usize, eps: f64) -> Result<LayerNorm> {
        // Old TensorFlow-converted checkpoints name them gamma and beta.
        let (w, b) = if self.map.contains_key(&format!("{prefix}.gamma")) {
            ("gamma", "beta")
        } else {
            ("weight", "bias")
        };
        Ok(LayerNorm {
            weight: self.take(&format!("{prefix}.{w}"), &[width])?,
            bias: self.take(&format!("{prefix}.{b}"), &[width])?,
            eps: eps as f32,
        })
    }
}

const PREFIXES: &[&str] = &["bert.", "roberta.", "model.", "xlm_roberta."];

impl Encoder {
    /// Loads every weight file of the layout as f32 and checks each tensor's shape.
    pub(super) fn load(layout: &Layout, device: &Device) -> Result<Encoder> {
        let mut map = HashMap::new();
        for f in &layout.weights {
            let tensors = candle_core::safetensors::load(f, device).map_err(|e| {
                Error::Model(format!(
                    "{} is not a readable safetensors file: {e}",
                    f.display()
                ))
            })?;
            for (name, t) in tensors {
                let name = PREFIXES
                    .iter()
                    .find_map(|p| name.strip_prefix(p))
                    .map(str::to_owned)
                    .unwrap_or(name);
                map.insert(name, t.to_dtype(DType::F32)?);
            }
        }
        let mut w = Weights { map };
        let c: &EncoderConfig = &layout.encoder;
        let h = c.hidden_size;
        let eps = c.layer_norm_eps;
        let words = w.take("embeddings.word_embeddings.weight", &[c.vocab_size, h])?;
        let positions = w.take(
            "embeddings.position_embeddings.weight",
            &[c.max_position_embeddings, h],
        )?;
        let token_type = w
            .take(
                "embeddings.token_type_embeddings.weight",
                &[c.type_vocab_size, h],
            )?
            .narrow(0, 0, 1)?;
        let embedding_norm = w.norm("embeddings.LayerNorm", h, eps)?;
        let mut layers = Vec::with_capacity(c.num_hidden_layers);
        for i in 0..c.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            layers.push(Layer {
                query: w.linear(&format!("{p}.attention.self.query"), h, h)?,
                key: w.linear(&format!("{p}.attention.self.key"), h, h)?,
                value: w.linear(&format!("{p}.attention.self.value"), h, h)?,
                attention_out: w.linear(&format!("{p}.attention.output.dense"), h, h)?,
                attention_norm: w.norm(&format!("{p}.attention.output.LayerNorm"), h, eps)?,
                intermediate: w.linear(
                    &format!("{p}.intermediate.dense"),
                    h,
                    c.intermediate_size,
                )?,
                output: w.linear(&format!("{p}.output.dense"), c.intermediate_size, h)?,
                output_norm: w.norm(&format!("{p}.output.LayerNorm"), h, eps)?,
            });
        }
        let activation = match c.hidden_act.as_str() {
            "gelu" => Activation::GeluErf,
            "relu" => Activation::Relu,
            _ => Activation::GeluTanh,
        };
        Ok(Encoder {
            words,
            positions,
            token_type,
            embedding_norm,
            layers,
            heads: c.num_attention_heads,
            hidden: h,
            activation,
            position_offset: if c.positions_after_padding() {
                c.pad_token_id + 1
            } else {
                0
            },
        })
    }

    /// Width of the token vectors.
    pub(super) fn hidden(&self) -> usize {
        self.hidden
    }

    /// Token vectors `(batch, len, hidden)` of right-padded ids `(batch, len)` whose real tokens
    /// are 1 in `mask` (f32, same shape).
    pub(super) fn forward(&self, ids: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let (batch, len) = ids.dims2()?;
        let device = ids.device();
        let words =
            self.words
                .index_select(&ids.flatten_all()?, 0)?
                .reshape((batch, len, self.hidden))?;
        let positions = self.positions.narrow(0, self.position_offset, len)?;
        let x = words
            .broadcast_add(&positions)?
            .broadcast_add(&self.token_type)?;
        let mut x = self.embedding_norm.forward(&x)?;
        // Padding is never attended to: its keys get the most negative score.
        let bias = ((mask.ones_like()? - mask)? * f64::from(f32::MIN))?
            .reshape((batch, 1, 1, len))?
            .to_device(device)?;
        for layer in &self.layers {
            x = self.layer(layer, &x, &bias, batch, len)?;
        }
        Ok(x)
    }

    fn layer(
        &self,
        l: &Layer,
        x: &Tensor,
        bias: &Tensor,
        batch: usize,
        len: usize,
    ) -> Result<Tensor> {
        let heads = self.heads;
        let width = self.hidden / heads;
        let split = |t: Tensor| -> Result<Tensor> {
            Ok(t.reshape((batch, len, heads, width))?
                .transpose(1, 2)?
                .contiguous()?)
        };
        let q = split(l.query.forward(x)?)?;
        let k = split(l.key.forward(x)?)?;
        let v = split(l.value.forward(x)?)?;
        let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (width as f64).sqrt()))?
            .broadcast_add(bias)?;
        let probs = candle_nn::ops::softmax_last_dim(&scores)?;
        let context = probs
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((batch, len, self.hidden))?;
        let attended = l
            .attention_norm
            .forward(&(l.attention_out.forward(&context)? + x)?)?;
        let inner = l.intermediate.forward(&attended)?;
        let inner = match self.activation {
            Activation::GeluErf => gelu_erf(&inner)?,
            Activation::GeluTanh => inner.gelu()?,
            Activation::Relu => inner.relu()?,
        };
        l.output_norm
            .forward(&(l.output.forward(&inner)? + attended)?)
    }
}

/// GELU with the error function, as BERT defines it, on every core: candle's is one scalar
/// `erff` call per element on one thread, a tenth of a batch's time for a 1,536-wide layer.
fn gelu_erf(x: &Tensor) -> Result<Tensor> {
    use rayon::prelude::*;
    let shape = x.shape().clone();
    let mut v = x.flatten_all()?.to_vec1::<f32>()?;
    v.par_chunks_mut(4096).for_each(|c| {
        for x in c {
            *x *= 0.5 * (1.0 + erf(*x * std::f32::consts::FRAC_1_SQRT_2));
        }
    });
    Ok(Tensor::from_vec(v, shape, x.device())?)
}

/// The error function to within 1e-6 (Abramowitz and Stegun 7.1.26, 1.5e-7, in f32
/// arithmetic): a few units in f32's last place.
fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.327_591_1 * a);
    let poly = t
        * (0.254_829_6
            + t * (-0.284_496_74 + t * (1.421_413_7 + t * (-1.453_152_1 + t * 1.061_405_4))));
    let y = 1.0 - poly * (-a * a).exp();
    y.copysign(x)
}

/// Sums over the sequence axis of `(batch, len, hidden)` weighted by `mask` `(batch, len)`.
pub(super) fn masked_sum(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_mul(&mask.unsqueeze(D::Minus1)?)?.sum(1)?)
}

#[cfg(test)]
mod tests {
    #[test]
    fn erf_is_within_a_millionth_of_the_true_value_everywhere_gelu_looks() {
        let mut worst = 0f64;
        for i in -80_000..=80_000 {
            let x = i as f32 / 10_000.0;
            let d = (f64::from(super::erf(x)) - libm_erf(f64::from(x))).abs();
            worst = worst.max(d);
        }
        // The formula is good to 1.5e-7; f32 arithmetic adds a few units in the last place.
        assert!(worst < 1e-6, "{worst}");
    }

    /// erf in f64 by its Taylor series (|x| < 3) or its complement's continued fraction.
    fn libm_erf(x: f64) -> f64 {
        if x.abs() < 3.0 {
            let mut sum = 0.0;
            let mut term = x;
            let mut n = 0.0;
            while term.abs() > 1e-17 {
                sum += term / (2.0 * n + 1.0);
                n += 1.0;
                term *= -x * x / n;
            }
            sum * 2.0 / std::f64::consts::PI.sqrt()
        } else {
            // erfc by Lentz's continued fraction; 1 - erfc.
            let a = x.abs();
            let mut f = a;
            let mut c = a;
            let mut d = 0.0;
            for k in 1..200 {
                let an = k as f64 / 2.0;
                d = 1.0 / (a + an * d);
                c = a + an / c;
                f *= c * d;
            }
            let erfc = (-a * a).exp() / (f * std::f64::consts::PI.sqrt());
            (1.0 - erfc).copysign(x)
        }
    }
}
