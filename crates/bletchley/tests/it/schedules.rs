//! Retention schedules: an item past its schedule is unreadable at once, before
//! any run destroys it; a legal hold keeps it; a run destroys exactly what is
//! due and leaves a certificate naming it.

use std::collections::BTreeSet;

use crate::common::{Env, audit_lines};

fn listed(env: &Env) -> BTreeSet<String> {
    let out = env.ok(&["--as", "alice", "ls", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("ls json");
    v.as_array()
        .expect("array")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_owned())
        .collect()
}

#[test]
fn scheduled_items_vanish_on_the_day_and_are_destroyed_with_a_certificate() {
    let env = Env::new();
    env.basic();
    env.ok(&["collection", "add", "mi5/other"]);
    let a = env.file("a.txt", b"first report on the harbour");
    let b = env.file("b.txt", b"second report on the harbour");
    let c = env.file("c.txt", b"a top secret report elsewhere");
    let ct: BTreeSet<String> = env
        .ingest("alice", "mi5/ct", "SECRET", &[&a, &b])
        .into_iter()
        .collect();
    let other = env.ingest("alice", "mi5/other", "TOP SECRET", &[&c]);
    assert_eq!(ct.len(), 2);
    assert_eq!(listed(&env).len(), 3);

    // Bad schedules change nothing.
    assert!(
        env.fails(&[
            "retention",
            "schedule",
            "set",
            "--collection",
            "mi5/nope",
            "--keep",
            "2s"
        ])
        .contains("mi5/nope")
    );
    assert!(
        env.fails(&[
            "retention",
            "schedule",
            "set",
            "--classification",
            "SECRET",
            "--keep",
            "0d"
        ])
        .contains("positive")
    );
    env.ok(&[
        "retention",
        "schedule",
        "set",
        "--collection",
        "mi5/ct",
        "--keep",
        "2s",
    ]);
    // A classification schedule is overridden by a collection's.
    env.ok(&[
        "retention",
        "schedule",
        "set",
        "--classification",
        "TOP SECRET",
        "--keep",
        "2s",
    ]);
    env.ok(&[
        "retention",
        "schedule",
        "set",
        "--collection",
        "mi5/other",
        "--keep",
        "1y",
    ]);
    let ls = env.ok(&["retention", "schedule", "ls"]);
    assert!(
        ls.contains("collection mi5/ct") && ls.contains("classification TOP SECRET"),
        "{ls}"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));

    // Due: gone from every read before any run destroys it.
    assert_eq!(listed(&env), other.iter().cloned().collect());
    let first = ct.iter().next().expect("id");
    assert!(
        env.fails(&["--as", "alice", "get", first])
            .contains("not found or not permitted")
    );

    // A legal hold keeps them, and they read again while it holds.
    env.ok(&[
        "collection",
        "hold",
        "mi5/ct",
        "--reason",
        "R v Smith [2026]",
    ]);
    let r: serde_json::Value =
        serde_json::from_str(&env.ok(&["retention", "enforce", "--json"])).expect("json");
    assert!(r["destroyed"].as_array().expect("destroyed").is_empty());
    assert_eq!(r["held"].as_u64(), Some(2), "{r}");
    env.ok(&["--as", "alice", "get", first]);

    // Released: the run destroys exactly the two, and says so.
    env.ok(&["collection", "release", "mi5/ct"]);
    let cert = env.root.join("certificate.json");
    env.ok(&[
        "retention",
        "enforce",
        "--certificate",
        cert.to_str().expect("utf-8"),
    ]);
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cert).expect("certificate")).expect("json");
    let destroyed: BTreeSet<String> = v["destroyed"]
        .as_array()
        .expect("destroyed")
        .iter()
        .map(|d| {
            assert_eq!(d["collection"], "mi5/ct");
            assert_eq!(d["under"], "collection schedule");
            d["id"].as_str().expect("id").to_owned()
        })
        .collect();
    assert_eq!(destroyed, ct);
    assert_eq!(listed(&env), other.iter().cloned().collect());
    // The certificate is in the audit log, naming the same items.
    let entries = audit_lines(&env);
    let certified: BTreeSet<String> = entries
        .iter()
        .filter(|e| e["action"] == "retention.certificate")
        .flat_map(|e| e["targets"].as_array().cloned().unwrap_or_default())
        .map(|t| t.as_str().expect("target").to_owned())
        .collect();
    assert_eq!(certified, ct);
    // A second run finds nothing more.
    let again: serde_json::Value =
        serde_json::from_str(&env.ok(&["retention", "enforce", "--json"])).expect("json");
    assert!(again["destroyed"].as_array().expect("destroyed").is_empty());
    // Removing the collection's schedule lets the classification's apply.
    env.ok(&["retention", "schedule", "rm", "--collection", "mi5/other"]);
    assert!(listed(&env).is_empty());
}
