//! Periodic access reviews: an agency's admins re-confirm, every N days, that
//! each of its principals should still hold its clearance, codewords and roles.
//! A principal whose review is overdue lapses — it may do nothing — until an
//! admin of its agency (never itself) or the operator confirms it.
//!
//! The schedules live in the catalog's guarded `meta` table (agency names are
//! already in the clear there); when each principal was last confirmed lives in
//! its sealed record.

use super::*;

use crate::catalog::Catalog as _;

const SCHEDULES: &str = "access_reviews";
const DAY_S: i64 = 86_400;

/// An agency's review schedule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReviewSchedule {
    /// Seconds between reviews.
    pub every_s: i64,
    /// When the schedule began (Unix seconds): a principal never confirmed since
    /// counts from here, so setting a schedule lapses nobody at once.
    pub since_s: i64,
}

/// One principal's place in its agency's review queue.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ReviewStatus {
    /// Who.
    pub principal: String,
    /// Its clearance, codewords and roles, as they would be confirmed.
    pub holds: String,
    /// When it was last confirmed (Unix seconds), if ever.
    pub last_s: Option<i64>,
    /// When the next confirmation is due (Unix seconds).
    pub due_s: i64,
    /// Whether it is past due: the principal has lapsed.
    pub overdue: bool,
}

impl Platform {
    /// Every agency's schedule.
    pub fn review_schedules(&self) -> Result<BTreeMap<String, ReviewSchedule>> {
        match self.catalog.meta(SCHEDULES)? {
            Some(s) => serde_json::from_str(&s).map_err(|e| {
                Error::Layout(format!("the access review schedules are unreadable: {e}"))
            }),
            None => Ok(BTreeMap::new()),
        }
    }

    /// Sets (or with `None` ends) an agency's review schedule: an operator's act,
    /// audited.
    pub fn set_review_schedule(&mut self, agency: &str, every_s: Option<i64>) -> Result<()> {
        self.agency_id(agency)?;
        let mut all = self.review_schedules()?;
        match every_s {
            Some(d) if !(1..=10 * 366 * DAY_S).contains(&d) => {
                return Err(Error::Invalid(format!(
                    "a review every {d} s: expected a second to ten years; nothing changed"
                )));
            }
            Some(d) => {
                all.insert(
                    agency.to_owned(),
                    ReviewSchedule {
                        every_s: d,
                        since_s: now_ms() / 1000,
                    },
                );
            }
            None => {
                all.remove(agency);
            }
        }
        self.record(
            Actor::Operator,
            "review.schedule",
            vec![agency.to_owned()],
            None,
            Outcome::Allowed,
            Some(match every_s {
                Some(d) => format!("every {d} s"),
                None => "no reviews".into(),
            }),
        )?;
        let json = serde_json::to_string(&all).map_err(|e| Error::Layout(e.to_string()))?;
        self.catalog.set_meta(SCHEDULES, &json)
    }

    /// Why `p`'s access has lapsed at `now` (Unix seconds), if its review is overdue.
    pub(crate) fn review_lapse(&self, p: &Principal, now: i64) -> Result<Option<String>> {
        let Some(s) = self.review_schedules()?.get(&p.agency).copied() else {
            return Ok(None);
        };
        let due = due_s(p, &s);
        Ok((now >= due).then(|| {
            format!(
                "lapsed: its access review was due at Unix time {due} and no admin of {} has confirmed it",
                p.agency
            )
        }))
    }

    /// The review queue of `admin`'s agency, most overdue first; audited. Only an
    /// admin may see it.
    pub fn reviews(&mut self, admin: &str) -> Result<Vec<ReviewStatus>> {
        let actor = Actor::Principal(admin.to_owned());
        let me = self.acting_admin(admin, "review.list", &[], "see its agency's access reviews")?;
        let out = self.review_queue(Some(&me.agency))?;
        self.record(
            actor,
            "review.list",
            vec![me.agency.clone()],
            None,
            Outcome::Allowed,
            Some(format!("{} principals", out.len())),
        )?;
        Ok(out)
    }

    /// The queue of one agency (or all), without auditing: for the operator.
    pub fn review_queue(&self, agency: Option<&str>) -> Result<Vec<ReviewStatus>> {
        let schedules = self.review_schedules()?;
        let now = now_ms() / 1000;
        let mut out: Vec<ReviewStatus> = self
            .principals()?
            .into_iter()
            .filter(|p| agency.is_none_or(|a| a == p.agency))
            .filter_map(|p| {
                let s = schedules.get(&p.agency)?;
                let due = due_s(&p, s);
                Some(ReviewStatus {
                    holds: holds(&p),
                    last_s: p.reviewed_s,
                    due_s: due,
                    overdue: now >= due,
                    principal: p.name,
                })
            })
            .collect();
        out.sort_by_key(|r| (r.due_s, r.principal.clone()));
        Ok(out)
    }

    /// Confirms `name`'s access for another period: by an admin of its agency who
    /// is not `name` (`by` = `None` is the operator). Audited with what was confirmed.
    pub fn confirm_review(&mut self, by: Option<&str>, name: &str, note: &str) -> Result<()> {
        let actor = by.map_or(Actor::Operator, |b| Actor::Principal(b.to_owned()));
        let (row, mut p) = match self.principal_row(name) {
            Ok(found) => found,
            Err(e) => {
                return Err(self.refuse(&actor, "review.confirm", vec![name.into()], None, e));
            }
        };
        if let Some(b) = by {
            let admin = match self.acting(b) {
                Ok(a) => a,
                Err(e) => {
                    return Err(self.refuse(&actor, "review.confirm", vec![name.into()], None, e));
                }
            };
            if !admin.may_confirm_review(&p) {
                let e = Error::RoleRequired {
                    principal: b.into(),
                    role: "admin",
                    act: "confirm the access of another principal of its own agency",
                };
                return Err(self.refuse(&actor, "review.confirm", vec![name.into()], None, e));
            }
        }
        self.record(
            actor,
            "review.confirm",
            vec![name.to_owned()],
            None,
            Outcome::Allowed,
            Some(if note.is_empty() {
                holds(&p)
            } else {
                format!("{}: {note}", holds(&p))
            }),
        )?;
        p.reviewed_s = Some(now_ms() / 1000);
        self.update_row(SealedTable::Principals, &row, &p)
    }
}

fn due_s(p: &Principal, s: &ReviewSchedule) -> i64 {
    p.reviewed_s.unwrap_or(s.since_s).max(s.since_s) + s.every_s
}

/// What a review confirms, in words.
fn holds(p: &Principal) -> String {
    format!(
        "{}{} roles {}",
        p.clearance.as_str(),
        if p.compartments.is_empty() {
            String::new()
        } else {
            format!(
                " {}",
                p.compartments.iter().cloned().collect::<Vec<_>>().join(",")
            )
        },
        p.roles
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}
