//! The durable job queue: work the platform does on items after ingest (transcription first).
//!
//! A job is a row in the catalog, so it survives restarts and commits with the same durability
//! as the items. What it concerns (item, principal, error text) is sealed like every other catalog
//! record; only scheduling state is in the clear. A worker claims a job with a lease; a worker
//! that dies (SIGKILL, power) simply lets the lease lapse and the next claim takes the job again,
//! so a job runs to completion exactly once as long as its effect is idempotent (the worker checks
//! for its derived items before making them).

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use crate::catalog::SqliteCatalog;
use crate::error::Result;

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs(
  id INTEGER PRIMARY KEY,
  state TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  max_attempts INTEGER NOT NULL,
  not_before_ms INTEGER NOT NULL,
  lease_until_ms INTEGER NOT NULL DEFAULT 0,
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  progress REAL NOT NULL DEFAULT 0,
  sealed BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS jobs_ready ON jobs(state, not_before_ms);
CREATE TABLE IF NOT EXISTS job_partials(
  job INTEGER PRIMARY KEY,
  sealed BLOB NOT NULL);
";

/// The job kind that turns a recording into a transcript and a translation: queued by ingest
/// (`bletchley-index`), run by the speech worker (`bletchley-ai`).
pub const TRANSCRIBE: &str = "transcribe";

/// The job kind that runs an agency's Sigma rules over an event log and stores each
/// detection as an alert derived from it: queued by ingest (`bletchley-index`), run by
/// `bletchley-detect`'s job through the worker.
pub const DETECT: &str = "detect";

/// The job kind that runs the rules again over a log already hunted (`detect run`): it stores
/// only the alerts the log does not have yet, so rules added since find what they would have
/// found, and nothing is stored twice.
pub const DETECT_AGAIN: &str = "detect-again";

/// The job kind that embeds an item's text (and a transcript's or translation's) for semantic
/// search: queued by ingest when the operator turned semantic search on, run by the worker
/// with the sentence-embedding model the setting names.
pub const EMBED: &str = "embed";

/// The job kind that translates a document into English as a derived item (`translation`,
/// as a recording's is): queued by ingest when the operator turned translation on, run by the
/// worker with Apertium when the document's language has a pair into English.
pub const TRANSLATE_TEXT: &str = "translate-text";

/// An item with the newest job of a kind on it, as a principal who may read the item sees
/// them ([`crate::Platform::job_on_item`]).
#[derive(Clone, Debug)]
pub struct JobOnItem {
    /// The item's metadata.
    pub meta: crate::ItemMeta,
    /// The newest job of the kind asked for, if any was queued.
    pub job: Option<Job>,
    /// What that job has made so far, while it has not finished.
    pub partial: Option<Vec<u8>>,
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// Waiting for a worker (first time, or retrying after a failure).
    Queued,
    /// A worker holds it (until its lease lapses).
    Running,
    /// Finished; its results exist.
    Done,
    /// Failed as many times as allowed; the error says why.
    Failed,
}

impl JobState {
    /// Whether the job will not run again (done, or failed for good).
    pub fn is_final(self) -> bool {
        matches!(self, JobState::Done | JobState::Failed)
    }

    /// The state's name, as the queue stores and reports it.
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Done => "done",
            JobState::Failed => "failed",
        }
    }
    fn parse(s: &str) -> JobState {
        match s {
            "running" => JobState::Running,
            "done" => JobState::Done,
            "failed" => JobState::Failed,
            _ => JobState::Queued,
        }
    }
}

/// The sealed part of a job.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct JobBody {
    pub kind: String,
    pub item: String,
    pub principal: String,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub results: Vec<String>,
}

/// A job as the queue reports it.
#[derive(Clone, Debug, Serialize)]
pub struct Job {
    /// Queue number.
    pub id: i64,
    /// What to do (`transcribe`).
    pub kind: String,
    /// The item it concerns.
    pub item: String,
    /// Who asked (the ingesting principal; the job reads the item as them).
    pub principal: String,
    /// Where it is.
    pub state: JobState,
    /// Attempts started so far.
    pub attempts: u32,
    /// Attempts allowed.
    pub max_attempts: u32,
    /// 0 to 1.
    pub progress: f32,
    /// Unix milliseconds.
    pub created_ms: i64,
    /// Unix milliseconds of the last change.
    pub updated_ms: i64,
    /// Why the last attempt failed.
    pub error: Option<String>,
    /// Items it produced.
    pub results: Vec<String>,
}

/// A job row before its body is opened.
#[derive(Clone)]
pub(crate) struct JobRow {
    pub id: i64,
    pub state: JobState,
    pub attempts: u32,
    pub max_attempts: u32,
    pub progress: f32,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub sealed: Vec<u8>,
}

const COLS: &str = "id, state, attempts, max_attempts, progress, created_ms, updated_ms, sealed";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<JobRow> {
    Ok(JobRow {
        id: r.get(0)?,
        state: JobState::parse(&r.get::<_, String>(1)?),
        attempts: r.get(2)?,
        max_attempts: r.get(3)?,
        progress: r.get::<_, f64>(4)? as f32,
        created_ms: r.get(5)?,
        updated_ms: r.get(6)?,
        sealed: r.get(7)?,
    })
}

impl SqliteCatalog {
    /// Adds a queued job; the sealed body is written after the id is known (it is bound to it).
    pub(crate) fn insert_job(&self, max_attempts: u32, now: i64) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO jobs(state, max_attempts, not_before_ms, created_ms, updated_ms, sealed) VALUES('queued', ?1, ?2, ?2, ?2, x'')",
            params![max_attempts, now],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Adds `n` queued jobs in one transaction (one commit, not two a job), each with the
    /// body `seal` makes for its id: no worker ever sees a job without its body.
    pub(crate) fn insert_jobs(
        &self,
        max_attempts: u32,
        now: i64,
        n: usize,
        seal: &mut dyn FnMut(usize, i64) -> Result<Vec<u8>>,
    ) -> Result<Vec<i64>> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let mut ids = Vec::with_capacity(n);
        for k in 0..n {
            tx.execute(
                "INSERT INTO jobs(state, max_attempts, not_before_ms, created_ms, updated_ms, sealed) VALUES('queued', ?1, ?2, ?2, ?2, x'')",
                params![max_attempts, now],
            )?;
            let id = tx.last_insert_rowid();
            let sealed = seal(k, id)?;
            tx.execute(
                "UPDATE jobs SET sealed = ?2 WHERE id = ?1",
                params![id, sealed],
            )?;
            ids.push(id);
        }
        tx.commit()?;
        Ok(ids)
    }

    pub(crate) fn set_job_body(&self, id: i64, sealed: &[u8]) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET sealed = ?2 WHERE id = ?1",
            params![id, sealed],
        )?;
        Ok(())
    }

    /// Takes the oldest ready job (queued and due, or running with a lapsed lease) in one
    /// statement, so two workers never take the same one.
    pub(crate) fn claim_job(&self, now: i64, lease_ms: i64) -> Result<Option<JobRow>> {
        let sql = format!(
            "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until_ms = ?1 + ?2, updated_ms = ?1
             WHERE id = (SELECT id FROM jobs
                         WHERE (state = 'queued' AND not_before_ms <= ?1)
                            OR (state = 'running' AND lease_until_ms < ?1)
                         ORDER BY id LIMIT 1)
             RETURNING {COLS}"
        );
        Ok(self
            .conn
            .query_row(&sql, params![now, lease_ms], row)
            .optional()?)
    }

    /// Takes ready jobs, oldest first, in one transaction: each candidate goes to `accept`,
    /// which says whether it joins the batch; the first one refused ends it (and is left
    /// queued). At most `max`.
    pub(crate) fn claim_jobs(
        &self,
        now: i64,
        lease_ms: i64,
        max: usize,
        accept: &mut dyn FnMut(&JobRow, usize) -> Result<bool>,
    ) -> Result<Vec<JobRow>> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        let candidates: Vec<JobRow> = {
            let mut st = tx.prepare_cached(&format!(
                "SELECT {COLS} FROM jobs
                 WHERE (state = 'queued' AND not_before_ms <= ?1)
                    OR (state = 'running' AND lease_until_ms < ?1)
                 ORDER BY id LIMIT ?2"
            ))?;
            st.query_map(params![now, max as i64], row)?
                .collect::<rusqlite::Result<_>>()?
        };
        let mut taken = Vec::new();
        for c in candidates {
            if !accept(&c, taken.len())? {
                break;
            }
            let r = tx.query_row(
                &format!(
                    "UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_until_ms = ?2 + ?3, updated_ms = ?2
                     WHERE id = ?1 RETURNING {COLS}"
                ),
                params![c.id, now, lease_ms],
                row,
            )?;
            taken.push(r);
        }
        tx.commit()?;
        Ok(taken)
    }

    /// Finishes several jobs in one transaction: (id, state, not_before, sealed body).
    pub(crate) fn finish_jobs(
        &self,
        now: i64,
        jobs: &[(i64, JobState, i64, Vec<u8>)],
    ) -> Result<()> {
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        for (id, state, not_before, sealed) in jobs {
            let progress = if *state == JobState::Done { 1.0 } else { 0.0 };
            tx.execute(
                "UPDATE jobs SET state = ?2, not_before_ms = ?3, lease_until_ms = 0, updated_ms = ?4, sealed = ?5, progress = ?6 WHERE id = ?1",
                params![id, state.as_str(), not_before, now, sealed, progress],
            )?;
            if state.is_final() {
                tx.execute("DELETE FROM job_partials WHERE job = ?1", [id])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Records progress and extends the lease of a running job.
    pub(crate) fn job_heartbeat(
        &self,
        id: i64,
        progress: f32,
        now: i64,
        lease_ms: i64,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET progress = ?2, lease_until_ms = ?3 + ?4, updated_ms = ?3 WHERE id = ?1 AND state = 'running'",
            params![id, progress as f64, now, lease_ms],
        )?;
        Ok(())
    }

    pub(crate) fn finish_job(
        &self,
        id: i64,
        state: JobState,
        not_before: i64,
        now: i64,
        sealed: &[u8],
    ) -> Result<()> {
        self.finish_jobs(now, &[(id, state, not_before, sealed.to_vec())])
    }

    /// Keeps what a running job has produced so far (sealed by the platform), in place of
    /// what it had before; only while the job is running.
    pub(crate) fn set_job_partial(&self, id: i64, sealed: &[u8]) -> Result<()> {
        self.conn.execute(
            "INSERT INTO job_partials(job, sealed) SELECT id, ?2 FROM jobs WHERE id = ?1 AND state = 'running'
             ON CONFLICT(job) DO UPDATE SET sealed = excluded.sealed",
            params![id, sealed],
        )?;
        Ok(())
    }

    /// What a job has produced so far, as sealed.
    pub(crate) fn job_partial(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row(
                "SELECT sealed FROM job_partials WHERE job = ?1",
                [id],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Puts a running job back in the queue until `not_before`, its attempt not counted
    /// (the worker could not run that kind; the job did not fail).
    pub(crate) fn defer_job(&self, id: i64, not_before: i64, now: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0), not_before_ms = ?2, lease_until_ms = 0, updated_ms = ?3
             WHERE id = ?1 AND state = 'running'",
            params![id, not_before, now],
        )?;
        Ok(())
    }

    pub(crate) fn job(&self, id: i64) -> Result<Option<JobRow>> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {COLS} FROM jobs WHERE id = ?1"), [id], row)
            .optional()?)
    }

    pub(crate) fn job_rows(&self) -> Result<Vec<JobRow>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLS} FROM jobs ORDER BY id"))?;
        let rows = st
            .query_map([], row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}
