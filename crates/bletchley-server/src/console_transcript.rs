//! A recording's transcript beside its English translation, segment by segment, on the
//! recording's page: each word lit while the audio plays and a click away from its moment,
//! the page refreshing the section while the job is still making it, a search hit opening
//! the recording at the words it matched, and subtitles to download.
//!
//! Everything is read through [`bletchley_ai::follow::transcription_view`], so the recording
//! is read through the gate first and each stored text on its own marking. The script
//! (`static/transcript.js`) only plays, lights and refreshes what the server rendered.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use bletchley_ai::follow::{Shown, TranscriptionView, transcription_view};
use bletchley_ai::format::{Format, render};
use bletchley_ai::{Segment, Transcript};
use serde::Deserialize;

use crate::Shared;
use crate::console::{api_error_page, who};
use crate::error::ApiError;
use crate::html::{esc, url};

/// How often the page asks again while the job runs (milliseconds).
const REFRESH_MS: u32 = 3000;

/// One line of the side-by-side view: a segment of the spoken text and the English said
/// over the same stretch of time.
#[derive(Debug)]
pub(crate) struct Row<'a> {
    /// Start, seconds.
    pub start: f64,
    /// The segment of the transcript (absent where only the translation has one).
    pub spoken: Option<&'a Segment>,
    /// The translation's segments whose middle falls in this row's time.
    pub english: Vec<&'a Segment>,
}

/// Pairs the two texts by time. Whisper cuts a translation into segments of its own, so
/// each English segment goes to the transcript segment that holds its middle, or the nearest
/// one; with no transcript, each English segment is a row of its own.
pub(crate) fn rows<'a>(
    spoken: Option<&'a Transcript>,
    english: Option<&'a Transcript>,
) -> Vec<Row<'a>> {
    let spoken: &[Segment] = spoken.map_or(&[], |t| &t.segments);
    let english: &[Segment] = english.map_or(&[], |t| &t.segments);
    if spoken.is_empty() {
        return english
            .iter()
            .map(|e| Row {
                start: e.start,
                spoken: None,
                english: vec![e],
            })
            .collect();
    }
    let mut rows: Vec<Row> = spoken
        .iter()
        .map(|s| Row {
            start: s.start,
            spoken: Some(s),
            english: Vec::new(),
        })
        .collect();
    for e in english {
        let mid = (e.start + e.end) / 2.0;
        let distance = |s: &Segment| {
            if mid < s.start {
                s.start - mid
            } else if mid > s.end {
                mid - s.end
            } else {
                0.0
            }
        };
        // The first segment at the least distance: segments are in time order.
        let mut best = 0;
        for (i, s) in spoken.iter().enumerate() {
            if distance(s) < distance(&spoken[best]) {
                best = i;
            }
        }
        rows[best].english.push(e);
    }
    rows
}

/// `m:ss` (or `h:mm:ss`) for a time in seconds.
fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0) as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// A segment's text with each timed word in a span the script lights and seeks by.
fn words_html(s: &Segment) -> String {
    if s.words.is_empty() {
        return esc(s.text.trim());
    }
    let mut out = String::new();
    for w in &s.words {
        let text = w.word.trim_start();
        if w.word.len() > text.len() && !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!(
            "<span class=\"w\" data-s=\"{:.2}\" data-e=\"{:.2}\">{}</span>",
            w.start,
            w.end,
            esc(text)
        ));
    }
    out
}

/// The query's words that a row must hold to be the one a search hit opens: letters and
/// digits of three or more, without the query language's operators and field names.
pub(crate) fn find_terms(query: &str) -> Vec<String> {
    query
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| t.chars().count() >= 3 && !matches!(*t, "AND" | "OR" | "NOT"))
        .map(str::to_lowercase)
        .collect()
}

fn holds(s: &Segment, terms: &[String]) -> bool {
    let text = s.text.to_lowercase();
    terms.iter().any(|t| text.contains(t.as_str()))
}

/// The section's HTML: the table of rows, what is still to come, the downloads. `find`
/// marks the first row that holds a term and asks the player to start there.
pub(crate) fn render_section(
    view: &TranscriptionView,
    item: &str,
    justification: Option<&str>,
    find: &[String],
) -> String {
    let running = view.running();
    let just = justification
        .filter(|j| !j.trim().is_empty())
        .map(|j| format!("justification={}&", url(j)))
        .unwrap_or_default();
    let spoken = view.transcript.as_ref().map(|s| &s.transcript);
    let english = view.translation.as_ref().map(|s| &s.transcript);
    // An English recording's translation is its transcript: one column is enough.
    let same = spoken.is_some_and(|t| t.language == "en");
    let rows = rows(spoken, if same { None } else { english });
    let hit = (!find.is_empty())
        .then(|| {
            rows.iter().position(|r| {
                r.spoken.is_some_and(|s| holds(s, find)) || r.english.iter().any(|e| holds(e, find))
            })
        })
        .flatten();
    let mut out = format!(
        "<section id=\"transcript\" data-running=\"{}\" data-refresh=\"/items/{}/transcript?{}\" data-every=\"{REFRESH_MS}\"{}>",
        u8::from(running),
        url(item),
        esc(&just),
        hit.map(|h| format!(" data-seek=\"{:.2}\"", rows[h].start))
            .unwrap_or_default()
    );
    out.push_str("<h2>Transcript</h2>");
    if let Some(job) = &view.job {
        if running {
            out.push_str(&format!(
                "<p class=\"meta\" id=\"transcript-state\">Transcribing: {}% done; segments appear here as they are made.</p>",
                (job.progress * 100.0).round()
            ));
        } else if job.state == bletchley_store::JobState::Failed {
            out.push_str(&format!(
                "<p class=\"error\" id=\"transcript-state\">Transcription failed: {}</p>",
                esc(job.error.as_deref().unwrap_or("no reason recorded"))
            ));
        }
    } else if view.transcript.is_none() && view.translation.is_none() {
        out.push_str("<p class=\"meta\" id=\"transcript-state\">Not transcribed.</p>");
    }
    let language = spoken.map(|t| t.language.as_str()).unwrap_or_default();
    if !rows.is_empty() {
        out.push_str(&format!(
            "<table class=\"transcript\" id=\"transcript-rows\"><thead><tr><th>Time</th><th>Spoken{}</th>{}</tr></thead><tbody>",
            if language.is_empty() {
                String::new()
            } else {
                format!(" ({})", esc(language))
            },
            if same { "" } else { "<th>English</th>" }
        ));
        for (n, r) in rows.iter().enumerate() {
            out.push_str(&format!(
                "<tr id=\"seg-{n}\" data-s=\"{:.2}\"{}><td><button type=\"button\" class=\"seek\" data-t=\"{:.2}\">{}</button></td><td class=\"spoken\">{}</td>",
                r.start,
                if Some(n) == hit { " class=\"hit\"" } else { "" },
                r.start,
                clock(r.start),
                r.spoken.map(words_html).unwrap_or_default(),
            ));
            if !same {
                let english: Vec<String> = r.english.iter().map(|e| esc(e.text.trim())).collect();
                out.push_str(&format!("<td class=\"english\">{}</td>", english.join(" ")));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    let downloads: Vec<String> = [("transcript", &view.transcript), ("translation", &view.translation)]
        .into_iter()
        .filter_map(|(of, shown): (&str, &Option<Shown>)| {
            shown.as_ref().filter(|s| s.item.is_some()).map(|_| {
                ["srt", "vtt"]
                    .iter()
                    .map(|f| {
                        format!(
                            "<a id=\"dl-{of}-{f}\" href=\"/items/{}/subtitles?{}of={of}&amp;format={f}\" download>{of} .{f}</a>",
                            url(item),
                            esc(&just)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(" · ")
            })
        })
        .collect();
    if !downloads.is_empty() {
        out.push_str(&format!(
            "<p class=\"meta\" id=\"downloads\">Subtitles: {}</p>",
            downloads.join(" · ")
        ));
    }
    out.push_str("</section>");
    out
}

/// The section for a recording's page, read as `who`.
pub(crate) async fn section(
    s: &Arc<Shared>,
    who: String,
    item: String,
    justification: Option<String>,
    find: Vec<String>,
) -> Result<String, ApiError> {
    s.worker
        .run(move |st| {
            let view = transcription_view(&mut st.platform, &who, &item, justification.as_deref())?;
            Ok(render_section(
                &view,
                &item,
                justification.as_deref(),
                &find,
            ))
        })
        .await
}

/// The query of the section and the subtitles.
#[derive(Deserialize, Default)]
pub(crate) struct SectionQuery {
    #[serde(default)]
    justification: Option<String>,
    /// `transcript` or `translation` (subtitles).
    #[serde(default)]
    of: Option<String>,
    /// `srt` or `vtt` (subtitles).
    #[serde(default)]
    format: Option<String>,
}

/// `GET /items/{id}/transcript`: the section alone, for the page's refresh while the job runs.
pub(crate) async fn fragment(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<SectionQuery>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    match section(&s, w.name.clone(), id, q.justification, Vec::new()).await {
        Ok(html) => Html(html).into_response(),
        Err(e) => api_error_page(e, Some(&w.viewer())),
    }
}

/// `GET /items/{id}/subtitles?of=transcript|translation&format=srt|vtt`: a stored text as
/// subtitles, named after the recording.
pub(crate) async fn subtitles(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<SectionQuery>,
) -> Response {
    let w = match who(&s, &headers) {
        Ok(w) => w,
        Err(r) => return *r,
    };
    let of = q.of.unwrap_or_else(|| "transcript".into());
    let format = q.format.unwrap_or_else(|| "srt".into());
    let (fmt, mime) = match format.as_str() {
        "srt" => (Format::Srt, "application/x-subrip; charset=utf-8"),
        "vtt" => (Format::Vtt, "text/vtt; charset=utf-8"),
        _ => {
            let e = ApiError::bad_request("format is srt or vtt");
            return api_error_page(e, Some(&w.viewer()));
        }
    };
    if of != "transcript" && of != "translation" {
        let e = ApiError::bad_request("of is transcript or translation");
        return api_error_page(e, Some(&w.viewer()));
    }
    let (who_name, item, just, which) = (w.name.clone(), id.clone(), q.justification, of.clone());
    let read = s
        .worker
        .run(move |st| {
            let view = transcription_view(&mut st.platform, &who_name, &item, just.as_deref())?;
            let title = view
                .recording
                .as_ref()
                .map(|m| m.title.clone())
                .unwrap_or_default();
            let shown = if which == "translation" {
                view.translation
            } else {
                view.transcript
            };
            Ok((title, shown.filter(|s| s.item.is_some())))
        })
        .await;
    let (title, shown) = match read {
        Ok(x) => x,
        Err(e) => return api_error_page(e, Some(&w.viewer())),
    };
    let Some(shown) = shown else {
        return api_error_page(ApiError::not_found(), Some(&w.viewer()));
    };
    let stem = crate::api::safe_filename(title.rsplit_once('.').map_or(title.as_str(), |(s, _)| s));
    let disposition = format!("attachment; filename=\"{stem}.{of}.{format}\"");
    let mut r = render(&shown.transcript, fmt).into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        r.headers_mut().insert(CONTENT_DISPOSITION, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use bletchley_ai::Task;

    fn seg(start: f64, end: f64, text: &str) -> Segment {
        Segment {
            start,
            end,
            text: text.into(),
            avg_logprob: 0.0,
            confidence: 1.0,
            no_speech_prob: 0.0,
            temperature: 0.0,
            words: Vec::new(),
        }
    }

    fn transcript(language: &str, segments: Vec<Segment>) -> Transcript {
        Transcript {
            language: language.into(),
            language_probability: 1.0,
            task: Task::Transcribe,
            duration: 30.0,
            segments,
            timing: Default::default(),
        }
    }

    #[test]
    fn each_english_segment_goes_to_the_spoken_one_that_holds_its_middle_or_the_nearest() {
        let es = transcript(
            "es",
            vec![
                seg(0.0, 4.0, "Hola."),
                seg(5.0, 9.0, "El envío."),
                seg(10.0, 13.0, "Tres."),
            ],
        );
        let en = transcript(
            "en",
            vec![
                seg(0.0, 3.0, "Hello."),    // middle 1.5: row 0
                seg(3.0, 7.0, "The"),       // middle 5.0: row 1
                seg(7.0, 9.0, "shipment."), // middle 8.0: row 1
                seg(9.2, 9.6, "Well."),     // middle 9.4, in no row: row 1 is 0.4 away, row 2 0.6
                seg(20.0, 22.0, "Three."),  // after the end: the last row
            ],
        );
        let rows = rows(Some(&es), Some(&en));
        let texts: Vec<Vec<&str>> = rows
            .iter()
            .map(|r| r.english.iter().map(|e| e.text.as_str()).collect())
            .collect();
        assert_eq!(
            texts,
            vec![
                vec!["Hello."],
                vec!["The", "shipment.", "Well."],
                vec!["Three."]
            ]
        );
        // Only a translation: one row per segment.
        assert_eq!(rows_of_translation_only(&en), 5);
    }

    fn rows_of_translation_only(en: &Transcript) -> usize {
        rows(None, Some(en)).len()
    }

    #[test]
    fn search_terms_leave_out_operators_fields_and_short_words() {
        assert_eq!(
            find_terms("Valencia AND puerto OR \"de la\" entity:+34600"),
            vec!["valencia", "puerto", "entity", "34600"]
        );
    }
}
