//! Locations: where sealed bytes rest, each in one jurisdiction, reached
//! through the `object_store` crate.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::{Error, Result, io};
use crate::residency::Jurisdiction;

/// How a location is reached.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum LocationSpec {
    /// A local directory.
    Local {
        /// Absolute path.
        path: PathBuf,
    },
    /// An S3-compatible bucket; credentials come from the usual AWS
    /// environment variables.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Region, e.g. `eu-west-2`.
        region: String,
    },
}

/// A configured location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Catalog number.
    pub id: i64,
    /// Operator's name for it.
    pub name: String,
    /// Where it is.
    pub jurisdiction: Jurisdiction,
    /// How to reach it.
    pub spec: LocationSpec,
    /// Retired locations take no new writes but still serve reads.
    pub retired: bool,
}

/// An opened location.
pub struct ObjectLocation {
    store: Arc<dyn ObjectStore>,
    local_root: Option<PathBuf>,
}

impl Location {
    /// Connects to the location.
    pub fn open(&self) -> Result<ObjectLocation> {
        match &self.spec {
            LocationSpec::Local { path } => {
                std::fs::create_dir_all(path).map_err(io(path))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(path)?;
                Ok(ObjectLocation {
                    store: Arc::new(fs),
                    local_root: Some(path.clone()),
                })
            }
            LocationSpec::S3 { bucket, region } => {
                let s3 = object_store::aws::AmazonS3Builder::from_env()
                    .with_bucket_name(bucket)
                    .with_region(region)
                    .build()?;
                Ok(ObjectLocation {
                    store: Arc::new(s3),
                    local_root: None,
                })
            }
        }
    }
}

fn key(name: &str) -> ObjectPath {
    ObjectPath::from(name)
}

/// Objects written (or read) at once by [`ObjectLocation::put_many`]
/// ([`ObjectLocation::get_many`]): enough to keep
/// a disk's queue and the blocking pool busy, few enough not to hold many
/// files open.
const CONCURRENT_WRITES: usize = 16;

/// Makes durable everything written under `root` for `names`: one
/// `syncfs` for each filesystem that holds one of the objects' directories
/// (a fan-out directory could be a mount point of its own), and the root's.
fn sync_filesystems(root: &std::path::Path, names: &[String]) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut dirs: std::collections::BTreeSet<PathBuf> = names
        .iter()
        .filter_map(|n| root.join(n).parent().map(PathBuf::from))
        .collect();
    dirs.insert(root.to_path_buf());
    let mut synced = std::collections::BTreeSet::new();
    for d in dirs {
        let dev = std::fs::metadata(&d).map_err(io(&d))?.dev();
        if synced.insert(dev) {
            let f = std::fs::File::open(&d).map_err(io(&d))?;
            rustix::fs::syncfs(&f)
                .map_err(std::io::Error::from)
                .map_err(io(&d))?;
        }
    }
    Ok(())
}

impl ObjectLocation {
    /// Writes an object and returns only once it is durable.
    pub fn put(&self, rt: &tokio::runtime::Runtime, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.put_many(rt, vec![(name.to_owned(), bytes)])
    }

    /// Writes objects and returns only once all are durable.
    ///
    /// The writes run concurrently. For a local directory, durability is
    /// one `syncfs` per filesystem the objects landed on, not an `fsync` per
    /// file and per directory: on a journalling filesystem each `fsync` is a
    /// journal commit of its own, and a batch of 512 small items spent most
    /// of its time waiting for 512 of them (plus one per fan-out directory).
    /// `syncfs` writes back every dirty inode of the filesystem, file data,
    /// the staged files' renames and the new directory entries alike, and
    /// commits the journal once; since Linux 5.8 it reports any writeback
    /// error on that filesystem, as `fsync` does for its file.
    pub fn put_many(
        &self,
        rt: &tokio::runtime::Runtime,
        objects: Vec<(String, Vec<u8>)>,
    ) -> Result<()> {
        use futures::{StreamExt, TryStreamExt};
        let names: Vec<String> = objects.iter().map(|(n, _)| n.clone()).collect();
        let store = &self.store;
        rt.block_on(
            futures::stream::iter(objects.into_iter().map(|(name, bytes)| async move {
                store.put(&key(&name), PutPayload::from(bytes)).await
            }))
            .buffer_unordered(CONCURRENT_WRITES)
            .try_collect::<Vec<_>>(),
        )?;
        if let Some(root) = &self.local_root {
            sync_filesystems(root, &names)?;
        }
        Ok(())
    }

    /// Whether the location answers within `limit`: a metadata request for an object that
    /// need not exist (not found is an answer). `Err` says why not.
    pub fn probe(
        &self,
        rt: &tokio::runtime::Runtime,
        limit: std::time::Duration,
    ) -> std::result::Result<(), String> {
        rt.block_on(async {
            match tokio::time::timeout(limit, self.store.head(&key(".health-probe"))).await {
                Err(_) => Err(format!("no answer within {limit:?}")),
                Ok(Ok(_)) | Ok(Err(object_store::Error::NotFound { .. })) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
            }
        })
    }

    /// Reads an object whole.
    pub fn get(&self, rt: &tokio::runtime::Runtime, name: &str) -> Result<Vec<u8>> {
        rt.block_on(async {
            let r = self.store.get(&key(name)).await?;
            Ok::<_, Error>(r.bytes().await?.to_vec())
        })
    }

    /// Reads bytes `range` of an object (a content in a pack).
    pub fn get_range(
        &self,
        rt: &tokio::runtime::Runtime,
        name: &str,
        range: Range<u64>,
    ) -> Result<Vec<u8>> {
        Ok(rt
            .block_on(self.store.get_range(&key(name), range))?
            .to_vec())
    }

    /// Reads objects, whole or a range of each, each from its location,
    /// several objects at a time; the answers are in the order asked.
    /// Consecutive ranges of one object (the contents of one pack) are read
    /// in one request, which merges adjacent ranges into one read.
    pub fn get_many(
        rt: &tokio::runtime::Runtime,
        wanted: &[(&ObjectLocation, &str, Option<Range<u64>>)],
    ) -> Result<Vec<Vec<u8>>> {
        use futures::{StreamExt, TryStreamExt};
        // Runs of ranges of the same object, and whole objects alone.
        let mut runs: Vec<(&ObjectLocation, &str, Vec<Range<u64>>)> = Vec::new();
        for (loc, name, range) in wanted {
            match (range, runs.last_mut()) {
                (Some(r), Some((l, n, rs)))
                    if std::ptr::eq(*l, *loc) && n == name && !rs.is_empty() =>
                {
                    rs.push(r.clone());
                }
                (Some(r), _) => {
                    runs.push((loc, name, vec![r.clone()]));
                }
                (None, _) => {
                    runs.push((loc, name, Vec::new()));
                }
            }
        }
        let parts: Vec<Vec<Vec<u8>>> = rt.block_on(
            futures::stream::iter(runs.iter().map(|(loc, name, ranges)| async move {
                if ranges.is_empty() {
                    let r = loc.store.get(&key(name)).await?;
                    Ok::<_, Error>(vec![r.bytes().await?.to_vec()])
                } else {
                    let got = loc.store.get_ranges(&key(name), ranges).await?;
                    Ok(got.into_iter().map(|b| b.to_vec()).collect())
                }
            }))
            .buffered(CONCURRENT_WRITES)
            .try_collect(),
        )?;
        Ok(parts.into_iter().flatten().collect())
    }

    /// Deletes an object; a missing object is not an error (shredding twice is
    /// harmless).
    pub fn delete(&self, rt: &tokio::runtime::Runtime, name: &str) -> Result<()> {
        match rt.block_on(self.store.delete(&key(name))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}
