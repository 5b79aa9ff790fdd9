//! Event retention's setting and what it means for segments (docs/operations.md,
//! "Retention"). The API and the UI call these; the retention singleton
//! (`nudge_engine::RetentionEngine`) reads the setting at every pass, so a change made
//! through any node applies at the next pass of whichever node runs it.

use crate::{App, AppError, Result};
use nudge_core::retention::{self, RetentionWarning};
use nudge_core::segment::Condition;
use serde_json::Value;

impl App {
    /// How many days events are kept; `None`: every event is kept (the default).
    pub async fn events_retention_days(&self) -> Result<Option<u32>> {
        Ok(nudge_engine::retention_days(&*self.store).await?)
    }

    /// Sets how many days events are kept from `value`: a whole number of days from 1
    /// to 36,500, or `null` to keep every event; anything else is an error naming
    /// the field.
    pub async fn set_events_retention_days(&self, value: &Value) -> Result<Option<u32>> {
        let days = retention::parse_days(value).map_err(|m| AppError::invalid_field(retention::SETTING, m))?;
        let raw = days.map(|d| d.to_string());
        self.store.put_setting(retention::SETTING, raw.as_deref()).await?;
        Ok(days)
    }

    /// The conditions of a segment definition that read events older than the
    /// retention period (none when every event is kept): a segment saved with them
    /// changes meaning as retention removes events.
    pub async fn segment_retention_warnings(&self, definition: &Condition) -> Result<Vec<RetentionWarning>> {
        Ok(match self.events_retention_days().await? {
            Some(days) => retention::warnings(definition, days, self.clock.now()),
            None => Vec::new(),
        })
    }
}
