//! Response playbooks: what an agency does when a case opens, written down once and run the
//! same way every time.
//!
//! A playbook is a YAML file kept as an item of the collection `AGENCY/playbooks` (sealed,
//! gated, audited like any item), titled `NAME vN.yml`: adding a playbook of a name that
//! exists stores the next version beside the old ones, and a run names the exact version it
//! followed. A playbook has a trigger (a rule, a level, a tag of the case's alerts; or none,
//! by hand only) and steps that act on the case: enrich it from the platform, tag it, raise
//! its priority, assign it, set its status, note on it, and store its indicators of
//! compromise as containment output (CSV, a STIX 2.1 bundle, a block list) derived from the
//! case. No step reaches outside the platform: the output is an item, read through the gate.
//!
//! Every step is recorded on the case as an annotation (`playbook: NAME vN run R step K/M
//! ACTION: …`), so a run is audited, sealed and replicated like the case, and its state is the
//! fold of those lines. A step marked `approval: true` stops the run until a *second*
//! principal with the responder role approves it ([`approve`]); the run then goes on as the
//! approver. A dry run reads the case and says what each step would do, writing nothing.

use std::collections::BTreeSet;

use bletchley_store::{Actor, Error, IngestOptions, NewItem, Platform, Result};
use serde::Deserialize;

use crate::alerts::{AlertView, visible_alerts};
use crate::cases::{self, Case, Change, Status};
use crate::rule::Level;

/// The collection that keeps an agency's playbooks.
pub fn playbooks_collection(agency: &str) -> String {
    format!("{agency}/playbooks")
}

/// How containment output is derived from its case.
pub const CONTAINMENT: &str = "containment";

/// The most steps one playbook has.
const MAX_STEPS: usize = 50;

/// The most selectors one enrichment looks up.
const MAX_ENRICH_SELECTORS: usize = 50;

/// The most entries of each list an enrichment note names.
const MAX_LISTED: usize = 10;

/// How annotations recording playbook runs start.
const LINE_PREFIX: &str = "playbook: ";

/// When a playbook runs by itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Trigger {
    /// A rule (its id or title) one of the case's alerts came from.
    pub rule: Option<String>,
    /// The least level of one of the case's alerts.
    pub level: Option<Level>,
    /// A tag (`attack.t1059.001`) of one of the case's alerts' rules.
    pub tag: Option<String>,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case", tag = "action")]
pub enum Action {
    /// Look the case's selectors up in the platform: the other items that name them, their
    /// neighbours in the link graph, and earlier alerts on its hosts; noted on the case.
    Enrich,
    /// Tag the case.
    Tag {
        /// The tag.
        tag: String,
    },
    /// Set the case's priority.
    Priority {
        /// The level.
        level: Level,
    },
    /// Give the case to a principal who may see it.
    Assign {
        /// Who.
        to: String,
    },
    /// Move the case on.
    Status {
        /// To what.
        status: Status,
    },
    /// Note something on the case.
    Note {
        /// The note.
        text: String,
    },
    /// Store the case's indicators of compromise as an item derived from the case.
    Iocs {
        /// `csv`, `stix` or `block`.
        format: IocFormat,
    },
}

impl Action {
    /// The action's name, as written in the playbook.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Enrich => "enrich",
            Action::Tag { .. } => "tag",
            Action::Priority { .. } => "priority",
            Action::Assign { .. } => "assign",
            Action::Status { .. } => "status",
            Action::Note { .. } => "note",
            Action::Iocs { .. } => "iocs",
        }
    }
}

/// A form of containment output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IocFormat {
    /// CSV, one indicator a row (formula-safe).
    Csv,
    /// A STIX 2.1 bundle of indicators.
    Stix,
    /// Hosts, addresses, domains and hashes, one a line.
    Block,
}

impl IocFormat {
    fn parse(s: &str) -> Option<IocFormat> {
        Some(match s {
            "csv" => IocFormat::Csv,
            "stix" => IocFormat::Stix,
            "block" => IocFormat::Block,
            _ => return None,
        })
    }

    fn file_suffix(self) -> &'static str {
        match self {
            IocFormat::Csv => "iocs.csv",
            IocFormat::Stix => "iocs.stix.json",
            IocFormat::Block => "blocklist.txt",
        }
    }
}

/// One step.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// What it does.
    #[serde(flatten)]
    pub action: Action,
    /// Whether it waits for a second responder's approval.
    pub approval: bool,
}

/// A playbook, as stored.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Playbook {
    /// The item that holds this version (empty before it is stored).
    pub id: String,
    /// Its name: lower-case letters, digits and dashes.
    pub name: String,
    /// Its version: 1 for the first stored under the name, then one more each time.
    pub version: u32,
    /// What it is for.
    pub description: String,
    /// When it runs by itself; `None`: by hand only.
    pub trigger: Option<Trigger>,
    /// Its steps, in order.
    pub steps: Vec<Step>,
    /// The item's marking.
    pub marking: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: String,
    #[serde(default)]
    description: String,
    trigger: Option<RawTrigger>,
    steps: Vec<RawStep>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrigger {
    rule: Option<String>,
    level: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    action: String,
    tag: Option<String>,
    level: Option<String>,
    to: Option<String>,
    status: Option<String>,
    text: Option<String>,
    format: Option<String>,
    #[serde(default)]
    approval: bool,
}

/// Why a playbook file was refused, naming the file (and the step).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {message}")]
pub struct PlaybookError {
    /// The file.
    pub file: String,
    /// What is wrong, and where.
    pub message: String,
}

fn valid_name(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
}

/// Reads a playbook file, checking every field: an unknown key, action, level, status or
/// format, a step without what its action needs, is an error naming the file and the step.
pub fn parse(file: &str, text: &str) -> std::result::Result<Playbook, PlaybookError> {
    let err = |message: String| PlaybookError {
        file: file.to_owned(),
        message,
    };
    // The YAML error names the line and column itself.
    let raw: RawPlaybook = serde_yaml_ng::from_str(text).map_err(|e| err(e.to_string()))?;
    if !valid_name(&raw.name) {
        return Err(err(format!(
            "name {:?}: 1 to 64 lower-case letters, digits and dashes",
            raw.name
        )));
    }
    let trigger = match raw.trigger {
        None => None,
        Some(t) => {
            let level = match t.level.as_deref() {
                None => None,
                Some(l) => Some(Level::parse(l).ok_or_else(|| {
                    err(format!(
                        "trigger level {l:?}: expected informational, low, medium, high or critical"
                    ))
                })?),
            };
            if t.rule.is_none() && level.is_none() && t.tag.is_none() {
                return Err(err(
                    "a trigger names a rule, a level or a tag (leave it out to run by hand only)"
                        .into(),
                ));
            }
            Some(Trigger {
                rule: t.rule,
                level,
                tag: t.tag.map(|t| t.to_ascii_lowercase()),
            })
        }
    };
    if raw.steps.is_empty() || raw.steps.len() > MAX_STEPS {
        return Err(err(format!("a playbook has 1 to {MAX_STEPS} steps")));
    }
    let mut steps = Vec::new();
    for (i, s) in raw.steps.into_iter().enumerate() {
        let at = |m: String| err(format!("step {} ({}): {m}", i + 1, s.action));
        let need = |v: &Option<String>, key: &str| {
            v.clone()
                .filter(|x| !x.trim().is_empty())
                .ok_or_else(|| at(format!("needs `{key}`")))
        };
        let given: Vec<&str> = [
            ("tag", s.tag.is_some()),
            ("level", s.level.is_some()),
            ("to", s.to.is_some()),
            ("status", s.status.is_some()),
            ("text", s.text.is_some()),
            ("format", s.format.is_some()),
        ]
        .iter()
        .filter(|(_, g)| *g)
        .map(|(k, _)| *k)
        .collect();
        let (action, takes) = match s.action.as_str() {
            "enrich" => (Action::Enrich, ""),
            "tag" => (
                Action::Tag {
                    tag: need(&s.tag, "tag")?,
                },
                "tag",
            ),
            "priority" => {
                let l = need(&s.level, "level")?;
                let level = Level::parse(&l).ok_or_else(|| {
                    at(format!(
                        "level {l:?}: expected informational, low, medium, high or critical"
                    ))
                })?;
                (Action::Priority { level }, "level")
            }
            "assign" => (
                Action::Assign {
                    to: need(&s.to, "to")?,
                },
                "to",
            ),
            "status" => {
                let v = need(&s.status, "status")?;
                let status = Status::parse(&v).ok_or_else(|| {
                    at(format!(
                        "status {v:?}: expected new, in-progress, closed-true-positive or closed-false-positive"
                    ))
                })?;
                (Action::Status { status }, "status")
            }
            "note" => (
                Action::Note {
                    text: need(&s.text, "text")?,
                },
                "text",
            ),
            "iocs" => {
                let f = need(&s.format, "format")?;
                let format = IocFormat::parse(&f)
                    .ok_or_else(|| at(format!("format {f:?}: expected csv, stix or block")))?;
                (Action::Iocs { format }, "format")
            }
            other => {
                return Err(err(format!(
                    "step {} action {other:?}: expected enrich, tag, priority, assign, status, note or iocs",
                    i + 1
                )));
            }
        };
        if let Some(extra) = given.iter().find(|k| **k != takes) {
            return Err(at(format!("does not take `{extra}`")));
        }
        steps.push(Step {
            action,
            approval: s.approval,
        });
    }
    Ok(Playbook {
        id: String::new(),
        name: raw.name,
        version: 0,
        description: raw.description,
        trigger,
        steps,
        marking: String::new(),
    })
}

/// `NAME vN.yml`, the title a version is stored under, read back.
fn name_version(title: &str) -> Option<(&str, u32)> {
    let (name, v) = title.strip_suffix(".yml")?.rsplit_once(" v")?;
    Some((name, v.parse().ok()?))
}

fn invalid(s: impl Into<String>) -> Error {
    Error::Invalid(s.into())
}

/// Every playbook version, and the stored items that are not playbooks (id, why).
pub type Shelf = (Vec<Playbook>, Vec<(String, String)>);

/// Every playbook version `who` may see in its agency's collection, by name then version;
/// and the stored items that are not playbooks (id, why), which are left out.
pub fn list(p: &mut Platform, who: &str, justification: Option<&str>) -> Result<Shelf> {
    let agency = p.principal(who)?.agency.clone();
    let coll = playbooks_collection(&agency);
    if !p
        .collections()?
        .iter()
        .any(|c| format!("{}/{}", c.agency, c.name) == coll)
    {
        return Ok((Vec::new(), Vec::new()));
    }
    let listing = p.list(who, Some(&coll), justification)?;
    let metas: Vec<_> = listing
        .items
        .into_iter()
        .filter(|m| m.derived_from.is_none())
        .collect();
    let ids: Vec<String> = metas.iter().map(|m| m.id.clone()).collect();
    let read = p.get_many(who, &ids, justification)?;
    let (mut out, mut broken) = (Vec::new(), Vec::new());
    for (m, got) in metas.into_iter().zip(read) {
        let Ok((_, bytes)) = got else { continue };
        let parsed = std::str::from_utf8(&bytes)
            .map_err(|_| "not UTF-8".to_owned())
            .and_then(|t| parse(&m.title, t).map_err(|e| e.to_string()));
        match (parsed, name_version(&m.title)) {
            (Ok(mut pb), Some((name, version))) if name == pb.name => {
                pb.id = m.id;
                pb.version = version;
                pb.marking = m.marking;
                out.push(pb);
            }
            (Ok(_), _) => broken.push((m.id, format!("{}: not titled NAME vN.yml", m.title))),
            (Err(e), _) => broken.push((m.id, e)),
        }
    }
    out.sort_by(|a, b| (&a.name, a.version).cmp(&(&b.name, b.version)));
    Ok((out, broken))
}

/// The latest version of each playbook `who` may see.
pub fn latest(p: &mut Platform, who: &str, justification: Option<&str>) -> Result<Vec<Playbook>> {
    let (all, _) = list(p, who, justification)?;
    let mut out: Vec<Playbook> = Vec::new();
    for pb in all {
        match out.last_mut() {
            Some(last) if last.name == pb.name => *last = pb,
            _ => out.push(pb),
        }
    }
    Ok(out)
}

/// One playbook by name: the version asked for, else the latest `who` may see.
pub fn find(
    p: &mut Platform,
    who: &str,
    name: &str,
    version: Option<u32>,
    justification: Option<&str>,
) -> Result<Playbook> {
    let (all, _) = list(p, who, justification)?;
    all.into_iter()
        .filter(|pb| pb.name == name && version.is_none_or(|v| v == pb.version))
        .max_by_key(|pb| pb.version)
        .ok_or_else(|| {
            invalid(match version {
                Some(v) => format!("no playbook {name} version {v} that you may see"),
                None => format!("no playbook {name} that you may see"),
            })
        })
}

/// Stores playbook file `file` (its text `text`) in `who`'s agency's collection at
/// `marking`, as the next version of its name. Returns the stored playbook.
pub fn add(
    p: &mut Platform,
    who: &str,
    file: &str,
    text: &str,
    marking: bletchley_policy::Marking,
) -> Result<Playbook> {
    let mut pb = parse(file, text).map_err(|e| invalid(e.to_string()))?;
    let agency = p.principal(who)?.agency.clone();
    let coll = playbooks_collection(&agency);
    if !p
        .collections()?
        .iter()
        .any(|c| format!("{}/{}", c.agency, c.name) == coll)
    {
        return Err(invalid(format!(
            "agency {agency} keeps its playbooks in the collection {coll}, which does not exist: bletchley collection add {coll}"
        )));
    }
    let (all, _) = list(p, who, None)?;
    pb.version = all
        .iter()
        .filter(|x| x.name == pb.name)
        .map(|x| x.version)
        .max()
        .unwrap_or(0)
        + 1;
    pb.marking = marking.to_string();
    let opts = IngestOptions {
        collection: coll,
        marking,
        authority: None,
        retain_until_ms: None,
        justification: None,
        priority: Default::default(),
    };
    let mut ids = p.ingest(
        who,
        &opts,
        vec![NewItem {
            title: format!("{} v{}.yml", pb.name, pb.version),
            content: text.as_bytes().to_vec(),
        }],
    )?;
    pb.id = ids
        .pop()
        .ok_or_else(|| Error::Layout("the playbook was not stored".into()))?;
    Ok(pb)
}

/// What the platform says about one selector, for an enrichment.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Sighting {
    /// The selector (`host:ws-01`), as the index keeps it.
    pub selector: String,
    /// Visible items that name it.
    pub items: Vec<String>,
    /// Selectors linked to it in the visible link graph.
    pub neighbours: Vec<String>,
}

/// The platform's search and link graph, as an enrichment step uses them (the index lives
/// beside this crate, so its caller lends it). Gated and audited as any search by `who`.
pub trait Lookup {
    /// Each of `selectors` as the platform knows it, for `who`.
    fn look_up(
        &mut self,
        p: &mut Platform,
        who: &str,
        selectors: &[String],
        justification: Option<&str>,
    ) -> Result<Vec<Sighting>>;
}

/// How a step went.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Done.
    Done,
    /// Dry run: what it would do.
    WouldDo,
    /// Waiting for a second responder (the run stopped here).
    AwaitingApproval,
    /// Not reached (dry run past an approval, or the run stopped before it).
    NotReached,
}

/// One step of a run, as reported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StepReport {
    /// 1-based.
    pub step: usize,
    /// The action's name.
    pub action: &'static str,
    /// How it went.
    pub state: StepState,
    /// What it did (or would do).
    pub detail: String,
}

/// A run, as reported.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RunReport {
    /// The run's id (empty for a dry run).
    pub run: String,
    /// The playbook.
    pub playbook: String,
    /// Its version.
    pub version: u32,
    /// The case.
    pub case: String,
    /// Whether nothing was written.
    pub dry_run: bool,
    /// Each step.
    pub steps: Vec<StepReport>,
}

/// A step waiting for approval, as the case's history shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Pending {
    /// The run.
    pub run: String,
    /// The playbook and version.
    pub playbook: String,
    /// Its version.
    pub version: u32,
    /// The waiting step (1-based).
    pub step: usize,
    /// Its action's name.
    pub action: String,
    /// Who started the run.
    pub started_by: String,
}

/// One parsed run line: `playbook: NAME vN run R REST`.
struct RunLine<'a> {
    name: &'a str,
    version: u32,
    run: &'a str,
    rest: &'a str,
}

fn run_line(text: &str) -> Option<RunLine<'_>> {
    let t = text.strip_prefix(LINE_PREFIX)?;
    let (name, t) = t.split_once(' ')?;
    let (v, t) = t.split_once(' ')?;
    let t = t.strip_prefix("run ")?;
    let (run, rest) = t.split_once(' ')?;
    Some(RunLine {
        name,
        version: v.strip_prefix('v')?.parse().ok()?,
        run,
        rest,
    })
}

/// `step K/M ACTION: STATE` read back: (K, ACTION, STATE).
fn step_line(rest: &str) -> Option<(usize, &str, &str)> {
    let t = rest.strip_prefix("step ")?;
    let (km, t) = t.split_once(' ')?;
    let (k, _) = km.split_once('/')?;
    let (action, state) = t.split_once(": ")?;
    Some((k.parse().ok()?, action, state))
}

/// The steps waiting for approval in a case's `history`: a run whose last line is a step
/// awaiting approval.
pub fn pending(history: &[(String, i64, String)]) -> Vec<Pending> {
    // run -> (started_by, last line's pending step if any)
    let mut runs: Vec<(String, Option<Pending>)> = Vec::new();
    for (author, _, text) in history {
        let Some(l) = run_line(text) else { continue };
        let slot = match runs.iter().position(|(r, _)| r == l.run) {
            Some(i) => i,
            None => {
                runs.push((l.run.to_owned(), None));
                runs.len() - 1
            }
        };
        runs[slot].1 = match step_line(l.rest) {
            Some((k, action, "awaiting approval")) => Some(Pending {
                run: l.run.to_owned(),
                playbook: l.name.to_owned(),
                version: l.version,
                step: k,
                action: action.to_owned(),
                started_by: started_by(history, l.run).unwrap_or_else(|| author.clone()),
            }),
            _ => None,
        };
    }
    runs.into_iter().filter_map(|(_, p)| p).collect()
}

/// Who started run `run`: the author of its `started` line.
fn started_by(history: &[(String, i64, String)], run: &str) -> Option<String> {
    history.iter().find_map(|(author, _, text)| {
        let l = run_line(text)?;
        (l.run == run && l.rest.starts_with("started")).then(|| author.clone())
    })
}

/// Whether `pb`'s trigger fires for a case of `alerts`.
pub fn triggered(pb: &Playbook, alerts: &[&AlertView]) -> bool {
    let Some(t) = &pb.trigger else { return false };
    alerts.iter().any(|a| {
        let rule_ok = t.rule.as_ref().is_none_or(|r| {
            a.rule["id"].as_str() == Some(r.as_str()) || a.rule["title"].as_str() == Some(r)
        });
        let level_ok = t
            .level
            .is_none_or(|l| Level::parse(a.level).is_some_and(|x| x >= l));
        let tag_ok = t.tag.as_ref().is_none_or(|tag| {
            a.rule["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
                .any(|x| x.eq_ignore_ascii_case(tag))
        });
        rule_ok && level_ok && tag_ok
    })
}

/// A triggered playbook that could not run on a case (nothing of it was written: every step
/// is checked first).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NotRun {
    /// The playbook.
    pub playbook: String,
    /// The case.
    pub case: String,
    /// Why.
    pub error: String,
}

/// What the triggers did for new cases.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Triggered {
    /// The runs, each with its report.
    pub runs: Vec<RunReport>,
    /// The playbooks that fired but could not run (an assignee who may not see the case).
    pub not_run: Vec<NotRun>,
}

/// Runs the playbooks whose trigger fires for each of `cases` (just opened by `who`): the
/// latest version of each, as `who`. A playbook that cannot run on a case is reported, not
/// an error: the cases stand, and the other playbooks run.
pub fn run_triggered(
    p: &mut Platform,
    who: &str,
    lookup: &mut dyn Lookup,
    case_ids: &[String],
    justification: Option<&str>,
) -> Result<Triggered> {
    let mut out = Triggered::default();
    if case_ids.is_empty() {
        return Ok(out);
    }
    let books: Vec<Playbook> = latest(p, who, justification)?
        .into_iter()
        .filter(|pb| pb.trigger.is_some())
        .collect();
    if books.is_empty() {
        return Ok(out);
    }
    let alerts = visible_alerts(p, who, None, justification)?;
    for id in case_ids {
        let c = cases::case(p, who, id, justification)?;
        let mine: Vec<&AlertView> = alerts.iter().filter(|a| c.alerts.contains(&a.id)).collect();
        for pb in books.iter().filter(|pb| triggered(pb, &mine)) {
            match run(p, who, lookup, pb, id, false, justification) {
                Ok(r) => out.runs.push(r),
                // The store failing is the caller's to hear; a step refused is the playbook's.
                Err(e @ (Error::Catalog(_) | Error::Audit(_) | Error::Io { .. })) => {
                    return Err(e);
                }
                Err(e) => out.not_run.push(NotRun {
                    playbook: format!("{} v{}", pb.name, pb.version),
                    case: id.clone(),
                    error: e.to_string(),
                }),
            }
        }
    }
    Ok(out)
}

/// Runs playbook `pb` on case `case_id` as `who` (or, with `dry_run`, says what it would do
/// and writes nothing). The run stops at a step that needs approval.
pub fn run(
    p: &mut Platform,
    who: &str,
    lookup: &mut dyn Lookup,
    pb: &Playbook,
    case_id: &str,
    dry_run: bool,
    justification: Option<&str>,
) -> Result<RunReport> {
    let c = cases::case(p, who, case_id, justification)?;
    let mut report = RunReport {
        run: String::new(),
        playbook: pb.name.clone(),
        version: pb.version,
        case: c.id.clone(),
        dry_run,
        steps: Vec::new(),
    };
    if dry_run {
        let mut waiting = false;
        for (i, s) in pb.steps.iter().enumerate() {
            let detail = plan(p, &c, s)?;
            let state = if waiting {
                StepState::NotReached
            } else if s.approval {
                waiting = true;
                StepState::AwaitingApproval
            } else {
                StepState::WouldDo
            };
            report.steps.push(StepReport {
                step: i + 1,
                action: s.action.name(),
                state,
                detail,
            });
        }
        return Ok(report);
    }
    // Every step is checked before the first is done, so a playbook that cannot finish
    // (an assignee who may not see the case) changes nothing.
    for s in &pb.steps {
        plan(p, &c, s)?;
    }
    let run_id = new_run_id(&c.id, &pb.id);
    report.run = run_id.clone();
    let head = format!("{LINE_PREFIX}{} v{} run {run_id}", pb.name, pb.version);
    p.annotate(
        who,
        &c.id,
        who,
        &format!("{head} started: playbook item {}", pb.id),
        justification,
    )?;
    continue_run(
        p,
        who,
        lookup,
        pb,
        &c.id,
        &head,
        0,
        false,
        justification,
        &mut report,
    )?;
    Ok(report)
}

/// Approves the step that run `run_id` of case `case_id` waits at, as `who` (a responder of
/// the starter's agency who is not the starter), and goes on with the run as `who`.
pub fn approve(
    p: &mut Platform,
    who: &str,
    lookup: &mut dyn Lookup,
    case_id: &str,
    run_id: &str,
    justification: Option<&str>,
) -> Result<RunReport> {
    let c = cases::case(p, who, case_id, justification)?;
    let waiting = c
        .pending
        .iter()
        .find(|x| x.run == run_id)
        .cloned()
        .ok_or_else(|| {
            invalid(format!(
                "no step of run {run_id} waits for approval on case {case_id}"
            ))
        })?;
    let me = p.acting(who)?.clone();
    let refused = || Error::RoleRequired {
        principal: who.to_owned(),
        role: "responder",
        act: "approve a playbook step that another principal of their agency started (two persons)",
    };
    let starter = p
        .principal(&waiting.started_by)
        .map_err(|_| refused())?
        .clone();
    if !me.may_approve_response(&starter) {
        return Err(refused());
    }
    // The version the run started with, by the item its start line names.
    let item = c
        .history
        .iter()
        .find_map(|(_, _, t)| {
            let l = run_line(t)?;
            (l.run == run_id).then_some(())?;
            l.rest
                .strip_prefix("started: playbook item ")
                .map(str::to_owned)
        })
        .ok_or_else(|| Error::Layout(format!("run {run_id} has no start line")))?;
    let (all, _) = list(p, who, justification)?;
    let pb = all.into_iter().find(|pb| pb.id == item).ok_or_else(|| {
        invalid(format!(
            "playbook item {item} of run {run_id} is gone or not yours to see"
        ))
    })?;
    let k = waiting.step;
    let step = pb.steps.get(k.wrapping_sub(1)).ok_or_else(|| {
        Error::Layout(format!(
            "run {run_id} waits at step {k}, which {} v{} lacks",
            pb.name, pb.version
        ))
    })?;
    plan(p, &c, step)?;
    let head = format!("{LINE_PREFIX}{} v{} run {run_id}", pb.name, pb.version);
    p.annotate(
        who,
        &c.id,
        who,
        &format!(
            "{head} step {k}/{} {}: approved",
            pb.steps.len(),
            step.action.name()
        ),
        justification,
    )?;
    let mut report = RunReport {
        run: run_id.to_owned(),
        playbook: pb.name.clone(),
        version: pb.version,
        case: c.id.clone(),
        dry_run: false,
        steps: Vec::new(),
    };
    continue_run(
        p,
        who,
        lookup,
        &pb,
        &c.id,
        &head,
        k - 1,
        true,
        justification,
        &mut report,
    )?;
    Ok(report)
}

/// Does the steps of `pb` from index `from` on (the first already approved when
/// `approved`), recording each on the case; stops at the next step that needs approval.
#[allow(clippy::too_many_arguments)]
fn continue_run(
    p: &mut Platform,
    who: &str,
    lookup: &mut dyn Lookup,
    pb: &Playbook,
    case_id: &str,
    head: &str,
    from: usize,
    approved: bool,
    justification: Option<&str>,
    report: &mut RunReport,
) -> Result<()> {
    let n = pb.steps.len();
    for (i, s) in pb.steps.iter().enumerate().skip(from) {
        let line = format!("{head} step {}/{n} {}", i + 1, s.action.name());
        if s.approval && !(approved && i == from) {
            p.annotate(
                who,
                case_id,
                who,
                &format!("{line}: awaiting approval"),
                justification,
            )?;
            report.steps.push(StepReport {
                step: i + 1,
                action: s.action.name(),
                state: StepState::AwaitingApproval,
                detail: "waits for a second responder: bletchley playbook approve".into(),
            });
            return Ok(());
        }
        let c = cases::case(p, who, case_id, justification)?;
        let detail = act(p, who, lookup, &c, s, justification)?;
        p.annotate(
            who,
            case_id,
            who,
            &format!("{line}: done: {detail}"),
            justification,
        )?;
        report.steps.push(StepReport {
            step: i + 1,
            action: s.action.name(),
            state: StepState::Done,
            detail,
        });
    }
    p.annotate(
        who,
        case_id,
        who,
        &format!("{head} finished"),
        justification,
    )?;
    Ok(())
}

fn new_run_id(case: &str, item: &str) -> String {
    let now = time::OffsetDateTime::now_utc().unix_timestamp_nanos();
    let u = uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("{case}/{item}/{now}").as_bytes(),
    );
    u.simple().to_string()[..12].to_owned()
}

/// What step `s` would do to case `c`, checked (an assignee who may not see the case is an
/// error here, before anything is written).
fn plan(p: &mut Platform, c: &Case, s: &Step) -> Result<String> {
    Ok(match &s.action {
        Action::Enrich => format!(
            "look up the selectors of {} alerts in the platform, and earlier alerts on their hosts",
            c.alerts.len()
        ),
        Action::Tag { tag } => {
            cases::change_text(p, c, &Change::Tag(tag.clone()))?;
            format!("tag the case {tag}")
        }
        Action::Priority { level } => {
            format!("set the priority from {} to {}", c.priority, level.as_str())
        }
        Action::Assign { to } => {
            cases::change_text(p, c, &Change::Assign(to.clone()))?;
            format!(
                "assign the case to {to} (now {})",
                c.assignee.as_deref().unwrap_or("nobody")
            )
        }
        Action::Status { status } => format!(
            "set the status from {} to {}",
            c.status.as_str(),
            status.as_str()
        ),
        Action::Note { text } => {
            cases::change_text(p, c, &Change::Note(text.clone()))?;
            format!("note: {text}")
        }
        Action::Iocs { format } => format!(
            "store the case's indicators as {} ({}), derived from the case at {}",
            format.file_suffix(),
            match format {
                IocFormat::Csv => "CSV",
                IocFormat::Stix => "a STIX 2.1 bundle",
                IocFormat::Block => "a block list",
            },
            c.marking
        ),
    })
}

/// Does step `s` on case `c` as `who`; returns what it did.
fn act(
    p: &mut Platform,
    who: &str,
    lookup: &mut dyn Lookup,
    c: &Case,
    s: &Step,
    justification: Option<&str>,
) -> Result<String> {
    let change = |p: &mut Platform, ch: Change| -> Result<()> {
        let text = cases::change_text(p, c, &ch)?;
        p.annotate(who, &c.id, who, &text, justification)?;
        Ok(())
    };
    Ok(match &s.action {
        Action::Enrich => enrich(p, who, lookup, c, justification)?,
        Action::Tag { tag } => {
            change(p, Change::Tag(tag.clone()))?;
            format!("tagged {tag}")
        }
        Action::Priority { level } => {
            change(p, Change::Priority(*level))?;
            format!("priority {}", level.as_str())
        }
        Action::Assign { to } => {
            change(p, Change::Assign(to.clone()))?;
            format!("assigned to {to}")
        }
        Action::Status { status } => {
            change(p, Change::Status(*status))?;
            format!("status {}", status.as_str())
        }
        Action::Note { text } => {
            change(p, Change::Note(text.clone()))?;
            "noted".into()
        }
        Action::Iocs { format } => {
            let (_, iocs) = cases::case_iocs(p, who, &c.id, justification)?;
            let content = match format {
                IocFormat::Csv => crate::iocs::csv(&iocs),
                IocFormat::Block => crate::iocs::block_list(&iocs),
                IocFormat::Stix => {
                    let now = time::OffsetDateTime::now_utc()
                        .replace_nanosecond(0)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                        .format(&time::format_description::well_known::Rfc3339)
                        .map_err(|e| Error::Layout(e.to_string()))?;
                    let bundle = crate::iocs::stix_bundle(
                        &iocs,
                        &format!("case {} ({})", c.title, c.id),
                        &now,
                    );
                    serde_json::to_string_pretty(&bundle)
                        .map_err(|e| Error::Layout(e.to_string()))?
                }
            };
            let ids = p.derive(
                &Actor::Principal(who.to_owned()),
                &c.id,
                CONTAINMENT,
                vec![NewItem {
                    title: format!("case {} {}", c.id, format.file_suffix()),
                    content: content.into_bytes(),
                }],
            )?;
            format!(
                "{} indicators stored as {}",
                iocs.len(),
                ids.first().map(String::as_str).unwrap_or("?")
            )
        }
    })
}

/// Enrichment: the case's selectors looked up in the platform, and the earlier alerts on its
/// hosts, noted on the case. Returns the note's summary.
fn enrich(
    p: &mut Platform,
    who: &str,
    lookup: &mut dyn Lookup,
    c: &Case,
    justification: Option<&str>,
) -> Result<String> {
    let (_, iocs) = cases::case_iocs(p, who, &c.id, justification)?;
    let selectors: Vec<String> = iocs
        .iter()
        .map(crate::iocs::Indicator::term)
        .take(MAX_ENRICH_SELECTORS)
        .collect();
    let own: BTreeSet<&str> = c
        .alerts
        .iter()
        .map(String::as_str)
        .chain([c.id.as_str()])
        .collect();
    let sightings = lookup.look_up(p, who, &selectors, justification)?;
    let mut lines = Vec::new();
    for s in &sightings {
        let items: Vec<&String> = s
            .items
            .iter()
            .filter(|i| !own.contains(i.as_str()))
            .collect();
        if items.is_empty() && s.neighbours.is_empty() {
            continue;
        }
        lines.push(format!(
            "{} in {} other items{}; linked to {}",
            s.selector,
            items.len(),
            listed(items.iter().map(|s| s.as_str())),
            if s.neighbours.is_empty() {
                "nothing else".to_owned()
            } else {
                listed(s.neighbours.iter().map(String::as_str))
                    .trim_start_matches(' ')
                    .to_owned()
            }
        ));
    }
    // Earlier alerts on the case's hosts, from outside the case.
    let alerts = visible_alerts(p, who, None, justification)?;
    let mine: Vec<&AlertView> = alerts.iter().filter(|a| c.alerts.contains(&a.id)).collect();
    let hosts: BTreeSet<&str> = mine.iter().filter_map(|a| a.computer.as_str()).collect();
    let first = mine
        .iter()
        .filter_map(|a| a.time.as_str())
        .min()
        .unwrap_or("");
    let earlier: Vec<String> = alerts
        .iter()
        .filter(|a| !own.contains(a.id.as_str()))
        .filter(|a| a.computer.as_str().is_some_and(|h| hosts.contains(h)))
        .filter(|a| a.time.as_str().is_some_and(|t| t < first))
        .map(|a| {
            format!(
                "{} {} on {} ({})",
                a.time.as_str().unwrap_or(""),
                a.rule["title"].as_str().unwrap_or(""),
                a.computer.as_str().unwrap_or(""),
                a.id
            )
        })
        .collect();
    let summary = format!(
        "{} selectors looked up, {} seen elsewhere; {} earlier alerts on {}",
        selectors.len(),
        lines.len(),
        earlier.len(),
        if hosts.is_empty() {
            "no host".to_owned()
        } else {
            hosts.iter().copied().collect::<Vec<_>>().join(", ")
        }
    );
    let mut note = format!("enrichment: {summary}");
    for l in &lines {
        note.push_str("\n- ");
        note.push_str(l);
    }
    for e in earlier.iter().take(MAX_LISTED) {
        note.push_str("\n- earlier: ");
        note.push_str(e);
    }
    if earlier.len() > MAX_LISTED {
        note.push_str(&format!(
            "\n- and {} earlier alerts more",
            earlier.len() - MAX_LISTED
        ));
    }
    // A note holds at most 64 KiB: the lists are capped above; cut at a line if still over.
    while note.len() > bletchley_store::MAX_ANNOTATION {
        match note.rfind('\n') {
            Some(i) => note.truncate(i),
            None => break,
        }
    }
    p.annotate(who, &c.id, who, &note, justification)?;
    Ok(summary)
}

/// ` (a, b, c and N more)` for up to [`MAX_LISTED`] entries; empty for none.
fn listed<'a>(it: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = it.collect();
    if all.is_empty() {
        return String::new();
    }
    let shown = all[..all.len().min(MAX_LISTED)].join(", ");
    if all.len() > MAX_LISTED {
        format!(" ({shown} and {} more)", all.len() - MAX_LISTED)
    } else {
        format!(" ({shown})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "name: contain-host
description: Contain a host that ran an encoded PowerShell command
trigger:
  level: high
  tag: attack.execution
steps:
  - action: enrich
  - action: tag
    tag: powershell
  - action: priority
    level: critical
  - action: assign
    to: bob
  - action: iocs
    format: block
    approval: true
  - action: status
    status: in-progress
";

    #[test]
    fn a_playbook_reads_with_every_step_typed() {
        let pb = parse("contain.yml", GOOD).unwrap();
        assert_eq!(pb.name, "contain-host");
        assert_eq!(
            pb.trigger,
            Some(Trigger {
                rule: None,
                level: Some(Level::High),
                tag: Some("attack.execution".into())
            })
        );
        let names: Vec<&str> = pb.steps.iter().map(|s| s.action.name()).collect();
        assert_eq!(
            names,
            ["enrich", "tag", "priority", "assign", "iocs", "status"]
        );
        assert!(pb.steps[4].approval && !pb.steps[3].approval);
        assert_eq!(
            pb.steps[4].action,
            Action::Iocs {
                format: IocFormat::Block
            }
        );
    }

    #[test]
    fn bad_playbooks_are_refused_naming_the_file_and_step() {
        let cases = [
            (
                GOOD.replace("level: critical", "level: urgent"),
                "step 3 (priority): level \"urgent\"",
            ),
            (
                GOOD.replace("to: bob", "text: bob"),
                "step 4 (assign): needs `to`",
            ),
            (
                GOOD.replace("    tag: powershell", "    tag: x\n    to: y"),
                "step 2 (tag): does not take `to`",
            ),
            (
                GOOD.replace("action: enrich", "action: launch"),
                "step 1 action \"launch\"",
            ),
            (
                GOOD.replace("format: block", "format: pdf"),
                "format \"pdf\"",
            ),
            (
                GOOD.replace("name: contain-host", "name: Contain Host"),
                "name \"Contain Host\"",
            ),
            (
                GOOD.replace("  level: high\n  tag: attack.execution\n", "  {}\n"),
                "a trigger names",
            ),
            (GOOD.replace("steps:", "stepz:"), "unknown field `stepz`"),
            ("name: x\nsteps: []\n".to_owned(), "1 to 50 steps"),
            (
                "name: x\nsteps:\n  - action: note\n    text: [\n".to_owned(),
                "line 4",
            ),
        ];
        for (text, want) in cases {
            let e = parse("p.yml", &text).unwrap_err().to_string();
            assert!(e.starts_with("p.yml: "), "{e}");
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }

    #[test]
    fn run_lines_fold_into_pending_approvals() {
        let h = |a: &str, t: &str| (a.to_owned(), 0, t.to_owned());
        let history = vec![
            h(
                "alice",
                "playbook: contain-host v2 run r1 started: playbook item i9",
            ),
            h(
                "alice",
                "playbook: contain-host v2 run r1 step 1/3 enrich: done: x",
            ),
            h(
                "alice",
                "playbook: contain-host v2 run r1 step 2/3 iocs: awaiting approval",
            ),
            h("alice", "note: unrelated"),
            h(
                "alice",
                "playbook: other v1 run r2 started: playbook item i8",
            ),
            h(
                "alice",
                "playbook: other v1 run r2 step 1/1 iocs: awaiting approval",
            ),
            h("carol", "playbook: other v1 run r2 step 1/1 iocs: approved"),
        ];
        let p = pending(&history);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0],
            Pending {
                run: "r1".into(),
                playbook: "contain-host".into(),
                version: 2,
                step: 2,
                action: "iocs".into(),
                started_by: "alice".into(),
            }
        );
        assert_eq!(
            name_version("contain-host v12.yml"),
            Some(("contain-host", 12))
        );
        assert_eq!(name_version("contain-host.yml"), None);
    }
}
