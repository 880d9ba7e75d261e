//! `bletchley-fuzz [--secs N] [--seed S] [TARGET...]`: fuzzes each target (all by default) for
//! N seconds (600 by default), several at once, and writes what it finds under
//! `crates/bletchley-fuzz/regressions/<target>/` to be kept as regression inputs.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::Duration;

use bletchley_fuzz::{TARGETS, fuzz, quiet_panics};

fn main() -> ExitCode {
    let mut secs = 600u64;
    let mut seed = 1u64;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--secs" => secs = args.next().and_then(|v| v.parse().ok()).unwrap_or(secs),
            "--seed" => seed = args.next().and_then(|v| v.parse().ok()).unwrap_or(seed),
            "--list" => {
                for t in TARGETS {
                    println!("{}", t.name);
                }
                return ExitCode::SUCCESS;
            }
            name => names.push(name.to_owned()),
        }
    }
    let chosen: Vec<_> = TARGETS
        .iter()
        .filter(|t| names.is_empty() || names.iter().any(|n| n == t.name))
        .collect();
    if chosen.len() != names.len().max(chosen.len()) || chosen.is_empty() {
        eprintln!("unknown target among {names:?}; `--list` names them");
        return ExitCode::from(2);
    }
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    quiet_panics();
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(chosen.len());
    println!(
        "fuzzing {} targets for {secs} s each, {workers} at a time, seed {seed}",
        chosen.len()
    );
    let queue = Mutex::new(chosen.into_iter());
    let failed = Mutex::new(0usize);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let next = queue.lock().ok().and_then(|mut q| q.next());
                    let Some(t) = next else { break };
                    match fuzz(t, Duration::from_secs(secs), seed, &dir, &dir) {
                        Ok(r) => {
                            println!(
                                "{:<16} {:>10} inputs  {:>4} outcomes  {:>4} in corpus  {} findings",
                                r.target,
                                r.execs,
                                r.outcomes,
                                r.corpus,
                                r.findings.len()
                            );
                            for f in &r.findings {
                                println!(
                                    "    {} {}: {}",
                                    f.kind,
                                    f.path.display(),
                                    f.message.lines().next().unwrap_or_default()
                                );
                            }
                            if !r.findings.is_empty()
                                && let Ok(mut n) = failed.lock()
                            {
                                *n += 1;
                            }
                        }
                        Err(e) => {
                            eprintln!("{}: {e}", t.name);
                            if let Ok(mut n) = failed.lock() {
                                *n += 1;
                            }
                        }
                    }
                }
            });
        }
    });
    if failed.into_inner().unwrap_or(1) == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
