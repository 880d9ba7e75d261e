//! A sentence-transformers model directory: which files it must hold and what they say.
//!
//! The layout is the one `SentenceTransformer.save` writes and the Hugging Face hub serves:
//! `modules.json` (Transformer, Pooling, optionally Normalize), `config.json` (the encoder),
//! `sentence_bert_config.json` (the window), `1_Pooling/config.json` (how token vectors become
//! one), `tokenizer.json` and the weights in `*.safetensors`. Anything else in a module list
//! (a dense projection, a prompt) is refused by name rather than silently skipped, since its
//! vectors would not equal the reference's.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};

/// How the token vectors of one text become its vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pooling {
    /// The mean of the tokens' vectors (padding excluded).
    Mean,
    /// The first token's (`[CLS]`) vector.
    Cls,
    /// The element-wise maximum over the tokens.
    Max,
    /// The sum divided by the square root of the number of tokens.
    MeanSqrtLen,
}

/// The encoder's architecture, from `config.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct EncoderConfig {
    /// `bert`, `roberta`, `xlm-roberta`, ...
    #[serde(default = "bert")]
    pub model_type: String,
    /// Width of every token vector.
    pub hidden_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Heads per attention.
    pub num_attention_heads: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Longest sequence the position table covers.
    pub max_position_embeddings: usize,
    /// Token-type (segment) embeddings.
    #[serde(default = "one")]
    pub type_vocab_size: usize,
    /// Entries of the word table.
    pub vocab_size: usize,
    /// Layer normalisation epsilon.
    #[serde(default = "layer_norm_eps")]
    pub layer_norm_eps: f64,
    /// `gelu` (erf), `gelu_new` / `gelu_pytorch_tanh` (tanh approximation) or `relu`.
    #[serde(default = "gelu")]
    pub hidden_act: String,
    /// The padding token (RoBERTa counts positions after it).
    #[serde(default)]
    pub pad_token_id: usize,
    /// Only absolute position embeddings are implemented.
    #[serde(default = "absolute")]
    pub position_embedding_type: String,
}

fn bert() -> String {
    "bert".into()
}
fn one() -> usize {
    1
}
fn layer_norm_eps() -> f64 {
    1e-12
}
fn gelu() -> String {
    "gelu".into()
}
fn absolute() -> String {
    "absolute".into()
}

impl EncoderConfig {
    /// Whether positions are counted from after the padding token, as RoBERTa's are.
    pub fn positions_after_padding(&self) -> bool {
        matches!(
            self.model_type.as_str(),
            "roberta" | "xlm-roberta" | "camembert"
        )
    }
}

#[derive(Deserialize)]
struct Module {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: String,
}

#[derive(Deserialize, Default)]
struct SentenceConfig {
    max_seq_length: Option<usize>,
    #[serde(default)]
    do_lower_case: bool,
}

#[derive(Deserialize)]
struct PoolingConfig {
    #[serde(default)]
    pooling_mode_cls_token: bool,
    #[serde(default)]
    pooling_mode_mean_tokens: bool,
    #[serde(default)]
    pooling_mode_max_tokens: bool,
    #[serde(default)]
    pooling_mode_mean_sqrt_len_tokens: bool,
    #[serde(default)]
    pooling_mode_weightedmean_tokens: bool,
    #[serde(default)]
    pooling_mode_lasttoken: bool,
}

/// Everything read from a model directory before any weight is loaded.
#[derive(Debug)]
pub struct Layout {
    /// The directory.
    pub dir: PathBuf,
    /// The encoder.
    pub encoder: EncoderConfig,
    /// Tokens per text, special tokens included; longer texts are cut, as the reference does.
    pub max_tokens: usize,
    /// Lower-case texts before tokenising (`sentence_bert_config.json`).
    pub lower_case: bool,
    /// The pooling.
    pub pooling: Pooling,
    /// Whether the vectors are scaled to unit length (a `Normalize` module).
    pub normalize: bool,
    /// The tokenizer's file.
    pub tokenizer: PathBuf,
    /// The weight files, in name order.
    pub weights: Vec<PathBuf>,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Model(format!(
                "{} is missing: not a sentence-transformers model directory",
                path.display()
            ))
        } else {
            Error::Io {
                path: path.to_owned(),
                source: e,
            }
        }
    })?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Model(format!("{} is not what it should be: {e}", path.display())))
}

/// Reads and checks a sentence-transformers directory.
pub fn read(dir: &Path) -> Result<Layout> {
    if !dir.is_dir() {
        return Err(Error::Model(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    let modules: Vec<Module> = read_json(&dir.join("modules.json"))?;
    let mut pooling_dir = None;
    let mut normalize = false;
    let mut transformer = false;
    for m in &modules {
        match m.kind.rsplit('.').next().unwrap_or_default() {
            "Transformer" if !transformer && m.path.is_empty() => transformer = true,
            "Pooling" if pooling_dir.is_none() => pooling_dir = Some(dir.join(&m.path)),
            "Normalize" => normalize = true,
            _ => {
                return Err(Error::Model(format!(
                    "{}: the module {} ({}) is not supported; supported: a Transformer at the top, \
                     a Pooling, a Normalize",
                    dir.join("modules.json").display(),
                    m.kind,
                    if m.path.is_empty() { "." } else { &m.path }
                )));
            }
        }
    }
    if !transformer {
        return Err(Error::Model(format!(
            "{}: no Transformer module at the top of the directory",
            dir.join("modules.json").display()
        )));
    }
    let pooling_dir = pooling_dir.ok_or_else(|| {
        Error::Model(format!(
            "{}: no Pooling module",
            dir.join("modules.json").display()
        ))
    })?;
    let p: PoolingConfig = read_json(&pooling_dir.join("config.json"))?;
    let modes = [
        (p.pooling_mode_mean_tokens, Pooling::Mean),
        (p.pooling_mode_cls_token, Pooling::Cls),
        (p.pooling_mode_max_tokens, Pooling::Max),
        (p.pooling_mode_mean_sqrt_len_tokens, Pooling::MeanSqrtLen),
    ];
    let chosen: Vec<Pooling> = modes.iter().filter(|(on, _)| *on).map(|m| m.1).collect();
    if p.pooling_mode_weightedmean_tokens || p.pooling_mode_lasttoken || chosen.len() != 1 {
        return Err(Error::Model(format!(
            "{}: exactly one of mean, cls, max or mean_sqrt_len pooling is supported",
            pooling_dir.join("config.json").display()
        )));
    }
    let encoder: EncoderConfig = read_json(&dir.join("config.json"))?;
    if encoder.position_embedding_type != "absolute" {
        return Err(Error::Model(format!(
            "{}: position_embedding_type {:?} is not supported (only absolute)",
            dir.join("config.json").display(),
            encoder.position_embedding_type
        )));
    }
    if !matches!(
        encoder.hidden_act.as_str(),
        "gelu" | "gelu_new" | "gelu_pytorch_tanh" | "relu"
    ) {
        return Err(Error::Model(format!(
            "{}: hidden_act {:?} is not supported",
            dir.join("config.json").display(),
            encoder.hidden_act
        )));
    }
    if encoder.num_attention_heads == 0
        || !encoder
            .hidden_size
            .is_multiple_of(encoder.num_attention_heads)
        || encoder.num_hidden_layers == 0
    {
        return Err(Error::Model(format!(
            "{}: {} heads do not divide a width of {}",
            dir.join("config.json").display(),
            encoder.num_attention_heads,
            encoder.hidden_size
        )));
    }
    let sentence: SentenceConfig = match std::fs::metadata(dir.join("sentence_bert_config.json")) {
        Ok(_) => read_json(&dir.join("sentence_bert_config.json"))?,
        Err(_) => SentenceConfig::default(),
    };
    let offset = if encoder.positions_after_padding() {
        encoder.pad_token_id + 1
    } else {
        0
    };
    let position_room = encoder.max_position_embeddings.saturating_sub(offset);
    let max_tokens = sentence
        .max_seq_length
        .unwrap_or(position_room)
        .min(position_room);
    if max_tokens < 3 {
        return Err(Error::Model(format!(
            "{}: a window of {max_tokens} tokens is too small",
            dir.display()
        )));
    }
    let tokenizer = dir.join("tokenizer.json");
    if !tokenizer.is_file() {
        return Err(Error::Model(format!(
            "{} is missing (only the tokenizer.json form of a tokenizer is read)",
            tokenizer.display()
        )));
    }
    let weights = crate::models::safetensors_in(dir)?;
    Ok(Layout {
        dir: dir.to_owned(),
        encoder,
        max_tokens,
        lower_case: sentence.do_lower_case,
        pooling: chosen[0],
        normalize,
        tokenizer,
        weights,
    })
}
