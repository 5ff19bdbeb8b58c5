//! Normalising Netdata webhook deliveries into the common alert model.
//!
//! Deliveries are not signed: Netdata sends the connection's token in
//! `X-Patchbay-Token`, the host checks it, and only a [`VerifiedDelivery`] is
//! normalised.
//!
//! The payload (`id`, `alert_id`, `title`, `status`, `severity`, `service`,
//! `occurred_at`, `url`) is a placeholder for Netdata's own: `id` identifies a
//! delivery (redeliveries repeat it), `alert_id` is shared by the firing and
//! resolved deliveries of one alert.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use patchbay_core::{
    AlertSeverity, AlertStatus, Error, EventKind, NormalizedAlert, Result, VerifiedDelivery,
};
use serde::Deserialize;
use serde_json::Value;

use crate::CONNECTOR_ID;

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
            format!("the delivery is not a webhook payload of Netdata: {error}"),
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
