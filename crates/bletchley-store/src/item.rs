//! Item metadata as sealed under the item's data key.

use bletchley_policy::Marking;

/// What the catalog knows of an item, visible only after the gate.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ItemMeta {
    /// Public identifier.
    pub id: String,
    /// Title (the file name unless given).
    pub title: String,
    /// The protective marking, as a banner.
    pub marking: String,
    /// `agency/name` of its collection.
    pub collection: String,
    /// Legal authority reference (warrant, authorisation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authority: Option<String>,
    /// Plaintext size in bytes.
    pub size: u64,
    /// Unix milliseconds of ingest.
    pub created_ms: i64,
    /// Unix milliseconds after which retention shreds it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_until_ms: Option<i64>,
    /// Who ingested it (or, for a derived item, who or what derived it).
    pub ingested_by: String,
    /// The item this one was derived from, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_from: Option<String>,
    /// How it was derived: `attachment`, `member`, `transcript`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derivation: Option<String>,
    /// Steps from the ingested item it descends from (0 for that item).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: u32,
    /// Precedence in replication: a FLASH item overtakes ROUTINE transfers.
    #[serde(default, skip_serializing_if = "Priority::is_routine")]
    pub priority: Priority,
    /// How many times the item was re-marked: the catalog's guarded record names the
    /// current count of every re-marked item, so that an earlier sealed copy (with its
    /// earlier marking) put back by the host is refused.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub remarked: u32,
}

/// Message precedence, as signals traffic knows it: the order in which replication moves items
/// when a link is narrow. Sorted most urgent first.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum Priority {
    /// First, pre-empting everything else.
    Flash,
    /// Before priority and routine traffic.
    Immediate,
    /// Before routine traffic.
    Priority,
    /// Everything else.
    #[default]
    Routine,
}

impl Priority {
    fn is_routine(&self) -> bool {
        *self == Priority::Routine
    }

    /// The name as written (`FLASH`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Flash => "FLASH",
            Priority::Immediate => "IMMEDIATE",
            Priority::Priority => "PRIORITY",
            Priority::Routine => "ROUTINE",
        }
    }
}

impl std::str::FromStr for Priority {
    type Err = crate::Error;
    fn from_str(s: &str) -> crate::Result<Priority> {
        match s.to_ascii_uppercase().as_str() {
            "FLASH" | "Z" => Ok(Priority::Flash),
            "IMMEDIATE" | "O" => Ok(Priority::Immediate),
            "PRIORITY" | "P" => Ok(Priority::Priority),
            "ROUTINE" | "R" => Ok(Priority::Routine),
            _ => Err(crate::Error::Invalid(format!(
                "unknown priority {s:?}: use FLASH, IMMEDIATE, PRIORITY or ROUTINE"
            ))),
        }
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Where a derived item comes from, as its ingest records it.
#[derive(Clone, Debug)]
pub(crate) struct Lineage {
    pub(crate) source: String,
    pub(crate) derivation: String,
    pub(crate) tag: Vec<u8>,
    pub(crate) generation: u32,
}

impl ItemMeta {
    /// The parsed marking.
    pub fn parsed_marking(&self) -> Result<Marking, bletchley_policy::MarkingError> {
        Marking::parse(&self.marking)
    }
}

/// One file to ingest.
#[derive(Clone, Debug)]
pub struct NewItem {
    /// Title to record.
    pub title: String,
    /// The content.
    pub content: Vec<u8>,
}

/// Settings shared by every item of one ingest.
#[derive(Clone, Debug, PartialEq)]
pub struct IngestOptions {
    /// `agency/name`.
    pub collection: String,
    /// The marking every item gets.
    pub marking: Marking,
    /// Legal authority reference.
    pub authority: Option<String>,
    /// Retention end, Unix milliseconds.
    pub retain_until_ms: Option<i64>,
    /// Justification, recorded in the audit entries.
    pub justification: Option<String>,
    /// Precedence in replication.
    pub priority: Priority,
}

/// What a listing returns.
#[derive(Clone, Debug, Default)]
pub struct Listing {
    /// Visible items.
    pub items: Vec<ItemMeta>,
    /// Bulk collections left out because no justification was given.
    pub skipped_bulk: Vec<String>,
}

/// An item handed to a derived store (the search index) by the indexer. Not
/// for principals: whatever is built from it must apply the gate itself.
#[derive(Clone, Debug)]
pub struct IndexFeedItem {
    /// The item's metadata.
    pub meta: ItemMeta,
    /// Its parsed marking.
    pub marking: Marking,
    /// Its collection's catalog number.
    pub collection: bletchley_policy::CollectionId,
    /// Its content.
    pub content: Vec<u8>,
}
