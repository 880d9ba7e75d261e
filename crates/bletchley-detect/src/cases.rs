//! Triage cases: alerts grouped (by rule, host and time window, or by hand) into a case that
//! an analyst takes, works and closes.
//!
//! A case is an item of its alerts' collection, at the high-water mark of their markings
//! (rule 4), holding what it groups; everything that happens to it afterwards (assignment,
//! status, priority, notes) is an annotation on it, so a case is gated, sealed, audited,
//! replicated and shredded like any item, and its history cannot be rewritten: its state is
//! the fold of its annotations in order.

use std::collections::{BTreeMap, BTreeSet};

use bletchley_policy::{CollectionId, Marking};
use bletchley_store::{Error, IngestOptions, NewItem, Platform, Result};
use serde_json::{Value, json};

use crate::alerts::{AlertView, visible_alerts};
use crate::rule::Level;

/// How a case's item title starts.
const TITLE_PREFIX: &str = "case: ";

/// Where a case stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Opened, nobody working it yet.
    New,
    /// Someone is working it.
    InProgress,
    /// Closed: the alerts were an intrusion.
    ClosedTruePositive,
    /// Closed: the alerts were benign.
    ClosedFalsePositive,
}

impl Status {
    /// Parses the name used on the command line and in the API.
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "new" => Status::New,
            "in-progress" => Status::InProgress,
            "closed-true-positive" | "true-positive" => Status::ClosedTruePositive,
            "closed-false-positive" | "false-positive" => Status::ClosedFalsePositive,
            _ => return None,
        })
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::InProgress => "in-progress",
            Status::ClosedTruePositive => "closed-true-positive",
            Status::ClosedFalsePositive => "closed-false-positive",
        }
    }
}

/// A case as its reader sees it: what it groups and its state now.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Case {
    /// The case's item id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its collection (its alerts').
    pub collection: String,
    /// Its marking (the high-water mark of its alerts').
    pub marking: String,
    /// Who opened it, and when (Unix ms).
    pub opened_by: String,
    /// When it was opened.
    pub opened_ms: i64,
    /// The alert items it groups.
    pub alerts: Vec<String>,
    /// How they were grouped: rule, host, first and last time, or by hand.
    pub group: Value,
    /// The highest level among its alerts.
    pub level: String,
    /// Where it stands.
    pub status: Status,
    /// Who works it.
    pub assignee: Option<String>,
    /// Its priority (the highest alert level unless raised).
    pub priority: String,
    /// Tags put on it (by a playbook's `tag` step or by hand), in the order first put.
    pub tags: Vec<String>,
    /// Playbook steps waiting for a second responder's approval.
    pub pending: Vec<crate::playbook::Pending>,
    /// Every change and note, oldest first: (author, time, text).
    pub history: Vec<(String, i64, String)>,
}

/// How alerts are grouped into cases automatically.
#[derive(Clone, Debug)]
pub struct Grouping {
    /// One case per rule.
    pub by_rule: bool,
    /// One case per host.
    pub by_host: bool,
    /// Alerts further apart than this (from the first of a case) start a new case.
    pub window_ms: i64,
    /// Only alerts at this level or above.
    pub min_level: Option<Level>,
}

fn invalid(s: impl Into<String>) -> Error {
    Error::Invalid(s.into())
}

/// Opens a case by hand over `alert_ids` (all of one collection, each readable by `who`).
pub fn open_case(
    p: &mut Platform,
    who: &str,
    title: &str,
    alert_ids: &[String],
    justification: Option<&str>,
) -> Result<String> {
    if alert_ids.is_empty() {
        return Err(invalid("a case needs at least one alert"));
    }
    let all = visible_alerts(p, who, None, justification)?;
    let mut chosen = Vec::new();
    for id in alert_ids {
        match all.iter().find(|a| &a.id == id) {
            Some(a) => chosen.push(a.clone()),
            None => {
                return Err(invalid(format!("{id} is not an alert you may see")));
            }
        }
    }
    let group = json!({ "by": "hand" });
    store_case(p, who, title, &chosen, group, justification)
}

/// Groups the alerts of `collection` that `who` may see and that no case holds yet into new
/// cases, as `grouping` says. Returns the new cases' ids.
pub fn open_cases(
    p: &mut Platform,
    who: &str,
    collection: &str,
    grouping: &Grouping,
    justification: Option<&str>,
) -> Result<Vec<String>> {
    if grouping.window_ms <= 0 {
        return Err(invalid("the grouping window must be positive"));
    }
    let held: BTreeSet<String> = list_cases(p, who, justification)?
        .into_iter()
        .flat_map(|c| c.alerts)
        .collect();
    let mut alerts: Vec<AlertView> = visible_alerts(p, who, grouping.min_level, justification)?
        .into_iter()
        .filter(|a| a.collection == collection && !held.contains(&a.id))
        .collect();
    alerts.sort_by(|a, b| {
        (a.time.as_str().unwrap_or(""), &a.id).cmp(&(b.time.as_str().unwrap_or(""), &b.id))
    });
    // (rule, host) -> the cases of that key, each (its first alert's time in ms, its alerts).
    type Window = (i64, Vec<AlertView>);
    let mut groups: BTreeMap<(String, String), Vec<Window>> = BTreeMap::new();
    for a in alerts {
        let rule = if grouping.by_rule {
            a.rule["id"].as_str().unwrap_or_default().to_owned()
        } else {
            String::new()
        };
        let host = if grouping.by_host {
            a.computer.as_str().unwrap_or_default().to_owned()
        } else {
            String::new()
        };
        let t = a.time.as_str().and_then(parse_ms).unwrap_or(0);
        let cases = groups.entry((rule, host)).or_default();
        match cases.last_mut() {
            Some((first, members)) if t - *first <= grouping.window_ms => members.push(a),
            _ => cases.push((t, vec![a])),
        }
    }
    let mut ids = Vec::new();
    for ((rule, host), cases) in groups {
        for (_, members) in cases {
            let rule_title = members[0].rule["title"]
                .as_str()
                .unwrap_or("alerts")
                .to_owned();
            let first = members[0].time.clone();
            let last = members[members.len() - 1].time.clone();
            let title = match (grouping.by_rule, grouping.by_host) {
                (true, true) => format!("{rule_title} on {host}"),
                (true, false) => rule_title,
                (false, true) => format!("alerts on {host}"),
                (false, false) => format!("alerts in {collection}"),
            };
            let group = json!({
                "by": "rule-host-window",
                "rule": if grouping.by_rule { Value::String(rule.clone()) } else { Value::Null },
                "host": if grouping.by_host { Value::String(host.clone()) } else { Value::Null },
                "first": first,
                "last": last,
            });
            ids.push(store_case(p, who, &title, &members, group, justification)?);
        }
    }
    Ok(ids)
}

fn store_case(
    p: &mut Platform,
    who: &str,
    title: &str,
    alerts: &[AlertView],
    group: Value,
    justification: Option<&str>,
) -> Result<String> {
    let title = title.trim();
    if title.is_empty() || title.len() > 200 {
        return Err(invalid("a case's title is 1 to 200 bytes"));
    }
    let collection = alerts[0].collection.clone();
    if alerts.iter().any(|a| a.collection != collection) {
        return Err(invalid(
            "a case holds the alerts of one collection: open one case per collection",
        ));
    }
    let markings: Vec<Marking> = alerts
        .iter()
        .map(|a| Marking::parse(&a.marking))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| Error::Layout(format!("an alert's marking: {e}")))?;
    let marking = Marking::high_water_mark(&markings, p.home())
        .ok_or_else(|| Error::Layout("alerts of incompatible markings".into()))?;
    let level = alerts
        .iter()
        .filter_map(|a| Level::parse(a.level))
        .max()
        .unwrap_or(Level::Medium);
    let body = json!({
        "kind": "case",
        "title": title,
        "alerts": alerts.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        "group": group,
        "level": level.as_str(),
    });
    let opts = IngestOptions {
        collection,
        marking,
        authority: None,
        retain_until_ms: None,
        justification: justification.map(str::to_owned),
        priority: Default::default(),
    };
    let mut ids = p.ingest(
        who,
        &opts,
        vec![NewItem {
            title: format!("{TITLE_PREFIX}{title}"),
            content: body.to_string().into_bytes(),
        }],
    )?;
    ids.pop()
        .ok_or_else(|| Error::Layout("the case was not stored".into()))
}

/// The cases `who` may see, newest first, each with its state now.
pub fn list_cases(p: &mut Platform, who: &str, justification: Option<&str>) -> Result<Vec<Case>> {
    let listing = p.list(who, None, justification)?;
    let ids: Vec<String> = listing
        .items
        .iter()
        .filter(|m| m.derived_from.is_none() && m.title.starts_with(TITLE_PREFIX))
        .map(|m| m.id.clone())
        .collect();
    let mut out = Vec::new();
    for id in ids {
        match case(p, who, &id, justification) {
            Ok(c) => out.push(c),
            // Not a case after all (an item someone titled so), or gone meanwhile.
            Err(Error::Invalid(_) | Error::NotFoundOrNotPermitted { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| b.opened_ms.cmp(&a.opened_ms).then(a.id.cmp(&b.id)));
    Ok(out)
}

/// One case with its state now: its item and every annotation on it, read through the gate.
pub fn case(p: &mut Platform, who: &str, id: &str, justification: Option<&str>) -> Result<Case> {
    let (meta, bytes) = p.get(who, id, justification)?;
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if body["kind"] != "case" || meta.derived_from.is_some() {
        return Err(invalid(format!("{id} is not a case")));
    }
    let level = body["level"].as_str().unwrap_or("medium").to_owned();
    let mut c = Case {
        id: meta.id,
        title: body["title"].as_str().unwrap_or_default().to_owned(),
        collection: meta.collection,
        marking: meta.marking,
        opened_by: meta.ingested_by,
        opened_ms: meta.created_ms,
        alerts: body["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        group: body["group"].clone(),
        priority: level.clone(),
        level,
        status: Status::New,
        assignee: None,
        tags: Vec::new(),
        pending: Vec::new(),
        history: Vec::new(),
    };
    for n in p.annotations(who, id, justification)? {
        if let Some(s) = n.text.strip_prefix("status: ").and_then(Status::parse) {
            c.status = s;
        } else if let Some(a) = n.text.strip_prefix("assignee: ") {
            c.assignee = Some(a.to_owned());
        } else if let Some(l) = n.text.strip_prefix("priority: ").and_then(Level::parse) {
            c.priority = l.as_str().to_owned();
        } else if let Some(t) = n.text.strip_prefix("tag: ")
            && !c.tags.iter().any(|x| x == t)
        {
            c.tags.push(t.to_owned());
        }
        c.history.push((n.author, n.created_ms, n.text));
    }
    c.pending = crate::playbook::pending(&c.history);
    Ok(c)
}

/// A change to a case.
#[derive(Clone, Debug)]
pub enum Change {
    /// Give it to a principal (who must be able to see it).
    Assign(String),
    /// Move it on.
    Status(Status),
    /// Raise or lower its priority.
    Priority(Level),
    /// A note.
    Note(String),
    /// A tag.
    Tag(String),
}

/// Records `change` on case `id` as an annotation by `who` (who must be able to read it).
pub fn change_case(
    p: &mut Platform,
    who: &str,
    id: &str,
    change: &Change,
    justification: Option<&str>,
) -> Result<()> {
    let c = case(p, who, id, justification)?;
    let text = change_text(p, &c, change)?;
    p.annotate(who, id, who, &text, justification)?;
    Ok(())
}

/// The annotation that records `change` on `c`, once the change is checked (an assignee who
/// may see the case, a non-empty note or tag).
pub(crate) fn change_text(p: &Platform, c: &Case, change: &Change) -> Result<String> {
    Ok(match change {
        Change::Assign(to) => {
            check_assignee(p, c, to)?;
            format!("assignee: {to}")
        }
        Change::Status(s) => format!("status: {}", s.as_str()),
        Change::Priority(l) => format!("priority: {}", l.as_str()),
        Change::Note(t) => {
            let t = t.trim();
            if t.is_empty() {
                return Err(invalid("an empty note"));
            }
            format!("note: {t}")
        }
        Change::Tag(t) => {
            let t = t.trim();
            if t.is_empty() || t.len() > 100 || t.contains('\n') {
                return Err(invalid("a tag is one line of 1 to 100 bytes"));
            }
            format!("tag: {t}")
        }
    })
}

/// Whether `to` may be given case `c`: a principal who may see it. One answer for a name
/// that is no principal and for one who may not see the case: whoever may read a case learns
/// nothing of who else exists.
fn check_assignee(p: &Platform, c: &Case, to: &str) -> Result<()> {
    let refused = || {
        invalid(format!(
            "{to} may not see this case ({}, in {}), or is no principal: assign it to someone who may",
            c.marking, c.collection
        ))
    };
    let gate = p.gate(to).map_err(|_| refused())?;
    let marking = Marking::parse(&c.marking)
        .map_err(|e| Error::Layout(format!("the case's marking: {e}")))?;
    let coll = p
        .collections()?
        .into_iter()
        .find(|x| format!("{}/{}", x.agency, x.name) == c.collection)
        .map(|x| x.id)
        .unwrap_or(CollectionId(0));
    if gate.decide(&marking, coll).is_err() {
        return Err(refused());
    }
    Ok(())
}

/// Unix milliseconds of an RFC 3339 time as alerts carry it.
fn parse_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The indicators of compromise of case `id`: every hash, address, domain, host, account and
/// command line its alerts' events name (each alert read through the gate).
pub fn case_iocs(
    p: &mut Platform,
    who: &str,
    id: &str,
    justification: Option<&str>,
) -> Result<(Case, Vec<crate::iocs::Indicator>)> {
    let c = case(p, who, id, justification)?;
    let read = p.get_many(who, &c.alerts, justification)?;
    let bodies: Vec<(String, Value)> = c
        .alerts
        .iter()
        .zip(read)
        .filter_map(|(a, r)| {
            let (_, bytes) = r.ok()?;
            Some((a.clone(), serde_json::from_slice(&bytes).ok()?))
        })
        .collect();
    let iocs = crate::iocs::indicators(&bodies);
    Ok((c, iocs))
}
