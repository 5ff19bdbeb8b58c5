//! The MCP server through a real MCP client (the official Python SDK), over
//! Streamable HTTP at `/mcp` and over stdio (`patchbay mcp --user`): tools per
//! connection and operation, a call, a refusal as a tool error, resources, and the
//! tool list changing after a disconnect, and a subscription to the alerts.

use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::services;
use serde_json::{json, Value};

const CANARY_API_KEY: &str = "canary-mcp-api-3f9a0c17d2";
const CANARY_APP_KEY: &str = "canary-mcp-app-8e21b4c6a5";
const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/mcp/client.py");
const TOOL: &str = "datadog_prod_us1__list_hosts";
const ARGUMENTS: &str = r#"{"count": 2}"#;
const BAD_ARGUMENTS: &str = r#"{"count": "many"}"#;

/// Runs the client script beside `patchbay`'s data; returns what it saw.
fn run_client(patchbay: &Patchbay, args: &[&str]) -> Value {
    let output = patchbay
        .command_beside("python3")
        .arg(CLIENT)
        .args(args)
        .env("PYTHONPATH", services::mcp_python())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the MCP client failed:\n{stderr}\n{stdout}\npatchbay's log:\n{}",
        patchbay.logs()
    );
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|error| panic!("not JSON ({error}): {stdout}"))
}

fn tool_names(seen: &Value) -> Vec<String> {
    seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["name"].as_str().unwrap().to_owned())
        .collect()
}

/// What both transports must show.
fn assert_agent_view(seen: &Value, transport: &str) {
    let names = tool_names(seen);
    assert!(names.contains(&TOOL.to_owned()), "{transport}: {names:?}");
    assert!(
        names.contains(&"datadog_staging__list_hosts".to_owned()),
        "two accounts of one provider get different tools: {names:?}"
    );
    let tool = seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|tool| tool["name"] == TOOL)
        .unwrap();
    assert_eq!(tool["read_only"], true, "{transport}: {tool}");
    assert!(
        tool["input_schema"]["properties"]["count"].is_object(),
        "{transport}: the operation's schema is the input schema: {tool}"
    );

    let call = &seen["call"];
    assert_eq!(call["is_error"], false, "{transport}: {call}");
    assert!(
        call["structured"]["data"].is_object() || call["structured"]["data"].is_array(),
        "{transport}: {call}"
    );
    assert!(!call["text"][0].as_str().unwrap().is_empty());

    let refused = &seen["bad_call"];
    assert_eq!(refused["is_error"], true, "{transport}: {refused}");
    assert_eq!(refused["structured"]["kind"], "invalid_input", "{refused}");
    assert!(
        refused["text"][0]
            .as_str()
            .unwrap()
            .starts_with("invalid_input"),
        "{refused}"
    );
    assert!(
        seen["unknown_tool"].as_str().unwrap().contains("no tool"),
        "{transport}: {}",
        seen["unknown_tool"]
    );

    let resources: Vec<_> = seen["resources"].as_array().unwrap().iter().collect();
    assert!(
        resources.contains(&&json!("patchbay://alerts")),
        "{resources:?}"
    );
    assert_eq!(
        resources
            .iter()
            .filter(|uri| uri.as_str().unwrap().ends_with("/validation"))
            .count(),
        2,
        "{resources:?}"
    );
    let alerts = seen["alerts"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{transport}: {}", seen["alerts"]);
    assert_eq!(alerts[0]["source"], "datadog");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_mcp_client_an_agent_lists_calls_and_follows_connections_over_both_transports() {
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let patchbay = Patchbay::start(&[("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str())]).await;
    let alice = patchbay.create_api_key("alice", None);
    let connect = |label: &str| {
        json!({
            "connector": "datadog",
            "label": label,
            "fields": { "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY }
        })
    };
    let prod = patchbay.connect(&alice, connect("prod US1")).await;
    let staging = patchbay.connect(&alice, connect("staging")).await;
    let token = prod["webhook"]["token"].as_str().unwrap();
    let delivered = patchbay
        .request(
            "POST",
            "/datadog/webhook/alice",
            &[
                ("content-type", "application/json"),
                ("x-patchbay-token", token),
            ],
            Some(serde_json::to_vec(&fake.sample_webhook(42, "Triggered")).unwrap()),
        )
        .await;
    assert_eq!(delivered.status, 202, "{}", delivered.text);

    // Without a key, /mcp answers as the API does.
    let refused = patchbay
        .request(
            "POST",
            "/mcp",
            &[("content-type", "application/json")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text);

    // stdio first, while both connections exist.
    let binary = patchbay_e2e::binary();
    let over_stdio = run_client(
        &patchbay,
        &[
            "stdio",
            binary.to_str().unwrap(),
            "alice",
            TOOL,
            ARGUMENTS,
            BAD_ARGUMENTS,
        ],
    );
    assert_agent_view(&over_stdio, "stdio");

    let staging_id = staging["connection"]["id"].as_str().unwrap();
    let mcp_url = format!("{}/mcp", patchbay.base_url);
    let body_dir = tempfile::tempdir().unwrap();
    let body_file = body_dir.path().join("delivery.json");
    std::fs::write(
        &body_file,
        serde_json::to_vec(&fake.sample_webhook(43, "Triggered")).unwrap(),
    )
    .unwrap();
    let over_http = run_client(
        &patchbay,
        &[
            "http",
            &mcp_url,
            &alice,
            TOOL,
            ARGUMENTS,
            BAD_ARGUMENTS,
            &patchbay.base_url,
            staging_id,
            "/datadog/webhook/alice",
            token,
            body_file.to_str().unwrap(),
        ],
    );
    assert_agent_view(&over_http, "Streamable HTTP");
    let after: Vec<_> = over_http["tools_after_disconnect"]
        .as_array()
        .unwrap()
        .iter()
        .map(|name| name.as_str().unwrap())
        .collect();
    assert!(after.contains(&TOOL), "{after:?}");
    assert!(
        !after.iter().any(|name| name.starts_with("datadog_staging")),
        "the disconnected connection's tools are gone: {after:?}"
    );

    // Subscribed to the alerts, the agent hears of the new one and reads it.
    assert_eq!(over_http["updated_uri"], "patchbay://alerts");
    assert_eq!(
        over_http["alerts_after_update"]["alerts"]
            .as_array()
            .unwrap()
            .len(),
        2,
        "{}",
        over_http["alerts_after_update"]
    );

    // Another tenant's agent sees none of alice's connections.
    let mallory = patchbay.create_api_key("mallory", None);
    let theirs = run_client(&patchbay, &["http", &mcp_url, &mallory, "-", "{}", "{}"]);
    assert_eq!(tool_names(&theirs), Vec::<String>::new(), "{theirs}");
    assert_eq!(
        theirs["resources"],
        json!(["patchbay://alerts"]),
        "{theirs}"
    );
    patchbay.assert_nowhere(&[CANARY_API_KEY, CANARY_APP_KEY]);
    // The MCP transport logs no caller's key, even at debug level.
    let logs = patchbay.logs();
    for key in [&alice, &mallory] {
        assert!(!logs.contains(key.as_str()), "an API key is in the log");
    }
}
