//! Text from the formats items arrive in, bounded and never silent: what
//! cannot be parsed is flagged, and the item is still stored.

use mail_parser::{MessageParser, MimeHeaders};

/// At most this much text is indexed per item.
pub const MAX_TEXT: usize = 10 * 1024 * 1024;
const MAX_DEPTH: usize = 3;
const MAX_ATTACHMENTS: usize = 100;

/// What came out of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Extracted {
    /// The text to index.
    pub text: String,
    /// The format recognised: `text`, `html`, `email`, `pdf`, `docx`, `zip`,
    /// `csv`, `jsonl`, `binary`.
    pub kind: &'static str,
    /// Why the text is incomplete or missing, if it is.
    pub flag: Option<String>,
}

fn ext(title: &str) -> String {
    title
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

fn looks_like_email(content: &[u8]) -> bool {
    let head = &content[..content.len().min(512)];
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    head.starts_with("from:")
        || head.starts_with("received:")
        || head.starts_with("mime-version:")
        || head.starts_with("return-path:")
}

mod archive;
mod pdf;

pub use archive::MAX_INFLATED;

/// Generations of derived parts: an attachment of an attachment of an
/// attachment is still stored as an item, but its own parts are not.
pub const MAX_GENERATIONS: u32 = MAX_DEPTH as u32;

/// Extracts the whole text of `title`, containers with the text of their
/// parts inline (for one-off use; stored items use [`extract_item`]).
pub fn extract(title: &str, content: &[u8]) -> Extracted {
    extract_at(title, content, 0, Parts::Inline)
}

/// Extracts the text of a stored item whose `generation` says how deep it
/// sits among derived parts (0 for what was ingested). A container's parts
/// are items of their own (see [`parts`]), so its text is its own: headers,
/// body and the names of its parts, not their contents twice over.
pub fn extract_item(title: &str, content: &[u8], generation: u32) -> Extracted {
    let mut out = extract_at(title, content, 0, Parts::Names);
    if generation >= MAX_GENERATIONS && is_container(title, content) {
        out.flag = Some(format!(
            "containers nested more than {MAX_GENERATIONS} deep: parts not extracted"
        ));
    }
    out
}

/// Whether parts of an item are stored as items of their own or inlined.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Parts {
    Inline,
    Names,
}

fn is_container(title: &str, content: &[u8]) -> bool {
    matches!(ext(title).as_str(), "eml" | "zip") || looks_like_email(content)
}

/// A part of a container, to be stored as an item derived from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// File name (the attachment's or entry's name).
    pub title: String,
    /// Its bytes.
    pub content: Vec<u8>,
    /// `attachment` (of an e-mail) or `member` (of an archive).
    pub derivation: &'static str,
}

/// The parts of a container item: e-mail attachments (an attached message
/// as an `.eml` of its own) and archive entries, within the same limits as
/// text extraction (count, inflated bytes, compression ratio). Anything
/// else has none. Parts beyond the limits are left out; the container's
/// own extraction flags why.
pub fn parts(title: &str, content: &[u8]) -> Vec<Part> {
    match ext(title).as_str() {
        "zip" => archive::members(content),
        "docx" | "pdf" => Vec::new(),
        _ if is_container(title, content) => attachments(content),
        _ => Vec::new(),
    }
}

fn attachments(content: &[u8]) -> Vec<Part> {
    let Some(msg) = MessageParser::default().parse(content) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, part) in msg.attachments().enumerate().take(MAX_ATTACHMENTS) {
        let (title, bytes) = if let Some(inner) = part.message() {
            let name = part
                .attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("attached-message-{}.eml", i + 1));
            (name, inner.raw_message().to_vec())
        } else {
            let name = part
                .attachment_name()
                .map(str::to_owned)
                .unwrap_or_else(|| format!("attachment-{}", i + 1));
            (name, part.contents().to_vec())
        };
        out.push(Part {
            title: sanitise_name(&title),
            content: bytes,
            derivation: "attachment",
        });
    }
    out
}

/// A part's name as a title: the last path component, no control
/// characters, at most 200 characters, never empty.
pub(crate) fn sanitise_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or(name);
    let clean: String = last.chars().filter(|c| !c.is_control()).take(200).collect();
    if clean.trim().is_empty() || clean == "." || clean == ".." {
        "part".to_owned()
    } else {
        clean
    }
}

/// Extracts at a nesting depth: containers (e-mail, archives) inside
/// containers stop at [`MAX_DEPTH`].
fn extract_at(title: &str, content: &[u8], depth: usize, mode: Parts) -> Extracted {
    let e = ext(title);
    let container = is_container(title, content);
    if container && depth >= MAX_DEPTH {
        return Extracted {
            text: String::new(),
            kind: "container",
            flag: Some("containers nested too deep: inner ones not indexed".into()),
        };
    }
    let mut out = match e.as_str() {
        "pdf" => pdf::extract(content),
        "docx" => archive::docx(content),
        "zip" => archive::zip(content, depth, mode == Parts::Inline),
        _ if content.starts_with(b"%PDF-") => pdf::extract(content),
        "eml" => email(content, depth, mode),
        "csv" => csv_text(content),
        "jsonl" | "ndjson" => jsonl(content),
        "json" => json_text(content),
        _ if is_audio(title, content) => audio(),
        "html" | "htm" => utf8(content).map_or_else(binary, |t| Extracted {
            text: strip_tags(&t),
            kind: "html",
            flag: None,
        }),
        _ if looks_like_email(content) => email(content, depth, mode),
        _ => utf8(content).map_or_else(binary, |t| Extracted {
            text: t,
            kind: "text",
            flag: None,
        }),
    };
    if out.text.len() > MAX_TEXT {
        let mut cut = MAX_TEXT;
        while !out.text.is_char_boundary(cut) {
            cut -= 1;
        }
        out.text.truncate(cut);
        out.flag = Some(format!(
            "text truncated to {} MiB for indexing",
            MAX_TEXT >> 20
        ));
    }
    out
}

/// Extensions of the recordings the speech pipeline decodes.
const AUDIO_EXTENSIONS: &[&str] = &["wav", "mp3", "flac", "ogg", "oga", "opus", "m4a", "aac"];

/// Whether an item is an event log that detection reads: EVTX by its leading bytes, JSON
/// Lines and syslog by their names. Its alerts come from detection jobs.
pub fn is_event_log(title: &str, content: &[u8]) -> bool {
    content.starts_with(b"ElfFile\0")
        || matches!(ext(title).as_str(), "evtx" | "jsonl" | "ndjson" | "syslog")
        || (ext(title) == "log"
            && content
                .first()
                .is_some_and(|b| *b == b'<' || b.is_ascii_alphanumeric()))
}

/// Whether an item is a recording: by its leading bytes (WAVE, FLAC, Ogg, ID3, MP4 audio) or
/// its extension. Recordings are not text; their text comes from transcription jobs.
pub fn is_audio(title: &str, content: &[u8]) -> bool {
    let head = &content[..content.len().min(12)];
    let magic = (head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WAVE")
        || head.starts_with(b"fLaC")
        || head.starts_with(b"OggS")
        || head.starts_with(b"ID3")
        || (head.len() >= 12 && &head[4..8] == b"ftyp" && &head[8..11] == b"M4A");
    magic || AUDIO_EXTENSIONS.contains(&ext(title).as_str())
}

fn audio() -> Extracted {
    Extracted {
        text: String::new(),
        kind: "audio",
        flag: None,
    }
}

/// Text of a transcript or translation the speech pipeline stored (JSON with timed segments);
/// other JSON documents are indexed by their string values.
fn json_text(content: &[u8]) -> Extracted {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(content) else {
        return utf8(content).map_or_else(binary, |t| Extracted {
            text: t,
            kind: "text",
            flag: Some("not valid JSON: indexed as text".into()),
        });
    };
    if let Some(segments) = value.get("segments").and_then(|s| s.as_array()) {
        let text: Vec<&str> = segments
            .iter()
            .filter_map(|s| s.get("text").and_then(|t| t.as_str()))
            .collect();
        return Extracted {
            text: text.join("\n"),
            kind: "transcript",
            flag: None,
        };
    }
    let mut strings = Vec::new();
    fn walk<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::String(s) => out.push(s),
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            serde_json::Value::Object(o) => o.values().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&value, &mut strings);
    Extracted {
        text: strings.join("\n"),
        kind: "json",
        flag: None,
    }
}

fn binary() -> Extracted {
    Extracted {
        text: String::new(),
        kind: "binary",
        flag: Some("unsupported or binary format: stored, not indexed".into()),
    }
}

fn utf8(content: &[u8]) -> Option<String> {
    std::str::from_utf8(content)
        .ok()
        .filter(|t| !t.contains('\0'))
        .map(str::to_owned)
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

fn email(content: &[u8], depth: usize, mode: Parts) -> Extracted {
    let Some(msg) = MessageParser::default().parse(content) else {
        return Extracted {
            text: String::new(),
            kind: "email",
            flag: Some("malformed e-mail: stored, not indexed".into()),
        };
    };
    let mut text = String::new();
    let mut flag = None;
    let addr = |a: Option<&mail_parser::Address>| -> String {
        a.map(|a| {
            a.iter()
                .filter_map(|x| x.address())
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
    };
    text.push_str(&format!(
        "From: {}\nTo: {}\nSubject: {}\n\n",
        addr(msg.from()),
        addr(msg.to()),
        msg.subject().unwrap_or_default()
    ));
    if let Some(body) = msg.body_text(0) {
        text.push_str(&body);
        text.push('\n');
    }
    for (i, part) in msg.attachments().enumerate() {
        if i >= MAX_ATTACHMENTS {
            flag = Some(format!(
                "more than {MAX_ATTACHMENTS} attachments: the rest not indexed"
            ));
            break;
        }
        let name = part.attachment_name().unwrap_or("attachment");
        text.push_str(&format!("\n[attachment {name}]\n"));
        if mode == Parts::Names {
            continue;
        }
        if let Some(inner) = part.message() {
            if depth + 1 >= MAX_DEPTH {
                flag = Some("attached messages nested too deep: inner ones not indexed".into());
                continue;
            }
            let raw = inner.raw_message();
            let sub = email(raw, depth + 1, mode);
            text.push_str(&sub.text);
            flag = flag.or(sub.flag);
        } else {
            let sub = extract_at(name, part.contents(), depth + 1, mode);
            text.push_str(&sub.text);
            if let Some(f) = sub.flag {
                flag = Some(format!("attachment {name}: {f}"));
            }
        }
        if text.len() > MAX_TEXT {
            break;
        }
    }
    Extracted {
        text,
        kind: "email",
        flag,
    }
}

/// Longest CSV line parsed: the parser buffers a whole record, so a longer
/// one ends parsing (and is flagged) rather than growing memory with input.
const MAX_CSV_LINE: usize = 1 << 20;

fn csv_text(content: &[u8]) -> Extracted {
    let mut long_line = None;
    let mut start = 0;
    for (n, line) in content.split(|b| *b == b'\n').enumerate() {
        if line.len() > MAX_CSV_LINE {
            long_line = Some(n + 1);
            break;
        }
        start += line.len() + 1;
    }
    let content = &content[..start.min(content.len())];
    let mut out = csv_records(content);
    if let Some(n) = long_line {
        out.flag = Some(format!(
            "CSV line {n} is longer than {} MiB: it and the rest not indexed",
            MAX_CSV_LINE >> 20
        ));
    }
    out
}

fn csv_records(content: &[u8]) -> Extracted {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(content);
    let mut text = String::new();
    let mut flag = None;
    for (i, rec) in r.records().enumerate() {
        match rec {
            Ok(rec) => {
                text.push_str(&rec.iter().collect::<Vec<_>>().join(" "));
                text.push('\n');
            }
            Err(e) => {
                flag = Some(format!("CSV record {}: {e}; the rest not indexed", i + 1));
                break;
            }
        }
        if text.len() > MAX_TEXT {
            break;
        }
    }
    Extracted {
        text,
        kind: "csv",
        flag,
    }
}

fn jsonl(content: &[u8]) -> Extracted {
    let mut text = String::new();
    let mut bad = 0usize;
    for line in content.split(|b| *b == b'\n') {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(v) => {
                strings(&v, &mut text);
                text.push('\n');
            }
            Err(_) => bad += 1,
        }
        if text.len() > MAX_TEXT {
            break;
        }
    }
    let flag = (bad > 0).then(|| format!("{bad} malformed JSON lines not indexed"));
    Extracted {
        text,
        kind: "jsonl",
        flag,
    }
}

fn strings(v: &serde_json::Value, out: &mut String) {
    match v {
        serde_json::Value::String(s) => {
            out.push_str(s);
            out.push(' ');
        }
        serde_json::Value::Number(n) => {
            out.push_str(&n.to_string());
            out.push(' ');
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| strings(x, out)),
        serde_json::Value::Object(o) => o.values().for_each(|x| strings(x, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EML: &str = "From: Viking <viking@example.org>\r\nTo: handler@example.net\r\nSubject: Harbour meeting\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nMeet at the harbour at dawn.\r\n--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"calls.csv\"\r\n\r\ncaller,callee\r\n+442079460018,+33142685300\r\n--b--\r\n";

    #[test]
    fn email_with_attachment() {
        let e = extract("msg.eml", EML.as_bytes());
        assert_eq!(e.kind, "email");
        assert!(
            e.text.contains("viking@example.org") && e.text.contains("Harbour meeting"),
            "{}",
            e.text
        );
        assert!(e.text.contains("harbour at dawn"), "{}", e.text);
        assert!(
            e.text.contains("+33142685300") && e.text.contains("calls.csv"),
            "{}",
            e.text
        );
        assert_eq!(e.flag, None);
    }

    #[test]
    fn csv_and_jsonl() {
        let c = extract(
            "cdr.csv",
            b"caller,callee,start\n+442079460018,+33142685300,2026-03-01T10:00Z\n",
        );
        assert_eq!(c.kind, "csv");
        assert!(c.text.contains("+33142685300"));
        let j = extract(
            "events.jsonl",
            b"{\"user\":\"viking\",\"ip\":\"203.0.113.7\"}\nnot json\n{\"n\":3}\n",
        );
        assert!(
            j.text.contains("viking") && j.text.contains("203.0.113.7") && j.text.contains('3')
        );
        assert_eq!(
            j.flag.as_deref(),
            Some("1 malformed JSON lines not indexed")
        );
    }

    #[test]
    fn bad_input_is_flagged_not_fatal() {
        let b = extract("photo.jpg", &[0xff, 0xd8, 0xff, 0x00, 0x10]);
        assert_eq!(b.kind, "binary");
        assert!(b.flag.is_some());
        assert!(
            extract("x.eml", b"\xff\xfe garbage").flag.is_some()
                || extract("x.eml", b"\xff\xfe garbage").text.len() < 200
        );
        let unterminated = extract("q.csv", b"a,\"unterminated\nb,c\n");
        assert_eq!(unterminated.kind, "csv");
        let huge = "x".repeat(MAX_TEXT + 10);
        let h = extract("big.txt", huge.as_bytes());
        assert_eq!(h.text.len(), MAX_TEXT);
        assert!(h.flag.is_some_and(|f| f.contains("truncated")));
    }
}
