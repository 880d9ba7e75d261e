//! Every decoder of outside bytes, fuzzed for a bounded time on every test run
//! (`BLETCHLEY_FUZZ_SECS` seconds each, 2 by default; `scripts/fuzz` runs them for 10 minutes),
//! and every input a fuzz run ever found replayed.

use std::path::PathBuf;
use std::time::Duration;

use bletchley_fuzz::{TARGETS, fuzz, kept_inputs, quiet_panics, run_one};

fn regressions() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions")
}

#[test]
fn every_kept_input_decodes_without_a_panic_and_in_time() {
    let mut failures = Vec::new();
    let mut replayed = 0;
    for t in TARGETS {
        for input in kept_inputs(&regressions().join(t.name)).expect("read kept inputs") {
            replayed += 1;
            let start = std::time::Instant::now();
            if let Err(message) = run_one(t, &input) {
                failures.push(format!("{}: {message}", t.name));
            }
            if start.elapsed() > bletchley_fuzz::SLOW {
                failures.push(format!("{}: took {:?}", t.name, start.elapsed()));
            }
        }
    }
    println!("replayed {replayed} kept inputs");
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn every_seed_is_accepted_or_refused_cleanly() {
    for t in TARGETS {
        let seeds = (t.seeds)();
        assert!(!seeds.is_empty(), "{} has no seeds", t.name);
        for s in seeds {
            run_one(t, &s).unwrap_or_else(|m| panic!("{}: a seed panics: {m}", t.name));
        }
    }
}

#[test]
fn every_decoder_survives_a_bounded_fuzz_run() {
    let secs: u64 = std::env::var("BLETCHLEY_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let seed: u64 = std::env::var("BLETCHLEY_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    // Findings go beside the build, not into the repository: the message says where.
    let findings = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings");
    let _ = std::fs::remove_dir_all(&findings);
    quiet_panics();
    let mut found = Vec::new();
    for t in TARGETS {
        let r = fuzz(
            t,
            Duration::from_secs(secs),
            seed,
            &regressions(),
            &findings,
        )
        .expect("fuzz run");
        println!(
            "{:<16} {:>8} inputs {:>4} outcomes {:>4} in corpus",
            r.target, r.execs, r.outcomes, r.corpus
        );
        assert!(r.execs > 0);
        for f in r.findings {
            found.push(format!(
                "{} {} ({}): {}",
                t.name,
                f.kind,
                f.path.display(),
                f.message
            ));
        }
    }
    let _ = std::panic::take_hook();
    assert!(
        found.is_empty(),
        "decoders failed on fuzzed inputs (copy each .bin into crates/bletchley-fuzz/regressions/<target>/ once fixed): {found:#?}"
    );
}
