//! A fake of Google's OAuth endpoints and the Cloud APIs the connector reads, on
//! `127.0.0.1`, behind the `fake` feature, with Google's documented paths:
//!
//! - `accounts.google.com`: `GET /o/oauth2/v2/auth` checks the client, the
//!   registered redirect URI, `access_type=offline`, `prompt=consent`, the read-only
//!   scope and an S256 PKCE challenge, then redirects back with a code;
//! - `oauth2.googleapis.com`: `POST /token` (authorization code with the PKCE
//!   verifier, refresh token, and JWT-bearer assertions whose RS256 signature is
//!   checked against the registered service-account public key) and `POST /revoke`;
//! - `www.googleapis.com`: `GET /oauth2/v2/userinfo`;
//! - Resource Manager v3, Compute v1, Logging v2, Monitoring v3, Container v1 and
//!   Cloud Asset v1 list endpoints, paged with `pageToken`/`nextPageToken`
//!   (`pageSize` or Compute's `maxResults`), answering errors in Google's shape
//!   with `SERVICE_DISABLED` and `IAM_PERMISSION_DENIED` `ErrorInfo` details.
//!
//! It records every request without header values or secret body values. Every
//! token it issues starts with the credential it was started with, so a test's
//! canary covers access, refresh and id tokens.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use patchbay_core::OAuthGrant;
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{first_value, FakeServer, FaultQueue, RequestLog};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::Verifier;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::client::TOKEN_URL;
use crate::GcpConnector;

/// A one-shot failure to inject for the next request to a path.
pub use patchbay_testkit::fake_server::HttpFault as Fault;

/// The OAuth client id the fake accepts by default (not a real client).
pub const FAKE_CLIENT_ID: &str = "000000000000-fake.apps.googleusercontent.com";
/// The OAuth client secret the fake accepts by default (not a real secret).
pub const FAKE_CLIENT_SECRET: &str = "fake-google-client-secret";
/// The Google account the OAuth flow signs in.
pub const USER_EMAIL: &str = "sre@acme.example";
/// The projects the fake holds by default.
pub const PROJECTS: &[&str] = &["acme-prod", "acme-staging"];
/// VM instances per project (over two zones).
pub const INSTANCE_COUNT: usize = 7;
/// Log entries per project in the last hour, one a minute, newest first.
pub const LOG_ENTRY_COUNT: usize = 25;
/// Time series per project; each has [`POINTS_PER_SERIES`] points.
pub const SERIES_COUNT: usize = 5;
/// Points in each time series.
pub const POINTS_PER_SERIES: usize = 90;
/// Alert policies per project.
pub const ALERT_POLICY_COUNT: usize = 3;
/// GKE clusters per project.
pub const CLUSTER_COUNT: usize = 3;
/// Cloud Asset search results per project.
pub const ASSET_COUNT: usize = 12;
/// The value the fake puts in a cluster's `masterAuth.clientKey`, which the
/// connector must never return.
pub const CLUSTER_CLIENT_KEY: &str = "fake-gke-master-client-key";

/// A request the fake received, without header values or secret body values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/v3/projects:search`.
    pub path: String,
    /// Query pairs in order (the revoke and token endpoints' values are not kept).
    pub query: Vec<(String, String)>,
    /// Lower-case header names, sorted.
    pub header_names: Vec<String>,
    /// Names of form fields in the body, sorted.
    pub body_fields: Vec<String>,
    /// `grant_type` of a token request.
    pub grant_type: Option<String>,
    /// A JSON body (Logging's `entries:list`), which carries no secret.
    pub json_body: Option<Value>,
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

/// A service-account key made for a test: the JSON text to upload and the public
/// key the fake checks assertions with. The RSA key is generated at test time.
#[derive(Clone)]
pub struct TestServiceAccount {
    /// The key file's text, as Google Cloud Console downloads it.
    pub json: String,
    /// `client_email`.
    pub client_email: String,
    /// The PEM private key inside `json`, for canary scans.
    pub private_key_pem: String,
    public_key: RsaPublicKey,
}

impl std::fmt::Debug for TestServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestServiceAccount")
            .field("client_email", &self.client_email)
            .finish_non_exhaustive()
    }
}

impl TestServiceAccount {
    /// A new key for `client_email` in `project_id`, with Google's `token_uri`.
    /// Generating an RSA key takes a moment; reuse it within a test.
    pub fn generate(client_email: &str, project_id: &str) -> Self {
        let private_key =
            RsaPrivateKey::new(&mut rand::thread_rng(), 2048).expect("an RSA test key generates");
        let pem = private_key
            .to_pkcs8_pem(LineEnding::LF)
            .expect("the RSA test key encodes")
            .to_string();
        let key_id = hex_of(&Sha256::digest(pem.as_bytes())[..20]);
        let json = json!({
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": key_id,
            "private_key": pem,
            "client_email": client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": TOKEN_URL,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "universe_domain": "googleapis.com",
        })
        .to_string();
        Self {
            json,
            client_email: client_email.to_owned(),
            public_key: RsaPublicKey::from(&private_key),
            private_key_pem: pem,
        }
    }

    /// The same key file with one field changed (`Value::Null` removes it).
    pub fn json_with(&self, field: &str, value: Value) -> String {
        let mut key: Value = serde_json::from_str(&self.json).expect("the test key is JSON");
        match value {
            Value::Null => {
                key.as_object_mut().map(|object| object.remove(field));
            }
            value => key[field] = value,
        }
        key.to_string()
    }

    /// A line from the middle of the PEM private key, for canary scans.
    pub fn private_key_canary(&self) -> String {
        self.private_key_pem
            .lines()
            .nth(5)
            .expect("a PEM key has lines")
            .to_owned()
    }
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Default)]
struct Grant {
    email: String,
}

struct Mutable {
    client_id: String,
    client_secret: String,
    redirect_uris: Vec<String>,
    deny_consent: bool,
    omit_refresh_token: bool,
    /// code -> (redirect_uri, code_challenge)
    codes: HashMap<String, (String, String)>,
    /// access token -> grant number
    access: HashMap<String, u64>,
    /// refresh token -> grant number
    refresh: HashMap<String, u64>,
    grants: HashMap<u64, Grant>,
    revoked: Vec<u64>,
    service_accounts: HashMap<String, RsaPublicKey>,
    projects: Vec<String>,
    disabled: BTreeSet<(String, String)>,
    denied: BTreeSet<(String, String)>,
    quiet: BTreeSet<(String, String)>,
    issued: u64,
}

struct Shared {
    credential: String,
    mutable: Mutex<Mutable>,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
}

/// A running fake Google; stops when dropped.
pub struct FakeGcp {
    shared: Arc<Shared>,
    server: FakeServer,
}

patchbay_testkit::provider_fake!(FakeGcp,
    hosts: [
        "accounts.google.com",
        "oauth2.googleapis.com",
        "www.googleapis.com",
        "cloudresourcemanager.googleapis.com",
        "compute.googleapis.com",
        "logging.googleapis.com",
        "monitoring.googleapis.com",
        "container.googleapis.com",
        "cloudasset.googleapis.com",
    ],
    request: RecordedRequest, keyed by: path, log: shared.requests,
    fault: Fault, queued in: shared.faults);

impl FakeGcp {
    /// Starts the fake on `127.0.0.1:0`. `credential` is accepted as an access token
    /// of [`USER_EMAIL`], and every token the fake issues starts with it.
    pub async fn start(credential: &str) -> Self {
        let mut mutable = Mutable {
            client_id: FAKE_CLIENT_ID.to_owned(),
            client_secret: FAKE_CLIENT_SECRET.to_owned(),
            redirect_uris: Vec::new(),
            deny_consent: false,
            omit_refresh_token: false,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            grants: HashMap::new(),
            revoked: Vec::new(),
            service_accounts: HashMap::new(),
            projects: PROJECTS.iter().map(|p| (*p).to_owned()).collect(),
            disabled: BTreeSet::new(),
            denied: BTreeSet::new(),
            quiet: BTreeSet::new(),
            issued: 0,
        };
        mutable.grants.insert(
            0,
            Grant {
                email: USER_EMAIL.to_owned(),
            },
        );
        mutable.access.insert(credential.to_owned(), 0);
        mutable.refresh.insert(format!("{credential}-refresh-0"), 0);
        let shared = Arc::new(Shared {
            credential: credential.to_owned(),
            mutable: Mutex::new(mutable),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = FakeServer::start("Google Cloud", router).await;
        Self { shared, server }
    }

    /// A connector configured as an operator would for these fakes: upstream
    /// overrides for Google's hosts, and `PATCHBAY_ALLOWED_PRIVATE_NETWORKS=127.0.0.1/32`
    /// so a key's `token_uri` (a tenant-supplied URL) may reach the loopback fake.
    pub fn connector(&self) -> GcpConnector {
        let env = patchbay_core::ConnectorEnv::from_pairs([
            ("PATCHBAY_UPSTREAM_OVERRIDES", self.override_spec()),
            (
                "PATCHBAY_ALLOWED_PRIVATE_NETWORKS",
                "127.0.0.1/32".to_owned(),
            ),
            ("PATCHBAY_HTTP_MAX_RETRIES", "1".to_owned()),
        ]);
        <GcpConnector as patchbay_core::FromEnv>::from_env(&env)
            .expect("the connector builds from the test environment")
    }

    /// A connector without the loopback allowlist (a key's `token_uri` is refused).
    pub fn connector_without_allowlist(&self) -> GcpConnector {
        GcpConnector::new(patchbay_testkit::http::client_for_fake(
            &self.override_spec(),
        ))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.shared.lock()
    }

    /// Accepts assertions signed by `account`'s key from now on.
    pub fn register_service_account(&self, account: &TestServiceAccount) {
        self.lock()
            .service_accounts
            .insert(account.client_email.clone(), account.public_key.clone());
    }

    /// Stops accepting `client_email`'s key (the key was deleted).
    pub fn delete_service_account_key(&self, client_email: &str) {
        self.lock().service_accounts.remove(client_email);
    }

    /// The OAuth client the fake accepts from now on.
    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        let mut state = self.lock();
        state.client_id = client_id.to_owned();
        state.client_secret = client_secret.to_owned();
    }

    /// The redirect URIs registered for the client (empty: any is accepted).
    pub fn register_redirect_uri(&self, uri: &str) {
        self.lock().redirect_uris.push(uri.to_owned());
    }

    /// The next consent is denied (`error=access_denied`).
    pub fn deny_next_consent(&self) {
        self.lock().deny_consent = true;
    }

    /// Token answers omit `refresh_token`, as Google does without `prompt=consent`.
    pub fn omit_refresh_tokens(&self) {
        self.lock().omit_refresh_token = true;
    }

    /// The projects every account can reach from now on.
    pub fn set_projects(&self, projects: &[&str]) {
        self.lock().projects = projects.iter().map(|p| (*p).to_owned()).collect();
    }

    /// Disables `service` (e.g. `compute.googleapis.com`) in `project`.
    pub fn disable_api(&self, project: &str, service: &str) {
        self.lock()
            .disabled
            .insert((project.to_owned(), service.to_owned()));
    }

    /// Denies `permission` (e.g. `logging.logEntries.list`) on `project`.
    pub fn deny_permission(&self, project: &str, permission: &str) {
        self.lock()
            .denied
            .insert((project.to_owned(), permission.to_owned()));
    }

    /// Denies `permission` on `project` with Google's bare "The caller does not have
    /// permission", which names no permission.
    pub fn deny_quietly(&self, project: &str, permission: &str) {
        self.lock()
            .quiet
            .insert((project.to_owned(), permission.to_owned()));
    }

    /// Stops accepting every access token issued so far (expired or revoked early).
    pub fn expire_access_tokens(&self) {
        self.lock().access.clear();
    }

    /// How many grants were revoked at `/revoke`.
    pub fn revoked_grants(&self) -> usize {
        self.lock().revoked.len()
    }

    /// A grant as the OAuth engine hands it over after Google's token answer.
    pub fn grant(&self, options: Value) -> OAuthGrant {
        OAuthGrant {
            access_token: self.shared.credential.clone().into(),
            refresh_token: Some(format!("{}-refresh-0", self.shared.credential).into()),
            expires_at: Some(Utc::now() + Duration::seconds(3599)),
            scopes: vec![crate::OAUTH_SCOPES.join(" ")],
            token_type: Some("Bearer".to_owned()),
            extra: serde_json::Map::new(),
            options: options.as_object().cloned().unwrap_or_default(),
        }
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.mutable
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

/// A handler's early answer (an error in Google's shape), boxed to keep results small.
type Reply<T> = std::result::Result<T, Box<Response>>;

fn refuse(response: Response) -> Box<Response> {
    Box::new(response)
}

/// Google's error body: `{"error": {"code", "message", "status", "details"}}`.
fn google_error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    let mut error = json!({"code": status.as_u16(), "message": message, "status": code});
    if details.as_array().is_some_and(|d| !d.is_empty()) {
        error["details"] = details;
    }
    (status, Json(json!({ "error": error }))).into_response()
}

fn oauth_error(status: StatusCode, code: &str, description: &str) -> Response {
    (
        status,
        Json(json!({"error": code, "error_description": description})),
    )
        .into_response()
}

fn service_title(service: &str) -> &'static str {
    match service {
        "cloudresourcemanager.googleapis.com" => "Cloud Resource Manager API",
        "compute.googleapis.com" => "Compute Engine API",
        "logging.googleapis.com" => "Cloud Logging API",
        "monitoring.googleapis.com" => "Cloud Monitoring API",
        "container.googleapis.com" => "Kubernetes Engine API",
        _ => "Cloud Asset API",
    }
}

fn project_number(project: &str) -> u64 {
    let digest = Sha256::digest(project.as_bytes());
    100_000_000_000
        + u64::from(u32::from_be_bytes([
            digest[0], digest[1], digest[2], digest[3],
        ]))
}

fn service_disabled(service: &str, project: &str) -> Response {
    let number = project_number(project);
    let activation = format!(
        "https://console.developers.google.com/apis/api/{service}/overview?project={number}"
    );
    google_error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        &format!(
            "{} has not been used in project {number} before or it is disabled. Enable it by visiting {activation} then retry. If you enabled this API recently, wait a few minutes for the action to propagate to our systems and retry.",
            service_title(service)
        ),
        json!([
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED", "domain": "googleapis.com",
             "metadata": {"service": service, "consumer": format!("projects/{number}"), "serviceTitle": service_title(service),
                          "activationUrl": activation, "containerInfo": number.to_string()}},
            {"@type": "type.googleapis.com/google.rpc.Help", "links": [{"description": "Google developers console API activation", "url": activation}]}
        ]),
    )
}

fn permission_denied(permission: &str, project: &str) -> Response {
    google_error(
        StatusCode::FORBIDDEN,
        "PERMISSION_DENIED",
        &format!("Permission '{permission}' denied on resource '//cloudresourcemanager.googleapis.com/projects/{project}' (or it may not exist)."),
        json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "IAM_PERMISSION_DENIED", "domain": "iam.googleapis.com",
                "metadata": {"permission": permission, "resource": format!("projects/{project}")}}]),
    )
}

fn unauthenticated() -> Response {
    google_error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHENTICATED",
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
        json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED", "domain": "googleapis.com"}]),
    )
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let query = query_pairs(parts.uri.query());
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|kind| kind.starts_with("application/json"));
    let form: HashMap<String, String> = if is_json {
        HashMap::new()
    } else {
        url::form_urlencoded::parse(&body).into_owned().collect()
    };
    let json_body: Option<Value> = if is_json {
        serde_json::from_slice(&body).ok()
    } else {
        None
    };
    let mut header_names: Vec<String> = parts
        .headers
        .keys()
        .map(|name| name.as_str().to_owned())
        .collect();
    header_names.sort();
    header_names.dedup();
    let mut body_fields: Vec<String> = form.keys().cloned().collect();
    body_fields.sort();
    let secret_query = path == "/token" || path == "/revoke";
    shared.requests.record(RecordedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        query: if secret_query {
            query
                .iter()
                .map(|(k, _)| (k.clone(), "[redacted]".to_owned()))
                .collect()
        } else {
            query.clone()
        },
        header_names,
        body_fields,
        grant_type: form.get("grant_type").cloned(),
        json_body: json_body.clone(),
    });
    if let Some(fault) = shared.faults.take(&path) {
        return fault_response(fault);
    }
    match (&parts.method, path.as_str()) {
        (&Method::GET, "/o/oauth2/v2/auth") => return authorize(&shared, &query),
        (&Method::POST, "/token") => return token(&shared, &parts.headers, &form),
        (&Method::POST, "/revoke") => {
            let token = form
                .get("token")
                .cloned()
                .or_else(|| first_value(&query, "token").map(str::to_owned));
            return revoke(&shared, token.as_deref());
        }
        _ => {}
    }
    let Some(email) = principal(&shared, &parts.headers) else {
        return unauthenticated();
    };
    api(
        &shared,
        &parts.method,
        &path,
        &query,
        json_body.as_ref(),
        &email,
    )
}

fn principal(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))?;
    let state = shared.lock();
    let grant = state.access.get(token)?;
    state.grants.get(grant).map(|grant| grant.email.clone())
}

fn authorize(shared: &Shared, query: &[(String, String)]) -> Response {
    let value = |name: &str| first_value(query, name);
    let mut state = shared.lock();
    if value("client_id") != Some(state.client_id.as_str()) {
        return (
            StatusCode::UNAUTHORIZED,
            "Error 401: invalid_client. The OAuth client was not found.",
        )
            .into_response();
    }
    let Some(redirect_uri) = value("redirect_uri") else {
        return (
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request. Missing required parameter: redirect_uri",
        )
            .into_response();
    };
    if !state.redirect_uris.is_empty() && !state.redirect_uris.iter().any(|uri| uri == redirect_uri)
    {
        return (StatusCode::BAD_REQUEST, "Error 400: redirect_uri_mismatch").into_response();
    }
    for (name, expected) in [
        ("response_type", "code"),
        ("access_type", "offline"),
        ("prompt", "consent"),
        ("code_challenge_method", "S256"),
    ] {
        if value(name) != Some(expected) {
            return (
                StatusCode::BAD_REQUEST,
                format!(
                    "Error 400: invalid_request. {name} must be {expected} for this test client"
                ),
            )
                .into_response();
        }
    }
    let scopes: Vec<&str> = value("scope").unwrap_or_default().split(' ').collect();
    if !scopes.contains(&crate::client::READ_ONLY_SCOPE) {
        return (StatusCode::BAD_REQUEST, "Error 400: invalid_scope").into_response();
    }
    let (Some(challenge), Some(oauth_state)) = (value("code_challenge"), value("state")) else {
        return (
            StatusCode::BAD_REQUEST,
            "Error 400: invalid_request. code_challenge and state are required",
        )
            .into_response();
    };
    let mut target = url::form_urlencoded::Serializer::new(String::new());
    if std::mem::take(&mut state.deny_consent) {
        target.append_pair("error", "access_denied");
    } else {
        state.issued += 1;
        let code = format!("4/fake-google-code-{:06}", state.issued);
        state.codes.insert(
            code.clone(),
            (redirect_uri.to_owned(), challenge.to_owned()),
        );
        target.append_pair("code", &code);
        target.append_pair("scope", &crate::OAUTH_SCOPES.join(" "));
    }
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

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn token(shared: &Shared, headers: &HeaderMap, form: &HashMap<String, String>) -> Response {
    let field = |name: &str| form.get(name).map(String::as_str);
    if field("grant_type") == Some(crate::auth::JWT_BEARER_GRANT) {
        return jwt_bearer(shared, field("assertion"));
    }
    let mut state = shared.lock();
    if headers.contains_key(header::AUTHORIZATION)
        || field("client_id") != Some(state.client_id.as_str())
        || field("client_secret") != Some(state.client_secret.as_str())
    {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "The OAuth client was not found.",
        );
    }
    let grant = match field("grant_type") {
        Some("authorization_code") => {
            let Some((redirect, challenge)) =
                field("code").and_then(|code| state.codes.remove(code))
            else {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_grant",
                    "Malformed auth code.",
                );
            };
            if field("redirect_uri") != Some(redirect.as_str()) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "redirect_uri_mismatch",
                    "Bad Request",
                );
            }
            match field("code_verifier") {
                Some(verifier) if s256(verifier) == challenge => {}
                Some(_) => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Invalid code verifier.",
                    )
                }
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "code_verifier or verifier is not needed.",
                    )
                }
            }
            state.issued += 1;
            let grant = state.issued;
            state.grants.insert(
                grant,
                Grant {
                    email: USER_EMAIL.to_owned(),
                },
            );
            grant
        }
        Some("refresh_token") => {
            match field("refresh_token").and_then(|token| state.refresh.get(token)) {
                Some(grant) => *grant,
                None => {
                    return oauth_error(
                        StatusCode::BAD_REQUEST,
                        "invalid_grant",
                        "Token has been expired or revoked.",
                    )
                }
            }
        }
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "Invalid grant_type",
            )
        }
    };
    state.issued += 1;
    let access = format!("{}-access-{}", shared.credential, state.issued);
    state.access.insert(access.clone(), grant);
    let mut answer = json!({
        "access_token": access,
        "expires_in": 3599,
        "scope": crate::OAUTH_SCOPES.join(" "),
        "token_type": "Bearer",
    });
    if field("grant_type") == Some("authorization_code") {
        answer["id_token"] = json!(format!("{}-id-{}", shared.credential, state.issued));
        if !state.omit_refresh_token {
            let refresh = format!("{}-refresh-{}", shared.credential, state.issued);
            state.refresh.insert(refresh.clone(), grant);
            answer["refresh_token"] = json!(refresh);
        }
    }
    Json(answer).into_response()
}

fn decode_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

/// JWT-bearer: the RS256 signature is checked against the registered key of `iss`.
fn jwt_bearer(shared: &Shared, assertion: Option<&str>) -> Response {
    let invalid =
        |description: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", description);
    let Some(assertion) = assertion else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Missing required parameter: assertion",
        );
    };
    let parts: Vec<&str> = assertion.split('.').collect();
    let [header_part, claims_part, signature_part] = parts.as_slice() else {
        return invalid("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe.");
    };
    let (Some(jwt_header), Some(claims)) = (decode_part(header_part), decode_part(claims_part))
    else {
        return invalid("Invalid JWT.");
    };
    if jwt_header["alg"] != "RS256" {
        return invalid("Invalid JWT: unsupported algorithm.");
    }
    let now = Utc::now().timestamp();
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return invalid("Invalid JWT: missing iat or exp.");
    };
    if exp <= now || exp - iat > 3600 || iat > now + 300 {
        return invalid("Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.");
    }
    if claims["aud"] != TOKEN_URL {
        return invalid("Invalid JWT: aud must be https://oauth2.googleapis.com/token.");
    }
    if claims["scope"].as_str().is_none_or(str::is_empty) {
        return invalid("Invalid JWT: scope is required.");
    }
    let Some(email) = claims["iss"].as_str() else {
        return invalid("Invalid JWT: iss is required.");
    };
    let mut state = shared.lock();
    let Some(public_key) = state.service_accounts.get(email).cloned() else {
        return invalid("Invalid grant: account not found");
    };
    let verified = URL_SAFE_NO_PAD
        .decode(signature_part)
        .ok()
        .and_then(|bytes| Signature::try_from(bytes.as_slice()).ok())
        .is_some_and(|signature| {
            VerifyingKey::<Sha256>::new(public_key)
                .verify(
                    format!("{header_part}.{claims_part}").as_bytes(),
                    &signature,
                )
                .is_ok()
        });
    if !verified {
        return invalid("Invalid JWT Signature.");
    }
    state.issued += 1;
    let grant = state.issued;
    state.grants.insert(
        grant,
        Grant {
            email: email.to_owned(),
        },
    );
    let access = format!("{}-sa-{}", shared.credential, state.issued);
    state.access.insert(access.clone(), grant);
    Json(json!({"access_token": access, "expires_in": 3599, "token_type": "Bearer"}))
        .into_response()
}

fn revoke(shared: &Shared, token: Option<&str>) -> Response {
    let mut state = shared.lock();
    let grant = token.and_then(|token| {
        state
            .refresh
            .get(token)
            .or_else(|| state.access.get(token))
            .copied()
    });
    let Some(grant) = grant else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_token",
            "Token expired or revoked",
        );
    };
    state.refresh.retain(|_, g| *g != grant);
    state.access.retain(|_, g| *g != grant);
    state.revoked.push(grant);
    StatusCode::OK.into_response()
}

fn number(query: &[(String, String)], name: &str, default: usize, max: usize) -> Reply<usize> {
    match first_value(query, name) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(value) if value >= 1 => Ok(value.min(max)),
            _ => Err(refuse(google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                &format!("Invalid value for {name}: {text}"),
                json!([]),
            ))),
        },
    }
}

/// One page of `items` from the offset in `pageToken`, with `nextPageToken`.
fn page(
    items: Vec<Value>,
    size: usize,
    token: Option<&str>,
) -> Reply<(Vec<Value>, Option<String>)> {
    let offset = match token {
        None | Some("") => 0,
        Some(token) => token
            .strip_prefix("page-")
            .and_then(|offset| offset.parse::<usize>().ok())
            .ok_or_else(|| {
                refuse(google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "Invalid page token.",
                    json!([]),
                ))
            })?,
    };
    let end = items.len().min(offset.saturating_add(size));
    let next = (end < items.len()).then(|| format!("page-{end}"));
    Ok((
        items
            .into_iter()
            .skip(offset)
            .take(end.saturating_sub(offset))
            .collect(),
        next,
    ))
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn paged_answer(key: &str, items: Vec<Value>, next: Option<String>) -> Response {
    let mut body = json!({ key: items });
    if let Some(next) = next {
        body["nextPageToken"] = json!(next);
    }
    Json(body).into_response()
}

/// The Cloud API endpoints; `email` is the authenticated account.
fn api(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    body: Option<&Value>,
    email: &str,
) -> Response {
    let projects = shared.lock().projects.clone();
    let result = (|| -> Reply<Response> {
        if method == Method::GET && path == "/oauth2/v2/userinfo" {
            return Ok(Json(
                json!({"id": "100000000000000000002", "email": email, "verified_email": true}),
            )
            .into_response());
        }
        if method == Method::GET && path == "/v3/projects:search" {
            let size = number(query, "pageSize", 50, 500)?;
            let items: Vec<Value> = projects.iter().map(|p| project_json(p)).collect();
            let (items, next) = page(items, size, first_value(query, "pageToken"))?;
            return Ok(paged_answer("projects", items, next));
        }
        if method == Method::POST && path == "/v2/entries:list" {
            let body = body.cloned().unwrap_or(Value::Null);
            let Some(project) = body["resourceNames"][0]
                .as_str()
                .and_then(|r| r.strip_prefix("projects/"))
            else {
                return Err(refuse(google_error(
                    StatusCode::BAD_REQUEST,
                    "INVALID_ARGUMENT",
                    "resourceNames is required",
                    json!([]),
                )));
            };
            gate(
                shared,
                &projects,
                project,
                "logging.googleapis.com",
                "logging.logEntries.list",
            )?;
            return log_entries(project, &body);
        }
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        match (method, segments.as_slice()) {
            (&Method::GET, ["v3", "projects", project]) => {
                gate(
                    shared,
                    &projects,
                    project,
                    "cloudresourcemanager.googleapis.com",
                    "resourcemanager.projects.get",
                )?;
                Ok(Json(project_json(project)).into_response())
            }
            (&Method::GET, ["compute", "v1", "projects", project, "zones"]) => {
                gate(
                    shared,
                    &projects,
                    project,
                    "compute.googleapis.com",
                    "compute.zones.list",
                )?;
                let size = number(query, "maxResults", 500, 500)?;
                let zones: Vec<Value> = ["us-central1-a", "us-central1-b", "europe-west1-b"]
                    .iter()
                    .map(|zone| json!({"kind": "compute#zone", "name": zone, "status": "UP"}))
                    .collect();
                let (items, next) = page(zones, size, first_value(query, "pageToken"))?;
                Ok(paged_answer("items", items, next))
            }
            (&Method::GET, ["compute", "v1", "projects", project, "aggregated", "instances"]) => {
                gate(
                    shared,
                    &projects,
                    project,
                    "compute.googleapis.com",
                    "compute.instances.list",
                )?;
                let size = number(query, "maxResults", 500, 500)?;
                let all: Vec<Value> = (0..INSTANCE_COUNT)
                    .map(|i| instance_json(project, i))
                    .collect();
                let (items, next) = page(all, size, first_value(query, "pageToken"))?;
                let mut scopes = serde_json::Map::new();
                for instance in items {
                    let zone = instance["zone"]
                        .as_str()
                        .and_then(|z| z.rsplit('/').next())
                        .unwrap_or("?")
                        .to_owned();
                    if let Some(list) = scopes
                        .entry(format!("zones/{zone}"))
                        .or_insert_with(|| json!({"instances": []}))["instances"]
                        .as_array_mut()
                    {
                        list.push(instance.clone());
                    }
                }
                scopes.insert(
                    "zones/europe-west1-b".to_owned(),
                    json!({"warning": {"code": "NO_RESULTS_ON_PAGE", "message": "There are no results for scope 'zones/europe-west1-b' on this page."}}),
                );
                let mut answer = json!({"kind": "compute#instanceAggregatedList", "items": scopes});
                if let Some(next) = next {
                    answer["nextPageToken"] = json!(next);
                }
                Ok(Json(answer).into_response())
            }
            (&Method::GET, ["v3", "projects", project, "metricDescriptors"]) => {
                gate(
                    shared,
                    &projects,
                    project,
                    "monitoring.googleapis.com",
                    "monitoring.metricDescriptors.list",
                )?;
                let size = number(query, "pageSize", 100, 100)?;
                let all = vec![
                    json!({"type": "compute.googleapis.com/instance/cpu/utilization", "metricKind": "GAUGE", "valueType": "DOUBLE"}),
                ];
                let (items, next) = page(all, size, first_value(query, "pageToken"))?;
                Ok(paged_answer("metricDescriptors", items, next))
            }
            (&Method::GET, ["v3", "projects", project, "timeSeries"]) => {
                gate(
                    shared,
                    &projects,
                    project,
                    "monitoring.googleapis.com",
                    "monitoring.timeSeries.list",
                )?;
                time_series(project, query)
            }
            (&Method::GET, ["v3", "projects", project, "alertPolicies"]) => {
                gate(
                    shared,
                    &projects,
                    project,
                    "monitoring.googleapis.com",
                    "monitoring.alertPolicies.list",
                )?;
                let size = number(query, "pageSize", 100, 1000)?;
                let all: Vec<Value> = (0..ALERT_POLICY_COUNT)
                    .map(|i| alert_policy_json(project, i))
                    .collect();
                let (items, next) = page(all, size, first_value(query, "pageToken"))?;
                let mut answer = json!({"alertPolicies": items, "totalSize": ALERT_POLICY_COUNT});
                if let Some(next) = next {
                    answer["nextPageToken"] = json!(next);
                }
                Ok(Json(answer).into_response())
            }
            (&Method::GET, ["v1", "projects", project, "locations", location, "clusters"]) => {
                gate(
                    shared,
                    &projects,
                    project,
                    "container.googleapis.com",
                    "container.clusters.list",
                )?;
                let clusters: Vec<Value> = (0..CLUSTER_COUNT)
                    .map(|i| cluster_json(project, i))
                    .filter(|cluster| *location == "-" || cluster["location"] == *location)
                    .collect();
                Ok(Json(json!({"clusters": clusters})).into_response())
            }
            (&Method::GET, ["v1", "projects", scope]) if scope.ends_with(":searchAllResources") => {
                let project = scope.trim_end_matches(":searchAllResources");
                gate(
                    shared,
                    &projects,
                    project,
                    "cloudasset.googleapis.com",
                    "cloudasset.assets.searchAllResources",
                )?;
                let size = number(query, "pageSize", 100, 500)?;
                let types: Vec<&str> = query
                    .iter()
                    .filter(|(k, _)| k == "assetTypes")
                    .map(|(_, v)| v.as_str())
                    .collect();
                let text = first_value(query, "query").unwrap_or("");
                let all: Vec<Value> = (0..ASSET_COUNT)
                    .map(|i| asset_json(project, i))
                    .filter(|asset| {
                        types.is_empty() || types.iter().any(|t| asset["assetType"] == *t)
                    })
                    .filter(|asset| {
                        text.strip_prefix("name:").is_none_or(|name| {
                            asset["name"].as_str().is_some_and(|n| n.contains(name))
                        })
                    })
                    .collect();
                let (items, next) = page(all, size, first_value(query, "pageToken"))?;
                Ok(paged_answer("results", items, next))
            }
            _ => Err(refuse(google_error(
                StatusCode::NOT_FOUND,
                "NOT_FOUND",
                "The requested URL was not found on this server.",
                json!([]),
            ))),
        }
    })();
    result.unwrap_or_else(|response| *response)
}

/// Refuses a call on an unknown project, a disabled service or a denied permission.
fn gate(
    shared: &Shared,
    projects: &[String],
    project: &str,
    service: &str,
    permission: &str,
) -> Reply<()> {
    if !projects.iter().any(|p| p == project) {
        return Err(refuse(permission_denied(permission, project)));
    }
    let state = shared.lock();
    if state
        .disabled
        .contains(&(project.to_owned(), service.to_owned()))
    {
        return Err(refuse(service_disabled(service, project)));
    }
    if state
        .quiet
        .contains(&(project.to_owned(), permission.to_owned()))
    {
        return Err(refuse(google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "The caller does not have permission",
            json!([]),
        )));
    }
    if state
        .denied
        .contains(&(project.to_owned(), permission.to_owned()))
    {
        return Err(refuse(permission_denied(permission, project)));
    }
    Ok(())
}

fn project_json(project: &str) -> Value {
    json!({
        "name": format!("projects/{}", project_number(project)),
        "projectId": project,
        "displayName": project.replace('-', " "),
        "parent": "organizations/123456789012",
        "state": "ACTIVE",
        "labels": {"team": "sre"},
        "createTime": "2023-01-10T09:00:00Z",
        "etag": "W/\"fake\"",
    })
}

fn instance_json(project: &str, index: usize) -> Value {
    let zone = if index % 2 == 0 {
        "us-central1-a"
    } else {
        "us-central1-b"
    };
    json!({
        "kind": "compute#instance",
        "id": format!("{}", 7_000_000_000_000_000_000u64 + index as u64),
        "name": format!("checkout-{index:02}"),
        "zone": format!("https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}"),
        "machineType": format!("https://www.googleapis.com/compute/v1/projects/{project}/zones/{zone}/machineTypes/e2-standard-4"),
        "status": if index == 3 { "TERMINATED" } else { "RUNNING" },
        "labels": {"app": "checkout"},
        "creationTimestamp": "2024-03-01T10:00:00.000-07:00",
        "networkInterfaces": [{"networkIP": format!("10.128.0.{}", index + 10),
                               "accessConfigs": [{"type": "ONE_TO_ONE_NAT", "natIP": format!("34.1.2.{}", index + 10)}]}],
        "metadata": {"items": [{"key": "startup-script", "value": "#!/bin/sh\necho hello"}]},
    })
}

fn filter_bound(filter: &str, operator: &str) -> Option<DateTime<Utc>> {
    let start =
        filter.find(&format!("timestamp{operator}\""))? + "timestamp".len() + operator.len() + 1;
    let end = filter[start..].find('"')? + start;
    DateTime::parse_from_rfc3339(&filter[start..end])
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

fn log_entries(project: &str, body: &Value) -> Reply<Response> {
    let size = body["pageSize"].as_u64().unwrap_or(50).clamp(1, 1000) as usize;
    let filter = body["filter"].as_str().unwrap_or("");
    let from = filter_bound(filter, ">=");
    let to = filter_bound(filter, "<=");
    let errors_only = filter.contains("severity>=ERROR");
    let now = Utc::now();
    let mut entries: Vec<(DateTime<Utc>, Value)> = (0..LOG_ENTRY_COUNT)
        .map(|i| {
            let at = now - Duration::minutes(i as i64) - Duration::seconds(1);
            let severity = if i % 5 == 0 { "ERROR" } else { "INFO" };
            (at, json!({
                "logName": format!("projects/{project}/logs/stdout"),
                "resource": {"type": "k8s_container", "labels": {"project_id": project, "container_name": "checkout"}},
                "timestamp": time(at),
                "receiveTimestamp": time(at),
                "severity": severity,
                "insertId": format!("entry-{i:04}"),
                "textPayload": format!("checkout request {i} finished with {}", if severity == "ERROR" { "502" } else { "200" }),
            }))
        })
        .filter(|(at, entry)| {
            from.is_none_or(|from| *at >= from)
                && to.is_none_or(|to| *at <= to)
                && (!errors_only || entry["severity"] == "ERROR")
        })
        .collect();
    if body["orderBy"] != "timestamp desc" {
        entries.reverse();
    }
    let all: Vec<Value> = entries.into_iter().map(|(_, entry)| entry).collect();
    let (items, next) = page(all, size, body["pageToken"].as_str())?;
    Ok(paged_answer("entries", items, next))
}

fn time_series(project: &str, query: &[(String, String)]) -> Reply<Response> {
    let Some(filter) = first_value(query, "filter") else {
        return Err(refuse(google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Field filter had an invalid value: a filter is required.",
            json!([]),
        )));
    };
    if !filter.contains("metric.type") {
        return Err(refuse(google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            &format!(
                "Field filter had an invalid value of \"{filter}\": must specify a metric type."
            ),
            json!([]),
        )));
    }
    let Some(end) =
        first_value(query, "interval.endTime").and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    else {
        return Err(refuse(google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Field interval.endTime had an invalid value.",
            json!([]),
        )));
    };
    let size = number(query, "pageSize", 100, 100_000)?;
    let end = end.with_timezone(&Utc);
    let all: Vec<Value> = (0..SERIES_COUNT)
        .map(|i| {
            let points: Vec<Value> = (0..POINTS_PER_SERIES)
                .map(|p| {
                    let at = end - Duration::seconds(60 * p as i64);
                    json!({"interval": {"startTime": time(at), "endTime": time(at)}, "value": {"doubleValue": 0.25 + (p % 10) as f64 / 100.0}})
                })
                .collect();
            json!({
                "metric": {"type": "compute.googleapis.com/instance/cpu/utilization", "labels": {"instance_name": format!("checkout-{i:02}")}},
                "resource": {"type": "gce_instance", "labels": {"project_id": project, "zone": "us-central1-a", "instance_id": format!("{i}")}},
                "metricKind": "GAUGE",
                "valueType": "DOUBLE",
                "points": points,
            })
        })
        .collect();
    let (items, next) = page(all, size, first_value(query, "pageToken"))?;
    let mut answer = json!({"timeSeries": items, "unit": "10^2.%"});
    if let Some(next) = next {
        answer["nextPageToken"] = json!(next);
    }
    Ok(Json(answer).into_response())
}

fn alert_policy_json(project: &str, index: usize) -> Value {
    json!({
        "name": format!("projects/{project}/alertPolicies/{}", 1000 + index),
        "displayName": format!("Checkout latency {index}"),
        "combiner": "OR",
        "enabled": index != 2,
        "conditions": [{"name": format!("projects/{project}/alertPolicies/{}/conditions/1", 1000 + index),
                        "displayName": "p99 latency above 2s",
                        "conditionThreshold": {"filter": "metric.type=\"loadbalancing.googleapis.com/https/total_latencies\"", "comparison": "COMPARISON_GT", "thresholdValue": 2000, "duration": "300s"}}],
        "notificationChannels": [format!("projects/{project}/notificationChannels/42")],
        "severity": "CRITICAL",
        "creationRecord": {"mutateTime": "2024-02-01T00:00:00Z", "mutatedBy": "sre@acme.example"},
    })
}

fn cluster_json(project: &str, index: usize) -> Value {
    let location = if index == 0 {
        "us-central1"
    } else {
        "europe-west1-b"
    };
    json!({
        "name": format!("{project}-gke-{index}"),
        "location": location,
        "zone": location,
        "status": "RUNNING",
        "currentMasterVersion": "1.30.5-gke.1014001",
        "currentNodeVersion": "1.30.5-gke.1014001",
        "currentNodeCount": 3 + index,
        "network": "default",
        "endpoint": format!("35.2.3.{index}"),
        "masterAuth": {"clusterCaCertificate": "LS0tLS1CRUdJTi1GQUtF", "clientKey": CLUSTER_CLIENT_KEY},
        "nodePools": [{"name": "default-pool", "status": "RUNNING", "version": "1.30.5-gke.1014001", "initialNodeCount": 3,
                       "config": {"machineType": "e2-standard-4", "diskSizeGb": 100}, "autoscaling": {"enabled": true, "minNodeCount": 1, "maxNodeCount": 5}}],
        "createTime": "2024-01-15T08:00:00+00:00",
    })
}

fn asset_json(project: &str, index: usize) -> Value {
    let (kind, name) = if index % 3 == 0 {
        (
            "storage.googleapis.com/Bucket",
            format!("//storage.googleapis.com/{project}-bucket-{index}"),
        )
    } else {
        ("compute.googleapis.com/Instance", format!("//compute.googleapis.com/projects/{project}/zones/us-central1-a/instances/checkout-{index:02}"))
    };
    json!({
        "name": name,
        "assetType": kind,
        "project": format!("projects/{}", project_number(project)),
        "displayName": name.rsplit('/').next().unwrap_or_default(),
        "location": "us-central1",
        "state": "RUNNING",
        "labels": {"app": "checkout"},
        "updateTime": "2024-05-01T12:00:00Z",
    })
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = google_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RESOURCE_EXHAUSTED",
                "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute'.",
                json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com"}]),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            response
        }
        Fault::ServerError => google_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "Internal error encountered.",
            json!([]),
        ),
        Fault::Unavailable => google_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            "The service is currently unavailable.",
            json!([]),
        ),
    }
}

/// Parses a PEM private key the way Google's key files carry it (for tests that
/// corrupt keys).
pub fn parses_as_private_key(pem: &str) -> bool {
    RsaPrivateKey::from_pkcs8_pem(pem).is_ok()
}
