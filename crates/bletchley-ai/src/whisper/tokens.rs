//! The Whisper vocabulary: text tokens from `tokenizer.json`, and the special tokens that steer
//! the decoder (language, task, timestamps).

use std::path::Path;

use crate::error::{Error, Result};

/// The tokenizer and the ids of the special tokens.
pub struct Vocabulary {
    tokenizer: tokenizers::Tokenizer,
    /// End of text: the decoder is done.
    pub eot: u32,
    /// Start of transcript: the first prompt token.
    pub sot: u32,
    /// Start of the previous window's text, given as context.
    pub sot_prev: u32,
    /// The task `translate` (to English).
    pub translate: u32,
    /// The task `transcribe` (in the spoken language).
    pub transcribe: u32,
    /// Asks for text without timestamps.
    pub no_timestamps: u32,
    /// The token whose probability at the start says "no speech here".
    pub no_speech: u32,
    /// The first timestamp token (0.00 s); each further one adds 20 ms.
    pub timestamp_begin: u32,
    /// Language codes and their token ids, in the model's order.
    pub languages: Vec<(String, u32)>,
}

impl Vocabulary {
    /// Reads `tokenizer.json` of a model directory.
    pub fn load(dir: &Path, multilingual: bool) -> Result<Self> {
        let path = dir.join("tokenizer.json");
        if !path.exists() {
            return Err(Error::Model(format!("{} is missing", path.display())));
        }
        let tokenizer = tokenizers::Tokenizer::from_file(&path)
            .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        let id = |t: &str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| Error::Model(format!("tokenizer.json lacks the token {t}")))
        };
        let eot = id("<|endoftext|>")?;
        let sot = id("<|startoftranscript|>")?;
        let translate = id("<|translate|>")?;
        let transcribe = id("<|transcribe|>")?;
        let no_timestamps = id("<|notimestamps|>")?;
        let no_speech = tokenizer
            .token_to_id("<|nospeech|>")
            .or_else(|| tokenizer.token_to_id("<|nocaptions|>"))
            .ok_or_else(|| Error::Model("tokenizer.json has no no-speech token".into()))?;
        let mut languages = Vec::new();
        if multilingual {
            for i in (sot + 1)..translate {
                if let Some(t) = tokenizer.id_to_token(i)
                    && let Some(code) = t.strip_prefix("<|").and_then(|t| t.strip_suffix("|>"))
                {
                    languages.push((code.to_owned(), i));
                }
            }
        }
        Ok(Vocabulary {
            eot,
            sot,
            sot_prev: id("<|startofprev|>")?,
            translate,
            transcribe,
            no_timestamps,
            no_speech,
            timestamp_begin: no_timestamps + 1,
            languages,
            tokenizer,
        })
    }

    /// The token of a language code (`en`, `es`, ...).
    pub fn language(&self, code: &str) -> Option<u32> {
        self.languages
            .iter()
            .find(|(c, _)| c == code)
            .map(|&(_, id)| id)
    }

    /// The code of a language token.
    pub fn language_code(&self, token: u32) -> Option<&str> {
        self.languages
            .iter()
            .find(|&&(_, id)| id == token)
            .map(|(c, _)| c.as_str())
    }

    /// Whether a token is a timestamp.
    pub fn is_timestamp(&self, t: u32) -> bool {
        t >= self.timestamp_begin
    }

    /// The text of ordinary tokens (special and timestamp tokens are skipped).
    pub fn text(&self, tokens: &[u32]) -> String {
        let plain: Vec<u32> = tokens.iter().copied().filter(|&t| t < self.eot).collect();
        self.tokenizer.decode(&plain, true).unwrap_or_default()
    }

    /// Encodes text (the prompt of previous text).
    pub fn encode(&self, text: &str) -> Vec<u32> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }
}
