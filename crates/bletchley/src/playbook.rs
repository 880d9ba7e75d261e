//! `playbook`: response playbooks on the command line.

use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use bletchley_detect::playbook::{self, RunReport, StepState};
use bletchley_policy::Marking;
use bletchley_server::lookup::IndexLookup;
use bletchley_store::Platform;

use crate::cli::{PlaybookCmd, PlaybookRunArgs};

/// Runs a `playbook` subcommand for `who`.
pub fn playbook(p: &mut Platform, who: &str, c: &PlaybookCmd) -> Result<ExitCode> {
    match c {
        PlaybookCmd::Add { file, marking } => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {} (a UTF-8 YAML file)", file.display()))?;
            let marking =
                Marking::parse(marking).map_err(|e| anyhow!("--marking {marking:?}: {e}"))?;
            let name = file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "playbook.yml".into());
            let pb = playbook::add(p, who, &name, &text, marking)?;
            println!("{}", pb.id);
            eprintln!(
                "playbook {} version {} stored ({} steps, {})",
                pb.name,
                pb.version,
                pb.steps.len(),
                match &pb.trigger {
                    Some(_) => "runs when a case it matches opens",
                    None => "by hand only",
                }
            );
        }
        PlaybookCmd::Ls { all, json } => {
            let (books, broken) = if *all {
                playbook::list(p, who, None)?
            } else {
                (
                    playbook::latest(p, who, None)?,
                    playbook::list(p, who, None)?.1,
                )
            };
            if *json {
                println!("{}", serde_json::to_string(&books)?);
            } else {
                for pb in &books {
                    let trigger = match &pb.trigger {
                        None => "by hand".to_owned(),
                        Some(t) => [
                            t.rule.as_ref().map(|r| format!("rule {r}")),
                            t.level.map(|l| format!("level {}+", l.as_str())),
                            t.tag.as_ref().map(|t| format!("tag {t}")),
                        ]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", "),
                    };
                    let steps: Vec<String> = pb
                        .steps
                        .iter()
                        .map(|s| {
                            format!("{}{}", s.action.name(), if s.approval { "*" } else { "" })
                        })
                        .collect();
                    println!(
                        "{}  {} v{}  [{}]  when: {}  steps: {}",
                        pb.id,
                        pb.name,
                        pb.version,
                        pb.marking,
                        trigger,
                        steps.join(" → ")
                    );
                }
            }
            for (id, why) in broken {
                eprintln!(
                    "warning: item {id} of the playbooks collection is not a playbook: {why}"
                );
            }
        }
        PlaybookCmd::Run(a) => return run(p, who, a, a.dry_run),
        PlaybookCmd::DryRun(a) => return run(p, who, a, true),
        PlaybookCmd::Approve {
            case,
            run: run_id,
            json,
            justification,
        } => {
            let just = justification.as_deref();
            let index = bletchley_index::access::open_synced(p)?;
            let mut lookup = IndexLookup { index: &index };
            let r = playbook::approve(p, who, &mut lookup, case, run_id, just)?;
            print_report(&r, *json)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run(p: &mut Platform, who: &str, a: &PlaybookRunArgs, dry_run: bool) -> Result<ExitCode> {
    let just = a.justification.as_deref();
    let pb = playbook::find(p, who, &a.name, a.version, just)?;
    let index = bletchley_index::access::open_synced(p)?;
    let mut lookup = IndexLookup { index: &index };
    let r = playbook::run(p, who, &mut lookup, &pb, &a.case, dry_run, just)?;
    print_report(&r, a.json)?;
    Ok(ExitCode::SUCCESS)
}

/// Prints a run's report: JSON, or a line a step.
pub fn print_report(r: &RunReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    if r.dry_run {
        println!(
            "dry run of {} v{} on case {} (nothing written):",
            r.playbook, r.version, r.case
        );
    } else {
        println!(
            "run {} of {} v{} on case {}:",
            r.run, r.playbook, r.version, r.case
        );
    }
    for s in &r.steps {
        let state = match s.state {
            StepState::Done => "done",
            StepState::WouldDo => "would",
            StepState::AwaitingApproval => "awaits approval",
            StepState::NotReached => "not reached",
        };
        println!("  {}. {:<9} {:<16} {}", s.step, s.action, state, s.detail);
    }
    if let Some(w) = r
        .steps
        .iter()
        .find(|s| s.state == StepState::AwaitingApproval)
        && !r.dry_run
    {
        eprintln!(
            "step {} waits: a second responder approves with `bletchley --as RESPONDER playbook approve --case {} --run {}`",
            w.step, r.case, r.run
        );
    }
    Ok(())
}
