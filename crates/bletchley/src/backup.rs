//! `backup` and `restore`: the data directory copied, sealed, to another place, and
//! brought back into an empty one.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow};
use bletchley_store::Platform;
use bletchley_store::platform::backup_generations;
use bletchley_store::residency::Jurisdiction;

use crate::commands::fmt_time;
use crate::unlock::EnvUnlock;

/// Writes a new backup generation into `dest`.
pub fn backup(
    p: &mut Platform,
    dest: &Path,
    jurisdiction: &str,
    keep: Option<usize>,
    json: bool,
) -> Result<ExitCode> {
    let j = Jurisdiction::parse(jurisdiction)?;
    let r = p
        .backup(dest, &j, keep)
        .with_context(|| format!("backing up into {}", dest.display()))?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "backup generation {} in {}: {} items, {} objects ({} new, {} bytes copied), {} files; verified",
            r.generation,
            dest.display(),
            r.items,
            r.objects,
            r.objects_copied,
            r.bytes_copied,
            r.files
        );
        for g in &r.pruned {
            println!("removed older generation {g}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Lists a backup's generations.
pub fn list(src: &Path, json: bool) -> Result<ExitCode> {
    let gens = backup_generations(src).with_context(|| format!("reading {}", src.display()))?;
    if json {
        println!("{}", serde_json::to_string(&gens)?);
    } else {
        for g in gens {
            println!(
                "{}\t{}\t{}\t{} items\t{} objects",
                g.name,
                fmt_time(g.created_ms),
                g.jurisdiction,
                g.items,
                g.objects
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Restores a generation of `src` into the empty directory `root`.
pub fn restore(
    root: &Path,
    src: &Path,
    generation: Option<&str>,
    locations: &[String],
    json: bool,
) -> Result<ExitCode> {
    let remap: Vec<(String, PathBuf)> = locations
        .iter()
        .map(|l| {
            l.split_once('=')
                .filter(|(n, p)| !n.is_empty() && !p.is_empty())
                .map(|(n, p)| (n.to_owned(), PathBuf::from(p)))
                .ok_or_else(|| anyhow!("--location {l:?}: write it as NAME=PATH"))
        })
        .collect::<Result<_>>()?;
    let (_, r) = Platform::restore(src, root, generation, &remap, Box::new(EnvUnlock))
        .with_context(|| format!("restoring {} into {}", src.display(), root.display()))?;
    if json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!(
            "restored generation {} (taken {}) into {}: {} items, {} objects",
            r.generation,
            fmt_time(r.created_ms),
            root.display(),
            r.items,
            r.objects
        );
        for (name, to) in &r.relocated {
            println!("location {name} now rests at {}", to.display());
        }
        println!(
            "items shredded after this generation was taken are back: shred them again if they must stay destroyed"
        );
    }
    Ok(ExitCode::SUCCESS)
}
