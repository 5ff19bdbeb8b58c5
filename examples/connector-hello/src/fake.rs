//! A fake Hello API on `127.0.0.1`, behind the `fake` feature, for this crate's
//! tests and for hosts that test with this connector.
//!
//! It answers `GET /v1/account`, `GET /v1/greetings` (a page at a time) and
//! `GET /v1/greetings/{language}`, answers 401 to a request without the API key
//! it was started with, and records every request without header values. It
//! holds [`GREETINGS`], so `list_greetings` with `limit` 10 has a second page.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use patchbay_http::{HttpClient, HttpConfig, UpstreamOverrides};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

use crate::client::{API_BASE, API_KEY_HEADER};
use crate::HelloConnector;

/// The greetings the fake serves, as (language code, language, text), in order.
pub const GREETINGS: &[(&str, &str, &str)] = &[
    ("de", "German", "Hallo"),
    ("en", "English", "Hello"),
    ("es", "Spanish", "Hola"),
    ("fi", "Finnish", "Hei"),
    ("fr", "French", "Bonjour"),
    ("hi", "Hindi", "Namaste"),
    ("it", "Italian", "Ciao"),
    ("ja", "Japanese", "Konnichiwa"),
    ("nl", "Dutch", "Hallo"),
    ("pl", "Polish", "Cześć"),
    ("pt", "Portuguese", "Olá"),
    ("sw", "Swahili", "Jambo"),
];

/// The account name the fake reports.
pub const ACCOUNT_NAME: &str = "Hello example account";

/// A request the fake received, without header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/v1/greetings`.
    pub path: String,
    /// Query pairs in order.
    pub query: Vec<(String, String)>,
    /// Lower-case header names, sorted.
    pub header_names: Vec<String>,
}

impl RecordedRequest {
    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Whether a header was sent (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.header_names.contains(&name.to_ascii_lowercase())
    }
}

/// A running fake Hello API; stops when dropped.
pub struct FakeHello {
    address: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    api_key: String,
    requests: Mutex<Vec<RecordedRequest>>,
}

impl FakeHello {
    /// Starts the fake on `127.0.0.1:0`, accepting `api_key`.
    pub async fn start(api_key: &str) -> Self {
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            requests: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .expect("bind the fake Hello to 127.0.0.1:0");
        let address = listener
            .local_addr()
            .expect("the fake Hello's local address");
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = tokio::spawn(async move {
            // The server ends only when the task is aborted on drop.
            let _ = axum::serve(listener, router).await;
        });
        Self {
            address,
            shared,
            server,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// `api.hello.example=http://127.0.0.1:PORT`, for `PATCHBAY_UPSTREAM_OVERRIDES`.
    pub fn override_spec(&self) -> String {
        format!("{}={}", api_host(), self.base_url())
    }

    /// A connector whose HTTP client sends Hello requests to this fake.
    pub fn connector(&self) -> HelloConnector {
        let overrides = UpstreamOverrides::parse(&self.override_spec())
            .expect("the fake's override is well formed");
        let http = HttpClient::new(HttpConfig {
            overrides,
            ..HttpConfig::default()
        })
        .expect("an HTTP client for the fake");
        HelloConnector::new(http)
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests().clone()
    }

    /// The requests received for one path.
    pub fn requests_to(&self, path: &str) -> Vec<RecordedRequest> {
        self.shared
            .requests()
            .iter()
            .filter(|request| request.path == path)
            .cloned()
            .collect()
    }
}

impl Drop for FakeHello {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Shared {
    fn requests(&self) -> std::sync::MutexGuard<'_, Vec<RecordedRequest>> {
        // A panicking test thread must not hide the recorded requests from others.
        self.requests.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The host of [`API_BASE`], which the fake stands in for.
fn api_host() -> &'static str {
    let rest = API_BASE
        .split_once("://")
        .map_or(API_BASE, |(_, rest)| rest);
    rest.split_once('/').map_or(rest, |(host, _)| host)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|Query(query)| query)
        .unwrap_or_default();
    let mut header_names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();
    shared.requests().push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        header_names,
    });
    if method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    let sent_key = headers
        .get(API_KEY_HEADER)
        .and_then(|value| value.to_str().ok());
    if sent_key != Some(shared.api_key.as_str()) {
        return error(StatusCode::UNAUTHORIZED, "invalid API key");
    }
    match uri.path() {
        "/v1/account" => Json(json!({"id": "acct-hello", "name": ACCOUNT_NAME})).into_response(),
        "/v1/greetings" => list_greetings(&query),
        path => match path.strip_prefix("/v1/greetings/") {
            Some(language) => get_greeting(language),
            None => error(StatusCode::NOT_FOUND, "no such endpoint"),
        },
    }
}

/// One page of greetings: `limit` (1 to 100, default 20) from the offset in `page_token`.
fn list_greetings(query: &[(String, String)]) -> Response {
    let number = |name: &str, default: usize| match query.iter().find(|(key, _)| key == name) {
        None => Some(default),
        Some((_, value)) => value.parse::<usize>().ok(),
    };
    let (Some(limit), Some(offset)) = (number("limit", 20), number("page_token", 0)) else {
        return error(
            StatusCode::BAD_REQUEST,
            "limit and page_token must be numbers",
        );
    };
    if !(1..=100).contains(&limit) {
        return error(StatusCode::BAD_REQUEST, "limit must be from 1 to 100");
    }
    let end = GREETINGS.len().min(offset.saturating_add(limit));
    let greetings: Vec<Value> = GREETINGS
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .map(greeting)
        .collect();
    let next_page_token = (end < GREETINGS.len()).then(|| end.to_string());
    Json(json!({"greetings": greetings, "next_page_token": next_page_token})).into_response()
}

/// The greeting of `language`, or 404.
fn get_greeting(language: &str) -> Response {
    match GREETINGS.iter().find(|(code, _, _)| *code == language) {
        Some(found) => Json(greeting(found)).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            &format!("no greeting for language `{language}`"),
        ),
    }
}

fn greeting((code, language, text): &(&str, &str, &str)) -> Value {
    json!({"language": code, "language_name": language, "text": text})
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}
