//! Vector search at scale: the gated search of a principal who sees half the access classes,
//! against the same index searched by one who sees them all (the gate's cost) and against one
//! graph holding every chunk (what an index without classes would cost); recall@10 against exact
//! search over the same visible chunks. Medians and 99th percentiles over the queries.
//!
//! `cargo bench -p bletchley-index --bench vectors` (BLETCHLEY_BENCH_CHUNKS, default 1,000,000,
//! 384 dimensions, clustered synthetic unit vectors: the index's work does not depend on what
//! the numbers mean, and a million real embeddings would take hours to compute here).

use std::time::Instant;

use bletchley_index::vectors::{AccessClass, VectorIndex};
use bletchley_policy::{
    Admitted, Classification, Collection, CollectionId, Gate, Marking, Nation, Principal, Role,
    Visibility,
};

const DIM: usize = 384;
const COLLECTIONS: u32 = 8;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn normal(&mut self) -> f32 {
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

fn admitted(clearance: Classification, collections: &[u32]) -> Admitted {
    let p = Principal {
        name: "analyst".into(),
        agency: "mi5".into(),
        clearance,
        compartments: Default::default(),
        nationality: Nation::gbr(),
        roles: [Role::Analyst].into_iter().collect(),
        standing: Default::default(),
        reviewed_s: None,
    };
    let catalog: Vec<Collection> = (1..=COLLECTIONS)
        .map(|id| Collection {
            id: CollectionId(id),
            agency: if collections.contains(&id) {
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

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn timed(index: &VectorIndex, who: &Admitted, queries: &[Vec<f32>], exact: bool) -> (f64, f64) {
    let mut ms = Vec::new();
    for q in queries {
        let t = Instant::now();
        let hits = index.search(who, q, 10, exact).expect("search");
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        std::hint::black_box(hits);
    }
    (percentile(&mut ms, 0.5), percentile(&mut ms, 0.99))
}

fn main() {
    let chunks: usize = std::env::var("BLETCHLEY_BENCH_CHUNKS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let mut rng = Rng(0x5eed_1234);
    let centres: Vec<Vec<f32>> = (0..2000)
        .map(|_| unit((0..DIM).map(|_| rng.normal()).collect()))
        .collect();
    let point = |rng: &mut Rng| {
        let c = &centres[rng.next() as usize % centres.len()];
        unit(
            c.iter()
                .map(|x| x + 0.06 * rng.normal())
                .collect::<Vec<f32>>(),
        )
    };
    let markings = [
        Marking::parse("OFFICIAL").expect("marking"),
        Marking::parse("SECRET").expect("marking"),
    ];
    let mut classed = VectorIndex::new(DIM);
    let mut single = VectorIndex::new(DIM);
    classed.defer_graphs();
    single.defer_graphs();
    let one_class = AccessClass::of(CollectionId(1), &markings[0]);
    let t = Instant::now();
    for i in 0..chunks {
        let v = point(&mut rng);
        let item = format!("item-{i:08}");
        let class = AccessClass::of(
            CollectionId(1 + (i as u32 % COLLECTIONS)),
            &markings[(i / COLLECTIONS as usize) % 2],
        );
        classed
            .add(class, &item, &[(0, 100)], std::slice::from_ref(&v))
            .expect("add");
        single
            .add(one_class.clone(), &item, &[(0, 100)], &[v])
            .expect("add");
    }
    let load = t.elapsed().as_secs_f64();
    let t = Instant::now();
    classed.refresh();
    let build_classed = t.elapsed().as_secs_f64();
    let t = Instant::now();
    single.refresh();
    let build_single = t.elapsed().as_secs_f64();
    println!(
        "vectors: {chunks} chunks x {DIM} dims in {} classes ({COLLECTIONS} collections x 2 markings); loaded in {load:.1} s; graphs built in {build_classed:.1} s (per class) and {build_single:.1} s (one graph); {} threads",
        2 * COLLECTIONS,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let queries: Vec<Vec<f32>> = (0..300).map(|_| point(&mut rng)).collect();
    // Half the collections, both markings: half the classes.
    let gated = admitted(Classification::Secret, &[1, 2, 3, 4]);
    let all = admitted(
        Classification::TopSecret,
        &(1..=COLLECTIONS).collect::<Vec<_>>(),
    );
    let (g50, g99) = timed(&classed, &gated, &queries, false);
    let (a50, a99) = timed(&classed, &all, &queries, false);
    let (s50, s99) = timed(&single, &all, &queries, false);
    let (e50, e99) = timed(&classed, &gated, &queries[..50], true);
    let mut found = 0;
    for q in &queries[..100] {
        let want: Vec<String> = classed
            .search(&gated, q, 10, true)
            .expect("exact")
            .into_iter()
            .map(|h| h.chunk.item)
            .collect();
        found += classed
            .search(&gated, q, 10, false)
            .expect("search")
            .iter()
            .filter(|h| want.contains(&h.chunk.item))
            .count();
    }
    println!(
        "vectors: gated (half the classes) p50 {g50:.2} ms p99 {g99:.2} ms; ungated (every class) p50 {a50:.2} ms p99 {a99:.2} ms; gated/ungated p99 {:.2} (goal <= 1.3, and < 50 ms)",
        g99 / a99
    );
    println!(
        "vectors: one graph of every chunk p50 {s50:.2} ms p99 {s99:.2} ms (gated/one-graph p99 {:.2}); exact gated p50 {e50:.1} ms p99 {e99:.1} ms",
        g99 / s99
    );
    println!(
        "vectors: recall@10 of the gated search against exact over the same visible chunks {:.3} (goal >= 0.95)",
        found as f64 / 1000.0
    );
}
