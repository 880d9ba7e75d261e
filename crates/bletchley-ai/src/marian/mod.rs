//! Marian (OPUS-MT) translation models in Hugging Face layout, run in process on `candle`.
//!
//! A model directory is what an operator brings for any language pair: `config.json`,
//! `model.safetensors`, the two SentencePiece models (`source.spm`, `target.spm`) and the
//! shared `vocab.json`. The network is `candle-transformers`' Marian; this module adds the
//! tokenisation (SentencePiece pieces to the vocabulary's ids, as `MarianTokenizer` does) and
//! greedy decoding with Hugging Face's rules for these models (the padding token never
//! generated, the end token forced at the length limit), so that a model gives the tokens
//! `transformers` gives (checked on a small model made by `scripts/marian-reference.py`).
//! Text is translated a paragraph at a time, long paragraphs by sentence, so that no input
//! passes the model's window and the line structure is kept.

mod spm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use candle_core::{DType, Device, IndexOp, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::marian::{Config, MTModel};

use crate::error::{Error, Result};
pub use spm::SentencePiece;

/// The files a Marian model directory must hold.
pub const FILES: [&str; 5] = [
    "config.json",
    "model.safetensors",
    "source.spm",
    "target.spm",
    "vocab.json",
];

/// Whether `dir` holds a Marian model (its `config.json` says so and it has a source
/// SentencePiece model): Hugging Face Whisper directories hold `config.json` and safetensors
/// too.
pub fn is_marian(dir: &Path) -> bool {
    dir.join("source.spm").is_file()
        && std::fs::read(dir.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
            .is_some_and(|v| v.get("model_type").and_then(|t| t.as_str()) == Some("marian"))
}

/// A Marian model, loaded.
pub struct MarianModel {
    /// The network keeps its attention caches inside: one translation at a time.
    net: Mutex<MTModel>,
    config: Config,
    source: SentencePiece,
    target_vocab: Vec<String>,
    vocab: HashMap<String, u32>,
    unk: u32,
    /// The source language (ISO 639-1) when the directory says (`tokenizer_config.json`).
    source_language: Option<String>,
    /// Beams the directory asks for (`generation_config.json`, else `config.json`; 1 when
    /// neither says): OPUS-MT models are trained to be read with four to six.
    num_beams: usize,
    device: Device,
    dir: PathBuf,
}

/// Decoding limits of one input.
#[derive(Clone, Copy, Debug)]
pub struct DecodeLimits {
    /// Tokens generated at most, the end token included.
    pub max_new_tokens: usize,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_owned(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Model(format!(
            "{}: not what a Marian model holds: {e}",
            path.display()
        ))
    })
}

impl MarianModel {
    /// Loads a model directory; a missing or unreadable file is named in the error.
    pub fn load(dir: &Path) -> Result<MarianModel> {
        if !dir.is_dir() {
            return Err(Error::Model(format!(
                "{}: not a directory (a Marian model directory holds {})",
                dir.display(),
                FILES.join(", ")
            )));
        }
        for f in FILES {
            if !dir.join(f).is_file() {
                return Err(Error::Model(format!(
                    "{}: no {f} (a Marian model directory holds {})",
                    dir.display(),
                    FILES.join(", ")
                )));
            }
        }
        let kind: serde_json::Value = read_json(&dir.join("config.json"))?;
        if kind.get("model_type").and_then(|v| v.as_str()) != Some("marian") {
            return Err(Error::Model(format!(
                "{}: config.json is not a Marian model's (model_type {})",
                dir.display(),
                kind.get("model_type").unwrap_or(&serde_json::Value::Null)
            )));
        }
        let config: Config = read_json(&dir.join("config.json"))?;
        let vocab: HashMap<String, u32> = read_json(&dir.join("vocab.json"))?;
        let size = config.decoder_vocab_size.unwrap_or(config.vocab_size);
        let mut target_vocab = vec![String::new(); size];
        for (piece, &id) in &vocab {
            match target_vocab.get_mut(id as usize) {
                Some(slot) => *slot = piece.clone(),
                None => {
                    return Err(Error::Model(format!(
                        "{}: vocab.json gives {piece:?} the id {id}, past the model's {size} tokens",
                        dir.display()
                    )));
                }
            }
        }
        let unk = *vocab
            .get("<unk>")
            .ok_or_else(|| Error::Model(format!("{}: vocab.json has no <unk>", dir.display())))?;
        for (name, id) in [
            ("pad_token_id", config.pad_token_id),
            ("eos_token_id", config.eos_token_id),
            ("decoder_start_token_id", config.decoder_start_token_id),
        ] {
            if id as usize >= size {
                return Err(Error::Model(format!(
                    "{}: config.json's {name} {id} is past the model's {size} tokens",
                    dir.display()
                )));
            }
        }
        let source = SentencePiece::load(&dir.join("source.spm"))?;
        // Only the target model's pieces matter on the way out, and they are the vocabulary's:
        // reading it checks that the file is whole.
        SentencePiece::load(&dir.join("target.spm"))?;
        let source_language = read_json::<serde_json::Value>(&dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|v| {
                v.get("source_lang")
                    .and_then(|l| l.as_str())
                    .map(str::to_owned)
            });
        let beams_of = |file: &str| {
            read_json::<serde_json::Value>(&dir.join(file))
                .ok()
                .and_then(|v| v.get("num_beams").and_then(serde_json::Value::as_u64))
        };
        let num_beams = beams_of("generation_config.json")
            .or_else(|| beams_of("config.json"))
            .unwrap_or(1)
            .clamp(1, 16) as usize;
        let device = Device::Cpu;
        let weights = dir.join("model.safetensors");
        let tensors = candle_core::safetensors::load(&weights, &device).map_err(|e| {
            Error::Model(format!(
                "{} is not a readable safetensors file: {e}",
                weights.display()
            ))
        })?;
        let vb = VarBuilder::from_tensors(tensors, DType::F32, &device);
        let net = MTModel::new(&config, vb).map_err(|e| {
            Error::Model(format!(
                "{}: the weights do not fit the configuration: {e}",
                dir.display()
            ))
        })?;
        Ok(MarianModel {
            net: Mutex::new(net),
            config,
            source,
            target_vocab,
            vocab,
            unk,
            source_language,
            num_beams,
            device,
            dir: dir.to_owned(),
        })
    }

    /// The directory it was loaded from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The source language the directory names, if it does.
    pub fn source_language(&self) -> Option<&str> {
        self.source_language.as_deref()
    }

    /// The input ids of `text`, as `MarianTokenizer` makes them: source pieces looked up in
    /// the vocabulary (unknown ones as `<unk>`), then the end token.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let mut ids: Vec<u32> = self
            .source
            .pieces(text)?
            .iter()
            .map(|p| self.vocab.get(p).copied().unwrap_or(self.unk))
            .collect();
        ids.push(self.config.eos_token_id);
        Ok(ids)
    }

    /// Text from output ids, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> String {
        let special = [self.config.eos_token_id, self.config.pad_token_id, self.unk];
        let pieces: Vec<&str> = ids
            .iter()
            .filter(|id| !special.contains(id))
            .filter_map(|&id| self.target_vocab.get(id as usize).map(String::as_str))
            .collect();
        spm::join(&pieces)
    }

    /// The logits of the first output token for `input` (for tests against a reference).
    pub fn first_logits(&self, input: &[u32]) -> Result<Vec<f32>> {
        let (mut net, encoded) = self.encoded(input)?;
        let start =
            Tensor::new(&[self.config.decoder_start_token_id], &self.device)?.unsqueeze(0)?;
        let logits = net.decode(&start, &encoded, 0)?;
        Ok(logits.i((0, 0))?.to_vec1::<f32>()?)
    }

    /// The network, its caches emptied and held for one decoding, and `input` encoded.
    fn encoded(&self, input: &[u32]) -> Result<(std::sync::MutexGuard<'_, MTModel>, Tensor)> {
        if input.is_empty() || input.len() > self.config.max_position_embeddings {
            return Err(Error::Invalid(format!(
                "{} input tokens: the model takes 1 to {}",
                input.len(),
                self.config.max_position_embeddings
            )));
        }
        let mut net = self
            .net
            .lock()
            .map_err(|_| Error::Model("model lock poisoned".into()))?;
        net.reset_kv_cache();
        let ids = Tensor::new(input, &self.device)?.unsqueeze(0)?;
        let encoded = net.encoder().forward(&ids, 0)?;
        Ok((net, encoded))
    }

    /// Greedy decoding of `input` ids, as `transformers`' `generate` does for these models:
    /// the output starts with the decoder start token; the padding token is never chosen; at
    /// the length limit the end token is forced.
    pub fn generate(&self, input: &[u32], limits: DecodeLimits) -> Result<Vec<u32>> {
        let (mut net, encoded) = self.encoded(input)?;
        let max_length = (limits.max_new_tokens + 1).min(self.config.max_position_embeddings);
        let mut out = vec![self.config.decoder_start_token_id];
        while out.len() < max_length {
            let last = out[out.len() - 1];
            let step = Tensor::new(&[last], &self.device)?.unsqueeze(0)?;
            let logits = net.decode(&step, &encoded, out.len() - 1)?;
            let logits: Vec<f32> = logits.i((0, 0))?.to_vec1()?;
            let next = if out.len() + 1 == max_length {
                self.config.forced_eos_token_id
            } else {
                argmax_except(&logits, self.config.pad_token_id)
            };
            out.push(next);
            if next == self.config.eos_token_id {
                break;
            }
        }
        net.reset_kv_cache();
        Ok(out)
    }

    /// Beam search over `input` ids with `num_beams` beams, as `transformers`' `generate`
    /// does it (length penalty 1, no early stopping: its heuristic stop, when no running beam
    /// can beat the worst finished one at the current length), with the same rules as greedy
    /// decoding (padding never chosen, the end token forced at the limit). Each beam keeps its
    /// own attention caches, shared with its parent's until they part (a clone shares the
    /// tensors).
    pub fn generate_beam(
        &self,
        input: &[u32],
        limits: DecodeLimits,
        num_beams: usize,
    ) -> Result<Vec<u32>> {
        if num_beams <= 1 {
            return self.generate(input, limits);
        }
        let (mut net, encoded) = self.encoded(input)?;
        let max_length = (limits.max_new_tokens + 1).min(self.config.max_position_embeddings);
        let eos = self.config.eos_token_id;
        let start = self.config.decoder_start_token_id;
        // The running beams: sequence, score, and the network holding its caches.
        let mut running: Vec<(Vec<u32>, f32, MTModel)> = (0..num_beams)
            .map(|b| (vec![start], if b == 0 { 0.0 } else { -1e9 }, net.clone()))
            .collect();
        // The finished beams: sequence, length-normalised score, finished at all.
        let mut finished: Vec<(Vec<u32>, f32, bool)> = vec![(vec![start], -1e9, false); num_beams];
        let keep = 2 * num_beams;
        let mut cur_len = 1usize;
        let mut heuristic_unsatisfied = true;
        loop {
            // Every beam's next-token log-probabilities, masked as greedy decoding masks.
            let mut scored: Vec<(f32, usize, u32)> = Vec::new();
            for (b, (seq, score, model)) in running.iter_mut().enumerate() {
                let last = seq[seq.len() - 1];
                let step = Tensor::new(&[last], &self.device)?.unsqueeze(0)?;
                let logits: Vec<f32> = model
                    .decode(&step, &encoded, seq.len() - 1)?
                    .i((0, 0))?
                    .to_vec1()?;
                let log_probs = log_softmax(&logits);
                for (t, lp) in log_probs.iter().enumerate() {
                    let t = t as u32;
                    let masked = if cur_len + 1 == max_length {
                        if t == eos { 0.0 } else { f32::NEG_INFINITY }
                    } else if t == self.config.pad_token_id {
                        f32::NEG_INFINITY
                    } else {
                        *lp
                    };
                    scored.push((masked + *score, b, t));
                }
            }
            // The best `keep` continuations, best first (ties by position, as a stable sort).
            scored.sort_by(|a, b| b.0.total_cmp(&a.0));
            scored.truncate(keep);
            let hits = |t: u32| t == eos || cur_len + 1 >= max_length;
            // Finished: those among the first `num_beams` that stop here, normalised by length.
            let mut merged = std::mem::take(&mut finished);
            for (k, &(score, b, t)) in scored.iter().enumerate() {
                let done = k < num_beams && hits(t);
                // Each reason to refuse a candidate weighs -1e9, as in transformers.
                let mut normalised = score / (cur_len as f32);
                if !heuristic_unsatisfied {
                    normalised += -1e9;
                }
                if !done {
                    normalised += -1e9;
                }
                let mut seq = running[b].0.clone();
                seq.push(t);
                merged.push((seq, normalised, done));
            }
            // A stable sort keeps the earlier entry first among equals, as topk over the
            // concatenation does.
            merged.sort_by(|a, b| b.1.total_cmp(&a.1));
            merged.truncate(num_beams);
            finished = merged;
            // Running: the best `num_beams` continuations that do not stop.
            let mut next: Vec<(f32, usize, u32)> = scored
                .iter()
                .map(|&(score, b, t)| (if hits(t) { score - 1e9 } else { score }, b, t))
                .collect();
            next.sort_by(|a, b| b.0.total_cmp(&a.0));
            next.truncate(num_beams);
            let all_stop = scored.iter().all(|&(_, _, t)| hits(t));
            running = next
                .into_iter()
                .map(|(score, b, t)| {
                    let mut seq = running[b].0.clone();
                    seq.push(t);
                    (seq, score, running[b].2.clone())
                })
                .collect();
            cur_len += 1;
            // transformers' heuristic: stop once every slot is finished and the best running
            // beam, at the current length, cannot beat the worst finished one.
            let best_running = running[0].1 / ((cur_len - 1) as f32);
            let all_finished = finished.iter().all(|f| f.2);
            let worst_finished = finished.iter().map(|f| f.1).fold(f32::INFINITY, f32::min);
            heuristic_unsatisfied &= !all_finished || best_running > worst_finished;
            if !heuristic_unsatisfied || all_stop {
                break;
            }
        }
        net.reset_kv_cache();
        Ok(finished
            .into_iter()
            .next()
            .map(|f| f.0)
            .unwrap_or_else(|| vec![start, eos]))
    }

    /// Translates one piece of text that fits the window.
    fn translate_piece(&self, text: &str) -> Result<String> {
        let input = self.encode(text)?;
        if input.len() <= 1 {
            return Ok(String::new());
        }
        // Room for a translation twice as long as its source, within the window.
        let limits = DecodeLimits {
            max_new_tokens: (input.len() * 2 + 10).min(self.config.max_position_embeddings - 1),
        };
        Ok(self.decode(&self.generate_beam(&input, limits, self.num_beams)?))
    }

    /// Translates `text` line by line (blank lines kept), each line whole when it fits the
    /// model's window and sentence by sentence otherwise; a sentence longer than the window is
    /// translated a window's worth of tokens at a time (nothing is dropped; the result counts
    /// such sentences, since their translation suffers at the seams). Past `deadline` it stops
    /// with an error rather than run on (100 MB of one line would take days).
    pub fn translate_until(
        &self,
        text: &str,
        deadline: Option<std::time::Instant>,
    ) -> Result<Translation> {
        let window = self.config.max_position_embeddings;
        let check = || match deadline {
            Some(d) if std::time::Instant::now() >= d => Err(Error::TimeLimit(
                "the translation did not finish within its time limit: stopped".into(),
            )),
            _ => Ok(()),
        };
        let mut lines = Vec::new();
        let mut split = 0;
        for line in text.lines() {
            if line.trim().is_empty() {
                lines.push(String::new());
                continue;
            }
            check()?;
            // A line of a few thousand bytes is tried whole; past that it cannot fit.
            if line.len() <= WHOLE_LINE_BYTES && self.encode(line)?.len() <= window {
                lines.push(self.translate_piece(line)?);
                continue;
            }
            let mut parts = Vec::new();
            for sentence in unicode_segmentation::UnicodeSegmentation::split_sentence_bounds(line) {
                if sentence.trim().is_empty() {
                    continue;
                }
                // Text is tokenised a bounded stretch at a time, whatever the sentence's length.
                let stretches = stretches(sentence, WHOLE_LINE_BYTES);
                let mut long = stretches.len() > 1;
                for stretch in stretches {
                    check()?;
                    let ids = self.encode(stretch)?;
                    if ids.len() <= window {
                        parts.push(self.translate_piece(stretch)?);
                        continue;
                    }
                    long = true;
                    // The pieces without the end token, a window less one at a time.
                    for piece in ids[..ids.len() - 1].chunks(window - 1) {
                        check()?;
                        let mut input = piece.to_vec();
                        input.push(self.config.eos_token_id);
                        let limits = DecodeLimits {
                            max_new_tokens: window - 1,
                        };
                        parts.push(self.decode(&self.generate_beam(
                            &input,
                            limits,
                            self.num_beams,
                        )?));
                    }
                }
                split += usize::from(long);
            }
            lines.push(parts.join(" "));
        }
        Ok(Translation {
            text: lines.join("\n"),
            split,
        })
    }

    /// [`MarianModel::translate_until`] with no time limit.
    pub fn translate(&self, text: &str) -> Result<Translation> {
        self.translate_until(text, None)
    }
}

/// Lines up to this many bytes are tokenised whole; longer text a stretch this long at a time.
const WHOLE_LINE_BYTES: usize = 4096;

/// `text` in stretches of at most about `max` bytes, cut after white space where there is
/// some (else at a character boundary).
fn stretches(text: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while rest.len() > max {
        let mut cut = max;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        if let Some(space) = rest[..cut].rfind(char::is_whitespace)
            && space > 0
        {
            cut = space;
        }
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.trim().is_empty() || out.is_empty() {
        out.push(rest);
    }
    out
}

/// A translation, and how many sentences were longer than the model's window (translated a
/// window at a time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The English text, line for line.
    pub text: String,
    /// Sentences translated in pieces.
    pub split: usize,
}

/// Log-softmax of `logits`, in f32 as `torch.log_softmax` computes it.
fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f32 = logits.iter().map(|l| (l - max).exp()).sum();
    let log_sum = sum.ln();
    logits.iter().map(|l| l - max - log_sum).collect()
}

/// The index of the largest logit other than `banned` (the first of equals).
fn argmax_except(logits: &[f32], banned: u32) -> u32 {
    let mut best = (0u32, f32::NEG_INFINITY);
    for (i, &l) in logits.iter().enumerate() {
        if i as u32 != banned && l > best.1 {
            best = (i as u32, l);
        }
    }
    best.0
}
