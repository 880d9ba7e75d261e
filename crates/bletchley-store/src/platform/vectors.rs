//! Semantic search's side of the store: the setting that turns embedding on, the embedding
//! job's reads and writes, and the feed the vector index reconciles from.

use std::collections::HashSet;

use bletchley_audit::Outcome;
use bletchley_crypto::record;
use bletchley_policy::{CollectionId, Marking};

use super::{Actor, Platform, SystemActor};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::item::IndexFeedItem;
use crate::vectors::ItemVectors;

/// The guarded `meta` key naming the sentence-embedding model items are embedded with.
const SEMANTIC_MODEL: &str = "semantic.model";

/// Binds an item's vectors to the item.
fn vectors_aad(id: &str) -> Vec<u8> {
    format!("item-vectors/{id}").into_bytes()
}

/// An item's vectors with what decides who may see them, for the vector index.
#[derive(Clone, Debug)]
pub struct VectorFeedItem {
    /// The item.
    pub id: String,
    /// Its collection's catalog number.
    pub collection: CollectionId,
    /// Its marking, from its sealed metadata.
    pub marking: Marking,
    /// Its vectors.
    pub vectors: ItemVectors,
}

impl Platform {
    /// The sentence-embedding model items are embedded with at ingest, if the operator turned
    /// semantic search on.
    pub fn semantic_model(&self) -> Result<Option<String>> {
        Ok(self.catalog.meta(SEMANTIC_MODEL)?.filter(|m| !m.is_empty()))
    }

    /// Turns embedding at ingest on with `model` (an installed model's name), or off. Only the
    /// operator; audited. The setting sits in the guarded `meta` table.
    pub fn set_semantic_model(&mut self, model: Option<&str>) -> Result<()> {
        if let Some(m) = model
            && (m.is_empty()
                || m.len() > 64
                || !m
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
        {
            return Err(Error::Invalid(format!(
                "model name {m:?}: 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        self.catalog
            .set_meta(SEMANTIC_MODEL, model.unwrap_or_default())?;
        self.record(
            Actor::Operator,
            "settings.semantic",
            vec![model.unwrap_or("off").to_owned()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Whether `id` has vectors stored (an embedding job that ran before is not run again).
    pub fn has_vectors(&self, id: &str) -> Result<bool> {
        Ok(self.catalog.item_vectors(id)?.is_some())
    }

    /// Items of the catalog that have no vectors yet, for a backfill when semantic search is
    /// turned on over an existing store.
    pub fn items_without_vectors(&self) -> Result<Vec<String>> {
        let have: HashSet<String> = self.catalog.item_vector_ids()?.into_iter().collect();
        let mut ids = self.catalog.item_ids()?;
        ids.retain(|i| !have.contains(i));
        ids.sort();
        Ok(ids)
    }

    /// The items an embedding job embeds, read by the worker through a system gate: the
    /// vectors are a derived store like the search index, sealed under each item's own key,
    /// and never handed to anyone but through the gate. Audited as `item.embed-read`.
    pub fn read_for_embedding(&mut self, ids: &[String]) -> Result<Vec<IndexFeedItem>> {
        let wanted: Vec<&String> = ids.iter().collect();
        let read = self.system_read("embedding", &wanted, &mut |_, _| {})?;
        if !read.is_empty() {
            let mut targets: Vec<String> = read.iter().map(|r| r.meta.id.clone()).collect();
            targets.truncate(500);
            self.record(
                Actor::System(SystemActor::Worker),
                "item.embed-read",
                targets,
                None,
                Outcome::Allowed,
                Some(format!("{} items read to embed", read.len())),
            )?;
        }
        Ok(read)
    }

    /// Stores each item's vectors (replacing any it had), sealed under the item's own data key
    /// and bound to its id, in one transaction that moves the items generation; audited as
    /// `item.embed`.
    pub fn store_vectors(&mut self, batch: &[(String, ItemVectors)]) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut rows = Vec::with_capacity(batch.len());
        for (id, v) in batch {
            let Some(row) = self.catalog.item(id)? else {
                return Err(Error::NotFoundOrNotPermitted { reason: None });
            };
            let agency = self.agency_name(row.agency_id)?;
            let key = self.item_key(&row, &agency)?;
            let sealed = record::seal(&key, &vectors_aad(id), &v.to_bytes()?)?;
            rows.push((id.clone(), sealed));
        }
        self.catalog.set_item_vectors(&rows)?;
        let chunks: usize = batch.iter().map(|(_, v)| v.chunks.len()).sum();
        let mut targets: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
        targets.truncate(500);
        self.record(
            Actor::System(SystemActor::Worker),
            "item.embed",
            targets,
            None,
            Outcome::Allowed,
            Some(format!("{} items, {chunks} chunks", batch.len())),
        )
    }

    /// Reconciles the vector index with the catalog, as [`Self::index_feed`] does the search
    /// index: the items with vectors it lacks (each with its collection and marking from its
    /// sealed metadata), and the ids it holds that are gone or were re-marked since
    /// (`stale`, from [`Self::vectors_stale`]; those are removed and added again). System
    /// path, audited as `vectors.sync`; never hand its output to a principal.
    pub fn vector_feed(
        &mut self,
        known: &HashSet<String>,
        stale: &[String],
    ) -> Result<(Vec<VectorFeedItem>, Vec<String>)> {
        let withheld: HashSet<String> = self.index_withheld()?.into_iter().collect();
        let mut ids = self.catalog.item_vector_ids()?;
        ids.retain(|i| !withheld.contains(i));
        ids.sort();
        let present: HashSet<&String> = ids.iter().collect();
        let stale: HashSet<&String> = stale.iter().collect();
        let mut removed: Vec<String> = known
            .iter()
            .filter(|k| !present.contains(k) || stale.contains(k))
            .cloned()
            .collect();
        removed.sort();
        let mut added = Vec::new();
        for id in ids
            .iter()
            .filter(|i| !known.contains(*i) || stale.contains(i))
        {
            let (Some(row), Some(sealed)) =
                (self.catalog.item(id)?, self.catalog.item_vectors(id)?)
            else {
                continue;
            };
            let agency = self.agency_name(row.agency_id)?;
            let (_, marking, _) = self.open_sealed_meta(&row, &agency)?;
            let key = self.item_key(&row, &agency)?;
            let plain = record::open(
                &key,
                &vectors_aad(id),
                &sealed,
                bletchley_crypto::Context::Record,
            )
            .map_err(|_| {
                Error::Damaged(format!(
                    "the vectors of item {id} do not open (altered, or moved from another item)"
                ))
            })?;
            added.push(VectorFeedItem {
                id: id.clone(),
                collection: CollectionId(row.collection_id),
                marking,
                vectors: ItemVectors::from_bytes(&plain)?,
            });
        }
        if !added.is_empty() || !removed.is_empty() {
            let mut targets: Vec<String> = added.iter().map(|a| a.id.clone()).collect();
            targets.extend(removed.iter().map(|r| format!("removed {r}")));
            targets.truncate(500);
            self.record(
                Actor::System(SystemActor::Indexer),
                "vectors.sync",
                targets,
                None,
                Outcome::Allowed,
                Some(format!("{} added, {} removed", added.len(), removed.len())),
            )?;
        }
        Ok((added, removed))
    }

    /// The collection and marking of each of `ids` as its sealed metadata says (`None` for an
    /// item no longer in the catalog): what a vector search's hits are checked against before
    /// anyone sees them, so a vector index the host put back from an earlier state cannot
    /// show an item under a marking it no longer has.
    pub fn access_classes(
        &mut self,
        ids: &[String],
    ) -> Result<Vec<Option<(CollectionId, Marking)>>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some(row) = self.catalog.item(id)? else {
                out.push(None);
                continue;
            };
            let agency = self.agency_name(row.agency_id)?;
            let (_, marking, _) = self.open_sealed_meta(&row, &agency)?;
            out.push(Some((CollectionId(row.collection_id), marking)));
        }
        Ok(out)
    }
}
