//! The dashboard: the workspace at a glance — contacts, events per minute, messages
//! sent, delivered, opened and clicked, conversions and revenue over the last 24 hours,
//! 7 or 30 days (maintained hourly counts, never a scan), live journeys with their
//! numbers, and channel health.

use crate::WebState;
use crate::auth::Viewer;
use crate::chart::{self, Bar};
use crate::i18n::Tr;
use crate::render::{self, Chrome};
use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use nudge_core::Millis;
use nudge_store::{HOUR_MS, HourlyStat, JourneyStatus, Metric};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
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
#[derive(Clone)]
pub struct ChannelRow {
    pub kind: String,
    pub transport: String,
    pub problem: Option<String>,
}

/// A number of the period with its label.
pub struct Tile {
    pub label: String,
    pub value: String,
    /// Share of sent messages, for opens and clicks.
    pub rate: Option<String>,
}

/// The periods the dashboard offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Day, Period::Week, Period::Month];

    fn parse(s: &str) -> Option<Self> {
        Period::ALL.into_iter().find(|p| p.code() == s)
    }
    pub fn code(self) -> &'static str {
        match self {
            Period::Day => "24h",
            Period::Week => "7d",
            Period::Month => "30d",
        }
    }
    fn hours(self) -> i64 {
        match self {
            Period::Day => 24,
            Period::Week => 7 * 24,
            Period::Month => 30 * 24,
        }
    }
    /// Hours per bar: hourly over a day, daily otherwise.
    fn bucket_hours(self) -> i64 {
        match self {
            Period::Day => 1,
            Period::Week | Period::Month => 24,
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard.html")]
struct DashboardPage {
    c: Chrome,
    period: Period,
    periods: [Period; 3],
    contacts: u64,
    events_per_minute: String,
    tiles: Vec<Tile>,
    messages_chart: String,
    revenue_chart: String,
    journeys: Vec<JourneyRow>,
    channels: Vec<ChannelRow>,
}

/// Channel health is checked over the network (SMTP, provider APIs); the dashboard
/// shows the last answer for up to this long rather than waiting on every view.
const HEALTH_TTL: Duration = Duration::from_secs(30);

/// The last answer, when, and the deliverer's channel generation it was about (a
/// channel replaced since, here or on another node, is checked again).
static HEALTH: Mutex<Option<(Instant, u64, Vec<ChannelRow>)>> = Mutex::new(None);

pub(crate) async fn channel_health(state: &WebState) -> Vec<ChannelRow> {
    let generation = state.api.messaging.as_ref().map_or(0, |m| m.generation());
    if let Some((at, seen, rows)) = HEALTH.lock().unwrap_or_else(|e| e.into_inner()).as_ref()
        && at.elapsed() < HEALTH_TTL
        && *seen == generation
    {
        return rows.clone();
    }
    let rows: Vec<ChannelRow> = state
        .app()
        .channels(Some(Duration::from_secs(2)))
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|c| ChannelRow {
            kind: c.kind.to_owned(),
            transport: c.transport.to_owned(),
            problem: c.health.err(),
        })
        .collect();
    *HEALTH.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), generation, rows.clone()));
    rows
}

/// After a channel changed: the next view checks again.
pub(crate) fn forget_health() {
    *HEALTH.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Events ingested per minute by this process, from samples of the ingest counter
/// taken as the dashboard is viewed (the first view after a quiet spell shows the
/// rate since the previous one). Per node: behind a load balancer each node counts
/// what it ingested.
fn events_per_minute(state: &WebState) -> Option<f64> {
    static SAMPLE: Mutex<Option<(Instant, u64)>> = Mutex::new(None);
    let now = (
        Instant::now(),
        state.api.ingestor.stats().messages.load(Ordering::Relaxed),
    );
    let mut sample = SAMPLE.lock().unwrap_or_else(|e| e.into_inner());
    let rate = sample.and_then(|(at, n)| {
        let secs = now.0.duration_since(at).as_secs_f64();
        (secs >= 1.0).then(|| (now.1.saturating_sub(n)) as f64 * 60.0 / secs)
    });
    // Keep the older sample until a minute has passed, so the rate covers a minute.
    if sample.is_none_or(|(at, _)| now.0.duration_since(at) >= Duration::from_secs(60)) {
        *sample = Some(now);
    }
    rate
}

/// Per-bucket sums of `metric` over the period ending at `now`, oldest first.
fn series(stats: &[HourlyStat], metric: Metric, period: Period, now: Millis) -> Vec<(Millis, f64)> {
    let bucket = period.bucket_hours() * HOUR_MS;
    let end = now.div_euclid(bucket) * bucket + bucket;
    let n = period.hours() / period.bucket_hours();
    let start = end - n * bucket;
    let mut sums: BTreeMap<Millis, f64> = (0..n).map(|i| (start + i * bucket, 0.0)).collect();
    for s in stats.iter().filter(|s| s.metric == metric && s.hour_start >= start) {
        let b = start + (s.hour_start - start).div_euclid(bucket) * bucket;
        if let Some(v) = sums.get_mut(&b) {
            *v += s.value;
        }
    }
    sums.into_iter().collect()
}

fn total(stats: &[HourlyStat], metric: Metric, since: Millis) -> f64 {
    stats
        .iter()
        .filter(|s| s.metric == metric && s.hour_start >= since)
        .map(|s| s.value)
        .sum()
}

fn chart(t: &Tr, points: &[(Millis, f64)], period: Period, title: &str, money: bool) -> String {
    let every = (points.len() / 6).max(1);
    let show = |v: f64| {
        if money {
            t.decimal(v, 2)
        } else {
            t.num(v.round() as i64)
        }
    };
    let bars: Vec<Bar> = points
        .iter()
        .enumerate()
        .map(|(i, (at, v))| {
            let label = if (i + every / 2).is_multiple_of(every) {
                match period {
                    Period::Day => t.hour(*at),
                    _ => t.day_month(*at),
                }
            } else {
                String::new()
            };
            Bar {
                label,
                value: *v,
                shown: show(*v),
            }
        })
        .collect();
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    chart::bars(&bars, title, &show(max), t.lang.is_rtl())
}

#[derive(Deserialize, Default)]
pub struct DashboardQuery {
    period: Option<String>,
}

/// `GET /`
pub async fn page(State(state): State<WebState>, viewer: Viewer, Query(q): Query<DashboardQuery>) -> Response {
    let t = &viewer.t;
    let period = q.period.as_deref().and_then(Period::parse).unwrap_or(Period::Week);
    let store = &state.api.store;
    let now = state.now();
    let since = now - period.hours() * HOUR_MS;
    let (contacts, stats, journeys) = match (
        store.contact_count().await,
        store.hourly_stats(since - period.bucket_hours() * HOUR_MS).await,
        store.journeys().await,
    ) {
        (Ok(c), Ok(s), Ok(j)) => (c, s, j),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return render::app_error(t, e.into()),
    };
    let mut rows = Vec::new();
    for j in journeys.into_iter().filter(|j| j.status == JourneyStatus::Live) {
        let stats = match store.journey_stats(j.id).await {
            Ok(s) => s,
            Err(e) => return render::app_error(t, e.into()),
        };
        rows.push(JourneyRow {
            id: j.id,
            name: j.name,
            entered: stats.entered,
            active: stats.active,
            conversions: stats.conversions,
            revenue: stats.revenue,
        });
    }
    let sent = total(&stats, Metric::MessagesSent, since);
    let rate = |v: f64| (sent > 0.0).then(|| t.arg("dashboard-rate", "percent", t.decimal(v * 100.0 / sent, 1)));
    let count_tile = |id: &str, metric: Metric, with_rate: bool| {
        let v = total(&stats, metric, since);
        Tile {
            label: t.get(id),
            value: t.num(v.round() as i64),
            rate: if with_rate { rate(v) } else { None },
        }
    };
    let tiles = vec![
        count_tile("stat-sent", Metric::MessagesSent, false),
        count_tile("stat-delivered", Metric::MessagesDelivered, true),
        count_tile("stat-opened", Metric::MessagesOpened, true),
        count_tile("stat-clicked", Metric::MessagesClicked, true),
        count_tile("stat-conversions", Metric::Conversions, false),
        Tile {
            label: t.get("stat-revenue"),
            value: t.decimal(total(&stats, Metric::Revenue, since), 2),
            rate: None,
        },
    ];
    let messages_chart = chart(
        t,
        &series(&stats, Metric::MessagesSent, period, now),
        period,
        &t.get("chart-messages-sent"),
        false,
    );
    let revenue_chart = chart(
        t,
        &series(&stats, Metric::Revenue, period, now),
        period,
        &t.get("chart-revenue"),
        true,
    );
    let events_per_minute = events_per_minute(&state)
        .map(|r| t.decimal(r, 1))
        .unwrap_or_else(|| "—".into());
    let channels = channel_health(&state).await;
    render::page(&DashboardPage {
        c: viewer.chrome("dashboard", format!("/?period={}", period.code())),
        period,
        periods: Period::ALL,
        contacts,
        events_per_minute,
        tiles,
        messages_chart,
        revenue_chart,
        journeys: rows,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(hour: i64, metric: Metric, value: f64) -> HourlyStat {
        HourlyStat {
            hour_start: hour * HOUR_MS,
            metric,
            value,
        }
    }

    #[test]
    fn series_sum_hours_into_days_and_keep_empty_buckets() {
        let now = 100 * 24 * HOUR_MS + 5 * HOUR_MS; // day 100, 05:00
        let stats = [
            stat(100 * 24 + 1, Metric::MessagesSent, 2.0),
            stat(100 * 24 + 3, Metric::MessagesSent, 3.0),
            stat(99 * 24 + 23, Metric::MessagesSent, 7.0),
            stat(99 * 24 + 23, Metric::MessagesOpened, 1.0),
            stat(80 * 24, Metric::MessagesSent, 100.0),
        ];
        let s = series(&stats, Metric::MessagesSent, Period::Week, now);
        assert_eq!(s.len(), 7);
        assert_eq!(s.last().unwrap(), &(100 * 24 * HOUR_MS, 5.0));
        assert_eq!(s[5], (99 * 24 * HOUR_MS, 7.0));
        assert_eq!(
            s.iter().map(|p| p.1).sum::<f64>(),
            12.0,
            "older than the week is left out"
        );
        let day = series(&stats, Metric::MessagesSent, Period::Day, now);
        assert_eq!(day.len(), 24);
        assert_eq!(
            day.last().unwrap().0,
            (100 * 24 + 5) * HOUR_MS,
            "the current hour is the last bar"
        );
    }
}
