//! Partial downloads at a field site, sealed at rest: each received chunk is appended as a
//! sealed record (key derived from the platform key, bound to the item and the chunk's place),
//! so a cut link resumes at the last whole chunk and no plaintext byte rests on disk.

use std::io::Write;
use std::path::{Path, PathBuf};

use bletchley_crypto::{Context, SecretKey, record};

use crate::error::{Error, Result};

/// Where partial downloads rest.
pub struct Staging {
    dir: PathBuf,
    key: SecretKey,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Io {
        path: path.display().to_string(),
        source: e,
    }
}

fn aad(id: &str, offset: u64) -> Vec<u8> {
    format!("sync staging:{id}:{offset}").into_bytes()
}

impl Staging {
    /// Staging under `dir` (created when needed) with `key`.
    pub fn new(dir: PathBuf, key: SecretKey) -> Staging {
        Staging { dir, key }
    }

    fn path(&self, id: &str) -> PathBuf {
        // Item ids are UUIDs; anything else is refused before it names a file.
        self.dir.join(format!("{id}.part"))
    }

    fn check_id(id: &str) -> Result<()> {
        if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
        {
            return Err(Error::Protocol(format!(
                "an item id {id:?} that is not a UUID"
            )));
        }
        Ok(())
    }

    /// The whole chunks held for `id`, opened. A torn last record is dropped (and cut off).
    pub fn read(&self, id: &str) -> Result<Vec<u8>> {
        Self::check_id(id)?;
        let path = self.path(id);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut out = Vec::new();
        let mut at = 0usize;
        while at + 4 <= bytes.len() {
            let n = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
                as usize;
            if at + 4 + n > bytes.len() {
                break;
            }
            match record::open(
                &self.key,
                &aad(id, out.len() as u64),
                &bytes[at + 4..at + 4 + n],
                Context::Record,
            ) {
                Ok(chunk) => out.extend_from_slice(&chunk),
                Err(_) => break,
            }
            at += 4 + n;
        }
        if at != bytes.len() {
            let f = std::fs::OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io(&path))?;
            f.set_len(at as u64).map_err(io(&path))?;
            f.sync_all().map_err(io(&path))?;
        }
        Ok(out)
    }

    /// Bytes held for `id`.
    pub fn len(&self, id: &str) -> Result<u64> {
        Ok(self.read(id)?.len() as u64)
    }

    /// Appends the chunk that starts at `offset`, durably.
    pub fn append(&self, id: &str, offset: u64, chunk: &[u8]) -> Result<()> {
        Self::check_id(id)?;
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let sealed = record::seal(&self.key, &aad(id, offset), chunk)?;
        let path = self.path(id);
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io(&path))?;
        let mut rec = (sealed.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(&sealed);
        f.write_all(&rec).map_err(io(&path))?;
        f.sync_all().map_err(io(&path))
    }

    /// Forgets `id`'s chunks.
    pub fn remove(&self, id: &str) -> Result<()> {
        Self::check_id(id)?;
        match std::fs::remove_file(self.path(id)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&self.path(id))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_resume_after_a_torn_write_and_rest_sealed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = SecretKey::generate().expect("key");
        let s = Staging::new(dir.path().join("partial"), key);
        let id = "01a2-beef";
        s.append(id, 0, b"first chunk, ").expect("append");
        s.append(id, 13, b"second chunk").expect("append");
        assert_eq!(s.read(id).expect("read"), b"first chunk, second chunk");
        let path = dir.path().join("partial").join(format!("{id}.part"));
        let raw = std::fs::read(&path).expect("raw");
        assert!(!raw.windows(5).any(|w| w == b"chunk"), "plaintext at rest");
        // A torn write: half a record at the end is cut off, the whole ones stay.
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        f.write_all(&[0, 0, 0, 40, 1, 2, 3]).expect("write");
        drop(f);
        assert_eq!(s.len(id).expect("len"), 25);
        assert_eq!(std::fs::read(&path).expect("raw").len(), raw.len());
        assert!(s.read("../etc/passwd").is_err());
        s.remove(id).expect("remove");
        assert_eq!(s.len(id).expect("len"), 0);
    }
}
