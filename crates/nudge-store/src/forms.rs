//! Forms, their landing pages and submissions: the types of [`crate::FormStore`].

use nudge_core::form::FormDefinition;
use nudge_core::{ContactId, Millis};
use serde_json::{Map, Value};

/// A stored form.
#[derive(Debug, Clone, PartialEq)]
pub struct Form {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub definition: FormDefinition,
    /// Landing-page and embed views counted.
    pub views: u64,
    /// Submissions accepted.
    pub submissions: u64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A form as created or replaced.
#[derive(Debug, Clone, PartialEq)]
pub struct NewForm {
    pub name: String,
    pub slug: String,
    pub definition: FormDefinition,
}

/// The confirmation message of a double opt-in, as the application layer resolved it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfirmWith {
    pub template_id: i64,
    pub template_version: i64,
    pub channel: String,
}

/// An accepted submission to store (values already checked by
/// `nudge_core::form::accept`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewSubmission {
    pub form_id: i64,
    /// The submitted email address, normalised.
    pub email: String,
    /// The browser's anonymous id, when the page knew one.
    pub anonymous_id: Option<String>,
    /// Traits to set, the email among them.
    pub traits: Map<String, Value>,
    /// Subscriptions consented to.
    pub consents: Vec<String>,
    /// The values by field name (the event's and the report's).
    pub answers: Map<String, Value>,
    /// `page` (the hosted page), `embed` or `api`.
    pub source: String,
    /// With double opt-in: what to send the consents' confirmation with.
    pub confirm: Option<ConfirmWith>,
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq)]
pub struct FormSubmission {
    pub id: i64,
    pub form_id: i64,
    pub contact_id: ContactId,
    pub email: String,
    pub answers: Map<String, Value>,
    pub consents: Vec<String>,
    pub source: String,
    pub submitted_at: Millis,
}

/// What storing a submission did.
#[derive(Debug, Clone, PartialEq)]
pub struct Submitted {
    pub submission: FormSubmission,
    /// Whether the submission created the contact.
    pub created_contact: bool,
    /// The consents now waiting for confirmation, and the confirmation messages
    /// queued for them (ids).
    pub pending: Vec<String>,
    pub confirmations: Vec<i64>,
}
