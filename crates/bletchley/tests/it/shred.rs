//! Crypto-shredding: after `shred`, the content cannot be recovered even with
//! every key file, the passphrase and every raw byte left in storage.

use bletchley_crypto::{KeyFile, KeyProvider, PassphraseProvider, WrappedKey, stream};

use crate::common::{Env, PASSPHRASE, contains, files_under};

fn wrapped_keys(env: &Env) -> Vec<(String, String, u32, Vec<u8>)> {
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open");
    let mut out = Vec::new();
    let mut st = db
        .prepare("SELECT id, kek_version, wrapped_key FROM items")
        .expect("prepare");
    for r in st
        .query_map([], |r| {
            Ok(("items".to_owned(), r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("query")
    {
        out.push(r.expect("row"));
    }
    let mut st = db
        .prepare("SELECT object, kek_version, wrapped_key FROM contents")
        .expect("prepare");
    for r in st
        .query_map([], |r| {
            Ok(("contents".to_owned(), r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .expect("query")
    {
        out.push(r.expect("row"));
    }
    out
}

#[test]
fn shredded_content_is_unrecoverable() {
    let env = Env::new();
    env.basic();
    let secret = b"the location of agent CORMORANT is 51.5072N 0.1276W".to_vec();
    let f = env.file("cormorant.txt", &secret);
    let other = env.file("other.txt", b"an unrelated report that stays");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0].clone();
    let keep = env.ingest("alice", "mi5/ct", "SECRET", &[&other])[0].clone();
    // Rotate once so the shredded keys have been rewrapped too.
    env.ok(&["agency", "rotate-key", "mi5"]);
    assert_eq!(
        env.ok(&["--as", "alice", "get", &id]).as_bytes(),
        &secret[..]
    );
    let before = wrapped_keys(&env);
    let doomed: Vec<Vec<u8>> = before
        .iter()
        .filter(|(t, k, _, _)| (t == "items" && k == &id) || t == "contents")
        .map(|(_, _, _, w)| w.clone())
        .collect();

    // Only an admin of the owning agency may shred.
    let err = env.fails(&["--as", "alice", "shred", &id]);
    assert!(err.contains("admin"), "{err}");
    env.ok(&["--as", "boss", "shred", &id]);
    assert_eq!(
        env.fails(&["--as", "alice", "get", &id]).trim(),
        "error: not found or not permitted"
    );
    assert_eq!(
        env.ok(&["--as", "alice", "get", &keep]),
        "an unrelated report that stays"
    );

    // No raw byte of the data directory holds the shredded item's wrapped
    // keys or its plaintext (database, WAL, objects, everything).
    let after = wrapped_keys(&env);
    let live: Vec<&Vec<u8>> = after.iter().map(|r| &r.3).collect();
    let files = files_under(&env.data);
    for w in doomed.iter().filter(|w| !live.contains(w)) {
        for p in &files {
            let bytes = std::fs::read(p).expect("read");
            assert!(
                !contains(&bytes, w),
                "{} still holds a shredded wrapped key",
                p.display()
            );
        }
    }
    for p in &files {
        assert!(
            !contains(&std::fs::read(p).expect("read"), &secret),
            "{} holds the plaintext",
            p.display()
        );
    }

    // Try anyway: unlock the agency key file, unwrap every data key still in
    // the catalog, and open every object with every key under every name.
    let kf = KeyFile::open(&env.data.join("keys/agency-mi5.key"), PASSPHRASE.as_bytes())
        .expect("key file");
    let keks = kf
        .secrets()
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("kek.")
                .and_then(|n| n.parse().ok())
                .map(|n| (n, v.clone()))
        })
        .collect();
    let provider = PassphraseProvider::new("mi5", keks).expect("provider");
    let mut deks = Vec::new();
    for (table, key, version, wrapped) in &after {
        let aad = format!("{table}:{key}");
        deks.push(
            provider
                .unwrap(
                    &WrappedKey {
                        kek_version: *version,
                        bytes: wrapped.clone(),
                    },
                    aad.as_bytes(),
                )
                .expect("live key unwraps"),
        );
    }
    let objects: Vec<_> = files_under(&env.data.join("objects"));
    assert_eq!(
        objects.len(),
        1,
        "only the kept item's object remains: {objects:?}"
    );
    for o in &objects {
        let sealed = std::fs::read(o).expect("read");
        let name = format!(
            "{}/{}",
            o.parent()
                .and_then(|p| p.file_name())
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            o.file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        );
        for k in &deks {
            if let Ok(pt) = stream::open(k, name.as_bytes(), &sealed) {
                assert_ne!(pt, secret, "shredded content recovered");
            }
        }
    }
}
