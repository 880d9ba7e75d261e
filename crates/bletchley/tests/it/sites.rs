//! Field sites: a hub and two field sites as separate data directories, bundles carried between
//! them as files. What each site should hold is written out below by hand from the rules
//! (ceiling, compartments, every staff nationality, assignment, residency), not computed by the
//! code under test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Env, contains, files_under, open_platform};

/// One item on the hub: its canary content, collection and marking, and whether each field site
/// may hold it.
pub(crate) struct Planted {
    canary: &'static str,
    collection: &'static str,
    marking: &'static str,
    pub alpha: bool,
    pub bravo: bool,
}

/// alpha: GB/cyprus, ceiling SECRET, staff GBR. bravo: US/virginia, ceiling TOP SECRET//STRAP1,
/// staff GBR and USA. Both are assigned mi5/ct and mi5/gbonly; mi5/hr is assigned to neither;
/// mi5/gbonly may rest in GB only.
const PLANTED: &[Planted] = &[
    // UK eyes only by default: bravo has US staff.
    Planted {
        canary: "CANARY-uk-only-secret",
        collection: "mi5/ct",
        marking: "SECRET",
        alpha: true,
        bravo: false,
    },
    Planted {
        canary: "CANARY-secret-rel-usa",
        collection: "mi5/ct",
        marking: "SECRET//REL TO GBR, USA",
        alpha: true,
        bravo: true,
    },
    // Above alpha's ceiling.
    Planted {
        canary: "CANARY-top-secret-rel",
        collection: "mi5/ct",
        marking: "TOP SECRET//REL TO GBR, USA",
        alpha: false,
        bravo: true,
    },
    Planted {
        canary: "CANARY-strap1",
        collection: "mi5/ct",
        marking: "TOP SECRET//STRAP1//REL TO GBR, USA",
        alpha: false,
        bravo: true,
    },
    // A compartment neither site holds.
    Planted {
        canary: "CANARY-strap2",
        collection: "mi5/ct",
        marking: "TOP SECRET//STRAP2//REL TO GBR, USA",
        alpha: false,
        bravo: false,
    },
    // Residency: GB only, and bravo is in the US.
    Planted {
        canary: "CANARY-gb-resident",
        collection: "mi5/gbonly",
        marking: "SECRET//REL TO GBR, USA",
        alpha: true,
        bravo: false,
    },
    // Not assigned to anyone.
    Planted {
        canary: "CANARY-unassigned",
        collection: "mi5/hr",
        marking: "OFFICIAL",
        alpha: false,
        bravo: false,
    },
];

pub(crate) struct Sites {
    pub hub: Env,
    pub alpha: Env,
    pub bravo: Env,
    /// Item id per planted entry.
    pub ids: Vec<String>,
}

fn field(name: &str, jurisdiction: &str, ceiling: &str, nations: &str) -> Env {
    let env = Env::with_init(&["--jurisdiction", jurisdiction]);
    env.ok(&[
        "site",
        "init",
        "--name",
        name,
        "--jurisdiction",
        jurisdiction,
        "--ceiling",
        ceiling,
        "--nationalities",
        nations,
        "--field",
    ]);
    env
}

fn identity(env: &Env) -> PathBuf {
    let p = env.root.join("identity.json");
    env.ok(&["site", "identity", p.to_str().expect("path")]);
    p
}

fn fingerprint(env: &Env) -> String {
    let s: Value = serde_json::from_str(&env.ok(&["site", "status", "--json"])).expect("json");
    s["fingerprint"].as_str().expect("fingerprint").to_owned()
}

/// `a` enrols `b` (with the hub's one-time `code` when `a` is a field site); returns the code
/// the hub printed when `a` is the hub.
fn enrol(a: &Env, b: &Env, code: Option<&str>) -> Option<String> {
    let id = identity(b);
    let f = fingerprint(b);
    let mut args = vec![
        "site",
        "enrol",
        "--identity",
        id.to_str().expect("path"),
        "--fingerprint",
        &f,
    ];
    if let Some(c) = code {
        args.extend(["--code", c]);
    }
    let out = a.ok(&args);
    out.lines()
        .find_map(|l| l.strip_prefix("one-time code: "))
        .map(str::to_owned)
}

/// Enrols a field site at its hub (named `hub`) and the hub there, with the one-time code, and
/// makes first contact by bundle: the field's acknowledgement proves the code to the hub.
fn pair(hub: &Env, field: &Env) {
    let code = enrol(hub, field, None).expect("the hub prints a one-time code");
    enrol(field, hub, Some(&code));
    import(hub, &export(field, "hub", "first-contact.bundle"));
}

pub(crate) fn setup() -> Sites {
    let hub = Env::new();
    hub.basic();
    hub.ok(&[
        "principal",
        "add",
        "carol",
        "--agency",
        "mi5",
        "--clearance",
        "TOP SECRET",
        "--compartments",
        "STRAP1,STRAP2",
        "--nationality",
        "GBR",
    ]);
    hub.ok(&["collection", "add", "mi5/gbonly"]);
    hub.ok(&["collection", "add", "mi5/hr"]);
    hub.ok(&["residency", "set", "--default", "--allow", "GB,US"]);
    hub.ok(&[
        "residency",
        "set",
        "--collection",
        "mi5/gbonly",
        "--allow",
        "GB",
    ]);
    let mut ids = Vec::new();
    for (i, p) in PLANTED.iter().enumerate() {
        let f = hub.file(
            &format!("planted{i}.txt"),
            format!("{} item {i}", p.canary).as_bytes(),
        );
        ids.extend(hub.ingest("carol", p.collection, p.marking, &[&f]));
    }
    hub.ok(&[
        "site",
        "init",
        "--name",
        "hub",
        "--jurisdiction",
        "GB/london",
        "--ceiling",
        "TOP SECRET//STRAP1/STRAP2",
        "--nationalities",
        "GBR",
        "--hub",
    ]);
    let alpha = field("alpha", "GB/cyprus", "SECRET", "GBR");
    let bravo = field("bravo", "US/virginia", "TOP SECRET//STRAP1", "GBR,USA");
    for f in [&alpha, &bravo] {
        pair(&hub, f);
        // Someone at the field to read what arrives: cleared for everything, so listings show
        // everything the site holds.
        f.ok(&["agency", "add", "mi5"]);
        f.ok(&[
            "principal",
            "add",
            "officer",
            "--agency",
            "mi5",
            "--clearance",
            "TOP SECRET",
            "--compartments",
            "STRAP1,STRAP2",
            "--nationality",
            "GBR",
            "--roles",
            "field,admin",
        ]);
    }
    hub.ok(&["site", "assign", "alpha", "mi5/ct", "mi5/gbonly"]);
    hub.ok(&["site", "assign", "bravo", "mi5/ct", "mi5/gbonly"]);
    Sites {
        hub,
        alpha,
        bravo,
        ids,
    }
}

/// Writes a bundle at `from` for `site`; returns its path.
fn export(from: &Env, site: &str, name: &str) -> PathBuf {
    let out = from.root.join(name);
    from.ok(&[
        "bundle",
        "export",
        "--site",
        site,
        out.to_str().expect("path"),
    ]);
    out
}

fn import(to: &Env, file: &Path) -> String {
    to.ok(&["bundle", "import", file.to_str().expect("path")])
}

pub(crate) fn held(env: &Env) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(&env.ok(&["--as", "officer", "ls", "--json"])).expect("ls");
    v.as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

pub(crate) fn expected(s: &Sites, pick: impl Fn(&Planted) -> bool) -> BTreeSet<String> {
    PLANTED
        .iter()
        .zip(&s.ids)
        .filter(|(p, _)| pick(p))
        .map(|(_, id)| id.clone())
        .collect()
}

/// No plaintext of any planted item anywhere under `dir`.
pub(crate) fn assert_no_plaintext(dir: &Path) {
    for f in files_under(dir) {
        let bytes = std::fs::read(&f).expect("read");
        for p in PLANTED {
            assert!(
                !contains(&bytes, p.canary.as_bytes()),
                "{} holds plaintext of {}",
                f.display(),
                p.canary
            );
        }
    }
}

#[test]
fn field_sites_receive_exactly_what_they_may_hold() {
    let s = setup();
    let to_alpha = export(&s.hub, "alpha", "alpha-1.bundle");
    let to_bravo = export(&s.hub, "bravo", "bravo-1.bundle");
    // Sealed: whoever carries the media reads nothing.
    for b in [&to_alpha, &to_bravo] {
        let bytes = std::fs::read(b).expect("bundle");
        assert!(
            PLANTED
                .iter()
                .all(|p| !contains(&bytes, p.canary.as_bytes()))
        );
    }
    import(&s.alpha, &to_alpha);
    import(&s.bravo, &to_bravo);
    assert_eq!(held(&s.alpha), expected(&s, |p| p.alpha), "alpha's items");
    assert_eq!(held(&s.bravo), expected(&s, |p| p.bravo), "bravo's items");
    // The content arrived whole, under the same id, marking and collection.
    let id = &s.ids[1];
    let got = s.bravo.ok(&["--as", "officer", "get", id]);
    assert_eq!(got, "CANARY-secret-rel-usa item 1");
    let meta: Value =
        serde_json::from_str(&s.bravo.ok(&["--as", "officer", "ls", "--json"])).expect("ls");
    let m = meta
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == id.as_str())
        .expect("item");
    assert_eq!(m["marking"], "SECRET//REL TO GBR, USA");
    assert_eq!(m["collection"], "mi5/ct");
    // Nothing in the clear at rest on either field site, and no hub key there.
    for f in [&s.alpha, &s.bravo] {
        assert_no_plaintext(&f.data);
        let hub_keys: BTreeSet<Vec<u8>> = files_under(&s.hub.data.join("keys"))
            .into_iter()
            .filter(|p| p.extension().is_some_and(|x| x == "key"))
            .map(|p| std::fs::read(p).expect("key"))
            .collect();
        for k in files_under(&f.data.join("keys")) {
            assert!(
                !hub_keys.contains(&std::fs::read(&k).expect("key")),
                "{} is a hub key",
                k.display()
            );
        }
    }
    // Once bravo has acknowledged, "nothing to send" says what policy holds back and why.
    import(&s.hub, &export(&s.bravo, "hub", "bravo-ack.bundle"));
    let nothing = s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "bravo",
        s.hub.root.join("none.bundle").to_str().expect("p"),
    ]);
    assert!(
        nothing.contains("nothing to send to bravo")
            && nothing.contains("1 by the residency rule for collection mi5/gbonly")
            && nothing.contains("by their marking"),
        "{nothing}"
    );
    // Importing twice changes nothing.
    let again = import(&s.alpha, &to_alpha);
    assert!(again.contains("already imported"), "{again}");
    assert_eq!(held(&s.alpha), expected(&s, |p| p.alpha));
}

#[test]
fn changes_of_assignment_and_new_items_flow_and_acknowledged_work_is_not_resent() {
    let s = setup();
    import(&s.alpha, &export(&s.hub, "alpha", "a1.bundle"));
    // The field acknowledges; the hub then has nothing to send.
    let ack = export(&s.alpha, "hub", "ack1.bundle");
    let out = import(&s.hub, &ack);
    assert!(out.contains("acknowledged operations up to"), "{out}");
    let nothing = s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "alpha",
        s.hub.root.join("x.bundle").to_str().expect("p"),
    ]);
    assert!(nothing.contains("nothing to send"), "{nothing}");

    // Taking a collection away removes (crypto-shreds) its items at the site; a new item in an
    // assigned collection arrives.
    s.hub.ok(&["site", "unassign", "alpha", "mi5/gbonly"]);
    let f = s.hub.file("new.txt", b"CANARY-late item");
    let new_id = s.hub.ingest("carol", "mi5/ct", "SECRET", &[&f]).remove(0);
    let second = export(&s.hub, "alpha", "a2.bundle");
    let out = import(&s.alpha, &second);
    assert!(out.contains("1 items added, 1 removed"), "{out}");
    let mut want = expected(&s, |p| p.alpha && p.collection != "mi5/gbonly");
    want.insert(new_id);
    assert_eq!(held(&s.alpha), want);
    let status: Value =
        serde_json::from_str(&s.hub.ok(&["site", "status", "--json"])).expect("status");
    let alpha = status["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["identity"]["name"] == "alpha")
        .expect("alpha");
    assert_eq!(alpha["items"].as_u64(), Some(want.len() as u64));
    assert_eq!(alpha["acknowledged"].as_u64(), Some(3), "{alpha}");
}

fn rejected(env: &Env, file: &Path, want: &str) {
    let before = held(env);
    let status_before = env.ok(&["site", "status", "--json"]);
    let err = env.fails(&["bundle", "import", file.to_str().expect("path")]);
    assert!(err.contains(want), "expected {want:?} in: {err}");
    assert_eq!(held(env), before, "a rejected bundle changed the items");
    assert_eq!(env.ok(&["site", "status", "--json"]), status_before);
}

#[test]
fn tampered_truncated_replayed_misaddressed_and_foreign_bundles_change_nothing() {
    let s = setup();
    let first = export(&s.hub, "alpha", "a1.bundle");
    let bytes = std::fs::read(&first).expect("bundle");

    // A byte changed anywhere: in the header, in the sealed body, in the signature.
    for at in [30, bytes.len() / 2, bytes.len() - 10] {
        let mut t = bytes.clone();
        t[at] ^= 0x40;
        let p = s.alpha.root.join(format!("tampered{at}.bundle"));
        std::fs::write(&p, &t).expect("write");
        let before = held(&s.alpha);
        let err = s.alpha.fails(&["bundle", "import", p.to_str().expect("p")]);
        assert!(
            err.contains("rejected") || err.contains("malformed"),
            "byte {at}: {err}"
        );
        assert_eq!(held(&s.alpha), before);
    }
    // Cut short.
    for cut in [10, 100, bytes.len() - 1] {
        let p = s.alpha.root.join(format!("cut{cut}.bundle"));
        std::fs::write(&p, &bytes[..cut]).expect("write");
        rejected(&s.alpha, &p, "truncated");
    }
    // Not a bundle at all.
    let garbage = s
        .alpha
        .file("garbage.bundle", b"hello, this is not a bundle");
    rejected(&s.alpha, &garbage, "not a Bletchley bundle");
    // For the other site.
    let for_bravo = export(&s.hub, "bravo", "b1.bundle");
    rejected(&s.alpha, &for_bravo, "addressed to site \"bravo\"");
    // From a hub this site never enrolled, however well formed.
    let rogue = Env::new();
    rogue.ok(&[
        "site",
        "init",
        "--name",
        "hub",
        "--jurisdiction",
        "GB/london",
        "--ceiling",
        "SECRET",
        "--nationalities",
        "GBR",
        "--hub",
    ]);
    // It enrols an impostor under alpha's name, which proves the code to it.
    let impostor = field("alpha", "GB/cyprus", "SECRET", "GBR");
    pair(&rogue, &impostor);
    rogue.ok(&["agency", "add", "mi5"]);
    rogue.ok(&["collection", "add", "mi5/ct"]);
    rogue.ok(&["site", "assign", "alpha", "mi5/ct"]);
    rogue.ok(&[
        "principal",
        "add",
        "eve",
        "--agency",
        "mi5",
        "--clearance",
        "SECRET",
        "--nationality",
        "GBR",
    ]);
    let f = rogue.file("x.txt", b"planted by a rogue hub");
    rogue.ingest("eve", "mi5/ct", "SECRET", &[&f]);
    let forged = export(&rogue, "alpha", "forged.bundle");
    rejected(&s.alpha, &forged, "does not verify");

    // The good one still applies after all that, and an older one after a newer is a replay.
    import(&s.alpha, &first);
    s.hub.ok(&["site", "unassign", "alpha", "mi5/gbonly"]);
    let second = s.hub.root.join("a2.bundle");
    s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "alpha",
        "--from",
        "2",
        second.to_str().expect("p"),
    ]);
    import(&s.alpha, &second);
    let third_src = s.hub.file("t.txt", b"CANARY-third item");
    s.hub.ingest("carol", "mi5/ct", "SECRET", &[&third_src]);
    let third = s.hub.root.join("a3.bundle");
    s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "alpha",
        third.to_str().expect("p"),
    ]);
    import(&s.alpha, &third);
    rejected(&s.alpha, &second, "replayed");
    // A bundle that skips operations the site has not seen is refused with what to ask for.
    let fresh = field("charlie", "GB/cyprus", "SECRET", "GBR");
    pair(&s.hub, &fresh);
    s.hub.ok(&["site", "assign", "charlie", "mi5/ct"]);
    export(&s.hub, "charlie", "c1.bundle");
    let src = s.hub.file("u.txt", b"CANARY-fourth item");
    s.hub.ingest("carol", "mi5/ct", "SECRET", &[&src]);
    let later = s.hub.root.join("c2.bundle");
    let log: Value = serde_json::from_str(&s.hub.ok(&["site", "status", "--json"])).expect("s");
    let logged = log["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["identity"]["name"] == "charlie")
        .expect("charlie")["logged"]
        .as_u64()
        .expect("logged");
    s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "charlie",
        "--from",
        &(logged + 1).to_string(),
        later.to_str().expect("p"),
    ]);
    let err = fresh.fails(&["bundle", "import", later.to_str().expect("p")]);
    assert!(err.contains("import the earlier bundle first"), "{err}");
}

#[test]
fn an_erase_order_or_a_local_erase_leaves_nothing_readable() {
    let s = setup();
    import(&s.alpha, &export(&s.hub, "alpha", "a1.bundle"));
    import(&s.bravo, &export(&s.hub, "bravo", "b1.bundle"));
    assert!(!held(&s.alpha).is_empty());

    // Ordered by the hub, carried out at the next contact, confirmed back.
    s.hub.ok(&["site", "erase", "alpha"]);
    let order = export(&s.hub, "alpha", "a2.bundle");
    let out = import(&s.alpha, &order);
    assert!(out.contains("ERASED"), "{out}");
    let err = s.alpha.fails(&["--as", "officer", "ls"]);
    assert!(err.contains("key file") && err.contains("missing"), "{err}");
    let keys: Vec<PathBuf> = files_under(&s.alpha.data.join("keys"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "key"))
        .collect();
    assert!(keys.is_empty(), "key files left: {keys:?}");
    assert_no_plaintext(&s.alpha.root);
    let confirmation = PathBuf::from(format!("{}.erased", order.display()));
    import(&s.hub, &confirmation);
    let status: Value =
        serde_json::from_str(&s.hub.ok(&["site", "status", "--json"])).expect("status");
    let alpha = status["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["identity"]["name"] == "alpha")
        .expect("alpha");
    assert_eq!(alpha["erase"], "confirmed");

    // A field officer under duress: one command.
    let out = s.bravo.ok(&["site", "erase", "bravo"]);
    assert!(out.contains("erased"), "{out}");
    assert!(
        s.bravo
            .fails(&["--as", "officer", "ls"])
            .contains("missing")
    );
    assert_no_plaintext(&s.bravo.root);
}

// ----- over the network ---------------------------------------------------------------------

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// `bletchley sync --listen` at the hub, its output lines on a channel.
pub(crate) struct HubProcess {
    pub child: Child,
    pub addr: String,
    pub lines: mpsc::Receiver<String>,
}

impl HubProcess {
    fn port(&self) -> u16 {
        self.addr
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }
}

impl Drop for HubProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn lines_of(child: &mut Child) -> mpsc::Receiver<String> {
    let out = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(|l| l.ok()) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub(crate) fn start_hub(hub: &Env, listen: &str) -> HubProcess {
    start_hub_in(hub, listen, None)
}

/// The hub, inside network namespace `netns` when one is given.
pub(crate) fn start_hub_in(hub: &Env, listen: &str, netns: Option<&str>) -> HubProcess {
    let mut child = hub
        .cmd_in(netns, &["sync", "--listen", listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn hub");
    let lines = lines_of(&mut child);
    let first = lines
        .recv_timeout(Duration::from_secs(30))
        .expect("the hub says where it listens");
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    HubProcess { child, addr, lines }
}

/// A TCP relay that adds delay and cuts each connection after a random number of bytes, as a
/// bad link does. Deterministic for a seed.
struct Relay {
    port: u16,
    upstream: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

pub(crate) fn next(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

fn relay(upstream: &str, seed: u64, max_bytes: usize, delay: Duration) -> Relay {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind relay");
    let port = listener.local_addr().expect("addr").port();
    listener.set_nonblocking(true).expect("nonblocking");
    let upstream = Arc::new(Mutex::new(upstream.to_owned()));
    let stop = Arc::new(AtomicBool::new(false));
    let (up, st) = (upstream.clone(), stop.clone());
    std::thread::spawn(move || {
        let mut seed = seed;
        while !st.load(Ordering::SeqCst) {
            let Ok((down, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            let _ = down.set_nonblocking(false);
            let target = up.lock().expect("lock").clone();
            let Ok(upstream) = TcpStream::connect(&target) else {
                continue;
            };
            // Cut somewhere in the first `max_bytes` (both directions counted).
            let budget = if max_bytes == 0 {
                usize::MAX
            } else {
                20_000 + (next(&mut seed) as usize % max_bytes)
            };
            let moved = Arc::new(AtomicUsize::new(0));
            for (mut from, mut to) in [
                (
                    down.try_clone().expect("clone"),
                    upstream.try_clone().expect("clone"),
                ),
                (upstream, down),
            ] {
                let moved = moved.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 8192];
                    loop {
                        let n = match from.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        std::thread::sleep(delay);
                        let total = moved.fetch_add(n, Ordering::SeqCst) + n;
                        let n = if total > budget {
                            n - (total - budget).min(n)
                        } else {
                            n
                        };
                        if to.write_all(&buf[..n]).is_err() || total > budget {
                            break;
                        }
                    }
                    let _ = from.shutdown(Shutdown::Both);
                    let _ = to.shutdown(Shutdown::Both);
                });
            }
        }
    });
    Relay {
        port,
        upstream,
        stop,
    }
}

fn sync_cmd(env: &Env, port: u16, rate: &str) -> Child {
    env.cmd(&[
        "sync",
        "--peer",
        &format!("https://127.0.0.1:{port}"),
        "--once",
        "--max-rate",
        rate,
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn sync")
}

pub(crate) fn add_big(s: &mut Sites, n: usize, bytes: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut seed = 99u64;
    for i in 0..n {
        let data: Vec<u8> = (0..bytes).map(|_| next(&mut seed) as u8).collect();
        let f = s.hub.file(&format!("big{i}.bin"), &data);
        ids.extend(
            s.hub
                .ingest("carol", "mi5/ct", "SECRET//REL TO GBR, USA", &[&f]),
        );
    }
    ids
}

pub(crate) fn peer_status(hub: &Env, name: &str) -> Value {
    let s: Value = serde_json::from_str(&hub.ok(&["site", "status", "--json"])).expect("status");
    s["peers"]
        .as_array()
        .expect("peers")
        .iter()
        .find(|p| p["identity"]["name"] == name)
        .cloned()
        .expect("peer")
}

#[test]
fn sync_converges_through_cut_links_and_killed_nodes() {
    let mut s = setup();
    let big = add_big(&mut s, 2, 1_500_000);
    let mut hub = start_hub(&s.hub, "127.0.0.1:0");
    let relays = [
        relay(&hub.addr, 7, 600_000, Duration::from_millis(1)),
        relay(&hub.addr, 11, 600_000, Duration::from_millis(1)),
    ];
    let mut seed = 2024u64;
    let started = Instant::now();
    let (mut cut_total, mut kills_total) = (0, 0);
    for (k, (field, relay)) in [(&s.alpha, &relays[0]), (&s.bravo, &relays[1])]
        .into_iter()
        .enumerate()
    {
        let mut done = false;
        for attempt in 0..40 {
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "no convergence"
            );
            if k == 0 && attempt == 2 {
                // The hub dies too, and comes back on another port.
                let _ = hub.child.kill();
                let _ = hub.child.wait();
                hub = start_hub(&s.hub, "127.0.0.1:0");
                for r in &relays {
                    *r.upstream.lock().expect("lock") = hub.addr.clone();
                }
            }
            let mut child = sync_cmd(field, relay.port, "16mbit");
            // Kill most early attempts at a random moment; let later ones finish.
            let kill_at =
                (attempt < 5).then(|| Duration::from_millis(300 + next(&mut seed) % 1500));
            let t0 = Instant::now();
            loop {
                if let Some(st) = child.try_wait().expect("wait") {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    let mut out = String::new();
                    if let Some(mut o) = child.stdout.take() {
                        let _ = o.read_to_string(&mut out);
                    }
                    assert!(st.success(), "sync failed: {err}");
                    let cuts = out.lines().filter(|l| l.starts_with("link")).count();
                    eprintln!("site {k}: finished on attempt {attempt} after {cuts} cut links");
                    cut_total += cuts;
                    done = true;
                    break;
                }
                if t0.elapsed() > Duration::from_secs(150) {
                    // A run that never ends is a bug: show what it was doing.
                    child.kill().expect("SIGKILL");
                    let _ = child.wait();
                    let mut out = String::new();
                    if let Some(mut o) = child.stdout.take() {
                        let _ = o.read_to_string(&mut out);
                    }
                    panic!("site {k}, attempt {attempt}: sync did not end in 150 s:\n{out}");
                }
                if kill_at.is_some_and(|d| t0.elapsed() >= d) {
                    child.kill().expect("SIGKILL");
                    let _ = child.wait();
                    let mut out = String::new();
                    if let Some(mut o) = child.stdout.take() {
                        let _ = o.read_to_string(&mut out);
                    }
                    cut_total += out.lines().filter(|l| l.starts_with("link")).count();
                    kills_total += 1;
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            if done {
                break;
            }
        }
        assert!(done, "site {k} never finished");
    }
    drop(hub);
    // The schedule really did cut links and kill nodes.
    eprintln!("{cut_total} cut links, {kills_total} sync processes killed, the hub killed once");
    assert!(
        cut_total >= 2 && kills_total >= 2,
        "{cut_total} cuts, {kills_total} kills"
    );
    assert_converged(&s, &big);
}

/// Each field site holds exactly what it may (plus `big`, which both may hold): no duplicates,
/// no losses, no plaintext at rest, no staging left, everything logged acknowledged, and the big
/// items whole.
pub(crate) fn assert_converged(s: &Sites, big: &[String]) {
    let mut want_alpha = expected(s, |p| p.alpha);
    let mut want_bravo = expected(s, |p| p.bravo);
    want_alpha.extend(big.iter().cloned());
    want_bravo.extend(big.iter().cloned());
    for (env, want, name) in [
        (&s.alpha, &want_alpha, "alpha"),
        (&s.bravo, &want_bravo, "bravo"),
    ] {
        let listing: Value =
            serde_json::from_str(&env.ok(&["--as", "officer", "ls", "--json"])).expect("ls");
        let ids: Vec<&str> = listing
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["id"].as_str().expect("id"))
            .collect();
        assert_eq!(
            ids.len(),
            want.len(),
            "{name}: duplicates or losses: {ids:?}"
        );
        assert_eq!(&held(env), want, "{name} converged to the wrong set");
        assert_no_plaintext(&env.data);
        let staged = files_under(&env.data.join("sync"));
        assert!(staged.is_empty(), "{name}: staging left behind: {staged:?}");
        let st = peer_status(&s.hub, name);
        assert_eq!(st["acknowledged"], st["logged"], "{name}: {st}");
        // The big items arrived whole.
        let got = env.run(&["--as", "officer", "get", &big[1]]).stdout;
        assert_eq!(got.len(), 1_500_000);
    }
}

#[test]
fn a_flash_item_overtakes_a_routine_transfer() {
    let mut s = setup();
    let routine = add_big(&mut s, 1, 2_000_000).remove(0);
    let hub = start_hub(&s.hub, "127.0.0.1:0");
    let port = hub.port();
    // 2 Mbit/s: the routine item alone takes about eight seconds.
    let mut child = sync_cmd(&s.bravo, port, "2mbit");
    let lines = lines_of(&mut child);
    std::thread::sleep(Duration::from_secs(3));
    let f = s.hub.file("flash.txt", b"CANARY-flash contact report");
    let sent = Instant::now();
    let flash = s
        .hub
        .ok(&[
            "--as",
            "carol",
            "ingest",
            f.to_str().expect("p"),
            "--collection",
            "mi5/ct",
            "--marking",
            "SECRET//REL TO GBR, USA",
            "--priority",
            "FLASH",
        ])
        .trim()
        .to_owned();
    let mut order = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        match lines.recv_timeout(Duration::from_millis(200)) {
            Ok(l) if l.starts_with("received ") => {
                if l.contains(&flash) {
                    eprintln!(
                        "FLASH arrived {:.1} s after it was ingested",
                        sent.elapsed().as_secs_f64()
                    );
                }
                order.push(l);
            }
            Ok(l) if l.starts_with("synced") => break,
            Ok(_) => {}
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    assert!(child.wait().expect("wait").success());
    let pos = |id: &str| order.iter().position(|l| l.contains(id));
    let (f_at, r_at) = (pos(&flash), pos(&routine));
    assert!(
        f_at.is_some() && r_at.is_some() && f_at < r_at,
        "the FLASH item did not overtake: {order:?}"
    );
    assert!(held(&s.bravo).contains(&flash));
    drop(hub);
}

#[test]
fn unknown_revoked_and_garbage_speaking_peers_are_refused_and_the_hub_carries_on() {
    let s = setup();
    let hub = start_hub(&s.hub, "127.0.0.1:0");
    let port = hub.port();

    // A field site the hub never enrolled (it trusts the hub, the hub does not know it).
    let stranger = field("stranger", "GB/cyprus", "SECRET", "GBR");
    enrol(&stranger, &s.hub, Some("ABCDE-FGHJK-MNPQR"));
    let out = sync_cmd(&stranger, port, "100mbit")
        .wait_with_output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("refused"), "{err}");
    let st: Value =
        serde_json::from_str(&stranger.ok(&["site", "status", "--json"])).expect("status");
    assert_eq!(st["peers"][0]["applied"], 0, "{st}");

    // Garbage and an oversized head on the TLS port.
    let mut raw = TcpStream::connect(&hub.addr).expect("connect");
    raw.write_all(b"GET / HTTP/1.1\r\n\r\nnot TLS at all")
        .expect("write");
    drop(raw);
    let mut raw = TcpStream::connect(&hub.addr).expect("connect");
    let _ = raw.write_all(&vec![0x16; 1 << 20]);
    drop(raw);

    // The hub carries on: an enrolled site syncs.
    let out = sync_cmd(&s.alpha, port, "100mbit")
        .wait_with_output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(held(&s.alpha), expected(&s, |p| p.alpha));

    // Revoked: refused from the next connection on.
    s.hub.ok(&["site", "revoke", "alpha"]);
    let out = sync_cmd(&s.alpha, port, "100mbit")
        .wait_with_output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));

    // Every refusal was seen (and audited) by the hub.
    let mut refused = 0;
    while let Ok(l) = hub.lines.recv_timeout(Duration::from_millis(500)) {
        if l.starts_with("refused ") {
            refused += 1;
        }
    }
    assert!(refused >= 4, "the hub refused {refused} connections");
    drop(hub);
    let audit = s.hub.ok(&["audit", "show"]);
    assert!(audit.contains("sync.refuse"), "no refusal in the audit log");
}

#[test]
fn a_field_sites_own_collection_goes_up_to_the_hub_and_not_back_down() {
    let s = setup();
    import(&s.alpha, &export(&s.hub, "alpha", "a1.bundle"));
    // Collected at the field, in a collection of its own.
    s.alpha.ok(&["collection", "add", "mi5/cyprus-collect"]);
    let f = s.alpha.file("report.txt", b"CANARY-collected in the field");
    let id = s
        .alpha
        .ingest("officer", "mi5/cyprus-collect", "SECRET", &[&f])
        .remove(0);
    s.alpha.ok(&["site", "assign", "hub", "mi5/cyprus-collect"]);
    let up = export(&s.alpha, "hub", "up1.bundle");
    // The hub takes a field site's items only into collections it accepts from that site.
    let err = s.hub.fails(&["bundle", "import", up.to_str().expect("p")]);
    assert!(
        err.contains("alpha may not send items into mi5/cyprus-collect"),
        "{err}"
    );
    assert!(!s.hub.run(&["--as", "carol", "get", &id]).status.success());
    s.hub.ok(&["site", "accept", "alpha", "mi5/cyprus-collect"]);
    let out = import(&s.hub, &up);
    assert!(out.contains("1 items added"), "{out}");
    let got = s.hub.ok(&["--as", "carol", "get", &id]);
    assert_eq!(got, "CANARY-collected in the field");
    // The bundle also carried the field's acknowledgement of the hub's log.
    let st = peer_status(&s.hub, "alpha");
    assert_eq!(st["acknowledged"], st["logged"], "{st}");
    // Importing it again changes nothing.
    assert!(import(&s.hub, &up).contains("already imported"));
    // The hub shares that collection down to the field: the field's own item is not sent back.
    s.hub.ok(&["site", "assign", "alpha", "mi5/cyprus-collect"]);
    let down = s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "alpha",
        s.hub.root.join("a2.bundle").to_str().expect("p"),
    ]);
    assert!(down.contains("nothing to send"), "{down}");
    // A field site cannot delete what it sent up.
    s.alpha.ok(&["--as", "officer", "shred", &id]);
    let up2 = export(&s.alpha, "hub", "up2.bundle");
    import(&s.hub, &up2);
    assert_eq!(
        s.hub.ok(&["--as", "carol", "get", &id]),
        "CANARY-collected in the field"
    );
}

#[test]
fn a_transfer_stops_when_the_site_may_no_longer_hold_the_item() {
    let mut s = setup();
    let big = add_big(&mut s, 1, 2_000_000).remove(0);
    let hub = start_hub(&s.hub, "127.0.0.1:0");
    let port = hub.port();
    // About eight seconds of transfer at 2 Mbit/s; the assignment is withdrawn after two.
    let child = sync_cmd(&s.bravo, port, "2mbit");
    std::thread::sleep(Duration::from_secs(2));
    s.hub.ok(&["site", "unassign", "bravo", "mi5/ct"]);
    let out = child.wait_with_output().expect("sync");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!stdout.contains(&format!("received {big}")), "{stdout}");
    let held = held(&s.bravo);
    assert!(!held.contains(&big));
    assert_eq!(held, expected(&s, |p| p.bravo && p.collection != "mi5/ct"));
    let staged = files_under(&s.bravo.data.join("sync"));
    assert!(staged.is_empty(), "staging left behind: {staged:?}");
    drop(hub);
}

#[test]
fn a_field_sites_own_items_go_up_over_sync_through_cut_links_and_are_not_sent_twice() {
    let s = setup();
    s.alpha.ok(&["collection", "add", "mi5/cyprus-collect"]);
    let mut seed = 5u64;
    let mut ids = Vec::new();
    let mut contents = Vec::new();
    for i in 0..2 {
        let data: Vec<u8> = (0..1_200_000).map(|_| next(&mut seed) as u8).collect();
        let f = s.alpha.file(&format!("collected{i}.bin"), &data);
        ids.extend(
            s.alpha
                .ingest("officer", "mi5/cyprus-collect", "SECRET", &[&f]),
        );
        contents.push(data);
    }
    let f = s.alpha.file("report.txt", b"CANARY-collected in the field");
    ids.extend(
        s.alpha
            .ingest("officer", "mi5/cyprus-collect", "SECRET", &[&f]),
    );
    contents.push(b"CANARY-collected in the field".to_vec());
    s.alpha.ok(&["site", "assign", "hub", "mi5/cyprus-collect"]);

    let hub = start_hub(&s.hub, "127.0.0.1:0");
    // Not accepted at the hub yet: the upload is refused, the downloads go on, and the run says
    // so and fails.
    let out = sync_cmd(&s.alpha, hub.port(), "100mbit")
        .wait_with_output()
        .expect("sync");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("alpha may not send items into mi5/cyprus-collect"),
        "{err}"
    );
    assert_eq!(
        held(&s.alpha).len(),
        expected(&s, |p| p.alpha).len() + ids.len()
    );
    s.hub.ok(&["site", "accept", "alpha", "mi5/cyprus-collect"]);
    let cutting = relay(&hub.addr, 3, 900_000, Duration::from_millis(1));
    let out = sync_cmd(&s.alpha, cutting.port, "16mbit")
        .wait_with_output()
        .expect("sync");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cuts = stdout.lines().filter(|l| l.starts_with("link")).count();
    assert!(cuts >= 1, "the relay never cut the link: {stdout}");
    // Every item arrived whole at the hub, readable there under the hub's own gate.
    for (id, want) in ids.iter().zip(&contents) {
        let got = s.hub.run(&["--as", "carol", "get", id]).stdout;
        assert!(got == *want, "item {id} differs at the hub");
    }
    // What the upload batches held went over the link once, plus at most the chunks in flight
    // when each cut came (a window of at most 16 chunks of 64 KiB).
    let batches: u64 = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("uploading operations "))
        .filter_map(|l| {
            l.split_once(" (")?
                .1
                .split_once(" bytes)")?
                .0
                .parse::<u64>()
                .ok()
        })
        .sum();
    let sent: u64 = stdout
        .lines()
        .find_map(|l| l.strip_prefix("synced: "))
        .and_then(|l| l.split(" items sent up in ").nth(1))
        .and_then(|l| l.split(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("bytes sent up");
    eprintln!("{cuts} cuts; upload batches {batches} bytes, {sent} bytes put on the link");
    assert!(batches > 2_400_000, "{stdout}");
    assert!(sent >= batches, "{sent} < {batches}");
    assert!(
        sent <= batches + cuts as u64 * 16 * 65_536,
        "re-sent more than the chunks in flight at the cuts: {sent} for {batches}"
    );
    // Nothing left in flight on either side; the hub confirmed the whole log.
    let left = files_under(&s.alpha.data.join("sync"));
    assert!(left.is_empty(), "outbox left behind: {left:?}");
    let left = files_under(&s.hub.data.join("sync"));
    assert!(left.is_empty(), "upload staging left behind: {left:?}");
    let st = peer_status(&s.alpha, "hub");
    assert_eq!(st["acknowledged"], st["logged"], "{st}");
    assert_no_plaintext(&s.hub.data.join("sync"));
    // Run again: nothing more goes up, and the hub's own items came down meanwhile.
    let again = sync_cmd(&s.alpha, hub.port(), "100mbit")
        .wait_with_output()
        .expect("sync");
    let again = String::from_utf8_lossy(&again.stdout);
    assert!(again.contains("0 items sent up in 0 bytes"), "{again}");
    let mut want = expected(&s, |p| p.alpha);
    want.extend(ids.iter().cloned());
    assert_eq!(held(&s.alpha), want);
    // Shared back down, the field's own items are not sent to it again.
    s.hub.ok(&["site", "assign", "alpha", "mi5/cyprus-collect"]);
    let back = sync_cmd(&s.alpha, hub.port(), "100mbit")
        .wait_with_output()
        .expect("sync");
    let back = String::from_utf8_lossy(&back.stdout);
    assert!(back.contains("synced: 0 items received"), "{back}");
    drop(hub);
}

fn notes(env: &Env, who: &str, id: &str) -> Vec<(String, String, String)> {
    let v: Value =
        serde_json::from_str(&env.ok(&["--as", who, "annotations", id, "--json"])).expect("json");
    v.as_array()
        .expect("notes")
        .iter()
        .map(|n| {
            (
                n["id"].as_str().expect("id").to_owned(),
                n["author"].as_str().expect("author").to_owned(),
                n["text"].as_str().expect("text").to_owned(),
            )
        })
        .collect()
}

fn sync_ok(env: &Env, port: u16) -> String {
    let out = sync_cmd(env, port, "100mbit")
        .wait_with_output()
        .expect("sync");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn notes_written_at_the_same_time_at_the_hub_and_two_field_sites_all_reach_every_site() {
    let s = setup();
    let hub = start_hub(&s.hub, "127.0.0.1:0");
    let port = hub.port();
    sync_ok(&s.alpha, port);
    sync_ok(&s.bravo, port);
    // Held by the hub and both sites.
    let shared = s.ids[1].clone();
    assert!(held(&s.alpha).contains(&shared) && held(&s.bravo).contains(&shared));
    // Three notes on the same item, written while the sites are apart.
    let written = [
        s.hub
            .ok(&["--as", "carol", "annotate", &shared, "hub: source reliable"]),
        s.alpha.ok(&[
            "--as",
            "officer",
            "annotate",
            &shared,
            "alpha: seen at the port on Tuesday",
        ]),
        s.bravo.ok(&[
            "--as",
            "officer",
            "annotate",
            &shared,
            "bravo: phone matches",
        ]),
    ];
    let written: BTreeSet<String> = written.iter().map(|w| w.trim().to_owned()).collect();
    assert_eq!(written.len(), 3);
    // Each site meets the hub once or twice, in no particular order.
    sync_ok(&s.alpha, port);
    sync_ok(&s.bravo, port);
    sync_ok(&s.alpha, port);
    // bravo's own policy keeps its bytes in the US (the default is the home country): its note
    // stays there, and the hub's and alpha's reach it.
    assert_eq!(notes(&s.hub, "carol", &shared).len(), 2);
    assert_eq!(notes(&s.bravo, "officer", &shared).len(), 3);
    // Once bravo's policy lets them rest in GB too, the held-back note goes up.
    s.bravo
        .ok(&["residency", "set", "--default", "--allow", "US,GB"]);
    sync_ok(&s.bravo, port);
    sync_ok(&s.alpha, port);
    let at_hub = notes(&s.hub, "carol", &shared);
    for (env, who, name) in [
        (&s.hub, "carol", "hub"),
        (&s.alpha, "officer", "alpha"),
        (&s.bravo, "officer", "bravo"),
    ] {
        let got = notes(env, who, &shared);
        let ids: BTreeSet<String> = got.iter().map(|n| n.0.clone()).collect();
        assert_eq!(ids, written, "{name} holds another set of notes: {got:?}");
        assert_eq!(got.len(), 3, "{name}: a note twice: {got:?}");
        // The same merged list, in the same order, everywhere.
        assert_eq!(got, at_hub, "{name} lists the notes differently");
    }
    let authors: BTreeSet<&str> = at_hub.iter().map(|n| n.1.as_str()).collect();
    assert_eq!(
        authors,
        BTreeSet::from(["carol@hub", "officer@alpha", "officer@bravo"])
    );
    // Nothing more moves when everything is merged.
    for env in [&s.alpha, &s.bravo] {
        let again = sync_ok(env, port);
        assert!(
            again.contains("synced: 0 items received, 0 removed")
                && again.contains(", 0 items sent up"),
            "{again}"
        );
    }
    // A note on an item alpha may not hold never reaches it: bravo's note on a TOP SECRET item.
    let ts = s.ids[2].clone();
    let secret_note = s
        .bravo
        .ok(&["--as", "officer", "annotate", &ts, "bravo: TS detail"])
        .trim()
        .to_owned();
    sync_ok(&s.bravo, port);
    sync_ok(&s.alpha, port);
    assert!(
        notes(&s.hub, "carol", &ts)
            .iter()
            .any(|n| n.0 == secret_note)
    );
    assert!(!held(&s.alpha).contains(&secret_note));
    // A reader who may not see the item sees neither it nor its notes.
    let denied = s.hub.run(&["--as", "alice", "annotations", &s.ids[4]]);
    assert!(!denied.status.success());
    drop(hub);
}

#[test]
fn a_note_on_an_item_the_hub_has_shredded_is_not_brought_back() {
    let s = setup();
    import(&s.alpha, &export(&s.hub, "alpha", "a1.bundle"));
    let uk_only = s.ids[0].clone();
    let note = s
        .alpha
        .ok(&["--as", "officer", "annotate", &uk_only, "alpha: follow up"])
        .trim()
        .to_owned();
    // The hub destroys the item meanwhile.
    s.hub.ok(&["--as", "boss", "shred", &uk_only]);
    let out = import(&s.hub, &export(&s.alpha, "hub", "up.bundle"));
    assert!(out.contains("1 not stored"), "{out}");
    assert!(!s.hub.run(&["--as", "carol", "get", &note]).status.success());
    let audit = s.hub.ok(&["audit", "show"]);
    assert!(audit.contains("not held here"), "no refusal audited");
    // And the site loses the item and its note at its next import.
    import(&s.alpha, &export(&s.hub, "alpha", "a2.bundle"));
    let left = held(&s.alpha);
    assert!(
        !left.contains(&uk_only) && !left.contains(&note),
        "{left:?}"
    );
}

fn enrolment_state(env: &Env, name: &str) -> String {
    peer_status(env, name)["enrolment"]
        .as_str()
        .expect("enrolment")
        .to_owned()
}

#[test]
fn nothing_moves_until_both_sides_have_proved_the_one_time_code() {
    let s = setup();
    // charlie's identity file reaches the hub; its operator is told a code by telephone.
    let charlie = field("charlie", "GB/cyprus", "SECRET", "GBR");
    charlie.ok(&["agency", "add", "mi5"]);
    charlie.ok(&[
        "principal",
        "add",
        "officer",
        "--agency",
        "mi5",
        "--clearance",
        "SECRET",
        "--nationality",
        "GBR",
    ]);
    let code = enrol(&s.hub, &charlie, None).expect("code");
    assert_eq!(code.len(), 17, "{code}");
    s.hub.ok(&["site", "assign", "charlie", "mi5/ct"]);
    assert_eq!(enrolment_state(&s.hub, "charlie"), "awaiting first contact");
    // Without a code the hub cannot be enrolled at all.
    let id = identity(&s.hub);
    let err = charlie.fails(&["site", "enrol", "--identity", id.to_str().expect("p")]);
    assert!(err.contains("--code"), "{err}");
    let err = charlie.fails(&[
        "site",
        "enrol",
        "--identity",
        id.to_str().expect("p"),
        "--code",
        "not a code",
    ]);
    assert!(err.contains("is not an enrolment code"), "{err}");
    // Nothing is sent to a site that has not proved the code.
    let err = s.hub.fails(&[
        "bundle",
        "export",
        "--site",
        "charlie",
        s.hub.root.join("c.bundle").to_str().expect("p"),
    ]);
    assert!(
        err.contains("has not proved its one-time enrolment code"),
        "{err}"
    );

    // A misheard code: the first contact is refused, counted and audited, and changes nothing.
    let wrong = match code.strip_prefix('A') {
        Some(rest) => format!("B{rest}"),
        None => format!("A{}", &code[1..]),
    };
    enrol(&charlie, &s.hub, Some(&wrong));
    let first = export(&charlie, "hub", "first.bundle");
    let err = s
        .hub
        .fails(&["bundle", "import", first.to_str().expect("p")]);
    assert!(
        err.contains("wrong one-time code (attempt 1 of 5)"),
        "{err}"
    );
    assert_eq!(enrolment_state(&s.hub, "charlie"), "awaiting first contact");
    // Over the network too: refused before anything is sent.
    let hub = start_hub(&s.hub, "127.0.0.1:0");
    let out = sync_cmd(&charlie, hub.port(), "100mbit")
        .wait_with_output()
        .expect("sync");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("wrong one-time code (attempt 2 of 5)"),
        "{err}"
    );
    assert!(held(&charlie).is_empty());
    // Three more wrong proofs void the code.
    for _ in 0..3 {
        let _ = s.hub.run(&["bundle", "import", first.to_str().expect("p")]);
    }
    assert_eq!(enrolment_state(&s.hub, "charlie"), "void");
    // The right code no longer helps; enrolling again gives a new one, which does.
    enrol(&charlie, &s.hub, Some(&code));
    let out = sync_cmd(&charlie, hub.port(), "100mbit")
        .wait_with_output()
        .expect("sync");
    assert!(String::from_utf8_lossy(&out.stderr).contains("void"));
    let fresh = enrol(&s.hub, &charlie, None).expect("a new code");
    assert_ne!(fresh, code);
    enrol(&charlie, &s.hub, Some(&fresh));
    let out = sync_cmd(&charlie, hub.port(), "100mbit")
        .wait_with_output()
        .expect("sync");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(enrolment_state(&s.hub, "charlie"), "confirmed");
    assert_eq!(enrolment_state(&charlie, "hub"), "confirmed");
    assert!(!held(&charlie).is_empty());
    // One use: the hub makes no further code for a site that has proved one.
    let id = identity(&charlie);
    let err = s
        .hub
        .fails(&["site", "enrol", "--identity", id.to_str().expect("p")]);
    assert!(err.contains("proved its code already"), "{err}");
    drop(hub);

    // The field checks the hub as well: given another code than the hub holds, it refuses what
    // the hub sends, and applies nothing.
    enrol(&charlie, &s.hub, Some("ABCDE-FGHJK-MNPQR"));
    let src = s.hub.file("later.txt", b"CANARY-later");
    let later = s.hub.ingest("carol", "mi5/ct", "SECRET", &[&src]).remove(0);
    let b = export(&s.hub, "charlie", "c2.bundle");
    let err = charlie.fails(&["bundle", "import", b.to_str().expect("p")]);
    assert!(err.contains("did not prove the one-time code"), "{err}");
    assert!(!held(&charlie).contains(&later));
    let audit = s.hub.ok(&["audit", "show"]);
    assert!(
        audit.contains("site.enrol.confirm"),
        "no enrolment in the audit log"
    );
}

/// Issue 22, 9: an unmarked item is for the hub's home nation only, and says so when it leaves:
/// at a field site whose own home nation is another, that nation's staff may not read it.
#[test]
fn an_unmarked_item_stays_for_the_hubs_nation_at_a_field_site_of_another_home() {
    let hub = Env::new();
    hub.basic();
    let f = hub.file("u.txt", b"CANARY-unmarked");
    let id = hub.ingest("alice", "mi5/ct", "SECRET", &[&f]).remove(0);
    hub.ok(&[
        "site",
        "init",
        "--name",
        "hub",
        "--jurisdiction",
        "GB/london",
        "--ceiling",
        "TOP SECRET",
        "--nationalities",
        "GBR",
        "--hub",
    ]);
    let field = Env::with_init(&["--jurisdiction", "GB/cyprus", "--home", "USA"]);
    field.ok(&[
        "site",
        "init",
        "--name",
        "alpha",
        "--jurisdiction",
        "GB/cyprus",
        "--ceiling",
        "SECRET",
        "--nationalities",
        "GBR",
        "--field",
    ]);
    pair(&hub, &field);
    field.ok(&["agency", "add", "mi5"]);
    field.add_principal("officer", "mi5", "TOP SECRET", &["--roles", "field"]);
    field.ok(&[
        "principal",
        "add",
        "liaison",
        "--agency",
        "mi5",
        "--clearance",
        "TOP SECRET",
        "--nationality",
        "USA",
    ]);
    hub.ok(&["site", "assign", "alpha", "mi5/ct"]);
    import(&field, &export(&hub, "alpha", "a1.bundle"));
    assert_eq!(
        field.ok(&["--as", "officer", "get", &id]),
        "CANARY-unmarked"
    );
    let err = field.fails(&["--as", "liaison", "get", &id]);
    assert!(err.contains("not found or not permitted"), "{err}");
}

/// Every replication record the hub holds for `peer` (its state and each operation of its
/// log), opened with the hub's own keys: what a host holding every key still left would read.
fn replication_records(hub: &Env, peer: &str) -> Vec<String> {
    let p = open_platform(hub);
    let state: Value = p
        .site_record(&format!("peer/{peer}"))
        .expect("peer record")
        .expect("peer exists");
    let mut out = vec![state.to_string()];
    for seq in 1.. {
        match p
            .site_record::<Value>(&format!("log/{peer}/{seq}"))
            .expect("log record")
        {
            Some(op) => out.push(op.to_string()),
            None => break,
        }
    }
    out
}

/// Issue 22, item 7: the hub's log for a field site holds references, not what an item says,
/// so after a shred nothing of the item is readable there and the next bundle carries nothing
/// of it either.
#[test]
fn a_shredded_item_leaves_nothing_of_itself_in_the_replication_log() {
    let s = setup();
    let uk_only = s.ids[0].clone();
    let listed: Value =
        serde_json::from_str(&s.hub.ok(&["--as", "carol", "ls", "--json"])).expect("ls json");
    let title = listed
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == uk_only.as_str())
        .and_then(|i| i["title"].as_str())
        .expect("the item's title")
        .to_owned();
    assert!(!title.is_empty());
    // The log for alpha adds the item; alpha never imports it, so the next bundle sends the
    // addition again.
    export(&s.hub, "alpha", "a1.bundle");
    let before = replication_records(&s.hub, "alpha");
    assert!(
        before.iter().any(|r| r.contains(&uk_only)),
        "the log names the item"
    );
    s.hub.ok(&["--as", "boss", "shred", &uk_only]);
    let a2 = export(&s.hub, "alpha", "a2.bundle");
    for record in replication_records(&s.hub, "alpha") {
        assert!(
            !record.contains(&title) && !record.contains("\"meta\""),
            "a replication record keeps what the shredded item said: {record}"
        );
    }
    // The second bundle's addition is a no-op: alpha holds nothing of the item.
    import(&s.alpha, &a2);
    assert!(!held(&s.alpha).contains(&uk_only));
}

/// Issue 22, item 6: a field site is an outsider at the hub. Its signed bundle cannot name a
/// note's writer as anyone but someone at that site, nor bring an agency or collection the hub
/// does not have; the whole bundle is refused and nothing of it is stored.
#[test]
fn a_compromised_field_site_cannot_forge_a_writer_or_plant_an_agency_at_the_hub() {
    let s = setup();
    import(&s.alpha, &export(&s.hub, "alpha", "a1.bundle"));
    let uk_only = s.ids[0].clone();
    // The site's own software, altered: a note signed as the hub's own principal.
    let forged = {
        let mut p = open_platform(&s.alpha);
        p.annotate(
            "officer",
            &uk_only,
            "boss",
            "forged: release the source",
            None,
        )
        .expect("annotate at the site")
    };
    let up = export(&s.alpha, "hub", "up1.bundle");
    let err = s.hub.fails(&["bundle", "import", up.to_str().expect("p")]);
    assert!(err.contains("names its writer as WHO@alpha"), "{err}");
    assert!(
        !s.hub
            .run(&["--as", "carol", "get", &forged])
            .status
            .success()
    );
    assert!(
        !s.hub
            .ok(&["--as", "carol", "annotations", &uk_only])
            .contains("forged"),
        "the forged note is at the hub"
    );

    // A new agency, planted from the field: the hub neither takes it nor lets its operator
    // accept into it by accident.
    let s = setup();
    import(&s.alpha, &export(&s.hub, "alpha", "a1.bundle"));
    s.alpha.ok(&["agency", "add", "gru"]);
    s.alpha.ok(&["collection", "add", "gru/plant"]);
    s.alpha.add_principal("mole", "gru", "SECRET", &[]);
    let f = s.alpha.file("plant.txt", b"CANARY-planted agency");
    let id = s
        .alpha
        .ingest("mole", "gru/plant", "SECRET", &[&f])
        .remove(0);
    s.alpha.ok(&["site", "assign", "hub", "gru/plant"]);
    let up = export(&s.alpha, "hub", "up2.bundle");
    let err = s.hub.fails(&["bundle", "import", up.to_str().expect("p")]);
    assert!(
        err.contains("alpha may not send items into gru/plant"),
        "{err}"
    );
    let err = s.hub.fails(&["site", "accept", "alpha", "gru/plant"]);
    assert!(err.contains("gru"), "{err}");
    assert!(
        s.hub
            .fails(&["bundle", "import", up.to_str().expect("p")])
            .contains("gru/plant")
    );
    assert!(!s.hub.ok(&["agency", "ls"]).contains("gru"));
    assert!(!s.hub.run(&["--as", "carol", "get", &id]).status.success());
}

fn marking_at(env: &Env, id: &str) -> String {
    let v: Value = serde_json::from_str(&env.ok(&["--as", "officer", "ls", "--json"])).expect("ls");
    v.as_array()
        .expect("items")
        .iter()
        .find(|i| i["id"] == id)
        .and_then(|i| i["marking"].as_str())
        .unwrap_or_else(|| panic!("{id} is not held"))
        .to_owned()
}

#[test]
fn a_remarked_item_is_remarked_where_it_may_still_be_held_and_removed_where_not() {
    let s = setup();
    // alpha meets the hub by bundles, bravo over the network.
    import(&s.alpha, &export(&s.hub, "alpha", "r1.bundle"));
    let hub = start_hub(&s.hub, "127.0.0.1:0");
    let port = hub.port();
    sync_ok(&s.bravo, port);
    let shared = s.ids[1].clone();
    assert!(held(&s.alpha).contains(&shared) && held(&s.bravo).contains(&shared));

    // Narrowed to UK eyes (an upgrade, carol's to make): alpha's copy is re-marked, bravo
    // (with US staff) may no longer hold it and loses it.
    s.hub.ok(&[
        "--as",
        "carol",
        "reclassify",
        &shared,
        "--marking",
        "SECRET//UK EYES ONLY",
        "--authority",
        "source protection review",
    ]);
    let out = import(&s.alpha, &export(&s.hub, "alpha", "r2.bundle"));
    assert!(out.contains("0 removed, 1 re-marked"), "{out}");
    assert_eq!(marking_at(&s.alpha, &shared), "SECRET//UK EYES ONLY");
    let out = sync_ok(&s.bravo, port);
    assert!(out.contains("1 removed"), "{out}");
    assert!(!held(&s.bravo).contains(&shared));
    assert!(s.alpha.ok(&["audit", "show"]).contains("sync.remark"));

    // Widened again, with an originator's approval: bravo receives it again, alpha's copy
    // follows.
    s.hub.ok(&[
        "principal",
        "add",
        "orig",
        "--agency",
        "mi5",
        "--clearance",
        "TOP SECRET",
        "--nationality",
        "GBR",
        "--roles",
        "originator",
    ]);
    let req: Value = serde_json::from_str(&s.hub.ok(&[
        "--as",
        "carol",
        "reclassify",
        &shared,
        "--marking",
        "SECRET//REL TO GBR, USA",
        "--authority",
        "liaison agreement 12",
        "--json",
    ]))
    .expect("request");
    let request = req["id"].as_str().expect("request id").to_owned();
    s.hub
        .ok(&["--as", "orig", "reclassify", "approve", &request]);
    let out = import(&s.alpha, &export(&s.hub, "alpha", "r3.bundle"));
    assert!(out.contains("1 re-marked"), "{out}");
    assert_eq!(marking_at(&s.alpha, &shared), "SECRET//REL TO GBR, USA");
    let out = sync_ok(&s.bravo, port);
    assert!(out.contains("1 items received"), "{out}");
    assert_eq!(marking_at(&s.bravo, &shared), "SECRET//REL TO GBR, USA");
    // Raised above alpha's ceiling: bravo's copy is re-marked over the network, alpha's goes.
    s.hub.ok(&[
        "--as",
        "carol",
        "reclassify",
        &shared,
        "--marking",
        "TOP SECRET//REL TO GBR, USA",
        "--authority",
        "aggregation review",
    ]);
    let out = sync_ok(&s.bravo, port);
    assert!(out.contains("0 removed, 1 re-marked"), "{out}");
    assert_eq!(marking_at(&s.bravo, &shared), "TOP SECRET//REL TO GBR, USA");
    let out = import(&s.alpha, &export(&s.hub, "alpha", "r3b.bundle"));
    assert!(out.contains("1 removed"), "{out}");
    assert!(!held(&s.alpha).contains(&shared));
    // Told once: the next bundle for alpha carries nothing more.
    import(&s.hub, &export(&s.alpha, "hub", "r3-ack.bundle"));
    let nothing = s.hub.ok(&[
        "bundle",
        "export",
        "--site",
        "alpha",
        s.hub.root.join("r4.bundle").to_str().expect("p"),
    ]);
    assert!(nothing.contains("nothing to send"), "{nothing}");
}

#[test]
fn field_sites_take_the_hubs_changes_of_standing_at_their_next_contact() {
    let s = setup();
    // The same person is registered at the hub and (as each site set up) at both sites.
    s.hub.ok(&[
        "principal",
        "add",
        "officer",
        "--agency",
        "mi5",
        "--clearance",
        "SECRET",
        "--compartments",
        "STRAP1,STRAP2",
        "--nationality",
        "GBR",
        "--roles",
        "field,admin",
    ]);
    import(&s.alpha, &export(&s.hub, "alpha", "p1.bundle"));
    let hub = start_hub(&s.hub, "127.0.0.1:0");
    let port = hub.port();
    sync_ok(&s.bravo, port);
    assert!(!held(&s.alpha).is_empty() && !held(&s.bravo).is_empty());

    s.hub.ok(&[
        "principal",
        "disable",
        "officer",
        "--reason",
        "left the service",
    ]);
    let out = import(&s.alpha, &export(&s.hub, "alpha", "p2.bundle"));
    assert!(out.contains("1 principals' standing changed"), "{out}");
    let e = s.alpha.fails(&["--as", "officer", "ls"]);
    assert!(e.contains("disabled"), "{e}");
    let out = sync_ok(&s.bravo, port);
    assert!(out.contains("1 principals' standing changed"), "{out}");
    assert!(
        s.bravo
            .fails(&["--as", "officer", "ls"])
            .contains("disabled")
    );
    assert!(s.bravo.ok(&["audit", "show"]).contains("site:hub"));

    // Enabled again at the hub: enabled again at the sites.
    s.hub.ok(&["principal", "enable", "officer"]);
    import(&s.alpha, &export(&s.hub, "alpha", "p3.bundle"));
    assert!(!held(&s.alpha).is_empty());
    sync_ok(&s.bravo, port);
    assert!(!held(&s.bravo).is_empty());

    // What it holds changes at the hub: the sites take it as far as it narrows what it holds
    // there (a TOP SECRET STRAP1/STRAP2 field admin there): the lower clearance, a codeword
    // taken away; the role the hub gives is not given at the sites.
    s.hub.ok(&[
        "principal",
        "set",
        "officer",
        "--compartments",
        "STRAP1",
        "--roles",
        "field,admin,originator",
    ]);
    let out = import(&s.alpha, &export(&s.hub, "alpha", "p4.bundle"));
    assert!(out.contains("1 principals' standing changed"), "{out}");
    let out = sync_ok(&s.bravo, port);
    assert!(out.contains("1 principals' standing changed"), "{out}");
    for site in [&s.alpha, &s.bravo] {
        let o = officer_at(site);
        assert_eq!(o["clearance"], "SECRET", "{o}");
        assert_eq!(o["compartments"], serde_json::json!(["STRAP1"]), "{o}");
        assert_eq!(o["roles"], serde_json::json!(["admin", "field"]), "{o}");
    }
    // Every role it has at the site taken away at the hub: disabled there, and enabling it
    // at the hub does not bring it back (granting at a site is the site's own act).
    s.hub
        .ok(&["principal", "set", "officer", "--roles", "originator"]);
    import(&s.alpha, &export(&s.hub, "alpha", "p5.bundle"));
    assert!(
        s.alpha
            .fails(&["--as", "officer", "ls"])
            .contains("disabled")
    );
    s.hub
        .ok(&["principal", "disable", "officer", "--reason", "review"]);
    s.hub.ok(&["principal", "enable", "officer"]);
    import(&s.alpha, &export(&s.hub, "alpha", "p6.bundle"));
    assert!(
        s.alpha
            .fails(&["--as", "officer", "ls"])
            .contains("disabled")
    );
    // The site's own operator grants it a role again and enables it.
    s.alpha
        .ok(&["principal", "set", "officer", "--roles", "field"]);
    s.alpha.ok(&["principal", "enable", "officer"]);
    s.alpha.ok(&["--as", "officer", "ls"]);
    // bravo, over the network, is cut off too.
    sync_ok(&s.bravo, port);
    assert!(
        s.bravo
            .fails(&["--as", "officer", "ls"])
            .contains("disabled")
    );
    // Moved to another agency at the hub: its access at the site ends.
    s.hub.ok(&["agency", "add", "mi6"]);
    s.hub
        .ok(&["principal", "set", "officer", "--agency", "mi6"]);
    import(&s.alpha, &export(&s.hub, "alpha", "p7.bundle"));
    assert!(
        s.alpha
            .fails(&["--as", "officer", "ls"])
            .contains("disabled")
    );
    let moved = crate::common::audit_lines(&s.alpha).into_iter().any(|e| {
        e["action"] == "principal.disable"
            && e["principal"] == "site:hub"
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains("moved to mi6"))
    });
    assert!(moved, "alpha's audit log says why officer was disabled");
}

/// The principal `officer` as `principal ls --json` shows it at `env`.
fn officer_at(env: &Env) -> Value {
    let v: Value = serde_json::from_str(&env.ok(&["principal", "ls", "--json"])).expect("ls");
    v.as_array()
        .expect("principals")
        .iter()
        .find(|p| p["name"] == "officer")
        .cloned()
        .expect("officer")
}

/// The last line of `stderr` that starts with `label: `.
fn last_progress(stderr: &[u8], label: &str) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .rfind(|l| l.starts_with(&format!("{label}: ")))
        .unwrap_or_else(|| panic!("no {label} progress in {}", String::from_utf8_lossy(stderr)))
        .to_owned()
}

#[test]
fn bundles_and_sync_tell_their_progress_in_lines_for_logs() {
    let mut s = setup();
    let big = add_big(&mut s, 2, 400_000);
    // A bundle for alpha: as many items read back as alpha may hold.
    let out = s.hub.root.join("alpha-progress.bundle");
    let run = s
        .hub
        .cmd(&[
            "bundle",
            "export",
            "--site",
            "alpha",
            out.to_str().expect("path"),
        ])
        .env("BLETCHLEY_PROGRESS", "lines")
        .output()
        .expect("bundle export");
    assert!(run.status.success());
    let n = expected(&s, |p| p.alpha).len() + big.len();
    assert_eq!(
        last_progress(&run.stderr, "bundle"),
        format!("bundle: {n}/{n} items read back (100%)")
    );
    // Imported: every operation applied, as many as the bundle carries.
    let run = s
        .alpha
        .cmd(&["bundle", "import", out.to_str().expect("path")])
        .env("BLETCHLEY_PROGRESS", "lines")
        .output()
        .expect("bundle import");
    assert!(run.status.success());
    let summary = String::from_utf8_lossy(&run.stdout);
    let ops: u64 = summary
        .split(": ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert_eq!(
        last_progress(&run.stderr, "import"),
        format!("import: {ops}/{ops} operations applied (100%)")
    );
    // Over the network: bytes received of those coming, ending whole; the big items alone are
    // 800 kB, so the total is told in units that say so.
    let hub = start_hub(&s.hub, "127.0.0.1:0");
    let out = s
        .bravo
        .cmd(&[
            "sync",
            "--peer",
            &format!("https://127.0.0.1:{}", hub.port()),
            "--once",
        ])
        .env("BLETCHLEY_PROGRESS", "lines")
        .output()
        .expect("sync");
    assert!(out.status.success());
    let last = last_progress(&out.stderr, "sync");
    assert!(last.ends_with("(100%)") && last.contains("KiB"), "{last}");
    for id in &big {
        assert!(held(&s.bravo).contains(id));
    }
    drop(hub);
}
