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
    // With progress in lines (for logs), the run says how far it is, in due items.
    let run = env
        .cmd(&[
            "retention",
            "enforce",
            "--certificate",
            cert.to_str().expect("utf-8"),
        ])
        .env("BLETCHLEY_PROGRESS", "lines")
        .output()
        .expect("retention enforce");
    assert!(run.status.success());
    let told = String::from_utf8_lossy(&run.stderr);
    assert!(
        told.lines()
            .any(|l| l == format!("retention: {0}/{0} due items dealt with (100%)", ct.len())),
        "{told}"
    );
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

fn hits(env: &Env, q: &str) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "search", q, "--json"])).expect("json");
    v["total"].as_u64().expect("total")
}

#[test]
fn a_reviewed_collection_destroys_nothing_until_an_admin_decides() {
    let env = Env::new();
    env.basic();
    let files: Vec<_> = ["first", "second", "third"]
        .iter()
        .map(|n| {
            env.file(
                &format!("{n}.txt"),
                format!("{n} report on the harbour").as_bytes(),
            )
        })
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &refs);
    assert_eq!(hits(&env, "harbour"), 3);
    env.ok(&["retention", "review", "require", "--collection", "mi5/ct"]);
    env.ok(&[
        "retention",
        "schedule",
        "set",
        "--collection",
        "mi5/ct",
        "--keep",
        "2s",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(2500));

    // Past their date: unreadable and unsearchable at once, but nothing is destroyed.
    assert!(listed(&env).is_empty());
    assert_eq!(hits(&env, "harbour"), 0);
    let out = env.ok(&["retention", "enforce"]);
    assert!(
        out.contains("shredded 0") && out.contains("3 expired items wait"),
        "{out}"
    );
    let queue: serde_json::Value =
        serde_json::from_str(&env.ok(&["retention", "review", "ls", "--json"])).expect("json");
    assert_eq!(queue.as_array().expect("queue").len(), 3);

    // Only an admin of the agency reviews.
    assert!(
        env.fails(&["--as", "alice", "retention", "review", "ls"])
            .contains("admin")
    );
    let mine = env.ok(&["--as", "boss", "retention", "review", "ls"]);
    assert!(
        mine.contains("first.txt") && mine.contains("collection schedule"),
        "{mine}"
    );
    // Unknown items change nothing.
    assert!(
        env.fails(&[
            "--as",
            "boss",
            "retention",
            "review",
            "approve",
            &ids[0],
            "nope"
        ])
        .contains("not waiting for review")
    );

    // Approved: destroyed now, and the certificate names exactly it.
    let cert = env.root.join("cert.json");
    let out = env.ok(&[
        "--as",
        "boss",
        "retention",
        "review",
        "approve",
        &ids[0],
        "--certificate",
        cert.to_str().expect("utf-8"),
    ]);
    assert!(out.contains("shredded 1"), "{out}");
    let c: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&cert).expect("certificate")).expect("json");
    let destroyed: Vec<&str> = c["destroyed"]
        .as_array()
        .expect("destroyed")
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect();
    assert_eq!(destroyed, vec![ids[0].as_str()]);

    // Kept: readable and searchable again until the new date, with the reason audited.
    assert!(
        env.fails(&[
            "--as",
            "boss",
            "retention",
            "review",
            "keep",
            &ids[1],
            "--until",
            "2099-01-01",
            "--reason",
            " "
        ])
        .contains("why")
    );
    env.ok(&[
        "--as",
        "boss",
        "retention",
        "review",
        "keep",
        &ids[1],
        "--until",
        "2099-01-01",
        "--reason",
        "an appeal is pending",
    ]);
    assert_eq!(listed(&env), BTreeSet::from([ids[1].clone()]));
    assert_eq!(hits(&env, "harbour"), 1);
    // The third still waits.
    let queue: serde_json::Value =
        serde_json::from_str(&env.ok(&["retention", "review", "ls", "--json"])).expect("json");
    let waiting: Vec<&str> = queue
        .as_array()
        .expect("queue")
        .iter()
        .map(|a| a["id"].as_str().expect("id"))
        .collect();
    assert_eq!(waiting, vec![ids[2].as_str()]);

    let lines = audit_lines(&env);
    assert!(lines.iter().any(|l| {
        l["action"] == "retention.review-keep"
            && l["principal"] == "boss"
            && l["reason"]
                .as_str()
                .is_some_and(|r| r.contains("an appeal is pending"))
    }));
    assert!(
        lines.iter().any(|l| l["action"] == "retention.certificate"
            && l["targets"] == serde_json::json!([ids[0]]))
    );
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "retention.review-list" && l["outcome"] == "refused")
    );
}
