//! Reading CTranslate2 model directories (`model.bin`), the format faster-whisper users hold.
//!
//! The binary layout (version 6) is documented in `docs/whisper-ct2.md`: a header,
//! then variables sorted by name, each with rank, dimensions, dtype and bytes, then aliases.
//! Rank-0 variables are configuration. Fused projections are split into the separate q/k/v
//! weights Hugging Face names, so one network serves both formats.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};

use super::config::ModelConfig;
use super::model::Weights;
use crate::error::{Error, Result};

/// A raw variable of `model.bin`.
struct Variable {
    dims: Vec<usize>,
    dtype: u8,
    bytes: Vec<u8>,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| {
                Error::Model(format!(
                    "model.bin is truncated: wanted {n} bytes at offset {}",
                    self.pos
                ))
            })?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn str(&mut self) -> Result<String> {
        let n = self.u16()? as usize;
        let b = self.take(n)?;
        let b = b.strip_suffix(&[0]).unwrap_or(b);
        String::from_utf8(b.to_vec())
            .map_err(|_| Error::Model("model.bin holds a name that is not UTF-8".into()))
    }
}

fn element_size(dtype: u8) -> Result<usize> {
    Ok(match dtype {
        0 | 3 => 4,
        1 => 1,
        2 | 4 | 5 => 2,
        other => return Err(Error::Model(format!("model.bin: unknown dtype {other}"))),
    })
}

fn parse(buf: &[u8]) -> Result<HashMap<String, Variable>> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.u32()?;
    if version != 6 {
        return Err(Error::Model(format!(
            "model.bin version {version}; this reader knows version 6"
        )));
    }
    let spec = r.str()?;
    if spec != "WhisperSpec" {
        return Err(Error::Model(format!(
            "model.bin holds a {spec}, not a Whisper model"
        )));
    }
    let _revision = r.u32()?;
    let n = r.u32()? as usize;
    let mut vars = HashMap::with_capacity(n.min(4096));
    for _ in 0..n {
        let name = r.str()?;
        let rank = r.u8()? as usize;
        let mut dims = Vec::with_capacity(rank);
        for _ in 0..rank {
            dims.push(r.u32()? as usize);
        }
        let dtype = r.u8()?;
        let n_bytes = r.u32()? as usize;
        let size = element_size(dtype)?;
        let count = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        if count.and_then(|c| c.checked_mul(size)) != Some(n_bytes) {
            return Err(Error::Model(format!(
                "model.bin: {name} claims {n_bytes} bytes for shape {dims:?}"
            )));
        }
        let bytes = r.take(n_bytes)?.to_vec();
        vars.insert(name, Variable { dims, dtype, bytes });
    }
    let aliases = r.u32()? as usize;
    // An alias is a copy: together they may not outweigh the file (a real model aliases one or
    // two shared weights), or a small file could claim gigabytes.
    let mut copied = 0usize;
    for _ in 0..aliases {
        let alias = r.str()?;
        let target = r.str()?;
        if let Some(v) = vars.get(&target) {
            copied = copied.saturating_add(v.bytes.len());
            if copied > buf.len() {
                return Err(Error::Model(
                    "model.bin: its aliases copy more than the file holds".into(),
                ));
            }
            let copy = Variable {
                dims: v.dims.clone(),
                dtype: v.dtype,
                bytes: v.bytes.clone(),
            };
            vars.insert(alias, copy);
        }
    }
    if r.pos != buf.len() {
        return Err(Error::Model(format!(
            "model.bin has {} bytes after its last alias",
            buf.len() - r.pos
        )));
    }
    Ok(vars)
}

/// Turns a variable into an f32 tensor; int8 weights are divided by their per-row scale.
fn tensor(vars: &HashMap<String, Variable>, name: &str, device: &Device) -> Result<Tensor> {
    let v = vars
        .get(name)
        .ok_or_else(|| Error::Model(format!("model.bin has no variable {name}")))?;
    let t =
        match v.dtype {
            0 => Tensor::from_raw_buffer(&v.bytes, DType::F32, &v.dims, device)?,
            4 => Tensor::from_raw_buffer(&v.bytes, DType::F16, &v.dims, device)?
                .to_dtype(DType::F32)?,
            5 => Tensor::from_raw_buffer(&v.bytes, DType::BF16, &v.dims, device)?
                .to_dtype(DType::F32)?,
            1 => {
                let scale = tensor(vars, &format!("{name}_scale"), device)?
                    .flatten_all()?
                    .to_vec1::<f32>()?;
                let rows = v.dims.first().copied().unwrap_or(1).max(1);
                let per_row = v.bytes.len() / rows;
                if scale.len() != rows && scale.len() != 1 {
                    return Err(Error::Model(format!(
                        "model.bin: {name}_scale has the wrong size"
                    )));
                }
                let mut f = Vec::with_capacity(v.bytes.len());
                for (i, &q) in v.bytes.iter().enumerate() {
                    let s = if scale.len() == 1 {
                        scale[0]
                    } else {
                        scale[i / per_row]
                    };
                    f.push(q as i8 as f32 / s);
                }
                Tensor::from_vec(f, v.dims.as_slice(), device)?
            }
            2 => {
                let scale_name = format!("{name}_scale");
                let scale = if vars.contains_key(&scale_name) {
                    tensor(vars, &scale_name, device)?
                        .flatten_all()?
                        .to_vec1::<f32>()?
                        .first()
                        .copied()
                        .unwrap_or(1.0)
                } else {
                    1.0
                };
                let f: Vec<f32> = v
                    .bytes
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]) as f32 / scale)
                    .collect();
                Tensor::from_vec(f, v.dims.as_slice(), device)?
            }
            other => {
                return Err(Error::Model(format!(
                    "model.bin: {name} has dtype {other}, which is not a weight type"
                )));
            }
        };
    Ok(t)
}

fn scalar(vars: &HashMap<String, Variable>, name: &str) -> Option<i64> {
    let v = vars.get(name)?;
    let b = &v.bytes;
    Some(match v.dtype {
        1 => *b.first()? as i8 as i64,
        2 => i16::from_le_bytes([*b.first()?, *b.get(1)?]) as i64,
        3 => i32::from_le_bytes(b.get(..4)?.try_into().ok()?) as i64,
        _ => return None,
    })
}

fn count_layers(vars: &HashMap<String, Variable>, prefix: &str) -> usize {
    (0..)
        .take_while(|i| vars.contains_key(&format!("{prefix}/layer_{i}/ffn/linear_0/weight")))
        .count()
}

/// Reads `model.bin` and renames its tensors to Hugging Face names.
pub(crate) fn load(bytes: &[u8], device: &Device) -> Result<(Weights, ModelConfig)> {
    let vars = parse(bytes)?;
    let mut w: Weights = HashMap::new();
    let get = |n: &str| tensor(&vars, n, device);
    let embed = get("decoder/embeddings/weight")?;
    let (vocab, d) = embed.dims2()?;
    let conv1 = get("encoder/conv1/weight")?;
    let n_mels = conv1.dim(1)?;
    let encoder_layers = count_layers(&vars, "encoder");
    let decoder_layers = count_layers(&vars, "decoder");
    let heads = |n: &str| {
        scalar(&vars, n)
            .map(|h| h as usize)
            .unwrap_or(d / 64)
            .max(1)
    };
    let config = ModelConfig {
        d_model: d,
        n_mels,
        encoder_layers,
        decoder_layers,
        encoder_heads: heads("encoder/num_heads"),
        decoder_heads: heads("decoder/num_heads"),
        vocab,
        suppress_ids: Vec::new(),
        suppress_ids_begin: Vec::new(),
        alignment_heads: Vec::new(),
    };
    if encoder_layers == 0 || decoder_layers == 0 {
        return Err(Error::Model(
            "model.bin holds no encoder or decoder layers".into(),
        ));
    }

    w.insert("model.encoder.conv1.weight".into(), conv1);
    for (ct, hf) in [
        ("encoder/conv1/bias", "model.encoder.conv1.bias"),
        ("encoder/conv2/weight", "model.encoder.conv2.weight"),
        ("encoder/conv2/bias", "model.encoder.conv2.bias"),
        (
            "encoder/position_encodings/encodings",
            "model.encoder.embed_positions.weight",
        ),
        (
            "encoder/layer_norm/gamma",
            "model.encoder.layer_norm.weight",
        ),
        ("encoder/layer_norm/beta", "model.encoder.layer_norm.bias"),
        (
            "decoder/position_encodings/encodings",
            "model.decoder.embed_positions.weight",
        ),
        (
            "decoder/layer_norm/gamma",
            "model.decoder.layer_norm.weight",
        ),
        ("decoder/layer_norm/beta", "model.decoder.layer_norm.bias"),
    ] {
        w.insert(hf.into(), get(ct)?);
    }
    w.insert("model.decoder.embed_tokens.weight".into(), embed);

    let put_ln = |w: &mut Weights, ct: &str, hf: &str| -> Result<()> {
        w.insert(format!("{hf}.weight"), get(&format!("{ct}/gamma"))?);
        w.insert(format!("{hf}.bias"), get(&format!("{ct}/beta"))?);
        Ok(())
    };
    let put_linear = |w: &mut Weights, ct: &str, hf: &str| -> Result<()> {
        w.insert(format!("{hf}.weight"), get(&format!("{ct}/weight"))?);
        w.insert(format!("{hf}.bias"), get(&format!("{ct}/bias"))?);
        Ok(())
    };
    // Fused [q; k; v] or [k; v] projections split by rows; k carries no bias in Whisper.
    let split = |w: &mut Weights, ct: &str, names: &[&str]| -> Result<()> {
        let weight = get(&format!("{ct}/weight"))?;
        let bias = get(&format!("{ct}/bias"))?;
        for (i, hf) in names.iter().enumerate() {
            w.insert(
                format!("{hf}.weight"),
                weight.narrow(0, i * d, d)?.contiguous()?,
            );
            if !hf.ends_with("k_proj") {
                w.insert(
                    format!("{hf}.bias"),
                    bias.narrow(0, i * d, d)?.contiguous()?,
                );
            }
        }
        Ok(())
    };
    let sides = [("encoder", encoder_layers), ("decoder", decoder_layers)];
    for (side, layers) in sides {
        for i in 0..layers {
            let ct = format!("{side}/layer_{i}");
            let hf = format!("model.{side}.layers.{i}");
            split(
                &mut w,
                &format!("{ct}/self_attention/linear_0"),
                &[
                    &format!("{hf}.self_attn.q_proj"),
                    &format!("{hf}.self_attn.k_proj"),
                    &format!("{hf}.self_attn.v_proj"),
                ],
            )?;
            put_linear(
                &mut w,
                &format!("{ct}/self_attention/linear_1"),
                &format!("{hf}.self_attn.out_proj"),
            )?;
            put_ln(
                &mut w,
                &format!("{ct}/self_attention/layer_norm"),
                &format!("{hf}.self_attn_layer_norm"),
            )?;
            if side == "decoder" {
                // Cross-attention: queries from the text, fused keys and values from the audio.
                put_linear(
                    &mut w,
                    &format!("{ct}/attention/linear_0"),
                    &format!("{hf}.encoder_attn.q_proj"),
                )?;
                split(
                    &mut w,
                    &format!("{ct}/attention/linear_1"),
                    &[
                        &format!("{hf}.encoder_attn.k_proj"),
                        &format!("{hf}.encoder_attn.v_proj"),
                    ],
                )?;
                put_linear(
                    &mut w,
                    &format!("{ct}/attention/linear_2"),
                    &format!("{hf}.encoder_attn.out_proj"),
                )?;
                put_ln(
                    &mut w,
                    &format!("{ct}/attention/layer_norm"),
                    &format!("{hf}.encoder_attn_layer_norm"),
                )?;
            }
            put_ln(
                &mut w,
                &format!("{ct}/ffn/layer_norm"),
                &format!("{hf}.final_layer_norm"),
            )?;
            put_linear(&mut w, &format!("{ct}/ffn/linear_0"), &format!("{hf}.fc1"))?;
            put_linear(&mut w, &format!("{ct}/ffn/linear_1"), &format!("{hf}.fc2"))?;
        }
    }
    Ok((w, config))
}
