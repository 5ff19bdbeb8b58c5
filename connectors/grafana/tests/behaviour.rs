//! Behaviour users rely on, against the fake Grafana: the SSRF policy on the
//! Grafana URL, each validation check failing, paging and caps of every
//! operation, error mapping, and webhook authentication and normalisation with
//! Grafana's vectors.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use patchbay_connector_grafana::fake::{
    sample_payload, test_payload, FakeGrafana, Fault, ProviderFake, ACTIVE_ALERT_COUNT,
    ANNOTATION_COUNT, DASHBOARD_COUNT, LOGIN, LOKI_UID, MANY_SERIES, ORG_NAME, PROMETHEUS_UID,
    RULES_PER_GROUP, RULE_GROUP_COUNT, VERSION,
};
use patchbay_connector_grafana::webhook::{dedup_key, sign, TEST_REPLY};
use patchbay_connector_grafana::{GrafanaConnector, CHECKED_PERMISSIONS};
use patchbay_core::{
    AlertSeverity, AlertStatus, AuthRequest, CheckOutcome, ConnectorContext, DynConnector,
    DynCredentials, Error, ErrorKind, FormFields, InboundWebhook, NormalizedAlert, QueryOutput,
    ValidationReport, ValidationStatus, WebhookKey, WebhookOutcome,
};
use patchbay_http::{AddressPolicy, Bytes, HeaderMap, HttpClient, HttpConfig};
use patchbay_testkit::contract::with_webhook_secret;
use serde_json::{json, Value};

const TOKEN: &str = "glsa_behaviour-token-7f3a";
const WEBHOOK_SECRET: &str = "behaviour-webhook-secret-51c0";

fn vectors() -> Value {
    let text = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/grafana.json"
    ));
    serde_json::from_str(text).expect("the Grafana vectors are JSON")
}

fn ctx() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some("behaviour-connection".to_owned()),
        tenant: None,
    }
}

fn form(value: Value) -> AuthRequest {
    match value {
        Value::Object(map) => AuthRequest::Form(FormFields(map)),
        other => panic!("forms are objects, got {other}"),
    }
}

/// A connector with the default policy (no allowlist): it may reach nothing private.
fn strict_connector() -> Arc<dyn DynConnector> {
    Arc::new(GrafanaConnector::new(
        HttpClient::new(HttpConfig::default()).unwrap(),
    ))
}

fn connector_allowing(networks: &str) -> Arc<dyn DynConnector> {
    Arc::new(GrafanaConnector::new(
        HttpClient::new(HttpConfig {
            address_policy: AddressPolicy::parse(networks).unwrap(),
            max_retries: 0,
            ..HttpConfig::default()
        })
        .unwrap(),
    ))
}

async fn connected(
    fake: &FakeGrafana,
) -> (Arc<dyn DynConnector>, DynCredentials, ValidationReport) {
    let connector: Arc<dyn DynConnector> = Arc::new(fake.connector());
    let mut credentials = connector
        .authenticate(form(fake.form(TOKEN)))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    (connector, credentials, report)
}

async fn query(
    connector: &Arc<dyn DynConnector>,
    credentials: &DynCredentials,
    operation: &str,
    params: Value,
) -> Result<QueryOutput, Error> {
    connector
        .query(&ctx(), credentials, operation, params)
        .await
}

fn check<'r>(report: &'r ValidationReport, id: &str) -> &'r patchbay_core::ValidationCheck {
    report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:?}"))
}

// --- SSRF policy on the Grafana URL ---

async fn refused_at_connect(connector: &Arc<dyn DynConnector>, url: &str) -> Error {
    let attempt = connector
        .authenticate(form(
            json!({"base_url": url, "api_token": TOKEN, "allow_http": true}),
        ))
        .await;
    let Err(error) = attempt else {
        panic!("{url} was admitted");
    };
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{url}: {error}");
    assert_eq!(error.field(), Some("base_url"), "{url}");
    assert!(!error.to_string().contains(TOKEN));
    error
}

#[tokio::test]
async fn internal_addresses_are_refused_at_connect_naming_host_and_rule() {
    let connector = strict_connector();
    for (url, host, rule) in [
        ("https://127.0.0.1:3000", "127.0.0.1", "a loopback address"),
        (
            "https://10.0.0.1",
            "10.0.0.1",
            "a private address (RFC 1918)",
        ),
        (
            "https://169.254.169.254/latest/meta-data",
            "169.254.169.254",
            "a cloud metadata address",
        ),
        ("https://[::1]:3000", "::1", "a loopback address"),
    ] {
        let error = refused_at_connect(&connector, url).await;
        let message = error.message();
        assert!(
            message.contains(&format!("{host} is {rule}")),
            "{url}: {message}"
        );
        assert!(
            message.contains("PATCHBAY_ALLOWED_PRIVATE_NETWORKS"),
            "{url}: {message}"
        );
    }
}

#[tokio::test]
async fn a_host_name_resolving_to_a_private_address_is_refused_before_connecting() {
    // The fake listens on loopback; `localhost` resolves there, and without the
    // allowlist the resolver refuses it, so nothing reaches the fake.
    let fake = FakeGrafana::start(TOKEN).await;
    let port = fake.server().address().port();
    let connector = strict_connector();
    let url = format!("https://localhost:{port}");
    let mut credentials = connector
        .authenticate(form(json!({"base_url": url, "api_token": TOKEN})))
        .await
        .expect("a host name passes the connect-time check; it is checked once resolved");
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed, "{report:?}");
    let user = check(&report, "user");
    assert!(
        user.detail.contains("localhost resolves to") && user.detail.contains("a loopback address"),
        "{}",
        user.detail
    );
    let error = query(&connector, &credentials, "list_datasources", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("base_url"));
    assert!(error.message().contains("localhost"), "{error}");
    assert!(
        fake.requests().is_empty(),
        "nothing may reach a refused address"
    );
}

#[tokio::test]
async fn plain_http_needs_the_tenants_opt_in_and_the_operators_allowlist() {
    let connector = strict_connector();
    let error = connector
        .authenticate(form(
            json!({"base_url": "http://grafana.example.com", "api_token": TOKEN}),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("base_url"));
    assert!(
        error.message().contains("grafana.example.com")
            && error.message().contains("must use https"),
        "{error}"
    );
    let error = refused_at_connect(&connector, "http://grafana.example.com").await;
    assert!(error.message().contains("plain http"), "{error}");
    let error = refused_at_connect(&connector, "http://93.184.216.34").await;
    assert!(error.message().contains("plain http"), "{error}");
}

#[tokio::test]
async fn the_allowlist_admits_exactly_what_it_names() {
    let policy = AddressPolicy::parse("127.0.0.1/32").unwrap();
    let ip = |text: &str| text.parse::<IpAddr>().unwrap();
    assert!(policy.check(ip("127.0.0.1")).is_ok());
    for refused in ["127.0.0.2", "10.0.0.1", "169.254.169.254", "::1"] {
        assert!(policy.check(ip(refused)).is_err(), "{refused}");
    }

    let fake = FakeGrafana::start(TOKEN).await;
    let port = fake.server().address().port();
    let connector = connector_allowing("127.0.0.1/32");
    let mut credentials = connector
        .authenticate(form(fake.form(TOKEN)))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert!(report.passed(), "{report:?}");
    for url in [
        format!("http://127.0.0.2:{port}"),
        "https://10.0.0.1".to_owned(),
        format!("http://[::1]:{port}"),
    ] {
        refused_at_connect(&connector, &url).await;
    }
}

#[tokio::test]
async fn every_request_is_checked_not_only_the_connect_form() {
    // Settings stored before an operator narrowed the allowlist: the request is refused.
    let connector = strict_connector();
    let credentials = DynCredentials {
        config: json!({"base_url": "https://10.0.0.1", "webhook_auth": "hmac"}),
        secrets: patchbay_core::RevealedJson::new(json!({"api_token": TOKEN})),
    };
    let error = query(&connector, &credentials, "list_datasources", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("base_url"));
    assert!(
        error
            .message()
            .contains("10.0.0.1 is a private address (RFC 1918)"),
        "{error}"
    );
}

// --- Validation ---

#[tokio::test]
async fn a_good_token_passes_every_check_and_fills_the_settings() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (_, credentials, report) = connected(&fake).await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    let ids: Vec<&str> = report
        .checks
        .iter()
        .map(|check| check.id.as_str())
        .collect();
    let mut expected = vec!["health", "user", "org"];
    let permissions: Vec<String> = CHECKED_PERMISSIONS
        .iter()
        .map(|permission| format!("permission:{permission}"))
        .collect();
    expected.extend(permissions.iter().map(String::as_str));
    expected.push("datasources");
    assert_eq!(ids, expected);
    assert!(check(&report, "health").detail.contains(VERSION));
    assert!(check(&report, "datasources")
        .detail
        .contains("1 Prometheus, 1 Loki"));
    let config = &credentials.config;
    assert_eq!(config["version"], VERSION);
    assert_eq!(config["login"], LOGIN);
    assert_eq!(config["org_name"], ORG_NAME);
    assert_eq!(config["org_id"], 1);
    assert_eq!(config["webhook_auth"], "hmac");
    let requests = fake.requests();
    assert!(requests.iter().all(|request| request.method == "GET"));
    assert!(requests
        .iter()
        .filter(|request| request.path != "/api/health")
        .all(|request| request.has_header("authorization")));
}

#[tokio::test]
async fn a_rejected_token_fails_the_mandatory_check_and_skips_the_rest() {
    let fake = FakeGrafana::start(TOKEN).await;
    let connector: Arc<dyn DynConnector> = Arc::new(fake.connector());
    let mut credentials = connector
        .authenticate(form(fake.form("glsa_wrong")))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    let user = check(&report, "user");
    assert_eq!(user.outcome, CheckOutcome::Failed);
    assert_eq!(user.provider_status, Some(401));
    assert!(
        user.detail
            .contains("Failed to validate Grafana credentials"),
        "{}",
        user.detail
    );
    for skipped in report.checks.iter().skip(2) {
        assert_eq!(skipped.outcome, CheckOutcome::Skipped, "{}", skipped.id);
    }
}

#[tokio::test]
async fn an_unreachable_health_endpoint_is_reported_but_does_not_block() {
    let fake = FakeGrafana::start(TOKEN).await;
    for _ in 0..3 {
        fake.inject("/api/health", Fault::Unavailable);
    }
    let (_, _, report) = connected(&fake).await;
    assert!(report.passed(), "{report:?}");
    assert_eq!(check(&report, "health").outcome, CheckOutcome::Error);
    assert_eq!(report.overall, ValidationStatus::Degraded);
}

#[tokio::test]
async fn a_token_without_an_organisation_fails_the_mandatory_org_check() {
    let fake = FakeGrafana::start(TOKEN).await;
    fake.forbid("/api/org");
    let (_, _, report) = connected(&fake).await;
    assert_eq!(report.overall, ValidationStatus::Failed);
    let org = check(&report, "org");
    assert!(org.mandatory);
    assert_eq!(org.outcome, CheckOutcome::Failed);
    assert_eq!(org.provider_status, Some(403));
}

#[tokio::test]
async fn each_missing_permission_gets_its_own_line_naming_it_and_the_role() {
    for permission in CHECKED_PERMISSIONS {
        let fake = FakeGrafana::start(TOKEN).await;
        fake.revoke_permission(permission);
        let (_, _, report) = connected(&fake).await;
        assert!(report.passed(), "optional checks do not block: {report:?}");
        assert_eq!(report.overall, ValidationStatus::Degraded);
        for other in CHECKED_PERMISSIONS {
            let line = check(&report, &format!("permission:{other}"));
            if other == permission {
                assert_eq!(line.outcome, CheckOutcome::Failed, "{other}");
                assert!(
                    line.detail.contains(&format!("lacks `{permission}`")),
                    "{}",
                    line.detail
                );
                assert!(line.detail.contains("Viewer role"), "{}", line.detail);
            } else {
                assert_eq!(
                    line.outcome,
                    CheckOutcome::Ok,
                    "{other} with {permission} revoked"
                );
            }
        }
    }
}

#[tokio::test]
async fn a_viewer_without_datasources_read_is_told_which_role_grants_it() {
    let fake = FakeGrafana::start(TOKEN).await;
    fake.revoke_permission("datasources:read");
    let (connector, credentials, report) = connected(&fake).await;
    let line = check(&report, "datasources");
    assert_eq!(line.outcome, CheckOutcome::Failed);
    assert!(line.detail.contains("datasources:read"), "{}", line.detail);
    assert!(
        line.detail.contains("fixed:datasources:reader"),
        "{}",
        line.detail
    );
    assert_eq!(report.overall, ValidationStatus::Degraded);
    // Querying still works when the caller names the data source's type.
    let output = query(
        &connector,
        &credentials,
        "query_datasource",
        json!({"datasource_uid": PROMETHEUS_UID, "expr": "up", "datasource_type": "prometheus"}),
    )
    .await
    .unwrap();
    assert_eq!(output.data["series"].as_array().unwrap().len(), 3);
    let error = query(
        &connector,
        &credentials,
        "query_datasource",
        json!({"datasource_uid": PROMETHEUS_UID, "expr": "up"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert_eq!(error.field(), Some("datasource_type"));
}

#[tokio::test]
async fn a_grafana_without_the_permissions_api_says_the_lines_were_not_checked() {
    let fake = FakeGrafana::start(TOKEN).await;
    fake.hide("/api/access-control/user/permissions");
    let (_, _, report) = connected(&fake).await;
    assert_eq!(report.overall, ValidationStatus::Ok);
    for permission in CHECKED_PERMISSIONS {
        let line = check(&report, &format!("permission:{permission}"));
        assert!(line.detail.starts_with("not checked"), "{}", line.detail);
    }
}

// --- Operations: paging and caps ---

#[tokio::test]
async fn search_dashboards_pages_through_every_dashboard() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let mut uids = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({"limit": 20, "tags": ["prod"], "query": "service"});
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let page = query(&connector, &credentials, "search_dashboards", params)
            .await
            .unwrap();
        pages += 1;
        for dashboard in page.data["dashboards"].as_array().unwrap() {
            uids.push(dashboard["uid"].as_str().unwrap().to_owned());
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(
        uids.len(),
        DASHBOARD_COUNT / 2,
        "the even dashboards are tagged prod"
    );
    assert_eq!(pages, 2);
    let requests = fake.requests_to("/api/search");
    assert_eq!(requests[0].query_value("type"), Some("dash-db"));
    assert_eq!(requests[0].query_value("tag"), Some("prod"));
    assert_eq!(requests[0].query_value("query"), Some("service"));
    let numbers: Vec<_> = requests
        .iter()
        .map(|request| request.query_value("page"))
        .collect();
    assert_eq!(numbers, [Some("1"), Some("2")]);
}

#[tokio::test]
async fn get_dashboard_flattens_rows_and_names_a_missing_uid() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let output = query(
        &connector,
        &credentials,
        "get_dashboard",
        json!({"uid": "dash-02"}),
    )
    .await
    .unwrap();
    let panels = output.data["panels"].as_array().unwrap();
    assert_eq!(panels.len(), 2);
    assert_eq!(panels[1]["row"], "Logs");
    assert_eq!(panels[1]["datasource"]["uid"], LOKI_UID);
    assert_eq!(output.data["variables"][0]["name"], "job");
    let error = query(
        &connector,
        &credentials,
        "get_dashboard",
        json!({"uid": "nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.message().contains("Dashboard not found"), "{error}");
}

#[tokio::test]
async fn list_datasources_filters_by_type() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let all = query(&connector, &credentials, "list_datasources", json!({}))
        .await
        .unwrap();
    assert_eq!(all.data["datasources"].as_array().unwrap().len(), 3);
    assert!(all.data["datasources"][0].get("url").is_none());
    let loki = query(
        &connector,
        &credentials,
        "list_datasources",
        json!({"type": "loki"}),
    )
    .await
    .unwrap();
    assert_eq!(
        loki.data["datasources"],
        json!([{"uid": LOKI_UID, "name": "Loki", "type": "loki", "isDefault": false, "access": "proxy"}])
    );
}

#[tokio::test]
async fn prometheus_queries_look_up_the_type_and_send_a_range_query() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let output = query(
        &connector,
        &credentials,
        "query_datasource",
        json!({"datasource_uid": PROMETHEUS_UID, "expr": "sum(rate(http_requests_total[5m]))"}),
    )
    .await
    .unwrap();
    assert!(!output.truncated);
    let series = output.data["series"].as_array().unwrap();
    assert_eq!(series.len(), 3);
    assert_eq!(series[0]["labels"]["instance"], "web-0");
    assert_eq!(series[0]["points"].as_array().unwrap().len(), 200);
    assert_eq!(fake.requests_to("/api/datasources/uid/prom-main").len(), 1);
    let sent = fake.requests_to("/api/ds/query")[0].body.clone().unwrap();
    let query_sent = &sent["queries"][0];
    assert_eq!(
        query_sent["datasource"],
        json!({"uid": PROMETHEUS_UID, "type": "prometheus"})
    );
    assert_eq!(query_sent["range"], true);
    assert_eq!(query_sent["refId"], "A");
    let from: i64 = sent["from"].as_str().unwrap().parse().unwrap();
    let to: i64 = sent["to"].as_str().unwrap().parse().unwrap();
    assert_eq!(to - from, 3_600_000, "the default window is one hour");
}

#[tokio::test]
async fn loki_queries_return_log_lines_capped_by_max_lines() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let output = query(
        &connector,
        &credentials,
        "query_datasource",
        json!({"datasource_uid": LOKI_UID, "expr": "{app=\"checkout\"} |= \"error\"", "datasource_type": "loki", "max_lines": 10}),
    )
    .await
    .unwrap();
    let lines = output.data["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 10);
    assert!(lines[0]["line"]
        .as_str()
        .unwrap()
        .contains("payment failed"));
    assert_eq!(lines[0]["labels"]["app"], "checkout");
    let sent = fake.requests_to("/api/ds/query")[0].body.clone().unwrap();
    assert_eq!(sent["queries"][0]["queryType"], "range");
    assert_eq!(sent["queries"][0]["maxLines"], 10);
}

#[tokio::test]
async fn series_are_capped_and_the_window_is_bounded() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let base = json!({"datasource_uid": PROMETHEUS_UID, "expr": "many_series", "datasource_type": "prometheus", "max_data_points": 10});
    let output = query(&connector, &credentials, "query_datasource", base.clone())
        .await
        .unwrap();
    assert!(output.truncated);
    assert_eq!(output.data["series"].as_array().unwrap().len(), 100);
    assert_eq!(output.data["series_total"], MANY_SERIES);
    // With 200 points a series, the byte cap stops adding series before 100.
    let mut dense = base.clone();
    dense["max_data_points"] = json!(200);
    let output = query(&connector, &credentials, "query_datasource", dense)
        .await
        .unwrap();
    assert!(output.truncated);
    let kept = output.data["series"].as_array().unwrap().len();
    assert!(kept > 0 && kept < 100, "{kept}");
    assert!(
        output.data.to_string().len()
            <= patchbay_connector_grafana::query::MAX_QUERY_BYTES + 16 * 1024
    );
    let mut few = base.clone();
    few["max_series"] = json!(10);
    let output = query(&connector, &credentials, "query_datasource", few)
        .await
        .unwrap();
    assert_eq!(output.data["series"].as_array().unwrap().len(), 10);
    assert!(output.truncated);

    let mut wide = base.clone();
    wide["from"] = json!("now-8d");
    let error = query(&connector, &credentials, "query_datasource", wide)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("from"));
    let mut too_many = base;
    too_many["max_series"] = json!(500);
    let error = query(&connector, &credentials, "query_datasource", too_many)
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("max_series"));
}

#[tokio::test]
async fn a_query_error_passes_the_data_sources_message_through() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let error = query(
        &connector,
        &credentials,
        "query_datasource",
        json!({"datasource_uid": PROMETHEUS_UID, "expr": "bad(", "datasource_type": "prometheus"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("expr"));
    assert!(
        error
            .message()
            .contains("parse error: unclosed left parenthesis"),
        "{error}"
    );
    assert_eq!(
        fake.requests_to("/api/ds/query").len(),
        1,
        "a 400 is not retried"
    );
}

#[tokio::test]
async fn list_alert_rules_pages_by_group_and_filters_by_state() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let mut rules = 0;
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({"group_limit": 2});
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let page = query(&connector, &credentials, "list_alert_rules", params)
            .await
            .unwrap();
        pages += 1;
        rules += page.data["rules"].as_array().unwrap().len();
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(rules, RULE_GROUP_COUNT * RULES_PER_GROUP);
    let firing = query(
        &connector,
        &credentials,
        "list_alert_rules",
        json!({"state": "firing", "group_limit": 100}),
    )
    .await
    .unwrap();
    let firing = firing.data["rules"].as_array().unwrap();
    assert_eq!(firing.len(), RULE_GROUP_COUNT);
    assert!(firing
        .iter()
        .all(|rule| rule["state"] == "firing" && rule["active_instances"] == 1));
    assert_eq!(firing[0]["uid"], "rule-0-0");
    assert_eq!(firing[0]["folder"], "Payments");
}

#[tokio::test]
async fn list_active_alerts_caps_and_passes_matchers() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let output = query(
        &connector,
        &credentials,
        "list_active_alerts",
        json!({"limit": 5}),
    )
    .await
    .unwrap();
    assert!(output.truncated);
    assert_eq!(output.data["alerts"].as_array().unwrap().len(), 5);
    assert_eq!(output.data["total"], ACTIVE_ALERT_COUNT);
    let critical = query(
        &connector,
        &credentials,
        "list_active_alerts",
        json!({"filter": ["severity=\"critical\""]}),
    )
    .await
    .unwrap();
    assert!(!critical.truncated);
    assert_eq!(
        critical.data["alerts"].as_array().unwrap().len(),
        ACTIVE_ALERT_COUNT / 3
    );
    let sent = fake.requests_to("/api/alertmanager/grafana/api/v2/alerts");
    assert_eq!(sent[1].query_value("filter"), Some("severity=\"critical\""));
    assert_eq!(sent[1].query_value("active"), Some("true"));
    assert_eq!(sent[1].query_value("silenced"), Some("false"));
}

#[tokio::test]
async fn list_annotations_pages_back_in_time_without_repeats() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    let mut ids = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut params = json!({"limit": 100});
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let page = query(&connector, &credentials, "list_annotations", params)
            .await
            .unwrap();
        pages += 1;
        for annotation in page.data["annotations"].as_array().unwrap() {
            assert!(
                ids.insert(annotation["id"].as_i64().unwrap()),
                "repeated {annotation}"
            );
        }
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(ids.len(), ANNOTATION_COUNT);
    assert_eq!(pages, 3);
    let deploys = query(
        &connector,
        &credentials,
        "list_annotations",
        json!({"tags": ["deploy"], "from": "now-2h"}),
    )
    .await
    .unwrap();
    assert_eq!(deploys.data["annotations"].as_array().unwrap().len(), 3);
    let error = query(
        &connector,
        &credentials,
        "list_annotations",
        json!({"from": "now-30d"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.field(), Some("from"));
}

// --- Error mapping ---

#[tokio::test]
async fn provider_statuses_map_to_error_kinds_with_grafanas_message() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;

    let mut wrong = credentials.clone();
    wrong.secrets = patchbay_core::RevealedJson::new(json!({"api_token": "glsa_revoked"}));
    let error = query(&connector, &wrong, "list_datasources", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(error.message().contains("Invalid API key"), "{error}");
    assert!(error.hint().unwrap().contains("service account token"));

    fake.revoke_permission("alert.rules:read");
    let error = query(&connector, &credentials, "list_alert_rules", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert_eq!(error.provider_status(), Some(403));
    assert!(
        error.hint().unwrap().contains("alert.rules:read"),
        "{error:?}"
    );
    assert!(error.hint().unwrap().contains("Viewer role"), "{error:?}");

    fake.inject(
        "/api/annotations",
        Fault::RateLimited {
            retry_after_secs: 3600,
        },
    );
    let error = query(&connector, &credentials, "list_annotations", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(3600)));

    for _ in 0..3 {
        fake.inject("/api/search", Fault::ServerError);
    }
    let error = query(&connector, &credentials, "search_dashboards", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.provider_status(), Some(500));
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out() {
    let fake = FakeGrafana::start(TOKEN).await;
    let (connector, credentials, _) = connected(&fake).await;
    fake.inject(
        "/api/ds/query",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let started = std::time::Instant::now();
    let output = query(
        &connector,
        &credentials,
        "query_datasource",
        json!({"datasource_uid": PROMETHEUS_UID, "expr": "up", "datasource_type": "prometheus"}),
    )
    .await
    .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(output.data["series"].as_array().unwrap().len(), 3);
    assert_eq!(
        fake.requests_to("/api/ds/query").len(),
        2,
        "the read POST is retried"
    );
}

// --- Webhooks ---

/// A connector whose connections hold `WEBHOOK_SECRET`, and credentials from `form`.
async fn webhook_connection(fields: Value) -> (Arc<dyn DynConnector>, DynCredentials) {
    let connector = with_webhook_secret(strict_connector(), WEBHOOK_SECRET);
    let mut value = json!({"base_url": "https://acme.grafana.net", "api_token": TOKEN});
    for (key, field) in fields.as_object().unwrap() {
        value[key] = field.clone();
    }
    let credentials = connector.authenticate(form(value)).await.unwrap();
    (connector, credentials)
}

fn request(headers: &[(&str, &str)], body: &str) -> InboundWebhook {
    let mut map = HeaderMap::new();
    map.insert("content-type", "application/json".parse().unwrap());
    for (name, value) in headers {
        map.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    InboundWebhook {
        headers: map,
        body: Bytes::from(body.to_owned()),
    }
}

async fn verify(
    connector: &Arc<dyn DynConnector>,
    credentials: &DynCredentials,
    delivery: &InboundWebhook,
) -> Result<patchbay_core::VerifiedDelivery, Error> {
    let key = WebhookKey::Connection {
        config: &credentials.config,
        secrets: &credentials.secrets,
    };
    connector.verify(&ctx(), key, delivery).await
}

async fn refused(
    connector: &Arc<dyn DynConnector>,
    credentials: &DynCredentials,
    delivery: &InboundWebhook,
    what: &str,
) {
    match verify(connector, credentials, delivery).await {
        Ok(_) => panic!("{what} was accepted"),
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::AuthFailed, "{what}: {error}");
            assert!(!format!("{error:?}").contains(WEBHOOK_SECRET), "{what}");
        }
    }
}

async fn normalized(body: &Value) -> WebhookOutcome {
    let (connector, credentials) = webhook_connection(json!({"webhook_auth": "bearer"})).await;
    let auth = format!("Bearer {WEBHOOK_SECRET}");
    let delivery = verify(
        &connector,
        &credentials,
        &request(&[("authorization", &auth)], &body.to_string()),
    )
    .await
    .unwrap();
    connector
        .normalize(&ctx(), &credentials.config, &delivery)
        .await
        .unwrap()
}

#[test]
fn signatures_match_grafanas_vectors() {
    let vectors = vectors();
    let cases = vectors["hmac_signature"]["vectors_DERIVED"]
        .as_array()
        .unwrap();
    assert_eq!(cases.len(), 4);
    for case in cases {
        let secret = case["secret"].as_str().unwrap();
        let body = case["body"].as_str().unwrap();
        let timestamp = case["timestamp"].as_str();
        assert_eq!(
            sign(secret.as_bytes(), timestamp, body.as_bytes()),
            case["expected"].as_str().unwrap(),
            "{}",
            case["name"]
        );
    }
    assert_eq!(
        vectors["hmac_signature"]["default_header"],
        patchbay_connector_grafana::DEFAULT_SIGNATURE_HEADER
    );
}

#[tokio::test]
async fn hmac_deliveries_verify_and_every_tampered_one_is_refused() {
    let vectors = vectors();
    let docs = &vectors["hmac_signature"]["vectors_DERIVED"][3];
    let body = docs["body"].as_str().unwrap();
    let (connector, credentials) = webhook_connection(json!({})).await;
    let good = sign(WEBHOOK_SECRET.as_bytes(), None, body.as_bytes());
    let header = "X-Grafana-Alerting-Signature";
    verify(&connector, &credentials, &request(&[(header, &good)], body))
        .await
        .expect("a body signed with the connection's secret verifies");
    verify(
        &connector,
        &credentials,
        &request(&[(header, &good.to_uppercase())], body),
    )
    .await
    .expect("hex is read in either case");

    let forged = sign(b"not-the-secret", None, body.as_bytes());
    refused(
        &connector,
        &credentials,
        &request(&[(header, &forged)], body),
        "a forged signature",
    )
    .await;
    refused(
        &connector,
        &credentials,
        &request(&[], body),
        "a missing signature",
    )
    .await;
    refused(
        &connector,
        &credentials,
        &request(&[(header, &good)], &format!("{body} ")),
        "an altered body",
    )
    .await;
    refused(
        &connector,
        &credentials,
        &request(&[(header, &format!("sha256={good}"))], body),
        "a prefixed signature",
    )
    .await;
    refused(
        &connector,
        &credentials,
        &request(&[("X-Grafana-Alert-Signature", &good)], body),
        "another header",
    )
    .await;
    let bearer = format!("Bearer {WEBHOOK_SECRET}");
    refused(
        &connector,
        &credentials,
        &request(&[("authorization", &bearer)], body),
        "a bearer token on an HMAC connection",
    )
    .await;
}

#[tokio::test]
async fn the_signature_header_is_configurable() {
    let (connector, credentials) =
        webhook_connection(json!({"signature_header": "X-Grafana-Alert-Signature"})).await;
    let body = "test message";
    let good = sign(WEBHOOK_SECRET.as_bytes(), None, body.as_bytes());
    verify(
        &connector,
        &credentials,
        &request(&[("x-grafana-alert-signature", &good)], body),
    )
    .await
    .unwrap();
    refused(
        &connector,
        &credentials,
        &request(&[("X-Grafana-Alerting-Signature", &good)], body),
        "the default header when another is configured",
    )
    .await;
}

#[tokio::test]
async fn timestamped_signatures_cover_the_timestamp_within_300_seconds() {
    let vectors = vectors();
    let docs = &vectors["hmac_signature"]["vectors_DERIVED"][3];
    let body = docs["body"].as_str().unwrap();
    let ts_header = "X-Grafana-Alerting-Timestamp";
    let header = "X-Grafana-Alerting-Signature";
    let (connector, credentials) = webhook_connection(json!({"timestamp_header": ts_header})).await;

    // Grafana's own vector, signed at 1700000000 with its own secret: long stale.
    let official = request(
        &[
            (header, docs["expected"].as_str().unwrap()),
            (ts_header, docs["timestamp"].as_str().unwrap()),
        ],
        body,
    );
    refused(
        &connector,
        &credentials,
        &official,
        "the vector's 2023 timestamp",
    )
    .await;

    let signed_at = |at: i64| {
        let ts = at.to_string();
        let signature = sign(WEBHOOK_SECRET.as_bytes(), Some(&ts), body.as_bytes());
        request(&[(header, &signature), (ts_header, &ts)], body)
    };
    let now = chrono::Utc::now().timestamp();
    verify(&connector, &credentials, &signed_at(now))
        .await
        .unwrap();
    verify(&connector, &credentials, &signed_at(now - 290))
        .await
        .unwrap();
    refused(
        &connector,
        &credentials,
        &signed_at(now - 400),
        "a stale timestamp",
    )
    .await;
    refused(
        &connector,
        &credentials,
        &signed_at(now + 400),
        "a future timestamp",
    )
    .await;
    let ts = now.to_string();
    let signature = sign(WEBHOOK_SECRET.as_bytes(), Some(&ts), body.as_bytes());
    refused(
        &connector,
        &credentials,
        &request(
            &[(header, &signature), (ts_header, &(now - 1).to_string())],
            body,
        ),
        "a moved timestamp",
    )
    .await;
    refused(
        &connector,
        &credentials,
        &request(&[(header, &signature)], body),
        "a missing timestamp",
    )
    .await;
    let unsigned_ts = sign(WEBHOOK_SECRET.as_bytes(), None, body.as_bytes());
    refused(
        &connector,
        &credentials,
        &request(&[(header, &unsigned_ts), (ts_header, &ts)], body),
        "a signature over the body alone",
    )
    .await;
}

#[tokio::test]
async fn bearer_deliveries_need_the_connections_secret() {
    let (connector, credentials) = webhook_connection(json!({"webhook_auth": "bearer"})).await;
    let body = sample_payload("fp1", "firing", "2026-12-01T10:00:00Z").to_string();
    for good in [
        format!("Bearer {WEBHOOK_SECRET}"),
        format!("bearer {WEBHOOK_SECRET}"),
    ] {
        verify(
            &connector,
            &credentials,
            &request(&[("authorization", &good)], &body),
        )
        .await
        .unwrap();
    }
    for (value, what) in [
        ("Bearer wrong-secret".to_owned(), "a wrong secret"),
        (format!("Basic {WEBHOOK_SECRET}"), "another scheme"),
        (WEBHOOK_SECRET.to_owned(), "no scheme"),
        (format!("Bearer {WEBHOOK_SECRET}x"), "a longer secret"),
    ] {
        refused(
            &connector,
            &credentials,
            &request(&[("authorization", &value)], &body),
            what,
        )
        .await;
    }
    refused(
        &connector,
        &credentials,
        &request(&[], &body),
        "no Authorization header",
    )
    .await;
    let hmac = sign(WEBHOOK_SECRET.as_bytes(), None, body.as_bytes());
    refused(
        &connector,
        &credentials,
        &request(&[("X-Grafana-Alerting-Signature", &hmac)], &body),
        "an HMAC signature on a bearer connection",
    )
    .await;
}

#[tokio::test]
async fn a_connection_without_a_webhook_secret_refuses_everything() {
    let connector = strict_connector();
    let credentials = connector
        .authenticate(form(
            json!({"base_url": "https://acme.grafana.net", "api_token": TOKEN}),
        ))
        .await
        .unwrap();
    let body = "{}";
    let signature = sign(b"", None, body.as_bytes());
    refused(
        &connector,
        &credentials,
        &request(&[("X-Grafana-Alerting-Signature", &signature)], body),
        "an empty key",
    )
    .await;
}

fn alerts_of(outcome: &WebhookOutcome) -> &[NormalizedAlert] {
    assert!(outcome.reply.is_none());
    &outcome.events
}

#[tokio::test]
async fn the_documented_payload_gives_one_alert_per_element() {
    let vectors = vectors();
    let payload = &vectors["payload"]["docs_example_firing"];
    let outcome = normalized(payload).await;
    let alerts = alerts_of(&outcome);
    assert_eq!(alerts.len(), 2);
    let first = &alerts[0];
    assert_eq!(first.source, "grafana");
    assert_eq!(first.external_id, "c6eadffa33fcdf37");
    assert_eq!(first.title, "High memory usage");
    assert_eq!(first.status, AlertStatus::Firing);
    assert_eq!(first.severity, AlertSeverity::Unknown);
    assert_eq!(first.service, None);
    assert_eq!(
        first.started_at.unwrap().to_rfc3339(),
        "2021-10-12T07:51:03.157076+00:00"
    );
    assert_eq!(first.ended_at, None, "the zero date means still firing");
    assert_eq!(
        first.url.as_deref(),
        Some("https://play.grafana.org/alerting/1afz29v7z/edit")
    );
    assert_eq!(first.labels["team"], "blue");
    assert_eq!(
        first.labels["annotation.summary"],
        "This alert was triggered for zone us-1"
    );
    assert_eq!(first.labels["value.B"], "44.23943737541908");
    assert!(
        first.labels["silence_url"].starts_with("https://play.grafana.org/alerting/silence/new")
    );
    assert!(
        !first.labels.contains_key("panel_url"),
        "empty URLs are left out"
    );
    assert_eq!(first.raw["alert"]["fingerprint"], "c6eadffa33fcdf37");
    assert_eq!(first.raw["envelope"]["groupKey"], "{}:{}");
    assert!(first.raw["envelope"].get("alerts").is_none());
    assert_eq!(alerts[1].external_id, "bc97ff14869b13e3");
    assert_ne!(alerts[0].dedup_key, alerts[1].dedup_key);

    let tested = &vectors["payload"]["grafana_alerting_test_expected_default_payload"];
    let outcome = normalized(tested).await;
    let alert = &alerts_of(&outcome)[0];
    assert_eq!(alert.external_id, "fac0861a85de433a");
    assert_eq!(alert.started_at, None);
    assert_eq!(alert.labels["annotation.ann1"], "annv1");
}

#[tokio::test]
async fn re_sends_share_a_dedup_key_and_new_transitions_do_not() {
    let first = normalized(&sample_payload("fp1", "firing", "2026-12-01T10:00:00Z")).await;
    let repeat = normalized(&sample_payload("fp1", "firing", "2026-12-01T10:00:00Z")).await;
    let resolved = normalized(&sample_payload("fp1", "resolved", "2026-12-01T10:00:00Z")).await;
    let refired = normalized(&sample_payload("fp1", "firing", "2026-12-01T11:00:00Z")).await;
    let key = |outcome: &WebhookOutcome| alerts_of(outcome)[0].dedup_key.clone();
    assert_eq!(
        key(&first),
        key(&repeat),
        "a repeat-interval re-send is a duplicate"
    );
    assert_ne!(key(&first), key(&resolved), "resolving is a new transition");
    assert_ne!(
        key(&first),
        key(&refired),
        "firing again later is a new alert"
    );
    assert_eq!(
        key(&first),
        dedup_key(
            "fp1",
            "firing",
            "2026-12-01T10:00:00Z",
            "0001-01-01T00:00:00Z"
        )
    );
    let resolved = &alerts_of(&resolved)[0];
    assert_eq!(resolved.status, AlertStatus::Resolved);
    assert_eq!(resolved.external_id, alerts_of(&first)[0].external_id);
    assert_eq!(
        resolved.ended_at.unwrap().to_rfc3339(),
        "2026-12-01T10:30:00+00:00"
    );
}

#[tokio::test]
async fn severity_service_and_title_follow_the_mapping() {
    for (severity, expected) in [
        ("critical", AlertSeverity::Critical),
        ("high", AlertSeverity::High),
        ("medium", AlertSeverity::Medium),
        ("warning", AlertSeverity::Medium),
        ("low", AlertSeverity::Low),
        ("info", AlertSeverity::Low),
        ("page", AlertSeverity::Unknown),
    ] {
        let mut payload = sample_payload("fp1", "firing", "2026-12-01T10:00:00Z");
        payload["alerts"][0]["labels"]["severity"] = json!(severity);
        let outcome = normalized(&payload).await;
        assert_eq!(alerts_of(&outcome)[0].severity, expected, "{severity}");
    }
    let mut payload = sample_payload("fp1", "firing", "2026-12-01T10:00:00Z");
    let labels = payload["alerts"][0]["labels"].as_object_mut().unwrap();
    labels.remove("service");
    labels.remove("alertname");
    labels.remove("severity");
    labels.insert("job".into(), json!("node-exporter"));
    let outcome = normalized(&payload).await;
    let alert = &alerts_of(&outcome)[0];
    assert_eq!(alert.service.as_deref(), Some("node-exporter"));
    assert_eq!(alert.title, "Checkout error rate above 5%");
    assert_eq!(
        alert.severity,
        AlertSeverity::Unknown,
        "no default to critical"
    );
}

#[tokio::test]
async fn an_empty_alert_list_is_a_test_answered_without_events() {
    let outcome = normalized(&test_payload()).await;
    assert!(outcome.events.is_empty());
    let reply = outcome.reply.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, TEST_REPLY);
}

#[tokio::test]
async fn custom_payloads_without_the_default_keys_are_flagged_not_guessed() {
    let (connector, credentials) = webhook_connection(json!({"webhook_auth": "bearer"})).await;
    let auth = format!("Bearer {WEBHOOK_SECRET}");
    for (body, missing) in [
        (json!({"text": "custom template"}), "alerts"),
        (
            json!({"alerts": [{"status": "firing", "labels": {}}]}),
            "fingerprint",
        ),
    ] {
        let delivery = verify(
            &connector,
            &credentials,
            &request(&[("authorization", &auth)], &body.to_string()),
        )
        .await
        .unwrap();
        let error = connector
            .normalize(&ctx(), &credentials.config, &delivery)
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert!(error.message().contains(missing), "{error}");
    }
}
