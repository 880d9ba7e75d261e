//! SentencePiece models as OPUS-MT ships them (`source.spm`, `target.spm`): the protobuf read
//! with `prost`, the unigram segmentation done by `tokenizers`' Unigram model, and the
//! normalisation by its `Precompiled` normaliser from the model's own character map — the
//! pieces Hugging Face's `MarianTokenizer` (the sentencepiece library) makes, checked against it
//! in the tests.

use std::path::Path;

use prost::Message;
use tokenizers::models::unigram::Unigram;
use tokenizers::normalizers::precompiled::Precompiled;
use tokenizers::{Model, NormalizedString, Normalizer};

use crate::error::{Error, Result};

/// The parts of SentencePiece's `ModelProto` that segmentation needs.
#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<PieceProto>,
    #[prost(message, optional, tag = "3")]
    normalizer_spec: Option<NormalizerSpec>,
}

#[derive(Clone, PartialEq, Message)]
struct PieceProto {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
    /// 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte.
    #[prost(int32, optional, tag = "3")]
    kind: Option<i32>,
}

#[derive(Clone, PartialEq, Message)]
struct NormalizerSpec {
    #[prost(bytes = "vec", optional, tag = "2")]
    precompiled_charsmap: Option<Vec<u8>>,
    #[prost(bool, optional, tag = "3")]
    add_dummy_prefix: Option<bool>,
    #[prost(bool, optional, tag = "4")]
    remove_extra_whitespaces: Option<bool>,
}

/// Text of many scripts and forms, cut once when a model is loaded.
const PROBE: &str =
    "Hola, ¿qué tal?  ﬁn ＡÑＯ Ωμέγα Привет مرحبا שלום नमस्ते 你好 ✓ 😀 \u{0301}a\t\u{00a0}.";

/// The word-boundary mark SentencePiece puts for a space.
const SPACE: char = '\u{2581}';

/// One SentencePiece model, for cutting text into pieces.
pub struct SentencePiece {
    unigram: Unigram,
    normalizer: Option<Precompiled>,
    add_dummy_prefix: bool,
    remove_extra_whitespaces: bool,
}

impl SentencePiece {
    /// Reads a `.spm` file; a file that is not a SentencePiece model is a clear error.
    pub fn load(path: &Path) -> Result<SentencePiece> {
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| Error::Model(format!("{}: {e}", path.display())))
    }

    /// Reads a SentencePiece model from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<SentencePiece> {
        let bad = |why: String| Error::Model(why);
        let proto = ModelProto::decode(bytes)
            .map_err(|e| bad(format!("not a SentencePiece model: {e}")))?;
        if proto.pieces.is_empty() {
            return Err(bad("a SentencePiece model with no pieces".into()));
        }
        let mut vocab = Vec::with_capacity(proto.pieces.len());
        let mut unk = None;
        for (i, p) in proto.pieces.iter().enumerate() {
            let piece = p.piece.clone().unwrap_or_default();
            if p.kind == Some(2) {
                unk = Some(i);
            }
            vocab.push((piece, f64::from(p.score.unwrap_or(0.0))));
        }
        let unigram = Unigram::from(vocab, unk, false)
            .map_err(|e| bad(format!("its pieces do not make a unigram model: {e}")))?;
        let spec = proto.normalizer_spec.unwrap_or_default();
        let normalizer = match spec.precompiled_charsmap.as_deref() {
            Some(map) if !map.is_empty() => {
                Some(Precompiled::from(map).map_err(|e| bad(format!("its character map: {e}")))?)
            }
            _ => None,
        };
        let model = SentencePiece {
            unigram,
            normalizer,
            add_dummy_prefix: spec.add_dummy_prefix.unwrap_or(true),
            remove_extra_whitespaces: spec.remove_extra_whitespaces.unwrap_or(true),
        };
        // A damaged character map shows on first use: try it on text of many scripts now,
        // so that a bad model directory is refused when it is loaded.
        model.pieces(PROBE)?;
        Ok(model)
    }

    /// The pieces of `text`, as the sentencepiece library cuts it: normalised by the model's
    /// character map, white space trimmed and collapsed, spaces written as `▁` with one
    /// before the first word, then segmented by the unigram model.
    pub fn pieces(&self, text: &str) -> Result<Vec<String>> {
        let mut normalized = NormalizedString::from(text);
        if let Some(n) = &self.normalizer {
            // The character map is a trie read straight from the model file, and its reader
            // (`spm_precompiled`) indexes without checking: a damaged map panics. The panic is
            // caught here (the normaliser holds no state of ours that it could leave broken)
            // and reported as the damaged model it is.
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                n.normalize(&mut normalized)
            }))
            .map_err(|_| Error::Model("the SentencePiece model's character map is damaged".into()))?
            .map_err(|e| Error::Invalid(format!("normalising text: {e}")))?;
        }
        let mut s = normalized.get().to_owned();
        if self.remove_extra_whitespaces {
            s = s
                .split(' ')
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
                .join(" ");
        }
        if s.is_empty() {
            return Ok(Vec::new());
        }
        let mut marked = String::with_capacity(s.len() + 3);
        if self.add_dummy_prefix {
            marked.push(SPACE);
        }
        marked.extend(s.chars().map(|c| if c == ' ' { SPACE } else { c }));
        let tokens = self
            .unigram
            .tokenize(&marked)
            .map_err(|e| Error::Invalid(format!("segmenting text: {e}")))?;
        Ok(tokens.into_iter().map(|t| t.value).collect())
    }
}

/// Text from pieces, as the sentencepiece library joins them: `▁` back to a space, the
/// leading one dropped.
pub fn join(pieces: &[&str]) -> String {
    let text: String = pieces
        .concat()
        .chars()
        .map(|c| if c == SPACE { ' ' } else { c })
        .collect();
    text.strip_prefix(' ').map(str::to_owned).unwrap_or(text)
}
