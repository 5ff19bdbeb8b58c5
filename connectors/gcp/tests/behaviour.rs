//! Behaviour users rely on, against the fake Google: every validation line's
//! failure, service-account key checks, project selection, paging and caps of every
//! operation, and the mapping of Google's errors.

use std::sync::OnceLock;
use std::time::Duration;

use patchbay_connector_gcp::client::enable_api_url;
use patchbay_connector_gcp::fake::{
    FakeGcp, Fault, ProviderFake, TestServiceAccount, ALERT_POLICY_COUNT, ASSET_COUNT,
    CLUSTER_CLIENT_KEY, CLUSTER_COUNT, INSTANCE_COUNT, LOG_ENTRY_COUNT, POINTS_PER_SERIES,
    SERIES_COUNT, USER_EMAIL,
};
use patchbay_connector_gcp::{messages, GcpConnector};
use patchbay_core::{
    AuthRequest, CheckOutcome, ConnectorContext, DynConnector, DynCredentials, ErrorKind,
    FormFields, QueryOutput, ValidationCheck, ValidationReport,
};
use serde_json::{json, Value};

const TOKEN: &str = "canary-behaviour-gcp-3f9a0c";
const SA_EMAIL: &str = "reader@acme-prod.iam.gserviceaccount.com";
const CPU: &str = "metric.type=\"compute.googleapis.com/instance/cpu/utilization\"";

/// The guide APIs: check id prefix, service, the permission its probe needs, its title.
const APIS: &[(&str, &str, &str, &str)] = &[
    (
        "resource_manager",
        "cloudresourcemanager.googleapis.com",
        "resourcemanager.projects.get",
        "Cloud Resource Manager API",
    ),
    (
        "compute",
        "compute.googleapis.com",
        "compute.zones.list",
        "Compute Engine API",
    ),
    (
        "logging",
        "logging.googleapis.com",
        "logging.logEntries.list",
        "Cloud Logging API",
    ),
    (
        "monitoring",
        "monitoring.googleapis.com",
        "monitoring.metricDescriptors.list",
        "Cloud Monitoring API",
    ),
];

/// One key for the whole test binary: generating RSA keys takes a moment.
fn service_account() -> &'static TestServiceAccount {
    static KEY: OnceLock<TestServiceAccount> = OnceLock::new();
    KEY.get_or_init(|| TestServiceAccount::generate(SA_EMAIL, "acme-prod"))
}

fn other_key() -> &'static TestServiceAccount {
    static KEY: OnceLock<TestServiceAccount> = OnceLock::new();
    KEY.get_or_init(|| TestServiceAccount::generate(SA_EMAIL, "acme-prod"))
}

fn ctx() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some("behaviour-connection".to_owned()),
        tenant: None,
    }
}

fn form(value: Value) -> AuthRequest {
    AuthRequest::Form(FormFields(value.as_object().cloned().unwrap_or_default()))
}

async fn oauth(fake: &FakeGcp, options: Value) -> (GcpConnector, DynCredentials) {
    let connector = fake.connector();
    let credentials = connector
        .authenticate(AuthRequest::OAuth(fake.grant(options)))
        .await
        .unwrap();
    (connector, credentials)
}

async fn validated(
    fake: &FakeGcp,
    options: Value,
) -> (GcpConnector, DynCredentials, ValidationReport) {
    let (connector, mut credentials) = oauth(fake, options).await;
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    (connector, credentials, report)
}

fn check<'r>(report: &'r ValidationReport, id: &str) -> &'r ValidationCheck {
    report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {:?}", report.check_ids()))
}

async fn query(
    connector: &GcpConnector,
    credentials: &DynCredentials,
    operation: &str,
    params: Value,
) -> patchbay_core::Result<QueryOutput> {
    connector
        .query(&ctx(), credentials, operation, params)
        .await
}

/// Every item of a paged operation: follows `next_cursor` until it ends.
async fn all_pages(
    connector: &GcpConnector,
    credentials: &DynCredentials,
    operation: &str,
    params: Value,
    key: &str,
) -> (Vec<Value>, usize) {
    let mut items = Vec::new();
    let mut pages = 0;
    let mut cursor: Option<String> = None;
    loop {
        let mut params = params.clone();
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let output = query(connector, credentials, operation, params)
            .await
            .unwrap();
        pages += 1;
        items.extend(output.data[key].as_array().unwrap().iter().cloned());
        match output.next_cursor {
            Some(next) => cursor = Some(next),
            None => return (items, pages),
        }
        assert!(pages < 20, "{operation} pages forever");
    }
}

#[tokio::test]
async fn oauth_validation_has_one_line_per_guide_api_per_project() {
    let fake = FakeGcp::start(TOKEN).await;
    let (_, credentials, report) = validated(&fake, json!({})).await;
    assert!(report.passed(), "{report:?}");
    let mut expected = vec![
        "token".to_owned(),
        "identity".to_owned(),
        "projects".to_owned(),
    ];
    for project in ["acme-prod", "acme-staging"] {
        for (api, ..) in APIS {
            expected.push(format!("{api}:{project}"));
        }
    }
    assert_eq!(report.check_ids(), expected);
    assert!(
        report
            .checks
            .iter()
            .all(|check| check.outcome == CheckOutcome::Ok),
        "{report:?}"
    );
    assert_eq!(credentials.config["email"], USER_EMAIL);
    assert_eq!(
        credentials.config["projects"],
        json!(["acme-prod", "acme-staging"])
    );
    assert_eq!(
        credentials.config["accessible_projects"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(credentials.config["auth_type"], "oauth");

    let zones = fake.requests_to("/compute/v1/projects/acme-prod/zones");
    assert_eq!(zones[0].query_value("maxResults"), Some("1"));
    let descriptors = fake.requests_to("/v3/projects/acme-prod/metricDescriptors");
    assert_eq!(descriptors[0].query_value("pageSize"), Some("1"));
    let entries = fake.requests_to("/v2/entries:list");
    assert_eq!(
        entries[0].json_body,
        Some(json!({"resourceNames": ["projects/acme-prod"], "pageSize": 1}))
    );
    assert!(fake.requests_to("/v3/projects/acme-staging").len() == 1);
    assert!(fake
        .requests()
        .iter()
        .filter(|request| request.path != "/token")
        .all(|request| request.has_header("authorization")));
}

#[tokio::test]
async fn a_disabled_api_fails_its_line_with_api_not_enabled_and_the_console_link() {
    for (api, service, _, title) in APIS {
        let fake = FakeGcp::start(TOKEN).await;
        fake.disable_api("acme-staging", service);
        let (_, _, report) = validated(&fake, json!({})).await;
        let line = check(&report, &format!("{api}:acme-staging"));
        assert_eq!(line.outcome, CheckOutcome::Failed, "{line:?}");
        assert_eq!(line.provider_status, Some(403));
        assert!(
            line.detail.starts_with(&format!(
                "API not enabled: {title} ({service}) is not enabled in project acme-staging"
            )),
            "{line:?}"
        );
        assert!(
            line.detail
                .contains(&enable_api_url(service, "acme-staging")),
            "{line:?}"
        );
        assert!(!line.mandatory);
        assert!(
            report.passed(),
            "an API line degrades, it does not block: {report:?}"
        );
        assert_eq!(
            check(&report, &format!("{api}:acme-prod")).outcome,
            CheckOutcome::Ok
        );
        let failed = report
            .checks
            .iter()
            .filter(|c| c.outcome != CheckOutcome::Ok)
            .count();
        assert_eq!(failed, 1, "{report:?}");
    }
}

#[tokio::test]
async fn a_missing_permission_fails_its_line_naming_the_permission() {
    for (api, _, permission, _) in APIS {
        let fake = FakeGcp::start(TOKEN).await;
        fake.deny_permission("acme-prod", permission);
        let (_, _, report) = validated(&fake, json!({})).await;
        let line = check(&report, &format!("{api}:acme-prod"));
        assert_eq!(line.outcome, CheckOutcome::Failed, "{line:?}");
        assert!(
            line.detail.starts_with(&format!(
                "Permission denied: the credentials lack `{permission}` on project acme-prod"
            )),
            "{line:?}"
        );
        assert!(line.detail.contains("roles/viewer"), "{line:?}");
    }
}

#[tokio::test]
async fn a_denial_that_names_no_permission_names_the_one_the_probe_needs() {
    let fake = FakeGcp::start(TOKEN).await;
    fake.deny_quietly("acme-prod", "logging.logEntries.list");
    let (connector, credentials, report) = validated(&fake, json!({})).await;
    let line = check(&report, "logging:acme-prod");
    assert_eq!(line.outcome, CheckOutcome::Failed, "{line:?}");
    assert!(
        line.detail.starts_with(
            "Permission denied: the credentials lack `logging.logEntries.list` on project acme-prod (The caller does not have permission)"
        ),
        "{line:?}"
    );
    let error = query(
        &connector,
        &credentials,
        "query_logs",
        json!({"project": "acme-prod"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(
        error.message().contains("`logging.logEntries.list`"),
        "{error}"
    );
}

#[tokio::test]
async fn the_token_line_needs_a_refresh_token_or_a_key_google_accepts() {
    let fake = FakeGcp::start(TOKEN).await;
    let connector = fake.connector();
    let mut grant = fake.grant(json!({}));
    grant.refresh_token = None;
    let error = connector
        .authenticate(AuthRequest::OAuth(grant))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert_eq!(error.message(), messages::NO_REFRESH_TOKEN);
    assert!(error.hint().unwrap().contains("prompt=consent"));

    // A key Google does not know: the token line fails and the rest is skipped.
    let key = service_account();
    let mut credentials = connector
        .authenticate(form(json!({"service_account_json": key.json})))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert!(!report.passed());
    let token = check(&report, "token");
    assert_eq!(token.outcome, CheckOutcome::Failed, "{token:?}");
    assert!(token.detail.starts_with(messages::REJECTED), "{token:?}");
    assert!(token.detail.contains("account not found"), "{token:?}");
    assert_eq!(check(&report, "projects").outcome, CheckOutcome::Skipped);
    assert!(check(&report, "projects").mandatory);
    assert!(!check(&report, "identity").mandatory);
    let exchange = fake.requests_to("/token");
    assert_eq!(
        exchange[0].grant_type.as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(exchange[0].body_fields, ["assertion", "grant_type"]);

    // The same email with another key: the RS256 signature does not verify.
    fake.register_service_account(other_key());
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    let token = check(&report, "token");
    assert_eq!(token.outcome, CheckOutcome::Failed, "{token:?}");
    assert!(token.detail.contains("Invalid JWT Signature"), "{token:?}");

    // The right key passes; deleting it at Google fails the next validation.
    fake.register_service_account(key);
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert!(report.passed(), "{report:?}");
    assert_eq!(credentials.config["auth_type"], "service_account");
    assert_eq!(credentials.config["email"], SA_EMAIL);
    assert_eq!(
        check(&report, "identity").detail,
        format!("service account `{SA_EMAIL}`")
    );
    fake.delete_service_account_key(SA_EMAIL);
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(check(&report, "token").outcome, CheckOutcome::Failed);
    let text = serde_json::to_string(&report).unwrap();
    assert!(!text.contains(&key.private_key_canary()));
}

/// Stored OAuth credentials with `remove` taken out of their secrets (a connection
/// whose tokens were lost or never came).
async fn oauth_credentials_without(
    connector: &GcpConnector,
    fake: &FakeGcp,
    remove: &[&str],
) -> patchbay_core::DynCredentials {
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(fake.grant(json!({}))))
        .await
        .unwrap();
    let mut secrets = credentials.secrets.expose().clone();
    for name in remove {
        secrets.as_object_mut().unwrap().remove(*name);
    }
    credentials.secrets = patchbay_core::RevealedJson::new(secrets);
    credentials
}

#[tokio::test]
async fn an_oauth_connection_without_its_tokens_fails_the_token_line_asking_to_reconnect() {
    let fake = FakeGcp::start(TOKEN).await;
    let connector = fake.connector();
    let mut credentials = oauth_credentials_without(&connector, &fake, &["refresh_token"]).await;
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    let token = check(&report, "token");
    assert_eq!(token.outcome, CheckOutcome::Failed, "{token:?}");
    assert!(
        token.detail.starts_with(messages::NO_REFRESH_TOKEN),
        "{token:?}"
    );
    assert!(!report.passed());

    let mut credentials =
        oauth_credentials_without(&connector, &fake, &["access_token", "refresh_token"]).await;
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    let token = check(&report, "token");
    assert_ne!(token.outcome, CheckOutcome::Ok, "{token:?}");
    assert!(
        token.detail.starts_with(messages::NO_CREDENTIALS),
        "{token:?}"
    );
    assert_eq!(
        messages::NO_CREDENTIALS,
        "No GCP credentials found. Please authenticate with GCP."
    );
    assert!(!report.passed());
    assert!(
        fake.requests_to("/token").is_empty(),
        "nothing is sent without credentials"
    );
}

#[tokio::test]
async fn the_identity_line_is_informational() {
    let fake = FakeGcp::start(TOKEN).await;
    for _ in 0..3 {
        fake.inject("/oauth2/v2/userinfo", Fault::ServerError);
    }
    let (_, credentials, report) = validated(&fake, json!({})).await;
    let identity = check(&report, "identity");
    assert_eq!(identity.outcome, CheckOutcome::Error, "{identity:?}");
    assert!(!identity.mandatory);
    assert!(report.passed(), "{report:?}");
    assert!(credentials.config.get("email").is_none());
}

#[tokio::test]
async fn the_projects_line_fails_without_projects_or_with_a_refused_token() {
    let fake = FakeGcp::start(TOKEN).await;
    fake.set_projects(&[]);
    let (_, _, report) = validated(&fake, json!({})).await;
    let projects = check(&report, "projects");
    assert_eq!(projects.outcome, CheckOutcome::Failed);
    assert!(
        projects.detail.starts_with(messages::USER_NO_PROJECTS),
        "{projects:?}"
    );
    assert!(!report.passed());

    fake.register_service_account(service_account());
    let connector = fake.connector();
    let mut credentials = connector
        .authenticate(form(
            json!({"service_account_json": service_account().json}),
        ))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    let projects = check(&report, "projects");
    assert_eq!(projects.outcome, CheckOutcome::Failed);
    assert!(
        projects.detail.starts_with(messages::SA_NO_PROJECTS),
        "{projects:?}"
    );

    let fake = FakeGcp::start(TOKEN).await;
    let (connector, mut credentials) = oauth(&fake, json!({})).await;
    fake.expire_access_tokens();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    let projects = check(&report, "projects");
    assert_eq!(projects.outcome, CheckOutcome::Failed);
    assert_eq!(projects.provider_status, Some(401));
    assert!(
        projects
            .detail
            .starts_with("Google rejected the access token"),
        "{projects:?}"
    );
}

#[tokio::test]
async fn projects_are_picked_by_the_user_and_never_guessed_among_many() {
    let fake = FakeGcp::start(TOKEN).await;
    let (_, credentials, report) = validated(&fake, json!({"projects": "acme-staging"})).await;
    assert!(report.passed());
    assert_eq!(credentials.config["projects"], json!(["acme-staging"]));
    assert!(report
        .check_ids()
        .iter()
        .all(|id| !id.ends_with(":acme-prod")));

    let (connector, mut credentials) = oauth(&fake, json!({"projects": ["acme-other"]})).await;
    let error = connector
        .validate(&ctx(), &mut credentials)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("projects"));
    assert!(
        error.message().contains("`acme-other` is not accessible"),
        "{error}"
    );
    assert!(error.message().contains("acme-prod (acme prod)"), "{error}");

    let many = [
        "acme-a-0001",
        "acme-a-0002",
        "acme-a-0003",
        "acme-a-0004",
        "acme-a-0005",
        "acme-a-0006",
    ];
    fake.set_projects(&many);
    let (connector, mut credentials) = oauth(&fake, json!({})).await;
    let error = connector
        .validate(&ctx(), &mut credentials)
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("projects"));
    assert!(error.message().contains("reach 6 projects"), "{error}");
    assert!(error.hint().unwrap().contains("\"projects\""), "{error:?}");
    let error = connector
        .authenticate(AuthRequest::OAuth(
            fake.grant(json!({"projects": ["Not A Project"]})),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("projects"));

    // Operations take a `project` among the selected ones.
    let (connector, mut credentials) =
        oauth(&fake, json!({"projects": ["acme-a-0001", "acme-a-0002"]})).await;
    assert!(connector
        .validate(&ctx(), &mut credentials)
        .await
        .unwrap()
        .passed());
    let error = query(
        &connector,
        &credentials,
        "list_instances",
        json!({"project": "acme-a-0003"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("project"));
    assert!(
        error
            .message()
            .contains("use one of: acme-a-0001, acme-a-0002"),
        "{error}"
    );
    let error = query(&connector, &credentials, "list_instances", json!({}))
        .await
        .unwrap_err();
    assert!(
        error.message().starts_with("`project` is required"),
        "{error}"
    );
    let listed = query(&connector, &credentials, "list_projects", json!({}))
        .await
        .unwrap();
    let selected: Vec<bool> = listed.data["projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["selected"].as_bool().unwrap())
        .collect();
    assert_eq!(selected, [true, true, false, false, false, false]);

    let (connector, credentials, _) = validated(&fake, json!({"projects": "acme-a-0004"})).await;
    let output = query(&connector, &credentials, "list_gke_clusters", json!({}))
        .await
        .unwrap();
    assert_eq!(
        output.data["project"], "acme-a-0004",
        "the only project is the default"
    );
}

#[tokio::test]
async fn service_account_keys_are_checked_with_the_reference_messages() {
    let fake = FakeGcp::start(TOKEN).await;
    let connector = fake.connector();
    let key = service_account();
    let refused = |json_text: String| {
        let connector = connector.clone();
        async move {
            connector
                .authenticate(form(json!({"service_account_json": json_text})))
                .await
                .unwrap_err()
        }
    };
    let error = connector.authenticate(form(json!({}))).await.unwrap_err();
    assert_eq!(error.message(), messages::KEY_MISSING);
    assert_eq!(error.field(), Some("service_account_json"));
    let error = refused("{not json".to_owned()).await;
    assert!(
        error
            .message()
            .starts_with("Uploaded file is not valid JSON: "),
        "{error}"
    );
    let error = refused(key.json_with("type", json!("authorized_user"))).await;
    assert_eq!(error.message(), messages::WRONG_TYPE);
    for field in ["project_id", "private_key", "client_email", "token_uri"] {
        let error = refused(key.json_with(field, Value::Null)).await;
        assert_eq!(
            error.message(),
            format!("Missing required field '{field}' in service account JSON")
        );
        assert_eq!(error.field(), Some("service_account_json"));
    }
    let broken = key
        .private_key_pem
        .replacen(&key.private_key_canary(), "AAAA", 1);
    let error = refused(key.json_with("private_key", json!(broken))).await;
    assert_eq!(error.message(), messages::MALFORMED);
    let error = refused(key.json_with("token_uri", json!("https://10.0.0.1/token"))).await;
    assert_eq!(error.field(), Some("token_uri"));
    assert!(
        error.message().contains("10.0.0.1 is a private address"),
        "{error}"
    );
    let error = refused(key.json_with("token_uri", json!("file:///etc/passwd"))).await;
    assert_eq!(error.field(), Some("token_uri"));
    let error = connector
        .authenticate(form(
            json!({"service_account_json": key.json, "projects": 7}),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("projects"));

    // Without the operator's allowlist the key's token_uri cannot reach the loopback fake.
    fake.register_service_account(key);
    let strict = fake.connector_without_allowlist();
    let mut credentials = strict
        .authenticate(form(json!({"service_account_json": key.json})))
        .await
        .unwrap();
    let report = strict.validate(&ctx(), &mut credentials).await.unwrap();
    let token = check(&report, "token");
    assert_ne!(token.outcome, CheckOutcome::Ok, "{token:?}");
    assert!(
        token.detail.starts_with(messages::REFRESH_FAILED),
        "{token:?}"
    );
    assert!(token.detail.contains("127.0.0.1"), "{token:?}");
    assert!(fake.requests_to("/token").is_empty(), "nothing was sent");
}

#[tokio::test]
async fn service_account_queries_reuse_a_minted_token_and_mint_again_when_refused() {
    let fake = FakeGcp::start(TOKEN).await;
    fake.register_service_account(service_account());
    let connector = fake.connector();
    let mut credentials = connector
        .authenticate(form(
            json!({"service_account_json": service_account().json, "projects": "acme-prod"}),
        ))
        .await
        .unwrap();
    assert!(connector
        .validate(&ctx(), &mut credentials)
        .await
        .unwrap()
        .passed());
    assert_eq!(fake.requests_to("/token").len(), 1);
    query(&connector, &credentials, "list_instances", json!({}))
        .await
        .unwrap();
    query(&connector, &credentials, "list_alert_policies", json!({}))
        .await
        .unwrap();
    assert_eq!(
        fake.requests_to("/token").len(),
        1,
        "the minted token is reused"
    );
    fake.expire_access_tokens();
    let output = query(&connector, &credentials, "list_instances", json!({}))
        .await
        .unwrap();
    assert_eq!(
        output.data["instances"].as_array().unwrap().len(),
        INSTANCE_COUNT
    );
    assert_eq!(
        fake.requests_to("/token").len(),
        2,
        "a refused token is minted again once"
    );
    fake.delete_service_account_key(SA_EMAIL);
    fake.expire_access_tokens();
    let error = query(&connector, &credentials, "list_instances", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert_eq!(error.message(), messages::REJECTED);
}

#[tokio::test]
async fn paged_operations_follow_next_page_token_to_the_end() {
    let fake = FakeGcp::start(TOKEN).await;
    let (connector, credentials, _) = validated(&fake, json!({"projects": ["acme-prod"]})).await;
    let cases = [
        ("list_projects", json!({"limit": 1}), "projects", 2, 2),
        (
            "query_logs",
            json!({"limit": 10}),
            "entries",
            LOG_ENTRY_COUNT,
            3,
        ),
        (
            "query_metrics",
            json!({"filter": CPU, "limit": 2}),
            "time_series",
            SERIES_COUNT,
            3,
        ),
        (
            "list_instances",
            json!({"limit": 5}),
            "instances",
            INSTANCE_COUNT,
            2,
        ),
        (
            "list_alert_policies",
            json!({"limit": 2}),
            "alert_policies",
            ALERT_POLICY_COUNT,
            2,
        ),
        (
            "search_assets",
            json!({"limit": 5}),
            "results",
            ASSET_COUNT,
            3,
        ),
    ];
    for (operation, params, key, count, pages) in cases {
        let (items, seen) = all_pages(&connector, &credentials, operation, params, key).await;
        assert_eq!(items.len(), count, "{operation}");
        assert_eq!(seen, pages, "{operation}");
    }
    let instances = fake.requests_to("/compute/v1/projects/acme-prod/aggregated/instances");
    let tokens: Vec<Option<&str>> = instances
        .iter()
        .map(|r| r.query_value("pageToken"))
        .collect();
    assert_eq!(tokens, [None, Some("page-5")]);
    assert_eq!(instances[0].query_value("maxResults"), Some("5"));
    let logs: Vec<Value> = fake
        .requests_to("/v2/entries:list")
        .into_iter()
        .filter_map(|r| r.json_body)
        .filter(|body| body["pageSize"] == 10)
        .collect();
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[1]["pageToken"], "page-10");
    assert_eq!(logs[0]["orderBy"], "timestamp desc");
}

#[tokio::test]
async fn operations_return_what_an_investigation_needs() {
    let fake = FakeGcp::start(TOKEN).await;
    let (connector, credentials, _) = validated(&fake, json!({"projects": ["acme-prod"]})).await;
    let instances = query(&connector, &credentials, "list_instances", json!({}))
        .await
        .unwrap();
    let first = &instances.data["instances"][0];
    assert_eq!(first["machine_type"], "e2-standard-4");
    assert!(first["zone"].as_str().unwrap().starts_with("us-central1-"));
    assert!(first["internal_ips"][0]
        .as_str()
        .unwrap()
        .starts_with("10.128.0."));
    assert!(
        first.get("metadata").is_none(),
        "startup scripts are not returned"
    );

    let errors = query(
        &connector,
        &credentials,
        "query_logs",
        json!({"filter": "severity>=ERROR"}),
    )
    .await
    .unwrap();
    let entries = errors.data["entries"].as_array().unwrap();
    assert_eq!(entries.len(), LOG_ENTRY_COUNT.div_ceil(5));
    assert!(entries.iter().all(|e| e["severity"] == "ERROR"));
    assert!(errors.data["filter"]
        .as_str()
        .unwrap()
        .ends_with("AND (severity>=ERROR)"));

    let clusters = query(
        &connector,
        &credentials,
        "list_gke_clusters",
        json!({"location": "us-central1"}),
    )
    .await
    .unwrap();
    assert_eq!(clusters.data["clusters"].as_array().unwrap().len(), 1);
    assert_eq!(
        clusters.data["clusters"][0]["nodePools"][0]["machineType"],
        "e2-standard-4"
    );
    assert!(!clusters.data.to_string().contains(CLUSTER_CLIENT_KEY));
    assert!(fake
        .requests()
        .iter()
        .any(|r| r.path == "/v1/projects/acme-prod/locations/us-central1/clusters"));

    let assets = query(
        &connector,
        &credentials,
        "search_assets",
        json!({"query": "name:checkout", "asset_types": ["compute.googleapis.com/Instance"]}),
    )
    .await
    .unwrap();
    assert!(assets.data["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|a| a["assetType"] == "compute.googleapis.com/Instance"));
    let request = fake
        .requests_to("/v1/projects/acme-prod:searchAllResources")
        .pop()
        .unwrap();
    assert_eq!(
        request.query_value("assetTypes"),
        Some("compute.googleapis.com/Instance")
    );
    assert_eq!(request.query_value("query"), Some("name:checkout"));

    let policies = query(&connector, &credentials, "list_alert_policies", json!({}))
        .await
        .unwrap();
    assert_eq!(policies.data["alert_policies"][2]["enabled"], false);
    assert!(policies.data["alert_policies"][0]
        .get("creationRecord")
        .is_none());
}

#[tokio::test]
async fn windows_limits_and_points_are_capped() {
    let fake = FakeGcp::start(TOKEN).await;
    let (connector, credentials, _) = validated(&fake, json!({"projects": ["acme-prod"]})).await;

    let logs = query(&connector, &credentials, "query_logs", json!({}))
        .await
        .unwrap();
    let start =
        chrono::DateTime::parse_from_rfc3339(logs.data["window"]["start"].as_str().unwrap())
            .unwrap();
    let end =
        chrono::DateTime::parse_from_rfc3339(logs.data["window"]["end"].as_str().unwrap()).unwrap();
    assert_eq!((end - start).num_minutes(), 60, "the last hour by default");
    let sent = fake
        .requests_to("/v2/entries:list")
        .pop()
        .unwrap()
        .json_body
        .unwrap();
    assert!(
        sent["filter"]
            .as_str()
            .unwrap()
            .starts_with("timestamp>=\""),
        "{sent}"
    );

    let error = query(
        &connector,
        &credentials,
        "query_logs",
        json!({"start_time": "2024-01-01T00:00:00Z", "end_time": "2024-01-09T00:00:00Z"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("start_time"));
    assert!(error.message().contains("at most 7 days"), "{error}");
    let error = query(&connector, &credentials, "query_metrics", json!({"filter": CPU, "start_time": "2024-01-02T00:00:00Z", "end_time": "2024-01-01T00:00:00Z"}))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("start_time"));
    for (operation, params, field) in [
        ("query_logs", json!({"limit": 1001}), "limit"),
        ("list_instances", json!({"limit": 501}), "limit"),
        ("list_projects", json!({"limit": 0}), "limit"),
        (
            "query_metrics",
            json!({"filter": CPU, "max_points": 501}),
            "max_points",
        ),
        (
            "query_metrics",
            json!({"filter": CPU, "alignment_period_secs": 10}),
            "alignment_period_secs",
        ),
        (
            "query_metrics",
            json!({"filter": CPU, "per_series_aligner": "ALIGN_MEAN"}),
            "per_series_aligner",
        ),
        ("query_metrics", json!({"filter": " "}), "filter"),
        (
            "search_assets",
            json!({"asset_types": vec!["compute.googleapis.com/Instance"; 21]}),
            "asset_types",
        ),
        ("query_logs", json!({"filter": "x".repeat(2001)}), "filter"),
        (
            "list_gke_clusters",
            json!({"location": "us central1"}),
            "location",
        ),
    ] {
        let error = query(&connector, &credentials, operation, params)
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "{operation}: {error}"
        );
        assert_eq!(error.field(), Some(field), "{operation}: {error}");
    }

    let metrics = query(
        &connector,
        &credentials,
        "query_metrics",
        json!({"filter": CPU, "alignment_period_secs": 300, "per_series_aligner": "ALIGN_MAX"}),
    )
    .await
    .unwrap();
    assert!(
        metrics.truncated,
        "series with more points than max_points are cut"
    );
    let series = &metrics.data["time_series"][0];
    assert_eq!(series["points"].as_array().unwrap().len(), 60);
    assert_eq!(series["points_total"], POINTS_PER_SERIES);
    let sent = fake
        .requests_to("/v3/projects/acme-prod/timeSeries")
        .pop()
        .unwrap();
    assert_eq!(
        sent.query_value("aggregation.alignmentPeriod"),
        Some("300s")
    );
    assert_eq!(
        sent.query_value("aggregation.perSeriesAligner"),
        Some("ALIGN_MAX")
    );
    assert!(sent.query_value("interval.startTime").is_some());
    let whole = query(
        &connector,
        &credentials,
        "query_metrics",
        json!({"filter": CPU, "max_points": 500}),
    )
    .await
    .unwrap();
    assert!(!whole.truncated);

    let clusters = query(
        &connector,
        &credentials,
        "list_gke_clusters",
        json!({"limit": 2}),
    )
    .await
    .unwrap();
    assert_eq!(clusters.data["clusters"].as_array().unwrap().len(), 2);
    assert_eq!(clusters.data["total"], CLUSTER_COUNT);
    assert!(clusters.truncated);
}

#[tokio::test]
async fn google_errors_map_to_kinds_with_google_s_text() {
    let fake = FakeGcp::start(TOKEN).await;
    let (connector, credentials, _) = validated(&fake, json!({"projects": ["acme-prod"]})).await;
    let path = "/compute/v1/projects/acme-prod/aggregated/instances";

    fake.inject(
        path,
        Fault::RateLimited {
            retry_after_secs: 3600,
        },
    );
    let error = query(&connector, &credentials, "list_instances", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));
    assert!(error.message().contains("Quota exceeded"), "{error}");

    // A 500 is not repeated; a 503 is, once (PATCHBAY_HTTP_MAX_RETRIES=1).
    fake.inject(path, Fault::ServerError);
    let error = query(&connector, &credentials, "list_instances", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.provider_status(), Some(500));
    for _ in 0..2 {
        fake.inject(path, Fault::Unavailable);
    }
    let error = query(&connector, &credentials, "list_instances", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.provider_status(), Some(503));

    fake.disable_api("acme-prod", "container.googleapis.com");
    let error = query(&connector, &credentials, "list_gke_clusters", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        error.message(),
        "API not enabled: Kubernetes Engine API (container.googleapis.com) is not enabled in project acme-prod"
    );
    assert!(error
        .hint()
        .unwrap()
        .contains(&enable_api_url("container.googleapis.com", "acme-prod")));

    fake.deny_permission("acme-prod", "cloudasset.assets.searchAllResources");
    let error = query(&connector, &credentials, "search_assets", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(
        error
            .message()
            .contains("`cloudasset.assets.searchAllResources`"),
        "{error}"
    );

    let error = query(
        &connector,
        &credentials,
        "query_metrics",
        json!({"filter": "resource.type=\"gce_instance\""}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(
        error.message().contains("must specify a metric type"),
        "Google's text passes through: {error}"
    );

    fake.expire_access_tokens();
    let error = query(&connector, &credentials, "list_alert_policies", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert_eq!(error.provider_status(), Some(401));
    assert!(!error.to_string().contains(TOKEN));
}

#[tokio::test]
async fn disconnect_revokes_the_oauth_grant_and_not_a_key() {
    let fake = FakeGcp::start(TOKEN).await;
    let (connector, credentials, _) = validated(&fake, json!({})).await;
    let outcome = connector.revoke(&ctx(), &credentials, None).await.unwrap();
    assert_eq!(outcome, patchbay_core::RevokeOutcome::Revoked);
    assert_eq!(fake.revoked_grants(), 1);
    let revoke = fake.requests_to("/revoke").pop().unwrap();
    assert_eq!(
        revoke.body_fields,
        ["token"],
        "the token goes in the body, not the URL"
    );
    assert!(revoke.query.is_empty());
    let error = query(&connector, &credentials, "list_projects", json!({}))
        .await
        .unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::AuthFailed,
        "the grant's tokens stop working"
    );
    // Revoking again: Google answers invalid_token, which counts as revoked.
    let again = connector.revoke(&ctx(), &credentials, None).await.unwrap();
    assert_eq!(again, patchbay_core::RevokeOutcome::Revoked);

    fake.register_service_account(service_account());
    let mut key = connector
        .authenticate(form(
            json!({"service_account_json": service_account().json}),
        ))
        .await
        .unwrap();
    connector.validate(&ctx(), &mut key).await.unwrap();
    let outcome = connector.revoke(&ctx(), &key, None).await.unwrap();
    assert_eq!(outcome, patchbay_core::RevokeOutcome::NotOffered);
}

#[test]
fn the_oauth_description_follows_google_s_published_flow() {
    let facts: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/google_cloud.json"
    )))
    .unwrap();
    let spec = patchbay_connector_gcp::DESCRIPTOR.oauth.unwrap();
    let oauth = &facts["oauth"];
    let authorize = oauth["authorize"].as_str().unwrap();
    assert!(
        authorize.starts_with(&format!("GET {}?", spec.authorize_url)),
        "{authorize}"
    );
    for (name, value) in [("access_type", "offline"), ("prompt", "consent")] {
        assert!(authorize.contains(&format!("{name}={value}")));
        assert!(
            spec.extra_authorize_params.contains(&(name, value)),
            "{name}"
        );
    }
    assert!(authorize.contains("code_challenge_method=S256"));
    assert!(spec.pkce, "S256 PKCE: Google's default method is plain");
    assert_eq!(
        oauth["token"].as_str().unwrap().split(' ').nth(1),
        Some(spec.token_url)
    );
    assert_eq!(
        oauth["revoke"].as_str().unwrap(),
        format!("POST {}?token=...", spec.revoke_url.unwrap())
    );
    assert_eq!(spec.client_id_env, ["CLIENT_ID"]);
    assert_eq!(spec.client_secret_env, ["CLIENT_SECRET"]);
    assert_eq!(spec.callback_path, "/callback");
    let read_only = "https://www.googleapis.com/auth/cloud-platform.read-only";
    assert!(spec.scopes.contains(&read_only));
    assert!(!spec
        .scopes
        .contains(&"https://www.googleapis.com/auth/cloud-platform"));
    let search = &facts["cloudresourcemanager_v3"]["methods"]["projects.search"];
    assert_eq!(search["path"], "v3/projects:search");
    assert_eq!(search["query"], json!(["query", "pageSize", "pageToken"]));
    assert!(search["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!(read_only)));
}

#[test]
fn the_set_up_page_shows_the_messages_the_code_produces() {
    let page = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/connectors/gcp.md"
    ));
    // The guide's troubleshooting rows, word for word.
    for row in [
        "| \"Redirect URI mismatch\" | Ensure redirect URI in GCP Console exactly matches `http://localhost:5080/callback` |",
        "| \"Access blocked: App has not been verified\" | Add your email as a test user in OAuth consent screen |",
        "| \"API not enabled\" | Enable required APIs in GCP Console |",
        "CLIENT_ID=",
        "CLIENT_SECRET=",
        "Authorized redirect URIs: `http://localhost:5080/callback`",
    ] {
        assert!(page.contains(row), "the page lacks {row}");
    }
    for message in [
        messages::KEY_MISSING,
        messages::NOT_JSON,
        messages::WRONG_TYPE,
        messages::MALFORMED,
        messages::REJECTED,
        messages::SA_NO_PROJECTS,
        messages::USER_NO_PROJECTS,
        messages::NO_REFRESH_TOKEN,
        messages::NO_CREDENTIALS,
        messages::REFRESH_FAILED,
        messages::REDIRECT_URI_MISMATCH,
        &messages::missing_field("client_email"),
        patchbay_connector_gcp::client::API_NOT_ENABLED,
        "API not enabled: Compute Engine API (compute.googleapis.com) is not enabled in project acme-prod",
        "Google rejected the access token",
    ] {
        assert!(page.contains(&format!("\"{message}")), "the page lacks \"{message}\"");
    }
    for operation in patchbay_connector_gcp::query::OPERATION_NAMES {
        assert!(page.contains(&format!("| `{operation}` |")), "{operation}");
    }
}

mod oauth_flow {
    //! The OAuth engine runs the Google flow with this connector's descriptor: against
    //! the fake (PKCE, consent, projects option), and against `oauth2-mock-server`.

    use std::collections::HashMap;
    use std::sync::Arc;

    use patchbay_connector_gcp::fake::{FakeGcp, ProviderFake, FAKE_CLIENT_ID, FAKE_CLIENT_SECRET};
    use patchbay_connector_gcp::{GcpConnector, DESCRIPTOR};
    use patchbay_core::{
        AuthRequest, ConnectorDescriptor, ConnectorEnv, DynConnector, ErrorKind, OAuthSpec, Tenant,
    };
    use patchbay_oauth::{CallbackParams, OAuthEngine, StartRequest};
    use patchbay_store::{RecordStore, SqliteRecordStore};
    use serde_json::{json, Value};

    const PUBLIC_URL: &str = "http://patchbay.test";

    fn alice() -> Tenant {
        Tenant {
            user_id: "alice".into(),
            org_id: Some("acme".into()),
        }
    }

    async fn engine(dir: &std::path::Path, override_spec: &str) -> OAuthEngine {
        let records: Arc<dyn RecordStore> = Arc::new(
            SqliteRecordStore::open(dir.join("records.db").to_str().unwrap())
                .await
                .unwrap(),
        );
        OAuthEngine::new(
            patchbay_testkit::http::client_for_fake(override_spec),
            records,
            ConnectorEnv::from_pairs([
                ("CLIENT_ID", FAKE_CLIENT_ID),
                ("CLIENT_SECRET", FAKE_CLIENT_SECRET),
            ]),
            format!("{PUBLIC_URL}/"),
        )
    }

    fn query_of(url: &str) -> HashMap<String, String> {
        reqwest::Url::parse(url)
            .unwrap()
            .query_pairs()
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect()
    }

    /// Starts a flow, opens its begin URL, and plays the browser at `authorize_base`
    /// (standing in for `https://accounts.google.com`): the authorize URL, the
    /// callback parameters Google sent back, and the binding cookie.
    async fn browse(
        engine: &OAuthEngine,
        descriptor: &'static ConnectorDescriptor,
        options: Value,
        provider_origin: &str,
        authorize_base: &str,
    ) -> (String, CallbackParams, String) {
        let start = engine
            .start(
                &alice(),
                descriptor,
                StartRequest {
                    label: Some("Google Cloud".into()),
                    options: options.as_object().cloned().unwrap_or_default(),
                    allow_writes: false,
                },
            )
            .await
            .unwrap();
        let state = start.begin_url.rsplit('/').next().unwrap();
        let begun = engine
            .begin(state, |id| (id == descriptor.id).then_some(descriptor))
            .await
            .unwrap();
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let at_provider = begun
            .authorize_url
            .replacen(provider_origin, authorize_base, 1);
        let answer = browser.get(&at_provider).send().await.unwrap();
        assert!(
            answer.status().is_redirection(),
            "{}: {}",
            answer.status(),
            answer.text().await.unwrap_or_default()
        );
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        let callback = location
            .strip_prefix(&format!("{PUBLIC_URL}/callback?"))
            .unwrap_or_else(|| panic!("redirected to {location}"));
        let params: HashMap<String, String> = reqwest::Url::parse(&format!("http://x/?{callback}"))
            .unwrap()
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let callback = CallbackParams {
            code: params.get("code").cloned(),
            state: params.get("state").cloned(),
            error: params.get("error").cloned(),
            error_description: params.get("error_description").cloned(),
        };
        (
            begun.authorize_url,
            callback,
            begun.cookie.value.expose().clone(),
        )
    }

    #[tokio::test]
    async fn a_callback_url_google_does_not_know_is_the_guides_redirect_uri_mismatch() {
        let fake = FakeGcp::start("canary-mismatch-token-7d1c").await;
        // The client in the console lists another deployment's callback.
        fake.register_redirect_uri("https://other.patchbay.test/callback");
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), &fake.override_spec()).await;
        let start = engine
            .start(
                &alice(),
                &DESCRIPTOR,
                StartRequest {
                    label: None,
                    options: Default::default(),
                    allow_writes: false,
                },
            )
            .await
            .unwrap();
        let state = start.begin_url.rsplit('/').next().unwrap();
        let begun = engine
            .begin(state, |id| (id == DESCRIPTOR.id).then_some(&DESCRIPTOR))
            .await
            .unwrap();
        let at_fake =
            begun
                .authorize_url
                .replacen("https://accounts.google.com", &fake.base_url(), 1);
        let answer = reqwest::get(&at_fake).await.unwrap();
        assert_eq!(answer.status(), 400);
        assert!(answer
            .text()
            .await
            .unwrap()
            .contains("redirect_uri_mismatch"));

        // Google's code reaching the token endpoint is worded as the guide does,
        // naming the URI to register.
        let redirect_uri = format!("{PUBLIC_URL}/callback");
        let error = patchbay_core::oauth::connector_oauth_error(
            DESCRIPTOR.id,
            "redirect_uri_mismatch",
            Some("Bad Request"),
            Some(&redirect_uri),
        )
        .expect("the GCP connector words redirect_uri_mismatch");
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.message(), "Redirect URI mismatch (Bad Request)");
        let hint = error.hint().unwrap_or_default();
        assert!(hint.contains(&redirect_uri), "{hint}");
        assert!(hint.contains("PATCHBAY_PUBLIC_URL"), "{hint}");
        assert!(patchbay_core::oauth::connector_oauth_error(
            DESCRIPTOR.id,
            "invalid_grant",
            None,
            Some(&redirect_uri)
        )
        .is_none());
    }

    #[tokio::test]
    async fn the_google_flow_runs_against_the_fake_with_pkce_and_the_projects_option() {
        let fake = FakeGcp::start("canary-flow-token-5e2b").await;
        fake.register_redirect_uri(&format!("{PUBLIC_URL}/callback"));
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), &fake.override_spec()).await;
        let (authorize_url, callback, cookie) = browse(
            &engine,
            &DESCRIPTOR,
            json!({"projects": ["acme-staging"]}),
            "https://accounts.google.com",
            &fake.base_url(),
        )
        .await;
        let query = query_of(&authorize_url);
        assert!(authorize_url.starts_with("https://accounts.google.com/o/oauth2/v2/auth?"));
        assert_eq!(query["access_type"], "offline");
        assert_eq!(query["prompt"], "consent");
        assert!(
            !query.contains_key("include_granted_scopes"),
            "only the read-only scopes, never earlier grants"
        );
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["redirect_uri"], format!("{PUBLIC_URL}/callback"));
        let done = engine
            .complete(&DESCRIPTOR, callback, Some(&cookie))
            .await
            .unwrap();
        assert!(done.grant.refresh_token.is_some());
        assert!(!done.grant.extra.contains_key("id_token"));
        let exchange = fake.requests_to("/token").pop().unwrap();
        assert!(exchange.body_fields.contains(&"code_verifier".to_owned()));
        assert!(
            !exchange.has_header("authorization"),
            "client credentials go in the body"
        );

        let connector: GcpConnector = fake.connector();
        let mut credentials = connector
            .authenticate(AuthRequest::OAuth(done.grant))
            .await
            .unwrap();
        let report = connector
            .validate(&super::ctx(), &mut credentials)
            .await
            .unwrap();
        assert!(report.passed(), "{report:?}");
        assert_eq!(credentials.config["projects"], json!(["acme-staging"]));

        // The fake checks PKCE: a code redeemed with another verifier is refused.
        let (_, callback, _) = browse(
            &engine,
            &DESCRIPTOR,
            json!({}),
            "https://accounts.google.com",
            &fake.base_url(),
        )
        .await;
        let refused = reqwest::Client::new()
            .post(format!("{}/token", fake.base_url()))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", callback.code.as_deref().unwrap()),
                ("redirect_uri", &format!("{PUBLIC_URL}/callback")),
                ("client_id", FAKE_CLIENT_ID),
                ("client_secret", FAKE_CLIENT_SECRET),
                (
                    "code_verifier",
                    "a-verifier-that-was-never-challenged-0000000000",
                ),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 400);
        assert_eq!(
            refused.json::<Value>().await.unwrap()["error"],
            "invalid_grant"
        );

        // A denied consent comes back as access_denied and stores nothing.
        fake.deny_next_consent();
        let (_, callback, cookie) = browse(
            &engine,
            &DESCRIPTOR,
            json!({}),
            "https://accounts.google.com",
            &fake.base_url(),
        )
        .await;
        assert_eq!(callback.error.as_deref(), Some("access_denied"));
        let error = engine
            .complete(&DESCRIPTOR, callback, Some(&cookie))
            .await
            .unwrap_err();
        assert_ne!(error.kind(), ErrorKind::Internal, "{error}");
    }

    /// This connector's OAuth settings with the mock's endpoints.
    fn descriptor_at(authorize_url: &str, token_url: &str) -> &'static ConnectorDescriptor {
        let google = DESCRIPTOR.oauth.unwrap();
        let spec = OAuthSpec {
            authorize_url: Box::leak(authorize_url.to_owned().into_boxed_str()),
            token_url: Box::leak(token_url.to_owned().into_boxed_str()),
            revoke_url: None,
            ..google
        };
        Box::leak(Box::new(ConnectorDescriptor {
            oauth: Some(spec),
            ..DESCRIPTOR
        }))
    }

    #[tokio::test]
    async fn needs_oauth_mock_google_s_offline_consent_and_pkce_parameters_yield_a_refresh_token() {
        let issuer = patchbay_testkit::services::oauth_issuer();
        let discovery: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let descriptor = descriptor_at(
            discovery["authorization_endpoint"].as_str().unwrap(),
            discovery["token_endpoint"].as_str().unwrap(),
        );
        let dir = tempfile::tempdir().unwrap();
        let engine = engine(dir.path(), "").await;
        let (authorize_url, callback, cookie) = browse(
            &engine,
            descriptor,
            json!({"projects": "acme-prod"}),
            &issuer,
            &issuer,
        )
        .await;
        let query = query_of(&authorize_url);
        assert_eq!(query["access_type"], "offline");
        assert_eq!(query["prompt"], "consent");
        assert_eq!(query["code_challenge_method"], "S256");
        let done = engine
            .complete(descriptor, callback, Some(&cookie))
            .await
            .unwrap();
        assert!(
            done.grant.refresh_token.is_some(),
            "the mock issued a refresh token"
        );
        let connector = GcpConnector::new(patchbay_testkit::http::client_for_fake(""));
        let credentials = connector
            .authenticate(AuthRequest::OAuth(done.grant))
            .await
            .unwrap();
        assert_eq!(
            credentials.config["requested_projects"],
            json!(["acme-prod"])
        );
        assert_eq!(credentials.config["auth_type"], "oauth");
    }
}
