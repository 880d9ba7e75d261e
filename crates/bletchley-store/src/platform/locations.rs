//! Locations and residency: where sealed bytes may rest (rule 3).

use super::*;

impl Platform {
    /// Adds a location.
    pub fn add_location(
        &mut self,
        name: &str,
        jurisdiction: Jurisdiction,
        spec: LocationSpec,
    ) -> Result<()> {
        valid_name("location", name, 64, b"-_.")?;
        if self.catalog.locations()?.iter().any(|l| l.name == name) {
            return Err(Error::Exists {
                kind: "location",
                name: name.into(),
            });
        }
        let spec = match spec {
            LocationSpec::Local { path } => LocationSpec::Local {
                path: std::path::absolute(&path).map_err(io(&path))?,
            },
            s => s,
        };
        self.catalog.insert_location(
            name,
            &jurisdiction.to_string(),
            &serde_json::to_string(&spec).unwrap_or_default(),
        )?;
        self.record(
            Actor::Operator,
            "location.add",
            vec![name.into(), jurisdiction.to_string()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Retires a location: it takes no new writes; what rests there stays
    /// readable.
    pub fn retire_location(&mut self, name: &str) -> Result<()> {
        let loc = self
            .locations()?
            .into_iter()
            .find(|l| l.name == name)
            .ok_or_else(|| Error::Unknown {
                kind: "location",
                name: name.into(),
            })?;
        self.catalog.retire_location(loc.id)?;
        self.record(
            Actor::Operator,
            "location.retire",
            vec![name.into()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Every location.
    pub fn locations(&self) -> Result<Vec<Location>> {
        self.catalog
            .locations()?
            .into_iter()
            .map(|l| {
                Ok(Location {
                    id: l.id,
                    name: l.name,
                    jurisdiction: Jurisdiction::parse(&l.jurisdiction)?,
                    spec: serde_json::from_str(&l.spec)
                        .map_err(|e| Error::Layout(format!("location spec: {e}")))?,
                    retired: l.retired,
                })
            })
            .collect()
    }

    /// Sets the allowed jurisdictions for a scope.
    pub fn set_residency(&mut self, scope: Scope, allow: &[Jurisdiction]) -> Result<()> {
        if let Scope::Agency(a) = &scope {
            self.agency_id(a)?;
        }
        let (s, t) = scope.key();
        let allow_s = allow
            .iter()
            .map(|j| j.to_string())
            .collect::<Vec<_>>()
            .join(",");
        self.catalog.set_residency(&s, &t, &allow_s)?;
        self.record(
            Actor::Operator,
            "residency.set",
            vec![format!("{s}:{t}"), allow_s],
            None,
            Outcome::Allowed,
            None,
        )
    }

    pub(super) fn allowed_rules(
        &self,
        agency: &str,
        collection: CollectionId,
        class: &str,
    ) -> Result<Vec<Vec<Jurisdiction>>> {
        let mut out = Vec::new();
        for (scope, target, allow) in self.catalog.residency()? {
            let applies = match scope.as_str() {
                "default" => true,
                "agency" => target == agency,
                "collection" => target == collection.0.to_string(),
                "classification" => target == class,
                _ => false,
            };
            if applies {
                out.push(residency::parse_allow(&allow)?);
            }
        }
        Ok(out)
    }

    // ----- principals, collections, operations ------------------------------
}
