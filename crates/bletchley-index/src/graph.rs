//! The link graph: selectors linked by the items that mention them together.
//!
//! Built per query from the documents the gate admits, so an edge exists
//! for a principal only if an item it may see supports it.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::visit::EdgeRef;

/// One visible item and the selectors it mentions.
#[derive(Clone, Debug)]
pub struct ItemLinks {
    /// Item id.
    pub id: String,
    /// Its selectors as `kind:value` terms.
    pub entities: Vec<String>,
    /// Title.
    pub title: String,
    /// Banner.
    pub marking: String,
    /// Ingest time, Unix milliseconds.
    pub created_ms: i64,
    /// When what it records happened (an alert's event), if it says: its place on a
    /// timeline, before the ingest time.
    pub happened_ms: Option<i64>,
    /// Communications it records (calls, messages), each a timed link.
    pub events: Vec<crate::comms::CommEvent>,
    /// The item it was derived from (an attachment's e-mail), if any.
    pub parent: Option<String>,
}

/// Largest number of links one derived item adds to its source's selectors;
/// past it (a huge attachment of a huge message) only its own links count.
const MAX_FAMILY_LINKS: usize = 10_000;

/// One item on a timeline.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Event {
    /// Item id.
    pub id: String,
    /// Unix milliseconds.
    pub time_ms: i64,
    /// Title.
    pub title: String,
    /// Banner.
    pub marking: String,
    /// Which of the chosen selectors it mentions.
    pub entities: Vec<String>,
    /// For a communication: its direction, duration and place.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<crate::comms::CommEvent>,
}

/// What happened between the chosen selectors, oldest first: the
/// communications between them (each at its own time), and the other items
/// that mention them (when they say it happened, as an alert does, else at ingest time). With one selector, everything that
/// involves it; with several, what links at least two of them.
pub fn timeline(items: &[ItemLinks], chosen: &[String]) -> Vec<Event> {
    let need = if chosen.len() > 1 { 2 } else { 1 };
    let mut out: Vec<Event> = Vec::new();
    for it in items.iter().filter(|it| !it.events.is_empty()) {
        for e in &it.events {
            let hit: Vec<String> = chosen
                .iter()
                .filter(|c| **c == e.from || **c == e.to)
                .cloned()
                .collect();
            if !hit.is_empty() && hit.len() >= need {
                out.push(Event {
                    id: it.id.clone(),
                    time_ms: e.start_ms,
                    title: it.title.clone(),
                    marking: it.marking.clone(),
                    entities: hit,
                    call: Some(e.clone()),
                });
            }
        }
    }
    out.extend(
        items
            .iter()
            .filter(|it| it.events.is_empty())
            .filter_map(|it| {
                let hit: Vec<String> = chosen
                    .iter()
                    .filter(|c| it.entities.contains(c))
                    .cloned()
                    .collect();
                (hit.len() >= need).then(|| Event {
                    id: it.id.clone(),
                    time_ms: it.happened_ms.unwrap_or(it.created_ms),
                    title: it.title.clone(),
                    marking: it.marking.clone(),
                    entities: hit,
                    call: None,
                })
            }),
    );
    out.sort_by(|a, b| {
        a.time_ms
            .cmp(&b.time_ms)
            .then_with(|| a.id.cmp(&b.id))
            .then_with(|| a.entities.cmp(&b.entities))
    });
    out
}

/// Selectors as nodes; an edge joins two selectors mentioned in the same
/// item, labelled with the items that support it.
pub struct LinkGraph {
    graph: UnGraph<String, BTreeSet<String>>,
    nodes: BTreeMap<String, NodeIndex>,
    /// Banner of every item the graph was built from, so an answer can be
    /// marked at the high-water mark of the items supporting it (rule 4).
    markings: HashMap<String, String>,
}

/// A selector reached from another.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Neighbour {
    /// The selector (`kind:value`).
    pub entity: String,
    /// Hops from the start.
    pub hops: usize,
    /// Items supporting the link that first reached it.
    pub via_items: Vec<String>,
}

/// Largest graph on which betweenness is computed (it costs O(nodes × edges)).
pub const MAX_BETWEENNESS_NODES: usize = 20_000;

/// A selector linked to both of two others.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Common {
    /// The shared contact.
    pub entity: String,
    /// Items linking it to the first selector.
    pub via_a: Vec<String>,
    /// Items linking it to the second.
    pub via_b: Vec<String>,
}

/// How central a selector is in the visible graph.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Centrality {
    /// The selector.
    pub entity: String,
    /// Distinct selectors linked to it.
    pub degree: usize,
    /// Supporting items over all its links.
    pub weight: usize,
    /// Shortest paths between other selectors that pass through it, when
    /// the graph is small enough to count them.
    pub betweenness: Option<f64>,
}

impl LinkGraph {
    /// Builds the graph from visible items. Deterministic: nodes and edges are
    /// added in sorted order.
    pub fn build(items: &[ItemLinks]) -> LinkGraph {
        let mut g = LinkGraph {
            graph: UnGraph::default(),
            nodes: BTreeMap::new(),
            markings: items
                .iter()
                .map(|i| (i.id.clone(), i.marking.clone()))
                .collect(),
        };
        let all: BTreeSet<&String> = items.iter().flat_map(|i| i.entities.iter()).collect();
        for e in all {
            let n = g.graph.add_node(e.clone());
            g.nodes.insert(e.clone(), n);
        }
        let mut edges: BTreeMap<(NodeIndex, NodeIndex), BTreeSet<String>> = BTreeMap::new();
        for it in items {
            if !it.events.is_empty() {
                // A record of communications links the two ends of each
                // one, not every number in the file to every other.
                for e in &it.events {
                    if let (Some(&a), Some(&b)) = (g.nodes.get(&e.from), g.nodes.get(&e.to))
                        && a != b
                    {
                        edges
                            .entry((a.min(b), a.max(b)))
                            .or_default()
                            .insert(it.id.clone());
                    }
                }
                continue;
            }
            let mut ents: Vec<NodeIndex> = it
                .entities
                .iter()
                .filter_map(|e| g.nodes.get(e).copied())
                .collect();
            ents.sort();
            ents.dedup();
            for (i, a) in ents.iter().enumerate() {
                for b in &ents[i + 1..] {
                    edges.entry((*a, *b)).or_default().insert(it.id.clone());
                }
            }
        }
        // A derived item belongs with its source: what an attachment
        // mentions is linked to the e-mail's correspondents (the ends of its
        // messages), or to whatever the source mentions when it records no
        // messages. Both are visible together or not at all (same marking,
        // same collection), and the link is supported by the derived item.
        let by_id: HashMap<&str, &ItemLinks> = items.iter().map(|i| (i.id.as_str(), i)).collect();
        for it in items {
            let Some(source) = it.parent.as_deref().and_then(|p| by_id.get(p)) else {
                continue;
            };
            let anchors: BTreeSet<&String> = if source.events.is_empty() {
                source.entities.iter().collect()
            } else {
                source
                    .events
                    .iter()
                    .flat_map(|e| [&e.from, &e.to])
                    .collect()
            };
            if anchors.len() * it.entities.len() > MAX_FAMILY_LINKS {
                continue;
            }
            for a in anchors.iter().filter_map(|e| g.nodes.get(*e).copied()) {
                for b in it.entities.iter().filter_map(|e| g.nodes.get(e).copied()) {
                    if a != b {
                        edges
                            .entry((a.min(b), a.max(b)))
                            .or_default()
                            .insert(it.id.clone());
                    }
                }
            }
        }
        for ((a, b), support) in edges {
            g.graph.add_edge(a, b, support);
        }
        g
    }

    /// Banners of the given items (those the graph was built from), for
    /// marking an answer they support.
    pub fn markings_of<'a>(&self, items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut out: Vec<String> = items
            .into_iter()
            .filter_map(|i| self.markings.get(i).cloned())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Banners of every item the graph was built from: what an answer about
    /// the whole graph (communities, centrality) rests on.
    pub fn all_markings(&self) -> Vec<String> {
        let mut out: Vec<String> = self.markings.values().cloned().collect();
        out.sort();
        out.dedup();
        out
    }

    /// Whether the graph knows the selector.
    pub fn contains(&self, entity: &str) -> bool {
        self.nodes.contains_key(entity)
    }

    fn sorted_neighbours(&self, n: NodeIndex) -> Vec<(NodeIndex, &BTreeSet<String>)> {
        let mut v: Vec<(NodeIndex, &BTreeSet<String>)> = self
            .graph
            .edges(n)
            .map(|e| {
                (
                    if e.source() == n {
                        e.target()
                    } else {
                        e.source()
                    },
                    e.weight(),
                )
            })
            .collect();
        v.sort_by(|a, b| self.graph[a.0].cmp(&self.graph[b.0]));
        v
    }

    /// Selectors within `hops` links, nearest first.
    pub fn neighbours(&self, entity: &str, hops: usize) -> Vec<Neighbour> {
        let Some(&start) = self.nodes.get(entity) else {
            return Vec::new();
        };
        let mut seen: HashMap<NodeIndex, usize> = HashMap::from([(start, 0)]);
        let mut out = Vec::new();
        let mut queue = VecDeque::from([start]);
        while let Some(n) = queue.pop_front() {
            let d = seen[&n];
            if d == hops {
                continue;
            }
            for (m, support) in self.sorted_neighbours(n) {
                if let std::collections::hash_map::Entry::Vacant(v) = seen.entry(m) {
                    v.insert(d + 1);
                    out.push(Neighbour {
                        entity: self.graph[m].clone(),
                        hops: d + 1,
                        via_items: support.iter().cloned().collect(),
                    });
                    queue.push_back(m);
                }
            }
        }
        out.sort_by(|a, b| a.hops.cmp(&b.hops).then_with(|| a.entity.cmp(&b.entity)));
        out
    }

    /// A shortest chain of selectors from `a` to `b` (fewest links; among
    /// equals, the first in sorted order), with the items supporting each link.
    pub fn path(&self, a: &str, b: &str) -> Option<Vec<(String, Vec<String>)>> {
        let (&s, &t) = (self.nodes.get(a)?, self.nodes.get(b)?);
        let mut prev: HashMap<NodeIndex, (NodeIndex, Vec<String>)> = HashMap::new();
        let mut queue = VecDeque::from([s]);
        let mut seen = BTreeSet::from([s]);
        while let Some(n) = queue.pop_front() {
            if n == t {
                break;
            }
            for (m, support) in self.sorted_neighbours(n) {
                if seen.insert(m) {
                    prev.insert(m, (n, support.iter().cloned().collect()));
                    queue.push_back(m);
                }
            }
        }
        if s != t && !prev.contains_key(&t) {
            return None;
        }
        let mut nodes = vec![t];
        let mut cur = t;
        while let Some((p, _)) = prev.get(&cur) {
            nodes.push(*p);
            cur = *p;
        }
        nodes.reverse();
        // Each step carries the items that support the link into it.
        let mut out = vec![(self.graph[nodes[0]].clone(), Vec::new())];
        for w in nodes.windows(2) {
            let support = self
                .graph
                .find_edge(w[0], w[1])
                .map(|e| self.graph[e].iter().cloned().collect())
                .unwrap_or_default();
            out.push((self.graph[w[1]].clone(), support));
        }
        Some(out)
    }

    /// Selectors linked directly to both `a` and `b`, with the items
    /// supporting each side: the analyst's "common contacts".
    pub fn common(&self, a: &str, b: &str) -> Vec<Common> {
        let (Some(&s), Some(&t)) = (self.nodes.get(a), self.nodes.get(b)) else {
            return Vec::new();
        };
        let of_b: HashMap<NodeIndex, &BTreeSet<String>> =
            self.sorted_neighbours(t).into_iter().collect();
        self.sorted_neighbours(s)
            .into_iter()
            .filter(|(m, _)| *m != t)
            .filter_map(|(m, via_a)| {
                of_b.get(&m).map(|via_b| Common {
                    entity: self.graph[m].clone(),
                    via_a: via_a.iter().cloned().collect(),
                    via_b: via_b.iter().cloned().collect(),
                })
            })
            .collect()
    }

    /// The most connected selectors: degree, item-weighted degree and, for
    /// graphs up to [`MAX_BETWEENNESS_NODES`] nodes, betweenness (Brandes).
    pub fn centrality(&self, top: usize) -> Vec<Centrality> {
        let between =
            (self.graph.node_count() <= MAX_BETWEENNESS_NODES).then(|| self.betweenness());
        let mut out: Vec<Centrality> = self
            .nodes
            .values()
            .map(|&n| {
                let nb = self.sorted_neighbours(n);
                Centrality {
                    entity: self.graph[n].clone(),
                    degree: nb.len(),
                    weight: nb.iter().map(|(_, s)| s.len()).sum(),
                    betweenness: between.as_ref().map(|b| b[n.index()]),
                }
            })
            .collect();
        out.sort_by(|a, b| {
            b.betweenness
                .unwrap_or(0.0)
                .total_cmp(&a.betweenness.unwrap_or(0.0))
                .then(b.degree.cmp(&a.degree))
                .then(b.weight.cmp(&a.weight))
                .then_with(|| a.entity.cmp(&b.entity))
        });
        out.truncate(top);
        out
    }

    /// Brandes' betweenness on the unweighted graph, each pair counted once.
    fn betweenness(&self) -> Vec<f64> {
        let n = self.graph.node_count();
        let mut cb = vec![0.0f64; n];
        let adj: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                self.graph
                    .neighbors(NodeIndex::new(i))
                    .map(|m| m.index())
                    .collect()
            })
            .collect();
        for s in 0..n {
            let mut stack = Vec::new();
            let mut pred: Vec<Vec<usize>> = vec![Vec::new(); n];
            let mut sigma = vec![0.0f64; n];
            let mut dist = vec![-1i64; n];
            sigma[s] = 1.0;
            dist[s] = 0;
            let mut q = VecDeque::from([s]);
            while let Some(v) = q.pop_front() {
                stack.push(v);
                for &w in &adj[v] {
                    if dist[w] < 0 {
                        dist[w] = dist[v] + 1;
                        q.push_back(w);
                    }
                    if dist[w] == dist[v] + 1 {
                        sigma[w] += sigma[v];
                        pred[w].push(v);
                    }
                }
            }
            let mut delta = vec![0.0f64; n];
            while let Some(w) = stack.pop() {
                for &v in &pred[w] {
                    delta[v] += sigma[v] / sigma[w] * (1.0 + delta[w]);
                }
                if w != s {
                    cb[w] += delta[w];
                }
            }
        }
        cb.iter_mut().for_each(|c| *c /= 2.0);
        cb
    }

    /// Communities by the Louvain method (modularity, weighted by
    /// supporting items), deterministic: nodes are visited in sorted order
    /// and ties go to the lowest community. Largest community first.
    pub fn communities(&self) -> Vec<Vec<String>> {
        let order: Vec<NodeIndex> = self.nodes.values().copied().collect();
        let pos: HashMap<NodeIndex, usize> =
            order.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        // Level-0 graph: adjacency with weights, no self loops yet.
        let mut adj: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); order.len()];
        for e in self.graph.edge_references() {
            let (a, b) = (pos[&e.source()], pos[&e.target()]);
            let w = e.weight().len() as f64;
            *adj[a].entry(b).or_default() += w;
            *adj[b].entry(a).or_default() += w;
        }
        // member[i]: the level-0 nodes inside current super-node i.
        let mut members: Vec<Vec<usize>> = (0..order.len()).map(|i| vec![i]).collect();
        loop {
            let assign = louvain_level(&adj);
            let groups = assign.iter().copied().max().map_or(0, |m| m + 1);
            if groups == adj.len() {
                break;
            }
            let mut next_adj: Vec<BTreeMap<usize, f64>> = vec![BTreeMap::new(); groups];
            let mut next_members: Vec<Vec<usize>> = vec![Vec::new(); groups];
            for (i, nb) in adj.iter().enumerate() {
                next_members[assign[i]].extend(members[i].iter().copied());
                for (&j, &w) in nb {
                    *next_adj[assign[i]].entry(assign[j]).or_default() += w;
                }
            }
            adj = next_adj;
            members = next_members;
        }
        let mut out: Vec<Vec<String>> = members
            .into_iter()
            .filter(|m| !m.is_empty())
            .map(|m| {
                let mut v: Vec<String> = m
                    .into_iter()
                    .map(|i| self.graph[order[i]].clone())
                    .collect();
                v.sort();
                v
            })
            .collect();
        out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        out
    }
}

/// One Louvain level: moves each node to the neighbouring community with
/// the best modularity gain until no move helps; returns dense community
/// numbers in order of first appearance.
fn louvain_level(adj: &[BTreeMap<usize, f64>]) -> Vec<usize> {
    let n = adj.len();
    // Weighted degree, counting a self loop (an aggregated community's
    // internal weight) twice as modularity requires.
    let k: Vec<f64> = adj
        .iter()
        .enumerate()
        .map(|(i, nb)| {
            nb.iter()
                .map(|(&j, &w)| if j == i { 2.0 * w } else { w })
                .sum()
        })
        .collect();
    let m2: f64 = k.iter().sum();
    let mut comm: Vec<usize> = (0..n).collect();
    if m2 == 0.0 {
        return comm;
    }
    let mut tot: Vec<f64> = k.clone();
    for _ in 0..100 {
        let mut moved = false;
        for i in 0..n {
            let own = comm[i];
            tot[own] -= k[i];
            let mut links: BTreeMap<usize, f64> = BTreeMap::new();
            for (&j, &w) in &adj[i] {
                if j != i {
                    *links.entry(comm[j]).or_default() += w;
                }
            }
            let gain = |c: usize, kin: f64| kin - tot[c] * k[i] / m2;
            let mut best = (own, gain(own, links.get(&own).copied().unwrap_or(0.0)));
            for (&c, &kin) in &links {
                let g = gain(c, kin);
                if g > best.1 + 1e-12 || ((g - best.1).abs() <= 1e-12 && c < best.0) {
                    best = (c, g);
                }
            }
            tot[best.0] += k[i];
            if best.0 != own {
                comm[i] = best.0;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    let mut dense: HashMap<usize, usize> = HashMap::new();
    comm.iter()
        .map(|c| {
            let next = dense.len();
            *dense.entry(*c).or_insert(next)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, e: &[&str]) -> ItemLinks {
        ItemLinks {
            id: id.into(),
            entities: e.iter().map(|s| s.to_string()).collect(),
            title: format!("{id}.txt"),
            marking: "OFFICIAL".into(),
            created_ms: id.len() as i64,
            happened_ms: None,
            events: Vec::new(),
            parent: None,
        }
    }

    #[test]
    fn a_derived_item_is_linked_to_its_source() {
        let source = item("mail", &["email:viking@example.org"]);
        let mut part = item("part", &["phone:+33142685300"]);
        let alone = LinkGraph::build(&[source.clone(), part.clone()]);
        assert!(alone.neighbours("email:viking@example.org", 1).is_empty());
        part.parent = Some("mail".into());
        let g = LinkGraph::build(&[source.clone(), part.clone()]);
        let n = g.neighbours("email:viking@example.org", 1);
        assert_eq!(n.len(), 1);
        assert_eq!(n[0].entity, "phone:+33142685300");
        assert_eq!(n[0].via_items, ["part"]);
        // A source the principal cannot see (absent) links nothing.
        let g = LinkGraph::build(&[part]);
        assert!(g.neighbours("phone:+33142685300", 1).is_empty());
    }

    #[test]
    fn finds_neighbours_paths_and_communities() {
        let g = LinkGraph::build(&[
            item("i1", &["a", "b"]),
            item("i2", &["b", "c"]),
            item("i3", &["c", "d"]),
            item("i4", &["x", "y"]),
            item("i5", &["y", "z"]),
            item("i6", &["x", "z"]),
        ]);
        let n: Vec<(String, usize)> = g
            .neighbours("a", 2)
            .into_iter()
            .map(|n| (n.entity, n.hops))
            .collect();
        assert_eq!(n, vec![("b".into(), 1), ("c".into(), 2)]);
        let p = g.path("a", "d").unwrap();
        assert_eq!(
            p.iter().map(|x| x.0.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c", "d"]
        );
        assert_eq!(p[1].1, vec!["i1".to_string()]);
        assert_eq!(p[3].1, vec!["i3".to_string()]);
        assert!(g.path("a", "x").is_none());
        let c = g.communities();
        assert!(
            c.contains(&vec!["x".to_string(), "y".to_string(), "z".to_string()]),
            "{c:?}"
        );
        assert!(
            !c.iter()
                .any(|grp| grp.contains(&"a".to_string()) && grp.contains(&"x".to_string()))
        );
    }

    #[test]
    fn common_contacts_and_centrality() {
        // a - hub - b, a - c - b, hub - d: hub is the bridge.
        let g = LinkGraph::build(&[
            item("i1", &["a", "hub"]),
            item("i2", &["hub", "b"]),
            item("i3", &["a", "c"]),
            item("i4", &["c", "b"]),
            item("i5", &["hub", "d"]),
        ]);
        let c: Vec<String> = g.common("a", "b").into_iter().map(|c| c.entity).collect();
        assert_eq!(c, ["c", "hub"]);
        let top = g.centrality(2);
        assert_eq!(top[0].entity, "hub");
        assert_eq!(top[0].degree, 3);
        // Paths through hub: a-d, b-d, c-d (via a or b: half each -> 1), a-b (half).
        assert_eq!(top[0].betweenness, Some(3.5));
    }

    #[test]
    fn calls_link_their_two_ends_only() {
        let call = |f: &str, t: &str, ms: i64| crate::comms::CommEvent {
            from: f.into(),
            to: t.into(),
            start_ms: ms,
            duration_s: 60,
            place: None,
        };
        let mut cdr = item("cdr", &["p1", "p2", "p3"]);
        cdr.events = vec![call("p1", "p2", 5), call("p2", "p3", 9)];
        let g = LinkGraph::build(&[cdr.clone()]);
        assert!(g.path("p1", "p3").is_some_and(|p| p.len() == 3));
        assert!(g.common("p1", "p3").iter().any(|c| c.entity == "p2"));
        assert_eq!(g.neighbours("p1", 1).len(), 1);
        let t = timeline(&[cdr], &["p2".into(), "p3".into()]);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].time_ms, 9);
    }

    #[test]
    fn timeline_links_chosen_selectors() {
        let items = [
            item("i1", &["a", "b"]),
            item("i2", &["b", "c"]),
            item("i33", &["a", "c"]),
        ];
        let t = timeline(&items, &["a".into(), "c".into()]);
        assert_eq!(t.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(), ["i33"]);
        assert_eq!(timeline(&items, &["b".into()]).len(), 2);
    }
}
