//! Crash safety: SIGKILL `bletchley ingest` at random moments; every item
//! whose id was printed is retrievable byte-identical, nothing partial is
//! visible, and the audit log verifies.

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::Env;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[derive(serde::Deserialize)]
struct Listed {
    id: String,
    title: String,
}

#[test]
fn sigkill_during_ingest_loses_nothing_acknowledged() {
    let env = Env::new();
    env.basic();
    let seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
        | 1;
    eprintln!("crash test seed {seed}");
    let mut rng = Rng(seed);
    let n_files = 40;
    let mut files = Vec::new();
    let mut contents = BTreeMap::new();
    for i in 0..n_files {
        let name = format!("f{i:03}.bin");
        let body: Vec<u8> = (0..(1000 + (i * 37) % 3000))
            .map(|j| ((i * 31 + j * 7) % 251) as u8)
            .collect();
        files.push(env.file(&name, &body));
        contents.insert(name, body);
    }
    let mut acknowledged: Vec<(String, String)> = Vec::new();
    let mut kills = 0;
    let mut completed = 0;
    let started = Instant::now();
    // Time one uninterrupted run, then kill at uniform moments within it.
    let span = {
        let mut args: Vec<String> = vec!["--as".into(), "alice".into(), "ingest".into()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        args.extend(
            [
                "--collection",
                "mi5/ct",
                "--marking",
                "SECRET",
                "--batch",
                "2",
            ]
            .map(String::from),
        );
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let t = Instant::now();
        let out = env.ok(&a);
        for (i, id) in out.lines().enumerate() {
            acknowledged.push((id.to_owned(), format!("f{i:03}.bin")));
        }
        t.elapsed().as_micros() as u64
    };
    eprintln!("one full ingest run takes {span} us");
    let mut runs = 0;
    while kills < 30 && runs < 300 {
        runs += 1;
        let mut args: Vec<String> = vec!["--as".into(), "alice".into(), "ingest".into()];
        args.extend(files.iter().map(|f| f.display().to_string()));
        args.extend(
            [
                "--collection",
                "mi5/ct",
                "--marking",
                "SECRET",
                "--batch",
                "2",
            ]
            .map(String::from),
        );
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut child = env
            .cmd(&a)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        let delay = Duration::from_micros(rng.next() % span.max(1000));
        let t = Instant::now();
        let mut finished = false;
        while t.elapsed() < delay {
            if child.try_wait().expect("wait").is_some() {
                finished = true;
                break;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        if !finished {
            child.kill().expect("SIGKILL");
            kills += 1;
        } else {
            completed += 1;
        }
        let mut out = String::new();
        child
            .stdout
            .take()
            .expect("stdout")
            .read_to_string(&mut out)
            .expect("read stdout");
        let mut err = String::new();
        child
            .stderr
            .take()
            .expect("stderr")
            .read_to_string(&mut err)
            .expect("read stderr");
        let status = child.wait().expect("reap");
        if finished {
            assert!(status.success(), "an ingest after a crash failed: {err}");
        }
        // Only complete lines are acknowledgements.
        let complete = &out[..out.rfind('\n').map_or(0, |i| i + 1)];
        for (i, id) in complete.lines().enumerate() {
            acknowledged.push((id.to_owned(), format!("f{i:03}.bin")));
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "crash test ran too long"
        );
    }
    assert!(kills >= 30, "only {kills} kills in {runs} runs");
    eprintln!(
        "{kills} kills, {completed} runs completed, {} items acknowledged",
        acknowledged.len()
    );
    assert!(
        !acknowledged.is_empty(),
        "no run got far enough to acknowledge anything"
    );

    // Whatever is visible is whole: every listed item reads back intact and
    // equal to the file it came from.
    let out = env.ok(&["--as", "alice", "ls", "--json"]);
    let listed: Vec<Listed> = serde_json::from_str(&out).expect("json");
    let mut visible = BTreeMap::new();
    for l in &listed {
        let o = env.run(&["--as", "alice", "get", &l.id]);
        assert!(
            o.status.success(),
            "visible item {} is partial: {}",
            l.id,
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(
            &o.stdout, &contents[&l.title],
            "item {} differs from {}",
            l.id, l.title
        );
        visible.insert(l.id.clone(), l.title.clone());
    }
    // Every acknowledged item is among them, from the right file.
    for (id, name) in &acknowledged {
        assert_eq!(
            visible.get(id),
            Some(name),
            "acknowledged item {id} ({name}) lost"
        );
    }
    let v = env.ok(&["audit", "verify"]);
    assert!(v.contains("verified"), "{v}");
    // The ingests of every acknowledged item are in the log.
    let audit = env.ok(&["audit", "show", "--json"]);
    for (id, _) in &acknowledged {
        assert!(audit.contains(id.as_str()), "no audit entry for {id}");
    }
}
