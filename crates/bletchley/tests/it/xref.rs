//! Cross-referencing through the real binary: the names and identifiers of one collection found
//! in others across scripts, only where items the principal may see support both sides; a
//! second run compares only what arrived since; the saved state is a cache the host can delete,
//! alter or roll back without changing an answer; every run is audited.

use serde_json::Value;

use crate::common::{Env, audit_lines, count_action};

fn put(env: &Env, coll: &str, marking: &str, name: &str, text: &str) -> String {
    let f = env.file(name, text.as_bytes());
    env.ingest("alice", coll, marking, &[&f])[0]
        .split_whitespace()
        .next()
        .expect("id")
        .to_owned()
}

fn xref(env: &Env, who: &str, args: &[&str]) -> Value {
    let mut a = vec!["--as", who, "xref", "--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&env.ok(&a)).expect("xref json")
}

/// `(entity, matched, collection)` of every match.
fn found(report: &Value) -> Vec<(String, String, String)> {
    report["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| {
            (
                m["entity"].as_str().expect("entity").to_owned(),
                m["matched"].as_str().expect("matched").to_owned(),
                m["collection"].as_str().expect("collection").to_owned(),
            )
        })
        .collect()
}

fn has(report: &Value, entity: &str, matched: &str) -> bool {
    found(report)
        .iter()
        .any(|(e, m, _)| e == entity && m == matched)
}

/// Every item id a report shows.
fn ids(report: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for m in report["matches"].as_array().expect("matches") {
        for side in ["here", "there"] {
            for i in m[side].as_array().expect("items") {
                out.push(i["id"].as_str().expect("id").to_owned());
            }
        }
    }
    out
}

#[test]
fn names_and_identifiers_are_found_across_collections_and_scripts_behind_the_gate() {
    let env = Env::new();
    env.basic();
    env.ok(&["collection", "add", "mi5/sigint"]);
    env.add_principal("bob", "mi5", "SECRET", &["--roles", "analyst"]);

    let report = put(
        &env,
        "mi5/ct",
        "SECRET",
        "report.txt",
        "Source report: Mohammed bin Salman met Viktor Petrov in the port. Sergei Lavrov was \
         not present. Contact on +44 20 7946 0018.",
    );
    let arabic = put(
        &env,
        "mi5/sigint",
        "SECRET",
        "intercept-ar.txt",
        "التقى محمد بن سلمان في الرياض مساء الثلاثاء",
    );
    let russian = put(
        &env,
        "mi5/sigint",
        "TOP SECRET//STRAP1",
        "intercept-ru.txt",
        "Источник сообщил, что Виктор Петров прибыл в порт во вторник.",
    );
    let phone = put(
        &env,
        "mi5/sigint",
        "SECRET",
        "call.txt",
        "Call record: +442079460018 called a number in Porto at 02:10.",
    );
    // A hard negative: another Sergei, another man.
    put(
        &env,
        "mi5/sigint",
        "SECRET",
        "shoigu.txt",
        "Sergei Shoigu was seen leaving the ministry.",
    );

    let alice = xref(&env, "alice", &["--collection", "mi5/ct"]);
    assert!(
        has(&alice, "person:mohammed bin salman", "person:محمد بن سلمان"),
        "{alice:#}"
    );
    assert!(
        has(&alice, "person:viktor petrov", "person:виктор петров"),
        "{alice:#}"
    );
    assert!(
        has(&alice, "phone:+442079460018", "phone:+442079460018"),
        "{alice:#}"
    );
    assert!(
        !found(&alice)
            .iter()
            .any(|(e, m, _)| e.contains("lavrov") || m.contains("shoigu")),
        "a different Sergei is not Lavrov: {alice:#}"
    );
    for m in alice["matches"].as_array().unwrap() {
        assert_eq!(m["collection"], "mi5/sigint");
        assert_eq!(m["here"][0]["id"], report.as_str());
        let score = m["score"].as_f64().unwrap();
        assert!((0.86..=1.0).contains(&score), "{m}");
    }
    let shown = ids(&alice);
    for id in [&arabic, &russian, &phone] {
        assert!(shown.contains(id), "{id} supports a match");
    }

    // bob is cleared to SECRET without STRAP1: the Russian intercept supports nothing he
    // sees, and its id and
    // the name in it appear nowhere in his answer.
    let bob = xref(&env, "bob", &["--collection", "mi5/ct"]);
    assert!(has(
        &bob,
        "person:mohammed bin salman",
        "person:محمد بن سلمان"
    ));
    assert!(!ids(&bob).contains(&russian));
    assert!(
        !bob.to_string().contains("виктор"),
        "the hidden name leaks: {bob:#}"
    );

    // Refusals: a collection that does not exist and one named twice read alike to what
    // cannot be seen; each is audited.
    let e = env.fails(&["--as", "alice", "xref", "--collection", "mi5/nothing"]);
    assert!(e.contains("no collection \"mi5/nothing\""), "{e}");
    let e = env.fails(&[
        "--as",
        "alice",
        "xref",
        "--collection",
        "mi5/ct",
        "--against",
        "mi5/ct",
    ]);
    assert!(e.contains("the collection being cross-referenced"), "{e}");
    let lines = audit_lines(&env);
    assert_eq!(count_action(&lines, "xref", "allowed"), 2);
    assert_eq!(count_action(&lines, "xref", "refused"), 2);

    // The API and the console give bob the same answer, behind the same gate.
    use crate::server::{Server, set_password};
    use reqwest::StatusCode;
    set_password(&env, "bob");
    let srv = Server::start(&env);
    let c = srv.client();
    srv.login(&c, "bob");
    let (st, v) = srv.get(&c, "/api/xref?collection=mi5%2Fct");
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["names_left"], 0, "{v}");
    assert_eq!(found(&v), found(&bob));
    let (st, v) = srv.get(&c, "/api/xref?collection=mi5%2Fct&against=mi5%2Fsigint");
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(found(&v), found(&bob));
    let (st, v) = srv.get(&c, "/api/xref?collection=mi5%2Fnothing");
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = srv.get(&c, "/api/xref");
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let page = |path: &str| {
        c.get(format!("{}{path}", srv.url))
            .send()
            .expect("page")
            .text()
            .expect("html")
    };
    let html = page("/xref");
    assert!(html.contains("id=\"xref-form\""), "{html}");
    assert!(html.contains("<option value=\"mi5/sigint\">"), "{html}");
    let html = page("/xref?collection=mi5%2Fct");
    assert!(html.contains("class=\"xref-match\""), "{html}");
    assert!(html.contains("محمد بن سلمان"), "{html}");
    assert!(html.contains(&arabic), "{html}");
    assert!(html.contains("data-left=\"0\""), "{html}");
    assert!(
        !html.contains(&russian) && !html.contains("виктор"),
        "{html}"
    );
    assert!(
        html.contains("class=\"banner b-s\""),
        "SECRET items shown: {html}"
    );
    let entry = lines
        .iter()
        .find(|l| l["action"] == "xref" && l["outcome"] == "allowed")
        .expect("an allowed xref entry");
    let targets = entry["targets"].to_string();
    assert!(
        targets.contains(&arabic) && targets.contains(&report),
        "{entry}"
    );
}

#[test]
fn later_runs_compare_only_what_arrived_and_the_state_is_only_a_cache() {
    let env = Env::new();
    env.basic();
    env.ok(&["collection", "add", "mi5/sigint"]);
    put(
        &env,
        "mi5/ct",
        "SECRET",
        "a.txt",
        "Ahmed Karimi met Viktor Petrov and Olga Smirnova at the harbour.",
    );
    put(
        &env,
        "mi5/sigint",
        "SECRET",
        "b.txt",
        "وصل أحمد كريمي إلى الميناء مساء الثلاثاء",
    );
    let first = xref(&env, "alice", &["--collection", "mi5/ct"]);
    assert!(
        has(&first, "person:ahmed karimi", "person:أحمد كريمي"),
        "{first:#}"
    );
    assert_eq!(first["resumed"], false);
    assert_eq!(
        first["names_compared"], 4,
        "three names here, one there: {first:#}"
    );
    assert_eq!(first["names_left"], 0);

    // Nothing new: nothing compared, the same answer.
    let again = xref(&env, "alice", &["--collection", "mi5/ct"]);
    assert_eq!(again["resumed"], true);
    assert_eq!(again["names_compared"], 0);
    assert_eq!(found(&again), found(&first));

    // A name arrives in the other collection: it alone is compared (with the names here).
    let state_dir = env.data.join("xref");
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = std::fs::read_dir(&state_dir)
        .expect("the state is saved")
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    assert!(!before.is_empty());
    for (_, bytes) in &before {
        assert!(
            !crate::common::contains(bytes, "karimi".as_bytes()),
            "the state rests sealed"
        );
    }
    put(
        &env,
        "mi5/sigint",
        "SECRET",
        "c.txt",
        "Встреча: Ольга Смирнова прибыла в порт.",
    );
    let grown = xref(&env, "alice", &["--collection", "mi5/ct"]);
    assert_eq!(grown["names_compared"], 1);
    assert!(
        has(&grown, "person:olga smirnova", "person:ольга смирнова"),
        "{grown:#}"
    );
    let answer = found(&grown);

    // The host puts back the state from before: the new name is compared again, and the
    // answer is the same.
    for (p, bytes) in &before {
        std::fs::write(p, bytes).unwrap();
    }
    let rolled = xref(&env, "alice", &["--collection", "mi5/ct"]);
    assert_eq!(rolled["names_compared"], 1);
    assert_eq!(found(&rolled), answer);

    // The host alters it, or deletes it: it does not open, so everything is compared again.
    for e in std::fs::read_dir(&state_dir).unwrap() {
        let p = e.unwrap().path();
        let mut b = std::fs::read(&p).unwrap();
        let last = b.len() - 1;
        b[last] ^= 1;
        std::fs::write(&p, b).unwrap();
    }
    let altered = xref(&env, "alice", &["--collection", "mi5/ct"]);
    assert_eq!(altered["resumed"], false);
    assert_eq!(found(&altered), answer);
    std::fs::remove_dir_all(&state_dir).unwrap();
    let deleted = xref(&env, "alice", &["--collection", "mi5/ct"]);
    assert_eq!(deleted["resumed"], false);
    assert_eq!(found(&deleted), answer);

    // A shredded item supports nothing any more.
    let shredded = found(&deleted)
        .iter()
        .find(|(e, _, _)| e == "person:ahmed karimi")
        .map(|_| ());
    assert!(shredded.is_some());
    let id = deleted["matches"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["entity"] == "person:ahmed karimi")
        .map(|m| m["there"][0]["id"].as_str().unwrap().to_owned())
        .unwrap();
    env.ok(&["--as", "boss", "shred", &id]);
    let after = xref(&env, "alice", &["--collection", "mi5/ct"]);
    assert!(
        !has(&after, "person:ahmed karimi", "person:أحمد كريمي"),
        "{after:#}"
    );
    assert!(has(&after, "person:olga smirnova", "person:ольга смирнова"));
}
