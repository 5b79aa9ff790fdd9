//! `nudge serve`: open storage, make sure keys exist, serve HTTP, shut down cleanly.

use crate::config::Settings;
use anyhow::Context;
use nudge_api::AppState;
use nudge_app::keys;
use nudge_app::nodes::Role;
use nudge_core::{Clock, SystemClock};
use nudge_engine::singleton::names;
use nudge_engine::{
    CampaignEngine, CampaignEngineConfig, JourneyEngine, JourneyEngineConfig, LeaseTiming, SegmentEngine,
    SegmentEngineConfig, Singleton,
};
use nudge_store::{Ingestor, IngestorConfig, KeyKind};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What a caller (the demo) wants to hear once the server is listening.
pub type OnReady = Box<dyn FnOnce(SocketAddr) + Send>;

pub async fn serve(settings: Settings, on_ready: Option<OnReady>) -> anyhow::Result<()> {
    // An embedded workspace is served by one process at a time; `nudge restore`
    // checks this lock before replacing the database.
    let _lock = match nudge_store::sqlite_path(settings.database_url(), &settings.data_dir)? {
        Some(db) => Some(nudge_store::backup::WorkspaceLock::acquire(&db)?),
        None => None,
    };
    let store = crate::open(&settings).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let generated = keys::ensure_bootstrap_keys(
        &*store,
        settings.admin_key.as_ref().map(|s| s.0.as_str()),
        settings.write_key.as_ref().map(|s| s.0.as_str()),
        clock.now(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating bootstrap keys: {e}"))?;
    for (kind, secret) in &generated {
        let what = match kind {
            KeyKind::Admin => "admin key (secret; for /api/v1)",
            KeyKind::Write => "write key (public; for /v1 tracking)",
        };
        println!("generated {what}, shown only now: {secret}");
    }
    let ingestor = Arc::new(Ingestor::start(
        store.clone(),
        clock.clone(),
        IngestorConfig {
            queue_requests: settings.ingest_queue,
            ..Default::default()
        },
    ));
    let roles = settings.roles;
    let node_id = nudge_app::nodes::node_id();
    if store.backend() == "sqlite" && !roles.is_all() {
        tracing::warn!(
            %roles,
            "an embedded (SQLite) workspace is served by one process: the roles this node does not run run nowhere"
        );
    }
    // Every node builds the engines and the deliverer (the API wakes them and calls
    // their use cases); only the roles' workers run (docs/operations.md, "Roles").
    let (stop_work, work_stopped) = tokio::sync::watch::channel(false);
    let mut workers: Vec<tokio::task::JoinHandle<()>> = Vec::new();
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let segments = SegmentEngine::new(store.clone(), clock.clone(), SegmentEngineConfig::default());
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("listening on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let vapid = crate::messaging::vapid_key(&*store).await?;
    let push_public_key = vapid.public_key();
    let deliverer = crate::messaging::deliverer(&settings, addr, store.clone(), clock.clone(), vapid).await?;
    if store.backend() == "sqlite" {
        // This process is the only one delivering from its database: what a previous
        // run had claimed (and may or may not have sent) is due again now.
        let released = store.release_leases().await?;
        if released > 0 {
            tracing::warn!(released, "messages claimed by a previous run are due again");
        }
        let released = store.release_journey_leases().await?;
        if released > 0 {
            tracing::warn!(
                released,
                "journey timers and events claimed by a previous run are due again"
            );
        }
        // And the singleton leases the previous process held are free at once.
        store.clear_leases().await?;
    }
    let mut journey_config = JourneyEngineConfig::default();
    if let Some(secs) = settings.claim_lease_seconds {
        journey_config.lease_ms = i64::from(secs) * 1000;
    }
    // Contacts without a time zone are in the workspace's, for campaigns as for journeys.
    let campaign_config = CampaignEngineConfig {
        time_zone: journey_config.time_zone.clone(),
        ..Default::default()
    };
    let journeys = JourneyEngine::new(store.clone(), clock.clone(), journey_config);
    {
        let deliverer = deliverer.clone();
        journeys.on_messages(move || deliverer.wake());
    }
    let campaigns = CampaignEngine::new(store.clone(), clock.clone(), campaign_config);
    {
        let deliverer = deliverer.clone();
        campaigns.on_messages(move || deliverer.wake());
    }
    let prediction_config = nudge_engine::PredictionEngineConfig {
        refit_every: (settings.prediction_refit_hours > 0)
            .then(|| std::time::Duration::from_secs(u64::from(settings.prediction_refit_hours) * 3600)),
        ..Default::default()
    };
    let predictions = nudge_engine::PredictionEngine::new(store.clone(), clock.clone(), prediction_config);
    let send_times = nudge_engine::SendTimeEngine::new(store.clone(), clock.clone(), Default::default());
    let recommendation_config = nudge_engine::RecommendationEngineConfig {
        refresh_every: (settings.recommendation_refresh_minutes > 0)
            .then(|| std::time::Duration::from_secs(u64::from(settings.recommendation_refresh_minutes) * 60)),
        ..Default::default()
    };
    let recommendations = nudge_engine::RecommendationEngine::new(store.clone(), clock.clone(), recommendation_config);
    let retention = nudge_engine::RetentionEngine::new(store.clone(), clock.clone(), Default::default());
    let timing = LeaseTiming::new(std::time::Duration::from_secs(u64::from(
        settings.singleton_lease_seconds,
    )));
    let singleton = |name: &'static str| Singleton::new(name, node_id.clone(), store.clone(), clock.clone(), timing);
    let mut singletons: Vec<Arc<Singleton>> = Vec::new();
    if roles.has(Role::Delivery) {
        workers.push(tokio::spawn(deliverer.clone().run(stopped(work_stopped.clone()))));
    }
    if roles.has(Role::Engine) {
        // Lease-claimed work runs on every engine node.
        workers.push(tokio::spawn(segments.clone().run(stopped(work_stopped.clone()))));
        workers.push(tokio::spawn(journeys.clone().run(stopped(work_stopped.clone()))));
        // Singletons: one node at a time, under a lease each.
        let entries = singleton(names::JOURNEY_ENTRIES);
        journeys.set_entries_lease(entries.clone());
        {
            let journeys = journeys.clone();
            let mut held = entries.subscribe();
            let mut stop = work_stopped.clone();
            // Taking the lease wakes the journey engine, so entry timers are set now.
            workers.push(tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = stop.wait_for(|s| *s) => break,
                        changed = held.changed() => {
                            if changed.is_err() {
                                break;
                            }
                            if *held.borrow() {
                                journeys.wake();
                            }
                        }
                    }
                }
            }));
        }
        singletons.push(entries);
        macro_rules! under_lease {
            ($name:expr, $engine:expr) => {{
                let lease = singleton($name);
                let engine = $engine.clone();
                workers.push(tokio::spawn(
                    lease
                        .clone()
                        .run_while_held(work_stopped.clone(), move |stop| engine.clone().run(stop)),
                ));
                singletons.push(lease);
            }};
        }
        under_lease!(names::CAMPAIGNS, campaigns);
        under_lease!(names::PREDICTIONS, predictions);
        under_lease!(names::SEND_TIME, send_times);
        under_lease!(names::RECOMMENDATIONS, recommendations);
        under_lease!(names::RETENTION, retention);
    }
    // The leases are taken (or found held by another node) before the server says
    // it is listening, then kept until the workers have stopped.
    for s in &singletons {
        s.attempt().await;
    }
    let (stop_leases, leases_stopped) = tokio::sync::watch::channel(false);
    let keepers: Vec<_> = singletons
        .iter()
        .map(|s| tokio::spawn(s.clone().keep(leases_stopped.clone())))
        .collect();
    tracing::info!(node = %node_id, %roles, lease_ttl_s = settings.singleton_lease_seconds, "node roles");
    let node = nudge_api::ops::Node {
        id: node_id.clone(),
        roles,
        singletons: singletons.clone(),
    };
    let state = AppState::new(store.clone(), ingestor.clone(), clock, segments)
        .with_messaging(deliverer)
        .with_journeys(journeys)
        .with_campaigns(campaigns)
        .with_push_key(push_public_key, settings.push_allow_local)
        .with_forms(Default::default(), settings.trust_forwarded_for)
        .with_node(node);
    let shutdown = shutdown_signal();
    tracing::info!(%addr, backend = store.backend(), "nudge is listening");
    println!("nudge listening on http://{addr} ({} storage)", store.backend());
    let ui_url = settings.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
    let ui_url = ui_url.trim_end_matches('/');
    let setup = if roles.has(Role::Api) {
        nudge_app::accounts::setup_token(&*store).await
    } else {
        println!("no web UI or admin API on this node (roles: {roles})");
        Ok(None)
    };
    match setup {
        Ok(None) if !roles.has(Role::Api) => {}
        Ok(Some(token)) => println!(
            "this workspace has no users yet: open {ui_url}/setup/{token} to create the owner (the link works once)"
        ),
        Ok(None) => println!("web UI: {ui_url}/"),
        Err(e) => tracing::warn!(error = %e, "could not check for users"),
    }
    // Channels changed on another node (or while this one started) apply here too:
    // docs/operations.md, "Live configuration".
    let (stop_config, config_stopped) = tokio::sync::oneshot::channel::<()>();
    let config_task = {
        let app = state.app();
        let watch = nudge_store::live::WatchConfig {
            check_every: std::time::Duration::from_secs(u64::from(settings.config_check_seconds)),
            listen: settings.config_listen,
        };
        tokio::spawn(async move {
            app.watch_config(watch, async move {
                let _ = config_stopped.await;
            })
            .await
        })
    };
    let web = nudge_web::WebState::new(state.clone(), ui_url.starts_with("https://"));
    if let Some(f) = on_ready {
        f(addr);
    }
    let ready = state.ready.clone();
    let app = if roles.has(Role::Api) || roles.has(Role::Ingest) {
        nudge_api::router_with_ui(state, nudge_web::router_for(web, roles))
    } else {
        nudge_api::router(state)
    }
    .into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            ready.store(false, Ordering::SeqCst);
            tracing::info!("shutting down: finishing in-flight requests and commits");
        })
        .await?;
    ingestor.shutdown().await;
    let _ = stop_config.send(());
    let _ = config_task.await;
    stop_work.send_replace(true);
    for w in workers {
        let _ = w.await;
    }
    // The singletons' work has stopped: give their leases up for another node.
    stop_leases.send_replace(true);
    for k in keepers {
        let _ = k.await;
    }
    store.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// A future that ends at SIGTERM or SIGINT (Ctrl-C). The handlers are installed
/// when this is called, not when the future is first polled: a signal sent as soon as
/// the server says it is listening already shuts it down gracefully.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let interrupt = signal(SignalKind::interrupt());
        async move {
            match (term, interrupt) {
                (Ok(mut term), Ok(mut interrupt)) => {
                    tokio::select! {
                        _ = term.recv() => {},
                        _ = interrupt.recv() => {},
                    }
                }
                (Ok(mut one), Err(_)) | (Err(_), Ok(mut one)) => {
                    one.recv().await;
                }
                (Err(_), Err(_)) => std::future::pending::<()>().await,
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
