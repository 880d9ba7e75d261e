//! The one gate (rule 1): marking satisfied AND need-to-know.
//!
//! Every path that returns anything derived from an item asks
//! [`Gate::check`]. It returns an [`Access`] proof that only this module can
//! build, and storage functions that hand out item data demand one.

use std::fmt;

use crate::marking::{Classification, Marking};
use crate::nation::Nation;
use crate::principal::Principal;
use crate::scope::{Collection, CollectionId, Visibility};

/// Proof that the gate allowed an access. Zero-sized; only [`Gate`] makes one.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    _private: (),
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
    pub fn check(&self, m: &Marking, collection: CollectionId) -> Result<Access, Denial> {
        if !self.visibility.contains(collection) {
            return Err(Denial::NeedToKnow);
        }
        self.check_marking(m)?;
        Ok(Access { _private: () })
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
