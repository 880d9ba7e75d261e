//! Detection inside the platform: an event log ingested as an item is hunted by a job
//! with its agency's rules, each detection becomes an alert derived from the log (same
//! collection and marking), and whoever may not see the log sees none of its alerts.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Env, open_platform};

fn sigma() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bletchley-detect/tests/data/sigma")
}

const CURL_RULE: &str = "85de1f22-d189-44e4-8239-dc276b45379b";

fn json(s: &str) -> Value {
    serde_json::from_str(s).expect("json")
}

#[test]
fn an_ingested_event_log_is_hunted_and_its_alerts_keep_its_marking() {
    let env = Env::new();
    env.basic();
    // carol is of mi5 but cleared to OFFICIAL only: the SECRET log is not hers to see.
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    // Rules live in the agency's rules collection, which an operator creates.
    let rule = std::fs::read(
        sigma().join("rules/windows/process_creation/proc_creation_win_curl_custom_user_agent.yml"),
    )
    .expect("rule");
    let rule = env.file("curl.yml", &rule);
    let err = env.fails(&[
        "--as",
        "alice",
        "detect",
        "rules",
        "add",
        rule.to_str().expect("path"),
    ]);
    assert!(
        err.contains("bletchley collection add mi5/sigma-rules"),
        "{err}"
    );
    env.ok(&["collection", "add", "mi5/sigma-rules"]);
    // One bad file among good ones stores nothing.
    let bad = env.file("bad.yml", b"title: t\nlogsource:\n  product: windows\ndetection:\n  s:\n    Image|contians: x\n  condition: s\n");
    let err = env.fails(&[
        "--as",
        "alice",
        "detect",
        "rules",
        "add",
        rule.to_str().expect("path"),
        bad.to_str().expect("path"),
    ]);
    assert!(
        err.contains("bad.yml:6:") && err.contains("no rule was stored"),
        "{err}"
    );
    // Nor does an ordinary ingest into the rules collection take a file that does not parse.
    let err = env.fails(&[
        "--as",
        "alice",
        "ingest",
        bad.to_str().expect("path"),
        "--collection",
        "mi5/sigma-rules",
        "--marking",
        "OFFICIAL",
    ]);
    assert!(
        err.contains("bad.yml:6:") && err.contains("holds Sigma rule files that parse"),
        "{err}"
    );
    assert_eq!(
        json(&env.ok(&["--as", "alice", "detect", "rules", "ls", "--json"])),
        json("[]")
    );
    env.ok(&[
        "--as",
        "alice",
        "detect",
        "rules",
        "add",
        rule.to_str().expect("path"),
    ]);
    let rules = json(&env.ok(&["--as", "alice", "detect", "rules", "ls", "--json"]));
    assert_eq!(rules.as_array().map(Vec::len), Some(1), "{rules}");

    // The log, at SECRET in mi5/ct: ingest queues a detection job.
    let log = std::fs::read(sigma().join(
        "regression/rules/windows/process_creation/proc_creation_win_curl_custom_user_agent/85de1f22-d189-44e4-8239-dc276b45379b.evtx",
    ))
    .expect("log");
    let log = env.file("workstation.evtx", &log);
    let out = env
        .cmd(&[
            "--as",
            "alice",
            "ingest",
            log.to_str().expect("path"),
            "--collection",
            "mi5/ct",
            "--marking",
            "SECRET",
        ])
        .output()
        .expect("ingest");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log_id = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 jobs queued"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No alert before the job runs.
    assert_eq!(
        json(&env.ok(&["--as", "alice", "alerts", "--json"])),
        json("[]")
    );
    // A worker without a speech model still runs detection jobs.
    let out = env.cmd(&["work", "--once"]).output().expect("work");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 jobs done"), "{stderr}");

    let alerts = json(&env.ok(&["--as", "alice", "alerts", "--json"]));
    let alerts = alerts.as_array().expect("array");
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let a = &alerts[0];
    assert_eq!(a["rule"]["id"], CURL_RULE);
    assert_eq!(a["level"], "medium");
    assert_eq!(a["log"], log_id.as_str());
    assert_eq!(a["collection"], "mi5/ct");
    assert_eq!(a["marking"], "SECRET");
    assert_eq!(a["record"], 21475);
    assert_eq!(a["computer"], "swachchhanda");
    // The alert is an item: readable with its event, and found by search.
    let body = json(&env.ok(&["--as", "alice", "get", a["id"].as_str().expect("id")]));
    assert!(
        body["fields"]["CommandLine"]
            .as_str()
            .is_some_and(|c| c.contains("EvilAgent")),
        "{body}"
    );
    let hits = env.ok(&["--as", "alice", "search", "EvilAgent", "--json"]);
    assert!(hits.contains(a["id"].as_str().expect("id")), "{hits}");
    // A level filter above medium shows nothing.
    assert_eq!(
        json(&env.ok(&["--as", "alice", "alerts", "--level", "high", "--json"])),
        json("[]")
    );

    // carol sees neither the alert nor any trace of it in search.
    assert_eq!(
        json(&env.ok(&["--as", "carol", "alerts", "--json"])),
        json("[]")
    );
    let hits = env.ok(&["--as", "carol", "search", "EvilAgent", "--json"]);
    assert!(
        !hits.contains(a["id"].as_str().expect("id")) && !hits.contains(&log_id),
        "{hits}"
    );

    // Running again makes no second alert.
    let out = env.cmd(&["work", "--once"]).output().expect("work");
    assert!(String::from_utf8_lossy(&out.stderr).contains("0 jobs done"));
    assert_eq!(
        json(&env.ok(&["--as", "alice", "alerts", "--json"]))
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Shredding the log shreds its alerts.
    env.ok(&["--as", "boss", "shred", &log_id]);
    assert_eq!(
        json(&env.ok(&["--as", "alice", "alerts", "--json"])),
        json("[]")
    );
}

/// A second of silence as a WAV file: enough to be queued for transcription.
fn silence_wav() -> Vec<u8> {
    let samples = 16_000u32;
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + samples * 2).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&16_000u32.to_le_bytes());
    w.extend_from_slice(&32_000u32.to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(samples * 2).to_le_bytes());
    w.resize(w.len() + samples as usize * 2, 0);
    w
}

/// Short jobs are claimed, audited and finished in batches, but a transcription is never
/// held unstarted behind them: a batch is short jobs only, or one long job alone. A batch
/// read audits every item it returns and records every refusal.
#[test]
fn short_jobs_run_in_batches_and_a_transcription_runs_alone() {
    use bletchley_store::jobs::{DETECT, TRANSCRIBE};
    let env = Env::new();
    env.basic();
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    let log = std::fs::read(sigma().join(
        "regression/rules/windows/process_creation/proc_creation_win_curl_custom_user_agent/85de1f22-d189-44e4-8239-dc276b45379b.evtx",
    ))
    .expect("read");
    let mut order = Vec::new();
    for (name, bytes, kind) in [
        ("a.evtx", log.clone(), DETECT),
        ("call.wav", silence_wav(), TRANSCRIBE),
        ("b.evtx", log.clone(), DETECT),
        ("c.evtx", log, DETECT),
    ] {
        let f = env.file(name, &bytes);
        let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0].clone();
        order.push((id, kind));
    }
    let mut p = open_platform(&env);
    let short = |k: &str| k != TRANSCRIBE;
    let first = p.claim_jobs(64, &short).expect("claim");
    assert_eq!(
        first.iter().map(|j| j.item.clone()).collect::<Vec<_>>(),
        vec![order[0].0.clone()],
        "the batch stops before the transcription"
    );
    let second = p.claim_jobs(64, &short).expect("claim");
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].kind, TRANSCRIBE, "a transcription alone");
    let third = p.claim_jobs(64, &short).expect("claim");
    assert_eq!(
        third.iter().map(|j| j.item.clone()).collect::<Vec<_>>(),
        vec![order[2].0.clone(), order[3].0.clone()]
    );
    assert!(p.claim_jobs(64, &short).expect("claim").is_empty());
    let outcomes: Vec<(&bletchley_store::Job, bletchley_store::platform::JobOutcome)> = vec![
        (&third[0], Ok(Vec::new())),
        (&third[1], Err(("bad log".into(), true))),
    ];
    let states = p.finish_jobs(&outcomes).expect("finish");
    assert_eq!(
        states,
        vec![
            bletchley_store::JobState::Done,
            bletchley_store::JobState::Failed
        ]
    );

    // carol (OFFICIAL) may read none of the SECRET logs: each refusal is hers in the log,
    // and alice's batch read is one entry per item.
    let ids: Vec<String> = order.iter().map(|(id, _)| id.clone()).collect();
    let refused = p.get_many("carol", &ids, None).expect("batch");
    assert!(refused.iter().all(|r| r.is_err()));
    let read = p.get_many("alice", &ids, None).expect("batch");
    assert!(read.iter().all(|r| r.is_ok()));
    drop(p);
    let trail: Vec<Value> = env
        .ok(&["audit", "show", "--json"])
        .lines()
        .map(json)
        .collect();
    let count = |who: &str, action: &str, outcome: &str| {
        trail
            .iter()
            .filter(|e| e["principal"] == who && e["action"] == action && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("carol", "item.get", "denied"), 4);
    assert_eq!(count("alice", "item.get", "allowed"), 4);
    assert_eq!(count("worker", "job.start", "allowed"), 4);
    assert_eq!(count("worker", "job.done", "allowed"), 1);
    assert_eq!(count("worker", "job.fail", "refused"), 1);
    env.ok(&["audit", "verify"]);
}

/// Rules added after a log was stored find what they would have found: `detect run` hunts
/// the collection's logs again, and a second run stores no alert twice.
#[test]
fn detect_run_hunts_stored_logs_again_and_stores_no_alert_twice() {
    let env = Env::new();
    env.basic();
    env.ok(&["collection", "add", "mi5/sigma-rules"]);
    let log = std::fs::read(sigma().join(
        "regression/rules/windows/process_creation/proc_creation_win_curl_custom_user_agent/85de1f22-d189-44e4-8239-dc276b45379b.evtx",
    ))
    .expect("log");
    let log = env.file("workstation.evtx", &log);
    env.ingest("alice", "mi5/ct", "SECRET", &[&log]);
    let note = env.file("note.txt", b"not a log");
    env.ingest("alice", "mi5/ct", "SECRET", &[&note]);
    env.ok(&["work", "--once"]);
    let count = || {
        json(&env.ok(&["--as", "alice", "alerts", "--json"]))
            .as_array()
            .expect("array")
            .len()
    };
    assert_eq!(count(), 0, "no rules yet");

    let rule = std::fs::read(
        sigma().join("rules/windows/process_creation/proc_creation_win_curl_custom_user_agent.yml"),
    )
    .expect("rule");
    let rule = env.file("curl.yml", &rule);
    env.ok(&[
        "--as",
        "alice",
        "detect",
        "rules",
        "add",
        rule.to_str().expect("path"),
    ]);
    for _ in 0..2 {
        let out = env.ok(&["--as", "alice", "detect", "run", "--collection", "mi5/ct"]);
        assert!(out.contains("1 event logs of mi5/ct queued"), "{out}");
        let out = env.cmd(&["work", "--once"]).output().expect("work");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && stderr.contains("1 jobs done"),
            "{stderr}"
        );
        assert_eq!(count(), 1);
    }
    // Nobody outside the collection's reach queues anything.
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    let out = env.ok(&["--as", "carol", "detect", "run", "--collection", "mi5/ct"]);
    assert!(out.contains("0 event logs"), "{out}");
}

/// The API and the console serve alerts, with counts by level and rule, to whoever may see
/// the log, and nothing of them (not even a count) to anyone else.
#[test]
fn alerts_are_served_by_the_api_and_the_console_only_to_who_may_see_the_log() {
    use crate::server::{Server, set_password};
    use reqwest::StatusCode;
    let env = Env::new();
    env.basic();
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    env.ok(&["collection", "add", "mi5/sigma-rules"]);
    let rule = std::fs::read(
        sigma().join("rules/windows/process_creation/proc_creation_win_curl_custom_user_agent.yml"),
    )
    .expect("rule");
    let rule = env.file("curl.yml", &rule);
    env.ok(&[
        "--as",
        "alice",
        "detect",
        "rules",
        "add",
        rule.to_str().expect("path"),
    ]);
    let log = std::fs::read(sigma().join(
        "regression/rules/windows/process_creation/proc_creation_win_curl_custom_user_agent/85de1f22-d189-44e4-8239-dc276b45379b.evtx",
    ))
    .expect("log");
    let log = env.file("workstation.evtx", &log);
    env.ingest("alice", "mi5/ct", "SECRET", &[&log]);
    env.ok(&["work", "--once"]);
    set_password(&env, "alice");
    set_password(&env, "carol");
    let s = Server::start(&env);

    let alice = s.client();
    s.login(&alice, "alice");
    let (st, v) = s.get(&alice, "/api/alerts");
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["alerts"][0]["rule"]["id"], CURL_RULE);
    assert_eq!(v["counts"]["by_level"]["medium"], 1);
    assert_eq!(v["counts"]["by_rule"][0]["count"], 1);
    let (_, v) = s.get(&alice, "/api/alerts?level=high");
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(0), "{v}");
    let (st, _) = s.get(&alice, "/api/alerts?level=severe");
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let page = alice
        .get(format!("{}/alerts", s.url))
        .send()
        .expect("page")
        .text()
        .expect("text");
    assert!(
        page.contains("Curl Web Request With Potential Custom User-Agent")
            && page.contains("class=\"alert level-medium\""),
        "{page}"
    );
    assert!(
        page.contains("SECRET"),
        "the banner covers the alerts shown"
    );

    // Cases through the API: opened over the collection's alerts, moved on, read back.
    let token = s.login(&alice, "alice");
    let post = |path: &str, body: serde_json::Value| {
        let r = alice
            .post(format!("{}{path}", s.url))
            .header("x-csrf-token", &token)
            .json(&body)
            .send()
            .expect("post");
        let st = r.status();
        (st, r.json::<Value>().unwrap_or(Value::Null))
    };
    // Rules and re-runs through the API: a file that does not parse is refused naming its
    // line, and nothing is stored; one that parses is listed; the stored log is queued again.
    let (st, v) = post(
        "/api/detect/rules",
        serde_json::json!({ "file_name": "bad.yml", "yaml": "title: t\nlogsource:\n  product: windows\ndetection:\n  s:\n    Image|contians: x\n  condition: s\n" }),
    );
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("bad.yml:6:") && message.contains("no rule was stored"),
        "{v}"
    );
    let (_, v) = s.get(&alice, "/api/detect/rules");
    assert_eq!(v["rules"].as_array().map(Vec::len), Some(1), "{v}");
    let whoami = std::fs::read(
        sigma().join("rules/windows/process_creation/proc_creation_win_whoami_all_execution.yml"),
    )
    .expect("rule");
    let (st, v) = post(
        "/api/detect/rules",
        serde_json::json!({ "file_name": "whoami.yml", "yaml": String::from_utf8(whoami).expect("utf-8") }),
    );
    assert_eq!(st, StatusCode::CREATED, "{v}");
    assert_eq!(v["rules"], 1);
    let (_, v) = s.get(&alice, "/api/detect/rules");
    assert_eq!(v["rules"].as_array().map(Vec::len), Some(2), "{v}");
    let (st, v) = post(
        "/api/detect/run",
        serde_json::json!({ "collection": "mi5/ct" }),
    );
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["logs"], 1);
    assert_eq!(v["jobs"].as_array().map(Vec::len), Some(1));

    let (st, v) = post("/api/cases", serde_json::json!({ "collection": "mi5/ct" }));
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let case = v["cases"][0].as_str().expect("a case").to_owned();
    let (st, v) = post("/api/cases", serde_json::json!({ "collection": "" }));
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, _) = post(
        &format!("/api/cases/{case}"),
        serde_json::json!({ "status": "in-progress" }),
    );
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = post(&format!("/api/cases/{case}"), serde_json::json!({}));
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = post(
        &format!("/api/cases/{case}"),
        serde_json::json!({ "status": "done" }),
    );
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = post(
        &format!("/api/cases/{case}"),
        serde_json::json!({ "assignee": "carol" }),
    );
    assert_eq!(st, StatusCode::BAD_REQUEST, "carol may not see it: {v}");
    let (st, v) = s.get(&alice, &format!("/api/cases/{case}"));
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["case"]["status"], "in-progress");
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(1));
    let (_, v) = s.get(&alice, "/api/cases?status=new");
    assert_eq!(v["cases"].as_array().map(Vec::len), Some(0));
    let page = alice
        .get(format!("{}/cases/{case}", s.url))
        .send()
        .expect("page")
        .text()
        .expect("text");
    assert!(
        page.contains("in-progress") && page.contains("Curl Web Request"),
        "{page}"
    );

    let carol = s.client();
    s.login(&carol, "carol");
    let (_, v) = s.get(&carol, "/api/cases");
    assert_eq!(v["cases"].as_array().map(Vec::len), Some(0));
    let (st, _) = s.get(&carol, &format!("/api/cases/{case}"));
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (st, v) = s.get(&carol, "/api/alerts");
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["alerts"].as_array().map(Vec::len), Some(0), "{v}");
    assert_eq!(v["counts"]["by_level"], serde_json::json!({}));
    assert_eq!(v["counts"]["by_rule"], serde_json::json!([]));
    let page = carol
        .get(format!("{}/alerts", s.url))
        .send()
        .expect("page")
        .text()
        .expect("text");
    assert!(page.contains("<p id=\"total\">0 alerts</p>"), "{page}");
    assert!(!page.contains("class=\"alert "), "{page}");
}

/// Two recorded attacks (WMI lateral movement with Impacket, an LSASS dump with lsassy)
/// ingested by alice into mi5/ct at SECRET and hunted with the two SigmaHQ rules that catch
/// them (stored in mi5/sigma-rules).
pub(crate) fn two_attacks_hunted(env: &Env) {
    env.ok(&["collection", "add", "mi5/sigma-rules"]);
    let rules = sigma().join("rules/windows/process_creation");
    let wmi = env.file(
        "wmi.yml",
        &std::fs::read(rules.join("proc_creation_win_wmiprvse_spawning_process.yml"))
            .expect("rule"),
    );
    let cme = env.file(
        "cme.yml",
        &std::fs::read(rules.join("proc_creation_win_hktl_crackmapexec_execution_patterns.yml"))
            .expect("rule"),
    );
    env.ok(&[
        "--as",
        "alice",
        "detect",
        "rules",
        "add",
        wmi.to_str().expect("path"),
        cme.to_str().expect("path"),
    ]);
    let evtx = sigma().join("evtx");
    let a = env.file(
        "wmiexec.evtx",
        &std::fs::read(evtx.join(
            "sbousseaden_EVTX-ATTACK-SAMPLES/Lateral Movement/LM_wmiexec_impacket_sysmon_whoami.evtx",
        ))
        .expect("log"),
    );
    let b = env.file(
        "lsassy.evtx",
        &std::fs::read(evtx.join(
            "EVTX-to-MITRE-Attack/TA0006-Credential Access/T1003-Credential dumping/ID1-LSASS dump with LSASSY (SYSMON).evtx",
        ))
        .expect("log"),
    );
    env.ingest("alice", "mi5/ct", "SECRET", &[&a, &b]);
    env.ok(&["work", "--once"]);
}

/// Alerts group into cases by rule, host and time window (or by hand); a case is assigned
/// only to someone who may see it, moves through its statuses with notes, keeps its whole
/// history, and is invisible, with its alerts, to anyone who may not see the logs.
#[test]
fn alerts_group_into_cases_that_are_assigned_worked_and_closed() {
    let env = Env::new();
    env.basic();
    env.add_principal("carol", "mi5", "OFFICIAL", &[]);
    two_attacks_hunted(&env);
    let alerts = json(&env.ok(&["--as", "alice", "alerts", "--json"]));
    let alerts = alerts.as_array().expect("array");
    // Independently of the grouping code: distinct (rule, host) pairs among the alerts (all
    // of a pair lie within seconds of each other in these samples).
    let pairs: std::collections::BTreeSet<(String, String)> = alerts
        .iter()
        .map(|a| {
            (
                a["rule"]["id"].as_str().expect("rule").to_owned(),
                a["computer"].as_str().expect("host").to_owned(),
            )
        })
        .collect();
    assert!(pairs.len() >= 2, "{pairs:?}");

    let out = env.ok(&["--as", "alice", "cases", "open", "--collection", "mi5/ct"]);
    assert_eq!(out.lines().count(), pairs.len(), "{out}");
    let again = env.ok(&["--as", "alice", "cases", "open", "--collection", "mi5/ct"]);
    assert_eq!(
        again.lines().count(),
        0,
        "alerts already in a case are not grouped twice"
    );
    let cases = json(&env.ok(&["--as", "alice", "cases", "ls", "--json"]));
    let cases = cases.as_array().expect("array");
    assert_eq!(cases.len(), pairs.len());
    let held: usize = cases
        .iter()
        .map(|c| c["alerts"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(held, alerts.len(), "every alert in exactly one case");
    for c in cases {
        assert_eq!(c["status"], "new");
        assert_eq!(c["marking"], "SECRET");
        assert_eq!(c["collection"], "mi5/ct");
    }

    // By hand, over alerts one may see; never over an unknown one.
    let first = alerts[0]["id"].as_str().expect("id");
    let err = env.fails(&[
        "--as", "alice", "cases", "open", "--alerts", "nope", "--title", "x",
    ]);
    assert!(err.contains("not an alert you may see"), "{err}");
    let by_hand = env
        .ok(&[
            "--as",
            "alice",
            "cases",
            "open",
            "--alerts",
            first,
            "--title",
            "look at this one",
        ])
        .trim()
        .to_owned();

    let id = cases[0]["id"].as_str().expect("id");
    let err = env.fails(&["--as", "alice", "cases", "assign", id, "carol"]);
    assert!(err.contains("carol may not see this case"), "{err}");
    // A name that is no principal gets the same answer.
    let ghost = env.fails(&["--as", "alice", "cases", "assign", id, "ghost"]);
    assert_eq!(
        ghost.replace("ghost", "carol"),
        err,
        "no principal and one who may not see read alike"
    );
    env.ok(&["--as", "alice", "cases", "assign", id, "boss"]);
    env.ok(&["--as", "boss", "cases", "status", id, "in-progress"]);
    env.ok(&["--as", "boss", "cases", "priority", id, "critical"]);
    env.ok(&[
        "--as",
        "boss",
        "cases",
        "note",
        id,
        "the admin share was the printer's",
    ]);
    assert!(
        env.fails(&["--as", "boss", "cases", "status", id, "done"])
            .contains("expected new")
    );
    env.ok(&[
        "--as",
        "boss",
        "cases",
        "status",
        id,
        "closed-false-positive",
    ]);
    let shown = json(&env.ok(&["--as", "alice", "cases", "show", id, "--json"]));
    assert_eq!(shown["status"], "closed-false-positive");
    assert_eq!(shown["assignee"], "boss");
    assert_eq!(shown["priority"], "critical");
    let history = shown["history"].as_array().expect("history");
    assert_eq!(history.len(), 5, "{history:?}");
    assert_eq!(history[0][0], "alice");
    assert_eq!(history[3][2], "note: the admin share was the printer's");
    let open = json(&env.ok(&["--as", "alice", "cases", "ls", "--status", "new", "--json"]));
    assert!(
        open.as_array()
            .expect("array")
            .iter()
            .any(|c| c["id"] == by_hand.as_str())
    );

    // Containment output: every indicator is in the case's alerts as stored, checked
    // against their raw text rather than the extraction code.
    let csv = env.ok(&["--as", "alice", "cases", "iocs", id]);
    let raw: String = shown["alerts"]
        .as_array()
        .expect("alerts")
        .iter()
        .map(|a| {
            env.ok(&["--as", "alice", "get", a.as_str().expect("id")])
                .to_lowercase()
        })
        .collect();
    let mut rows = 0;
    for line in csv.lines().skip(1) {
        let mut f = line.splitn(4, ',');
        let (kind, value) = (f.next().expect("type"), f.next().expect("value"));
        if matches!(kind, "md5" | "sha1" | "sha256" | "ip" | "host") {
            assert!(
                raw.contains(&value.to_lowercase()),
                "{kind} {value} not in the alerts"
            );
            rows += 1;
        }
    }
    assert!(rows >= 2, "hashes and the host at least: {csv}");
    let host = shown["alerts"][0].as_str().map(|a| {
        json(&env.ok(&["--as", "alice", "get", a]))["computer"]
            .as_str()
            .expect("computer")
            .to_owned()
    });
    assert!(
        csv.contains(&format!("host,{}", host.expect("host"))),
        "{csv}"
    );
    let bundle = json(&env.ok(&["--as", "alice", "cases", "iocs", id, "--format", "stix"]));
    assert_eq!(bundle["type"], "bundle");
    let objects = bundle["objects"].as_array().expect("objects");
    assert!(!objects.is_empty());
    for o in objects {
        assert_eq!(o["spec_version"], "2.1");
        assert!(o["pattern"].as_str().expect("pattern").starts_with('['));
    }
    let block = env.ok(&["--as", "alice", "cases", "iocs", id, "--format", "block"]);
    assert!(
        block
            .lines()
            .all(|l| !l.starts_with("user\t") && !l.starts_with("command-line\t"))
    );
    assert!(
        env.fails(&["--as", "carol", "cases", "iocs", id])
            .contains("not found or not permitted")
    );

    // carol may not see the logs: no case, no alert, no history.
    assert_eq!(
        json(&env.ok(&["--as", "carol", "cases", "ls", "--json"])),
        json("[]")
    );
    assert!(
        env.fails(&["--as", "carol", "cases", "show", id])
            .contains("not found or not permitted")
    );
    env.ok(&["audit", "verify"]);
}
