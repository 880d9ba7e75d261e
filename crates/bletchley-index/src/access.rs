//! What every reader of the index does first: bring it up to date with the
//! catalog, and work out which collections the gate lets a principal see.
//! The command line and the server share this, so they cannot disagree.

use std::collections::HashMap;

use bletchley_policy::{CollectionId, Gate};
use bletchley_store::Platform;

use crate::{Result, SearchIndex};

/// The collections a principal may search now.
#[derive(Clone, Debug, Default)]
pub struct Visible {
    /// Catalog numbers, for the gate filter.
    pub ids: Vec<CollectionId>,
    /// `agency/name` → number, for `collection:` filters.
    pub names: HashMap<String, CollectionId>,
    /// Bulk collections left out because no justification was given.
    pub skipped_bulk: Vec<String>,
}

/// The collections `gate` admits, less bulk collections unless a
/// non-blank justification is given.
pub fn visible(p: &Platform, gate: &Gate, justification: Option<&str>) -> Result<Visible> {
    let justified = justification.is_some_and(|j| !j.trim().is_empty());
    let mut out = Visible::default();
    for c in p
        .collections()?
        .into_iter()
        .filter(|c| gate.visibility().contains(c.id))
    {
        let name = format!("{}/{}", c.agency, c.name);
        if c.bulk && !justified {
            out.skipped_bulk.push(name);
            continue;
        }
        out.names.insert(name, c.id);
        out.ids.push(c.id);
    }
    Ok(out)
}

/// Opens the platform's sealed index and reconciles it with the catalog.
pub fn open_synced(p: &mut Platform) -> Result<SearchIndex> {
    let mut index = SearchIndex::open(
        &p.root().join("index"),
        p.derived_key("search-index"),
        p.home(),
    )?;
    sync(p, &mut index)?;
    Ok(index)
}

/// Adds new items to `index` and removes shredded ones.
pub fn sync(p: &mut Platform, index: &mut SearchIndex) -> Result<()> {
    let known = index.known_ids()?;
    let (added, removed) = p.index_feed(&known)?;
    index.apply(&added, &removed)
}
