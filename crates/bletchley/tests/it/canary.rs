//! Canary scan: unique strings put into content, titles, metadata, collection,
//! operation and principal names and justifications appear nowhere in the
//! data directory's bytes — database, WAL and journals included — in UTF-8,
//! UTF-16 or base64.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;

use crate::common::{Env, contains, files_under};

fn forms(canary: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = vec![("utf-8".to_owned(), canary.as_bytes().to_vec())];
    let le: Vec<u8> = canary
        .encode_utf16()
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let be: Vec<u8> = canary
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    out.push(("utf-16le".into(), le));
    out.push(("utf-16be".into(), be));
    // base64 at each of the three alignments: keep the characters that depend
    // on the canary alone.
    for k in 0..3 {
        let mut v = vec![b'x'; k];
        v.extend_from_slice(canary.as_bytes());
        let enc = B64.encode(&v);
        let start = (4 * k).div_ceil(3) + 1;
        let end = enc.len() - 4;
        out.push((format!("base64+{k}"), enc.as_bytes()[start..end].to_vec()));
    }
    out
}

#[test]
fn no_canary_is_stored_in_the_clear() {
    let env = Env::new();
    let tag = format!("{:x}", std::process::id() as u64 * 7_919 + 12_345);
    let c = |what: &str| format!("canary{what}q7v2k9x4m1{tag}");
    let content = c("content");
    let title = c("title");
    let authority = c("authority");
    let coll = c("collection");
    let op = c("operation");
    let person = c("principal");
    let why = c("justification");

    env.ok(&["agency", "add", "mi5"]);
    env.ok(&["agency", "add", "gchq"]);
    env.ok(&[
        "principal",
        "add",
        &person,
        "--agency",
        "mi5",
        "--clearance",
        "SECRET",
        "--nationality",
        "GBR",
    ]);
    env.ok(&["collection", "add", &format!("mi5/{coll}"), "--bulk"]);
    env.ok(&["operation", "add", &op, "--agencies", "mi5,gchq"]);
    env.ok(&["operation", "share", &op, &format!("mi5/{coll}")]);

    // Hold a connection open so SQLite keeps its WAL file for the scan.
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open catalog");
    db.query_row("SELECT count(*) FROM items", [], |r| r.get::<_, i64>(0))
        .expect("query");

    let body = format!("The report mentions {content} twice: {content}.\n");
    let f = env.file(&format!("{title}.txt"), body.as_bytes());
    let out = env.ok(&[
        "--as",
        &person,
        "ingest",
        f.to_str().expect("path"),
        "--collection",
        &format!("mi5/{coll}"),
        "--marking",
        "SECRET//UK EYES ONLY",
        "--authority",
        &authority,
        "--justification",
        &why,
    ]);
    let id = out.trim().to_owned();
    let listed = env.ok(&["--as", &person, "ls", "--justification", &why]);
    assert!(
        listed.contains(&title),
        "the canary title is listed to its reader"
    );
    assert_eq!(
        env.ok(&["--as", &person, "get", &id, "--justification", &why]),
        body
    );
    // Build the search index, and make sure it holds the canary.
    let found = env.ok(&["--as", &person, "search", &content, "--justification", &why]);
    assert!(found.contains("1 matches"), "{found}");

    let files = files_under(&env.data);
    assert!(
        files
            .iter()
            .any(|p| p.to_string_lossy().ends_with("catalog.db-wal")),
        "WAL present for the scan: {files:?}"
    );
    let mut hits = Vec::new();
    for p in &files {
        let bytes = std::fs::read(p).expect("read");
        for canary in [&content, &title, &authority, &coll, &op, &person, &why] {
            for (form, needle) in forms(canary) {
                if contains(&bytes, &needle) {
                    hits.push(format!("{} holds {canary} as {form}", p.display()));
                }
            }
        }
    }
    drop(db);
    assert!(
        hits.is_empty(),
        "plaintext found at rest:\n{}",
        hits.join("\n")
    );
}
