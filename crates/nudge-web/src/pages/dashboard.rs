//! The dashboard: the workspace at a glance.

use crate::WebState;
use crate::auth::Viewer;
use crate::render::{self, Chrome};
use askama::Template;
use axum::extract::State;
use axum::response::Response;
use nudge_store::JourneyStatus;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A live journey's numbers.
pub struct JourneyRow {
    pub id: i64,
    pub name: String,
    pub entered: i64,
    pub active: i64,
    pub conversions: i64,
    pub revenue: f64,
}

/// A channel and whether it answers.
pub struct ChannelRow {
    pub kind: String,
    pub transport: String,
    pub problem: Option<String>,
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    c: Chrome,
    contacts: u64,
    journeys: Vec<JourneyRow>,
    channels: Vec<ChannelRow>,
}

/// Channel health is checked over the network (SMTP, provider APIs); the dashboard
/// shows the last answer for up to this long rather than waiting on every view.
const HEALTH_TTL: Duration = Duration::from_secs(30);

/// When channels were last asked, and their answers: kind, transport, problem.
type Health = Option<(Instant, Vec<(String, String, Option<String>)>)>;

static HEALTH: Mutex<Health> = Mutex::new(None);

async fn channel_health(state: &WebState) -> Vec<ChannelRow> {
    if let Some((at, rows)) = HEALTH.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && at.elapsed() < HEALTH_TTL
    {
        return rows
            .iter()
            .map(|(k, t, p)| ChannelRow {
                kind: k.clone(),
                transport: t.clone(),
                problem: p.clone(),
            })
            .collect();
    }
    let Some(m) = &state.api.messaging else {
        return Vec::new();
    };
    let mut rows = Vec::new();
    for c in m.channels() {
        let problem = match tokio::time::timeout(Duration::from_secs(2), c.health()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e),
            Err(_) => Some("no answer within 2 s".to_owned()),
        };
        rows.push((c.kind().to_owned(), c.transport().to_owned(), problem));
    }
    let out = rows
        .iter()
        .map(|(k, t, p)| ChannelRow {
            kind: k.clone(),
            transport: t.clone(),
            problem: p.clone(),
        })
        .collect();
    *HEALTH.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), rows));
    out
}

/// `GET /`
pub async fn page(State(state): State<WebState>, viewer: Viewer) -> Response {
    let store = &state.api.store;
    let contacts = match store.contact_count().await {
        Ok(n) => n,
        Err(e) => return render::app_error(&viewer.t, e.into()),
    };
    let mut journeys = Vec::new();
    match store.journeys().await {
        Ok(all) => {
            for j in all.into_iter().filter(|j| j.status == JourneyStatus::Live) {
                let stats = match store.journey_stats(j.id).await {
                    Ok(s) => s,
                    Err(e) => return render::app_error(&viewer.t, e.into()),
                };
                journeys.push(JourneyRow {
                    id: j.id,
                    name: j.name,
                    entered: stats.entered,
                    active: stats.active,
                    conversions: stats.conversions,
                    revenue: stats.revenue,
                });
            }
        }
        Err(e) => return render::app_error(&viewer.t, e.into()),
    }
    let channels = channel_health(&state).await;
    render::page(&DashboardPage {
        c: viewer.chrome("dashboard", "/"),
        contacts,
        journeys,
        channels,
    })
}
