//! The SigmaHQ rule set against SigmaHQ's own regression logs: every rule loads, and
//! every regression log fires the rule its `info.yml` names, as many times as it says.

use std::path::{Path, PathBuf};

use bletchley_detect::engine::Engine;
use bletchley_detect::hunt;
use bletchley_detect::mapping::Mapping;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sigma")
}

/// The rule id and match count an `info.yml` names (read with plain text search, not
/// with the engine's YAML reader); without a count, at least one match is expected.
fn expectation(info: &Path) -> (String, Option<usize>) {
    let text = std::fs::read_to_string(info).expect("info.yml");
    let after = text.split("rule_metadata:").nth(1).expect("rule_metadata");
    let id = after
        .lines()
        .find_map(|l| l.trim().strip_prefix("- id:"))
        .expect("rule id")
        .trim()
        .to_owned();
    let count = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("match_count:"))
        .map(|n| n.trim().parse().expect("match_count"));
    (id, count)
}

fn infos(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            infos(&p, out);
        } else if p.file_name().is_some_and(|n| n == "info.yml") {
            out.push(p);
        }
    }
}

#[test]
fn every_sigmahq_rule_loads_and_every_regression_log_fires_its_rule() {
    let engine = Engine::load(&[data().join("rules")], Mapping::builtin());
    let report = engine.report();
    assert!(report.errors.is_empty(), "{:#?}", report.errors);
    assert!(
        report.unmapped_logsources.is_empty(),
        "{:#?}",
        report.unmapped_logsources
    );
    assert_eq!(report.detection_rules, 1653);
    let mut all = Vec::new();
    infos(&data().join("regression"), &mut all);
    all.sort();
    assert_eq!(all.len(), 134, "regression logs");
    let mut missed = Vec::new();
    for info in &all {
        let (id, want) = expectation(info);
        let files = hunt::files_under(&[info.parent().expect("dir").to_owned()]);
        assert_eq!(files.len(), 1, "{}", info.display());
        let outcome = hunt::hunt(&engine, &files);
        assert!(outcome.refused.is_empty(), "{:?}", outcome.refused);
        let got = outcome
            .hits
            .iter()
            .filter(|h| engine.rule(h.rule).id == id)
            .count();
        let ok = match want {
            Some(n) => got == n,
            None => got >= 1,
        };
        if !ok {
            missed.push(format!(
                "{}: rule {id} fired {got} times, expected {want:?}",
                info.display()
            ));
        }
    }
    assert!(
        missed.is_empty(),
        "{} of 134 missed:\n{}",
        missed.len(),
        missed.join("\n")
    );
}
