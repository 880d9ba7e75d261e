//! `bench --only embed`: sentence-embedding throughput against sentence-transformers (PyTorch)
//! with the same model, texts and threads, in the same run.
//!
//! Two workloads: short texts (the test sentences, one line each, as a query or a transcript
//! segment is) and ingest chunks (about 200 tokens, as `SentenceModel::chunks` cuts a document).
//! sentence-transformers runs from the Python named by `BLETCHLEY_SENTENCE_TRANSFORMERS_PYTHON`
//! (or `~/.cache/bletchley/st/bin/python`); without it the reference column says so.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bletchley_ai::embed::SentenceModel;
use bletchley_ai::models;

fn reference_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BLETCHLEY_SENTENCE_TRANSFORMERS_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".cache/bletchley/st/bin/python");
    p.is_file().then_some(p)
}

/// Texts of the two workloads, made from the test sentences.
fn workloads() -> Result<Vec<(&'static str, Vec<String>)>> {
    let dir = Path::new("crates/bletchley/tests/data/speech");
    let mut sentences = Vec::new();
    for f in ["en.txt", "en_extra.txt", "es.txt", "es_extra.txt"] {
        let text = std::fs::read_to_string(dir.join(f))
            .with_context(|| format!("{f} (run from the repository root)"))?;
        sentences.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    // Numbered so no two texts are the same.
    let short: Vec<String> = (0..1000)
        .map(|i| format!("{} ({i})", sentences[i % sentences.len()]))
        .collect();
    let chunks: Vec<String> = (0..200)
        .map(|i| {
            (0..12)
                .map(|j| sentences[(i * 7 + j) % sentences.len()].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    Ok(vec![("short texts", short), ("200-token chunks", chunks)])
}

const REFERENCE: &str = r#"
import json, statistics, sys, time
import torch
from sentence_transformers import SentenceTransformer
model_dir, texts_path, threads, reps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
texts = json.load(open(texts_path))
m = SentenceTransformer(model_dir, device="cpu")
m.encode(texts[:32], batch_size=32)
times = []
for _ in range(reps):
    t = time.perf_counter()
    m.encode(texts, batch_size=32)
    times.append(time.perf_counter() - t)
print(json.dumps({"seconds": statistics.median(times), "torch": torch.__version__}))
"#;

fn reference(
    python: &Path,
    model: &Path,
    texts: &[String],
    threads: usize,
    reps: usize,
) -> Result<(f64, String)> {
    let dir = tempfile::tempdir()?;
    let f = dir.path().join("texts.json");
    std::fs::write(&f, serde_json::to_vec(texts)?)?;
    let out = Command::new(python)
        .args(["-c", REFERENCE])
        .arg(model)
        .arg(&f)
        .arg(threads.to_string())
        .arg(reps.to_string())
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .with_context(|| format!("running {}", python.display()))?;
    if !out.status.success() {
        bail!(
            "sentence-transformers failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v: serde_json::Value = serde_json::from_slice(
        out.stdout
            .split(|b| *b == b'\n')
            .rfind(|l| !l.is_empty())
            .unwrap_or_default(),
    )?;
    Ok((
        v["seconds"].as_f64().unwrap_or(f64::NAN),
        v["torch"].as_str().unwrap_or_default().to_owned(),
    ))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Runs the embedding benchmark.
pub fn bench_embed(quick: bool) -> Result<()> {
    let dir = models::embedding_model_dir(
        &crate::speech::default_models_dir(),
        models::DEFAULT_EMBEDDING_MODEL,
    )?;
    let model = SentenceModel::load(&dir)?;
    let reps = if quick { 1 } else { 3 };
    // The threads our products run on (rayon's pool); the reference gets as many.
    let threads = std::env::var("RAYON_NUM_THREADS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    println!(
        "embed: {} ({} dimensions), {threads} threads, median of {reps}; CPU {}",
        models::DEFAULT_EMBEDDING_MODEL,
        model.dim(),
        crate::bench_speech::cpu_description()
    );
    let python = reference_python();
    if python.is_none() {
        println!(
            "embed: reference missing: sentence-transformers (set BLETCHLEY_SENTENCE_TRANSFORMERS_PYTHON to a Python with it, or: python3 -m venv ~/.cache/bletchley/st && ~/.cache/bletchley/st/bin/pip install sentence-transformers); Bletchley's own figures follow without ratios"
        );
    }
    for (name, texts) in workloads()? {
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        model.embed(&refs[..32.min(refs.len())])?;
        let mut times = Vec::new();
        for _ in 0..reps {
            let t = Instant::now();
            model.embed(&refs)?;
            times.push(t.elapsed().as_secs_f64());
        }
        let ours = texts.len() as f64 / median(times);
        match &python {
            Some(p) => {
                let (secs, torch) = reference(p, &dir, &texts, threads, reps)?;
                let theirs = texts.len() as f64 / secs;
                println!(
                    "embed {name:<18} {ours:>8.1} texts/s   sentence-transformers (torch {torch}) {theirs:.1} texts/s   ratio {:.2} (goal >= 1.5)",
                    ours / theirs
                );
            }
            None => println!("embed {name:<18} {ours:>8.1} texts/s"),
        }
    }
    Ok(())
}
