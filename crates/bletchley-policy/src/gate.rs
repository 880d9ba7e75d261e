//! The one gate (rule 1): marking satisfied AND need-to-know.
//!
//! Every path that returns anything derived from an item asks
//! [`Gate::check`]. It returns an [`Access`] that only this module can build: bound to one
//! item, neither copied nor cloned, and consumed by the one storage function that opens
//! content. The system's own readers (the indexer, replication) hold a [`SystemGate`] named
//! after their purpose instead. Readers of derived stores (the search index, the link graph)
//! take an [`Admitted`], the collections the gate let through, never a list of the caller's
//! choosing.

use std::collections::BTreeMap;
use std::fmt;

use crate::marking::{Classification, Marking};
use crate::nation::Nation;
use crate::principal::Principal;
use crate::scope::{Collection, CollectionId, Visibility};

/// Proof that the gate allowed one read of one item. Only [`Gate::check`] and
/// [`SystemGate::allow`] make one; it is not `Clone`, so one decision opens one item once.
///
/// Outside this module none can be built:
///
/// ```compile_fail
/// let forged = bletchley_policy::Access {
///     item: "any".to_owned(),
///     purpose: bletchley_policy::Purpose::System("index"),
/// };
/// ```
///
/// nor copied to open a second item:
///
/// ```compile_fail
/// fn twice(a: bletchley_policy::Access) -> (bletchley_policy::Access, bletchley_policy::Access) {
///     (a.clone(), a)
/// }
/// ```
#[derive(Debug)]
pub struct Access {
    item: String,
    purpose: Purpose,
}

impl Access {
    /// The item it allows.
    pub fn item(&self) -> &str {
        &self.item
    }

    /// On whose behalf.
    pub fn purpose(&self) -> &Purpose {
        &self.purpose
    }
}

/// On whose behalf an item is opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// A principal (or a site, through its gate) read it.
    Principal(String),
    /// The system itself, for the named purpose (`index`, `replication`).
    System(&'static str),
}

/// The gate of the system's own readers: the indexer (which applies the principal's gate
/// inside every query) and replication (which has its site's gate checked first). Whoever
/// makes one records, in the audit log, which items it opened and why.
#[derive(Debug)]
pub struct SystemGate {
    purpose: &'static str,
}

impl SystemGate {
    /// A system gate for `purpose`.
    pub fn new(purpose: &'static str) -> SystemGate {
        SystemGate { purpose }
    }

    /// Access to `item` for this purpose.
    pub fn allow(&self, item: &str) -> Access {
        Access {
            item: item.to_owned(),
            purpose: Purpose::System(self.purpose),
        }
    }
}

/// The collections a principal may read now, as their gate admitted them: bulk collections
/// only with a justification. What the search index and the link graph take, so that no caller
/// can widen what they search.
#[derive(Clone, Debug)]
pub struct Admitted {
    gate: Gate,
    ids: Vec<CollectionId>,
    names: BTreeMap<String, CollectionId>,
    skipped_bulk: Vec<String>,
}

impl Admitted {
    /// The gate that admitted them (for the marking checks inside a search).
    pub fn gate(&self) -> &Gate {
        &self.gate
    }

    /// The collections' numbers.
    pub fn ids(&self) -> &[CollectionId] {
        &self.ids
    }

    /// `agency/name` to number, for `collection:` filters.
    pub fn names(&self) -> &BTreeMap<String, CollectionId> {
        &self.names
    }

    /// Bulk collections left out for want of a justification.
    pub fn skipped_bulk(&self) -> &[String] {
        &self.skipped_bulk
    }
}

/// Why the gate said no. Recorded in the audit log; never shown to the
/// principal, who only ever reads "not found or not permitted".
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Denial {
    /// Clearance below the classification.
    Clearance {
        /// The item's classification.
        required: Classification,
        /// The principal's clearance.
        held: Classification,
    },
    /// A codeword the principal is not indoctrinated into.
    Compartment(String),
    /// The principal's nationality is not in the releasability.
    Releasability(Nation),
    /// Neither the owning agency nor a running operation shares the collection.
    NeedToKnow,
    /// A bulk collection was touched without a stated justification.
    JustificationRequired,
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denial::Clearance { required, held } => write!(f, "clearance {held} below {required}"),
            Denial::Compartment(c) => write!(f, "not indoctrinated into {c}"),
            Denial::Releasability(n) => write!(f, "nationality {n} not in releasability"),
            Denial::NeedToKnow => f.write_str("no need-to-know for the collection"),
            Denial::JustificationRequired => {
                f.write_str("bulk collection requires a justification")
            }
        }
    }
}

/// The gate for one principal at one moment.
#[derive(Clone, Debug)]
pub struct Gate {
    principal: Principal,
    visibility: Visibility,
    home: Nation,
}

impl Gate {
    /// A gate for `principal`, with its need-to-know already computed.
    pub fn new(principal: Principal, visibility: Visibility, home: Nation) -> Gate {
        Gate {
            principal,
            visibility,
            home,
        }
    }

    /// Who is asking.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// The collections the principal may see.
    pub fn visibility(&self) -> &Visibility {
        &self.visibility
    }

    /// Whether the marking alone is satisfied (clearance, every codeword,
    /// nationality). Also used to stop a principal writing an item it could
    /// not itself read.
    #[inline]
    pub fn check_marking(&self, m: &Marking) -> Result<(), Denial> {
        let p = &self.principal;
        if p.clearance < m.classification() {
            return Err(Denial::Clearance {
                required: m.classification(),
                held: p.clearance,
            });
        }
        for c in m.compartments() {
            if !p.compartments.contains(c) {
                return Err(Denial::Compartment(c.to_owned()));
            }
        }
        if !m.releasable(p.nationality, self.home) {
            return Err(Denial::Releasability(p.nationality));
        }
        Ok(())
    }

    /// The decision: marking satisfied AND need-to-know.
    #[inline]
    pub fn decide(&self, m: &Marking, collection: CollectionId) -> Result<(), Denial> {
        if !self.visibility.contains(collection) {
            return Err(Denial::NeedToKnow);
        }
        self.check_marking(m)
    }

    /// The decision for one item, and the access that opens it when allowed.
    #[inline]
    pub fn check(
        &self,
        item: &str,
        m: &Marking,
        collection: CollectionId,
    ) -> Result<Access, Denial> {
        self.decide(m, collection)?;
        Ok(Access {
            item: item.to_owned(),
            purpose: Purpose::Principal(self.principal.name.clone()),
        })
    }

    /// Of the platform's `collections`, those this gate lets its principal read now; bulk ones
    /// only with a non-blank justification (the rest are named as skipped).
    pub fn admit(
        &self,
        collections: impl IntoIterator<Item = Collection>,
        justification: Option<&str>,
    ) -> Admitted {
        let justified = justification.is_some_and(|j| !j.trim().is_empty());
        let mut out = Admitted {
            gate: self.clone(),
            ids: Vec::new(),
            names: BTreeMap::new(),
            skipped_bulk: Vec::new(),
        };
        for c in collections {
            if !self.visibility.contains(c.id) {
                continue;
            }
            let name = format!("{}/{}", c.agency, c.name);
            if c.bulk && !justified {
                out.skipped_bulk.push(name);
                continue;
            }
            if !out.ids.contains(&c.id) {
                out.ids.push(c.id);
            }
            out.names.insert(name, c.id);
        }
        out
    }

    /// Bulk collections need a non-blank justification for every touch.
    pub fn check_justification(
        &self,
        c: &Collection,
        justification: Option<&str>,
    ) -> Result<(), Denial> {
        if c.bulk && justification.is_none_or(|j| j.trim().is_empty()) {
            return Err(Denial::JustificationRequired);
        }
        Ok(())
    }
}
