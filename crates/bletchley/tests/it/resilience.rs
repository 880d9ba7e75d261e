//! Ransomware resilience of the platform itself: legal holds, the mass-destruction brake,
//! and backup and restore.

use crate::common::{Env, audit_lines, count_action};

/// While a collection is held, neither an admin nor retention destroys anything in it, and
/// each refusal is audited; released, both work again.
#[test]
fn a_legal_hold_stops_shredding_and_retention_until_released() {
    let env = Env::new();
    env.basic();
    let f = env.file("evidence.txt", b"the ledger the defence has asked for");
    let g = env.file("expiring.txt", b"kept past its date by the hold");
    let id = env.ingest("alice", "mi5/ct", "SECRET", &[&f])[0].clone();
    let soon = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = soon
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format");
    let expiring = env
        .ok(&[
            "--as",
            "alice",
            "ingest",
            g.to_str().expect("path"),
            "--collection",
            "mi5/ct",
            "--marking",
            "SECRET",
            "--retain-until",
            &soon,
        ])
        .trim()
        .to_owned();

    // A hold needs a reason, and the collection must exist.
    assert!(
        env.fails(&["collection", "hold", "mi5/ct", "--reason", " "])
            .contains("reason")
    );
    assert!(
        env.fails(&["collection", "hold", "mi5/nope", "--reason", "R v Smith"])
            .contains("unknown collection")
    );
    env.ok(&[
        "collection",
        "hold",
        "mi5/ct",
        "--reason",
        "R v Smith [2026]",
    ]);
    assert!(
        env.fails(&["collection", "hold", "mi5/ct", "--reason", "again"])
            .contains("already under legal hold")
    );
    let ls = env.ok(&["collection", "ls"]);
    assert!(ls.contains("mi5/ct\tlegal hold: R v Smith [2026]"), "{ls}");
    assert!(!ls.contains("mi5/bulk\tbulk\tlegal hold"), "{ls}");

    let err = env.fails(&["--as", "boss", "shred", &id]);
    assert!(
        err.contains("legal hold") && err.contains("R v Smith"),
        "{err}"
    );
    assert_eq!(
        env.ok(&["--as", "alice", "get", &id]),
        "the ledger the defence has asked for"
    );
    std::thread::sleep(std::time::Duration::from_secs(3));
    let kept = env.ok(&["retention", "enforce"]);
    assert!(kept.contains("shredded 0"), "{kept}");
    assert!(kept.contains("kept 1 expired items"), "{kept}");
    // Searching runs retention first: a held item survives that too.
    env.ok(&["--as", "alice", "search", "ledger"]);
    assert_eq!(
        env.ok(&["--as", "alice", "get", &expiring]),
        "kept past its date by the hold"
    );

    let trail = audit_lines(&env);
    assert_eq!(count_action(&trail, "collection.hold", "allowed"), 1);
    assert_eq!(count_action(&trail, "item.shred", "refused"), 1);

    env.ok(&["collection", "release", "mi5/ct"]);
    assert!(
        env.fails(&["collection", "release", "mi5/ct"])
            .contains("not under legal hold")
    );
    assert!(!env.ok(&["collection", "ls"]).contains("legal hold"));
    env.ok(&["--as", "boss", "shred", &id]);
    assert!(env.ok(&["retention", "enforce"]).contains("shredded 1"));
    for gone in [&id, &expiring] {
        assert!(
            env.fails(&["--as", "alice", "get", gone])
                .contains("not found or not permitted")
        );
    }
    let trail = audit_lines(&env);
    assert_eq!(count_action(&trail, "collection.release", "allowed"), 1);
    env.ok(&["audit", "verify"]);
}

fn backup(env: &Env, dest: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "backup",
        dest.to_str().expect("path"),
        "--jurisdiction",
        "GB/london",
        "--json",
    ];
    args.extend_from_slice(extra);
    serde_json::from_str(&env.ok(&args)).expect("backup report is JSON")
}

fn restore(data: &std::path::Path, src: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["restore", src.to_str().expect("path"), "--json"];
    args.extend_from_slice(extra);
    crate::common::bletchley_at(data, &args)
        .output()
        .expect("run bletchley")
}

/// Bytes that do not compress and are unlike any other test's.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A backup restored into an empty directory is the platform as it was: every item reads
/// back byte for byte for the principals who could read it, the audit log verifies and says
/// that it was restored, and search works again (its index is rebuilt, not copied). A
/// second backup copies only what is new; an older generation restores the older state.
#[test]
fn backup_and_restore_round_trip_every_item() {
    let env = Env::new();
    env.basic();
    let mut originals: Vec<(String, Vec<u8>)> = Vec::new();
    let small: Vec<Vec<u8>> = (0..6)
        .map(|i| format!("report {i}: the courier uses the name WAGTAIL-{i}").into_bytes())
        .collect();
    let files: Vec<std::path::PathBuf> = small
        .iter()
        .enumerate()
        .map(|(i, c)| env.file(&format!("r{i}.txt"), c))
        .chain([env.file("large.bin", &noise(1_300_000, 7))])
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &refs);
    for (id, f) in ids.iter().zip(&files) {
        originals.push((id.clone(), std::fs::read(f).expect("read")));
    }
    let dest = env.root.join("backup");
    let first = backup(&env, &dest, &[]);
    assert_eq!(first["items"], 7);
    assert_eq!(first["objects_copied"], first["objects"]);
    let first_gen = first["generation"].as_str().expect("generation").to_owned();
    // Nothing in the backup is plaintext.
    for f in crate::common::files_under(&dest) {
        let bytes = std::fs::read(&f).expect("read");
        assert!(
            !crate::common::contains(&bytes, b"WAGTAIL"),
            "{} holds plaintext",
            f.display()
        );
    }

    // A second run copies only the new item's object.
    let later = env.file("later.txt", b"a later report about KESTREL");
    let later_id = env.ingest("alice", "mi5/ct", "SECRET", &[&later])[0].clone();
    originals.push((later_id.clone(), b"a later report about KESTREL".to_vec()));
    let second = backup(&env, &dest, &[]);
    assert_eq!(second["items"], 8);
    assert_eq!(second["objects_copied"], 1, "{second}");
    assert_eq!(
        second["objects"].as_u64(),
        first["objects"].as_u64().map(|n| n + 1)
    );

    let restored = env.root.join("restored");
    let out = restore(&restored, &dest, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(report["items"], 8);
    let run = |args: &[&str]| {
        let o = crate::common::bletchley_at(&restored, args)
            .output()
            .expect("run");
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        o.stdout
    };
    for (id, bytes) in &originals {
        assert_eq!(&run(&["--as", "alice", "get", id]), bytes, "item {id}");
    }
    // Its objects rest under the new directory, not the old one.
    assert!(
        !crate::common::files_under(&restored.join("objects")).is_empty(),
        "restored objects lie under the restored directory"
    );
    let hits = String::from_utf8_lossy(&run(&["--as", "alice", "search", "KESTREL"])).into_owned();
    assert!(hits.contains(&later_id), "{hits}");
    run(&["audit", "verify"]);
    let trail = String::from_utf8_lossy(&run(&["audit", "show", "--json"])).into_owned();
    assert!(trail.contains("platform.restore"), "restore is audited");
    assert!(
        trail.contains("platform.backup"),
        "the backup's own entry is in it"
    );

    // The first generation is the platform before the later item.
    let older = env.root.join("older");
    let out = restore(&older, &dest, &["--generation", &first_gen]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o = crate::common::bletchley_at(&older, &["--as", "alice", "get", &later_id])
        .output()
        .expect("run");
    assert!(!o.status.success());
    let o = crate::common::bletchley_at(&older, &["--as", "alice", "get", &ids[0]])
        .output()
        .expect("run");
    assert_eq!(o.stdout, small[0]);

    // Never over something.
    let out = restore(&restored, &dest, &[]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("empty"));

    // The listing names both generations.
    let list = env.ok(&["restore", dest.to_str().expect("path"), "--list"]);
    assert_eq!(list.lines().count(), 2, "{list}");

    // Pruned to the newest generation: an item shredded before it is gone from the backup
    // too, bytes and all.
    env.ok(&["--as", "boss", "shred", &ids[6]]);
    let third = backup(&env, &dest, &["--keep", "1"]);
    assert_eq!(third["pruned"].as_array().map(Vec::len), Some(2));
    assert_eq!(third["items"], 7);
    let kept_objects = crate::common::files_under(&dest.join("objects")).len() as u64;
    assert_eq!(Some(kept_objects), third["objects"].as_u64());
}

/// A backup altered at rest is refused whole before anything is written: an object's byte
/// flipped, or the manifest edited.
#[test]
fn an_altered_backup_is_refused_before_anything_is_restored() {
    let env = Env::new();
    env.basic();
    let f = env.file("a.txt", b"the safe house is on Elm Street");
    env.ingest("alice", "mi5/ct", "SECRET", &[&f]);
    let dest = env.root.join("backup");
    backup(&env, &dest, &[]);

    let object = crate::common::files_under(&dest.join("objects"))
        .into_iter()
        .next()
        .expect("an object");
    let good = std::fs::read(&object).expect("read");
    let mut bad = good.clone();
    let mid = bad.len() / 2;
    bad[mid] ^= 1;
    std::fs::write(&object, &bad).expect("write");
    let target = env.root.join("r1");
    let out = restore(&target, &dest, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("altered"), "{err}");
    assert!(!target.exists(), "nothing was written");
    std::fs::write(&object, &good).expect("write");

    let gen_dir = std::fs::read_dir(dest.join("generations"))
        .expect("read")
        .next()
        .expect("a generation")
        .expect("entry")
        .path();
    let manifest = gen_dir.join("manifest.json");
    let text = std::fs::read_to_string(&manifest).expect("read");
    std::fs::write(&manifest, text.replace("\"items\": 1", "\"items\": 2")).expect("write");
    let out = restore(&target, &dest, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MAC"), "{err}");
    assert!(!target.exists());

    std::fs::write(&manifest, text).expect("write");
    let out = restore(&target, &dest, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A backup rests only where every item may rest (rule 3), and never inside what it backs
/// up.
#[test]
fn a_backup_respects_residency_and_stays_apart() {
    let env = Env::new();
    env.basic();
    let f = env.file("a.txt", b"kept in Britain");
    env.ingest("alice", "mi5/ct", "SECRET", &[&f]);
    let dest = env.root.join("backup-fr");
    let err = env.fails(&[
        "backup",
        dest.to_str().expect("path"),
        "--jurisdiction",
        "FR/paris",
    ]);
    assert!(
        err.contains("residency refused") && err.contains("FR/paris"),
        "{err}"
    );
    assert!(!dest.exists(), "nothing was written");
    let inside = env.data.join("backups");
    let err = env.fails(&[
        "backup",
        inside.to_str().expect("path"),
        "--jurisdiction",
        "GB",
    ]);
    assert!(err.contains("overlaps"), "{err}");
}

/// Past the limit a principal's shreds stop, the stop is audited, and only a second admin
/// of their agency lets them go on; the host cannot lift it by editing the catalog.
#[test]
fn the_mass_destruction_brake_stops_a_principal_until_a_second_admin_releases() {
    let env = Env::new();
    env.basic();
    env.add_principal("boss2", "mi5", "TOP SECRET", &["--roles", "admin"]);
    let files: Vec<std::path::PathBuf> = (0..4)
        .map(|i| env.file(&format!("f{i}.txt"), format!("record {i}").as_bytes()))
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|f| f.as_path()).collect();
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &refs);
    assert!(
        env.fails(&["brake", "set", "--max", "0", "--window", "1h"])
            .contains("at least 1")
    );
    assert!(
        env.fails(&["brake", "set", "--max", "2", "--window", "1x"])
            .contains("unit")
    );
    env.ok(&["brake", "set", "--max", "2", "--window", "1h"]);

    env.ok(&["--as", "boss", "shred", &ids[0]]);
    env.ok(&["--as", "boss", "shred", &ids[1]]);
    let err = env.fails(&["--as", "boss", "shred", &ids[2]]);
    assert!(err.contains("mass-destruction brake stopped boss"), "{err}");
    assert_eq!(env.ok(&["--as", "alice", "get", &ids[2]]), "record 2");
    // Still stopped, whatever the item.
    assert!(
        env.fails(&["--as", "boss", "shred", &ids[3]])
            .contains("brake")
    );
    let status = env.ok(&["brake", "status"]);
    assert!(status.contains("stopped: boss (mi5)"), "{status}");

    // Not by themselves, not by a non-admin; by a second admin.
    assert!(
        env.fails(&["--as", "boss", "brake", "release", "boss"])
            .contains("admin")
    );
    assert!(
        env.fails(&["--as", "alice", "brake", "release", "boss"])
            .contains("admin")
    );
    // The host resetting the count is noticed.
    let copy = env.root.join("tampered");
    crate::common::copy_tree(&env.data, &copy);
    let db = rusqlite::Connection::open(copy.join("catalog.db")).expect("open");
    db.execute("DELETE FROM meta WHERE k = 'brake.state'", [])
        .expect("delete");
    drop(db);
    let out = crate::common::bletchley_at(&copy, &["--as", "boss", "shred", &ids[3]])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("altered outside Bletchley"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    env.ok(&["--as", "boss2", "brake", "release", "boss"]);
    assert!(!env.ok(&["brake", "status"]).contains("stopped:"));
    env.ok(&["--as", "boss", "shred", &ids[2]]);

    let trail = audit_lines(&env);
    assert_eq!(count_action(&trail, "brake.stopped", "refused"), 1);
    assert_eq!(count_action(&trail, "brake.release", "allowed"), 1);
    assert_eq!(count_action(&trail, "item.shred", "refused"), 2);
    assert_eq!(count_action(&trail, "item.shred", "allowed"), 3);
}
