//! Speech commands: models, one-off transcription, and (with a data directory) the job queue.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bletchley_ai::format::{Format, render};
use bletchley_ai::{AudioStream, SpeechModel, Task, TranscribeOptions, WeightFormat, models};
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{DecodeArgs, ModelsCmd, TranscribeArgs};

/// `models fetch|list`.
pub fn models(cmd: &ModelsCmd) -> Result<ExitCode> {
    match cmd {
        ModelsCmd::Fetch { names, dir } => {
            let dir = dir.clone().unwrap_or_else(models::default_dir);
            let installed = models::fetch(&dir, names, &mut |line| eprintln!("{line}"))?;
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
        ModelsCmd::List { dir, verify, json } => {
            let dir = dir.clone().unwrap_or_else(models::default_dir);
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
                        .map(|f| format!("{f:?}"))
                        .unwrap_or_else(|| "not a model".into());
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

/// The model directory decoding uses.
pub fn model_dir(decode: &DecodeArgs) -> Result<PathBuf> {
    match &decode.model {
        Some(d) => Ok(d.clone()),
        None => Ok(models::speech_model_dir(
            &models::default_dir(),
            models::DEFAULT_SPEECH_MODEL,
        )?),
    }
}

/// Loads the model a command asked for.
pub fn load_model(decode: &DecodeArgs) -> Result<SpeechModel> {
    let weights = match decode.weights.as_str() {
        "f32" => WeightFormat::F32,
        "int8" => WeightFormat::Int8,
        other => bail!("unknown --weights {other:?}: use f32 or int8"),
    };
    let dir = model_dir(decode)?;
    SpeechModel::load(&dir, weights).with_context(|| format!("loading {}", dir.display()))
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
    let model = load_model(&a.decode)?;
    let opts = TranscribeOptions {
        task,
        language: a.language.clone(),
        beam_size: a.decode.beam_size,
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
    print!("{}", render(&transcript, format));
    Ok(ExitCode::SUCCESS)
}
