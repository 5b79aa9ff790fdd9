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

pub use audience::{Group, assign, due_at};
pub use definition::{
    Audience, CampaignDefinition, CampaignError, CampaignTest, Schedule, Variant, parse_campaign, parse_schedule,
};
pub use lifecycle::{CampaignStatus, Command, LifecycleError, Progress, Throttle};
