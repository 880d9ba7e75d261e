//! Bad input gets a clear error, a non-zero exit, and changes nothing.

use crate::common::{Env, files_under};

fn snapshot(env: &Env) -> (String, Vec<std::path::PathBuf>) {
    let listed = env.ok(&["--as", "alice", "ls", "--justification", "snapshot"]);
    (listed, files_under(&env.data.join("objects")))
}

#[test]
fn bad_input_is_refused_clearly_and_changes_nothing() {
    let env = Env::new();
    env.basic();
    let good = env.file("good.txt", b"good");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&good])[0].clone();
    let bulk_id = env.ingest("alice", "mi5/bulk", "SECRET", &[&good])[0].clone();
    let before = snapshot(&env);
    let g = good.to_str().expect("path");

    // Malformed banners say where and why.
    for (banner, needle) in [
        ("SECRET//REL TO GBR,USA", "byte 15"),
        ("secret", "upper case"),
        ("TOP SECRET//UK EYES ONLY//BOGUS", "byte 26"),
        ("", "empty"),
    ] {
        let err = env.fails(&[
            "--as",
            "alice",
            "ingest",
            g,
            "--collection",
            "mi5/ct",
            "--marking",
            banner,
        ]);
        assert!(
            err.contains("invalid marking") && err.contains(needle),
            "{banner:?}: {err}"
        );
    }
    // Unknown principals, collections and items.
    assert!(
        env.fails(&["--as", "mallory", "ls"])
            .contains("unknown principal")
    );
    assert!(
        env.fails(&[
            "--as",
            "alice",
            "ingest",
            g,
            "--collection",
            "mi5/nope",
            "--marking",
            "SECRET"
        ])
        .contains("not found or not permitted")
    );
    assert!(
        env.fails(&["--as", "alice", "get", "not-an-id"])
            .contains("not found or not permitted")
    );
    // Missing --as and missing justification.
    assert!(env.fails(&["ls"]).contains("--as"));
    assert!(
        env.fails(&["--as", "alice", "get", &bulk_id])
            .contains("justification")
    );
    assert!(
        env.fails(&["--as", "alice", "get", &bulk_id, "--justification", "   "])
            .contains("justification")
    );
    // Writing above one's own access.
    assert!(
        env.fails(&[
            "--as",
            "alice",
            "ingest",
            g,
            "--collection",
            "mi5/ct",
            "--marking",
            "TOP SECRET//STRAP9"
        ])
        .contains("could not read it yourself")
    );
    // Wrong passphrase.
    let o = env
        .cmd(&["--as", "alice", "ls"])
        .env("BLETCHLEY_PASSPHRASE", "wrong")
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("wrong passphrase"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // No passphrase at all, without a terminal.
    let o = env
        .cmd(&["--as", "alice", "ls"])
        .env_remove("BLETCHLEY_PASSPHRASE")
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&o.stderr).contains("BLETCHLEY_PASSPHRASE_PLATFORM"));
    // Other malformed arguments.
    assert!(
        env.fails(&[
            "location",
            "add",
            "x",
            "--jurisdiction",
            "uk",
            "--path",
            "/tmp/x"
        ])
        .contains("alpha-2")
    );
    assert!(
        env.fails(&[
            "principal",
            "add",
            "z",
            "--agency",
            "mi5",
            "--clearance",
            "SECRET",
            "--nationality",
            "XYZ"
        ])
        .contains("nationality")
    );
    assert!(
        env.fails(&[
            "principal",
            "add",
            "z",
            "--agency",
            "mi5",
            "--clearance",
            "HUSH",
            "--nationality",
            "GBR"
        ])
        .contains("classification")
    );
    assert!(
        env.fails(&[
            "operation",
            "add",
            "op",
            "--agencies",
            "mi5",
            "--until",
            "tomorrow"
        ])
        .contains("YYYY-MM-DD")
    );
    assert!(env.fails(&["init"]).contains("already exists"));
    assert_eq!(snapshot(&env), before, "a refused command changed state");

    // An unreadable file among many: the others are acknowledged, the bad
    // ones named, the exit is non-zero.
    let other = env.file("other.txt", b"other");
    let missing = env.root.join("in/missing.txt");
    let dir = env.root.join("in");
    let o = env
        .cmd(&[
            "--as",
            "alice",
            "ingest",
            g,
            missing.to_str().expect("p"),
            dir.to_str().expect("p"),
            other.to_str().expect("p"),
            "--collection",
            "mi5/ct",
            "--marking",
            "SECRET",
        ])
        .output()
        .expect("run");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("missing.txt") && err.contains("2 of 4 files were not ingested"),
        "{err}"
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 2);

    // A corrupted sealed chunk is detected, and nothing is written out.
    let objects = files_under(&env.data.join("objects"));
    for p in &objects {
        let mut b = std::fs::read(p).expect("read");
        let i = b.len() / 2;
        b[i] ^= 0x04;
        std::fs::write(p, b).expect("write");
    }
    let o = env.run(&["--as", "alice", "get", &id]);
    assert!(!o.status.success());
    assert!(o.stdout.is_empty());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the store is damaged: the content of item"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    env.ok(&["audit", "verify"]);
}
