//! The platform's search index and link graph lent to a playbook's enrichment step (the
//! detection crate lives beside the index, not above it). The command line and the server
//! both enrich through here, so they agree.

use bletchley_audit::Outcome;
use bletchley_detect::playbook::{Lookup, Sighting};
use bletchley_index::SearchIndex;
use bletchley_index::graph::LinkGraph;
use bletchley_store::{Actor, Platform};

/// The most neighbours one sighting names.
const MAX_NEIGHBOURS: usize = 50;

/// The most targets the audit entry of one look-up names (selectors first, then items); the
/// entry's reason gives the whole count.
const MAX_AUDIT_TARGETS: usize = 1000;

/// An enrichment over `index`, which the caller has reconciled with the catalog.
pub struct IndexLookup<'a> {
    /// The platform's sealed index.
    pub index: &'a SearchIndex,
}

fn store_error(e: bletchley_index::Error) -> bletchley_store::Error {
    match e {
        bletchley_index::Error::Store(e) => e,
        other => bletchley_store::Error::Layout(other.to_string()),
    }
}

impl Lookup for IndexLookup<'_> {
    /// Each selector, normalised as the index keeps it, with the items `who` may see that name
    /// it and its neighbours in `who`'s link graph; audited as `playbook.enrich` with the
    /// selectors and the items named.
    fn look_up(
        &mut self,
        p: &mut Platform,
        who: &str,
        selectors: &[String],
        justification: Option<&str>,
    ) -> bletchley_store::Result<Vec<Sighting>> {
        let links = bletchley_index::access::visible_links(p, self.index, who, justification)
            .map_err(store_error)?;
        let graph = LinkGraph::build(&links);
        let mut out = Vec::new();
        let mut targets = Vec::new();
        for s in selectors {
            let term = bletchley_index::entities::normalise(s).unwrap_or_else(|| s.clone());
            let items: Vec<String> = links
                .iter()
                .filter(|l| l.entities.contains(&term))
                .map(|l| l.id.clone())
                .collect();
            let neighbours: Vec<String> = graph
                .neighbours(&term, 1)
                .into_iter()
                .map(|n| n.entity)
                .take(MAX_NEIGHBOURS)
                .collect();
            targets.push(term.clone());
            targets.extend(items.iter().cloned());
            out.push(Sighting {
                selector: term,
                items,
                neighbours,
            });
        }
        let named: usize = out.iter().map(|s| s.items.len()).sum();
        let reason = format!("{} selectors, {named} items naming them", out.len());
        // Selectors first, so every one looked up is named even when the items are many.
        let (mut sel, items): (Vec<String>, Vec<String>) = targets
            .into_iter()
            .partition(|t| out.iter().any(|s| &s.selector == t));
        sel.extend(items);
        sel.truncate(MAX_AUDIT_TARGETS);
        p.record(
            Actor::Principal(who.to_owned()),
            "playbook.enrich",
            sel,
            justification,
            Outcome::Allowed,
            Some(reason),
        )?;
        Ok(out)
    }
}
