//! A fake Atlassian on `127.0.0.1`, behind the `fake` feature, for this crate's
//! tests and for hosts that test with this connector.
//!
//! One server stands in for three places, told apart by path:
//! - `auth.atlassian.com`: `GET /authorize` (redirects back with a code) and
//!   `POST /oauth/token` (JSON body; authorization code and rotating refresh tokens);
//! - `api.atlassian.com`: `GET /oauth/token/accessible-resources` and the Cloud REST
//!   APIs under `/ex/confluence/{cloudId}/wiki/rest/api/…` (v1) and `…/wiki/api/v2/…`;
//! - a Data Center at the fake's own base URL: `/rest/api/…` and short links `/x/…`
//!   (answered with a redirect, as Data Center does).
//!
//! Answers follow Atlassian's documented shapes; CQL is evaluated for the clauses
//! the connector sends (`text ~`, `title ~`, `space =`, `type =`, `label in`/`=`,
//! `created`/`lastmodified >= now("-Nd")`, `AND`, `ORDER BY`), and anything else is
//! Confluence's 400 "Could not parse cql". Every request is recorded without header
//! values; a request without an accepted bearer token gets 401.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use patchbay_core::OAuthGrant;
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{first_value, BoundPort, FakeServer, FaultQueue, RequestLog};
use serde_json::{json, Value};

use crate::ConfluenceConnector;

/// A one-shot failure to inject for the next request to a path.
pub use patchbay_testkit::fake_server::HttpFault as Fault;

/// The client id the fake Atlassian app accepts.
pub const FAKE_CLIENT_ID: &str = "fake-atlassian-client-id";
/// The client secret the fake Atlassian app accepts.
pub const FAKE_CLIENT_SECRET: &str = "fake-atlassian-client-secret-5c1e";
/// The cloud id of the default site.
pub const DEFAULT_CLOUD_ID: &str = "a1b2c3d4-0000-4000-8000-00000000c0f1";
/// The URL of the default site.
pub const DEFAULT_SITE_URL: &str = "https://acme.atlassian.net";
/// How many spaces the fake holds.
pub const SPACE_COUNT: usize = 12;
/// The display name of the fake's user.
pub const USER_NAME: &str = "Ada Oncall";
/// The runbook page's id.
pub const RUNBOOK_PAGE_ID: &str = "101";
/// The postmortem page's id.
pub const POSTMORTEM_PAGE_ID: &str = "102";
/// The title of the runbook page.
pub const RUNBOOK_TITLE: &str = "Checkout service runbook";
/// How many `incident`-labelled review pages the fake holds besides the named pages.
pub const REVIEW_PAGE_COUNT: usize = 25;
/// A page id the user may not view: 403 on Cloud and Data Center.
pub const RESTRICTED_PAGE_ID: &str = "666";
/// A Data Center short link code that redirects (relatively) to the runbook.
pub const SHORT_LINK: &str = "AbC1";
/// A short link code that redirects (absolutely) to the runbook's `/display/` URL.
pub const SHORT_LINK_TO_DISPLAY: &str = "DiSp";
/// A short link code that redirects to another site.
pub const SHORT_LINK_ELSEWHERE: &str = "EvIL";

/// The runbook's storage-format body: headings, ordered steps and code macros.
pub const RUNBOOK_STORAGE: &str = r#"<h1>Checkout service runbook</h1><p>Use this when checkout returns 5xx errors.</p><ac:structured-macro ac:name="info"><ac:rich-text-body><p>Page the payments team if card payments fail.</p></ac:rich-text-body></ac:structured-macro><h2>Diagnose</h2><ol><li><p>Check the pods:</p><ac:structured-macro ac:name="code" ac:schema-version="1"><ac:parameter ac:name="language">bash</ac:parameter><ac:plain-text-body><![CDATA[$ kubectl get pods -n checkout
kubectl logs deploy/checkout -n checkout --since=10m]]></ac:plain-text-body></ac:structured-macro></li><li><p>Open the <ac:link><ri:page ri:content-title="Checkout dashboards" /></ac:link> and compare error rates.</p></li></ol><h2>Mitigate</h2><ol start="3"><li><p>Restart the deployment with <code>kubectl rollout restart deploy/checkout -n checkout</code>.</p></li><li><p>If errors continue, roll back:</p><ac:structured-macro ac:name="code"><ac:parameter ac:name="language">shell</ac:parameter><ac:plain-text-body><![CDATA[helm rollback checkout 0 -n checkout]]></ac:plain-text-body></ac:structured-macro></li></ol>"#;

/// A request the fake received, without header values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/rest/api/space`.
    pub path: String,
    /// Query pairs in order.
    pub query: Vec<(String, String)>,
    /// Lower-case header names, sorted.
    pub header_names: Vec<String>,
    /// The `Content-Type` sent, if any.
    pub content_type: Option<String>,
    /// The names of the body's JSON or form fields (never their values).
    pub body_fields: Vec<String>,
    /// The body's `grant_type`, for token requests.
    pub grant_type: Option<String>,
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

/// One site `accessible-resources` lists.
#[derive(Debug, Clone)]
pub struct FakeSite {
    /// The cloud id.
    pub id: String,
    /// The site name.
    pub name: String,
    /// The site URL.
    pub url: String,
    /// The scopes the token holds there.
    pub scopes: Vec<String>,
}

impl FakeSite {
    /// A Confluence site with the guide's scopes.
    pub fn confluence(id: &str, name: &str, url: &str) -> Self {
        Self {
            id: id.to_owned(),
            name: name.to_owned(),
            url: url.to_owned(),
            scopes: crate::OAUTH_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }
    }
}

struct Page {
    id: String,
    title: String,
    space_key: &'static str,
    labels: Vec<&'static str>,
    body: String,
    created_days_ago: i64,
    updated_days_ago: i64,
}

struct Mutable {
    sites: Vec<FakeSite>,
    accepted: BTreeSet<String>,
    codes: HashMap<String, String>,
    refresh_token: Option<String>,
    issued: u64,
    client_id: String,
    client_secret: String,
}

struct Shared {
    base_url: String,
    credential: String,
    pages: Vec<Page>,
    mutable: Mutex<Mutable>,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
}

/// A running fake Atlassian; stops when dropped.
pub struct FakeConfluence {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakeConfluence,
    hosts: ["auth.atlassian.com", "api.atlassian.com"],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

fn spaces() -> Vec<(String, String)> {
    let mut spaces = vec![
        ("OPS".to_owned(), "Operations".to_owned()),
        ("ENG".to_owned(), "Engineering".to_owned()),
        ("SRE".to_owned(), "Site Reliability".to_owned()),
    ];
    for index in spaces.len() + 1..=SPACE_COUNT {
        spaces.push((format!("S{index:02}"), format!("Space {index}")));
    }
    spaces
}

fn pages() -> Vec<Page> {
    let mut pages = vec![
        Page {
            id: RUNBOOK_PAGE_ID.to_owned(),
            title: RUNBOOK_TITLE.to_owned(),
            space_key: "OPS",
            labels: vec!["runbook"],
            body: RUNBOOK_STORAGE.to_owned(),
            created_days_ago: 400,
            updated_days_ago: 3,
        },
        Page {
            id: POSTMORTEM_PAGE_ID.to_owned(),
            title: "Postmortem: checkout outage".to_owned(),
            space_key: "OPS",
            labels: vec!["postmortem", "incident", "sev1"],
            body: "<h1>Summary</h1><p>Checkout returned 502 errors for 40 minutes after a bad deploy.</p>".to_owned(),
            created_days_ago: 30,
            updated_days_ago: 20,
        },
        Page {
            id: "103".to_owned(),
            title: "Database failover playbook".to_owned(),
            space_key: "SRE",
            labels: vec!["playbook"],
            body: "<ol><li><p>Promote the replica: <code>psql -c 'select pg_promote()'</code></p></li></ol>".to_owned(),
            created_days_ago: 200,
            updated_days_ago: 100,
        },
        Page {
            id: "104".to_owned(),
            title: "Team onboarding".to_owned(),
            space_key: "ENG",
            labels: vec![],
            body: "<p>Welcome to the team.</p>".to_owned(),
            created_days_ago: 50,
            updated_days_ago: 40,
        },
    ];
    for index in 0..REVIEW_PAGE_COUNT {
        let number = index + 1;
        let days = i64::try_from(index).unwrap_or(0) * 20 + 5;
        pages.push(Page {
            id: format!("{}", 200 + number),
            title: format!("Incident review {number}: payment latency"),
            space_key: "SRE",
            labels: vec!["incident"],
            body: format!("<p>Payment latency review number {number}.</p>"),
            created_days_ago: days,
            updated_days_ago: days,
        });
    }
    pages
}

impl FakeConfluence {
    /// Starts the fake on `127.0.0.1:0`. `credential` is accepted as a Cloud access
    /// token and as a Data Center personal access token; the OAuth flow issues it too.
    pub async fn start(credential: &str) -> Self {
        let port = BoundPort::loopback("Confluence").await;
        let shared = Arc::new(Shared {
            base_url: port.base_url(),
            credential: credential.to_owned(),
            pages: pages(),
            mutable: Mutex::new(Mutable {
                sites: vec![FakeSite::confluence(
                    DEFAULT_CLOUD_ID,
                    "acme",
                    DEFAULT_SITE_URL,
                )],
                accepted: BTreeSet::from([credential.to_owned()]),
                codes: HashMap::new(),
                refresh_token: None,
                issued: 0,
                client_id: FAKE_CLIENT_ID.to_owned(),
                client_secret: FAKE_CLIENT_SECRET.to_owned(),
            }),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = port.serve(router);
        Self { shared, server }
    }

    /// A connector whose HTTP client sends Atlassian requests to this fake
    /// (Data Center requests go to the fake's own address, which tests allow with
    /// [`FakeConfluence::connector_allowing_loopback`]).
    pub fn connector(&self) -> ConfluenceConnector {
        ConfluenceConnector::new(patchbay_testkit::http::client_for_fake(
            &self.override_spec(),
        ))
    }

    /// A connector configured as an operator would for a Data Center on loopback:
    /// upstream overrides for Atlassian's hosts and `PATCHBAY_ALLOWED_PRIVATE_NETWORKS=127.0.0.1/32`.
    pub fn connector_allowing_loopback(&self) -> ConfluenceConnector {
        let env = patchbay_core::ConnectorEnv::from_pairs([
            ("PATCHBAY_UPSTREAM_OVERRIDES", self.override_spec()),
            (
                "PATCHBAY_ALLOWED_PRIVATE_NETWORKS",
                "127.0.0.1/32".to_owned(),
            ),
            ("PATCHBAY_HTTP_MAX_RETRIES", "1".to_owned()),
        ]);
        <ConfluenceConnector as patchbay_core::FromEnv>::from_env(&env)
            .expect("the connector builds from the test environment")
    }

    /// The sites `accessible-resources` lists from now on.
    pub fn set_sites(&self, sites: Vec<FakeSite>) {
        self.lock().sites = sites;
    }

    /// The OAuth client the fake accepts from now on.
    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        let mut state = self.lock();
        state.client_id = client_id.to_owned();
        state.client_secret = client_secret.to_owned();
    }

    /// Stops accepting every token issued so far (an expired PAT, a revoked grant).
    pub fn expire_tokens(&self) {
        self.lock().accepted.clear();
    }

    /// Stops accepting the current refresh token (unused too long, or the app removed).
    pub fn revoke_refresh_token(&self) {
        self.lock().refresh_token = None;
    }

    /// The refresh token the fake would accept now (it rotates on every use).
    pub fn current_refresh_token(&self) -> Option<String> {
        self.lock().refresh_token.clone()
    }

    /// A Cloud grant as the OAuth engine hands it over, with `options`.
    pub fn grant(&self, access_token: &str, options: Value) -> OAuthGrant {
        OAuthGrant {
            access_token: access_token.into(),
            refresh_token: Some(format!("{access_token}-refresh").into()),
            expires_at: None,
            scopes: vec![crate::OAUTH_SCOPES.join(" ")],
            token_type: Some("Bearer".to_owned()),
            extra: serde_json::Map::new(),
            options: options.as_object().cloned().unwrap_or_default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.shared
            .mutable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.mutable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn is_authorized(&self, headers: &HeaderMap) -> bool {
        let Some(token) = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
        else {
            return false;
        };
        self.lock().accepted.contains(token)
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn body_fields(headers: &HeaderMap, body: &Bytes) -> (HashMap<String, String>, Vec<String>) {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|kind| kind.starts_with("application/json"));
    let fields: HashMap<String, String> = if is_json {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .filter_map(|(key, value)| value.as_str().map(|text| (key, text.to_owned())))
                .collect(),
            _ => HashMap::new(),
        }
    } else {
        url::form_urlencoded::parse(body).into_owned().collect()
    };
    let mut names: Vec<String> = fields.keys().cloned().collect();
    names.sort();
    (fields, names)
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = query_pairs(parts.uri.query());
    let (fields, field_names) = body_fields(&parts.headers, &body);
    let mut header_names: Vec<String> = parts
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();
    shared.requests.record(RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: query.clone(),
        header_names,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body_fields: field_names,
        grant_type: fields.get("grant_type").cloned(),
    });
    if let Some(fault) = shared.faults.take(&path) {
        return fault_response(fault);
    }
    match (&parts.method, path.as_str()) {
        (&Method::GET, "/authorize") => return authorize(&shared, &query),
        (&Method::POST, "/oauth/token") => return token(&shared, &fields),
        _ => {}
    }
    if parts.method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    }
    if !shared.is_authorized(&parts.headers) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"code": 401, "message": "Unauthorized; scope does not match"})),
        )
            .into_response();
    }
    if path == "/oauth/token/accessible-resources" {
        let sites = shared.lock().sites.clone();
        let sites: Vec<Value> = sites
            .iter()
            .map(|site| {
                json!({
                    "id": site.id, "name": site.name, "url": site.url, "scopes": site.scopes,
                    "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/flag.png"
                })
            })
            .collect();
        return Json(Value::Array(sites)).into_response();
    }
    if let Some(rest) = path.strip_prefix("/ex/confluence/") {
        let Some((cloud_id, rest)) = rest.split_once('/') else {
            return error(StatusCode::NOT_FOUND, "Not Found");
        };
        let known = shared.lock().sites.iter().any(|site| site.id == cloud_id);
        if !known {
            return error(StatusCode::NOT_FOUND, "Site not found");
        }
        if let Some(v1) = rest.strip_prefix("wiki/rest/api/") {
            return rest_v1(&shared, v1, &query, true);
        }
        if let Some(v2) = rest.strip_prefix("wiki/api/v2/") {
            return rest_v2(&shared, v2, &query);
        }
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    if let Some(v1) = path.strip_prefix("/rest/api/") {
        return rest_v1(&shared, v1, &query, false);
    }
    if let Some(code) = path.strip_prefix("/x/") {
        let location = match code {
            SHORT_LINK => format!("/pages/viewpage.action?pageId={RUNBOOK_PAGE_ID}"),
            SHORT_LINK_TO_DISPLAY => {
                format!("{}/display/OPS/Checkout+service+runbook", shared.base_url)
            }
            SHORT_LINK_ELSEWHERE => {
                "https://evil.example/pages/viewpage.action?pageId=1".to_owned()
            }
            _ => return error(StatusCode::NOT_FOUND, "Page not found"),
        };
        let mut response = StatusCode::FOUND.into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        return response;
    }
    error(StatusCode::NOT_FOUND, "Not Found")
}

fn authorize(shared: &Shared, query: &[(String, String)]) -> Response {
    let state = shared.lock().client_id.clone();
    let value = |name: &str| first_value(query, name);
    if value("client_id") != Some(state.as_str()) {
        return (StatusCode::BAD_REQUEST, "invalid client_id").into_response();
    }
    for (name, expected) in [
        ("response_type", "code"),
        ("audience", "api.atlassian.com"),
        ("prompt", "consent"),
    ] {
        if value(name) != Some(expected) {
            return (
                StatusCode::BAD_REQUEST,
                format!("{name} must be {expected}"),
            )
                .into_response();
        }
    }
    let scopes: Vec<&str> = value("scope").unwrap_or_default().split(' ').collect();
    if !scopes.contains(&"offline_access") {
        return (
            StatusCode::BAD_REQUEST,
            "offline_access is required for refresh tokens",
        )
            .into_response();
    }
    let (Some(redirect_uri), Some(oauth_state)) = (value("redirect_uri"), value("state")) else {
        return (
            StatusCode::BAD_REQUEST,
            "redirect_uri and state are required",
        )
            .into_response();
    };
    let code = {
        let mut state = shared.lock();
        state.issued += 1;
        let code = format!("fake-atlassian-code-{:06}", state.issued);
        state.codes.insert(code.clone(), redirect_uri.to_owned());
        code
    };
    let mut target = url::form_urlencoded::Serializer::new(String::new());
    target.append_pair("code", &code);
    target.append_pair("state", oauth_state);
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{separator}{}", target.finish());
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert(header::LOCATION, location);
            response
        }
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response(),
    }
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

/// Atlassian's token endpoint: authorization codes once, refresh tokens rotating.
fn token(shared: &Shared, fields: &HashMap<String, String>) -> Response {
    let field = |name: &str| fields.get(name).map(String::as_str);
    let mut state = shared.lock();
    if field("client_id") != Some(state.client_id.as_str())
        || field("client_secret") != Some(state.client_secret.as_str())
    {
        return oauth_error(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized");
    }
    match field("grant_type") {
        Some("authorization_code") => {
            let Some(redirect) = field("code").and_then(|code| state.codes.remove(code)) else {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "invalid_grant",
                    "Invalid authorization code",
                );
            };
            if field("redirect_uri") != Some(redirect.as_str()) {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "invalid_grant",
                    "redirect_uri does not match",
                );
            }
        }
        Some("refresh_token") => {
            if field("refresh_token").is_none()
                || field("refresh_token") != state.refresh_token.as_deref()
            {
                return oauth_error(
                    StatusCode::FORBIDDEN,
                    "invalid_grant",
                    "Unknown or invalid refresh token.",
                );
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Unsupported grant type",
            )
        }
    }
    state.issued += 1;
    let access = if field("grant_type") == Some("authorization_code") {
        shared.credential.clone()
    } else {
        format!("{}-r{}", shared.credential, state.issued)
    };
    let refresh = format!("{}-refresh-{}", shared.credential, state.issued);
    state.accepted.insert(access.clone());
    state.refresh_token = Some(refresh.clone());
    Json(json!({
        "access_token": access,
        "expires_in": 3600,
        "token_type": "Bearer",
        "refresh_token": refresh,
        "scope": crate::OAUTH_SCOPES.join(" "),
    }))
    .into_response()
}

fn number(query: &[(String, String)], name: &str, default: usize) -> Option<usize> {
    match first_value(query, name) {
        None => Some(default),
        Some(value) => value.parse().ok(),
    }
}

fn webui(page: &Page, cloud: bool) -> String {
    let title = page.title.replace(' ', "+");
    if cloud {
        format!("/spaces/{}/pages/{}/{title}", page.space_key, page.id)
    } else {
        format!("/display/{}/{title}", page.space_key)
    }
}

fn when(days_ago: i64) -> String {
    (chrono::Utc::now() - chrono::TimeDelta::days(days_ago)).to_rfc3339()
}

fn space_name(key: &str) -> String {
    spaces()
        .into_iter()
        .find(|(space, _)| space == key)
        .map_or_else(String::new, |(_, name)| name)
}

fn labels_json(page: &Page) -> Value {
    json!({"results": page.labels.iter().map(|label| json!({"prefix": "global", "name": label})).collect::<Vec<_>>()})
}

fn content_v1(page: &Page, cloud: bool, with_body: bool) -> Value {
    let mut content = json!({
        "id": page.id,
        "type": "page",
        "status": "current",
        "title": page.title,
        "space": {"key": page.space_key, "name": space_name(page.space_key)},
        "version": {"number": 3, "when": when(page.updated_days_ago)},
        "metadata": {"labels": labels_json(page)},
        "_links": {"webui": webui(page, cloud), "tinyui": "/x/AbC1"},
    });
    if with_body {
        content["body"] = json!({"storage": {"value": page.body, "representation": "storage"}});
    }
    content
}

fn rest_v1(shared: &Shared, path: &str, query: &[(String, String)], cloud: bool) -> Response {
    match path.trim_end_matches('/') {
        "user/current" => {
            if cloud {
                Json(json!({"type": "known", "accountId": "5b10a2844c20165700ede21g", "accountType": "atlassian", "displayName": USER_NAME})).into_response()
            } else {
                Json(json!({"type": "known", "username": "ada", "userKey": "ff8080815d3d6b41015d3d6d4c4c0001", "displayName": USER_NAME})).into_response()
            }
        }
        "space" => {
            let (Some(limit), Some(start)) = (number(query, "limit", 25), number(query, "start", 0)) else {
                return error(StatusCode::BAD_REQUEST, "limit and start must be numbers");
            };
            let all = spaces();
            let limit = limit.clamp(1, 500);
            let end = all.len().min(start + limit);
            let results: Vec<Value> = all[start.min(all.len())..end]
                .iter()
                .enumerate()
                .map(|(offset, (key, name))| json!({"id": 98_000 + start + offset, "key": key, "name": name, "type": "global", "_links": {"webui": format!("/display/{key}")}}))
                .collect();
            let mut links = json!({"base": shared.base_url, "context": ""});
            if end < all.len() {
                links["next"] = json!(format!("/rest/api/space?limit={limit}&start={end}"));
            }
            Json(json!({"results": results, "start": start, "limit": limit, "size": end - start.min(end), "_links": links})).into_response()
        }
        "content/search" => search(shared, query, cloud),
        "content" => {
            let space = first_value(query, "spaceKey");
            let title = first_value(query, "title");
            let results: Vec<Value> = shared
                .pages
                .iter()
                .filter(|page| space.is_none_or(|key| key == page.space_key))
                .filter(|page| title.is_none_or(|title| title == page.title))
                .map(|page| content_v1(page, cloud, false))
                .collect();
            Json(json!({"results": results, "start": 0, "limit": 25, "size": results.len()})).into_response()
        }
        other => match other.strip_prefix("content/") {
            Some(RESTRICTED_PAGE_ID) => (StatusCode::FORBIDDEN, Json(json!({"statusCode": 403, "message": "User not permitted to view page"}))).into_response(),
            Some(id) => match shared.pages.iter().find(|page| page.id == id) {
                Some(page) => {
                    let expand = first_value(query, "expand").unwrap_or_default();
                    Json(content_v1(page, cloud, expand.contains("body.storage"))).into_response()
                }
                None => (StatusCode::NOT_FOUND, Json(json!({"statusCode": 404, "message": format!("No content found with id: ContentId{{id={id}}}")}))).into_response(),
            },
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
    }
}

fn rest_v2(shared: &Shared, path: &str, query: &[(String, String)]) -> Response {
    match path.trim_end_matches('/') {
        "spaces" => {
            let Some(limit) = number(query, "limit", 25) else {
                return error(StatusCode::BAD_REQUEST, "limit must be a number");
            };
            if !(1..=250).contains(&limit) {
                return v2_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_REQUEST_PARAMETER",
                    "limit must be between 1 and 250",
                );
            }
            let start = match first_value(query, "cursor") {
                None => 0,
                Some(cursor) => match cursor
                    .strip_prefix("spaces-after-")
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    Some(start) => start,
                    None => {
                        return v2_error(
                            StatusCode::BAD_REQUEST,
                            "INVALID_REQUEST_PARAMETER",
                            "invalid cursor",
                        )
                    }
                },
            };
            let all = spaces();
            let end = all.len().min(start + limit);
            let results: Vec<Value> = all[start.min(all.len())..end]
                .iter()
                .enumerate()
                .map(|(offset, (key, name))| json!({"id": (98_000 + start + offset).to_string(), "key": key, "name": name, "type": "global", "status": "current", "_links": {"webui": format!("/spaces/{key}")}}))
                .collect();
            let mut links = json!({"base": format!("{DEFAULT_SITE_URL}/wiki")});
            if end < all.len() {
                links["next"] = json!(format!(
                    "/wiki/api/v2/spaces?cursor=spaces-after-{end}&limit={limit}"
                ));
            }
            Json(json!({"results": results, "_links": links})).into_response()
        }
        other => match other.strip_prefix("pages/") {
            Some(RESTRICTED_PAGE_ID) => v2_error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "User not permitted to view page",
            ),
            Some(id) => match shared.pages.iter().find(|page| page.id == id) {
                Some(page) => {
                    let mut answer = json!({
                        "id": page.id,
                        "status": "current",
                        "title": page.title,
                        "spaceId": format!("{}", 98_000 + spaces().iter().position(|(key, _)| key == page.space_key).unwrap_or(0)),
                        "version": {"number": 3, "createdAt": when(page.updated_days_ago)},
                        "body": {},
                        "_links": {"webui": webui(page, true), "editui": format!("/pages/resumedraft.action?draftId={}", page.id), "tinyui": "/x/AbC1"},
                    });
                    if first_value(query, "body-format") == Some("storage") {
                        answer["body"] =
                            json!({"storage": {"representation": "storage", "value": page.body}});
                    }
                    if first_value(query, "include-labels") == Some("true") {
                        answer["labels"] = labels_json(page);
                    }
                    Json(answer).into_response()
                }
                None => v2_error(StatusCode::NOT_FOUND, "NOT_FOUND", "Page not found"),
            },
            None => error(StatusCode::NOT_FOUND, "Not Found"),
        },
    }
}

fn v2_error(status: StatusCode, code: &str, title: &str) -> Response {
    (status, Json(json!({"errors": [{"status": status.as_u16(), "code": code, "title": title, "detail": null}]}))).into_response()
}

/// A CQL token.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Symbol(&'static str),
}

fn tokenize(cql: &str) -> Option<Vec<Token>> {
    let mut tokens = Vec::new();
    let mut chars = cql.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next()? {
                        '\\' => text.push(chars.next()?),
                        '"' => break,
                        other => text.push(other),
                    }
                }
                tokens.push(Token::Text(text));
            }
            '~' | '=' | '(' | ')' | ',' => {
                chars.next();
                tokens.push(Token::Symbol(match c {
                    '~' => "~",
                    '=' => "=",
                    '(' => "(",
                    ')' => ")",
                    _ => ",",
                }));
            }
            '>' => {
                chars.next();
                if chars.next()? != '=' {
                    return None;
                }
                tokens.push(Token::Symbol(">="));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_alphanumeric() || "_-.:".contains(c) {
                        word.push(c);
                        chars.next();
                    } else {
                        break;
                    }
                }
                if word.is_empty() {
                    return None;
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Some(tokens)
}

/// A parsed CQL clause.
enum Clause {
    Text(String),
    Title(String),
    Space(String),
    Type(String),
    Labels(Vec<String>),
    Created(i64),
    Modified(i64),
}

fn days_of(text: &str) -> Option<i64> {
    text.strip_prefix('-')?.strip_suffix('d')?.parse().ok()
}

fn parse_cql(cql: &str) -> Option<Vec<Clause>> {
    let tokens = tokenize(cql)?;
    let mut clauses = Vec::new();
    let mut index = 0;
    let value = |token: Option<&Token>| match token {
        Some(Token::Text(text) | Token::Word(text)) => Some(text.clone()),
        _ => None,
    };
    while index < tokens.len() {
        let Token::Word(field) = &tokens[index] else {
            return None;
        };
        let field = field.to_ascii_lowercase();
        if field == "order" {
            break;
        }
        let op = tokens.get(index + 1)?;
        index += 2;
        let clause = match (field.as_str(), op) {
            ("text", Token::Symbol("~")) => Clause::Text(value(tokens.get(index))?),
            ("title", Token::Symbol("~")) => Clause::Title(value(tokens.get(index))?),
            ("space", Token::Symbol("=")) => Clause::Space(value(tokens.get(index))?),
            ("type", Token::Symbol("=")) => Clause::Type(value(tokens.get(index))?),
            ("label", Token::Symbol("=")) => Clause::Labels(vec![value(tokens.get(index))?]),
            ("label", Token::Word(word)) if word.eq_ignore_ascii_case("in") => {
                if tokens.get(index) != Some(&Token::Symbol("(")) {
                    return None;
                }
                index += 1;
                let mut labels = Vec::new();
                loop {
                    labels.push(value(tokens.get(index))?);
                    index += 1;
                    match tokens.get(index)? {
                        Token::Symbol(",") => index += 1,
                        Token::Symbol(")") => break,
                        _ => return None,
                    }
                }
                Clause::Labels(labels)
            }
            ("created" | "lastmodified", Token::Symbol(">=")) => {
                if !value(tokens.get(index))?.eq_ignore_ascii_case("now")
                    || tokens.get(index + 1) != Some(&Token::Symbol("("))
                {
                    return None;
                }
                let days = days_of(&value(tokens.get(index + 2))?)?;
                if tokens.get(index + 3) != Some(&Token::Symbol(")")) {
                    return None;
                }
                index += 3;
                if field == "created" {
                    Clause::Created(days)
                } else {
                    Clause::Modified(days)
                }
            }
            _ => return None,
        };
        clauses.push(clause);
        index += 1;
        match tokens.get(index) {
            None => break,
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("and") => index += 1,
            Some(Token::Word(word)) if word.eq_ignore_ascii_case("order") => break,
            _ => return None,
        }
    }
    Some(clauses)
}

fn matches(page: &Page, clause: &Clause) -> bool {
    let any_word = |haystack: &str, words: &str| {
        let haystack = haystack.to_lowercase();
        words
            .to_lowercase()
            .split_whitespace()
            .filter(|word| word.len() >= 2)
            .any(|word| haystack.contains(word))
    };
    match clause {
        Clause::Text(words) => any_word(
            &format!("{} {} {}", page.title, page.body, page.labels.join(" ")),
            words,
        ),
        Clause::Title(words) => any_word(&page.title, words),
        Clause::Space(key) => page.space_key.eq_ignore_ascii_case(key),
        Clause::Type(kind) => kind == "page",
        Clause::Labels(labels) => labels
            .iter()
            .any(|label| page.labels.contains(&label.as_str())),
        Clause::Created(days) => page.created_days_ago <= *days,
        Clause::Modified(days) => page.updated_days_ago <= *days,
    }
}

fn search(shared: &Shared, query: &[(String, String)], cloud: bool) -> Response {
    let cql = first_value(query, "cql").unwrap_or_default();
    let Some(clauses) = parse_cql(cql) else {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"statusCode": 400, "message": format!("Could not parse cql : {cql}")})),
        )
            .into_response();
    };
    let Some(limit) = number(query, "limit", 25) else {
        return error(StatusCode::BAD_REQUEST, "limit must be a number");
    };
    // Confluence caps a search page at 50 results (with expansions).
    let limit = limit.clamp(1, 50);
    let start = if cloud {
        match first_value(query, "cursor") {
            None => number(query, "start", 0).unwrap_or(0),
            Some(cursor) => match cursor
                .strip_prefix("search-after-")
                .and_then(|n| n.parse().ok())
            {
                Some(start) => start,
                None => return error(StatusCode::BAD_REQUEST, "invalid cursor"),
            },
        }
    } else {
        match number(query, "start", 0) {
            Some(start) => start,
            None => return error(StatusCode::BAD_REQUEST, "start must be a number"),
        }
    };
    let mut found: Vec<&Page> = shared
        .pages
        .iter()
        .filter(|page| clauses.iter().all(|clause| matches(page, clause)))
        .collect();
    found.sort_by_key(|page| page.updated_days_ago);
    let total = found.len();
    let end = total.min(start + limit);
    let results: Vec<Value> = found[start.min(total)..end]
        .iter()
        .map(|page| content_v1(page, cloud, false))
        .collect();
    let mut links = json!({"base": if cloud { format!("{DEFAULT_SITE_URL}/wiki") } else { shared.base_url.clone() }});
    if end < total {
        let encoded: String = url::form_urlencoded::byte_serialize(cql.as_bytes()).collect();
        links["next"] = json!(if cloud {
            format!(
                "/rest/api/content/search?cql={encoded}&limit={limit}&cursor=search-after-{end}"
            )
        } else {
            format!("/rest/api/content/search?cql={encoded}&limit={limit}&start={end}")
        });
    }
    Json(json!({
        "results": results,
        "start": start,
        "limit": limit,
        "size": end - start.min(end),
        "totalSize": total,
        "cqlQuery": cql,
        "_links": links,
    }))
    .into_response()
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = error(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error"),
        Fault::Unavailable => error(StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"statusCode": status.as_u16(), "message": message})),
    )
        .into_response()
}
