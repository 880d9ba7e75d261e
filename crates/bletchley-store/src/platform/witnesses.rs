//! The witness policy (which witnesses cosign the audit checkpoints, and how many
//! must): kept in the catalog's guarded `meta` table, where the host cannot change
//! it unnoticed, and written out to `audit/witnesses.json` for `audit verify`,
//! which reads public material only. A handle that finds the file missing or
//! different from the guarded copy writes it back and audits that it did, so a
//! host cannot stop the platform asking its witnesses by deleting a file.

use super::*;

use bletchley_audit::{AuditLog, WitnessPolicy};

use crate::catalog::Catalog as _;

const WITNESS_POLICY: &str = "witness_policy";

impl Platform {
    /// The witness policy in force (the guarded copy).
    pub fn witness_policy(&self) -> Result<Option<WitnessPolicy>> {
        match self.catalog.meta(WITNESS_POLICY)? {
            None => Ok(None),
            Some(s) if s.is_empty() => Ok(None),
            Some(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| Error::Layout(format!("the witness policy is unreadable: {e}"))),
        }
    }

    /// Sets (or with `None` clears) the witness policy: the operator's act,
    /// audited as `action` on `target` (`audit.witness.add` and so on).
    pub fn set_witness_policy(
        &mut self,
        policy: Option<&WitnessPolicy>,
        action: &str,
        target: &str,
    ) -> Result<()> {
        if let Some(p) = policy {
            p.check()?;
        }
        self.record(
            Actor::Operator,
            action,
            vec![target.to_owned()],
            None,
            Outcome::Allowed,
            policy.map(|q| format!("quorum {} of {}", q.quorum, q.witnesses.len())),
        )?;
        let json = match policy {
            Some(p) => serde_json::to_string(p).map_err(|e| Error::Layout(e.to_string()))?,
            None => String::new(),
        };
        self.catalog.set_meta(WITNESS_POLICY, &json)?;
        AuditLog::at(self.root.join("audit")).set_witness_policy(policy)?;
        Ok(())
    }

    /// Puts `audit/witnesses.json` back to the guarded policy when it was
    /// deleted, edited or planted; audited. Returns whether it had to.
    pub fn restore_witness_file(&mut self) -> Result<bool> {
        let guarded = self.witness_policy()?;
        let log = AuditLog::at(self.root.join("audit"));
        let on_disk = log.witness_policy();
        let same = matches!((&on_disk, &guarded), (Ok(a), b) if a == b);
        if same {
            return Ok(false);
        }
        log.set_witness_policy(guarded.as_ref())?;
        self.record(
            Actor::System(SystemActor::Platform),
            "audit.witness-policy-restored",
            vec!["audit/witnesses.json".into()],
            None,
            Outcome::Failed,
            Some(match (&on_disk, &guarded) {
                (Ok(None), Some(_)) => {
                    "the file was missing: written again from the guarded copy".into()
                }
                (Ok(Some(_)), None) => "a policy nobody set was planted: removed".into(),
                (Err(e), _) => format!("the file was unreadable ({e}): written again"),
                _ => "the file differed from the guarded copy: written again".into(),
            }),
        )?;
        Ok(true)
    }
}
