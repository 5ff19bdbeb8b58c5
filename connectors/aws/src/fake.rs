//! A fake Amazon Web Services API on `127.0.0.1`, behind the `fake` feature, for this crate's
//! tests and for hosts that test with this connector.
//!
//! It answers the placeholder endpoints [`crate::client`] calls,
//! `/v1/account` and `/v1/items`, and records every request without
//! header values.
//! It answers 401 to a request without the credential it was started with.
//! It holds [`ITEM_COUNT`] items, so `list_items` with `limit` 10 has a second
//! page of 5.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{first_value, FakeServer, FaultQueue, RequestLog};
use serde_json::{json, Value};

use crate::AwsConnector;

/// A one-shot failure to inject for the next request to a path.
pub use patchbay_testkit::fake_server::HttpFault as Fault;

/// How many items the fake holds.
pub const ITEM_COUNT: usize = 15;
/// The account name the fake reports.
pub const ACCOUNT_NAME: &str = "Example account";

/// A request the fake received, without header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/v1/items`.
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

/// A running fake Amazon Web Services API; stops when dropped.
pub struct FakeAws {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakeAws,
    hosts: ["api.example.invalid"],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

struct Shared {
    /// The `(header, value)` pairs that authenticate a request.
    accepted: Vec<(&'static str, String)>,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
}

impl FakeAws {
    /// Starts the fake on `127.0.0.1:0`, accepting `credential` as the API key.
    pub async fn start(credential: &str) -> Self {
        let accepted = vec![("x-api-key", credential.to_owned())];
        let shared = Arc::new(Shared {
            accepted,
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("Amazon Web Services", router).await;
        Self { shared, server }
    }

    /// A connector whose HTTP client sends Amazon Web Services requests to this fake.
    pub fn connector(&self) -> AwsConnector {
        AwsConnector::new(patchbay_testkit::http::client_for_fake(
            &self.override_spec(),
        ))
    }
}

impl Shared {
    fn is_authorized(&self, headers: &HeaderMap) -> bool {
        self.accepted.iter().any(|(name, value)| {
            headers
                .get(*name)
                .and_then(|sent| sent.to_str().ok())
                .is_some_and(|sent| sent == value)
        })
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
    if !shared.is_authorized(&headers) {
        return error(StatusCode::UNAUTHORIZED, "invalid credentials");
    }
    match uri.path() {
        "/v1/account" => Json(json!({"id": "acct-0001", "name": ACCOUNT_NAME})).into_response(),
        "/v1/items" => list_items(&query),
        _ => error(StatusCode::NOT_FOUND, "no such endpoint"),
    }
}

/// One page of items: `limit` (1 to 100, default 20) from the offset in `page_token`.
fn list_items(query: &[(String, String)]) -> Response {
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
    let end = ITEM_COUNT.min(offset.saturating_add(limit));
    let items: Vec<Value> = (offset..end).map(item).collect();
    let next_page_token = (end < ITEM_COUNT).then(|| end.to_string());
    Json(json!({"items": items, "next_page_token": next_page_token})).into_response()
}

/// The item at `index`, as Amazon Web Services might describe it.
fn item(index: usize) -> Value {
    let number = index + 1;
    json!({
        "id": format!("item-{number:02}"),
        "name": format!("Item {number}"),
        "updated_at": format!("2024-05-01T12:{index:02}:00Z"),
    })
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
