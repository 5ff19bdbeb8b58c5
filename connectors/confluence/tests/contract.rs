//! The shared connector contract, run against the fake Atlassian: once for Data
//! Center (personal access token on an allowlisted loopback address) and once for
//! Cloud (OAuth grants).

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_confluence::fake::{FakeConfluence, ProviderFake, RUNBOOK_PAGE_ID};
use patchbay_testkit::contract::{
    run_contract_suite, run_oauth_contract_suite, ContractCase, OAuthGrants, OperationCall,
};
use serde_json::{json, Value};

const TOKEN: &str = "canary-confluence-pat-3e8b1f07";
const WRONG_TOKEN: &str = "canary-confluence-wrong-9c2d4a";

fn operation_params(site: &str) -> BTreeMap<String, Value> {
    BTreeMap::from([
        (
            "resolve_page_url".to_owned(),
            json!({"url": format!("{site}/pages/viewpage.action?pageId={RUNBOOK_PAGE_ID}")}),
        ),
        ("get_page".to_owned(), json!({"page_id": RUNBOOK_PAGE_ID})),
        (
            "get_runbook".to_owned(),
            json!({"page_id": RUNBOOK_PAGE_ID}),
        ),
        ("search_pages".to_owned(), json!({"text": "checkout"})),
        (
            "find_similar_incidents".to_owned(),
            json!({"text": "checkout 502 errors at 2026-03-02T10:15:00Z"}),
        ),
        ("find_runbooks".to_owned(), json!({"service": "checkout"})),
        ("list_spaces".to_owned(), json!({"limit": 5})),
    ])
}

fn case(
    fake: &FakeConfluence,
    good: Value,
    bad: Value,
    invalid: Value,
    site: &str,
) -> ContractCase {
    ContractCase {
        connector: Arc::new(fake.connector_allowing_loopback()),
        good_form: good,
        bad_form: bad,
        invalid_form: invalid,
        operation_params: operation_params(site),
        webhook_samples: Vec::new(),
        webhook_signing: None,
        canaries: vec![TOKEN.to_owned(), WRONG_TOKEN.to_owned()],
        paging: Some(OperationCall::new("list_spaces", json!({"limit": 5}))),
        oversized: None,
    }
}

#[tokio::test]
async fn confluence_data_center_meets_the_connector_contract() {
    let fake = FakeConfluence::start(TOKEN).await;
    let base = fake.base_url();
    let case = case(
        &fake,
        json!({"base_url": base, "personal_access_token": TOKEN}),
        json!({"base_url": base, "personal_access_token": WRONG_TOKEN}),
        json!({"base_url": "https://10.0.0.1", "personal_access_token": TOKEN}),
        &base,
    );
    run_contract_suite(case).await;
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.path.starts_with("/rest/api/")));
}

#[tokio::test]
async fn confluence_cloud_meets_the_oauth_contract() {
    let fake = FakeConfluence::start(TOKEN).await;
    let grants = OAuthGrants {
        good: fake.grant(TOKEN, json!({})),
        bad: fake.grant(WRONG_TOKEN, json!({})),
    };
    let case = case(
        &fake,
        json!({}),
        json!({}),
        json!({"base_url": "https://acme.atlassian.net", "personal_access_token": TOKEN}),
        "https://acme.atlassian.net/wiki",
    );
    run_oauth_contract_suite(case, grants).await;
    let api: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.path.starts_with("/ex/confluence/"))
        .collect();
    assert!(!api.is_empty());
    assert!(api
        .iter()
        .all(|request| request.has_header("authorization")));
}
