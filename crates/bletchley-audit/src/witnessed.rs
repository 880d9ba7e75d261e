//! The log's side of witnessing: which witnesses it asks and how many must
//! agree (the policy), asking them (`tlog-witness` `add-checkpoint`), keeping
//! their cosignatures beside the checkpoints, verifying the log against the
//! newest checkpoint a quorum cosigned, and proofs an outside tool can check.
//!
//! Files in the audit directory:
//!
//! | file | holds |
//! |---|---|
//! | `witnesses.json` | the policy: each witness's key and URL, and the quorum |
//! | `cosigned` | every checkpoint that gained cosignatures, one JSON line each: the platform's note with the cosignature lines after its signature |
//! | `cosign.lock` | serialises collectors across processes |
//!
//! Cosigning is not part of an append: a witness that is down delays its
//! cosignature, never an entry. Entries past the newest witnessed checkpoint are
//! reported as not yet witnessed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bletchley_crypto::keyfile::write_atomic;

use crate::cosign::{WitnessKey, split_note};
use crate::error::{Error, Result};
use crate::log::{AuditLog, Report};
use crate::merkle::{self, Hash};
use crate::note::{Checkpoint, Verifier};

const POLICY_FILE: &str = "witnesses.json";
const COSIGNED_FILE: &str = "cosigned";
/// Cosignatures dated further ahead than this are not counted.
const CLOCK_SKEW_S: u64 = 600;

/// Which witnesses the log asks, and how many of them must cosign a checkpoint
/// for `audit verify` to accept it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WitnessPolicy {
    /// Cosignatures needed, 1 to the number of witnesses.
    pub quorum: usize,
    /// The witnesses.
    pub witnesses: Vec<WitnessConfig>,
}

/// One witness: its public key and where to reach it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WitnessConfig {
    /// The key in vkey text form (`name+id+base64(0x04 || key)`).
    pub key: String,
    /// The submission prefix: requests go to `<url>/add-checkpoint`.
    pub url: String,
}

impl WitnessPolicy {
    /// The witnesses' keys, each checked.
    pub fn keys(&self) -> Result<Vec<WitnessKey>> {
        self.witnesses
            .iter()
            .map(|w| WitnessKey::parse(&w.key))
            .collect()
    }

    /// Checks keys, names, URLs and the quorum.
    pub fn check(&self) -> Result<()> {
        let bad = |r: String| Error::Malformed {
            what: "witness policy",
            reason: r,
        };
        let keys = self.keys()?;
        let names: BTreeSet<&str> = keys.iter().map(|k| k.name.as_str()).collect();
        if names.len() != keys.len() {
            return Err(bad("two witnesses share a name".into()));
        }
        for w in &self.witnesses {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(bad(format!(
                    "{:?} is not an http:// or https:// URL",
                    w.url
                )));
            }
        }
        if self.quorum == 0 || self.quorum > keys.len() {
            return Err(bad(format!(
                "quorum {} must be between 1 and the number of witnesses ({})",
                self.quorum,
                keys.len()
            )));
        }
        Ok(())
    }
}

/// How requests reach a witness: the binary supplies an HTTP client.
pub trait Transport {
    /// POSTs `body` to `url`: the status and body of the answer, or why there was none.
    fn post(&self, url: &str, body: &str) -> std::result::Result<(u16, String), String>;
}

/// What one witness did with the checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CosignOutcome {
    /// It cosigned now.
    Cosigned {
        /// The cosignature's time stamp.
        time: u64,
    },
    /// Its cosignature on this checkpoint was already kept.
    AlreadyCosigned,
    /// It refused; for 409 and 422 that is evidence that the log forked or was rewritten.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The witness's reason.
        message: String,
    },
    /// It has cosigned a larger tree than this log's newest checkpoint: the log
    /// (or the whole data directory) was rolled back.
    RolledBack {
        /// What the witness cosigned.
        witnessed: u64,
        /// What the log now holds.
        newest: u64,
    },
    /// It could not be reached; asked again next time, nothing is lost.
    Unreachable {
        /// Why.
        error: String,
    },
}

/// One witness's result.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WitnessResult {
    /// The witness's name.
    pub witness: String,
    /// What happened.
    #[serde(flatten)]
    pub outcome: CosignOutcome,
}

/// What a round of collection achieved.
#[derive(Clone, Debug, serde::Serialize)]
pub struct CosignReport {
    /// The checkpoint's size.
    pub size: u64,
    /// Per witness.
    pub results: Vec<WitnessResult>,
    /// How many of the policy's witnesses have now cosigned it.
    pub cosigned_by: usize,
    /// The quorum.
    pub quorum: usize,
}

/// What `verify_witnessed` established.
#[derive(Clone, Debug, serde::Serialize)]
pub struct WitnessedReport {
    /// The log checked against every checkpoint the platform signed.
    #[serde(flatten)]
    pub log: Report,
    /// Entries covered by the newest checkpoint a quorum cosigned.
    pub witnessed_size: u64,
    /// Who cosigned it.
    pub cosigners: Vec<String>,
    /// The quorum required.
    pub quorum: usize,
    /// Entries signed by the platform and not yet cosigned by a quorum.
    pub not_yet_witnessed: u64,
}

/// A checkpoint with every cosignature line kept for its body.
struct Cosigned {
    checkpoint: Checkpoint,
    body: String,
    /// The platform's signature line(s) and the cosignatures, without duplicates.
    lines: BTreeSet<String>,
}

impl Cosigned {
    fn note(&self) -> String {
        let mut n = format!("{}\n", self.body);
        for l in &self.lines {
            n.push_str(l);
            n.push('\n');
        }
        n
    }

    fn cosigners<'k>(&self, keys: &'k [WitnessKey], not_after: u64) -> Vec<&'k WitnessKey> {
        keys.iter()
            .filter(|k| {
                self.lines
                    .iter()
                    .any(|l| k.check(&self.body, l).is_some_and(|t| t <= not_after))
            })
            .collect()
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct CosignedLine {
    size: u64,
    note: String,
}

/// An inclusion proof of one entry, for an outside tool: the leaf's bytes, its
/// RFC 9162 audit path and the checkpoint (with its cosignatures) it leads to.
#[derive(Clone, Debug, serde::Serialize)]
pub struct InclusionProof {
    /// The log.
    pub origin: String,
    /// The entry's index.
    pub index: u64,
    /// The tree size the proof is for.
    pub tree_size: u64,
    /// The leaf as stored, base64; its hash is SHA-256(0x00 || leaf).
    pub leaf: String,
    /// SHA-256(0x00 || leaf), base64.
    pub leaf_hash: String,
    /// The audit path, base64 hashes, leaf to root.
    pub proof: Vec<String>,
    /// The signed (and cosigned) checkpoint of `tree_size` entries.
    pub checkpoint: String,
}

/// A consistency proof between two tree sizes, for an outside tool.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ConsistencyProof {
    /// The log.
    pub origin: String,
    /// The earlier size.
    pub old_size: u64,
    /// The root of the first `old_size` entries, base64.
    pub old_root: String,
    /// The later size.
    pub tree_size: u64,
    /// RFC 9162 consistency proof, base64 hashes.
    pub proof: Vec<String>,
    /// The signed (and cosigned) checkpoint of `tree_size` entries.
    pub checkpoint: String,
}

impl AuditLog {
    /// The stored policy, if witnesses were configured.
    pub fn witness_policy(&self) -> Result<Option<WitnessPolicy>> {
        let p = self.path(POLICY_FILE);
        match std::fs::read(&p) {
            Ok(b) => {
                let policy: WitnessPolicy =
                    serde_json::from_slice(&b).map_err(|e| Error::Malformed {
                        what: "witness policy",
                        reason: format!("{}: {e}", p.display()),
                    })?;
                policy.check()?;
                Ok(Some(policy))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io {
                path: p.display().to_string(),
                source,
            }),
        }
    }

    /// Stores (or, with `None`, removes) the policy.
    pub fn set_witness_policy(&self, policy: Option<&WitnessPolicy>) -> Result<()> {
        let p = self.path(POLICY_FILE);
        match policy {
            Some(policy) => {
                policy.check()?;
                let bytes = serde_json::to_vec_pretty(policy).map_err(|e| Error::Malformed {
                    what: "witness policy",
                    reason: e.to_string(),
                })?;
                write_atomic(&p, &bytes)?;
            }
            None => match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Io {
                        path: p.display().to_string(),
                        source,
                    });
                }
            },
        }
        Ok(())
    }

    /// Every kept cosigned checkpoint that the platform's key signed, merged by
    /// body, smallest first. Lines a host added without the platform's signature
    /// are ignored.
    fn cosigned(&self, v: &Verifier) -> Result<Vec<Cosigned>> {
        let p = self.path(COSIGNED_FILE);
        let text = match std::fs::read_to_string(&p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => {
                return Err(Error::Io {
                    path: p.display().to_string(),
                    source,
                });
            }
        };
        let complete = match text.rfind('\n') {
            Some(i) => &text[..=i],
            None => "",
        };
        let mut by_body: BTreeMap<(u64, String), Cosigned> = BTreeMap::new();
        for line in complete.lines() {
            let Ok(l) = serde_json::from_str::<CosignedLine>(line) else {
                continue;
            };
            let Ok(cp) = Checkpoint::verify(&l.note, v) else {
                continue;
            };
            let Ok((body, sigs)) = split_note(&l.note) else {
                continue;
            };
            let entry = by_body
                .entry((cp.size, body.clone()))
                .or_insert_with(|| Cosigned {
                    checkpoint: cp,
                    body,
                    lines: BTreeSet::new(),
                });
            entry.lines.extend(sigs.into_iter().map(str::to_owned));
        }
        Ok(by_body.into_values().collect())
    }

    fn keep_cosigned(&self, note: &str, size: u64) -> Result<()> {
        let p = self.path(COSIGNED_FILE);
        let io = |source| Error::Io {
            path: p.display().to_string(),
            source,
        };
        let mut line = serde_json::to_string(&CosignedLine {
            size,
            note: note.to_owned(),
        })
        .map_err(|e| Error::Malformed {
            what: "cosigned checkpoint",
            reason: e.to_string(),
        })?;
        line.push('\n');
        // Cut a torn last line first (a crash mid-append) so this one stands alone.
        if let Ok(old) = std::fs::read(&p)
            && !old.is_empty()
            && old.last() != Some(&b'\n')
        {
            let keep = old.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
            let f = OpenOptions::new().write(true).open(&p).map_err(io)?;
            f.set_len(keep as u64).map_err(io)?;
        }
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(io)?;
        f.write_all(line.as_bytes()).map_err(io)?;
        f.sync_data().map_err(io)
    }

    /// Asks every witness of `policy` to cosign the newest checkpoint, giving
    /// each a consistency proof from the size it last cosigned, and keeps the
    /// cosignatures.
    pub fn collect_cosignatures(
        &self,
        policy: &WitnessPolicy,
        transport: &dyn Transport,
    ) -> Result<CosignReport> {
        policy.check()?;
        let lock_path = self.path("cosign.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|source| Error::Io {
                path: lock_path.display().to_string(),
                source,
            })?;
        lock.lock().map_err(|source| Error::Io {
            path: lock_path.display().to_string(),
            source,
        })?;
        let v = self.verifier()?;
        let (cp, note) = self.newest_note(&v)?;
        let (body, platform_sigs) = split_note(&note)?;
        let kept = self.cosigned(&v)?;
        let keys = policy.keys()?;
        let mut leaves: Option<Vec<Hash>> = None;
        let mut gained: Vec<String> = Vec::new();
        let mut results = Vec::new();
        for (cfg, key) in policy.witnesses.iter().zip(&keys) {
            let mine: Vec<&Cosigned> = kept
                .iter()
                .filter(|c| !c.cosigners(std::slice::from_ref(key), u64::MAX).is_empty())
                .collect();
            let last = mine.iter().map(|c| c.checkpoint.size).max().unwrap_or(0);
            let outcome = if mine.iter().any(|c| c.body == body) {
                CosignOutcome::AlreadyCosigned
            } else if last > cp.size {
                CosignOutcome::RolledBack {
                    witnessed: last,
                    newest: cp.size,
                }
            } else {
                let url = format!("{}/add-checkpoint", cfg.url.trim_end_matches('/'));
                let mut old = last;
                let mut outcome = None;
                for _ in 0..2 {
                    if old > 0 && old < cp.size && leaves.is_none() {
                        leaves = Some(self.leaf_hashes(cp.size, &BTreeSet::new())?.0);
                    }
                    let mut request = format!("old {old}\n");
                    if let Some(l) = &leaves
                        && old > 0
                        && old < cp.size
                    {
                        for h in merkle::consistency_proof(old as usize, l) {
                            request.push_str(&B64.encode(h));
                            request.push('\n');
                        }
                    }
                    request.push('\n');
                    request.push_str(&note);
                    match transport.post(&url, &request) {
                        Err(error) => outcome = Some(CosignOutcome::Unreachable { error }),
                        Ok((200, answer)) => {
                            let mut time = None;
                            for l in answer.lines() {
                                if let Some(t) = key.check(&body, l) {
                                    gained.push(l.to_owned());
                                    time = Some(t);
                                }
                            }
                            outcome = Some(match time {
                                Some(time) => CosignOutcome::Cosigned { time },
                                None => CosignOutcome::Refused {
                                    status: 200,
                                    message: "the answer holds no valid cosignature by this witness's key".into(),
                                },
                            });
                        }
                        Ok((409, answer)) => {
                            match answer.trim().parse::<u64>() {
                                Ok(m) if m > cp.size => {
                                    outcome = Some(CosignOutcome::RolledBack {
                                        witnessed: m,
                                        newest: cp.size,
                                    })
                                }
                                Ok(m) if m != old => {
                                    // It knows another size: prove from there.
                                    old = m;
                                    continue;
                                }
                                _ => {
                                    outcome = Some(CosignOutcome::Refused {
                                        status: 409,
                                        message: format!(
                                            "{}: the witness cosigned another tree of this size: the log forked",
                                            answer.trim()
                                        ),
                                    })
                                }
                            }
                        }
                        Ok((status, answer)) => {
                            outcome = Some(CosignOutcome::Refused {
                                status,
                                message: answer.trim().chars().take(500).collect(),
                            })
                        }
                    }
                    break;
                }
                outcome.unwrap_or(CosignOutcome::Refused {
                    status: 409,
                    message: "the witness keeps naming another old size".into(),
                })
            };
            results.push(WitnessResult {
                witness: key.name.clone(),
                outcome,
            });
        }
        if !gained.is_empty() {
            let mut lines: BTreeSet<String> =
                platform_sigs.into_iter().map(str::to_owned).collect();
            lines.extend(gained);
            let merged = Cosigned {
                checkpoint: cp.clone(),
                body: body.clone(),
                lines,
            };
            self.keep_cosigned(&merged.note(), cp.size)?;
        }
        let now_cosigners = self
            .cosigned(&v)?
            .iter()
            .filter(|c| c.body == body)
            .map(|c| c.cosigners(&keys, u64::MAX).len())
            .max()
            .unwrap_or(0);
        let _ = lock.unlock();
        Ok(CosignReport {
            size: cp.size,
            results,
            cosigned_by: now_cosigners,
            quorum: policy.quorum,
        })
    }

    /// Verifies the log as [`AuditLog::verify`] does, then requires a checkpoint
    /// cosigned by `quorum` of `witnesses` and checks the log against it. `now`
    /// (Unix seconds) bounds the cosignatures' time stamps.
    pub fn verify_witnessed(
        &self,
        verifier: Option<&Verifier>,
        witnesses: &[WitnessKey],
        quorum: usize,
        now: u64,
    ) -> Result<WitnessedReport> {
        let stored;
        let v = match verifier {
            Some(v) => v,
            None => {
                stored = self.verifier()?;
                &stored
            }
        };
        let log = self.verify(None, Some(v))?;
        let mut best = (0usize, 0u64);
        for c in self.cosigned(v)?.iter().rev() {
            let who = c.cosigners(witnesses, now + CLOCK_SKEW_S);
            if who.len() >= quorum {
                self.verify(Some(&c.note()), Some(v))?;
                return Ok(WitnessedReport {
                    witnessed_size: c.checkpoint.size,
                    cosigners: who.iter().map(|k| k.name.clone()).collect(),
                    quorum,
                    not_yet_witnessed: log.entries - c.checkpoint.size,
                    log,
                });
            }
            if who.len() > best.0 {
                best = (who.len(), c.checkpoint.size);
            }
        }
        Err(Error::NotWitnessed {
            quorum,
            best: best.0,
            best_size: best.1,
        })
    }

    /// The note to prove against: the largest cosigned checkpoint covering
    /// `min_size` entries, else the newest signed one.
    fn proof_note(&self, v: &Verifier, min_size: u64) -> Result<(Checkpoint, String)> {
        if let Some(c) = self
            .cosigned(v)?
            .into_iter()
            .rev()
            .find(|c| c.checkpoint.size >= min_size && c.lines.len() > 1)
        {
            let note = c.note();
            return Ok((c.checkpoint, note));
        }
        self.newest_note(v)
    }

    /// The inclusion proof of entry `index` in the newest cosigned checkpoint
    /// that covers it (or the newest signed one).
    pub fn inclusion_proof(&self, index: u64) -> Result<InclusionProof> {
        let mut proofs = self.inclusion_proofs(&[index])?;
        proofs.pop().ok_or(Error::Truncated {
            expected: index + 1,
            found: 0,
        })
    }

    /// Inclusion proofs of several entries, each against the newest cosigned checkpoint
    /// that covers it (or the newest signed one, for entries no witness has cosigned
    /// yet). The log is read once, however many are asked for.
    pub fn inclusion_proofs(&self, indices: &[u64]) -> Result<Vec<InclusionProof>> {
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let v = self.verifier()?;
        let mut notes = Vec::with_capacity(indices.len());
        for &index in indices {
            let (cp, note) = self.proof_note(&v, index + 1)?;
            if index >= cp.size {
                return Err(Error::Malformed {
                    what: "proof request",
                    reason: format!(
                        "entry {index} is not covered by the newest checkpoint ({} entries)",
                        cp.size
                    ),
                });
            }
            notes.push((index, cp, note));
        }
        let upto = notes.iter().map(|(_, cp, _)| cp.size).max().unwrap_or(0);
        let keep: BTreeSet<u64> = indices.iter().copied().collect();
        let (hashes, leaves) = self.leaf_hashes(upto, &keep)?;
        notes
            .into_iter()
            .map(|(index, cp, note)| {
                let leaf = leaves.get(&index).ok_or(Error::Truncated {
                    expected: index + 1,
                    found: hashes.len() as u64,
                })?;
                let proof = merkle::inclusion_proof(index as usize, &hashes[..cp.size as usize]);
                Ok(InclusionProof {
                    origin: cp.origin,
                    index,
                    tree_size: cp.size,
                    leaf_hash: B64.encode(merkle::leaf_hash(leaf)),
                    leaf: B64.encode(leaf),
                    proof: proof.iter().map(|h| B64.encode(h)).collect(),
                    checkpoint: note,
                })
            })
            .collect()
    }

    /// The consistency proof from the first `old_size` entries to the newest
    /// cosigned (or signed) checkpoint.
    pub fn consistency_proof(&self, old_size: u64) -> Result<ConsistencyProof> {
        let v = self.verifier()?;
        let (cp, note) = self.proof_note(&v, old_size)?;
        if old_size > cp.size {
            return Err(Error::Malformed {
                what: "proof request",
                reason: format!(
                    "size {old_size} is larger than the newest checkpoint ({} entries)",
                    cp.size
                ),
            });
        }
        let (hashes, _) = self.leaf_hashes(cp.size, &BTreeSet::new())?;
        let proof = merkle::consistency_proof(old_size as usize, &hashes);
        Ok(ConsistencyProof {
            origin: cp.origin,
            old_size,
            old_root: B64.encode(merkle::root(&hashes[..old_size as usize])),
            tree_size: cp.size,
            proof: proof.iter().map(|h| B64.encode(h)).collect(),
            checkpoint: note,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use bletchley_crypto::{OversightSecretKey, SigningKey};

    use super::*;
    use crate::cosign::Cosigner;
    use crate::witness::Witness;
    use crate::{Entry, Outcome};

    /// Witnesses reached in process; `down` ones do not answer.
    struct Local<'a> {
        witnesses: Vec<(&'a str, &'a Witness)>,
        down: Cell<Option<&'a str>>,
        now: u64,
    }

    impl Transport for Local<'_> {
        fn post(&self, url: &str, body: &str) -> std::result::Result<(u16, String), String> {
            let (name, w) = self
                .witnesses
                .iter()
                .find(|(n, _)| url == format!("http://{n}/add-checkpoint"))
                .ok_or("no such witness")?;
            if self.down.get() == Some(*name) {
                return Err("connection refused".into());
            }
            match w.add_checkpoint(body, self.now) {
                Ok(lines) => Ok((200, lines)),
                Err(r) => Ok((r.status, r.size.map_or(r.message, |s| format!("{s}\n")))),
            }
        }
    }

    fn entry(i: u64) -> Entry {
        Entry {
            time_ms: i as i64,
            principal: "p".into(),
            action: "a".into(),
            targets: vec![i.to_string()],
            justification: None,
            outcome: Outcome::Allowed,
            reason: None,
            about: None,
        }
    }

    #[test]
    fn quorum_of_witnesses_and_a_rewritten_history() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::at(dir.path().join("audit"));
        let signer = SigningKey::generate().unwrap();
        let seed = signer.seed().clone();
        log.create("bletchley/t", &signer).unwrap();
        let osk = OversightSecretKey::generate().unwrap();
        let mut w = log.writer(signer, &osk.public_key()).unwrap();
        w.append(&[entry(0), entry(1), entry(2)]).unwrap();

        let v = log.verifier().unwrap();
        let wit = |n: &str| {
            Witness::open(
                &dir.path().join(n),
                Cosigner::new(n, SigningKey::generate().unwrap()).unwrap(),
                vec![v.clone()],
            )
            .unwrap()
        };
        let (w1, w2) = (wit("w1"), wit("w2"));
        let keys = vec![w1.public(), w2.public()];
        let policy = WitnessPolicy {
            quorum: 2,
            witnesses: keys
                .iter()
                .map(|k| WitnessConfig {
                    key: k.render(),
                    url: format!("http://{}", k.name),
                })
                .collect(),
        };
        log.set_witness_policy(Some(&policy)).unwrap();
        assert_eq!(log.witness_policy().unwrap().unwrap(), policy);
        let net = Local {
            witnesses: vec![("w1", &w1), ("w2", &w2)],
            down: Cell::new(Some("w2")),
            now: 1_000,
        };
        // Nothing cosigned yet: no quorum.
        assert!(matches!(
            log.verify_witnessed(None, &keys, 2, 1_000),
            Err(Error::NotWitnessed { .. })
        ));
        // One witness down: one cosignature, still no quorum, nothing lost.
        let r = log.collect_cosignatures(&policy, &net).unwrap();
        assert_eq!((r.size, r.cosigned_by), (3, 1));
        assert!(matches!(
            r.results[1].outcome,
            CosignOutcome::Unreachable { .. }
        ));
        assert!(log.verify_witnessed(None, &keys, 2, 1_000).is_err());
        assert_eq!(
            log.verify_witnessed(None, &keys, 1, 1_000)
                .unwrap()
                .witnessed_size,
            3
        );
        // It comes back; more entries meanwhile: w1 gets a proof from 3, w2 from 0.
        w.append(&[entry(3), entry(4)]).unwrap();
        net.down.set(None);
        let r = log.collect_cosignatures(&policy, &net).unwrap();
        assert_eq!((r.size, r.cosigned_by), (5, 2), "{r:?}");
        let ok = log.verify_witnessed(None, &keys, 2, 1_000).unwrap();
        assert_eq!((ok.witnessed_size, ok.not_yet_witnessed), (5, 0));
        // Asking again changes nothing.
        let r = log.collect_cosignatures(&policy, &net).unwrap();
        assert!(
            r.results
                .iter()
                .all(|x| x.outcome == CosignOutcome::AlreadyCosigned)
        );
        // Entries past the witnessed checkpoint are reported, not refused.
        w.append(&[entry(5)]).unwrap();
        let ok = log.verify_witnessed(None, &keys, 2, 1_000).unwrap();
        assert_eq!((ok.witnessed_size, ok.not_yet_witnessed), (5, 1));

        // Proofs verify against the cosigned checkpoint.
        let p = log.inclusion_proof(2).unwrap();
        assert_eq!(p.tree_size, 5);
        let leaf: Hash = B64.decode(&p.leaf_hash).unwrap().try_into().unwrap();
        let path: Vec<Hash> = p
            .proof
            .iter()
            .map(|h| B64.decode(h).unwrap().try_into().unwrap())
            .collect();
        let cp = Checkpoint::verify(&p.checkpoint, &v).unwrap();
        assert!(merkle::verify_inclusion(2, 5, &leaf, &path, &cp.root));
        let c = log.consistency_proof(3).unwrap();
        let old: Hash = B64.decode(&c.old_root).unwrap().try_into().unwrap();
        let path: Vec<Hash> = c
            .proof
            .iter()
            .map(|h| B64.decode(h).unwrap().try_into().unwrap())
            .collect();
        assert!(merkle::verify_consistency(3, 5, &old, &cp.root, &path));

        // The platform rewrites its history (same key, a new log from entry 0)
        // and re-signs: both witnesses refuse, and the quorum check fails.
        drop(w);
        let audit = dir.path().join("audit");
        std::fs::remove_file(audit.join("cosigned")).unwrap();
        for f in ["log", "checkpoint", "checkpoints", "head"] {
            let _ = std::fs::remove_file(audit.join(f));
        }
        let seed2 = seed.clone();
        let signer = SigningKey::from_seed(seed).unwrap();
        log.create("bletchley/t", &signer).unwrap();
        let mut w = log.writer(signer, &osk.public_key()).unwrap();
        w.append(&[
            entry(0),
            entry(9),
            entry(2),
            entry(3),
            entry(4),
            entry(5),
            entry(6),
        ])
        .unwrap();
        assert!(
            log.verify(None, None).is_ok(),
            "the rewrite is self-consistent"
        );
        let r = log.collect_cosignatures(&policy, &net).unwrap();
        assert_eq!(r.cosigned_by, 0, "{r:?}");
        for x in &r.results {
            assert!(
                matches!(x.outcome, CosignOutcome::Refused { status: 422, .. }),
                "{x:?}"
            );
        }
        assert!(matches!(
            log.verify_witnessed(None, &keys, 2, 1_000),
            Err(Error::NotWitnessed { .. })
        ));
        // A rollback to fewer entries than witnessed is named as such.
        drop(w);
        for f in ["log", "checkpoint", "checkpoints", "head"] {
            let _ = std::fs::remove_file(audit.join(f));
        }
        let signer = SigningKey::from_seed(seed2).unwrap();
        log.create("bletchley/t", &signer).unwrap();
        let mut w = log.writer(signer, &osk.public_key()).unwrap();
        w.append(&[entry(0), entry(1)]).unwrap();
        let r = log.collect_cosignatures(&policy, &net).unwrap();
        for x in &r.results {
            assert_eq!(
                x.outcome,
                CosignOutcome::RolledBack {
                    witnessed: 5,
                    newest: 2
                }
            );
        }
    }
}
