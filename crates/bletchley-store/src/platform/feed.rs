//! Handing what this process stores to a derived store as it is stored.
//!
//! The search index is built from the catalog by reconciling (reading back
//! every item it lacks). For a bulk ingest that is a second pass over the
//! whole input, decrypting what was just encrypted; feeding hands the
//! plaintext over while it is still in memory instead. Reconciling stays the
//! source of truth: the feed only says up to which items generation it holds
//! exactly the catalog's items, and only when nothing else changed them.

use super::*;
use crate::catalog::GenerationStep;
use crate::item::IndexFeedItem;

/// Items stored since the last [`super::Platform::take_fed`], for a derived
/// store. Not for principals: whatever is built from them must apply the
/// gate itself.
#[derive(Debug, Default)]
pub struct Fed {
    /// The items, in the order they were stored (derived parts after their
    /// source's batch).
    pub items: Vec<IndexFeedItem>,
    /// The items generation after these items, when every change of the
    /// items since feeding began was made here and fed: a store that held
    /// exactly the catalog's items at the generation feeding began from, and
    /// adds all that was fed, then holds exactly the catalog's items at this
    /// one. `None` when another change (another process's ingest, a shred)
    /// came between; the store must then reconcile.
    pub generation: Option<u64>,
}

/// The feed's state while it is on.
#[derive(Debug)]
pub(super) struct Feed {
    items: Vec<IndexFeedItem>,
    /// Where the chain of this process's commits stands; `None` once broken.
    at: Option<u64>,
}

impl Feed {
    /// A feed for a store that holds the catalog's items as of `generation`
    /// (`None`: not known to hold them as of any).
    pub(super) fn from(generation: Option<u64>) -> Feed {
        Feed {
            items: Vec::new(),
            at: generation,
        }
    }

    /// Records a commit of `items` that moved the generation by `step`.
    pub(super) fn stored(&mut self, items: Vec<IndexFeedItem>, step: GenerationStep) {
        self.items.extend(items);
        self.at = self.at.filter(|&at| at == step.before).map(|_| step.after);
    }

    /// What was fed since the last call, and where the chain stands.
    pub(super) fn take(&mut self) -> Fed {
        Fed {
            items: std::mem::take(&mut self.items),
            generation: self.at,
        }
    }
}

impl Platform {
    /// Changes whenever an item is added or shredded, by this process or
    /// another, never back to an earlier value: a derived store synced at
    /// this value need not reconcile again until it changes
    /// ([`Platform::index_feed`] reads every id).
    pub fn items_generation(&self) -> Result<u64> {
        self.catalog.items_generation()
    }

    /// Starts keeping what this handle stores, for a derived store that
    /// holds the catalog's items as of `generation` (see [`Fed`]); the
    /// search index's bulk ingest takes it batch by batch. Replaces a feed
    /// already on, dropping what it held.
    pub fn feed_from(&mut self, generation: Option<u64>) {
        self.feed = Some(feed::Feed::from(generation));
    }

    /// What was stored since feeding began or since the last call; nothing
    /// when feeding is off.
    pub fn take_fed(&mut self) -> Fed {
        self.feed.as_mut().map(feed::Feed::take).unwrap_or_default()
    }

    /// Stops feeding, dropping what was not taken.
    pub fn stop_feeding(&mut self) {
        self.feed = None;
    }

    /// Reconciles a derived store with the catalog: returns the items it
    /// lacks (those `known` says no to), and the ids it holds that no longer
    /// exist (shredded) or that were re-marked since it took them (`stale`, from
    /// [`Self::index_stale`]: each is both removed and added again, with its new
    /// marking). System path for the search index, which applies the gate inside
    /// every query; never hand its output to a principal.
    pub fn index_feed(
        &mut self,
        known: &std::collections::HashSet<String>,
        stale: &[String],
    ) -> Result<(Vec<crate::item::IndexFeedItem>, Vec<String>)> {
        self.index_feed_reporting(known, stale, &mut |_, _| {})
    }

    /// [`Self::index_feed`], telling `progress` how many of the items to read back have
    /// been (after each batch) and how many there are, for a progress bar.
    pub fn index_feed_reporting(
        &mut self,
        known: &std::collections::HashSet<String>,
        stale: &[String],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<(Vec<crate::item::IndexFeedItem>, Vec<String>)> {
        // Items waiting for a retention review are past their date: the index leaves them out.
        let withheld: std::collections::HashSet<String> =
            self.index_withheld()?.into_iter().collect();
        let mut ids = self.catalog.item_ids()?;
        ids.retain(|i| !withheld.contains(i));
        let present: std::collections::HashSet<&String> = ids.iter().collect();
        let stale: std::collections::HashSet<&String> =
            stale.iter().filter(|s| known.contains(*s)).collect();
        let removed: Vec<String> = known
            .iter()
            .filter(|k| !present.contains(k) || stale.contains(k))
            .cloned()
            .collect();
        let wanted: Vec<&String> = ids
            .iter()
            .filter(|i| !known.contains(*i) || stale.contains(i))
            .collect();
        let added = self.system_read("index", &wanted, progress)?;
        if !added.is_empty() || !removed.is_empty() {
            let mut targets: Vec<String> = added.iter().map(|a| a.meta.id.clone()).collect();
            targets.extend(removed.iter().map(|r| format!("removed {r}")));
            targets.truncate(500);
            self.record(
                Actor::System(SystemActor::Indexer),
                "index.sync",
                targets,
                None,
                Outcome::Allowed,
                Some(format!("{} added, {} removed", added.len(), removed.len())),
            )?;
        }
        Ok((added, removed))
    }

    /// Opens the items `wanted` names (those no longer in the catalog are skipped) with a
    /// system gate for `purpose`, for a derived store that applies the gate itself (the search
    /// and vector indexes, the embedding job). The caller audits what it read; never hand the
    /// output to a principal.
    pub(crate) fn system_read(
        &mut self,
        purpose: &'static str,
        wanted: &[&String],
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Vec<crate::item::IndexFeedItem>> {
        let mut added = Vec::new();
        // The indexer's own access, audited below with every item it opened.
        let system = SystemGate::new(purpose);
        // Reading back a large store is most of building its index: the
        // lookups that do not change per item (agencies, locations opened)
        // are done once, and each batch's objects are fetched concurrently.
        let agencies: HashMap<i64, String> = self.catalog.agencies()?.into_iter().collect();
        let locations = self.locations()?;
        let mut opened: HashMap<i64, ObjectLocation> = HashMap::new();
        let mut done = 0;
        progress(done, wanted.len());
        for batch in wanted.chunks(FEED_BATCH) {
            done += batch.len();
            let mut rows = Vec::with_capacity(batch.len());
            for id in batch {
                let Some(row) = self.catalog.item(id)? else {
                    continue;
                };
                let c = self
                    .catalog
                    .content(row.content_id)?
                    .ok_or_else(|| Error::Layout(format!("item {} has no content row", row.id)))?;
                let agency = agencies.get(&row.agency_id).ok_or_else(|| {
                    Error::Layout(format!("catalog names unknown agency {}", row.agency_id))
                })?;
                let (meta, marking, binding) = self.open_sealed_meta(&row, agency)?;
                let cdek = self.content_key(&row, &c, agency)?;
                rows.push((row, c, cdek, meta, marking, binding));
            }
            for (row, c, ..) in &rows {
                if !opened.contains_key(&c.location_id) {
                    let loc = locations
                        .iter()
                        .find(|l| l.id == c.location_id)
                        .ok_or_else(|| unknown_location(row))?;
                    opened.insert(loc.id, loc.open()?);
                }
            }
            let fetches = rows
                .iter()
                .map(|(row, c, ..)| {
                    let loc = opened
                        .get(&c.location_id)
                        .ok_or_else(|| unknown_location(row))?;
                    let (name, range) = content_span(row, c)?;
                    Ok((loc, name, range))
                })
                .collect::<Result<Vec<_>>>()?;
            let sealed = ObjectLocation::get_many(&self.rt, &fetches)?;
            for ((row, c, cdek, meta, marking, binding), sealed) in rows.into_iter().zip(sealed) {
                let content =
                    open_content(system.allow(&row.id), &row, &c, &cdek, &sealed, &binding)?;
                added.push(crate::item::IndexFeedItem {
                    meta,
                    marking,
                    collection: CollectionId(row.collection_id),
                    content,
                });
            }
            progress(done, wanted.len());
        }
        Ok(added)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(before: u64, after: u64) -> GenerationStep {
        GenerationStep { before, after }
    }

    #[test]
    fn the_chain_holds_only_through_this_process_s_own_commits() {
        let mut f = Feed::from(Some(7));
        f.stored(Vec::new(), step(7, 11));
        f.stored(Vec::new(), step(11, 3));
        assert_eq!(f.take().generation, Some(3));
        // Another process committed 3 -> 5: the next step starts from 5.
        f.stored(Vec::new(), step(5, 9));
        assert_eq!(f.take().generation, None);
        // Once broken it stays broken, even if a step happens to line up.
        f.stored(Vec::new(), step(9, 10));
        assert_eq!(f.take().generation, None);
        let mut unknown = Feed::from(None);
        unknown.stored(Vec::new(), step(0, 1));
        assert_eq!(unknown.take().generation, None);
    }
}
