//! Destroying items: crypto-shredding (derived items first) and retention.

use super::*;

impl Platform {
    /// Crypto-shreds an item: its wrapped keys are deleted with secure delete
    /// and the WAL scrubbed, and its content object (if no other item of the
    /// agency shares it) is deleted. Needs the admin role in the owning
    /// agency.
    pub fn shred(&mut self, principal: &str, id: &str) -> Result<()> {
        let actor = Actor::Principal(principal.to_owned());
        let targets = vec![id.to_owned()];
        let gate = match self.gate(principal) {
            Ok(g) => g,
            Err(e) => return Err(self.refuse(&actor, "item.shred", targets, None, e)),
        };
        let Some(row) = self.catalog.item(id)? else {
            let e = Error::NotFoundOrNotPermitted { reason: None };
            return Err(self.refuse(&actor, "item.shred", targets, None, e));
        };
        let (_, marking) = self.open_meta(&row)?;
        if let Err(d) = gate.decide(&marking, CollectionId(row.collection_id)) {
            let e = Error::NotFoundOrNotPermitted { reason: Some(d) };
            return Err(self.refuse(&actor, "item.shred", targets, None, e));
        }
        let agency = self.agency_name(row.agency_id)?;
        if !gate.principal().may_shred(&agency) {
            let e = Error::RoleRequired {
                principal: principal.into(),
                role: "admin (of the owning agency)",
                act: "shred",
            };
            return Err(self.refuse(&actor, "item.shred", targets, None, e));
        }
        if let Some((collection, hold)) = self.hold_on(CollectionId(row.collection_id))? {
            let e = Error::Held {
                collection,
                reason: hold.reason,
            };
            return Err(self.refuse(&actor, "item.shred", targets, None, e));
        }
        if let Err(e) = self.brake_check(principal, &agency) {
            return Err(self.refuse(&actor, "item.shred", targets, None, e));
        }
        self.shred_row(actor, &row, "item.shred")
    }

    pub(super) fn shred_row(&mut self, actor: Actor, row: &ItemRow, action: &str) -> Result<()> {
        // What was derived from it goes first (rule 4: a derived item must
        // not outlive its source's shredding), depth first.
        let agency = self.agency_name(row.agency_id)?;
        let tag = self.lineage_tag(&agency, &row.id)?;
        for child in self.catalog.derived_from(&tag)? {
            self.shred_row(actor.clone(), &child, action)?;
        }
        self.record(
            actor.clone(),
            action,
            vec![row.id.clone()],
            None,
            Outcome::Allowed,
            None,
        )?;
        if let Some(orphan) = self.catalog.delete_item(&row.id)?
            && let Some(loc) = self
                .locations()?
                .into_iter()
                .find(|l| l.id == orphan.location_id)
        {
            // A packed content's bytes go with its pack, once no content
            // lies in it: until then they stay, unreadable, since the
            // content's data key went with its catalog row.
            match &orphan.packed {
                Some(p) if self.catalog.pack_in_use(&p.pack)? => {}
                Some(p) => loc.open()?.delete(&self.rt, &p.pack)?,
                None => loc.open()?.delete(&self.rt, &orphan.object)?,
            }
        }
        Ok(())
    }

    /// Shreds every item whose retention has passed, except those under legal hold; returns
    /// how many were shredded and how many a hold kept.
    pub fn enforce_retention(&mut self) -> Result<Retained> {
        self.shred_expired(Actor::Operator)
    }

    /// What every reader of a derived store (the search index, the link graph) does first:
    /// items past their retention date are shredded now, by the platform itself, so that no
    /// hit, count or link shows them (`get` and `ls` refuse them already). One indexed lookup
    /// when nothing is due.
    pub fn shred_due(&mut self) -> Result<usize> {
        Ok(self
            .shred_expired(Actor::System(SystemActor::Platform))?
            .shredded)
    }

    fn shred_expired(&mut self, actor: Actor) -> Result<Retained> {
        let rows = self.catalog.expired_items(now_ms())?;
        let mut out = Retained::default();
        let mut held: HashMap<u32, bool> = HashMap::new();
        for r in &rows {
            let is_held = match held.get(&r.collection_id) {
                Some(h) => *h,
                None => {
                    let h = self.hold_on(CollectionId(r.collection_id))?.is_some();
                    held.insert(r.collection_id, h);
                    h
                }
            };
            if is_held {
                out.held += 1;
                continue;
            }
            // A derived item may already have gone with its source.
            if self.catalog.item(&r.id)?.is_some() {
                self.shred_row(actor.clone(), r, "retention.shred")?;
                out.shredded += 1;
            }
        }
        Ok(out)
    }
}

/// What a retention run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Retained {
    /// Items shredded.
    pub shredded: usize,
    /// Items past their retention kept because their collection is under legal hold.
    pub held: usize,
}
