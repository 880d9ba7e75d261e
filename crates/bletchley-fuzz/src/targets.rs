//! Every decoder of outside bytes, by name, with the valid inputs its crate builds.

use bletchley_ai::fuzz as ai;
use bletchley_audit::fuzz as audit;
use bletchley_detect::fuzz as detect;
use bletchley_index::fuzz as index;
use bletchley_policy::Marking;
use bletchley_sync::fuzz as sync;

/// One decoder: its name, how to run an input through it (returning a signature of the
/// outcome), and where its valid inputs come from.
pub struct Target {
    /// Name, also the folder of its kept inputs.
    pub name: &'static str,
    /// Decodes one input; a panic is a finding.
    pub run: fn(&[u8]) -> String,
    /// Valid inputs to mutate from.
    pub seeds: fn() -> Vec<Vec<u8>>,
}

/// A security banner as anyone types it: parsed, and when accepted, rendered and parsed again
/// to the same marking.
fn banner(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    match Marking::parse(&text) {
        Ok(m) => {
            let again = Marking::parse(&m.render());
            assert_eq!(
                again.as_ref().ok(),
                Some(&m),
                "{text:?} does not round-trip"
            );
            "ok".into()
        }
        Err(e) => e.to_string().chars().take(40).collect(),
    }
}

fn banner_seeds() -> Vec<Vec<u8>> {
    [
        "OFFICIAL",
        "OFFICIAL-SENSITIVE//PERSONAL DATA",
        "SECRET//UK EYES ONLY",
        "TOP SECRET//STRAP1/STRAP2//REL TO GBR, USA, FVEY//LOCSEN",
        "SECRET//REL TO GBR, AUS",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect()
}

macro_rules! target {
    ($name:literal, $krate:ident :: $f:ident) => {
        Target {
            name: $name,
            run: $krate::$f,
            seeds: || $krate::seeds($name),
        }
    };
}

/// Every target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "banner",
        run: banner,
        seeds: banner_seeds,
    },
    target!("bundle_frame", sync::bundle_frame),
    target!("bundle_body", sync::bundle_body),
    target!("sync_request", sync::sync_request),
    target!("sync_response", sync::sync_response),
    target!("site_identity", sync::site_identity),
    target!("checkpoint_note", audit::checkpoint_note),
    target!("verifier_key", audit::verifier_key),
    target!("audit_log", audit::audit_log),
    target!("document", index::document),
    target!("archive_nesting", index::archive_nesting),
    target!("search_query", index::search_query),
    target!("audio", ai::audio),
    target!("ct2_model", ai::ct2_model),
    target!("sentencepiece", ai::sentencepiece),
    target!("vector_index", index::vector_index),
    target!("item_vectors", index::item_vectors),
    target!("evtx_file", detect::evtx_file),
    target!("syslog_line", detect::syslog_line),
    target!("jsonl_record", detect::jsonl_record),
    target!("sigma_rule", detect::sigma_rule),
];
