//! A witness (C2SP `tlog-witness`): it keeps, per log, the largest checkpoint it
//! has cosigned, and cosigns a new one only when a consistency proof shows the new
//! tree extends that one. Run by the overseer or another agency, it makes a
//! platform's rewriting of its own history visible: the rewritten checkpoint
//! gets no cosignature, and `audit verify` with a quorum fails.
//!
//! The HTTP surface lives in `bletchley-server`; this is the decision, the state
//! and its durability. The state directory is the witness operator's, not the
//! log host's.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bletchley_crypto::keyfile::write_atomic;
use bletchley_crypto::sha256;

use crate::cosign::{Cosigner, WitnessKey, split_note};
use crate::error::{Error, Result};
use crate::merkle::{Hash, verify_consistency};
use crate::note::{Checkpoint, Verifier};

/// At most this many consistency proof lines (the protocol's limit).
pub const MAX_PROOF_LINES: usize = 63;

/// Why a witness did not cosign, with the HTTP status the protocol gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// 400, 403, 404, 409 or 422 (500 when the witness could not keep its state).
    pub status: u16,
    /// What was wrong, for the log's operator.
    pub message: String,
    /// On a 409 for a wrong old size: the size the witness has cosigned, which
    /// the answer's body carries as `text/x.tlog.size`.
    pub size: Option<u64>,
}

impl Refusal {
    fn new(status: u16, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            message: message.into(),
            size: None,
        }
    }
}

/// What a witness keeps for one log: the checkpoint it last cosigned.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct LogState {
    /// The log's origin line.
    pub origin: String,
    /// Tree size of the last cosigned checkpoint.
    pub size: u64,
    /// Its root, base64.
    pub root: String,
    /// The checkpoint as submitted (the log's signature), for the overseer to
    /// hand to `audit verify --checkpoint`.
    pub note: String,
    /// When it was cosigned (Unix seconds).
    pub time: u64,
}

/// A witness: its key, the logs it follows and its state directory.
pub struct Witness {
    cosigner: Cosigner,
    logs: Vec<Verifier>,
    dir: PathBuf,
    /// Serialises check-then-persist, so two requests cannot roll the state back
    /// (the race the protocol warns of).
    state_lock: Mutex<()>,
    /// Held for the witness's life: a second process on the same state would
    /// break that serialisation.
    _process_lock: File,
}

impl Witness {
    /// A witness over `dir` (created if missing) that cosigns checkpoints of
    /// `logs`. Fails if another witness process holds `dir`.
    pub fn open(dir: &Path, cosigner: Cosigner, logs: Vec<Verifier>) -> Result<Witness> {
        let io = |source| Error::Io {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("lock"))
            .map_err(io)?;
        if lock.try_lock().is_err() {
            return Err(Error::Malformed {
                what: "witness state",
                reason: format!("{} is in use by another witness process", dir.display()),
            });
        }
        Ok(Witness {
            cosigner,
            logs,
            dir: dir.to_owned(),
            state_lock: Mutex::new(()),
            _process_lock: lock,
        })
    }

    /// This witness's public key.
    pub fn public(&self) -> WitnessKey {
        self.cosigner.public()
    }

    fn state_path(&self, origin: &str) -> PathBuf {
        state_path(&self.dir, origin)
    }

    /// The state kept for `origin`, if it ever cosigned for it.
    pub fn state(&self, origin: &str) -> Result<Option<LogState>> {
        read_state(&self.state_path(origin))
    }

    /// Handles an `add-checkpoint` request body at time `now` (Unix seconds):
    /// the cosignature lines to answer with, or why not.
    pub fn add_checkpoint(&self, request: &str, now: u64) -> std::result::Result<String, Refusal> {
        let req = parse_request(request)?;
        let origin = req.note.lines().next().unwrap_or_default();
        let trusted: Vec<&Verifier> = self.logs.iter().filter(|v| v.name == origin).collect();
        if trusted.is_empty() {
            return Err(Refusal::new(404, format!("unknown log origin {origin:?}")));
        }
        let mut checkpoint = None;
        for v in &trusted {
            match Checkpoint::verify(&req.note, v) {
                Ok(c) => {
                    checkpoint = Some(c);
                    break;
                }
                Err(Error::BadSignature) => {}
                Err(e) => return Err(Refusal::new(400, e.to_string())),
            }
        }
        let Some(cp) = checkpoint else {
            return Err(Refusal::new(
                403,
                "no signature on the checkpoint verifies with a key this witness trusts for its origin",
            ));
        };
        let (body, _) = split_note(&req.note).map_err(|e| Refusal::new(400, e.to_string()))?;
        if req.old > cp.size {
            return Err(Refusal::new(
                400,
                format!(
                    "old size {} is larger than the checkpoint's {}",
                    req.old, cp.size
                ),
            ));
        }
        let _guard = self
            .state_lock
            .lock()
            .map_err(|_| Refusal::new(500, "witness state lock poisoned"))?;
        let path = self.state_path(origin);
        let state = read_state(&path).map_err(|e| Refusal::new(500, e.to_string()))?;
        let (known_size, known_root) = match &state {
            Some(s) => (
                s.size,
                decode_hash(&s.root).map_err(|m| Refusal::new(500, m))?,
            ),
            None => (0, [0u8; 32]),
        };
        if req.old != known_size {
            return Err(Refusal {
                status: 409,
                message: format!(
                    "old size {} is not the size this witness last cosigned ({known_size})",
                    req.old
                ),
                size: Some(known_size),
            });
        }
        if known_size == cp.size && state.is_some() {
            if known_root != cp.root {
                self.record_refusal(
                    origin,
                    409,
                    "same size, different root: a fork",
                    request,
                    now,
                );
                return Err(Refusal::new(
                    409,
                    "this size was cosigned with a different root: the log shows two histories",
                ));
            }
        } else if known_size > 0
            && !verify_consistency(known_size, cp.size, &known_root, &cp.root, &req.proof)
        {
            self.record_refusal(
                origin,
                422,
                "consistency proof does not verify",
                request,
                now,
            );
            return Err(Refusal::new(
                422,
                format!(
                    "the consistency proof from {known_size} to {} does not verify: the new tree does not extend the one this witness cosigned",
                    cp.size
                ),
            ));
        } else if known_size == 0 && !req.proof.is_empty() {
            return Err(Refusal::new(
                422,
                "a consistency proof from size 0 must be empty",
            ));
        }
        let new_state = LogState {
            origin: origin.to_owned(),
            size: cp.size,
            root: B64.encode(cp.root),
            note: req.note.clone(),
            time: now,
        };
        let bytes = serde_json::to_vec_pretty(&new_state)
            .map_err(|e| Refusal::new(500, format!("witness state: {e}")))?;
        write_atomic(&path, &bytes)
            .map_err(|e| Refusal::new(500, format!("witness state: {e}")))?;
        Ok(self.cosigner.cosign(&body, now))
    }

    /// Keeps a refused request that may be evidence of a log's misbehaviour.
    fn record_refusal(&self, origin: &str, status: u16, why: &str, request: &str, now: u64) {
        let line = serde_json::json!({
            "time": now, "origin": origin, "status": status, "why": why, "request": request,
        });
        let path = self.dir.join("refused.jsonl");
        if let Ok(mut f) = OpenOptions::new().create(true).append(true).open(&path) {
            let _ = writeln!(f, "{line}");
            let _ = f.sync_data();
        }
    }
}

/// Every log state kept in a witness state directory (for `witness status`,
/// readable while the witness runs).
pub fn states(dir: &Path) -> Result<Vec<LogState>> {
    let io = |source| Error::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        if p.extension().is_some_and(|x| x == "json")
            && let Some(s) = read_state(&p)?
        {
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.origin.cmp(&b.origin));
    Ok(out)
}

fn state_path(dir: &Path, origin: &str) -> PathBuf {
    dir.join(format!(
        "{}.json",
        &hex::encode(sha256(origin.as_bytes()))[..32]
    ))
}

fn read_state(path: &Path) -> Result<Option<LogState>> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b)
            .map(Some)
            .map_err(|e| Error::Malformed {
                what: "witness state",
                reason: format!("{}: {e}", path.display()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

fn decode_hash(s: &str) -> std::result::Result<Hash, String> {
    B64.decode(s)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| format!("{s:?} is not a base64 SHA-256 hash"))
}

struct Request {
    old: u64,
    proof: Vec<Hash>,
    note: String,
}

/// Parses `old N\n`, up to 63 base64 hash lines, a blank line, then the note.
fn parse_request(text: &str) -> std::result::Result<Request, Refusal> {
    let bad = |m: String| Refusal::new(400, m);
    let Some((first, mut rest)) = text.split_once('\n') else {
        return Err(bad("the request has no old size line".into()));
    };
    let n = first
        .strip_prefix("old ")
        .ok_or_else(|| bad(format!("first line {first:?} is not `old <size>`")))?;
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) || (n.len() > 1 && n.starts_with('0'))
    {
        return Err(bad(format!(
            "old size {n:?} is not a decimal without leading zeroes"
        )));
    }
    let old: u64 = n
        .parse()
        .map_err(|_| bad(format!("old size {n:?} is too large")))?;
    let mut proof = Vec::new();
    loop {
        let Some((line, after)) = rest.split_once('\n') else {
            return Err(bad("no blank line before the checkpoint".into()));
        };
        rest = after;
        if line.is_empty() {
            break;
        }
        if proof.len() == MAX_PROOF_LINES {
            return Err(bad(format!(
                "more than {MAX_PROOF_LINES} consistency proof lines"
            )));
        }
        proof.push(decode_hash(line).map_err(bad)?);
    }
    if !rest.ends_with('\n') {
        return Err(bad("the checkpoint does not end with a newline".into()));
    }
    Ok(Request {
        old,
        proof,
        note: rest.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_proof, leaf_hash, root};
    use bletchley_crypto::SigningKey;

    fn note(k: &SigningKey, leaves: &[Hash]) -> String {
        Checkpoint {
            origin: "bletchley/t".into(),
            size: leaves.len() as u64,
            root: root(leaves),
            extensions: vec![],
        }
        .sign(k)
    }

    fn request(old: usize, leaves: &[Hash], k: &SigningKey) -> String {
        let mut r = format!("old {old}\n");
        if old > 0 {
            for h in consistency_proof(old, leaves) {
                r.push_str(&B64.encode(h));
                r.push('\n');
            }
        }
        r.push('\n');
        r.push_str(&note(k, leaves));
        r
    }

    #[test]
    fn cosigns_extensions_and_refuses_forks() {
        let dir = tempfile::tempdir().unwrap();
        let log_key = SigningKey::generate().unwrap();
        let v = Verifier::new("bletchley/t", log_key.verifying_key());
        let w = Witness::open(
            dir.path(),
            Cosigner::new("w.example/1", SigningKey::generate().unwrap()).unwrap(),
            vec![v],
        )
        .unwrap();
        let wk = w.public();
        let leaves: Vec<Hash> = (0..10u8).map(|i| leaf_hash(&[i])).collect();
        let line = w
            .add_checkpoint(&request(0, &leaves[..4], &log_key), 100)
            .unwrap();
        let (body, _) = split_note(&note(&log_key, &leaves[..4])).unwrap();
        assert_eq!(wk.check(&body, line.trim_end()), Some(100));
        // Wrong old size: 409 with the size.
        let e = w
            .add_checkpoint(&request(0, &leaves[..7], &log_key), 101)
            .unwrap_err();
        assert_eq!((e.status, e.size), (409, Some(4)));
        // Extension with a good proof.
        assert!(
            w.add_checkpoint(&request(4, &leaves[..7], &log_key), 102)
                .is_ok()
        );
        // A fork: same size 7, different leaves.
        let mut fork = leaves.clone();
        fork[2] = leaf_hash(b"rewritten");
        let e = w
            .add_checkpoint(&request(7, &fork[..7], &log_key), 103)
            .unwrap_err();
        assert_eq!(e.status, 409);
        // A fork that grows: the proof from 7 does not verify against the old root.
        let e = w
            .add_checkpoint(&request(7, &fork[..9], &log_key), 104)
            .unwrap_err();
        assert_eq!(e.status, 422);
        assert_eq!(w.state("bletchley/t").unwrap().unwrap().size, 7);
        // Signed by a stranger: 403; unknown origin: 404; old > size: 400.
        let stranger = SigningKey::generate().unwrap();
        assert_eq!(
            w.add_checkpoint(&request(7, &leaves[..9], &stranger), 105)
                .unwrap_err()
                .status,
            403
        );
        let other = Checkpoint {
            origin: "other/log".into(),
            size: 1,
            root: [0; 32],
            extensions: vec![],
        }
        .sign(&log_key);
        assert_eq!(
            w.add_checkpoint(&format!("old 0\n\n{other}"), 106)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            w.add_checkpoint(
                &request(7, &leaves[..7], &log_key).replace("old 7", "old 8"),
                107
            )
            .unwrap_err()
            .status,
            400
        );
        assert_eq!(w.add_checkpoint("old 07\n\n", 108).unwrap_err().status, 400);
        // The refusals that may be evidence were kept.
        let kept = std::fs::read_to_string(dir.path().join("refused.jsonl")).unwrap();
        assert_eq!(kept.lines().count(), 2);
        // A second process cannot open the same state.
        assert!(
            Witness::open(
                dir.path(),
                Cosigner::new("w.example/1", SigningKey::generate().unwrap()).unwrap(),
                vec![],
            )
            .is_err()
        );
        assert_eq!(states(dir.path()).unwrap().len(), 1);
    }
}
