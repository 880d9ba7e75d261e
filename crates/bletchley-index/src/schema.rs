//! The index schema: searchable text, and the access attributes the gate
//! filters on inside every query.

use tantivy::schema::{FAST, FacetOptions, Field, INDEXED, STORED, STRING, Schema, TEXT};

/// Field handles.
#[derive(Clone, Copy, Debug)]
pub struct Fields {
    /// Item id (exact).
    pub id: Field,
    /// Title text.
    pub title: Field,
    /// Body text.
    pub body: Field,
    /// Collection catalog number.
    pub collection: Field,
    /// Classification level: 0 OFFICIAL, 1 SECRET, 2 TOP SECRET.
    pub level: Field,
    /// Codewords (all must be held).
    pub comp: Field,
    /// Nations the item is releasable to, expanded.
    pub rel: Field,
    /// Ingest time, Unix milliseconds.
    pub created: Field,
    /// Detected language (ISO 639-3).
    pub lang: Field,
    /// Content type, e.g. `text`.
    pub kind: Field,
    /// Facet paths: /type, /lang, /collection, /classification, /month.
    pub facets: Field,
    /// Selectors mentioned, as `kind:value` (normalised).
    pub entity: Field,
    /// Why the text is incomplete or missing, if it is.
    pub flag: Field,
    /// The banner, for display.
    pub marking: Field,
    /// `agency/name`, for display.
    pub collection_name: Field,
    /// Communications the item records, [`crate::comms::CommEvent::encode`]d.
    pub event: Field,
    /// The item this one was derived from (exact), if any.
    pub parent: Field,
    /// How it was derived: `attachment`, `member`, …
    pub derivation: Field,
}

/// Builds the schema.
pub fn build() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let f = Fields {
        id: b.add_text_field("id", STRING | STORED),
        title: b.add_text_field("title", TEXT | STORED),
        body: b.add_text_field("body", TEXT | STORED),
        collection: b.add_u64_field("collection", INDEXED | FAST),
        level: b.add_u64_field("level", INDEXED | FAST),
        comp: b.add_text_field("comp", STRING),
        rel: b.add_text_field("rel", STRING),
        created: b.add_i64_field("created", INDEXED | FAST | STORED),
        lang: b.add_text_field("lang", STRING | STORED),
        kind: b.add_text_field("type", STRING | STORED),
        facets: b.add_facet_field("facets", FacetOptions::default()),
        entity: b.add_text_field("entity", STRING | STORED),
        flag: b.add_text_field("flag", STORED),
        marking: b.add_text_field("marking", STORED),
        collection_name: b.add_text_field("collection_name", STORED),
        event: b.add_text_field("event", STORED),
        parent: b.add_text_field("parent", STRING | STORED),
        derivation: b.add_text_field("derivation", STORED),
    };
    (b.build(), f)
}
