//! Response playbooks on real alerts: stored per agency and versioned, run by their trigger
//! when cases open, every step recorded on the case and audited, a dry run that writes
//! nothing, and a step that waits for a second responder. And the alerts' hosts, accounts
//! and hashes as selectors of the link graph and the timeline.

use serde_json::Value;

use crate::common::{Env, audit_lines, count_action};

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("json")
}

/// The CrackMapExec rule: it fires (level high) on the LSASSY sample only.
const CME_RULE: &str = "058f4380-962d-40a5-afce-50207d36d7e2";

const PLAYBOOK: &str = "name: contain-credential-theft
description: Credential dumping seen; gather context, raise, assign, then block once approved.
trigger:
  rule: 058f4380-962d-40a5-afce-50207d36d7e2
steps:
  - action: enrich
  - action: tag
    tag: credential-theft
  - action: priority
    level: critical
  - action: assign
    to: boss
  - action: iocs
    format: block
    approval: true
  - action: status
    status: in-progress
";

/// The basic platform with the two recorded attacks hunted, a responder of mi5 (rita) and
/// one of mi6 (ian).
fn platform_with_alerts() -> Env {
    let env = Env::new();
    env.basic();
    env.add_principal(
        "rita",
        "mi5",
        "TOP SECRET",
        &["--roles", "analyst,responder"],
    );
    env.ok(&["agency", "add", "mi6"]);
    env.add_principal("ian", "mi6", "TOP SECRET", &["--roles", "responder"]);
    crate::detect::two_attacks_hunted(&env);
    env
}

fn add_playbook(env: &Env, name: &str, text: &str) -> String {
    let f = env.file(name, text.as_bytes());
    env.ok(&[
        "--as",
        "alice",
        "playbook",
        "add",
        f.to_str().expect("path"),
    ])
}

/// Every `ls --json` item, for counting what was written.
fn items(env: &Env, who: &str) -> Vec<Value> {
    json(&env.ok(&["--as", who, "ls", "--json"]))
        .as_array()
        .expect("array")
        .clone()
}

#[test]
fn playbooks_run_on_new_cases_record_every_step_and_wait_for_a_second_responder() {
    let env = platform_with_alerts();

    // Stored per agency, in a collection an operator creates; checked before storing.
    let f = env.file("contain.yml", PLAYBOOK.as_bytes());
    let err = env.fails(&[
        "--as",
        "alice",
        "playbook",
        "add",
        f.to_str().expect("path"),
    ]);
    assert!(
        err.contains("bletchley collection add mi5/playbooks"),
        "{err}"
    );
    env.ok(&["collection", "add", "mi5/playbooks"]);
    let bad = PLAYBOOK.replace("to: boss", "who: boss");
    let f = env.file("bad.yml", bad.as_bytes());
    let err = env.fails(&[
        "--as",
        "alice",
        "playbook",
        "add",
        f.to_str().expect("path"),
    ]);
    assert!(
        err.contains("bad.yml") && err.contains("unknown field `who`"),
        "{err}"
    );
    assert_eq!(
        json(&env.ok(&["--as", "alice", "playbook", "ls", "--json"])),
        json("[]"),
        "a refused playbook stores nothing"
    );
    // Version 1 assigns to alice; version 2 (the one that runs) to boss.
    add_playbook(
        &env,
        "contain.yml",
        &PLAYBOOK.replace("to: boss", "to: alice"),
    );
    let v2 = add_playbook(&env, "contain.yml", PLAYBOOK);
    let latest = json(&env.ok(&["--as", "alice", "playbook", "ls", "--json"]));
    assert_eq!(latest.as_array().expect("array").len(), 1);
    assert_eq!(latest[0]["version"], 2);
    assert_eq!(latest[0]["id"], v2.trim());
    let all = json(&env.ok(&["--as", "alice", "playbook", "ls", "--all", "--json"]));
    assert_eq!(all.as_array().expect("array").len(), 2);

    // Cases open; the playbook's trigger (the CrackMapExec rule) picks its case only.
    env.ok(&["--as", "alice", "cases", "open", "--collection", "mi5/ct"]);
    let cases = json(&env.ok(&["--as", "alice", "cases", "ls", "--json"]));
    let cases = cases.as_array().expect("array");
    let alerts = json(&env.ok(&["--as", "alice", "alerts", "--json"]));
    let rule_of = |alert: &Value| {
        alerts
            .as_array()
            .expect("alerts")
            .iter()
            .find(|a| a["id"] == *alert)
            .map(|a| a["rule"]["id"].as_str().expect("rule").to_owned())
            .expect("alert listed")
    };
    let (hit, missed): (Vec<&Value>, Vec<&Value>) = cases
        .iter()
        .partition(|c| rule_of(&c["alerts"][0]) == CME_RULE);
    assert_eq!(hit.len(), 1, "{cases:?}");
    assert!(!missed.is_empty());
    for c in &missed {
        assert_eq!(c["history"], json("[]"), "the trigger did not fire here");
    }
    let case = hit[0]["id"].as_str().expect("id").to_owned();
    let shown = json(&env.ok(&["--as", "alice", "cases", "show", &case, "--json"]));
    assert_eq!(shown["tags"], json(r#"["credential-theft"]"#));
    assert_eq!(shown["priority"], "critical");
    assert_eq!(shown["assignee"], "boss");
    assert_eq!(
        shown["status"], "new",
        "the step after the approval has not run"
    );
    let pending = shown["pending"].as_array().expect("pending");
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["step"], 5);
    assert_eq!(pending[0]["started_by"], "alice");
    assert_eq!(pending[0]["version"], 2);
    let run = pending[0]["run"].as_str().expect("run").to_owned();
    let texts: Vec<String> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| h[2].as_str().expect("text").to_owned())
        .collect();
    let enrichment = texts
        .iter()
        .find(|t| t.starts_with("enrichment: "))
        .expect("an enrichment note");
    // The host of the case's alert, as its stored body names it, was looked up.
    let alert = json(&env.ok(&[
        "--as",
        "alice",
        "get",
        shown["alerts"][0].as_str().expect("alert"),
    ]));
    let host = alert["computer"].as_str().expect("computer").to_lowercase();
    assert!(enrichment.contains(&format!("host:{host}")), "{enrichment}");
    for (k, action) in [(1, "enrich"), (2, "tag"), (3, "priority"), (4, "assign")] {
        let line =
            format!("playbook: contain-credential-theft v2 run {run} step {k}/6 {action}: done");
        assert!(
            texts.iter().any(|t| t.starts_with(&line)),
            "{line} in {texts:?}"
        );
    }
    let containment = |env: &Env| {
        items(env, "alice")
            .into_iter()
            .filter(|m| m["derivation"] == "containment")
            .collect::<Vec<_>>()
    };
    assert!(
        containment(&env).is_empty(),
        "the approval step did not run"
    );

    // A dry run on another case says what would happen and writes nothing.
    let other = missed[0]["id"].as_str().expect("id");
    let before_case = env.ok(&["--as", "alice", "cases", "show", other, "--json"]);
    let before_items = items(&env, "alice").len();
    let dry = json(&env.ok(&[
        "--as",
        "alice",
        "playbook",
        "dry-run",
        "contain-credential-theft",
        "--case",
        other,
        "--json",
    ]));
    assert_eq!(dry["dry_run"], true);
    let states: Vec<&str> = dry["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["state"].as_str().expect("state"))
        .collect();
    assert_eq!(
        states,
        [
            "would-do",
            "would-do",
            "would-do",
            "would-do",
            "awaiting-approval",
            "not-reached"
        ]
    );
    assert_eq!(
        env.ok(&["--as", "alice", "cases", "show", other, "--json"]),
        before_case
    );
    assert_eq!(items(&env, "alice").len(), before_items);
    // A playbook that cannot finish changes nothing either: carol may not see the case.
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    add_playbook(
        &env,
        "to-carol.yml",
        "name: to-carol\nsteps:\n  - action: tag\n    tag: x\n  - action: assign\n    to: carol\n",
    );
    let err = env.fails(&[
        "--as", "alice", "playbook", "run", "to-carol", "--case", other,
    ]);
    assert!(err.contains("carol may not see this case"), "{err}");
    assert_eq!(
        env.ok(&["--as", "alice", "cases", "show", other, "--json"]),
        before_case
    );

    // The approval: not by who started the run, not by an admin without the role, not by a
    // responder of another agency (who may not even see the case); by a second responder.
    let approve = |who: &str| {
        env.run(&[
            "--as", who, "playbook", "approve", "--case", &case, "--run", &run, "--json",
        ])
    };
    for who in ["alice", "boss"] {
        let o = approve(who);
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("needs the responder role"), "{who}: {err}");
    }
    let o = approve("ian");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not found or not permitted"));
    assert!(containment(&env).is_empty());
    let o = approve("rita");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = json(&String::from_utf8_lossy(&o.stdout));
    let states: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["state"].as_str().expect("state"))
        .collect();
    assert_eq!(states, ["done", "done"]);
    let shown = json(&env.ok(&["--as", "alice", "cases", "show", &case, "--json"]));
    assert_eq!(shown["status"], "in-progress");
    assert_eq!(shown["pending"], json("[]"));
    let texts: Vec<(String, String)> = shown["history"]
        .as_array()
        .expect("history")
        .iter()
        .map(|h| {
            (
                h[0].as_str().expect("author").to_owned(),
                h[2].as_str().expect("text").to_owned(),
            )
        })
        .collect();
    let approved =
        format!("playbook: contain-credential-theft v2 run {run} step 5/6 iocs: approved");
    assert!(texts.contains(&("rita".to_owned(), approved)), "{texts:?}");
    assert!(texts.contains(&(
        "rita".to_owned(),
        format!("playbook: contain-credential-theft v2 run {run} finished")
    )));
    // Approved once: nothing waits any more.
    let o = approve("rita");
    assert!(!o.status.success());
    // The containment output is an item derived from the case, at its marking, holding what
    // `cases iocs` gives.
    let out = containment(&env);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0]["derived_from"], case.as_str());
    assert_eq!(out[0]["marking"], "SECRET");
    let block = env.ok(&["--as", "rita", "get", out[0]["id"].as_str().expect("id")]);
    assert_eq!(
        block,
        env.ok(&["--as", "alice", "cases", "iocs", &case, "--format", "block"])
    );
    assert!(block.contains(&format!(
        "host\t{}",
        alert["computer"].as_str().expect("host")
    )));

    // Audited: the enrichment's look-up, every step's note, the refusals.
    let audit = audit_lines(&env);
    assert_eq!(count_action(&audit, "playbook.enrich", "allowed"), 1);
    assert!(
        audit
            .iter()
            .filter(|l| l["action"] == "item.derive" && l["principal"] == "rita")
            .count()
            >= 4,
        "rita's approval, step, containment and finish are each audited"
    );
    env.ok(&["audit", "verify"]);
}

#[test]
fn alerts_link_their_hosts_accounts_and_hashes_in_the_graph_and_the_timeline() {
    let env = platform_with_alerts();
    let alerts = json(&env.ok(&["--as", "alice", "alerts", "--json"]));
    let a = &alerts[0];
    let body = json(&env.ok(&["--as", "alice", "get", a["id"].as_str().expect("id")]));
    let host = format!(
        "host:{}",
        body["computer"].as_str().expect("host").to_lowercase()
    );
    // Independently of the extraction code: a hash the event's Hashes field holds.
    let hashes = body["event"]["Event"]["EventData"]["Hashes"]
        .as_str()
        .expect("a Sysmon process event carries its hashes");
    let sha256 = hashes
        .split(',')
        .find_map(|p| p.strip_prefix("SHA256="))
        .expect("sha256")
        .to_lowercase();
    let near = json(&env.ok(&["--as", "alice", "graph", "neighbours", &host, "--json"]));
    let near = near.to_string();
    assert!(near.contains(&format!("hash:{sha256}")), "{near}");
    assert!(near.contains("\"user:"), "{near}");
    // On the timeline, at the time the event happened (not when it was ingested).
    let line = json(&env.ok(&["--as", "alice", "timeline", &host, "--json"]));
    let events = line["events"]
        .as_array()
        .unwrap_or_else(|| line.as_array().expect("events"));
    let at = events
        .iter()
        .find(|e| e["id"] == a["id"])
        .expect("the alert is on its host's timeline");
    let when = time::OffsetDateTime::parse(
        a["time"].as_str().expect("time"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("rfc3339");
    assert_eq!(
        at["time_ms"].as_i64(),
        Some((when.unix_timestamp_nanos() / 1_000_000) as i64)
    );
    // Who may not see the log has no such selector.
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    let none = env.ok(&["--as", "carol", "graph", "neighbours", &host, "--json"]);
    assert!(!none.contains("hash:"), "{none}");
}

#[test]
fn playbooks_are_stored_run_and_approved_through_the_api_and_the_console() {
    use crate::server::{Server, set_password};
    use reqwest::StatusCode;
    let env = platform_with_alerts();
    env.ok(&["collection", "add", "mi5/playbooks"]);
    set_password(&env, "alice");
    set_password(&env, "rita");
    let s = Server::start(&env);
    let alice = s.client();
    let token = s.login(&alice, "alice");
    let post = |c: &reqwest::blocking::Client, token: &str, path: &str, body: Value| {
        let r = c
            .post(format!("{}{path}", s.url))
            .header("x-csrf-token", token)
            .json(&body)
            .send()
            .expect("post");
        let st = r.status();
        (st, r.json::<Value>().unwrap_or(Value::Null))
    };
    let (st, v) = post(
        &alice,
        &token,
        "/api/playbooks",
        serde_json::json!({ "file_name": "c.yml", "yaml": "name: c\nsteps:\n  - action: note\n    text: [\n" }),
    );
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("c.yml: ") && message.contains("line 4"),
        "{v}"
    );
    let (st, v) = post(
        &alice,
        &token,
        "/api/playbooks",
        serde_json::json!({ "file_name": "contain.yml", "yaml": PLAYBOOK, "marking": "SECRET" }),
    );
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["playbook"]["version"], 1);
    let (_, v) = s.get(&alice, "/api/playbooks");
    assert_eq!(v["playbooks"][0]["name"], "contain-credential-theft");

    // A second triggered playbook that cannot run (its assignee is no principal): reported,
    // and it neither stops the cases nor the other playbook.
    let (st, v) = post(
        &alice,
        &token,
        "/api/playbooks",
        serde_json::json!({ "file_name": "ghost.yml", "yaml": format!("name: to-ghost\ntrigger:\n  rule: {CME_RULE}\nsteps:\n  - action: tag\n    tag: g\n  - action: assign\n    to: ghost\n") }),
    );
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // Opening cases runs the triggered playbook; the report comes back with the ids.
    let (st, v) = post(
        &alice,
        &token,
        "/api/cases",
        serde_json::json!({ "collection": "mi5/ct" }),
    );
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let runs = v["playbook_runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1, "{v}");
    let not_run = v["playbooks_not_run"].as_array().expect("not run");
    assert_eq!(not_run.len(), 1, "{v}");
    assert_eq!(not_run[0]["playbook"], "to-ghost v1");
    assert!(
        not_run[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("ghost may not see this case"),
        "{v}"
    );
    let case = runs[0]["case"].as_str().expect("case").to_owned();
    let run = runs[0]["run"].as_str().expect("run").to_owned();
    assert_eq!(runs[0]["steps"][4]["state"], "awaiting-approval");
    let other = v["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .filter_map(Value::as_str)
        .find(|c| *c != case)
        .expect("another case")
        .to_owned();

    // Dry run through the API writes nothing; an unknown playbook is a clear 400.
    let (_, before) = s.get(&alice, &format!("/api/cases/{other}"));
    let (st, v) = post(
        &alice,
        &token,
        &format!("/api/cases/{other}/playbook"),
        serde_json::json!({ "playbook": "contain-credential-theft", "dry_run": true }),
    );
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["dry_run"], true);
    assert_eq!(s.get(&alice, &format!("/api/cases/{other}")).1, before);
    let (st, v) = post(
        &alice,
        &token,
        &format!("/api/cases/{other}/playbook"),
        serde_json::json!({ "playbook": "nope" }),
    );
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");

    // The starter may not approve; the console shows the waiting step to a responder, whose
    // form approves it and shows the rest of the run.
    let (st, v) = post(
        &alice,
        &token,
        &format!("/api/cases/{case}/approve"),
        serde_json::json!({ "run": run }),
    );
    assert_eq!(st, StatusCode::FORBIDDEN, "{v}");
    let rita = s.client();
    let rita_csrf = s.login(&rita, "rita");
    let page = rita
        .get(format!("{}/cases/{case}", s.url))
        .send()
        .expect("page")
        .text()
        .expect("text");
    assert!(
        page.contains("waits for a second responder") && page.contains("class=\"approve\""),
        "{page}"
    );
    assert!(
        page.contains("credential-theft"),
        "the case's tags are shown"
    );
    // The case's graph: its alerts' selectors, drawn and listed, each opening the link graph.
    let (_, shown) = s.get(&rita, &format!("/api/cases/{case}"));
    let host = shown["alerts"][0]["selectors"]
        .as_array()
        .expect("selectors")
        .iter()
        .filter_map(Value::as_str)
        .find(|x| x.starts_with("host:"))
        .expect("a host selector")
        .to_owned();
    assert!(
        page.contains("id=\"graph-data\"")
            && page.contains(&format!(
                "<a href=\"/graph?selector={}",
                host.replace(':', "%3A")
            )),
        "{page}"
    );
    let page = rita
        .post(format!("{}/cases/{case}/approve", s.url))
        .form(&[("csrf", rita_csrf.as_str()), ("run", run.as_str())])
        .send()
        .expect("approve")
        .text()
        .expect("text");
    assert!(page.contains("id=\"run-report\""), "{page}");
    assert_eq!(
        page.matches("<td class=\"state\">done</td>").count(),
        2,
        "{page}"
    );
    let (_, v) = s.get(&rita, &format!("/api/cases/{case}"));
    assert_eq!(v["case"]["status"], "in-progress");
    assert_eq!(v["case"]["pending"], serde_json::json!([]));
    // A console dry run says so, and changes nothing.
    let page = rita
        .post(format!("{}/cases/{other}/playbook", s.url))
        .form(&[
            ("csrf", rita_csrf.as_str()),
            ("playbook", "contain-credential-theft"),
            ("mode", "dry-run"),
        ])
        .send()
        .expect("dry run")
        .text()
        .expect("text");
    assert!(page.contains("Nothing was written"), "{page}");
    assert_eq!(s.get(&alice, &format!("/api/cases/{other}")).1, before);
    // Without the session's CSRF token, nothing runs.
    let r = rita
        .post(format!("{}/cases/{other}/playbook", s.url))
        .form(&[
            ("csrf", "wrong"),
            ("playbook", "contain-credential-theft"),
            ("mode", "run"),
        ])
        .send()
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(s.get(&alice, &format!("/api/cases/{other}")).1, before);
}
