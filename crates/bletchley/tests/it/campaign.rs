//! The host tamper campaign: every table and file the host holds, and for
//! each a set of mutations (flip a value, delete a row or file, swap a value
//! with another row's, truncate, put back an earlier copy, replay a row or
//! file from another platform built the same way). After each, the
//! principals read, list, search and follow a selector's timeline as before:
//! nobody may see anything they could not see before, damage is reported (to
//! a principal who may see the item, or in the audit trail for the overseer),
//! and any change to the audit log fails `audit verify`. A bounded sample runs in the test suite;
//! `BLETCHLEY_TAMPER_FULL=1` runs every mutation (as `scripts/tamper` does).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use rusqlite::Connection;
use rusqlite::types::Value;

use crate::common::{Env, bletchley_at, copy_tree, files_under};

/// What one principal could see: item ids listed, (id, bytes) read, search
/// hits.
#[derive(Default, PartialEq, Eq, Debug)]
struct Seen {
    listed: BTreeSet<String>,
    read: BTreeSet<(String, Vec<u8>)>,
    found: BTreeSet<String>,
    /// Items on the timeline of the selector every item mentions.
    linked: BTreeSet<String>,
}

fn run(data: &Path, args: &[&str]) -> std::process::Output {
    bletchley_at(data, args).output().expect("run")
}

fn ids_in(text: &str, ids: &[String]) -> BTreeSet<String> {
    ids.iter()
        .filter(|i| text.contains(i.as_str()))
        .cloned()
        .collect()
}

/// Everything `who` can see in `data`; `damage` counts refusals that name
/// damage.
fn seen(data: &Path, who: &str, ids: &[String], damage: &mut usize) -> Seen {
    let mut s = Seen::default();
    // A refusal other than the one for items it may not see reports the damage.
    let mut note = |o: &std::process::Output| {
        let err = String::from_utf8_lossy(&o.stderr);
        if !o.status.success() && !err.contains("not found or not permitted") {
            *damage += 1;
        }
    };
    let o = run(data, &["--as", who, "ls", "--json"]);
    note(&o);
    if o.status.success() {
        s.listed = ids_in(&String::from_utf8_lossy(&o.stdout), ids);
    }
    for id in ids {
        let o = run(data, &["--as", who, "get", id]);
        note(&o);
        if o.status.success() {
            s.read.insert((id.clone(), o.stdout));
        }
    }
    let o = run(data, &["--as", who, "search", "canary", "--json"]);
    note(&o);
    if o.status.success() {
        s.found = ids_in(&String::from_utf8_lossy(&o.stdout), ids);
    }
    let o = run(data, &["--as", who, "timeline", SELECTOR, "--json"]);
    note(&o);
    if o.status.success() {
        s.linked = ids_in(&String::from_utf8_lossy(&o.stdout), ids);
    }
    s
}

/// A telephone number every planted item mentions: the link graph's material.
const SELECTOR: &str = "+447911123456";

/// One mutation of the host's bytes.
enum Mutation {
    /// Change one column of one row.
    Flip {
        table: String,
        rowid: i64,
        column: String,
    },
    /// Delete one row.
    Delete { table: String, rowid: i64 },
    /// Swap one column between two rows of a table.
    Swap {
        table: String,
        a: i64,
        b: i64,
        column: String,
    },
    /// Flip one byte in the middle of a file.
    FlipFile(PathBuf),
    /// Cut a file in half.
    Truncate(PathBuf),
    /// Remove a file.
    Remove(PathBuf),
    /// Put back a file as it was before the last acts.
    Restore(PathBuf, Vec<u8>),
    /// Replace one row with the row of the same number from another platform built the same
    /// way (its own keys and ids).
    ReplayRow {
        table: String,
        rowid: i64,
        other: PathBuf,
    },
    /// Replace a file with the same file of another platform.
    ReplayFile(PathBuf, Vec<u8>),
}

impl Mutation {
    fn name(&self) -> String {
        match self {
            Mutation::Flip {
                table,
                rowid,
                column,
            } => format!("flip {table}.{column} row {rowid}"),
            Mutation::Delete { table, rowid } => format!("delete {table} row {rowid}"),
            Mutation::Swap {
                table,
                a,
                b,
                column,
            } => format!("swap {table}.{column} rows {a},{b}"),
            Mutation::FlipFile(p) => format!("flip a byte of {}", p.display()),
            Mutation::Truncate(p) => format!("truncate {}", p.display()),
            Mutation::Remove(p) => format!("remove {}", p.display()),
            Mutation::Restore(p, _) => format!("restore an earlier {}", p.display()),
            Mutation::ReplayRow { table, rowid, .. } => {
                format!("replay {table} row {rowid} from another platform")
            }
            Mutation::ReplayFile(p, _) => format!("replay {} from another platform", p.display()),
        }
    }

    /// Whether `audit verify` must fail after this: any change to the log's
    /// entries, and any altered checkpoint. (An older or shortened history of
    /// checkpoints, or an older latest checkpoint, still verifies: the newest
    /// signed checkpoint left covers every entry, so nothing was lost.)
    fn touches_audit(&self) -> bool {
        let is =
            |p: &Path, n: &str| p.starts_with("audit") && p.file_name().is_some_and(|f| f == n);
        match self {
            Mutation::FlipFile(p) => is(p, "log") || is(p, "checkpoint") || is(p, "checkpoints"),
            Mutation::Truncate(p) | Mutation::Remove(p) | Mutation::Restore(p, _) => is(p, "log"),
            Mutation::ReplayFile(p, _) => {
                is(p, "log") || is(p, "checkpoint") || is(p, "checkpoints")
            }
            _ => false,
        }
    }

    fn apply(&self, data: &Path) -> bool {
        let db = || {
            let c = Connection::open(data.join("catalog.db")).expect("open");
            c.execute_batch("PRAGMA foreign_keys = OFF").expect("fk");
            c
        };
        let flipped = |v: Value| match v {
            Value::Integer(i) => Value::Integer(i ^ 1),
            Value::Real(r) => Value::Real(r + 1.0),
            Value::Text(mut t) => {
                t.push('x');
                Value::Text(t)
            }
            Value::Blob(mut b) => {
                let mid = b.len() / 2;
                if let Some(x) = b.get_mut(mid) {
                    *x ^= 0x20;
                } else {
                    b.push(1);
                }
                Value::Blob(b)
            }
            Value::Null => Value::Integer(1),
        };
        match self {
            Mutation::Flip {
                table,
                rowid,
                column,
            } => {
                let c = db();
                let v: Value = c
                    .query_row(
                        &format!("SELECT \"{column}\" FROM {table} WHERE rowid = ?1"),
                        [rowid],
                        |r| r.get(0),
                    )
                    .expect("read");
                c.execute(
                    &format!("UPDATE {table} SET \"{column}\" = ?1 WHERE rowid = ?2"),
                    rusqlite::params![flipped(v), rowid],
                )
                .is_ok()
            }
            Mutation::Delete { table, rowid } => db()
                .execute(&format!("DELETE FROM {table} WHERE rowid = ?1"), [rowid])
                .is_ok(),
            Mutation::Swap {
                table,
                a,
                b,
                column,
            } => {
                let c = db();
                let get = |r: &i64| -> Value {
                    c.query_row(
                        &format!("SELECT \"{column}\" FROM {table} WHERE rowid = ?1"),
                        [r],
                        |x| x.get(0),
                    )
                    .expect("read")
                };
                let (va, vb) = (get(a), get(b));
                if va == vb {
                    return false;
                }
                // Unique columns need a stand-in while they change hands.
                let tmp = Value::Blob(vec![0xde, 0xad]);
                let set = |r: &i64, v: &Value| {
                    c.execute(
                        &format!("UPDATE {table} SET \"{column}\" = ?1 WHERE rowid = ?2"),
                        rusqlite::params![v, r],
                    )
                    .is_ok()
                };
                set(a, &tmp) && set(b, &va) && set(a, &vb)
            }
            Mutation::FlipFile(p) => {
                let p = data.join(p);
                let Ok(mut b) = std::fs::read(&p) else {
                    return false;
                };
                if b.is_empty() {
                    return false;
                }
                let i = b.len() / 2;
                b[i] ^= 0x01;
                std::fs::write(&p, b).is_ok()
            }
            Mutation::Truncate(p) => {
                let p = data.join(p);
                let Ok(b) = std::fs::read(&p) else {
                    return false;
                };
                !b.is_empty() && std::fs::write(&p, &b[..b.len() / 2]).is_ok()
            }
            Mutation::Remove(p) => std::fs::remove_file(data.join(p)).is_ok(),
            Mutation::Restore(p, old) | Mutation::ReplayFile(p, old) => {
                let p = data.join(p);
                std::fs::read(&p).ok().as_deref() != Some(old.as_slice())
                    && std::fs::write(&p, old).is_ok()
            }
            Mutation::ReplayRow {
                table,
                rowid,
                other,
            } => {
                let c = db();
                let attached = c
                    .execute(
                        "ATTACH DATABASE ?1 AS other",
                        [other.join("catalog.db").to_string_lossy()],
                    )
                    .is_ok();
                attached
                    && c.execute(
                        &format!("DELETE FROM main.{table} WHERE rowid = ?1"),
                        [rowid],
                    )
                    .is_ok()
                    && c.execute(
                        &format!(
                            "INSERT INTO main.{table} SELECT * FROM other.{table} WHERE rowid = ?1"
                        ),
                        [rowid],
                    )
                    .is_ok_and(|n| n == 1)
            }
        }
    }
}

/// Every mutation of the catalog's rows and of the files in `data`.
fn mutations(data: &Path, earlier: &BTreeMap<PathBuf, Vec<u8>>, other: &Path) -> Vec<Mutation> {
    let c = Connection::open(data.join("catalog.db")).expect("open");
    let tables: Vec<String> = {
        let mut st = c
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .expect("tables");
        st.query_map([], |r| r.get(0))
            .expect("q")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    let mut out = Vec::new();
    for t in &tables {
        let cols: Vec<String> = {
            let mut st = c
                .prepare(&format!("SELECT name FROM pragma_table_info('{t}')"))
                .expect("cols");
            st.query_map([], |r| r.get(0))
                .expect("q")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        let rows: Vec<i64> = {
            let mut st = c
                .prepare(&format!("SELECT rowid FROM {t} ORDER BY rowid"))
                .expect("rows");
            st.query_map([], |r| r.get(0))
                .expect("q")
                .collect::<Result<_, _>>()
                .expect("rows")
        };
        for (n, r) in rows.iter().enumerate() {
            out.push(Mutation::Delete {
                table: t.clone(),
                rowid: *r,
            });
            out.push(Mutation::ReplayRow {
                table: t.clone(),
                rowid: *r,
                other: other.to_owned(),
            });
            for col in &cols {
                out.push(Mutation::Flip {
                    table: t.clone(),
                    rowid: *r,
                    column: col.clone(),
                });
                if let Some(other) = rows.get(n + 1) {
                    out.push(Mutation::Swap {
                        table: t.clone(),
                        a: *r,
                        b: *other,
                        column: col.clone(),
                    });
                }
            }
        }
    }
    drop(c);
    for f in files_under(data) {
        let rel = f.strip_prefix(data).expect("under").to_owned();
        let name = rel.to_string_lossy();
        // SQLite's own files are mutated row by row above; the index is
        // derived data that is rebuilt when it fails to open.
        if name.starts_with("catalog.db") || name.starts_with("index") || name.ends_with("lock") {
            continue;
        }
        out.push(Mutation::FlipFile(rel.clone()));
        out.push(Mutation::Truncate(rel.clone()));
        out.push(Mutation::Remove(rel.clone()));
        if let Ok(theirs) = std::fs::read(other.join(&rel)) {
            out.push(Mutation::ReplayFile(rel.clone(), theirs));
        }
        if let Some(old) = earlier.get(&rel) {
            out.push(Mutation::Restore(rel, old.clone()));
        }
    }
    out
}

/// A small two-agency platform: three items (OFFICIAL and TOP SECRET of mi5, SECRET of mi6),
/// a joint operation, a search made; with its files as they were before the last acts.
fn platform() -> (Env, Vec<String>, BTreeMap<PathBuf, Vec<u8>>) {
    let env = Env::new();
    env.basic();
    env.ok(&["agency", "add", "mi6"]);
    env.ok(&["collection", "add", "mi6/humint"]);
    env.add_principal("olly", "mi5", "OFFICIAL", &[]);
    env.add_principal("bob", "mi6", "TOP SECRET", &[]);
    let a = env.file("a.txt", b"canary OFFICIAL menu, call +44 7911 123456");
    let b = env.file("b.txt", b"canary TOP SECRET source on +44 7911 123456");
    let c = env.file("c.txt", b"canary mi6 asset, phone +44 7911 123456");
    let mut ids = env.ingest("alice", "mi5/ct", "OFFICIAL", &[&a]);
    ids.extend(env.ingest("alice", "mi5/ct", "TOP SECRET", &[&b]));
    // The files as they were before the last acts: what a restore puts back.
    let earlier: BTreeMap<PathBuf, Vec<u8>> = files_under(&env.data)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(&f).expect("read");
            (f.strip_prefix(&env.data).expect("under").to_owned(), bytes)
        })
        .collect();
    ids.extend(env.ingest("bob", "mi6/humint", "SECRET", &[&c]));
    env.ok(&["operation", "add", "JOINT", "--agencies", "mi5,mi6"]);
    env.ok(&["--as", "alice", "search", "canary"]);
    (env, ids, earlier)
}

#[test]
fn the_host_cannot_show_anyone_more_or_alter_the_log_unnoticed() {
    let (env, ids, earlier) = platform();
    // Another platform built the same way: its rows and files have the same shape and places,
    // under other keys, for the replay mutations.
    let (other, _, _) = platform();

    let principals = ["olly", "bob"];
    let mut none = 0;
    let baseline: Vec<Seen> = principals
        .iter()
        .map(|p| seen(&env.data, p, &ids, &mut none))
        .collect();
    assert_eq!(
        baseline[0].read.len(),
        1,
        "olly reads the OFFICIAL item only"
    );
    assert_eq!(baseline[1].read.len(), 1, "bob reads mi6's item only");
    assert_eq!(
        baseline[0].linked.len(),
        1,
        "olly's timeline holds the item olly reads"
    );

    let all = mutations(&env.data, &earlier, &other.data);
    let full = std::env::var_os("BLETCHLEY_TAMPER_FULL").is_some();
    // A bounded sample spread over every kind of target: every third.
    let chosen: Vec<&Mutation> = all
        .iter()
        .enumerate()
        .filter(|(n, _)| full || n % 3 == 0)
        .map(|(_, m)| m)
        .collect();
    let (mut tried, mut detected, mut harmless) = (0, 0, 0);
    let mut unreported = Vec::new();
    for (n, m) in chosen.iter().enumerate() {
        let copy = env.root.join(format!("campaign-{n}"));
        copy_tree(&env.data, &copy);
        if !m.apply(&copy) {
            let _ = std::fs::remove_dir_all(&copy);
            continue;
        }
        tried += 1;
        let mut damage = 0;
        let mut changed = false;
        for (p, base) in principals.iter().zip(&baseline) {
            let now = seen(&copy, p, &ids, &mut damage);
            assert!(
                now.listed.is_subset(&base.listed),
                "{}: {p} lists more: {:?}",
                m.name(),
                now.listed
            );
            assert!(
                now.read.is_subset(&base.read),
                "{}: {p} reads more",
                m.name()
            );
            assert!(
                now.found.is_subset(&base.found),
                "{}: {p} finds more: {:?}",
                m.name(),
                now.found
            );
            assert!(
                now.linked.is_subset(&base.linked),
                "{}: {p} links more: {:?}",
                m.name(),
                now.linked
            );
            changed |= now != *base;
        }
        let verify = run(&copy, &["audit", "verify"]);
        if m.touches_audit() {
            assert!(
                !verify.status.success(),
                "{}: audit verify passed",
                m.name()
            );
        }
        // Damage behind a denial is told to the overseer, not to the principal: it counts as
        // reported when the audit trail names it.
        let trail = run(&copy, &["audit", "show"]);
        let audited =
            trail.status.success() && String::from_utf8_lossy(&trail.stdout).contains("damaged");
        if damage > 0 || !verify.status.success() || audited {
            detected += 1;
        } else if !changed {
            harmless += 1;
        } else {
            unreported.push(m.name());
        }
        let _ = std::fs::remove_dir_all(&copy);
    }
    println!(
        "tamper campaign: {tried} mutations tried of {} ({}), {detected} detected and reported, {harmless} harmless (everyone saw exactly what they saw before), {} showed less without saying why: {unreported:?}",
        all.len(),
        if full { "all" } else { "every third" },
        unreported.len()
    );
    assert!(tried > 20, "{tried} mutations applied");
}
