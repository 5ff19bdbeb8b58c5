//! Datadog end to end through the real binary: connect, query, webhooks, disconnect,
//! and a canary scan of logs, responses and the data directory.

use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const CANARY_API_KEY: &str = "canary-dd-api-7f3a9c51e2";
const CANARY_APP_KEY: &str = "canary-dd-app-b40d1e88a6";

fn operations_params() -> Vec<(&'static str, Value)> {
    vec![
        (
            "search_logs",
            json!({ "query": "service:web status:error", "limit": 5 }),
        ),
        ("query_metrics", json!({ "query": "avg:system.load.1{*}" })),
        ("list_monitors", json!({ "group_states": "alert" })),
        ("get_monitor", json!({ "monitor_id": 1001 })),
        ("list_events", json!({ "priority": "normal" })),
        ("list_hosts", json!({ "count": 10 })),
        ("list_incidents", json!({})),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datadog_connect_query_webhook_disconnect_without_leaking_secrets() {
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let patchbay = Patchbay::start(&[("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str())]).await;

    let alice = patchbay.create_api_key("alice", Some("acme"));
    let mallory = patchbay.create_api_key("mallory", Some("evil-corp"));

    // Unauthenticated callers are turned away.
    let anonymous = patchbay.request("GET", "/api/connections", &[], None).await;
    assert_eq!(anonymous.status, 401, "{}", anonymous.text);
    assert_eq!(anonymous.json()["error"]["kind"], "auth_failed");

    // The catalogue lists Datadog with its operations.
    let catalogue = patchbay.api("GET", "/api/connectors", &alice, None).await;
    assert_eq!(catalogue.status, 200);
    let catalogue = catalogue.json();
    let datadog = catalogue["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "datadog")
        .expect("datadog in the catalogue");
    assert_eq!(datadog["configured"], true);

    // Bad keys: 422 with the validation report, nothing stored.
    let bad = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "datadog",
                "label": "prod",
                "fields": { "api_key": "wrong-api-key-000", "app_key": CANARY_APP_KEY, "site": "datadoghq.com" }
            })),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.text);
    let bad = bad.json();
    assert_eq!(bad["error"]["kind"], "auth_failed");
    assert_eq!(bad["report"]["overall"], "failed");
    let api_key_check = bad["report"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|check| check["id"] == "api_key")
        .expect("api_key check");
    assert_eq!(api_key_check["outcome"], "failed");
    let listed = patchbay
        .api("GET", "/api/connections", &alice, None)
        .await
        .json();
    assert_eq!(
        listed["connections"],
        json!([]),
        "a failed connect stores nothing"
    );

    // A form error names the field.
    let missing = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({ "connector": "datadog", "fields": { "api_key": CANARY_API_KEY } })),
        )
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text);
    assert_eq!(missing.json()["error"]["field"], "app_key");

    // Unknown site is refused rather than defaulted.
    let mars = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({ "connector": "datadog", "fields": { "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY, "site": "mars" } })),
        )
        .await;
    assert_eq!(mars.status, 400, "{}", mars.text);
    assert_eq!(mars.json()["error"]["field"], "site");

    // Good keys: 201 with the webhook URL, header and token shown once.
    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "datadog",
                "label": "prod US1",
                "fields": { "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY, "site": "datadoghq.com" }
            })),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    assert_eq!(connected["connection"]["status"], "active");
    assert_eq!(connected["report"]["overall"], "ok");
    let webhook_url = connected["webhook"]["url"].as_str().unwrap().to_owned();
    assert_eq!(
        webhook_url,
        format!("{}/datadog/webhook/alice", patchbay.base_url)
    );
    assert_eq!(connected["webhook"]["header"], "X-Patchbay-Token");
    let token = connected["webhook"]["token"].as_str().unwrap().to_owned();
    assert!(connected["connection"].get("secret_ref").is_none());

    let fetched = patchbay
        .api("GET", &format!("/api/connections/{id}"), &alice, None)
        .await;
    assert_eq!(fetched.status, 200);
    assert!(
        !fetched.text.contains(&token),
        "the webhook token is shown only once"
    );

    let status = patchbay
        .api("GET", "/api/connectors/status", &alice, None)
        .await
        .json();
    assert_eq!(status["connectors"]["datadog"]["connected"], true);

    // Another tenant cannot see or use the connection: same 404 as a missing one.
    for (method, path) in [
        ("GET", format!("/api/connections/{id}")),
        ("POST", format!("/api/connections/{id}/validate")),
        ("POST", format!("/api/connections/{id}/query/list_monitors")),
        ("DELETE", format!("/api/connections/{id}")),
    ] {
        let answer = patchbay.api(method, &path, &mallory, Some(json!({}))).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.text);
        assert_eq!(answer.json()["error"]["message"], "connection not found");
    }
    let listed_by_mallory = patchbay
        .api("GET", "/api/connections", &mallory, None)
        .await
        .json();
    assert_eq!(listed_by_mallory["connections"], json!([]));
    let status_for_mallory = patchbay
        .api("GET", "/api/connectors/status", &mallory, None)
        .await
        .json();
    assert_eq!(
        status_for_mallory["connectors"]["datadog"]["connected"],
        false
    );
    assert_eq!(
        status_for_mallory["connectors"]["datadog"]["connections"],
        json!([])
    );
    // A member of the same organisation shares the connection.
    let bob = patchbay.create_api_key("bob", Some("acme"));
    let seen_by_bob = patchbay
        .api("GET", &format!("/api/connections/{id}"), &bob, None)
        .await;
    assert_eq!(seen_by_bob.status, 200, "{}", seen_by_bob.text);

    // Every query operation runs against the fake.
    for (operation, params) in operations_params() {
        let answer = patchbay
            .api(
                "POST",
                &format!("/api/connections/{id}/query/{operation}"),
                &alice,
                Some(params),
            )
            .await;
        assert_eq!(answer.status, 200, "{operation}: {}", answer.text);
        let output = answer.json();
        assert!(output.get("data").is_some(), "{operation}: {output}");
    }
    let unknown = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/drop_tables"),
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let bad_params = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_hosts"),
            &alice,
            Some(json!({ "count": "lots" })),
        )
        .await;
    assert_eq!(bad_params.status, 400, "{}", bad_params.text);

    // Revalidation re-runs every check.
    let revalidated = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/validate"),
            &alice,
            None,
        )
        .await;
    assert_eq!(revalidated.status, 200, "{}", revalidated.text);
    assert_eq!(revalidated.json()["report"]["overall"], "ok");

    // Webhooks.
    let webhook_path = "/datadog/webhook/alice";
    let delivery = serde_json::to_vec(&fake.sample_webhook(4242, "Triggered")).unwrap();
    let send = |token: Option<String>, path: &'static str, body: Vec<u8>| {
        let patchbay = &patchbay;
        async move {
            let mut headers = vec![("content-type", "application/json")];
            let token_header;
            if let Some(token) = token {
                token_header = token;
                headers.push(("x-patchbay-token", token_header.as_str()));
            }
            patchbay.request("POST", path, &headers, Some(body)).await
        }
    };
    let accepted = send(Some(token.clone()), webhook_path, delivery.clone()).await;
    assert_eq!(accepted.status, 202, "{}", accepted.text);
    assert_eq!(accepted.json()["accepted"], 1);

    let alerts = patchbay
        .api("GET", "/api/alerts", &alice, None)
        .await
        .json();
    let stored = alerts["alerts"].as_array().unwrap();
    assert_eq!(stored.len(), 1, "{alerts}");
    assert_eq!(stored[0]["source"], "datadog");
    assert_eq!(stored[0]["status"], "firing");
    assert_eq!(stored[0]["connection_id"], id.as_str());
    let mallory_alerts = patchbay
        .api("GET", "/api/alerts", &mallory, None)
        .await
        .json();
    assert_eq!(mallory_alerts["alerts"], json!([]));

    let wrong_token = send(
        Some("pbw_not-the-token".into()),
        webhook_path,
        delivery.clone(),
    )
    .await;
    assert_eq!(wrong_token.status, 401);
    let no_token = send(None, webhook_path, delivery.clone()).await;
    assert_eq!(no_token.status, 401);
    let other_user = send(
        Some(token.clone()),
        "/datadog/webhook/mallory",
        delivery.clone(),
    )
    .await;
    assert_eq!(
        other_user.status, 401,
        "a token only works on its own user's path"
    );
    let unknown_user = send(
        Some(token.clone()),
        "/datadog/webhook/nobody",
        delivery.clone(),
    )
    .await;
    assert_eq!(unknown_user.status, 401);
    assert_eq!(
        unknown_user.json(),
        wrong_token.json(),
        "an unknown user and a wrong token must look the same"
    );

    let malformed = send(Some(token.clone()), webhook_path, b"{\"id\": ".to_vec()).await;
    assert_eq!(malformed.status, 400, "{}", malformed.text);
    assert_eq!(malformed.json()["error"]["kind"], "invalid_input");

    let oversized = send(
        Some(token.clone()),
        webhook_path,
        vec![b' '; 1024 * 1024 + 1],
    )
    .await;
    assert_eq!(oversized.status, 413, "{}", oversized.text);

    let duplicate = send(Some(token.clone()), webhook_path, delivery.clone()).await;
    assert_eq!(duplicate.status, 202, "{}", duplicate.text);
    assert_eq!(duplicate.json()["duplicates"], 1);
    let resolved = serde_json::to_vec(&fake.sample_webhook(4242, "Recovered")).unwrap();
    assert_eq!(
        send(Some(token.clone()), webhook_path, resolved)
            .await
            .status,
        202
    );

    let alerts = patchbay
        .api("GET", "/api/alerts?limit=10", &alice, None)
        .await
        .json();
    let stored = alerts["alerts"].as_array().unwrap();
    assert_eq!(stored.len(), 2, "the duplicate is stored once: {alerts}");
    assert_eq!(stored[1]["status"], "resolved");
    assert_eq!(stored[0]["external_id"], stored[1]["external_id"]);
    let after = stored[0]["cursor"].as_i64().unwrap();
    let page = patchbay
        .api("GET", &format!("/api/alerts?after={after}"), &alice, None)
        .await
        .json();
    assert_eq!(page["alerts"].as_array().unwrap().len(), 1);

    // Disconnect removes the secret and the record.
    let secrets_before = std::fs::read(patchbay.data_dir().join("secrets.json")).unwrap();
    let deleted = patchbay
        .api("DELETE", &format!("/api/connections/{id}"), &alice, None)
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text);
    let gone = patchbay
        .api("GET", &format!("/api/connections/{id}"), &alice, None)
        .await;
    assert_eq!(gone.status, 404);
    let secrets_after: Value =
        serde_json::from_slice(&std::fs::read(patchbay.data_dir().join("secrets.json")).unwrap())
            .unwrap();
    assert_eq!(
        secrets_after,
        json!({}),
        "the secret file holds no entry after disconnect"
    );
    assert_ne!(secrets_before, serde_json::to_vec(&secrets_after).unwrap());
    let after_delete = send(Some(token.clone()), webhook_path, delivery).await;
    assert_eq!(
        after_delete.status, 401,
        "a deleted connection's token no longer works"
    );

    // Canary scan: logs, every response, every file in the data directory.
    let logs = patchbay.logs();
    assert!(logs.contains("registered connectors"), "{logs}");
    patchbay.assert_nowhere(&[CANARY_API_KEY, CANARY_APP_KEY]);
    patchbay.assert_not_logged_or_stored(&[&token, &alice]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lists_datadog_with_auth_kinds_env_vars_and_operation_schemas() {
    let patchbay = Patchbay::start(&[]).await;
    let output = patchbay.cli(&["connectors", "list", "--json"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let listed: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let connectors = listed["connectors"].as_array().unwrap();
    let ids: Vec<_> = connectors
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        default_build_connectors(),
        "the default build's connectors, by id"
    );
    let datadog = connectors
        .iter()
        .find(|c| c["id"] == "datadog")
        .expect("datadog is listed");
    assert_eq!(datadog["auth_kinds"], json!(["api_key"]));
    assert!(datadog["env_vars"].is_array());
    assert_eq!(datadog["webhook"]["path"], "/datadog/webhook/{user_id}");
    let operations = datadog["operations"].as_array().unwrap();
    let names: Vec<_> = operations
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for expected in [
        "search_logs",
        "query_metrics",
        "list_monitors",
        "get_monitor",
        "list_events",
        "list_hosts",
        "list_incidents",
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for operation in operations {
        assert_eq!(operation["read_only"], true);
        assert_eq!(operation["params_schema"]["type"], "object", "{operation}");
        assert!(!operation["description"].as_str().unwrap().is_empty());
    }
    assert_eq!(
        datadog["connect_schema"]["properties"]["api_key"]["writeOnly"], true,
        "{}",
        datadog["connect_schema"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_configuration_is_refused_with_the_variable_named() {
    let workdir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(patchbay_e2e::binary())
        .arg("serve")
        .current_dir(workdir.path())
        .env_clear()
        .env("PATCHBAY_LISTEN", "nowhere")
        .env("PATCHBAY_DATA_DIR", workdir.path().join("data"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("PATCHBAY_LISTEN"), "{stderr}");
}

/// The connectors the host's `default` feature enables (`connector-<id>`), in the
/// order the feature lists them, which is the registry's order by id.
fn default_build_connectors() -> Vec<String> {
    let manifest = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../host/Cargo.toml"),
    )
    .expect("host/Cargo.toml");
    let default = manifest
        .lines()
        .find_map(|line| line.trim().strip_prefix("default = ["))
        .expect("host/Cargo.toml has a default feature list");
    let ids: Vec<String> = default
        .split('"')
        .filter_map(|item| item.strip_prefix("connector-"))
        .map(str::to_owned)
        .collect();
    assert!(ids.contains(&"datadog".to_owned()), "{default}");
    ids
}
