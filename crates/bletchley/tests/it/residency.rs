//! Residency: bytes rest only where policy allows; a write with nowhere
//! allowed to go is refused, writes nothing, and is audited.

use crate::common::{Env, files_under};

#[test]
fn items_land_only_in_allowed_jurisdictions() {
    let env = Env::new();
    env.basic();
    let gb = env.root.join("store-gb");
    let us = env.root.join("store-us");
    env.ok(&[
        "location",
        "add",
        "gb",
        "--jurisdiction",
        "GB/london",
        "--path",
        gb.to_str().expect("path"),
    ]);
    env.ok(&[
        "location",
        "add",
        "us",
        "--jurisdiction",
        "US/virginia",
        "--path",
        us.to_str().expect("path"),
    ]);
    env.ok(&["residency", "set", "--default", "--allow", "GB,US"]);
    env.ok(&["residency", "set", "--agency", "mi5", "--allow", "GB,US"]);
    env.ok(&["collection", "add", "mi5/gb-only"]);
    env.ok(&["collection", "add", "mi5/us-ok"]);
    env.ok(&[
        "residency",
        "set",
        "--collection",
        "mi5/gb-only",
        "--allow",
        "GB",
    ]);
    env.ok(&[
        "residency",
        "set",
        "--collection",
        "mi5/us-ok",
        "--allow",
        "US",
    ]);
    // The built-in location is GB too; retire it so placement is between gb and us.
    env.ok(&["location", "remove", "local"]);

    let a = env.file("a.txt", b"only in Britain");
    let b = env.file("b.txt", b"may rest in Virginia");
    let gb_ids = env.ingest("alice", "mi5/gb-only", "SECRET", &[&a]);
    assert_eq!(
        files_under(&us).len(),
        0,
        "a GB-only item reached the US location"
    );
    assert_eq!(files_under(&gb).len(), 1);
    env.ingest("alice", "mi5/us-ok", "SECRET", &[&b]);
    assert_eq!(files_under(&us).len(), 1);
    assert_eq!(files_under(&gb).len(), 1);

    // Remove the GB location: nowhere is allowed for gb-only.
    env.ok(&["location", "remove", "gb"]);
    let before: Vec<_> = [&gb, &us, &env.data.join("objects")]
        .iter()
        .flat_map(|d| files_under(d))
        .collect();
    let c = env.file("c.txt", b"must not be written anywhere");
    let err = env.fails(&[
        "--as",
        "alice",
        "ingest",
        c.to_str().expect("path"),
        "--collection",
        "mi5/gb-only",
        "--marking",
        "SECRET",
    ]);
    assert!(
        err.contains("residency refused") && err.contains("GB"),
        "{err}"
    );
    let after: Vec<_> = [&gb, &us, &env.data.join("objects")]
        .iter()
        .flat_map(|d| files_under(d))
        .collect();
    assert_eq!(before, after, "bytes were written despite the refusal");
    let listed = env.ok(&["--as", "alice", "ls", "--collection", "mi5/gb-only"]);
    assert_eq!(listed.lines().count(), 1);
    // What rests in the retired location is still readable.
    assert_eq!(
        env.ok(&["--as", "alice", "get", &gb_ids[0]]),
        "only in Britain"
    );
    let audit = env.ok(&["audit", "show", "--json"]);
    assert!(
        audit.lines().any(|l| l.contains("\"item.ingest\"")
            && l.contains("\"refused\"")
            && l.contains("residency")),
        "refusal not audited:\n{audit}"
    );
    // Classification scope: TOP SECRET may rest only in GB, and no GB location is writable.
    env.ok(&[
        "residency",
        "set",
        "--classification",
        "TOP SECRET",
        "--allow",
        "GB",
    ]);
    let d = env.file("d.txt", b"top secret");
    let err = env.fails(&[
        "--as",
        "alice",
        "ingest",
        d.to_str().expect("path"),
        "--collection",
        "mi5/us-ok",
        "--marking",
        "TOP SECRET",
    ]);
    assert!(err.contains("residency refused"), "{err}");
    env.ok(&["audit", "verify"]);
}
