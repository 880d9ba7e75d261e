//! Cross-referencing: the people, organisations and selectors of one collection that appear in
//! other collections a principal may see, scored, with the items that support each match — as
//! Aleph's cross-referencing does, but resumable, incremental, and with its progress shown.
//!
//! What is compared comes from the index's selector terms (`kind:value`), walked through the
//! principal's visible set exactly as a search is, so a match exists only if items the principal
//! may see support both of its sides. Selectors (telephone numbers, e-mail addresses, accounts,
//! wallets, handsets) match when equal; names match across scripts and spellings by
//! [`crate::name_match::similarity`], which is the costly part: its pairs are kept in a sealed
//! state per principal and question ([`NameMatches`]), so that a later run compares only the
//! names that arrived since, and a run stopped half way takes up where its last checkpoint was.
//!
//! The state is a cache, never a source of truth: it holds name pairs and their scores, and
//! every answer is built from the index's current visible set. A host that deletes the state
//! or puts back an older one costs a recomputation; one that alters it or moves it to another
//! principal's question cannot open it (sealed, bound to its name).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use bletchley_audit::Outcome;
use bletchley_policy::{Admitted, CollectionId};
use bletchley_store::{Actor, Platform};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocAddress, DocSet, TERMINATED, TantivyDocument};

use crate::SearchIndex;
use crate::entities::Kind;
use crate::error::{Error, Result};
use crate::name_match::{NameKey, SAME_NAME, similarity};
use crate::schema::Fields;
use crate::sealed_dir::SealedDirectory;

/// The kinds of selector compared: names, and identifiers that name one person or account.
/// Places, domains, addresses of machines and URLs are left out: two collections that both
/// mention Dubai or gmail.com share nothing worth an analyst's time.
pub const KINDS: [Kind; 8] = [
    Kind::Person,
    Kind::Organisation,
    Kind::Phone,
    Kind::Email,
    Kind::Iban,
    Kind::Bitcoin,
    Kind::Ethereum,
    Kind::Imei,
];

/// Kinds whose values are names, compared by similarity rather than equality.
fn is_name(term: &str) -> bool {
    term.starts_with("person:") || term.starts_with("org:")
}

/// Where each compared selector occurs among the documents a principal may see: term →
/// collection → documents, in one searcher generation.
pub struct Occurrences {
    searcher: tantivy::Searcher,
    fields: Fields,
    terms: BTreeMap<String, BTreeMap<u32, Vec<DocAddress>>>,
}

impl Occurrences {
    /// Reads the selector terms of [`KINDS`] in `collections` from `index`, through the visible
    /// set of `admitted`: postings only, no stored document is opened.
    pub fn read(
        index: &SearchIndex,
        admitted: &Admitted,
        collections: &BTreeSet<u32>,
    ) -> Result<Occurrences> {
        let (searcher, set, fields) = index.gated_searcher(admitted)?;
        let mut terms: BTreeMap<String, BTreeMap<u32, Vec<DocAddress>>> = BTreeMap::new();
        for (ord, seg) in searcher.segment_readers().iter().enumerate() {
            let id = seg.segment_id();
            let column = seg.fast_fields().u64("collection")?;
            let inv = seg.inverted_index(fields.entity)?;
            for kind in KINDS {
                let prefix = format!("{}:", kind.name());
                let mut stream = inv.terms().range().ge(prefix.as_bytes()).into_stream()?;
                while stream.advance() {
                    let key = stream.key();
                    if !key.starts_with(prefix.as_bytes()) {
                        break;
                    }
                    let Ok(term) = std::str::from_utf8(key) else {
                        continue;
                    };
                    let mut postings =
                        inv.read_postings_from_terminfo(stream.value(), IndexRecordOption::Basic)?;
                    let mut doc = postings.doc();
                    while doc != TERMINATED {
                        if set.contains(id, doc)
                            && let Some(c) = column.first(doc)
                            && let Ok(c) = u32::try_from(c)
                            && collections.contains(&c)
                        {
                            terms
                                .entry(term.to_owned())
                                .or_default()
                                .entry(c)
                                .or_default()
                                .push(DocAddress::new(ord as u32, doc));
                        }
                        doc = postings.advance();
                    }
                }
            }
        }
        Ok(Occurrences {
            searcher,
            fields,
            terms,
        })
    }

    /// Names (person and organisation terms) occurring in any of `collections`.
    pub fn names_in(&self, collections: &BTreeSet<u32>) -> BTreeSet<String> {
        self.terms
            .iter()
            .filter(|(t, by)| is_name(t) && by.keys().any(|c| collections.contains(c)))
            .map(|(t, _)| t.clone())
            .collect()
    }

    fn docs(&self, term: &str, collection: u32) -> &[DocAddress] {
        self.terms
            .get(term)
            .and_then(|by| by.get(&collection))
            .map_or(&[], Vec::as_slice)
    }

    /// The first `limit` of `docs` as items, ordered by id.
    fn items(&self, docs: &[DocAddress], limit: usize) -> Result<Vec<XrefItem>> {
        let mut out = Vec::with_capacity(docs.len().min(limit));
        for addr in docs {
            let d: TantivyDocument = self.searcher.doc(*addr)?;
            let text = |field| {
                d.get_first(field)
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_owned()
            };
            out.push(XrefItem {
                id: text(self.fields.id),
                title: text(self.fields.title),
                marking: text(self.fields.marking),
            });
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.truncate(limit);
        Ok(out)
    }
}

/// Name pairs found alike so far for one question, and the names they were found among.
///
/// Invariant: for every name `h` in `seen_here` and `t` in `seen_there` of the same kind,
/// `pairs[h][t]` is present exactly when their similarity is at least [`SAME_NAME`].
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NameMatches {
    seen_here: BTreeSet<String>,
    seen_there: BTreeSet<String>,
    pairs: BTreeMap<String, BTreeMap<String, f64>>,
}

/// What a checkpoint tells the comparison: go on, or stop here (the state just saved is
/// taken up by the next run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Compare the next batch.
    Go,
    /// Stop: the time this run was given is spent.
    Stop,
}

/// Comparing names a batch at a time: the state is saved after each.
pub const NAME_BATCH: usize = 500;

impl NameMatches {
    /// How many names a call of [`NameMatches::update`] with these sets compares: the names of
    /// either side not compared before.
    pub fn pending(&self, here: &BTreeSet<String>, there: &BTreeSet<String>) -> usize {
        here.iter().filter(|h| !self.seen_here.contains(*h)).count()
            + there
                .iter()
                .filter(|t| !self.seen_there.contains(*t))
                .count()
    }

    /// Compares what has not been compared yet, [`NAME_BATCH`] names at a time: new names of
    /// `there` against the names of `here` compared before, then new names of `here` against
    /// all of `there`. After each batch `checkpoint` gets the state and the names compared so
    /// far (to save it and show progress) and says whether to go on; the state it gets always
    /// holds the invariant, so a run stopped there (or killed) resumes from it. Names no longer
    /// in `here` or `there` are dropped first. Returns [`Flow::Stop`] when stopped early.
    pub fn update(
        &mut self,
        here: &BTreeSet<String>,
        there: &BTreeSet<String>,
        checkpoint: &mut dyn FnMut(&NameMatches, usize) -> Result<Flow>,
    ) -> Result<Flow> {
        self.update_in_batches(here, there, NAME_BATCH, checkpoint)
    }

    fn update_in_batches(
        &mut self,
        here: &BTreeSet<String>,
        there: &BTreeSet<String>,
        batch_size: usize,
        checkpoint: &mut dyn FnMut(&NameMatches, usize) -> Result<Flow>,
    ) -> Result<Flow> {
        self.seen_here.retain(|h| here.contains(h));
        self.seen_there.retain(|t| there.contains(t));
        let (seen_here, seen_there) = (&self.seen_here, &self.seen_there);
        self.pairs.retain(|h, _| seen_here.contains(h));
        for found in self.pairs.values_mut() {
            found.retain(|t, _| seen_there.contains(t));
        }
        self.pairs.retain(|_, found| !found.is_empty());

        let batch_size = batch_size.max(1);
        let new_there: Vec<String> = there
            .iter()
            .filter(|t| !self.seen_there.contains(*t))
            .cloned()
            .collect();
        let new_here: Vec<String> = here
            .iter()
            .filter(|h| !self.seen_here.contains(*h))
            .cloned()
            .collect();
        let mut done = 0;
        if !new_there.is_empty() {
            let old_here: Vec<String> = self.seen_here.iter().cloned().collect();
            let blocks = Blocks::of(old_here.iter().map(String::as_str));
            for batch in new_there.chunks(batch_size) {
                for t in batch {
                    let key = NameKey::new(name_of(t));
                    for (h, their_key) in blocks.candidates(t, &key) {
                        self.record(h, t, similarity(their_key, &key));
                    }
                }
                self.seen_there.extend(batch.iter().cloned());
                done += batch.len();
                if checkpoint(self, done)? == Flow::Stop && done < new_there.len() + new_here.len()
                {
                    return Ok(Flow::Stop);
                }
            }
        }
        if !new_here.is_empty() {
            let all_there: Vec<String> = self.seen_there.iter().cloned().collect();
            let blocks = Blocks::of(all_there.iter().map(String::as_str));
            for batch in new_here.chunks(batch_size) {
                for h in batch {
                    let key = NameKey::new(name_of(h));
                    for (t, their_key) in blocks.candidates(h, &key) {
                        self.record(h, t, similarity(&key, their_key));
                    }
                }
                self.seen_here.extend(batch.iter().cloned());
                done += batch.len();
                if checkpoint(self, done)? == Flow::Stop && done < new_there.len() + new_here.len()
                {
                    return Ok(Flow::Stop);
                }
            }
        }
        Ok(Flow::Go)
    }

    /// Keeps the pair `here`, `there` if it is alike enough.
    fn record(&mut self, here: &str, there: &str, score: f64) {
        if score >= SAME_NAME {
            self.pairs
                .entry(here.to_owned())
                .or_default()
                .insert(there.to_owned(), score);
        }
    }
}

/// The value of a `kind:value` term.
fn name_of(term: &str) -> &str {
    term.split_once(':').map_or(term, |(_, v)| v)
}

/// The kind of a `kind:value` term.
fn kind_of(term: &str) -> &str {
    term.split_once(':').map_or("", |(k, _)| k)
}

/// Names grouped by kind and by the first three letters of each word's skeleton, so that a
/// name is compared only with names that share the start of a word with it: the threshold
/// asks every aligned word to be close, and a word's end is where spellings differ most
/// (Petrov, Petrof). Tested to miss nothing that comparing every pair finds on the labelled
/// pairs and their misspellings.
struct Blocks<'a> {
    names: Vec<(&'a str, NameKey)>,
    by_block: HashMap<(String, String), Vec<usize>>,
}

fn block_keys(kind: &str, key: &NameKey) -> BTreeSet<(String, String)> {
    key.skeleton
        .iter()
        .filter(|w| !w.is_empty())
        .map(|w| (kind.to_owned(), w.chars().take(3).collect()))
        .collect()
}

impl<'a> Blocks<'a> {
    fn of(terms: impl Iterator<Item = &'a str>) -> Blocks<'a> {
        let mut names = Vec::new();
        let mut by_block: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for term in terms {
            let key = NameKey::new(name_of(term));
            for b in block_keys(kind_of(term), &key) {
                by_block.entry(b).or_default().push(names.len());
            }
            names.push((term, key));
        }
        Blocks { names, by_block }
    }

    /// Names sharing a block with `term`, each once.
    fn candidates(&self, term: &str, key: &NameKey) -> Vec<(&'a str, &NameKey)> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for b in block_keys(kind_of(term), key) {
            for &i in self.by_block.get(&b).map_or(&[][..], Vec::as_slice) {
                if seen.insert(i) {
                    out.push((self.names[i].0, &self.names[i].1));
                }
            }
        }
        out
    }
}

/// An item supporting one side of a match.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct XrefItem {
    /// Item id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Banner.
    pub marking: String,
}

/// One selector of the collection found in another collection.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct XrefMatch {
    /// The selector as the collection's items name it (`kind:value`).
    pub entity: String,
    /// The selector as the other collection's items name it (the same, for identifiers).
    pub matched: String,
    /// 1 for equal selectors, the names' similarity otherwise.
    pub score: f64,
    /// The other collection, `agency/name`.
    pub collection: String,
    /// Items of the collection that mention it (the first few, by id), and how many in all.
    pub here: Vec<XrefItem>,
    /// Items here in all.
    pub here_total: usize,
    /// Items of the other collection that mention the match, and how many in all.
    pub there: Vec<XrefItem>,
    /// Items there in all.
    pub there_total: usize,
}

/// Supporting items shown per side of a match.
pub const ITEMS_SHOWN: usize = 5;

/// The matches of the selectors of collection `here` in the collections `there`, best first
/// (score, then the number of supporting items there): equal identifiers, and the name pairs
/// of `names` — each only where the principal's visible items support both sides.
pub fn matches(
    occ: &Occurrences,
    here: u32,
    there: &BTreeMap<u32, String>,
    names: &NameMatches,
) -> Result<Vec<XrefMatch>> {
    let mut pairs: Vec<(&str, &str, f64)> = Vec::new();
    for (term, by) in &occ.terms {
        if !is_name(term) && by.contains_key(&here) {
            pairs.push((term, term, 1.0));
        }
    }
    for (h, found) in &names.pairs {
        for (t, s) in found {
            pairs.push((h, t, *s));
        }
    }
    let mut out = Vec::new();
    for (h, t, score) in pairs {
        let mine = occ.docs(h, here);
        if mine.is_empty() {
            continue;
        }
        for (c, name) in there {
            let theirs = occ.docs(t, *c);
            if theirs.is_empty() {
                continue;
            }
            out.push(XrefMatch {
                entity: h.to_owned(),
                matched: t.to_owned(),
                score,
                collection: name.clone(),
                here: occ.items(mine, ITEMS_SHOWN)?,
                here_total: mine.len(),
                there: occ.items(theirs, ITEMS_SHOWN)?,
                there_total: theirs.len(),
            });
        }
    }
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.there_total.cmp(&a.there_total))
            .then_with(|| {
                (&a.entity, &a.matched, &a.collection).cmp(&(&b.entity, &b.matched, &b.collection))
            })
    });
    Ok(out)
}

/// A cross-referencing question: one collection against others (all the principal may see
/// when none are named).
#[derive(Clone, Debug)]
pub struct XrefRequest {
    /// `agency/name` of the collection whose selectors are looked for.
    pub collection: String,
    /// `agency/name` of the collections to look in; empty for every other visible one.
    pub against: Vec<String>,
    /// How long to compare names before answering with what is found so far (the next run
    /// goes on from there); `None` to compare everything first.
    pub time_limit: Option<std::time::Duration>,
}

/// What a run found, and what it did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct XrefReport {
    /// The collection.
    pub collection: String,
    /// The collections looked in.
    pub against: Vec<String>,
    /// Matches, best first.
    pub matches: Vec<XrefMatch>,
    /// Names compared in this run (0 when nothing new arrived since the last).
    pub names_compared: usize,
    /// Names left to compare: not 0 when the run's time limit came first, and then the
    /// matches are those found so far.
    pub names_left: usize,
    /// Names on both sides in all (for progress: `names_total - names_left` are compared).
    pub names_total: usize,
    /// Whether the run took up a saved state (earlier comparisons reused).
    pub resumed: bool,
}

/// Where a run reports progress: names compared so far, of how many.
pub type XrefProgress<'a> = &'a mut dyn FnMut(usize, usize);

/// Runs `req` for `who`: admits the collections as a search does, refuses a collection the
/// principal may not see (as if it did not exist) and an empty comparison, compares what has
/// not been compared before (saving the state as it goes), and audits the run as `xref` with
/// the ids of every item shown.
pub fn run(
    p: &mut Platform,
    index: &SearchIndex,
    who: &str,
    req: &XrefRequest,
    justification: Option<&str>,
    progress: XrefProgress<'_>,
) -> Result<XrefReport> {
    let gate = p.gate(who)?;
    let admitted = crate::access::visible(p, &gate, justification)?;
    let result = run_admitted(p, index, who, &admitted, req, progress);
    let (outcome, reason, mut targets) = match &result {
        Ok(r) => (
            Outcome::Allowed,
            Some(format!("{} matches", r.matches.len())),
            shown_ids(&r.matches),
        ),
        Err(e) => (Outcome::Refused, Some(e.to_string()), Vec::new()),
    };
    targets.insert(
        0,
        format!("{} against {}", req.collection, describe(&req.against)),
    );
    p.record(
        Actor::Principal(who.to_owned()),
        "xref",
        targets,
        justification,
        outcome,
        reason,
    )?;
    result
}

fn describe(against: &[String]) -> String {
    if against.is_empty() {
        "all visible collections".into()
    } else {
        against.join(", ")
    }
}

/// Every item id a report shows, once.
fn shown_ids(matches: &[XrefMatch]) -> Vec<String> {
    let ids: BTreeSet<&str> = matches
        .iter()
        .flat_map(|m| m.here.iter().chain(&m.there))
        .map(|i| i.id.as_str())
        .collect();
    ids.into_iter().map(str::to_owned).collect()
}

fn run_admitted(
    p: &Platform,
    index: &SearchIndex,
    who: &str,
    admitted: &Admitted,
    req: &XrefRequest,
    progress: XrefProgress<'_>,
) -> Result<XrefReport> {
    let names = admitted.names();
    let unknown = |c: &str| {
        Error::Query(format!(
            "no collection {c:?} that you may see (agency/name, as `collections` lists them)"
        ))
    };
    let here: CollectionId = *names
        .get(&req.collection)
        .ok_or_else(|| unknown(&req.collection))?;
    let mut there: BTreeMap<u32, String> = BTreeMap::new();
    if req.against.is_empty() {
        for (name, id) in names {
            if *id != here {
                there.insert(id.0, name.clone());
            }
        }
    } else {
        for c in &req.against {
            let id = names.get(c).ok_or_else(|| unknown(c))?;
            if *id == here {
                return Err(Error::Query(format!(
                    "{c} is the collection being cross-referenced; name others to look in"
                )));
            }
            there.insert(id.0, c.clone());
        }
    }
    if there.is_empty() {
        return Err(Error::Query(format!(
            "there is no other collection you may see to cross-reference {} against",
            req.collection
        )));
    }
    let mut all: BTreeSet<u32> = there.keys().copied().collect();
    let there_ids = all.clone();
    all.insert(here.0);
    let occ = Occurrences::read(index, admitted, &all)?;
    let here_names = occ.names_in(&BTreeSet::from([here.0]));
    let there_names = occ.names_in(&there_ids);

    let dir = state_dir(p)?;
    let file = state_file(who, &req.collection, there.values());
    let (mut state, resumed) = match load_state(&dir, &file) {
        Ok(Some(s)) => (s, true),
        // Missing, or not opening under its key and name (altered, moved): start again.
        Ok(None) | Err(_) => (NameMatches::default(), false),
    };
    let total = state.pending(&here_names, &there_names);
    progress(0, total);
    let started = std::time::Instant::now();
    let mut compared = 0;
    state.update(&here_names, &there_names, &mut |s, done| {
        save_state(&dir, &file, s)?;
        compared = done;
        progress(done, total);
        Ok(match req.time_limit {
            Some(limit) if started.elapsed() >= limit => Flow::Stop,
            _ => Flow::Go,
        })
    })?;
    let matches = matches(&occ, here.0, &there, &state)?;
    Ok(XrefReport {
        collection: req.collection.clone(),
        against: there.into_values().collect(),
        matches,
        names_compared: compared,
        names_left: total - compared,
        names_total: here_names.len() + there_names.len(),
        resumed,
    })
}

/// The sealed directory of saved states, under a key of its own.
fn state_dir(p: &Platform) -> Result<SealedDirectory> {
    let path = p.root().join("xref");
    SealedDirectory::open(&path, p.derived_key("xref-state"))
        .map_err(|e| Error::Io(path.display().to_string(), e))
}

/// The state's file name: a digest of the principal and the question, so that the sealing
/// (bound to the name) ties a state to them.
fn state_file(who: &str, here: &str, there: impl Iterator<Item = impl AsRef<str>>) -> String {
    use sha3::{Digest, Sha3_256};
    let mut h = Sha3_256::new();
    for part in [who, here]
        .into_iter()
        .map(str::to_owned)
        .chain(there.map(|t| t.as_ref().to_owned()))
    {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}.json")
}

fn load_state(dir: &SealedDirectory, file: &str) -> Result<Option<NameMatches>> {
    use tantivy::Directory;
    use tantivy::directory::error::OpenReadError;
    match dir.atomic_read(Path::new(file)) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::Query(format!("cross-reference state: {e}"))),
        Err(OpenReadError::FileDoesNotExist(_)) => Ok(None),
        Err(e) => Err(Error::Query(format!("cross-reference state: {e}"))),
    }
}

fn save_state(dir: &SealedDirectory, file: &str, state: &NameMatches) -> Result<()> {
    use tantivy::Directory;
    let bytes = serde_json::to_vec(state).map_err(|e| Error::Query(e.to_string()))?;
    dir.atomic_write(Path::new(file), &bytes)
        .map_err(|e| Error::Io(file.to_owned(), e))
}

#[cfg(test)]
mod tests;
