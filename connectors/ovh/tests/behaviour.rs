//! Behaviour users rely on, against the fake OVHcloud: the `$1$` signature with
//! OVHcloud's published vectors and its negative cases, the server-clock delta,
//! every connect-form and parameter check, the fan-out cap and concurrency bound,
//! error mapping, the feature flag, and the per-region OAuth flow and refresh
//! (a refused refresh never hands back the old token).

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use patchbay_connector_ovh::client::signature;
use patchbay_connector_ovh::fake::{
    self as fake_ovh, AppKeys, FakeOvh, Fault, ProviderFake, KUBE_IDS, NICHANDLE, PROJECT_ID,
    SERVER_NAMES,
};
use patchbay_connector_ovh::query::{MAX_CONCURRENCY, MAX_ITEMS};
use patchbay_connector_ovh::{DESCRIPTOR, DISABLED_MESSAGE, FEATURE_FLAG, REGIONAL_OAUTH};
use patchbay_core::{
    AuthRequest, CheckOutcome, ConnectorContext, ConnectorEnv, DynConnector, DynCredentials,
    ErrorKind, FormFields, RevealedJson, Tenant, ValidationReport, ValidationStatus,
};
use patchbay_oauth::{CallbackParams, OAuthEngine, StartRequest, TokenRefresher};
use patchbay_store::{
    ConnectionRecord, ConnectionStatus, LocalSecretStore, MasterKey, RecordStore, SecretLocation,
    SecretStore, SecretTenant, SqliteRecordStore,
};
use serde_json::{json, Map, Value};

const AK: &str = "behaviourAk7d1e2f";
const AS: &str = "behaviourAs9c2d4a7b1e3f5a6b8c0d2e";
const CK: &str = "behaviourCk3e8b1f07a9c2d4e6f8a0b";

const VECTORS: &str = include_str!("../fixtures/ovh-signature-vectors.json");

fn keys() -> AppKeys {
    AppKeys {
        application_key: AK.to_owned(),
        application_secret: AS.to_owned(),
        consumer_key: CK.to_owned(),
    }
}

fn ctx() -> ConnectorContext {
    ConnectorContext {
        connection_id: Some("behaviour-connection".to_owned()),
        tenant: None,
    }
}

fn form_fields(overrides: Value) -> Value {
    let mut form = json!({"region": "ovh-eu", "application_key": AK, "application_secret": AS, "consumer_key": CK});
    for (key, value) in overrides.as_object().unwrap() {
        if value.is_null() {
            form.as_object_mut().unwrap().remove(key);
        } else {
            form[key] = value.clone();
        }
    }
    form
}

fn form(value: Value) -> AuthRequest {
    AuthRequest::Form(FormFields(value.as_object().cloned().unwrap_or_default()))
}

async fn connect(fake: &FakeOvh, fields: Value) -> (DynCredentials, ValidationReport) {
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

async fn query(
    fake: &FakeOvh,
    credentials: &DynCredentials,
    operation: &str,
    params: Value,
) -> patchbay_core::Result<patchbay_core::QueryOutput> {
    fake.connector()
        .query(&ctx(), credentials, operation, params)
        .await
}

// --- The signature ---------------------------------------------------------------

#[test]
fn every_published_vector_signs_as_published() {
    let vectors: Value = serde_json::from_str(VECTORS).unwrap();
    let signing = &vectors["app_key_signature"];
    let credentials = &signing["credentials"];
    let list = signing["vectors"].as_array().unwrap();
    assert_eq!(list.len(), 11);
    for vector in list {
        assert_eq!(
            signature(
                credentials["application_secret"].as_str().unwrap(),
                credentials["consumer_key"].as_str().unwrap(),
                vector["method"].as_str().unwrap(),
                vector["url"].as_str().unwrap(),
                vector["body"].as_str().unwrap(),
                vector["timestamp"].as_i64().unwrap(),
            ),
            vector["expected_X-Ovh-Signature"].as_str().unwrap(),
            "{vector}"
        );
    }
}

#[test]
fn changing_any_signed_part_changes_the_signature() {
    let secret = "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjk";
    let consumer = "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KY";
    let url = "https://eu.api.ovh.com/1.0/auth";
    let good = signature(secret, consumer, "GET", url, "", 1_457_018_875);
    assert_eq!(good, "$1$e9556054b6309771395efa467c22e627407461ad");
    for other in [
        signature(
            "9ufkBmLaTQ9nz5yMUlg79taH0GNnzDjK",
            consumer,
            "GET",
            url,
            "",
            1_457_018_875,
        ),
        signature(
            secret,
            "5mBuy6SUQcRw2ZUxg0cG68BoDKpED4KZ",
            "GET",
            url,
            "",
            1_457_018_875,
        ),
        signature(secret, consumer, "get", url, "", 1_457_018_875),
        signature(
            secret,
            consumer,
            "GET",
            "https://ca.api.ovh.com/1.0/auth",
            "",
            1_457_018_875,
        ),
        signature(secret, consumer, "GET", url, "{}", 1_457_018_875),
        signature(secret, consumer, "GET", url, "", 1_457_018_876),
    ] {
        assert_ne!(other, good);
        assert!(other.starts_with("$1$") && other.len() == 43, "{other}");
    }
}

#[tokio::test]
async fn a_wrong_application_secret_is_refused_by_signature_and_not_echoed() {
    let fake = FakeOvh::start(Some(keys())).await;
    let wrong = "behaviourAsWRONG4a7b1e3f5a6b8c0d2e";
    let (_, report) = connect(&fake, form_fields(json!({"application_secret": wrong}))).await;
    assert_eq!(report.overall, ValidationStatus::Failed);
    let credentials = check(&report, "credentials");
    assert_eq!(credentials.outcome, CheckOutcome::Failed);
    assert!(
        credentials.detail.contains("Invalid signature"),
        "{}",
        credentials.detail
    );
    assert!(credentials
        .detail
        .contains("OVH authentication expired. Please reconnect your account."));
    assert_eq!(
        check(&report, "cloud_projects").outcome,
        CheckOutcome::Skipped
    );
    let text = format!("{report:?}");
    for secret in [wrong, AS, CK, AK] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
}

#[tokio::test]
async fn a_wrong_application_or_consumer_key_fails_the_mandatory_check() {
    let fake = FakeOvh::start(Some(keys())).await;
    for (field, value, message) in [
        (
            "application_key",
            "behaviourAkWRONG1",
            "This application key is invalid",
        ),
        (
            "consumer_key",
            "behaviourCkWRONGb1f07a9c2d4e6f8a0b",
            "This credential does not exist",
        ),
    ] {
        let (_, report) = connect(&fake, form_fields(json!({field: value}))).await;
        assert_eq!(report.overall, ValidationStatus::Failed, "{field}");
        let detail = &check(&report, "credentials").detail;
        assert!(detail.contains(message), "{detail}");
        assert!(!detail.contains(value));
    }
}

// --- The server clock ------------------------------------------------------------

#[tokio::test]
async fn signed_requests_use_the_clock_of_auth_time() {
    let fake = FakeOvh::start(Some(keys())).await;
    // OVHcloud's clock an hour ahead: a local timestamp would be refused as out of time.
    fake.set_clock_offset(3600);
    let (credentials, report) = connect(&fake, form_fields(json!({}))).await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    assert!(
        check(&report, "credentials").detail.contains("+3600 s")
            || check(&report, "credentials").detail.contains("+3599 s")
            || check(&report, "credentials").detail.contains("+3601 s")
    );
    let output = query(&fake, &credentials, "list_dedicated_servers", json!({}))
        .await
        .unwrap();
    assert_eq!(output.data["servers"].as_array().unwrap().len(), 3);
    let expected = Utc::now().timestamp() + 3600;
    let signed: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|request| request.auth.as_deref() == Some("signed"))
        .collect();
    assert!(signed.len() >= 4);
    for request in &signed {
        let sent = request.timestamp.unwrap();
        assert!((sent - expected).abs() <= 5, "{sent} vs {expected}");
    }
    // /auth/time is unsigned, and read once per validation or query.
    let times = fake.requests_to("/auth/time");
    assert_eq!(times.len(), 2);
    for request in times {
        assert_eq!(request.auth, None);
        for header in [
            "x-ovh-signature",
            "x-ovh-consumer",
            "x-ovh-timestamp",
            "authorization",
        ] {
            assert!(!request.has_header(header), "{header}");
        }
    }
}

#[tokio::test]
async fn a_clock_far_off_without_correction_is_refused_by_the_fake() {
    // The fake does check timestamps: a request signed an hour late is refused.
    let fake = FakeOvh::start(Some(keys())).await;
    let url = format!("{}/eu/1.0/me", fake.base_url());
    let late = Utc::now().timestamp() - 3600;
    let answer = reqwest_get(&url, late, &signature(AS, CK, "GET", &url, "", late)).await;
    assert_eq!(answer.0, 400);
    assert_eq!(answer.1["message"], "Query out of time");
    let now = Utc::now().timestamp();
    let answer = reqwest_get(&url, now, &signature(AS, CK, "GET", &url, "", now)).await;
    assert_eq!(answer.0, 200, "{}", answer.1);
    let answer = reqwest_get(
        &url,
        now,
        &signature(AS, CK, "GET", &format!("{url}x"), "", now),
    )
    .await;
    assert_eq!(answer.0, 400);
    assert_eq!(
        answer.1,
        json!({"class": "Client::BadRequest", "message": "Invalid signature", "errorCode": "INVALID_SIGNATURE", "httpCode": "400 Bad Request"})
    );
}

async fn reqwest_get(url: &str, timestamp: i64, signed: &str) -> (u16, Value) {
    let http = patchbay_http::HttpClient::new(patchbay_http::HttpConfig::default()).unwrap();
    let response = http
        .get(url)
        .header("X-Ovh-Application", AK)
        .header("X-Ovh-Consumer", CK)
        .header("X-Ovh-Timestamp", &timestamp.to_string())
        .header("X-Ovh-Signature", signed)
        .send()
        .await
        .unwrap();
    (
        response.status.as_u16(),
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

// --- Connect form and validation -------------------------------------------------

#[tokio::test]
async fn every_connect_field_check_names_its_field() {
    let fake = FakeOvh::start(Some(keys())).await;
    let connector = fake.connector();
    for (overrides, field, message) in [
        (
            json!({"region": null}),
            "region",
            "Missing region. Must be one of: ovh-eu, ovh-ca, ovh-us",
        ),
        (
            json!({"region": "eu"}),
            "region",
            "Invalid region. Must be one of: ovh-eu, ovh-ca, ovh-us",
        ),
        (
            json!({"application_key": null}),
            "application_key",
            "Application key is required",
        ),
        (
            json!({"application_secret": " "}),
            "application_secret",
            "Application secret is required",
        ),
        (
            json!({"consumer_key": null}),
            "consumer_key",
            "Consumer key is required",
        ),
        (
            json!({"application_key": "ab-cd-ef-gh"}),
            "application_key",
            "Application key is malformed: OVHcloud keys are 8 to 128 letters and digits",
        ),
        (
            json!({"application_secret": "short"}),
            "application_secret",
            "Application secret is malformed: OVHcloud keys are 8 to 128 letters and digits",
        ),
        (
            json!({"consumer_key": "has spaces in it 1234"}),
            "consumer_key",
            "Consumer key is malformed: OVHcloud keys are 8 to 128 letters and digits",
        ),
        (
            json!({"region": 3}),
            "region",
            "connect field `region` must be a string",
        ),
    ] {
        let error = connector
            .authenticate(form(form_fields(overrides.clone())))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{overrides}");
        assert_eq!(error.field(), Some(field), "{overrides}");
        assert_eq!(error.message(), message, "{overrides}");
    }
    assert!(
        fake.requests().is_empty(),
        "no call before the form is whole"
    );
}

#[tokio::test]
async fn good_keys_pass_every_check_and_fill_the_account() {
    let fake = FakeOvh::start(Some(keys())).await;
    let (credentials, report) = connect(&fake, form_fields(json!({"region": "ovh-us"}))).await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    assert_eq!(
        report.check_ids(),
        ["credentials", "cloud_projects", "dedicated_servers"]
    );
    assert!(check(&report, "credentials").detail.contains(NICHANDLE));
    assert!(check(&report, "credentials").detail.contains("ovh-us"));
    assert_eq!(
        check(&report, "cloud_projects").detail,
        "1 Public Cloud project(s)"
    );
    assert_eq!(
        check(&report, "dedicated_servers").detail,
        "3 dedicated server(s)"
    );
    assert_eq!(credentials.config["region"], "ovh-us");
    assert_eq!(credentials.config["auth_method"], "application_key");
    assert_eq!(credentials.config["nichandle"], NICHANDLE);
    assert!(fake.requests().iter().all(|request| request.region == "us"));
    assert!(!credentials.config.to_string().contains(CK));
}

#[tokio::test]
async fn a_denied_project_list_is_a_failed_optional_check_naming_iam() {
    let fake = FakeOvh::start(Some(keys())).await;
    fake.forbid("/cloud/project");
    let (_, report) = connect(&fake, form_fields(json!({}))).await;
    assert_eq!(report.overall, ValidationStatus::Degraded, "{report:?}");
    let projects = check(&report, "cloud_projects");
    assert_eq!(projects.outcome, CheckOutcome::Failed);
    assert!(
        projects.detail.contains("IAM permissions required"),
        "{}",
        projects.detail
    );
    assert!(projects.detail.contains("This call has not been granted"));
    assert_eq!(
        check(&report, "dedicated_servers").outcome,
        CheckOutcome::Ok
    );
}

#[tokio::test]
async fn each_validation_line_fails_on_its_own_cause() {
    // Dedicated servers denied: an optional line, the connection degraded.
    let fake = FakeOvh::start(Some(keys())).await;
    fake.forbid("/dedicated/server");
    let (_, report) = connect(&fake, form_fields(json!({}))).await;
    assert_eq!(report.overall, ValidationStatus::Degraded, "{report:?}");
    let servers = check(&report, "dedicated_servers");
    assert!(!servers.mandatory);
    assert_eq!(servers.outcome, CheckOutcome::Failed);
    assert!(
        servers
            .detail
            .starts_with("IAM permissions required for /dedicated/server"),
        "{}",
        servers.detail
    );
    assert_eq!(check(&report, "cloud_projects").outcome, CheckOutcome::Ok);

    // The account call denied by IAM: the mandatory line fails and the rest is skipped.
    let fake = FakeOvh::start(Some(keys())).await;
    fake.forbid("/me");
    let (_, report) = connect(&fake, form_fields(json!({}))).await;
    assert_eq!(report.overall, ValidationStatus::Failed, "{report:?}");
    let credentials = check(&report, "credentials");
    assert_eq!(credentials.outcome, CheckOutcome::Failed);
    assert!(
        credentials
            .detail
            .starts_with("IAM permissions required for /me"),
        "{}",
        credentials.detail
    );
    for id in ["cloud_projects", "dedicated_servers"] {
        assert_eq!(check(&report, id).outcome, CheckOutcome::Skipped, "{id}");
    }

    // OVHcloud failing: an error (retry later), not a verdict on the credentials.
    let fake = FakeOvh::start(Some(keys())).await;
    for _ in 0..9 {
        fake.inject("/me", Fault::ServerError);
    }
    let (_, report) = connect(&fake, form_fields(json!({}))).await;
    let credentials = check(&report, "credentials");
    assert_eq!(credentials.outcome, CheckOutcome::Error, "{credentials:?}");
    assert!(
        credentials.detail.starts_with("OVH API request failed"),
        "{}",
        credentials.detail
    );
}

// --- Operations ----------------------------------------------------------------

async fn signed_credentials(fake: &FakeOvh) -> DynCredentials {
    let (credentials, report) = connect(fake, form_fields(json!({}))).await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    credentials
}

#[tokio::test]
async fn every_operation_reads_its_endpoint() {
    let fake = FakeOvh::start(Some(keys())).await;
    let credentials = signed_credentials(&fake).await;
    let project = json!({"project_id": PROJECT_ID});
    let project_path = format!("/cloud/project/{PROJECT_ID}");
    let cases = [
        (
            "list_projects",
            json!({}),
            "projects",
            1,
            vec!["/cloud/project", project_path.as_str()],
        ),
        ("list_instances", project.clone(), "instances", 3, vec![]),
        ("list_kube_clusters", project.clone(), "clusters", 2, vec![]),
        ("list_databases", project.clone(), "databases", 2, vec![]),
        (
            "list_private_networks",
            project.clone(),
            "networks",
            2,
            vec![],
        ),
        ("get_quotas", project.clone(), "quotas", 2, vec![]),
        ("list_dedicated_servers", json!({}), "servers", 3, vec![]),
    ];
    for (operation, params, key, count, paths) in cases {
        fake.clear_requests();
        let output = query(&fake, &credentials, operation, params).await.unwrap();
        let items = output.data[key]
            .as_array()
            .unwrap_or_else(|| panic!("{operation}: {}", output.data));
        assert_eq!(items.len(), count, "{operation}");
        for path in paths {
            assert_eq!(fake.requests_to(path).len(), 1, "{operation} {path}");
        }
    }
    let instances = query(
        &fake,
        &credentials,
        "list_instances",
        json!({"project_id": PROJECT_ID, "region": "BHS5"}),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.requests_to(&format!("/cloud/project/{PROJECT_ID}/instance"))
            .last()
            .unwrap()
            .query_value("region"),
        Some("BHS5")
    );
    assert_eq!(instances.data["instances"][0]["name"], "web-1");
    let quotas = query(
        &fake,
        &credentials,
        "get_quotas",
        json!({"project_id": PROJECT_ID, "region": "GRA11"}),
    )
    .await
    .unwrap();
    assert_eq!(quotas.data["quotas"].as_array().unwrap().len(), 1);
    assert_eq!(quotas.data["quotas"][0]["instance"]["usedCores"], 6);
    let clusters = query(
        &fake,
        &credentials,
        "list_kube_clusters",
        json!({"project_id": PROJECT_ID}),
    )
    .await
    .unwrap();
    assert_eq!(clusters.data["clusters"][0]["id"], KUBE_IDS[0]);
    assert_eq!(clusters.data["clusters"][1]["version"], "1.30");
    let servers = query(&fake, &credentials, "list_dedicated_servers", json!({}))
        .await
        .unwrap();
    assert_eq!(servers.data["servers"][2]["name"], SERVER_NAMES[2]);
    assert_eq!(servers.data["servers"][0]["datacenter"], "gra3");
    assert!(
        servers.data["servers"][0].get("linkSpeed").is_none(),
        "trimmed to the listed fields"
    );
}

#[tokio::test]
async fn every_parameter_check_names_its_field() {
    let fake = FakeOvh::start(Some(keys())).await;
    let credentials = signed_credentials(&fake).await;
    fake.clear_requests();
    for (operation, params, field, message) in [
        ("list_instances", json!({}), "project_id", ""),
        (
            "list_instances",
            json!({"project_id": "../../me"}),
            "project_id",
            "`project_id` must be a Public Cloud project id: 32 hexadecimal characters",
        ),
        (
            "list_kube_clusters",
            json!({"project_id": "5c7e0f2b"}),
            "project_id",
            "`project_id` must be a Public Cloud project id: 32 hexadecimal characters",
        ),
        (
            "list_databases",
            json!({"project_id": PROJECT_ID, "limit": 0}),
            "limit",
            "`limit` must be from 1 to 200; got 0",
        ),
        (
            "list_private_networks",
            json!({"project_id": PROJECT_ID, "limit": 201}),
            "limit",
            "`limit` must be from 1 to 200; got 201",
        ),
        (
            "list_projects",
            json!({"limit": 500}),
            "limit",
            "`limit` must be from 1 to 200; got 500",
        ),
        (
            "list_instances",
            json!({"project_id": PROJECT_ID, "region": "GRA/11"}),
            "region",
            "`region` must be an OpenStack region name such as GRA11 or BHS5",
        ),
        (
            "get_quotas",
            json!({"project_id": PROJECT_ID, "region": ""}),
            "region",
            "`region` must be an OpenStack region name such as GRA11 or BHS5",
        ),
        (
            "list_dedicated_servers",
            json!({"limits": 5}),
            "limits",
            "`list_dedicated_servers` has no parameter `limits`; it takes: limit, cursor",
        ),
        ("list_projects", json!({"cursor": "forged"}), "cursor", ""),
    ] {
        let error = query(&fake, &credentials, operation, params.clone())
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "{operation} {params}: {error}"
        );
        assert_eq!(error.field(), Some(field), "{operation} {params}: {error}");
        if !message.is_empty() {
            assert_eq!(error.message(), message, "{operation} {params}");
        }
    }
    assert!(
        fake.requests()
            .iter()
            .all(|request| request.path == "/auth/time"),
        "nothing but the clock is read for refused parameters"
    );
}

#[tokio::test]
async fn id_lists_fan_out_under_the_item_cap_and_the_concurrency_bound() {
    let fake = FakeOvh::start(Some(keys())).await;
    let credentials = signed_credentials(&fake).await;
    fake.set_project_count(250);
    fake.set_detail_delay(Duration::from_millis(20));
    fake.clear_requests();
    let first = query(&fake, &credentials, "list_projects", json!({"limit": 200}))
        .await
        .unwrap();
    assert_eq!(
        first.data["projects"].as_array().unwrap().len(),
        MAX_ITEMS as usize
    );
    assert_eq!(first.data["total"], 250);
    assert_eq!(first.data["projects"][0]["project_id"], PROJECT_ID);
    let detail_reads = fake
        .requests()
        .iter()
        .filter(|request| request.path.starts_with("/cloud/project/"))
        .count();
    assert_eq!(
        detail_reads, 200,
        "one read per project of the page, no more"
    );
    let peak = fake.max_in_flight();
    assert!(peak <= MAX_CONCURRENCY, "{peak} reads in flight at once");
    assert!(peak > 1, "reads overlap ({peak})");
    let cursor = first.next_cursor.clone().expect("a next page");
    let second = query(
        &fake,
        &credentials,
        "list_projects",
        json!({"limit": 200, "cursor": cursor}),
    )
    .await
    .unwrap();
    assert_eq!(second.data["projects"].as_array().unwrap().len(), 50);
    assert_eq!(second.next_cursor, None);
    assert_eq!(
        second.data["projects"][0]["project_id"],
        format!("{:032x}", 200)
    );
}

#[tokio::test]
async fn a_missing_object_in_a_fan_out_is_not_found_with_the_provider_text() {
    let fake = FakeOvh::start(Some(keys())).await;
    let credentials = signed_credentials(&fake).await;
    let error = query(
        &fake,
        &credentials,
        "list_kube_clusters",
        json!({"project_id": "0123456789abcdef0123456789abcdef"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(
        error.message().contains("This service does not exist"),
        "{error}"
    );
    assert_eq!(error.provider_status(), Some(404));
}

#[tokio::test]
async fn provider_failures_map_to_their_kinds() {
    let fake = FakeOvh::start(Some(keys())).await;
    let credentials = signed_credentials(&fake).await;
    // Three faults outlast the client's two retries.
    for _ in 0..3 {
        fake.inject(
            "/dedicated/server",
            Fault::RateLimited {
                retry_after_secs: 1,
            },
        );
    }
    let error = query(&fake, &credentials, "list_dedicated_servers", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(1)));
    assert!(
        error.message().starts_with("Rate limited by OVHcloud (")
            && error.message().contains("Too many requests"),
        "{error}"
    );
    // A 500 is not retried (only 502, 503 and 504 are).
    fake.inject("/dedicated/server", Fault::ServerError);
    let error = query(&fake, &credentials, "list_dedicated_servers", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        error.message().starts_with("OVH API request failed ("),
        "{error}"
    );
    assert!(error.message().contains("Internal server error"));
    // One fault is retried away.
    fake.inject("/dedicated/server", Fault::Unavailable);
    let retried = query(&fake, &credentials, "list_dedicated_servers", json!({})).await;
    assert!(retried.is_ok(), "{retried:?}");
    // 403 for a path the account may not read.
    fake.forbid("/dedicated/server");
    let error = query(&fake, &credentials, "list_dedicated_servers", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(
        error
            .message()
            .starts_with("IAM permissions required for /dedicated/server"),
        "{error}"
    );
    // A consumer key OVHcloud no longer knows: the application key connection must be redone.
    let mut revoked = credentials.clone();
    revoked.secrets = RevealedJson::new(json!({
        "application_key": AK, "application_secret": AS, "consumer_key": "behaviourCkREVOKED07a9c2d4e6f8a0b"
    }));
    let error = query(&fake, &revoked, "list_projects", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth);
    assert!(
        error
            .message()
            .starts_with("OVH authentication expired. Please reconnect your account."),
        "{error}"
    );
    assert!(!format!("{error:?}").contains("REVOKED"));
}

#[tokio::test]
async fn a_rejected_bearer_token_is_auth_failed_so_the_host_refreshes() {
    let fake = FakeOvh::start(None).await;
    let (access, _) = fake.issue_tokens("eu");
    let connector = fake.connector();
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(grant(&access, "ovh-eu")))
        .await
        .unwrap();
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    fake.expire_access_tokens();
    let error = query(&fake, &credentials, "list_projects", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(error
        .message()
        .starts_with("OVH authentication expired. Please reconnect your account."));
    // A token from another region is refused in this one.
    let (ca_token, _) = fake.issue_tokens("ca");
    let wrong_region = connector
        .authenticate(AuthRequest::OAuth(grant(&ca_token, "ovh-eu")))
        .await
        .unwrap();
    let error = query(&fake, &wrong_region, "list_projects", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(!error.to_string().contains(&ca_token));
}

// --- Feature flag and descriptor -----------------------------------------------

#[test]
fn the_connector_is_off_until_its_flag_is_true() {
    assert_eq!(DESCRIPTOR.feature_flag, Some(FEATURE_FLAG));
    assert_eq!(FEATURE_FLAG, "NEXT_PUBLIC_ENABLE_OVH");
    assert_eq!(DESCRIPTOR.disabled_message, Some(DISABLED_MESSAGE));
    assert_eq!(DISABLED_MESSAGE, "OVH connector not enabled");
    assert!(!DESCRIPTOR.is_enabled(&ConnectorEnv::default()));
    assert!(!DESCRIPTOR.is_enabled(&ConnectorEnv::from_pairs([(FEATURE_FLAG, "false")])));
    assert!(DESCRIPTOR.is_enabled(&ConnectorEnv::from_pairs([(FEATURE_FLAG, "true")])));
    let spec = DESCRIPTOR.oauth.unwrap();
    assert_eq!(spec.callback_path, "/ovh_api/ovh/oauth2/callback");
    assert_eq!(spec.start_options, ["region"]);
    assert!(spec.pkce);
    for region in REGIONAL_OAUTH.regions {
        assert_eq!(region.spec.callback_path, spec.callback_path);
    }
}

#[test]
fn each_region_s_client_goes_only_to_that_region_s_endpoints() {
    let origins: Vec<(String, Vec<String>)> = REGIONAL_OAUTH
        .regions
        .iter()
        .map(|region| {
            (
                region.name.to_owned(),
                region
                    .spec
                    .origins()
                    .iter()
                    .map(url::Origin::ascii_serialization)
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        origins,
        [
            (
                "ovh-eu".to_owned(),
                vec![
                    "https://www.ovh.com".to_owned(),
                    "https://eu.api.ovh.com".to_owned()
                ]
            ),
            (
                "ovh-ca".to_owned(),
                vec![
                    "https://ca.ovh.com".to_owned(),
                    "https://ca.api.ovh.com".to_owned()
                ]
            ),
            (
                "ovh-us".to_owned(),
                vec![
                    "https://us.ovhcloud.com".to_owned(),
                    "https://api.us.ovhcloud.com".to_owned()
                ]
            ),
        ]
    );
    let ca = patchbay_core::OAuthClientCredentials::for_spec(
        "id",
        "canary-ca-secret".into(),
        &REGIONAL_OAUTH.regions[1].spec,
    );
    let eu_token = url::Url::parse("https://www.ovh.com/auth/oauth2/token").unwrap();
    assert_eq!(
        ca.secret_for(&eu_token).unwrap_err().kind(),
        ErrorKind::PermissionDenied
    );
    let ca_token = url::Url::parse("https://ca.ovh.com/auth/oauth2/token").unwrap();
    assert_eq!(
        ca.secret_for(&ca_token).unwrap().expose(),
        "canary-ca-secret"
    );
}

// --- OAuth per region, through the engine ----------------------------------------

const TUNNEL_CALLBACK: &str = "https://abc123.ngrok-free.app/ovh_api/ovh/oauth2/callback";

fn grant(token: &str, region: &str) -> patchbay_core::OAuthGrant {
    patchbay_core::OAuthGrant {
        access_token: token.into(),
        refresh_token: None,
        expires_at: None,
        scopes: vec!["all".to_owned()],
        token_type: Some("Bearer".to_owned()),
        extra: Map::new(),
        options: Map::from_iter([("region".to_owned(), json!(region))]),
    }
}

fn alice() -> Tenant {
    Tenant {
        user_id: "alice".into(),
        org_id: Some("acme".into()),
    }
}

async fn engine(fake: &FakeOvh, regions: &[&str]) -> (Arc<OAuthEngine>, Arc<dyn RecordStore>) {
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let mut env = fake.api_env();
    env.extend(FakeOvh::client_env(regions, TUNNEL_CALLBACK));
    env.push((FEATURE_FLAG.to_owned(), "true".to_owned()));
    let env = ConnectorEnv::from_pairs(env);
    let http = patchbay_http::HttpClient::from_env(&env).unwrap();
    let engine = Arc::new(OAuthEngine::new(
        http,
        Arc::clone(&records),
        env,
        "https://patchbay.test".into(),
    ));
    (engine, records)
}

fn start_with(options: Value) -> StartRequest {
    StartRequest {
        label: None,
        options: options.as_object().cloned().unwrap_or_default(),
        allow_writes: false,
    }
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

#[tokio::test]
async fn starting_oauth_checks_the_region_and_offers_only_configured_ones() {
    let fake = FakeOvh::start(None).await;
    let (engine, _) = engine(&fake, &["eu", "ca"]).await;
    let cases = [
        (
            json!({}),
            "options.region",
            "OVHcloud OAuth needs the option `region`; configured regions: ovh-eu, ovh-ca",
        ),
        (
            json!({"region": "ovh-fr"}),
            "options.region",
            "OVHcloud OAuth has no such `region`; it takes one of: ovh-eu, ovh-ca",
        ),
        (
            json!({"region": 1}),
            "options.region",
            "OVHcloud OAuth has no such `region`; it takes one of: ovh-eu, ovh-ca",
        ),
        (
            json!({"region": "ovh-us"}),
            "OVH_US_CLIENT_ID",
            "OAuth2 credentials not configured for ovh-us",
        ),
        (
            json!({"region": "ovh-eu", "project": "x"}),
            "options.project",
            "OVHcloud OAuth does not accept the option `project`; it takes: region",
        ),
    ];
    for (options, field, message) in cases {
        let error = engine
            .start(&alice(), &DESCRIPTOR, start_with(options.clone()))
            .await
            .unwrap_err();
        assert!(
            matches!(
                error.kind(),
                ErrorKind::InvalidInput | ErrorKind::InvalidConfig
            ),
            "{options}: {error}"
        );
        assert_eq!(error.field(), Some(field), "{options}");
        assert_eq!(error.message(), message, "{options}");
    }
    let error = engine
        .start(
            &alice(),
            &DESCRIPTOR,
            start_with(json!({"region": "ovh-us"})),
        )
        .await
        .unwrap_err();
    assert_eq!(
        error.hint(),
        Some("set OVH_US_CLIENT_ID and OVH_US_CLIENT_SECRET, then restart Patchbay")
    );
    let (none, _) = self::engine(&fake, &[]).await;
    let error = none
        .start(&alice(), &DESCRIPTOR, start_with(json!({})))
        .await
        .unwrap_err();
    assert_eq!(
        error.message(),
        "OVHcloud OAuth needs the option `region`; no region is configured"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn the_oauth_flow_runs_in_the_chosen_region_with_the_configured_redirect_uri() {
    let fake = FakeOvh::start(None).await;
    fake.register_callback("ca", TUNNEL_CALLBACK);
    let (engine, _) = engine(&fake, &["eu", "ca"]).await;
    let started = engine
        .start(
            &alice(),
            &DESCRIPTOR,
            start_with(json!({"region": "ovh-ca"})),
        )
        .await
        .unwrap();
    let state = started.begin_url.rsplit('/').next().unwrap().to_owned();
    let begun = engine
        .begin(&state, |id| (id == "ovh").then_some(&DESCRIPTOR))
        .await
        .unwrap();
    assert!(
        begun
            .authorize_url
            .starts_with("https://ca.ovh.com/auth/oauth2/authorize?"),
        "{}",
        begun.authorize_url
    );
    assert_eq!(begun.cookie.path, "/ovh_api/ovh/oauth2/callback");
    let authorize = query_of(&begun.authorize_url);
    assert_eq!(
        authorize["redirect_uri"], TUNNEL_CALLBACK,
        "the environment's URI, exactly"
    );
    assert_eq!(authorize["client_id"], fake_ovh::client_id("ca"));
    assert_eq!(authorize["scope"], "all");
    assert_eq!(authorize["code_challenge_method"], "S256");
    // The browser at the fake's CA authorize endpoint.
    let at_fake = begun.authorize_url.replacen(
        "https://ca.ovh.com",
        &format!("{}/ca-auth", fake.base_url()),
        1,
    );
    let http = patchbay_http::HttpClient::new(patchbay_http::HttpConfig::default()).unwrap();
    let answer = http.get(&at_fake).send().await.unwrap();
    assert_eq!(answer.status.as_u16(), 302);
    let location = answer.header("location").unwrap().to_owned();
    assert!(location.starts_with(TUNNEL_CALLBACK), "{location}");
    let back = query_of(&location);
    let completed = engine
        .complete(
            &DESCRIPTOR,
            CallbackParams {
                code: Some(back["code"].clone()),
                state: Some(back["state"].clone()),
                error: None,
                error_description: None,
            },
            Some(begun.cookie.value.expose()),
        )
        .await
        .unwrap();
    assert_eq!(completed.options["region"], "ovh-ca");
    let token_request = fake.requests_to("/auth/oauth2/token").pop().unwrap();
    assert_eq!(token_request.region, "ca");
    assert_eq!(
        token_request.form_value("redirect_uri"),
        Some(TUNNEL_CALLBACK)
    );
    assert_eq!(
        token_request.form_value("client_id"),
        Some(fake_ovh::client_id("ca").as_str())
    );
    assert_eq!(
        token_request.form_value("client_secret"),
        Some("[redacted]")
    );
    assert!(
        fake.requests().iter().all(|request| request.region == "ca"),
        "nothing went to another region's servers"
    );
    let connector = fake.connector();
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(completed.grant))
        .await
        .unwrap();
    assert_eq!(credentials.config["region"], "ovh-ca");
    assert_eq!(credentials.config["auth_method"], "oauth");
    let report = connector.validate(&ctx(), &mut credentials).await.unwrap();
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    let output = query(&fake, &credentials, "list_projects", json!({}))
        .await
        .unwrap();
    assert_eq!(output.data["projects"][0]["project_id"], PROJECT_ID);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_refused_by_ovh() {
    let fake = FakeOvh::start(None).await;
    fake.register_callback(
        "eu",
        "https://elsewhere.example/ovh_api/ovh/oauth2/callback",
    );
    let (engine, _) = engine(&fake, &["eu"]).await;
    let started = engine
        .start(
            &alice(),
            &DESCRIPTOR,
            start_with(json!({"region": "ovh-eu"})),
        )
        .await
        .unwrap();
    let state = started.begin_url.rsplit('/').next().unwrap().to_owned();
    let begun = engine
        .begin(&state, |id| (id == "ovh").then_some(&DESCRIPTOR))
        .await
        .unwrap();
    let at_fake = begun.authorize_url.replacen(
        "https://www.ovh.com",
        &format!("{}/eu-auth", fake.base_url()),
        1,
    );
    let http = patchbay_http::HttpClient::new(patchbay_http::HttpConfig::default()).unwrap();
    let answer = http.get(&at_fake).send().await.unwrap();
    assert_eq!(answer.status.as_u16(), 400);
    assert!(answer.text().contains("Invalid redirect_uri"));
}

async fn stored_connection(
    records: &Arc<dyn RecordStore>,
    secrets: &Arc<dyn SecretStore>,
    metadata: Value,
    refresh_token: &str,
) -> ConnectionRecord {
    let id = patchbay_oauth::state::generate_state();
    let secret_ref = secrets
        .put(
            &SecretLocation {
                tenant: SecretTenant::Org("acme".into()),
                connector: "ovh".into(),
                connection_id: id.clone(),
            },
            &RevealedJson::new(json!({
                "access_token": "canary-ovh-stale-access-token",
                "refresh_token": refresh_token,
                "expires_at": (Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339(),
            })),
        )
        .await
        .unwrap();
    let record = ConnectionRecord {
        id,
        tenant: alice(),
        connector: "ovh".into(),
        label: "OVHcloud".into(),
        metadata,
        secret_ref,
        status: ConnectionStatus::Active,
        webhook_token_hash: None,
        routing_key: None,
        allow_writes: false,
        last_report: None,
        created_at: Utc::now(),
        validated_at: None,
    };
    records.insert_connection(&record).await.unwrap();
    record
}

#[tokio::test]
async fn a_refresh_goes_to_the_connection_s_region_and_a_refused_one_never_returns_the_old_token() {
    let fake = FakeOvh::start(None).await;
    let (engine, records) = engine(&fake, &["eu", "us"]).await;
    let dir = tempfile::tempdir().unwrap();
    let secrets: Arc<dyn SecretStore> = Arc::new(
        LocalSecretStore::open(&dir.path().join("secrets"), MasterKey::generate()).unwrap(),
    );
    let refresher = TokenRefresher::new(
        Arc::clone(&engine),
        Arc::clone(&records),
        Arc::clone(&secrets),
        Duration::from_secs(300),
    );
    let (_, us_refresh) = fake.issue_tokens("us");
    let record = stored_connection(
        &records,
        &secrets,
        json!({"region": "ovh-us", "auth_method": "oauth"}),
        &us_refresh,
    )
    .await;
    let current = secrets.get(&record.secret_ref).await.unwrap();
    let fresh = refresher
        .fresh_secrets(&DESCRIPTOR, &record, current)
        .await
        .unwrap();
    let access = fresh.expose()["access_token"].as_str().unwrap().to_owned();
    assert!(access.starts_with("canary-ovh-at-us-"), "{access}");
    let token_request = fake.requests_to("/auth/oauth2/token").pop().unwrap();
    assert_eq!(token_request.region, "us");
    assert_eq!(
        token_request.form_value("grant_type"),
        Some("refresh_token")
    );

    // A refused refresh: an error, never the stale token, and the connection needs reconnecting.
    fake.refuse_refresh();
    let (_, eu_refresh) = fake.issue_tokens("eu");
    let record = stored_connection(
        &records,
        &secrets,
        json!({"region": "ovh-eu", "auth_method": "oauth"}),
        &eu_refresh,
    )
    .await;
    let current = secrets.get(&record.secret_ref).await.unwrap();
    let error = refresher
        .fresh_secrets(&DESCRIPTOR, &record, current)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth);
    assert_eq!(
        error.message(),
        "the OVHcloud authorization expired or was revoked; reconnect OVHcloud"
    );
    assert!(!format!("{error:?}").contains("canary-ovh-stale-access-token"));
    let status = records
        .get_connection(&alice(), &record.id)
        .await
        .unwrap()
        .unwrap()
        .status;
    assert_eq!(status, ConnectionStatus::NeedsReauth);

    // A transient failure of the token endpoint is an error too, not the old token.
    let (_, us_refresh) = fake.issue_tokens("us");
    let record = stored_connection(
        &records,
        &secrets,
        json!({"region": "ovh-us", "auth_method": "oauth"}),
        &us_refresh,
    )
    .await;
    for _ in 0..9 {
        fake.inject("/auth/oauth2/token", Fault::ServerError);
    }
    let current = secrets.get(&record.secret_ref).await.unwrap();
    let error = refresher
        .fresh_secrets(&DESCRIPTOR, &record, current)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");

    // A connection whose settings name no region cannot be refreshed anywhere.
    let record = stored_connection(&records, &secrets, json!({}), &us_refresh).await;
    let current = secrets.get(&record.secret_ref).await.unwrap();
    let error = refresher
        .fresh_secrets(&DESCRIPTOR, &record, current)
        .await
        .unwrap_err();
    assert_ne!(error.kind(), ErrorKind::Internal);
    assert!(error.message().contains("`region`"), "{error}");
}

#[test]
fn the_set_up_page_lists_the_messages_the_code_gives() {
    let page = include_str!("../../../docs/connectors/ovh.md");
    for message in [
        DISABLED_MESSAGE.to_owned(),
        patchbay_connector_ovh::NOT_CONFIGURED_MESSAGE.replace("{region}", "[region]"),
        "Missing region. Must be one of: ovh-eu, ovh-ca, ovh-us".to_owned(),
        "Invalid region. Must be one of: ovh-eu, ovh-ca, ovh-us".to_owned(),
        "Application key is required".to_owned(),
        "Application key is malformed: OVHcloud keys are 8 to 128 letters and digits".to_owned(),
        "No access_token received from OVH".to_owned(),
        "OVH authentication expired. Please reconnect your account.".to_owned(),
        "IAM permissions required for".to_owned(),
        "Rate limited by OVHcloud".to_owned(),
        "OVH API request failed".to_owned(),
        "Not authenticated with OVH".to_owned(),
        "OVHcloud OAuth needs the option `region`; configured regions:".to_owned(),
        "OVHcloud OAuth has no such `region`; it takes one of:".to_owned(),
        "the OVHcloud authorization expired or was revoked; reconnect OVHcloud".to_owned(),
        "/ovh_api/ovh/oauth2/callback".to_owned(),
        FEATURE_FLAG.to_owned(),
    ] {
        assert!(
            page.contains(&format!("\"{message}")) || page.contains(&message),
            "{message}"
        );
    }
    // The table's messages are the code's, in pieces where the code fills in a part.
    let source = [
        include_str!("../src/lib.rs"),
        include_str!("../src/auth.rs"),
        include_str!("../src/client.rs"),
        include_str!("../../../crates/patchbay-oauth/src/errors.rs"),
    ]
    .concat();
    for piece in [
        "OAuth2 credentials not configured for {region}",
        "OVH connector not enabled",
        "Missing region. Must be one of: {REGION_NAMES}",
        "Invalid region. Must be one of: {REGION_NAMES}",
        "{what} is required",
        "{what} is malformed: OVHcloud keys are 8 to 128 letters and digits",
        "No access_token received from OVH",
        "OVH authentication expired. Please reconnect your account.",
        "IAM permissions required for {template}",
        "Rate limited by OVHcloud",
        "OVH API request failed",
        "Not authenticated with OVH",
        "{} OAuth needs the option `{}`; {offered}",
        "{} OAuth has no such `{}`; {offered}",
        "the {name} authorization expired or was revoked; reconnect {name}",
    ] {
        assert!(source.contains(piece), "the code no longer says {piece:?}");
    }
}

#[tokio::test]
async fn a_connection_without_a_usable_credential_is_not_authenticated() {
    let fake = FakeOvh::start(None).await;
    let connector = fake.connector();
    let mut credentials = connector
        .authenticate(AuthRequest::OAuth(grant("canary-ovh-lost-token", "ovh-eu")))
        .await
        .unwrap();
    let mut secrets = credentials.secrets.expose().clone();
    secrets.as_object_mut().unwrap().remove("access_token");
    credentials.secrets = RevealedJson::new(secrets);
    let error = connector
        .validate(&ctx(), &mut credentials)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth);
    assert_eq!(error.message(), "Not authenticated with OVH");
    assert!(fake.requests().is_empty(), "nothing was sent");
}

// --- The same regional flow against the standard OAuth server ---------------------

/// The EU region's OAuth flow with `www.ovh.com` sent to `oauth2-mock-server` (which
/// answers at OVHcloud's `/auth/oauth2/*` paths): the region's client, PKCE, the
/// configured redirect URI, the refresh at the same region, and a refused refresh.
#[tokio::test]
async fn needs_oauth_mock_the_eu_flow_and_refresh_work_with_a_standard_provider() {
    let issuer = patchbay_testkit::services::oauth_issuer();
    let mut env = FakeOvh::client_env(&["eu"], TUNNEL_CALLBACK);
    env.extend([
        (FEATURE_FLAG.to_owned(), "true".to_owned()),
        (
            "PATCHBAY_UPSTREAM_OVERRIDES".to_owned(),
            format!("www.ovh.com={issuer}"),
        ),
        (
            "PATCHBAY_ALLOWED_PRIVATE_NETWORKS".to_owned(),
            "127.0.0.1/32".to_owned(),
        ),
    ]);
    let env = ConnectorEnv::from_pairs(env);
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let engine = OAuthEngine::new(
        patchbay_http::HttpClient::from_env(&env).unwrap(),
        records,
        env,
        "https://patchbay.test".into(),
    );
    let started = engine
        .start(
            &alice(),
            &DESCRIPTOR,
            start_with(json!({"region": "ovh-eu"})),
        )
        .await
        .unwrap();
    let state = started.begin_url.rsplit('/').next().unwrap().to_owned();
    let begun = engine
        .begin(&state, |id| (id == "ovh").then_some(&DESCRIPTOR))
        .await
        .unwrap();
    let authorize = query_of(&begun.authorize_url);
    assert_eq!(authorize["client_id"], fake_ovh::client_id("eu"));
    assert_eq!(authorize["code_challenge_method"], "S256");

    // The browser at the mock, which sends it back to the configured redirect URI.
    let at_mock = begun
        .authorize_url
        .replacen("https://www.ovh.com", &issuer, 1);
    assert_ne!(at_mock, begun.authorize_url, "{}", begun.authorize_url);
    let browser = patchbay_testkit::http::client_for_fake("");
    let answer = browser.get(&at_mock).send().await.unwrap();
    assert_eq!(answer.status.as_u16(), 302);
    let location = answer.header("location").unwrap().to_owned();
    assert!(location.starts_with(TUNNEL_CALLBACK), "{location}");
    let back = query_of(&location);
    let completed = engine
        .complete(
            &DESCRIPTOR,
            CallbackParams {
                code: Some(back["code"].clone()),
                state: Some(back["state"].clone()),
                error: None,
                error_description: None,
            },
            Some(begun.cookie.value.expose()),
        )
        .await
        .expect("the mock accepts the code, the PKCE verifier and the EU client");
    assert_eq!(completed.options["region"], "ovh-eu");
    let refresh_token = completed
        .grant
        .refresh_token
        .clone()
        .expect("the mock issued a refresh token");

    // The refresh goes to the region named in the connection's settings.
    let settings = json!({"region": "ovh-eu", "auth_method": "oauth"});
    let refreshed = engine
        .refresh_connection(&DESCRIPTOR, &settings, &refresh_token)
        .await
        .unwrap_or_else(|failure| panic!("{}", failure.error));
    assert_ne!(
        refreshed.access_token.expose(),
        completed.grant.access_token.expose()
    );

    // A refresh token the provider revoked is refused, with no token handed back.
    let failure = engine
        .refresh_connection(
            &DESCRIPTOR,
            &settings,
            &patchbay_core::SecretString::from("revoked-refresh-token"),
        )
        .await
        .unwrap_err();
    assert_eq!(failure.provider_code.as_deref(), Some("invalid_grant"));
}
