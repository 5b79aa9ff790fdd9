//! Journeys on PostgreSQL: several `nudge` processes may share the work, so timers
//! are claimed with `FOR UPDATE SKIP LOCKED` and a run's row is locked while its
//! transition is written.

use super::*;
use super::db::PgDb;
use crate::plan::Rules;

const JOURNEY_COLUMNS: &str = "j.id, j.name, j.description, j.status, j.version, j.published_version, j.priority, \
     v.definition, j.created_at, j.updated_at, j.entries_scheduled";
const RUN_COLUMNS: &str = "id, journey_id, version, contact_id, step, state, entry_key, entered_at, updated_at, \
     finished_at, finish_reason, revision, error";

/// Queues the stored events with these message ids in the journey inbox when
/// journeys act on their names (same transaction as the events).
pub(super) async fn queue_events(tx: &Transaction<'_>, message_ids: &[&str]) -> Result<()> {
    tx.execute(
        "INSERT INTO journey_inbox (contact_id, event_id, name, properties, at)
         SELECT e.contact_id, e.id, e.name, e.properties, e.timestamp FROM events e
         JOIN journey_event_names n ON n.name = e.name
         WHERE e.message_id = ANY($1) AND e.type = 'track' ORDER BY e.id",
        &[&message_ids],
    )
    .await?;
    Ok(())
}

/// After an ingest batch: queues its stored `track` events that journeys act on, and
/// a traits change for identify calls that change traits time-triggered journeys read.
pub(super) async fn queue_after_ingest(
    tx: &Transaction<'_>,
    messages: &[Call],
    outcomes: &[IngestOutcome],
) -> Result<()> {
    let rules = exec::rules(tx).await?;
    if rules.journey_events.is_empty() {
        return Ok(());
    }
    let stored = || {
        messages
            .iter()
            .zip(outcomes)
            .filter(|(_, o)| **o == IngestOutcome::Stored)
    };
    let identified: Vec<&str> = stored()
        .filter(|(m, _)| m.kind == CallKind::Identify && !rules.traits_journeys_read(m.traits.keys()).is_empty())
        .map(|(m, _)| m.message_id.as_str())
        .collect();
    if !identified.is_empty() {
        tx.execute(
            "INSERT INTO journey_inbox (contact_id, event_id, name, properties, at)
             SELECT e.contact_id, e.id, $2, '{}'::jsonb, e.timestamp FROM events e
             WHERE e.message_id = ANY($1) AND e.type = 'identify' ORDER BY e.id",
            &[&identified, &TRAITS_CHANGED],
        )
        .await?;
    }
    let ids: Vec<&str> = stored()
        .filter(|(m, _)| m.kind == CallKind::Track && m.event.as_deref().is_some_and(|e| rules.journeys_act_on(e)))
        .map(|(m, _)| m.message_id.as_str())
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    queue_events(tx, &ids).await
}

fn journey_from_row(r: &tokio_postgres::Row) -> Result<Journey> {
    let status: String = r.get(3);
    Ok(Journey {
        id: r.get(0),
        name: r.get(1),
        description: r.get(2),
        status: JourneyStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("journey status {status}")))?,
        version: r.get(4),
        published_version: r.get(5),
        priority: r.get(6),
        definition: r.get(7),
        created_at: r.get(8),
        updated_at: r.get(9),
        entries_scheduled: r.get(10),
    })
}

fn run_from_row(r: &tokio_postgres::Row) -> Run {
    Run {
        id: r.get(0),
        journey_id: r.get(1),
        version: r.get(2),
        contact_id: r.get(3),
        step: r.get(4),
        state: r.get(5),
        entry_key: r.get(6),
        entered_at: r.get(7),
        updated_at: r.get(8),
        finished_at: r.get(9),
        finish_reason: r.get(10),
        revision: r.get(11),
        set_aside: r.get(12),
    }
}

async fn load_journey(c: &impl GenericClient, id: i64) -> Result<Option<Journey>> {
    c.query_opt(
        &format!(
            "SELECT {JOURNEY_COLUMNS} FROM journeys j JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version
             WHERE j.id = $1"
        ),
        &[&id],
    )
    .await?
    .map(|r| journey_from_row(&r))
    .transpose()
}

async fn load_run(c: &impl GenericClient, id: i64, lock: bool) -> Result<Option<Run>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    Ok(c.query_opt(
        &format!("SELECT {RUN_COLUMNS} FROM journey_runs WHERE id = $1{lock}"),
        &[&id],
    )
    .await?
    .map(|r| run_from_row(&r)))
}

async fn name_taken(tx: &Transaction<'_>, name: &str, except: Option<i64>) -> Result<()> {
    tx.execute("LOCK TABLE journeys IN SHARE ROW EXCLUSIVE MODE", &[])
        .await?;
    let taken: Option<i64> = tx
        .query_opt("SELECT id FROM journeys WHERE name = $1", &[&name])
        .await?
        .map(|r| r.get(0));
    if taken.is_some() && taken != except {
        return Err(StoreError::Conflict(format!("a journey named {name:?} exists")));
    }
    Ok(())
}

/// Applies one transition (see [`crate::exec::apply_write`]; the run's row locked);
/// `false` if it was computed from an older revision of the run than the stored one.
async fn apply_write(tx: &Transaction<'_>, rules: &Rules, w: &RunWrite, now: Millis) -> Result<bool> {
    crate::exec::apply_write(&PgDb::tx(tx), rules, w, now).await
}

#[async_trait]
impl JourneyStore for PgStore {
    async fn create_journey(&self, new: NewJourney, now: Millis) -> Result<Journey> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        name_taken(&tx, &new.name, None).await?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO journeys (name, description, status, version, priority, created_at, updated_at)
                 VALUES ($1, $2, 'draft', 1, $3, $4, $4) RETURNING id",
                &[&new.name, &new.description, &new.priority, &now],
            )
            .await?
            .get(0);
        tx.execute(
            "INSERT INTO journey_versions (journey_id, version, definition, created_at) VALUES ($1, 1, $2, $3)",
            &[&id, &new.definition, &now],
        )
        .await?;
        let j = load_journey(&tx, id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a new journey vanished".into()))?;
        tx.commit().await?;
        Ok(j)
    }

    async fn update_journey(&self, id: i64, new: NewJourney, now: Millis) -> Result<Option<Journey>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        if load_journey(&tx, id).await?.is_none() {
            return Ok(None);
        }
        name_taken(&tx, &new.name, Some(id)).await?;
        let Some(row) = tx
            .query_opt(
                "UPDATE journeys SET name = $2, description = $3, priority = $4, version = version + 1, updated_at = $5
                 WHERE id = $1 RETURNING version",
                &[&id, &new.name, &new.description, &new.priority, &now],
            )
            .await?
        else {
            return Ok(None);
        };
        let version: i64 = row.get(0);
        tx.execute(
            "INSERT INTO journey_versions (journey_id, version, definition, created_at) VALUES ($1, $2, $3, $4)",
            &[&id, &version, &new.definition, &now],
        )
        .await?;
        let j = load_journey(&tx, id).await?;
        tx.commit().await?;
        Ok(j)
    }

    async fn journeys(&self) -> Result<Vec<Journey>> {
        let c = self.client().await?;
        c.query(
            &format!(
                "SELECT {JOURNEY_COLUMNS} FROM journeys j
                 JOIN journey_versions v ON v.journey_id = j.id AND v.version = j.version ORDER BY j.id"
            ),
            &[],
        )
        .await?
        .iter()
        .map(journey_from_row)
        .collect()
    }

    async fn journey(&self, id: i64) -> Result<Option<Journey>> {
        load_journey(&self.client().await?, id).await
    }

    async fn journey_version(&self, id: i64, version: i64) -> Result<Option<JourneyVersion>> {
        let c = self.client().await?;
        Ok(c
            .query_opt(
                "SELECT journey_id, version, definition, created_at FROM journey_versions WHERE journey_id = $1 AND version = $2",
                &[&id, &version],
            )
            .await?
            .map(|r| JourneyVersion {
                journey_id: r.get(0),
                version: r.get(1),
                definition: r.get(2),
                created_at: r.get(3),
            }))
    }

    async fn set_journey_status(
        &self,
        id: i64,
        status: JourneyStatus,
        publish: bool,
        now: Millis,
    ) -> Result<Option<Journey>> {
        let c = self.client().await?;
        c.execute(
            "UPDATE journeys SET status = $2, updated_at = $3,
             published_version = CASE WHEN $4 THEN version ELSE published_version END WHERE id = $1",
            &[&id, &status.as_str(), &now, &publish],
        )
        .await?;
        load_journey(&c, id).await
    }

    async fn start_runs(&self, runs: Vec<(NewRun, RunWrite)>, now: Millis) -> Result<Vec<Option<Run>>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let rules = exec::rules(&tx).await?;
        let mut out = Vec::with_capacity(runs.len());
        for (new, first) in runs {
            let contact = current_id(&tx, new.contact_id).await?;
            let Some(row) = tx
                .query_opt(
                    "INSERT INTO journey_runs (journey_id, version, contact_id, status, step, state, entry_key, entered_at, updated_at)
                     VALUES ($1, $2, $3, 'active', $4, $5, $6, $7, $7)
                     ON CONFLICT (journey_id, entry_key) WHERE entry_key IS NOT NULL DO NOTHING RETURNING id",
                    &[
                        &new.journey_id,
                        &new.version,
                        &contact,
                        &first.step,
                        &first.state,
                        &new.entry_key,
                        &now,
                    ],
                )
                .await?
            else {
                out.push(None);
                continue;
            };
            let id: i64 = row.get(0);
            apply_write(&tx, &rules, &RunWrite { run_id: id, ..first }, now).await?;
            out.push(load_run(&tx, id, false).await?);
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn set_run_aside(&self, run: i64, error: String, now: Millis) -> Result<bool> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let changed = crate::exec::set_run_aside(&PgDb::tx(&tx), run, &error, now).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn run(&self, id: i64) -> Result<Option<Run>> {
        load_run(&self.client().await?, id, false).await
    }

    async fn runs(&self, ids: Vec<i64>) -> Result<Vec<Run>> {
        let c = self.client().await?;
        Ok(c.query(
            &format!("SELECT {RUN_COLUMNS} FROM journey_runs WHERE id = ANY($1) ORDER BY id"),
            &[&ids],
        )
        .await?
        .iter()
        .map(run_from_row)
        .collect())
    }

    async fn active_runs(&self, journey: i64, after: i64, limit: usize) -> Result<Vec<Run>> {
        let c = self.client().await?;
        Ok(c.query(
            &format!(
                "SELECT {RUN_COLUMNS} FROM journey_runs WHERE journey_id = $1 AND status = 'active' AND id > $2
                     ORDER BY id LIMIT $3"
            ),
            &[&journey, &after, &(limit as i64)],
        )
        .await?
        .iter()
        .map(run_from_row)
        .collect())
    }

    async fn contact_runs(&self, contact: ContactId, journey: Option<i64>) -> Result<Vec<Run>> {
        let c = self.client().await?;
        let contact = current_id(&c, contact).await?;
        Ok(c
            .query(
                &format!(
                    "SELECT {RUN_COLUMNS} FROM journey_runs WHERE contact_id = $1 AND ($2::BIGINT IS NULL OR journey_id = $2)
                     ORDER BY id"
                ),
                &[&contact, &journey],
            )
            .await?
            .iter()
            .map(run_from_row)
            .collect())
    }

    async fn write_runs(&self, writes: Vec<RunWrite>, now: Millis) -> Result<Vec<i64>> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let mut stale = Vec::new();
        let rules = exec::rules(&tx).await?;
        for w in &writes {
            if !apply_write(&tx, &rules, w, now).await? {
                stale.push(w.run_id);
            }
        }
        tx.commit().await?;
        Ok(stale)
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

    async fn next_timer_due(&self) -> Result<Option<Millis>> {
        let c = self.client().await?;
        Ok(c.query_one(
            "SELECT least((SELECT min(due_at) FROM journey_timers), (SELECT min(due_at) FROM journey_entry_timers))",
            &[],
        )
        .await?
        .get(0))
    }

    async fn waiting_runs(&self, contact: ContactId, event: &str) -> Result<Vec<Waiting>> {
        let c = self.client().await?;
        let contact = current_id(&c, contact).await?;
        Ok(c.query(
            "SELECT run_id, event, match_value FROM journey_waits WHERE contact_id = $1 AND event = $2 ORDER BY run_id",
            &[&contact, &event],
        )
        .await?
        .iter()
        .map(|r| Waiting {
            run_id: r.get(0),
            event: r.get(1),
            match_value: r.get(2),
        })
        .collect())
    }

    async fn runs_per_step(&self, journey: i64) -> Result<Vec<(String, i64)>> {
        let c = self.client().await?;
        Ok(c.query(
            "SELECT step, count(*) FROM journey_runs WHERE journey_id = $1 AND status = 'active' AND step IS NOT NULL
                 GROUP BY step ORDER BY step",
            &[&journey],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
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

    async fn clear_entry_timers(&self, journey: i64) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        tx.execute("DELETE FROM journey_entry_timers WHERE journey_id = $1", &[&journey])
            .await?;
        tx.execute(
            "UPDATE journeys SET entries_scheduled = NULL WHERE id = $1",
            &[&journey],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_entries_scheduled(&self, journey: i64, version: i64) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE journeys SET entries_scheduled = $2 WHERE id = $1",
            &[&journey, &version],
        )
        .await?;
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

    async fn release_journey_leases(&self) -> Result<u64> {
        let c = self.client().await?;
        let a = c
            .execute(
                "UPDATE journey_timers SET leased_until = NULL WHERE leased_until IS NOT NULL",
                &[],
            )
            .await?
            + c.execute(
                "UPDATE journey_entry_timers SET leased_until = NULL WHERE leased_until IS NOT NULL",
                &[],
            )
            .await?;
        let b = c
            .execute(
                "UPDATE journey_inbox SET leased_until = NULL WHERE leased_until IS NOT NULL",
                &[],
            )
            .await?;
        Ok(a + b)
    }

    async fn journey_stats(&self, journey: i64) -> Result<JourneyStats> {
        let c = self.client().await?;
        let mut stats = JourneyStats::default();
        for r in c
            .query(
                "SELECT finish_reason, count(*), coalesce(sum(revenue), 0.0)::float8 FROM journey_runs
                 WHERE journey_id = $1 GROUP BY finish_reason",
                &[&journey],
            )
            .await?
        {
            let (reason, n, revenue): (Option<String>, i64, f64) = (r.get(0), r.get(1), r.get(2));
            stats.entered += n;
            stats.revenue += revenue;
            match reason {
                None => stats.active += n,
                Some(reason) => {
                    stats.finished.insert(reason, n);
                }
            }
        }
        stats.conversions = stats.finished.get("goal").copied().unwrap_or(0);
        for r in c
            .query(
                "SELECT step, reached, sent, opened, clicked FROM journey_step_stats WHERE journey_id = $1",
                &[&journey],
            )
            .await?
        {
            stats.steps.insert(
                r.get(0),
                StepStats {
                    reached: r.get(1),
                    sent: r.get(2),
                    opened: r.get(3),
                    clicked: r.get(4),
                    active: 0,
                    exits: Default::default(),
                },
            );
        }
        for r in c
            .query(
                "SELECT step, exit, passed FROM journey_exit_stats WHERE journey_id = $1",
                &[&journey],
            )
            .await?
        {
            stats
                .steps
                .entry(r.get(0))
                .or_default()
                .exits
                .insert(r.get(1), r.get(2));
        }
        for (step, n) in self.runs_per_step(journey).await? {
            stats.steps.entry(step).or_default().active = n;
        }
        Ok(stats)
    }
}
