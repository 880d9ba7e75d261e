//! The link graph on a generated corpus finds what was planted: each
//! network is one community apart from the others, the known shortest paths
//! have the known length, unconnected networks have no path, and call
//! records and e-mails produce timed events.

use serde_json::Value;

use crate::common::{Env, files_under};

fn json(env: &Env, args: &[&str]) -> Value {
    let mut a = vec!["--as", "alice"];
    a.extend_from_slice(args);
    a.push("--json");
    serde_json::from_str(&env.ok(&a)).expect("json output")
}

#[test]
fn planted_networks_paths_and_communities_are_found() {
    let env = Env::new();
    env.basic();
    let corpus = env.root.join("corpus");
    let out = env.ok(&[
        "corpus",
        "generate",
        corpus.to_str().unwrap(),
        "--docs",
        "240",
        "--seed",
        "11",
    ]);
    assert!(out.contains("planted networks"), "{out}");
    // The same seed writes the same corpus, byte for byte.
    let again = env.root.join("again");
    env.ok(&[
        "corpus",
        "generate",
        again.to_str().unwrap(),
        "--docs",
        "240",
        "--seed",
        "11",
    ]);
    let (a, b) = (files_under(&corpus), files_under(&again));
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(
            std::fs::read(x).unwrap(),
            std::fs::read(y).unwrap(),
            "{x:?}"
        );
    }
    // Refuses to write over an existing corpus.
    env.fails(&[
        "corpus",
        "generate",
        corpus.to_str().unwrap(),
        "--docs",
        "240",
    ]);

    let key: Value =
        serde_json::from_slice(&std::fs::read(corpus.join("answer-key.json")).unwrap()).unwrap();
    let files: Vec<_> = a
        .iter()
        .filter(|p| !p.ends_with("answer-key.json") && !p.ends_with("manifest.jsonl"))
        .cloned()
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let ids = env.ingest("alice", "mi5/ct", "TOP SECRET", &refs);
    assert_eq!(ids.len(), files.len());

    let communities = json(&env, &["graph", "communities"]);
    let groups: Vec<Vec<String>> = communities["communities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            g.as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap().to_owned())
                .collect()
        })
        .collect();
    let networks = key["networks"].as_array().unwrap();
    assert!(networks.len() >= 4, "{}", networks.len());
    let mut seen_groups = Vec::new();
    for net in networks {
        let sel: Vec<&str> = net["selectors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        let group = groups
            .iter()
            .position(|g| g.iter().any(|s| s == sel[0]))
            .unwrap_or_else(|| panic!("{} not in any community", sel[0]));
        for s in &sel {
            assert!(
                groups[group].iter().any(|g| g == s),
                "{s} of {} outside its network's community {:?}; its own: {:?}",
                net["name"],
                groups[group],
                groups.iter().find(|g| g.iter().any(|x| x == s))
            );
        }
        assert!(
            !seen_groups.contains(&group),
            "{} shares a community with another network",
            net["name"]
        );
        seen_groups.push(group);
    }

    for p in key["paths"].as_array().unwrap() {
        let (from, to) = (p["from"].as_str().unwrap(), p["to"].as_str().unwrap());
        let got = json(&env, &["graph", "path", from, to]);
        let steps = got["path"]
            .as_array()
            .unwrap_or_else(|| panic!("no path {from} -> {to}"));
        assert_eq!(
            steps.len() - 1,
            p["hops"].as_u64().unwrap() as usize,
            "{from} -> {to}"
        );
        for s in &steps[1..] {
            assert!(!s["via_items"].as_array().unwrap().is_empty());
        }
    }
    for pair in key["unconnected"].as_array().unwrap() {
        let (a, b) = (pair[0].as_str().unwrap(), pair[1].as_str().unwrap());
        assert!(
            json(&env, &["graph", "path", a, b])["path"].is_null(),
            "{a} {b}"
        );
    }

    // Common contacts: the two ring neighbours of member 0 that are also
    // linked to member 2 (member 1 by the ring); centrality ranks a bridge
    // member of a bridged network highly.
    let net = &networks[0];
    let m = |i: usize, what: &str| format!("{what}:{}", net["members"][i][what].as_str().unwrap());
    let common = json(&env, &["graph", "common", &m(0, "phone"), &m(2, "phone")]);
    let shared: Vec<&str> = common["common"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["entity"].as_str().unwrap())
        .collect();
    assert!(shared.contains(&m(1, "phone").as_str()), "{shared:?}");
    let central = json(&env, &["graph", "centrality", "--top", "5"]);
    assert_eq!(central["centrality"].as_array().unwrap().len(), 5);

    // The neighbours of a member include every ring neighbour's phone.
    let n = json(&env, &["graph", "neighbours", &m(0, "phone")]);
    let near: Vec<&str> = n["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["entity"].as_str().unwrap())
        .collect();
    for i in [1, 2, 4] {
        assert!(near.contains(&m(i, "phone").as_str()), "{near:?}");
    }

    // Timeline of two ring neighbours: calls at their own times, with
    // direction and duration, ordered.
    let t = json(&env, &["timeline", &m(0, "phone"), &m(1, "phone")]);
    let events = t.as_array().unwrap();
    let calls: Vec<&Value> = events.iter().filter(|e| e["call"].is_object()).collect();
    assert!(calls.len() >= 2, "{t}");
    let times: Vec<i64> = events
        .iter()
        .map(|e| e["time_ms"].as_i64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]));
    assert!(
        calls
            .iter()
            .all(|c| c["call"]["duration_s"].as_u64().unwrap() > 0)
    );
}
