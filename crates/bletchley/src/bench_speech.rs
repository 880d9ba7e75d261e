//! `bench --only speech`: real-time factor of transcription against faster-whisper on the same
//! audio and model in the same run, peak memory of one job, and job-queue throughput.
//!
//! Speech is synthesised with espeak-ng from `crates/bletchley/tests/data/speech/` (20 sentences, 0.4 s
//! apart, as the reference figures were measured). faster-whisper runs from the Python named by
//! `BLETCHLEY_FASTER_WHISPER_PYTHON` (or `~/.cache/bletchley/fw/bin/python`); without it the
//! reference columns say so.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bletchley_ai::pipeline::{self, WorkerOptions};
use bletchley_ai::{AudioStream, SpeechModel, Task, TranscribeOptions, WeightFormat, models};
use bletchley_policy::Marking;
use bletchley_store::{IngestOptions, NewItem};

/// The test sentences, from the repository root (where the benchmark runs).
fn speech_dir() -> PathBuf {
    PathBuf::from("crates/bletchley/tests/data/speech")
}

fn run(cmd: &mut Command) -> Result<()> {
    let st = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("{cmd:?}"))?;
    if !st.success() {
        bail!("{cmd:?} failed");
    }
    Ok(())
}

/// Sentences of both files of a language, spoken 0.4 s apart at 16 kHz.
fn recording(dir: &Path, voice: &str, files: &[&str]) -> Result<(PathBuf, f64)> {
    let mut lines = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(speech_dir().join(f))
            .with_context(|| format!("{} (run from the repository root)", f))?;
        lines.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(str::to_owned),
        );
    }
    let mut parts = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let raw = dir.join(format!("{voice}-raw{i}.wav"));
        run(Command::new("espeak-ng")
            .args(["-v", voice, "-s", "160", "-w"])
            .arg(&raw)
            .arg(l))
        .context("espeak-ng (Debian package espeak-ng)")?;
        let clip = dir.join(format!("{voice}-{i}.wav"));
        run(Command::new("sox")
            .arg("-R")
            .arg(&raw)
            .args(["-r", "16000", "-c", "1"])
            .arg(&clip))
        .context("sox (Debian package sox)")?;
        let gap = dir.join(format!("{voice}-gap{i}.wav"));
        run(Command::new("sox")
            .arg("-R")
            .args(["-n", "-r", "16000", "-c", "1"])
            .arg(&gap)
            .args(["trim", "0", "0.4"]))?;
        parts.push(clip);
        parts.push(gap);
    }
    let out = dir.join(format!("{voice}.wav"));
    run(Command::new("sox").arg("-R").args(&parts).arg(&out))?;
    let secs = (std::fs::metadata(&out)?.len().saturating_sub(44)) as f64 / 32_000.0;
    Ok((out, secs))
}

fn faster_whisper_python() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("BLETCHLEY_FASTER_WHISPER_PYTHON") {
        return Some(PathBuf::from(p));
    }
    let home = std::env::var_os("HOME")?;
    let p = PathBuf::from(home).join(".cache/bletchley/fw/bin/python");
    p.exists().then_some(p)
}

const FW_SCRIPT: &str = r#"
import sys, time, statistics
from faster_whisper import WhisperModel
model_dir, compute, beam, reps, task, lang, audio = sys.argv[1:8]
m = WhisperModel(model_dir, device="cpu", compute_type=compute, cpu_threads=2)
times = []
for _ in range(int(reps)):
    t = time.perf_counter()
    segs, info = m.transcribe(audio, beam_size=int(beam), task=task, language=lang or None)
    text = " ".join(s.text for s in segs)
    times.append(time.perf_counter() - t)
print(statistics.median(times))
"#;

fn faster_whisper(
    python: &Path,
    model: &Path,
    compute: &str,
    beam: usize,
    reps: usize,
    audio: &Path,
) -> Option<f64> {
    // The reference runs on the instruction set ours is forced to: CTranslate2 has its own
    // switch (otherwise it would use AVX-512 where ours is held to AVX2).
    let mut cmd = Command::new(python);
    match std::env::var("BLETCHLEY_ISA").as_deref() {
        Ok("avx2") => {
            cmd.env("CT2_FORCE_CPU_ISA", "AVX2");
        }
        Ok("scalar") => {
            cmd.env("CT2_FORCE_CPU_ISA", "GENERIC");
        }
        _ => {}
    }
    let out = cmd
        .args(["-c", FW_SCRIPT])
        .arg(model)
        .args([
            compute,
            &beam.to_string(),
            &reps.to_string(),
            "transcribe",
            "",
        ])
        .arg(audio)
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Peak resident memory of a child process, polled from /proc.
fn peak_rss_mib(mut cmd: Command) -> Result<f64> {
    let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn()?;
    let status = format!("/proc/{}/status", child.id());
    let mut peak = 0u64;
    loop {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(kb) = text
                .lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        {
            peak = peak.max(kb);
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(peak as f64 / 1024.0)
}

/// The CPU's model and the vector features that decide which kernels run, from
/// `/proc/cpuinfo` (figures are meaningless without them).
pub fn cpu_description() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        info.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_default()
    };
    let flags = field("flags");
    let have: Vec<&str> = [
        "avx2",
        "fma",
        "f16c",
        "avx_vnni",
        "avx512f",
        "avx512_vnni",
        "avx512_bf16",
        "avx512_fp16",
        "amx_bf16",
    ]
    .into_iter()
    .filter(|f| flags.split_whitespace().any(|x| x == *f))
    .collect();
    let model = field("model name");
    format!(
        "{} ({})",
        if model.is_empty() { "unknown" } else { &model },
        if have.is_empty() {
            "no AVX2".to_owned()
        } else {
            have.join(" ")
        }
    )
}

/// Runs the speech benchmark.
pub fn bench_speech(quick: bool) -> Result<()> {
    let model_dir = models::speech_model_dir(
        &crate::speech::default_models_dir(),
        models::DEFAULT_SPEECH_MODEL,
    )?;
    let dir = tempfile::tempdir()?;
    let (en, en_s) = recording(dir.path(), "en-us", &["en.txt", "en_extra.txt"])?;
    let (es, es_s) = recording(dir.path(), "es", &["es.txt", "es_extra.txt"])?;
    let reps = if quick { 1 } else { 3 };
    let fw = faster_whisper_python();
    if fw.is_none() {
        println!(
            "speech: reference missing: faster-whisper (set BLETCHLEY_FASTER_WHISPER_PYTHON to a Python with it, or: python3 -m venv ~/.cache/bletchley/fw && ~/.cache/bletchley/fw/bin/pip install faster-whisper); Bletchley's own times follow without ratios"
        );
    }
    println!(
        "speech: Whisper base, {} compute threads, median of {reps}; RTF = seconds per second of audio",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "all".into())
    );
    println!(
        "speech: CPU {}; kernels {} (BLETCHLEY_ISA={} forces a lower set)",
        cpu_description(),
        bletchley_ai::whisper::cpu_kernels(),
        std::env::var("BLETCHLEY_ISA").unwrap_or_else(|_| "unset".into())
    );
    // faster-whisper's times per (audio, beam), measured once and compared with every weight
    // format of ours.
    let mut references: std::collections::HashMap<(String, usize), Option<(f64, f64)>> =
        Default::default();
    // f32 is the reference precision, not a speed contender: the full run only.
    let formats: &[WeightFormat] = if quick {
        &[WeightFormat::F16, WeightFormat::Int8]
    } else {
        &[WeightFormat::F16, WeightFormat::F32, WeightFormat::Int8]
    };
    for &weights in formats {
        let model = SpeechModel::load(&model_dir, weights)?;
        for (name, audio, secs) in [("English", &en, en_s), ("Spanish", &es, es_s)] {
            for beam in [1usize, 5] {
                let mut times = Vec::new();
                let mut timing = Default::default();
                for _ in 0..reps {
                    let mut stream = AudioStream::open(audio)?;
                    let opts = TranscribeOptions {
                        task: Task::Transcribe,
                        beam_size: beam,
                        ..TranscribeOptions::default()
                    };
                    let t = Instant::now();
                    let tr = model.transcribe(&mut stream, &opts, &mut |_| {})?;
                    times.push(t.elapsed().as_secs_f64());
                    timing = tr.timing;
                }
                let ours = median(times);
                let reference = match &fw {
                    Some(py) => {
                        let measured =
                            references
                                .entry((name.to_owned(), beam))
                                .or_insert_with(|| {
                                    let int8 =
                                        faster_whisper(py, &model_dir, "int8", beam, reps, audio);
                                    let f32_ = faster_whisper(
                                        py, &model_dir, "float32", beam, reps, audio,
                                    );
                                    int8.zip(f32_)
                                });
                        match measured {
                            Some((i, f)) => format!(
                                "faster-whisper int8 {i:.2} s (ratio {:.2}), float32 {f:.2} s (ratio {:.2})",
                                ours / *i,
                                ours / *f
                            ),
                            None => "faster-whisper failed to run".into(),
                        }
                    }
                    None => "faster-whisper not installed: no reference".into(),
                };
                println!(
                    "  {name} {secs:.0} s, {weights:?}, {}: {ours:.2} s (RTF {:.3}; encoder {:.2} s over {} windows, decoder {:.2} s for {} tokens)   {reference}",
                    if beam == 1 { "greedy" } else { "beam 5" },
                    ours / secs,
                    timing.encoder_s,
                    timing.windows,
                    timing.decoder_s,
                    timing.tokens,
                );
            }
        }
    }
    // Peak memory of one one-off transcription (model included).
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(&exe);
    cmd.args(["transcribe", "--beam-size", "5"]).arg(&en);
    let rss = peak_rss_mib(cmd)?;
    println!("  peak memory of one transcription job (process, model included): {rss:.0} MiB");

    // Queue throughput: several recordings through ingest, the durable queue and one worker.
    let root = dir.path().join("data");
    let mut p = crate::bench::bench_platform(&root)?;
    p.add_collection("mi5/intercepts", false)?;
    let opts = IngestOptions {
        collection: "mi5/intercepts".into(),
        marking: Marking::parse("SECRET")?,
        authority: None,
        retain_until_ms: None,
        justification: None,
        priority: Default::default(),
    };
    let n = if quick { 2 } else { 4 };
    let mut audio_s = 0.0;
    let mut items = Vec::new();
    for i in 0..n {
        let (file, s) = if i % 2 == 0 { (&en, en_s) } else { (&es, es_s) };
        audio_s += s;
        items.push(NewItem {
            title: format!("call-{i}.wav"),
            content: std::fs::read(file)?,
        });
    }
    bletchley_index::ingest::ingest(&mut p, "alice", &opts, items)?;
    let worker = WorkerOptions {
        model_dir: Some(model_dir.clone()),
        weights: WeightFormat::F16,
        beam_size: 5,
        device: None,
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let t = Instant::now();
    let done = pipeline::work(
        &mut p,
        &worker,
        true,
        &stop,
        &mut |_, jobs| jobs.iter().map(|_| None).collect(),
        &mut |_| {},
    )?;
    let secs = t.elapsed().as_secs_f64();
    println!(
        "  job queue: {} recordings ({audio_s:.0} s of audio; transcript and translation each) in {secs:.1} s: {:.2} recordings/min, {:.2} s of audio per s",
        done.done,
        done.done as f64 * 60.0 / secs,
        audio_s / secs
    );
    Ok(())
}
