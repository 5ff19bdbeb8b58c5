//! A fake OVHcloud on `127.0.0.1`, behind the `fake` feature, for this crate's tests
//! and for hosts that test with this connector.
//!
//! One server stands in for the three regions: the API of region `eu` is served
//! under `/eu/1.0` (point `OVH_EU_API_URL` there, see [`FakeOvh::api_env`]) and its
//! OAuth server under `/eu-auth` (`www.ovh.com` rewritten there by
//! [`FakeOvh::upstream_overrides`]); likewise `ca` and `us`. It answers
//! `/auth/time` from its own clock (which tests may set off from the real one),
//! verifies the `$1$` signature of every signed request with the application
//! secret, accepts bearer tokens only in the region whose OAuth server issued them,
//! runs the authorization-code flow with PKCE and rotating refresh tokens, and
//! answers errors as OVHcloud does, `{"class": ..., "message": ...}`. Requests are
//! recorded without secret values.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine as _;
use patchbay_core::ConnectorEnv;
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{
    first_value, redacted_pairs, FakeServer, FakeState, FaultQueue, RequestLog,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::client::signature;
use crate::config::ApiBases;
use crate::OvhConnector;

/// A one-shot failure to inject for the next request to a path (`/cloud/project`,
/// `/auth/oauth2/token`).
pub use patchbay_testkit::fake_server::HttpFault as Fault;

/// The regions the fake serves, by the path prefix of each.
pub const REGIONS: [&str; 3] = ["eu", "ca", "us"];
/// The Public Cloud project every account holds first.
pub const PROJECT_ID: &str = "5c7e0f2b9d1a4e3f8a6b0c1d2e3f4a5b";
/// The NIC handle `/me` reports.
pub const NICHANDLE: &str = "ab12345-ovh";
/// The Kubernetes clusters of each project.
pub const KUBE_IDS: [&str; 2] = [
    "a1b2c3d4-0000-4000-8000-000000000001",
    "a1b2c3d4-0000-4000-8000-000000000002",
];
/// The dedicated servers of the account.
pub const SERVER_NAMES: [&str; 3] = [
    "ns3001001.ip-51-68-1.eu",
    "ns3001002.ip-51-68-1.eu",
    "ns3001003.ip-51-68-1.eu",
];

/// The client id of region `region`'s OAuth client.
pub fn client_id(region: &str) -> String {
    format!("fake-ovh-{region}-client-id")
}

/// The client secret of region `region`'s OAuth client.
pub fn client_secret(region: &str) -> String {
    format!("canary-ovh-{region}-client-secret-71f3")
}

/// The access token number `n` issued in `region`.
pub fn issued_access_token(region: &str, n: usize) -> String {
    format!("canary-ovh-at-{region}-{n:04}")
}

/// The refresh token number `n` issued in `region`.
pub fn issued_refresh_token(region: &str, n: usize) -> String {
    format!("canary-ovh-rt-{region}-{n:04}")
}

/// Application-key credentials the fake accepts in every region.
#[derive(Debug, Clone)]
pub struct AppKeys {
    /// The application key (AK).
    pub application_key: String,
    /// The application secret (AS).
    pub application_secret: String,
    /// The consumer key (CK).
    pub consumer_key: String,
}

/// A request the fake received, without secret values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// `eu`, `ca` or `us`.
    pub region: String,
    /// The path without the region prefix or `/1.0`: `/cloud/project`, `/auth/oauth2/token`.
    pub path: String,
    /// Query pairs in order.
    pub query: Vec<(String, String)>,
    /// Form pairs of token requests, secret values redacted.
    pub form: Vec<(String, String)>,
    /// Lower-case header names, sorted.
    pub header_names: Vec<String>,
    /// `bearer`, `signed`, or `None` for an unauthenticated request.
    pub auth: Option<String>,
    /// The `X-Ovh-Timestamp` a signed request carried.
    pub timestamp: Option<i64>,
}

impl RecordedRequest {
    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        first_value(&self.query, name)
    }

    /// The first value of a form field (secret values read `[redacted]`).
    pub fn form_value(&self, name: &str) -> Option<&str> {
        first_value(&self.form, name)
    }

    /// Whether a header was sent (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.header_names.contains(&name.to_ascii_lowercase())
    }
}

struct Code {
    region: String,
    redirect_uri: String,
    challenge: String,
}

#[derive(Default)]
struct Tokens {
    /// Access token -> region.
    access: HashMap<String, String>,
    /// Refresh token -> region.
    refresh: HashMap<String, String>,
    codes: HashMap<String, Code>,
    issued: usize,
    token_requests: usize,
    refuse_refresh: bool,
    registered_callbacks: HashMap<String, String>,
}

struct Shared {
    base: FakeState<String>,
    keys: Option<AppKeys>,
    clock_offset: FakeState<i64>,
    project_ids: FakeState<Vec<String>>,
    tokens: FakeState<Tokens>,
    detail_delay: FakeState<Duration>,
    forbidden: FakeState<Vec<String>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
}

/// A running fake OVHcloud; stops when dropped.
pub struct FakeOvh {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakeOvh,
    hosts: ["www.ovh.com", "ca.ovh.com", "us.ovhcloud.com"],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

impl FakeOvh {
    /// Starts the fake, accepting `keys` (if any) as application-key credentials in
    /// every region, with one Public Cloud project ([`PROJECT_ID`]).
    pub async fn start(keys: Option<AppKeys>) -> Self {
        let shared = Arc::new(Shared {
            base: FakeState::new(String::new()),
            keys,
            clock_offset: FakeState::new(0),
            project_ids: FakeState::new(vec![PROJECT_ID.to_owned()]),
            tokens: FakeState::new(Tokens::default()),
            detail_delay: FakeState::new(Duration::ZERO),
            forbidden: FakeState::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("OVHcloud", router).await;
        *shared.base.lock() = server.base_url();
        Self { shared, server }
    }

    /// `PATCHBAY_UPSTREAM_OVERRIDES` sending each region's OAuth host to its prefix here.
    pub fn upstream_overrides(&self) -> String {
        let base = self.server.base_url();
        format!(
            "www.ovh.com={base}/eu-auth,ca.ovh.com={base}/ca-auth,us.ovhcloud.com={base}/us-auth"
        )
    }

    /// The environment pointing every region's API here (`OVH_<REGION>_API_URL`), with
    /// loopback allowed by the operator allowlist and the OAuth hosts rewritten.
    pub fn api_env(&self) -> Vec<(String, String)> {
        let base = self.server.base_url();
        let mut env: Vec<(String, String)> = REGIONS
            .iter()
            .map(|region| {
                (
                    format!("OVH_{}_API_URL", region.to_ascii_uppercase()),
                    format!("{base}/{region}/1.0"),
                )
            })
            .collect();
        env.push((
            "PATCHBAY_ALLOWED_PRIVATE_NETWORKS".to_owned(),
            "127.0.0.1/32".to_owned(),
        ));
        env.push((
            "PATCHBAY_UPSTREAM_OVERRIDES".to_owned(),
            self.upstream_overrides(),
        ));
        env
    }

    /// The OAuth client variables of `regions` (id, secret and redirect URI `redirect_uri`).
    pub fn client_env(regions: &[&str], redirect_uri: &str) -> Vec<(String, String)> {
        regions
            .iter()
            .flat_map(|region| {
                let upper = region.to_ascii_uppercase();
                [
                    (format!("OVH_{upper}_CLIENT_ID"), client_id(region)),
                    (format!("OVH_{upper}_CLIENT_SECRET"), client_secret(region)),
                    (format!("OVH_{upper}_REDIRECT_URI"), redirect_uri.to_owned()),
                ]
            })
            .collect()
    }

    /// A connector talking to this fake, built from [`FakeOvh::api_env`] with quick retries.
    pub fn connector(&self) -> OvhConnector {
        let env = ConnectorEnv::from_pairs(self.api_env());
        let http = patchbay_http::HttpClient::new(patchbay_http::HttpConfig {
            overrides: patchbay_http::UpstreamOverrides::parse(&self.upstream_overrides())
                .expect("overrides"),
            address_policy: patchbay_http::AddressPolicy::parse("127.0.0.1/32").expect("policy"),
            base_backoff: Duration::from_millis(5),
            max_backoff: Duration::from_millis(20),
            max_retries: 2,
            ..patchbay_http::HttpConfig::default()
        })
        .expect("client");
        let bases = ApiBases::from_env(&env, &http).expect("API bases");
        OvhConnector::with_bases(http, bases)
    }

    /// Sets the fake's clock `seconds` away from the real one (what `/auth/time` answers
    /// and what signed timestamps are checked against).
    pub fn set_clock_offset(&self, seconds: i64) {
        *self.shared.clock_offset.lock() = seconds;
    }

    /// Gives the account `count` Public Cloud projects (the first is [`PROJECT_ID`]).
    pub fn set_project_count(&self, count: usize) {
        let ids = (0..count)
            .map(|index| {
                if index == 0 {
                    PROJECT_ID.to_owned()
                } else {
                    format!("{index:032x}")
                }
            })
            .collect();
        *self.shared.project_ids.lock() = ids;
    }

    /// Makes each read of one object (a project, cluster or server) take `delay`, so
    /// concurrent reads overlap.
    pub fn set_detail_delay(&self, delay: Duration) {
        *self.shared.detail_delay.lock() = delay;
    }

    /// Answers 403 `NOT_GRANTED_CALL` to authenticated reads of `path` from now on,
    /// as OVHcloud does when IAM (or the consumer key's rules) does not allow a call.
    pub fn forbid(&self, path: &str) {
        self.shared.forbidden.lock().push(path.to_owned());
    }

    /// The most object reads that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Only `uri` is accepted as `redirect_uri` by region `region`'s client.
    pub fn register_callback(&self, region: &str, uri: &str) {
        self.shared
            .tokens
            .lock()
            .registered_callbacks
            .insert(region.to_owned(), uri.to_owned());
    }

    /// Issues an access and refresh token in `region` as a finished flow would.
    pub fn issue_tokens(&self, region: &str) -> (String, String) {
        issue(&mut self.shared.tokens.lock(), region)
    }

    /// Rejects every access token issued so far (as if they expired).
    pub fn expire_access_tokens(&self) {
        self.shared.tokens.lock().access.clear();
    }

    /// Refuses every refresh from now on with `invalid_grant`.
    pub fn refuse_refresh(&self) {
        self.shared.tokens.lock().refuse_refresh = true;
    }

    /// How many token requests (code and refresh) were answered.
    pub fn token_requests(&self) -> usize {
        self.shared.tokens.lock().token_requests
    }

    /// How many tokens pairs were issued.
    pub fn issued(&self) -> usize {
        self.shared.tokens.lock().issued
    }
}

fn issue(tokens: &mut Tokens, region: &str) -> (String, String) {
    tokens.issued += 1;
    let access = issued_access_token(region, tokens.issued);
    let refresh = issued_refresh_token(region, tokens.issued);
    tokens.access.insert(access.clone(), region.to_owned());
    tokens.refresh.insert(refresh.clone(), region.to_owned());
    (access, refresh)
}

/// The `errorCode`s the fake answers with.
#[derive(Clone, Copy)]
enum ErrorCode {
    InvalidKey,
    InvalidCredential,
    InvalidSignature,
    NotGrantedCall,
    QueryTimeOut,
}

impl ErrorCode {
    fn text(self) -> &'static str {
        match self {
            Self::InvalidKey => "INVALID_KEY",
            Self::InvalidCredential => "INVALID_CREDENTIAL",
            Self::InvalidSignature => "INVALID_SIGNATURE",
            Self::NotGrantedCall => "NOT_GRANTED_CALL",
            Self::QueryTimeOut => "QUERY_TIME_OUT",
        }
    }
}

/// An OVHcloud API error body.
fn ovh_error(status: StatusCode, class: &str, message: &str, code: Option<ErrorCode>) -> Response {
    let mut body = json!({"class": class, "message": message});
    if let Some(code) = code {
        body["errorCode"] = json!(code.text());
        body["httpCode"] = json!(format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        ));
    }
    (status, Json(body)).into_response()
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = ovh_error(
                StatusCode::TOO_MANY_REQUESTS,
                "Client::TooManyRequests",
                "Too many requests",
                None,
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => ovh_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Server::InternalServerError",
            "Internal server error",
            None,
        ),
        Fault::Unavailable => ovh_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "Server::ServiceUnavailable",
            "This service is temporarily unavailable",
            None,
        ),
    }
}

fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

fn is_secret_field(name: &str) -> bool {
    matches!(
        name,
        "client_secret" | "code" | "code_verifier" | "refresh_token"
    )
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let full_path = uri.path().to_owned();
    let mut parts = full_path.trim_start_matches('/').splitn(2, '/');
    let prefix = parts.next().unwrap_or_default().to_owned();
    let rest = format!("/{}", parts.next().unwrap_or_default());
    let (region, is_auth) = match prefix.strip_suffix("-auth") {
        Some(region) => (region.to_owned(), true),
        None => (prefix.clone(), false),
    };
    if !REGIONS.contains(&region.as_str()) {
        return ovh_error(
            StatusCode::NOT_FOUND,
            "Client::NotFound",
            "No such region prefix",
            None,
        );
    }
    let path = if is_auth {
        rest.clone()
    } else {
        rest.strip_prefix("/1.0")
            .map(str::to_owned)
            .unwrap_or(rest.clone())
    };
    let query: Vec<(String, String)> = uri
        .query()
        .map(|query| serde_urlencoded::from_str(query).unwrap_or_default())
        .unwrap_or_default();
    let form: Vec<(String, String)> = if is_auth && method == Method::POST {
        serde_urlencoded::from_bytes(&body).unwrap_or_default()
    } else {
        Vec::new()
    };
    let mut header_names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();
    let auth = if header_text(&headers, "authorization").is_some_and(|v| v.starts_with("Bearer ")) {
        Some("bearer".to_owned())
    } else if headers.contains_key("x-ovh-signature") {
        Some("signed".to_owned())
    } else {
        None
    };
    let timestamp = header_text(&headers, "x-ovh-timestamp").and_then(|text| text.parse().ok());
    shared.requests.record(RecordedRequest {
        method: method.to_string(),
        region: region.clone(),
        path: path.clone(),
        query: redacted_pairs(&query, |_| false),
        form: redacted_pairs(&form, is_secret_field),
        header_names,
        auth,
        timestamp,
    });
    if let Some(fault) = shared.faults.take(&path) {
        return fault_response(fault);
    }
    if is_auth {
        return match (method.clone(), path.as_str()) {
            (Method::GET, "/auth/oauth2/authorize") => authorize(&shared, &region, &query),
            (Method::POST, "/auth/oauth2/token") => token(&shared, &region, &form),
            _ => oauth_error(StatusCode::NOT_FOUND, "not_found", "no such endpoint"),
        };
    }
    if method != Method::GET {
        return ovh_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "Client::MethodNotAllowed",
            "Method not allowed",
            None,
        );
    }
    if path == "/auth/time" {
        return Json(now() + *shared.clock_offset.lock()).into_response();
    }
    let base = shared.base.lock().clone();
    let sent_url = format!(
        "{base}{}",
        uri.path_and_query().map_or("", |pq| pq.as_str())
    );
    if let Some(refusal) = authenticate(&shared, &region, &method, &sent_url, &headers) {
        return refusal;
    }
    if shared.forbidden.lock().contains(&path) {
        return ovh_error(
            StatusCode::FORBIDDEN,
            "Client::Forbidden",
            "This call has not been granted",
            Some(ErrorCode::NotGrantedCall),
        );
    }
    api(&shared, &path).await
}

/// `None` when the request carries a bearer token issued in `region`, or a valid
/// signature; otherwise OVHcloud's refusal.
fn authenticate(
    shared: &Shared,
    region: &str,
    method: &Method,
    sent_url: &str,
    headers: &HeaderMap,
) -> Option<Response> {
    if let Some(token) =
        header_text(headers, "authorization").and_then(|v| v.strip_prefix("Bearer "))
    {
        let tokens = shared.tokens.lock();
        return match tokens.access.get(token) {
            Some(issued_in) if issued_in == region => None,
            _ => Some(ovh_error(
                StatusCode::UNAUTHORIZED,
                "Client::Unauthorized",
                "Invalid or expired access token",
                None,
            )),
        };
    }
    let (Some(application), Some(consumer), Some(timestamp), Some(sent_signature)) = (
        header_text(headers, "x-ovh-application"),
        header_text(headers, "x-ovh-consumer"),
        header_text(headers, "x-ovh-timestamp"),
        header_text(headers, "x-ovh-signature"),
    ) else {
        return Some(ovh_error(
            StatusCode::UNAUTHORIZED,
            "Client::Unauthorized",
            "You must login first",
            None,
        ));
    };
    let Some(keys) = &shared.keys else {
        return Some(ovh_error(
            StatusCode::FORBIDDEN,
            "Client::Forbidden",
            "This application key is invalid",
            Some(ErrorCode::InvalidKey),
        ));
    };
    if application != keys.application_key {
        return Some(ovh_error(
            StatusCode::FORBIDDEN,
            "Client::Forbidden",
            "This application key is invalid",
            Some(ErrorCode::InvalidKey),
        ));
    }
    if consumer != keys.consumer_key {
        return Some(ovh_error(
            StatusCode::FORBIDDEN,
            "Client::Forbidden",
            "This credential does not exist",
            Some(ErrorCode::InvalidCredential),
        ));
    }
    let Ok(timestamp) = timestamp.parse::<i64>() else {
        return Some(ovh_error(
            StatusCode::BAD_REQUEST,
            "Client::BadRequest",
            "Invalid timestamp",
            None,
        ));
    };
    let server_now = now() + *shared.clock_offset.lock();
    if (timestamp - server_now).abs() > 60 {
        return Some(ovh_error(
            StatusCode::BAD_REQUEST,
            "Client::BadRequest",
            "Query out of time",
            Some(ErrorCode::QueryTimeOut),
        ));
    }
    let expected = signature(
        &keys.application_secret,
        &keys.consumer_key,
        method.as_str(),
        sent_url,
        "",
        timestamp,
    );
    if expected != sent_signature {
        return Some(ovh_error(
            StatusCode::BAD_REQUEST,
            "Client::BadRequest",
            "Invalid signature",
            Some(ErrorCode::InvalidSignature),
        ));
    }
    None
}

/// Counts a read of one object as in flight while it runs.
struct InFlight<'a>(&'a Shared);

impl<'a> InFlight<'a> {
    fn enter(shared: &'a Shared) -> Self {
        let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn detail(shared: &Shared, object: Value) -> Response {
    let _counted = InFlight::enter(shared);
    let delay = *shared.detail_delay.lock();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    Json(object).into_response()
}

fn not_found(what: &str) -> Response {
    ovh_error(
        StatusCode::NOT_FOUND,
        "Client::NotFound",
        &format!("This service does not exist: {what}"),
        None,
    )
}

async fn api(shared: &Shared, path: &str) -> Response {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let projects = shared.project_ids.lock().clone();
    match segments.as_slice() {
        ["me"] => Json(json!({
            "nichandle": NICHANDLE, "email": "ops@example.com", "firstname": "Ada",
            "name": "Lovelace", "country": "FR", "currency": {"code": "EUR", "symbol": "EURO"}
        }))
        .into_response(),
        ["cloud", "project"] => Json(json!(projects)).into_response(),
        ["dedicated", "server"] => Json(json!(SERVER_NAMES)).into_response(),
        ["dedicated", "server", name] => match SERVER_NAMES.iter().position(|n| n == name) {
            Some(index) => detail(
                shared,
                json!({
                    "name": name, "serverId": 1_000_001 + index, "datacenter": "gra3",
                    "state": "ok", "os": "debian12_64", "ip": format!("51.68.1.{}", 10 + index),
                    "reverse": format!("{name}."), "commercialRange": "advance-1",
                    "professionalUse": false, "monitoring": true, "powerState": "poweron",
                    "rack": "G123A01", "supportLevel": "pro", "rootDevice": null, "linkSpeed": 1000
                }),
            )
            .await,
            None => not_found(name),
        },
        ["cloud", "project", id, rest @ ..] => {
            if !projects.iter().any(|project| project == id) {
                return not_found(id);
            }
            project_api(shared, id, rest).await
        }
        _ => ovh_error(
            StatusCode::NOT_FOUND,
            "Client::NotFound",
            &format!("Got an invalid (or empty) URL: {path}"),
            None,
        ),
    }
}

async fn project_api(shared: &Shared, id: &str, rest: &[&str]) -> Response {
    match rest {
        [] => {
            detail(
                shared,
                json!({
                    "project_id": id, "projectName": format!("project-{}", &id[..6]),
                    "description": "Production", "status": "ok",
                    "creationDate": "2024-01-15T09:30:00+01:00", "planCode": "project.2018",
                    "unleash": false, "access": "full", "orderId": 123456, "manualQuota": false
                }),
            )
            .await
        }
        ["instance"] => Json(json!([
            {"id": "f0e1d2c3-0000-4000-8000-00000000000a", "name": "web-1", "status": "ACTIVE",
             "region": "GRA11", "flavorId": "b2-7", "imageId": "img-debian-12",
             "ipAddresses": [{"ip": "51.75.1.10", "type": "public", "version": 4, "networkId": "ext"}],
             "created": "2024-03-01T10:00:00Z", "monthlyBilling": null, "sshKeyId": null, "planCode": "b2-7.consumption"},
            {"id": "f0e1d2c3-0000-4000-8000-00000000000b", "name": "web-2", "status": "SHUTOFF",
             "region": "GRA11", "flavorId": "b2-7", "imageId": "img-debian-12",
             "ipAddresses": [], "created": "2024-03-02T10:00:00Z", "monthlyBilling": null},
            {"id": "f0e1d2c3-0000-4000-8000-00000000000c", "name": "db-1", "status": "ACTIVE",
             "region": "BHS5", "flavorId": "r2-30", "imageId": "img-ubuntu-22",
             "ipAddresses": [{"ip": "10.0.0.5", "type": "private", "version": 4, "networkId": "net-1"}],
             "created": "2024-03-03T10:00:00Z", "monthlyBilling": {"since": "2024-03-03T10:00:00Z", "status": "ok"}}
        ]))
        .into_response(),
        ["kube"] => Json(json!(KUBE_IDS)).into_response(),
        ["kube", kube_id] => match KUBE_IDS.iter().position(|k| k == kube_id) {
            Some(index) => {
                detail(
                    shared,
                    json!({
                        "id": kube_id, "name": format!("cluster-{}", index + 1), "region": "GRA7",
                        "version": "1.30", "status": "READY", "url": format!("{kube_id}.c1.gra7.k8s.ovh.net"),
                        "nodesUrl": format!("{kube_id}.nodes.c1.gra7.k8s.ovh.net"),
                        "updatePolicy": "ALWAYS_UPDATE", "isUpToDate": true,
                        "createdAt": "2024-02-01T08:00:00Z", "updatedAt": "2024-04-01T08:00:00Z",
                        "privateNetworkId": null, "controlPlaneIsUpToDate": true
                    }),
                )
                .await
            }
            None => not_found(kube_id),
        },
        ["database", "service"] => Json(json!([
            {"id": "d1000000-0000-4000-8000-000000000001", "description": "orders", "engine": "postgresql",
             "version": "16", "plan": "business", "status": "READY", "nodeNumber": 2,
             "flavor": "db1-7", "region": "GRA", "networkType": "public", "createdAt": "2024-02-10T08:00:00Z"},
            {"id": "d1000000-0000-4000-8000-000000000002", "description": "cache", "engine": "redis",
             "version": "7.2", "plan": "essential", "status": "READY", "nodeNumber": 1,
             "flavor": "db1-4", "region": "GRA", "networkType": "private", "createdAt": "2024-02-11T08:00:00Z"}
        ]))
        .into_response(),
        ["network", "private"] => Json(json!([
            {"id": "pn-1234567_0", "name": "Ext-Net", "vlanId": 0, "status": "ACTIVE", "type": "public",
             "regions": [{"region": "GRA11", "status": "ACTIVE", "openstackId": "os-net-0"}]},
            {"id": "pn-1234567_12", "name": "backend", "vlanId": 12, "status": "ACTIVE", "type": "private",
             "regions": [{"region": "GRA11", "status": "ACTIVE", "openstackId": "os-net-12"},
                         {"region": "BHS5", "status": "ACTIVE", "openstackId": "os-net-12b"}]}
        ]))
        .into_response(),
        ["quota"] => Json(json!([
            {"region": "GRA11",
             "instance": {"maxCores": 34, "usedCores": 6, "maxInstances": 20, "usedInstances": 2, "maxRam": 163840, "usedRAM": 14336},
             "volume": {"maxGigabytes": 10000, "usedGigabytes": 100, "volumeCount": 2, "maxVolumeCount": 100},
             "keypair": {"maxCount": 100}},
            {"region": "BHS5",
             "instance": {"maxCores": 34, "usedCores": 8, "maxInstances": 20, "usedInstances": 1, "maxRam": 163840, "usedRAM": 30720},
             "volume": {"maxGigabytes": 10000, "usedGigabytes": 0, "volumeCount": 0, "maxVolumeCount": 100},
             "keypair": {"maxCount": 100}}
        ]))
        .into_response(),
        _ => ovh_error(
            StatusCode::NOT_FOUND,
            "Client::NotFound",
            "Got an invalid (or empty) URL",
            None,
        ),
    }
}

fn authorize(shared: &Shared, region: &str, query: &[(String, String)]) -> Response {
    let value = |name: &str| first_value(query, name).unwrap_or_default().to_owned();
    if value("client_id") != client_id(region) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Unknown client_id",
        );
    }
    let redirect_uri = value("redirect_uri");
    let mut tokens = shared.tokens.lock();
    let registered = tokens.registered_callbacks.get(region).cloned();
    let allowed =
        !redirect_uri.is_empty() && registered.as_deref().is_none_or(|uri| uri == redirect_uri);
    if !allowed {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Invalid redirect_uri",
        );
    }
    if value("response_type") != "code"
        || value("code_challenge_method") != "S256"
        || value("code_challenge").is_empty()
        || value("state").is_empty()
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "response_type=code, state and an S256 code_challenge are required",
        );
    }
    let code = format!("fake-ovh-code-{region}-{}", tokens.codes.len() + 1);
    tokens.codes.insert(
        code.clone(),
        Code {
            region: region.to_owned(),
            redirect_uri: redirect_uri.clone(),
            challenge: value("code_challenge"),
        },
    );
    let mut location = url::Url::parse(&redirect_uri).expect("redirect URI");
    location
        .query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &value("state"));
    let mut response = StatusCode::FOUND.into_response();
    response.headers_mut().insert(
        header::LOCATION,
        HeaderValue::from_str(location.as_str()).expect("location"),
    );
    response
}

fn token(shared: &Shared, region: &str, form: &[(String, String)]) -> Response {
    let value = |name: &str| first_value(form, name).unwrap_or_default().to_owned();
    let mut tokens = shared.tokens.lock();
    tokens.token_requests += 1;
    if value("client_id") != client_id(region) || value("client_secret") != client_secret(region) {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "Client authentication failed",
        );
    }
    match value("grant_type").as_str() {
        "authorization_code" => {
            let Some(code) = tokens.codes.remove(&value("code")) else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Authorization code may have already been used",
                );
            };
            let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(value("code_verifier").as_bytes()));
            if code.region != region
                || code.redirect_uri != value("redirect_uri")
                || code.challenge != challenge
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "The code, redirect_uri or code_verifier does not match",
                );
            }
        }
        "refresh_token" => {
            let refresh = value("refresh_token");
            if tokens.refuse_refresh
                || tokens.refresh.get(&refresh).map(String::as_str) != Some(region)
            {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Invalid refresh token",
                );
            }
            tokens.refresh.remove(&refresh);
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "grant_type must be authorization_code or refresh_token",
            )
        }
    }
    let (access, refresh) = issue(&mut tokens, region);
    Json(json!({
        "access_token": access, "refresh_token": refresh, "token_type": "Bearer",
        "expires_in": 3600, "scope": "all"
    }))
    .into_response()
}
