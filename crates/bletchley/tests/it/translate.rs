//! `bletchley translate`: Spanish into English with Debian's Apertium (installed by the test
//! command), scored by chrF computed here against the reference translations; an engine that
//! hangs is killed at its limit; bad input gets a clear error.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/speech")
        .join(name)
}

fn translate(args: &[&str], apertium: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bletchley"));
    c.arg("translate").args(args);
    if let Some(a) = apertium {
        c.env("BLETCHLEY_APERTIUM", a);
    } else {
        c.env_remove("BLETCHLEY_APERTIUM");
    }
    c.output().expect("run bletchley translate")
}

fn installed() -> bool {
    Command::new("apertium")
        .arg("-l")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("spa-eng"))
        .unwrap_or(false)
}

/// Character n-gram counts (n = 1..=6) of a text without its whitespace, as chrF counts.
fn ngrams(text: &str, n: usize) -> std::collections::HashMap<String, usize> {
    let chars: Vec<char> = text.chars().filter(|c| !c.is_whitespace()).collect();
    let mut out = std::collections::HashMap::new();
    for w in chars.windows(n) {
        *out.entry(w.iter().collect()).or_insert(0) += 1;
    }
    out
}

/// Corpus chrF (Popović 2015; β = 2, character n-grams up to 6, as sacreBLEU's default):
/// matches, hypothesis and reference counts summed over the sentences, precision and recall
/// averaged over n, then F_β.
fn chrf(hyps: &[String], refs: &[String]) -> f64 {
    let (mut p_sum, mut r_sum) = (0.0, 0.0);
    for n in 1..=6 {
        let (mut matched, mut hyp_total, mut ref_total) = (0usize, 0usize, 0usize);
        for (h, r) in hyps.iter().zip(refs) {
            let (hn, rn) = (ngrams(h, n), ngrams(r, n));
            hyp_total += hn.values().sum::<usize>();
            ref_total += rn.values().sum::<usize>();
            matched += hn
                .iter()
                .map(|(g, c)| (*c).min(*rn.get(g).unwrap_or(&0)))
                .sum::<usize>();
        }
        p_sum += matched as f64 / hyp_total.max(1) as f64;
        r_sum += matched as f64 / ref_total.max(1) as f64;
    }
    let (p, r) = (p_sum / 6.0, r_sum / 6.0);
    let beta2 = 4.0;
    if p + r == 0.0 {
        0.0
    } else {
        100.0 * (1.0 + beta2) * p * r / (beta2 * p + r)
    }
}

#[test]
fn chrf_is_the_reference_definition() {
    let same = vec!["the cat".to_owned()];
    assert!((chrf(&same, &same) - 100.0).abs() < 1e-9);
    assert_eq!(chrf(&["xyz".to_owned()], &["abc".to_owned()]), 0.0);
    // "ab" against "abc": 1-grams p 2/2 r 2/3, 2-grams p 1/1 r 1/2; 3-grams: none in the
    // hypothesis (p 0) and "abc" unmatched (r 0); higher n: nothing on either side.
    let p = (1.0 + 1.0) / 6.0;
    let r = (2.0 / 3.0 + 0.5) / 6.0;
    let want = 100.0 * 5.0 * p * r / (4.0 * p + r);
    assert!((chrf(&["ab".to_owned()], &["abc".to_owned()]) - want).abs() < 1e-9);
}

#[test]
fn spanish_sentences_are_translated_into_english_and_scored() {
    if !installed() {
        eprintln!(
            "SKIPPED: Apertium's spa-eng pair is not installed (scripts/test installs apertium and apertium-en-es)"
        );
        return;
    }
    let mut scores = Vec::new();
    for (es, en) in [("es.txt", "en.txt"), ("es_extra.txt", "en_extra.txt")] {
        let out = translate(&[data(es).to_str().expect("path"), "--from", "es"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let hyps: Vec<String> = String::from_utf8(out.stdout)
            .expect("utf-8")
            .lines()
            .map(str::to_owned)
            .collect();
        let refs: Vec<String> = std::fs::read_to_string(data(en))
            .expect("reference")
            .lines()
            .map(str::to_owned)
            .collect();
        assert_eq!(hyps.len(), refs.len(), "one line out for every line in");
        scores.push(chrf(&hyps, &refs));
    }
    eprintln!("Apertium spa-eng chrF: {scores:.1?}");
    // Measured with Debian bookworm's apertium-en-es 0.8.1: 77.2 and 69.8 (README).
    for s in &scores {
        assert!(*s >= 65.0, "chrF {s:.1}");
    }
}

#[test]
fn an_engine_that_hangs_is_killed_at_its_limit_and_bad_input_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A stand-in that lists the pair and then never answers.
    let fake = dir.path().join("apertium");
    std::fs::write(
        &fake,
        "#!/bin/sh\nif [ \"$1\" = -l ]; then echo spa-eng; exit 0; fi\nexec sleep 60\n",
    )
    .expect("write");
    let st = Command::new("chmod")
        .arg("+x")
        .arg(&fake)
        .status()
        .expect("chmod");
    assert!(st.success());
    let text = dir.path().join("in.txt");
    std::fs::write(&text, "Hola.\n").expect("write");
    let t = Instant::now();
    let out = translate(
        &[
            text.to_str().expect("path"),
            "--from",
            "es",
            "--timeout-secs",
            "2",
        ],
        Some(&fake),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("did not finish within 2 s: killed"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(out.stdout.is_empty());

    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, b"Hola \xff\xfe.").expect("write");
    let out = translate(&[bad.to_str().expect("path"), "--from", "es"], Some(&fake));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("is not UTF-8 text (first bad byte at 5)"),
        "{err}"
    );

    let out = translate(&[text.to_str().expect("path"), "--from", "fa"], Some(&fake));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Apertium translates none of \"fa\""), "{err}");

    let out = translate(&[text.to_str().expect("path"), "--from", "ca"], Some(&fake));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cat-eng is not installed (installed: spa-eng)"),
        "{err}"
    );

    let missing = dir.path().join("no-such-apertium");
    let out = translate(
        &[text.to_str().expect("path"), "--from", "es"],
        Some(&missing),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("apertium is not installed"), "{err}");
}

/// At ingest, once the operator turns translation on: a Spanish document gets an English
/// translation as a derived item at its marking, found by an English search, gone with its
/// document; English and French documents (no pair) get none, their jobs done all the same.
#[test]
fn documents_are_translated_at_ingest_into_derived_items_at_their_marking() {
    if !installed() {
        eprintln!(
            "SKIPPED: Apertium's spa-eng pair is not installed (scripts/test installs apertium and apertium-en-es)"
        );
        return;
    }
    let env = crate::common::Env::new();
    env.basic();
    env.add_principal("bob", "mi5", "SECRET", &["--roles", "analyst"]);
    let spanish = std::fs::read_to_string(data("es.txt")).expect("es.txt");
    let before = env.file("antes.txt", spanish.as_bytes());
    // Stored before it is on: not translated.
    env.ingest("alice", "mi5/ct", "SECRET", &[&before]);
    env.ok(&["translation", "enable"]);
    let es = env.file("informe.txt", spanish.as_bytes());
    let en = env.file(
        "report.txt",
        b"The meeting will take place on Tuesday morning at the central station.",
    );
    let fr = env.file(
        "rapport.txt",
        "La réunion aura lieu mardi matin à la gare centrale, avec tous les documents.".as_bytes(),
    );
    let ids = env.ingest("alice", "mi5/ct", "SECRET", &[&es, &en, &fr]);
    let source = ids[0].split_whitespace().next().expect("id").to_owned();
    env.ok(&["work", "--once"]);
    let jobs: serde_json::Value =
        serde_json::from_str(&env.ok(&["jobs", "--json"])).expect("jobs json");
    let jobs = jobs.as_array().expect("jobs");
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert!(jobs.iter().all(|j| j["state"] == "done"), "{jobs:?}");
    let items: serde_json::Value =
        serde_json::from_str(&env.ok(&["--as", "bob", "ls", "--json"])).expect("ls json");
    let items = items.as_array().expect("items");
    let translations: Vec<&serde_json::Value> = items
        .iter()
        .filter(|i| i["title"].as_str().is_some_and(|t| t.ends_with(".en.txt")))
        .collect();
    assert_eq!(translations.len(), 1, "{items:?}");
    assert_eq!(translations[0]["title"], "informe.txt.en.txt");
    assert_eq!(translations[0]["marking"], "SECRET");
    let id = translations[0]["id"].as_str().expect("id").to_owned();
    // Found in English: a phrase of the reference translation's first sentence.
    let found: serde_json::Value =
        serde_json::from_str(&env.ok(&["--as", "bob", "search", "meeting AND Tuesday", "--json"]))
            .expect("search json");
    let hits: Vec<&str> = found["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["id"].as_str().expect("id"))
        .collect();
    assert!(hits.contains(&id.as_str()), "{found}");
    // Its text reads as English: the reference's words, chrF against the reference.
    let text = env.ok(&["--as", "bob", "get", &id]);
    let reference = std::fs::read_to_string(data("en.txt")).expect("en.txt");
    let lines = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (hyps, refs) = (lines(&text), lines(&reference));
    assert_eq!(hyps.len(), refs.len(), "line for line: {text}");
    let score = chrf(&hyps, &refs);
    assert!(score > 60.0, "chrF {score}: {text}");
    // The console shows the document beside its translation, line by line.
    crate::server::set_password(&env, "bob");
    let srv = crate::server::Server::start(&env);
    let c = srv.client();
    srv.login(&c, "bob");
    let html = c
        .get(format!("{}/items/{source}", srv.url))
        .send()
        .expect("item page")
        .text()
        .expect("html");
    assert!(html.contains("id=\"side-by-side\""), "{html}");
    // Semantic search is off here: no "more like this".
    assert!(!html.contains("id=\"similar\""), "{html}");
    let first_es = spanish.lines().next().expect("a line");
    let first_en = hyps[0].as_str();
    assert!(
        html.contains(&format!("<tr><td>{first_es}</td><td>{first_en}</td></tr>")),
        "{html}"
    );
    drop(srv);
    // Shredding the document takes its translation.
    env.ok(&["--as", "boss", "shred", &source]);
    let after: serde_json::Value =
        serde_json::from_str(&env.ok(&["--as", "bob", "ls", "--json"])).expect("ls json");
    assert!(!after.to_string().contains(&id), "{after}");
    // Off again: nothing more is queued.
    env.ok(&["translation", "disable"]);
    env.ingest("alice", "mi5/ct", "SECRET", &[&es]);
    let jobs: serde_json::Value =
        serde_json::from_str(&env.ok(&["jobs", "--json"])).expect("jobs json");
    assert_eq!(jobs.as_array().expect("jobs").len(), 3);
}

/// The small Marian model of `bletchley-ai`'s tests and what `transformers` made of it.
fn marian_fixture() -> (PathBuf, serde_json::Value) {
    let dir =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../bletchley-ai/tests/fixtures/marian-tiny");
    let reference = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json")).expect("reference.json"),
    )
    .expect("json");
    (dir, reference)
}

/// An operator imports an OPUS-MT model (Hugging Face layout): `models list` shows it as a
/// translation model; `translate --from es` then uses it (`--apertium` does not), giving what
/// `transformers` gives on the same model; a model for another language is refused clearly;
/// and documents in its language are translated at ingest with it.
#[test]
fn an_imported_marian_model_translates_its_language_on_the_command_line_and_at_ingest() {
    let (fixture, reference) = marian_fixture();
    let case = &reference["cases"][1];
    let sentence = case["text"].as_str().expect("text");
    let expected = case["translation"].as_str().expect("translation");
    let t = tempfile::tempdir().expect("tempdir");
    let models = t.path().join("models");
    let bletchley = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_bletchley"))
            .env("BLETCHLEY_MODELS", &models)
            .args(args)
            .output()
            .expect("run bletchley")
    };
    let out = bletchley(&[
        "models",
        "import",
        fixture.to_str().expect("path"),
        "--name",
        "opus-mt-es-en-tiny",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = bletchley(&["models", "list", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("list json");
    assert_eq!(listed[0]["kind"], "translation", "{listed}");

    let file = t.path().join("frase.txt");
    std::fs::write(&file, format!("{sentence}\n")).expect("write");
    let path = file.to_str().expect("path");
    let out = bletchley(&["translate", path, "--from", "es"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), expected);
    // By name, and by directory: the same.
    for model in ["opus-mt-es-en-tiny", fixture.to_str().expect("path")] {
        let out = bletchley(&["translate", path, "--from", "es", "--model", model]);
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), expected);
    }
    let out = bletchley(&[
        "translate",
        path,
        "--from",
        "fr",
        "--model",
        "opus-mt-es-en-tiny",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("translates from es, not fr"), "{err}");
    if installed() {
        let out = bletchley(&["translate", path, "--from", "es", "--apertium"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_ne!(String::from_utf8_lossy(&out.stdout).trim_end(), expected);
    }

    // At ingest: the Spanish document is translated by the imported model.
    let env = crate::common::Env::new();
    env.basic();
    let with_models = |args: &[&str]| {
        let out = env
            .cmd(args)
            .env("BLETCHLEY_MODELS", &models)
            .output()
            .expect("run bletchley");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let said = {
        let out = env
            .cmd(&["translation", "enable"])
            .env("BLETCHLEY_MODELS", &models)
            .output()
            .expect("enable");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(said.contains("es (marian)"), "{said}");
    let doc = env.file("informe.txt", format!("{sentence}\n").as_bytes());
    env.ingest("alice", "mi5/ct", "SECRET", &[&doc]);
    with_models(&["work", "--once"]);
    let items: serde_json::Value =
        serde_json::from_str(&env.ok(&["--as", "alice", "ls", "--json"])).expect("ls json");
    let translation = items
        .as_array()
        .expect("items")
        .iter()
        .find(|i| i["title"] == "informe.txt.en.txt")
        .unwrap_or_else(|| panic!("a translation: {items}"));
    assert_eq!(translation["marking"], "SECRET");
    let text = env.ok(&[
        "--as",
        "alice",
        "get",
        translation["id"].as_str().expect("id"),
    ]);
    assert_eq!(text.trim_end(), expected);
}
