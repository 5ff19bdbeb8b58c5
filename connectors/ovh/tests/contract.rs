//! The shared connector contract, run against the fake OVHcloud: once with an
//! application key (signed requests) and once with OAuth grants in the CA region.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_ovh::fake::{self as fake_ovh, AppKeys, FakeOvh, ProviderFake, PROJECT_ID};
use patchbay_core::OAuthGrant;
use patchbay_testkit::contract::{
    run_contract_suite, run_oauth_contract_suite, ContractCase, OAuthGrants, OperationCall,
};
use serde_json::{json, Value};

const AK: &str = "canaryOvhAk7d1e";
const AS: &str = "canaryOvhAs9c2d4a7b1e3f5a6b8c0d2e";
const CK: &str = "canaryOvhCk3e8b1f07a9c2d4e6f8a0b";
const WRONG_CK: &str = "canaryOvhWrongCk5b7d9f1a3c5e7a9b";

fn keys() -> AppKeys {
    AppKeys {
        application_key: AK.to_owned(),
        application_secret: AS.to_owned(),
        consumer_key: CK.to_owned(),
    }
}

fn operation_params() -> BTreeMap<String, Value> {
    let project = json!({"project_id": PROJECT_ID});
    BTreeMap::from([
        ("list_projects".to_owned(), json!({})),
        ("list_instances".to_owned(), project.clone()),
        ("list_kube_clusters".to_owned(), project.clone()),
        ("list_databases".to_owned(), project.clone()),
        ("list_private_networks".to_owned(), project.clone()),
        ("get_quotas".to_owned(), project),
        ("list_dedicated_servers".to_owned(), json!({"limit": 2})),
    ])
}

fn case(fake: &FakeOvh, good: Value, bad: Value, canaries: Vec<String>) -> ContractCase {
    ContractCase {
        connector: Arc::new(fake.connector()),
        good_form: good,
        bad_form: bad,
        invalid_form: json!({"region": "ovh-eu", "application_key": AK}),
        operation_params: operation_params(),
        webhook_samples: Vec::new(),
        webhook_signing: None,
        canaries,
        paging: Some(OperationCall::new(
            "list_dedicated_servers",
            json!({"limit": 2}),
        )),
        oversized: None,
    }
}

#[tokio::test]
async fn ovh_with_an_application_key_meets_the_connector_contract() {
    let fake = FakeOvh::start(Some(keys())).await;
    let form = |ck: &str| json!({"region": "ovh-eu", "application_key": AK, "application_secret": AS, "consumer_key": ck});
    let canaries = [AK, AS, CK, WRONG_CK].map(str::to_owned).to_vec();
    run_contract_suite(case(&fake, form(CK), form(WRONG_CK), canaries)).await;
    let api: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.path != "/auth/time")
        .collect();
    assert!(!api.is_empty());
    assert!(api
        .iter()
        .all(|request| request.region == "eu" && request.auth.as_deref() == Some("signed")));
}

fn grant(token: &str, region: &str) -> OAuthGrant {
    OAuthGrant {
        access_token: token.into(),
        refresh_token: None,
        expires_at: None,
        scopes: vec!["all".to_owned()],
        token_type: Some("Bearer".to_owned()),
        extra: serde_json::Map::new(),
        options: serde_json::Map::from_iter([("region".to_owned(), json!(region))]),
    }
}

#[tokio::test]
async fn ovh_through_oauth_meets_the_oauth_contract() {
    let fake = FakeOvh::start(None).await;
    let (access, refresh) = fake.issue_tokens("ca");
    let wrong = fake_ovh::issued_access_token("ca", 999);
    let canaries = vec![access.clone(), refresh, wrong.clone()];
    let grants = OAuthGrants {
        good: grant(&access, "ovh-ca"),
        bad: grant(&wrong, "ovh-ca"),
    };
    run_oauth_contract_suite(case(&fake, Value::Null, Value::Null, canaries), grants).await;
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.region == "ca" && request.auth.as_deref() == Some("bearer")));
}
