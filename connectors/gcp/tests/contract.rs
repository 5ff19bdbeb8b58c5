//! The shared connector contract, run against the fake Google: once with an
//! uploaded service-account key, once with OAuth grants.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_gcp::fake::{FakeGcp, TestServiceAccount};
use patchbay_testkit::contract::{
    run_contract_suite, run_oauth_contract_suite, ContractCase, OAuthGrants, OperationCall,
};
use serde_json::{json, Value};

const CANARY: &str = "canary-gcp-token-4c1e9a7d";

fn operation_params() -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("list_projects".to_owned(), json!({"limit": 10})),
        (
            "query_logs".to_owned(),
            json!({"project": "acme-prod", "filter": "severity>=ERROR", "limit": 10}),
        ),
        (
            "query_metrics".to_owned(),
            json!({"project": "acme-prod", "filter": "metric.type=\"compute.googleapis.com/instance/cpu/utilization\"", "limit": 2}),
        ),
        (
            "list_instances".to_owned(),
            json!({"project": "acme-prod", "limit": 5}),
        ),
        (
            "list_alert_policies".to_owned(),
            json!({"project": "acme-prod"}),
        ),
        (
            "list_gke_clusters".to_owned(),
            json!({"project": "acme-prod"}),
        ),
        (
            "search_assets".to_owned(),
            json!({"project": "acme-prod", "asset_types": ["compute.googleapis.com/Instance"]}),
        ),
    ])
}

#[tokio::test]
async fn gcp_with_a_service_account_key_meets_the_connector_contract() {
    let fake = FakeGcp::start(CANARY).await;
    let good =
        TestServiceAccount::generate("reader@acme-prod.iam.gserviceaccount.com", "acme-prod");
    let unknown =
        TestServiceAccount::generate("gone@acme-prod.iam.gserviceaccount.com", "acme-prod");
    fake.register_service_account(&good);
    let case = ContractCase {
        connector: Arc::new(fake.connector()),
        good_form: json!({"service_account_json": good.json, "projects": ["acme-prod"]}),
        bad_form: json!({"service_account_json": unknown.json}),
        invalid_form: json!({"service_account_json": "{\"type\": \"authorized_user\"}"}),
        operation_params: operation_params(),
        webhook_samples: Vec::new(),
        webhook_signing: None,
        canaries: vec![
            good.private_key_canary(),
            unknown.private_key_canary(),
            CANARY.to_owned(),
        ],
        paging: Some(OperationCall::new(
            "list_instances",
            json!({"project": "acme-prod", "limit": 5}),
        )),
        oversized: None,
    };
    run_contract_suite(case).await;
}

#[tokio::test]
async fn gcp_with_oauth_meets_the_connector_contract() {
    let fake = FakeGcp::start(CANARY).await;
    let good = fake.grant(json!({"projects": ["acme-prod", "acme-staging"]}));
    let mut bad = fake.grant(json!({}));
    bad.access_token = "canary-gcp-revoked-access-0b5f".into();
    let case = ContractCase {
        connector: Arc::new(fake.connector()),
        good_form: Value::Null,
        bad_form: Value::Null,
        invalid_form: json!({}),
        operation_params: operation_params(),
        webhook_samples: Vec::new(),
        webhook_signing: None,
        canaries: vec![
            CANARY.to_owned(),
            "canary-gcp-revoked-access-0b5f".to_owned(),
        ],
        paging: Some(OperationCall::new(
            "query_logs",
            json!({"project": "acme-staging", "limit": 10}),
        )),
        oversized: None,
    };
    run_oauth_contract_suite(case, OAuthGrants { good, bad }).await;
}
