//! Behaviour users rely on: site parsing, validation reports, retries, error
//! messages, query shapes and webhook normalisation.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use patchbay_connector_datadog::client::{API_KEY_HEADER, APP_KEY_HEADER};
use patchbay_connector_datadog::fake::{FakeDatadog, Fault};
use patchbay_connector_datadog::{DatadogConnector, SITES};
use patchbay_core::{
    AlertSeverity, AlertStatus, AuthRequest, CheckOutcome, ConnectorContext, DynConnector,
    DynCredentials, ErrorKind, FormFields, InboundWebhook, NormalizedAlert, ValidationStatus,
    WebhookKey,
};
use patchbay_http::{HttpClient, HttpConfig};
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::http::client_for_fake;
use serde_json::{json, Value};

const API_KEY: &str = "behaviour-api-key-1a2b3c";
const APP_KEY: &str = "behaviour-app-key-4d5e6f";
const WEBHOOK_TOKEN: &str = "pbw_behaviour-webhook-token";

/// Datadog's vectors: sites, key headers and webhook payload templates.
fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/datadog.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_json::from_str(&text).expect("the Datadog vectors are JSON")
}

fn connector_for(fake: Option<&FakeDatadog>) -> Arc<dyn DynConnector> {
    let http = match fake {
        Some(fake) => client_for_fake(&fake.override_spec()),
        None => HttpClient::new(HttpConfig::default()).unwrap(),
    };
    Arc::new(DatadogConnector::new(http))
}

fn form(value: Value) -> AuthRequest {
    match value {
        Value::Object(map) => AuthRequest::Form(FormFields(map)),
        other => panic!("forms are objects, got {other}"),
    }
}

async fn credentials(
    connector: &Arc<dyn DynConnector>,
    api_key: &str,
    app_key: &str,
) -> DynCredentials {
    connector
        .authenticate(form(json!({"api_key": api_key, "app_key": app_key})))
        .await
        .unwrap()
}

async fn site_of(
    connector: &Arc<dyn DynConnector>,
    site: Value,
) -> Result<(String, String), patchbay_core::Error> {
    let credentials = connector
        .authenticate(form(json!({"apiKey": "k", "appKey": "a", "site": site})))
        .await?;
    Ok((
        credentials.config["site"].as_str().unwrap().to_owned(),
        credentials.config["api_base"].as_str().unwrap().to_owned(),
    ))
}

#[tokio::test]
async fn sites_resolve_from_domains_aliases_hosts_and_urls() {
    let connector = connector_for(None);
    let cases = [
        ("datadoghq.com", "datadoghq.com"),
        ("us3.datadoghq.com", "us3.datadoghq.com"),
        ("us5.datadoghq.com", "us5.datadoghq.com"),
        ("datadoghq.eu", "datadoghq.eu"),
        ("ap1.datadoghq.com", "ap1.datadoghq.com"),
        ("ap2.datadoghq.com", "ap2.datadoghq.com"),
        ("ddog-gov.com", "ddog-gov.com"),
        ("US1", "datadoghq.com"),
        ("us3", "us3.datadoghq.com"),
        ("Us5", "us5.datadoghq.com"),
        ("EU", "datadoghq.eu"),
        ("ap1", "ap1.datadoghq.com"),
        ("AP2", "ap2.datadoghq.com"),
        ("us1-fed", "ddog-gov.com"),
        ("gov", "ddog-gov.com"),
        ("app.datadoghq.eu", "datadoghq.eu"),
        ("api.us5.datadoghq.com", "us5.datadoghq.com"),
        ("https://app.datadoghq.com", "datadoghq.com"),
        ("https://api.datadoghq.eu/", "datadoghq.eu"),
        (
            "https://us3.datadoghq.com/monitors/manage",
            "us3.datadoghq.com",
        ),
        ("https://app.ddog-gov.com", "ddog-gov.com"),
        ("  datadoghq.eu  ", "datadoghq.eu"),
    ];
    for (input, expected) in cases {
        let (site, api_base) = site_of(&connector, json!(input))
            .await
            .unwrap_or_else(|error| panic!("{input}: {error}"));
        assert_eq!(site, expected, "{input}");
        assert_eq!(api_base, format!("https://api.{expected}"), "{input}");
    }
    for absent in [Value::Null, json!("")] {
        assert_eq!(
            site_of(&connector, absent).await.unwrap().0,
            "datadoghq.com",
            "a missing site is US1"
        );
    }
}

#[tokio::test]
async fn unknown_sites_are_rejected_listing_the_accepted_ones() {
    let connector = connector_for(None);
    for input in [
        "datadoghq.mars",
        "us4",
        "us4.datadoghq.com",
        "acme.datadoghq.com",
        "http://app.datadoghq.com",
        "https://evil.example.com",
        "https://datadoghq.com.evil.example",
        "https://app.datadoghq.com:8443",
        "https://user:pw@app.datadoghq.eu",
        "ftp://datadoghq.eu",
        "https://",
    ] {
        let error = site_of(&connector, json!(input)).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{input}");
        assert_eq!(error.field(), Some("site"), "{input}");
        let hint = error.hint().unwrap_or_default();
        for site in SITES {
            assert!(
                hint.contains(site.domain),
                "{input}: hint must list {}: {hint}",
                site.domain
            );
        }
        assert!(!error.to_string().contains("pw@"), "{input}: {error}");
    }
    let error = site_of(&connector, json!(3)).await.unwrap_err();
    assert_eq!(error.field(), Some("site"));
}

#[tokio::test]
async fn the_sites_and_key_headers_datadog_describes_are_the_ones_used() {
    let vectors = vectors();
    let connector = connector_for(None);
    for site in vectors["api_sites"].as_array().unwrap() {
        let site = site.as_str().unwrap();
        let (resolved, api_base) = site_of(&connector, json!(site))
            .await
            .unwrap_or_else(|error| panic!("{site}: {error}"));
        assert_eq!(resolved, site);
        assert_eq!(api_base, format!("https://api.{site}"));
    }
    assert_eq!(vectors["api_auth"]["apiKeyAuth"]["name"], API_KEY_HEADER);
    assert_eq!(vectors["api_auth"]["appKeyAuth"]["name"], APP_KEY_HEADER);
}

#[tokio::test]
async fn missing_keys_are_named() {
    let connector = connector_for(None);
    let error = connector
        .authenticate(form(json!({"app_key": APP_KEY})))
        .await
        .unwrap_err();
    assert_eq!(error.message(), "Datadog API key is required");
    assert_eq!(error.field(), Some("api_key"));
    let error = connector
        .authenticate(form(json!({"apiKey": API_KEY, "appKey": ""})))
        .await
        .unwrap_err();
    assert_eq!(error.message(), "Datadog application key is required");
    assert_eq!(error.field(), Some("app_key"));
}

#[tokio::test]
async fn a_good_key_pair_validates_every_check_and_reads_the_org() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let mut credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let report = connector
        .validate(&ConnectorContext::default(), &mut credentials)
        .await
        .unwrap();
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:#?}");
    let ids: Vec<&str> = report.check_ids();
    assert_eq!(
        ids,
        [
            "api_key",
            "app_key",
            "monitors_read",
            "events_read",
            "hosts_read",
            "timeseries_query",
            "logs_read_data",
            "incident_read",
            "org_management"
        ]
    );
    let mandatory: Vec<&str> = report
        .checks
        .iter()
        .filter(|check| check.mandatory)
        .map(|check| check.id.as_str())
        .collect();
    assert_eq!(mandatory, ["api_key", "app_key"]);
    assert_eq!(credentials.config["org_name"], "Patchbay Test Org");
    assert_eq!(credentials.config["org_id"], "abc123def456");

    let requests = fake.requests();
    let validate = fake.requests_to("/api/v1/validate");
    assert_eq!(validate.len(), 1);
    assert!(validate[0].has_header("DD-API-KEY"));
    assert!(
        !validate[0].has_header("DD-APPLICATION-KEY"),
        "validate sends only the API key"
    );
    assert!(
        requests
            .iter()
            .all(|request| request.method == "GET" || request.path == "/api/v2/logs/events/search"),
        "validation only reads: {requests:?}"
    );
    let monitor_probe = &fake.requests_to("/api/v1/monitor")[0];
    assert_eq!(monitor_probe.query_value("page"), Some("0"));
    assert_eq!(monitor_probe.query_value("page_size"), Some("1"));
    assert_eq!(
        fake.requests_to("/api/v1/hosts")[0].query_value("count"),
        Some("1")
    );
    let events_probe = &fake.requests_to("/api/v1/events")[0];
    assert!(
        events_probe.query_value("start").is_some() && events_probe.query_value("end").is_some()
    );
    let logs_probe = &fake.requests_to("/api/v2/logs/events/search")[0];
    assert_eq!(logs_probe.body.as_ref().unwrap()["page"]["limit"], 1);
}

#[tokio::test]
async fn a_rejected_api_key_fails_and_skips_every_other_check() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let mut credentials = credentials(&connector, "not-the-api-key", APP_KEY).await;
    let report = connector
        .validate(&ConnectorContext::default(), &mut credentials)
        .await
        .unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    let api_key = &report.checks[0];
    assert_eq!(api_key.id, "api_key");
    assert_eq!(api_key.outcome, CheckOutcome::Failed);
    assert_eq!(api_key.provider_status, Some(403));
    assert!(
        api_key
            .detail
            .starts_with("Unable to validate Datadog credentials: the API key was rejected"),
        "{}",
        api_key.detail
    );
    assert!(
        api_key.detail.contains("datadoghq.eu for EU"),
        "{}",
        api_key.detail
    );
    assert_eq!(report.checks.len(), 9);
    for check in &report.checks[1..] {
        assert_eq!(check.outcome, CheckOutcome::Skipped, "{}", check.id);
    }
    assert_eq!(
        fake.requests().len(),
        1,
        "nothing is probed after a rejected API key"
    );
}

#[tokio::test]
async fn a_rejected_application_key_fails_the_mandatory_app_key_check() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let mut credentials = credentials(&connector, API_KEY, "not-the-app-key").await;
    let report = connector
        .validate(&ConnectorContext::default(), &mut credentials)
        .await
        .unwrap();
    assert_eq!(report.overall, ValidationStatus::Failed);
    assert_eq!(report.checks[0].outcome, CheckOutcome::Ok);
    let app_key = &report.checks[1];
    assert_eq!(app_key.id, "app_key");
    assert!(app_key.mandatory);
    assert_eq!(app_key.outcome, CheckOutcome::Failed);
    assert!(
        app_key.detail.contains("application key"),
        "{}",
        app_key.detail
    );
    assert!(credentials.config.get("org_name").is_none());
}

#[tokio::test]
async fn a_missing_permission_degrades_the_report_and_names_it() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    fake.revoke_app_key_permission("logs_read_data");
    let connector = connector_for(Some(&fake));
    let mut credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let report = connector
        .validate(&ConnectorContext::default(), &mut credentials)
        .await
        .unwrap();
    assert_eq!(report.overall, ValidationStatus::Degraded, "{report:#?}");
    assert!(report.passed());
    let logs = report
        .checks
        .iter()
        .find(|check| check.id == "logs_read_data")
        .unwrap();
    assert_eq!(logs.outcome, CheckOutcome::Failed);
    assert_eq!(logs.provider_status, Some(403));
    assert!(logs.detail.contains("`logs_read_data`"), "{}", logs.detail);
    for check in report
        .checks
        .iter()
        .filter(|check| check.id != "logs_read_data")
    {
        assert_eq!(check.outcome, CheckOutcome::Ok, "{}", check.id);
    }
}

#[tokio::test]
async fn the_app_key_is_proven_by_any_probe_that_succeeds() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    for permission in [
        "monitors_read",
        "events_read",
        "hosts_read",
        "timeseries_query",
    ] {
        fake.revoke_app_key_permission(permission);
    }
    let connector = connector_for(Some(&fake));
    let mut credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let report = connector
        .validate(&ConnectorContext::default(), &mut credentials)
        .await
        .unwrap();
    assert_eq!(report.overall, ValidationStatus::Degraded);
    let app_key = &report.checks[1];
    assert_eq!(app_key.outcome, CheckOutcome::Ok);
    assert!(
        app_key.detail.contains("logs_read_data"),
        "{}",
        app_key.detail
    );
}

#[tokio::test]
async fn a_rate_limited_query_waits_and_succeeds() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    fake.inject(
        "/api/v1/monitor",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let started = std::time::Instant::now();
    let output = connector
        .query(
            &ConnectorContext::default(),
            &credentials,
            "list_monitors",
            json!({}),
        )
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was honoured"
    );
    assert_eq!(output.data["monitors"].as_array().unwrap().len(), 3);
    assert_eq!(fake.requests_to("/api/v1/monitor").len(), 2);
}

#[tokio::test]
async fn a_server_error_on_an_idempotent_search_is_retried() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    fake.inject("/api/v2/logs/events/search", Fault::ServerError);
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let output = connector
        .query(
            &ConnectorContext::default(),
            &credentials,
            "search_logs",
            json!({"limit": 5}),
        )
        .await
        .unwrap();
    assert_eq!(output.data["logs"].as_array().unwrap().len(), 5);
    assert_eq!(fake.requests_to("/api/v2/logs/events/search").len(), 2);
}

#[tokio::test]
async fn persistent_unavailability_is_reported_as_unavailable() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    for _ in 0..3 {
        fake.inject("/api/v1/hosts", Fault::Unavailable);
    }
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let error = connector
        .query(
            &ConnectorContext::default(),
            &credentials,
            "list_hosts",
            json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert_eq!(error.provider_status(), Some(503));
    assert_eq!(
        fake.requests_to("/api/v1/hosts").len(),
        3,
        "one try and two retries"
    );
}

#[tokio::test]
async fn stored_keys_that_stopped_working_ask_for_a_reconnect() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, "revoked-app-key").await;
    let error = connector
        .query(
            &ConnectorContext::default(),
            &credentials,
            "list_monitors",
            json!({}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert_eq!(error.message(), "Stored Datadog keys are no longer valid");
    assert!(
        error.hint().unwrap().contains("reconnect"),
        "{:?}",
        error.hint()
    );
    assert!(
        error.hint().unwrap().contains("monitors_read"),
        "{:?}",
        error.hint()
    );
    assert!(!format!("{error:?}").contains("revoked-app-key"));
}

#[tokio::test]
async fn logs_search_sends_the_documented_body_and_pages_with_cursors() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let ctx = ConnectorContext::default();
    let first = connector
        .query(&ctx, &credentials, "search_logs", json!({}))
        .await
        .unwrap();
    let body = fake.requests_to("/api/v2/logs/events/search")[0]
        .body
        .clone()
        .unwrap();
    assert_eq!(body["filter"]["query"], "*");
    assert_eq!(body["page"]["limit"], 50);
    assert_eq!(body["sort"], "-timestamp");
    assert!(body["page"].get("cursor").is_none());
    let from =
        chrono::DateTime::parse_from_rfc3339(body["filter"]["from"].as_str().unwrap()).unwrap();
    let to = chrono::DateTime::parse_from_rfc3339(body["filter"]["to"].as_str().unwrap()).unwrap();
    assert_eq!(
        (to - from).num_minutes(),
        15,
        "the default window is the last 15 minutes"
    );

    let logs = first.data["logs"].as_array().unwrap();
    assert_eq!(logs.len(), 50);
    assert!(
        logs[0]["message"].is_string() && logs[0]["id"].is_string(),
        "{}",
        logs[0]
    );
    assert!(
        logs[0]["timestamp"].as_str() > logs[1]["timestamp"].as_str(),
        "newest first by default"
    );
    let cursor = first.next_cursor.clone().expect("more logs remain");
    assert!(
        cursor.starts_with("pb1."),
        "callers see a sealed cursor: {cursor}"
    );
    let second = connector
        .query(&ctx, &credentials, "search_logs", json!({"cursor": cursor}))
        .await
        .unwrap();
    let provider_cursor = fake.requests_to("/api/v2/logs/events/search")[1]
        .body
        .as_ref()
        .unwrap()["page"]["cursor"]
        .as_str()
        .expect("the second request carries Datadog's own cursor")
        .to_owned();
    assert!(
        !provider_cursor.is_empty() && provider_cursor != cursor,
        "Datadog gets its `meta.page.after` back, not the sealed cursor"
    );
    let second_logs = second.data["logs"].as_array().unwrap();
    assert_ne!(second_logs[0]["id"], logs[0]["id"]);
    let third = connector
        .query(
            &ctx,
            &credentials,
            "search_logs",
            json!({"cursor": second.next_cursor.unwrap(), "limit": 1000}),
        )
        .await
        .unwrap();
    assert_eq!(third.data["logs"].as_array().unwrap().len(), 20);
    assert_eq!(third.next_cursor, None, "the last page has no cursor");

    let filtered = connector
        .query(&ctx, &credentials, "search_logs", json!({"query": "service:payments", "sort": "timestamp", "from": "now-1h", "to": "now"}))
        .await
        .unwrap();
    assert!(filtered.data["logs"]
        .as_array()
        .unwrap()
        .iter()
        .all(|log| log["service"] == "payments"));
}

#[tokio::test]
async fn query_parameters_are_checked_before_anything_is_sent() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let ctx = ConnectorContext::default();
    let cases = [
        ("search_logs", json!({"limit": 1001}), "limit"),
        ("search_logs", json!({"limit": 0}), "limit"),
        ("search_logs", json!({"sort": "desc"}), "sort"),
        ("search_logs", json!({"from": "yesterday"}), "from"),
        (
            "search_logs",
            json!({"from": "now", "to": "now-1h"}),
            "from",
        ),
        ("search_logs", json!({"qeury": "*"}), "qeury"),
        ("query_metrics", json!({}), "query"),
        ("query_metrics", json!({"query": "  "}), "query"),
        ("list_monitors", json!({"page_size": 5000}), "page_size"),
        ("list_monitors", json!({"cursor": "abc"}), "cursor"),
        ("get_monitor", json!({"monitor_id": "abc"}), "monitor_id"),
        ("get_monitor", json!({}), "monitor_id"),
        (
            "list_events",
            json!({"unaggregated": "yes"}),
            "unaggregated",
        ),
        (
            "list_events",
            json!({"start": 1_714_560_000_000_i64}),
            "start",
        ),
        ("list_events", json!({"priority": "high"}), "priority"),
        ("list_hosts", json!({"count": 1001}), "count"),
        ("list_incidents", json!({"page_size": 101}), "page_size"),
    ];
    for (operation, params, field) in cases {
        let error = connector
            .query(&ctx, &credentials, operation, params.clone())
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "{operation} {params}: {error}"
        );
        assert_eq!(error.field(), Some(field), "{operation} {params}: {error}");
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn parameter_errors_name_the_field_in_the_shared_wording() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let ctx = ConnectorContext::default();
    let cases = [
        (
            "search_logs",
            json!({"limit": 5000}),
            "limit",
            "`limit` must be from 1 to 1000; got 5000",
        ),
        (
            "list_incidents",
            json!({"page_size": 101}),
            "page_size",
            "`page_size` must be from 1 to 100; got 101",
        ),
        (
            "list_hosts",
            json!({"count": 0}),
            "count",
            "`count` must be from 1 to 1000; got 0",
        ),
        (
            "search_logs",
            json!({"qeury": "service:checkout"}),
            "qeury",
            "`search_logs` has no parameter `qeury`; it takes: from, limit, query, sort, to, cursor",
        ),
        (
            "get_monitor",
            json!({"monitor_id": 1001, "cursor": "pb1.e30"}),
            "cursor",
            "`get_monitor` has no parameter `cursor`; it takes: group_states, monitor_id",
        ),
    ];
    for (operation, params, field, message) in cases {
        let error = connector
            .query(&ctx, &credentials, operation, params.clone())
            .await
            .unwrap_err();
        assert_eq!(
            (error.kind(), error.field(), error.message()),
            (ErrorKind::InvalidInput, Some(field), message),
            "{operation} {params}"
        );
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn a_cursor_is_taken_back_only_by_the_operation_that_issued_it() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let ctx = ConnectorContext::default();
    let incidents = connector
        .query(
            &ctx,
            &credentials,
            "list_incidents",
            json!({"page_size": 10}),
        )
        .await
        .unwrap();
    let cursor = incidents.next_cursor.expect("20 incidents remain");

    let error = connector
        .query(&ctx, &credentials, "search_logs", json!({"cursor": cursor}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
    assert_eq!(error.field(), Some("cursor"));
    assert!(
        error.message().contains("a cursor of `list_incidents`"),
        "{error}"
    );
    let error = connector
        .query(
            &ctx,
            &credentials,
            "list_incidents",
            json!({"cursor": "10"}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (error.kind(), error.field()),
        (ErrorKind::InvalidInput, Some("cursor")),
        "a bare offset is not a cursor: {error}"
    );
    assert!(
        fake.requests_to("/api/v2/logs/events/search").is_empty(),
        "a refused cursor reaches no endpoint"
    );
    assert_eq!(fake.requests_to("/api/v2/incidents").len(), 1);
}

#[tokio::test]
async fn sealed_cursors_page_through_every_item_once() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let ctx = ConnectorContext::default();
    for (operation, first_page, list, total, pages) in [
        (
            "list_incidents",
            json!({"page_size": 12}),
            "incidents",
            30,
            3,
        ),
        ("search_logs", json!({"limit": 50}), "logs", 120, 3),
    ] {
        let mut ids = std::collections::BTreeSet::new();
        let mut params = first_page.clone();
        let mut requests = 0;
        loop {
            let page = connector
                .query(&ctx, &credentials, operation, params.clone())
                .await
                .unwrap_or_else(|error| panic!("{operation} {params}: {error}"));
            requests += 1;
            for item in page.data[list].as_array().unwrap() {
                let id = item["id"].as_str().unwrap().to_owned();
                assert!(ids.insert(id), "{operation}: an item came twice");
            }
            let Some(cursor) = page.next_cursor else {
                break;
            };
            assert!(cursor.starts_with("pb1."), "{operation}: {cursor}");
            params = first_page.clone();
            params["cursor"] = json!(cursor);
        }
        assert_eq!(ids.len(), total, "{operation}");
        assert_eq!(requests, pages, "{operation}");
    }
}

#[tokio::test]
async fn operations_send_the_documented_parameters_and_shape_their_output() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector = connector_for(Some(&fake));
    let credentials = credentials(&connector, API_KEY, APP_KEY).await;
    let ctx = ConnectorContext::default();

    let metrics = connector
        .query(
            &ctx,
            &credentials,
            "query_metrics",
            json!({"query": "avg:container.cpu.usage{*} by {container_id}"}),
        )
        .await
        .unwrap();
    assert_eq!(metrics.data["series"].as_array().unwrap().len(), 100);
    assert!(metrics.truncated, "150 series are cut to 100");
    let request = &fake.requests_to("/api/v1/query")[0];
    let from: i64 = request.query_value("from").unwrap().parse().unwrap();
    let to: i64 = request.query_value("to").unwrap().parse().unwrap();
    assert_eq!(
        to - from,
        3600,
        "metrics default to the last hour, in seconds"
    );

    let monitors = connector
        .query(&ctx, &credentials, "list_monitors", json!({"page_size": 2}))
        .await
        .unwrap();
    assert_eq!(monitors.data["monitors"].as_array().unwrap().len(), 2);
    let rest = connector
        .query(
            &ctx,
            &credentials,
            "list_monitors",
            json!({"page_size": 2, "cursor": monitors.next_cursor.expect("a full page has a next one")}),
        )
        .await
        .unwrap();
    assert_eq!(rest.data["monitors"][0]["id"], 1003);
    assert_eq!(rest.next_cursor, None);
    let request = fake.requests_to("/api/v1/monitor").pop().unwrap();
    assert_eq!(request.query_value("page"), Some("1"));

    let monitor = connector
        .query(
            &ctx,
            &credentials,
            "get_monitor",
            json!({"monitor_id": 1002}),
        )
        .await
        .unwrap();
    assert_eq!(monitor.data["name"], "Payments p99 latency");
    let missing = connector
        .query(&ctx, &credentials, "get_monitor", json!({"monitor_id": 42}))
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), ErrorKind::NotFound);
    assert_eq!(missing.field(), Some("monitor_id"));

    let events = connector
        .query(
            &ctx,
            &credentials,
            "list_events",
            json!({"sources": "github"}),
        )
        .await
        .unwrap();
    assert_eq!(events.data["events"].as_array().unwrap().len(), 1);
    let request = fake.requests_to("/api/v1/events").pop().unwrap();
    let start: i64 = request.query_value("start").unwrap().parse().unwrap();
    let end: i64 = request.query_value("end").unwrap().parse().unwrap();
    assert_eq!(end - start, 3600, "events default to the last hour");

    let hosts = connector
        .query(&ctx, &credentials, "list_hosts", json!({"count": 2}))
        .await
        .unwrap();
    assert_eq!(hosts.data["hosts"].as_array().unwrap().len(), 2);
    assert_eq!(hosts.data["total_matching"], 3);
    let last_host = connector
        .query(
            &ctx,
            &credentials,
            "list_hosts",
            json!({"count": 2, "cursor": hosts.next_cursor.expect("a third host remains")}),
        )
        .await
        .unwrap();
    assert_eq!(last_host.data["hosts"][0]["name"], "web-3");
    assert_eq!(last_host.next_cursor, None);
    let request = fake.requests_to("/api/v1/hosts").pop().unwrap();
    assert_eq!(request.query_value("start"), Some("2"));

    let incidents = connector
        .query(&ctx, &credentials, "list_incidents", json!({}))
        .await
        .unwrap();
    assert_eq!(incidents.data["incidents"].as_array().unwrap().len(), 25);
    let request = fake.requests_to("/api/v2/incidents").pop().unwrap();
    assert_eq!(request.query_value("page[size]"), Some("25"));
    assert_eq!(request.query_value("page[offset]"), Some("0"));
    let last = connector
        .query(
            &ctx,
            &credentials,
            "list_incidents",
            json!({"cursor": incidents.next_cursor.expect("five incidents remain")}),
        )
        .await
        .unwrap();
    assert_eq!(last.data["incidents"].as_array().unwrap().len(), 5);
    assert_eq!(last.next_cursor, None);
    let request = fake.requests_to("/api/v2/incidents").pop().unwrap();
    assert_eq!(request.query_value("page[offset]"), Some("25"));

    let unknown = connector
        .query(&ctx, &credentials, "logs_tail", json!({}))
        .await
        .unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::NotFound);
    assert_eq!(
        unknown.message(),
        "unknown operation `logs_tail` for datadog"
    );
    assert!(unknown.hint().unwrap().contains("search_logs"));
}

fn delivery(body: Value) -> InboundWebhook {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    InboundWebhook {
        headers,
        body: Bytes::from(body.to_string()),
    }
}

async fn normalise(
    site: &str,
    request: &InboundWebhook,
) -> Result<NormalizedAlert, patchbay_core::Error> {
    let connector = connector_for(None);
    let credentials = connector
        .authenticate(form(
            json!({"api_key": API_KEY, "app_key": APP_KEY, "site": site}),
        ))
        .await
        .unwrap();
    // The host verifies the connection's token first; only then is the delivery normalised.
    let mut request = request.clone();
    request.headers.insert(
        patchbay_connector_datadog::WEBHOOK_TOKEN_HEADER,
        HeaderValue::from_static(WEBHOOK_TOKEN),
    );
    let stored = patchbay_core::token_hash(WEBHOOK_TOKEN);
    let ctx = ConnectorContext::default();
    let delivery = connector
        .verify(&ctx, WebhookKey::TokenHash(&stored), &request)
        .await?;
    let mut outcome = connector
        .normalize(&ctx, &credentials.config, &delivery)
        .await?;
    assert_eq!(outcome.events.len(), 1);
    assert!(outcome.reply.is_none());
    Ok(outcome.events.remove(0))
}

/// `template` with each `$VARIABLE` string replaced by its value in `values`.
fn fill(template: &Value, values: &Value) -> Value {
    match template {
        Value::String(variable) => values
            .get(variable)
            .cloned()
            .unwrap_or_else(|| panic!("no value for {variable}")),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(key, value)| (key.clone(), fill(value, values)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[tokio::test]
async fn the_default_template_normalises() {
    let body = fill(
        &vectors()["default_payload_template"],
        &json!({
            "$EVENT_MSG": "%%%\nCPU is high\n%%%",
            "$LAST_UPDATED": "1591216985000",
            "$EVENT_TYPE": "service_check",
            "$EVENT_TITLE": "[Triggered] [TEST] Host Cluster Alert",
            "$DATE": "1591216985000",
            "$ORG_ID": "415600",
            "$ORG_NAME": "Puppet",
            "$ID": "5485379890863845239",
        }),
    );
    let alert = normalise("datadoghq.com", &delivery(body.clone()))
        .await
        .unwrap();
    assert_eq!(alert.source, "datadog");
    assert_eq!(alert.external_id, "5485379890863845239");
    assert_eq!(alert.dedup_key, "5485379890863845239");
    assert_eq!(alert.title, "[Triggered] [TEST] Host Cluster Alert");
    assert_eq!(alert.status, AlertStatus::Firing);
    assert_eq!(alert.severity, AlertSeverity::Unknown);
    assert_eq!(
        alert.started_at.unwrap().timestamp_millis(),
        1_591_216_985_000
    );
    assert_eq!(alert.labels["org_name"], "Puppet");
    assert_eq!(alert.labels["event_type"], "service_check");
    assert_eq!(alert.url, None);
    assert_eq!(alert.raw, body);

    let mut recovered = alert.raw.clone();
    recovered["title"] = json!("[Recovered] [TEST] Host Cluster Alert");
    recovered["id"] = json!("5485379890863845240");
    let recovered = normalise("datadoghq.com", &delivery(recovered))
        .await
        .unwrap();
    assert_eq!(recovered.status, AlertStatus::Resolved);
    assert!(recovered.ended_at.is_some());
}

#[tokio::test]
async fn the_custom_template_firing_and_recovery_share_an_alert() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let firing_body = fake.sample_webhook(4242, "Triggered");
    assert!(
        firing_body.to_string().len() > 1500,
        "the sample is realistic in size"
    );
    let firing = normalise("datadoghq.com", &delivery(firing_body.clone()))
        .await
        .unwrap();
    let recovered = normalise(
        "datadoghq.com",
        &delivery(fake.sample_webhook(4242, "Recovered")),
    )
    .await
    .unwrap();
    let again = normalise("datadoghq.com", &delivery(firing_body.clone()))
        .await
        .unwrap();

    assert_eq!(
        firing.external_id,
        firing_body["alert_cycle_key"].as_str().unwrap()
    );
    assert_eq!(firing.external_id, recovered.external_id, "one alert cycle");
    assert_ne!(firing.dedup_key, recovered.dedup_key, "two transitions");
    assert_eq!(firing.dedup_key, again.dedup_key, "a redelivery dedups");
    assert_eq!(firing.status, AlertStatus::Firing);
    assert_eq!(recovered.status, AlertStatus::Resolved);
    assert_eq!(firing.severity, AlertSeverity::High, "P2");
    assert_eq!(firing.service.as_deref(), Some("checkout"));
    assert_eq!(firing.labels["monitor_id"], "4242");
    assert_eq!(firing.labels["transition"], "Triggered");
    assert_eq!(firing.labels["metric"], "trace.http.request.errors");
    assert_eq!(firing.labels["priority"], "P2");
    assert_eq!(
        firing.labels["host"],
        firing_body["hostname"].as_str().unwrap()
    );
    assert_eq!(firing.labels["env"], "prod");
    assert!(firing.tags.contains(&"team:payments".to_owned()));
    assert_eq!(firing.url.as_deref(), firing_body["link"].as_str());
    assert!(firing.started_at.is_some());
    assert_eq!(firing.ended_at, None);
    assert!(recovered.ended_at.is_some());
}

#[tokio::test]
async fn without_a_cycle_key_the_alert_is_the_monitor_and_scope() {
    let body = |transition: &str, date: &str| {
        json!({
            "alert_id": 77, "alert_scope": "host:db-1", "alert_transition": transition,
            "alert_title": format!("[{transition}] Disk full"), "date": date,
        })
    };
    let firing = normalise(
        "datadoghq.eu",
        &delivery(body("Triggered", "1714564800000")),
    )
    .await
    .unwrap();
    let recovered = normalise(
        "datadoghq.eu",
        &delivery(body("Recovered", "1714565400000")),
    )
    .await
    .unwrap();
    assert_eq!(firing.external_id, "77:host:db-1");
    assert_eq!(firing.external_id, recovered.external_id);
    assert_ne!(firing.dedup_key, recovered.dedup_key);
    assert_eq!(firing.dedup_key.len(), 64, "a SHA-256 of provider data");
    let again = normalise(
        "datadoghq.eu",
        &delivery(body("Triggered", "1714564800000")),
    )
    .await
    .unwrap();
    assert_eq!(
        firing.dedup_key, again.dedup_key,
        "built only from the payload, never receive time"
    );
    assert_eq!(
        firing.url.as_deref(),
        Some("https://app.datadoghq.eu/monitors/77")
    );
    assert_eq!(
        firing.service.as_deref(),
        Some("db-1"),
        "the host when no service tag"
    );
    assert_eq!(recovered.status, AlertStatus::Resolved);
}

#[tokio::test]
async fn severity_follows_priority_then_alert_type() {
    let cases = [
        (json!({"alert_priority": "P1"}), AlertSeverity::Critical),
        (json!({"alert_priority": "P2"}), AlertSeverity::High),
        (json!({"alert_priority": "p3"}), AlertSeverity::Medium),
        (json!({"alert_priority": "P4"}), AlertSeverity::Low),
        (json!({"alert_priority": "P5"}), AlertSeverity::Low),
        (
            json!({"alert_priority": "P4", "alert_type": "error"}),
            AlertSeverity::Low,
        ),
        (
            json!({"alert_priority": "", "alert_type": "error"}),
            AlertSeverity::Critical,
        ),
        (
            json!({"alert_priority": "$ALERT_PRIORITY", "alert_type": "warning"}),
            AlertSeverity::High,
        ),
        (json!({"alert_type": "info"}), AlertSeverity::Low),
        (json!({"alert_type": "success"}), AlertSeverity::Unknown),
        (json!({"priority": "normal"}), AlertSeverity::Unknown),
    ];
    for (fields, expected) in cases {
        let mut body = json!({"alert_id": "9", "title": "x"});
        body.as_object_mut()
            .unwrap()
            .extend(fields.as_object().unwrap().clone());
        let alert = normalise("datadoghq.com", &delivery(body.clone()))
            .await
            .unwrap();
        assert_eq!(alert.severity, expected, "{body}");
    }
    let success = normalise(
        "datadoghq.com",
        &delivery(json!({"alert_id": "9", "alert_type": "success"})),
    )
    .await
    .unwrap();
    assert_eq!(
        success.status,
        AlertStatus::Resolved,
        "alert_type success resolves"
    );
}

#[tokio::test]
async fn tags_arrive_as_a_string_or_a_list() {
    let as_string = normalise(
        "datadoghq.com",
        &delivery(json!({"id": "1", "title": "t", "tags": "env:prod, service:api ,team:core,,"})),
    )
    .await
    .unwrap();
    let as_list = normalise(
        "datadoghq.com",
        &delivery(
            json!({"id": "1", "title": "t", "tags": ["env:prod", "service:api", "team:core"]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(as_string.tags, ["env:prod", "service:api", "team:core"]);
    assert_eq!(as_string.tags, as_list.tags);
    assert_eq!(as_string.service.as_deref(), Some("api"));
    assert_eq!(as_string.labels["team"], "core");
}

#[tokio::test]
async fn form_encoded_deliveries_normalise() {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    let request = InboundWebhook {
        headers,
        body: Bytes::from_static(
            b"alert_id=31&alert_cycle_key=cycle-31&alert_transition=Triggered&alert_priority=P1\
              &alert_title=%5BTriggered%5D+Queue+backlog&tags=service%3Aworker%2Cenv%3Aprod&id=991&date=1714564800000",
        ),
    };
    let alert = normalise("datadoghq.com", &request).await.unwrap();
    assert_eq!(alert.external_id, "cycle-31");
    assert_eq!(alert.dedup_key, "991");
    assert_eq!(alert.title, "[Triggered] Queue backlog");
    assert_eq!(alert.severity, AlertSeverity::Critical);
    assert_eq!(alert.service.as_deref(), Some("worker"));
    assert_eq!(alert.raw["alert_id"], "31");
}

#[tokio::test]
async fn malformed_and_foreign_bodies_are_invalid_input() {
    let request = InboundWebhook {
        headers: HeaderMap::new(),
        body: Bytes::from_static(b"{\"id\": \"1\", \"title\": \"unterminated"),
    };
    let error = normalise("datadoghq.com", &request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("body"));
    assert!(
        error.message().contains("EOF"),
        "carries the serde reason: {}",
        error.message()
    );

    for foreign in [
        json!({"hello": "world"}),
        json!({"id": "", "alert_id": null}),
        json!(["id"]),
    ] {
        let error = normalise("datadoghq.com", &delivery(foreign.clone()))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{foreign}");
        assert!(
            error.message().starts_with("not a Datadog webhook payload"),
            "{}",
            error.message()
        );
        assert!(
            error.hint().unwrap().contains("payload"),
            "{:?}",
            error.hint()
        );
    }
}

#[tokio::test]
async fn the_descriptor_matches_the_guide_and_builds_from_the_environment() {
    use patchbay_connector_datadog::DESCRIPTOR;
    use patchbay_core::{AuthKind, Category, ConnectorEnv, Registry, WebhookAuth};

    assert_eq!(DESCRIPTOR.id, "datadog");
    assert_eq!(DESCRIPTOR.display_name, "Datadog");
    assert_eq!(DESCRIPTOR.category, Category::Observability);
    assert_eq!(DESCRIPTOR.auth_kinds, [AuthKind::ApiKey]);
    assert!(
        DESCRIPTOR.env_vars.is_empty(),
        "the guide names no Datadog env vars"
    );
    assert_eq!(DESCRIPTOR.feature_flag, None);
    let webhook = DESCRIPTOR.webhook.unwrap();
    assert_eq!(webhook.path, "/datadog/webhook/{user_id}");
    assert_eq!(
        webhook.auth,
        WebhookAuth::Token {
            header: "X-Patchbay-Token"
        }
    );
    let operations: Vec<&str> = (DESCRIPTOR.operations)()
        .iter()
        .map(|operation| operation.name)
        .collect();
    assert_eq!(
        operations,
        [
            "search_logs",
            "query_metrics",
            "list_monitors",
            "get_monitor",
            "list_events",
            "list_hosts",
            "list_incidents"
        ]
    );
    assert!((DESCRIPTOR.operations)()
        .iter()
        .all(|operation| operation.read_only));

    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let env = ConnectorEnv::from_pairs([("PATCHBAY_UPSTREAM_OVERRIDES", fake.override_spec())]);
    let registry = Registry::from_inventory(&env).unwrap();
    assert!(
        registry.ids().contains(&"datadog"),
        "registered through inventory"
    );
    let connector = registry.get("datadog").unwrap();
    let mut credentials = connector
        .authenticate(form(json!({"api_key": API_KEY, "app_key": APP_KEY})))
        .await
        .unwrap();
    let report = connector
        .validate(&ConnectorContext::default(), &mut credentials)
        .await
        .unwrap();
    assert_eq!(
        report.overall,
        ValidationStatus::Ok,
        "the built connector reaches the override"
    );

    let bad_env = ConnectorEnv::from_pairs([("PATCHBAY_UPSTREAM_OVERRIDES", "not a pair")]);
    let error = (DESCRIPTOR.build)(&bad_env)
        .err()
        .expect("a bad override is a config error");
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
}
