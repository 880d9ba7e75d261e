//! `site` and `bundle`: this node as a replication site, and bundles on removable media.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use bletchley_store::Platform;
use bletchley_sync::{Erased, SiteInit, SiteRole, SyncEvent};

use crate::cli::{BundleCmd, SiteCmd};
use crate::progress::{Progress, Unit};

/// Writes a file whole or not at all (the operator may point it at removable media).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    bletchley_crypto::keyfile::write_atomic(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

/// `site ...`.
pub fn site(p: &mut Platform, data: &Path, c: &SiteCmd) -> Result<ExitCode> {
    match c {
        SiteCmd::Init {
            name,
            jurisdiction,
            ceiling,
            nationalities,
            hub,
            field: _,
        } => {
            let id = bletchley_sync::init(
                p,
                &SiteInit {
                    name: name.clone(),
                    role: if *hub { SiteRole::Hub } else { SiteRole::Field },
                    jurisdiction: jurisdiction.clone(),
                    ceiling: ceiling.clone(),
                    nationalities: nationalities.clone(),
                },
            )?;
            println!(
                "site {} ({:?}) initialised; fingerprint {}\nnext: `bletchley site identity FILE`, give FILE to the other side, read them the fingerprint",
                id.name,
                id.role,
                id.fingerprint()
            );
        }
        SiteCmd::Identity { out } => {
            let text = bletchley_sync::identity_file(p)?;
            if out.as_os_str() == "-" {
                println!("{text}");
            } else {
                write_atomic(out, text.as_bytes())?;
                println!("wrote {}", out.display());
            }
        }
        SiteCmd::Enrol {
            identity,
            fingerprint,
            code,
        } => {
            let text = std::fs::read_to_string(identity)
                .with_context(|| format!("reading {}", identity.display()))?;
            let enrolled =
                bletchley_sync::enrol(p, &text, fingerprint.as_deref(), code.as_deref())?;
            let id = &enrolled.identity;
            println!(
                "enrolled {} ({:?}, {}, ceiling {}, staff {}); fingerprint {}",
                id.name,
                id.role,
                id.jurisdiction,
                id.ceiling,
                id.nationalities.join(","),
                id.fingerprint()
            );
            if fingerprint.is_none() {
                println!("check that fingerprint with the other side over a separate channel");
            }
            if let Some(code) = &enrolled.code {
                println!("one-time code: {code}");
                println!(
                    "give it to {}'s operator by another channel than the identity file (`site enrol --code` there); it is good for one first contact within 7 days",
                    id.name
                );
            }
        }
        SiteCmd::Assign { name, targets } => {
            bletchley_sync::assign(p, name, targets, false)?;
            println!("assigned {} to {name}", targets.join(", "));
        }
        SiteCmd::Accept { name, collections } => {
            bletchley_sync::accept(p, name, collections, false)?;
            println!("{name} may send items into {}", collections.join(", "));
        }
        SiteCmd::Unaccept { name, collections } => {
            bletchley_sync::accept(p, name, collections, true)?;
            println!(
                "{name} may no longer send items into {}",
                collections.join(", ")
            );
        }
        SiteCmd::Unassign { name, targets } => {
            bletchley_sync::assign(p, name, targets, true)?;
            println!("took {} from {name}", targets.join(", "));
        }
        SiteCmd::Status { json } => {
            let s = bletchley_sync::status(p)?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&s)?);
            } else {
                println!(
                    "site {} ({:?}) {} ceiling {} staff {} fingerprint {}",
                    s.identity.name,
                    s.identity.role,
                    s.identity.jurisdiction,
                    s.identity.ceiling,
                    s.identity.nationalities.join(","),
                    s.fingerprint
                );
                for peer in &s.peers {
                    println!(
                        "  {} ({:?}) {} ceiling {}: enrolment {}; assigned [{}] ops logged {} acknowledged {} items {} applied {} erase {}",
                        peer.identity.name,
                        peer.identity.role,
                        peer.identity.jurisdiction,
                        peer.identity.ceiling,
                        peer.enrolment,
                        [peer.collections.clone(), peer.operations.clone()]
                            .concat()
                            .join(", "),
                        peer.logged,
                        peer.acknowledged,
                        peer.items,
                        peer.applied,
                        peer.erase
                    );
                }
            }
        }
        SiteCmd::Revoke { name } => {
            bletchley_sync::revoke(p, name)?;
            println!("revoked {name}: its certificate and bundles are refused from now on");
        }
        SiteCmd::Erase { name } => match bletchley_sync::erase(p, name)? {
            Erased::Local(files) => {
                println!(
                    "erased: {} key files overwritten and removed; what is left in {} cannot be read",
                    files.len(),
                    data.display()
                );
            }
            Erased::Ordered => {
                println!("erase ordered: {name} destroys its keys when it next imports a bundle");
            }
        },
    }
    Ok(ExitCode::SUCCESS)
}

/// `bundle ...`.
pub fn bundle(p: &mut Platform, _data: &Path, c: &BundleCmd) -> Result<ExitCode> {
    match c {
        BundleCmd::Export { site, from, out } => {
            let bar = Progress::new("bundle", Unit::Count("items read back"));
            let exported =
                bletchley_sync::export_bundle_reporting(p, site, *from, &mut |d, t| bar.set(d, t))?;
            bar.finish();
            let held = bletchley_sync::held_back(p, site)?;
            match exported {
                None if held.is_empty() => {
                    println!("nothing to send: {site} has acknowledged everything")
                }
                None => println!(
                    "nothing to send to {site} beyond what it has acknowledged; {}",
                    held.describe()
                ),
                Some(b) => {
                    if !held.is_empty() {
                        println!("{}", held.describe());
                    }
                    write_atomic(out, &b.bytes)?;
                    println!(
                        "wrote {} ({} bytes) for {site}: operations {}..{}, {} items",
                        out.display(),
                        b.bytes.len(),
                        b.header.first_seq,
                        b.header.last_seq,
                        b.items
                    );
                }
            }
        }
        BundleCmd::Import { file, json } => {
            let bytes =
                std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
            let bar = Progress::new("import", Unit::Count("operations applied"));
            let r = bletchley_sync::import_bundle_reporting(p, &bytes, &mut |d, t| bar.set(d, t))
                .with_context(|| format!("importing {}", file.display()))?;
            bar.finish();
            let confirmation = match &r.erased {
                Some(ack) => {
                    let path = PathBuf::from(format!("{}.erased", file.display()));
                    write_atomic(&path, ack)?;
                    Some(path)
                }
                None => None,
            };
            if *json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else if r.already {
                println!(
                    "already imported: nothing changed (at operation {} of {})",
                    r.position, r.from
                );
            } else {
                if r.applied > 0 || r.acknowledged.is_none() {
                    println!(
                        "imported from {}: {} operations, {} items added, {} removed, {} re-marked, {} principals' standing changed{}; now at operation {}",
                        r.from,
                        r.applied,
                        r.added,
                        r.removed,
                        r.remarked,
                        r.principals,
                        if r.dropped > 0 {
                            format!(
                                ", {} not stored (derived from items no longer held here)",
                                r.dropped
                            )
                        } else {
                            String::new()
                        },
                        r.position
                    );
                }
                if let Some(n) = r.acknowledged {
                    println!("{} acknowledged operations up to {n}", r.from);
                }
            }
            if let Some(path) = confirmation {
                println!(
                    "ERASED on the order of {}: keys destroyed; carry the confirmation {} back",
                    r.from,
                    path.display()
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `sync`: a field site pulls from its hub until caught up (`--once`) or stopped; the hub
/// listens.
pub fn sync(
    p: &mut Platform,
    peer: Option<&str>,
    listen: Option<&str>,
    once: bool,
    max_rate: Option<&str>,
    json: bool,
) -> Result<ExitCode> {
    let max_rate = max_rate.map(bletchley_sync::parse_rate).transpose()?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    if let Some(listen) = listen {
        bletchley_sync::listen(
            p,
            &bletchley_sync::ListenOptions {
                listen: listen.to_owned(),
                max_rate,
                stop,
            },
            &mut |m: &str| println!("{m}"),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    let peer = peer.context("give --peer https://HOST:PORT (or --listen ADDR at the hub)")?;
    let bar = Progress::new("sync", Unit::Bytes);
    let report = bletchley_sync::sync(
        p,
        &bletchley_sync::SyncOptions {
            peer: peer.to_owned(),
            once,
            max_rate,
            stop,
        },
        &mut |e| match e {
            SyncEvent::Note(m) => bar.say(m),
            SyncEvent::Progress { received, total } => bar.set(received, total),
        },
    )?;
    bar.finish();
    let refused = report.upload_refused.clone();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        println!(
            "synced: {} items received, {} removed, {} re-marked, {} principals' standing changed, {} bytes, at operation {}, {} connections, {} items sent up in {} bytes{}",
            report.received,
            report.removed,
            report.remarked,
            report.principals,
            report.bytes,
            report.position,
            report.connections,
            report.sent,
            report.sent_bytes,
            if report.erased {
                "; ERASED on the hub's order"
            } else {
                ""
            }
        );
    }
    if let Some(why) = refused {
        anyhow::bail!("the hub refused this site's upload: {why}");
    }
    Ok(ExitCode::SUCCESS)
}
