//! Journeys on PostgreSQL: several `nudge` processes may share the work, so timers
//! are claimed with `FOR UPDATE SKIP LOCKED` and a run's row is locked while its
//! transition is written.

use super::*;

crate::shared::journeys::impl_journey_store!(PgStore, pg_write, pg_read, {
    async fn runs(&self, ids: Vec<i64>) -> Result<Vec<Run>> {
        let c = self.client().await?;
        let sql = format!(
            "SELECT {} FROM journey_runs WHERE id = ANY($1) ORDER BY id",
            shared::journeys::RUN_COLUMNS
        );
        c.query(&sql, &[&ids])
            .await?
            .iter()
            .map(|r| shared::journeys::run_from_row(&db::cells(r)?))
            .collect()
    }

    async fn claim_timers(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<DueTimer>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "UPDATE journey_timers t SET leased_until = $1 + $2 FROM (
                     SELECT run_id, key FROM journey_timers WHERE due_at <= $1
                       AND (leased_until IS NULL OR leased_until <= $1)
                     ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) d
                 WHERE t.run_id = d.run_id AND t.key = d.key
                 RETURNING t.run_id, t.key, t.due_at",
                &[&now, &lease_ms, &(limit as i64)],
            )
            .await?;
        let mut due: Vec<DueTimer> = rows
            .iter()
            .map(|r| DueTimer {
                run_id: r.get(0),
                key: r.get(1),
                due_at: r.get(2),
            })
            .collect();
        due.sort_by_key(|t| (t.due_at, t.run_id));
        Ok(due)
    }

    async fn set_journey_event_names(&self, names: Vec<String>) -> Result<()> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM journey_event_names", &[]).await?;
        tx.execute(
            "INSERT INTO journey_event_names (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[&names],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_journey_inbox(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<InboxEvent>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "UPDATE journey_inbox i SET leased_until = $1 + $2 FROM (
                     SELECT id FROM journey_inbox WHERE leased_until IS NULL OR leased_until <= $1
                     ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) d
                 WHERE i.id = d.id
                 RETURNING i.id, i.contact_id, i.event_id, i.name, i.properties, i.at",
                &[&now, &lease_ms, &(limit as i64)],
            )
            .await?;
        let mut claimed: Vec<InboxEvent> = rows
            .iter()
            .map(|r| InboxEvent {
                id: r.get(0),
                contact_id: r.get(1),
                event_id: r.get(2),
                name: r.get(3),
                properties: r.get(4),
                at: r.get(5),
            })
            .collect();
        claimed.sort_by_key(|e| e.id);
        Ok(claimed)
    }

    async fn ack_journey_inbox(&self, ids: Vec<i64>) -> Result<()> {
        let c = self.client().await?;
        c.execute("DELETE FROM journey_inbox WHERE id = ANY($1)", &[&ids])
            .await?;
        Ok(())
    }

    async fn set_entry_timers(&self, journey: i64, timers: Vec<(ContactId, Option<Millis>)>) -> Result<()> {
        let (set, del): (Vec<_>, Vec<_>) = timers.into_iter().partition(|(_, due)| due.is_some());
        let set_ids: Vec<ContactId> = set.iter().map(|(c, _)| *c).collect();
        let set_due: Vec<Millis> = set.iter().filter_map(|(_, d)| *d).collect();
        let del_ids: Vec<ContactId> = del.iter().map(|(c, _)| *c).collect();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if !set_ids.is_empty() {
            tx.execute(
                "INSERT INTO journey_entry_timers (journey_id, contact_id, due_at)
                 SELECT $1, c, d FROM unnest($2::bigint[], $3::bigint[]) AS u(c, d)
                 ON CONFLICT (journey_id, contact_id) DO UPDATE SET due_at = excluded.due_at, leased_until = NULL",
                &[&journey, &set_ids, &set_due],
            )
            .await?;
        }
        if !del_ids.is_empty() {
            tx.execute(
                "DELETE FROM journey_entry_timers WHERE journey_id = $1 AND contact_id = ANY($2)",
                &[&journey, &del_ids],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn claim_entry_timers(&self, now: Millis, limit: usize, lease_ms: i64) -> Result<Vec<EntryTimer>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "UPDATE journey_entry_timers t SET leased_until = $1 + $2 FROM (
                     SELECT journey_id, contact_id FROM journey_entry_timers WHERE due_at <= $1
                       AND (leased_until IS NULL OR leased_until <= $1)
                     ORDER BY due_at LIMIT $3 FOR UPDATE SKIP LOCKED) d
                 WHERE t.journey_id = d.journey_id AND t.contact_id = d.contact_id
                 RETURNING t.journey_id, t.contact_id, t.due_at",
                &[&now, &lease_ms, &(limit as i64)],
            )
            .await?;
        let mut due: Vec<EntryTimer> = rows
            .iter()
            .map(|r| EntryTimer {
                journey_id: r.get(0),
                contact_id: r.get(1),
                due_at: r.get(2),
            })
            .collect();
        due.sort_by_key(|t| (t.due_at, t.journey_id, t.contact_id));
        Ok(due)
    }

    async fn contacts_with_trait(
        &self,
        name: &str,
        after: ContactId,
        limit: usize,
    ) -> Result<Vec<(ContactId, Map<String, Value>)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                "SELECT id, traits FROM contacts WHERE id > $1 AND traits ? $2 AND traits -> $2 != 'null'::jsonb
                 ORDER BY id LIMIT $3",
                &[&after, &name, &(limit as i64)],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| match r.get::<_, Value>(1) {
                Value::Object(m) => (r.get(0), m),
                _ => (r.get(0), Map::new()),
            })
            .collect())
    }
});
