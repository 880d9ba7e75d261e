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
    /// The embedding model and vector index, loaded at the first semantic search.
    pub semantic: Option<Semantic>,
}

/// What semantic search needs, kept between requests.
pub struct Semantic {
    /// The platform's embedding model, for query vectors.
    pub model: bletchley_ai::embed::SentenceModel,
    /// Its vector index.
    pub index: bletchley_index::semantic::SemanticIndex,
}

impl State {
    /// The platform and its search index.
    pub fn new(platform: Platform, index: SearchIndex) -> State {
        State {
            platform,
            index,
            semantic: None,
        }
    }

    /// Brings the index up to date with the catalog.
    pub fn sync(&mut self) -> Result<(), ApiError> {
        bletchley_index::access::sync(&mut self.platform, &mut self.index).map_err(ApiError::from)
    }

    /// The platform, its search index and its semantic state, loaded and synced
    /// ([`Self::load_semantic`]), apart so that a search can use all three.
    pub fn semantic_parts(
        &mut self,
    ) -> Result<(&mut Platform, &SearchIndex, &mut Semantic), ApiError> {
        self.load_semantic()?;
        match &mut self.semantic {
            Some(sem) => Ok((&mut self.platform, &self.index, sem)),
            None => Err(ApiError::internal("semantic search state missing")),
        }
    }

    /// The embedding model and vector index of the platform's semantic setting, loaded if
    /// needed (again if the operator changed the model) and brought up to the catalog.
    pub fn load_semantic(&mut self) -> Result<(), ApiError> {
        let Some(name) = self.platform.semantic_model()? else {
            return Err(ApiError::bad_request(
                "semantic search is off on this platform: the operator turns it on with `bletchley semantic enable`",
            ));
        };
        let current = self
            .semantic
            .as_ref()
            .is_some_and(|s| s.index.model() == name);
        if !current {
            self.semantic = None;
            let dir = bletchley_ai::models::embedding_model_dir(
                &bletchley_ai::models::dir_from_env(),
                &name,
            )
            .map_err(|e| ApiError::internal(&e.to_string()))?;
            let model = bletchley_ai::embed::SentenceModel::load(&dir)
                .map_err(|e| ApiError::internal(&format!("loading {}: {e}", dir.display())))?;
            let index =
                bletchley_index::semantic::open_synced(&mut self.platform, &name, model.dim())?;
            self.semantic = Some(Semantic { model, index });
        }
        match &mut self.semantic {
            Some(s) => Ok(bletchley_index::semantic::sync(
                &mut self.platform,
                &mut s.index,
            )?),
            None => Err(ApiError::internal("semantic search state missing")),
        }
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
