//! Sizes and decoding tables of a Whisper checkpoint.

use serde::Deserialize;

/// Everything the network and the decoder need to know about one checkpoint. Sizes come from the
/// weights themselves (a CTranslate2 directory states none of them); the token tables from the
/// directory's `config.json` or `generation_config.json` where present.
#[derive(Clone, Debug)]
pub struct ModelConfig {
    /// Width of every hidden state.
    pub d_model: usize,
    /// Mel bins of the front end (80, or 128 for large-v3).
    pub n_mels: usize,
    /// Encoder depth.
    pub encoder_layers: usize,
    /// Decoder depth.
    pub decoder_layers: usize,
    /// Encoder attention heads.
    pub encoder_heads: usize,
    /// Decoder attention heads.
    pub decoder_heads: usize,
    /// Vocabulary size (51865 multilingual, 51864 English-only).
    pub vocab: usize,
    /// Tokens never to emit.
    pub suppress_ids: Vec<u32>,
    /// Tokens never to emit first.
    pub suppress_ids_begin: Vec<u32>,
    /// (layer, head) pairs whose cross-attention follows the audio in time: word timestamps.
    pub alignment_heads: Vec<(usize, usize)>,
}

impl ModelConfig {
    /// Whether the checkpoint knows many languages (English-only checkpoints have one fewer token).
    pub fn multilingual(&self) -> bool {
        self.vocab >= 51865
    }
}

/// The token tables a directory's `config.json` may hold (CTranslate2 and Hugging Face both use
/// these names; Hugging Face keeps them in `generation_config.json`).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TokenTables {
    #[serde(default, deserialize_with = "ids")]
    pub suppress_ids: Vec<u32>,
    #[serde(default, deserialize_with = "ids")]
    pub suppress_ids_begin: Vec<u32>,
    #[serde(default)]
    pub alignment_heads: Vec<(usize, usize)>,
    #[serde(default, deserialize_with = "ids")]
    pub suppress_tokens: Vec<u32>,
    #[serde(default, deserialize_with = "ids")]
    pub begin_suppress_tokens: Vec<u32>,
}

/// Some converters write id lists as JSON, others as a string holding JSON.
fn ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        List(Vec<i64>),
        Text(String),
    }
    let list = match Ids::deserialize(d)? {
        Ids::List(l) => l,
        Ids::Text(t) => serde_json::from_str::<Vec<i64>>(&t).map_err(serde::de::Error::custom)?,
    };
    Ok(list
        .into_iter()
        .filter_map(|i| u32::try_from(i).ok())
        .collect())
}
