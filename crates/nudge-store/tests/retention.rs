//! Event retention (`RetentionStore`, docs/operations.md "Retention") on SQLite and,
//! when `NUDGE_TEST_DATABASE_URL` is set, on PostgreSQL in a fresh schema: old events
//! removed (PostgreSQL: whole month partitions dropped, the rows of the default
//! partition deleted), nothing at or after the cutoff removed, and a retried message
//! id still stored exactly once with events in month partitions.

use nudge_core::segment::DAY_MS;
use nudge_core::{Call, Millis, Received, parse_batch};
use nudge_store::*;
use serde_json::{Value, json};

fn now() -> Millis {
    jiff::Timestamp::now().as_millisecond()
}

/// `track` calls of user `u`, one per (message id, time).
fn tracks(u: &str, events: &[(&str, Millis)], received: Millis) -> Vec<Call> {
    let batch: Vec<Value> = events
        .iter()
        .map(|(id, at)| {
            json!({"type": "track", "userId": u, "event": "Order Completed", "messageId": id,
                   "timestamp": jiff::Timestamp::from_millisecond(*at).unwrap().to_string(),
                   "properties": {"total": 10}})
        })
        .collect();
    let mut n = 0;
    let mut ids = move || {
        n += 1;
        format!("auto-{n}")
    };
    parse_batch(
        &serde_json::to_vec(&json!({ "batch": batch })).unwrap(),
        &Received { at: received, ip: None },
        &mut ids,
    )
    .unwrap()
    .messages
}

/// The message ids of a contact's events, sorted.
async fn stored(store: &dyn Store, user: &str) -> Vec<String> {
    let Some(c) = store.find_contact(&Lookup::UserId(user.into())).await.unwrap() else {
        return Vec::new();
    };
    let page = store
        .contact_events(
            c.id,
            &EventQuery {
                before: None,
                limit: 1000,
            },
        )
        .await
        .unwrap();
    let mut ids: Vec<String> = page.items.into_iter().map(|e| e.message_id).collect();
    ids.sort();
    ids
}

/// Runs steps until the backend says nothing older than the cutoff is left.
async fn pass(store: &dyn Store, cutoff: Millis, batch: usize) -> (u64, Vec<String>, usize) {
    let (mut deleted, mut dropped, mut steps, mut after) = (0, Vec::new(), 0, 0);
    loop {
        let step = store.retention_step(cutoff, batch, after).await.unwrap();
        steps += 1;
        deleted += step.deleted;
        dropped.extend(step.dropped);
        after = step.next_after;
        if !step.more {
            return (deleted, dropped, steps);
        }
        assert!(steps < 1000, "a pass that does not end");
    }
}

/// The first millisecond of the UTC month of `t`.
fn month_of(t: Millis) -> Millis {
    let d = jiff::Timestamp::from_millisecond(t)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
        .first_of_month();
    d.to_zoned(jiff::tz::TimeZone::UTC)
        .unwrap()
        .timestamp()
        .as_millisecond()
}

#[tokio::test]
async fn events_older_than_the_cutoff_go_and_newer_ones_stay() {
    for (store, _dir, schema) in scratch::test_stores("nudge_retention").await.unwrap() {
        let backend = store.backend();
        let now = now();
        let cutoff = now - 90 * DAY_MS;
        // Old months, one event just before the cutoff, one at it, and recent ones;
        // `ancient` is older than any month partition (PostgreSQL's default partition).
        let times: Vec<(String, Millis)> = [
            ("ancient", now - 700 * DAY_MS),
            ("old-a", now - 200 * DAY_MS),
            ("old-b", now - 150 * DAY_MS),
            ("old-c", now - 150 * DAY_MS + 1),
            ("just-before", cutoff - 1),
            ("at-cutoff", cutoff),
            ("recent", now - 20 * DAY_MS),
            ("today", now - 1000),
        ]
        .into_iter()
        .map(|(id, t)| (id.to_string(), t))
        .collect();
        let refs: Vec<(&str, Millis)> = times.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        // Many more old events, so batches matter.
        let bulk: Vec<(String, Millis)> = (0..250)
            .map(|i| (format!("bulk-{i}"), now - 160 * DAY_MS + i))
            .collect();
        let bulk_refs: Vec<(&str, Millis)> = bulk.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        store.ingest(tracks("ada", &refs, now), now).await.unwrap();
        store.ingest(tracks("bob", &bulk_refs, now), now).await.unwrap();

        if backend == "postgres" {
            // The migration made this month and the next two; months made later
            // take their rows out of the default partition.
            let made = [now - 200 * DAY_MS, now - 150 * DAY_MS]
                .iter()
                .map(|&t| month_of(t))
                .collect::<Vec<_>>();
            for &m in &made {
                let added = store.prepare_event_partitions(m).await.unwrap();
                assert!(!added.is_empty() || made.len() > 1, "{added:?}");
            }
            let parts = store.event_partitions().await.unwrap();
            for t in [now - 200 * DAY_MS, now - 150 * DAY_MS, now] {
                assert!(
                    parts
                        .iter()
                        .any(|p| p.range.is_some_and(|(from, to)| from <= t && t < to)),
                    "no partition for {t}: {parts:?}"
                );
            }
            // Making them again adds nothing.
            assert_eq!(store.prepare_event_partitions(now).await.unwrap(), Vec::<String>::new());
        }
        let before = store.event_partitions().await.unwrap();

        let (deleted, dropped, steps) = pass(&*store, cutoff, 100).await;
        let left = stored(&*store, "ada").await;
        assert!(stored(&*store, "bob").await.is_empty(), "{backend}");
        for kept in ["at-cutoff", "recent", "today"] {
            assert!(
                left.contains(&kept.to_string()),
                "{backend}: {kept} was deleted: {left:?}"
            );
        }
        for gone in ["ancient", "old-a", "old-b", "old-c"] {
            assert!(!left.contains(&gone.to_string()), "{backend}: {gone} is still there");
        }
        match backend {
            "sqlite" => {
                // Every event before the cutoff, row by row, 100 per step.
                assert!(!left.contains(&"just-before".to_string()), "{left:?}");
                assert_eq!(deleted, 4 + 250 + 1);
                assert!(steps >= 3, "{steps} steps");
                assert!(dropped.is_empty());
            }
            _ => {
                // Whole months before the cutoff went as partitions: they are no
                // longer in the catalogue, and the partitions left hold the rows.
                let gone: Vec<&EventPartition> = before
                    .iter()
                    .filter(|p| p.range.is_some_and(|(_, to)| to <= cutoff))
                    .collect();
                assert!(gone.len() >= 2, "{before:?}");
                let mut names: Vec<String> = gone.iter().map(|p| p.name.clone()).collect();
                names.sort();
                let mut dropped = dropped.clone();
                dropped.sort();
                assert_eq!(dropped, names);
                let schema = schema.as_ref().unwrap();
                let (client, conn) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
                    .await
                    .unwrap();
                tokio::spawn(conn);
                for name in &names {
                    let there: i64 = client
                        .query_one(
                            "SELECT count(*) FROM pg_class WHERE relnamespace = current_schema()::regnamespace
                               AND (relname = $1 OR relname = replace($1, 'events_', 'events_retired_'))",
                            &[name],
                        )
                        .await
                        .unwrap()
                        .get(0);
                    assert_eq!(there, 0, "{name} still exists");
                }
                let after = store.event_partitions().await.unwrap();
                assert!(after.iter().all(|p| !names.contains(&p.name)), "{after:?}");
                let inherits: i64 = client
                    .query_one(
                        "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(inherits as usize, after.len());
                // The default partition's old row was deleted as a row.
                assert_eq!(deleted, 1, "ancient");
                // An event before the cutoff stays while its month reaches past it.
                let month_end = after
                    .iter()
                    .find_map(|p| p.range.filter(|&(from, to)| (from..to).contains(&(cutoff - 1))))
                    .map(|(_, to)| to);
                assert_eq!(left.contains(&"just-before".to_string()), month_end.is_some());
                // Rows are where their partitions say, and their ids are forgotten
                // with them (only the kept ones are claimed).
                let rows: i64 = client
                    .query_one("SELECT count(*) FROM events", &[])
                    .await
                    .unwrap()
                    .get(0);
                let claimed: i64 = client
                    .query_one("SELECT count(*) FROM event_message_ids", &[])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(rows as usize, left.len());
                assert_eq!(claimed, rows);
                let misplaced: i64 = client
                    .query_one(
                        "SELECT count(*) FROM events_default d WHERE EXISTS (
                             SELECT 1 FROM pg_inherits i JOIN pg_class p ON p.oid = i.inhrelid
                             WHERE i.inhparent = 'events'::regclass AND p.relname <> 'events_default'
                               AND d.timestamp >= split_part(pg_get_expr(p.relpartbound, p.oid), '''', 2)::bigint
                               AND d.timestamp < split_part(pg_get_expr(p.relpartbound, p.oid), '''', 4)::bigint)",
                        &[],
                    )
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(misplaced, 0);
            }
        }
        // A second pass finds nothing more.
        let (deleted, dropped, _) = pass(&*store, cutoff, 100).await;
        assert_eq!((deleted, dropped.len()), (0, 0), "{backend}");
        assert_eq!(stored(&*store, "ada").await, left, "{backend}");
    }
}

#[tokio::test]
async fn a_retried_message_is_stored_once_across_partitions() {
    for (store, _dir, _schema) in scratch::test_stores("nudge_retention_dedup").await.unwrap() {
        let backend = store.backend();
        let now = now();
        if backend == "postgres" {
            store
                .prepare_event_partitions(month_of(now - 60 * DAY_MS))
                .await
                .unwrap();
        }
        let first = store
            .ingest(tracks("cy", &[("m-1", now - 1000)], now), now)
            .await
            .unwrap();
        assert_eq!(first, [IngestOutcome::Stored]);
        // The retry's time differs (another month: another partition), and it comes
        // in a batch with a new message and with itself twice.
        let retry = tracks(
            "cy",
            &[
                ("m-1", now - 60 * DAY_MS),
                ("m-2", now - 60 * DAY_MS),
                ("m-1", now - 2000),
            ],
            now + 5,
        );
        let outcomes = store.ingest(retry, now + 5).await.unwrap();
        assert_eq!(
            outcomes,
            [
                IngestOutcome::Duplicate,
                IngestOutcome::Stored,
                IngestOutcome::Duplicate
            ],
            "{backend}"
        );
        assert_eq!(stored(&*store, "cy").await, ["m-1", "m-2"], "{backend}");
        // Concurrent calls with the same message id (PostgreSQL: two transactions
        // racing for the claim): one stores it.
        let calls: Vec<_> = (0..4)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .ingest(tracks("cy", &[("m-3", now - i * 40 * DAY_MS)], now), now)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut stored_once = 0;
        for c in calls {
            if c.await.unwrap() == [IngestOutcome::Stored] {
                stored_once += 1;
            }
        }
        assert_eq!(stored_once, 1, "{backend}");
        assert_eq!(stored(&*store, "cy").await, ["m-1", "m-2", "m-3"], "{backend}");
    }
}

#[tokio::test]
async fn an_event_removed_by_retention_or_erasure_is_new_again_when_retried() {
    for (store, _dir, _schema) in scratch::test_stores("nudge_retention_retry").await.unwrap() {
        let backend = store.backend();
        let now = now();
        let old = now - 400 * DAY_MS;
        store
            .ingest(tracks("dee", &[("old", old), ("new", now - 1000)], now), now)
            .await
            .unwrap();
        pass(&*store, now - 30 * DAY_MS, 10).await;
        assert_eq!(stored(&*store, "dee").await, ["new"], "{backend}");
        // Its id was forgotten with it, as the events' unique index did: a late
        // retry is stored again (and the next pass removes it).
        let again = store.ingest(tracks("dee", &[("old", old)], now), now).await.unwrap();
        assert_eq!(again, [IngestOutcome::Stored], "{backend}");
        pass(&*store, now - 30 * DAY_MS, 10).await;
        assert_eq!(stored(&*store, "dee").await, ["new"], "{backend}");
        // Erasure forgets the ids of the contact's events on both backends alike.
        let dee = store
            .find_contact(&Lookup::UserId("dee".into()))
            .await
            .unwrap()
            .unwrap();
        assert!(store.delete_contact(dee.id).await.unwrap());
        let again = store
            .ingest(tracks("dee", &[("new", now - 1000)], now), now)
            .await
            .unwrap();
        assert_eq!(again, [IngestOutcome::Stored], "{backend}");
        assert_eq!(stored(&*store, "dee").await, ["new"], "{backend}");
    }
}

/// Every path that writes events de-duplicates by message id across partitions, and
/// on PostgreSQL claims each stored event's id in `event_message_ids` in the same
/// statement (no trigger does it): ingestion's batches, and the timeline events the
/// store records (here a message's queued and opened events, an open recorded twice
/// with the same key at times a month apart).
#[tokio::test]
async fn every_write_into_events_claims_its_message_id() {
    for (store, _dir, schema) in scratch::test_stores("nudge_retention_claims").await.unwrap() {
        let backend = store.backend();
        let now = now();
        if backend == "postgres" {
            store
                .prepare_event_partitions(month_of(now - 60 * DAY_MS))
                .await
                .unwrap();
        }
        store
            .ingest(
                tracks("eve", &[("t-1", now - 1000), ("t-2", now - 50 * DAY_MS)], now),
                now,
            )
            .await
            .unwrap();
        let eve = store
            .find_contact(&Lookup::UserId("eve".into()))
            .await
            .unwrap()
            .unwrap();
        let (m, _) = store
            .enqueue_message(
                NewMessage {
                    idempotency_key: "claims-mail".into(),
                    contact_id: eve.id,
                    template_id: 1,
                    template_version: 1,
                    channel: "email".into(),
                    transactional: false,
                    data: json!({}),
                    origin: None,
                },
                now,
            )
            .await
            .unwrap();
        let open = nudge_core::protocol::MessageEvent::Opened;
        let first = store
            .record_message_event(m.id, &open, "open-1".into(), now)
            .await
            .unwrap();
        let again = store
            .record_message_event(m.id, &open, "open-1".into(), now - 40 * DAY_MS)
            .await
            .unwrap();
        let other = store
            .record_message_event(m.id, &open, "open-2".into(), now - 40 * DAY_MS)
            .await
            .unwrap();
        assert_eq!((first, again, other), (true, false, true), "{backend}");
        let ids = stored(&*store, "eve").await;
        assert_eq!(ids.len(), 5, "{backend}: {ids:?}");
        assert_eq!(
            ids.iter().filter(|id| id.contains("open-1")).count(),
            1,
            "{backend}: {ids:?}"
        );
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{backend}: {ids:?}");
        if let Some(schema) = &schema {
            let (client, conn) = tokio_postgres::connect(&schema.url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            // The claimed ids are exactly the stored events' ids.
            let unmatched: i64 = client
                .query_one(
                    "SELECT count(*) FROM events e FULL JOIN event_message_ids c USING (message_id)
                     WHERE e.id IS NULL OR c.message_id IS NULL",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            let claimed: i64 = client
                .query_one("SELECT count(*) FROM event_message_ids", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!((unmatched, claimed), (0, 5));
            // No trigger claims for a statement that does not.
            let triggers: i64 = client
                .query_one(
                    "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass AND NOT tgisinternal",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            assert_eq!(triggers, 0);
        }
    }
}

/// The order totals Nudge keeps apart from the events (`contact_orders`, the traits
/// `orders_count`, `orders_revenue`, `first_order_at`, `last_order_at`) survive
/// retention: after the old orders' events are deleted, a condition on the events
/// counts only the kept ones, the traits still count them all and segments on them
/// still match, and the next order counts on from the kept totals.
#[tokio::test]
async fn order_totals_survive_the_deletion_of_their_events() {
    use nudge_core::segment::parse_condition;
    for (store, _dir, schema) in scratch::test_stores("nudge_retention_orders").await.unwrap() {
        let backend = store.backend();
        let now = now();
        let cutoff = now - 90 * DAY_MS;
        let times = [
            ("o1", now - 400 * DAY_MS),
            ("o2", now - 300 * DAY_MS),
            ("o3", now - 200 * DAY_MS),
            ("o4", now - 10 * DAY_MS),
        ];
        store.ingest(tracks("ada", &times, now), now).await.unwrap();
        let ada = store
            .find_contact(&Lookup::UserId("ada".into()))
            .await
            .unwrap()
            .unwrap();
        let year_ago = nudge_core::format_millis(now - 365 * DAY_MS);
        let kept = [
            json!({"type": "trait", "trait": "first_order_at", "op": "before", "value": year_ago}),
            json!({"type": "trait", "trait": "orders_count", "op": "greater_or_equal", "value": 4}),
            json!({"type": "trait", "trait": "orders_revenue", "op": "greater_or_equal", "value": 40}),
        ];
        let from_events = parse_condition(
            &json!({"type": "event", "event": "Order Completed", "count": {"op": "at_least", "value": 4}}),
        )
        .unwrap();
        for c in kept
            .iter()
            .map(|c| parse_condition(c).unwrap())
            .chain([from_events.clone()])
        {
            assert_eq!(
                store.segment_members(&c, now).await.unwrap(),
                [ada.id],
                "{backend}: {c:?}"
            );
        }
        let totals = store.order_totals(ada.id).await.unwrap().unwrap();
        assert_eq!((totals.count, totals.revenue), (4, 40.0));

        pass(&*store, cutoff, 100).await;
        assert_eq!(
            stored(&*store, "ada").await,
            ["o4"],
            "{backend}: the old events are gone"
        );
        assert!(
            store.segment_members(&from_events, now).await.unwrap().is_empty(),
            "{backend}: the events alone no longer say it"
        );
        for c in &kept {
            let c = parse_condition(c).unwrap();
            assert_eq!(
                store.segment_members(&c, now).await.unwrap(),
                [ada.id],
                "{backend}: {c:?}"
            );
        }
        assert_eq!(store.order_totals(ada.id).await.unwrap(), Some(totals), "{backend}");
        let ada = store.contact(ada.id).await.unwrap().unwrap();
        assert_eq!(ada.traits["orders_count"], json!(4), "{backend}");
        assert_eq!(
            ada.traits["first_order_at"],
            json!(nudge_core::format_millis(now - 400 * DAY_MS)),
            "{backend}"
        );

        store
            .ingest(tracks("ada", &[("o5", now - 1000)], now), now)
            .await
            .unwrap();
        let after = store.order_totals(ada.id).await.unwrap().unwrap();
        assert_eq!(
            (after.count, after.revenue, after.first_at),
            (5, 50.0, now - 400 * DAY_MS)
        );
        store.close().await;
        if let Some(schema) = schema {
            schema.drop_schema().await.unwrap();
        }
    }
}
