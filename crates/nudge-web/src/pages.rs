//! One module per area of the navigation bar.

pub mod campaign_form;
pub mod campaigns;
pub mod channels;
pub mod contacts;
pub mod dashboard;
pub mod forms;
pub mod journeys;
pub mod messages;
pub mod public_forms;
pub mod reports;
pub mod scoring;
pub mod segment_builder;
pub mod segments;
pub mod settings;
pub mod templates;
pub mod users;
