//! Journeys on SQLite: every write goes through the writer thread, so a run's
//! transition, its timers, waits, messages and events commit together.

use super::*;

fn json_col(r: &rusqlite::Row, i: usize) -> rusqlite::Result<Value> {
    let s: String = r.get(i)?;
    serde_json::from_str(&s)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e)))
}

crate::shared::journeys::impl_journey_store!(SqliteStore, sqlite_write, sqlite_read, {
    async fn runs(&self, ids: Vec<i64>) -> Result<Vec<Run>> {
        sqlite_read!(self, |db| async move {
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                out.extend(shared::journeys::run(db, *id).await?);
            }
            out.sort_by_key(|r| r.id);
            Ok(out)
        })
    }

    async fn claim_timers(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<DueTimer>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            let mut due = tx
                .prepare_cached(
                    "UPDATE journey_timers SET leased_until = ?1 + ?2 WHERE rowid IN (
                         SELECT rowid FROM journey_timers WHERE due_at <= ?1
                           AND (leased_until IS NULL OR leased_until <= ?1)
                         ORDER BY due_at LIMIT ?3)
                     RETURNING run_id, key, due_at",
                )?
                .query_map(params![now, lease_ms, limit as i64], |r| {
                    Ok(DueTimer {
                        run_id: r.get(0)?,
                        key: r.get(1)?,
                        due_at: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            due.sort_by_key(|t| (t.due_at, t.run_id));
            Ok(due)
        })
        .await
    }

    async fn set_journey_event_names(&self, names: Vec<String>) -> Result<()> {
        self.write(move |conn, cache| {
            let tx = conn.transaction()?;
            tx.execute("DELETE FROM journey_event_names", [])?;
            for n in &names {
                tx.execute("INSERT OR IGNORE INTO journey_event_names (name) VALUES (?)", [n])?;
            }
            tx.commit()?;
            cache.journey_events = None;
            Ok(())
        })
        .await
    }

    async fn claim_journey_inbox(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<InboxEvent>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            let mut claimed = tx
                .prepare_cached(
                    "UPDATE journey_inbox SET leased_until = ?1 + ?2 WHERE id IN (
                         SELECT id FROM journey_inbox WHERE leased_until IS NULL OR leased_until <= ?1 ORDER BY id LIMIT ?3)
                     RETURNING id, contact_id, event_id, name, properties, at",
                )?
                .query_map(params![now, lease_ms, limit as i64], |r| {
                    Ok(InboxEvent {
                        id: r.get(0)?,
                        contact_id: r.get(1)?,
                        event_id: r.get(2)?,
                        name: r.get(3)?,
                        properties: json_col(r, 4)?,
                        at: r.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            claimed.sort_by_key(|e| e.id);
            Ok(claimed)
        })
        .await
    }

    async fn ack_journey_inbox(&self, ids: Vec<i64>) -> Result<()> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            {
                let mut del = tx.prepare_cached("DELETE FROM journey_inbox WHERE id = ?")?;
                for id in &ids {
                    del.execute([id])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn set_entry_timers(&self, journey: i64, timers: Vec<(ContactId, Option<Millis>)>) -> Result<()> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            {
                let mut set = tx.prepare_cached(
                    "INSERT INTO journey_entry_timers (journey_id, contact_id, due_at) VALUES (?, ?, ?)
                     ON CONFLICT (journey_id, contact_id) DO UPDATE SET due_at = excluded.due_at, leased_until = NULL",
                )?;
                let mut del =
                    tx.prepare_cached("DELETE FROM journey_entry_timers WHERE journey_id = ? AND contact_id = ?")?;
                for (contact, due) in &timers {
                    match due {
                        Some(due) => set.execute(params![journey, contact, due])?,
                        None => del.execute(params![journey, contact])?,
                    };
                }
            }
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn claim_entry_timers(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<EntryTimer>> {
        self.write(move |conn, _| {
            let tx = conn.transaction()?;
            let mut due = tx
                .prepare_cached(
                    "UPDATE journey_entry_timers SET leased_until = ?1 + ?2 WHERE (journey_id, contact_id) IN (
                         SELECT journey_id, contact_id FROM journey_entry_timers WHERE due_at <= ?1
                           AND (leased_until IS NULL OR leased_until <= ?1)
                         ORDER BY due_at LIMIT ?3)
                     RETURNING journey_id, contact_id, due_at",
                )?
                .query_map(params![now, lease_ms, limit as i64], |r| {
                    Ok(EntryTimer {
                        journey_id: r.get(0)?,
                        contact_id: r.get(1)?,
                        due_at: r.get(2)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            tx.commit()?;
            due.sort_by_key(|t| (t.due_at, t.journey_id, t.contact_id));
            Ok(due)
        })
        .await
    }

    async fn contacts_with_trait(
        &self,
        name: &str,
        after: ContactId,
        limit: usize,
    ) -> Result<Vec<(ContactId, Map<String, Value>)>> {
        let path = json_path(name);
        self.scan(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT id, traits FROM contacts WHERE id > ? AND json_type(traits, ?) IS NOT NULL
                       AND json_type(traits, ?) != 'null' ORDER BY id LIMIT ?",
                )?
                .query_map(params![after, path, path, limit as i64], |r| {
                    Ok((r.get::<_, ContactId>(0)?, json_col(r, 1)?))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(rows
                .into_iter()
                .map(|(id, traits)| match traits {
                    Value::Object(m) => (id, m),
                    _ => (id, Map::new()),
                })
                .collect())
        })
        .await
    }
});
