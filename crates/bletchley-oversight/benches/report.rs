//! `cargo bench -p bletchley-oversight`: compiling the oversight report from opened audit
//! entries, against the least any report must do (one pass tallying reads per principal),
//! and drawing its PDF.

use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use bletchley_audit::{About, Entry, Outcome};
use bletchley_oversight::{Period, compile};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// `n` entries over 52 weeks: 60 % reads by 200 principals of 4 agencies over 40
/// collections, the rest searches with justifications, denials, exports, shreds and
/// changes of people, in a fixed pseudo-random mix.
fn entries(n: usize) -> Vec<(u64, Entry)> {
    const WEEK_MS: i64 = 7 * 86_400_000;
    let start = 1_767_225_600_000; // 2026-01-01
    let markings = [
        "OFFICIAL",
        "SECRET",
        "SECRET//UK EYES ONLY",
        "TOP SECRET//STRAP1",
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|i| {
            let r = next();
            let principal = format!("p{}", r % 200);
            let collection = format!("a{}/c{}", r % 4, (r >> 8) % 40);
            let kind = (r >> 16) % 100;
            let (action, outcome, justification) = match kind {
                0..60 => ("item.get", Outcome::Allowed, None),
                60..80 => ("search", Outcome::Allowed, Some("op X".to_owned())),
                80..90 => ("item.get", Outcome::Denied, None),
                90..95 => ("sync.export", Outcome::Allowed, None),
                95..98 => ("item.shred", Outcome::Allowed, None),
                _ => ("principal.set", Outcome::Allowed, None),
            };
            let e = Entry {
                time_ms: start + (i as i64 * 52 * WEEK_MS) / n as i64,
                principal,
                action: action.into(),
                targets: vec![format!("item-{}", r % 100_000), "site kabul".into()],
                justification,
                outcome,
                reason: (outcome == Outcome::Denied).then(|| "clearance".into()),
                about: Some(About {
                    collection,
                    marking: markings[(r >> 24) as usize % markings.len()].into(),
                }),
            };
            (i as u64, e)
        })
        .collect()
}

/// Prints the benchmark's lines (`--quick` for a smoke run).
fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n = if quick { 20_000 } else { 200_000 };
    let reps = if quick { 3 } else { 5 };
    let log = entries(n);
    let period = Period {
        from_ms: 1_767_225_600_000,
        to_ms: 1_767_225_600_000 + 366 * 86_400_000,
    };
    let agency = |p: &str| Some(format!("agency{}", p.len() % 4));
    let mut report = None;
    let compiled = median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                report = Some(black_box(compile(&log, period, 0, agency)));
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let tally = median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                let mut by: HashMap<&str, u64> = HashMap::new();
                for (_, e) in &log {
                    if e.action == "item.get" && e.outcome == Outcome::Allowed {
                        *by.entry(e.principal.as_str()).or_default() += 1;
                    }
                }
                black_box(by);
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let Some(report) = report else { return };
    let drawn = median(
        (0..reps)
            .map(|_| {
                let t = Instant::now();
                black_box(bletchley_oversight::pdf::render(&report, "bench"));
                t.elapsed().as_secs_f64()
            })
            .collect(),
    );
    let pdf = bletchley_oversight::pdf::render(&report, "bench");
    println!(
        "oversight report, {n} entries   compile {:>7.3} s ({:.0} entries/s)   one-pass tally {:.3} s   ratio {:.1}x",
        compiled,
        n as f64 / compiled,
        tally,
        compiled / tally
    );
    println!(
        "oversight report PDF          {:>7.3} s   {} KB   {} figures",
        drawn,
        pdf.len() / 1024,
        report.figures.len()
    );
}
