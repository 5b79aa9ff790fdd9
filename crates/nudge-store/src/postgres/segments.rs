//! Segments on PostgreSQL: definitions, full computation in SQL, live membership.
//! Same behaviour as `sqlite/segments.rs`.

use super::*;
use crate::segment_sql::{Dialect, Param, compile};
use nudge_core::segment::{Condition, EventFact, Facts};
use std::collections::HashSet;
use tokio_postgres::types::ToSql;

fn sql_params(params: &[Param]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .map(|p| -> Box<dyn ToSql + Sync + Send> {
            match p {
                Param::Text(s) => Box::new(s.clone()),
                Param::Real(f) => Box::new(*f),
                Param::Int(i) => Box::new(*i),
            }
        })
        .collect()
}

fn refs(params: &[Box<dyn ToSql + Sync + Send>]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
}

pub(super) async fn load_segments<C: GenericClient + Sync>(c: &C, id: Option<i64>) -> Result<Vec<Segment>> {
    shared::segments::load(&super::db::PgDb::read(c), id).await
}

pub(super) use crate::plan::SegmentIndex;

/// What identifies the segments' state: database and schema, count, highest id and
/// the sum of versions (every definition change bumps a version; deletions change the
/// count). Read with one query on a small table instead of parsing every definition.
type IndexKey = (String, String, i64, i64, i64);

/// The last index built, shared by all connections of this process.
static INDEX_CACHE: std::sync::Mutex<Option<(IndexKey, std::sync::Arc<SegmentIndex>)>> = std::sync::Mutex::new(None);

pub(super) async fn segment_index(c: &impl GenericClient) -> Result<std::sync::Arc<SegmentIndex>> {
    // Prepared once per connection: every ingest call asks (in its first round trip).
    let stmt = c
        .prepare_cached(
            "SELECT current_database()::text, current_schema()::text, count(*), coalesce(max(id), 0), coalesce(sum(version), 0)::int8
             FROM segments",
        )
        .await?;
    let row = c.query_one(&stmt, &[]).await?;
    let key: IndexKey = (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    if let Some((k, index)) = INDEX_CACHE.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && *k == key
    {
        return Ok(index.clone());
    }
    let segments = load_segments(c, None).await?;
    let index = std::sync::Arc::new(SegmentIndex::of(segments.iter().map(|s| &s.definition)));
    *INDEX_CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some((key, index.clone()));
    Ok(index)
}

/// After an import, in its transaction: imported contacts are re-evaluated.
pub(super) async fn mark_after_import(tx: &Transaction<'_>, rows: &[ContactImport]) -> Result<()> {
    if !segment_index(tx).await?.any {
        return Ok(());
    }
    let users: Vec<&str> = rows.iter().filter_map(|r| r.user_id.as_deref()).collect();
    let emails: Vec<String> = rows
        .iter()
        .filter_map(|r| r.email.as_deref())
        .map(|e| e.trim().to_ascii_lowercase())
        .collect();
    let found = tx
        .query(
            "SELECT contact_id FROM identities WHERE kind = 'user_id' AND value = ANY($1)
             UNION SELECT id FROM contacts WHERE email = ANY($2)",
            &[&users, &emails],
        )
        .await?;
    let ids: Vec<ContactId> = found.iter().map(|r| r.get(0)).collect();
    mark_dirty(tx, &ids).await
}

/// Marks contacts for re-evaluation by the segment worker.
pub(super) async fn mark_dirty(c: &impl GenericClient, contacts: &[ContactId]) -> Result<()> {
    if contacts.is_empty() {
        return Ok(());
    }
    let mut ids = contacts.to_vec();
    ids.sort_unstable();
    ids.dedup();
    c.execute(
        "INSERT INTO segment_dirty (contact_id, since)
         SELECT id, nextval('segment_dirty_seq') FROM unnest($1::int8[]) AS t(id) ORDER BY id
         ON CONFLICT (contact_id) DO UPDATE SET since = excluded.since",
        &[&ids],
    )
    .await?;
    Ok(())
}

/// Recomputes a segment's members in SQL (see the SQLite twin for when everyone is
/// marked for the worker).
async fn recompute(tx: &Transaction<'_>, segment: &Segment, now: Millis, mark_all: bool) -> Result<()> {
    let all = load_segments(tx, None).await?;
    let compiled = compile(&segment.effective_definition(&all), Dialect::Postgres, now);
    tx.batch_execute(
        "CREATE TEMP TABLE IF NOT EXISTS new_members (contact_id BIGINT PRIMARY KEY) ON COMMIT DELETE ROWS",
    )
    .await?;
    tx.batch_execute("DELETE FROM new_members").await?;
    let params = sql_params(&compiled.params);
    tx.execute(
        &format!(
            "INSERT INTO new_members SELECT c.id FROM contacts c WHERE {}",
            compiled.sql
        ),
        &refs(&params),
    )
    .await?;
    let id = segment.id;
    tx.execute(
        "UPDATE segment_history SET exited_at = $2 WHERE segment_id = $1 AND exited_at IS NULL
         AND contact_id NOT IN (SELECT contact_id FROM new_members)",
        &[&id, &now],
    )
    .await?;
    tx.execute(
        "DELETE FROM segment_members WHERE segment_id = $1 AND contact_id NOT IN (SELECT contact_id FROM new_members)",
        &[&id],
    )
    .await?;
    tx.execute(
        "INSERT INTO segment_history (segment_id, contact_id, entered_at)
         SELECT $1, n.contact_id, $2 FROM new_members n
         WHERE n.contact_id NOT IN (SELECT contact_id FROM segment_members WHERE segment_id = $1)",
        &[&id, &now],
    )
    .await?;
    tx.execute(
        "INSERT INTO segment_members (segment_id, contact_id, entered_at)
         SELECT $1, contact_id, $2 FROM new_members ON CONFLICT DO NOTHING",
        &[&id, &now],
    )
    .await?;
    tx.batch_execute("DELETE FROM new_members").await?;
    if crate::plan::segment_save_marks_all(segment, &all, mark_all) {
        tx.execute(
            "INSERT INTO segment_dirty (contact_id, since) SELECT id, nextval('segment_dirty_seq') FROM contacts ORDER BY id
             ON CONFLICT (contact_id) DO UPDATE SET since = excluded.since",
            &[],
        )
        .await?;
    }
    Ok(())
}

impl PgStore {
    pub(crate) async fn pg_segment_members(&self, condition: &Condition, now: Millis) -> Result<Vec<ContactId>> {
        let compiled = compile(condition, Dialect::Postgres, now);
        let client = self.client().await?;
        let params = sql_params(&compiled.params);
        let rows = client
            .query(
                &format!("SELECT c.id FROM contacts c WHERE {} ORDER BY c.id", compiled.sql),
                &refs(&params),
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    pub(crate) async fn pg_contacts_facts(
        &self,
        ids: Vec<ContactId>,
        events: Option<Vec<String>>,
    ) -> Result<Vec<Option<Facts>>> {
        let client = self.client().await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(facts_of(&client, id, events.as_deref()).await?);
        }
        Ok(out)
    }

    pub(crate) async fn pg_contact_facts(&self, id: ContactId) -> Result<Option<Facts>> {
        let client = self.client().await?;
        let id = current_id(&client, id).await?;
        facts_of(&client, id, None).await
    }
}

/// What segment conditions read about one contact (`None` if there is no such row);
/// `names` limits the events loaded to those names.
async fn facts_of(client: &impl GenericClient, id: ContactId, names: Option<&[String]>) -> Result<Option<Facts>> {
    {
        let Some(contact) = load_contact(client, id, false).await? else {
            return Ok(None);
        };
        let rows = match names {
            None => {
                client
                    .query(
                        "SELECT name, timestamp, properties FROM events WHERE contact_id = $1 AND type = 'track'
                         ORDER BY timestamp, id",
                        &[&id],
                    )
                    .await?
            }
            Some(names) => {
                client
                    .query(
                        "SELECT name, timestamp, properties FROM events WHERE contact_id = $1 AND type = 'track'
                         AND name = ANY($2) ORDER BY timestamp, id",
                        &[&id, &names],
                    )
                    .await?
            }
        };
        let mut events = Vec::with_capacity(rows.len());
        for r in rows {
            let props: serde_json::Value = r.try_get(2)?;
            events.push(EventFact {
                name: r.try_get::<_, Option<String>>(0)?.unwrap_or_default(),
                timestamp: r.try_get(1)?,
                properties: props.as_object().cloned().unwrap_or_default(),
            });
        }
        let segments = client
            .query("SELECT segment_id FROM segment_members WHERE contact_id = $1", &[&id])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect();
        Ok(Some(Facts {
            contact_id: id,
            traits: contact.traits,
            subscriptions: contact.subscriptions,
            events,
            segments,
        }))
    }
}

impl PgStore {
    pub(crate) async fn pg_create_segment(&self, new: NewSegment, now: Millis) -> Result<Segment> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let def = serde_json::to_value(&new.definition).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let row = tx
            .query_one(
                "INSERT INTO segments (name, description, definition, version, created_at, updated_at, administrative)
                 VALUES ($1, $2, $3, 1, $4, $4, $5) RETURNING id",
                &[&new.name, &new.description, &def, &now, &new.administrative],
            )
            .await?;
        let segment = Segment {
            id: row.get(0),
            name: new.name,
            description: new.description,
            definition: new.definition,
            version: 1,
            administrative: new.administrative,
            created_at: now,
            updated_at: now,
        };
        recompute(&tx, &segment, now, false).await?;
        tx.commit().await?;
        Ok(segment)
    }

    pub(crate) async fn pg_update_segment(&self, id: i64, new: NewSegment, now: Millis) -> Result<Option<Segment>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let Some(current) = load_segments(&tx, Some(id)).await?.pop() else {
            return Ok(None);
        };
        let crate::plan::SegmentUpdate {
            segment,
            recompute: changed,
            flag_changed,
        } = crate::plan::segment_update(current, new, now);
        let def = serde_json::to_value(&segment.definition).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        tx.execute(
            "UPDATE segments SET name = $2, description = $3, definition = $4, version = $5, updated_at = $6,
             administrative = $7 WHERE id = $1",
            &[
                &id,
                &segment.name,
                &segment.description,
                &def,
                &segment.version,
                &now,
                &segment.administrative,
            ],
        )
        .await?;
        if changed {
            recompute(&tx, &segment, now, flag_changed).await?;
        }
        tx.commit().await?;
        Ok(Some(segment))
    }

    pub(crate) async fn pg_delete_segment(&self, id: i64) -> Result<bool> {
        pg_write!(self, |db| crate::shared::segments::delete(db, id))
    }

    pub(crate) async fn pg_claim_segment_work(&self, now: Millis, limit: usize) -> Result<Vec<SegmentWork>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT contact_id, since FROM segment_dirty ORDER BY since LIMIT $1",
                &[&(limit as i64)],
            )
            .await?;
        let mut out: Vec<SegmentWork> = rows
            .iter()
            .map(|r| SegmentWork {
                contact_id: r.get(0),
                dirty_since: Some(r.get(1)),
            })
            .collect();
        let seen: HashSet<ContactId> = out.iter().map(|w| w.contact_id).collect();
        let due = client
            .query(
                "SELECT DISTINCT contact_id FROM (SELECT contact_id FROM segment_timers WHERE due_at <= $1 ORDER BY due_at LIMIT $2) t",
                &[&now, &(limit as i64)],
            )
            .await?;
        out.extend(
            due.iter()
                .map(|r| r.get::<_, i64>(0))
                .filter(|c| !seen.contains(c))
                .map(|contact_id| SegmentWork {
                    contact_id,
                    dirty_since: None,
                }),
        );
        Ok(out)
    }

    pub(crate) async fn pg_apply_evaluations(
        &self,
        evals: Vec<ContactEvaluation>,
        now: Millis,
    ) -> Result<MembershipChanges> {
        pg_write!(self, |db| shared::segments::apply_evaluations(db, evals, now))
    }
}

crate::shared::segments::impl_segment_store!(PgStore, pg_read, {
    async fn segment_members(&self, condition: &Condition, now: Millis) -> Result<Vec<ContactId>> {
        self.pg_segment_members(condition, now).await
    }
    async fn contact_facts(&self, id: ContactId) -> Result<Option<Facts>> {
        self.pg_contact_facts(id).await
    }
    async fn contacts_facts(&self, ids: Vec<ContactId>, events: Option<Vec<String>>) -> Result<Vec<Option<Facts>>> {
        self.pg_contacts_facts(ids, events).await
    }
    async fn create_segment(&self, new: NewSegment, now: Millis) -> Result<Segment> {
        self.pg_create_segment(new, now).await
    }
    async fn update_segment(&self, id: i64, new: NewSegment, now: Millis) -> Result<Option<Segment>> {
        self.pg_update_segment(id, new, now).await
    }
    async fn delete_segment(&self, id: i64) -> Result<bool> {
        self.pg_delete_segment(id).await
    }
    async fn claim_segment_work(&self, now: Millis, limit: usize) -> Result<Vec<SegmentWork>> {
        self.pg_claim_segment_work(now, limit).await
    }
    async fn apply_evaluations(&self, evals: Vec<ContactEvaluation>, now: Millis) -> Result<MembershipChanges> {
        self.pg_apply_evaluations(evals, now).await
    }
});
