//! People change: a principal disabled, suspended, enabled or changed loses or
//! gains access at its next request, on the command line and on a running server
//! (session, token and client certificate alike), and every change is audited.

use reqwest::StatusCode;

use crate::common::{Env, audit_lines, count_action};
use crate::server::{Server, set_password};

fn visible(env: &Env, who: &str) -> usize {
    let out = env.ok(&["--as", who, "ls", "--json", "--justification", "test"]);
    let v: serde_json::Value = serde_json::from_str(&out).expect("ls json");
    v.as_array().map_or(0, Vec::len)
}

#[test]
fn disabled_suspended_and_changed_principals_lose_access_at_once() {
    let env = Env::new();
    env.basic();
    let secret = env.file("secret.txt", b"a SECRET report on the harbour");
    let strap = env.file("strap.txt", b"a TOP SECRET STRAP1 report");
    env.ingest("alice", "mi5/ct", "SECRET", &[&secret]);
    env.ingest("alice", "mi5/ct", "TOP SECRET//STRAP1", &[&strap]);
    assert_eq!(visible(&env, "alice"), 2);
    set_password(&env, "alice");
    let token = env
        .ok(&[
            "principal",
            "token",
            "create",
            "alice",
            "--scopes",
            "read",
            "--label",
            "t",
        ])
        .lines()
        .last()
        .expect("token")
        .trim()
        .to_owned();
    let certs = env.root.join("certs");
    env.ok(&[
        "principal",
        "cert",
        "issue",
        "alice",
        "--out",
        certs.to_str().expect("utf-8"),
    ]);

    let s = Server::start(&env);
    let session = s.client();
    s.login(&session, "alice");
    let by_cert =
        s.client_with_certificate(&certs.join("alice.crt.pem"), &certs.join("alice.key.pem"));
    let me = |c: &reqwest::blocking::Client, bearer: bool| {
        let mut r = c.get(format!("{}/api/me", s.url));
        if bearer {
            r = r.bearer_auth(&token);
        }
        r.send().expect("me").status()
    };
    let plain = s.client();
    assert_eq!(me(&session, false), StatusCode::OK);
    assert_eq!(me(&plain, true), StatusCode::OK);
    assert_eq!(me(&by_cert, false), StatusCode::OK);

    // Refusals that change nothing.
    assert!(
        env.fails(&["principal", "disable", "alice", "--reason", " "])
            .contains("say why")
    );
    assert!(
        env.fails(&[
            "principal",
            "suspend",
            "alice",
            "--until",
            "2001-01-01",
            "--reason",
            "x"
        ])
        .contains("future")
    );
    assert!(
        env.fails(&["principal", "set", "alice", "--clearance", "TOP SECRET"])
            .contains("nothing changed")
    );
    assert_eq!(visible(&env, "alice"), 2);

    // Disabled: every path stops at the next request.
    env.ok(&[
        "principal",
        "disable",
        "alice",
        "--reason",
        "left the service",
    ]);
    let e = env.fails(&["--as", "alice", "ls"]);
    assert!(e.contains("principal alice is disabled"), "{e}");
    assert!(
        env.fails(&["--as", "alice", "search", "harbour"])
            .contains("disabled")
    );
    assert_eq!(me(&session, false), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&plain, true), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&by_cert, false), StatusCode::UNAUTHORIZED);
    let r = s
        .client()
        .post(format!("{}/api/login", s.url))
        .json(&serde_json::json!({ "name": "alice", "password": "correct horse battery staple" }))
        .send()
        .expect("login");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(env.ok(&["principal", "ls"]).contains("disabled since"));

    // Enabled: the person is back; the credentials revoked at disabling are not.
    env.ok(&["principal", "enable", "alice"]);
    assert_eq!(visible(&env, "alice"), 2);
    let fresh = s.client();
    s.login(&fresh, "alice");
    assert_eq!(me(&fresh, false), StatusCode::OK);
    assert_eq!(me(&plain, true), StatusCode::UNAUTHORIZED);
    assert_eq!(me(&by_cert, false), StatusCode::UNAUTHORIZED);
    assert_eq!(
        me(&session, false),
        StatusCode::UNAUTHORIZED,
        "an ended session stays ended"
    );

    // Suspended for three seconds: refused, then back by itself.
    let until = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let until = until
        .format(&time::format_description::well_known::Rfc3339)
        .expect("rfc3339");
    env.ok(&[
        "principal",
        "suspend",
        "alice",
        "--until",
        &until,
        "--reason",
        "inquiry",
    ]);
    assert!(
        env.fails(&["--as", "alice", "ls"])
            .contains("suspended until")
    );
    assert_eq!(me(&fresh, false), StatusCode::UNAUTHORIZED);
    std::thread::sleep(std::time::Duration::from_secs(4));
    assert_eq!(visible(&env, "alice"), 2);

    // Changed: a lower clearance and no codeword hide the STRAP item at once.
    env.ok(&[
        "principal",
        "set",
        "alice",
        "--clearance",
        "SECRET",
        "--compartments",
        "",
    ]);
    assert_eq!(visible(&env, "alice"), 1);
    // Moved to another agency: mi5's collections are no longer hers.
    env.ok(&["agency", "add", "mi6"]);
    env.ok(&["principal", "set", "alice", "--agency", "mi6"]);
    assert_eq!(visible(&env, "alice"), 0);
    let shown = env.ok(&["principal", "show", "alice"]);
    assert!(shown.contains("\"agency\": \"mi6\""), "{shown}");
    assert!(
        env.fails(&["principal", "set", "alice", "--agency", "nowhere"])
            .contains("nowhere")
    );

    let lines = audit_lines(&env);
    for action in [
        "principal.disable",
        "principal.enable",
        "principal.suspend",
        "principal.set",
        "principal.credentials-revoked",
    ] {
        assert!(
            count_action(&lines, action, "allowed") >= 1,
            "{action} audited"
        );
    }
    assert!(count_action(&lines, "principal.set", "allowed") == 2);
}

#[test]
fn an_overdue_access_review_lapses_access_until_another_admin_confirms() {
    let env = Env::new();
    env.basic();
    let doc = env.file("doc.txt", b"a SECRET report");
    env.ingest("alice", "mi5/ct", "SECRET", &[&doc]);
    assert!(
        env.fails(&["review", "schedule", "--agency", "mi5", "--every", "3x"])
            .contains("unit")
    );
    assert!(
        env.fails(&[
            "review", "schedule", "--agency", "nowhere", "--every", "90d"
        ])
        .contains("nowhere")
    );
    env.ok(&["review", "schedule", "--agency", "mi5", "--every", "3s"]);
    assert_eq!(
        visible(&env, "alice"),
        1,
        "a new schedule lapses nobody at once"
    );
    let queue = env.ok(&["--as", "boss", "review", "ls"]);
    assert!(queue.contains("alice") && queue.contains("boss"), "{queue}");
    assert!(
        env.fails(&["--as", "alice", "review", "ls"])
            .contains("admin")
    );
    std::thread::sleep(std::time::Duration::from_secs(4));
    // Overdue: everyone of mi5 has lapsed, admins included.
    let e = env.fails(&["--as", "alice", "ls"]);
    assert!(e.contains("lapsed") && e.contains("access review"), "{e}");
    assert!(env.ok(&["review", "ls"]).contains("OVERDUE"));
    assert!(
        env.fails(&["--as", "boss", "review", "confirm", "alice"])
            .contains("lapsed")
    );
    // The operator confirms the admin; an admin never confirms itself.
    env.ok(&[
        "review",
        "confirm",
        "boss",
        "--note",
        "annual vetting renewed",
    ]);
    assert!(
        env.fails(&["--as", "boss", "review", "confirm", "boss"])
            .contains("admin")
    );
    env.ok(&["--as", "boss", "review", "confirm", "alice"]);
    assert_eq!(visible(&env, "alice"), 1);
    env.ok(&["review", "schedule", "--agency", "mi5", "--off"]);
    let lines = audit_lines(&env);
    assert_eq!(count_action(&lines, "review.confirm", "allowed"), 2);
    assert_eq!(count_action(&lines, "review.schedule", "allowed"), 2);
    assert!(
        count_action(&lines, "review.confirm", "refused")
            + count_action(&lines, "review.confirm", "denied")
            >= 2
    );
}

#[test]
fn an_agency_admin_manages_its_own_principals_in_the_api_and_the_console() {
    let env = Env::new();
    env.basic();
    env.ok(&["agency", "add", "mi6"]);
    env.add_principal("mallory", "mi6", "SECRET", &["--roles", "admin"]);
    for who in ["alice", "boss"] {
        set_password(&env, who);
    }
    // On the command line: an admin of the agency, never itself, never another agency's.
    env.ok(&[
        "--as",
        "boss",
        "principal",
        "suspend",
        "alice",
        "--until",
        "2099-01-01",
        "--reason",
        "inquiry",
    ]);
    assert!(env.fails(&["--as", "alice", "ls"]).contains("suspended"));
    env.ok(&["--as", "boss", "principal", "enable", "alice"]);
    assert!(
        env.fails(&[
            "--as",
            "boss",
            "principal",
            "disable",
            "boss",
            "--reason",
            "x"
        ])
        .contains("admin")
    );
    assert!(
        env.fails(&[
            "--as",
            "alice",
            "principal",
            "disable",
            "boss",
            "--reason",
            "x"
        ])
        .contains("admin")
    );

    let s = Server::start(&env);
    let admin = s.client();
    let csrf = s.login(&admin, "boss");
    let (st, v) = s.get(&admin, "/api/admin/principals");
    assert_eq!(st, StatusCode::OK, "{v}");
    let names: Vec<&str> = v["principals"]
        .as_array()
        .expect("principals")
        .iter()
        .map(|p| p["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["alice", "boss"], "only its own agency's");
    let analyst = s.client();
    s.login(&analyst, "alice");
    assert_eq!(
        s.get(&analyst, "/api/admin/principals").0,
        StatusCode::FORBIDDEN
    );
    let post = |path: &str, body: serde_json::Value, csrf: Option<&str>| {
        let mut r = admin.post(format!("{}{path}", s.url)).json(&body);
        if let Some(c) = csrf {
            r = r.header("x-csrf-token", c);
        }
        r.send().expect("post").status()
    };
    let disable = serde_json::json!({ "state": "disabled", "reason": "left the service" });
    assert_eq!(
        post(
            "/api/admin/principals/alice/standing",
            disable.clone(),
            None
        ),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            "/api/admin/principals/alice/standing",
            serde_json::json!({ "state": "gone" }),
            Some(&csrf)
        ),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(
            "/api/admin/principals/boss/standing",
            disable.clone(),
            Some(&csrf)
        ),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post(
            "/api/admin/principals/mallory/standing",
            disable.clone(),
            Some(&csrf)
        ),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        post("/api/admin/principals/alice/standing", disable, Some(&csrf)),
        StatusCode::OK
    );
    // At alice's next request.
    assert_eq!(s.get(&analyst, "/api/me").0, StatusCode::UNAUTHORIZED);

    // The console's Admin page shows it, and enables her again through its form.
    let page = admin
        .get(format!("{}/admin", s.url))
        .send()
        .expect("admin page")
        .text()
        .expect("html");
    assert!(
        page.contains("id=\"p-alice\"") && page.contains("disabled since"),
        "{page}"
    );
    assert!(!page.contains("mallory"));
    let r = admin
        .post(format!("{}/admin/principals/alice", s.url))
        .form(&[("csrf", csrf.as_str()), ("state", "active"), ("reason", "")])
        .send()
        .expect("form");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.text()
            .expect("html")
            .contains("<td class=\"standing-state\">active</td>")
    );
    let forged = admin
        .post(format!("{}/admin/principals/alice", s.url))
        .form(&[("csrf", "wrong"), ("state", "disabled"), ("reason", "x")])
        .send()
        .expect("form");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    env.ok(&["--as", "alice", "ls"]);
    let lines = audit_lines(&env);
    assert!(count_action(&lines, "principal.disable", "allowed") >= 1);
    assert!(count_action(&lines, "principal.list", "allowed") >= 1);
}
