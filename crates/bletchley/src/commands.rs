//! One function per command: parse arguments into domain values, call the
//! store, print.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use bletchley_audit::{AuditLog, Verifier};
use bletchley_crypto::KdfParams;
use bletchley_policy::{Classification, Marking, Nation, Operation, Principal, Role};
use bletchley_store::platform::BrakeSetting;
use bletchley_store::{
    IngestOptions, InitOptions, Jurisdiction, LocationSpec, NewItem, Platform, Scope,
};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cli::*;
use crate::unlock::EnvUnlock;

fn data_dir(cli: &Cli) -> Result<PathBuf> {
    cli.data
        .clone()
        .ok_or_else(|| anyhow!("no data directory: pass --data DIR or set BLETCHLEY_DATA"))
}

fn principal(cli: &Cli) -> Result<String> {
    cli.as_principal
        .clone()
        .ok_or_else(|| anyhow!("this command acts for a principal: pass --as PRINCIPAL"))
}

pub fn open(cli: &Cli) -> Result<Platform> {
    let dir = data_dir(cli)?;
    Platform::open(&dir, Box::new(EnvUnlock)).with_context(|| format!("opening {}", dir.display()))
}

/// Parses `YYYY-MM-DD` (start of day, or end of day when `end_of_day`) or
/// RFC 3339, to Unix seconds.
pub fn parse_date(s: &str, end_of_day: bool) -> Result<i64> {
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t.unix_timestamp());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(s, &fmt)
        .map_err(|_| anyhow!("date {s:?}: expected YYYY-MM-DD or RFC 3339"))?;
    let t = if end_of_day {
        d.with_hms(23, 59, 59)?
    } else {
        d.midnight()
    };
    Ok(t.assume_utc().unix_timestamp())
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .map(|x| x.trim().to_owned())
        .filter(|x| !x.is_empty())
        .collect()
}

pub fn fmt_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Init(a) => init(&cli, a),
        Command::Fingerprints { json } => fingerprints(&cli, *json),
        Command::Agency(c) => agency(&cli, c),
        Command::Location(c) => location(&cli, c),
        Command::Residency(c) => residency(&cli, c),
        Command::Principal(c) => principal_cmd(&cli, c),
        Command::Collection(c) => collection(&cli, c),
        Command::Operation(c) => operation(&cli, c),
        Command::Ingest(a) => ingest(&cli, a),
        Command::Get(a) => get(&cli, a),
        Command::Annotate {
            id,
            text,
            justification,
        } => annotate(&cli, id, text, justification.as_deref()),
        Command::Annotations {
            id,
            json,
            justification,
        } => annotations(&cli, id, *json, justification.as_deref()),
        Command::Ls(a) => ls(&cli, a),
        Command::Search(a) => search(&cli, a),
        Command::Similar {
            id,
            json,
            limit,
            offset,
            justification,
        } => similar(&cli, id, *json, *limit, *offset, justification.as_deref()),
        Command::Suggest {
            prefix,
            limit,
            json,
            justification,
        } => suggest(&cli, prefix, *limit, *json, justification.as_deref()),
        Command::Entities {
            id,
            json,
            justification,
        } => entities(&cli, id, *json, justification.as_deref()),
        Command::Graph(g) => graph(&cli, g),
        Command::Xref {
            collection,
            against,
            limit,
            json,
            justification,
        } => xref(
            &cli,
            collection,
            against,
            *limit,
            *json,
            justification.as_deref(),
        ),
        Command::Timeline {
            selectors,
            json,
            justification,
        } => timeline(&cli, selectors, *json, justification.as_deref()),
        Command::Shred { id } => {
            let who = principal(&cli)?;
            open(&cli)?.shred(&who, id)?;
            println!("shredded {id}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Reclassify(a) => reclassify(&cli, a),
        Command::Retention(c) => retention(&cli, c),
        Command::Brake(c) => brake(&cli, c),
        Command::Backup {
            dest,
            jurisdiction,
            keep,
            json,
        } => crate::backup::backup(&mut open(&cli)?, dest, jurisdiction, *keep, *json),
        Command::Restore {
            src,
            generation,
            locations,
            list,
            json,
        } => {
            if *list {
                return crate::backup::list(src, *json);
            }
            crate::backup::restore(
                &data_dir(&cli)?,
                src,
                generation.as_deref(),
                locations,
                *json,
            )
        }
        Command::Audit(c) => audit(&cli, c),
        Command::Demo(a) => crate::demo::run(&cli, a),
        Command::Serve(a) => serve(&cli, a),
        Command::Bench(a) => crate::bench::run(a),
        Command::Models(c) => crate::speech::models(c),
        Command::Site(c) => crate::sites::site(&mut open(&cli)?, &data_dir(&cli)?, c),
        Command::Bundle(c) => crate::sites::bundle(&mut open(&cli)?, &data_dir(&cli)?, c),
        Command::Sync {
            peer,
            listen,
            once,
            max_rate,
            json,
        } => crate::sites::sync(
            &mut open(&cli)?,
            peer.as_deref(),
            listen.as_deref(),
            *once,
            max_rate.as_deref(),
            *json,
        ),
        Command::Jobs { json } => {
            let actor = match &cli.as_principal {
                Some(who) => bletchley_store::Actor::Principal(who.clone()),
                None => bletchley_store::Actor::Operator,
            };
            crate::speech::jobs(&mut open(&cli)?, &actor, *json)
        }
        Command::Work { once, decode } => crate::speech::work(&mut open(&cli)?, *once, decode),
        Command::Transcript(a) => {
            let who = principal(&cli)?;
            crate::speech::transcript(&mut open(&cli)?, &who, a)
        }
        Command::Transcribe(a) => crate::speech::transcribe(a),
        Command::Translate(a) => crate::speech::translate(a),
        Command::Embed(a) => crate::speech::embed(a),
        Command::Translation(c) => {
            let mut p = open(&cli)?;
            match c {
                TranslationCmd::Enable => crate::text_translation::enable(&mut p),
                TranslationCmd::Disable => crate::text_translation::disable(&mut p),
            }
        }
        Command::Semantic(c) => {
            let mut p = open(&cli)?;
            match c {
                SemanticCmd::Enable { model, no_backfill } => {
                    crate::semantic::enable(&mut p, model, !no_backfill)
                }
                SemanticCmd::Disable => crate::semantic::disable(&mut p),
                SemanticCmd::Status { json } => crate::semantic::status(&mut p, *json),
            }
        }
        Command::Hunt(a) => crate::hunt::run(a),
        Command::Witness(c) => crate::witness::witness(c),
        Command::Review(c) => review(&cli, c),
        Command::Oversight(c) => oversight(&cli, c),
        Command::Status { json } => status(&cli, *json),
        Command::Index(IndexCmd::Sync { rebuild }) => index_sync(&cli, *rebuild),
        Command::Detect(c) => {
            let who = principal(&cli)?;
            crate::detect::detect(&mut open(&cli)?, &who, c)
        }
        Command::Cases(c) => {
            let who = principal(&cli)?;
            crate::cases::cases(&mut open(&cli)?, &who, c)
        }
        Command::Playbook(c) => {
            let who = principal(&cli)?;
            crate::playbook::playbook(&mut open(&cli)?, &who, c)
        }
        Command::Alerts {
            level,
            json,
            justification,
        } => {
            let who = principal(&cli)?;
            crate::detect::alerts(
                &mut open(&cli)?,
                &who,
                level.as_deref(),
                *json,
                justification.as_deref(),
            )
        }
        Command::Corpus(CorpusCmd::Generate {
            out_dir,
            docs,
            seed,
        }) => {
            let s = bletchley_corpus::generate(
                out_dir,
                &bletchley_corpus::Options {
                    docs: *docs,
                    seed: *seed,
                },
            )?;
            println!(
                "wrote {} documents, {} e-mails, {} call records ({} calls) with {} planted networks, {} bytes, to {}",
                s.documents,
                s.emails,
                s.call_records,
                s.calls,
                s.networks,
                s.bytes,
                out_dir.display()
            );
            println!("answer key: {}", out_dir.join("answer-key.json").display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init(cli: &Cli, a: &InitArgs) -> Result<ExitCode> {
    let dir = data_dir(cli)?;
    let opts = InitOptions {
        home: Nation::from_alpha3(&a.home)
            .ok_or_else(|| anyhow!("--home {:?}: not an ISO 3166-1 alpha-3 code", a.home))?,
        jurisdiction: Jurisdiction::parse(&a.jurisdiction)?,
        kdf: KdfParams {
            m_kib: a.kdf_memory_kib,
            t: a.kdf_passes,
            p: 1,
        },
    };
    let p = Platform::init(&dir, &opts, Box::new(EnvUnlock))
        .with_context(|| format!("initialising {}", dir.display()))?;
    let cert = bletchley_server::tls::ensure_certificate(&p)?;
    println!(
        "initialised {} (home {}, default location in {})",
        dir.display(),
        a.home,
        a.jurisdiction
    );
    println!(
        "audit verifier key file: {}",
        dir.join("audit/verifier.vkey").display()
    );
    println!("TLS certificate for localhost: {}", cert.display());
    print_anchors(&p.trust_anchors()?);
    Ok(ExitCode::SUCCESS)
}

/// What the operator and the overseer copy somewhere the host cannot write.
fn print_anchors(t: &bletchley_store::TrustAnchors) {
    println!(
        "keep these outside this host (operator and overseer); `bletchley fingerprints` shows them again:"
    );
    println!("  audit verifier key: {}", t.audit_verifier);
    println!("  oversight key:      {}", t.oversight_key);
}

fn fingerprints(cli: &Cli, json: bool) -> Result<ExitCode> {
    let p = open(cli)?;
    let t = p.trust_anchors()?;
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
    } else {
        println!("audit verifier key: {}", t.audit_verifier);
        println!("oversight key:      {}", t.oversight_key);
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(cli: &Cli, a: &ServeArgs) -> Result<ExitCode> {
    let listen: std::net::SocketAddr = a
        .listen
        .parse()
        .with_context(|| format!("--listen {:?}: expected ADDRESS:PORT", a.listen))?;
    let tls = match (&a.cert, &a.key) {
        (Some(c), Some(k)) => Some((c.clone(), k.clone())),
        (None, None) => None,
        _ => bail!("--cert and --key go together"),
    };
    let p = open(cli)?;
    crate::speech::start_background_worker(data_dir(cli)?);
    crate::witness::start_cosigner(data_dir(cli)?);
    start_retention(data_dir(cli)?);
    let site = bletchley_sync::status(&p).ok().map(|s| s.identity.name);
    bletchley_server::serve(p, &bletchley_server::ServeOptions { listen, tls, site })?;
    Ok(ExitCode::SUCCESS)
}

/// Destroys what falls due under retention once a minute, on a thread with its
/// own platform handle (reads refuse due items already; this makes them gone).
fn start_retention(data: PathBuf) {
    let _ = std::thread::Builder::new()
        .name("retention".into())
        .spawn(move || {
            let mut p = match Platform::open(&data, Box::new(EnvUnlock)) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: retention thread: {e}");
                    return;
                }
            };
            loop {
                match p.shred_due() {
                    Ok(0) => {}
                    Ok(n) => eprintln!(
                        "retention: destroyed {n} items past their date (certificate in the audit log)"
                    ),
                    Err(e) => eprintln!("retention: {e}"),
                }
                std::thread::sleep(std::time::Duration::from_secs(60));
            }
        });
}

fn agency(cli: &Cli, c: &AgencyCmd) -> Result<ExitCode> {
    match c {
        AgencyCmd::Add { name } => {
            open(cli)?.add_agency(name)?;
            println!("agency {name} added");
        }
        AgencyCmd::Ls => {
            for n in open(cli)?.agencies()? {
                println!("{n}");
            }
        }
        AgencyCmd::RotateKey { name } => {
            let n = open(cli)?.rotate_agency_key(name)?;
            println!("agency {name}: key rotated, {n} data keys rewrapped");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn location(cli: &Cli, c: &LocationCmd) -> Result<ExitCode> {
    match c {
        LocationCmd::Add {
            name,
            jurisdiction,
            path,
            s3_bucket,
            s3_region,
        } => {
            let spec = match (path, s3_bucket, s3_region) {
                (Some(p), None, None) => LocationSpec::Local { path: p.clone() },
                (None, Some(b), Some(r)) => LocationSpec::S3 {
                    bucket: b.clone(),
                    region: r.clone(),
                },
                _ => bail!("give either --path or both --s3-bucket and --s3-region"),
            };
            open(cli)?.add_location(name, Jurisdiction::parse(jurisdiction)?, spec)?;
            println!("location {name} added in {jurisdiction}");
        }
        LocationCmd::Remove { name } => {
            open(cli)?.retire_location(name)?;
            println!(
                "location {name} retired: it takes no new writes; what rests there stays readable"
            );
        }
        LocationCmd::Ls => {
            for l in open(cli)?.locations()? {
                let where_ = match &l.spec {
                    LocationSpec::Local { path } => path.display().to_string(),
                    LocationSpec::S3 { bucket, region } => format!("s3://{bucket} ({region})"),
                };
                println!(
                    "{}\t{}\t{}{}",
                    l.name,
                    l.jurisdiction,
                    where_,
                    if l.retired { "\tretired" } else { "" }
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn residency(cli: &Cli, c: &ResidencyCmd) -> Result<ExitCode> {
    let ResidencyCmd::Set {
        agency,
        collection,
        classification,
        default,
        allow,
    } = c;
    let mut p = open(cli)?;
    let scope = match (agency, collection, classification, default) {
        (Some(a), None, None, false) => Scope::Agency(a.clone()),
        (None, Some(c), None, false) => {
            let coll = p
                .collections()?
                .into_iter()
                .find(|x| format!("{}/{}", x.agency, x.name) == *c)
                .ok_or_else(|| anyhow!("unknown collection {c:?}"))?;
            Scope::Collection(coll.id.0)
        }
        (None, None, Some(l), false) => {
            Scope::Classification(Classification::parse(l)?.as_str().to_owned())
        }
        (None, None, None, true) => Scope::Default,
        _ => bail!("give exactly one of --agency, --collection, --classification or --default"),
    };
    let allowed = bletchley_store::residency::parse_allow(allow)?;
    p.set_residency(scope, &allowed)?;
    println!("residency set: {allow}");
    Ok(ExitCode::SUCCESS)
}

fn status(cli: &Cli, json: bool) -> Result<ExitCode> {
    let mut p = open(cli)?;
    let h = p.node_health(cli.as_principal.as_deref())?;
    if json {
        println!("{}", serde_json::to_string_pretty(&h)?);
    } else {
        let said = |ok: bool, ms: f64, error: &Option<String>| match error {
            _ if ok => format!("answers ({ms:.1} ms)"),
            Some(e) => format!("DOES NOT ANSWER: {e}"),
            None => "DOES NOT ANSWER".to_owned(),
        };
        println!(
            "catalog: {}",
            said(h.catalog.ok, h.catalog.ms, &h.catalog.error)
        );
        for l in &h.locations {
            println!(
                "location {}{}: {}",
                l.name,
                if l.retired { " (retired)" } else { "" },
                said(l.probe.ok, l.probe.ms, &l.probe.error)
            );
        }
        println!("audit log: {} entries", h.audit_entries);
        println!("items: {}", h.items);
        let jobs: Vec<String> = h.jobs.iter().map(|(s, n)| format!("{n} {s}")).collect();
        println!(
            "jobs: {}",
            if jobs.is_empty() {
                "none".to_owned()
            } else {
                jobs.join(", ")
            }
        );
    }
    Ok(if h.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn index_sync(cli: &Cli, rebuild: bool) -> Result<ExitCode> {
    let mut p = open(cli)?;
    let dir = p.root().join("index");
    if rebuild && dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
        eprintln!(
            "index: removed {}; building it again from every item",
            dir.display()
        );
    }
    let started = std::time::Instant::now();
    let mut index =
        bletchley_index::SearchIndex::open(&dir, p.derived_key("search-index"), p.home())?;
    let bar =
        crate::progress::Progress::new("index", crate::progress::Unit::Count("items read back"));
    bletchley_index::access::sync_reporting(&mut p, &mut index, &mut |done, total| {
        bar.set(done as u64, total as u64)
    })?;
    bar.finish();
    println!(
        "index: {} items, up to date with the catalog ({:.1} s)",
        index.known_ids()?.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

fn reclassify(cli: &Cli, a: &ReclassifyArgs) -> Result<ExitCode> {
    use bletchley_store::platform::Remarked;
    let mut p = open(cli)?;
    let describe = |r: &bletchley_store::platform::RemarkReport| {
        format!(
            "re-marked {} ({} item{}): {} -> {}{}",
            r.item,
            r.items.len(),
            if r.items.len() == 1 { "" } else { "s" },
            r.from,
            r.to,
            r.approved_by
                .as_ref()
                .map(|a| format!(" (asked for by {}, approved by {a})", r.requested_by))
                .unwrap_or_default()
        )
    };
    match &a.cmd {
        Some(ReclassifyCmd::Approve { request, json }) => {
            let who = principal(cli)?;
            let r = p.approve_remark(&who, request)?;
            if *json {
                println!("{}", serde_json::to_string(&r)?);
            } else {
                println!("{}", describe(&r));
            }
        }
        Some(ReclassifyCmd::Reject { request, reason }) => {
            let who = principal(cli)?;
            p.reject_remark(&who, request, reason)?;
            println!("request {request} rejected");
        }
        Some(ReclassifyCmd::Ls { json }) => {
            let rs = p.remark_requests(cli.as_principal.as_deref())?;
            if *json {
                println!("{}", serde_json::to_string(&rs)?);
            } else if rs.is_empty() {
                println!("no re-marking requests are waiting");
            } else {
                for r in rs {
                    println!(
                        "{}\t{}\t{} -> {}\tasked by {} at {}\tauthority: {}",
                        r.id,
                        r.item,
                        r.from,
                        r.to,
                        r.by,
                        fmt_time(r.at_ms),
                        r.authority
                    );
                }
            }
        }
        None => {
            let who = principal(cli)?;
            let (Some(item), Some(marking), Some(authority)) = (&a.item, &a.marking, &a.authority)
            else {
                bail!("reclassify ITEM --marking MARKING --authority TEXT");
            };
            let outcome = p.reclassify(&who, item, marking, authority)?;
            if a.json {
                println!("{}", serde_json::to_string(&outcome)?);
                return Ok(ExitCode::SUCCESS);
            }
            match outcome {
                Remarked::Applied(r) => println!("{}", describe(&r)),
                Remarked::Pending(r) => println!(
                    "request {}: {} -> {} is a downgrade or widening; it waits for an originator of the owning agency (reclassify approve {})",
                    r.id, r.from, r.to, r.id
                ),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn oversight(cli: &Cli, c: &OversightCmd) -> Result<ExitCode> {
    let OversightCmd::Report {
        from,
        to,
        out,
        json,
    } = c;
    let who = principal(cli)?;
    let from_ms = parse_date(from, false)? * 1000;
    let to_ms = match to {
        Some(t) => (parse_date(t, true)? + 1) * 1000,
        None => {
            let today = OffsetDateTime::now_utc().date().midnight().assume_utc();
            (today.unix_timestamp() + 86_400) * 1000
        }
    };
    if out.is_none() && json.is_none() {
        bail!("say where the report goes: --out report.pdf, --json report.json or --json -");
    }
    let mut p = open(cli)?;
    let report = p.oversight_report(&who, bletchley_oversight::Period { from_ms, to_ms })?;
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(&report)?;
        if path.as_os_str() == "-" {
            println!("{text}");
        } else {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        }
    }
    if let Some(path) = out {
        let title = format!(
            "Oversight report {} to {}",
            bletchley_oversight::report::date(from_ms),
            bletchley_oversight::report::date(to_ms - 1)
        );
        std::fs::write(path, bletchley_oversight::pdf::render(&report, &title))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!(
            "{}: {} figures from {} entries of the period ({} in the log), {} sample entries proved",
            path.display(),
            report.figures.len(),
            report.period_entries,
            report.log_entries,
            report.proofs.len()
        );
        if let Some(why) = &report.proofs_missing {
            eprintln!("warning: no proofs: {why}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn review(cli: &Cli, c: &ReviewCmd) -> Result<ExitCode> {
    let mut p = open(cli)?;
    match c {
        ReviewCmd::Schedule { agency, every, off } => {
            let every_s = match every {
                Some(e) if !off => Some(parse_period(e)?),
                _ => None,
            };
            p.set_review_schedule(agency, every_s)?;
            match (every, every_s) {
                (Some(e), Some(s)) => println!(
                    "{agency}: its admins confirm each principal every {e}; the first reviews are due {}",
                    fmt_time((bletchley_store::platform::now_ms() / 1000 + s) * 1000)
                ),
                _ => println!("{agency}: no access reviews"),
            }
        }
        ReviewCmd::Ls { json } => {
            let queue = match &cli.as_principal {
                Some(admin) => p.reviews(admin)?,
                None => p.review_queue(None)?,
            };
            if *json {
                println!("{}", serde_json::to_string(&queue)?);
            } else if queue.is_empty() {
                println!("no access reviews are scheduled for these principals");
            } else {
                for r in queue {
                    println!(
                        "{}\t{}\tlast confirmed {}\t{} {}",
                        r.principal,
                        r.holds,
                        r.last_s
                            .map(|t| fmt_time(t * 1000))
                            .unwrap_or_else(|| "never".into()),
                        if r.overdue { "OVERDUE since" } else { "due" },
                        fmt_time(r.due_s * 1000)
                    );
                }
            }
        }
        ReviewCmd::Confirm { name, note } => {
            p.confirm_review(cli.as_principal.as_deref(), name, note)?;
            println!("access of {name} confirmed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a retention run's destruction certificate (and writes it to `file`).
fn print_certificate(
    r: &bletchley_store::platform::Retained,
    file: Option<&std::path::Path>,
    json: bool,
) -> Result<()> {
    if let Some(f) = file {
        std::fs::write(f, serde_json::to_vec_pretty(r)?)
            .with_context(|| format!("writing {}", f.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string(r)?);
        return Ok(());
    }
    println!(
        "shredded {} expired items ({} destroyed with what was derived from them)",
        r.shredded,
        r.destroyed.len()
    );
    for d in &r.destroyed {
        println!(
            "  {}\t{}\tingested {}\t{}",
            d.id,
            d.collection,
            fmt_time(d.created_ms),
            d.under
        );
    }
    if r.held > 0 {
        println!(
            "kept {} expired items: their collections are under legal hold",
            r.held
        );
    }
    if r.awaiting_review > 0 {
        println!(
            "{} expired items wait for an admin's review before destruction (retention review ls)",
            r.awaiting_review
        );
    }
    if !r.destroyed.is_empty() {
        println!(
            "the certificate is in the audit log (retention.certificate){}",
            file.map(|f| format!(" and in {}", f.display()))
                .unwrap_or_default()
        );
    }
    Ok(())
}

fn retention(cli: &Cli, c: &RetentionCmd) -> Result<ExitCode> {
    use bletchley_store::platform::ScheduleScope;
    let scope =
        |collection: &Option<String>, classification: &Option<String>| -> Result<ScheduleScope> {
            Ok(match (collection, classification) {
                (Some(c), None) => ScheduleScope::Collection(c.clone()),
                (None, Some(l)) => ScheduleScope::Classification(Classification::parse(l)?),
                _ => bail!("give --collection or --classification"),
            })
        };
    let mut p = open(cli)?;
    match c {
        RetentionCmd::Enforce { certificate, json } => {
            let bar = crate::progress::Progress::new(
                "retention",
                crate::progress::Unit::Count("due items dealt with"),
            );
            let r = p.enforce_retention_reporting(&mut |done, total| bar.set(done, total))?;
            bar.finish();
            print_certificate(&r, certificate.as_deref(), *json)?;
        }
        RetentionCmd::Review(RetentionReviewCmd::Require { collection, off }) => {
            p.require_retention_review(collection, !off)?;
            if *off {
                println!("{collection}: retention destroys its due items without review");
            } else {
                println!(
                    "{collection}: its items past their date wait for an admin's review (retention review ls) before they are destroyed"
                );
            }
        }
        RetentionCmd::Review(RetentionReviewCmd::Ls { json }) => {
            let q = p.retention_queue(cli.as_principal.as_deref())?;
            if *json {
                println!("{}", serde_json::to_string(&q)?);
            } else if q.is_empty() {
                println!("nothing is waiting for a retention review");
            } else {
                for a in &q {
                    println!(
                        "{}\t{}\t{}\t{}\tingested {}\t{}{}",
                        a.id,
                        a.collection,
                        a.marking,
                        a.title,
                        fmt_time(a.created_ms),
                        a.under,
                        if a.approved { "\tapproved" } else { "" }
                    );
                }
            }
        }
        RetentionCmd::Review(RetentionReviewCmd::Approve { items, certificate }) => {
            use bletchley_store::platform::ReviewDecision;
            let r =
                p.decide_retention(cli.as_principal.as_deref(), items, &ReviewDecision::Destroy)?;
            print_certificate(&r, certificate.as_deref(), false)?;
        }
        RetentionCmd::Review(RetentionReviewCmd::Keep {
            items,
            until,
            reason,
        }) => {
            use bletchley_store::platform::ReviewDecision;
            let until_ms = parse_date(until, false)? * 1000;
            p.decide_retention(
                cli.as_principal.as_deref(),
                items,
                &ReviewDecision::KeepUntil(until_ms, reason.clone()),
            )?;
            println!(
                "kept {} item{} until {}",
                items.len(),
                if items.len() == 1 { "" } else { "s" },
                fmt_time(until_ms)
            );
        }
        RetentionCmd::Schedule(ScheduleCmd::Set {
            collection,
            classification,
            keep,
        }) => {
            let s = scope(collection, classification)?;
            p.set_retention_schedule(&s, Some(parse_period(keep)?))?;
            println!("retention schedule set: keep {keep} after ingest");
        }
        RetentionCmd::Schedule(ScheduleCmd::Rm {
            collection,
            classification,
        }) => {
            p.set_retention_schedule(&scope(collection, classification)?, None)?;
            println!("retention schedule removed");
        }
        RetentionCmd::Schedule(ScheduleCmd::Ls) => {
            let list = p.retention_schedule_list()?;
            if list.is_empty() {
                println!("no retention schedules: items are kept until their own date, if any");
            }
            for (what, keep_s) in list {
                println!(
                    "{what}\tkeep {} days ({keep_s} s) after ingest",
                    keep_s / 86_400
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `7y`, `90d`, `12h`, `30m`, `45s` in seconds (a year is 365 days).
fn parse_period(s: &str) -> Result<i64> {
    let unit = s.chars().last().unwrap_or(' ');
    let n = &s[..s.len() - unit.len_utf8().min(s.len())];
    let mult = match unit {
        'y' => 365 * 86_400,
        'd' => 86_400,
        'h' => 3_600,
        'm' => 60,
        's' => 1,
        _ => bail!("period {s:?}: expected a number and a unit, y, d, h, m or s (90d)"),
    };
    let n: i64 = n
        .parse()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| anyhow!("period {s:?}: expected a positive number before the unit"))?;
    n.checked_mul(mult)
        .ok_or_else(|| anyhow!("period {s:?} is too long"))
}

fn parse_roles(roles: &str) -> Result<BTreeSet<Role>> {
    let mut rs = BTreeSet::new();
    for r in list(roles) {
        rs.insert(Role::parse(&r).ok_or_else(|| {
            anyhow!(
                "unknown role {r:?}: expected analyst, admin, auditor, overseer, field or responder"
            )
        })?);
    }
    Ok(rs)
}

fn standing_text(s: &bletchley_policy::Standing) -> String {
    match s {
        bletchley_policy::Standing::Active => "active".into(),
        bletchley_policy::Standing::Disabled { since_s } => {
            format!("disabled since {}", fmt_time(since_s * 1000))
        }
        bletchley_policy::Standing::Suspended { until_s } => {
            let now = bletchley_store::platform::now_ms() / 1000;
            if *until_s > now {
                format!("suspended until {}", fmt_time(until_s * 1000))
            } else {
                "active (suspension ended)".into()
            }
        }
    }
}

fn principal_cmd(cli: &Cli, c: &PrincipalCmd) -> Result<ExitCode> {
    match c {
        PrincipalCmd::Add {
            name,
            agency,
            clearance,
            compartments,
            nationality,
            roles,
        } => {
            let rs = parse_roles(roles)?;
            let comps: BTreeSet<String> = list(compartments).into_iter().collect();
            for cw in &comps {
                // A codeword must be one a banner could carry.
                Marking::parse(&format!("OFFICIAL//{cw}"))
                    .map_err(|_| anyhow!("{cw:?} is not a valid codeword"))?;
            }
            let p = Principal {
                name: name.clone(),
                agency: agency.clone(),
                clearance: Classification::parse(clearance)?,
                compartments: comps,
                nationality: Nation::from_alpha3(nationality).ok_or_else(|| {
                    anyhow!("nationality {nationality:?}: not an ISO 3166-1 alpha-3 code")
                })?,
                roles: rs,
                standing: Default::default(),
                reviewed_s: None,
            };
            open(cli)?.add_principal(&p)?;
            println!("principal {name} added");
        }
        PrincipalCmd::Show { name } => {
            let p = open(cli)?.principal(name)?;
            println!("{}", serde_json::to_string_pretty(&p)?);
        }
        PrincipalCmd::Ls { json } => {
            let all = open(cli)?.principals()?;
            if *json {
                println!("{}", serde_json::to_string(&all)?);
            } else {
                for p in all {
                    println!(
                        "{}\t{}\t{}{}\t{}\t{}",
                        p.name,
                        p.agency,
                        p.clearance.as_str(),
                        if p.compartments.is_empty() {
                            String::new()
                        } else {
                            format!(
                                " {}",
                                p.compartments.iter().cloned().collect::<Vec<_>>().join(",")
                            )
                        },
                        p.roles
                            .iter()
                            .map(|r| r.to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                        standing_text(&p.standing),
                    );
                }
            }
        }
        PrincipalCmd::Disable { name, reason } => {
            let since_s = bletchley_store::platform::now_ms() / 1000;
            open(cli)?.set_standing(
                cli.as_principal.as_deref(),
                name,
                bletchley_policy::Standing::Disabled { since_s },
                reason,
            )?;
            println!(
                "principal {name} disabled: its sessions, tokens and certificates no longer work"
            );
        }
        PrincipalCmd::Enable { name } => {
            open(cli)?.set_standing(
                cli.as_principal.as_deref(),
                name,
                bletchley_policy::Standing::Active,
                "",
            )?;
            println!("principal {name} enabled");
        }
        PrincipalCmd::Suspend {
            name,
            until,
            reason,
        } => {
            let until_s = parse_date(until, false)?;
            open(cli)?.set_standing(
                cli.as_principal.as_deref(),
                name,
                bletchley_policy::Standing::Suspended { until_s },
                reason,
            )?;
            println!(
                "principal {name} suspended until {}",
                fmt_time(until_s * 1000)
            );
        }
        PrincipalCmd::Set {
            name,
            clearance,
            compartments,
            roles,
            agency,
        } => {
            if cli.as_principal.is_some() {
                bail!(
                    "principal set is the operator's act (the platform passphrase), not a principal's: drop --as"
                );
            }
            let change = bletchley_store::PrincipalChange {
                clearance: clearance
                    .as_deref()
                    .map(Classification::parse)
                    .transpose()?,
                compartments: compartments
                    .as_deref()
                    .map(|c| -> Result<BTreeSet<String>> {
                        let set: BTreeSet<String> = list(c).into_iter().collect();
                        for cw in &set {
                            Marking::parse(&format!("OFFICIAL//{cw}"))
                                .map_err(|_| anyhow!("{cw:?} is not a valid codeword"))?;
                        }
                        Ok(set)
                    })
                    .transpose()?,
                roles: roles.as_deref().map(parse_roles).transpose()?,
                agency: agency.clone(),
            };
            let p = open(cli)?.update_principal(name, &change)?;
            println!("principal {name} now: {}", serde_json::to_string(&p)?);
        }
        PrincipalCmd::Passwd { name } => {
            let mut p = open(cli)?;
            p.principal(name)?;
            let pw = crate::unlock::new_password(name)?;
            p.set_password(name, &pw)?;
            println!("password set for {name}");
        }
        PrincipalCmd::Totp(TotpCmd::Enable { name }) => {
            let (url, secret) = open(cli)?.enable_totp(name)?;
            println!("second factor enrolled for {name}: logins now need a one-time code");
            println!("secret (base32, shown once): {secret}");
            println!("{url}");
        }
        PrincipalCmd::Cert(CertCmd::Issue { name, out, days }) => {
            if *days == 0 || *days > 825 {
                bail!("--days {days}: a client certificate lives 1 to 825 days");
            }
            let mut p = open(cli)?;
            p.principal(name)?;
            let issued = bletchley_server::tls::issue_client_certificate(&p, name, *days)
                .context("issuing the client certificate")?;
            std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
            let (crt, key) = (
                out.join(format!("{name}.crt.pem")),
                out.join(format!("{name}.key.pem")),
            );
            for f in [&crt, &key] {
                if f.exists() {
                    bail!("{} exists: choose another --out", f.display());
                }
            }
            write_private(&key, issued.key_pem.as_bytes())?;
            std::fs::write(&crt, issued.cert_pem.as_bytes())
                .with_context(|| format!("writing {}", crt.display()))?;
            p.register_certificate(name, &issued.serial, issued.not_after_ms)?;
            println!(
                "certificate {} for {name}, expires {}",
                issued.serial,
                fmt_time(issued.not_after_ms)
            );
            println!("{}", crt.display());
            println!("{}", key.display());
        }
        PrincipalCmd::Cert(CertCmd::Revoke { name, serial }) => {
            open(cli)?.revoke_certificate(name, serial)?;
            println!("certificate {serial} of {name} revoked");
        }
        PrincipalCmd::Cert(CertCmd::Ls { name }) => {
            for c in open(cli)?.certificates(name)? {
                println!(
                    "{}\t{}\t{}",
                    c.serial,
                    fmt_time(c.not_after_ms),
                    if c.revoked { "revoked" } else { "valid" }
                );
            }
        }
        PrincipalCmd::Totp(TotpCmd::Disable { name }) => {
            open(cli)?.disable_totp(name)?;
            println!("second factor removed for {name}");
        }
        PrincipalCmd::Token(TokenCmd::Create {
            name,
            scopes,
            days,
            label,
        }) => {
            let scopes = list(scopes)
                .iter()
                .map(|s| bletchley_store::TokenScope::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            if *days == 0 || *days > 366 {
                bail!("--days {days}: a token lives 1 to 366 days");
            }
            let expires = bletchley_store::now_ms() + i64::from(*days) * 86_400_000;
            let (rec, secret) = open(cli)?.create_token(name, label, scopes, expires)?;
            println!(
                "token {} for {name}, expires {}",
                rec.id,
                fmt_time(rec.expires_ms)
            );
            println!("{secret}");
        }
        PrincipalCmd::Token(TokenCmd::Revoke { name, id }) => {
            open(cli)?.revoke_token(name, id)?;
            println!("token {id} revoked");
        }
        PrincipalCmd::Token(TokenCmd::Ls { name }) => {
            for t in open(cli)?.tokens(name)? {
                println!(
                    "{}\t{:?}\texpires {}\t{}\t{}",
                    t.id,
                    t.scopes,
                    fmt_time(t.expires_ms),
                    if t.revoked { "revoked" } else { "active" },
                    t.label
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn collection(cli: &Cli, c: &CollectionCmd) -> Result<ExitCode> {
    match c {
        CollectionCmd::Add { name, bulk } => {
            open(cli)?.add_collection(name, *bulk)?;
            println!(
                "collection {name} added{}",
                if *bulk {
                    " (bulk: justification required)"
                } else {
                    ""
                }
            );
        }
        CollectionCmd::Ls => {
            let p = open(cli)?;
            let holds: std::collections::HashMap<String, _> =
                p.legal_holds()?.into_iter().collect();
            for c in p.collections()? {
                let full = format!("{}/{}", c.agency, c.name);
                let hold = holds
                    .get(&full)
                    .map(|h| format!("\tlegal hold: {}", h.reason))
                    .unwrap_or_default();
                println!("{full}{}{hold}", if c.bulk { "\tbulk" } else { "" });
            }
        }
        CollectionCmd::Hold { name, reason } => {
            open(cli)?.set_hold(name, Some(reason))?;
            println!(
                "collection {name} is under legal hold: nothing in it will be shredded until it is released"
            );
        }
        CollectionCmd::Release { name } => {
            open(cli)?.set_hold(name, None)?;
            println!("legal hold on {name} released");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn operation(cli: &Cli, c: &OperationCmd) -> Result<ExitCode> {
    match c {
        OperationCmd::Add {
            name,
            agencies,
            members,
            from,
            until,
        } => {
            let now = bletchley_store::now_ms() / 1000;
            let op = Operation {
                name: name.clone(),
                agencies: list(agencies).into_iter().collect(),
                members: members
                    .as_deref()
                    .map(list)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                start: from
                    .as_deref()
                    .map(|d| parse_date(d, false))
                    .transpose()?
                    .unwrap_or(now),
                end: until.as_deref().map(|d| parse_date(d, true)).transpose()?,
                shares: Vec::new(),
            };
            open(cli)?.add_operation(&op)?;
            println!("operation {name} added");
        }
        OperationCmd::Share { name, collection } => {
            open(cli)?.share(name, collection)?;
            println!("{collection} shared into {name}");
        }
        OperationCmd::Withdraw { name, collection } => {
            open(cli)?.withdraw(name, collection)?;
            println!("{collection} withdrawn from {name}");
        }
        OperationCmd::Ls => {
            for op in open(cli)?.operations()? {
                println!("{}", serde_json::to_string(&op)?);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_input(path: &Path) -> Result<NewItem> {
    if path == Path::new("-") {
        let mut buf = Vec::new();
        std::io::stdin()
            .read_to_end(&mut buf)
            .context("reading standard input")?;
        return Ok(NewItem {
            title: "stdin".into(),
            content: buf,
        });
    }
    let content = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let title = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string());
    Ok(NewItem { title, content })
}

fn ingest(cli: &Cli, a: &IngestArgs) -> Result<ExitCode> {
    let who = principal(cli)?;
    let marking =
        Marking::parse(&a.marking).with_context(|| format!("--marking {:?}", a.marking))?;
    let retain_until_ms = a
        .retain_until
        .as_deref()
        .map(|d| parse_date(d, true))
        .transpose()?
        .map(|s| s * 1000);
    let mut p = open(cli)?;
    let opts = IngestOptions {
        collection: a.collection.clone(),
        marking,
        authority: a.authority.clone(),
        retain_until_ms,
        justification: a.justification.clone(),
        priority: a.priority.parse()?,
    };
    let bar = (a.files.len() > 1 && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(a.files.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files {per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    // Index each batch while the next is stored, so that the items are
    // searchable when the ingest ends rather than after the next search
    // reads them all back. Storing never depends on it: without it, the
    // next search reconciles as before.
    let mut indexing = match bletchley_index::access::open_synced(&mut p).and_then(|mut i| {
        let f = bletchley_index::feeder::IndexFeeder::start(&mut p, &mut i)?;
        Ok((i, f))
    }) {
        Ok(pair) => Some(pair),
        Err(e) => {
            eprintln!("note: not indexing as it stores ({e}); the next search will");
            None
        }
    };
    let mut failed = 0usize;
    let mut derived = 0usize;
    let mut jobs = 0usize;
    let stdout = std::io::stdout();
    for chunk in a.files.chunks(a.batch.max(1)) {
        let mut batch = Vec::with_capacity(chunk.len());
        for f in chunk {
            match read_input(f) {
                Ok(it) => batch.push(it),
                Err(e) => {
                    failed += 1;
                    let msg = format!("{e:#}");
                    if let Some(b) = &bar {
                        b.suspend(|| eprintln!("error: not ingested: {msg}"));
                    } else {
                        eprintln!("error: not ingested: {msg}");
                    }
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        let n = batch.len() as u64;
        bletchley_detect::manage::check_ingest(&opts.collection, &batch)?;
        let stored = bletchley_index::ingest::ingest(&mut p, &who, &opts, batch)?;
        if let Some((_, f)) = &mut indexing {
            f.feed(&mut p);
        }
        derived += stored.parts;
        jobs += stored.jobs.len();
        let ids = stored.ids;
        let mut out = stdout.lock();
        for id in ids {
            writeln!(out, "{id}")?;
        }
        out.flush()?;
        if let Some(b) = &bar {
            b.inc(n);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    if let Some((mut i, f)) = indexing {
        match f.finish(&mut p, &mut i) {
            Ok(r) => {
                if let Some(why) = r.left_to_reconcile {
                    eprintln!(
                        "note: {} items indexed as stored; the rest the next search will ({why})",
                        r.indexed
                    );
                }
            }
            Err(e) => eprintln!("note: indexing as it stored failed ({e}); the next search will"),
        }
    }
    if derived > 0 {
        eprintln!(
            "note: {derived} attachments and archive entries stored as items derived from their containers"
        );
    }
    if jobs > 0 {
        eprintln!(
            "note: {jobs} jobs queued (transcription and translation of recordings, detection over event logs; `bletchley work` or `serve` runs them; `bletchley jobs` shows them)"
        );
    }
    if failed > 0 {
        eprintln!(
            "error: {failed} of {} files were not ingested (see above)",
            a.files.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn get(cli: &Cli, a: &GetArgs) -> Result<ExitCode> {
    let who = principal(cli)?;
    let (meta, content) = open(cli)?.get(&who, &a.id, a.justification.as_deref())?;
    if a.meta {
        println!("{}", serde_json::to_string_pretty(&meta)?);
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(&content)?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}

fn annotate(cli: &Cli, id: &str, text: &str, justification: Option<&str>) -> Result<ExitCode> {
    let who = principal(cli)?;
    let mut p = open(cli)?;
    // At a site, the note says where it was written: it will be read at other sites too.
    let author = match bletchley_sync::status(&p) {
        Ok(s) => format!("{who}@{}", s.identity.name),
        Err(_) => who.clone(),
    };
    let note = p.annotate(&who, id, &author, text, justification)?;
    println!("{note}");
    Ok(ExitCode::SUCCESS)
}

fn annotations(cli: &Cli, id: &str, json: bool, justification: Option<&str>) -> Result<ExitCode> {
    let who = principal(cli)?;
    let notes = open(cli)?.annotations(&who, id, justification)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&notes)?);
    } else {
        for n in &notes {
            println!(
                "{}\t{}\t{}\t{}",
                fmt_time(n.created_ms),
                n.author,
                n.id,
                n.text.replace('\n', " ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn ls(cli: &Cli, a: &LsArgs) -> Result<ExitCode> {
    let who = principal(cli)?;
    let listing = open(cli)?.list(&who, a.collection.as_deref(), a.justification.as_deref())?;
    for s in &listing.skipped_bulk {
        eprintln!("note: bulk collection {s} not listed: give --justification TEXT");
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&listing.items)?);
    } else {
        for m in &listing.items {
            println!(
                "{}\t{}\t{}\t{}\t{}\t{}",
                m.id,
                m.marking,
                m.collection,
                m.size,
                fmt_time(m.created_ms),
                m.title
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn audit(cli: &Cli, c: &AuditCmd) -> Result<ExitCode> {
    let dir = data_dir(cli)?;
    let log = AuditLog::at(dir.join("audit"));
    match c {
        AuditCmd::Verify {
            checkpoint,
            verifier,
            witnesses,
            quorum,
            json,
        } => {
            let cp = checkpoint
                .as_ref()
                .map(|p| std::fs::read_to_string(p).with_context(|| format!("{}", p.display())))
                .transpose()?;
            let v = verifier
                .as_ref()
                .map(|p| -> Result<Verifier> {
                    Ok(Verifier::parse(
                        &std::fs::read_to_string(p).with_context(|| format!("{}", p.display()))?,
                    )?)
                })
                .transpose()?;
            if cp.is_none() {
                match crate::witness::verify_witnessed(&log, v.as_ref(), witnesses, *quorum) {
                    Ok(None) => {}
                    Ok(Some(r)) => {
                        if *json {
                            println!("{}", serde_json::to_string(&r)?);
                        } else {
                            println!(
                                "audit log verified: {} entries, {} earlier checkpoints consistent; witnessed: {} entries cosigned by {} (quorum {}){}",
                                r.log.entries,
                                r.log.checkpoints_checked,
                                r.witnessed_size,
                                r.cosigners.join(", "),
                                r.quorum,
                                if r.not_yet_witnessed > 0 {
                                    format!(
                                        "; the last {} entries are signed by the platform and not yet witnessed",
                                        r.not_yet_witnessed
                                    )
                                } else {
                                    String::new()
                                }
                            );
                        }
                        return Ok(ExitCode::SUCCESS);
                    }
                    Err(e) => {
                        eprintln!("error: audit log verification FAILED: {e:#}");
                        return Ok(ExitCode::FAILURE);
                    }
                }
            } else if !witnesses.is_empty() || quorum.is_some() {
                bail!(
                    "--checkpoint checks one checkpoint; --witness and --quorum check the witnessed ones: give one or the other"
                );
            }
            match log.verify(cp.as_deref(), v.as_ref()) {
                Ok(r) => {
                    if *json {
                        println!("{}", serde_json::to_string(&r)?);
                    } else {
                        println!(
                            "audit log verified: {} entries, checkpoint covers {}, root {}, {} earlier checkpoints consistent",
                            r.entries, r.checkpoint_size, r.root, r.checkpoints_checked
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("error: audit log verification FAILED: {e}");
                    Ok(ExitCode::FAILURE)
                }
            }
        }
        AuditCmd::Show { json } => {
            let entries = bletchley_store::read_audit(&dir, &EnvUnlock)?;
            let mut out = std::io::stdout().lock();
            for (seq, e) in entries {
                if *json {
                    let mut v = serde_json::to_value(&e)?;
                    v["seq"] = seq.into();
                    writeln!(out, "{v}")?;
                } else {
                    writeln!(
                        out,
                        "{seq}\t{}\t{}\t{}\t{:?}\t{}{}{}",
                        fmt_time(e.time_ms),
                        e.principal,
                        e.action,
                        e.outcome,
                        e.targets.join(","),
                        e.justification
                            .map(|j| format!("\tjustification: {j}"))
                            .unwrap_or_default(),
                        e.reason
                            .map(|r| format!("\treason: {r}"))
                            .unwrap_or_default(),
                    )?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Checkpoint => {
            print!("{}", log.checkpoint_note()?);
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Cosign { json } => match crate::witness::cosign_once(&mut open(cli)?)? {
            None => bail!("no witnesses are configured (add one with `audit witness add`)"),
            Some(r) => {
                if *json {
                    println!("{}", serde_json::to_string(&r)?);
                } else {
                    println!("{}", crate::witness::describe(&r));
                }
                Ok(if r.cosigned_by >= r.quorum {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                })
            }
        },
        AuditCmd::Witness(w) => {
            crate::witness::audit_witness(&mut open(cli)?, w)?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Proof { seq, item, from } => {
            crate::witness::proof(&dir, *seq, item.as_deref(), *from)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn search(cli: &Cli, a: &SearchArgs) -> Result<ExitCode> {
    use bletchley_index::{SearchRequest, SortBy};
    let who = principal(cli)?;
    let sort = match a.sort.as_str() {
        "relevance" => SortBy::Relevance,
        "time" => SortBy::Time,
        other => bail!("--sort {other:?}: expected relevance or time"),
    };
    let Some(mode) = bletchley_index::semantic::Mode::parse(&a.mode) else {
        bail!("--mode {:?}: expected lexical, semantic or hybrid", a.mode);
    };
    let mut p = open(cli)?;
    let index = synced_index(&mut p)?;
    let req = SearchRequest {
        query: a.query.clone(),
        limit: a.limit,
        offset: a.offset,
        sort,
        facets: a.facets,
    };
    let (results, skipped) = if mode == bletchley_index::semantic::Mode::Lexical {
        bletchley_index::access::search(&mut p, &index, &who, &req, a.justification.as_deref())?
    } else {
        if sort != SortBy::Relevance {
            bail!("--sort time is for lexical search; semantic and hybrid rank by relevance");
        }
        let (model, mut vectors) = crate::semantic::open_semantic(&mut p)?;
        let q = crate::semantic::embed_query(&model, &a.query)?;
        let (r, skipped) = bletchley_index::semantic::search(
            &mut p,
            &index,
            &mut vectors,
            &who,
            &bletchley_index::semantic::SemanticQuery {
                request: &req,
                mode,
                vector: &q,
                justification: a.justification.as_deref(),
            },
        )?;
        (r.into(), skipped)
    };
    note_skipped(&skipped);
    print_results(&results, a.json, a.facets)
}

/// `similar ID`: more like this.
fn similar(
    cli: &Cli,
    id: &str,
    json: bool,
    limit: usize,
    offset: usize,
    justification: Option<&str>,
) -> Result<ExitCode> {
    let who = principal(cli)?;
    let mut p = open(cli)?;
    let index = synced_index(&mut p)?;
    let (_, mut vectors) = crate::semantic::open_semantic(&mut p)?;
    let req = bletchley_index::SearchRequest {
        query: String::new(),
        limit,
        offset,
        sort: bletchley_index::SortBy::Relevance,
        facets: false,
    };
    let (r, skipped) = bletchley_index::semantic::more_like(
        &mut p,
        &index,
        &mut vectors,
        &who,
        id,
        &req,
        justification,
    )?;
    note_skipped(&skipped);
    let results: bletchley_index::SearchResults = r.into();
    print_results(&results, json, false)
}

/// `xref --collection A [--against B…]`: the collection's selectors found in others.
fn xref(
    cli: &Cli,
    collection: &str,
    against: &[String],
    limit: usize,
    json: bool,
    justification: Option<&str>,
) -> Result<ExitCode> {
    use crate::progress::{Progress, Unit};
    let who = principal(cli)?;
    let mut p = open(cli)?;
    let index = synced_index(&mut p)?;
    let bar = Progress::new("xref", Unit::Count("names compared"));
    let report = bletchley_index::xref::run(
        &mut p,
        &index,
        &who,
        &bletchley_index::xref::XrefRequest {
            collection: collection.to_owned(),
            against: against.to_vec(),
            time_limit: None,
        },
        justification,
        &mut |done, total| bar.set(done as u64, total as u64),
    )?;
    bar.finish();
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let markings = report
        .matches
        .iter()
        .take(limit)
        .flat_map(|m| m.here.iter().chain(&m.there))
        .filter_map(|i| i.marking.parse().ok())
        .collect::<Vec<bletchley_policy::Marking>>();
    let banner = bletchley_policy::Marking::high_water_mark(&markings, p.home())
        .map_or_else(|| "OFFICIAL".to_owned(), |m| m.render());
    println!("{banner}");
    println!(
        "{} matches of {} in {} ({} names compared{})",
        report.matches.len(),
        report.collection,
        report.against.join(", "),
        report.names_compared,
        if report.resumed {
            ", earlier comparisons reused"
        } else {
            ""
        }
    );
    for m in report.matches.iter().take(limit) {
        let matched = if m.matched == m.entity {
            String::new()
        } else {
            format!(" ~ {}", m.matched)
        };
        println!(
            "{:.3}\t{}{matched}\t{}\t{} here, {} there",
            m.score, m.entity, m.collection, m.here_total, m.there_total
        );
        for (side, items) in [("here", &m.here), ("there", &m.there)] {
            for i in items {
                println!("    {side}\t{}\t{}\t{}", i.id, i.marking, i.title);
            }
        }
    }
    println!("{banner}");
    Ok(ExitCode::SUCCESS)
}

/// A page of hits: JSON, or a banner, one line a hit with its passage, facets, the banner.
fn print_results(
    results: &bletchley_index::SearchResults,
    json: bool,
    facets: bool,
) -> Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(results)?);
        return Ok(ExitCode::SUCCESS);
    }
    let banner = results
        .page_marking
        .clone()
        .unwrap_or_else(|| "OFFICIAL".into());
    println!("{banner}");
    println!("{} matches", results.total);
    for h in &results.hits {
        println!(
            "{}\t{:.3}\t{}\t{}\t{}",
            h.id, h.score, h.marking, h.collection, h.title
        );
        let plain = h.highlight.replace("<b>", "[").replace("</b>", "]");
        println!("    {}", plain.replace('\n', " "));
    }
    if facets {
        for (name, values) in &results.facets {
            let v: Vec<String> = values.iter().map(|(k, n)| format!("{k} ({n})")).collect();
            println!("{name}: {}", v.join(", "));
        }
    }
    println!("{banner}");
    Ok(ExitCode::SUCCESS)
}

fn suggest(
    cli: &Cli,
    prefix: &str,
    limit: usize,
    json: bool,
    justification: Option<&str>,
) -> Result<ExitCode> {
    let who = principal(cli)?;
    let mut p = open(cli)?;
    let index = synced_index(&mut p)?;
    let found =
        bletchley_index::access::suggest(&mut p, &index, &who, prefix, limit, justification)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&found)?);
    } else {
        for s in &found {
            println!("{}	{}", s.items, s.text);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The search index, brought up to date with the catalog.
fn synced_index(p: &mut Platform) -> Result<bletchley_index::SearchIndex> {
    Ok(bletchley_index::access::open_synced(p)?)
}

/// Says on stderr which bulk collections were left out for want of a
/// justification.
fn note_skipped(skipped: &[String]) {
    for name in skipped {
        eprintln!("note: bulk collection {name} left out: give --justification TEXT");
    }
}

/// The collections a gate lets its principal see, noting skipped bulk ones.
fn visible_collections(
    p: &Platform,
    gate: &bletchley_policy::Gate,
    justification: Option<&str>,
) -> Result<bletchley_policy::Admitted> {
    let v = bletchley_index::access::visible(p, gate, justification)?;
    note_skipped(v.skipped_bulk());
    Ok(v)
}

fn entities(cli: &Cli, id: &str, json: bool, justification: Option<&str>) -> Result<ExitCode> {
    let who = principal(cli)?;
    let (meta, content) = open(cli)?.get(&who, id, justification)?;
    // Offsets are into the extracted text, as the index sees it.
    let text = bletchley_index::extract::extract_item(&meta.title, &content, meta.generation).text;
    let found = bletchley_index::entities::extract(&text);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "item": id, "marking": meta.marking, "entities": found })
            )?
        );
    } else {
        println!("{}", meta.marking);
        for m in &found {
            println!("{}\t{}\t{}..{}", m.kind.name(), m.value, m.start, m.end);
        }
        println!("{}", meta.marking);
    }
    Ok(ExitCode::SUCCESS)
}

fn graph(cli: &Cli, g: &GraphCmd) -> Result<ExitCode> {
    use bletchley_index::access::GraphAsk;
    use bletchley_index::graph::LinkGraph;
    let who = principal(cli)?;
    let (json, justification) = match g {
        GraphCmd::Neighbours {
            json,
            justification,
            ..
        }
        | GraphCmd::Path {
            json,
            justification,
            ..
        }
        | GraphCmd::Communities {
            json,
            justification,
        }
        | GraphCmd::Common {
            json,
            justification,
            ..
        }
        | GraphCmd::Centrality {
            json,
            justification,
            ..
        } => (*json, justification.as_deref()),
    };
    let norm = |s: &str| {
        bletchley_index::entities::normalise(s).ok_or_else(|| anyhow!("{s:?} is not a recognised selector (phone, e-mail, IP, domain, URL, IBAN, wallet, IMEI, coordinates)"))
    };
    let mut p = open(cli)?;
    let index = synced_index(&mut p)?;
    let gate = p.gate(&who)?;
    let admitted = visible_collections(&p, &gate, justification)?;
    let lg = LinkGraph::build(&index.visible_links(&admitted)?);
    let ask = match g {
        GraphCmd::Neighbours { selector, hops, .. } => GraphAsk::Neighbours {
            selector: norm(selector)?,
            hops: *hops,
        },
        GraphCmd::Path { from, to, .. } => GraphAsk::Path {
            from: norm(from)?,
            to: norm(to)?,
        },
        GraphCmd::Communities { .. } => GraphAsk::Communities,
        GraphCmd::Common { a, b, .. } => GraphAsk::Common {
            a: norm(a)?,
            b: norm(b)?,
        },
        GraphCmd::Centrality { top, .. } => GraphAsk::Centrality { top: *top },
    };
    let bletchley_index::access::GraphAnswer {
        action,
        targets,
        json: out,
    } = bletchley_index::access::answer(&lg, &ask, p.home());
    p.record(
        bletchley_store::Actor::Principal(who),
        action,
        targets,
        justification,
        bletchley_audit::Outcome::Allowed,
        None,
    )?;
    let banner = out["marking"].as_str().map(str::to_owned);
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        if let Some(b) = &banner {
            println!("{b}");
        }
        match g {
            GraphCmd::Neighbours { .. } => {
                for n in out["neighbours"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\tvia {}",
                        n["hops"],
                        n["entity"].as_str().unwrap_or_default(),
                        n["via_items"]
                    );
                }
            }
            GraphCmd::Path { .. } => match out["path"].as_array() {
                Some(steps) => {
                    for s in steps {
                        println!(
                            "{}\t{}",
                            s["entity"].as_str().unwrap_or_default(),
                            s["via_items"]
                        );
                    }
                }
                None => println!("no path between them in what you may see"),
            },
            GraphCmd::Communities { .. } => {
                for (i, c) in out["communities"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    println!("{}\t{}", i + 1, c);
                }
            }
            GraphCmd::Common { .. } => {
                for c in out["common"].as_array().into_iter().flatten() {
                    println!(
                        "{}\tvia {} | {}",
                        c["entity"].as_str().unwrap_or_default(),
                        c["via_a"],
                        c["via_b"]
                    );
                }
            }
            GraphCmd::Centrality { .. } => {
                println!("betweenness\tdegree\titems\tselector");
                for c in out["centrality"].as_array().into_iter().flatten() {
                    println!(
                        "{}\t{}\t{}\t{}",
                        c["betweenness"],
                        c["degree"],
                        c["weight"],
                        c["entity"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        if let Some(b) = &banner {
            println!("{b}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn timeline(
    cli: &Cli,
    selectors: &[String],
    json: bool,
    justification: Option<&str>,
) -> Result<ExitCode> {
    let who = principal(cli)?;
    let chosen: Vec<String> = selectors
        .iter()
        .map(|s| {
            bletchley_index::entities::normalise(s)
                .ok_or_else(|| anyhow!("{s:?} is not a recognised selector"))
        })
        .collect::<Result<_>>()?;
    let mut p = open(cli)?;
    let index = synced_index(&mut p)?;
    note_skipped(
        bletchley_index::access::visible(&p, &p.gate(&who)?, justification)?.skipped_bulk(),
    );
    let events = bletchley_index::access::timeline(&mut p, &index, &who, &chosen, justification)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&events)?);
    } else {
        for e in &events {
            println!(
                "{}\t{}\t{}\t{}\t{}",
                fmt_time(e.time_ms),
                e.id,
                e.marking,
                e.title,
                e.entities.join(" ")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a private key readable by its owner only, never over a file.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write as _;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let mut f = o
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// Parses a window such as `3600`, `90s`, `30m`, `1h` or `2d` into seconds.
pub fn parse_window(s: &str) -> Result<u64> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&s[..i], c),
        _ => (s, 's'),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow!("window {s:?}: expected seconds, or a number with s, m, h or d"))?;
    let mul = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => bail!("window {s:?}: the unit must be s, m, h or d"),
    };
    n.checked_mul(mul)
        .ok_or_else(|| anyhow!("window {s:?} is too long"))
}

fn brake(cli: &Cli, c: &BrakeCmd) -> Result<ExitCode> {
    match c {
        BrakeCmd::Set { max, window } => {
            let setting = BrakeSetting {
                max: *max,
                window_s: parse_window(window)?,
            };
            open(cli)?.set_brake(setting)?;
            println!(
                "the brake stops a principal after {} shreds within {} s",
                setting.max, setting.window_s
            );
        }
        BrakeCmd::Status { json } => {
            let p = open(cli)?;
            let setting = p.brake_setting()?;
            let stopped = p.brake_stopped()?;
            if *json {
                println!(
                    "{}",
                    serde_json::json!({ "setting": setting, "stopped": stopped })
                );
            } else {
                println!(
                    "limit: {} shreds within {} s per principal",
                    setting.max, setting.window_s
                );
                for s in stopped {
                    println!(
                        "stopped: {} ({}) since {}",
                        s.principal,
                        s.agency,
                        fmt_time(s.since_ms)
                    );
                }
            }
        }
        BrakeCmd::Release { principal: stopped } => {
            let who = principal(cli)?;
            open(cli)?.release_brake(&who, stopped)?;
            println!("{stopped} may shred again");
        }
    }
    Ok(ExitCode::SUCCESS)
}
