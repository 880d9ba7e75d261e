//! How this node stands, for operators and monitoring (`bletchley status`, the server's
//! `/api/health` and `/metrics`): whether the catalog answers, whether each object-store
//! location answers, how long the audit log is, how many items it holds and its jobs by
//! state. Counts and reachability only, never item content or names.

use super::*;

use std::time::{Duration, Instant};

use bletchley_policy::Role;

/// How long a location has to answer a probe.
const PROBE_LIMIT: Duration = Duration::from_secs(3);

/// The answer to one probe.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Probe {
    /// It answered.
    pub ok: bool,
    /// Why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, milliseconds.
    pub ms: f64,
}

impl Probe {
    fn timed(f: impl FnOnce() -> std::result::Result<(), String>) -> Probe {
        let t = Instant::now();
        let r = f();
        Probe {
            ok: r.is_ok(),
            error: r.err(),
            ms: t.elapsed().as_secs_f64() * 1e3,
        }
    }
}

/// One object-store location.
#[derive(Clone, Debug, serde::Serialize)]
pub struct LocationHealth {
    /// Its name.
    pub name: String,
    /// Retired: no new writes, still read.
    pub retired: bool,
    /// Whether it answered.
    pub probe: Probe,
}

/// This node at a glance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NodeHealth {
    /// The catalog answered a query.
    pub catalog: Probe,
    /// Each location, retired ones included (they still serve reads).
    pub locations: Vec<LocationHealth>,
    /// Entries in the audit log.
    pub audit_entries: u64,
    /// Items held (derived items included).
    pub items: u64,
    /// Jobs by state (`queued`, `running`, `done`, `failed`, …).
    pub jobs: BTreeMap<String, usize>,
}

impl NodeHealth {
    /// Whether everything answered.
    pub fn ok(&self) -> bool {
        self.catalog.ok && self.locations.iter().all(|l| l.probe.ok)
    }
}

impl Platform {
    /// How this node stands (the operator, or a principal with the `admin` or `overseer`
    /// role: counts and reachability of the whole platform are an operator's business, not
    /// an analyst's). A refusal is audited; an allowed look is not (a monitoring system asks
    /// every few seconds, and it reads no intelligence).
    pub fn node_health(&mut self, principal: Option<&str>) -> Result<NodeHealth> {
        if let Some(name) = principal {
            let actor = Actor::Principal(name.to_owned());
            match self.acting(name) {
                Ok(p) if p.has_role(Role::Admin) || p.has_role(Role::Overseer) => {}
                Ok(_) => {
                    let e = Error::RoleRequired {
                        principal: name.into(),
                        role: "admin or overseer",
                        act: "see how the node stands",
                    };
                    return Err(self.refuse(&actor, "node.health", vec![], None, e));
                }
                Err(e) => return Err(self.refuse(&actor, "node.health", vec![], None, e)),
            }
        }
        let mut items = 0u64;
        let catalog = Probe::timed(|| match self.catalog.item_count() {
            Ok(n) => {
                items = n;
                Ok(())
            }
            Err(e) => Err(e.to_string()),
        });
        let mut locations = Vec::new();
        for l in self.locations().unwrap_or_default() {
            let probe = Probe::timed(|| {
                l.open()
                    .map_err(|e| e.to_string())
                    .and_then(|o| o.probe(&self.rt, PROBE_LIMIT))
            });
            locations.push(LocationHealth {
                name: l.name.clone(),
                retired: l.retired,
                probe,
            });
        }
        let mut jobs = BTreeMap::new();
        for j in self.jobs().unwrap_or_default() {
            *jobs.entry(j.state.as_str().to_owned()).or_default() += 1;
        }
        Ok(NodeHealth {
            catalog,
            locations,
            audit_entries: self.audit.len(),
            items,
            jobs,
        })
    }
}
