//! Verifying and normalising PagerDuty Generic Webhooks (v3).
//!
//! PagerDuty signs each delivery with the subscription's secret, which it issues
//! and shows when the subscription is created: `X-PagerDuty-Signature` is a
//! comma-separated list of `v1=<lowercase hex HMAC-SHA256(secret, raw body)>`,
//! with several entries while a secret is being rotated. [`verify`] accepts a
//! delivery when any `v1` entry matches any of the connection's secrets (compared
//! in constant time), ignores other versions, and uses each secret as given (it is
//! not base64-decoded). [`normalize`] maps incident events as the provider table
//! says and acknowledges other events without storing them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use patchbay_core::{
    AlertSeverity, AlertStatus, Error, ErrorKind, EventKind, NormalizedAlert,
    ProviderWebhookSecret, Result, UnverifiedDelivery, VerifiedDelivery,
};
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::CONNECTOR_ID;

/// The header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "X-PagerDuty-Signature";
/// The header naming a delivery; retries repeat it, so it is the dedup key.
pub const WEBHOOK_ID_HEADER: &str = "X-Webhook-Id";

const SIGNATURE_HINT: &str = "add the subscription's signing secret to the connection \
     (POST /api/connections/{id}/webhook/secrets) and send the body unchanged";

/// `v1=<lowercase hex>` of HMAC-SHA256(`secret`, `body`), as PagerDuty signs.
pub fn sign(secret: &str, body: &[u8]) -> String {
    let mut mac = hmac_for(secret.as_bytes());
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn hmac_for(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// The `v1` digests of a signature header; entries of other versions and
/// malformed ones are skipped.
fn v1_digests(header: &str) -> Vec<Vec<u8>> {
    header
        .split(',')
        .filter_map(|entry| entry.trim().strip_prefix("v1="))
        .filter_map(|digest| hex::decode(digest.trim()).ok())
        .filter(|digest| digest.len() == 32)
        .collect()
}

/// Vouches for a delivery when any `v1` signature matches any of `secrets`; every
/// refusal is `auth_failed`, and none says which secret or entry came close.
pub fn verify(
    secrets: &[ProviderWebhookSecret],
    delivery: UnverifiedDelivery,
) -> Result<VerifiedDelivery> {
    let rejected = |message: &str| {
        Error::new(ErrorKind::AuthFailed, message)
            .with_connector(CONNECTOR_ID)
            .with_hint(SIGNATURE_HINT)
    };
    if secrets.is_empty() {
        return Err(rejected(
            "this PagerDuty connection has no webhook signing secret, so deliveries cannot be verified",
        ));
    }
    let Some(header) = delivery.header(SIGNATURE_HEADER) else {
        return Err(rejected("the delivery has no X-PagerDuty-Signature header"));
    };
    if delivery.body().is_empty() {
        return Err(rejected("the delivery has an empty body"));
    }
    let given = v1_digests(header);
    if given.is_empty() {
        return Err(rejected(
            "X-PagerDuty-Signature has no v1=<hex digest> entry",
        ));
    }
    let mut matched = false;
    for secret in secrets.iter().filter(|secret| !secret.secret.is_empty()) {
        let mut mac = hmac_for(secret.secret.expose().as_bytes());
        mac.update(delivery.body());
        let expected = mac.finalize().into_bytes();
        for digest in &given {
            // Every pair is compared, so the time taken does not say which matched.
            matched |= bool::from(expected.as_slice().ct_eq(digest.as_slice()));
        }
    }
    if matched {
        Ok(delivery.mark_verified())
    } else {
        Err(rejected(
            "no X-PagerDuty-Signature entry matches the body under the connection's signing secrets",
        ))
    }
}

fn malformed(message: &str) -> Error {
    Error::invalid_input("body", message)
        .with_connector(CONNECTOR_ID)
        .with_hint("PagerDuty Generic Webhooks (v3) send {\"event\": {\"event_type\", \"resource_type\", \"data\", ...}}")
}

fn text<'v>(value: &'v Value, pointer: &str) -> Option<&'v str> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
}

/// A number or a string, as text (`number` is a number, `conference_number` is
/// either, depending on where PagerDuty documents it).
fn lenient_text(value: &Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The summaries of a list of references, comma-separated.
fn summaries(value: &Value, pointer: &str) -> Option<String> {
    let list: Vec<&str> = value
        .pointer(pointer)?
        .as_array()?
        .iter()
        .filter_map(|item| text(item, "/summary"))
        .collect();
    (!list.is_empty()).then(|| list.join(","))
}

/// Severity from `priority.summary` (P1 critical, P2 high, P3 medium, P4 and P5
/// low), otherwise from urgency (high, low), otherwise unknown.
pub fn severity(data: &Value) -> AlertSeverity {
    match text(data, "/priority/summary")
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        Some("P1") => return AlertSeverity::Critical,
        Some("P2") => return AlertSeverity::High,
        Some("P3") => return AlertSeverity::Medium,
        Some("P4" | "P5") => return AlertSeverity::Low,
        _ => {}
    }
    match text(data, "/urgency") {
        Some("high") => AlertSeverity::High,
        Some("low") => AlertSeverity::Low,
        _ => AlertSeverity::Unknown,
    }
}

/// Normalises a verified delivery: one alert for an incident event, none for other
/// resources (acknowledged and dropped). Malformed payloads are `invalid_input`
/// with the reference system's messages.
pub fn normalize(delivery: &VerifiedDelivery) -> Result<Vec<NormalizedAlert>> {
    let raw: Value = serde_json::from_slice(delivery.body())
        .map_err(|error| malformed(&format!("the delivery is not JSON: {error}")))?;
    if !raw.is_object() {
        return Err(malformed("Payload must be a JSON object"));
    }
    let Some(event) = raw.get("event").filter(|event| event.is_object()) else {
        return Err(malformed("Missing 'event' field in V3 webhook"));
    };
    let Some(event_type) = text(event, "/event_type") else {
        return Err(malformed("Missing 'event_type' in event"));
    };
    let Some(resource_type) = text(event, "/resource_type") else {
        return Err(malformed("Missing 'resource_type' in event"));
    };
    let data = event.get("data").cloned().unwrap_or(Value::Null);
    let is_incident =
        resource_type == "incident" && text(&data, "/type").is_none_or(|kind| kind == "incident");
    if !is_incident {
        tracing::debug!(
            event_type,
            resource_type,
            "PagerDuty event that is not about an incident; acknowledged and dropped"
        );
        return Ok(Vec::new());
    }
    let Some(incident_id) = text(&data, "/id") else {
        return Err(malformed("the incident event has no data.id"));
    };
    let dedup_key = delivery
        .header(WEBHOOK_ID_HEADER)
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .or_else(|| text(event, "/id").map(str::to_owned))
        .ok_or_else(|| malformed("the delivery has neither an X-Webhook-Id header nor event.id"))?;
    let raw_status = text(&data, "/status");
    let resolved = event_type == "incident.resolved" || raw_status == Some("resolved");
    let status = if resolved {
        AlertStatus::Resolved
    } else {
        AlertStatus::Firing
    };
    let time = |pointer: &str| {
        text(&data, pointer)
            .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
            .map(|time| time.with_timezone(&Utc))
    };
    let occurred_at = text(event, "/occurred_at")
        .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
        .map(|time| time.with_timezone(&Utc));
    let number = lenient_text(&data, "/number");
    let mut labels = BTreeMap::new();
    let mut label = |key: &str, value: Option<String>| {
        if let Some(value) = value {
            labels.insert(key.to_owned(), value);
        }
    };
    label("incident_number", number.clone());
    label(
        "incident_key",
        text(&data, "/incident_key").map(str::to_owned),
    );
    label("urgency", text(&data, "/urgency").map(str::to_owned));
    label("service_id", text(&data, "/service/id").map(str::to_owned));
    label(
        "escalation_policy",
        text(&data, "/escalation_policy/summary").map(str::to_owned),
    );
    label("teams", summaries(&data, "/teams"));
    label("assignees", summaries(&data, "/assignees"));
    label("event_type", Some(event_type.to_owned()));
    label("status", raw_status.map(str::to_owned));
    let title = text(&data, "/title").map_or_else(
        || match &number {
            Some(number) => format!("PagerDuty incident #{number}"),
            None => format!("PagerDuty incident {incident_id}"),
        },
        str::to_owned,
    );
    Ok(vec![NormalizedAlert {
        source: CONNECTOR_ID.to_owned(),
        kind: EventKind::Alert,
        external_id: incident_id.to_owned(),
        dedup_key,
        title,
        status,
        severity: severity(&data),
        service: text(&data, "/service/summary").map(str::to_owned),
        started_at: time("/created_at"),
        ended_at: occurred_at.filter(|_| resolved),
        url: text(&data, "/html_url").map(str::to_owned),
        labels,
        tags: Vec::new(),
        raw,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn severity_reads_priority_summary_then_urgency() {
        assert_eq!(
            severity(&json!({"priority": {"summary": "P1"}, "urgency": "low"})),
            AlertSeverity::Critical
        );
        assert_eq!(
            severity(&json!({"priority": {"summary": "P2"}})),
            AlertSeverity::High
        );
        assert_eq!(
            severity(&json!({"priority": {"summary": "P3"}})),
            AlertSeverity::Medium
        );
        assert_eq!(
            severity(&json!({"priority": {"summary": "P4"}})),
            AlertSeverity::Low
        );
        assert_eq!(
            severity(&json!({"priority": {"summary": "P5"}})),
            AlertSeverity::Low
        );
        assert_eq!(
            severity(&json!({"priority": null, "urgency": "high"})),
            AlertSeverity::High
        );
        assert_eq!(
            severity(&json!({"priority": {"summary": "SEV-X"}, "urgency": "low"})),
            AlertSeverity::Low
        );
        assert_eq!(severity(&json!({})), AlertSeverity::Unknown);
    }

    #[test]
    fn signature_lists_keep_only_well_formed_v1_entries() {
        let digest = "0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd";
        assert_eq!(v1_digests(&format!("v2=abcd, v1=zz,v1={digest}")).len(), 1);
        assert!(v1_digests("sha256=00").is_empty());
    }
}
