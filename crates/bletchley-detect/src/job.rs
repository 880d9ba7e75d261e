//! The detection job: an event log stored as an item becomes one alert item per
//! detection, derived from the log.
//!
//! The job reads the log through the gate as the principal who ingested it, and its
//! agency's rules from the collection `AGENCY/sigma-rules` through the gate as the same
//! principal (rules are items: sealed, audited, replaced by shredding). Alerts are stored
//! with [`Platform::derive`], so they carry the log's collection, marking and retention
//! (rule 4), are searchable where the log is, and go when it is shredded. A log whose
//! alerts exist already is not run again: a worker killed halfway leaves a job the next
//! worker finishes without duplicates.

use std::path::Path;

use bletchley_store::{Actor, Job, NewItem, Platform};
use serde_json::json;

use crate::engine::{Engine, LoadReport};
use crate::hunt::{self, Hit, time_text};
use crate::mapping::Mapping;
use crate::read;
use crate::rule::{self, PlaceholderMap};

/// Derivation name of an alert.
pub const ALERT: &str = "alert";

/// The collection that holds an agency's Sigma rules.
pub fn rules_collection(agency: &str) -> String {
    format!("{agency}/sigma-rules")
}

/// The most alerts one log makes; past it the job fails, naming the count, rather than
/// flood the store (a rule that fires on everything is a rule to fix).
pub const MAX_ALERTS: usize = 10_000;

/// Why a detection job did not finish.
#[derive(Debug, thiserror::Error)]
pub enum DetectJobError {
    /// Retrying cannot help (the log does not parse, access was refused, a rule is broken).
    #[error("{0}")]
    Permanent(String),
    /// Retrying may help (storage).
    #[error("{0}")]
    Transient(String),
}

/// The compiled rules a worker keeps between jobs: keyed by the principal and the exact
/// rule items that principal saw listed, so a job never uses a rule its principal may not
/// see, and a rule added or removed takes effect at the next job. Reading the rules (and
/// its audit entries) happens once per change, not once per log.
#[derive(Default)]
pub struct RuleCache {
    key: Option<(String, Vec<String>)>,
    engine: Option<std::sync::Arc<Engine>>,
}

/// An agency's rules as `principal` sees them, compiled (from the cache when the rule
/// items it sees are the ones compiled last); a rule file that does not parse is an error
/// naming it. `None` when the principal sees no rules.
pub fn agency_engine(
    p: &mut Platform,
    principal: &str,
    agency: &str,
    why: &str,
    cache: &mut RuleCache,
) -> Result<Option<std::sync::Arc<Engine>>, DetectJobError> {
    let coll = rules_collection(agency);
    if !p
        .collections()
        .map_err(|e| DetectJobError::Transient(e.to_string()))?
        .iter()
        .any(|c| format!("{}/{}", c.agency, c.name) == coll)
    {
        return Ok(None);
    }
    let listing = p
        .list(principal, Some(&coll), Some(why))
        .map_err(|e| DetectJobError::Permanent(format!("listing {coll}: {e}")))?;
    let mut ids: Vec<String> = listing.items.iter().map(|m| m.id.clone()).collect();
    ids.sort();
    if ids.is_empty() {
        return Ok(None);
    }
    let key = (principal.to_owned(), ids);
    if cache.key.as_ref() == Some(&key)
        && let Some(engine) = &cache.engine
    {
        return Ok(Some(engine.clone()));
    }
    let rules = read_rules(p, principal, listing.items, why)?;
    let engine = std::sync::Arc::new(Engine::compile(
        rules,
        Mapping::builtin(),
        LoadReport::default(),
    ));
    cache.key = Some(key);
    cache.engine = Some(engine.clone());
    Ok(Some(engine))
}

fn read_rules(
    p: &mut Platform,
    principal: &str,
    items: Vec<bletchley_store::ItemMeta>,
    why: &str,
) -> Result<Vec<rule::Rule>, DetectJobError> {
    let mut rules = Vec::new();
    for meta in items {
        let (_, bytes) = p
            .get(principal, &meta.id, Some(why))
            .map_err(|e| DetectJobError::Permanent(format!("reading rule {}: {e}", meta.id)))?;
        let text = String::from_utf8_lossy(&bytes);
        let parsed = rule::parse_file(Path::new(&meta.title), &text, &PlaceholderMap::new())
            .map_err(|e| DetectJobError::Permanent(format!("rule item {}: {e}", meta.id)))?;
        rules.extend(parsed);
    }
    Ok(rules)
}

/// Runs one detection job; returns the alert items (existing ones included).
pub fn run_detection(
    p: &mut Platform,
    job: &Job,
    cache: &mut RuleCache,
) -> Result<Vec<String>, DetectJobError> {
    let existing = p
        .derived_by(&job.item, ALERT)
        .map_err(|e| DetectJobError::Transient(e.to_string()))?;
    if !existing.is_empty() {
        return Ok(existing);
    }
    let why = format!("detection job {}", job.id);
    let (meta, content) = p
        .get(&job.principal, &job.item, Some(&why))
        .map_err(|e| DetectJobError::Permanent(format!("reading the log: {e}")))?;
    let agency = meta
        .collection
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let Some(engine) = agency_engine(p, &job.principal, &agency, &why, cache)? else {
        return Ok(Vec::new());
    };
    let mut scratch = engine.scratch();
    let mut hits: Vec<Hit> = Vec::new();
    let mut on_event = hunt::collect(&engine, &mut scratch, &mut hits);
    let read = read::read_bytes(&meta.title, content, engine.mapping(), &mut on_event);
    drop(on_event);
    read.map_err(|e| DetectJobError::Permanent(format!("reading the log: {e}")))?;
    let correlations = hunt::correlate(&engine, &hits);
    let mut items = Vec::new();
    for h in hits.iter().filter(|h| !engine.quiet(h.rule)) {
        items.push(alert_item(&engine, &meta.title, h));
    }
    for c in &correlations {
        let (r, corr, _) = &engine.correlations()[c.correlation];
        let group: serde_json::Map<String, serde_json::Value> = corr
            .group_by
            .iter()
            .zip(&c.fired.group)
            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
            .collect();
        let body = json!({
            "kind": "correlation",
            "rule": {"id": r.id, "title": r.title, "level": r.level.as_str(), "tags": r.tags},
            "log": meta.title,
            "group_by": group,
            "first": time_text(Some(c.fired.first)),
            "last": time_text(Some(c.fired.last)),
            "count": c.fired.count,
            "records": c.fired.events.iter().map(|&i| hits[i].event.origin.record).collect::<Vec<_>>(),
        });
        items.push(NewItem {
            title: format!("{} alert {} {}.json", meta.title, r.level.as_str(), r.title),
            content: body.to_string().into_bytes(),
        });
    }
    if items.is_empty() {
        return Ok(Vec::new());
    }
    if items.len() > MAX_ALERTS {
        return Err(DetectJobError::Permanent(format!(
            "{} alerts, more than the {MAX_ALERTS} one log may make: check the rules",
            items.len()
        )));
    }
    p.derive(
        &Actor::Principal(job.principal.clone()),
        &job.item,
        ALERT,
        items,
    )
    .map_err(|e| DetectJobError::Transient(format!("storing the alerts: {e}")))
}

/// One detection as an item: the rule, where and when, the fields the rule read, and the
/// whole event.
fn alert_item(engine: &Engine, log_title: &str, h: &Hit) -> NewItem {
    let r = engine.rule(h.rule);
    let fields: serde_json::Map<String, serde_json::Value> = engine
        .matched_fields(h.rule, &h.event)
        .into_iter()
        .map(|(k, v)| (k, serde_json::Value::String(v)))
        .collect();
    let computer = h.event.first("Computer").or_else(|| h.event.first("host"));
    let body = json!({
        "kind": "detection",
        "rule": {"id": r.id, "title": r.title, "level": r.level.as_str(), "tags": r.tags},
        "log": log_title,
        "record": h.event.origin.record,
        "time": time_text(h.event.time),
        "computer": computer,
        "fields": fields,
        "event": h.event.raw,
    });
    NewItem {
        title: format!(
            "{log_title} alert {} {} record {}.json",
            r.level.as_str(),
            r.title,
            h.event.origin.record
        ),
        content: body.to_string().into_bytes(),
    }
}
