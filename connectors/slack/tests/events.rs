//! Events API deliveries: Slack's documented signature example with an injected
//! clock, rejections, URL verification, routing and normalisation (both only of
//! verified deliveries).
//!
//! The vectors come from the crate's `fixtures/vectors.json`.

mod support;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue};
use patchbay_connector_slack::fake::{self as slack, sign, signed_delivery, FakeSlack};
use patchbay_connector_slack::webhook;
use patchbay_core::{
    AlertSeverity, AlertStatus, DynConnector, ErrorKind, EventKind, InboundWebhook, SecretString,
    VerifiedDelivery, WebhookKey, WebhookRoute,
};
use serde_json::Value;
use support::{
    connector_at, connector_for, credentials, ctx, now_seconds, BOT_TOKEN, SIGNING_SECRET,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/fixtures/vectors.json"
    )))
    .unwrap()
}

/// Verifies an Events API delivery with the app's signing secret, as the host does first.
async fn verified(connector: &dyn DynConnector, request: &InboundWebhook) -> VerifiedDelivery {
    connector
        .verify(&ctx(), WebhookKey::App, request)
        .await
        .unwrap()
}

fn at(seconds: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(seconds)
}

fn delivery(headers: &[(&'static str, &str)], body: &str) -> InboundWebhook {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    InboundWebhook {
        headers: map,
        body: Bytes::from(body.to_owned()),
    }
}

#[tokio::test]
async fn slacks_documented_example_verifies_with_its_clock_and_not_with_a_real_one() {
    let vectors = vectors();
    let vector = &vectors["request_signing"]["vectors"][0];
    let secret = vector["signing_secret"].as_str().unwrap();
    let timestamp = vector["timestamp"].as_str().unwrap();
    let body = vector["body"].as_str().unwrap();
    let expected = vector["expected"].as_str().unwrap();
    assert_eq!(sign(secret, timestamp, body), expected);
    assert_eq!(
        webhook::signature(&SecretString::from(secret), timestamp, body.as_bytes()),
        expected
    );
    let request = delivery(
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("x-slack-request-timestamp", timestamp),
            ("x-slack-signature", expected),
        ],
        body,
    );
    let clock = vector["clock_for_acceptance"].as_u64().unwrap();
    webhook::verify_signature(Some(&SecretString::from(secret)), &request, at(clock)).unwrap();
    // The slash-command form names its workspace in `team_id`.
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = std::sync::Arc::new(patchbay_connector_slack::SlackConnector::with_clock(
        support::http_for(&fake),
        Some(SecretString::from(secret)),
        std::sync::Arc::new(move || at(clock + 299)),
    ));
    let delivery = verified(connector.as_ref(), &request).await;
    let route = connector.route_webhook(&delivery).await.unwrap();
    assert_eq!(route, WebhookRoute::Connection("T1DC2JH3J".to_owned()));

    let error = webhook::verify_signature(
        Some(&SecretString::from(secret)),
        &request,
        SystemTime::now(),
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(error.message().contains("300 seconds"), "{error}");
}

#[test]
fn forged_stale_and_incomplete_deliveries_are_rejected() {
    let vectors = vectors();
    let vector = &vectors["request_signing"]["vectors"][0];
    let secret = SecretString::from(vector["signing_secret"].as_str().unwrap());
    let timestamp = vector["timestamp"].as_str().unwrap();
    let body = vector["body"].as_str().unwrap();
    let good = vector["expected"].as_str().unwrap();
    let clock = at(vector["clock_for_acceptance"].as_u64().unwrap());
    let reject = |request: InboundWebhook, secret: Option<&SecretString>, now: SystemTime| {
        let error = webhook::verify_signature(secret, &request, now).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::AuthFailed, "{error}");
        error
    };
    let signed = |signature: &str, body: &str| {
        delivery(
            &[
                ("x-slack-request-timestamp", timestamp),
                ("x-slack-signature", signature),
            ],
            body,
        )
    };
    let wrong_secret = sign("another-signing-secret", timestamp, body);
    reject(signed(&wrong_secret, body), Some(&secret), clock);
    reject(
        signed(good, &body.replace("roadrunner", "coyote")),
        Some(&secret),
        clock,
    );
    reject(
        signed(good, body),
        Some(&secret),
        clock + Duration::from_secs(301),
    );
    reject(
        signed(good, body),
        Some(&secret),
        clock - Duration::from_secs(301),
    );
    webhook::verify_signature(
        Some(&secret),
        &signed(good, body),
        clock + Duration::from_secs(300),
    )
    .unwrap();
    reject(signed("v0=zz", body), Some(&secret), clock);
    reject(
        signed(good.trim_start_matches("v0="), body),
        Some(&secret),
        clock,
    );
    let error = reject(
        delivery(&[("x-slack-signature", good)], body),
        Some(&secret),
        clock,
    );
    assert!(
        error.message().contains("X-Slack-Request-Timestamp"),
        "{error}"
    );
    let error = reject(
        delivery(&[("x-slack-request-timestamp", timestamp)], body),
        Some(&secret),
        clock,
    );
    assert!(error.message().contains("X-Slack-Signature"), "{error}");
    let error = reject(signed(good, body), None, clock);
    assert!(error.message().contains("SLACK_SIGNING_SECRET"), "{error}");
    assert!(!error.to_string().contains(secret.expose()));
}

#[tokio::test]
async fn url_verification_echoes_the_challenge_as_text() {
    let vectors = vectors();
    let payload = &vectors["events_api_payloads"]["url_verification"];
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let request = signed_delivery(
        SIGNING_SECRET,
        &now_seconds(),
        "application/json",
        &payload.to_string(),
    );
    let delivery = verified(connector.as_ref(), &request).await;
    let WebhookRoute::Reply(reply) = connector.route_webhook(&delivery).await.unwrap() else {
        panic!("url_verification must be answered directly");
    };
    assert_eq!(reply.status, 200);
    assert_eq!(reply.content_type, "text/plain");
    assert_eq!(reply.body, payload["challenge"].as_str().unwrap());
}

#[tokio::test]
async fn the_documented_app_mention_routes_to_its_team_and_becomes_a_chat_trigger() {
    let vectors = vectors();
    let payloads = &vectors["events_api_payloads"];
    // The docs' text has a trailing comma, so it is not JSON; the vector file carries the repaired object.
    assert!(serde_json::from_str::<Value>(
        payloads["app_mention_doc_text_verbatim"].as_str().unwrap()
    )
    .is_err());
    let body = payloads["app_mention_event_callback"].to_string();
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let timestamp = "1700000000";
    let connector = connector_at(&fake, at(1_700_000_100));
    let request = signed_delivery(SIGNING_SECRET, timestamp, "application/json", &body);
    let delivery = verified(connector.as_ref(), &request).await;
    assert_eq!(
        connector.route_webhook(&delivery).await.unwrap(),
        WebhookRoute::Connection("T123ABC456".to_owned())
    );
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let outcome = connector
        .normalize(&ctx(), &credentials.config, &delivery)
        .await
        .unwrap();
    assert!(outcome.reply.is_none());
    let [event] = outcome.events.as_slice() else {
        panic!("one event expected, got {:?}", outcome.events);
    };
    assert_eq!(event.source, "slack");
    assert_eq!(event.kind, EventKind::ChatTrigger);
    assert_eq!(event.dedup_key, "Ev123ABC456");
    assert_eq!(
        event.title,
        "<@U0LAN0Z89> is it everything a river should be?"
    );
    assert_eq!(event.status, AlertStatus::Firing);
    assert_eq!(event.severity, AlertSeverity::Unknown);
    assert_eq!(event.labels["channel"], "C123ABC456");
    assert_eq!(event.labels["user"], "U061F7AUR");
    assert_eq!(event.labels["ts"], "1515449522.000016");
    assert_eq!(event.labels["team_id"], "T123ABC456");
    assert!(!event.labels.contains_key("thread_ts"));
    assert_eq!(event.started_at.unwrap().timestamp(), 1_515_449_522);
    assert_eq!(event.raw, payloads["app_mention_event_callback"]);

    // A redelivery carries X-Slack-Retry-Num and the same event_id, so the store dedups it.
    let mut retry = signed_delivery(SIGNING_SECRET, timestamp, "application/json", &body);
    retry
        .headers
        .insert("x-slack-retry-num", HeaderValue::from_static("1"));
    retry.headers.insert(
        "x-slack-retry-reason",
        HeaderValue::from_static("http_timeout"),
    );
    let retry = verified(connector.as_ref(), &retry).await;
    let again = connector
        .normalize(&ctx(), &credentials.config, &retry)
        .await
        .unwrap();
    assert_eq!(again.events[0].dedup_key, event.dedup_key);
}

#[tokio::test]
async fn threaded_mentions_carry_thread_ts_and_other_events_are_acknowledged_empty() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let connector = connector_for(&fake);
    let credentials = credentials(&connector, BOT_TOKEN).await;
    let mut mention = slack::app_mention(
        "Ev0THREAD01",
        slack::INCIDENTS_CHANNEL,
        "1714564999.000300",
        "  <@U0FAKEBOT1> summarise this  ",
    );
    mention["event"]["thread_ts"] = slack::THREAD_TS.into();
    let request = signed_delivery(
        SIGNING_SECRET,
        &now_seconds(),
        "application/json",
        &mention.to_string(),
    );
    let delivery = verified(connector.as_ref(), &request).await;
    let outcome = connector
        .normalize(&ctx(), &credentials.config, &delivery)
        .await
        .unwrap();
    let event = &outcome.events[0];
    assert_eq!(event.title, "<@U0FAKEBOT1> summarise this");
    assert_eq!(event.labels["thread_ts"], slack::THREAD_TS);
    assert_eq!(
        event.external_id,
        format!("{}:{}", slack::INCIDENTS_CHANNEL, slack::THREAD_TS)
    );

    let mut message = mention.clone();
    message["event"]["type"] = "message".into();
    let request = signed_delivery(
        SIGNING_SECRET,
        &now_seconds(),
        "application/json",
        &message.to_string(),
    );
    let delivery = verified(connector.as_ref(), &request).await;
    assert_eq!(
        connector.route_webhook(&delivery).await.unwrap(),
        WebhookRoute::Connection(slack::TEAM_ID.to_owned())
    );
    let outcome = connector
        .normalize(&ctx(), &credentials.config, &delivery)
        .await
        .unwrap();
    assert!(outcome.events.is_empty() && outcome.reply.is_none());

    // A forged delivery is refused by verify, so it can be neither routed nor normalised.
    let mut forged = request.clone();
    forged.body = Bytes::from(mention.to_string());
    let error = connector
        .verify(&ctx(), WebhookKey::App, &forged)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
}
