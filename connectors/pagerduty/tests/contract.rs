//! The shared connector contract, run against the fake PagerDuty.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_pagerduty::fake::{sample_payload, FakePagerduty, INCIDENT_ID, SERVICE_ID};
use patchbay_connector_pagerduty::webhook::{sign, SIGNATURE_HEADER, WEBHOOK_ID_HEADER};
use patchbay_core::InboundWebhook;
use patchbay_http::{Bytes, HeaderMap};
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall, WebhookSigning};
use serde_json::json;

const API_TOKEN: &str = "canary-pd-token-3e8b1f07";
const WRONG_API_TOKEN: &str = "canary-pd-wrong-9c2d4a";
const WEBHOOK_SECRET: &str = "canary-pd-whsec-4b9e0c27";

/// A signed delivery of `event_type` for the sample incident.
fn delivery(webhook_id: &str, event_type: &str) -> InboundWebhook {
    let body = sample_payload(&format!("evt-{webhook_id}"), event_type, INCIDENT_ID).to_string();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert(WEBHOOK_ID_HEADER, webhook_id.parse().unwrap());
    headers.insert(
        SIGNATURE_HEADER,
        sign(WEBHOOK_SECRET, body.as_bytes()).parse().unwrap(),
    );
    InboundWebhook {
        headers,
        body: Bytes::from(body),
    }
}

#[tokio::test]
async fn pagerduty_meets_the_connector_contract() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let incident = json!({"incident_id": INCIDENT_ID});
    let operation_params = BTreeMap::from([
        ("list_incidents".to_owned(), json!({"limit": 5})),
        ("get_incident".to_owned(), incident.clone()),
        ("list_incident_alerts".to_owned(), incident.clone()),
        ("list_incident_log_entries".to_owned(), incident.clone()),
        ("list_incident_notes".to_owned(), incident.clone()),
        ("list_related_change_events".to_owned(), incident),
        ("list_services".to_owned(), json!({})),
        ("get_service".to_owned(), json!({"service_id": SERVICE_ID})),
        ("list_oncalls".to_owned(), json!({})),
        ("list_change_events".to_owned(), json!({})),
        ("list_schedules".to_owned(), json!({})),
        ("list_escalation_policies".to_owned(), json!({})),
    ]);
    let case = ContractCase {
        connector: Arc::new(fake.connector()),
        good_form: json!({"api_token": API_TOKEN, "webhook_secret": WEBHOOK_SECRET}),
        bad_form: json!({"api_token": WRONG_API_TOKEN}),
        invalid_form: json!({}),
        operation_params,
        webhook_samples: vec![
            delivery("wh-1", "incident.triggered"),
            delivery("wh-2", "incident.resolved"),
        ],
        webhook_signing: Some(WebhookSigning {
            signature_header: SIGNATURE_HEADER,
            timestamp_header: None,
            sign: Box::new(|request: &InboundWebhook| sign(WEBHOOK_SECRET, &request.body)),
        }),
        canaries: vec![
            API_TOKEN.to_owned(),
            WRONG_API_TOKEN.to_owned(),
            WEBHOOK_SECRET.to_owned(),
        ],
        paging: Some(OperationCall::new("list_incidents", json!({"limit": 5}))),
        oversized: None,
    };
    run_contract_suite(case).await;
}
