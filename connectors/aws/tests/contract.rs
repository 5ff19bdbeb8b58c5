//! The shared connector contract, run against moto behind the connector's AWS front.

use std::collections::BTreeMap;
use std::sync::Arc;

use patchbay_connector_aws::fake::{fresh_role, AwsFront};
use patchbay_testkit::contract::{run_contract_suite, ContractCase, OperationCall};
use serde_json::json;

const PLATFORM_SECRET: &str = "canary-platform-secret-5d1e9a";
const EXTERNAL_ID_KEY: &str = "canary-external-id-key-7b3f20";

#[tokio::test]
async fn aws_meets_the_connector_contract_needs_moto() {
    let front = AwsFront::start(&patchbay_testkit::services::moto_url()).await;
    let role = fresh_role("PatchbayRole");
    let untrusted_role = role.replace("PatchbayRole", "Stranger");
    let connector = front.connector(PLATFORM_SECRET, EXTERNAL_ID_KEY);
    // The contract suite acts without a tenant: its ExternalId is the embedded scope's.
    let external_id = connector
        .platform()
        .await
        .external_id("embedded")
        .expect("an ExternalId");
    front.trust_role(&role, external_id.expose());
    let seeded = front.seed(&connector, &role, &external_id).await;
    let case = ContractCase {
        connector: Arc::new(connector),
        good_form: json!({"role_arn": role, "region": "us-east-1"}),
        bad_form: json!({"role_arn": untrusted_role}),
        invalid_form: json!({"role_arn": "PatchbayRole"}),
        operation_params: BTreeMap::from([
            ("list_alarms".to_owned(), json!({})),
            (
                "get_metric_data".to_owned(),
                json!({"queries": [{"id": "latency", "namespace": "Patchbay/Test", "metric_name": "Latency", "stat": "Average", "period": 60}]}),
            ),
            (
                "filter_log_events".to_owned(),
                json!({"log_group_name": seeded.log_group, "filter_pattern": "ERROR"}),
            ),
            (
                "query_logs_insights".to_owned(),
                json!({"query": "fields @timestamp, @message | limit 5", "log_group_names": [seeded.log_group]}),
            ),
            ("lookup_cloudtrail_events".to_owned(), json!({})),
            ("list_instances".to_owned(), json!({})),
            ("list_eks_clusters".to_owned(), json!({})),
        ]),
        webhook_samples: Vec::new(),
        webhook_signing: None,
        canaries: vec![
            PLATFORM_SECRET.to_owned(),
            EXTERNAL_ID_KEY.to_owned(),
            external_id.expose().to_owned(),
        ],
        paging: Some(OperationCall::new(
            "lookup_cloudtrail_events",
            json!({"limit": 1}),
        )),
        oversized: None,
    };
    run_contract_suite(case).await;
}
