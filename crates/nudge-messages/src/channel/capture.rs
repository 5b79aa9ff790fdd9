//! The capture channel: delivery is keeping the fully rendered message, readable
//! through the API (`GET /api/v1/messages/{id}`). The default in `nudge demo` and
//! when no SMTP server is configured, so messages are visible without one.

use super::*;

pub struct Capture {
    kind: &'static str,
}

impl Capture {
    pub fn new(kind: &'static str) -> Self {
        Capture { kind }
    }
}

#[async_trait]
impl Channel for Capture {
    fn kind(&self) -> &'static str {
        self.kind
    }
    fn transport(&self) -> &'static str {
        "capture"
    }
    async fn send(&self, _message: &Outgoing) -> Result<Option<String>, SendError> {
        Ok(None)
    }
    async fn health(&self) -> Result<(), String> {
        Ok(())
    }
    fn captures(&self) -> bool {
        true
    }
}
