//! The shared connector contract, run against the fake GitHub with personal access tokens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use patchbay_connector_github::fake::{
    sample_payload, sign_webhook, vendored_commit_sha, FakeGitHub,
};
use patchbay_connector_github::GitHubConnector;
use patchbay_core::InboundWebhook;
use patchbay_http::{HttpClient, HttpConfig, UpstreamOverrides};
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall, WebhookSigning};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::json;

const TOKEN: &str = "github_pat_canary_11AAAA0000contract";
const WRONG_TOKEN: &str = "github_pat_canary_wrong_0000bad";

/// A JSON delivery of `event` signed with `secret`, with GitHub's delivery headers.
fn signed(event: &str, outcome: &str, secret: &str) -> InboundWebhook {
    let body = sample_payload(event, outcome).to_string();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-github-event", HeaderValue::from_str(event).unwrap());
    headers.insert(
        "x-github-delivery",
        HeaderValue::from_static("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
    );
    headers.insert(
        "x-hub-signature-256",
        HeaderValue::from_str(&sign_webhook(secret, body.as_bytes())).unwrap(),
    );
    InboundWebhook {
        headers,
        body: Bytes::from(body),
    }
}

/// A connector whose authenticate adds the host's generated webhook secret, as the
/// host does for Signature webhooks before storing the credentials.
struct WithWebhookSecret(Arc<GitHubConnector>, &'static str);

#[async_trait::async_trait]
impl patchbay_core::DynConnector for WithWebhookSecret {
    fn descriptor(&self) -> &'static patchbay_core::ConnectorDescriptor {
        patchbay_core::DynConnector::descriptor(&*self.0)
    }
    async fn authenticate(
        &self,
        request: patchbay_core::AuthRequest,
    ) -> patchbay_core::Result<patchbay_core::DynCredentials> {
        let mut credentials = patchbay_core::DynConnector::authenticate(&*self.0, request).await?;
        let mut secrets = credentials.secrets.expose().clone();
        secrets["webhook_secret"] = json!(self.1);
        credentials.secrets = patchbay_core::RevealedJson::new(secrets);
        Ok(credentials)
    }
    async fn validate(
        &self,
        ctx: &patchbay_core::ConnectorContext,
        credentials: &mut patchbay_core::DynCredentials,
    ) -> patchbay_core::Result<patchbay_core::ValidationReport> {
        patchbay_core::DynConnector::validate(&*self.0, ctx, credentials).await
    }
    async fn query(
        &self,
        ctx: &patchbay_core::ConnectorContext,
        credentials: &patchbay_core::DynCredentials,
        operation: &str,
        params: serde_json::Value,
    ) -> patchbay_core::Result<patchbay_core::QueryOutput> {
        patchbay_core::DynConnector::query(&*self.0, ctx, credentials, operation, params).await
    }
    async fn verify(
        &self,
        ctx: &patchbay_core::ConnectorContext,
        key: patchbay_core::WebhookKey<'_>,
        request: &InboundWebhook,
    ) -> patchbay_core::Result<patchbay_core::VerifiedDelivery> {
        patchbay_core::DynConnector::verify(&*self.0, ctx, key, request).await
    }
    async fn route_webhook(
        &self,
        delivery: &patchbay_core::VerifiedDelivery,
    ) -> patchbay_core::Result<patchbay_core::WebhookRoute> {
        patchbay_core::DynConnector::route_webhook(&*self.0, delivery).await
    }
    async fn normalize(
        &self,
        ctx: &patchbay_core::ConnectorContext,
        config: &serde_json::Value,
        delivery: &patchbay_core::VerifiedDelivery,
    ) -> patchbay_core::Result<patchbay_core::WebhookOutcome> {
        patchbay_core::DynConnector::normalize(&*self.0, ctx, config, delivery).await
    }
    fn routing_key(&self, config: &serde_json::Value) -> Option<String> {
        patchbay_core::DynConnector::routing_key(&*self.0, config)
    }
    async fn revoke(
        &self,
        ctx: &patchbay_core::ConnectorContext,
        credentials: &patchbay_core::DynCredentials,
        client: Option<&patchbay_core::OAuthClientCredentials>,
    ) -> patchbay_core::Result<patchbay_core::RevokeOutcome> {
        patchbay_core::DynConnector::revoke(&*self.0, ctx, credentials, client).await
    }
}

const WEBHOOK_SECRET: &str = "contract-webhook-secret-7f3a";

#[tokio::test]
async fn github_meets_the_connector_contract() {
    let fake = FakeGitHub::start(TOKEN).await;
    let http = HttpClient::new(HttpConfig {
        overrides: UpstreamOverrides::parse(&fake.override_spec()).unwrap(),
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        ..HttpConfig::default()
    })
    .unwrap();
    let connector = Arc::new(WithWebhookSecret(
        Arc::new(GitHubConnector::new(http)),
        WEBHOOK_SECRET,
    ));
    let repo = json!({"owner": "octo-org", "repo": "checkout"});
    let with = |extra: serde_json::Value| {
        let mut params = repo.clone();
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        params
    };
    let operation_params = BTreeMap::from([
        ("list_repos".to_owned(), json!({"limit": 10})),
        ("get_file".to_owned(), with(json!({"path": "README.md"}))),
        ("list_commits".to_owned(), with(json!({"limit": 20}))),
        (
            "get_commit".to_owned(),
            with(json!({"sha": "main-does-not-exist"})),
        ),
        (
            "list_pull_requests".to_owned(),
            with(json!({"state": "all"})),
        ),
        ("get_pull_request".to_owned(), with(json!({"number": 2}))),
        ("list_workflow_runs".to_owned(), with(json!({"limit": 5}))),
        (
            "list_deployments".to_owned(),
            with(json!({"environment": "production"})),
        ),
        (
            "search_code".to_owned(),
            json!({"query": "retry repo:octo-org/checkout"}),
        ),
    ]);
    let sha = {
        let http = HttpClient::new(HttpConfig {
            overrides: UpstreamOverrides::parse(&fake.override_spec()).unwrap(),
            ..HttpConfig::default()
        })
        .unwrap();
        let connector = GitHubConnector::new(http);
        let credentials = patchbay_core::DynConnector::authenticate(
            &connector,
            patchbay_core::AuthRequest::Form(patchbay_core::FormFields(
                json!({"token": TOKEN}).as_object().unwrap().clone(),
            )),
        )
        .await
        .unwrap();
        let output = patchbay_core::DynConnector::query(
            &connector,
            &Default::default(),
            &credentials,
            "list_commits",
            repo.clone(),
        )
        .await
        .unwrap();
        output.data["items"][0]["sha"].as_str().unwrap().to_owned()
    };
    let mut operation_params = operation_params;
    operation_params.insert("get_commit".to_owned(), with(json!({"sha": sha})));

    run_contract_suite(ContractCase {
        connector,
        good_form: json!({"token": TOKEN}),
        bad_form: json!({"token": WRONG_TOKEN}),
        invalid_form: json!({"token": TOKEN, "api_url": "http://ghe.example.com/api/v3"}),
        operation_params,
        webhook_samples: vec![
            signed("workflow_run", "failure", WEBHOOK_SECRET),
            signed("workflow_run", "success", WEBHOOK_SECRET),
            signed("deployment_status", "failure", WEBHOOK_SECRET),
            signed("check_run", "timed_out", WEBHOOK_SECRET),
            signed("push", "", WEBHOOK_SECRET),
        ],
        webhook_signing: Some(WebhookSigning {
            signature_header: "X-Hub-Signature-256",
            timestamp_header: None,
            sign: Box::new(|request: &InboundWebhook| sign_webhook(WEBHOOK_SECRET, &request.body)),
        }),
        canaries: vec![
            TOKEN.to_owned(),
            WRONG_TOKEN.to_owned(),
            WEBHOOK_SECRET.to_owned(),
        ],
        // 45 repositories: ten a page leaves more pages to read.
        paging: Some(OperationCall::new("list_repos", json!({"limit": 10}))),
        // 300 changed files with about 6 KB of patch each.
        oversized: Some(OperationCall::new(
            "get_commit",
            with(json!({"sha": vendored_commit_sha()})),
        )),
    })
    .await;

    let api_requests: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| !request.path.starts_with("/login/"))
        .collect();
    assert!(!api_requests.is_empty());
    for request in &api_requests {
        assert_eq!(
            request.header("accept"),
            Some("application/vnd.github+json")
        );
        assert_eq!(request.header("x-github-api-version"), Some("2022-11-28"));
        assert!(request.header("authorization").is_some());
    }
}
