//! The compiled engine (shared automata, rules woken by the literals they need) decides
//! exactly what a naive reading of the rule as written decides, for random rules and
//! events. The naive evaluator below knows nothing of the engine: it interprets the
//! generated rule description with its own wildcard matcher.

use std::path::Path;
use std::sync::Arc;

use bletchley_detect::engine::{Engine, LoadReport};
use bletchley_detect::event::{Event, Origin, Value};
use bletchley_detect::mapping::Mapping;
use bletchley_detect::rule;
use proptest::prelude::*;

const FIELDS: [&str; 3] = ["Alpha", "beta", "Gamma"];

#[derive(Debug, Clone)]
enum Mod {
    Plain,
    Contains,
    StartsWith,
    EndsWith,
    Cased,
    ContainsCased,
    Exists,
}

#[derive(Debug, Clone)]
struct FieldSpec {
    field: usize,
    modifier: Mod,
    values: Vec<String>,
    all: bool,
}

#[derive(Debug, Clone)]
enum Cond {
    Search(usize),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Not(Box<Cond>),
}

#[derive(Debug, Clone)]
struct RuleSpec {
    /// Searches: alternatives of conjunctions.
    searches: Vec<Vec<Vec<FieldSpec>>>,
    condition: Cond,
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec!['a', 'b', 'A', 'B', '-', ' ', '\\', 'é', 'É']),
        0..5,
    )
    .prop_map(|v| v.into_iter().collect())
}

fn pattern_text() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop::sample::select(vec!["a", "b", "A", "-", " ", "\\", "*", "?", "\\*", "é"]),
        0..4,
    )
    .prop_map(|v| v.concat())
}

fn field_spec() -> impl Strategy<Value = FieldSpec> {
    (
        0..FIELDS.len(),
        prop::sample::select(vec![
            Mod::Plain,
            Mod::Contains,
            Mod::StartsWith,
            Mod::EndsWith,
            Mod::Cased,
            Mod::ContainsCased,
            Mod::Exists,
        ]),
        proptest::collection::vec(pattern_text(), 1..3),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(field, modifier, values, all, exists)| match modifier {
            Mod::Exists => FieldSpec {
                field,
                modifier,
                values: vec![exists.to_string()],
                all: false,
            },
            m => FieldSpec {
                field,
                modifier: m,
                values,
                all,
            },
        })
}

fn cond(n: usize) -> impl Strategy<Value = Cond> {
    let leaf = (0..n).prop_map(Cond::Search);
    leaf.prop_recursive(3, 8, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::And(Box::new(a), Box::new(b))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Cond::Or(Box::new(a), Box::new(b))),
            inner.prop_map(|a| Cond::Not(Box::new(a))),
        ]
    })
}

fn rule_spec() -> impl Strategy<Value = RuleSpec> {
    (1usize..4).prop_flat_map(|n| {
        (
            proptest::collection::vec(
                proptest::collection::vec(proptest::collection::vec(field_spec(), 1..3), 1..3),
                n..=n,
            ),
            cond(n),
        )
            .prop_map(|(mut searches, condition)| {
                // One YAML mapping names a field once: keep each field's first test.
                for conj in searches.iter_mut().flatten() {
                    let mut seen = [false; FIELDS.len()];
                    conj.retain(|f| !std::mem::replace(&mut seen[f.field], true));
                }
                RuleSpec {
                    searches,
                    condition,
                }
            })
    })
}

fn event_spec() -> impl Strategy<Value = Vec<Option<String>>> {
    proptest::collection::vec(proptest::option::of(text()), FIELDS.len())
}

fn yaml_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn cond_text(c: &Cond) -> String {
    match c {
        Cond::Search(i) => format!("s{i}"),
        Cond::And(a, b) => format!("({} and {})", cond_text(a), cond_text(b)),
        Cond::Or(a, b) => format!("({} or {})", cond_text(a), cond_text(b)),
        Cond::Not(a) => format!("not {}", cond_text(a)),
    }
}

fn to_yaml(r: &RuleSpec) -> String {
    let mut y = String::from("title: generated\nid: g\nlogsource:\n  product: test\ndetection:\n");
    for (i, alts) in r.searches.iter().enumerate() {
        y.push_str(&format!("  s{i}:\n"));
        for conj in alts {
            let mut first = true;
            for f in conj {
                let mods = match f.modifier {
                    Mod::Plain => "",
                    Mod::Contains => "|contains",
                    Mod::StartsWith => "|startswith",
                    Mod::EndsWith => "|endswith",
                    Mod::Cased => "|cased",
                    Mod::ContainsCased => "|contains|cased",
                    Mod::Exists => "|exists",
                };
                let all = if f.all { "|all" } else { "" };
                let lead = if first { "    - " } else { "      " };
                first = false;
                // A later key of the same name in one mapping would replace the first:
                // give every key its own modifier spelling by field position.
                y.push_str(&format!("{lead}{}{mods}{all}:\n", FIELDS[f.field]));
                for v in &f.values {
                    if matches!(f.modifier, Mod::Exists) {
                        y.push_str(&format!("        - {v}\n"));
                    } else {
                        y.push_str(&format!("        - {}\n", yaml_quote(v)));
                    }
                }
            }
        }
    }
    y.push_str(&format!("  condition: {}\n", cond_text(&r.condition)));
    y
}

#[derive(Clone, PartialEq)]
enum P {
    C(char),
    Star,
    One,
}

/// Sigma wildcards, read naively: `\` escapes `*`, `?` and `\`, else is itself.
fn pieces(pattern: &str, fold: bool) -> Vec<P> {
    let mut ps = Vec::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() && matches!(chars[i + 1], '*' | '?' | '\\') => {
                ps.push(P::C(chars[i + 1]));
                i += 2;
                continue;
            }
            '*' => ps.push(P::Star),
            '?' => ps.push(P::One),
            c => ps.extend(if fold {
                c.to_lowercase().map(P::C).collect::<Vec<_>>()
            } else {
                vec![P::C(c)]
            }),
        }
        i += 1;
    }
    ps
}

fn glob(ps: &[P], hay: &str) -> bool {
    fn go(p: &[P], h: &[char]) -> bool {
        match p.split_first() {
            None => h.is_empty(),
            Some((P::Star, rest)) => (0..=h.len()).any(|k| go(rest, &h[k..])),
            Some((P::One, rest)) => !h.is_empty() && go(rest, &h[1..]),
            Some((P::C(c), rest)) => h.first() == Some(c) && go(rest, &h[1..]),
        }
    }
    let h: Vec<char> = hay.chars().collect();
    go(ps, &h)
}

fn naive_field(f: &FieldSpec, ev: &[Option<String>]) -> bool {
    let value = ev[f.field].as_deref();
    if let Mod::Exists = f.modifier {
        return value.is_some() == (f.values[0] == "true");
    }
    let Some(value) = value else { return false };
    let one = |v: &String| {
        let cased = matches!(f.modifier, Mod::Cased | Mod::ContainsCased);
        let mut ps = pieces(v, !cased);
        let (lead, trail) = match f.modifier {
            Mod::Contains | Mod::ContainsCased => (true, true),
            Mod::StartsWith => (false, true),
            Mod::EndsWith => (true, false),
            _ => (false, false),
        };
        if lead {
            ps.insert(0, P::Star);
        }
        if trail {
            ps.push(P::Star);
        }
        if cased {
            glob(&ps, value)
        } else {
            glob(&ps, &value.to_lowercase())
        }
    };
    if f.all {
        f.values.iter().all(one)
    } else {
        f.values.iter().any(one)
    }
}

fn naive(r: &RuleSpec, ev: &[Option<String>]) -> bool {
    fn c(r: &RuleSpec, cond: &Cond, ev: &[Option<String>]) -> bool {
        match cond {
            Cond::Search(i) => r.searches[*i]
                .iter()
                .any(|conj| conj.iter().all(|f| naive_field(f, ev))),
            Cond::And(a, b) => c(r, a, ev) && c(r, b, ev),
            Cond::Or(a, b) => c(r, a, ev) || c(r, b, ev),
            Cond::Not(a) => !c(r, a, ev),
        }
    }
    c(r, &r.condition, ev)
}

fn test_mapping() -> Mapping {
    Mapping::parse(
        "test",
        "name: test\nevtx: {}\njsonl: {}\nlogsources:\n  - logsource: {product: test}\n    events: [{}]\n",
    )
    .expect("mapping")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn compiled_detection_equals_the_naive_reading(r in rule_spec(), evs in proptest::collection::vec(event_spec(), 1..6)) {
        let yaml = to_yaml(&r);
        let rules = rule::parse_file(Path::new("g.yml"), &yaml, &rule::PlaceholderMap::new())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        let engine = Engine::compile(rules, test_mapping(), LoadReport::default());
        let mut scratch = engine.scratch();
        let mut out = Vec::new();
        for ev in &evs {
            let mut e = Event::new(Origin { file: Arc::from("t"), record: 1 }, serde_json::Value::Null);
            for (i, v) in ev.iter().enumerate() {
                if let Some(v) = v {
                    e.push(FIELDS[i], Value::text(v.clone()));
                }
            }
            engine.detect(&e, &mut scratch, &mut out);
            prop_assert_eq!(!out.is_empty(), naive(&r, ev), "rule:\n{}\nevent: {:?}", yaml, ev);
        }
    }
}
