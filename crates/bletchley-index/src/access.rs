//! What every reader of the index does first: bring it up to date with the
//! catalog, and work out which collections the gate lets a principal see.
//! The command line and the server share this, so they cannot disagree.

use std::collections::HashMap;

use bletchley_audit::Outcome;
use bletchley_policy::{CollectionId, Gate};
use bletchley_store::{Actor, Platform};

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

/// The items derived from `id` that `who` may see (attachments, archive
/// members, transcripts), for showing beside an item already read through
/// the gate (whose read was audited).
pub fn derived(
    p: &Platform,
    index: &SearchIndex,
    who: &str,
    id: &str,
    justification: Option<&str>,
) -> Result<Vec<crate::search::DerivedItem>> {
    let gate = p.gate(who)?;
    let v = visible(p, &gate, justification)?;
    index.derived(&gate, &v.ids, id)
}

/// A search by `who`, gated and audited (allowed with the hit ids, or
/// refused with the reason). Returns the results and the bulk collections
/// left out.
pub fn search(
    p: &mut Platform,
    index: &SearchIndex,
    who: &str,
    req: &crate::SearchRequest,
    justification: Option<&str>,
) -> Result<(crate::SearchResults, Vec<String>)> {
    let gate = p.gate(who)?;
    let v = visible(p, &gate, justification)?;
    let found = index.search(&gate, &v.ids, &v.names, req);
    let (outcome, reason, mut targets) = match &found {
        Ok(r) => (
            Outcome::Allowed,
            Some(format!("{} visible matches", r.total)),
            r.hits.iter().map(|h| h.id.clone()).collect(),
        ),
        Err(e) => (Outcome::Refused, Some(e.to_string()), Vec::new()),
    };
    targets.insert(0, req.query.clone());
    p.record(
        Actor::Principal(who.to_owned()),
        "search",
        targets,
        justification,
        outcome,
        reason,
    )?;
    Ok((found?, v.skipped_bulk))
}

/// Completions for `who`, gated and audited.
pub fn suggest(
    p: &mut Platform,
    index: &SearchIndex,
    who: &str,
    prefix: &str,
    limit: usize,
    justification: Option<&str>,
) -> Result<Vec<crate::Suggestion>> {
    let gate = p.gate(who)?;
    let v = visible(p, &gate, justification)?;
    let found = index.suggest(&gate, &v.ids, prefix, limit);
    let (outcome, reason) = match &found {
        Ok(_) => (Outcome::Allowed, None),
        Err(e) => (Outcome::Refused, Some(e.to_string())),
    };
    p.record(
        Actor::Principal(who.to_owned()),
        "search.suggest",
        vec![prefix.to_owned()],
        justification,
        outcome,
        reason,
    )?;
    found
}

/// The link graph of what `who` may see (audit the query that uses it
/// with [`Platform::record`]).
pub fn visible_graph(
    p: &Platform,
    index: &SearchIndex,
    who: &str,
    justification: Option<&str>,
) -> Result<crate::graph::LinkGraph> {
    Ok(crate::graph::LinkGraph::build(&visible_links(
        p,
        index,
        who,
        justification,
    )?))
}

/// Every visible item with its selectors and events, for graphs and
/// timelines.
pub fn visible_links(
    p: &Platform,
    index: &SearchIndex,
    who: &str,
    justification: Option<&str>,
) -> Result<Vec<crate::graph::ItemLinks>> {
    let gate = p.gate(who)?;
    let v = visible(p, &gate, justification)?;
    index.visible_links(&gate, &v.ids)
}

/// The timeline between `chosen` selector terms for `who`, gated and
/// audited (the selectors and the items listed).
pub fn timeline(
    p: &mut Platform,
    index: &SearchIndex,
    who: &str,
    chosen: &[String],
    justification: Option<&str>,
) -> Result<Vec<crate::graph::Event>> {
    let links = visible_links(p, index, who, justification)?;
    let events = crate::graph::timeline(&links, chosen);
    let mut targets = chosen.to_vec();
    targets.extend(events.iter().map(|e| e.id.clone()));
    p.record(
        Actor::Principal(who.to_owned()),
        "timeline",
        targets,
        justification,
        Outcome::Allowed,
        None,
    )?;
    Ok(events)
}
