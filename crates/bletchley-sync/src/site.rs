//! Sites on a platform: identity, enrolment, assignment, the per-site operation log, and bundles
//! out and in.

use std::collections::{BTreeMap, BTreeSet};

use bletchley_audit::Outcome;
use bletchley_crypto::OversightSealer;
use bletchley_crypto::oversight::OversightOpener;
use bletchley_policy::{Marking, Nation};
use bletchley_store::{ANNOTATION, Actor, ItemMeta, Jurisdiction, Platform, SiteScope, now_ms};
use serde::{Deserialize, Serialize};

use crate::bundle::{self, Body, BundleHeader, BundleKind};
use crate::error::{Error, Result};
use crate::identity::{SelfRecord, SignedIdentity, SiteIdentity, SiteRole};
use crate::oplog::{Op, OpKind, genesis, verify_chain};

pub(crate) const SELF: &str = "self";
const PEERS: &str = "peers";

pub(crate) fn peer_key(name: &str) -> String {
    format!("peer/{name}")
}

pub(crate) fn log_key(peer: &str, seq: u64) -> String {
    format!("log/{peer}/{seq}")
}

/// What this node sends to a peer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Outbound {
    /// Operations logged so far.
    pub last_seq: u64,
    /// Hash of the last.
    pub head: String,
    /// The last operation the peer acknowledged.
    pub acked_seq: u64,
    /// Items the log says the peer holds (added and not removed).
    pub present: BTreeSet<String>,
    /// An erase order is pending or sent.
    pub erase_ordered: bool,
    /// The operation that carries it.
    pub erase_seq: Option<u64>,
    /// How many re-markings of each item the peer was told of (re-marked items only), so
    /// that the log sends each re-marking once.
    #[serde(default)]
    pub remarked: BTreeMap<String, u32>,
    /// The last change of a principal's standing the peer (a field site) was told of.
    #[serde(default)]
    pub standing_told: u64,
}

/// What this node has applied from a peer.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Inbound {
    pub applied_seq: u64,
    pub head: String,
    /// Items received from this peer: never sent back to it.
    #[serde(default)]
    pub received: BTreeSet<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct PeerRecord {
    pub identity: SiteIdentity,
    pub collections: Vec<String>,
    pub operations: Vec<String>,
    pub out: Outbound,
    pub inbound: Inbound,
    pub erase_confirmed: bool,
    /// Its certificate no longer opens a connection and its bundles are refused.
    #[serde(default)]
    pub revoked: bool,
    /// The one-time code and whether the other side has proved it.
    #[serde(default)]
    pub enrolment: Enrolment,
    /// At the hub: the collections this field site may send items into (`site accept`).
    #[serde(default)]
    pub accepts: Vec<String>,
}

/// Enrolment by one-time code (see [`crate::code`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Enrolment {
    /// The code (normalised) until first contact; forgotten once the other side has proved it,
    /// and when it expires or too many wrong proofs came.
    pub code: Option<String>,
    /// At the hub: when the code stops being accepted (Unix ms).
    pub expires_ms: i64,
    /// At the hub: wrong proofs so far.
    pub attempts: u32,
    /// The other side proved it holds the code.
    pub confirmed: bool,
    /// At the hub: its own proof, which it sends the field site with every answer and bundle.
    pub hub_proof: Option<String>,
}

/// `site init` settings.
#[derive(Clone, Debug)]
pub struct SiteInit {
    /// Unique name.
    pub name: String,
    /// Hub or field.
    pub role: SiteRole,
    /// `CC/region`.
    pub jurisdiction: String,
    /// A marking: its classification is the ceiling, its codewords those the site may hold.
    pub ceiling: String,
    /// Staff nationalities (alpha-3).
    pub nationalities: Vec<String>,
}

fn valid_site_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        && name.as_bytes()[0].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid site name {name:?}: use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit"
        )))
    }
}

fn parse_ceiling(ceiling: &str) -> Result<Marking> {
    Marking::parse(ceiling).map_err(|e| Error::Invalid(format!("--ceiling {ceiling:?}: {e}")))
}

fn parse_nations(list: &[String]) -> Result<Vec<Nation>> {
    if list.is_empty() {
        return Err(Error::Invalid(
            "a site needs the nationalities of its staff (--nationalities GBR[,USA..])".into(),
        ));
    }
    list.iter()
        .map(|n| {
            Nation::from_alpha3(n.trim()).ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown nationality {n:?}: use ISO 3166 alpha-3 (GBR)"
                ))
            })
        })
        .collect()
}

/// Makes this node a site: generates its signing and sealing keys (kept sealed in the catalog).
pub fn init(p: &mut Platform, s: &SiteInit) -> Result<SiteIdentity> {
    valid_site_name(&s.name)?;
    Jurisdiction::parse(&s.jurisdiction)?;
    parse_ceiling(&s.ceiling)?;
    parse_nations(&s.nationalities)?;
    if p.site_record::<SelfRecord>(SELF)?.is_some() {
        return Err(Error::Invalid(
            "this node is already a site (see `bletchley site status`)".into(),
        ));
    }
    let rec = SelfRecord::generate(SiteIdentity {
        name: s.name.clone(),
        role: s.role,
        jurisdiction: s.jurisdiction.clone(),
        ceiling: s.ceiling.clone(),
        nationalities: s
            .nationalities
            .iter()
            .map(|n| n.trim().to_owned())
            .collect(),
        signing_key: String::new(),
        sealing_key: String::new(),
        certificate: String::new(),
    })?;
    p.put_site_record(SELF, &rec)?;
    p.record(
        Actor::Operator,
        "site.init",
        vec![s.name.clone()],
        None,
        Outcome::Allowed,
        Some(format!(
            "{:?}, fingerprint {}",
            s.role,
            rec.identity.fingerprint()
        )),
    )?;
    Ok(rec.identity)
}

pub(crate) fn this(p: &Platform) -> Result<SelfRecord> {
    p.site_record::<SelfRecord>(SELF)?.ok_or(Error::NotASite)
}

/// This site's identity file (public keys, self-signed), to hand to the other side.
pub fn identity_file(p: &Platform) -> Result<String> {
    let signed = this(p)?.signed_identity()?;
    serde_json::to_string_pretty(&signed).map_err(|e| Error::Invalid(e.to_string()))
}

pub(crate) fn peer_names(p: &Platform) -> Result<Vec<String>> {
    Ok(p.site_record::<Vec<String>>(PEERS)?.unwrap_or_default())
}

pub(crate) fn peer(p: &Platform, name: &str) -> Result<PeerRecord> {
    p.site_record::<PeerRecord>(&peer_key(name))?
        .ok_or_else(|| Error::UnknownSite(name.to_owned()))
}

/// What `enrol` did.
pub struct Enrolled {
    /// The other side.
    pub identity: SiteIdentity,
    /// At the hub: the one-time code for the field site's operator, to be given over a separate
    /// channel.
    pub code: Option<String>,
}

/// Enrols the other side: a field site at the hub, or the hub at a field site. The identity file
/// came out of band; `fingerprint`, read over a separate channel, must match when given. The hub
/// makes a one-time code; the field site enrols the hub with it (`code`). Enrolling the same
/// identity again before first contact makes a new code (at the hub) or takes a new one (at the
/// field site).
pub fn enrol(
    p: &mut Platform,
    identity_text: &str,
    fingerprint: Option<&str>,
    code: Option<&str>,
) -> Result<Enrolled> {
    let me = this(p)?;
    let id = SignedIdentity::parse(identity_text)?;
    valid_site_name(&id.name)?;
    Jurisdiction::parse(&id.jurisdiction)?;
    parse_ceiling(&id.ceiling)?;
    parse_nations(&id.nationalities)?;
    if let Some(f) = fingerprint
        && f.trim() != id.fingerprint()
    {
        return Err(Error::Invalid(format!(
            "fingerprint mismatch: the file's is {}, you were told {}: do not enrol it",
            id.fingerprint(),
            f.trim()
        )));
    }
    match (me.identity.role, id.role) {
        (SiteRole::Hub, SiteRole::Field) | (SiteRole::Field, SiteRole::Hub) => {}
        (a, b) => {
            return Err(Error::Invalid(format!(
                "a {a:?} site enrols {}, not a {b:?} site",
                if a == SiteRole::Hub {
                    "field sites"
                } else {
                    "its hub"
                }
            )));
        }
    }
    if id.name == me.identity.name {
        return Err(Error::Invalid("a site cannot enrol itself".into()));
    }
    let enrolment = match (me.identity.role, code) {
        (SiteRole::Hub, Some(_)) => {
            return Err(Error::Invalid(
                "the hub makes the one-time code (it prints one when it enrols a field site); it takes none".into(),
            ));
        }
        (SiteRole::Hub, None) => {
            let code = crate::code::new_code()?;
            let n = crate::code::normalise(&code)?;
            Enrolment {
                hub_proof: Some(crate::code::proof(
                    &n,
                    crate::code::Prover::Hub,
                    &me.identity.fingerprint(),
                    &id.fingerprint(),
                )),
                code: Some(n),
                expires_ms: now_ms() + crate::code::VALID_MS,
                attempts: 0,
                confirmed: false,
            }
        }
        (SiteRole::Field, None) => {
            return Err(Error::Invalid(
                "enrolling the hub needs the one-time code its operator gave you: --code XXXXX-XXXXX-XXXXX".into(),
            ));
        }
        (SiteRole::Field, Some(c)) => Enrolment {
            code: Some(crate::code::normalise(c)?),
            ..Enrolment::default()
        },
    };
    let printed = |e: &Enrolment| {
        e.code
            .as_ref()
            .filter(|_| me.identity.role == SiteRole::Hub)
            .map(|c| format!("{}-{}-{}", &c[..5], &c[5..10], &c[10..]))
    };
    let mut names = peer_names(p)?;
    if me.identity.role == SiteRole::Field && names.iter().any(|n| n != &id.name) {
        return Err(Error::Invalid("this field site already has a hub".into()));
    }
    if let Some(mut existing) = p.site_record::<PeerRecord>(&peer_key(&id.name))? {
        if existing.identity != id {
            return Err(Error::Invalid(format!(
                "a different site named {:?} is already enrolled",
                id.name
            )));
        }
        // The same identity again: a new code (the old one was lost, expired or void).
        if existing.enrolment.confirmed && me.identity.role == SiteRole::Hub {
            return Err(Error::Invalid(format!(
                "{:?} is enrolled and has proved its code already",
                id.name
            )));
        }
        existing.enrolment = enrolment;
        let code = printed(&existing.enrolment);
        p.put_site_record(&peer_key(&id.name), &existing)?;
        p.record(
            Actor::Operator,
            "site.enrol",
            vec![id.name.clone()],
            None,
            Outcome::Allowed,
            Some("a new one-time code".into()),
        )?;
        return Ok(Enrolled { identity: id, code });
    }
    let code = printed(&enrolment);
    let rec = PeerRecord {
        identity: id.clone(),
        collections: Vec::new(),
        operations: Vec::new(),
        out: Outbound {
            head: genesis(),
            ..Outbound::default()
        },
        inbound: Inbound {
            applied_seq: 0,
            head: genesis(),
            received: BTreeSet::new(),
        },
        erase_confirmed: false,
        revoked: false,
        enrolment,
        accepts: Vec::new(),
    };
    p.put_site_record(&peer_key(&id.name), &rec)?;
    names.push(id.name.clone());
    p.put_site_record(PEERS, &names)?;
    p.record(
        Actor::Operator,
        "site.enrol",
        vec![id.name.clone()],
        None,
        Outcome::Allowed,
        Some(format!("{:?}, fingerprint {}", id.role, id.fingerprint())),
    )?;
    Ok(Enrolled { identity: id, code })
}

/// At the hub: checks a field site's proof of its one-time code, once. Until it has, the site
/// is sent nothing. A wrong proof counts; the fifth, or an expired code, voids the code (the
/// site must be enrolled again). Refusals are audited.
pub(crate) fn confirm_field(
    p: &mut Platform,
    rec: &mut PeerRecord,
    proof: Option<&str>,
) -> Result<()> {
    if rec.enrolment.confirmed {
        return Ok(());
    }
    let name = rec.identity.name.clone();
    let me = this(p)?;
    let verdict = match (&rec.enrolment.code, proof) {
        (None, _) => Err(format!(
            "the enrolment of {name:?} is void: enrol it again (`site enrol`) for a new code"
        )),
        (Some(_), _) if now_ms() > rec.enrolment.expires_ms => {
            rec.enrolment.code = None;
            Err(format!(
                "the one-time code of {name:?} expired before first contact: enrol it again"
            ))
        }
        (Some(_), None) => Err(format!(
            "{name:?} has not proved its one-time code (enrol the hub at the field with --code)"
        )),
        (Some(code), Some(got)) => {
            let want = crate::code::proof(
                code,
                crate::code::Prover::Field,
                &me.identity.fingerprint(),
                &rec.identity.fingerprint(),
            );
            if crate::code::same(&want, got) {
                Ok(())
            } else {
                rec.enrolment.attempts += 1;
                if rec.enrolment.attempts >= crate::code::MAX_ATTEMPTS {
                    rec.enrolment.code = None;
                    Err(format!(
                        "{name:?} proved a wrong one-time code {} times: the code is void, enrol it again",
                        rec.enrolment.attempts
                    ))
                } else {
                    Err(format!(
                        "{name:?} proved a wrong one-time code (attempt {} of {})",
                        rec.enrolment.attempts,
                        crate::code::MAX_ATTEMPTS
                    ))
                }
            }
        }
    };
    match verdict {
        Ok(()) => {
            rec.enrolment.confirmed = true;
            rec.enrolment.code = None;
            p.put_site_record(&peer_key(&name), rec)?;
            p.record(
                Actor::Operator,
                "site.enrol.confirm",
                vec![name],
                None,
                Outcome::Allowed,
                None,
            )?;
            Ok(())
        }
        Err(reason) => {
            p.put_site_record(&peer_key(&name), rec)?;
            p.record(
                Actor::Operator,
                "site.enrol.confirm",
                vec![name],
                None,
                Outcome::Refused,
                Some(reason.clone()),
            )?;
            Err(Error::Denied(reason))
        }
    }
}

/// At a field site: the proof it sends the hub until the hub has answered with its own.
pub(crate) fn field_proof(p: &Platform, hub: &PeerRecord) -> Result<Option<String>> {
    if hub.enrolment.confirmed {
        return Ok(None);
    }
    let Some(code) = &hub.enrolment.code else {
        return Ok(None);
    };
    let me = this(p)?;
    Ok(Some(crate::code::proof(
        code,
        crate::code::Prover::Field,
        &hub.identity.fingerprint(),
        &me.identity.fingerprint(),
    )))
}

/// At a field site: checks the hub's proof of the code, once; until then nothing from the hub is
/// applied.
pub(crate) fn confirm_hub(p: &mut Platform, hub: &str, proof: Option<&str>) -> Result<()> {
    let mut rec = peer(p, hub)?;
    if rec.enrolment.confirmed {
        return Ok(());
    }
    let me = this(p)?;
    let ok = match (&rec.enrolment.code, proof) {
        (Some(code), Some(got)) => crate::code::same(
            &crate::code::proof(
                code,
                crate::code::Prover::Hub,
                &rec.identity.fingerprint(),
                &me.identity.fingerprint(),
            ),
            got,
        ),
        _ => false,
    };
    if !ok {
        let reason = format!(
            "{hub:?} did not prove the one-time code this site was enrolled with: check the code, and that the identity file came from the hub"
        );
        p.record(
            Actor::Operator,
            "site.enrol.confirm",
            vec![hub.to_owned()],
            None,
            Outcome::Refused,
            Some(reason.clone()),
        )?;
        return Err(Error::Denied(reason));
    }
    rec.enrolment.confirmed = true;
    rec.enrolment.code = None;
    p.put_site_record(&peer_key(hub), &rec)?;
    p.record(
        Actor::Operator,
        "site.enrol.confirm",
        vec![hub.to_owned()],
        None,
        Outcome::Allowed,
        None,
    )?;
    Ok(())
}

/// Assigns collections (`agency/name`) and operations (names without `/`) to a field site, or
/// takes them away. Nothing moves until the next bundle or sync, which carries the difference.
pub fn assign(p: &mut Platform, name: &str, targets: &[String], remove: bool) -> Result<()> {
    let mut rec = peer(p, name)?;
    // The hub assigns what flows down to a field site; a field site assigns which of its own
    // collections flow up to the hub.
    let _ = this(p)?;
    let collections: BTreeSet<String> = p
        .collections()?
        .into_iter()
        .map(|c| format!("{}/{}", c.agency, c.name))
        .collect();
    let operations: BTreeSet<String> = p.operations()?.into_iter().map(|o| o.name).collect();
    for t in targets {
        let (list, known) = if t.contains('/') {
            (&mut rec.collections, collections.contains(t))
        } else {
            (&mut rec.operations, operations.contains(t))
        };
        if !known {
            return Err(Error::Invalid(format!(
                "no collection or operation named {t:?}"
            )));
        }
        if remove {
            list.retain(|x| x != t);
        } else if !list.contains(t) {
            list.push(t.clone());
        }
    }
    let action = if remove {
        "site.unassign"
    } else {
        "site.assign"
    };
    save_audited(p, &rec, action, targets)
}

/// Stores a peer record changed by the operator, and audits what changed.
fn save_audited(p: &mut Platform, rec: &PeerRecord, action: &str, what: &[String]) -> Result<()> {
    let name = rec.identity.name.clone();
    p.put_site_record(&peer_key(&name), rec)?;
    p.record(
        Actor::Operator,
        action,
        [vec![name], what.to_vec()].concat(),
        None,
        Outcome::Allowed,
        None,
    )?;
    Ok(())
}

/// `site accept NAME COLLECTION...` at the hub: the collections a field site may send its own
/// items into (they need not exist here yet). Without it a site can send up only its notes on
/// what the hub sent it. `remove` withdraws (what it sent stays).
pub fn accept(p: &mut Platform, name: &str, collections: &[String], remove: bool) -> Result<()> {
    let me = this(p)?;
    let mut rec = peer(p, name)?;
    if me.identity.role != SiteRole::Hub || rec.identity.role != SiteRole::Field {
        return Err(Error::Invalid(
            "the hub accepts collections from a field site".into(),
        ));
    }
    for c in collections {
        let ok = c.split_once('/').is_some_and(|(a, n)| {
            !a.is_empty()
                && !n.is_empty()
                && !n.contains('/')
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
        });
        if !ok {
            return Err(Error::Invalid(format!(
                "{c:?} is not a collection name (agency/name)"
            )));
        }
        if !remove && !p.has_collection(c)? {
            // The hub's own collection, made by its operator now: a field
            // site never creates one (or an agency) by sending items.
            p.add_collection(c, false)?;
        }
        if remove {
            rec.accepts.retain(|x| x != c);
        } else if !rec.accepts.contains(c) {
            rec.accepts.push(c.clone());
        }
    }
    let action = if remove {
        "site.unaccept"
    } else {
        "site.accept"
    };
    save_audited(p, &rec, action, collections)
}

pub(crate) fn scope(rec: &PeerRecord) -> Result<SiteScope> {
    let ceiling = parse_ceiling(&rec.identity.ceiling)?;
    Ok(SiteScope {
        name: rec.identity.name.clone(),
        ceiling: ceiling.classification(),
        compartments: ceiling.compartments().map(str::to_owned).collect(),
        nationalities: parse_nations(&rec.identity.nationalities)?,
        jurisdiction: Jurisdiction::parse(&rec.identity.jurisdiction)?,
        collections: rec.collections.clone(),
        operations: rec.operations.clone(),
        // The notes made here on what the peer sent: it holds those items, so it gets the
        // notes too (the other half of merging annotations by union).
        annotations_on: rec.inbound.received.clone(),
    })
}

/// One peer as `site status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct PeerStatus {
    /// Its identity.
    pub identity: SiteIdentity,
    /// Its fingerprint.
    pub fingerprint: String,
    /// Collections assigned.
    pub collections: Vec<String>,
    /// Operations assigned.
    pub operations: Vec<String>,
    /// Operations logged for it.
    pub logged: u64,
    /// Operations it acknowledged.
    pub acknowledged: u64,
    /// Items it holds by the log.
    pub items: usize,
    /// Operations applied from it.
    pub applied: u64,
    /// `none`, `ordered`, `sent` or `confirmed`.
    pub erase: String,
    /// Revoked: refused on every path.
    pub revoked: bool,
    /// `awaiting first contact` (the code is not proved yet), `confirmed`, or `void` (enrol it
    /// again for a new code).
    pub enrolment: String,
    /// At the hub: collections it may send items into.
    pub accepts: Vec<String>,
}

/// `site status`.
#[derive(Clone, Debug, Serialize)]
pub struct SiteStatus {
    /// This site.
    pub identity: SiteIdentity,
    /// Its fingerprint.
    pub fingerprint: String,
    /// The other side(s).
    pub peers: Vec<PeerStatus>,
}

/// How far a peer's enrolment is: `confirmed`, `awaiting first contact` (the code is not
/// proved yet) or `void` (enrol it again for a new code).
pub(crate) fn enrolment_state(r: &PeerRecord) -> &'static str {
    match (&r.enrolment.confirmed, &r.enrolment.code) {
        (true, _) => "confirmed",
        (false, Some(_)) => "awaiting first contact",
        (false, None) => "void",
    }
}

/// This site and its peers.
pub fn status(p: &Platform) -> Result<SiteStatus> {
    let me = this(p)?;
    let mut peers = Vec::new();
    for name in peer_names(p)? {
        let r = peer(p, &name)?;
        let enrolment = enrolment_state(&r);
        let erase = if r.erase_confirmed {
            "confirmed"
        } else if r.out.erase_seq.is_some() {
            "sent"
        } else if r.out.erase_ordered {
            "ordered"
        } else {
            "none"
        };
        peers.push(PeerStatus {
            fingerprint: r.identity.fingerprint(),
            identity: r.identity,
            collections: r.collections,
            operations: r.operations,
            logged: r.out.last_seq,
            acknowledged: r.out.acked_seq,
            items: r.out.present.len(),
            applied: r.inbound.applied_seq,
            erase: erase.into(),
            revoked: r.revoked,
            accepts: r.accepts,
            enrolment: enrolment.into(),
        });
    }
    Ok(SiteStatus {
        fingerprint: me.identity.fingerprint(),
        identity: me.identity,
        peers,
    })
}

/// `site revoke NAME`: its certificate no longer opens a connection and its bundles are refused.
pub fn revoke(p: &mut Platform, name: &str) -> Result<()> {
    let mut rec = peer(p, name)?;
    rec.revoked = true;
    p.put_site_record(&peer_key(name), &rec)?;
    p.record(
        Actor::Operator,
        "site.revoke",
        vec![name.to_owned()],
        None,
        Outcome::Allowed,
        None,
    )?;
    Ok(())
}

/// What `erase` did.
#[derive(Debug)]
pub enum Erased {
    /// This node's key files were destroyed.
    Local(Vec<std::path::PathBuf>),
    /// The order goes to the field site with the next bundle or sync.
    Ordered,
}

/// `site erase NAME`: this node's own name destroys its keys now (a field officer under duress);
/// an enrolled field site's name orders it to do so at its next contact.
pub fn erase(p: &mut Platform, name: &str) -> Result<Erased> {
    let me = this(p)?;
    if me.identity.name == name {
        let destroyed = p.erase_keys("erased locally by the operator")?;
        return Ok(Erased::Local(destroyed));
    }
    let mut rec = peer(p, name)?;
    if rec.identity.role != SiteRole::Field {
        return Err(Error::Invalid(format!("{name} is not a field site")));
    }
    rec.out.erase_ordered = true;
    p.put_site_record(&peer_key(name), &rec)?;
    p.record(
        Actor::Operator,
        "site.erase_order",
        vec![name.to_owned()],
        None,
        Outcome::Allowed,
        None,
    )?;
    Ok(Erased::Ordered)
}

/// Brings the log for a field site up to date with what it may hold now: removals for items it
/// may no longer hold, additions for new ones, and a pending erase order. Operations are written
/// before the state that counts them, so a crash between leaves entries that are overwritten.
/// Returns what the site may hold now, by id: the metadata that additions carry when sent.
pub(crate) fn extend_log(
    p: &mut Platform,
    rec: &mut PeerRecord,
) -> Result<BTreeMap<String, ItemMeta>> {
    let mut allowed = p.site_allowed(&scope(rec)?)?;
    allowed.retain(|m| !rec.inbound.received.contains(&m.id));
    let allowed: BTreeMap<String, ItemMeta> =
        allowed.into_iter().map(|m| (m.id.clone(), m)).collect();
    let mut kinds = Vec::new();
    for id in &rec.out.present {
        if !allowed.contains_key(id) {
            kinds.push(OpKind::ItemRemoved { id: id.clone() });
        }
    }
    for (id, meta) in &allowed {
        if !rec.out.present.contains(id) {
            kinds.push(OpKind::ItemAdded {
                id: id.clone(),
                meta: None,
            });
        } else if meta.remarked > rec.out.remarked.get(id).copied().unwrap_or(0) {
            kinds.push(OpKind::ItemRemarked {
                id: id.clone(),
                meta: None,
            });
        }
    }
    // A field site is told of every change of standing of the hub's principals.
    let mut told = rec.out.standing_told;
    if rec.identity.role == SiteRole::Field {
        for c in p.standing_changes()? {
            if c.n > told {
                told = c.n;
                kinds.push(match c.access {
                    Some(access) => OpKind::PrincipalAccess {
                        name: c.name,
                        agency: c.agency,
                        standing: c.standing,
                        access,
                    },
                    None => OpKind::PrincipalStanding {
                        name: c.name,
                        agency: c.agency,
                        standing: c.standing,
                    },
                });
            }
        }
    }
    rec.out.standing_told = told;
    if rec.out.erase_ordered && rec.out.erase_seq.is_none() {
        kinds.push(OpKind::EraseOrdered);
    }
    let name = rec.identity.name.clone();
    for kind in kinds {
        let seq = rec.out.last_seq + 1;
        let op = Op::new(seq, &rec.out.head, kind)?;
        p.put_site_record(&log_key(&name, seq), &op)?;
        match &op.kind {
            // An addition carries the metadata as it is when sent: re-markings until then
            // travel with it.
            OpKind::ItemAdded { id, .. } | OpKind::ItemRemarked { id, .. } => {
                rec.out.present.insert(id.clone());
                match allowed.get(id).map(|m| m.remarked) {
                    Some(n) if n > 0 => rec.out.remarked.insert(id.clone(), n),
                    _ => rec.out.remarked.remove(id),
                };
            }
            OpKind::ItemRemoved { id } => {
                rec.out.present.remove(id);
                rec.out.remarked.remove(id);
            }
            OpKind::PrincipalStanding { .. } | OpKind::PrincipalAccess { .. } => {}
            OpKind::EraseOrdered => rec.out.erase_seq = Some(seq),
        }
        rec.out.head = op.hash;
        rec.out.last_seq = seq;
    }
    p.put_site_record(&peer_key(&name), rec)?;
    Ok(allowed)
}

/// The stored operation `seq` of the log for `site`, as sent now: an addition carries the
/// metadata of its item while the site may still hold it.
pub(crate) fn outgoing_op(
    p: &Platform,
    site: &str,
    seq: u64,
    allowed: &BTreeMap<String, ItemMeta>,
) -> Result<Op> {
    let mut op: Op = p
        .site_record(&log_key(site, seq))?
        .ok_or_else(|| Error::Invalid(format!("operation {seq} for {site} is missing")))?;
    if let OpKind::ItemAdded { id, meta } | OpKind::ItemRemarked { id, meta } = &mut op.kind {
        *meta = allowed.get(id.as_str()).cloned().map(Box::new);
    }
    Ok(op)
}

/// A bundle ready to write, and what it holds.
pub struct Exported {
    /// The file's bytes.
    pub bytes: Vec<u8>,
    /// Its readable header.
    pub header: BundleHeader,
    /// Items whose content it carries.
    pub items: usize,
}

pub(crate) fn seal_and_sign(
    me: &SelfRecord,
    to: &SiteIdentity,
    mut header: BundleHeader,
    body: &Body,
) -> Result<Vec<u8>> {
    let sealer = OversightSealer::new(&to.sealing_key()?)?;
    header.ephemeral = hex::encode(sealer.ephemeral_public());
    let hb = bundle::header_bytes(&header)?;
    let sealed = sealer.seal(0, &hb, &bundle::encode_body(body)?)?;
    let key = me.signing_key()?;
    Ok(bundle::frame(&hb, &sealed, |m| key.sign(m)))
}

/// Why items of the collections assigned to `site` are not sent to it (marking,
/// residency), for a "nothing to send" that tells the whole truth.
pub fn held_back(p: &mut Platform, site: &str) -> Result<bletchley_store::platform::HeldBack> {
    let rec = peer(p, site)?;
    Ok(p.site_held_back(&scope(&rec)?)?)
}

/// `bundle export --site NAME`: at the hub, every operation the field site has not acknowledged
/// (or from `from`), with the contents of the items it adds; at a field site, an acknowledgement
/// of what it has applied from the hub. `None` when there is nothing to send.
pub fn export_bundle(p: &mut Platform, site: &str, from: Option<u64>) -> Result<Option<Exported>> {
    export_bundle_reporting(p, site, from, &mut |_, _| {})
}

/// [`export_bundle`], telling `progress` how many of the items it carries have been read
/// back, of how many.
pub fn export_bundle_reporting(
    p: &mut Platform,
    site: &str,
    from: Option<u64>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<Exported>> {
    let me = this(p)?;
    let mut rec = peer(p, site)?;
    if me.identity.role == SiteRole::Hub && !rec.enrolment.confirmed {
        return Err(Error::Invalid(format!(
            "{site} has not proved its one-time enrolment code yet, so nothing is sent to it: import its first bundle (`bundle export --site {} OUT` at {site}) or let it sync",
            me.identity.name
        )));
    }
    // A field site's bundle for the hub carries its own log (its collections assigned to the
    // hub, and its notes on what the hub sent) with its acknowledgement; until the hub has
    // proved the enrolment code, only the acknowledgement (which carries this site's proof).
    if me.identity.role == SiteRole::Field && !rec.enrolment.confirmed {
        return ack_bundle(p, &me, &rec, site).map(Some);
    }
    let uplink = me.identity.role == SiteRole::Field;
    let allowed = extend_log(p, &mut rec)?;
    let batch = Batch {
        from,
        uplink,
        budget: None,
    };
    export_ops(p, &me, &mut rec, site, allowed, batch, progress)
}

/// At a field site, the next batch of its own log for the hub, to send over the network: the
/// operations after what the hub has acknowledged, cut once the contents they carry pass
/// `budget` bytes (at least one operation). `None` when nothing of its own is waiting.
pub(crate) fn export_uplink(p: &mut Platform, hub: &str, budget: u64) -> Result<Option<Exported>> {
    let me = this(p)?;
    let mut rec = peer(p, hub)?;
    if me.identity.role != SiteRole::Field || !rec.enrolment.confirmed {
        return Ok(None);
    }
    let allowed = extend_log(p, &mut rec)?;
    if rec.out.acked_seq >= rec.out.last_seq {
        return Ok(None);
    }
    let batch = Batch {
        from: None,
        uplink: true,
        budget: Some(budget),
    };
    export_ops(p, &me, &mut rec, hub, allowed, batch, &mut |_, _| {})
}

/// At a field site: the hub says it has applied this site's log up to `seq` (hash `head`).
/// Recorded when it names an operation of that log rightly; what the hub says it holds is what
/// it holds, so a hub restored from an older state is sent the rest again.
pub(crate) fn take_receipt(p: &mut Platform, hub: &str, seq: u64, head: &str) -> Result<u64> {
    let mut rec = peer(p, hub)?;
    check_ack(p, &rec, seq, head)?;
    if seq != rec.out.acked_seq {
        rec.out.acked_seq = seq;
        p.put_site_record(&peer_key(hub), &rec)?;
    }
    Ok(seq)
}

/// A field site's acknowledgement of what it has applied from the hub.
fn ack_bundle(p: &mut Platform, me: &SelfRecord, rec: &PeerRecord, site: &str) -> Result<Exported> {
    {
        let header = BundleHeader {
            version: bundle::VERSION,
            kind: BundleKind::Ack,
            from: me.identity.name.clone(),
            to: site.to_owned(),
            first_seq: rec.inbound.applied_seq,
            last_seq: rec.inbound.applied_seq,
            prev: rec.inbound.head.clone(),
            head: rec.inbound.head.clone(),
            created_ms: now_ms(),
            ephemeral: String::new(),
            ack: None,
            enrol_proof: field_proof(p, rec)?,
        };
        let bytes = seal_and_sign(me, &rec.identity, header.clone(), &Body::default())?;
        p.record(
            Actor::Operator,
            "bundle.export",
            vec![site.to_owned(), format!("ack {}", rec.inbound.applied_seq)],
            None,
            Outcome::Allowed,
            None,
        )?;
        Ok(Exported {
            bytes,
            header,
            items: 0,
        })
    }
}

/// Which part of a log a bundle carries.
struct Batch {
    /// The first operation; after the peer's acknowledgement when `None`.
    from: Option<u64>,
    /// A field site's own log going up (it carries the site's acknowledgement too).
    uplink: bool,
    /// Stop adding operations once their contents pass this many bytes.
    budget: Option<u64>,
}

/// Operations (and contents) of the log for `site`.
fn export_ops(
    p: &mut Platform,
    me: &SelfRecord,
    rec: &mut PeerRecord,
    site: &str,
    allowed: BTreeMap<String, ItemMeta>,
    batch: Batch,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Option<Exported>> {
    let Batch {
        from,
        uplink,
        budget,
    } = batch;
    let first = from.unwrap_or(rec.out.acked_seq + 1).max(1);
    if first > rec.out.last_seq + 1 {
        return Err(Error::Invalid(format!(
            "the log for {site} has {} operations: cannot start at {first}",
            rec.out.last_seq
        )));
    }
    if first > rec.out.last_seq {
        if uplink {
            // Nothing of its own to send up: the acknowledgement alone.
            return ack_bundle(p, me, rec, site).map(Some);
        }
        return Ok(None);
    }
    let mut ops = Vec::new();
    let mut carried = 0u64;
    for seq in first..=rec.out.last_seq {
        if budget.is_some_and(|b| carried >= b) {
            break;
        }
        let op = outgoing_op(p, site, seq, &allowed)?;
        if let OpKind::ItemAdded {
            meta: Some(meta), ..
        } = &op.kind
        {
            carried += meta.size;
        }
        ops.push(op);
    }
    let last = ops[ops.len() - 1].seq;
    // Contents only for items the site may still hold; a later removal in the same bundle
    // makes the addition a no-op at the site.
    let wanted: Vec<String> = ops
        .iter()
        .filter_map(|o| match &o.kind {
            OpKind::ItemAdded { meta: Some(m), .. } => Some(m.id.clone()),
            _ => None,
        })
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let contents: Vec<(String, Vec<u8>)> = p
        .export_for_site_reporting(&scope(rec)?, &wanted, progress)?
        .into_iter()
        .map(|(m, c)| (m.id, c))
        .collect();
    let header = BundleHeader {
        version: bundle::VERSION,
        kind: BundleKind::Ops,
        from: me.identity.name.clone(),
        to: site.to_owned(),
        first_seq: first,
        last_seq: last,
        prev: ops[0].prev.clone(),
        head: ops[ops.len() - 1].hash.clone(),
        created_ms: now_ms(),
        ephemeral: String::new(),
        ack: uplink.then(|| (rec.inbound.applied_seq, rec.inbound.head.clone())),
        enrol_proof: if uplink {
            field_proof(p, rec)?
        } else {
            rec.enrolment.hub_proof.clone()
        },
    };
    let items = contents.len();
    let bytes = seal_and_sign(me, &rec.identity, header.clone(), &Body { ops, contents })?;
    p.record(
        Actor::Operator,
        "bundle.export",
        vec![site.to_owned(), format!("operations {first}..{last}")],
        None,
        Outcome::Allowed,
        Some(format!("{items} items")),
    )?;
    Ok(Some(Exported {
        bytes,
        header,
        items,
    }))
}

/// What an import did.
#[derive(Debug, Default, Serialize)]
pub struct ImportReport {
    /// The sender.
    pub from: String,
    /// Operations applied now (0 when the bundle was already imported).
    pub applied: u64,
    /// Items added.
    pub added: usize,
    /// Items removed (crypto-shredded).
    pub removed: usize,
    /// Items re-marked as the sender re-marked them.
    #[serde(default)]
    pub remarked: usize,
    /// Principals here whose standing changed as the hub changed theirs.
    #[serde(default)]
    pub principals: usize,
    /// Items a field site sent that were not stored: derived from an item this hub no longer
    /// holds.
    pub dropped: usize,
    /// The sender's log position this site now holds.
    pub position: u64,
    /// Already imported: nothing changed.
    pub already: bool,
    /// An acknowledgement was recorded (at the hub).
    pub acknowledged: Option<u64>,
    /// The hub ordered an erase and this node's keys are destroyed; the signed confirmation
    /// for the hub (a bundle) is here.
    #[serde(skip)]
    pub erased: Option<Vec<u8>>,
}

/// `bundle import FILE`: checks framing, addressee, signature, seal and chain before anything
/// is applied; refusals are audited and change nothing else.
pub fn import_bundle(p: &mut Platform, bytes: &[u8]) -> Result<ImportReport> {
    import_bundle_reporting(p, bytes, &mut |_, _| {})
}

/// [`import_bundle`], telling `progress` how many of the bundle's new operations have been
/// applied, of how many.
pub fn import_bundle_reporting(
    p: &mut Platform,
    bytes: &[u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportReport> {
    match import_checked(p, bytes, progress) {
        Ok(r) => Ok(r),
        Err(e) => {
            let _ = p.record(
                Actor::Operator,
                "bundle.import",
                Vec::new(),
                None,
                Outcome::Refused,
                Some(e.to_string()),
            );
            Err(e)
        }
    }
}

fn import_checked(
    p: &mut Platform,
    bytes: &[u8],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportReport> {
    let me = this(p)?;
    let (h, mut rec, body) = open_bundle(p, &me, bytes)?;
    // First contact: nothing is applied before the sender has proved the one-time code.
    match rec.identity.role {
        SiteRole::Field => confirm_field(p, &mut rec, h.enrol_proof.as_deref())?,
        SiteRole::Hub => {
            confirm_hub(p, &h.from, h.enrol_proof.as_deref())?;
            rec = peer(p, &h.from)?;
        }
    }
    match h.kind {
        BundleKind::Ack => apply_ack(p, &mut rec, &h),
        BundleKind::Ops => {
            if rec.identity.role == SiteRole::Field
                && body.ops.iter().any(|o| o.kind == OpKind::EraseOrdered)
            {
                return Err(Error::Tampered(format!(
                    "{:?} is a field site and cannot order an erase",
                    h.from
                )));
            }
            // The acknowledgement it carries is checked before anything is applied.
            if let Some((seq, head)) = &h.ack {
                check_ack(p, &rec, *seq, head)?;
            }
            let mut report = apply_ops(p, &mut rec, &h, body, progress)?;
            if let Some((seq, head)) = &h.ack {
                let ack_header = BundleHeader {
                    last_seq: *seq,
                    head: head.clone(),
                    ..h.clone()
                };
                let mut rec = peer(p, &rec.identity.name)?;
                match apply_ack(p, &mut rec, &ack_header) {
                    Ok(a) => report.acknowledged = a.acknowledged,
                    // An older acknowledgement than one already recorded changes nothing.
                    Err(Error::Replayed { .. }) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(report)
        }
    }
}

/// Checks a bundle's framing, addressee, sender, signature and seal; returns its header, the
/// sender's record and the opened body.
pub(crate) fn open_bundle(
    p: &Platform,
    me: &SelfRecord,
    bytes: &[u8],
) -> Result<(BundleHeader, PeerRecord, Body)> {
    let parsed = bundle::parse(bytes)?;
    let h = parsed.header.clone();
    if h.to != me.identity.name {
        return Err(Error::Misaddressed {
            to: h.to,
            this: me.identity.name.clone(),
        });
    }
    let rec = p
        .site_record::<PeerRecord>(&peer_key(&h.from))?
        .ok_or_else(|| {
            Error::Tampered(format!(
                "it comes from {:?}, which is not enrolled here",
                h.from
            ))
        })?;
    if rec.revoked {
        return Err(Error::Tampered(format!("{:?} is revoked here", h.from)));
    }
    if !rec
        .identity
        .verifying_key()?
        .verify(parsed.signed, parsed.signature)
    {
        return Err(Error::Tampered(format!(
            "the signature of {:?} does not verify: the bundle was altered or forged",
            h.from
        )));
    }
    let epk: [u8; 32] = hex::decode(&h.ephemeral)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| Error::Malformed("the sealing key in the header".into()))?;
    let plain = OversightOpener::new(&me.sealing_secret()?)
        .open(&epk, 0, parsed.header_bytes, parsed.sealed)
        .map_err(|_| {
            Error::Tampered("the sealed body does not open with this site's key".into())
        })?;
    let body = bundle::decode_body(&plain)?;
    Ok((h, rec, body))
}

/// Checks that an acknowledgement names an operation of our log for that peer, rightly.
fn check_ack(p: &Platform, rec: &PeerRecord, seq: u64, head: &str) -> Result<()> {
    let name = rec.identity.name.clone();
    if seq > rec.out.last_seq {
        return Err(Error::Fork(name));
    }
    let expected = if seq == 0 {
        genesis()
    } else {
        p.site_record::<Op>(&log_key(&name, seq))?
            .map(|o| o.hash)
            .ok_or_else(|| Error::Fork(name.clone()))?
    };
    if expected != head {
        return Err(Error::Fork(name));
    }
    Ok(())
}

fn apply_ack(p: &mut Platform, rec: &mut PeerRecord, h: &BundleHeader) -> Result<ImportReport> {
    let name = rec.identity.name.clone();
    check_ack(p, rec, h.last_seq, &h.head)?;
    if h.last_seq < rec.out.acked_seq {
        return Err(Error::Replayed {
            from: name,
            ends: h.last_seq,
            applied: rec.out.acked_seq,
        });
    }
    let already = h.last_seq == rec.out.acked_seq;
    rec.out.acked_seq = h.last_seq;
    if rec.out.erase_seq.is_some_and(|s| s <= h.last_seq) {
        rec.erase_confirmed = true;
    }
    p.put_site_record(&peer_key(&name), rec)?;
    p.record(
        Actor::Operator,
        "bundle.import",
        vec![name.clone(), format!("ack {}", h.last_seq)],
        None,
        Outcome::Allowed,
        None,
    )?;
    Ok(ImportReport {
        from: name,
        position: h.last_seq,
        already,
        acknowledged: Some(h.last_seq),
        ..ImportReport::default()
    })
}

fn apply_ops(
    p: &mut Platform,
    rec: &mut PeerRecord,
    h: &BundleHeader,
    body: Body,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ImportReport> {
    let name = rec.identity.name.clone();
    if body.ops.is_empty() || h.first_seq == 0 || h.last_seq < h.first_seq {
        return Err(Error::Malformed("a bundle without operations".into()));
    }
    verify_chain(&body.ops, h.first_seq, &h.prev, &h.head)?;
    if h.last_seq != h.first_seq + body.ops.len() as u64 - 1 {
        return Err(Error::Tampered(
            "the header's operation range does not match".into(),
        ));
    }
    let applied = rec.inbound.applied_seq;
    if h.last_seq < applied {
        return Err(Error::Replayed {
            from: name,
            ends: h.last_seq,
            applied,
        });
    }
    if h.first_seq > applied + 1 {
        return Err(Error::Gap {
            from: name,
            starts: h.first_seq,
            applied,
            next: applied + 1,
        });
    }
    // The bundle must continue exactly the history already applied.
    let held = if applied + 1 == h.first_seq {
        h.prev.clone()
    } else {
        body.ops[(applied - h.first_seq) as usize].hash.clone()
    };
    if held != rec.inbound.head {
        return Err(Error::Fork(name));
    }
    if h.last_seq == applied {
        return Ok(ImportReport {
            from: name,
            position: applied,
            already: true,
            ..ImportReport::default()
        });
    }
    let fresh: Vec<&Op> = body.ops.iter().filter(|o| o.seq > applied).collect();
    // Check everything before changing anything: every addition that stays has its content.
    let contents: BTreeMap<&str, &Vec<u8>> =
        body.contents.iter().map(|(i, c)| (i.as_str(), c)).collect();
    let mut last_op_of: BTreeMap<&str, u64> = BTreeMap::new();
    // What a field site may send into: collections the hub already has.
    let hub_collections: BTreeSet<String> = if rec.identity.role == SiteRole::Field {
        p.collection_names()?
    } else {
        BTreeSet::new()
    };
    for o in &fresh {
        if let Some(id) = o.kind.item() {
            last_op_of.insert(id, o.seq);
        }
    }
    for o in &fresh {
        if let Some(meta) = o.kind.added()? {
            let stays = last_op_of.get(meta.id.as_str()) == Some(&o.seq);
            if stays && !contents.contains_key(meta.id.as_str()) {
                return Err(Error::Malformed(format!(
                    "item {} is added without its content",
                    meta.id
                )));
            }
            let marking = Marking::parse(&meta.marking)
                .map_err(|e| Error::Malformed(format!("item {}: marking: {e}", meta.id)))?;
            // At the hub, a field site adds only into the collections accepted from it, and notes
            // on what the hub sent it.
            if stays && rec.identity.role == SiteRole::Field {
                let note_on_ours = meta.derivation.as_deref() == Some(ANNOTATION)
                    && meta
                        .derived_from
                        .as_ref()
                        .is_some_and(|s| rec.out.present.contains(s));
                if !note_on_ours && !rec.accepts.contains(&meta.collection) {
                    return Err(Error::Denied(format!(
                        "{name} may not send items into {}: `site accept {name} {}` at the hub allows it",
                        meta.collection, meta.collection
                    )));
                }
                // A field site is an outsider here: it creates no agency or
                // collection, and a note keeps its item's collection and
                // marking and names its writer at that site.
                if !hub_collections.contains(&meta.collection) {
                    return Err(Error::Denied(format!(
                        "{name} sent item {} into {}, which does not exist at the hub",
                        meta.id, meta.collection
                    )));
                }
                let source = meta.derived_from.as_deref().unwrap_or_default();
                // A note on an item shredded here since is dropped below.
                if note_on_ours
                    && let Some((collection, source_marking)) = p.placement_of(source)?
                {
                    if collection != meta.collection || marking.explicit(p.home()) != source_marking
                    {
                        return Err(Error::Denied(format!(
                            "{name} sent note {} in {} at {}, not in its item's collection at its item's marking",
                            meta.id, meta.collection, meta.marking
                        )));
                    }
                    let author = meta.title.strip_prefix("note by ").unwrap_or_default();
                    let qualified = author
                        .rsplit_once('@')
                        .is_some_and(|(who, at)| !who.is_empty() && at == name);
                    if !qualified {
                        return Err(Error::Denied(format!(
                            "{name} sent note {} by {author:?}: a note from {name} names its writer as WHO@{name}",
                            meta.id
                        )));
                    }
                }
            }
        }
    }
    let mut report = ImportReport {
        from: name.clone(),
        ..ImportReport::default()
    };
    let mut erase = false;
    let mut orphans = Vec::new();
    let total = fresh.len() as u64;
    for (n, o) in fresh.iter().enumerate() {
        progress(n as u64, total);
        match &o.kind {
            // A field site's part or note of an item the hub no longer holds (it was shredded
            // here): storing it would bring back what was destroyed.
            // An addition without metadata is of an item gone at the sender: nothing to store.
            OpKind::ItemAdded { meta: None, .. } => {}
            OpKind::ItemAdded {
                meta: Some(meta), ..
            } => {
                let orphan = match &meta.derived_from {
                    Some(source) if rec.identity.role == SiteRole::Field => !p.holds(source)?,
                    _ => false,
                };
                if orphan {
                    orphans.push(meta.id.clone());
                } else if let Some(content) = contents.get(meta.id.as_str())
                    && last_op_of.get(meta.id.as_str()) == Some(&o.seq)
                    && p.store_replica(
                        &name,
                        &qualified(meta, &name, rec.identity.role),
                        (*content).clone(),
                    )?
                {
                    report.added += 1;
                    rec.inbound.received.insert(meta.id.clone());
                }
            }
            // What a field site sent up stays at the hub: a field site cannot delete the hub's
            // copies (it can only stop sending).
            OpKind::ItemRemoved { .. } if rec.identity.role == SiteRole::Field => {}
            OpKind::ItemRemoved { id } => {
                if p.remove_replica(&name, id)? {
                    report.removed += 1;
                }
            }
            // Likewise a field site does not re-mark the hub's copies; a re-marking without
            // metadata is of an item gone at the sender.
            OpKind::ItemRemarked { .. } if rec.identity.role == SiteRole::Field => {}
            OpKind::ItemRemarked { meta: None, .. } => {}
            OpKind::ItemRemarked { .. } => {
                if let Some(meta) = o.kind.remarked()?
                    && p.remark_replica(&name, meta)?
                {
                    report.remarked += 1;
                }
            }
            // Only the hub tells of its principals.
            OpKind::PrincipalStanding { .. } | OpKind::PrincipalAccess { .. }
                if rec.identity.role == SiteRole::Field => {}
            OpKind::PrincipalAccess {
                name: who,
                agency,
                standing,
                access,
            } => {
                if p.apply_told_access(&name, who, agency, *standing, access)? {
                    report.principals += 1;
                }
            }
            OpKind::PrincipalStanding {
                name: who,
                agency,
                standing,
            } => {
                if p.apply_told_standing(&name, who, agency, *standing)? {
                    report.principals += 1;
                }
            }
            OpKind::EraseOrdered => erase = true,
        }
    }
    progress(total, total);
    if !orphans.is_empty() {
        p.record(
            Actor::Principal(format!("site:{name}")),
            "sync.receive",
            orphans.clone(),
            None,
            Outcome::Refused,
            Some("derived from an item not held here (shredded?): not stored".into()),
        )?;
    }
    report.dropped = orphans.len();
    rec.inbound.applied_seq = h.last_seq;
    rec.inbound.head = h.head.clone();
    p.put_site_record(&peer_key(&name), rec)?;
    report.applied = fresh.len() as u64;
    report.position = h.last_seq;
    p.record(
        Actor::Operator,
        "bundle.import",
        vec![
            name.clone(),
            format!("operations {}..{}", h.first_seq, h.last_seq),
        ],
        None,
        Outcome::Allowed,
        Some(format!(
            "{} added, {} removed",
            report.added, report.removed
        )),
    )?;
    if erase {
        // The confirmation is signed while the keys still exist; then they go.
        let ack = export_bundle(p, &name, None)?
            .ok_or_else(|| Error::Invalid("no confirmation could be written".into()))?;
        p.erase_keys(&format!("erase ordered by {name}"))?;
        report.erased = Some(ack.bytes);
    }
    Ok(report)
}

/// What a peer sent, as stored here: from a field site, whoever stored it
/// is named at that site (`officer@cyprus`), never as a principal of this
/// node.
fn qualified(meta: &ItemMeta, site: &str, role: SiteRole) -> ItemMeta {
    let mut m = meta.clone();
    if role == SiteRole::Field && !m.ingested_by.ends_with(&format!("@{site}")) {
        m.ingested_by = format!("{}@{site}", m.ingested_by);
    }
    m
}
