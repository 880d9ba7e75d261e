//! Tamper evidence: flipped, deleted, reordered or truncated bytes in the
//! audit storage fail `audit verify`, which says where.

use std::path::Path;

use crate::common::{Env, copy_tree};

/// (offset, length) of each record in the log: `u32 BE length || leaf`.
fn records(log: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 4 <= log.len() {
        let len = u32::from_be_bytes([log[at], log[at + 1], log[at + 2], log[at + 3]]) as usize;
        out.push((at, 4 + len));
        at += 4 + len;
    }
    out
}

/// Applies `damage` to a copy of the audit directory and returns what
/// `audit verify` said on failure.
fn verify_after(env: &Env, name: &str, damage: impl FnOnce(&Path)) -> String {
    let copy = env.root.join(format!("tamper-{name}"));
    copy_tree(&env.data.join("audit"), &copy.join("audit"));
    damage(&copy.join("audit"));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .args(["--data", copy.to_str().expect("path"), "audit", "verify"])
        .env_remove("BLETCHLEY_PASSPHRASE")
        .output()
        .expect("run");
    assert!(
        !o.status.success(),
        "{name}: verify passed on a damaged log"
    );
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_kind_of_damage_is_detected_and_located() {
    let env = Env::new();
    env.basic();
    let f = env.file("x.txt", b"x");
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &[&f, &f, &f]);
    for id in &ids {
        env.ok(&["--as", "alice", "get", id]);
    }
    // An overseer keeps the checkpoint published now.
    let held = env.root.join("held-checkpoint");
    std::fs::write(&held, env.ok(&["audit", "checkpoint"])).expect("write");
    env.ok(&["--as", "alice", "ls"]);
    env.ok(&["audit", "verify"]);
    // Verification needs no secret: run it without any passphrase.
    let clean = std::process::Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .args([
            "--data",
            env.data.to_str().expect("path"),
            "audit",
            "verify",
        ])
        .env_remove("BLETCHLEY_PASSPHRASE")
        .output()
        .expect("run");
    assert!(clean.status.success());

    let log = std::fs::read(env.data.join("audit/log")).expect("log");
    let recs = records(&log);
    let n = recs.len();
    assert!(n >= 12, "{n} entries");

    // A flipped byte inside entry 5's sealed payload: entry 6's link exposes it.
    let (o5, l5) = recs[5];
    let err = verify_after(&env, "flip", |d| {
        let mut b = std::fs::read(d.join("log")).expect("read");
        b[o5 + l5 - 3] ^= 0x01;
        std::fs::write(d.join("log"), b).expect("write");
    });
    assert!(
        err.contains("entry 6") && err.contains("entry 5"),
        "flip: {err}"
    );

    // A flipped byte in the last entry: only the root catches it, between the
    // last two checkpoints.
    let (ol, ll) = recs[n - 1];
    let err = verify_after(&env, "flip-last", |d| {
        let mut b = std::fs::read(d.join("log")).expect("read");
        b[ol + ll / 2] ^= 0x80;
        std::fs::write(d.join("log"), b).expect("write");
    });
    assert!(
        err.contains(&format!("{}..{}", n - 1, n)),
        "flip-last: {err}"
    );

    // Entry 3 deleted.
    let (o3, l3) = recs[3];
    let err = verify_after(&env, "delete", |d| {
        let mut b = std::fs::read(d.join("log")).expect("read");
        b.drain(o3..o3 + l3);
        std::fs::write(d.join("log"), b).expect("write");
    });
    assert!(
        err.contains("entry 3") && err.contains("sequence number is 4"),
        "delete: {err}"
    );

    // Entries 2 and 3 swapped.
    let (o2, l2) = recs[2];
    let err = verify_after(&env, "reorder", |d| {
        let b = std::fs::read(d.join("log")).expect("read");
        let mut out = b[..o2].to_vec();
        out.extend_from_slice(&b[o3..o3 + l3]);
        out.extend_from_slice(&b[o2..o2 + l2]);
        out.extend_from_slice(&b[o3 + l3..]);
        std::fs::write(d.join("log"), out).expect("write");
    });
    assert!(
        err.contains("entry 2") && err.contains("sequence number is 3"),
        "reorder: {err}"
    );

    // The last two entries cut off at a record boundary.
    let cut = recs[n - 2].0;
    let err = verify_after(&env, "truncate", |d| {
        let b = std::fs::read(d.join("log")).expect("read");
        std::fs::write(d.join("log"), &b[..cut]).expect("write");
    });
    assert!(
        err.contains("truncated") && err.contains(&format!("holds {}", n - 2)),
        "truncate: {err}"
    );

    // Cut mid-record.
    let err = verify_after(&env, "truncate-mid", |d| {
        let b = std::fs::read(d.join("log")).expect("read");
        std::fs::write(d.join("log"), &b[..b.len() - 7]).expect("write");
    });
    assert!(
        err.contains(&format!("entry {}", n - 1)) && err.contains("truncated"),
        "truncate-mid: {err}"
    );

    // A forged checkpoint.
    let err = verify_after(&env, "checkpoint", |d| {
        let t = std::fs::read_to_string(d.join("checkpoint")).expect("read");
        let mut lines: Vec<String> = t.lines().map(String::from).collect();
        lines[1] = (n + 5).to_string();
        std::fs::write(d.join("checkpoint"), lines.join("\n") + "\n").expect("write");
    });
    assert!(err.contains("signature"), "checkpoint: {err}");

    // Rolled back to an older state, caught by the checkpoint the overseer holds.
    let older_log = log[..recs[n - 3].0].to_vec();
    let copy = env.root.join("tamper-rollback");
    copy_tree(&env.data.join("audit"), &copy.join("audit"));
    std::fs::write(copy.join("audit/log"), &older_log).expect("write");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .args([
            "--data",
            copy.to_str().expect("path"),
            "audit",
            "verify",
            "--checkpoint",
            held.to_str().expect("path"),
        ])
        .output()
        .expect("run");
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("truncated"));

    // A writer will not chain onto a damaged tail: it refuses rather than
    // extend a lie. (It checks the tail it appends to; `audit verify` checks
    // everything.)
    let log_now = std::fs::read(env.data.join("audit/log")).expect("read");
    let (ol, ll) = *records(&log_now).last().expect("records");
    let mut b = log_now.clone();
    b[ol + ll - 2] ^= 0xff;
    std::fs::write(env.data.join("audit/log"), b).expect("write");
    let err = env.fails(&["--as", "alice", "ls"]);
    assert!(err.contains("audit log"), "{err}");
}
