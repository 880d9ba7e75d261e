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
    let mut out = String::new();
    match format {
        Format::Text => {
            for s in &t.segments {
                out.push_str(s.text.trim());
                out.push('\n');
            }
        }
        Format::Srt => {
            for (i, s) in t.segments.iter().enumerate() {
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
            out.push_str("WEBVTT\n\n");
            for s in &t.segments {
                out.push_str(&format!(
                    "{} --> {}\n{}\n\n",
                    clock(s.start, '.'),
                    clock(s.end, '.'),
                    s.text.trim().replace("-->", "->")
                ));
            }
        }
        Format::Json => {
            out = serde_json::to_string_pretty(t).unwrap_or_default();
            out.push('\n');
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
