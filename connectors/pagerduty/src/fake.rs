//! A fake PagerDuty on `127.0.0.1`, behind the `fake` feature, following the REST
//! API v2 (`fixtures/pagerduty-rest-openapiv3.json`) and PagerDuty's OAuth
//! (identity.pagerduty.com with PKCE): for this crate's tests and for hosts that
//! test with this connector.
//!
//! It answers the endpoints the connector calls with offset paging (`limit` ≤ 100,
//! `offset`, `more`), refuses requests without PagerDuty's `Accept` media type,
//! accepts `Authorization: Token token=<key>` for its API keys and `Bearer` for the
//! access tokens its OAuth endpoints issued, rotates refresh tokens, and records
//! every request without credential values. [`FakePagerduty::upstream_overrides`]
//! sends `api.eu.pagerduty.com` to the same server under `/eu`, so tests see which
//! region a request went to.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine as _;
use patchbay_core::OAuthGrant;
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{first_value, FakeServer, FakeState, FaultQueue, RequestLog};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::webhook::sign;
use crate::PagerdutyConnector;

/// A one-shot failure to inject for the next request to a path.
pub use patchbay_testkit::fake_server::HttpFault as Fault;

/// How many incidents the fake holds.
pub const INCIDENT_COUNT: usize = 12;
/// The account subdomain the fake's web URLs use.
pub const SUBDOMAIN: &str = "acme";
/// The user `/users/me` returns.
pub const USER_NAME: &str = "Tenex Engineer";
/// The incident every incident sub-resource exists for.
pub const INCIDENT_ID: &str = "PGR0VU2";
/// The service `get_service` finds.
pub const SERVICE_ID: &str = "PF9KMXH";
/// The OAuth client id the fake accepts.
pub const CLIENT_ID: &str = "pd-fake-client-id";
/// The OAuth client secret the fake accepts unless [`FakePagerduty::set_client_secret`] changes it.
pub const CLIENT_SECRET: &str = "pd-fake-client-secret-9a7c";
/// The message PagerDuty gives `/users/me` for account-level keys.
pub const ACCOUNT_LEVEL_MESSAGE: &str = "Because this request was made using an account-level access token, we were unable to determine the user's identity. Please use a user-level token.";

/// A request the fake received, without credential values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The API path without the region prefix, e.g. `/incidents`.
    pub path: String,
    /// `us` or `eu` (API hosts), `identity` for the OAuth endpoints.
    pub region: String,
    /// Query pairs in order.
    pub query: Vec<(String, String)>,
    /// Lower-case header names, sorted.
    pub header_names: Vec<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// How `Authorization` authenticated: `token`, `bearer`, or `None`.
    pub auth_scheme: Option<String>,
    /// Form fields of token requests, secret values redacted.
    pub form: Vec<(String, String)>,
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

/// A running fake PagerDuty; stops when dropped.
pub struct FakePagerduty {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakePagerduty,
    hosts: ["api.pagerduty.com", "api.eu.pagerduty.com", "identity.pagerduty.com"],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

struct Shared {
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
    state: FakeState<Mutable>,
}

struct Mutable {
    api_tokens: HashSet<String>,
    account_level_tokens: HashSet<String>,
    access_tokens: HashSet<String>,
    refresh_token: Option<String>,
    client_secret: String,
    codes: HashMap<String, PendingCode>,
    issued: u64,
    granted_scope: Option<String>,
    denied_paths: HashSet<String>,
    token_requests: u64,
}

struct PendingCode {
    redirect_uri: String,
    challenge: String,
    scope: String,
}

impl FakePagerduty {
    /// Starts the fake on `127.0.0.1:0`, accepting `api_token` as a user's API key.
    pub async fn start(api_token: &str) -> Self {
        let shared = Arc::new(Shared {
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
            state: FakeState::new(Mutable {
                api_tokens: HashSet::from([api_token.to_owned()]),
                account_level_tokens: HashSet::new(),
                access_tokens: HashSet::new(),
                refresh_token: None,
                client_secret: CLIENT_SECRET.to_owned(),
                codes: HashMap::new(),
                issued: 0,
                granted_scope: None,
                denied_paths: HashSet::new(),
                token_requests: 0,
            }),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("PagerDuty", router).await;
        Self { shared, server }
    }

    /// The `PATCHBAY_UPSTREAM_OVERRIDES` value for this fake, with EU requests under `/eu`.
    pub fn upstream_overrides(&self) -> String {
        let base = self.server.base_url();
        format!(
            "api.pagerduty.com={base},api.eu.pagerduty.com={base}/eu,identity.pagerduty.com={base}"
        )
    }

    /// A connector whose HTTP client sends PagerDuty requests to this fake.
    pub fn connector(&self) -> PagerdutyConnector {
        PagerdutyConnector::new(patchbay_testkit::http::client_for_fake(
            &self.upstream_overrides(),
        ))
    }

    /// Also accepts `token` as an account-level API key (no user behind it).
    pub fn add_account_level_token(&self, token: &str) {
        self.shared
            .state
            .lock()
            .account_level_tokens
            .insert(token.to_owned());
    }

    /// Accepts `token` as an OAuth access token, as if it had issued it.
    pub fn add_access_token(&self, token: &str) {
        self.shared
            .state
            .lock()
            .access_tokens
            .insert(token.to_owned());
    }

    /// The client secret the token endpoint expects (the id is [`CLIENT_ID`]).
    pub fn set_client_secret(&self, secret: &str) {
        self.shared.state.lock().client_secret = secret.to_owned();
    }

    /// The scope the token endpoint grants instead of the one requested (PagerDuty
    /// drops scopes it does not know and may grant only `openid`).
    pub fn grant_scope(&self, scope: &str) {
        self.shared.state.lock().granted_scope = Some(scope.to_owned());
    }

    /// Answers 403 to every request for `path` from now on.
    pub fn deny(&self, path: &str) {
        self.shared
            .state
            .lock()
            .denied_paths
            .insert(path.to_owned());
    }

    /// How many requests reached the token endpoint.
    pub fn token_requests(&self) -> u64 {
        self.shared.state.lock().token_requests
    }

    /// Forgets an issued access token, as an expiry or revocation would.
    pub fn expire_access_tokens(&self) {
        self.shared.state.lock().access_tokens.clear();
    }
}

fn error(status: StatusCode, message: &str, errors: &[&str]) -> Response {
    (
        status,
        Json(json!({"error": {"message": message, "code": 2001, "errors": errors}})),
    )
        .into_response()
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Rate Limit Exceeded", &[]);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            &[],
        ),
        Fault::Unavailable => error(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable", &[]),
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map(|Query(query)| query)
        .unwrap_or_default();
    let (region, path) = match uri.path().strip_prefix("/eu") {
        Some(rest) if rest.starts_with('/') => ("eu", rest.to_owned()),
        _ if uri.path().starts_with("/oauth/") => ("identity", uri.path().to_owned()),
        _ => ("us", uri.path().to_owned()),
    };
    let mut header_names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let auth_scheme = if authorization.starts_with("Token token=") {
        Some("token".to_owned())
    } else if authorization.starts_with("Bearer ") {
        Some("bearer".to_owned())
    } else {
        None
    };
    let form: Vec<(String, String)> = if path == "/oauth/token" {
        url::form_urlencoded::parse(&body)
            .into_owned()
            .map(|(name, value)| {
                let secret = ["client_secret", "code", "code_verifier", "refresh_token"]
                    .contains(&name.as_str());
                (
                    name,
                    if secret {
                        "[redacted]".to_owned()
                    } else {
                        value
                    },
                )
            })
            .collect()
    } else {
        Vec::new()
    };
    shared.requests.record(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        region: region.to_owned(),
        query: query.clone(),
        header_names,
        accept: headers
            .get(header::ACCEPT)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        auth_scheme,
        form,
    });
    if let Some(fault) = shared.faults.take(&path) {
        return fault_response(fault);
    }
    match (method.clone(), path.as_str()) {
        (Method::GET, "/oauth/authorize") => return authorize(&shared, &query),
        (Method::POST, "/oauth/token") => return token(&shared, &body),
        _ => {}
    }
    if method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed", &[]);
    }
    let account_level = {
        let state = shared.state.lock();
        let token = authorization.strip_prefix("Token token=");
        let bearer = authorization.strip_prefix("Bearer ");
        let user = token.is_some_and(|token| state.api_tokens.contains(token))
            || bearer.is_some_and(|token| state.access_tokens.contains(token));
        let account = token.is_some_and(|token| state.account_level_tokens.contains(token));
        if !user && !account {
            return error(StatusCode::UNAUTHORIZED, "Unauthorized", &[]);
        }
        if state.denied_paths.contains(&path) {
            return error(
                StatusCode::FORBIDDEN,
                "Access Denied",
                &["The request could not be completed with the provided credentials"],
            );
        }
        account
    };
    if headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        != Some(crate::client::ACCEPT)
    {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid Input Provided",
            &["Accept must be application/vnd.pagerduty+json;version=2"],
        );
    }
    route(&path, &query, account_level, region)
}

/// The base of web URLs in the fake's answers.
fn web(region: &str) -> String {
    if region == "eu" {
        format!("https://{SUBDOMAIN}.eu.pagerduty.com")
    } else {
        format!("https://{SUBDOMAIN}.pagerduty.com")
    }
}

fn reference(kind: &str, id: &str, summary: &str) -> Value {
    json!({
        "id": id, "type": format!("{kind}_reference"), "summary": summary,
        "self": format!("https://api.pagerduty.com/{kind}s/{id}"),
        "html_url": format!("{}/{kind}s/{id}", web("us")),
    })
}

fn incident(index: usize, region: &str) -> Value {
    let number = INCIDENT_COUNT - index;
    let id = if index == 0 {
        INCIDENT_ID.to_owned()
    } else {
        format!("PINC{number:03}")
    };
    let status = ["triggered", "acknowledged", "resolved"][index % 3];
    json!({
        "id": id, "type": "incident", "incident_number": number,
        "title": format!("Checkout latency above SLO #{number}"),
        "status": status, "urgency": if index % 2 == 0 { "high" } else { "low" },
        "incident_key": format!("key-{number}"),
        "created_at": format!("2026-12-05T07:{:02}:00Z", 59 - index),
        "service": reference("service", SERVICE_ID, "API Service"),
        "priority": {"id": "PSO75BM", "type": "priority", "summary": "P1"},
        "assignments": [{"at": "2026-12-05T07:00:00Z", "assignee": reference("user", "PTUXL6G", "User 123")}],
        "escalation_policy": reference("escalation_policy", "PUS0KTE", "Default"),
        "html_url": format!("{}/incidents/{id}", web(region)),
        "self": format!("https://api.pagerduty.com/incidents/{id}"),
    })
}

/// One offset page of `items` under `key`, as PagerDuty pages lists.
fn page(key: &str, items: Vec<Value>, query: &[(String, String)]) -> Response {
    let number = |name: &str, default: usize| match first_value(query, name) {
        None => Some(default),
        Some(value) => value.parse::<usize>().ok(),
    };
    let (Some(limit), Some(offset)) = (number("limit", 25), number("offset", 0)) else {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid Input Provided",
            &["limit and offset must be integers"],
        );
    };
    if !(1..=100).contains(&limit) {
        return error(
            StatusCode::BAD_REQUEST,
            "Invalid Input Provided",
            &["Limit must be between 1 and 100"],
        );
    }
    let end = items.len().min(offset.saturating_add(limit));
    let slice: Vec<Value> = items
        .get(offset.min(items.len())..end)
        .unwrap_or_default()
        .to_vec();
    let total = (first_value(query, "total") == Some("true")).then_some(items.len());
    let mut body =
        json!({"limit": limit, "offset": offset, "more": end < items.len(), "total": total});
    body[key] = Value::Array(slice);
    Json(body).into_response()
}

fn route(path: &str, query: &[(String, String)], account_level: bool, region: &str) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let incidents = || -> Vec<Value> {
        let mut list: Vec<Value> = (0..INCIDENT_COUNT)
            .map(|index| incident(index, region))
            .collect();
        let statuses: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "statuses[]")
            .map(|(_, v)| v.as_str())
            .collect();
        if !statuses.is_empty() {
            list.retain(|incident| {
                statuses.contains(&incident["status"].as_str().unwrap_or_default())
            });
        }
        list
    };
    match segments.as_slice() {
        ["users", "me"] => {
            if account_level {
                return error(StatusCode::BAD_REQUEST, ACCOUNT_LEVEL_MESSAGE, &[]);
            }
            Json(json!({"user": {
                "id": "PLH1HKV", "type": "user", "name": USER_NAME, "email": "tenex@example.com",
                "html_url": format!("{}/users/PLH1HKV", web(region)),
            }}))
            .into_response()
        }
        ["abilities"] => Json(json!({"abilities": ["teams", "urgencies", "read_only_users", "change_events"]})).into_response(),
        ["incidents"] => page("incidents", incidents(), query),
        ["incidents", id] => match incidents().into_iter().find(|incident| incident["id"] == *id) {
            Some(incident) => Json(json!({"incident": incident})).into_response(),
            None => error(StatusCode::NOT_FOUND, "Not Found", &[]),
        },
        ["incidents", id, _] if *id != INCIDENT_ID => error(StatusCode::NOT_FOUND, "Not Found", &[]),
        ["incidents", _, "alerts"] => page(
            "alerts",
            (1..=3)
                .map(|n| json!({"id": format!("PALERT{n}"), "type": "alert", "status": "triggered",
                    "alert_key": format!("alert-key-{n}"), "summary": format!("p99 latency {n}00ms"),
                    "created_at": "2026-12-05T07:59:00Z", "body": {"details": {"host": format!("web-{n}")}}}))
                .collect(),
            query,
        ),
        ["incidents", _, "log_entries"] => page(
            "log_entries",
            ["trigger_log_entry", "notify_log_entry", "acknowledge_log_entry", "annotate_log_entry", "escalate_log_entry"]
                .iter()
                .enumerate()
                .map(|(n, kind)| json!({"id": format!("PLOG{n}"), "type": kind,
                    "created_at": format!("2026-12-05T07:5{n}:00Z"), "summary": format!("{kind} entry")}))
                .collect(),
            query,
        ),
        ["incidents", _, "notes"] => Json(json!({"notes": [
            {"id": "PNOTE1", "content": "Rolled back deploy 4711", "created_at": "2026-12-05T08:01:00Z",
             "user": reference("user", "PTUXL6G", "User 123")},
            {"id": "PNOTE2", "content": "Latency back to normal", "created_at": "2026-12-05T08:10:00Z",
             "user": reference("user", "PTUXL6G", "User 123")}
        ]})).into_response(),
        ["incidents", _, "related_change_events"] => Json(json!({"change_events": [
            {"id": "PCHG1", "summary": "Deploy checkout v4711", "timestamp": "2026-12-05T07:50:00Z",
             "type": "change_event", "source": "github", "services": [reference("service", SERVICE_ID, "API Service")]}
        ]})).into_response(),
        ["services"] => page(
            "services",
            [(SERVICE_ID, "API Service"), ("PSVC002", "Checkout"), ("PSVC003", "Payments")]
                .iter()
                .map(|(id, name)| json!({"id": id, "type": "service", "name": name, "status": "active",
                    "html_url": format!("{}/services/{id}", web(region)),
                    "self": format!("https://api.pagerduty.com/services/{id}")}))
                .collect(),
            query,
        ),
        ["services", id] if *id == SERVICE_ID => Json(json!({"service": {
            "id": SERVICE_ID, "type": "service", "name": "API Service", "status": "active",
            "escalation_policy": reference("escalation_policy", "PUS0KTE", "Default"),
            "html_url": format!("{}/services/{SERVICE_ID}", web(region)),
        }})).into_response(),
        ["services", _] => error(StatusCode::NOT_FOUND, "Not Found", &[]),
        ["oncalls"] => page(
            "oncalls",
            (1..=2)
                .map(|level| json!({"escalation_level": level, "start": null, "end": null,
                    "user": reference("user", &format!("PUSER{level}"), &format!("Responder {level}")),
                    "schedule": reference("schedule", "PSCHED1", "Primary"),
                    "escalation_policy": reference("escalation_policy", "PUS0KTE", "Default")}))
                .collect(),
            query,
        ),
        ["change_events"] => page(
            "change_events",
            (1..=3)
                .map(|n| json!({"id": format!("PCHG{n}"), "type": "change_event",
                    "summary": format!("Deploy {n}"), "timestamp": "2026-12-05T07:00:00Z"}))
                .collect(),
            query,
        ),
        ["schedules"] => page(
            "schedules",
            vec![json!({"id": "PSCHED1", "type": "schedule", "name": "Primary", "time_zone": "UTC"}),
                 json!({"id": "PSCHED2", "type": "schedule", "name": "Secondary", "time_zone": "UTC"})],
            query,
        ),
        ["escalation_policies"] => page(
            "escalation_policies",
            vec![json!({"id": "PUS0KTE", "type": "escalation_policy", "name": "Default", "num_loops": 0})],
            query,
        ),
        _ => error(StatusCode::NOT_FOUND, "Not Found", &[]),
    }
}

fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response(),
    }
}

/// `GET /oauth/authorize`: Scoped OAuth needs a code challenge (S256).
fn authorize(shared: &Shared, query: &[(String, String)]) -> Response {
    let field = |name: &str| first_value(query, name).unwrap_or_default();
    if field("client_id") != CLIENT_ID {
        return (StatusCode::BAD_REQUEST, "unknown client_id").into_response();
    }
    if field("response_type") != "code" || field("redirect_uri").is_empty() {
        return (
            StatusCode::BAD_REQUEST,
            "response_type=code and redirect_uri are required",
        )
            .into_response();
    }
    if field("code_challenge").is_empty() || field("code_challenge_method") != "S256" {
        return (StatusCode::BAD_REQUEST, "PKCE (S256) is required").into_response();
    }
    let mut state = shared.state.lock();
    state.issued += 1;
    let code = format!("pdcode{:010}", state.issued);
    state.codes.insert(
        code.clone(),
        PendingCode {
            redirect_uri: field("redirect_uri").to_owned(),
            challenge: field("code_challenge").to_owned(),
            scope: field("scope").to_owned(),
        },
    );
    let mut target = url::form_urlencoded::Serializer::new(String::new());
    target.append_pair("code", &code);
    target.append_pair("state", field("state"));
    redirect(&format!("{}?{}", field("redirect_uri"), target.finish()))
}

fn oauth_error(code: &str, description: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// `POST /oauth/token`: the code (with its verifier) or a refresh token for new
/// tokens; every refresh rotates the refresh token.
fn token(shared: &Shared, body: &Bytes) -> Response {
    let fields: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let field = |name: &str| fields.get(name).map(String::as_str).unwrap_or_default();
    let mut state = shared.state.lock();
    state.token_requests += 1;
    if field("client_id") != CLIENT_ID || field("client_secret") != state.client_secret {
        return oauth_error("invalid_client", "Client authentication failed");
    }
    let scope = match field("grant_type") {
        "authorization_code" => {
            let Some(pending) = state.codes.remove(field("code")) else {
                return oauth_error(
                    "invalid_grant",
                    "The authorization code is invalid or expired",
                );
            };
            if pending.redirect_uri != field("redirect_uri") {
                return oauth_error("invalid_grant", "redirect_uri does not match");
            }
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(field("code_verifier").as_bytes()));
            if challenge != pending.challenge {
                return oauth_error(
                    "invalid_grant",
                    "code_verifier does not match the code challenge",
                );
            }
            pending.scope
        }
        "refresh_token" => {
            if state.refresh_token.as_deref() != Some(field("refresh_token")) {
                return oauth_error(
                    "invalid_grant",
                    "The refresh token is invalid or was already used",
                );
            }
            state
                .granted_scope
                .clone()
                .unwrap_or_else(|| crate::OAUTH_SCOPES.join(" "))
        }
        _ => return oauth_error("unsupported_grant_type", "grant_type is not supported"),
    };
    state.issued += 1;
    let access = format!("pdus+_0XFAKE_{:08}", state.issued);
    let refresh = format!("pdus+_1XFAKE_{:08}", state.issued);
    state.access_tokens.insert(access.clone());
    state.refresh_token = Some(refresh.clone());
    let scope = state.granted_scope.clone().unwrap_or(scope);
    Json(json!({
        "token_type": "bearer", "access_token": access, "refresh_token": refresh,
        "scope": scope, "expires_in": 86400,
    }))
    .into_response()
}

/// A Generic Webhooks (v3) delivery body for incident `incident_id` with
/// `event_type` (`incident.triggered`, `incident.resolved`...), as PagerDuty sends it.
pub fn sample_payload(event_id: &str, event_type: &str, incident_id: &str) -> Value {
    let status = match event_type {
        "incident.resolved" => "resolved",
        "incident.acknowledged" => "acknowledged",
        _ => "triggered",
    };
    json!({"event": {
        "id": event_id, "event_type": event_type, "resource_type": "incident",
        "occurred_at": "2026-12-05T08:00:00.000Z",
        "agent": {"id": "PLH1HKV", "type": "user_reference", "summary": USER_NAME},
        "client": {"name": "PagerDuty"},
        "data": {
            "id": incident_id, "type": "incident",
            "self": format!("https://api.pagerduty.com/incidents/{incident_id}"),
            "html_url": format!("{}/incidents/{incident_id}", web("us")),
            "number": 2, "status": status, "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2026-12-05T07:59:00Z", "title": "Checkout latency above SLO",
            "service": {"id": SERVICE_ID, "summary": "API Service", "type": "service_reference"},
            "assignees": [{"id": "PTUXL6G", "summary": "User 123", "type": "user_reference"}],
            "escalation_policy": {"id": "PUS0KTE", "summary": "Default", "type": "escalation_policy_reference"},
            "teams": [{"id": "PFCVPS0", "summary": "Engineering", "type": "team_reference"}],
            "priority": {"id": "PSO75BM", "summary": "P2", "type": "priority_reference"},
            "urgency": "high", "conference_bridge": null, "resolve_reason": null
        }
    }})
}

/// The `X-PagerDuty-Signature` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    sign(secret, body)
}

/// A grant as the OAuth engine hands it over for `access_token` in `region`, with
/// every scope this connector requests.
pub fn grant(access_token: &str, region: &str) -> OAuthGrant {
    let mut options = serde_json::Map::new();
    options.insert("region".to_owned(), json!(region));
    OAuthGrant {
        access_token: access_token.into(),
        refresh_token: Some("pdus+_1Xrefresh".into()),
        expires_at: None,
        scopes: crate::OAUTH_SCOPES
            .iter()
            .map(|scope| (*scope).to_owned())
            .collect(),
        token_type: Some("bearer".to_owned()),
        extra: serde_json::Map::new(),
        options,
    }
}
