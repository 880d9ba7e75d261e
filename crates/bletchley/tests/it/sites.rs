//! Field sites: a hub and two field sites as separate data directories, bundles carried between
//! them as files. What each site should hold is written out below by hand from the rules
//! (ceiling, compartments, every staff nationality, assignment, residency), not computed by the
//! code under test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{Env, contains, files_under};

/// One item on the hub: its canary content, collection and marking, and whether each field site
/// may hold it.
struct Planted {
    canary: &'static str,
    collection: &'static str,
    marking: &'static str,
    alpha: bool,
    bravo: bool,
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

struct Sites {
    hub: Env,
    alpha: Env,
    bravo: Env,
    /// Item id per planted entry.
    ids: Vec<String>,
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

fn enrol(a: &Env, b: &Env) {
    let id = identity(b);
    let f = fingerprint(b);
    a.ok(&[
        "site",
        "enrol",
        "--identity",
        id.to_str().expect("path"),
        "--fingerprint",
        &f,
    ]);
}

fn setup() -> Sites {
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
        enrol(&hub, f);
        enrol(f, &hub);
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

fn held(env: &Env) -> BTreeSet<String> {
    let v: Value = serde_json::from_str(&env.ok(&["--as", "officer", "ls", "--json"])).expect("ls");
    v.as_array()
        .expect("items")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

fn expected(s: &Sites, pick: impl Fn(&Planted) -> bool) -> BTreeSet<String> {
    PLANTED
        .iter()
        .zip(&s.ids)
        .filter(|(p, _)| pick(p))
        .map(|(_, id)| id.clone())
        .collect()
}

/// No plaintext of any planted item anywhere under `dir`.
fn assert_no_plaintext(dir: &Path) {
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
    enrol(&rogue, &s.alpha);
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
    enrol(&s.hub, &fresh);
    enrol(&fresh, &s.hub);
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
