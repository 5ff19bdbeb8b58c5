//! A fake GitHub (REST API and OAuth App endpoints) following the documented API,
//! built with the `fake` feature for tests of this crate and of services that
//! embed it.
//!
//! One server answers both `api.github.com` and `github.com` paths, so
//! [`FakeGitHub::override_spec`] points both hosts at it; the API is also served
//! under `/api/v3`, as GitHub Enterprise Server does. API calls need
//! `Authorization: Bearer <token>` (or `token <token>`) and get GitHub's
//! `{"message":"Bad credentials"}` 401 otherwise; every answer carries the
//! `X-RateLimit-*` headers and, for classic tokens, `X-OAuth-Scopes`. Lists page
//! with `per_page` (at most 100) and `page`, and link the next and last pages in
//! a `Link` header.
//!
//! Fixed data: 45 repositories (the first is `octo-org/checkout`), and in
//! `octo-org/checkout` 250 commits one every 24 minutes back from start (the
//! oldest, [`vendored_commit_sha`], changes 300 files, over 1 MiB of patches), 40
//! pull requests, 35 workflow runs, 12 deployments, a few files (`README.md`,
//! `src/main.rs`, the `src` directory, and the 150 KB `logs/big.log`) and 3 code
//! search hits. Other repositories answer 404 below `/repos`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
pub use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::fake_server::{
    first_value, redacted_pairs, BoundPort, FakeServer, FakeState, FaultQueue, RequestLog, REDACTED,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// The client id the fake OAuth App accepts unless [`FakeGitHub::set_oauth_client`] changes it.
pub const FAKE_CLIENT_ID: &str = "Iv1.fakegithubclient";
/// The client secret the fake OAuth App accepts unless [`FakeGitHub::set_oauth_client`] changes it.
pub const FAKE_CLIENT_SECRET: &str = "fake-github-client-secret-0001";
/// The repository with data: `octo-org/checkout`.
pub const REPO_OWNER: &str = "octo-org";
/// The repository with data: `octo-org/checkout`.
pub const REPO_NAME: &str = "checkout";

const RATE_LIMIT: u64 = 5000;
const SECRET_PARAMS: &[&str] = &["client_secret", "code", "code_verifier", "access_token"];
const SECRET_HEADERS: &[&str] = &["authorization", "cookie"];

/// A request the fake received, with secret values replaced by `[redacted]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path, e.g. `/user/repos`.
    pub path: String,
    /// Query pairs in order; OAuth secrets (`code`, `client_secret`, ...) are redacted.
    pub query: Vec<(String, String)>,
    /// Lower-case header names with values; `authorization` and `cookie` are redacted.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The first value of a query parameter.
    pub fn query_value(&self, name: &str) -> Option<&str> {
        first_value(&self.query, name)
    }

    /// A header's value (case-insensitive name); secret headers read `[redacted]`.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A one-shot failure for the next request to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: <retry_after_secs>` (GitHub's secondary rate limit).
    RateLimited {
        /// The `Retry-After` value in seconds.
        retry_after_secs: u64,
    },
    /// 403 with `X-RateLimit-Remaining: 0` and a reset `reset_in_secs` from now.
    PrimaryRateLimit {
        /// Seconds until `X-RateLimit-Reset`.
        reset_in_secs: u64,
    },
    /// 403 "Resource not accessible by personal access token".
    Forbidden,
    /// 500 Internal Server Error.
    ServerError,
    /// 503 Service Unavailable.
    Unavailable,
}

/// A running fake GitHub; stops when dropped.
pub struct FakeGitHub {
    shared: Arc<Shared>,
    server: FakeServer,
}

struct Shared {
    token: String,
    base_url: String,
    data: Dataset,
    requests: RequestLog<RecordedRequest>,
    faults: FaultQueue<Fault>,
    mutable: FakeState<Mutable>,
}

struct Mutable {
    scopes: Option<String>,
    revoked: bool,
    remaining: u64,
    client_id: String,
    client_secret: String,
    codes: HashMap<String, PendingCode>,
    issued_codes: u64,
}

#[derive(Clone)]
struct PendingCode {
    redirect_uri: String,
    code_challenge: Option<String>,
}

impl FakeGitHub {
    /// Starts the fake on `127.0.0.1:0` accepting exactly this token (and issuing
    /// it from the OAuth token endpoint).
    pub async fn start(token: &str) -> FakeGitHub {
        let port = BoundPort::loopback("GitHub").await;
        let shared = Arc::new(Shared {
            token: token.to_owned(),
            base_url: port.base_url(),
            data: Dataset::new(Utc::now()),
            requests: RequestLog::default(),
            faults: FaultQueue::default(),
            mutable: FakeState::new(Mutable {
                scopes: Some("repo, read:org, read:user".to_owned()),
                revoked: false,
                remaining: RATE_LIMIT,
                client_id: FAKE_CLIENT_ID.to_owned(),
                client_secret: FAKE_CLIENT_SECRET.to_owned(),
                codes: HashMap::new(),
                issued_codes: 0,
            }),
        });
        let router = Router::new().fallback(handle).with_state(shared.clone());
        let server = port.serve(router);
        FakeGitHub { shared, server }
    }

    /// Sets the `X-OAuth-Scopes` value (`"repo, read:org"`); an empty string sends
    /// no header, as for fine-grained tokens. Also the scope the token endpoint grants.
    pub fn set_scopes(&self, scopes: &str) {
        let scopes = scopes.trim();
        self.shared.mutable.lock().scopes = (!scopes.is_empty()).then(|| scopes.to_owned());
    }

    /// Changes the OAuth App client credentials the fake accepts.
    pub fn set_oauth_client(&self, client_id: &str, client_secret: &str) {
        let mut state = self.shared.mutable.lock();
        state.client_id = client_id.to_owned();
        state.client_secret = client_secret.to_owned();
    }

    /// Expects a token exchange for `code` with this redirect URI and, when given,
    /// this S256 `code_challenge`; codes are single-use.
    pub fn register_code(&self, code: &str, redirect_uri: &str, code_challenge: Option<&str>) {
        self.shared.mutable.lock().codes.insert(
            code.to_owned(),
            PendingCode {
                redirect_uri: redirect_uri.to_owned(),
                code_challenge: code_challenge.map(str::to_owned),
            },
        );
    }

    /// Whether the token was revoked through `DELETE /applications/{client_id}/grant`.
    pub fn is_revoked(&self) -> bool {
        self.shared.mutable.lock().revoked
    }

    /// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`): the `X-Hub-Signature-256` value.
    pub fn sign_webhook(&self, secret: &str, body: &[u8]) -> String {
        sign_webhook(secret, body)
    }
}

patchbay_testkit::provider_fake!(FakeGitHub, hosts: ["api.github.com", "github.com"], request: RecordedRequest, keyed by: path, log: shared.requests, fault: Fault, queued in: shared.faults);

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `body`), as GitHub signs deliveries.
pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// A realistic webhook payload for `event` (`workflow_run`, `check_run`,
/// `deployment_status`, `push`, `ping`) ending in `outcome` (a conclusion such as
/// `failure` or `success`, or a deployment state such as `error`).
pub fn sample_payload(event: &str, outcome: &str) -> Value {
    let repository = json!({
        "id": 186853261, "name": REPO_NAME, "full_name": format!("{REPO_OWNER}/{REPO_NAME}"),
        "private": true, "default_branch": "main",
        "html_url": format!("https://github.com/{REPO_OWNER}/{REPO_NAME}"),
        "owner": {"login": REPO_OWNER, "id": 38302899, "type": "Organization"},
    });
    let sender = json!({"login": "octocat", "id": 1, "type": "User"});
    let sha = commit_sha(7);
    match event {
        "workflow_run" => json!({
            "action": "completed",
            "workflow_run": {
                "id": 30433642, "name": "CI", "workflow_id": 159038, "run_number": 562,
                "event": "push", "status": "completed", "conclusion": outcome,
                "head_branch": "main", "head_sha": sha,
                "created_at": "2024-05-01T11:50:00Z", "run_started_at": "2024-05-01T11:50:05Z",
                "updated_at": "2024-05-01T11:58:00Z",
                "html_url": format!("https://github.com/{REPO_OWNER}/{REPO_NAME}/actions/runs/30433642"),
                "actor": {"login": "octocat"},
            },
            "workflow": {"id": 159038, "name": "CI", "path": ".github/workflows/ci.yml"},
            "repository": repository, "sender": sender,
        }),
        "check_run" => json!({
            "action": "completed",
            "check_run": {
                "id": 128620228, "name": "integration-tests", "head_sha": sha,
                "status": "completed", "conclusion": outcome,
                "started_at": "2024-05-01T11:50:05Z", "completed_at": "2024-05-01T11:57:40Z",
                "html_url": format!("https://github.com/{REPO_OWNER}/{REPO_NAME}/runs/128620228"),
                "app": {"slug": "github-actions"},
                "check_suite": {"id": 118578147, "head_branch": "main", "head_sha": sha},
            },
            "repository": repository, "sender": sender,
        }),
        "deployment_status" => json!({
            "action": "created",
            "deployment_status": {
                "id": 2600, "state": outcome, "environment": "production",
                "description": format!("Deployment {outcome}"),
                "target_url": format!("https://github.com/{REPO_OWNER}/{REPO_NAME}/actions/runs/30433643"),
                "created_at": "2024-05-01T12:03:00Z",
            },
            "deployment": {
                "id": 145988746, "sha": sha, "ref": "main", "task": "deploy",
                "environment": "production", "created_at": "2024-05-01T12:00:00Z",
                "url": format!("https://api.github.com/repos/{REPO_OWNER}/{REPO_NAME}/deployments/145988746"),
            },
            "repository": repository, "sender": sender,
        }),
        "push" => json!({
            "ref": "refs/heads/main", "before": commit_sha(8), "after": sha,
            "created": false, "deleted": false, "forced": false,
            "compare": format!("https://github.com/{REPO_OWNER}/{REPO_NAME}/compare/{}...{}", &commit_sha(8)[..12], &sha[..12]),
            "commits": [{"id": sha, "message": "Raise the payments timeout to 5s", "timestamp": "2024-05-01T11:49:00Z",
                         "author": {"name": "Mona Lisa", "email": "mona@example.com", "username": "octocat"}}],
            "head_commit": {"id": sha, "message": "Raise the payments timeout to 5s", "timestamp": "2024-05-01T11:49:00Z"},
            "pusher": {"name": "octocat", "email": "mona@example.com"},
            "repository": repository, "sender": sender,
        }),
        _ => json!({
            "zen": "Anything added dilutes everything else.",
            "hook_id": 109948940,
            "hook": {"type": "Repository", "id": 109948940, "name": "web", "active": true, "events": ["*"],
                     "config": {"content_type": "json", "insecure_ssl": "0"}},
            "repository": repository, "sender": sender,
        }),
    }
}

fn commit_sha(index: usize) -> String {
    hex::encode(&Sha256::digest(format!("commit-{index}").as_bytes())[..20])
}

/// How many commits `octo-org/checkout` has; the last, the oldest, is the vendored one.
const COMMITS: usize = 250;
/// The index of the commit that vendors a client library.
const VENDORED_COMMIT: usize = COMMITS - 1;
/// How many files the vendored commit adds: as many as GitHub lists for one commit.
const VENDORED_FILES: usize = 300;

/// The SHA of the oldest commit, which vendors a client library: 300 added files
/// whose patches together (over 1 MiB) exceed what one query answer may hold.
pub fn vendored_commit_sha() -> String {
    commit_sha(VENDORED_COMMIT)
}

fn rfc3339(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The fixed objects the fake serves.
struct Dataset {
    repos: Vec<Value>,
    commits: Vec<(DateTime<Utc>, Value)>,
    pulls: Vec<Value>,
    runs: Vec<Value>,
    deployments: Vec<Value>,
}

impl Dataset {
    fn new(started: DateTime<Utc>) -> Self {
        let repo_url = |name: &str| format!("https://github.com/{REPO_OWNER}/{name}");
        let repos = (0..45_i64)
            .map(|index| {
                let name = if index == 0 {
                    REPO_NAME.to_owned()
                } else {
                    format!("service-{index:02}")
                };
                json!({
                    "id": 1_296_269 + index, "node_id": format!("MDEwOlJlcG9zaXRvcnk{index}"),
                    "name": name, "full_name": format!("{REPO_OWNER}/{name}"),
                    "owner": {"login": REPO_OWNER, "id": 38302899, "type": "Organization"},
                    "private": index % 3 != 0, "visibility": if index % 3 == 0 { "public" } else { "private" },
                    "html_url": repo_url(&name), "description": format!("The {name} service"),
                    "fork": false, "language": LANGUAGES[usize::try_from(index).unwrap_or(0) % 3],
                    "default_branch": "main", "archived": false,
                    "pushed_at": rfc3339(started - TimeDelta::hours(index)),
                    "updated_at": rfc3339(started - TimeDelta::hours(index)),
                    "created_at": "2020-01-01T00:00:00Z",
                    "permissions": {"admin": false, "push": true, "pull": true},
                })
            })
            .collect();
        let commits = (0..COMMITS)
            .map(|index| {
                let at = started - TimeDelta::minutes(24 * i64::try_from(index).unwrap_or(0));
                let sha = commit_sha(index);
                let login = ["octocat", "hubot", "monalisa"][index % 3];
                (
                    at,
                    json!({
                        "sha": sha, "node_id": format!("C_{index}"),
                        "commit": {
                            "author": {"name": login, "email": format!("{login}@example.com"), "date": rfc3339(at)},
                            "committer": {"name": "GitHub", "email": "noreply@github.com", "date": rfc3339(at)},
                            "message": if index == VENDORED_COMMIT {
                                "Vendor the payments client".to_owned()
                            } else {
                                format!("Change {index}: tune checkout retries")
                            },
                            "tree": {"sha": commit_sha(index + 10_000)},
                            "comment_count": 0,
                        },
                        "url": format!("https://api.github.com/repos/{REPO_OWNER}/{REPO_NAME}/commits/{sha}"),
                        "html_url": format!("{}/commit/{sha}", repo_url(REPO_NAME)),
                        "author": {"login": login, "id": index + 1},
                        "committer": {"login": "web-flow", "id": 19864447},
                        "parents": [{"sha": commit_sha(index + 1)}],
                    }),
                )
            })
            .collect();
        let pulls = (1..=40_i64)
            .map(|number| {
                let state = if number % 4 == 0 { "closed" } else { "open" };
                let updated = started - TimeDelta::hours(number);
                json!({
                    "id": 1_000_000 + number, "number": number, "state": state,
                    "title": format!("Checkout change #{number}"),
                    "body": format!("Fixes the retry budget ({number})."),
                    "draft": number % 5 == 0, "locked": false,
                    "user": {"login": "octocat", "id": 1},
                    "head": {"ref": format!("feature-{number}"), "sha": commit_sha(usize::try_from(number).unwrap_or(0))},
                    "base": {"ref": if number % 2 == 0 { "main" } else { "release" }, "sha": commit_sha(0)},
                    "created_at": rfc3339(updated - TimeDelta::hours(2)),
                    "updated_at": rfc3339(updated),
                    "closed_at": if state == "closed" { Value::String(rfc3339(updated)) } else { Value::Null },
                    "merged_at": if state == "closed" { Value::String(rfc3339(updated)) } else { Value::Null },
                    "html_url": format!("{}/pull/{number}", repo_url(REPO_NAME)),
                    "additions": 120, "deletions": 14, "changed_files": 3, "commits": 2,
                    "mergeable_state": "clean", "merge_commit_sha": commit_sha(500),
                })
            })
            .collect();
        let conclusions = ["success", "failure", "success", "cancelled", "timed_out"];
        let runs = (0..35_usize)
            .map(|index| {
                let created = started - TimeDelta::minutes(30 * i64::try_from(index).unwrap_or(0));
                let (status, conclusion) = if index == 0 {
                    ("in_progress", Value::Null)
                } else {
                    ("completed", json!(conclusions[index % conclusions.len()]))
                };
                json!({
                    "id": 30_433_642 + index, "name": "CI", "workflow_id": 159038,
                    "run_number": 600 - index, "event": "push", "status": status, "conclusion": conclusion,
                    "head_branch": if index % 2 == 0 { "main" } else { "release" },
                    "head_sha": commit_sha(index), "actor": {"login": "octocat"},
                    "created_at": rfc3339(created), "updated_at": rfc3339(created + TimeDelta::minutes(8)),
                    "run_started_at": rfc3339(created),
                    "html_url": format!("{}/actions/runs/{}", repo_url(REPO_NAME), 30_433_642 + index),
                })
            })
            .collect();
        let deployments = (0..12_usize)
            .map(|index| {
                let created = started - TimeDelta::hours(3 * i64::try_from(index).unwrap_or(0));
                let id = 145_988_746 + index;
                json!({
                    "id": id, "sha": commit_sha(index), "ref": if index % 3 == 0 { "v2.4.0" } else { "main" },
                    "task": "deploy", "environment": if index % 2 == 0 { "production" } else { "staging" },
                    "description": "Deploy request from hubot", "creator": {"login": "hubot"},
                    "created_at": rfc3339(created), "updated_at": rfc3339(created + TimeDelta::minutes(4)),
                    "statuses_url": format!("https://api.github.com/repos/{REPO_OWNER}/{REPO_NAME}/deployments/{id}/statuses"),
                    "payload": {},
                })
            })
            .collect();
        Self {
            repos,
            commits,
            pulls,
            runs,
            deployments,
        }
    }
}

/// Languages of the fake repositories, in turn.
const LANGUAGES: [&str; 3] = ["Go", "Rust", "TypeScript"];

/// The big file's size, above the connector's 100 KB cap.
const BIG_FILE_BYTES: usize = 150 * 1024;

fn file_contents(path: &str) -> Option<Value> {
    let text = match path {
        "README.md" => "# checkout\n\nThe checkout service.\n".to_owned(),
        "src/main.rs" => "fn main() {\n    println!(\"checkout\");\n}\n".to_owned(),
        "logs/big.log" => "GET /healthz 200 2ms\n".repeat(BIG_FILE_BYTES / 21 + 1),
        _ => return None,
    };
    let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    // GitHub wraps base64 content at 60 characters.
    let wrapped = encoded
        .as_bytes()
        .chunks(60)
        .map(|chunk| String::from_utf8_lossy(chunk).into_owned())
        .collect::<Vec<_>>()
        .join("\n");
    let name = path.rsplit('/').next().unwrap_or(path);
    Some(json!({
        "type": "file", "encoding": "base64", "size": text.len(), "name": name, "path": path,
        "content": wrapped, "sha": hex::encode(&Sha256::digest(text.as_bytes())[..20]),
        "html_url": format!("https://github.com/{REPO_OWNER}/{REPO_NAME}/blob/main/{path}"),
    }))
}

fn directory(path: &str) -> Option<Value> {
    let entries: &[(&str, &str, usize)] = match path {
        "" => &[
            ("README.md", "file", 34),
            ("src", "dir", 0),
            ("logs", "dir", 0),
        ],
        "src" => &[("src/main.rs", "file", 42)],
        "logs" => &[("logs/big.log", "file", BIG_FILE_BYTES)],
        _ => return None,
    };
    Some(Value::Array(
        entries
            .iter()
            .map(|(entry_path, kind, size)| {
                json!({
                    "type": kind, "size": size, "path": entry_path,
                    "name": entry_path.rsplit('/').next().unwrap_or(entry_path),
                    "sha": hex::encode(&Sha256::digest(entry_path.as_bytes())[..20]),
                })
            })
            .collect(),
    ))
}

fn message(status: StatusCode, text: &str) -> Response {
    (
        status,
        [("content-type", "application/json; charset=utf-8")],
        json!({"message": text, "documentation_url": "https://docs.github.com/rest", "status": status.as_u16().to_string()})
            .to_string(),
    )
        .into_response()
}

fn json_response(body: Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn first<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 1024 * 1024)
        .await
        .unwrap_or_default();
    let query = query_pairs(parts.uri.query());
    record(
        &shared,
        &parts.method,
        parts.uri.path(),
        &query,
        &parts.headers,
    );
    // GitHub Enterprise Server serves the same REST API under `/api/v3`.
    let path = match parts.uri.path().strip_prefix("/api/v3") {
        Some(rest) if rest.starts_with('/') => rest.to_owned(),
        _ => parts.uri.path().to_owned(),
    };
    if path.starts_with("/login/oauth/") {
        return oauth(&shared, &parts.method, &path, &query, &parts.headers, &body);
    }
    if let Some(client_id) = path
        .strip_prefix("/applications/")
        .and_then(|rest| rest.strip_suffix("/grant"))
    {
        return revoke_grant(&shared, &parts.method, client_id, &parts.headers, &body);
    }
    let fault = shared.faults.take(&path);
    if let Some(fault) = fault {
        return fault_response(fault);
    }
    if !authorized(&shared, &parts.headers) {
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    if parts.method != Method::GET {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let search = path.starts_with("/search/");
    let (scopes, remaining) = {
        let mut state = shared.mutable.lock();
        state.remaining = state.remaining.saturating_sub(1);
        (state.scopes.clone(), state.remaining)
    };
    let mut response = route(&shared, &path, &query);
    let headers = response.headers_mut();
    let reset = (Utc::now() + TimeDelta::hours(1)).timestamp().to_string();
    let (limit, remaining, resource) = if search {
        (30, 29, "code_search")
    } else {
        (RATE_LIMIT, remaining, "core")
    };
    for (name, value) in [
        ("x-ratelimit-limit", limit.to_string()),
        ("x-ratelimit-remaining", remaining.to_string()),
        ("x-ratelimit-used", (limit - remaining).to_string()),
        ("x-ratelimit-reset", reset),
        ("x-ratelimit-resource", resource.to_owned()),
        ("x-github-api-version-selected", "2022-11-28".to_owned()),
    ] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(name, value);
        }
    }
    if let Some(scopes) = scopes.and_then(|scopes| HeaderValue::from_str(&scopes).ok()) {
        headers.insert("x-oauth-scopes", scopes);
        headers.insert("x-accepted-oauth-scopes", HeaderValue::from_static("repo"));
    }
    response
}

fn record(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) {
    let query = redacted_pairs(query, |name| SECRET_PARAMS.contains(&name));
    let headers = headers
        .iter()
        .map(|(name, value)| {
            let name = name.as_str().to_ascii_lowercase();
            let value = if SECRET_HEADERS.contains(&name.as_str()) {
                REDACTED.to_owned()
            } else {
                value.to_str().unwrap_or("").to_owned()
            };
            (name, value)
        })
        .collect();
    shared.requests.record(RecordedRequest {
        method: method.to_string(),
        path: path.to_owned(),
        query,
        headers,
    });
}

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
    else {
        return false;
    };
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("token "));
    token == Some(shared.token.as_str()) && !shared.mutable.lock().revoked
}

fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::RateLimited { retry_after_secs } => {
            let mut response = message(
                StatusCode::TOO_MANY_REQUESTS,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            if let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert("retry-after", value);
            }
            response
        }
        Fault::PrimaryRateLimit { reset_in_secs } => {
            let mut response = message(
                StatusCode::FORBIDDEN,
                "API rate limit exceeded for user ID 1.",
            );
            let reset = Utc::now().timestamp() + i64::try_from(reset_in_secs).unwrap_or(0);
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit", HeaderValue::from_static("5000"));
            headers.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
            headers.insert("x-ratelimit-resource", HeaderValue::from_static("core"));
            if let Ok(value) = HeaderValue::from_str(&reset.to_string()) {
                headers.insert("x-ratelimit-reset", value);
            }
            response
        }
        Fault::Forbidden => message(
            StatusCode::FORBIDDEN,
            "Resource not accessible by personal access token",
        ),
        Fault::ServerError => message(StatusCode::INTERNAL_SERVER_ERROR, "Server Error"),
        Fault::Unavailable => message(StatusCode::SERVICE_UNAVAILABLE, "Service Unavailable"),
    }
}

/// Pages `items` by `per_page` (default 30, at most 100) and `page`, with a `Link` header.
fn paginate(
    shared: &Shared,
    path: &str,
    query: &[(String, String)],
    items: &[Value],
) -> (Vec<Value>, Option<String>) {
    let per_page = first(query, "per_page")
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(30)
        .clamp(1, 100);
    let page = first(query, "page")
        .and_then(|value| value.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    let pages = items.len().div_ceil(per_page).max(1);
    let start = (page - 1).saturating_mul(per_page).min(items.len());
    let end = (start + per_page).min(items.len());
    let link_to = |target: usize, rel: &str| {
        let mut pairs = url::form_urlencoded::Serializer::new(String::new());
        for (key, value) in query.iter().filter(|(key, _)| key != "page") {
            pairs.append_pair(key, value);
        }
        pairs.append_pair("page", &target.to_string());
        format!(
            "<{}{path}?{}>; rel=\"{rel}\"",
            shared.base_url,
            pairs.finish()
        )
    };
    let mut links = Vec::new();
    if page < pages {
        links.push(link_to(page + 1, "next"));
        links.push(link_to(pages, "last"));
    }
    if page > 1 {
        links.push(link_to(1, "first"));
        links.push(link_to(page - 1, "prev"));
    }
    let link = (!links.is_empty()).then(|| links.join(", "));
    (items[start..end].to_vec(), link)
}

fn list_response(items: Vec<Value>, link: Option<String>) -> Response {
    with_link(json_response(Value::Array(items)), link)
}

fn with_link(mut response: Response, link: Option<String>) -> Response {
    if let Some(link) = link.and_then(|link| HeaderValue::from_str(&link).ok()) {
        response.headers_mut().insert("link", link);
    }
    response
}

fn route(shared: &Shared, path: &str, query: &[(String, String)]) -> Response {
    let data = &shared.data;
    match path {
        "/user" => {
            return json_response(json!({
                "login": "octocat", "id": 1, "node_id": "MDQ6VXNlcjE=", "type": "User",
                "name": "The Octocat", "company": "@octo-org", "html_url": "https://github.com/octocat",
                "created_at": "2008-01-14T04:33:35Z",
            }))
        }
        "/user/repos" => {
            let (items, link) = paginate(shared, path, query, &data.repos);
            return list_response(items, link);
        }
        "/rate_limit" => {
            let remaining = shared.mutable.lock().remaining;
            let reset = (Utc::now() + TimeDelta::hours(1)).timestamp();
            let core = json!({"limit": RATE_LIMIT, "used": RATE_LIMIT - remaining, "remaining": remaining, "reset": reset});
            return json_response(json!({
                "resources": {"core": core, "search": {"limit": 30, "used": 0, "remaining": 30, "reset": reset},
                              "code_search": {"limit": 10, "used": 0, "remaining": 10, "reset": reset}},
                "rate": core,
            }));
        }
        "/search/code" => {
            let Some(q) = first(query, "q").filter(|q| !q.trim().is_empty()) else {
                return (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    [("content-type", "application/json; charset=utf-8")],
                    json!({"message": "Validation Failed", "errors": [{"resource": "Search", "field": "q", "code": "missing"}]}).to_string(),
                )
                    .into_response();
            };
            let hits: Vec<Value> = ["src/main.rs", "src/retry.rs", "deploy/values.yaml"]
                .iter()
                .map(|hit| {
                    json!({
                        "name": hit.rsplit('/').next().unwrap_or(hit), "path": hit,
                        "sha": hex::encode(&Sha256::digest(hit.as_bytes())[..20]),
                        "html_url": format!("https://github.com/{REPO_OWNER}/{REPO_NAME}/blob/main/{hit}"),
                        "repository": {"full_name": format!("{REPO_OWNER}/{REPO_NAME}"), "private": true},
                        "score": 1.0, "query": q,
                    })
                })
                .collect();
            let (items, link) = paginate(shared, path, query, &hits);
            return with_link(
                json_response(
                    json!({"total_count": hits.len(), "incomplete_results": false, "items": items}),
                ),
                link,
            );
        }
        _ => {}
    }
    let prefix = format!("/repos/{REPO_OWNER}/{REPO_NAME}");
    let Some(rest) = path.strip_prefix(&prefix) else {
        return message(StatusCode::NOT_FOUND, "Not Found");
    };
    let segments: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    match segments.as_slice() {
        ["commits"] => {
            let bound = |name: &str| {
                first(query, name).map(|value| {
                    DateTime::parse_from_rfc3339(value).map(|time| time.with_timezone(&Utc))
                })
            };
            let (since, until) = match (bound("since"), bound("until")) {
                (Some(Err(_)), _) | (_, Some(Err(_))) => {
                    return message(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed")
                }
                (since, until) => (since.and_then(Result::ok), until.and_then(Result::ok)),
            };
            let author = first(query, "author");
            let matching: Vec<Value> = data
                .commits
                .iter()
                .filter(|(at, _)| since.is_none_or(|since| *at >= since))
                .filter(|(at, _)| until.is_none_or(|until| *at <= until))
                .filter(|(_, commit)| {
                    author.is_none_or(|author| {
                        commit.pointer("/author/login").and_then(Value::as_str) == Some(author)
                    })
                })
                .map(|(_, commit)| commit.clone())
                .collect();
            let (items, link) = paginate(shared, path, query, &matching);
            list_response(items, link)
        }
        ["commits", sha] => {
            let Some((_, commit)) = data.commits.iter().find(|(_, commit)| {
                commit
                    .get("sha")
                    .and_then(Value::as_str)
                    .is_some_and(|full| sha.len() >= 7 && full.starts_with(sha))
            }) else {
                return message(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("No commit found for SHA: {sha}"),
                );
            };
            let mut commit = commit.clone();
            if commit.get("sha").and_then(Value::as_str) == Some(vendored_commit_sha().as_str()) {
                let files = vendored_files();
                let additions = VENDORED_FILES * VENDORED_FILE_LINES;
                commit["stats"] =
                    json!({"total": additions, "additions": additions, "deletions": 0});
                commit["files"] = files;
            } else {
                commit["stats"] = json!({"total": 2066, "additions": 2050, "deletions": 16});
                commit["files"] = change_files();
            }
            json_response(commit)
        }
        ["pulls"] => {
            let state = first(query, "state").unwrap_or("open");
            let base = first(query, "base");
            let matching: Vec<Value> = data
                .pulls
                .iter()
                .filter(|pull| {
                    state == "all" || pull.get("state").and_then(Value::as_str) == Some(state)
                })
                .filter(|pull| {
                    base.is_none_or(|base| {
                        pull.pointer("/base/ref").and_then(Value::as_str) == Some(base)
                    })
                })
                .cloned()
                .collect();
            let (items, link) = paginate(shared, path, query, &matching);
            list_response(items, link)
        }
        ["pulls", number] => match find_pull(data, number) {
            Some(pull) => json_response(pull.clone()),
            None => message(StatusCode::NOT_FOUND, "Not Found"),
        },
        ["pulls", number, "files"] => match find_pull(data, number) {
            Some(_) => {
                let files = change_files();
                let (items, link) = paginate(
                    shared,
                    path,
                    query,
                    files.as_array().map_or(&[][..], Vec::as_slice),
                );
                list_response(items, link)
            }
            None => message(StatusCode::NOT_FOUND, "Not Found"),
        },
        ["actions", "runs"] => {
            let status = first(query, "status");
            let branch = first(query, "branch");
            let matching: Vec<Value> = data
                .runs
                .iter()
                .filter(|run| {
                    status.is_none_or(|status| {
                        run.get("status").and_then(Value::as_str) == Some(status)
                            || run.get("conclusion").and_then(Value::as_str) == Some(status)
                    })
                })
                .filter(|run| {
                    branch.is_none_or(|branch| {
                        run.get("head_branch").and_then(Value::as_str) == Some(branch)
                    })
                })
                .cloned()
                .collect();
            let (items, link) = paginate(shared, path, query, &matching);
            with_link(
                json_response(json!({"total_count": matching.len(), "workflow_runs": items})),
                link,
            )
        }
        ["deployments"] => {
            let environment = first(query, "environment");
            let git_ref = first(query, "ref");
            let matching: Vec<Value> = data
                .deployments
                .iter()
                .filter(|deployment| {
                    environment.is_none_or(|environment| {
                        deployment.get("environment").and_then(Value::as_str) == Some(environment)
                    })
                })
                .filter(|deployment| {
                    git_ref.is_none_or(|git_ref| {
                        deployment.get("ref").and_then(Value::as_str) == Some(git_ref)
                    })
                })
                .cloned()
                .collect();
            let (items, link) = paginate(shared, path, query, &matching);
            list_response(items, link)
        }
        ["contents", file @ ..] => {
            let file_path = file.join("/");
            if first(query, "ref").is_some_and(|git_ref| {
                git_ref != "main" && !git_ref.starts_with(&commit_sha(0)[..7])
            }) {
                return message(
                    StatusCode::NOT_FOUND,
                    &format!(
                        "No commit found for the ref {}",
                        first(query, "ref").unwrap_or("")
                    ),
                );
            }
            match file_contents(&file_path).or_else(|| directory(&file_path)) {
                Some(found) => json_response(found),
                None => message(StatusCode::NOT_FOUND, "Not Found"),
            }
        }
        _ => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn find_pull<'d>(data: &'d Dataset, number: &str) -> Option<&'d Value> {
    let number: u64 = number.parse().ok()?;
    data.pulls
        .iter()
        .find(|pull| pull.get("number").and_then(Value::as_u64) == Some(number))
}

/// Three changed files; the first carries a 20 KB patch to exercise patch caps.
fn change_files() -> Value {
    let big_patch = format!(
        "@@ -1,3 +1,2050 @@\n{}",
        "+retry_budget = 5 # raised during the incident\n".repeat(430)
    );
    json!([
        {"sha": commit_sha(900), "filename": "src/retry.rs", "status": "modified",
         "additions": 2040, "deletions": 10, "changes": 2050, "patch": big_patch},
        {"sha": commit_sha(901), "filename": "deploy/values.yaml", "status": "modified",
         "additions": 8, "deletions": 4, "changes": 12,
         "patch": "@@ -10,4 +10,8 @@\n-timeout: 3s\n+timeout: 5s\n"},
        {"sha": commit_sha(902), "filename": "docs/runbook.md", "status": "renamed",
         "previous_filename": "docs/old-runbook.md", "additions": 2, "deletions": 2, "changes": 4,
         "patch": "@@ -1 +1 @@\n-old\n+new\n"},
    ])
}

/// The lines each file of the vendored commit adds.
const VENDORED_FILE_LINES: usize = 120;

/// The vendored commit's files: each adds a generated source file of
/// [`VENDORED_FILE_LINES`] lines (about 6 KB of patch, under the connector's
/// per-patch cap, so only the answer as a whole is too large).
fn vendored_files() -> Value {
    let patch = format!(
        "@@ -0,0 +1,{VENDORED_FILE_LINES} @@\n{}",
        "+    pub const GENERATED_FIELD: &str = \"payments\";\n".repeat(VENDORED_FILE_LINES)
    );
    Value::Array(
        (0..VENDORED_FILES)
            .map(|index| {
                json!({
                    "sha": commit_sha(20_000 + index),
                    "filename": format!("vendor/payments-client/src/model_{index:03}.rs"),
                    "status": "added", "additions": VENDORED_FILE_LINES, "deletions": 0,
                    "changes": VENDORED_FILE_LINES, "patch": patch,
                })
            })
            .collect(),
    )
}

/// The fields of a token request: query, then a JSON or form body.
fn token_request_fields(
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &Bytes,
) -> HashMap<String, String> {
    let mut fields: HashMap<String, String> = query.iter().cloned().collect();
    let is_json = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|kind| kind.starts_with("application/json"));
    if is_json {
        if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(body) {
            for (key, value) in map {
                if let Value::String(text) = value {
                    fields.insert(key, text);
                }
            }
        }
    } else {
        fields.extend(url::form_urlencoded::parse(body).into_owned());
    }
    fields
}

fn oauth(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    match (method.clone(), path) {
        (Method::GET, "/login/oauth/authorize") => authorize(shared, query),
        (Method::POST, "/login/oauth/access_token") => {
            let fields = token_request_fields(query, headers, body);
            let wants_json = headers
                .get("accept")
                .and_then(|value| value.to_str().ok())
                .is_some_and(|accept| accept.contains("application/json"));
            let answer = exchange(shared, &fields);
            if wants_json {
                json_response(Value::Object(
                    answer
                        .into_iter()
                        .map(|(key, value)| (key.to_owned(), json!(value)))
                        .collect(),
                ))
            } else {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                for (key, value) in &answer {
                    form.append_pair(key, value);
                }
                (
                    StatusCode::OK,
                    [(
                        "content-type",
                        "application/x-www-form-urlencoded; charset=utf-8",
                    )],
                    form.finish(),
                )
                    .into_response()
            }
        }
        _ => message(StatusCode::NOT_FOUND, "Not Found"),
    }
}

fn authorize(shared: &Shared, query: &[(String, String)]) -> Response {
    let mut state = shared.mutable.lock();
    if first(query, "client_id") != Some(state.client_id.as_str()) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    let Some(redirect_uri) = first(query, "redirect_uri").filter(|uri| !uri.is_empty()) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    let challenge = first(query, "code_challenge").map(str::to_owned);
    if challenge.is_some() && first(query, "code_challenge_method") != Some("S256") {
        return (
            StatusCode::BAD_REQUEST,
            "code_challenge_method must be S256",
        )
            .into_response();
    }
    state.issued_codes += 1;
    let code = format!("fakecode{:012}", state.issued_codes);
    state.codes.insert(
        code.clone(),
        PendingCode {
            redirect_uri: redirect_uri.to_owned(),
            code_challenge: challenge,
        },
    );
    let mut target = url::form_urlencoded::Serializer::new(String::new());
    target.append_pair("code", &code);
    if let Some(oauth_state) = first(query, "state") {
        target.append_pair("state", oauth_state);
    }
    let separator = if redirect_uri.contains('?') { '&' } else { '?' };
    let location = format!("{redirect_uri}{separator}{}", target.finish());
    match HeaderValue::from_str(&location) {
        Ok(location) => {
            let mut response = StatusCode::FOUND.into_response();
            response.headers_mut().insert("location", location);
            response
        }
        Err(_) => (StatusCode::BAD_REQUEST, "invalid redirect_uri").into_response(),
    }
}

/// GitHub's token endpoint answer: tokens on success, `error` fields (with HTTP 200) otherwise.
fn exchange(shared: &Shared, fields: &HashMap<String, String>) -> Vec<(&'static str, String)> {
    let error = |code: &str, description: &str| {
        vec![
            ("error", code.to_owned()),
            ("error_description", description.to_owned()),
            ("error_uri", "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors".to_owned()),
        ]
    };
    let field = |name: &str| fields.get(name).map(String::as_str);
    let mut state = shared.mutable.lock();
    if field("client_id") != Some(state.client_id.as_str())
        || field("client_secret") != Some(state.client_secret.as_str())
    {
        return error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let Some(pending) = field("code").and_then(|code| state.codes.remove(code)) else {
        return error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        );
    };
    if field("redirect_uri").is_some_and(|uri| uri != pending.redirect_uri) {
        return error(
            "redirect_uri_mismatch",
            "The redirect_uri MUST match the registered callback URL for this application.",
        );
    }
    if let Some(challenge) = &pending.code_challenge {
        let verified = field("code_verifier").is_some_and(|verifier| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(Sha256::digest(verifier.as_bytes()))
                == *challenge
        });
        if !verified {
            return error(
                "bad_verification_code",
                "The code_verifier does not match the code_challenge.",
            );
        }
    }
    let scope = state
        .scopes
        .as_deref()
        .map(|scopes| {
            scopes
                .split(',')
                .map(str::trim)
                .filter(|scope| !scope.is_empty())
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    state.revoked = false;
    vec![
        ("access_token", shared.token.clone()),
        ("scope", scope),
        ("token_type", "bearer".to_owned()),
    ]
}

fn revoke_grant(
    shared: &Shared,
    method: &Method,
    client_id: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    if *method != Method::DELETE {
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    let mut state = shared.mutable.lock();
    let basic = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "))
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()
        })
        .and_then(|decoded| String::from_utf8(decoded).ok());
    let expected = format!("{}:{}", state.client_id, state.client_secret);
    if basic.as_deref() != Some(expected.as_str()) || client_id != state.client_id {
        drop(state);
        return message(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    let token = serde_json::from_slice::<Value>(body).ok().and_then(|body| {
        body.get("access_token")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if token.as_deref() != Some(shared.token.as_str()) || state.revoked {
        drop(state);
        return message(StatusCode::NOT_FOUND, "Not Found");
    }
    state.revoked = true;
    StatusCode::NO_CONTENT.into_response()
}
