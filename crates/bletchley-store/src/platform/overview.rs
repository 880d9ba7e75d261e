//! What an agency admin sees of its agency at a glance: its collections (items, legal
//! hold, retention schedule, review before destruction) and its principals' jobs. Counts
//! and settings, never item content; the look is audited like any other.

use super::*;

use std::collections::HashSet;

use crate::jobs::Job;

/// One collection of the agency.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct CollectionOverview {
    /// `agency/name`.
    pub name: String,
    /// Bulk (reads need a justification).
    pub bulk: bool,
    /// Items in it.
    pub items: usize,
    /// The legal hold's reason, if one holds it.
    pub hold: Option<String>,
    /// Its own retention schedule, seconds after ingest.
    pub keep_s: Option<i64>,
    /// Whether its due items wait for a review before destruction.
    pub review: bool,
}

/// The agency's principals' jobs.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct JobsOverview {
    /// Jobs by state (`queued`, `running`, `done`, `failed`, …).
    pub by_state: BTreeMap<String, usize>,
    /// The most recent failed jobs, newest first (at most 20).
    pub failed: Vec<Job>,
}

/// An agency at a glance.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AgencyOverview {
    /// The agency.
    pub agency: String,
    /// Its collections.
    pub collections: Vec<CollectionOverview>,
    /// Its principals' jobs.
    pub jobs: JobsOverview,
}

impl Platform {
    /// The overview of `admin`'s agency (admins only; audited as `admin.overview`).
    pub fn agency_overview(&mut self, admin: &str) -> Result<AgencyOverview> {
        let actor = Actor::Principal(admin.to_owned());
        let p = self.acting_admin(
            admin,
            "admin.overview",
            &[],
            "see the agency's collections and jobs",
        )?;
        let schedules = self.retention_schedules()?;
        let mut collections = Vec::new();
        for c in self.collections()? {
            if c.agency != p.agency {
                continue;
            }
            collections.push(CollectionOverview {
                name: format!("{}/{}", c.agency, c.name),
                bulk: c.bulk,
                items: self.catalog.items_in(&[c.id.0])?.len(),
                hold: self.hold_on(c.id)?.map(|(_, h)| h.reason),
                keep_s: schedules.collections.get(&c.id.0).copied(),
                review: schedules.reviewed.contains(&c.id.0),
            });
        }
        collections.sort_by(|a, b| a.name.cmp(&b.name));
        let members: HashSet<String> = self
            .principals()?
            .into_iter()
            .filter(|x| x.agency == p.agency)
            .map(|x| x.name)
            .collect();
        let mut jobs = JobsOverview::default();
        let mut failed: Vec<Job> = Vec::new();
        for j in self.jobs()? {
            if !members.contains(&j.principal) {
                continue;
            }
            *jobs
                .by_state
                .entry(j.state.as_str().to_owned())
                .or_default() += 1;
            if j.state == crate::jobs::JobState::Failed {
                failed.push(j);
            }
        }
        failed.sort_by_key(|j| std::cmp::Reverse(j.updated_ms));
        failed.truncate(20);
        jobs.failed = failed;
        self.record(
            actor,
            "admin.overview",
            vec![p.agency.clone()],
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(AgencyOverview {
            agency: p.agency,
            collections,
            jobs,
        })
    }
}
