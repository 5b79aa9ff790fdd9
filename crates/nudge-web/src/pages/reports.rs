//! The workspace report (`/reports`): messages, conversions and revenue by channel,
//! campaign and journey over a date range (the last 30 days unless chosen), read
//! from the hourly counters by `nudge_app::reports`, with each group's total and a
//! CSV download; and the conversion settings — which events are conversions and how
//! long after a message one is attributed to it — which owners change here.

use crate::WebState;
use crate::auth::{FieldErrors, Viewer};
use crate::i18n::Tr;
use crate::pages::campaign_form::{UNITS, duration_fields};
use crate::pages::channels::number;
use crate::pages::journeys::enc;
use crate::render::{self, Chrome};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use nudge_app::AppError;
use nudge_app::reports::{ReportRow, WorkspaceReport};
use nudge_core::Millis;
use nudge_core::access::Permission;
use nudge_core::attribution::ConversionSettings;
use nudge_core::journey::{Duration, DurationParts};
use serde::Deserialize;

/// Days a report covers unless a range is chosen.
const DEFAULT_DAYS: i64 = 30;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RangeQuery {
    /// The first day, `YYYY-MM-DD` in the workspace's time zone.
    from: String,
    /// The last day (included).
    until: String,
    /// Set after the conversion settings were saved.
    saved: String,
}

/// A range of whole days in the workspace's time zone.
#[derive(Debug)]
struct Range {
    from_date: String,
    until_date: String,
    from: Millis,
    until: Millis,
}

/// The days the query asks for (the last 30 by default), as instants: from the start
/// of the first day to the start of the day after the last. `Err` names the input.
fn range_of(t: &Tr, now: Millis, q: &RangeQuery) -> Result<Range, FieldErrors> {
    let zone = t.zone().clone();
    let fail = |field: &str| FieldErrors(vec![(field.to_owned(), t.get("reports-error-date"))]);
    let today = jiff::Timestamp::from_millisecond(now)
        .map_err(|_| fail("until"))?
        .to_zoned(zone.clone())
        .date();
    let date = |field: &str, raw: &str, default: jiff::civil::Date| match number(raw) {
        None => Ok(default),
        Some(s) => s.parse::<jiff::civil::Date>().map_err(|_| fail(field)),
    };
    let until_date = date("until", &q.until, today)?;
    let default_from = until_date
        .checked_sub(jiff::Span::new().days(DEFAULT_DAYS - 1))
        .map_err(|_| fail("until"))?;
    let from_date = date("from", &q.from, default_from)?;
    let start = |d: jiff::civil::Date| d.to_zoned(zone.clone()).map(|z| z.timestamp().as_millisecond());
    let from = start(from_date).map_err(|_| fail("from"))?;
    let until = until_date.tomorrow().and_then(start).map_err(|_| fail("until"))?;
    Ok(Range {
        from_date: from_date.to_string(),
        until_date: until_date.to_string(),
        from,
        until,
    })
}

/// A row of the report, formatted.
pub struct Line {
    pub name: String,
    /// Its page (a campaign's, a journey's), when it still exists.
    pub href: Option<String>,
    pub recipients: String,
    pub sent: String,
    pub delivered: String,
    pub bounced: String,
    pub opened: String,
    pub open_rate: String,
    pub clicked: String,
    pub click_rate: String,
    pub conversions: String,
    pub revenue: String,
    pub unsubscribed: String,
    pub complained: String,
}

/// Channels, campaigns or journeys, with their total.
pub struct Group {
    pub kind: &'static str,
    pub title: String,
    pub lines: Vec<Line>,
    pub total: Line,
}

fn line(t: &Tr, name: String, href: Option<String>, r: &ReportRow) -> Line {
    let n = |x: f64| t.num(x.max(0.0).round() as i64);
    let rate = |part: f64| {
        if r.recipients > 0.0 {
            t.percent(part / r.recipients, 1)
        } else {
            "–".into()
        }
    };
    Line {
        name,
        href,
        recipients: n(r.recipients),
        sent: n(r.sent),
        delivered: n(r.delivered),
        bounced: n(r.bounced),
        opened: n(r.unique_opened),
        open_rate: rate(r.unique_opened),
        clicked: n(r.unique_clicked),
        click_rate: rate(r.unique_clicked),
        conversions: n(r.conversions),
        revenue: t.decimal(r.revenue, 2),
        unsubscribed: n(r.unsubscribed),
        complained: n(r.complained),
    }
}

/// The report's rows by kind, each kind with its total.
fn groups(t: &Tr, report: &WorkspaceReport) -> Vec<Group> {
    ["channel", "campaign", "journey"]
        .into_iter()
        .map(|kind| {
            let rows: Vec<&ReportRow> = report.rows.iter().filter(|r| r.kind == kind).collect();
            let mut sum = ReportRow {
                kind,
                key: String::new(),
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
            };
            let lines = rows
                .iter()
                .map(|r| {
                    for (total, v) in [
                        (&mut sum.recipients, r.recipients),
                        (&mut sum.sent, r.sent),
                        (&mut sum.delivered, r.delivered),
                        (&mut sum.bounced, r.bounced),
                        (&mut sum.unique_opened, r.unique_opened),
                        (&mut sum.unique_clicked, r.unique_clicked),
                        (&mut sum.conversions, r.conversions),
                        (&mut sum.revenue, r.revenue),
                        (&mut sum.unsubscribed, r.unsubscribed),
                        (&mut sum.complained, r.complained),
                    ] {
                        *total += v;
                    }
                    let (name, href) = match (kind, &r.name) {
                        ("channel", _) => (t.get(&format!("channel-kind-{}", r.key)), None),
                        (_, Some(name)) => (name.clone(), Some(format!("/{kind}s/{}", r.key))),
                        (_, None) => (t.arg("reports-deleted", "key", &r.key), None),
                    };
                    line(t, name, href, r)
                })
                .collect();
            Group {
                kind,
                title: t.get(&format!("reports-group-{kind}")),
                total: line(t, t.get("reports-total"), None, &sum),
                lines,
            }
        })
        .collect()
}

/// The conversion settings' inputs.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct ConversionForm {
    /// One event name a line.
    pub events: String,
    pub engaged_window: String,
    pub engaged_window_unit: String,
    pub delivered_window: String,
    pub delivered_window_unit: String,
}

impl ConversionForm {
    fn of(s: &ConversionSettings) -> Self {
        let (engaged_window, engaged_window_unit) = duration_fields(s.engaged_window.as_millis());
        let (delivered_window, delivered_window_unit) = duration_fields(s.delivered_window.as_millis());
        ConversionForm {
            events: s.events.join("\n"),
            engaged_window,
            engaged_window_unit,
            delivered_window,
            delivered_window_unit,
        }
    }

    /// The settings the form describes; `Err` names an input whose number cannot be
    /// read (the rules are the application layer's).
    fn settings(&self, t: &Tr) -> Result<ConversionSettings, FieldErrors> {
        let mut errors = Vec::new();
        let mut window = |field: &str, raw: &str, unit: &str| {
            let n = number(raw).and_then(|n| n.parse::<i64>().ok());
            let Some(n) = n else {
                errors.push((field.to_owned(), t.get("campaign-error-whole-number")));
                return Duration::Millis(0);
            };
            let mut parts = DurationParts::default();
            match unit {
                "minutes" => parts.minutes = n,
                "hours" => parts.hours = n,
                _ => parts.days = n,
            }
            Duration::Parts(parts)
        };
        let engaged_window = window("engaged_window", &self.engaged_window, &self.engaged_window_unit);
        let delivered_window = window("delivered_window", &self.delivered_window, &self.delivered_window_unit);
        if !errors.is_empty() {
            return Err(FieldErrors(errors));
        }
        Ok(ConversionSettings {
            events: self
                .events
                .lines()
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
            engaged_window,
            delivered_window,
        })
    }
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage {
    c: Chrome,
    from: String,
    until: String,
    /// The range in words, in the viewer's calendar.
    range: String,
    errors: FieldErrors,
    groups: Vec<Group>,
    csv: String,
    conversions: ConversionForm,
    conversion_errors: FieldErrors,
    saved: bool,
}

impl ReportsPage {
    fn units(&self) -> &'static [&'static str] {
        &UNITS
    }
    fn unit_label(&self, unit: &str) -> String {
        self.c.t.get(&format!("campaign-unit-{unit}"))
    }
    /// A window in words (`5 days`).
    fn window_text(&self, n: &str, unit: &str) -> String {
        self.c
            .t
            .count(&format!("campaign-{unit}"), n.parse::<i64>().unwrap_or(0))
    }
}

async fn render_page(
    state: &WebState,
    viewer: &Viewer,
    q: &RangeQuery,
    conversions: Option<(ConversionForm, FieldErrors)>,
) -> Response {
    let t = &viewer.t;
    let app = state.app();
    let mut errors = FieldErrors::default();
    let mut shown = Vec::new();
    let (mut from, mut until, mut range, mut csv) = (q.from.clone(), q.until.clone(), String::new(), String::new());
    match range_of(t, state.now(), q) {
        Err(e) => errors = e,
        Ok(r) => {
            match app.workspace_report(r.from, r.until).await {
                Ok(report) => shown = groups(t, &report),
                Err(e @ (AppError::InvalidRequest { .. } | AppError::InvalidField { .. })) => {
                    errors = FieldErrors::from_app(&e)
                }
                Err(e) => return render::app_error(t, e),
            }
            range = t.args(
                "reports-range",
                &[("from", &t.date(r.from)), ("until", &t.date(r.until - 1))],
            );
            csv = format!(
                "/reports/report.csv?from={}&until={}",
                enc(&r.from_date),
                enc(&r.until_date)
            );
            (from, until) = (r.from_date, r.until_date);
        }
    }
    let (conversions, conversion_errors) = match conversions {
        Some(c) => c,
        None => match app.conversion_settings().await {
            Ok(s) => (ConversionForm::of(&s), FieldErrors::default()),
            Err(e) => return render::app_error(t, e),
        },
    };
    let failed = !errors.0.is_empty() || !conversion_errors.0.is_empty();
    let mut resp = render::page(&ReportsPage {
        c: viewer.chrome("reports", "/reports"),
        from,
        until,
        range,
        errors,
        groups: shown,
        csv,
        conversions,
        conversion_errors,
        saved: !q.saved.is_empty(),
    });
    if failed {
        *resp.status_mut() = StatusCode::BAD_REQUEST;
    }
    resp
}

/// `GET /reports?from=YYYY-MM-DD&until=YYYY-MM-DD`
pub async fn page(State(state): State<WebState>, viewer: Viewer, Query(q): Query<RangeQuery>) -> Response {
    render_page(&state, &viewer, &q, None).await
}

/// `GET /reports/report.csv?from=…&until=…`: the same rows as CSV.
pub async fn csv(State(state): State<WebState>, viewer: Viewer, Query(q): Query<RangeQuery>) -> Response {
    let t = &viewer.t;
    let r = match range_of(t, state.now(), &q) {
        Ok(r) => r,
        Err(e) => {
            let message = e.0.into_iter().map(|(_, m)| m).collect::<Vec<_>>().join(" ");
            return render::error(t, StatusCode::BAD_REQUEST, message);
        }
    };
    let body = match state.app().workspace_report(r.from, r.until).await {
        Ok(report) => nudge_app::reports::workspace_report_csv(&report),
        Err(e) => Err(e),
    };
    match body {
        Ok(body) => (
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (
                    header::CONTENT_DISPOSITION,
                    format!("attachment; filename=\"report-{}-{}.csv\"", r.from_date, r.until_date),
                ),
            ],
            body,
        )
            .into_response(),
        Err(e) => render::app_error(t, e),
    }
}

/// `POST /reports/conversions` (owners): which events are conversions and the
/// attribution windows.
pub async fn conversions(State(state): State<WebState>, viewer: Viewer, Form(f): Form<ConversionForm>) -> Response {
    if let Err(r) = viewer.require(Permission::Administer) {
        return r;
    }
    let t = &viewer.t;
    let q = RangeQuery::default();
    let settings = match f.settings(t) {
        Ok(s) => s,
        Err(errors) => return render_page(&state, &viewer, &q, Some((f, errors))).await,
    };
    match state.app().set_conversion_settings(settings).await {
        Ok(_) => Redirect::to("/reports?saved=conversions#conversions").into_response(),
        Err(e @ (AppError::InvalidField { .. } | AppError::MissingField { .. })) => {
            render_page(&state, &viewer, &q, Some((f, FieldErrors::from_app(&e)))).await
        }
        Err(e) => render::app_error(t, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{ArabicCalendar, Lang};

    #[test]
    fn the_default_range_is_the_last_thirty_days_in_the_workspace_zone() {
        let t = Tr::new(
            Lang::Fa,
            jiff::tz::TimeZone::get("Asia/Tehran").unwrap(),
            ArabicCalendar::Gregorian,
        );
        // 2026-12-06T22:00:00Z is already 7 December in Tehran.
        let now = "2026-12-06T22:00:00Z"
            .parse::<jiff::Timestamp>()
            .unwrap()
            .as_millisecond();
        let r = range_of(&t, now, &RangeQuery::default()).unwrap();
        assert_eq!(
            (r.from_date.as_str(), r.until_date.as_str()),
            ("2026-11-08", "2026-12-07")
        );
        assert_eq!(r.until - r.from, 30 * 86_400_000);
        let q = RangeQuery {
            from: "۲۰۲۶-۱۲-۰۱".into(),
            until: "2026-12-01".into(),
            ..Default::default()
        };
        let one = range_of(&t, now, &q).unwrap();
        assert_eq!(one.until - one.from, 86_400_000);
        let bad = RangeQuery {
            from: "yesterday".into(),
            ..Default::default()
        };
        assert_eq!(range_of(&t, now, &bad).unwrap_err().0[0].0, "from");
    }

    #[test]
    fn conversion_windows_read_in_their_units() {
        let t = Tr::new(Lang::En, jiff::tz::TimeZone::UTC, ArabicCalendar::Gregorian);
        let f = ConversionForm {
            events: "Order Completed\n\n  Signed Up \n".into(),
            engaged_window: "5".into(),
            engaged_window_unit: "days".into(),
            delivered_window: "12".into(),
            delivered_window_unit: "hours".into(),
        };
        let s = f.settings(&t).unwrap();
        assert_eq!(s.events, ["Order Completed", "Signed Up"]);
        assert_eq!(s.engaged_window.as_millis(), 5 * 86_400_000);
        assert_eq!(s.delivered_window.as_millis(), 12 * 3_600_000);
        let back = ConversionForm::of(&s);
        assert_eq!(
            (back.delivered_window.as_str(), back.delivered_window_unit.as_str()),
            ("12", "hours")
        );
        let bad = ConversionForm {
            engaged_window: "a week".into(),
            ..f
        };
        assert_eq!(bad.settings(&t).unwrap_err().0[0].0, "engaged_window");
    }
}
