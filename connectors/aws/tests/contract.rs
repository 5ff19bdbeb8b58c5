//! The shared connector contract, run against the fake Amazon Web Services.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_aws::fake::FakeAws;
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall};
use serde_json::json;

const API_KEY: &str = "canary-api-key-3e8b1f07";
const WRONG_API_KEY: &str = "canary-wrong-api-key-9c2d4a";

#[tokio::test]
async fn aws_meets_the_connector_contract() {
    let fake = FakeAws::start(API_KEY).await;
    let connector = Arc::new(fake.connector());
    let case = ContractCase {
        connector,
        good_form: json!({"api_key": API_KEY}),
        bad_form: json!({"api_key": WRONG_API_KEY}),
        invalid_form: json!({}),
        operation_params: BTreeMap::from([("list_items".to_owned(), json!({"limit": 10}))]),
        webhook_samples: Vec::new(),
        webhook_signing: None,
        canaries: vec![API_KEY.to_owned(), WRONG_API_KEY.to_owned()],
        paging: Some(OperationCall::new("list_items", json!({"limit": 10}))),
        oversized: None,
    };
    run_contract_suite(case).await;
}
