//! Indexing as items are stored: the index ends up holding exactly the
//! catalog's items, each once, whether or not another process stores items
//! or writes to the index meanwhile; and it claims to be in step with the
//! catalog only when it is.

use std::path::Path;

use bletchley_crypto::KdfParams;
use bletchley_index::feeder::IndexFeeder;
use bletchley_index::{SearchIndex, SearchRequest, SortBy, access};
use bletchley_policy::{Classification, Marking, Nation, Principal, Role};
use bletchley_store::{
    IngestOptions, InitOptions, Jurisdiction, KeyName, NewItem, Platform, Unlock,
};
use zeroize::Zeroizing;

struct Passphrase;
impl Unlock for Passphrase {
    fn passphrase(&self, _: &KeyName) -> Result<Zeroizing<String>, String> {
        Ok(Zeroizing::new("feeder test".into()))
    }
}

pub(crate) fn platform(root: &Path) -> Platform {
    let opts = InitOptions {
        home: Nation::gbr(),
        jurisdiction: Jurisdiction::parse("GB/london").unwrap(),
        kdf: KdfParams {
            m_kib: 1024,
            t: 1,
            p: 1,
        },
    };
    let mut p = Platform::init(root, &opts, Box::new(Passphrase)).unwrap();
    p.add_agency("mi5").unwrap();
    p.add_principal(&Principal {
        name: "alice".into(),
        agency: "mi5".into(),
        clearance: Classification::TopSecret,
        compartments: Default::default(),
        nationality: Nation::gbr(),
        roles: [Role::Analyst].into_iter().collect(),
        standing: Default::default(),
        reviewed_s: None,
    })
    .unwrap();
    p.add_collection("mi5/ct", false).unwrap();
    p
}

fn index(p: &Platform) -> SearchIndex {
    SearchIndex::open(
        &p.root().join("index"),
        p.derived_key("search-index"),
        p.home(),
    )
    .unwrap()
}

/// Stores `n` reports mentioning the harbour, as alice, through the ingest
/// every command uses.
fn store(p: &mut Platform, tag: &str, n: usize) -> Vec<String> {
    let opts = IngestOptions {
        collection: "mi5/ct".into(),
        marking: Marking::parse("SECRET").unwrap(),
        authority: None,
        retain_until_ms: None,
        justification: None,
        priority: Default::default(),
    };
    let items = (0..n)
        .map(|i| NewItem {
            title: format!("{tag}-{i}.txt"),
            content: format!("harbour report {tag} number {i}").into_bytes(),
        })
        .collect();
    bletchley_index::ingest::ingest(p, "alice", &opts, items)
        .unwrap()
        .ids
}

/// How many items alice finds with the word every report holds: an item
/// indexed twice would count twice.
fn harbour_hits(p: &mut Platform, index: &SearchIndex) -> usize {
    let req = SearchRequest {
        query: "harbour".into(),
        limit: 1000,
        offset: 0,
        sort: SortBy::Relevance,
        facets: false,
    };
    let (found, _) = access::search(p, index, "alice", &req, None).unwrap();
    assert_eq!(found.total, found.hits.len());
    found.total
}

#[test]
fn an_ingest_alone_leaves_the_index_in_step_with_the_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = platform(dir.path());
    let mut index = index(&p);
    let mut feeder = IndexFeeder::start(&mut p, &mut index).unwrap();
    let mut ids = store(&mut p, "a", 3);
    feeder.feed(&mut p);
    ids.extend(store(&mut p, "b", 2));
    feeder.feed(&mut p);
    let report = feeder.finish(&mut p, &mut index).unwrap();
    assert!(report.left_to_reconcile.is_none(), "{report:?}");
    assert_eq!(report.indexed, 5);
    assert_eq!(
        index.synced_generation(),
        Some(p.items_generation().unwrap()),
        "nothing is left for a search to reconcile"
    );
    let known = index.known_ids().unwrap();
    assert_eq!(known.len(), 5);
    assert!(ids.iter().all(|i| known.contains(i)));
    // A new process sees the same: the generation is in the commit.
    assert_eq!(
        self::index(&p).synced_generation(),
        Some(p.items_generation().unwrap())
    );
    assert_eq!(harbour_hits(&mut p, &index), 5);
}

#[test]
fn another_process_storing_meanwhile_leaves_a_reconcile_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = platform(dir.path());
    let mut other = Platform::open(dir.path(), Box::new(Passphrase)).unwrap();
    let mut index = index(&p);
    let mut feeder = IndexFeeder::start(&mut p, &mut index).unwrap();
    store(&mut p, "a", 2);
    feeder.feed(&mut p);
    // Stored by another process, which does not feed this index.
    let theirs = store(&mut other, "theirs", 1);
    store(&mut p, "b", 2);
    feeder.feed(&mut p);
    let report = feeder.finish(&mut p, &mut index).unwrap();
    assert_eq!(report.indexed, 4);
    assert_ne!(
        index.synced_generation(),
        Some(p.items_generation().unwrap()),
        "the index must not claim to hold the other process's item"
    );
    assert!(!index.known_ids().unwrap().contains(&theirs[0]));
    access::sync(&mut p, &mut index).unwrap();
    assert!(index.known_ids().unwrap().contains(&theirs[0]));
    assert_eq!(harbour_hits(&mut p, &index), 5, "each item once");
}

#[test]
fn another_process_writing_the_index_meanwhile_stops_the_feed_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = platform(dir.path());
    let mut other = Platform::open(dir.path(), Box::new(Passphrase)).unwrap();
    let mut index = index(&p);
    let mut their_index = self::index(&other);
    let mut feeder = IndexFeeder::start(&mut p, &mut index).unwrap();
    let first = store(&mut p, "a", 2);
    // A search in another process reconciles before the feeder takes the
    // writer: it indexes this ingest's first items itself.
    access::sync(&mut other, &mut their_index).unwrap();
    assert!(
        first
            .iter()
            .all(|i| their_index.known_ids().unwrap().contains(i))
    );
    feeder.feed(&mut p);
    store(&mut p, "b", 2);
    feeder.feed(&mut p);
    let report = feeder.finish(&mut p, &mut index).unwrap();
    assert_eq!(report.indexed, 0, "{report:?}");
    assert!(
        matches!(
            report.left_to_reconcile,
            Some(bletchley_index::Error::Behind)
        ),
        "{report:?}"
    );
    access::sync(&mut p, &mut index).unwrap();
    assert_eq!(harbour_hits(&mut p, &index), 4, "each item once");
    access::sync(&mut other, &mut their_index).unwrap();
    assert_eq!(harbour_hits(&mut other, &their_index), 4);
}

/// The id and title of alice's one hit for `word`.
fn only_hit(p: &mut Platform, index: &SearchIndex, word: &str) -> String {
    let req = SearchRequest {
        query: word.into(),
        limit: 10,
        offset: 0,
        sort: SortBy::Relevance,
        facets: false,
    };
    let (found, _) = access::search(p, index, "alice", &req, None).unwrap();
    assert_eq!(found.total, 1, "{word}: {:?}", found.hits);
    found.hits[0].id.clone()
}

/// Containers ingested together have their parts stored together, a
/// generation at a time; each part is still linked to its own container,
/// one generation below it, at its marking, and indexed as stored.
#[test]
fn the_parts_of_a_batch_of_containers_each_go_with_their_own_container() {
    use crate::formats::{email_with, zip_of};
    let dir = tempfile::tempdir().unwrap();
    let mut p = platform(dir.path());
    let mut index = index(&p);
    let mut feeder = IndexFeeder::start(&mut p, &mut index).unwrap();
    let zip = zip_of(&[("inner.txt", b"alphaword inside the archive")]);
    let items = vec![
        NewItem {
            title: "a.eml".into(),
            content: email_with("bundle.zip", "application/zip", &zip),
        },
        NewItem {
            title: "b.eml".into(),
            content: email_with("b.txt", "text/plain", b"bravoword attached"),
        },
        NewItem {
            title: "c.txt".into(),
            content: b"charlieword plain".to_vec(),
        },
        NewItem {
            title: "d.eml".into(),
            content: email_with("d.txt", "text/plain", b"deltaword attached"),
        },
    ];
    let opts = IngestOptions {
        collection: "mi5/ct".into(),
        marking: Marking::parse("SECRET//UK EYES ONLY").unwrap(),
        authority: Some("WARRANT-7".into()),
        retain_until_ms: None,
        justification: None,
        priority: Default::default(),
    };
    let got = bletchley_index::ingest::ingest(&mut p, "alice", &opts, items).unwrap();
    assert_eq!(got.parts, 4, "bundle.zip, inner.txt, b.txt, d.txt");
    feeder.feed(&mut p);
    let report = feeder.finish(&mut p, &mut index).unwrap();
    assert_eq!(report.indexed, 8);
    let [a, b, _c, d] = got.ids.as_slice() else {
        panic!("four ids: {:?}", got.ids)
    };
    let parent_of = |p: &mut Platform, word: &str| {
        let id = only_hit(p, &index, word);
        let (meta, _) = p.get("alice", &id, None).unwrap();
        assert_eq!(meta.marking, "SECRET//UK EYES ONLY");
        assert_eq!(meta.authority.as_deref(), Some("WARRANT-7"));
        (id, meta.derived_from, meta.generation)
    };
    let (inner, zip_id, generation) = parent_of(&mut p, "alphaword");
    assert_eq!(generation, 2, "{inner}");
    let zip_id = zip_id.expect("the member names its archive");
    let (zip_meta, _) = p.get("alice", &zip_id, None).unwrap();
    assert_eq!(zip_meta.derived_from.as_ref(), Some(a));
    assert_eq!(zip_meta.generation, 1);
    assert_eq!(parent_of(&mut p, "bravoword").1.as_ref(), Some(b));
    assert_eq!(parent_of(&mut p, "deltaword").1.as_ref(), Some(d));
    assert_eq!(parent_of(&mut p, "charlieword").1, None);
}
