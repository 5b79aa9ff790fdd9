//! Send-time optimisation's use case (docs/send-time.md): what a contact's profile
//! says — the best hours, how sure the estimate is — as of now, blended with the
//! workspace's by `nudge_core::send_time::summarise`.

use crate::{App, AppError, Result};
use nudge_core::ContactId;
use nudge_core::send_time::{Summary, summarise};

impl App {
    /// A contact's send-time summary (`NotFound` if there is no such contact). A
    /// contact without engagements gets the workspace's profile, at confidence 0.
    pub async fn contact_send_time(&self, contact: ContactId) -> Result<Summary> {
        if self.store.contact(contact).await?.is_none() {
            return Err(AppError::NotFound {
                field: Some("id".into()),
                message: format!("no contact {contact}"),
            });
        }
        let profile = self.store.contact_send_time(contact).await?.unwrap_or_default();
        let workspace = self.store.send_time_state().await?.workspace;
        Ok(summarise(&profile, &workspace, self.clock.now()))
    }
}
