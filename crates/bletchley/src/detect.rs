//! Detection inside the platform: an agency's Sigma rules (`detect rules`), the
//! detection jobs the worker runs, and the alerts a principal may see (`alerts`).

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use bletchley_ai::pipeline::{JobAnswers, JobError};
use bletchley_detect::job::{DetectJobError, RuleCache, rules_collection, run_detections};
use bletchley_detect::rule::{self, Level, PlaceholderMap};
use bletchley_policy::Marking;
use bletchley_store::{IngestOptions, Job, NewItem, Platform, Priority};

use crate::cli::{DetectCmd, RulesCmd};

/// The worker's handler for the job kinds that are not transcription, with the rules it
/// compiled last.
pub fn other_jobs(cache: &mut RuleCache) -> impl FnMut(&mut Platform, &[Job]) -> JobAnswers + '_ {
    move |p, jobs| other_batch(p, jobs, cache)
}

fn is_detection(kind: &str) -> bool {
    kind == bletchley_store::jobs::DETECT || kind == bletchley_store::jobs::DETECT_AGAIN
}

fn other_batch(p: &mut Platform, jobs: &[Job], cache: &mut RuleCache) -> JobAnswers {
    let detect: Vec<Job> = jobs
        .iter()
        .filter(|j| is_detection(&j.kind))
        .cloned()
        .collect();
    let mut answers = run_detections(p, &detect, cache).into_iter();
    jobs.iter()
        .map(|j| {
            is_detection(&j.kind).then(|| {
                answers
                    .next()
                    .unwrap_or_else(|| Err(DetectJobError::Transient("not run".into())))
                    .map_err(|e| match e {
                        DetectJobError::Permanent(m) => JobError::Permanent(m),
                        DetectJobError::Transient(m) => JobError::Transient(m),
                    })
            })
        })
        .collect()
}

/// Whether a stored item's name is that of an event log (what ingest queued detection for,
/// by name: EVTX, JSON Lines, syslog).
fn is_log_name(title: &str) -> bool {
    let ext = title
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(ext.as_str(), "evtx" | "jsonl" | "ndjson" | "syslog" | "log")
}

fn agency_of(p: &Platform, who: &str) -> Result<String> {
    Ok(p.principal(who)?.agency.clone())
}

pub fn detect(p: &mut Platform, who: &str, c: &DetectCmd) -> Result<ExitCode> {
    match c {
        DetectCmd::Rules(RulesCmd::Add { files, marking }) => {
            let agency = agency_of(p, who)?;
            let coll = rules_collection(&agency);
            if !p
                .collections()?
                .iter()
                .any(|c| format!("{}/{}", c.agency, c.name) == coll)
            {
                bail!(
                    "agency {agency} keeps its Sigma rules in the collection {coll}, which does not exist: bletchley collection add {coll}"
                );
            }
            // Every file is read and checked before anything is stored.
            let mut items = Vec::new();
            let mut count = 0;
            for f in files {
                let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                let text = String::from_utf8(bytes.clone())
                    .map_err(|_| anyhow!("{}: a rule file is UTF-8 text", f.display()))?;
                let rules = rule::parse_file(f, &text, &PlaceholderMap::new())
                    .map_err(|e| anyhow!("{e}; no rule was stored"))?;
                count += rules.len();
                let title = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "rule.yml".into());
                items.push(NewItem {
                    title,
                    content: bytes,
                });
            }
            let opts = IngestOptions {
                collection: coll.clone(),
                marking: Marking::parse(marking)
                    .map_err(|e| anyhow!("--marking {marking:?}: {e}"))?,
                authority: None,
                retain_until_ms: None,
                justification: None,
                priority: Priority::default(),
            };
            let stored = bletchley_index::ingest::ingest(p, who, &opts, items)?;
            for id in &stored.ids {
                println!("{id}");
            }
            eprintln!(
                "{count} rules in {} files stored in {coll}; logs ingested from now on are hunted with them",
                stored.ids.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        DetectCmd::Rules(RulesCmd::Ls { json }) => {
            let agency = agency_of(p, who)?;
            let coll = rules_collection(&agency);
            let listing = p.list(who, Some(&coll), None)?;
            if *json {
                println!("{}", serde_json::to_string(&listing.items)?);
            } else {
                for m in &listing.items {
                    println!("{}  {}  {}", m.id, m.marking, m.title);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DetectCmd::Run {
            collection,
            justification,
        } => {
            let listing = p.list(who, Some(collection), justification.as_deref())?;
            let logs: Vec<&str> = listing
                .items
                .iter()
                .filter(|m| m.derived_from.is_none() && is_log_name(&m.title))
                .map(|m| m.id.as_str())
                .collect();
            let queue: Vec<(&str, &str)> = logs
                .iter()
                .map(|id| (bletchley_store::jobs::DETECT_AGAIN, *id))
                .collect();
            let jobs = p.enqueue_jobs(who, &queue)?;
            println!(
                "{} event logs of {collection} queued for detection again ({} jobs); `bletchley work` or `serve` runs them",
                logs.len(),
                jobs.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        DetectCmd::Rules(RulesCmd::Rm { id }) => {
            let agency = agency_of(p, who)?;
            let coll = rules_collection(&agency);
            let listing = p.list(who, Some(&coll), None)?;
            if !listing.items.iter().any(|m| &m.id == id) {
                bail!("{id} is not a rule file of {coll} that you may see");
            }
            p.shred(who, id)?;
            eprintln!("rule file {id} shredded");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `alerts`: the alerts the principal may see, most severe first.
pub fn alerts(
    p: &mut Platform,
    who: &str,
    level: Option<&str>,
    json: bool,
    justification: Option<&str>,
) -> Result<ExitCode> {
    let min = match level {
        Some(l) => Some(Level::parse(l).ok_or_else(|| {
            anyhow!("--level {l:?}: expected informational, low, medium, high or critical")
        })?),
        None => None,
    };
    let out = bletchley_detect::alerts::visible_alerts(p, who, min, justification)?;
    if json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        for a in &out {
            println!(
                "{:<13} {}  {}  {} record {}  [{}]",
                a.level,
                a.time.as_str().unwrap_or(""),
                a.rule["title"].as_str().unwrap_or(""),
                a.computer.as_str().unwrap_or("?"),
                a.record,
                a.id
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
