//! A tantivy `Directory` whose files rest sealed (rule 2).
//!
//! Every index file is sealed with the streaming AEAD under the index key,
//! bound to its file name, and written atomically; reads open a file whole
//! and keep the plaintext in memory for the life of the process. The disk
//! never holds a plaintext byte of the index.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use bletchley_crypto::{SecretKey, stream};
use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, Directory, DirectoryLock, FileHandle, FileSlice, Lock, TerminatingWrite,
    WatchCallback, WatchCallbackList, WatchHandle, WritePtr,
};

/// The sealed index directory.
#[derive(Clone)]
pub struct SealedDirectory {
    inner: Arc<Inner>,
}

struct Inner {
    root: PathBuf,
    key: SecretKey,
    cache: RwLock<HashMap<PathBuf, FileSlice>>,
    writers: Mutex<HashSet<PathBuf>>,
    watchers: WatchCallbackList,
}

impl fmt::Debug for SealedDirectory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedDirectory({})", self.inner.root.display())
    }
}

fn context(path: &Path) -> Vec<u8> {
    format!("bletchley-index:{}", path.display()).into_bytes()
}

fn to_io(e: bletchley_crypto::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl SealedDirectory {
    /// Opens (creating) the directory at `root`, sealed under `key`.
    pub fn open(root: &Path, key: SecretKey) -> io::Result<SealedDirectory> {
        std::fs::create_dir_all(root)?;
        Ok(SealedDirectory {
            inner: Arc::new(Inner {
                root: root.to_owned(),
                key,
                cache: RwLock::new(HashMap::new()),
                writers: Mutex::new(HashSet::new()),
                watchers: WatchCallbackList::default(),
            }),
        })
    }

    fn disk(&self, path: &Path) -> PathBuf {
        self.inner.root.join(path)
    }

    fn persist(&self, path: &Path, data: Vec<u8>) -> io::Result<()> {
        let sealed = stream::seal(&self.inner.key, &context(path), &data).map_err(to_io)?;
        bletchley_crypto::keyfile::write_atomic(&self.disk(path), &sealed)
            .map_err(|e| io::Error::other(e.to_string()))?;
        if let Ok(mut c) = self.inner.cache.write() {
            c.insert(path.to_owned(), FileSlice::from(data));
        }
        Ok(())
    }

    fn load(&self, path: &Path) -> Result<FileSlice, OpenReadError> {
        if let Some(f) = self
            .inner
            .cache
            .read()
            .ok()
            .and_then(|c| c.get(path).cloned())
        {
            return Ok(f);
        }
        let disk = self.disk(path);
        let sealed = match std::fs::read(&disk) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(OpenReadError::FileDoesNotExist(path.to_owned()));
            }
            Err(e) => {
                return Err(OpenReadError::IoError {
                    io_error: Arc::new(e),
                    filepath: path.to_owned(),
                });
            }
        };
        let plain = stream::open(&self.inner.key, &context(path), &sealed).map_err(|e| {
            OpenReadError::IoError {
                io_error: Arc::new(to_io(e)),
                filepath: path.to_owned(),
            }
        })?;
        let slice = FileSlice::from(plain);
        if let Ok(mut c) = self.inner.cache.write() {
            c.insert(path.to_owned(), slice.clone());
        }
        Ok(slice)
    }
}

struct SealingWriter {
    dir: SealedDirectory,
    path: PathBuf,
    data: Vec<u8>,
}

impl Write for SealingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SealingWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let data = std::mem::take(&mut self.data);
        self.dir.persist(&self.path, data)?;
        if let Ok(mut w) = self.dir.inner.writers.lock() {
            w.remove(&self.path);
        }
        Ok(())
    }
}

impl Drop for SealingWriter {
    fn drop(&mut self) {
        if let Ok(mut w) = self.dir.inner.writers.lock() {
            w.remove(&self.path);
        }
    }
}

/// Holds an OS file lock; dropping it releases the lock.
struct FileLockGuard(#[allow(dead_code)] std::fs::File);

impl Directory for SealedDirectory {
    fn get_file_handle(&self, path: &Path) -> Result<Arc<dyn FileHandle>, OpenReadError> {
        Ok(Arc::new(self.load(path)?))
    }

    fn open_read(&self, path: &Path) -> Result<FileSlice, OpenReadError> {
        self.load(path)
    }

    fn delete(&self, path: &Path) -> Result<(), DeleteError> {
        if let Ok(mut c) = self.inner.cache.write() {
            c.remove(path);
        }
        match std::fs::remove_file(self.disk(path)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                Err(DeleteError::FileDoesNotExist(path.to_owned()))
            }
            Err(e) => Err(DeleteError::IoError {
                io_error: Arc::new(e),
                filepath: path.to_owned(),
            }),
        }
    }

    fn exists(&self, path: &Path) -> Result<bool, OpenReadError> {
        if self
            .inner
            .cache
            .read()
            .map(|c| c.contains_key(path))
            .unwrap_or(false)
        {
            return Ok(true);
        }
        Ok(self.disk(path).exists())
    }

    fn open_write(&self, path: &Path) -> Result<WritePtr, OpenWriteError> {
        if self.exists(path).unwrap_or(false) {
            return Err(OpenWriteError::FileAlreadyExists(path.to_owned()));
        }
        let mut w = self
            .inner
            .writers
            .lock()
            .map_err(|_| OpenWriteError::IoError {
                io_error: Arc::new(io::Error::other("poisoned")),
                filepath: path.to_owned(),
            })?;
        if !w.insert(path.to_owned()) {
            return Err(OpenWriteError::FileAlreadyExists(path.to_owned()));
        }
        drop(w);
        Ok(BufWriter::new(Box::new(SealingWriter {
            dir: self.clone(),
            path: path.to_owned(),
            data: Vec::new(),
        })))
    }

    fn atomic_read(&self, path: &Path) -> Result<Vec<u8>, OpenReadError> {
        // The atomic files (meta.json, .managed.json) are the index's state:
        // another process (the command line beside the server) may have
        // committed since this one cached them, so they are read from disk.
        if let Ok(mut c) = self.inner.cache.write() {
            c.remove(path);
        }
        let f = self.load(path)?;
        f.read_bytes()
            .map(|b| b.as_slice().to_vec())
            .map_err(|e| OpenReadError::IoError {
                io_error: Arc::new(e),
                filepath: path.to_owned(),
            })
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.persist(path, data.to_vec())?;
        if path == Path::new("meta.json") {
            drop(self.inner.watchers.broadcast());
        }
        Ok(())
    }

    fn sync_directory(&self) -> io::Result<()> {
        std::fs::File::open(&self.inner.root)?.sync_all()
    }

    fn watch(&self, cb: WatchCallback) -> tantivy::Result<WatchHandle> {
        Ok(self.inner.watchers.subscribe(cb))
    }

    fn acquire_lock(&self, lock: &Lock) -> Result<DirectoryLock, LockError> {
        // Real OS locks, so a crashed process never leaves the index locked.
        let p = self
            .inner
            .root
            .join(format!("{}.oslock", lock.filepath.display()));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&p)
            .map_err(LockError::wrap_io_error)?;
        if lock.is_blocking {
            f.lock().map_err(LockError::wrap_io_error)?;
        } else {
            match f.try_lock() {
                Ok(()) => {}
                Err(std::fs::TryLockError::WouldBlock) => return Err(LockError::LockBusy),
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(LockError::wrap_io_error(e));
                }
            }
        }
        Ok(DirectoryLock::from(Box::new(FileLockGuard(f))))
    }
}
