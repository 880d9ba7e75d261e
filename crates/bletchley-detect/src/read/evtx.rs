//! Windows EVTX files through the `evtx` crate, records rendered as JSON.

use std::path::Path;
use std::sync::Arc;

use evtx::{EvtxParser, ParserSettings};

use super::{ReadError, ReadStats};
use crate::event::{Event, Origin};
use crate::mapping::Mapping;

/// Reads an EVTX file; `threads` > 1 renders chunks in parallel.
pub fn read(
    path: &Path,
    name: Arc<str>,
    mapping: &Mapping,
    threads: usize,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReadStats, ReadError> {
    let parser = EvtxParser::from_path(path).map_err(|e| ReadError::Malformed {
        path: path.to_owned(),
        format: "EVTX",
        why: e.to_string(),
    })?;
    records(parser, path, name, mapping, threads, on_event)
}

/// Reads EVTX bytes held in memory (the fuzzer's entry, and uploads).
pub fn read_bytes(
    bytes: Vec<u8>,
    name: Arc<str>,
    mapping: &Mapping,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReadStats, ReadError> {
    let path = Path::new(&*name).to_owned();
    let parser = EvtxParser::from_buffer(bytes).map_err(|e| ReadError::Malformed {
        path: path.clone(),
        format: "EVTX",
        why: e.to_string(),
    })?;
    records(parser, &path, name, mapping, 1, on_event)
}

fn records<T: std::io::Read + std::io::Seek + Send + Sync + 'static>(
    mut parser: EvtxParser<T>,
    path: &Path,
    name: Arc<str>,
    mapping: &Mapping,
    threads: usize,
    on_event: &mut dyn FnMut(Event),
) -> Result<ReadStats, ReadError> {
    parser = parser.with_configuration(ParserSettings::new().num_threads(threads.max(1)));
    let mut stats = ReadStats::default();
    // The EVTX decoder is someone else's code reading an attacker's bytes: should it
    // panic, the file is refused with the panic's message, and the hunt goes on.
    let mut records = parser.records_json_value().enumerate();
    loop {
        let next = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| records.next()));
        let (i, record) = match next {
            Ok(Some(r)) => r,
            Ok(None) => break,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "the decoder panicked".into());
                return Err(ReadError::Malformed {
                    path: path.to_owned(),
                    format: "EVTX",
                    why: format!("the decoder failed: {why}"),
                });
            }
        };
        match record {
            Ok(r) => {
                stats.records += 1;
                let origin = Origin {
                    file: name.clone(),
                    record: r.event_record_id,
                };
                let mut e = mapping.event_from_evtx(r.data, origin);
                // The record's own EventRecordID is what Windows tools and analysts quote.
                if let Some(id) = e.first("EventRecordID").and_then(|t| t.parse().ok()) {
                    e.origin.record = id;
                }
                on_event(e);
            }
            Err(e) => stats.skip(i as u64 + 1, e.to_string()),
        }
    }
    Ok(stats)
}
