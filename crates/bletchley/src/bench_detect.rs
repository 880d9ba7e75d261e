//! `bench --only detect`: Sigma detection against Chainsaw on the same logs and rules in
//! the same run, the detections of both compared, and a long run for throughput and
//! peak memory.
//!
//! The logs and rules are the copies in `crates/bletchley-detect/tests/data/sigma`.
//! Chainsaw is found from `BLETCHLEY_CHAINSAW` (its binary, with its `mappings/` beside
//! it) or `~/.cache/bletchley/chainsaw/chainsaw`; without it Bletchley's own figures
//! are printed and a line names the missing reference.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use bletchley_detect::engine::Engine;
use bletchley_detect::hunt;
use bletchley_detect::mapping::Mapping;
use bletchley_detect::read;
use rayon::prelude::*;

fn data_dir() -> PathBuf {
    std::env::var_os("BLETCHLEY_SIGMA_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../bletchley-detect/tests/data/sigma"),
        PathBuf::from,
    )
}

fn chainsaw() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BLETCHLEY_CHAINSAW") {
        return Some(PathBuf::from(p));
    }
    let p = PathBuf::from(std::env::var_os("HOME")?).join(".cache/bletchley/chainsaw/chainsaw");
    p.exists().then_some(p)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident memory of this process so far (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

type Key = (String, u64, String);

pub fn bench_detect(quick: bool) -> Result<()> {
    let reps = if quick { 3 } else { 7 };
    let data = data_dir();
    let rules = data.join("rules");
    let logs = data.join("evtx");
    anyhow::ensure!(
        rules.is_dir() && logs.is_dir(),
        "{}: the Sigma test data is missing",
        data.display()
    );
    let files = hunt::files_under(std::slice::from_ref(&logs));
    // Ours: load and scan, as `bletchley hunt` does, several times.
    let mut walls = Vec::new();
    let mut scans = Vec::new();
    let mut last = None;
    for _ in 0..reps {
        let t = Instant::now();
        let engine = Engine::load(std::slice::from_ref(&rules), Mapping::builtin());
        let t_scan = Instant::now();
        let outcome = hunt::hunt(&engine, &files);
        scans.push(t_scan.elapsed().as_secs_f64());
        walls.push(t.elapsed().as_secs_f64());
        last = Some((engine, outcome));
    }
    let Some((engine, outcome)) = last else {
        return Ok(());
    };
    let records = outcome.records as f64;
    let wall = median(walls);
    let scan = median(scans);
    println!(
        "detect: {} rules loaded of {} files; {} records in {} EVTX files; {} detections",
        engine.report().detection_rules,
        engine.report().files,
        outcome.records,
        files.len(),
        outcome.hits.len()
    );
    // Each detection with the event's channel, id and provider, to explain differences.
    let ours: BTreeMap<Key, [String; 3]> = outcome
        .hits
        .iter()
        .map(|h| {
            let f = |n: &str| h.event.first(n).unwrap_or_default().to_owned();
            (
                (
                    h.event.origin.file.to_string(),
                    h.event.origin.record,
                    engine.rule(h.rule).id.clone(),
                ),
                [f("Channel"), f("EventID"), f("Provider_Name")],
            )
        })
        .collect();
    println!(
        "detect hunt records/s         {:>14.0}   load + scan {wall:.3} s (scan alone {scan:.3} s, {:.0} records/s), {} threads",
        records / wall,
        records / scan,
        rayon::current_num_threads()
    );
    match chainsaw() {
        None => println!(
            "detect: reference missing: Chainsaw 2.16.4 (set BLETCHLEY_CHAINSAW to its binary, with its mappings/ directory beside it); Bletchley's own figures stand without a ratio"
        ),
        Some(cs) => {
            let mapping = cs
                .parent()
                .unwrap_or(Path::new("."))
                .join("mappings/sigma-event-logs-all.yml");
            let mut times = Vec::new();
            let mut output = Vec::new();
            for _ in 0..reps {
                let t = Instant::now();
                let out = Command::new(&cs)
                    .arg("hunt")
                    .arg(&logs)
                    .arg("-s")
                    .arg(&rules)
                    .arg("--mapping")
                    .arg(&mapping)
                    .args(["--json", "-q"])
                    .output()
                    .with_context(|| format!("running {}", cs.display()))?;
                times.push(t.elapsed().as_secs_f64());
                anyhow::ensure!(
                    out.status.success(),
                    "chainsaw failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                output = out.stdout;
            }
            let cs_wall = median(times);
            println!(
                "detect chainsaw records/s     {:>14.0}   wall {cs_wall:.3} s   ratio ours/chainsaw {:.1} (goal >= 10)",
                records / cs_wall,
                cs_wall / wall
            );
            compare(&engine, &ours, &output)?;
        }
    }
    // Throughput and memory over a long run: the samples read again and again, each
    // pass's records with their record numbers and hosts varied, streamed (nothing kept
    // but counts).
    let passes = if quick { 20 } else { 140 };
    let records_done = AtomicU64::new(0);
    let hits_done = AtomicU64::new(0);
    let t = Instant::now();
    let jobs: Vec<(usize, &PathBuf)> = (0..passes)
        .flat_map(|p| files.iter().map(move |f| (p, f)))
        .collect();
    jobs.par_iter().for_each(|(pass, f)| {
        let mut scratch = engine.scratch();
        let mut fired = Vec::new();
        let mut n = 0u64;
        let mut h = 0u64;
        let mut on_event = |mut e: bletchley_detect::event::Event| {
            e.origin.record += (*pass as u64) << 40;
            if *pass > 0 {
                let host = format!("host{pass}");
                e.push("Computer", bletchley_detect::event::Value::text(host));
            }
            engine.detect(&e, &mut scratch, &mut fired);
            n += 1;
            h += fired.len() as u64;
        };
        if read::read_file(f, engine.mapping(), 1, &mut on_event).is_ok() {
            records_done.fetch_add(n, Ordering::Relaxed);
            hits_done.fetch_add(h, Ordering::Relaxed);
        }
    });
    let secs = t.elapsed().as_secs_f64();
    let n = records_done.load(Ordering::Relaxed);
    println!(
        "detect long run records/s     {:>14.0}   {n} records ({passes} passes over the samples), {} detections, {secs:.1} s, peak memory {}",
        n as f64 / secs,
        hits_done.load(Ordering::Relaxed),
        peak_rss_mib().map_or("unknown".to_owned(), |m| format!("{m:.0} MiB"))
    );
    for warm in [false, true] {
        // Each run on a fresh platform; the median of the runs, as for hunt.
        let mut runs = Vec::new();
        for _ in 0..reps.min(5) {
            runs.push(platform_detection(&rules, &files, warm)?);
        }
        runs.sort_by(|a, b| a.secs.total_cmp(&b.secs));
        let r = &runs[runs.len() / 2];
        println!(
            "detect in the platform, {} records/s {:>5.0}   {} logs ingested in {:.2} s, {} of {} detection jobs done with {} stored rules, {} alerts stored, {:.2} s in all (median of {}); ratio to hunt {:.2} (goal >= 0.5)",
            if warm { "warm" } else { "cold" },
            records / r.secs,
            files.len(),
            r.ingested,
            r.done,
            r.jobs,
            r.rules,
            r.alerts,
            r.secs,
            runs.len(),
            records / r.secs / (records / wall)
        );
    }
    Ok(())
}

/// Prints where the two engines' detections differ, by reason.
fn compare(engine: &Engine, ours: &BTreeMap<Key, [String; 3]>, chainsaw_json: &[u8]) -> Result<()> {
    let v: serde_json::Value = serde_json::from_slice(chainsaw_json).context("chainsaw's JSON")?;
    let mut theirs: BTreeSet<Key> = BTreeSet::new();
    for d in v.as_array().map(Vec::as_slice).unwrap_or_default() {
        if d["kind"] != "individual" {
            continue;
        }
        let doc = &d["document"];
        let rec = &doc["data"]["Event"]["System"]["EventRecordID"];
        let rec = rec
            .as_u64()
            .or_else(|| rec.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or(0);
        theirs.insert((
            doc["path"].as_str().unwrap_or_default().to_owned(),
            rec,
            d["id"].as_str().unwrap_or_default().to_owned(),
        ));
    }
    let both = theirs.iter().filter(|k| ours.contains_key(*k)).count();
    println!(
        "detect vs chainsaw: {} detections ours, {} Chainsaw's, {both} in both, {} only ours, {} only Chainsaw's",
        ours.len(),
        theirs.len(),
        ours.len() - both,
        theirs.len() - both
    );
    // Reasons for detections only we make, from the rule and the event.
    let by_id: BTreeMap<&str, usize> = (0..engine.rule_count())
        .map(|i| (engine.rule(i).id.as_str(), i))
        .collect();
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut other: BTreeMap<&str, usize> = BTreeMap::new();
    for ((_, _, id), [channel, event_id, provider]) in
        ours.iter().filter(|(k, _)| !theirs.contains(*k))
    {
        let reason = match by_id.get(id.as_str()) {
            Some(&i) => {
                let r = engine.rule(i);
                let text = std::fs::read_to_string(&r.file).unwrap_or_default();
                if text.contains("|windash") {
                    "the rule uses windash, which Chainsaw rejects"
                } else if channel == "Security" && event_id == "4688" {
                    "Security 4688 event: Image/ParentImage mapped from NewProcessName/ParentProcessName"
                } else if channel == "Security" && provider != "Microsoft-Windows-Security-Auditing"
                {
                    "service security is the Security channel; Chainsaw also requires the Security-Auditing provider"
                } else {
                    *other.entry(id.as_str()).or_default() += 1;
                    "other (rules listed below: Sigma escapes such as \\\\ and \\*, ? wildcards, absent fields under not)"
                }
            }
            None => "rule not found",
        };
        *reasons.entry(reason).or_default() += 1;
    }
    for (r, n) in &reasons {
        println!("  only ours  {n:>5}  {r}");
    }
    for (id, n) in &other {
        println!(
            "    {n:>3}  {id}  {}",
            by_id.get(id).map_or("", |&i| engine.rule(i).title.as_str())
        );
    }
    let mut missing: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, _, id) in theirs.iter().filter(|k| !ours.contains_key(*k)) {
        *missing.entry(id.as_str()).or_default() += 1;
    }
    for (id, n) in &missing {
        println!("  only Chainsaw's {n:>5}  rule {id}");
    }
    Ok(())
}

/// Detection inside the platform: the rules stored as items, the samples ingested as event
/// logs (sealed, placed, audited, indexed as they are stored), the detection jobs run by the
/// worker, each detection stored as an alert item. Timed from ingest to the last alert. Cold:
/// the worker starts with the logs, so reading and compiling the stored rules is in the time
/// (as loading them is in `hunt`'s); warm: a worker that has run a job before (as `serve`'s
/// has), its rules compiled.
fn platform_detection(rules: &Path, files: &[PathBuf], warm: bool) -> Result<PlatformRun> {
    use bletchley_detect::job::{ALERT, RuleCache, rules_collection};
    use bletchley_store::{IngestOptions, NewItem};
    let dir = tempfile::tempdir()?;
    let mut p = crate::bench::bench_platform(&dir.path().join("data"))?;
    p.add_collection("mi5/logs", false)?;
    p.add_collection(&rules_collection("mi5"), false)?;
    let opts = |c: &str, m: &str| -> Result<IngestOptions> {
        Ok(IngestOptions {
            collection: c.to_owned(),
            marking: bletchley_policy::Marking::parse(m)?,
            authority: None,
            retain_until_ms: None,
            justification: None,
            priority: Default::default(),
        })
    };
    let mut rule_items = Vec::new();
    let mut stack = vec![rules.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)?.flatten() {
            let path = e.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "yml") {
                rule_items.push(NewItem {
                    title: e.file_name().to_string_lossy().into_owned(),
                    content: std::fs::read(&path)?,
                });
            }
        }
    }
    let n_rules = rule_items.len();
    bletchley_index::ingest::ingest(
        &mut p,
        "alice",
        &opts(&rules_collection("mi5"), "OFFICIAL")?,
        rule_items,
    )?;
    let mut logs = Vec::new();
    for f in files {
        logs.push(NewItem {
            title: f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            content: std::fs::read(f)?,
        });
    }
    let worker = bletchley_ai::pipeline::WorkerOptions {
        model_dir: None,
        weights: bletchley_ai::WeightFormat::F16,
        beam_size: 1,
        device: None,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut cache = RuleCache::default();
    if warm {
        // One log hunted first, in a collection of its own, so the rules are compiled.
        p.add_collection("mi5/warm-up", false)?;
        bletchley_index::ingest::ingest(
            &mut p,
            "alice",
            &opts("mi5/warm-up", "SECRET")?,
            logs.iter().take(1).cloned().collect(),
        )?;
        bletchley_ai::pipeline::work(
            &mut p,
            &worker,
            true,
            &stop,
            &mut crate::detect::other_jobs(&mut cache),
            &mut |_| {},
        )?;
    }
    let t = Instant::now();
    let mut jobs = 0;
    for chunk in logs.chunks(64) {
        jobs += bletchley_index::ingest::ingest(
            &mut p,
            "alice",
            &opts("mi5/logs", "SECRET")?,
            chunk.to_vec(),
        )?
        .jobs
        .len();
    }
    let ingested = t.elapsed().as_secs_f64();
    let summary = bletchley_ai::pipeline::work(
        &mut p,
        &worker,
        true,
        &stop,
        &mut crate::detect::other_jobs(&mut cache),
        &mut |_| {},
    )?;
    let secs = t.elapsed().as_secs_f64();
    let alerts = p
        .list("alice", Some("mi5/logs"), None)?
        .items
        .iter()
        .filter(|m| m.derivation.as_deref() == Some(ALERT))
        .count();
    Ok(PlatformRun {
        secs,
        ingested,
        jobs,
        done: summary.done,
        rules: n_rules,
        alerts,
    })
}

/// One run of detection inside the platform.
struct PlatformRun {
    /// From the first ingest to the last alert stored.
    secs: f64,
    /// The ingest alone.
    ingested: f64,
    /// Detection jobs queued.
    jobs: usize,
    /// Jobs done.
    done: usize,
    /// Rule files stored.
    rules: usize,
    /// Alerts stored.
    alerts: usize,
}
