//! ZIP archives and the ZIP-based office format DOCX, read within a budget:
//! total inflated bytes, per-entry compression ratio, entry count and
//! nesting depth are all bounded, so a zip bomb is flagged, not expanded.

use std::io::{Cursor, Read};

use quick_xml::events::Event;

use super::Extracted;

/// Inflated bytes read from one archive, all entries together.
pub const MAX_INFLATED: u64 = 64 * 1024 * 1024;
/// Largest believable compression ratio for an entry over 1 MiB.
const MAX_RATIO: u64 = 200;
const MAX_ENTRIES: usize = 1_000;

/// Why an archive could not be read whole.
fn bomb(name: &str) -> String {
    format!("archive entry {name} inflates beyond the limits (possible zip bomb): not indexed")
}

/// Reads one entry's bytes within `budget`, which it reduces.
fn read_entry(
    file: &mut zip::read::ZipFile<'_, Cursor<&[u8]>>,
    budget: &mut u64,
) -> Result<Vec<u8>, String> {
    let name = entry_name(file);
    let (declared, packed) = (file.size(), file.compressed_size().max(1));
    if declared > *budget || (declared > 1 << 20 && declared / packed > MAX_RATIO) {
        return Err(bomb(&name));
    }
    // The declared size can lie: read at most the budget plus one byte.
    let mut out = Vec::new();
    file.take(*budget + 1)
        .read_to_end(&mut out)
        .map_err(|e| format!("archive entry {name}: {e}"))?;
    let got = out.len() as u64;
    if got > *budget || (got > 1 << 20 && got / packed > MAX_RATIO) {
        return Err(bomb(&name));
    }
    *budget -= got;
    Ok(out)
}

/// An entry's name for messages and format dispatch.
fn entry_name(file: &zip::read::ZipFile<'_, Cursor<&[u8]>>) -> String {
    file.name()
        .map(|n| n.into_owned())
        .unwrap_or_else(|_| "(unnamed entry)".to_owned())
}

fn open(content: &[u8]) -> Result<zip::ZipArchive<Cursor<&[u8]>>, String> {
    zip::ZipArchive::new(Cursor::new(content)).map_err(|e| format!("malformed archive ({e})"))
}

/// Every file entry of a ZIP archive as a part, within the archive limits;
/// reading stops at the first entry that breaks them.
pub(super) fn members(content: &[u8]) -> Vec<super::Part> {
    let Ok(mut archive) = open(content) else {
        return Vec::new();
    };
    let mut budget = MAX_INFLATED;
    let mut out = Vec::new();
    for i in 0..archive.len().min(MAX_ENTRIES) {
        let Ok(mut file) = archive.by_index(i) else {
            continue;
        };
        if file.is_dir() {
            continue;
        }
        let name = entry_name(&file);
        match read_entry(&mut file, &mut budget) {
            Ok(bytes) => out.push(super::Part {
                title: super::sanitise_name(&name),
                content: bytes,
                derivation: "member",
            }),
            Err(_) => break,
        }
    }
    out
}

/// Text of every entry of a ZIP archive, each through the format dispatch
/// when `inline`, or only its name when entries are items of their own.
/// Entries are read (within the limits) either way, so a bomb is flagged.
pub(super) fn zip(content: &[u8], depth: usize, inline: bool) -> Extracted {
    let mut archive = match open(content) {
        Ok(a) => a,
        Err(e) => {
            return Extracted {
                text: String::new(),
                kind: "zip",
                flag: Some(format!("{e}: stored, not indexed")),
            };
        }
    };
    let mut text = String::new();
    let mut flag = None;
    let mut budget = MAX_INFLATED;
    if archive.len() > MAX_ENTRIES {
        flag = Some(format!(
            "more than {MAX_ENTRIES} entries: the rest not indexed"
        ));
    }
    for i in 0..archive.len().min(MAX_ENTRIES) {
        let mut file = match archive.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                flag = Some(format!("archive entry {}: {e}", i + 1));
                continue;
            }
        };
        if file.is_dir() {
            continue;
        }
        let name = entry_name(&file);
        match read_entry(&mut file, &mut budget) {
            Ok(_) if !inline => text.push_str(&format!("\n[entry {name}]\n")),
            Ok(bytes) => {
                text.push_str(&format!("\n[entry {name}]\n"));
                let sub = super::extract_at(&name, &bytes, depth + 1, super::Parts::Inline);
                text.push_str(&sub.text);
                if let Some(f) = sub.flag {
                    flag = Some(format!("{name}: {f}"));
                }
            }
            Err(e) => {
                flag = Some(e);
                break;
            }
        }
        if text.len() > super::MAX_TEXT {
            break;
        }
    }
    Extracted {
        text,
        kind: "zip",
        flag,
    }
}

/// The running text of a Word (OOXML) document: body, then footnotes.
pub(super) fn docx(content: &[u8]) -> Extracted {
    let fail = |e: String| Extracted {
        text: String::new(),
        kind: "docx",
        flag: Some(format!("{e}: stored, not indexed")),
    };
    let mut archive = match open(content) {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let mut budget = MAX_INFLATED;
    let mut text = String::new();
    for (part, required) in [("word/document.xml", true), ("word/footnotes.xml", false)] {
        let mut file = match archive.by_name(part) {
            Ok(f) => f,
            Err(_) if !required => continue,
            Err(_) => return fail(format!("not a Word document (no {part})")),
        };
        let xml = match read_entry(&mut file, &mut budget) {
            Ok(x) => x,
            Err(e) => return fail(e),
        };
        if let Err(e) = word_text(&xml, &mut text) {
            return Extracted {
                text,
                kind: "docx",
                flag: Some(format!("{part}: malformed XML ({e}); the rest not indexed")),
            };
        }
    }
    Extracted {
        text,
        kind: "docx",
        flag: None,
    }
}

/// Appends the text runs (`w:t`) of WordprocessingML, a line per paragraph.
fn word_text(xml: &[u8], out: &mut String) -> Result<(), quick_xml::Error> {
    let mut r = quick_xml::Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut in_text = false;
    loop {
        match r.read_event_into(&mut buf)? {
            Event::Start(e) if e.local_name().as_ref() == "t" => in_text = true,
            Event::End(e) => match e.local_name().as_ref() {
                "t" => in_text = false,
                "p" => out.push('\n'),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                "tab" => out.push('\t'),
                "br" => out.push('\n'),
                _ => {}
            },
            Event::Text(t) if in_text => {
                out.push_str(&t.xml10_content());
            }
            Event::GeneralRef(g) if in_text => {
                // Predefined entities and character references inside a run.
                let c = match g.as_ref() {
                    "amp" => Some('&'),
                    "lt" => Some('<'),
                    "gt" => Some('>'),
                    "quot" => Some('"'),
                    "apos" => Some('\''),
                    _ => g.resolve_char_ref().ok().flatten(),
                };
                if let Some(c) = c {
                    out.push(c);
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
        if out.len() > super::MAX_TEXT {
            return Ok(());
        }
    }
}
