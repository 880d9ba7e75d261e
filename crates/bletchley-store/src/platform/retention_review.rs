//! The review queue before retention destroys: a collection may require that an admin of
//! its agency (or the operator) look at what falls due before it goes. Until then the
//! items are unreadable (their date has passed) and left out of the search index and the
//! link graph; a review either approves their destruction (the next run destroys them,
//! with a certificate) or keeps them until a later date, with a reason. Requirements and
//! decisions live with the schedules in the guarded `meta` table; each is audited.

use super::*;

use std::collections::HashSet;

use crate::catalog::Catalog as _;

/// The guarded `meta` key of the items left out of the index while they wait for review.
const WITHHELD: &str = "retention.withheld";

/// An item past its date in a collection that requires review.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Awaiting {
    /// The item.
    pub id: String,
    /// Its title, for the reviewer.
    pub title: String,
    /// Its collection, `agency/name`.
    pub collection: String,
    /// Its marking.
    pub marking: String,
    /// When it was ingested (Unix ms).
    pub created_ms: i64,
    /// Why it is due: `its own retention date`, `collection schedule`, …
    pub under: String,
    /// Approved for destruction by a review: the next run destroys it.
    pub approved: bool,
}

/// A reviewer's decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReviewDecision {
    /// Destroy now (with the certificate).
    Destroy,
    /// Keep until this time (Unix ms), for this reason.
    KeepUntil(i64, String),
}

impl Platform {
    /// Items left out of the search index while they wait for review.
    pub fn index_withheld(&self) -> Result<Vec<String>> {
        match self.catalog.meta(WITHHELD)? {
            None => Ok(Vec::new()),
            Some(s) if s.is_empty() => Ok(Vec::new()),
            Some(s) => serde_json::from_str(&s)
                .map_err(|e| Error::Layout(format!("guarded record {WITHHELD}: {e}"))),
        }
    }

    /// Records which items wait for review, moving the items generation when that changes
    /// so that every reader of the index leaves them out (or takes them back) at once.
    pub(super) fn set_withheld(&mut self, mut ids: Vec<String>) -> Result<()> {
        ids.sort();
        ids.dedup();
        if ids == self.index_withheld()? {
            return Ok(());
        }
        let json = serde_json::to_string(&ids).map_err(|e| Error::Layout(e.to_string()))?;
        self.catalog.rewrite_items(&[], &[(WITHHELD, json)])
    }

    /// Requires (or with `on` false, stops requiring) a review before the items of
    /// collection `name` are destroyed: the operator's act, audited.
    pub fn require_retention_review(&mut self, name: &str, on: bool) -> Result<()> {
        let c = self
            .collection_by_name(name)?
            .ok_or_else(|| Error::Unknown {
                kind: "collection",
                name: name.to_owned(),
            })?;
        let mut s = self.retention_schedules()?;
        let changed = if on {
            s.reviewed.insert(c.id.0)
        } else {
            s.reviewed.remove(&c.id.0)
        };
        if !changed {
            return Err(Error::Invalid(format!(
                "collection {name} {} a review already: nothing changed",
                if on { "requires" } else { "does not require" }
            )));
        }
        self.record(
            Actor::Operator,
            "retention.review-required",
            vec![format!("collection {name}")],
            None,
            Outcome::Allowed,
            Some(if on { "on" } else { "off" }.into()),
        )?;
        self.put_retention_schedules(&s)
    }

    /// The review queue: due items of reviewed collections, of `principal`'s agency (an
    /// admin's) or every agency's (`None`, the operator). Audited: a reviewer sees titles of
    /// items no one may read any more.
    pub fn retention_queue(&mut self, principal: Option<&str>) -> Result<Vec<Awaiting>> {
        let agency = self.reviewer_agency(principal, "retention.review-list", &[])?;
        let gate = principal.map(|p| self.gate(p)).transpose()?;
        let schedules = self.retention_schedules()?;
        let names: HashMap<u32, (String, String)> = self
            .collections()?
            .into_iter()
            .map(|c| {
                (
                    c.id.0,
                    (c.agency.clone(), format!("{}/{}", c.agency, c.name)),
                )
            })
            .collect();
        let mut out = Vec::new();
        for (row, why) in self.due_items(now_ms())? {
            if !schedules.reviewed.contains(&row.collection_id) {
                continue;
            }
            let Some((owner, collection)) = names.get(&row.collection_id) else {
                continue;
            };
            if agency.as_deref().is_some_and(|a| a != owner) {
                continue;
            }
            let (meta, marking) = self.open_meta(&row)?;
            // An admin sees in the queue only what the gate would let it see.
            if let Some(gate) = &gate
                && gate
                    .decide(&marking, CollectionId(row.collection_id))
                    .is_err()
            {
                continue;
            }
            out.push(Awaiting {
                approved: schedules.approved.contains(&row.id),
                id: row.id,
                title: meta.title,
                collection: collection.clone(),
                marking: meta.marking,
                created_ms: meta.created_ms,
                under: why.to_owned(),
            });
        }
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        self.record(
            principal.map_or(Actor::Operator, |p| Actor::Principal(p.to_owned())),
            "retention.review-list",
            agency.map(|a| vec![a]).unwrap_or_default(),
            None,
            Outcome::Allowed,
            Some(format!("{} awaiting review", out.len())),
        )?;
        Ok(out)
    }

    /// Decides on items in the review queue: destroy them now (returning the destruction
    /// certificate of the run that does), or keep them until a later date. Every id must be
    /// in `principal`'s queue (every agency's for the operator); otherwise nothing changes.
    pub fn decide_retention(
        &mut self,
        principal: Option<&str>,
        ids: &[String],
        decision: &ReviewDecision,
    ) -> Result<Retained> {
        let action = match decision {
            ReviewDecision::Destroy => "retention.review-approve",
            ReviewDecision::KeepUntil(..) => "retention.review-keep",
        };
        let agency = self.reviewer_agency(principal, action, ids)?;
        let actor = principal.map_or(Actor::Operator, |p| Actor::Principal(p.to_owned()));
        if ids.is_empty() {
            return Err(Error::Invalid("name the items to decide on".into()));
        }
        if let ReviewDecision::KeepUntil(until, reason) = decision {
            if *until <= now_ms() {
                return Err(Error::Invalid("--until must be in the future".into()));
            }
            if reason.trim().is_empty() || reason.len() > 1000 {
                return Err(Error::Invalid(
                    "--reason: say why it is kept (1 to 1000 characters)".into(),
                ));
            }
        }
        let schedules = self.retention_schedules()?;
        let gate = principal.map(|p| self.gate(p)).transpose()?;
        let mut queue: HashSet<String> = HashSet::new();
        for (r, _) in self.due_items(now_ms())? {
            if !schedules.reviewed.contains(&r.collection_id)
                || agency
                    .as_deref()
                    .is_some_and(|a| self.agency_name(r.agency_id).ok().as_deref() != Some(a))
            {
                continue;
            }
            // Only what the reviewer's gate admits is in its queue.
            if let Some(gate) = &gate {
                let (_, marking) = self.open_meta(&r)?;
                if gate
                    .decide(&marking, CollectionId(r.collection_id))
                    .is_err()
                {
                    continue;
                }
            }
            queue.insert(r.id);
        }
        if let Some(missing) = ids.iter().find(|i| !queue.contains(*i)) {
            let e = Error::Invalid(format!(
                "item {missing} is not waiting for review{}: nothing decided",
                agency
                    .as_deref()
                    .map(|a| format!(" in {a}'s queue"))
                    .unwrap_or_default()
            ));
            return Err(self.refuse(&actor, action, ids.to_vec(), None, e));
        }
        let mut s = schedules;
        let reason = match decision {
            ReviewDecision::Destroy => {
                s.approved.extend(ids.iter().cloned());
                "approved for destruction".to_owned()
            }
            ReviewDecision::KeepUntil(until, reason) => {
                for id in ids {
                    s.kept.insert(id.clone(), *until);
                    s.approved.remove(id);
                }
                format!("kept until {until} (Unix ms): {}", reason.trim())
            }
        };
        self.record(
            actor.clone(),
            action,
            ids.to_vec(),
            None,
            Outcome::Allowed,
            Some(reason),
        )?;
        self.put_retention_schedules(&s)?;
        // Destroy what was approved now (and bring back into the index what was kept).
        self.shred_expired(actor, &mut |_, _| {})
    }

    /// The agency whose queue `principal` reviews (an admin's own), `None` for the operator;
    /// anyone else is refused, audited as `action`.
    fn reviewer_agency(
        &mut self,
        principal: Option<&str>,
        action: &str,
        targets: &[String],
    ) -> Result<Option<String>> {
        let Some(who) = principal else {
            return Ok(None);
        };
        let p = self.acting_admin(who, action, targets, "review what retention destroys")?;
        Ok(Some(p.agency))
    }
}
