//! Hunting: rules over files, with no data directory (as Chainsaw's `hunt` does).

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rayon::prelude::*;

use crate::correlation::{self, Fired, Seen};
use crate::engine::Engine;
use crate::event::Event;
use crate::read::{self, ReadError, ReadStats};

/// One detection: a rule that fired on an event.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The detection rule's position in the engine.
    pub rule: usize,
    /// The event.
    pub event: std::sync::Arc<Event>,
}

/// One correlation that fired.
#[derive(Debug, Clone)]
pub struct CorrelationHit {
    /// The correlation's position in [`Engine::correlations`].
    pub correlation: usize,
    /// What fired.
    pub fired: Fired,
}

/// What a hunt found and read.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Detections, by file then record.
    pub hits: Vec<Hit>,
    /// Correlations that fired.
    pub correlations: Vec<CorrelationHit>,
    /// Files read, with what reading them found.
    pub files: Vec<(PathBuf, ReadStats)>,
    /// Files refused.
    pub refused: Vec<ReadError>,
    /// Records read in all.
    pub records: u64,
}

/// The extensions taken from a directory (a file named on its own is read whatever
/// its name).
pub const LOG_EXTENSIONS: [&str; 5] = ["evtx", "jsonl", "ndjson", "log", "syslog"];

/// Every file named, and every log file under the directories named (by
/// [`LOG_EXTENSIONS`]), in name order.
pub fn files_under(paths: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(p) else {
            return;
        };
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| LOG_EXTENSIONS.iter().any(|l| l.eq_ignore_ascii_case(x)))
            {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.clone());
        }
    }
    out.sort();
    out
}

/// A reader's event handler that runs the engine and keeps each detection with its event.
pub fn collect<'a>(
    engine: &'a Engine,
    scratch: &'a mut crate::engine::Scratch,
    hits: &'a mut Vec<Hit>,
) -> impl FnMut(Event) + 'a {
    let mut fired = Vec::new();
    move |e: Event| {
        engine.detect(&e, scratch, &mut fired);
        if fired.is_empty() {
            return;
        }
        let e = std::sync::Arc::new(e);
        for &r in &fired {
            hits.push(Hit {
                rule: r,
                event: e.clone(),
            });
        }
    }
}

/// When an event happened, as RFC 3339 (empty when unknown).
pub fn time_text(t: Option<time::OffsetDateTime>) -> String {
    t.and_then(|t| {
        t.format(&time::format_description::well_known::Rfc3339)
            .ok()
    })
    .unwrap_or_default()
}

/// Runs the engine over files, in parallel across files; fewer files than cores share
/// the cores out to render each file's chunks in parallel too.
pub fn hunt(engine: &Engine, files: &[PathBuf]) -> Outcome {
    let refused = Mutex::new(Vec::new());
    let per_file_threads = (rayon::current_num_threads() / files.len().max(1)).max(1);
    let per_file: Vec<(PathBuf, ReadStats, Vec<Hit>)> = files
        .par_iter()
        .filter_map(|path| {
            let mut scratch = engine.scratch();
            let mut hits = Vec::new();
            let mut on_event = collect(engine, &mut scratch, &mut hits);
            let read = read::read_file(path, engine.mapping(), per_file_threads, &mut on_event);
            drop(on_event);
            match read {
                Ok((_, stats)) => Some((path.clone(), stats, hits)),
                Err(e) => {
                    if let Ok(mut r) = refused.lock() {
                        r.push(e);
                    }
                    None
                }
            }
        })
        .collect();
    let mut out = Outcome {
        refused: refused.into_inner().unwrap_or_default(),
        ..Outcome::default()
    };
    for (path, stats, hits) in per_file {
        out.records += stats.records;
        out.files.push((path, stats));
        out.hits.extend(hits);
    }
    out.correlations = correlate(engine, &out.hits);
    out
}

/// Runs the engine's correlations over detections.
pub fn correlate(engine: &Engine, hits: &[Hit]) -> Vec<CorrelationHit> {
    let mut out = Vec::new();
    for (ci, (_, c, refs)) in engine.correlations().iter().enumerate() {
        let seen: Vec<Seen> = hits
            .iter()
            .enumerate()
            .filter(|(_, h)| refs.contains(&h.rule))
            .filter_map(|(i, h)| {
                let r = engine.rule(h.rule);
                Some(Seen {
                    rule: h.rule,
                    time: h.event.time?,
                    group: c
                        .group_by
                        .iter()
                        .map(|g| {
                            let field = c.field_for(g, &r.id, r.name.as_deref());
                            h.event.first(field).unwrap_or_default().to_owned()
                        })
                        .collect(),
                    value: match &c.kind {
                        crate::rule::CorrelationKind::ValueCount(f) => {
                            h.event.first(f).map(str::to_owned)
                        }
                        _ => None,
                    },
                    handle: i,
                })
            })
            .collect();
        for fired in correlation::correlate(c, refs, &seen) {
            out.push(CorrelationHit {
                correlation: ci,
                fired,
            });
        }
    }
    out
}
