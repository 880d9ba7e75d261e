//! Decoding one 30-second window: the prompt, the logit rules, greedy, sampling and beam search.
//!
//! The rules are Whisper's own (openai-whisper's `ApplyTimestampRules` and token suppression):
//! timestamps come in pairs and never go backwards, the first token is a timestamp no later than
//! one second, and when the timestamps together are likelier than any text token, a timestamp
//! must come next.

use candle_core::Tensor;

use super::model::{DecoderState, Whisper, last_logits, log_normaliser, log_softmax};
use super::tokens::Vocabulary;
use crate::error::Result;

/// Tokens decoded in one window, at most (half the decoder's context, as Whisper does).
pub const SAMPLE_LEN: usize = 224;
/// The latest first timestamp, in 20 ms steps (1 s).
const MAX_INITIAL_TIMESTAMP: u32 = 50;

/// What one attempt at a window produced.
#[derive(Clone, Debug)]
pub struct WindowResult {
    /// Tokens after the prompt, without the end token.
    pub tokens: Vec<u32>,
    /// Sum of the chosen tokens' log-probabilities (end token included).
    pub sum_logprob: f32,
    /// Mean log-probability per token: the confidence check.
    pub avg_logprob: f32,
    /// Probability that the window holds no speech.
    pub no_speech_prob: f32,
    /// How well the text compresses: high means repetition, the looping failure.
    pub compression_ratio: f32,
    /// The decoded text.
    pub text: String,
}

/// The prompt for one window: optional previous text, then start, language and task.
pub fn prompt(vocab: &Vocabulary, previous: &[u32], language: Option<u32>, task: u32) -> Vec<u32> {
    let mut p = Vec::new();
    if !previous.is_empty() {
        p.push(vocab.sot_prev);
        let keep = previous.len().min(SAMPLE_LEN - 1);
        p.extend_from_slice(&previous[previous.len() - keep..]);
    }
    p.push(vocab.sot);
    if let Some(lang) = language {
        p.push(lang);
        p.push(task);
    }
    p
}

/// The logit rules, applied in place to one hypothesis' row.
pub struct Rules<'a> {
    vocab: &'a Vocabulary,
    suppress: Vec<u32>,
    suppress_begin: Vec<u32>,
}

impl<'a> Rules<'a> {
    /// Rules for a model: its suppression tables plus every special token but end and timestamps.
    pub fn new(model: &Whisper, vocab: &'a Vocabulary) -> Self {
        let mut suppress = model.config.suppress_ids.clone();
        suppress.extend((vocab.eot + 1)..vocab.timestamp_begin);
        let mut suppress_begin = model.config.suppress_ids_begin.clone();
        if suppress_begin.is_empty() {
            suppress_begin = vec![vocab.eot];
            suppress_begin.extend(vocab.encode(" "));
        }
        Rules {
            vocab,
            suppress,
            suppress_begin,
        }
    }

    /// Masks the logits of tokens that may not follow `sampled`.
    pub fn apply(&self, logits: &mut [f32], sampled: &[u32]) {
        let ts = self.vocab.timestamp_begin as usize;
        let eot = self.vocab.eot as usize;
        let vocab_len = logits.len();
        for &t in &self.suppress {
            if let Some(l) = logits.get_mut(t as usize) {
                *l = f32::NEG_INFINITY;
            }
        }
        if sampled.is_empty() {
            for &t in &self.suppress_begin {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l = f32::NEG_INFINITY;
                }
            }
        }
        if ts >= vocab_len {
            return;
        }
        let is_ts = |t: u32| self.vocab.is_timestamp(t);
        let last_ts = sampled.last().is_some_and(|&t| is_ts(t));
        let penultimate_ts = sampled.len() < 2 || is_ts(sampled[sampled.len() - 2]);
        if last_ts {
            if penultimate_ts {
                logits[ts..].fill(f32::NEG_INFINITY);
            } else {
                logits[..eot].fill(f32::NEG_INFINITY);
            }
        }
        if let Some(&last) = sampled.iter().rev().find(|&&t| is_ts(t)) {
            // Timestamps never go back; a closing timestamp may equal the opening one only once.
            let floor = if last_ts && !penultimate_ts {
                last
            } else {
                last + 1
            };
            let floor = (floor as usize).min(vocab_len);
            logits[ts..floor].fill(f32::NEG_INFINITY);
        }
        if sampled.is_empty() {
            logits[..ts].fill(f32::NEG_INFINITY);
            let last_allowed = ts + MAX_INITIAL_TIMESTAMP as usize;
            if last_allowed + 1 < vocab_len {
                logits[last_allowed + 1..].fill(f32::NEG_INFINITY);
            }
        }
        // If the timestamps together outweigh every text token, a timestamp comes next. Both
        // sides are log-probabilities less the same normaliser, so raw logits compare alike.
        let ts_mass = log_normaliser(&logits[ts..]).unwrap_or(f32::NEG_INFINITY);
        let text_max = logits[..ts]
            .iter()
            .copied()
            .fold(f32::NEG_INFINITY, f32::max);
        if ts_mass > text_max {
            logits[..ts].fill(f32::NEG_INFINITY);
        }
    }
}

fn argmax(xs: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best as u32
}

/// A small deterministic generator for temperature sampling: reruns give the same transcript.
pub struct Sampler(u64);

impl Sampler {
    /// Seeded per window, so windows are independent of each other's retries.
    pub fn new(seed: u64) -> Self {
        Sampler(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    fn next_f32(&mut self) -> f32 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 40) as f32 / (1u64 << 24) as f32
    }
    fn sample(&mut self, logits: &[f32], temperature: f32) -> u32 {
        let scaled: Vec<f32> = logits.iter().map(|&l| l / temperature).collect();
        let lp = log_softmax(&scaled);
        let mut r = self.next_f32();
        for (i, &l) in lp.iter().enumerate() {
            let p = l.exp();
            if r < p {
                return i as u32;
            }
            r -= p;
        }
        argmax(&lp)
    }
}

/// zlib compression ratio of the text, Whisper's repetition check.
pub fn compression_ratio(text: &str) -> f32 {
    use std::io::Write;
    if text.is_empty() {
        return 0.0;
    }
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    if enc.write_all(text.as_bytes()).is_err() {
        return 0.0;
    }
    match enc.finish() {
        Ok(z) if !z.is_empty() => text.len() as f32 / z.len() as f32,
        _ => 0.0,
    }
}

/// Runs the prompt, returning the decoder state, the logits after the prompt and the
/// no-speech probability read at the start token.
fn run_prompt(
    model: &Whisper,
    vocab: &Vocabulary,
    audio: &Tensor,
    prompt: &[u32],
) -> Result<(DecoderState, Vec<f32>, f32)> {
    let mut state = model.decoder.start(audio)?;
    let input = Tensor::new(prompt, &model.device)?.unsqueeze(0)?;
    let sot_at = prompt.iter().rposition(|&t| t == vocab.sot).unwrap_or(0);
    let last_at = prompt.len().saturating_sub(1);
    // Logits at the start of transcript (for the no-speech probability) and at the end.
    let (logits, _) = model.decoder.step_at(
        &input,
        &mut state,
        false,
        Some(&[sot_at as u32, last_at as u32]),
    )?;
    let at_sot = logits
        .narrow(1, 0, 1)?
        .squeeze(1)?
        .squeeze(0)?
        .to_vec1::<f32>()?;
    let no_speech_prob = log_softmax(&at_sot)
        .get(vocab.no_speech as usize)
        .map_or(0.0, |l| l.exp());
    let last = last_logits(&logits)?.pop().unwrap_or_default();
    Ok((state, last, no_speech_prob))
}

fn finish(
    vocab: &Vocabulary,
    tokens: Vec<u32>,
    sum_logprob: f32,
    no_speech_prob: f32,
) -> WindowResult {
    let text = vocab.text(&tokens);
    WindowResult {
        avg_logprob: sum_logprob / (tokens.len() + 1) as f32,
        compression_ratio: compression_ratio(&text),
        tokens,
        sum_logprob,
        no_speech_prob,
        text,
    }
}

/// Greedy decoding (temperature 0) or sampling (temperature above 0).
pub fn greedy(
    model: &Whisper,
    vocab: &Vocabulary,
    rules: &Rules,
    audio: &Tensor,
    prompt: &[u32],
    temperature: f32,
    sampler: &mut Sampler,
) -> Result<WindowResult> {
    let (mut state, mut logits, no_speech_prob) = run_prompt(model, vocab, audio, prompt)?;
    let mut tokens = Vec::new();
    let mut sum_logprob = 0.0;
    let limit = SAMPLE_LEN.min(448usize.saturating_sub(prompt.len()));
    for _ in 0..limit {
        rules.apply(&mut logits, &tokens);
        let next = if temperature > 0.0 {
            sampler.sample(&logits, temperature)
        } else {
            argmax(&logits)
        };
        sum_logprob += match (log_normaliser(&logits), logits.get(next as usize)) {
            (Some(lse), Some(&l)) => l - lse,
            _ => f32::NEG_INFINITY,
        };
        if next == vocab.eot {
            break;
        }
        tokens.push(next);
        let input = Tensor::new(&[next], &model.device)?.unsqueeze(0)?;
        let (out, _) = model.decoder.step(&input, &mut state, false)?;
        logits = last_logits(&out)?.pop().unwrap_or_default();
    }
    Ok(finish(vocab, tokens, sum_logprob, no_speech_prob))
}

/// A beam's hypothesis: its tokens and the sum of their log-probabilities.
type Hypothesis = (Vec<u32>, f32);

/// One step of a beam: walks the candidates (source hypothesis, token, score) in rank order
/// until `beam` hypotheses live again, and returns them with the index of each one's source.
/// An end token ranked among them finishes its hypothesis (while `finished` has room for
/// `beam`); one ranked below every kept hypothesis does not. That is openai-whisper's rule,
/// and CTranslate2's. Collecting the low-ranked ends too finished windows on short, weak
/// hypotheses, which then won on mean log-probability and dropped the window's last sentences.
fn prune(
    live: &[Hypothesis],
    ranked: &[(usize, u32, f32)],
    eot: u32,
    beam: usize,
    finished: &mut Vec<Hypothesis>,
) -> (Vec<Hypothesis>, Vec<u32>) {
    let mut next = Vec::with_capacity(beam);
    let mut sources = Vec::with_capacity(beam);
    for &(src, token, score) in ranked {
        let Some((tokens, _)) = live.get(src) else {
            continue;
        };
        if token == eot {
            if finished.len() < beam {
                finished.push((tokens.clone(), score));
            }
            continue;
        }
        let mut t = tokens.clone();
        t.push(token);
        next.push((t, score));
        sources.push(src as u32);
        if next.len() == beam {
            break;
        }
    }
    (next, sources)
}

/// Beam search with `beam` hypotheses; the best finished one by mean log-probability wins.
pub fn beam_search(
    model: &Whisper,
    vocab: &Vocabulary,
    rules: &Rules,
    audio: &Tensor,
    prompt: &[u32],
    beam: usize,
) -> Result<WindowResult> {
    let (mut state, first, no_speech_prob) = run_prompt(model, vocab, audio, prompt)?;
    let mut live: Vec<Hypothesis> = vec![(Vec::new(), 0.0)];
    let mut rows = vec![first];
    let mut finished: Vec<Hypothesis> = Vec::new();
    let limit = SAMPLE_LEN.min(448usize.saturating_sub(prompt.len()));
    for _ in 0..limit {
        let mut candidates: Vec<(usize, u32, f32)> = Vec::new();
        for (i, ((tokens, sum), logits)) in live.iter().zip(rows.iter_mut()).enumerate() {
            rules.apply(logits, tokens);
            // The best tokens by logit are the best by log-probability: one normaliser, and
            // no 51,865-entry vector per hypothesis.
            let Some(lse) = log_normaliser(logits) else {
                continue;
            };
            let mut top: Vec<(u32, f32)> = Vec::with_capacity(beam + 1);
            for (t, &l) in logits.iter().enumerate() {
                if !l.is_finite() {
                    continue;
                }
                let l = l - lse;
                if top.len() < beam + 1 {
                    top.push((t as u32, l));
                    top.sort_by(|a, b| b.1.total_cmp(&a.1));
                } else if l > top[beam].1 {
                    top[beam] = (t as u32, l);
                    top.sort_by(|a, b| b.1.total_cmp(&a.1));
                }
            }
            candidates.extend(top.into_iter().map(|(t, l)| (i, t, sum + l)));
        }
        candidates.sort_by(|a, b| b.2.total_cmp(&a.2));
        let (next_live, sources) = prune(&live, &candidates, vocab.eot, beam, &mut finished);
        if finished.len() >= beam || next_live.is_empty() {
            break;
        }
        state.reorder(&sources)?;
        let last: Vec<u32> = next_live
            .iter()
            .map(|(t, _)| *t.last().unwrap_or(&vocab.eot))
            .collect();
        let input = Tensor::new(last.as_slice(), &model.device)?.unsqueeze(1)?;
        let (out, _) = model.decoder.step(&input, &mut state, false)?;
        rows = last_logits(&out)?;
        live = next_live;
    }
    if finished.is_empty() {
        finished = live;
    }
    let best = finished
        .into_iter()
        .max_by(|a, b| {
            let sa = a.1 / (a.0.len() + 1) as f32;
            let sb = b.1 / (b.0.len() + 1) as f32;
            sa.total_cmp(&sb)
        })
        .unwrap_or_default();
    Ok(finish(vocab, best.0, best.1, no_speech_prob))
}

/// Language probabilities from the start token alone, most likely first.
pub fn detect_language(
    model: &Whisper,
    vocab: &Vocabulary,
    audio: &Tensor,
) -> Result<Vec<(String, f32)>> {
    let (_, logits, _) = run_prompt(model, vocab, audio, &[vocab.sot])?;
    let lang: Vec<f32> = vocab
        .languages
        .iter()
        .map(|&(_, id)| {
            logits
                .get(id as usize)
                .copied()
                .unwrap_or(f32::NEG_INFINITY)
        })
        .collect();
    let lp = log_softmax(&lang);
    let mut out: Vec<(String, f32)> = vocab
        .languages
        .iter()
        .zip(lp)
        .map(|((code, _), l)| (code.clone(), l.exp()))
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repetition_compresses_well() {
        let looping = "the same words again ".repeat(20);
        assert!(compression_ratio(&looping) > 2.4);
        assert!(compression_ratio("Three trucks crossed the border late last night.") < 2.4);
    }

    #[test]
    fn a_beam_finishes_only_ends_ranked_above_its_last_kept_hypothesis() {
        const EOT: u32 = 99;
        let live = vec![(vec![1], -1.0), (vec![2], -1.5)];
        let ranked = [
            (0, EOT, -1.05),
            (0, 5, -1.1),
            (1, 6, -1.6),
            (1, EOT, -1.7),
            (0, 8, -1.8),
        ];
        let mut finished = Vec::new();
        let (next, sources) = prune(&live, &ranked, EOT, 2, &mut finished);
        assert_eq!(next, vec![(vec![1, 5], -1.1), (vec![2, 6], -1.6)]);
        assert_eq!(sources, vec![0, 1]);
        // The end after [2] ranks below both kept hypotheses: not a finished hypothesis.
        assert_eq!(finished, vec![(vec![1], -1.05)]);

        // A full list of finished hypotheses takes no more.
        let mut full = vec![(vec![3], -0.5), (vec![4], -0.6)];
        let (next, _) = prune(&live, &ranked, EOT, 2, &mut full);
        assert_eq!(full.len(), 2);
        assert_eq!(next.len(), 2);
    }

    #[test]
    fn log_sum_exp_of_equal_values() {
        let v = log_normaliser(&[0.0, 0.0]).unwrap();
        assert!((v - 2f32.ln()).abs() < 1e-6);
        assert_eq!(log_normaliser(&[f32::NEG_INFINITY; 3]), None);
    }
}
