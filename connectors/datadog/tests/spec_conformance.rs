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
use serde_json::json;
use serde_yaml::Value as Yaml;

const API_KEY: &str = "spec-api-key-4b1e";
const APP_KEY: &str = "spec-app-key-9c2d";

fn load_spec() -> Yaml {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/datadog-v1-openapi.yaml"
    );
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("{path}: {error}"));
    serde_yaml::from_str(&text).expect("the Datadog v1 OpenAPI description parses as YAML")
}

/// Follows a local `$ref` such as `#/components/parameters/PageSize`.
fn resolve<'a>(spec: &'a Yaml, node: &'a Yaml) -> &'a Yaml {
    let Some(reference) = node.get("$ref").and_then(Yaml::as_str) else {
        return node;
    };
    let mut current = spec;
    for segment in reference.trim_start_matches("#/").split('/') {
        current = current
            .get(segment)
            .unwrap_or_else(|| panic!("dangling $ref {reference}"));
    }
    resolve(spec, current)
}

fn template_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.split('/').collect();
    template.len() == path.len()
        && template.iter().zip(&path).all(|(expected, actual)| {
            (expected.starts_with('{') && expected.ends_with('}') && !actual.is_empty())
                || expected == actual
        })
}

struct Parameter {
    name: String,
    location: String,
    required: bool,
    schema: Yaml,
}

fn parameters(spec: &Yaml, path_item: &Yaml, operation: &Yaml) -> Vec<Parameter> {
    let mut found = Vec::new();
    for list in [path_item.get("parameters"), operation.get("parameters")]
        .into_iter()
        .flatten()
    {
        for parameter in list.as_sequence().into_iter().flatten() {
            let parameter = resolve(spec, parameter);
            found.push(Parameter {
                name: parameter["name"].as_str().unwrap_or_default().to_owned(),
                location: parameter["in"].as_str().unwrap_or_default().to_owned(),
                required: parameter
                    .get("required")
                    .and_then(Yaml::as_bool)
                    .unwrap_or(false),
                schema: resolve(spec, parameter.get("schema").unwrap_or(&Yaml::Null)).clone(),
            });
        }
    }
    found
}

fn check_value(spec: &Yaml, context: &str, parameter: &Parameter, value: &str) {
    let schema = resolve(spec, &parameter.schema);
    match schema.get("type").and_then(Yaml::as_str) {
        Some("integer") => assert!(
            value.parse::<i64>().is_ok(),
            "{context}: `{}` must be an integer, got `{value}`",
            parameter.name
        ),
        Some("boolean") => assert!(
            value == "true" || value == "false",
            "{context}: `{}` must be true or false, got `{value}`",
            parameter.name
        ),
        _ => {}
    }
    if let Some(allowed) = schema.get("enum").and_then(Yaml::as_sequence) {
        assert!(
            allowed.iter().any(|option| option.as_str() == Some(value)),
            "{context}: `{}` must be one of {allowed:?}, got `{value}`",
            parameter.name
        );
    }
}

/// The key headers the operation's security requirement asks for.
fn required_key_headers(spec: &Yaml, operation: &Yaml) -> BTreeSet<String> {
    let requirements = operation
        .get("security")
        .or_else(|| spec.get("security"))
        .and_then(Yaml::as_sequence)
        .cloned()
        .unwrap_or_default();
    // The first alternative is the API-key one in Datadog's description.
    let Some(first) = requirements.first().and_then(Yaml::as_mapping) else {
        return BTreeSet::new();
    };
    first
        .keys()
        .filter_map(Yaml::as_str)
        .filter_map(|scheme| spec["components"]["securitySchemes"].get(scheme))
        .filter(|scheme| scheme["in"].as_str() == Some("header"))
        .filter_map(|scheme| scheme["name"].as_str())
        .map(str::to_ascii_lowercase)
        .collect()
}

fn check_request(spec: &Yaml, request: &RecordedRequest) -> String {
    let context = format!("{} {}", request.method, request.path);
    let paths = spec["paths"].as_mapping().expect("spec has paths");
    let (template, path_item) = paths
        .iter()
        .find_map(|(template, item)| {
            let template = template.as_str()?;
            template_matches(template, &request.path).then_some((template, item))
        })
        .unwrap_or_else(|| panic!("{context}: no path in the Datadog v1 description matches"));
    let method = request.method.to_ascii_lowercase();
    let operation = path_item
        .get(method.as_str())
        .unwrap_or_else(|| panic!("{context}: {template} does not declare {}", request.method));
    let declared = parameters(spec, path_item, operation);
    for (name, value) in &request.query {
        let parameter = declared
            .iter()
            .find(|parameter| parameter.location == "query" && &parameter.name == name)
            .unwrap_or_else(|| {
                panic!("{context}: query parameter `{name}` is not declared for {template}")
            });
        check_value(spec, &context, parameter, value);
    }
    for parameter in declared.iter().filter(|parameter| parameter.required) {
        match parameter.location.as_str() {
            "query" => assert!(
                request.query_value(&parameter.name).is_some(),
                "{context}: required query parameter `{}` is missing",
                parameter.name
            ),
            "path" => {
                let position = template
                    .split('/')
                    .position(|segment| segment == format!("{{{}}}", parameter.name))
                    .expect("path parameter appears in its template");
                let value = request.path.split('/').nth(position).unwrap_or_default();
                check_value(spec, &context, parameter, value);
            }
            _ => {}
        }
    }
    for header in required_key_headers(spec, operation) {
        assert!(
            request.has_header(&header),
            "{context}: the security scheme requires header `{header}`"
        );
    }
    format!("{} {template}", request.method)
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
