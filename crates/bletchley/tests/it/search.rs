//! Search sees exactly the visible set: hits, totals, facets, highlights and
//! ranking are identical whether or not items the principal may not see are
//! in the store.

use serde_json::Value;

use crate::common::Env;

pub(crate) fn setup(env: &Env) {
    for a in ["mi5", "gchq", "mod"] {
        env.ok(&["agency", "add", a]);
    }
    for (name, agency, clearance, comps, nat) in [
        ("bob", "mi5", "SECRET", "", "GBR"),
        ("alice", "mi5", "TOP SECRET", "STRAP1", "GBR"),
        ("sam", "mi5", "SECRET", "", "USA"),
        ("carol", "gchq", "TOP SECRET", "", "GBR"),
        ("mona", "mod", "SECRET", "", "GBR"),
    ] {
        env.ok(&[
            "principal",
            "add",
            name,
            "--agency",
            agency,
            "--clearance",
            clearance,
            "--compartments",
            comps,
            "--nationality",
            nat,
        ]);
    }
    for c in [
        "mi5/ct",
        "gchq/shared",
        "gchq/private",
        "gchq/withdrawn",
        "mod/old",
    ] {
        env.ok(&["collection", "add", c]);
    }
    env.ok(&[
        "operation",
        "add",
        "RUNNING",
        "--agencies",
        "mi5,gchq",
        "--from",
        "2024-01-01",
    ]);
    env.ok(&["operation", "share", "RUNNING", "gchq/shared"]);
    env.ok(&["operation", "share", "RUNNING", "gchq/withdrawn"]);
    env.ok(&["operation", "withdraw", "RUNNING", "gchq/withdrawn"]);
    env.ok(&[
        "operation",
        "add",
        "ENDED",
        "--agencies",
        "mi5,mod",
        "--from",
        "2020-01-01",
        "--until",
        "2020-12-31",
    ]);
    env.ok(&["operation", "share", "ENDED", "mod/old"]);
}

pub(crate) const VISIBLE: &[(&str, &str, &str, &str, &str)] = &[
    (
        "alice",
        "mi5/ct",
        "OFFICIAL",
        "v1.txt",
        "The courier met the harbour master at dawn near the harbour.",
    ),
    (
        "alice",
        "mi5/ct",
        "SECRET",
        "v2.txt",
        "A harbour courier carried a package for the network.",
    ),
    (
        "alice",
        "mi5/ct",
        "SECRET//UK EYES ONLY",
        "v3.txt",
        "Network of couriers around the harbour and the old port of Leith and beyond.",
    ),
    (
        "alice",
        "mi5/ct",
        "OFFICIAL-SENSITIVE",
        "v4.txt",
        "The port authority reported nothing unusual this week at all.",
    ),
    (
        "carol",
        "gchq/shared",
        "SECRET//REL TO GBR, USA",
        "v5.txt",
        "Intercepted courier traffic mentions the harbour twice: harbour, harbour.",
    ),
    (
        "carol",
        "gchq/shared",
        "OFFICIAL",
        "v6.txt",
        "Weekly summary of network courier activity.",
    ),
];

pub(crate) const INVISIBLE: &[(&str, &str, &str, &str, &str)] = &[
    // A higher classification.
    (
        "alice",
        "mi5/ct",
        "TOP SECRET",
        "x1.txt",
        "harbour harbour harbour courier network secret plan",
    ),
    // A codeword bob lacks.
    (
        "alice",
        "mi5/ct",
        "SECRET//STRAP1",
        "x2.txt",
        "courier harbour network strap material",
    ),
    // Not releasable to bob's nationality.
    (
        "sam",
        "mi5/ct",
        "SECRET//REL TO USA",
        "x3.txt",
        "harbour courier for US eyes",
    ),
    // Another agency's unshared collection.
    (
        "carol",
        "gchq/private",
        "OFFICIAL",
        "x4.txt",
        "harbour harbour courier courier network network",
    ),
    // Shared into an operation that has ended.
    (
        "mona",
        "mod/old",
        "OFFICIAL",
        "x5.txt",
        "old harbour courier logistics",
    ),
    // Shared, then withdrawn.
    (
        "carol",
        "gchq/withdrawn",
        "OFFICIAL",
        "x6.txt",
        "withdrawn harbour courier network",
    ),
];

pub(crate) fn ingest(env: &Env, items: &[(&str, &str, &str, &str, &str)]) {
    for (who, coll, marking, title, text) in items {
        let f = env.file(title, text.as_bytes());
        env.ingest(who, coll, marking, &[&f]);
    }
}

/// The search output for bob, without what legitimately differs between two
/// stores (random item ids, ingest times).
fn search(env: &Env, args: &[&str]) -> Value {
    let mut a = vec!["--as", "bob", "search"];
    a.extend_from_slice(args);
    a.push("--json");
    let mut v: Value = serde_json::from_str(&env.ok(&a)).expect("json");
    if let Some(hits) = v["hits"].as_array_mut() {
        for h in hits {
            let o = h.as_object_mut().expect("hit");
            o.remove("id");
            o.remove("created_ms");
        }
    }
    v
}

#[test]
fn no_side_channel_through_search() {
    let small = Env::new();
    let big = Env::new();
    setup(&small);
    setup(&big);
    ingest(&small, VISIBLE);
    // The bigger store gets the invisible items first, so every visible
    // document sits elsewhere in its index.
    ingest(&big, INVISIBLE);
    ingest(&big, VISIBLE);
    // Alice (TOP SECRET STRAP1) sees some of the extra items: they are indexed.
    let alice: Value =
        serde_json::from_str(&big.ok(&["--as", "alice", "search", "harbour", "--json"]))
            .expect("json");
    assert!(
        alice["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .any(|h| h["title"] == "x1.txt")
    );

    for args in [
        vec!["harbour", "--facets"],
        vec!["courier network", "--facets"],
        vec!["harbour OR network", "--limit", "2", "--offset", "1"],
        vec!["\"harbour courier\""],
        vec!["courier", "--sort", "time", "--facets"],
        vec!["harbor~", "--facets"],
        vec!["type:text AND port"],
    ] {
        let a = search(&small, &args);
        let b = search(&big, &args);
        assert_eq!(a, b, "search {args:?} differs when invisible items exist");
        assert!(
            a["total"].as_u64().expect("total") > 0,
            "{args:?} found nothing: {a}"
        );
    }
    // Suggestions: the same words, order and counts.
    for prefix in ["ha", "cour", "net", "po"] {
        let a = small.ok(&["--as", "bob", "suggest", prefix, "--json"]);
        let b = big.ok(&["--as", "bob", "suggest", prefix, "--json"]);
        assert_eq!(
            a, b,
            "suggest {prefix:?} differs when invisible items exist"
        );
        assert!(a.contains("\"items\""), "{prefix}: {a}");
    }
    // Words only invisible items hold are never suggested.
    for prefix in ["stra", "withd", "logis"] {
        let b: Value = serde_json::from_str(&big.ok(&["--as", "bob", "suggest", prefix, "--json"]))
            .expect("json");
        assert_eq!(b, serde_json::json!([]), "{prefix}");
    }
    big.fails(&["--as", "bob", "suggest", "h"]);
    let v = search(&big, &["harbour", "--facets"]);
    for h in v["hits"].as_array().expect("hits") {
        assert!(
            h["title"].as_str().expect("title").starts_with('v'),
            "invisible hit: {h}"
        );
    }
    assert!(
        v["hits"][0]["highlight"]
            .as_str()
            .expect("highlight")
            .contains("<b>harbour</b>")
    );
    // A collection filter naming an invisible collection reads like an empty one.
    assert_eq!(
        search(&big, &["harbour collection:gchq/private"])["total"],
        0
    );
    assert_eq!(
        search(&big, &["harbour collection:gchq/nonexistent"])["total"],
        0
    );
    // Searches are audited with their query.
    assert!(big.ok(&["audit", "show"]).contains("search"));
}

#[test]
fn bad_queries_are_refused_clearly() {
    let env = Env::new();
    env.basic();
    let f = env.file("a.txt", b"some text");
    env.ingest("alice", "mi5/ct", "SECRET", &[&f]);
    for (q, needle) in [
        ("text AND", "invalid query"),
        ("from:yesterday text", "YYYY-MM-DD"),
        ("text~7", "fuzzy distance"),
        ("entity:nonsense", "not a recognised selector"),
        ("", "empty query"),
    ] {
        let err = env.fails(&["--as", "alice", "search", q]);
        assert!(err.contains(needle), "{q:?}: {err}");
    }
    assert!(
        env.fails(&["--as", "alice", "search", "text", "--limit", "0"])
            .contains("limit")
    );
    assert!(
        env.ok(&["--as", "alice", "search", "text"])
            .contains("1 matches")
    );
}

pub(crate) const VISIBLE_LINKS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "alice",
        "mi5/ct",
        "SECRET",
        "l1.txt",
        "Subject on +44 20 7946 0018 wrote to viking@example.org twice.",
    ),
    (
        "alice",
        "mi5/ct",
        "OFFICIAL",
        "l2.txt",
        "viking@example.org logged in from 203.0.113.7 at night.",
    ),
    (
        "alice",
        "mi5/ct",
        "SECRET//UK EYES ONLY",
        "l3.txt",
        "Server 203.0.113.7 hosts https://drop.example.net/x for the network.",
    ),
    (
        "carol",
        "gchq/shared",
        "SECRET//REL TO GBR, USA",
        "l4.txt",
        "+44 20 7946 0018 paid into GB82 WEST 1234 5698 7654 32.",
    ),
];

pub(crate) const INVISIBLE_LINKS: &[(&str, &str, &str, &str, &str)] = &[
    (
        "alice",
        "mi5/ct",
        "TOP SECRET",
        "y1.txt",
        "viking@example.org with +44 20 7946 0018 and 198.51.100.9",
    ),
    (
        "carol",
        "gchq/private",
        "OFFICIAL",
        "y2.txt",
        "203.0.113.7 rang +44 20 7946 0018 directly",
    ),
    (
        "carol",
        "gchq/withdrawn",
        "OFFICIAL",
        "y3.txt",
        "GB82 WEST 1234 5698 7654 32 paid 203.0.113.7",
    ),
    (
        "mona",
        "mod/old",
        "OFFICIAL",
        "y4.txt",
        "https://drop.example.net/x mentions +44 20 7946 0018",
    ),
    (
        "alice",
        "mi5/ct",
        "SECRET//STRAP1",
        "y5.txt",
        "viking@example.org uses 0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed",
    ),
];

/// Graph output for bob with item ids replaced by titles (ids differ between stores).
fn graph(env: &Env, args: &[&str]) -> String {
    let listed: Value =
        serde_json::from_str(&env.ok(&["--as", "bob", "ls", "--json"])).expect("json");
    let mut a = vec!["--as", "bob", "graph"];
    a.extend_from_slice(args);
    a.push("--json");
    let mut out = env.ok(&a);
    for item in listed.as_array().expect("items") {
        out = out.replace(
            item["id"].as_str().expect("id"),
            item["title"].as_str().expect("title"),
        );
    }
    out
}

#[test]
fn no_side_channel_through_the_graph() {
    let small = Env::new();
    let big = Env::new();
    setup(&small);
    setup(&big);
    ingest(&small, VISIBLE_LINKS);
    ingest(&big, INVISIBLE_LINKS);
    ingest(&big, VISIBLE_LINKS);
    let cases: [&[&str]; 5] = [
        &["neighbours", "+44 20 7946 0018"],
        &["neighbours", "viking@example.org", "--hops", "3"],
        &["path", "+44 20 7946 0018", "https://drop.example.net/x"],
        &["path", "GB82 WEST 1234 5698 7654 32", "203.0.113.7"],
        &["communities"],
    ];
    let timelines: [&[&str]; 2] = [
        &["+44 20 7946 0018"],
        &["viking@example.org", "203.0.113.7", "+44 20 7946 0018"],
    ];
    for args in timelines {
        let strip = |env: &Env| -> Value {
            let mut a = vec!["--as", "bob", "timeline"];
            a.extend_from_slice(args);
            a.push("--json");
            let mut v: Value = serde_json::from_str(&env.ok(&a)).expect("json");
            for e in v.as_array_mut().expect("events") {
                let o = e.as_object_mut().expect("event");
                o.remove("id");
                o.remove("time_ms");
            }
            v
        };
        let (a, b) = (strip(&small), strip(&big));
        assert_eq!(a, b, "timeline {args:?} differs when invisible items exist");
        assert!(!a.as_array().expect("events").is_empty());
    }
    for args in cases {
        let a = graph(&small, args);
        let b = graph(&big, args);
        assert_eq!(a, b, "graph {args:?} differs when invisible items exist");
    }
    // The visible chain is found, and nothing invisible appears.
    let p = graph(
        &big,
        &["path", "+44 20 7946 0018", "https://drop.example.net/x"],
    );
    let v: Value = serde_json::from_str(&p).expect("json");
    let steps: Vec<&str> = v["path"]
        .as_array()
        .expect("path")
        .iter()
        .map(|s| s["entity"].as_str().expect("e"))
        .collect();
    assert_eq!(
        steps,
        [
            "phone:+442079460018",
            "email:viking@example.org",
            "ipv4:203.0.113.7",
            "url:https://drop.example.net/x"
        ]
    );
    let all = graph(&big, &["communities"]);
    for hidden in ["198.51.100.9", "0x5aaeb", "y1.txt", "y2.txt"] {
        assert!(!all.contains(hidden), "{hidden} leaked: {all}");
    }
    // Alice, cleared higher, does see the TOP SECRET link.
    let alice = big.ok(&[
        "--as",
        "alice",
        "graph",
        "neighbours",
        "viking@example.org",
        "--json",
    ]);
    assert!(alice.contains("198.51.100.9"), "{alice}");
    // Entity filters in search and the entities command.
    assert!(search(&big, &["entity:\"+44 20 7946 0018\""])["total"].as_u64() == Some(2));
    assert!(
        big.fails(&["--as", "bob", "graph", "neighbours", "not a selector"])
            .contains("not a recognised selector")
    );
}

#[test]
fn formats_are_extracted_and_failures_flagged() {
    let env = Env::new();
    env.basic();
    let eml = "From: Viking <viking@example.org>\r\nTo: handler@example.net\r\nSubject: Harbour meeting\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nMeet at the lighthouse.\r\n--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"calls.csv\"\r\n\r\ncaller,callee\r\n+442079460018,+33142685300\r\n--b--\r\n";
    let m = env.file("meeting.eml", eml.as_bytes());
    let c = env.file(
        "records.jsonl",
        b"{\"note\":\"ferry timetable\"}\n{broken\n",
    );
    let p = env.file("scan.pdf", b"%PDF-1.7\n\x00\x01\x02 corrupted \xff\xfe");
    env.ingest("alice", "mi5/ct", "SECRET", &[&m, &c, &p]);
    let v: Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "search", "lighthouse", "--json"]))
            .expect("json");
    assert_eq!(v["total"], 1);
    // Attachment text is searchable as an item of its own, derived from the
    // e-mail, and selectors in it are linked to the sender.
    let v: Value = serde_json::from_str(&env.ok(&[
        "--as",
        "alice",
        "search",
        "entity:\"+33 1 42 68 53 00\"",
        "--json",
    ]))
    .expect("json");
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["hits"][0]["title"], "calls.csv");
    let mail: Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "search", "lighthouse", "--json"]))
            .expect("json");
    assert_eq!(v["hits"][0]["derived_from"], mail["hits"][0]["id"]);
    let g = env.ok(&[
        "--as",
        "alice",
        "graph",
        "neighbours",
        "viking@example.org",
        "--json",
    ]);
    assert!(g.contains("phone:+33142685300"), "{g}");
    // Links are marked at the high-water mark of the items behind them.
    let gv: Value = serde_json::from_str(&g).expect("graph json");
    assert_eq!(gv["marking"], "SECRET", "{g}");
    // Malformed lines and unreadable files are flagged, not dropped.
    let v: Value = serde_json::from_str(&env.ok(&["--as", "alice", "search", "ferry", "--json"]))
        .expect("json");
    assert!(
        v["hits"][0]["flag"]
            .as_str()
            .expect("flag")
            .contains("malformed JSON")
    );
    let v: Value = serde_json::from_str(&env.ok(&["--as", "alice", "search", "scan", "--json"]))
        .expect("json");
    assert_eq!(v["hits"][0]["title"], "scan.pdf");
    assert!(
        v["hits"][0]["flag"]
            .as_str()
            .expect("flag")
            .contains("not indexed")
    );
}

/// Entries of the audit log by the indexer, as (reason, targets).
fn indexer_entries(env: &Env) -> Vec<(String, Vec<String>)> {
    env.ok(&["audit", "show", "--json"])
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("json line"))
        .filter(|e| e["action"] == "index.sync")
        .map(|e| {
            (
                e["reason"].as_str().unwrap_or_default().to_owned(),
                e["targets"]
                    .as_array()
                    .expect("targets")
                    .iter()
                    .map(|t| t.as_str().unwrap_or_default().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// `ingest` indexes its items as it stores them (in batches, here of two),
/// so the first search after it has nothing to read back from the store:
/// the only indexer entry in the audit log is the ingest's, naming every
/// item, and the search finds each item once.
#[test]
fn an_ingest_is_indexed_as_it_is_stored() {
    let env = Env::new();
    env.basic();
    let files: Vec<_> = (0..5)
        .map(|i| {
            env.file(
                &format!("r{i}.txt"),
                format!("quayside report {i}").as_bytes(),
            )
        })
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let mut args = vec!["--as", "alice", "ingest", "--batch", "2"];
    let paths: Vec<String> = refs.iter().map(|f| f.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    args.extend(["--collection", "mi5/ct", "--marking", "SECRET"]);
    let ids: Vec<String> = env.ok(&args).lines().map(str::to_owned).collect();
    assert_eq!(ids.len(), 5);
    let entries = indexer_entries(&env);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].0, "5 added as they were stored");
    let mut named = entries[0].1.clone();
    named.sort();
    let mut want = ids.clone();
    want.sort();
    assert_eq!(named, want);

    let found: Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "search", "quayside", "--json"]))
            .expect("json");
    assert_eq!(found["total"], 5, "{found}");
    assert_eq!(
        indexer_entries(&env).len(),
        1,
        "the search had nothing to reconcile"
    );

    // The next ingest starts from the index's commit and goes on from it.
    let late = env.ingest(
        "alice",
        "mi5/ct",
        "SECRET",
        &[&env.file("late.txt", b"quayside late")],
    );
    let entries = indexer_entries(&env);
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[1], ("1 added as they were stored".to_owned(), late));
    let found: Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "search", "quayside", "--json"]))
            .expect("json");
    assert_eq!(found["total"], 6, "{found}");
    assert_eq!(indexer_entries(&env).len(), 2);
}

/// `index sync --rebuild` throws the index away and builds it again from every item: the
/// same searches find the same items afterwards.
#[test]
fn the_index_is_rebuilt_from_the_catalog_on_demand() {
    let env = Env::new();
    env.basic();
    let a = env.file("a.txt", b"the harbour at dawn");
    let b = env.file("b.txt", b"the harbour at dusk");
    env.ingest("alice", "mi5/ct", "SECRET", &[&a, &b]);
    let total = || -> Value {
        let v: Value =
            serde_json::from_str(&env.ok(&["--as", "alice", "search", "harbour", "--json"]))
                .expect("json");
        v["total"].clone()
    };
    let before = total();
    let out = env.ok(&["index", "sync"]);
    assert!(out.contains("index: 2 items, up to date"), "{out}");
    let out = env.ok(&["index", "sync", "--rebuild"]);
    assert!(out.contains("index: 2 items, up to date"), "{out}");
    assert_eq!(total(), before);
    assert_eq!(before, 2);
}
