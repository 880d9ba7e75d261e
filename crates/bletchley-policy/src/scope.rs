//! Need-to-know: collections, joint operations, and the set of collections a
//! principal may see at a given moment.

use std::collections::BTreeSet;

use crate::principal::Principal;

/// Dense catalog number of a collection; indexes the visibility bit set.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
pub struct CollectionId(pub u32);

/// A set of items owned by one agency: the unit of discretionary access.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Collection {
    /// Catalog number.
    pub id: CollectionId,
    /// Owning agency.
    pub agency: String,
    /// Name within the agency (written `agency/name`).
    pub name: String,
    /// Bulk data: every read, list or search needs a stated justification.
    pub bulk: bool,
}

/// A collection shared into an operation, with when it was shared and withdrawn.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Share {
    /// The shared collection.
    pub collection: CollectionId,
    /// Unix seconds when shared.
    pub since: i64,
    /// Unix seconds when withdrawn, if it was.
    pub withdrawn: Option<i64>,
}

/// A joint operation across agencies.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Operation {
    /// Unique name.
    pub name: String,
    /// Member agencies.
    pub agencies: BTreeSet<String>,
    /// Named member principals; when non-empty only they are members.
    pub members: BTreeSet<String>,
    /// Unix seconds when it starts.
    pub start: i64,
    /// Unix seconds when it ends, if it does.
    pub end: Option<i64>,
    /// Collections shared into it, current and past.
    pub shares: Vec<Share>,
}

impl Operation {
    /// Whether the operation runs at `now`.
    pub fn active(&self, now: i64) -> bool {
        self.start <= now && self.end.is_none_or(|e| now <= e)
    }

    /// Whether `p` is a member.
    pub fn is_member(&self, p: &Principal) -> bool {
        if self.members.is_empty() {
            self.agencies.contains(&p.agency)
        } else {
            self.members.contains(&p.name) && self.agencies.contains(&p.agency)
        }
    }

    /// Collections shared into the operation and not withdrawn at `now`.
    pub fn shared_at(&self, now: i64) -> impl Iterator<Item = CollectionId> + '_ {
        self.shares
            .iter()
            .filter(move |s| s.since <= now && s.withdrawn.is_none_or(|w| now < w))
            .map(|s| s.collection)
    }
}

/// The collections a principal may see at one moment, as a bit set over
/// collection numbers. Computed once per request; each item check is one bit
/// test.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Visibility {
    bits: Vec<u64>,
}

impl Visibility {
    /// Computes need-to-know: the principal's own agency's collections, plus
    /// collections of member agencies shared into operations it is a member
    /// of, while those operations run.
    pub fn compute(
        p: &Principal,
        collections: &[Collection],
        operations: &[Operation],
        now: i64,
    ) -> Visibility {
        let mut v = Visibility::default();
        if p.standing.inactive_at(now).is_some() {
            // A disabled or suspended principal sees nothing, whatever else it holds.
            return v;
        }
        if !p.roles.iter().any(|r| r.reads_items()) {
            // Auditors and overseers see the trail, never the items.
            return v;
        }
        for c in collections {
            if c.agency == p.agency {
                v.insert(c.id);
            }
        }
        for op in operations {
            if !op.active(now) || !op.is_member(p) {
                continue;
            }
            for id in op.shared_at(now) {
                // A share only counts if the owning agency is itself a member.
                if collections
                    .iter()
                    .any(|c| c.id == id && op.agencies.contains(&c.agency))
                {
                    v.insert(id);
                }
            }
        }
        v
    }

    /// Exactly these collections: what a site is assigned, which is not
    /// derived from any principal's agency or operations.
    pub fn of(ids: impl IntoIterator<Item = CollectionId>) -> Visibility {
        let mut v = Visibility::default();
        for id in ids {
            v.insert(id);
        }
        v
    }

    fn insert(&mut self, id: CollectionId) {
        let i = (id.0 / 64) as usize;
        if self.bits.len() <= i {
            self.bits.resize(i + 1, 0);
        }
        self.bits[i] |= 1u64 << (id.0 % 64);
    }

    /// Whether the collection is visible.
    #[inline]
    pub fn contains(&self, id: CollectionId) -> bool {
        self.bits
            .get((id.0 / 64) as usize)
            .is_some_and(|w| w & (1u64 << (id.0 % 64)) != 0)
    }

    /// The visible collection numbers, ascending.
    pub fn iter(&self) -> impl Iterator<Item = CollectionId> + '_ {
        self.bits.iter().enumerate().flat_map(|(i, w)| {
            (0..64u32)
                .filter(move |b| w & (1u64 << b) != 0)
                .map(move |b| CollectionId(i as u32 * 64 + b))
        })
    }
}
