//! Cutting a document into chunks that fit the model's window: whole sentences where they fit,
//! consecutive chunks sharing a sentence so a thought cut at a boundary is whole in one of them,
//! and sentences longer than the window cut at token boundaries.
//!
//! Every chunk is a byte range of the original text, so a hit can be shown where it is.

use unicode_segmentation::UnicodeSegmentation;

use crate::error::{Error, Result};

/// A byte range of the text that was cut.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
    /// Tokens it holds (without the model's special tokens), as counted when it was cut.
    pub tokens: usize,
}

impl Chunk {
    /// The chunk's text in the document it was cut from.
    pub fn text<'a>(&self, document: &'a str) -> &'a str {
        document.get(self.start..self.end).unwrap_or_default()
    }
}

/// A sentence (or a piece of a long one) and its token count.
struct Piece {
    start: usize,
    end: usize,
    tokens: usize,
}

/// Cuts `text` into chunks of at most `budget` tokens (the window less the special tokens),
/// each after the first beginning with up to `overlap` sentences of the one before.
pub fn chunks(
    tokenizer: &tokenizers::Tokenizer,
    text: &str,
    budget: usize,
    overlap: usize,
) -> Result<Vec<Chunk>> {
    if budget == 0 {
        return Err(Error::Invalid(
            "a chunk must hold at least one token".into(),
        ));
    }
    let pieces = pieces(tokenizer, text, budget)?;
    let mut out = Vec::new();
    let mut first = 0;
    while first < pieces.len() {
        let mut last = first;
        let mut tokens = pieces[first].tokens;
        while last + 1 < pieces.len() && tokens + pieces[last + 1].tokens <= budget {
            last += 1;
            tokens += pieces[last].tokens;
        }
        out.push(Chunk {
            start: pieces[first].start,
            end: pieces[last].end,
            tokens,
        });
        if last + 1 >= pieces.len() {
            break;
        }
        // The next chunk repeats the last sentences of this one, if that leaves room to move on.
        let mut next = last + 1;
        let mut shared = 0;
        while next > first + 1
            && last + 1 - (next - 1) <= overlap
            && shared + pieces[next - 1].tokens + pieces[last + 1].tokens <= budget / 2
        {
            next -= 1;
            shared += pieces[next].tokens;
        }
        first = next;
    }
    Ok(out)
}

/// Bytes a piece is cut to before it is tokenised, per token of budget: keeps one enormous
/// "sentence" (a file of one line) from being tokenised whole.
const BYTES_PER_TOKEN: usize = 16;

fn pieces(tokenizer: &tokenizers::Tokenizer, text: &str, budget: usize) -> Result<Vec<Piece>> {
    let limit = budget.saturating_mul(BYTES_PER_TOKEN).max(64);
    let mut spans = Vec::new();
    for (start, sentence) in text.split_sentence_bound_indices() {
        let mut s = start;
        let end = start + sentence.len();
        while end - s > limit {
            let cut = cut_point(text, s, s + limit);
            spans.push((s, cut));
            s = cut;
        }
        if text[s..end].trim().is_empty() {
            continue;
        }
        spans.push((s, end));
    }
    let mut out = Vec::new();
    // Tokenised a group at a time: a token's encoding weighs far more than its bytes, so a
    // large document is never held tokenised whole.
    for group in spans.chunks(256) {
        let inputs: Vec<&str> = group.iter().map(|&(s, e)| &text[s..e]).collect();
        let encodings = tokenizer
            .encode_batch_char_offsets(inputs, false)
            .map_err(|e| Error::Model(format!("tokenizer: {e}")))?;
        for (&(s, e), enc) in group.iter().zip(&encodings) {
            split_piece(text, s, e, enc, budget, &mut out);
        }
    }
    Ok(out)
}

/// A sentence (or piece) as one piece, or cut at token boundaries when longer than `budget`.
fn split_piece(
    text: &str,
    s: usize,
    e: usize,
    enc: &tokenizers::Encoding,
    budget: usize,
    out: &mut Vec<Piece>,
) {
    let n = enc.get_ids().len();
    if n == 0 {
        return;
    }
    if n <= budget {
        out.push(Piece {
            start: s,
            end: e,
            tokens: n,
        });
        return;
    }
    // Offsets are in characters of the piece.
    let piece = &text[s..e];
    let byte_of: Vec<usize> = piece
        .char_indices()
        .map(|(b, _)| b)
        .chain(std::iter::once(piece.len()))
        .collect();
    let offsets = enc.get_offsets();
    let mut from = 0;
    while from < n {
        let to = (from + budget).min(n);
        let start = if from == 0 {
            0
        } else {
            byte_of[offsets[from].0.min(byte_of.len() - 1)]
        };
        let end = if to == n {
            piece.len()
        } else {
            byte_of[offsets[to].0.min(byte_of.len() - 1)]
        };
        if end > start {
            out.push(Piece {
                start: s + start,
                end: s + end,
                tokens: to - from,
            });
        }
        from = to;
    }
}

/// A byte position at or before `max` (and after `min`) to cut at: after the last whitespace
/// in the second half of the range, else at a character boundary.
fn cut_point(text: &str, min: usize, max: usize) -> usize {
    let mut at = max.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let mut half = min + (at - min) / 2;
    while !text.is_char_boundary(half) {
        half += 1;
    }
    if let Some(ws) = text[half..at].rfind(char::is_whitespace) {
        let cut = half + ws;
        let next = text[cut..].chars().next().map_or(1, char::len_utf8);
        if cut + next > min {
            return cut + next;
        }
    }
    if at <= min {
        // A single character wider than the range; take it whole.
        at = min + text[min..].chars().next().map_or(1, char::len_utf8);
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_point_is_a_character_boundary_after_the_start() {
        let t = "ééééééééé";
        for min in (0..t.len()).step_by(2) {
            for max in min + 1..=t.len() {
                let c = cut_point(t, min, max);
                assert!(c > min && t.is_char_boundary(c), "{min} {max} {c}");
            }
        }
        assert_eq!(cut_point("aaaa bbbb", 0, 8), 5);
    }
}
