//! Retention schedules: how long a collection's items (or, failing that, items
//! of a classification) are kept after ingest. An item past its date — its own
//! (`--retain-until`) or its schedule's, whichever comes first — is never
//! returned again (`get`, `ls` and `get_many` check the sealed metadata at read
//! time; every reader of the index shreds what is due first), and is
//! crypto-shredded with everything derived from it by the next retention run,
//! unless a legal hold keeps its collection. Each run that destroys anything
//! leaves a destruction certificate: audit entries naming every item destroyed
//! and the schedule it fell under, returned to the caller to export.
//!
//! Schedules live in the catalog's guarded `meta` table, by collection number
//! (collection names are keyed tags in the catalog) and classification.

use super::*;

use std::collections::{BTreeSet, HashSet};

use crate::catalog::{Catalog as _, ItemRow};
use bletchley_policy::{Classification, Marking};

const SCHEDULES: &str = "retention_schedules";
/// Items named per certificate entry: keeps entries small on large runs.
const CERTIFICATE_CHUNK: usize = 500;

/// Every schedule: seconds to keep an item after ingest.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RetentionSchedules {
    /// By collection number; overrides a classification's schedule.
    #[serde(default)]
    pub collections: BTreeMap<u32, i64>,
    /// By classification (`OFFICIAL`, `SECRET`, `TOP SECRET`).
    #[serde(default)]
    pub classifications: BTreeMap<String, i64>,
    /// Collections (by number) whose due items wait for an admin's review before they are
    /// destroyed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub reviewed: BTreeSet<u32>,
    /// Items a review approved for destruction (the next run destroys them).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub approved: BTreeSet<String>,
    /// Items a review kept past their schedule, until when (Unix ms).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: BTreeMap<String, i64>,
}

impl RetentionSchedules {
    fn keep_s(&self, collection: u32, class: Classification) -> Option<(i64, bool)> {
        if let Some(k) = self.collections.get(&collection) {
            return Some((*k, true));
        }
        self.classifications
            .get(class.as_str())
            .map(|k| (*k, false))
    }

    /// When an item falls due under the schedules (Unix ms), if one applies.
    pub fn due_ms(&self, created_ms: i64, collection: u32, class: Classification) -> Option<i64> {
        self.keep_s(collection, class)
            .map(|(k, _)| created_ms.saturating_add(k.saturating_mul(1000)))
    }

    /// When item `id` falls due under the schedules, after any review that kept it.
    pub fn item_due_ms(
        &self,
        id: &str,
        created_ms: i64,
        collection: u32,
        class: Classification,
    ) -> Option<i64> {
        let due = self.due_ms(created_ms, collection, class)?;
        Some(self.kept.get(id).map_or(due, |k| due.max(*k)))
    }

    fn is_empty(&self) -> bool {
        self.collections.is_empty() && self.classifications.is_empty()
    }

    fn min_keep_ms(&self) -> Option<i64> {
        self.collections
            .values()
            .chain(self.classifications.values())
            .min()
            .map(|k| k.saturating_mul(1000))
    }
}

/// What a schedule applies to, as an operator names it.
#[derive(Clone, Debug)]
pub enum ScheduleScope {
    /// A collection, `agency/name`.
    Collection(String),
    /// A classification.
    Classification(Classification),
}

/// One item a retention run destroyed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Destroyed {
    /// The item.
    pub id: String,
    /// Its collection, `agency/name`.
    pub collection: String,
    /// When it was ingested (Unix ms).
    pub created_ms: i64,
    /// Why: `its own retention date`, `collection schedule`, `classification
    /// schedule`, or `derived from ITEM` for what went with its source.
    pub under: String,
}

/// What a retention run did: its destruction certificate.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Retained {
    /// When the run was (Unix ms).
    pub time_ms: i64,
    /// Who ran it: `operator` or `platform`.
    pub by: String,
    /// Items shredded (with what was derived from them).
    pub shredded: usize,
    /// Items past their date kept because their collection is under legal hold.
    pub held: usize,
    /// Items past their date waiting for an admin's review (`retention review`).
    pub awaiting_review: usize,
    /// Every item destroyed, and why.
    pub destroyed: Vec<Destroyed>,
}

/// When a handle next needs to look for items due under the schedules.
#[derive(Default)]
pub(crate) struct RetentionWatch {
    /// The schedules the bound was computed for.
    seen: Option<RetentionSchedules>,
    /// No item is due under them before this (Unix ms), but for those in `due`.
    next_ms: i64,
    /// Items found due at the last scan that are still here (held, or waiting for a
    /// review), with why: found again without a scan until `next_ms`.
    due: Vec<(String, &'static str)>,
}

impl Platform {
    /// The schedules in force.
    pub fn retention_schedules(&self) -> Result<RetentionSchedules> {
        match self.catalog.meta(SCHEDULES)? {
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| Error::Layout(format!("the retention schedules are unreadable: {e}"))),
            None => Ok(RetentionSchedules::default()),
        }
    }

    /// The schedules with collection names, for people.
    pub fn retention_schedule_list(&self) -> Result<Vec<(String, i64)>> {
        let s = self.retention_schedules()?;
        let names: BTreeMap<u32, String> = self
            .collections()?
            .into_iter()
            .map(|c| (c.id.0, format!("{}/{}", c.agency, c.name)))
            .collect();
        let mut out: Vec<(String, i64)> = s
            .collections
            .iter()
            .map(|(id, k)| {
                (
                    format!(
                        "collection {}",
                        names.get(id).cloned().unwrap_or_else(|| format!("#{id}"))
                    ),
                    *k,
                )
            })
            .collect();
        out.extend(
            s.classifications
                .iter()
                .map(|(c, k)| (format!("classification {c}"), *k)),
        );
        Ok(out)
    }

    /// Sets (or with `None` removes) a schedule: an operator's act, audited. A
    /// shorter schedule makes items due at once; they vanish from reads now and
    /// are destroyed by the next run.
    pub fn set_retention_schedule(
        &mut self,
        scope: &ScheduleScope,
        keep_s: Option<i64>,
    ) -> Result<()> {
        if let Some(k) = keep_s
            && !(1..=200 * 366 * 86_400).contains(&k)
        {
            return Err(Error::Invalid(format!(
                "keep {k} s: expected a second to two hundred years; nothing changed"
            )));
        }
        let mut s = self.retention_schedules()?;
        let target = match scope {
            ScheduleScope::Collection(name) => {
                let c = self
                    .collection_by_name(name)?
                    .ok_or_else(|| Error::Unknown {
                        kind: "collection",
                        name: name.clone(),
                    })?;
                match keep_s {
                    Some(k) => s.collections.insert(c.id.0, k),
                    None => s.collections.remove(&c.id.0),
                };
                format!("collection {name}")
            }
            ScheduleScope::Classification(c) => {
                match keep_s {
                    Some(k) => s.classifications.insert(c.as_str().to_owned(), k),
                    None => s.classifications.remove(c.as_str()),
                };
                format!("classification {}", c.as_str())
            }
        };
        self.record(
            Actor::Operator,
            "retention.schedule",
            vec![target],
            None,
            Outcome::Allowed,
            Some(match keep_s {
                Some(k) => format!("keep {k} s after ingest"),
                None => "no schedule".into(),
            }),
        )?;
        self.put_retention_schedules(&s)
    }

    /// Writes the schedules (and review decisions) to the guarded `meta` table.
    pub(super) fn put_retention_schedules(&mut self, s: &RetentionSchedules) -> Result<()> {
        let json = serde_json::to_string(s).map_err(|e| Error::Layout(e.to_string()))?;
        self.catalog.set_meta(SCHEDULES, &json)?;
        self.retention_watch = RetentionWatch::default();
        Ok(())
    }

    /// Whether an item is past its retention at `now` by its sealed metadata:
    /// its own date or its schedule's.
    pub(crate) fn past_retention(
        meta: &ItemMeta,
        marking: &Marking,
        collection: u32,
        schedules: &RetentionSchedules,
        now: i64,
    ) -> bool {
        expired(meta, now)
            || schedules
                .item_due_ms(
                    &meta.id,
                    meta.created_ms,
                    collection,
                    marking.classification(),
                )
                .is_some_and(|d| d <= now)
    }

    /// The items due now, with why, each confirmed by its sealed metadata (the
    /// catalog's clear columns only choose the candidates).
    pub(super) fn due_items(&mut self, now: i64) -> Result<Vec<(ItemRow, &'static str)>> {
        let mut out: Vec<(ItemRow, &'static str)> = self
            .catalog
            .expired_items(now)?
            .into_iter()
            .map(|r| (r, "its own retention date"))
            .collect();
        let schedules = self.retention_schedules()?;
        if self.retention_watch.seen.as_ref() != Some(&schedules) {
            self.retention_watch = RetentionWatch {
                seen: Some(schedules.clone()),
                next_ms: i64::MIN,
                due: Vec::new(),
            };
        }
        if schedules.is_empty() {
            return Ok(out);
        }
        if now < self.retention_watch.next_ms {
            // Nothing new can be due yet; what was due and is still here still is.
            let known: HashSet<String> = out.iter().map(|(r, _)| r.id.clone()).collect();
            for (id, why) in self.retention_watch.due.clone() {
                if !known.contains(&id)
                    && let Some(row) = self.catalog.item(&id)?
                {
                    out.push((row, why));
                }
            }
            return Ok(out);
        }
        let min_keep = schedules.min_keep_ms().unwrap_or(i64::MAX);
        let all: Vec<u32> = self.collections()?.iter().map(|c| c.id.0).collect();
        let mut next = now.saturating_add(min_keep);
        let known: HashSet<String> = out.iter().map(|(r, _)| r.id.clone()).collect();
        for row in self.catalog.items_in(&all)? {
            // Nothing can be due before its ingest plus the shortest schedule.
            if row.created_ms.saturating_add(min_keep) > now || known.contains(&row.id) {
                next = next.min(row.created_ms.saturating_add(min_keep));
                continue;
            }
            let (meta, marking) = match self.open_meta(&row) {
                Ok(m) => m,
                // A locked agency key: looked at again next run.
                Err(Error::KeyUnavailable { .. }) => continue,
                Err(e) => return Err(e),
            };
            let class = marking.classification();
            match schedules.item_due_ms(&meta.id, meta.created_ms, row.collection_id, class) {
                Some(d) if d <= now => {
                    let why = match schedules.keep_s(row.collection_id, class) {
                        Some((_, true)) => "collection schedule",
                        _ => "classification schedule",
                    };
                    out.push((row, why));
                }
                Some(d) => next = next.min(d),
                None => {}
            }
        }
        self.retention_watch.next_ms = next;
        self.retention_watch.due = out
            .iter()
            .filter(|(r, _)| !known.contains(&r.id))
            .map(|(r, why)| (r.id.clone(), *why))
            .collect();
        Ok(out)
    }

    /// Shreds every item due (its own date or its schedule), except those under
    /// legal hold, with everything derived from them; the certificate of what was
    /// destroyed is audited and returned.
    pub fn enforce_retention(&mut self) -> Result<Retained> {
        self.enforce_retention_reporting(&mut |_, _| {})
    }

    /// [`Platform::enforce_retention`], telling `progress` how many of the due
    /// items have been dealt with, of how many.
    pub fn enforce_retention_reporting(
        &mut self,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Retained> {
        self.shred_expired(Actor::Operator, progress)
    }

    /// What every reader of a derived store (the search index, the link graph)
    /// and the server's retention thread do: items past their date are shredded
    /// now, by the platform itself, so that no hit, count or link shows them
    /// (`get` and `ls` refuse them already). One indexed lookup when nothing is due.
    pub fn shred_due(&mut self) -> Result<usize> {
        Ok(self
            .shred_expired(Actor::System(SystemActor::Platform), &mut |_, _| {})?
            .shredded)
    }

    pub(super) fn shred_expired(
        &mut self,
        actor: Actor,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Retained> {
        let now = now_ms();
        let schedules = self.retention_schedules()?;
        let mut due = self.due_items(now)?;
        // A reviewed collection's items wait until a review approves their destruction.
        let (mut awaiting, ready): (Vec<_>, Vec<_>) = due.into_iter().partition(|(r, _)| {
            schedules.reviewed.contains(&r.collection_id) && !schedules.approved.contains(&r.id)
        });
        due = ready;
        let awaiting_review = awaiting.len();
        // What waits is unreadable already; the index and the link graph leave it out too.
        self.set_withheld(awaiting.drain(..).map(|(r, _)| r.id).collect())?;
        let mut out = Retained {
            time_ms: now,
            by: actor.name(),
            awaiting_review,
            ..Retained::default()
        };
        if due.is_empty() {
            return Ok(out);
        }
        let names: HashMap<u32, String> = self
            .collections()?
            .into_iter()
            .map(|c| (c.id.0, format!("{}/{}", c.agency, c.name)))
            .collect();
        let mut held: HashMap<u32, bool> = HashMap::new();
        let total = due.len() as u64;
        for (n, (r, why)) in due.iter().enumerate() {
            progress(n as u64, total);
            let is_held = match held.get(&r.collection_id) {
                Some(h) => *h,
                None => {
                    let h = self.hold_on(CollectionId(r.collection_id))?.is_some();
                    held.insert(r.collection_id, h);
                    h
                }
            };
            if is_held {
                out.held += 1;
                continue;
            }
            // A derived item may already have gone with its source.
            if self.catalog.item(&r.id)?.is_some() {
                let mut gone = Vec::new();
                self.shred_tree(actor.clone(), r, "retention.shred", &mut gone)?;
                out.shredded += 1;
                for (row, source) in gone {
                    out.destroyed.push(Destroyed {
                        collection: names.get(&row.collection_id).cloned().unwrap_or_default(),
                        created_ms: row.created_ms,
                        under: match source {
                            Some(s) => format!("derived from {s}"),
                            None => (*why).to_owned(),
                        },
                        id: row.id,
                    });
                }
            }
        }
        progress(total, total);
        // Approvals are spent once their items are gone.
        if !schedules.approved.is_empty() {
            let mut s = self.retention_schedules()?;
            let before = s.approved.len();
            let gone: HashSet<&str> = out.destroyed.iter().map(|d| d.id.as_str()).collect();
            s.approved.retain(|id| !gone.contains(id.as_str()));
            if s.approved.len() != before {
                self.put_retention_schedules(&s)?;
            }
        }
        for chunk in out.destroyed.chunks(CERTIFICATE_CHUNK) {
            let mut why: BTreeMap<&str, usize> = BTreeMap::new();
            for d in chunk {
                *why.entry(if d.under.starts_with("derived from") {
                    "derived from a destroyed item"
                } else {
                    d.under.as_str()
                })
                .or_default() += 1;
            }
            self.record(
                actor.clone(),
                "retention.certificate",
                chunk.iter().map(|d| d.id.clone()).collect(),
                None,
                Outcome::Allowed,
                Some(format!(
                    "destroyed at {}: {}",
                    now,
                    why.iter()
                        .map(|(w, n)| format!("{n} under {w}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            )?;
        }
        Ok(out)
    }
}
