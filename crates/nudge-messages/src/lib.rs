//! Messages: what Nudge sends and how.
//!
//! - [`template`]: template content per channel, Liquid + MJML, compiled once per
//!   version and rendered per contact (pure).
//!
//! Journeys and campaigns only ever ask "send template T to contact C on channel X
//! with idempotency key K"; everything after that lives here.

pub mod channel;
pub mod consent;
pub mod delivery;
pub mod links;
pub mod ready_made;
pub mod template;
