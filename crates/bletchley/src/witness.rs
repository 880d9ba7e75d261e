//! Witnessed checkpoints: `witness init|serve|status` (the witness, run by an
//! overseer or another agency), `audit witness`, `audit cosign` and `audit proof`
//! (the platform's side), and the background cosigner the server and `work` run.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use bletchley_audit::{
    AuditLog, CosignOutcome, CosignReport, Cosigner, Transport, Verifier, Witness, WitnessConfig,
    WitnessKey, WitnessPolicy,
};
use bletchley_crypto::{KdfParams, KeyFile, SigningKey};
use bletchley_store::Platform;
use zeroize::Zeroizing;

use crate::cli::{AuditWitnessCmd, WitnessCmd};

/// The secret's name inside a witness key file.
const WITNESS_SECRET: &str = "cosign";
/// How often the background cosigner looks for a new checkpoint.
const COSIGN_EVERY: Duration = Duration::from_secs(10);

/// Unix seconds now.
pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A key given as its text or as a file holding it.
fn text_or_file(s: &str) -> Result<String> {
    let p = Path::new(s);
    if !s.contains('+') && p.exists() {
        return std::fs::read_to_string(p)
            .map(|t| t.trim().to_owned())
            .with_context(|| p.display().to_string());
    }
    Ok(s.trim().to_owned())
}

fn witness_passphrase() -> Result<Zeroizing<String>> {
    for v in ["BLETCHLEY_PASSPHRASE_WITNESS", "BLETCHLEY_PASSPHRASE"] {
        if let Ok(p) = std::env::var(v)
            && !p.is_empty()
        {
            return Ok(Zeroizing::new(p));
        }
    }
    if std::io::stdin().is_terminal() {
        return Ok(Zeroizing::new(rpassword::prompt_password(
            "passphrase for the witness key: ",
        )?));
    }
    bail!(
        "no passphrase for the witness key: set BLETCHLEY_PASSPHRASE_WITNESS or BLETCHLEY_PASSPHRASE, or run on a terminal"
    )
}

fn open_cosigner(key: &Path) -> Result<Cosigner> {
    let kf = KeyFile::open(key, witness_passphrase()?.as_bytes())
        .with_context(|| format!("opening witness key {}", key.display()))?;
    let seed = kf
        .get(WITNESS_SECRET)
        .cloned()
        .ok_or_else(|| anyhow!("{} is not a witness key file", key.display()))?;
    Ok(Cosigner::new(kf.label(), SigningKey::from_seed(seed)?)?)
}

/// `bletchley witness …`.
pub fn witness(c: &WitnessCmd) -> Result<ExitCode> {
    match c {
        WitnessCmd::Init {
            key,
            name,
            kdf_memory_kib,
            kdf_passes,
        } => {
            if key.exists() {
                bail!(
                    "{} exists: a witness key is never overwritten",
                    key.display()
                );
            }
            let signing = SigningKey::generate()?;
            let cosigner = Cosigner::new(name, SigningKey::from_seed(signing.seed().clone())?)?;
            let kf = KeyFile::create(
                name,
                witness_passphrase()?.as_bytes(),
                KdfParams {
                    m_kib: *kdf_memory_kib,
                    t: *kdf_passes,
                    p: 1,
                },
                BTreeMap::from([(WITNESS_SECRET.to_owned(), signing.seed().clone())]),
            )?;
            kf.save(key)?;
            println!("{}", cosigner.public().render());
            eprintln!(
                "witness key written to {}; give the line above to each platform's operator (`audit witness add --key …`)",
                key.display()
            );
        }
        WitnessCmd::Serve {
            key,
            state,
            logs,
            listen,
            tls_cert,
            tls_key,
        } => {
            let logs = logs
                .iter()
                .map(|l| Ok(Verifier::parse(&text_or_file(l)?)?))
                .collect::<Result<Vec<_>>>()?;
            let cosigner = open_cosigner(key)?;
            eprintln!("witness {}", cosigner.public().render());
            for l in &logs {
                eprintln!("  follows log {}", l.name);
            }
            let w = Witness::open(state, cosigner, logs)?;
            let listener = std::net::TcpListener::bind(listen)
                .with_context(|| format!("--listen {listen}"))?;
            let tls = tls_cert.clone().zip(tls_key.clone());
            bletchley_server::serve_witness(w, listener, tls)?;
        }
        WitnessCmd::Status { state, json } => {
            let states = bletchley_audit::witness::states(state)?;
            if *json {
                println!("{}", serde_json::to_string(&states)?);
            } else if states.is_empty() {
                println!("this witness has cosigned nothing yet");
            } else {
                for s in states {
                    println!(
                        "{}: cosigned {} entries (root {}) at {}",
                        s.origin,
                        s.size,
                        s.root,
                        crate::commands::fmt_time(s.time as i64 * 1000)
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Posts with a short timeout: a witness that is down delays cosigning only.
struct HttpTransport {
    client: reqwest::blocking::Client,
}

impl HttpTransport {
    /// Roots for HTTPS witnesses come from `audit/witness-ca.pem` when present.
    fn new(audit_dir: &Path) -> Result<HttpTransport> {
        let mut roots = rustls::RootCertStore::empty();
        let ca = audit_dir.join("witness-ca.pem");
        if ca.exists() {
            use rustls::pki_types::CertificateDer;
            use rustls::pki_types::pem::PemObject;
            for c in CertificateDer::pem_file_iter(&ca).with_context(|| ca.display().to_string())? {
                roots.add(c.with_context(|| ca.display().to_string())?)?;
            }
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let client = reqwest::blocking::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(10))
            .connect_timeout(Duration::from_secs(5))
            .build()?;
        Ok(HttpTransport { client })
    }
}

impl Transport for HttpTransport {
    fn post(&self, url: &str, body: &str) -> std::result::Result<(u16, String), String> {
        let r = self
            .client
            .post(url)
            .body(body.to_owned())
            .send()
            .map_err(|e| e.to_string())?;
        let status = r.status().as_u16();
        Ok((status, r.text().unwrap_or_default()))
    }
}

/// Asks the witnesses of the guarded policy once (putting `audit/witnesses.json`
/// back first if the host changed it); `None` when none are configured.
pub fn cosign_once(p: &mut Platform) -> Result<Option<CosignReport>> {
    p.restore_witness_file()?;
    let Some(policy) = p.witness_policy()? else {
        return Ok(None);
    };
    let audit = p.root().join("audit");
    let transport = HttpTransport::new(&audit)?;
    Ok(Some(
        AuditLog::at(&audit).collect_cosignatures(&policy, &transport)?,
    ))
}

/// One line per witness.
pub fn describe(r: &CosignReport) -> String {
    let mut s = format!(
        "checkpoint of {} entries: cosigned by {} of {} witnesses (quorum {})",
        r.size,
        r.cosigned_by,
        r.results.len(),
        r.quorum
    );
    for w in &r.results {
        let what = match &w.outcome {
            CosignOutcome::Cosigned { .. } => "cosigned".to_owned(),
            CosignOutcome::AlreadyCosigned => "had cosigned it already".to_owned(),
            CosignOutcome::Refused { status, message } => {
                format!("REFUSED ({status}): {message}")
            }
            CosignOutcome::RolledBack { witnessed, newest } => format!(
                "REFUSED: it has cosigned {witnessed} entries but this log's newest checkpoint covers {newest}: the audit log was rolled back"
            ),
            CosignOutcome::Unreachable { error } => {
                format!("unreachable ({error}); asked again later, nothing is lost")
            }
        };
        s.push_str(&format!("\n  {}: {what}", w.witness));
    }
    s
}

/// Runs the cosigner on a thread of its own: every few seconds, when the
/// newest checkpoint moved, it asks the witnesses; failures go to the log.
pub fn start_cosigner(data: PathBuf) {
    let _ = std::thread::Builder::new()
        .name("cosigner".into())
        .spawn(move || {
            let mut p = match Platform::open(&data, Box::new(crate::unlock::EnvUnlock)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: audit cosigning: {e}");
                    return;
                }
            };
            let log = AuditLog::at(data.join("audit"));
            let mut done: Option<String> = None;
            loop {
                let note = log.checkpoint_note().ok();
                if note.is_some() && note != done {
                    match cosign_once(&mut p) {
                        Ok(Some(r)) => {
                            let settled = r.results.iter().all(|w| {
                                matches!(
                                    w.outcome,
                                    CosignOutcome::Cosigned { .. } | CosignOutcome::AlreadyCosigned
                                )
                            });
                            if !settled {
                                eprintln!("audit cosigning: {}", describe(&r));
                            } else {
                                done = note;
                            }
                        }
                        Ok(None) => done = note,
                        Err(e) => eprintln!("audit cosigning: {e}"),
                    }
                }
                std::thread::sleep(COSIGN_EVERY);
            }
        });
}

/// `bletchley audit witness …`: changes are the operator's, audited, kept in the
/// guarded catalog and written out for `audit verify`.
pub fn audit_witness(p: &mut Platform, c: &AuditWitnessCmd) -> Result<()> {
    let current = p.witness_policy()?;
    let (next, action, target) = match c {
        AuditWitnessCmd::Ls { json } => {
            let Some(policy) = current else {
                println!(
                    "no witnesses: checkpoints are signed by the platform alone (add one with `audit witness add`)"
                );
                return Ok(());
            };
            if *json {
                println!("{}", serde_json::to_string(&policy)?);
            } else {
                println!("quorum {} of {}", policy.quorum, policy.witnesses.len());
                for w in &policy.witnesses {
                    println!("{}\t{}", w.key, w.url);
                }
            }
            return Ok(());
        }
        AuditWitnessCmd::Add { key, url, quorum } => {
            let k = WitnessKey::parse(&text_or_file(key)?)?;
            let mut policy = current.unwrap_or(WitnessPolicy {
                quorum: 1,
                witnesses: Vec::new(),
            });
            if policy.keys()?.iter().any(|w| w.name == k.name) {
                bail!(
                    "a witness named {} is configured already; nothing changed",
                    k.name
                );
            }
            policy.witnesses.push(WitnessConfig {
                key: k.render(),
                url: url.clone(),
            });
            if let Some(q) = quorum {
                policy.quorum = *q;
            }
            (Some(policy), "audit.witness.add", k.name)
        }
        AuditWitnessCmd::Rm { name, quorum } => {
            let Some(mut policy) = current else {
                bail!("no witnesses are configured; nothing changed");
            };
            let keys = policy.keys()?;
            let Some(i) = keys.iter().position(|k| &k.name == name) else {
                bail!("no witness named {name}; nothing changed");
            };
            policy.witnesses.remove(i);
            if let Some(q) = quorum {
                policy.quorum = *q;
            }
            if policy.witnesses.is_empty() {
                (None, "audit.witness.remove", name.clone())
            } else {
                (Some(policy), "audit.witness.remove", name.clone())
            }
        }
        AuditWitnessCmd::Quorum { n } => {
            let Some(mut policy) = current else {
                bail!("no witnesses are configured; nothing changed");
            };
            policy.quorum = *n;
            (Some(policy), "audit.witness.quorum", n.to_string())
        }
    };
    if let Some(policy) = &next {
        policy.check().context("nothing changed")?;
    }
    p.set_witness_policy(next.as_ref(), action, &target)?;
    match next {
        Some(q) => println!(
            "{action} {target}: now quorum {} of {} witnesses",
            q.quorum,
            q.witnesses.len()
        ),
        None => println!("{action} {target}: no witnesses remain"),
    }
    Ok(())
}

/// `audit verify` with witnesses: the keys given, or the configured ones.
pub fn verify_witnessed(
    log: &AuditLog,
    verifier: Option<&Verifier>,
    keys: &[String],
    quorum: Option<usize>,
) -> Result<Option<bletchley_audit::WitnessedReport>> {
    let (keys, quorum) = if keys.is_empty() {
        match log.witness_policy()? {
            Some(p) => {
                let q = quorum.unwrap_or(p.quorum);
                (p.keys()?, q)
            }
            None if quorum.is_some() => {
                bail!("--quorum needs --witness keys or configured witnesses")
            }
            None => return Ok(None),
        }
    } else {
        let k = keys
            .iter()
            .map(|k| Ok(WitnessKey::parse(&text_or_file(k)?)?))
            .collect::<Result<Vec<_>>>()?;
        let q = quorum.unwrap_or(k.len());
        (k, q)
    };
    if quorum == 0 || quorum > keys.len() {
        bail!(
            "quorum {quorum} must be between 1 and the number of witnesses ({})",
            keys.len()
        );
    }
    Ok(Some(log.verify_witnessed(
        verifier,
        &keys,
        quorum,
        now_s(),
    )?))
}

/// `audit proof`.
pub fn proof(data: &Path, seq: Option<u64>, item: Option<&str>, from: Option<u64>) -> Result<()> {
    let log = AuditLog::at(data.join("audit"));
    if let Some(old) = from {
        println!(
            "{}",
            serde_json::to_string_pretty(&log.consistency_proof(old)?)?
        );
        return Ok(());
    }
    let seqs: Vec<u64> = match (seq, item) {
        (Some(s), _) => vec![s],
        (None, Some(id)) => {
            let entries = bletchley_store::read_audit(data, &crate::unlock::EnvUnlock)?;
            let seqs: Vec<u64> = entries
                .into_iter()
                .filter(|(_, e)| e.targets.iter().any(|t| t == id))
                .map(|(s, _)| s)
                .collect();
            if seqs.is_empty() {
                bail!("no audit entry names {id}");
            }
            seqs
        }
        (None, None) => bail!("name an entry (SEQ), an item (--item ID) or a size (--from N)"),
    };
    let proofs = seqs
        .iter()
        .map(|s| log.inclusion_proof(*s))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    if proofs.len() == 1 && item.is_none() {
        println!("{}", serde_json::to_string_pretty(&proofs[0])?);
    } else {
        println!("{}", serde_json::to_string_pretty(&proofs)?);
    }
    Ok(())
}

/// The demo's witness, run by the overseer: where it listens and what it did.
pub struct DemoWitness {
    /// Its public key line.
    pub key: String,
    /// Where it listens.
    pub url: String,
    /// The first round of cosigning.
    pub report: CosignReport,
}

/// Makes a witness key under `data/overseer-witness`, serves it on a free local
/// port on a thread of this process, makes it the platform's witness (quorum 1)
/// and has it cosign the newest checkpoint.
pub fn start_demo_witness(p: &mut Platform, data: &Path, passphrase: &str) -> Result<DemoWitness> {
    let home = data.join("overseer-witness");
    std::fs::create_dir_all(&home)?;
    let name = "witness.ipco.example/demo";
    let signing = SigningKey::generate()?;
    let kf = KeyFile::create(
        name,
        passphrase.as_bytes(),
        KdfParams {
            m_kib: 19 * 1024,
            t: 2,
            p: 1,
        },
        BTreeMap::from([(WITNESS_SECRET.to_owned(), signing.seed().clone())]),
    )?;
    kf.save(&home.join("witness.key"))?;
    let cosigner = Cosigner::new(name, signing)?;
    let key = cosigner.public().render();
    let log = AuditLog::at(data.join("audit"));
    let w = Witness::open(&home.join("state"), cosigner, vec![log.verifier()?])?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}", listener.local_addr()?);
    std::thread::Builder::new()
        .name("witness".into())
        .spawn(move || {
            if let Err(e) = bletchley_server::serve_witness(w, listener, None) {
                eprintln!("demo witness: {e}");
            }
        })?;
    let policy = WitnessPolicy {
        quorum: 1,
        witnesses: vec![WitnessConfig {
            key: key.clone(),
            url: url.clone(),
        }],
    };
    p.set_witness_policy(Some(&policy), "audit.witness.add", name)?;
    let report = log.collect_cosignatures(&policy, &HttpTransport::new(&data.join("audit"))?)?;
    Ok(DemoWitness { key, url, report })
}
