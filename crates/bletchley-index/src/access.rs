//! What every reader of the index does first: bring it up to date with the
//! catalog, and work out which collections the gate lets a principal see.
//! The command line and the server share this, so they cannot disagree.

use bletchley_audit::Outcome;
use bletchley_policy::{Admitted, Gate};
use bletchley_store::{Actor, Platform};

use crate::{Result, SearchIndex};

/// The collections `gate` admits now, less bulk collections unless a non-blank justification
/// is given: what every reader of the index takes.
pub fn visible(p: &Platform, gate: &Gate, justification: Option<&str>) -> Result<Admitted> {
    Ok(gate.admit(p.collections()?, justification))
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

/// Adds new items to `index` and removes shredded ones. Every search does
/// this first; when no item was added or shredded since the index was last
/// reconciled (by any process: the generation is kept in the index's
/// commit), it costs one catalog lookup instead of reading every id.
pub fn sync(p: &mut Platform, index: &mut SearchIndex) -> Result<()> {
    sync_reporting(p, index, &mut |_, _| {})
}

/// [`sync`], telling `progress` how many of the items to read back have been read and how
/// many there are (a rebuild reads every item), for a progress bar.
pub fn sync_reporting(
    p: &mut Platform,
    index: &mut SearchIndex,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<()> {
    // What is past its retention date goes before anyone reads the index.
    p.shred_due()?;
    // Read before the ids: a change made while they are read moves the
    // generation past this one, and the next sync reconciles again.
    let generation = p.items_generation()?;
    if index.synced_generation() == Some(generation) {
        return Ok(());
    }
    // Another process may reconcile beside this one: take up what it
    // committed, and if it commits while the changes are worked out, again.
    let mut attempts = 0;
    loop {
        index.catch_up()?;
        if index.synced_generation() == Some(generation) {
            return Ok(());
        }
        let known = index.known_ids()?;
        // Re-marked items are taken again with their new marking; the list is cleared
        // only once the index holds them.
        let stale = p.index_stale()?;
        let (added, removed) = p.index_feed_reporting(&known, &stale, progress)?;
        match index.apply_synced(&added, &removed, generation) {
            Err(crate::Error::Behind) if attempts < 3 => attempts += 1,
            Ok(()) => {
                p.clear_index_stale(&stale)?;
                return Ok(());
            }
            other => return other,
        }
    }
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
    index.derived(&v, id)
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
    let found = index.search(&v, req);
    record_search(
        p,
        who,
        req.query.clone(),
        found
            .as_ref()
            .map(|r| (&r.hits[..], format!("{} visible matches", r.total))),
        justification,
    )?;
    Ok((found?, v.skipped_bulk().to_vec()))
}

/// Audits a search by `who` (any mode) as `search`: what was asked, then the ids of the hits
/// shown with `summary`, or the refusal with its error.
pub(crate) fn record_search(
    p: &mut Platform,
    who: &str,
    asked: String,
    found: std::result::Result<(&[crate::Hit], String), &crate::Error>,
    justification: Option<&str>,
) -> Result<()> {
    let (outcome, reason, mut targets) = match found {
        Ok((hits, summary)) => (
            Outcome::Allowed,
            Some(summary),
            hits.iter().map(|h| h.id.clone()).collect(),
        ),
        Err(e) => (Outcome::Refused, Some(e.to_string()), Vec::new()),
    };
    targets.insert(0, asked);
    p.record(
        Actor::Principal(who.to_owned()),
        "search",
        targets,
        justification,
        outcome,
        reason,
    )?;
    Ok(())
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
    let found = index.suggest(&v, prefix, limit);
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
    index.visible_links(&v)
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

/// A question to the link graph, with selectors already normalised.
#[derive(Clone, Debug)]
pub enum GraphAsk {
    /// Selectors within `hops` of one.
    Neighbours {
        /// The start.
        selector: String,
        /// Hops, 1 to 6.
        hops: usize,
    },
    /// The shortest chain between two.
    Path {
        /// One end.
        from: String,
        /// The other.
        to: String,
    },
    /// Contacts two selectors share.
    Common {
        /// One.
        a: String,
        /// The other.
        b: String,
    },
    /// Communities of the whole visible graph.
    Communities,
    /// The most central selectors.
    Centrality {
        /// How many.
        top: usize,
    },
}

/// A graph answer: JSON for the caller (with `marking`, the high-water mark
/// of the items that support it), and the action and targets to audit.
#[derive(Clone, Debug)]
pub struct GraphAnswer {
    /// `graph.neighbours`, `graph.path`, …
    pub action: &'static str,
    /// Selectors asked about.
    pub targets: Vec<String>,
    /// The answer.
    pub json: serde_json::Value,
}

/// Answers `ask` over `g`. The command line and the API both answer
/// through here, so they agree, and both mark the answer by rule 4: at the
/// high-water mark of the items behind the links shown (for communities
/// and centrality, every item of the graph).
pub fn answer(
    g: &crate::graph::LinkGraph,
    ask: &GraphAsk,
    home: bletchley_policy::Nation,
) -> GraphAnswer {
    use serde_json::json;
    let (action, targets, mut out, whole) = match ask {
        GraphAsk::Neighbours { selector, hops } => (
            "graph.neighbours",
            vec![selector.clone()],
            json!({ "selector": selector, "neighbours": g.neighbours(selector, (*hops).clamp(1, 6)) }),
            false,
        ),
        GraphAsk::Path { from, to } => {
            let path = g.path(from, to).map(|v| {
                v.into_iter()
                    .map(|(e, items)| json!({ "entity": e, "via_items": items }))
                    .collect::<Vec<_>>()
            });
            (
                "graph.path",
                vec![from.clone(), to.clone()],
                json!({ "from": from, "to": to, "path": path }),
                false,
            )
        }
        GraphAsk::Common { a, b } => (
            "graph.common",
            vec![a.clone(), b.clone()],
            json!({ "a": a, "b": b, "common": g.common(a, b) }),
            false,
        ),
        GraphAsk::Communities => (
            "graph.communities",
            vec![],
            json!({ "communities": g.communities() }),
            true,
        ),
        GraphAsk::Centrality { top } => (
            "graph.centrality",
            vec![],
            json!({ "centrality": g.centrality((*top).clamp(1, 10_000)) }),
            true,
        ),
    };
    let banners = if whole {
        g.all_markings()
    } else {
        let mut ids = Vec::new();
        supporting_items(&out, &mut ids);
        g.markings_of(ids.iter().map(String::as_str))
    };
    let markings: Vec<bletchley_policy::Marking> = banners
        .iter()
        .filter_map(|b| bletchley_policy::Marking::parse(b).ok())
        .collect();
    out["marking"] =
        json!(bletchley_policy::Marking::high_water_mark(&markings, home).map(|m| m.render()));
    GraphAnswer {
        action,
        targets,
        json: out,
    }
}

/// Item ids under `via_items`, `via_a` and `via_b` anywhere in `v`.
fn supporting_items(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, x) in m {
                if matches!(k.as_str(), "via_items" | "via_a" | "via_b") {
                    out.extend(
                        x.as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|i| i.as_str().map(str::to_owned)),
                    );
                } else {
                    supporting_items(x, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|x| supporting_items(x, out)),
        _ => {}
    }
}
