//! Conformance stories: the same behaviour, checked on every storage backend.
//! SQLite always runs (in a temporary directory); PostgreSQL runs when
//! `NUDGE_TEST_DATABASE_URL` is set, each story in a fresh schema.

use nudge_core::protocol::{IdempotencyKey, MessageEvent, MessageOrigin, StepCount, TimelineEvent};
use nudge_core::{Call, CallKind, Millis, Received, Subscription, parse_batch};
use nudge_store::*;
use serde_json::{Value, json};
use std::sync::Arc;

const T0: Millis = 1_800_000_000_000;

struct Backend {
    store: Arc<dyn Store>,
    _dir: Option<tempfile::TempDir>,
    /// The PostgreSQL schema of this story, dropped when it ends.
    pg_schema: Option<scratch::PgScratchSchema>,
}

impl Backend {
    async fn finish(self) {
        self.store.close().await;
        if let Some(schema) = self.pg_schema {
            schema.drop_schema().await.unwrap();
        }
    }
}

async fn backends() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqliteStore::open(&dir.path().join("nudge.db")).await.unwrap();
    let mut out = vec![Backend {
        store: Arc::new(sqlite),
        _dir: Some(dir),
        pg_schema: None,
    }];
    if let Ok(url) = std::env::var("NUDGE_TEST_DATABASE_URL")
        && !url.is_empty()
    {
        let (store, schema) = fresh_pg(&url).await;
        out.push(Backend {
            store: Arc::new(store),
            _dir: None,
            pg_schema: Some(schema),
        });
    }
    out
}

/// A PostgreSQL store in a schema of its own, so stories never see each other's rows.
async fn fresh_pg(url: &str) -> (PgStore, scratch::PgScratchSchema) {
    let schema = scratch::PgScratchSchema::create(url, "nudge_test").await.unwrap();
    let store = PgStore::connect(&schema.url).await.unwrap();
    (store, schema)
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{nanos}_{}", N.fetch_add(1, Ordering::Relaxed))
}

/// Messages from a Segment batch body, as the API would hand them over.
fn msgs(batch: Value) -> Vec<Call> {
    let mut n = 0;
    let mut ids = move || {
        n += 1;
        format!("auto-{}-{n}", rand_suffix())
    };
    parse_batch(
        &serde_json::to_vec(&json!({ "batch": batch })).unwrap(),
        &Received { at: T0, ip: None },
        &mut ids,
    )
    .unwrap()
    .messages
}

async fn user(store: &dyn Store, u: &str) -> nudge_core::Contact {
    store
        .find_contact(&Lookup::UserId(u.into()))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no contact {u}"))
}

/// An `Order Completed` conversion to record.
fn order(event_id: i64, contact: i64, at: Millis, revenue: f64) -> NewConversion {
    NewConversion {
        event_id,
        contact_id: contact,
        name: "Order Completed".into(),
        at,
        revenue: Some(revenue),
    }
}

async fn events(store: &dyn Store, id: i64) -> Vec<StoredEvent> {
    store
        .contact_events(
            id,
            &EventQuery {
                before: None,
                limit: 1000,
            },
        )
        .await
        .unwrap()
        .items
}

macro_rules! stories {
    ($($name:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $name() {
            for b in backends().await {
                let backend = b.store.backend();
                eprintln!("story {} on {backend}", stringify!($name));
                super_stories::$name(&*b.store).await;
                b.finish().await;
            }
        }
    )*};
}

stories!(
    answers_through_a_message_change_consent_with_their_event,
    form_submissions_and_contact_edits_score_in_their_transaction,
    anonymous_history_joins_identified_contact,
    traits_merge_and_null_removes,
    duplicates_are_stored_once,
    alias_merges_two_profiles,
    shared_device_does_not_merge_known_users,
    timeline_pages_newest_first,
    search_and_filter_contacts,
    contact_search_finds_part_of_an_address_id_phone_or_name,
    contact_search_follows_every_change,
    update_delete_and_erase,
    import_creates_and_updates,
    api_keys_lifecycle,
    users_and_sessions,
    merged_ids_resolve_and_last_seen_is_kept,
    identity_changes_are_seen_by_later_messages,
    segments_compute_mark_and_apply,
    templates_are_versioned,
    outbox_is_idempotent_leased_and_recorded,
    push_subscriptions_follow_their_contact,
    journeys_runs_timers_and_waits,
    journey_inbox_gets_the_events_journeys_act_on,
    entry_timers_and_trait_changes,
    a_duplicate_changes_no_contact,
    identify_queues_a_traits_change_only_when_traits_change,
    ingestion_marks_new_changed_and_merged_contacts_for_segments,
    campaigns_snapshot_queue_and_count,
    conversions_are_attributed_once_by_last_touch,
    campaign_batches_queue_and_count_each_message,
    report_counters_sum_exactly_the_hours_asked,
    forms_are_stored_with_unique_names_and_slugs,
    a_form_submission_creates_the_contact_with_traits_consent_and_event,
    a_form_submission_joins_the_anonymous_visitor_and_the_known_contact,
    a_double_opt_in_submission_waits_for_confirmation_and_queues_it,
    scoring_rules_give_points_with_the_event,
    scoring_caps_count_per_week,
    score_decay_is_materialised_when_its_timer_is_due,
    purchases_models_and_predictions_are_stored_alike,
    send_time_engagements_and_profiles_are_stored_alike,
    orders_are_counted_once_per_stored_event_and_kept_as_traits,
    merged_contacts_add_up_their_orders,
    erasing_a_contact_deletes_its_order_totals,
);

mod super_stories {
    use super::*;
    use nudge_core::orders::OrderTotals;

    fn at(iso: &str) -> Millis {
        nudge_core::parse_instant(iso).unwrap()
    }

    /// An `Order Completed` event of a user (or, with `anon:`, an anonymous id).
    fn order_event(who: &str, id: &str, when: &str, properties: Value) -> Value {
        let mut e = json!({"type": "track", "event": "Order Completed", "messageId": id, "timestamp": when,
                           "properties": properties});
        match who.strip_prefix("anon:") {
            Some(a) => e["anonymousId"] = json!(a),
            None => e["userId"] = json!(who),
        }
        e
    }

    /// The order traits of a contact, as `(count, revenue, first, last)`.
    fn order_traits(c: &nudge_core::Contact) -> (Value, Value, Value, Value) {
        let t = |k: &str| c.traits.get(k).cloned().unwrap_or(Value::Null);
        (
            t("orders_count"),
            t("orders_revenue"),
            t("first_order_at"),
            t("last_order_at"),
        )
    }

    /// Each stored `Order Completed` event counts once toward its contact's totals, in
    /// the transaction that stores it: a duplicate message id (in the same call or a
    /// later one) does not, nor a page or another event of that name's kind; revenue
    /// by `revenue`, else `total`, else `value`; a late order with an older time moves
    /// the first order back. The totals are the contact's traits, which segments read
    /// with date and numeric tests.
    pub async fn orders_are_counted_once_per_stored_event_and_kept_as_traits(s: &dyn Store) {
        s.create_segment(
            NewSegment {
                name: "Big spenders".into(),
                description: String::new(),
                definition: nudge_core::segment::parse_condition(
                    &json!({"type": "trait", "trait": "orders_revenue", "op": "greater_or_equal", "value": 160}),
                )
                .unwrap(),
                administrative: false,
            },
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            msgs(json!([
                order_event("ada", "o1", "2026-03-01T10:00:00Z", json!({"revenue": 100, "total": 999})),
                order_event("ada", "o2", "2026-04-01T10:00:00Z", json!({"total": 50})),
                order_event("ada", "o1", "2026-03-01T10:00:00Z", json!({"revenue": 100})),
                order_event("ada", "o3", "2026-03-15T10:00:00Z", json!({"coupon": "X"})),
                {"type": "page", "userId": "ada", "name": "Order Completed", "messageId": "p1"},
                {"type": "track", "userId": "ada", "event": "Order Refunded", "messageId": "r1",
                 "properties": {"revenue": 100}},
                order_event("bob", "o4", "2026-05-01T00:00:00Z", json!({"value": 7.5})),
            ])),
            T0,
        )
        .await
        .unwrap();
        let ada = user(s, "ada").await;
        assert_eq!(
            order_traits(&ada),
            (
                json!(3),
                json!(150.0),
                json!("2026-03-01T10:00:00.000Z"),
                json!("2026-04-01T10:00:00.000Z")
            )
        );
        assert_eq!(
            s.order_totals(ada.id).await.unwrap(),
            Some(OrderTotals {
                count: 3,
                revenue: 150.0,
                first_at: at("2026-03-01T10:00:00Z"),
                last_at: at("2026-04-01T10:00:00Z")
            })
        );
        let bob = user(s, "bob").await;
        assert_eq!(order_traits(&bob).0, json!(1));
        assert_eq!(order_traits(&bob).1, json!(7.5));
        // Segment work so far done (both contacts are new: marked).
        let settle = async || {
            let work = s.claim_segment_work(T0, 100).await.unwrap();
            let ids: Vec<i64> = work.iter().map(|w| w.contact_id).collect();
            let evals = work
                .into_iter()
                .map(|w| ContactEvaluation {
                    contact_id: w.contact_id,
                    dirty_since: w.dirty_since,
                    results: vec![],
                })
                .collect();
            s.apply_evaluations(evals, T0).await.unwrap();
            ids
        };
        settle().await;
        // A later call: a retry of o2 (stored already) and a late order, older than
        // every other one.
        s.ingest(
            msgs(json!([
                order_event("ada", "o2", "2026-04-01T10:00:00Z", json!({"total": 50})),
                order_event("ada", "o5", "2026-01-15T08:30:00Z", json!({"revenue": 10.25})),
            ])),
            T0 + 1,
        )
        .await
        .unwrap();
        let ada = user(s, "ada").await;
        assert_eq!(
            order_traits(&ada),
            (
                json!(4),
                json!(160.25),
                json!("2026-01-15T08:30:00.000Z"),
                json!("2026-04-01T10:00:00.000Z")
            )
        );
        assert_eq!(s.order_totals(bob.id).await.unwrap().unwrap().count, 1);
        assert_eq!(s.order_totals(999_999).await.unwrap(), None);
        // Segments read them: "first order before 2026-02-01", "revenue ≥ 160" (the
        // saved segment's contact was marked when its trait changed).
        let first = nudge_core::segment::parse_condition(
            &json!({"type": "trait", "trait": "first_order_at", "op": "before", "value": "2026-02-01"}),
        )
        .unwrap();
        assert_eq!(s.segment_members(&first, T0 + 2).await.unwrap(), [ada.id]);
        let spenders = s.segments().await.unwrap()[0].clone();
        assert_eq!(s.segment_members(&spenders.definition, T0 + 2).await.unwrap(), [ada.id]);
        assert_eq!(
            settle().await,
            [ada.id],
            "the contact whose orders_revenue changed is marked for the segment reading it"
        );
    }

    /// A merge adds the merged-away contact's orders to the survivor's (counts and
    /// revenue summed, the earlier first order, the later last one), and the
    /// survivor's next order counts on from there.
    pub async fn merged_contacts_add_up_their_orders(s: &dyn Store) {
        s.ingest(
            msgs(json!([
                order_event("anon:dev", "a1", "2026-01-10T00:00:00Z", json!({"revenue": 10})),
                order_event("anon:dev", "a2", "2026-06-10T00:00:00Z", json!({"revenue": 10})),
                order_event("cy", "c1", "2026-03-10T00:00:00Z", json!({"revenue": 5})),
            ])),
            T0,
        )
        .await
        .unwrap();
        let anon = s
            .find_contact(&Lookup::AnonymousId("dev".into()))
            .await
            .unwrap()
            .unwrap();
        let cy = user(s, "cy").await;
        assert_ne!(anon.id, cy.id);
        // The identify proves they are one person; in the same call, one more order
        // on the device, stored with the merge.
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "cy", "anonymousId": "dev", "traits": {}},
                order_event("anon:dev", "a3", "2026-02-01T00:00:00Z", json!({"total": 2.5})),
            ])),
            T0 + 1,
        )
        .await
        .unwrap();
        let merged = user(s, "cy").await;
        assert_eq!(
            order_traits(&merged),
            (
                json!(4),
                json!(27.5),
                json!("2026-01-10T00:00:00.000Z"),
                json!("2026-06-10T00:00:00.000Z")
            )
        );
        let survivor = merged.id;
        let gone = if survivor == cy.id { anon.id } else { cy.id };
        // The merged-away id resolves to the survivor's totals.
        assert_eq!(
            s.order_totals(gone).await.unwrap(),
            s.order_totals(survivor).await.unwrap()
        );
        s.ingest(
            msgs(json!([order_event(
                "cy",
                "c2",
                "2026-07-01T00:00:00Z",
                json!({"revenue": 1})
            )])),
            T0 + 2,
        )
        .await
        .unwrap();
        assert_eq!(
            s.order_totals(survivor).await.unwrap(),
            Some(OrderTotals {
                count: 5,
                revenue: 28.5,
                first_at: at("2026-01-10T00:00:00Z"),
                last_at: at("2026-07-01T00:00:00Z")
            })
        );
        // An alias merge combines the same way.
        s.ingest(
            msgs(json!([
                order_event("dee", "d1", "2025-12-01T00:00:00Z", json!({"revenue": 100})),
                {"type": "alias", "userId": "cy", "previousId": "dee"},
            ])),
            T0 + 3,
        )
        .await
        .unwrap();
        let cy = user(s, "cy").await;
        assert_eq!(order_traits(&cy).0, json!(6));
        assert_eq!(order_traits(&cy).1, json!(128.5));
        assert_eq!(order_traits(&cy).2, json!("2025-12-01T00:00:00.000Z"));
    }

    /// Erasing a contact deletes its order totals; the same user id later starts from
    /// nothing.
    pub async fn erasing_a_contact_deletes_its_order_totals(s: &dyn Store) {
        s.ingest(
            msgs(json!([order_event(
                "eve",
                "e1",
                "2026-01-01T00:00:00Z",
                json!({"revenue": 40})
            )])),
            T0,
        )
        .await
        .unwrap();
        let eve = user(s, "eve").await;
        assert_eq!(s.order_totals(eve.id).await.unwrap().unwrap().count, 1);
        assert!(s.delete_contact(eve.id).await.unwrap());
        assert_eq!(s.order_totals(eve.id).await.unwrap(), None);
        s.ingest(
            msgs(json!([order_event(
                "eve",
                "e2",
                "2026-02-01T00:00:00Z",
                json!({"revenue": 1})
            )])),
            T0 + 1,
        )
        .await
        .unwrap();
        let again = user(s, "eve").await;
        assert_eq!(order_traits(&again).0, json!(1));
        assert_eq!(order_traits(&again).1, json!(1.0));
    }

    fn rule(v: Value) -> nudge_core::scoring::RuleDefinition {
        nudge_core::scoring::parse_rule(&v).unwrap()
    }

    fn score_def(v: Value) -> nudge_core::scoring::ScoreDefinition {
        nudge_core::scoring::parse_score(&v).unwrap()
    }

    /// The values of a contact's score history for one score, oldest first, and its
    /// `Lead Stage Changed` events as `(from, to)`.
    async fn score_history(s: &dyn Store, id: i64, score: &str) -> (Vec<f64>, Vec<(Value, Value)>) {
        let mut changes = s.score_changes(id, 1000).await.unwrap();
        changes.reverse();
        let values = changes.iter().filter(|c| c.score == score).map(|c| c.value).collect();
        let mut evs = events(s, id).await;
        evs.reverse();
        let stages = evs
            .iter()
            .filter(|e| e.name.as_deref() == Some("Lead Stage Changed") && e.properties["score"] == json!(score))
            .map(|e| (e.properties["from"].clone(), e.properties["to"].clone()))
            .collect();
        (values, stages)
    }

    /// Scoring rules give their points in the transaction that stores what fired
    /// them: events with property filters, page views by URL pattern, trait changes,
    /// form submissions and e-mail opens; once per contact or within a daily cap; a
    /// disabled rule and a duplicate message give nothing; several named scores.
    pub async fn scoring_rules_give_points_with_the_event(s: &dyn Store) {
        s.put_score(
            score_def(json!({"name": "lead_score", "stages": [{"name": "cold"}, {"name": "warm", "from": 20}, {"name": "hot", "from": 50}]})),
            T0,
        )
        .await
        .unwrap();
        s.put_score(score_def(json!({"name": "engagement"})), T0).await.unwrap();
        let mut ids = Vec::new();
        for r in [
            json!({"name": "signed up", "points": 10, "trigger": {"type": "event", "event": "Signed Up"}, "frequency": {"type": "once"}}),
            json!({"name": "api docs", "points": 3, "trigger": {"type": "event", "event": "Viewed Docs", "where": [{"property": "section", "op": "equals", "value": "api"}]}, "frequency": {"type": "repeat", "cap": {"max": 2, "per": "day"}}}),
            json!({"name": "pricing", "points": 5, "score": "engagement", "trigger": {"type": "page_view", "url": "/pricing*"}, "frequency": {"type": "repeat"}}),
            json!({"name": "pro", "points": 20, "trigger": {"type": "trait_changed", "trait": "plan", "test": {"op": "equals", "value": "pro"}}, "frequency": {"type": "once"}}),
            json!({"name": "opens", "points": 1, "score": "engagement", "trigger": {"type": "email_opened"}, "frequency": {"type": "repeat"}}),
            json!({"name": "demo form", "points": 15, "trigger": {"type": "form_submitted", "form": "demo"}, "frequency": {"type": "once"}}),
            json!({"name": "off", "points": 100, "enabled": false, "trigger": {"type": "event", "event": "Signed Up"}, "frequency": {"type": "repeat"}}),
        ] {
            ids.push(s.create_scoring_rule(rule(r), T0).await.unwrap().id);
        }
        assert_eq!(s.scoring_rules().await.unwrap().len(), 7);
        let first = msgs(json!([
            {"type": "identify", "userId": "u1", "traits": {"email": "u1@x.test"}},
            {"type": "track", "userId": "u1", "event": "Signed Up", "messageId": "signup-1"},
            {"type": "track", "userId": "u1", "event": "Signed Up"},
            {"type": "track", "userId": "u1", "event": "Viewed Docs", "properties": {"section": "api"}},
            {"type": "track", "userId": "u1", "event": "Viewed Docs", "properties": {"section": "api"}},
            {"type": "track", "userId": "u1", "event": "Viewed Docs", "properties": {"section": "api"}},
            {"type": "track", "userId": "u1", "event": "Viewed Docs", "properties": {"section": "blog"}},
            {"type": "page", "userId": "u1", "name": "Pricing", "properties": {"url": "https://shop.test/pricing?plan=pro"}},
            {"type": "page", "userId": "u1", "name": "Blog", "properties": {"url": "https://shop.test/blog/pricing"}},
            {"type": "track", "userId": "u1", "event": "Form Submitted", "properties": {"form_id": 4, "form": "demo"}},
            {"type": "track", "userId": "u2", "event": "Form Submitted", "properties": {"form_id": 5, "form": "newsletter"}}
        ]));
        s.ingest(first, T0).await.unwrap();
        let u1 = user(s, "u1").await;
        // 10 (once) + 3 + 3 (capped at 2 a day) + 15 (the demo form).
        assert_eq!(u1.traits["lead_score"], json!(31.0));
        assert_eq!(u1.traits["engagement_score"], json!(5.0));
        let (values, stages) = score_history(s, u1.id, "lead_score").await;
        assert_eq!(values, [10.0, 13.0, 16.0, 31.0]);
        assert_eq!(stages, [(json!("cold"), json!("warm"))]);
        let u2 = user(s, "u2").await;
        assert!(!u2.traits.contains_key("lead_score"), "another form gives nothing");
        // The change names its rule and the previous value.
        let history = s.score_changes(u1.id, 1000).await.unwrap();
        let change = history.iter().find(|c| c.value == 31.0).unwrap();
        assert_eq!(change.reason, nudge_core::scoring::Reason::Rules(vec![(ids[5], 15)]));
        assert_eq!(change.previous, 16.0);
        // Nothing reads `Lead Score Changed`: it is stored only with the stage crossing
        // (16 → 31 crossed into warm), with the same facts.
        let evs = events(s, u1.id).await;
        let recorded: Vec<&serde_json::Map<String, Value>> = evs
            .iter()
            .filter(|e| e.name.as_deref() == Some("Lead Score Changed") && e.properties["score"] == json!("lead_score"))
            .map(|e| &e.properties)
            .collect();
        assert_eq!(recorded.len(), 1, "{recorded:?}");
        assert_eq!(recorded[0]["value"], json!(31.0));
        assert_eq!(recorded[0]["rule_ids"], json!([ids[5]]));
        assert_eq!(recorded[0]["previous"], json!(16.0));

        // A duplicate message is not stored, so it scores nothing.
        let again = msgs(
            json!([{"type": "track", "userId": "u1", "event": "Viewed Docs", "messageId": "signup-1", "properties": {"section": "api"}}]),
        );
        s.ingest(again, T0 + 86_400_000).await.unwrap();
        assert_eq!(user(s, "u1").await.traits["lead_score"], json!(31.0));

        // The next day the daily cap starts over; a trait change to `pro` scores once.
        let next = msgs(json!([
            {"type": "track", "userId": "u1", "event": "Viewed Docs", "properties": {"section": "api"}},
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
            {"type": "identify", "userId": "u1", "traits": {"plan": "free"}},
            {"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}
        ]));
        s.ingest(next, T0 + 86_400_000).await.unwrap();
        let u1 = user(s, "u1").await;
        assert_eq!(u1.traits["lead_score"], json!(54.0));
        let (_, stages) = score_history(s, u1.id, "lead_score").await;
        assert_eq!(stages.last().unwrap(), &(json!("warm"), json!("hot")));

        // E-mail opens score in the transaction that records them.
        let (m, _) = s
            .enqueue_message(
                NewMessage {
                    idempotency_key: "score-mail".into(),
                    contact_id: u1.id,
                    template_id: 1,
                    template_version: 1,
                    channel: "email".into(),
                    transactional: false,
                    data: json!({}),
                    origin: None,
                },
                T0,
            )
            .await
            .unwrap();
        for key in ["open-1", "open-2", "open-2"] {
            s.record_message_event(m.id, &MessageEvent::Opened, key.into(), T0 + 86_400_000)
                .await
                .unwrap();
        }
        assert_eq!(user(s, "u1").await.traits["engagement_score"], json!(7.0));

        // The contact's scores, with their stages.
        let scores = s.contact_scores(u1.id, T0 + 86_400_000).await.unwrap();
        let lead = scores.iter().find(|c| c.score == "lead_score").unwrap();
        assert_eq!((lead.value, lead.stage.as_deref()), (54.0, Some("hot")));
        let engagement = scores.iter().find(|c| c.score == "engagement").unwrap();
        assert_eq!((engagement.value, engagement.stage.as_deref()), (7.0, None));

        // Editing and deleting rules changes what the next event gives.
        let mut docs = s.scoring_rule(ids[1]).await.unwrap().unwrap().definition;
        docs.points = -4;
        docs.frequency = nudge_core::scoring::Frequency::Repeat { cap: None };
        s.update_scoring_rule(ids[1], docs, T0).await.unwrap().unwrap();
        assert!(s.delete_scoring_rule(ids[0]).await.unwrap());
        assert!(!s.delete_scoring_rule(ids[0]).await.unwrap());
        let last = msgs(json!([
            {"type": "track", "userId": "u1", "event": "Viewed Docs", "properties": {"section": "api"}},
            {"type": "track", "userId": "u9", "event": "Signed Up"}
        ]));
        s.ingest(last, T0 + 86_400_000).await.unwrap();
        assert_eq!(user(s, "u1").await.traits["lead_score"], json!(50.0));
        assert!(!user(s, "u9").await.traits.contains_key("lead_score"));

        // Once a segment reads `Lead Score Changed`, every change stores one (and marks
        // the contact for the segment), stage crossing or not.
        let lsc = |evs: &[StoredEvent]| {
            evs.iter()
                .filter(|e| e.name.as_deref() == Some("Lead Score Changed"))
                .count()
        };
        let before = lsc(&events(s, u1.id).await);
        s.create_segment(
            NewSegment {
                name: "Score moved".into(),
                description: String::new(),
                definition: nudge_core::segment::parse_condition(
                    &json!({"type": "event", "event": "Lead Score Changed"}),
                )
                .unwrap(),
                administrative: false,
            },
            T0,
        )
        .await
        .unwrap();
        let more = msgs(json!([
            {"type": "track", "userId": "u1", "event": "Viewed Docs", "properties": {"section": "api"}},
            {"type": "track", "userId": "u1", "event": "Viewed Docs", "properties": {"section": "api"}}
        ]));
        s.ingest(more, T0 + 86_400_000).await.unwrap();
        let evs = events(s, u1.id).await;
        // 50 → 46 crosses from hot to warm; 46 → 42 crosses nothing.
        assert_eq!(lsc(&evs), before + 2, "one per change");
        assert_eq!(user(s, "u1").await.traits["lead_score"], json!(42.0));
        assert_eq!(s.score_changes(u1.id, 1).await.unwrap()[0].value, 42.0, "newest first");
    }

    /// A weekly cap counts Monday to Sunday (UTC): T0 is a Friday.
    pub async fn scoring_caps_count_per_week(s: &dyn Store) {
        s.create_scoring_rule(
            rule(json!({"name": "visits", "points": 2, "trigger": {"type": "event", "event": "Visit"}, "frequency": {"type": "repeat", "cap": {"max": 2, "per": "week"}}})),
            T0,
        )
        .await
        .unwrap();
        let day = 86_400_000;
        for (at, n) in [(T0, 3), (T0 + 2 * day, 1), (T0 + 3 * day, 3), (T0 + 4 * day, 1)] {
            // Two contacts in each call, interleaved: their counters and scores are read
            // and written together, each its own.
            let batch: Vec<Value> = (0..n)
                .flat_map(|_| {
                    [
                        json!({"type": "track", "userId": "w", "event": "Visit"}),
                        json!({"type": "track", "userId": "v", "event": "Visit"}),
                    ]
                })
                .collect();
            s.ingest(msgs(json!(batch)), at).await.unwrap();
        }
        // Friday 2 of 3, Sunday none (same week), Monday 2 of 3, Tuesday none.
        for name in ["w", "v"] {
            let c = user(s, name).await;
            assert_eq!(c.traits["lead_score"], json!(8.0), "{name}");
            let (values, _) = score_history(s, c.id, "lead_score").await;
            assert_eq!(values, [2.0, 4.0, 6.0, 8.0], "{name}");
        }
    }

    /// Decay is materialised when its durable timer is due, at the moment the
    /// decayed score crosses a stage threshold or a threshold a segment tests.
    /// Purchase histories in pages of whole contacts, the per-purchase cursor, models
    /// with and without Gamma-Gamma, predictions with their traits (and the segment
    /// mark when a segment reads one), merges.
    pub async fn send_time_engagements_and_profiles_are_stored_alike(s: &dyn Store) {
        use nudge_core::send_time::{Engagement, Profile, record};
        let state = s.send_time_state().await.unwrap();
        assert_eq!(
            state,
            SendTimeState::default(),
            "a new workspace starts at the beginning"
        );
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "ada", "traits": {"email": "ada@example.com"}},
                {"type": "page", "userId": "ada", "name": "Home", "timestamp": "2027-01-05T19:00:00Z"},
                {"type": "screen", "userId": "ada", "name": "Cart", "timestamp": "2027-01-05T19:10:00Z"},
                {"type": "track", "userId": "ada", "event": "Order Completed", "timestamp": "2027-01-05T19:11:00Z"},
                {"type": "track", "userId": "ada", "event": "Email Link Clicked", "timestamp": "2027-01-05T19:12:00Z"},
                {"type": "track", "userId": "bob", "event": "Push Notification Tapped", "timestamp": "2027-01-06T08:00:00Z"}
            ])),
            T0,
        )
        .await
        .unwrap();
        let (ada, bob) = (user(s, "ada").await, user(s, "bob").await);
        // An e-mail sent, opened by a machine 2 s later and by Ada 10 minutes later.
        let t = s.create_template(new_template("news", "Hello"), T0).await.unwrap();
        let (m, _) = s
            .enqueue_message(
                NewMessage {
                    idempotency_key: "news-ada".into(),
                    contact_id: ada.id,
                    template_id: t.id,
                    template_version: t.version,
                    channel: "email".into(),
                    transactional: false,
                    data: json!({}),
                    origin: None,
                },
                T0,
            )
            .await
            .unwrap();
        s.update_messages(
            vec![MessageUpdate {
                id: m.id,
                state: MessageState::Sent,
                retry_at: None,
                recipient: Some("ada@example.com".into()),
                error: None,
                rendered: None,
                suppress: None,
                provider_id: None,
            }],
            T0 + 100,
        )
        .await
        .unwrap();
        let sent_at = s.message(m.id).await.unwrap().unwrap().sent_at;
        assert_eq!(sent_at, Some(T0 + 100));
        for (key, at) in [("machine", T0 + 2_100), ("person", T0 + 600_100)] {
            assert!(
                s.record_message_event(m.id, &MessageEvent::Opened, key.into(), at)
                    .await
                    .unwrap()
            );
        }
        // Read in two pages: the cursor moves over what is not an engagement.
        let (first, cursor) = s.engagements_since(0, 3).await.unwrap();
        let (rest, end) = s.engagements_since(cursor, 100).await.unwrap();
        let all: Vec<_> = first.iter().chain(&rest).collect();
        let kinds: Vec<(i64, Engagement)> = all.iter().map(|e| (e.contact, e.engagement)).collect();
        let opened = Engagement::EmailOpen {
            sent_at: Some(T0 + 100),
        };
        assert_eq!(
            kinds,
            vec![
                (ada.id, Engagement::PageView),
                (ada.id, Engagement::PageView),
                (ada.id, Engagement::EmailClick),
                (bob.id, Engagement::PushOpen),
                (ada.id, opened),
                (ada.id, opened),
            ]
        );
        assert_eq!(first.len(), 3);
        assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        assert_eq!(all[4].at, T0 + 2_100);
        assert_eq!(s.engagements_since(end, 100).await.unwrap(), (vec![], end));

        // Counted and stored with the cursor, once.
        let mut workspace = Profile::default();
        let mut profiles: Vec<(i64, Profile)> = vec![(ada.id, Profile::default()), (bob.id, Profile::default())];
        for e in &all {
            let p = &mut profiles.iter_mut().find(|(c, _)| *c == e.contact).unwrap().1;
            record(p, &mut workspace, e.engagement, e.at);
        }
        assert_eq!(
            workspace.engagements, 4,
            "the machine's open and the same session's screen do not count"
        );
        assert!(
            s.save_send_times(profiles.clone(), &workspace, 0, end, T0)
                .await
                .unwrap()
        );
        assert!(
            !s.save_send_times(profiles.clone(), &Profile::default(), 0, end, T0)
                .await
                .unwrap()
        );
        // The same profiles read back (weights to JSON's precision).
        let same = |a: &Profile, b: &Profile| {
            a.engagements == b.engagements
                && a.as_of == b.as_of
                && a.last_page_view == b.last_page_view
                && a.weights.len() == b.weights.len()
                && a.weights
                    .iter()
                    .zip(&b.weights)
                    .all(|(x, y)| x.0 == y.0 && (x.1 - y.1).abs() < 1e-12)
        };
        let state = s.send_time_state().await.unwrap();
        assert_eq!(state.event_cursor, end);
        assert!(same(&state.workspace, &workspace), "{:?}", state.workspace);
        let stored = s.send_time_profiles(&[ada.id, bob.id, 987_654]).await.unwrap();
        assert_eq!(stored.len(), 2);
        assert!(same(
            &s.contact_send_time(ada.id).await.unwrap().unwrap(),
            &profiles[0].1
        ));

        // A merge joins Bob's profile into Ada's; the merged-away id reads the survivor's.
        s.ingest(
            msgs(json!([{"type": "alias", "userId": "ada", "previousId": "bob"}])),
            T0 + 1,
        )
        .await
        .unwrap();
        let merged = s.contact_send_time(bob.id).await.unwrap().unwrap();
        let survivor = user(s, "ada").await.id;
        assert_eq!(merged.engagements, 3 + 1);
        assert_eq!(s.send_time_profiles(&[bob.id, ada.id]).await.unwrap().len(), 1);
        assert!(same(&s.contact_send_time(survivor).await.unwrap().unwrap(), &merged));
        // Erasing the contact erases its profile.
        assert!(s.delete_contact(survivor).await.unwrap());
        assert_eq!(s.contact_send_time(survivor).await.unwrap(), None);
    }

    pub async fn purchases_models_and_predictions_are_stored_alike(s: &dyn Store) {
        use nudge_core::predict::{self, BgNbd, GammaGamma, Model, Unit};
        use nudge_core::segment::parse_condition;
        const DAY: Millis = 86_400_000;
        let order = |u: &str, at: Millis, props: Value| {
            json!({"type": "track", "userId": u, "event": "Order Completed",
                   "timestamp": nudge_core::format_millis(at), "properties": props})
        };
        s.ingest(
            msgs(json!([
                order("a", T0 - 30 * DAY, json!({"revenue": 20})),
                order("a", T0 - 10 * DAY, json!({"total": 30})),
                order("b", T0 - 20 * DAY, json!({"value": 7.5})),
                order("c", T0 - 5 * DAY, json!({"note": "no value"})),
                order("c", T0 + DAY, json!({"revenue": 99})),
                {"type": "track", "userId": "d", "event": "Order Viewed", "properties": {"revenue": 5}},
                {"type": "page", "userId": "d", "name": "Order Completed"},
            ])),
            T0,
        )
        .await
        .unwrap();
        let (a, b, c) = (user(s, "a").await.id, user(s, "b").await.id, user(s, "c").await.id);
        let mut pages = Vec::new();
        let mut after = 0;
        loop {
            let page = s.purchase_histories(T0, after, 2).await.unwrap();
            let Some(last) = page.last() else { break };
            after = last.contact;
            pages.push(page);
        }
        assert_eq!(pages.len(), 2, "three customers, two a page");
        let all: Vec<PurchaseHistory> = pages.concat();
        assert_eq!(all.iter().map(|h| h.contact).collect::<Vec<_>>(), vec![a, b, c]);
        let values = |h: &PurchaseHistory| h.purchases.iter().map(|p| (p.at, p.value)).collect::<Vec<_>>();
        assert_eq!(values(&all[0]), vec![(T0 - 30 * DAY, 20.0), (T0 - 10 * DAY, 30.0)]);
        assert_eq!(values(&all[1]), vec![(T0 - 20 * DAY, 7.5)]);
        assert_eq!(
            values(&all[2]),
            vec![(T0 - 5 * DAY, 0.0)],
            "after `until` left out; no value is 0"
        );
        assert_eq!(values(&s.purchase_history(c, T0 + 2 * DAY).await.unwrap()).len(), 2);

        // The cursor: purchases stored after it, each contact once.
        let cursor = s.last_event_id().await.unwrap();
        assert!(cursor > 0);
        assert_eq!(s.purchasers_since(cursor, 10).await.unwrap(), (vec![], cursor));
        s.ingest(
            msgs(json!([
                order("b", T0, json!({"revenue": 1})),
                order("a", T0, json!({"revenue": 2})),
                order("b", T0 + 1, json!({"revenue": 3})),
            ])),
            T0,
        )
        .await
        .unwrap();
        let (mut buyers, moved) = s.purchasers_since(cursor, 10).await.unwrap();
        buyers.sort_unstable();
        assert_eq!(buyers, vec![a, b]);
        assert!(moved > cursor);
        let (first, one) = s.purchasers_since(cursor, 1).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(s.purchasers_since(one, 10).await.unwrap().1, moved);

        // Models: the latest is current; Gamma-Gamma may be missing.
        assert_eq!(s.prediction_model().await.unwrap(), None);
        let mut model = Model {
            unit: Unit::Days,
            until: T0,
            fitted_at: T0 + 1,
            bgnbd: BgNbd {
                r: 0.25,
                alpha: 4.5,
                a: 0.8,
                b: 2.5,
            },
            bgnbd_log_likelihood: -123.5,
            customers: 3,
            gamma_gamma: None,
            gamma_gamma_log_likelihood: None,
            repeat_customers: 0,
        };
        let first = s.save_prediction_model(&model, cursor).await.unwrap();
        assert_eq!(s.prediction_model().await.unwrap().as_ref(), Some(&first));
        model.gamma_gamma = Some(GammaGamma {
            p: 6.25,
            q: 3.75,
            gamma: 15.5,
        });
        model.gamma_gamma_log_likelihood = Some(-40.25);
        model.repeat_customers = 1;
        let second = s.save_prediction_model(&model, cursor).await.unwrap();
        assert!(second.id > first.id);
        s.advance_prediction_cursor(second.id, moved).await.unwrap();
        s.advance_prediction_cursor(second.id, cursor).await.unwrap();
        let current = s.prediction_model().await.unwrap().unwrap();
        assert_eq!(
            (current.model, current.event_cursor),
            (model.clone(), moved),
            "the cursor only moves on"
        );

        // Predictions: stored, traits written, the contact marked when a segment reads
        // one of them.
        s.create_segment(
            NewSegment {
                name: "Slipping away".into(),
                description: String::new(),
                definition: parse_condition(&json!(
                    {"type": "trait", "trait": "predicted_churn_band", "op": "equals", "value": "high"}
                ))
                .unwrap(),
                administrative: false,
            },
            T0,
        )
        .await
        .unwrap();
        let settle = async || {
            let work = s.claim_segment_work(T0, 100).await.unwrap();
            let ids: Vec<i64> = work.iter().map(|w| w.contact_id).collect();
            let evals = work
                .into_iter()
                .map(|w| ContactEvaluation {
                    contact_id: w.contact_id,
                    dirty_since: w.dirty_since,
                    results: vec![],
                })
                .collect();
            s.apply_evaluations(evals, T0).await.unwrap();
            ids
        };
        settle().await;
        let summary = |h: &PurchaseHistory| predict::summarise(&h.purchases, T0, Unit::Days).unwrap();
        let pa = model.predict(&summary(&all[0]), T0);
        let pb = model.predict(&summary(&all[1]), T0);
        assert_eq!(
            s.save_predictions(vec![(a, pa.clone()), (b, pb.clone()), (999_999, pb.clone())], T0)
                .await
                .unwrap(),
            2
        );
        let stored = s.contact_prediction(a).await.unwrap().unwrap();
        assert_eq!(stored.traits(), pa.traits());
        assert_eq!(stored.customer, pa.customer);
        assert_eq!(s.contact_prediction(c).await.unwrap(), None);
        let ua = user(s, "a").await;
        for (name, value) in pa.traits() {
            assert_eq!(ua.traits.get(&name).unwrap_or(&Value::Null), &value, "{name}");
        }
        let mut marked = settle().await;
        marked.sort_unstable();
        assert_eq!(marked, vec![a, b], "the segment reads predicted_churn_band");
        s.save_predictions(vec![(a, pa.clone())], T0 + 5).await.unwrap();
        assert_eq!(settle().await, Vec::<i64>::new(), "nothing changed, nothing marked");
        assert_eq!(user(s, "a").await.updated_at, ua.updated_at, "nor saved");

        // A merge: the survivor keeps its own predictions, the merged-away id reads them.
        s.ingest(msgs(json!([{"type": "alias", "previousId": "b", "userId": "a"}])), T0)
            .await
            .unwrap();
        let survivor = user(s, "a").await.id;
        let other = if survivor == a { b } else { a };
        assert!(
            s.contact_prediction(other).await.unwrap().is_some(),
            "read through the merge"
        );
        assert_eq!(
            s.contact_prediction(other).await.unwrap(),
            s.contact_prediction(survivor).await.unwrap()
        );
    }

    pub async fn score_decay_is_materialised_when_its_timer_is_due(s: &dyn Store) {
        use nudge_core::scoring::{DAY_MS, next_crossing};
        s.put_score(
            score_def(json!({"name": "lead_score", "half_life_days": 1, "stages": [{"name": "cold"}, {"name": "warm", "from": 20}, {"name": "hot", "from": 50}]})),
            T0,
        )
        .await
        .unwrap();
        s.create_segment(
            NewSegment {
                name: "Very hot".into(),
                description: String::new(),
                definition: nudge_core::segment::parse_condition(
                    &json!({"type": "lead_score", "op": "greater_or_equal", "value": 60}),
                )
                .unwrap(),
                administrative: false,
            },
            T0,
        )
        .await
        .unwrap();
        s.create_scoring_rule(
            rule(json!({"name": "demo", "points": 80, "trigger": {"type": "event", "event": "Demo"}, "frequency": {"type": "once"}})),
            T0,
        )
        .await
        .unwrap();
        s.ingest(msgs(json!([{"type": "track", "userId": "d", "event": "Demo"}])), T0)
            .await
            .unwrap();
        let d = user(s, "d").await;
        assert_eq!(d.traits["lead_score"], json!(80.0));
        // The segment's 60 comes first, then the stages' 50 and 20.
        let at60 = next_crossing(80.0, T0, Some(DAY_MS), &[60.0], T0).unwrap();
        let at50 = next_crossing(80.0, T0, Some(DAY_MS), &[50.0], T0).unwrap();
        let at20 = next_crossing(80.0, T0, Some(DAY_MS), &[20.0], T0).unwrap();
        assert_eq!(at20, T0 + 2 * DAY_MS + 1);
        assert_eq!(s.next_score_timer().await.unwrap(), Some(at60));
        assert_eq!(s.decay_due_scores(at60 - 1, 100).await.unwrap(), 0, "not due yet");
        assert_eq!(s.decay_due_scores(at60, 100).await.unwrap(), 1);
        let v = user(s, "d").await.traits["lead_score"].as_f64().unwrap();
        assert!(v < 60.0 && v > 59.99, "{v}");
        assert_eq!(s.next_score_timer().await.unwrap(), Some(at50));
        assert_eq!(s.decay_due_scores(at50, 100).await.unwrap(), 1);
        let (values, stages) = score_history(s, d.id, "lead_score").await;
        assert_eq!(values.len(), 3, "{values:?}");
        assert_eq!(
            stages,
            [(json!("cold"), json!("hot")), (json!("hot"), json!("warm"))],
            "{values:?}"
        );
        assert_eq!(s.next_score_timer().await.unwrap(), Some(at20));
        // Asked late, the score is its value then (and the timer for 20 is done).
        assert_eq!(s.decay_due_scores(at20 + DAY_MS, 100).await.unwrap(), 1);
        let v = user(s, "d").await.traits["lead_score"].as_f64().unwrap();
        assert!((v - 10.0).abs() < 0.01, "{v}");
        assert_eq!(s.next_score_timer().await.unwrap(), None);
        let scores = s.contact_scores(d.id, at20 + DAY_MS).await.unwrap();
        assert_eq!(scores[0].stage.as_deref(), Some("cold"));
    }

    /// A campaign: a draft edited and sent, its audience read in pages (segments
    /// joined, exclusions removed, time zones from traits), the snapshot stored once,
    /// due recipients queued through the outbox, deferred or skipped, and every
    /// message counted toward its variant (unique opens once per message).
    pub async fn campaigns_snapshot_queue_and_count(s: &dyn Store) {
        use nudge_core::campaign::{Audience, CampaignStatus, Schedule};
        use nudge_core::protocol::CampaignCounter;
        let mut ids = Vec::new();
        for i in 1..=6 {
            s.ingest(
                msgs(json!([{"type": "identify", "userId": format!("c{i}"),
                    "traits": {"email": format!("c{i}@example.com"), "timezone": if i == 2 { "Asia/Tehran" } else { "Nowhere/Else" }}}])),
                T0,
            )
            .await
            .unwrap();
            ids.push(user(s, &format!("c{i}")).await.id);
        }
        let segment = |name: &str| NewSegment {
            name: name.into(),
            description: String::new(),
            definition: nudge_core::segment::parse_condition(&json!({"type": "trait", "trait": "x", "op": "exists"}))
                .unwrap(),
            administrative: false,
        };
        let a = s.create_segment(segment("A"), T0).await.unwrap().id;
        let b = s.create_segment(segment("B"), T0).await.unwrap().id;
        let x = s.create_segment(segment("X"), T0).await.unwrap().id;
        // A: c1..c4, B: c3..c6, X (excluded): c5.
        let member = |c: usize| -> Vec<(i64, bool, Option<Millis>)> {
            vec![(a, c <= 4, None), (b, c >= 3, None), (x, c == 5, None)]
        };
        s.apply_evaluations(
            ids.iter()
                .enumerate()
                .map(|(i, &id)| ContactEvaluation {
                    contact_id: id,
                    dirty_since: None,
                    results: member(i + 1),
                })
                .collect(),
            T0,
        )
        .await
        .unwrap();

        let new = |name: &str| NewCampaign {
            name: name.into(),
            description: String::new(),
            definition: json!({"audience": {"segments": [a, b], "exclude": [x]},
                "variants": [{"name": "A", "template": 1}, {"name": "B", "template": 2}]}),
        };
        let c = s.create_campaign(new("December"), T0).await.unwrap();
        assert_eq!((c.status, c.audience, c.pending()), (CampaignStatus::Draft, 0, 0));
        assert!(matches!(
            s.create_campaign(new("December"), T0).await,
            Err(StoreError::Conflict(_))
        ));
        let edited = s
            .update_campaign(c.id, new("December sale"), T0 + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((edited.name.as_str(), edited.updated_at), ("December sale", T0 + 1));
        assert_eq!(s.update_campaign(c.id + 100, new("Nope"), T0).await.unwrap(), None);

        let launch = CampaignLaunch {
            schedule: Schedule::Now,
            start_at: T0 + 2,
            templates: vec![(1, 1), (2, 1)],
        };
        let sent = s
            .set_campaign_status(
                c.id,
                CampaignStatus::Draft,
                CampaignStatus::Sending,
                Some(launch),
                T0 + 2,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                sent.status,
                sent.schedule,
                sent.start_at,
                sent.templates.clone(),
                sent.sent_at
            ),
            (
                CampaignStatus::Sending,
                Some(Schedule::Now),
                Some(T0 + 2),
                vec![(1, 1), (2, 1)],
                Some(T0 + 2)
            )
        );
        assert_eq!(
            s.set_campaign_status(c.id, CampaignStatus::Draft, CampaignStatus::Sending, None, T0 + 2)
                .await
                .unwrap(),
            None,
            "a move from a status it is not in does nothing"
        );
        assert!(matches!(
            s.update_campaign(c.id, new("Late"), T0).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(s.delete_campaign(c.id).await, Err(StoreError::Conflict(_))));
        assert_eq!(s.active_campaigns().await.unwrap().len(), 1);

        // The audience in pages of two: c1, c2 | c3, c4 | c6 (c5 excluded) | end.
        let audience = Audience {
            segments: vec![a, b],
            exclude: vec![x],
        };
        let mut after = 0;
        let mut pages = Vec::new();
        loop {
            let page = s
                .campaign_audience_page(audience.clone(), after, 2, true)
                .await
                .unwrap();
            let Some(cursor) = page.cursor else { break };
            pages.push(page.members.iter().map(|m| m.contact_id).collect::<Vec<_>>());
            if after == 0 {
                assert_eq!(page.members[1].time_zone.as_deref(), Some("Asia/Tehran"));
                assert_eq!(page.members[0].time_zone, None, "an unknown zone is no zone");
            }
            let rows = page
                .members
                .iter()
                .map(|m| NewRecipient {
                    contact_id: m.contact_id,
                    variant: if m.contact_id == ids[5] {
                        None
                    } else {
                        Some((m.contact_id % 2) as u8)
                    },
                    holdout: m.contact_id == ids[3],
                    due_at: Some(T0 + 2),
                })
                .collect();
            s.add_campaign_recipients(c.id, rows, cursor, None, T0 + 3)
                .await
                .unwrap();
            after = cursor;
        }
        assert_eq!(pages, vec![vec![ids[0], ids[1]], vec![ids[2], ids[3]], vec![ids[5]]]);
        // Its size now, each contact once: the same five.
        assert_eq!(s.campaign_audience_size(audience.clone()).await.unwrap(), 5);
        let no_exclusions = Audience {
            segments: vec![a, b],
            exclude: vec![],
        };
        assert_eq!(s.campaign_audience_size(no_exclusions).await.unwrap(), 6);
        let nobody = Audience {
            segments: vec![],
            exclude: vec![x],
        };
        assert_eq!(s.campaign_audience_size(nobody).await.unwrap(), 0);
        // A page stored again (a crash before the cursor moved) adds nobody.
        s.add_campaign_recipients(
            c.id,
            vec![NewRecipient {
                contact_id: ids[0],
                variant: Some(0),
                holdout: false,
                due_at: Some(T0),
            }],
            after,
            Some(Some(T0 + 1000)),
            T0 + 4,
        )
        .await
        .unwrap();
        let c1 = s.campaign(c.id).await.unwrap().unwrap();
        assert_eq!((c1.audience, c1.held_out, c1.pending()), (5, 1, 4));
        assert_eq!(
            (c1.snapshot_done, c1.snapshot_cursor, c1.test_ends_at),
            (true, ids[5], Some(T0 + 1000))
        );

        // Due: the three with a variant (not the holdout, not the remainder yet).
        let due = s
            .due_campaign_recipients(c.id, audience.clone(), T0 + 2, false, 10)
            .await
            .unwrap();
        assert_eq!(
            due.iter().map(|d| d.contact_id).collect::<Vec<_>>(),
            vec![ids[0], ids[1], ids[2]]
        );
        assert_eq!(
            s.due_campaign_recipients(c.id, audience.clone(), T0 + 1, false, 10)
                .await
                .unwrap(),
            vec![]
        );
        assert_eq!(
            s.due_campaign_recipients(c.id, audience.clone(), T0 + 2, true, 10)
                .await
                .unwrap()
                .len(),
            4
        );
        assert_eq!(s.next_campaign_due(c.id, false).await.unwrap(), Some(T0 + 2));
        assert!(due.iter().all(|d| d.in_audience));
        // c2 leaves A (its only segment): still due, no longer in the audience.
        s.apply_evaluations(
            vec![ContactEvaluation {
                contact_id: ids[1],
                dirty_since: None,
                results: vec![(a, false, None)],
            }],
            T0 + 2,
        )
        .await
        .unwrap();
        let now_in: Vec<bool> = s
            .due_campaign_recipients(c.id, audience.clone(), T0 + 2, false, 10)
            .await
            .unwrap()
            .iter()
            .map(|d| d.in_audience)
            .collect();
        assert_eq!(now_in, vec![true, false, true]);

        let message = |contact: i64, variant: u8| NewMessage {
            idempotency_key: format!("campaign-{}-{contact}", c.id),
            contact_id: contact,
            template_id: 1,
            template_version: 1,
            channel: "email".into(),
            transactional: false,
            data: json!({}),
            origin: Some(MessageOrigin::Campaign {
                campaign_id: c.id,
                variant,
            }),
        };
        let outcomes = vec![
            RecipientOutcome::Queue(message(ids[0], due[0].variant.unwrap())),
            RecipientOutcome::Defer {
                contact_id: ids[1],
                until: T0 + 500,
            },
            RecipientOutcome::Skip {
                contact_id: ids[2],
                reason: "frequency_cap".into(),
            },
        ];
        s.record_campaign_outcomes(c.id, outcomes.clone(), T0 + 5)
            .await
            .unwrap();
        // Again (a round repeated after a crash): nothing changes twice.
        s.record_campaign_outcomes(c.id, outcomes, T0 + 6).await.unwrap();
        let c2 = s.campaign(c.id).await.unwrap().unwrap();
        assert_eq!((c2.queued, c2.skipped, c2.pending()), (1, 1, 2));
        let Recipient {
            variant,
            state,
            reason,
            message_id,
        } = s.campaign_recipient(c.id, ids[0]).await.unwrap().unwrap();
        assert_eq!((variant, state.as_str(), reason), (due[0].variant, "queued", None));
        let skipped = s.campaign_recipient(c.id, ids[2]).await.unwrap().unwrap();
        assert_eq!(
            (skipped.state.as_str(), skipped.reason.as_deref()),
            ("skipped", Some("frequency_cap"))
        );
        assert_eq!(
            s.due_campaign_recipients(c.id, audience.clone(), T0 + 10, false, 10)
                .await
                .unwrap(),
            vec![]
        );
        assert_eq!(s.next_campaign_due(c.id, false).await.unwrap(), Some(T0 + 500));

        // The message carries its origin and counts toward its variant.
        let m = s.message(message_id.unwrap()).await.unwrap().unwrap();
        let v = due[0].variant.unwrap();
        assert_eq!(
            m.origin,
            Some(MessageOrigin::Campaign {
                campaign_id: c.id,
                variant: v
            })
        );
        s.update_messages(
            vec![MessageUpdate {
                id: m.id,
                state: MessageState::Delivered,
                retry_at: None,
                recipient: Some("c1@example.com".into()),
                error: None,
                rendered: None,
                suppress: None,
                provider_id: None,
            }],
            T0 + 7,
        )
        .await
        .unwrap();
        let click = MessageEvent::Clicked {
            link: 0,
            url: "https://example.com/".into(),
        };
        let other_link = MessageEvent::Clicked {
            link: 1,
            url: "https://example.com/other".into(),
        };
        let unsubscribed = MessageEvent::Unsubscribed {
            subscription: "email".into(),
            one_click: true,
        };
        for (key, e) in [
            ("o1", &MessageEvent::Opened),
            ("o2", &MessageEvent::Opened),
            ("o2", &MessageEvent::Opened),
            ("k1", &click),
            ("k2", &click),
            ("k3", &other_link),
            ("u1", &unsubscribed),
            ("s1", &MessageEvent::Complained),
        ] {
            s.record_message_event(m.id, e, key.into(), T0 + 8).await.unwrap();
        }
        assert!(
            !s.record_message_event(987_654, &MessageEvent::Opened, "nowhere".into(), T0 + 8)
                .await
                .unwrap(),
            "an unknown message records nothing"
        );
        let stats = s.campaign_stats(c.id).await.unwrap();
        let got: Vec<f64> = [
            CampaignCounter::Recipients,
            CampaignCounter::Delivered,
            CampaignCounter::Opened,
            CampaignCounter::UniqueOpened,
            CampaignCounter::Clicked,
            CampaignCounter::UniqueClicked,
            CampaignCounter::Bounced,
            CampaignCounter::Unsubscribed,
            CampaignCounter::Complained,
        ]
        .iter()
        .map(|&k| stats.get(v, k))
        .collect();
        assert_eq!(got, vec![1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 0.0, 1.0, 1.0]);
        // Clicks per link: every click, and the message's first of each link.
        let links: Vec<(u8, String, u64, u64)> = s
            .campaign_links(c.id)
            .await
            .unwrap()
            .into_iter()
            .map(|l| (l.variant, l.link.url, l.link.clicks, l.link.unique_clicks))
            .collect();
        assert_eq!(
            links,
            vec![
                (v, "https://example.com/".to_string(), 2, 1),
                (v, "https://example.com/other".to_string(), 1, 1),
            ]
        );
        let timeline = events(s, m.contact_id).await;
        let complaint = timeline
            .iter()
            .find(|e| e.name.as_deref() == Some("Email Marked as Spam"))
            .expect("the complaint is on the timeline");
        assert_eq!(complaint.properties["message_id"], m.id);
        let clicked: Vec<&Value> = timeline
            .iter()
            .filter(|e| e.name.as_deref() == Some("Email Link Clicked"))
            .map(|e| &e.properties["url"])
            .collect();
        assert_eq!(clicked.len(), 3);
        assert!(clicked.iter().any(|u| **u == "https://example.com/other"));
        // The same counts per hour for the campaign and the channel, and by domain.
        let hour = T0 / 3_600_000;
        let series = s
            .report_series(ReportScope::Campaign(c.id), hour - 1, hour + 1)
            .await
            .unwrap();
        let sum = |series: &[(i64, CampaignCounter, f64)], counter: CampaignCounter| -> f64 {
            series.iter().filter(|(_, c, _)| *c == counter).map(|(_, _, v)| v).sum()
        };
        assert_eq!(
            [
                CampaignCounter::Recipients,
                CampaignCounter::Delivered,
                CampaignCounter::Opened,
                CampaignCounter::UniqueOpened,
                CampaignCounter::Clicked,
                CampaignCounter::Unsubscribed,
                CampaignCounter::Complained,
            ]
            .map(|k| sum(&series, k)),
            [1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 1.0]
        );
        let totals = s.report_totals(hour - 1, hour + 1).await.unwrap();
        assert!(
            totals.contains(&(ReportScope::Channel("email".into()), CampaignCounter::Delivered, 1.0)),
            "{totals:?}"
        );
        assert!(s.report_totals(hour + 5, hour + 9).await.unwrap().is_empty());
        assert_eq!(
            s.campaign_domains(c.id).await.unwrap(),
            vec![("example.com".to_string(), CampaignCounter::Delivered, 1.0)]
        );

        // The held-out contact's conversions within the window count toward the
        // holdout (once as converted, every one as a conversion, with revenue); later
        // ones, and other contacts' conversions, do not.
        let settings = nudge_core::attribution::ConversionSettings::default();
        const DAY: Millis = 86_400_000;
        for (event, contact, at, revenue) in [
            (2_000_001, ids[3], T0 + DAY, 30.0),
            (2_000_002, ids[3], T0 + 2 * DAY, 10.0),
            (2_000_003, ids[3], T0 + 6 * DAY, 99.0),
            (2_000_004, ids[0], T0 + DAY, 50.0),
        ] {
            s.record_conversion(order(event, contact, at, revenue), settings.clone(), T0)
                .await
                .unwrap()
                .unwrap();
        }
        let stats = s.campaign_stats(c.id).await.unwrap();
        assert_eq!(
            [
                CampaignCounter::Converted,
                CampaignCounter::Conversions,
                CampaignCounter::Revenue,
                CampaignCounter::RevenueSquares
            ]
            .map(|k| stats.holdout(k)),
            [1.0, 2.0, 40.0, 1600.0]
        );

        // The winner is chosen once; a finished campaign may be deleted.
        assert!(
            s.set_campaign_winner(c.id, 1, json!({"rule": "test"}), T0 + 9)
                .await
                .unwrap()
        );
        assert!(!s.set_campaign_winner(c.id, 0, json!({}), T0 + 9).await.unwrap());
        assert_eq!(s.campaign(c.id).await.unwrap().unwrap().winner, Some(1));
        assert_eq!(
            s.due_campaign_recipients(c.id, audience.clone(), T0 + 600, true, 10)
                .await
                .unwrap()
                .len(),
            2
        );
        let cancelled = s
            .set_campaign_status(c.id, CampaignStatus::Sending, CampaignStatus::Cancelled, None, T0 + 10)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(cancelled.completed_at, Some(T0 + 10));
        assert!(s.active_campaigns().await.unwrap().is_empty());
        assert!(s.delete_campaign(c.id).await.unwrap());
        assert_eq!(s.campaign(c.id).await.unwrap(), None);
        assert_eq!(s.campaign_stats(c.id).await.unwrap(), CampaignStats::default());
    }

    /// A conversion is recorded once per event and attributed to the message that
    /// touched the contact last — here a journey step's, whose unique opens and
    /// conversions count; a conversion no message touched is recorded unattributed.
    pub async fn conversions_are_attributed_once_by_last_touch(s: &dyn Store) {
        use nudge_core::attribution::{ConversionSettings, TouchKind};
        s.ingest(
            msgs(
                json!([{"type": "identify", "userId": "buyer", "traits": {"email": "b@example.com"}},
                        {"type": "identify", "userId": "other", "traits": {"email": "o@example.com"}}]),
            ),
            T0,
        )
        .await
        .unwrap();
        let (buyer, other) = (user(s, "buyer").await.id, user(s, "other").await.id);
        let j = s
            .create_journey(
                NewJourney {
                    name: "Welcome".into(),
                    description: String::new(),
                    priority: 0,
                    definition: json!({}),
                },
                T0,
            )
            .await
            .unwrap();
        let origin = MessageOrigin::Journey {
            journey_id: j.id,
            run_id: 1,
            step: "mail".into(),
            visit: 1,
        };
        let (m, _) = s
            .enqueue_message(
                NewMessage {
                    idempotency_key: "journey-mail".into(),
                    contact_id: buyer,
                    template_id: 1,
                    template_version: 1,
                    channel: "email".into(),
                    transactional: false,
                    data: json!({}),
                    origin: Some(origin.clone()),
                },
                T0,
            )
            .await
            .unwrap();
        for key in ["o1", "o2"] {
            s.record_message_event(m.id, &MessageEvent::Opened, key.into(), T0 + 10)
                .await
                .unwrap();
        }
        let unsubscribed = MessageEvent::Unsubscribed {
            subscription: "email:news".into(),
            one_click: false,
        };
        let click = MessageEvent::Clicked {
            link: 2,
            url: "https://shop.example/a".into(),
        };
        for (key, e) in [("u", &unsubscribed), ("s", &MessageEvent::Complained), ("k", &click)] {
            s.record_message_event(m.id, e, key.into(), T0 + 10).await.unwrap();
        }
        let settings = ConversionSettings::default();
        let c = s
            .record_conversion(order(1_000_001, buyer, T0 + 3_600_000, 40.0), settings.clone(), T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (c.message_id, c.touch, c.origin.clone()),
            (Some(m.id), Some(TouchKind::Opened), Some(origin))
        );
        assert_eq!(
            s.record_conversion(order(1_000_001, buyer, T0 + 3_600_000, 40.0), settings.clone(), T0)
                .await
                .unwrap(),
            None,
            "once per event"
        );
        s.record_conversion(order(1_000_002, buyer, T0 + 7_200_000, 10.0), settings.clone(), T0)
            .await
            .unwrap();
        let unattributed = s
            .record_conversion(order(1_000_003, other, T0, 5.0), settings.clone(), T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((unattributed.message_id, unattributed.origin), (None, None));
        let step = s.journey_stats(j.id).await.unwrap().steps["mail"].clone();
        assert_eq!(
            (
                step.opened,
                step.unique_opened,
                step.conversions,
                step.converted,
                step.conversion_revenue
            ),
            (2, 1, 2, 1, 50.0)
        );
        assert_eq!((step.unsubscribed, step.complained), (1, 1));
        assert_eq!(
            step.links,
            vec![LinkClicks {
                url: "https://shop.example/a".into(),
                clicks: 1,
                unique_clicks: 1
            }]
        );
    }

    /// A round's queued messages written as one batch: each has its outbox row (with
    /// its origin) and its `Message Queued` event, the recipient points at it, and the
    /// counters (variant recipients, the workspace's hourly count) move by exactly
    /// the messages queued, once, as for messages queued one by one.
    /// The report counters: each scope's (campaign, journey, channel) counters summed
    /// over exactly the hours asked, a scope without hours in the range left out, and
    /// one scope's hours in order.
    pub async fn report_counters_sum_exactly_the_hours_asked(s: &dyn Store) {
        use nudge_core::protocol::CampaignCounter as C;
        const HOUR: Millis = 3_600_000;
        let h0 = T0.div_euclid(HOUR);
        s.ingest(msgs(json!([{"type": "identify", "userId": "r1"}])), T0)
            .await
            .unwrap();
        let contact = user(s, "r1").await.id;
        // A campaign's e-mail at h0, a journey's at h0 + 2, an SMS of the API at h0 + 5.
        let sends = [
            (
                0,
                "email",
                Some(MessageOrigin::Campaign {
                    campaign_id: 7,
                    variant: 0,
                }),
            ),
            (
                2,
                "email",
                Some(MessageOrigin::Journey {
                    journey_id: 3,
                    run_id: 1,
                    step: "s".into(),
                    visit: 1,
                }),
            ),
            (5, "sms", None),
        ];
        let mut ids = Vec::new();
        for (i, (hour, channel, origin)) in sends.into_iter().enumerate() {
            let at = T0 + hour * HOUR;
            let new = NewMessage {
                idempotency_key: format!("report-{i}"),
                contact_id: contact,
                template_id: 1,
                template_version: 1,
                channel: channel.into(),
                transactional: false,
                data: json!({}),
                origin,
            };
            let (m, _) = s.enqueue_message(new, at).await.unwrap();
            let update = MessageUpdate {
                id: m.id,
                state: MessageState::Delivered,
                retry_at: None,
                recipient: Some("r1@example.com".into()),
                error: None,
                rendered: None,
                suppress: None,
                provider_id: None,
            };
            s.update_messages(vec![update], at + 60_000).await.unwrap();
            ids.push(m.id);
        }
        // The campaign's e-mail opened twice at h0 + 3, the journey's clicked at h0 + 2.
        let click = MessageEvent::Clicked {
            link: 0,
            url: "https://example.com/".into(),
        };
        for (message, event, key, at) in [
            (ids[0], &MessageEvent::Opened, "ro1", T0 + 3 * HOUR),
            (ids[0], &MessageEvent::Opened, "ro2", T0 + 3 * HOUR + 60_000),
            (ids[1], &click, "rc1", T0 + 2 * HOUR + 120_000),
        ] {
            assert!(s.record_message_event(message, event, key.into(), at).await.unwrap());
        }
        let totals = async |from: i64, until: i64| {
            let mut t = s.report_totals(from, until).await.unwrap();
            t.sort_by(|a, b| (a.0.key(), a.1.as_str()).cmp(&(b.0.key(), b.1.as_str())));
            t
        };
        let campaign = ReportScope::Campaign(7);
        let journey = ReportScope::Journey(3);
        let email = ReportScope::Channel("email".into());
        let sms = ReportScope::Channel("sms".into());
        let row = |scope: &ReportScope, counter, value| (scope.clone(), counter, value);
        assert_eq!(
            totals(h0, h0 + 1).await,
            vec![
                row(&campaign, C::Delivered, 1.0),
                row(&campaign, C::Recipients, 1.0),
                row(&email, C::Delivered, 1.0),
                row(&email, C::Recipients, 1.0),
            ]
        );
        assert_eq!(
            totals(h0 + 2, h0 + 3).await,
            vec![
                row(&campaign, C::Opened, 2.0),
                row(&campaign, C::UniqueOpened, 1.0),
                row(&email, C::Clicked, 1.0),
                row(&email, C::Delivered, 1.0),
                row(&email, C::Opened, 2.0),
                row(&email, C::Recipients, 1.0),
                row(&email, C::UniqueClicked, 1.0),
                row(&email, C::UniqueOpened, 1.0),
                row(&journey, C::Clicked, 1.0),
                row(&journey, C::Delivered, 1.0),
                row(&journey, C::Recipients, 1.0),
                row(&journey, C::UniqueClicked, 1.0),
            ]
        );
        let all = totals(h0 - 10, h0 + 10).await;
        assert!(all.contains(&row(&sms, C::Delivered, 1.0)), "{all:?}");
        assert!(all.contains(&row(&email, C::Recipients, 2.0)), "{all:?}");
        assert!(all.contains(&row(&campaign, C::Opened, 2.0)), "{all:?}");
        assert_eq!(all.len(), 16, "{all:?}");
        assert_eq!(totals(h0 + 6, h0 + 9).await, vec![]);
        assert_eq!(
            s.report_series(journey, h0 - 10, h0 + 10).await.unwrap(),
            vec![
                (h0 + 2, C::Clicked, 1.0),
                (h0 + 2, C::Delivered, 1.0),
                (h0 + 2, C::Recipients, 1.0),
                (h0 + 2, C::UniqueClicked, 1.0),
            ]
        );
        let series = s.report_series(email, h0, h0 + 3).await.unwrap();
        let hours: Vec<i64> = series.iter().map(|(h, _, _)| *h).collect();
        assert!(hours.is_sorted(), "{series:?}");
        assert_eq!(
            (hours.first(), hours.last(), series.len()),
            (Some(&h0), Some(&(h0 + 3)), 8)
        );
    }

    pub async fn campaign_batches_queue_and_count_each_message(s: &dyn Store) {
        use nudge_core::campaign::CampaignStatus;
        use nudge_core::protocol::CampaignCounter;
        let mut ids = Vec::new();
        for i in 1..=5 {
            s.ingest(
                msgs(json!([{"type": "identify", "userId": format!("b{i}"),
                    "traits": {"email": format!("b{i}@example.com")}}])),
                T0,
            )
            .await
            .unwrap();
            ids.push(user(s, &format!("b{i}")).await.id);
        }
        let c = s
            .create_campaign(
                NewCampaign {
                    name: "Batch".into(),
                    description: String::new(),
                    definition: json!({"audience": {"segments": [1]},
                        "variants": [{"name": "A", "template": 1}, {"name": "B", "template": 2}]}),
                },
                T0,
            )
            .await
            .unwrap();
        s.set_campaign_status(c.id, CampaignStatus::Draft, CampaignStatus::Sending, None, T0)
            .await
            .unwrap()
            .unwrap();
        let variant = |i: usize| (i % 2) as u8;
        let rows = ids
            .iter()
            .enumerate()
            .map(|(i, &id)| NewRecipient {
                contact_id: id,
                variant: Some(variant(i)),
                holdout: false,
                due_at: Some(T0),
            })
            .collect();
        let last = *ids.last().unwrap();
        s.add_campaign_recipients(c.id, rows, last, Some(None), T0)
            .await
            .unwrap();
        let message = |i: usize| NewMessage {
            idempotency_key: format!("batch-{}-{}", c.id, ids[i]),
            contact_id: ids[i],
            template_id: 1 + i64::from(variant(i)),
            template_version: 1,
            channel: "email".into(),
            transactional: false,
            data: json!({"data": {"n": i}}),
            origin: Some(MessageOrigin::Campaign {
                campaign_id: c.id,
                variant: variant(i),
            }),
        };
        // Four queued in one round (b1..b4), one skipped; then the round again.
        let mut outcomes: Vec<RecipientOutcome> = (0..4).map(|i| RecipientOutcome::Queue(message(i))).collect();
        outcomes.push(RecipientOutcome::Skip {
            contact_id: ids[4],
            reason: "left_audience".into(),
        });
        s.record_campaign_outcomes(c.id, outcomes.clone(), T0 + 5)
            .await
            .unwrap();
        s.record_campaign_outcomes(c.id, outcomes, T0 + 6).await.unwrap();
        let after = s.campaign(c.id).await.unwrap().unwrap();
        assert_eq!((after.queued, after.skipped, after.pending()), (4, 1, 0));
        let stats = s.campaign_stats(c.id).await.unwrap();
        assert_eq!(
            (
                stats.get(0, CampaignCounter::Recipients),
                stats.get(1, CampaignCounter::Recipients)
            ),
            (2.0, 2.0)
        );
        let queued: f64 = s
            .hourly_stats(T0 - 3_600_000)
            .await
            .unwrap()
            .iter()
            .filter(|h| h.metric == Metric::MessagesQueued)
            .map(|h| h.value)
            .sum();
        assert_eq!(queued, 4.0);
        for (i, &id) in ids.iter().enumerate().take(4) {
            let Recipient { state, message_id, .. } = s.campaign_recipient(c.id, id).await.unwrap().unwrap();
            assert_eq!(state, "queued");
            let m = s.message(message_id.unwrap()).await.unwrap().unwrap();
            assert_eq!(
                (
                    m.contact_id,
                    m.template_id,
                    m.state,
                    m.attempts,
                    m.created_at,
                    m.data.clone()
                ),
                (
                    id,
                    1 + i64::from(variant(i)),
                    MessageState::Queued,
                    0,
                    T0 + 5,
                    json!({"data": {"n": i}})
                )
            );
            assert_eq!(
                m.origin,
                Some(MessageOrigin::Campaign {
                    campaign_id: c.id,
                    variant: variant(i)
                })
            );
            let queued: Vec<StoredEvent> = events(s, id)
                .await
                .into_iter()
                .filter(|e| e.name.as_deref() == Some("Message Queued"))
                .collect();
            assert_eq!(queued.len(), 1, "one Message Queued event for b{}", i + 1);
            assert_eq!(queued[0].properties["message_id"], json!(m.id));
            assert_eq!(queued[0].properties["template_id"], json!(m.template_id));
            assert_eq!(queued[0].properties["state"], json!("queued"));
        }
        assert!(
            events(s, ids[4])
                .await
                .iter()
                .all(|e| e.name.as_deref() != Some("Message Queued"))
        );
    }

    /// A message whose id is stored is a duplicate before anything else: it creates,
    /// attaches and patches nothing, even when it would (an SDK resending a batch).
    pub async fn a_duplicate_changes_no_contact(s: &dyn Store) {
        s.ingest(
            msgs(json!([{"type": "track", "userId": "x", "event": "E", "messageId": "d-1"}])),
            T0,
        )
        .await
        .unwrap();
        let out = s
            .ingest(
                msgs(json!([
                    {"type": "track", "userId": "y", "event": "E", "messageId": "d-1"},
                    {"type": "identify", "userId": "x", "anonymousId": "device", "messageId": "d-1", "traits": {"plan": "a"}},
                    {"type": "alias", "userId": "z", "previousId": "x", "messageId": "d-1"},
                    {"type": "track", "userId": "x", "event": "E", "messageId": "d-1"},
                ])),
                T0,
            )
            .await
            .unwrap();
        assert_eq!(out, vec![IngestOutcome::Duplicate; 4]);
        assert_eq!(s.find_contact(&Lookup::UserId("y".into())).await.unwrap(), None);
        assert_eq!(s.find_contact(&Lookup::UserId("z".into())).await.unwrap(), None);
        assert_eq!(
            s.find_contact(&Lookup::AnonymousId("device".into())).await.unwrap(),
            None
        );
        let x = user(s, "x").await;
        assert_eq!(x.traits.get("plan"), None);
        assert_eq!(x.alias_user_ids, Vec::<String>::new());
        assert_eq!(s.stats().await.unwrap(), StoreStats { contacts: 1, events: 1 });
        // The contact is still found by later messages of the same call and the next.
        let out = s
            .ingest(
                msgs(json!([
                    {"type": "track", "userId": "x", "event": "E", "messageId": "d-2"},
                    {"type": "track", "userId": "x", "event": "E", "messageId": "d-1"},
                ])),
                T0,
            )
            .await
            .unwrap();
        assert_eq!(out, vec![IngestOutcome::Stored, IngestOutcome::Duplicate]);
        assert_eq!(events(s, x.id).await.len(), 2);
    }

    /// An `identify` queues a traits change for time-triggered journeys only when it
    /// changed the contact's traits, whether the contact is new, known or merged in the
    /// same call; the inbox row refers to the identify event, in message order.
    pub async fn identify_queues_a_traits_change_only_when_traits_change(s: &dyn Store) {
        s.set_journey_event_names(vec!["$trait:birthday".into(), "Order Completed".into()])
            .await
            .unwrap();
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "u1", "messageId": "t-1", "traits": {"birthday": "1990-05-01"}, "timestamp": "2027-01-01T00:00:00Z"},
                {"type": "identify", "userId": "u1", "messageId": "t-2", "traits": {"birthday": "1990-05-01"}},
                {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "o-1"},
                {"type": "identify", "userId": "u1", "messageId": "t-3", "traits": {"birthday": "1990-05-02", "plan": "x"}, "timestamp": "2027-01-02T00:00:00Z"},
                {"type": "page", "anonymousId": "a9", "name": "Home", "messageId": "p-1"},
                {"type": "identify", "userId": "u1", "anonymousId": "a9", "messageId": "t-4", "traits": {"birthday": "1990-05-02"}},
            ])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "u1").await;
        let stored = events(s, c.id).await;
        let event = |m: &str| stored.iter().find(|e| e.message_id == m).unwrap().id;
        let inbox = s.claim_journey_inbox(T0, 100, 60_000).await.unwrap();
        assert_eq!(
            inbox
                .iter()
                .map(|e| (e.name.as_str(), e.event_id, e.contact_id))
                .collect::<Vec<_>>(),
            vec![
                (TRAITS_CHANGED, event("t-1"), c.id),
                ("Order Completed", event("o-1"), c.id),
                (TRAITS_CHANGED, event("t-3"), c.id),
            ],
            "{inbox:?}"
        );
        assert_eq!(inbox[0].properties, json!({"traits": ["birthday"]}));
        assert_eq!(inbox[0].at, nudge_core::parse_instant("2027-01-01T00:00:00Z").unwrap());
        assert_eq!(inbox[2].properties, json!({"traits": ["birthday"]}));
        s.ack_journey_inbox(inbox.iter().map(|e| e.id).collect()).await.unwrap();
        // The same traits again, in a later call: nothing changed, nothing queued.
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "traits": {"birthday": "1990-05-02"}}])),
            T0,
        )
        .await
        .unwrap();
        assert!(s.claim_journey_inbox(T0, 100, 60_000).await.unwrap().is_empty());
    }

    /// Ingestion marks for segment re-evaluation the contacts it creates (they may match
    /// "never did X"), those whose events or traits a segment reads, and the survivor of
    /// a merge; not a known contact whose new event no segment reads.
    pub async fn ingestion_marks_new_changed_and_merged_contacts_for_segments(s: &dyn Store) {
        use nudge_core::segment::parse_condition;
        s.ingest(msgs(json!([{"type": "identify", "userId": "u1", "traits": {}}])), T0)
            .await
            .unwrap();
        s.create_segment(
            NewSegment {
                name: "Pro buyers".into(),
                description: String::new(),
                definition: parse_condition(&json!({"type": "and", "conditions": [
                    {"type": "trait", "trait": "plan", "op": "equals", "value": "pro"},
                    {"type": "event", "event": "Order Completed"},
                ]}))
                .unwrap(),
                administrative: false,
            },
            T0,
        )
        .await
        .unwrap();
        let settle = async || {
            let work = s.claim_segment_work(T0, 100).await.unwrap();
            let mut ids: Vec<i64> = work.iter().map(|w| w.contact_id).collect();
            ids.sort_unstable();
            let evals = work
                .into_iter()
                .map(|w| ContactEvaluation {
                    contact_id: w.contact_id,
                    dirty_since: w.dirty_since,
                    results: vec![],
                })
                .collect();
            s.apply_evaluations(evals, T0).await.unwrap();
            ids
        };
        settle().await;
        let u1 = user(s, "u1").await.id;
        s.ingest(
            msgs(json!([
                {"type": "track", "userId": "u1", "event": "Page Scrolled"},
                {"type": "track", "userId": "n1", "event": "Page Scrolled"},
            ])),
            T0,
        )
        .await
        .unwrap();
        let n1 = user(s, "n1").await.id;
        assert_eq!(settle().await, vec![n1], "a new contact, not a known one");
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "traits": {"plan": "pro"}}])),
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            msgs(json!([{"type": "track", "userId": "n1", "event": "Order Completed"}])),
            T0,
        )
        .await
        .unwrap();
        assert_eq!(settle().await, vec![u1, n1], "a trait and an event segments read");
        s.ingest(msgs(json!([{"type": "page", "anonymousId": "z", "name": "Home"}])), T0)
            .await
            .unwrap();
        settle().await;
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "anonymousId": "z", "traits": {}}])),
            T0,
        )
        .await
        .unwrap();
        assert_eq!(settle().await, vec![u1], "the survivor of a merge");
    }

    pub async fn anonymous_history_joins_identified_contact(s: &dyn Store) {
        let out = s
            .ingest(
                msgs(json!([
                    {"type": "page", "anonymousId": "anon-1", "name": "Home", "timestamp": "2027-01-01T10:00:00Z"},
                    {"type": "track", "anonymousId": "anon-1", "event": "Product Viewed", "properties": {"sku": "A"}, "timestamp": "2027-01-01T10:01:00Z"},
                ])),
                T0,
            )
            .await
            .unwrap();
        assert_eq!(out, vec![IngestOutcome::Stored; 2]);
        let anon = s
            .find_contact(&Lookup::AnonymousId("anon-1".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(anon.user_id, None);
        // Somebody else already known as u-1 (e.g. from a CRM import).
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u-1", "traits": {"plan": "free"}}])),
            T0,
        )
        .await
        .unwrap();
        // The visitor logs in.
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u-1", "anonymousId": "anon-1", "traits": {"email": "Ada@Example.com"}}])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "u-1").await;
        assert_eq!(c.anonymous_ids, vec!["anon-1".to_string()]);
        assert_eq!(c.email.as_deref(), Some("ada@example.com"));
        assert_eq!(c.traits["plan"], json!("free"));
        let ev = events(s, c.id).await;
        assert_eq!(ev.len(), 4, "anonymous history joined: {ev:?}");
        assert_eq!(ev.last().unwrap().name.as_deref(), Some("Home"), "oldest last");
        assert_eq!(
            s.find_contact(&Lookup::AnonymousId("anon-1".into()))
                .await
                .unwrap()
                .unwrap()
                .id,
            c.id
        );
        assert_eq!(
            s.contact(anon.id).await.unwrap().unwrap().id,
            c.id,
            "merged id resolves to survivor"
        );
        assert_eq!(
            s.find_contact(&Lookup::Email("ADA@example.com".into()))
                .await
                .unwrap()
                .unwrap()
                .id,
            c.id
        );
        assert_eq!(s.stats().await.unwrap(), StoreStats { contacts: 1, events: 4 });
    }

    pub async fn traits_merge_and_null_removes(s: &dyn Store) {
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u", "traits": {"a": 1, "b": "x", "nested": {"k": [1, 2]}}}])),
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u", "traits": {"b": null, "c": true}}])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "u").await;
        assert_eq!(
            Value::Object(c.traits),
            json!({"a": 1, "nested": {"k": [1, 2]}, "c": true})
        );
        // Track calls do not touch traits.
        s.ingest(
            msgs(json!([{"type": "track", "userId": "u", "event": "E", "traits": {"a": 99}}])),
            T0,
        )
        .await
        .unwrap();
        assert_eq!(user(s, "u").await.traits["a"], json!(1));
    }

    pub async fn duplicates_are_stored_once(s: &dyn Store) {
        let batch = json!([
            {"type": "track", "userId": "u", "event": "E", "messageId": "m-1"},
            {"type": "track", "userId": "u", "event": "E", "messageId": "m-1"},
            {"type": "track", "userId": "u", "event": "F", "messageId": "m-2"},
        ]);
        let out = s.ingest(msgs(batch.clone()), T0).await.unwrap();
        assert_eq!(
            out,
            vec![IngestOutcome::Stored, IngestOutcome::Duplicate, IngestOutcome::Stored]
        );
        let out = s.ingest(msgs(batch), T0).await.unwrap();
        assert_eq!(out, vec![IngestOutcome::Duplicate; 3]);
        // A duplicate identify does not re-apply old traits.
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u", "messageId": "i-1", "traits": {"plan": "a"}}])),
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u", "messageId": "i-2", "traits": {"plan": "b"}}])),
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u", "messageId": "i-1", "traits": {"plan": "a"}}])),
            T0,
        )
        .await
        .unwrap();
        assert_eq!(user(s, "u").await.traits["plan"], json!("b"));
        assert_eq!(s.stats().await.unwrap().events, 4);
    }

    pub async fn alias_merges_two_profiles(s: &dyn Store) {
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "old-id", "traits": {"name": "Old", "city": "Lyon"}},
                {"type": "track", "userId": "old-id", "event": "Signed Up"},
                {"type": "identify", "userId": "new-id", "traits": {"name": "New"}},
                {"type": "track", "userId": "new-id", "event": "Order Completed"},
            ])),
            T0,
        )
        .await
        .unwrap();
        let old = user(s, "old-id").await;
        s.ingest(
            msgs(json!([{"type": "alias", "userId": "new-id", "previousId": "old-id"}])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "new-id").await;
        assert_eq!(user(s, "old-id").await.id, c.id);
        assert_eq!(c.user_id.as_deref(), Some("new-id"));
        assert_eq!(c.alias_user_ids, vec!["old-id".to_string()]);
        assert_eq!(c.traits["name"], json!("New"), "survivor's traits win");
        assert_eq!(c.traits["city"], json!("Lyon"), "merged-away traits fill gaps");
        assert_eq!(events(s, c.id).await.len(), 5);
        assert_eq!(s.contact(old.id).await.unwrap().unwrap().id, c.id);
        assert_eq!(s.stats().await.unwrap().contacts, 1);
        // Alias of an unknown previous id attaches it.
        s.ingest(
            msgs(json!([{"type": "alias", "userId": "new-id", "previousId": "device-9"}])),
            T0,
        )
        .await
        .unwrap();
        assert_eq!(
            s.find_contact(&Lookup::AnonymousId("device-9".into()))
                .await
                .unwrap()
                .unwrap()
                .id,
            c.id
        );
        // Chains of merges resolve in one step.
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "newest", "traits": {}}])),
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            msgs(json!([{"type": "alias", "userId": "newest", "previousId": "new-id"}])),
            T0,
        )
        .await
        .unwrap();
        let last = user(s, "newest").await;
        assert_eq!(s.contact(old.id).await.unwrap().unwrap().id, last.id);
        assert_eq!(s.contact(c.id).await.unwrap().unwrap().id, last.id);
    }

    pub async fn shared_device_does_not_merge_known_users(s: &dyn Store) {
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "alice", "anonymousId": "tablet", "traits": {}},
                {"type": "identify", "userId": "bob", "anonymousId": "tablet", "traits": {}},
                {"type": "track", "userId": "bob", "anonymousId": "tablet", "event": "E"},
            ])),
            T0,
        )
        .await
        .unwrap();
        let (a, b) = (user(s, "alice").await, user(s, "bob").await);
        assert_ne!(a.id, b.id);
        assert_eq!(events(s, a.id).await.len(), 1);
        assert_eq!(events(s, b.id).await.len(), 2);
    }

    pub async fn timeline_pages_newest_first(s: &dyn Store) {
        let batch: Vec<Value> = (0..25)
            .map(|i| {
                // Pairs share a timestamp, so the id breaks ties.
                let ts = nudge_core::format_millis(T0 - 1_000_000 + (i / 2) * 1000);
                json!({"type": "track", "userId": "u", "event": format!("E{i:02}"), "timestamp": ts})
            })
            .collect();
        s.ingest(msgs(Value::Array(batch)), T0).await.unwrap();
        let id = user(s, "u").await.id;
        let mut seen = Vec::new();
        let mut before = None;
        loop {
            let page = s.contact_events(id, &EventQuery { before, limit: 10 }).await.unwrap();
            assert!(page.items.len() <= 10);
            seen.extend(page.items.iter().map(|e| e.name.clone().unwrap()));
            match page.next {
                Some(c) => before = Some(EventCursor::decode(&c).unwrap()),
                None => break,
            }
        }
        let expected: Vec<String> = (0..25).rev().map(|i| format!("E{i:02}")).collect();
        assert_eq!(seen, expected);
    }

    pub async fn search_and_filter_contacts(s: &dyn Store) {
        let batch: Vec<Value> = (0..30)
            .map(|i| {
                json!({"type": "identify", "userId": format!("user-{i:02}"), "traits": {
                    "email": format!("person{i:02}@{}.com", if i % 3 == 0 { "gmail" } else { "corp" }),
                    "plan": if i % 2 == 0 { "pro" } else { "free" }, "age": 20 + i % 5, "vip": i % 10 == 0,
                }})
            })
            .collect();
        s.ingest(msgs(Value::Array(batch)), T0).await.unwrap();
        let q = |f: fn(&mut ContactQuery)| {
            let mut q = ContactQuery {
                limit: 100,
                ..Default::default()
            };
            f(&mut q);
            q
        };
        let ids = |p: Page<nudge_core::Contact>| p.items.into_iter().map(|c| c.user_id.unwrap()).collect::<Vec<_>>();
        assert_eq!(
            ids(s
                .list_contacts(&q(|q| q.email = Some("PERSON07@corp.com".into())))
                .await
                .unwrap()),
            ["user-07"]
        );
        assert_eq!(
            ids(s
                .list_contacts(&q(|q| q.user_id = Some("user-11".into())))
                .await
                .unwrap()),
            ["user-11"]
        );
        assert_eq!(
            s.list_contacts(&q(|q| q.search = Some("GMAIL".into())))
                .await
                .unwrap()
                .items
                .len(),
            10
        );
        assert_eq!(
            s.list_contacts(&q(|q| q.search = Some("%".into())))
                .await
                .unwrap()
                .items
                .len(),
            0,
            "LIKE is escaped"
        );
        assert_eq!(
            s.list_contacts(&q(|q| q.traits = vec![("plan".into(), json!("pro"))]))
                .await
                .unwrap()
                .items
                .len(),
            15
        );
        assert_eq!(
            ids(s
                .list_contacts(&q(
                    |q| q.traits = vec![("plan".into(), json!("pro")), ("vip".into(), json!(true))]
                ))
                .await
                .unwrap()),
            ["user-00", "user-10", "user-20"]
        );
        assert_eq!(
            s.list_contacts(&q(|q| q.traits = vec![("age".into(), json!(22))]))
                .await
                .unwrap()
                .items
                .len(),
            6
        );
        assert_eq!(
            s.list_contacts(&q(|q| q.traits = vec![("age".into(), json!("22"))]))
                .await
                .unwrap()
                .items
                .len(),
            0
        );
        // Paging visits everyone once, in id order.
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = s
                .list_contacts(&ContactQuery {
                    after,
                    limit: 7,
                    ..Default::default()
                })
                .await
                .unwrap();
            all.extend(page.items.iter().map(|c| c.id));
            match page.next {
                Some(n) => after = Some(n.parse().unwrap()),
                None => break,
            }
        }
        assert_eq!(all.len(), 30);
        assert!(all.windows(2).all(|w| w[0] < w[1]));
    }

    /// The contacts a search term finds (by user id, else `#id`), in order, on one page.
    async fn found(s: &dyn Store, term: &str) -> Vec<String> {
        let page = s
            .list_contacts(&ContactQuery {
                search: Some(term.into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.next, None);
        page.items
            .into_iter()
            .map(|c| c.user_id.unwrap_or_else(|| format!("#{}", c.id)))
            .collect()
    }

    pub async fn contact_search_finds_part_of_an_address_id_phone_or_name(s: &dyn Store) {
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "ada-1815", "traits": {"email": "Ada.Lovelace@Example.com",
                 "first_name": "Ada", "last_name": "Lovelace", "phone": "+44 20 7946 0018"}},
                {"type": "identify", "userId": "grace", "traits": {"email": "hopper@navy.mil", "name": "Grace Hopper"}},
                {"type": "identify", "userId": "maryam", "traits": {"name": "مریم میرزاخانی", "phone": "+98 21 5555 0100"}},
                {"type": "identify", "userId": "ÖZGE", "traits": {"firstName": "Özge", "lastName": "Şahin"}},
                {"type": "track", "anonymousId": "anon-7", "event": "Page Viewed"},
            ])),
            T0,
        )
        .await
        .unwrap();
        // Anywhere in the e-mail address, user id, phone or a name, whatever the case.
        assert_eq!(found(s, "lovelace@ex").await, ["ada-1815"], "part of an e-mail address");
        assert_eq!(found(s, "LOVELACE").await, ["ada-1815"], "an address and a name, once");
        assert_eq!(found(s, "a lov").await, ["ada-1815"], "part of a name");
        assert_eq!(found(s, "  grace hopper ").await, ["grace"], "a whole name, trimmed");
        assert_eq!(found(s, "ace h").await, ["grace"]);
        assert_eq!(
            found(s, "hopper grace").await,
            Vec::<String>::new(),
            "words in their order"
        );
        assert_eq!(found(s, "-181").await, ["ada-1815"], "part of a user id");
        assert_eq!(found(s, "7946").await, ["ada-1815"], "part of a phone number");
        assert_eq!(found(s, "020 7946 001").await, Vec::<String>::new());
        assert_eq!(
            found(s, "20 7946 00").await,
            ["ada-1815"],
            "a phone written with spaces"
        );
        assert_eq!(found(s, "5555-0100").await, ["maryam"], "… or dashes");
        assert_eq!(found(s, "میرزا").await, ["maryam"], "a name in Persian");
        assert_eq!(found(s, "özge şah").await, ["ÖZGE"], "non-ASCII letters in either case");
        assert_eq!(found(s, "ŞAHIN").await, ["ÖZGE"]);
        assert_eq!(found(s, "navy.mil").await, ["grace"], "dots and dashes are themselves");
        assert_eq!(found(s, "%").await, Vec::<String>::new(), "nothing is a wildcard");
        assert_eq!(found(s, "_").await, Vec::<String>::new());
        assert_eq!(found(s, "\"a").await, Vec::<String>::new(), "quotes are text");
        assert_eq!(
            found(s, "anon").await,
            Vec::<String>::new(),
            "anonymous ids are not searched"
        );
        // One or two characters: the start of a word.
        assert_eq!(found(s, "ad").await, ["ada-1815"]);
        assert_eq!(found(s, "G").await, ["grace"]);
        assert_eq!(found(s, "ho").await, ["grace"]);
        assert_eq!(found(s, "op").await, Vec::<String>::new(), "not inside a word");
        assert_eq!(found(s, "م").await, ["maryam"]);
        assert_eq!(found(s, "44").await, ["ada-1815"], "a phone's digits are a word");
        assert_eq!(
            s.list_contacts(&ContactQuery {
                search: Some("  ".into()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .items
            .len(),
            5,
            "a blank term is no search"
        );
        // With a trait filter: both must hold.
        let page = s
            .list_contacts(&ContactQuery {
                search: Some("a".into()),
                traits: vec![("last_name".into(), json!("Lovelace"))],
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].user_id.as_deref(), Some("ada-1815"));

        // Paging: every match once, in id order, whichever way the matches are spread.
        let batch: Vec<Value> = (0..60)
            .map(|i| {
                let name = if i % 3 == 0 {
                    format!("Page Person {i:02}")
                } else {
                    format!("Other {i:02}")
                };
                json!({"type": "identify", "userId": format!("p{i:02}"), "traits": {"name": name}})
            })
            .collect();
        s.ingest(msgs(Value::Array(batch)), T0).await.unwrap();
        for term in ["page person", "pa", "person 0", "p"] {
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let page = s
                    .list_contacts(&ContactQuery {
                        search: Some(term.into()),
                        after,
                        limit: 7,
                        ..Default::default()
                    })
                    .await
                    .unwrap();
                assert!(page.items.len() <= 7);
                seen.extend(page.items.iter().map(|c| (c.id, c.user_id.clone().unwrap())));
                match page.next {
                    Some(n) => after = Some(n.parse().unwrap()),
                    None => break,
                }
            }
            assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{term}: in id order");
            let users: Vec<String> = seen.into_iter().map(|(_, u)| u).collect();
            let expected: Vec<String> = match term {
                "page person" | "pa" => (0..60).step_by(3).map(|i| format!("p{i:02}")).collect(),
                "person 0" => (0..10).step_by(3).map(|i| format!("p{i:02}")).collect(),
                // Every user id p…, Page and Person.
                _ => (0..60).map(|i| format!("p{i:02}")).collect(),
            };
            assert_eq!(users, expected, "{term}");
        }
    }

    /// The search follows a contact through every change: traits from an `identify`
    /// (in the call that creates it or later), an edit, a user id given later, a merge,
    /// an import, an erasure.
    pub async fn contact_search_follows_every_change(s: &dyn Store) {
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "u1", "traits": {"name": "Old Name"}},
                {"type": "identify", "userId": "u1", "traits": {"name": "Second Name"}},
                {"type": "track", "anonymousId": "device-1", "event": "Page Viewed"},
            ])),
            T0,
        )
        .await
        .unwrap();
        assert_eq!(found(s, "second").await, ["u1"], "renamed in the call that created it");
        assert_eq!(found(s, "old name").await, Vec::<String>::new());
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "traits": {"name": "Third Name", "email": "u1@x.io"}}])),
            T0 + 1,
        )
        .await
        .unwrap();
        assert_eq!(found(s, "third").await, ["u1"], "renamed by a later identify");
        assert_eq!(found(s, "second").await, Vec::<String>::new());
        assert_eq!(found(s, "u1@x").await, ["u1"], "a new e-mail address");
        let u1 = user(s, "u1").await;
        let patch: ContactPatch =
            serde_json::from_value(json!({"traits": {"name": null, "first_name": "Fourth", "email": null}})).unwrap();
        s.update_contact(u1.id, &patch, T0 + 2).await.unwrap().unwrap();
        assert_eq!(found(s, "fourth").await, ["u1"], "edited");
        assert_eq!(found(s, "third").await, Vec::<String>::new());
        assert_eq!(found(s, "u1@x").await, Vec::<String>::new(), "an address removed");

        // An anonymous contact that identifies later is found by its user id.
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "later-user", "anonymousId": "device-1", "traits": {}}])),
            T0 + 3,
        )
        .await
        .unwrap();
        assert_eq!(found(s, "later-us").await, ["later-user"]);
        // A merge: the survivor is found by what it took over; the merged-away one is gone.
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "u2", "traits": {"name": "Merged Away", "phone": "+1 555 0100 222"}},
                {"type": "alias", "userId": "u1", "previousId": "u2"},
            ])),
            T0 + 4,
        )
        .await
        .unwrap();
        let survivor = user(s, "u1").await;
        let page = s
            .list_contacts(&ContactQuery {
                search: Some("merged away".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.iter().map(|c| c.id).collect::<Vec<_>>(), [survivor.id]);
        assert_eq!(
            found(s, "0100 222").await,
            ["u1"],
            "the merged-away phone, now the survivor's"
        );
        // Imports: a new contact and a changed one.
        s.import_contacts(
            vec![
                ContactImport {
                    user_id: Some("imp-1".into()),
                    email: Some("imported@x.io".into()),
                    traits: json!({"name": "Imported Person"}).as_object().unwrap().clone(),
                    ..Default::default()
                },
                ContactImport {
                    user_id: Some("later-user".into()),
                    traits: json!({"last_name": "Importedname"}).as_object().unwrap().clone(),
                    ..Default::default()
                },
            ],
            T0 + 5,
        )
        .await
        .unwrap();
        assert_eq!(found(s, "imported").await, ["later-user", "imp-1"]);
        assert_eq!(found(s, "d person").await, ["imp-1"]);
        // Erasure: gone from the search with everything else.
        assert!(s.delete_contact(survivor.id).await.unwrap());
        assert_eq!(found(s, "fourth").await, Vec::<String>::new());
        assert_eq!(found(s, "merged").await, Vec::<String>::new());
        assert_eq!(found(s, "u1").await, Vec::<String>::new());
        // A new contact of the same user id starts with a text of its own.
        s.ingest(
            msgs(json!([{"type": "track", "userId": "u1", "event": "Back"}])),
            T0 + 6,
        )
        .await
        .unwrap();
        assert_eq!(found(s, "u1").await, ["u1"]);
        assert_eq!(found(s, "fourth").await, Vec::<String>::new());

        // Many contacts in one call, created and then renamed together (SQLite writes
        // them a hundred per statement): each is found by its name of the moment.
        let named = |prefix: &str| -> Vec<Call> {
            msgs(Value::Array(
                (0..250)
                    .map(|i| json!({"type": "identify", "userId": format!("bulk-{i}"), "traits": {"name": format!("{prefix} {i:03}")}}))
                    .collect(),
            ))
        };
        s.ingest(named("Bulk Person"), T0 + 7).await.unwrap();
        for i in [0, 99, 100, 199, 200, 249] {
            assert_eq!(found(s, &format!("bulk person {i:03}")).await, [format!("bulk-{i}")]);
        }
        s.ingest(named("Renamed"), T0 + 8).await.unwrap();
        for i in [0, 99, 100, 199, 200, 249] {
            assert_eq!(found(s, &format!("renamed {i:03}")).await, [format!("bulk-{i}")]);
            assert_eq!(found(s, &format!("bulk person {i:03}")).await, Vec::<String>::new());
        }
    }

    pub async fn update_delete_and_erase(s: &dyn Store) {
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "u", "anonymousId": "a", "traits": {"email": "u@x.io", "plan": "free"}},
                {"type": "track", "userId": "u", "event": "E"},
                {"type": "identify", "userId": "other", "traits": {}},
            ])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "u").await;
        let patch: ContactPatch = serde_json::from_value(
            json!({"traits": {"plan": "pro", "email": null}, "subscriptions": {"email": "unsubscribed"}}),
        )
        .unwrap();
        let updated = s.update_contact(c.id, &patch, T0 + 5).await.unwrap().unwrap();
        assert_eq!(updated.traits["plan"], json!("pro"));
        assert_eq!(updated.email, None);
        assert_eq!(updated.subscriptions["email"], Subscription::Unsubscribed);
        assert_eq!(user(s, "u").await, updated, "what update returns is what is stored");
        assert_eq!(s.update_contact(999_999, &patch, T0).await.unwrap(), None);

        assert!(s.delete_contact(c.id).await.unwrap());
        assert!(!s.delete_contact(c.id).await.unwrap());
        assert_eq!(s.contact(c.id).await.unwrap(), None);
        assert_eq!(s.find_contact(&Lookup::UserId("u".into())).await.unwrap(), None);
        assert_eq!(s.find_contact(&Lookup::AnonymousId("a".into())).await.unwrap(), None);
        assert_eq!(s.stats().await.unwrap(), StoreStats { contacts: 1, events: 1 });
        // The same user id later starts a new, empty profile.
        s.ingest(msgs(json!([{"type": "track", "userId": "u", "event": "Back"}])), T0)
            .await
            .unwrap();
        let again = user(s, "u").await;
        assert_ne!(again.id, c.id);
        assert_eq!(events(s, again.id).await.len(), 1);
    }

    pub async fn import_creates_and_updates(s: &dyn Store) {
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "traits": {"email": "one@x.io", "keep": 1}}])),
            T0,
        )
        .await
        .unwrap();
        let rows = vec![
            ContactImport {
                user_id: Some("u1".into()),
                traits: json!({"plan": "pro"}).as_object().unwrap().clone(),
                ..Default::default()
            },
            ContactImport {
                email: Some("two@x.io".into()),
                traits: json!({"name": "Two"}).as_object().unwrap().clone(),
                ..Default::default()
            },
            ContactImport {
                user_id: Some("u3".into()),
                email: Some("three@x.io".into()),
                ..Default::default()
            },
        ];
        assert_eq!(
            s.import_contacts(rows, T0).await.unwrap(),
            ImportReport { created: 2, updated: 1 }
        );
        let one = user(s, "u1").await;
        assert_eq!(one.traits["plan"], json!("pro"));
        assert_eq!(one.traits["keep"], json!(1));
        let two = s
            .find_contact(&Lookup::Email("two@x.io".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(two.user_id, None);
        // Matching by email the second time.
        let again = vec![ContactImport {
            email: Some("TWO@x.io".into()),
            user_id: None,
            subscriptions: [("email".to_string(), Subscription::Pending)].into(),
            ..Default::default()
        }];
        assert_eq!(
            s.import_contacts(again, T0).await.unwrap(),
            ImportReport { created: 0, updated: 1 }
        );
        let two = s.contact(two.id).await.unwrap().unwrap();
        assert_eq!(two.subscriptions["email"], Subscription::Pending);
        assert_eq!(user(s, "u3").await.email.as_deref(), Some("three@x.io"));
    }

    pub async fn users_and_sessions(s: &dyn Store) {
        use nudge_core::access::Role;
        assert_eq!(s.user_count().await.unwrap(), 0);
        let ana = s
            .create_user(
                NewUser {
                    email: "ana@shop.example".into(),
                    role: Role::Owner,
                    password_hash: "$argon2id$hash-a".into(),
                },
                T0,
            )
            .await
            .unwrap();
        let again = s
            .create_user(
                NewUser {
                    email: "ana@shop.example".into(),
                    role: Role::Analyst,
                    password_hash: "x".into(),
                },
                T0,
            )
            .await;
        assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
        let bo = s
            .create_user(
                NewUser {
                    email: "bo@shop.example".into(),
                    role: Role::Analyst,
                    password_hash: "$argon2id$hash-b".into(),
                },
                T0 + 1,
            )
            .await
            .unwrap();
        assert_eq!(s.user_count().await.unwrap(), 2);
        let (found, hash) = s.user_credentials("ana@shop.example").await.unwrap().unwrap();
        assert_eq!(
            (found.id, found.role, hash.as_str()),
            (ana.id, Role::Owner, "$argon2id$hash-a")
        );
        assert!(s.user_credentials("nobody@shop.example").await.unwrap().is_none());
        assert!(s.set_user_role(bo.id, Role::Marketer).await.unwrap());
        assert!(s.set_user_locale(bo.id, Some("fa".into())).await.unwrap());
        let bo = s.user(bo.id).await.unwrap().unwrap();
        assert_eq!((bo.role, bo.locale.as_deref()), (Role::Marketer, Some("fa")));

        // Sessions: found with their user, touched, expired by idle or absolute time.
        let session = |hash: &str, user: i64, expires_at: i64| NewSession {
            token_hash: hash.into(),
            user_id: user,
            csrf: format!("csrf-{hash}"),
            expires_at,
        };
        s.create_session(session("s1", ana.id, T0 + 1_000_000), T0)
            .await
            .unwrap();
        s.create_session(session("s2", bo.id, T0 + 1_000_000), T0)
            .await
            .unwrap();
        s.create_session(session("s3", bo.id, T0 + 10), T0).await.unwrap();
        let s1 = s.session("s1").await.unwrap().unwrap();
        assert_eq!((s1.user.id, s1.csrf.as_str(), s1.last_seen_at), (ana.id, "csrf-s1", T0));
        s.touch_session("s1", T0 + 500).await.unwrap();
        assert_eq!(s.session("s1").await.unwrap().unwrap().last_seen_at, T0 + 500);
        // At T0 + 600, idle since before T0 + 100: s2 (last seen T0) goes, and s3 is
        // past its absolute expiry; s1 stays.
        assert_eq!(s.delete_stale_sessions(T0 + 600, T0 + 100).await.unwrap(), 2);
        assert!(s.session("s1").await.unwrap().is_some());
        assert!(s.session("s2").await.unwrap().is_none());
        s.create_session(session("s4", bo.id, T0 + 1_000_000), T0 + 700)
            .await
            .unwrap();
        // A new password ends the user's sessions; deleting a user too.
        assert!(
            s.set_user_password(bo.id, "$argon2id$new".into(), T0 + 800)
                .await
                .unwrap()
        );
        assert!(s.session("s4").await.unwrap().is_none());
        assert_eq!(
            s.user_credentials("bo@shop.example").await.unwrap().unwrap().1,
            "$argon2id$new"
        );
        s.delete_session("s1").await.unwrap();
        assert!(s.session("s1").await.unwrap().is_none());
        s.create_session(session("s5", ana.id, T0 + 1_000_000), T0 + 900)
            .await
            .unwrap();
        assert!(s.delete_user(ana.id).await.unwrap());
        assert!(!s.delete_user(ana.id).await.unwrap());
        assert!(s.session("s5").await.unwrap().is_none());
        assert_eq!(
            s.users().await.unwrap().iter().map(|u| u.id).collect::<Vec<_>>(),
            vec![bo.id]
        );
    }

    pub async fn api_keys_lifecycle(s: &dyn Store) {
        let k = s
            .create_key(
                NewApiKey {
                    kind: KeyKind::Write,
                    name: "site".into(),
                    hash: "h1".into(),
                    prefix: "nw_ab".into(),
                    browser: BrowserAccess::default(),
                },
                T0,
            )
            .await
            .unwrap();
        let a = s
            .create_key(
                NewApiKey {
                    kind: KeyKind::Admin,
                    name: "ops".into(),
                    hash: "h2".into(),
                    prefix: "na_cd".into(),
                    browser: BrowserAccess::default(),
                },
                T0,
            )
            .await
            .unwrap();
        assert_eq!(s.find_key("h1").await.unwrap(), Some(k.clone()));
        assert_eq!(s.find_key("h2").await.unwrap().unwrap().kind, KeyKind::Admin);
        assert_eq!(s.find_key("nope").await.unwrap(), None);
        // Browser access: origins and the browser-only restriction, kept and listed.
        assert_eq!(s.browser_origins().await.unwrap(), Vec::<String>::new());
        let browser = BrowserAccess {
            allowed_origins: vec!["https://shop.example".into(), "http://localhost:8000".into()],
            browser_only: true,
        };
        let k = s.set_key_browser(k.id, browser.clone()).await.unwrap().unwrap();
        assert_eq!(k.browser, browser);
        assert_eq!(s.find_key("h1").await.unwrap().unwrap().browser, browser);
        assert_eq!(
            s.browser_origins().await.unwrap(),
            vec!["http://localhost:8000".to_string(), "https://shop.example".to_string()]
        );
        assert!(k.browser.allows("https://shop.example") && !k.browser.allows("https://evil.example"));
        assert_eq!(s.set_key_browser(9_999, browser).await.unwrap(), None);
        assert!(s.revoke_key(k.id, T0 + 1).await.unwrap());
        assert_eq!(
            s.browser_origins().await.unwrap(),
            Vec::<String>::new(),
            "a revoked key allows nothing"
        );
        assert!(!s.revoke_key(k.id, T0 + 2).await.unwrap());
        assert_eq!(s.find_key("h1").await.unwrap(), None);
        let keys = s.list_keys().await.unwrap();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0].revoked_at, Some(T0 + 1));
        assert_eq!(keys[1], a);
    }

    pub async fn merged_ids_resolve_and_last_seen_is_kept(s: &dyn Store) {
        s.ingest(
            msgs(json!([
                {"type": "track", "anonymousId": "a", "event": "Late", "timestamp": "2027-03-01T00:00:00Z"},
                {"type": "identify", "userId": "u", "traits": {}, "timestamp": "2027-01-01T00:00:00Z"},
            ])),
            T0,
        )
        .await
        .unwrap();
        // In one call: the anonymous contact is merged into u, and its newer activity
        // must still count as u's last seen time.
        s.ingest(
            msgs(json!([
                {"type": "page", "anonymousId": "a", "name": "P", "timestamp": "2027-04-01T00:00:00Z"},
                {"type": "identify", "userId": "u", "anonymousId": "a", "traits": {}, "timestamp": "2027-02-01T00:00:00Z"},
            ])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "u").await;
        assert_eq!(c.last_seen_at, nudge_core::parse_instant("2027-04-01T00:00:00Z"));
        assert_eq!(events(s, c.id).await.len(), 4);
        assert_eq!(s.stats().await.unwrap().contacts, 1);
        let _ = CallKind::Track;
    }

    /// Each step depends on what the previous calls changed about identities (a
    /// backend that caches lookups must keep the cache exact).
    pub async fn identity_changes_are_seen_by_later_messages(s: &dyn Store) {
        let step = |v: Value| msgs(json!([v]));
        s.ingest(
            step(json!({"type": "track", "anonymousId": "dev", "event": "Opened"})),
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            step(json!({"type": "identify", "userId": "ann", "anonymousId": "dev", "traits": {}})),
            T0,
        )
        .await
        .unwrap();
        // The device now belongs to a known user: another user on it is another person.
        s.ingest(
            step(json!({"type": "identify", "userId": "ben", "anonymousId": "dev", "traits": {}})),
            T0,
        )
        .await
        .unwrap();
        let (ann, ben) = (user(s, "ann").await, user(s, "ben").await);
        assert_ne!(ann.id, ben.id);
        assert_eq!(ann.alias_user_ids, Vec::<String>::new());
        // A second anonymous profile merged into ann: its id now points at ann.
        s.ingest(
            step(json!({"type": "page", "anonymousId": "laptop", "name": "Home"})),
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            step(json!({"type": "identify", "userId": "ann", "anonymousId": "laptop", "traits": {}})),
            T0,
        )
        .await
        .unwrap();
        s.ingest(
            step(json!({"type": "track", "anonymousId": "laptop", "event": "After"})),
            T0,
        )
        .await
        .unwrap();
        assert_eq!(events(s, ann.id).await.len(), 5);
        // Erased contacts are forgotten: the same user id starts over.
        assert!(s.delete_contact(ben.id).await.unwrap());
        s.ingest(step(json!({"type": "track", "userId": "ben", "event": "Again"})), T0)
            .await
            .unwrap();
        let ben2 = user(s, "ben").await;
        assert_ne!(ben2.id, ben.id);
        assert_eq!(events(s, ben2.id).await.len(), 1);
        // Alias after the fact moves everything, and later messages follow it.
        s.ingest(step(json!({"type": "alias", "userId": "ann", "previousId": "ben"})), T0)
            .await
            .unwrap();
        s.ingest(
            step(json!({"type": "track", "userId": "ben", "event": "Via alias"})),
            T0,
        )
        .await
        .unwrap();
        assert_eq!(user(s, "ben").await.id, ann.id);
        assert_eq!(events(s, ann.id).await.len(), 8);
        assert_eq!(s.stats().await.unwrap().contacts, 1);
    }

    /// Segment storage: definitions, SQL computation with history, dirty marks from
    /// ingestion and updates, evaluations applied with timers and timeline events,
    /// merges and erasure cleaning up.
    pub async fn segments_compute_mark_and_apply(s: &dyn Store) {
        use nudge_core::segment::parse_condition;
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "a", "traits": {"plan": "pro"}},
                {"type": "identify", "userId": "b", "traits": {"plan": "free"}},
                {"type": "track", "userId": "a", "event": "Order Completed", "properties": {"total": 10}, "timestamp": "2027-01-10T00:00:00Z"},
            ])),
            T0,
        )
        .await
        .unwrap();
        let (a, b) = (user(s, "a").await.id, user(s, "b").await.id);
        assert!(
            s.claim_segment_work(T0, 100).await.unwrap().is_empty(),
            "no segments, no marks"
        );
        let pro = s
            .create_segment(
                NewSegment {
                    name: "Pro".into(),
                    description: "pro plan".into(),
                    definition: parse_condition(
                        &json!({"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}),
                    )
                    .unwrap(),
                    administrative: false,
                },
                T0,
            )
            .await
            .unwrap();
        let buyers = s
            .create_segment(
                NewSegment {
                    name: "Recent buyers".into(),
                    description: String::new(),
                    definition: parse_condition(
                        &json!({"type": "event", "event": "Order Completed", "window": {"last_days": 30}}),
                    )
                    .unwrap(),
                    administrative: false,
                },
                T0,
            )
            .await
            .unwrap();
        assert_eq!(s.segments().await.unwrap().len(), 2);
        assert_eq!(s.segment_size(pro.id).await.unwrap(), 1);
        assert_eq!(s.segment_member_page(pro.id, None, 10).await.unwrap().items, vec![a]);
        // Orders on 2027-01-10 are not within 30 days of T0 (2027-01-15 + ...).
        let in_buyers = s.segment_size(buyers.id).await.unwrap();
        // A time-based definition marks everyone for the worker (to schedule flips).
        let work: Vec<i64> = s
            .claim_segment_work(T0, 100)
            .await
            .unwrap()
            .iter()
            .map(|w| w.contact_id)
            .collect();
        assert!(work.contains(&a) && work.contains(&b), "{work:?}");

        // The worker answers: b joins Pro, a's buyer status gets a timer.
        let evals: Vec<ContactEvaluation> = s
            .claim_segment_work(T0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|w| ContactEvaluation {
                contact_id: w.contact_id,
                dirty_since: w.dirty_since,
                results: vec![
                    (pro.id, true, None),
                    (buyers.id, in_buyers == 1 && w.contact_id == a, Some(T0 + 1000)),
                ],
            })
            .collect();
        let changes = s.apply_evaluations(evals, T0 + 5).await.unwrap();
        assert_eq!(
            changes.entered.iter().filter(|(seg, _)| *seg == pro.id).count(),
            1,
            "only b was new to Pro"
        );
        assert!(
            s.claim_segment_work(T0, 100).await.unwrap().is_empty(),
            "answered marks are cleared"
        );
        assert_eq!(s.next_segment_timer().await.unwrap(), Some(T0 + 1000));
        let due: Vec<i64> = s
            .claim_segment_work(T0 + 1000, 100)
            .await
            .unwrap()
            .iter()
            .map(|w| w.contact_id)
            .collect();
        assert_eq!(due.len(), 2, "timers come due: {due:?}");
        let stays = s.contact_memberships(b).await.unwrap();
        assert_eq!(
            (stays.len(), stays[0].segment_id, stays[0].exited_at),
            (1, pro.id, None)
        );
        let timeline = events(s, b).await;
        assert_eq!(timeline[0].name.as_deref(), Some("Segment Entered"));
        assert_eq!(timeline[0].properties["segment_id"], json!(pro.id));

        // Ingestion marks contacts whose segments read what changed, and only them.
        s.ingest(
            msgs(json!([{"type": "track", "userId": "a", "event": "Unrelated"}])),
            T0 + 10,
        )
        .await
        .unwrap();
        assert!(
            s.claim_segment_work(T0, 100).await.unwrap().is_empty(),
            "no segment reads `Unrelated`"
        );
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "b", "traits": {"plan": "free"}}])),
            T0 + 10,
        )
        .await
        .unwrap();
        let work = s.claim_segment_work(T0, 100).await.unwrap();
        assert_eq!(
            work.iter().map(|w| w.contact_id).collect::<Vec<_>>(),
            vec![b],
            "a trait Pro reads"
        );
        // A mark made after a claim survives the answer to that claim.
        s.ingest(
            msgs(json!([{"type": "track", "userId": "b", "event": "Order Completed"}])),
            T0 + 20,
        )
        .await
        .unwrap();
        s.apply_evaluations(
            vec![ContactEvaluation {
                contact_id: b,
                dirty_since: work[0].dirty_since,
                results: vec![(pro.id, false, None)],
            }],
            T0 + 30,
        )
        .await
        .unwrap();
        assert_eq!(
            s.claim_segment_work(T0, 100).await.unwrap().len(),
            1,
            "b's newer mark stays"
        );
        let stays = s.contact_memberships(b).await.unwrap();
        assert_eq!(stays[0].exited_at, Some(T0 + 30));
        let sizes = s.segment_size_at(pro.id, vec![T0 + 1, T0 + 10, T0 + 40]).await.unwrap();
        assert_eq!(sizes.iter().map(|(_, n)| *n).collect::<Vec<_>>(), vec![1, 2, 1]);

        // A new contact is marked (it may match "never did X" segments).
        s.ingest(msgs(json!([{"type": "page", "anonymousId": "visitor"}])), T0 + 40)
            .await
            .unwrap();
        let visitor = s
            .find_contact(&Lookup::AnonymousId("visitor".into()))
            .await
            .unwrap()
            .unwrap()
            .id;
        assert!(
            s.claim_segment_work(T0, 100)
                .await
                .unwrap()
                .iter()
                .any(|w| w.contact_id == visitor)
        );

        // Erasure forgets memberships; deleting a segment forgets it everywhere.
        assert!(s.delete_contact(b).await.unwrap());
        assert!(s.contact_memberships(b).await.unwrap().is_empty());
        assert!(s.delete_segment(pro.id).await.unwrap());
        assert_eq!(s.segment(pro.id).await.unwrap(), None);
        assert!(
            s.contact_memberships(a)
                .await
                .unwrap()
                .iter()
                .all(|m| m.segment_id != pro.id)
        );

        // Definition changes recompute and bump the version.
        let mut def = s.segment(buyers.id).await.unwrap().unwrap();
        def.definition = parse_condition(&json!({"type": "event", "event": "Order Completed"})).unwrap();
        let updated = s
            .update_segment(
                buyers.id,
                NewSegment {
                    name: def.name.clone(),
                    description: def.description.clone(),
                    definition: def.definition,
                    administrative: false,
                },
                T0 + 50,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(updated.version, 2);
        assert_eq!(
            s.segment_size(buyers.id).await.unwrap(),
            1,
            "a still has an order (b was erased)"
        );

        // An administrative segment: its members are left out of every other one.
        let pro_def =
            || parse_condition(&json!({"type": "trait", "trait": "plan", "op": "equals", "value": "pro"})).unwrap();
        let test = s
            .create_segment(
                NewSegment {
                    name: "Test contacts".into(),
                    description: String::new(),
                    definition: pro_def(),
                    administrative: true,
                },
                T0 + 60,
            )
            .await
            .unwrap();
        assert!(test.administrative);
        assert_eq!(s.segment_member_page(test.id, None, 10).await.unwrap().items, vec![a]);
        let marked: Vec<i64> = s
            .claim_segment_work(T0 + 60, 100)
            .await
            .unwrap()
            .iter()
            .map(|w| w.contact_id)
            .collect();
        assert!(marked.contains(&a), "everyone is re-evaluated: {marked:?}");
        let pro2 = s
            .create_segment(
                NewSegment {
                    name: "Pro again".into(),
                    description: String::new(),
                    definition: pro_def(),
                    administrative: false,
                },
                T0 + 61,
            )
            .await
            .unwrap();
        assert_eq!(s.segment_size(pro2.id).await.unwrap(), 0, "a is a test contact");
        let all = s.segments().await.unwrap();
        assert_eq!(administrative_ids(&all), vec![test.id]);
        assert!(
            !s.segment_members(&pro2.effective_definition(&all), T0 + 62)
                .await
                .unwrap()
                .contains(&a)
        );
        assert!(s.segment_members(&pro_def(), T0 + 62).await.unwrap().contains(&a));
        // Deleting it gives its members back to the other segments (re-evaluated).
        let answered: Vec<ContactEvaluation> = s
            .claim_segment_work(T0 + 62, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|w| ContactEvaluation {
                contact_id: w.contact_id,
                dirty_since: w.dirty_since,
                results: vec![],
            })
            .collect();
        s.apply_evaluations(answered, T0 + 62).await.unwrap();
        assert!(s.claim_segment_work(T0 + 62, 100).await.unwrap().is_empty());
        assert!(s.delete_segment(test.id).await.unwrap());
        let marked: Vec<i64> = s
            .claim_segment_work(T0 + 63, 100)
            .await
            .unwrap()
            .iter()
            .map(|w| w.contact_id)
            .collect();
        assert!(marked.contains(&a), "{marked:?}");
    }

    fn new_template(name: &str, subject: &str) -> NewTemplate {
        NewTemplate {
            name: name.into(),
            description: String::new(),
            channel: "email".into(),
            transactional: false,
            topic: Some("newsletter".into()),
            content: json!({"channel": "email", "subject": subject, "html": "<p>Hi</p>"}),
        }
    }

    pub async fn templates_are_versioned(s: &dyn Store) {
        let t = s.create_template(new_template("welcome", "v1"), T0).await.unwrap();
        assert_eq!((t.version, t.content["subject"].as_str()), (1, Some("v1")));
        let err = s
            .create_template(new_template("welcome", "again"), T0)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let t2 = s
            .update_template(t.id, new_template("welcome", "v2"), T0 + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (t2.version, t2.content["subject"].as_str(), t2.created_at, t2.updated_at),
            (2, Some("v2"), T0, T0 + 1)
        );
        let versions = s.template_versions(t.id).await.unwrap();
        assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), vec![2, 1]);
        assert_eq!(
            s.template_version(t.id, 1).await.unwrap().unwrap().content["subject"],
            "v1"
        );
        assert_eq!(s.template_by_name("welcome").await.unwrap().unwrap().id, t.id);
        let mut sms = new_template("welcome", "x");
        sms.channel = "sms".into();
        assert!(matches!(
            s.update_template(t.id, sms, T0).await,
            Err(StoreError::Conflict(_))
        ));
        assert!(
            s.update_template(9999, new_template("other", "x"), T0)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(s.templates().await.unwrap().len(), 1);
        assert!(s.delete_template(t.id).await.unwrap());
        assert!(s.template(t.id).await.unwrap().is_none());
        assert_eq!(s.setting_or_init("k", "first").await.unwrap(), "first");
        assert_eq!(s.setting_or_init("k", "second").await.unwrap(), "first");
        assert_eq!(s.setting("k").await.unwrap().as_deref(), Some("first"));
        assert_eq!(s.setting("none").await.unwrap(), None);
        s.put_setting("k", Some("third")).await.unwrap();
        assert_eq!(s.setting("k").await.unwrap().as_deref(), Some("third"));
        s.put_setting("k", None).await.unwrap();
        assert_eq!(s.setting("k").await.unwrap(), None);
        s.put_setting("k", None).await.unwrap();
        assert_eq!(s.setting_or_init("k", "fourth").await.unwrap(), "fourth");
        assert!(s.template_versions(t.id).await.unwrap().is_empty());
    }

    /// An unsubscribe or a double opt-in confirmation through a message: the consent
    /// change and its event in one transaction; a confirmation of a subscription that
    /// is not pending changes nothing and records nothing.
    pub async fn answers_through_a_message_change_consent_with_their_event(s: &dyn Store) {
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "a1", "traits": {"email": "a1@example.com"}}])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "a1").await;
        let t = s.create_template(new_template("news", "Hello"), T0).await.unwrap();
        let (m, _) = s
            .enqueue_message(
                NewMessage {
                    idempotency_key: "answer-1".into(),
                    contact_id: c.id,
                    template_id: t.id,
                    template_version: t.version,
                    channel: "email".into(),
                    transactional: true,
                    data: json!({"confirm": "email:news"}),
                    origin: None,
                },
                T0,
            )
            .await
            .unwrap();
        let named =
            |events: &[StoredEvent], name: &str| events.iter().filter(|e| e.name.as_deref() == Some(name)).count();
        let confirm = MessageEvent::SubscriptionConfirmed {
            subscription: "email:news".into(),
        };
        // Never asked for: refused, nothing recorded.
        assert_eq!(
            s.answer_message(m.id, &confirm, "c1".into(), T0 + 1).await.unwrap(),
            Answer::NotPending
        );
        assert_eq!(named(&events(s, c.id).await, "Subscription Confirmed"), 0);
        // Pending: subscribed, with the event.
        let pending = ContactPatch {
            subscriptions: std::collections::BTreeMap::from([("email:news".to_string(), Subscription::Pending)]),
            ..Default::default()
        };
        s.update_contact(c.id, &pending, T0 + 2).await.unwrap();
        assert_eq!(
            s.answer_message(m.id, &confirm, "c1".into(), T0 + 3).await.unwrap(),
            Answer::Recorded
        );
        let contact = s.contact(c.id).await.unwrap().unwrap();
        assert_eq!(contact.subscriptions.get("email:news"), Some(&Subscription::Subscribed));
        assert_eq!(named(&events(s, c.id).await, "Subscription Confirmed"), 1);
        assert_eq!(
            s.answer_message(m.id, &confirm, "c1".into(), T0 + 4).await.unwrap(),
            Answer::AlreadyConfirmed
        );
        // An unsubscribe through the message: the state and the event together, once
        // per key.
        let unsubscribe = MessageEvent::Unsubscribed {
            subscription: "email:news".into(),
            one_click: false,
        };
        assert_eq!(
            s.answer_message(m.id, &unsubscribe, "u1".into(), T0 + 5).await.unwrap(),
            Answer::Recorded
        );
        assert_eq!(
            s.answer_message(m.id, &unsubscribe, "u1".into(), T0 + 6).await.unwrap(),
            Answer::Repeated
        );
        let contact = s.contact(c.id).await.unwrap().unwrap();
        assert_eq!(
            contact.subscriptions.get("email:news"),
            Some(&Subscription::Unsubscribed)
        );
        assert_eq!(named(&events(s, c.id).await, "Unsubscribed"), 1);
        // The old confirmation link no longer subscribes anyone.
        assert_eq!(
            s.answer_message(m.id, &confirm, "c2".into(), T0 + 7).await.unwrap(),
            Answer::NotPending
        );
        assert_eq!(
            s.contact(c.id).await.unwrap().unwrap().subscriptions.get("email:news"),
            Some(&Subscription::Unsubscribed)
        );
        assert_eq!(
            s.answer_message(987_654, &unsubscribe, "u2".into(), T0 + 8)
                .await
                .unwrap(),
            Answer::NoMessage
        );
    }

    pub async fn outbox_is_idempotent_leased_and_recorded(s: &dyn Store) {
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "traits": {"email": "U1@example.com"}}])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "u1").await;
        let t = s.create_template(new_template("news", "Hello"), T0).await.unwrap();
        let new = |key: &str| NewMessage {
            idempotency_key: key.into(),
            contact_id: c.id,
            template_id: t.id,
            template_version: t.version,
            channel: "email".into(),
            transactional: false,
            data: json!({"data": {"k": key}}),
            origin: None,
        };
        let (m1, created) = s.enqueue_message(new("k1"), T0).await.unwrap();
        assert!(created);
        assert_eq!(
            (m1.state, m1.attempts, m1.next_attempt_at),
            (MessageState::Queued, 0, Some(T0))
        );
        let (again, created) = s.enqueue_message(new("k1"), T0 + 5).await.unwrap();
        assert!(!created, "same key, same message");
        assert_eq!(again.id, m1.id);
        let (m2, _) = s.enqueue_message(new("k2"), T0 + 1).await.unwrap();
        let (m3, _) = s.enqueue_message(new("k3"), T0 + 2).await.unwrap();
        assert!(matches!(s.delete_template(t.id).await, Err(StoreError::Conflict(_))));

        // Claims lease: a second claim before the lease ends gets nothing.
        let claimed = s.claim_messages(T0 + 10, 2, 60_000).await.unwrap();
        assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m1.id, m2.id]);
        let rest = s.claim_messages(T0 + 10, 10, 60_000).await.unwrap();
        assert_eq!(rest.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m3.id]);
        assert!(s.claim_messages(T0 + 20, 10, 60_000).await.unwrap().is_empty());
        assert_eq!(s.next_message_due().await.unwrap(), Some(T0 + 10 + 60_000));
        // The worker "dies": once the lease runs out the messages are due again.
        assert!(s.claim_messages(T0 + 60_009, 10, 60_000).await.unwrap().is_empty());
        assert_eq!(s.claim_messages(T0 + 60_010, 10, 60_000).await.unwrap().len(), 3);
        // A restart of the only delivering process may end all leases at once.
        assert!(s.claim_messages(T0 + 60_011, 10, 60_000).await.unwrap().is_empty());
        assert_eq!(s.release_leases().await.unwrap(), 3);
        assert_eq!(s.claim_messages(T0 + 60_011, 10, 60_000).await.unwrap().len(), 3);

        s.update_messages(
            vec![
                MessageUpdate {
                    id: m1.id,
                    state: MessageState::Sent,
                    retry_at: None,
                    recipient: Some("u1@example.com".into()),
                    error: None,
                    rendered: Some(json!({"subject": "Hello"})),
                    suppress: None,
                    provider_id: Some("SM1".into()),
                },
                MessageUpdate {
                    id: m2.id,
                    state: MessageState::Queued,
                    retry_at: Some(T0 + 500),
                    recipient: Some("u1@example.com".into()),
                    error: Some("421 try later".into()),
                    rendered: None,
                    suppress: None,
                    provider_id: None,
                },
                MessageUpdate {
                    id: m3.id,
                    state: MessageState::Bounced,
                    retry_at: None,
                    recipient: Some("U1@example.com".into()),
                    error: Some("550 no such user".into()),
                    rendered: None,
                    suppress: Some("hard_bounce".into()),
                    provider_id: None,
                },
            ],
            T0 + 100,
        )
        .await
        .unwrap();
        let m1 = s.message(m1.id).await.unwrap().unwrap();
        assert_eq!(
            (m1.state, m1.attempts, m1.sent_at, m1.next_attempt_at),
            (MessageState::Sent, 1, Some(T0 + 100), None)
        );
        assert_eq!(m1.rendered, Some(json!({"subject": "Hello"})));
        let m2 = s.message(m2.id).await.unwrap().unwrap();
        assert_eq!(
            (m2.state, m2.attempts, m2.next_attempt_at),
            (MessageState::Queued, 1, Some(T0 + 500))
        );
        assert_eq!(m2.error.as_deref(), Some("421 try later"));
        let sup = s.suppression("email", "u1@EXAMPLE.com").await.unwrap().unwrap();
        assert_eq!(sup.reason, "hard_bounce");
        assert_eq!(s.suppressions(Some("email")).await.unwrap().len(), 1);
        assert!(s.remove_suppression("email", "u1@example.com").await.unwrap());
        assert!(s.suppression("email", "u1@example.com").await.unwrap().is_none());

        let page = s
            .list_messages(&MessageQuery {
                contact_id: Some(c.id),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m3.id, m2.id]);
        let before = page.next.unwrap().parse().unwrap();
        let page = s
            .list_messages(&MessageQuery {
                contact_id: Some(c.id),
                before: Some(before),
                limit: 2,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m1.id]);
        let sent = s
            .list_messages(&MessageQuery {
                state: Some(MessageState::Sent),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(sent.items.len(), 1);

        // Many at once, in one transaction; known keys return the stored message.
        let batch = s
            .enqueue_messages(vec![new("batch-1"), new("batch-2"), new("batch-1")], T0 + 150)
            .await
            .unwrap();
        assert_eq!(
            batch.iter().map(|(_, created)| *created).collect::<Vec<_>>(),
            [true, true, false]
        );
        assert_eq!(batch[0].0.id, batch[2].0.id);
        assert_eq!(batch[1].0.state, MessageState::Queued);

        // Opens are idempotent per key; every state change is on the timeline.
        assert!(
            s.record_message_event(m1.id, &MessageEvent::Opened, "open-1".into(), T0 + 200)
                .await
                .unwrap()
        );
        assert!(
            !s.record_message_event(m1.id, &MessageEvent::Opened, "open-1".into(), T0 + 300)
                .await
                .unwrap()
        );
        let names: Vec<String> = events(s, c.id).await.into_iter().filter_map(|e| e.name).collect();
        for expected in ["Message Queued", "Message Sent", "Message Bounced", "Email Opened"] {
            assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
        }
        // k1, k2, k3 and the two new ones of the batch.
        assert_eq!(names.iter().filter(|n| *n == "Message Queued").count(), 5);
        assert_eq!(names.iter().filter(|n| *n == "Email Opened").count(), 1);
        // The workspace's hourly counts follow, each message queued once.
        let mut totals = std::collections::BTreeMap::new();
        for h in s.hourly_stats(T0 - 3_600_000).await.unwrap() {
            *totals.entry(h.metric).or_insert(0.0) += h.value;
        }
        assert_eq!(
            totals,
            [
                (Metric::MessagesQueued, 5.0),
                (Metric::MessagesSent, 1.0),
                (Metric::MessagesOpened, 1.0),
                (Metric::MessagesBounced, 1.0),
            ]
            .into_iter()
            .collect(),
        );

        // Delivery receipts name the message by the provider's id.
        let receipt = |provider_id: &str, state| Receipt {
            channel: "email".into(),
            provider_id: provider_id.into(),
            state,
            error: None,
        };
        assert_eq!(
            s.message(m1.id).await.unwrap().unwrap().provider_id.as_deref(),
            Some("SM1")
        );
        assert!(
            s.record_receipt(receipt("nope", MessageState::Delivered), T0 + 150)
                .await
                .unwrap()
                .is_none()
        );
        let d = s
            .record_receipt(receipt("SM1", MessageState::Delivered), T0 + 150)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (d.state, d.attempts, d.sent_at),
            (MessageState::Delivered, 1, Some(T0 + 100))
        );
        // A repeated receipt changes nothing; a later bounce does, and suppresses.
        let again = s
            .record_receipt(receipt("SM1", MessageState::Delivered), T0 + 160)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(again.updated_at, T0 + 150);
        let b = s
            .record_receipt(
                Receipt {
                    error: Some("mailbox full for good".into()),
                    ..receipt("SM1", MessageState::Bounced)
                },
                T0 + 170,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.state, b.error.as_deref()),
            (MessageState::Bounced, Some("mailbox full for good"))
        );
        assert_eq!(
            s.suppression("email", "u1@example.com").await.unwrap().unwrap().reason,
            "hard_bounce"
        );
        assert!(s.remove_suppression("email", "u1@example.com").await.unwrap());
        let timeline = s
            .contact_events(
                c.id,
                &EventQuery {
                    before: None,
                    limit: 50,
                },
            )
            .await
            .unwrap();
        for name in ["Message Delivered", "Message Bounced"] {
            assert_eq!(
                timeline
                    .items
                    .iter()
                    .filter(|e| e.name.as_deref() == Some(name))
                    .count(),
                if name == "Message Bounced" { 2 } else { 1 },
                "{name}"
            );
        }

        // Erasure (GDPR) takes the contact's messages with it.
        assert!(s.delete_contact(c.id).await.unwrap());
        assert!(s.message(m1.id).await.unwrap().is_none());
        assert!(
            s.list_messages(&MessageQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .items
            .is_empty()
        );
        assert!(
            !s.record_message_event(m1.id, &MessageEvent::Opened, "open-2".into(), T0)
                .await
                .unwrap()
        );
    }

    pub async fn push_subscriptions_follow_their_contact(s: &dyn Store) {
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "pu-1", "traits": {}},
                {"type": "identify", "userId": "pu-2", "traits": {}},
                {"type": "page", "anonymousId": "p-anon", "name": "Home"},
            ])),
            T0,
        )
        .await
        .unwrap();
        let (u1, u2) = (user(s, "pu-1").await, user(s, "pu-2").await);
        let anon = s
            .find_contact(&Lookup::AnonymousId("p-anon".into()))
            .await
            .unwrap()
            .unwrap();
        let new = |contact, endpoint: &str| NewPushSubscription {
            contact_id: contact,
            endpoint: endpoint.into(),
            p256dh: format!("key-of-{endpoint}"),
            auth: "auth".into(),
            user_agent: Some("Firefox".into()),
        };
        let a = s
            .add_push_subscription(new(u1.id, "https://push.example/a"), T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                a.contact_id,
                a.endpoint.as_str(),
                a.created_at,
                a.updated_at,
                a.last_used_at
            ),
            (u1.id, "https://push.example/a", T0, T0, None)
        );
        s.add_push_subscription(new(anon.id, "https://push.example/b"), T0)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.push_subscriptions(u1.id).await.unwrap(), vec![a.clone()]);
        assert_eq!(
            s.add_push_subscription(new(999_999, "https://push.example/x"), T0)
                .await
                .unwrap(),
            None,
            "no such contact"
        );

        // The same browser subscribes again, logged in as pu-2: one row, re-pointed,
        // with the new keys.
        let mut again = new(u2.id, "https://push.example/a");
        again.p256dh = "new-key".into();
        let moved = s.add_push_subscription(again, T0 + 10).await.unwrap().unwrap();
        assert_eq!(
            (
                moved.id,
                moved.contact_id,
                moved.p256dh.as_str(),
                moved.created_at,
                moved.updated_at
            ),
            (a.id, u2.id, "new-key", T0, T0 + 10)
        );
        assert!(s.push_subscriptions(u1.id).await.unwrap().is_empty());
        assert_eq!(s.push_subscriptions(u2.id).await.unwrap(), vec![moved]);

        s.push_subscription_used("https://push.example/a", T0 + 20)
            .await
            .unwrap();
        assert_eq!(
            s.push_subscriptions(u2.id).await.unwrap()[0].last_used_at,
            Some(T0 + 20)
        );

        // The anonymous visitor logs in as pu-1: its subscription moves with its
        // events, and the merged-away id still finds it.
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "pu-1", "anonymousId": "p-anon", "traits": {}}])),
            T0 + 30,
        )
        .await
        .unwrap();
        let subs = s.push_subscriptions(u1.id).await.unwrap();
        assert_eq!(subs.len(), 1);
        assert_eq!(
            (subs[0].contact_id, subs[0].endpoint.as_str()),
            (u1.id, "https://push.example/b")
        );
        assert_eq!(s.push_subscriptions(anon.id).await.unwrap(), subs);
        // Adding through the merged-away id lands on the survivor.
        let c = s
            .add_push_subscription(new(anon.id, "https://push.example/c"), T0 + 40)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(c.contact_id, u1.id);

        assert!(s.remove_push_subscription("https://push.example/b").await.unwrap());
        assert!(!s.remove_push_subscription("https://push.example/b").await.unwrap());
        let left: Vec<String> = s
            .push_subscriptions(u1.id)
            .await
            .unwrap()
            .into_iter()
            .map(|p| p.endpoint)
            .collect();
        assert_eq!(left, vec!["https://push.example/c".to_string()]);

        // Erasure (GDPR) takes them too; other contacts keep theirs.
        assert!(s.delete_contact(u1.id).await.unwrap());
        assert!(s.push_subscriptions(u1.id).await.unwrap().is_empty());
        assert!(s.push_subscriptions(anon.id).await.unwrap().is_empty());
        assert!(!s.remove_push_subscription("https://push.example/c").await.unwrap());
        assert_eq!(s.push_subscriptions(u2.id).await.unwrap().len(), 1);
    }
    pub async fn journeys_runs_timers_and_waits(s: &dyn Store) {
        const H: Millis = 3_600_000;
        let new = |def: Value| NewJourney {
            name: "Abandoned cart".into(),
            description: "remind, then stop on purchase".into(),
            priority: 5,
            definition: def,
        };
        let j = s.create_journey(new(json!({"v": 1})), T0).await.unwrap();
        assert_eq!(
            (j.status, j.version, j.published_version),
            (JourneyStatus::Draft, 1, None)
        );
        let err = s.create_journey(new(json!({})), T0).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        let j = s
            .update_journey(j.id, new(json!({"v": 2})), T0 + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((j.version, j.definition["v"].as_i64()), (2, Some(2)));
        assert_eq!(
            s.journey_version(j.id, 1).await.unwrap().unwrap().definition,
            json!({"v": 1})
        );
        assert!(s.update_journey(999, new(json!({})), T0).await.unwrap().is_none());
        let j = s
            .set_journey_status(j.id, JourneyStatus::Live, true, T0 + 2)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((j.status, j.published_version), (JourneyStatus::Live, Some(2)));
        let j = s
            .set_journey_status(j.id, JourneyStatus::Paused, false, T0 + 3)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((j.status, j.published_version), (JourneyStatus::Paused, Some(2)));
        assert_eq!(s.journeys().await.unwrap().len(), 1);

        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}}])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "u1").await;
        let t = s
            .create_template(new_template("reminder", "Your cart"), T0)
            .await
            .unwrap();
        let message = |key: &str| NewMessage {
            idempotency_key: key.into(),
            contact_id: c.id,
            template_id: t.id,
            template_version: 1,
            channel: "email".into(),
            transactional: false,
            data: json!({}),
            origin: None,
        };

        // Entering: the run, its timer, its wait and an event, in one transaction;
        // the same entry key never starts a second run.
        let first = RunWrite {
            step: Some("wait".into()),
            state: json!({"cart_id": "cart-1"}),
            set_timers: vec![("timeout".into(), T0 + H)],
            waits: Some(vec![("Order Completed".into(), Some("cart-1".into()))]),
            events: vec![TimelineEvent {
                name: "Journey Entered".into(),
                properties: json!({"journey_id": j.id}),
                key: IdempotencyKey::external("entered-1"),
                counts: None,
            }],
            ..Default::default()
        };
        let entry = NewRun {
            journey_id: j.id,
            version: 2,
            contact_id: c.id,
            entry_key: Some("cart-1".into()),
        };
        let run = s.start_run(entry.clone(), first.clone(), T0).await.unwrap().unwrap();
        assert_eq!(
            (run.step.as_deref(), run.is_active(), run.version),
            (Some("wait"), true, 2)
        );
        assert!(s.start_run(entry, first, T0).await.unwrap().is_none());
        let waiting = s.waiting_runs(c.id, "Order Completed").await.unwrap();
        assert_eq!(
            waiting,
            vec![Waiting {
                run_id: run.id,
                event: "Order Completed".into(),
                match_value: Some("cart-1".into())
            }]
        );
        assert!(s.waiting_runs(c.id, "Cart Updated").await.unwrap().is_empty());
        assert_eq!(s.runs_per_step(j.id).await.unwrap(), vec![("wait".to_string(), 1)]);
        assert!(
            events(s, c.id)
                .await
                .iter()
                .any(|e| e.name.as_deref() == Some("Journey Entered"))
        );

        // Timers come due, are leased, and come back when a lease runs out.
        assert_eq!(s.next_timer_due().await.unwrap(), Some(T0 + H));
        assert!(s.claim_timers(T0, 10, 60_000).await.unwrap().is_empty());
        let due = s.claim_timers(T0 + H, 10, 60_000).await.unwrap();
        assert_eq!(
            due,
            vec![DueTimer {
                run_id: run.id,
                key: "timeout".into(),
                due_at: T0 + H
            }]
        );
        assert!(s.claim_timers(T0 + H + 1, 10, 60_000).await.unwrap().is_empty());
        assert_eq!(s.release_journey_leases().await.unwrap(), 1);
        assert_eq!(
            s.claim_timers(T0 + H + 2, 10, 59_998).await.unwrap().len(),
            1,
            "released"
        );
        assert!(s.claim_timers(T0 + H + 3, 10, 60_000).await.unwrap().is_empty());
        assert_eq!(s.claim_timers(T0 + H + 60_000, 10, 60_000).await.unwrap().len(), 1);

        // A transition: timer fired, reminder sent, next wait; the message is in the
        // outbox once even when the write is repeated.
        let remind = RunWrite {
            run_id: run.id,
            step: Some("wait-2".into()),
            state: json!({"cart_id": "cart-1", "sent": 1}),
            clear_timers: ClearTimers::Keys(vec!["timeout".into()]),
            set_timers: vec![("wait".into(), T0 + 24 * H)],
            waits: Some(vec![]),
            messages: vec![NewMessage {
                origin: Some(MessageOrigin::Journey {
                    journey_id: j.id,
                    run_id: run.id,
                    step: "remind".into(),
                    visit: 1,
                }),
                ..message(IdempotencyKey::step(run.id, "remind", 1).as_str())
            }],
            events: vec![TimelineEvent {
                name: "Journey Step Reached".into(),
                properties: json!({"journey_id": j.id, "step": "remind", "run_id": run.id}),
                key: IdempotencyKey::reached(run.id, "remind", 1),
                counts: Some(StepCount {
                    journey_id: j.id,
                    reached: Some("remind".into()),
                    left: None,
                }),
            }],
            ..Default::default()
        };
        s.write_runs(vec![remind.clone(), remind], T0 + H).await.unwrap();
        // Active runs of the journey, paged by id; a write may move a run to another
        // version.
        let active = s.active_runs(j.id, 0, 10).await.unwrap();
        assert_eq!(
            active.iter().map(|r| (r.id, r.version)).collect::<Vec<_>>(),
            vec![(run.id, 2)]
        );
        assert!(s.active_runs(j.id, run.id, 10).await.unwrap().is_empty());
        let moved = RunWrite {
            run_id: run.id,
            step: Some("wait-2".into()),
            state: json!({"cart_id": "cart-1", "sent": 1}),
            version: Some(1),
            ..Default::default()
        };
        s.write_runs(vec![moved], T0 + H).await.unwrap();
        assert_eq!(s.run(run.id).await.unwrap().unwrap().version, 1);
        s.write_runs(
            vec![RunWrite {
                run_id: run.id,
                step: Some("wait-2".into()),
                state: json!({"cart_id": "cart-1", "sent": 1}),
                version: Some(2),
                ..Default::default()
            }],
            T0 + H,
        )
        .await
        .unwrap();
        let run = s.run(run.id).await.unwrap().unwrap();
        assert_eq!(run.version, 2);
        // A transition computed from an older revision is not written, and reported.
        let revision = run.revision;
        assert!(revision >= 3, "every write adds one: {revision}");
        let stale = RunWrite {
            run_id: run.id,
            step: Some("elsewhere".into()),
            state: json!({"stale": true}),
            expected_revision: Some(revision - 1),
            ..Default::default()
        };
        let current = RunWrite {
            expected_revision: Some(revision),
            ..stale.clone()
        };
        assert_eq!(s.write_runs(vec![stale], T0 + H).await.unwrap(), vec![run.id]);
        let unchanged = s.run(run.id).await.unwrap().unwrap();
        assert_eq!(
            (unchanged.step.as_deref(), unchanged.revision),
            (Some("wait-2"), revision)
        );
        assert!(s.write_runs(vec![current], T0 + H).await.unwrap().is_empty());
        let moved = s.run(run.id).await.unwrap().unwrap();
        assert_eq!(
            (moved.step.as_deref(), moved.revision),
            (Some("elsewhere"), revision + 1)
        );
        s.write_runs(
            vec![RunWrite {
                run_id: run.id,
                step: Some("wait-2".into()),
                state: json!({"cart_id": "cart-1", "sent": 1}),
                ..Default::default()
            }],
            T0 + H,
        )
        .await
        .unwrap();
        let run = s.run(run.id).await.unwrap().unwrap();
        assert_eq!(
            (run.step.as_deref(), run.state["sent"].as_i64()),
            (Some("wait-2"), Some(1))
        );
        assert_eq!(s.next_timer_due().await.unwrap(), Some(T0 + 24 * H));
        assert!(s.waiting_runs(c.id, "Order Completed").await.unwrap().is_empty());
        let outbox = s
            .list_messages(&MessageQuery {
                contact_id: Some(c.id),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(outbox.items.len(), 1);
        assert_eq!(outbox.items[0].idempotency_key, format!("run-{}-step-remind-1", run.id));
        // Statistics: the step was reached once and queued one message (the repeated
        // write changed nothing); an open of that message counts for the step.
        assert!(
            s.record_message_event(outbox.items[0].id, &MessageEvent::Opened, "open-r".into(), T0 + H)
                .await
                .unwrap()
        );
        let stats = s.journey_stats(j.id).await.unwrap();
        assert_eq!((stats.entered, stats.active), (1, 1));
        let remind = &stats.steps["remind"];
        assert_eq!(
            (remind.reached, remind.sent, remind.opened, remind.clicked),
            (1, 1, 1, 0)
        );
        assert_eq!(stats.steps["wait-2"].active, 1);
        assert_eq!(
            outbox.items[0].origin,
            Some(MessageOrigin::Journey {
                journey_id: j.id,
                run_id: run.id,
                step: "remind".into(),
                visit: 1
            }),
            "the origin is stored with the message"
        );

        // update_contact steps change the contact in the same transaction, once per key
        // (the repeated write applies nothing), with a `Contact Updated` event.
        let score = RunWrite {
            run_id: run.id,
            step: Some("wait-2".into()),
            state: json!({"cart_id": "cart-1", "sent": 1, "scored": true}),
            contact_updates: vec![(
                IdempotencyKey::step(run.id, "score", 1),
                nudge_core::journey::ContactUpdate {
                    add_tags: vec!["cart".into()],
                    lead_score: 5,
                    ..Default::default()
                },
            )],
            ..Default::default()
        };
        s.write_runs(vec![score.clone(), score], T0 + H).await.unwrap();
        let updated = s.contact(c.id).await.unwrap().unwrap();
        assert_eq!(updated.traits["lead_score"], 5.0, "{:?}", updated.traits);
        assert_eq!(updated.traits["tags"], json!(["cart"]));
        let updates: Vec<StoredEvent> = events(s, c.id)
            .await
            .into_iter()
            .filter(|e| e.name.as_deref() == Some("Contact Updated"))
            .collect();
        assert_eq!(updates.len(), 1);
        assert_eq!(updates[0].properties["traits"]["lead_score"], 5.0);

        // Finishing drops timers and waits; later writes to a finished run do nothing.
        // The finish event counts the exit the run left its step by (once, though
        // written twice: the second write finds the run finished).
        let finish = RunWrite {
            run_id: run.id,
            state: json!({"done": true}),
            finished: Some("goal".into()),
            revenue: Some(42.5),
            events: vec![TimelineEvent {
                name: "Journey Goal Reached".into(),
                properties: json!({"journey_id": j.id, "from_step": "wait-2", "exit": "on_event"}),
                key: IdempotencyKey::finished(run.id),
                counts: Some(StepCount {
                    journey_id: j.id,
                    reached: None,
                    left: Some(("wait-2".into(), "on_event".into())),
                }),
            }],
            ..Default::default()
        };
        s.write_runs(vec![finish.clone(), finish], T0 + 2 * H).await.unwrap();
        let exits = s.journey_stats(j.id).await.unwrap().steps["wait-2"].exits.clone();
        assert_eq!(exits, [("on_event".to_string(), 1)].into());
        let done = s.run(run.id).await.unwrap().unwrap();
        assert_eq!(
            (
                done.step.clone(),
                done.finished_at,
                done.finish_reason.as_deref(),
                done.is_active()
            ),
            (None, Some(T0 + 2 * H), Some("goal"), false)
        );
        assert_eq!(s.next_timer_due().await.unwrap(), None);
        assert!(s.runs_per_step(j.id).await.unwrap().is_empty());
        let stats = s.journey_stats(j.id).await.unwrap();
        assert_eq!((stats.active, stats.finished.get("goal")), (0, Some(&1)));
        assert_eq!((stats.conversions, stats.revenue), (1, 42.5));
        s.write_runs(
            vec![RunWrite {
                run_id: run.id,
                step: Some("back".into()),
                state: json!({}),
                set_timers: vec![("late".into(), T0)],
                ..Default::default()
            }],
            T0 + 3 * H,
        )
        .await
        .unwrap();
        assert_eq!(s.run(run.id).await.unwrap().unwrap().state, json!({"done": true}));
        assert_eq!(s.next_timer_due().await.unwrap(), None);

        // An anonymous visitor's run follows them when they identify.
        s.ingest(
            msgs(json!([{"type": "track", "anonymousId": "a2", "event": "Cart Updated", "properties": {"cart_id": "cart-2"}}])),
            T0,
        )
        .await
        .unwrap();
        let anon = s
            .find_contact(&Lookup::AnonymousId("a2".into()))
            .await
            .unwrap()
            .unwrap();
        let run2 = s
            .start_run(
                NewRun {
                    journey_id: j.id,
                    version: 2,
                    contact_id: anon.id,
                    entry_key: Some("cart-2".into()),
                },
                RunWrite {
                    step: Some("wait".into()),
                    state: json!({}),
                    set_timers: vec![("timeout".into(), T0 + H)],
                    waits: Some(vec![("Order Completed".into(), Some("cart-2".into()))]),
                    ..Default::default()
                },
                T0,
            )
            .await
            .unwrap()
            .unwrap();
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "anonymousId": "a2"}])),
            T0 + 1,
        )
        .await
        .unwrap();
        let c = user(s, "u1").await;
        assert_eq!(
            s.waiting_runs(c.id, "Order Completed").await.unwrap()[0].run_id,
            run2.id
        );
        assert_eq!(s.contact_runs(c.id, Some(j.id)).await.unwrap().len(), 2);
        assert_eq!(s.contact_runs(c.id, None).await.unwrap()[1].contact_id, c.id);

        // Erasure takes runs, timers and waits with it.
        assert!(s.delete_contact(c.id).await.unwrap());
        assert!(s.run(run2.id).await.unwrap().is_none());
        assert_eq!(s.next_timer_due().await.unwrap(), None);
        assert!(s.waiting_runs(c.id, "Order Completed").await.unwrap().is_empty());
    }
    pub async fn entry_timers_and_trait_changes(s: &dyn Store) {
        const H: Millis = 3_600_000;
        let j = s
            .create_journey(
                NewJourney {
                    name: "Birthday".into(),
                    description: String::new(),
                    priority: 0,
                    definition: json!({}),
                },
                T0,
            )
            .await
            .unwrap();
        assert_eq!(j.entries_scheduled, None);
        s.set_journey_event_names(vec!["$trait:birthday".into()]).await.unwrap();
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "b1", "traits": {"birthday": "1990-05-01", "email": "b1@example.com"}},
                {"type": "identify", "userId": "b2", "traits": {"plan": "pro"}},
                {"type": "identify", "userId": "b3", "traits": {"plan": "free", "birthday_month": 5}},
            ])),
            T0,
        )
        .await
        .unwrap();
        let (b1, b2) = (user(s, "b1").await, user(s, "b2").await);
        // Only the change of a trait a time-triggered journey reads is queued.
        let inbox = s.claim_journey_inbox(T0, 100, 60_000).await.unwrap();
        assert_eq!(
            inbox
                .iter()
                .map(|e| (e.name.as_str(), e.contact_id))
                .collect::<Vec<_>>(),
            vec![(TRAITS_CHANGED, b1.id)],
            "{inbox:?}"
        );
        s.ack_journey_inbox(inbox.iter().map(|e| e.id).collect()).await.unwrap();
        let patch: ContactPatch = serde_json::from_value(json!({"traits": {"birthday": "1980-01-02"}})).unwrap();
        s.update_contact(b2.id, &patch, T0 + 1).await.unwrap();
        let inbox = s.claim_journey_inbox(T0 + 1, 100, 60_000).await.unwrap();
        assert_eq!(inbox.iter().map(|e| e.contact_id).collect::<Vec<_>>(), vec![b2.id]);

        // Contacts with the trait, paged by id (a null trait does not count).
        let page = s.contacts_with_trait("birthday", 0, 1).await.unwrap();
        assert_eq!(page.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![b1.id]);
        assert_eq!(page[0].1["birthday"], "1990-05-01");
        let rest = s.contacts_with_trait("birthday", b1.id, 10).await.unwrap();
        assert_eq!(rest.iter().map(|(id, _)| *id).collect::<Vec<_>>(), vec![b2.id]);

        // Timers per contact and for the journey itself (0), due in order, leased.
        s.set_entry_timers(
            j.id,
            vec![(b1.id, Some(T0 + 2 * H)), (b2.id, Some(T0 + H)), (0, Some(T0 + 3 * H))],
        )
        .await
        .unwrap();
        assert_eq!(s.next_timer_due().await.unwrap(), Some(T0 + H));
        assert!(s.claim_entry_timers(T0, 10, 60_000).await.unwrap().is_empty());
        let due = s.claim_entry_timers(T0 + 3 * H, 2, 60_000).await.unwrap();
        assert_eq!(
            due,
            vec![
                EntryTimer {
                    journey_id: j.id,
                    contact_id: b2.id,
                    due_at: T0 + H
                },
                EntryTimer {
                    journey_id: j.id,
                    contact_id: b1.id,
                    due_at: T0 + 2 * H
                },
            ]
        );
        let due = s.claim_entry_timers(T0 + 3 * H, 10, 60_000).await.unwrap();
        assert_eq!(
            due.iter().map(|t| t.contact_id).collect::<Vec<_>>(),
            vec![0],
            "the others are leased"
        );
        // Setting a timer again ends its lease; removing it removes it.
        s.set_entry_timers(j.id, vec![(b2.id, Some(T0 + 3 * H)), (b1.id, None)])
            .await
            .unwrap();
        let due = s.claim_entry_timers(T0 + 3 * H, 10, 60_000).await.unwrap();
        assert_eq!(due.iter().map(|t| t.contact_id).collect::<Vec<_>>(), vec![b2.id]);
        assert!(s.release_journey_leases().await.unwrap() >= 2);
        assert_eq!(s.claim_entry_timers(T0 + 3 * H, 10, 60_000).await.unwrap().len(), 2);

        s.mark_entries_scheduled(j.id, 1).await.unwrap();
        assert_eq!(s.journey(j.id).await.unwrap().unwrap().entries_scheduled, Some(1));
        s.clear_entry_timers(j.id).await.unwrap();
        assert_eq!(s.journey(j.id).await.unwrap().unwrap().entries_scheduled, None);
        assert_eq!(s.next_timer_due().await.unwrap(), None);
        assert!(s.claim_entry_timers(T0 + 100 * H, 10, 60_000).await.unwrap().is_empty());
    }

    pub async fn journey_inbox_gets_the_events_journeys_act_on(s: &dyn Store) {
        use nudge_core::segment::parse_condition;
        s.set_journey_event_names(vec![
            "Order Completed".into(),
            "Email Opened".into(),
            "Segment Entered".into(),
        ])
        .await
        .unwrap();
        s.ingest(
            msgs(json!([
                {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}},
                {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "o-1", "properties": {"cart_id": "c-1"}, "timestamp": "2027-01-15T08:00:00Z"},
                {"type": "track", "userId": "u1", "event": "Page Viewed"},
                {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "o-1", "properties": {"cart_id": "c-1"}},
            ])),
            T0,
        )
        .await
        .unwrap();
        let c = user(s, "u1").await;
        // A message event and a segment entry are queued too.
        let t = s.create_template(new_template("hello", "Hi"), T0).await.unwrap();
        let (m, _) = s
            .enqueue_message(
                NewMessage {
                    idempotency_key: "m-1".into(),
                    contact_id: c.id,
                    template_id: t.id,
                    template_version: 1,
                    channel: "email".into(),
                    transactional: false,
                    data: json!({}),
                    origin: None,
                },
                T0,
            )
            .await
            .unwrap();
        assert!(
            s.record_message_event(m.id, &MessageEvent::Opened, "open-1".into(), T0 + 1)
                .await
                .unwrap()
        );
        let seg = s
            .create_segment(
                NewSegment {
                    name: "Buyers".into(),
                    description: String::new(),
                    definition: parse_condition(&json!({"type": "event", "event": "Order Completed"})).unwrap(),
                    administrative: false,
                },
                T0,
            )
            .await
            .unwrap();
        s.apply_evaluations(
            vec![ContactEvaluation {
                contact_id: c.id,
                dirty_since: None,
                results: vec![(seg.id, false, None)],
            }],
            T0 + 2,
        )
        .await
        .unwrap();
        s.apply_evaluations(
            vec![ContactEvaluation {
                contact_id: c.id,
                dirty_since: None,
                results: vec![(seg.id, true, None)],
            }],
            T0 + 3,
        )
        .await
        .unwrap();

        let inbox = s.claim_journey_inbox(T0 + 10, 100, 60_000).await.unwrap();
        let names: Vec<&str> = inbox.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            ["Order Completed", "Email Opened", "Segment Entered"],
            "{inbox:?}"
        );
        assert!(inbox.iter().all(|e| e.contact_id == c.id));
        assert_eq!(inbox[0].properties["cart_id"], "c-1");
        assert_eq!(inbox[2].properties["segment_id"], seg.id);
        assert!(
            s.claim_journey_inbox(T0 + 11, 100, 60_000).await.unwrap().is_empty(),
            "leased"
        );
        let again = s.claim_journey_inbox(T0 + 60_010, 100, 60_000).await.unwrap();
        assert_eq!(again.len(), 3, "a lease runs out");
        s.ack_journey_inbox(vec![again[0].id, again[1].id]).await.unwrap();
        let left = s.claim_journey_inbox(T0 + 200_000, 100, 60_000).await.unwrap();
        assert_eq!(left.iter().map(|e| e.id).collect::<Vec<_>>(), vec![again[2].id]);

        // The contact's time zone: from its latest event's context, then its traits.
        assert_eq!(s.contact_time_zone(c.id).await.unwrap(), None);
        s.ingest(
            msgs(json!([
                {"type": "track", "userId": "u1", "event": "App Opened", "context": {"timezone": "Asia/Tokyo"}, "timestamp": "2027-01-15T09:00:00Z"},
                {"type": "track", "userId": "u1", "event": "App Opened", "context": {"timezone": "America/Lima"}, "timestamp": "2027-01-14T09:00:00Z"},
            ])),
            T0 + 4,
        )
        .await
        .unwrap();
        assert_eq!(s.contact_time_zone(c.id).await.unwrap().as_deref(), Some("Asia/Tokyo"));
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "u1", "traits": {"timezone": "Europe/Paris"}}])),
            T0 + 4,
        )
        .await
        .unwrap();
        assert_eq!(
            s.contact_time_zone(c.id).await.unwrap().as_deref(),
            Some("Europe/Paris")
        );

        // Names journeys no longer act on are not queued; erasure empties the inbox.
        s.set_journey_event_names(vec![]).await.unwrap();
        s.ingest(
            msgs(json!([{"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "o-2"}])),
            T0 + 5,
        )
        .await
        .unwrap();
        assert_eq!(s.claim_journey_inbox(T0 + 400_000, 100, 60_000).await.unwrap().len(), 1);
        assert!(s.delete_contact(c.id).await.unwrap());
        assert!(
            s.claim_journey_inbox(T0 + 600_000, 100, 60_000)
                .await
                .unwrap()
                .is_empty()
        );
    }

    fn new_form(name: &str, slug: &str) -> NewForm {
        let mut definition = nudge_core::form::parse_definition(&json!({
            "fields": [
                {"name": "email", "type": "email", "label": "Email", "required": true},
                {"name": "first_name", "type": "text", "label": "First name"}
            ],
            "consents": [{"subscription": "email:newsletter", "label": "News"}]
        }))
        .unwrap();
        assert!(nudge_core::form::validate(&mut definition).is_empty());
        NewForm {
            name: name.into(),
            slug: slug.into(),
            definition,
        }
    }

    fn submission(form: i64, email: &str, anonymous_id: Option<&str>) -> NewSubmission {
        let traits = json!({"email": email, "first_name": "Ada"})
            .as_object()
            .unwrap()
            .clone();
        NewSubmission {
            form_id: form,
            email: email.into(),
            anonymous_id: anonymous_id.map(str::to_string),
            answers: traits.clone(),
            traits,
            consents: vec!["email:newsletter".into()],
            source: "page".into(),
            confirm: None,
        }
    }

    /// Scoring rules fire for a form submission (`form_submitted`, of that form only)
    /// and for a trait changed by a contact edit (the API's, the UI's, a form's), in
    /// the same transaction; an edit that sets a trait to the value it had gives
    /// nothing.
    pub async fn form_submissions_and_contact_edits_score_in_their_transaction(s: &dyn Store) {
        let rule = |v: Value| nudge_core::scoring::parse_rule(&v).unwrap();
        s.create_scoring_rule(
            rule(json!({"name": "newsletter form", "points": 15,
                "trigger": {"type": "form_submitted", "form": "Newsletter"}, "frequency": {"type": "repeat"}})),
            T0,
        )
        .await
        .unwrap();
        s.create_scoring_rule(
            rule(json!({"name": "other form", "points": 100,
                "trigger": {"type": "form_submitted", "form": "Other"}, "frequency": {"type": "repeat"}})),
            T0,
        )
        .await
        .unwrap();
        s.create_scoring_rule(
            rule(json!({"name": "became a customer", "points": 30,
                "trigger": {"type": "trait_changed", "trait": "plan", "test": {"op": "equals", "value": "pro"}},
                "frequency": {"type": "once"}})),
            T0,
        )
        .await
        .unwrap();
        let f = s.create_form(new_form("Newsletter", "news"), T0).await.unwrap();
        let out = s
            .submit_form(submission(f.id, "sc@example.com", None), T0)
            .await
            .unwrap()
            .unwrap();
        let c = s.contact(out.submission.contact_id).await.unwrap().unwrap();
        assert_eq!(c.traits["lead_score"], json!(15.0));
        let patch = |plan: &str| ContactPatch {
            traits: json!({"plan": plan}).as_object().unwrap().clone(),
            ..Default::default()
        };
        let edited = s.update_contact(c.id, &patch("pro"), T0 + 1).await.unwrap().unwrap();
        assert_eq!(edited.traits["lead_score"], json!(45.0), "the answer carries the score");
        // The same value again, and a change the test refuses: nothing more.
        s.update_contact(c.id, &patch("pro"), T0 + 2).await.unwrap();
        s.update_contact(c.id, &patch("free"), T0 + 3).await.unwrap();
        s.update_contact(c.id, &patch("pro"), T0 + 4).await.unwrap();
        assert_eq!(
            s.contact(c.id).await.unwrap().unwrap().traits["lead_score"],
            json!(45.0)
        );
        let changed = s.score_changes(c.id, 1000).await.unwrap().len();
        assert_eq!(changed, 2);
    }

    /// Forms: created, listed, found by slug, edited, counted, deleted; a name or a
    /// slug is one form's.
    pub async fn forms_are_stored_with_unique_names_and_slugs(s: &dyn Store) {
        let f = s.create_form(new_form("Newsletter", "news"), T0).await.unwrap();
        assert_eq!(
            (f.name.as_str(), f.slug.as_str(), f.views, f.submissions),
            ("Newsletter", "news", 0, 0)
        );
        assert!(
            matches!(s.create_form(new_form("Newsletter", "other"), T0).await, Err(StoreError::Conflict(m)) if m.contains("named"))
        );
        assert!(
            matches!(s.create_form(new_form("Other", "news"), T0).await, Err(StoreError::Conflict(m)) if m.contains("slug"))
        );
        let g = s.create_form(new_form("Other", "other"), T0).await.unwrap();
        assert_eq!(
            s.forms().await.unwrap().iter().map(|f| f.id).collect::<Vec<_>>(),
            vec![g.id, f.id]
        );
        assert_eq!(s.form_by_slug("news").await.unwrap().unwrap().id, f.id);
        assert!(s.form_by_slug("nope").await.unwrap().is_none());
        let edited = s
            .update_form(f.id, new_form("Newsletter", "newsletter"), T0 + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((edited.slug.as_str(), edited.updated_at), ("newsletter", T0 + 1));
        assert_eq!(edited.definition, f.definition);
        assert!(matches!(
            s.update_form(g.id, new_form("Newsletter", "x"), T0).await,
            Err(StoreError::Conflict(_))
        ));
        assert_eq!(s.update_form(9_999, new_form("Z", "z"), T0).await.unwrap(), None);
        assert!(s.record_form_view(f.id).await.unwrap());
        assert!(s.record_form_view(f.id).await.unwrap());
        assert!(!s.record_form_view(9_999).await.unwrap());
        assert_eq!(s.form(f.id).await.unwrap().unwrap().views, 2);
        s.submit_form(submission(g.id, "x@example.com", None), T0)
            .await
            .unwrap()
            .unwrap();
        assert!(s.delete_form(g.id).await.unwrap());
        assert!(!s.delete_form(g.id).await.unwrap());
        assert!(s.form(g.id).await.unwrap().is_none());
        assert!(s.form_submissions(g.id, None, 10).await.unwrap().items.is_empty());
        assert!(
            s.submit_form(submission(g.id, "y@example.com", None), T0)
                .await
                .unwrap()
                .is_none()
        );
    }

    /// A submission: the contact created by email with its traits and consent, the
    /// submission row, the `Form Submitted` event in the journey inbox, counted; a
    /// second one by the same email updates the same contact.
    pub async fn a_form_submission_creates_the_contact_with_traits_consent_and_event(s: &dyn Store) {
        s.set_journey_event_names(vec!["Form Submitted".into()]).await.unwrap();
        let f = s.create_form(new_form("Newsletter", "news"), T0).await.unwrap();
        let out = s
            .submit_form(submission(f.id, "ada@example.com", None), T0)
            .await
            .unwrap()
            .unwrap();
        assert!(out.created_contact);
        assert!(out.pending.is_empty() && out.confirmations.is_empty());
        let c = s
            .find_contact(&Lookup::Email("ada@example.com".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.submission.contact_id, c.id);
        assert_eq!(c.traits["first_name"], json!("Ada"));
        assert_eq!(c.subscriptions["email:newsletter"], Subscription::Subscribed);
        let stored = events(s, c.id).await;
        let e = stored
            .iter()
            .find(|e| e.name.as_deref() == Some("Form Submitted"))
            .unwrap();
        assert_eq!(e.properties["form_id"], json!(f.id));
        assert_eq!(e.properties["form"], json!("Newsletter"));
        assert_eq!(e.properties["first_name"], json!("Ada"));
        let inbox = s.claim_journey_inbox(T0, 100, 60_000).await.unwrap();
        assert!(
            inbox.iter().any(|i| i.name == "Form Submitted"
                && i.contact_id == c.id
                && i.properties["form"] == json!("Newsletter")),
            "{inbox:?}"
        );
        let again = s
            .submit_form(submission(f.id, "ada@example.com", None), T0 + 5)
            .await
            .unwrap()
            .unwrap();
        assert!(!again.created_contact);
        assert_eq!(again.submission.contact_id, c.id);
        assert_eq!(s.form(f.id).await.unwrap().unwrap().submissions, 2);
        let page = s.form_submissions(f.id, None, 1).await.unwrap();
        assert_eq!(page.items.len(), 1);
        assert_eq!(page.items[0].id, again.submission.id, "newest first");
        assert_eq!(page.items[0].answers["first_name"], json!("Ada"));
        assert_eq!(page.items[0].consents, vec!["email:newsletter".to_string()]);
        let rest = s
            .form_submissions(f.id, page.next.as_deref().map(|n| n.parse().unwrap()), 10)
            .await
            .unwrap();
        assert_eq!(
            rest.items.iter().map(|i| i.id).collect::<Vec<_>>(),
            vec![out.submission.id]
        );
        // Erasing the contact erases what they typed.
        assert!(s.delete_contact(c.id).await.unwrap());
        assert!(s.form_submissions(f.id, None, 10).await.unwrap().items.is_empty());
    }

    /// The browser's anonymous history joins the contact: merged into the contact
    /// known by the email, or the anonymous visitor becomes it; an anonymous id of a
    /// different known person (a shared device) merges nobody.
    pub async fn a_form_submission_joins_the_anonymous_visitor_and_the_known_contact(s: &dyn Store) {
        let f = s.create_form(new_form("Newsletter", "news"), T0).await.unwrap();
        // A visitor browses, then submits with a new email: the visitor becomes the contact.
        s.ingest(
            msgs(json!([{"type": "page", "anonymousId": "anon-1", "name": "Pricing"}])),
            T0,
        )
        .await
        .unwrap();
        let visitor = s
            .find_contact(&Lookup::AnonymousId("anon-1".into()))
            .await
            .unwrap()
            .unwrap();
        let out = s
            .submit_form(submission(f.id, "new@example.com", Some("anon-1")), T0 + 1)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.submission.contact_id, visitor.id);
        assert!(!out.created_contact);
        // A known contact (by email) and another anonymous visitor: merged.
        s.ingest(
            msgs(json!([{"type": "identify", "userId": "grace", "traits": {"email": "grace@example.com"}}])),
            T0,
        )
        .await
        .unwrap();
        let grace = user(s, "grace").await;
        s.ingest(
            msgs(json!([{"type": "page", "anonymousId": "anon-2", "name": "Blog"}])),
            T0,
        )
        .await
        .unwrap();
        let out = s
            .submit_form(
                submission(f.id, "Grace@example.com".to_lowercase().as_str(), Some("anon-2")),
                T0 + 2,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.submission.contact_id, grace.id);
        let merged = s
            .find_contact(&Lookup::AnonymousId("anon-2".into()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(merged.id, grace.id);
        assert!(
            events(s, grace.id)
                .await
                .iter()
                .any(|e| e.name.as_deref() == Some("Blog")),
            "the anonymous page view joined"
        );
        // A later call with the anonymous id finds Grace (SQLite's identity cache knows).
        s.ingest(
            msgs(json!([{"type": "track", "anonymousId": "anon-2", "event": "Clicked"}])),
            T0 + 3,
        )
        .await
        .unwrap();
        assert!(
            events(s, grace.id)
                .await
                .iter()
                .any(|e| e.name.as_deref() == Some("Clicked"))
        );
        // A shared device: anon-2 belongs to Grace; Bob submitting on it gets his own contact.
        let out = s
            .submit_form(submission(f.id, "bob@example.com", Some("anon-2")), T0 + 4)
            .await
            .unwrap()
            .unwrap();
        assert!(out.created_contact);
        assert_ne!(out.submission.contact_id, grace.id);
        assert_eq!(
            s.find_contact(&Lookup::AnonymousId("anon-2".into()))
                .await
                .unwrap()
                .unwrap()
                .id,
            grace.id
        );
        // An unknown anonymous id is attached to the email's contact.
        let out = s
            .submit_form(submission(f.id, "grace@example.com", Some("anon-3")), T0 + 5)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(out.submission.contact_id, grace.id);
        assert_eq!(
            s.find_contact(&Lookup::AnonymousId("anon-3".into()))
                .await
                .unwrap()
                .unwrap()
                .id,
            grace.id
        );
    }

    /// Double opt-in: the consent waits (`pending`) and the confirmation is queued in
    /// the same transaction, transactional, naming the subscription; a contact already
    /// subscribed stays so and is sent nothing.
    pub async fn a_double_opt_in_submission_waits_for_confirmation_and_queues_it(s: &dyn Store) {
        let t = s
            .create_template(new_template("confirm", "Please confirm"), T0)
            .await
            .unwrap();
        let f = s.create_form(new_form("Newsletter", "news"), T0).await.unwrap();
        let mut new = submission(f.id, "ada@example.com", None);
        new.confirm = Some(ConfirmWith {
            template_id: t.id,
            template_version: t.version,
            channel: "email".into(),
        });
        let out = s.submit_form(new.clone(), T0).await.unwrap().unwrap();
        assert_eq!(out.pending, vec!["email:newsletter".to_string()]);
        assert_eq!(out.confirmations.len(), 1);
        let c = s.contact(out.submission.contact_id).await.unwrap().unwrap();
        assert_eq!(c.subscriptions["email:newsletter"], Subscription::Pending);
        let m = s.message(out.confirmations[0]).await.unwrap().unwrap();
        assert!(m.transactional);
        assert_eq!(
            (m.contact_id, m.data["confirm"].as_str()),
            (c.id, Some("email:newsletter"))
        );
        // Once subscribed, another submission asks for nothing.
        s.update_contact(
            c.id,
            &ContactPatch {
                subscriptions: [("email:newsletter".to_string(), Subscription::Subscribed)].into(),
                ..Default::default()
            },
            T0 + 1,
        )
        .await
        .unwrap();
        let out = s.submit_form(new, T0 + 2).await.unwrap().unwrap();
        assert!(out.pending.is_empty() && out.confirmations.is_empty());
        assert_eq!(
            s.contact(c.id).await.unwrap().unwrap().subscriptions["email:newsletter"],
            Subscription::Subscribed
        );
    }
}

#[tokio::test]
async fn a_run_set_aside_keeps_its_state_and_loses_what_wakes_it() {
    for b in backends().await {
        let s = &*b.store;
        s.ingest(msgs(json!([{"type": "identify", "userId": "u1"}])), T0)
            .await
            .unwrap();
        let c = user(s, "u1").await;
        let j = s
            .create_journey(
                NewJourney {
                    name: "j".into(),
                    description: String::new(),
                    priority: 0,
                    definition: json!({}),
                },
                T0,
            )
            .await
            .unwrap();
        let first = RunWrite {
            step: Some("wait".into()),
            state: json!({"unreadable": true}),
            set_timers: vec![("t".into(), T0 + 1)],
            waits: Some(vec![("Order Completed".into(), None)]),
            ..Default::default()
        };
        let new = NewRun {
            journey_id: j.id,
            version: 1,
            contact_id: c.id,
            entry_key: None,
        };
        let run = s.start_run(new, first, T0).await.unwrap().unwrap();
        assert!(s.set_run_aside(run.id, "run state: bad".into(), T0 + 5).await.unwrap());
        assert!(
            !s.set_run_aside(run.id, "again".into(), T0 + 6).await.unwrap(),
            "only an active run is set aside"
        );
        let aside = s.run(run.id).await.unwrap().unwrap();
        assert_eq!(aside.set_aside.as_deref(), Some("run state: bad"));
        assert_eq!(
            (aside.step.as_deref(), aside.state.clone()),
            (Some("wait"), json!({"unreadable": true}))
        );
        assert!(!aside.is_active() && aside.finished_at.is_none());
        assert_eq!(s.next_timer_due().await.unwrap(), None);
        assert!(s.waiting_runs(c.id, "Order Completed").await.unwrap().is_empty());
        assert!(s.runs_per_step(j.id).await.unwrap().is_empty());
        assert!(s.active_runs(j.id, 0, 10).await.unwrap().is_empty());
        // A write to a set-aside run changes nothing.
        let w = RunWrite {
            run_id: run.id,
            step: Some("elsewhere".into()),
            state: json!({}),
            ..Default::default()
        };
        assert!(s.write_runs(vec![w], T0 + 7).await.unwrap().is_empty());
        assert_eq!(s.run(run.id).await.unwrap().unwrap(), aside);
        b.finish().await;
    }
}
