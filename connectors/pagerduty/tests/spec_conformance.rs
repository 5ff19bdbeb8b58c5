//! Every request the connector sends to the PagerDuty REST API matches PagerDuty's
//! published OpenAPI description (`fixtures/pagerduty-rest-openapiv3.json`): a
//! declared path and method, declared query parameter names with values of the
//! declared type or enum, every required parameter, the `Authorization` header the
//! security scheme names, and the `Accept` media type the operations require.

use std::collections::BTreeSet;

use patchbay_connector_pagerduty::fake::{
    grant, FakePagerduty, ProviderFake, RecordedRequest, INCIDENT_ID, SERVICE_ID,
};
use patchbay_core::{AuthRequest, ConnectorContext, DynConnector, FormFields};
use patchbay_testkit::openapi::{OpenApi, SpecRequest};
use serde_json::{json, Value};

const API_TOKEN: &str = "spec-token-4b1e9c2d";

fn load_spec() -> OpenApi {
    let spec = OpenApi::load(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/pagerduty-rest-openapiv3.json"
        ),
        "PagerDuty's description",
    );
    // Every operation is under the `api_key` scheme, sent in `Authorization`.
    let document = spec.document();
    assert_eq!(document["security"], json!([{"api_key": []}]));
    let scheme = &document["components"]["securitySchemes"]["api_key"];
    assert_eq!(scheme["in"], "header");
    assert_eq!(scheme["name"], "Authorization");
    for (template, item) in document["paths"].as_object().expect("spec has paths") {
        for (method, operation) in item.as_object().into_iter().flatten() {
            assert!(
                operation.get("security").is_none(),
                "{method} {template} overrides the `api_key` scheme"
            );
        }
    }
    spec
}

fn check_request(spec: &OpenApi, request: &RecordedRequest) -> String {
    spec.check(&SpecRequest {
        method: &request.method,
        path: &request.path,
        query: &request.query,
        header_names: &request.header_names,
        accept: request.accept.as_deref(),
    })
}

fn form(value: Value) -> AuthRequest {
    AuthRequest::Form(FormFields(value.as_object().cloned().unwrap_or_default()))
}

#[tokio::test]
async fn every_request_matches_the_published_description() {
    let spec = load_spec();
    let fake = FakePagerduty::start(API_TOKEN).await;
    fake.add_account_level_token("spec-account-key-77");
    fake.add_access_token("pdus+_spec-access");
    let connector = fake.connector();
    let ctx = ConnectorContext::default();

    // Validation with a user key, an account-level key, and an EU OAuth grant.
    let mut credentials = connector
        .authenticate(form(
            json!({"api_token": API_TOKEN, "webhook_secret": "spec-secret"}),
        ))
        .await
        .unwrap();
    let report = connector.validate(&ctx, &mut credentials).await.unwrap();
    assert!(report.passed(), "{report:?}");
    let mut account = connector
        .authenticate(form(json!({"api_token": "spec-account-key-77"})))
        .await
        .unwrap();
    connector.validate(&ctx, &mut account).await.unwrap();
    let mut oauth = connector
        .authenticate(AuthRequest::OAuth(grant("pdus+_spec-access", "eu")))
        .await
        .unwrap();
    connector.validate(&ctx, &mut oauth).await.unwrap();

    let incident = INCIDENT_ID;
    let calls = [
        ("list_incidents", json!({})),
        (
            "list_incidents",
            json!({"statuses": ["triggered", "acknowledged", "resolved"], "since": "now-7d",
                   "until": "now-1d", "service_ids": [SERVICE_ID], "team_ids": ["PT1"],
                   "urgencies": ["high", "low"], "incident_key": "k-1", "sort": "oldest", "limit": 3}),
        ),
        ("list_incidents", json!({"all_time": true, "limit": 150})),
        ("get_incident", json!({"incident_id": incident})),
        (
            "list_incident_alerts",
            json!({"incident_id": incident, "statuses": ["triggered", "resolved"], "alert_key": "a", "limit": 2}),
        ),
        (
            "list_incident_log_entries",
            json!({"incident_id": incident, "since": "now-1d", "until": "now", "overview": true, "limit": 2}),
        ),
        ("list_incident_notes", json!({"incident_id": incident})),
        (
            "list_related_change_events",
            json!({"incident_id": incident, "limit": 5}),
        ),
        (
            "list_services",
            json!({"query": "API", "team_ids": ["PT1"], "limit": 2}),
        ),
        ("get_service", json!({"service_id": SERVICE_ID})),
        (
            "list_oncalls",
            json!({"schedule_ids": ["PS1"], "escalation_policy_ids": ["PE1"], "since": "now",
                   "until": "now", "earliest": true, "limit": 1}),
        ),
        (
            "list_change_events",
            json!({"since": "now-2d", "team_ids": ["PT1"], "limit": 2}),
        ),
        ("list_schedules", json!({"query": "Primary", "limit": 1})),
        (
            "list_escalation_policies",
            json!({"query": "Default", "team_ids": ["PT1"], "user_ids": ["PU1"]}),
        ),
    ];
    for (operation, params) in &calls {
        for credentials in [&credentials, &oauth] {
            connector
                .query(&ctx, credentials, operation, params.clone())
                .await
                .unwrap_or_else(|error| panic!("{operation} {params}: {error}"));
        }
    }
    // A later page is asked for with the offset the cursor stands for.
    let first = connector
        .query(&ctx, &credentials, "list_services", json!({"limit": 1}))
        .await
        .unwrap();
    connector
        .query(
            &ctx,
            &credentials,
            "list_services",
            json!({"limit": 1, "cursor": first.next_cursor.expect("a second page")}),
        )
        .await
        .unwrap();

    let requests = fake.requests();
    assert!(requests.iter().any(|request| request.region == "eu"));
    let checked: BTreeSet<String> = requests
        .iter()
        .filter(|request| request.region != "identity")
        .map(|request| check_request(&spec, request))
        .collect();
    let expected: BTreeSet<String> = [
        "GET /users/me",
        "GET /abilities",
        "GET /incidents",
        "GET /incidents/{id}",
        "GET /incidents/{id}/alerts",
        "GET /incidents/{id}/log_entries",
        "GET /incidents/{id}/notes",
        "GET /incidents/{id}/related_change_events",
        "GET /services",
        "GET /services/{id}",
        "GET /oncalls",
        "GET /change_events",
        "GET /schedules",
        "GET /escalation_policies",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(
        checked, expected,
        "every endpoint the connector uses was exercised and checked"
    );
}

#[test]
fn the_checker_rejects_undeclared_parameters_bad_values_and_missing_headers() {
    let spec = load_spec();
    let request = |path: &str, query: &[(&str, &str)]| RecordedRequest {
        method: "GET".to_owned(),
        path: path.to_owned(),
        region: "us".to_owned(),
        query: query
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        header_names: vec![
            "accept".to_owned(),
            "authorization".to_owned(),
            "content-type".to_owned(),
        ],
        accept: Some("application/vnd.pagerduty+json;version=2".to_owned()),
        auth_scheme: Some("token".to_owned()),
        form: Vec::new(),
    };
    let outcome =
        |request: RecordedRequest| std::panic::catch_unwind(|| check_request(&spec, &request));
    assert!(outcome(request(
        "/incidents",
        &[("limit", "1"), ("statuses[]", "resolved")]
    ))
    .is_ok());
    assert!(outcome(request("/incidents", &[("statuses", "resolved")])).is_err());
    assert!(outcome(request("/incidents", &[("statuses[]", "open")])).is_err());
    assert!(outcome(request("/incidents", &[("limit", "ten")])).is_err());
    assert!(outcome(request("/incidents", &[("total", "yes")])).is_err());
    assert!(outcome(request("/incidents/P1/notes", &[("limit", "1")])).is_err());
    assert!(outcome(request("/incident", &[])).is_err());
    let mut no_auth = request("/services", &[]);
    no_auth.header_names.retain(|name| name != "authorization");
    assert!(outcome(no_auth).is_err());
    let mut wrong_accept = request("/services", &[]);
    wrong_accept.accept = Some("application/json".to_owned());
    assert!(outcome(wrong_accept).is_err());
}
