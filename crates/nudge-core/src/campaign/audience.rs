//! Who gets which variant, and when each message is due.
//!
//! A recipient's group is drawn from a hash of the campaign's and the contact's ids
//! into 10,000 buckets: the first `holdout` percent of the buckets are the holdout,
//! the next `test.share` percent the test (split evenly among the variants in bucket
//! order), the rest the remainder that waits for the winner. Without a test the
//! buckets past the holdout are split evenly among the variants. The same contact
//! always lands in the same group of the same campaign, so taking the snapshot again
//! after a crash assigns nobody differently.

use super::definition::{CampaignDefinition, Schedule};
use crate::Millis;
use crate::journey::{QuietHours, next_allowed_send, parse_time_of_day};
use crate::send_time::{BestTime, Estimate};
use jiff::tz::TimeZone;

const BUCKETS: u64 = 10_000;

/// A recipient's part in a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// Gets this variant (index into `variants`) from the start: the test share, or
    /// everyone when there is no test.
    Variant(u8),
    /// Gets the test's winner once it is chosen.
    Remainder,
    /// Gets nothing; measured for lift.
    Holdout,
}

/// SplitMix64's finaliser: a fast, well-mixed hash of two ids.
fn mix(campaign: i64, contact: i64) -> u64 {
    let mut z = (campaign as u64)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .wrapping_add(contact as u64)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The group of `contact` in campaign `campaign`.
pub fn assign(campaign: i64, contact: i64, def: &CampaignDefinition) -> Group {
    let bucket = mix(campaign, contact) % BUCKETS;
    let holdout = def.holdout.min(100) as u64 * BUCKETS / 100;
    if bucket < holdout {
        return Group::Holdout;
    }
    let k = def.variants.len().max(1) as u64;
    let rest = bucket - holdout;
    match &def.test {
        Some(t) => {
            let test = (t.share.min(100) as u64 * BUCKETS / 100).min(BUCKETS - holdout);
            if rest < test {
                Group::Variant((rest * k / test) as u8)
            } else {
                Group::Remainder
            }
        }
        None => Group::Variant((rest * k / (BUCKETS - holdout).max(1)) as u8),
    }
}

/// The zone whose clocks are furthest ahead (UTC+14, the Line Islands): a local time
/// is reached there first.
const EARLIEST_OFFSET_MS: Millis = 14 * 3_600_000;

/// The instant `date` `time` in `tz`; `None` for an invalid date or time.
fn local_instant(date: &str, time: &str, tz: &TimeZone) -> Option<Millis> {
    let d: jiff::civil::Date = date.parse().ok()?;
    let (h, m) = parse_time_of_day(time)?;
    Some(d.at(h, m, 0, 0).to_zoned(tz.clone()).ok()?.timestamp().as_millisecond())
}

impl Schedule {
    /// When sending starts, the campaign sent at `now`: now, the given instant, or
    /// the moment the local time is first reached anywhere (never before `now`).
    pub fn start(&self, now: Millis) -> Millis {
        match self {
            Schedule::Now => now,
            Schedule::At { at } => (*at).max(now),
            Schedule::LocalTime { date, time } => {
                local_instant(date, time, &TimeZone::UTC).map_or(now, |utc| (utc - EARLIEST_OFFSET_MS).max(now))
            }
        }
    }
}

/// When a recipient's message is due: the start (or, for a local-time schedule, the
/// local time in the recipient's zone `tz`, never before the start) plus the
/// variant's `delay`.
pub fn due_at(schedule: &Schedule, start: Millis, tz: &TimeZone, delay: Millis) -> Millis {
    let base = match schedule {
        Schedule::Now | Schedule::At { .. } => start,
        Schedule::LocalTime { date, time } => local_instant(date, time, tz).map_or(start, |t| t.max(start)),
    };
    base.saturating_add(delay.max(0))
}

/// A recipient's message moved from `due` to their best time within the campaign's
/// `best_time` horizon (`crate::send_time`), among the moments quiet hours allow in
/// their zone `tz`; `due` when no slot is allowed.
pub fn best_due(
    due: Millis,
    best: &BestTime,
    estimate: &Estimate,
    tz: &TimeZone,
    quiet: Option<&QuietHours>,
) -> Millis {
    let allowed = |t: Millis| next_allowed_send(t, tz, quiet, None, &[], None, &[]).0;
    estimate.choose(due, best.horizon(), allowed).map_or(due, |c| c.at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::parse_campaign;
    use serde_json::json;
    use std::collections::HashMap;

    fn def(v: serde_json::Value) -> CampaignDefinition {
        parse_campaign(&v).unwrap()
    }

    fn counts(d: &CampaignDefinition, n: i64) -> HashMap<Group, usize> {
        let mut out = HashMap::new();
        for c in 1..=n {
            *out.entry(assign(42, c, d)).or_default() += 1;
        }
        out
    }

    #[test]
    fn one_variant_goes_to_everyone_but_the_holdout() {
        let d = def(json!({"audience": {"segments": [1]}, "variants": [{"name": "A", "template": 1}], "holdout": 10}));
        let c = counts(&d, 100_000);
        assert_eq!(c.len(), 2);
        let held = c[&Group::Holdout] as f64 / 100_000.0;
        assert!((held - 0.10).abs() < 0.005, "holdout share {held}");
    }

    #[test]
    fn a_test_splits_its_share_evenly_and_leaves_the_rest_for_the_winner() {
        let d = def(json!({
            "audience": {"segments": [1]},
            "variants": [{"name": "A", "template": 1}, {"name": "B", "template": 2}, {"name": "C", "template": 3}],
            "test": {"share": 30, "metric": "open_rate", "duration": 1000},
            "holdout": 5
        }));
        let n = 200_000;
        let c = counts(&d, n);
        let share = |g: Group| c.get(&g).copied().unwrap_or(0) as f64 / n as f64;
        for v in 0..3 {
            assert!(
                (share(Group::Variant(v)) - 0.10).abs() < 0.005,
                "variant {v}: {}",
                share(Group::Variant(v))
            );
        }
        assert!((share(Group::Holdout) - 0.05).abs() < 0.005);
        assert!((share(Group::Remainder) - 0.65).abs() < 0.005);
    }

    #[test]
    fn without_a_test_variants_split_everyone() {
        let d = def(json!({"audience": {"segments": [1]},
            "variants": [{"name": "A", "template": 1}, {"name": "B", "template": 2}]}));
        let c = counts(&d, 100_000);
        assert_eq!(c.get(&Group::Remainder), None);
        let a = c[&Group::Variant(0)] as f64 / 100_000.0;
        assert!((a - 0.5).abs() < 0.01);
    }

    #[test]
    fn a_full_test_share_leaves_no_remainder() {
        let d = def(json!({"audience": {"segments": [1]},
            "variants": [{"name": "A", "template": 1}, {"name": "B", "template": 2}],
            "test": {"share": 100, "metric": "click_rate", "duration": 1000}}));
        let c = counts(&d, 10_000);
        assert_eq!(c.get(&Group::Remainder), None);
        assert_eq!(c.get(&Group::Holdout), None);
    }

    #[test]
    fn assignment_is_stable_and_differs_between_campaigns() {
        let d = def(json!({"audience": {"segments": [1]},
            "variants": [{"name": "A", "template": 1}, {"name": "B", "template": 2}]}));
        let same = (1..1000).filter(|&c| assign(1, c, &d) == assign(1, c, &d)).count();
        assert_eq!(same, 999);
        let differ = (1..1000).filter(|&c| assign(1, c, &d) != assign(2, c, &d)).count();
        assert!(differ > 300, "campaigns draw independently: {differ}");
    }

    #[test]
    fn local_time_starts_where_it_is_reached_first() {
        let s = Schedule::LocalTime {
            date: "2026-12-24".into(),
            time: "09:00".into(),
        };
        let utc_nine = 1_798_102_800_000;
        let start = s.start(0);
        assert_eq!(start, utc_nine - 14 * 3_600_000, "UTC+14 reaches 09:00 first");
        let tehran = TimeZone::get("Asia/Tehran").unwrap();
        assert_eq!(due_at(&s, start, &tehran, 0), utc_nine - 3 * 3_600_000 - 1_800_000);
        let la = TimeZone::get("America/Los_Angeles").unwrap();
        assert_eq!(due_at(&s, start, &la, 60_000), utc_nine + 8 * 3_600_000 + 60_000);
        // Sent after the moment passed somewhere: those contacts are due at once.
        let late = utc_nine + 3_600_000;
        assert_eq!(s.start(late), late);
        assert_eq!(due_at(&s, late, &tehran, 0), late);
    }

    #[test]
    fn now_and_at_start_as_said() {
        assert_eq!(Schedule::Now.start(5), 5);
        assert_eq!(Schedule::At { at: 100 }.start(5), 100);
        assert_eq!(Schedule::At { at: 1 }.start(5), 5, "a past instant means now");
        assert_eq!(due_at(&Schedule::At { at: 100 }, 100, &TimeZone::UTC, 10), 110);
    }

    #[test]
    fn a_best_time_moves_each_recipient_to_their_hour_within_the_window() {
        use crate::send_time::{Engagement, Profile, estimate};
        let due = crate::parse_instant("2027-03-16T08:00:00Z").unwrap();
        let mut evening = Profile::default();
        for d in 1..=6 {
            evening.observe(Engagement::EmailClick, due - d * 86_400_000 + 12 * 3_600_000 + 60_000);
        }
        let e = estimate(&evening, &Profile::default(), due);
        let best = BestTime { within_hours: 24 };
        let at = |s: &str| crate::parse_instant(s).unwrap();
        assert_eq!(
            best_due(due, &best, &e, &TimeZone::UTC, None),
            at("2027-03-16T20:00:00Z")
        );
        // Quiet from 21:00 in Berlin (20:00 UTC): the slot before.
        let quiet = QuietHours {
            start: "21:00".into(),
            end: "07:00".into(),
        };
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        assert_eq!(
            best_due(due, &best, &e, &berlin, Some(&quiet)),
            at("2027-03-16T19:00:00Z")
        );
        // Nothing known: at once.
        let none = estimate(&Profile::default(), &Profile::default(), due);
        assert_eq!(best_due(due, &best, &none, &TimeZone::UTC, None), due);
    }
}
