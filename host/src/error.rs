//! Mapping errors to HTTP answers: `{ "error": { "kind", "message", "connector", "hint" } }`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use patchbay_core::{Error, ErrorKind, ValidationReport};
use serde::Serialize;

/// An error answer of the JSON API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: Error,
    report: Option<ValidationReport>,
}

impl ApiError {
    /// An answer with an explicit status.
    pub fn new(status: StatusCode, error: Error) -> Self {
        Self {
            status,
            error,
            report: None,
        }
    }

    /// Attaches a validation report to the body.
    pub fn with_report(mut self, report: ValidationReport) -> Self {
        self.report = Some(report);
        self
    }

    /// 401 for a caller that did not authenticate.
    pub fn unauthenticated(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            Error::new(ErrorKind::AuthFailed, message).with_hint(hint),
        )
    }

    /// 404 for anything missing or belonging to someone else.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            Error::not_found(format!("{what} not found")),
        )
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The underlying error.
    pub fn error(&self) -> &Error {
        &self.error
    }
}

/// The status for each kind when the error comes from a connector or store.
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidConfig | ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        // The provider rejected stored or submitted credentials: the request was
        // understood but cannot be carried out with them.
        ErrorKind::AuthFailed | ErrorKind::NeedsReauth => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        Self::new(status_for(error.kind()), error)
    }
}

/// The body of every error answer of the API.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope<'a> {
    /// What went wrong.
    pub error: ErrorBody<'a>,
    /// The failed validation, when credentials were refused at connect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<&'a ValidationReport>,
}

/// The `error` object of an [`ErrorEnvelope`].
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// The error kind: `invalid_input`, `auth_failed`, `not_found`, ….
    pub kind: &'a str,
    /// What went wrong, for people.
    pub message: &'a str,
    /// The connector the error came from.
    pub connector: Option<&'a str>,
    /// How to fix it.
    pub hint: Option<&'a str>,
    /// The input field at fault.
    pub field: Option<&'a str>,
    /// When rate limited: seconds to wait (also in `Retry-After`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_secs: Option<u64>,
}

impl<'a> ErrorBody<'a> {
    /// The body that describes `error`: what the API's error answers and the MCP
    /// server's tool errors both carry.
    pub fn of(error: &'a Error) -> Self {
        Self {
            kind: error.kind().as_str(),
            message: error.message(),
            connector: error.connector(),
            hint: error.hint(),
            field: error.field(),
            retry_after_secs: error.retry_after().map(|after| after.as_secs()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = &self.error;
        if self.status.is_server_error() {
            tracing::warn!(kind = %error.kind(), connector = error.connector(), message = %error.message(), "request failed");
        }
        let body = ErrorEnvelope {
            error: ErrorBody::of(error),
            report: self.report.as_ref(),
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(retry_after) = error.retry_after() {
            if let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
