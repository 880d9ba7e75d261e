//! Principals and the gate each one reads through.

use super::*;

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
        let tag = self.tag("principal", name);
        let row = self
            .catalog
            .find_sealed(SealedTable::Principals, &tag)?
            .ok_or_else(|| Error::Unknown {
                kind: "principal",
                name: name.into(),
            })?;
        // The record is bound to the tag of `name` and to its agency's row
        // (`row_aad`); the agencies' names are guarded with the catalog.
        self.open_row(SealedTable::Principals, &row)
    }

    /// The gate for a principal now.
    pub fn gate(&self, principal: &str) -> Result<Gate> {
        let p = self.principal(principal)?;
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
