//! The shared connector contract, run against the fake Netdata.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_netdata::fake::{sample_payload, FakeNetdata};
use patchbay_core::InboundWebhook;
use patchbay_http::{Bytes, HeaderMap};
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall};
use serde_json::json;

const API_KEY: &str = "canary-api-key-3e8b1f07";
const WRONG_API_KEY: &str = "canary-wrong-api-key-9c2d4a";

/// A JSON delivery of the sample payload for `alert_id` at `status`.
fn delivery(alert_id: &str, status: &str) -> InboundWebhook {
    let body = sample_payload(alert_id, status).to_string();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    InboundWebhook {
        headers,
        body: Bytes::from(body),
    }
}

#[tokio::test]
async fn netdata_meets_the_connector_contract() {
    let fake = FakeNetdata::start(API_KEY).await;
    let connector = Arc::new(fake.connector());
    let case = ContractCase {
        connector,
        good_form: json!({"api_key": API_KEY}),
        bad_form: json!({"api_key": WRONG_API_KEY}),
        invalid_form: json!({}),
        operation_params: BTreeMap::from([("list_items".to_owned(), json!({"limit": 10}))]),
        // Token webhooks: the suite adds the connection's token and the host checks it.
        webhook_samples: vec![
            delivery("alert-1", "firing"),
            delivery("alert-1", "resolved"),
        ],
        webhook_signing: None,
        canaries: vec![API_KEY.to_owned(), WRONG_API_KEY.to_owned()],
        paging: Some(OperationCall::new("list_items", json!({"limit": 10}))),
        oversized: None,
    };
    run_contract_suite(case).await;
}
