//! Word-level timestamps from the decoder's cross-attention, as openai-whisper and faster-whisper
//! find them.
//!
//! A few cross-attention heads of the decoder (the checkpoint's "alignment heads") look at the
//! stretch of audio where the next token is spoken. The window's text is fed once more with those
//! weights kept; their normalised, smoothed mean is a token-by-frame similarity, and the cheapest
//! monotonic path through it (dynamic time warping) says at which 20 ms frame each token begins.
//! Tokens are then grouped into words, punctuation is attached to its word, and words that the
//! path stretched over a pause are clipped to a plausible length.

use candle_core::{IndexOp, Tensor};
use serde::{Deserialize, Serialize};

use super::decode;
use super::model::Whisper;
use super::tokens::Vocabulary;
use crate::error::Result;

/// Encoder frames per second (the encoder halves the 100 mel frames per second).
const FRAMES_PER_SECOND: f64 = 50.0;
/// Width of the median filter over time (openai-whisper's).
const MEDIAN_WIDTH: usize = 7;
/// Punctuation that belongs to the word after it.
const PREPEND: &str = "\"'“¿([{-";
/// Punctuation that belongs to the word before it.
const APPEND: &str = "\"'.。,，!！?？:：”)]}、";
/// Marks that end a sentence.
const SENTENCE_END: &str = ".。!！?？";

/// One word with its time, seconds from the beginning of the recording.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Word {
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The word as spoken, with its leading space and attached punctuation.
    pub word: String,
    /// Mean probability of its tokens.
    pub probability: f32,
}

/// A word's tokens and its times within the window.
#[derive(Clone, Debug)]
struct Timed {
    word: String,
    tokens: Vec<u32>,
    start: f64,
    end: f64,
    probability: f32,
}

/// What `words` needs from the window.
pub(crate) struct Window<'a> {
    /// The encoder's output for the window.
    pub states: &'a Tensor,
    /// Language token, when the model is multilingual.
    pub language: Option<u32>,
    /// The task token.
    pub task: u32,
    /// Mel frames of the window that hold audio.
    pub frames: usize,
    /// Seconds from the beginning of the recording to the window's start.
    pub offset: f64,
    /// The language is written without spaces between words (Chinese, Japanese, Thai, Lao,
    /// Burmese, Cantonese): words are single characters.
    pub spaceless: bool,
    /// Which 20 ms frames of the window carry sound (the voice-activity detector's verdict).
    pub active: &'a [bool],
}

/// Gives the words of a window's segments their times. `segments` are (start, end, text tokens)
/// of each segment of the window, in order; the result has one word list per segment, and the
/// segment bounds are moved to their first and last word as openai-whisper does.
pub(crate) fn words(
    model: &Whisper,
    vocab: &Vocabulary,
    window: &Window,
    segments: &mut [(f64, f64, Vec<u32>)],
    last_speech: &mut f64,
) -> Result<Vec<Vec<Word>>> {
    let text: Vec<u32> = segments.iter().flat_map(|s| s.2.iter().copied()).collect();
    let mut out = vec![Vec::new(); segments.len()];
    if text.is_empty() || model.config.alignment_heads.is_empty() {
        return Ok(out);
    }
    let mut alignment = find_alignment(model, vocab, window, &text)?;
    if alignment.is_empty() {
        return Ok(out);
    }
    let mut durations: Vec<f64> = alignment
        .iter()
        .map(|w| w.end - w.start)
        .filter(|&d| d > 0.0)
        .collect();
    durations.sort_by(f64::total_cmp);
    let median = if durations.is_empty() {
        0.0
    } else if durations.len() % 2 == 1 {
        durations[durations.len() / 2]
    } else {
        (durations[durations.len() / 2 - 1] + durations[durations.len() / 2]) / 2.0
    };
    let median = median.min(0.7);
    let max_duration = median * 2.0;
    // A word the path stretched across a pause next to a sentence end is clipped.
    if !durations.is_empty() {
        for i in 1..alignment.len() {
            if alignment[i].end - alignment[i].start > max_duration {
                if is_one_of(&alignment[i].word, SENTENCE_END) {
                    alignment[i].end = alignment[i].start + max_duration;
                } else if is_one_of(&alignment[i - 1].word, SENTENCE_END) {
                    alignment[i].start = alignment[i].end - max_duration;
                }
            }
        }
    }
    merge_punctuation(&mut alignment);
    trim_to_sound(&mut alignment, window.active);
    let mut next = 0;
    for (si, (seg_start, seg_end, tokens)) in segments.iter_mut().enumerate() {
        let mut saved = 0;
        let mut words = Vec::new();
        while next < alignment.len() && saved < tokens.len() {
            let t = &alignment[next];
            if !t.word.is_empty() {
                words.push(Word {
                    start: round2(window.offset + t.start),
                    end: round2(window.offset + t.end),
                    word: t.word.clone(),
                    probability: t.probability,
                });
            }
            saved += t.tokens.len();
            next += 1;
        }
        if let (Some(first_end), Some(_)) = (words.first().map(|w| w.end), words.last()) {
            // The first words after a pause are not longer than twice the median.
            let stretched_first = words[0].end - words[0].start > max_duration
                || (words.len() > 1 && words[1].end - words[0].start > max_duration * 2.0);
            if first_end - *last_speech > median * 4.0 && stretched_first {
                if words.len() > 1 && words[1].end - words[1].start > max_duration {
                    let boundary = (words[1].end / 2.0).max(words[1].end - max_duration);
                    words[0].end = boundary;
                    words[1].start = boundary;
                }
                words[0].start = (words[0].end - max_duration).max(0.0);
            }
            // Prefer the segment's own start when the first word is too long, else move the
            // segment to its first word; likewise at the end.
            if *seg_start < words[0].end && *seg_start - 0.5 > words[0].start {
                words[0].start = (words[0].end - median).min(*seg_start).max(0.0);
            } else {
                *seg_start = words[0].start;
            }
            let last = words.len() - 1;
            if *seg_end > words[last].start && *seg_end + 0.5 < words[last].end {
                words[last].end = (words[last].start + median).max(*seg_end);
            } else {
                *seg_end = words[last].end;
            }
            *last_speech = *seg_end;
        }
        out[si] = words;
    }
    Ok(out)
}

/// Frames of silence at a word's edge worth trimming (100 ms: shorter gaps are the closures of
/// stop consonants, part of the word).
const SILENT_EDGE: usize = 5;

/// Moves word edges that lie in silence onto the sound. The path must start at the window's
/// first frame, so the first word of a window that opens with a pause otherwise begins in it,
/// and a word before a pause can end well after it is spoken.
fn trim_to_sound(words: &mut [Timed], active: &[bool]) {
    if active.is_empty() {
        return;
    }
    let frame = |t: f64| ((t * FRAMES_PER_SECOND).round().max(0.0) as usize).min(active.len());
    for w in words.iter_mut().filter(|w| !w.word.is_empty()) {
        let (a, b) = (frame(w.start), frame(w.end));
        let Some(first) = active[a..b].iter().position(|&x| x) else {
            continue;
        };
        let last = active[a..b].iter().rposition(|&x| x).unwrap_or(first);
        if first >= SILENT_EDGE {
            w.start = (a + first) as f64 / FRAMES_PER_SECOND;
        }
        if (b - a) - 1 - last >= SILENT_EDGE {
            w.end = (a + last + 1) as f64 / FRAMES_PER_SECOND;
        }
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn is_one_of(word: &str, marks: &str) -> bool {
    let w = word.trim();
    !w.is_empty() && w.chars().count() == 1 && marks.contains(w)
}

/// Times every word of `text` (the window's text tokens) within the window.
fn find_alignment(
    model: &Whisper,
    vocab: &Vocabulary,
    window: &Window,
    text: &[u32],
) -> Result<Vec<Timed>> {
    let sot_sequence = decode::prompt(vocab, &[], window.language, window.task);
    let mut tokens = sot_sequence.clone();
    tokens.push(vocab.no_timestamps);
    tokens.extend_from_slice(text);
    tokens.push(vocab.eot);
    let n = tokens.len();
    let max = model.decoder.max_tokens();
    if n > max {
        return Ok(Vec::new());
    }
    let input = Tensor::new(tokens.as_slice(), &model.device)?.unsqueeze(0)?;
    let mut state = model.decoder.start(window.states)?;
    let (logits, weights) = model.decoder.step(&input, &mut state, true)?;

    // Probability of each text token where it was predicted (over text tokens only).
    let logits = logits
        .i(0)?
        .to_dtype(candle_core::DType::F32)?
        .to_vec2::<f32>()?;
    let eot = vocab.eot as usize;
    let probabilities: Vec<f32> = text
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let row = &logits[sot_sequence.len() + i];
            let row = &row[..eot.min(row.len())];
            let p = super::model::log_softmax(row);
            p.get(t as usize).map_or(0.0, |lp| lp.exp())
        })
        .collect();

    // The alignment heads' weights over the frames that hold audio.
    let frames = (window.frames / 2).max(1);
    let mut heads: Vec<Vec<Vec<f32>>> = Vec::new();
    for &(layer, head) in &model.config.alignment_heads {
        let Some(w) = weights.get(layer) else {
            continue;
        };
        if head >= w.dim(1)? {
            continue;
        }
        let w = w.i((0, head))?;
        let frames = frames.min(w.dim(1)?);
        let w = w.narrow(1, 0, frames)?.to_dtype(candle_core::DType::F32)?;
        let mut rows: Vec<Vec<f32>> = w.to_vec2()?;
        // Softmax over the kept frames only: renormalise the full softmax's weights.
        for row in &mut rows {
            let sum: f32 = row.iter().sum();
            if sum > 0.0 {
                row.iter_mut().for_each(|x| *x /= sum);
            }
        }
        standardise_over_tokens(&mut rows);
        for row in &mut rows {
            *row = median_filter(row, MEDIAN_WIDTH);
        }
        heads.push(rows);
    }
    if heads.is_empty() {
        return Ok(Vec::new());
    }
    let frames = heads[0][0].len();
    // Rows from the no-timestamps token to the last text token: each predicts the next token.
    let first = sot_sequence.len();
    let rows = n - 1 - first;
    let mut cost = vec![0f32; rows * frames];
    for h in &heads {
        for r in 0..rows {
            for (c, x) in h[first + r].iter().enumerate() {
                cost[r * frames + c] -= x / heads.len() as f32;
            }
        }
    }
    let (text_rows, time_cols) = dtw(&cost, rows, frames);
    let mut jump_times = Vec::with_capacity(rows);
    let mut previous = usize::MAX;
    for (r, c) in text_rows.iter().zip(&time_cols) {
        if *r != previous {
            jump_times.push(*c as f64 / FRAMES_PER_SECOND);
            previous = *r;
        }
    }

    let mut with_end = text.to_vec();
    with_end.push(vocab.eot);
    let words = split_words(vocab, &with_end, window.spaceless);
    if words.len() <= 1 {
        return Ok(Vec::new());
    }
    let mut timed = Vec::with_capacity(words.len() - 1);
    let mut begin = 0usize;
    for (word, toks) in words.into_iter().take_while(|(_, t)| t[0] != vocab.eot) {
        let end = begin + toks.len();
        let start_t = jump_times.get(begin).copied().unwrap_or(0.0);
        let end_t = jump_times
            .get(end)
            .or(jump_times.last())
            .copied()
            .unwrap_or(start_t);
        let p = &probabilities[begin.min(probabilities.len())..end.min(probabilities.len())];
        let probability = if p.is_empty() {
            0.0
        } else {
            p.iter().sum::<f32>() / p.len() as f32
        };
        timed.push(Timed {
            word,
            tokens: toks,
            start: start_t,
            end: end_t.max(start_t),
            probability,
        });
        begin = end;
    }
    Ok(timed)
}

/// For each head and frame, makes the weights over tokens zero-mean and unit-variance.
fn standardise_over_tokens(rows: &mut [Vec<f32>]) {
    let n = rows.len() as f32;
    let Some(frames) = rows.first().map(Vec::len) else {
        return;
    };
    for c in 0..frames {
        let mean = rows.iter().map(|r| r[c]).sum::<f32>() / n;
        let var = rows.iter().map(|r| (r[c] - mean).powi(2)).sum::<f32>() / n;
        let std = var.sqrt().max(1e-10);
        for r in rows.iter_mut() {
            r[c] = (r[c] - mean) / std;
        }
    }
}

/// A running median with reflected edges (scipy's and openai-whisper's `reflect`: the edge sample
/// is not repeated).
fn median_filter(row: &[f32], width: usize) -> Vec<f32> {
    let pad = width / 2;
    if row.len() <= pad {
        return row.to_vec();
    }
    let at = |i: isize| -> f32 {
        let n = row.len() as isize;
        let j = if i < 0 {
            -i
        } else if i >= n {
            2 * (n - 1) - i
        } else {
            i
        };
        row[j.clamp(0, n - 1) as usize]
    };
    let mut window = vec![0f32; width];
    (0..row.len() as isize)
        .map(|i| {
            for (k, w) in window.iter_mut().enumerate() {
                *w = at(i - pad as isize + k as isize);
            }
            window.sort_by(f32::total_cmp);
            window[pad]
        })
        .collect()
}

/// The cheapest monotonic path from the top-left to the bottom-right of a rows × cols cost
/// matrix, moving down, right or diagonally; returned as (row, col) index lists.
fn dtw(cost: &[f32], rows: usize, cols: usize) -> (Vec<usize>, Vec<usize>) {
    let w = cols + 1;
    let mut acc = vec![f32::INFINITY; (rows + 1) * w];
    let mut trace = vec![0u8; (rows + 1) * w];
    acc[0] = 0.0;
    for j in 1..=cols {
        for i in 1..=rows {
            let c0 = acc[(i - 1) * w + j - 1];
            let c1 = acc[(i - 1) * w + j];
            let c2 = acc[i * w + j - 1];
            let (c, t) = if c0 < c1 && c0 < c2 {
                (c0, 0)
            } else if c1 < c0 && c1 < c2 {
                (c1, 1)
            } else {
                (c2, 2)
            };
            acc[i * w + j] = cost[(i - 1) * cols + j - 1] + c;
            trace[i * w + j] = t;
        }
    }
    let (mut i, mut j) = (rows, cols);
    let mut path = Vec::with_capacity(rows + cols);
    while i > 0 || j > 0 {
        path.push((i.saturating_sub(1), j.saturating_sub(1)));
        let t = if i == 0 {
            2
        } else if j == 0 {
            1
        } else {
            trace[i * w + j]
        };
        match t {
            0 => {
                i -= 1;
                j -= 1;
            }
            1 => i -= 1,
            _ => j -= 1,
        }
    }
    path.reverse();
    path.into_iter().unzip()
}

/// Groups tokens into words: a word starts at a token with a leading space, at punctuation or at
/// a special token; languages written without spaces split at every whole character.
fn split_words(vocab: &Vocabulary, tokens: &[u32], spaceless: bool) -> Vec<(String, Vec<u32>)> {
    let pieces = split_on_characters(vocab, tokens);
    if spaceless {
        return pieces;
    }
    let mut words: Vec<(String, Vec<u32>)> = Vec::new();
    for (text, toks) in pieces {
        let special = toks[0] >= vocab.eot;
        let with_space = text.starts_with(' ');
        let trimmed = text.trim();
        let punctuation = !trimmed.is_empty() && trimmed.chars().all(|c| c.is_ascii_punctuation());
        match words.last_mut() {
            Some(last) if !(special || with_space || punctuation) => {
                last.0.push_str(&text);
                last.1.extend(toks);
            }
            _ => words.push((text, toks)),
        }
    }
    words
}

/// Splits tokens where the decoded text holds whole characters (a character may span tokens).
fn split_on_characters(vocab: &Vocabulary, tokens: &[u32]) -> Vec<(String, Vec<u32>)> {
    let mut out = Vec::new();
    let mut current = Vec::new();
    for &t in tokens {
        current.push(t);
        let text = vocab.text(&current);
        if !text.contains('\u{FFFD}') {
            out.push((text, std::mem::take(&mut current)));
        }
    }
    if !current.is_empty() {
        out.push((vocab.text(&current), current));
    }
    out
}

/// Attaches opening punctuation to the next word and closing punctuation to the previous one.
fn merge_punctuation(words: &mut [Timed]) {
    if words.len() < 2 {
        return;
    }
    let mut j = words.len() - 1;
    for i in (0..words.len() - 1).rev() {
        let prev = &words[i];
        if prev.word.starts_with(' ') && is_one_of(&prev.word, PREPEND) {
            let (word, toks) = (
                std::mem::take(&mut words[i].word),
                std::mem::take(&mut words[i].tokens),
            );
            words[j].word = word + &words[j].word;
            let mut merged = toks;
            merged.extend_from_slice(&words[j].tokens);
            words[j].tokens = merged;
        } else {
            j = i;
        }
    }
    let mut i = 0;
    for j in 1..words.len() {
        let follows = !words[j].word.is_empty()
            && words[j].word.chars().count() == 1
            && APPEND.contains(words[j].word.as_str());
        if !words[i].word.ends_with(' ') && follows {
            let word = std::mem::take(&mut words[j].word);
            let toks = std::mem::take(&mut words[j].tokens);
            words[i].word.push_str(&word);
            words[i].tokens.extend(toks);
        } else {
            i = j;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtw_follows_the_diagonal_of_a_cheap_band() {
        // Three tokens over six frames: token 0 at frames 0-1, token 1 at 2-3, token 2 at 4-5.
        let rows = 3;
        let cols = 6;
        let mut cost = vec![1.0f32; rows * cols];
        for r in 0..rows {
            cost[r * cols + 2 * r] = -1.0;
            cost[r * cols + 2 * r + 1] = -1.0;
        }
        let (r, c) = dtw(&cost, rows, cols);
        assert_eq!(r.first(), Some(&0));
        assert_eq!(c.first(), Some(&0));
        assert_eq!(r.last(), Some(&2));
        assert_eq!(c.last(), Some(&5));
        let starts: Vec<usize> = (0..rows)
            .map(|k| c[r.iter().position(|&x| x == k).expect("row on path")])
            .collect();
        assert_eq!(starts, vec![0, 2, 4]);
    }

    #[test]
    fn word_edges_in_silence_move_onto_the_sound() {
        // 0.0-1.0 s silent, 1.0-1.5 s sound, then silent; a 60 ms gap at 1.2 s stays.
        let mut active = vec![false; 100];
        for a in active.iter_mut().take(75).skip(50) {
            *a = true;
        }
        active[60] = false;
        active[61] = false;
        active[62] = false;
        let mut w = vec![Timed {
            start: 0.0,
            end: 1.9,
            ..timed(" The", &[1])
        }];
        trim_to_sound(&mut w, &active);
        assert_eq!((w[0].start, w[0].end), (1.0, 1.5));
        // A word wholly in silence (the detector missed quiet speech) keeps its times.
        let mut quiet = vec![Timed {
            start: 0.2,
            end: 0.4,
            ..timed(" uh", &[2])
        }];
        trim_to_sound(&mut quiet, &active);
        assert_eq!((quiet[0].start, quiet[0].end), (0.2, 0.4));
    }

    #[test]
    fn median_filter_reflects_at_the_edges() {
        let row = [5.0, 1.0, 2.0, 9.0, 3.0];
        // Width 3 with reflection: [1,5,1] [5,1,2] [1,2,9] [2,9,3] [9,3,9].
        assert_eq!(median_filter(&row, 3), vec![1.0, 2.0, 2.0, 3.0, 9.0]);
        assert_eq!(median_filter(&[4.0], 7), vec![4.0]);
    }

    #[test]
    fn standardised_columns_have_zero_mean() {
        let mut rows = vec![vec![1.0, 5.0], vec![3.0, 5.0]];
        standardise_over_tokens(&mut rows);
        assert_eq!(rows, vec![vec![-1.0, 0.0], vec![1.0, 0.0]]);
    }

    fn timed(word: &str, tokens: &[u32]) -> Timed {
        Timed {
            word: word.into(),
            tokens: tokens.to_vec(),
            start: 0.0,
            end: 0.0,
            probability: 1.0,
        }
    }

    #[test]
    fn punctuation_joins_its_word() {
        let mut w = vec![
            timed(" ¿", &[1]),
            timed(" Dónde", &[2]),
            timed("?", &[3]),
            timed(" Aquí", &[4]),
            timed(".", &[5]),
        ];
        merge_punctuation(&mut w);
        let words: Vec<&str> = w.iter().map(|t| t.word.as_str()).collect();
        assert_eq!(words, vec!["", " ¿ Dónde?", "", " Aquí.", ""]);
        assert_eq!(w[1].tokens, vec![1, 2, 3]);
        assert_eq!(w[3].tokens, vec![4, 5]);
    }
}
