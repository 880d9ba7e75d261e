//! What one audit entry says. Serialised as JSON and sealed to the oversight
//! key; only its sequence number and chain link are in the clear.

/// How an audited act ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Done as asked.
    Allowed,
    /// The gate refused access.
    Denied,
    /// Refused by another rule (residency, role, bad input).
    Refused,
    /// Failed part way; nothing was acknowledged.
    Failed,
}

/// One accounted act (rule 5).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// Unix milliseconds.
    pub time_ms: i64,
    /// Who acted (`operator` for platform administration).
    pub principal: String,
    /// What was done, e.g. `item.get`.
    pub action: String,
    /// What it was done to (item ids, collection and principal names).
    pub targets: Vec<String>,
    /// The stated justification, where one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub justification: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it was refused or failed, for the overseer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// What was acted on, where one item was: its collection and marking when the act
    /// happened, so that the overseer's report counts accesses by collection and
    /// classification from the sealed entry alone, even after the item is destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub about: Option<About>,
}

/// The collection and marking of the item an entry is about, as they were at the time.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct About {
    /// `agency/name` of the item's collection.
    pub collection: String,
    /// The item's marking banner.
    pub marking: String,
}
