//! Every v1 request the connector sends matches Datadog's published OpenAPI
//! description: a declared path and method, declared query parameter names with
//! values of the declared type, every required parameter, and the key headers
//! the operation's security scheme names.

use std::collections::BTreeSet;
use std::sync::Arc;

use patchbay_connector_datadog::fake::{FakeDatadog, RecordedRequest};
use patchbay_connector_datadog::DatadogConnector;
use patchbay_core::{AuthRequest, ConnectorContext, DynConnector, FormFields};
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::http::client_for_fake;
use patchbay_testkit::openapi::{OpenApi, SpecRequest};
use serde_json::json;

const API_KEY: &str = "spec-api-key-4b1e";
const APP_KEY: &str = "spec-app-key-9c2d";

fn load_spec() -> OpenApi {
    OpenApi::load(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/datadog-v1-openapi.yaml"
        ),
        "the Datadog v1 description",
    )
}

fn check_request(spec: &OpenApi, request: &RecordedRequest) -> String {
    spec.check(&SpecRequest {
        method: &request.method,
        path: &request.path,
        query: &request.query,
        header_names: &request.header_names,
        // The fake does not record `Accept`; the v1 description declares none.
        accept: None,
    })
}

#[tokio::test]
async fn every_v1_request_matches_the_published_description() {
    let spec = load_spec();
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let connector: Arc<dyn DynConnector> = Arc::new(DatadogConnector::new(client_for_fake(
        &fake.override_spec(),
    )));
    let ctx = ConnectorContext::default();
    let form = json!({"api_key": API_KEY, "app_key": APP_KEY});
    let serde_json::Value::Object(form) = form else {
        unreachable!()
    };
    let mut credentials = connector
        .authenticate(AuthRequest::Form(FormFields(form)))
        .await
        .unwrap();
    let report = connector.validate(&ctx, &mut credentials).await.unwrap();
    assert!(report.passed(), "{report:?}");

    let calls = [
        (
            "query_metrics",
            json!({"query": "avg:system.load.1{*}", "from": "now-2h", "to": "now-1h"}),
        ),
        ("list_monitors", json!({})),
        (
            "list_monitors",
            json!({"name": "checkout", "tags": "service:checkout", "monitor_tags": "team:payments",
                   "group_states": "alert,warn", "page": 0, "page_size": 50}),
        ),
        (
            "get_monitor",
            json!({"monitor_id": 1001, "group_states": "all"}),
        ),
        ("list_events", json!({})),
        (
            "list_events",
            json!({"start": 1_714_560_000, "end": "2024-05-01T12:00:00Z", "priority": "normal",
                   "sources": "github", "tags": "env:prod", "unaggregated": true, "page": 0}),
        ),
        ("list_events", json!({"page": 2})),
        ("list_hosts", json!({})),
        (
            "list_hosts",
            json!({"filter": "env:prod", "count": 2, "start": 1, "from": "now-1h"}),
        ),
    ];
    for (operation, params) in calls {
        connector
            .query(&ctx, &credentials, operation, params.clone())
            .await
            .unwrap_or_else(|error| panic!("{operation} {params}: {error}"));
    }
    // Later pages are asked for with the parameters the cursor stands for.
    for (operation, first_page) in [
        ("list_monitors", json!({"page_size": 1})),
        ("list_hosts", json!({"count": 2})),
    ] {
        let first = connector
            .query(&ctx, &credentials, operation, first_page.clone())
            .await
            .unwrap_or_else(|error| panic!("{operation} {first_page}: {error}"));
        let mut next_page = first_page;
        next_page["cursor"] = json!(first
            .next_cursor
            .unwrap_or_else(|| panic!("{operation}: the fake has a second page")));
        connector
            .query(&ctx, &credentials, operation, next_page.clone())
            .await
            .unwrap_or_else(|error| panic!("{operation} {next_page}: {error}"));
    }

    let requests = fake.requests();
    let checked: BTreeSet<String> = requests
        .iter()
        .filter(|request| request.path.starts_with("/api/v1/"))
        .map(|request| check_request(&spec, request))
        .collect();
    let expected: BTreeSet<String> = [
        "GET /api/v1/validate",
        "GET /api/v1/monitor",
        "GET /api/v1/monitor/{monitor_id}",
        "GET /api/v1/events",
        "GET /api/v1/hosts",
        "GET /api/v1/query",
        "GET /api/v1/org",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(
        checked, expected,
        "every v1 endpoint the connector uses was exercised and checked"
    );
}

#[test]
fn the_checker_rejects_undeclared_parameters_and_missing_required_ones() {
    let spec = load_spec();
    let request = |path: &str, query: &[(&str, &str)]| RecordedRequest {
        method: "GET".to_owned(),
        path: path.to_owned(),
        query: query
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        header_names: vec!["dd-api-key".to_owned(), "dd-application-key".to_owned()],
        body: None,
    };
    let outcome =
        |request: RecordedRequest| std::panic::catch_unwind(|| check_request(&spec, &request));
    assert!(outcome(request("/api/v1/events", &[("start", "1"), ("end", "2")])).is_ok());
    assert!(outcome(request("/api/v1/events", &[("start", "1")])).is_err());
    assert!(outcome(request(
        "/api/v1/events",
        &[("start", "1"), ("end", "2"), ("limit", "5")]
    ))
    .is_err());
    assert!(outcome(request(
        "/api/v1/events",
        &[("start", "now-1h"), ("end", "2")]
    ))
    .is_err());
    assert!(outcome(request(
        "/api/v1/events",
        &[("start", "1"), ("end", "2"), ("priority", "high")]
    ))
    .is_err());
    assert!(outcome(request("/api/v1/monitors", &[])).is_err());
    let mut without_app_key = request("/api/v1/monitor", &[]);
    without_app_key.header_names.pop();
    assert!(outcome(without_app_key).is_err());
}
