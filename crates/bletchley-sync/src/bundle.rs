//! The bundle file: what travels on removable media.
//!
//! ```text
//! MAGIC (18 bytes) | u32 header length | header (JSON) | u64 body length | sealed body | signature (64)
//! ```
//!
//! The header is readable by whoever carries the media (which sites, which operations, when) and
//! nothing more; the body (operations and item contents) is sealed to the addressee's X25519 key
//! with the header as associated data; the Ed25519 signature of the sender covers every byte
//! before it. Reading checks the framing against the file's real length before trusting any
//! length field.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::oplog::Op;

/// The bundle format this node writes and reads. Version 2: operation logs hold references, and
/// an addition's metadata travels beside its hash.
pub const VERSION: u32 = 2;

const MAGIC: &[u8; 18] = b"BLETCHLEY-BUNDLE\x00\x01";
/// A header larger than this is not a header.
const MAX_HEADER: usize = 64 * 1024;

/// What a bundle is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleKind {
    /// Operations (and contents) from a sender's log.
    Ops,
    /// A receiver's acknowledgement of what it has applied.
    Ack,
}

/// The readable part of a bundle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleHeader {
    /// Format version.
    pub version: u32,
    /// Operations or acknowledgement.
    pub kind: BundleKind,
    /// The sending site.
    pub from: String,
    /// The addressee.
    pub to: String,
    /// First operation carried (for an acknowledgement: the last applied).
    pub first_seq: u64,
    /// Last operation carried (for an acknowledgement: the last applied).
    pub last_seq: u64,
    /// Hash before the first operation.
    pub prev: String,
    /// Hash of the last operation.
    pub head: String,
    /// When it was written (Unix ms).
    pub created_ms: i64,
    /// The sealing session's ephemeral X25519 key (hex).
    pub ephemeral: String,
    /// With operations from a field site: its acknowledgement of the addressee's log (last
    /// operation applied, its hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ack: Option<(u64, String)>,
    /// Until first contact is confirmed: the sender's proof that it holds the one-time
    /// enrolment code (see `code.rs`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrol_proof: Option<String>,
}

/// The sealed part, opened.
#[derive(Debug, Default)]
pub struct Body {
    /// The operations.
    pub ops: Vec<Op>,
    /// Contents of added items, by id.
    pub contents: Vec<(String, Vec<u8>)>,
}

/// A bundle split into its parts, signature not yet checked.
pub struct Parsed<'a> {
    pub header: BundleHeader,
    pub header_bytes: &'a [u8],
    pub sealed: &'a [u8],
    pub signed: &'a [u8],
    pub signature: &'a [u8],
}

/// Frames a bundle: the caller seals the body with the header as associated data and signs.
pub fn frame(header_bytes: &[u8], sealed: &[u8], sign: impl Fn(&[u8]) -> [u8; 64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(MAGIC.len() + 12 + header_bytes.len() + sealed.len() + 64);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(header_bytes);
    out.extend_from_slice(&(sealed.len() as u64).to_be_bytes());
    out.extend_from_slice(sealed);
    let sig = sign(&out);
    out.extend_from_slice(&sig);
    out
}

/// The header's bytes as written.
pub fn header_bytes(h: &BundleHeader) -> Result<Vec<u8>> {
    serde_json::to_vec(h).map_err(|e| Error::Invalid(e.to_string()))
}

fn take<'a>(buf: &'a [u8], at: &mut usize, n: usize, what: &str) -> Result<&'a [u8]> {
    let end = at
        .checked_add(n)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| Error::Malformed(format!("the file ends inside the {what}")))?;
    let s = &buf[*at..end];
    *at = end;
    Ok(s)
}

/// Splits a bundle file into its parts.
pub fn parse(buf: &[u8]) -> Result<Parsed<'_>> {
    let mut at = 0;
    if buf.len() < MAGIC.len() || &buf[..MAGIC.len()] != MAGIC {
        return Err(Error::Malformed(
            "not a Bletchley bundle (bad magic)".into(),
        ));
    }
    at += MAGIC.len();
    let hl = u32::from_be_bytes(
        take(buf, &mut at, 4, "header length")?
            .try_into()
            .map_err(|_| Error::Malformed("header length".into()))?,
    ) as usize;
    if hl > MAX_HEADER {
        return Err(Error::Malformed(format!("a header of {hl} bytes")));
    }
    let header_bytes = take(buf, &mut at, hl, "header")?;
    let header: BundleHeader = serde_json::from_slice(header_bytes)
        .map_err(|e| Error::Malformed(format!("header: {e}")))?;
    if header.version != VERSION {
        return Err(Error::Malformed(format!(
            "bundle version {} (this node reads version {VERSION}: upgrade the older side)",
            header.version
        )));
    }
    let bl = u64::from_be_bytes(
        take(buf, &mut at, 8, "body length")?
            .try_into()
            .map_err(|_| Error::Malformed("body length".into()))?,
    );
    let bl = usize::try_from(bl).map_err(|_| Error::Malformed("body length".into()))?;
    let sealed = take(buf, &mut at, bl, "sealed body")?;
    let signed_len = at;
    let signature = take(buf, &mut at, 64, "signature")?;
    if at != buf.len() {
        return Err(Error::Malformed(format!(
            "{} bytes after the signature",
            buf.len() - at
        )));
    }
    Ok(Parsed {
        header,
        header_bytes,
        sealed,
        signed: &buf[..signed_len],
        signature,
    })
}

/// Serialises the body: operations as JSON, then each content as id and bytes.
pub fn encode_body(body: &Body) -> Result<Vec<u8>> {
    let ops = serde_json::to_vec(&body.ops).map_err(|e| Error::Invalid(e.to_string()))?;
    let total: usize = body
        .contents
        .iter()
        .map(|(i, c)| i.len() + c.len() + 10)
        .sum();
    let mut out = Vec::with_capacity(ops.len() + total + 8);
    out.extend_from_slice(&(ops.len() as u32).to_be_bytes());
    out.extend_from_slice(&ops);
    out.extend_from_slice(&(body.contents.len() as u32).to_be_bytes());
    for (id, content) in &body.contents {
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(&(content.len() as u64).to_be_bytes());
        out.extend_from_slice(content);
    }
    Ok(out)
}

/// Parses an opened body.
pub fn decode_body(buf: &[u8]) -> Result<Body> {
    let mut at = 0;
    let n = u32::from_be_bytes(take4(buf, &mut at)?) as usize;
    let ops: Vec<Op> = serde_json::from_slice(take(buf, &mut at, n, "operations")?)
        .map_err(|e| Error::Malformed(format!("operations: {e}")))?;
    let count = u32::from_be_bytes(take4(buf, &mut at)?) as usize;
    let mut contents = Vec::with_capacity(count.min(1 << 16));
    for _ in 0..count {
        let il = u16::from_be_bytes(
            take(buf, &mut at, 2, "content id length")?
                .try_into()
                .map_err(|_| Error::Malformed("id length".into()))?,
        ) as usize;
        let id = std::str::from_utf8(take(buf, &mut at, il, "content id")?)
            .map_err(|_| Error::Malformed("a content id is not UTF-8".into()))?
            .to_owned();
        let cl = u64::from_be_bytes(
            take(buf, &mut at, 8, "content length")?
                .try_into()
                .map_err(|_| Error::Malformed("content length".into()))?,
        );
        let cl = usize::try_from(cl).map_err(|_| Error::Malformed("content length".into()))?;
        contents.push((id, take(buf, &mut at, cl, "content")?.to_vec()));
    }
    if at != buf.len() {
        return Err(Error::Malformed("bytes after the last content".into()));
    }
    Ok(Body { ops, contents })
}

fn take4(buf: &[u8], at: &mut usize) -> Result<[u8; 4]> {
    take(buf, at, 4, "count")?
        .try_into()
        .map_err(|_| Error::Malformed("count".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oplog::{Op, OpKind, genesis};
    use proptest::prelude::*;

    fn header() -> BundleHeader {
        BundleHeader {
            version: VERSION,
            kind: BundleKind::Ops,
            from: "hub".into(),
            to: "field".into(),
            first_seq: 1,
            last_seq: 1,
            prev: genesis(),
            head: "h".into(),
            created_ms: 0,
            ephemeral: "00".into(),
            ack: None,
            enrol_proof: None,
        }
    }

    #[test]
    fn body_round_trips() {
        let body = Body {
            ops: vec![Op::new(1, &genesis(), OpKind::EraseOrdered).expect("op")],
            contents: vec![("a".into(), b"hello".to_vec()), ("b".into(), Vec::new())],
        };
        let back = decode_body(&encode_body(&body).expect("encode")).expect("decode");
        assert_eq!(back.ops, body.ops);
        assert_eq!(back.contents, body.contents);
    }

    proptest! {
        #[test]
        fn every_truncation_is_refused(cut in 0usize..200) {
            let hb = header_bytes(&header()).expect("header");
            let file = frame(&hb, b"sealed body bytes", |_| [7u8; 64]);
            let cut = cut % file.len();
            prop_assert!(parse(&file[..cut]).is_err());
            prop_assert!(parse(&file).is_ok());
        }

        #[test]
        fn garbage_bodies_are_errors_not_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_body(&bytes);
            let _ = parse(&bytes);
        }
    }
}
