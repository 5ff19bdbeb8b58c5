//! Normalising Netdata Cloud webhook deliveries into the common alert model.
//!
//! Deliveries are not signed: Netdata's webhook integration sends the
//! connection's token as `Authorization: Bearer <token>`, the host checks it
//! against the stored hash, and only a [`VerifiedDelivery`] reaches this module.
//!
//! Two payload shapes are read. Version 1 is flat (`alarm`, `status`, `chart`,
//! `host`, `value`, `alert_url`, `when`, `space`); version 2 nests the same facts
//! (`alert.name`, `alert.state.status`, `alert.chart.name`, `node.hostname`,
//! `alert.state.value`, `alert.url`, `alarm.when`, `space.name`). A delivery
//! whose `alert` is an object is version 2.
//!
//! `external_id` hashes (space, host, chart, alert name), so the firing and the
//! clearing of one alert share it; `dedup_key` hashes (external_id, status,
//! `when`): a redelivery of one transition is stored once, and nothing of the
//! receiving side (such as the time it arrived) goes into either.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use patchbay_core::{
    AlertSeverity, AlertStatus, Error, EventKind, NormalizedAlert, Result, VerifiedDelivery,
    WebhookOutcome, WebhookReply,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::CONNECTOR_ID;

/// The facts of one delivery, read from either payload version.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    /// 1 (flat) or 2 (nested).
    pub version: u8,
    /// The alert's name (`alarm` / `alert.name`).
    pub name: Option<String>,
    /// The status as sent (`status` / `alert.state.status`).
    pub status: Option<String>,
    /// The chart (`chart` / `alert.chart.name`).
    pub chart: Option<String>,
    /// The node's host name (`host` / `node.hostname`).
    pub host: Option<String>,
    /// The value at the transition, as text (`value` / `alert.state.value`).
    pub value: Option<String>,
    /// The alert's page in Netdata Cloud (`alert_url` / `alert.url`).
    pub url: Option<String>,
    /// The transition time as sent (`when` / `alarm.when`).
    pub when: Option<Value>,
    /// The space's name (`space` / `space.name`).
    pub space: Option<String>,
}

/// A string at `path` in `body`, trimmed; numbers are written out.
fn text_at(body: &Value, path: &[&str]) -> Option<String> {
    let value = path.iter().try_fold(body, |value, key| value.get(*key))?;
    scalar_text(value)
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.trim().to_owned()).filter(|text| !text.is_empty()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// The space's name: a string, or an object's `name` (then `slug`, `id`).
fn space_of(value: Option<&Value>) -> Option<String> {
    let value = value?;
    if value.is_object() {
        text_at(value, &["name"])
            .or_else(|| text_at(value, &["slug"]))
            .or_else(|| text_at(value, &["id"]))
    } else {
        scalar_text(value)
    }
}

impl Fields {
    /// Reads the facts of a delivery body of either version.
    pub fn read(body: &Value) -> Self {
        if body.get("alert").is_some_and(Value::is_object) {
            Self {
                version: 2,
                name: text_at(body, &["alert", "name"]),
                status: text_at(body, &["alert", "state", "status"]),
                chart: text_at(body, &["alert", "chart", "name"]),
                host: text_at(body, &["node", "hostname"]),
                value: text_at(body, &["alert", "state", "value"]),
                url: text_at(body, &["alert", "url"]),
                when: body
                    .get("alarm")
                    .and_then(|alarm| alarm.get("when"))
                    .cloned(),
                space: space_of(body.get("space")),
            }
        } else {
            Self {
                version: 1,
                name: text_at(body, &["alarm"]),
                status: text_at(body, &["status"]),
                chart: text_at(body, &["chart"]),
                host: text_at(body, &["host"]),
                value: text_at(body, &["value"]),
                url: text_at(body, &["alert_url"]),
                when: body.get("when").cloned(),
                space: space_of(body.get("space")),
            }
        }
    }

    /// The transition time: Unix seconds (a number or digits) or an RFC 3339 text.
    pub fn when_time(&self) -> Option<DateTime<Utc>> {
        match self.when.as_ref()? {
            Value::Number(number) => number
                .as_i64()
                .or_else(|| number.as_f64().map(|seconds| seconds as i64))
                .and_then(|seconds| DateTime::from_timestamp(seconds, 0)),
            Value::String(text) => {
                let text = text.trim();
                match text.parse::<i64>() {
                    Ok(seconds) => DateTime::from_timestamp(seconds, 0),
                    Err(_) => DateTime::parse_from_rfc3339(text)
                        .ok()
                        .map(|at| at.with_timezone(&Utc)),
                }
            }
            _ => None,
        }
    }

    /// `when` as the dedup key uses it: the time in Unix seconds when it reads as
    /// one, else its text as sent, else empty.
    fn when_key(&self) -> String {
        match (self.when_time(), self.when.as_ref()) {
            (Some(at), _) => at.timestamp().to_string(),
            (None, Some(value)) => scalar_text(value).unwrap_or_default(),
            (None, None) => String::new(),
        }
    }
}

/// SHA-256 (hex) of `parts` written as a JSON array, so no separator can be forged.
fn digest(parts: &[&str]) -> String {
    let encoded = serde_json::to_vec(parts).unwrap_or_default();
    hex::encode(Sha256::digest(&encoded))
}

/// The field names of a payload version, for messages.
fn field_name(version: u8, flat: &'static str, nested: &'static str) -> &'static str {
    if version == 2 {
        nested
    } else {
        flat
    }
}

/// The reply to a `test` delivery: acknowledged, nothing stored.
pub fn test_reply() -> WebhookReply {
    WebhookReply {
        status: 200,
        content_type: "application/json",
        body: json!({"received": true, "test": true, "stored": false}).to_string(),
    }
}

/// The reply to a delivery whose status is no alert transition (`undefined`,
/// `uninitialized`, `removed`): acknowledged, nothing stored.
fn ignored_reply(status: &str) -> WebhookReply {
    WebhookReply {
        status: 202,
        content_type: "application/json",
        body: json!({
            "accepted": 0,
            "duplicates": 0,
            "ignored": format!("status `{status}` is not an alert transition"),
        })
        .to_string(),
    }
}

/// Normalises one verified delivery: one alert for a `critical`, `warning` or
/// `clear` transition; a `test` delivery is answered and dropped.
pub fn normalize(delivery: &VerifiedDelivery) -> Result<WebhookOutcome> {
    let raw: Value = serde_json::from_slice(delivery.body()).map_err(|error| {
        Error::invalid_input("body", format!("the delivery is not JSON: {error}"))
            .with_connector(CONNECTOR_ID)
    })?;
    if !raw.is_object() {
        return Err(
            Error::invalid_input("body", "the delivery is not a JSON object")
                .with_connector(CONNECTOR_ID),
        );
    }
    let fields = Fields::read(&raw);
    let version = fields.version;
    let missing = |flat: &'static str, nested: &'static str| {
        let field = field_name(version, flat, nested);
        Error::invalid_input(
            field,
            format!("the Netdata delivery (payload version {version}) has no `{field}`"),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint("send Netdata's webhook payload unchanged (version 1 flat or version 2 nested)")
    };
    let status_text = fields
        .status
        .clone()
        .ok_or_else(|| missing("status", "alert.state.status"))?;
    let status_key = status_text.to_ascii_lowercase();
    let (status, severity) = match status_key.as_str() {
        "test" => {
            return Ok(WebhookOutcome {
                events: Vec::new(),
                reply: Some(test_reply()),
            })
        }
        "critical" => (AlertStatus::Firing, AlertSeverity::Critical),
        "warning" => (AlertStatus::Firing, AlertSeverity::High),
        "clear" => (AlertStatus::Resolved, AlertSeverity::Unknown),
        _ => {
            return Ok(WebhookOutcome {
                events: Vec::new(),
                reply: Some(ignored_reply(&status_text)),
            })
        }
    };
    let name = fields
        .name
        .clone()
        .ok_or_else(|| missing("alarm", "alert.name"))?;
    let space = fields.space.clone().unwrap_or_default();
    let host = fields.host.clone().unwrap_or_default();
    let chart = fields.chart.clone().unwrap_or_default();
    let external_id = digest(&[&space, &host, &chart, &name]);
    let dedup_key = digest(&[&external_id, &status_key, &fields.when_key()]);
    let when = fields.when_time();

    let mut labels = BTreeMap::new();
    for (key, value) in [
        ("chart", &fields.chart),
        ("host", &fields.host),
        ("space", &fields.space),
        ("value", &fields.value),
    ] {
        if let Some(value) = value {
            labels.insert(key.to_owned(), value.clone());
        }
    }
    let alert = NormalizedAlert {
        source: CONNECTOR_ID.to_owned(),
        kind: EventKind::Alert,
        external_id,
        dedup_key,
        title: name,
        status,
        severity,
        service: fields.host,
        started_at: when,
        ended_at: when.filter(|_| status == AlertStatus::Resolved),
        url: fields.url,
        labels,
        tags: Vec::new(),
        raw,
    };
    Ok(WebhookOutcome {
        events: vec![alert],
        reply: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_versions_read_the_same_facts() {
        let flat = Fields::read(&json!({
            "alarm": "disk_space_usage", "status": "WARNING", "chart": "disk_space._",
            "host": "db-1", "value": 91.5, "alert_url": "https://app.netdata.cloud/a",
            "when": 1714564800, "space": "Ops",
        }));
        let nested = Fields::read(&json!({
            "alert": {"name": "disk_space_usage", "url": "https://app.netdata.cloud/a",
                      "state": {"status": "WARNING", "value": 91.5},
                      "chart": {"name": "disk_space._"}},
            "node": {"hostname": "db-1"},
            "alarm": {"when": 1714564800},
            "space": {"name": "Ops"},
        }));
        assert_eq!(flat.version, 1);
        assert_eq!(nested.version, 2);
        assert_eq!(
            Fields {
                version: 2,
                ..flat.clone()
            },
            nested
        );
        assert_eq!(flat.value.as_deref(), Some("91.5"));
        assert_eq!(
            flat.when_time().unwrap().to_rfc3339(),
            "2024-05-01T12:00:00+00:00"
        );
    }

    #[test]
    fn when_reads_seconds_digits_and_rfc3339_alike() {
        for when in [
            json!(1714564800),
            json!("1714564800"),
            json!("2024-05-01T12:00:00Z"),
            json!(1714564800.0),
        ] {
            let fields = Fields::read(&json!({"alarm": "a", "status": "clear", "when": when}));
            assert_eq!(fields.when_key(), "1714564800", "{when}");
        }
    }

    #[test]
    fn digests_cannot_be_forged_by_moving_separators() {
        assert_ne!(digest(&["a|b", "c"]), digest(&["a", "b|c"]));
        assert_eq!(digest(&["a", "b"]).len(), 64);
    }
}
