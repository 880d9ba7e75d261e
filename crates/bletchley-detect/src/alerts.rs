//! The alerts a principal may see, read back from the store for the command line, the API
//! and the console alike: each through the gate (one audited batch read), most severe first,
//! with counts by level and by rule over exactly those.

use std::collections::BTreeMap;

use bletchley_store::{Platform, Result};
use serde_json::Value;

use crate::job::ALERT;
use crate::rule::Level;

/// One alert as its reader sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AlertView {
    /// The alert item.
    pub id: String,
    /// The log it was derived from.
    pub log: Option<String>,
    /// Its collection (the log's).
    pub collection: String,
    /// Its marking (the log's).
    pub marking: String,
    /// The rule's level.
    pub level: &'static str,
    /// `detection` or `correlation`.
    pub kind: Value,
    /// The rule: id, title, level, tags.
    pub rule: Value,
    /// When the event happened, as the log says.
    pub time: Value,
    /// The host that logged it.
    pub computer: Value,
    /// The record number in the log.
    pub record: Value,
    /// The selectors its event names (`host:…`, `user:…`, `hash:…`), as the index links them.
    pub selectors: Vec<String>,
}

/// How many alerts of each level, and of each rule.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct AlertCounts {
    /// By level name.
    pub by_level: BTreeMap<&'static str, usize>,
    /// By rule: id, title and count, most frequent first.
    pub by_rule: Vec<RuleCount>,
}

/// Alerts of one rule.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RuleCount {
    /// The rule's id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Alerts it raised that the reader may see.
    pub count: usize,
}

/// The alerts `who` may see, at `min` or above, most severe first; bulk collections only
/// with a justification. Every alert read is audited.
pub fn visible_alerts(
    p: &mut Platform,
    who: &str,
    min: Option<Level>,
    justification: Option<&str>,
) -> Result<Vec<AlertView>> {
    let listing = p.list(who, None, justification)?;
    let metas: Vec<_> = listing
        .items
        .into_iter()
        .filter(|m| m.derivation.as_deref() == Some(ALERT))
        .collect();
    let ids: Vec<String> = metas.iter().map(|m| m.id.clone()).collect();
    let read = p.get_many(who, &ids, justification)?;
    let mut out = Vec::new();
    for (m, got) in metas.into_iter().zip(read) {
        // An alert shredded or withdrawn between the listing and the read is not shown.
        let Ok((_, bytes)) = got else {
            continue;
        };
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let level = body["rule"]["level"]
            .as_str()
            .and_then(Level::parse)
            .unwrap_or(Level::Medium);
        if min.is_some_and(|min| level < min) {
            continue;
        }
        out.push((
            level,
            AlertView {
                id: m.id,
                log: m.derived_from,
                collection: m.collection,
                marking: m.marking,
                level: level.as_str(),
                kind: body["kind"].clone(),
                rule: body["rule"].clone(),
                time: body["time"].clone(),
                computer: body["computer"].clone(),
                record: body["record"].clone(),
                selectors: body["selectors"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect(),
            },
        ));
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.id.cmp(&b.1.id)));
    Ok(out.into_iter().map(|(_, a)| a).collect())
}

/// Counts of `alerts` by level and by rule.
pub fn counts(alerts: &[AlertView]) -> AlertCounts {
    let mut c = AlertCounts::default();
    let mut rules: BTreeMap<String, (String, usize)> = BTreeMap::new();
    for a in alerts {
        *c.by_level.entry(a.level).or_default() += 1;
        let id = a.rule["id"].as_str().unwrap_or_default().to_owned();
        let title = a.rule["title"].as_str().unwrap_or_default().to_owned();
        rules.entry(id).or_insert((title, 0)).1 += 1;
    }
    c.by_rule = rules
        .into_iter()
        .map(|(id, (title, count))| RuleCount { id, title, count })
        .collect();
    c.by_rule
        .sort_by(|a, b| b.count.cmp(&a.count).then(a.id.cmp(&b.id)));
    c
}
