//! What the report says: figures counted from the opened audit entries of a period, each
//! with the sequence numbers it was counted from, so that the overseer can check any
//! figure against the witnessed log.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use bletchley_audit::{Entry, InclusionProof, Outcome};
use bletchley_policy::Marking;

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// Shown where an entry predates the collection and marking being recorded in it.
pub const NOT_RECORDED: &str = "(not recorded)";

/// Shown for acts of the platform itself (operator, replication, the worker).
pub const PLATFORM: &str = "(platform)";

/// The half-open span of time a report covers, in Unix milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Period {
    /// First millisecond covered.
    pub from_ms: i64,
    /// First millisecond not covered.
    pub to_ms: i64,
}

impl Period {
    /// Whether an entry made at `time_ms` falls in the period.
    pub fn covers(&self, time_ms: i64) -> bool {
        (self.from_ms..self.to_ms).contains(&time_ms)
    }
}

/// The oversight report: figures, and the proofs that tie a sample of each to the log.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// What it covers.
    pub period: Period,
    /// When it was compiled, Unix milliseconds.
    pub compiled_ms: i64,
    /// Entries in the whole log when it was compiled.
    pub log_entries: u64,
    /// Entries that fell in the period.
    pub period_entries: u64,
    /// The figures, in the order they are shown.
    pub figures: Vec<Figure>,
    /// Inclusion proofs of each figure's sample, against one checkpoint.
    pub proofs: Vec<InclusionProof>,
    /// Why there are no proofs, when there are none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proofs_missing: Option<String>,
}

/// One figure: a table or a chart, with where its numbers came from.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Figure {
    /// Short stable name, e.g. `accesses-by-agency`.
    pub id: &'static str,
    /// Its caption.
    pub title: &'static str,
    /// What was counted, in a sentence, so that anyone can recount it.
    pub counts: &'static str,
    /// The figure itself.
    pub body: Body,
    /// Every entry the figure was computed from, ascending.
    pub seqs: Vec<u64>,
    /// The entries whose inclusion proofs the report carries (first, middle, last).
    pub sample: Vec<u64>,
}

/// The shape of a figure.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    /// A table; each row counts entries.
    Table {
        /// Column names, the count's last.
        headers: Vec<&'static str>,
        /// Rows, largest count first.
        rows: Vec<Row>,
    },
    /// A bar per week (Monday, UTC).
    Weekly {
        /// Weeks in order, every week of the period present.
        weeks: Vec<Row>,
    },
    /// A heat map: counts of `rows` × `columns`.
    Heat {
        /// Row labels (principals).
        rows: Vec<String>,
        /// Column labels (collections).
        columns: Vec<String>,
        /// `cells[r][c]`.
        cells: Vec<Vec<u64>>,
    },
}

/// One row of a table or one bar.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Row {
    /// The row's cells, before the count.
    pub cells: Vec<String>,
    /// Entries counted.
    pub count: u64,
    /// Their sequence numbers, ascending.
    pub seqs: Vec<u64>,
}

impl Report {
    /// Every entry some figure samples, ascending: the ones to prove.
    pub fn sampled(&self) -> Vec<u64> {
        let set: BTreeSet<u64> = self
            .figures
            .iter()
            .flat_map(|f| f.sample.iter().copied())
            .collect();
        set.into_iter().collect()
    }

    /// The figure with this id.
    pub fn figure(&self, id: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.id == id)
    }
}

impl Body {
    /// Every row's count summed (a heat map's cells).
    pub fn total(&self) -> u64 {
        match self {
            Body::Table { rows, .. } | Body::Weekly { weeks: rows } => {
                rows.iter().map(|r| r.count).sum()
            }
            Body::Heat { cells, .. } => cells.iter().flatten().sum(),
        }
    }
}

/// Whether an entry is an access to an item's content (what the report counts as one).
pub fn is_access(e: &Entry) -> bool {
    e.action == "item.get" && e.outcome == Outcome::Allowed
}

/// Whether an entry reads or queries (anything but storing new items), so that its
/// justification is one for looking at data.
pub fn is_query(e: &Entry) -> bool {
    !matches!(e.action.as_str(), "item.ingest" | "item.derive")
}

/// Whether an entry is a destruction: a shred by hand, by retention or at a site.
pub fn is_destruction(e: &Entry) -> bool {
    matches!(
        e.action.as_str(),
        "item.shred" | "retention.shred" | "site.erase"
    ) && e.outcome == Outcome::Allowed
}

/// Whether an entry changes who may see what: a principal added, changed, disabled,
/// suspended, enabled, their credentials revoked, or their access confirmed in a review.
pub fn is_people_change(e: &Entry) -> bool {
    let a = e.action.as_str();
    e.outcome == Outcome::Allowed
        && (matches!(
            a,
            "principal.add"
                | "principal.set"
                | "principal.disable"
                | "principal.enable"
                | "principal.suspend"
                | "principal.credentials-revoked"
                | "review.confirm"
        ))
}

/// The classification of a recorded marking banner (`(not recorded)` when the entry has
/// none, the banner itself when it does not parse).
pub fn classification(e: &Entry) -> String {
    match &e.about {
        None => NOT_RECORDED.to_owned(),
        Some(a) => Marking::parse(&a.marking)
            .map(|m| m.classification().as_str().to_owned())
            .unwrap_or_else(|_| a.marking.clone()),
    }
}

/// The collection an entry names (`(not recorded)` when it has none).
pub fn collection(e: &Entry) -> String {
    e.about
        .as_ref()
        .map_or_else(|| NOT_RECORDED.to_owned(), |a| a.collection.clone())
}

/// The Monday (UTC, 00:00) of the week holding `ms`.
pub fn week_of(ms: i64) -> i64 {
    let day = ms.div_euclid(DAY_MS);
    // 1970-01-01 was a Thursday: day 0 is weekday 3 counting from Monday.
    (day - (day + 3).rem_euclid(7)) * DAY_MS
}

/// Counts entries into rows keyed by their cells.
#[derive(Default)]
struct Tally(BTreeMap<Vec<String>, Vec<u64>>);

impl Tally {
    fn add(&mut self, cells: Vec<String>, seq: u64) {
        self.0.entry(cells).or_default().push(seq);
    }

    /// Rows, largest count first, then by their cells.
    fn rows(self) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .0
            .into_iter()
            .map(|(cells, seqs)| Row {
                cells,
                count: seqs.len() as u64,
                seqs,
            })
            .collect();
        rows.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.cells.cmp(&b.cells)));
        rows
    }
}

/// Builds a table figure from the entries `pick` selects, each counted in the row `key`
/// gives it.
fn table(
    id: &'static str,
    title: &'static str,
    counts: &'static str,
    headers: Vec<&'static str>,
    entries: &[(u64, &Entry)],
    key: impl Fn(&Entry) -> Option<Vec<String>>,
) -> Figure {
    let mut t = Tally::default();
    for (seq, e) in entries {
        if let Some(cells) = key(e) {
            t.add(cells, *seq);
        }
    }
    let rows = t.rows();
    let seqs = rows.iter().flat_map(|r| r.seqs.iter().copied()).collect();
    figure(id, title, counts, Body::Table { headers, rows }, seqs)
}

fn figure(
    id: &'static str,
    title: &'static str,
    counts: &'static str,
    body: Body,
    mut seqs: Vec<u64>,
) -> Figure {
    seqs.sort_unstable();
    seqs.dedup();
    let sample = sample_of(&seqs);
    Figure {
        id,
        title,
        counts,
        body,
        seqs,
        sample,
    }
}

/// The first, middle and last of `seqs` (fewer when there are fewer).
fn sample_of(seqs: &[u64]) -> Vec<u64> {
    let mut s: Vec<u64> = [seqs.first(), seqs.get(seqs.len() / 2), seqs.last()]
        .into_iter()
        .flatten()
        .copied()
        .collect();
    s.dedup();
    s
}

/// Compiles the report's figures from the log's opened entries (all of them; those
/// outside the period are left out here). `agency_of` names a principal's agency, `None`
/// for the platform's own actors. Proofs are added by whoever holds the log.
pub fn compile(
    entries: &[(u64, Entry)],
    period: Period,
    compiled_ms: i64,
    agency_of: impl Fn(&str) -> Option<String>,
) -> Report {
    let within: Vec<(u64, &Entry)> = entries
        .iter()
        .filter(|(_, e)| period.covers(e.time_ms))
        .map(|(s, e)| (*s, e))
        .collect();
    // Each principal's agency and each banner's classification are worked out once.
    let agencies: RefCell<HashMap<String, String>> = RefCell::default();
    let agency = |e: &Entry| {
        if let Some(a) = agencies.borrow().get(&e.principal) {
            return a.clone();
        }
        let a = agency_of(&e.principal).unwrap_or_else(|| PLATFORM.to_owned());
        agencies.borrow_mut().insert(e.principal.clone(), a.clone());
        a
    };
    let classes: RefCell<HashMap<String, String>> = RefCell::default();
    let class = |e: &Entry| {
        let Some(about) = &e.about else {
            return NOT_RECORDED.to_owned();
        };
        if let Some(c) = classes.borrow().get(&about.marking) {
            return c.clone();
        }
        let c = classification(e);
        classes
            .borrow_mut()
            .insert(about.marking.clone(), c.clone());
        c
    };
    let access = |e: &Entry| is_access(e);
    let figures = vec![
        table(
            "accesses-by-agency",
            "Accesses by agency",
            "item.get entries allowed, by the agency of the principal who read",
            vec!["agency", "accesses"],
            &within,
            |e| access(e).then(|| vec![agency(e)]),
        ),
        table(
            "accesses-by-principal",
            "Accesses by principal",
            "item.get entries allowed, by principal",
            vec!["principal", "agency", "accesses"],
            &within,
            |e| access(e).then(|| vec![e.principal.clone(), agency(e)]),
        ),
        table(
            "accesses-by-collection",
            "Accesses by collection",
            "item.get entries allowed, by the collection the item was in when read",
            vec!["collection", "accesses"],
            &within,
            |e| access(e).then(|| vec![collection(e)]),
        ),
        table(
            "accesses-by-classification",
            "Accesses by classification",
            "item.get entries allowed, by the classification of the item's marking when read",
            vec!["classification", "accesses"],
            &within,
            |e| access(e).then(|| vec![class(e)]),
        ),
        weekly(&within, period),
        heat(&within),
        table(
            "justified-queries",
            "Bulk queries and their justifications",
            "entries of reads and queries (every act but ingest and derivation) that carry a stated justification, by principal, act and justification",
            vec!["principal", "act", "justification", "entries"],
            &within,
            |e| {
                e.justification
                    .as_ref()
                    .filter(|_| is_query(e))
                    .map(|j| vec![e.principal.clone(), e.action.clone(), j.clone()])
            },
        ),
        table(
            "denials",
            "Denials and refusals",
            "entries whose outcome is denied or refused, by principal, act and reason",
            vec!["principal", "act", "outcome", "reason", "entries"],
            &within,
            |e| {
                matches!(e.outcome, Outcome::Denied | Outcome::Refused).then(|| {
                    vec![
                        e.principal.clone(),
                        e.action.clone(),
                        format!("{:?}", e.outcome).to_lowercase(),
                        e.reason.clone().unwrap_or_default(),
                    ]
                })
            },
        ),
        table(
            "exports",
            "Exports to field sites",
            "sync.export entries allowed (items sent by sync or bundle), by site and classification",
            vec!["site", "classification", "items"],
            &within,
            |e| {
                (e.action == "sync.export" && e.outcome == Outcome::Allowed).then(|| {
                    let site = e
                        .targets
                        .iter()
                        .find_map(|t| t.strip_prefix("site "))
                        .unwrap_or("(unnamed)")
                        .to_owned();
                    vec![site, class(e)]
                })
            },
        ),
        table(
            "destructions",
            "Shreds and retention destructions",
            "item.shred, retention.shred and site.erase entries allowed, by act, collection and classification",
            vec!["act", "collection", "classification", "items"],
            &within,
            |e| is_destruction(e).then(|| vec![e.action.clone(), collection(e), class(e)]),
        ),
        table(
            "remarkings",
            "Re-markings",
            "item.reclassify entries allowed, by principal, item and change",
            vec!["principal", "item", "change", "entries"],
            &within,
            |e| {
                (e.action == "item.reclassify" && e.outcome == Outcome::Allowed).then(|| {
                    vec![
                        e.principal.clone(),
                        e.targets.first().cloned().unwrap_or_default(),
                        e.targets.get(1..).map(|t| t.join(", ")).unwrap_or_default(),
                    ]
                })
            },
        ),
        table(
            "people",
            "Principals added, changed and disabled",
            "principal.add, .set, .disable, .enable, .suspend, .credentials-revoked and review.confirm entries allowed, by act, principal changed and who changed them",
            vec!["act", "principal", "by", "entries"],
            &within,
            |e| {
                is_people_change(e).then(|| {
                    vec![
                        e.action.clone(),
                        e.targets.first().cloned().unwrap_or_default(),
                        e.principal.clone(),
                    ]
                })
            },
        ),
    ];
    Report {
        period,
        compiled_ms,
        log_entries: entries.len() as u64,
        period_entries: within.len() as u64,
        figures,
        proofs: Vec::new(),
        proofs_missing: None,
    }
}

/// Accesses per week: every week of the period has a bar, empty or not.
fn weekly(within: &[(u64, &Entry)], period: Period) -> Figure {
    let mut by_week: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    let mut w = week_of(period.from_ms);
    // A period of many years still draws at most a few hundred bars.
    while w < period.to_ms && by_week.len() < 520 {
        by_week.insert(w, Vec::new());
        w += 7 * DAY_MS;
    }
    for (seq, e) in within {
        if is_access(e) {
            by_week.entry(week_of(e.time_ms)).or_default().push(*seq);
        }
    }
    let weeks: Vec<Row> = by_week
        .into_iter()
        .map(|(w, seqs)| Row {
            cells: vec![date(w)],
            count: seqs.len() as u64,
            seqs,
        })
        .collect();
    let seqs = weeks.iter().flat_map(|r| r.seqs.iter().copied()).collect();
    figure(
        "accesses-per-week",
        "Accesses per week",
        "item.get entries allowed, by the week (Monday, UTC) they were made in",
        Body::Weekly { weeks },
        seqs,
    )
}

/// Accesses by principal × collection.
fn heat(within: &[(u64, &Entry)]) -> Figure {
    let mut cells: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut seqs = Vec::new();
    for (seq, e) in within {
        if is_access(e) {
            *cells
                .entry((e.principal.clone(), collection(e)))
                .or_default() += 1;
            seqs.push(*seq);
        }
    }
    let rows: Vec<String> = cells
        .keys()
        .map(|(p, _)| p.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let columns: Vec<String> = cells
        .keys()
        .map(|(_, c)| c.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let grid = rows
        .iter()
        .map(|r| {
            columns
                .iter()
                .map(|c| cells.get(&(r.clone(), c.clone())).copied().unwrap_or(0))
                .collect()
        })
        .collect();
    figure(
        "access-heat-map",
        "Accesses by principal and collection",
        "item.get entries allowed, by principal (rows) and the item's collection (columns)",
        Body::Heat {
            rows,
            columns,
            cells: grid,
        },
        seqs,
    )
}

/// `YYYY-MM-DD` of a Unix millisecond, UTC.
pub fn date(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!("[year]-[month]-[day]"))
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// Sequence numbers as ranges, `3-5, 9, 12-40`.
pub fn ranges(seqs: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let start = seqs[i];
        let mut end = start;
        while i + 1 < seqs.len() && seqs[i + 1] == end + 1 {
            i += 1;
            end = seqs[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    out.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        // 2026-12-07 is a Monday; 2026-12-13 the Sunday after.
        let monday = 1_796_601_600_000;
        assert_eq!(date(monday), "2026-12-07");
        assert_eq!(week_of(monday), monday);
        assert_eq!(week_of(monday + 6 * DAY_MS + 1), monday);
        assert_eq!(week_of(monday - 1), monday - 7 * DAY_MS);
    }

    #[test]
    fn ranges_collapse_runs() {
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[3, 4, 5, 9, 12, 13]), "3-5, 9, 12-13");
    }

    #[test]
    fn samples_are_first_middle_last() {
        assert_eq!(sample_of(&[]), Vec::<u64>::new());
        assert_eq!(sample_of(&[7]), vec![7]);
        assert_eq!(sample_of(&[1, 2, 3, 4, 5]), vec![1, 3, 5]);
    }
}
