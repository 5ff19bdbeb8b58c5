//! AWS end to end through the real binary, against moto behind the connector's
//! front: onboarding (account id, ExternalId, trust policy), a refused role, a role
//! trusting Patchbay without the ExternalId, a good connection, every operation,
//! paging, disconnect, and a canary scan of the platform's keys, the ExternalId and
//! the session credentials.

use patchbay_connector_aws::fake::{
    fresh_role, AwsFront, PLATFORM_ACCESS_KEY_ID, PLATFORM_ACCOUNT_ID,
};
use patchbay_e2e::Patchbay;
use serde_json::{json, Value};

const PLATFORM_SECRET: &str = "canary-aws-platform-secret-6a0f4e";
const EXTERNAL_ID_KEY: &str = "canary-aws-external-id-key-c39d18";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_moto_aws_onboard_connect_query_disconnect_without_leaking_secrets() {
    let front = AwsFront::start(&patchbay_testkit::services::moto_url()).await;
    let endpoint = front.base_url();
    let patchbay = Patchbay::start(&[
        ("AWS_ACCESS_KEY_ID", PLATFORM_ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", PLATFORM_SECRET),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", endpoint.as_str()),
        ("PATCHBAY_AWS_EXTERNAL_ID_KEY", EXTERNAL_ID_KEY),
    ])
    .await;
    let alice = patchbay.create_api_key("alice", Some("acme"));
    let bob = patchbay.create_api_key("bob", Some("acme"));
    let carol = patchbay.create_api_key("carol", Some("globex"));

    // Onboarding: Patchbay's account, the organisation's ExternalId, the guide's policy.
    let onboarding = patchbay
        .api("GET", "/api/connectors/aws/onboarding", &alice, None)
        .await;
    assert_eq!(onboarding.status, 200, "{}", onboarding.text);
    let info = onboarding.json()["onboarding"].clone();
    assert_eq!(info["account_id"], PLATFORM_ACCOUNT_ID);
    let external_id = info["external_id"].as_str().unwrap().to_owned();
    assert!(external_id.len() >= 2 && external_id.len() <= 1224);
    assert_eq!(
        info["trust_policy"]["Statement"][0]["Condition"]["StringEquals"]["sts:ExternalId"],
        external_id.as_str()
    );
    assert_eq!(
        info["trust_policy"]["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{PLATFORM_ACCOUNT_ID}:root")
    );
    let same_org = patchbay
        .api("GET", "/api/connectors/aws/onboarding", &bob, None)
        .await
        .json();
    assert_eq!(same_org["onboarding"]["external_id"], external_id.as_str());
    let other_org = patchbay
        .api("GET", "/api/connectors/aws/onboarding", &carol, None)
        .await
        .json();
    let other_external_id = other_org["onboarding"]["external_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(other_external_id, external_id);
    let none = patchbay
        .api("GET", "/api/connectors/grafana/onboarding", &alice, None)
        .await;
    assert_eq!(none.status, 501, "{}", none.text);

    // A malformed ARN is a 400 naming the field.
    let bad = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "aws", "fields": {"role_arn": "PatchbayRole"}})),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert_eq!(bad.json()["error"]["message"], "Invalid role ARN format");
    assert_eq!(bad.json()["error"]["field"], "role_arn");

    // A role Patchbay cannot assume: 422 with the guide's message; nothing stored.
    let role = fresh_role("PatchbayRole");
    let refused = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "aws", "fields": {"role_arn": role}})),
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    let report = refused.json()["report"].clone();
    let assume = find_check(&report, "assume_role");
    assert!(assume["detail"]
        .as_str()
        .unwrap()
        .starts_with("Patchbay cannot assume this role"));

    // The role trusted by carol's organisation's ExternalId is not alice's to use.
    front.trust_role(&role, &other_external_id);
    let foreign = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "aws", "fields": {"role_arn": role}})),
        )
        .await;
    assert_eq!(foreign.status, 422, "{}", foreign.text);

    // A role trusting Patchbay without the ExternalId condition is refused.
    let careless = fresh_role("CarelessRole");
    front.trust_role_without_external_id(&careless);
    let open = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "aws", "fields": {"role_arn": careless}})),
        )
        .await;
    assert_eq!(open.status, 422, "{}", open.text);
    let open_report = open.json()["report"].clone();
    let enforced = find_check(&open_report, "external_id_enforced");
    assert!(enforced["detail"]
        .as_str()
        .unwrap()
        .contains("does not require ExternalId in its trust policy"));
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(listed["connections"], json!([]));

    // The role trusting alice's organisation's ExternalId connects.
    front.trust_role(&role, &external_id);
    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({"connector": "aws", "label": "prod", "fields": {"role_arn": role, "region": "us-east-1"}})),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connection = connected.json()["connection"].clone();
    let id = connection["id"].as_str().unwrap().to_owned();
    assert_eq!(connection["metadata"]["role_arn"], role.as_str());
    assert_eq!(
        connection["metadata"]["connection_method"],
        "sts_assume_role"
    );
    assert!(!connection.to_string().contains(&external_id));

    // Seed the account through the same front, then run every operation.
    let seeding = front.connector(PLATFORM_SECRET, EXTERNAL_ID_KEY);
    let seeded = front
        .seed(&seeding, &role, &patchbay_core_secret(&external_id))
        .await;
    let operations: Vec<(&str, Value)> = vec![
        ("list_alarms", json!({})),
        (
            "get_metric_data",
            json!({"queries": [{"id": "latency", "namespace": "Patchbay/Test", "metric_name": "Latency", "period": 60}]}),
        ),
        (
            "filter_log_events",
            json!({"log_group_name": seeded.log_group, "filter_pattern": "ERROR"}),
        ),
        (
            "query_logs_insights",
            json!({"query": "fields @timestamp, @message | limit 5", "log_group_names": [seeded.log_group]}),
        ),
        ("lookup_cloudtrail_events", json!({"limit": 2})),
        ("list_instances", json!({})),
        ("list_eks_clusters", json!({})),
    ];
    let mut answers = std::collections::BTreeMap::new();
    for (operation, params) in operations {
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{id}/query/{operation}"),
                &alice,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
        answers.insert(operation, answer.json());
    }
    assert_eq!(
        answers["list_alarms"]["data"]["alarms"][0]["name"],
        seeded.alarm
    );
    assert_eq!(
        answers["get_metric_data"]["data"]["series"][0]["points"][0][1],
        42.0
    );
    assert_eq!(
        answers["filter_log_events"]["data"]["events"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(answers["query_logs_insights"]["data"]["status"], "Complete");
    assert_eq!(
        answers["list_instances"]["data"]["instances"]
            .as_array()
            .unwrap()
            .len(),
        seeded.instances.len()
    );
    assert_eq!(
        answers["list_eks_clusters"]["data"]["clusters"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let cursor = answers["lookup_cloudtrail_events"]["next_cursor"]
        .as_str()
        .expect("a second page of events")
        .to_owned();
    let next = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/lookup_cloudtrail_events"),
            &alice,
            Some(json!({"limit": 2, "cursor": cursor})),
        )
        .await;
    assert_eq!(next.status, 200, "{}", next.text);
    assert_eq!(next.json()["data"]["events"].as_array().unwrap().len(), 1);

    // Queries need the connection id: another organisation cannot use it.
    let other = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_alarms"),
            &carol,
            Some(json!({})),
        )
        .await;
    assert_eq!(other.status, 404, "{}", other.text);

    // An action the role may not call: 403 naming it.
    let account = role.split(':').nth(4).unwrap();
    front.deny(account, "ec2:DescribeInstances");
    let denied = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_instances"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(denied.status, 403, "{}", denied.text);
    let message = denied.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.starts_with("Access denied"), "{message}");
    assert!(message.contains("ec2:DescribeInstances"), "{message}");

    // Sessions are cached: the queries above assumed the role once (the validation's
    // own sessions aside).
    let query_assumes = front
        .assume_calls()
        .iter()
        .filter(|call| call.role_arn == role && call.with_external_id && call.allowed)
        .count();
    assert!(query_assumes <= 3, "{:?}", front.assume_calls());

    // While the connection is stored: nothing in clear in the data directory or logs.
    let sessions = front.issued_session_secrets();
    let mut stored_canaries: Vec<&str> = vec![PLATFORM_SECRET, EXTERNAL_ID_KEY];
    stored_canaries.extend(sessions.iter().map(String::as_str));
    patchbay.assert_nowhere(&stored_canaries);
    patchbay.assert_not_logged_or_stored(&[&external_id, &other_external_id]);

    let deleted = patchbay
        .api("DELETE", &format!("/api/connections/{id}"), &alice, None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_alarms"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(gone.status, 404, "{}", gone.text);

    let sessions = front.issued_session_secrets();
    assert!(sessions.len() >= 6, "{sessions:?}");
    let mut canaries: Vec<&str> = vec![PLATFORM_SECRET, EXTERNAL_ID_KEY];
    canaries.extend(sessions.iter().map(String::as_str));
    patchbay.assert_nowhere(&canaries);
    // The ExternalIds are shown by onboarding, by design, but never logged or stored in clear.
    patchbay.assert_not_logged_or_stored(&[&external_id, &other_external_id]);
}

fn find_check<'r>(report: &'r Value, id: &str) -> &'r Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

fn patchbay_core_secret(value: &str) -> patchbay_core::SecretString {
    patchbay_core::SecretString::new(value.to_owned())
}
