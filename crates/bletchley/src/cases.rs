//! `cases`: triage cases over alerts, on the command line.

use std::process::ExitCode;

use anyhow::{Result, anyhow, bail};
use bletchley_detect::cases::{self, Change, Grouping, Status};
use bletchley_detect::rule::Level;
use bletchley_store::Platform;

use crate::cli::CasesCmd;
use crate::commands::{fmt_time, parse_window};

fn level(s: &str) -> Result<Level> {
    Level::parse(s).ok_or_else(|| {
        anyhow!("level {s:?}: expected informational, low, medium, high or critical")
    })
}

fn status(s: &str) -> Result<Status> {
    Status::parse(s).ok_or_else(|| {
        anyhow!(
            "status {s:?}: expected new, in-progress, closed-true-positive or closed-false-positive"
        )
    })
}

/// Runs a `cases` subcommand for `who`.
pub fn cases(p: &mut Platform, who: &str, c: &CasesCmd) -> Result<ExitCode> {
    match c {
        CasesCmd::Open {
            collection,
            by,
            window,
            level: min,
            alerts,
            title,
            justification,
        } => {
            let just = justification.as_deref();
            let ids = match (collection, alerts.is_empty()) {
                (Some(coll), true) => {
                    let parts: Vec<&str> = by.split(',').map(str::trim).collect();
                    if parts.is_empty() || parts.iter().any(|x| !matches!(*x, "rule" | "host")) {
                        bail!("--by {by:?}: expected rule, host or rule,host");
                    }
                    let g = Grouping {
                        by_rule: parts.contains(&"rule"),
                        by_host: parts.contains(&"host"),
                        window_ms: i64::try_from(parse_window(window)?.saturating_mul(1000))
                            .unwrap_or(i64::MAX),
                        min_level: min.as_deref().map(level).transpose()?,
                    };
                    cases::open_cases(p, who, coll, &g, just)?
                }
                (None, false) => {
                    let title = title
                        .as_deref()
                        .ok_or_else(|| anyhow!("a case opened by hand needs --title"))?;
                    vec![cases::open_case(p, who, title, alerts, just)?]
                }
                _ => {
                    bail!("give --collection (to group its alerts) or --alerts (one case by hand)")
                }
            };
            for id in &ids {
                println!("{id}");
            }
            eprintln!("{} cases opened", ids.len());
            // The playbooks whose trigger the new cases match run now, as the one who opened
            // them.
            if !ids.is_empty() {
                let index = bletchley_index::access::open_synced(p)?;
                let mut lookup = bletchley_server::lookup::IndexLookup { index: &index };
                let triggered =
                    bletchley_detect::playbook::run_triggered(p, who, &mut lookup, &ids, just)?;
                for n in &triggered.not_run {
                    eprintln!(
                        "warning: playbook {} did not run on case {} (nothing of it was written): {}",
                        n.playbook, n.case, n.error
                    );
                }
                for r in triggered.runs {
                    let done = r
                        .steps
                        .iter()
                        .filter(|s| s.state == bletchley_detect::playbook::StepState::Done)
                        .count();
                    let waits = r.steps.iter().find(|s| {
                        s.state == bletchley_detect::playbook::StepState::AwaitingApproval
                    });
                    eprintln!(
                        "playbook {} v{} ran on case {} (run {}): {done} steps done{}",
                        r.playbook,
                        r.version,
                        r.case,
                        r.run,
                        match waits {
                            Some(w) => format!(", step {} waits for a second responder", w.step),
                            None => String::new(),
                        }
                    );
                }
            }
        }
        CasesCmd::Ls {
            status: want,
            json,
            justification,
        } => {
            let want = want.as_deref().map(status).transpose()?;
            let all: Vec<_> = cases::list_cases(p, who, justification.as_deref())?
                .into_iter()
                .filter(|c| want.is_none_or(|w| c.status == w))
                .collect();
            if *json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                for c in all {
                    println!(
                        "{}  {:<21} {:<13} {:<10} {} alerts  {}",
                        c.id,
                        c.status.as_str(),
                        c.priority,
                        c.assignee.as_deref().unwrap_or("-"),
                        c.alerts.len(),
                        c.title
                    );
                }
            }
        }
        CasesCmd::Show {
            id,
            json,
            justification,
        } => {
            let c = cases::case(p, who, id, justification.as_deref())?;
            if *json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                println!("{}  {}", c.id, c.title);
                println!(
                    "{} in {}, {}, priority {}, assigned to {}",
                    c.marking,
                    c.collection,
                    c.status.as_str(),
                    c.priority,
                    c.assignee.as_deref().unwrap_or("nobody")
                );
                println!("opened by {} at {}", c.opened_by, fmt_time(c.opened_ms));
                for a in &c.alerts {
                    println!("alert {a}");
                }
                for (author, ms, text) in &c.history {
                    println!("{}  {author}: {text}", fmt_time(*ms));
                }
            }
        }
        CasesCmd::Assign { id, principal } => {
            cases::change_case(p, who, id, &Change::Assign(principal.clone()), None)?;
            println!("case {id} assigned to {principal}");
        }
        CasesCmd::Status { id, status: s } => {
            let s = status(s)?;
            cases::change_case(p, who, id, &Change::Status(s), None)?;
            println!("case {id} is {}", s.as_str());
        }
        CasesCmd::Priority { id, level: l } => {
            let l = level(l)?;
            cases::change_case(p, who, id, &Change::Priority(l), None)?;
            println!("case {id} has priority {}", l.as_str());
        }
        CasesCmd::Iocs {
            id,
            format,
            justification,
        } => {
            let (c, iocs) = cases::case_iocs(p, who, id, justification.as_deref())?;
            match format.as_str() {
                "csv" => print!("{}", bletchley_detect::iocs::csv(&iocs)),
                "block" => print!("{}", bletchley_detect::iocs::block_list(&iocs)),
                "stix" => {
                    let now = time::OffsetDateTime::now_utc()
                        .replace_nanosecond(0)
                        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
                        .format(&time::format_description::well_known::Rfc3339)?;
                    let bundle = bletchley_detect::iocs::stix_bundle(
                        &iocs,
                        &format!("case {} ({})", c.title, c.id),
                        &now,
                    );
                    println!("{}", serde_json::to_string_pretty(&bundle)?);
                }
                other => bail!("--format {other:?}: expected csv, stix or block"),
            }
            eprintln!(
                "{} indicators from {} alerts of case {} ({}): handle at that marking",
                iocs.len(),
                c.alerts.len(),
                c.id,
                c.marking
            );
        }
        CasesCmd::Note { id, text } => {
            cases::change_case(p, who, id, &Change::Note(text.clone()), None)?;
            println!("noted on case {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
