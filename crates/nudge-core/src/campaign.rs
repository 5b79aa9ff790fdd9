//! Campaigns: one message sent to an audience, optionally as an A/B test.

pub mod stats;
