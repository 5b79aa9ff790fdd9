//! [`Db`] on PostgreSQL: statements are prepared once per connection (deadpool's
//! statement cache) and awaited.

use super::*;
use crate::plan::Rules;
use crate::sql::{Arg, Cell, Db, SqlRow};
use bytes::BytesMut;
use std::future::Future;
use tokio_postgres::types::{IsNull, ToSql, Type};

/// A PostgreSQL client or transaction. In a transaction, contacts are loaded with
/// their row locked (`lock`), as read-modify-write needs.
pub(crate) struct PgDb<'a, C> {
    pub(super) c: &'a C,
    lock: bool,
}

impl<'a, C: GenericClient + Sync> PgDb<'a, C> {
    /// For a write transaction: contacts are locked when loaded.
    pub(crate) fn tx(c: &'a C) -> Self {
        Self { c, lock: true }
    }

    /// For reads outside a transaction.
    pub(crate) fn read(c: &'a C) -> Self {
        Self { c, lock: false }
    }
}

/// Runs shared storage code (`|db| future`) in one transaction:
/// `pg_write!(self, |db| crate::shared::templates::create(db, new, now))`.
macro_rules! pg_write {
    ($store:expr, |$db:ident| $body:expr) => {{
        let mut client = $store.client().await?;
        let tx = client.transaction().await?;
        let out = {
            let $db = &$crate::postgres::db::PgDb::tx(&tx);
            $body.await?
        };
        tx.commit().await?;
        Ok(out)
    }};
}
pub(crate) use pg_write;

/// Runs shared read-only storage code (`|db| future`) on a pooled connection.
macro_rules! pg_read {
    ($store:expr, |$db:ident| $body:expr) => {{
        let client = $store.client().await?;
        let $db = &$crate::postgres::db::PgDb::read(&client);
        $body.await
    }};
}
pub(crate) use pg_read;

impl ToSql for Arg<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Arg::I64(v) => v.to_sql(ty, out),
            Arg::OptI64(v) => v.to_sql(ty, out),
            Arg::OptI32(v) => v.to_sql(ty, out),
            Arg::OptF64(v) => v.to_sql(ty, out),
            Arg::Bool(v) => v.to_sql(ty, out),
            Arg::OptBool(v) => v.to_sql(ty, out),
            Arg::Str(v) => v.to_sql(ty, out),
            Arg::OptStr(v) => v.to_sql(ty, out),
            Arg::Json(v) => v.to_sql(ty, out),
            Arg::OptJson(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql_checked` below, by the type it holds.
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Arg::I64(v) => v.to_sql_checked(ty, out),
            Arg::OptI64(v) => v.to_sql_checked(ty, out),
            Arg::OptI32(v) => v.to_sql_checked(ty, out),
            Arg::OptF64(v) => v.to_sql_checked(ty, out),
            Arg::Bool(v) => v.to_sql_checked(ty, out),
            Arg::OptBool(v) => v.to_sql_checked(ty, out),
            Arg::Str(v) => v.to_sql_checked(ty, out),
            Arg::OptStr(v) => v.to_sql_checked(ty, out),
            Arg::Json(v) => v.to_sql_checked(ty, out),
            Arg::OptJson(v) => v.to_sql_checked(ty, out),
        }
    }
}

/// A row's values as cells (for decoders shared with SQLite).
pub(super) fn cells(r: &tokio_postgres::Row) -> Result<SqlRow> {
    let mut out = Vec::with_capacity(r.len());
    for (i, col) in r.columns().iter().enumerate() {
        let t = col.type_();
        let cell = if *t == Type::INT8 {
            r.try_get::<_, Option<i64>>(i)?.map(Cell::Int)
        } else if *t == Type::INT4 {
            r.try_get::<_, Option<i32>>(i)?.map(|v| Cell::Int(v.into()))
        } else if *t == Type::INT2 {
            r.try_get::<_, Option<i16>>(i)?.map(|v| Cell::Int(v.into()))
        } else if *t == Type::FLOAT8 {
            r.try_get::<_, Option<f64>>(i)?.map(Cell::Real)
        } else if *t == Type::BOOL {
            r.try_get::<_, Option<bool>>(i)?.map(Cell::Bool)
        } else if *t == Type::JSONB || *t == Type::JSON {
            r.try_get::<_, Option<Value>>(i)?.map(Cell::Json)
        } else {
            r.try_get::<_, Option<String>>(i)?.map(Cell::Text)
        };
        out.push(cell.unwrap_or(Cell::Null));
    }
    Ok(SqlRow(out))
}

fn params<'a>(args: &'a [Arg<'_>]) -> Vec<&'a (dyn ToSql + Sync)> {
    args.iter().map(|a| a as &(dyn ToSql + Sync)).collect()
}

impl<C: GenericClient + Sync> Db for PgDb<'_, C> {
    async fn execute(&self, sql: &str, args: &[Arg<'_>]) -> Result<u64> {
        let stmt = self.c.prepare_cached(sql).await?;
        Ok(self.c.execute(&stmt, &params(args)).await?)
    }

    async fn query(&self, sql: &str, args: &[Arg<'_>]) -> Result<Vec<SqlRow>> {
        let stmt = self.c.prepare_cached(sql).await?;
        self.c.query(&stmt, &params(args)).await?.iter().map(cells).collect()
    }

    async fn execute_rows(&self, head: &str, width: usize, tail: &str, args: &[Arg<'_>]) -> Result<()> {
        for chunk in args.chunks(width.max(1) * crate::sql::ROWS_PER_STATEMENT) {
            let rows = crate::sql::values_list(chunk.len() / width.max(1), width);
            let stmt = self.c.prepare_cached(&format!("{head} VALUES {rows} {tail}")).await?;
            self.c.execute(&stmt, &params(chunk)).await?;
        }
        Ok(())
    }

    async fn set_traits(&self, rows: &[(ContactId, &Value)], at: Millis) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<ContactId> = rows.iter().map(|(id, _)| *id).collect();
        let traits: Vec<tokio_postgres::types::Json<&Value>> =
            rows.iter().map(|(_, t)| tokio_postgres::types::Json(*t)).collect();
        let stmt = self
            .c
            .prepare_cached(
                "UPDATE contacts AS c SET traits = v.traits, updated_at = $3
                 FROM unnest($1::bigint[], $2::jsonb[]) AS v(id, traits) WHERE c.id = v.id",
            )
            .await?;
        self.c.execute(&stmt, &[&ids, &traits, &at]).await?;
        Ok(())
    }

    async fn set_scores(&self, rows: &[crate::sql::ScoresRow<'_>]) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<ContactId> = rows.iter().map(|r| r.contact).collect();
        let scores: Vec<Option<&str>> = rows.iter().map(|r| r.scores.as_deref()).collect();
        let due: Vec<Option<Millis>> = rows.iter().map(|r| r.due).collect();
        let patch: Vec<Option<tokio_postgres::types::Json<&Value>>> =
            rows.iter().map(|r| r.patch.map(tokio_postgres::types::Json)).collect();
        let at: Vec<Millis> = rows.iter().map(|r| r.at).collect();
        let stmt = self
            .c
            .prepare_cached(
                "UPDATE contacts AS c SET scoring = v.scoring, score_due_at = v.due,
                 traits = coalesce(c.traits || v.patch, c.traits),
                 updated_at = CASE WHEN v.patch IS NULL THEN c.updated_at ELSE v.at END
                 FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::jsonb[], $5::bigint[])
                   AS v(id, scoring, due, patch, at)
                 WHERE c.id = v.id",
            )
            .await?;
        self.c.execute(&stmt, &[&ids, &scores, &due, &patch, &at]).await?;
        Ok(())
    }

    async fn insert(&self, sql: &str, args: &[Arg<'_>]) -> Result<Option<i64>> {
        let stmt = self.c.prepare_cached(&format!("{sql} RETURNING id")).await?;
        Ok(self.c.query_opt(&stmt, &params(args)).await?.map(|r| r.get(0)))
    }

    async fn update_row(&self, _table: &str, sql: &str, args: &[Arg<'_>], columns: &str) -> Result<Option<SqlRow>> {
        let stmt = self.c.prepare_cached(&format!("{sql} RETURNING {columns}")).await?;
        self.c
            .query_opt(&stmt, &params(args))
            .await?
            .as_ref()
            .map(cells)
            .transpose()
    }

    fn rules(&self) -> impl Future<Output = Result<Rules>> + Send {
        exec::rules(self.c)
    }

    fn current_id(&self, id: ContactId) -> impl Future<Output = Result<ContactId>> + Send {
        current_id(self.c, id)
    }

    fn load_contact(&self, id: ContactId) -> impl Future<Output = Result<Option<Contact>>> + Send {
        load_contact(self.c, id, self.lock)
    }

    fn save_contact(&self, contact: &Contact) -> impl Future<Output = Result<()>> + Send {
        save_contact(self.c, contact)
    }

    async fn mark_dirty(&self, contact: ContactId) -> Result<()> {
        segments::mark_dirty(self.c, &[contact]).await
    }

    fn for_update(&self) -> &'static str {
        if self.lock { " FOR UPDATE" } else { "" }
    }

    fn delete_contact_events(&self) -> &'static str {
        "WITH gone AS (DELETE FROM events WHERE contact_id = $1 RETURNING message_id)
         DELETE FROM event_message_ids WHERE message_id IN (SELECT message_id FROM gone)"
    }

    fn insert_event(&self) -> &'static str {
        "WITH claimed AS (INSERT INTO event_message_ids (message_id) VALUES ($1) ON CONFLICT DO NOTHING
                          RETURNING message_id)
         INSERT INTO events (message_id, contact_id, type, name, timestamp, received_at, properties, context)
         SELECT message_id, $2::bigint, 'track', $3::text, $4::bigint, $4::bigint, $5::jsonb, '{\"source\":\"nudge\"}'
         FROM claimed"
    }

    fn message_id_table(&self) -> &'static str {
        "event_message_ids"
    }

    fn for_share(&self) -> &'static str {
        if self.lock { " FOR SHARE" } else { "" }
    }

    async fn notify(&self, channel: &str, payload: &str) -> Result<()> {
        let stmt = self.c.prepare_cached("SELECT pg_notify($1, $2)").await?;
        self.c.execute(&stmt, &[&channel, &payload]).await?;
        Ok(())
    }

    async fn lock_table(&self, table: &str) -> Result<()> {
        self.c
            .execute(&format!("LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE"), &[])
            .await?;
        Ok(())
    }
}
