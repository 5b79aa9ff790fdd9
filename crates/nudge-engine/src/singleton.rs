//! Singletons: work that one node at a time does (docs/operations.md, "Roles"), run
//! under a named lease in the store (`LeaseStore`).
//!
//! A [`Singleton`] keeps one lease for its node: it tries to take or renew it every
//! `renew` (a third of the TTL by default), and says whether the node holds it
//! ([`Singleton::held`]). [`Singleton::run_while_held`] runs a worker loop only while
//! the lease is held: started when it is taken, asked to stop (between rounds, as any
//! stop) when it is lost. A node that dies stops renewing; its lease expires `ttl`
//! after its last renewal and another node's next attempt takes it, so the work moves
//! within `ttl + renew` ([`Singleton::takeover_bound`]). A node that stops cleanly
//! gives its leases up, and another takes them within `renew`.
//!
//! The node also stops considering itself the holder `ttl` after the last renewal it
//! *sent* (measured on its own monotonic clock) when renewals fail or hang, so a node
//! cut off from the database stops before any other node can have taken over (clocks
//! in sync; see the docs on skew).

use nudge_core::Clock;
use nudge_store::Store;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The singletons Nudge runs, by lease name.
pub mod names {
    /// Setting journeys' entry timers when a date-trait or schedule journey goes live
    /// (one pass over the contacts with the trait); the journey engine's rounds
    /// otherwise run on every node.
    pub const JOURNEY_ENTRIES: &str = "journey-entries";
    /// The campaign engine: audience snapshots, winners, queueing within the
    /// throttle (whose token bucket is per process, so one node keeps the rate).
    pub const CAMPAIGNS: &str = "campaigns";
    /// The prediction engine: refits of the lifetime-value models and per-purchase
    /// updates after its cursor.
    pub const PREDICTIONS: &str = "predictions";
    /// The recommendation engine: refreshes and catalogue updates.
    pub const RECOMMENDATIONS: &str = "recommendations";
    /// The send-time engine: engagement events counted after its cursor.
    pub const SEND_TIME: &str = "send-time";
    /// Retention passes: event partitions made ahead, old events deleted or their
    /// partitions dropped (`RetentionEngine`).
    pub const RETENTION: &str = "retention";
}

/// How a lease is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a taken or renewed lease lasts without renewal.
    pub ttl: Duration,
    /// How often the node tries to take or renew it.
    pub renew: Duration,
}

impl LeaseTiming {
    /// `ttl`, renewed every third of it (so two renewals in a row may fail before the
    /// lease is in danger).
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, renew: ttl / 3 }
    }

    /// The longest a singleton goes without a holder after its holder dies: the
    /// lease expires at most `ttl` after the holder's last renewal, and another
    /// node tries again within `renew`.
    pub fn takeover_bound(&self) -> Duration {
        self.ttl + self.renew
    }
}

impl Default for LeaseTiming {
    /// A TTL of 15 s renewed every 5 s: a takeover within 20 s.
    fn default() -> Self {
        Self::new(Duration::from_secs(15))
    }
}

/// One named lease kept by this node (see the module documentation).
pub struct Singleton {
    name: &'static str,
    node: String,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    timing: LeaseTiming,
    held: watch::Sender<bool>,
    /// When this node stops considering itself the holder without a renewal.
    valid_until: Mutex<Option<Instant>>,
}

impl Singleton {
    pub fn new(
        name: &'static str,
        node: impl Into<String>,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        timing: LeaseTiming,
    ) -> Arc<Self> {
        Arc::new(Self {
            name,
            node: node.into(),
            store,
            clock,
            timing,
            held: watch::Sender::new(false),
            valid_until: Mutex::new(None),
        })
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// Whether this node holds the lease now.
    pub fn held(&self) -> bool {
        *self.held.borrow() && self.valid_until().is_some_and(|t| Instant::now() < t)
    }

    /// Whether this node holds the lease, as it changes (after each attempt).
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.held.subscribe()
    }

    fn valid_until(&self) -> Option<Instant> {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set_held(&self, held: bool) {
        let was = *self.held.borrow();
        if was != held {
            if held {
                tracing::info!(lease = self.name, node = %self.node, "singleton lease taken: running it here");
            } else {
                tracing::warn!(lease = self.name, node = %self.node, "singleton lease lost: stopping it here");
            }
        }
        self.held.send_replace(held);
    }

    /// One attempt to take or renew the lease (bounded by `renew`). Returns whether
    /// the node holds it afterwards. A failed or hung attempt keeps the lease only
    /// until `ttl` after the last renewal that succeeded was sent.
    pub async fn attempt(&self) -> bool {
        let sent = Instant::now();
        let ttl_ms = self.timing.ttl.as_millis() as i64;
        // Never wait past the moment the lease held now would lapse.
        let wait = match self.valid_until() {
            Some(t) if t > sent => self.timing.renew.min(t - sent),
            _ => self.timing.renew,
        };
        let answer = tokio::time::timeout(
            wait.max(Duration::from_millis(10)),
            self.store
                .acquire_lease(self.name, &self.node, self.clock.now(), ttl_ms),
        )
        .await;
        let held = match answer {
            Ok(Ok(Some(_))) => {
                *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = Some(sent + self.timing.ttl);
                true
            }
            Ok(Ok(None)) => {
                *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
                false
            }
            Ok(Err(e)) => {
                tracing::warn!(lease = self.name, error = %e, "could not renew a singleton lease");
                self.valid_until().is_some_and(|t| Instant::now() < t)
            }
            Err(_) => {
                tracing::warn!(lease = self.name, "renewing a singleton lease timed out");
                self.valid_until().is_some_and(|t| Instant::now() < t)
            }
        };
        self.set_held(held);
        held
    }

    /// Takes or renews the lease every `renew` until `stop` is true, then gives it
    /// up if held (so another node takes it at its next attempt).
    pub async fn keep(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                break;
            }
            self.attempt().await;
            // The next attempt in `renew`, or sooner when the lease held would lapse
            // first (renewals failing): then the node stops holding it at that moment.
            let now = Instant::now();
            let next = match self.valid_until() {
                Some(t) if t > now => self.timing.renew.min(t - now),
                _ => self.timing.renew,
            };
            tokio::select! {
                _ = stop.wait_for(|s| *s) => break,
                () = tokio::time::sleep(next) => {}
            }
            if self.valid_until().is_some_and(|t| Instant::now() >= t) {
                self.set_held(false);
            }
        }
        let was = self.held();
        self.set_held(false);
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if was && let Err(e) = self.store.release_lease(self.name, &self.node).await {
            tracing::warn!(lease = self.name, error = %e, "could not release a singleton lease");
        }
    }

    /// Runs `work` (a worker loop given its stop signal) while this node holds the
    /// lease: started when it is taken, asked to stop when it is lost or when
    /// `shutdown` turns true; after a loss it waits to hold the lease again.
    pub async fn run_while_held<W, Fut>(self: Arc<Self>, mut shutdown: watch::Receiver<bool>, work: W)
    where
        W: Fn(Pin<Box<dyn Future<Output = ()> + Send>>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut held = self.held.subscribe();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(|s| *s) => return,
                r = held.wait_for(|h| *h) => if r.is_err() { return },
            }
            let (mut lost, mut down) = (held.clone(), shutdown.clone());
            work(Box::pin(async move {
                tokio::select! {
                    _ = lost.wait_for(|h| !*h) => {}
                    _ = down.wait_for(|s| *s) => {}
                }
            }))
            .await;
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::clock::ManualClock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    async fn store() -> (Arc<dyn Store>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let s = nudge_store::SqliteStore::open(&dir.path().join("n.db")).await.unwrap();
        (Arc::new(s), dir)
    }

    #[tokio::test]
    async fn one_node_holds_a_singleton_and_another_takes_over_after_the_ttl() {
        let (store, _dir) = store().await;
        let clock = Arc::new(ManualClock::new(1_000_000));
        let timing = LeaseTiming::new(Duration::from_secs(15));
        let a = Singleton::new(names::PREDICTIONS, "a", store.clone(), clock.clone(), timing);
        let b = Singleton::new(names::PREDICTIONS, "b", store.clone(), clock.clone(), timing);
        assert!(a.attempt().await && a.held());
        assert!(!b.attempt().await && !b.held());
        // a renews; b still cannot take it; a dies (stops renewing) ...
        clock.advance(5_000);
        assert!(a.attempt().await);
        clock.advance(14_999);
        assert!(!b.attempt().await);
        // ... and once its lease expired, b's next attempt takes it.
        clock.advance(1);
        assert!(b.attempt().await && b.held());
        assert!(!a.attempt().await && !a.held(), "the old holder learns it lost it");
        assert_eq!(timing.takeover_bound(), Duration::from_secs(20));
    }

    #[tokio::test]
    async fn a_node_that_cannot_renew_stops_holding_when_its_lease_would_lapse() {
        let (store, _dir) = store().await;
        let clock = Arc::new(ManualClock::new(1_000_000));
        let timing = LeaseTiming {
            ttl: Duration::from_millis(600),
            renew: Duration::from_millis(200),
        };
        let a = Singleton::new(names::SEND_TIME, "a", store.clone(), clock, timing);
        let (stop, stop_rx) = watch::channel(false);
        let keeper = tokio::spawn(a.clone().keep(stop_rx));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(a.held());
        let cut_off = Instant::now();
        store.close().await; // every renewal fails from now on
        let mut held = a.subscribe();
        held.wait_for(|h| !*h).await.unwrap();
        let after = cut_off.elapsed();
        assert!(
            after <= timing.ttl + Duration::from_millis(100),
            "held {after:?} after the database went away"
        );
        assert!(!a.held());
        stop.send_replace(true);
        keeper.await.unwrap();
    }

    #[tokio::test]
    async fn work_runs_only_while_the_lease_is_held_and_a_clean_stop_releases_it() {
        let (store, _dir) = store().await;
        let clock = Arc::new(ManualClock::new(1_000_000));
        let timing = LeaseTiming {
            ttl: Duration::from_millis(900),
            renew: Duration::from_millis(300),
        };
        let a = Singleton::new(names::CAMPAIGNS, "a", store.clone(), clock.clone(), timing);
        let b = Singleton::new(names::CAMPAIGNS, "b", store.clone(), clock.clone(), timing);
        let (stop_a, stop_a_rx) = watch::channel(false);
        let (stop_b, stop_b_rx) = watch::channel(false);
        let runs = Arc::new(AtomicUsize::new(0));
        let worker = |s: Arc<Singleton>, rx: watch::Receiver<bool>, runs: Arc<AtomicUsize>| {
            tokio::spawn(s.run_while_held(rx, move |stop| {
                let runs = runs.clone();
                async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    stop.await;
                    runs.fetch_sub(1, Ordering::SeqCst);
                }
            }))
        };
        let keep_a = tokio::spawn(a.clone().keep(stop_a_rx.clone()));
        tokio::time::sleep(Duration::from_millis(50)).await;
        let keep_b = tokio::spawn(b.clone().keep(stop_b_rx.clone()));
        let work_a = worker(a.clone(), stop_a_rx, runs.clone());
        let work_b = worker(b.clone(), stop_b_rx, runs.clone());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(a.held() && !b.held());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "the work runs on one node");
        // a stops cleanly: its work ends, it releases, and b takes over within `renew`.
        stop_a.send_replace(true);
        work_a.await.unwrap();
        keep_a.await.unwrap();
        tokio::time::sleep(timing.renew + Duration::from_millis(100)).await;
        assert!(b.held());
        assert_eq!(runs.load(Ordering::SeqCst), 1, "now on b");
        stop_b.send_replace(true);
        work_b.await.unwrap();
        keep_b.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        assert!(store.leases().await.unwrap().is_empty());
    }
}
