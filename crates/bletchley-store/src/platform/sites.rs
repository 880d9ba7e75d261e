//! Platform side of replication between sites: what a site may hold, reading
//! it out for that site, storing what a site receives under this node's own
//! keys, and destroying this node's keys.
//!
//! The replication protocol itself (operation logs, bundles, signatures) is
//! `bletchley-sync`'s; this module is where it meets the gate, the residency
//! rules and the sealed catalog, so that no replication path can bypass them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::path::PathBuf;

use bletchley_audit::{Entry, Outcome};
use bletchley_policy::{
    Classification, CollectionId, Gate, Marking, Nation, Principal, Role, SystemGate, Visibility,
};

use super::{ANNOTATION, Actor, Platform, now_ms};
use crate::catalog::{Catalog, ItemRow, SealedTable};
use crate::error::{Error, Result};
use crate::item::{IngestOptions, ItemMeta, Lineage, NewItem};
use crate::residency::{self, Jurisdiction};

/// What one site may hold: the policy side of a site's record.
#[derive(Clone, Debug)]
pub struct SiteScope {
    /// The site's name (for audit entries).
    pub name: String,
    /// The highest classification it may hold.
    pub ceiling: Classification,
    /// The codewords its staff are indoctrinated into.
    pub compartments: BTreeSet<String>,
    /// Nationalities of its staff: an item must be releasable to every one.
    pub nationalities: Vec<Nation>,
    /// Where its bytes rest: the residency rules must allow it.
    pub jurisdiction: Jurisdiction,
    /// Collections assigned to it (`agency/name`).
    pub collections: Vec<String>,
    /// Operations assigned to it: the collections shared into them, while
    /// they run.
    pub operations: Vec<String>,
    /// Items the site sent here: it may also hold the notes made here on
    /// them (if their marking passes its gate), wherever they are.
    pub annotations_on: BTreeSet<String>,
}

/// The gate of a site: one per nationality of its staff, over the assigned
/// collections only.
struct SiteGate {
    gates: Vec<Gate>,
    visible: Vec<CollectionId>,
}

/// Items of a site's assigned collections that are not sent to it, and why.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct HeldBack {
    /// Refused by the marking gate: above the site's ceiling, a codeword it lacks,
    /// or not releasable to one of its staff's nationalities.
    pub by_marking: usize,
    /// Refused by residency: per rule that does not allow the site's jurisdiction
    /// (an item refused by two rules counts under each).
    pub by_residency: BTreeMap<String, usize>,
}

impl HeldBack {
    /// Whether anything was held back.
    pub fn is_empty(&self) -> bool {
        self.by_marking == 0 && self.by_residency.is_empty()
    }

    /// In words, for an operator.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if self.by_marking > 0 {
            parts.push(format!(
                "{} by their marking (the site's ceiling, codewords or staff nationalities)",
                self.by_marking
            ));
        }
        for (rule, n) in &self.by_residency {
            parts.push(format!("{n} by the {rule}"));
        }
        format!("assigned items held back: {}", parts.join("; "))
    }
}

impl Platform {
    /// Stores a replication record (sealed under the catalog key, found by
    /// blind index), replacing one of the same key.
    pub fn put_site_record<T: serde::Serialize>(&mut self, key: &str, value: &T) -> Result<()> {
        let tag = self.tag("site", key);
        match self.catalog.find_sealed(SealedTable::Sites, &tag)? {
            Some(row) => self.update_row(SealedTable::Sites, &row, value)?,
            None => {
                self.insert_row(SealedTable::Sites, &tag, None, value)?;
            }
        }
        Ok(())
    }

    /// Reads a replication record.
    pub fn site_record<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let tag = self.tag("site", key);
        match self.catalog.find_sealed(SealedTable::Sites, &tag)? {
            Some(row) => Ok(Some(self.open_row(SealedTable::Sites, &row)?)),
            None => Ok(None),
        }
    }

    fn site_gate(&self, scope: &SiteScope) -> Result<SiteGate> {
        let collections = self.collections()?;
        let mut visible = Vec::new();
        for name in &scope.collections {
            let c = collections
                .iter()
                .find(|c| format!("{}/{}", c.agency, c.name) == *name)
                .ok_or_else(|| Error::Unknown {
                    kind: "collection",
                    name: name.clone(),
                })?;
            visible.push(c.id);
        }
        let now = now_ms() / 1000;
        let operations = self.operations()?;
        for name in &scope.operations {
            let op = operations
                .iter()
                .find(|o| o.name == *name)
                .ok_or_else(|| Error::Unknown {
                    kind: "operation",
                    name: name.clone(),
                })?;
            if !op.active(now) {
                continue;
            }
            for id in op.shared_at(now) {
                if collections
                    .iter()
                    .any(|c| c.id == id && op.agencies.contains(&c.agency))
                {
                    visible.push(id);
                }
            }
        }
        visible.sort_by_key(|c| c.0);
        visible.dedup();
        let gates = scope
            .nationalities
            .iter()
            .map(|&nationality| {
                let p = Principal {
                    name: format!("site:{}", scope.name),
                    agency: String::new(),
                    clearance: scope.ceiling,
                    compartments: scope.compartments.clone(),
                    nationality,
                    roles: BTreeSet::from([Role::Field]),
                    standing: Default::default(),
                    reviewed_s: None,
                };
                Gate::new(p, Visibility::of(visible.iter().copied()), self.home)
            })
            .collect();
        Ok(SiteGate { gates, visible })
    }

    /// Whether a site may hold an item: every staff nationality passes the
    /// gate, and the residency rules allow the site's jurisdiction.
    fn site_may_hold(
        &mut self,
        scope: &SiteScope,
        gate: &SiteGate,
        row: &ItemRow,
    ) -> Result<Option<ItemMeta>> {
        let (meta, marking) = self.open_meta(row)?;
        let coll = CollectionId(row.collection_id);
        // A note on an item the site itself sent: its collection need not be assigned, its
        // marking must still pass.
        let note_on_theirs = meta.derivation.as_deref() == Some(ANNOTATION)
            && meta
                .derived_from
                .as_ref()
                .is_some_and(|s| scope.annotations_on.contains(s));
        let refused = |g: &Gate| {
            if note_on_theirs {
                g.check_marking(&marking).is_err()
            } else {
                g.decide(&marking, coll).is_err()
            }
        };
        if gate.gates.is_empty() || gate.gates.iter().any(refused) {
            return Ok(None);
        }
        let agency = self.agency_name(row.agency_id)?;
        let rules = self.allowed_rules(&agency, coll, marking.classification().as_str())?;
        let refs: Vec<&[Jurisdiction]> = rules.iter().map(|r| r.as_slice()).collect();
        if !residency::allowed(&scope.jurisdiction, &refs) {
            return Ok(None);
        }
        // What leaves this node says who may read it in so many words: an
        // unmarked item is for this node's home nation, whatever the
        // receiving node's home is.
        let mut meta = meta;
        meta.marking = marking.explicit(self.home).render();
        Ok(Some(meta))
    }

    /// Every item a site may hold now, by id. A system path for the sender
    /// of replication; the content goes out only through
    /// [`Platform::export_for_site`], which checks again and audits.
    ///
    /// Sources come before what was derived from them (by generation, then
    /// age), so a receiver meets an item before its parts and notes.
    pub fn site_allowed(&mut self, scope: &SiteScope) -> Result<Vec<ItemMeta>> {
        let gate = self.site_gate(scope)?;
        let ids: Vec<u32> = gate.visible.iter().map(|c| c.0).collect();
        let mut out = Vec::new();
        for row in self.catalog.items_in(&ids)? {
            if let Some(meta) = self.site_may_hold(scope, &gate, &row)? {
                out.push(meta);
            }
        }
        let listed: BTreeSet<String> = out.iter().map(|m| m.id.clone()).collect();
        for source in &scope.annotations_on {
            for id in self.derived_by(source, ANNOTATION)? {
                if listed.contains(&id) {
                    continue;
                }
                if let Some(row) = self.catalog.item(&id)?
                    && let Some(meta) = self.site_may_hold(scope, &gate, &row)?
                {
                    out.push(meta);
                }
            }
        }
        out.sort_by(|a, b| {
            (a.generation, a.created_ms, &a.id).cmp(&(b.generation, b.created_ms, &b.id))
        });
        Ok(out)
    }

    /// Why items of the collections assigned to a site are not sent to it: those
    /// its marking gate refuses, and per residency rule those the site's
    /// jurisdiction may not hold. So that "nothing to send" never hides a policy
    /// that holds everything back. Reads metadata only; not audited (no content
    /// leaves, and the counts are the operator's own configuration at work).
    pub fn site_held_back(&mut self, scope: &SiteScope) -> Result<HeldBack> {
        let gate = self.site_gate(scope)?;
        let ids: Vec<u32> = gate.visible.iter().map(|c| c.0).collect();
        let names: HashMap<u32, String> = self
            .collections()?
            .into_iter()
            .map(|c| (c.id.0, format!("{}/{}", c.agency, c.name)))
            .collect();
        let mut out = HeldBack::default();
        for row in self.catalog.items_in(&ids)? {
            let (_, marking) = match self.open_meta(&row) {
                Ok(m) => m,
                Err(Error::KeyUnavailable { .. }) => continue,
                Err(e) => return Err(e),
            };
            let coll = CollectionId(row.collection_id);
            if gate.gates.is_empty() || gate.gates.iter().any(|g| g.decide(&marking, coll).is_err())
            {
                out.by_marking += 1;
                continue;
            }
            let agency = self.agency_name(row.agency_id)?;
            let class = marking.classification().as_str();
            for (kind, target, allow) in self.catalog.residency()? {
                let applies = match kind.as_str() {
                    "default" => true,
                    "agency" => target == agency,
                    "collection" => target == coll.0.to_string(),
                    "classification" => target == class,
                    _ => false,
                };
                if !applies {
                    continue;
                }
                let rule = residency::parse_allow(&allow)?;
                if !residency::allowed(&scope.jurisdiction, &[rule.as_slice()]) {
                    let what = match kind.as_str() {
                        "collection" => format!(
                            "collection {}",
                            names.get(&coll.0).cloned().unwrap_or(target)
                        ),
                        "default" => "the default".to_owned(),
                        _ => format!("{kind} {target}"),
                    };
                    *out.by_residency
                        .entry(format!("residency rule for {what} allows only {allow}"))
                        .or_default() += 1;
                }
            }
        }
        Ok(out)
    }

    /// Whether a site may hold an item now (a repeated read of content
    /// already read out checks again: the assignment or the policy may have
    /// changed since).
    pub fn site_may_hold_now(&mut self, scope: &SiteScope, id: &str) -> Result<bool> {
        let gate = self.site_gate(scope)?;
        match self.catalog.item(id)? {
            Some(row) => Ok(self.site_may_hold(scope, &gate, &row)?.is_some()),
            None => Ok(false),
        }
    }

    /// Reads items out for a site: each must pass the site's gate and
    /// residency now; one audit entry per item, appended before any content
    /// is returned. An item the site may not hold fails the whole call.
    pub fn export_for_site(
        &mut self,
        scope: &SiteScope,
        ids: &[String],
    ) -> Result<Vec<(ItemMeta, Vec<u8>)>> {
        self.export_for_site_reporting(scope, ids, &mut |_, _| {})
    }

    /// [`Platform::export_for_site`], telling `progress` how many of the items
    /// have been read back, of how many.
    pub fn export_for_site_reporting(
        &mut self,
        scope: &SiteScope,
        ids: &[String],
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Vec<(ItemMeta, Vec<u8>)>> {
        let gate = self.site_gate(scope)?;
        let mut rows = Vec::with_capacity(ids.len());
        for id in ids {
            let row = self.catalog.item(id)?;
            let meta = match &row {
                Some(r) => self.site_may_hold(scope, &gate, r)?,
                None => None,
            };
            match (row, meta) {
                (Some(r), Some(m)) => rows.push((r, m)),
                _ => {
                    let e = Error::NotFoundOrNotPermitted { reason: None };
                    return Err(self.refuse(
                        &Actor::Operator,
                        "sync.export",
                        vec![id.clone(), format!("site {}", scope.name)],
                        None,
                        e,
                    ));
                }
            }
        }
        let now = now_ms();
        let entries: Vec<Entry> = rows
            .iter()
            .map(|(r, m)| Entry {
                time_ms: now,
                principal: "operator".into(),
                action: "sync.export".into(),
                targets: vec![r.id.clone(), format!("site {}", scope.name)],
                justification: None,
                outcome: Outcome::Allowed,
                reason: None,
                about: Some(bletchley_audit::About {
                    collection: m.collection.clone(),
                    marking: m.marking.clone(),
                }),
            })
            .collect();
        if !entries.is_empty() {
            self.append_audit(&entries)?;
        }
        // Replication's own access: each item passed the site's gate above and is audited.
        let system = SystemGate::new("replication");
        let mut out = Vec::with_capacity(rows.len());
        let total = rows.len() as u64;
        for (row, meta) in rows {
            progress(out.len() as u64, total);
            let content = self.read_content(system.allow(&row.id), &row)?;
            out.push((meta, content));
        }
        progress(total, total);
        Ok(out)
    }

    /// Stores an item received from another site under this node's own keys,
    /// with the sender's id, marking, collection and lineage. Creates the
    /// agency (with a key of its own here) and the collection when they are
    /// new here. Returns whether it was new (receiving twice changes nothing).
    pub fn store_replica(
        &mut self,
        origin: &str,
        meta: &ItemMeta,
        content: Vec<u8>,
    ) -> Result<bool> {
        if self.catalog.item(&meta.id)?.is_some() {
            return Ok(false);
        }
        if content.len() as u64 != meta.size {
            return Err(Error::Invalid(format!(
                "item {}: {} bytes received, {} announced",
                meta.id,
                content.len(),
                meta.size
            )));
        }
        let marking = Marking::parse(&meta.marking)
            .map_err(|e| Error::Invalid(format!("item {}: marking: {e}", meta.id)))?;
        let (agency, _) = meta.collection.split_once('/').ok_or_else(|| {
            Error::Invalid(format!(
                "item {}: collection {:?}",
                meta.id, meta.collection
            ))
        })?;
        if !self.agencies()?.iter().any(|a| a == agency) {
            self.add_agency(agency)?;
        }
        let coll = match self.collection_by_name(&meta.collection)? {
            Some(c) => c,
            None => {
                self.add_collection(&meta.collection, false)?;
                self.collection_by_name(&meta.collection)?
                    .ok_or_else(|| Error::Layout("collection vanished".into()))?
            }
        };
        let from = match &meta.derived_from {
            Some(source) => Some(Lineage {
                source: source.clone(),
                derivation: meta.derivation.clone().unwrap_or_else(|| "derived".into()),
                tag: self.lineage_tag(agency, source)?,
                generation: meta.generation,
            }),
            None => None,
        };
        let opts = IngestOptions {
            collection: meta.collection.clone(),
            marking,
            authority: meta.authority.clone(),
            retain_until_ms: meta.retain_until_ms,
            justification: Some(format!("replicated from site {origin}")),
            priority: meta.priority,
        };
        let item = NewItem {
            title: meta.title.clone(),
            content,
        };
        let actor = Actor::Principal(format!("site:{origin}"));
        self.store_items(
            &actor,
            &coll,
            &opts,
            vec![item],
            from.as_slice(),
            Some(meta),
        )?;
        // Vectors are this node's own derived data and do not travel: a replica is embedded
        // here like any item when semantic search is on (the job embeds nothing for a
        // recording or an event log). Translations do travel, as the sender's derived items,
        // so replicas are not translated again here.
        if self.semantic_model()?.is_some() {
            self.enqueue_jobs(
                &format!("site:{origin}"),
                &[(crate::jobs::EMBED, meta.id.as_str())],
            )?;
        }
        Ok(true)
    }

    /// Whether an item with this id is here. For the replication layer,
    /// which must not fetch twice what it holds; never shown to a principal.
    pub fn holds(&self, id: &str) -> Result<bool> {
        Ok(self.catalog.item(id)?.is_some())
    }

    /// The collection and marking (written out for this node's home) of an
    /// item held here, for checking what a peer sends about it. A system
    /// path: nothing of it goes to a principal.
    pub fn placement_of(&mut self, id: &str) -> Result<Option<(String, Marking)>> {
        let Some(row) = self.catalog.item(id)? else {
            return Ok(None);
        };
        let (meta, marking) = self.open_meta(&row)?;
        Ok(Some((meta.collection, marking.explicit(self.home))))
    }

    /// Whether a collection `agency/name` exists here.
    pub fn has_collection(&self, full: &str) -> Result<bool> {
        Ok(self.collection_by_name(full)?.is_some())
    }

    /// Every collection here, as `agency/name`.
    pub fn collection_names(&self) -> Result<BTreeSet<String>> {
        Ok(self
            .collections()?
            .into_iter()
            .map(|c| format!("{}/{}", c.agency, c.name))
            .collect())
    }

    /// Crypto-shreds an item (and what was derived from it) because the
    /// sending site no longer allows this site to hold it. Returns whether it
    /// was here.
    pub fn remove_replica(&mut self, origin: &str, id: &str) -> Result<bool> {
        let Some(row) = self.catalog.item(id)? else {
            return Ok(false);
        };
        self.shred_row(
            Actor::Principal(format!("site:{origin}")),
            &row,
            "sync.remove",
        )?;
        Ok(true)
    }

    /// Destroys this node's key files: the platform key (catalog, index,
    /// TLS), every agency key and the oversight secret if it is still here.
    /// Each is overwritten with random bytes and synced before it is
    /// removed. What remains on disk is sealed under keys that no longer
    /// exist. The audit entry is appended first. The platform must not be
    /// used afterwards: the caller exits.
    pub fn erase_keys(&mut self, reason: &str) -> Result<Vec<PathBuf>> {
        self.record(
            Actor::Operator,
            "site.erase",
            vec![self.root.display().to_string()],
            None,
            Outcome::Allowed,
            Some(reason.to_owned()),
        )?;
        let dir = self.root.join("keys");
        let mut destroyed = Vec::new();
        let entries = std::fs::read_dir(&dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_none_or(|x| x != "key") {
                continue;
            }
            overwrite_and_remove(&path)?;
            destroyed.push(path);
        }
        destroyed.sort();
        Ok(destroyed)
    }
}

fn overwrite_and_remove(path: &std::path::Path) -> Result<()> {
    let io = |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    };
    let len = std::fs::metadata(path).map_err(io)?.len() as usize;
    let mut noise = vec![0u8; len];
    bletchley_crypto::random_bytes(&mut noise)?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io)?;
    f.write_all(&noise).map_err(io)?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::remove_file(path).map_err(io)?;
    if let Some(parent) = path.parent()
        && let Ok(d) = std::fs::File::open(parent)
    {
        let _ = d.sync_all();
    }
    Ok(())
}
