//! The text layer of PDF files, with every stream's inflation bounded so a
//! small file cannot expand without limit.

use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::{Document, LoadOptions};

use super::Extracted;

/// No single PDF stream may inflate beyond this.
const MAX_STREAM: usize = 64 * 1024 * 1024;
/// Pages read per document.
const MAX_PAGES: usize = 5_000;

fn flagged(text: String, flag: String) -> Extracted {
    Extracted {
        text,
        kind: "pdf",
        flag: Some(flag),
    }
}

/// Extracts the text layer; a damaged file, an encrypted one or a
/// decompression bomb is flagged with what went wrong.
pub(super) fn extract(content: &[u8]) -> Extracted {
    // lopdf is a parser of hostile input: a panic in it is contained here and
    // reported as an unreadable file rather than taking the platform down.
    let run = catch_unwind(AssertUnwindSafe(|| read(content)));
    match run {
        Ok(e) => e,
        Err(_) => flagged(
            String::new(),
            "PDF could not be parsed (internal parser failure): stored, not indexed".into(),
        ),
    }
}

fn read(content: &[u8]) -> Extracted {
    let opts = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM),
        ..LoadOptions::default()
    };
    let doc = match Document::load_mem_with_options(content, opts) {
        Ok(d) => d,
        Err(e) => {
            return flagged(
                String::new(),
                format!("malformed PDF ({e}): stored, not indexed"),
            );
        }
    };
    if doc.is_encrypted() {
        return flagged(String::new(), "encrypted PDF: stored, not indexed".into());
    }
    let pages: Vec<u32> = doc.get_pages().keys().copied().collect();
    let mut text = String::new();
    let mut problems = Vec::new();
    for (i, chunk) in doc
        .extract_text_chunks_with_limit(&pages[..pages.len().min(MAX_PAGES)], MAX_STREAM)
        .into_iter()
        .enumerate()
    {
        match chunk {
            Ok(t) => text.push_str(&t),
            Err(e) => {
                if problems.len() < 3 {
                    problems.push(format!("chunk {}: {e}", i + 1));
                }
            }
        }
        if text.len() > super::MAX_TEXT {
            break;
        }
    }
    let flag = if pages.len() > MAX_PAGES {
        Some(format!("only the first {MAX_PAGES} pages indexed"))
    } else if !problems.is_empty() {
        Some(format!(
            "parts of the PDF unreadable: {}",
            problems.join("; ")
        ))
    } else if text.trim().is_empty() {
        Some("PDF has no text layer (scanned?): stored, not indexed".into())
    } else {
        None
    };
    Extracted {
        text,
        kind: "pdf",
        flag,
    }
}
