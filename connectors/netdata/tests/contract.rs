//! The shared connector contract, run against the fake Netdata Cloud.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_netdata::fake::{
    v1_payload, v2_payload, FakeNetdata, ALL_NODES_ROOM, SPACE_NAME,
};
use patchbay_core::InboundWebhook;
use patchbay_http::{Bytes, HeaderMap};
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall};
use serde_json::{json, Value};

const API_TOKEN: &str = "canary-netdata-token-3e8b1f07";
const WRONG_API_TOKEN: &str = "canary-wrong-netdata-token-9c2d4a";

/// A JSON delivery of `payload`.
fn delivery(payload: Value) -> InboundWebhook {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    InboundWebhook {
        headers,
        body: Bytes::from(payload.to_string()),
    }
}

#[tokio::test]
async fn netdata_meets_the_connector_contract() {
    let fake = FakeNetdata::start(API_TOKEN).await;
    let connector = Arc::new(fake.connector());
    let case = ContractCase {
        connector,
        good_form: json!({"api_token": API_TOKEN, "space_name": SPACE_NAME}),
        bad_form: json!({"api_token": WRONG_API_TOKEN, "space_name": SPACE_NAME}),
        invalid_form: json!({"space_name": SPACE_NAME}),
        operation_params: BTreeMap::from([
            ("list_spaces".to_owned(), json!({"limit": 10})),
            ("list_rooms".to_owned(), json!({"limit": 10})),
            (
                "list_nodes".to_owned(),
                json!({"room_id": ALL_NODES_ROOM, "limit": 10}),
            ),
            (
                "list_alerts".to_owned(),
                json!({"room_id": ALL_NODES_ROOM, "limit": 10}),
            ),
        ]),
        // Token webhooks: the suite adds the connection's token as
        // `Authorization: Bearer <token>` and the host's check verifies it.
        webhook_samples: vec![
            delivery(v1_payload(
                "10min_cpu_usage",
                "web-1",
                "CRITICAL",
                1_714_564_800,
            )),
            delivery(v1_payload(
                "10min_cpu_usage",
                "web-1",
                "CLEAR",
                1_714_565_400,
            )),
            delivery(v2_payload(
                "10min_cpu_usage",
                "web-1",
                "WARNING",
                1_714_564_800,
            )),
        ],
        webhook_signing: None,
        canaries: vec![API_TOKEN.to_owned(), WRONG_API_TOKEN.to_owned()],
        paging: Some(OperationCall::new("list_rooms", json!({"limit": 2}))),
        oversized: None,
    };
    run_contract_suite(case).await;
}
