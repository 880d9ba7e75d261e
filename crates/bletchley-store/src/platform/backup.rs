//! Backup and restore: the data directory copied, as sealed as it rests, to a place in an
//! allowed jurisdiction, and brought back whole into an empty directory.
//!
//! A backup directory holds every sealed object once, named by the SHA-256 of its sealed
//! bytes, and one generation per run: a consistent snapshot of the catalog, the key files
//! (passphrase-sealed), the audit log and the server's sealed TLS key, with a manifest of
//! every file's and object's SHA-256 under a MAC that only the platform key computes. A
//! later run copies only the objects it has not copied before (objects are never rewritten:
//! a name is used once), so a backup is incremental; older generations stay until pruned,
//! so that a ransomware run that destroys the live directory and its newest backup still
//! leaves the ones before. Nothing in a backup is plaintext.
//!
//! What is restored opens through [`Platform::open`] and its integrity checks like any data
//! directory; the manifest's MAC lets `restore` refuse an altered backup before it writes
//! anything.

use super::*;

use crate::catalog::Catalog as _;

/// The file that marks a backup directory, with the platform it belongs to.
const MARKER: &str = "bletchley-backup";

/// The backup format this version writes and reads.
const BACKUP_FORMAT: u32 = 1;

/// The MAC's domain, under the catalog key.
const MANIFEST_MAC: &str = "bletchley backup manifest";

/// Objects read and written at once.
const OBJECT_BATCH: usize = 64;

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Manifest {
    format: u32,
    /// The platform's origin (its audit log's name): a backup holds one platform only.
    origin: String,
    created_ms: i64,
    /// The data directory backed up: local locations under it move with a restore.
    root: PathBuf,
    /// Where the backup rests, as the operator declared it.
    jurisdiction: String,
    items: u64,
    files: Vec<FileEntry>,
    objects: Vec<ObjectEntry>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct FileEntry {
    /// Relative to the data directory, `/`-separated.
    path: String,
    sha256: String,
    size: u64,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct ObjectEntry {
    /// The location's name in the catalog.
    location: String,
    /// The object's name in that location.
    name: String,
    sha256: String,
    size: u64,
}

/// What a backup run wrote.
#[derive(Clone, Debug, serde::Serialize)]
pub struct BackupReport {
    /// The generation's name (its directory under `generations/`).
    pub generation: String,
    /// Items in the snapshot.
    pub items: u64,
    /// Objects the generation refers to.
    pub objects: usize,
    /// Of those, how many this run copied (the rest were in the backup already).
    pub objects_copied: usize,
    /// Bytes of objects this run copied.
    pub bytes_copied: u64,
    /// Files (catalog, keys, audit log, TLS) in the generation.
    pub files: usize,
    /// Older generations removed by `keep`.
    pub pruned: Vec<String>,
}

/// What a restore brought back.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RestoreReport {
    /// The generation restored.
    pub generation: String,
    /// When it was taken (Unix milliseconds).
    pub created_ms: i64,
    /// Items in it.
    pub items: u64,
    /// Objects put back.
    pub objects: usize,
    /// Local locations that now rest somewhere else, by name.
    pub relocated: Vec<(String, PathBuf)>,
}

fn hex_sha(bytes: &[u8]) -> String {
    hex::encode(bletchley_crypto::sha256(bytes))
}

fn manifest_mac(keys: &PlatformKeys, json: &[u8]) -> String {
    hex::encode(keyed_tag(&keys.catalog, MANIFEST_MAC, json))
}

/// Writes `bytes` at `path` durably (a temporary beside it, synced, renamed).
fn write_durable(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    bletchley_crypto::keyfile::write_atomic(path, bytes)?;
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

/// Files of the data directory a generation keeps: all but the catalog (snapshotted),
/// the derived search index, the objects of local locations (copied as objects), and
/// what is rewritten on open (locks, SQLite's side files).
fn data_files(root: &Path, skip_dirs: &[PathBuf]) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let e = e.map_err(io(&dir))?;
            let p = e.path();
            let ty = e.file_type().map_err(io(&p))?;
            let rel = p
                .strip_prefix(root)
                .map_err(|_| {
                    Error::Layout(format!("{} is outside the data directory", p.display()))
                })?
                .to_string_lossy()
                .replace('\\', "/");
            if ty.is_dir() {
                if rel != "index" && !skip_dirs.iter().any(|s| s == &p) {
                    stack.push(p);
                }
            } else if ty.is_file()
                && !matches!(
                    rel.as_str(),
                    "catalog.db" | "catalog.db-wal" | "catalog.db-shm" | "audit/lock"
                )
                && !rel.ends_with(".tmp")
            {
                out.push((rel, p));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Refuses a relative path a manifest names if it could climb out of where it is joined.
fn safe_relative(rel: &str) -> Result<&str> {
    let ok = !rel.is_empty()
        && !rel.starts_with('/')
        && rel
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != ".." && !c.contains('\\'));
    if ok {
        Ok(rel)
    } else {
        Err(Error::Damaged(format!(
            "the backup's manifest names the path {rel:?}, which is not a plain relative path"
        )))
    }
}

fn object_file(dest: &Path, sha: &str) -> Result<PathBuf> {
    if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Damaged(format!(
            "the backup's manifest names the object {sha:?}, which is not a SHA-256"
        )));
    }
    Ok(dest.join("objects").join(&sha[..2]).join(sha))
}

/// The generations in a backup, oldest first.
fn generations(dest: &Path) -> Result<Vec<String>> {
    let dir = dest.join("generations");
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(&dir).map_err(io(&dir))? {
        let e = e.map_err(io(&dir))?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('g') && e.path().join("manifest.json").exists() {
            out.push(name);
        }
    }
    out.sort();
    Ok(out)
}

fn read_manifest(gen_dir: &Path) -> Result<(Vec<u8>, Manifest)> {
    let p = gen_dir.join("manifest.json");
    let json = std::fs::read(&p).map_err(io(&p))?;
    let m: Manifest = serde_json::from_slice(&json)
        .map_err(|e| Error::Damaged(format!("{} is not a backup manifest: {e}", p.display())))?;
    if m.format != BACKUP_FORMAT {
        return Err(Error::Layout(format!(
            "{} is backup format {}; this version reads format {BACKUP_FORMAT}",
            p.display(),
            m.format
        )));
    }
    Ok((json, m))
}

/// Checks a generation's MAC, then every file and object it names against its SHA-256.
fn verify_generation(dest: &Path, gen_dir: &Path, keys: &PlatformKeys) -> Result<Manifest> {
    let (json, m) = read_manifest(gen_dir)?;
    let p = gen_dir.join("manifest.mac");
    let mac = std::fs::read_to_string(&p).map_err(io(&p))?;
    if !bletchley_crypto::constant_time_eq(
        mac.trim().as_bytes(),
        manifest_mac(keys, &json).as_bytes(),
    ) {
        return Err(Error::Damaged(format!(
            "the backup generation {} was altered: its manifest's MAC does not verify under this platform's key",
            gen_dir.display()
        )));
    }
    for f in &m.files {
        let p = gen_dir.join("files").join(safe_relative(&f.path)?);
        let bytes = std::fs::read(&p).map_err(io(&p))?;
        if bytes.len() as u64 != f.size || hex_sha(&bytes) != f.sha256 {
            return Err(Error::Damaged(format!(
                "the backup's file {} was altered or truncated",
                f.path
            )));
        }
    }
    for o in &m.objects {
        let p = object_file(dest, &o.sha256)?;
        let bytes = std::fs::read(&p).map_err(io(&p))?;
        if bytes.len() as u64 != o.size || hex_sha(&bytes) != o.sha256 {
            return Err(Error::Damaged(format!(
                "the backup's copy of object {} (location {}) was altered or truncated",
                o.name, o.location
            )));
        }
    }
    Ok(m)
}

fn marker_text(origin: &str) -> String {
    format!("{MARKER} {BACKUP_FORMAT}\norigin {origin}\n")
}

fn marker_origin(dest: &Path) -> Result<Option<String>> {
    let p = dest.join(MARKER);
    if !p.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&p).map_err(io(&p))?;
    text.lines()
        .find_map(|l| l.strip_prefix("origin "))
        .map(|o| Some(o.trim().to_owned()))
        .ok_or_else(|| Error::Layout(format!("{} is not a Bletchley backup marker", p.display())))
}

impl Platform {
    /// Backs the data directory up into `dest`, which rests in `jurisdiction`: every item's
    /// residency rules must allow that place (rule 3), or nothing is written. Incremental
    /// (objects already in the backup are not copied again) and verified (every file and
    /// object written is read back and checked). `keep`, when given, removes all but the
    /// newest `keep` generations afterwards, and the objects only they referred to.
    pub fn backup(
        &mut self,
        dest: &Path,
        jurisdiction: &Jurisdiction,
        keep: Option<usize>,
    ) -> Result<BackupReport> {
        let dest = std::path::absolute(dest).map_err(io(dest))?;
        let root = std::path::absolute(&self.root).map_err(io(&self.root))?;
        let locations = self.locations()?;
        let local_dirs: Vec<PathBuf> = locations
            .iter()
            .filter_map(|l| match &l.spec {
                LocationSpec::Local { path } => Some(path.clone()),
                LocationSpec::S3 { .. } => None,
            })
            .collect();
        if dest.starts_with(&root)
            || root.starts_with(&dest)
            || local_dirs
                .iter()
                .any(|d| dest.starts_with(d) || d.starts_with(&dest))
        {
            return Err(Error::Invalid(format!(
                "{} overlaps the data directory or one of its locations: a backup must rest apart from what it backs up",
                dest.display()
            )));
        }
        if keep == Some(0) {
            return Err(Error::Invalid(
                "--keep 0 would remove the backup just made".into(),
            ));
        }
        self.check_backup_residency(jurisdiction)?;
        let origin = self
            .catalog
            .meta("origin")?
            .ok_or_else(|| Error::Layout("the catalog lacks the platform's origin".into()))?;
        match marker_origin(&dest)? {
            Some(o) if o != origin => {
                return Err(Error::Invalid(format!(
                    "{} holds backups of another platform ({o}): choose another directory",
                    dest.display()
                )));
            }
            Some(_) => {}
            None => {
                if dest.exists()
                    && std::fs::read_dir(&dest)
                        .map_err(io(&dest))?
                        .next()
                        .is_some()
                {
                    return Err(Error::Invalid(format!(
                        "{} is neither empty nor a Bletchley backup",
                        dest.display()
                    )));
                }
                write_durable(&dest.join(MARKER), marker_text(&origin).as_bytes())?;
            }
        }
        // What an earlier generation copied need not be copied again.
        let mut known: HashMap<(String, String), (String, u64)> = HashMap::new();
        if let Some(last) = generations(&dest)?.last() {
            let (_, m) = read_manifest(&dest.join("generations").join(last))?;
            for o in m.objects {
                if object_file(&dest, &o.sha256)?.exists() {
                    known.insert((o.location, o.name), (o.sha256, o.size));
                }
            }
        }
        // Recorded first, so that the generation holds the entry of its own making.
        self.record(
            Actor::Operator,
            "platform.backup",
            vec![dest.display().to_string(), jurisdiction.to_string()],
            None,
            Outcome::Allowed,
            None,
        )?;
        let generation = format!("g{:015}", now_ms());
        let gens = dest.join("generations");
        let tmp = gens.join(format!(".tmp-{generation}"));
        let made = self.write_generation(
            &dest,
            &tmp,
            &root,
            &local_dirs,
            &origin,
            jurisdiction,
            &locations,
            known,
        );
        let (manifest, copied, bytes) = match made {
            Ok(m) => m,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let final_dir = gens.join(&generation);
        std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
        sync_dir(&gens)?;
        // Read back what was written, through the same check a restore makes.
        verify_generation(&dest, &final_dir, &self.keys)?;
        let pruned = match keep {
            Some(k) => prune(&dest, k)?,
            None => Vec::new(),
        };
        Ok(BackupReport {
            generation,
            items: manifest.items,
            objects: manifest.objects.len(),
            objects_copied: copied,
            bytes_copied: bytes,
            files: manifest.files.len(),
            pruned,
        })
    }

    /// Every item may rest in `j`, by the residency rules that apply to it.
    fn check_backup_residency(&mut self, j: &Jurisdiction) -> Result<()> {
        let collections: HashMap<u32, Collection> = self
            .collections()?
            .into_iter()
            .map(|c| (c.id.0, c))
            .collect();
        let mut decided: HashMap<(u32, String), bool> = HashMap::new();
        let mut refused: Vec<String> = Vec::new();
        let mut count = 0usize;
        for id in self.catalog.item_ids()? {
            let Some(row) = self.catalog.item(&id)? else {
                continue;
            };
            let (_, marking) = self.open_meta(&row)?;
            let class = marking.classification().as_str().to_owned();
            let key = (row.collection_id, class.clone());
            let ok = match decided.get(&key) {
                Some(ok) => *ok,
                None => {
                    let coll = collections.get(&row.collection_id).ok_or_else(|| {
                        Error::Damaged(format!("item {id} lies in no known collection"))
                    })?;
                    let rules = self.allowed_rules(&coll.agency, coll.id, &class)?;
                    let refs: Vec<&[Jurisdiction]> = rules.iter().map(|r| r.as_slice()).collect();
                    let ok = residency::allowed(j, &refs);
                    if !ok {
                        refused.push(format!("{}/{} at {class}", coll.agency, coll.name));
                    }
                    decided.insert(key, ok);
                    ok
                }
            };
            if !ok {
                count += 1;
            }
        }
        if count > 0 {
            return Err(Error::Invalid(format!(
                "residency refused: {count} items may not rest in {j} ({}); nothing was written",
                refused.join(", ")
            )));
        }
        Ok(())
    }

    /// Writes one generation into `tmp`: files and the catalog under the audit log's lock,
    /// then the objects the snapshot refers to.
    #[allow(clippy::too_many_arguments)]
    fn write_generation(
        &mut self,
        dest: &Path,
        tmp: &Path,
        root: &Path,
        local_dirs: &[PathBuf],
        origin: &str,
        jurisdiction: &Jurisdiction,
        locations: &[Location],
        known: HashMap<(String, String), (String, u64)>,
    ) -> Result<(Manifest, usize, u64)> {
        let files_dir = tmp.join("files");
        std::fs::create_dir_all(&files_dir).map_err(io(&files_dir))?;
        let snapshot = files_dir.join("catalog.db");
        let catalog = &self.catalog;
        let taken: Result<Vec<FileEntry>> = self.audit.while_locked(|| {
            catalog.snapshot(&snapshot)?;
            let mut files = Vec::new();
            for (rel, path) in data_files(root, local_dirs)? {
                let bytes = std::fs::read(&path).map_err(io(&path))?;
                write_durable(&files_dir.join(&rel), &bytes)?;
                files.push(FileEntry {
                    path: rel,
                    sha256: hex_sha(&bytes),
                    size: bytes.len() as u64,
                });
            }
            Ok(files)
        })?;
        let mut files = taken?;
        // The objects the snapshot refers to: read from the snapshot itself, so that the
        // generation is whole whatever was stored or shredded since. (Opening it may
        // rewrite its header: it is hashed after.)
        let snap = SqliteCatalog::open(&snapshot, false)?;
        let contents = snap.contents()?;
        let items = snap.item_ids()?.len() as u64;
        drop(snap);
        for side in ["catalog.db-wal", "catalog.db-shm"] {
            let _ = std::fs::remove_file(files_dir.join(side));
        }
        let snap_bytes = std::fs::read(&snapshot).map_err(io(&snapshot))?;
        files.push(FileEntry {
            path: "catalog.db".into(),
            sha256: hex_sha(&snap_bytes),
            size: snap_bytes.len() as u64,
        });
        let by_id: HashMap<i64, &Location> = locations.iter().map(|l| (l.id, l)).collect();
        let mut wanted: BTreeSet<(String, String)> = BTreeSet::new();
        for c in &contents {
            let loc = by_id.get(&c.location_id).ok_or_else(|| {
                Error::Layout(format!(
                    "the catalog names unknown location {}",
                    c.location_id
                ))
            })?;
            let name = c.packed.as_ref().map_or(&c.object, |p| &p.pack);
            wanted.insert((loc.name.clone(), name.clone()));
        }
        let mut objects = Vec::with_capacity(wanted.len());
        let mut to_copy: HashMap<String, Vec<String>> = HashMap::new();
        for (loc, name) in wanted {
            match known.get(&(loc.clone(), name.clone())) {
                Some((sha, size)) => objects.push(ObjectEntry {
                    location: loc,
                    name,
                    sha256: sha.clone(),
                    size: *size,
                }),
                None => to_copy.entry(loc).or_default().push(name),
            }
        }
        let (mut copied, mut bytes) = (0usize, 0u64);
        for (loc_name, names) in to_copy {
            let loc = locations
                .iter()
                .find(|l| l.name == loc_name)
                .ok_or_else(|| Error::Layout(format!("location {loc_name} vanished")))?;
            let opened = loc.open()?;
            for chunk in names.chunks(OBJECT_BATCH) {
                let wanted: Vec<(
                    &crate::location::ObjectLocation,
                    &str,
                    Option<std::ops::Range<u64>>,
                )> = chunk.iter().map(|n| (&opened, n.as_str(), None)).collect();
                let got = crate::location::ObjectLocation::get_many(&self.rt, &wanted).map_err(|e| {
                    Error::Invalid(format!(
                        "an object the catalog snapshot refers to could not be read from location {loc_name} ({e}); if items were shredded meanwhile, run the backup again"
                    ))
                })?;
                for (name, data) in chunk.iter().zip(got) {
                    let sha = hex_sha(&data);
                    let path = object_file(dest, &sha)?;
                    if !path.exists() {
                        write_durable(&path, &data)?;
                        copied += 1;
                        bytes += data.len() as u64;
                    }
                    objects.push(ObjectEntry {
                        location: loc_name.clone(),
                        name: name.clone(),
                        sha256: sha,
                        size: data.len() as u64,
                    });
                }
            }
        }
        objects.sort_by(|a, b| (&a.location, &a.name).cmp(&(&b.location, &b.name)));
        let manifest = Manifest {
            format: BACKUP_FORMAT,
            origin: origin.to_owned(),
            created_ms: now_ms(),
            root: root.to_path_buf(),
            jurisdiction: jurisdiction.to_string(),
            items,
            files,
            objects,
        };
        let json = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::Layout(format!("manifest: {e}")))?;
        write_durable(
            &tmp.join("manifest.mac"),
            manifest_mac(&self.keys, &json).as_bytes(),
        )?;
        write_durable(&tmp.join("manifest.json"), &json)?;
        Ok((manifest, copied, bytes))
    }

    /// Restores a generation of the backup at `src` (the newest when `generation` is
    /// `None`) into `root`, which must be empty or absent: the backup is checked whole
    /// first (the manifest's MAC under the platform key, every file and object against its
    /// SHA-256), then the files are written, the platform opened with its own integrity
    /// checks, local locations that lay under the old data directory (or named in `remap`)
    /// pointed at their new place, and every object put back where its location says.
    /// Items shredded after the generation was taken come back with it: the restore is
    /// audited, and the overseer sees when the log was cut back.
    pub fn restore(
        src: &Path,
        root: &Path,
        generation: Option<&str>,
        remap: &[(String, PathBuf)],
        unlock: Box<dyn Unlock>,
    ) -> Result<(Platform, RestoreReport)> {
        if root.exists() && std::fs::read_dir(root).map_err(io(root))?.next().is_some() {
            return Err(Error::Exists {
                kind: "directory (a restore goes into an empty one)",
                name: root.display().to_string(),
            });
        }
        if marker_origin(src)?.is_none() {
            return Err(Error::Layout(format!(
                "{} is not a Bletchley backup (no {MARKER} file)",
                src.display()
            )));
        }
        let gens = generations(src)?;
        let generation = match generation {
            Some(g) if gens.iter().any(|x| x == g) => g.to_owned(),
            Some(g) => {
                return Err(Error::Unknown {
                    kind: "backup generation",
                    name: g.to_owned(),
                });
            }
            None => gens.last().cloned().ok_or_else(|| {
                Error::Layout(format!("{} holds no complete generation", src.display()))
            })?,
        };
        let gen_dir = src.join("generations").join(&generation);
        let kf = open_keyfile(
            &gen_dir.join("files").join("keys"),
            &KeyName::Platform,
            unlock.as_ref(),
        )?;
        let keys = PlatformKeys::from_keyfile(&kf)?;
        let manifest = verify_generation(src, &gen_dir, &keys)?;
        let existed = root.exists();
        let r = restore_into(src, &gen_dir, root, &generation, &manifest, remap, unlock);
        if r.is_err() {
            // Leave nothing half-restored behind.
            if existed {
                if let Ok(entries) = std::fs::read_dir(root) {
                    for e in entries.flatten() {
                        let p = e.path();
                        let _ = if p.is_dir() {
                            std::fs::remove_dir_all(&p)
                        } else {
                            std::fs::remove_file(&p)
                        };
                    }
                }
            } else {
                let _ = std::fs::remove_dir_all(root);
            }
        }
        r
    }

    /// Points a local location somewhere else, as a restore does; audited.
    fn move_location(&mut self, loc: &Location, to: &Path) -> Result<()> {
        let spec = LocationSpec::Local {
            path: to.to_path_buf(),
        };
        self.record(
            Actor::Operator,
            "location.move",
            vec![loc.name.clone(), to.display().to_string()],
            None,
            Outcome::Allowed,
            None,
        )?;
        self.catalog.set_location_spec(
            loc.id,
            &serde_json::to_string(&spec).map_err(|e| Error::Layout(e.to_string()))?,
        )
    }
}

fn restore_into(
    src: &Path,
    gen_dir: &Path,
    root: &Path,
    generation: &str,
    manifest: &Manifest,
    remap: &[(String, PathBuf)],
    unlock: Box<dyn Unlock>,
) -> Result<(Platform, RestoreReport)> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    let new_root = std::path::absolute(root).map_err(io(root))?;
    for f in &manifest.files {
        let rel = safe_relative(&f.path)?;
        let from = gen_dir.join("files").join(rel);
        let bytes = std::fs::read(&from).map_err(io(&from))?;
        // Checked again as it is copied: the backup could change after the first check.
        if hex_sha(&bytes) != f.sha256 {
            return Err(Error::Damaged(format!(
                "the backup's file {} changed during the restore",
                f.path
            )));
        }
        write_durable(&root.join(rel), &bytes)?;
    }
    let mut p = Platform::open(root, unlock)?;
    let mut relocated = Vec::new();
    for loc in p.locations()? {
        let LocationSpec::Local { path } = &loc.spec else {
            continue;
        };
        let to = match remap.iter().find(|(n, _)| n == &loc.name) {
            Some((_, to)) => Some(std::path::absolute(to).map_err(io(to))?),
            None => path
                .strip_prefix(&manifest.root)
                .ok()
                .map(|rest| new_root.join(rest)),
        };
        if let Some(to) = to
            && &to != path
        {
            p.move_location(&loc, &to)?;
            relocated.push((loc.name.clone(), to));
        }
    }
    for (name, _) in remap {
        if !p.locations()?.iter().any(|l| &l.name == name) {
            return Err(Error::Unknown {
                kind: "location",
                name: name.clone(),
            });
        }
    }
    let locations = p.locations()?;
    let mut by_loc: HashMap<&str, Vec<&ObjectEntry>> = HashMap::new();
    for o in &manifest.objects {
        by_loc.entry(o.location.as_str()).or_default().push(o);
    }
    for (loc_name, objects) in by_loc {
        let loc = locations
            .iter()
            .find(|l| l.name == loc_name)
            .ok_or_else(|| {
                Error::Damaged(format!("the backup names unknown location {loc_name}"))
            })?;
        let opened = loc.open()?;
        for chunk in objects.chunks(OBJECT_BATCH) {
            let mut batch = Vec::with_capacity(chunk.len());
            for o in chunk {
                let from = object_file(src, &o.sha256)?;
                let bytes = std::fs::read(&from).map_err(io(&from))?;
                if hex_sha(&bytes) != o.sha256 {
                    return Err(Error::Damaged(format!(
                        "the backup's copy of object {} changed during the restore",
                        o.name
                    )));
                }
                batch.push((o.name.clone(), bytes));
            }
            opened.put_many(&p.rt, batch)?;
        }
    }
    p.record(
        Actor::Operator,
        "platform.restore",
        vec![src.display().to_string(), generation.to_owned()],
        None,
        Outcome::Allowed,
        None,
    )?;
    Ok((
        p,
        RestoreReport {
            generation: generation.to_owned(),
            created_ms: manifest.created_ms,
            items: manifest.items,
            objects: manifest.objects.len(),
            relocated,
        },
    ))
}

/// Removes all but the newest `keep` generations, then every object no remaining
/// generation refers to.
fn prune(dest: &Path, keep: usize) -> Result<Vec<String>> {
    let gens = generations(dest)?;
    let cut = gens.len().saturating_sub(keep);
    let (old, kept) = gens.split_at(cut);
    let mut live: BTreeSet<String> = BTreeSet::new();
    for g in kept {
        let (_, m) = read_manifest(&dest.join("generations").join(g))?;
        live.extend(m.objects.into_iter().map(|o| o.sha256));
    }
    for g in old {
        let d = dest.join("generations").join(g);
        std::fs::remove_dir_all(&d).map_err(io(&d))?;
    }
    let objects = dest.join("objects");
    if objects.exists() {
        for fan in std::fs::read_dir(&objects).map_err(io(&objects))? {
            let fan = fan.map_err(io(&objects))?.path();
            if !fan.is_dir() {
                continue;
            }
            for e in std::fs::read_dir(&fan).map_err(io(&fan))? {
                let p = e.map_err(io(&fan))?.path();
                let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
                if name.is_some_and(|n| !live.contains(&n)) {
                    std::fs::remove_file(&p).map_err(io(&p))?;
                }
            }
        }
    }
    Ok(old.to_vec())
}

/// A generation of a backup, as its manifest says (checked only when restored).
#[derive(Clone, Debug, serde::Serialize)]
pub struct GenerationInfo {
    /// Its name: what `restore --generation` takes.
    pub name: String,
    /// When it was taken (Unix milliseconds).
    pub created_ms: i64,
    /// Where the backup declared it rests.
    pub jurisdiction: String,
    /// Items in it.
    pub items: u64,
    /// Objects it refers to.
    pub objects: usize,
}

/// The complete generations of the backup at `src`, oldest first.
pub fn backup_generations(src: &Path) -> Result<Vec<GenerationInfo>> {
    if marker_origin(src)?.is_none() {
        return Err(Error::Layout(format!(
            "{} is not a Bletchley backup (no {MARKER} file)",
            src.display()
        )));
    }
    generations(src)?
        .into_iter()
        .map(|name| {
            let (_, m) = read_manifest(&src.join("generations").join(&name))?;
            Ok(GenerationInfo {
                name,
                created_ms: m.created_ms,
                jurisdiction: m.jurisdiction,
                items: m.items,
                objects: m.objects.len(),
            })
        })
        .collect()
}
