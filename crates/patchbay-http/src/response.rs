//! A fully read provider response and its mapping to Patchbay errors.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use patchbay_core::secret::REDACTED;
use patchbay_core::{Error, ErrorKind, Result, SecretString};
use serde_json::Value;

/// Most characters of provider error text kept in an error message.
const PROVIDER_TEXT_LIMIT: usize = 500;

/// Most characters of a tenant-supplied server's error message kept in an error.
const TENANT_TEXT_LIMIT: usize = 200;

/// A provider's answer with its body read into memory.
#[derive(Clone)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body, at most `HttpConfig::max_response_bytes` long.
    pub body: Bytes,
    /// How many attempts it took to get this answer (1 when no retry happened).
    pub attempts: u32,
    source: Option<&'static str>,
    sent_secrets: Arc<[SecretString]>,
    tenant_url: bool,
}

impl Response {
    /// A response built by hand, for tests and fakes; `attempts` is 1.
    pub fn new(status: StatusCode, headers: HeaderMap, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers,
            body: body.into(),
            attempts: 1,
            source: None,
            sent_secrets: Arc::new([]),
            tenant_url: false,
        }
    }

    pub(crate) fn received(
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
        attempts: u32,
        connector: Option<&'static str>,
        sent_secrets: Arc<[SecretString]>,
        tenant_url: bool,
    ) -> Self {
        Self {
            status,
            headers,
            body,
            attempts,
            source: connector,
            sent_secrets,
            tenant_url,
        }
    }

    /// Names the connector that made the request, for error messages.
    pub fn with_connector(mut self, connector: &'static str) -> Self {
        self.source = Some(connector);
        self
    }

    /// The connector that made the request, if it named itself.
    pub fn connector(&self) -> Option<&'static str> {
        self.source
    }

    /// Deserialises the body as JSON; an Internal error naming the connector otherwise.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|error| {
            let error = Error::internal(format!(
                "{} returned a response that is not the expected JSON: {}",
                self.provider_name(),
                describe_json_error(&error)
            ));
            match self.source {
                Some(connector) => error.with_connector(connector),
                None => error,
            }
        })
    }

    /// The body as text, with invalid UTF-8 replaced.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)?.to_str().ok()
    }

    /// `Ok(self)` for a 2xx status; otherwise the matching Patchbay error, with
    /// `provider_status` set and the provider's own error text in the message.
    pub fn error_for_status(self) -> Result<Self> {
        if self.status.is_success() {
            return Ok(self);
        }
        let status = self.status;
        let message = format!(
            "{} returned {}: {}",
            self.provider_name(),
            status_text(status),
            self.provider_text()
        );
        let code = status.as_u16();
        let mut error = match code {
            400 | 422 => Error::new(ErrorKind::InvalidInput, message).with_hint(
                "the provider rejected the request parameters; check them against its API",
            ),
            401 => Error::new(ErrorKind::AuthFailed, message).with_hint(
                "check that the credentials are correct, complete and not expired or revoked",
            ),
            403 => Error::new(ErrorKind::PermissionDenied, message).with_hint(
                "the credentials work but lack a permission or scope this operation needs",
            ),
            404 => Error::new(ErrorKind::NotFound, message),
            429 => {
                let error = Error::new(ErrorKind::RateLimited, message).with_hint(
                    "the provider is rate limiting these credentials; wait and try again",
                );
                match parse_retry_after(&self.headers, SystemTime::now()) {
                    Some(wait) => error.with_retry_after(wait),
                    None => error,
                }
            }
            500..=599 => Error::new(ErrorKind::Unavailable, message)
                .with_hint("the provider is having trouble; try again later"),
            400..=499 => Error::new(ErrorKind::InvalidInput, message),
            _ => Error::internal(message),
        };
        error = error.with_provider_status(code);
        if let Some(connector) = self.source {
            error = error.with_connector(connector);
        }
        Err(error)
    }

    fn provider_name(&self) -> &str {
        self.source.unwrap_or("the provider")
    }

    /// The provider's explanation: a JSON error field when there is one, else
    /// the body, with every secret this request sent replaced and cut to 500 chars.
    ///
    /// A server at a tenant-supplied URL may be anything (an internal admin page
    /// reached by mistake), so only a JSON error field, cut to 200 chars, is kept
    /// from its answer, never the raw body.
    fn provider_text(&self) -> String {
        let extracted = serde_json::from_slice::<Value>(&self.body)
            .ok()
            .and_then(|json| json_error_text(&json));
        let (raw, limit) = match extracted {
            Some(text) if self.tenant_url => (text, TENANT_TEXT_LIMIT),
            Some(text) => (text, PROVIDER_TEXT_LIMIT),
            None if self.tenant_url => (String::new(), TENANT_TEXT_LIMIT),
            None => (self.text(), PROVIDER_TEXT_LIMIT),
        };
        let mut text = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        for secret in self.sent_secrets.iter() {
            let value = secret.expose();
            if !value.is_empty() {
                text = text.replace(value.as_str(), REDACTED);
            }
        }
        if text.is_empty() {
            return status_reason(self.status).to_owned();
        }
        truncate_chars(&text, limit)
    }
}

impl fmt::Debug for Response {
    // Bodies and header values may carry tokens (OAuth answers, cookies).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("attempts", &self.attempts)
            .field("connector", &self.source)
            .finish()
    }
}

/// How long a `Retry-After` header asks to wait, from `now`.
///
/// Accepts delay-seconds and HTTP-dates; a date in the past means no wait.
pub fn parse_retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

fn status_text(status: StatusCode) -> String {
    match status.canonical_reason() {
        Some(reason) => format!("{} {reason}", status.as_u16()),
        None => status.as_u16().to_string(),
    }
}

fn status_reason(status: StatusCode) -> &'static str {
    status.canonical_reason().unwrap_or("no details")
}

fn truncate_chars(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Finds the human-readable error in a JSON body: `errors`, then `error`, then `message`.
fn json_error_text(json: &Value) -> Option<String> {
    let object = json.as_object()?;
    if let Some(text) = object.get("errors").and_then(describe) {
        return Some(text);
    }
    if let Some(error) = object.get("error") {
        if let Some(text) = describe(error) {
            // OAuth: {"error": "invalid_grant", "error_description": "..."}
            return Some(
                match object.get("error_description").and_then(Value::as_str) {
                    Some(description) if error.is_string() => format!("{text}: {description}"),
                    _ => text,
                },
            );
        }
    }
    object.get("message").and_then(describe)
}

/// Text of one error value: a string, a list of errors, or an object with a message.
fn describe(value: &Value) -> Option<String> {
    match value {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().filter_map(describe).collect();
            (!parts.is_empty()).then(|| parts.join("; "))
        }
        Value::Object(object) => {
            let summary = [
                "message",
                "error_description",
                "detail",
                "title",
                "error",
                "code",
            ]
            .iter()
            .find_map(|key| object.get(*key).and_then(describe));
            let details = object.get("errors").and_then(describe);
            match (summary, details) {
                (Some(summary), Some(details)) if summary != details => {
                    Some(format!("{summary}: {details}"))
                }
                (Some(text), _) | (None, Some(text)) => Some(text),
                (None, None) => None,
            }
        }
        _ => None,
    }
}

/// Describes a JSON decoding failure without echoing body values, which may be tokens.
fn describe_json_error(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let echoes_no_values = matches!(
        error.classify(),
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof
    ) || message.starts_with("missing field");
    if echoes_no_values {
        message
    } else {
        format!(
            "a value has an unexpected type or shape at line {} column {}",
            error.line(),
            error.column()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_error_text_prefers_errors_then_error_then_message() {
        assert_eq!(
            json_error_text(&json!({"errors": ["Forbidden"], "message": "ignored"})).as_deref(),
            Some("Forbidden")
        );
        assert_eq!(
            json_error_text(&json!({"error": "invalid_grant", "error_description": "Bad code"}))
                .as_deref(),
            Some("invalid_grant: Bad code")
        );
        assert_eq!(
            json_error_text(&json!({"error": {"code": 401, "message": "Invalid token"}}))
                .as_deref(),
            Some("Invalid token")
        );
        assert_eq!(
            json_error_text(
                &json!({"error": {"message": "Invalid Input", "errors": ["Name is blank"]}})
            )
            .as_deref(),
            Some("Invalid Input: Name is blank")
        );
        assert_eq!(
            json_error_text(&json!({"message": "Bad credentials"})).as_deref(),
            Some("Bad credentials")
        );
        assert_eq!(json_error_text(&json!({"status": "fail"})), None);
    }

    #[test]
    fn provider_text_is_cut_to_500_chars_and_falls_back_to_the_reason() {
        let long = Response::new(StatusCode::BAD_GATEWAY, HeaderMap::new(), "é".repeat(900));
        let text = long.provider_text();
        assert_eq!(text.chars().count(), PROVIDER_TEXT_LIMIT + 1);
        assert!(text.ends_with('…'));
        let empty = Response::new(StatusCode::FORBIDDEN, HeaderMap::new(), "  ");
        assert_eq!(empty.provider_text(), "Forbidden");
    }

    #[test]
    fn json_errors_do_not_echo_body_values() {
        #[derive(serde::Deserialize, Debug)]
        struct Token {
            #[allow(dead_code)]
            expires_in: u64,
        }
        let response = Response::new(
            StatusCode::OK,
            HeaderMap::new(),
            r#"{"expires_in": "canary-token-value"}"#,
        )
        .with_connector("gcp");
        let error = response.json::<Token>().unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Internal);
        assert_eq!(error.connector(), Some("gcp"));
        assert!(error
            .message()
            .starts_with("gcp returned a response that is not the expected JSON"));
        assert!(!error.to_string().contains("canary"), "{error}");
        let missing = Response::new(StatusCode::OK, HeaderMap::new(), "{}")
            .json::<Token>()
            .unwrap_err();
        assert!(
            missing.message().contains("missing field `expires_in`"),
            "{missing}"
        );
    }
}
