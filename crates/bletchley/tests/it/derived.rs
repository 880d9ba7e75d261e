//! Derived items: what an e-mail carries (attachments, attached messages and
//! their attachments) is stored as items of its own, at the e-mail's
//! marking, linked to it, searchable on its own, and shredded with it.

use serde_json::Value;

use crate::common::Env;

/// An e-mail with a CSV attachment and an attached message that itself
/// carries a text attachment: three generations.
pub(crate) fn email() -> String {
    let inner = "From: Osprey <osprey@example.org>\r\nTo: viking@example.org\r\nSubject: notes\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\nSee my notes.\r\n--in\r\nContent-Type: text/plain\r\nContent-Disposition: attachment; filename=\"notes.txt\"\r\n\r\nThe KINGFISHER courier crosses on Thursday.\r\n--in--\r\n";
    format!(
        "From: Viking <viking@example.org>\r\nTo: handler@example.net\r\nSubject: Harbour meeting\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"out\"\r\n\r\n--out\r\nContent-Type: text/plain\r\n\r\nMeet at the lighthouse.\r\n--out\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename=\"calls.csv\"\r\n\r\ncaller,callee\r\n+442079460018,+33142685300\r\n--out\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment; filename=\"forwarded.eml\"\r\n\r\n{inner}\r\n--out--\r\n"
    )
}

fn items(env: &Env, who: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(&env.ok(&["--as", who, "ls", "--json"])).expect("ls json");
    v.as_array().expect("array").clone()
}

fn by_title<'a>(items: &'a [Value], title: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["title"] == title)
        .unwrap_or_else(|| panic!("no item titled {title} in {items:?}"))
}

#[test]
fn attachments_are_derived_items_that_inherit_the_marking_and_go_with_their_source() {
    let env = Env::new();
    env.basic();
    let f = env.file("meeting.eml", email().as_bytes());
    let ids = env.ingest("alice", "mi5/ct", "SECRET//UK EYES ONLY", &[&f]);
    assert_eq!(ids.len(), 1, "one id for the one file given: {ids:?}");
    let mail = &ids[0];

    let all = items(&env, "alice");
    assert_eq!(all.len(), 4, "{all:#?}");
    let csv = by_title(&all, "calls.csv");
    let fwd = by_title(&all, "forwarded.eml");
    let notes = by_title(&all, "notes.txt");
    for (it, parent, generation) in [(csv, mail, 1), (fwd, mail, 1)] {
        assert_eq!(it["derived_from"], parent.as_str());
        assert_eq!(it["derivation"], "attachment");
        assert_eq!(it["generation"], generation);
    }
    assert_eq!(notes["derived_from"], fwd["id"]);
    assert_eq!(notes["generation"], 2);
    for it in &all {
        assert_eq!(it["marking"], "SECRET//UK EYES ONLY", "{it}");
        assert_eq!(it["collection"], "mi5/ct", "{it}");
    }
    // The part is the item's bytes, exactly.
    let notes_id = notes["id"].as_str().expect("id").to_owned();
    assert_eq!(
        env.ok(&["--as", "alice", "get", &notes_id]).trim(),
        "The KINGFISHER courier crosses on Thursday."
    );

    // A word only the innermost attachment holds finds that item alone: the
    // containers index their own text and the names of their parts.
    let hits: Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "search", "kingfisher", "--json"]))
            .expect("search json");
    assert_eq!(hits["total"], 1, "{hits}");
    assert_eq!(hits["hits"][0]["title"], "notes.txt");
    assert_eq!(hits["hits"][0]["derived_from"], fwd["id"]);
    // The e-mail still names its attachments.
    let named: Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "search", "calls.csv", "--json"]))
            .expect("search json");
    assert!(
        named["hits"]
            .as_array()
            .expect("hits")
            .iter()
            .any(|h| h["title"] == "meeting.eml"),
        "{named}"
    );

    // Each derivation is audited, naming its source.
    let audit = env.ok(&["audit", "show"]);
    assert_eq!(audit.matches("item.derive").count(), 3, "{audit}");
    assert!(audit.contains(&format!("derived from {mail} (attachment)")));

    // Shredding the e-mail shreds every generation derived from it.
    env.ok(&["--as", "boss", "shred", mail]);
    assert!(items(&env, "alice").is_empty());
    assert_eq!(
        env.fails(&["--as", "alice", "get", &notes_id]).trim(),
        "error: not found or not permitted"
    );
    let hits: Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "search", "kingfisher", "--json"]))
            .expect("search json");
    assert_eq!(hits["total"], 0, "{hits}");
}

#[test]
fn a_principal_who_cannot_see_the_source_sees_none_of_its_parts() {
    let env = Env::new();
    env.basic();
    // boss lacks STRAP1: the parts carry it as the e-mail does.
    let f = env.file("meeting.eml", email().as_bytes());
    env.ingest("alice", "mi5/ct", "SECRET//STRAP1", &[&f]);
    assert!(items(&env, "boss").is_empty());
    let hits: Value =
        serde_json::from_str(&env.ok(&["--as", "boss", "search", "kingfisher", "--json"]))
            .expect("search json");
    assert_eq!(hits["total"], 0, "{hits}");
}

#[test]
fn the_item_view_lists_derived_items_and_links_back_to_the_source() {
    use crate::server::{Server, set_password};
    let env = Env::new();
    env.basic();
    set_password(&env, "alice");
    let f = env.file("meeting.eml", email().as_bytes());
    let mail = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0].clone();
    let s = Server::start(&env);
    let c = s.client();
    s.login(&c, "alice");
    let (st, v) = s.get(&c, &format!("/api/items/{mail}"));
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    let derived = v["derived"].as_array().expect("derived");
    let titles: Vec<&str> = derived.iter().filter_map(|d| d["title"].as_str()).collect();
    assert_eq!(titles.len(), 2, "{v}");
    assert!(titles.contains(&"calls.csv") && titles.contains(&"forwarded.eml"));
    assert!(
        derived
            .iter()
            .all(|d| d["derivation"] == "attachment" && d["marking"] == "SECRET")
    );
    let csv = derived
        .iter()
        .find(|d| d["title"] == "calls.csv")
        .and_then(|d| d["id"].as_str())
        .expect("csv id");
    let html = c
        .get(format!("{}/items/{mail}", s.url))
        .send()
        .expect("page")
        .text()
        .expect("text");
    assert!(
        html.contains("id=\"derived\"") && html.contains("calls.csv"),
        "{html}"
    );
    let html = c
        .get(format!("{}/items/{csv}", s.url))
        .send()
        .expect("page")
        .text()
        .expect("text");
    assert!(
        html.contains("id=\"derived-from\"") && html.contains(&format!("/items/{mail}")),
        "{html}"
    );
}

#[test]
fn an_admin_shreds_through_the_api_and_the_parts_go_too() {
    use crate::server::{Server, set_password};
    use reqwest::StatusCode;
    let env = Env::new();
    env.basic();
    set_password(&env, "alice");
    set_password(&env, "boss");
    let f = env.file("meeting.eml", email().as_bytes());
    let mail = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0].clone();
    assert_eq!(items(&env, "boss").len(), 4);
    let s = Server::start(&env);
    let delete = |who: &str, csrf: bool| {
        let c = s.client();
        let token = s.login(&c, who);
        let mut r = c.delete(format!("{}/api/items/{mail}", s.url));
        if csrf {
            r = r.header("x-csrf-token", token);
        }
        (c, r.send().expect("delete").status())
    };
    // The running server's index follows the catalog, whichever process
    // changed it: a search finds the e-mail's courier, then a report
    // ingested by the command line beside the server.
    let searcher = s.client();
    s.login(&searcher, "boss");
    let total = |q: &str| {
        let (st, res) = s.get(&searcher, &format!("/api/search?q={q}"));
        assert_eq!(st, StatusCode::OK, "{res}");
        res["total"].as_u64().expect("total")
    };
    assert_eq!(total("kingfisher"), 1);
    assert_eq!(total("heron"), 0);
    let later = env.file("later.txt", b"HERON reports from the quay");
    env.ingest("alice", "mi5/ct", "SECRET", &[&later]);
    assert_eq!(total("heron"), 1, "an ingest by another process is found");
    assert_eq!(total("heron"), 1, "and still found when nothing changed");
    // A command-line search beside the server reconciles the index itself;
    // the server then takes up that commit rather than adding the item again.
    let cli_total = |q: &str| {
        let out = env.ok(&["--as", "boss", "search", q, "--json"]);
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        v["total"].as_u64().expect("total")
    };
    let egret = env.file("egret.txt", b"EGRET seen at the quay");
    env.ingest("alice", "mi5/ct", "SECRET", &[&egret]);
    assert_eq!(cli_total("egret"), 1, "the command line reconciles");
    assert_eq!(cli_total("egret"), 1, "a second process finds it synced");
    assert_eq!(total("egret"), 1, "the server takes up its commit, once");
    assert_eq!(total("quay"), 2);
    // An analyst may not shred; an admin must echo the CSRF token.
    assert_eq!(delete("alice", true).1, StatusCode::FORBIDDEN);
    assert_eq!(delete("boss", false).1, StatusCode::FORBIDDEN);
    // Under legal hold the server refuses as the command line does.
    env.ok(&["collection", "hold", "mi5/ct", "--reason", "inquiry 7"]);
    assert_eq!(delete("boss", true).1, StatusCode::CONFLICT);
    env.ok(&["collection", "release", "mi5/ct"]);
    let (c, st) = delete("boss", true);
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = s.get(&c, &format!("/api/items/{mail}"));
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(total("kingfisher"), 0, "the shredded parts leave the index");
    assert_eq!(total("heron"), 1);
    assert_eq!(cli_total("kingfisher"), 0, "for the command line too");
    assert_eq!(cli_total("quay"), 2);
    assert_eq!(
        items(&env, "boss").len(),
        2,
        "every part went with the e-mail; the later reports stay"
    );
    let audit = env.ok(&["audit", "show"]);
    assert!(audit.matches("item.shred").count() >= 4, "{audit}");
}
