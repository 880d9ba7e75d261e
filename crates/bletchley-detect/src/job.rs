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

use std::collections::HashMap;
use std::path::Path;

use bletchley_store::jobs::DETECT_AGAIN;
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
#[derive(Clone, Debug, thiserror::Error)]
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
    let ids: Vec<String> = items.iter().map(|m| m.id.clone()).collect();
    // One audited batch read, not one durable audit append per rule file.
    let read = p
        .get_many(principal, &ids, Some(why))
        .map_err(|e| DetectJobError::Transient(format!("reading the rules: {e}")))?;
    let mut texts = Vec::with_capacity(items.len());
    for (meta, got) in items.into_iter().zip(read) {
        let (_, bytes) =
            got.map_err(|e| DetectJobError::Permanent(format!("reading rule {}: {e}", meta.id)))?;
        texts.push((meta, bytes));
    }
    // Parsed on every core, as `hunt` parses rule files; in the listed order.
    use rayon::prelude::*;
    let parsed: Vec<Result<Vec<rule::Rule>, DetectJobError>> = texts
        .par_iter()
        .map(|(meta, bytes)| {
            let text = String::from_utf8_lossy(bytes);
            rule::parse_file(Path::new(&meta.title), &text, &PlaceholderMap::new())
                .map_err(|e| DetectJobError::Permanent(format!("rule item {}: {e}", meta.id)))
        })
        .collect();
    let mut rules = Vec::new();
    for r in parsed {
        rules.extend(r?);
    }
    Ok(rules)
}

/// An agency's compiled rules as one principal sees them, or why they could not be had.
type EngineAnswer = Result<Option<std::sync::Arc<Engine>>, DetectJobError>;

/// Runs one detection job; returns the alert items (existing ones included).
pub fn run_detection(
    p: &mut Platform,
    job: &Job,
    cache: &mut RuleCache,
) -> Result<Vec<String>, DetectJobError> {
    run_detections(p, std::slice::from_ref(job), cache)
        .pop()
        .unwrap_or_else(|| Err(DetectJobError::Transient("no answer".into())))
}

/// Runs a batch of detection jobs, one answer per job in order: the logs of each principal
/// read in one audited batch, the rules listed (and, when they changed, read and compiled)
/// once per principal and agency, and every log's alerts stored in one commit. A job whose
/// alerts exist already (an earlier attempt stored them) answers with them.
pub fn run_detections(
    p: &mut Platform,
    jobs: &[Job],
    cache: &mut RuleCache,
) -> Vec<Result<Vec<String>, DetectJobError>> {
    let mut answers: Vec<Option<Result<Vec<String>, DetectJobError>>> =
        jobs.iter().map(|_| None).collect();
    let mut todo: Vec<usize> = Vec::new();
    // A log hunted again keeps its alerts; only new ones are added.
    let mut had: HashMap<usize, Vec<String>> = HashMap::new();
    for (n, job) in jobs.iter().enumerate() {
        let again = job.kind == DETECT_AGAIN;
        match p.derived_by(&job.item, ALERT) {
            Ok(existing) if !existing.is_empty() && !again => answers[n] = Some(Ok(existing)),
            Ok(existing) => {
                if !existing.is_empty() {
                    had.insert(n, existing);
                }
                todo.push(n);
            }
            Err(e) => answers[n] = Some(Err(DetectJobError::Transient(e.to_string()))),
        }
    }
    // By principal, in the order the jobs came.
    let mut principals: Vec<&str> = Vec::new();
    for &n in &todo {
        if !principals.contains(&jobs[n].principal.as_str()) {
            principals.push(&jobs[n].principal);
        }
    }
    // Alerts to store, by job.
    let mut made: Vec<(usize, Vec<NewItem>)> = Vec::new();
    for principal in principals {
        let mine: Vec<usize> = todo
            .iter()
            .copied()
            .filter(|&n| jobs[n].principal == principal)
            .collect();
        let ids: Vec<String> = mine.iter().map(|&n| jobs[n].item.clone()).collect();
        let why = match (mine.first(), mine.last()) {
            (Some(&a), Some(&b)) if a != b => {
                format!("detection jobs {} to {}", jobs[a].id, jobs[b].id)
            }
            _ => format!("detection job {}", jobs[mine[0]].id),
        };
        let mut engines: HashMap<String, EngineAnswer> = HashMap::new();
        let mut hunts: Vec<(usize, std::sync::Arc<Engine>, String, Vec<u8>)> = Vec::new();
        let read = match p.get_many(principal, &ids, Some(&why)) {
            Ok(r) => r,
            Err(e) => {
                for &n in &mine {
                    answers[n] = Some(Err(DetectJobError::Transient(format!(
                        "reading the log: {e}"
                    ))));
                }
                continue;
            }
        };
        for (&n, got) in mine.iter().zip(read) {
            let (meta, content) = match got {
                Ok(r) => r,
                Err(e) => {
                    answers[n] = Some(Err(DetectJobError::Permanent(format!(
                        "reading the log: {e}"
                    ))));
                    continue;
                }
            };
            let agency = meta
                .collection
                .split('/')
                .next()
                .unwrap_or_default()
                .to_owned();
            // The rules are listed (an audited read of what this principal may see) once
            // per agency in a batch, not once per log.
            let engine = match engines.get(&agency) {
                Some(e) => e.clone(),
                None => {
                    let e = agency_engine(p, principal, &agency, &why, cache);
                    if e.is_ok() {
                        engines.insert(agency.clone(), e.clone());
                    }
                    e
                }
            };
            let engine = match engine {
                Ok(Some(e)) => e,
                Ok(None) => {
                    answers[n] = Some(Ok(Vec::new()));
                    continue;
                }
                Err(e) => {
                    answers[n] = Some(Err(e));
                    continue;
                }
            };
            hunts.push((n, engine, meta.title, content));
        }
        // The logs hunted on every core, as `hunt` hunts files; stored in job order below.
        use rayon::prelude::*;
        let found: Vec<(usize, Result<Vec<NewItem>, DetectJobError>)> = hunts
            .into_par_iter()
            .map(|(n, engine, title, content)| (n, alerts_for(&engine, &title, content)))
            .collect();
        for (n, items) in found {
            let items = match items {
                Ok(items) => items,
                Err(e) => {
                    answers[n] = Some(Err(e));
                    continue;
                }
            };
            let items = match had.get(&n) {
                Some(existing) => match new_alerts(p, principal, existing, items, &why) {
                    Ok(items) => items,
                    Err(e) => {
                        answers[n] = Some(Err(e));
                        continue;
                    }
                },
                None => items,
            };
            if items.is_empty() {
                answers[n] = Some(Ok(Vec::new()));
            } else {
                made.push((n, items));
            }
        }
    }
    store_alerts(p, jobs, made, &mut answers);
    for (n, existing) in had {
        if let Some(Ok(ids)) = &mut answers[n] {
            let added = std::mem::take(ids);
            *ids = existing;
            ids.extend(added);
        }
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(DetectJobError::Transient("not run".into()))))
        .collect()
}

/// The alerts of `items` that the log does not have yet: an alert's content is determined
/// by its rule and its event, so one already stored has the very same bytes.
fn new_alerts(
    p: &mut Platform,
    principal: &str,
    existing: &[String],
    items: Vec<NewItem>,
    why: &str,
) -> Result<Vec<NewItem>, DetectJobError> {
    let read = p
        .get_many(principal, existing, Some(why))
        .map_err(|e| DetectJobError::Transient(format!("reading the log's alerts: {e}")))?;
    let mut have = std::collections::HashSet::new();
    for r in read {
        let (_, content) =
            r.map_err(|e| DetectJobError::Permanent(format!("reading the log's alerts: {e}")))?;
        have.insert(content);
    }
    Ok(items
        .into_iter()
        .filter(|it| !have.contains(&it.content))
        .collect())
}

/// Stores the alerts of several logs: one commit for all the logs of each principal, or,
/// when that is refused (a log shredded meanwhile), log by log so the others still land.
fn store_alerts(
    p: &mut Platform,
    jobs: &[Job],
    made: Vec<(usize, Vec<NewItem>)>,
    answers: &mut [Option<Result<Vec<String>, DetectJobError>>],
) {
    // Each principal with the logs (job number, alerts) stored in their name.
    type Logs = Vec<(usize, Vec<NewItem>)>;
    let mut by_principal: Vec<(String, Logs)> = Vec::new();
    for (n, items) in made {
        let who = jobs[n].principal.clone();
        match by_principal.iter_mut().find(|(w, _)| *w == who) {
            Some((_, v)) => v.push((n, items)),
            None => by_principal.push((who, vec![(n, items)])),
        }
    }
    for (who, logs) in by_principal {
        let actor = Actor::Principal(who);
        let sources: Vec<(String, Vec<NewItem>)> = logs
            .iter()
            .map(|(n, items)| (jobs[*n].item.clone(), items.clone()))
            .collect();
        match p.derive_many(&actor, ALERT, sources) {
            Ok(ids) => {
                for ((n, _), ids) in logs.iter().zip(ids) {
                    answers[*n] = Some(Ok(ids));
                }
            }
            Err(_) => {
                for (n, items) in logs {
                    answers[n] = Some(p.derive(&actor, &jobs[n].item, ALERT, items).map_err(|e| {
                        DetectJobError::Transient(format!("storing the alerts: {e}"))
                    }));
                }
            }
        }
    }
}

/// The alert items one log makes under `engine`.
fn alerts_for(
    engine: &Engine,
    log_title: &str,
    content: Vec<u8>,
) -> Result<Vec<NewItem>, DetectJobError> {
    let mut scratch = engine.scratch();
    let mut hits: Vec<Hit> = Vec::new();
    let mut on_event = hunt::collect(engine, &mut scratch, &mut hits);
    let read = read::read_bytes(log_title, content, engine.mapping(), &mut on_event);
    drop(on_event);
    read.map_err(|e| DetectJobError::Permanent(format!("reading the log: {e}")))?;
    let correlations = hunt::correlate(engine, &hits);
    let mut items = Vec::new();
    for h in hits.iter().filter(|h| !engine.quiet(h.rule)) {
        items.push(alert_item(engine, log_title, h));
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
            "log": log_title,
            "group_by": group,
            "first": time_text(Some(c.fired.first)),
            "last": time_text(Some(c.fired.last)),
            "count": c.fired.count,
            "records": c.fired.events.iter().map(|&i| hits[i].event.origin.record).collect::<Vec<_>>(),
        });
        items.push(NewItem {
            title: format!("{log_title} alert {} {}.json", r.level.as_str(), r.title),
            content: body.to_string().into_bytes(),
        });
    }
    if items.len() > MAX_ALERTS {
        return Err(DetectJobError::Permanent(format!(
            "{} alerts, more than the {MAX_ALERTS} one log may make: check the rules",
            items.len()
        )));
    }
    Ok(items)
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
    let mut body = json!({
        "kind": "detection",
        "rule": {"id": r.id, "title": r.title, "level": r.level.as_str(), "tags": r.tags},
        "log": log_title,
        "record": h.event.origin.record,
        "time": time_text(h.event.time),
        "computer": computer,
        "fields": fields,
        "event": h.event.raw,
    });
    body["selectors"] = json!(crate::iocs::selectors(&body));
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
