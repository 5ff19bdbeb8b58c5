//! The one error type every connector and store returns.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// A specialised `Result` for Patchbay operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in terms a host can map to an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// Connection settings are missing or malformed (a form field, a site name).
    InvalidConfig,
    /// Query parameters or a request body are malformed.
    InvalidInput,
    /// The provider rejected the credentials.
    AuthFailed,
    /// The credentials work but lack a permission or scope.
    PermissionDenied,
    /// The thing asked for does not exist (or is not visible to the caller).
    NotFound,
    /// The provider asked us to slow down.
    RateLimited,
    /// The provider or a dependency (credential store, database) cannot be reached.
    Unavailable,
    /// The connector does not offer this hook or operation.
    Unsupported,
    /// The connection must be re-authorised by a person.
    NeedsReauth,
    /// The request clashes with the current state: a value changed since it was
    /// read, or something is already taken by someone else.
    Conflict,
    /// A bug or an unexpected provider answer.
    Internal,
}

impl ErrorKind {
    /// Every kind, so a client can read the names of JSON bodies back.
    pub const ALL: [ErrorKind; 11] = [
        Self::InvalidConfig,
        Self::InvalidInput,
        Self::AuthFailed,
        Self::PermissionDenied,
        Self::NotFound,
        Self::RateLimited,
        Self::Unavailable,
        Self::Unsupported,
        Self::NeedsReauth,
        Self::Conflict,
        Self::Internal,
    ];

    /// The kind whose [`ErrorKind::as_str`] is `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == name)
    }

    /// The snake_case name used in JSON bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidConfig => "invalid_config",
            Self::InvalidInput => "invalid_input",
            Self::AuthFailed => "auth_failed",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Unsupported => "unsupported",
            Self::NeedsReauth => "needs_reauth",
            Self::Conflict => "conflict",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a kind, a message for people, and optional context.
///
/// Messages must never contain secret values; connectors build them from
/// provider error text with credentials removed.
///
/// The fields live behind one box so `Result<T, Error>` stays small on the happy path.
#[derive(Debug)]
pub struct Error(Box<Inner>);

#[derive(Debug)]
struct Inner {
    kind: ErrorKind,
    message: String,
    connector: Option<String>,
    field: Option<String>,
    hint: Option<String>,
    retry_after: Option<Duration>,
    provider_status: Option<u16>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message for people.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            message: message.into(),
            connector: None,
            field: None,
            hint: None,
            retry_after: None,
            provider_status: None,
            source: None,
        }))
    }

    /// Shorthand for [`ErrorKind::InvalidConfig`] naming the offending field.
    pub fn invalid_config(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidConfig, message).with_field(field)
    }

    /// Shorthand for [`ErrorKind::InvalidInput`] naming the offending field.
    pub fn invalid_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message).with_field(field)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Shorthand for [`ErrorKind::Unavailable`].
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::Unsupported`].
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unsupported, message)
    }

    /// Names the connector the error came from.
    pub fn with_connector(mut self, connector: impl Into<String>) -> Self {
        self.0.connector = Some(connector.into());
        self
    }

    /// Names the input field at fault.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.0.field = Some(field.into());
        self
    }

    /// Adds a hint telling the user how to fix the problem.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    /// Records how long the provider asked us to wait.
    pub fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.0.retry_after = Some(retry_after);
        self
    }

    /// Records the provider's HTTP status.
    pub fn with_provider_status(mut self, status: u16) -> Self {
        self.0.provider_status = Some(status);
        self
    }

    /// Attaches an underlying cause (never one that prints a secret).
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.0.source = Some(Box::new(source));
        self
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The message for people.
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The connector the error came from, if known.
    pub fn connector(&self) -> Option<&str> {
        self.0.connector.as_deref()
    }

    /// The input field at fault, if any.
    pub fn field(&self) -> Option<&str> {
        self.0.field.as_deref()
    }

    /// How to fix it, if known.
    pub fn hint(&self) -> Option<&str> {
        self.0.hint.as_deref()
    }

    /// How long to wait before retrying, for [`ErrorKind::RateLimited`].
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// The provider's HTTP status, if the error came from a provider answer.
    pub fn provider_status(&self) -> Option<u16> {
        self.0.provider_status
    }
}

impl fmt::Display for Error {
    // The connector is context (see `connector()`), not part of the sentence:
    // provider messages already name their source.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.message)?;
        if let Some(field) = &self.0.field {
            write!(f, " (field `{field}`)")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0
            .source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(error: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidInput, format!("invalid JSON: {error}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_read_back_from_its_json_name() {
        for kind in ErrorKind::ALL {
            let name = serde_json::to_value(kind).unwrap();
            assert_eq!(name, kind.as_str());
            assert_eq!(ErrorKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(ErrorKind::from_name("teapot"), None);
    }

    #[test]
    fn display_names_the_field_and_keeps_the_connector_as_context() {
        let error = Error::invalid_config("site", "unknown Datadog site `mars`")
            .with_connector("datadog")
            .with_hint("use one of datadoghq.com, us3.datadoghq.com");
        assert_eq!(
            error.to_string(),
            "unknown Datadog site `mars` (field `site`)"
        );
        assert_eq!(error.connector(), Some("datadog"));
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.kind().as_str(), "invalid_config");
    }
}
