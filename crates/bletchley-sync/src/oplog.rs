//! The operation log a sender keeps per receiving site: each operation names the one before it
//! by hash, so a receiver can tell a gap, a fork or an altered history from a continuation.
//!
//! The log keeps references, never what an item says: an addition names its item's id, and the
//! item's metadata travels beside it only when a batch is sent, read from the live item then.
//! Once an item is shredded, the log holds nothing of it but a random id, and a batch sent later
//! carries the addition without metadata (a no-op at the receiver, followed by the removal).

use bletchley_store::ItemMeta;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// What an operation does at the receiving site.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpKind {
    /// The site may now hold this item; its content travels beside the log.
    ItemAdded {
        /// The item.
        id: String,
        /// The item's metadata as the sender holds it when the batch is sent; absent in the
        /// stored log, and in a batch once the item is gone (the receiver then stores nothing).
        /// Not covered by the chain's hash: the batch's signature or the link authenticates it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meta: Option<Box<ItemMeta>>,
    },
    /// The site may no longer hold this item: crypto-shred it (and what was derived from it).
    ItemRemoved {
        /// The item.
        id: String,
    },
    /// The item the site holds was re-marked: re-mark its copy (and what was derived from
    /// it) as the metadata says. A site that may no longer hold it gets a removal instead.
    ItemRemarked {
        /// The item.
        id: String,
        /// The item's metadata as the sender holds it when the batch is sent (its new
        /// marking); absent in the stored log, and in a batch once the item is gone. Not
        /// covered by the chain's hash: the batch's signature or the link authenticates it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        meta: Option<Box<ItemMeta>>,
    },
    /// The hub changed the standing of one of its principals (disabled, suspended,
    /// enabled): a principal of the same name and agency at the site takes it.
    PrincipalStanding {
        /// The principal.
        name: String,
        /// Its agency.
        agency: String,
        /// The new standing.
        standing: bletchley_policy::Standing,
    },
    /// The hub changed one of its principals (its standing, or what it holds): a principal
    /// of the same name and agency at the site takes it as far as it narrows what it holds
    /// there.
    PrincipalAccess {
        /// The principal.
        name: String,
        /// Its agency, as the site knows it.
        agency: String,
        /// Its standing at the hub now.
        standing: bletchley_policy::Standing,
        /// What it holds at the hub now.
        access: bletchley_store::platform::AccessTold,
    },
    /// The hub orders the site to destroy its keys.
    EraseOrdered,
}

impl OpKind {
    /// The operation as the log keeps and hashes it: an addition or re-marking without its
    /// metadata.
    pub fn reference(&self) -> OpKind {
        match self {
            OpKind::ItemAdded { id, .. } => OpKind::ItemAdded {
                id: id.clone(),
                meta: None,
            },
            OpKind::ItemRemarked { id, .. } => OpKind::ItemRemarked {
                id: id.clone(),
                meta: None,
            },
            other => other.clone(),
        }
    }

    /// The item an addition, removal or re-marking is about.
    pub fn item(&self) -> Option<&str> {
        match self {
            OpKind::ItemAdded { id, .. }
            | OpKind::ItemRemoved { id }
            | OpKind::ItemRemarked { id, .. } => Some(id),
            OpKind::PrincipalStanding { .. }
            | OpKind::PrincipalAccess { .. }
            | OpKind::EraseOrdered => None,
        }
    }

    /// A re-marking's metadata, checked to be about the item it names.
    pub fn remarked(&self) -> Result<Option<&ItemMeta>> {
        match self {
            OpKind::ItemRemarked {
                id,
                meta: Some(meta),
            } => {
                if meta.id != *id {
                    return Err(Error::Malformed(format!(
                        "the re-marking of {id} carries the metadata of {}",
                        meta.id
                    )));
                }
                Ok(Some(meta))
            }
            _ => Ok(None),
        }
    }

    /// An addition's metadata, checked to be about the item the addition names.
    pub fn added(&self) -> Result<Option<&ItemMeta>> {
        match self {
            OpKind::ItemAdded {
                id,
                meta: Some(meta),
            } => {
                if meta.id != *id {
                    return Err(Error::Malformed(format!(
                        "the addition of {id} carries the metadata of {}",
                        meta.id
                    )));
                }
                Ok(Some(meta))
            }
            _ => Ok(None),
        }
    }
}

/// One entry of the log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Op {
    /// Position in the log, from 1.
    pub seq: u64,
    /// Hash of the previous entry (hex; zeros before the first).
    pub prev: String,
    /// Hash of this entry (hex), over `prev` and the rest.
    pub hash: String,
    /// What it does.
    #[serde(flatten)]
    pub kind: OpKind,
}

/// The hash before the first operation.
pub fn genesis() -> String {
    hex::encode([0u8; 32])
}

/// The hash of an operation given its predecessor's, over its reference form.
pub fn chain_hash(prev: &str, seq: u64, kind: &OpKind) -> Result<String> {
    let mut h = Sha256::new();
    h.update(b"bletchley oplog v2\n");
    h.update(prev.as_bytes());
    h.update(seq.to_be_bytes());
    h.update(serde_json::to_vec(&kind.reference()).map_err(|e| Error::Invalid(e.to_string()))?);
    Ok(hex::encode(h.finalize()))
}

impl Op {
    /// A new entry after `prev`, in its reference form.
    pub fn new(seq: u64, prev: &str, kind: OpKind) -> Result<Op> {
        let kind = kind.reference();
        Ok(Op {
            seq,
            prev: prev.to_owned(),
            hash: chain_hash(prev, seq, &kind)?,
            kind,
        })
    }
}

/// Checks that `ops` are consecutive from `first_seq`, start after `prev`, each hash is right,
/// and the last is `head`.
pub fn verify_chain(ops: &[Op], first_seq: u64, prev: &str, head: &str) -> Result<()> {
    let mut expect_prev = prev.to_owned();
    for (i, op) in ops.iter().enumerate() {
        if op.seq != first_seq + i as u64 {
            return Err(Error::Tampered(format!(
                "operation {} is out of order (expected {})",
                op.seq,
                first_seq + i as u64
            )));
        }
        if op.prev != expect_prev || chain_hash(&op.prev, op.seq, &op.kind)? != op.hash {
            return Err(Error::Tampered(format!(
                "the operation log's hash chain is broken at operation {}",
                op.seq
            )));
        }
        expect_prev = op.hash.clone();
    }
    if expect_prev != head {
        return Err(Error::Tampered(
            "the operation log does not end at the head its header names".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn log(n: u64) -> Vec<Op> {
        let mut prev = genesis();
        (1..=n)
            .map(|seq| {
                let op = Op::new(
                    seq,
                    &prev,
                    OpKind::ItemRemoved {
                        id: format!("i{seq}"),
                    },
                )
                .expect("op");
                prev = op.hash.clone();
                op
            })
            .collect()
    }

    #[test]
    fn an_intact_log_verifies() {
        let ops = log(5);
        let head = ops[4].hash.clone();
        verify_chain(&ops, 1, &genesis(), &head).expect("intact");
        verify_chain(&ops[2..], 3, &ops[1].hash, &head).expect("a tail");
    }

    fn meta(id: &str) -> Box<ItemMeta> {
        Box::new(
            serde_json::from_value(serde_json::json!({
                "id": id, "title": "a title", "collection": "mi5/ct", "marking": "SECRET",
                "size": 3, "created_ms": 1, "ingested_by": "carol"
            }))
            .expect("meta"),
        )
    }

    #[test]
    fn the_log_keeps_an_addition_as_a_reference_and_its_metadata_is_checked_to_match() {
        let op = Op::new(
            1,
            &genesis(),
            OpKind::ItemAdded {
                id: "i1".into(),
                meta: Some(meta("i1")),
            },
        )
        .expect("op");
        assert!(
            !serde_json::to_string(&op)
                .expect("json")
                .contains("a title")
        );
        // Filled in when sent, the chain still verifies; naming another item is refused.
        let mut sent = op.clone();
        sent.kind = OpKind::ItemAdded {
            id: "i1".into(),
            meta: Some(meta("i1")),
        };
        verify_chain(std::slice::from_ref(&sent), 1, &genesis(), &op.hash).expect("verifies");
        assert!(sent.kind.added().expect("matches").is_some());
        sent.kind = OpKind::ItemAdded {
            id: "i1".into(),
            meta: Some(meta("i2")),
        };
        assert!(sent.kind.added().is_err());
    }

    proptest! {
        #[test]
        fn any_change_breaks_the_chain(n in 2u64..8, at in 0usize..8, what in 0u8..3) {
            let mut ops = log(n);
            let head = ops[ops.len() - 1].hash.clone();
            let at = at % ops.len();
            match what {
                0 => ops[at].kind = OpKind::ItemRemoved { id: "other".into() },
                1 => { ops.remove(at); }
                _ => ops.swap(at, (at + 1) % n as usize),
            }
            prop_assert!(verify_chain(&ops, 1, &genesis(), &head).is_err());
        }
    }
}
