//! A field site's side of network replication: pull the hub's log, fetch contents chunk by
//! chunk in order of precedence, apply, acknowledge.
//!
//! - Operations are applied in log order; the acknowledgement sent with every pull is the last
//!   operation whose effect is durable here, so the hub's checkpoint never runs ahead of a
//!   commit at the site.
//! - Contents are fetched most urgent first (FLASH before IMMEDIATE, PRIORITY, ROUTINE; then log
//!   order), one chunk at a time, and the log is pulled again between chunks at least every
//!   `REPULL` so a FLASH item queued during a long ROUTINE transfer overtakes it at the next
//!   chunk boundary. A finished item is stored at once, even ahead of its place in the log.
//! - Chunks are staged sealed at rest; after a cut, the transfer resumes at the last whole
//!   chunk. An item already held is never fetched again.
//! - What the site collects in collections assigned to the hub (`site assign HUB COLLECTION`
//!   here) goes up the same link, interleaved with the downloads: the site's own log in batches
//!   (a signed bundle sealed to the hub, kept in `sync/outbox` until the hub confirms it), each
//!   sent in chunks that the hub stages; after a cut the upload resumes where the hub's staging
//!   ends.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io::BufReader;
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bletchley_store::{Platform, Priority};
use sha2::{Digest, Sha256};

use crate::bundle;
use crate::error::{Error, Result};
use crate::hub::Pull;
use crate::identity::{SelfRecord, SiteRole};
use crate::oplog::{Op, OpKind, verify_chain};
use crate::site::{self, PeerRecord};
use crate::staging::Staging;
use crate::tls;
use crate::wire::{self, Response, Throttled};

/// Bytes per content request.
const CHUNK: u64 = 64 * 1024;
/// Pull the log again at least this often while contents are moving.
const REPULL: Duration = Duration::from_millis(500);
/// Requests kept in flight at most (and when the link's rate is not known): 8 chunks of 64 KiB
/// cover the bandwidth-delay product of a 2 Mbit/s link with a 600 ms round trip twice over.
const WINDOW: usize = 16;
/// Pull this often when idle (without `--once`).
const IDLE_POLL: Duration = Duration::from_secs(5);
/// Item contents per upload batch (a batch holds at least one operation).
const UPLOAD_BATCH: u64 = 4 * 1024 * 1024;

/// How the site syncs.
pub struct SyncOptions {
    /// `https://HOST:PORT` of the hub.
    pub peer: String,
    /// Stop once everything is applied and acknowledged.
    pub once: bool,
    /// Bytes per second each way, if capped.
    pub max_rate: Option<u64>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
}

/// What a sync run did.
#[derive(Debug, Default, serde::Serialize)]
pub struct SyncReport {
    /// Items stored.
    pub received: usize,
    /// Items removed.
    pub removed: usize,
    /// Items re-marked as the hub re-marked them.
    pub remarked: usize,
    /// Principals here whose standing changed as the hub changed theirs.
    pub principals: usize,
    /// The hub's log position held here.
    pub position: u64,
    /// Content bytes received.
    pub bytes: u64,
    /// Connections made (more than one means the link was cut).
    pub connections: usize,
    /// The hub ordered an erase and this node's keys are destroyed.
    pub erased: bool,
    /// This site's own items the hub stored from its uploads.
    pub sent: usize,
    /// Upload bytes put on the link (bundles, in chunks), whether or not a cut then lost them.
    pub sent_bytes: u64,
    /// The hub refused this site's upload (why); nothing more was sent up in this run.
    pub upload_refused: Option<String>,
}

/// A batch of this site's own log on its way to the hub.
struct Outbox {
    path: PathBuf,
    digest: String,
    bytes: Vec<u8>,
    last_seq: u64,
    /// Bytes asked to be staged at the hub so far.
    sent: u64,
    /// Bumped when the hub says the upload is out of step; older answers are then ignored.
    generation: u64,
}

struct Link {
    reader: BufReader<rustls::StreamOwned<rustls::ClientConnection, Throttled<TcpStream>>>,
}

impl Link {
    fn open(addr: &str, config: Arc<rustls::ClientConfig>, rate: Option<u64>) -> Result<Link> {
        let stream = TcpStream::connect(addr).map_err(|e| Error::Link(format!("{addr}: {e}")))?;
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
        let name = rustls::pki_types::ServerName::try_from("hub.site.bletchley")
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let conn = rustls::ClientConnection::new(config, name)
            .map_err(|e| Error::Invalid(format!("TLS: {e}")))?;
        let mut tls = rustls::StreamOwned::new(conn, Throttled::new(stream, rate));
        while tls.conn.is_handshaking() {
            tls.conn
                .complete_io(&mut tls.sock)
                .map_err(|e| match crate::wire::io_error(e) {
                    Error::Refused(m) => Error::Refused(format!("TLS handshake with {addr}: {m}")),
                    other => other,
                })?;
        }
        Ok(Link {
            reader: BufReader::new(tls),
        })
    }

    fn send(&mut self, method: &str, path: &str, body: &[u8]) -> Result<()> {
        match wire::write_request(self.reader.get_mut(), method, path, body) {
            Err(Error::Link(m)) => {
                // The hub may have refused our certificate and closed: its alert waits to be
                // read, and says so better than the broken pipe.
                use std::io::BufRead;
                match self.reader.fill_buf() {
                    Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                        Err(Error::Refused(e.to_string()))
                    }
                    _ => Err(Error::Link(m)),
                }
            }
            other => other,
        }
    }

    fn recv(&mut self) -> Result<Response> {
        wire::read_response(&mut self.reader)
    }
}

fn host_port(url: &str) -> Result<String> {
    let rest = url
        .strip_prefix("https://")
        .ok_or_else(|| Error::Invalid(format!("--peer {url:?}: expected https://HOST:PORT")))?;
    let hp = rest.split('/').next().unwrap_or_default();
    if !hp.contains(':') {
        return Err(Error::Invalid(format!(
            "--peer {url:?}: give the port (https://HOST:PORT)"
        )));
    }
    Ok(hp.to_owned())
}

/// The state of one run against the hub.
struct Run<'a> {
    p: &'a mut Platform,
    hub: String,
    me: SelfRecord,
    /// Operations after what is applied, in order.
    pending: Vec<Op>,
    staging: Staging,
    /// Bytes staged per item, known this run.
    staged: HashMap<String, u64>,
    /// Items to fetch, most urgent first (recomputed after pulls and completions).
    wanted: Option<Vec<(Priority, u64, String, u64)>>,
    /// The batch of this site's own log being uploaded.
    outbox: Option<Outbox>,
    report: SyncReport,
    on_event: &'a mut dyn FnMut(SyncEvent<'_>),
    /// When progress was last told.
    told: Option<Instant>,
}

/// What a sync run tells as it goes.
#[derive(Clone, Copy, Debug)]
pub enum SyncEvent<'a> {
    /// Something happened (an item received or removed, a link cut), in words.
    Note(&'a str),
    /// Content bytes received this run, of those known to be coming (received so far and
    /// still to fetch for what the log adds): the total grows as pulls bring more.
    Progress {
        /// Bytes received this run.
        received: u64,
        /// `received` and the bytes still to fetch.
        total: u64,
    },
}

/// How often progress is told at most.
const TELL_EVERY: Duration = Duration::from_millis(200);

/// Replicates from the hub until stopped (or, with `once`, until caught up). Link failures are
/// retried with back-off; a refusal by the hub or a log that does not verify ends the run.
pub fn sync(
    p: &mut Platform,
    opts: &SyncOptions,
    on_event: &mut dyn FnMut(SyncEvent<'_>),
) -> Result<SyncReport> {
    let me = site::this(p)?;
    if me.identity.role != SiteRole::Field {
        return Err(Error::Invalid(
            "only a field site runs `sync --peer`; the hub runs `sync --listen ADDR`".into(),
        ));
    }
    let hub = site::peer_names(p)?
        .into_iter()
        .next()
        .ok_or_else(|| Error::Invalid("no hub is enrolled here: run `site enrol` first".into()))?;
    let rec = site::peer(p, &hub)?;
    let addr = host_port(&opts.peer)?;
    let key = hex::decode(&me.tls_key).map_err(|_| Error::Invalid("stored TLS key".into()))?;
    let config = Arc::new(tls::client_config(
        &me.identity.certificate_der()?,
        &key,
        rec.identity.certificate_der()?,
    )?);
    let staging = Staging::new(
        p.root().join("sync").join("partial"),
        p.derived_key("sync staging"),
    );
    let mut run = Run {
        p,
        hub,
        me,
        pending: Vec::new(),
        staging,
        staged: HashMap::new(),
        wanted: None,
        outbox: None,
        report: SyncReport::default(),
        on_event,
        told: None,
    };
    let mut backoff = Duration::from_millis(200);
    while !opts.stop.load(Ordering::SeqCst) {
        let mut link = match Link::open(&addr, config.clone(), opts.max_rate) {
            Ok(l) => l,
            Err(Error::Link(m)) => {
                run.note(&format!("link: {m}; retrying in {backoff:?}"));
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
                continue;
            }
            Err(e) => return Err(e),
        };
        run.report.connections += 1;
        match run.session(&mut link, opts) {
            Ok(true) => break,
            Ok(false) => {}
            Err(Error::Link(m)) => {
                run.note(&format!("link cut: {m}; resuming"));
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
        if run.report.erased {
            break;
        }
    }
    if !run.report.erased {
        run.tell_progress(true)?;
    }
    Ok(run.report)
}

impl Run<'_> {
    fn note(&mut self, m: &str) {
        (self.on_event)(SyncEvent::Note(m));
    }

    /// Tells how far the contents have come (at most every `TELL_EVERY` unless `now`).
    fn tell_progress(&mut self, now: bool) -> Result<()> {
        if !now && self.told.is_some_and(|t| t.elapsed() < TELL_EVERY) {
            return Ok(());
        }
        if self.wanted.is_none() {
            self.wanted = Some(self.wanted()?);
        }
        let list = self.wanted.clone().unwrap_or_default();
        let mut left = 0u64;
        for (_, _, id, size) in list {
            left += size.saturating_sub(self.staged(&id)?);
        }
        let received = self.report.bytes;
        (self.on_event)(SyncEvent::Progress {
            received,
            total: received + left,
        });
        self.told = Some(Instant::now());
        Ok(())
    }

    fn record(&self) -> Result<PeerRecord> {
        site::peer(self.p, &self.hub)
    }

    /// The body of a pull: the acknowledgement.
    fn pull_body(&self) -> Result<Vec<u8>> {
        let rec = self.record()?;
        let (known_seq, known_head) = self
            .pending
            .last()
            .map_or((0, String::new()), |o| (o.seq, o.hash.clone()));
        serde_json::to_vec(&Pull {
            applied_seq: rec.inbound.applied_seq,
            head: rec.inbound.head.clone(),
            max_ops: 2000,
            known_seq,
            known_head,
            enrol_proof: site::field_proof(self.p, &rec)?,
        })
        .map_err(|e| Error::Invalid(e.to_string()))
    }

    /// Takes a pull's answer: the operations after what was applied when it was sent. Some of
    /// them may have been applied since (the answer crossed work in flight); the rest must
    /// continue exactly what is applied now.
    fn take_pull(&mut self, r: Response) -> Result<()> {
        if matches!(r.status, 200 | 204) {
            // First contact: nothing from the hub counts before it has proved the code.
            site::confirm_hub(self.p, &self.hub, r.header("x-enrol-proof"))?;
            self.take_receipt(&r)?;
        }
        let rec = self.record()?;
        let applied = rec.inbound.applied_seq;
        match r.status {
            // Nothing after what this site holds.
            204 => Ok(()),
            200 => {
                let (h, _, body) = site::open_bundle(self.p, &self.me, &r.body)?;
                if h.from != self.hub || h.first_seq == 0 {
                    return Err(Error::Fork(self.hub.clone()));
                }
                verify_chain(&body.ops, h.first_seq, &h.prev, &h.head)?;
                for o in &body.ops {
                    o.kind.added()?;
                }
                // The operations after those already held here.
                if let Some(tail) = self.pending.last()
                    && h.first_seq == tail.seq + 1
                {
                    if h.prev != tail.hash {
                        return Err(Error::Fork(self.hub.clone()));
                    }
                    self.pending.extend(body.ops);
                    self.wanted = None;
                    return Ok(());
                }
                if h.first_seq > applied + 1 {
                    return Err(Error::Fork(self.hub.clone()));
                }
                let continues = if h.first_seq == applied + 1 {
                    h.prev == rec.inbound.head
                } else {
                    body.ops
                        .get((applied - h.first_seq) as usize)
                        .is_some_and(|o| o.hash == rec.inbound.head)
                };
                if !continues {
                    return Err(Error::Fork(self.hub.clone()));
                }
                self.pending = body.ops.into_iter().filter(|o| o.seq > applied).collect();
                self.wanted = None;
                Ok(())
            }
            403 => Err(Error::Refused(format!(
                "the hub refuses this site: {}",
                String::from_utf8_lossy(&r.body)
            ))),
            s => Err(Error::Protocol(format!(
                "the hub answered {s}: {}",
                String::from_utf8_lossy(&r.body)
            ))),
        }
    }

    /// Records what the hub says it has applied of this site's own log (`x-uplink`), and lets go
    /// of an upload batch it holds.
    fn take_receipt(&mut self, r: &Response) -> Result<()> {
        let Some(v) = r.header("x-uplink") else {
            return Ok(());
        };
        let (seq, head) = v
            .split_once(' ')
            .and_then(|(s, h)| Some((s.parse::<u64>().ok()?, h)))
            .ok_or_else(|| Error::Protocol(format!("x-uplink {v:?}")))?;
        let acked = site::take_receipt(self.p, &self.hub, seq, head)?;
        if let Some(o) = &self.outbox
            && acked >= o.last_seq
        {
            remove_file(&o.path)?;
            self.outbox = None;
        }
        Ok(())
    }

    fn outbox_dir(&self) -> PathBuf {
        self.p.root().join("sync").join("outbox")
    }

    /// The upload batch to send: one left by an earlier run (the hub may hold part of it), or a
    /// new one when this site's own log has operations the hub has not applied. Returns true when
    /// the hub should be asked how much of it it holds.
    fn prepare_outbox(&mut self) -> Result<bool> {
        if self.outbox.is_some() || self.report.upload_refused.is_some() {
            return Ok(false);
        }
        let dir = self.outbox_dir();
        let acked = self.record()?.out.acked_seq;
        let mut left = Vec::new();
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for e in entries.flatten() {
                let path = e.path();
                if path.extension().is_some_and(|x| x == "bundle") {
                    left.push(path);
                }
            }
        }
        left.sort();
        for path in left {
            let bytes = std::fs::read(&path).map_err(|e| Error::Io {
                path: path.display().to_string(),
                source: e,
            })?;
            // A batch the hub has applied, or one that no longer continues what it holds (the
            // hub was restored from an older state): gone; the log is sent again from there.
            let keep = match bundle::parse(&bytes) {
                Ok(b) => b.header.last_seq > acked && b.header.first_seq <= acked + 1,
                Err(_) => false,
            };
            if !keep || self.outbox.is_some() {
                remove_file(&path)?;
                continue;
            }
            let header = bundle::parse(&bytes)?.header;
            let last_seq = header.last_seq;
            self.note(&format!(
                "uploading operations {}..{} ({} bytes), left by an earlier run",
                header.first_seq,
                last_seq,
                bytes.len()
            ));
            self.outbox = Some(Outbox {
                digest: hex::encode(Sha256::digest(&bytes)),
                path,
                bytes,
                last_seq,
                sent: 0,
                generation: 0,
            });
        }
        if self.outbox.is_some() {
            return Ok(true);
        }
        let Some(batch) = site::export_uplink(self.p, &self.hub, UPLOAD_BATCH)? else {
            return Ok(false);
        };
        let digest = hex::encode(Sha256::digest(&batch.bytes));
        std::fs::create_dir_all(&dir).map_err(|e| Error::Io {
            path: dir.display().to_string(),
            source: e,
        })?;
        let path = dir.join(format!("{:020}-{digest}.bundle", batch.header.first_seq));
        bletchley_crypto::keyfile::write_atomic(&path, &batch.bytes)?;
        self.note(&format!(
            "uploading operations {}..{} ({} bytes), {} items",
            batch.header.first_seq,
            batch.header.last_seq,
            batch.bytes.len(),
            batch.items
        ));
        self.outbox = Some(Outbox {
            path,
            digest,
            last_seq: batch.header.last_seq,
            bytes: batch.bytes,
            sent: 0,
            generation: 0,
        });
        Ok(false)
    }

    /// Asks the hub how much of the upload batch it holds, and goes on from there.
    fn resume_upload(&mut self, link: &mut Link) -> Result<()> {
        let Some(o) = &self.outbox else {
            return Ok(());
        };
        link.send("GET", &format!("/sync/v1/upload/{}", o.digest), &[])?;
        let r = link.recv()?;
        if r.status != 200 {
            return Err(Error::Protocol(format!(
                "the hub answered {} about an upload: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )));
        }
        let have = have_header(&r)?;
        if let Some(o) = &mut self.outbox {
            o.sent = have.min(o.bytes.len() as u64);
        }
        Ok(())
    }

    /// The next upload chunk to send: (offset, its bytes, generation).
    fn next_upload(&mut self) -> Option<(String, u64, Vec<u8>, u64)> {
        let o = self.outbox.as_mut()?;
        let total = o.bytes.len() as u64;
        if o.sent >= total {
            return None;
        }
        let end = (o.sent + CHUNK).min(total);
        let chunk = o.bytes[o.sent as usize..end as usize].to_vec();
        let at = o.sent;
        o.sent = end;
        Some((o.digest.clone(), at, chunk, o.generation))
    }

    /// Takes the answer to an upload chunk.
    fn take_upload(&mut self, digest: &str, generation: u64, r: Response) -> Result<()> {
        let current = self
            .outbox
            .as_ref()
            .is_some_and(|o| o.digest == digest && o.generation == generation);
        match r.status {
            200 => {
                if let Some(added) = r.header("x-added").and_then(|v| v.parse::<usize>().ok()) {
                    self.report.sent += added;
                    self.note(&format!("the hub stored {added} items of ours"));
                }
                self.take_receipt(&r)?;
                if self.outbox.is_none() {
                    self.prepare_outbox()?;
                }
                Ok(())
            }
            409 if current => {
                let have = have_header(&r)?;
                if let Some(o) = &mut self.outbox {
                    o.generation += 1;
                    o.sent = have.min(o.bytes.len() as u64);
                }
                Ok(())
            }
            409 => Ok(()),
            // Refused by policy (a collection the hub does not accept from this site): the batch
            // stays here for a later run; the downloads go on.
            403 => {
                let why = String::from_utf8_lossy(&r.body).into_owned();
                self.note(&format!("upload refused: {why}"));
                self.report.upload_refused = Some(why);
                self.outbox = None;
                Ok(())
            }
            s => Err(Error::Protocol(format!(
                "the hub refused our upload ({s}): {}",
                String::from_utf8_lossy(&r.body)
            ))),
        }
    }

    /// Pulls and waits for the answer.
    fn pull(&mut self, link: &mut Link) -> Result<()> {
        let body = self.pull_body()?;
        link.send("POST", "/sync/v1/pull", &body)?;
        let r = link.recv()?;
        self.take_pull(r)
    }

    /// Items the pending log adds and that stay (no later removal), not held yet, most urgent
    /// first.
    fn wanted(&self) -> Result<Vec<(Priority, u64, String, u64)>> {
        let mut last: BTreeMap<&str, u64> = BTreeMap::new();
        for o in &self.pending {
            if let Some(id) = o.kind.item() {
                last.insert(id, o.seq);
            }
        }
        let mut out = Vec::new();
        for o in &self.pending {
            if let Some(meta) = o.kind.added()?
                && last.get(meta.id.as_str()) == Some(&o.seq)
                && !self.p.holds(&meta.id)?
            {
                out.push((meta.priority, o.seq, meta.id.clone(), meta.size));
            }
        }
        out.sort();
        Ok(out)
    }

    /// Applies the pending operations whose effect can be made now, in order, and records how
    /// far the log is applied. Returns true when an erase was carried out.
    fn apply_prefix(&mut self) -> Result<bool> {
        let mut rec = self.record()?;
        let mut done = 0usize;
        for (i, o) in self.pending.iter().enumerate() {
            let finished = match &o.kind {
                // Gone at the hub since it was logged: nothing to fetch.
                OpKind::ItemAdded { meta: None, .. } => true,
                OpKind::ItemAdded {
                    meta: Some(meta), ..
                } => {
                    let superseded = self.pending[i + 1..].iter().any(|n| match &n.kind {
                        OpKind::ItemRemoved { id } => *id == meta.id,
                        _ => false,
                    });
                    superseded || self.p.holds(&meta.id)?
                }
                OpKind::ItemRemoved { id } => {
                    self.staging.remove(id)?;
                    self.staged.remove(id);
                    if self.p.remove_replica(&self.hub, id)? {
                        self.report.removed += 1;
                        (self.on_event)(SyncEvent::Note(&format!("removed {id}")));
                    }
                    true
                }
                OpKind::ItemRemarked { .. } => {
                    if let Some(meta) = o.kind.remarked()?
                        && self.p.remark_replica(&self.hub, meta)?
                    {
                        self.report.remarked += 1;
                        (self.on_event)(SyncEvent::Note(&format!(
                            "re-marked {} {}",
                            meta.id, meta.marking
                        )));
                    }
                    true
                }
                OpKind::PrincipalStanding {
                    name,
                    agency,
                    standing,
                } => {
                    if self
                        .p
                        .apply_told_standing(&self.hub, name, agency, *standing)?
                    {
                        self.report.principals += 1;
                        (self.on_event)(SyncEvent::Note(&format!(
                            "principal {name} of {agency}: {standing:?}"
                        )));
                    }
                    true
                }
                OpKind::PrincipalAccess {
                    name,
                    agency,
                    standing,
                    access,
                } => {
                    if self
                        .p
                        .apply_told_access(&self.hub, name, agency, *standing, access)?
                    {
                        self.report.principals += 1;
                        (self.on_event)(SyncEvent::Note(&format!(
                            "principal {name} of {agency}: {standing:?}, within what it holds here"
                        )));
                    }
                    true
                }
                OpKind::EraseOrdered => {
                    // Acknowledge everything before the order, then the order itself, then erase.
                    rec.inbound.applied_seq = o.seq;
                    rec.inbound.head = o.hash.clone();
                    self.p.put_site_record(&site::peer_key(&self.hub), &rec)?;
                    return Ok(true);
                }
            };
            if !finished {
                break;
            }
            rec.inbound.applied_seq = o.seq;
            rec.inbound.head = o.hash.clone();
            done += 1;
        }
        if done > 0 {
            self.p.put_site_record(&site::peer_key(&self.hub), &rec)?;
            self.pending.drain(..done);
            self.wanted = None;
        }
        self.report.position = rec.inbound.applied_seq;
        Ok(false)
    }

    /// Bytes staged for `id` (read from the staging file once per run).
    fn staged(&mut self, id: &str) -> Result<u64> {
        if let Some(&n) = self.staged.get(id) {
            return Ok(n);
        }
        let n = self.staging.len(id)?;
        self.staged.insert(id.to_owned(), n);
        Ok(n)
    }

    /// Takes the answer to a chunk request for `id` at `offset`; stores the item when it is
    /// whole. Returns false when the hub no longer sends it (the next pull brings its removal).
    fn take_chunk(&mut self, id: &str, offset: u64, size: u64, r: Response) -> Result<bool> {
        if r.status == 404 {
            self.staging.remove(id)?;
            self.staged.remove(id);
            return Ok(false);
        }
        if r.status != 200 {
            return Err(Error::Protocol(format!(
                "the hub answered {} for {id}: {}",
                r.status,
                String::from_utf8_lossy(&r.body)
            )));
        }
        let have = self.staged(id)?;
        if have != offset || self.p.holds(id)? {
            // An answer to a request overtaken by events (the item finished or restarted).
            return Ok(true);
        }
        let total: u64 = r
            .header("x-total")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| Error::Protocol("a chunk without its total".into()))?;
        if total != size
            || have + r.body.len() as u64 > total
            || (r.body.is_empty() && have < total)
        {
            return Err(Error::Protocol(format!(
                "item {id}: chunk does not fit ({have}+{} of {total}, announced {size})",
                r.body.len()
            )));
        }
        if !r.body.is_empty() {
            self.staging.append(id, have, &r.body)?;
            self.staged
                .insert(id.to_owned(), have + r.body.len() as u64);
            self.report.bytes += r.body.len() as u64;
        }
        if have + r.body.len() as u64 == total {
            let content = self.staging.read(id)?;
            let digest = hex::encode(Sha256::digest(&content));
            if Some(digest.as_str()) != r.header("x-sha256") {
                self.staging.remove(id)?;
                self.staged.remove(id);
                return Err(Error::Protocol(format!(
                    "item {id}: content does not match its digest; fetching it again"
                )));
            }
            let meta = self
                .pending
                .iter()
                .find_map(|o| match &o.kind {
                    OpKind::ItemAdded {
                        meta: Some(meta), ..
                    } if meta.id == id => Some(meta.clone()),
                    _ => None,
                })
                .ok_or_else(|| Error::Protocol(format!("item {id} is not in the log")))?;
            if self.p.store_replica(&self.hub, &meta, content)? {
                let mut rec = self.record()?;
                rec.inbound.received.insert(meta.id.clone());
                self.p.put_site_record(&site::peer_key(&self.hub), &rec)?;
                self.report.received += 1;
                self.note(&format!("received {id} {}", meta.priority.as_str()));
            }
            self.staging.remove(id)?;
            self.staged.remove(id);
            self.wanted = None;
        }
        Ok(true)
    }

    /// The next chunk to ask for: the most urgent item with bytes not yet asked for.
    fn next_chunk(
        &mut self,
        asked: &mut BTreeMap<String, u64>,
    ) -> Result<Option<(String, u64, u64)>> {
        if self.wanted.is_none() {
            self.wanted = Some(self.wanted()?);
        }
        let list = self.wanted.clone().unwrap_or_default();
        for (_, _, id, size) in list {
            if self.p.holds(&id)? {
                continue;
            }
            let from = match asked.get(&id) {
                Some(&n) => n,
                None => self.staged(&id)?,
            };
            // All bytes staged but the item not stored (an empty item, or a run killed between
            // the last chunk and the store): one request at the end brings the digest, with no
            // content, and the item is stored from staging.
            if from < size || (from == size && !asked.contains_key(&id)) {
                asked.insert(id.clone(), from + CHUNK);
                return Ok(Some((id, from, size)));
            }
        }
        Ok(None)
    }

    /// One connection's work: a sliding window of requests (content chunks, and a pull at least
    /// every `REPULL`) kept in flight so that a long, slow link stays full. Returns true when
    /// the run is over.
    fn session(&mut self, link: &mut Link, opts: &SyncOptions) -> Result<bool> {
        let t0 = Instant::now();
        self.pull(link)?;
        let rtt = t0.elapsed().as_secs_f64();
        // This site's own log goes up on the same link, from where the hub's staging ends.
        self.prepare_outbox()?;
        self.resume_upload(link)?;
        let mut up_turn = false;
        // Enough in flight to keep the link full for two round trips, and no more:
        // what is already asked for is what a FLASH item waits behind. The rate is the cap when
        // one is given, else what the link delivered over the last interval.
        let size_window = |rate: f64| -> usize {
            ((rate * rtt * 2.0 / CHUNK as f64).ceil() as usize + 1).clamp(2, WINDOW)
        };
        let mut window = match opts.max_rate {
            Some(rate) => size_window(rate as f64),
            None => 6,
        };
        let mut measured_since = (Instant::now(), self.report.bytes);
        let mut stuck = 0usize;
        let mut last_pull = Instant::now();
        let mut inflight: VecDeque<Asked> = VecDeque::new();
        let mut asked: BTreeMap<String, u64> = BTreeMap::new();
        loop {
            if opts.stop.load(Ordering::SeqCst) {
                return Ok(true);
            }
            if self.apply_prefix()? {
                // Tell the hub the order is carried out, then destroy the keys.
                while let Some(a) = inflight.pop_front() {
                    let _ = link.recv();
                    drop(a);
                }
                let _ = self.pull(link);
                self.p
                    .erase_keys(&format!("erase ordered by {}", self.hub))?;
                self.report.erased = true;
                self.note("ERASED on the hub's order");
                return Ok(true);
            }
            // Fill the window with chunk requests, and while contents move, a pull at least
            // every REPULL among them (when idle, the branch below pulls and waits instead).
            // Uploads take every other place while both directions have work.
            while inflight.len() < window {
                up_turn = !up_turn;
                let down = if up_turn && self.outbox.is_some() {
                    None
                } else {
                    self.next_chunk(&mut asked)?
                };
                if down.is_none()
                    && let Some((digest, offset, chunk, generation)) = self.next_upload()
                {
                    let total = self.outbox.as_ref().map_or(0, |o| o.bytes.len());
                    link.send(
                        "PUT",
                        &format!("/sync/v1/upload/{digest}?offset={offset}&total={total}"),
                        &chunk,
                    )?;
                    self.report.sent_bytes += chunk.len() as u64;
                    inflight.push_back(Asked::Upload { digest, generation });
                    continue;
                }
                let down = match down {
                    Some(d) => Some(d),
                    None if up_turn => self.next_chunk(&mut asked)?,
                    None => None,
                };
                match down {
                    Some((id, offset, size)) => {
                        let pull_due = last_pull.elapsed() >= REPULL
                            && !inflight.iter().any(|a| matches!(a, Asked::Pull));
                        if pull_due {
                            let body = self.pull_body()?;
                            link.send("POST", "/sync/v1/pull", &body)?;
                            inflight.push_back(Asked::Pull);
                            last_pull = Instant::now();
                        }
                        link.send(
                            "GET",
                            &format!("/sync/v1/object/{id}?offset={offset}&len={CHUNK}"),
                            &[],
                        )?;
                        inflight.push_back(Asked::Chunk { id, offset, size });
                    }
                    None => break,
                }
            }
            let Some(next) = inflight.pop_front() else {
                // Nothing to fetch and nothing in flight.
                if !self.pending.is_empty() {
                    // Operations that cannot be finished now (an item the hub stopped sending):
                    // wait for the pull that brings their resolution.
                    stuck += 1;
                    if stuck % 20 == 1 {
                        let first = &self.pending[0];
                        self.note(&format!(
                            "waiting on operation {} ({} pending, {} wanted)",
                            first.seq,
                            self.pending.len(),
                            self.wanted.as_ref().map_or(0, Vec::len)
                        ));
                    }
                    std::thread::sleep(REPULL);
                    self.pull(link)?;
                    last_pull = Instant::now();
                    asked.clear();
                    continue;
                }
                // Caught up: acknowledge and see whether anything new came, either way.
                self.pull(link)?;
                last_pull = Instant::now();
                self.prepare_outbox()?;
                if self
                    .outbox
                    .as_ref()
                    .is_some_and(|o| o.sent >= o.bytes.len() as u64)
                {
                    // Sent whole, yet the pull's receipt does not cover it: ask the hub where
                    // the upload stands rather than wait.
                    self.resume_upload(link)?;
                }
                if self.pending.is_empty() && self.outbox.is_none() {
                    if opts.once {
                        return Ok(true);
                    }
                    std::thread::sleep(IDLE_POLL);
                    self.pull(link)?;
                    last_pull = Instant::now();
                }
                asked.clear();
                continue;
            };
            let r = link.recv()?;
            let elapsed = measured_since.0.elapsed().as_secs_f64();
            if elapsed >= 2.0 {
                let delivered = (self.report.bytes - measured_since.1) as f64 / elapsed;
                let rate = match opts.max_rate {
                    Some(cap) => delivered.min(cap as f64),
                    None => delivered,
                };
                // Grow by at most two at a time, so a window that was too small (and so
                // delivered little) can still find the link's rate.
                window = size_window(rate).min(window + 2);
                measured_since = (Instant::now(), self.report.bytes);
            }
            match next {
                Asked::Pull => {
                    self.take_pull(r)?;
                }
                Asked::Upload { digest, generation } => self.take_upload(&digest, generation, r)?,
                Asked::Chunk { id, offset, size } => {
                    if !self.take_chunk(&id, offset, size, r)? {
                        // The hub stopped sending it: forget what was asked, pull soon.
                        asked.remove(&id);
                        last_pull = Instant::now() - REPULL;
                    }
                    self.tell_progress(false)?;
                }
            }
        }
    }
}

/// A request in flight, answered in order.
enum Asked {
    Pull,
    Chunk { id: String, offset: u64, size: u64 },
    Upload { digest: String, generation: u64 },
}

fn have_header(r: &Response) -> Result<u64> {
    r.header("x-have")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Protocol("an upload answer without x-have".into()))
}

fn remove_file(path: &std::path::Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io {
            path: path.display().to_string(),
            source: e,
        }),
    }
}
