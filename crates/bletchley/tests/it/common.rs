//! Running the binary against a fresh data directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const PASSPHRASE: &str = "correct horse battery staple";

/// A temporary data directory initialised with cheap key-file parameters.
pub struct Env {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub data: PathBuf,
}

impl Env {
    pub fn new() -> Env {
        Env::with_init(&[])
    }

    /// A data directory initialised with extra `init` arguments.
    pub fn with_init(extra: &[&str]) -> Env {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().to_owned();
        let env = Env {
            _dir: dir,
            data: root.join("data"),
            root,
        };
        let mut args = vec!["init", "--kdf-memory-kib", "256", "--kdf-passes", "1"];
        args.extend_from_slice(extra);
        env.ok(&args);
        env
    }

    /// The command with `--data` and the passphrase set.
    pub fn cmd(&self, args: &[&str]) -> Command {
        self.cmd_in(None, args)
    }

    /// The command, run inside network namespace `netns` when one is given.
    pub fn cmd_in(&self, netns: Option<&str>, args: &[&str]) -> Command {
        let c = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, env!("CARGO_BIN_EXE_bletchley")]);
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_bletchley")),
        };
        with_data(c, &self.data, args)
    }

    /// Adds principal `name` of `agency`, cleared to `clearance`, British,
    /// with extra arguments (`--roles`, `--compartments`).
    pub fn add_principal(&self, name: &str, agency: &str, clearance: &str, extra: &[&str]) {
        let mut args = vec![
            "principal",
            "add",
            name,
            "--agency",
            agency,
            "--clearance",
            clearance,
            "--nationality",
            "GBR",
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("spawn bletchley")
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "bletchley {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&o.stderr),
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stdout).expect("utf-8 stdout")
    }

    /// Runs and insists on failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            !o.status.success(),
            "bletchley {args:?} should have failed: {}",
            String::from_utf8_lossy(&o.stdout)
        );
        String::from_utf8(o.stderr).expect("utf-8 stderr")
    }

    /// Writes a file in the scratch area and returns its path.
    pub fn file(&self, name: &str, content: &[u8]) -> PathBuf {
        let p = self.root.join("in").join(name);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(&p, content).expect("write");
        p
    }

    /// A small platform: agency mi5, principals alice (TS STRAP1 analyst) and
    /// boss (admin), collections mi5/ct and mi5/bulk.
    pub fn basic(&self) {
        self.ok(&["agency", "add", "mi5"]);
        self.ok(&[
            "principal",
            "add",
            "alice",
            "--agency",
            "mi5",
            "--clearance",
            "TOP SECRET",
            "--compartments",
            "STRAP1",
            "--nationality",
            "GBR",
        ]);
        self.ok(&[
            "principal",
            "add",
            "boss",
            "--agency",
            "mi5",
            "--clearance",
            "TOP SECRET",
            "--nationality",
            "GBR",
            "--roles",
            "admin,analyst",
        ]);
        self.ok(&["collection", "add", "mi5/ct"]);
        self.ok(&["collection", "add", "mi5/bulk", "--bulk"]);
    }

    pub fn ingest(&self, who: &str, coll: &str, marking: &str, files: &[&Path]) -> Vec<String> {
        let mut args: Vec<String> = vec!["--as".into(), who.into(), "ingest".into()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        args.extend([
            "--collection".into(),
            coll.into(),
            "--marking".into(),
            marking.into(),
        ]);
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ok(&a).lines().map(str::to_owned).collect()
    }
}

/// The binary over the data directory `data`, with the test passphrase.
pub fn bletchley_at(data: &Path, args: &[&str]) -> Command {
    with_data(Command::new(env!("CARGO_BIN_EXE_bletchley")), data, args)
}

fn with_data(mut c: Command, data: &Path, args: &[&str]) -> Command {
    c.arg("--data").arg(data).args(args);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("BLETCHLEY_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null());
    c
}

/// Copies every file under `from` to the same place under `to`.
pub fn copy_tree(from: &Path, to: &Path) {
    for f in files_under(from) {
        let dst = to.join(f.strip_prefix(from).expect("under"));
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::copy(&f, &dst).expect("copy");
    }
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every entry of `env`'s audit log, as `audit show --json` prints them.
pub fn audit_lines(env: &Env) -> Vec<serde_json::Value> {
    env.ok(&["audit", "show", "--json"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("audit line is JSON"))
        .collect()
}

/// How many of `lines` record `action` with `outcome`.
pub fn count_action(lines: &[serde_json::Value], action: &str, outcome: &str) -> usize {
    lines
        .iter()
        .filter(|l| l["action"] == action && l["outcome"] == outcome)
        .count()
}

/// The platform of `env` opened in this process with every key (as the binary would, or as a
/// compromised operator's own software would).
pub fn open_platform(env: &Env) -> bletchley_store::Platform {
    struct TestUnlock;
    impl bletchley_store::Unlock for TestUnlock {
        fn passphrase(
            &self,
            _: &bletchley_store::KeyName,
        ) -> Result<zeroize::Zeroizing<String>, String> {
            Ok(zeroize::Zeroizing::new(PASSPHRASE.to_owned()))
        }
    }
    bletchley_store::Platform::open(&env.data, Box::new(TestUnlock)).expect("open platform")
}
