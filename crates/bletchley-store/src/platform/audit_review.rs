//! Audit review: what an auditor (their own agency) or the overseer (everyone) may read of the trail; neither reads items.

use super::*;

/// What an auditor asks of the audit trail.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    /// Only entries by this principal.
    pub principal: Option<String>,
    /// Only actions starting with this (`item.`, `search`, `login`).
    pub action: Option<String>,
    /// At most this many entries, newest first (1 to 1000).
    pub limit: usize,
}

/// What an auditor sees: the log's integrity, and its entries when the
/// oversight key is on this platform.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AuditReview {
    /// The chain and checkpoint verification: a report, or why it failed.
    pub integrity: std::result::Result<bletchley_audit::Report, String>,
    /// Matching entries (sequence number, entry), newest first.
    pub entries: Vec<(u64, Entry)>,
    /// Entries in the log that matched, before the limit.
    pub matched: usize,
    /// Why entries could not be read, if they could not.
    pub unreadable: Option<String>,
}

/// Reads audit entries with the oversight key file (no platform key needed).
pub fn read_audit(root: &Path, unlock: &dyn Unlock) -> Result<Vec<(u64, Entry)>> {
    let kf = open_keyfile(&root.join("keys"), &KeyName::Oversight, unlock)?;
    let sk = kf
        .get("oversight")
        .cloned()
        .ok_or_else(|| Error::Layout("oversight key file lacks its key".into()))?;
    Ok(AuditLog::at(root.join("audit")).read(&OversightSecretKey::from_secret(sk))?)
}

impl Platform {
    /// Every audit entry, opened with the oversight key when it is beside the data; else
    /// why not, in words for the auditor.
    pub(super) fn opened_audit(&self) -> std::result::Result<Vec<(u64, Entry)>, String> {
        let log = AuditLog::at(self.root.join("audit"));
        match open_keyfile(&self.root.join("keys"), &KeyName::Oversight, &*self.unlock) {
            Ok(kf) => match kf.get("oversight") {
                Some(sk) => log
                    .read(&OversightSecretKey::from_secret(sk.clone()))
                    .map_err(|e| format!("the entries could not be opened: {e}")),
                None => Err("the oversight key file lacks its key".into()),
            },
            Err(_) => Err(
                "the oversight key is not on this platform (it belongs with the oversight body): integrity is shown, entries are not"
                    .into(),
            ),
        }
    }

    /// The audit trail for an auditor: integrity verified from the stored
    /// checkpoint and verifier key, and the entries (filtered, newest first)
    /// opened with the oversight key when it is still beside the data. The
    /// review is itself audited; anyone but an auditor is refused.
    pub fn audit_review(&mut self, principal: &str, q: &AuditQuery) -> Result<AuditReview> {
        let actor = Actor::Principal(principal.to_owned());
        let what = format!(
            "principal={} action={} limit={}",
            q.principal.as_deref().unwrap_or("*"),
            q.action.as_deref().unwrap_or("*"),
            q.limit
        );
        let p = match self.acting(principal) {
            Ok(p) => p,
            Err(e) => return Err(self.refuse(&actor, "audit.review", vec![what], None, e)),
        };
        let reach = p.audit_reach();
        if reach == AuditReach::Nobody {
            let e = Error::RoleRequired {
                principal: principal.to_owned(),
                role: "auditor or overseer",
                act: "review the audit trail",
            };
            return Err(self.refuse(&actor, "audit.review", vec![what], None, e));
        }
        if !(1..=1000).contains(&q.limit) {
            return Err(Error::Invalid("limit must be between 1 and 1000".into()));
        }
        self.record(
            actor,
            "audit.review",
            vec![what],
            None,
            Outcome::Allowed,
            None,
        )?;
        let log = AuditLog::at(self.root.join("audit"));
        let integrity = log.verify(None, None).map_err(|e| e.to_string());
        let (mut entries, unreadable) = match self.opened_audit() {
            Ok(e) => (e, None),
            Err(why) => (Vec::new(), Some(why)),
        };
        entries.retain(|(_, e)| {
            q.principal.as_deref().is_none_or(|w| e.principal == w)
                && q.action.as_deref().is_none_or(|a| e.action.starts_with(a))
        });
        if let AuditReach::Agency(agency) = &reach {
            // An agency's auditor sees what its own principals did; the
            // platform's overseer sees everything.
            let mut agency_of: HashMap<String, Option<String>> = HashMap::new();
            entries.retain(|(_, e)| {
                agency_of
                    .entry(e.principal.clone())
                    .or_insert_with(|| self.principal(&e.principal).ok().map(|x| x.agency))
                    .as_deref()
                    == Some(agency.as_str())
            });
        }
        let matched = entries.len();
        entries.reverse();
        entries.truncate(q.limit);
        Ok(AuditReview {
            integrity,
            entries,
            matched,
            unreadable,
        })
    }
}
