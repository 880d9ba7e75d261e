//! Indexing a bulk ingest while it is stored.
//!
//! Without this, items stored by `bletchley ingest` are indexed by the first
//! search after it, which reads each of them back from the store, decrypts
//! it and only then indexes it: two passes, one after the other. The feeder
//! takes each batch's plaintext from the platform as it is stored
//! ([`Platform::feed_from`]) and indexes it on threads of its own while the
//! next batch is sealed and written, so that when the ingest ends its items
//! are already searchable.
//!
//! Reconciling ([`crate::access::sync`]) stays the source of truth. The
//! feeder's commits record the catalog's items generation only when the
//! platform says that nothing but this ingest changed the items since the
//! index last held exactly the catalog's items; otherwise the next search
//! reconciles as before. If another process commits to the index meanwhile,
//! the feeder stops adding (what it had not committed is left to that
//! reconcile) rather than risk indexing an item twice.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bletchley_audit::Outcome;
use bletchley_policy::Nation;
use bletchley_store::{Actor, Fed, Platform};
use tantivy::{Index, IndexWriter};

use crate::schema::Fields;
use crate::search::{CommitMark, add_documents, commit_at, writer};
use crate::{Error, Result, SearchIndex};

/// How long the feeder holds the index's writer before committing and
/// letting it go: other processes' commits (a server's reconcile) wait at
/// most about this long, and each commit is a segment of the index.
const CHUNK: Duration = Duration::from_secs(5);

/// Batches stored but not yet indexed, at most: bounds the plaintext held in
/// memory when indexing is slower than storing.
const IN_FLIGHT: usize = 2;

/// Indexes what a platform stores while it stores it. Start it, call
/// [`IndexFeeder::feed`] after each store, [`IndexFeeder::finish`] at the
/// end. Dropped without `finish` (an ingest that failed part-way), it still
/// commits what it was given: those items were stored.
pub struct IndexFeeder {
    batches: Option<SyncSender<Fed>>,
    worker: Option<JoinHandle<Indexed>>,
    start: CommitMark,
}

/// What the indexing thread did.
struct Indexed {
    /// Its last commit, if it made one.
    last: Option<CommitMark>,
    /// Ids of the items its commits added.
    added: Vec<String>,
    /// Why it stopped adding before the end, if it did.
    stopped: Option<Error>,
}

/// What a feeder indexed, for the ingest to report.
#[derive(Debug)]
pub struct FeedReport {
    /// Items added to the index and committed.
    pub indexed: usize,
    /// Why some items were left to the next search's reconcile, if any
    /// were: another process writing to the index, or an indexing failure.
    pub left_to_reconcile: Option<Error>,
}

impl IndexFeeder {
    /// Reconciles `index`, turns feeding on in `p` and starts the indexing
    /// thread.
    pub fn start(p: &mut Platform, index: &mut SearchIndex) -> Result<IndexFeeder> {
        // From an index that holds exactly the catalog's items (whatever an
        // earlier ingest left to reconcile is added now), so that the chain
        // of this ingest's commits starts from a known generation.
        crate::access::sync(p, index)?;
        p.feed_from(index.synced_generation());
        let (idx, f, home, start) = index.feeder_parts();
        let (tx, rx) = sync_channel(IN_FLIGHT);
        let from = start.clone();
        let worker = std::thread::Builder::new()
            .name("index-feeder".into())
            .spawn(move || run(rx, idx, f, home, from))
            .map_err(Error::Read)?;
        Ok(IndexFeeder {
            batches: Some(tx),
            worker: Some(worker),
            start,
        })
    }

    /// Hands what `p` stored since the last call to the indexing thread;
    /// waits while [`IN_FLIGHT`] batches are already waiting.
    pub fn feed(&mut self, p: &mut Platform) {
        let fed = p.take_fed();
        if let Some(tx) = &self.batches {
            // A send fails only once the thread has ended; what it did not
            // index, the next reconcile will.
            let _ = tx.send(fed);
        }
    }

    /// Indexes the rest, commits, turns feeding off in `p` and brings
    /// `index` up to the feeder's commits.
    pub fn finish(mut self, p: &mut Platform, index: &mut SearchIndex) -> Result<FeedReport> {
        self.feed(p);
        p.stop_feeding();
        let out = self.join()?;
        let indexed = out.added.len();
        if indexed > 0 {
            // As a reconcile records what it read for the index.
            let mut targets = out.added.clone();
            targets.truncate(500);
            p.record(
                Actor::System(bletchley_store::SystemActor::Indexer),
                "index.sync",
                targets,
                None,
                Outcome::Allowed,
                Some(format!("{indexed} added as they were stored")),
            )?;
        }
        match out.last {
            Some(last) => index.adopt_feed(&self.start, last, out.added)?,
            None => index.catch_up()?,
        }
        Ok(FeedReport {
            indexed,
            left_to_reconcile: out.stopped,
        })
    }

    fn join(&mut self) -> Result<Indexed> {
        self.batches = None;
        match self.worker.take() {
            Some(w) => w
                .join()
                .map_err(|_| Error::Query("the indexing thread panicked".into())),
            None => Ok(Indexed {
                last: None,
                added: Vec::new(),
                stopped: None,
            }),
        }
    }
}

impl Drop for IndexFeeder {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// The indexing thread: adds each batch as it comes, committing every
/// [`CHUNK`] and at the end.
fn run(batches: Receiver<Fed>, index: Index, f: Fields, home: Nation, from: CommitMark) -> Indexed {
    let mut chunk = Chunk {
        index,
        seen: from,
        writer: None,
        started: Instant::now(),
        ids: Vec::new(),
        generation: None,
    };
    let mut out = Indexed {
        last: None,
        added: Vec::new(),
        stopped: None,
    };
    for fed in batches {
        if out.stopped.is_some() {
            // Drained, so the storing side never waits on a thread that
            // no longer indexes.
            continue;
        }
        let step = chunk.add(&f, home, fed).and_then(|()| {
            if chunk.started.elapsed() >= CHUNK {
                chunk.commit(&mut out, false)
            } else {
                Ok(())
            }
        });
        if let Err(e) = step {
            chunk.abandon();
            out.stopped = Some(e);
        }
    }
    // The last commit merges. If the last batch's chunk was committed
    // already, a writer is taken again for the merge alone; everything was
    // indexed, so if that fails (another process committed since), the
    // merge is left for a later commit rather than reported.
    if out.stopped.is_none() && chunk.writer.is_none() && out.last.is_some() {
        let _ = chunk.open();
    }
    if out.stopped.is_none()
        && let Err(e) = chunk.commit(&mut out, true)
    {
        chunk.abandon();
        out.stopped = Some(e);
    }
    out
}

/// Documents added since the last commit, and the writer that holds them.
struct Chunk {
    index: Index,
    /// The last commit on disk this thread knows of: its own, or the one it
    /// started from.
    seen: CommitMark,
    writer: Option<IndexWriter>,
    started: Instant,
    ids: Vec<String>,
    generation: Option<u64>,
}

impl Chunk {
    fn add(&mut self, f: &Fields, home: Nation, fed: Fed) -> Result<()> {
        self.open()?;
        let Some(w) = &self.writer else {
            return Ok(());
        };
        add_documents(w, f, home, &fed.items)?;
        self.ids.extend(fed.items.into_iter().map(|it| it.meta.id));
        self.generation = fed.generation;
        Ok(())
    }

    /// Takes the writer unless this chunk holds it already.
    fn open(&mut self) -> Result<()> {
        if self.writer.is_none() {
            let w = writer(&self.index, 1)?;
            // A merge started by a chunk's commit would outlive the chunk's
            // writer and be thrown away with it, while still running beside
            // the next chunk: at a million documents that repeated the same
            // large merges over and over (4x slower, 17 GB). Chunks only
            // add; the last commit merges, and waits for it.
            w.set_merge_policy(Box::new(tantivy::indexer::NoMergePolicy));
            // With the writer's lock held no one else can commit: if
            // someone did since `seen`, items of this ingest may be in the
            // index already.
            let metas = self.index.load_metas()?;
            if (metas.opstamp, metas.payload) != self.seen {
                return Err(Error::Behind);
            }
            self.writer = Some(w);
            self.started = Instant::now();
        }
        Ok(())
    }

    /// Commits the chunk and lets the writer go; the last one first merges
    /// segments as tantivy's default policy would, and waits for that.
    fn commit(&mut self, out: &mut Indexed, last: bool) -> Result<()> {
        let Some(mut w) = self.writer.take() else {
            return Ok(());
        };
        if last {
            w.set_merge_policy(Box::new(tantivy::indexer::LogMergePolicy::default()));
        }
        self.seen = commit_at(&mut w, self.generation)?;
        // A merge keeps the commit's opstamp and payload.
        w.wait_merging_threads()?;
        out.last = Some(self.seen.clone());
        out.added.append(&mut self.ids);
        Ok(())
    }

    /// Drops what was not committed: the writer's drop discards it.
    fn abandon(&mut self) {
        self.writer = None;
        self.ids.clear();
    }
}
