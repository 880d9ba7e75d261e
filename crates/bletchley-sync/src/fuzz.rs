//! Entry points for the fuzzer (`bletchley-fuzz`): every decoder here that reads bytes from a
//! peer or from removable media, called as the real code calls it. Each returns a short
//! signature of the outcome (which error, or which kind of success) that the fuzzer uses to tell
//! inputs that behave differently apart; a panic is the finding.

use std::io::Cursor;

use crate::bundle::{self, Body, BundleHeader, BundleKind};
use crate::identity::{SelfRecord, SignedIdentity, SiteIdentity, SiteRole};
use crate::oplog::{Op, OpKind, genesis};
use crate::wire;

/// The outcome's signature: the error's text up to its first digit or quote, or `ok`.
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

/// A bundle file's framing: magic, lengths, header, signature split.
pub fn bundle_frame(data: &[u8]) -> String {
    outcome(bundle::parse(data).map(|_| ()))
}

/// An opened bundle body: the operations and contents.
pub fn bundle_body(data: &[u8]) -> String {
    outcome(bundle::decode_body(data).map(|b| {
        for o in &b.ops {
            let _ = o.kind.added();
        }
    }))
}

/// A request head and body as the hub reads it off a connection.
pub fn sync_request(data: &[u8]) -> String {
    outcome(wire::read_request(&mut Cursor::new(data)).map(|_| ()))
}

/// A response as a field site reads it off a connection.
pub fn sync_response(data: &[u8]) -> String {
    outcome(wire::read_response(&mut Cursor::new(data)).map(|_| ()))
}

/// A site identity file, as `site enrol` reads it.
pub fn site_identity(data: &[u8]) -> String {
    outcome(SignedIdentity::parse(&String::from_utf8_lossy(data)).map(|_| ()))
}

fn header() -> BundleHeader {
    BundleHeader {
        version: bundle::VERSION,
        kind: BundleKind::Ops,
        from: "hub".into(),
        to: "alpha".into(),
        first_seq: 1,
        last_seq: 1,
        prev: genesis(),
        head: genesis(),
        created_ms: 1,
        ephemeral: "00".repeat(32),
        ack: None,
        enrol_proof: None,
    }
}

/// Valid inputs to start from, one list per entry point above.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    match target {
        "bundle_frame" => bundle::header_bytes(&header())
            .map(|h| vec![bundle::frame(&h, b"sealed body bytes", |_| [7u8; 64])])
            .unwrap_or_default(),
        "bundle_body" => {
            let ops = [
                OpKind::ItemAdded {
                    id: "i1".into(),
                    meta: None,
                },
                OpKind::ItemRemoved { id: "i1".into() },
                OpKind::ItemRemarked {
                    id: "i1".into(),
                    meta: None,
                },
                OpKind::EraseOrdered,
            ];
            let mut prev = genesis();
            let mut log = Vec::new();
            for (i, k) in ops.into_iter().enumerate() {
                if let Ok(op) = Op::new(i as u64 + 1, &prev, k) {
                    prev = op.hash.clone();
                    log.push(op);
                }
            }
            let body = Body {
                ops: log,
                contents: vec![("i1".into(), b"content".to_vec())],
            };
            bundle::encode_body(&body).into_iter().collect()
        }
        "sync_request" => {
            let mut out = Vec::new();
            let _ = wire::write_request(&mut out, "POST", "/sync/v1/pull", b"{\"applied_seq\":0}");
            vec![out]
        }
        "sync_response" => {
            let mut out = Vec::new();
            let _ = wire::write_response(&mut out, 200, &[("x-total", "5".into())], b"hello");
            vec![out]
        }
        "site_identity" => SelfRecord::generate(SiteIdentity {
            name: "alpha".into(),
            role: SiteRole::Field,
            jurisdiction: "GB/cyprus".into(),
            ceiling: "SECRET".into(),
            nationalities: vec!["GBR".into()],
            signing_key: String::new(),
            sealing_key: String::new(),
            certificate: String::new(),
        })
        .and_then(|s| s.signed_identity())
        .ok()
        .and_then(|s| serde_json::to_vec(&s).ok())
        .into_iter()
        .collect(),
        _ => Vec::new(),
    }
}
