//! A small client for the JSON API, used by the operator CLI: against a running
//! service (local or remote), authenticated with an API key like any caller, or
//! against the service's own router in this process, beside its data.

use std::time::Duration;

use bytes::Bytes;
use eventsource_stream::Eventsource;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use patchbay_core::{ErrorKind, SecretString};
use serde_json::Value;

/// The variable holding the service's base URL for the CLI.
pub const URL_VAR: &str = "PATCHBAY_URL";
/// The variable holding the API key the CLI sends.
pub const API_KEY_VAR: &str = "PATCHBAY_API_KEY";
/// How long one API call may take: a query waits for its provider, so this is
/// above the longest operation timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(330);
/// How long the alert stream may stay silent before the connection counts as dead:
/// three of the service's heartbeats.
const STREAM_SILENCE_LIMIT: Duration = Duration::from_secs(45);
/// The longest wait between two attempts to reach the alert stream again.
const MAX_STREAM_BACKOFF: Duration = Duration::from_secs(30);

/// A failed API call: the service's error envelope, or why it could not be reached.
#[derive(Debug)]
pub struct ApiFailure {
    /// The HTTP status, when the service answered.
    pub status: Option<u16>,
    /// The error kind from the envelope (`auth_failed`, `not_found`, …).
    pub kind: Option<ErrorKind>,
    /// What went wrong, for people.
    pub message: String,
    /// How to fix it, when the service said.
    pub hint: Option<String>,
    /// The whole answer, when it was JSON (a failed validation carries its report).
    pub body: Option<Value>,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(status) = self.status {
            write!(f, "{status}: ")?;
        }
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, " ({hint})")?;
        }
        Ok(())
    }
}

/// Talks to one Patchbay service with one API key, or to a router in this process.
#[derive(Debug, Clone)]
pub struct ApiClient {
    base_url: String,
    api_key: SecretString,
    transport: Transport,
}

#[derive(Debug, Clone)]
enum Transport {
    Http {
        http: reqwest::Client,
        /// For the alert stream: no overall timeout, a silence limit instead.
        streaming: reqwest::Client,
    },
    /// The router authenticates every request as its one tenant.
    InProcess(axum::Router),
}

/// An answer's status and body, as it arrives.
type Answer = (u16, BoxStream<'static, Result<Bytes, std::io::Error>>);

impl ApiClient {
    /// A client for the service at `base_url` (e.g. `http://127.0.0.1:5080`).
    pub fn new(base_url: &str, api_key: SecretString) -> Result<Self, ApiFailure> {
        let base_url = base_url.trim().trim_end_matches('/').to_owned();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(local_failure(format!(
                "`{base_url}` is not a service URL; pass --url http://host:5080 or set {URL_VAR}"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| local_failure(format!("cannot build an HTTP client: {error}")))?;
        let streaming = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(STREAM_SILENCE_LIMIT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|error| local_failure(format!("cannot build an HTTP client: {error}")))?;
        Ok(Self {
            base_url,
            api_key,
            transport: Transport::Http { http, streaming },
        })
    }

    /// A client that sends every call to `router` in this process (built with a
    /// principal extractor that names the tenant), so the CLI beside the data gives
    /// the same answers as the service.
    pub fn in_process(router: axum::Router) -> Self {
        Self {
            base_url: "the local data".to_owned(),
            api_key: SecretString::from(""),
            transport: Transport::InProcess(router),
        }
    }

    /// Sends one request; `streaming` picks the client without an overall timeout.
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
        streaming: bool,
    ) -> Result<Answer, ApiFailure> {
        match &self.transport {
            Transport::Http {
                http,
                streaming: stream_client,
            } => {
                let client = if streaming { stream_client } else { http };
                let mut request = client
                    .request(method, format!("{}{path}", self.base_url))
                    .bearer_auth(self.api_key.expose());
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                if let Some(body) = body {
                    request = request.json(&body);
                }
                let response = request.send().await.map_err(|error| {
                    local_failure(format!(
                        "cannot reach Patchbay at {}: {}",
                        self.base_url,
                        without_url(&error)
                    ))
                })?;
                let status = response.status().as_u16();
                let body = response
                    .bytes_stream()
                    .map_err(|error| std::io::Error::other(without_url(&error)))
                    .boxed();
                Ok((status, body))
            }
            Transport::InProcess(router) => {
                use tower::ServiceExt;
                let mut request = http::Request::builder().method(method).uri(path);
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                let request = match body {
                    Some(body) => request
                        .header(http::header::CONTENT_TYPE, "application/json")
                        .body(axum::body::Body::from(body.to_string())),
                    None => request.body(axum::body::Body::empty()),
                }
                .map_err(|error| local_failure(format!("cannot build the request: {error}")))?;
                let response = router
                    .clone()
                    .oneshot(request)
                    .await
                    .unwrap_or_else(|never| match never {});
                let status = response.status().as_u16();
                let body = response
                    .into_body()
                    .into_data_stream()
                    .map_err(std::io::Error::other)
                    .boxed();
                Ok((status, body))
            }
        }
    }

    /// `GET /api/connections`.
    pub async fn list_connections(&self) -> Result<Value, ApiFailure> {
        self.call(reqwest::Method::GET, "/api/connections", None)
            .await
    }

    /// `POST /api/connections/{id}/validate`.
    pub async fn validate(&self, connection: &str) -> Result<Value, ApiFailure> {
        let path = format!("/api/connections/{}/validate", segment(connection));
        self.call(
            reqwest::Method::POST,
            &path,
            Some(Value::Object(Default::default())),
        )
        .await
    }

    /// `POST /api/connections/{id}/query/{operation}` with `params`.
    pub async fn query(
        &self,
        connection: &str,
        operation: &str,
        params: Value,
    ) -> Result<Value, ApiFailure> {
        let path = format!(
            "/api/connections/{}/query/{}",
            segment(connection),
            segment(operation)
        );
        self.call(reqwest::Method::POST, &path, Some(params)).await
    }

    /// Follows `GET /api/alerts/stream`, calling `each` with every alert, from
    /// after `after` (or from now when `None`). Reconnects with `Last-Event-ID` after
    /// a dropped connection, waiting 1 s doubling to 30 s; returns only when the
    /// service refuses the stream (a bad key, a bad cursor).
    pub async fn follow_alerts(
        &self,
        after: Option<i64>,
        mut each: impl FnMut(&Value),
    ) -> Result<(), ApiFailure> {
        let url = "/api/alerts/stream";
        let mut last_id = after.map(|after| after.to_string());
        let mut backoff = Duration::from_secs(1);
        loop {
            let mut headers = vec![("accept", "text/event-stream")];
            if let Some(id) = &last_id {
                headers.push(("last-event-id", id));
            }
            match self
                .send(reqwest::Method::GET, url, &headers, None, true)
                .await
            {
                Err(failure) => {
                    eprintln!("patchbay: {failure}; retrying in {} s", backoff.as_secs())
                }
                Ok((status, body)) if !(200..300).contains(&status) => {
                    let text = collect_text(body).await.unwrap_or_default();
                    let failure = answer_failure(status, &text);
                    if status < 500 {
                        return Err(failure);
                    }
                    eprintln!("patchbay: {failure}; retrying in {} s", backoff.as_secs());
                }
                Ok((_, body)) => {
                    backoff = Duration::from_secs(1);
                    let mut events = body.eventsource();
                    while let Some(event) = events.next().await {
                        let event = match event {
                            Ok(event) => event,
                            Err(error) => {
                                eprintln!("patchbay: the alert stream broke off: {error}");
                                break;
                            }
                        };
                        match event.event.as_str() {
                            "alert" => match serde_json::from_str::<Value>(&event.data) {
                                Ok(alert) => {
                                    last_id = Some(event.id);
                                    each(&alert);
                                }
                                Err(error) => {
                                    eprintln!(
                                        "patchbay: skipped an alert that is not JSON: {error}"
                                    )
                                }
                            },
                            "error" => eprintln!("patchbay: the service: {}", event.data),
                            _ => {}
                        }
                    }
                    eprintln!(
                        "patchbay: the alert stream closed; resuming in {} s",
                        backoff.as_secs()
                    );
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_STREAM_BACKOFF);
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, ApiFailure> {
        let (status, body) = self.send(method, path, &[], body, false).await?;
        let text = collect_text(body)
            .await
            .map_err(|error| local_failure(format!("the answer was cut off: {error}")))?;
        if (200..300).contains(&status) {
            return serde_json::from_str::<Value>(&text)
                .map_err(|_| local_failure("the service answered without JSON"));
        }
        Err(answer_failure(status, &text))
    }
}

/// The whole body of an answer as text.
async fn collect_text(
    body: BoxStream<'static, Result<Bytes, std::io::Error>>,
) -> Result<String, std::io::Error> {
    let chunks: Vec<Bytes> = body.try_collect().await?;
    Ok(String::from_utf8_lossy(&chunks.concat()).into_owned())
}

/// A failure from the service's error envelope (`{"error": {kind, message, hint}}`).
fn answer_failure(status: u16, text: &str) -> ApiFailure {
    let body = serde_json::from_str::<Value>(text).ok();
    let error = body.as_ref().and_then(|body| body.get("error"));
    let text_of = |key: &str| {
        error
            .and_then(|error| error.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    ApiFailure {
        status: Some(status),
        kind: text_of("kind").and_then(|kind| ErrorKind::from_name(&kind)),
        message: text_of("message").unwrap_or_else(|| format!("HTTP {status}")),
        hint: text_of("hint"),
        body,
    }
}

/// A failure found before or without an answer from the service.
fn local_failure(message: impl Into<String>) -> ApiFailure {
    ApiFailure {
        status: None,
        kind: Some(ErrorKind::Unavailable),
        message: message.into(),
        hint: None,
        body: None,
    }
}

/// A transport error's text without its URL (the reason is what matters here).
fn without_url(error: &reqwest::Error) -> String {
    let mut reason = error.to_string();
    if let Some(url) = error.url() {
        reason = reason.replace(&format!(" ({url})"), "");
    }
    reason
}

/// One path segment, percent-encoded so an id cannot change the route.
fn segment(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// The CLI's exit status for a failure of this kind: scripts can tell "fix your
/// input" from "reconnect" from "try again later".
pub fn exit_code(kind: Option<ErrorKind>) -> u8 {
    match kind {
        Some(ErrorKind::InvalidInput | ErrorKind::InvalidConfig) => 2,
        Some(ErrorKind::AuthFailed | ErrorKind::NeedsReauth) => 3,
        Some(ErrorKind::PermissionDenied) => 4,
        Some(ErrorKind::NotFound) => 5,
        Some(ErrorKind::RateLimited | ErrorKind::Unavailable) => 6,
        _ => 1,
    }
}
