//! For every (principal, item) pair, `get` and `ls` agree with the expected
//! table written in `fixtures/access_matrix.json`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::common::Env;

#[derive(Deserialize)]
struct Fixture {
    agencies: Vec<String>,
    principals: Vec<P>,
    collections: Vec<C>,
    operations: Vec<Op>,
    items: Vec<Item>,
    expected: BTreeMap<String, Vec<String>>,
}

#[derive(Deserialize)]
struct P {
    name: String,
    agency: String,
    clearance: String,
    compartments: Vec<String>,
    nationality: String,
    roles: Vec<String>,
}

#[derive(Deserialize)]
struct C {
    name: String,
    bulk: bool,
}

#[derive(Deserialize)]
struct Op {
    name: String,
    agencies: Vec<String>,
    members: Vec<String>,
    from: String,
    until: Option<String>,
    share: Vec<String>,
    withdraw: Vec<String>,
}

#[derive(Deserialize)]
struct Item {
    key: String,
    collection: String,
    marking: String,
    ingester: String,
}

#[derive(Deserialize)]
struct Listed {
    id: String,
    title: String,
}

#[test]
fn get_and_ls_agree_with_the_expected_table() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/access_matrix.json"
    ))
    .expect("fixture");
    let fx: Fixture = serde_json::from_str(&text).expect("fixture parses");
    assert!(fx.principals.len() >= 12 && fx.collections.len() >= 8 && fx.agencies.len() == 4);
    assert!(
        fx.items
            .iter()
            .map(|i| &i.marking)
            .collect::<BTreeSet<_>>()
            .len()
            >= 15
    );

    let env = Env::new();
    for a in &fx.agencies {
        env.ok(&["agency", "add", a]);
    }
    for p in &fx.principals {
        env.ok(&[
            "principal",
            "add",
            &p.name,
            "--agency",
            &p.agency,
            "--clearance",
            &p.clearance,
            "--compartments",
            &p.compartments.join(","),
            "--nationality",
            &p.nationality,
            "--roles",
            &p.roles.join(","),
        ]);
    }
    for c in &fx.collections {
        let mut a = vec!["collection", "add", c.name.as_str()];
        if c.bulk {
            a.push("--bulk");
        }
        env.ok(&a);
    }
    for op in &fx.operations {
        let agencies = op.agencies.join(",");
        let members = op.members.join(",");
        let mut a = vec![
            "operation",
            "add",
            op.name.as_str(),
            "--agencies",
            &agencies,
            "--from",
            &op.from,
        ];
        if let Some(u) = &op.until {
            a.extend(["--until", u.as_str()]);
        }
        if !op.members.is_empty() {
            a.extend(["--members", &members]);
        }
        env.ok(&a);
        for s in &op.share {
            env.ok(&["operation", "share", &op.name, s]);
        }
        for w in &op.withdraw {
            env.ok(&["operation", "withdraw", &op.name, w]);
        }
    }
    let mut ids: BTreeMap<String, String> = BTreeMap::new();
    for it in &fx.items {
        let f = env.file(
            &format!("{}.txt", it.key),
            format!("content of {}", it.key).as_bytes(),
        );
        let got = env.ingest(&it.ingester, &it.collection, &it.marking, &[&f]);
        assert_eq!(got.len(), 1);
        ids.insert(it.key.clone(), got[0].clone());
    }

    let mut mismatches = Vec::new();
    for p in &fx.principals {
        let want: BTreeSet<&str> = fx.expected[&p.name].iter().map(String::as_str).collect();
        let out = env.ok(&[
            "--as",
            &p.name,
            "ls",
            "--json",
            "--justification",
            "access matrix test",
        ]);
        let listed: Vec<Listed> = serde_json::from_str(&out).expect("ls --json");
        let seen: BTreeSet<String> = listed
            .iter()
            .map(|l| l.title.trim_end_matches(".txt").to_owned())
            .collect();
        let seen: BTreeSet<&str> = seen.iter().map(String::as_str).collect();
        if seen != want {
            mismatches.push(format!("ls as {}: got {seen:?}, want {want:?}", p.name));
        }
        for l in &listed {
            assert_eq!(ids[l.title.trim_end_matches(".txt")], l.id);
        }
        for (key, id) in &ids {
            let o = env.run(&[
                "--as",
                &p.name,
                "get",
                id,
                "--justification",
                "access matrix test",
            ]);
            let allowed = want.contains(key.as_str());
            if o.status.success() != allowed {
                mismatches.push(format!(
                    "get {key} as {}: success={} want {allowed}",
                    p.name,
                    o.status.success()
                ));
            } else if allowed {
                assert_eq!(o.stdout, format!("content of {key}").as_bytes());
            } else {
                assert_eq!(
                    String::from_utf8_lossy(&o.stderr).trim(),
                    "error: not found or not permitted"
                );
                assert!(o.stdout.is_empty());
            }
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );

    // The bulk collection needs a justification: listed without one it is
    // left out, read without one it is refused.
    let out = env.ok(&["--as", "alice", "ls", "--json"]);
    assert!(!out.contains("I05"));
    let err = env.fails(&["--as", "alice", "get", &ids["I05"]]);
    assert!(err.contains("justification"), "{err}");
    let err = env.fails(&["--as", "alice", "ls", "--collection", "mi5/intercepts"]);
    assert!(err.contains("justification"), "{err}");
    // Both refusals and the justifications given are in the audit log.
    let audit = env.ok(&["audit", "show", "--json"]);
    assert!(audit.contains("access matrix test"));
    assert!(audit.contains("\"outcome\":\"denied\""));
    env.ok(&["audit", "verify"]);
}
