//! The platform's owner: one thread holds the `Platform` (one SQLite
//! connection, one audit writer) and the search index, and runs requests'
//! work in turn. Async handlers send it closures and await the answer, so
//! the store is never touched from two threads and never from inside the
//! async runtime (the store runs its own runtime for object storage).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use bletchley_index::SearchIndex;
use bletchley_store::Platform;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// What the worker owns.
pub struct State {
    /// The platform.
    pub platform: Platform,
    /// The sealed search index, reconciled before each use.
    pub index: SearchIndex,
}

impl State {
    /// Brings the index up to date with the catalog.
    pub fn sync(&mut self) -> Result<(), ApiError> {
        bletchley_index::access::sync(&mut self.platform, &mut self.index).map_err(ApiError::from)
    }
}

type Job = Box<dyn FnOnce(&mut State) + Send>;

/// A handle for sending work to the owner thread.
#[derive(Clone)]
pub struct Worker {
    tx: mpsc::Sender<Job>,
    counts: Arc<Counts>,
}

/// What the owner thread has been given and has finished, for `/metrics`.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    done: AtomicU64,
}

impl Worker {
    /// Starts the owner thread with `state`.
    pub fn start(state: State) -> Worker {
        let (tx, rx) = mpsc::channel::<Job>();
        let counts = Arc::new(Counts::default());
        let finished = counts.clone();
        std::thread::Builder::new()
            .name("bletchley-platform".into())
            .spawn(move || {
                let mut state = state;
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                    finished.done.fetch_add(1, Ordering::Relaxed);
                }
            })
            .expect("spawning the platform thread");
        Worker { tx, counts }
    }

    /// Work waiting for or running on the owner thread now.
    pub fn waiting(&self) -> u64 {
        let sent = self.counts.sent.load(Ordering::Relaxed);
        sent.saturating_sub(self.counts.done.load(Ordering::Relaxed))
    }

    /// Work the owner thread has finished since the server started.
    pub fn finished(&self) -> u64 {
        self.counts.done.load(Ordering::Relaxed)
    }

    /// Runs `f` on the owner thread and returns its result.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut State) -> Result<T, ApiError> + Send + 'static,
    {
        let (done, wait) = oneshot::channel();
        let job: Job = Box::new(move |s: &mut State| {
            // A panic in one request's work must not take the platform
            // thread down with it.
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(s)))
                .unwrap_or_else(|_| Err(ApiError::internal("request handler panicked")));
            let _ = done.send(r);
        });
        self.tx
            .send(job)
            .map_err(|_| ApiError::internal("platform thread stopped"))?;
        self.counts.sent.fetch_add(1, Ordering::Relaxed);
        wait.await
            .map_err(|_| ApiError::internal("platform thread stopped"))?
    }
}
