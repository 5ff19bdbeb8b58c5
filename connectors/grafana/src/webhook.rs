//! Verifying and normalising Grafana webhook deliveries into the common alert model.
//!
//! Every delivery must carry `X-Grafana-Signature: sha256=<hex>`, the HMAC-SHA256 of
//! the raw body under the connection's webhook secret (which the host generates and
//! shows once at connect time); [`verify`] checks it in constant time and
//! [`normalize`] reads only what it verified.
//!
//! The payload (`id`, `alert_id`, `title`, `status`, `severity`, `service`,
//! `occurred_at`, `url`) is a placeholder for Grafana's own: `id` identifies a
//! delivery (redeliveries repeat it), `alert_id` is shared by the firing and
//! resolved deliveries of one alert.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use patchbay_core::{
    AlertSeverity, AlertStatus, Error, ErrorKind, EventKind, NormalizedAlert, Result, SecretString,
    UnverifiedDelivery, VerifiedDelivery,
};
use serde::Deserialize;
use serde_json::Value;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::CONNECTOR_ID;

/// The header carrying the signature; a placeholder for the header Grafana signs with.
pub const SIGNATURE_HEADER: &str = "X-Grafana-Signature";

const SIGNATURE_HINT: &str = "set the webhook's secret in Grafana to the one shown when the \
     connection was created, and send the body unchanged";

/// `sha256=<lowercase hex>` of HMAC-SHA256(`secret`, `body`), as deliveries carry it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac_for(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn hmac_for(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// Vouches for a delivery whose signature matches the connection's webhook secret;
/// every refusal is `auth_failed`.
pub fn verify(
    secret: Option<&SecretString>,
    delivery: UnverifiedDelivery,
) -> Result<VerifiedDelivery> {
    let rejected = |message: &str| {
        Error::new(ErrorKind::AuthFailed, message)
            .with_connector(CONNECTOR_ID)
            .with_hint(SIGNATURE_HINT)
    };
    let Some(secret) = secret.filter(|secret| !secret.is_empty()) else {
        return Err(rejected(
            "this Grafana connection has no webhook secret, so deliveries cannot be verified",
        ));
    };
    let Some(header) = delivery.header(SIGNATURE_HEADER) else {
        return Err(rejected("the delivery has no X-Grafana-Signature header"));
    };
    let Some(given) = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|digest| hex::decode(digest).ok())
    else {
        return Err(rejected(
            "X-Grafana-Signature is not of the form sha256=<hex digest>",
        ));
    };
    let mut mac = hmac_for(secret.expose().as_bytes());
    mac.update(delivery.body());
    let expected = mac.finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(given.as_slice())) {
        Ok(delivery.mark_verified())
    } else {
        Err(rejected(
            "X-Grafana-Signature does not match the body and the webhook secret",
        ))
    }
}

/// One delivery, in the placeholder payload shape.
#[derive(Debug, Deserialize)]
struct Delivery {
    id: String,
    alert_id: String,
    title: String,
    status: DeliveryStatus,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default)]
    service: Option<String>,
    #[serde(default)]
    occurred_at: Option<DateTime<Utc>>,
    #[serde(default)]
    url: Option<String>,
}

/// Whether the alert fires or is over.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum DeliveryStatus {
    Firing,
    Resolved,
}

/// Normalises one verified delivery into an alert.
pub fn normalize(delivery: &VerifiedDelivery) -> Result<NormalizedAlert> {
    let raw: Value = serde_json::from_slice(delivery.body()).map_err(|error| {
        Error::invalid_input("body", format!("the delivery is not JSON: {error}"))
            .with_connector(CONNECTOR_ID)
    })?;
    let payload: Delivery = serde_json::from_value(raw.clone()).map_err(|error| {
        Error::invalid_input(
            "body",
            format!("the delivery is not a webhook payload of Grafana: {error}"),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint("send `id`, `alert_id`, `title` and `status` (`firing` or `resolved`)")
    })?;
    let status = match payload.status {
        DeliveryStatus::Firing => AlertStatus::Firing,
        DeliveryStatus::Resolved => AlertStatus::Resolved,
    };
    let severity = match payload.severity.as_deref() {
        Some("critical") => AlertSeverity::Critical,
        Some("high") => AlertSeverity::High,
        Some("medium") => AlertSeverity::Medium,
        Some("low") => AlertSeverity::Low,
        _ => AlertSeverity::Unknown,
    };
    let labels = BTreeMap::from([("alert_id".to_owned(), payload.alert_id.clone())]);
    Ok(NormalizedAlert {
        source: CONNECTOR_ID.to_owned(),
        kind: EventKind::Alert,
        external_id: payload.alert_id,
        dedup_key: payload.id,
        title: payload.title,
        status,
        severity,
        service: payload.service,
        started_at: payload
            .occurred_at
            .filter(|_| status == AlertStatus::Firing),
        ended_at: payload
            .occurred_at
            .filter(|_| status == AlertStatus::Resolved),
        url: payload.url,
        labels,
        tags: Vec::new(),
        raw,
    })
}
