//! JSON Lines: one object a line, Winlogbeat/ECS or plain.

use std::path::Path;
use std::sync::Arc;

use super::{MAX_LINE, ReadError, ReadStats, for_each_line, open_lines};
use crate::event::{Event, Origin};
use crate::mapping::Mapping;

/// Reads a JSON Lines file. A line that is not a JSON object is skipped and counted;
/// a file whose records all fail is refused.
pub fn read(
    path: &Path,
    name: Arc<str>,
    mapping: &Mapping,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReadStats, ReadError> {
    read_from(open_lines(path)?, path, name, mapping, on_event)
}

/// As [`read`], from any reader (`path` names it in errors).
pub fn read_from(
    reader: impl std::io::BufRead,
    path: &Path,
    name: Arc<str>,
    mapping: &Mapping,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReadStats, ReadError> {
    let mut stats = ReadStats::default();
    let mut first_error = None;
    for_each_line(reader, path, |n, line| {
        let line = match line {
            Ok(l) => l,
            Err(len) => {
                stats.skip(
                    n,
                    format!("record of {len} bytes is longer than {MAX_LINE}"),
                );
                return;
            }
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(v @ serde_json::Value::Object(_)) => {
                stats.records += 1;
                on_event(mapping.event_from_jsonl(
                    v,
                    Origin {
                        file: name.clone(),
                        record: n,
                    },
                ));
            }
            Ok(_) => stats.skip(n, "not a JSON object".into()),
            Err(e) => {
                first_error.get_or_insert_with(|| format!("line {n}: {e}"));
                stats.skip(n, format!("not JSON: {e}"));
            }
        }
    })?;
    if stats.records == 0 && stats.skipped > 0 {
        return Err(ReadError::Malformed {
            path: path.to_owned(),
            format: "JSON Lines",
            why: first_error.unwrap_or_else(|| "no line is a JSON object".into()),
        });
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_text(text: &[u8]) -> Result<(ReadStats, usize), ReadError> {
        let dir = tempfile::tempdir().map_err(|source| ReadError::Io {
            path: "tmp".into(),
            source,
        })?;
        let path = dir.path().join("t.jsonl");
        std::fs::write(&path, text).map_err(|source| ReadError::Io {
            path: path.clone(),
            source,
        })?;
        let mut n = 0;
        let stats = read(
            &path,
            Arc::from("t.jsonl"),
            &Mapping::builtin(),
            &mut |_| n += 1,
        )?;
        Ok((stats, n))
    }

    #[test]
    fn a_huge_record_is_skipped_and_counted_and_the_rest_read() {
        let mut text = b"{\"a\":1}\n{\"big\":\"".to_vec();
        text.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        text.extend_from_slice(b"\"}\n{\"b\":2}\n");
        let (stats, n) = read_text(&text).expect("reads");
        assert_eq!(n, 2);
        assert_eq!(stats.skipped, 1);
        assert_eq!(stats.skipped_examples[0].record, 2);
        assert!(
            stats.skipped_examples[0].why.contains("longer than"),
            "{:?}",
            stats.skipped_examples
        );
    }

    #[test]
    fn a_file_that_is_not_json_lines_is_refused() {
        let e = read_text(b"hello\nworld\n").expect_err("refused");
        assert!(e.to_string().contains("not a valid JSON Lines file"), "{e}");
        // Blank lines and a last line without a newline are fine.
        let (stats, n) = read_text(b"\n{\"a\":1}\n\n{\"a\":2}").expect("reads");
        assert_eq!((n, stats.skipped), (2, 0));
    }
}
