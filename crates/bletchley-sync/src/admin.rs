//! What an agency admin sees of the field sites: those that its agency's collections or its
//! operations are assigned to, how far each has acknowledged, and what of the agency's own
//! items is held back from it and why. Read-only: assigning and revoking stay with the
//! operator who holds the data directory.

use serde::Serialize;

use bletchley_audit::Outcome;
use bletchley_store::platform::HeldBack;
use bletchley_store::{Actor, Platform};

use crate::error::{Error, Result};
use crate::site::{self, peer, peer_names};

/// One site, as an agency admin sees it.
#[derive(Clone, Debug, Serialize)]
pub struct AgencySite {
    /// Its name.
    pub name: String,
    /// `hub` or `field`.
    pub role: String,
    /// Where it is (residency is decided against this).
    pub jurisdiction: String,
    /// The highest marking it may hold.
    pub ceiling: String,
    /// Its staff's nationalities.
    pub nationalities: Vec<String>,
    /// The agency's collections assigned to it.
    pub collections: Vec<String>,
    /// The operations of the agency assigned to it.
    pub operations: Vec<String>,
    /// `awaiting first contact`, `confirmed` or `void`.
    pub enrolment: String,
    /// Refused on every path.
    pub revoked: bool,
    /// Operations logged for it so far (the log grows as bundles or syncs are made).
    pub logged: u64,
    /// Of those, how many it has acknowledged.
    pub acknowledged: u64,
    /// Items of the agency's assigned collections not sent to it, and why.
    pub held_back: HeldBack,
}

/// The sites `admin`'s agency has work at; `None` when this node is not a replication site.
/// Admins only; audited as `admin.sites`.
pub fn agency_sites(p: &mut Platform, admin: &str) -> Result<Option<Vec<AgencySite>>> {
    let me = p.acting_admin(admin, "admin.sites", &[], "see the field sites")?;
    let agency = me.agency;
    let mine = format!("{agency}/");
    if let Err(Error::NotASite) = site::this(p) {
        p.record(
            Actor::Principal(admin.to_owned()),
            "admin.sites",
            Vec::new(),
            None,
            Outcome::Allowed,
            Some("not a replication site".into()),
        )?;
        return Ok(None);
    }
    let operations: Vec<String> = p
        .operations()?
        .into_iter()
        .filter(|o| o.agencies.contains(&agency))
        .map(|o| o.name)
        .collect();
    let mut out = Vec::new();
    for name in peer_names(p)? {
        let rec = peer(p, &name)?;
        let collections: Vec<String> = rec
            .collections
            .iter()
            .filter(|c| c.starts_with(&mine))
            .cloned()
            .collect();
        let ops: Vec<String> = rec
            .operations
            .iter()
            .filter(|o| operations.contains(o))
            .cloned()
            .collect();
        if collections.is_empty() && ops.is_empty() {
            continue;
        }
        let mut scope = site::scope(&rec)?;
        scope.collections = collections.clone();
        scope.operations.clear();
        let held_back = p.site_held_back(&scope)?;
        out.push(AgencySite {
            role: format!("{:?}", rec.identity.role).to_lowercase(),
            jurisdiction: rec.identity.jurisdiction.clone(),
            ceiling: rec.identity.ceiling.clone(),
            nationalities: rec.identity.nationalities.clone(),
            enrolment: site::enrolment_state(&rec).into(),
            revoked: rec.revoked,
            logged: rec.out.last_seq,
            acknowledged: rec.out.acked_seq,
            collections,
            operations: ops,
            held_back,
            name,
        });
    }
    p.record(
        Actor::Principal(admin.to_owned()),
        "admin.sites",
        out.iter().map(|s| s.name.clone()).collect(),
        None,
        Outcome::Allowed,
        None,
    )?;
    Ok(Some(out))
}
