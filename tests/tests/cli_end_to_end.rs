//! The operator CLI against the running binary: list connections, validate one,
//! run a query, and the exit statuses scripts rely on.

use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const CANARY_API_KEY: &str = "canary-cli-api-0e7d4a91c3";
const CANARY_APP_KEY: &str = "canary-cli-app-6b2f80d5e7";

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_lists_validates_and_queries_through_the_api() {
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let patchbay = Patchbay::start(&[("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str())]).await;
    let alice = patchbay.create_api_key("alice", None);
    let service = [
        ("PATCHBAY_URL", patchbay.base_url.as_str()),
        ("PATCHBAY_API_KEY", alice.as_str()),
    ];

    let empty = patchbay.cli_with(&["connections", "list"], &service);
    assert!(empty.status.success(), "{}", text(&empty.stderr));
    assert_eq!(text(&empty.stdout), "");
    assert_eq!(text(&empty.stderr).trim(), "No connections.");

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
    let id = connected.json()["connection"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The table: a header and one row naming the connection.
    let listed = patchbay.cli_with(&["connections", "list"], &service);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let table = text(&listed.stdout);
    let lines: Vec<_> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("ID"), "{table}");
    let row: Vec<_> = lines[1]
        .split("  ")
        .filter(|cell| !cell.is_empty())
        .collect();
    assert_eq!(row[0].trim(), id);
    assert_eq!(row[1].trim(), "datadog");
    assert_eq!(row[2].trim(), "prod US1");
    assert_eq!(row[3].trim(), "active");
    let as_json = patchbay.cli_with(&["connections", "list", "--json"], &service);
    let as_json: Value = serde_json::from_slice(&as_json.stdout).unwrap();
    assert_eq!(as_json["connections"][0]["id"], id.as_str());

    // Validation prints every line and its overall result.
    let validated = patchbay.cli_with(&["connections", "validate", &id], &service);
    assert!(validated.status.success(), "{}", text(&validated.stderr));
    let report = text(&validated.stdout);
    assert!(
        report
            .lines()
            .any(|line| line.starts_with("ok") && line.contains("api_key")),
        "{report}"
    );
    assert_eq!(report.lines().last(), Some("overall: ok"), "{report}");

    // A query prints the operation's JSON.
    let queried = patchbay.cli_with(&["query", &id, "list_hosts", r#"{"count": 2}"#], &service);
    assert!(queried.status.success(), "{}", text(&queried.stderr));
    let output: Value = serde_json::from_slice(&queried.stdout).unwrap();
    assert!(
        output["data"].is_object() || output["data"].is_array(),
        "{output}"
    );

    // Exit statuses by kind: bad parameters, unknown connection, wrong key, no service.
    let not_json = patchbay.cli_with(&["query", &id, "list_hosts", "count=2"], &service);
    assert_eq!(
        not_json.status.code(),
        Some(2),
        "{}",
        text(&not_json.stderr)
    );
    assert!(text(&not_json.stderr).contains("params: not JSON"));
    let bad_params = patchbay.cli_with(
        &["query", &id, "list_hosts", r#"{"count": "many"}"#],
        &service,
    );
    assert_eq!(
        bad_params.status.code(),
        Some(2),
        "{}",
        text(&bad_params.stderr)
    );
    let missing = patchbay.cli_with(&["connections", "validate", "no-such-connection"], &service);
    assert_eq!(missing.status.code(), Some(5), "{}", text(&missing.stderr));
    assert!(text(&missing.stderr).contains("connection not found"));
    let wrong_key = patchbay.cli_with(
        &["connections", "list"],
        &[
            ("PATCHBAY_URL", patchbay.base_url.as_str()),
            ("PATCHBAY_API_KEY", "pb_not-a-key"),
        ],
    );
    assert_eq!(
        wrong_key.status.code(),
        Some(3),
        "{}",
        text(&wrong_key.stderr)
    );
    let unreachable = patchbay.cli_with(
        &["connections", "list", "--url", "http://127.0.0.1:9"],
        &service,
    );
    assert_eq!(
        unreachable.status.code(),
        Some(6),
        "{}",
        text(&unreachable.stderr)
    );
    assert!(text(&unreachable.stderr).contains("cannot reach Patchbay at http://127.0.0.1:9"));

    let without_key = patchbay.cli_with(
        &["connections", "list"],
        &[("PATCHBAY_URL", patchbay.base_url.as_str())],
    );
    assert_eq!(
        without_key.status.code(),
        Some(2),
        "{}",
        text(&without_key.stderr)
    );
    assert!(text(&without_key.stderr).contains("PATCHBAY_API_KEY: not set"));

    // Nothing the CLI printed holds a provider key or the caller's API key.
    patchbay.assert_nowhere(&[CANARY_API_KEY, CANARY_APP_KEY]);
    for output in [&listed, &validated, &queried, &missing, &wrong_key] {
        assert!(!text(&output.stdout).contains(&alice));
        assert!(!text(&output.stderr).contains(&alice));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_the_data_the_cli_acts_for_a_user_without_a_service_or_a_key() {
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let mut patchbay =
        Patchbay::start(&[("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str())]).await;
    let alice = patchbay.create_api_key("alice", Some("acme"));
    let connected = patchbay
        .connect(
            &alice,
            json!({
                "connector": "datadog",
                "label": "prod US1",
                "fields": { "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY }
            }),
        )
        .await;
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    let token = connected["webhook"]["token"].as_str().unwrap().to_owned();
    let delivered = patchbay
        .request(
            "POST",
            "/datadog/webhook/alice",
            &[
                ("content-type", "application/json"),
                ("x-patchbay-token", &token),
            ],
            Some(serde_json::to_vec(&fake.sample_webhook(300, "Triggered")).unwrap()),
        )
        .await;
    assert_eq!(delivered.status, 202, "{}", delivered.text);
    let stored = patchbay
        .api("GET", "/api/alerts", &alice, None)
        .await
        .json();

    // The service stops; its data is enough.
    patchbay.stop();
    let as_alice = ["--user", "alice", "--org", "acme"];
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(as_alice);
        patchbay.cli(&all)
    };
    let listed = run(&["connections", "list", "--json"]);
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["connections"][0]["id"], id.as_str());

    let validated = run(&["connections", "validate", &id]);
    assert!(validated.status.success(), "{}", text(&validated.stderr));
    assert_eq!(
        text(&validated.stdout).lines().last(),
        Some("overall: ok"),
        "{}",
        text(&validated.stdout)
    );

    let queried = run(&["query", &id, "list_hosts", r#"{"count": 2}"#]);
    assert!(queried.status.success(), "{}", text(&queried.stderr));
    let output: Value = serde_json::from_slice(&queried.stdout).unwrap();
    assert!(
        output["data"].is_object() || output["data"].is_array(),
        "{output}"
    );
    let bad_params = run(&["query", &id, "list_hosts", r#"{"count": "many"}"#]);
    assert_eq!(
        bad_params.status.code(),
        Some(2),
        "{}",
        text(&bad_params.stderr)
    );

    // alice's stored alert, as the stream sends it.
    let mut tail = patchbay.cli_spawn(
        &[
            "alerts", "tail", "--after", "0", "--json", "--user", "alice", "--org", "acme",
        ],
        &[],
    );
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(tail.stdout.take().unwrap()));
    let line = tokio::time::timeout(std::time::Duration::from_secs(20), lines.next_line())
        .await
        .expect("the stored alert within 20 s")
        .unwrap()
        .expect("tail is still running");
    tail.kill().await.unwrap();
    let alert: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(alert, stored["alerts"][0]);

    // Another tenant sees nothing of alice's.
    let mallory = patchbay.cli(&["connections", "list", "--user", "mallory"]);
    assert!(mallory.status.success(), "{}", text(&mallory.stderr));
    assert_eq!(text(&mallory.stderr).trim(), "No connections.");
    let missing = patchbay.cli(&["connections", "validate", &id, "--user", "mallory"]);
    assert_eq!(missing.status.code(), Some(5), "{}", text(&missing.stderr));

    // A key and --user together are refused: it is one or the other.
    let both = patchbay.cli_with(
        &["connections", "list", "--user", "alice"],
        &[("PATCHBAY_API_KEY", alice.as_str())],
    );
    assert_eq!(both.status.code(), Some(2), "{}", text(&both.stderr));
    patchbay.assert_nowhere(&[CANARY_API_KEY, CANARY_APP_KEY]);
}
