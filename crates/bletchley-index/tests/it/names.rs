//! Names of people, organisations and places: precision and recall measured
//! on a hand-labelled fixture, with floors so a regression fails.

use std::collections::BTreeSet;

use bletchley_index::names::{NameKind, find};

#[derive(serde::Deserialize)]
struct Labelled {
    text: String,
    names: Vec<(String, String)>,
}

fn kind(k: NameKind) -> &'static str {
    match k {
        NameKind::Person => "person",
        NameKind::Organisation => "org",
        NameKind::Place => "place",
    }
}

#[test]
fn precision_and_recall_on_labelled_sentences() {
    let fixture = include_str!("../fixtures/names.jsonl");
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    let mut misses = Vec::new();
    for line in fixture.lines().filter(|l| !l.trim().is_empty()) {
        let l: Labelled = serde_json::from_str(line).unwrap();
        let want: BTreeSet<(String, String)> = l.names.into_iter().collect();
        let got: BTreeSet<(String, String)> = find(&l.text)
            .into_iter()
            .map(|n| (kind(n.kind).to_owned(), n.value))
            .collect();
        tp += want.intersection(&got).count();
        fp += got.difference(&want).count();
        fn_ += want.difference(&got).count();
        for g in got.symmetric_difference(&want) {
            misses.push(format!(
                "{} {g:?} in {:?}",
                if want.contains(g) {
                    "missed"
                } else {
                    "spurious"
                },
                l.text
            ));
        }
    }
    let precision = tp as f64 / (tp + fp).max(1) as f64;
    let recall = tp as f64 / (tp + fn_).max(1) as f64;
    println!("names: precision {precision:.3} recall {recall:.3} (tp {tp}, fp {fp}, fn {fn_})");
    for m in &misses {
        println!("  {m}");
    }
    assert!(precision >= 0.85, "precision {precision:.3}");
    assert!(recall >= 0.70, "recall {recall:.3}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Any text, including mixed scripts and stray capitals: no panic, and
    /// every name is a slice of the text on character boundaries.
    #[test]
    fn any_text_yields_well_formed_names(text in "(\\PC|[A-Z][a-z]+ |Mr |Bank of |Ltd )*") {
        for n in find(&text) {
            proptest::prop_assert!(text.is_char_boundary(n.start) && text.is_char_boundary(n.end));
            proptest::prop_assert!(n.start < n.end && !n.value.is_empty());
        }
        for m in bletchley_index::entities::extract(&text) {
            proptest::prop_assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        }
    }
}
