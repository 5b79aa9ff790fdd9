//! Operations in the admin API: `GET /api/v1/ops/leases`, who holds each singleton
//! lease (the use case is `nudge_app::nodes`; docs/operations.md, "Roles").

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use nudge_core::format_millis;
use serde_json::{Value, json};

/// What the process knows of itself: its node id, its roles and the singleton
/// leases it keeps.
#[derive(Clone)]
pub struct Node {
    pub id: String,
    pub roles: nudge_app::nodes::Roles,
    pub singletons: Vec<std::sync::Arc<nudge_engine::Singleton>>,
}

impl Default for Node {
    /// A process of its own with every role and no singleton kept (tests).
    fn default() -> Self {
        Self {
            id: String::new(),
            roles: nudge_app::nodes::Roles::all(),
            singletons: Vec::new(),
        }
    }
}

/// `GET /api/v1/ops/leases`.
pub async fn leases(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let leases = state.app().leases().await?;
    let node = &state.node;
    Ok(Json(json!({
        "node": node.id,
        "roles": node.roles.list(),
        "leases": leases.iter().map(|l| json!({
            "name": l.name,
            "holder": l.holder,
            "acquired_at": format_millis(l.acquired_at),
            "expires_at": format_millis(l.expires_at),
            "expired": l.expired,
            "held_here": l.holder == node.id && !l.expired,
        })).collect::<Vec<_>>(),
    })))
}
