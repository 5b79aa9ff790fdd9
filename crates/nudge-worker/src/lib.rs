//! The one background worker loop of Nudge.
//!
//! The segment engine, the journey engine and the delivery worker all do the same
//! thing around their own work: run a round (claim due work, do it, record it), go
//! again at once while there is more, and otherwise sleep until woken (a [`Notify`],
//! poked after the writes that create work), until the next work the worker knows of
//! is due, or at most `idle` (work another process created wakes nobody here). A
//! failed round is retried after a delay that doubles up to a cap, so a store that is
//! down is not hammered. Asked to stop, the loop returns before its next round or at
//! once from a sleep; it never abandons a round halfway (a round may hold claims and
//! uncommitted outcomes; leases would recover them, but finishing is cheaper).
//!
//! A worker says what it found as an [`Outcome`], which decides how long the loop
//! sleeps; the policy lives here once, the work in each worker.
//!
//! Architecture invariant: this crate knows nothing of Nudge's storage or domain; it
//! depends on tokio (timers, `Notify`) and tracing only, so every crate with a
//! background loop can use it.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;
use tokio::sync::Notify;

/// What one round found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did work and more may be waiting: the next round starts at once.
    Busy,
    /// Nothing more to do now. `due_in`: how long until the next work the worker
    /// knows of is due (its earliest timer), if any; the loop sleeps that long at
    /// most, or `idle` if that is shorter, unless woken.
    Idle { due_in: Option<Duration> },
}

impl Outcome {
    /// `Busy` when a round says more may be waiting, else idle with no timer of its
    /// own (the loop's `idle` interval, or a wake-up, starts the next round).
    pub fn busy_if(more: bool) -> Self {
        if more {
            Outcome::Busy
        } else {
            Outcome::Idle { due_in: None }
        }
    }

    /// Idle until `next_due`, a time in milliseconds on the worker's clock where
    /// `now` is (a due time already past means "at once").
    pub fn idle_until(next_due: Option<i64>, now: i64) -> Self {
        Outcome::Idle {
            due_in: next_due.map(|due| Duration::from_millis(due.saturating_sub(now).max(0) as u64)),
        }
    }
}

/// How a worker loop sleeps.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Names the worker in logs.
    pub name: &'static str,
    /// Longest sleep when idle and not woken: how late work another process created
    /// (or a timer the worker did not report) can be noticed.
    pub idle: Duration,
    /// Sleep after a failed round; doubled after each further failure in a row.
    pub backoff: Duration,
    /// The longest sleep after failures.
    pub max_backoff: Duration,
}

impl WorkerConfig {
    /// First retry 200 ms after a failure, then 400 ms, ... at most 10 s: a passing
    /// hiccup (a busy database, a failover) costs little latency, a store that is down
    /// sees a few attempts a minute.
    pub fn new(name: &'static str, idle: Duration) -> Self {
        Self {
            name,
            idle,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }

    /// The sleep after `failures` failed rounds in a row (at least one).
    pub fn backoff_after(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.saturating_sub(1)).unwrap_or(u32::MAX);
        self.backoff.saturating_mul(factor).min(self.max_backoff)
    }
}

/// Runs `round` until `stop` completes (any future: a oneshot receiver, a
/// `watch::Receiver::wait_for`, a cancellation token's `cancelled()`).
///
/// - [`Outcome::Busy`]: the next round starts at once (after yielding, so other
///   tasks and `stop` get a turn).
/// - [`Outcome::Idle`]: sleeps until `wake` is notified, until `due_in`, or `idle`,
///   whichever comes first. A notification that arrived during the round is kept by
///   the `Notify`, so work written meanwhile is not missed.
/// - `Err`: logged; sleeps [`WorkerConfig::backoff_after`] the failures in a row
///   (only `stop` interrupts it: a failing store is not retried on every write).
///
/// `stop` is checked before every round and during every sleep, never inside a round.
pub async fn run_worker<R, Fut, E>(config: WorkerConfig, wake: &Notify, stop: impl Future<Output = ()>, mut round: R)
where
    R: FnMut() -> Fut,
    Fut: Future<Output = Result<Outcome, E>>,
    E: Display,
{
    tokio::pin!(stop);
    let mut failures = 0u32;
    loop {
        tokio::select! {
            biased;
            () = &mut stop => return,
            () = std::future::ready(()) => {}
        }
        match round().await {
            Ok(Outcome::Busy) => {
                failures = 0;
                tokio::task::yield_now().await;
            }
            Ok(Outcome::Idle { due_in }) => {
                failures = 0;
                let sleep = due_in.map_or(config.idle, |d| d.min(config.idle));
                tokio::select! {
                    () = &mut stop => return,
                    () = wake.notified() => {}
                    () = tokio::time::sleep(sleep) => {}
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                let delay = config.backoff_after(failures);
                tracing::error!(
                    worker = config.name,
                    error = %e,
                    failures,
                    retry_in_ms = delay.as_millis() as u64,
                    "worker round failed; retrying"
                );
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(delay) => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::time::Instant;

    const IDLE: Duration = Duration::from_secs(1);

    fn config() -> WorkerConfig {
        WorkerConfig::new("test", IDLE)
    }

    /// When each round started, in milliseconds since `origin`.
    #[derive(Clone)]
    struct Log {
        origin: Instant,
        starts: Arc<Mutex<Vec<u64>>>,
    }

    impl Log {
        fn new() -> Self {
            Self {
                origin: Instant::now(),
                starts: Arc::default(),
            }
        }

        /// Records a round starting now; returns its number (0 for the first).
        fn start(&self) -> usize {
            let mut s = self.starts.lock().unwrap();
            s.push(self.origin.elapsed().as_millis() as u64);
            s.len() - 1
        }

        fn starts(&self) -> Vec<u64> {
            self.starts.lock().unwrap().clone()
        }
    }

    /// A stop signal the test fires.
    fn stop_signal() -> (tokio::sync::oneshot::Sender<()>, impl Future<Output = ()>) {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        (tx, async move {
            let _ = rx.await;
        })
    }

    #[tokio::test(start_paused = true)]
    async fn busy_rounds_follow_each_other_and_stop_between_batches() {
        let log = Log::new();
        let wake = Notify::new();
        let (tx, stop) = stop_signal();
        let mut tx = Some(tx);
        let rounds = {
            let log = log.clone();
            move || {
                let n = log.start();
                // Asked to stop during the third batch: that batch finishes, no
                // fourth starts.
                if n == 2 {
                    let _ = tx.take().unwrap().send(());
                }
                async {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    Ok::<_, String>(Outcome::Busy)
                }
            }
        };
        let t = Instant::now();
        run_worker(config(), &wake, stop, rounds).await;
        assert_eq!(log.starts(), vec![0, 10, 20]);
        assert_eq!(t.elapsed(), Duration::from_millis(30));
    }

    #[tokio::test(start_paused = true)]
    async fn a_worker_that_is_always_busy_still_stops() {
        let wake = Notify::new();
        let (tx, stop) = stop_signal();
        let count = Arc::new(Mutex::new(0usize));
        let task = {
            let count = count.clone();
            tokio::spawn(async move {
                let wake = wake;
                run_worker(config(), &wake, stop, move || {
                    *count.lock().unwrap() += 1;
                    // No await point inside: only the loop's yield lets others run.
                    std::future::ready(Ok::<_, String>(Outcome::Busy))
                })
                .await;
            })
        };
        while *count.lock().unwrap() < 100 {
            tokio::task::yield_now().await;
        }
        tx.send(()).unwrap();
        let t = Instant::now();
        task.await.unwrap();
        assert_eq!(t.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn failed_rounds_back_off_doubling_up_to_the_cap_then_reset() {
        let log = Log::new();
        let wake = Notify::new();
        let (tx, stop) = stop_signal();
        let mut tx = Some(tx);
        let rounds = {
            let log = log.clone();
            move || {
                let n = log.start();
                // Rounds 0..8 fail, 8 and 9 find nothing to do, 10 fails again, 11
                // stops.
                let result = match n {
                    0..8 | 10 => Err("database is down"),
                    8 | 9 => Ok(Outcome::Idle { due_in: None }),
                    _ => {
                        let _ = tx.take().unwrap().send(());
                        Ok(Outcome::Busy)
                    }
                };
                std::future::ready(result)
            }
        };
        // A wake does not cut a backoff short (the first retry is still 200 ms
        // later), but it is not lost either: the first idle sleep ends at once.
        wake.notify_one();
        run_worker(config(), &wake, stop, rounds).await;
        let starts = log.starts();
        let gaps: Vec<u64> = starts.windows(2).map(|w| w[1] - w[0]).collect();
        // 200, 400, ... capped at 10 s; after a success, the kept wake (0), idle
        // (1 s); then 200 again.
        assert_eq!(
            gaps,
            vec![200, 400, 800, 1600, 3200, 6400, 10_000, 10_000, 0, 1000, 200]
        );
    }

    #[test]
    fn backoff_saturates() {
        let c = config();
        assert_eq!(c.backoff_after(1), Duration::from_millis(200));
        assert_eq!(c.backoff_after(6), Duration::from_millis(6400));
        assert_eq!(c.backoff_after(7), Duration::from_secs(10));
        assert_eq!(c.backoff_after(u32::MAX), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_worker_wakes_on_notify() {
        let log = Log::new();
        let wake = Arc::new(Notify::new());
        let (tx, stop) = stop_signal();
        let mut tx = Some(tx);
        let rounds = {
            let (log, wake) = (log.clone(), wake.clone());
            move || {
                let n = log.start();
                match n {
                    // A write during this round: its notification is kept, so the
                    // next round starts at once instead of after `idle`.
                    1 => wake.notify_one(),
                    3 => {
                        let _ = tx.take().unwrap().send(());
                    }
                    _ => {}
                }
                std::future::ready(Ok::<_, String>(Outcome::Idle { due_in: None }))
            }
        };
        let waker = {
            let wake = wake.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(250)).await;
                wake.notify_one();
            })
        };
        run_worker(config(), &wake, stop, rounds).await;
        waker.await.unwrap();
        // Woken at 250 ms (not idle's 1 s), again at once, then idle runs out.
        assert_eq!(log.starts(), vec![0, 250, 250, 1250]);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_worker_sleeps_until_its_next_due_work_at_most_idle() {
        let log = Log::new();
        let wake = Notify::new();
        let (tx, stop) = stop_signal();
        let mut tx = Some(tx);
        let rounds = {
            let log = log.clone();
            move || {
                let due_in = match log.start() {
                    0 => Some(Duration::from_millis(300)),
                    1 => Some(Duration::from_secs(60)),
                    2 => Some(Duration::ZERO),
                    3 => None,
                    _ => {
                        let _ = tx.take().unwrap().send(());
                        None
                    }
                };
                std::future::ready(Ok::<_, String>(Outcome::Idle { due_in }))
            }
        };
        run_worker(config(), &wake, stop, rounds).await;
        assert_eq!(log.starts(), vec![0, 300, 1300, 1300, 2300]);
    }

    #[tokio::test(start_paused = true)]
    async fn stop_interrupts_an_idle_sleep_and_a_backoff() {
        for result in [Ok(Outcome::Idle { due_in: None }), Err("down")] {
            let wake = Notify::new();
            let (tx, stop) = stop_signal();
            let task = tokio::spawn(async move {
                let wake = wake;
                run_worker(config(), &wake, stop, || std::future::ready(result)).await;
            });
            tokio::time::sleep(Duration::from_millis(50)).await;
            let t = Instant::now();
            tx.send(()).unwrap();
            task.await.unwrap();
            assert_eq!(t.elapsed(), Duration::ZERO);
        }
    }

    #[test]
    fn idle_until_measures_from_now() {
        assert_eq!(Outcome::idle_until(None, 5), Outcome::Idle { due_in: None });
        assert_eq!(Outcome::busy_if(true), Outcome::Busy);
        assert_eq!(Outcome::busy_if(false), Outcome::Idle { due_in: None });
        assert_eq!(
            Outcome::idle_until(Some(1_250), 1_000),
            Outcome::Idle {
                due_in: Some(Duration::from_millis(250))
            }
        );
        assert_eq!(
            Outcome::idle_until(Some(900), 1_000),
            Outcome::Idle {
                due_in: Some(Duration::ZERO)
            }
        );
    }
}
