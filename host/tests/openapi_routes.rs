//! `GET /api/openapi.json` against the router that serves it: every route the
//! router serves is in the document with the same methods, every documented
//! route is served, and the document links each operation's parameter schema.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use patchbay_core::ConnectorEnv;
use patchbay_host::{HostBuilder, HostConfig};
use patchbay_store::{LocalSecretStore, MasterKey, RecordStore, SqliteRecordStore};
use serde_json::Value;
use tower::ServiceExt;

/// A host with every connector linked into the binary, enabled.
async fn router() -> (Router, tempfile::TempDir) {
    let env = ConnectorEnv::from_pairs([("PATCHBAY_PUBLIC_URL", "http://patchbay.test")]);
    let dir = tempfile::tempdir().unwrap();
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let secrets = Arc::new(LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap());
    let host = HostBuilder::new(HostConfig::from_env(&env).unwrap(), env)
        .records(records)
        .secrets(secrets)
        .build()
        .await
        .unwrap();
    (host.router(), dir)
}

/// Each path the router matches, with the methods it answers (HEAD, which axum
/// adds to every GET, left out). axum has no API that lists routes, so this reads
/// its `Debug` output: route ids to method routers, and the path of each id. If
/// that output changed shape, nothing would be found and the comparison would fail.
fn served_routes(router: &Router) -> BTreeMap<String, BTreeSet<String>> {
    let debug = format!("{router:?}");
    // The routes proper; the fallback router that follows numbers its own from 0 too.
    let debug = debug
        .split_once("fallback_router:")
        .map_or(debug.as_str(), |(routes, _)| routes);
    let mut methods_of = BTreeMap::new();
    let mut path_of = BTreeMap::new();
    for (index, _) in debug.match_indices("RouteId(") {
        let rest = &debug[index + "RouteId(".len()..];
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(id) = digits.parse::<u32>() else {
            continue;
        };
        // Only map entries keyed by the id (`RouteId(7): ...`), not values of the
        // path-to-id map (`"/x": RouteId(7)`).
        let Some(after) = rest[digits.len()..].strip_prefix("): ") else {
            continue;
        };
        if let Some(path) = after.strip_prefix('"') {
            path_of.insert(id, path.split('"').next().unwrap().to_owned());
        } else if after.starts_with("MethodRouter(") {
            let allowed = after
                .split_once("allow_header: Bytes(b\"")
                .and_then(|(_, tail)| tail.split('"').next())
                .unwrap_or("");
            let methods: BTreeSet<String> = allowed
                .split(',')
                .filter(|method| !method.is_empty() && *method != "HEAD")
                .map(str::to_lowercase)
                .collect();
            methods_of.insert(id, methods);
        }
    }
    path_of
        .into_iter()
        .map(|(id, path)| (path, methods_of.get(&id).cloned().unwrap_or_default()))
        .collect()
}

fn documented_routes(document: &Value) -> BTreeMap<String, BTreeSet<String>> {
    document["paths"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(path, item)| {
            let methods = item
                .as_object()
                .unwrap()
                .keys()
                .filter(|key| ["get", "post", "put", "patch", "delete"].contains(&key.as_str()))
                .cloned()
                .collect();
            (path.clone(), methods)
        })
        .collect()
}

async fn call(router: &Router, method: &str, path: &str) -> (StatusCode, Vec<u8>) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body.to_vec())
}

#[tokio::test]
async fn every_route_served_is_documented_and_every_documented_route_is_served() {
    let (router, _dir) = router().await;
    let (status, body) = call(&router, "GET", "/api/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let document: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(document["openapi"], "3.1.0");

    let served = served_routes(&router);
    let documented = documented_routes(&document);
    assert!(
        served.len() > 20,
        "the router's routes were read: {served:?}"
    );
    assert_eq!(
        served, documented,
        "the router serves (left) exactly what the document describes (right)"
    );

    // Each documented route answers: not the fallback's bare 404, not 405.
    let unrouted = call(&router, "GET", "/no/such/route").await;
    assert_eq!(unrouted.0, StatusCode::NOT_FOUND);
    for (path, methods) in &documented {
        let concrete = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "placeholder"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in methods {
            if path == "/api/alerts/stream" || path == "/kubectl-agent" {
                continue; // long-lived answers; their refusals are tested where they live
            }
            let (status, body) = call(&router, &method.to_uppercase(), &concrete).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
            assert!(
                !(status == StatusCode::NOT_FOUND && body.is_empty()),
                "{method} {path} fell through to the router's fallback"
            );
        }
    }
}

#[tokio::test]
async fn the_document_describes_auth_errors_and_every_operations_parameters() {
    let (router, _dir) = router().await;
    let (_, body) = call(&router, "GET", "/api/openapi.json").await;
    let document: Value = serde_json::from_slice(&body).unwrap();
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["api_key"]["scheme"], "bearer");
    assert_eq!(schemes["internal_headers"]["name"], "X-Internal-Secret");
    let list = &document["paths"]["/api/connections"]["get"];
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "patchbay_session");
    assert!(list["security"].as_array().unwrap().len() == 3, "{list}");
    let sign_in = &document["paths"]["/api/session"]["post"];
    assert_eq!(sign_in["security"], serde_json::json!([{}]), "{sign_in}");
    assert_eq!(
        list["responses"]["401"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/ErrorEnvelope"
    );
    let envelope = &document["components"]["schemas"]["ErrorBody"]["properties"];
    for field in ["kind", "message", "hint", "field", "connector"] {
        assert!(envelope.get(field).is_some(), "ErrorBody has {field}");
    }

    // The query body is one of the operations' own schemas, as the descriptors give them.
    let one_of = document["paths"]["/api/connections/{id}/query/{operation}"]["post"]
        ["requestBody"]["content"]["application/json"]["schema"]["oneOf"]
        .as_array()
        .unwrap()
        .clone();
    let registry = patchbay_host::connectors::registry(&ConnectorEnv::from_pairs([(
        "PATCHBAY_PUBLIC_URL",
        "http://patchbay.test",
    )]))
    .unwrap();
    let mut expected = Vec::new();
    for descriptor in registry.descriptors() {
        for operation in (descriptor.operations)() {
            let name = format!("{}.{}", descriptor.id, operation.name);
            let schema = &document["components"]["schemas"][&name];
            let own = serde_json::to_value(&operation.params_schema).unwrap();
            assert_eq!(schema["properties"], own["properties"], "{name}");
            assert_eq!(schema["required"], own["required"], "{name}");
            assert_eq!(schema["description"], operation.description, "{name}");
            expected.push(format!("#/components/schemas/{name}"));
        }
    }
    let linked: Vec<_> = one_of
        .iter()
        .map(|reference| reference["$ref"].as_str().unwrap().to_owned())
        .collect();
    assert!(expected.len() > 30, "{expected:?}");
    assert_eq!(linked, expected);
}
