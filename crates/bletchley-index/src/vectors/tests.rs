//! The vector index against exact search computed here, and the two-store property: a
//! principal's answer is the same, bit for bit, whether or not the index also holds items it may
//! not see.

use std::collections::BTreeSet;

use bletchley_policy::{
    Admitted, Classification, Collection, CollectionId, Gate, Marking, Nation, Principal, Role,
    Visibility,
};
use proptest::prelude::*;

use super::*;

/// A small deterministic generator, so the data does not depend on the test runner's seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn normal(&mut self) -> f32 {
        // Sum of uniforms: near enough to Gaussian for clustered test data.
        (0..6)
            .map(|_| (self.next() >> 11) as f32 / (1u64 << 53) as f32)
            .sum::<f32>()
            - 3.0
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// `n` vectors around `clusters` centres, as embeddings of texts on a few topics are.
fn clustered(rng: &mut Rng, n: usize, dim: usize, clusters: usize) -> Vec<Vec<f32>> {
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| unit((0..dim).map(|_| rng.normal()).collect()))
        .collect();
    (0..n)
        .map(|i| {
            let c = &centres[(rng.next() as usize + i) % clusters];
            unit(c.iter().map(|x| x + 0.08 * rng.normal()).collect())
        })
        .collect()
}

fn admitted(clearance: Classification, codewords: &[&str], agency_collections: &[u32]) -> Admitted {
    let p = Principal {
        name: "alice".into(),
        agency: "mi5".into(),
        clearance,
        compartments: codewords.iter().map(|c| c.to_string()).collect(),
        nationality: Nation::gbr(),
        roles: [Role::Analyst].into_iter().collect(),
        standing: Default::default(),
        reviewed_s: None,
    };
    let catalog: Vec<Collection> = (1..=3)
        .map(|id| Collection {
            id: CollectionId(id),
            agency: if agency_collections.contains(&id) {
                "mi5"
            } else {
                "gchq"
            }
            .into(),
            name: format!("c{id}"),
            bulk: false,
        })
        .collect();
    let vis = Visibility::compute(&p, &catalog, &[], 0);
    Gate::new(p, vis, Nation::gbr()).admit(catalog, None)
}

fn class(collection: u32, banner: &str) -> AccessClass {
    AccessClass::of(
        CollectionId(collection),
        &Marking::parse(banner).expect("banner"),
    )
}

/// Exact top-k items by best chunk, computed here in f64 from the same vectors.
fn exact(items: &[(String, Vec<Vec<f32>>)], q: &[f32], k: usize) -> Vec<String> {
    let mut scored: Vec<(f64, &String)> = items
        .iter()
        .map(|(id, vs)| {
            let best = vs
                .iter()
                .map(|v| {
                    v.iter()
                        .zip(q)
                        .map(|(a, b)| f64::from(*a) * f64::from(*b))
                        .sum::<f64>()
                })
                .fold(f64::MIN, f64::max);
            (best, id)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored
        .into_iter()
        .take(k)
        .map(|(_, id)| id.clone())
        .collect()
}

#[test]
fn recall_at_10_against_exact_search_is_at_least_0_95() {
    let dim = 48;
    let mut rng = Rng(0x5eed);
    let vectors = clustered(&mut rng, 12_000, dim, 300);
    let c = class(1, "SECRET");
    let mut index = VectorIndex::new(dim);
    let mut items = Vec::new();
    for (i, v) in vectors.chunks(2).enumerate() {
        let id = format!("item-{i:05}");
        index
            .add(c.clone(), &id, &[(0, 10), (10, 20)], v)
            .expect("add");
        items.push((id, v.to_vec()));
    }
    assert!(
        index.classes[&c].graph.is_some(),
        "a class this large has a graph"
    );
    let who = admitted(Classification::Secret, &[], &[1]);
    let mut found = 0;
    let queries = 100;
    for q in clustered(&mut rng, queries, dim, 300) {
        let want = exact(&items, &q, 10);
        let got = index.search(&who, &q, 10, false).expect("search");
        assert!(
            got.windows(2).all(|w| w[0].score >= w[1].score),
            "nearest first"
        );
        found += got.iter().filter(|h| want.contains(&h.chunk.item)).count();
        // Exact mode is exact.
        let all = index.search(&who, &q, 10, true).expect("exact");
        let ids: Vec<String> = all.iter().map(|h| h.chunk.item.clone()).collect();
        assert_eq!(ids, want);
    }
    let recall = found as f64 / (queries * 10) as f64;
    eprintln!("recall@10 = {recall:.3}");
    assert!(recall >= 0.95, "recall@10 {recall}");
}

#[test]
fn the_gate_chooses_the_classes_and_removal_leaves_nothing_behind() {
    let dim = 8;
    let mut rng = Rng(7);
    let vs = clustered(&mut rng, 6, dim, 2);
    let mut index = VectorIndex::new(dim);
    let classes = [
        class(1, "OFFICIAL"),
        class(1, "SECRET"),
        class(1, "TOP SECRET"),
        class(1, "SECRET//NIMROD"),
        class(2, "OFFICIAL"),
        class(1, "SECRET//REL TO GBR, USA"),
    ];
    for (i, (c, v)) in classes.iter().zip(&vs).enumerate() {
        index
            .add(
                c.clone(),
                &format!("i{i}"),
                &[(0, 1)],
                std::slice::from_ref(v),
            )
            .expect("add");
    }
    let ids_in = |index: &VectorIndex, a: &Admitted| -> BTreeSet<String> {
        index
            .search(a, &vs[0], 10, false)
            .expect("search")
            .into_iter()
            .map(|h| h.chunk.item)
            .collect()
    };
    let secret = admitted(Classification::Secret, &[], &[1]);
    let ids = |a: &Admitted| ids_in(&index, a);
    assert_eq!(ids(&secret), ["i0", "i1", "i5"].map(String::from).into());
    let nimrod = admitted(Classification::TopSecret, &["NIMROD"], &[1, 2]);
    assert_eq!(ids(&nimrod).len(), 6);
    let official = admitted(Classification::Official, &[], &[2]);
    assert_eq!(ids(&official), ["i4"].map(String::from).into());
    // A shredded item's vectors are gone from the index and from its bytes.
    assert!(ids(&nimrod).contains("i1"));
    index.remove("i1");
    assert!(!ids_in(&index, &nimrod).contains("i1"));
    let bytes = index.to_bytes();
    let needle: Vec<u8> = vs[1].iter().flat_map(|x| x.to_le_bytes()).collect();
    assert!(!bytes.windows(needle.len()).any(|w| w == needle.as_slice()));
    // Bad vectors are refused and change nothing.
    let before = index.clone();
    assert!(
        index
            .add(classes[0].clone(), "x", &[(0, 1)], &[vec![0.5; dim]])
            .is_err()
    );
    assert!(
        index
            .add(classes[0].clone(), "x", &[(0, 1)], &[vec![f32::NAN; dim]])
            .is_err()
    );
    assert!(
        index
            .add(classes[0].clone(), "x", &[(0, 1)], &[vec![1.0; dim + 1]])
            .is_err()
    );
    assert!(
        index
            .add(classes[0].clone(), "x", &[(0, 1), (1, 2)], &[vs[0].clone()])
            .is_err()
    );
    assert!(index.search(&secret, &[1.0; 3], 5, false).is_err());
    assert_eq!(index, before);
}

#[test]
fn bytes_round_trip_and_damage_is_refused_without_panics() {
    let dim = 16;
    let mut rng = Rng(99);
    let mut index = VectorIndex::new(dim);
    index.exact_max = 20;
    for (i, v) in clustered(&mut rng, 120, dim, 5).chunks(3).enumerate() {
        index
            .add(
                class(1, "SECRET"),
                &format!("d{i}"),
                &[(0, 5), (5, 9), (9, 12)],
                v,
            )
            .expect("add");
    }
    assert!(index.classes.values().all(|c| c.graph.is_some()));
    // A bulk load, graphs built afterwards on several threads, makes the same index.
    let mut bulk = VectorIndex::new(dim);
    bulk.exact_max = 20;
    bulk.defer_graphs();
    let mut rng = Rng(99);
    for (i, v) in clustered(&mut rng, 120, dim, 5).chunks(3).enumerate() {
        bulk.add(
            class(1, "SECRET"),
            &format!("d{i}"),
            &[(0, 5), (5, 9), (9, 12)],
            v,
        )
        .expect("add");
    }
    assert!(bulk.classes.values().all(|c| c.graph.is_none()));
    bulk.refresh();
    assert_eq!(bulk, index);
    let bytes = index.to_bytes();
    let mut back = VectorIndex::from_bytes(&bytes).expect("read back");
    back.exact_max = 20;
    assert_eq!(back, index);
    for cut in [0, 5, 30, bytes.len() / 2, bytes.len() - 1] {
        assert!(
            VectorIndex::from_bytes(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(VectorIndex::from_bytes(&longer).is_err());
    let mut rng = Rng(3);
    for _ in 0..2000 {
        let mut b = bytes.clone();
        let at = rng.next() as usize % b.len();
        b[at] ^= 1 << (rng.next() % 8);
        // Either refused or read; never a panic or an allocation the file cannot back.
        let _ = VectorIndex::from_bytes(&b);
    }
}

/// Items of the visible classes, and items the principal may not see (another agency's
/// collection, a higher level, a codeword it lacks, not releasable to it).
/// (class, chunks) of each visible item, the same of each hidden one, and a seed.
type TwoStores = (Vec<(u8, u8)>, Vec<(u8, u8)>, u64);

fn two_store_case() -> impl Strategy<Value = TwoStores> {
    (
        proptest::collection::vec((0u8..2, 1u8..4), 10..60),
        proptest::collection::vec((0u8..4, 1u8..4), 1..60),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn a_principal_gets_the_same_answer_with_or_without_items_it_may_not_see(
        (visible, hidden, seed) in two_store_case()
    ) {
        let dim = 12;
        let visible_classes = [class(1, "OFFICIAL"), class(1, "SECRET")];
        let hidden_classes = [
            class(2, "OFFICIAL"),
            class(1, "TOP SECRET"),
            class(1, "SECRET//NIMROD"),
            class(3, "SECRET"),
        ];
        let mut rng = Rng(seed | 1);
        let mut small = VectorIndex::new(dim);
        let mut large = VectorIndex::new(dim);
        // A small exact limit, so graphs are built and walked.
        small.exact_max = 12;
        large.exact_max = 12;
        let mut hidden = hidden.into_iter();
        for (i, (c, n)) in visible.iter().enumerate() {
            let vs = clustered(&mut rng, *n as usize, dim, 3);
            let spans: Vec<(u64, u64)> = (0..*n as u64).map(|j| (j, j + 1)).collect();
            small.add(visible_classes[*c as usize].clone(), &format!("v{i}"), &spans, &vs).unwrap();
            large.add(visible_classes[*c as usize].clone(), &format!("v{i}"), &spans, &vs).unwrap();
            // Invisible items arrive between the visible ones, some with the same vectors.
            if let Some((h, m)) = hidden.next() {
                let hv = if i % 2 == 0 { vs.clone() } else { clustered(&mut rng, *n as usize, dim, 3) };
                let m = (m as usize).min(hv.len());
                large.add(hidden_classes[h as usize].clone(), &format!("h{i}"), &spans[..m], &hv[..m]).unwrap();
            }
        }
        let who = admitted(Classification::Secret, &[], &[1]);
        for q in clustered(&mut rng, 5, dim, 3) {
            for k in [1, 5, 20] {
                for exact in [false, true] {
                    let a = small.search(&who, &q, k, exact).unwrap();
                    let b = large.search(&who, &q, k, exact).unwrap();
                    prop_assert_eq!(a, b);
                }
            }
        }
    }
}

#[test]
fn the_index_rests_sealed_under_its_name_and_a_swapped_or_altered_file_is_refused() {
    use crate::sealed_dir::SealedDirectory;
    let t = tempfile::tempdir().expect("tempdir");
    let key = bletchley_crypto::SecretKey::generate().expect("key");
    let dir = SealedDirectory::open(t.path(), key.clone()).expect("open");
    assert!(VectorIndex::load(&dir).expect("load").is_none(), "none yet");
    let mut rng = Rng(5);
    let mut index = VectorIndex::new(8);
    for (i, v) in clustered(&mut rng, 30, 8, 3).chunks(3).enumerate() {
        index
            .add(
                class(1, "SECRET//NIMROD"),
                &format!("secret-item-{i}"),
                &[(0, 1), (1, 2), (2, 3)],
                v,
            )
            .expect("add");
    }
    index.save(&dir, 42).expect("save");
    let (generation, back) = VectorIndex::load(&dir).expect("load").expect("saved");
    assert_eq!(generation, 42);
    assert_eq!(back, index);
    // Nothing readable on disk: no item id, no marking, no vector.
    let on_disk = std::fs::read(t.path().join("vectors.sealed")).expect("file");
    for needle in [&b"secret-item-"[..], b"NIMROD", &index.to_bytes()[40..72]] {
        assert!(!on_disk.windows(needle.len()).any(|w| w == needle));
    }
    // A fresh handle (no cache) refuses an altered file, and one moved from another name.
    let mut altered = on_disk.clone();
    let at = altered.len() / 2;
    altered[at] ^= 1;
    std::fs::write(t.path().join("vectors.sealed"), &altered).expect("write");
    let fresh = SealedDirectory::open(t.path(), key.clone()).expect("open");
    assert!(VectorIndex::load(&fresh).is_err());
    let other = SealedDirectory::open(t.path(), key.clone()).expect("open");
    tantivy::Directory::atomic_write(&other, std::path::Path::new("meta-copy"), b"x")
        .expect("write");
    std::fs::copy(t.path().join("meta-copy"), t.path().join("vectors.sealed")).expect("copy");
    let fresh = SealedDirectory::open(t.path(), key).expect("open");
    assert!(VectorIndex::load(&fresh).is_err());
}
