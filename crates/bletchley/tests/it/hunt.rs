//! `bletchley hunt`: Sigma rules over log files with no data directory, its outputs,
//! and its answers to bad rules and bad logs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn sigma() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bletchley-detect/tests/data/sigma")
}

fn curl_log() -> PathBuf {
    sigma().join(
        "regression/rules/windows/process_creation/proc_creation_win_curl_custom_user_agent/85de1f22-d189-44e4-8239-dc276b45379b.evtx",
    )
}

fn hunt(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .arg("hunt")
        .args(args)
        .output()
        .expect("spawn bletchley")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn hunt_prints_detections_as_json_csv_and_a_table() {
    let rules = sigma().join("rules");
    let log = curl_log();
    let o = hunt(&[
        log.as_os_str(),
        "-s".as_ref(),
        rules.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let hit = v
        .as_array()
        .expect("array")
        .iter()
        .find(|d| d["id"] == "85de1f22-d189-44e4-8239-dc276b45379b")
        .expect("the regression rule fires");
    assert_eq!(hit["kind"], "detection");
    assert_eq!(hit["level"], "medium");
    // The record number Windows wrote, and the fields the rule read.
    assert_eq!(hit["record"], 21475);
    assert_eq!(hit["computer"], "swachchhanda");
    assert!(
        hit["fields"]["CommandLine"]
            .as_str()
            .is_some_and(|c| c.contains("User-Agent: EvilAgent")),
        "{hit}"
    );
    assert_eq!(hit["document"]["Event"]["System"]["EventRecordID"], 21475);
    let stderr = text(&o.stderr);
    assert!(stderr.contains("loaded 1653 detection rules"), "{stderr}");

    let o = hunt(&[
        log.as_os_str(),
        "-s".as_ref(),
        rules.as_os_str(),
        "--csv".as_ref(),
        "-q".as_ref(),
    ]);
    let csv = text(&o.stdout);
    assert!(
        csv.starts_with("timestamp,level,rule_id,rule,computer,file,record,fields\n"),
        "{csv}"
    );
    assert!(
        csv.contains("85de1f22-d189-44e4-8239-dc276b45379b"),
        "{csv}"
    );
    assert!(
        text(&o.stderr).is_empty(),
        "-q prints nothing: {}",
        text(&o.stderr)
    );

    let o = hunt(&[
        log.as_os_str(),
        "-s".as_ref(),
        rules.as_os_str(),
        "--level".as_ref(),
        "high".as_ref(),
    ]);
    let table = text(&o.stdout);
    assert!(
        !table.contains("Curl Web Request With Potential Custom User-Agent"),
        "medium is below high"
    );
    let o = hunt(&[log.as_os_str(), "-s".as_ref(), rules.as_os_str()]);
    assert!(text(&o.stdout).contains("Curl Web Request With Potential Custom User-Agent"));
}

#[test]
fn hunt_reads_syslog_and_json_lines_and_correlates() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("sshd.yml"),
        "title: SSH password failure\nid: ssh-fail\nlevel: low\nlogsource:\n  product: linux\n  service: sshd\ndetection:\n  keywords:\n    - 'Failed password'\n  condition: keywords\n",
    )
    .expect("rule");
    // A JSON Lines detection and an event_count correlation over it, in one file.
    std::fs::write(
        d.join("logon.yml"),
        "title: Logon failure\nid: logon-fail\nname: logon_fail\nlogsource:\n  product: windows\n  service: security\ndetection:\n  sel:\n    EventID: 4625\n  condition: sel\n---\ntitle: Many logon failures for one user\nid: brute\nlevel: high\ncorrelation:\n  type: event_count\n  rules: [logon_fail]\n  group-by: [TargetUserName]\n  timespan: 1m\n  condition:\n    gte: 3\n",
    )
    .expect("rules");
    let mut syslog =
        b"Dec  6 10:01:02 web1 sshd[4242]: Failed password for root from 10.0.0.9 port 22\n"
            .to_vec();
    syslog.extend_from_slice(
        b"Dec  6 10:01:03 web1 sshd[4242]: Failed password for \xff\xfe admin\n",
    );
    syslog.extend_from_slice(b"this line is not syslog\n");
    syslog.extend_from_slice(
        b"<38>1 2026-12-06T10:01:04Z web1 sshd 4243 - - Accepted password for alice\n",
    );
    std::fs::write(d.join("auth.log"), &syslog).expect("syslog");
    let mut jsonl = String::new();
    for (i, user) in ["bob", "bob", "carol", "bob"].iter().enumerate() {
        jsonl.push_str(&format!(
            "{{\"@timestamp\":\"2026-12-06T10:00:{:02}Z\",\"winlog\":{{\"event_id\":4625,\"channel\":\"Security\",\"computer_name\":\"dc1\",\"event_data\":{{\"TargetUserName\":\"{user}\"}}}}}}\n",
            i * 10
        ));
    }
    jsonl.push_str("{not json\n");
    std::fs::write(d.join("security.jsonl"), jsonl).expect("jsonl");
    let o = hunt(&[
        d.as_os_str(),
        "-s".as_ref(),
        d.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let items = v.as_array().expect("array");
    let count = |id: &str| items.iter().filter(|d| d["id"] == id).count();
    assert_eq!(
        count("ssh-fail"),
        2,
        "both failures, the second with its bytes replaced"
    );
    // The rule the correlation counts reports nothing of its own (`generate` is false).
    assert_eq!(count("logon-fail"), 0);
    let brute: Vec<_> = items.iter().filter(|d| d["id"] == "brute").collect();
    assert_eq!(brute.len(), 1, "{v:#}");
    assert_eq!(brute[0]["kind"], "correlation");
    assert_eq!(brute[0]["group_by"]["TargetUserName"], "bob");
    assert_eq!(brute[0]["count"], 3);
    let stderr = text(&o.stderr);
    // With `generate: true` it reports its four detections as well.
    let with_generate = std::fs::read_to_string(d.join("logon.yml"))
        .expect("rules")
        .replace("  timespan: 1m\n", "  timespan: 1m\n  generate: true\n");
    std::fs::write(d.join("logon.yml"), with_generate).expect("rules");
    let again = hunt(&[
        d.as_os_str(),
        "-s".as_ref(),
        d.as_os_str(),
        "--json".as_ref(),
        "-q".as_ref(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).expect("json");
    let n = v
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| d["id"] == "logon-fail")
        .count();
    assert_eq!(n, 4);
    assert!(
        stderr.contains("auth.log: record 3 skipped: not a syslog line"),
        "{stderr}"
    );
    assert!(
        stderr.contains("auth.log: 1 records held invalid UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("security.jsonl: record 5 skipped: not JSON"),
        "{stderr}"
    );
}

#[test]
fn bad_rules_are_named_by_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("typo.yml"),
        "title: t\nlogsource:\n  product: windows\ndetection:\n  sel:\n    Image|contians: x\n  condition: sel\n",
    )
    .expect("rule");
    std::fs::write(d.join("broken.yml"), "title: t\ndetection:\n  sel: {a: b\n").expect("rule");
    let log = curl_log();
    let o = hunt(&[log.as_os_str(), "-s".as_ref(), d.as_os_str()]);
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(stderr.contains("typo.yml:6:"), "{stderr}");
    assert!(stderr.contains("unknown modifier 'contians'"), "{stderr}");
    assert!(stderr.contains("broken.yml:"), "{stderr}");
    assert!(stderr.contains("not YAML"), "{stderr}");
    assert!(stderr.contains("no rule loaded"), "{stderr}");
    // A rule whose logsource the mapping does not know is reported, not dropped silently.
    std::fs::write(
        d.join("typo.yml"),
        "title: t\nid: x1\nlogsource:\n  product: windows\n  category: no_such_thing\ndetection:\n  sel:\n    Image: x\n  condition: sel\n",
    )
    .expect("rule");
    std::fs::remove_file(d.join("broken.yml")).expect("rm");
    std::fs::write(
        d.join("ok.yml"),
        "title: ok\nid: ok1\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  sel:\n    Image|endswith: '\\curl.exe'\n    NoSuchField: 1\n  condition: sel\n",
    )
    .expect("rule");
    let o = hunt(&[log.as_os_str(), "-s".as_ref(), d.as_os_str()]);
    let stderr = text(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("rule x1: logsource {product: windows, category: no_such_thing} has no entry in the mapping"), "{stderr}");
    assert!(
        stderr.contains("rule ok1: field \"NoSuchField\" is not in its logsource's mapping"),
        "{stderr}"
    );
}

#[test]
fn a_truncated_evtx_is_refused_and_a_corrupted_chunk_is_counted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read(curl_log()).expect("log");
    let truncated = dir.path().join("truncated.evtx");
    std::fs::write(&truncated, &good[..1000]).expect("write");
    let mut bad = good.clone();
    for b in &mut bad[4096 + 512..4096 + 900] {
        *b ^= 0x5a;
    }
    let corrupted = dir.path().join("corrupted.evtx");
    std::fs::write(&corrupted, &bad).expect("write");
    let rules = sigma().join("rules");
    let o = hunt(&[
        truncated.as_os_str(),
        corrupted.as_os_str(),
        "-s".as_ref(),
        rules.as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(2), "a refused file is an error exit");
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("truncated.evtx: not a valid EVTX file"),
        "{stderr}"
    );
    assert!(
        stderr.contains("corrupted.evtx: record 1 skipped"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(text(&o.stdout).trim(), "[]");
}

/// A correlation's `aliases` let one group-by name stand for differently named fields in the
/// rules it joins: a failed logon (`TargetUserName`) followed by an account created by the
/// same user (`SubjectUserName`) fires for that user only.
#[test]
fn correlation_aliases_join_differently_named_fields() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    std::fs::write(
        d.join("rules.yml"),
        "title: Logon failure\nid: fail\nlogsource:\n  product: windows\n  service: security\ndetection:\n  sel:\n    EventID: 4625\n  condition: sel\n---\n\
title: Account created\nid: created\nname: account_created\nlogsource:\n  product: windows\n  service: security\ndetection:\n  sel:\n    EventID: 4720\n  condition: sel\n---\n\
title: Failed logon then an account created by the same user\nid: fail-then-create\nlevel: high\ncorrelation:\n  type: temporal_ordered\n  rules: [fail, account_created]\n  aliases:\n    user:\n      fail: TargetUserName\n      account_created: SubjectUserName\n  group-by: [user]\n  timespan: 5m\n",
    )
    .expect("rules");
    let event = |t: &str, id: u32, field: &str, user: &str| {
        format!(
            "{{\"@timestamp\":\"2026-12-06T10:{t}Z\",\"winlog\":{{\"event_id\":{id},\"channel\":\"Security\",\"computer_name\":\"dc1\",\"event_data\":{{\"{field}\":\"{user}\"}}}}}}\n"
        )
    };
    let log = [
        event("00:00", 4625, "TargetUserName", "bob"),
        event("00:30", 4625, "TargetUserName", "carol"),
        event("01:00", 4720, "SubjectUserName", "bob"),
        event("01:30", 4720, "SubjectUserName", "dave"),
    ]
    .concat();
    std::fs::write(d.join("security.jsonl"), log).expect("log");
    let o = hunt(&[
        d.join("security.jsonl").as_os_str(),
        "-s".as_ref(),
        d.join("rules.yml").as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
    let fired: Vec<_> = v
        .as_array()
        .expect("array")
        .iter()
        .filter(|d| d["id"] == "fail-then-create")
        .collect();
    assert_eq!(fired.len(), 1, "{v:#}");
    assert_eq!(fired[0]["group_by"]["user"], "bob");
    // An alias naming a rule the correlation does not count is refused, naming the file.
    std::fs::write(
        d.join("bad.yml"),
        "title: x\nid: x\ncorrelation:\n  type: temporal\n  rules: [a, b]\n  aliases:\n    user:\n      c: Field\n  group-by: [user]\n  timespan: 5m\n",
    )
    .expect("rule");
    let o = hunt(&[
        d.join("security.jsonl").as_os_str(),
        "-s".as_ref(),
        d.join("bad.yml").as_os_str(),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("bad.yml") && err.contains("names rule \"c\""),
        "{err}"
    );
}
