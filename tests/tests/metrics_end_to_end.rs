//! Prometheus metrics through the real binary: `/metrics` on its own listen address,
//! every family present, and the series that traffic should move moving, with no
//! secret, tenant or URL in any label.

use patchbay_connector_datadog::fake::{FakeDatadog, Fault};
use patchbay_core::metrics::{
    AGENT_COMMANDS, AGENT_CONNECTIONS, ALERT_COMMIT_BATCH_SIZE, FAMILIES, OAUTH_FLOWS,
    PROVIDER_REQUESTS, PROVIDER_REQUEST_SECONDS, PROVIDER_RETRIES, PROVIDER_RETRY_WAIT_SECONDS,
    STORE_OPERATIONS, STORE_OPERATION_SECONDS, TOKEN_REFRESHES, WEBHOOK_DELIVERIES,
    WEBHOOK_INGEST_SECONDS,
};
use patchbay_e2e::{free_port, Patchbay};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::json;

const CANARY_API_KEY: &str = "canary-metrics-api-5d0c2b7e41";
const CANARY_APP_KEY: &str = "canary-metrics-app-93a6f1c0d8";
const CANARY_CLIENT_SECRET: &str = "canary-metrics-client-secret-7b21";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_webhooks_provider_calls_stores_and_oauth_flows() {
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let metrics_address = format!("127.0.0.1:{}", free_port());
    let metrics_url = format!("http://{metrics_address}");
    let patchbay = Patchbay::start(&[
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ("PATCHBAY_METRICS_LISTEN", metrics_address.as_str()),
        ("NEXT_PUBLIC_ENABLE_SLACK", "true"),
        ("SLACK_CLIENT_ID", "metrics-test-client"),
        ("SLACK_CLIENT_SECRET", CANARY_CLIENT_SECRET),
        ("SLACK_SIGNING_SECRET", "metrics-test-signing-secret"),
    ])
    .await;

    // Moved to its own address, `/metrics` is not served with the API.
    let on_api_port = patchbay.request("GET", "/metrics", &[], None).await;
    assert_eq!(on_api_port.status, 404, "{}", on_api_port.text);
    let before = patchbay.scrape(&metrics_url).await;

    let alice = patchbay.create_api_key("alice", Some("acme"));
    let connected = patchbay
        .api(
            "POST",
            "/api/connections",
            &alice,
            Some(json!({
                "connector": "datadog",
                "label": "prod",
                "fields": { "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY, "site": "datadoghq.com" }
            })),
        )
        .await;
    assert_eq!(connected.status, 201, "{}", connected.text);
    let connected = connected.json();
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    let token = connected["webhook"]["token"].as_str().unwrap().to_owned();

    // One query meets a 429 with Retry-After first and succeeds on the retry.
    fake.inject(
        "/api/v1/hosts",
        Fault::RateLimited {
            retry_after_secs: 1,
        },
    );
    let hosts = patchbay
        .api(
            "POST",
            &format!("/api/connections/{id}/query/list_hosts"),
            &alice,
            Some(json!({ "count": 5 })),
        )
        .await;
    assert_eq!(hosts.status, 200, "{}", hosts.text);

    // Webhooks: stored, repeated, refused.
    let delivery = serde_json::to_vec(&fake.sample_webhook(5151, "Triggered")).unwrap();
    let send = |token: &str, body: Vec<u8>| {
        let patchbay = &patchbay;
        let token = token.to_owned();
        async move {
            patchbay
                .request(
                    "POST",
                    "/datadog/webhook/alice",
                    &[
                        ("content-type", "application/json"),
                        ("x-patchbay-token", token.as_str()),
                    ],
                    Some(body),
                )
                .await
                .status
        }
    };
    assert_eq!(send(&token, delivery.clone()).await, 202);
    assert_eq!(send(&token, delivery.clone()).await, 202);
    assert_eq!(send("not-the-token", delivery.clone()).await, 401);

    // An OAuth flow started, and a callback that fails (its state is unknown).
    let started = patchbay
        .api(
            "POST",
            "/api/connections/oauth/slack/start",
            &alice,
            Some(json!({})),
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.text);
    let failed = patchbay
        .request("GET", "/slack/callback?code=bogus&state=unknown", &[], None)
        .await;
    assert!(failed.status >= 400, "{}", failed.text);

    let after = patchbay.scrape(&metrics_url).await;
    // Every family this traffic reaches is exported; token refreshes are checked by
    // the refresh storm in `oauth_end_to_end`, agents in the host's Kubernetes tests.
    for (name, _, _) in FAMILIES {
        if ![TOKEN_REFRESHES, AGENT_CONNECTIONS, AGENT_COMMANDS].contains(name) {
            assert!(after.has_family(name), "{name} is missing: {}", after.text);
        }
    }
    let moved =
        |name: &str, labels: &[(&str, &str)]| after.sum(name, labels) - before.sum(name, labels);
    let datadog = ("connector", "datadog");
    assert_eq!(
        moved(WEBHOOK_DELIVERIES, &[datadog, ("outcome", "accepted")]),
        1.0
    );
    assert_eq!(
        moved(WEBHOOK_DELIVERIES, &[datadog, ("outcome", "duplicate")]),
        1.0
    );
    assert_eq!(
        moved(WEBHOOK_DELIVERIES, &[datadog, ("outcome", "rejected_auth")]),
        1.0
    );
    let ingest_count = format!("{WEBHOOK_INGEST_SECONDS}_count");
    assert_eq!(moved(&ingest_count, &[datadog]), 2.0);
    let batch_count = format!("{ALERT_COMMIT_BATCH_SIZE}_count");
    assert!(moved(&batch_count, &[]) >= 1.0, "{}", after.text);

    let list_hosts = ("operation", "list_hosts");
    assert_eq!(
        moved(
            PROVIDER_REQUESTS,
            &[datadog, list_hosts, ("status_class", "2xx")]
        ),
        1.0,
        "a request is counted once, with its final status"
    );
    assert!(moved(PROVIDER_REQUESTS, &[datadog, ("operation", "validate")]) >= 1.0);
    let seconds_count = format!("{PROVIDER_REQUEST_SECONDS}_count");
    assert!(moved(&seconds_count, &[datadog, list_hosts]) >= 1.0);
    let rate_limited = ("reason", "rate_limited");
    assert_eq!(moved(PROVIDER_RETRIES, &[datadog, rate_limited]), 1.0);
    let waited = format!("{PROVIDER_RETRY_WAIT_SECONDS}_sum");
    assert!(
        moved(&waited, &[datadog, rate_limited]) >= 1.0,
        "the wait follows Retry-After: {}",
        after.text
    );

    assert!(
        moved(
            STORE_OPERATIONS,
            &[("backend", "sqlite"), ("outcome", "ok")]
        ) >= 1.0
    );
    assert!(
        moved(
            STORE_OPERATIONS,
            &[("backend", "local"), ("operation", "put")]
        ) >= 1.0
    );
    let store_count = format!("{STORE_OPERATION_SECONDS}_count");
    assert!(
        moved(
            &store_count,
            &[("backend", "sqlite"), ("operation", "insert_alerts")]
        ) >= 1.0
    );

    let slack = ("connector", "slack");
    assert_eq!(moved(OAUTH_FLOWS, &[slack, ("stage", "started")]), 1.0);
    assert_eq!(moved(OAUTH_FLOWS, &[slack, ("stage", "failed")]), 1.0);

    // No label carries a secret, a tenant, a connection or a URL.
    for needle in [
        CANARY_API_KEY,
        CANARY_APP_KEY,
        CANARY_CLIENT_SECRET,
        token.as_str(),
        id.as_str(),
        "alice",
        "acme",
        "http://",
        "?",
    ] {
        assert!(!after.text.contains(needle), "/metrics holds {needle:?}");
    }
}
