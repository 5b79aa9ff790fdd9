//! One module per area of the navigation bar.

pub mod contacts;
pub mod dashboard;
pub mod journeys;
pub mod messages;
pub mod templates;
pub mod users;
