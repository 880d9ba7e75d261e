//! Platform side of the job queue: sealing job bodies, auditing each transition.

use bletchley_audit::Outcome;
use bletchley_crypto::record;

use super::{Actor, Platform, now_ms};
use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::jobs::{Job, JobBody, JobRow, JobState};

/// How long a claimed job stays with its worker without a heartbeat, unless
/// [`Platform::set_job_lease_ms`] says otherwise.
pub const LEASE_MS: i64 = 120_000;
/// Attempts before a job is given up.
pub const MAX_ATTEMPTS: u32 = 3;
/// Wait before a retry, times the attempt number.
const RETRY_BACKOFF_MS: i64 = 5_000;

fn job_aad(id: i64) -> Vec<u8> {
    format!("jobs/{id}").into_bytes()
}

/// Binds a job's partial output to the job and its item.
fn partial_aad(id: i64, item: &str) -> Vec<u8> {
    format!("jobs/{id}/partial/{item}").into_bytes()
}

/// How a job of a batch ended: the items it produced, or its error and whether that is
/// permanent (bad input does not improve on retry).
pub type JobOutcome = std::result::Result<Vec<String>, (String, bool)>;

impl Platform {
    /// Sets how long a worker keeps a job without reporting progress. A shorter lease lets a
    /// crashed worker's job be taken again sooner; it must exceed the time between two progress
    /// reports (one per 30-second window of audio), or a live worker's job is taken from it.
    pub fn set_job_lease_ms(&mut self, ms: i64) {
        self.job_lease_ms = ms.max(1000);
    }

    fn seal_job(&self, id: i64, body: &JobBody) -> Result<Vec<u8>> {
        let json = serde_json::to_vec(body).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(record::seal(&self.keys.catalog, &job_aad(id), &json)?)
    }

    fn open_job(&self, r: JobRow) -> Result<Job> {
        let json = record::open(
            &self.keys.catalog,
            &job_aad(r.id),
            &r.sealed,
            bletchley_crypto::Context::Record,
        )?;
        let body: JobBody = serde_json::from_slice(&json)
            .map_err(|e| Error::Layout(format!("job {} unreadable: {e}", r.id)))?;
        Ok(Job {
            id: r.id,
            kind: body.kind,
            item: body.item,
            principal: body.principal,
            state: r.state,
            attempts: r.attempts,
            max_attempts: r.max_attempts,
            progress: r.progress,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
            error: body.error,
            results: body.results,
        })
    }

    /// Queues `kind` work on an item the principal has just stored. Audited as `job.enqueue`.
    pub fn enqueue_job(&mut self, principal: &str, kind: &str, item: &str) -> Result<i64> {
        if self.catalog.item(item)?.is_none() {
            return Err(Error::NotFoundOrNotPermitted { reason: None });
        }
        let now = now_ms();
        let id = self.catalog.insert_job(MAX_ATTEMPTS, now)?;
        let body = JobBody {
            kind: kind.to_owned(),
            item: item.to_owned(),
            principal: principal.to_owned(),
            ..JobBody::default()
        };
        self.catalog.set_job_body(id, &self.seal_job(id, &body)?)?;
        self.record(
            Actor::Principal(principal.to_owned()),
            "job.enqueue",
            vec![item.to_owned()],
            None,
            Outcome::Allowed,
            Some(format!("job {id}: {kind}")),
        )?;
        Ok(id)
    }

    /// Queues several jobs, `(kind, item)`, on items the principal has just stored: one
    /// durable audit append for them all, not one per job. Returns their ids in order.
    pub fn enqueue_jobs(&mut self, principal: &str, jobs: &[(&str, &str)]) -> Result<Vec<i64>> {
        for (_, item) in jobs {
            if self.catalog.item(item)?.is_none() {
                return Err(Error::NotFoundOrNotPermitted { reason: None });
            }
        }
        let now = now_ms();
        let mut entries = Vec::with_capacity(jobs.len());
        // One transaction for the lot; each body sealed to its job's id.
        let catalog = &self.catalog;
        let mut seal = |k: usize, id: i64| -> Result<Vec<u8>> {
            let (kind, item) = jobs[k];
            let body = JobBody {
                kind: kind.to_owned(),
                item: item.to_owned(),
                principal: principal.to_owned(),
                ..JobBody::default()
            };
            entries.push(bletchley_audit::Entry {
                time_ms: now,
                principal: principal.to_owned(),
                action: "job.enqueue".into(),
                targets: vec![item.to_owned()],
                justification: None,
                outcome: Outcome::Allowed,
                reason: Some(format!("job {id}: {kind}")),
                about: None,
            });
            self.seal_job(id, &body)
        };
        let ids = catalog.insert_jobs(MAX_ATTEMPTS, now, jobs.len(), &mut seal)?;
        if !entries.is_empty() {
            self.append_audit(&entries)?;
        }
        Ok(ids)
    }

    /// Takes the next ready job for a worker, if any. A job whose worker died is taken again
    /// once its lease lapses.
    pub fn claim_job(&mut self) -> Result<Option<Job>> {
        let Some(r) = self.catalog.claim_job(now_ms(), self.job_lease_ms)? else {
            return Ok(None);
        };
        let job = self.open_job(r)?;
        self.record(
            Actor::System(super::SystemActor::Worker),
            "job.start",
            vec![job.item.clone()],
            None,
            Outcome::Allowed,
            Some(format!("job {} attempt {}", job.id, job.attempts)),
        )?;
        Ok(Some(job))
    }

    /// Takes up to `max` ready jobs at once, for work cheap enough per job that claiming,
    /// auditing and finishing each alone would cost more than the work: every job of the
    /// batch is of a kind `batchable` accepts, or the batch is that one job alone (a long job,
    /// such as a transcription, is never held unstarted behind another). One transaction and
    /// one durable audit append for the batch.
    pub fn claim_jobs(&mut self, max: usize, batchable: &dyn Fn(&str) -> bool) -> Result<Vec<Job>> {
        let mut opened: std::collections::HashMap<i64, Job> = std::collections::HashMap::new();
        let mut first_alone = false;
        let rows =
            self.catalog
                .claim_jobs(now_ms(), self.job_lease_ms, max.max(1), &mut |r, taken| {
                    if first_alone {
                        return Ok(false);
                    }
                    let job = self.open_job(r.clone())?;
                    let ok = batchable(&job.kind);
                    if !ok && taken > 0 {
                        return Ok(false);
                    }
                    first_alone = !ok;
                    opened.insert(r.id, job);
                    Ok(true)
                })?;
        let mut jobs = Vec::with_capacity(rows.len());
        let mut entries = Vec::with_capacity(rows.len());
        for r in rows {
            let Some(mut job) = opened.remove(&r.id) else {
                continue;
            };
            job.state = r.state;
            job.attempts = r.attempts;
            job.updated_ms = r.updated_ms;
            entries.push(bletchley_audit::Entry {
                time_ms: now_ms(),
                principal: super::SystemActor::Worker.name().into(),
                action: "job.start".into(),
                targets: vec![job.item.clone()],
                justification: None,
                outcome: Outcome::Allowed,
                reason: Some(format!("job {} attempt {}", job.id, job.attempts)),
                about: None,
            });
            jobs.push(job);
        }
        if !entries.is_empty() {
            self.append_audit(&entries)?;
        }
        Ok(jobs)
    }

    /// Finishes a batch of jobs in one transaction and one durable audit append: `Ok` with
    /// the items each produced, or `Err` with its error and whether it is permanent (as
    /// [`Self::complete_job`] and [`Self::fail_job`] do one by one). Returns each job's new
    /// state.
    pub fn finish_jobs(&mut self, outcomes: &[(&Job, JobOutcome)]) -> Result<Vec<JobState>> {
        let now = now_ms();
        let mut rows = Vec::with_capacity(outcomes.len());
        let mut entries = Vec::with_capacity(outcomes.len());
        let mut states = Vec::with_capacity(outcomes.len());
        for (job, outcome) in outcomes {
            let mut body = JobBody {
                kind: job.kind.clone(),
                item: job.item.clone(),
                principal: job.principal.clone(),
                error: None,
                results: Vec::new(),
            };
            let (state, not_before, action, targets, outcome_kind, reason) = match outcome {
                Ok(results) => {
                    body.results = results.clone();
                    let mut targets = vec![job.item.clone()];
                    targets.extend(results.iter().cloned());
                    (
                        JobState::Done,
                        now,
                        "job.done",
                        targets,
                        Outcome::Allowed,
                        format!("job {}", job.id),
                    )
                }
                Err((error, permanent)) => {
                    body.error = Some(error.clone());
                    let state = if *permanent || job.attempts >= job.max_attempts {
                        JobState::Failed
                    } else {
                        JobState::Queued
                    };
                    (
                        state,
                        now + RETRY_BACKOFF_MS * job.attempts as i64,
                        "job.fail",
                        vec![job.item.clone()],
                        Outcome::Refused,
                        format!("job {} attempt {}: {error}", job.id, job.attempts),
                    )
                }
            };
            rows.push((job.id, state, not_before, self.seal_job(job.id, &body)?));
            entries.push(bletchley_audit::Entry {
                time_ms: now,
                principal: super::SystemActor::Worker.name().into(),
                action: action.into(),
                targets,
                justification: None,
                outcome: outcome_kind,
                reason: Some(reason),
                about: None,
            });
            states.push(state);
        }
        if rows.is_empty() {
            return Ok(states);
        }
        self.catalog.finish_jobs(now, &rows)?;
        self.append_audit(&entries)?;
        Ok(states)
    }

    /// Keeps what a running job has made so far (a transcript's first segments) in place of
    /// what it kept before, until the job finishes. Sealed under its item's own data key and
    /// bound to the job and the item, so it opens only where the item does, for whoever may
    /// read the item ([`Self::job_on_item`]), and is gone with the item's key when the item is
    /// shredded.
    pub fn save_job_partial(&mut self, job: &Job, partial: &[u8]) -> Result<()> {
        let Some(row) = self.catalog.item(&job.item)? else {
            return Err(Error::NotFoundOrNotPermitted { reason: None });
        };
        let agency = self.agency_name(row.agency_id)?;
        let key = self.item_key(&row, &agency)?;
        let sealed = record::seal(&key, &partial_aad(job.id, &job.item), partial)?;
        self.catalog.set_job_partial(job.id, &sealed)
    }

    /// A job's partial output, opened with its item's data key.
    pub(super) fn open_job_partial(
        &mut self,
        job: &Job,
        row: &crate::catalog::ItemRow,
        agency: &str,
    ) -> Result<Option<Vec<u8>>> {
        let Some(sealed) = self.catalog.job_partial(job.id)? else {
            return Ok(None);
        };
        let key = self.item_key(row, agency)?;
        record::open(
            &key,
            &partial_aad(job.id, &job.item),
            &sealed,
            bletchley_crypto::Context::Record,
        )
        .map(Some)
        .map_err(|_| {
            Error::Damaged(format!(
                "the partial output of job {} does not open (altered, or moved from another job or item)",
                job.id
            ))
        })
    }

    /// Reports progress (0 to 1) and keeps the lease.
    pub fn job_progress(&mut self, id: i64, progress: f32) -> Result<()> {
        self.catalog
            .job_heartbeat(id, progress.clamp(0.0, 1.0), now_ms(), self.job_lease_ms)
    }

    /// Puts a job this worker cannot run (no speech model here) back in the queue for
    /// `delay_ms`, without counting the attempt: another worker, or this one once the
    /// operator fetches the model, takes it. Audited as `job.defer`.
    pub fn defer_job(&mut self, job: &Job, delay_ms: i64, why: &str) -> Result<()> {
        let now = now_ms();
        self.catalog.defer_job(job.id, now + delay_ms.max(0), now)?;
        self.record(
            Actor::System(super::SystemActor::Worker),
            "job.defer",
            vec![job.item.clone()],
            None,
            Outcome::Allowed,
            Some(format!("job {}: {why}", job.id)),
        )?;
        Ok(())
    }

    /// Marks a job done with the items it produced.
    pub fn complete_job(&mut self, job: &Job, results: Vec<String>) -> Result<()> {
        let body = JobBody {
            kind: job.kind.clone(),
            item: job.item.clone(),
            principal: job.principal.clone(),
            error: None,
            results: results.clone(),
        };
        let now = now_ms();
        self.catalog.finish_job(
            job.id,
            JobState::Done,
            now,
            now,
            &self.seal_job(job.id, &body)?,
        )?;
        let mut targets = vec![job.item.clone()];
        targets.extend(results);
        self.record(
            Actor::System(super::SystemActor::Worker),
            "job.done",
            targets,
            None,
            Outcome::Allowed,
            Some(format!("job {}", job.id)),
        )
    }

    /// Records a failed attempt: queued again after a pause while attempts remain, failed for
    /// good after that (or at once when `permanent`: bad input does not improve on retry).
    pub fn fail_job(&mut self, job: &Job, error: &str, permanent: bool) -> Result<JobState> {
        let state = if permanent || job.attempts >= job.max_attempts {
            JobState::Failed
        } else {
            JobState::Queued
        };
        let body = JobBody {
            kind: job.kind.clone(),
            item: job.item.clone(),
            principal: job.principal.clone(),
            error: Some(error.to_owned()),
            results: Vec::new(),
        };
        let now = now_ms();
        let not_before = now + RETRY_BACKOFF_MS * job.attempts as i64;
        self.catalog.finish_job(
            job.id,
            state,
            not_before,
            now,
            &self.seal_job(job.id, &body)?,
        )?;
        self.record(
            Actor::System(super::SystemActor::Worker),
            "job.fail",
            vec![job.item.clone()],
            None,
            Outcome::Refused,
            Some(format!("job {} attempt {}: {error}", job.id, job.attempts)),
        )?;
        Ok(state)
    }

    /// Every job (operator view).
    pub fn jobs(&self) -> Result<Vec<Job>> {
        self.catalog
            .job_rows()?
            .into_iter()
            .map(|r| self.open_job(r))
            .collect()
    }

    /// The newest job of `kind` on `item`: job bodies are opened newest first, and only
    /// until it is found (a page that follows a running job asks every few seconds).
    pub(super) fn newest_job_on(&self, item: &str, kind: &str) -> Result<Option<Job>> {
        for row in self.catalog.job_rows()?.into_iter().rev() {
            let job = self.open_job(row)?;
            if job.item == item && job.kind == kind {
                return Ok(Some(job));
            }
        }
        Ok(None)
    }

    /// One job.
    pub fn job(&self, id: i64) -> Result<Option<Job>> {
        self.catalog.job(id)?.map(|r| self.open_job(r)).transpose()
    }

    /// The job list as `actor` may see it, audited: a principal sees the
    /// jobs it queued; the operator sees every job.
    pub fn list_jobs(&mut self, actor: &Actor) -> Result<Vec<Job>> {
        let jobs = match actor {
            Actor::Principal(name) => {
                if let Err(e) = self.principal(name) {
                    return Err(self.refuse(actor, "job.list", vec![], None, e));
                }
                self.jobs_of(name)?
            }
            _ => self.jobs()?,
        };
        self.record(
            actor.clone(),
            "job.list",
            jobs.iter()
                .map(|j| format!("job {}", j.id))
                .take(500)
                .collect(),
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(jobs)
    }

    /// The jobs a principal queued (what the API shows them).
    pub fn jobs_of(&self, principal: &str) -> Result<Vec<Job>> {
        Ok(self
            .jobs()?
            .into_iter()
            .filter(|j| j.principal == principal)
            .collect())
    }

    /// Ids of items already derived from `source` by `derivation`. System path for workers,
    /// which must not make the same derived item twice after a restart.
    pub fn derived_by(&mut self, source: &str, derivation: &str) -> Result<Vec<String>> {
        let Some(row) = self.catalog.item(source)? else {
            return Ok(Vec::new());
        };
        let Some(coll) = self
            .collections()?
            .into_iter()
            .find(|c| c.id.0 == row.collection_id)
        else {
            return Ok(Vec::new());
        };
        let tag = self.lineage_tag(&coll.agency, source)?;
        let mut out = Vec::new();
        for child in self.catalog.derived_from(&tag)? {
            let (meta, _) = self.open_meta(&child)?;
            if meta.derivation.as_deref() == Some(derivation) {
                out.push(meta.id);
            }
        }
        Ok(out)
    }
}
