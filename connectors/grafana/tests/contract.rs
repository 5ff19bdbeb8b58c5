//! The shared connector contract, run against the fake Grafana.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_grafana::fake::{sample_payload, FakeGrafana};
use patchbay_connector_grafana::webhook::{sign, SIGNATURE_HEADER};
use patchbay_core::InboundWebhook;
use patchbay_http::{Bytes, HeaderMap};
use patchbay_testkit::contract::{
    run_contract_suite, with_webhook_secret, ContractCase, OperationCall, WebhookSigning,
};
use serde_json::json;

const API_KEY: &str = "canary-api-key-3e8b1f07";
const WRONG_API_KEY: &str = "canary-wrong-api-key-9c2d4a";
const WEBHOOK_SECRET: &str = "canary-webhook-secret-4b9e0c27";

/// A JSON delivery of the sample payload for `alert_id` at `status`, signed with `secret`.
fn delivery(alert_id: &str, status: &str, secret: &str) -> InboundWebhook {
    let body = sample_payload(alert_id, status).to_string();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        sign(secret.as_bytes(), body.as_bytes()).parse().unwrap(),
    );
    InboundWebhook {
        headers,
        body: Bytes::from(body),
    }
}

#[tokio::test]
async fn grafana_meets_the_connector_contract() {
    let fake = FakeGrafana::start(API_KEY).await;
    let connector = with_webhook_secret(Arc::new(fake.connector()), WEBHOOK_SECRET);
    let case = ContractCase {
        connector,
        good_form: json!({"api_key": API_KEY}),
        bad_form: json!({"api_key": WRONG_API_KEY}),
        invalid_form: json!({}),
        operation_params: BTreeMap::from([("list_items".to_owned(), json!({"limit": 10}))]),
        webhook_samples: vec![
            delivery("alert-1", "firing", WEBHOOK_SECRET),
            delivery("alert-1", "resolved", WEBHOOK_SECRET),
        ],
        webhook_signing: Some(WebhookSigning {
            signature_header: SIGNATURE_HEADER,
            timestamp_header: None,
            sign: Box::new(|request: &InboundWebhook| {
                sign(WEBHOOK_SECRET.as_bytes(), &request.body)
            }),
        }),
        canaries: vec![
            API_KEY.to_owned(),
            WRONG_API_KEY.to_owned(),
            WEBHOOK_SECRET.to_owned(),
        ],
        paging: Some(OperationCall::new("list_items", json!({"limit": 10}))),
        oversized: None,
    };
    run_contract_suite(case).await;
}
