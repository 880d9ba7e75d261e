//! The log on disk and its writer, verifier and reader.
//!
//! Files in the audit directory:
//!
//! | file | holds |
//! |---|---|
//! | `log` | records: `len (u32 BE) || leaf`, leaf = `"BLA2" || seq (u64 BE) || prev leaf hash || time (Unix ms, u64 BE) || session public key || sealed payload || MAC` |
//! | `checkpoint` | the latest signed checkpoint |
//! | `checkpoints` | every checkpoint ever signed, one JSON line each |
//! | `verifier.vkey` | the public verifier key, for `audit verify` |
//! | `lock` | serialises writers across processes |
//!
//! Each leaf carries its sequence number and the hash of the leaf before it,
//! so a deleted, reordered or altered entry is located exactly; the Merkle
//! root in the signed checkpoints covers the whole, so the last entries and
//! truncation are caught too.
//!
//! The payload is sealed to the oversight body's public key, so anyone who
//! holds that key (the host included) could seal a payload. What the host
//! cannot make is the leaf's MAC, under a key derived from the platform's
//! signing key: a writer adopts entries past the last checkpoint (a crash
//! between the log's fsync and the checkpoint) only when their MACs verify,
//! and cuts the rest off, reporting it. `verify`, which needs no secret,
//! refuses any entry that no signed checkpoint covers, and any time stamp
//! that goes backwards.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use bletchley_crypto::keyfile::write_atomic;
use bletchley_crypto::oversight::OversightOpener;
use bletchley_crypto::{
    OversightPublicKey, OversightSealer, OversightSecretKey, SecretKey, SigningKey, keyed_tag,
};

use crate::entry::Entry;
use crate::error::{Error, Result};
use crate::merkle::{Frontier, Hash, leaf_hash};
use crate::note::{Checkpoint, Verifier};

const MAGIC: &[u8; 4] = b"BLA2";
/// The leaf marker of the first format, which had no time stamp in the
/// clear and no MAC: refused with a message that says so.
const OLD_MAGIC: &[u8; 4] = b"BLA1";
const LEAF_HEADER: usize = 4 + 8 + 32 + 8 + 32;
/// Where the time stamp and the session key lie in a leaf.
const TIME_AT: std::ops::Range<usize> = 44..52;
const EPK_AT: std::ops::Range<usize> = 52..84;
/// HMAC-SHA-256 at the end of every leaf.
const MAC_LEN: usize = 32;
const MAX_RECORD: usize = 1 << 20;

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Where the scan of the log stands.
#[derive(Clone, Debug, Default)]
struct Scan {
    offset: u64,
    last_offset: u64,
    next_seq: u64,
    prev: Hash,
    frontier: Frontier,
    /// Time stamp of the last leaf: the next may not be earlier.
    last_time: u64,
}

#[derive(Debug)]
struct ScanFailure {
    entry: u64,
    offset: u64,
    detail: String,
}

/// Walks records from `scan.offset`, checking framing, sequence numbers, the
/// chain and that time stamps never go backwards. `roots_at` collects the
/// root after each listed size; `leaf` sees every good leaf and may refuse
/// it, which ends the scan there.
fn scan(
    bytes: &[u8],
    base: u64,
    scan: &mut Scan,
    roots_wanted: &BTreeSet<u64>,
    roots_at: &mut BTreeMap<u64, Hash>,
    mut leaf: impl FnMut(u64, &[u8]) -> std::result::Result<(), String>,
) -> std::result::Result<(), ScanFailure> {
    if roots_wanted.contains(&scan.next_seq) {
        roots_at.insert(scan.next_seq, scan.frontier.root());
    }
    while ((scan.offset - base) as usize) < bytes.len() {
        let at = (scan.offset - base) as usize;
        let fail = |detail: String| ScanFailure {
            entry: scan.next_seq,
            offset: base + at as u64,
            detail,
        };
        if bytes.len() - at < 4 {
            return Err(fail("record truncated inside its length prefix".into()));
        }
        let len =
            u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        if !(LEAF_HEADER + 16 + MAC_LEN..=MAX_RECORD).contains(&len) {
            return Err(fail(format!(
                "record length {len} is impossible (garbled length prefix)"
            )));
        }
        let Some(leaf_bytes) = bytes.get(at + 4..at + 4 + len) else {
            return Err(fail(format!(
                "record truncated: {len} bytes announced, {} present",
                bytes.len() - at - 4
            )));
        };
        if &leaf_bytes[..4] == OLD_MAGIC {
            return Err(fail(
                "entry is in the first log format, which carries no MAC: this log was written by an earlier version of Bletchley"
                    .into(),
            ));
        }
        if &leaf_bytes[..4] != MAGIC {
            return Err(fail(
                "record does not start with the leaf marker (altered)".into(),
            ));
        }
        let seq = u64::from_be_bytes(leaf_bytes[4..12].try_into().unwrap_or_default());
        if seq != scan.next_seq {
            return Err(fail(format!(
                "sequence number is {seq}, expected {}: an entry was deleted, reordered or altered here",
                scan.next_seq
            )));
        }
        let time = u64::from_be_bytes(leaf_bytes[TIME_AT].try_into().unwrap_or_default());
        if time < scan.last_time {
            return Err(fail(format!(
                "time stamp {time} is earlier than the entry before it ({}): entries were altered or forged",
                scan.last_time
            )));
        }
        if leaf_bytes[12..44] != scan.prev {
            return Err(fail(if seq == 0 {
                "first entry's chain link is not zero (altered)".to_owned()
            } else {
                format!(
                    "chain link does not match entry {}: entry {} or this entry was altered",
                    seq - 1,
                    seq - 1
                )
            }));
        }
        leaf(seq, leaf_bytes).map_err(fail)?;
        scan.last_time = time;
        let h = leaf_hash(leaf_bytes);
        scan.frontier.push(h);
        scan.prev = h;
        scan.next_seq += 1;
        scan.last_offset = base + at as u64;
        scan.offset = base + (at + 4 + len) as u64;
        if roots_wanted.contains(&scan.next_seq) {
            roots_at.insert(scan.next_seq, scan.frontier.root());
        }
    }
    Ok(())
}

/// What a successful verification established.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Report {
    /// Entries in the log.
    pub entries: u64,
    /// Entries covered by the checkpoint checked.
    pub checkpoint_size: u64,
    /// Its root, hex.
    pub root: String,
    /// Historical checkpoints that were also checked.
    pub checkpoints_checked: usize,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Head {
    offset: u64,
    last_offset: u64,
    next_seq: u64,
    prev: String,
    frontier: Vec<(u32, String)>,
    #[serde(default)]
    last_time: u64,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct HistoryLine {
    size: u64,
    note: String,
}

/// An audit log directory.
pub struct AuditLog {
    dir: PathBuf,
}

impl AuditLog {
    /// The log in `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> AuditLog {
        AuditLog { dir: dir.into() }
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Creates an empty log named `origin`, with its verifier key and a signed
    /// checkpoint of size zero.
    pub fn create(&self, origin: &str, signer: &SigningKey) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        let log = self.path("log");
        File::create(&log)
            .and_then(|f| f.sync_all())
            .map_err(io(&log))?;
        let v = Verifier::new(origin, signer.verifying_key());
        write_atomic(
            &self.path("verifier.vkey"),
            format!("{}\n", v.render()).as_bytes(),
        )?;
        let cp = Checkpoint {
            origin: origin.to_owned(),
            size: 0,
            root: Frontier::default().root(),
            extensions: Vec::new(),
        };
        self.publish(&cp, signer)?;
        Ok(())
    }

    /// The verifier key stored beside the log. An overseer should hold its own
    /// copy: whoever can write the disk can replace this one.
    pub fn verifier(&self) -> Result<Verifier> {
        let p = self.path("verifier.vkey");
        Verifier::parse(&std::fs::read_to_string(&p).map_err(io(&p))?)
    }

    /// The latest checkpoint note.
    pub fn checkpoint_note(&self) -> Result<String> {
        let p = self.path("checkpoint");
        std::fs::read_to_string(&p).map_err(io(&p))
    }

    /// The newest checkpoint that verifies with `v`: the stored latest or
    /// a newer one from the history (a host can put an older `checkpoint`
    /// file back; it cannot sign a newer one).
    pub fn newest_checkpoint(&self, v: &Verifier) -> Result<Checkpoint> {
        let latest = Checkpoint::verify(&self.checkpoint_note()?, v)?;
        Ok(self
            .history(v)?
            .into_iter()
            .filter(|c| c.size > latest.size)
            .max_by_key(|c| c.size)
            .unwrap_or(latest))
    }

    fn publish(&self, cp: &Checkpoint, signer: &SigningKey) -> Result<()> {
        let note = cp.sign(signer);
        let hist = self.path("checkpoints");
        let mut line = serde_json::to_string(&HistoryLine {
            size: cp.size,
            note: note.clone(),
        })
        .map_err(|e| Error::Malformed {
            what: "checkpoint",
            reason: e.to_string(),
        })?;
        line.push('\n');
        // A crash mid-append can leave a torn last line; cut it off first so
        // the new line starts on a line of its own.
        if let Ok(old) = std::fs::read(&hist)
            && !old.is_empty()
            && old.last() != Some(&b'\n')
        {
            let keep = old.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let f = OpenOptions::new()
                .write(true)
                .open(&hist)
                .map_err(io(&hist))?;
            f.set_len(keep as u64).map_err(io(&hist))?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&hist)
            .map_err(io(&hist))?;
        f.write_all(line.as_bytes()).map_err(io(&hist))?;
        f.sync_data().map_err(io(&hist))?;
        write_atomic(&self.path("checkpoint"), note.as_bytes())?;
        Ok(())
    }

    fn history(&self, v: &Verifier) -> Result<Vec<Checkpoint>> {
        Ok(self.history_notes(v)?.into_iter().map(|(c, _)| c).collect())
    }

    fn history_notes(&self, v: &Verifier) -> Result<Vec<(Checkpoint, String)>> {
        let p = self.path("checkpoints");
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(io(&p)(e)),
        };
        // A last line without its newline is a torn write from a crash: the
        // checkpoint it held was never published, so it is skipped.
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        let mut out = Vec::new();
        for (i, line) in complete.lines().enumerate() {
            let h: HistoryLine = serde_json::from_str(line).map_err(|e| Error::Malformed {
                what: "checkpoint history",
                reason: format!("line {}: {e}", i + 1),
            })?;
            let cp = Checkpoint::verify(&h.note, v).map_err(|e| Error::Malformed {
                what: "checkpoint history",
                reason: format!("line {}: {e}", i + 1),
            })?;
            out.push((cp, h.note));
        }
        Ok(out)
    }

    fn read_log(&self) -> Result<Vec<u8>> {
        let p = self.path("log");
        std::fs::read(&p).map_err(io(&p))
    }

    fn read_log_from(&self, offset: u64) -> Result<(Vec<u8>, u64)> {
        use std::io::{Read, Seek, SeekFrom};
        let p = self.path("log");
        let mut f = File::open(&p).map_err(io(&p))?;
        let len = f.metadata().map_err(io(&p))?.len();
        if len < offset {
            return Ok((Vec::new(), len));
        }
        f.seek(SeekFrom::Start(offset)).map_err(io(&p))?;
        let mut buf = Vec::with_capacity((len - offset) as usize);
        f.read_to_end(&mut buf).map_err(io(&p))?;
        Ok((buf, len))
    }

    /// The writer's resume point, trusted only if it agrees with the signed
    /// checkpoint and with the last record on disk; otherwise the writer
    /// rescans the whole log.
    fn load_head(&self, cp: &Checkpoint) -> Option<Scan> {
        let h: Head = serde_json::from_slice(&std::fs::read(self.path("head")).ok()?).ok()?;
        let hash = |s: &str| -> Option<Hash> { hex::decode(s).ok()?.try_into().ok() };
        let nodes: Option<Vec<(u32, Hash)>> = h
            .frontier
            .iter()
            .map(|(ht, x)| Some((*ht, hash(x)?)))
            .collect();
        let frontier = Frontier::from_nodes(nodes?)?;
        let st = Scan {
            offset: h.offset,
            last_offset: h.last_offset,
            next_seq: h.next_seq,
            prev: hash(&h.prev)?,
            frontier,
            last_time: h.last_time,
        };
        if st.next_seq != cp.size
            || st.frontier.size() != st.next_seq
            || st.frontier.root() != cp.root
        {
            return None;
        }
        if st.next_seq > 0 {
            let (bytes, _) = self.read_log_from(st.last_offset).ok()?;
            let len = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
            let leaf = bytes.get(4..4 + len)?;
            let seq = u64::from_be_bytes(leaf.get(4..12)?.try_into().ok()?);
            let time = u64::from_be_bytes(leaf.get(TIME_AT)?.try_into().ok()?);
            if st.last_offset + 4 + len as u64 != st.offset
                || leaf_hash(leaf) != st.prev
                || seq + 1 != st.next_seq
                || time != st.last_time
            {
                return None;
            }
        }
        Some(st)
    }

    fn save_head(&self, st: &Scan) {
        // A cache, not a record: no fsync; a stale or torn head only costs a rescan.
        let h = Head {
            offset: st.offset,
            last_offset: st.last_offset,
            next_seq: st.next_seq,
            prev: hex::encode(st.prev),
            frontier: st
                .frontier
                .nodes()
                .iter()
                .map(|(ht, x)| (*ht, hex::encode(x)))
                .collect(),
            last_time: st.last_time,
        };
        if let Ok(text) = serde_json::to_vec(&h) {
            let tmp = self.path("head.tmp");
            if std::fs::write(&tmp, text).is_ok() {
                let _ = std::fs::rename(&tmp, self.path("head"));
            }
        }
    }

    /// Checks the log against a checkpoint using public material only: the
    /// checkpoint (the stored one unless given) and the verifier key (the
    /// stored one unless given). Any flipped, deleted, reordered or truncated
    /// entry fails, with where; so does any entry past the newest signed
    /// checkpoint (given, stored or in the history): nothing vouches for it.
    pub fn verify(&self, checkpoint: Option<&str>, verifier: Option<&Verifier>) -> Result<Report> {
        let stored;
        let v = match verifier {
            Some(v) => v,
            None => {
                stored = self.verifier()?;
                &stored
            }
        };
        let note = match checkpoint {
            Some(n) => n.to_owned(),
            None => self.checkpoint_note()?,
        };
        let cp = Checkpoint::verify(&note, v)?;
        let history = self.history(v)?;
        let mut wanted: BTreeSet<u64> = history.iter().map(|c| c.size).collect();
        wanted.insert(cp.size);
        let bytes = self.read_log()?;
        let mut st = Scan::default();
        let mut roots = BTreeMap::new();
        if let Err(f) = scan(&bytes, 0, &mut st, &wanted, &mut roots, |_, _| Ok(())) {
            return Err(Error::Integrity {
                entry: f.entry,
                offset: f.offset,
                detail: f.detail,
            });
        }
        if st.next_seq < cp.size {
            return Err(Error::Truncated {
                expected: cp.size,
                found: st.next_seq,
            });
        }
        let stored_latest = match checkpoint {
            Some(_) => self
                .checkpoint_note()
                .ok()
                .and_then(|n| Checkpoint::verify(&n, v).ok()),
            None => None,
        };
        let newest = history
            .iter()
            .chain(stored_latest.iter())
            .map(|c| c.size)
            .chain(std::iter::once(cp.size))
            .max()
            .unwrap_or(cp.size);
        if st.next_seq > newest {
            return Err(Error::Unsigned {
                signed: newest,
                found: st.next_seq,
            });
        }
        let mut all: Vec<&Checkpoint> = history.iter().chain(std::iter::once(&cp)).collect();
        all.sort_by_key(|c| c.size);
        let mut good = 0;
        for c in all {
            match roots.get(&c.size) {
                Some(r) if *r == c.root => good = c.size,
                Some(_) => {
                    return Err(Error::RootMismatch {
                        size: c.size,
                        from: good,
                    });
                }
                None => {
                    return Err(Error::Truncated {
                        expected: c.size,
                        found: st.next_seq,
                    });
                }
            }
        }
        Ok(Report {
            entries: st.next_seq,
            checkpoint_size: cp.size,
            root: hex::encode(cp.root),
            checkpoints_checked: history.len(),
        })
    }

    /// The newest checkpoint that verifies with `v`, with its note text (see
    /// [`AuditLog::newest_checkpoint`]).
    pub(crate) fn newest_note(&self, v: &Verifier) -> Result<(Checkpoint, String)> {
        let note = self.checkpoint_note()?;
        let mut best = (Checkpoint::verify(&note, v)?, note);
        for (cp, note) in self.history_notes(v)? {
            if cp.size > best.0.size {
                best = (cp, note);
            }
        }
        Ok(best)
    }

    /// The leaf hashes of entries `0..upto`, each checked as `verify` checks
    /// it, and the raw bytes of the entries in `keep`.
    pub(crate) fn leaf_hashes(
        &self,
        upto: u64,
        keep: &BTreeSet<u64>,
    ) -> Result<(Vec<Hash>, KeptLeaves)> {
        let bytes = self.read_log()?;
        let mut st = Scan::default();
        let mut hashes = Vec::with_capacity(upto as usize);
        let mut kept = BTreeMap::new();
        let r = scan(
            &bytes,
            0,
            &mut st,
            &BTreeSet::new(),
            &mut BTreeMap::new(),
            |seq, leaf| {
                if seq < upto {
                    hashes.push(leaf_hash(leaf));
                    if keep.contains(&seq) {
                        kept.insert(seq, leaf.to_vec());
                    }
                }
                Ok(())
            },
        );
        if let Err(f) = r {
            return Err(Error::Integrity {
                entry: f.entry,
                offset: f.offset,
                detail: f.detail,
            });
        }
        if (hashes.len() as u64) < upto {
            return Err(Error::Truncated {
                expected: upto,
                found: hashes.len() as u64,
            });
        }
        Ok((hashes, kept))
    }

    /// Reads and opens every entry with the oversight secret key.
    pub fn read(&self, sk: &OversightSecretKey) -> Result<Vec<(u64, Entry)>> {
        let bytes = self.read_log()?;
        let mut opener = OversightOpener::new(sk);
        let mut st = Scan::default();
        let mut out = Vec::new();
        let mut failure = None;
        let r = scan(
            &bytes,
            0,
            &mut st,
            &BTreeSet::new(),
            &mut BTreeMap::new(),
            |seq, leaf| {
                if failure.is_some() {
                    return Ok(());
                }
                let mut epk = [0u8; 32];
                epk.copy_from_slice(&leaf[EPK_AT]);
                let time = u64::from_be_bytes(leaf[TIME_AT].try_into().unwrap_or_default());
                let sealed = &leaf[LEAF_HEADER..leaf.len() - MAC_LEN];
                match opener.open(&epk, seq, &leaf[..LEAF_HEADER], sealed) {
                    Ok(pt) => match serde_json::from_slice::<Entry>(&pt) {
                        Ok(e) if e.time_ms as u64 != time => {
                            failure = Some(Error::Integrity {
                                entry: seq,
                                offset: 0,
                                detail: "the sealed time stamp differs from the one in the clear"
                                    .into(),
                            })
                        }
                        Ok(e) => out.push((seq, e)),
                        Err(e) => {
                            failure = Some(Error::Malformed {
                                what: "audit entry",
                                reason: e.to_string(),
                            })
                        }
                    },
                    Err(e) => failure = Some(e.into()),
                }
                Ok(())
            },
        );
        if let Err(f) = r {
            return Err(Error::Integrity {
                entry: f.entry,
                offset: f.offset,
                detail: f.detail,
            });
        }
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(out)
    }

    /// Opens the log for appending. Scans it whole: a damaged entry covered by
    /// a checkpoint refuses the writer (tampering); past the last checkpoint,
    /// entries whose MAC verifies are adopted (written before a crash took
    /// their checkpoint), and the rest — a torn write, or entries the host
    /// forged — are cut off and reported by [`Writer::take_cut`].
    pub fn writer(&self, signer: SigningKey, oversight: &OversightPublicKey) -> Result<Writer> {
        let lock_path = self.path("lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        let verifier = self.verifier()?;
        if verifier.render() != Verifier::new(&verifier.name, signer.verifying_key()).render() {
            return Err(Error::Malformed {
                what: "verifier key",
                reason: "audit/verifier.vkey is not the platform's signing key: it was replaced"
                    .into(),
            });
        }
        let mac_key = leaf_mac_key(&signer);
        let mut w = Writer {
            log: AuditLog {
                dir: self.dir.clone(),
            },
            lock,
            scan: Scan::default(),
            sealer: OversightSealer::new(oversight)?,
            signer,
            origin: verifier.name.clone(),
            verifier,
            mac_key,
            extension: None,
            cut: None,
        };
        w.lock.lock().map_err(io(&lock_path))?;
        let r = w.catch_up();
        let _ = w.lock.unlock();
        r?;
        Ok(w)
    }
}

/// The key of the leaves' MACs: derived from the signing key, which only
/// the platform's key file holds.
fn leaf_mac_key(signer: &SigningKey) -> SecretKey {
    SecretKey::from_bytes(keyed_tag(signer.seed(), "bletchley audit leaf mac", b""))
}

fn leaf_mac(key: &SecretKey, leaf: &[u8]) -> [u8; 32] {
    keyed_tag(key, "bletchley audit leaf", leaf)
}

/// What a writer cut off the log's tail when it opened it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// The first entry number cut.
    pub from_entry: u64,
    /// Bytes cut.
    pub bytes: u64,
    /// Why: a torn record, or an entry whose MAC does not verify.
    pub detail: String,
}

/// Appends entries durably and publishes a signed checkpoint after each batch.
pub struct Writer {
    log: AuditLog,
    lock: File,
    scan: Scan,
    sealer: OversightSealer,
    signer: SigningKey,
    origin: String,
    verifier: Verifier,
    mac_key: SecretKey,
    /// An extension line signed into every checkpoint from now on.
    extension: Option<String>,
    /// A tail cut off since the last [`Writer::take_cut`].
    cut: Option<Cut>,
}

impl Writer {
    /// Brings the in-memory state up to the file (other processes may have
    /// appended); call with the lock held.
    fn catch_up(&mut self) -> Result<()> {
        let cp = Checkpoint::verify(&self.log.checkpoint_note()?, &self.verifier)?;
        if self.scan.next_seq == 0
            && self.scan.offset == 0
            && let Some(h) = self.log.load_head(&cp)
        {
            self.scan = h;
        }
        let (bytes, len) = self.log.read_log_from(self.scan.offset)?;
        if len < self.scan.offset {
            return Err(Error::Truncated {
                expected: self.scan.next_seq,
                found: 0,
            });
        }
        let mut wanted = BTreeSet::new();
        wanted.insert(cp.size);
        let mut roots = BTreeMap::new();
        let mut st = self.scan.clone();
        let mac_key = &self.mac_key;
        let signed = cp.size;
        if let Err(f) = scan(
            &bytes,
            self.scan.offset,
            &mut st,
            &wanted,
            &mut roots,
            |seq, leaf| {
                // No checkpoint vouches for these: only their MAC can.
                let (body, mac) = leaf.split_at(leaf.len() - MAC_LEN);
                if seq >= signed && leaf_mac(mac_key, body)[..] != *mac {
                    return Err("its MAC does not verify: not written by this platform".into());
                }
                Ok(())
            },
        ) {
            if f.entry < cp.size {
                return Err(Error::Integrity {
                    entry: f.entry,
                    offset: f.offset,
                    detail: f.detail,
                });
            }
            // Past the last checkpoint, never acknowledged: a torn write, or
            // entries the host added. Cut off, and reported.
            let p = self.log.path("log");
            let f2 = OpenOptions::new().write(true).open(&p).map_err(io(&p))?;
            f2.set_len(f.offset).map_err(io(&p))?;
            f2.sync_all().map_err(io(&p))?;
            let cut = Cut {
                from_entry: f.entry,
                bytes: len.saturating_sub(f.offset),
                detail: f.detail,
            };
            match &mut self.cut {
                Some(c) => c.bytes += cut.bytes,
                None => self.cut = Some(cut),
            }
        }
        if st.next_seq < cp.size {
            return Err(Error::Truncated {
                expected: cp.size,
                found: st.next_seq,
            });
        }
        if let Some(r) = roots.get(&cp.size)
            && *r != cp.root
        {
            return Err(Error::RootMismatch {
                size: cp.size,
                from: 0,
            });
        }
        self.scan = st;
        Ok(())
    }

    /// Signs `line` (`key value`, one line) into every checkpoint from now
    /// on, or none.
    pub fn set_extension(&mut self, line: Option<String>) {
        self.extension = line.filter(|l| !l.is_empty() && !l.contains('\n'));
    }

    /// What was cut off the tail since the last call, if anything: the
    /// caller records it.
    pub fn take_cut(&mut self) -> Option<Cut> {
        self.cut.take()
    }

    /// Entries in the log.
    pub fn len(&self) -> u64 {
        self.scan.next_seq
    }

    /// Whether the log is empty.
    pub fn is_empty(&self) -> bool {
        self.scan.next_seq == 0
    }

    /// Runs `f` with the log's cross-process lock held: no writer in any process appends
    /// meanwhile, so a copy of the log taken inside `f` and of what the log vouches for
    /// (the catalog, which commits only after its entries are appended) agree.
    pub fn while_locked<R>(&mut self, f: impl FnOnce() -> R) -> Result<R> {
        let lock_path = self.log.path("lock");
        self.lock.lock().map_err(io(&lock_path))?;
        let r = f();
        let _ = self.lock.unlock();
        Ok(r)
    }

    /// Appends `entries`, makes them durable, signs and publishes a checkpoint
    /// covering them, and returns their sequence numbers. When this returns
    /// the entries are acknowledged (rule 6).
    pub fn append(&mut self, entries: &[Entry]) -> Result<Range<u64>> {
        let lock_path = self.log.path("lock");
        self.lock.lock().map_err(io(&lock_path))?;
        let r = self.append_locked(entries);
        let _ = self.lock.unlock();
        r
    }

    fn append_locked(&mut self, entries: &[Entry]) -> Result<Range<u64>> {
        self.catch_up()?;
        let start = self.scan.next_seq;
        let mut buf = Vec::with_capacity(entries.len() * 256);
        let mut st = self.scan.clone();
        for e in entries {
            // Time never runs backwards in the log, whatever the clock does.
            let time = u64::try_from(e.time_ms).unwrap_or(0).max(st.last_time);
            let mut e = e.clone();
            e.time_ms = i64::try_from(time).unwrap_or(i64::MAX);
            let time = e.time_ms as u64;
            let payload = serde_json::to_vec(&e).map_err(|x| Error::Malformed {
                what: "audit entry",
                reason: x.to_string(),
            })?;
            let mut leaf = Vec::with_capacity(LEAF_HEADER + payload.len() + 16 + MAC_LEN);
            leaf.extend_from_slice(MAGIC);
            leaf.extend_from_slice(&st.next_seq.to_be_bytes());
            leaf.extend_from_slice(&st.prev);
            leaf.extend_from_slice(&time.to_be_bytes());
            leaf.extend_from_slice(&self.sealer.ephemeral_public());
            let sealed = self.sealer.seal(st.next_seq, &leaf, &payload)?;
            leaf.extend_from_slice(&sealed);
            let mac = leaf_mac(&self.mac_key, &leaf);
            leaf.extend_from_slice(&mac);
            if leaf.len() > MAX_RECORD {
                return Err(Error::Malformed {
                    what: "audit entry",
                    reason: "larger than 1 MiB".into(),
                });
            }
            buf.extend_from_slice(&(leaf.len() as u32).to_be_bytes());
            buf.extend_from_slice(&leaf);
            let h = leaf_hash(&leaf);
            st.frontier.push(h);
            st.prev = h;
            st.next_seq += 1;
            st.last_time = time;
            st.last_offset = st.offset;
            st.offset += 4 + leaf.len() as u64;
        }
        let p = self.log.path("log");
        let mut f = OpenOptions::new().append(true).open(&p).map_err(io(&p))?;
        f.write_all(&buf).map_err(io(&p))?;
        f.sync_data().map_err(io(&p))?;
        let cp = Checkpoint {
            origin: self.origin.clone(),
            size: st.next_seq,
            root: st.frontier.root(),
            extensions: self.extension.iter().cloned().collect(),
        };
        self.log.publish(&cp, &self.signer)?;
        self.log.save_head(&st);
        self.scan = st;
        Ok(start..self.scan.next_seq)
    }
}

/// Raw leaves kept while hashing, by sequence number.
pub(crate) type KeptLeaves = BTreeMap<u64, Vec<u8>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: usize) -> Entry {
        Entry {
            time_ms: i as i64,
            principal: "p".into(),
            action: "a".into(),
            targets: vec![i.to_string()],
            justification: None,
            outcome: crate::Outcome::Allowed,
            reason: None,
            about: None,
        }
    }

    /// A new log in a temporary directory, its signing seed and the
    /// oversight key its payloads are sealed to.
    fn new_log() -> (tempfile::TempDir, AuditLog, SecretKey, OversightSecretKey) {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::at(dir.path());
        let signer = SigningKey::generate().unwrap();
        let seed = signer.seed().clone();
        log.create("bletchley/t", &signer).unwrap();
        (dir, log, seed, OversightSecretKey::generate().unwrap())
    }

    fn writer(log: &AuditLog, seed: &SecretKey, sk: &OversightSecretKey) -> Writer {
        log.writer(
            SigningKey::from_seed(seed.clone()).unwrap(),
            &sk.public_key(),
        )
        .unwrap()
    }

    #[test]
    fn resumes_after_a_crash_between_log_write_and_checkpoint() {
        let (dir, log, seed, sk) = new_log();
        let mut w = writer(&log, &seed, &sk);
        w.append(&[entry(0), entry(1), entry(2)]).unwrap();
        // Keep the checkpoint and head as they were, append more, then put
        // them back: the log now runs past its checkpoint, as after a crash.
        let cp = std::fs::read(dir.path().join("checkpoint")).unwrap();
        let head = std::fs::read(dir.path().join("head")).unwrap();
        w.append(&[entry(3), entry(4)]).unwrap();
        drop(w);
        std::fs::write(dir.path().join("checkpoint"), cp).unwrap();
        std::fs::write(dir.path().join("head"), head).unwrap();
        let mut w = writer(&log, &seed, &sk);
        assert_eq!(w.len(), 5);
        w.append(&[entry(5)]).unwrap();
        let r = log.verify(None, None).unwrap();
        assert_eq!(r.entries, 6);
        let read = log.read(&sk).unwrap();
        assert_eq!(
            read.iter()
                .map(|(s, e)| (*s, e.targets[0].clone()))
                .collect::<Vec<_>>(),
            (0..6)
                .map(|i| (i as u64, i.to_string()))
                .collect::<Vec<_>>()
        );

        // A torn record past the checkpoint is cut off on the next open.
        let mut bytes = std::fs::read(dir.path().join("log")).unwrap();
        let whole = bytes.len();
        bytes.extend_from_slice(&[0, 0, 1, 0, b'B', b'L']);
        std::fs::write(dir.path().join("log"), &bytes).unwrap();
        let mut w = writer(&log, &seed, &sk);
        assert_eq!(
            std::fs::metadata(dir.path().join("log")).unwrap().len() as usize,
            whole
        );
        w.append(&[entry(6)]).unwrap();
        assert_eq!(log.verify(None, None).unwrap().entries, 7);
    }

    /// Whoever holds only the oversight public key can seal a payload, but
    /// not make the leaf's MAC: such an entry past the checkpoint fails
    /// `verify` and is cut off by the next writer, which reports it.
    #[test]
    fn a_forged_entry_past_the_checkpoint_is_refused_and_cut() {
        let (dir, log, seed, sk) = new_log();
        let mut w = writer(&log, &seed, &sk);
        w.append(&[entry(0), entry(1)]).unwrap();
        drop(w);
        let bytes = std::fs::read(dir.path().join("log")).unwrap();
        let mut st = Scan::default();
        scan(
            &bytes,
            0,
            &mut st,
            &BTreeSet::new(),
            &mut BTreeMap::new(),
            |_, _| Ok(()),
        )
        .unwrap();
        // A well-framed, well-chained, well-sealed leaf with a guessed MAC.
        let sealer = OversightSealer::new(&sk.public_key()).unwrap();
        let mut leaf = Vec::new();
        leaf.extend_from_slice(MAGIC);
        leaf.extend_from_slice(&st.next_seq.to_be_bytes());
        leaf.extend_from_slice(&st.prev);
        leaf.extend_from_slice(&st.last_time.to_be_bytes());
        leaf.extend_from_slice(&sealer.ephemeral_public());
        let payload = serde_json::to_vec(&entry(2)).unwrap();
        let sealed = sealer.seal(st.next_seq, &leaf, &payload).unwrap();
        leaf.extend_from_slice(&sealed);
        leaf.extend_from_slice(&[7u8; MAC_LEN]);
        let mut forged = bytes.clone();
        forged.extend_from_slice(&(leaf.len() as u32).to_be_bytes());
        forged.extend_from_slice(&leaf);
        std::fs::write(dir.path().join("log"), &forged).unwrap();
        assert!(matches!(
            log.verify(None, None),
            Err(Error::Unsigned {
                signed: 2,
                found: 3
            })
        ));
        let mut w = writer(&log, &seed, &sk);
        let cut = w.take_cut().expect("reported");
        assert_eq!(cut.from_entry, 2);
        assert!(cut.detail.contains("MAC"), "{}", cut.detail);
        assert_eq!(std::fs::read(dir.path().join("log")).unwrap(), bytes);
        assert_eq!(w.len(), 2);
        assert_eq!(log.verify(None, None).unwrap().entries, 2);
    }

    /// A time stamp earlier than the entry before it fails verification;
    /// the writer never writes one, whatever the clock says.
    #[test]
    fn time_never_runs_backwards() {
        let (dir, log, seed, sk) = new_log();
        let mut w = writer(&log, &seed, &sk);
        let mut late = entry(0);
        late.time_ms = 5_000;
        let mut early = entry(1);
        early.time_ms = 1_000;
        w.append(&[late, early]).unwrap();
        let read = log.read(&sk).unwrap();
        assert_eq!(read[1].1.time_ms, 5_000, "clamped to the entry before");
        let mut bytes = std::fs::read(dir.path().join("log")).unwrap();
        // The first record's time stamp, in the clear, moved later than the second's.
        bytes[4 + TIME_AT.start..4 + TIME_AT.end].copy_from_slice(&9_000u64.to_be_bytes());
        std::fs::write(dir.path().join("log"), &bytes).unwrap();
        let e = log.verify(None, None).unwrap_err().to_string();
        assert!(e.contains("earlier than the entry before"), "{e}");
    }
}
