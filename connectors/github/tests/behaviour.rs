//! Behaviour users rely on: validation lines, parameter checks, paging with opaque
//! cursors and caps, rate-limit and 404 mapping, Enterprise base URLs, OAuth
//! grants, revocation, webhook signatures (GitHub's published vectors) and webhook
//! normalisation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use patchbay_connector_github::fake::{
    sample_payload, sign_webhook, vendored_commit_sha, FakeGitHub, Fault, FAKE_CLIENT_ID,
    FAKE_CLIENT_SECRET,
};
use patchbay_connector_github::{webhook, GitHubConnector, DESCRIPTOR};
use patchbay_core::{
    AlertSeverity, AlertStatus, AuthRequest, CheckOutcome, ConnectorContext, ConnectorEnv,
    DynConnector, DynCredentials, ErrorKind, EventKind, FormFields, FromEnv, InboundWebhook,
    OAuthClientCredentials, OAuthGrant, RevealedJson, RevokeOutcome, SecretString,
    ValidationStatus, WebhookKey, MAX_OUTPUT_BYTES,
};
use patchbay_http::{HttpClient, HttpConfig, UpstreamOverrides};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const TOKEN: &str = "gho_behaviour_token_5f2c9a7e31d4";
const SECRET: &str = "behaviour-webhook-secret";

fn connector_with(overrides: &str) -> Arc<dyn DynConnector> {
    let http = HttpClient::new(HttpConfig {
        overrides: UpstreamOverrides::parse(overrides).unwrap(),
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retries: 0,
        ..HttpConfig::default()
    })
    .unwrap();
    Arc::new(GitHubConnector::new(http))
}

fn connector_for(fake: &FakeGitHub) -> Arc<dyn DynConnector> {
    connector_with(&fake.override_spec())
}

/// A connector configured the way an operator does it: through the environment.
fn connector_from_env(overrides: &str, allowed_private_networks: &str) -> Arc<dyn DynConnector> {
    let env = ConnectorEnv::from_pairs([
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides),
        (
            "PATCHBAY_ALLOWED_PRIVATE_NETWORKS",
            allowed_private_networks,
        ),
        ("PATCHBAY_HTTP_MAX_RETRIES", "0"),
    ]);
    Arc::new(GitHubConnector::from_env(&env).unwrap())
}

/// A loopback listener that counts the connections made to it and answers none.
struct Listener {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { port, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn stored(config: Value) -> DynCredentials {
    DynCredentials {
        config,
        secrets: RevealedJson::new(json!({"access_token": TOKEN})),
    }
}

fn form(value: Value) -> AuthRequest {
    match value {
        Value::Object(map) => AuthRequest::Form(FormFields(map)),
        other => panic!("forms are objects, got {other}"),
    }
}

async fn pat(connector: &Arc<dyn DynConnector>, token: &str) -> DynCredentials {
    connector
        .authenticate(form(json!({"token": token})))
        .await
        .unwrap()
}

/// A fake GitHub, a connector pointed at it and credentials for its token.
async fn connected() -> (FakeGitHub, Arc<dyn DynConnector>, DynCredentials) {
    let fake = FakeGitHub::start(TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = pat(&connector, TOKEN).await;
    (fake, connector, credentials)
}

fn grant(scopes: &[&str], options: Value) -> OAuthGrant {
    OAuthGrant {
        access_token: SecretString::from(TOKEN),
        refresh_token: None,
        expires_at: None,
        scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
        token_type: Some("bearer".to_owned()),
        extra: Default::default(),
        options: options.as_object().cloned().unwrap_or_default(),
    }
}

/// The OAuth App's credentials, pinned to the GitHub spec's endpoints as the host builds them.
fn oauth_client() -> OAuthClientCredentials {
    OAuthClientCredentials::for_spec(
        FAKE_CLIENT_ID,
        SecretString::from(FAKE_CLIENT_SECRET),
        DESCRIPTOR.oauth.as_ref().unwrap(),
    )
}

/// `extra` with the owner and name of the fake's repository `octo-org/checkout`.
fn in_checkout(extra: Value) -> Value {
    let mut params = json!({"owner": "octo-org", "repo": "checkout"});
    params
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    params
}

fn ctx() -> ConnectorContext {
    ConnectorContext::default()
}

async fn query(
    connector: &Arc<dyn DynConnector>,
    credentials: &DynCredentials,
    operation: &str,
    params: Value,
) -> patchbay_core::Result<patchbay_core::QueryOutput> {
    connector
        .query(&ctx(), credentials, operation, params)
        .await
}

// ---- validation ----

#[tokio::test]
async fn validation_fills_the_account_and_checks_each_scope() {
    let fake = FakeGitHub::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = pat(&connector, TOKEN).await;
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    let ids: Vec<_> = report.check_ids();
    assert_eq!(
        ids,
        [
            "token",
            "scope_repo",
            "scope_read_org",
            "repos_read",
            "rate_limit"
        ]
    );
    assert_eq!(credentials.config["login"], "octocat");
    assert_eq!(credentials.config["user_id"], 1);
    assert_eq!(credentials.config["auth_kind"], "pat");
    assert_eq!(
        credentials.config["granted_scopes"],
        json!(["read:org", "read:user", "repo"])
    );
}

#[tokio::test]
async fn a_missing_scope_degrades_and_fine_grained_tokens_skip_scope_checks() {
    let fake = FakeGitHub::start(TOKEN).await;
    let connector = connector_for(&fake);
    fake.set_scopes("repo");
    let mut credentials = pat(&connector, TOKEN).await;
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Degraded);
    let org = report
        .checks
        .iter()
        .find(|c| c.id == "scope_read_org")
        .unwrap();
    assert_eq!(org.outcome, CheckOutcome::Failed);
    assert!(org.detail.contains("read:org"), "{}", org.detail);

    fake.set_scopes("");
    let mut credentials = pat(&connector, TOKEN).await;
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Ok);
    for id in ["scope_repo", "scope_read_org"] {
        let check = report.checks.iter().find(|c| c.id == id).unwrap();
        assert_eq!(check.outcome, CheckOutcome::Ok);
        assert!(check.detail.contains("fine-grained"), "{}", check.detail);
    }
}

#[tokio::test]
async fn a_rejected_token_fails_with_bad_credentials_and_skips_the_rest() {
    let fake = FakeGitHub::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = pat(&connector, "ghp_wrong_token_123456").await;
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    let token = &report.checks[0];
    assert_eq!(token.outcome, CheckOutcome::Failed);
    assert_eq!(token.provider_status, Some(401));
    assert!(token.detail.contains("Bad credentials"), "{}", token.detail);
    assert!(token.detail.contains("regenerate"), "{}", token.detail);
    assert!(report.checks[1..]
        .iter()
        .all(|check| check.outcome == CheckOutcome::Skipped));
}

// ---- queries ----

#[tokio::test]
async fn lists_follow_link_headers_and_hand_back_an_opaque_cursor() {
    let (fake, connector, credentials) = connected().await;
    // 45 repositories: 40 fit in 1 page of 40; the next cursor leads to page 2.
    let output = query(&connector, &credentials, "list_repos", json!({"limit": 40}))
        .await
        .unwrap();
    assert_eq!(output.data["count"], 40);
    let cursor = output.next_cursor.unwrap();
    assert!(cursor.starts_with("pb1."), "{cursor}");
    assert!(!output.truncated);
    assert!(output.data["rate_limit_remaining"].as_u64().is_some());
    fake.clear_requests();
    let output = query(
        &connector,
        &credentials,
        "list_repos",
        json!({"limit": 40, "cursor": cursor}),
    )
    .await
    .unwrap();
    assert_eq!(output.data["count"], 5);
    assert_eq!(output.data["items"][0]["full_name"], "octo-org/service-40");
    assert_eq!(output.next_cursor, None);
    let requests = fake.requests_to("/user/repos");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].query_value("page"), Some("2"));
    assert_eq!(requests[0].query_value("per_page"), Some("40"));

    // One commit every 24 minutes: 178 in the last 71 h, read as two pages of 100.
    fake.clear_requests();
    let output = query(
        &connector,
        &credentials,
        "list_commits",
        json!({"owner": "octo-org", "repo": "checkout", "limit": 300, "since": "now-71h"}),
    )
    .await
    .unwrap();
    assert_eq!(output.data["count"], 178);
    assert_eq!(output.next_cursor, None);
    let requests = fake.requests_to("/repos/octo-org/checkout/commits");
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].query_value("page"), Some("2"));
    assert_eq!(requests[0].query_value("per_page"), Some("100"));
    assert!(requests[0].query_value("since").is_some());
}

#[tokio::test]
async fn a_limit_inside_a_page_points_the_cursor_at_that_page() {
    let (fake, connector, credentials) = connected().await;
    let output = query(
        &connector,
        &credentials,
        "list_commits",
        json!({"owner": "octo-org", "repo": "checkout", "limit": 150}),
    )
    .await
    .unwrap();
    assert_eq!(output.data["count"], 150);
    // Page 2 was read only in part, so the cursor reads it again.
    fake.clear_requests();
    let output = query(
        &connector,
        &credentials,
        "list_commits",
        json!({"owner": "octo-org", "repo": "checkout", "limit": 150, "cursor": output.next_cursor}),
    )
    .await
    .unwrap();
    let requests = fake.requests_to("/repos/octo-org/checkout/commits");
    assert_eq!(requests[0].query_value("page"), Some("2"));
    assert_eq!(
        output.data["items"][0]["message"],
        "Change 100: tune checkout retries"
    );
}

#[tokio::test]
async fn a_cursor_is_only_good_for_the_operation_that_issued_it() {
    let (fake, connector, credentials) = connected().await;
    let repos = query(&connector, &credentials, "list_repos", json!({"limit": 10}))
        .await
        .unwrap();
    let cursor = repos.next_cursor.unwrap();
    fake.clear_requests();
    let error = query(
        &connector,
        &credentials,
        "list_commits",
        json!({"owner": "octo-org", "repo": "checkout", "cursor": cursor}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("cursor"));
    assert_eq!(
        error.message(),
        "`cursor` must be a `next_cursor` that `list_commits` returned on this connection; \
         got a cursor of `list_repos`"
    );

    // A page number is not a cursor either: cursors are opaque.
    let error = query(
        &connector,
        &credentials,
        "list_repos",
        json!({"cursor": "2"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("cursor"));
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn parameters_are_checked_before_github_is_asked() {
    let (fake, connector, credentials) = connected().await;

    let error = query(
        &connector,
        &credentials,
        "list_pull_requests",
        in_checkout(json!({"limit": 500})),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("limit"));
    assert_eq!(error.message(), "`limit` must be from 1 to 100; got 500");
    let error = query(&connector, &credentials, "list_repos", json!({"limit": 0}))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("limit"));
    assert_eq!(error.message(), "`limit` must be from 1 to 500; got 0");

    let error = query(
        &connector,
        &credentials,
        "list_deployments",
        in_checkout(json!({"per_page": 50})),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("per_page"));
    assert_eq!(
        error.message(),
        "`list_deployments` has no parameter `per_page`; it takes: environment, limit, owner, ref, repo, cursor"
    );
    let error = query(
        &connector,
        &credentials,
        "get_commit",
        in_checkout(json!({"sha": "abc1234", "cursor": "pb1.x"})),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("cursor"));
    assert_eq!(
        error.message(),
        "`get_commit` has no parameter `cursor`; it takes: owner, repo, sha"
    );

    let error = query(&connector, &credentials, "list_repo", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(error.message(), "unknown operation `list_repo` for github");
    assert_eq!(
        error.hint(),
        Some(
            "use one of: list_repos, get_file, list_commits, get_commit, list_pull_requests, \
             get_pull_request, list_workflow_runs, list_deployments, search_code"
        )
    );
    assert!(fake.requests_to("/user/repos").is_empty());
    assert!(fake
        .requests_to("/repos/octo-org/checkout/deployments")
        .is_empty());
}

#[tokio::test]
async fn an_answer_too_large_to_return_is_capped_and_marked_truncated() {
    let (_fake, connector, credentials) = connected().await;
    let commit = query(
        &connector,
        &credentials,
        "get_commit",
        json!({"owner": "octo-org", "repo": "checkout", "sha": vendored_commit_sha()}),
    )
    .await
    .unwrap();
    assert!(commit.truncated);
    assert!(serde_json::to_vec(&commit.data).unwrap().len() <= MAX_OUTPUT_BYTES);
    assert_eq!(commit.data["message"], "Vendor the payments client");
    assert_eq!(commit.data["stats"]["additions"], 36_000);
    let files = commit.data["files"].as_array().unwrap();
    assert!(
        !files.is_empty() && files.len() < 300,
        "{} files",
        files.len()
    );
    assert_eq!(
        files[0]["filename"],
        "vendor/payments-client/src/model_000.rs"
    );
    assert_eq!(files[0]["patch_truncated"], false);
}

#[tokio::test]
async fn files_are_decoded_and_capped_and_patches_are_cut() {
    let (_fake, connector, credentials) = connected().await;
    let readme = query(
        &connector,
        &credentials,
        "get_file",
        in_checkout(json!({"path": "README.md", "ref": "main"})),
    )
    .await
    .unwrap();
    assert_eq!(
        readme.data["content"],
        "# checkout\n\nThe checkout service.\n"
    );
    assert!(!readme.truncated);
    let big = query(
        &connector,
        &credentials,
        "get_file",
        in_checkout(json!({"path": "logs/big.log"})),
    )
    .await
    .unwrap();
    assert!(big.truncated);
    assert_eq!(big.data["content"].as_str().unwrap().len(), 100 * 1024);
    let dir = query(
        &connector,
        &credentials,
        "get_file",
        in_checkout(json!({"path": "src"})),
    )
    .await
    .unwrap();
    assert_eq!(dir.data["type"], "dir");
    assert_eq!(dir.data["entries"][0]["path"], "src/main.rs");

    let commits = query(
        &connector,
        &credentials,
        "list_commits",
        in_checkout(json!({"limit": 1})),
    )
    .await
    .unwrap();
    let sha = commits.data["items"][0]["sha"].as_str().unwrap().to_owned();
    let commit = query(
        &connector,
        &credentials,
        "get_commit",
        in_checkout(json!({"sha": sha})),
    )
    .await
    .unwrap();
    assert!(commit.truncated);
    let files = commit.data["files"].as_array().unwrap();
    assert_eq!(files.len(), 3);
    assert_eq!(files[0]["additions"], 2040);
    assert_eq!(files[0]["patch_truncated"], true);
    assert!(files[0]["patch"].as_str().unwrap().len() <= 8 * 1024);
    assert_eq!(files[1]["patch_truncated"], false);

    let pull = query(
        &connector,
        &credentials,
        "get_pull_request",
        in_checkout(json!({"number": 3})),
    )
    .await
    .unwrap();
    assert_eq!(pull.data["number"], 3);
    assert_eq!(pull.data["files"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn not_found_names_the_path_and_the_likely_cause() {
    let (_fake, connector, credentials) = connected().await;
    let error = query(
        &connector,
        &credentials,
        "get_file",
        json!({"owner": "octo-org", "repo": "secret-repo", "path": "README.md"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(
        error.message(),
        "GitHub returned 404 for /repos/octo-org/secret-repo/contents/README.md \
         (the repository is private to this token or the path is wrong)"
    );
}

#[tokio::test]
async fn rate_limits_are_told_apart_from_missing_permissions() {
    let (fake, connector, credentials) = connected().await;
    let path = "/repos/octo-org/checkout/pulls";
    let params = json!({"owner": "octo-org", "repo": "checkout"});

    fake.inject(path, Fault::PrimaryRateLimit { reset_in_secs: 120 });
    let error = query(
        &connector,
        &credentials,
        "list_pull_requests",
        params.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.provider_status(), Some(403));
    let wait = error.retry_after().unwrap();
    assert!(
        wait > Duration::from_secs(100) && wait <= Duration::from_secs(120),
        "{wait:?}"
    );

    fake.inject(
        path,
        Fault::RateLimited {
            retry_after_secs: 60,
        },
    );
    let error = query(
        &connector,
        &credentials,
        "list_pull_requests",
        params.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(60)));

    fake.inject(path, Fault::Forbidden);
    let error = query(
        &connector,
        &credentials,
        "list_pull_requests",
        params.clone(),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(
        error.message().contains("Resource not accessible"),
        "{}",
        error.message()
    );

    fake.inject(path, Fault::ServerError);
    let error = query(&connector, &credentials, "list_pull_requests", params)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
}

#[tokio::test]
async fn enterprise_server_bases_keep_their_api_path() {
    let fake = FakeGitHub::start(TOKEN).await;
    let connector = connector_from_env(
        &format!("ghe.example.com={}/ghe", fake.base_url()),
        "127.0.0.1/32",
    );
    let credentials = connector
        .authenticate(form(
            json!({"token": TOKEN, "api_url": "https://ghe.example.com"}),
        ))
        .await
        .unwrap();
    assert_eq!(
        credentials.config["api_url"],
        "https://ghe.example.com/api/v3"
    );
    // The fake serves the API at its root, so the prefixed path is a 404 that names it.
    let error = query(&connector, &credentials, "list_repos", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(fake.requests_to("/ghe/api/v3/user/repos").len() == 1);
}

#[tokio::test]
async fn enterprise_server_on_an_allowlisted_loopback_address_validates() {
    let fake = FakeGitHub::start(TOKEN).await;
    let api_url = format!("{}/api/v3", fake.base_url());
    let connector = connector_from_env("", "127.0.0.1/32");
    let mut credentials = connector
        .authenticate(form(json!({"token": TOKEN, "api_url": api_url})))
        .await
        .unwrap();
    assert_eq!(credentials.config["api_url"], api_url.as_str());
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    assert_eq!(credentials.config["login"], "octocat");
    assert_eq!(fake.requests_to("/api/v3/user").len(), 1);

    let without_allowlist = connector_from_env("", "");
    let error = without_allowlist
        .authenticate(form(json!({"token": TOKEN, "api_url": api_url})))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("api_url"));
    assert!(
        error.message().contains("127.0.0.1 is a loopback address"),
        "{error}"
    );
    assert!(
        error
            .message()
            .contains("PATCHBAY_ALLOWED_PRIVATE_NETWORKS=127.0.0.1/32"),
        "{error}"
    );
}

#[tokio::test]
async fn enterprise_urls_on_internal_addresses_are_refused_naming_api_url() {
    let connector = connector_from_env("", "");
    for (api_url, reason) in [
        (
            "https://10.0.0.5/api/v3",
            "10.0.0.5 is a private address (RFC 1918)",
        ),
        (
            "https://127.0.0.1/api/v3",
            "127.0.0.1 is a loopback address",
        ),
        (
            "https://169.254.169.254",
            "169.254.169.254 is a cloud metadata address",
        ),
        (
            "https://[::ffff:10.0.0.1]/api/v3",
            "10.0.0.1, a private address (RFC 1918)",
        ),
        (
            "https://[fd00:ec2::254]",
            "fd00:ec2::254 is a cloud metadata address",
        ),
        (
            "https://100.64.0.1/api/v3",
            "100.64.0.1 is a shared address (RFC 6598",
        ),
    ] {
        let error = connector
            .authenticate(form(json!({"token": TOKEN, "api_url": api_url})))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{api_url}");
        assert_eq!(error.field(), Some("api_url"), "{api_url}");
        assert!(error.message().contains(reason), "{api_url}: {error}");
        assert!(
            error
                .message()
                .contains("PATCHBAY_ALLOWED_PRIVATE_NETWORKS"),
            "{api_url}: {error}"
        );
    }
}

#[tokio::test]
async fn stored_enterprise_urls_are_checked_where_the_request_really_goes() {
    let fake = FakeGitHub::start(TOKEN).await;
    // The operator sends ghe.example.com to a loopback address but has not allowed it.
    let connector = connector_from_env(&format!("ghe.example.com={}", fake.base_url()), "");
    let credentials =
        stored(json!({"api_url": "https://ghe.example.com/api/v3", "auth_kind": "pat"}));
    let error = query(&connector, &credentials, "list_repos", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
    assert!(
        error.message().contains("127.0.0.1 is a loopback address"),
        "{error}"
    );
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

// ---- OAuth grant and revoke ----

#[tokio::test]
async fn oauth_grants_become_oauth_credentials_with_their_scopes() {
    let fake = FakeGitHub::start(TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = connector
        .authenticate(AuthRequest::OAuth(grant(
            &["repo,read:org", "read:user"],
            json!({}),
        )))
        .await
        .unwrap();
    assert_eq!(credentials.config["auth_kind"], "oauth");
    assert_eq!(credentials.config["api_url"], "https://api.github.com");
    assert_eq!(
        credentials.config["granted_scopes"],
        json!(["read:org", "read:user", "repo"])
    );
    assert_eq!(credentials.secrets.expose()["access_token"], TOKEN);
    assert_eq!(credentials.secrets.expose()["token_type"], "bearer");
}

#[tokio::test]
async fn oauth_grants_with_an_api_url_are_refused() {
    let connector = connector_with("");
    for api_url in [
        json!("https://ghe.example.com/api/v3/"),
        json!("https://attacker.example"),
    ] {
        let error = connector
            .authenticate(AuthRequest::OAuth(grant(
                &["repo"],
                json!({"api_url": api_url}),
            )))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{api_url}");
        assert_eq!(error.field(), Some("api_url"), "{api_url}");
        assert!(error.message().contains("github.com only"), "{error}");
        assert!(
            error.hint().unwrap().contains("personal access token"),
            "{error}"
        );
    }
}

#[tokio::test]
async fn revocation_sends_the_client_secret_only_to_the_public_api() {
    let fake = FakeGitHub::start(TOKEN).await;
    let attacker = Listener::start().await;
    let connector = connector_with(&format!(
        "{},attacker.example=http://127.0.0.1:{}",
        fake.override_spec(),
        attacker.port
    ));
    let client = oauth_client();
    // A record written while OAuth grants could still name their own API base.
    let credentials =
        stored(json!({"api_url": "https://attacker.example/api/v3", "auth_kind": "oauth"}));
    let outcome = connector.revoke(&ctx(), &credentials, Some(&client)).await;
    assert_eq!(attacker.connections(), 0);
    assert_eq!(outcome.unwrap(), RevokeOutcome::Revoked);
    assert!(fake.is_revoked());
    let request = &fake.requests_to(&format!("/applications/{FAKE_CLIENT_ID}/grant"))[0];
    assert_eq!(request.method, "DELETE");
}

#[tokio::test]
async fn disconnecting_revokes_oauth_grants_but_not_personal_tokens() {
    let fake = FakeGitHub::start(TOKEN).await;
    let connector = connector_for(&fake);
    let client = oauth_client();
    let personal = pat(&connector, TOKEN).await;
    assert_eq!(
        connector
            .revoke(&ctx(), &personal, Some(&client))
            .await
            .unwrap(),
        RevokeOutcome::NotOffered
    );
    assert!(!fake.is_revoked());

    let oauth = connector
        .authenticate(AuthRequest::OAuth(grant(&["repo"], json!({}))))
        .await
        .unwrap();
    assert_eq!(
        connector
            .revoke(&ctx(), &oauth, Some(&client))
            .await
            .unwrap(),
        RevokeOutcome::Revoked
    );
    assert!(fake.is_revoked());
    let request = &fake.requests_to(&format!("/applications/{FAKE_CLIENT_ID}/grant"))[0];
    assert_eq!(request.method, "DELETE");
    let error = query(&connector, &oauth, "list_repos", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
}

// ---- webhook signatures ----

fn delivery(
    event: &str,
    body: &[u8],
    signature: Option<&str>,
    content_type: &str,
) -> InboundWebhook {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_str(content_type).unwrap());
    headers.insert("x-github-event", HeaderValue::from_str(event).unwrap());
    headers.insert(
        "x-github-delivery",
        HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    );
    if let Some(signature) = signature {
        headers.insert(
            "x-hub-signature-256",
            HeaderValue::from_str(signature).unwrap(),
        );
    }
    InboundWebhook {
        headers,
        body: Bytes::copy_from_slice(body),
    }
}

/// GitHub's published test vectors (see `fixtures/README.md`).
fn published_vectors() -> Value {
    let text = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/github.json"));
    serde_json::from_str(text).unwrap()
}

#[test]
fn githubs_published_signature_vectors_verify() {
    let published = published_vectors();
    let vectors = published["webhook_signature"]["vectors"]
        .as_array()
        .unwrap();
    assert_eq!(vectors.len(), 2);
    for vector in vectors {
        let field = |name: &str| vector[name].as_str().unwrap();
        let (secret, body, expected) = (
            field("secret"),
            field("body"),
            field("expected_header_value"),
        );
        assert_eq!(webhook::sign(secret.as_bytes(), body.as_bytes()), expected);
        assert_eq!(sign_webhook(secret, body.as_bytes()), expected);
        let request = delivery("push", body.as_bytes(), Some(expected), "application/json");
        webhook::verify_signature(Some(&SecretString::from(secret)), &request).unwrap();
    }
}

#[test]
fn bad_signatures_are_auth_failures() {
    let secret = SecretString::from("It's a Secret to Everybody");
    let good = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    let cases = [
        (
            "wrong secret",
            SecretString::from("It's a secret to everybody"),
            "Hello, World!",
            Some(good.to_owned()),
        ),
        (
            "altered body",
            secret.clone(),
            "Hello, World?",
            Some(good.to_owned()),
        ),
        ("missing header", secret.clone(), "Hello, World!", None),
        (
            "no sha256= prefix",
            secret.clone(),
            "Hello, World!",
            Some(good.trim_start_matches("sha256=").to_owned()),
        ),
        (
            "legacy sha1 prefix",
            secret.clone(),
            "Hello, World!",
            Some(good.replace("sha256=", "sha1=")),
        ),
    ];
    for (name, secret, body, signature) in cases {
        let request = delivery(
            "push",
            body.as_bytes(),
            signature.as_deref(),
            "application/json",
        );
        let error = webhook::verify_signature(Some(&secret), &request).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AuthFailed, "{name}");
    }
    let request = delivery("push", b"Hello, World!", Some(good), "application/json");
    assert_eq!(
        webhook::verify_signature(None, &request)
            .unwrap_err()
            .kind(),
        ErrorKind::AuthFailed
    );
}

// ---- webhook normalisation ----

async fn deliver(
    event: &str,
    payload: &Value,
    form_encoded: bool,
) -> patchbay_core::Result<patchbay_core::WebhookOutcome> {
    let connector = connector_with("");
    let (body, content_type) = if form_encoded {
        let body = url_encoded_payload(&payload.to_string());
        (body, "application/x-www-form-urlencoded")
    } else {
        (payload.to_string(), "application/json")
    };
    let signature = sign_webhook(SECRET, body.as_bytes());
    let request = delivery(event, body.as_bytes(), Some(&signature), content_type);
    let secrets = RevealedJson::new(json!({"access_token": TOKEN, "webhook_secret": SECRET}));
    let config = json!({"api_url": "https://api.github.com", "auth_kind": "oauth"});
    let key = WebhookKey::Connection {
        config: &config,
        secrets: &secrets,
    };
    let delivery = connector.verify(&ctx(), key, &request).await?;
    connector.normalize(&ctx(), &config, &delivery).await
}

fn url_encoded_payload(json: &str) -> String {
    let mut out = String::from("payload=");
    for byte in json.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.*".contains(&byte) {
            out.push(byte as char);
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[tokio::test]
async fn ping_answers_with_the_zen_and_no_event() {
    let outcome = deliver("ping", &sample_payload("ping", ""), false)
        .await
        .unwrap();
    assert!(outcome.events.is_empty());
    let reply = outcome.reply.unwrap();
    assert_eq!(reply.status, 200);
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        body,
        json!({"ok": true, "zen": "Anything added dilutes everything else."})
    );

    // GitHub's own ping example is answered the same way.
    let example = &published_vectors()["payload_examples"]["ping"];
    let outcome = deliver("ping", example, false).await.unwrap();
    assert!(outcome.events.is_empty());
    let body: Value = serde_json::from_str(&outcome.reply.unwrap().body).unwrap();
    assert_eq!(body["zen"], example["zen"]);
}

#[tokio::test]
async fn failed_runs_fire_and_successes_resolve_the_same_stream() {
    let failed = deliver(
        "workflow_run",
        &sample_payload("workflow_run", "failure"),
        false,
    )
    .await
    .unwrap();
    let event = &failed.events[0];
    assert_eq!(event.kind, EventKind::Change);
    assert_eq!(event.status, AlertStatus::Firing);
    assert_eq!(event.severity, AlertSeverity::Medium);
    assert_eq!(event.dedup_key, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(event.service.as_deref(), Some("octo-org/checkout"));
    assert_eq!(event.labels["conclusion"], "failure");
    assert_eq!(event.raw["workflow_run"]["id"], 30433642);
    let passed = deliver(
        "workflow_run",
        &sample_payload("workflow_run", "success"),
        false,
    )
    .await
    .unwrap();
    assert_eq!(passed.events[0].status, AlertStatus::Resolved);
    assert_eq!(passed.events[0].external_id, event.external_id);

    let mut requested = sample_payload("workflow_run", "failure");
    requested["action"] = json!("requested");
    assert!(deliver("workflow_run", &requested, false)
        .await
        .unwrap()
        .events
        .is_empty());

    let check = deliver(
        "check_run",
        &sample_payload("check_run", "timed_out"),
        false,
    )
    .await
    .unwrap();
    assert_eq!(check.events[0].status, AlertStatus::Firing);
    assert_eq!(check.events[0].labels["check"], "integration-tests");
    let neutral = deliver("check_run", &sample_payload("check_run", "neutral"), false)
        .await
        .unwrap();
    assert!(neutral.events.is_empty());
}

#[tokio::test]
async fn deployments_and_pushes_become_change_events() {
    let failed = deliver(
        "deployment_status",
        &sample_payload("deployment_status", "error"),
        false,
    )
    .await
    .unwrap();
    let event = &failed.events[0];
    assert_eq!(event.status, AlertStatus::Firing);
    assert_eq!(event.severity, AlertSeverity::High);
    assert_eq!(event.labels["environment"], "production");
    assert_eq!(event.title, "Deployment of main to production: error");
    let pending = deliver(
        "deployment_status",
        &sample_payload("deployment_status", "pending"),
        false,
    )
    .await
    .unwrap();
    assert!(pending.events.is_empty());

    let push = deliver("push", &sample_payload("push", ""), true)
        .await
        .unwrap();
    let event = &push.events[0];
    assert_eq!(event.kind, EventKind::Change);
    assert_eq!(event.status, AlertStatus::Resolved);
    assert_eq!(event.title, "Push to main by octocat: 1 commit");
    assert_eq!(event.labels["branch"], "main");
    assert!(event.url.as_deref().unwrap().contains("/compare/"));

    let other = deliver("issues", &json!({"action": "opened"}), false)
        .await
        .unwrap();
    assert!(other.events.is_empty() && other.reply.is_none());
}

#[tokio::test]
async fn deliveries_without_a_webhook_secret_are_refused() {
    let connector = connector_with("");
    let body = sample_payload("push", "").to_string();
    let signature = sign_webhook(SECRET, body.as_bytes());
    let request = delivery(
        "push",
        body.as_bytes(),
        Some(&signature),
        "application/json",
    );
    let secrets = RevealedJson::new(json!({"access_token": TOKEN}));
    let config = json!({"api_url": "https://api.github.com", "auth_kind": "pat"});
    let key = WebhookKey::Connection {
        config: &config,
        secrets: &secrets,
    };
    let error = connector.verify(&ctx(), key, &request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(
        error.message().contains("no webhook secret"),
        "{}",
        error.message()
    );
}
