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
}

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
}

/// The items that mention the chosen selectors, oldest first: with one
/// selector, every item mentioning it; with several, the items linking at
/// least two of them.
pub fn timeline(items: &[ItemLinks], chosen: &[String]) -> Vec<Event> {
    let need = if chosen.len() > 1 { 2 } else { 1 };
    let mut out: Vec<Event> = items
        .iter()
        .filter_map(|it| {
            let hit: Vec<String> = chosen
                .iter()
                .filter(|c| it.entities.contains(c))
                .cloned()
                .collect();
            (hit.len() >= need).then(|| Event {
                id: it.id.clone(),
                time_ms: it.created_ms,
                title: it.title.clone(),
                marking: it.marking.clone(),
                entities: hit,
            })
        })
        .collect();
    out.sort_by(|a, b| a.time_ms.cmp(&b.time_ms).then_with(|| a.id.cmp(&b.id)));
    out
}

/// Selectors as nodes; an edge joins two selectors mentioned in the same
/// item, labelled with the items that support it.
pub struct LinkGraph {
    graph: UnGraph<String, BTreeSet<String>>,
    nodes: BTreeMap<String, NodeIndex>,
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

impl LinkGraph {
    /// Builds the graph from visible items. Deterministic: nodes and edges are
    /// added in sorted order.
    pub fn build(items: &[ItemLinks]) -> LinkGraph {
        let mut g = LinkGraph {
            graph: UnGraph::default(),
            nodes: BTreeMap::new(),
        };
        let all: BTreeSet<&String> = items.iter().flat_map(|i| i.entities.iter()).collect();
        for e in all {
            let n = g.graph.add_node(e.clone());
            g.nodes.insert(e.clone(), n);
        }
        let mut edges: BTreeMap<(NodeIndex, NodeIndex), BTreeSet<String>> = BTreeMap::new();
        for it in items {
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
        for ((a, b), support) in edges {
            g.graph.add_edge(a, b, support);
        }
        g
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

    /// Communities by deterministic label propagation: each selector takes
    /// the label most common among its neighbours (weighted by supporting
    /// items; ties to the smallest label) until nothing changes.
    pub fn communities(&self) -> Vec<Vec<String>> {
        let mut label: BTreeMap<NodeIndex, String> = self
            .nodes
            .values()
            .map(|n| (*n, self.graph[*n].clone()))
            .collect();
        let order: Vec<NodeIndex> = self.nodes.values().copied().collect();
        for _ in 0..100 {
            let mut changed = false;
            for &n in &order {
                let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
                for (m, support) in self.sorted_neighbours(n) {
                    *votes.entry(&label[&m]).or_default() += support.len();
                }
                let Some(best) = votes
                    .iter()
                    .max_by(|a, b| a.1.cmp(b.1).then_with(|| b.0.cmp(a.0)))
                    .map(|(l, _)| (*l).clone())
                else {
                    continue;
                };
                if best != label[&n] && votes.get(&best) > votes.get(&label[&n]) {
                    label.insert(n, best);
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (n, l) in label {
            groups.entry(l).or_default().push(self.graph[n].clone());
        }
        let mut out: Vec<Vec<String>> = groups
            .into_values()
            .map(|mut v| {
                v.sort();
                v
            })
            .collect();
        out.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        out
    }
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
        }
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
