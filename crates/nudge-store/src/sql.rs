//! One SQL surface for both backends, so a storage rule and the statements that
//! carry it out are written once ([`Db`]).
//!
//! Shared code is `async` and generic over [`Db`]. On PostgreSQL it awaits real
//! round trips. On SQLite every [`Db`] method does its work at once on the writer
//! thread (or a reader) and returns a ready future, so [`run_now`] finishes the whole
//! shared function in one poll: no executor, no thread hop, the same cost as calling
//! rusqlite directly.
//!
//! Statements use PostgreSQL's numbered placeholders (`$1`); SQLite reads them as its
//! own numbered ones (`?1`). JSON columns are `jsonb` on PostgreSQL and text on SQLite;
//! [`Arg::Json`] and [`SqlRow::json`] hide the difference.
//!
//! Architecture invariant: only statements both dialects accept go through here;
//! dialect-specific statements (arrays, `SKIP LOCKED`) stay in the backends, behind
//! named primitives where shared code needs them (`Db`'s own, and ingestion's bulk
//! reads and writes, `shared::ingest::Ingest`).

use crate::plan::Rules;
use crate::{Result, StoreError};
use nudge_core::{Contact, ContactId};
use serde_json::Value;
use std::future::Future;

/// A statement parameter.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Arg<'a> {
    I64(i64),
    OptI64(Option<i64>),
    /// An `INTEGER` (4-byte on PostgreSQL) column.
    OptI32(Option<i32>),
    OptF64(Option<f64>),
    Bool(bool),
    /// A boolean column, or `NULL`.
    OptBool(Option<bool>),
    Str(&'a str),
    OptStr(Option<&'a str>),
    Json(&'a Value),
    /// A JSON column, or `NULL`.
    OptJson(Option<&'a Value>),
}

/// One value of a result row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Json(Value),
}

/// A result row, read by position with the type the caller expects.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SqlRow(pub Vec<Cell>);

/// One contact's row of [`Db::set_scores`].
pub(crate) struct ScoresRow<'a> {
    pub contact: ContactId,
    /// `contacts.scoring` ([`crate::scoring::ScoreRows::column`]).
    pub scores: Option<String>,
    /// `contacts.score_due_at`.
    pub due: Option<nudge_core::Millis>,
    /// The score traits that changed (a JSON object merged into the contact's
    /// traits), if any.
    pub patch: Option<&'a Value>,
    pub at: nudge_core::Millis,
}

/// [`SqlRow::numbers_of`]'s reader: the wanted keys' values parsed, the others
/// skipped.
struct Numbers<'a>(&'a std::collections::BTreeMap<String, String>);

impl<'de> serde::de::DeserializeSeed<'de> for Numbers<'_> {
    type Value = std::collections::BTreeMap<String, f64>;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> std::result::Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Numbers<'_> {
    type Value = std::collections::BTreeMap<String, f64>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> std::result::Result<Self::Value, A::Error> {
        let mut out = std::collections::BTreeMap::new();
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match self.0.get(key.as_ref()) {
                Some(name) => {
                    if let Some(n) = map.next_value::<Value>()?.as_f64() {
                        out.insert(name.clone(), n);
                    }
                }
                None => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

/// An object's key, borrowed from the text unless it has escapes.
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

impl SqlRow {
    fn cell(&self, i: usize) -> Result<&Cell> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {i} in a result row")))
    }

    fn wrong(&self, i: usize, want: &str) -> StoreError {
        StoreError::Corrupt(format!("column {i}: expected {want}, found {:?}", self.0.get(i)))
    }

    pub fn i64(&self, i: usize) -> Result<i64> {
        self.opt_i64(i)?.ok_or_else(|| self.wrong(i, "an integer"))
    }

    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            Cell::Bool(b) => Ok(Some(*b as i64)),
            _ => Err(self.wrong(i, "an integer")),
        }
    }

    pub fn opt_f64(&self, i: usize) -> Result<Option<f64>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Real(v) => Ok(Some(*v)),
            Cell::Int(v) => Ok(Some(*v as f64)),
            _ => Err(self.wrong(i, "a number")),
        }
    }

    pub fn opt_bool(&self, i: usize) -> Result<Option<bool>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            _ => self.bool(i).map(Some),
        }
    }

    pub fn bool(&self, i: usize) -> Result<bool> {
        match self.cell(i)? {
            Cell::Bool(b) => Ok(*b),
            Cell::Int(v) => Ok(*v != 0),
            _ => Err(self.wrong(i, "a boolean")),
        }
    }

    pub fn string(&self, i: usize) -> Result<String> {
        self.opt_string(i)?.ok_or_else(|| self.wrong(i, "text"))
    }

    pub fn opt_string(&self, i: usize) -> Result<Option<String>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            _ => Err(self.wrong(i, "text")),
        }
    }

    /// A JSON column (`jsonb`, or JSON text on SQLite).
    pub fn json(&self, i: usize) -> Result<Value> {
        self.opt_json(i)?.ok_or_else(|| self.wrong(i, "JSON"))
    }

    /// A contact's `traits` column: a JSON object.
    pub fn traits(&self, i: usize) -> Result<serde_json::Map<String, Value>> {
        match self.json(i)? {
            Value::Object(m) => Ok(m),
            other => Err(crate::StoreError::Corrupt(format!("contact traits: {other}"))),
        }
    }

    /// The numbers under some keys of a JSON object column (`wanted`: key → the name
    /// to answer it under), without building the rest of the object (a contact's
    /// score traits, among all its traits). A key that is missing or not a number is
    /// left out.
    pub fn numbers_of(
        &self,
        i: usize,
        wanted: &std::collections::BTreeMap<String, String>,
    ) -> Result<std::collections::BTreeMap<String, f64>> {
        match self.cell(i)? {
            Cell::Null => Ok(Default::default()),
            Cell::Json(Value::Object(m)) => Ok(wanted
                .iter()
                .filter_map(|(key, name)| Some((name.clone(), m.get(key)?.as_f64()?)))
                .collect()),
            Cell::Text(s) => {
                use serde::de::DeserializeSeed;
                let mut de = serde_json::Deserializer::from_str(s);
                let out = Numbers(wanted)
                    .deserialize(&mut de)
                    .and_then(|out| de.end().map(|()| out))
                    .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}")))?;
                Ok(out)
            }
            _ => Err(self.wrong(i, "a JSON object")),
        }
    }

    pub fn opt_json(&self, i: usize) -> Result<Option<Value>> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Json(v) => Ok(Some(v.clone())),
            Cell::Text(s) => serde_json::from_str(s)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("column {i}: {e}"))),
            _ => Err(self.wrong(i, "JSON")),
        }
    }
}

/// A connection or transaction of either backend, and the few primitives whose SQL
/// differs between them. All shared storage code is written against this.
pub(crate) trait Db {
    /// Runs a statement; how many rows it changed.
    fn execute(&self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = Result<u64>> + Send;
    /// Runs a query; its rows.
    fn query(&self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = Result<Vec<SqlRow>>> + Send;
    /// Runs an `INSERT` of one row into a table whose `id` is its integer key: the new
    /// id, or `None` when a conflict clause inserted nothing. PostgreSQL appends
    /// `RETURNING id`; SQLite reads its last rowid (its `RETURNING` costs a statement
    /// journal and an ephemeral table on every statement).
    fn insert(&self, sql: &str, args: &[Arg<'_>]) -> impl Future<Output = Result<Option<i64>>> + Send;
    /// Runs an `UPDATE ... WHERE id = $1` of one row of `table` and reads the row's
    /// `columns` after it (`None` if no row changed): `RETURNING` on PostgreSQL, the
    /// update then a select by id on SQLite (see [`Db::insert`]).
    fn update_row(
        &self,
        table: &str,
        sql: &str,
        args: &[Arg<'_>],
        columns: &str,
    ) -> impl Future<Output = Result<Option<SqlRow>>> + Send;
    /// Runs `{head} VALUES (...) {tail}` for many rows: `args` hold `width` values per
    /// row, and neither `head` nor `tail` has placeholders. SQLite runs the one-row
    /// statement, prepared once, for each row (in process, that is cheaper than
    /// writing and preparing a statement per number of rows); PostgreSQL sends the
    /// rows in multi-row statements ([`ROWS_PER_STATEMENT`] at most each: one round
    /// trip per statement).
    fn execute_rows(
        &self,
        head: &str,
        width: usize,
        tail: &str,
        args: &[Arg<'_>],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stores contacts' traits alone, each `(contact, its whole traits object)` (each
    /// contact once), updated `at`: [`crate::plan::Op::SetTraits`] for many contacts
    /// at once. One statement over arrays on PostgreSQL; the one-row statement,
    /// prepared once, for each contact on SQLite.
    fn set_traits(
        &self,
        rows: &[(ContactId, &Value)],
        at: nudge_core::Millis,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Stores contacts' scores ([`crate::plan::Op::SetScores`]) in their rows, each
    /// contact once: the scores column, the earliest decay timer and, where given, the
    /// whole traits (then also `updated_at`). One statement over arrays on PostgreSQL;
    /// the one-row statement, prepared once, for each contact on SQLite.
    fn set_scores(&self, rows: &[ScoresRow<'_>]) -> impl Future<Output = Result<()>> + Send;
    /// What the rules read (journey event names, the segment index).
    fn rules(&self) -> impl Future<Output = Result<Rules>> + Send;
    /// The id a (possibly merged-away) contact id stands for today.
    fn current_id(&self, id: ContactId) -> impl Future<Output = Result<ContactId>> + Send;
    /// A contact, its row locked until the transaction ends where the backend locks.
    fn load_contact(&self, id: ContactId) -> impl Future<Output = Result<Option<Contact>>> + Send;
    fn save_contact(&self, contact: &Contact) -> impl Future<Output = Result<()>> + Send;
    /// Marks a contact for segment re-evaluation.
    fn mark_dirty(&self, contact: ContactId) -> impl Future<Output = Result<()>> + Send;
    /// Holds `table` against concurrent inserts until the transaction ends, for a
    /// check-then-insert (a unique name): PostgreSQL locks the table; SQLite's single
    /// writer already excludes everyone.
    fn lock_table(&self, table: &str) -> impl Future<Output = Result<()>> + Send;
    /// What a `SELECT` appends to lock the rows it reads until the transaction ends
    /// (` FOR UPDATE` on PostgreSQL; nothing on SQLite, whose single writer already
    /// holds the database).
    fn for_update(&self) -> &'static str;
    /// What a `SELECT` appends to keep the rows it reads from changing or going away
    /// until the transaction ends, while other readers may lock them too (` FOR SHARE`
    /// on PostgreSQL; nothing on SQLite).
    fn for_share(&self) -> &'static str;
    /// The statement deleting the events of contact `$1`, forgetting their message
    /// ids where the backend keeps them apart from the events (PostgreSQL's
    /// `event_message_ids`, migration 30), so a retried message is new again as the
    /// events' unique index made it on SQLite.
    fn delete_contact_events(&self) -> &'static str;
    /// The statement recording a timeline event unless its message id is stored:
    /// `$1` message id, `$2` contact, `$3` name, `$4` time (and received time), `$5`
    /// properties; type `track`, context `{"source":"nudge"}`. Inserts one row or
    /// none (add `RETURNING`). PostgreSQL claims the id in `event_message_ids` in the
    /// same statement (migration 30); SQLite's unique index skips a stored id.
    fn insert_event(&self) -> &'static str;
    /// The table whose `message_id` says whether an event with that id is stored:
    /// `event_message_ids` on PostgreSQL (migration 30), `events` on SQLite.
    fn message_id_table(&self) -> &'static str;
    /// Tells the other processes on this database, when the transaction commits, that
    /// something changed (`payload` on `channel`): PostgreSQL's `pg_notify`; nothing on
    /// SQLite, where one process owns the database. See [`crate::live`].
    fn notify(&self, channel: &str, payload: &str) -> impl Future<Output = Result<()>> + Send;
}

/// The first row of a query, if any.
pub(crate) async fn first<D: Db>(db: &D, sql: &str, args: &[Arg<'_>]) -> Result<Option<SqlRow>> {
    Ok(db.query(sql, args).await?.into_iter().next())
}

/// The first row of a query, decoded.
pub(crate) async fn one<D: Db, T>(
    db: &D,
    sql: &str,
    args: &[Arg<'_>],
    decode: impl Fn(&SqlRow) -> Result<T>,
) -> Result<Option<T>> {
    first(db, sql, args).await?.as_ref().map(decode).transpose()
}

/// Every row of a query, decoded.
pub(crate) async fn all<D: Db, T>(
    db: &D,
    sql: &str,
    args: &[Arg<'_>],
    decode: impl Fn(&SqlRow) -> Result<T>,
) -> Result<Vec<T>> {
    db.query(sql, args).await?.iter().map(decode).collect()
}

/// Finishes a shared function whose every [`Db`] call is ready at once (SQLite's): one
/// poll, no executor.
pub(crate) fn run_now<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f
        .as_mut()
        .poll(&mut std::task::Context::from_waker(std::task::Waker::noop()))
    {
        std::task::Poll::Ready(out) => out,
        // Every SQLite `Db` method returns a ready future, so this cannot happen
        // unless shared code awaits something else (a bug caught by every test).
        std::task::Poll::Pending => panic!("a SQLite storage function awaited something that was not ready"),
    }
}

/// `$1` → `?1`: SQLite's numbered parameters (a `$` not followed by a digit stays).
/// Rows one statement of [`Db::execute_rows`] carries at most on PostgreSQL.
pub(crate) const ROWS_PER_STATEMENT: usize = 200;

/// `($1, $2, ...), ($k+1, ...)`: `rows` rows of `width` placeholders.
pub(crate) fn values_list(rows: usize, width: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(rows * width * 6);
    for r in 0..rows {
        out.push_str(if r == 0 { "(" } else { ", (" });
        for c in 1..=width {
            let _ = write!(out, "{}${}", if c == 1 { "" } else { ", " }, r * width + c);
        }
        out.push(')');
    }
    out
}

pub(crate) fn sqlite_placeholders(sql: &str) -> std::borrow::Cow<'_, str> {
    if !sql.contains('$') {
        return std::borrow::Cow::Borrowed(sql);
    }
    // Runs for every statement on the writer: copy the text between placeholders in
    // slices rather than a character at a time.
    let bytes = sql.as_bytes();
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0;
    for (i, _) in sql.match_indices('$') {
        if bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            out.push_str(&sql[copied..i]);
            out.push('?');
            copied = i + 1;
        }
    }
    out.push_str(&sql[copied..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_columns_numbers_are_read_without_the_rest() {
        let wanted: std::collections::BTreeMap<String, String> = [
            ("lead_score".to_string(), "lead_score".to_string()),
            ("fit_score".to_string(), "fit".to_string()),
            ("x_score".to_string(), "x".to_string()),
            ("odd\"key".to_string(), "odd".to_string()),
        ]
        .into();
        let text = r#"{"name": "Ada", "lead_score": 12.5, "nested": {"lead_score": 99, "a": [1, {"b": null}]},
                       "fit_score": "high", "odd\"key": 3, "tags": ["x_score"]}"#;
        let expected: std::collections::BTreeMap<String, f64> =
            [("lead_score".to_string(), 12.5), ("odd".to_string(), 3.0)].into();
        let row = SqlRow(vec![Cell::Text(text.into())]);
        assert_eq!(
            row.numbers_of(0, &wanted).unwrap(),
            expected,
            "a non-number and a nested key left out"
        );
        // PostgreSQL hands the object over parsed: the same answer.
        let row = SqlRow(vec![Cell::Json(serde_json::from_str(text).unwrap())]);
        assert_eq!(row.numbers_of(0, &wanted).unwrap(), expected);
        assert!(SqlRow(vec![Cell::Null]).numbers_of(0, &wanted).unwrap().is_empty());
        for bad in [r#"{"lead_score": 1"#, "[1]", r#"{"a": 1} x"#] {
            assert!(
                SqlRow(vec![Cell::Text(bad.into())]).numbers_of(0, &wanted).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn multi_row_statements_number_their_rows_placeholders() {
        assert_eq!(values_list(1, 3), "($1, $2, $3)");
        assert_eq!(values_list(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(values_list(0, 2), "");
    }

    #[test]
    fn rows_read_what_either_backend_returns() {
        let row = SqlRow(vec![
            Cell::Int(3),
            Cell::Null,
            Cell::Text("{\"a\":1}".into()),
            Cell::Json(serde_json::json!({"a": 1})),
            Cell::Int(1),
            Cell::Bool(true),
        ]);
        assert_eq!(row.i64(0).unwrap(), 3);
        assert_eq!(row.opt_i64(1).unwrap(), None);
        assert_eq!(row.json(2).unwrap(), row.json(3).unwrap());
        assert!(row.bool(4).unwrap() && row.bool(5).unwrap());
        assert!(row.string(0).is_err());
        assert!(row.i64(9).is_err());
    }

    #[test]
    fn placeholders_become_numbered_sqlite_ones() {
        assert_eq!(sqlite_placeholders("a = $1 AND b = $12"), "a = ?1 AND b = ?12");
        assert_eq!(sqlite_placeholders("a = 1"), "a = 1");
        assert_eq!(sqlite_placeholders("'$.x' = $2"), "'$.x' = ?2");
    }
}
