//! The catalog's integrity against whoever hosts it.
//!
//! Every table whose rows decide access or placement (settings, agencies,
//! principals, collections, operations, credentials, sites, locations,
//! residency) is digested whole under a key derived from the platform's
//! catalog key, so that no row of it can be edited, deleted, added, swapped
//! or restored from an earlier copy without the digest disagreeing. The
//! digests, the items generation and a chain of recent states sit in one
//! record (`meta.state`) with a MAC over all of it. Each change, made in
//! one transaction with its record, first checks the tables it touches
//! against the record (so a change never launders an alteration into a
//! fresh digest), then advances the chain.
//!
//! The chain's current value is signed into every audit checkpoint, so a
//! catalog put back as a whole to an earlier state (record included) is
//! caught against the audit log: the checkpoint names a state the old
//! catalog never reached. A restore of the catalog and the audit log
//! together is caught only against a checkpoint held outside the host.

use std::collections::BTreeMap;

use bletchley_crypto::{SecretKey, keyed_tag};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};

use super::{SqliteCatalog, read_items_count, read_items_generation};
use crate::error::{Error, Result};

/// The MAC key of the catalog's integrity record. Only the holder of the
/// platform key file has it.
pub struct Guard {
    key: SecretKey,
}

impl Guard {
    /// A guard under `key` (derived from the platform catalog key).
    pub fn new(key: SecretKey) -> Guard {
        Guard { key }
    }
}

/// The tables digested whole, each with the query that reads it in a
/// canonical order.
const TABLES: &[(&str, &str)] = &[
    (
        "meta",
        "SELECT k, v FROM meta WHERE k NOT IN ('items.generation', 'items.count', 'state') ORDER BY k",
    ),
    ("agencies", "SELECT * FROM agencies ORDER BY id"),
    ("principals", "SELECT * FROM principals ORDER BY id"),
    ("collections", "SELECT * FROM collections ORDER BY id"),
    ("operations", "SELECT * FROM operations ORDER BY id"),
    ("credentials", "SELECT * FROM credentials ORDER BY id"),
    ("sites", "SELECT * FROM sites ORDER BY id"),
    ("locations", "SELECT * FROM locations ORDER BY id"),
    (
        "residency",
        "SELECT * FROM residency ORDER BY scope, target",
    ),
];

/// The pseudo-table name of a change of the items (checked by the items
/// generation, not by a digest: they are too many to read at every change).
pub(crate) const ITEMS: &str = "items";

/// States of the chain kept, newest last: a checkpoint may name any of them.
const HISTORY: usize = 256;

const STATE_KEY: &str = "state";

#[derive(serde::Serialize, serde::Deserialize, Clone)]
struct Record {
    /// Chain values, newest last.
    history: Vec<String>,
    /// Table name to hex digest.
    tables: BTreeMap<String, String>,
    /// The items generation.
    generation: u64,
    /// How many items there are.
    count: u64,
    /// Over all of the above.
    mac: String,
}

/// The catalog's state as the audit log should know it.
#[derive(Clone, Debug)]
pub struct CatalogState {
    /// Chain values, newest (the current state) last.
    pub history: Vec<String>,
}

impl CatalogState {
    /// The current chain value.
    pub fn current(&self) -> &str {
        self.history.last().map_or("", String::as_str)
    }

    /// Whether the catalog was in state `value` recently.
    pub fn reached(&self, value: &str) -> bool {
        self.history.iter().any(|h| h == value)
    }
}

fn damaged(what: impl Into<String>) -> Error {
    Error::Damaged(what.into())
}

impl Guard {
    fn table_digest(&self, conn: &Connection, name: &str, sql: &str) -> Result<String> {
        let mut st = conn.prepare_cached(sql)?;
        let cols = st.column_count();
        let mut buf = Vec::new();
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            for i in 0..cols {
                match r.get_ref(i)? {
                    ValueRef::Null => buf.push(0),
                    ValueRef::Integer(v) => {
                        buf.push(1);
                        buf.extend_from_slice(&v.to_be_bytes());
                    }
                    ValueRef::Real(v) => {
                        buf.push(2);
                        buf.extend_from_slice(&v.to_be_bytes());
                    }
                    ValueRef::Text(t) => {
                        buf.push(3);
                        buf.extend_from_slice(&(t.len() as u64).to_be_bytes());
                        buf.extend_from_slice(t);
                    }
                    ValueRef::Blob(b) => {
                        buf.push(4);
                        buf.extend_from_slice(&(b.len() as u64).to_be_bytes());
                        buf.extend_from_slice(b);
                    }
                }
            }
            buf.push(0xff);
        }
        Ok(hex::encode(keyed_tag(
            &self.key,
            &format!("catalog table {name}"),
            &buf,
        )))
    }

    fn mac(&self, r: &Record) -> Result<String> {
        let body = serde_json::to_vec(&(&r.history, &r.tables, r.generation, r.count))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(hex::encode(keyed_tag(&self.key, "catalog state", &body)))
    }

    fn read(&self, conn: &Connection) -> Result<Record> {
        let text: Option<String> = conn
            .query_row("SELECT v FROM meta WHERE k = ?1", [STATE_KEY], |r| r.get(0))
            .optional()?;
        let text = text.ok_or_else(|| {
            damaged(
                "the catalog's integrity record is missing (deleted, or the catalog was replaced)",
            )
        })?;
        let r: Record = serde_json::from_str(&text)
            .map_err(|_| damaged("the catalog's integrity record is unreadable (altered)"))?;
        let good = self.mac(&r)?;
        if !bletchley_crypto::constant_time_eq(good.as_bytes(), r.mac.as_bytes()) {
            return Err(damaged(
                "the catalog's integrity record does not verify (altered, or from another platform)",
            ));
        }
        if r.history.is_empty() {
            return Err(damaged("the catalog's integrity record holds no state"));
        }
        Ok(r)
    }

    fn write(&self, conn: &Connection, mut r: Record) -> Result<()> {
        let prev = r.history.last().cloned().unwrap_or_default();
        let body = serde_json::to_vec(&(&prev, &r.tables, r.generation, r.count))
            .map_err(|e| Error::Invalid(e.to_string()))?;
        let next = hex::encode(&keyed_tag(&self.key, "catalog chain", &body)[..16]);
        r.history.push(next);
        let excess = r.history.len().saturating_sub(HISTORY);
        r.history.drain(..excess);
        r.mac = self.mac(&r)?;
        let text = serde_json::to_string(&r).map_err(|e| Error::Invalid(e.to_string()))?;
        conn.execute(
            "INSERT INTO meta(k, v) VALUES(?1, ?2) ON CONFLICT(k) DO UPDATE SET v = excluded.v",
            [STATE_KEY, &text],
        )?;
        Ok(())
    }

    /// Checks `touched` against the record: each table's digest, or for
    /// [`ITEMS`] the generation.
    fn check(&self, conn: &Connection, r: &Record, touched: &[&str]) -> Result<()> {
        for t in touched {
            if *t == ITEMS {
                if read_items_generation(conn)? != r.generation {
                    return Err(damaged(
                        "the catalog's items were changed outside Bletchley (their generation is not the one recorded)",
                    ));
                }
                if read_items_count(conn)? != r.count {
                    return Err(damaged(format!(
                        "the catalog's items were changed outside Bletchley ({} items recorded, {} counted: rows deleted or added)",
                        r.count,
                        read_items_count(conn)?
                    )));
                }
                continue;
            }
            let Some((name, sql)) = TABLES.iter().find(|(n, _)| n == t) else {
                continue;
            };
            let d = self.table_digest(conn, name, sql)?;
            if r.tables.get(*name) != Some(&d) {
                return Err(damaged(format!(
                    "the catalog's {name} table was altered outside Bletchley (a row edited, deleted, added, swapped or restored from an earlier copy)"
                )));
            }
        }
        Ok(())
    }

    /// Brings the record up to `touched`'s new contents.
    fn update(&self, conn: &Connection, r: &mut Record, touched: &[&str]) -> Result<()> {
        for t in touched {
            if *t == ITEMS {
                r.generation = read_items_generation(conn)?;
                r.count = read_items_count(conn)?;
            } else if let Some((name, sql)) = TABLES.iter().find(|(n, _)| n == t) {
                r.tables
                    .insert((*name).to_owned(), self.table_digest(conn, name, sql)?);
            }
        }
        Ok(())
    }
}

impl SqliteCatalog {
    /// Guards every later change with `guard`, and checks the record at
    /// [`SqliteCatalog::verify_state`].
    pub fn set_guard(&mut self, guard: Guard) {
        self.guard = Some(guard);
    }

    fn guard(&self) -> Result<&Guard> {
        self.guard
            .as_ref()
            .ok_or_else(|| Error::Layout("the catalog has no guard".into()))
    }

    /// Runs `f` in one immediate transaction: with a guard, the tables it
    /// touches are checked against the integrity record first, and the
    /// record is advanced in the same transaction.
    pub(crate) fn guarded<T>(
        &self,
        touched: &[&str],
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let Some(g) = &self.guard else {
            let out = f(&tx)?;
            tx.commit()?;
            return Ok(out);
        };
        let mut r = g.read(&tx)?;
        g.check(&tx, &r, touched)?;
        let out = f(&tx)?;
        g.update(&tx, &mut r, touched)?;
        g.write(&tx, r)?;
        tx.commit()?;
        Ok(out)
    }

    /// Writes the first integrity record of a new catalog.
    pub fn seal_state(&self) -> Result<()> {
        let g = self.guard()?;
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)?;
        let mut r = Record {
            history: Vec::new(),
            tables: BTreeMap::new(),
            generation: 0,
            count: 0,
            mac: String::new(),
        };
        let all: Vec<&str> = TABLES.iter().map(|(n, _)| *n).chain([ITEMS]).collect();
        g.update(&tx, &mut r, &all)?;
        g.write(&tx, r)?;
        tx.commit()?;
        Ok(())
    }

    /// Checks every guarded table and the items generation against the
    /// integrity record; returns the state for comparison with the audit
    /// log's checkpoint.
    pub fn verify_state(&self) -> Result<CatalogState> {
        let g = self.guard()?;
        let r = g.read(&self.conn)?;
        let all: Vec<&str> = TABLES.iter().map(|(n, _)| *n).chain([ITEMS]).collect();
        g.check(&self.conn, &r, &all)?;
        // The triggers' count could have been switched off with the rows deleted after: count
        // the rows themselves once per open.
        let rows: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM items", [], |row| row.get(0))?;
        if rows.max(0) as u64 != r.count {
            return Err(damaged(format!(
                "the catalog's items were changed outside Bletchley ({} items recorded, {rows} rows present: rows deleted or added)",
                r.count
            )));
        }
        Ok(CatalogState { history: r.history })
    }

    /// The current state, its record's MAC checked (not the tables: see
    /// [`SqliteCatalog::verify_state`]); for the audit checkpoint.
    pub fn state(&self) -> Result<CatalogState> {
        let g = self.guard()?;
        let r = g.read(&self.conn)?;
        Ok(CatalogState { history: r.history })
    }
}
