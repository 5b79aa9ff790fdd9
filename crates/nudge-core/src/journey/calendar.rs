//! Local time: times of day in the contact's time zone, quiet hours, send windows and
//! frequency caps. Everything takes the instant and a resolved time zone; nothing reads
//! the clock.

use super::{Day, FrequencyCap, QuietHours, SendWindow};
use crate::Millis;
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};
use serde::{Deserialize, Serialize};

/// `HH:MM` (00:00 to 23:59, two digits each) → (hour, minute).
pub fn parse_time_of_day(s: &str) -> Option<(i8, i8)> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m): (i8, i8) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some((h, m))
}

fn minutes(s: &str) -> i32 {
    parse_time_of_day(s).map_or(0, |(h, m)| h as i32 * 60 + m as i32)
}

fn zoned(t: Millis, tz: &TimeZone) -> Option<Zoned> {
    Some(Timestamp::from_millisecond(t).ok()?.to_zoned(tz.clone()))
}

fn allowed_day(z: &Zoned, days: &[Day]) -> bool {
    days.is_empty() || days.iter().any(|d| d.weekday() == z.weekday())
}

/// The earliest instant at or after `t` whose local time in `tz` is `time` (`HH:MM`)
/// on one of `days` (any day when empty). A local time skipped by a daylight-saving
/// change resolves to the moment just after the gap; a repeated one to its first
/// occurrence. An invalid `time` reads as midnight (validation prevents it).
pub fn next_local_time(t: Millis, tz: &TimeZone, time: &str, days: &[Day]) -> Millis {
    let (h, m) = parse_time_of_day(time).unwrap_or((0, 0));
    let Some(now) = zoned(t, tz) else { return t };
    let today = now.date();
    for offset in 0..=8 {
        let Ok(date) = today.checked_add(jiff::Span::new().days(offset)) else {
            break;
        };
        if !days.is_empty() && days.iter().all(|d| d.weekday() != date.weekday()) {
            continue;
        }
        let Ok(candidate) = date.at(h, m, 0, 0).to_zoned(tz.clone()) else {
            continue;
        };
        let ms = candidate.timestamp().as_millisecond();
        if ms >= t {
            return ms;
        }
    }
    t
}

/// Why a send waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeferReason {
    QuietHours,
    SendWindow,
    FrequencyCap,
    /// Held for the contact's best time (a send step's `best_time`).
    BestTime,
}

/// A marketing (non-transactional) message the contact was sent, by any journey or
/// campaign: what frequency caps count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// `None`: unknown channel (counts only for caps on every channel).
    pub channel: Option<String>,
    pub at: Millis,
}

fn quiet_until(t: Millis, tz: &TimeZone, q: &QuietHours) -> Option<Millis> {
    let z = zoned(t, tz)?;
    let m = z.hour() as i32 * 60 + z.minute() as i32;
    let (start, end) = (minutes(&q.start), minutes(&q.end));
    let quiet = if start < end {
        start <= m && m < end
    } else if start > end {
        m >= start || m < end
    } else {
        false
    };
    quiet.then(|| next_local_time(t, tz, &q.end, &[]))
}

fn window_until(t: Millis, tz: &TimeZone, w: &SendWindow) -> Option<Millis> {
    let z = zoned(t, tz)?;
    let m = z.hour() as i32 * 60 + z.minute() as i32;
    let open = allowed_day(&z, &w.days) && minutes(&w.from) <= m && m < minutes(&w.to);
    (!open).then(|| next_local_time(t, tz, &w.from, &w.days))
}

/// When the caps next leave room for one more message on `channel` at or after `t`.
fn cap_until(t: Millis, caps: &[FrequencyCap], channel: Option<&str>, sent: &[SentMessage]) -> Option<Millis> {
    let mut until: Option<Millis> = None;
    for cap in caps {
        // A cap of 0 would hold messages forever: refused when caps are saved, ignored here.
        if cap.max == 0 || cap.channel.as_deref().is_some_and(|c| Some(c) != channel) {
            continue;
        }
        let period = cap.per.millis();
        let mut times: Vec<Millis> = sent
            .iter()
            .filter(|s| cap.channel.is_none() || s.channel.as_deref() == cap.channel.as_deref())
            .map(|s| s.at)
            .filter(|&at| at > t - period && at <= t)
            .collect();
        if times.len() >= cap.max as usize {
            times.sort_unstable_by(|a, b| b.cmp(a));
            // Once the max-th most recent send leaves the rolling window, there is room.
            let free = times[cap.max as usize - 1] + period;
            until = Some(until.map_or(free, |u: Millis| u.max(free)));
        }
    }
    until
}

/// The earliest moment at or after `t` a marketing message on `channel` may go out:
/// outside quiet hours, inside the send window, and under every frequency cap
/// (counting `sent`). With the first reason it had to wait, if it did.
pub fn next_allowed_send(
    t: Millis,
    tz: &TimeZone,
    quiet: Option<&QuietHours>,
    window: Option<&SendWindow>,
    caps: &[FrequencyCap],
    channel: Option<&str>,
    sent: &[SentMessage],
) -> (Millis, Option<DeferReason>) {
    let mut at = t;
    let mut reason = None;
    // Each rule only moves the moment later; a few rounds settle it (bounded anyway).
    for _ in 0..32 {
        let before = at;
        if let Some(u) = quiet.and_then(|q| quiet_until(at, tz, q)) {
            reason.get_or_insert(DeferReason::QuietHours);
            at = at.max(u);
        }
        if let Some(u) = window.and_then(|w| window_until(at, tz, w)) {
            reason.get_or_insert(DeferReason::SendWindow);
            at = at.max(u);
        }
        if let Some(u) = cap_until(at, caps, channel, sent) {
            reason.get_or_insert(DeferReason::FrequencyCap);
            at = at.max(u);
        }
        if at == before {
            break;
        }
    }
    (at, reason)
}

/// The calendar date a trait value names (`1990-03-20`, or the date part of an
/// ISO 8601 date-time as written).
fn trait_date(v: &serde_json::Value) -> Option<jiff::civil::Date> {
    v.as_str()?.get(..10)?.parse().ok()
}

/// The next moment at or after `now` a date trait fires: the trait's date moved by
/// `offset_days`, at `time` (midnight when `None`) in `tz`; with `every_year`, on the
/// next anniversary (29 February is the 28th in other years). `None` when the trait
/// is missing or not a date, or a one-off moment has passed.
pub fn next_date_trait(
    value: &serde_json::Value,
    offset_days: i32,
    every_year: bool,
    time: Option<&str>,
    now: Millis,
    tz: &TimeZone,
) -> Option<Millis> {
    let date = trait_date(value)?;
    let (h, m) = time.and_then(parse_time_of_day).unwrap_or((0, 0));
    let moment = |d: jiff::civil::Date| -> Option<Millis> {
        let fire = d.checked_add(jiff::Span::new().days(offset_days as i64)).ok()?;
        Some(
            fire.at(h, m, 0, 0)
                .to_zoned(tz.clone())
                .ok()?
                .timestamp()
                .as_millisecond(),
        )
    };
    if !every_year {
        return moment(date).filter(|&t| t >= now);
    }
    let this_year = zoned(now, tz)?.year();
    // An offset can move the moment across new year (3 January - 7 days), so look
    // at the anniversaries from last year to the year after next.
    (this_year - 1..=this_year + 2).find_map(|y| {
        let day = date.day().min(jiff::civil::date(y, date.month(), 1).days_in_month());
        moment(jiff::civil::Date::new(y, date.month(), day).ok()?).filter(|&t| t >= now)
    })
}
