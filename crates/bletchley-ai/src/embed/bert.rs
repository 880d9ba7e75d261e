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
            Activation::GeluErf => inner.gelu_erf()?,
            Activation::GeluTanh => inner.gelu()?,
            Activation::Relu => inner.relu()?,
        };
        l.output_norm
            .forward(&(l.output.forward(&inner)? + attended)?)
    }
}

/// Sums over the sequence axis of `(batch, len, hidden)` weighted by `mask` `(batch, len)`.
pub(super) fn masked_sum(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    Ok(x.broadcast_mul(&mask.unsqueeze(D::Minus1)?)?.sum(1)?)
}
