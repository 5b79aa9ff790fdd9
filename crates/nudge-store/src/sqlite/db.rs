//! [`Db`] on SQLite: every call does its work at once on the calling thread (the
//! writer, or a reader) and returns a ready future; shared code runs through
//! [`run_now`](crate::sql::run_now).

use super::*;
use crate::plan::Rules;
use crate::sql::{Arg, Cell, Db, SqlRow, sqlite_placeholders};
use rusqlite::types::{ToSqlOutput, ValueRef};
use std::cell::RefCell;
use std::future::{Future, ready};

/// A SQLite connection inside a transaction, with the writer's cache (readers pass
/// a cache of their own, used only for the rules).
pub(crate) struct SqliteDb<'a> {
    conn: &'a Connection,
    /// The writer's cache; `None` on a reader (which never needs it).
    cache: Option<RefCell<&'a mut IdCache>>,
}

impl<'a> SqliteDb<'a> {
    /// On the writer thread, inside a transaction.
    pub(crate) fn new(conn: &'a Connection, cache: &'a mut IdCache) -> Self {
        Self {
            conn,
            cache: Some(RefCell::new(cache)),
        }
    }

    /// On a read connection: reads only.
    pub(crate) fn read(conn: &'a Connection) -> Self {
        Self { conn, cache: None }
    }

    /// The connection.
    pub(crate) fn conn(&self) -> &'a Connection {
        self.conn
    }

    /// The writer's cache; `None` on a read connection.
    pub(crate) fn writer_cache(&self) -> Option<std::cell::RefMut<'_, &'a mut IdCache>> {
        self.cache.as_ref().map(RefCell::borrow_mut)
    }

    fn with_cache<T>(&self, f: impl FnOnce(&mut IdCache) -> Result<T>) -> Result<T> {
        match &self.cache {
            Some(cache) => f(&mut cache.borrow_mut()),
            None => Err(StoreError::Corrupt(
                "a write rule ran on a SQLite read connection".into(),
            )),
        }
    }
}

/// Runs shared storage code (`|db| future`) in one write transaction on the writer
/// thread: `sqlite_write!(self, |db| crate::shared::templates::create(db, new, now))`.
macro_rules! sqlite_write {
    ($store:expr, |$db:ident| $body:expr) => {
        $store
            .write(move |conn, cache| {
                let tx = conn.transaction()?;
                let out = {
                    let $db = &$crate::sqlite::db::SqliteDb::new(&tx, cache);
                    $crate::sql::run_now($body)?
                };
                tx.commit()?;
                Ok(out)
            })
            .await
    };
}
pub(crate) use sqlite_write;

/// Runs shared read-only storage code (`|db| future`) on a read connection.
macro_rules! sqlite_read {
    ($store:expr, |$db:ident| $body:expr) => {
        $store
            .read(move |conn| {
                let $db = &$crate::sqlite::db::SqliteDb::read(conn);
                $crate::sql::run_now($body)
            })
            .await
    };
}
pub(crate) use sqlite_read;

impl rusqlite::ToSql for Arg<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match *self {
            Arg::I64(v) => ToSqlOutput::from(v),
            Arg::OptI64(v) => v.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from),
            Arg::OptI32(v) => v.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from),
            Arg::OptF64(v) => v.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from),
            Arg::Bool(v) => ToSqlOutput::from(v),
            Arg::OptBool(v) => v.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from),
            Arg::Str(s) => ToSqlOutput::from(s),
            Arg::OptStr(s) => s.map_or(ToSqlOutput::from(rusqlite::types::Null), ToSqlOutput::from),
            Arg::Json(v) => ToSqlOutput::from(v.to_string()),
            Arg::OptJson(v) => v.map_or(ToSqlOutput::from(rusqlite::types::Null), |v| {
                ToSqlOutput::from(v.to_string())
            }),
        })
    }
}

fn cell(v: ValueRef<'_>) -> Cell {
    match v {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(i) => Cell::Int(i),
        ValueRef::Real(f) => Cell::Real(f),
        ValueRef::Text(t) | ValueRef::Blob(t) => Cell::Text(String::from_utf8_lossy(t).into_owned()),
    }
}

fn execute(conn: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
    let n = conn
        .prepare_cached(&sqlite_placeholders(sql))?
        .execute(rusqlite::params_from_iter(args.iter()))?;
    Ok(n as u64)
}

/// A row's values as cells (for decoders shared with PostgreSQL).
pub(super) fn row_cells(r: &rusqlite::Row) -> rusqlite::Result<SqlRow> {
    (0..r.as_ref().column_count())
        .map(|i| r.get_ref(i).map(cell))
        .collect::<rusqlite::Result<Vec<_>>>()
        .map(SqlRow)
}

fn query(conn: &Connection, sql: &str, args: &[Arg<'_>]) -> Result<Vec<SqlRow>> {
    let mut stmt = conn.prepare_cached(&sqlite_placeholders(sql))?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args.iter()), row_cells)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

impl Db for SqliteDb<'_> {
    fn execute(&self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = Result<u64>> + Send {
        ready(execute(self.conn, sql, args))
    }

    fn query(&self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = Result<Vec<SqlRow>>> + Send {
        ready(query(self.conn, sql, args))
    }

    fn execute_rows(
        &self,
        head: &str,
        width: usize,
        tail: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<()>> + Send {
        let run = || -> Result<()> {
            if args.is_empty() {
                return Ok(());
            }
            let marks: Vec<String> = (1..=width).map(|i| format!("?{i}")).collect();
            let mut stmt = self
                .conn
                .prepare_cached(&format!("{head} VALUES ({}) {tail}", marks.join(", ")))?;
            for row in args.chunks(width.max(1)) {
                stmt.execute(rusqlite::params_from_iter(row.iter()))?;
            }
            Ok(())
        };
        ready(run())
    }

    fn set_traits(&self, rows: &[(ContactId, &Value)], at: Millis) -> impl Future<Output = Result<()>> + Send {
        let run = || -> Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            let mut stmt = self
                .conn
                .prepare_cached("UPDATE contacts SET traits = ?2, updated_at = ?3 WHERE id = ?1")?;
            for (id, traits) in rows {
                stmt.execute(params![id, traits.to_string(), at])?;
            }
            Ok(())
        };
        ready(run())
    }

    fn set_scores(&self, rows: &[crate::sql::ScoresRow<'_>]) -> impl Future<Output = Result<()>> + Send {
        let run = || -> Result<()> {
            if rows.is_empty() {
                return Ok(());
            }
            let mut stmt = self.conn.prepare_cached(
                "UPDATE contacts SET scoring = ?2, score_due_at = ?3, traits = coalesce(json_patch(traits, ?4), traits),
                 updated_at = CASE WHEN ?4 IS NULL THEN updated_at ELSE ?5 END WHERE id = ?1",
            )?;
            for r in rows {
                let patch = r.patch.map(Value::to_string);
                stmt.execute(params![r.contact, r.scores, r.due, patch, r.at])?;
            }
            Ok(())
        };
        ready(run())
    }

    fn insert(&self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = Result<Option<i64>>> + Send {
        ready(execute(self.conn, sql, args).map(|n| (n > 0).then(|| self.conn.last_insert_rowid())))
    }

    fn update_row(
        &self,
        table: &str,
        sql: &str,
        args: &[Arg<'_>],
        columns: &str,
    ) -> impl Future<Output = Result<Option<SqlRow>>> + Send {
        let read = || -> Result<Option<SqlRow>> {
            if execute(self.conn, sql, args)? == 0 {
                return Ok(None);
            }
            let id = args.first().copied().unwrap_or(Arg::I64(0));
            let select = format!("SELECT {columns} FROM {table} WHERE id = $1");
            Ok(query(self.conn, &select, &[id])?.into_iter().next())
        };
        ready(read())
    }

    fn rules(&self) -> impl Future<Output = Result<Rules>> + Send {
        ready(self.with_cache(|cache| exec::rules(self.conn, cache)))
    }

    fn current_id(&self, id: ContactId) -> impl Future<Output = Result<ContactId>> + Send {
        ready(current_id(self.conn, id))
    }

    fn load_contact(&self, id: ContactId) -> impl Future<Output = Result<Option<Contact>>> + Send {
        ready(load_contact(self.conn, id))
    }

    fn save_contact(&self, contact: &Contact) -> impl Future<Output = Result<()>> + Send {
        ready(save_contact(self.conn, contact))
    }

    fn mark_dirty(&self, contact: ContactId) -> impl Future<Output = Result<()>> + Send {
        ready(self.with_cache(|cache| segments::mark_dirty(self.conn, cache, contact)))
    }

    fn for_update(&self) -> &'static str {
        ""
    }

    fn delete_contact_events(&self) -> &'static str {
        "DELETE FROM events WHERE contact_id = $1"
    }

    fn insert_event(&self) -> &'static str {
        "INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
         VALUES ($1, $2, 'track', $3, $4, $4, $5, '{\"source\":\"nudge\"}') ON CONFLICT DO NOTHING"
    }

    fn message_id_table(&self) -> &'static str {
        "events"
    }

    fn for_share(&self) -> &'static str {
        ""
    }

    fn lock_table(&self, _table: &str) -> impl Future<Output = Result<()>> + Send {
        ready(Ok(()))
    }

    fn notify(&self, _channel: &str, _payload: &str) -> impl Future<Output = Result<()>> + Send {
        ready(Ok(()))
    }
}
