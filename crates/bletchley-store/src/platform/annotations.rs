//! Annotations: an analyst's notes on an item.
//!
//! An annotation is an item derived from the item it notes (rule 4): same collection, same
//! marking, sealed and audited like any item, searchable, and shredded with its source. It is
//! never edited in place; a correction is a further note. So the annotations of an item form a
//! grow-only set keyed by item id, and replicas on two sites merge by union without loss
//! whatever order they meet in: the merge rule replication relies on.

use super::{Actor, Platform};
use crate::error::{Error, Result};
use crate::item::{ItemMeta, NewItem};

/// How an annotation is derived from the item it notes.
pub const ANNOTATION: &str = "annotation";

/// The longest note, in bytes.
pub const MAX_ANNOTATION: usize = 64 * 1024;

/// One note, as a principal who may read it sees it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Annotation {
    /// The note's own item id.
    pub id: String,
    /// Who wrote it, and at which site when it came from another.
    pub author: String,
    /// When it was written (Unix ms).
    pub created_ms: i64,
    /// Its marking (the noted item's).
    pub marking: String,
    /// The text.
    pub text: String,
}

impl Platform {
    /// `principal` notes `text` on `item`, which it must be able to read (with a
    /// justification for a bulk collection, as for reading it: the read is checked and audited
    /// first, with the same answer for an item that does not exist). `author` names the writer
    /// as others will see it (`officer@cyprus` at a field site). Returns the note's id.
    pub fn annotate(
        &mut self,
        principal: &str,
        item: &str,
        author: &str,
        text: &str,
        justification: Option<&str>,
    ) -> Result<String> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Invalid("an empty annotation".into()));
        }
        if text.len() > MAX_ANNOTATION {
            return Err(Error::Invalid(format!(
                "an annotation of {} bytes (at most {MAX_ANNOTATION})",
                text.len()
            )));
        }
        let note = NewItem {
            title: format!("note by {author}"),
            content: text.as_bytes().to_vec(),
        };
        self.get(principal, item, justification)?;
        let actor = Actor::Principal(principal.to_owned());
        let mut ids = self.derive(&actor, item, ANNOTATION, vec![note])?;
        ids.pop()
            .ok_or_else(|| Error::Layout("an annotation was not stored".into()))
    }

    /// The notes on `item` that `principal` may read, oldest first (ties by author, then id, so
    /// every site lists a merged set in the same order). Reading the item is checked and
    /// audited first; so is every note read.
    pub fn annotations(
        &mut self,
        principal: &str,
        item: &str,
        justification: Option<&str>,
    ) -> Result<Vec<Annotation>> {
        self.get(principal, item, justification)?;
        let mut out = Vec::new();
        for id in self.derived_by(item, ANNOTATION)? {
            let (meta, content) = match self.get(principal, &id, justification) {
                Ok(r) => r,
                Err(Error::NotFoundOrNotPermitted { .. }) => continue,
                Err(e) => return Err(e),
            };
            out.push(Annotation {
                author: author_of(&meta),
                id: meta.id,
                created_ms: meta.created_ms,
                marking: meta.marking,
                text: String::from_utf8_lossy(&content).into_owned(),
            });
        }
        out.sort_by(|a, b| (a.created_ms, &a.author, &a.id).cmp(&(b.created_ms, &b.author, &b.id)));
        Ok(out)
    }
}

/// The writer named in a note's title, else who stored it.
fn author_of(meta: &ItemMeta) -> String {
    meta.title
        .strip_prefix("note by ")
        .map(str::to_owned)
        .unwrap_or_else(|| meta.ingested_by.clone())
}
