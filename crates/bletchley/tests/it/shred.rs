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
    let placed = placements(&env);
    let doomed: Vec<Vec<u8>> = before
        .iter()
        .filter(|(t, k, _, _)| (t == "items" && k == &id) || t == "contents")
        .map(|(_, _, _, w)| w.clone())
        .collect();

    // Only an admin of the owning agency may shred.
    let err = env.fails(&["--as", "alice", "shred", &id]);
    assert!(err.contains("admin"), "{err}");
    shred_keeping(&env, &id, &keep, "an unrelated report that stays");

    assert_unrecoverable(&env, &secret, &doomed, &placed);
    let objects: Vec<_> = files_under(&env.data.join("objects"));
    assert_eq!(
        objects.len(),
        1,
        "only the kept item's object remains: {objects:?}"
    );
}

/// Small contents of one ingest share a pack object: shredding one leaves
/// the pack (the other still lives in it) but not a way to read the
/// shredded one, and shredding the last removes the pack.
#[test]
fn an_item_shredded_out_of_a_shared_pack_is_unrecoverable() {
    let env = Env::new();
    env.basic();
    let secret = b"agent HERON meets the courier at the Ritz at noon".to_vec();
    let f = env.file("heron.txt", &secret);
    let other = env.file("kept.txt", b"a neighbour in the same pack that stays");
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &[&f, &other]);
    let (id, keep) = (ids[0].clone(), ids[1].clone());
    let objects = files_under(&env.data.join("objects"));
    assert_eq!(objects.len(), 1, "one pack for the batch: {objects:?}");
    let placed = placements(&env);
    assert_eq!(placed.len(), 2);
    assert!(
        placed
            .iter()
            .all(|c| c.pack.is_some() && c.pack == placed[0].pack),
        "both contents lie in the one pack: {placed:?}"
    );
    let before = wrapped_keys(&env);
    let doomed: Vec<Vec<u8>> = before
        .iter()
        .filter(|(t, k, _, _)| {
            (t == "items" && k == &id) || (t == "contents" && placed[0].object == *k)
        })
        .map(|(_, _, _, w)| w.clone())
        .collect();
    assert_eq!(doomed.len(), 2);

    shred_keeping(&env, &id, &keep, "a neighbour in the same pack that stays");
    assert_eq!(
        files_under(&env.data.join("objects")),
        objects,
        "the pack stays while an item lies in it"
    );
    assert_unrecoverable(&env, &secret, &doomed, &placed);

    env.ok(&["--as", "boss", "shred", &keep]);
    assert_eq!(
        files_under(&env.data.join("objects")),
        Vec::<std::path::PathBuf>::new(),
        "the pack goes with its last item"
    );
}

/// An admin shreds `id`: it is gone for its analyst, and `keep` still
/// reads as `kept`.
fn shred_keeping(env: &Env, id: &str, keep: &str, kept: &str) {
    env.ok(&["--as", "boss", "shred", id]);
    assert_eq!(
        env.fails(&["--as", "alice", "get", id]).trim(),
        "error: not found or not permitted"
    );
    assert_eq!(env.ok(&["--as", "alice", "get", keep]), kept);
}

/// Where a content lay before a shred: its name and, when packed, its pack
/// and range.
#[derive(Debug)]
struct Placed {
    object: String,
    pack: Option<String>,
    offset: i64,
    size: i64,
}

fn placements(env: &Env) -> Vec<Placed> {
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open");
    let mut st = db
        .prepare("SELECT object, pack, pack_offset, size FROM contents ORDER BY id")
        .expect("prepare");
    st.query_map([], |r| {
        Ok(Placed {
            object: r.get(0)?,
            pack: r.get(1)?,
            offset: r.get::<_, Option<i64>>(2)?.unwrap_or(0),
            size: r.get(3)?,
        })
    })
    .expect("query")
    .map(|r| r.expect("row"))
    .collect()
}

/// No raw byte of the data directory holds a shredded wrapped key or the
/// plaintext, and no key left in the catalog opens any object, whole or at
/// any content's former place, under any content's name.
fn assert_unrecoverable(env: &Env, secret: &[u8], doomed: &[Vec<u8>], placed: &[Placed]) {
    let after = wrapped_keys(env);
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
            !contains(&std::fs::read(p).expect("read"), secret),
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
    let objects = files_under(&env.data.join("objects"));
    let name_of = |o: &std::path::Path| {
        format!(
            "{}/{}",
            o.parent()
                .and_then(|p| p.file_name())
                .map(|s| s.to_string_lossy())
                .unwrap_or_default(),
            o.file_name()
                .map(|s| s.to_string_lossy())
                .unwrap_or_default()
        )
    };
    let names: Vec<String> = objects
        .iter()
        .map(|o| name_of(o))
        .chain(placed.iter().map(|c| c.object.clone()))
        .collect();
    let mut opened = 0;
    for o in &objects {
        let bytes = std::fs::read(o).expect("read");
        let mut spans = vec![bytes.clone()];
        for c in placed
            .iter()
            .filter(|c| c.pack.as_deref() == Some(name_of(o).as_str()))
        {
            let (a, b) = (c.offset as usize, (c.offset + c.size) as usize);
            spans.push(bytes[a..b].to_vec());
        }
        for sealed in &spans {
            for name in &names {
                for k in &deks {
                    if let Ok(pt) = stream::open(k, name.as_bytes(), sealed) {
                        assert_ne!(pt, secret, "shredded content recovered");
                        opened += 1;
                    }
                }
            }
        }
    }
    // The kept item's content opens this way: the search would have found
    // the shredded one had its key survived.
    assert!(opened > 0, "no live content opened: the search is broken");
}
