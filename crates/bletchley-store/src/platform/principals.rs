//! Principals and the gate each one reads through.

use super::*;
use bletchley_policy::{Classification, Role, Standing};

use crate::catalog::SealedRow;

/// What `update_principal` changes; `None` keeps the current value.
#[derive(Clone, Debug, Default)]
pub struct PrincipalChange {
    /// A new clearance.
    pub clearance: Option<Classification>,
    /// The codewords it holds from now on (all of them).
    pub compartments: Option<BTreeSet<String>>,
    /// Its roles from now on (all of them).
    pub roles: Option<BTreeSet<Role>>,
    /// The agency it moves to.
    pub agency: Option<String>,
}

/// The guarded `meta` key of the changes of standing field sites are told of.
const STANDING_TOLD: &str = "principal.standing-told";

/// A change of a principal's standing, numbered, as field sites are told of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StandingTold {
    /// Its number: 1, 2, …
    pub n: u64,
    /// The principal.
    pub name: String,
    /// Its agency.
    pub agency: String,
    /// The new standing.
    pub standing: Standing,
    /// What it holds at the hub now (absent in changes logged before this was told).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<AccessTold>,
}

/// What the hub says of one of its principals with every change of it or of its standing:
/// its clearance, the codewords and roles the change took away, its agency. A field site takes
/// it only as far as it narrows what its principal of the same name and agency holds there:
/// the hub takes access away everywhere; granting at a field site (a role, a codeword, or
/// access again to one the hub cut off) is that site's own act.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccessTold {
    /// Its clearance at the hub.
    pub clearance: Classification,
    /// Codewords the change took away.
    pub compartments_removed: BTreeSet<String>,
    /// Roles the change took away.
    pub roles_removed: BTreeSet<Role>,
    /// Its agency (another than `StandingTold::agency` when it moved).
    pub agency: String,
}

impl AccessTold {
    /// `now` as the hub holds it, after `before` (a change of standing takes nothing away).
    fn of(before: &Principal, now: &Principal) -> AccessTold {
        AccessTold {
            clearance: now.clearance,
            compartments_removed: before
                .compartments
                .difference(&now.compartments)
                .cloned()
                .collect(),
            roles_removed: before.roles.difference(&now.roles).copied().collect(),
            agency: now.agency.clone(),
        }
    }
}

impl Platform {
    /// Adds a principal.
    pub fn add_principal(&mut self, p: &Principal) -> Result<()> {
        valid_name("principal", &p.name, 64, b"-_.")?;
        if SYSTEM_ACTORS.contains(&p.name.to_ascii_lowercase().as_str()) {
            return Err(Error::Invalid(format!(
                "principal name {:?} is reserved: the audit log names the platform's own actors so",
                p.name
            )));
        }
        let agency_id = self.agency_id(&p.agency)?;
        let tag = self.tag("principal", &p.name);
        if self
            .catalog
            .find_sealed(SealedTable::Principals, &tag)?
            .is_some()
        {
            return Err(Error::Exists {
                kind: "principal",
                name: p.name.clone(),
            });
        }
        self.insert_row(SealedTable::Principals, &tag, Some(agency_id), p)?;
        self.record(
            Actor::Operator,
            "principal.add",
            vec![p.name.clone()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Looks a principal up.
    pub fn principal(&self, name: &str) -> Result<Principal> {
        Ok(self.principal_row(name)?.1)
    }

    /// `principal`, acting, if it is an admin (of its own agency); else refused and audited as
    /// `action` on `targets`, saying it would `act`. Public so that the crates above (the
    /// replication crate's admin view of sites) refuse the way this crate does.
    pub fn acting_admin(
        &mut self,
        principal: &str,
        action: &str,
        targets: &[String],
        act: &'static str,
    ) -> Result<Principal> {
        let actor = Actor::Principal(principal.to_owned());
        match self.acting(principal) {
            Ok(p) if p.has_role(Role::Admin) => Ok(p),
            Ok(_) => {
                let e = Error::RoleRequired {
                    principal: principal.into(),
                    role: "admin",
                    act,
                };
                Err(self.refuse(&actor, action, targets.to_vec(), None, e))
            }
            Err(e) => Err(self.refuse(&actor, action, targets.to_vec(), None, e)),
        }
    }

    /// A principal's sealed row (to write back) and its record, or `Unknown`.
    pub(super) fn principal_row(&self, name: &str) -> Result<(SealedRow, Principal)> {
        self.find_principal_row(name)?
            .ok_or_else(|| Error::Unknown {
                kind: "principal",
                name: name.into(),
            })
    }

    /// [`Self::principal_row`], `None` when there is no such principal.
    pub(super) fn find_principal_row(&self, name: &str) -> Result<Option<(SealedRow, Principal)>> {
        let tag = self.tag("principal", name);
        let Some(row) = self.catalog.find_sealed(SealedTable::Principals, &tag)? else {
            return Ok(None);
        };
        // The record is bound to the tag of `name` and to its agency's row
        // (`row_aad`); the agencies' names are guarded with the catalog.
        let p: Principal = self.open_row(SealedTable::Principals, &row)?;
        Ok(Some((row, p)))
    }

    /// A principal who acts now: refused when disabled or suspended.
    pub fn acting(&self, name: &str) -> Result<Principal> {
        let p = self.principal(name)?;
        let now = now_ms() / 1000;
        let why = match p.standing.inactive_at(now) {
            Some(why) => Some(why),
            None => self.review_lapse(&p, now)?,
        };
        if let Some(why) = why {
            return Err(Error::Inactive {
                principal: p.name,
                why,
            });
        }
        Ok(p)
    }

    /// Every principal, by name.
    pub fn principals(&self) -> Result<Vec<Principal>> {
        let mut out: Vec<Principal> = self
            .catalog
            .all_sealed(SealedTable::Principals)?
            .iter()
            .map(|row| self.open_row(SealedTable::Principals, row))
            .collect::<Result<_>>()?;
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The principals of `admin`'s own agency, for its admin page; audited. Only an
    /// admin may list them.
    pub fn agency_principals(&mut self, admin: &str) -> Result<Vec<Principal>> {
        let actor = Actor::Principal(admin.to_owned());
        let me = self.acting_admin(admin, "principal.list", &[], "list its agency's principals")?;
        let out: Vec<Principal> = self
            .principals()?
            .into_iter()
            .filter(|p| p.agency == me.agency)
            .collect();
        self.record(
            actor,
            "principal.list",
            vec![me.agency.clone()],
            None,
            Outcome::Allowed,
            Some(format!("{} principals", out.len())),
        )?;
        Ok(out)
    }

    /// Changes a principal's standing (disable, enable, suspend), at once for every
    /// gate: by the operator (`by` = `None`) or by an admin of its agency who is not
    /// itself. Disabling also revokes its API tokens and client certificates, which
    /// stay revoked when it is enabled again. Audited with `reason`.
    pub fn set_standing(
        &mut self,
        by: Option<&str>,
        name: &str,
        standing: Standing,
        reason: &str,
    ) -> Result<()> {
        let actor = by.map_or(Actor::Operator, |b| Actor::Principal(b.to_owned()));
        let act = match standing {
            Standing::Active => "principal.enable",
            Standing::Disabled { .. } => "principal.disable",
            Standing::Suspended { .. } => "principal.suspend",
        };
        if let Some(b) = by {
            let target = self.principal(name);
            let allowed = match (self.acting(b), &target) {
                (Ok(admin), Ok(t)) => admin.may_manage(t),
                (Err(e), _) => return Err(self.refuse(&actor, act, vec![name.into()], None, e)),
                (_, Err(_)) => false,
            };
            if !allowed {
                // Whether a principal of another agency exists is not for this admin to learn.
                let e = Error::RoleRequired {
                    principal: b.into(),
                    role: "admin",
                    act: "change the standing of another principal of its own agency",
                };
                return Err(self.refuse(&actor, act, vec![name.into()], None, e));
            }
        }
        let (row, p) = self.principal_row(name)?;
        let action = match standing {
            Standing::Active => "principal.enable",
            Standing::Disabled { .. } => "principal.disable",
            Standing::Suspended { until_s } => {
                if until_s <= now_ms() / 1000 {
                    return Err(Error::Invalid(
                        "a suspension must end in the future; nothing changed".into(),
                    ));
                }
                "principal.suspend"
            }
        };
        if reason.trim().is_empty() && !matches!(standing, Standing::Active) {
            return Err(Error::Invalid(
                "say why (--reason): it is kept in the audit log; nothing changed".into(),
            ));
        }
        let agency = p.agency.clone();
        let access = AccessTold::of(&p, &p);
        self.put_standing(actor, action, &row, p, standing, reason)?;
        // Field sites are told at their next contact (a principal of the same name and
        // agency there takes the same standing, within what it holds here).
        self.tell_sites(name, agency, standing, Some(access))
    }

    /// Numbers a change of a principal and keeps it for the field sites' next contact.
    fn tell_sites(
        &mut self,
        name: &str,
        agency: String,
        standing: Standing,
        access: Option<AccessTold>,
    ) -> Result<()> {
        let mut told: Vec<StandingTold> = self.standing_changes()?;
        told.push(StandingTold {
            n: told.last().map_or(1, |t| t.n + 1),
            name: name.to_owned(),
            agency,
            standing,
            access,
        });
        let json = serde_json::to_string(&told).map_err(|e| Error::Layout(e.to_string()))?;
        self.catalog.set_meta(STANDING_TOLD, &json)
    }

    /// Applies what the hub `origin` says of its principal `name` of `agency` — its
    /// clearance, the codewords and roles taken away, its standing — as far as it narrows what
    /// the principal of that name and agency here holds: the lower clearance, without what
    /// was taken away, then the standing; except that one left without a role here, or moved
    /// to another agency at the hub, is disabled here whatever standing the hub gives it (and
    /// stays so until this site's own operator grants it a role again). Audited as
    /// `site:ORIGIN`. Returns whether anything changed.
    pub fn apply_told_access(
        &mut self,
        origin: &str,
        name: &str,
        agency: &str,
        standing: Standing,
        access: &AccessTold,
    ) -> Result<bool> {
        let Some((row, old)) = self.find_principal_row(name)? else {
            return Ok(false);
        };
        if old.agency != agency {
            return Ok(false);
        }
        let actor = Actor::Principal(format!("site:{origin}"));
        let mut p = old.clone();
        p.clearance = p.clearance.min(access.clearance);
        p.compartments
            .retain(|c| !access.compartments_removed.contains(c));
        p.roles.retain(|r| !access.roles_removed.contains(r));
        let cut_off = if access.agency != agency {
            Some(format!(
                "moved to {} at site {origin}: its access here ends",
                access.agency
            ))
        } else if p.roles.is_empty() {
            Some(format!("no role left here as at site {origin}"))
        } else {
            None
        };
        let mut changed = false;
        if p != old {
            self.record(
                actor.clone(),
                "principal.set",
                vec![name.to_owned()],
                None,
                Outcome::Allowed,
                Some(format!(
                    "as at site {origin}: clearance {}, codewords [{}], roles {}",
                    p.clearance.as_str(),
                    p.compartments.iter().cloned().collect::<Vec<_>>().join(","),
                    p.roles
                        .iter()
                        .map(|r| r.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                )),
            )?;
            self.update_row(SealedTable::Principals, &row, &p)?;
            changed = true;
        }
        match cut_off {
            Some(why) => {
                if !matches!(p.standing, Standing::Disabled { .. }) {
                    let (row, p) = self.principal_row(name)?;
                    let since_s = now_ms() / 1000;
                    self.put_standing(
                        actor,
                        "principal.disable",
                        &row,
                        p,
                        Standing::Disabled { since_s },
                        &why,
                    )?;
                    changed = true;
                }
            }
            None => changed |= self.apply_told_standing(origin, name, agency, standing)?,
        }
        Ok(changed)
    }

    /// Audits, then stores, a principal's new standing; a disabled principal's tokens and
    /// certificates are revoked.
    fn put_standing(
        &mut self,
        actor: Actor,
        action: &str,
        row: &SealedRow,
        mut p: Principal,
        standing: Standing,
        reason: &str,
    ) -> Result<()> {
        let name = p.name.clone();
        // Audit first: a change is never in force without its entry.
        self.record(
            actor,
            action,
            vec![name.clone()],
            None,
            Outcome::Allowed,
            Some(match standing {
                Standing::Suspended { until_s } => format!("until {until_s}: {reason}"),
                _ => reason.to_owned(),
            }),
        )?;
        p.standing = standing;
        self.update_row(SealedTable::Principals, row, &p)?;
        if matches!(standing, Standing::Disabled { .. }) {
            self.revoke_all_credentials(&name)?;
        }
        Ok(())
    }

    /// Every change of standing made here, in order: what field sites are told.
    pub fn standing_changes(&self) -> Result<Vec<StandingTold>> {
        match self.catalog.meta(STANDING_TOLD)? {
            None => Ok(Vec::new()),
            Some(s) if s.is_empty() => Ok(Vec::new()),
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| Error::Layout(format!("guarded record {STANDING_TOLD}: {e}"))),
        }
    }

    /// Applies a change of standing the hub `origin` made to its principal `name` of
    /// `agency`: a principal of the same name and agency here takes it (audited as
    /// `site:ORIGIN`). Returns whether anything changed; a principal not here, or of another
    /// agency, is left alone.
    pub fn apply_told_standing(
        &mut self,
        origin: &str,
        name: &str,
        agency: &str,
        standing: Standing,
    ) -> Result<bool> {
        let Some((row, p)) = self.find_principal_row(name)? else {
            return Ok(false);
        };
        if p.agency != agency || p.standing == standing {
            return Ok(false);
        }
        let action = match standing {
            Standing::Active => "principal.enable",
            Standing::Disabled { .. } => "principal.disable",
            Standing::Suspended { .. } => "principal.suspend",
        };
        self.put_standing(
            Actor::Principal(format!("site:{origin}")),
            action,
            &row,
            p,
            standing,
            &format!("as at site {origin}"),
        )?;
        Ok(true)
    }

    /// Changes what a principal holds: clearance, codewords, roles, agency.
    /// Takes effect at the next request of every session; audited with the old
    /// and new values.
    pub fn update_principal(&mut self, name: &str, change: &PrincipalChange) -> Result<Principal> {
        let (row, old) = self.principal_row(name)?;
        let mut p = old.clone();
        if let Some(c) = change.clearance {
            p.clearance = c;
        }
        if let Some(c) = &change.compartments {
            p.compartments = c.clone();
        }
        if let Some(r) = &change.roles {
            if r.is_empty() {
                return Err(Error::Invalid(
                    "a principal needs at least one role; nothing changed".into(),
                ));
            }
            p.roles = r.clone();
        }
        if let Some(a) = &change.agency {
            p.agency = a.clone();
        }
        if p == old {
            return Err(Error::Invalid(format!(
                "principal {name} already holds that; nothing changed"
            )));
        }
        let describe = |x: &Principal| {
            format!(
                "{} {} [{}] roles {}",
                x.agency,
                x.clearance.as_str(),
                x.compartments.iter().cloned().collect::<Vec<_>>().join(","),
                x.roles
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        let agency_id = self.agency_id(&p.agency)?;
        self.record(
            Actor::Operator,
            "principal.set",
            vec![name.to_owned()],
            None,
            Outcome::Allowed,
            Some(format!("{} -> {}", describe(&old), describe(&p))),
        )?;
        if Some(agency_id) == row.agency_id {
            self.update_row(SealedTable::Principals, &row, &p)?;
        } else {
            // The record is bound to its agency's row: seal it for the new one.
            let sealed = self.seal_row(
                SealedTable::Principals,
                &row.name_tag,
                row.id,
                Some(agency_id),
                &p,
            )?;
            self.catalog.rehome_sealed(
                SealedTable::Principals,
                row.id,
                Some(agency_id),
                &sealed,
            )?;
        }
        // Field sites are told at their next contact, under the agency they know it by.
        self.tell_sites(
            name,
            old.agency.clone(),
            p.standing,
            Some(AccessTold::of(&old, &p)),
        )?;
        Ok(p)
    }

    /// The gate for a principal now; refused when it is disabled or suspended.
    pub fn gate(&self, principal: &str) -> Result<Gate> {
        let p = self.acting(principal)?;
        let vis = Visibility::compute(
            &p,
            &self.collections()?,
            &self.operations()?,
            now_ms() / 1000,
        );
        Ok(Gate::new(p, vis, self.home))
    }

    // ----- items ------------------------------------------------------------
}
