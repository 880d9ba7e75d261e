//! Writing transcripts as people and tools read them: plain text, SubRip, WebVTT and JSON.

use crate::error::{Error, Result};
use crate::whisper::Transcript;

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One line per segment.
    Text,
    /// SubRip subtitles (`.srt`).
    Srt,
    /// WebVTT subtitles (`.vtt`), as browsers' `<track>` reads them.
    Vtt,
    /// The whole transcript with segment timing and confidence.
    Json,
}

impl std::str::FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "text" | "txt" => Format::Text,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            "json" => Format::Json,
            other => {
                return Err(Error::Invalid(format!(
                    "unknown format {other:?}: use text, srt, vtt or json"
                )));
            }
        })
    }
}

fn clock(seconds: f64, decimal: char) -> String {
    let ms = (seconds.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{decimal}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// Renders a transcript.
pub fn render(t: &Transcript, format: Format) -> String {
    match format {
        Format::Json => {
            let mut out = serde_json::to_string_pretty(t).unwrap_or_default();
            out.push('\n');
            out
        }
        _ => render_from(t, 0, format),
    }
}

/// Renders the segments from `first` on, continuing what rendering the ones before wrote
/// (SRT numbers go on; the WebVTT header comes only with the first): how `transcript
/// --follow` writes a transcript while it is being made. JSON is one segment per line (JSON
/// Lines), since a reader of a growing stream cannot wait for a closing bracket.
pub fn render_from(t: &Transcript, first: usize, format: Format) -> String {
    let mut out = String::new();
    let segments = t.segments.iter().enumerate().skip(first);
    match format {
        Format::Text => {
            for (_, s) in segments {
                out.push_str(s.text.trim());
                out.push('\n');
            }
        }
        Format::Srt => {
            for (i, s) in segments {
                out.push_str(&format!(
                    "{}\n{} --> {}\n{}\n\n",
                    i + 1,
                    clock(s.start, ','),
                    clock(s.end, ','),
                    s.text.trim()
                ));
            }
        }
        Format::Vtt => {
            if first == 0 {
                out.push_str("WEBVTT\n\n");
            }
            for (_, s) in segments {
                out.push_str(&format!(
                    "{} --> {}\n{}\n\n",
                    clock(s.start, '.'),
                    clock(s.end, '.'),
                    s.text.trim().replace("-->", "->")
                ));
            }
        }
        Format::Json => {
            for (_, s) in segments {
                out.push_str(&serde_json::to_string(s).unwrap_or_default());
                out.push('\n');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whisper::{Segment, Task};

    fn sample() -> Transcript {
        Transcript {
            language: "es".into(),
            language_probability: 0.9,
            task: Task::Translate,
            duration: 3725.5,
            segments: vec![Segment {
                start: 3723.25,
                end: 3725.5,
                text: " Three trucks --> crossed.".into(),
                avg_logprob: -0.2,
                confidence: 0.82,
                no_speech_prob: 0.01,
                temperature: 0.0,
                words: vec![crate::whisper::Word {
                    start: 3723.25,
                    end: 3723.7,
                    word: " Three".into(),
                    probability: 0.9,
                }],
            }],
            timing: Default::default(),
        }
    }

    #[test]
    fn subtitle_clocks() {
        let t = sample();
        assert_eq!(
            render(&t, Format::Srt),
            "1\n01:02:03,250 --> 01:02:05,500\nThree trucks --> crossed.\n\n"
        );
        let vtt = render(&t, Format::Vtt);
        assert!(
            vtt.starts_with("WEBVTT\n\n01:02:03.250 --> 01:02:05.500\nThree trucks -> crossed.")
        );
    }

    #[test]
    fn json_round_trips() {
        let t = sample();
        let back: Transcript = serde_json::from_str(&render(&t, Format::Json)).expect("json");
        assert_eq!(back, t);
    }
}
