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
            if g.check(black_box(m), CollectionId((i & 15) as u32)).is_ok() {
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
fn bench_ingest(docs: usize, batch: usize) -> Result<(f64, f64)> {
    let dir = tempfile::tempdir()?;
    let root = dir.path().join("data");
    let opts = InitOptions {
        home: Nation::gbr(),
        jurisdiction: Jurisdiction::parse("GB/london")?,
        kdf: KdfParams {
            m_kib: 1024,
            t: 1,
            p: 1,
        },
    };
    let mut p = Platform::init(&root, &opts, Box::new(FixedUnlock))?;
    p.add_agency("mi5")?;
    p.add_principal(&Principal {
        name: "alice".into(),
        agency: "mi5".into(),
        clearance: Classification::TopSecret,
        compartments: Default::default(),
        nationality: Nation::gbr(),
        roles: [Role::Analyst].into_iter().collect(),
    })?;
    p.add_collection("mi5/bench", false)?;
    let opts = IngestOptions {
        collection: "mi5/bench".into(),
        marking: Marking::parse("SECRET//UK EYES ONLY")?,
        authority: None,
        retain_until_ms: None,
        justification: None,
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

/// Runs every benchmark and prints a table.
pub fn run(a: &BenchArgs) -> Result<ExitCode> {
    let reps = if a.quick { 1 } else { 5 };
    println!("bletchley bench (medians of {reps} runs; one core unless noted)");
    let d = bench_policy(reps);
    println!(
        "policy decisions/s            {:>14.0}   goal >= 20,000,000   ratio to goal {:.2}",
        d,
        d / 20e6
    );
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
    let batches = if a.quick { 10 } else { 50 };
    let r = bench_audit(1000, batches, reps).context("audit benchmark")?;
    println!(
        "durable audit appends/s       {r:>14.0}   batches of 1000, fsync + signed checkpoint each; goal >= 50,000 (Tessera ~2,900)"
    );
    let docs = if a.quick { a.docs.min(1000) } else { a.docs };
    let (ips, mbs) = bench_ingest(docs, 256).context("ingest benchmark")?;
    println!(
        "ingest {docs} x 10 KB docs     {ips:>10.0} items/s  {mbs:.1} MB/s (sealed, placed, audited, cataloged; batches of 256)"
    );
    Ok(ExitCode::SUCCESS)
}
