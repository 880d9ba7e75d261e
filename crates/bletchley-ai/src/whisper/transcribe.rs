//! The window loop: from a stream of samples to timed segments.
//!
//! As in openai-whisper and faster-whisper, a 30-second window is decoded, its text is cut into
//! segments at the timestamp pairs the model emits, and the next window starts at the last
//! complete timestamp, so a sentence cut by the window edge is decoded whole in the next one.
//! Stretches without sound are skipped before the encoder runs; windows the model itself calls
//! silent (no-speech probability high, confidence low) produce nothing; windows that loop or lose
//! confidence are retried at rising temperature.

use candle_core::Tensor;
use serde::Serialize;

use super::SpeechModel;
use super::align::{self, Word};
use super::decode::{self, Rules, Sampler, WindowResult};
use super::mel::{HOP, MelFrontEnd, N_FFT, SAMPLE_RATE, WINDOW_FRAMES, WINDOW_SAMPLES};
use crate::audio::AudioStream;
use crate::error::{Error, Result};
use crate::vad;

/// What to produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    /// Text in the spoken language.
    Transcribe,
    /// English text, whatever the spoken language.
    Translate,
}

impl std::str::FromStr for Task {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "transcribe" => Ok(Task::Transcribe),
            "translate" => Ok(Task::Translate),
            other => Err(Error::Invalid(format!(
                "unknown task {other:?}: use transcribe or translate"
            ))),
        }
    }
}

/// How to decode. The defaults are faster-whisper's.
#[derive(Clone, Debug)]
pub struct TranscribeOptions {
    /// Transcribe or translate.
    pub task: Task,
    /// The spoken language's code; detected on the first window with sound when absent.
    pub language: Option<String>,
    /// 1 for greedy decoding, more for beam search.
    pub beam_size: usize,
    /// Temperatures tried in turn when a window fails the checks below.
    pub temperatures: Vec<f32>,
    /// Give the previous window's text as context.
    pub condition_on_previous_text: bool,
    /// Above this zlib ratio the text is taken to be looping.
    pub compression_ratio_threshold: f32,
    /// Below this mean log-probability the text is taken to be unreliable.
    pub log_prob_threshold: f32,
    /// Above this no-speech probability (with low confidence) the window is silent.
    pub no_speech_threshold: f32,
    /// Skip stretches the energy detector finds silent.
    pub skip_silence: bool,
    /// Time every word (one more decoder pass per window over its text).
    pub word_timestamps: bool,
}

impl Default for TranscribeOptions {
    fn default() -> Self {
        TranscribeOptions {
            task: Task::Transcribe,
            language: None,
            beam_size: 5,
            temperatures: vec![0.0, 0.2, 0.4, 0.6, 0.8, 1.0],
            condition_on_previous_text: true,
            compression_ratio_threshold: 2.4,
            log_prob_threshold: -1.0,
            no_speech_threshold: 0.6,
            skip_silence: true,
            word_timestamps: false,
        }
    }
}

/// One timed stretch of text.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Segment {
    /// Start, seconds from the beginning of the recording.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The text.
    pub text: String,
    /// Mean token log-probability of the window it came from.
    pub avg_logprob: f32,
    /// exp(avg_logprob): a 0..1 confidence for people.
    pub confidence: f32,
    /// Probability that its window held no speech.
    pub no_speech_prob: f32,
    /// The temperature that produced it (0 unless the checks failed).
    pub temperature: f32,
    /// Its words with their times, when word timestamps were asked for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<Word>,
}

/// A whole recording's transcript or translation.
#[derive(Clone, Debug, Serialize, serde::Deserialize, PartialEq)]
pub struct Transcript {
    /// The spoken language (code), detected or given.
    pub language: String,
    /// How sure the detection was (1 when given).
    pub language_probability: f32,
    /// Transcribed or translated.
    pub task: Task,
    /// Length of the recording, seconds.
    pub duration: f64,
    /// The segments in time order.
    pub segments: Vec<Segment>,
    /// Where the time went (not part of the transcript's content).
    #[serde(skip)]
    pub timing: Timing,
}

/// Time spent per stage, for benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Timing {
    /// Windows decoded.
    pub windows: usize,
    /// Seconds in the encoder.
    pub encoder_s: f64,
    /// Seconds in the decoder (every attempt).
    pub decoder_s: f64,
    /// Tokens kept.
    pub tokens: usize,
}

impl Transcript {
    /// All segment texts joined.
    pub fn text(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Mean confidence over segments weighted by duration (0 when there is no text).
    pub fn confidence(&self) -> f32 {
        let total: f64 = self
            .segments
            .iter()
            .map(|s| (s.end - s.start).max(0.01))
            .sum();
        if total == 0.0 {
            return 0.0;
        }
        (self
            .segments
            .iter()
            .map(|s| s.confidence as f64 * (s.end - s.start).max(0.01))
            .sum::<f64>()
            / total) as f32
    }
}

/// How far the work has come, for progress bars, and what it has made so far, for readers
/// who follow a long recording while it is transcribed.
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// Seconds of audio done.
    pub done: f64,
    /// Seconds known so far (all of them once the end has been read).
    pub known: f64,
    /// Whether `known` is the whole recording.
    pub complete: bool,
    /// The segments kept so far, in time order (times not yet clipped to the recording's end).
    pub segments: &'a [Segment],
    /// The language, once detected or given (empty before).
    pub language: &'a str,
}

/// Languages written without spaces between words: word timestamps split them by character.
const SPACELESS: [&str; 6] = ["zh", "ja", "th", "lo", "my", "yue"];

/// Silence inside a window longer than this ends the window (samples: 2 s, as faster-whisper's
/// voice-activity filter splits speech).
const MAX_PAUSE: usize = SAMPLE_RATE * 2;

fn seconds(samples: usize) -> f64 {
    samples as f64 / SAMPLE_RATE as f64
}

impl SpeechModel {
    /// Transcribes (or translates) a stream, calling `progress` after each window.
    pub fn transcribe(
        &self,
        audio: &mut AudioStream,
        opts: &TranscribeOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Transcript> {
        let model = &self.whisper;
        let vocab = &self.vocab;
        let fe = MelFrontEnd::new(model.config.n_mels);
        let rules = Rules::new(model, vocab);
        let multilingual = model.config.multilingual();
        let mut language: Option<(String, f32)> = match &opts.language {
            Some(code) => {
                if multilingual && vocab.language(code).is_none() {
                    return Err(Error::Invalid(format!(
                        "the model does not know the language {code:?}"
                    )));
                }
                Some((code.clone(), 1.0))
            }
            None if !multilingual => Some(("en".into(), 1.0)),
            None => None,
        };
        if opts.task == Task::Translate && !multilingual {
            return Err(Error::Invalid(
                "an English-only model cannot translate: use a multilingual model".into(),
            ));
        }
        let task_token = match opts.task {
            Task::Transcribe => vocab.transcribe,
            Task::Translate => vocab.translate,
        };
        let half = N_FFT / 2;
        let mut seek = 0usize;
        let mut previous: Vec<u32> = Vec::new();
        let mut segments: Vec<Segment> = Vec::new();
        let mut timing = Timing::default();
        let mut last_speech = 0.0f64;
        loop {
            let ctx_start = seek.saturating_sub(half);
            let before = seek - ctx_start;
            let samples = audio.samples(ctx_start, before + WINDOW_SAMPLES + half)?;
            audio.forget_before(ctx_start);
            let mut content = samples.len().saturating_sub(before).min(WINDOW_SAMPLES);
            let report = |seek: usize,
                          progress: &mut dyn FnMut(Progress),
                          audio: &AudioStream,
                          segments: &[Segment],
                          language: &Option<(String, f32)>| {
                progress(Progress {
                    done: seconds(seek.min(audio.known_len())),
                    known: seconds(audio.known_len()),
                    complete: audio.finished(),
                    segments,
                    language: language.as_ref().map_or("", |(code, _)| code.as_str()),
                })
            };
            if content == 0 {
                break;
            }
            let mut last_window = audio.finished() && audio.known_len() <= seek + WINDOW_SAMPLES;
            if opts.skip_silence {
                match vad::first_active(&samples[before..before + content]) {
                    None => {
                        seek += content.div_ceil(HOP) * HOP;
                        report(seek, progress, audio, &segments, &language);
                        if last_window {
                            break;
                        }
                        continue;
                    }
                    Some(first) if first > SAMPLE_RATE => {
                        // Start the window shortly before the sound.
                        seek += (first - SAMPLE_RATE * 3 / 10) / HOP * HOP;
                        continue;
                    }
                    Some(_) => {}
                }
                // A long silence inside the window ends it there: the model's timestamps drift
                // across long pauses, and the next window, started at a drifted timestamp, would
                // decode the same sentence again. The window is padded past the cut as at the
                // end of a recording, and the next one starts after the silence.
                if let Some(cut) = vad::long_silence(&samples[before..before + content], MAX_PAUSE)
                {
                    content = cut;
                    last_window = true;
                }
            }
            let content_frames = if last_window {
                ((content + HOP) / HOP).min(WINDOW_FRAMES)
            } else {
                WINDOW_FRAMES
            };
            let segment_frames = content_frames.min(content.div_ceil(HOP));
            let mel = fe.window(&samples, before, content_frames);
            let mel =
                Tensor::from_vec(mel, (1, model.config.n_mels, WINDOW_FRAMES), &model.device)?;
            let t0 = std::time::Instant::now();
            let states = model.encoder.forward(&mel)?;
            let t_enc = t0.elapsed();
            if language.is_none() {
                let ranked = decode::detect_language(model, vocab, &states)?;
                language = ranked.into_iter().next();
            }
            let lang_token = match &language {
                Some((code, _)) if multilingual => vocab.language(code),
                _ => None,
            };
            let prompt_prev = if opts.condition_on_previous_text {
                previous.as_slice()
            } else {
                &[]
            };
            let prompt = decode::prompt(vocab, prompt_prev, lang_token, task_token);
            let (result, temperature, silent) =
                self.decode_with_fallback(&rules, &states, &prompt, opts, seek as u64)?;
            timing.windows += 1;
            timing.encoder_s += t_enc.as_secs_f64();
            timing.decoder_s += (t0.elapsed() - t_enc).as_secs_f64();
            timing.tokens += result.tokens.len();
            let time_offset = seconds(seek);
            let window_end = seek + segment_frames * HOP;
            if silent {
                seek = window_end;
                report(seek, progress, audio, &segments, &language);
                if audio.finished() && seek >= audio.known_len() {
                    break;
                }
                continue;
            }
            let first_new = segments.len();
            let mut segment_tokens = Vec::new();
            let advance = self.split_segments(
                &result,
                temperature,
                time_offset,
                segment_frames,
                &mut segments,
                &mut segment_tokens,
            );
            if opts.word_timestamps && segments.len() > first_new {
                let t1 = std::time::Instant::now();
                let new = &mut segments[first_new..];
                let mut bounds: Vec<(f64, f64, Vec<u32>)> = new
                    .iter()
                    .zip(segment_tokens)
                    .map(|(s, t)| (s.start, s.end, t))
                    .collect();
                let active = vad::active_frames(&samples[before..before + content]);
                let window = align::Window {
                    states: &states,
                    language: lang_token,
                    task: task_token,
                    frames: segment_frames,
                    offset: time_offset,
                    spaceless: language
                        .as_ref()
                        .is_some_and(|(code, _)| SPACELESS.contains(&code.as_str())),
                    active: &active,
                };
                let words = align::words(model, vocab, &window, &mut bounds, &mut last_speech)?;
                for ((s, (start, end, _)), w) in new.iter_mut().zip(bounds).zip(words) {
                    s.start = start;
                    s.end = end;
                    s.words = w;
                }
                timing.decoder_s += t1.elapsed().as_secs_f64();
            }
            seek += advance.max(1).min(segment_frames) * HOP;
            if temperature > 0.5 {
                previous.clear();
            } else {
                previous.extend(result.tokens.iter().copied());
            }
            report(seek, progress, audio, &segments, &language);
            if audio.finished() && seek >= audio.known_len() {
                break;
            }
        }
        let duration = seconds(audio.known_len());
        for s in &mut segments {
            s.end = s.end.min(duration);
            s.start = s.start.min(s.end);
            for w in &mut s.words {
                w.end = w.end.min(duration);
                w.start = w.start.min(w.end);
            }
        }
        let (language, language_probability) = language.unwrap_or_else(|| ("".into(), 0.0));
        Ok(Transcript {
            language,
            language_probability,
            task: opts.task,
            duration,
            segments,
            timing,
        })
    }

    /// Decodes a window at rising temperatures until its text passes the checks. Returns the
    /// result, its temperature, and whether the window is silent.
    fn decode_with_fallback(
        &self,
        rules: &Rules,
        states: &Tensor,
        prompt: &[u32],
        opts: &TranscribeOptions,
        seed: u64,
    ) -> Result<(WindowResult, f32, bool)> {
        let mut sampler = Sampler::new(seed);
        let temps = if opts.temperatures.is_empty() {
            vec![0.0]
        } else {
            opts.temperatures.clone()
        };
        let mut best: Option<(WindowResult, f32)> = None;
        for &t in &temps {
            let r = if t == 0.0 && opts.beam_size > 1 {
                decode::beam_search(
                    &self.whisper,
                    &self.vocab,
                    rules,
                    states,
                    prompt,
                    opts.beam_size,
                )?
            } else {
                decode::greedy(
                    &self.whisper,
                    &self.vocab,
                    rules,
                    states,
                    prompt,
                    t,
                    &mut sampler,
                )?
            };
            let looping = r.compression_ratio > opts.compression_ratio_threshold;
            let unsure = r.avg_logprob < opts.log_prob_threshold;
            if r.no_speech_prob > opts.no_speech_threshold && unsure {
                return Ok((r, t, true));
            }
            let passes = !looping && !unsure;
            let better = best
                .as_ref()
                .is_none_or(|(b, _)| r.avg_logprob > b.avg_logprob);
            if passes {
                return Ok((r, t, false));
            }
            if (better && !looping) || best.is_none() {
                best = Some((r, t));
            }
        }
        let (r, t) = best.ok_or_else(|| Error::Invalid("no temperature to decode with".into()))?;
        // Every attempt looped: keep nothing rather than a loop.
        let silent = r.compression_ratio > opts.compression_ratio_threshold;
        Ok((r, t, silent))
    }

    /// Cuts a window's tokens into segments at timestamp pairs; returns how many frames of the
    /// window are done (the next window starts there).
    fn split_segments(
        &self,
        r: &WindowResult,
        temperature: f32,
        time_offset: f64,
        segment_frames: usize,
        out: &mut Vec<Segment>,
        out_tokens: &mut Vec<Vec<u32>>,
    ) -> usize {
        let vocab = &self.vocab;
        let tokens = &r.tokens;
        let ts = |t: u32| vocab.is_timestamp(t);
        let pos = |t: u32| (t - vocab.timestamp_begin) as f64 * 0.02;
        let mut push = |start: f64, end: f64, toks: &[u32]| {
            let text = vocab.text(toks);
            if text.trim().is_empty() {
                return;
            }
            out.push(Segment {
                start: time_offset + start,
                end: time_offset + end,
                text: text.trim().to_owned(),
                avg_logprob: r.avg_logprob,
                confidence: r.avg_logprob.exp(),
                no_speech_prob: r.no_speech_prob,
                temperature,
                words: Vec::new(),
            });
            out_tokens.push(toks.iter().copied().filter(|&t| t < vocab.eot).collect());
        };
        let n = tokens.len();
        let single_ending = n >= 2 && !ts(tokens[n - 2]) && ts(tokens[n - 1]);
        let consecutive: Vec<usize> = (1..n)
            .filter(|&i| ts(tokens[i - 1]) && ts(tokens[i]))
            .collect();
        if !consecutive.is_empty() {
            let mut slices = consecutive;
            if single_ending {
                slices.push(n);
            }
            let mut last = 0;
            for &cut in &slices {
                let part = &tokens[last..cut];
                if let (Some(&a), Some(&b)) = (part.first(), part.last())
                    && ts(a)
                    && ts(b)
                {
                    push(pos(a), pos(b), part);
                }
                last = cut;
            }
            if single_ending {
                segment_frames
            } else {
                let last_ts = tokens[last - 1];
                ((last_ts - vocab.timestamp_begin) as usize) * 2
            }
        } else {
            let mut duration = segment_frames as f64 / 100.0;
            if let Some(&t) = tokens.iter().rev().find(|&&t| ts(t))
                && t != vocab.timestamp_begin
            {
                duration = pos(t);
            }
            push(0.0, duration, tokens);
            segment_frames
        }
    }
}
