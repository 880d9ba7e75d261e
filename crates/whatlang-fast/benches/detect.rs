//! Detection time per text, the fork against whatlang 0.18.0 in the same run, on the
//! generated corpus's files (the texts ingest detects). Medians of several passes;
//! `cargo bench -p whatlang-fast`.

use std::time::Instant;

fn corpus() -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("corpus");
    bletchley_corpus::generate(
        &out,
        &bletchley_corpus::Options {
            docs: 3000,
            seed: 11,
        },
    )
    .expect("corpus");
    let mut texts = Vec::new();
    let mut stack = vec![out];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read dir") {
            let path = e.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(t) = std::fs::read_to_string(&path) {
                texts.push(t);
            }
        }
    }
    texts
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn per_text(texts: &[String], detect: impl Fn(&str) -> usize) -> f64 {
    let t = Instant::now();
    let mut sink = 0usize;
    for text in texts {
        sink = sink.wrapping_add(detect(text));
    }
    std::hint::black_box(sink);
    t.elapsed().as_secs_f64() / texts.len() as f64
}

fn main() {
    let texts = corpus();
    let bytes: usize = texts.iter().map(String::len).sum();
    // Warm both (the fork builds its profile index on first use).
    per_text(&texts, |t| {
        whatlang::detect(t).map_or(0, |i| i.lang() as usize)
    });
    per_text(&texts, |t| {
        whatlang_fast::detect(t).map_or(0, |i| i.lang() as usize)
    });
    let (mut up, mut fast) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        up.push(per_text(&texts, |t| {
            whatlang::detect(t).map_or(0, |i| i.lang() as usize)
        }));
        fast.push(per_text(&texts, |t| {
            whatlang_fast::detect(t).map_or(0, |i| i.lang() as usize)
        }));
    }
    let (up, fast) = (median(up), median(fast));
    println!(
        "language detection, {} texts of the generated corpus ({} bytes on average), median of 7 passes:",
        texts.len(),
        bytes / texts.len().max(1)
    );
    println!("  whatlang 0.18.0   {:8.2} µs a text", up * 1e6);
    println!(
        "  whatlang-fast     {:8.2} µs a text   ({:.1}x faster)",
        fast * 1e6,
        up / fast
    );
}
