//! JSON Lines: one object a line, Winlogbeat/ECS or plain.

use std::path::Path;
use std::sync::Arc;

use super::{MAX_LINE, ReadError, ReadStats, for_each_line};
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
    let mut stats = ReadStats::default();
    let mut first_error = None;
    for_each_line(path, |n, line| {
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
