//! Mapping errors to HTTP answers: `{ "error": { "kind", "message", "connector", "hint" } }`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use patchbay_core::{Error, ErrorKind, ValidationReport};
use serde_json::json;

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = &self.error;
        if self.status.is_server_error() {
            tracing::warn!(kind = %error.kind(), connector = error.connector(), message = %error.message(), "request failed");
        }
        let mut body = json!({
            "error": {
                "kind": error.kind().as_str(),
                "message": error.message(),
                "connector": error.connector(),
                "hint": error.hint(),
                "field": error.field(),
            }
        });
        if let Some(retry_after) = error.retry_after() {
            body["error"]["retry_after_secs"] = json!(retry_after.as_secs());
        }
        if let Some(report) = &self.report {
            body["report"] = json!(report);
        }
        let mut response = (self.status, Json(body)).into_response();
        if let Some(retry_after) = error.retry_after() {
            if let Ok(value) = HeaderValue::from_str(&retry_after.as_secs().max(1).to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
