//! Slack Events API deliveries: request signatures, routing and normalisation.
//!
//! Every delivery is signed with the app's signing secret:
//! `X-Slack-Signature: v0=<hex HMAC-SHA256(secret, "v0:" + timestamp + ":" + body)>`
//! with the timestamp in `X-Slack-Request-Timestamp`. A delivery is accepted only
//! when the signature matches and the timestamp is within five minutes of the
//! connector's clock, so a captured request cannot be replayed later. Routing and
//! normalising read only a [`VerifiedDelivery`].

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use patchbay_core::{
    AlertSeverity, AlertStatus, Error, ErrorKind, EventKind, InboundWebhook, NormalizedAlert,
    Result, SecretString, UnverifiedDelivery, VerifiedDelivery, WebhookOutcome, WebhookReply,
    WebhookRoute,
};
use serde_json::{Map, Value};
use sha2::Sha256;

use crate::{CONNECTOR_ID, SIGNING_SECRET_VAR};

/// The header carrying the request signature.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// The header carrying the request timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";
/// The header Slack adds to redeliveries (1, 2, 3).
pub const RETRY_NUM_HEADER: &str = "X-Slack-Retry-Num";
/// How far a request timestamp may be from the connector's clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(300);

/// Computes `v0=<hex>` for a body, as Slack signs it.
pub fn signature(secret: &SecretString, timestamp: &str, body: &[u8]) -> String {
    let digest = mac_for(secret, timestamp, body).finalize();
    format!("v0={}", hex::encode(digest.into_bytes()))
}

fn mac_for(secret: &SecretString, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC-SHA256 takes keys of any length"));
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    mac
}

/// Vouches for a delivery whose signature and timestamp check out against `now`.
pub fn verify(
    secret: Option<&SecretString>,
    delivery: UnverifiedDelivery,
    now: SystemTime,
) -> Result<VerifiedDelivery> {
    verify_signature(secret, delivery.request(), now)?;
    Ok(delivery.mark_verified())
}

/// Checks a request's signature and timestamp against `now`; every failure is `AuthFailed`.
pub fn verify_signature(
    secret: Option<&SecretString>,
    request: &InboundWebhook,
    now: SystemTime,
) -> Result<()> {
    let Some(secret) = secret.filter(|secret| !secret.is_empty()) else {
        return Err(rejected(format!(
            "{SIGNING_SECRET_VAR} is not set, so Slack events cannot be verified and are all rejected"
        ))
        .with_hint(format!(
            "copy the Signing Secret from the Slack app's Basic Information page into {SIGNING_SECRET_VAR} and restart"
        )));
    };
    let timestamp = request
        .header(TIMESTAMP_HEADER)
        .map(str::trim)
        .ok_or_else(|| rejected(format!("the {TIMESTAMP_HEADER} header is missing")))?;
    let seconds: i64 = timestamp
        .parse()
        .map_err(|_| rejected(format!("the {TIMESTAMP_HEADER} header is not Unix seconds")))?;
    let now_seconds = match now.duration_since(UNIX_EPOCH) {
        Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        Err(before) => -i64::try_from(before.duration().as_secs()).unwrap_or(i64::MAX),
    };
    if now_seconds.abs_diff(seconds) > MAX_CLOCK_SKEW.as_secs() {
        return Err(rejected(format!(
            "the {TIMESTAMP_HEADER} is more than {} seconds from this host's clock",
            MAX_CLOCK_SKEW.as_secs()
        ))
        .with_hint("a replayed request, or this host's clock is wrong (check NTP)"));
    }
    let presented = request
        .header(SIGNATURE_HEADER)
        .map(str::trim)
        .ok_or_else(|| rejected(format!("the {SIGNATURE_HEADER} header is missing")))?;
    let presented = presented
        .strip_prefix("v0=")
        .and_then(|digest| hex::decode(digest).ok())
        .ok_or_else(|| rejected(format!("the {SIGNATURE_HEADER} header is not `v0=<hex>`")))?;
    // `verify_slice` compares in constant time (through the `subtle` crate).
    mac_for(secret, timestamp, &request.body)
        .verify_slice(&presented)
        .map_err(|_| {
            rejected("the Slack request signature does not match".to_owned()).with_hint(format!(
                "check that {SIGNING_SECRET_VAR} is the Signing Secret of the app sending these events"
            ))
        })
}

fn rejected(message: String) -> Error {
    Error::new(ErrorKind::AuthFailed, message)
        .with_connector(CONNECTOR_ID)
        .with_field("signature")
}

/// A verified delivery's body: Events API JSON, or a form post (slash commands, interactions).
enum Body {
    Json(Value),
    Form(Map<String, Value>),
}

fn parse_body(request: &InboundWebhook) -> Result<Body> {
    let text = std::str::from_utf8(&request.body).map_err(|_| {
        Error::invalid_input("body", "the Slack delivery is not UTF-8").with_connector(CONNECTOR_ID)
    })?;
    let is_form = request
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
    if is_form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(text).map_err(|error| {
            Error::invalid_input(
                "body",
                format!("the Slack form delivery is malformed: {error}"),
            )
            .with_connector(CONNECTOR_ID)
        })?;
        let mut fields = Map::new();
        for (key, value) in pairs {
            fields.insert(key, Value::String(value));
        }
        return Ok(Body::Form(fields));
    }
    serde_json::from_str(text).map(Body::Json).map_err(|error| {
        Error::invalid_input("body", format!("the Slack delivery is not JSON: {error}"))
            .with_connector(CONNECTOR_ID)
    })
}

/// Where a verified delivery goes: a challenge answer, or the workspace's connection.
pub fn route(delivery: &VerifiedDelivery) -> Result<WebhookRoute> {
    match parse_body(delivery.request())? {
        Body::Json(body) => {
            if let Some(reply) = challenge_reply(&body) {
                return Ok(WebhookRoute::Reply(reply));
            }
            team_of(&body)
                .map(WebhookRoute::Connection)
                .ok_or_else(no_team)
        }
        Body::Form(fields) => {
            let team = match fields.get("payload").and_then(Value::as_str) {
                Some(payload) => serde_json::from_str::<Value>(payload)
                    .ok()
                    .and_then(|payload| team_of(&payload)),
                None => text(&fields, "team_id"),
            };
            team.map(WebhookRoute::Connection).ok_or_else(no_team)
        }
    }
}

fn no_team() -> Error {
    Error::invalid_input(
        "team_id",
        "the Slack delivery names no workspace (`team_id`)",
    )
    .with_connector(CONNECTOR_ID)
}

/// The workspace a payload belongs to: `team_id`, `team.id`, or the first authorization's team.
fn team_of(body: &Value) -> Option<String> {
    let object = body.as_object()?;
    text(object, "team_id")
        .or_else(|| body.pointer("/team/id").and_then(non_empty))
        .or_else(|| {
            body.pointer("/authorizations/0/team_id")
                .and_then(non_empty)
        })
}

fn challenge_reply(body: &Value) -> Option<WebhookReply> {
    if body.get("type").and_then(Value::as_str) != Some("url_verification") {
        return None;
    }
    let challenge = body.get("challenge").and_then(Value::as_str)?;
    Some(WebhookReply {
        status: 200,
        content_type: "text/plain",
        body: challenge.to_owned(),
    })
}

/// Turns a verified delivery into events: `app_mention` becomes a chat trigger,
/// other deliveries are acknowledged without events.
pub fn normalize(delivery: &VerifiedDelivery) -> Result<WebhookOutcome> {
    let body = match parse_body(delivery.request())? {
        Body::Json(body) => body,
        Body::Form(_) => return Ok(WebhookOutcome::default()),
    };
    if let Some(reply) = challenge_reply(&body) {
        return Ok(WebhookOutcome {
            events: Vec::new(),
            reply: Some(reply),
        });
    }
    if body.get("type").and_then(Value::as_str) != Some("event_callback") {
        return Ok(WebhookOutcome::default());
    }
    let Some(event) = body.get("event").and_then(Value::as_object) else {
        return Err(Error::invalid_input(
            "event",
            "the Slack event_callback has no `event` object",
        )
        .with_connector(CONNECTOR_ID));
    };
    if text(event, "type").as_deref() != Some("app_mention") {
        return Ok(WebhookOutcome::default());
    }
    Ok(WebhookOutcome {
        events: vec![mention(&body, event)?],
        reply: None,
    })
}

fn mention(body: &Value, event: &Map<String, Value>) -> Result<NormalizedAlert> {
    let channel = text(event, "channel");
    let ts = text(event, "ts").or_else(|| text(event, "event_ts"));
    let thread_ts = text(event, "thread_ts");
    let team_id = team_of(body);
    let event_id = body.get("event_id").and_then(non_empty);
    let Some(dedup_key) = event_id.clone().or_else(|| {
        // Without `event_id` (not sent by Slack today), the message identity is the next best key.
        Some(format!("{}:{}", channel.as_deref()?, ts.as_deref()?))
    }) else {
        return Err(Error::invalid_input(
            "event_id",
            "the Slack app_mention has neither `event_id` nor `channel` and `ts`",
        )
        .with_connector(CONNECTOR_ID));
    };
    let text_value = text(event, "text").unwrap_or_default();
    let title = match text_value.trim() {
        "" => "Slack mention".to_owned(),
        trimmed => trimmed.to_owned(),
    };
    let external_id = match (&channel, thread_ts.as_ref().or(ts.as_ref())) {
        (Some(channel), Some(ts)) => format!("{channel}:{ts}"),
        _ => dedup_key.clone(),
    };
    let mut labels = BTreeMap::new();
    let label_values = [
        ("channel", channel),
        ("user", text(event, "user")),
        ("ts", ts.clone()),
        ("thread_ts", thread_ts),
        ("team_id", team_id),
        ("event_id", event_id),
    ];
    for (key, value) in label_values {
        if let Some(value) = value {
            labels.insert(key.to_owned(), value);
        }
    }
    Ok(NormalizedAlert {
        source: CONNECTOR_ID.to_owned(),
        kind: EventKind::ChatTrigger,
        external_id,
        dedup_key,
        title,
        status: AlertStatus::Firing,
        severity: AlertSeverity::Unknown,
        service: None,
        started_at: ts.as_deref().and_then(ts_time),
        ended_at: None,
        url: None,
        labels,
        tags: Vec::new(),
        raw: body.clone(),
    })
}

/// A Slack `ts` (`1515449522.000016`) as a time.
fn ts_time(ts: &str) -> Option<DateTime<Utc>> {
    let (seconds, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    let seconds = seconds.parse::<i64>().ok()?;
    let micros = format!("{fraction:0<6}").get(..6)?.parse::<u32>().ok()?;
    DateTime::from_timestamp(seconds, micros * 1000)
}

fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    fields.get(key).and_then(non_empty)
}

fn non_empty(value: &Value) -> Option<String> {
    value
        .as_str()
        .map(str::trim)
        .filter(|text| !text.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ts_time_reads_seconds_and_microseconds() {
        let time = ts_time("1515449522.000016").unwrap();
        assert_eq!(time.timestamp(), 1_515_449_522);
        assert_eq!(time.timestamp_subsec_micros(), 16);
        assert_eq!(ts_time("1515449522").unwrap().timestamp(), 1_515_449_522);
        assert!(ts_time("soon").is_none());
    }
}
