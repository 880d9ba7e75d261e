//! Managing an agency's detection: its Sigma rule files (checked before any is stored), and
//! hunting stored logs again. The command line and the server both come through here, so a
//! rule file that does not parse is refused the same way from either.

use std::path::Path;

use bletchley_policy::Marking;
use bletchley_store::jobs::DETECT_AGAIN;
use bletchley_store::{Error, IngestOptions, ItemMeta, NewItem, Platform, Result};

use crate::job::rules_collection;
use crate::rule::{self, PlaceholderMap};

/// The largest rule file accepted, in bytes.
pub const MAX_RULE_FILE: usize = 1 << 20;

/// Stores rule `files` (name, bytes) in `who`'s agency's rules collection at `marking`, every
/// file read and checked first: one that is not UTF-8 or does not parse stores none, and the
/// error names it (and the line). Returns the stored item ids and how many rules they hold.
pub fn add_rule_files(
    p: &mut Platform,
    who: &str,
    files: Vec<(String, Vec<u8>)>,
    marking: Marking,
) -> Result<(Vec<String>, usize)> {
    let agency = p.principal(who)?.agency.clone();
    let coll = rules_collection(&agency);
    if !p
        .collections()?
        .iter()
        .any(|c| format!("{}/{}", c.agency, c.name) == coll)
    {
        return Err(Error::Invalid(format!(
            "agency {agency} keeps its Sigma rules in the collection {coll}, which does not exist: bletchley collection add {coll}"
        )));
    }
    if files.is_empty() {
        return Err(Error::Invalid("no rule file given".into()));
    }
    let mut items = Vec::with_capacity(files.len());
    let mut count = 0;
    for (name, bytes) in files {
        if bytes.len() > MAX_RULE_FILE {
            return Err(Error::Invalid(format!(
                "{name}: a rule file of {} bytes (at most {MAX_RULE_FILE}); no rule was stored",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::Invalid(format!(
                "{name}: a rule file is UTF-8 text; no rule was stored"
            ))
        })?;
        let rules = rule::parse_file(Path::new(&name), text, &PlaceholderMap::new())
            .map_err(|e| Error::Invalid(format!("{e}; no rule was stored")))?;
        count += rules.len();
        items.push(NewItem {
            title: name,
            content: bytes,
        });
    }
    let opts = IngestOptions {
        collection: coll,
        marking,
        authority: None,
        retain_until_ms: None,
        justification: None,
        priority: Default::default(),
    };
    let ids = p.ingest(who, &opts, items)?;
    Ok((ids, count))
}

/// Checks what an ordinary ingest or upload would store in `collection`: into an agency's
/// rules collection only rule files that parse, as `add_rule_files` stores them (one that does
/// not would stop every detection job of the agency).
pub fn check_ingest(collection: &str, items: &[NewItem]) -> Result<()> {
    if !collection.ends_with("/sigma-rules") {
        return Ok(());
    }
    for it in items {
        let text = std::str::from_utf8(&it.content).map_err(|_| {
            Error::Invalid(format!(
                "{}: {collection} holds Sigma rule files, which are UTF-8 text; nothing was stored",
                it.title
            ))
        })?;
        rule::parse_file(Path::new(&it.title), text, &PlaceholderMap::new()).map_err(|e| {
            Error::Invalid(format!(
                "{e}: {collection} holds Sigma rule files that parse; nothing was stored"
            ))
        })?;
    }
    Ok(())
}

/// The rule files of `who`'s agency that `who` may see.
pub fn rule_files(p: &mut Platform, who: &str) -> Result<Vec<ItemMeta>> {
    let agency = p.principal(who)?.agency.clone();
    let coll = rules_collection(&agency);
    if !p
        .collections()?
        .iter()
        .any(|c| format!("{}/{}", c.agency, c.name) == coll)
    {
        return Ok(Vec::new());
    }
    Ok(p.list(who, Some(&coll), None)?.items)
}

/// Whether a stored item's name is that of an event log (what ingest queued detection for,
/// by name: EVTX, JSON Lines, syslog).
pub fn is_log_name(title: &str) -> bool {
    let ext = title
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    matches!(ext.as_str(), "evtx" | "jsonl" | "ndjson" | "syslog" | "log")
}

/// Queues every event log of `collection` that `who` may see for detection again, with the
/// rules as they are now; only alerts a log lacks will be stored. Returns how many logs and
/// the jobs queued.
pub fn detect_again(
    p: &mut Platform,
    who: &str,
    collection: &str,
    justification: Option<&str>,
) -> Result<(usize, Vec<i64>)> {
    let listing = p.list(who, Some(collection), justification)?;
    let logs: Vec<&str> = listing
        .items
        .iter()
        .filter(|m| m.derived_from.is_none() && is_log_name(&m.title))
        .map(|m| m.id.as_str())
        .collect();
    let queue: Vec<(&str, &str)> = logs.iter().map(|id| (DETECT_AGAIN, *id)).collect();
    let jobs = p.enqueue_jobs(who, &queue)?;
    Ok((logs.len(), jobs))
}
