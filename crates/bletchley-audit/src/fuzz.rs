//! Entry points for the fuzzer (`bletchley-fuzz`): the decoders of what an overseer or a host
//! hands the audit code: checkpoint notes, verifier keys, and the log file itself. Each returns a
//! short signature of the outcome; a panic is the finding.

use std::path::PathBuf;
use std::sync::OnceLock;

use bletchley_crypto::{OversightSecretKey, SecretKey, SigningKey};

use crate::entry::{Entry, Outcome};
use crate::log::AuditLog;
use crate::note::{Checkpoint, Verifier};

fn outcome<T>(r: crate::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e
            .to_string()
            .chars()
            .take_while(|c| !c.is_ascii_digit() && *c != '"' && *c != '\'')
            .take(60)
            .collect(),
    }
}

fn signer() -> SigningKey {
    // A fixed key: the fuzzer's inputs are checked against the same verifier every run.
    SigningKey::from_seed(SecretKey::from_bytes([9u8; 32])).expect("a fixed seed is a key")
}

fn verifier() -> Verifier {
    Verifier::new("bletchley/fuzz", signer().verifying_key())
}

/// A signed checkpoint note, as `audit verify --checkpoint` reads one.
pub fn checkpoint_note(data: &[u8]) -> String {
    outcome(Checkpoint::verify(
        &String::from_utf8_lossy(data),
        &verifier(),
    ))
}

/// A verifier key, as `audit verify --verifier` reads one.
pub fn verifier_key(data: &[u8]) -> String {
    outcome(Verifier::parse(&String::from_utf8_lossy(data)))
}

/// A log directory with three real entries, made once per process; its `log` file is what the
/// fuzzer replaces.
struct Fixture {
    dir: PathBuf,
    log: Vec<u8>,
    oversight: OversightSecretKey,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("bletchley-fuzz-audit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("fuzz fixture directory");
        let oversight = OversightSecretKey::generate().expect("oversight key");
        let log = AuditLog::at(&dir);
        log.create("bletchley/fuzz", &signer()).expect("create log");
        let mut w = log
            .writer(signer(), &oversight.public_key())
            .expect("writer");
        let entries: Vec<Entry> = (0..3)
            .map(|i| Entry {
                time_ms: 1_000 + i,
                principal: "alice".into(),
                action: "item.get".into(),
                targets: vec![format!("item-{i}")],
                justification: None,
                outcome: Outcome::Allowed,
                reason: None,
                about: None,
            })
            .collect();
        w.append(&entries).expect("append");
        drop(w);
        let bytes = std::fs::read(dir.join("log")).expect("log file");
        Fixture {
            dir,
            log: bytes,
            oversight,
        }
    })
}

/// The log file as the host left it: verified (no secret) and read (with the oversight key).
/// One process-wide directory: callers run one input at a time.
pub fn audit_log(data: &[u8]) -> String {
    let f = fixture();
    if std::fs::write(f.dir.join("log"), data).is_err() {
        return "unwritable".into();
    }
    let log = AuditLog::at(&f.dir);
    let verified = outcome(log.verify(None, None));
    let read = outcome(log.read(&f.oversight));
    format!("{verified} / {read}")
}

/// Valid inputs to start from, per entry point.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "checkpoint_note" => {
            let cp = Checkpoint {
                origin: "bletchley/fuzz".into(),
                size: 3,
                root: [5u8; 32],
                extensions: vec!["bletchley-catalog 00ff".into()],
            };
            vec![cp.sign(&signer()).into_bytes()]
        }
        "verifier_key" => vec![verifier().render().into_bytes()],
        "audit_log" => vec![fixture().log.clone()],
        _ => Vec::new(),
    }
}
