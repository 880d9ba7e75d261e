//! Synthetic corpora for tests, demos and benchmarks: documents in six
//! languages, e-mails with attachments and call-detail records, with
//! planted networks of people whose links, communities and shortest paths
//! are written to an answer key computed here, independently of the
//! platform's own graph code.
//!
//! The same seed gives the same bytes on every machine (ChaCha8).

mod people;
mod text;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use people::Person;

/// Errors writing a corpus.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The output directory has files in it already.
    #[error("{0} exists and is not empty: choose a new directory")]
    NotEmpty(PathBuf),
    /// Asked for too little to plant anything.
    #[error("--docs must be at least {MIN_DOCS} (got {0})")]
    TooFew(usize),
    /// Writing failed.
    #[error("writing {0}: {1}")]
    Io(PathBuf, std::io::Error),
}

/// Smallest corpus that holds two planted networks and their bridge.
pub const MIN_DOCS: usize = 60;
const MEMBERS: usize = 5;
const FILES_PER_DIR: usize = 1_000;

const NETWORK_CITIES: &[&str] = &[
    "Porto",
    "Lisbon",
    "Marseille",
    "Rotterdam",
    "Istanbul",
    "Tangier",
    "Odessa",
    "Valletta",
    "Palermo",
    "Riga",
    "Tbilisi",
    "Beirut",
    "Casablanca",
    "Hamburg",
    "Naples",
    "Tallinn",
];
const BACKGROUND_CITIES: &[&str] = &[
    "London",
    "Paris",
    "Berlin",
    "Madrid",
    "Rome",
    "Vienna",
    "Warsaw",
    "Prague",
    "Athens",
    "Stockholm",
    "Oslo",
    "Dublin",
    "Brussels",
    "Zurich",
    "Geneva",
    "Copenhagen",
];

/// What to generate.
#[derive(Clone, Debug)]
pub struct Options {
    /// Files in all: documents, e-mails and call records together.
    pub docs: usize,
    /// Seed of the generator.
    pub seed: u64,
}

/// A planted network in the answer key.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Network {
    /// `network-01`, …
    pub name: String,
    /// The city its reports mention.
    pub city: String,
    /// Its members.
    pub members: Vec<Person>,
    /// Every phone and e-mail term of its members: a community the graph
    /// should find whole, and apart from other networks.
    pub selectors: Vec<String>,
}

/// A shortest path the graph should find.
#[derive(Clone, Debug, serde::Serialize)]
pub struct KnownPath {
    /// From this term.
    pub from: String,
    /// To this term.
    pub to: String,
    /// Links on a shortest path, from breadth-first search over the links
    /// this generator wrote.
    pub hops: usize,
}

/// The answer key written beside the corpus.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AnswerKey {
    /// Seed used.
    pub seed: u64,
    /// Planted networks.
    pub networks: Vec<Network>,
    /// Known shortest paths, including across bridges between networks.
    pub paths: Vec<KnownPath>,
    /// Pairs of selectors in different networks with no link at all.
    pub unconnected: Vec<(String, String)>,
}

/// What was written.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Summary {
    /// Plain-text reports.
    pub documents: usize,
    /// E-mails (each with an attachment).
    pub emails: usize,
    /// Call-detail record files.
    pub call_records: usize,
    /// Calls in them.
    pub calls: usize,
    /// Planted networks.
    pub networks: usize,
    /// Bytes written.
    pub bytes: u64,
}

/// One file of the manifest: where it is and how the demo marks it.
#[derive(serde::Serialize)]
struct ManifestEntry<'a> {
    file: String,
    kind: &'a str,
    lang: &'a str,
    marking: &'a str,
    network: Option<&'a str>,
}

struct Writer {
    root: PathBuf,
    manifest: BufWriter<fs::File>,
    summary: Summary,
    serial: usize,
}

impl Writer {
    fn put(
        &mut self,
        kind: &str,
        ext: &str,
        lang: &str,
        marking: &str,
        network: Option<&str>,
        body: &[u8],
    ) -> Result<(), Error> {
        self.serial += 1;
        let rel = format!(
            "{kind}s/{:04}/{kind}-{:07}.{ext}",
            self.serial / FILES_PER_DIR,
            self.serial
        );
        let path = self.root.join(&rel);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(|e| Error::Io(dir.to_owned(), e))?;
        }
        fs::write(&path, body).map_err(|e| Error::Io(path.clone(), e))?;
        self.summary.bytes += body.len() as u64;
        let entry = ManifestEntry {
            file: rel,
            kind,
            lang,
            marking,
            network,
        };
        let line = serde_json::to_string(&entry).map_err(|e| Error::Io(path.clone(), e.into()))?;
        writeln!(self.manifest, "{line}")
            .map_err(|e| Error::Io(self.root.join("manifest.jsonl"), e))
    }
}

/// A link between two members, and how many items support it.
type Links = BTreeSet<(usize, usize)>;

fn marking(rng: &mut impl Rng, planted: bool) -> &'static str {
    let r = rng.random_range(0..100);
    match (planted, r) {
        (true, 0..40) => "SECRET",
        (true, 40..60) => "SECRET//UK EYES ONLY",
        (true, 60..75) => "TOP SECRET",
        (true, _) => "OFFICIAL-SENSITIVE",
        (false, 0..60) => "OFFICIAL",
        (false, 60..85) => "OFFICIAL-SENSITIVE",
        (false, _) => "SECRET",
    }
}

fn email(
    rng: &mut impl Rng,
    from: &Person,
    to: &Person,
    day: u32,
    subject: &str,
    body: &str,
    attachment: &str,
) -> String {
    let hour = rng.random_range(6..23);
    let minute = rng.random_range(0..60);
    let boundary = format!("=_b{}", rng.random::<u32>());
    format!(
        "From: {} <{}>\r\nTo: {} <{}>\r\nSubject: {subject}\r\nDate: {:02} Mar 2026 {hour:02}:{minute:02}:00 +0000\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n\
--{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=\"note.txt\"\r\n\r\n{attachment}\r\n\
--{boundary}--\r\n",
        from.name,
        from.email,
        to.name,
        to.email,
        day.clamp(1, 28)
    )
}

/// Writes a corpus into `out` (created; must not hold files already).
pub fn generate(out: &Path, opts: &Options) -> Result<Summary, Error> {
    if opts.docs < MIN_DOCS {
        return Err(Error::TooFew(opts.docs));
    }
    if out.exists()
        && fs::read_dir(out)
            .map_err(|e| Error::Io(out.to_owned(), e))?
            .next()
            .is_some()
    {
        return Err(Error::NotEmpty(out.to_owned()));
    }
    fs::create_dir_all(out).map_err(|e| Error::Io(out.to_owned(), e))?;
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
    let manifest_path = out.join("manifest.jsonl");
    let manifest = fs::File::create(&manifest_path).map_err(|e| Error::Io(manifest_path, e))?;
    let mut w = Writer {
        root: out.to_owned(),
        manifest: BufWriter::new(manifest),
        summary: Summary::default(),
        serial: 0,
    };

    // Planted networks: a ring of five with two chords, each link backed by
    // a report, an e-mail and calls; one call bridges each even network to
    // the next.
    let n_networks = (opts.docs / 30).clamp(2, 200);
    let mut networks = Vec::new();
    let mut serial = 0;
    for i in 0..n_networks {
        let members: Vec<Person> = (0..MEMBERS)
            .map(|_| {
                serial += 1;
                Person::member(&mut rng, serial)
            })
            .collect();
        let selectors = members.iter().flat_map(Person::terms).collect();
        networks.push(Network {
            name: format!("network-{:02}", i + 1),
            // A city named by two networks would link them through the
            // place; past the list, networks meet in unnamed districts.
            city: NETWORK_CITIES
                .get(i)
                .map_or_else(|| format!("district {}", i + 1), |c| (*c).to_owned()),
            members,
            selectors,
        });
    }
    let ring: Links = (0..MEMBERS)
        .map(|i| (i, (i + 1) % MEMBERS))
        .chain([(0, 2), (1, 3)])
        .map(|(a, b)| (a.min(b), a.max(b)))
        .collect();
    let n_cdr = (opts.docs / 100).max(1);
    let mut cdr_rows: Vec<Vec<String>> = vec![Vec::new(); n_cdr];
    let mut call = |rng: &mut ChaCha8Rng, a: &Person, b: &Person| {
        let f = rng.random_range(0..n_cdr);
        let day = rng.random_range(1..29);
        let row = format!(
            "{},{},2026-03-{day:02}T{:02}:{:02}:00Z,{},{:.4},{:.4}",
            people::written(rng, &a.phone),
            people::written(rng, &b.phone),
            rng.random_range(0..24),
            rng.random_range(0..60),
            rng.random_range(5..1800),
            rng.random_range(35.0..60.0f64),
            rng.random_range(-10.0..30.0f64),
        );
        cdr_rows[f].push(row);
    };
    // Adjacency over terms, for the answer key's breadth-first search.
    let mut adj: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    // Every selector an item mentions is linked to every other it mentions
    // (co-occurrence), as the platform's graph does; call rows link only
    // their two ends.
    let mut link_all = |terms: &[String]| {
        for a in terms {
            for b in terms {
                if a != b {
                    adj.entry(a.clone()).or_default().insert(b.clone());
                }
            }
        }
    };
    let person = |p: &Person| format!("person:{}", p.name.to_lowercase());
    let place = |city: &str| {
        // Only gazetteer cities are places to the extractor.
        NETWORK_CITIES
            .contains(&city)
            .then(|| format!("place:{}", city.to_lowercase()))
    };
    let mut planted_items = 0;
    for net in &networks {
        for m in &net.members {
            let lang = *text::LANGS.choose(&mut rng).unwrap_or(&"eng");
            let pa = people::written(&mut rng, &m.phone);
            let body = text::card(
                lang,
                &[
                    ("a", &m.name),
                    ("city", &net.city),
                    ("pa", &pa),
                    ("ea", &m.email),
                ],
            );
            let mk = marking(&mut rng, true);
            w.put(
                "document",
                "txt",
                lang,
                mk,
                Some(&net.name),
                body.as_bytes(),
            )?;
            w.summary.documents += 1;
            planted_items += 1;
            let [p, e] = m.terms();
            link_all(
                &[p, e, person(m)]
                    .into_iter()
                    .chain(place(&net.city))
                    .collect::<Vec<_>>(),
            );
        }
        for &(i, j) in &ring {
            let (a, b) = (&net.members[i], &net.members[j]);
            let lang = *text::LANGS.choose(&mut rng).unwrap_or(&"eng");
            let (pa, pb) = (
                people::written(&mut rng, &a.phone),
                people::written(&mut rng, &b.phone),
            );
            let vars = [
                ("a", a.name.as_str()),
                ("b", b.name.as_str()),
                ("pa", pa.as_str()),
                ("pb", pb.as_str()),
                ("city", net.city.as_str()),
            ];
            let report = text::link(&mut rng, lang, &vars);
            let mk = marking(&mut rng, true);
            w.put(
                "document",
                "txt",
                lang,
                mk,
                Some(&net.name),
                report.as_bytes(),
            )?;
            w.summary.documents += 1;
            let day = rng.random_range(1..29);
            let note = text::card(
                lang,
                &[
                    ("a", &a.name),
                    ("city", &net.city),
                    ("pa", &pa),
                    ("ea", &a.email),
                ],
            );
            let mail = email(
                &mut rng,
                a,
                b,
                day,
                &format!("{} / {}", net.city, day),
                &report,
                &note,
            );
            let mk = marking(&mut rng, true);
            w.put("email", "eml", lang, mk, Some(&net.name), mail.as_bytes())?;
            w.summary.emails += 1;
            planted_items += 2;
            call(&mut rng, a, b);
            call(&mut rng, b, a);
            let [a_phone, a_email] = a.terms();
            let [b_phone, _] = b.terms();
            let report: Vec<String> = [a_phone.clone(), b_phone.clone(), person(a), person(b)]
                .into_iter()
                .chain(place(&net.city))
                .collect();
            link_all(&report);
            // The e-mail: both addresses, the report as body, the sender's
            // card attached.
            let mut mail_terms = report;
            mail_terms.extend(b.terms());
            mail_terms.push(a_email);
            link_all(&mail_terms);
            link_all(&[a_phone, b_phone]);
        }
    }
    let mut bridges = Vec::new();
    for pair in networks.chunks(2) {
        if let [x, y] = pair {
            let (a, b) = (&x.members[4], &y.members[0]);
            call(&mut rng, a, b);
            link_all(&[a.terms()[0].clone(), b.terms()[0].clone()]);
            bridges.push((x.members[2].clone(), y.members[3].clone()));
        }
    }

    // Background: people who appear once, in a city no network uses.
    let mut bg = 0;
    let budget = opts.docs.saturating_sub(planted_items + n_cdr);
    while bg < budget {
        bg += 1;
        serial += 1;
        let p = Person::background(&mut rng, serial);
        let lang = *text::LANGS.choose(&mut rng).unwrap_or(&"eng");
        let city = *BACKGROUND_CITIES.choose(&mut rng).unwrap_or(&"London");
        let pa = people::written(&mut rng, &p.phone);
        let body = text::background(lang, &[("a", &p.name), ("city", city), ("pa", &pa)]);
        let mk = marking(&mut rng, false);
        if bg % 5 == 0 {
            serial += 1;
            let q = Person::background(&mut rng, serial);
            let day = rng.random_range(1..29);
            let mail = email(&mut rng, &p, &q, day, city, &body, &body);
            w.put("email", "eml", lang, mk, None, mail.as_bytes())?;
            w.summary.emails += 1;
        } else {
            w.put("document", "txt", lang, mk, None, body.as_bytes())?;
            w.summary.documents += 1;
        }
        if bg % 7 == 0 {
            // Background calls between two fresh numbers.
            serial += 1;
            let q = Person::background(&mut rng, serial);
            call(&mut rng, &p, &q);
        }
    }
    for rows in cdr_rows {
        let mut body = String::from("caller,callee,start,duration,lat,lon\n");
        w.summary.calls += rows.len();
        for r in rows {
            body.push_str(&r);
            body.push('\n');
        }
        let mk = marking(&mut rng, true);
        w.put("call", "csv", "und", mk, None, body.as_bytes())?;
        w.summary.call_records += 1;
    }
    w.manifest
        .flush()
        .map_err(|e| Error::Io(out.join("manifest.jsonl"), e))?;

    let bfs = |from: &str, to: &str| -> Option<usize> {
        let mut seen = BTreeMap::from([(from.to_owned(), 0usize)]);
        let mut q = VecDeque::from([from.to_owned()]);
        while let Some(n) = q.pop_front() {
            let d = seen[&n];
            if n == to {
                return Some(d);
            }
            for m in adj.get(&n).into_iter().flatten() {
                if !seen.contains_key(m) {
                    seen.insert(m.clone(), d + 1);
                    q.push_back(m.clone());
                }
            }
        }
        None
    };
    let mut paths = Vec::new();
    for (a, b) in &bridges {
        let (from, to) = (format!("phone:{}", a.phone), format!("phone:{}", b.phone));
        if let Some(hops) = bfs(&from, &to) {
            paths.push(KnownPath { from, to, hops });
        }
    }
    for net in &networks {
        let (from, to) = (
            format!("email:{}", net.members[0].email),
            format!("phone:{}", net.members[3].phone),
        );
        if let Some(hops) = bfs(&from, &to) {
            paths.push(KnownPath { from, to, hops });
        }
    }
    let mut unconnected = Vec::new();
    if networks.len() >= 3 && networks.len() % 2 == 1 {
        // The last network of an odd count has no bridge.
        let last = &networks[networks.len() - 1];
        unconnected.push((
            format!("phone:{}", networks[0].members[0].phone),
            format!("phone:{}", last.members[0].phone),
        ));
    } else if networks.len() >= 4 {
        unconnected.push((
            format!("phone:{}", networks[0].members[0].phone),
            format!("phone:{}", networks[2].members[0].phone),
        ));
    }
    w.summary.networks = networks.len();
    let key = AnswerKey {
        seed: opts.seed,
        networks,
        paths,
        unconnected,
    };
    let key_path = out.join("answer-key.json");
    let json =
        serde_json::to_vec_pretty(&key).map_err(|e| Error::Io(key_path.clone(), e.into()))?;
    fs::write(&key_path, json).map_err(|e| Error::Io(key_path, e))?;
    Ok(w.summary)
}
