//! The overseer's report: compiled from every audit entry opened with the oversight key,
//! a sample of each figure proved against the newest (cosigned) checkpoint.

use bletchley_oversight::{Period, Report};

use super::*;

impl Platform {
    /// Compiles the oversight report for `period`, for a principal with the overseer role
    /// (the request is audited, as a refusal is). Entries are opened with the oversight
    /// key, which must be beside the data (the overseer's own machine, or a platform that
    /// keeps it); principals are placed in the agency they belong to now.
    pub fn oversight_report(&mut self, principal: &str, period: Period) -> Result<Report> {
        let actor = Actor::Principal(principal.to_owned());
        let what = vec![
            format!("from {}", bletchley_oversight::report::date(period.from_ms)),
            format!("to {}", bletchley_oversight::report::date(period.to_ms)),
        ];
        let p = match self.acting(principal) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(&actor, "oversight.report", what, None, e)),
        };
        if p.audit_reach() != AuditReach::Everyone {
            let e = Error::RoleRequired {
                principal: principal.to_owned(),
                role: "overseer",
                act: "compile the oversight report",
            };
            return Err(self.refuse(&actor, "oversight.report", what, None, e));
        }
        if period.from_ms >= period.to_ms {
            return Err(Error::Invalid(
                "the report's period must end after it begins".into(),
            ));
        }
        self.record(
            actor,
            "oversight.report",
            what,
            None,
            Outcome::Allowed,
            None,
        )?;
        let entries = self.opened_audit().map_err(Error::Invalid)?;
        let agencies: HashMap<String, String> = self
            .principals()?
            .into_iter()
            .map(|p| (p.name, p.agency))
            .collect();
        let mut report = bletchley_oversight::compile(&entries, period, now_ms(), |who| {
            agencies.get(who).cloned()
        });
        let sampled = report.sampled();
        if !sampled.is_empty() {
            match AuditLog::at(self.root.join("audit")).inclusion_proofs(&sampled) {
                Ok(proofs) => report.proofs = proofs,
                Err(e) => {
                    report.proofs_missing = Some(format!("the log could not prove them: {e}"))
                }
            }
        }
        Ok(report)
    }
}
