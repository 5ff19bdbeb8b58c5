//! The AWS connector's own behaviour: every validation check failing, onboarding,
//! paging, caps, error mapping and the session cache, against moto behind the
//! connector's front (which enforces the ExternalId moto ignores).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use patchbay_connector_aws::client::{CANNOT_ASSUME, NO_PLATFORM_ACCOUNT, REFRESH_MARGIN};
use patchbay_connector_aws::fake::{fresh_role, AwsFront, PLATFORM_ACCOUNT_ID, SEEDED_INSTANCES};
use patchbay_connector_aws::{trust_policy, AwsConfig, AwsConnector, AwsSecrets};
use patchbay_core::{
    AuthRequest, CheckOutcome, Connector, ConnectorContext, Credentials, ErrorKind, FormFields,
    QueryOutput, Result, SecretString, Tenant, ValidationReport,
};
use serde_json::{json, Value};

const PLATFORM_SECRET: &str = "canary-platform-secret-91c2aa";
const EXTERNAL_ID_KEY: &str = "canary-external-id-key-0d77e3";

fn ctx() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some("conn-1".to_owned()),
        tenant: Some(Tenant::user("alice")),
    }
}

fn form(value: Value) -> AuthRequest {
    match value {
        Value::Object(map) => AuthRequest::Form(FormFields(map)),
        other => panic!("forms are objects: {other}"),
    }
}

struct Setup {
    front: AwsFront,
    connector: AwsConnector,
    role: String,
    account: String,
    external_id: SecretString,
}

async fn setup() -> Setup {
    let front = AwsFront::start(&patchbay_testkit::services::moto_url()).await;
    let connector = front.connector(PLATFORM_SECRET, EXTERNAL_ID_KEY);
    setup_with(front, connector).await
}

async fn setup_with(front: AwsFront, connector: AwsConnector) -> Setup {
    let role = fresh_role("PatchbayRole");
    let account = role.split(':').nth(4).unwrap().to_owned();
    let external_id = connector
        .platform()
        .await
        .external_id(&Tenant::user("alice").scope_key())
        .unwrap();
    Setup {
        front,
        connector,
        role,
        account,
        external_id,
    }
}

impl Setup {
    async fn credentials(&self, value: Value) -> Credentials<AwsConfig, AwsSecrets> {
        self.connector.authenticate(form(value)).await.unwrap()
    }

    async fn validate(
        &self,
        value: Value,
    ) -> (ValidationReport, Credentials<AwsConfig, AwsSecrets>) {
        let mut credentials = self.credentials(value).await;
        let report = self
            .connector
            .validate(&ctx(), &mut credentials)
            .await
            .unwrap();
        (report, credentials)
    }

    async fn connected(&self) -> Credentials<AwsConfig, AwsSecrets> {
        self.front.trust_role(&self.role, self.external_id.expose());
        let (report, credentials) = self.validate(json!({"role_arn": self.role})).await;
        assert!(report.passed(), "{report:?}");
        credentials
    }

    async fn query(
        &self,
        credentials: &Credentials<AwsConfig, AwsSecrets>,
        operation: &str,
        params: Value,
    ) -> Result<QueryOutput> {
        self.connector
            .query(&ctx(), credentials, operation, params)
            .await
    }
}

fn check<'a>(report: &'a ValidationReport, id: &str) -> &'a patchbay_core::ValidationCheck {
    report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:?}"))
}

#[tokio::test]
async fn a_malformed_role_arn_is_refused_naming_the_field() {
    let connector = AwsConnector::new(
        Default::default(),
        patchbay_connector_aws::fake::fast_http(),
    );
    for (fields, field, message) in [
        (json!({}), "role_arn", "role_arn is required"),
        (
            json!({"role_arn": "arn:aws:iam::12345:role/PatchbayRole"}),
            "role_arn",
            "Invalid role ARN format",
        ),
        (
            json!({"role_arn": "arn:aws:iam::123456789012:role/A", "read_only_role_arn": "arn:aws:iam::123456789012:user/B"}),
            "read_only_role_arn",
            "Invalid readOnlyRoleArn format",
        ),
    ] {
        let error = connector.authenticate(form(fields)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some(field));
        assert_eq!(error.message(), message);
    }
}

#[tokio::test]
async fn without_platform_credentials_onboarding_and_validation_give_the_guides_message() {
    let connector = AwsConnector::new(
        Default::default(),
        patchbay_connector_aws::fake::fast_http(),
    )
    .without_platform_credentials();
    let error = connector.onboarding(&ctx()).await.unwrap_err();
    assert_eq!(error.message(), NO_PLATFORM_ACCOUNT);
    assert_eq!(
        NO_PLATFORM_ACCOUNT,
        "Unable to determine Patchbay's AWS account ID"
    );
    assert!(error.hint().unwrap().contains("AWS_ACCESS_KEY_ID"));
    let mut credentials = connector
        .authenticate(form(
            json!({"role_arn": "arn:aws:iam::123456789012:role/PatchbayRole"}),
        ))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert!(!report.passed());
    let platform = check(&report, "platform_identity");
    assert_ne!(platform.outcome, CheckOutcome::Ok);
    assert!(
        platform.detail.contains(NO_PLATFORM_ACCOUNT),
        "{}",
        platform.detail
    );
    assert_eq!(check(&report, "assume_role").outcome, CheckOutcome::Skipped);
}

#[tokio::test]
async fn onboarding_gives_the_account_a_per_tenant_external_id_and_the_guides_trust_policy_needs_moto(
) {
    let s = setup().await;
    let info = s.connector.onboarding(&ctx()).await.unwrap();
    assert_eq!(info["account_id"], PLATFORM_ACCOUNT_ID);
    assert_eq!(info["external_id"], json!(s.external_id.expose()));
    assert_eq!(
        info["trust_policy"],
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": {"AWS": format!("arn:aws:iam::{PLATFORM_ACCOUNT_ID}:root")},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"sts:ExternalId": s.external_id.expose()}}
            }]
        })
    );
    assert_eq!(
        info["trust_policy"],
        trust_policy(PLATFORM_ACCOUNT_ID, s.external_id.expose())
    );
    // Another user has another ExternalId; members of one organisation share one.
    let bob = ConnectorContext {
        connection_id: None,
        tenant: Some(Tenant::user("bob")),
    };
    let other = s.connector.onboarding(&bob).await.unwrap();
    assert_ne!(other["external_id"], info["external_id"]);
    let member = |user: &str| ConnectorContext {
        connection_id: None,
        tenant: Some(Tenant {
            user_id: user.to_owned(),
            org_id: Some("acme".to_owned()),
        }),
    };
    let first = s.connector.onboarding(&member("carol")).await.unwrap();
    let second = s.connector.onboarding(&member("dave")).await.unwrap();
    assert_eq!(first["external_id"], second["external_id"]);
    let text = info.to_string();
    assert!(!text.contains(EXTERNAL_ID_KEY) && !text.contains(PLATFORM_SECRET));
}

#[tokio::test]
async fn a_role_that_cannot_be_assumed_fails_with_the_guides_message_and_checklist_needs_moto() {
    let s = setup().await;
    // Not trusted at all, then trusted with another ExternalId.
    for trust in [None, Some("someone-elses-external-id")] {
        if let Some(other) = trust {
            s.front.trust_role(&s.role, other);
        }
        let (report, credentials) = s.validate(json!({"role_arn": s.role})).await;
        assert!(!report.passed());
        let assume = check(&report, "assume_role");
        assert_eq!(assume.outcome, CheckOutcome::Failed, "{assume:?}");
        assert!(
            assume.detail.starts_with(CANNOT_ASSUME),
            "{}",
            assume.detail
        );
        assert!(assume
            .detail
            .contains(&format!("arn:aws:iam::{PLATFORM_ACCOUNT_ID}:root")));
        assert!(assume.detail.contains(&s.account));
        assert!(!assume.detail.contains(s.external_id.expose()));
        assert_eq!(
            check(&report, "external_id_enforced").outcome,
            CheckOutcome::Skipped
        );
        assert_eq!(
            check(&report, "assumed_identity").outcome,
            CheckOutcome::Skipped
        );
        assert!(credentials.secrets.external_id.is_none());
    }
    assert_eq!(CANNOT_ASSUME, "Patchbay cannot assume this role");
}

#[tokio::test]
async fn a_role_assumable_without_the_external_id_is_refused_needs_moto() {
    let s = setup().await;
    s.front.trust_role_without_external_id(&s.role);
    let (report, credentials) = s.validate(json!({"role_arn": s.role})).await;
    assert!(!report.passed(), "{report:?}");
    assert_eq!(check(&report, "assume_role").outcome, CheckOutcome::Ok);
    let enforced = check(&report, "external_id_enforced");
    assert!(enforced.mandatory);
    assert_eq!(enforced.outcome, CheckOutcome::Failed);
    assert!(
        enforced
            .detail
            .contains("does not require ExternalId in its trust policy"),
        "{}",
        enforced.detail
    );
    assert!(credentials.secrets.external_id.is_none());
    let calls = s.front.assume_calls();
    assert!(calls
        .iter()
        .any(|call| !call.with_external_id && call.allowed));
}

#[tokio::test]
async fn the_external_id_check_fails_closed_when_aws_does_not_answer_needs_moto() {
    let s = setup().await;
    s.front.trust_role(&s.role, s.external_id.expose());
    s.front
        .fail_assume_without_external_id(503, "ServiceUnavailable");
    let (report, _) = s.validate(json!({"role_arn": s.role})).await;
    assert!(!report.passed(), "{report:?}");
    let enforced = check(&report, "external_id_enforced");
    assert_ne!(enforced.outcome, CheckOutcome::Ok);
    assert!(
        enforced.detail.contains("could not prove"),
        "{}",
        enforced.detail
    );
}

#[tokio::test]
async fn a_read_only_role_is_checked_and_used_for_queries_needs_moto() {
    let s = setup().await;
    let read_only = s.role.replace("PatchbayRole", "PatchbayReadOnly");
    s.front.trust_role(&s.role, s.external_id.expose());
    let (report, _) = s
        .validate(json!({"role_arn": s.role, "read_only_role_arn": read_only}))
        .await;
    assert!(!report.passed());
    let check_ro = check(&report, "read_only_assume_role");
    assert!(
        check_ro.detail.starts_with(CANNOT_ASSUME),
        "{}",
        check_ro.detail
    );

    s.front.trust_role(&read_only, s.external_id.expose());
    let (report, credentials) = s
        .validate(json!({"role_arn": s.role, "read_only_role_arn": read_only}))
        .await;
    assert!(report.passed(), "{report:?}");
    assert!(credentials.config.can_execute);
    assert!(credentials
        .config
        .assumed_arn
        .as_deref()
        .unwrap()
        .contains("assumed-role/PatchbayReadOnly/"));
    s.query(&credentials, "list_eks_clusters", json!({}))
        .await
        .unwrap();
    let last = s.front.assume_calls().pop().unwrap();
    assert_eq!(last.role_arn, read_only);
    assert!(last.with_external_id);
}

#[tokio::test]
async fn access_denied_names_the_action_in_checks_and_queries_needs_moto() {
    let s = setup().await;
    for action in [
        "cloudwatch:DescribeAlarms",
        "logs:DescribeLogGroups",
        "cloudtrail:LookupEvents",
        "ec2:DescribeInstances",
        "eks:ListClusters",
    ] {
        s.front.deny(&s.account, action);
    }
    s.front.trust_role(&s.role, s.external_id.expose());
    let (report, credentials) = s.validate(json!({"role_arn": s.role})).await;
    assert!(report.passed(), "probes are not mandatory: {report:?}");
    for (id, action) in [
        ("permission:cloudwatch", "cloudwatch:DescribeAlarms"),
        ("permission:logs", "logs:DescribeLogGroups"),
        ("permission:cloudtrail", "cloudtrail:LookupEvents"),
        ("permission:ec2", "ec2:DescribeInstances"),
        ("permission:eks", "eks:ListClusters"),
    ] {
        let probe = check(&report, id);
        assert_eq!(probe.outcome, CheckOutcome::Failed, "{probe:?}");
        assert!(
            probe.detail.starts_with("Access denied"),
            "{}",
            probe.detail
        );
        assert!(probe.detail.contains(action), "{}", probe.detail);
    }
    for (operation, params, action) in [
        ("list_alarms", json!({}), "cloudwatch:DescribeAlarms"),
        ("list_instances", json!({}), "ec2:DescribeInstances"),
        ("list_eks_clusters", json!({}), "eks:ListClusters"),
        (
            "lookup_cloudtrail_events",
            json!({}),
            "cloudtrail:LookupEvents",
        ),
    ] {
        let error = s.query(&credentials, operation, params).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
        assert!(error.message().starts_with("Access denied"), "{error}");
        assert!(error.message().contains(action), "{error}");
    }
    s.front.deny(&s.account, "logs:FilterLogEvents");
    let error = s
        .query(
            &credentials,
            "filter_log_events",
            json!({"log_group_name": "/x"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(error.message().contains("logs:FilterLogEvents"), "{error}");
}

#[tokio::test]
async fn aws_errors_map_to_patchbay_kinds_without_session_secrets_needs_moto() {
    let s = setup().await;
    let credentials = s.connected().await;
    let cases = [
        (
            "logs:FilterLogEvents",
            "filter_log_events",
            400,
            "ThrottlingException",
            ErrorKind::RateLimited,
        ),
        (
            "cloudwatch:DescribeAlarms",
            "list_alarms",
            500,
            "InternalFailure",
            ErrorKind::Unavailable,
        ),
        (
            "eks:ListClusters",
            "list_eks_clusters",
            403,
            "ExpiredTokenException",
            ErrorKind::AuthFailed,
        ),
        (
            "ec2:DescribeInstances",
            "list_instances",
            400,
            "InvalidParameterValue",
            ErrorKind::InvalidInput,
        ),
        (
            "logs:FilterLogEvents",
            "filter_log_events",
            400,
            "ResourceNotFoundException",
            ErrorKind::NotFound,
        ),
    ];
    for (action, operation, status, code, kind) in cases {
        s.front.fail_next(action, status, code);
        let params = if operation == "filter_log_events" {
            json!({"log_group_name": "/x"})
        } else {
            json!({})
        };
        let error = s.query(&credentials, operation, params).await.unwrap_err();
        assert_eq!(error.kind(), kind, "{code}: {error}");
        assert!(error.message().contains(code), "{error}");
        assert!(
            error.message().contains(&format!("injected {code}")),
            "{error}"
        );
        assert_eq!(error.provider_status(), Some(status));
        if kind == ErrorKind::RateLimited {
            assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
        }
        let text = format!("{error:?} {}", error.hint().unwrap_or_default());
        assert!(!text.contains(PLATFORM_SECRET) && !text.contains(s.external_id.expose()));
    }
    // A 503 is retried by the HTTP client: one injected failure, then success.
    let before = s.front.requests_for("eks:ListClusters").len();
    s.front
        .fail_next("eks:ListClusters", 503, "ServiceUnavailableException");
    s.query(&credentials, "list_eks_clusters", json!({}))
        .await
        .unwrap();
    assert_eq!(s.front.requests_for("eks:ListClusters").len(), before + 2);
}

#[tokio::test]
async fn every_operation_reads_the_seeded_account_and_pages_needs_moto() {
    let s = setup().await;
    let credentials = s.connected().await;
    let seeded = s.front.seed(&s.connector, &s.role, &s.external_id).await;

    let alarms = s
        .query(&credentials, "list_alarms", json!({}))
        .await
        .unwrap();
    assert_eq!(alarms.data["alarms"][0]["name"], seeded.alarm);
    assert_eq!(alarms.data["alarms"][0]["state"], "ALARM");

    let metrics = s
        .query(
            &credentials,
            "get_metric_data",
            json!({"queries": [{"id": "latency", "namespace": "Patchbay/Test", "metric_name": "Latency", "period": 60}]}),
        )
        .await
        .unwrap();
    assert_eq!(metrics.data["series"][0]["id"], "latency");
    assert_eq!(metrics.data["series"][0]["points"][0][1], 42.0);

    let first = s
        .query(
            &credentials,
            "list_instances",
            json!({"limit": 5, "filters": {"instance-state-name": ["running", "pending"]}}),
        )
        .await
        .unwrap();
    // moto answers every instance whatever MaxResults says: the connector keeps
    // the page to `limit` and says it cut it.
    assert_eq!(first.data["instances"].as_array().unwrap().len(), 5);
    assert!(first.truncated);
    let all = s
        .query(&credentials, "list_instances", json!({"limit": 1000}))
        .await
        .unwrap();
    assert_eq!(
        all.data["instances"].as_array().unwrap().len(),
        SEEDED_INSTANCES
    );
    assert!(!all.truncated);
    assert!(all.data["instances"][0]["instance_id"]
        .as_str()
        .unwrap()
        .starts_with("i-"));

    let clusters = s
        .query(&credentials, "list_eks_clusters", json!({"limit": 1}))
        .await
        .unwrap();
    assert_eq!(clusters.data["clusters"].as_array().unwrap().len(), 1);
    let cursor = clusters
        .next_cursor
        .clone()
        .expect("a second page of clusters");
    let rest = s
        .query(
            &credentials,
            "list_eks_clusters",
            json!({"limit": 1, "cursor": cursor}),
        )
        .await
        .unwrap();
    let mut names = vec![
        clusters.data["clusters"][0].clone(),
        rest.data["clusters"][0].clone(),
    ];
    names.sort_by_key(|name| name.to_string());
    assert_eq!(names, vec![json!("prod-eu"), json!("staging")]);

    let logs = s
        .query(
            &credentials,
            "filter_log_events",
            json!({"log_group_name": seeded.log_group, "filter_pattern": "ERROR"}),
        )
        .await
        .unwrap();
    assert_eq!(logs.data["events"].as_array().unwrap().len(), 3);
    assert!(logs.data["events"][0]["message"]
        .as_str()
        .unwrap()
        .contains("ERROR"));

    let insights = s
        .query(
            &credentials,
            "query_logs_insights",
            json!({"query": "fields @timestamp, @message | limit 2", "log_group_names": [seeded.log_group]}),
        )
        .await
        .unwrap();
    assert_eq!(insights.data["status"], "Complete");
    assert!(!insights.truncated);

    let trail = s
        .query(
            &credentials,
            "lookup_cloudtrail_events",
            json!({"attribute_key": "EventName", "attribute_value": "TerminateInstances"}),
        )
        .await
        .unwrap();
    assert_eq!(trail.data["events"].as_array().unwrap().len(), 1);
    assert_eq!(trail.data["events"][0]["username"], "deploy-bot");
    assert_eq!(trail.data["events"][0]["source_ip"], "203.0.113.7");
    let page = s
        .query(
            &credentials,
            "lookup_cloudtrail_events",
            json!({"limit": 2}),
        )
        .await
        .unwrap();
    assert_eq!(page.data["events"].as_array().unwrap().len(), 2);
    assert!(page.next_cursor.is_some());
}

#[tokio::test]
async fn caps_and_ranges_are_enforced_needs_moto() {
    let s = setup().await;
    let credentials = s.connected().await;
    let error = s
        .query(&credentials, "list_instances", json!({"limit": 2}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("limit"));
    let error = s
        .query(
            &credentials,
            "filter_log_events",
            json!({"log_group_name": "/x", "from": "now-30d"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(error.message().contains("14 days"), "{error}");
    let error = s
        .query(&credentials, "list_alarms", json!({"region": "moon-1"}))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("region"));
    let error = s
        .query(
            &credentials,
            "lookup_cloudtrail_events",
            json!({"attribute_key": "EventName"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("attribute_value"));
    let error = s
        .query(&credentials, "get_metric_data", json!({"queries": []}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn a_logs_insights_query_still_running_at_the_deadline_is_stopped_needs_moto() {
    let s = setup().await;
    let credentials = s.connected().await;
    let seeded = s.front.seed(&s.connector, &s.role, &s.external_id).await;
    s.front.hold_insights_queries();
    let output = s
        .query(
            &credentials,
            "query_logs_insights",
            json!({"query": "fields @message", "log_group_names": [seeded.log_group], "wait_seconds": 1}),
        )
        .await
        .unwrap();
    assert_eq!(output.data["status"], "Stopped");
    assert!(output.truncated);
    let id = output.data["query_id"].as_str().unwrap();
    assert_eq!(s.front.stopped_queries(), vec![id.to_owned()]);
}

#[tokio::test]
async fn sessions_are_cached_until_shortly_before_expiry_and_refreshed_single_flight_needs_moto() {
    let front = AwsFront::start(&patchbay_testkit::services::moto_url()).await;
    let now = Arc::new(Mutex::new(SystemTime::now()));
    let clock = now.clone();
    let connector = front
        .connector(PLATFORM_SECRET, EXTERNAL_ID_KEY)
        .with_clock(Arc::new(move || *clock.lock().unwrap()));
    let s = setup_with(front, connector).await;
    let credentials = s.connected().await;
    // Sessions last ten minutes, so the refresh margin is reached without waiting.
    s.front.set_session_lifetime(Some(Duration::from_secs(600)));
    let assumes = |s: &Setup| {
        s.front
            .assume_calls()
            .iter()
            .filter(|call| call.with_external_id && call.allowed)
            .count()
    };
    let before = assumes(&s);

    // Eight concurrent queries on a cold cache assume the role once.
    let queries = (0..8).map(|_| s.query(&credentials, "list_eks_clusters", json!({})));
    for result in futures::future::join_all(queries).await {
        result.unwrap();
    }
    assert_eq!(assumes(&s), before + 1, "{:?}", s.front.assume_calls());
    s.query(&credentials, "list_eks_clusters", json!({}))
        .await
        .unwrap();
    assert_eq!(assumes(&s), before + 1, "a fresh session is reused");

    // Just before the refresh margin the session is still used...
    let lifetime = Duration::from_secs(600);
    *now.lock().unwrap() += lifetime - REFRESH_MARGIN - Duration::from_secs(60);
    s.query(&credentials, "list_eks_clusters", json!({}))
        .await
        .unwrap();
    assert_eq!(assumes(&s), before + 1);
    // ...inside it, it is assumed again, once, before it expires (the new
    // session lasts an hour).
    s.front.set_session_lifetime(None);
    *now.lock().unwrap() += Duration::from_secs(120);
    let queries = (0..4).map(|_| s.query(&credentials, "list_eks_clusters", json!({})));
    for result in futures::future::join_all(queries).await {
        result.unwrap();
    }
    assert_eq!(assumes(&s), before + 2);
}

#[tokio::test]
async fn a_service_endpoint_variable_overrides_the_global_one_needs_moto() {
    let front = AwsFront::start(&patchbay_testkit::services::moto_url()).await;
    let mut env = front.env(PLATFORM_SECRET, EXTERNAL_ID_KEY);
    // Nothing listens on port 9 of loopback: EC2 calls fail, the others reach the front.
    env.set("AWS_ENDPOINT_URL_EC2", "http://127.0.0.1:9");
    let connector = AwsConnector::new(env, patchbay_connector_aws::fake::fast_http());
    let s = setup_with(front, connector).await;
    s.front.trust_role(&s.role, s.external_id.expose());
    let (report, credentials) = s.validate(json!({"role_arn": s.role})).await;
    assert_eq!(check(&report, "assume_role").outcome, CheckOutcome::Ok);
    assert_eq!(
        check(&report, "permission:ec2").outcome,
        CheckOutcome::Error
    );
    let error = s
        .query(&credentials, "list_instances", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    s.query(&credentials, "list_eks_clusters", json!({}))
        .await
        .unwrap();
    assert!(s.front.requests_for("ec2:DescribeInstances").is_empty());
}

#[tokio::test]
async fn a_role_that_stops_trusting_patchbay_asks_for_reconnection_needs_moto() {
    let s = setup().await;
    let mut credentials = s.connected().await;
    // Another ExternalId stored than the role trusts (as after a trust policy change).
    credentials.secrets.external_id = Some(SecretString::new("patchbay-stale".to_owned()));
    let error = s
        .query(&credentials, "list_alarms", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth);
    assert!(error
        .message()
        .starts_with("Role assumption failed -- the IAM role may have been deleted"));
}

#[test]
fn the_set_up_page_shows_the_messages_the_code_produces() {
    let page = include_str!("../../../docs/connectors/aws.md");
    for message in [
        CANNOT_ASSUME,
        NO_PLATFORM_ACCOUNT,
        patchbay_connector_aws::client::ACCESS_DENIED,
        "Invalid role ARN format",
        "Invalid readOnlyRoleArn format",
        "role_arn is required",
        "does not require ExternalId in its trust policy",
        "could not prove that the role requires the ExternalId",
        "PATCHBAY_AWS_EXTERNAL_ID_KEY is not set, so Patchbay cannot give ExternalIds",
        "Role assumption failed -- the IAM role may have been deleted or the trust policy changed",
    ] {
        assert!(page.contains(message), "the set-up page lacks {message:?}");
    }
    let source = [
        include_str!("../src/lib.rs"),
        include_str!("../src/auth.rs"),
        include_str!("../src/client.rs"),
    ]
    .concat();
    for message in [
        "Invalid role ARN format",
        "Invalid readOnlyRoleArn format",
        "role_arn is required",
        "does not require ExternalId in its trust policy",
        "could not prove that the role requires the ExternalId",
        "is not set, so Patchbay cannot give ExternalIds",
        "Role assumption failed -- the IAM role may have been deleted or the trust policy changed",
        "Verify trust policy has correct Patchbay Account ID and External ID",
    ] {
        assert!(
            source.contains(message),
            "the code no longer says {message:?}"
        );
    }
    for variable in patchbay_connector_aws::DESCRIPTOR.env_vars {
        assert!(
            page.contains(variable.name),
            "the set-up page lacks {}",
            variable.name
        );
    }
}

#[tokio::test]
async fn without_the_external_id_key_the_external_id_line_fails_and_no_role_is_assumed_needs_moto()
{
    let front = AwsFront::start(&patchbay_testkit::services::moto_url()).await;
    let connector = front.connector(PLATFORM_SECRET, "");
    let mut credentials = connector
        .authenticate(form(json!({"role_arn": fresh_role("PatchbayRole")})))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert!(!report.passed(), "{report:?}");
    assert_eq!(
        check(&report, "platform_identity").outcome,
        CheckOutcome::Ok
    );
    let line = check(&report, "external_id");
    assert!(line.mandatory);
    assert_eq!(line.outcome, CheckOutcome::Error, "{line:?}");
    assert!(
        line.detail.starts_with(
            "PATCHBAY_AWS_EXTERNAL_ID_KEY is not set, so Patchbay cannot give ExternalIds"
        ),
        "{}",
        line.detail
    );
    for id in ["assume_role", "external_id_enforced", "assumed_identity"] {
        assert_eq!(check(&report, id).outcome, CheckOutcome::Skipped, "{id}");
    }
    assert_eq!(
        check(&report, "permission:ec2").outcome,
        CheckOutcome::Skipped
    );
    assert!(front.assume_calls().is_empty(), "no role is assumed");
    let error = connector.onboarding(&ctx()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error
        .hint()
        .unwrap()
        .contains("PATCHBAY_AWS_EXTERNAL_ID_KEY"));
}

#[tokio::test]
async fn a_read_only_role_assumable_without_the_external_id_is_refused_needs_moto() {
    let s = setup().await;
    let read_only = s.role.replace("PatchbayRole", "PatchbayReadOnly");
    s.front.trust_role(&s.role, s.external_id.expose());
    s.front.trust_role_without_external_id(&read_only);
    let (report, credentials) = s
        .validate(json!({"role_arn": s.role, "read_only_role_arn": read_only}))
        .await;
    assert!(!report.passed(), "{report:?}");
    assert_eq!(
        check(&report, "read_only_assume_role").outcome,
        CheckOutcome::Ok
    );
    let enforced = check(&report, "read_only_external_id_enforced");
    assert!(enforced.mandatory);
    assert_eq!(enforced.outcome, CheckOutcome::Failed, "{enforced:?}");
    assert!(
        enforced.detail.contains(&read_only)
            && enforced
                .detail
                .contains("does not require ExternalId in its trust policy"),
        "{}",
        enforced.detail
    );
    assert_eq!(
        check(&report, "assumed_identity").outcome,
        CheckOutcome::Skipped
    );
    assert!(credentials.secrets.external_id.is_none());
}

#[tokio::test]
async fn an_assumed_role_that_may_not_say_who_it_is_fails_the_identity_line_needs_moto() {
    let s = setup().await;
    s.front.trust_role(&s.role, s.external_id.expose());
    s.front.deny(&s.account, "sts:GetCallerIdentity");
    let (report, credentials) = s.validate(json!({"role_arn": s.role})).await;
    assert!(!report.passed(), "{report:?}");
    assert_eq!(
        check(&report, "external_id_enforced").outcome,
        CheckOutcome::Ok
    );
    let identity = check(&report, "assumed_identity");
    assert!(identity.mandatory);
    assert_eq!(identity.outcome, CheckOutcome::Failed, "{identity:?}");
    assert!(
        identity.detail.starts_with("Access denied")
            && identity.detail.contains("sts:GetCallerIdentity"),
        "{}",
        identity.detail
    );
    for id in ["permission:cloudwatch", "permission:eks"] {
        assert_eq!(check(&report, id).outcome, CheckOutcome::Skipped, "{id}");
    }
    assert!(credentials.secrets.external_id.is_none());
}
