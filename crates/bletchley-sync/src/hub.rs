//! The hub's side of network replication: a mutual-TLS listener that answers enrolled field
//! sites.
//!
//! Connection threads do TLS and HTTP; every request is handed to the thread that owns the
//! platform, so the store is never shared across threads. Two requests exist:
//!
//! - `POST /sync/v1/pull` with what the site has durably applied (its acknowledgement): the hub
//!   records the acknowledgement, brings the site's log up to date and answers with the next
//!   operations as a signed bundle sealed to the site (contents travel separately);
//! - `GET /sync/v1/object/ID?offset=N&len=M`: a chunk of an item's content, checked against the
//!   site's gate and audited when the item is first read for that site;
//! - `GET /sync/v1/upload/DIGEST` and `PUT /sync/v1/upload/DIGEST?offset=N&total=T`: a field
//!   site's own log going up, as a signed bundle sealed to the hub, in chunks staged sealed here
//!   so that a cut resumes where it stopped. A whole bundle is checked and imported exactly as
//!   `bundle import` does; every answer to a pull says how far the site's log is applied here.

use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use bletchley_audit::Outcome;
use bletchley_store::{Actor, Platform};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::bundle::{self, Body, BundleHeader, BundleKind};
use crate::error::{Error, Result};
use crate::identity::SiteRole;
use crate::oplog::{Op, genesis};
use crate::site::{self, PeerRecord};
use crate::staging::Staging;
use crate::tls;
use crate::wire::{self, Request, Throttled};

/// The largest content chunk a site may ask for.
pub const MAX_CHUNK: u64 = 1024 * 1024;
/// Operations per pull answer at most.
const MAX_OPS: u64 = 2000;
/// Item contents the hub keeps in memory between chunk requests.
const CACHE_ITEMS: usize = 8;
/// The largest upload bundle a field site may send.
pub const MAX_UPLOAD: u64 = 256 * 1024 * 1024;

/// What a site says when it pulls.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Pull {
    /// The last operation it has durably applied.
    pub applied_seq: u64,
    /// That operation's hash.
    pub head: String,
    /// How many operations it wants at most.
    pub max_ops: u64,
    /// The last operation it already holds (applied or not): only later ones are sent.
    #[serde(default)]
    pub known_seq: u64,
    /// That operation's hash.
    #[serde(default)]
    pub known_head: String,
    /// Until the hub has confirmed the site's enrolment: its proof of the one-time code.
    #[serde(default)]
    pub enrol_proof: Option<String>,
}

/// How the listener runs.
pub struct ListenOptions {
    /// Address to bind (`0.0.0.0:8444`; port 0 picks one).
    pub listen: String,
    /// Bytes per second each way per connection, if capped.
    pub max_rate: Option<u64>,
    /// Set to stop.
    pub stop: Arc<AtomicBool>,
}

type Reply = (u16, Vec<(&'static str, String)>, Vec<u8>);

/// Contents recently read for a site: (site, item) → (content, its SHA-256).
type ContentCache = VecDeque<((String, String), Arc<Vec<u8>>, String)>;

/// What the platform thread keeps between requests.
struct State {
    cache: ContentCache,
    /// Uploads in progress, staged sealed at rest.
    uploads: Staging,
    /// Bytes staged per upload, known since this listener started.
    staged: HashMap<String, u64>,
}

enum Event {
    Request {
        site: String,
        request: Request,
        reply: mpsc::Sender<Reply>,
    },
    Rejected {
        peer: SocketAddr,
        reason: String,
    },
}

/// Serves field sites until `stop` is set. `on_event` hears what happens (the bound address
/// first, as `listening on ADDR`).
pub fn listen(
    p: &mut Platform,
    opts: &ListenOptions,
    on_event: &mut dyn FnMut(&str),
) -> Result<()> {
    let me = site::this(p)?;
    if me.identity.role != SiteRole::Hub {
        return Err(Error::Invalid(
            "only the hub listens; a field site runs `sync --peer URL`".into(),
        ));
    }
    let cert = me.identity.certificate_der()?;
    let key = hex::decode(&me.tls_key).map_err(|_| Error::Invalid("stored TLS key".into()))?;
    let listener = TcpListener::bind(&opts.listen).map_err(|e| Error::Io {
        path: opts.listen.clone(),
        source: e,
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Link(e.to_string()))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::Link(e.to_string()))?;
    on_event(&format!("listening on {addr}"));
    let (tx, rx) = mpsc::channel::<Event>();
    let mut state = State {
        cache: ContentCache::new(),
        uploads: Staging::new(
            p.root().join("sync").join("uploads"),
            p.derived_key("sync upload staging"),
        ),
        staged: HashMap::new(),
    };
    while !opts.stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                // Who may connect is read afresh for every connection: a revocation or a new
                // enrolment counts at once.
                let mut clients = HashMap::new();
                for name in site::peer_names(p)? {
                    let r = site::peer(p, &name)?;
                    if !r.revoked && r.identity.role == SiteRole::Field {
                        clients.insert(r.identity.certificate_der()?, name);
                    }
                }
                let config = Arc::new(tls::server_config(
                    &cert,
                    &key,
                    clients.keys().cloned().collect(),
                )?);
                let tx = tx.clone();
                let rate = opts.max_rate;
                std::thread::spawn(move || {
                    if let Err(reason) = connection(stream, config, clients, rate, &tx) {
                        let _ = tx.send(Event::Rejected { peer, reason });
                    }
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => on_event(&format!("accept: {e}")),
        }
        match rx.recv_timeout(Duration::from_millis(20)) {
            Ok(Event::Request {
                site,
                request,
                reply,
            }) => {
                let answer = match handle(p, &site, &request, &mut state) {
                    Ok(a) => a,
                    Err(e) => {
                        let status = match e {
                            Error::Store(bletchley_store::Error::NotFoundOrNotPermitted {
                                ..
                            }) => 404,
                            Error::Fork(_) => 409,
                            Error::Denied(_) => 403,
                            Error::Protocol(_) | Error::Invalid(_) => 400,
                            Error::Tampered(_)
                            | Error::Malformed(_)
                            | Error::Misaddressed { .. }
                            | Error::Gap { .. }
                            | Error::Replayed { .. } => 422,
                            _ => 500,
                        };
                        on_event(&format!("{site}: {} {}: {e}", request.method, request.path));
                        let body = match &e {
                            Error::Denied(why) => why.clone(),
                            other => other.to_string(),
                        };
                        (status, Vec::new(), body.into_bytes())
                    }
                };
                let _ = reply.send(answer);
            }
            Ok(Event::Rejected { peer, reason }) => {
                on_event(&format!("refused {peer}: {reason}"));
                p.record(
                    Actor::Operator,
                    "sync.refuse",
                    vec![peer.to_string()],
                    None,
                    Outcome::Refused,
                    Some(reason),
                )?;
            }
            Err(_) => {}
        }
    }
    Ok(())
}

/// One connection: the handshake (which checks the client's certificate), then requests until
/// the site closes it. Returns why it was refused, for the audit, when it was.
fn connection(
    stream: TcpStream,
    config: Arc<rustls::ServerConfig>,
    clients: HashMap<Vec<u8>, String>,
    rate: Option<u64>,
    tx: &mpsc::Sender<Event>,
) -> std::result::Result<(), String> {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(120)));
    let raw = stream.try_clone().map_err(|e| e.to_string())?;
    let conn = rustls::ServerConnection::new(config).map_err(|e| e.to_string())?;
    let mut tls = rustls::StreamOwned::new(conn, Throttled::new(stream, rate));
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            // The alert has been written. Closing with the client's first request unread would
            // reset the connection and throw the alert away before the client reads it: stop
            // writing, drain briefly, then close.
            let _ = raw.shutdown(std::net::Shutdown::Write);
            let _ = raw.set_read_timeout(Some(Duration::from_secs(1)));
            let mut sink = [0u8; 4096];
            let mut drained = 0usize;
            let mut r = &raw;
            while drained < 256 * 1024 {
                match std::io::Read::read(&mut r, &mut sink) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
            return Err(format!("TLS handshake: {e}"));
        }
    }
    let site = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| clients.get(c.as_ref()))
        .cloned()
        .ok_or("no enrolled client certificate")?;
    let mut reader = BufReader::new(tls);
    loop {
        let request = match wire::read_request(&mut reader) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(()),
            Err(Error::Link(_)) => return Ok(()),
            Err(e) => {
                let _ = wire::write_response(reader.get_mut(), 400, &[], e.to_string().as_bytes());
                return Err(format!("{site}: {e}"));
            }
        };
        let (reply_tx, reply_rx) = mpsc::channel();
        tx.send(Event::Request {
            site: site.clone(),
            request,
            reply: reply_tx,
        })
        .map_err(|_| "the hub is stopping".to_owned())?;
        let (status, headers, body) = reply_rx
            .recv()
            .map_err(|_| "the hub is stopping".to_owned())?;
        if wire::write_response(reader.get_mut(), status, &headers, &body).is_err() {
            return Ok(());
        }
    }
}

fn handle(p: &mut Platform, site: &str, request: &Request, state: &mut State) -> Result<Reply> {
    let cache = &mut state.cache;
    let mut rec = site::peer(p, site)?;
    if rec.revoked {
        return Ok((403, Vec::new(), b"revoked".to_vec()));
    }
    let (path, query) = request
        .path
        .split_once('?')
        .unwrap_or((request.path.as_str(), ""));
    if !rec.enrolment.confirmed && (request.method.as_str(), path) != ("POST", "/sync/v1/pull") {
        return Ok((
            403,
            Vec::new(),
            b"enrolment not confirmed: pull first, with the proof of the one-time code".to_vec(),
        ));
    }
    match (request.method.as_str(), path) {
        ("POST", "/sync/v1/pull") => {
            let pull: Pull = serde_json::from_slice(&request.body)
                .map_err(|e| Error::Protocol(format!("pull: {e}")))?;
            match site::confirm_field(p, &mut rec, pull.enrol_proof.as_deref()) {
                Ok(()) => {}
                Err(Error::Denied(why)) => return Ok((403, Vec::new(), why.into_bytes())),
                Err(e) => return Err(e),
            }
            let (status, mut headers, body) = pull_answer(p, &mut rec, &pull)?;
            headers.push(receipt(p, site)?);
            if let Some(proof) = &rec.enrolment.hub_proof {
                headers.push(("x-enrol-proof", proof.clone()));
            }
            Ok((status, headers, body))
        }
        ("GET", _) if path.starts_with("/sync/v1/upload/") => {
            let digest = &path["/sync/v1/upload/".len()..];
            let have = staged(state, digest)?;
            Ok((200, vec![("x-have", have.to_string())], Vec::new()))
        }
        ("PUT", _) if path.starts_with("/sync/v1/upload/") => {
            let digest = path["/sync/v1/upload/".len()..].to_owned();
            let (mut offset, mut total) = (None, None);
            for kv in query.split('&') {
                match kv.split_once('=') {
                    Some(("offset", v)) => offset = v.parse::<u64>().ok(),
                    Some(("total", v)) => total = v.parse::<u64>().ok(),
                    _ => {}
                }
            }
            let (Some(offset), Some(total)) = (offset, total) else {
                return Err(Error::Protocol(
                    "an upload chunk needs offset and total".into(),
                ));
            };
            upload_chunk(p, site, state, &digest, offset, total, &request.body)
        }
        ("GET", _) if path.starts_with("/sync/v1/object/") => {
            let id = &path["/sync/v1/object/".len()..];
            let mut offset = 0u64;
            let mut len = MAX_CHUNK;
            for kv in query.split('&') {
                match kv.split_once('=') {
                    Some(("offset", v)) => {
                        offset = v.parse().map_err(|_| Error::Protocol("offset".into()))?
                    }
                    Some(("len", v)) => {
                        len = v.parse().map_err(|_| Error::Protocol("len".into()))?
                    }
                    _ => {}
                }
            }
            let key = (site.to_owned(), id.to_owned());
            let cached = cache
                .iter()
                .find(|(k, _, _)| *k == key)
                .map(|(_, c, d)| (c.clone(), d.clone()));
            let (content, digest) = match cached {
                // Content read out earlier is served again only if the site may still hold it.
                Some((c, d)) => {
                    if !p.site_may_hold_now(&site::scope(&rec)?, id)? {
                        cache.retain(|(k, _, _)| *k != key);
                        return Err(Error::Store(
                            bletchley_store::Error::NotFoundOrNotPermitted { reason: None },
                        ));
                    }
                    (c, d)
                }
                None => {
                    let mut got = p.export_for_site(&site::scope(&rec)?, &[id.to_owned()])?;
                    let (_, content) = got
                        .pop()
                        .ok_or_else(|| Error::Protocol("nothing read".into()))?;
                    let digest = hex::encode(Sha256::digest(&content));
                    let content = Arc::new(content);
                    cache.push_back((key, content.clone(), digest.clone()));
                    if cache.len() > CACHE_ITEMS {
                        cache.pop_front();
                    }
                    (content, digest)
                }
            };
            let total = content.len() as u64;
            if offset > total {
                return Err(Error::Protocol(format!(
                    "offset {offset} past the end ({total})"
                )));
            }
            let end = (offset + len.min(MAX_CHUNK)).min(total);
            Ok((
                200,
                vec![("x-total", total.to_string()), ("x-sha256", digest)],
                content[offset as usize..end as usize].to_vec(),
            ))
        }
        _ => Err(Error::Protocol(format!(
            "no such request: {} {}",
            request.method, request.path
        ))),
    }
}

/// Bytes of an upload staged here.
fn staged(state: &mut State, digest: &str) -> Result<u64> {
    if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Error::Protocol(format!(
            "an upload named {digest:?}, not by its SHA-256"
        )));
    }
    if let Some(&n) = state.staged.get(digest) {
        return Ok(n);
    }
    let n = state.uploads.len(digest)?;
    state.staged.insert(digest.to_owned(), n);
    Ok(n)
}

/// How far the site's own log is applied here: `x-uplink: SEQ HASH`.
fn receipt(p: &Platform, site: &str) -> Result<(&'static str, String)> {
    let rec = site::peer(p, site)?;
    Ok((
        "x-uplink",
        format!("{} {}", rec.inbound.applied_seq, rec.inbound.head),
    ))
}

/// Stages one chunk of a site's upload; when the bundle is whole, checks its digest and
/// imports it as `bundle import` would (every check before anything is applied).
fn upload_chunk(
    p: &mut Platform,
    site: &str,
    state: &mut State,
    digest: &str,
    offset: u64,
    total: u64,
    chunk: &[u8],
) -> Result<Reply> {
    if total == 0 || total > MAX_UPLOAD {
        return Err(Error::Protocol(format!(
            "an upload of {total} bytes (at most {MAX_UPLOAD})"
        )));
    }
    let have = staged(state, digest)?;
    if offset != have {
        // Out of step (a resumed upload that guessed wrong): say where to go on.
        return Ok((409, vec![("x-have", have.to_string())], Vec::new()));
    }
    if have + chunk.len() as u64 > total || (chunk.is_empty() && have < total) {
        return Err(Error::Protocol(format!(
            "upload chunk does not fit ({have}+{} of {total})",
            chunk.len()
        )));
    }
    state.uploads.append(digest, have, chunk)?;
    let have = have + chunk.len() as u64;
    state.staged.insert(digest.to_owned(), have);
    if have < total {
        return Ok((200, vec![("x-have", have.to_string())], Vec::new()));
    }
    let bytes = state.uploads.read(digest)?;
    state.uploads.remove(digest)?;
    state.staged.remove(digest);
    if hex::encode(Sha256::digest(&bytes)) != digest {
        return Err(Error::Protocol(
            "the upload does not match its digest; send it again".into(),
        ));
    }
    let from = crate::bundle::parse(&bytes)?.header.from.clone();
    if from != site {
        let reason = format!("{site} uploaded a bundle from {from:?}");
        p.record(
            Actor::Operator,
            "sync.receive",
            vec![site.to_owned()],
            None,
            Outcome::Refused,
            Some(reason.clone()),
        )?;
        return Err(Error::Tampered(reason));
    }
    let report = site::import_bundle(p, &bytes)?;
    Ok((
        200,
        vec![
            ("x-have", have.to_string()),
            ("x-added", report.added.to_string()),
            receipt(p, site)?,
        ],
        Vec::new(),
    ))
}

/// Records the site's acknowledgement, extends its log, and answers with the next operations.
fn pull_answer(p: &mut Platform, rec: &mut PeerRecord, pull: &Pull) -> Result<Reply> {
    let name = rec.identity.name.clone();
    if pull.applied_seq > rec.out.last_seq {
        return Err(Error::Fork(name));
    }
    let expected = if pull.applied_seq == 0 {
        genesis()
    } else {
        p.site_record::<Op>(&site::log_key(&name, pull.applied_seq))?
            .map(|o| o.hash)
            .ok_or_else(|| Error::Fork(name.clone()))?
    };
    if expected != pull.head {
        return Err(Error::Fork(name));
    }
    // What the site says it has durably applied is what it has: a site restored from an older
    // state is sent the rest again.
    let acked_changed = rec.out.acked_seq != pull.applied_seq;
    rec.out.acked_seq = pull.applied_seq;
    if rec.out.erase_seq.is_some_and(|s| s <= pull.applied_seq) {
        rec.erase_confirmed = true;
    }
    let allowed = site::extend_log(p, rec)?;
    // Operations the site already holds are not sent again, if it holds them rightly.
    let known = if pull.known_seq > pull.applied_seq
        && pull.known_seq <= rec.out.last_seq
        && p.site_record::<Op>(&site::log_key(&name, pull.known_seq))?
            .is_some_and(|o| o.hash == pull.known_head)
    {
        pull.known_seq
    } else {
        pull.applied_seq
    };
    let first = known + 1;
    let last = rec.out.last_seq.min(known + pull.max_ops.clamp(1, MAX_OPS));
    if acked_changed {
        p.record(
            Actor::Operator,
            "sync.ack",
            vec![name.clone(), format!("acknowledged {}", pull.applied_seq)],
            None,
            Outcome::Allowed,
            None,
        )?;
    }
    if first > last {
        return Ok((204, Vec::new(), Vec::new()));
    }
    let mut ops = Vec::new();
    for seq in first..=last {
        ops.push(site::outgoing_op(p, &name, seq, &allowed)?);
    }
    let me = site::this(p)?;
    let header = BundleHeader {
        version: bundle::VERSION,
        kind: BundleKind::Ops,
        from: me.identity.name.clone(),
        to: name.clone(),
        first_seq: first,
        last_seq: last,
        prev: ops[0].prev.clone(),
        head: ops[ops.len() - 1].hash.clone(),
        created_ms: bletchley_store::now_ms(),
        ephemeral: String::new(),
        ack: None,
        enrol_proof: rec.enrolment.hub_proof.clone(),
    };
    let bytes = site::seal_and_sign(
        &me,
        &rec.identity,
        header,
        &Body {
            ops,
            contents: Vec::new(),
        },
    )?;
    p.record(
        Actor::Operator,
        "sync.send",
        vec![name, format!("operations {first}..{last}")],
        None,
        Outcome::Allowed,
        None,
    )?;
    Ok((200, Vec::new(), bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{SelfRecord, SiteIdentity};
    use std::io::{Read, Write};

    fn site(name: &str, role: SiteRole) -> SelfRecord {
        SelfRecord::generate(SiteIdentity {
            name: name.into(),
            role,
            jurisdiction: "GB/london".into(),
            ceiling: "SECRET".into(),
            nationalities: vec!["GBR".into()],
            signing_key: String::new(),
            sealing_key: String::new(),
            certificate: String::new(),
        })
        .expect("site")
    }

    /// An enrolled field site (its certificate pinned by the hub) that sends `bytes` after the
    /// handshake; returns what the hub answered and why it refused the connection.
    fn enrolled_client_sends(bytes: Vec<u8>) -> (String, std::result::Result<(), String>) {
        let hub = site("hub", SiteRole::Hub);
        let field = site("alpha", SiteRole::Field);
        let field_cert = field.identity.certificate_der().expect("cert");
        let server = Arc::new(
            tls::server_config(
                &hub.identity.certificate_der().expect("cert"),
                &hex::decode(&hub.tls_key).expect("key"),
                vec![field_cert.clone()],
            )
            .expect("server config"),
        );
        let client = Arc::new(
            tls::client_config(
                &field_cert,
                &hex::decode(&field.tls_key).expect("key"),
                hub.identity.certificate_der().expect("cert"),
            )
            .expect("client config"),
        );
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = mpsc::channel::<Event>();
        let hub_side = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let clients = HashMap::from([(field_cert, "alpha".to_owned())]);
            connection(stream, server, clients, None, &tx)
        });
        let tcp = TcpStream::connect(addr).expect("connect");
        let name = rustls::pki_types::ServerName::try_from("hub.site.bletchley").expect("name");
        let conn = rustls::ClientConnection::new(client, name).expect("client");
        let mut tls = rustls::StreamOwned::new(conn, tcp);
        // Whatever the hub makes of it, nothing reaches the platform thread.
        let _ = tls.write_all(&bytes);
        let _ = tls.flush();
        let mut answer = Vec::new();
        let _ = tls.read_to_end(&mut answer);
        let verdict = hub_side.join().expect("hub thread");
        assert!(rx.try_recv().is_err(), "a request was handed on");
        (String::from_utf8_lossy(&answer).into_owned(), verdict)
    }

    #[test]
    fn an_enrolled_peer_that_sends_oversized_frames_is_refused_and_nothing_is_applied() {
        let long_head = format!(
            "GET /sync/v1/object/{} HTTP/1.1\r\n\r\n",
            "a".repeat(wire::MAX_HEAD + 100)
        );
        let big_body = format!(
            "POST /sync/v1/pull HTTP/1.1\r\ncontent-length: {}\r\n\r\n",
            wire::MAX_BODY + 1
        );
        for (bytes, why) in [
            (long_head.into_bytes(), "head longer"),
            (big_body.into_bytes(), "a body of"),
            (b"\x00\x01garbage that is not HTTP\r\n\r\n".to_vec(), ""),
        ] {
            let (answer, verdict) = enrolled_client_sends(bytes);
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
            let reason = verdict.expect_err("the connection is refused");
            assert!(reason.starts_with("alpha: "), "{reason}");
            assert!(reason.contains(why), "{reason}");
        }
    }
}
