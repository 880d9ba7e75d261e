//! The catalog: what exists, where its bytes rest, and its wrapped keys.
//!
//! Behind the [`Catalog`] trait so PostgreSQL can follow SQLite. Rows hold
//! only opaque identifiers, keyed tags (blind indexes) and sealed blobs; the
//! names, titles, markings and metadata are sealed before they reach the
//! database, so its files, journal and WAL never see them in the clear.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::error::{Result, io};

mod guard;
pub use guard::{CatalogState, Guard};

/// A sealed row looked up by its blind index.
#[derive(Clone, Debug)]
pub struct SealedRow {
    /// Catalog number.
    pub id: i64,
    /// Keyed tag of the name.
    pub name_tag: Vec<u8>,
    /// Owning agency's catalog number, where it has one.
    pub agency_id: Option<i64>,
    /// The sealed record.
    pub sealed: Vec<u8>,
}

/// A stored content object, shared by items with identical content in one
/// agency.
#[derive(Clone, Debug)]
pub struct ContentRow {
    /// Catalog number.
    pub id: i64,
    /// Owning agency.
    pub agency_id: i64,
    /// Keyed de-duplication tag.
    pub tag: Vec<u8>,
    /// Location catalog number.
    pub location_id: i64,
    /// The content's name: what its data key's wrap and its sealed stream
    /// are bound to, and, when it is not packed, its object's name in the
    /// location.
    pub object: String,
    /// The pack that holds it, when it was written with other small contents
    /// of its ingest batch as one object.
    pub packed: Option<PackSlice>,
    /// Content data key, wrapped.
    pub wrapped_key: Vec<u8>,
    /// KEK version that wrapped it.
    pub kek_version: u32,
    /// Sealed size in bytes.
    pub size: i64,
}

/// Where a packed content lies: an ingest batch writes its small contents
/// as one object (creating a file per item was most of a local ingest's
/// time), each still sealed under its own data key and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackSlice {
    /// The pack's object name in the location.
    pub pack: String,
    /// Where the content's sealed bytes start in the pack; they run for the
    /// content's `size`.
    pub offset: i64,
}

/// One item.
#[derive(Clone, Debug)]
pub struct ItemRow {
    /// Public identifier (UUID v7).
    pub id: String,
    /// Owning agency.
    pub agency_id: i64,
    /// Collection number.
    pub collection_id: u32,
    /// Its content object.
    pub content_id: i64,
    /// Unix milliseconds of ingest.
    pub created_ms: i64,
    /// Unix milliseconds after which retention shreds it, if set.
    pub retain_until_ms: Option<i64>,
    /// Item data key, wrapped.
    pub wrapped_key: Vec<u8>,
    /// KEK version that wrapped it.
    pub kek_version: u32,
    /// Metadata sealed under the item data key.
    pub sealed_meta: Vec<u8>,
    /// For a derived item, a keyed tag of its source item's id: lets a
    /// shred of the source find what was derived from it, without telling
    /// the host which item that source is.
    pub lineage: Option<Vec<u8>>,
}

/// A configured location as stored.
#[derive(Clone, Debug)]
pub struct LocationRow {
    /// Catalog number.
    pub id: i64,
    /// Operator's name.
    pub name: String,
    /// Jurisdiction, e.g. `GB/london`.
    pub jurisdiction: String,
    /// JSON of the location spec.
    pub spec: String,
    /// No new writes.
    pub retired: bool,
}

/// A wrapped data key and where it lives, for key rotation.
#[derive(Clone, Debug)]
pub struct WrappedKeyRow {
    /// `items` or `contents`.
    pub table: String,
    /// Item id or content object name (also the wrap's associated data).
    pub key: String,
    /// KEK version that wrapped it.
    pub kek_version: u32,
    /// The wrapped key.
    pub wrapped: Vec<u8>,
}

/// A new content object or a reference to an existing one.
#[derive(Clone, Debug)]
pub enum ContentRef {
    /// Reuse this content object.
    Existing(i64),
    /// Insert this one (its `id` is ignored).
    New(ContentRow),
}

/// Storage of catalog rows. Implementations must make [`Catalog::commit_items`]
/// atomic and durable, and must not keep deleted rows readable on disk.
pub trait Catalog {
    /// A platform setting.
    fn meta(&self, key: &str) -> Result<Option<String>>;
    /// Sets a platform setting.
    fn set_meta(&self, key: &str, value: &str) -> Result<()>;
    /// Adds an agency; returns its number.
    fn insert_agency(&self, name: &str) -> Result<i64>;
    /// All agencies as (number, name).
    fn agencies(&self) -> Result<Vec<(i64, String)>>;
    /// Inserts a sealed row into `table` (principals, collections,
    /// operations): `seal` seals the record for the row number it will have,
    /// so that the record is bound to where it sits.
    fn insert_sealed(
        &self,
        table: SealedTable,
        name_tag: &[u8],
        agency_id: Option<i64>,
        seal: &dyn Fn(i64) -> Result<Vec<u8>>,
    ) -> Result<i64>;
    /// Replaces the sealed blob of a row.
    fn update_sealed(&self, table: SealedTable, id: i64, sealed: &[u8]) -> Result<()>;
    /// Replaces the sealed blob of a row and the agency it belongs to (a
    /// principal moved to another agency).
    fn rehome_sealed(
        &self,
        table: SealedTable,
        id: i64,
        agency_id: Option<i64>,
        sealed: &[u8],
    ) -> Result<()>;
    /// Finds a row by blind index.
    fn find_sealed(&self, table: SealedTable, name_tag: &[u8]) -> Result<Option<SealedRow>>;
    /// Every row of a table.
    fn all_sealed(&self, table: SealedTable) -> Result<Vec<SealedRow>>;
    /// Adds a location.
    fn insert_location(&self, name: &str, jurisdiction: &str, spec: &str) -> Result<i64>;
    /// All locations as (number, name, jurisdiction, spec, retired).
    fn locations(&self) -> Result<Vec<LocationRow>>;
    /// Marks a location retired.
    fn retire_location(&self, id: i64) -> Result<()>;
    /// Says how a location is reached now (a restore puts its objects somewhere new).
    fn set_location_spec(&self, id: i64, spec: &str) -> Result<()>;
    /// Sets a residency rule.
    fn set_residency(&self, scope: &str, target: &str, allow: &str) -> Result<()>;
    /// Every residency rule as (scope, target, allow).
    fn residency(&self) -> Result<Vec<(String, String, String)>>;
    /// Content objects of an agency with this tag.
    fn find_content(&self, agency_id: i64, tag: &[u8]) -> Result<Vec<ContentRow>>;
    /// A content object.
    fn content(&self, id: i64) -> Result<Option<ContentRow>>;
    /// Every content object.
    fn contents(&self) -> Result<Vec<ContentRow>>;
    /// Copies the whole catalog, consistently, into a new database file at `to`.
    fn snapshot(&self, to: &Path) -> Result<()>;
    /// Atomically and durably inserts items with their new content objects.
    /// Returns the items generation the commit moved from and to, so that a
    /// derived store fed these very items can tell whether anything else
    /// changed the items in between.
    fn commit_items(&self, items: &[(ItemRow, ContentRef)]) -> Result<GenerationStep>;
    /// A value that changes whenever an item is added or deleted, by any
    /// process, never back to one it had (random, see `bump_items_generation`): a
    /// derived store that saw this value has nothing to reconcile while it stays the same.
    fn items_generation(&self) -> Result<u64>;
    /// An item.
    fn item(&self, id: &str) -> Result<Option<ItemRow>>;
    /// Items in the given collections, oldest first.
    fn items_in(&self, collections: &[u32]) -> Result<Vec<ItemRow>>;
    /// Every item id, for reconciling derived stores such as the search index.
    fn item_ids(&self) -> Result<Vec<String>>;
    /// How many items there are (a health probe's query).
    fn item_count(&self) -> Result<u64>;
    /// Items whose retention has passed.
    fn expired_items(&self, now_ms: i64) -> Result<Vec<ItemRow>>;
    /// Items derived directly from the item whose lineage tag is `lineage`.
    fn derived_from(&self, lineage: &[u8]) -> Result<Vec<ItemRow>>;
    /// Replaces the sealed metadata of existing items (a re-marking) and sets guarded
    /// `meta` keys (what the search index must take again or leave out), in one
    /// transaction that moves the items generation, so that every derived store (the
    /// search index) reconciles. Refuses, changing nothing, if an item is missing.
    fn rewrite_items(&self, items: &[(String, Vec<u8>)], meta: &[(&str, String)]) -> Result<()>;
    /// Deletes an item and, if no other item uses its content, the content
    /// row; returns the content row that became unreferenced. Deleted bytes
    /// must not stay readable in the database files.
    fn delete_item(&self, id: &str) -> Result<Option<ContentRow>>;
    /// Whether a content row still lies in this pack; the pack's object may
    /// be deleted once none does.
    fn pack_in_use(&self, pack: &str) -> Result<bool>;
    /// Every wrapped key of an agency as (table, row key, version, wrapped).
    fn wrapped_keys(&self, agency_id: i64) -> Result<Vec<WrappedKeyRow>>;
    /// Replaces wrapped keys in one transaction (key rotation).
    fn rewrap(&self, rows: &[WrappedKeyRow]) -> Result<()>;
}

/// Tables of sealed rows found by blind index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SealedTable {
    /// Principals.
    Principals,
    /// Collections.
    Collections,
    /// Operations.
    Operations,
    /// Passwords and API tokens of principals.
    Credentials,
    /// Replication state: this node's site identity, its peers, the operation logs.
    Sites,
}

impl SealedTable {
    fn name(self) -> &'static str {
        match self {
            SealedTable::Principals => "principals",
            SealedTable::Collections => "collections",
            SealedTable::Operations => "operations",
            SealedTable::Credentials => "credentials",
            SealedTable::Sites => "sites",
        }
    }
}

/// Runs `sql` on a catalog whose `table` lacks `column`: how a catalog
/// written by an older version gains what later ones added.
fn migrate(conn: &Connection, table: &str, column: &str, sql: &str) -> Result<()> {
    let has = conn
        .prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
        .exists([table, column])?;
    if !has {
        conn.execute_batch(sql)?;
    }
    Ok(())
}

/// The embedded catalog.
pub struct SqliteCatalog {
    pub(crate) conn: Connection,
    /// Checks and advances the integrity record at every change, once the
    /// platform key is unlocked.
    guard: Option<Guard>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agencies(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS principals(id INTEGER PRIMARY KEY, name_tag BLOB NOT NULL UNIQUE, agency_id INTEGER REFERENCES agencies(id), sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS collections(id INTEGER PRIMARY KEY, name_tag BLOB NOT NULL UNIQUE, agency_id INTEGER REFERENCES agencies(id), sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS operations(id INTEGER PRIMARY KEY, name_tag BLOB NOT NULL UNIQUE, agency_id INTEGER, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS credentials(id INTEGER PRIMARY KEY, name_tag BLOB NOT NULL UNIQUE, agency_id INTEGER, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS sites(id INTEGER PRIMARY KEY, name_tag BLOB NOT NULL UNIQUE, agency_id INTEGER, sealed BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS locations(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, jurisdiction TEXT NOT NULL, spec TEXT NOT NULL, retired INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS residency(scope TEXT NOT NULL, target TEXT NOT NULL, allow TEXT NOT NULL, PRIMARY KEY(scope, target));
CREATE TABLE IF NOT EXISTS contents(id INTEGER PRIMARY KEY, agency_id INTEGER NOT NULL REFERENCES agencies(id), tag BLOB NOT NULL, location_id INTEGER NOT NULL REFERENCES locations(id), object TEXT NOT NULL UNIQUE, wrapped_key BLOB NOT NULL, kek_version INTEGER NOT NULL, size INTEGER NOT NULL, refs INTEGER NOT NULL, pack TEXT, pack_offset INTEGER);
CREATE INDEX IF NOT EXISTS contents_tag ON contents(agency_id, tag);
CREATE INDEX IF NOT EXISTS contents_pack ON contents(pack) WHERE pack IS NOT NULL;
CREATE TABLE IF NOT EXISTS items(id TEXT PRIMARY KEY, agency_id INTEGER NOT NULL REFERENCES agencies(id), collection_id INTEGER NOT NULL REFERENCES collections(id), content_id INTEGER NOT NULL REFERENCES contents(id), created_ms INTEGER NOT NULL, retain_until_ms INTEGER, wrapped_key BLOB NOT NULL, kek_version INTEGER NOT NULL, sealed_meta BLOB NOT NULL, lineage BLOB);
CREATE INDEX IF NOT EXISTS items_collection ON items(collection_id, created_ms);
CREATE INDEX IF NOT EXISTS items_lineage ON items(lineage) WHERE lineage IS NOT NULL;
CREATE INDEX IF NOT EXISTS items_retain ON items(retain_until_ms) WHERE retain_until_ms IS NOT NULL;
INSERT OR IGNORE INTO meta(k, v) VALUES('items.count', '0');
CREATE TRIGGER IF NOT EXISTS items_counted_in AFTER INSERT ON items BEGIN UPDATE meta SET v = CAST(v AS INTEGER) + 1 WHERE k = 'items.count'; END;
CREATE TRIGGER IF NOT EXISTS items_counted_out AFTER DELETE ON items BEGIN UPDATE meta SET v = CAST(v AS INTEGER) - 1 WHERE k = 'items.count'; END;
";

fn item_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ItemRow> {
    Ok(ItemRow {
        id: r.get(0)?,
        agency_id: r.get(1)?,
        collection_id: r.get(2)?,
        content_id: r.get(3)?,
        created_ms: r.get(4)?,
        retain_until_ms: r.get(5)?,
        wrapped_key: r.get(6)?,
        kek_version: r.get(7)?,
        sealed_meta: r.get(8)?,
        lineage: r.get(9)?,
    })
}

fn content_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ContentRow> {
    Ok(ContentRow {
        id: r.get(0)?,
        agency_id: r.get(1)?,
        tag: r.get(2)?,
        location_id: r.get(3)?,
        object: r.get(4)?,
        wrapped_key: r.get(5)?,
        kek_version: r.get(6)?,
        size: r.get(7)?,
        packed: match r.get::<_, Option<String>>(8)? {
            Some(pack) => Some(PackSlice {
                pack,
                offset: r.get(9)?,
            }),
            None => None,
        },
    })
}

/// The `meta` key of [`Catalog::items_generation`].
const ITEMS_GENERATION: &str = "items.generation";

/// Marks a change of the items, in the transaction that makes it, with a fresh random
/// value rather than a count: a derived store (the search index) keeps the value it synced
/// at across restarts, and a catalog restored from a backup would count again through
/// values the index already saw, with other items behind them. A random value from a
/// restored catalog matches nothing the index holds (one chance in 2^64).
pub(crate) fn bump_items_generation(tx: &rusqlite::Transaction<'_>) -> Result<GenerationStep> {
    let before = read_items_generation(tx)?;
    let mut bytes = [0u8; 8];
    bletchley_crypto::random_bytes(&mut bytes)?;
    // Stored as SQLite's signed integer; read back as the same 64 bits.
    let value = i64::from_le_bytes(bytes);
    tx.prepare_cached("INSERT INTO meta(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = ?2")?
        .execute(params![ITEMS_GENERATION, value])?;
    Ok(GenerationStep {
        before,
        after: value as u64,
    })
}

/// The number of items as the catalog's triggers count them (kept in `meta`, so that a commit
/// reads it in one lookup; the integrity record checks it against a real count at open).
pub(crate) fn read_items_count(conn: &rusqlite::Connection) -> Result<u64> {
    Ok(conn
        .prepare_cached("SELECT CAST(v AS INTEGER) FROM meta WHERE k = 'items.count'")?
        .query_row([], |r| r.get::<_, i64>(0))
        .optional()?
        .map_or(0, |n| n.max(0) as u64))
}

/// The items generation as `conn` sees it: 0 before any item was stored.
fn read_items_generation(conn: &rusqlite::Connection) -> Result<u64> {
    Ok(conn
        .prepare_cached("SELECT CAST(v AS INTEGER) FROM meta WHERE k = ?1")?
        .query_row([ITEMS_GENERATION], |r| r.get::<_, i64>(0))
        .optional()?
        .map_or(0, |g| g as u64))
}

/// One change of the items generation, made by one commit of items. The
/// value is read in the transaction that replaces it, after its writes took
/// the database's write lock, so no other commit can come between the two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GenerationStep {
    /// The generation the commit found.
    pub before: u64,
    /// The generation it left.
    pub after: u64,
}

/// Inserts items with their new contents in `tx`.
fn commit_items_in(
    tx: &rusqlite::Transaction<'_>,
    items: &[(ItemRow, ContentRef)],
) -> Result<GenerationStep> {
    let mut inserted: std::collections::HashMap<&str, i64> = Default::default();
    for (item, content) in items {
        let content_id = match content {
            ContentRef::Existing(id) => {
                tx.prepare_cached(ADD_REF)?.execute([id])?;
                *id
            }
            ContentRef::New(c) => {
                // Several items of one batch may share a new object.
                if let Some(&id) = inserted.get(c.object.as_str()) {
                    tx.prepare_cached(ADD_REF)?.execute([id])?;
                    id
                } else {
                    tx.prepare_cached(
                    "INSERT INTO contents(agency_id, tag, location_id, object, wrapped_key, kek_version, size, refs, pack, pack_offset) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?9)",
                )?
                .execute(params![
                        c.agency_id,
                        c.tag,
                        c.location_id,
                        c.object,
                        c.wrapped_key,
                        c.kek_version,
                        c.size,
                        c.packed.as_ref().map(|p| &p.pack),
                        c.packed.as_ref().map(|p| p.offset)
                    ])?;
                    let id = tx.last_insert_rowid();
                    inserted.insert(&c.object, id);
                    id
                }
            }
        };
        tx.prepare_cached(&format!(
            "INSERT INTO items({ITEM_COLS}) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
        ))?
        .execute(params![
            item.id,
            item.agency_id,
            item.collection_id,
            content_id,
            item.created_ms,
            item.retain_until_ms,
            item.wrapped_key,
            item.kek_version,
            item.sealed_meta,
            item.lineage
        ])?;
    }
    bump_items_generation(tx)
}

/// Deletes an item in `tx`; returns its content row if none uses it now.
fn delete_item_in(tx: &rusqlite::Transaction<'_>, id: &str) -> Result<Option<ContentRow>> {
    let content_id: Option<i64> = tx
        .query_row("SELECT content_id FROM items WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    let Some(content_id) = content_id else {
        return Ok(None);
    };
    tx.execute("DELETE FROM items WHERE id = ?1", [id])?;
    tx.execute("DELETE FROM item_vectors WHERE item_id = ?1", [id])?;
    bump_items_generation(tx)?;
    tx.execute(
        "UPDATE contents SET refs = refs - 1 WHERE id = ?1",
        [content_id],
    )?;
    let orphan = tx
        .query_row(
            &format!("SELECT {CONTENT_COLS} FROM contents WHERE id = ?1 AND refs <= 0"),
            [content_id],
            content_from_row,
        )
        .optional()?;
    if orphan.is_some() {
        tx.execute("DELETE FROM contents WHERE id = ?1", [content_id])?;
    }
    Ok(orphan)
}

/// One more item uses a content.
const ADD_REF: &str = "UPDATE contents SET refs = refs + 1 WHERE id = ?1";

const ITEM_COLS: &str = "id, agency_id, collection_id, content_id, created_ms, retain_until_ms, wrapped_key, kek_version, sealed_meta, lineage";
const CONTENT_COLS: &str =
    "id, agency_id, tag, location_id, object, wrapped_key, kek_version, size, pack, pack_offset";

impl SqliteCatalog {
    /// Opens (creating if asked) the catalog at `path`: WAL journal, full
    /// fsync on commit, secure delete so shredded keys are overwritten.
    pub fn open(path: &Path, create: bool) -> Result<SqliteCatalog> {
        use rusqlite::OpenFlags;
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(30))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        if create {
            conn.execute_batch(SCHEMA)?;
            conn.execute_batch(crate::jobs::SCHEMA)?;
            conn.execute_batch(crate::vectors::SCHEMA)?;
        } else {
            conn.execute_batch(crate::jobs::SCHEMA)?;
            conn.execute_batch(crate::vectors::SCHEMA)?;
            // Catalogs from before derived items: add the lineage column.
            migrate(
                &conn,
                "items",
                "lineage",
                "ALTER TABLE items ADD COLUMN lineage BLOB;
                 CREATE INDEX IF NOT EXISTS items_lineage ON items(lineage) WHERE lineage IS NOT NULL;",
            )?;
            // Catalogs from before packs: every content is an object of its own.
            migrate(
                &conn,
                "contents",
                "pack",
                "ALTER TABLE contents ADD COLUMN pack TEXT;
                 ALTER TABLE contents ADD COLUMN pack_offset INTEGER;
                 CREATE INDEX IF NOT EXISTS contents_pack ON contents(pack) WHERE pack IS NOT NULL;",
            )?;
        }
        Ok(SqliteCatalog { conn, guard: None })
    }

    /// Copies every WAL frame into the database and truncates the WAL, so
    /// deleted rows leave no old page images behind.
    pub fn scrub_wal(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}

impl Catalog for SqliteCatalog {
    fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.guarded(&["meta"], |tx| {
            tx.execute(
                "INSERT INTO meta(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                [key, value],
            )?;
            Ok(())
        })
    }

    fn insert_agency(&self, name: &str) -> Result<i64> {
        self.guarded(&["agencies"], |tx| {
            tx.execute("INSERT INTO agencies(name) VALUES(?1)", [name])?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn agencies(&self) -> Result<Vec<(i64, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, name FROM agencies ORDER BY id")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn insert_sealed(
        &self,
        table: SealedTable,
        name_tag: &[u8],
        agency_id: Option<i64>,
        seal: &dyn Fn(i64) -> Result<Vec<u8>>,
    ) -> Result<i64> {
        self.guarded(&[table.name()], |tx| {
            let id: i64 = tx.query_row(
                &format!("SELECT coalesce(max(id), 0) + 1 FROM {}", table.name()),
                [],
                |r| r.get(0),
            )?;
            let sealed = seal(id)?;
            tx.execute(
                &format!(
                    "INSERT INTO {}(id, name_tag, agency_id, sealed) VALUES(?1, ?2, ?3, ?4)",
                    table.name()
                ),
                params![id, name_tag, agency_id, sealed],
            )?;
            Ok(id)
        })
    }

    fn update_sealed(&self, table: SealedTable, id: i64, sealed: &[u8]) -> Result<()> {
        self.guarded(&[table.name()], |tx| {
            tx.execute(
                &format!("UPDATE {} SET sealed = ?1 WHERE id = ?2", table.name()),
                params![sealed, id],
            )?;
            Ok(())
        })
    }

    fn rehome_sealed(
        &self,
        table: SealedTable,
        id: i64,
        agency_id: Option<i64>,
        sealed: &[u8],
    ) -> Result<()> {
        self.guarded(&[table.name()], |tx| {
            tx.execute(
                &format!(
                    "UPDATE {} SET sealed = ?1, agency_id = ?2 WHERE id = ?3",
                    table.name()
                ),
                params![sealed, agency_id, id],
            )?;
            Ok(())
        })
    }

    fn find_sealed(&self, table: SealedTable, name_tag: &[u8]) -> Result<Option<SealedRow>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT id, name_tag, agency_id, sealed FROM {} WHERE name_tag = ?1",
                    table.name()
                ),
                [name_tag],
                |r| {
                    Ok(SealedRow {
                        id: r.get(0)?,
                        name_tag: r.get(1)?,
                        agency_id: r.get(2)?,
                        sealed: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    fn all_sealed(&self, table: SealedTable) -> Result<Vec<SealedRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT id, name_tag, agency_id, sealed FROM {} ORDER BY id",
            table.name()
        ))?;
        let rows = st.query_map([], |r| {
            Ok(SealedRow {
                id: r.get(0)?,
                name_tag: r.get(1)?,
                agency_id: r.get(2)?,
                sealed: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn insert_location(&self, name: &str, jurisdiction: &str, spec: &str) -> Result<i64> {
        self.guarded(&["locations"], |tx| {
            tx.execute(
                "INSERT INTO locations(name, jurisdiction, spec) VALUES(?1, ?2, ?3)",
                [name, jurisdiction, spec],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    fn locations(&self) -> Result<Vec<LocationRow>> {
        let mut st = self
            .conn
            .prepare("SELECT id, name, jurisdiction, spec, retired FROM locations ORDER BY id")?;
        let rows = st.query_map([], |r| {
            Ok(LocationRow {
                id: r.get(0)?,
                name: r.get(1)?,
                jurisdiction: r.get(2)?,
                spec: r.get(3)?,
                retired: r.get::<_, i64>(4)? != 0,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn retire_location(&self, id: i64) -> Result<()> {
        self.guarded(&["locations"], |tx| {
            tx.execute("UPDATE locations SET retired = 1 WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    fn set_location_spec(&self, id: i64, spec: &str) -> Result<()> {
        self.guarded(&["locations"], |tx| {
            tx.execute(
                "UPDATE locations SET spec = ?2 WHERE id = ?1",
                rusqlite::params![id, spec],
            )?;
            Ok(())
        })
    }

    fn set_residency(&self, scope: &str, target: &str, allow: &str) -> Result<()> {
        self.guarded(&["residency"], |tx| {
            tx.execute(
                "INSERT INTO residency(scope, target, allow) VALUES(?1, ?2, ?3) ON CONFLICT(scope, target) DO UPDATE SET allow = excluded.allow",
                [scope, target, allow],
            )?;
            Ok(())
        })
    }

    fn residency(&self) -> Result<Vec<(String, String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT scope, target, allow FROM residency")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn find_content(&self, agency_id: i64, tag: &[u8]) -> Result<Vec<ContentRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {CONTENT_COLS} FROM contents WHERE agency_id = ?1 AND tag = ?2"
        ))?;
        let rows = st.query_map(params![agency_id, tag], content_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn content(&self, id: i64) -> Result<Option<ContentRow>> {
        Ok(self
            .conn
            .prepare_cached(&format!(
                "SELECT {CONTENT_COLS} FROM contents WHERE id = ?1"
            ))?
            .query_row([id], content_from_row)
            .optional()?)
    }

    fn contents(&self) -> Result<Vec<ContentRow>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {CONTENT_COLS} FROM contents ORDER BY id"))?;
        let rows = st.query_map([], content_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn snapshot(&self, to: &Path) -> Result<()> {
        let mut dst = Connection::open(to)?;
        let b = rusqlite::backup::Backup::new(&self.conn, &mut dst)?;
        b.run_to_completion(1024, std::time::Duration::ZERO, None)?;
        drop(b);
        // One file, no WAL beside it, durable.
        dst.pragma_update(None, "journal_mode", "DELETE")?;
        drop(dst);
        let f = std::fs::File::open(to).map_err(io(to))?;
        f.sync_all().map_err(io(to))?;
        Ok(())
    }

    fn commit_items(&self, items: &[(ItemRow, ContentRef)]) -> Result<GenerationStep> {
        self.guarded(&["items"], |tx| commit_items_in(tx, items))
    }

    fn items_generation(&self) -> Result<u64> {
        read_items_generation(&self.conn)
    }

    fn item(&self, id: &str) -> Result<Option<ItemRow>> {
        Ok(self
            .conn
            .prepare_cached(&format!("SELECT {ITEM_COLS} FROM items WHERE id = ?1"))?
            .query_row([id], item_from_row)
            .optional()?)
    }

    fn items_in(&self, collections: &[u32]) -> Result<Vec<ItemRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {ITEM_COLS} FROM items WHERE collection_id = ?1 ORDER BY created_ms, id"
        ))?;
        let mut out = Vec::new();
        for c in collections {
            let rows = st.query_map([c], item_from_row)?;
            for r in rows {
                out.push(r?);
            }
        }
        out.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(out)
    }

    fn item_ids(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare("SELECT id FROM items")?;
        let rows = st.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn item_count(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM items", [], |r| r.get(0))?;
        Ok(n.max(0) as u64)
    }

    fn expired_items(&self, now_ms: i64) -> Result<Vec<ItemRow>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {ITEM_COLS} FROM items WHERE retain_until_ms IS NOT NULL AND retain_until_ms <= ?1"
        ))?;
        let rows = st.query_map([now_ms], item_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn derived_from(&self, lineage: &[u8]) -> Result<Vec<ItemRow>> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {ITEM_COLS} FROM items WHERE lineage = ?1 ORDER BY created_ms, id"
        ))?;
        let rows = st.query_map([lineage], item_from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn rewrite_items(&self, items: &[(String, Vec<u8>)], meta: &[(&str, String)]) -> Result<()> {
        self.guarded(&["items", "meta"], |tx| {
            for (id, sealed) in items {
                let n = tx
                    .prepare_cached("UPDATE items SET sealed_meta = ?2 WHERE id = ?1")?
                    .execute(params![id, sealed])?;
                if n != 1 {
                    return Err(crate::error::Error::Invalid(format!(
                        "item {id} is not in the catalog"
                    )));
                }
            }
            for (k, v) in meta {
                tx.prepare_cached(
                    "INSERT INTO meta(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
                )?
                .execute([k, v.as_str()])?;
            }
            bump_items_generation(tx)?;
            Ok(())
        })?;
        self.scrub_wal()
    }

    fn delete_item(&self, id: &str) -> Result<Option<ContentRow>> {
        let orphan = self.guarded(&["items"], |tx| delete_item_in(tx, id))?;
        self.scrub_wal()?;
        Ok(orphan)
    }

    fn pack_in_use(&self, pack: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT 1 FROM contents WHERE pack = ?1")?
            .exists([pack])?)
    }

    fn wrapped_keys(&self, agency_id: i64) -> Result<Vec<WrappedKeyRow>> {
        let mut out = Vec::new();
        let mut st = self
            .conn
            .prepare("SELECT id, kek_version, wrapped_key FROM items WHERE agency_id = ?1")?;
        for r in st.query_map([agency_id], |r| {
            Ok(WrappedKeyRow {
                table: "items".to_owned(),
                key: r.get(0)?,
                kek_version: r.get(1)?,
                wrapped: r.get(2)?,
            })
        })? {
            out.push(r?);
        }
        let mut st = self.conn.prepare(
            "SELECT object, kek_version, wrapped_key FROM contents WHERE agency_id = ?1",
        )?;
        for r in st.query_map([agency_id], |r| {
            Ok(WrappedKeyRow {
                table: "contents".to_owned(),
                key: r.get(0)?,
                kek_version: r.get(1)?,
                wrapped: r.get(2)?,
            })
        })? {
            out.push(r?);
        }
        Ok(out)
    }

    fn rewrap(&self, rows: &[WrappedKeyRow]) -> Result<()> {
        self.guarded(&["items"], |tx| rewrap_in(tx, rows))?;
        self.scrub_wal()
    }
}

/// Replaces wrapped keys in `tx`.
fn rewrap_in(tx: &rusqlite::Transaction<'_>, rows: &[WrappedKeyRow]) -> Result<()> {
    {
        for WrappedKeyRow {
            table,
            key,
            kek_version: version,
            wrapped,
        } in rows
        {
            let sql = if table == "items" {
                "UPDATE items SET kek_version = ?1, wrapped_key = ?2 WHERE id = ?3"
            } else {
                "UPDATE contents SET kek_version = ?1, wrapped_key = ?2 WHERE object = ?3"
            };
            tx.execute(sql, params![version, wrapped, key])?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A catalog written before packs opens, and its contents read as
    /// objects of their own; contents written after may lie in packs.
    #[test]
    fn a_catalog_from_before_packs_gains_them() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("catalog.db");
        {
            let old = Connection::open(&path).expect("open");
            let schema = SCHEMA
                .replace(", pack TEXT, pack_offset INTEGER", "")
                .replace(
                    "CREATE INDEX IF NOT EXISTS contents_pack ON contents(pack) WHERE pack IS NOT NULL;",
                    "",
                );
            old.execute_batch(&schema).expect("old schema");
            old.execute_batch(
                "INSERT INTO agencies(id, name) VALUES(1, 'mi5');
                 INSERT INTO locations(id, name, jurisdiction, spec) VALUES(1, 'home', 'GB', '{}');
                 INSERT INTO contents(id, agency_id, tag, location_id, object, wrapped_key, kek_version, size, refs)
                   VALUES(7, 1, x'01', 1, 'ab/old', x'02', 1, 42, 1);",
            )
            .expect("old rows");
        }
        let c = SqliteCatalog::open(&path, false).expect("reopen");
        let old = c.content(7).expect("read").expect("row");
        assert_eq!((old.object.as_str(), old.packed), ("ab/old", None));
        let new = ContentRow {
            id: 0,
            agency_id: 1,
            tag: vec![3],
            location_id: 1,
            object: "cd/new".into(),
            packed: Some(PackSlice {
                pack: "ef/pack".into(),
                offset: 1000,
            }),
            wrapped_key: vec![4],
            kek_version: 1,
            size: 50,
        };
        let item = ItemRow {
            id: "item-1".into(),
            agency_id: 1,
            collection_id: 0,
            content_id: 0,
            created_ms: 0,
            retain_until_ms: None,
            wrapped_key: vec![5],
            kek_version: 1,
            sealed_meta: vec![6],
            lineage: None,
        };
        c.conn
            .execute_batch("PRAGMA foreign_keys = OFF")
            .expect("no collection row needed here");
        let step = c
            .commit_items(&[(item, ContentRef::New(new))])
            .expect("commit");
        let stored = c.find_content(1, &[3]).expect("find");
        assert_eq!(
            stored[0].packed,
            Some(PackSlice {
                pack: "ef/pack".into(),
                offset: 1000
            })
        );
        assert!(c.pack_in_use("ef/pack").expect("query"));
        let after_commit = c.items_generation().expect("generation");
        assert_ne!(after_commit, 0, "a commit of items changes the generation");
        assert_eq!(
            step,
            GenerationStep {
                before: 0,
                after: after_commit
            },
            "and says from what to what"
        );
        c.set_meta("other", "x").expect("meta");
        c.item("item-1").expect("read");
        assert_eq!(c.items_generation().expect("generation"), after_commit);
        let orphan = c.delete_item("item-1").expect("delete").expect("orphan");
        let after_delete = c.items_generation().expect("generation");
        assert_ne!(after_delete, after_commit, "so does a delete");
        assert!(c.delete_item("item-1").expect("again").is_none());
        assert_eq!(
            c.items_generation().expect("generation"),
            after_delete,
            "a no-op is not a change"
        );
        assert_eq!(orphan.packed.map(|p| p.pack).as_deref(), Some("ef/pack"));
        assert!(!c.pack_in_use("ef/pack").expect("query"));
    }
}
