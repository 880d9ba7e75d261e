//! Issue 22, 10: nested archives share one budget per ingested file. Each
//! archive here is within its own limit; together they are not, and the
//! file is refused before anything of it is stored.

use bletchley_policy::Marking;
use bletchley_store::{IngestOptions, NewItem};

use crate::feeder::platform;
use crate::formats::zip_of;

fn opts() -> IngestOptions {
    IngestOptions {
        collection: "mi5/ct".into(),
        marking: Marking::parse("SECRET").unwrap(),
        authority: None,
        retain_until_ms: None,
        justification: None,
        priority: Default::default(),
    }
}

#[test]
fn nested_archives_share_one_budget_and_a_file_over_it_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = platform(dir.path());
    // 40 entries of 1 MiB of zeros: 40 MiB, inside one archive's 64 MiB and
    // its ratio limit (which applies above 1 MiB).
    let mib = vec![0u8; 1 << 20];
    let names: Vec<String> = (0..40).map(|i| format!("z{i}.bin")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &mib[..])).collect();
    let inner = zip_of(&entries);
    let names: Vec<String> = (0..8).map(|i| format!("inner{i}.zip")).collect();
    let entries: Vec<(&str, &[u8])> = names.iter().map(|n| (n.as_str(), &inner[..])).collect();
    let middle = zip_of(&entries);
    let outer = zip_of(&[("middle.zip", &middle[..])]);
    assert!(outer.len() < 2 << 20, "{} bytes upload", outer.len());

    let before = p.items_generation().unwrap();
    let item = NewItem {
        title: "bomb.zip".into(),
        content: outer,
    };
    let err = bletchley_index::ingest::ingest(&mut p, "alice", &opts(), vec![item])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bomb.zip")
            && err.contains("expand beyond")
            && err.contains("nothing was stored"),
        "{err}"
    );
    assert_eq!(p.items_generation().unwrap(), before, "nothing was stored");

    // Nesting within the budget is stored whole, every generation.
    let small = zip_of(&[("a.zip", &zip_of(&[("b.txt", b"hello")])[..])]);
    let item = NewItem {
        title: "small.zip".into(),
        content: small,
    };
    let got = bletchley_index::ingest::ingest(&mut p, "alice", &opts(), vec![item]).unwrap();
    assert_eq!((got.ids.len(), got.parts), (1, 2));
}
