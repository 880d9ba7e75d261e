//! Fuzzing of every decoder that reads bytes from outside the platform: bundles and sync frames
//! from field sites, identity files, audit checkpoints, verifier keys and the log file from the
//! host, documents, archives and search queries from principals, audio containers and model files
//! from uploads and operators, and security banners from everyone.
//!
//! The stable toolchain offers no coverage instrumentation that a fuzzer can read, so this is
//! not coverage-guided. It is mutation-based from valid seeds (each target's crate builds real
//! inputs: a framed bundle, a signed checkpoint, a nested archive, a WAV, a model file), with
//! outcome feedback: an input that makes the decoder answer in a way not seen before (another
//! error, another kind of success) joins the corpus, so mutation reaches past the first check.
//! A panic, or an input that takes longer than [`SLOW`], is a finding: it is written under
//! `regressions/<target>/` and replayed by the test suite from then on.

mod mutate;
mod targets;

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use mutate::Rng;
pub use targets::{TARGETS, Target};

/// An input that takes longer than this to decode is a finding (a decoder must not hang).
pub const SLOW: Duration = Duration::from_secs(5);

/// Largest input the mutator makes.
pub const MAX_INPUT: usize = 256 * 1024;

/// Most inputs a target's corpus keeps.
const MAX_CORPUS: usize = 512;

/// What one run of a target found.
#[derive(Debug)]
pub struct Report {
    /// The target's name.
    pub target: &'static str,
    /// Inputs tried.
    pub execs: u64,
    /// Distinct outcomes seen.
    pub outcomes: usize,
    /// Inputs kept in the corpus at the end.
    pub corpus: usize,
    /// Panics and slow inputs, each written to a file.
    pub findings: Vec<Finding>,
}

/// A panic or a slow input.
#[derive(Debug)]
pub struct Finding {
    /// `panic` or `slow`.
    pub kind: &'static str,
    /// The panic's message, or how long it took.
    pub message: String,
    /// Where the input was written.
    pub path: PathBuf,
}

/// Runs `input` through `target`, catching a panic: `Ok(outcome)` or `Err(panic message)`.
pub fn run_one(target: &Target, input: &[u8]) -> Result<String, String> {
    catch_unwind(AssertUnwindSafe(|| (target.run)(input))).map_err(|e| {
        e.downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "a panic without a message".into())
    })
}

/// Silences the default panic printout while fuzzing (every panic is reported as a finding);
/// call once per process.
pub fn quiet_panics() {
    std::panic::set_hook(Box::new(|_| {}));
}

/// Fuzzes `target` for `budget`, from its seeds and any inputs kept under
/// `regressions/<target>`, writing findings under `findings/<target>/`.
pub fn fuzz(
    target: &Target,
    budget: Duration,
    seed: u64,
    regressions: &Path,
    findings: &Path,
) -> std::io::Result<Report> {
    let mut rng = Rng::new(seed ^ fnv(target.name));
    let mut corpus: Vec<Vec<u8>> = (target.seeds)();
    corpus.extend(kept_inputs(&regressions.join(target.name))?);
    if corpus.is_empty() {
        corpus.push(Vec::new());
    }
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut report = Report {
        target: target.name,
        execs: 0,
        outcomes: 0,
        corpus: 0,
        findings: Vec::new(),
    };
    let mut found_messages: Vec<String> = Vec::new();
    let start = Instant::now();
    let mut i = 0usize;
    loop {
        // Seeds first as they are, then mutants.
        let input = if i < corpus.len() && report.execs < corpus.len() as u64 {
            corpus[i].clone()
        } else {
            let base = &corpus[rng.below(corpus.len())];
            let other = &corpus[rng.below(corpus.len())];
            mutate::mutate(&mut rng, base, other, MAX_INPUT)
        };
        i += 1;
        let t = Instant::now();
        let result = run_one(target, &input);
        let took = t.elapsed();
        report.execs += 1;
        match result {
            Ok(outcome) => {
                if took > SLOW {
                    let message = format!("took {:.1} s", took.as_secs_f64());
                    report
                        .findings
                        .push(keep(findings, target.name, "slow", message, &input)?);
                }
                let n = seen.entry(outcome).or_insert(0);
                if *n == 0 && corpus.len() < MAX_CORPUS {
                    corpus.push(input);
                }
                *n += 1;
            }
            Err(message) => {
                // One file per distinct panic message: the same bug found again is not news.
                // Messages quote the input and its offsets (`byte index 3 ... of `…``):
                // those are cut and digits folded, so one bug is one finding.
                let key: String = message
                    .split(" of `")
                    .next()
                    .unwrap_or_default()
                    .chars()
                    .map(|c| if c.is_ascii_digit() { '#' } else { c })
                    .take(120)
                    .collect();
                if !found_messages.contains(&key) {
                    found_messages.push(key);
                    report
                        .findings
                        .push(keep(findings, target.name, "panic", message, &input)?);
                }
            }
        }
        if start.elapsed() >= budget {
            break;
        }
    }
    report.outcomes = seen.len();
    report.corpus = corpus.len();
    Ok(report)
}

/// The inputs kept for a target (regression files), in name order.
pub fn kept_inputs(dir: &Path) -> std::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    if !dir.exists() {
        return Ok(out);
    }
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    paths.sort();
    for p in paths {
        out.push(std::fs::read(p)?);
    }
    Ok(out)
}

fn keep(
    findings: &Path,
    target: &str,
    kind: &'static str,
    message: String,
    input: &[u8],
) -> std::io::Result<Finding> {
    use sha2::{Digest, Sha256};
    let dir = findings.join(target);
    std::fs::create_dir_all(&dir)?;
    let name = hex::encode(&Sha256::digest(input)[..8]);
    let path = dir.join(format!("{kind}-{name}.bin"));
    std::fs::write(&path, input)?;
    std::fs::write(path.with_extension("txt"), &message)?;
    Ok(Finding {
        kind,
        message,
        path,
    })
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
