//! The shared connector contract, run against the fake Entra ID and Azure APIs.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_azure::fake::{
    FakeAzure, CLIENT_ID, READ_ONLY_CLIENT_ID, TENANT_ID, VM_ID, WORKSPACE_ID,
};
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall};
use serde_json::json;

const SECRET: &str = "canary-azure-secret-3e8b1f07";
const READ_ONLY_SECRET: &str = "canary-azure-ro-secret-51d2";
const WRONG_SECRET: &str = "canary-azure-wrong-secret-9c2d4a";

#[tokio::test]
async fn azure_meets_the_connector_contract() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = Arc::new(fake.connector());
    let case = ContractCase {
        connector,
        good_form: json!({
            "tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": SECRET,
            "read_only_client_id": READ_ONLY_CLIENT_ID, "read_only_client_secret": READ_ONLY_SECRET
        }),
        bad_form: json!({"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": WRONG_SECRET}),
        invalid_form: json!({"tenant_id": TENANT_ID}),
        operation_params: BTreeMap::from([
            (
                "query_resource_graph".to_owned(),
                json!({"query": "Resources | project name", "limit": 10}),
            ),
            (
                "query_metrics".to_owned(),
                json!({"resource_id": VM_ID, "metric_names": ["Percentage CPU"]}),
            ),
            ("list_activity_log".to_owned(), json!({})),
            ("list_alerts".to_owned(), json!({"limit": 2})),
            ("list_aks_clusters".to_owned(), json!({})),
            (
                "query_log_analytics".to_owned(),
                json!({"workspace_id": WORKSPACE_ID, "query": "AzureActivity | take 5"}),
            ),
        ]),
        webhook_samples: Vec::new(),
        webhook_signing: None,
        canaries: vec![
            SECRET.to_owned(),
            READ_ONLY_SECRET.to_owned(),
            WRONG_SECRET.to_owned(),
        ],
        paging: Some(OperationCall::new(
            "query_resource_graph",
            json!({"query": "Resources | project name", "limit": 10}),
        )),
        oversized: Some(OperationCall::new(
            "query_resource_graph",
            json!({"query": "Resources | oversized", "limit": 1000}),
        )),
    };
    run_contract_suite(case).await;
}
