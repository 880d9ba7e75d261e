//! Whoever hosts the data directory can edit, swap, delete and roll back
//! every byte in it. Each test here is one such attack from issue 22, tried
//! with the real binary and SQLite, as the host would: nobody may see more
//! than before, and the damage is named.

use std::path::Path;

use rusqlite::Connection;

use crate::common::{Env, bletchley_at, files_under};

fn db(env: &Env) -> Connection {
    Connection::open(env.data.join("catalog.db")).expect("open catalog")
}

/// The basic platform plus a second agency with its own collection, and an
/// OFFICIAL-cleared analyst of mi5.
fn two_agencies() -> Env {
    let env = Env::new();
    env.basic();
    env.ok(&["agency", "add", "mi6"]);
    env.ok(&["collection", "add", "mi6/humint"]);
    env.add_principal("bob", "mi6", "TOP SECRET", &[]);
    env.add_principal("olly", "mi5", "OFFICIAL", &[]);
    env
}

fn stderr_of(env: &Env, args: &[&str]) -> String {
    let o = env.run(args);
    assert!(
        !o.status.success(),
        "bletchley {args:?} succeeded after tampering: {}",
        String::from_utf8_lossy(&o.stdout)
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Issue 22, 1: an OFFICIAL item's row re-pointed at a TOP SECRET item's
/// content. Before: the OFFICIAL reader got the TOP SECRET text.
#[test]
fn content_repointed_is_refused_as_damage_and_audited() {
    let env = two_agencies();
    let low = env.file("low.txt", b"canteen menu for tuesday");
    let high = env.file("high.txt", b"TOPSECRETCANARY source identity");
    let low_id = env.ingest("alice", "mi5/ct", "OFFICIAL", &[&low])[0].clone();
    let high_id = env.ingest("alice", "mi5/ct", "TOP SECRET", &[&high])[0].clone();
    assert!(
        env.ok(&["--as", "olly", "get", &low_id])
            .contains("canteen")
    );
    let c = db(&env);
    let high_content: i64 = c
        .query_row(
            "SELECT content_id FROM items WHERE id = ?1",
            [&high_id],
            |r| r.get(0),
        )
        .expect("row");
    c.execute(
        "UPDATE items SET content_id = ?1 WHERE id = ?2",
        rusqlite::params![high_content, low_id],
    )
    .expect("re-point");
    drop(c);
    let o = env.run(&["--as", "olly", "get", &low_id]);
    assert!(!o.status.success());
    assert!(!String::from_utf8_lossy(&o.stdout).contains("CANARY"));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the store is damaged") && err.contains("not its own"),
        "{err}"
    );
    let log = env.ok(&["audit", "show"]);
    assert!(log.contains("is not its own"), "the refusal is audited");
}

/// Issue 22, 2: two agencies' collection rows swapped. Before: mi5's
/// principals read mi6's items.
#[test]
fn collections_swapped_are_caught_before_anyone_reads() {
    let env = two_agencies();
    let f = env.file("m.txt", b"MI6CANARY asset report");
    let id = env.ingest("bob", "mi6/humint", "SECRET", &[&f])[0].clone();
    let c = db(&env);
    let ids: Vec<(i64, i64)> = {
        let mut st = c
            .prepare("SELECT id, agency_id FROM collections ORDER BY id")
            .expect("prepare");
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let mi5 = ids.iter().find(|(_, a)| *a == 1).expect("mi5 collection").0;
    let mi6 = ids.iter().find(|(_, a)| *a == 2).expect("mi6 collection").0;
    c.execute_batch(&format!(
        "PRAGMA foreign_keys = OFF;
         UPDATE collections SET id = -1 WHERE id = {mi5};
         UPDATE collections SET id = {mi5} WHERE id = {mi6};
         UPDATE collections SET id = {mi6} WHERE id = -1;"
    ))
    .expect("swap");
    drop(c);
    for args in [
        vec!["--as", "alice", "get", id.as_str()],
        vec!["--as", "alice", "ls"],
        vec!["--as", "alice", "search", "asset"],
    ] {
        let o = env.run(&args);
        assert!(!o.status.success(), "{args:?}");
        assert!(!String::from_utf8_lossy(&o.stdout).contains("MI6CANARY"));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("the store is damaged"), "{args:?}: {err}");
        assert!(err.contains("collections"), "names the table: {err}");
    }
}

/// Issue 22, 3: an entry added past the checkpoint. Before: `audit verify`
/// passed and the writer adopted it.
#[test]
fn entries_past_the_checkpoint_fail_verify_and_are_cut() {
    let env = Env::new();
    env.basic();
    let held = env.ok(&["audit", "checkpoint"]);
    let held_path = env.root.join("held");
    std::fs::write(&held_path, &held).expect("write");
    let log_path = env.data.join("audit/log");
    let log = std::fs::read(&log_path).expect("log");
    // The last record, appended again: framed, but nobody signed it.
    let mut at = 0;
    let mut last = 0..0;
    while at + 4 <= log.len() {
        let len = u32::from_be_bytes(log[at..at + 4].try_into().expect("4")) as usize;
        last = at..at + 4 + len;
        at += 4 + len;
    }
    let mut forged = log.clone();
    forged.extend_from_slice(&log[last]);
    std::fs::write(&log_path, &forged).expect("write");
    let err = stderr_of(&env, &["audit", "verify"]);
    assert!(err.contains("verification FAILED"), "{err}");
    let held_s = held_path.to_str().expect("path");
    stderr_of(&env, &["audit", "verify", "--checkpoint", held_s]);
    // The platform's next act cuts it off and says so; then it verifies.
    env.ok(&["--as", "alice", "ls"]);
    env.ok(&["audit", "verify"]);
    env.ok(&["audit", "verify", "--checkpoint", held_s]);
    assert!(env.ok(&["audit", "show"]).contains("audit.tail-cut"));
}

/// Issue 22, 4: the oversight public key (and the verifier key) replaced.
/// Before: later payloads were sealed to the host's key.
#[test]
fn replaced_oversight_or_verifier_keys_are_refused() {
    let env = Env::new();
    env.basic();
    let pubp = env.data.join("keys/oversight.pub");
    let real = std::fs::read(&pubp).expect("pub");
    std::fs::write(&pubp, format!("{}\n", "ab".repeat(32))).expect("replace");
    let err = stderr_of(&env, &["--as", "alice", "ls"]);
    assert!(
        err.contains("oversight.pub") && err.contains("replaced"),
        "{err}"
    );
    std::fs::write(&pubp, real).expect("restore");
    env.ok(&["--as", "alice", "ls"]);

    let other = Env::new();
    std::fs::copy(
        other.data.join("audit/verifier.vkey"),
        env.data.join("audit/verifier.vkey"),
    )
    .expect("replace verifier");
    let err = stderr_of(&env, &["--as", "alice", "ls"]);
    assert!(err.contains("verifier"), "{err}");
}

/// An item row deleted by the host (with or without the catalog's counting triggers dropped
/// first) is noticed at the next open, not read as an item that never existed.
#[test]
fn a_deleted_item_row_is_noticed() {
    for drop_triggers in [false, true] {
        let env = two_agencies();
        let f = env.file("a.txt", b"first");
        let g = env.file("b.txt", b"second");
        let ids = env.ingest("alice", "mi5/ct", "SECRET", &[&f, &g]);
        let conn = db(&env);
        if drop_triggers {
            conn.execute_batch("DROP TRIGGER items_counted_in; DROP TRIGGER items_counted_out;")
                .expect("drop triggers");
        }
        conn.execute("DELETE FROM items WHERE id = ?1", [&ids[0]])
            .expect("delete row");
        drop(conn);
        let err = stderr_of(&env, &["--as", "alice", "ls"]);
        assert!(
            err.contains("damaged") && err.contains("items"),
            "{drop_triggers}: {err}"
        );
    }
}

/// A derived item's link to its source (the catalog's `lineage` column) cleared by the host,
/// so that shredding the source would leave the part behind: noticed at the part's next read.
#[test]
fn a_derived_items_altered_lineage_is_noticed() {
    let env = two_agencies();
    let eml = "From: a@example.org\r\nTo: b@example.org\r\nSubject: notes\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--XX\r\nContent-Type: text/plain; name=\"n.txt\"\r\nContent-Disposition: attachment; filename=\"n.txt\"\r\n\r\nPART-CANARY\r\n--XX--\r\n";
    let f = env.file("m.eml", eml.as_bytes());
    env.ingest("alice", "mi5/ct", "SECRET", &[&f]);
    let conn = db(&env);
    let part: String = conn
        .query_row("SELECT id FROM items WHERE lineage IS NOT NULL", [], |r| {
            r.get(0)
        })
        .expect("a part");
    conn.execute("UPDATE items SET lineage = NULL WHERE id = ?1", [&part])
        .expect("clear lineage");
    drop(conn);
    let err = stderr_of(&env, &["--as", "alice", "get", &part]);
    assert!(err.contains("damaged") && err.contains("derived"), "{err}");
}

/// Damage to an item in a collection someone may not see tells them nothing: they get the
/// answer for a missing item; those who may see the collection are told of the damage.
#[test]
fn damage_is_reported_only_to_those_with_need_to_know() {
    let env = two_agencies();
    let f = env.file("a.txt", b"mi5 only");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f]).remove(0);
    db(&env)
        .execute(
            "UPDATE items SET sealed_meta = zeroblob(length(sealed_meta)) WHERE id = ?1",
            [&id],
        )
        .expect("damage");
    let other = stderr_of(&env, &["--as", "bob", "get", &id]);
    assert_eq!(other.trim(), "error: not found or not permitted");
    // The overseer still learns of it from bob's attempt.
    let trail = env.ok(&["audit", "show"]);
    let bobs = trail
        .lines()
        .filter(|l| l.contains("bob") && l.contains("item.get"))
        .collect::<Vec<_>>();
    assert!(bobs.iter().any(|l| l.contains("damaged")), "{bobs:?}");
    let own = stderr_of(&env, &["--as", "alice", "get", &id]);
    assert!(own.contains("damaged"), "{own}");
}

/// Issue 22, what to build 1: `init` prints the fingerprints of the keys the platform trusts,
/// from its sealed key file; a copy kept outside the host checks the log, and tells a swapped
/// public file from the real one.
#[test]
fn init_prints_the_fingerprints_to_keep_and_the_kept_verifier_checks_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let out = bletchley_at(
        &data,
        &["init", "--kdf-memory-kib", "256", "--kdf-passes", "1"],
    )
    .output()
    .expect("init");
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let field = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.trim().strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("init printed no {name} {printed}"))
    };
    let verifier = field("audit verifier key:");
    let oversight = field("oversight key:");
    // The oversight fingerprint is SHA-256 of the public key the overseer holds.
    let public = std::fs::read_to_string(data.join("keys/oversight.pub")).expect("pub");
    let public = hex::decode(public.trim()).expect("hex key");
    assert_eq!(
        oversight,
        format!("sha256:{}", hex::encode(bletchley_crypto::sha256(&public)))
    );
    let run = |args: &[&str]| bletchley_at(&data, args).output().expect("run");
    let shown: serde_json::Value =
        serde_json::from_slice(&run(&["fingerprints", "--json"]).stdout).expect("json");
    assert_eq!(shown["audit_verifier"], verifier.as_str());
    assert_eq!(shown["oversight_key"], oversight.as_str());
    // The verifier kept outside checks the log; another platform's does not.
    let kept = dir.path().join("kept.vkey");
    std::fs::write(&kept, &verifier).expect("keep");
    assert!(
        run(&["audit", "verify", "--verifier", kept.to_str().expect("p")])
            .status
            .success()
    );
    let other = Env::new();
    let theirs = other.ok(&["fingerprints"]);
    let theirs = theirs
        .lines()
        .find_map(|l| l.strip_prefix("audit verifier key:"))
        .expect("their verifier")
        .trim();
    assert_ne!(theirs, verifier);
    std::fs::write(&kept, theirs).expect("other");
    assert!(
        !run(&["audit", "verify", "--verifier", kept.to_str().expect("p")])
            .status
            .success()
    );
}

/// Issue 22, 5: one sealed row put back as it was (a withdrawn share, a
/// revoked token), and a location's jurisdiction relabelled.
#[test]
fn a_row_restored_or_relabelled_is_caught() {
    let env = two_agencies();
    env.ok(&["operation", "add", "NIMROD", "--agencies", "mi5,mi6"]);
    env.ok(&["operation", "share", "NIMROD", "mi6/humint"]);
    let c = db(&env);
    let before: Vec<u8> = c
        .query_row("SELECT sealed FROM operations", [], |r| r.get(0))
        .expect("row");
    drop(c);
    env.ok(&["operation", "withdraw", "NIMROD", "mi6/humint"]);
    db(&env)
        .execute("UPDATE operations SET sealed = ?1", [&before])
        .expect("restore row");
    let err = stderr_of(&env, &["--as", "alice", "ls"]);
    assert!(
        err.contains("the store is damaged") && err.contains("operations"),
        "{err}"
    );

    let env = Env::new();
    env.basic();
    crate::server::set_password(&env, "alice");
    env.ok(&["principal", "token", "create", "alice", "--scopes", "read"]);
    let c = db(&env);
    let before: Vec<u8> = c
        .query_row("SELECT sealed FROM credentials", [], |r| r.get(0))
        .expect("row");
    drop(c);
    let id = env.ok(&["principal", "token", "ls", "alice"]);
    let id = id.split('\t').next().expect("token id").trim().to_owned();
    env.ok(&["principal", "token", "revoke", "alice", &id]);
    db(&env)
        .execute("UPDATE credentials SET sealed = ?1", [&before])
        .expect("restore row");
    let err = stderr_of(&env, &["--as", "alice", "ls"]);
    assert!(err.contains("credentials"), "{err}");

    let env = Env::new();
    env.basic();
    db(&env)
        .execute("UPDATE locations SET jurisdiction = 'US/virginia'", [])
        .expect("relabel");
    let f = env.file("a.txt", b"x");
    let err = stderr_of(
        &env,
        &[
            "--as",
            "alice",
            "ingest",
            f.to_str().expect("path"),
            "--collection",
            "mi5/ct",
            "--marking",
            "SECRET",
        ],
    );
    assert!(err.contains("locations"), "{err}");
}

fn copy_catalog(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for f in files_under(from) {
        let name = f.file_name().expect("name").to_string_lossy().into_owned();
        if name.starts_with("catalog.db") {
            std::fs::copy(&f, to.join(name)).expect("copy");
        }
    }
}

/// Issue 22, 5 and "rollback is detected": the whole catalog put back to an
/// earlier copy (every row and the integrity record with it) is caught
/// against the audit log's signed checkpoint.
#[test]
fn a_whole_catalog_rolled_back_is_caught_against_the_audit_log() {
    let env = two_agencies();
    env.ok(&["operation", "add", "NIMROD", "--agencies", "mi5,mi6"]);
    env.ok(&["operation", "share", "NIMROD", "mi6/humint"]);
    let saved = env.root.join("saved");
    copy_catalog(&env.data, &saved);
    env.ok(&["operation", "withdraw", "NIMROD", "mi6/humint"]);
    env.ok(&["--as", "alice", "ls"]);
    for f in files_under(&env.data) {
        if f.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("catalog.db"))
        {
            std::fs::remove_file(&f).expect("rm");
        }
    }
    copy_catalog(&saved, &env.data);
    let err = stderr_of(&env, &["--as", "alice", "ls"]);
    assert!(err.contains("rolled back"), "{err}");
}

/// Issue 22, 11: an auditor reads no items; an agency's auditor sees only
/// its agency's trail, an overseer every agency's.
#[test]
fn auditors_read_no_items_and_only_their_agencys_trail() {
    let env = two_agencies();
    for (name, agency, role) in [("aud5", "mi5", "auditor"), ("over", "mi6", "overseer")] {
        env.add_principal(name, agency, "TOP SECRET", &["--roles", role]);
        crate::server::set_password(&env, name);
    }
    let f = env.file("a.txt", b"AUDITCANARY");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0].clone();
    let g = env.file("b.txt", b"bob's");
    let bob_id = env.ingest("bob", "mi6/humint", "SECRET", &[&g])[0].clone();
    env.ok(&["--as", "alice", "get", &id]);
    env.ok(&["--as", "bob", "get", &bob_id]);
    let err = stderr_of(&env, &["--as", "aud5", "get", &id]);
    assert!(err.contains("not found or not permitted"), "{err}");
    stderr_of(&env, &["--as", "aud5", "annotate", &id, "a note"]);
    assert!(!env.ok(&["--as", "aud5", "ls"]).contains(&id));

    let s = crate::server::Server::start(&env);
    let c = s.client();
    s.login(&c, "aud5");
    let (st, v) = s.get(&c, "/api/audit?limit=1000");
    assert_eq!(st, reqwest::StatusCode::OK, "{v}");
    let who: Vec<&str> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["principal"].as_str())
        .collect();
    assert!(who.contains(&"alice") && who.contains(&"aud5"), "{who:?}");
    assert!(!who.contains(&"bob"), "mi6's trail shown to mi5's auditor");
    let c = s.client();
    s.login(&c, "over");
    let (_, v) = s.get(&c, "/api/audit?limit=1000");
    let who: Vec<&str> = v["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter_map(|e| e["principal"].as_str())
        .collect();
    assert!(who.contains(&"alice") && who.contains(&"bob"), "{who:?}");
}

/// Issue 22, 12: system actors' names are reserved; tokens work for dotted
/// names; items past retention are not returned; a locked agency key reads
/// as "not found or not permitted".
#[test]
fn names_tokens_retention_and_locked_keys() {
    let env = Env::new();
    env.basic();
    for reserved in ["indexer", "worker", "operator", "platform"] {
        let err = stderr_of(
            &env,
            &[
                "principal",
                "add",
                reserved,
                "--agency",
                "mi5",
                "--clearance",
                "SECRET",
                "--nationality",
                "GBR",
            ],
        );
        assert!(err.contains("reserved"), "{err}");
    }
    env.add_principal("j.smith", "mi5", "SECRET", &[]);
    let out = env.ok(&[
        "principal",
        "token",
        "create",
        "j.smith",
        "--scopes",
        "read",
        "--label",
        "t",
    ]);
    let token = out.lines().last().expect("token").trim().to_owned();

    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let f = env.file("r.txt", b"RETAINED");
    let o = env.ok(&[
        "--as",
        "alice",
        "ingest",
        f.to_str().expect("path"),
        "--collection",
        "mi5/ct",
        "--marking",
        "SECRET",
        "--retain-until",
        &soon,
    ]);
    let id = o.lines().next().expect("id").to_owned();
    env.ok(&["--as", "alice", "get", &id]);
    assert!(
        env.ok(&["--as", "alice", "search", "RETAINED"])
            .contains(&id)
    );

    let s = crate::server::Server::start(&env);
    let r = s
        .client()
        .get(format!("{}/api/me", s.url))
        .bearer_auth(&token)
        .send()
        .expect("send");
    assert_eq!(r.status(), reqwest::StatusCode::OK, "a dotted name's token");
    drop(s);

    std::thread::sleep(std::time::Duration::from_secs(4));
    let err = stderr_of(&env, &["--as", "alice", "get", &id]);
    assert!(err.contains("not found or not permitted"), "{err}");
    assert!(!env.ok(&["--as", "alice", "ls"]).contains(&id));
    // Nor a search hit (title, snippet): a reader of the index destroys what is past its date
    // first, as the worker would.
    assert!(
        !env.ok(&["--as", "alice", "search", "RETAINED"])
            .contains(&id)
    );
    assert!(env.ok(&["audit", "show"]).contains("retention.shred"));

    // mi6's key cannot be unlocked here: its item reads like a missing one.
    env.ok(&["agency", "add", "mi6"]);
    env.ok(&["collection", "add", "mi6/x"]);
    env.ok(&["operation", "add", "JOINT", "--agencies", "mi5,mi6"]);
    env.ok(&["operation", "share", "JOINT", "mi6/x"]);
    env.add_principal("m6", "mi6", "SECRET", &[]);
    let g = env.file("s.txt", b"shared");
    let shared = env.ingest("m6", "mi6/x", "SECRET", &[&g])[0].clone();
    env.ok(&["--as", "alice", "get", &shared]);
    let o = env
        .cmd(&["--as", "alice", "get", &shared])
        .env("BLETCHLEY_PASSPHRASE_MI6", "not the passphrase")
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "error: not found or not permitted"
    );
}

/// Issue 22, 8: a note on an item of a bulk collection needs the same
/// justification as reading it, and a note on an id that does not exist
/// gets the same answer as one on an item the principal may not see.
#[test]
fn notes_need_the_read_and_its_justification() {
    let env = two_agencies();
    let f = env.file("b.txt", b"bulk intercept");
    let id = env.ingest("alice", "mi5/bulk", "SECRET", &[&f])[0].clone();
    let err = stderr_of(&env, &["--as", "alice", "annotate", &id, "seen"]);
    assert!(err.contains("justification"), "{err}");
    env.ok(&[
        "--as",
        "alice",
        "annotate",
        &id,
        "seen",
        "--justification",
        "op 17",
    ]);
    let g = env.file("m.txt", b"mi6 only");
    let theirs = env.ingest("bob", "mi6/humint", "SECRET", &[&g])[0].clone();
    let hidden = stderr_of(&env, &["--as", "alice", "annotate", &theirs, "x"]);
    let missing = stderr_of(
        &env,
        &[
            "--as",
            "alice",
            "annotate",
            "01900000-0000-7000-8000-000000000000",
            "x",
        ],
    );
    assert_eq!(hidden, missing);
}

/// A batch read (what the detection job, the alert queue and playbooks use) fetches its
/// objects together, yet refuses only the damaged items, each for its own damage, and
/// audits each refusal: a content re-pointed in the catalog, a standalone object deleted.
#[test]
fn a_batch_read_refuses_only_the_damaged_items() {
    let env = two_agencies();
    let a = env.file("a.txt", b"first of the batch");
    let b = env.file("b.txt", b"re-pointed at another's content");
    let c = env.file("c.txt", b"third of the batch");
    let big = env.file("big.bin", &vec![7u8; 2 << 20]);
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &[&a, &b, &c, &big]);
    let conn = db(&env);
    let content_of = |id: &str| -> i64 {
        conn.query_row("SELECT content_id FROM items WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .expect("row")
    };
    conn.execute(
        "UPDATE items SET content_id = ?1 WHERE id = ?2",
        rusqlite::params![content_of(&ids[2]), ids[1]],
    )
    .expect("re-point");
    let object: String = conn
        .query_row(
            "SELECT object FROM contents WHERE id = ?1 AND pack IS NULL",
            [content_of(&ids[3])],
            |r| r.get(0),
        )
        .expect("a standalone object");
    drop(conn);
    let file = files_under(&env.data)
        .into_iter()
        .find(|f| f.ends_with(&object))
        .expect("the object's file");
    std::fs::remove_file(file).expect("delete");

    let mut p = crate::common::open_platform(&env);
    let read = p.get_many("alice", &ids, None).expect("batch");
    assert_eq!(read.len(), 4);
    assert_eq!(read[0].as_ref().expect("a").1, b"first of the batch");
    assert_eq!(read[2].as_ref().expect("c").1, b"third of the batch");
    let b_err = read[1].as_ref().expect_err("b refused").to_string();
    assert!(b_err.contains("not its own"), "{b_err}");
    let d_err = read[3]
        .as_ref()
        .expect_err("the deleted object")
        .to_string();
    assert!(d_err.contains("cannot be read"), "{d_err}");
    drop(p);
    let trail = crate::common::audit_lines(&env);
    let mine = |outcome: &str| {
        trail
            .iter()
            .filter(|e| {
                e["principal"] == "alice" && e["action"] == "item.get" && e["outcome"] == outcome
            })
            .count()
    };
    assert_eq!(mine("allowed"), 2);
    assert_eq!(
        mine("refused"),
        2,
        "each damaged item's refusal is in the log"
    );
    env.ok(&["audit", "verify"]);
}
