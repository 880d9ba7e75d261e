//! Re-marking with authority: an upgrade by the owning agency at once; a downgrade only
//! with a second principal holding the originator role; what was derived follows; search
//! and reads change at once for everyone; an earlier sealed copy put back by the host is
//! refused; all of it audited with both principals.

use serde_json::Value;

use crate::common::{Env, audit_lines};

fn visible(env: &Env, who: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&env.ok(&["--as", who, "ls", "--json"])).expect("ls json");
    v.as_array().expect("array").clone()
}

fn hits(env: &Env, who: &str, q: &str) -> u64 {
    let v: Value =
        serde_json::from_str(&env.ok(&["--as", who, "search", q, "--json"])).expect("search json");
    v["total"].as_u64().expect("total")
}

fn neighbours(env: &Env, who: &str) -> usize {
    let v: Value = serde_json::from_str(&env.ok(&[
        "--as",
        who,
        "graph",
        "neighbours",
        "+442079460018",
        "--json",
    ]))
    .expect("graph json");
    v["neighbours"].as_array().expect("neighbours").len()
}

fn sealed_meta(env: &Env, id: &str) -> Vec<u8> {
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open catalog");
    db.query_row("SELECT sealed_meta FROM items WHERE id = ?1", [id], |r| {
        r.get(0)
    })
    .expect("item row")
}

fn put_sealed_meta(env: &Env, id: &str, bytes: &[u8]) {
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open catalog");
    let n = db
        .execute(
            "UPDATE items SET sealed_meta = ?2 WHERE id = ?1",
            rusqlite::params![id, bytes],
        )
        .expect("update");
    assert_eq!(n, 1);
}

pub(crate) fn remark_people(env: &Env) {
    for (name, clearance, roles) in [
        ("bob", "SECRET", "analyst"),
        ("orig", "TOP SECRET", "originator"),
    ] {
        env.ok(&[
            "principal",
            "add",
            name,
            "--agency",
            "mi5",
            "--clearance",
            clearance,
            "--nationality",
            "GBR",
            "--roles",
            roles,
        ]);
    }
}

#[test]
fn markings_change_with_authority_and_everything_follows_at_once() {
    let env = Env::new();
    env.basic();
    remark_people(&env);
    let f = env.file("meeting.eml", crate::derived::email().as_bytes());
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &[&f]);
    let mail = ids[0].split_whitespace().next().expect("id").to_owned();
    assert_eq!(visible(&env, "bob").len(), 4);
    assert_eq!(hits(&env, "bob", "KINGFISHER"), 1);
    let linked = neighbours(&env, "bob");
    assert!(linked > 0);
    let notes = visible(&env, "alice")
        .into_iter()
        .find(|i| i["title"] == "notes.txt")
        .expect("notes");
    let notes = notes["id"].as_str().expect("id").to_owned();
    let before = sealed_meta(&env, &mail);

    // Refusals that change nothing.
    let e = env.fails(&[
        "--as",
        "bob",
        "reclassify",
        &mail,
        "--marking",
        "TOP SECRET",
        "--authority",
        "x",
    ]);
    assert!(e.contains("could not see"), "{e}");
    let e = env.fails(&[
        "--as",
        "alice",
        "reclassify",
        &notes,
        "--marking",
        "TOP SECRET",
        "--authority",
        "x",
    ]);
    assert!(e.contains("was derived from"), "{e}");
    let e = env.fails(&[
        "--as",
        "alice",
        "reclassify",
        &mail,
        "--marking",
        "TOP SECRET",
        "--authority",
        " ",
    ]);
    assert!(e.contains("authority"), "{e}");
    let e = env.fails(&[
        "--as",
        "alice",
        "reclassify",
        &mail,
        "--marking",
        "SECRET",
        "--authority",
        "x",
    ]);
    assert!(e.contains("already marked"), "{e}");
    let e = env.fails(&[
        "--as",
        "alice",
        "reclassify",
        &mail,
        "--marking",
        "SECRETISH",
        "--authority",
        "x",
    ]);
    assert!(e.contains("--marking"), "{e}");
    assert_eq!(visible(&env, "bob").len(), 4);

    // An upgrade by the owner: at once, with what was derived, for reads and search alike.
    let out = env.ok(&[
        "--as",
        "alice",
        "reclassify",
        &mail,
        "--marking",
        "TOP SECRET",
        "--authority",
        "DG's minute 2026/41",
    ]);
    assert!(
        out.contains("(4 items)") && out.contains("SECRET -> TOP SECRET"),
        "{out}"
    );
    assert!(visible(&env, "bob").is_empty());
    assert_eq!(hits(&env, "bob", "KINGFISHER"), 0);
    assert!(
        env.fails(&["--as", "bob", "get", &notes])
            .contains("not found")
    );
    let mine = visible(&env, "alice");
    assert_eq!(mine.len(), 4);
    assert!(
        mine.iter().all(|i| i["marking"] == "TOP SECRET"),
        "{mine:?}"
    );
    assert_eq!(hits(&env, "alice", "KINGFISHER"), 1);

    // The host puts the earlier sealed copy (marked SECRET) back: refused, for everyone.
    let upgraded = sealed_meta(&env, &mail);
    put_sealed_meta(&env, &mail, &before);
    let e = env.fails(&["--as", "alice", "get", &mail]);
    assert!(e.contains("earlier copy"), "{e}");
    put_sealed_meta(&env, &mail, &upgraded);
    env.ok(&["--as", "alice", "get", &mail]);

    // A downgrade waits for a second principal with originator authority.
    let req: Value = serde_json::from_str(&env.ok(&[
        "--as",
        "alice",
        "reclassify",
        &mail,
        "--marking",
        "SECRET",
        "--authority",
        "declassification review 7",
        "--json",
    ]))
    .expect("request json");
    assert_eq!(req["state"], "pending");
    let request = req["id"].as_str().expect("request id").to_owned();
    assert!(
        visible(&env, "bob").is_empty(),
        "nothing changes before approval"
    );
    assert!(
        env.ok(&["--as", "orig", "reclassify", "ls"])
            .contains(&request)
    );
    let e = env.fails(&[
        "--as",
        "alice",
        "reclassify",
        &mail,
        "--marking",
        "OFFICIAL",
        "--authority",
        "x",
    ]);
    assert!(e.contains("already waiting"), "{e}");
    let e = env.fails(&["--as", "alice", "reclassify", "approve", &request]);
    assert!(e.contains("originator"), "{e}");
    let e = env.fails(&["--as", "boss", "reclassify", "approve", &request]);
    assert!(e.contains("originator"), "{e}");
    let out = env.ok(&["--as", "orig", "reclassify", "approve", &request]);
    assert!(out.contains("approved by orig"), "{out}");
    assert_eq!(visible(&env, "bob").len(), 4);
    assert_eq!(hits(&env, "bob", "KINGFISHER"), 1);
    assert_eq!(neighbours(&env, "bob"), linked);
    assert!(
        env.ok(&["--as", "orig", "reclassify", "ls"])
            .contains("no re-marking requests")
    );

    // A request can be rejected; nothing changes.
    let req: Value = serde_json::from_str(&env.ok(&[
        "--as",
        "alice",
        "reclassify",
        &mail,
        "--marking",
        "OFFICIAL",
        "--authority",
        "x",
        "--json",
    ]))
    .expect("request json");
    let request = req["id"].as_str().expect("id").to_owned();
    env.ok(&[
        "--as",
        "orig",
        "reclassify",
        "reject",
        &request,
        "--reason",
        "still SECRET",
    ]);
    assert!(
        env.fails(&["--as", "orig", "reclassify", "approve", &request])
            .contains("request")
    );
    assert!(
        visible(&env, "alice")
            .iter()
            .all(|i| i["marking"] == "SECRET")
    );

    // Every change is audited, with both principals and the authority.
    let lines = audit_lines(&env);
    let remarks: Vec<&Value> = lines
        .iter()
        .filter(|l| l["action"] == "item.reclassify" && l["outcome"] == "allowed")
        .collect();
    assert_eq!(remarks.len(), 8, "4 items up, 4 down");
    assert!(remarks.iter().take(4).all(|l| l["principal"] == "alice"
        && l["targets"][1] == "SECRET -> TOP SECRET"
        && l["targets"][2] == "authority: DG's minute 2026/41"));
    assert!(remarks.iter().skip(4).all(|l| {
        l["principal"] == "orig"
            && l["reason"]
                .as_str()
                .is_some_and(|r| r.contains("asked for by alice, approved by orig"))
    }));
    assert!(lines.iter().any(|l| l["action"] == "item.reclassify"
        && l["outcome"] == "refused"
        && l["principal"] == "boss"));
    assert!(
        lines
            .iter()
            .any(|l| l["action"] == "item.reclassify-reject" && l["principal"] == "orig")
    );
}

#[test]
fn the_api_takes_requests_approvals_and_retention_decisions_behind_csrf() {
    use crate::server::{Server, set_password};
    use reqwest::StatusCode;

    let env = Env::new();
    env.basic();
    remark_people(&env);
    let f = env.file("a.txt", b"a report on the harbour");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0]
        .split_whitespace()
        .next()
        .expect("id")
        .to_owned();
    for who in ["alice", "orig", "boss"] {
        set_password(&env, who);
    }
    let s = Server::start(&env);
    let alice = s.client();
    let csrf = s.login(&alice, "alice");
    let post = |c: &reqwest::blocking::Client, csrf: Option<&str>, path: &str, body: Value| {
        let mut r = c.post(format!("{}{path}", s.url)).json(&body);
        if let Some(t) = csrf {
            r = r.header("x-csrf-token", t);
        }
        r.send().expect("post")
    };
    let ask = serde_json::json!({ "marking": "OFFICIAL", "authority": "review 9" });
    let path = format!("/api/items/{id}/reclassify");
    // No CSRF token: refused, nothing asked.
    assert_eq!(
        post(&alice, None, &path, ask.clone()).status(),
        StatusCode::FORBIDDEN
    );
    let r = post(&alice, Some(&csrf), &path, ask);
    assert_eq!(r.status(), StatusCode::OK);
    let req: Value = r.json().expect("json");
    assert_eq!(req["state"], "pending");
    let request = req["id"].as_str().expect("request").to_owned();
    let orig = s.client();
    let ocsrf = s.login(&orig, "orig");
    let listed: Value = orig
        .get(format!("{}/api/reclassify", s.url))
        .send()
        .expect("list")
        .json()
        .expect("json");
    assert_eq!(listed["requests"][0]["id"], request.as_str());
    // The requester cannot approve its own request.
    let r = post(
        &alice,
        Some(&csrf),
        &format!("/api/reclassify/{request}/approve"),
        serde_json::json!({}),
    );
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(
        &orig,
        Some(&ocsrf),
        &format!("/api/reclassify/{request}/approve"),
        serde_json::json!({}),
    );
    assert_eq!(r.status(), StatusCode::OK);
    let done: Value = r.json().expect("json");
    assert_eq!(done["to"], "OFFICIAL");
    assert_eq!(done["approved_by"], "orig");

    // The retention queue: admins only; a kept item comes back.
    drop(s);
    env.ok(&["retention", "review", "require", "--collection", "mi5/ct"]);
    env.ok(&[
        "retention",
        "schedule",
        "set",
        "--collection",
        "mi5/ct",
        "--keep",
        "1s",
    ]);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let s = Server::start(&env);
    let boss = s.client();
    let bcsrf = s.login(&boss, "boss");
    let alice = s.client();
    s.login(&alice, "alice");
    let r = alice
        .get(format!("{}/api/admin/retention", s.url))
        .send()
        .expect("queue");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let queue: Value = boss
        .get(format!("{}/api/admin/retention", s.url))
        .send()
        .expect("queue")
        .json()
        .expect("json");
    assert_eq!(queue["items"][0]["id"], id.as_str(), "{queue}");
    let mut r = boss
        .post(format!("{}/api/admin/retention/{id}", s.url))
        .json(
            &serde_json::json!({ "decision": "keep", "until": "2099-01-01", "reason": "appeal" }),
        );
    r = r.header("x-csrf-token", &bcsrf);
    assert_eq!(r.send().expect("keep").status(), StatusCode::OK);
    let item = alice
        .get(format!("{}/api/items/{id}", s.url))
        .send()
        .expect("item");
    assert_eq!(item.status(), StatusCode::OK);
}
