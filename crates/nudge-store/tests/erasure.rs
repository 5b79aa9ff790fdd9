//! Erasing a contact leaves no row naming it: every table with a `contact_id` column
//! is read after `delete_contact` (SQLite, through its own file), so a table added
//! later without its erasure fails here.

use nudge_core::{Millis, Received, parse_batch};
use nudge_store::{MessageStore as _, NewMessage, NewTemplate, ScoringStore as _, SqliteStore, Store};
use serde_json::json;

const NOW: Millis = 1_780_000_000_000;

fn count(raw: &rusqlite::Connection, table: &str, contact: i64) -> i64 {
    raw.query_row(
        &format!("SELECT count(*) FROM \"{table}\" WHERE contact_id = ?1"),
        [contact],
        |r| r.get(0),
    )
    .unwrap()
}

#[tokio::test]
async fn an_erased_contact_leaves_no_row_in_any_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nudge.db");
    let store = SqliteStore::open(&path).await.unwrap();

    // Scores with a half-life and stages, and a rule the events below fire.
    store
        .put_score(
            nudge_core::scoring::parse_score(&json!({"name": "lead_score", "half_life_days": 7,
                "stages": [{"name": "cold"}, {"name": "warm", "from": 5}]}))
            .unwrap(),
            NOW,
        )
        .await
        .unwrap();
    store
        .create_scoring_rule(
            nudge_core::scoring::parse_rule(&json!({"name": "viewed", "points": 10,
                "trigger": {"type": "event", "event": "Product Viewed"}, "frequency": {"type": "once"}}))
            .unwrap(),
            NOW,
        )
        .await
        .unwrap();
    let mut n = 0;
    let mut ids = || {
        n += 1;
        format!("m{n}")
    };
    let mut batch = Vec::new();
    for user in ["erased", "kept"] {
        batch.push(
            json!({"type": "identify", "userId": user, "anonymousId": format!("anon-{user}"),
                          "traits": {"email": format!("{user}@example.com"), "plan": "pro"}}),
        );
        batch.push(json!({"type": "track", "userId": user, "event": "Product Viewed", "properties": {"sku": "A"}}));
        batch.push(json!({"type": "track", "userId": user, "event": "Order Completed", "properties": {"revenue": 20}}));
        batch.push(
            json!({"type": "page", "userId": user, "name": "Home", "properties": {"url": "https://shop.example/"}}),
        );
    }
    let body = serde_json::to_vec(&json!({ "batch": batch })).unwrap();
    let messages = parse_batch(&body, &Received { at: NOW, ip: None }, &mut ids)
        .unwrap()
        .messages;
    store.ingest(messages, NOW).await.unwrap();
    let contact = |user: &'static str| {
        let store = &store;
        async move {
            store
                .find_contact(&nudge_store::Lookup::UserId(user.into()))
                .await
                .unwrap()
                .unwrap()
                .id
        }
    };
    let (erased, kept) = (contact("erased").await, contact("kept").await);
    // A segment both are in, and a message to each.
    store
        .create_segment(
            nudge_store::NewSegment {
                name: "Pro".into(),
                description: String::new(),
                definition: nudge_core::segment::parse_condition(
                    &json!({"type": "trait", "trait": "plan", "op": "equals", "value": "pro"}),
                )
                .unwrap(),
                administrative: false,
            },
            NOW,
        )
        .await
        .unwrap();
    let t = store
        .create_template(
            NewTemplate {
                name: "hello".into(),
                description: String::new(),
                channel: "email".into(),
                content: json!({"channel": "email", "subject": "Hello", "html": "<p>Hi</p>"}),
                topic: None,
                transactional: true,
            },
            NOW,
        )
        .await
        .unwrap();
    for c in [erased, kept] {
        store
            .enqueue_message(
                NewMessage {
                    idempotency_key: format!("hello-{c}"),
                    contact_id: c,
                    template_id: t.id,
                    template_version: t.version,
                    channel: "email".into(),
                    transactional: true,
                    data: json!({}),
                    origin: None,
                },
                NOW,
            )
            .await
            .unwrap();
    }

    let raw = rusqlite::Connection::open(&path).unwrap();
    let tables: Vec<String> = raw
        .prepare(
            "SELECT m.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
             WHERE m.type = 'table' AND p.name = 'contact_id' ORDER BY m.name",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    // The setup reached the tables that matter here.
    for table in ["events", "identities", "messages", "score_changes", "contact_orders"] {
        assert!(
            tables.contains(&table.to_string()),
            "{table} has no contact_id: {tables:?}"
        );
        assert!(count(&raw, table, erased) > 0, "the setup wrote no {table} row");
    }

    assert!(store.delete_contact(erased).await.unwrap());
    let left: Vec<(String, i64)> = tables
        .iter()
        .map(|t| (t.clone(), count(&raw, t, erased)))
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(left, vec![], "rows naming the erased contact");
    // The other contact keeps everything.
    for table in ["events", "identities", "messages", "score_changes", "contact_orders"] {
        assert!(count(&raw, table, kept) > 0, "{table} lost the other contact's rows");
    }
}
