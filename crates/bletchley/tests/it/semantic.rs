//! Semantic search through the platform: items embedded at ingest by durable jobs (and the
//! items stored before, by a backfill), found by what they are about behind the same gate as
//! lexical search, with every change (re-marking, shredding) followed at once; a principal's
//! results are the same whether or not the store holds items they may not see; the sealed
//! vectors and the vector index are checked against what the host can do to them.

use std::process::{Command, Output};

use serde_json::Value;

use crate::common::{Env, audit_lines, count_action};

const SMUGGLING: &str = "The vessel smuggled cocaine into the harbour at night, hidden under \
                         a cargo of frozen fish.";
const BUDGET: &str = "The quarterly budget meeting approved new office furniture and a \
                      larger stationery allowance.";
const TRAWLER: &str = "A fishing trawler unloaded crates of narcotics at the docks before \
                       dawn.";
const BREAD: &str = "Recipe: knead the dough, let it rise for an hour, then bake the bread \
                     for forty minutes.";
const QUERY: &str = "boat bringing drugs into a port";

fn with_models(mut c: Command) -> Command {
    c.env("BLETCHLEY_MODELS", crate::speech::models());
    c
}

fn run(env: &Env, args: &[&str]) -> Output {
    with_models(env.cmd(args))
        .output()
        .expect("spawn bletchley")
}

fn ok(env: &Env, args: &[&str]) -> String {
    let o = run(env, args);
    assert!(
        o.status.success(),
        "bletchley {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).expect("utf-8")
}

fn fails(env: &Env, args: &[&str]) -> String {
    let o = run(env, args);
    assert!(!o.status.success(), "bletchley {args:?} should have failed");
    String::from_utf8(o.stderr).expect("utf-8")
}

/// Ingests one text file; its id.
fn put(env: &Env, who: &str, marking: &str, name: &str, text: &str) -> String {
    let f = env.file(name, text.as_bytes());
    env.ingest(who, "mi5/ct", marking, &[&f])[0]
        .split_whitespace()
        .next()
        .expect("id")
        .to_owned()
}

/// `(id, score, highlight)` of a search's hits, best first.
fn hits(env: &Env, who: &str, mode: &str, q: &str) -> (u64, Vec<(String, f64, String)>) {
    let v: Value = serde_json::from_str(&ok(
        env,
        &["--as", who, "search", q, "--mode", mode, "--json"],
    ))
    .expect("search json");
    let hits = v["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| {
            (
                h["id"].as_str().expect("id").to_owned(),
                h["score"].as_f64().expect("score"),
                h["highlight"].as_str().expect("highlight").to_owned(),
            )
        })
        .collect();
    (v["total"].as_u64().expect("total"), hits)
}

fn people(env: &Env) {
    env.basic();
    env.add_principal("bob", "mi5", "SECRET", &["--roles", "analyst"]);
}

fn vectors_rows(env: &Env) -> Vec<(String, Vec<u8>)> {
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("catalog");
    let mut st = db
        .prepare("SELECT item_id, sealed FROM item_vectors ORDER BY item_id")
        .expect("query");
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("rows")
        .map(|r| r.expect("row"))
        .collect()
}

#[test]
fn meaning_is_found_behind_the_gate_and_every_change_is_followed() {
    let env = Env::new();
    people(&env);
    // Off until the operator turns it on, and said so.
    let e = fails(
        &env,
        &["--as", "alice", "search", QUERY, "--mode", "semantic"],
    );
    assert!(e.contains("semantic search is off"), "{e}");
    let e = fails(&env, &["--as", "alice", "search", QUERY, "--mode", "vibes"]);
    assert!(e.contains("lexical, semantic or hybrid"), "{e}");
    // Stored before semantic search is on: embedded by the backfill.
    let smuggling = put(&env, "alice", "OFFICIAL", "harbour.txt", SMUGGLING);
    // A model that is not installed is refused, and nothing changes.
    let e = fails(&env, &["semantic", "enable", "--model", "no-such-model"]);
    assert!(e.contains("no-such-model"), "{e}");
    assert!(ok(&env, &["semantic", "status"]).contains("off"));
    ok(&env, &["semantic", "enable"]);
    assert!(ok(&env, &["semantic", "status"]).contains("all-minilm-l6-v2"));
    let budget = put(&env, "alice", "OFFICIAL", "budget.txt", BUDGET);
    let trawler = put(&env, "alice", "TOP SECRET//STRAP1", "trawler.txt", TRAWLER);
    let bread = put(&env, "alice", "OFFICIAL", "bread.txt", BREAD);
    ok(&env, &["work", "--once"]);
    let status = ok(&env, &["semantic", "status", "--json"]);
    let status: Value = serde_json::from_str(&status).expect("status json");
    assert_eq!(status["items_without_vectors"], 0, "{status}");
    assert_eq!(vectors_rows(&env).len(), 4);

    // Found by meaning: the two items about smuggling drugs by boat, though neither holds a
    // word of the query but "into"; alice sees both, bob (SECRET, no STRAP1) only his.
    let (_, a) = hits(&env, "alice", "semantic", QUERY);
    let top: Vec<&str> = a.iter().take(2).map(|h| h.0.as_str()).collect();
    assert!(
        top.contains(&smuggling.as_str()) && top.contains(&trawler.as_str()),
        "{a:?}"
    );
    assert!(a.iter().any(|h| h.0 == bread));
    assert!(a[0].1 > a[a.len() - 1].1 + 0.1, "{a:?}");
    // The passage that matched is shown.
    let best = a.iter().find(|h| h.0 == smuggling).expect("smuggling hit");
    assert!(best.2.contains("smuggled cocaine"), "{best:?}");
    let (bob_total, b) = hits(&env, "bob", "semantic", QUERY);
    assert_eq!(b[0].0, smuggling, "{b:?}");
    assert!(b.iter().all(|h| h.0 != trawler), "{b:?}");
    assert_eq!(bob_total, 3);
    // Hybrid fuses both rankings: the smuggling item is first for bob.
    let (_, h) = hits(&env, "bob", "hybrid", "smuggled cocaine harbour");
    assert_eq!(h[0].0, smuggling, "{h:?}");

    // More like this: the trawler is nearest the smuggling item (itself left out); bob may
    // not start from an item he cannot read, and is told no more than for one that is not.
    let like: Value = serde_json::from_str(&ok(
        &env,
        &["--as", "alice", "similar", &smuggling, "--json"],
    ))
    .expect("similar json");
    let like: Vec<&str> = like["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["id"].as_str().expect("id"))
        .collect();
    assert_eq!(like.first(), Some(&trawler.as_str()), "{like:?}");
    assert!(!like.contains(&smuggling.as_str()), "{like:?}");
    let e = fails(&env, &["--as", "bob", "similar", &trawler]);
    let e2 = fails(&env, &["--as", "bob", "similar", "no-such-item"]);
    assert!(e.contains("not found or not permitted"), "{e}");
    assert_eq!(e, e2);

    // An index file put back from before a re-marking cannot show the item under its old
    // marking: the hit is checked against the catalog, the index rebuilt.
    let file = env.data.join("vectors/all-minilm-l6-v2/vectors.sealed");
    let before_remark = std::fs::read(&file).expect("vector index file");
    ok(
        &env,
        &[
            "--as",
            "alice",
            "reclassify",
            &smuggling,
            "--marking",
            "TOP SECRET",
            "--authority",
            "source upgrade",
        ],
    );
    let (_, b) = hits(&env, "bob", "semantic", QUERY);
    assert!(b.iter().all(|h| h.0 != smuggling), "{b:?}");
    std::fs::write(&file, &before_remark).expect("put back");
    let (_, b) = hits(&env, "bob", "semantic", QUERY);
    assert!(b.iter().all(|h| h.0 != smuggling), "{b:?}");
    let (_, a) = hits(&env, "alice", "semantic", QUERY);
    assert!(a.iter().any(|h| h.0 == smuggling), "{a:?}");

    // Shredded: gone from the results and from the catalog's vectors.
    ok(&env, &["--as", "boss", "shred", &budget]);
    let (_, a) = hits(&env, "alice", "semantic", "office furniture budget");
    assert!(a.iter().all(|h| h.0 != budget), "{a:?}");
    assert!(vectors_rows(&env).iter().all(|(id, _)| *id != budget));

    // Every step audited: the worker's reads and writes, and each search with its hits.
    let lines = audit_lines(&env);
    assert!(count_action(&lines, "item.embed", "allowed") >= 1);
    assert!(count_action(&lines, "item.embed-read", "allowed") >= 1);
    assert!(count_action(&lines, "settings.semantic", "allowed") >= 1);
    assert!(count_action(&lines, "vectors.rebuild", "allowed") >= 1);

    // A sealed vector row the host alters, or moves to another item, does not open: the
    // rebuild says so, naming the item.
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("catalog");
    let rows = vectors_rows(&env);
    let set = |id: &str, sealed: &[u8]| {
        db.execute(
            "UPDATE item_vectors SET sealed = ?2 WHERE item_id = ?1",
            rusqlite::params![id, sealed],
        )
        .expect("alter");
    };
    let (first, second) = (&rows[0], &rows[1]);
    set(&second.0, &first.1);
    std::fs::remove_dir_all(env.data.join("vectors")).expect("drop the index");
    let e = fails(
        &env,
        &["--as", "alice", "search", QUERY, "--mode", "semantic"],
    );
    assert!(e.contains(&second.0) && e.contains("do not open"), "{e}");
    set(&second.0, &second.1);
    let mut flipped = first.1.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    set(&first.0, &flipped);
    let e = fails(
        &env,
        &["--as", "alice", "search", QUERY, "--mode", "semantic"],
    );
    assert!(e.contains(&first.0) && e.contains("do not open"), "{e}");
    set(&first.0, &first.1);
    let (_, a) = hits(&env, "alice", "semantic", QUERY);
    assert!(a.iter().any(|h| h.0 == trawler), "{a:?}");
}

#[test]
fn a_principal_s_semantic_results_do_not_depend_on_what_they_may_not_see() {
    // The same store twice, the second without the items bob may not see: bob's hits, their
    // order, scores and count are identical.
    let with = Env::new();
    let without = Env::new();
    for env in [&with, &without] {
        people(env);
        ok(env, &["semantic", "enable"]);
    }
    let texts = [SMUGGLING, BUDGET, TRAWLER, BREAD];
    for (n, text) in texts.iter().enumerate() {
        let name = format!("t{n}.txt");
        put(&with, "alice", "OFFICIAL", &name, text);
        put(&without, "alice", "OFFICIAL", &name, text);
        // Unseen by bob: above his clearance, or in a compartment he does not hold.
        put(&with, "alice", "TOP SECRET", &format!("ts{n}.txt"), text);
        put(&with, "alice", "SECRET//STRAP1", &format!("s{n}.txt"), text);
    }
    for env in [&with, &without] {
        ok(env, &["work", "--once"]);
    }
    let titles = |env: &Env| -> std::collections::HashMap<String, String> {
        let v: Value =
            serde_json::from_str(&ok(env, &["--as", "bob", "ls", "--json"])).expect("ls json");
        v.as_array()
            .expect("items")
            .iter()
            .map(|i| {
                (
                    i["id"].as_str().expect("id").to_owned(),
                    i["title"].as_str().expect("title").to_owned(),
                )
            })
            .collect()
    };
    let (tw_titles, to_titles) = (titles(&with), titles(&without));
    for q in [QUERY, "office spending", "baking", "night"] {
        let (tw, hw) = hits(&with, "bob", "semantic", q);
        let (to, ho) = hits(&without, "bob", "semantic", q);
        assert_eq!(tw, to, "{q}");
        assert_eq!(hw.len(), ho.len(), "{q}");
        // Item ids differ between the stores; the titles, order and scores must not.
        for (w, o) in hw.iter().zip(&ho) {
            assert_eq!(
                tw_titles.get(&w.0),
                to_titles.get(&o.0),
                "{q}: {hw:?} {ho:?}"
            );
            assert!((w.1 - o.1).abs() < 1e-6, "{q}: {hw:?} {ho:?}");
        }
    }
}

#[test]
fn the_api_and_the_console_search_by_meaning_behind_the_gate() {
    use crate::server::{Server, set_password};
    use reqwest::StatusCode;
    let env = Env::new();
    people(&env);
    ok(&env, &["semantic", "enable"]);
    let smuggling = put(&env, "alice", "OFFICIAL", "harbour.txt", SMUGGLING);
    let trawler = put(&env, "alice", "TOP SECRET//STRAP1", "trawler.txt", TRAWLER);
    put(&env, "alice", "OFFICIAL", "bread.txt", BREAD);
    // Text in no language, none at all, and bytes that are not text: embedded as nothing, and
    // their jobs done, not failed.
    put(&env, "alice", "OFFICIAL", "digits.txt", "1234 5678 90");
    put(&env, "alice", "OFFICIAL", "empty.txt", "");
    let f = env.file("noise.bin", &[0xff, 0xfe, 0x00, 0x9c, 0x80, 0x00, 0x01]);
    env.ingest("alice", "mi5/ct", "OFFICIAL", &[&f]);
    ok(&env, &["work", "--once"]);
    let jobs: Value = serde_json::from_str(&ok(&env, &["jobs", "--json"])).expect("jobs json");
    let jobs = jobs.as_array().expect("jobs");
    assert_eq!(jobs.len(), 6, "{jobs:?}");
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{jobs:?}");
    set_password(&env, "bob");
    let srv = Server::start_with(&env, &[("BLETCHLEY_MODELS", crate::speech::models())]);
    let c = srv.client();
    srv.login(&c, "bob");
    let q = "boat%20bringing%20drugs%20into%20a%20port";
    let (st, v) = srv.get(&c, &format!("/api/search?q={q}&mode=semantic"));
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["hits"][0]["id"], smuggling.as_str(), "{v}");
    assert!(!v.to_string().contains(&trawler), "{v}");
    // Bob's: the smuggling item, the bread and the digits; the empty file and the noise have
    // no text to embed, and the trawler is above him.
    assert_eq!(v["total"], 3, "{v}");
    let (st, v) = srv.get(&c, &format!("/api/search?q={q}&mode=hybrid&facets=true"));
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["hits"][0]["id"], smuggling.as_str(), "{v}");
    let (st, v) = srv.get(&c, &format!("/api/search?q={q}&mode=vibes"));
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = srv.get(&c, &format!("/api/search?q={q}&mode=semantic&sort=time"));
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // More like this, from an item bob may read; one he may not is not found, as a missing one.
    let (st, v) = srv.get(&c, &format!("/api/items/{smuggling}/similar"));
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(!v.to_string().contains(&trawler), "{v}");
    assert_eq!(
        srv.get(&c, &format!("/api/items/{trawler}/similar")).0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        srv.get(&c, "/api/items/no-such-item/similar").0,
        StatusCode::NOT_FOUND
    );
    // The console: the mode chosen in the search form, the passage shown, and "more like this".
    let page = |path: &str| {
        c.get(format!("{}{path}", srv.url))
            .send()
            .expect("page")
            .text()
            .expect("html")
    };
    let html = page(&format!("/search?q={q}&mode=semantic"));
    assert!(html.contains(&smuggling), "{html}");
    assert!(html.contains("smuggled cocaine"), "{html}");
    assert!(
        html.contains("<option value=\"semantic\" selected>"),
        "{html}"
    );
    let html = page(&format!("/items/{smuggling}"));
    assert!(html.contains("id=\"similar\""), "{html}");
    let html = page(&format!("/items/{smuggling}/similar"));
    assert!(html.contains("bread.txt"), "{html}");
    assert!(!html.contains(&trawler), "{html}");
}

/// Vectors do not travel between sites: a field site with semantic search on embeds the items
/// it receives from the hub, as it does its own, and finds them by meaning.
#[test]
fn items_received_from_another_site_are_embedded_there() {
    let s = crate::sites::setup();
    ok(&s.alpha, &["semantic", "enable", "--no-backfill"]);
    let bundle = s.hub.root.join("alpha.bundle");
    s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "alpha",
        bundle.to_str().expect("path"),
    ]);
    s.alpha
        .ok(&["bundle", "import", bundle.to_str().expect("path")]);
    let received = crate::sites::held(&s.alpha);
    assert!(!received.is_empty());
    let jobs: Value = serde_json::from_str(&ok(&s.alpha, &["jobs", "--json"])).expect("jobs json");
    let embeds: Vec<&Value> = jobs
        .as_array()
        .expect("jobs")
        .iter()
        .filter(|j| j["kind"] == "embed")
        .collect();
    assert_eq!(embeds.len(), received.len(), "{jobs}");
    ok(&s.alpha, &["work", "--once"]);
    let status: Value =
        serde_json::from_str(&ok(&s.alpha, &["semantic", "status", "--json"])).expect("status");
    assert_eq!(status["items_without_vectors"], 0, "{status}");
    let v: Value = serde_json::from_str(&ok(
        &s.alpha,
        &[
            "--as", "officer", "search", "an item", "--mode", "semantic", "--json",
        ],
    ))
    .expect("search json");
    assert_eq!(v["total"].as_u64(), Some(received.len() as u64), "{v}");
}

/// An item whose stored bytes the host damaged fails its own embedding job; the items read in
/// the same batch are embedded all the same.
#[test]
fn a_damaged_item_fails_only_its_own_embedding_job() {
    let env = Env::new();
    env.basic();
    ok(&env, &["semantic", "enable"]);
    let objects = || crate::common::files_under(&env.data.join("objects"));
    let good = put(&env, "alice", "SECRET", "smuggling.txt", SMUGGLING);
    let before = objects();
    let bad = put(&env, "alice", "SECRET", "budget.txt", BUDGET);
    let added: Vec<_> = objects()
        .into_iter()
        .filter(|o| !before.contains(o))
        .collect();
    assert_eq!(added.len(), 1, "one object for the item: {added:?}");
    let mut bytes = std::fs::read(&added[0]).expect("object");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&added[0], bytes).expect("damage");
    ok(&env, &["work", "--once"]);
    let jobs: Value = serde_json::from_str(&ok(&env, &["jobs", "--json"])).expect("jobs json");
    let state = |item: &str| {
        jobs.as_array()
            .expect("jobs")
            .iter()
            .find(|j| j["item"] == item)
            .map(|j| j["state"].as_str().expect("state").to_owned())
            .expect("a job")
    };
    assert_eq!(state(&good), "done", "{jobs}");
    assert_ne!(state(&bad), "done", "{jobs}");
    let (_, found) = hits(&env, "alice", "semantic", QUERY);
    assert_eq!(found.first().map(|h| h.0.as_str()), Some(good.as_str()));
}
