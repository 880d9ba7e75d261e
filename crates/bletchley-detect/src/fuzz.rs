//! Entry points for the fuzzer (`bletchley-fuzz`): EVTX files, syslog and JSON Lines
//! records as a log upload brings them, and Sigma rule files as an analyst adds them.
//! Each returns a short signature of the outcome; a panic is the finding.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::engine::{Engine, LoadReport};
use crate::event::Event;
use crate::mapping::Mapping;
use crate::read;
use crate::rule;

fn mapping() -> &'static Mapping {
    static M: OnceLock<Mapping> = OnceLock::new();
    M.get_or_init(Mapping::builtin)
}

fn outcome<T>(r: Result<T, impl std::fmt::Display>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string().chars().take(40).collect(),
    }
}

/// An EVTX file, every record rendered and mapped.
pub fn evtx_file(data: &[u8]) -> String {
    let mut n = 0usize;
    let r = read::evtx::read_bytes(
        data.to_vec(),
        Arc::from("fuzz.evtx"),
        mapping(),
        &mut |_e: Event| n += 1,
    );
    match r {
        Ok(stats) => format!("{n} records, {} skipped", stats.skipped.min(3)),
        Err(e) => outcome::<()>(Err(e)),
    }
}

/// One syslog line.
pub fn syslog_line(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    match read::syslog::parse_line(&text, 2026) {
        Some(l) => format!("ok {}", l.params.len().min(3)),
        None => "not syslog".into(),
    }
}

/// One JSON Lines record, mapped to fields.
pub fn jsonl_record(data: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(v) => {
            let e = mapping().event_from_jsonl(
                v,
                crate::event::Origin {
                    file: Arc::from("fuzz.jsonl"),
                    record: 1,
                },
            );
            format!("{} fields", e.len().min(5))
        }
        Err(_) => "not json".into(),
    }
}

/// A Sigma rule file: parsed, compiled, and run over one event.
pub fn sigma_rule(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    match rule::parse_file(Path::new("fuzz.yml"), &text, &mapping().placeholders) {
        Ok(rules) => {
            let engine = Engine::compile(rules, mapping().clone(), LoadReport::default());
            let mut e = Event::new(
                crate::event::Origin {
                    file: Arc::from("e"),
                    record: 1,
                },
                serde_json::Value::Null,
            );
            e.push(
                "Channel",
                crate::event::Value::text("Microsoft-Windows-Sysmon/Operational"),
            );
            e.push("EventID", crate::event::Value::text("1"));
            e.push(
                "CommandLine",
                crate::event::Value::text("powershell -enc SQBFAFgA whoami /all"),
            );
            e.push(
                "Image",
                crate::event::Value::text("C:\\\\Windows\\\\System32\\\\cmd.exe"),
            );
            let mut out = Vec::new();
            engine.detect(&e, &mut engine.scratch(), &mut out);
            format!(
                "{} rules, {} fired",
                engine.rule_count().min(3),
                out.len().min(3)
            )
        }
        Err(e) => outcome::<()>(Err(e)),
    }
}

/// Valid inputs for a target.
pub fn seeds(name: &str) -> Vec<Vec<u8>> {
    match name {
        "evtx_file" => vec![
            include_bytes!(
                "../tests/data/sigma/regression/rules/windows/process_creation/proc_creation_win_curl_custom_user_agent/85de1f22-d189-44e4-8239-dc276b45379b.evtx"
            )
            .to_vec(),
            include_bytes!("../tests/data/sigma/evtx/EVTX-to-MITRE-Attack/Antivirus/ID1116-1117-Defender threat detected.evtx").to_vec(),
        ],
        "syslog_line" => [
            "Dec  6 10:01:02 web1 sshd[4242]: Failed password for root from 10.0.0.9",
            "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\"] An application event",
            "2026-12-06T10:00:00.123456+00:00 h app[1]: m",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect(),
        "jsonl_record" => vec![
            br#"{"@timestamp":"2026-12-06T10:00:00Z","winlog":{"event_id":4625,"channel":"Security","event_data":{"TargetUserName":"bob"}}}"#.to_vec(),
            br#"{"EventID":1,"CommandLine":"whoami","nested":{"a":[1,2,{"b":null}]}}"#.to_vec(),
        ],
        "sigma_rule" => vec![
            include_bytes!("../tests/data/sigma/rules/windows/process_creation/proc_creation_win_powershell_base64_frombase64string.yml").to_vec(),
            b"title: c\ncorrelation:\n  type: event_count\n  rules: [a]\n  group-by: [User]\n  timespan: 5m\n  condition:\n    gte: 3\n".to_vec(),
            b"title: t\nlogsource:\n  product: windows\n  category: process_creation\ndetection:\n  a:\n    CommandLine|base64offset|contains: whoami\n  b:\n    CommandLine|re|i: '^power'\n  c:\n    CommandLine|contains|windash: ' -enc '\n  condition: 1 of them and not (a and b)\n".to_vec(),
        ],
        _ => Vec::new(),
    }
}
