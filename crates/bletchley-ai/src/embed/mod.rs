//! Sentence embeddings in process: a sentence-transformers model directory (a BERT-family
//! encoder, a pooling, a normalisation) run on candle, giving the vectors sentence-transformers
//! gives for the same texts.
//!
//! Texts are tokenised as the reference tokenises them (stripped, cut at the model's window with
//! its special tokens kept), batched by length so little padding is computed, and pooled over
//! their real tokens only. Long documents are cut into overlapping chunks first ([`chunks`]).

mod bert;
mod chunk;
mod layout;

use std::path::Path;

use candle_core::{D, DType, Device, Tensor};

pub use chunk::Chunk;
pub use layout::{EncoderConfig, Layout, Pooling};

use crate::error::{Error, Result};

/// Texts embedded in one product at most; sentence-transformers' default batch size.
const BATCH: usize = 32;

/// Tokens (padding included) in one product at most: long texts go in smaller batches, so the
/// attention's scores (texts × heads × length²) stay in cache rather than in fresh pages.
const BATCH_TOKENS: usize = 2048;

/// A loaded sentence-embedding model.
pub struct SentenceModel {
    layout: Layout,
    tokenizer: tokenizers::Tokenizer,
    /// The same tokenizer without the window's cut, for counting the tokens of long texts.
    counter: tokenizers::Tokenizer,
    encoder: bert::Encoder,
    device: Device,
}

fn tokenizer_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Model(format!("{}: {e}", path.display()))
}

impl SentenceModel {
    /// Loads a sentence-transformers directory onto the CPU, checking every file it needs.
    pub fn load(dir: &Path) -> Result<SentenceModel> {
        let layout = layout::read(dir)?;
        let mut tokenizer = tokenizers::Tokenizer::from_file(&layout.tokenizer)
            .map_err(|e| tokenizer_error(&layout.tokenizer, e))?;
        // The reference pads to the longest text of a batch and cuts at its own window, not at
        // whatever the tokenizer file was saved with.
        tokenizer.with_padding(None);
        let mut counter = tokenizer.clone();
        counter
            .with_truncation(None)
            .map_err(|e| tokenizer_error(&layout.tokenizer, e))?;
        tokenizer
            .with_truncation(Some(tokenizers::TruncationParams {
                max_length: layout.max_tokens,
                strategy: tokenizers::TruncationStrategy::LongestFirst,
                stride: 0,
                direction: tokenizers::TruncationDirection::Right,
            }))
            .map_err(|e| tokenizer_error(&layout.tokenizer, e))?;
        let vocab = tokenizer.get_vocab_size(true);
        if vocab > layout.encoder.vocab_size {
            return Err(Error::Model(format!(
                "{} has {vocab} tokens but the encoder's table only {}",
                layout.tokenizer.display(),
                layout.encoder.vocab_size
            )));
        }
        let device = Device::Cpu;
        let encoder = bert::Encoder::load(&layout, &device)?;
        Ok(SentenceModel {
            layout,
            tokenizer,
            counter,
            encoder,
            device,
        })
    }

    /// Length of every vector.
    pub fn dim(&self) -> usize {
        self.encoder.hidden()
    }

    /// Tokens a text may have, special tokens included; the rest is not read.
    pub fn max_tokens(&self) -> usize {
        self.layout.max_tokens
    }

    /// What was read from the directory.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Cuts a document into chunks that fit the window (whole sentences where they fit), each
    /// after the first sharing up to `overlap` sentences with the one before.
    pub fn chunks(&self, text: &str, overlap: usize) -> Result<Vec<Chunk>> {
        // The window holds the chunk and the special tokens around it.
        let special = self
            .counter
            .encode("", true)
            .map(|e| e.get_ids().len())
            .unwrap_or(2);
        chunk::chunks(
            &self.counter,
            text,
            self.layout.max_tokens.saturating_sub(special),
            overlap,
        )
    }

    fn prepare<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        let t = text.trim();
        if self.layout.lower_case {
            t.to_lowercase().into()
        } else {
            t.into()
        }
    }

    /// Token ids of each text as the encoder reads them (special tokens added, cut at the
    /// window).
    fn encode(&self, texts: &[&str]) -> Result<Vec<Vec<u32>>> {
        let prepared: Vec<String> = texts.iter().map(|t| self.prepare(t).into_owned()).collect();
        let encodings = self
            .tokenizer
            .encode_batch(prepared, true)
            .map_err(|e| tokenizer_error(&self.layout.tokenizer, e))?;
        Ok(encodings
            .into_iter()
            .map(|e| e.get_ids().to_vec())
            .collect())
    }

    /// One vector per text, in order.
    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = self.encode(texts)?;
        // Longest first, as the reference orders them, so a batch's texts have similar lengths.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse(ids[i].len()));
        let mut out = vec![Vec::new(); texts.len()];
        let mut rest = order.as_slice();
        while !rest.is_empty() {
            // The first text is the batch's longest: it sets the padded length.
            let longest = ids[rest[0]].len().max(1);
            let take = (BATCH_TOKENS / longest).clamp(1, BATCH).min(rest.len());
            let (batch, later) = rest.split_at(take);
            let vectors = self.embed_batch(batch.iter().map(|&i| ids[i].as_slice()))?;
            for (&i, v) in batch.iter().zip(vectors) {
                out[i] = v;
            }
            rest = later;
        }
        Ok(out)
    }

    fn embed_batch<'a>(&self, batch: impl Iterator<Item = &'a [u32]>) -> Result<Vec<Vec<f32>>> {
        let rows: Vec<&[u32]> = batch.collect();
        let len = rows.iter().map(|r| r.len()).max().unwrap_or(0).max(1);
        let pad = self.layout.encoder.pad_token_id as u32;
        let mut ids = Vec::with_capacity(rows.len() * len);
        let mut mask = Vec::with_capacity(rows.len() * len);
        for r in &rows {
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(pad, len - r.len()));
            mask.extend(std::iter::repeat_n(1f32, r.len()));
            mask.extend(std::iter::repeat_n(0f32, len - r.len()));
        }
        let ids = Tensor::from_vec(ids, (rows.len(), len), &self.device)?;
        let mask = Tensor::from_vec(mask, (rows.len(), len), &self.device)?;
        let tokens = self.encoder.forward(&ids, &mask)?;
        let pooled = self.pool(&tokens, &mask)?;
        let pooled = if self.layout.normalize {
            // F.normalize: divide by the norm, at least 1e-12.
            let norm = pooled
                .sqr()?
                .sum_keepdim(D::Minus1)?
                .sqrt()?
                .clamp(1e-12, f64::MAX)?;
            pooled.broadcast_div(&norm)?
        } else {
            pooled
        };
        Ok(pooled.to_dtype(DType::F32)?.to_vec2()?)
    }

    fn pool(&self, tokens: &Tensor, mask: &Tensor) -> Result<Tensor> {
        let counts = mask.sum_keepdim(1)?;
        Ok(match self.layout.pooling {
            Pooling::Cls => tokens.narrow(1, 0, 1)?.squeeze(1)?,
            Pooling::Mean => {
                bert::masked_sum(tokens, mask)?.broadcast_div(&counts.clamp(1e-9, f64::MAX)?)?
            }
            Pooling::MeanSqrtLen => {
                bert::masked_sum(tokens, mask)?.broadcast_div(&counts.sqrt()?)?
            }
            Pooling::Max => {
                // Padding gets the lowest value, so it never wins.
                let low = ((mask.ones_like()? - mask)? * -1e9)?.unsqueeze(D::Minus1)?;
                tokens.broadcast_add(&low)?.max(1)?
            }
        })
    }
}

/// Cosine similarity of two vectors (0 when either is all zeros).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        dot += f64::from(*x) * f64::from(*y);
        na += f64::from(*x) * f64::from(*x);
        nb += f64::from(*y) * f64::from(*y);
    }
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        (dot / (na.sqrt() * nb.sqrt())) as f32
    }
}
