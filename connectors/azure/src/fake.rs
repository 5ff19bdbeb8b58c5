//! A fake of the Microsoft identity platform and the Azure APIs the connector
//! calls, on `127.0.0.1`, behind the `fake` feature, for this crate's tests and
//! for hosts that test with this connector.
//!
//! - The v2.0 token endpoint (`/{tenant}/oauth2/v2.0/token`): client credentials,
//!   authorization code with PKCE (S256) and refresh (rotating the refresh token),
//!   with AADSTS error bodies as Microsoft documents them; `/authorize` redirects
//!   with a code, or shows an AADSTS50011 page for an unregistered reply URL.
//!   Tokens are issued per audience (Resource Manager, Graph, Log Analytics) and
//!   each API accepts only its own.
//! - Resource Manager: subscriptions (two per page, with `nextLink`), one
//!   subscription, permissions by role, Resource Graph `resources` with
//!   `$top`/`$skipToken`, metrics, the activity log and alerts (with `nextLink`),
//!   AKS managed clusters; `api-version` is required everywhere.
//! - Graph: `applications(appId='…')` with `passwordCredentials`.
//! - Log Analytics: `POST /v1/workspaces/{id}/query`.
//!
//! It records every request without header values and with secret form fields
//! redacted.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router};
use base64::Engine;
use chrono::{DateTime, Duration as TimeDelta, SecondsFormat, Utc};
use patchbay_core::OAuthGrant;
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{
    first_value, redacted_pairs, FakeServer, FakeState, FaultQueue, RequestLog,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::config::Endpoints;
use crate::AzureConnector;

/// A one-shot failure to inject for the next request to a path.
pub use patchbay_testkit::fake_server::HttpFault as Fault;

/// The directory (tenant) of the principals.
pub const TENANT_ID: &str = "31c75423-32d6-4322-88b7-c478bdde4858";
/// The tenant's verified domain, accepted in place of its id.
pub const TENANT_DOMAIN: &str = "contoso.onmicrosoft.com";
/// The main service principal's application id (Contributor by default).
pub const CLIENT_ID: &str = "6731de76-14a6-49ae-97bc-6eba6914391e";
/// The read-only principal's application id (Reader).
pub const READ_ONLY_CLIENT_ID: &str = "b9e1c7a4-2f3d-4c5e-8a6b-0d1e2f3a4b5c";
/// Patchbay's own app registration for the delegated flow.
pub const OAUTH_CLIENT_ID: &str = "0f8e2a4c-6b1d-4e3f-9a7c-5d2b8e1f3a6c";
/// That app's client secret.
pub const OAUTH_CLIENT_SECRET: &str = "canary-azure-oauth-app-secret-71c3";
/// The reply URL registered for the delegated flow.
pub const REDIRECT_URI: &str = "http://localhost:5080/azure/callback";
/// The first Enabled subscription.
pub const SUBSCRIPTION_ID: &str = "291bba3f-e0a5-47bc-a099-3bdcb2a50a05";
/// The second Enabled subscription (on the second page).
pub const SECOND_SUBSCRIPTION_ID: &str = "72ac930a-f34e-42d8-b06d-dc2a9e12ed71";
/// A Disabled subscription.
pub const DISABLED_SUBSCRIPTION_ID: &str = "0b1c2d3e-4f5a-4b6c-8d7e-9f0a1b2c3d4e";
/// The Log Analytics workspace.
pub const WORKSPACE_ID: &str = "e8a5b3c1-7d9f-4a2e-b6c4-1f3d5e7a9b0c";
/// A virtual machine whose metrics the fake serves.
pub const VM_ID: &str = "/subscriptions/291bba3f-e0a5-47bc-a099-3bdcb2a50a05/resourceGroups/prod-rg/providers/Microsoft.Compute/virtualMachines/web-01";
/// How many resources Resource Graph holds.
pub const RESOURCE_COUNT: usize = 25;
/// How many activity-log events the subscription has.
pub const ACTIVITY_COUNT: usize = 7;
/// How many alerts the subscription has.
pub const ALERT_COUNT: usize = 4;
/// How many AKS clusters the subscription has.
pub const CLUSTER_COUNT: usize = 3;

/// A principal's role on the subscriptions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// No role: sees no subscription.
    None,
    /// `*/read`.
    Reader,
    /// `*` (without authorization writes).
    Contributor,
    /// Sees the subscription but may only start virtual machines (no `*/read`).
    ActionsOnly,
}

/// A request the fake received, without header values and with secrets redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/subscriptions`.
    pub path: String,
    /// Query pairs in order.
    pub query: Vec<(String, String)>,
    /// Form pairs of token requests, secrets redacted.
    pub form: Vec<(String, String)>,
    /// The JSON body of POST requests (never secret here).
    pub json: Option<Value>,
    /// Lower-case header names, sorted.
    pub header_names: Vec<String>,
}

impl RecordedRequest {
    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        first_value(&self.query, name)
    }

    /// The first value of a form field.
    pub fn form_value(&self, name: &str) -> Option<&str> {
        first_value(&self.form, name)
    }
}

#[derive(Debug, Clone)]
struct PrincipalState {
    secret: String,
    role: Role,
    secret_end: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Aud {
    Arm,
    Graph,
    LogAnalytics,
}

#[derive(Debug, Clone)]
enum Who {
    Principal(String),
    User,
}

#[derive(Debug, Clone)]
struct Issued {
    who: Who,
    aud: Aud,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct PendingCode {
    challenge: String,
    redirect_uri: String,
}

#[derive(Debug)]
struct World {
    principals: HashMap<String, PrincipalState>,
    tokens: HashMap<String, Issued>,
    codes: HashMap<String, PendingCode>,
    refresh_tokens: HashSet<String>,
    issued: Vec<String>,
    counter: u64,
    subscriptions: Vec<(String, String, String)>,
    registered_redirects: Vec<String>,
    graph_readable: bool,
    consent_missing: bool,
    token_lifetime: i64,
}

struct Shared {
    world: FakeState<World>,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
    base_url: FakeState<String>,
}

/// A running fake of Entra ID and the Azure APIs; stops when dropped.
pub struct FakeAzure {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakeAzure,
    hosts: ["login.microsoftonline.com", "management.azure.com", "graph.microsoft.com", "api.loganalytics.io"],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

impl FakeAzure {
    /// Starts the fake on `127.0.0.1:0` with the main principal (secret `secret`,
    /// Contributor, secret valid for a year) and the read-only principal (secret
    /// `read_only_secret`, Reader).
    pub async fn start(secret: &str, read_only_secret: &str) -> Self {
        let now = Utc::now();
        let principals = HashMap::from([
            (
                CLIENT_ID.to_owned(),
                PrincipalState {
                    secret: secret.to_owned(),
                    role: Role::Contributor,
                    secret_end: now + TimeDelta::days(365),
                },
            ),
            (
                READ_ONLY_CLIENT_ID.to_owned(),
                PrincipalState {
                    secret: read_only_secret.to_owned(),
                    role: Role::Reader,
                    secret_end: now + TimeDelta::days(365),
                },
            ),
        ]);
        let shared = Arc::new(Shared {
            world: FakeState::new(World {
                principals,
                tokens: HashMap::new(),
                codes: HashMap::new(),
                refresh_tokens: HashSet::new(),
                issued: Vec::new(),
                counter: 0,
                subscriptions: vec![
                    (
                        SUBSCRIPTION_ID.to_owned(),
                        "Production".to_owned(),
                        "Enabled".to_owned(),
                    ),
                    (
                        DISABLED_SUBSCRIPTION_ID.to_owned(),
                        "Old sandbox".to_owned(),
                        "Disabled".to_owned(),
                    ),
                    (
                        SECOND_SUBSCRIPTION_ID.to_owned(),
                        "Staging".to_owned(),
                        "Enabled".to_owned(),
                    ),
                ],
                registered_redirects: vec![REDIRECT_URI.to_owned()],
                graph_readable: true,
                consent_missing: false,
                token_lifetime: 3599,
            }),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
            base_url: FakeState::new(String::new()),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("Microsoft Azure", router).await;
        *shared.base_url.lock() = server.base_url();
        Self { shared, server }
    }

    /// Endpoints that send every Azure API to this fake.
    pub fn endpoints(&self) -> Endpoints {
        Endpoints::all_at(&self.base_url())
    }

    /// The operator variables that point the connector at this fake (with the
    /// loopback allowlist they need).
    pub fn env_vars(&self) -> Vec<(&'static str, String)> {
        let base = self.base_url();
        vec![
            (crate::config::AUTHORITY_VAR, base.clone()),
            (crate::config::ARM_VAR, base.clone()),
            (crate::config::GRAPH_VAR, base.clone()),
            (crate::config::LOG_ANALYTICS_VAR, base),
            (
                "PATCHBAY_ALLOWED_PRIVATE_NETWORKS",
                "127.0.0.1/32".to_owned(),
            ),
        ]
    }

    /// A connector whose HTTP client retries fast (as in every connector test)
    /// and whose endpoints are all this fake.
    /// Delegated Log Analytics tokens go to the fixed sign-in host, which is sent
    /// here through the upstream override.
    pub fn connector(&self) -> AzureConnector {
        AzureConnector::new(
            patchbay_testkit::http::client_for_fake(
                &self.server.override_for("login.microsoftonline.com"),
            ),
            self.endpoints(),
        )
        .with_oauth_client(OAUTH_CLIENT_ID, OAUTH_CLIENT_SECRET.into())
    }

    /// A connector built from [`FakeAzure::env_vars`], as a host builds it.
    pub fn connector_from_env(&self) -> AzureConnector {
        let mut env = patchbay_core::ConnectorEnv::default();
        for (name, value) in self.env_vars() {
            env.set(name, value);
        }
        <AzureConnector as patchbay_core::FromEnv>::from_env(&env)
            .expect("the connector builds from the fake's variables")
    }

    fn world(&self) -> std::sync::MutexGuard<'_, World> {
        self.shared.world.lock()
    }

    /// Sets a principal's role.
    pub fn set_role(&self, client_id: &str, role: Role) {
        if let Some(principal) = self.world().principals.get_mut(client_id) {
            principal.role = role;
        }
    }

    /// Sets when a principal's client secret expires.
    pub fn set_secret_expiry(&self, client_id: &str, end: DateTime<Utc>) {
        if let Some(principal) = self.world().principals.get_mut(client_id) {
            principal.secret_end = end;
        }
    }

    /// Replaces the subscriptions: `(id, display name, state)`.
    pub fn set_subscriptions(&self, subscriptions: &[(&str, &str, &str)]) {
        self.world().subscriptions = subscriptions
            .iter()
            .map(|(id, name, state)| ((*id).to_owned(), (*name).to_owned(), (*state).to_owned()))
            .collect();
    }

    /// Whether Graph lets principals read their app registration.
    pub fn set_graph_readable(&self, readable: bool) {
        self.world().graph_readable = readable;
    }

    /// Whether token requests fail for missing admin consent (AADSTS65001).
    pub fn set_consent_missing(&self, missing: bool) {
        self.world().consent_missing = missing;
    }

    /// Replaces the reply URLs registered for the delegated flow.
    pub fn set_registered_redirects(&self, uris: &[&str]) {
        self.world().registered_redirects = uris.iter().map(|uri| (*uri).to_owned()).collect();
    }

    /// How long issued access tokens live, in seconds.
    pub fn set_token_lifetime(&self, seconds: i64) {
        self.world().token_lifetime = seconds;
    }

    /// Revokes every refresh token (as signing the user out everywhere does).
    pub fn revoke_refresh_tokens(&self) {
        self.world().refresh_tokens.clear();
    }

    /// Makes every issued access token expired (Azure answers 401 to them).
    pub fn expire_tokens(&self) {
        let past = Utc::now() - TimeDelta::seconds(1);
        for issued in self.world().tokens.values_mut() {
            issued.expires_at = past;
        }
    }

    /// Every access and refresh token issued so far, for canary scans.
    pub fn issued_tokens(&self) -> Vec<String> {
        self.world().issued.clone()
    }

    /// The token requests received so far.
    pub fn token_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|request| request.path.ends_with("/oauth2/v2.0/token"))
            .collect()
    }
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An Entra error body as Microsoft documents it.
fn aadsts(status: StatusCode, error: &str, code: u64, message: &str) -> Response {
    let trace = "0000aaaa-11bb-cccc-dd22-eeeeee333333";
    let correlation = "aaaa0000-bb11-2222-33cc-444444dddddd";
    let timestamp = Utc::now().format("%Y-%m-%d %H:%M:%SZ").to_string();
    (
        status,
        Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {message}\r\nTrace ID: {trace}\r\nCorrelation ID: {correlation}\r\nTimestamp: {timestamp}"),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        })),
    )
        .into_response()
}

/// An ARM/Graph-style `{"error": {"code", "message"}}` body.
fn api_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn pairs(text: Option<&str>) -> Vec<(String, String)> {
    text.map(|text| {
        url::form_urlencoded::parse(text.as_bytes())
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect()
    })
    .unwrap_or_default()
}

fn is_secret_field(name: &str) -> bool {
    matches!(
        name,
        "client_secret" | "code" | "code_verifier" | "refresh_token" | "client_assertion"
    )
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = pairs(uri.query());
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/x-www-form-urlencoded"));
    let form = if is_form {
        pairs(std::str::from_utf8(&body).ok())
    } else {
        Vec::new()
    };
    let json_body: Option<Value> = if is_form {
        None
    } else {
        serde_json::from_slice(&body).ok()
    };
    let mut header_names: Vec<String> = headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();
    let path = uri.path().to_owned();
    shared.requests.record(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        form: redacted_pairs(&form, is_secret_field),
        json: json_body.clone(),
        header_names,
    });
    if let Some(fault) = shared.faults.take(&path) {
        return fault_response(fault);
    }
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    // The identity platform.
    if segments.len() == 4 && segments[1] == "oauth2" && segments[2] == "v2.0" {
        return match (segments[3], &method) {
            ("token", &Method::POST) => token(&shared, segments[0], &form),
            ("authorize", &Method::GET) => authorize(&shared, &query),
            _ => api_error(StatusCode::NOT_FOUND, "NotFound", "no such endpoint"),
        };
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::to_owned);
    // Graph.
    if segments.first() == Some(&"v1.0") {
        return graph(&shared, bearer.as_deref(), &segments);
    }
    // Log Analytics.
    if segments.first() == Some(&"v1") && segments.get(1) == Some(&"workspaces") {
        return log_analytics(
            &shared,
            bearer.as_deref(),
            &segments,
            &method,
            json_body.as_ref(),
        );
    }
    arm(
        &shared,
        bearer.as_deref(),
        &method,
        &path,
        &segments,
        &query,
        json_body.as_ref(),
    )
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = api_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "The request is throttled. Please try again after some time.",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Encountered internal server error. Diagnostic information: timestamp '20240501T120000Z'.",
        ),
        Fault::Unavailable => api_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable.",
        ),
    }
}

fn new_token(world: &mut World, prefix: &str) -> String {
    world.counter += 1;
    let token = format!("{prefix}.fake-azure-{:08}", world.counter);
    world.issued.push(token.clone());
    token
}

fn issue(world: &mut World, who: Who, aud: Aud) -> (String, i64) {
    let prefix = match aud {
        Aud::Arm => "eyJarm",
        Aud::Graph => "eyJgraph",
        Aud::LogAnalytics => "eyJla",
    };
    let token = new_token(world, prefix);
    let lifetime = world.token_lifetime;
    world.tokens.insert(
        token.clone(),
        Issued {
            who,
            aud,
            expires_at: Utc::now() + TimeDelta::seconds(lifetime),
        },
    );
    (token, lifetime)
}

fn audience_of(scope: &str) -> Option<Aud> {
    let resource = scope
        .split_whitespace()
        .find(|scope| !matches!(*scope, "offline_access" | "openid" | "profile" | "email"))?;
    if resource.starts_with("https://management.azure.com/") {
        Some(Aud::Arm)
    } else if resource.starts_with("https://graph.microsoft.com/") {
        Some(Aud::Graph)
    } else if resource.starts_with("https://api.loganalytics.io/") {
        Some(Aud::LogAnalytics)
    } else {
        None
    }
}

fn token(shared: &Shared, tenant: &str, form: &[(String, String)]) -> Response {
    let field = |name: &str| first_value(form, name).unwrap_or_default();
    let mut world = shared.world.lock();
    let tenant = tenant.to_ascii_lowercase();
    let tenant_known = tenant == TENANT_ID || tenant == TENANT_DOMAIN || tenant == "organizations";
    let client_id = field("client_id").to_ascii_lowercase();
    match field("grant_type") {
        "client_credentials" => {
            if !tenant_known {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    90002,
                    &format!("Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."),
                );
            }
            let Some(principal) = world.principals.get(&client_id).cloned() else {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    700016,
                    &format!("Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant."),
                );
            };
            if principal.secret != field("client_secret") {
                return aadsts(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
                );
            }
            if principal.secret_end <= Utc::now() {
                return aadsts(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000222,
                    &format!("The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."),
                );
            }
            if world.consent_missing {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    65001,
                    &format!("The user or administrator has not consented to use the application with ID '{client_id}' named 'Patchbay'. Send an interactive authorization request for this user and resource."),
                );
            }
            let scope = field("scope");
            let Some(aud) = audience_of(scope).filter(|_| scope.ends_with("/.default")) else {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    70011,
                    &format!("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
                );
            };
            let (access, lifetime) = issue(&mut world, Who::Principal(client_id), aud);
            Json(json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access,
            }))
            .into_response()
        }
        grant @ ("authorization_code" | "refresh_token") => {
            if client_id != OAUTH_CLIENT_ID {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "unauthorized_client",
                    700016,
                    &format!("Application with identifier '{client_id}' was not found in the directory 'organizations'."),
                );
            }
            if field("client_secret") != OAUTH_CLIENT_SECRET {
                return aadsts(
                    StatusCode::UNAUTHORIZED,
                    "invalid_client",
                    7000215,
                    &format!("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{client_id}'."),
                );
            }
            if world.consent_missing {
                return aadsts(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    65001,
                    &format!("The user or administrator has not consented to use the application with ID '{client_id}' named 'Patchbay'. Send an interactive authorization request for this user and resource."),
                );
            }
            let aud = if grant == "authorization_code" {
                let redirect = field("redirect_uri");
                if !world.registered_redirects.iter().any(|uri| uri == redirect) {
                    return aadsts(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        50011,
                        &format!("The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application '{client_id}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal."),
                    );
                }
                let Some(pending) = world.codes.remove(field("code")) else {
                    return aadsts(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        70008,
                        "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
                    );
                };
                if pending.redirect_uri != redirect {
                    return aadsts(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        500112,
                        "The reply address does not match the reply address provided when requesting Authorization code.",
                    );
                }
                let verifier = field("code_verifier");
                let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                if verifier.is_empty() || computed != pending.challenge {
                    return aadsts(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        501481,
                        "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
                    );
                }
                Aud::Arm
            } else {
                let presented = field("refresh_token").to_owned();
                // Microsoft keeps a refresh token valid after it is used.
                if !world.refresh_tokens.contains(&presented) {
                    return aadsts(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        700082,
                        "The refresh token has expired due to inactivity. The token was issued on 2024-01-01T00:00:00Z and was inactive for 90.00:00:00.",
                    );
                }
                let scope = field("scope");
                if scope.is_empty() {
                    Aud::Arm
                } else {
                    match audience_of(scope) {
                        Some(aud) => aud,
                        None => {
                            return aadsts(
                                StatusCode::BAD_REQUEST,
                                "invalid_scope",
                                70011,
                                &format!("The provided value for the input parameter 'scope' is not valid. The scope {scope} is not valid."),
                            )
                        }
                    }
                }
            };
            let (access, lifetime) = issue(&mut world, Who::User, aud);
            let refresh = new_token(&mut world, "0.AXfake-refresh");
            world.refresh_tokens.insert(refresh.clone());
            Json(json!({
                "token_type": "Bearer",
                "scope": "https://management.azure.com/user_impersonation",
                "expires_in": lifetime,
                "ext_expires_in": lifetime,
                "access_token": access,
                "refresh_token": refresh,
            }))
            .into_response()
        }
        other => aadsts(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
    }
}

fn authorize(shared: &Shared, query: &[(String, String)]) -> Response {
    let field = |name: &str| first_value(query, name).unwrap_or_default();
    let mut world = shared.world.lock();
    let redirect = field("redirect_uri").to_owned();
    if field("client_id") != OAUTH_CLIENT_ID {
        return (
            StatusCode::BAD_REQUEST,
            Html(format!("<p>AADSTS700016: Application with identifier '{}' was not found in the directory.</p>", field("client_id"))),
        )
            .into_response();
    }
    if !world.registered_redirects.contains(&redirect) {
        // Microsoft shows this on its own page: it never redirects to an unregistered URL.
        return (
            StatusCode::BAD_REQUEST,
            Html(format!("<p>AADSTS50011: The redirect URI '{redirect}' specified in the request does not match the redirect URIs configured for the application.</p>")),
        )
            .into_response();
    }
    let location = |params: &[(&str, &str)]| {
        let mut url = url::Url::parse(&redirect).expect("registered redirect URIs parse");
        url.query_pairs_mut().extend_pairs(params);
        let mut response = StatusCode::FOUND.into_response();
        response.headers_mut().insert(
            header::LOCATION,
            HeaderValue::from_str(url.as_str()).expect("a URL is a header value"),
        );
        response
    };
    let state = field("state").to_owned();
    let scope = field("scope");
    if field("response_type") != "code"
        || field("code_challenge_method") != "S256"
        || field("code_challenge").is_empty()
        || !scope
            .split_whitespace()
            .any(|s| s == "https://management.azure.com/user_impersonation")
        || !scope.split_whitespace().any(|s| s == "offline_access")
    {
        return location(&[
            ("error", "invalid_request"),
            (
                "error_description",
                "AADSTS90014: The request is missing a required parameter or a scope.",
            ),
            ("state", &state),
        ]);
    }
    world.counter += 1;
    let code = format!("0.AXfake-code-{:08}", world.counter);
    world.issued.push(code.clone());
    world.codes.insert(
        code.clone(),
        PendingCode {
            challenge: field("code_challenge").to_owned(),
            redirect_uri: redirect.clone(),
        },
    );
    location(&[
        ("code", &code),
        ("state", &state),
        ("session_state", "fake-session"),
    ])
}

/// Who a bearer token is, when it is a live token for `aud`; the refusal otherwise.
fn authorize_bearer(shared: &Shared, bearer: Option<&str>, aud: Aud) -> Result<Who, Box<Response>> {
    let world = shared.world.lock();
    let Some(issued) = bearer.and_then(|token| world.tokens.get(token)) else {
        return Err(Box::new(api_error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            "The access token is invalid.",
        )));
    };
    if issued.aud != aud {
        let status = if aud == Aud::LogAnalytics {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        return Err(Box::new(api_error(
            status,
            "InvalidAuthenticationTokenAudience",
            "The access token has been obtained for wrong audience or resource.",
        )));
    }
    if issued.expires_at <= Utc::now() {
        return Err(Box::new(api_error(
            StatusCode::UNAUTHORIZED,
            "ExpiredAuthenticationToken",
            "The access token expiry UTC time is earlier than current UTC time.",
        )));
    }
    Ok(issued.who.clone())
}

fn role_of(shared: &Shared, who: &Who) -> Role {
    match who {
        Who::User => Role::Contributor,
        Who::Principal(client_id) => shared
            .world
            .lock()
            .principals
            .get(client_id)
            .map_or(Role::None, |principal| principal.role),
    }
}

fn forbidden(who: &Who, action: &str, scope: &str) -> Response {
    let client = match who {
        Who::Principal(id) => id.clone(),
        Who::User => "user@contoso.onmicrosoft.com".to_owned(),
    };
    api_error(
        StatusCode::FORBIDDEN,
        "AuthorizationFailed",
        &format!("The client '{client}' with object id '{client}' does not have authorization to perform action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials."),
    )
}

/// A page link back to this fake with `$skiptoken` set.
fn next_link(shared: &Shared, path: &str, query: &[(String, String)], skip: usize) -> String {
    let base = shared.base_url.lock().clone();
    let mut url = url::Url::parse(&format!("{base}{path}")).expect("fake URLs parse");
    {
        let mut pairs = url.query_pairs_mut();
        for (name, value) in query.iter().filter(|(name, _)| name != "$skiptoken") {
            pairs.append_pair(name, value);
        }
        pairs.append_pair("$skiptoken", &skip.to_string());
    }
    url.to_string()
}

fn page(
    shared: &Shared,
    path: &str,
    query: &[(String, String)],
    items: Vec<Value>,
    size: usize,
) -> Response {
    let skip = first_value(query, "$skiptoken")
        .and_then(|skip| skip.parse::<usize>().ok())
        .unwrap_or(0);
    let end = items.len().min(skip + size);
    let slice: Vec<Value> = items
        .get(skip..end)
        .map(<[Value]>::to_vec)
        .unwrap_or_default();
    let mut body = json!({"value": slice});
    if end < items.len() {
        body["nextLink"] = json!(next_link(shared, path, query, end));
    }
    Json(body).into_response()
}

#[allow(clippy::too_many_arguments)]
fn arm(
    shared: &Shared,
    bearer: Option<&str>,
    method: &Method,
    path: &str,
    segments: &[&str],
    query: &[(String, String)],
    body: Option<&Value>,
) -> Response {
    let Some(api_version) = first_value(query, "api-version") else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    };
    let who = match authorize_bearer(shared, bearer, Aud::Arm) {
        Ok(who) => who,
        Err(refusal) => return *refusal,
    };
    let role = role_of(shared, &who);
    let subscriptions = shared.world.lock().subscriptions.clone();
    let visible =
        |id: &str| role != Role::None && subscriptions.iter().any(|(sub, _, _)| sub == id);
    let subscription_json = |(id, name, state): &(String, String, String)| {
        json!({
            "id": format!("/subscriptions/{id}"),
            "subscriptionId": id,
            "tenantId": TENANT_ID,
            "displayName": name,
            "state": state,
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
            "authorizationSource": "RoleBased",
        })
    };
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    match (method, lower.as_slice()) {
        (&Method::GET, ["subscriptions"]) => {
            if api_version != crate::SUBSCRIPTIONS_API {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidApiVersionParameter",
                    "The api-version is invalid.",
                );
            }
            let items: Vec<Value> = if role == Role::None {
                Vec::new()
            } else {
                subscriptions.iter().map(subscription_json).collect()
            };
            page(shared, path, query, items, 2)
        }
        (&Method::GET, ["subscriptions", id]) => {
            match subscriptions.iter().find(|(sub, _, _)| sub == id) {
                Some(subscription) if role != Role::None => {
                    Json(subscription_json(subscription)).into_response()
                }
                _ => api_error(
                    StatusCode::NOT_FOUND,
                    "SubscriptionNotFound",
                    &format!("The subscription '{id}' could not be found."),
                ),
            }
        }
        (
            &Method::GET,
            ["subscriptions", id, "providers", "microsoft.authorization", "permissions"],
        ) => {
            if !visible(id) {
                return forbidden(
                    &who,
                    "Microsoft.Authorization/permissions/read",
                    &format!("/subscriptions/{id}"),
                );
            }
            let permissions = match role {
                Role::Contributor => {
                    json!({"actions": ["*"], "notActions": ["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write", "Microsoft.Authorization/elevateAccess/Action"], "dataActions": [], "notDataActions": []})
                }
                Role::ActionsOnly => {
                    json!({"actions": ["Microsoft.Compute/virtualMachines/start/action"], "notActions": [], "dataActions": [], "notDataActions": []})
                }
                _ => {
                    json!({"actions": ["*/read"], "notActions": [], "dataActions": [], "notDataActions": []})
                }
            };
            page(shared, path, query, vec![permissions], 10)
        }
        (&Method::POST, ["providers", "microsoft.resourcegraph", "resources"]) => {
            resource_graph(&who, role, body)
        }
        (
            &Method::GET,
            ["subscriptions", id, "providers", "microsoft.insights", "eventtypes", "management", "values"],
        ) => {
            if !visible(id) {
                return forbidden(
                    &who,
                    "Microsoft.Insights/eventtypes/values/Read",
                    &format!("/subscriptions/{id}"),
                );
            }
            let filter = first_value(query, "$filter").unwrap_or_default();
            if !filter.contains("eventTimestamp ge '") {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The $filter query parameter must contain an eventTimestamp range.",
                );
            }
            let events: Vec<Value> = (0..ACTIVITY_COUNT)
                .map(|index| activity_event(id, index))
                .collect();
            page(shared, path, query, events, 3)
        }
        (
            &Method::GET,
            ["subscriptions", id, "providers", "microsoft.alertsmanagement", "alerts"],
        ) => {
            if !visible(id) {
                return forbidden(
                    &who,
                    "Microsoft.AlertsManagement/alerts/read",
                    &format!("/subscriptions/{id}"),
                );
            }
            let size = first_value(query, "pageCount")
                .and_then(|n| n.parse().ok())
                .unwrap_or(25usize);
            if !(1..=250).contains(&size) {
                return api_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "pageCount must be between 1 and 250.",
                );
            }
            let state = first_value(query, "alertState");
            let severity = first_value(query, "severity");
            let alerts: Vec<Value> = (0..ALERT_COUNT)
                .map(|index| alert(id, index))
                .filter(|alert| {
                    state.is_none_or(|state| {
                        alert.pointer("/properties/essentials/alertState") == Some(&json!(state))
                    })
                })
                .filter(|alert| {
                    severity.is_none_or(|severity| {
                        alert.pointer("/properties/essentials/severity") == Some(&json!(severity))
                    })
                })
                .collect();
            page(shared, path, query, alerts, size)
        }
        (
            &Method::GET,
            ["subscriptions", id, "providers", "microsoft.containerservice", "managedclusters"],
        )
        | (
            &Method::GET,
            ["subscriptions", id, "resourcegroups", _, "providers", "microsoft.containerservice", "managedclusters"],
        ) => {
            if !visible(id) {
                return forbidden(
                    &who,
                    "Microsoft.ContainerService/managedClusters/read",
                    &format!("/subscriptions/{id}"),
                );
            }
            let clusters: Vec<Value> = (0..CLUSTER_COUNT).map(|index| cluster(id, index)).collect();
            page(shared, path, query, clusters, 2)
        }
        (&Method::GET, [.., "providers", "microsoft.insights", "metrics"])
            if lower.first() == Some(&"subscriptions") =>
        {
            let id = segments.get(1).copied().unwrap_or_default();
            if !visible(id) {
                return forbidden(
                    &who,
                    "Microsoft.Insights/metrics/read",
                    &path.replace("/providers/Microsoft.Insights/metrics", ""),
                );
            }
            metrics(path, query)
        }
        _ => api_error(
            StatusCode::NOT_FOUND,
            "InvalidResourceType",
            &format!("The resource type could not be found for path '{path}'."),
        ),
    }
}

fn resource_graph(who: &Who, role: Role, body: Option<&Value>) -> Response {
    let Some(body) = body else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body is missing.",
        );
    };
    if role == Role::None {
        return forbidden(who, "Microsoft.ResourceGraph/resources/read", "/");
    }
    let query = body
        .get("query")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if query.trim().is_empty() || query.contains("syntaxerror") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {
                "code": "BadRequest",
                "message": "Please provide below info when asking for support: timestamp = 2024-05-01T12:00:00Z, correlationId = aaaa0000-bb11-2222-33cc-444444dddddd.",
                "details": [{"code": "InvalidQuery", "message": "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying."}]
            }})),
        )
            .into_response();
    }
    let top = body
        .pointer("/options/$top")
        .and_then(Value::as_u64)
        .unwrap_or(100) as usize;
    if !(1..=1000).contains(&top) {
        return api_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "$top must be between 1 and 1000.",
        );
    }
    let skip = body
        .pointer("/options/$skipToken")
        .and_then(Value::as_str)
        .and_then(|token| token.strip_prefix("ew0KfakeSkip"))
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let oversized = query.contains("oversized");
    let total = if oversized { 1000 } else { RESOURCE_COUNT };
    let end = total.min(skip + top);
    let rows: Vec<Value> = (skip..end)
        .map(|index| {
            let mut row = json!({
                "id": format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/prod-rg/providers/Microsoft.Compute/virtualMachines/vm-{index:02}"),
                "name": format!("vm-{index:02}"),
                "type": "microsoft.compute/virtualmachines",
                "location": "westeurope",
                "resourceGroup": "prod-rg",
                "subscriptionId": SUBSCRIPTION_ID,
            });
            if oversized {
                row["tags"] = json!({"description": "x".repeat(2000)});
            }
            row
        })
        .collect();
    let mut answer = json!({
        "totalRecords": total,
        "count": rows.len(),
        "data": rows,
        "facets": [],
        "resultTruncated": "false",
    });
    if end < total {
        answer["$skipToken"] = json!(format!("ew0KfakeSkip{end}"));
    }
    Json(answer).into_response()
}

fn activity_event(subscription: &str, index: usize) -> Value {
    let time = Utc::now() - TimeDelta::minutes(10 * (index as i64 + 1));
    json!({
        "authorization": {"action": "Microsoft.Compute/virtualMachines/restart/action", "scope": VM_ID},
        "caller": "oncall@contoso.com",
        "category": {"value": "Administrative", "localizedValue": "Administrative"},
        "correlationId": format!("c0ffee00-0000-4000-8000-{index:012}"),
        "eventDataId": format!("evt-{index}"),
        "eventTimestamp": time.to_rfc3339_opts(SecondsFormat::Millis, true),
        "level": "Informational",
        "operationName": {"value": "Microsoft.Compute/virtualMachines/restart/action", "localizedValue": "Restart Virtual Machine"},
        "resourceGroupName": "prod-rg",
        "resourceId": format!("/subscriptions/{subscription}/resourceGroups/prod-rg/providers/Microsoft.Compute/virtualMachines/web-{index:02}"),
        "resourceType": {"value": "Microsoft.Compute/virtualMachines", "localizedValue": "Virtual machine"},
        "status": {"value": "Succeeded", "localizedValue": "Succeeded"},
        "subStatus": {"value": "OK", "localizedValue": "OK (HTTP Status Code: 200)"},
        "submissionTimestamp": now_text(),
        "subscriptionId": subscription,
        "properties": {"statusCode": "OK"},
    })
}

fn alert(subscription: &str, index: usize) -> Value {
    let (state, condition, severity) = match index {
        0 => ("New", "Fired", "Sev1"),
        1 => ("Acknowledged", "Fired", "Sev2"),
        2 => ("New", "Fired", "Sev0"),
        _ => ("Closed", "Resolved", "Sev3"),
    };
    let started = Utc::now() - TimeDelta::minutes(30 * (index as i64 + 1));
    json!({
        "id": format!("/subscriptions/{subscription}/providers/Microsoft.AlertsManagement/alerts/00000000-0000-4000-8000-00000000000{index}"),
        "type": "Microsoft.AlertsManagement/alerts",
        "name": format!("High CPU on web-0{index}"),
        "properties": {"essentials": {
            "severity": severity,
            "signalType": "Metric",
            "alertState": state,
            "monitorCondition": condition,
            "monitorService": "Platform",
            "targetResource": VM_ID,
            "targetResourceName": "web-01",
            "targetResourceGroup": "prod-rg",
            "targetResourceType": "virtualmachines",
            "sourceCreatedId": format!("source-{index}"),
            "alertRule": format!("/subscriptions/{subscription}/resourceGroups/prod-rg/providers/microsoft.insights/metricalerts/cpu-high"),
            "startDateTime": started.to_rfc3339_opts(SecondsFormat::Secs, true),
            "lastModifiedDateTime": started.to_rfc3339_opts(SecondsFormat::Secs, true),
            "lastModifiedUserName": "System",
            "description": "Percentage CPU above 90 for 5 minutes",
        }},
    })
}

fn cluster(subscription: &str, index: usize) -> Value {
    json!({
        "id": format!("/subscriptions/{subscription}/resourceGroups/aks-rg/providers/Microsoft.ContainerService/managedClusters/aks-{index}"),
        "location": "westeurope",
        "name": format!("aks-{index}"),
        "type": "Microsoft.ContainerService/ManagedClusters",
        "sku": {"name": "Base", "tier": "Standard"},
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": {"code": if index == 2 { "Stopped" } else { "Running" }},
            "kubernetesVersion": "1.29.4",
            "dnsPrefix": format!("aks-{index}"),
            "fqdn": format!("aks-{index}-dns-12345678.hcp.westeurope.azmk8s.io"),
            "nodeResourceGroup": format!("MC_aks-rg_aks-{index}_westeurope"),
            "agentPoolProfiles": [{
                "name": "nodepool1", "count": 3, "vmSize": "Standard_D4s_v5", "osType": "Linux", "mode": "System",
                "orchestratorVersion": "1.29.4", "provisioningState": "Succeeded", "powerState": {"code": "Running"},
                "enableAutoScaling": true, "minCount": 1, "maxCount": 5
            }],
        },
    })
}

fn interval_minutes(interval: &str) -> Option<i64> {
    Some(match interval {
        "PT1M" => 1,
        "PT5M" => 5,
        "PT15M" => 15,
        "PT30M" => 30,
        "PT1H" => 60,
        "PT6H" => 360,
        "PT12H" => 720,
        "P1D" => 1440,
        _ => return None,
    })
}

fn metrics(path: &str, query: &[(String, String)]) -> Response {
    let names = first_value(query, "metricnames").unwrap_or_default();
    let timespan = first_value(query, "timespan").unwrap_or_default();
    let interval = first_value(query, "interval").unwrap_or("PT1M");
    let aggregations = first_value(query, "aggregation").unwrap_or("Average");
    let Some((from, to)) = timespan.split_once('/').and_then(|(from, to)| {
        Some((
            DateTime::parse_from_rfc3339(from).ok()?.with_timezone(&Utc),
            DateTime::parse_from_rfc3339(to).ok()?.with_timezone(&Utc),
        ))
    }) else {
        return api_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid timespan.");
    };
    let Some(step) = interval_minutes(interval) else {
        return api_error(StatusCode::BAD_REQUEST, "BadRequest", "Invalid interval.");
    };
    let resource = path.trim_end_matches("/providers/Microsoft.Insights/metrics");
    let mut value = Vec::new();
    for name in names.split(',').filter(|name| !name.is_empty()) {
        if !matches!(
            name,
            "Percentage CPU" | "Available Memory Bytes" | "Network In Total"
        ) {
            return api_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                &format!("Failed to find metric configuration for provider: Microsoft.Compute, resource Type: virtualMachines, metric: {name}, Valid metrics: Percentage CPU,Available Memory Bytes,Network In Total"),
            );
        }
        let mut data = Vec::new();
        let mut time = from;
        let mut index = 0i64;
        while time < to {
            let mut point = json!({"timeStamp": time.to_rfc3339_opts(SecondsFormat::Secs, true)});
            for aggregation in aggregations.split(',') {
                point[aggregation.to_ascii_lowercase()] = json!(40.0 + (index % 7) as f64);
            }
            data.push(point);
            time += TimeDelta::minutes(step);
            index += 1;
        }
        value.push(json!({
            "id": format!("{resource}/providers/Microsoft.Insights/metrics/{name}"),
            "type": "Microsoft.Insights/metrics",
            "name": {"value": name, "localizedValue": name},
            "displayDescription": "",
            "unit": if name == "Percentage CPU" { "Percent" } else { "Bytes" },
            "timeseries": [{"metadatavalues": [], "data": data}],
            "errorCode": "Success",
        }));
    }
    Json(json!({
        "cost": 0,
        "timespan": timespan,
        "interval": interval,
        "value": value,
        "namespace": "Microsoft.Compute/virtualMachines",
        "resourceregion": "westeurope",
    }))
    .into_response()
}

fn graph(shared: &Shared, bearer: Option<&str>, segments: &[&str]) -> Response {
    let who = match authorize_bearer(shared, bearer, Aud::Graph) {
        Ok(who) => who,
        Err(refusal) => return *refusal,
    };
    let world = shared.world.lock();
    if !world.graph_readable {
        return api_error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let app = segments.get(1).copied().unwrap_or_default();
    let Some(app_id) = app
        .strip_prefix("applications(appId='")
        .and_then(|rest| rest.strip_suffix("')"))
    else {
        return api_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "Resource not found for the segment.",
        );
    };
    let Some(principal) = world.principals.get(app_id) else {
        return api_error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            &format!("Resource 'applications(appId='{app_id}')' does not exist or one of its queried reference-property objects are not present."),
        );
    };
    let _ = who;
    let hint: String = principal.secret.chars().take(3).collect();
    Json(json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#applications(appId,displayName,passwordCredentials)/$entity",
        "appId": app_id,
        "displayName": "Patchbay",
        "passwordCredentials": [
            {
                "customKeyIdentifier": null,
                "displayName": "Patchbay",
                "endDateTime": principal.secret_end.to_rfc3339_opts(SecondsFormat::Secs, true),
                "hint": hint,
                "keyId": "90d1ba7a-0b30-4a23-9a7c-7f5c1a2e3b4d",
                "secretText": null,
                "startDateTime": (Utc::now() - TimeDelta::days(10)).to_rfc3339_opts(SecondsFormat::Secs, true),
            },
            {
                "customKeyIdentifier": null,
                "displayName": "old",
                "endDateTime": (Utc::now() - TimeDelta::days(400)).to_rfc3339_opts(SecondsFormat::Secs, true),
                "hint": "zz~",
                "keyId": "11d1ba7a-0b30-4a23-9a7c-7f5c1a2e3b4d",
                "secretText": null,
                "startDateTime": (Utc::now() - TimeDelta::days(800)).to_rfc3339_opts(SecondsFormat::Secs, true),
            }
        ],
    }))
    .into_response()
}

fn log_analytics(
    shared: &Shared,
    bearer: Option<&str>,
    segments: &[&str],
    method: &Method,
    body: Option<&Value>,
) -> Response {
    if let Err(refusal) = authorize_bearer(shared, bearer, Aud::LogAnalytics) {
        return *refusal;
    }
    let error = |status: StatusCode, code: &str, message: &str| {
        (
            status,
            Json(json!({"error": {"message": message, "code": code, "correlationId": "aaaa0000-bb11-2222-33cc-444444dddddd"}})),
        )
            .into_response()
    };
    if method != Method::POST || segments.len() != 4 || segments[3] != "query" {
        return error(
            StatusCode::NOT_FOUND,
            "PathNotFoundError",
            "The requested path does not exist",
        );
    }
    if segments[2] != WORKSPACE_ID {
        return error(
            StatusCode::NOT_FOUND,
            "WorkspaceNotFoundError",
            &format!("The workspace {} could not be found", segments[2]),
        );
    }
    let query = body
        .and_then(|body| body.get("query"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    if query.contains("syntaxerror") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {
                "message": "The request had some invalid properties",
                "code": "BadArgumentError",
                "correlationId": "aaaa0000-bb11-2222-33cc-444444dddddd",
                "innererror": {"code": "SyntaxError", "message": "A recognition error occurred in the query."}
            }})),
        )
            .into_response();
    }
    let rows = query
        .split("take ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next()?.parse::<usize>().ok())
        .unwrap_or(30);
    let rows: Vec<Value> = (0..rows)
        .map(|index| {
            json!([
                now_text(),
                format!("Restart Virtual Machine {index}"),
                index
            ])
        })
        .collect();
    Json(json!({"tables": [{
        "name": "PrimaryResult",
        "columns": [
            {"name": "TimeGenerated", "type": "datetime"},
            {"name": "OperationName", "type": "string"},
            {"name": "Count", "type": "long"}
        ],
        "rows": rows,
    }]}))
    .into_response()
}

/// A grant as the OAuth engine hands it over for `access_token`, with the
/// delegated scopes and optional start options.
pub fn grant(access_token: &str, options: serde_json::Map<String, Value>) -> OAuthGrant {
    OAuthGrant {
        access_token: access_token.into(),
        refresh_token: None,
        expires_at: Some(Utc::now() + TimeDelta::hours(1)),
        scopes: vec!["https://management.azure.com/user_impersonation".to_owned()],
        token_type: Some("Bearer".to_owned()),
        extra: serde_json::Map::new(),
        options,
    }
}

impl FakeAzure {
    /// Issues a delegated Resource Manager token directly (as a finished sign-in
    /// would), for tests that start from a grant.
    pub fn delegated_token(&self) -> String {
        issue(&mut self.world(), Who::User, Aud::Arm).0
    }
}
