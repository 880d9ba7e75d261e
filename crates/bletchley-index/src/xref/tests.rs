use super::*;

/// The names of the labelled pairs fixture, as person terms: left column and right column.
fn fixture_names() -> (Vec<String>, Vec<String>) {
    let text = include_str!("../../tests/fixtures/name_pairs.tsv");
    let mut left = Vec::new();
    let mut right = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 3, "{line}");
        left.push(format!("person:{}", f[0].to_lowercase()));
        right.push(format!("person:{}", f[1].to_lowercase()));
    }
    (left, right)
}

/// Every pair compared, no blocks: what the blocked, incremental computation must equal.
fn brute_force(
    here: &BTreeSet<String>,
    there: &BTreeSet<String>,
) -> BTreeMap<String, BTreeMap<String, f64>> {
    let mut out: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
    for h in here {
        for t in there {
            if kind_of(h) != kind_of(t) {
                continue;
            }
            let s = similarity(&NameKey::new(name_of(h)), &NameKey::new(name_of(t)));
            if s >= SAME_NAME {
                out.entry(h.clone()).or_default().insert(t.clone(), s);
            }
        }
    }
    out
}

fn no_checkpoint(_: &NameMatches, _: usize) -> Result<Flow> {
    Ok(Flow::Go)
}

#[test]
fn blocks_miss_no_pair_that_every_comparison_finds() {
    let (left, right) = fixture_names();
    let here: BTreeSet<String> = left.into_iter().collect();
    let mut there: BTreeSet<String> = right.into_iter().collect();
    there.insert("org:meridian shipping ltd".into());
    // Misspellings at a word's end, where transliterations differ most.
    for variant in [
        "person:viktor petrof",
        "person:petrof",
        "person:sergey lavrof",
        "person:mohamad",
    ] {
        there.insert(variant.into());
    }
    let mut here = here;
    for name in ["person:petrov", "person:mohammed"] {
        here.insert(name.into());
    }
    let mut m = NameMatches::default();
    m.update(&here, &there, &mut no_checkpoint).unwrap();
    let expected = brute_force(&here, &there);
    assert!(
        expected.len() > 20,
        "the fixture has matches: {}",
        expected.len()
    );
    assert_eq!(m.pairs, expected);
}

#[test]
fn names_arriving_later_are_compared_once_and_give_the_same_pairs() {
    let (left, right) = fixture_names();
    let here: BTreeSet<String> = left.iter().cloned().collect();
    let there: BTreeSet<String> = right.iter().cloned().collect();
    let half_here: BTreeSet<String> = left.iter().step_by(2).cloned().collect();
    let half_there: BTreeSet<String> = right.iter().skip(1).step_by(2).cloned().collect();

    let mut m = NameMatches::default();
    m.update(&half_here, &half_there, &mut no_checkpoint)
        .unwrap();
    assert_eq!(m.pairs, brute_force(&half_here, &half_there));
    // The rest arrive on both sides: only what is new is compared.
    let pending = m.pending(&here, &there);
    assert_eq!(
        pending,
        here.difference(&half_here).count() + there.difference(&half_there).count(),
        "only the names not compared before"
    );
    m.update(&here, &there, &mut no_checkpoint).unwrap();
    assert_eq!(m.pairs, brute_force(&here, &there));
    assert_eq!(m.pending(&here, &there), 0, "nothing left to compare");
    // New names here only: only they are compared.
    let mut more = here.clone();
    more.insert("person:mohamed salah".into());
    assert_eq!(m.pending(&more, &there), 1);
    // Names gone (shredded, or no longer visible) leave the state with their pairs.
    let fewer: BTreeSet<String> = here.iter().skip(10).cloned().collect();
    m.update(&fewer, &there, &mut no_checkpoint).unwrap();
    assert_eq!(m.pairs, brute_force(&fewer, &there));
}

#[test]
fn a_run_stopped_after_a_checkpoint_resumes_from_it() {
    let (left, right) = fixture_names();
    let here: BTreeSet<String> = left.into_iter().collect();
    let there: BTreeSet<String> = right.into_iter().collect();
    let mut saved: Option<NameMatches> = None;
    let mut calls = 0;
    let mut m = NameMatches::default();
    let stopped = m.update_in_batches(&here, &there, 7, &mut |s, _| {
        calls += 1;
        if calls == 3 {
            return Err(Error::Query("killed".into()));
        }
        saved = Some(s.clone());
        Ok(Flow::Go)
    });
    assert!(stopped.is_err());
    // Two batches of seven names there were compared and saved.
    let mut resumed = saved.expect("two checkpoints were saved");
    let left_to_do = resumed.pending(&here, &there);
    assert_eq!(left_to_do, here.len() + there.len() - 14);
    let mut compared = 0;
    let flow = resumed
        .update_in_batches(&here, &there, 7, &mut |_, done| {
            compared = done;
            Ok(Flow::Go)
        })
        .unwrap();
    assert_eq!(flow, Flow::Go);
    assert_eq!(
        compared, left_to_do,
        "only what was not saved is compared again"
    );
    assert_eq!(resumed.pairs, brute_force(&here, &there));
}

#[test]
fn a_run_told_to_stop_stops_at_a_checkpoint_and_the_next_goes_on() {
    let (left, right) = fixture_names();
    let here: BTreeSet<String> = left.into_iter().collect();
    let there: BTreeSet<String> = right.into_iter().collect();
    let mut m = NameMatches::default();
    let mut runs = 0;
    loop {
        runs += 1;
        let mut batches = 0;
        let flow = m
            .update_in_batches(&here, &there, 10, &mut |_, _| {
                batches += 1;
                Ok(if batches == 3 { Flow::Stop } else { Flow::Go })
            })
            .unwrap();
        if flow == Flow::Go {
            break;
        }
        assert!(runs < 100, "it ends");
    }
    let batches = here.len().div_ceil(10) + there.len().div_ceil(10);
    assert_eq!(runs, batches.div_ceil(3), "three batches of ten a run");
    assert_eq!(m.pending(&here, &there), 0);
    assert_eq!(m.pairs, brute_force(&here, &there));
}
