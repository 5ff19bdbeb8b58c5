//! Behaviour users rely on, against the fake Netdata Cloud: one validation line per
//! check and each one failing, paging and caps of every operation, 401/403/429/5xx
//! mapping with Netdata's own error text, the SSRF policy on a custom space URL,
//! requests matching the endpoints Netdata's own client uses, and webhooks: bearer
//! authentication, both payload versions, test deliveries and dedup.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use patchbay_connector_netdata::client::{SCOPE_HINT, TOKEN_HINT};
use patchbay_connector_netdata::fake::{
    test_payload, v1_payload, v2_payload, FakeNetdata, Fault, ProviderFake, ALL_NODES_ROOM,
    NODE_COUNT, OTHER_SPACE_ID, OTHER_SPACE_NAME, ROOM_COUNT, SPACE_ID, SPACE_NAME, SPACE_SLUG,
    WEB_ROOM,
};
use patchbay_connector_netdata::{NetdataConnector, DESCRIPTOR, WEBHOOK_PATH};
use patchbay_core::{
    token_hash, AlertSeverity, AlertStatus, AuthRequest, CheckOutcome, ConnectorContext,
    ConnectorEnv, DynConnector, DynCredentials, ErrorKind, FormFields, FromEnv, InboundWebhook,
    QueryOutput, RevealedJson, ValidationReport, ValidationStatus, WebhookAuth, WebhookKey,
    WebhookOutcome,
};
use patchbay_http::{AddressPolicy, Bytes, HeaderMap, HttpClient, HttpConfig, UpstreamOverrides};
use serde_json::{json, Value};

const TOKEN: &str = "behaviour-netdata-token-7f3a";
const WEBHOOK_TOKEN: &str = "pbw_behaviour-webhook-token-51c2";

// ---- set-up ----

/// A connector reaching `overrides`, without retries so one-shot faults show.
fn connector_with(overrides: &str) -> Arc<dyn DynConnector> {
    let http = HttpClient::new(HttpConfig {
        overrides: UpstreamOverrides::parse(overrides).unwrap(),
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retries: 0,
        ..HttpConfig::default()
    })
    .unwrap();
    Arc::new(NetdataConnector::new(http))
}

fn connector_for(fake: &FakeNetdata) -> Arc<dyn DynConnector> {
    connector_with(&fake.override_spec())
}

/// A connector configured the way an operator does it: through the environment.
fn connector_from_env(overrides: &str, allowed_private_networks: &str) -> Arc<dyn DynConnector> {
    let env = ConnectorEnv::from_pairs([
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides),
        (
            "PATCHBAY_ALLOWED_PRIVATE_NETWORKS",
            allowed_private_networks,
        ),
        ("PATCHBAY_HTTP_MAX_RETRIES", "0"),
    ]);
    Arc::new(NetdataConnector::from_env(&env).unwrap())
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

async fn authenticate(connector: &Arc<dyn DynConnector>, fields: Value) -> DynCredentials {
    connector.authenticate(form(fields)).await.unwrap()
}

async fn validate(
    connector: &Arc<dyn DynConnector>,
    credentials: &mut DynCredentials,
) -> ValidationReport {
    connector.validate(&ctx(), credentials).await.unwrap()
}

/// A fake, a connector pointed at it and validated credentials for `Ops Team`.
async fn connected() -> (FakeNetdata, Arc<dyn DynConnector>, DynCredentials) {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = authenticate(
        &connector,
        json!({"api_token": TOKEN, "space_name": SPACE_NAME}),
    )
    .await;
    let report = validate(&connector, &mut credentials).await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    fake.clear_requests();
    (fake, connector, credentials)
}

async fn query(
    connector: &Arc<dyn DynConnector>,
    credentials: &DynCredentials,
    operation: &str,
    params: Value,
) -> patchbay_core::Result<QueryOutput> {
    connector
        .query(&ctx(), credentials, operation, params)
        .await
}

fn check<'a>(report: &'a ValidationReport, id: &str) -> &'a patchbay_core::ValidationCheck {
    report
        .checks
        .iter()
        .find(|check| check.id == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:?}"))
}

/// Every page of `operation`, following `next_cursor`.
async fn all_pages(
    connector: &Arc<dyn DynConnector>,
    credentials: &DynCredentials,
    operation: &str,
    params: Value,
) -> Vec<QueryOutput> {
    let mut pages = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut params = params.clone();
        if let Some(cursor) = &cursor {
            params["cursor"] = json!(cursor);
        }
        let page = query(connector, credentials, operation, params)
            .await
            .unwrap();
        cursor = page.next_cursor.clone();
        pages.push(page);
        if cursor.is_none() {
            return pages;
        }
        assert!(pages.len() < 20, "paging does not end");
    }
}

fn ids(pages: &[QueryOutput], key: &str, field: &str) -> Vec<String> {
    pages
        .iter()
        .flat_map(|page| page.data[key].as_array().cloned().unwrap_or_default())
        .map(|item| item[field].as_str().unwrap_or_default().to_owned())
        .collect()
}

// ---- descriptor ----

#[test]
fn the_webhook_is_authenticated_by_a_bearer_token_on_the_alerts_route() {
    let webhook = DESCRIPTOR.webhook.unwrap();
    assert_eq!(webhook.path, "/netdata/alerts/webhook/{user_id}");
    assert_eq!(webhook.path, WEBHOOK_PATH);
    assert_eq!(
        webhook.auth,
        WebhookAuth::Token {
            header: "Authorization"
        }
    );
    let names: Vec<&str> = (DESCRIPTOR.operations)()
        .iter()
        .map(|operation| operation.name)
        .collect();
    assert_eq!(
        names,
        ["list_spaces", "list_rooms", "list_nodes", "list_alerts"]
    );
    assert!((DESCRIPTOR.operations)()
        .iter()
        .all(|operation| operation.read_only));
}

// ---- validation ----

#[tokio::test]
async fn a_good_token_and_space_validate_and_fill_the_space_and_rooms() {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = authenticate(
        &connector,
        json!({"api_token": TOKEN, "space_name": SPACE_NAME}),
    )
    .await;
    let report = validate(&connector, &mut credentials).await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    let ids: Vec<&str> = report
        .checks
        .iter()
        .map(|check| check.id.as_str())
        .collect();
    assert_eq!(ids, ["spaces", "space", "rooms"]);
    assert!(check(&report, "spaces").mandatory);
    assert!(check(&report, "space").mandatory);
    assert!(!check(&report, "rooms").mandatory);
    assert!(check(&report, "space").detail.contains(SPACE_NAME));
    assert!(check(&report, "rooms").detail.starts_with("5 room(s)"));

    let config = &credentials.config;
    assert_eq!(config["base_url"], "https://app.netdata.cloud");
    assert_eq!(config["space_id"], SPACE_ID);
    assert_eq!(config["space_name"], SPACE_NAME);
    assert_eq!(config["space_slug"], SPACE_SLUG);
    assert_eq!(config["room_ids"].as_array().unwrap().len(), ROOM_COUNT);
    assert!(!config.to_string().contains(TOKEN));

    let paths: Vec<String> = fake
        .requests()
        .iter()
        .map(|request| format!("{} {}", request.method, request.path))
        .collect();
    assert_eq!(
        paths,
        [
            "GET /api/v3/spaces".to_owned(),
            format!("GET /api/v2/spaces/{SPACE_ID}/rooms")
        ]
    );
}

#[tokio::test]
async fn the_space_is_found_by_id_slug_or_name_in_any_case_or_from_the_url() {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = connector_for(&fake);
    for fields in [
        json!({"api_token": TOKEN, "space_name": SPACE_ID}),
        json!({"api_token": TOKEN, "space_name": SPACE_SLUG}),
        json!({"api_token": TOKEN, "space_name": "ops team"}),
        json!({"api_token": TOKEN, "space_url": format!("https://app.netdata.cloud/spaces/{SPACE_SLUG}/rooms/all-nodes")}),
    ] {
        let mut credentials = authenticate(&connector, fields.clone()).await;
        let report = validate(&connector, &mut credentials).await;
        assert_eq!(report.overall, ValidationStatus::Ok, "{fields}: {report:?}");
        assert_eq!(credentials.config["space_id"], SPACE_ID, "{fields}");
    }
    let mut credentials = authenticate(
        &connector,
        json!({"api_token": TOKEN, "space_name": OTHER_SPACE_NAME}),
    )
    .await;
    validate(&connector, &mut credentials).await;
    assert_eq!(credentials.config["space_id"], OTHER_SPACE_ID);
}

#[tokio::test]
async fn a_rejected_token_fails_the_spaces_check_and_skips_the_rest() {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = authenticate(
        &connector,
        json!({"api_token": "not-the-token", "space_name": SPACE_NAME}),
    )
    .await;
    let report = validate(&connector, &mut credentials).await;
    assert_eq!(report.overall, ValidationStatus::Failed);
    let spaces = check(&report, "spaces");
    assert_eq!(spaces.outcome, CheckOutcome::Failed);
    assert_eq!(spaces.provider_status, Some(401));
    assert!(
        spaces
            .detail
            .contains("Unauthenticated (ErrUnauthenticated)"),
        "{}",
        spaces.detail
    );
    assert!(spaces.detail.contains(TOKEN_HINT), "{}", spaces.detail);
    assert!(!spaces.detail.contains("not-the-token"));
    assert_eq!(check(&report, "space").outcome, CheckOutcome::Skipped);
    assert_eq!(check(&report, "rooms").outcome, CheckOutcome::Skipped);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_missing_space_names_the_spaces_the_token_can_see() {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = authenticate(
        &connector,
        json!({"api_token": TOKEN, "space_name": "Production"}),
    )
    .await;
    let report = validate(&connector, &mut credentials).await;
    assert_eq!(report.overall, ValidationStatus::Failed);
    let space = check(&report, "space");
    assert_eq!(space.outcome, CheckOutcome::Failed);
    assert_eq!(
        space.detail,
        "Netdata space `Production` was not found; the token can see: `Ops Team`, `Staging` \
         (set space_name to one of them)"
    );
    assert_eq!(check(&report, "rooms").outcome, CheckOutcome::Skipped);
    assert!(credentials.config.get("space_id").is_none());
}

#[tokio::test]
async fn without_a_space_name_several_spaces_are_not_chosen_silently() {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = authenticate(&connector, json!({"api_token": TOKEN})).await;
    let report = validate(&connector, &mut credentials).await;
    assert_eq!(report.overall, ValidationStatus::Failed);
    let space = check(&report, "space");
    assert_eq!(space.outcome, CheckOutcome::Failed);
    assert!(
        space.detail.contains("`Ops Team`, `Staging`"),
        "{}",
        space.detail
    );
    assert!(space.detail.contains("set space_name"), "{}", space.detail);
}

#[tokio::test]
async fn rooms_that_cannot_be_read_degrade_the_connection() {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = authenticate(
        &connector,
        json!({"api_token": TOKEN, "space_name": SPACE_NAME}),
    )
    .await;
    fake.inject(
        &format!("/api/v2/spaces/{SPACE_ID}/rooms"),
        Fault::Forbidden,
    );
    let report = validate(&connector, &mut credentials).await;
    assert_eq!(report.overall, ValidationStatus::Degraded, "{report:?}");
    let rooms = check(&report, "rooms");
    assert_eq!(rooms.outcome, CheckOutcome::Failed);
    assert_eq!(rooms.provider_status, Some(403));
    assert!(
        rooms.detail.contains("PermissionAlertReadAll"),
        "{}",
        rooms.detail
    );
    assert_eq!(credentials.config["space_id"], SPACE_ID);
}

#[tokio::test]
async fn an_outage_during_validation_is_an_error_not_a_rejection() {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = connector_for(&fake);
    let mut credentials = authenticate(
        &connector,
        json!({"api_token": TOKEN, "space_name": SPACE_NAME}),
    )
    .await;
    fake.inject("/api/v3/spaces", Fault::Unavailable);
    let report = validate(&connector, &mut credentials).await;
    assert_eq!(report.overall, ValidationStatus::Failed);
    let spaces = check(&report, "spaces");
    assert_eq!(spaces.outcome, CheckOutcome::Error);
    assert_eq!(spaces.provider_status, Some(503));
}

#[tokio::test]
async fn a_missing_token_is_required_by_name() {
    let connector = connector_with("");
    let error = connector
        .authenticate(form(json!({"space_name": SPACE_NAME})))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("api_token"));
    assert_eq!(error.message(), "Netdata API token is required");
}

// ---- requests ----

#[tokio::test]
async fn requests_follow_netdatas_own_client() {
    // The endpoints and headers Netdata's Terraform provider uses, from the vendored facts.
    let facts: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/netdata.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let api = &facts["cloud_api"];
    assert_eq!(api["base"], "https://app.netdata.cloud");
    let endpoints = &api["endpoints_used_by_official_terraform_provider"];
    assert_eq!(endpoints["list_spaces"], "GET /api/v3/spaces");
    assert_eq!(
        endpoints["list_rooms"],
        "GET /api/v2/spaces/{spaceID}/rooms"
    );

    let (fake, connector, credentials) = connected().await;
    query(&connector, &credentials, "list_spaces", json!({}))
        .await
        .unwrap();
    query(&connector, &credentials, "list_rooms", json!({}))
        .await
        .unwrap();
    let requests = fake.requests();
    let spoken: Vec<String> = requests
        .iter()
        .map(|request| {
            format!("{} {}", request.method, request.path).replace(SPACE_ID, "{spaceID}")
        })
        .collect();
    assert_eq!(
        spoken,
        [
            endpoints["list_spaces"].as_str().unwrap(),
            endpoints["list_rooms"].as_str().unwrap()
        ]
    );
    let headers = &api["headers_sent_by_provider"];
    assert_eq!(headers["Authorization"], "Bearer <token>");
    for request in requests {
        assert_eq!(request.authorization_scheme.as_deref(), Some("Bearer"));
        assert_eq!(request.accept.as_deref(), headers["Accept"].as_str());
    }
}

// ---- operations ----

#[tokio::test]
async fn list_spaces_pages_through_every_space() {
    let (_fake, connector, credentials) = connected().await;
    let pages = all_pages(&connector, &credentials, "list_spaces", json!({"limit": 1})).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(ids(&pages, "spaces", "id"), [SPACE_ID, OTHER_SPACE_ID]);
    assert_eq!(pages[0].data["total"], 2);
    assert_eq!(pages[0].data["spaces"][0]["slug"], SPACE_SLUG);
    assert!(pages[0].next_cursor.as_deref().unwrap().starts_with("pb1."));
}

#[tokio::test]
async fn list_rooms_reads_the_connections_space_or_another_by_id() {
    let (fake, connector, credentials) = connected().await;
    let pages = all_pages(&connector, &credentials, "list_rooms", json!({"limit": 2})).await;
    assert_eq!(pages.len(), 3);
    let names = ids(&pages, "rooms", "name");
    assert_eq!(names, ["All nodes", "Batch", "Databases", "Edge", "Web"]);
    assert_eq!(pages[0].data["space_id"], SPACE_ID);
    assert_eq!(
        fake.requests_to(&format!("/api/v2/spaces/{SPACE_ID}/rooms"))
            .len(),
        3
    );

    let other = query(
        &connector,
        &credentials,
        "list_rooms",
        json!({"space_id": OTHER_SPACE_ID}),
    )
    .await
    .unwrap();
    assert_eq!(other.data["rooms"].as_array().unwrap().len(), 1);

    let error = query(
        &connector,
        &credentials,
        "list_rooms",
        json!({"space_id": "nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert_eq!(
        error.message(),
        "Netdata returned 404 Not Found: space not found (ErrSpaceNotFound)"
    );
    assert!(error.hint().unwrap().contains("list_spaces"));
}

#[tokio::test]
async fn list_nodes_posts_the_room_scope_and_pages_by_name() {
    let (fake, connector, credentials) = connected().await;
    let pages = all_pages(
        &connector,
        &credentials,
        "list_nodes",
        json!({"room_id": ALL_NODES_ROOM, "limit": 2}),
    )
    .await;
    assert_eq!(pages.len(), 3);
    let names = ids(&pages, "nodes", "name");
    assert_eq!(names.len(), NODE_COUNT);
    assert_eq!(names, ["db-1", "db-2", "web-1", "web-2", "web-3"]);
    let db2 = &pages[0].data["nodes"][1];
    assert_eq!(
        db2,
        &json!({"id": "node-db-2", "name": "db-2", "state": "unreachable",
                "version": "v2.1.0", "machine_guid": "guid-db-2"})
    );
    let path = format!("/api/v3/spaces/{SPACE_ID}/rooms/{ALL_NODES_ROOM}/nodes");
    let requests = fake.requests_to(&path);
    assert_eq!(requests.len(), 3);
    assert!(requests
        .iter()
        .all(|request| request.method == "POST"
            && request.body == Some(json!({"scope": {"nodes": []}}))));

    let web = query(
        &connector,
        &credentials,
        "list_nodes",
        json!({"room_id": WEB_ROOM}),
    )
    .await
    .unwrap();
    assert_eq!(web.data["total"], 3);
    assert_eq!(web.next_cursor, None);
}

#[tokio::test]
async fn list_alerts_gives_raised_alerts_critical_first_with_their_nodes() {
    let (fake, connector, credentials) = connected().await;
    let page = query(
        &connector,
        &credentials,
        "list_alerts",
        json!({"room_id": ALL_NODES_ROOM}),
    )
    .await
    .unwrap();
    let alerts = page.data["alerts"].as_array().unwrap();
    let summary: Vec<(String, String, String)> = alerts
        .iter()
        .map(|alert| {
            (
                alert["status"].as_str().unwrap().to_owned(),
                alert["name"].as_str().unwrap().to_owned(),
                alert["node"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("critical", "10min_cpu_usage", "web-1"),
        ("critical", "mysql_10s_slow_queries", "db-2"),
        ("warning", "ram_in_use", "web-2"),
        ("warning", "disk_space_usage", "db-1"),
    ]
    .map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned()));
    assert_eq!(summary, expected);
    assert_eq!(alerts[0]["value"], 97.2);
    assert_eq!(alerts[0]["last_transition"], "2024-05-01T12:00:00Z");
    assert_eq!(alerts[0]["node_id"], "node-web-1");
    assert_eq!(
        page.data["counts"],
        json!({"critical": 2, "warning": 2, "clear": 1, "other": 1})
    );
    let path = format!("/api/v2/spaces/{SPACE_ID}/rooms/{ALL_NODES_ROOM}/alerts");
    let request = &fake.requests_to(&path)[0];
    assert_eq!(request.method, "POST");
    assert_eq!(
        request.body,
        Some(json!({"options": ["instances", "values", "summary"]}))
    );

    let clear = query(
        &connector,
        &credentials,
        "list_alerts",
        json!({"room_id": ALL_NODES_ROOM, "status": ["clear"]}),
    )
    .await
    .unwrap();
    assert_eq!(clear.data["alerts"][0]["node"], "web-3");
    assert_eq!(clear.data["total"], 1);

    let pages = all_pages(
        &connector,
        &credentials,
        "list_alerts",
        json!({"room_id": ALL_NODES_ROOM, "limit": 3, "status": ["critical", "warning", "clear", "other"]}),
    )
    .await;
    assert_eq!(pages.len(), 2);
    assert_eq!(ids(&pages, "alerts", "name").len(), 6);
}

#[tokio::test]
async fn parameters_are_checked_before_anything_is_sent() {
    let (fake, connector, credentials) = connected().await;
    for (operation, params, field) in [
        (
            "list_nodes",
            json!({"room_id": ALL_NODES_ROOM, "limit": 201}),
            "limit",
        ),
        ("list_spaces", json!({"limit": 0}), "limit"),
        ("list_rooms", json!({"limit": 101}), "limit"),
        ("list_nodes", json!({"room_id": "  "}), "room_id"),
        ("list_alerts", json!({}), "room_id"),
        (
            "list_alerts",
            json!({"room_id": WEB_ROOM, "status": ["firing"]}),
            "status[0]",
        ),
    ] {
        let error = query(&connector, &credentials, operation, params.clone())
            .await
            .unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::InvalidInput,
            "{operation} {params}: {error}"
        );
        assert!(
            error.field() == Some(field) || error.message().contains(field),
            "{operation} {params}: {error:?}"
        );
    }
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());

    let mut no_space = credentials.clone();
    no_space.config.as_object_mut().unwrap().remove("space_id");
    let error = query(&connector, &no_space, "list_rooms", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("space_id"));
}

#[tokio::test]
async fn provider_failures_map_to_kinds_with_netdatas_text() {
    let (fake, connector, credentials) = connected().await;
    let path = format!("/api/v2/spaces/{SPACE_ID}/rooms/{WEB_ROOM}/alerts");
    let params = json!({"room_id": WEB_ROOM});

    fake.inject(&path, Fault::Unauthorized);
    let error = query(&connector, &credentials, "list_alerts", params.clone())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert_eq!(error.provider_status(), Some(401));
    assert_eq!(
        error.message(),
        "Netdata returned 401 Unauthorized: Unauthenticated (ErrUnauthenticated)"
    );
    assert_eq!(error.hint(), Some(TOKEN_HINT));

    fake.inject(&path, Fault::Forbidden);
    let error = query(&connector, &credentials, "list_alerts", params.clone())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::PermissionDenied);
    assert!(error
        .message()
        .contains("missing permission: PermissionAlertReadAll"));
    assert_eq!(error.hint(), Some(SCOPE_HINT));

    fake.inject(
        &path,
        Fault::RateLimited {
            retry_after_secs: 7,
        },
    );
    let error = query(&connector, &credentials, "list_alerts", params.clone())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
    assert!(error
        .message()
        .contains("too many requests (ErrTooManyRequests)"));

    for fault in [Fault::ServerError, Fault::Unavailable] {
        fake.inject(&path, fault);
        let error = query(&connector, &credentials, "list_alerts", params.clone())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Unavailable, "{fault:?}");
        assert!(error.message().starts_with("Netdata returned 5"), "{error}");
    }
    let error = query(
        &connector,
        &credentials,
        "list_alerts",
        json!({"room_id": "room-nope"}),
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotFound);
    assert!(error.message().contains("room not found"));
}

#[tokio::test]
async fn transient_failures_are_retried() {
    let fake = FakeNetdata::start(TOKEN).await;
    let connector = Arc::new(fake.connector()) as Arc<dyn DynConnector>;
    let mut credentials = authenticate(
        &connector,
        json!({"api_token": TOKEN, "space_name": SPACE_NAME}),
    )
    .await;
    validate(&connector, &mut credentials).await;
    let path = format!("/api/v3/spaces/{SPACE_ID}/rooms/{WEB_ROOM}/nodes");
    fake.inject(&path, Fault::Unavailable);
    let page = query(
        &connector,
        &credentials,
        "list_nodes",
        json!({"room_id": WEB_ROOM}),
    )
    .await
    .unwrap();
    assert_eq!(page.data["total"], 3);
    assert_eq!(fake.requests_to(&path).len(), 2, "the POST read is retried");
}

// ---- SSRF policy on a custom space URL ----

/// A loopback listener that counts the connections made to it and answers none.
struct Listener {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                drop(stream);
            }
        });
        Self { port, connections }
    }
}

#[tokio::test]
async fn internal_space_urls_are_refused_naming_the_host_and_the_rule() {
    let connector = connector_from_env("", "");
    for (space_url, rule) in [
        ("https://127.0.0.1", "127.0.0.1 is a loopback address"),
        (
            "https://10.0.0.1/spaces/ops",
            "10.0.0.1 is a private address (RFC 1918)",
        ),
        (
            "https://169.254.169.254",
            "169.254.169.254 is a cloud metadata address",
        ),
        ("https://[::1]:8443", "::1 is a loopback address"),
    ] {
        let error = connector
            .authenticate(form(json!({"api_token": TOKEN, "space_url": space_url})))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{space_url}");
        assert_eq!(error.field(), Some("space_url"), "{space_url}");
        assert!(error.message().starts_with("refused "), "{error}");
        assert!(error.message().contains(rule), "{space_url}: {error}");
        assert!(
            error
                .message()
                .contains("PATCHBAY_ALLOWED_PRIVATE_NETWORKS="),
            "{space_url}: {error}"
        );
        assert!(!error.to_string().contains(TOKEN));
    }
}

#[tokio::test]
async fn plain_http_needs_the_operators_opt_in() {
    let connector = connector_from_env("", "");
    for space_url in ["http://netdata.example.com", "http://93.184.216.34"] {
        let error = connector
            .authenticate(form(json!({"api_token": TOKEN, "space_url": space_url})))
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some("space_url"), "{space_url}");
        assert!(
            error.message().contains("plain http"),
            "{space_url}: {error}"
        );
    }
    // Netdata Cloud's own address is fixed: plain http to it is refused too.
    let error = connector
        .authenticate(form(
            json!({"api_token": TOKEN, "space_url": "http://app.netdata.cloud"}),
        ))
        .await
        .unwrap_err();
    assert_eq!(error.field(), Some("space_url"));
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_refused_without_connecting() {
    let listener = Listener::start().await;
    let connector = connector_from_env("", "");
    let space_url = format!("https://localhost:{}", listener.port);
    // A host name passes the connect-time check; its addresses are checked when resolved.
    let credentials = authenticate(
        &connector,
        json!({"api_token": TOKEN, "space_url": space_url, "space_name": SPACE_NAME}),
    )
    .await;
    let error = query(&connector, &credentials, "list_spaces", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
    assert_eq!(error.field(), Some("space_url"));
    assert!(
        error.message().starts_with(&format!(
            "refused {space_url}/api/v3/spaces: localhost resolves to "
        )),
        "{error}"
    );
    assert!(error.message().contains("a loopback address"), "{error}");
    assert_eq!(listener.connections.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_stored_custom_url_is_checked_where_each_request_really_goes() {
    let fake = FakeNetdata::start(TOKEN).await;
    // The operator points netdata.internal.example at a loopback fake but has not allowed it.
    let connector =
        connector_from_env(&format!("netdata.internal.example={}", fake.base_url()), "");
    let credentials = DynCredentials {
        config: json!({"base_url": "https://netdata.internal.example", "space_id": SPACE_ID}),
        secrets: RevealedJson::new(json!({"api_token": TOKEN})),
    };
    let error = query(&connector, &credentials, "list_rooms", json!({}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
    assert!(
        error.message().contains("127.0.0.1 is a loopback address"),
        "{error}"
    );
    assert!(fake.requests().is_empty(), "{:?}", fake.requests());
}

#[tokio::test]
async fn the_allowlist_admits_exactly_what_it_names() {
    let fake = FakeNetdata::start(TOKEN).await;
    let space_url = fake.base_url();
    let fields = json!({"api_token": TOKEN, "space_url": space_url, "space_name": SPACE_NAME});

    // Allowed: the custom URL on loopback connects, over plain http, to the fake.
    let allowed = connector_from_env("", "127.0.0.1/32");
    let mut credentials = authenticate(&allowed, fields.clone()).await;
    assert_eq!(
        credentials.config["base_url"],
        space_url.trim_end_matches('/')
    );
    let report = validate(&allowed, &mut credentials).await;
    assert_eq!(report.overall, ValidationStatus::Ok, "{report:?}");
    let rooms = query(&allowed, &credentials, "list_rooms", json!({}))
        .await
        .unwrap();
    assert_eq!(rooms.data["total"], ROOM_COUNT);

    // A neighbouring address, another network or none at all: refused at connect time.
    for networks in ["127.0.0.2/32", "10.0.0.0/8", ""] {
        let connector = connector_from_env("", networks);
        let error = connector
            .authenticate(form(fields.clone()))
            .await
            .unwrap_err();
        assert_eq!(error.field(), Some("space_url"), "{networks}");
        assert!(
            error.message().contains("127.0.0.1 is a loopback address"),
            "{networks}: {error}"
        );
    }

    // The policy's own address check, without connecting anywhere.
    let policy = AddressPolicy::parse("127.0.0.1/32").unwrap();
    assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
    for refused in ["127.0.0.2", "10.0.0.1", "169.254.169.254", "::1"] {
        assert!(policy.check(refused.parse().unwrap()).is_err(), "{refused}");
    }
}

// ---- webhooks ----

fn delivery(payload: &Value, authorization: Option<&str>) -> InboundWebhook {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().unwrap());
    if let Some(value) = authorization {
        headers.insert("authorization", value.parse().unwrap());
    }
    InboundWebhook {
        headers,
        body: Bytes::from(payload.to_string()),
    }
}

async fn receive(
    connector: &Arc<dyn DynConnector>,
    config: &Value,
    request: &InboundWebhook,
) -> patchbay_core::Result<WebhookOutcome> {
    let stored = token_hash(WEBHOOK_TOKEN);
    let delivery = connector
        .verify(&ctx(), WebhookKey::TokenHash(&stored), request)
        .await?;
    connector.normalize(&ctx(), config, &delivery).await
}

async fn alert(
    connector: &Arc<dyn DynConnector>,
    payload: &Value,
) -> patchbay_core::NormalizedAlert {
    let bearer = format!("Bearer {WEBHOOK_TOKEN}");
    let mut outcome = receive(connector, &json!({}), &delivery(payload, Some(&bearer)))
        .await
        .unwrap();
    assert_eq!(outcome.events.len(), 1, "{payload}");
    assert!(outcome.reply.is_none());
    outcome.events.remove(0)
}

#[tokio::test]
async fn only_the_connections_bearer_token_authenticates_a_delivery() {
    let connector = connector_with("");
    let payload = v1_payload("10min_cpu_usage", "web-1", "CRITICAL", 1_714_564_800);
    let mut refusals = Vec::new();
    for authorization in [
        None,
        Some("Bearer pbw_someone-elses-token".to_owned()),
        Some(format!("Bearer {WEBHOOK_TOKEN}x")),
        Some(format!("Basic {WEBHOOK_TOKEN}")),
        Some(WEBHOOK_TOKEN.to_owned()),
        Some("Bearer ".to_owned()),
    ] {
        let error = receive(
            &connector,
            &json!({}),
            &delivery(&payload, authorization.as_deref()),
        )
        .await
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AuthFailed, "{authorization:?}");
        assert!(!format!("{error:?}").contains(WEBHOOK_TOKEN), "{error:?}");
        refusals.push(error.to_string());
    }
    refusals.dedup();
    assert_eq!(
        refusals.len(),
        1,
        "every refusal reads the same: {refusals:?}"
    );

    // The token in a custom header is no bearer credential either.
    let mut request = delivery(&payload, None);
    request
        .headers
        .insert("x-patchbay-token", WEBHOOK_TOKEN.parse().unwrap());
    let error = receive(&connector, &json!({}), &request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);

    // An altered body with the right token still verifies: the token, not the body, is
    // the credential (Netdata does not sign deliveries).
    let bearer = format!("bearer {WEBHOOK_TOKEN}");
    receive(&connector, &json!({}), &delivery(&payload, Some(&bearer)))
        .await
        .unwrap();
}

#[tokio::test]
async fn a_v1_delivery_maps_as_the_table_says() {
    let connector = connector_with("");
    let payload = v1_payload("10min_cpu_usage", "web-1", "CRITICAL", 1_714_564_800);
    let alert = alert(&connector, &payload).await;
    assert_eq!(alert.source, "netdata");
    assert_eq!(alert.title, "10min_cpu_usage");
    assert_eq!(alert.status, AlertStatus::Firing);
    assert_eq!(alert.severity, AlertSeverity::Critical);
    assert_eq!(alert.service.as_deref(), Some("web-1"));
    assert_eq!(
        alert.url.as_deref(),
        Some("https://app.netdata.cloud/spaces/ops-team/alerts/10min_cpu_usage")
    );
    assert_eq!(
        alert.started_at.unwrap().to_rfc3339(),
        "2024-05-01T12:00:00+00:00"
    );
    assert_eq!(alert.ended_at, None);
    assert_eq!(
        serde_json::to_value(&alert.labels).unwrap(),
        json!({"chart": "system.cpu", "host": "web-1", "space": SPACE_NAME, "value": "97.2"})
    );
    assert_eq!(alert.raw, payload);
    assert_eq!(alert.external_id.len(), 64);
    assert_eq!(alert.dedup_key.len(), 64);
}

#[tokio::test]
async fn a_v2_delivery_maps_like_its_v1_twin() {
    let connector = connector_with("");
    let nested = alert(
        &connector,
        &v2_payload("10min_cpu_usage", "web-1", "WARNING", 1_714_564_800),
    )
    .await;
    let flat = alert(
        &connector,
        &v1_payload("10min_cpu_usage", "web-1", "WARNING", 1_714_564_800),
    )
    .await;
    assert_eq!(nested.severity, AlertSeverity::High);
    assert_eq!(nested.status, AlertStatus::Firing);
    assert_eq!(nested.title, flat.title);
    assert_eq!(nested.service, flat.service);
    assert_eq!(nested.url, flat.url);
    assert_eq!(nested.started_at, flat.started_at);
    assert_eq!(nested.labels, flat.labels);
    assert_eq!(nested.external_id, flat.external_id);
    assert_eq!(nested.dedup_key, flat.dedup_key);
}

#[tokio::test]
async fn firing_and_clearing_share_the_alert_but_not_the_delivery() {
    let connector = connector_with("");
    let firing = alert(
        &connector,
        &v1_payload("10min_cpu_usage", "web-1", "CRITICAL", 1_714_564_800),
    )
    .await;
    let cleared = alert(
        &connector,
        &v1_payload("10min_cpu_usage", "web-1", "CLEAR", 1_714_565_400),
    )
    .await;
    assert_eq!(cleared.status, AlertStatus::Resolved);
    assert_eq!(cleared.severity, AlertSeverity::Unknown);
    assert_eq!(
        cleared.ended_at.unwrap().to_rfc3339(),
        "2024-05-01T12:10:00+00:00"
    );
    assert_eq!(firing.external_id, cleared.external_id);
    assert_ne!(firing.dedup_key, cleared.dedup_key);

    // Another host, chart or space is another alert.
    let other_host = alert(
        &connector,
        &v1_payload("10min_cpu_usage", "web-2", "CRITICAL", 1_714_564_800),
    )
    .await;
    assert_ne!(other_host.external_id, firing.external_id);
    let mut other_space = v1_payload("10min_cpu_usage", "web-1", "CRITICAL", 1_714_564_800);
    other_space["space"] = json!(OTHER_SPACE_NAME);
    assert_ne!(
        alert(&connector, &other_space).await.external_id,
        firing.external_id
    );
}

#[tokio::test]
async fn dedup_uses_netdatas_identity_and_never_when_it_arrived() {
    let connector = connector_with("");
    let payload = v1_payload("disk_space_usage", "db-1", "WARNING", 1_714_563_000);
    let first = alert(&connector, &payload).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let redelivered = alert(&connector, &payload).await;
    assert_eq!(first.dedup_key, redelivered.dedup_key);

    // Wording that changes between deliveries of one transition does not matter.
    let mut reworded = payload.clone();
    reworded["message"] = json!("disk_space_usage on db-1 is still WARNING");
    reworded["value"] = json!(91.7);
    assert_eq!(
        alert(&connector, &reworded).await.dedup_key,
        first.dedup_key
    );

    // The same status again later is a new transition.
    let again = alert(
        &connector,
        &v1_payload("disk_space_usage", "db-1", "WARNING", 1_714_570_000),
    )
    .await;
    assert_ne!(again.dedup_key, first.dedup_key);
    assert_eq!(again.external_id, first.external_id);
}

#[tokio::test]
async fn test_deliveries_are_answered_and_dropped() {
    let connector = connector_with("");
    let bearer = format!("Bearer {WEBHOOK_TOKEN}");
    let mut nested_test = v2_payload("test", "web-1", "test", 0);
    nested_test["alert"]["state"]["status"] = json!("TEST");
    for payload in [test_payload(), nested_test] {
        let outcome = receive(&connector, &json!({}), &delivery(&payload, Some(&bearer)))
            .await
            .unwrap();
        assert!(outcome.events.is_empty(), "{payload}");
        let reply = outcome.reply.expect("a reply");
        assert_eq!(reply.status, 200);
        assert_eq!(
            serde_json::from_str::<Value>(&reply.body).unwrap(),
            json!({"received": true, "test": true, "stored": false})
        );
    }
    // A test delivery is still authenticated first.
    let error = receive(&connector, &json!({}), &delivery(&test_payload(), None))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
}

#[tokio::test]
async fn states_that_are_no_transition_are_acknowledged_and_malformed_ones_refused() {
    let connector = connector_with("");
    let bearer = format!("Bearer {WEBHOOK_TOKEN}");
    let outcome = receive(
        &connector,
        &json!({}),
        &delivery(
            &v1_payload("ram_in_use", "db-2", "UNINITIALIZED", 0),
            Some(&bearer),
        ),
    )
    .await
    .unwrap();
    assert!(outcome.events.is_empty());
    assert_eq!(outcome.reply.unwrap().status, 202);

    for (payload, field) in [
        (json!({"alarm": "a", "host": "h"}), "status"),
        (json!({"status": "CRITICAL"}), "alarm"),
        (json!({"alert": {"name": "a"}}), "alert.state.status"),
        (
            json!({"alert": {"state": {"status": "CRITICAL"}}}),
            "alert.name",
        ),
    ] {
        let error = receive(&connector, &json!({}), &delivery(&payload, Some(&bearer)))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput, "{payload}");
        assert_eq!(error.field(), Some(field), "{payload}");
    }
    let mut request = delivery(&json!({}), Some(&bearer));
    request.body = Bytes::from_static(b"not json");
    let error = receive(&connector, &json!({}), &request).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
}
