//! Speech commands: models, one-off transcription, and (with a data directory) the job queue.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bletchley_ai::follow;
use bletchley_ai::format::{Format, render, render_from};
use bletchley_ai::pipeline::{self, WorkerEvent, WorkerOptions};
use bletchley_ai::{AudioStream, SpeechModel, Task, TranscribeOptions, WeightFormat, models};
use bletchley_store::{JobState, Platform};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{DecodeArgs, ModelsCmd, TranscribeArgs, TranscriptArgs};

/// `models fetch|list`.
pub fn models(cmd: &ModelsCmd) -> Result<ExitCode> {
    match cmd {
        ModelsCmd::Fetch { names, dir } => {
            let dir = dir.clone().unwrap_or_else(default_models_dir);
            let python = std::env::var("BLETCHLEY_PYTHON").unwrap_or_else(|_| "python3".into());
            let installed = models::fetch(&dir, names, &python, &mut |line| eprintln!("{line}"))?;
            for m in installed {
                println!(
                    "{}\t{}\t{:.1} MB\t{}",
                    m.name,
                    m.dir.display(),
                    m.bytes as f64 / 1e6,
                    m.packages.join(" + ")
                );
            }
        }
        ModelsCmd::Import { from, name, dir } => {
            let dir = dir.clone().unwrap_or_else(default_models_dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let name = match name {
                Some(n) => n.clone(),
                None => from
                    .canonicalize()
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                    .with_context(|| {
                        format!("{} has no directory name: pass --name", from.display())
                    })?,
            };
            let m = models::import(&dir, from, &name)
                .with_context(|| format!("importing {}", from.display()))?;
            println!(
                "{}\t{}\t{}\t{:.1} MB",
                m.name,
                m.kind,
                m.dir.display(),
                m.bytes as f64 / 1e6
            );
        }
        ModelsCmd::List { dir, verify, json } => {
            let dir = dir.clone().unwrap_or_else(default_models_dir);
            let found = models::list(&dir, *verify)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&found)?);
            } else if found.is_empty() {
                println!(
                    "no models in {}: run `bletchley models fetch`",
                    dir.display()
                );
            } else {
                for m in found {
                    let format = m
                        .format
                        .map(|f| format!("speech, {f:?}"))
                        .unwrap_or_else(|| m.kind.into());
                    let check = match m.verified {
                        Some(true) => "\tverified",
                        Some(false) => "\tDAMAGED: refetch",
                        None => "",
                    };
                    println!(
                        "{}\t{format}\t{:.1} MB\t{}{check}",
                        m.name,
                        m.bytes as f64 / 1e6,
                        m.dir.display()
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where models live: `BLETCHLEY_MODELS`, else the user's cache.
pub fn default_models_dir() -> PathBuf {
    models::dir_from_env()
}

/// Applies `BLETCHLEY_JOB_LEASE_SECS` (how long a silent worker keeps a job).
pub fn configure_jobs(p: &mut Platform) {
    if let Some(secs) = std::env::var("BLETCHLEY_JOB_LEASE_SECS")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|&s| s > 0)
    {
        p.set_job_lease_ms(secs * 1000);
    }
}

/// The model directory decoding uses.
pub fn model_dir(decode: &DecodeArgs) -> Result<PathBuf> {
    match &decode.model {
        Some(d) => Ok(d.clone()),
        None => Ok(models::speech_model_dir(
            &default_models_dir(),
            models::DEFAULT_SPEECH_MODEL,
        )?),
    }
}

/// Loads the model a command asked for.
pub fn load_model(decode: &DecodeArgs) -> Result<SpeechModel> {
    let weights = weights(decode)?;
    let dir = model_dir(decode)?;
    SpeechModel::load_named(&dir, weights, decode.device.as_deref())
        .with_context(|| format!("loading {}", dir.display()))
}

/// A progress bar on standard error when it is a terminal.
pub fn progress_bar(label: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} s of audio ({eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(label.to_owned());
    Some(bar)
}

/// `transcribe FILE`.
pub fn transcribe(a: &TranscribeArgs) -> Result<ExitCode> {
    let task: Task = a.task.parse()?;
    let format: Format = a.format.parse()?;
    if a.decode.beam_size == 0 {
        bail!("--beam-size must be at least 1");
    }
    let mut audio =
        AudioStream::open(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let loading = std::time::Instant::now();
    let model = load_model(&a.decode)?;
    let load_s = loading.elapsed().as_secs_f64();
    let opts = TranscribeOptions {
        task,
        language: a.language.clone(),
        beam_size: a.decode.beam_size,
        word_timestamps: a.word_timestamps,
        ..TranscribeOptions::default()
    };
    let bar = progress_bar(&a.file.display().to_string());
    let transcript = model
        .transcribe(&mut audio, &opts, &mut |p| {
            if let Some(b) = &bar {
                b.set_length(p.known.round() as u64);
                b.set_position(p.done.round() as u64);
            }
        })
        .with_context(|| format!("transcribing {}", a.file.display()))?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if a.timings {
        let t = transcript.timing;
        eprintln!(
            "on {}: model load {load_s:.2} s; encoder {:.2} s over {} windows; decoder {:.2} s for {} tokens ({:.1} ms a token)",
            model.device_name(),
            t.encoder_s,
            t.windows,
            t.decoder_s,
            t.tokens,
            t.decoder_s * 1e3 / t.tokens.max(1) as f64
        );
    }
    print!("{}", render(&transcript, format));
    Ok(ExitCode::SUCCESS)
}

/// A text file whole, refused with the offset of its first bad byte when it is not UTF-8.
fn read_utf8(path: &std::path::Path) -> Result<String> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow::anyhow!(
            "{} is not UTF-8 text (first bad byte at {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// `translate FILE --from LANG`: a text into English with a Marian model or Apertium, no data
/// directory.
pub fn translate(a: &crate::cli::TranslateArgs) -> Result<ExitCode> {
    use bletchley_ai::translate::{Apertium, Engine, Limits};
    let text = read_utf8(&a.file)?;
    let limits = Limits {
        time: std::time::Duration::from_secs(a.timeout_secs.max(1)),
        ..Limits::default()
    };
    let english = if a.apertium {
        Apertium::detect(limits)?.translate(&text, &a.from)
    } else if let Some(m) = &a.model {
        // A path, or the name of an installed model.
        let dir = if m.is_dir() {
            m.clone()
        } else {
            default_models_dir().join(m)
        };
        bletchley_ai::translate::Marian::load(&dir, Some(&a.from))
            .with_context(|| format!("loading the Marian model {}", dir.display()))?
            .with_time_limit(limits.time)
            .translate(&text, &a.from)
    } else {
        bletchley_ai::translate::Engines::detect(limits, &default_models_dir())
            .translate(&text, &a.from)
            .map(|(english, _)| english)
    }
    .with_context(|| format!("translating {}", a.file.display()))?;
    print!("{english}");
    Ok(ExitCode::SUCCESS)
}

/// `embed FILE`: sentence vectors as JSON Lines, no data directory.
pub fn embed(a: &crate::cli::EmbedArgs) -> Result<ExitCode> {
    use bletchley_ai::embed::SentenceModel;
    let text = read_utf8(&a.file)?;
    let dir = match &a.model {
        Some(d) => d.clone(),
        None => {
            models::embedding_model_dir(&default_models_dir(), models::DEFAULT_EMBEDDING_MODEL)?
        }
    };
    let model = SentenceModel::load(&dir)
        .with_context(|| format!("loading the embedding model {}", dir.display()))?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    if a.chunks {
        let chunks = model.chunks(&text, a.overlap)?;
        if chunks.len() > a.max_chunks {
            bail!(
                "{} makes {} chunks, more than --max-chunks {}: nothing was embedded",
                a.file.display(),
                chunks.len(),
                a.max_chunks
            );
        }
        // Vectors are made a batch at a time, so a long document's memory stays bounded.
        for group in chunks.chunks(256) {
            let texts: Vec<&str> = group.iter().map(|c| c.text(&text)).collect();
            for (c, v) in group.iter().zip(model.embed(&texts)?) {
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({
                        "start": c.start, "end": c.end, "tokens": c.tokens, "vector": v
                    }),
                )?;
                std::io::Write::write_all(&mut out, b"\n")?;
            }
        }
    } else {
        let lines: Vec<&str> = text.lines().collect();
        for (first, group) in lines.chunks(256).enumerate() {
            for (i, v) in model.embed(group)?.into_iter().enumerate() {
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({ "line": first * 256 + i + 1, "vector": v }),
                )?;
                std::io::Write::write_all(&mut out, b"\n")?;
            }
        }
    }
    std::io::Write::flush(&mut out)?;
    Ok(ExitCode::SUCCESS)
}

/// `jobs`: the queue, operator view.
pub fn jobs(p: &mut Platform, actor: &bletchley_store::Actor, json: bool) -> Result<ExitCode> {
    let all = p.list_jobs(actor)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
        return Ok(ExitCode::SUCCESS);
    }
    if all.is_empty() {
        println!("no jobs");
    }
    for j in &all {
        println!(
            "{}\t{}\t{}\t{:>3.0}%\tattempt {}/{}\t{}\tby {}{}",
            j.id,
            j.kind,
            j.state.as_str(),
            j.progress * 100.0,
            j.attempts,
            j.max_attempts,
            j.item,
            j.principal,
            j.error
                .as_deref()
                .map(|e| format!("\t{e}"))
                .unwrap_or_default()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn weights(decode: &DecodeArgs) -> Result<WeightFormat> {
    Ok(match decode.weights.as_str() {
        "f16" => WeightFormat::F16,
        "f32" => WeightFormat::F32,
        "int8" => WeightFormat::Int8,
        other => bail!("unknown --weights {other:?}: use f16, f32 or int8"),
    })
}

/// Runs queued jobs beside the server, on its own platform handle (the audit log serialises
/// writers across handles). Without a speech model, transcription jobs wait (and the operator
/// is told why) while detection jobs run.
pub fn start_background_worker(data: PathBuf) {
    let model_dir =
        match models::speech_model_dir(&default_models_dir(), models::DEFAULT_SPEECH_MODEL) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("note: transcription jobs will wait: {e}");
                None
            }
        };
    let spawned = std::thread::Builder::new()
        .name("jobs".into())
        .spawn(move || {
            let mut p = match Platform::open(&data, Box::new(crate::unlock::EnvUnlock)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: job worker: {e}");
                    return;
                }
            };
            configure_jobs(&mut p);
            let opts = WorkerOptions {
                model_dir,
                weights: WeightFormat::F16,
                beam_size: 5,
                device: None,
            };
            let stop = std::sync::atomic::AtomicBool::new(false);
            let r = pipeline::work(
                &mut p,
                &opts,
                false,
                &stop,
                &mut crate::detect::other_jobs(&mut bletchley_detect::job::RuleCache::default()),
                &mut |e| match e {
                    WorkerEvent::Done(j, _) => eprintln!("job {} done", j.id),
                    WorkerEvent::Failed(j, err, _) => eprintln!("job {} failed: {err}", j.id),
                    _ => {}
                },
            );
            if let Err(e) = r {
                eprintln!("error: job worker stopped: {e}");
            }
        });
    if let Err(e) = spawned {
        eprintln!("error: cannot start the job worker: {e}");
    }
}

/// `work [--once]`: runs queued jobs with progress bars.
pub fn work(p: &mut Platform, once: bool, decode: &DecodeArgs) -> Result<ExitCode> {
    configure_jobs(p);
    // A model named on the command line must be there; the default one may be missing, and
    // then transcription jobs wait for a worker that has it while other jobs run.
    let dir = match (model_dir(decode), &decode.model) {
        (Ok(d), _) => Some(d),
        (Err(e), Some(_)) => return Err(e),
        (Err(e), None) => {
            eprintln!("note: transcription jobs will wait: {e}");
            None
        }
    };
    // A model that does not load, or a device that is not there, would fail every
    // transcription job: refuse before taking any.
    if let Some(dir) = &dir {
        bletchley_ai::whisper::detect_format(dir)?;
    }
    if let Some(name) = &decode.device {
        bletchley_ai::whisper::device_by_name(name)?;
    }
    let opts = WorkerOptions {
        model_dir: dir,
        weights: weights(decode)?,
        beam_size: decode.beam_size.max(1),
        device: decode.device.clone(),
    };
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut bar: Option<ProgressBar> = None;
    let summary = pipeline::work(
        p,
        &opts,
        once,
        &stop,
        &mut crate::detect::other_jobs(&mut bletchley_detect::job::RuleCache::default()),
        &mut |e| match e {
            WorkerEvent::Started(j) => {
                bar = progress_bar(&format!("job {} {}", j.id, j.item)).inspect(|b| {
                    b.set_style(
                        ProgressStyle::with_template("{msg} [{bar:40}] {percent}% ({eta} left)")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    b.set_length(1000);
                });
                if bar.is_none() {
                    eprintln!(
                        "job {}: {} {} (attempt {})",
                        j.id, j.kind, j.item, j.attempts
                    );
                }
            }
            WorkerEvent::Progress(_, f) => {
                if let Some(b) = &bar {
                    b.set_position((f * 1000.0) as u64);
                }
            }
            WorkerEvent::Done(j, results) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                println!("job {} done: {}", j.id, results.join(" "));
            }
            WorkerEvent::Deferred(j, why) => {
                eprintln!("job {} left for another worker: {why}", j.id);
            }
            WorkerEvent::Failed(j, err, state) => {
                if let Some(b) = bar.take() {
                    b.finish_and_clear();
                }
                eprintln!(
                    "job {} attempt {} failed ({}): {err}",
                    j.id,
                    j.attempts,
                    if state == JobState::Failed {
                        "given up"
                    } else {
                        "will retry"
                    }
                );
            }
        },
    )?;
    eprintln!(
        "{} jobs done, {} attempts failed",
        summary.done, summary.failed
    );
    Ok(if summary.failed > 0 && summary.done == 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// `transcript ID`: a recording's transcript or translation, read through the gate; while
/// its job runs, what the job has made so far (all of it as it comes with `--follow`).
pub fn transcript(p: &mut Platform, who: &str, a: &TranscriptArgs) -> Result<ExitCode> {
    let format: Format = a.format.parse()?;
    let justification = a.justification.as_deref();
    let derivation = if a.translation {
        pipeline::TRANSLATION
    } else {
        pipeline::TRANSCRIPT
    };
    // How often a follower asks again: each look is a gated, audited read.
    const POLL: std::time::Duration = std::time::Duration::from_secs(2);
    let mut written = 0usize;
    let mut said_marking = false;
    loop {
        // The recording is read through the gate first: a principal who may not see it
        // learns nothing more.
        let view = follow::transcription_view(p, who, &a.id, justification)?;
        let running = view.running();
        let shown = if a.translation {
            view.translation
        } else {
            view.transcript
        };
        let marking = shown
            .as_ref()
            .and_then(|s| s.marking.clone())
            .or_else(|| view.recording.as_ref().map(|m| m.marking.clone()))
            .unwrap_or_default();
        let title = view
            .recording
            .as_ref()
            .map(|m| m.title.clone())
            .unwrap_or_default();
        let job_state = |j: &bletchley_store::Job| {
            format!(
                "job {} is {} ({:.0}%){}",
                j.id,
                j.state.as_str(),
                j.progress * 100.0,
                j.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            )
        };
        let Some(shown) = shown else {
            match (&view.job, a.follow && running) {
                (Some(_), true) => {
                    std::thread::sleep(POLL);
                    continue;
                }
                (Some(j), false) => bail!("no {derivation} of {} yet: {}", a.id, job_state(j)),
                (None, _) => bail!("{} ({title}) has no {derivation}", a.id),
            }
        };
        if !a.follow {
            if format != Format::Json {
                eprintln!("{marking}");
            }
            print!("{}", render(&shown.transcript, format));
            if format != Format::Json {
                eprintln!("{marking}");
            }
            if shown.item.is_none()
                && let Some(j) = &view.job
            {
                eprintln!(
                    "partial: {}; --follow writes the rest as it comes",
                    job_state(j)
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        if !said_marking && format != Format::Json {
            eprintln!("{marking}");
            said_marking = true;
        }
        // A job that started again (its worker died) makes its segments anew: what is
        // written stays written, and only what goes past it is new.
        let segments = shown.transcript.segments.len();
        if segments > written {
            print!("{}", render_from(&shown.transcript, written, format));
            std::io::Write::flush(&mut std::io::stdout())?;
            written = segments;
        }
        if shown.item.is_some() || !running {
            if format != Format::Json {
                eprintln!("{marking}");
            }
            if shown.item.is_none()
                && let Some(j) = &view.job
            {
                bail!(
                    "the {derivation} of {} is incomplete: {}",
                    a.id,
                    job_state(j)
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        std::thread::sleep(POLL);
    }
}
