//! The names of Patchbay's metrics, recorded through the `metrics` facade, so the
//! crates that record them and the host that exports them agree on one list.
//!
//! Labels carry only connector ids, operation names, backends and fixed outcome
//! words: never a tenant, a secret, a URL or a query string.

/// Webhook deliveries, by `connector` and `outcome` (`accepted`, `duplicate`,
/// `replied`, `ignored`, `rejected_auth`, `rejected_input`, `rejected_unknown`,
/// `rejected_disabled`, `failed`).
pub const WEBHOOK_DELIVERIES: &str = "patchbay_webhook_deliveries_total";
/// Seconds from a webhook's arrival to its acknowledgement (after the durable
/// write), by `connector`.
pub const WEBHOOK_INGEST_SECONDS: &str = "patchbay_webhook_ingest_seconds";
/// Alerts written per group-commit transaction.
pub const ALERT_COMMIT_BATCH_SIZE: &str = "patchbay_alert_commit_batch_size";
/// Outbound provider requests, by `connector`, `operation` and `status_class`
/// (`2xx` … `5xx`, or `transport_error`).
pub const PROVIDER_REQUESTS: &str = "patchbay_provider_requests_total";
/// Seconds per outbound provider request, retries included, by `connector` and
/// `operation`.
pub const PROVIDER_REQUEST_SECONDS: &str = "patchbay_provider_request_seconds";
/// Retries of outbound provider requests, by `connector` and `reason`
/// (`rate_limited`, `server_error`, `transport`).
pub const PROVIDER_RETRIES: &str = "patchbay_provider_retries_total";
/// Seconds waited before retrying, by `connector` and `reason`; a `Retry-After`
/// from the provider sets the wait.
pub const PROVIDER_RETRY_WAIT_SECONDS: &str = "patchbay_provider_retry_wait_seconds";
/// OAuth token refreshes, by `connector` and `outcome` (`refreshed`, `revoked`,
/// `failed`).
pub const TOKEN_REFRESHES: &str = "patchbay_token_refreshes_total";
/// Record and secret store calls, by `backend`, `operation` and `outcome`
/// (`ok`, `error`).
pub const STORE_OPERATIONS: &str = "patchbay_store_operations_total";
/// Seconds per record or secret store call, by `backend` and `operation`.
pub const STORE_OPERATION_SECONDS: &str = "patchbay_store_operation_seconds";
/// OAuth connection flows, by `connector` and `stage` (`started`, `completed`,
/// `failed`).
pub const OAUTH_FLOWS: &str = "patchbay_oauth_flows_total";
/// Kubernetes agent sockets attached to this replica.
pub const AGENT_CONNECTIONS: &str = "patchbay_agent_connections";
/// kubectl commands sent through the agent relay, by `outcome` (`ok`,
/// `kubectl_failed`, `not_connected`, `refused_by_service`, `refused_by_agent`,
/// `busy`, `timeout`, `lost`).
pub const AGENT_COMMANDS: &str = "patchbay_agent_commands_total";

/// Every family with its help text, for exporters to describe.
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        WEBHOOK_DELIVERIES,
        Kind::Counter,
        "Webhook deliveries by connector and outcome.",
    ),
    (
        WEBHOOK_INGEST_SECONDS,
        Kind::Histogram,
        "Seconds from a webhook's arrival to its acknowledgement after the durable write.",
    ),
    (
        ALERT_COMMIT_BATCH_SIZE,
        Kind::Histogram,
        "Alerts written per group-commit transaction.",
    ),
    (
        PROVIDER_REQUESTS,
        Kind::Counter,
        "Outbound provider requests by connector, operation and status class.",
    ),
    (
        PROVIDER_REQUEST_SECONDS,
        Kind::Histogram,
        "Seconds per outbound provider request, retries included.",
    ),
    (
        PROVIDER_RETRIES,
        Kind::Counter,
        "Retries of outbound provider requests by connector and reason.",
    ),
    (
        PROVIDER_RETRY_WAIT_SECONDS,
        Kind::Histogram,
        "Seconds waited before a retry; Retry-After sets the wait when the provider sends it.",
    ),
    (
        TOKEN_REFRESHES,
        Kind::Counter,
        "OAuth token refreshes by connector and outcome.",
    ),
    (
        STORE_OPERATIONS,
        Kind::Counter,
        "Record and secret store calls by backend, operation and outcome.",
    ),
    (
        STORE_OPERATION_SECONDS,
        Kind::Histogram,
        "Seconds per record or secret store call.",
    ),
    (
        OAUTH_FLOWS,
        Kind::Counter,
        "OAuth connection flows by connector and stage.",
    ),
    (
        AGENT_CONNECTIONS,
        Kind::Gauge,
        "Kubernetes agent sockets attached to this replica.",
    ),
    (
        AGENT_COMMANDS,
        Kind::Counter,
        "kubectl commands sent through the agent relay, by outcome.",
    ),
];

/// The type of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A count that only grows.
    Counter,
    /// A distribution of observed values.
    Histogram,
    /// A value that goes up and down.
    Gauge,
}

/// Registers the help text of every family with the installed recorder.
pub fn describe_all() {
    for (name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
        }
    }
}

/// The class of an HTTP status, as a label value: `2xx` … `5xx`.
pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_described_once_with_the_project_prefix() {
        let mut names: Vec<_> = FAMILIES.iter().map(|(name, _, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), FAMILIES.len());
        for (name, kind, _) in FAMILIES {
            assert!(name.starts_with("patchbay_"), "{name}");
            assert_eq!(name.ends_with("_total"), *kind == Kind::Counter, "{name}");
        }
    }

    #[test]
    fn statuses_fall_in_their_class() {
        assert_eq!(status_class(200), "2xx");
        assert_eq!(status_class(302), "3xx");
        assert_eq!(status_class(429), "4xx");
        assert_eq!(status_class(503), "5xx");
    }
}
