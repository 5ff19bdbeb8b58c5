//! The shared connector contract, run against the fake Datadog.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_connector_datadog::DatadogConnector;
use patchbay_core::InboundWebhook;
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall};
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::http::client_for_fake;
use serde_json::json;

const API_KEY: &str = "canary-api-key-5f2c9a7e31d4";
const APP_KEY: &str = "canary-app-key-8b61d0c4fe92";
const WRONG_API_KEY: &str = "canary-wrong-api-key-0d3e7a";

fn json_webhook(body: serde_json::Value) -> InboundWebhook {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    InboundWebhook {
        headers,
        body: Bytes::from(body.to_string()),
    }
}

#[tokio::test]
async fn datadog_meets_the_connector_contract() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = Arc::new(DatadogConnector::new(client_for_fake(
        &fake.override_spec(),
    )));

    let operation_params = BTreeMap::from([
        (
            "search_logs".to_owned(),
            json!({"query": "service:checkout", "from": "now-15m", "limit": 10}),
        ),
        (
            "query_metrics".to_owned(),
            json!({"query": "avg:system.cpu.user{*} by {host}"}),
        ),
        ("list_monitors".to_owned(), json!({"page_size": 10})),
        ("get_monitor".to_owned(), json!({"monitor_id": 1001})),
        ("list_events".to_owned(), json!({"start": "now-1h"})),
        ("list_hosts".to_owned(), json!({"count": 2})),
        ("list_incidents".to_owned(), json!({"page_size": 5})),
    ]);
    let default_template = json!({
        "body": "%%%\nCPU is high on web-1\n%%%",
        "last_updated": "1591216985000",
        "event_type": "query_alert_monitor",
        "title": "[Triggered] CPU high",
        "date": "1591216985000",
        "org": {"id": "415600", "name": "Patchbay Test Org"},
        "id": "5485379890863845239",
    });

    run_contract_suite(ContractCase {
        connector,
        good_form: json!({"api_key": API_KEY, "app_key": APP_KEY}),
        bad_form: json!({"api_key": WRONG_API_KEY, "app_key": APP_KEY}),
        invalid_form: json!({"api_key": API_KEY, "app_key": APP_KEY, "site": "datadoghq.mars"}),
        operation_params,
        webhook_samples: vec![
            json_webhook(fake.sample_webhook(1001, "Triggered")),
            json_webhook(fake.sample_webhook(1001, "Recovered")),
            json_webhook(default_template),
        ],
        // Token webhooks: the suite adds the connection's token and the host checks it.
        webhook_signing: None,
        canaries: vec![
            API_KEY.to_owned(),
            APP_KEY.to_owned(),
            WRONG_API_KEY.to_owned(),
        ],
        // 40 checkout logs: four pages of 10.
        paging: Some(OperationCall::new(
            "search_logs",
            json!({"query": "service:checkout", "from": "now-15m", "limit": 10}),
        )),
        // The 40 checkout errors carry stack traces of about 9 KB each.
        oversized: Some(OperationCall::new(
            "search_logs",
            json!({"query": "status:error", "from": "now-15m", "limit": 1000}),
        )),
    })
    .await;

    let requests = fake.requests();
    assert!(requests
        .iter()
        .all(|request| request.query_value("api_key").is_none()
            && request.query_value("application_key").is_none()));
    assert!(requests
        .iter()
        .all(|request| request.has_header("dd-api-key")));
}
