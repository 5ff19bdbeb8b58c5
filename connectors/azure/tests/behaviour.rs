//! The Azure connector's own behaviour against the fake: each validation line
//! failing, paging, caps, error mapping (every AADSTS message the guide names),
//! one token per audience, and the delegated flow through the OAuth engine.

use std::sync::Arc;

use chrono::{Duration, Utc};
use patchbay_connector_azure::client::{explain_oauth_error, Auth, AzureClient, TokenCache};
use patchbay_connector_azure::fake::{
    self as fake_azure, FakeAzure, Fault, Role, CLIENT_ID, DISABLED_SUBSCRIPTION_ID,
    READ_ONLY_CLIENT_ID, SECOND_SUBSCRIPTION_ID, SUBSCRIPTION_ID, TENANT_DOMAIN, TENANT_ID, VM_ID,
    WORKSPACE_ID,
};
use patchbay_connector_azure::{
    AuthType, AzureConfig, AzureConnector, AzureSecrets, DESCRIPTOR, INSUFFICIENT_PRIVILEGES,
    INVALID_CREDENTIALS, REPLY_URL_MISMATCH,
};
use patchbay_core::{
    AuthRequest, CheckOutcome, Connector, ConnectorContext, ConnectorEnv, Credentials, ErrorKind,
    FormFields, FromEnv, QueryOutput, Result, Tenant, ValidationReport,
};
use patchbay_oauth::{CallbackParams, OAuthEngine, StartRequest};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Map, Value};

const SECRET: &str = "canary-azure-secret-b1";
const READ_ONLY_SECRET: &str = "canary-azure-ro-secret-b2";

type Creds = Credentials<AzureConfig, AzureSecrets>;

fn ctx() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some("conn-azure-1".to_owned()),
        tenant: None,
    }
}

fn form(extra: Value) -> FormFields {
    let mut fields =
        json!({"tenant_id": TENANT_ID, "client_id": CLIENT_ID, "client_secret": SECRET});
    for (key, value) in extra.as_object().unwrap() {
        fields[key] = value.clone();
    }
    match fields {
        Value::Object(map) => FormFields(map),
        _ => unreachable!(),
    }
}

async fn connect(connector: &AzureConnector, fields: FormFields) -> (Creds, ValidationReport) {
    let mut credentials = connector
        .authenticate(AuthRequest::Form(fields))
        .await
        .expect("the form is valid");
    let report = connector
        .validate(&ctx(), &mut credentials)
        .await
        .expect("validation runs");
    (credentials, report)
}

fn line<'r>(report: &'r ValidationReport, id: &str) -> &'r patchbay_core::ValidationCheck {
    report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no line {id} in {:?}", report.check_ids()))
}

async fn query(
    connector: &AzureConnector,
    credentials: &Creds,
    operation: &str,
    params: Value,
) -> Result<QueryOutput> {
    connector
        .query(&ctx(), credentials, operation, params)
        .await
}

async fn connected(fake: &FakeAzure) -> (AzureConnector, Creds) {
    let connector = fake.connector();
    let (credentials, report) = connect(&connector, form(json!({}))).await;
    assert!(report.passed(), "{:?}", report.checks);
    (connector, credentials)
}

// ---- Validation: every line, passing and failing ----

#[tokio::test]
async fn a_good_principal_passes_every_line_and_fills_the_subscription() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    let (credentials, report) = connect(
        &connector,
        form(json!({"read_only_client_id": READ_ONLY_CLIENT_ID, "read_only_client_secret": READ_ONLY_SECRET})),
    )
    .await;
    for check in &report.checks {
        assert_eq!(check.outcome, CheckOutcome::Ok, "{check:?}");
    }
    assert_eq!(report.checks.len(), 11);
    let config = &credentials.config;
    assert_eq!(config.subscription_id.as_deref(), Some(SUBSCRIPTION_ID));
    assert_eq!(config.subscription_name.as_deref(), Some("Production"));
    assert_eq!(config.can_write, Some(true));
    let expires = config.secret_expires_at.expect("Graph tells the expiry");
    assert!(expires > Utc::now() + Duration::days(300));
    assert!(config.read_only_secret_expires_at.is_some());
    // The subscription list was read page by page through nextLink.
    let pages = fake.requests_to("/subscriptions");
    assert_eq!(pages.len(), 2, "{pages:?}");
    assert_eq!(pages[1].query_value("$skiptoken"), Some("2"));
    assert!(pages
        .iter()
        .all(|page| page.query_value("api-version") == Some("2022-12-01")));
}

#[tokio::test]
async fn a_wrong_secret_fails_the_token_line_with_the_guide_message() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    let (_, report) = connect(
        &connector,
        form(json!({"client_secret": "canary-wrong-b3"})),
    )
    .await;
    let token = line(&report, "token");
    assert_eq!(token.outcome, CheckOutcome::Failed);
    assert!(
        token
            .detail
            .starts_with(&format!("{INVALID_CREDENTIALS} (AADSTS7000215")),
        "{}",
        token.detail
    );
    assert!(
        token.detail.contains("Secret ID"),
        "the fix names the Value/ID mix-up: {}",
        token.detail
    );
    assert!(!token.detail.contains("canary-wrong-b3"));
    assert_eq!(token.provider_status, Some(401));
    assert!(!report.passed());
    for id in [
        "subscriptions",
        "subscription",
        "permission_read",
        "permission_write",
        "client_secret_expiry",
    ] {
        assert_eq!(line(&report, id).outcome, CheckOutcome::Skipped, "{id}");
    }
}

#[tokio::test]
async fn each_token_error_gets_its_fix() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    // Unknown application.
    let (_, report) = connect(
        &connector,
        form(json!({"client_id": "11111111-2222-4333-8444-555555555555"})),
    )
    .await;
    let token = line(&report, "token");
    assert!(
        token
            .detail
            .starts_with(&format!("{INVALID_CREDENTIALS} (AADSTS700016")),
        "{}",
        token.detail
    );
    // Unknown tenant (a domain is accepted as the tenant, and this one is unknown).
    let (_, report) = connect(
        &connector,
        form(json!({"tenant_id": "fabrikam.onmicrosoft.com"})),
    )
    .await;
    let token = line(&report, "token");
    assert!(
        token
            .detail
            .starts_with(&format!("{INVALID_CREDENTIALS} (AADSTS90002")),
        "{}",
        token.detail
    );
    assert!(
        token.detail.contains("Directory (tenant) ID"),
        "{}",
        token.detail
    );
    // The verified domain works as the tenant.
    let (_, report) = connect(&connector, form(json!({"tenant_id": TENANT_DOMAIN}))).await;
    assert!(report.passed(), "{:?}", report.checks);
    // An expired secret.
    fake.set_secret_expiry(CLIENT_ID, Utc::now() - Duration::days(1));
    let (_, report) = connect(&connector, form(json!({}))).await;
    let token = line(&report, "token");
    assert!(
        token
            .detail
            .starts_with(&format!("{INVALID_CREDENTIALS} (AADSTS7000222")),
        "{}",
        token.detail
    );
    assert!(token.detail.contains("expired"), "{}", token.detail);
    // Missing admin consent.
    fake.set_secret_expiry(CLIENT_ID, Utc::now() + Duration::days(100));
    fake.set_consent_missing(true);
    let (_, report) = connect(&connector, form(json!({}))).await;
    let token = line(&report, "token");
    assert!(
        token
            .detail
            .starts_with(&format!("{INSUFFICIENT_PRIVILEGES} (AADSTS65001")),
        "{}",
        token.detail
    );
    assert!(
        token
            .detail
            .contains("Grant admin consent for API permissions"),
        "{}",
        token.detail
    );
}

#[tokio::test]
async fn no_role_means_no_enabled_subscription_found() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    fake.set_role(CLIENT_ID, Role::None);
    let connector = fake.connector();
    let (_, report) = connect(&connector, form(json!({}))).await;
    let line = line(&report, "subscriptions");
    assert_eq!(line.outcome, CheckOutcome::Failed);
    assert!(
        line.detail.starts_with("No enabled subscription found"),
        "{}",
        line.detail
    );
    assert!(line
        .detail
        .contains("Assign Reader/Contributor role to the app in subscription IAM"));
    assert!(!report.passed());
}

#[tokio::test]
async fn only_disabled_subscriptions_mean_no_enabled_subscription_found() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    fake.set_subscriptions(&[
        (DISABLED_SUBSCRIPTION_ID, "Old", "Disabled"),
        (SECOND_SUBSCRIPTION_ID, "Late", "PastDue"),
    ]);
    let (_, report) = connect(&fake.connector(), form(json!({}))).await;
    let line = line(&report, "subscriptions");
    assert!(
        line.detail
            .starts_with("No enabled subscription found (2 subscription(s) visible, none Enabled)"),
        "{}",
        line.detail
    );
}

#[tokio::test]
async fn a_chosen_subscription_must_be_visible_and_enabled() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    let (_, report) = connect(
        &connector,
        form(json!({"subscription_id": DISABLED_SUBSCRIPTION_ID})),
    )
    .await;
    let chosen = line(&report, "subscription");
    assert_eq!(chosen.outcome, CheckOutcome::Failed);
    assert!(
        chosen.detail.contains("is Disabled, not Enabled"),
        "{}",
        chosen.detail
    );
    let (_, report) = connect(
        &connector,
        form(json!({"subscription_id": "99999999-9999-4999-8999-999999999999"})),
    )
    .await;
    let chosen = line(&report, "subscription");
    assert_eq!(chosen.outcome, CheckOutcome::Failed);
    assert!(
        chosen.detail.contains("is not visible to this principal"),
        "{}",
        chosen.detail
    );
    assert_eq!(
        line(&report, "permission_read").outcome,
        CheckOutcome::Skipped
    );
    let (credentials, report) = connect(
        &connector,
        form(json!({"subscription_id": SECOND_SUBSCRIPTION_ID})),
    )
    .await;
    assert!(report.passed());
    assert_eq!(
        credentials.config.subscription_name.as_deref(),
        Some("Staging")
    );
}

#[tokio::test]
async fn read_and_write_lines_follow_the_role() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    fake.set_role(CLIENT_ID, Role::Reader);
    let (credentials, report) = connect(&connector, form(json!({}))).await;
    assert_eq!(line(&report, "permission_read").outcome, CheckOutcome::Ok);
    let write = line(&report, "permission_write");
    assert_eq!(write.outcome, CheckOutcome::Failed);
    assert!(
        write.detail.contains("cannot change resources (Reader)"),
        "{}",
        write.detail
    );
    assert!(report.passed(), "write is not mandatory");
    assert_eq!(credentials.config.can_write, Some(false));
    fake.set_role(CLIENT_ID, Role::ActionsOnly);
    let (_, report) = connect(&connector, form(json!({}))).await;
    let read = line(&report, "permission_read");
    assert_eq!(read.outcome, CheckOutcome::Failed);
    assert!(
        read.detail
            .starts_with("Insufficient privileges: the principal cannot read"),
        "{}",
        read.detail
    );
}

#[tokio::test]
async fn the_read_only_principal_is_checked_and_must_not_write() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    fake.set_role(READ_ONLY_CLIENT_ID, Role::Contributor);
    let ro = json!({"read_only_client_id": READ_ONLY_CLIENT_ID, "read_only_client_secret": READ_ONLY_SECRET});
    let (_, report) = connect(&connector, form(ro.clone())).await;
    let no_write = line(&report, "read_only_no_write");
    assert_eq!(no_write.outcome, CheckOutcome::Failed);
    assert!(
        no_write
            .detail
            .contains("read-only principal can change resources"),
        "{}",
        no_write.detail
    );
    let (_, report) = connect(
        &connector,
        form(json!({"read_only_client_id": READ_ONLY_CLIENT_ID, "read_only_client_secret": "canary-ro-wrong-b4"})),
    )
    .await;
    let token = line(&report, "read_only_token");
    assert_eq!(token.outcome, CheckOutcome::Failed);
    assert!(
        token.detail.starts_with(INVALID_CREDENTIALS),
        "{}",
        token.detail
    );
    assert!(!report.passed(), "the read-only token line is mandatory");
    fake.set_role(READ_ONLY_CLIENT_ID, Role::None);
    let (_, report) = connect(&connector, form(ro)).await;
    let sub = line(&report, "read_only_subscription");
    assert_eq!(sub.outcome, CheckOutcome::Failed);
    assert!(sub.detail.contains("not visible"), "{}", sub.detail);
    // The main principal failing skips the read-only lines.
    let (_, report) = connect(
        &connector,
        form(json!({"client_secret": "canary-wrong-b5", "read_only_client_id": READ_ONLY_CLIENT_ID, "read_only_client_secret": READ_ONLY_SECRET})),
    )
    .await;
    assert_eq!(
        line(&report, "read_only_token").outcome,
        CheckOutcome::Skipped
    );
}

#[tokio::test]
async fn a_secret_about_to_lapse_is_a_warning_and_graph_silence_a_skip() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    fake.set_secret_expiry(
        CLIENT_ID,
        Utc::now() + Duration::days(10) + Duration::hours(1),
    );
    let (credentials, report) = connect(&connector, form(json!({}))).await;
    let expiry = line(&report, "client_secret_expiry");
    assert_eq!(expiry.outcome, CheckOutcome::Failed);
    assert!(!expiry.mandatory);
    assert!(
        expiry.detail.contains("The client secret expires on"),
        "{}",
        expiry.detail
    );
    assert!(expiry.detail.contains("in 10 day(s)"), "{}", expiry.detail);
    assert!(report.passed(), "a warning does not block connecting");
    assert!(credentials.config.secret_expires_at.is_some());
    fake.set_graph_readable(false);
    let (credentials, report) = connect(&connector, form(json!({}))).await;
    let expiry = line(&report, "client_secret_expiry");
    assert_eq!(expiry.outcome, CheckOutcome::Skipped);
    assert!(
        expiry.detail.contains("Insufficient privileges"),
        "{}",
        expiry.detail
    );
    assert!(
        expiry.detail.contains("Application.Read.All"),
        "{}",
        expiry.detail
    );
    assert_eq!(credentials.config.secret_expires_at, None);
}

#[tokio::test]
async fn form_errors_name_the_field_and_never_reach_the_network() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    for (fields, field, message) in [
        (json!({"tenant_id": "../x"}), "tenant_id", None),
        (json!({"tenant_id": "common"}), "tenant_id", None),
        (json!({"client_id": "app"}), "client_id", None),
        (
            json!({"subscription_id": "s/../../x"}),
            "subscription_id",
            None,
        ),
        (
            json!({"client_secret": ""}),
            "client_secret",
            Some("Missing required credentials"),
        ),
        (
            json!({"readOnlyCredentials": {"clientId": READ_ONLY_CLIENT_ID}}),
            "read_only_client_secret",
            Some("readOnlyCredentials must include clientId and clientSecret"),
        ),
    ] {
        let error = connector
            .authenticate(AuthRequest::Form(form(fields.clone())))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{fields}");
        assert_eq!(error.field(), Some(field), "{fields}");
        if let Some(message) = message {
            assert_eq!(error.message(), message);
        }
    }
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn operator_base_urls_must_be_https_or_allowlisted() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (_, report) = connect(&fake.connector_from_env(), form(json!({}))).await;
    assert!(
        report.passed(),
        "the fake is reached through the variables and the allowlist"
    );
    let env = ConnectorEnv::from_pairs([("AZURE_RESOURCE_MANAGER_URL", "http://127.0.0.1:9")]);
    let error = AzureConnector::from_env(&env).unwrap_err();
    assert_eq!(error.field(), Some("AZURE_RESOURCE_MANAGER_URL"));
    let env = ConnectorEnv::from_pairs([("AZURE_GRAPH_URL", "https://graph.example/?x=1")]);
    assert_eq!(
        AzureConnector::from_env(&env).unwrap_err().field(),
        Some("AZURE_GRAPH_URL")
    );
    let env =
        ConnectorEnv::from_pairs([("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us")]);
    assert!(AzureConnector::from_env(&env).is_ok());
    let names: Vec<&str> = DESCRIPTOR.env_vars.iter().map(|var| var.name).collect();
    for name in [
        "AZURE_AUTHORITY_HOST",
        "AZURE_RESOURCE_MANAGER_URL",
        "AZURE_GRAPH_URL",
        "AZURE_LOG_ANALYTICS_URL",
    ] {
        assert!(names.contains(&name), "{name} is declared");
    }
}

// ---- Tokens: one per audience, cached ----

#[tokio::test]
async fn one_token_per_audience_is_requested_and_cached() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    fake.clear_requests();
    for _ in 0..2 {
        query(&connector, &credentials, "list_aks_clusters", json!({}))
            .await
            .unwrap();
        query(
            &connector,
            &credentials,
            "query_log_analytics",
            json!({"workspace_id": WORKSPACE_ID, "query": "T | take 3"}),
        )
        .await
        .unwrap();
    }
    // Validation already cached the ARM token; Log Analytics needed its own, once.
    let scopes: Vec<String> = fake
        .token_requests()
        .iter()
        .filter_map(|request| request.form_value("scope").map(str::to_owned))
        .collect();
    assert_eq!(scopes, ["https://api.loganalytics.io/.default"]);
    let form = &fake.token_requests()[0];
    assert_eq!(form.form_value("grant_type"), Some("client_credentials"));
    assert_eq!(form.form_value("client_secret"), Some("[redacted]"));
    assert_eq!(
        connector.token_cache().len(),
        3,
        "ARM, Graph and Log Analytics"
    );
    // A token about to expire is replaced before use.
    fake.set_token_lifetime(200);
    let other = fake.connector();
    let (credentials, _) = connect(&other, form_with_secret()).await;
    fake.clear_requests();
    query(&other, &credentials, "list_alerts", json!({}))
        .await
        .unwrap();
    assert_eq!(
        fake.token_requests().len(),
        1,
        "200 s left is within the 300 s margin"
    );
}

fn form_with_secret() -> FormFields {
    form(json!({}))
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    fake.expire_tokens();
    fake.clear_requests();
    let output = query(&connector, &credentials, "list_alerts", json!({}))
        .await
        .unwrap();
    assert_eq!(output.data["alerts"].as_array().unwrap().len(), 4);
    assert_eq!(fake.token_requests().len(), 1);
}

// ---- Operations: paging and caps ----

#[tokio::test]
async fn resource_graph_pages_with_top_and_skip_token() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    let mut cursor: Option<String> = None;
    let mut rows = 0;
    let mut pages = 0;
    loop {
        let mut params = json!({"query": "Resources | project name", "limit": 10});
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let output = query(&connector, &credentials, "query_resource_graph", params)
            .await
            .unwrap();
        rows += output.data["rows"].as_array().unwrap().len();
        pages += 1;
        assert_eq!(output.data["total_records"], 25);
        match output.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!((rows, pages), (25, 3));
    let bodies: Vec<Value> = fake
        .requests_to("/providers/Microsoft.ResourceGraph/resources")
        .into_iter()
        .filter_map(|request| request.json)
        .collect();
    assert_eq!(bodies[0]["options"]["$top"], 10);
    assert_eq!(bodies[0]["subscriptions"], json!([SUBSCRIPTION_ID]));
    assert_eq!(bodies[1]["options"]["$skipToken"], "ew0KfakeSkip10");
    let error = query(
        &connector,
        &credentials,
        "query_resource_graph",
        json!({"query": "x", "limit": 1001}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("limit"));
    let error = query(
        &connector,
        &credentials,
        "query_resource_graph",
        json!({"query": "Resources | syntaxerror"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(
        error.message().contains("InvalidQuery"),
        "{}",
        error.message()
    );
    let error = query(
        &connector,
        &credentials,
        "query_resource_graph",
        json!({"query": "Resources", "subscriptions": ["x/../y"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("subscriptions"));
}

#[tokio::test]
async fn activity_log_follows_next_link_up_to_the_limit() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    let path = format!("/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.Insights/eventtypes/management/values");
    let all = query(&connector, &credentials, "list_activity_log", json!({}))
        .await
        .unwrap();
    assert_eq!(all.data["events"].as_array().unwrap().len(), 7);
    assert!(all.next_cursor.is_none());
    assert_eq!(fake.requests_to(&path).len(), 3, "three pages of three");
    let filter = fake.requests_to(&path)[0]
        .query_value("$filter")
        .unwrap()
        .to_owned();
    assert!(filter.starts_with("eventTimestamp ge '"), "{filter}");
    fake.clear_requests();
    let first = query(
        &connector,
        &credentials,
        "list_activity_log",
        json!({"limit": 2, "resource_group": "prod-rg"}),
    )
    .await
    .unwrap();
    assert_eq!(first.data["events"].as_array().unwrap().len(), 2);
    assert!(first.truncated, "a third event of the page was dropped");
    let cursor = first.next_cursor.expect("more pages");
    assert!(fake.requests_to(&path)[0]
        .query_value("$filter")
        .unwrap()
        .contains("resourceGroupName eq 'prod-rg'"));
    let second = query(
        &connector,
        &credentials,
        "list_activity_log",
        json!({"limit": 2, "resource_group": "prod-rg", "cursor": cursor}),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.requests_to(&path)[1].query_value("$skiptoken"),
        Some("3")
    );
    assert_eq!(second.data["events"].as_array().unwrap().len(), 2);
    let error = query(
        &connector,
        &credentials,
        "list_activity_log",
        json!({"from": "now-91d"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("from"));
    let error = query(
        &connector,
        &credentials,
        "list_activity_log",
        json!({"resource_group": "rg'; drop"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("resource_group"));
}

#[tokio::test]
async fn alerts_page_by_page_count_and_filter() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    let path =
        format!("/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.AlertsManagement/alerts");
    let first = query(&connector, &credentials, "list_alerts", json!({"limit": 3}))
        .await
        .unwrap();
    assert_eq!(first.data["alerts"].as_array().unwrap().len(), 3);
    let request = &fake.requests_to(&path)[0];
    assert_eq!(request.query_value("pageCount"), Some("3"));
    assert_eq!(request.query_value("timeRange"), Some("1d"));
    assert_eq!(
        request.query_value("api-version"),
        Some("2019-05-05-preview")
    );
    let second = query(
        &connector,
        &credentials,
        "list_alerts",
        json!({"limit": 3, "cursor": first.next_cursor.unwrap()}),
    )
    .await
    .unwrap();
    assert_eq!(second.data["alerts"].as_array().unwrap().len(), 1);
    assert!(second.next_cursor.is_none());
    let new = query(
        &connector,
        &credentials,
        "list_alerts",
        json!({"state": "New", "severity": "Sev0", "time_range": "7d"}),
    )
    .await
    .unwrap();
    let alerts = new.data["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["severity"], "Sev0");
    let error = query(
        &connector,
        &credentials,
        "list_alerts",
        json!({"limit": 251}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("limit"));
}

#[tokio::test]
async fn aks_clusters_are_read_across_pages_without_credentials() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    let output = query(&connector, &credentials, "list_aks_clusters", json!({}))
        .await
        .unwrap();
    let clusters = output.data["clusters"].as_array().unwrap();
    assert_eq!(clusters.len(), 3);
    assert_eq!(clusters[2]["power_state"], "Stopped");
    assert_eq!(clusters[0]["node_pools"][0]["vm_size"], "Standard_D4s_v5");
    assert!(fake
        .requests()
        .iter()
        .all(|request| !request.path.contains("listClusterAdminCredential")));
    let scoped = query(
        &connector,
        &credentials,
        "list_aks_clusters",
        json!({"resource_group": "aks-rg"}),
    )
    .await
    .unwrap();
    assert_eq!(scoped.data["clusters"].as_array().unwrap().len(), 3);
    assert_eq!(
        fake.requests().last().unwrap().path,
        format!("/subscriptions/{SUBSCRIPTION_ID}/resourceGroups/aks-rg/providers/Microsoft.ContainerService/managedClusters")
    );
}

#[tokio::test]
async fn metrics_default_to_an_hour_and_cap_windows_and_points() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    let output = query(&connector, &credentials, "query_metrics", json!({"resource_id": VM_ID, "metric_names": ["Percentage CPU"], "aggregations": ["Average", "Maximum"]}))
        .await
        .unwrap();
    let data = output.data["metrics"][0]["timeseries"][0]["data"]
        .as_array()
        .unwrap();
    assert_eq!(data.len(), 12, "an hour of 5-minute points");
    assert!(data[0]["maximum"].is_number());
    let request = fake.requests().last().unwrap().clone();
    assert_eq!(
        request.path,
        format!("{VM_ID}/providers/Microsoft.Insights/metrics")
    );
    assert_eq!(request.query_value("aggregation"), Some("Average,Maximum"));
    assert!(!output.truncated);
    let week = query(&connector, &credentials, "query_metrics", json!({"resource_id": VM_ID, "metric_names": ["Percentage CPU"], "from": "now-7d", "interval": "PT1M"}))
        .await
        .unwrap();
    assert!(week.truncated);
    assert_eq!(
        week.data["metrics"][0]["timeseries"][0]["data"]
            .as_array()
            .unwrap()
            .len(),
        500
    );
    let error = query(
        &connector,
        &credentials,
        "query_metrics",
        json!({"resource_id": VM_ID, "metric_names": ["Percentage CPU"], "from": "now-8d"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("from"));
    let error = query(
        &connector,
        &credentials,
        "query_metrics",
        json!({"resource_id": "/subscriptions/../x", "metric_names": ["a"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("resource_id"));
    let error = query(
        &connector,
        &credentials,
        "query_metrics",
        json!({"resource_id": VM_ID, "metric_names": ["Bogus"]}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert!(
        error.message().contains("Valid metrics: Percentage CPU"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn log_analytics_uses_its_own_audience_and_caps_rows() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    let output = query(
        &connector,
        &credentials,
        "query_log_analytics",
        json!({"workspace_id": WORKSPACE_ID, "query": "AzureActivity | take 50", "max_rows": 20}),
    )
    .await
    .unwrap();
    assert!(output.truncated);
    let table = &output.data["tables"][0];
    assert_eq!(table["rows"].as_array().unwrap().len(), 20);
    assert_eq!(table["row_count"], 50);
    assert_eq!(table["columns"][0]["name"], "TimeGenerated");
    let request = fake.requests().last().unwrap().clone();
    assert_eq!(request.path, format!("/v1/workspaces/{WORKSPACE_ID}/query"));
    assert!(request.json.unwrap()["timespan"]
        .as_str()
        .unwrap()
        .contains('/'));
    let error = query(
        &connector,
        &credentials,
        "query_log_analytics",
        json!({"workspace_id": "99999999-9999-4999-8999-999999999999", "query": "T"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(
        error.message().contains("WorkspaceNotFoundError"),
        "{}",
        error.message()
    );
    let error = query(
        &connector,
        &credentials,
        "query_log_analytics",
        json!({"workspace_id": WORKSPACE_ID, "query": "T | syntaxerror"}),
    )
    .await
    .unwrap_err();
    assert!(
        error.message().contains("SyntaxError"),
        "{}",
        error.message()
    );
    let error = query(
        &connector,
        &credentials,
        "query_log_analytics",
        json!({"workspace_id": "../x", "query": "T"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("workspace_id"));
}

// ---- Error mapping ----

#[tokio::test]
async fn provider_errors_map_to_kinds() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let (connector, credentials) = connected(&fake).await;
    let aks = format!(
        "/subscriptions/{SUBSCRIPTION_ID}/providers/Microsoft.ContainerService/managedClusters"
    );
    // 429 after the retries: the wait is kept.
    for _ in 0..3 {
        fake.inject(
            &aks,
            Fault::RateLimited {
                retry_after_secs: 1,
            },
        );
    }
    let error = query(&connector, &credentials, "list_aks_clusters", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(1)));
    assert!(error.message().contains("TooManyRequests"));
    // 5xx.
    for _ in 0..3 {
        fake.inject(&aks, Fault::Unavailable);
    }
    let error = query(&connector, &credentials, "list_aks_clusters", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.provider_status(), Some(503));
    // One 503 is retried away; a 500 is not retried.
    fake.inject(&aks, Fault::Unavailable);
    assert!(
        query(&connector, &credentials, "list_aks_clusters", json!({}))
            .await
            .is_ok()
    );
    fake.inject(&aks, Fault::ServerError);
    let error = query(&connector, &credentials, "list_aks_clusters", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.provider_status(), Some(500));
    assert!(
        error.message().contains("InternalServerError"),
        "{}",
        error.message()
    );
    // 403 AuthorizationFailed: the guide's "Insufficient privileges".
    fake.set_role(CLIENT_ID, Role::None);
    let error = query(&connector, &credentials, "list_aks_clusters", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(
        error
            .message()
            .starts_with("Insufficient privileges for AKS clusters (AuthorizationFailed:"),
        "{}",
        error.message()
    );
    assert!(error.hint().unwrap().contains("Reader"));
    // 401 from a token the fake no longer knows, for a delegated connection.
    let mut delegated =
        Credentials::new(AzureConfig::new(AuthType::Oauth), AzureSecrets::default())
            .with_tokens(patchbay_core::OAuthTokens::bearer("unknown-token".into()));
    delegated.config.subscription_id = Some(SUBSCRIPTION_ID.to_owned());
    let error = query(&connector, &delegated, "list_alerts", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(error.message().contains("InvalidAuthenticationToken"));
    // The token endpoint's own 429 and 5xx.
    let token_path = format!("/{TENANT_ID}/oauth2/v2.0/token");
    let fresh = fake.connector();
    for _ in 0..3 {
        fake.inject(&token_path, Fault::Unavailable);
    }
    let (_, report) = connect(&fresh, form(json!({}))).await;
    assert_eq!(line(&report, "token").outcome, CheckOutcome::Error);
    assert!(line(&report, "token")
        .detail
        .starts_with("Failed to get Azure token"));
}

#[tokio::test]
async fn page_links_to_other_hosts_are_not_followed() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let http = patchbay_testkit::http::client_for_fake("");
    let endpoints = fake.endpoints();
    let cache = TokenCache::default();
    let client = AzureClient::new(&http, &endpoints, &cache, Auth::Delegated("t".into()));
    let error = client
        .next_link("https://evil.example/subscriptions?$skiptoken=1")
        .unwrap_err();
    assert!(
        error
            .message()
            .contains("refused to follow a page link to evil.example"),
        "{}",
        error.message()
    );
    assert!(client
        .next_link(&format!("{}/subscriptions?$skiptoken=2", fake.base_url()))
        .is_ok());
}

// ---- The delegated flow ----

#[tokio::test]
async fn a_delegated_connection_validates_and_queries_but_not_log_analytics() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    let mut options = Map::new();
    options.insert("subscription_id".to_owned(), json!(SECOND_SUBSCRIPTION_ID));
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(fake_azure::grant(
            &fake.delegated_token(),
            options,
        )))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert!(report.passed(), "{:?}", report.checks);
    assert_eq!(
        line(&report, "client_secret_expiry").outcome,
        CheckOutcome::Skipped
    );
    assert_eq!(credentials.config.tenant_id.as_deref(), Some(TENANT_ID));
    assert_eq!(
        credentials.config.subscription_id.as_deref(),
        Some(SECOND_SUBSCRIPTION_ID)
    );
    assert!(
        query(&connector, &credentials, "list_aks_clusters", json!({}))
            .await
            .is_ok()
    );
    let error = query(
        &connector,
        &credentials,
        "query_log_analytics",
        json!({"workspace_id": WORKSPACE_ID, "query": "T"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unsupported);
    let mut bad = Map::new();
    bad.insert("region".to_owned(), json!("x"));
    assert!(connector
        .authenticate(AuthRequest::OAuth(fake_azure::grant("t", bad)))
        .await
        .is_err());
}

fn engine(
    fake: &FakeAzure,
    dir: &std::path::Path,
    records: Arc<dyn patchbay_store::RecordStore>,
) -> OAuthEngine {
    let _ = dir;
    let http = patchbay_testkit::http::client_for_fake(
        &fake.server().override_for("login.microsoftonline.com"),
    );
    let env = ConnectorEnv::from_pairs([
        ("AZURE_CLIENT_ID", fake_azure::OAUTH_CLIENT_ID),
        ("AZURE_CLIENT_SECRET", fake_azure::OAUTH_CLIENT_SECRET),
    ]);
    OAuthEngine::new(http, records, env, "http://localhost:5080".to_owned())
}

/// Starts, begins and authorizes a flow at the fake; the callback parameters and cookie.
async fn authorize(fake: &FakeAzure, engine: &OAuthEngine) -> (CallbackParams, String, String) {
    let started = engine
        .start(&Tenant::user("alice"), &DESCRIPTOR, StartRequest::default())
        .await
        .unwrap();
    let state = started.begin_url.rsplit('/').next().unwrap().to_owned();
    let begun = engine.begin(&state, |_| Some(&DESCRIPTOR)).await.unwrap();
    let authorize_url = begun.authorize_url.clone();
    let at_fake = authorize_url.replacen("https://login.microsoftonline.com", &fake.base_url(), 1);
    let http = patchbay_testkit::http::client_for_fake("");
    let answer = http.get(&at_fake).send().await.unwrap();
    let location = answer
        .header("location")
        .map(str::to_owned)
        .unwrap_or_default();
    let query: Vec<(String, String)> = url::Url::parse(&location)
        .map(|url| url.query_pairs().into_owned().collect())
        .unwrap_or_default();
    let value = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    (
        CallbackParams {
            code: value("code"),
            state: Some(state),
            error: value("error"),
            error_description: value("error_description"),
        },
        begun.cookie.value.expose().clone(),
        authorize_url,
    )
}

#[tokio::test]
async fn the_delegated_flow_runs_against_the_fake_with_pkce_and_refresh() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let dir = tempfile::tempdir().unwrap();
    let records: Arc<dyn patchbay_store::RecordStore> = Arc::new(
        patchbay_store::SqliteRecordStore::open(dir.path().join("records.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let engine = engine(&fake, dir.path(), records);
    let (params, cookie, authorize_url) = authorize(&fake, &engine).await;
    assert!(authorize_url
        .starts_with("https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize?"));
    for part in [
        "code_challenge_method=S256",
        "response_mode=query",
        "offline_access",
        "https%3A%2F%2Fmanagement.azure.com%2Fuser_impersonation",
        "redirect_uri=http%3A%2F%2Flocalhost%3A5080%2Fazure%2Fcallback",
    ] {
        assert!(authorize_url.contains(part), "{part} in {authorize_url}");
    }
    let completed = engine
        .complete(&DESCRIPTOR, params, Some(&cookie))
        .await
        .unwrap();
    let exchange = fake.token_requests().pop().unwrap();
    assert_eq!(exchange.path, "/organizations/oauth2/v2.0/token");
    assert_eq!(exchange.form_value("code_verifier"), Some("[redacted]"));
    assert_eq!(exchange.form_value("client_secret"), Some("[redacted]"));
    let refresh_token = completed
        .grant
        .refresh_token
        .clone()
        .expect("offline_access yields a refresh token");
    let connector = fake.connector();
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(completed.grant))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert!(report.passed(), "{:?}", report.checks);
    assert!(query(&connector, &credentials, "list_alerts", json!({}))
        .await
        .is_ok());
    // Log Analytics needs its own audience: the refresh token is traded for it
    // with Patchbay's app, once, then cached.
    fake.clear_requests();
    for _ in 0..2 {
        let output = query(
            &connector,
            &credentials,
            "query_log_analytics",
            json!({"workspace_id": WORKSPACE_ID, "query": "T | take 3"}),
        )
        .await
        .unwrap();
        assert_eq!(
            output.data["tables"][0]["rows"].as_array().unwrap().len(),
            3
        );
    }
    let traded = fake.token_requests();
    assert_eq!(traded.len(), 1);
    assert_eq!(traded[0].path, "/organizations/oauth2/v2.0/token");
    assert_eq!(traded[0].form_value("grant_type"), Some("refresh_token"));
    assert_eq!(
        traded[0].form_value("scope"),
        Some("https://api.loganalytics.io/.default")
    );
    assert_eq!(traded[0].form_value("client_secret"), Some("[redacted]"));
    // Refresh rotates the refresh token; once revoked, it is refused.
    let refreshed = engine.refresh(&DESCRIPTOR, &refresh_token).await.unwrap();
    assert_ne!(
        refreshed.refresh_token.as_ref().unwrap().expose(),
        refresh_token.expose()
    );
    fake.revoke_refresh_tokens();
    let refused = engine
        .refresh(&DESCRIPTOR, &refresh_token)
        .await
        .unwrap_err();
    assert_eq!(refused.provider_code.as_deref(), Some("invalid_grant"));
    let other = fake.connector();
    let error = query(
        &other,
        &credentials,
        "query_log_analytics",
        json!({"workspace_id": WORKSPACE_ID, "query": "T"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(
        error
            .message()
            .starts_with("Failed to get Azure token (AADSTS700082"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn a_reply_url_mismatch_and_missing_consent_show_the_guide_messages() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let dir = tempfile::tempdir().unwrap();
    let records: Arc<dyn patchbay_store::RecordStore> = Arc::new(
        patchbay_store::SqliteRecordStore::open(dir.path().join("records.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let engine = engine(&fake, dir.path(), records);
    // The registration changed after the person signed in.
    let (params, cookie, _) = authorize(&fake, &engine).await;
    fake.set_registered_redirects(&["https://elsewhere.example/azure/callback"]);
    let error = engine
        .complete(&DESCRIPTOR, params, Some(&cookie))
        .await
        .unwrap_err();
    assert!(
        error
            .message()
            .starts_with(&format!("{REPLY_URL_MISMATCH} (AADSTS50011:")),
        "{}",
        error.message()
    );
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(error
        .hint()
        .unwrap()
        .contains("http://localhost:5080/azure/callback"));
    // Consent missing at the code exchange.
    fake.set_registered_redirects(&[fake_azure::REDIRECT_URI]);
    fake.set_consent_missing(true);
    let (params, cookie, _) = authorize(&fake, &engine).await;
    let error = engine
        .complete(&DESCRIPTOR, params, Some(&cookie))
        .await
        .unwrap_err();
    assert!(
        error
            .message()
            .starts_with(&format!("{INSUFFICIENT_PRIVILEGES} (AADSTS65001")),
        "{}",
        error.message()
    );
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    // A provider error on the callback itself is worded the same way.
    let error = explain_oauth_error(
        "invalid_request",
        Some("AADSTS50011: The redirect URI 'x' does not match."),
        None,
    )
    .unwrap();
    assert!(error.message().starts_with(REPLY_URL_MISMATCH));
    let error = explain_oauth_error(
        "invalid_client",
        Some("AADSTS7000215: Invalid client secret provided."),
        None,
    )
    .unwrap();
    assert!(error.message().starts_with(INVALID_CREDENTIALS));
    assert!(error.hint().unwrap().contains("AZURE_CLIENT_SECRET"));
    assert!(explain_oauth_error("invalid_grant", Some("AADSTS70008: expired"), None).is_none());
}

// ---- The set-up page ----

#[test]
fn the_setup_page_names_the_messages_the_code_produces() {
    let page = include_str!("../../../docs/connectors/azure.md");
    for message in [
        "No enabled subscription found",
        "AADSTS50011: Reply URL mismatch",
        "Insufficient privileges",
        "Invalid Azure credentials",
        "Missing required credentials",
        "readOnlyCredentials must include clientId and clientSecret",
        "Failed to get Azure token",
        "The client secret expires on",
        "No Azure subscription found. Please configure your Azure subscription.",
        "http://localhost:5080/azure/callback",
        "AZURE_CLIENT_ID",
        "AZURE_CLIENT_SECRET",
    ] {
        assert!(
            page.contains(message),
            "docs/connectors/azure.md names \"{message}\""
        );
    }
    for message in [
        "No Azure credentials found. Please authenticate with Azure.",
        "Azure Resource Manager throttled the request",
        "Microsoft Azure OAuth credentials not configured: set AZURE_CLIENT_ID and AZURE_CLIENT_SECRET",
    ] {
        assert!(page.contains(message), "the page lacks \"{message}\"");
    }
    // Every message of the troubleshooting table is in the code, in pieces where the
    // code fills in a part (`{api} throttled the request`, the OAuth engine's wording).
    let source = [
        include_str!("../src/lib.rs"),
        include_str!("../src/auth.rs"),
        include_str!("../src/client.rs"),
        include_str!("../src/query.rs"),
        include_str!("../../../crates/patchbay-oauth/src/errors.rs"),
    ]
    .concat();
    for piece in [
        "No enabled subscription found",
        "Reply URL mismatch",
        "Insufficient privileges",
        "Invalid Azure credentials",
        "Missing required credentials",
        "readOnlyCredentials must include clientId and clientSecret",
        "Failed to get Azure token",
        "The client secret expires on",
        "No Azure credentials found. Please authenticate with Azure.",
        "No Azure subscription found. Please configure your Azure subscription.",
        "\"Azure Resource Manager\"",
        "throttled the request",
        "\"Microsoft Azure\"",
        "OAuth credentials not configured: set {id_var} and {secret_var}",
    ] {
        assert!(source.contains(piece), "the code no longer says {piece:?}");
    }
}

// ---- The fake against Microsoft's published examples ----

#[tokio::test]
async fn the_fake_answers_in_the_shapes_microsoft_documents() {
    let vectors: Value = serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/azure.json"
    )))
    .unwrap();
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let http = patchbay_testkit::http::client_for_fake("");
    // An Entra error body has the documented fields.
    let answer = http
        .post(&format!(
            "{}/{TENANT_ID}/oauth2/v2.0/token",
            fake.base_url()
        ))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", CLIENT_ID),
            ("client_secret", "x"),
            ("scope", "https://management.azure.com/.default"),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = answer.json().unwrap();
    let documented = vectors["oauth_v2"]["token_error_example"]
        .as_object()
        .unwrap();
    for key in documented.keys() {
        assert!(
            body.get(key).is_some(),
            "the fake's error body has `{key}`: {body}"
        );
    }
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000215: "));
    // A subscription has the documented fields and a documented state.
    let connector = fake.connector();
    let (credentials, _) = connect(&connector, form(json!({}))).await;
    let _ = credentials;
    let token = fake
        .issued_tokens()
        .into_iter()
        .find(|token| token.starts_with("eyJarm"))
        .unwrap();
    let answer = http
        .get(&format!(
            "{}/subscriptions?api-version=2022-12-01",
            fake.base_url()
        ))
        .bearer_auth(&token.as_str().into())
        .send()
        .await
        .unwrap();
    let page: Value = answer.json().unwrap();
    let example =
        &vectors["arm_examples"]["GetSubscriptions"]["responses"]["200"]["body"]["value"][0];
    let states = vectors["arm_spec_excerpt"]["Subscription.state.enum"]
        .as_array()
        .unwrap();
    for subscription in page["value"].as_array().unwrap() {
        for key in [
            "id",
            "subscriptionId",
            "tenantId",
            "displayName",
            "state",
            "subscriptionPolicies",
            "authorizationSource",
        ] {
            assert!(
                example.get(key).is_some() && subscription.get(key).is_some(),
                "{key}"
            );
        }
        assert!(states.contains(&subscription["state"]), "{subscription}");
    }
    assert!(
        page["nextLink"].is_string(),
        "the first page links to the next"
    );
}

// ---- The same flow settings against the standard OAuth server ----

/// The Azure descriptor with its authorize and token URLs moved to `oauth2-mock-server`.
fn azure_at_mock(
    authorize_url: &str,
    token_url: &str,
) -> &'static patchbay_core::ConnectorDescriptor {
    let spec = patchbay_core::OAuthSpec {
        authorize_url: Box::leak(authorize_url.to_owned().into_boxed_str()),
        token_url: Box::leak(token_url.to_owned().into_boxed_str()),
        ..DESCRIPTOR.oauth.expect("Azure declares OAuth")
    };
    Box::leak(Box::new(patchbay_core::ConnectorDescriptor {
        id: DESCRIPTOR.id,
        display_name: DESCRIPTOR.display_name,
        category: DESCRIPTOR.category,
        auth_kinds: DESCRIPTOR.auth_kinds,
        env_vars: DESCRIPTOR.env_vars,
        feature_flag: DESCRIPTOR.feature_flag,
        disabled_message: DESCRIPTOR.disabled_message,
        webhook: DESCRIPTOR.webhook,
        oauth: Some(spec),
        connect_schema: DESCRIPTOR.connect_schema,
        operations: DESCRIPTOR.operations,
        build: DESCRIPTOR.build,
    }))
}

#[tokio::test]
async fn needs_oauth_mock_the_azure_flow_settings_work_with_a_standard_provider() {
    let issuer = patchbay_testkit::services::oauth_issuer();
    let http = patchbay_testkit::http::client_for_fake("");
    let discovery: Value = http
        .get(&format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .unwrap();
    let descriptor = azure_at_mock(
        discovery["authorization_endpoint"].as_str().unwrap(),
        discovery["token_endpoint"].as_str().unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let records: Arc<dyn patchbay_store::RecordStore> = Arc::new(
        patchbay_store::SqliteRecordStore::open(dir.path().join("records.db").to_str().unwrap())
            .await
            .unwrap(),
    );
    let env = ConnectorEnv::from_pairs([
        ("AZURE_CLIENT_ID", "patchbay-azure-client"),
        ("AZURE_CLIENT_SECRET", "patchbay-azure-client-secret"),
    ]);
    let engine = OAuthEngine::new(
        patchbay_http::HttpClient::new(patchbay_http::HttpConfig::default()).unwrap(),
        records,
        env,
        "http://localhost:5080".to_owned(),
    );
    let mut options = Map::new();
    options.insert("subscription_id".to_owned(), json!(SUBSCRIPTION_ID));
    let started = engine
        .start(
            &Tenant::user("alice"),
            descriptor,
            StartRequest {
                options,
                ..StartRequest::default()
            },
        )
        .await
        .unwrap();
    let state = started.begin_url.rsplit('/').next().unwrap().to_owned();
    let begun = engine.begin(&state, |_| Some(descriptor)).await.unwrap();
    assert!(begun.authorize_url.contains("code_challenge_method=S256"));
    assert!(begun.authorize_url.contains("offline_access"));
    let answer = http.get(&begun.authorize_url).send().await.unwrap();
    let location = answer
        .header("location")
        .expect("the mock redirects back")
        .to_owned();
    assert!(
        location.starts_with("http://localhost:5080/azure/callback?"),
        "{location}"
    );
    let query: Vec<(String, String)> = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect();
    let value = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let completed = engine
        .complete(
            descriptor,
            CallbackParams {
                code: value("code"),
                state: value("state"),
                error: None,
                error_description: None,
            },
            Some(begun.cookie.value.expose()),
        )
        .await
        .expect("the mock accepts the code, the PKCE verifier and the client secret in the body");
    let refresh = completed.grant.refresh_token.clone();
    let connector =
        AzureConnector::new(http.clone(), patchbay_connector_azure::Endpoints::default());
    let credentials = connector
        .authenticate(AuthRequest::OAuth(completed.grant))
        .await
        .unwrap();
    assert_eq!(credentials.config.auth_type, AuthType::Oauth);
    assert_eq!(
        credentials.config.subscription_id.as_deref(),
        Some(SUBSCRIPTION_ID)
    );
    assert!(credentials.tokens.is_some());
    let refresh = refresh.expect("offline_access yields a refresh token");
    let refreshed = engine.refresh(descriptor, &refresh).await.unwrap();
    assert!(!refreshed.access_token.expose().is_empty());
}

#[tokio::test]
async fn the_read_only_principal_s_read_and_secret_expiry_lines_fail_on_their_own() {
    let fake = FakeAzure::start(SECRET, READ_ONLY_SECRET).await;
    let connector = fake.connector();
    let ro = json!({"read_only_client_id": READ_ONLY_CLIENT_ID, "read_only_client_secret": READ_ONLY_SECRET});
    // A read-only principal that sees the subscription but may not read its resources.
    fake.set_role(READ_ONLY_CLIENT_ID, Role::ActionsOnly);
    let (_, report) = connect(&connector, form(ro.clone())).await;
    assert_eq!(line(&report, "permission_read").outcome, CheckOutcome::Ok);
    let read = line(&report, "read_only_permission_read");
    assert_eq!(read.outcome, CheckOutcome::Failed, "{read:?}");
    assert!(
        read.detail
            .starts_with("Insufficient privileges: the principal cannot read"),
        "{}",
        read.detail
    );
    // The read-only principal's own secret about to lapse is its own warning.
    fake.set_role(READ_ONLY_CLIENT_ID, Role::Reader);
    fake.set_secret_expiry(
        READ_ONLY_CLIENT_ID,
        Utc::now() + Duration::days(3) + Duration::hours(1),
    );
    let (_, report) = connect(&connector, form(ro)).await;
    assert_eq!(
        line(&report, "client_secret_expiry").outcome,
        CheckOutcome::Ok
    );
    let expiry = line(&report, "read_only_client_secret_expiry");
    assert_eq!(expiry.outcome, CheckOutcome::Failed, "{expiry:?}");
    assert!(!expiry.mandatory);
    assert!(
        expiry.detail.contains("The client secret expires on")
            && expiry.detail.contains("in 3 day(s)"),
        "{}",
        expiry.detail
    );
    assert!(report.passed(), "{report:?}");
}
