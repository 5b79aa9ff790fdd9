//! Conversions and last-touch attribution.
//!
//! A conversion is a `track` event whose name the workspace counts as one (default
//! `Order Completed`); its revenue is the event's `revenue` property, else `total`,
//! else `value` ([`crate::journey::revenue_of`]). It is attributed to the last
//! message that touched the contact before it, across campaigns and journeys alike:
//! a message touches the contact when it is opened or clicked (its first open and
//! first click count) within the engagement window before the conversion (default 5
//! days), or when it was sent within the delivery window (default 1 day). The touch
//! with the latest time wins; a journey's message and a campaign's compete on the
//! same terms, so when both touched the contact the more recent touch takes the
//! conversion (and its revenue) whole. A conversion no message touched is recorded
//! unattributed.

use crate::Millis;
use crate::journey::Duration;
use crate::segment::DAY_MS;
use serde::{Deserialize, Serialize};

/// The workspace's conversion settings (setting `conversion_settings`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversionSettings {
    /// The event names that are conversions.
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// How long after an open or a click a conversion is attributed to the message.
    #[serde(default = "five_days")]
    pub engaged_window: Duration,
    /// How long after it was sent a conversion is attributed to an unopened message.
    #[serde(default = "one_day")]
    pub delivered_window: Duration,
}

fn default_events() -> Vec<String> {
    vec!["Order Completed".to_string()]
}

fn five_days() -> Duration {
    Duration::Millis(5 * DAY_MS)
}

fn one_day() -> Duration {
    Duration::Millis(DAY_MS)
}

impl Default for ConversionSettings {
    fn default() -> Self {
        ConversionSettings {
            events: default_events(),
            engaged_window: five_days(),
            delivered_window: one_day(),
        }
    }
}

impl ConversionSettings {
    /// The setting's key.
    pub const KEY: &'static str = "conversion_settings";

    pub fn is_conversion(&self, name: &str) -> bool {
        self.events.iter().any(|e| e == name)
    }

    /// What is wrong with the settings, if anything.
    pub fn problems(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        if self.events.is_empty() || self.events.iter().any(|e| e.trim().is_empty()) {
            out.push(("events".into(), "name at least one event, none empty".into()));
        }
        for (field, d) in [
            ("engaged_window", &self.engaged_window),
            ("delivered_window", &self.delivered_window),
        ] {
            if !(0..=90 * DAY_MS).contains(&d.as_millis()) {
                out.push((field.into(), "must be between 0 and 90 days".into()));
            }
        }
        out
    }
}

/// A message that may have touched the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Touch {
    pub message_id: i64,
    pub sent_at: Option<Millis>,
    pub first_opened_at: Option<Millis>,
    pub first_clicked_at: Option<Millis>,
}

/// How a message touched the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TouchKind {
    Clicked,
    Opened,
    Delivered,
}

/// The message a conversion at `at` is attributed to: the latest touch within its
/// window (ties: the later message), with its time and kind.
pub fn last_touch(at: Millis, touches: &[Touch], settings: &ConversionSettings) -> Option<(i64, Millis, TouchKind)> {
    let engaged = settings.engaged_window.as_millis();
    let delivered = settings.delivered_window.as_millis();
    let within = |t: Option<Millis>, window: Millis| t.filter(|&t| t <= at && at - t <= window);
    touches
        .iter()
        .filter_map(|m| {
            let candidates = [
                within(m.first_clicked_at, engaged).map(|t| (t, TouchKind::Clicked)),
                within(m.first_opened_at, engaged).map(|t| (t, TouchKind::Opened)),
                within(m.sent_at, delivered).map(|t| (t, TouchKind::Delivered)),
            ];
            candidates
                .into_iter()
                .flatten()
                .max_by_key(|(t, _)| *t)
                .map(|(t, kind)| (m.message_id, t, kind))
        })
        .max_by_key(|(id, t, _)| (*t, *id))
}

/// Whether a held-out recipient's conversion at `at` counts toward the holdout of a
/// campaign that started sending at `started_at`: held-out contacts get no message,
/// so their conversions are followed for the longest attribution window after the
/// start, the longest a sent message's conversion could be attributed to it. The
/// holdout's conversion rate is the baseline of the lift over the holdout.
pub fn counts_for_holdout(at: Millis, started_at: Millis, settings: &ConversionSettings) -> bool {
    let window = settings
        .engaged_window
        .as_millis()
        .max(settings.delivered_window.as_millis());
    at >= started_at && at - started_at <= window
}

/// What a conversion adds to a recipient's revenue squared, for the variance of
/// revenue per recipient: `(before + revenue)² − before²`.
pub fn revenue_square_delta(before: f64, revenue: f64) -> f64 {
    (before + revenue) * (before + revenue) - before * before
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_holdout_counts_conversions_within_the_longest_window_after_the_start() {
        let s = ConversionSettings::default();
        let start = 1_000_000;
        assert!(counts_for_holdout(start, start, &s));
        assert!(
            counts_for_holdout(start + 5 * DAY_MS, start, &s),
            "the engaged window, 5 days"
        );
        assert!(!counts_for_holdout(start + 5 * DAY_MS + 1, start, &s));
        assert!(!counts_for_holdout(start - 1, start, &s), "before the campaign");
        let long_delivery = ConversionSettings {
            delivered_window: Duration::Millis(7 * DAY_MS),
            ..ConversionSettings::default()
        };
        assert!(counts_for_holdout(start + 6 * DAY_MS, start, &long_delivery));
    }

    use super::*;

    const H: Millis = 3_600_000;

    fn touch(id: i64, sent: Option<Millis>, opened: Option<Millis>, clicked: Option<Millis>) -> Touch {
        Touch {
            message_id: id,
            sent_at: sent,
            first_opened_at: opened,
            first_clicked_at: clicked,
        }
    }

    #[test]
    fn the_latest_touch_within_its_window_wins() {
        let s = ConversionSettings::default();
        let at = 100 * DAY_MS;
        // 1: clicked 2 days ago; 2: sent 3 hours ago, never opened; 3: opened 6 days ago.
        let touches = [
            touch(1, Some(at - 3 * DAY_MS), None, Some(at - 2 * DAY_MS)),
            touch(2, Some(at - 3 * H), None, None),
            touch(3, Some(at - 7 * DAY_MS), Some(at - 6 * DAY_MS), None),
        ];
        assert_eq!(
            last_touch(at, &touches, &s),
            Some((2, at - 3 * H, TouchKind::Delivered))
        );
        // Without the recent send, the click two days ago.
        assert_eq!(
            last_touch(at, &touches[..1], &s),
            Some((1, at - 2 * DAY_MS, TouchKind::Clicked))
        );
        // An open past the 5-day window and a send past the 1-day window touch nothing.
        assert_eq!(last_touch(at, &touches[2..], &s), None);
    }

    #[test]
    fn a_touch_after_the_conversion_does_not_count() {
        let s = ConversionSettings::default();
        let touches = [touch(1, Some(10 * H), Some(11 * H), Some(12 * H))];
        assert_eq!(last_touch(9 * H, &touches, &s), None);
        assert_eq!(last_touch(11 * H, &touches, &s), Some((1, 11 * H, TouchKind::Opened)));
        assert_eq!(last_touch(13 * H, &touches, &s), Some((1, 12 * H, TouchKind::Clicked)));
    }

    #[test]
    fn a_journey_message_and_a_campaign_message_compete_on_time_alone() {
        let s = ConversionSettings::default();
        // Same touch time: the later message takes it.
        let touches = [touch(7, Some(H), None, None), touch(9, Some(H), None, None)];
        assert_eq!(last_touch(2 * H, &touches, &s).map(|t| t.0), Some(9));
    }

    #[test]
    fn settings_read_with_defaults_and_explain_problems() {
        let s: ConversionSettings = serde_json::from_str("{}").unwrap();
        assert_eq!(s, ConversionSettings::default());
        assert!(s.is_conversion("Order Completed"));
        let s: ConversionSettings =
            serde_json::from_str(r#"{"events": ["Signed Up", "Order Completed"], "engaged_window": {"days": 3}}"#)
                .unwrap();
        assert_eq!(s.engaged_window.as_millis(), 3 * DAY_MS);
        assert!(s.problems().is_empty());
        let bad: ConversionSettings =
            serde_json::from_str(r#"{"events": [""], "delivered_window": {"days": 100}}"#).unwrap();
        let fields: Vec<String> = bad.problems().into_iter().map(|p| p.0).collect();
        assert_eq!(fields, vec!["events", "delivered_window"]);
        assert!(serde_json::from_str::<ConversionSettings>(r#"{"window": 1}"#).is_err());
    }

    #[test]
    fn revenue_squares_add_up_per_recipient() {
        // Two orders of 10 and 5 by one recipient: 15² in all.
        let a = revenue_square_delta(0.0, 10.0);
        let b = revenue_square_delta(10.0, 5.0);
        assert_eq!(a + b, 225.0);
    }
}
