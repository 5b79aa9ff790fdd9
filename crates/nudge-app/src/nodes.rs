//! Nodes (docs/operations.md, "Roles"): which parts of Nudge a `nudge serve` process
//! runs ([`Role`], [`Roles`]), the id it holds singleton leases under
//! ([`node_id`]), and who holds them ([`App::leases`]).

use crate::{App, Result};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A part of Nudge a node runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The admin API (`/api/v1`) and the web UI: what marketers and scripts use.
    Api,
    /// What the public calls: Segment's tracking API (`/v1/*`), the browser library
    /// and its endpoints, push subscriptions, hosted forms (`/f/*`), tracking pixels
    /// and clicks (`/t/*`), unsubscribe and preference pages (`/u`, `/p`), double
    /// opt-in confirmations, and providers' delivery receipts (`/hooks/*`).
    Ingest,
    /// The engines: segments (and lead-score decay), journeys, campaigns,
    /// predictions, send time, recommendations.
    Engine,
    /// The delivery worker: the outbox to the channels.
    Delivery,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Api, Role::Ingest, Role::Engine, Role::Delivery];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Ingest => "ingest",
            Role::Engine => "engine",
            Role::Delivery => "delivery",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s.trim())
            .ok_or_else(|| format!("unknown role {s:?}: the roles are api, ingest, engine and delivery"))
    }
}

/// The roles of a node: a set, every role by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Roles {
    api: bool,
    ingest: bool,
    engine: bool,
    delivery: bool,
}

impl Default for Roles {
    fn default() -> Self {
        Self::all()
    }
}

impl Roles {
    pub fn all() -> Self {
        Self::of(Role::ALL)
    }

    /// The roles named (repeats count once); an empty list is no role.
    pub fn of(roles: impl IntoIterator<Item = Role>) -> Self {
        let mut r = Roles {
            api: false,
            ingest: false,
            engine: false,
            delivery: false,
        };
        for role in roles {
            match role {
                Role::Api => r.api = true,
                Role::Ingest => r.ingest = true,
                Role::Engine => r.engine = true,
                Role::Delivery => r.delivery = true,
            }
        }
        r
    }

    /// A comma-separated list (`api,ingest`): every name must be a role, and at
    /// least one must be given.
    pub fn parse(list: &str) -> std::result::Result<Self, String> {
        let roles = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Role::from_str)
            .collect::<std::result::Result<Vec<_>, _>>()?;
        if roles.is_empty() {
            return Err("no role given: name at least one of api, ingest, engine and delivery".into());
        }
        Ok(Self::of(roles))
    }

    pub fn has(&self, role: Role) -> bool {
        match role {
            Role::Api => self.api,
            Role::Ingest => self.ingest,
            Role::Engine => self.engine,
            Role::Delivery => self.delivery,
        }
    }

    pub fn is_all(&self) -> bool {
        *self == Self::all()
    }

    /// The roles, in the order of [`Role::ALL`].
    pub fn list(&self) -> Vec<Role> {
        Role::ALL.into_iter().filter(|r| self.has(*r)).collect()
    }
}

impl fmt::Display for Roles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.list().into_iter().map(Role::as_str).collect();
        f.write_str(&names.join(","))
    }
}

/// A node id for this process: `host:pid:random` (the random part tells a
/// restarted process that got the same pid from its predecessor).
pub fn node_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}:{:08x}", std::process::id(), rand::random::<u32>())
}

/// A singleton lease as the operations API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeaseView {
    pub name: String,
    pub holder: String,
    /// Since when the holder has held it (ms).
    pub acquired_at: nudge_core::Millis,
    pub expires_at: nudge_core::Millis,
    /// Whether it has expired (its holder stopped renewing it): the next attempt of
    /// any node takes it.
    pub expired: bool,
}

impl App {
    /// Every singleton lease with its holder, as of now.
    pub async fn leases(&self) -> Result<Vec<LeaseView>> {
        let now = self.clock.now();
        Ok(self
            .store
            .leases()
            .await?
            .into_iter()
            .map(|l| LeaseView {
                expired: l.expires_at <= now,
                name: l.name,
                holder: l.holder,
                acquired_at: l.acquired_at,
                expires_at: l.expires_at,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_from_a_list_and_name_what_is_wrong() {
        assert_eq!(Roles::parse("api,ingest").unwrap().to_string(), "api,ingest");
        assert_eq!(
            Roles::parse("delivery, engine,engine").unwrap().list(),
            vec![Role::Engine, Role::Delivery]
        );
        assert!(Roles::parse("api,ingest,engine,delivery").unwrap().is_all());
        let e = Roles::parse("api,worker").unwrap_err();
        assert!(
            e.contains("\"worker\"") && e.contains("api, ingest, engine and delivery"),
            "{e}"
        );
        assert!(Roles::parse(" , ").unwrap_err().contains("no role"));
        let id = node_id();
        assert_eq!(id.split(':').count(), 3, "{id}");
        assert_ne!(node_id(), id);
    }
}
