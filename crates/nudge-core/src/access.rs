//! Who may do what: the roles of the people who sign in to the web UI.
//!
//! Programs authenticate with API keys (admin or write); people sign in as users, and a
//! user's role decides what the UI lets them do. The rule lives here, once, so the web
//! pages, the application layer and the CLI agree.

use serde::{Deserialize, Serialize};

/// A user's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including users and API keys.
    Owner,
    /// Contacts, segments, templates, journeys and campaigns; not keys or users.
    Marketer,
    /// Reads everything a marketer can, changes nothing.
    Analyst,
}

/// What an action needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Look at contacts, segments, templates, journeys, messages and reports.
    Read,
    /// Change marketing data: contacts, segments, templates, journeys, campaigns.
    Edit,
    /// Manage users, API keys, channels and workspace settings.
    Administer,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Owner, Role::Marketer, Role::Analyst];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Marketer => "marketer",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// Whether this role may do what `permission` covers.
    pub fn allows(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Edit => matches!(self, Role::Owner | Role::Marketer),
            Permission::Administer => self == Role::Owner,
        }
    }
}

/// The form in which an e-mail address names a user: trimmed and lower-cased, so
/// `Ana@Shop.example` and `ana@shop.example` are one account. `None` when it is not an
/// address (no `@` with text on both sides, spaces, or longer than 254 characters).
pub fn user_email(raw: &str) -> Option<String> {
    let email = raw.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let fine = !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    fine.then_some(email)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_allow_what_the_product_promises() {
        for role in Role::ALL {
            assert!(role.allows(Permission::Read));
        }
        assert!(Role::Owner.allows(Permission::Edit));
        assert!(Role::Marketer.allows(Permission::Edit));
        assert!(!Role::Analyst.allows(Permission::Edit));
        assert!(Role::Owner.allows(Permission::Administer));
        assert!(!Role::Marketer.allows(Permission::Administer));
        assert!(!Role::Analyst.allows(Permission::Administer));
    }

    #[test]
    fn roles_round_trip_their_names() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("Owner"), None);
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn user_emails_are_normalised_or_refused() {
        assert_eq!(user_email("  Ana@Shop.Example "), Some("ana@shop.example".into()));
        for bad in [
            "",
            "ana",
            "@shop.example",
            "ana@",
            "ana@shop",
            "a b@shop.example",
            "a@b@c.example",
            "ana@.example",
        ] {
            assert_eq!(user_email(bad), None, "{bad:?}");
        }
    }
}
