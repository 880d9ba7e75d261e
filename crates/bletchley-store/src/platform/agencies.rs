//! Agencies and their keys: adding one, its key file, unlocking it, rotating its key-encryption key.

use super::*;

impl Platform {
    /// Adds an agency with its own key file (sealed with its passphrase).
    pub fn add_agency(&mut self, name: &str) -> Result<()> {
        valid_name("agency", name, 32, b"-")?;
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(Error::Invalid(format!(
                "agency name {name:?} must be lower case"
            )));
        }
        if self.catalog.agencies()?.iter().any(|(_, n)| n == name) {
            return Err(Error::Exists {
                kind: "agency",
                name: name.into(),
            });
        }
        let kf = create_keyfile(
            &self.root.join("keys"),
            &KeyName::Agency(name.to_owned()),
            self.unlock.as_ref(),
            self.kdf,
            vec![
                ("kek.1", SecretKey::generate()?),
                ("dedup", SecretKey::generate()?),
            ],
        )?;
        let id = self.catalog.insert_agency(name)?;
        self.agencies
            .insert(name.to_owned(), AgencyKeys::from_keyfile(id, name, kf)?);
        self.record(
            Actor::Operator,
            "agency.add",
            vec![name.into()],
            None,
            Outcome::Allowed,
            None,
        )
    }

    /// Agency names.
    pub fn agencies(&self) -> Result<Vec<String>> {
        Ok(self
            .catalog
            .agencies()?
            .into_iter()
            .map(|(_, n)| n)
            .collect())
    }

    pub(super) fn agency_id(&self, name: &str) -> Result<i64> {
        self.catalog
            .agencies()?
            .into_iter()
            .find(|(_, n)| n == name)
            .map(|(id, _)| id)
            .ok_or_else(|| Error::Unknown {
                kind: "agency",
                name: name.into(),
            })
    }

    pub(super) fn agency_name(&self, id: i64) -> Result<String> {
        self.catalog
            .agencies()?
            .into_iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n)
            .ok_or_else(|| Error::Layout(format!("catalog names unknown agency {id}")))
    }

    pub(super) fn agency_keys(&mut self, name: &str) -> Result<&AgencyKeys> {
        if !self.agencies.contains_key(name) {
            let id = self.agency_id(name)?;
            let kf = open_keyfile(
                &self.root.join("keys"),
                &KeyName::Agency(name.to_owned()),
                self.unlock.as_ref(),
            )?;
            self.agencies
                .insert(name.to_owned(), AgencyKeys::from_keyfile(id, name, kf)?);
        }
        self.agencies.get(name).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: name.into(),
        })
    }

    /// Rotates an agency's key-encryption key: a new version wraps every data
    /// key again (content is not re-encrypted), then the old version is
    /// destroyed.
    pub fn rotate_agency_key(&mut self, name: &str) -> Result<usize> {
        let path =
            crate::keyring::key_path(&self.root.join("keys"), &KeyName::Agency(name.to_owned()));
        self.agency_keys(name)?;
        let keys = self.agencies.get_mut(name).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: name.into(),
        })?;
        let new_version = keys.provider.add_version()?;
        let new_key = keys
            .provider
            .keks()
            .last()
            .map(|(_, k)| k.clone())
            .ok_or(Error::Layout("no KEK".into()))?;
        keys.keyfile.set(&format!("kek.{new_version}"), new_key);
        keys.keyfile.save(&path)?;
        let id = keys.id;
        let rows = self.catalog.wrapped_keys(id)?;
        let keys = self.agencies.get(name).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: name.into(),
        })?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let aad = wrap_aad(&row.table, &row.key);
            let dek = keys.provider.unwrap(
                &WrappedKey {
                    kek_version: row.kek_version,
                    bytes: row.wrapped,
                },
                &aad,
            )?;
            let w = keys.provider.wrap(&dek, &aad)?;
            out.push(WrappedKeyRow {
                table: row.table,
                key: row.key,
                kek_version: w.kek_version,
                wrapped: w.bytes,
            });
        }
        self.catalog.rewrap(&out)?;
        let keys = self.agencies.get_mut(name).ok_or_else(|| Error::Unknown {
            kind: "agency",
            name: name.into(),
        })?;
        let old: Vec<u32> = keys
            .provider
            .keks()
            .iter()
            .map(|(v, _)| *v)
            .filter(|v| *v != new_version)
            .collect();
        keys.provider.retire_old();
        for v in old {
            keys.keyfile.remove(&format!("kek.{v}"));
        }
        keys.keyfile.save(&path)?;
        let n = out.len();
        self.record(
            Actor::Operator,
            "key.rotate",
            vec![name.into(), format!("version {new_version}")],
            None,
            Outcome::Allowed,
            Some(format!("{n} data keys rewrapped")),
        )?;
        Ok(n)
    }

    // ----- locations and residency ----------------------------------------
}
