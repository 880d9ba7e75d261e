//! Ransomware resilience of the platform itself: legal holds, the mass-destruction brake,
//! and backup and restore.

use crate::common::Env;

fn audit_lines(env: &Env) -> Vec<serde_json::Value> {
    env.ok(&["audit", "show", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

fn count_action(lines: &[serde_json::Value], action: &str, outcome: &str) -> usize {
    lines
        .iter()
        .filter(|l| l["action"] == action && l["outcome"] == outcome)
        .count()
}

/// While a collection is held, neither an admin nor retention destroys anything in it, and
/// each refusal is audited; released, both work again.
#[test]
fn a_legal_hold_stops_shredding_and_retention_until_released() {
    let env = Env::new();
    env.basic();
    let f = env.file("evidence.txt", b"the ledger the defence has asked for");
    let g = env.file("expiring.txt", b"kept past its date by the hold");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0].clone();
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let expiring = env
        .ok(&[
            "--as",
            "alice",
            "ingest",
            g.to_str().expect("path"),
            "--collection",
            "mi5/ct",
            "--marking",
            "SECRET",
            "--retain-until",
            &soon,
        ])
        .trim()
        .to_owned();

    // A hold needs a reason, and the collection must exist.
    assert!(
        env.fails(&["collection", "hold", "mi5/ct", "--reason", " "])
            .contains("reason")
    );
    assert!(
        env.fails(&["collection", "hold", "mi5/nope", "--reason", "R v Smith"])
            .contains("unknown collection")
    );
    env.ok(&[
        "collection",
        "hold",
        "mi5/ct",
        "--reason",
        "R v Smith [2026]",
    ]);
    assert!(
        env.fails(&["collection", "hold", "mi5/ct", "--reason", "again"])
            .contains("already under legal hold")
    );
    let ls = env.ok(&["collection", "ls"]);
    assert!(ls.contains("mi5/ct\tlegal hold: R v Smith [2026]"), "{ls}");
    assert!(!ls.contains("mi5/bulk\tbulk\tlegal hold"), "{ls}");

    let err = env.fails(&["--as", "boss", "shred", &id]);
    assert!(
        err.contains("legal hold") && err.contains("R v Smith"),
        "{err}"
    );
    assert_eq!(
        env.ok(&["--as", "alice", "get", &id]),
        "the ledger the defence has asked for"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let kept = env.ok(&["retention", "enforce"]);
    assert!(kept.contains("shredded 0"), "{kept}");
    assert!(kept.contains("kept 1 expired items"), "{kept}");
    // Searching runs retention first: a held item survives that too.
    env.ok(&["--as", "alice", "search", "ledger"]);
    assert_eq!(
        env.ok(&["--as", "alice", "get", &expiring]),
        "kept past its date by the hold"
    );

    let trail = audit_lines(&env);
    assert_eq!(count_action(&trail, "collection.hold", "allowed"), 1);
    assert_eq!(count_action(&trail, "item.shred", "refused"), 1);

    env.ok(&["collection", "release", "mi5/ct"]);
    assert!(
        env.fails(&["collection", "release", "mi5/ct"])
            .contains("not under legal hold")
    );
    assert!(!env.ok(&["collection", "ls"]).contains("legal hold"));
    env.ok(&["--as", "boss", "shred", &id]);
    assert!(env.ok(&["retention", "enforce"]).contains("shredded 1"));
    for gone in [&id, &expiring] {
        assert!(
            env.fails(&["--as", "alice", "get", gone])
                .contains("not found or not permitted")
        );
    }
    let trail = audit_lines(&env);
    assert_eq!(count_action(&trail, "collection.release", "allowed"), 1);
    env.ok(&["audit", "verify"]);
}
