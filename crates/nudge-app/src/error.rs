//! The one error type of the use cases. Each variant says what kind of failure it is;
//! the HTTP API maps them to its error table (`nudge-api/src/error.rs`), the CLI
//! prints them.

/// Why a use case failed. `field` names the input at fault, in the caller's terms
/// (`to.email`, `message_id`, `csv`), when one is.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A required input is absent.
    #[error("{message}")]
    MissingField { field: String, message: String },
    /// An input has an invalid value.
    #[error("{message}")]
    InvalidField { field: String, message: String },
    /// A query, path parameter or CSV row is invalid.
    #[error("{message}")]
    InvalidRequest { field: Option<String>, message: String },
    /// The key is unknown, revoked or of the wrong kind.
    #[error("{0}")]
    Unauthorized(String),
    /// No such object.
    #[error("{message}")]
    NotFound { field: Option<String>, message: String },
    /// Too many failed sign-ins for this account or address; try again later.
    #[error("too many failed sign-ins; try again in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The signed-in user's role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// The change conflicts with what is stored, or cannot be made in this process.
    #[error("{0}")]
    Conflict(String),
    /// Too little data for what was asked (a model fitted on too few customers).
    #[error("{0}")]
    NotEnoughData(String),
    /// No channel of this kind (or no messaging at all) on this server.
    #[error("{0}")]
    ChannelNotConfigured(String),
    /// A definition with problems, every one with its field (`definition.variants[1].
    /// template`). `stored`: the definition was saved earlier and what it names has
    /// changed since (a template deleted): the request itself is fine and what is
    /// stored refuses it, a conflict rather than a bad request.
    #[error("{}", problems_summary(.problems))]
    InvalidDefinition { problems: Vec<FieldProblem>, stored: bool },
    #[error(transparent)]
    Store(#[from] nudge_store::StoreError),
    /// A bug or an inconsistency; details for the log.
    #[error("{0}")]
    Internal(String),
}

/// One problem of a definition: the field at fault in the caller's terms and what is
/// wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// "`first field`: its message (n problems in the definition)".
pub fn problems_summary(problems: &[FieldProblem]) -> String {
    let n = problems.len();
    match problems.first() {
        None => "the definition has problems".into(),
        Some(p) => format!(
            "{}: {} ({n} problem{} in the definition)",
            p.field,
            p.message,
            if n == 1 { "" } else { "s" }
        ),
    }
}

pub type Result<T, E = AppError> = std::result::Result<T, E>;

impl AppError {
    pub fn missing(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::MissingField {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn invalid_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidRequest {
            field: Some(field.into()),
            message: message.into(),
        }
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            field: None,
            message: message.into(),
        }
    }
    pub fn not_found_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::NotFound {
            field: Some(field.into()),
            message: message.into(),
        }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}
