//! The shared connector contract, run against the fake GitHub with personal access tokens.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use patchbay_connector_github::fake::{
    sample_payload, sign_webhook, vendored_commit_sha, FakeGitHub,
};
use patchbay_connector_github::GitHubConnector;
use patchbay_core::InboundWebhook;
use patchbay_testkit::contract::{
    run_contract_suite, with_webhook_secret, ContractCase, OperationCall, WebhookSigning,
};
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::http::client_for_fake;
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

const WEBHOOK_SECRET: &str = "contract-webhook-secret-7f3a";

#[tokio::test]
async fn github_meets_the_connector_contract() {
    let fake = FakeGitHub::start(TOKEN).await;
    // The host generates the secret of Signature webhooks at connect time.
    let connector = with_webhook_secret(
        Arc::new(GitHubConnector::new(client_for_fake(&fake.override_spec()))),
        WEBHOOK_SECRET,
    );
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
        let connector = GitHubConnector::new(client_for_fake(&fake.override_spec()));
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
