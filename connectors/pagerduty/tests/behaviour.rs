//! Behaviour users rely on, against the fake PagerDuty: validation line by line,
//! paging and caps, error mapping, regions, OAuth scopes, and webhooks checked
//! with PagerDuty's official signature vectors.

use chrono::Utc;
use patchbay_connector_pagerduty::fake::{
    grant, sample_payload, FakePagerduty, Fault, ProviderFake, INCIDENT_COUNT, INCIDENT_ID,
    SERVICE_ID, SUBDOMAIN, USER_NAME,
};
use patchbay_connector_pagerduty::webhook::{sign, SIGNATURE_HEADER, WEBHOOK_ID_HEADER};
use patchbay_core::slots::with_added_webhook_secret;
use patchbay_core::{
    AlertSeverity, AlertStatus, AuthRequest, CheckOutcome, ConnectorContext, DynConnector,
    DynCredentials, ErrorKind, FormFields, InboundWebhook, ProviderWebhookSecret, ValidationReport,
    ValidationStatus, WebhookKey,
};
use patchbay_http::{Bytes, HeaderMap};
use serde_json::{json, Value};

const API_TOKEN: &str = "behaviour-token-7f3a";
const WEBHOOK_SECRET: &str = "behaviour-whsec-1c9e";

fn ctx() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some("behaviour-connection".to_owned()),
        tenant: None,
    }
}

fn form(value: Value) -> AuthRequest {
    AuthRequest::Form(FormFields(value.as_object().cloned().unwrap_or_default()))
}

async fn connect(fake: &FakePagerduty, fields: Value) -> (DynCredentials, ValidationReport) {
    let connector = fake.connector();
    let mut credentials = connector.authenticate(form(fields)).await.unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    (credentials, report)
}

fn check<'r>(report: &'r ValidationReport, id: &str) -> &'r patchbay_core::ValidationCheck {
    report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no check `{id}` in {report:?}"))
}

#[tokio::test]
async fn a_good_token_passes_every_check_and_fills_the_account() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let (credentials, report) = connect(
        &fake,
        json!({"api_token": API_TOKEN, "display_name": "Prod", "webhook_secret": WEBHOOK_SECRET}),
    )
    .await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    assert_eq!(
        report.check_ids(),
        [
            "credentials",
            "abilities",
            "incidents.read",
            "services.read",
            "oncalls.read",
            "schedules.read",
            "escalation_policies.read",
            "change_events.read",
            "webhook_secret"
        ]
    );
    assert!(check(&report, "credentials").detail.contains(USER_NAME));
    assert!(check(&report, "abilities").detail.contains("teams"));
    let config = &credentials.config;
    assert_eq!(config["account_subdomain"], SUBDOMAIN);
    assert_eq!(config["auth_type"], "api_token");
    assert_eq!(config["api_region"], "us");
    assert_eq!(config["display_name"], "Prod");
    assert_eq!(config["user_email"], "tenex@example.com");
    assert!(!credentials.config.to_string().contains(API_TOKEN));
    // Every probe asked for one item, with PagerDuty's media type and token header.
    for probe in [
        "/incidents",
        "/services",
        "/oncalls",
        "/schedules",
        "/escalation_policies",
        "/change_events",
    ] {
        let requests = fake.requests_to(probe);
        assert_eq!(requests.len(), 1, "{probe}");
        assert_eq!(requests[0].query_value("limit"), Some("1"), "{probe}");
        assert_eq!(requests[0].auth_scheme.as_deref(), Some("token"));
        assert_eq!(
            requests[0].accept.as_deref(),
            Some("application/vnd.pagerduty+json;version=2")
        );
    }
}

#[tokio::test]
async fn a_wrong_token_fails_the_mandatory_check_and_skips_the_rest() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let (_, report) = connect(&fake, json!({"api_token": "wrong-token-123"})).await;
    assert_eq!(report.overall, ValidationStatus::Failed);
    let user = check(&report, "credentials");
    assert_eq!(user.outcome, CheckOutcome::Failed);
    assert!(
        user.detail.contains("Invalid or expired API token"),
        "{}",
        user.detail
    );
    assert_eq!(user.provider_status, Some(401));
    assert!(report.checks[1..]
        .iter()
        .all(|check| check.outcome == CheckOutcome::Skipped));
}

#[tokio::test]
async fn an_account_level_key_falls_back_to_a_service_read() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    fake.add_account_level_token("account-level-key-5e");
    let (credentials, report) = connect(
        &fake,
        json!({"api_token": "account-level-key-5e", "webhook_secret": WEBHOOK_SECRET}),
    )
    .await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    assert!(check(&report, "credentials")
        .detail
        .contains("account-level"));
    assert_eq!(credentials.config["account_level_key"], true);
    assert_eq!(credentials.config["account_subdomain"], SUBDOMAIN);
    assert!(credentials.config.get("user_email").is_none());
}

#[tokio::test]
async fn each_missing_scope_is_its_own_line_with_a_hint() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    fake.deny("/oncalls");
    fake.deny("/change_events");
    fake.inject("/abilities", Fault::ServerError);
    let (_, report) = connect(
        &fake,
        json!({"api_token": API_TOKEN, "webhook_secret": WEBHOOK_SECRET}),
    )
    .await;
    assert_eq!(report.overall, ValidationStatus::Degraded, "{report:?}");
    for scope in ["oncalls.read", "change_events.read"] {
        let line = check(&report, scope);
        assert_eq!(line.outcome, CheckOutcome::Failed, "{scope}");
        assert!(
            line.detail.contains("Token lacks required permissions"),
            "{}",
            line.detail
        );
        assert!(
            line.detail.contains(scope),
            "the hint names the scope: {}",
            line.detail
        );
    }
    assert_eq!(check(&report, "abilities").outcome, CheckOutcome::Error);
    assert_eq!(check(&report, "incidents.read").outcome, CheckOutcome::Ok);
}

#[tokio::test]
async fn a_connection_without_a_webhook_secret_is_told_how_to_add_one() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let (_, report) = connect(&fake, json!({"api_token": API_TOKEN})).await;
    assert_eq!(report.overall, ValidationStatus::Degraded);
    let line = check(&report, "webhook_secret");
    assert_eq!(line.outcome, CheckOutcome::Failed);
    assert!(line.detail.contains("/webhook/secrets"), "{}", line.detail);
}

#[tokio::test]
async fn eu_accounts_are_read_from_the_eu_host() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let (credentials, report) = connect(
        &fake,
        json!({"api_token": API_TOKEN, "region": "eu", "webhook_secret": WEBHOOK_SECRET}),
    )
    .await;
    assert!(report.passed());
    assert_eq!(credentials.config["api_region"], "eu");
    fake.connector()
        .query(&ctx(), &credentials, "list_services", json!({}))
        .await
        .unwrap();
    assert!(fake.requests().iter().all(|request| request.region == "eu"));
    // The region is a choice of two fixed hosts, never a URL.
    let error = fake
        .connector()
        .authenticate(form(
            json!({"api_token": API_TOKEN, "region": "https://127.0.0.1"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("region"));
}

#[tokio::test]
async fn oauth_grants_are_checked_against_the_scopes_requested() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    fake.add_access_token("pdus+_oauth-access");
    let connector = fake.connector();

    let mut full = connector
        .authenticate(AuthRequest::OAuth(grant("pdus+_oauth-access", "us")))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut full).await.unwrap();
    assert_eq!(check(&report, "oauth_scopes").outcome, CheckOutcome::Ok);
    assert!(fake
        .requests()
        .iter()
        .all(|request| request.auth_scheme.as_deref() == Some("bearer")));

    let mut narrower = grant("pdus+_oauth-access", "us");
    narrower.scopes = vec![
        "openid".into(),
        "incidents.read".into(),
        "users.read".into(),
    ];
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(narrower))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    let line = check(&report, "oauth_scopes");
    assert_eq!(line.outcome, CheckOutcome::Failed);
    assert!(!line.mandatory);
    assert!(
        line.detail.contains("narrower") && line.detail.contains("services.read"),
        "{}",
        line.detail
    );
    assert!(report.passed());

    let mut openid_only = grant("pdus+_oauth-access", "eu");
    openid_only.scopes = vec!["openid".into()];
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(openid_only))
        .await
        .unwrap();
    assert_eq!(credentials.config["api_region"], "eu");
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    let line = check(&report, "oauth_scopes");
    assert!(line.mandatory);
    assert!(
        !report.passed(),
        "a grant of openid alone cannot read anything"
    );

    let mut steered = grant("pdus+_oauth-access", "us");
    steered
        .options
        .insert("api_url".into(), json!("https://10.0.0.1"));
    let error = connector
        .authenticate(AuthRequest::OAuth(steered))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("api_url"));
}

async fn connected(fake: &FakePagerduty) -> DynCredentials {
    let (credentials, report) = connect(
        fake,
        json!({"api_token": API_TOKEN, "webhook_secret": WEBHOOK_SECRET}),
    )
    .await;
    assert!(report.passed());
    fake.clear_requests();
    credentials
}

#[tokio::test]
async fn incidents_page_by_offset_through_an_opaque_cursor() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let credentials = connected(&fake).await;
    let connector = fake.connector();
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut params = json!({"limit": 5});
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let page = connector
            .query(&ctx(), &credentials, "list_incidents", params)
            .await
            .unwrap();
        for incident in page.data["incidents"].as_array().unwrap() {
            ids.push(incident["id"].as_str().unwrap().to_owned());
            assert!(incident.get("self").is_none());
            assert!(incident["assignees"].is_array());
        }
        match page.next_cursor {
            Some(next) => {
                assert!(next.starts_with("pb1."), "sealed: {next}");
                cursor = Some(next);
            }
            None => break,
        }
    }
    assert_eq!(ids.len(), INCIDENT_COUNT);
    assert_eq!(ids[0], INCIDENT_ID);
    let offsets: Vec<String> = fake
        .requests_to("/incidents")
        .iter()
        .map(|request| request.query_value("offset").unwrap_or("?").to_owned())
        .collect();
    assert_eq!(offsets, ["0", "5", "10"]);
    let first = &fake.requests_to("/incidents")[0];
    assert_eq!(first.query_value("total"), Some("false"));
    assert_eq!(first.query_value("sort_by"), Some("created_at:desc"));
    // The default window is the last 24 hours.
    let since = chrono::DateTime::parse_from_rfc3339(first.query_value("since").unwrap()).unwrap();
    let until = chrono::DateTime::parse_from_rfc3339(first.query_value("until").unwrap()).unwrap();
    assert_eq!((until - since).num_hours(), 24);
    assert!((Utc::now() - until.with_timezone(&Utc)).num_minutes() < 5);
}

#[tokio::test]
async fn pages_are_capped_at_a_hundred_and_windows_at_six_months() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let credentials = connected(&fake).await;
    let connector = fake.connector();
    let page = connector
        .query(&ctx(), &credentials, "list_incidents", json!({"limit": 500, "statuses": ["triggered", "resolved"], "urgencies": ["high"], "service_ids": [SERVICE_ID]}))
        .await
        .unwrap();
    assert_eq!(page.next_cursor, None);
    assert_eq!(page.data["more"], false);
    let request = &fake.requests_to("/incidents")[0];
    assert_eq!(request.query_value("limit"), Some("100"));
    let statuses: Vec<&str> = request
        .query
        .iter()
        .filter(|(key, _)| key == "statuses[]")
        .map(|(_, value)| value.as_str())
        .collect();
    assert_eq!(statuses, ["triggered", "resolved"]);
    assert_eq!(request.query_value("service_ids[]"), Some(SERVICE_ID));

    let error = connector
        .query(
            &ctx(),
            &credentials,
            "list_incidents",
            json!({"since": "now-200d"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("since"));
    let error = connector
        .query(
            &ctx(),
            &credentials,
            "list_incidents",
            json!({"limit": 501}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("limit"));
    connector
        .query(
            &ctx(),
            &credentials,
            "list_incidents",
            json!({"all_time": true}),
        )
        .await
        .unwrap();
    let last = fake.requests_to("/incidents").pop().unwrap();
    assert_eq!(last.query_value("date_range"), Some("all"));
    assert_eq!(last.query_value("since"), None);
    let error = connector
        .query(
            &ctx(),
            &credentials,
            "list_incident_log_entries",
            json!({"incident_id": INCIDENT_ID, "limit": 201}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("limit"));
}

#[tokio::test]
async fn every_operation_reads_what_it_names() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let credentials = connected(&fake).await;
    let connector = fake.connector();
    let calls = [
        (
            "get_incident",
            json!({"incident_id": INCIDENT_ID}),
            "/incident/id",
            json!(INCIDENT_ID),
        ),
        (
            "list_incident_alerts",
            json!({"incident_id": INCIDENT_ID}),
            "/alerts/0/id",
            json!("PALERT1"),
        ),
        (
            "list_incident_log_entries",
            json!({"incident_id": INCIDENT_ID, "overview": true}),
            "/log_entries/0/type",
            json!("trigger_log_entry"),
        ),
        (
            "list_incident_notes",
            json!({"incident_id": INCIDENT_ID}),
            "/notes/0/content",
            json!("Rolled back deploy 4711"),
        ),
        (
            "list_related_change_events",
            json!({"incident_id": INCIDENT_ID}),
            "/change_events/0/id",
            json!("PCHG1"),
        ),
        (
            "list_services",
            json!({"query": "API"}),
            "/services/0/id",
            json!(SERVICE_ID),
        ),
        (
            "get_service",
            json!({"service_id": SERVICE_ID}),
            "/service/name",
            json!("API Service"),
        ),
        (
            "list_oncalls",
            json!({"since": "now", "until": "now", "earliest": true}),
            "/oncalls/0/escalation_level",
            json!(1),
        ),
        (
            "list_change_events",
            json!({}),
            "/change_events/0/id",
            json!("PCHG1"),
        ),
        (
            "list_schedules",
            json!({}),
            "/schedules/0/name",
            json!("Primary"),
        ),
        (
            "list_escalation_policies",
            json!({}),
            "/escalation_policies/0/id",
            json!("PUS0KTE"),
        ),
    ];
    for (operation, params, pointer, expected) in calls {
        let output = connector
            .query(&ctx(), &credentials, operation, params)
            .await
            .unwrap_or_else(|error| panic!("{operation}: {error}"));
        assert_eq!(
            output.data.pointer(pointer),
            Some(&expected),
            "{operation}: {}",
            output.data
        );
    }
    let error = connector
        .query(
            &ctx(),
            &credentials,
            "get_incident",
            json!({"incident_id": "PNOPE"}),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.message().contains("/incidents/{id}"), "{error}");
}

#[tokio::test]
async fn provider_failures_map_to_what_the_caller_should_do() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let credentials = connected(&fake).await;
    let connector = fake.connector();
    let run = |operation: &'static str| {
        let connector = fake.connector();
        let credentials = credentials.clone();
        async move {
            connector
                .query(&ctx(), &credentials, operation, json!({}))
                .await
        }
    };

    // One 429 is waited out (Retry-After) and retried by the shared client.
    fake.inject(
        "/services",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    run("list_services").await.unwrap();
    assert_eq!(fake.requests_to("/services").len(), 2);

    // A 429 that persists reaches the caller with the wait.
    for _ in 0..3 {
        fake.inject(
            "/schedules",
            Fault::RateLimited {
                retry_after_secs: 1,
            },
        );
    }
    let error = run("list_schedules").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert!(
        error.message().contains("Rate limited by PagerDuty"),
        "{error}"
    );
    assert_eq!(error.retry_after(), Some(std::time::Duration::from_secs(1)));

    fake.inject("/oncalls", Fault::ServerError);
    let error = run("list_oncalls").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        error.message().contains("PagerDuty API request failed"),
        "{error}"
    );
    assert_eq!(error.provider_status(), Some(500));

    fake.deny("/escalation_policies");
    let error = run("list_escalation_policies").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(
        error.message().contains("Token lacks required permissions"),
        "{error}"
    );
    assert!(
        error.message().contains("Access Denied"),
        "PagerDuty's text passes through: {error}"
    );

    // A revoked API key cannot be refreshed: the caller is asked to reconnect.
    let mut revoked = credentials.clone();
    revoked.secrets = patchbay_core::RevealedJson::new(json!({"api_token": "revoked-key-77"}));
    let error = connector
        .query(&ctx(), &revoked, "list_services", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth);
    assert!(
        error.message().contains("Invalid or expired API token"),
        "{error}"
    );
    assert!(!format!("{error:?}").contains("revoked-key-77"));
}

// Webhooks.

fn vectors() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/pagerduty.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn request(body: &str, signature: Option<&str>, webhook_id: Option<&str>) -> InboundWebhook {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    if let Some(signature) = signature {
        headers.insert(SIGNATURE_HEADER, signature.parse().unwrap());
    }
    if let Some(id) = webhook_id {
        headers.insert(WEBHOOK_ID_HEADER, id.parse().unwrap());
    }
    InboundWebhook {
        headers,
        body: Bytes::from(body.to_owned()),
    }
}

async fn credentials_with_secrets(fake: &FakePagerduty, secrets: &[&str]) -> DynCredentials {
    let mut credentials = fake
        .connector()
        .authenticate(form(json!({"api_token": API_TOKEN})))
        .await
        .unwrap();
    for secret in secrets {
        credentials.secrets = with_added_webhook_secret(
            &credentials.secrets,
            &ProviderWebhookSecret::new((*secret).into(), Utc::now()),
        )
        .unwrap();
    }
    credentials
}

async fn verdict(
    fake: &FakePagerduty,
    credentials: &DynCredentials,
    request: &InboundWebhook,
) -> Result<patchbay_core::VerifiedDelivery, patchbay_core::Error> {
    let key = WebhookKey::Connection {
        config: &credentials.config,
        secrets: &credentials.secrets,
    };
    fake.connector().verify(&ctx(), key, request).await
}

#[tokio::test]
async fn the_official_signature_vectors_decide_as_pagerduty_documents() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let vectors = vectors();
    for vector in vectors["webhook_signature"]["vectors"].as_array().unwrap() {
        let secret = vector["secret"].as_str().unwrap();
        let credentials = credentials_with_secrets(&fake, &[secret]).await;
        let request = request(
            vector["body"].as_str().unwrap(),
            vector["header"].as_str(),
            None,
        );
        let outcome = verdict(&fake, &credentials, &request).await;
        let name = vector["name"].as_str().unwrap();
        if vector["expect"] == "accept" {
            let delivery = outcome.unwrap_or_else(|error| panic!("{name}: {error}"));
            let events = fake
                .connector()
                .normalize(&ctx(), &credentials.config, &delivery)
                .await
                .unwrap()
                .events;
            // The vector's payload, normalised exactly as the mapping table says.
            let alert = &events[0];
            assert_eq!(alert.source, "pagerduty");
            assert_eq!(alert.external_id, "PGR0VU2");
            assert_eq!(
                alert.dedup_key, "01BWDWL3NYY7LUFPZCC28QUCMK",
                "event.id without X-Webhook-Id"
            );
            assert_eq!(alert.title, "A little bump in the road");
            assert_eq!(alert.status, AlertStatus::Firing);
            assert_eq!(alert.severity, AlertSeverity::Critical, "priority P1");
            assert_eq!(alert.service.as_deref(), Some("API Service"));
            assert_eq!(
                alert.url.as_deref(),
                Some("https://acme.pagerduty.com/incidents/PGR0VU2")
            );
            assert_eq!(alert.labels["incident_number"], "2");
            assert_eq!(alert.labels["urgency"], "high");
            assert_eq!(alert.labels["service_id"], "PF9KMXH");
            assert_eq!(alert.labels["escalation_policy"], "Default");
            assert_eq!(alert.labels["teams"], "Engineering");
            assert_eq!(alert.labels["assignees"], "User 123");
            assert_eq!(alert.labels["event_type"], "incident.priority_updated");
            assert_eq!(alert.labels["status"], "triggered");
            assert_eq!(
                alert.raw["event"]["data"]["conference_bridge"]["conference_number"],
                1000
            );
        } else {
            let error = outcome
                .err()
                .unwrap_or_else(|| panic!("{name} must be refused"));
            assert_eq!(error.kind(), ErrorKind::AuthFailed, "{name}");
            assert!(!error.to_string().contains(secret));
        }
    }
    // The secret is used as given: its base64 decoding does not verify.
    let vector = &vectors["webhook_signature"]["vectors"][0];
    let body = vector["body"].as_str().unwrap();
    let decoded =
        String::from_utf8_lossy(&base64_decode(vector["secret"].as_str().unwrap())).into_owned();
    let credentials = credentials_with_secrets(&fake, &[&decoded]).await;
    assert!(verdict(
        &fake,
        &credentials,
        &request(body, vector["header"].as_str(), None)
    )
    .await
    .is_err());
}

fn base64_decode(text: &str) -> Vec<u8> {
    // Standard alphabet, enough for the vector's secret.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut count = 0;
    let mut out = Vec::new();
    for byte in text.bytes().filter(|byte| *byte != b'=') {
        let value = ALPHABET.iter().position(|c| *c == byte).unwrap() as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}

#[tokio::test]
async fn any_matching_signature_of_any_secret_passes_during_rotation() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let body = sample_payload("evt-1", "incident.triggered", INCIDENT_ID).to_string();
    let old = sign("old-secret-aaaa", body.as_bytes());
    let new = sign("new-secret-bbbb", body.as_bytes());
    let forged = sign("someone-else", body.as_bytes());

    // PagerDuty signs with both secrets while it rotates; the connection knows only the new one.
    let credentials = credentials_with_secrets(&fake, &["new-secret-bbbb"]).await;
    let both = format!("{old},{new}");
    verdict(
        &fake,
        &credentials,
        &request(&body, Some(&both), Some("wh-1")),
    )
    .await
    .unwrap();
    // Other versions and malformed entries are ignored, not fatal.
    let mixed = format!("v2=abc, v1=nothex,{new}");
    verdict(
        &fake,
        &credentials,
        &request(&body, Some(&mixed), Some("wh-1")),
    )
    .await
    .unwrap();
    // The connection holds both secrets; deliveries signed with either pass.
    let credentials =
        credentials_with_secrets(&fake, &["old-secret-aaaa", "new-secret-bbbb"]).await;
    verdict(&fake, &credentials, &request(&body, Some(&old), None))
        .await
        .unwrap();
    verdict(&fake, &credentials, &request(&body, Some(&new), None))
        .await
        .unwrap();

    let refused = [
        request(&body, Some(&forged), None),
        request(&body, None, None),
        request(&body, Some(""), None),
        request(&body, Some("v1="), None),
        request(&body, Some(&old.replace("v1=", "v0=")), None),
        request(&format!("{body} "), Some(&old), None),
        request(&body.replace("triggered", "resolved"), Some(&old), None),
        request("", Some(&old), None),
    ];
    for (index, delivery) in refused.iter().enumerate() {
        let error = verdict(&fake, &credentials, delivery)
            .await
            .err()
            .unwrap_or_else(|| panic!("variant {index} must be refused"));
        assert_eq!(error.kind(), ErrorKind::AuthFailed, "variant {index}");
        assert!(
            !error.to_string().contains("secret-aaaa")
                && !error.to_string().contains("secret-bbbb")
        );
    }
    // A connection without any secret refuses everything.
    let none = credentials_with_secrets(&fake, &[]).await;
    assert!(verdict(&fake, &none, &request(&body, Some(&old), None))
        .await
        .is_err());
}

async fn normalise(
    fake: &FakePagerduty,
    body: &str,
    webhook_id: Option<&str>,
) -> Result<Vec<patchbay_core::NormalizedAlert>, patchbay_core::Error> {
    let credentials = credentials_with_secrets(fake, &[WEBHOOK_SECRET]).await;
    let signature = sign(WEBHOOK_SECRET, body.as_bytes());
    let delivery = verdict(
        fake,
        &credentials,
        &request(body, Some(&signature), webhook_id),
    )
    .await?;
    fake.connector()
        .normalize(&ctx(), &credentials.config, &delivery)
        .await
        .map(|outcome| outcome.events)
}

#[tokio::test]
async fn deliveries_are_deduplicated_by_webhook_id_and_mapped_per_the_table() {
    let fake = FakePagerduty::start(API_TOKEN).await;
    let triggered = sample_payload("evt-1", "incident.triggered", INCIDENT_ID).to_string();
    let first = normalise(&fake, &triggered, Some("wh-77")).await.unwrap();
    let retried = normalise(&fake, &triggered, Some("wh-77")).await.unwrap();
    assert_eq!(first[0].dedup_key, "wh-77");
    assert_eq!(
        first[0].dedup_key, retried[0].dedup_key,
        "a retry keeps its X-Webhook-Id"
    );
    assert_eq!(first[0].severity, AlertSeverity::High, "P2");
    assert_eq!(
        first[0].started_at.unwrap().to_rfc3339(),
        "2026-12-05T07:59:00+00:00"
    );

    let resolved = sample_payload("evt-2", "incident.resolved", INCIDENT_ID).to_string();
    let closed = normalise(&fake, &resolved, Some("wh-78")).await.unwrap();
    assert_eq!(closed[0].status, AlertStatus::Resolved);
    assert_eq!(
        closed[0].external_id, first[0].external_id,
        "one incident, two transitions"
    );
    assert_ne!(closed[0].dedup_key, first[0].dedup_key);
    assert!(closed[0].ended_at.is_some());

    // Urgency decides when there is no priority.
    let mut low = sample_payload("evt-3", "incident.acknowledged", INCIDENT_ID);
    low["event"]["data"]["priority"] = Value::Null;
    low["event"]["data"]["urgency"] = json!("low");
    let acknowledged = normalise(&fake, &low.to_string(), None).await.unwrap();
    assert_eq!(acknowledged[0].severity, AlertSeverity::Low);
    assert_eq!(acknowledged[0].status, AlertStatus::Firing);
    assert_eq!(acknowledged[0].labels["status"], "acknowledged");
    assert_eq!(acknowledged[0].dedup_key, "evt-3");

    // Other resources are acknowledged and dropped.
    let service =
        json!({"event": vectors()["payload_examples_official"]["service.updated"]["event"]});
    assert!(normalise(&fake, &service.to_string(), Some("wh-79"))
        .await
        .unwrap()
        .is_empty());

    for (body, message) in [
        ("[1]", "Payload must be a JSON object"),
        ("{}", "Missing 'event' field in V3 webhook"),
        (
            r#"{"event": {"resource_type": "incident"}}"#,
            "Missing 'event_type' in event",
        ),
        (
            r#"{"event": {"event_type": "incident.triggered"}}"#,
            "Missing 'resource_type' in event",
        ),
    ] {
        let error = normalise(&fake, body, None).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{body}");
        assert_eq!(error.message(), message);
    }
}
