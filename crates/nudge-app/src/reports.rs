//! The workspace report: messages, conversions and revenue by channel, campaign and
//! journey over a date range, read from the hourly counters kept as messages change
//! (`Store::report_totals`); never from the events.

use crate::{App, AppError, Result};
use nudge_core::Millis;
use nudge_store::ReportScope;
use serde::Serialize;
use std::collections::BTreeMap;

const HOUR: Millis = 3_600_000;

/// The longest range a report covers (400 days).
pub const MAX_RANGE: Millis = 400 * 24 * HOUR;

/// One row: a channel, a campaign or a journey, and its counters over the range.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    /// `channel`, `campaign` or `journey`.
    pub kind: &'static str,
    /// The channel's name, or the campaign's or journey's id.
    pub key: String,
    /// The campaign's or journey's name (the channel's for a channel; `None` once
    /// deleted).
    pub name: Option<String>,
    pub recipients: f64,
    pub sent: f64,
    pub delivered: f64,
    pub bounced: f64,
    pub failed: f64,
    pub opened: f64,
    pub unique_opened: f64,
    pub clicked: f64,
    pub unique_clicked: f64,
    pub conversions: f64,
    pub converted: f64,
    pub revenue: f64,
    pub unsubscribed: f64,
    pub complained: f64,
}

/// The workspace report over `[from, until)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkspaceReport {
    pub from: Millis,
    pub until: Millis,
    /// Channels, then campaigns, then journeys, each by key.
    pub rows: Vec<ReportRow>,
}

impl App {
    /// Messages, conversions and revenue by channel, campaign and journey from `from`
    /// until `until` (whole hours: the hour holding `from` to the one before `until`).
    pub async fn workspace_report(&self, from: Millis, until: Millis) -> Result<WorkspaceReport> {
        if until <= from {
            return Err(AppError::invalid_request("until", "must be after from"));
        }
        if until - from > MAX_RANGE {
            return Err(AppError::invalid_request("from", "a report covers at most 400 days"));
        }
        let totals = self
            .store
            .report_totals(from.div_euclid(HOUR), (until - 1).div_euclid(HOUR))
            .await?;
        let mut rows: BTreeMap<ReportScope, ReportRow> = BTreeMap::new();
        for (scope, counter, value) in totals {
            let row = rows.entry(scope.clone()).or_insert_with(|| empty_row(&scope));
            use nudge_core::protocol::CampaignCounter as C;
            let field = match counter {
                C::Recipients => &mut row.recipients,
                C::Sent => &mut row.sent,
                C::Delivered => &mut row.delivered,
                C::Bounced => &mut row.bounced,
                C::Failed => &mut row.failed,
                C::Opened => &mut row.opened,
                C::UniqueOpened => &mut row.unique_opened,
                C::Clicked => &mut row.clicked,
                C::UniqueClicked => &mut row.unique_clicked,
                C::Conversions => &mut row.conversions,
                C::Converted => &mut row.converted,
                C::Revenue => &mut row.revenue,
                C::Unsubscribed => &mut row.unsubscribed,
                C::Complained => &mut row.complained,
                C::RevenueSquares => continue,
            };
            *field += value;
        }
        let campaigns: BTreeMap<i64, String> = self
            .store
            .campaigns()
            .await?
            .into_iter()
            .map(|c| (c.id, c.name))
            .collect();
        let journeys: BTreeMap<i64, String> = self
            .store
            .journeys()
            .await?
            .into_iter()
            .map(|j| (j.id, j.name))
            .collect();
        let rows = rows
            .into_iter()
            .map(|(scope, mut row)| {
                row.name = match scope {
                    ReportScope::Channel(c) => Some(c),
                    ReportScope::Campaign(id) => campaigns.get(&id).cloned(),
                    ReportScope::Journey(id) => journeys.get(&id).cloned(),
                };
                row
            })
            .collect();
        Ok(WorkspaceReport { from, until, rows })
    }
}

/// How a series is bucketed: by hour (UTC hours), or by day in the workspace's time
/// zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "hour" => Some(Granularity::Hour),
            "day" => Some(Granularity::Day),
            _ => None,
        }
    }
}

/// One bucket of a series: when it starts and its counters (only those that moved).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesPoint {
    pub at: Millis,
    pub counts: BTreeMap<&'static str, f64>,
}

/// A scope's counters over `[from, until)` by hour or by day.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Series {
    pub scope: ReportScope,
    pub granularity: Granularity,
    /// The zone days are counted in (`UTC` for hours).
    pub time_zone: String,
    pub from: Millis,
    pub until: Millis,
    /// Buckets with a count, in time order.
    pub points: Vec<SeriesPoint>,
}

/// Sums hourly counters `(hour, counter, value)` into buckets: each hour's own, or
/// the day (midnight to midnight in `zone`) holding its start. Pure; hours are
/// given in order.
pub fn bucket(
    rows: &[(i64, nudge_core::protocol::CampaignCounter, f64)],
    granularity: Granularity,
    zone: &jiff::tz::TimeZone,
) -> Vec<SeriesPoint> {
    let mut points: BTreeMap<Millis, BTreeMap<&'static str, f64>> = BTreeMap::new();
    for &(hour, counter, value) in rows {
        let at = hour * HOUR;
        let start = match granularity {
            Granularity::Hour => at,
            Granularity::Day => day_start(at, zone),
        };
        *points.entry(start).or_default().entry(counter.as_str()).or_default() += value;
    }
    points
        .into_iter()
        .map(|(at, counts)| SeriesPoint { at, counts })
        .collect()
}

/// The start of the day holding `at` in `zone`.
fn day_start(at: Millis, zone: &jiff::tz::TimeZone) -> Millis {
    jiff::Timestamp::from_millisecond(at)
        .ok()
        .and_then(|t| t.to_zoned(zone.clone()).start_of_day().ok())
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or(at - at.rem_euclid(24 * HOUR))
}

impl App {
    /// A campaign's, journey's or channel's counters from `from` until `until` (whole
    /// hours) by hour or by day in the workspace's time zone, from the hourly
    /// counters (never the events). At most 400 days.
    pub async fn report_series(
        &self,
        scope: ReportScope,
        granularity: Granularity,
        from: Millis,
        until: Millis,
    ) -> Result<Series> {
        if until <= from {
            return Err(AppError::invalid_request("until", "must be after from"));
        }
        if until - from > MAX_RANGE {
            return Err(AppError::invalid_request("from", "a series covers at most 400 days"));
        }
        let rows = self
            .store
            .report_series(scope.clone(), from.div_euclid(HOUR), (until - 1).div_euclid(HOUR))
            .await?;
        let zone = match granularity {
            Granularity::Hour => jiff::tz::TimeZone::UTC,
            Granularity::Day => self.journey_zone(None),
        };
        Ok(Series {
            scope,
            granularity,
            time_zone: zone.iana_name().unwrap_or("UTC").to_string(),
            from,
            until,
            points: bucket(&rows, granularity, &zone),
        })
    }
}

/// A series as CSV: one row per bucket, one column per counter.
pub fn series_csv(s: &Series) -> Result<String> {
    use nudge_core::protocol::CampaignCounter;
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["at"];
    header.extend(CampaignCounter::ALL.iter().map(|c| c.as_str()));
    w.write_record(&header).map_err(AppError::internal)?;
    for p in &s.points {
        let mut rec = vec![nudge_core::format_millis(p.at)];
        for c in CampaignCounter::ALL {
            rec.push(p.counts.get(c.as_str()).copied().unwrap_or(0.0).to_string());
        }
        w.write_record(&rec).map_err(AppError::internal)?;
    }
    let bytes = w.into_inner().map_err(AppError::internal)?;
    String::from_utf8(bytes).map_err(AppError::internal)
}

fn empty_row(scope: &ReportScope) -> ReportRow {
    let (kind, key) = match scope {
        ReportScope::Channel(c) => ("channel", c.clone()),
        ReportScope::Campaign(id) => ("campaign", id.to_string()),
        ReportScope::Journey(id) => ("journey", id.to_string()),
    };
    ReportRow {
        kind,
        key,
        name: None,
        recipients: 0.0,
        sent: 0.0,
        delivered: 0.0,
        bounced: 0.0,
        failed: 0.0,
        opened: 0.0,
        unique_opened: 0.0,
        clicked: 0.0,
        unique_clicked: 0.0,
        conversions: 0.0,
        converted: 0.0,
        revenue: 0.0,
        unsubscribed: 0.0,
        complained: 0.0,
    }
}

/// The report as CSV: one row per channel, campaign and journey.
pub fn workspace_report_csv(r: &WorkspaceReport) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record([
        "kind",
        "key",
        "name",
        "recipients",
        "sent",
        "delivered",
        "bounced",
        "failed",
        "opened",
        "unique_opened",
        "clicked",
        "unique_clicked",
        "conversions",
        "converted",
        "revenue",
        "unsubscribed",
        "complained",
    ])
    .map_err(AppError::internal)?;
    for row in &r.rows {
        let mut rec = vec![
            row.kind.to_string(),
            row.key.clone(),
            row.name.clone().unwrap_or_default(),
        ];
        for v in [
            row.recipients,
            row.sent,
            row.delivered,
            row.bounced,
            row.failed,
            row.opened,
            row.unique_opened,
            row.clicked,
            row.unique_clicked,
            row.conversions,
            row.converted,
            row.revenue,
            row.unsubscribed,
            row.complained,
        ] {
            rec.push(v.to_string());
        }
        w.write_record(&rec).map_err(AppError::internal)?;
    }
    String::from_utf8(w.into_inner().map_err(AppError::internal)?).map_err(AppError::internal)
}

impl App {
    /// The workspace's conversion settings (the defaults when none are stored).
    pub async fn conversion_settings(&self) -> Result<nudge_core::attribution::ConversionSettings> {
        Ok(nudge_engine::conversion_settings(&*self.store).await?)
    }

    /// Stores the conversion settings after checking them (every problem named by its
    /// field); the engine listens for the new events from its next round.
    pub async fn set_conversion_settings(
        &self,
        settings: nudge_core::attribution::ConversionSettings,
    ) -> Result<nudge_core::attribution::ConversionSettings> {
        if let Some((field, message)) = settings.problems().into_iter().next() {
            return Err(AppError::invalid_field(field, message));
        }
        let raw = serde_json::to_string(&settings).map_err(AppError::internal)?;
        self.store
            .put_setting(nudge_core::attribution::ConversionSettings::KEY, Some(&raw))
            .await?;
        if let Some(engine) = &self.journeys {
            engine.wake();
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nudge_core::protocol::CampaignCounter as C;

    #[test]
    fn hours_sum_into_the_days_of_the_zone() {
        // 2026-03-01T00:00Z is hour 492,312; Tehran is UTC+3:30.
        let h0 = 1_772_323_200_000 / HOUR;
        let rows = vec![
            (h0, C::Opened, 2.0),
            (h0 + 1, C::Opened, 3.0),
            (h0 + 21, C::Opened, 4.0),
            (h0 + 21, C::Clicked, 1.0),
        ];
        let utc = bucket(&rows, Granularity::Day, &jiff::tz::TimeZone::UTC);
        assert_eq!(utc.len(), 1);
        assert_eq!(
            (utc[0].at, utc[0].counts["opened"], utc[0].counts["clicked"]),
            (h0 * HOUR, 9.0, 1.0)
        );
        let tehran = jiff::tz::TimeZone::get("Asia/Tehran").unwrap();
        let local = bucket(&rows, Granularity::Day, &tehran);
        // 00:00Z and 01:00Z are 03:30 and 04:30 on March 1st in Tehran; 21:00Z is
        // 00:30 on March 2nd.
        assert_eq!(local.len(), 2);
        assert_eq!(local[0].at, h0 * HOUR - 3 * HOUR - HOUR / 2);
        assert_eq!(local[0].counts["opened"], 5.0);
        assert_eq!(local[1].at, (h0 + 20) * HOUR + HOUR / 2);
        assert_eq!(local[1].counts["opened"], 4.0);
        let hourly = bucket(&rows, Granularity::Hour, &tehran);
        assert_eq!(hourly.len(), 3, "hours stay hours");
    }
}
