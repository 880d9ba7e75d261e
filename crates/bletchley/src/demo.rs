//! `bletchley demo`: a working platform with demo data, and what each
//! principal sees.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use bletchley_crypto::KdfParams;
use bletchley_policy::{Classification, Marking, Nation, Operation, Principal, Role};
use bletchley_store::{
    IngestOptions, InitOptions, Jurisdiction, KeyName, NewItem, Platform, Unlock,
};
use zeroize::Zeroizing;

use crate::cli::{Cli, DemoArgs};

/// The demo's passphrase unless `BLETCHLEY_PASSPHRASE` is set.
pub const DEMO_PASSPHRASE: &str = "bletchley-demo";

/// Marks a directory as made by `demo`, so `--force` never deletes anything else.
const DEMO_MARKER: &str = "BLETCHLEY-DEMO";

struct DemoUnlock;

impl Unlock for DemoUnlock {
    fn passphrase(&self, key: &KeyName) -> Result<Zeroizing<String>, String> {
        crate::unlock::EnvUnlock
            .passphrase(key)
            .or_else(|_| Ok(Zeroizing::new(DEMO_PASSPHRASE.to_owned())))
    }
}

struct Who {
    name: &'static str,
    agency: &'static str,
    clearance: Classification,
    compartments: &'static [&'static str],
    nationality: &'static str,
    roles: &'static [Role],
    note: &'static str,
}

const PEOPLE: &[Who] = &[
    Who {
        name: "alice",
        agency: "mi5",
        clearance: Classification::TopSecret,
        compartments: &["STRAP1"],
        nationality: "GBR",
        roles: &[Role::Analyst],
        note: "MI5 senior analyst, TOP SECRET STRAP1: sees all of MI5 and what NIMROD shares",
    },
    Who {
        name: "bob",
        agency: "mi5",
        clearance: Classification::Secret,
        compartments: &[],
        nationality: "GBR",
        roles: &[Role::Analyst, Role::Responder],
        note: "MI5 analyst and incident responder, SECRET only: no TOP SECRET, no STRAP",
    },
    Who {
        name: "carol",
        agency: "gchq",
        clearance: Classification::TopSecret,
        compartments: &["STRAP1", "STRAP2"],
        nationality: "GBR",
        roles: &[Role::Analyst],
        note: "GCHQ analyst, TOP SECRET STRAP1/STRAP2: GCHQ plus NIMROD shares",
    },
    Who {
        name: "dave",
        agency: "mi6",
        clearance: Classification::Secret,
        compartments: &[],
        nationality: "GBR",
        roles: &[Role::Analyst],
        note: "MI6 officer, SECRET: MI6 plus NIMROD shares up to SECRET",
    },
    Who {
        name: "erin",
        agency: "mi6",
        clearance: Classification::Secret,
        compartments: &[],
        nationality: "USA",
        roles: &[Role::Analyst],
        note: "US liaison officer at MI6: only items releasable to USA",
    },
    Who {
        name: "frank",
        agency: "mod",
        clearance: Classification::Official,
        compartments: &[],
        nationality: "GBR",
        roles: &[Role::Analyst],
        note: "MOD staff, OFFICIAL: MOD's own OFFICIAL items; not in NIMROD",
    },
    Who {
        name: "mi5-admin",
        agency: "mi5",
        clearance: Classification::TopSecret,
        compartments: &["STRAP1"],
        nationality: "GBR",
        roles: &[Role::Admin, Role::Analyst, Role::Originator],
        note: "MI5 administrator: may shred MI5 items; approves their downgrades (originator)",
    },
    Who {
        name: "olivia",
        agency: "mod",
        clearance: Classification::TopSecret,
        compartments: &[],
        nationality: "GBR",
        roles: &[Role::Overseer],
        note: "Platform overseer: reviews every agency's audit trail (Audit page); reads no items",
    },
];

const DOCS: &[(&str, &str, &str, &str)] = &[
    (
        "mi5/counter-terrorism",
        "SECRET//UK EYES ONLY",
        "ct-brief-harbour.txt",
        "Subject VIKING met an associate at the harbour cafe on 3 March. Phone +44 7911 123456 used.",
    ),
    (
        "mi5/counter-terrorism",
        "TOP SECRET//STRAP1//UK EYES ONLY",
        "ct-source-report.txt",
        "Source GREENFINCH reports a planned purchase of precursors in Leeds.",
    ),
    (
        "mi5/counter-terrorism",
        "OFFICIAL-SENSITIVE",
        "ct-press-summary.txt",
        "Summary of open-source reporting on the harbour incident.",
    ),
    (
        "mi5/intercepts",
        "SECRET//UK EYES ONLY//PERSONAL DATA",
        "intercept-0412.txt",
        "Call from +44 7911 123456 to +33 6 12 34 56 78 lasting 4 minutes.",
    ),
    (
        "gchq/sigint",
        "TOP SECRET//STRAP1//REL TO GBR, USA",
        "sigint-summary-17.txt",
        "Selector viking@example.org contacted a server at 203.0.113.7 repeatedly.",
    ),
    (
        "gchq/sigint",
        "TOP SECRET//STRAP2//UK EYES ONLY",
        "sigint-exceptional.txt",
        "Exceptionally controlled reporting on the VIKING network.",
    ),
    (
        "gchq/sigint",
        "SECRET//REL TO GBR, USA",
        "sigint-network-map.txt",
        "Network map of contacts around selector viking@example.org.",
    ),
    (
        "mi6/humint",
        "SECRET//REL TO GBR, USA",
        "humint-lisbon.txt",
        "Station Lisbon: the courier travelled via Porto on 5 March.",
    ),
    (
        "mi6/humint",
        "SECRET//UK EYES ONLY",
        "humint-agent-note.txt",
        "Agent CORMORANT requests resettlement.",
    ),
    (
        "mod/logistics",
        "OFFICIAL",
        "mod-convoy-schedule.txt",
        "Convoy schedule for exercise STEADFAST, week 12.",
    ),
];

/// Files in the generated part of the demo corpus.
const CORPUS_DOCS: usize = 400;

/// Generates a corpus beside the data directory and ingests it across the
/// collections as their agencies would: call records into the bulk
/// intercept collection, e-mails into SIGINT, network reports into
/// counter-terrorism, background notes into HUMINT and MOD logistics.
/// Returns the number of items and a planted selector to try.
fn ingest_corpus(p: &mut Platform) -> Result<(usize, String)> {
    #[derive(serde::Deserialize)]
    struct Entry {
        file: String,
        kind: String,
        marking: String,
        network: Option<String>,
    }
    // Generated in plaintext outside the data directory, which only ever
    // holds sealed bytes, and removed once ingested.
    let scratch = tempfile::tempdir().context("scratch directory for the demo corpus")?;
    let corpus = scratch.path().join("corpus");
    bletchley_corpus::generate(
        &corpus,
        &bletchley_corpus::Options {
            docs: CORPUS_DOCS,
            seed: 2026,
        },
    )?;
    let manifest = std::fs::read_to_string(corpus.join("manifest.jsonl"))?;
    let mut batches: std::collections::BTreeMap<(&str, &str, String), Vec<NewItem>> =
        Default::default();
    for (i, line) in manifest.lines().enumerate() {
        let e: Entry = serde_json::from_str(line).context("corpus manifest")?;
        let (collection, who, marking) = match (e.kind.as_str(), e.network.is_some()) {
            ("call", _) => (
                "mi5/intercepts",
                "alice",
                format!("{}//PERSONAL DATA", e.marking.replace("//UK EYES ONLY", "")),
            ),
            ("email", _) if e.marking.starts_with("TOP") || e.marking.contains("UK EYES") => {
                ("gchq/sigint", "carol", e.marking.clone())
            }
            ("email", _) => (
                "gchq/sigint",
                "carol",
                format!("{}//REL TO GBR, USA", e.marking),
            ),
            (_, true) => ("mi5/counter-terrorism", "alice", e.marking.clone()),
            (_, false) if e.marking == "OFFICIAL" && i % 2 == 0 => {
                ("mod/logistics", "frank", e.marking.clone())
            }
            (_, false) if e.marking.starts_with("SECRET") && i % 3 == 0 => (
                "mi6/humint",
                "dave",
                format!("{}//REL TO GBR, USA", e.marking),
            ),
            (_, false) => ("mi6/humint", "dave", e.marking.clone()),
        };
        let content = std::fs::read(corpus.join(&e.file))?;
        let title = e.file.rsplit('/').next().unwrap_or(&e.file).to_owned();
        batches
            .entry((collection, who, marking))
            .or_default()
            .push(NewItem { title, content });
    }
    let mut n = 0;
    for ((collection, who, marking), items) in batches {
        n += items.len();
        let opts = IngestOptions {
            collection: collection.into(),
            marking: Marking::parse(&marking)?,
            authority: Some("DEMO-WARRANT-002".into()),
            retain_until_ms: None,
            justification: Some("demo corpus".into()),
            priority: Default::default(),
        };
        bletchley_index::ingest::ingest(p, who, &opts, items)
            .with_context(|| format!("ingesting demo corpus into {collection} as {who}"))?;
    }
    let key: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus.join("answer-key.json"))?)?;
    let selector = key["networks"][0]["members"][0]["phone"]
        .as_str()
        .unwrap_or("+447911123456")
        .to_owned();
    Ok((n, selector))
}

/// Creates the demo data directory and prints what each principal sees.
pub fn run(cli: &Cli, a: &DemoArgs) -> Result<ExitCode> {
    let dir = cli
        .data
        .clone()
        .unwrap_or_else(|| PathBuf::from("bletchley-demo"));
    if dir.exists() {
        // Only ever delete a directory this command made.
        if !dir.join(DEMO_MARKER).exists() {
            bail!(
                "{} exists and is not a demo directory: choose another with --data DIR",
                dir.display()
            );
        }
        if !a.force {
            bail!(
                "{} exists: pass --force to replace it, or --data DIR for another place",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let opts = InitOptions {
        home: Nation::gbr(),
        jurisdiction: Jurisdiction::parse("GB/london")?,
        kdf: KdfParams {
            m_kib: 19 * 1024,
            t: 2,
            p: 1,
        },
    };
    let mut p = Platform::init(&dir, &opts, Box::new(DemoUnlock))?;
    std::fs::write(
        dir.join(DEMO_MARKER),
        "made by `bletchley demo`; `demo --force` may delete this directory\n",
    )?;
    for a in ["gchq", "mi5", "mi6", "mod"] {
        p.add_agency(a)?;
    }
    for w in PEOPLE {
        p.add_principal(&Principal {
            name: w.name.into(),
            agency: w.agency.into(),
            clearance: w.clearance,
            compartments: w.compartments.iter().map(|s| s.to_string()).collect(),
            nationality: Nation::from_alpha3(w.nationality).context("nation")?,
            roles: w.roles.iter().copied().collect(),
            standing: Default::default(),
            reviewed_s: None,
        })?;
    }
    for w in PEOPLE {
        p.set_password(w.name, DEMO_PASSPHRASE)?;
    }
    for (c, bulk) in [
        ("mi5/counter-terrorism", false),
        ("mi5/intercepts", true),
        ("gchq/sigint", false),
        ("mi6/humint", false),
        ("mod/logistics", false),
    ] {
        p.add_collection(c, bulk)?;
    }
    let now = bletchley_store::now_ms() / 1000;
    p.add_operation(&Operation {
        name: "NIMROD".into(),
        agencies: ["mi5", "gchq", "mi6"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
        members: Default::default(),
        start: now - 86_400,
        end: Some(now + 90 * 86_400),
        shares: vec![],
    })?;
    p.share("NIMROD", "gchq/sigint")?;
    p.share("NIMROD", "mi6/humint")?;
    let ingester = |c: &str| match c.split('/').next() {
        Some("mi5") => "alice",
        Some("gchq") => "carol",
        Some("mi6") => "dave",
        _ => "frank",
    };
    let mut total = 0;
    let mut written: Vec<String> = Vec::new();
    for (coll, marking, title, text) in DOCS {
        // Ingest as someone of the owning agency cleared for the marking.
        let who = if coll.starts_with("gchq") {
            "carol"
        } else if marking.starts_with("TOP") {
            "alice"
        } else {
            ingester(coll)
        };
        let who = if coll.starts_with("mi6") && marking.contains("UK EYES") {
            "dave"
        } else {
            who
        };
        let opts = IngestOptions {
            collection: (*coll).into(),
            marking: Marking::parse(marking)?,
            authority: Some("DEMO-WARRANT-001".into()),
            retain_until_ms: None,
            justification: Some("demo data".into()),
            priority: Default::default(),
        };
        written.extend(p.ingest(
            who,
            &opts,
            vec![NewItem {
                title: (*title).into(),
                content: text.as_bytes().to_vec(),
            }],
        )?);
        total += 1;
    }
    let (corpus_items, selector) = ingest_corpus(&mut p)?;
    total += corpus_items;
    let cyber = crate::demo_cyber::ingest_cyber(&mut p)?;
    let recording = crate::demo_speech::ingest_recording(&mut p)?;
    total += 1 + if recording.transcribed { 2 } else { 0 };
    total += cyber.logs + cyber.rules + cyber.alerts + cyber.cases + cyber.case_notes + 1;
    let passphrase = std::env::var("BLETCHLEY_PASSPHRASE")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEMO_PASSPHRASE.to_owned());
    // Administration: MI5 reviews its people every 90 days; its cyber logs are kept two years.
    p.set_review_schedule("mi5", Some(90 * 86_400))?;
    p.set_retention_schedule(
        &bletchley_store::platform::ScheduleScope::Collection("mi5/cyber".into()),
        Some(2 * 365 * 86_400),
    )?;
    // Semantic search, when the embedding model is installed: every item embedded now, as the
    // worker `serve` starts would, so that searching by meaning works from the first page.
    let semantic = bletchley_ai::models::embedding_model_dir(
        &crate::speech::default_models_dir(),
        bletchley_ai::models::DEFAULT_EMBEDDING_MODEL,
    )
    .is_ok();
    if semantic {
        // The written documents are embedded now; the generated corpus (templated notes and
        // call records, some minutes of embedding on two cores) is left for `semantic enable`.
        crate::semantic::turn_on(&mut p, bletchley_ai::models::DEFAULT_EMBEDDING_MODEL, false)?;
        let queue: Vec<(&str, &str)> = written
            .iter()
            .map(|id| (bletchley_store::jobs::EMBED, id.as_str()))
            .collect();
        p.enqueue_jobs("operator", &queue)?;
        crate::demo_cyber::run_jobs_now(&mut p, None)?;
    }
    demo_reads(&mut p)?;
    let witness = crate::witness::start_demo_witness(&mut p, &dir, &passphrase)?;
    let report_pdf = dir.join("oversight-report.pdf");
    let now_ms = bletchley_store::platform::now_ms();
    let period = bletchley_oversight::Period {
        from_ms: now_ms - 90 * DAY_MS,
        to_ms: now_ms - now_ms.rem_euclid(DAY_MS) + DAY_MS,
    };
    let report = p.oversight_report("olivia", period)?;
    let title = format!(
        "Oversight report {} to {} (demo)",
        bletchley_oversight::report::date(period.from_ms),
        bletchley_oversight::report::date(period.to_ms - 1)
    );
    std::fs::write(
        &report_pdf,
        bletchley_oversight::pdf::render(&report, &title),
    )
    .with_context(|| format!("writing {}", report_pdf.display()))?;
    println!("Bletchley demo platform created in {}", dir.display());
    println!(
        "  4 agencies (gchq, mi5, mi6, mod), {} principals, 7 collections (mi5/intercepts is bulk), operation NIMROD, {total} items",
        PEOPLE.len()
    );
    println!(
        "  mi5/cyber: {} Windows event logs of recorded attacks hunted with {} SigmaHQ rules (mi5/sigma-rules): {} alerts, SECRET like the logs, grouped into {} triage cases (the first assigned to bob)",
        cyber.logs, cyber.rules, cyber.alerts, cyber.cases
    );
    if recording.transcribed {
        println!(
            "  gchq/sigint: a Spanish telephone call ({}, {}) transcribed and translated: its item view shows both side by side",
            crate::demo_speech::TITLE,
            recording.id
        );
    } else {
        println!(
            "  gchq/sigint: a Spanish telephone call ({}, {}) waits for transcription: run `bletchley models fetch`, and `serve` transcribes it",
            crate::demo_speech::TITLE,
            recording.id
        );
    }
    if semantic {
        println!(
            "  semantic search on ({}): the written documents embedded, and every item ingested from now on; `semantic enable` embeds the generated corpus too (minutes); try `search --mode semantic` or the console's \"meaning\" search",
            bletchley_ai::models::DEFAULT_EMBEDDING_MODEL
        );
    } else {
        println!(
            "  semantic search off: `bletchley models fetch {}`, then `bletchley semantic enable`",
            bletchley_ai::models::DEFAULT_EMBEDDING_MODEL
        );
    }
    if cyber.waiting.is_some() {
        println!(
            "  playbook contain-credential-theft (mi5/playbooks) ran on {} cases as they opened; their STIX steps wait for a second responder (bob)",
            cyber.playbook_runs
        );
    }
    println!();
    println!(
        "What each principal sees (bletchley --data {} --as NAME ls --justification demo):",
        dir.display()
    );
    for w in PEOPLE {
        let l = p.list(w.name, None, Some("demo walkthrough"))?;
        println!("  {:<10} {:>2} items  {}", w.name, l.items.len(), w.note);
    }
    println!();
    println!("Try:");
    if std::env::var("BLETCHLEY_PASSPHRASE").is_err() {
        println!("  export BLETCHLEY_PASSPHRASE={DEMO_PASSPHRASE}");
    }
    println!("  bletchley --data {} --as erin ls", dir.display());
    println!(
        "  bletchley --data {} --as alice search \"harbour OR port\" --facets",
        dir.display()
    );
    println!(
        "  bletchley --data {} --as bob search \"harbour OR port\" --facets   (fewer hits, other counts)",
        dir.display()
    );
    if semantic {
        println!(
            "  bletchley --data {} --as alice search \"someone buying chemicals for a bomb\" --mode semantic   (finds the precursors report: no word in common)",
            dir.display()
        );
    }
    println!(
        "  bletchley --data {} --as alice graph neighbours {selector} --hops 2",
        dir.display()
    );
    println!(
        "  bletchley --data {} --as alice xref --collection mi5/counter-terrorism --against gchq/sigint   (the people and identifiers both hold; the console's Cross-reference page too)",
        dir.display()
    );
    println!(
        "  bletchley --data {} --as alice timeline {selector} --justification \"demo\"",
        dir.display()
    );
    println!(
        "  bletchley --data {} --as alice alerts --level high   (carol of GCHQ sees none of them)",
        dir.display()
    );
    println!(
        "  bletchley --data {} --as alice playbook ls",
        dir.display()
    );
    if let Some(run) = &cyber.waiting {
        println!(
            "  bletchley --data {} --as alice cases show {}   (the playbook's steps in its history)",
            dir.display(),
            run.case
        );
        println!(
            "  bletchley --data {} --as alice playbook dry-run contain-credential-theft --case {}",
            dir.display(),
            run.case
        );
        println!(
            "  bletchley --data {} --as bob playbook approve --case {} --run {}   (bob, a responder, is the second person)",
            dir.display(),
            run.case,
            run.run
        );
    }
    println!(
        "  bletchley --data {} audit verify   (the overseer's witness {} cosigned {} entries: {})",
        dir.display(),
        witness.key.split('+').next().unwrap_or_default(),
        witness.report.size,
        if witness.report.cosigned_by >= witness.report.quorum {
            "verify requires its cosignature"
        } else {
            "NOT cosigned: see `audit cosign`"
        }
    );
    println!(
        "  bletchley --data {} audit proof 1   (an inclusion proof against the cosigned checkpoint)",
        dir.display()
    );
    println!(
        "  the witness (on the overseer's machine in a real deployment) listens at {} while the demo runs; its key and state are in {}",
        witness.url,
        dir.join("overseer-witness").display()
    );
    println!("  bletchley --data {} audit show", dir.display());
    println!(
        "  bletchley --data {} --as olivia oversight report --from {} --out report.pdf   (the overseer's report; this one is in {}: {} accesses, {} denials, {} sample entries proved; the console's Oversight page too)",
        dir.display(),
        bletchley_oversight::report::date(period.from_ms),
        report_pdf.display(),
        report
            .figure("accesses-by-agency")
            .map_or(0, |f| f.body.total()),
        report.figure("denials").map_or(0, |f| f.body.total()),
        report.proofs.len()
    );
    println!(
        "  bletchley --data {} --as mi5-admin review ls   (MI5 confirms its people every 90 days; the console's Admin page too)",
        dir.display()
    );
    println!(
        "  bletchley --data {} retention schedule ls   (mi5/cyber is kept two years after ingest)",
        dir.display()
    );
    println!(
        "Key files are sealed with the passphrase {DEMO_PASSPHRASE:?} (or $BLETCHLEY_PASSPHRASE when set)."
    );
    if a.no_serve {
        return Ok(ExitCode::SUCCESS);
    }
    let listen: std::net::SocketAddr = a
        .listen
        .parse()
        .with_context(|| format!("--listen {:?}: expected ADDRESS:PORT", a.listen))?;
    bletchley_server::tls::ensure_certificate(&p)?;
    println!();
    println!("Web console: log in as any principal above with the password {DEMO_PASSPHRASE:?}");
    println!(
        "  (the certificate is self-signed for localhost: {}; accept it in the browser or trust that file)",
        bletchley_server::tls::paths(&dir).0.display()
    );
    println!(
        "  alice and bob run the same search and see different hits and banners; erin sees only REL TO USA."
    );
    println!("Press Ctrl-C to stop.");
    bletchley_server::serve(
        p,
        &bletchley_server::ServeOptions {
            listen,
            tls: None,
            site: None,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

const DAY_MS: i64 = 86_400_000;

/// A few days' reading, so that the overseer's report has more than one reader: each
/// analyst reads a few items they may see, erin (a US liaison) asks for one that is not
/// releasable to her and is denied, and the denial is audited like any other.
fn demo_reads(p: &mut Platform) -> Result<()> {
    for who in ["carol", "dave", "erin", "bob"] {
        let listing = p.list(who, None, Some("demo walkthrough"))?;
        for m in listing.items.iter().take(3) {
            p.get(who, &m.id, Some("demo: reading the morning's reporting"))?;
        }
    }
    let erin: std::collections::HashSet<String> = p
        .list("erin", None, Some("demo walkthrough"))?
        .items
        .into_iter()
        .map(|m| m.id)
        .collect();
    if let Some(m) = p
        .list("dave", None, Some("demo walkthrough"))?
        .items
        .into_iter()
        .find(|m| !erin.contains(&m.id))
    {
        // Refused and audited; the demo goes on.
        let _ = p.get("erin", &m.id, Some("demo: asking for UK-only reporting"));
    }
    Ok(())
}
