//! Verifying Grafana contact-point deliveries and normalising them into alerts.
//!
//! A connection authenticates deliveries one of two ways, chosen at connect time
//! (`webhook_auth`), both keyed with the connection's webhook secret, which the
//! host generates and shows once:
//!
//! - **HMAC** (Grafana 12.0+ `hmacConfig`): the signature header (default
//!   `X-Grafana-Alerting-Signature`) holds the bare lowercase hex HMAC-SHA256 of
//!   the raw body, or of `<timestamp>:<body>` when the contact point sets a
//!   timestamp header, whose Unix-seconds value must then be within 300 seconds.
//! - **Bearer**: `Authorization: Bearer <webhook secret>` (the contact point's
//!   Authorization header settings).
//!
//! Both compare in constant time. [`normalize`] makes one alert per `alerts[]`
//! element; an empty `alerts[]` is a test delivery, answered and not stored.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Utc};
use hmac::{Hmac, Mac};
use patchbay_core::{
    AlertSeverity, AlertStatus, Error, ErrorKind, EventKind, NormalizedAlert, Result, SecretString,
    UnverifiedDelivery, VerifiedDelivery, WebhookOutcome, WebhookReply,
};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{GrafanaConfig, WebhookAuthMode};
use crate::CONNECTOR_ID;

/// How far a signed timestamp may be from now, in seconds.
pub const TIMESTAMP_WINDOW_SECS: i64 = 300;

const HMAC_HINT: &str = "in the Grafana contact point, set the HMAC secret to the one shown when \
     the connection was created and the header names to those of the connection";
const BEARER_HINT: &str = "in the Grafana contact point, set the Authorization header scheme to \
     Bearer and its credentials to the secret shown when the connection was created";

/// Lowercase hex HMAC-SHA256 of `body` (or of `timestamp:body`) under `secret`, as
/// Grafana writes it in the signature header: no `sha256=` prefix.
pub fn sign(secret: &[u8], timestamp: Option<&str>, body: &[u8]) -> String {
    hex::encode(mac(secret, timestamp, body))
}

fn mac(secret: &[u8], timestamp: Option<&str>, body: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
    if let Some(timestamp) = timestamp {
        mac.update(timestamp.as_bytes());
        mac.update(b":");
    }
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Vouches for a delivery authenticated as the connection's settings say;
/// every refusal is `auth_failed`.
pub fn verify(
    config: Option<&GrafanaConfig>,
    secret: Option<&SecretString>,
    delivery: UnverifiedDelivery,
    now: DateTime<Utc>,
) -> Result<VerifiedDelivery> {
    let (Some(config), Some(secret)) = (config, secret.filter(|secret| !secret.is_empty())) else {
        return Err(rejected(
            "this Grafana connection has no webhook secret, so deliveries cannot be verified",
            HMAC_HINT,
        ));
    };
    match config.webhook_auth {
        WebhookAuthMode::Hmac => verify_hmac(config, secret, delivery, now),
        WebhookAuthMode::Bearer => verify_bearer(secret, delivery),
    }
}

fn rejected(message: &str, hint: &str) -> Error {
    Error::new(ErrorKind::AuthFailed, message)
        .with_connector(CONNECTOR_ID)
        .with_hint(hint)
}

fn verify_hmac(
    config: &GrafanaConfig,
    secret: &SecretString,
    delivery: UnverifiedDelivery,
    now: DateTime<Utc>,
) -> Result<VerifiedDelivery> {
    let header = config.signature_header.as_str();
    let Some(given) = delivery.header(header) else {
        return Err(rejected(
            &format!("the delivery has no {header} header"),
            HMAC_HINT,
        ));
    };
    let Ok(given) = hex::decode(given.trim()) else {
        return Err(rejected(
            &format!("{header} is not a hex HMAC-SHA256 signature"),
            HMAC_HINT,
        ));
    };
    let timestamp = match config.timestamp_header.as_deref() {
        None => None,
        Some(timestamp_header) => {
            let Some(timestamp) = delivery.header(timestamp_header).map(str::trim) else {
                return Err(rejected(
                    &format!("the delivery has no {timestamp_header} header"),
                    HMAC_HINT,
                ));
            };
            let Ok(seconds) = timestamp.parse::<i64>() else {
                return Err(rejected(
                    &format!("{timestamp_header} is not a Unix time in seconds"),
                    HMAC_HINT,
                ));
            };
            if (now.timestamp() - seconds).abs() > TIMESTAMP_WINDOW_SECS {
                return Err(rejected(
                    &format!(
                        "{timestamp_header} is more than {TIMESTAMP_WINDOW_SECS} seconds from now"
                    ),
                    "check the Grafana server's clock; replayed deliveries are refused",
                ));
            }
            Some(timestamp.to_owned())
        }
    };
    let expected = mac(
        secret.expose().as_bytes(),
        timestamp.as_deref(),
        delivery.body(),
    );
    if bool::from(expected.as_slice().ct_eq(given.as_slice())) {
        Ok(delivery.mark_verified())
    } else {
        Err(rejected(
            &format!("{header} does not match the body and the webhook secret"),
            HMAC_HINT,
        ))
    }
}

fn verify_bearer(secret: &SecretString, delivery: UnverifiedDelivery) -> Result<VerifiedDelivery> {
    let Some(value) = delivery.header("authorization") else {
        return Err(rejected(
            "the delivery has no Authorization header",
            BEARER_HINT,
        ));
    };
    let value = value.trim();
    let presented = match value.split_once(' ') {
        Some((scheme, credentials)) if scheme.eq_ignore_ascii_case("bearer") => credentials.trim(),
        _ => {
            return Err(rejected(
                "the Authorization header is not of the form `Bearer <credentials>`",
                BEARER_HINT,
            ))
        }
    };
    // Comparing digests keeps the comparison constant-time whatever the lengths.
    let expected = Sha256::digest(secret.expose().as_bytes());
    let presented = Sha256::digest(presented.as_bytes());
    if bool::from(expected.as_slice().ct_eq(presented.as_slice())) {
        Ok(delivery.mark_verified())
    } else {
        Err(rejected(
            "the Authorization credentials do not match the webhook secret",
            BEARER_HINT,
        ))
    }
}

/// What a test delivery (an empty `alerts[]`) is answered with.
pub const TEST_REPLY: &str = r#"{"received":true,"test":true,"stored":0}"#;

/// Normalises a verified delivery: one alert per `alerts[]` element, or a reply
/// without events for a test delivery.
pub fn normalize(delivery: &VerifiedDelivery) -> Result<WebhookOutcome> {
    let payload: Value = serde_json::from_slice(delivery.body()).map_err(|error| {
        Error::invalid_input("body", format!("the delivery is not JSON: {error}"))
            .with_connector(CONNECTOR_ID)
    })?;
    let Some(envelope) = payload.as_object() else {
        return Err(shape_error("the delivery is not a JSON object"));
    };
    let Some(alerts) = envelope.get("alerts").and_then(Value::as_array) else {
        return Err(shape_error(
            "the delivery has no `alerts` list (a custom payload template may have replaced \
             Grafana's default body)",
        ));
    };
    if alerts.is_empty() {
        return Ok(WebhookOutcome {
            events: Vec::new(),
            reply: Some(WebhookReply {
                status: 200,
                content_type: "application/json",
                body: TEST_REPLY.to_owned(),
            }),
        });
    }
    let mut rest = envelope.clone();
    rest.remove("alerts");
    let rest = Value::Object(rest);
    let events = alerts
        .iter()
        .enumerate()
        .map(|(index, alert)| normalize_alert(index, alert, &rest))
        .collect::<Result<Vec<_>>>()?;
    Ok(WebhookOutcome {
        events,
        reply: None,
    })
}

fn shape_error(message: &str) -> Error {
    Error::invalid_input("body", message)
        .with_connector(CONNECTOR_ID)
        .with_hint("use Grafana's default webhook payload (no custom payload template)")
}

fn text<'v>(value: &'v Value, key: &str) -> Option<&'v str> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|text| !text.is_empty())
}

/// A time Grafana sends, unless it is the zero time (`0001-01-01T00:00:00Z`)
/// Grafana uses for "not set".
fn time(value: &Value, key: &str) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(text(value, key)?).ok()?;
    (parsed.year() > 1).then(|| parsed.with_timezone(&Utc))
}

/// The dedup key of one alert at one transition: Grafana sends no delivery id and
/// re-sends an unchanged alert on every repeat interval, so the key covers what
/// identifies the transition (fingerprint, status, start and end), not receive time.
pub fn dedup_key(fingerprint: &str, status: &str, starts_at: &str, ends_at: &str) -> String {
    let mut hash = Sha256::new();
    for part in [fingerprint, status, starts_at, ends_at] {
        hash.update(escape_separator(part.as_bytes()));
        hash.update([SEPARATOR]);
    }
    format!("grafana:{}", hex::encode(hash.finalize()))
}

/// What ends each part of a dedup key's input.
const SEPARATOR: u8 = 0;
/// What precedes a separator or escape byte inside a part.
const ESCAPE: u8 = 1;

/// `part` with every separator and escape byte in it preceded by an escape byte,
/// so that where one part ends is never in doubt and no two lists of parts hash
/// the same input. Parts holding neither byte, as Grafana's fingerprints and times
/// do, are left as they are, so their keys are those stored before.
fn escape_separator(part: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if !part.iter().any(|byte| matches!(*byte, SEPARATOR | ESCAPE)) {
        return std::borrow::Cow::Borrowed(part);
    }
    let mut escaped = Vec::with_capacity(part.len() + 4);
    for byte in part {
        if matches!(*byte, SEPARATOR | ESCAPE) {
            escaped.push(ESCAPE);
        }
        escaped.push(*byte);
    }
    std::borrow::Cow::Owned(escaped)
}

fn normalize_alert(index: usize, alert: &Value, envelope: &Value) -> Result<NormalizedAlert> {
    let missing = |key: &str| {
        shape_error(&format!(
            "alerts[{index}] has no `{key}` (a custom payload template may have dropped it)"
        ))
    };
    let fingerprint = text(alert, "fingerprint").ok_or_else(|| missing("fingerprint"))?;
    let status_text = text(alert, "status").ok_or_else(|| missing("status"))?;
    let status = match status_text {
        "firing" => AlertStatus::Firing,
        "resolved" => AlertStatus::Resolved,
        other => {
            return Err(shape_error(&format!(
                "alerts[{index}].status is `{other}`, not `firing` or `resolved`"
            )))
        }
    };
    let labels_in = alert.get("labels").and_then(Value::as_object);
    let annotations = alert.get("annotations").and_then(Value::as_object);
    let label = |key: &str| {
        labels_in
            .and_then(|labels| labels.get(key))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let title = label("alertname")
        .or_else(|| {
            annotations
                .and_then(|annotations| annotations.get("summary"))
                .and_then(Value::as_str)
                .filter(|text| !text.trim().is_empty())
        })
        .map(str::to_owned)
        .unwrap_or_else(|| format!("Grafana alert {fingerprint}"));
    let severity = match label("severity").map(str::to_ascii_lowercase).as_deref() {
        Some("critical") => AlertSeverity::Critical,
        Some("high") => AlertSeverity::High,
        Some("medium" | "warning") => AlertSeverity::Medium,
        Some("low" | "info") => AlertSeverity::Low,
        _ => AlertSeverity::Unknown,
    };
    let service = label("service").or_else(|| label("job")).map(str::to_owned);

    let mut labels = BTreeMap::new();
    add_all(&mut labels, "", labels_in);
    add_all(&mut labels, "annotation.", annotations);
    add_all(
        &mut labels,
        "value.",
        alert.get("values").and_then(Value::as_object),
    );
    for (key, name) in [
        ("panelURL", "panel_url"),
        ("dashboardURL", "dashboard_url"),
        ("silenceURL", "silence_url"),
    ] {
        if let Some(url) = text(alert, key) {
            labels.insert(name.to_owned(), url.to_owned());
        }
    }

    let key_part = |key: &str| text(alert, key).unwrap_or_default();
    Ok(NormalizedAlert {
        source: CONNECTOR_ID.to_owned(),
        kind: EventKind::Alert,
        external_id: fingerprint.to_owned(),
        dedup_key: dedup_key(
            fingerprint,
            status_text,
            key_part("startsAt"),
            key_part("endsAt"),
        ),
        title,
        status,
        severity,
        service,
        started_at: time(alert, "startsAt"),
        ended_at: time(alert, "endsAt"),
        url: text(alert, "generatorURL").map(str::to_owned),
        labels,
        tags: Vec::new(),
        raw: json!({ "alert": alert, "envelope": envelope }),
    })
}

/// Adds string forms of `values` under `prefix`.
fn add_all(
    labels: &mut BTreeMap<String, String>,
    prefix: &str,
    values: Option<&Map<String, Value>>,
) {
    for (key, value) in values.into_iter().flatten() {
        let value = match value {
            Value::String(text) => text.clone(),
            Value::Null => continue,
            other => other.to_string(),
        };
        labels.insert(format!("{prefix}{key}"), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nul_moved_between_parts_makes_another_key() {
        // Once hashed as the same bytes: a NUL inside a part looked like the end of it.
        assert_ne!(
            dedup_key("fp", "firing", "2024-05-01T10:00:00Z\0", ""),
            dedup_key("fp", "firing", "2024-05-01T10:00:00Z", "\0"),
        );
        assert_ne!(dedup_key("\0", "", "", ""), dedup_key("", "\0", "", ""));
        assert_ne!(
            dedup_key("a\u{1}", "", "", ""),
            dedup_key("a", "\u{1}", "", "")
        );
    }

    #[test]
    fn keys_of_what_grafana_sends_are_those_stored_before() {
        // A hex fingerprint and RFC 3339 times: the key alerts already stored carry.
        assert_eq!(
            dedup_key(
                "3b8c5f1e9a2d4c70",
                "firing",
                "2024-05-01T10:00:00Z",
                "0001-01-01T00:00:00Z"
            ),
            "grafana:bc40d615767e038516d301c377ab6bdcead33da6add262d2a6e84053ad7e0cd9"
        );
    }
}
