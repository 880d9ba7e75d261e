//! Reading Hugging Face Whisper directories (`config.json` and `*.safetensors`).

use std::path::Path;

use candle_core::{DType, Device};
use serde::Deserialize;

use super::config::ModelConfig;
use super::model::Weights;
use crate::error::{Error, Result};

#[derive(Deserialize)]
struct HfConfig {
    d_model: usize,
    encoder_layers: usize,
    decoder_layers: usize,
    encoder_attention_heads: usize,
    decoder_attention_heads: usize,
    vocab_size: usize,
    num_mel_bins: usize,
}

/// Loads every `*.safetensors` file of the directory (sharded checkpoints included) as f32.
pub(crate) fn load(dir: &Path, device: &Device) -> Result<(Weights, ModelConfig)> {
    let text = std::fs::read_to_string(dir.join("config.json")).map_err(|e| Error::Io {
        path: dir.join("config.json"),
        source: e,
    })?;
    let hf: HfConfig = serde_json::from_str(&text)
        .map_err(|e| Error::Model(format!("{}: {e}", dir.join("config.json").display())))?;
    let files = crate::models::safetensors_in(dir)?;
    let mut w = Weights::new();
    for f in files {
        for (name, t) in candle_core::safetensors::load(&f, device)? {
            // Checkpoints saved from the bare model lack the `model.` prefix.
            let name = if name.starts_with("model.") || name == "proj_out.weight" {
                name
            } else {
                format!("model.{name}")
            };
            w.insert(name, t.to_dtype(DType::F32)?);
        }
    }
    w.remove("proj_out.weight");
    let config = ModelConfig {
        d_model: hf.d_model,
        n_mels: hf.num_mel_bins,
        encoder_layers: hf.encoder_layers,
        decoder_layers: hf.decoder_layers,
        encoder_heads: hf.encoder_attention_heads,
        decoder_heads: hf.decoder_attention_heads,
        vocab: hf.vocab_size,
        suppress_ids: Vec::new(),
        suppress_ids_begin: Vec::new(),
        alignment_heads: Vec::new(),
    };
    Ok((w, config))
}
