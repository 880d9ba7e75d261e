//! De-duplication within an agency (keyed, never across agencies), retention
//! shredding, and the demo.

use crate::common::{Env, files_under};

/// An ingest's small contents are written as one pack, each readable alone;
/// a content over a megabyte is an object of its own, so reading it never
/// reads its neighbours and reading them never reads it.
#[test]
fn small_contents_share_a_pack_and_large_ones_stand_alone() {
    let env = Env::new();
    env.basic();
    let mut small: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("report {i}: nothing to add").into_bytes())
        .collect();
    // The same content twice in one batch is stored once.
    small.push(small[0].clone());
    // Not compressible into less, and past the packing limit once sealed.
    let large: Vec<u8> = (0..1_200_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let mut files: Vec<std::path::PathBuf> = small
        .iter()
        .enumerate()
        .map(|(i, c)| env.file(&format!("r{i}.txt"), c))
        .collect();
    files.push(env.file("large.bin", &large));
    let refs: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &refs);
    assert_eq!(ids.len(), 7);
    let mut sizes: Vec<u64> = files_under(&env.data.join("objects"))
        .iter()
        .map(|p| std::fs::metadata(p).expect("stat").len())
        .collect();
    sizes.sort();
    assert_eq!(sizes.len(), 2, "one pack and one large object: {sizes:?}");
    let small_total: usize = small[..5].iter().map(Vec::len).sum();
    assert!(
        sizes[0] > small_total as u64 && sizes[0] < 5_000,
        "the pack holds the five distinct small contents sealed: {sizes:?}"
    );
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open");
    let refs_of_contents: Vec<(i64, bool)> = db
        .prepare("SELECT refs, pack IS NOT NULL FROM contents ORDER BY id")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(
        refs_of_contents,
        vec![
            (2, true),
            (1, true),
            (1, true),
            (1, true),
            (1, true),
            (1, false)
        ],
        "five packed contents, the first used twice, and the large one alone"
    );
    assert!(sizes[1] > large.len() as u64, "{sizes:?}");
    for (id, content) in ids.iter().zip(small.iter().chain([&large])) {
        let out = env
            .cmd(&["--as", "alice", "get", id])
            .output()
            .expect("get");
        assert!(out.status.success());
        assert_eq!(&out.stdout, content, "item {id} reads back whole");
    }
}

#[test]
fn identical_content_is_stored_once_per_agency_with_keyed_tags() {
    let env = Env::new();
    env.basic();
    env.ok(&["agency", "add", "gchq"]);
    env.ok(&[
        "principal",
        "add",
        "carol",
        "--agency",
        "gchq",
        "--clearance",
        "SECRET",
        "--nationality",
        "GBR",
    ]);
    env.ok(&["collection", "add", "gchq/sigint"]);
    let f = env.file("same.txt", b"the very same intercept");
    let a = env.ingest("alice", "mi5/ct", "SECRET", &[&f]);
    let b = env.ingest("alice", "mi5/ct", "OFFICIAL", &[&f]);
    assert_ne!(a, b, "two items");
    assert_eq!(
        files_under(&env.data.join("objects")).len(),
        1,
        "stored once within mi5"
    );
    env.ingest("carol", "gchq/sigint", "SECRET", &[&f]);
    assert_eq!(
        files_under(&env.data.join("objects")).len(),
        2,
        "never shared across agencies"
    );
    let db = rusqlite::Connection::open(env.data.join("catalog.db")).expect("open");
    let tags: Vec<Vec<u8>> = db
        .prepare("SELECT tag FROM contents ORDER BY id")
        .expect("prepare")
        .query_map([], |r| r.get(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect();
    assert_eq!(tags.len(), 2);
    assert_ne!(
        tags[0], tags[1],
        "the tag is keyed per agency, so agencies cannot match content"
    );
    let plain = bletchley_crypto::sha256(b"the very same intercept");
    assert!(
        tags.iter().all(|t| t.as_slice() != plain),
        "not a plain content hash"
    );
    // Shredding one of the two mi5 items leaves the other readable.
    env.ok(&["--as", "boss", "shred", &a[0]]);
    assert_eq!(
        env.ok(&["--as", "alice", "get", &b[0]]),
        "the very same intercept"
    );
}

#[test]
fn retention_shreds_expired_items() {
    let env = Env::new();
    env.basic();
    let f = env.file("old.txt", b"kept too long");
    let g = env.file("new.txt", b"still needed");
    let ingest = |until: &str| {
        env.run(&[
            "--as",
            "alice",
            "ingest",
            f.to_str().expect("p"),
            "--collection",
            "mi5/ct",
            "--marking",
            "SECRET",
            "--retain-until",
            until,
        ])
    };
    // A date already past is refused: the item would be destroyed as soon as it was stored.
    let past = ingest("2020-01-01");
    assert!(!past.status.success());
    assert!(String::from_utf8_lossy(&past.stderr).contains("in the past"));
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let out = ingest(&soon);
    assert!(out.status.success());
    let old = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .expect("id")
        .trim()
        .to_owned();
    let keep = env.ingest("alice", "mi5/ct", "SECRET", &[&g]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(env.ok(&["retention", "enforce"]).contains("shredded 1"));
    assert!(
        env.fails(&["--as", "alice", "get", &old])
            .contains("not found or not permitted")
    );
    assert_eq!(env.ok(&["--as", "alice", "get", &keep[0]]), "still needed");
    assert!(env.ok(&["audit", "show"]).contains("retention.shred"));
}

#[test]
fn demo_builds_a_platform_and_shows_differences() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("demo");
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_bletchley"))
            .arg("--data")
            .arg(&data)
            .arg("demo")
            .arg("--no-serve")
            .args(extra)
            .env_remove("BLETCHLEY_PASSPHRASE")
            .output()
            .expect("run demo")
    };
    let o = run(&[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    let count = |who: &str| -> usize {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(who))
            .expect("principal line");
        line.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("count")
    };
    assert!(count("alice") > count("bob"), "{text}");
    assert!(
        count("erin") < count("dave"),
        "the liaison officer sees less: {text}"
    );
    // MOD's OFFICIAL reader sees MOD's OFFICIAL items and nothing else.
    assert!(count("frank") >= 1, "{text}");
    let frank = std::process::Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .arg("--data")
        .arg(&data)
        .args(["--as", "frank", "ls", "--json"])
        .env("BLETCHLEY_PASSPHRASE", "bletchley-demo")
        .output()
        .expect("run ls");
    let items: serde_json::Value = serde_json::from_slice(&frank.stdout).expect("json");
    let items = items.as_array().expect("array");
    assert_eq!(items.len(), count("frank"));
    for it in items {
        assert_eq!(it["marking"], "OFFICIAL", "{it}");
        assert_eq!(it["collection"], "mod/logistics", "{it}");
    }
    // Rerunning needs --force, and --force only deletes a demo directory.
    assert!(!run(&[]).status.success());
    assert!(run(&["--force"]).status.success());
    let other = dir.path().join("precious");
    std::fs::create_dir_all(&other).expect("mkdir");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .args([
            "--data",
            other.to_str().expect("p"),
            "demo",
            "--no-serve",
            "--force",
        ])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(other.exists());
}
