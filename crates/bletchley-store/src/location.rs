//! Locations: where sealed bytes rest, each in one jurisdiction, reached
//! through the `object_store` crate.

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

impl ObjectLocation {
    /// Writes an object and returns only once it is durable.
    pub fn put(&self, rt: &tokio::runtime::Runtime, name: &str, bytes: Vec<u8>) -> Result<()> {
        self.put_many(rt, vec![(name.to_owned(), bytes)])
    }

    /// Writes objects and returns only once all are durable: for a local
    /// directory each file is fsynced, then each directory it touched once
    /// (the object store renames a staged file into place but does not sync).
    pub fn put_many(
        &self,
        rt: &tokio::runtime::Runtime,
        objects: Vec<(String, Vec<u8>)>,
    ) -> Result<()> {
        let mut dirs = std::collections::BTreeSet::new();
        for (name, bytes) in objects {
            rt.block_on(self.store.put(&key(&name), PutPayload::from(bytes)))?;
            if let Some(root) = &self.local_root {
                let file = root.join(&name);
                std::fs::File::open(&file)
                    .and_then(|f| f.sync_all())
                    .map_err(io(&file))?;
                let mut dir = file.parent().map(PathBuf::from);
                while let Some(d) = dir {
                    let at_root = &d == root;
                    dirs.insert(d.clone());
                    if at_root {
                        break;
                    }
                    dir = d.parent().map(PathBuf::from);
                }
            }
        }
        // Deepest first, so each directory entry is durable before its parent's.
        let mut dirs: Vec<PathBuf> = dirs.into_iter().collect();
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for d in dirs {
            std::fs::File::open(&d)
                .and_then(|f| f.sync_all())
                .map_err(io(&d))?;
        }
        Ok(())
    }

    /// Reads an object whole.
    pub fn get(&self, rt: &tokio::runtime::Runtime, name: &str) -> Result<Vec<u8>> {
        rt.block_on(async {
            let r = self.store.get(&key(name)).await?;
            Ok::<_, Error>(r.bytes().await?.to_vec())
        })
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
