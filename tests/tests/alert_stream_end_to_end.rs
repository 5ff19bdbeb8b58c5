//! The live alert stream, end to end through the real binary: Server-Sent Events
//! of committed alerts, resumed with `Last-Event-ID` after a disconnect, across two
//! replicas on PostgreSQL, scoped to the caller's tenant, and followed by
//! `patchbay alerts tail`.

use std::time::Duration;

use eventsource_stream::{Event, EventStream, Eventsource};
use futures::stream::BoxStream;
use futures::StreamExt;
use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_e2e::postgres::TestDatabase;
use patchbay_e2e::Patchbay;
use patchbay_testkit::fake_server::ProviderFake;
use patchbay_testkit::services;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const CANARY_API_KEY: &str = "canary-stream-api-5b1e9c0d27";
const CANARY_APP_KEY: &str = "canary-stream-app-c4a8f31e60";
/// How long an event may take to arrive: far above what it needs, and below the
/// stream's 15 s fallback poll, so an alert committed on the other replica must
/// arrive through PostgreSQL's notification, not through the poll.
const PATIENCE: Duration = Duration::from_secs(10);

type Events = EventStream<BoxStream<'static, reqwest::Result<bytes::Bytes>>>;

/// Connects Datadog for the key's tenant; returns its webhook token.
async fn connect_datadog(patchbay: &Patchbay, key: &str, label: &str) -> String {
    let connected = patchbay
        .connect(
            key,
            json!({
                "connector": "datadog",
                "label": label,
                "fields": { "api_key": CANARY_API_KEY, "app_key": CANARY_APP_KEY }
            }),
        )
        .await;
    connected["webhook"]["token"].as_str().unwrap().to_owned()
}

async fn deliver(patchbay: &Patchbay, fake: &FakeDatadog, user: &str, token: &str, alert_id: u64) {
    let body = serde_json::to_vec(&fake.sample_webhook(alert_id, "Triggered")).unwrap();
    let answer = patchbay
        .request(
            "POST",
            &format!("/datadog/webhook/{user}"),
            &[
                ("content-type", "application/json"),
                ("x-patchbay-token", token),
            ],
            Some(body),
        )
        .await;
    assert_eq!(answer.status, 202, "{}", answer.text);
}

/// Opens the stream; `last_event_id` resumes after that cursor.
async fn open(patchbay: &Patchbay, key: &str, last_event_id: Option<&str>) -> Events {
    let mut request = reqwest::Client::new()
        .get(format!("{}/api/alerts/stream", patchbay.base_url))
        .bearer_auth(key)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.expect("the stream answers");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut events = response.bytes_stream().boxed().eventsource();
    let opened = next_event(&mut events).await;
    assert_eq!(opened.event, "open", "the first event says where it starts");
    events
}

async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(PATIENCE, events.next())
        .await
        .expect("an event within the patience limit")
        .expect("the stream is open")
        .expect("a well-formed event")
}

/// The next `alert` event, as the alert and its event id.
async fn next_alert(events: &mut Events) -> (Value, String) {
    let event = next_event(events).await;
    assert_eq!(event.event, "alert", "{event:?}");
    (serde_json::from_str(&event.data).unwrap(), event.id)
}

async fn listed_alerts(patchbay: &Patchbay, key: &str) -> Vec<Value> {
    let page = patchbay.api("GET", "/api/alerts?after=0", key, None).await;
    assert_eq!(page.status, 200, "{}", page.text);
    page.json()["alerts"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn needs_postgres_the_stream_follows_alerts_from_either_replica_and_resumes_where_it_stopped()
{
    let database = TestDatabase::create(&services::postgres_url()).await;
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let env = [
        ("DATABASE_URL", database.url.as_str()),
        ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
    ];
    let replica_a = Patchbay::start(&env).await;
    let replica_b = Patchbay::start(&env).await;
    let alice = replica_a.create_api_key("alice", Some("acme"));
    let mallory = replica_a.create_api_key("mallory", Some("evil-corp"));
    let alice_token = connect_datadog(&replica_a, &alice, "prod").await;
    let mallory_token = connect_datadog(&replica_a, &mallory, "theirs").await;

    // Already stored before anyone follows: a plain stream starts after it.
    deliver(&replica_a, &fake, "alice", &alice_token, 100).await;
    let mut on_a = open(&replica_a, &alice, None).await;
    let mut mallory_on_a = open(&replica_a, &mallory, None).await;

    // Committed by replica B, seen on replica A's stream.
    deliver(&replica_b, &fake, "alice", &alice_token, 101).await;
    let (first, first_id) = next_alert(&mut on_a).await;
    assert_eq!(first_id, first["cursor"].to_string());

    // Disconnected; two more arrive meanwhile, through each replica.
    drop(on_a);
    deliver(&replica_b, &fake, "alice", &alice_token, 102).await;
    deliver(&replica_a, &fake, "alice", &alice_token, 103).await;
    let mut resumed_on_b = open(&replica_b, &alice, Some(&first_id)).await;
    let (second, _) = next_alert(&mut resumed_on_b).await;
    let (third, third_id) = next_alert(&mut resumed_on_b).await;

    let listed = listed_alerts(&replica_b, &alice).await;
    assert_eq!(listed.len(), 4, "{listed:#?}");
    assert_eq!(
        [&first, &second, &third],
        [&listed[1], &listed[2], &listed[3]],
        "the stream gives exactly the stored alerts after its start, in order, once each"
    );

    // Still live after resuming; another tenant's stream never carries alice's alerts.
    deliver(&replica_a, &fake, "mallory", &mallory_token, 104).await;
    deliver(&replica_b, &fake, "alice", &alice_token, 105).await;
    let (fourth, fourth_id) = next_alert(&mut resumed_on_b).await;
    assert!(fourth_id.parse::<i64>().unwrap() > third_id.parse::<i64>().unwrap());
    assert_eq!(fourth, listed_alerts(&replica_a, &alice).await[4]);
    let (theirs, _) = next_alert(&mut mallory_on_a).await;
    assert_eq!(theirs, listed_alerts(&replica_a, &mallory).await[0]);
    assert_ne!(theirs["connection_id"], fourth["connection_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_refuses_bad_cursors_and_missing_keys_by_name() {
    let patchbay = Patchbay::start(&[]).await;
    let alice = patchbay.create_api_key("alice", None);
    let unauthenticated = patchbay
        .request("GET", "/api/alerts/stream", &[], None)
        .await;
    assert_eq!(unauthenticated.status, 401, "{}", unauthenticated.text);

    let authorization = format!("Bearer {alice}");
    let not_a_cursor = patchbay
        .request(
            "GET",
            "/api/alerts/stream",
            &[
                ("authorization", authorization.as_str()),
                ("last-event-id", "yesterday"),
            ],
            None,
        )
        .await;
    assert_eq!(not_a_cursor.status, 400, "{}", not_a_cursor.text);
    assert_eq!(not_a_cursor.json()["error"]["field"], "Last-Event-ID");
    let negative = patchbay
        .api("GET", "/api/alerts/stream?after=-4", &alice, None)
        .await;
    assert_eq!(negative.status, 400, "{}", negative.text);
    assert_eq!(negative.json()["error"]["field"], "after");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_tail_prints_stored_then_new_alerts_and_exits_3_on_a_bad_key() {
    let fake = FakeDatadog::start(CANARY_API_KEY, CANARY_APP_KEY).await;
    let overrides = fake.override_spec();
    let patchbay = Patchbay::start(&[("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str())]).await;
    let alice = patchbay.create_api_key("alice", None);
    let token = connect_datadog(&patchbay, &alice, "prod").await;
    deliver(&patchbay, &fake, "alice", &token, 200).await;

    let service = [
        ("PATCHBAY_URL", patchbay.base_url.as_str()),
        ("PATCHBAY_API_KEY", alice.as_str()),
    ];
    let mut tail = patchbay.cli_spawn(&["alerts", "tail", "--after", "0", "--json"], &service);
    let mut lines = BufReader::new(tail.stdout.take().unwrap()).lines();
    let mut next_line = async || {
        tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("a line within the patience limit")
            .unwrap()
            .expect("tail is still running")
    };
    let stored: Value = serde_json::from_str(&next_line().await).unwrap();
    deliver(&patchbay, &fake, "alice", &token, 201).await;
    let new: Value = serde_json::from_str(&next_line().await).unwrap();
    assert_eq!(vec![stored, new], listed_alerts(&patchbay, &alice).await);
    tail.kill().await.unwrap();

    let table = patchbay.cli_spawn(&["alerts", "tail", "--after", "0"], &service);
    let output = kill_after_lines(table, 2).await;
    let rows: Vec<_> = output.lines().collect();
    assert!(rows[0].contains("High error rate on checkout"), "{output}");
    assert!(
        rows[0].contains("[#1]") && rows[1].contains("[#2]"),
        "{output}"
    );

    let refused = patchbay.cli_with(
        &["alerts", "tail"],
        &[
            ("PATCHBAY_URL", patchbay.base_url.as_str()),
            ("PATCHBAY_API_KEY", "pb_not-a-key"),
        ],
    );
    assert_eq!(refused.status.code(), Some(3), "{refused:?}");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("following alerts"), "{stderr}");
}

/// Reads `count` lines of a running `tail`, then stops it.
async fn kill_after_lines(mut child: tokio::process::Child, count: usize) -> String {
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut output = String::new();
    for _ in 0..count {
        let line = tokio::time::timeout(PATIENCE, lines.next_line())
            .await
            .expect("a line within the patience limit")
            .unwrap()
            .expect("tail is still running");
        output.push_str(&line);
        output.push('\n');
    }
    child.kill().await.unwrap();
    output
}
