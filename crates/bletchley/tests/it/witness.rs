//! Witnessed checkpoints through the real binary: two `witness serve` processes
//! over HTTP, the platform's `audit witness`, `audit cosign`, `audit verify` with a
//! quorum, a witness that is down, and a platform whose audit log is rolled back
//! and forks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::common::{Env, PASSPHRASE, copy_tree};

/// A witness process, killed when dropped.
struct WitnessProc {
    child: Child,
    url: String,
}

impl Drop for WitnessProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn witness_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bletchley"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BLETCHLEY_PASSPHRASE_WITNESS", "witness passphrase")
        .stdin(Stdio::null());
    c
}

/// Makes a witness key; returns its public key line.
fn witness_init(key: &Path, name: &str) -> String {
    let o = witness_cmd(&[
        "witness",
        "init",
        "--key",
        key.to_str().expect("witness test"),
        "--name",
        name,
        "--kdf-memory-kib",
        "256",
        "--kdf-passes",
        "1",
    ])
    .output()
    .expect("witness test");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout)
        .expect("witness test")
        .trim()
        .to_owned()
}

fn witness_serve(key: &Path, state: &Path, vkey: &Path, listen: &str) -> WitnessProc {
    let mut child = witness_cmd(&[
        "witness",
        "serve",
        "--key",
        key.to_str().expect("witness test"),
        "--state",
        state.to_str().expect("witness test"),
        "--log",
        vkey.to_str().expect("witness test"),
        "--listen",
        listen,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("witness test");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("witness test"))
        .read_line(&mut line)
        .expect("witness test");
    let url = line
        .trim()
        .strip_prefix("witness listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    WitnessProc { child, url }
}

fn port_of(url: &str) -> String {
    url.rsplit(':').next().expect("witness test").to_owned()
}

fn status_note(state: &Path) -> String {
    let o = witness_cmd(&[
        "witness",
        "status",
        "--state",
        state.to_str().expect("witness test"),
        "--json",
    ])
    .output()
    .expect("witness test");
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("witness test");
    v[0]["note"].as_str().expect("witness test").to_owned()
}

fn witnessed_size(env: &Env) -> u64 {
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "verify", "--json"])).expect("witness test");
    v["witnessed_size"].as_u64().expect("witness test")
}

#[test]
fn two_witnesses_cosign_and_a_rolled_back_log_is_refused() {
    let env = Env::new();
    env.basic();
    let vkey = env.data.join("audit/verifier.vkey");
    let dir = env.root.join("witnesses");
    std::fs::create_dir_all(&dir).expect("witness test");
    let keys: Vec<PathBuf> = (1..=2).map(|i| dir.join(format!("w{i}.key"))).collect();
    let states: Vec<PathBuf> = (1..=2).map(|i| dir.join(format!("w{i}-state"))).collect();
    let pubs: Vec<String> = (1..=2)
        .map(|i| witness_init(&keys[i - 1], &format!("witness.ipco.example/w{i}")))
        .collect();
    assert!(pubs[0].starts_with("witness.ipco.example/w1+"));
    // A key file is never overwritten.
    assert!(
        !witness_cmd(&[
            "witness",
            "init",
            "--key",
            keys[0].to_str().expect("witness test"),
            "--name",
            "x"
        ])
        .status()
        .expect("witness test")
        .success()
    );
    let w1 = witness_serve(&keys[0], &states[0], &vkey, "127.0.0.1:0");
    let mut w2 = witness_serve(&keys[1], &states[1], &vkey, "127.0.0.1:0");

    // Nothing configured: verify works as before and says nothing of witnesses.
    assert!(env.ok(&["audit", "verify"]).contains("audit log verified"));
    env.ok(&[
        "audit", "witness", "add", "--key", &pubs[0], "--url", &w1.url,
    ]);
    env.ok(&[
        "audit", "witness", "add", "--key", &pubs[1], "--url", &w2.url, "--quorum", "2",
    ]);
    // A bad change is refused and changes nothing.
    assert!(
        env.fails(&["audit", "witness", "quorum", "3"])
            .contains("quorum 3")
    );
    assert!(
        env.ok(&["audit", "witness", "ls"])
            .contains("quorum 2 of 2")
    );
    // Configured but not yet cosigned: verify fails, naming the quorum.
    let e = env.fails(&["audit", "verify"]);
    assert!(e.contains("no checkpoint is cosigned by 2"), "{e}");

    let out = env.ok(&["audit", "cosign"]);
    assert!(out.contains("cosigned by 2 of 2"), "{out}");
    let first = witnessed_size(&env);
    assert!(first > 0);
    let before_restore = first;
    // The host deletes the policy file, or lowers the quorum in it: the guarded copy
    // puts it back at the next open, and says so in the audit log.
    let policy_file = env.data.join("audit/witnesses.json");
    let kept = std::fs::read(&policy_file).expect("witness test");
    std::fs::remove_file(&policy_file).expect("witness test");
    assert!(
        env.ok(&["audit", "cosign"])
            .contains("of 2 witnesses (quorum 2)")
    );
    assert_eq!(std::fs::read(&policy_file).expect("witness test"), kept);
    let lowered = String::from_utf8(kept.clone())
        .expect("witness test")
        .replace("\"quorum\": 2", "\"quorum\": 1");
    std::fs::write(&policy_file, lowered).expect("witness test");
    assert!(
        env.ok(&["audit", "witness", "ls"])
            .contains("quorum 2 of 2")
    );
    assert_eq!(std::fs::read(&policy_file).expect("witness test"), kept);
    assert_eq!(
        crate::common::count_action(
            &crate::common::audit_lines(&env),
            "audit.witness-policy-restored",
            "failed"
        ),
        2
    );
    let first = witnessed_size(&env);
    assert!(
        first > before_restore,
        "the restore's own entries were witnessed"
    );
    // The overseer's own keys, given on the command line, agree.
    let v: serde_json::Value = serde_json::from_str(&env.ok(&[
        "audit",
        "verify",
        "--json",
        "--witness",
        &pubs[0],
        "--witness",
        &pubs[1],
    ]))
    .expect("witness test");
    assert_eq!(v["witnessed_size"].as_u64().expect("witness test"), first);
    // A stranger's key is no quorum.
    let stranger = witness_init(&dir.join("s.key"), "witness.ipco.example/w1");
    assert!(
        env.fails(&["audit", "verify", "--witness", &stranger])
            .contains("no checkpoint is cosigned")
    );

    // Witness 2 goes down: cosigning is delayed, nothing is lost.
    let port2 = port_of(&w2.url);
    drop(w2);
    env.ok(&["collection", "add", "mi5/later"]);
    let o = env.run(&["audit", "cosign"]);
    assert!(!o.status.success());
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("unreachable") && out.contains("cosigned by 1 of 2"),
        "{out}"
    );
    let v: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "verify", "--json"])).expect("witness test");
    assert_eq!(v["witnessed_size"].as_u64().expect("witness test"), first);
    assert!(v["not_yet_witnessed"].as_u64().expect("witness test") > 0);
    // It comes back on the same port and catches up with a consistency proof.
    w2 = witness_serve(&keys[1], &states[1], &vkey, &format!("127.0.0.1:{port2}"));
    assert!(env.ok(&["audit", "cosign"]).contains("cosigned by 2 of 2"));
    let second = witnessed_size(&env);
    assert!(second > first);

    // Proofs an outside tool can check name the cosigned checkpoint.
    let p: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "proof", "1"])).expect("witness test");
    assert_eq!(p["index"], 1);
    assert!(
        p["checkpoint"]
            .as_str()
            .expect("witness test")
            .contains("witness.ipco.example/w2")
    );
    let c: serde_json::Value =
        serde_json::from_str(&env.ok(&["audit", "proof", "--from", &first.to_string()]))
            .expect("witness test");
    assert_eq!(c["old_size"].as_u64().expect("witness test"), first);

    // The host puts back the audit directory as it was at the first cosigning
    // and the platform carries on from there: a second history.
    let saved = env.root.join("audit-then");
    copy_tree(&env.data.join("audit"), &saved);
    env.ok(&["collection", "add", "mi5/more"]);
    env.ok(&["audit", "cosign"]);
    let third = witnessed_size(&env);
    std::fs::remove_dir_all(env.data.join("audit")).expect("witness test");
    copy_tree(&saved, &env.data.join("audit"));
    env.ok(&["--as", "alice", "ls"]);
    let o = env.run(&["audit", "cosign"]);
    assert!(
        !o.status.success(),
        "a rolled-back log must not be cosigned"
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("cosigned by 0 of 2") && out.contains("REFUSED"),
        "{out}"
    );
    // Each witness kept what it cosigned; verifying against it catches the rollback.
    let note = status_note(&states[0]);
    assert!(note.contains(&format!("\n{third}\n")));
    let held = env.root.join("witnessed-checkpoint");
    std::fs::write(&held, &note).expect("witness test");
    let e = env.fails(&[
        "audit",
        "verify",
        "--checkpoint",
        held.to_str().expect("witness test"),
    ]);
    assert!(e.contains("FAILED"), "{e}");
    drop(w1);
    drop(w2);
    let _ = PASSPHRASE;
}

/// The checker written from the specs alone, in Python's standard library.
const CHECKER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/c2sp_check.py");

fn python() -> Option<String> {
    let py = std::env::var("BLETCHLEY_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    Command::new(&py)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| py)
}

fn run_checker(py: &str, args: &[&str]) -> String {
    let o = Command::new(py)
        .arg(CHECKER)
        .args(args)
        .output()
        .expect("witness test");
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "c2sp_check.py {args:?}: {out}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn an_implementation_written_from_the_specs_checks_proofs_and_the_witness() {
    let Some(py) = python() else {
        eprintln!(
            "SKIPPED: no python3 to run the independent C2SP checker (scripts/test installs one)"
        );
        return;
    };
    let env = Env::new();
    env.basic();
    let vkey = env.data.join("audit/verifier.vkey");
    let key = env.root.join("w.key");
    let wpub = witness_init(&key, "witness.ipco.example/w1");
    // The witness follows the platform's log and the checker's own log.
    let outside = run_checker(&py, &["log-vkey", "outside.example/log"]);
    let outside_vkey = env.root.join("outside.vkey");
    std::fs::write(&outside_vkey, outside.trim()).expect("witness test");
    let mut child = witness_cmd(&[
        "witness",
        "serve",
        "--key",
        key.to_str().expect("witness test"),
        "--state",
        env.root.join("w-state").to_str().expect("witness test"),
        "--log",
        vkey.to_str().expect("witness test"),
        "--log",
        outside_vkey.to_str().expect("witness test"),
        "--listen",
        "127.0.0.1:0",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .spawn()
    .expect("witness test");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("witness test"))
        .read_line(&mut line)
        .expect("witness test");
    let w = WitnessProc {
        child,
        url: line
            .trim()
            .trim_start_matches("witness listening on ")
            .trim_end_matches('/')
            .to_owned(),
    };
    env.ok(&["audit", "witness", "add", "--key", &wpub, "--url", &w.url]);
    env.ok(&["audit", "cosign"]);
    let spec = serde_json::json!({
        "log_vkey": std::fs::read_to_string(&vkey).expect("witness test").trim(),
        "witness_vkeys": [wpub],
        "quorum": 1,
        "inclusion": serde_json::from_str::<serde_json::Value>(&env.ok(&["audit", "proof", "2"])).expect("witness test"),
        "consistency": serde_json::from_str::<serde_json::Value>(&env.ok(&["audit", "proof", "--from", "3"])).expect("witness test"),
    });
    let spec_path = env.root.join("proofs.json");
    std::fs::write(&spec_path, spec.to_string()).expect("witness test");
    let out = run_checker(&py, &["verify", spec_path.to_str().expect("witness test")]);
    assert!(out.starts_with("ok: entry 2"), "{out}");
    // A tampered proof is refused by the checker too.
    let mut bad = spec.clone();
    bad["inclusion"]["index"] = serde_json::json!(3);
    std::fs::write(&spec_path, bad.to_string()).expect("witness test");
    let o = Command::new(&py)
        .args([CHECKER, "verify", spec_path.to_str().expect("witness test")])
        .output()
        .expect("witness test");
    assert!(!o.status.success());
    // The checker, as a log of its own, drives our witness.
    let out = run_checker(
        &py,
        &["witness-client", &w.url, "outside.example/log", &wpub],
    );
    assert!(out.starts_with("ok: the witness cosigned"), "{out}");
}
