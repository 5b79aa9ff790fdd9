//! The singleton lease rule (`LeaseStore`), on SQLite and, when
//! `NUDGE_TEST_DATABASE_URL` is set, on PostgreSQL in a fresh schema. Time is what
//! the test says (`now` is an argument): acquire, renew, expire, take over.

use nudge_store::*;

const T0: i64 = 1_800_000_000_000;
const TTL: i64 = 15_000;

async fn backends() -> Vec<scratch::TestStore> {
    scratch::test_stores("nudge_leases").await.unwrap()
}

#[tokio::test]
async fn a_lease_is_held_by_one_node_renewed_and_taken_over_once_expired() {
    for (store, _dir, schema) in backends().await {
        let backend = store.backend();
        // Nobody holds it: the first asker gets it until now + TTL.
        let a = store.acquire_lease("predictions", "a", T0, TTL).await.unwrap();
        assert_eq!(
            a,
            Some(Lease {
                name: "predictions".into(),
                holder: "a".into(),
                acquired_at: T0,
                expires_at: T0 + TTL
            }),
            "{backend}"
        );
        // Another node is refused while it is held, even a moment before it expires.
        assert_eq!(
            store.acquire_lease("predictions", "b", T0 + 1, TTL).await.unwrap(),
            None
        );
        assert_eq!(
            store
                .acquire_lease("predictions", "b", T0 + TTL - 1, TTL)
                .await
                .unwrap(),
            None,
            "{backend}"
        );
        // The holder renews: the expiry moves, the start of its tenure stays.
        let renewed = store
            .acquire_lease("predictions", "a", T0 + 5_000, TTL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((renewed.acquired_at, renewed.expires_at), (T0, T0 + 5_000 + TTL));
        // Other names are other leases.
        assert!(
            store
                .acquire_lease("campaigns", "b", T0 + 5_000, TTL)
                .await
                .unwrap()
                .is_some()
        );
        // The holder dies (stops renewing): before the renewed expiry b is refused,
        // at it b takes over, with a tenure of its own.
        assert_eq!(
            store
                .acquire_lease("predictions", "b", T0 + 5_000 + TTL - 1, TTL)
                .await
                .unwrap(),
            None
        );
        let b = store
            .acquire_lease("predictions", "b", T0 + 5_000 + TTL, TTL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (b.holder.as_str(), b.acquired_at, b.expires_at),
            ("b", T0 + 5_000 + TTL, T0 + 5_000 + 2 * TTL),
            "{backend}"
        );
        // The old holder, back, is refused now; its renewal does not steal it back.
        assert_eq!(
            store.acquire_lease("predictions", "a", T0 + 21_000, TTL).await.unwrap(),
            None
        );
        let all = store.leases().await.unwrap();
        assert_eq!(
            all.iter()
                .map(|l| (l.name.as_str(), l.holder.as_str()))
                .collect::<Vec<_>>(),
            vec![("campaigns", "b"), ("predictions", "b")]
        );
        // Released by its holder (a clean stop), the next asker takes it at once;
        // only the holder can release.
        assert!(!store.release_lease("predictions", "a").await.unwrap());
        assert!(store.release_lease("predictions", "b").await.unwrap());
        let a = store
            .acquire_lease("predictions", "a", T0 + 21_000, TTL)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.acquired_at, T0 + 21_000);
        assert_eq!(store.clear_leases().await.unwrap(), 2);
        assert!(store.leases().await.unwrap().is_empty());
        store.close().await;
        if let Some(s) = schema {
            s.drop_schema().await.unwrap();
        }
    }
}

/// Many nodes asking for a free (or expired) lease at the same moment: exactly one
/// gets it, on PostgreSQL through concurrent connections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_nodes_get_a_lease_exactly_once() {
    for (store, _dir, schema) in backends().await {
        for round in 0..5i64 {
            // Round 0: nobody has had it; later rounds: the last holder's expired.
            let now = T0 + round * 2 * TTL;
            let tasks: Vec<_> = (0..8)
                .map(|n| {
                    let store = store.clone();
                    tokio::spawn(async move {
                        store
                            .acquire_lease("recommendations", &format!("node-{n}"), now, TTL)
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut winners = Vec::new();
            for t in tasks {
                if let Some(l) = t.await.unwrap() {
                    winners.push(l.holder);
                }
            }
            assert_eq!(winners.len(), 1, "{} round {round}: {winners:?}", store.backend());
        }
        store.close().await;
        if let Some(s) = schema {
            s.drop_schema().await.unwrap();
        }
    }
}
