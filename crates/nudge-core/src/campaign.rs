//! Campaigns: one send of a template, or of 2–8 variants, to an audience of segments.
//!
//! - [`definition`]: what a campaign is (audience, variants, test, holdout, quiet
//!   hours, cap deferral) and its validation with the path of every problem;
//! - [`audience`]: who gets which variant (a hash of campaign and contact, so a
//!   recipient's group never changes across restarts) and when each message is due
//!   (now, at a time, at a local time in each contact's zone, plus a variant's delay);
//! - [`lifecycle`]: the campaign's status and the moves between them (send, pause,
//!   resume, cancel; snapshot done, test ended, all queued), and the throttle;
//! - [`stats`]: how an A/B test's winner is chosen (rates with intervals, the
//!   probability to be best, significance tests), checked against scipy.
//!
//! Pure, like the rest of this crate: callers pass the time and the time zones in.

pub mod audience;
pub mod definition;
pub mod lifecycle;
pub mod stats;

pub use audience::{Group, assign, best_due, due_at};
pub use definition::{
    Audience, CampaignDefinition, CampaignError, CampaignTest, Schedule, Variant, parse_campaign, parse_schedule,
};
pub use lifecycle::{CampaignStatus, Command, LifecycleError, Progress, Throttle};

/// A variant's results for a test metric, from its counters (`count` gives a
/// [`CampaignCounter`]'s value): unique opens, unique clicks or converted recipients
/// out of the messages queued, or the attributed revenue with its squares per
/// recipient. The one rule the engine decides by and the report shows.
pub fn arm(metric: stats::WinnerMetric, count: impl Fn(crate::protocol::CampaignCounter) -> f64) -> stats::Arm {
    use crate::protocol::CampaignCounter as C;
    let n = count(C::Recipients).max(0.0).round() as u64;
    let part = |c| (count(c).max(0.0).round() as u64).min(n);
    match metric {
        stats::WinnerMetric::OpenRate => stats::Arm::proportion(n, part(C::UniqueOpened)),
        stats::WinnerMetric::ClickRate => stats::Arm::proportion(n, part(C::UniqueClicked)),
        stats::WinnerMetric::ConversionRate => stats::Arm::proportion(n, part(C::Converted)),
        stats::WinnerMetric::RevenuePerRecipient => stats::Arm::revenue(n, count(C::Revenue), count(C::RevenueSquares)),
    }
}
