//! An agency admin's operations and field sites, over the real server: the admin shares and
//! withdraws its own agency's collections (and no other's), the effect on another agency's
//! analyst is immediate, and the sites its work goes to are shown with what is held back from
//! each, counted here by hand from the planted items' markings and the residency rules.

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value, json};

use crate::common::{Env, audit_lines};
use crate::server::{Server, set_password};

fn post(s: &Server, c: &Client, csrf: &str, path: &str, body: Value) -> StatusCode {
    c.post(format!("{}{path}", s.url))
        .header("x-csrf-token", csrf)
        .json(&body)
        .send()
        .expect("post")
        .status()
}

#[test]
fn an_agency_admin_shares_and_withdraws_its_own_collections_and_no_others() {
    let env = Env::new();
    env.basic();
    env.ok(&["agency", "add", "gchq"]);
    env.ok(&["collection", "add", "gchq/sigint"]);
    env.add_principal("gina", "gchq", "TOP SECRET", &["--roles", "analyst"]);
    env.add_principal("gadmin", "gchq", "SECRET", &["--roles", "admin"]);
    env.ok(&["operation", "add", "JOINT", "--agencies", "mi5,gchq"]);
    let f = env.file("report.txt", b"CANARY-joint report");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f]).remove(0);
    for who in ["boss", "alice", "gina", "gadmin"] {
        set_password(&env, who);
    }
    let s = Server::start(&env);
    let (boss, alice, gina, gadmin) = (s.client(), s.client(), s.client(), s.client());
    let csrf = s.login(&boss, "boss");
    let acsrf = s.login(&alice, "alice");
    s.login(&gina, "gina");
    let gcsrf = s.login(&gadmin, "gadmin");
    let item = format!("/api/items/{id}");
    assert_eq!(s.get(&gina, &item).0, StatusCode::NOT_FOUND);

    // Admins only.
    assert_eq!(
        s.get(&alice, "/api/admin/operations").0,
        StatusCode::FORBIDDEN
    );
    let share = "/api/admin/operations/JOINT/share";
    assert_eq!(
        post(&s, &alice, &acsrf, share, json!({ "collection": "mi5/ct" })),
        StatusCode::FORBIDDEN
    );
    let (st, ops) = s.get(&boss, "/api/admin/operations");
    assert_eq!(st, StatusCode::OK);
    assert_eq!(ops["operations"][0]["operation"]["name"], "JOINT");
    assert!(
        ops["operations"][0]["shares"]
            .as_array()
            .expect("shares")
            .is_empty()
    );

    // Another agency's collection reads as one that does not exist, and neither is shared.
    for other in ["gchq/sigint", "mi5/nonesuch"] {
        assert_eq!(
            post(&s, &boss, &csrf, share, json!({ "collection": other })),
            StatusCode::NOT_FOUND,
            "{other}"
        );
    }
    assert_eq!(
        post(
            &s,
            &gadmin,
            &gcsrf,
            share,
            json!({ "collection": "mi5/ct" })
        ),
        StatusCode::NOT_FOUND
    );
    // Without the CSRF token, nothing.
    assert_eq!(
        post(&s, &boss, "", share, json!({ "collection": "mi5/ct" })),
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.get(&gina, &item).0, StatusCode::NOT_FOUND);

    // Shared: gchq's analyst reads it at once; sharing twice is a conflict.
    assert_eq!(
        post(&s, &boss, &csrf, share, json!({ "collection": "mi5/ct" })),
        StatusCode::OK
    );
    assert_eq!(s.get(&gina, &item).0, StatusCode::OK);
    assert_eq!(
        post(&s, &boss, &csrf, share, json!({ "collection": "mi5/ct" })),
        StatusCode::CONFLICT
    );
    // gchq's admin sees mi5's share in the operation, and cannot withdraw it.
    let (_, seen) = s.get(&gadmin, "/api/admin/operations");
    assert_eq!(seen["operations"][0]["shares"][0]["collection"], "mi5/ct");
    let withdraw = "/api/admin/operations/JOINT/withdraw";
    assert_eq!(
        post(
            &s,
            &gadmin,
            &gcsrf,
            withdraw,
            json!({ "collection": "mi5/ct" })
        ),
        StatusCode::NOT_FOUND
    );
    assert_eq!(s.get(&gina, &item).0, StatusCode::OK);

    // The Admin page shows it with a withdraw form; withdrawing there takes effect at once.
    let page = boss
        .get(format!("{}/admin", s.url))
        .send()
        .expect("admin")
        .text()
        .expect("page");
    assert!(
        page.contains("id=\"operations\"")
            && page.contains("action=\"/admin/operations/JOINT/withdraw\""),
        "{page}"
    );
    assert!(page.contains("id=\"no-sites\""), "{page}");
    let r = boss
        .post(format!("{}/admin/operations/JOINT/withdraw", s.url))
        .header("origin", &s.url)
        .form(&[("csrf", csrf.as_str()), ("collection", "mi5/ct")])
        .send()
        .expect("withdraw form");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(s.get(&gina, &item).0, StatusCode::NOT_FOUND);

    // Not a replication site: said so, with no sites.
    let (st, sites) = s.get(&boss, "/api/admin/sites");
    assert_eq!(st, StatusCode::OK);
    assert_eq!(sites, json!({ "replication": false, "sites": [] }));
    drop(s);

    // Audited with the admin's name, refusals included.
    let entries = audit_lines(&env);
    // `allowed`, or anything else (denied, refused).
    let by = |action: &str, who: &str, outcome: &str| {
        entries
            .iter()
            .filter(|e| e["action"] == action && e["principal"] == who)
            .filter(|e| (e["outcome"] == "allowed") == (outcome == "allowed"))
            .count()
    };
    assert_eq!(by("operation.share", "boss", "allowed"), 1);
    assert_eq!(by("operation.withdraw", "boss", "allowed"), 1);
    // Another agency's collection, one that does not exist, and the second share.
    assert_eq!(by("operation.share", "boss", "refused"), 3);
    assert!(by("operation.share", "alice", "refused") >= 1);
    assert!(by("operation.withdraw", "gadmin", "refused") >= 1);
}

#[test]
fn an_agency_admin_sees_the_sites_its_work_goes_to_and_what_is_held_back_from_each() {
    let s = crate::sites::setup();
    s.hub.ok(&["agency", "add", "gchq"]);
    s.hub
        .add_principal("gboss", "gchq", "SECRET", &["--roles", "admin"]);
    for who in ["boss", "alice", "gboss"] {
        set_password(&s.hub, who);
    }
    s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "bravo",
        s.hub.root.join("b.bundle").to_str().expect("path"),
    ]);
    let server = Server::start(&s.hub);
    let boss = server.client();
    server.login(&boss, "boss");
    let (st, v) = server.get(&boss, "/api/admin/sites");
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["replication"], true);
    let site = |name: &str| {
        v["sites"]
            .as_array()
            .expect("sites")
            .iter()
            .find(|x| x["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in {v}"))
    };
    // By hand from PLANTED: alpha (SECRET, GBR staff, in GB) refuses the three TOP SECRET
    // items by marking; bravo (TOP SECRET//STRAP1, GBR and USA staff, in the US) refuses the
    // UK-eyes-only SECRET item and the STRAP2 one by marking, and the GB-resident one by the
    // collection's residency rule.
    let alpha = site("alpha");
    assert_eq!(alpha["collections"], json!(["mi5/ct", "mi5/gbonly"]));
    assert_eq!(
        alpha["held_back"],
        json!({ "by_marking": 3, "by_residency": {} })
    );
    let bravo = site("bravo");
    assert_eq!(bravo["jurisdiction"], "US/virginia");
    assert_eq!(
        bravo["held_back"],
        json!({ "by_marking": 2, "by_residency": {
            "residency rule for collection mi5/gbonly allows only GB": 1 } })
    );
    // Nothing is acknowledged yet: what was logged for it is outstanding.
    assert!(bravo["logged"].as_u64().expect("n") > 0);
    assert_eq!(bravo["acknowledged"], 0);
    let page = boss
        .get(format!("{}/admin", server.url))
        .send()
        .expect("admin")
        .text()
        .expect("page");
    assert!(
        page.contains("id=\"site-bravo\"")
            && page.contains("1 by the residency rule for collection mi5/gbonly"),
        "{page}"
    );
    // Another agency's admin sees no site: none of its work goes to one.
    let gboss = server.client();
    server.login(&gboss, "gboss");
    let (_, g) = server.get(&gboss, "/api/admin/sites");
    assert_eq!(g, json!({ "replication": true, "sites": [] }));
    // An analyst is refused.
    let alice = server.client();
    server.login(&alice, "alice");
    assert_eq!(
        server.get(&alice, "/api/admin/sites").0,
        StatusCode::FORBIDDEN
    );
}
