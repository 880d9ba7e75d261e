//! Property tests for the policy crate: banner round-trips, monotonicity of
//! markings, and the gate against a deliberately naive reference.

use std::collections::BTreeSet;

use bletchley_policy::{
    Classification, Collection, CollectionId, Gate, Marking, Nation, Operation, Principal, Purpose,
    Role, Share, Visibility,
};
use proptest::prelude::*;

const CODEWORDS: [&str; 4] = ["STRAP1", "STRAP2", "ECI-ALPHA", "TK9"];
const NATIONS: [&str; 7] = ["GBR", "USA", "AUS", "CAN", "NZL", "FRA", "DEU"];
const DESCS: [&str; 3] = ["PERSONAL DATA", "LOCSEN", "COMMERCIAL"];

fn subset(pool: &'static [&'static str]) -> impl Strategy<Value = Vec<&'static str>> {
    proptest::sample::subsequence(pool.to_vec(), 0..=pool.len()).prop_shuffle()
}

/// Banners generated as text, independently of the renderer.
fn banner() -> impl Strategy<Value = String> {
    let class = prop_oneof![
        Just("OFFICIAL"),
        Just("OFFICIAL-SENSITIVE"),
        Just("SECRET"),
        Just("TOP SECRET")
    ];
    let rel = prop_oneof![
        Just(String::new()),
        Just("UK EYES ONLY".to_owned()),
        Just("FVEY".to_owned()),
        (subset(&NATIONS), any::<bool>()).prop_filter_map("non-empty", |(ns, fvey)| {
            let mut toks: Vec<&str> = ns;
            if fvey {
                toks.push("FVEY");
            }
            (!toks.is_empty()).then(|| format!("REL TO {}", toks.join(", ")))
        }),
    ];
    (class, subset(&CODEWORDS), rel, subset(&DESCS)).prop_map(|(c, cw, rel, ds)| {
        let mut s = c.to_owned();
        if !cw.is_empty() {
            s.push_str("//");
            s.push_str(&cw.join("/"));
        }
        if !rel.is_empty() {
            s.push_str("//");
            s.push_str(&rel);
        }
        for d in ds {
            s.push_str("//");
            s.push_str(d);
        }
        s
    })
}

fn principal() -> impl Strategy<Value = Principal> {
    (
        0usize..3,
        subset(&CODEWORDS),
        proptest::sample::select(NATIONS.to_vec()),
        proptest::sample::select(vec!["gchq", "mi5", "mi6"]),
    )
        .prop_map(|(c, cw, nat, agency)| Principal {
            name: "p".into(),
            agency: agency.into(),
            clearance: Classification::ALL[c],
            compartments: cw.into_iter().map(String::from).collect(),
            nationality: Nation::from_alpha3(nat).expect("listed nation"),
            roles: [Role::Analyst].into_iter().collect(),
            standing: Default::default(),
            reviewed_s: None,
        })
}

/// The naive reference: re-reads the banner text itself, with sets of strings.
fn naive_allows(p: &Principal, banner: &str, home: &str) -> bool {
    let segs: Vec<&str> = banner.split("//").collect();
    let level = match segs[0] {
        "OFFICIAL" | "OFFICIAL-SENSITIVE" => 0,
        "SECRET" => 1,
        _ => 2,
    };
    let held = match p.clearance {
        Classification::Official => 0,
        Classification::Secret => 1,
        Classification::TopSecret => 2,
    };
    if held < level {
        return false;
    }
    let mut nations: Option<BTreeSet<String>> = None;
    for s in &segs[1..] {
        if *s == "UK EYES ONLY" {
            nations = Some(["GBR".to_owned()].into());
        } else if *s == "FVEY" {
            nations = Some(
                ["GBR", "USA", "CAN", "AUS", "NZL"]
                    .iter()
                    .map(|s| s.to_string())
                    .collect(),
            );
        } else if let Some(list) = s.strip_prefix("REL TO ") {
            let mut set = BTreeSet::new();
            for t in list.split(", ") {
                if t == "FVEY" {
                    set.extend(
                        ["GBR", "USA", "CAN", "AUS", "NZL"]
                            .iter()
                            .map(|s| s.to_string()),
                    );
                } else {
                    set.insert(t.to_owned());
                }
            }
            nations = Some(set);
        } else if DESCS.contains(s) {
        } else {
            for cw in s.split('/') {
                if !p.compartments.contains(cw) {
                    return false;
                }
            }
        }
    }
    let nations = nations.unwrap_or_else(|| [home.to_owned()].into());
    nations.contains(p.nationality.alpha3())
}

fn gate_for(p: &Principal) -> Gate {
    let colls = vec![Collection {
        id: CollectionId(0),
        agency: p.agency.clone(),
        name: "c".into(),
        bulk: false,
    }];
    let vis = Visibility::compute(p, &colls, &[], 0);
    Gate::new(p.clone(), vis, Nation::gbr())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn banner_round_trips(b in banner()) {
        let m = Marking::parse(&b).map_err(|e| TestCaseError::fail(format!("{b}: {e}")))?;
        prop_assert_eq!(m.render(), b.clone());
        prop_assert_eq!(Marking::parse(&m.render()).ok(), Some(m));
    }

    #[test]
    fn gate_equals_naive_reference(p in principal(), b in banner()) {
        let m = Marking::parse(&b).expect("generated banner parses");
        let gate = gate_for(&p);
        prop_assert_eq!(gate.decide(&m, CollectionId(0)).is_ok(), naive_allows(&p, &b, "GBR"), "{}", b);
    }

    /// An upgrade never lets anyone read who could not before: whoever the gate admits to
    /// a marking that covers another, it admits to that other too.
    #[test]
    fn a_covering_marking_admits_no_one_new(p in principal(), a in banner(), b in banner()) {
        let (ma, mb) = (Marking::parse(&a).expect("parses"), Marking::parse(&b).expect("parses"));
        let gate = gate_for(&p);
        prop_assert!(ma.covers(&ma, Nation::gbr()));
        let h = Marking::high_water_mark([&ma, &mb], Nation::gbr()).expect("non-empty");
        prop_assert!(h.covers(&ma, Nation::gbr()) && h.covers(&mb, Nation::gbr()));
        if mb.covers(&ma, Nation::gbr()) && gate.decide(&mb, CollectionId(0)).is_ok() {
            prop_assert!(gate.decide(&ma, CollectionId(0)).is_ok(), "{} covers {}", b, a);
        }
    }

    #[test]
    fn high_water_mark_is_an_upper_bound(p in principal(), a in banner(), b in banner(), c in banner()) {
        let ms: Vec<Marking> = [a, b, c].iter().map(|s| Marking::parse(s).expect("parses")).collect();
        let h = Marking::high_water_mark(&ms, Nation::gbr()).expect("non-empty");
        let gate = gate_for(&p);
        for m in &ms {
            prop_assert!(h.classification() >= m.classification());
            for cw in m.compartments() {
                prop_assert!(h.compartments().any(|x| x == cw));
            }
            for n in Nation::all() {
                if h.releasable(n, Nation::gbr()) {
                    prop_assert!(m.releasable(n, Nation::gbr()));
                }
            }
            // Whoever may read the aggregate may read every input.
            if gate.decide(&h, CollectionId(0)).is_ok() {
                prop_assert!(gate.decide(m, CollectionId(0)).is_ok());
            }
        }
        // The mark round-trips like any banner.
        prop_assert_eq!(Marking::parse(&h.render()).ok(), Some(h));
    }

    #[test]
    fn an_access_names_its_item_and_the_gate_agrees(p in principal(), b in banner(), item in "[a-z0-9-]{1,12}") {
        let m = Marking::parse(&b).expect("parses");
        let gate = gate_for(&p);
        match gate.check(&item, &m, CollectionId(0)) {
            Ok(a) => {
                prop_assert_eq!(a.item(), item.as_str());
                prop_assert_eq!(a.purpose(), &Purpose::Principal(p.name.clone()));
                prop_assert!(gate.decide(&m, CollectionId(0)).is_ok());
            }
            Err(_) => prop_assert!(gate.decide(&m, CollectionId(0)).is_err()),
        }
        // A collection outside the principal's need-to-know gives nothing.
        prop_assert!(gate.check(&item, &m, CollectionId(7)).is_err());
    }

    #[test]
    fn admitted_collections_are_within_the_gate_and_bulk_needs_a_justification(
        p in principal(),
        colls in proptest::collection::btree_map(0u32..12, (any::<bool>(), any::<bool>()), 0..12),
        justification in proptest::option::of("[ a-z]{0,6}"),
    ) {
        let catalog: Vec<Collection> = colls
            .iter()
            .map(|(&id, &(own, bulk))| Collection {
                id: CollectionId(id),
                agency: if own { p.agency.clone() } else { "other".into() },
                name: format!("c{id}"),
                bulk,
            })
            .collect();
        let vis = Visibility::compute(&p, &catalog, &[], 0);
        let gate = Gate::new(p.clone(), vis.clone(), Nation::gbr());
        let admitted = gate.admit(catalog.clone(), justification.as_deref());
        let justified = justification.as_deref().is_some_and(|j| !j.trim().is_empty());
        for id in admitted.ids() {
            prop_assert!(vis.contains(*id));
        }
        for c in &catalog {
            let listed = admitted.names().get(&format!("{}/{}", c.agency, c.name)) == Some(&c.id);
            // Independently: its agency's, a reader's role, and justified when bulk.
            let expected = c.agency == p.agency && p.roles.iter().any(|r| r.reads_items()) && (!c.bulk || justified);
            prop_assert_eq!(listed, expected, "{:?}", c);
        }
        // A forged catalog widens nothing: ids outside the gate's visibility stay out.
        let forged = vec![Collection { id: CollectionId(99), agency: p.agency.clone(), name: "x".into(), bulk: false }];
        prop_assert!(gate.admit(forged, None).ids().is_empty());
    }

    #[test]
    fn raising_a_marking_never_grants_more(p in principal(), a in banner(), raise in banner()) {
        let m = Marking::parse(&a).expect("parses");
        let r = Marking::parse(&raise).expect("parses");
        let raised = Marking::high_water_mark([&m, &r], Nation::gbr()).expect("non-empty");
        let gate = gate_for(&p);
        if gate.decide(&m, CollectionId(0)).is_err() {
            prop_assert!(gate.decide(&raised, CollectionId(0)).is_err());
        }
    }
}

#[test]
fn need_to_know_follows_operations() {
    let p = |name: &str, agency: &str| Principal {
        name: name.into(),
        agency: agency.into(),
        clearance: Classification::TopSecret,
        compartments: BTreeSet::new(),
        nationality: Nation::gbr(),
        roles: [Role::Analyst].into_iter().collect(),
        standing: Default::default(),
        reviewed_s: None,
    };
    let colls = vec![
        Collection {
            id: CollectionId(1),
            agency: "mi5".into(),
            name: "a".into(),
            bulk: false,
        },
        Collection {
            id: CollectionId(2),
            agency: "gchq".into(),
            name: "b".into(),
            bulk: false,
        },
        Collection {
            id: CollectionId(3),
            agency: "mod".into(),
            name: "c".into(),
            bulk: false,
        },
    ];
    let op = Operation {
        name: "op".into(),
        agencies: ["mi5".to_owned(), "gchq".to_owned()].into(),
        members: BTreeSet::new(),
        start: 100,
        end: Some(200),
        shares: vec![
            Share {
                collection: CollectionId(2),
                since: 100,
                withdrawn: None,
            },
            // mod is not a member: its share must not count.
            Share {
                collection: CollectionId(3),
                since: 100,
                withdrawn: None,
            },
        ],
    };
    let alice = p("alice", "mi5");
    let ops = [op.clone()];
    assert!(Visibility::compute(&alice, &colls, &ops, 150).contains(CollectionId(2)));
    assert!(!Visibility::compute(&alice, &colls, &ops, 150).contains(CollectionId(3)));
    assert!(
        !Visibility::compute(&alice, &colls, &ops, 250).contains(CollectionId(2)),
        "ended"
    );
    assert!(
        !Visibility::compute(&alice, &colls, &ops, 50).contains(CollectionId(2)),
        "not started"
    );
    let mut named = op.clone();
    named.members = ["bob".to_owned()].into();
    assert!(!Visibility::compute(&alice, &colls, &[named.clone()], 150).contains(CollectionId(2)));
    assert!(Visibility::compute(&p("bob", "mi5"), &colls, &[named], 150).contains(CollectionId(2)));
    let mut withdrawn = op;
    withdrawn.shares[0].withdrawn = Some(120);
    assert!(!Visibility::compute(&alice, &colls, &[withdrawn], 150).contains(CollectionId(2)));
    // An auditor or overseer alone reads no items, not even its own agency's.
    for role in [Role::Auditor, Role::Overseer] {
        let mut watcher = p("carol", "mi5");
        watcher.roles = [role].into_iter().collect();
        let seen = Visibility::compute(&watcher, &colls, &ops, 150);
        assert_eq!(seen.iter().count(), 0, "{role}");
    }
}
