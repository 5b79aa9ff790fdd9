//! Moving a workspace from embedded SQLite to PostgreSQL (`nudge migrate-to`): every
//! table of the PostgreSQL schema that the SQLite database also has is copied, in one
//! PostgreSQL transaction, from one SQLite read transaction (one moment); sequences
//! continue after the copied ids; then the copy is checked — equal row counts per
//! table, and a sample of contacts (with their events) read through both stores
//! equal.
//!
//! The target must be empty (no table in its schema): the copy migrates it first,
//! then fills each table the SQLite database has in place of what the migrations
//! seeded there. Sealed secrets are copied as
//! they are: the PostgreSQL nodes need the SQLite workspace's master key.
//!
//! Values go over as text and are cast by PostgreSQL to the column's type (integers,
//! booleans stored by SQLite as 0/1, doubles written in their shortest exact form,
//! JSON); a column of another type is an error naming it.

use crate::secrets::Keyring;
use crate::{EventQuery, PgStore, Result, SqliteStore, Store, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Columns PostgreSQL keeps that SQLite derives when it reads, with the statement
/// that fills them after the copy. Any other PostgreSQL column without a SQLite
/// counterpart stops the copy (a new one needs its rule here).
const DERIVED: &[(&str, &str, &str)] = &[(
    "contacts",
    "last_seen_at",
    // SQLite reads a contact's last_seen_at as its latest event's time.
    "UPDATE contacts c SET last_seen_at = (SELECT max(e.timestamp) FROM events e WHERE e.contact_id = c.id)",
)];

/// Tables PostgreSQL keeps that SQLite does not, with the statement that fills them
/// after the copy from what was copied (the same number of rows as the table named).
const DERIVED_TABLES: &[(&str, &str, &str)] = &[(
    "event_message_ids",
    "events",
    // PostgreSQL claims every stored event's message id there (migration 30); the
    // copied events' ids are unique, as SQLite's unique index kept them.
    "INSERT INTO event_message_ids (message_id) SELECT message_id FROM events",
)];

/// Rows sent to PostgreSQL per statement.
const CHUNK: usize = 2000;
/// Contacts compared through both stores after the copy.
const SAMPLE: usize = 100;

/// What the copy did and checked.
#[derive(Debug, Clone, Default)]
pub struct CopyReport {
    /// Rows per table, equal on both sides.
    pub tables: BTreeMap<String, u64>,
    /// PostgreSQL tables the SQLite database does not have (left as the migrations
    /// made them).
    pub missing: Vec<String>,
    /// Contacts compared (with their events) and found equal.
    pub sampled_contacts: usize,
}

struct Column {
    name: String,
    cast: &'static str,
}

/// Copies the SQLite database at `sqlite` into the empty PostgreSQL database at
/// `pg_url`, then checks the copy (see the module documentation). `ring` opens the
/// workspace's secrets (both stores check them at open).
pub async fn sqlite_to_postgres(sqlite: &Path, pg_url: &str, ring: Keyring) -> Result<CopyReport> {
    if !sqlite.is_file() {
        return Err(StoreError::Conflict(format!(
            "no SQLite database at {}",
            sqlite.display()
        )));
    }
    let pg = connect(pg_url).await?;
    let existing: i64 = pg
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()",
            &[],
        )
        .await?
        .get(0);
    if existing > 0 {
        return Err(StoreError::Conflict(format!(
            "the PostgreSQL database is not empty ({existing} tables in its schema): migrate-to copies into an empty database"
        )));
    }
    // The SQLite side is migrated to this Nudge's schema (and its secrets checked)
    // before anything is read from it.
    SqliteStore::open_with(sqlite, ring.clone()).await?.close().await;
    PgStore::connect_with(pg_url, ring.clone()).await?.close().await;

    let tables = target_tables(&pg).await?;
    let src = Connection::open_with_flags(sqlite, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    src.busy_timeout(std::time::Duration::from_secs(30))?;
    src.execute_batch("BEGIN")?;
    unmatched_tables(&src, &tables)?;
    let mut report = CopyReport::default();
    let mut pg = pg;
    let tx = pg.transaction().await?;
    for (table, columns) in &tables {
        let have: BTreeSet<String> = {
            let mut stmt = src.prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?;
            stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
        };
        if have.is_empty() {
            if !DERIVED_TABLES.iter().any(|(t, _, _)| t == table) {
                report.missing.push(table.clone());
            }
            continue;
        }
        // What the migrations seeded is replaced by what the workspace has (the
        // tables referencing this one come later, so the cascade empties nothing
        // copied).
        tx.batch_execute(&format!("TRUNCATE {} CASCADE", quote(table))).await?;
        for c in columns.iter().filter(|c| !have.contains(&c.name)) {
            if !DERIVED.iter().any(|(t, name, _)| t == table && *name == c.name) {
                return Err(StoreError::Conflict(format!(
                    "the PostgreSQL column {table}.{} has no SQLite counterpart and no rule to fill it",
                    c.name
                )));
            }
        }
        let columns: Vec<&Column> = columns.iter().filter(|c| have.contains(&c.name)).collect();
        let list = columns.iter().map(|c| quote(&c.name)).collect::<Vec<_>>().join(", ");
        let unnest = (1..=columns.len())
            .map(|i| format!("${i}::text[]"))
            .collect::<Vec<_>>()
            .join(", ");
        let casts = columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("c{i}::{}", c.cast))
            .collect::<Vec<_>>()
            .join(", ");
        let aliases = (0..columns.len())
            .map(|i| format!("c{i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let insert = format!(
            "INSERT INTO {} ({list}) SELECT {casts} FROM unnest({unnest}) AS u({aliases})",
            quote(table)
        );
        let mut stmt = src.prepare(&format!("SELECT {list} FROM {}", quote(table)))?;
        let mut rows = stmt.query([])?;
        let mut chunk: Vec<Vec<Option<String>>> = vec![Vec::new(); columns.len()];
        let mut copied = 0u64;
        while let Some(row) = rows.next()? {
            for (i, c) in columns.iter().enumerate() {
                chunk[i].push(as_text(table, c, row.get_ref(i)?)?);
            }
            copied += 1;
            if chunk[0].len() == CHUNK {
                send(&tx, &insert, &mut chunk).await?;
            }
        }
        if !chunk[0].is_empty() {
            send(&tx, &insert, &mut chunk).await?;
        }
        let counted: i64 = src.query_row(&format!("SELECT count(*) FROM {}", quote(table)), [], |r| r.get(0))?;
        if counted as u64 != copied {
            return Err(StoreError::Corrupt(format!("{table}: read {copied} rows of {counted}")));
        }
        report.tables.insert(table.clone(), copied);
    }
    for (_, _, fill) in DERIVED {
        tx.batch_execute(fill).await?;
    }
    for (table, from, fill) in DERIVED_TABLES {
        if let Some(&rows) = report.tables.get(*from) {
            tx.batch_execute(&format!("TRUNCATE {}", quote(table))).await?;
            tx.batch_execute(fill).await?;
            report.tables.insert(table.to_string(), rows);
        }
    }
    // Ids made from now on continue after the copied ones.
    let sequences = tx
        .query(
            "SELECT table_name::text, column_name::text FROM information_schema.columns
             WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'",
            &[],
        )
        .await?;
    for row in sequences {
        let (table, column): (String, String) = (row.get(0), row.get(1));
        tx.execute(
            &format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), GREATEST(COALESCE(max({c}), 0), 1), max({c}) IS NOT NULL) FROM {t}",
                c = quote(&column),
                t = quote(&table)
            ),
            &[&quote(&table), &column],
        )
        .await?;
    }
    tx.commit().await?;
    src.execute_batch("COMMIT")?;

    // The check: counts read again on PostgreSQL, and contacts through both stores.
    for (table, rows) in &report.tables {
        let counted: i64 = pg
            .query_one(&format!("SELECT count(*) FROM {}", quote(table)), &[])
            .await?
            .get(0);
        if counted as u64 != *rows {
            return Err(StoreError::Corrupt(format!(
                "{table}: {rows} rows in SQLite, {counted} in PostgreSQL after the copy"
            )));
        }
    }
    report.sampled_contacts = compare_contacts(&src, sqlite, pg_url, ring).await?;
    Ok(report)
}

/// Refuses when the SQLite database has rows in a table PostgreSQL does not (they
/// would be left behind). Full-text tables and their shadow tables are SQLite's own.
fn unmatched_tables(src: &Connection, tables: &[(String, Vec<Column>)]) -> Result<()> {
    let all: Vec<(String, String)> = {
        let mut stmt = src.prepare("SELECT name, coalesce(sql, '') FROM sqlite_master WHERE type = 'table'")?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?
    };
    let virtual_tables: Vec<&str> = all
        .iter()
        .filter(|(_, sql)| sql.to_ascii_uppercase().starts_with("CREATE VIRTUAL"))
        .map(|(n, _)| n.as_str())
        .collect();
    for (name, _) in &all {
        let own = name.starts_with("sqlite_")
            || name == "schema_migrations"
            || virtual_tables
                .iter()
                .any(|v| name == v || name.starts_with(&format!("{v}_")));
        if own || tables.iter().any(|(t, _)| t == name) {
            continue;
        }
        let rows: i64 = src.query_row(&format!("SELECT count(*) FROM {}", quote(name)), [], |r| r.get(0))?;
        if rows > 0 {
            return Err(StoreError::Conflict(format!(
                "the SQLite table {name} ({rows} rows) has no PostgreSQL counterpart: this Nudge cannot copy it"
            )));
        }
    }
    Ok(())
}

/// Up to [`SAMPLE`] contacts spread over the ids, each with its first 1,000 events,
/// read through both stores: they must be equal.
async fn compare_contacts(src: &Connection, sqlite: &Path, pg_url: &str, ring: Keyring) -> Result<usize> {
    let ids: Vec<i64> = {
        let mut stmt = src.prepare("SELECT id FROM contacts ORDER BY id")?;
        stmt.query_map([], |r| r.get(0))?.collect::<rusqlite::Result<_>>()?
    };
    let sample: Vec<i64> = if ids.len() <= SAMPLE {
        ids
    } else {
        (0..SAMPLE).map(|i| ids[i * ids.len() / SAMPLE]).collect()
    };
    let from: std::sync::Arc<dyn Store> = std::sync::Arc::new(SqliteStore::open_with(sqlite, ring.clone()).await?);
    let to: std::sync::Arc<dyn Store> = std::sync::Arc::new(PgStore::connect_with(pg_url, ring).await?);
    let query = EventQuery {
        before: None,
        limit: 1000,
    };
    let mut result = Ok(sample.len());
    for id in &sample {
        let profile = differing_fields(&from.contact(*id).await?, &to.contact(*id).await?);
        let (ea, eb) = (
            from.contact_events(*id, &query).await?.items,
            to.contact_events(*id, &query).await?.items,
        );
        let events = if ea.len() != eb.len() {
            vec![format!("{} events against {}", ea.len(), eb.len())]
        } else {
            ea.iter()
                .zip(&eb)
                .find_map(|(x, y)| {
                    let fields = differing_fields(x, y);
                    (!fields.is_empty()).then(|| format!("event {}: {}", x.message_id, fields.join(", ")))
                })
                .into_iter()
                .collect()
        };
        if !profile.is_empty() || !events.is_empty() {
            result = Err(StoreError::Corrupt(format!(
                "contact {id} differs between SQLite and PostgreSQL after the copy: {}",
                profile.into_iter().chain(events).collect::<Vec<_>>().join("; ")
            )));
            break;
        }
    }
    from.close().await;
    to.close().await;
    result
}

/// The names of the fields whose values differ (JSON objects compared key by key,
/// whatever their order).
fn differing_fields<T: serde::Serialize>(a: &T, b: &T) -> Vec<String> {
    let (a, b) = (serde_json::to_value(a), serde_json::to_value(b));
    match (a, b) {
        (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) => a
            .keys()
            .chain(b.keys().filter(|k| !a.contains_key(*k)))
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect(),
        (Ok(a), Ok(b)) if a == b => Vec::new(),
        _ => vec!["the whole value".into()],
    }
}

/// The tables of the target schema with the columns to fill (generated ones left
/// out), those referenced by others first.
async fn target_tables(pg: &tokio_postgres::Client) -> Result<Vec<(String, Vec<Column>)>> {
    let rows = pg
        .query(
            "SELECT c.table_name::text, c.column_name::text, c.data_type::text
             FROM information_schema.columns c
             JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
               AND c.is_generated = 'NEVER' AND c.table_name <> 'schema_migrations'
               -- A partition's rows are copied through its table (events, migration 30).
               AND c.table_name NOT IN (SELECT p.relname FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                                        WHERE p.relnamespace = current_schema()::regnamespace)
             ORDER BY c.table_name, c.ordinal_position",
            &[],
        )
        .await?;
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in rows {
        let (table, name, ty): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        let cast = match ty.as_str() {
            "bigint" => "bigint",
            "integer" => "integer",
            "smallint" => "smallint",
            "boolean" => "boolean",
            "double precision" => "double precision",
            "real" => "real",
            "numeric" => "numeric",
            "jsonb" => "jsonb",
            "json" => "json",
            "text" | "character varying" => "text",
            other => {
                return Err(StoreError::Conflict(format!(
                    "{table}.{name}: migrate-to does not copy columns of type {other}"
                )));
            }
        };
        tables.entry(table).or_default().push(Column { name, cast });
    }
    let edges = pg
        .query(
            "SELECT conrelid::regclass::text, confrelid::regclass::text FROM pg_constraint
             WHERE contype = 'f' AND connamespace = current_schema()::regnamespace",
            &[],
        )
        .await?;
    let refs: Vec<(String, String)> = edges.iter().map(|r| (unquote(r.get(0)), unquote(r.get(1)))).collect();
    // Referenced tables first: repeatedly take the tables whose references are placed.
    let mut ordered = Vec::new();
    let mut placed = BTreeSet::new();
    while !tables.is_empty() {
        let ready: Vec<String> = tables
            .keys()
            .filter(|t| {
                refs.iter()
                    .filter(|(from, to)| from == *t && to != *t)
                    .all(|(_, to)| placed.contains(to) || !tables.contains_key(to))
            })
            .cloned()
            .collect();
        if ready.is_empty() {
            return Err(StoreError::Conflict("the schema's foreign keys form a cycle".into()));
        }
        for t in ready {
            let columns = tables.remove(&t).unwrap_or_default();
            placed.insert(t.clone());
            ordered.push((t, columns));
        }
    }
    Ok(ordered)
}

async fn send(tx: &tokio_postgres::Transaction<'_>, insert: &str, chunk: &mut [Vec<Option<String>>]) -> Result<()> {
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = chunk
        .iter()
        .map(|c| c as &(dyn tokio_postgres::types::ToSql + Sync))
        .collect();
    tx.execute(insert, &params).await?;
    for c in chunk.iter_mut() {
        c.clear();
    }
    Ok(())
}

/// A SQLite value as the text PostgreSQL casts to the column's type.
fn as_text(table: &str, column: &Column, value: ValueRef<'_>) -> Result<Option<String>> {
    Ok(match value {
        ValueRef::Null => None,
        ValueRef::Integer(i) if column.cast == "boolean" => Some((i != 0).to_string()),
        ValueRef::Integer(i) => Some(i.to_string()),
        // Rust writes the shortest text that reads back as the same double.
        ValueRef::Real(f) => Some(f.to_string()),
        ValueRef::Text(t) => Some(
            std::str::from_utf8(t)
                .map_err(|_| StoreError::Corrupt(format!("{table}.{}: text that is not UTF-8", column.name)))?
                .to_string(),
        ),
        ValueRef::Blob(_) => {
            return Err(StoreError::Conflict(format!(
                "{table}.{}: a blob, which migrate-to does not copy",
                column.name
            )));
        }
    })
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn unquote(name: String) -> String {
    name.trim_matches('"').to_string()
}

async fn connect(url: &str) -> Result<tokio_postgres::Client> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}
