//! The common alert model every alert source normalises into.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether an alert is firing or over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The condition holds.
    Firing,
    /// The condition cleared.
    Resolved,
}

/// How bad an alert is, on one scale for every provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertSeverity {
    /// Page someone now.
    Critical,
    /// Urgent.
    High,
    /// Needs attention.
    Medium,
    /// Informational.
    Low,
    /// The provider did not say.
    Unknown,
}

/// What kind of event a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A monitoring alert.
    #[default]
    Alert,
    /// A change (deploy, push, workflow run) useful for root-cause analysis.
    Change,
    /// A chat message asking the host to act.
    ChatTrigger,
}

/// One provider event in the common model, with its raw payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct NormalizedAlert {
    /// The connector id (`datadog`).
    pub source: String,
    /// What kind of event this is.
    #[serde(default)]
    pub kind: EventKind,
    /// Shared by the firing and resolved deliveries of one alert.
    pub external_id: String,
    /// Identifies one delivery or transition; built only from provider data.
    pub dedup_key: String,
    /// Short title.
    pub title: String,
    /// Firing or resolved.
    pub status: AlertStatus,
    /// Severity on the common scale.
    pub severity: AlertSeverity,
    /// The affected service (or host).
    pub service: Option<String>,
    /// When the alert started, per the provider.
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended, if resolved.
    pub ended_at: Option<DateTime<Utc>>,
    /// A link to the alert at the provider.
    pub url: Option<String>,
    /// Key/value labels (`monitor_id`, `priority`).
    pub labels: BTreeMap<String, String>,
    /// Provider tags as given.
    pub tags: Vec<String>,
    /// The payload as received.
    pub raw: serde_json::Value,
}

#[cfg(test)]
mod tests {
    #[test]
    fn raw_payload_numbers_read_back_exactly() {
        // Found by fuzzing the webhook targets: serde_json's default float parser
        // read these back one ulp away from what they were, so a stored alert's
        // `raw` changed on its way through the store.
        for text in ["1.5903822222222219e87", "1.7274477777777775e30"] {
            let exact: f64 = text.parse().unwrap();
            let parsed: serde_json::Value = serde_json::from_str(text).unwrap();
            assert_eq!(parsed.as_f64(), Some(exact), "{text}");
            let again: serde_json::Value = serde_json::from_str(&parsed.to_string()).unwrap();
            assert_eq!(again, parsed, "{text}");
        }
    }
}
