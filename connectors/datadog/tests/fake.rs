//! The fake Datadog answers like Datadog: key checks, parameter and body checks,
//! documented shapes, one-shot faults and revoked permissions.

use patchbay_connector_datadog::fake::{sample_webhook, FakeDatadog, Fault};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const API_KEY: &str = "fake-api-key-0123456789";
const APP_KEY: &str = "fake-app-key-9876543210";

struct Client {
    http: reqwest::Client,
    base: String,
}

impl Client {
    fn new(fake: &FakeDatadog) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: fake.base_url(),
        }
    }

    async fn get(&self, path_and_query: &str, keys: (Option<&str>, Option<&str>)) -> (u16, Value) {
        let mut request = self.http.get(format!("{}{path_and_query}", self.base));
        if let Some(api_key) = keys.0 {
            request = request.header("DD-API-KEY", api_key);
        }
        if let Some(app_key) = keys.1 {
            request = request.header("DD-APPLICATION-KEY", app_key);
        }
        let response = request.send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    async fn get_ok(&self, path_and_query: &str) -> (u16, Value) {
        self.get(path_and_query, (Some(API_KEY), Some(APP_KEY)))
            .await
    }

    async fn search(&self, body: Value) -> (u16, Value) {
        let response = self
            .http
            .post(format!("{}/api/v2/logs/events/search", self.base))
            .header("DD-API-KEY", API_KEY)
            .header("DD-APPLICATION-KEY", APP_KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }
}

fn forbidden() -> Value {
    json!({"errors": ["Forbidden"]})
}

#[tokio::test]
async fn keys_are_checked_like_datadog_checks_them() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let client = Client::new(&fake);
    assert_eq!(
        client.get("/api/v1/validate", (Some(API_KEY), None)).await,
        (200, json!({"valid": true})),
        "validate needs only the API key"
    );
    assert_eq!(
        client.get("/api/v1/validate", (Some("wrong"), None)).await,
        (403, forbidden())
    );
    assert_eq!(
        client.get("/api/v1/validate", (None, None)).await,
        (403, forbidden())
    );
    assert_eq!(
        client.get("/api/v1/monitor", (Some(API_KEY), None)).await,
        (403, forbidden())
    );
    assert_eq!(
        client
            .get("/api/v1/monitor", (Some(API_KEY), Some("wrong")))
            .await,
        (403, forbidden())
    );
    assert_eq!(client.get_ok("/api/v1/monitor").await.0, 200);

    let (status, body) = client
        .get(
            &format!("/api/v1/validate?api_key={API_KEY}"),
            (Some(API_KEY), None),
        )
        .await;
    assert_eq!(status, 400, "deprecated key query parameters are rejected");
    assert!(body["errors"][0].as_str().unwrap().contains("headers"));
    let (status, _) = client
        .get(
            &format!("/api/v1/monitor?application_key={APP_KEY}"),
            (Some(API_KEY), Some(APP_KEY)),
        )
        .await;
    assert_eq!(status, 400);

    let recorded = format!("{:?}", fake.requests());
    assert!(
        !recorded.contains(API_KEY) && !recorded.contains(APP_KEY),
        "{recorded}"
    );
    let deprecated = fake.requests_to("/api/v1/validate").pop().unwrap();
    assert_eq!(deprecated.query_value("api_key"), Some("[redacted]"));
    assert!(deprecated.has_header("dd-api-key"));
}

#[tokio::test]
async fn required_parameters_and_bodies_are_checked() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let client = Client::new(&fake);
    for path in [
        "/api/v1/events?start=1",
        "/api/v1/events?end=1",
        "/api/v1/events?start=a&end=2",
        "/api/v1/events?start=5&end=2",
        "/api/v1/events?start=1&end=2&priority=high",
        "/api/v1/query?from=1&to=2",
        "/api/v1/query?from=1&query=avg:system.load.1{*}",
        "/api/v1/query?from=1&to=2&query=system.load.1",
        "/api/v1/monitor?page=0&page_size=1001",
        "/api/v1/monitor?group_states=bad",
        "/api/v1/monitor/abc",
        "/api/v1/hosts?count=5000",
        "/api/v2/incidents?page[size]=101",
    ] {
        let (status, body) = client.get_ok(path).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["errors"][0].is_string(), "{path}: {body}");
    }
    for body in [
        json!({"filter": "service:web"}),
        json!({"filter": {"query": 5}}),
        json!({"page": {"limit": 1001}}),
        json!({"page": {"limit": 0}}),
        json!({"sort": "desc"}),
        json!({"page": {"cursor": "not-a-cursor"}}),
        json!(["filter"]),
    ] {
        let (status, answer) = client.search(body.clone()).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert!(answer["errors"][0].is_string());
    }
    assert_eq!(
        client.get_ok("/api/v1/monitor/999").await,
        (404, json!({"errors": ["Monitor not found"]}))
    );
    assert_eq!(client.get_ok("/api/v1/nothing").await.0, 404);
}

#[tokio::test]
async fn responses_have_the_documented_shapes() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let client = Client::new(&fake);
    let (_, monitors) = client.get_ok("/api/v1/monitor").await;
    assert_eq!(monitors.as_array().unwrap().len(), 3);
    assert!(monitors[0]["query"].is_string() && monitors[0]["type"].is_string());
    let (_, page) = client.get_ok("/api/v1/monitor?page=1&page_size=2").await;
    assert_eq!(page.as_array().unwrap().len(), 1);
    let (_, filtered) = client
        .get_ok("/api/v1/monitor?monitor_tags=service:payments")
        .await;
    assert_eq!(filtered[0]["id"], 1002);

    let now = chrono::Utc::now().timestamp();
    let (_, events) = client
        .get_ok(&format!("/api/v1/events?start={}&end={now}", now - 3600))
        .await;
    assert_eq!(events["status"], "ok");
    assert_eq!(events["events"].as_array().unwrap().len(), 4);
    assert!(events["events"][0]["date_happened"].is_i64());

    let (_, hosts) = client.get_ok("/api/v1/hosts?count=1&start=1").await;
    assert_eq!(hosts["total_matching"], 3);
    assert_eq!(hosts["total_returned"], 1);
    assert_eq!(hosts["host_list"][0]["name"], "web-2");

    let (_, series) = client
        .get_ok(&format!(
            "/api/v1/query?from={}&to={now}&query=avg:system.load.1{{*}}%20by%20{{host}}",
            now - 600
        ))
        .await;
    assert_eq!(series["status"], "ok");
    assert_eq!(series["series"].as_array().unwrap().len(), 3);
    assert!(series["series"][0]["pointlist"][0][1].is_f64());

    let (_, org) = client.get_ok("/api/v1/org").await;
    assert_eq!(org["orgs"][0]["public_id"], "abc123def456");

    let (_, incidents) = client
        .get_ok("/api/v2/incidents?page[size]=10&page[offset]=25")
        .await;
    assert_eq!(incidents["data"].as_array().unwrap().len(), 5);
    assert_eq!(incidents["meta"]["pagination"]["offset"], 25);
    assert_eq!(incidents["data"][0]["type"], "incidents");
}

#[tokio::test]
async fn logs_page_with_cursors_over_a_fixed_set() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let client = Client::new(&fake);
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut page = json!({"limit": 50});
        if let Some(cursor) = &cursor {
            page["cursor"] = json!(cursor);
        }
        let (status, body) = client
            .search(json!({"filter": {"query": "*", "from": "now-15m", "to": "now"}, "page": page, "sort": "-timestamp"}))
            .await;
        assert_eq!(status, 200, "{body}");
        for log in body["data"].as_array().unwrap() {
            assert_eq!(log["type"], "log");
            seen.push(log["attributes"]["timestamp"].as_str().unwrap().to_owned());
        }
        match body.pointer("/meta/page/after").and_then(Value::as_str) {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 120);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first");
    let (_, errors_only) = client
        .search(json!({"filter": {"query": "status:error"}, "page": {"limit": 1000}}))
        .await;
    assert_eq!(errors_only["data"].as_array().unwrap().len(), 40);
    let size = errors_only.to_string().len();
    assert!(
        size > 256 * 1024,
        "the checkout errors' stack traces make an answer over 256 KiB, got {size} bytes"
    );
}

#[tokio::test]
async fn faults_fire_once_per_injection_and_permissions_can_be_revoked() {
    let fake = FakeDatadog::start(API_KEY, APP_KEY).await;
    let client = Client::new(&fake);
    fake.inject(
        "/api/v1/hosts",
        Fault::RateLimited {
            retry_after_secs: 7,
        },
    );
    fake.inject("/api/v1/hosts", Fault::ServerError);
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/hosts", fake.base_url()))
        .header("DD-API-KEY", API_KEY)
        .header("DD-APPLICATION-KEY", APP_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    assert_eq!(client.get_ok("/api/v1/hosts").await.0, 500);
    assert_eq!(client.get_ok("/api/v1/hosts").await.0, 200);
    fake.inject("/api/v1/org", Fault::Unavailable);
    assert_eq!(client.get_ok("/api/v1/org").await.0, 503);
    assert_eq!(
        fake.requests_to("/api/v1/hosts").len(),
        3,
        "faulted requests are recorded too"
    );

    fake.revoke_app_key_permission("events_read");
    let now = chrono::Utc::now().timestamp();
    assert_eq!(
        client
            .get_ok(&format!("/api/v1/events?start={}&end={now}", now - 60))
            .await,
        (403, forbidden())
    );
    assert_eq!(
        client.get_ok("/api/v1/monitor").await.0,
        200,
        "other permissions are untouched"
    );
    assert_eq!(
        client
            .get("/api/v1/validate", (Some(API_KEY), None))
            .await
            .0,
        200
    );
}

#[test]
fn sample_webhooks_are_realistic_and_deterministic() {
    let firing = sample_webhook(1234, "Triggered");
    let size = firing.to_string().len();
    assert!((1500..=3000).contains(&size), "about 2 KB, got {size}");
    assert_eq!(firing, sample_webhook(1234, "Triggered"));
    let recovered = sample_webhook(1234, "Recovered");
    assert_eq!(firing["alert_cycle_key"], recovered["alert_cycle_key"]);
    assert_ne!(firing["id"], recovered["id"]);
    assert_eq!(recovered["alert_type"], "success");
    assert!(recovered["title"]
        .as_str()
        .unwrap()
        .starts_with("[Recovered"));
    assert_ne!(
        firing["alert_cycle_key"],
        sample_webhook(1235, "Triggered")["alert_cycle_key"]
    );
    for key in [
        "alert_id",
        "alert_cycle_key",
        "alert_transition",
        "alert_type",
        "alert_priority",
        "alert_scope",
        "alert_title",
        "alert_metric",
        "alert_query",
        "id",
        "date",
        "link",
        "hostname",
        "tags",
    ] {
        assert!(firing[key].is_string(), "{key}");
    }
}
