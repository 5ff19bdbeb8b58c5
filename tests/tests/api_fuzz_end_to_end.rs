//! The API fuzzed against its own OpenAPI document by schemathesis, through the real
//! binary, authenticated, with data behind it: Datadog and PagerDuty connections
//! against their fakes (with planted canary secrets), a Kubernetes cluster, and
//! alerts from both providers' webhooks.
//!
//! Every generated request (examples, coverage, fuzzing and stateful phases, a
//! bounded number of cases with a fixed seed) must get an answer that is no server
//! error, has a documented status and content type, matches its documented schema,
//! refuses a caller without credentials, and holds none of the planted secrets
//! (`tests/schemathesis/hooks.py`); afterwards the process's log must hold none of
//! them either.
//!
//! The document declares no OpenAPI links; the stateful phase follows the links
//! schemathesis infers from the documented schemas (a connection's `id` in
//! `GET /api/connections` to the `{id}` routes).
//!
//! Nothing leaves the machine: the fakes' provider hosts are rewritten to loopback,
//! every other outbound request goes to a proxy on loopback that refuses it with 502
//! (`HTTPS_PROXY`; AWS onboarding asks STS for the platform's account, for example,
//! and so answers 503, which `tests/schemathesis/schemathesis.toml` expects there),
//! and the hooks send connect requests for connectors without a fake, whose forms
//! could name any URL, to an unknown connector id instead. The test then checks
//! in Patchbay's log that every TCP connection it opened went to loopback.
//!
//! Destructive operations run in a second pass, after everything else has seen the
//! planted data: deleting a connection or revoking a cluster's agent tokens early
//! would leave the other operations only "not found" to answer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_connector_datadog::SITES;
use patchbay_connector_pagerduty::fake::{sample_payload, FakePagerduty, INCIDENT_ID};
use patchbay_connector_pagerduty::webhook::sign;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::services;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const DATADOG_API_KEY: &str = "canary-fuzz-dd-api-4e1b9c07d2";
const DATADOG_APP_KEY: &str = "canary-fuzz-dd-app-8a5f2e6b13";
const PAGERDUTY_TOKEN: &str = "canary-fuzz-pd-token-c39d71a0e5";
const PAGERDUTY_SIGNING_SECRET: &str = "canary-fuzz-pd-whsec-5b8e0f2a94";
const HOOKS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis/hooks.py");
const CONFIG: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/schemathesis/schemathesis.toml"
);

/// The connectors connected against a fake; connect requests may name only these.
const FAKED: &[&str] = &["datadog", "pagerduty", "kubernetes"];

/// Cases per operation and phase: enough to reach every operation's branches with
/// the planted data, few enough for the whole test to take about a minute.
const MAX_EXAMPLES: &str = "30";
const SEED: &str = "20240917";

/// What the run checks on every answer: no server error, the documented status,
/// content type, headers and schema, a refusal without credentials, stateful
/// consistency (a deleted resource stays gone, a created one can be read), and no
/// planted secret. Left out: `positive_data_acceptance` and
/// `negative_data_rejection`, since the document types parameters but does not
/// promise that every well-typed value names an existing flow, session or link
/// (an OAuth state, an MCP session id), nor that every ill-typed one is refused
/// (query parameters are read leniently).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_headers_conformance,response_schema_conformance,ignored_auth,use_after_free,\
ensure_resource_availability,no_planted_secret_in_response";

/// The operations that tear down planted data; they run only in the second pass.
const DESTRUCTIVE: &[&str] = &["disconnect", "revoke_agent_token"];

/// A proxy on loopback that refuses every request with 502, so nothing sent through
/// it leaves the machine; it remembers each request line it was sent.
struct Sink {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Sink {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    let mut head = vec![0u8; 1024];
                    let read = socket.read(&mut head).await.unwrap_or(0);
                    let line = String::from_utf8_lossy(&head[..read])
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    seen.lock().unwrap().push(line);
                    let _ = socket
                        .write_all(
                            b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                });
            }
        });
        Self { url, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

/// Every address Patchbay opened a TCP connection to, from its debug log.
fn connected_addresses(logs: &str) -> Vec<String> {
    logs.lines()
        .filter_map(|line| line.split("connecting to ").nth(1))
        .filter_map(|rest| rest.split_whitespace().next())
        .map(|address| {
            address
                .trim_end_matches(|c: char| !c.is_ascii_alphanumeric() && c != ']')
                .to_owned()
        })
        .collect()
}

/// What every schemathesis run of the test shares.
struct Fuzzer<'a> {
    /// The directory holding schemathesis.
    schemathesis: PathBuf,
    patchbay: &'a Patchbay,
    key: &'a str,
    /// Every registered connector id, comma-separated.
    connectors: String,
    canaries: Vec<&'a str>,
}

impl Fuzzer<'_> {
    /// Runs schemathesis on the operations `selection` chooses; returns its output,
    /// failing the test when the run finds a problem.
    fn run(&self, selection: &[String]) -> String {
        let started = Instant::now();
        let output = self
            .patchbay
            .command_beside("python3")
            .args(["-m", "schemathesis.cli", "--config-file", CONFIG, "run"])
            .arg(format!("{}/api/openapi.json", self.patchbay.base_url))
            .args(["--header", &format!("Authorization: Bearer {}", self.key)])
            .args(["--checks", CHECKS])
            .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
            // One worker: CPython 3.11's `ast` is not thread-safe, and hypothesis parses
            // with it while describing strategies ("AST constructor recursion depth
            // mismatch" with several workers).
            .args(["--workers", "1", "--request-timeout", "10"])
            .args(["--generation-database", "none", "--no-color"])
            .args(selection)
            .env("PYTHONPATH", &self.schemathesis)
            .env("SCHEMATHESIS_HOOKS", HOOKS)
            // No bytecode cache beside the hooks, in the checkout.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PATCHBAY_FUZZ_CANARIES", self.canaries.join("\n"))
            .env("PATCHBAY_FUZZ_CONNECTORS", &self.connectors)
            .env("PATCHBAY_FUZZ_FAKED", FAKED.join(","))
            .output()
            .expect("python3 runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "schemathesis found problems ({}):\n{stdout}\n{stderr}",
            output.status
        );
        eprintln!(
            "schemathesis {selection:?} took {:.1} s:\n{}",
            started.elapsed().as_secs_f64(),
            summary(&stdout)
        );
        stdout
    }
}

/// The summary block schemathesis ends its output with.
fn summary(output: &str) -> String {
    output
        .lines()
        .skip_while(|line| !line.contains("SUMMARY"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_schemathesis_every_generated_request_is_answered_as_documented() {
    let schemathesis = services::schemathesis_python();
    let started = Instant::now();
    let sink = Sink::start().await;
    let datadog = FakeDatadog::start(DATADOG_API_KEY, DATADOG_APP_KEY).await;
    let pagerduty = FakePagerduty::start(PAGERDUTY_TOKEN).await;
    // Every Datadog site's API goes to the fake, so no generated site leads away.
    let mut overrides: Vec<String> = SITES
        .iter()
        .map(|site| {
            datadog
                .server()
                .override_for(&format!("api.{}", site.domain))
        })
        .collect();
    overrides.push(pagerduty.upstream_overrides());
    let overrides = overrides.join(",");
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("HTTPS_PROXY", sink.url.as_str()),
        ("HTTP_PROXY", sink.url.as_str()),
        ("ALL_PROXY", sink.url.as_str()),
        ("NO_PROXY", "127.0.0.1,localhost"),
    ])
    .await;
    let key = patchbay.create_api_key("alice", Some("acme"));

    // The data behind the API: two provider connections, a cluster, alerts.
    let dd = patchbay
        .connect(
            &key,
            json!({
                "connector": "datadog",
                "label": "prod",
                "fields": { "api_key": DATADOG_API_KEY, "app_key": DATADOG_APP_KEY }
            }),
        )
        .await;
    let webhook_token = dd["webhook"]["token"].as_str().unwrap().to_owned();
    let pd = patchbay
        .connect(
            &key,
            json!({ "connector": "pagerduty", "fields": { "api_token": PAGERDUTY_TOKEN } }),
        )
        .await;
    let pd_id = pd["connection"]["id"].as_str().unwrap();
    let added = patchbay
        .api(
            "POST",
            &format!("/api/connections/{pd_id}/webhook/secrets"),
            &key,
            Some(json!({ "secret": PAGERDUTY_SIGNING_SECRET })),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    patchbay
        .connect(
            &key,
            json!({ "connector": "kubernetes", "fields": { "cluster_name": "prod-eu" } }),
        )
        .await;
    for (alert_id, transition) in [(101, "Triggered"), (102, "Triggered"), (101, "Recovered")] {
        let delivered = patchbay
            .request(
                "POST",
                "/datadog/webhook/alice",
                &[
                    ("content-type", "application/json"),
                    ("x-patchbay-token", webhook_token.as_str()),
                ],
                Some(serde_json::to_vec(&datadog.sample_webhook(alert_id, transition)).unwrap()),
            )
            .await;
        assert_eq!(delivered.status, 202, "{}", delivered.text);
    }
    let incident = sample_payload("evt-fuzz-1", "incident.triggered", INCIDENT_ID).to_string();
    let signature = sign(PAGERDUTY_SIGNING_SECRET, incident.as_bytes());
    let delivered = patchbay
        .request(
            "POST",
            "/pagerduty/webhook/alice",
            &[
                ("content-type", "application/json"),
                ("x-webhook-id", "wh-fuzz-1"),
                ("x-pagerduty-signature", signature.as_str()),
            ],
            Some(incident.into_bytes()),
        )
        .await;
    assert_eq!(delivered.status, 202, "{}", delivered.text);
    let alerts = patchbay.api("GET", "/api/alerts", &key, None).await.json();
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 4, "{alerts}");

    let connectors: Vec<String> = patchbay
        .api("GET", "/api/connectors", &key, None)
        .await
        .json()["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|connector| connector["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(connectors.len() > FAKED.len(), "{connectors:?}");
    let connectors = connectors.join(",");

    let canaries = [
        DATADOG_API_KEY,
        DATADOG_APP_KEY,
        PAGERDUTY_TOKEN,
        PAGERDUTY_SIGNING_SECRET,
        webhook_token.as_str(),
        key.as_str(),
    ];
    let operation_ids = |flag: &str| {
        DESTRUCTIVE
            .iter()
            .flat_map(|id| [flag.to_owned(), (*id).to_owned()])
            .collect::<Vec<_>>()
    };
    let fuzzer = Fuzzer {
        schemathesis,
        patchbay: &patchbay,
        key: &key,
        connectors,
        canaries: canaries.to_vec(),
    };
    let fuzzing = Instant::now();
    let first = fuzzer.run(&operation_ids("--exclude-operation-id"));
    // The destructive pass: with connect, list and get, so the stateful phase can
    // create what it deletes and read it back.
    let mut destructive = operation_ids("--include-operation-id");
    for id in ["connect", "list_connections", "get_connection"] {
        destructive.extend(["--include-operation-id".to_owned(), id.to_owned()]);
    }
    let second = fuzzer.run(&destructive);
    eprintln!(
        "schemathesis ran for {:.1} s; the whole test took {:.1} s",
        fuzzing.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    // Every phase ran, stateful included, and passed.
    for output in [&first, &second] {
        for phase in ["Coverage", "Fuzzing", "Stateful"] {
            assert!(summary(output).contains(&format!("✅ {phase}")), "{output}");
        }
    }

    // The planted secrets are in no log line and stored in clear nowhere; the
    // provider keys were in no answer the harness read either.
    patchbay.assert_not_logged_or_stored(&canaries);
    patchbay.assert_nowhere(&[
        DATADOG_API_KEY,
        DATADOG_APP_KEY,
        PAGERDUTY_TOKEN,
        PAGERDUTY_SIGNING_SECRET,
    ]);

    // Nothing left the machine.
    let logs = patchbay.logs();
    let addresses = connected_addresses(&logs);
    assert!(
        !addresses.is_empty(),
        "no outbound connection was logged; the check below would prove nothing"
    );
    for address in &addresses {
        assert!(
            address.starts_with("127.0.0.1:") || address.starts_with("[::1]:"),
            "Patchbay connected to {address}"
        );
    }
    eprintln!(
        "outbound connections: {} (all loopback); sent to the loopback proxy: {:?}",
        addresses.len(),
        sink.requests()
    );
}
