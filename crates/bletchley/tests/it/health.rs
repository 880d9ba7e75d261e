//! How a node stands: `bletchley status`, `/api/health` for anyone and `/metrics` for admins
//! and overseers, each saying when a part does not answer. The part broken here is the real
//! one: the local object-store location's directory replaced by a file.

use reqwest::StatusCode;

use crate::common::Env;
use crate::server::{Server, set_password};

/// Replaces the local location's directory with a file: writes and probes fail there.
fn break_objects(env: &Env) {
    let dir = env.data.join("objects");
    let aside = env.root.join("objects-aside");
    std::fs::rename(&dir, &aside).expect("move objects aside");
    std::fs::write(&dir, b"not a directory").expect("file in its place");
}

fn mend_objects(env: &Env) {
    let dir = env.data.join("objects");
    std::fs::remove_file(&dir).expect("remove the file");
    std::fs::rename(env.root.join("objects-aside"), &dir).expect("move objects back");
}

#[test]
fn status_says_what_answers_and_fails_when_a_part_does_not() {
    let env = Env::new();
    env.basic();
    let f = env.file("a.txt", b"CANARY-status");
    env.ingest("alice", "mi5/ct", "OFFICIAL", &[&f]);
    let out = env.ok(&["status"]);
    assert!(out.contains("catalog: answers"), "{out}");
    assert!(out.contains("location local: answers"), "{out}");
    assert!(out.contains("items: 1"), "{out}");
    let v: serde_json::Value = serde_json::from_str(&env.ok(&["status", "--json"])).expect("json");
    assert_eq!(v["items"], 1);
    assert!(v["audit_entries"].as_u64().expect("entries") > 1);
    // Admins and overseers only, besides the operator.
    env.ok(&["--as", "boss", "status"]);
    let e = env.fails(&["--as", "alice", "status"]);
    assert!(e.contains("admin or overseer"), "{e}");

    break_objects(&env);
    let o = env.run(&["status"]);
    assert_eq!(o.status.code(), Some(1));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("location local: DOES NOT ANSWER"), "{out}");
    assert!(out.contains("catalog: answers"), "{out}");
    mend_objects(&env);
    env.ok(&["status"]);
}

#[test]
fn health_answers_anyone_and_metrics_only_admins_and_overseers() {
    let env = Env::new();
    env.basic();
    let f = env.file("a.txt", b"CANARY-metrics");
    env.ingest("alice", "mi5/ct", "OFFICIAL", &[&f]);
    env.ingest(
        "alice",
        "mi5/ct",
        "SECRET",
        &[&env.file("b.txt", b"CANARY-metrics-2")],
    );
    set_password(&env, "alice");
    set_password(&env, "boss");
    let s = Server::start(&env);
    let anon = s.client();
    let (st, v) = s.get(&anon, "/api/health");
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v, serde_json::json!({ "status": "ok" }));

    let metrics = |c: &reqwest::blocking::Client| {
        let r = c.get(format!("{}/metrics", s.url)).send().expect("metrics");
        (r.status(), r.text().expect("text"))
    };
    assert_eq!(metrics(&anon).0, StatusCode::UNAUTHORIZED);
    let alice = s.client();
    s.login(&alice, "alice");
    assert_eq!(metrics(&alice).0, StatusCode::FORBIDDEN);
    let boss = s.client();
    s.login(&boss, "boss");
    let (st, text) = metrics(&boss);
    assert_eq!(st, StatusCode::OK);
    for line in [
        "bletchley_catalog_up 1",
        "bletchley_location_up{location=\"local\",retired=\"false\"} 1",
        "bletchley_items 2",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
    }
    // Nothing of the items themselves.
    assert!(!text.contains("CANARY"));

    break_objects(&env);
    let (st, v) = s.get(&anon, "/api/health");
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        v,
        serde_json::json!({ "status": "failing", "failing": ["object store"] })
    );
    let (_, text) = metrics(&boss);
    assert!(
        text.lines()
            .any(|l| l == "bletchley_location_up{location=\"local\",retired=\"false\"} 0"),
        "{text}"
    );
    mend_objects(&env);
    assert_eq!(s.get(&anon, "/api/health").0, StatusCode::OK);
}
