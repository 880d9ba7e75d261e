//! `bletchley hunt`: Sigma rules over event log files, no data directory.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, anyhow};
use bletchley_detect::engine::Engine;
use bletchley_detect::hunt::{self, Outcome, time_text};
use bletchley_detect::mapping::{self, Mapping};
use bletchley_detect::rule::Level;
use serde_json::json;

use crate::cli::HuntArgs;

/// How many rule-loading problems are printed without `--verbose`.
const PROBLEMS_SHOWN: usize = 10;

pub fn run(a: &HuntArgs) -> Result<ExitCode> {
    if a.print_mapping {
        print!("{}", mapping::DEFAULT);
        return Ok(ExitCode::SUCCESS);
    }
    let min_level = match &a.level {
        Some(l) => Some(Level::parse(l).ok_or_else(|| {
            anyhow!("--level {l:?}: expected informational, low, medium, high or critical")
        })?),
        None => None,
    };
    for r in &a.rules {
        if !r.exists() {
            return Err(anyhow!(
                "--rules {}: no such file or directory",
                r.display()
            ));
        }
    }
    let mapping = match &a.mapping {
        Some(p) => Mapping::load(p).context("loading the mapping")?,
        None => Mapping::builtin(),
    };
    let started = Instant::now();
    let engine = Engine::load(&a.rules, mapping);
    let loaded = started.elapsed();
    let report = engine.report();
    let problems = report.problems();
    if !a.quiet {
        eprintln!(
            "loaded {} detection rules, {} correlations, {} filters from {} files in {:.2} s; {} not loaded or not mappable",
            report.detection_rules,
            report.correlation_rules,
            report.filter_rules,
            report.files,
            loaded.as_secs_f64(),
            problems.len()
        );
        let shown = if a.verbose {
            problems.len()
        } else {
            PROBLEMS_SHOWN
        };
        for p in problems.iter().take(shown) {
            eprintln!("  {p}");
        }
        if problems.len() > shown {
            eprintln!(
                "  … and {} more (--verbose lists them all)",
                problems.len() - shown
            );
        }
    }
    if report.detection_rules == 0 {
        return Err(anyhow!("no rule loaded from {:?}", a.rules));
    }
    for f in &a.files {
        if !f.exists() {
            return Err(anyhow!("{}: no such file or directory", f.display()));
        }
    }
    let files = hunt::files_under(&a.files);
    let started = Instant::now();
    let outcome = hunt::hunt(&engine, &files);
    let took = started.elapsed();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    if a.json {
        print_json(&engine, &outcome, min_level, &mut out)?;
    } else if a.csv {
        print_csv(&engine, &outcome, min_level, &mut out)?;
    } else {
        print_table(&engine, &outcome, min_level, &mut out)?;
    }
    out.flush()?;
    if !a.quiet {
        let skipped: u64 = outcome.files.iter().map(|(_, s)| s.skipped).sum();
        for (path, stats) in &outcome.files {
            for s in stats.skipped_examples.iter().take(3) {
                eprintln!(
                    "warning: {}: record {} skipped: {}",
                    path.display(),
                    s.record,
                    s.why
                );
            }
            if stats.repaired > 0 {
                eprintln!(
                    "warning: {}: {} records held invalid UTF-8 (replaced by U+FFFD)",
                    path.display(),
                    stats.repaired
                );
            }
        }
        eprintln!(
            "{} detections and {} correlations in {} records of {} files in {:.2} s ({:.0} records/s); {} records skipped, {} files refused",
            outcome.hits.len(),
            outcome.correlations.len(),
            outcome.records,
            outcome.files.len(),
            took.as_secs_f64(),
            outcome.records as f64 / took.as_secs_f64().max(1e-9),
            skipped,
            outcome.refused.len()
        );
    }
    for e in &outcome.refused {
        eprintln!("error: {e}");
    }
    Ok(if outcome.refused.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    })
}

fn keep(engine: &Engine, rule: usize, min: Option<Level>) -> bool {
    !engine.quiet(rule) && min.is_none_or(|m| engine.rule(rule).level >= m)
}

/// Chainsaw's JSON shape, near enough that tools reading one read the other: one
/// object a detection with the rule, the time, where the event came from, the fields
/// the rule read and the whole event.
fn print_json(
    engine: &Engine,
    o: &Outcome,
    min: Option<Level>,
    out: &mut impl Write,
) -> Result<()> {
    let mut items = Vec::new();
    for h in o.hits.iter().filter(|h| keep(engine, h.rule, min)) {
        let r = engine.rule(h.rule);
        let fields: serde_json::Map<String, serde_json::Value> = engine
            .matched_fields(h.rule, &h.event)
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        items.push(json!({
            "kind": "detection",
            "id": r.id,
            "name": r.title,
            "level": r.level.as_str(),
            "status": r.status,
            "tags": r.tags,
            "authors": r.author,
            "rule_file": r.file.display().to_string(),
            "timestamp": time_text(h.event.time),
            "computer": h.event.first("Computer").or_else(|| h.event.first("host")),
            "file": &*h.event.origin.file,
            "record": h.event.origin.record,
            "fields": fields,
            "document": h.event.raw,
        }));
    }
    for c in &o.correlations {
        let (r, corr, _) = &engine.correlations()[c.correlation];
        if min.is_some_and(|m| r.level < m) {
            continue;
        }
        let records: Vec<serde_json::Value> = c
            .fired
            .events
            .iter()
            .map(|&i| json!({"file": &*o.hits[i].event.origin.file, "record": o.hits[i].event.origin.record}))
            .collect();
        items.push(json!({
            "kind": "correlation",
            "id": r.id,
            "name": r.title,
            "level": r.level.as_str(),
            "tags": r.tags,
            "group_by": corr.group_by.iter().zip(&c.fired.group).map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect::<serde_json::Map<_, _>>(),
            "first": time_text(Some(c.fired.first)),
            "last": time_text(Some(c.fired.last)),
            "count": c.fired.count,
            "events": records,
        }));
    }
    serde_json::to_writer(&mut *out, &items)?;
    writeln!(out)?;
    Ok(())
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn print_csv(engine: &Engine, o: &Outcome, min: Option<Level>, out: &mut impl Write) -> Result<()> {
    writeln!(
        out,
        "timestamp,level,rule_id,rule,computer,file,record,fields"
    )?;
    for h in o.hits.iter().filter(|h| keep(engine, h.rule, min)) {
        let r = engine.rule(h.rule);
        let fields: Vec<String> = engine
            .matched_fields(h.rule, &h.event)
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        let row = [
            time_text(h.event.time),
            r.level.as_str().to_owned(),
            r.id.clone(),
            r.title.clone(),
            h.event
                .first("Computer")
                .or_else(|| h.event.first("host"))
                .unwrap_or_default()
                .to_owned(),
            h.event.origin.file.to_string(),
            h.event.origin.record.to_string(),
            fields.join(" | "),
        ];
        let row: Vec<String> = row.iter().map(|c| csv_field(c)).collect();
        writeln!(out, "{}", row.join(","))?;
    }
    Ok(())
}

fn print_table(
    engine: &Engine,
    o: &Outcome,
    min: Option<Level>,
    out: &mut impl Write,
) -> Result<()> {
    for h in o.hits.iter().filter(|h| keep(engine, h.rule, min)) {
        let r = engine.rule(h.rule);
        writeln!(
            out,
            "{}  {:<13} {}  [{}]",
            time_text(h.event.time),
            r.level.as_str(),
            r.title,
            r.id
        )?;
        writeln!(
            out,
            "    {} record {} on {}",
            h.event.origin.file,
            h.event.origin.record,
            h.event
                .first("Computer")
                .or_else(|| h.event.first("host"))
                .unwrap_or("?")
        )?;
        for (k, v) in engine.matched_fields(h.rule, &h.event) {
            let v: String = v.chars().take(200).collect();
            writeln!(out, "    {k}: {v}")?;
        }
    }
    for c in &o.correlations {
        let (r, corr, _) = &engine.correlations()[c.correlation];
        if min.is_some_and(|m| r.level < m) {
            continue;
        }
        let group: Vec<String> = corr
            .group_by
            .iter()
            .zip(&c.fired.group)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        writeln!(
            out,
            "{} .. {}  {:<13} {}  [{}]  {} events  {}",
            time_text(Some(c.fired.first)),
            time_text(Some(c.fired.last)),
            r.level.as_str(),
            r.title,
            r.id,
            c.fired.count,
            group.join(" ")
        )?;
    }
    Ok(())
}
