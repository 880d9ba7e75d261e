//! Principals: who is asking, with what clearance, codewords and nationality.

use std::collections::BTreeSet;
use std::fmt;

use crate::marking::Classification;
use crate::nation::Nation;

/// What a principal may do beyond reading what the gate allows.
#[derive(
    Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, searches and ingests into its agency's collections.
    Analyst,
    /// Administers its agency: shreds items, manages collections.
    Admin,
    /// Reviews its own agency's audit trail; reads no items.
    Auditor,
    /// A field officer: ingests collected material.
    Field,
    /// Oversees the whole platform: reviews every agency's audit trail;
    /// reads no items.
    Overseer,
    /// Responds to intrusions: works cases and approves the playbook steps another started
    /// (the second person of a response's two-person rule). Reads and stores like an analyst.
    Responder,
    /// Holds originator authority for its agency's items: approves a downgrade or a widened
    /// releasability another principal asked for (the second person of re-marking's
    /// two-person rule). Reads like an analyst.
    Originator,
}

impl Role {
    /// Whether the role reads items: an auditor or overseer alone reviews
    /// the trail of who read what, and reads nothing of it.
    pub fn reads_items(self) -> bool {
        matches!(
            self,
            Role::Analyst | Role::Admin | Role::Field | Role::Responder | Role::Originator
        )
    }

    /// Parses a role name as written on the command line.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "analyst" => Some(Role::Analyst),
            "admin" => Some(Role::Admin),
            "auditor" => Some(Role::Auditor),
            "field" => Some(Role::Field),
            "overseer" => Some(Role::Overseer),
            "responder" => Some(Role::Responder),
            "originator" => Some(Role::Originator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Analyst => "analyst",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::Field => "field",
            Role::Overseer => "overseer",
            Role::Responder => "responder",
            Role::Originator => "originator",
        })
    }
}

/// A person or service account of one agency.
#[derive(Clone, PartialEq, Eq, Debug, serde::Serialize, serde::Deserialize)]
pub struct Principal {
    /// Unique login name.
    pub name: String,
    /// The agency it belongs to.
    pub agency: String,
    /// Highest classification it may read.
    pub clearance: Classification,
    /// Codewords it is indoctrinated into.
    pub compartments: BTreeSet<String>,
    /// Its nationality, checked against releasability.
    pub nationality: Nation,
    /// What it may do.
    pub roles: BTreeSet<Role>,
    /// Whether it may act at all now: an inactive principal sees nothing and does nothing.
    #[serde(default)]
    pub standing: Standing,
    /// When an admin last confirmed its access in a periodic review (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_s: Option<i64>,
}

/// Whether a principal may act: its account's state, set by the operator or an
/// agency admin, checked by every gate at the time of the request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Standing {
    /// May act.
    #[default]
    Active,
    /// Stopped until enabled again (left the service, compromised account).
    Disabled {
        /// Since when (Unix seconds).
        since_s: i64,
    },
    /// Stopped until a time, then active again by itself (leave, investigation).
    Suspended {
        /// Until when (Unix seconds).
        until_s: i64,
    },
}

impl Standing {
    /// Why the principal may not act at `now` (Unix seconds), or `None` when it may.
    pub fn inactive_at(&self, now: i64) -> Option<String> {
        match *self {
            Standing::Active => None,
            Standing::Disabled { .. } => Some("disabled".into()),
            Standing::Suspended { until_s } if now < until_s => {
                Some(format!("suspended until Unix time {until_s}"))
            }
            Standing::Suspended { .. } => None,
        }
    }
}

impl Principal {
    /// Whether the principal holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the principal may store items (ingest, upload): an analyst, field officer or
    /// admin; an auditor or overseer alone stores nothing.
    pub fn may_ingest(&self) -> bool {
        [Role::Analyst, Role::Field, Role::Admin, Role::Responder]
            .iter()
            .any(|r| self.has_role(*r))
    }

    /// Whether the principal may crypto-shred an item its `owner` agency holds: an admin of
    /// that agency (after the gate let them read it).
    pub fn may_shred(&self, owner: &str) -> bool {
        self.has_role(Role::Admin) && self.agency == owner
    }

    /// Whether the principal may release the mass-destruction brake that stopped `stopped`:
    /// a second admin of the same agency, never the one it stopped.
    pub fn may_release_brake(&self, stopped: &Principal) -> bool {
        self.has_role(Role::Admin) && self.agency == stopped.agency && self.name != stopped.name
    }

    /// Whether the principal may approve a response step that `started` began: a responder
    /// of the same agency, never the one who started it (two persons, one agency).
    pub fn may_approve_response(&self, started: &Principal) -> bool {
        self.has_role(Role::Responder) && self.agency == started.agency && self.name != started.name
    }

    /// Whether the principal may disable, suspend or enable `other`: an admin of the same
    /// agency, never itself (an admin cannot lock itself out, nor let itself back in).
    pub fn may_manage(&self, other: &Principal) -> bool {
        self.has_role(Role::Admin) && self.agency == other.agency && self.name != other.name
    }

    /// Whether the principal may confirm `other`'s access in a periodic review: an admin of
    /// the same agency, never for itself.
    pub fn may_confirm_review(&self, other: &Principal) -> bool {
        self.has_role(Role::Admin) && self.agency == other.agency && self.name != other.name
    }

    /// Whose entries of the audit trail the principal may review: an overseer all, an
    /// auditor those of their own agency's principals, anyone else none.
    pub fn audit_reach(&self) -> AuditReach {
        if self.has_role(Role::Overseer) {
            AuditReach::Everyone
        } else if self.has_role(Role::Auditor) {
            AuditReach::Agency(self.agency.clone())
        } else {
            AuditReach::Nobody
        }
    }
}

/// How far a principal's review of the audit trail reaches.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuditReach {
    /// Every entry (a platform overseer).
    Everyone,
    /// Entries of this agency's principals (an agency's auditor).
    Agency(String),
    /// None.
    Nobody,
}
