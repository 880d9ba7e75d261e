//! Detection inside the platform: an agency's Sigma rules (`detect rules`), the
//! detection jobs the worker runs, and the alerts a principal may see (`alerts`).

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use bletchley_ai::pipeline::{JobAnswers, JobError};
use bletchley_detect::job::{DetectJobError, RuleCache, rules_collection, run_detections};
use bletchley_detect::manage;
use bletchley_detect::rule::Level;
use bletchley_policy::Marking;
use bletchley_store::{Job, Platform};

use crate::cli::{DetectCmd, RulesCmd};

/// The worker's handler for the job kinds that are not transcription, with the rules it
/// compiled last.
pub fn other_jobs(cache: &mut RuleCache) -> impl FnMut(&mut Platform, &[Job]) -> JobAnswers + '_ {
    let mut models = crate::semantic::ModelCache::default();
    move |p, jobs| {
        let mut answers = other_batch(p, jobs, cache);
        // Embedding jobs, if the batch holds any, answered in their places.
        let embed: Vec<Job> = jobs
            .iter()
            .filter(|j| crate::semantic::is_embedding(&j.kind))
            .cloned()
            .collect();
        if !embed.is_empty() {
            let mut made = crate::semantic::run_embeddings(p, &embed, &mut models).into_iter();
            for (answer, job) in answers.iter_mut().zip(jobs) {
                if crate::semantic::is_embedding(&job.kind) {
                    *answer = made.next().flatten();
                }
            }
        }
        // Document translations likewise (they may queue embeddings, taken by a later batch).
        let translate: Vec<Job> = jobs
            .iter()
            .filter(|j| crate::text_translation::is_text_translation(&j.kind))
            .cloned()
            .collect();
        if !translate.is_empty() {
            let mut made = crate::text_translation::run_translations(p, &translate).into_iter();
            for (answer, job) in answers.iter_mut().zip(jobs) {
                if crate::text_translation::is_text_translation(&job.kind) {
                    *answer = made.next().flatten();
                }
            }
        }
        answers
    }
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

fn agency_of(p: &Platform, who: &str) -> Result<String> {
    Ok(p.principal(who)?.agency.clone())
}

pub fn detect(p: &mut Platform, who: &str, c: &DetectCmd) -> Result<ExitCode> {
    match c {
        DetectCmd::Rules(RulesCmd::Add { files, marking }) => {
            let marking =
                Marking::parse(marking).map_err(|e| anyhow!("--marking {marking:?}: {e}"))?;
            let mut read = Vec::with_capacity(files.len());
            for f in files {
                let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
                let name = f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "rule.yml".into());
                read.push((name, bytes));
            }
            let n_files = read.len();
            let (ids, count) = manage::add_rule_files(p, who, read, marking)?;
            for id in &ids {
                println!("{id}");
            }
            eprintln!(
                "{count} rules in {n_files} files stored in {}; logs ingested from now on are hunted with them",
                rules_collection(&agency_of(p, who)?)
            );
            Ok(ExitCode::SUCCESS)
        }
        DetectCmd::Rules(RulesCmd::Ls { json }) => {
            let items = manage::rule_files(p, who)?;
            if *json {
                println!("{}", serde_json::to_string(&items)?);
            } else {
                for m in &items {
                    println!("{}  {}  {}", m.id, m.marking, m.title);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DetectCmd::Run {
            collection,
            justification,
        } => {
            let (logs, jobs) = manage::detect_again(p, who, collection, justification.as_deref())?;
            println!(
                "{logs} event logs of {collection} queued for detection again ({} jobs); `bletchley work` or `serve` runs them",
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
