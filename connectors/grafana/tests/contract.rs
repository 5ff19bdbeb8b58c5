//! The shared connector contract, run against the fake Grafana.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_grafana::fake::{sample_payload, FakeGrafana, ProviderFake, PROMETHEUS_UID};
use patchbay_connector_grafana::webhook::sign;
use patchbay_connector_grafana::DEFAULT_SIGNATURE_HEADER;
use patchbay_core::InboundWebhook;
use patchbay_http::{Bytes, HeaderMap};
use patchbay_testkit::contract::{
    run_contract_suite, with_webhook_secret, ContractCase, OperationCall, WebhookSigning,
};
use serde_json::json;

const API_TOKEN: &str = "glsa_canary-api-token-3e8b1f07";
const WRONG_API_TOKEN: &str = "glsa_canary-wrong-token-9c2d4a";
const WEBHOOK_SECRET: &str = "canary-webhook-secret-4b9e0c27";
const TIMESTAMP_HEADER: &str = "X-Grafana-Alerting-Timestamp";

/// A delivery of the sample payload, signed over `timestamp:body` with `secret`.
fn delivery(fingerprint: &str, status: &str, secret: &str) -> InboundWebhook {
    let body = sample_payload(fingerprint, status, "2026-12-01T10:00:00Z").to_string();
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    headers.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
    headers.insert(
        DEFAULT_SIGNATURE_HEADER,
        sign(secret.as_bytes(), Some(&timestamp), body.as_bytes())
            .parse()
            .unwrap(),
    );
    InboundWebhook {
        headers,
        body: Bytes::from(body),
    }
}

#[tokio::test]
async fn grafana_meets_the_connector_contract() {
    let fake = FakeGrafana::start(API_TOKEN).await;
    let connector = with_webhook_secret(Arc::new(fake.connector()), WEBHOOK_SECRET);
    let mut good_form = fake.form(API_TOKEN);
    good_form["timestamp_header"] = json!(TIMESTAMP_HEADER);
    let case = ContractCase {
        connector,
        good_form,
        bad_form: fake.form(WRONG_API_TOKEN),
        invalid_form: json!({"base_url": "https://10.0.0.1", "api_token": API_TOKEN}),
        operation_params: BTreeMap::from([
            ("search_dashboards".to_owned(), json!({"limit": 20})),
            ("get_dashboard".to_owned(), json!({"uid": "dash-01"})),
            ("list_datasources".to_owned(), json!({})),
            (
                "query_datasource".to_owned(),
                json!({"datasource_uid": PROMETHEUS_UID, "expr": "up", "datasource_type": "prometheus"}),
            ),
            ("list_alert_rules".to_owned(), json!({"group_limit": 2})),
            ("list_active_alerts".to_owned(), json!({"limit": 5})),
            ("list_annotations".to_owned(), json!({"limit": 50})),
        ]),
        webhook_samples: vec![
            delivery("c6eadffa33fcdf37", "firing", WEBHOOK_SECRET),
            delivery("c6eadffa33fcdf37", "resolved", WEBHOOK_SECRET),
        ],
        webhook_signing: Some(WebhookSigning {
            signature_header: DEFAULT_SIGNATURE_HEADER,
            timestamp_header: Some(TIMESTAMP_HEADER),
            sign: Box::new(|request: &InboundWebhook| {
                sign(
                    WEBHOOK_SECRET.as_bytes(),
                    request.header(TIMESTAMP_HEADER),
                    &request.body,
                )
            }),
        }),
        canaries: vec![
            API_TOKEN.to_owned(),
            WRONG_API_TOKEN.to_owned(),
            WEBHOOK_SECRET.to_owned(),
        ],
        paging: Some(OperationCall::new(
            "search_dashboards",
            json!({"limit": 20}),
        )),
        oversized: Some(OperationCall::new(
            "query_datasource",
            json!({"datasource_uid": PROMETHEUS_UID, "expr": "many_series", "max_data_points": 500, "from": "now-7d"}),
        )),
    };
    run_contract_suite(case).await;

    let requests = fake.requests();
    assert!(requests
        .iter()
        .filter(|request| request.path != "/api/health")
        .all(|request| request.has_header("authorization")));
}
