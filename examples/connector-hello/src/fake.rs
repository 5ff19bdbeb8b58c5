//! A fake Hello API on `127.0.0.1`, behind the `fake` feature, for this crate's
//! tests and for hosts that test with this connector.
//!
//! It answers `GET /v1/account`, `GET /v1/greetings` (a page at a time) and
//! `GET /v1/greetings/{language}`, answers 401 to a request without the API key
//! it was started with, and records every request without header values. It
//! holds [`GREETINGS`], so `list_greetings` with `limit` 10 has a second page.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{first_value, FakeServer, FaultQueue, RequestLog};
use serde_json::{json, Value};

use crate::client::API_KEY_HEADER;
use crate::HelloConnector;

/// A one-shot failure to inject for the next request to a path.
pub use patchbay_testkit::fake_server::HttpFault as Fault;

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
        first_value(&self.query, name)
    }

    /// Whether a header was sent (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.header_names.contains(&name.to_ascii_lowercase())
    }
}

/// A running fake Hello API; stops when dropped.
pub struct FakeHello {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakeHello,
    hosts: ["api.hello.example"],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

struct Shared {
    api_key: String,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
}

impl FakeHello {
    /// Starts the fake on `127.0.0.1:0`, accepting `api_key`.
    pub async fn start(api_key: &str) -> Self {
        let shared = Arc::new(Shared {
            api_key: api_key.to_owned(),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("Hello", router).await;
        Self { shared, server }
    }

    /// A connector whose HTTP client sends Hello requests to this fake.
    pub fn connector(&self) -> HelloConnector {
        HelloConnector::new(patchbay_testkit::http::client_for_fake(
            &self.override_spec(),
        ))
    }
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
    shared.requests.record(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: query.clone(),
        header_names,
    });
    if let Some(fault) = shared.faults.take(uri.path()) {
        return fault_response(fault);
    }
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

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "rate limit exceeded");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        Fault::Unavailable => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}
