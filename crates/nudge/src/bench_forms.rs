//! `nudge bench forms`: form submissions per second through `POST /f/{slug}` and
//! their latency. The server (API and web UI routers, the real store on a fresh
//! database) runs in this process on loopback with the forms' rate limits off;
//! concurrent clients post plain HTML forms (`application/x-www-form-urlencoded`),
//! each with a new e-mail address, so every submission creates a contact, sets its
//! traits and consent, and records the submission and its `Form Submitted` event in
//! one transaction. Every answer is checked (200); the store's counts are checked
//! at the end.

use crate::bench::percentile;
use anyhow::{Context, bail};
use clap::Args;
use nudge_api::{AppState, router_with_ui};
use nudge_app::forms::{FormInput, FormLimits};
use nudge_core::{Clock, SystemClock};
use nudge_engine::SegmentEngine;
use nudge_store::baseline::PgBenchSchema;
use nudge_store::{Ingestor, IngestorConfig};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

#[derive(Args, Clone)]
pub struct FormArgs {
    /// Submissions to send in total.
    #[arg(long, default_value_t = 20_000)]
    submissions: usize,
    /// Concurrent HTTP clients.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Benchmark PostgreSQL at this URL (a fresh schema is created and dropped)
    /// instead of embedded SQLite.
    #[arg(long)]
    postgres: Option<String>,
}

pub async fn run(args: FormArgs) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!(
        "nudge-bench-forms-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&dir)?;
    let pg = match &args.postgres {
        Some(url) => Some(PgBenchSchema::create(url).await?),
        None => None,
    };
    let backend = if pg.is_some() { "postgres" } else { "sqlite" };
    // A workspace of its own, for this run only: a key of its own.
    let ring = nudge_store::secrets::Keyring::new(nudge_store::secrets::MasterKey::generate());
    let store = nudge_store::open(pg.as_ref().map(|p| p.url.as_str()), &dir, ring).await?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ingestor = Arc::new(Ingestor::start(store.clone(), clock.clone(), IngestorConfig::default()));
    let segments = SegmentEngine::new(store.clone(), clock.clone(), Default::default());
    let state = AppState::new(store.clone(), ingestor, clock, segments).with_forms(FormLimits::unlimited(), false);
    let app = state.app();
    let form = app
        .create_form(FormInput {
            name: "Bench".into(),
            slug: "bench".into(),
            definition: json!({
                "fields": [
                    {"name": "email", "type": "email", "label": "Email", "required": true},
                    {"name": "first_name", "type": "text", "label": "First name"},
                    {"name": "company_size", "type": "select", "label": "Size", "options": ["1-10", "11-100", "100+"]},
                    {"name": "utm_source", "type": "hidden", "query": "utm_source"}
                ],
                "consents": [{"subscription": "email:newsletter", "label": "News"}],
                "spam": {"min_fill_ms": 0}
            }),
        })
        .await
        .context("creating the form")?;
    let web = nudge_web::WebState::new(state.clone(), false);
    let router = router_with_ui(state.clone(), nudge_web::router(web));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>()).await;
    });
    let url = format!("http://{addr}");
    let (_, stamp) = app.show_form(&state.forms, "bench", false).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients)
        .build()?;
    eprintln!(
        "bench forms ({backend}): {} submissions, {} clients, each a new contact with traits and consent",
        args.submissions, args.clients
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.clients {
        let (http, url, next, stamp) = (http.clone(), url.clone(), next.clone(), stamp.clone());
        let total = args.submissions;
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let email = format!("lead-{i}@bench.example");
                let size = ["1-10", "11-100", "100+"][i % 3];
                let t = Instant::now();
                let r = http
                    .post(format!("{url}/f/bench"))
                    .form(&[
                        ("_nudge_t", stamp.as_str()),
                        ("email", email.as_str()),
                        ("first_name", "Lead"),
                        ("company_size", size),
                        ("utm_source", "bench"),
                        ("consent:email:newsletter", "on"),
                    ])
                    .send()
                    .await?;
                let status = r.status();
                r.bytes().await?;
                if status != 200 {
                    bail!("submission {i} answered {status}");
                }
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let stored = store.form(form.id).await?.map(|f| f.submissions).unwrap_or(0);
    let contacts = store.contact_count().await?;
    if stored != args.submissions as u64 || contacts != args.submissions as u64 {
        bail!(
            "expected {} submissions and contacts, found {stored} and {contacts}",
            args.submissions
        );
    }
    println!(
        "forms ({backend}): {} submissions in {:.2} s = {:.0} submissions/s; latency p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} contacts created",
        args.submissions,
        elapsed.as_secs_f64(),
        args.submissions as f64 / elapsed.as_secs_f64(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        contacts
    );
    store.close().await;
    if let Some(pg) = pg {
        pg.drop_schema().await?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
