//! `bletchley bench`: the secure core's benchmarks, each beside its
//! reference, reported as medians and ratios (these machines are noisy).

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use bletchley_audit::{AuditLog, Entry, Outcome};
use bletchley_crypto::{KdfParams, OversightSecretKey, SecretKey, SigningKey, stream};
use bletchley_policy::{
    Classification, Collection, CollectionId, Gate, Marking, Nation, Principal, Role, Visibility,
};
use bletchley_store::{
    IngestOptions, InitOptions, Jurisdiction, KeyName, NewItem, Platform, Unlock,
};
use zeroize::Zeroizing;

use crate::cli::BenchArgs;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Decisions per second on one core over a mix of principals and markings.
fn bench_policy(reps: usize) -> f64 {
    let banners = [
        "OFFICIAL",
        "OFFICIAL-SENSITIVE//PERSONAL DATA",
        "SECRET//UK EYES ONLY",
        "SECRET//REL TO GBR, USA",
        "TOP SECRET//STRAP1//UK EYES ONLY",
        "TOP SECRET//STRAP1/STRAP2//REL TO GBR, USA, AUS, CAN, NZL",
        "SECRET//FVEY",
        "TOP SECRET//STRAP2//REL TO GBR, USA",
    ];
    let markings: Vec<Marking> = banners
        .iter()
        .filter_map(|b| Marking::parse(b).ok())
        .collect();
    let colls: Vec<Collection> = (0..16)
        .map(|i| Collection {
            id: CollectionId(i),
            agency: if i % 2 == 0 {
                "mi5".into()
            } else {
                "gchq".into()
            },
            name: format!("c{i}"),
            bulk: false,
        })
        .collect();
    let gates: Vec<Gate> = [
        (Classification::TopSecret, vec!["STRAP1"], "GBR"),
        (Classification::Secret, vec![], "GBR"),
        (Classification::TopSecret, vec!["STRAP1", "STRAP2"], "USA"),
        (Classification::Official, vec![], "GBR"),
    ]
    .into_iter()
    .filter_map(|(c, cw, nat)| {
        let p = Principal {
            name: "p".into(),
            agency: "mi5".into(),
            clearance: c,
            compartments: cw.into_iter().map(String::from).collect(),
            nationality: Nation::from_alpha3(nat)?,
            roles: [Role::Analyst].into_iter().collect(),
            standing: Default::default(),
            reviewed_s: None,
        };
        let v = Visibility::compute(&p, &colls, &[], 0);
        Some(Gate::new(p, v, Nation::gbr()))
    })
    .collect();
    let n: usize = 20_000_000;
    let mut rates = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        let mut allowed = 0usize;
        for i in 0..n {
            let g = &gates[i & 3];
            let m = &markings[(i >> 2) & 7];
            if g.decide(black_box(m), CollectionId((i & 15) as u32))
                .is_ok()
            {
                allowed += 1;
            }
        }
        black_box(allowed);
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    median(rates)
}

/// Streaming seal and open throughput in GB/s over 256 MiB, as content is
/// sealed on its way to storage (one 64 KiB chunk buffer, output to a sink).
fn bench_seal(reps: usize) -> Result<(f64, f64)> {
    let key = SecretKey::generate()?;
    let data = vec![0x5au8; 256 << 20];
    let sealed = stream::seal(&key, b"bench", &data)?;
    let (mut s, mut o) = (Vec::new(), Vec::new());
    for _ in 0..reps {
        let t = Instant::now();
        let mut w = stream::StreamSealer::new(&key, b"bench", std::io::sink())?;
        for piece in data.chunks(1 << 20) {
            w.write_all(piece)?;
        }
        w.finish()?;
        s.push(data.len() as f64 / t.elapsed().as_secs_f64() / 1e9);
        let t = Instant::now();
        let n = stream::open_to(&key, b"bench", &sealed[..], std::io::sink())?;
        o.push(n as f64 / t.elapsed().as_secs_f64() / 1e9);
    }
    Ok((median(s), median(o)))
}

/// `openssl speed -evp aes-256-gcm` at 16 KiB blocks, in GB/s, if openssl is
/// installed.
fn openssl_speed() -> Option<f64> {
    let out = std::process::Command::new("openssl")
        .args([
            "speed",
            "-evp",
            "aes-256-gcm",
            "-bytes",
            "16384",
            "-seconds",
            "3",
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    // Last line: "AES-256-GCM   1234567.89k" (thousands of bytes per second).
    let line = text
        .lines()
        .rev()
        .find(|l| l.to_ascii_lowercase().starts_with("aes-256-gcm"))?;
    let k: f64 = line
        .split_whitespace()
        .last()?
        .trim_end_matches('k')
        .parse()
        .ok()?;
    Some(k * 1000.0 / 1e9)
}

/// Durable audit appends per second in batches of `batch`.
fn bench_audit(batch: usize, batches: usize, reps: usize) -> Result<f64> {
    let mut rates = Vec::new();
    for _ in 0..reps {
        let dir = tempfile::tempdir()?;
        let signer = SigningKey::generate()?;
        let log = AuditLog::at(dir.path().join("audit"));
        log.create("bletchley/bench", &signer)?;
        let oversight = OversightSecretKey::generate()?;
        let mut w = log.writer(signer, &oversight.public_key())?;
        let entry = Entry {
            time_ms: 0,
            principal: "analyst-0042".into(),
            action: "item.get".into(),
            targets: vec!["0190f3a2-7b1c-7d44-9a3e-5c2b1d0e9f11".into()],
            justification: Some("operation NIMROD tasking 17".into()),
            outcome: Outcome::Allowed,
            reason: None,
            about: None,
        };
        let entries = vec![entry; batch];
        let t = Instant::now();
        for _ in 0..batches {
            w.append(&entries)?;
        }
        rates.push((batch * batches) as f64 / t.elapsed().as_secs_f64());
        log.verify(None, None)?;
    }
    Ok(median(rates))
}

struct FixedUnlock;
impl Unlock for FixedUnlock {
    fn passphrase(&self, _: &KeyName) -> Result<Zeroizing<String>, String> {
        Ok(Zeroizing::new("bench".into()))
    }
}

/// End-to-end ingest of `docs` documents of 10 KB: items/s and MB/s.
/// A fresh platform for a benchmark: cheap key-file cost, agency mi5 and
/// alice, a TOP SECRET analyst.
pub fn bench_platform(root: &std::path::Path) -> Result<Platform> {
    let opts = InitOptions {
        home: Nation::gbr(),
        jurisdiction: Jurisdiction::parse("GB/london")?,
        kdf: KdfParams {
            m_kib: 1024,
            t: 1,
            p: 1,
        },
    };
    let mut p = Platform::init(root, &opts, Box::new(FixedUnlock))?;
    p.add_agency("mi5")?;
    p.add_principal(&Principal {
        name: "alice".into(),
        agency: "mi5".into(),
        clearance: Classification::TopSecret,
        compartments: Default::default(),
        nationality: Nation::gbr(),
        roles: [Role::Analyst].into_iter().collect(),
        standing: Default::default(),
        reviewed_s: None,
    })?;
    Ok(p)
}

fn bench_ingest(docs: usize, batch: usize) -> Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("data");
    let mut p = bench_platform(&root)?;
    p.add_collection("mi5/bench", false)?;
    let opts = IngestOptions {
        collection: "mi5/bench".into(),
        marking: Marking::parse("SECRET//UK EYES ONLY")?,
        authority: None,
        retain_until_ms: None,
        justification: None,
        priority: Default::default(),
    };
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut docs_v = Vec::with_capacity(docs);
    for i in 0..docs {
        let mut content = Vec::with_capacity(10_000);
        while content.len() < 10_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            content.extend_from_slice(format!("word{} ", seed % 50_000).as_bytes());
        }
        content.truncate(10_000);
        docs_v.push(NewItem {
            title: format!("doc-{i}.txt"),
            content,
        });
    }
    let t = Instant::now();
    let mut it = docs_v.into_iter().peekable();
    while it.peek().is_some() {
        let chunk: Vec<NewItem> = it.by_ref().take(batch).collect();
        p.ingest("alice", &opts, chunk)?;
    }
    let secs = t.elapsed().as_secs_f64();
    Ok((docs as f64 / secs, docs as f64 * 10_000.0 / secs / 1e6))
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Seconds bare tantivy takes to index `texts` into one text field of an
/// index in RAM with `threads` indexing threads (50 MB each): the reference
/// the search ingest is measured against.
fn raw_tantivy_secs(texts: &[String], threads: usize) -> Result<f64> {
    use tantivy::schema::{Schema, TEXT};
    let t = Instant::now();
    let mut b = Schema::builder();
    let body = b.add_text_field("body", TEXT);
    let idx = tantivy::Index::create_in_ram(b.build());
    let mut w =
        idx.writer_with_num_threads::<tantivy::TantivyDocument>(threads, 50_000_000 * threads)?;
    for text in texts {
        let mut d = tantivy::TantivyDocument::default();
        d.add_text(body, text);
        w.add_document(d)?;
    }
    w.commit()?;
    Ok(t.elapsed().as_secs_f64())
}

/// A data directory for the search benchmark: three agencies, an analyst
/// and a collection each.
fn search_bench_platform(root: &std::path::Path, agencies: &[&str]) -> Result<Platform> {
    let opts = InitOptions {
        home: Nation::gbr(),
        jurisdiction: Jurisdiction::parse("GB/london")?,
        kdf: KdfParams {
            m_kib: 1024,
            t: 1,
            p: 1,
        },
    };
    let mut p = Platform::init(root, &opts, Box::new(FixedUnlock))?;
    for a in agencies {
        p.add_agency(a)?;
        p.add_principal(&Principal {
            name: format!("{a}-analyst"),
            agency: (*a).into(),
            clearance: Classification::TopSecret,
            compartments: Default::default(),
            nationality: Nation::gbr(),
            roles: [Role::Analyst].into_iter().collect(),
            standing: Default::default(),
            reviewed_s: None,
        })?;
        p.add_collection(&format!("{a}/reports"), false)?;
    }
    Ok(p)
}

/// Ingest of the corpus `corpus generate` writes (documents in several
/// languages and scripts, e-mails with attachments, call records), indexed
/// as stored as `bletchley ingest` does, against raw tantivy on the text the
/// platform indexes: each file's extracted text and its attachments'. Then,
/// on one thread over the same text, what the index adds per document:
/// language detection and entity extraction.
fn bench_corpus_ingest(docs: usize) -> Result<()> {
    use bletchley_index::SearchIndex;
    use bletchley_index::extract::{extract_item, parts};
    let scratch = tempfile::tempdir()?;
    let corpus = scratch.path().join("corpus");
    bletchley_corpus::generate(&corpus, &bletchley_corpus::Options { docs, seed: 2026 })?;
    let mut files = Vec::new();
    let mut dirs = vec![corpus.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d)? {
            let path = e?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.parent() != Some(corpus.as_path()) {
                // Files at the top are the answer key and the manifest.
                files.push(path);
            }
        }
    }
    files.sort();
    let items: Vec<NewItem> = files
        .iter()
        .map(|f| {
            Ok(NewItem {
                title: f
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                content: std::fs::read(f)?,
            })
        })
        .collect::<Result<_>>()?;
    let mut texts = Vec::new();
    for it in &items {
        texts.push(extract_item(&it.title, &it.content, 0).text);
        for part in parts(&it.title, &it.content) {
            texts.push(extract_item(&part.title, &part.content, 1).text);
        }
    }
    let bytes: usize = items.iter().map(|i| i.content.len()).sum();
    let mb = bytes as f64 / 1e6;

    let dir = tempfile::tempdir()?;
    let root = dir.path().join("data");
    let agencies = ["gchq", "mi5", "mi6"];
    let mut p = search_bench_platform(&root, &agencies)?;
    let opts = IngestOptions {
        collection: "mi5/reports".into(),
        marking: Marking::parse("SECRET")?,
        authority: None,
        retain_until_ms: None,
        justification: None,
        priority: Default::default(),
    };
    let n_items = items.len();
    let t = Instant::now();
    let mut index =
        SearchIndex::open(&root.join("index"), p.derived_key("search-index"), p.home())?;
    let mut feeder = bletchley_index::feeder::IndexFeeder::start(&mut p, &mut index)?;
    let mut rest = items.into_iter();
    loop {
        let batch: Vec<NewItem> = rest.by_ref().take(512).collect();
        if batch.is_empty() {
            break;
        }
        bletchley_index::ingest::ingest(&mut p, "mi5-analyst", &opts, batch)?;
        feeder.feed(&mut p);
    }
    let report = feeder.finish(&mut p, &mut index)?;
    index.warm()?;
    let secs = t.elapsed().as_secs_f64();
    if let Some(e) = report.left_to_reconcile {
        anyhow::bail!("the feeder left items to reconcile: {e}");
    }

    let (raw1, raw2) = (raw_tantivy_secs(&texts, 1)?, raw_tantivy_secs(&texts, 2)?);
    let t = Instant::now();
    let detected = texts
        .iter()
        .filter(|t| bletchley_index::search::language_of(t) != "und")
        .count();
    let lang_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mentions: usize = texts
        .iter()
        .map(|t| bletchley_index::entities::extract(t).len())
        .sum();
    let entity_secs = t.elapsed().as_secs_f64();
    println!(
        "corpus ingest {n_items} files, {} items indexed ({mb:.1} MB) indexed as stored: {:.0} items/s ({:.1} MB/s); raw tantivy on their text 1 thread {:.0} items/s, 2 threads {:.0} items/s; ratio to 1 thread {:.2} (goal >= 0.50), to 2 threads {:.2}",
        report.indexed,
        report.indexed as f64 / secs,
        mb / secs,
        texts.len() as f64 / raw1,
        texts.len() as f64 / raw2,
        raw1 / secs,
        raw2 / secs,
    );
    println!(
        "corpus per-item analysis, one thread: language detection {lang_secs:.2} s ({detected} detected), entity extraction {entity_secs:.2} s ({mentions} mentions), raw tantivy {raw1:.2} s"
    );
    Ok(())
}

/// Search: index a generated corpus through the platform and beside it into
/// a bare tantivy index; then 1,000 mixed queries for a principal who sees a
/// third of the corpus, gated, against the same queries ungated.
fn bench_search(docs: usize) -> Result<()> {
    use bletchley_index::{SearchIndex, SearchRequest, SortBy};
    let agencies = ["gchq", "mi5", "mi6"];
    // A Zipf-like vocabulary so that queries have realistic selectivity.
    let vocab: Vec<String> = (0..20_000).map(|i| format!("w{i}")).collect();
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut texts = Vec::with_capacity(docs);
    for _ in 0..docs {
        let n = 80 + (next() % 120) as usize;
        let words: Vec<&str> = (0..n)
            .map(|_| {
                let r = (next() % 1_000_000) as f64 / 1_000_000.0;
                vocab[((r * r * r) * vocab.len() as f64) as usize].as_str()
            })
            .collect();
        texts.push(words.join(" "));
    }
    let bytes: usize = texts.iter().map(String::len).sum();
    let mb = bytes as f64 / 1e6;
    // Batches of 512 as `bletchley ingest` makes them, each agency's in turn.
    let batches = |p: &mut Platform, each: &mut dyn FnMut(&mut Platform) -> Result<()>| {
        for (i, chunk) in texts.chunks(512).enumerate() {
            let a = agencies[i % 3];
            let opts = IngestOptions {
                collection: format!("{a}/reports"),
                marking: Marking::parse("SECRET")?,
                authority: None,
                retain_until_ms: None,
                justification: None,
                priority: Default::default(),
            };
            let items = chunk
                .iter()
                .enumerate()
                .map(|(j, t)| NewItem {
                    title: format!("d{i}-{j}.txt"),
                    content: t.as_bytes().to_vec(),
                })
                .collect();
            bletchley_index::ingest::ingest(p, &format!("{a}-analyst"), &opts, items)?;
            each(p)?;
        }
        anyhow::Ok(())
    };

    // 1. Store everything, then index it at the first search: the index
    //    reads every item back from the store.
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("data");
    let mut p = search_bench_platform(&root, &agencies)?;
    let t = Instant::now();
    batches(&mut p, &mut |_| Ok(()))?;
    let store_secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let mut index =
        SearchIndex::open(&root.join("index"), p.derived_key("search-index"), p.home())?;
    let (added, removed) = p.index_feed(&index.known_ids()?, &[])?;
    let feed_secs = t.elapsed().as_secs_f64();
    index.apply(&added, &removed)?;
    drop(added);
    let applied_secs = t.elapsed().as_secs_f64();
    // As the server does before answering queries.
    index.warm()?;
    let index_secs = t.elapsed().as_secs_f64();
    println!(
        "search index build after the store: {:.1} s reading and opening items from the store, {:.1} s indexing, {:.1} s per-class term statistics",
        feed_secs,
        applied_secs - feed_secs,
        index_secs - applied_secs
    );

    // What every search through the server or the command line does first:
    // reconcile the index with the catalog, here with nothing new. The first
    // time it reads every id (the index was built above, not by a sync);
    // after that the catalog's items generation says nothing changed.
    let t = Instant::now();
    bletchley_index::access::sync(&mut p, &mut index)?;
    let full_ms = t.elapsed().as_secs_f64() * 1e3;
    let mut noop = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        bletchley_index::access::sync(&mut p, &mut index)?;
        noop.push(t.elapsed().as_secs_f64() * 1e3);
    }
    println!(
        "search reconcile, nothing new ({docs} items): reading every id {full_ms:.1} ms; by generation {:.3} ms (median of 5)",
        median(noop)
    );
    drop((index, p, dir));

    // 2. As `bletchley ingest` does: each batch indexed while the next is
    //    stored; done when the last commit is made and the index is ready
    //    for queries.
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("data");
    let mut p = search_bench_platform(&root, &agencies)?;
    let t = Instant::now();
    let mut index =
        SearchIndex::open(&root.join("index"), p.derived_key("search-index"), p.home())?;
    let mut feeder = bletchley_index::feeder::IndexFeeder::start(&mut p, &mut index)?;
    batches(&mut p, &mut |p| {
        feeder.feed(p);
        Ok(())
    })?;
    let report = feeder.finish(&mut p, &mut index)?;
    index.warm()?;
    let fed_secs = t.elapsed().as_secs_f64();
    if let Some(e) = report.left_to_reconcile {
        anyhow::bail!("the feeder left items to reconcile: {e}");
    }
    anyhow::ensure!(
        report.indexed == docs,
        "the feeder indexed {} of {docs} items",
        report.indexed
    );
    let t = Instant::now();
    bletchley_index::access::sync(&mut p, &mut index)?;
    let after_ms = t.elapsed().as_secs_f64() * 1e3;

    let raw_secs = raw_tantivy_secs(&texts, 1)?;
    let raw2_secs = raw_tantivy_secs(&texts, 2)?;
    let rate = |secs: f64| format!("{:.0} docs/s ({:.1} MB/s)", docs as f64 / secs, mb / secs);
    println!(
        "search ingest {docs} docs ({mb:.1} MB)   store then index: store {:.0} docs/s, index {:.0} docs/s, both {}; ratio {:.2} to raw",
        docs as f64 / store_secs,
        docs as f64 / index_secs,
        rate(store_secs + index_secs),
        raw_secs / (store_secs + index_secs)
    );
    println!(
        "search ingest {docs} docs indexed as stored: {}; raw tantivy 1 thread {}, 2 threads {}; ratio to raw 1 thread {:.2} (goal >= 0.50), to 2 threads {:.2}; reconcile after it {after_ms:.1} ms",
        rate(fed_secs),
        rate(raw_secs),
        rate(raw2_secs),
        raw_secs / fed_secs,
        raw2_secs / fed_secs
    );

    let gate = p.gate("mi5-analyst")?;
    let admitted = gate.admit(p.collections()?, None);
    let queries: Vec<String> = (0..1000)
        .map(|i| {
            let mut w = |k: u64| &vocab[((next() % 1000) * (k + 1)) as usize % 3000];
            match i % 4 {
                0 => w(1).to_string(),
                1 => format!("{} {}", w(1), w(2)),
                2 => format!("\"{} {}\"", w(0), w(0)),
                _ => format!("{} OR {}", w(3), w(4)),
            }
        })
        .collect();
    let (mut gated, mut ungated) = (Vec::new(), Vec::new());
    for q in &queries {
        let req = SearchRequest {
            query: q.clone(),
            limit: 20,
            offset: 0,
            sort: SortBy::Relevance,
            facets: false,
        };
        let t = Instant::now();
        index.search(&admitted, &req)?;
        gated.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        index.ungated_reference_search(q, 20)?;
        ungated.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (g50, g99) = (percentile(&mut gated, 0.5), percentile(&mut gated, 0.99));
    let (u50, u99) = (
        percentile(&mut ungated, 0.5),
        percentile(&mut ungated, 0.99),
    );
    println!(
        "search 1000 mixed queries      gated p50 {g50:.2} ms p99 {g99:.2} ms; ungated p50 {u50:.2} ms p99 {u99:.2} ms; p99 ratio {:.2} (goal <= 1.3, p99 < 50 ms)",
        g99 / u99
    );
    Ok(())
}

/// Runs every benchmark and prints a table.
/// Neighbours at two hops on a synthetic graph of `edges` links among
/// `edges / 5` selectors with a skewed degree distribution (a few hubs, a
/// long tail), as the visible graph of a principal would be built.
fn bench_graph(edges: usize, queries: usize) {
    use bletchley_index::graph::{ItemLinks, LinkGraph};
    let nodes = (edges / 5).max(10) as u64;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        // xorshift64*: deterministic, no dependency for a benchmark.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let mut skewed = move || {
        let u = (next() >> 11) as f64 / (1u64 << 53) as f64;
        ((u * u * u) * nodes as f64) as u64
    };
    let t = Instant::now();
    let items: Vec<ItemLinks> = (0..edges)
        .map(|i| {
            let (a, b) = (skewed(), skewed());
            ItemLinks {
                id: format!("i{i}"),
                entities: vec![format!("phone:+{a:012}"), format!("phone:+{b:012}")],
                title: String::new(),
                marking: String::new(),
                created_ms: 0,
                happened_ms: None,
                events: Vec::new(),
                parent: None,
            }
        })
        .collect();
    let g = LinkGraph::build(&items);
    let build_s = t.elapsed().as_secs_f64();
    drop(items);
    let mut lat = Vec::with_capacity(queries);
    let mut reached = Vec::with_capacity(queries);
    let mut pick = 0x1234_5678u64;
    for _ in 0..queries {
        pick = pick.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let start = format!("phone:+{:012}", (pick >> 33) % nodes);
        let t = Instant::now();
        let n = g.neighbours(&start, 2);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        reached.push(n.len() as f64);
    }
    println!(
        "graph {edges} edges: built in {build_s:.1} s; neighbours at 2 hops p50 {:.2} ms p99 {:.2} ms (median {:.0} selectors reached)",
        percentile(&mut lat, 0.5),
        percentile(&mut lat, 0.99),
        percentile(&mut reached, 0.5)
    );
}

/// The server under load: `clients` concurrent HTTPS clients, each logged
/// in, mixing searches (60 %), item reads (30 %) and uploads (10 %) for
/// `seconds`; reports errors and p50/p99 per endpoint.
fn bench_server(clients: usize, seconds: u64) -> Result<()> {
    use std::sync::Arc;
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("data");
    let mut p = bench_platform(&root)?;
    p.set_password("alice", "bench-password-1")?;
    p.add_collection("mi5/bench", false)?;
    // A realistic body of text to search: a generated corpus.
    let corpus = dir.path().join("corpus");
    bletchley_corpus::generate(
        &corpus,
        &bletchley_corpus::Options {
            docs: 2_000,
            seed: 5,
        },
    )?;
    let mut items = Vec::new();
    for f in crate::bench::files(&corpus)? {
        let title = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        items.push(NewItem {
            title,
            content: std::fs::read(&f)?,
        });
    }
    let ids = p.ingest(
        "alice",
        &IngestOptions {
            collection: "mi5/bench".into(),
            marking: Marking::parse("SECRET")?,
            authority: None,
            retain_until_ms: None,
            justification: None,
            priority: Default::default(),
        },
        items,
    )?;
    bletchley_server::tls::ensure_certificate(&p)?;
    let cert = std::fs::read(bletchley_server::tls::paths(&root).0)?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("https://{}", listener.local_addr()?);
    std::thread::spawn(move || bletchley_server::serve_on(p, listener, None, None));
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::pem::PemObject::pem_slice_iter(&cert) {
        roots.add(c?)?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let ids = Arc::new(ids);
    let words = [
        "harbour", "port", "Porto", "meeting", "phone", "contact", "bank", "report",
    ];
    let deadline = Instant::now() + std::time::Duration::from_secs(seconds);
    let handles: Vec<_> = (0..clients)
        .map(|n| {
            let (tls, url, ids) = (tls.clone(), url.clone(), Arc::clone(&ids));
            std::thread::spawn(move || -> Result<(Vec<(usize, f64)>, usize)> {
                let c = reqwest::blocking::Client::builder()
                    .use_preconfigured_tls(tls)
                    .cookie_store(true)
                    .build()?;
                let mut csrf = String::new();
                for _ in 0..50 {
                    // The server may still be starting.
                    if let Ok(r) = c
                        .post(format!("{url}/api/login"))
                        .json(&serde_json::json!({ "name": "alice", "password": "bench-password-1" }))
                        .send()
                        && r.status().is_success()
                    {
                        let v: serde_json::Value = r.json()?;
                        csrf = v["csrf"].as_str().unwrap_or_default().to_owned();
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                let (mut lat, mut errors) = (Vec::new(), 0usize);
                let mut state = 0x2545_f491_4f6c_dd1du64 ^ (n as u64);
                let mut i = 0u64;
                while Instant::now() < deadline {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    i += 1;
                    let roll = state % 10;
                    let t = Instant::now();
                    let r = if roll < 6 {
                        let w = words[(state >> 8) as usize % words.len()];
                        c.get(format!("{url}/api/search?q={w}&facets=true")).send()
                    } else if roll < 9 {
                        let id = &ids[(state >> 8) as usize % ids.len()];
                        c.get(format!("{url}/api/items/{id}")).send()
                    } else {
                        c.post(format!(
                            "{url}/api/items?collection=mi5/bench&marking=SECRET&title=load-{n}-{i}.txt"
                        ))
                        .header("content-type", "application/octet-stream")
                        .header("x-csrf-token", &csrf)
                        .body(format!("load test upload {n} {i} harbour"))
                        .send()
                    };
                    let kind = if roll < 6 { 0 } else if roll < 9 { 1 } else { 2 };
                    match r {
                        Ok(r) if r.status().is_success() => {
                            let _ = r.bytes();
                            lat.push((kind, t.elapsed().as_secs_f64() * 1000.0));
                        }
                        _ => errors += 1,
                    }
                }
                Ok((lat, errors))
            })
        })
        .collect();
    let (mut per, mut errors) = (vec![Vec::new(), Vec::new(), Vec::new()], 0);
    for h in handles {
        let (lat, e) = h
            .join()
            .map_err(|_| anyhow::anyhow!("load client panicked"))??;
        errors += e;
        for (k, ms) in lat {
            per[k].push(ms);
        }
    }
    let total: usize = per.iter().map(Vec::len).sum();
    println!(
        "server: {clients} clients for {seconds} s: {total} requests ({:.0}/s), {errors} errors",
        total as f64 / seconds as f64
    );
    for (name, mut v) in ["GET /api/search", "GET /api/items/{id}", "POST /api/items"]
        .into_iter()
        .zip(per)
    {
        if v.is_empty() {
            continue;
        }
        let n = v.len();
        println!(
            "  {name:<22} {n:>7} requests  p50 {:>7.1} ms  p99 {:>7.1} ms",
            percentile(&mut v, 0.5),
            percentile(&mut v, 0.99)
        );
    }
    Ok(())
}

/// Files under a directory, recursively, sorted; the corpus's answer key
/// and manifest left out.
fn files(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let path = e?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .is_some_and(|x| x == "txt" || x == "eml" || x == "csv")
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

pub fn run(a: &BenchArgs) -> Result<ExitCode> {
    let reps = if a.quick { 1 } else { 5 };
    const NAMES: [&str; 11] = [
        "policy", "seal", "audit", "ingest", "search", "corpus", "graph", "server", "speech",
        "detect", "embed",
    ];
    if let Some(o) = &a.only
        && !NAMES.contains(&o.as_str())
    {
        anyhow::bail!("--only {o:?}: expected one of {}", NAMES.join(", "));
    }
    let want = |name: &str| a.only.as_deref().is_none_or(|o| o == name);
    println!("bletchley bench (medians of {reps} runs; one core unless noted)");
    if want("policy") {
        let d = bench_policy(reps);
        println!(
            "policy decisions/s            {:>14.0}   goal >= 20,000,000   ratio to goal {:.2}",
            d,
            d / 20e6
        );
    }
    if want("seal") {
        let (s, o) = bench_seal(reps).context("seal benchmark")?;
        match openssl_speed() {
            Some(ref_gbs) => {
                println!(
                    "seal GB/s                     {s:>14.2}   openssl aes-256-gcm {ref_gbs:.2} GB/s   ratio {:.2} (goal >= 0.70)",
                    s / ref_gbs
                );
                println!(
                    "open GB/s                     {o:>14.2}   openssl aes-256-gcm {ref_gbs:.2} GB/s   ratio {:.2} (goal >= 0.70)",
                    o / ref_gbs
                );
            }
            None => {
                println!(
                    "seal GB/s                     {s:>14.2}   (openssl not installed: no reference)"
                );
                println!("open GB/s                     {o:>14.2}");
            }
        }
    }
    if want("audit") {
        let batches = if a.quick { 10 } else { 50 };
        let r = bench_audit(1000, batches, reps).context("audit benchmark")?;
        println!(
            "durable audit appends/s       {r:>14.0}   batches of 1000, fsync + signed checkpoint each; goal >= 50,000 (Tessera ~2,900)"
        );
    }
    if want("ingest") {
        let docs = if a.quick { a.docs.min(1000) } else { a.docs };
        let (ips, mbs) = bench_ingest(docs, 256).context("ingest benchmark")?;
        println!(
            "ingest {docs} x 10 KB docs     {ips:>10.0} items/s  {mbs:.1} MB/s (sealed, placed, audited, cataloged; batches of 256)"
        );
    }
    // The search and corpus benchmarks share their size.
    let search_docs = if a.quick {
        a.search_docs.min(3000)
    } else {
        a.search_docs
    };
    if want("search") {
        bench_search(search_docs).context("search benchmark")?;
    }
    if want("corpus") {
        bench_corpus_ingest(search_docs).context("generated-corpus ingest benchmark")?;
    }
    if want("graph") {
        let edges = if a.quick {
            a.graph_edges.min(100_000)
        } else {
            a.graph_edges
        };
        bench_graph(edges, 1000);
    }
    if want("server") {
        let (clients, secs) = if a.quick { (10, 10) } else { (50, 60) };
        bench_server(clients, secs).context("server benchmark")?;
    }
    if want("detect") {
        crate::bench_detect::bench_detect(a.quick).context("detection benchmark")?;
    }

    if want("embed") {
        crate::bench_embed::bench_embed(a.quick).context("embedding benchmark")?;
    }
    if want("speech") {
        crate::bench_speech::bench_speech(a.quick).context("speech benchmark")?;
    }
    Ok(ExitCode::SUCCESS)
}
