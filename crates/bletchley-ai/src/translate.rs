//! Document translation into English: an [`Engine`] trait and the engine every Debian
//! machine can have, Apertium's rule-based pairs, run as a child process held to a time and
//! a memory limit (its pairs are C++ programs fed text an adversary may have written: a
//! hang or a blow-up kills the child, never the platform).
//!
//! Apertium names languages by ISO 639-3 codes and each installed pair as a mode
//! (`spa-eng`); callers name them by the ISO 639-1 codes the rest of the platform uses.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// A translation engine: text in one language in, English out, paragraph for paragraph.
pub trait Engine {
    /// The engine's name, for messages and provenance.
    fn name(&self) -> &str;
    /// The source languages (ISO 639-1) it translates into English here.
    fn languages(&self) -> Vec<String>;
    /// Translates `text` from `from` (ISO 639-1) into English, keeping its line structure.
    fn translate(&self, text: &str, from: &str) -> Result<String>;
}

/// The pairs into English that Apertium packages in Debian, by ISO 639-1 code.
const PAIRS: [(&str, &str); 7] = [
    ("es", "spa"),
    ("ca", "cat"),
    ("gl", "glg"),
    ("eu", "eus"),
    ("sh", "hbs"),
    ("mk", "mkd"),
    ("is", "isl"),
];

/// The ISO 639-1 code of a source language named by its ISO 639-3 code (as language
/// detection names it), if an Apertium pair into English exists for it; Serbian, Croatian
/// and Bosnian are the one Serbo-Croatian pair.
pub fn source_language(iso3: &str) -> Option<&'static str> {
    match iso3 {
        "srp" | "hrv" | "bos" => Some("sh"),
        other => PAIRS
            .iter()
            .find(|(_, code)| *code == other)
            .map(|(iso1, _)| *iso1),
    }
}

/// Limits on one translation.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Wall-clock time for the whole text.
    pub time: Duration,
    /// Address space of the child, bytes.
    pub memory: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_secs(120),
            memory: 2 << 30,
        }
    }
}

/// Apertium's pairs into English, run through its `apertium` command.
#[derive(Clone, Debug)]
pub struct Apertium {
    program: PathBuf,
    modes: Vec<String>,
    limits: Limits,
}

impl Apertium {
    /// Finds `apertium` (`BLETCHLEY_APERTIUM`, else on `PATH`) and the pairs installed for it.
    pub fn detect(limits: Limits) -> Result<Apertium> {
        let program = std::env::var_os("BLETCHLEY_APERTIUM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("apertium"));
        let out = Command::new(&program)
            .arg("-l")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| {
                Error::Model(format!(
                    "apertium is not installed ({}: {e}): install Debian's apertium and a pair into English, e.g. apertium-en-es",
                    program.display()
                ))
            })?;
        // `apertium -l` lists the modes; it exits 0 or 1 depending on the version.
        let modes: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.trim().to_owned())
            .filter(|l| !l.is_empty())
            .collect();
        Ok(Apertium {
            program,
            modes,
            limits,
        })
    }

    fn mode(&self, from: &str) -> Result<String> {
        let code = PAIRS
            .iter()
            .find(|(iso1, _)| *iso1 == from)
            .map(|(_, iso3)| *iso3)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "Apertium translates none of {from:?} into English; its pairs are from {}",
                    PAIRS.map(|(c, _)| c).join(", ")
                ))
            })?;
        let mode = format!("{code}-eng");
        if !self.modes.contains(&mode) {
            return Err(Error::Model(format!(
                "the Apertium pair {mode} is not installed (installed: {}): install its Debian package",
                if self.modes.is_empty() {
                    "none".to_owned()
                } else {
                    self.modes.join(", ")
                }
            )));
        }
        Ok(mode)
    }
}

impl Engine for Apertium {
    fn name(&self) -> &str {
        "apertium"
    }

    fn languages(&self) -> Vec<String> {
        PAIRS
            .iter()
            .filter(|(_, iso3)| self.modes.contains(&format!("{iso3}-eng")))
            .map(|(iso1, _)| (*iso1).to_owned())
            .collect()
    }

    fn translate(&self, text: &str, from: &str) -> Result<String> {
        let mode = self.mode(from)?;
        if text.trim().is_empty() {
            return Ok(text.to_owned());
        }
        // The memory limit is the shell's (`ulimit -v`, KiB) on the process it becomes;
        // `-u` drops Apertium's marks on unknown words.
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("ulimit -v \"$1\" && shift && exec \"$@\"")
            .arg("sh")
            .arg((self.limits.memory / 1024).to_string())
            .arg(&self.program)
            .args(["-u", "-f", "txt", &mode])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Model(format!("starting apertium: {e}")))?;
        // Input and output move on threads of their own, so a child that stops reading or
        // writing cannot block the clock.
        let mut stdin = child.stdin.take();
        let input = text.as_bytes().to_vec();
        let writer = std::thread::spawn(move || {
            if let Some(s) = stdin.as_mut() {
                let _ = s.write_all(&input);
            }
        });
        let mut stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(s) = stdout.as_mut() {
                let _ = s.read_to_end(&mut out);
            }
            out
        });
        let mut stderr = child.stderr.take();
        let errors = std::thread::spawn(move || {
            let mut out = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(64 * 1024).read_to_end(&mut out);
            }
            out
        });
        let started = Instant::now();
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= self.limits.time => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(Error::Model(format!(
                        "apertium did not finish within {} s: killed",
                        self.limits.time.as_secs()
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => return Err(Error::Model(format!("waiting for apertium: {e}"))),
            }
        };
        let _ = writer.join();
        let out = reader.join().unwrap_or_default();
        let err = errors.join().unwrap_or_default();
        if !status.success() {
            return Err(Error::Model(format!(
                "apertium {mode} failed ({status}): {}",
                String::from_utf8_lossy(&err).trim()
            )));
        }
        String::from_utf8(out)
            .map_err(|_| Error::Model(format!("apertium {mode} wrote text that is not UTF-8")))
    }
}

/// The ISO 639-1 code of a language named by its ISO 639-3 code (as language detection names
/// it), for the languages detection knows; OPUS-MT models name their languages so.
pub fn iso639_1(iso3: &str) -> Option<&'static str> {
    const CODES: &[(&str, &str)] = &[
        ("afr", "af"),
        ("amh", "am"),
        ("ara", "ar"),
        ("aze", "az"),
        ("bel", "be"),
        ("ben", "bn"),
        ("bos", "bs"),
        ("bul", "bg"),
        ("cat", "ca"),
        ("ces", "cs"),
        ("cmn", "zh"),
        ("dan", "da"),
        ("deu", "de"),
        ("ell", "el"),
        ("epo", "eo"),
        ("est", "et"),
        ("eus", "eu"),
        ("fin", "fi"),
        ("fra", "fr"),
        ("glg", "gl"),
        ("guj", "gu"),
        ("heb", "he"),
        ("hin", "hi"),
        ("hrv", "hr"),
        ("hun", "hu"),
        ("hye", "hy"),
        ("ind", "id"),
        ("isl", "is"),
        ("ita", "it"),
        ("jpn", "ja"),
        ("kat", "ka"),
        ("kan", "kn"),
        ("khm", "km"),
        ("kor", "ko"),
        ("lat", "la"),
        ("lav", "lv"),
        ("lit", "lt"),
        ("mal", "ml"),
        ("mar", "mr"),
        ("mkd", "mk"),
        ("mya", "my"),
        ("nep", "ne"),
        ("nld", "nl"),
        ("nob", "no"),
        ("ori", "or"),
        ("pan", "pa"),
        ("pes", "fa"),
        ("fas", "fa"),
        ("pol", "pl"),
        ("por", "pt"),
        ("ron", "ro"),
        ("rus", "ru"),
        ("sin", "si"),
        ("slk", "sk"),
        ("slv", "sl"),
        ("sna", "sn"),
        ("spa", "es"),
        ("srp", "sr"),
        ("swe", "sv"),
        ("tam", "ta"),
        ("tel", "te"),
        ("tgl", "tl"),
        ("tha", "th"),
        ("tuk", "tk"),
        ("tur", "tr"),
        ("ukr", "uk"),
        ("urd", "ur"),
        ("uzb", "uz"),
        ("vie", "vi"),
        ("yid", "yi"),
        ("zul", "zu"),
        ("pus", "ps"),
        ("som", "so"),
        ("swa", "sw"),
        ("hau", "ha"),
    ];
    CODES
        .iter()
        .find(|(three, _)| *three == iso3)
        .map(|(_, one)| *one)
}

/// A Marian (OPUS-MT) model as an engine for its one source language into English.
pub struct Marian {
    model: crate::marian::MarianModel,
    from: String,
    time: Duration,
}

/// How long a Marian model may take over one text (ten minutes: a long report on two cores).
pub const MARIAN_TIME: Duration = Duration::from_secs(600);

impl Marian {
    /// Loads the model directory `dir`; its source language is the directory's
    /// (`tokenizer_config.json`), or `from` when it names none.
    pub fn load(dir: &std::path::Path, from: Option<&str>) -> Result<Marian> {
        let model = crate::marian::MarianModel::load(dir)?;
        let from = match (model.source_language(), from) {
            (Some(own), Some(asked)) if own != asked => {
                return Err(Error::Invalid(format!(
                    "{} translates from {own}, not {asked}",
                    dir.display()
                )));
            }
            (Some(own), _) => own.to_owned(),
            (None, Some(asked)) => asked.to_owned(),
            (None, None) => {
                return Err(Error::Model(format!(
                    "{}: its tokenizer_config.json names no source_lang: say which with --from",
                    dir.display()
                )));
            }
        };
        Ok(Marian {
            model,
            from,
            time: MARIAN_TIME,
        })
    }

    /// The same engine, stopped after `time` on one text.
    pub fn with_time_limit(mut self, time: Duration) -> Marian {
        self.time = time;
        self
    }
}

impl Engine for Marian {
    fn name(&self) -> &str {
        "marian"
    }

    fn languages(&self) -> Vec<String> {
        vec![self.from.clone()]
    }

    fn translate(&self, text: &str, from: &str) -> Result<String> {
        if from != self.from {
            return Err(Error::Invalid(format!(
                "the Marian model {} translates from {}, not {from}",
                self.model.dir().display(),
                self.from
            )));
        }
        let deadline = Instant::now() + self.time;
        self.model
            .translate_until(text, Some(deadline))
            .map(|t| t.text)
            .map_err(|e| match e {
                Error::TimeLimit(_) => Error::TimeLimit(format!(
                    "the Marian model did not finish within {:.1} s: stopped",
                    self.time.as_secs_f64()
                )),
                other => other,
            })
    }
}

/// The Marian models installed in a models directory that translate into English, by source
/// language (ISO 639-1): directories holding a Marian model whose `tokenizer_config.json`
/// names the source language and English as the target. Unreadable ones are left out here and
/// fail clearly when loaded.
pub fn installed_marian(models: &std::path::Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(models) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in entries.flatten() {
        let dir = e.path();
        if !crate::marian::is_marian(&dir) {
            continue;
        }
        let Some(config) = std::fs::read(dir.join("tokenizer_config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        else {
            continue;
        };
        let lang = |k: &str| config.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        if let (Some(from), Some(to)) = (lang("source_lang"), lang("target_lang"))
            && to == "en"
        {
            out.push((from, dir));
        }
    }
    out.sort();
    out
}

/// Every engine this machine has, chosen per language: an imported Marian model when there is
/// one for the language (an operator who brought one wants it), else Apertium's pair.
/// Marian models are loaded on first use and kept.
pub struct Engines {
    /// Apertium, or why it is not here.
    apertium: std::result::Result<Apertium, String>,
    /// How long a Marian model may take over one text.
    marian_time: Duration,
    marian: Vec<(String, PathBuf)>,
    loaded: std::sync::Mutex<std::collections::HashMap<String, std::sync::Arc<Marian>>>,
}

impl Engines {
    /// Apertium as [`Apertium::detect`] finds it (absent is not an error here) and the Marian
    /// models installed in `models`; `limits.time` bounds either engine's work on one text.
    pub fn detect(limits: Limits, models: &std::path::Path) -> Engines {
        Engines {
            apertium: Apertium::detect(limits).map_err(|e| e.to_string()),
            marian_time: limits.time,
            marian: installed_marian(models),
            loaded: Default::default(),
        }
    }

    /// The source languages (ISO 639-1) translated here, each with its engine's name.
    pub fn languages(&self) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &'static str)> = self
            .marian
            .iter()
            .map(|(l, _)| (l.clone(), "marian"))
            .collect();
        if let Ok(a) = &self.apertium {
            for l in a.languages() {
                if !out.iter().any(|(m, _)| *m == l) {
                    out.push((l, "apertium"));
                }
            }
        }
        out.sort();
        out
    }

    /// The language code (ISO 639-1) under which a text detected as `iso3` is translated here,
    /// if any engine takes it (Serbian, Croatian and Bosnian may go to Apertium's one
    /// Serbo-Croatian pair).
    pub fn source_for(&self, iso3: &str) -> Option<String> {
        let languages = self.languages();
        [iso639_1(iso3), source_language(iso3)]
            .into_iter()
            .flatten()
            .find(|c| languages.iter().any(|(l, _)| l == c))
            .map(str::to_owned)
    }

    /// Translates `text` from `from` with the engine for it; the engine's name with the text.
    pub fn translate(&self, text: &str, from: &str) -> Result<(String, &'static str)> {
        if let Some((_, dir)) = self.marian.iter().find(|(l, _)| l == from) {
            let engine = {
                let mut loaded = self
                    .loaded
                    .lock()
                    .map_err(|_| Error::Model("engine cache poisoned".into()))?;
                match loaded.get(from) {
                    Some(m) => std::sync::Arc::clone(m),
                    None => {
                        let m = std::sync::Arc::new(
                            Marian::load(dir, Some(from))?.with_time_limit(self.marian_time),
                        );
                        loaded.insert(from.to_owned(), std::sync::Arc::clone(&m));
                        m
                    }
                }
            };
            return Ok((engine.translate(text, from)?, "marian"));
        }
        match &self.apertium {
            Ok(a) => Ok((a.translate(text, from)?, "apertium")),
            Err(why) => Err(Error::Model(format!(
                "no Marian model for {from} is installed (`bletchley models import DIR` takes \
                 an OPUS-MT model), and {why}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_language_without_a_pair_is_named_with_the_ones_there_are() {
        let a = Apertium {
            program: PathBuf::from("apertium"),
            modes: vec!["spa-eng".into()],
            limits: Limits::default(),
        };
        assert_eq!(a.mode("es").ok().as_deref(), Some("spa-eng"));
        let e = a
            .mode("fa")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("\"fa\"") && e.contains("es, ca"), "{e}");
        let e = a
            .mode("ca")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("cat-eng is not installed") && e.contains("spa-eng"),
            "{e}"
        );
        assert_eq!(a.languages(), vec!["es".to_owned()]);
    }
}
