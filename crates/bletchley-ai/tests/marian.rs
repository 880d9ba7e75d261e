//! Marian models give what Hugging Face `transformers` gives: on a small model with random
//! weights and the real architecture (`tests/fixtures/marian-tiny`, made by
//! `scripts/marian-reference.py`), the same input ids from the same text, the same first-step
//! logits to 1e-4, the same greedy output ids and the same decoded text; a damaged model
//! directory is a clear error.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use bletchley_ai::marian::{DecodeLimits, MarianModel};
use serde_json::Value;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/marian-tiny")
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("ids")
        .iter()
        .map(|x| u32::try_from(x.as_u64().expect("id")).expect("u32"))
        .collect()
}

/// The tame weights with the fixture's tokenisers and configuration, in a directory of their
/// own.
fn tame() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(fixture()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, dir.path().join(p.file_name().unwrap())).unwrap();
        }
    }
    for f in ["model.safetensors", "reference.json"] {
        std::fs::copy(fixture().join("tame").join(f), dir.path().join(f)).unwrap();
    }
    dir
}

#[test]
fn tokens_and_greedy_output_equal_transformers() {
    // Large weights: every output token tests something; the logits are chaotic, so near
    // ties between beams may fall either way and beam search is compared on the tame model.
    compare_with_reference(&fixture(), 2e-2, false);
}

#[test]
fn logits_and_beam_search_equal_transformers() {
    // Small weights: the logits are met as closely as the reference writes them.
    let dir = tame();
    compare_with_reference(dir.path(), 1e-5, true);
}

fn compare_with_reference(dir: &Path, logit_tolerance: f64, beams: bool) {
    let model = MarianModel::load(dir).expect("the fixture loads");
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference.json")).expect("reference"),
    )
    .expect("json");
    let max_new = reference["max_new_tokens"].as_u64().unwrap() as usize;
    let cases = reference["cases"].as_array().unwrap();
    assert!(cases.len() >= 12);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let input = model.encode(text).expect("encode");
        assert_eq!(input, ids(&case["input_ids"]), "input ids of {text:?}");
        let logits = model.first_logits(&input).expect("logits");
        let want: Vec<f64> = case["first_logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert_eq!(logits.len(), want.len());
        let worst = logits
            .iter()
            .zip(&want)
            .map(|(a, b)| (f64::from(*a) - b).abs())
            .fold(0.0, f64::max);
        assert!(
            worst <= logit_tolerance,
            "first-step logits of {text:?} differ by {worst}"
        );
        let out = model
            .generate(
                &input,
                DecodeLimits {
                    max_new_tokens: max_new,
                },
            )
            .expect("generate");
        assert_eq!(out, ids(&case["output_ids"]), "output ids of {text:?}");
        assert_eq!(
            model.decode(&out),
            case["output_text"].as_str().unwrap(),
            "text of {text:?}"
        );
        // Beam search with four beams, as OPUS-MT models are run: the tame model's end token
        // is likelier, so some beams finish at once and others run to the limit.
        if beams {
            let out = model
                .generate_beam(
                    &input,
                    DecodeLimits {
                        max_new_tokens: max_new,
                    },
                    4,
                )
                .expect("beam search");
            assert_eq!(
                out,
                ids(&case["beam4_output_ids"]),
                "beam output of {text:?}"
            );
        }
        // Translated whole, with the limit `translate` sets (twice the input and ten).
        assert_eq!(
            model.translate(text).expect("translate").text,
            case["translation"].as_str().unwrap(),
            "translation of {text:?}"
        );
    }
}

#[test]
fn text_is_translated_line_for_line() {
    let model = MarianModel::load(&fixture()).expect("the fixture loads");
    let t = model
        .translate("Hola.\n\nLa reunión tendrá lugar el martes.\n")
        .expect("translate");
    assert_eq!(t.text.lines().count(), 3, "{t:?}");
    assert_eq!(t.text.lines().nth(1), Some(""));
    assert_eq!(t.split, 0);
    // A line longer than the model's window (64 tokens) is taken sentence by sentence, each
    // as it would be alone.
    let sentence = "La reunión tendrá lugar el martes por la mañana.";
    let alone = model.translate(sentence).expect("one sentence").text;
    let long = format!("{sentence} ").repeat(6);
    assert!(model.encode(&long).unwrap().len() > 64);
    let t = model.translate(&long).expect("long line");
    assert_eq!(t.split, 0, "each sentence fits");
    assert_eq!(t.text, [alone.as_str(); 6].join(" "));
    // A sentence longer than the window is translated a window at a time: nothing dropped.
    let words = "palabra ".repeat(200);
    let pieces = model.encode(&words).unwrap().len().div_ceil(63);
    let t = model.translate(&words).expect("run-on sentence");
    assert_eq!(t.split, 1);
    assert!(pieces >= 3, "{pieces}");
    assert_eq!(model.translate("").expect("empty").text, "");
}

#[test]
fn the_directory_chooses_beam_search() {
    // A directory whose generation configuration asks for four beams translates with them.
    let dir = tame();
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("reference.json")).expect("reference"),
    )
    .expect("json");
    std::fs::write(
        dir.path().join("generation_config.json"),
        br#"{"num_beams": 4, "max_length": 512}"#,
    )
    .unwrap();
    let model = MarianModel::load(dir.path()).expect("loads");
    let case = &reference["cases"][0];
    let text = case["text"].as_str().unwrap();
    let input = model.encode(text).unwrap();
    let beams = model
        .generate_beam(
            &input,
            DecodeLimits {
                max_new_tokens: 2 * input.len() + 10,
            },
            4,
        )
        .unwrap();
    assert_eq!(model.translate(text).unwrap().text, model.decode(&beams));
    let greedy = model
        .generate(
            &input,
            DecodeLimits {
                max_new_tokens: 2 * input.len() + 10,
            },
        )
        .unwrap();
    assert_ne!(beams, greedy, "the case tells beams from greedy");
}

#[test]
fn a_text_that_would_take_too_long_is_stopped_at_the_time_limit() {
    use bletchley_ai::translate::{Engine, Marian};
    let engine = Marian::load(&fixture(), Some("es"))
        .expect("the fixture loads")
        .with_time_limit(std::time::Duration::from_millis(300));
    // Four megabytes of one line: tokenised a stretch at a time, stopped within the limit.
    let line = "palabra ".repeat(500_000);
    let started = std::time::Instant::now();
    let e = engine.translate(&line, "es").expect_err("stopped");
    assert!(
        e.to_string()
            .contains("did not finish within 0.3 s: stopped"),
        "{e}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let e = engine
        .translate("hola", "fr")
        .expect_err("another language");
    assert!(e.to_string().contains("translates from es, not fr"), "{e}");
}

#[test]
fn a_damaged_model_directory_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("m");
    std::fs::create_dir(&copy).unwrap();
    for e in std::fs::read_dir(fixture()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            std::fs::copy(&p, copy.join(p.file_name().unwrap())).unwrap();
        }
    }
    let err = |m: Result<MarianModel, bletchley_ai::Error>| match m {
        Ok(_) => panic!("a damaged model loaded"),
        Err(e) => e.to_string(),
    };
    std::fs::remove_file(copy.join("target.spm")).unwrap();
    assert!(err(MarianModel::load(&copy)).contains("no target.spm"));
    std::fs::write(copy.join("target.spm"), b"\xff\xff not protobuf").unwrap();
    let e = err(MarianModel::load(&copy));
    assert!(
        e.contains("target.spm") && e.contains("SentencePiece"),
        "{e}"
    );
    std::fs::copy(fixture().join("target.spm"), copy.join("target.spm")).unwrap();
    let weights = std::fs::read(fixture().join("model.safetensors")).unwrap();
    std::fs::write(
        copy.join("model.safetensors"),
        &weights[..weights.len() / 2],
    )
    .unwrap();
    let e = err(MarianModel::load(&copy));
    assert!(e.contains("model.safetensors"), "{e}");
    std::fs::write(copy.join("model.safetensors"), &weights).unwrap();
    std::fs::write(copy.join("config.json"), br#"{"model_type": "bert"}"#).unwrap();
    assert!(err(MarianModel::load(&copy)).contains("not a Marian model"));
    assert!(err(MarianModel::load(&dir.path().join("absent"))).contains("not a directory"));
}
