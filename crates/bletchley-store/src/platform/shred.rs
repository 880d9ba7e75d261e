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
        self.shred_tree(actor, row, action, &mut Vec::new())
    }

    /// Shreds `row` and what was derived from it, depth first, adding each row
    /// destroyed to `gone` with the source it went with (`None` for `row` itself).
    pub(super) fn shred_tree(
        &mut self,
        actor: Actor,
        row: &ItemRow,
        action: &str,
        gone: &mut Vec<(ItemRow, Option<String>)>,
    ) -> Result<()> {
        // What was derived from it goes first (rule 4: a derived item must
        // not outlive its source's shredding), depth first.
        let agency = self.agency_name(row.agency_id)?;
        let tag = self.lineage_tag(&agency, &row.id)?;
        for child in self.catalog.derived_from(&tag)? {
            let mut below = Vec::new();
            self.shred_tree(actor.clone(), &child, action, &mut below)?;
            for (r, source) in below {
                gone.push((r, Some(source.unwrap_or_else(|| row.id.clone()))));
            }
        }
        // The entry names what the item was; an item whose metadata no longer opens is
        // shredded all the same.
        let about = self
            .open_meta(row)
            .ok()
            .map(|(meta, _)| bletchley_audit::About {
                collection: meta.collection,
                marking: meta.marking,
            });
        self.append_audit(&[Entry {
            time_ms: now_ms(),
            principal: actor.name(),
            action: action.to_owned(),
            targets: vec![row.id.clone()],
            justification: None,
            outcome: Outcome::Allowed,
            reason: None,
            about,
        }])?;
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
        gone.push((row.clone(), None));
        Ok(())
    }
}
