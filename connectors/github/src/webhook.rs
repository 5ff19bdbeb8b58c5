//! Verifying and normalising GitHub webhook deliveries.
//!
//! Every delivery must carry `X-Hub-Signature-256: sha256=<hex>`, the HMAC-SHA256
//! of the raw body under the connection's `webhook_secret`; the legacy SHA-1
//! `X-Hub-Signature` is ignored. [`verify`] checks it and [`normalize`] reads only
//! what it verified. `X-GitHub-Delivery` is the dedup key.
//!
//! GitHub is not an alert source: deliveries become [`EventKind::Change`] events
//! for root-cause analysis. A change that needs attention (a failed, timed-out
//! or cancelled workflow run or check run, a failed deployment) is `firing`; a
//! success of the same workflow, check or environment shares its `external_id` and
//! is `resolved`; a push is a finished fact and is `resolved` too. Every other
//! event or action is acknowledged without events; `ping` gets GitHub's zen back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use patchbay_core::{
    AlertSeverity, AlertStatus, Error, ErrorKind, EventKind, InboundWebhook, NormalizedAlert,
    Result, SecretString, UnverifiedDelivery, VerifiedDelivery, WebhookOutcome, WebhookReply,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::CONNECTOR_ID;

/// The header carrying the SHA-256 signature.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The header naming the event.
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// The header carrying the delivery GUID.
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

const SIGNATURE_HINT: &str =
    "set the webhook's secret in GitHub to the one shown when the connection was \
     created, and keep the content type application/json";

/// `sha256=<lowercase hex>` of HMAC-SHA256(`secret`, `body`), as GitHub sends it.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac_for(secret);
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn hmac_for(secret: &[u8]) -> Hmac<Sha256> {
    // HMAC accepts keys of any length, so this cannot fail.
    <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length")
}

/// Checks `X-Hub-Signature-256` against the raw body in constant time.
pub fn verify_signature(secret: Option<&SecretString>, request: &InboundWebhook) -> Result<()> {
    let rejected = |message: &str| {
        Error::new(ErrorKind::AuthFailed, message)
            .with_connector(CONNECTOR_ID)
            .with_hint(SIGNATURE_HINT)
    };
    let Some(secret) = secret.filter(|secret| !secret.is_empty()) else {
        return Err(rejected(
            "this GitHub connection has no webhook secret, so deliveries cannot be verified",
        ));
    };
    let Some(header) = request.header(SIGNATURE_HEADER) else {
        return Err(rejected("the delivery has no X-Hub-Signature-256 header"));
    };
    let Some(given) = header
        .trim()
        .strip_prefix("sha256=")
        .and_then(|hex_digest| hex::decode(hex_digest).ok())
    else {
        return Err(rejected(
            "X-Hub-Signature-256 is not of the form sha256=<hex digest>",
        ));
    };
    let mut mac = hmac_for(secret.expose().as_bytes());
    mac.update(&request.body);
    let expected = mac.finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(given.as_slice())) {
        Ok(())
    } else {
        Err(rejected(
            "X-Hub-Signature-256 does not match the body and the webhook secret",
        ))
    }
}

/// Vouches for a delivery whose signature matches the connection's `webhook_secret`.
pub fn verify(
    secret: Option<&SecretString>,
    delivery: UnverifiedDelivery,
) -> Result<VerifiedDelivery> {
    verify_signature(secret, delivery.request())?;
    Ok(delivery.mark_verified())
}

/// Normalises one verified delivery: change events, or GitHub's zen for a `ping`.
pub fn normalize(delivery: &VerifiedDelivery) -> Result<WebhookOutcome> {
    let request = delivery.request();
    let event = request
        .header(EVENT_HEADER)
        .map(str::trim)
        .filter(|event| !event.is_empty())
        .ok_or_else(|| {
            Error::invalid_input(
                "X-GitHub-Event",
                "the delivery has no X-GitHub-Event header",
            )
            .with_connector(CONNECTOR_ID)
        })?
        .to_owned();
    let payload = parse_body(request)?;
    if event == "ping" {
        let body = json!({"ok": true, "zen": payload.get("zen").cloned().unwrap_or(Value::Null)});
        return Ok(WebhookOutcome {
            events: Vec::new(),
            reply: Some(WebhookReply {
                status: 200,
                content_type: "application/json",
                body: body.to_string(),
            }),
        });
    }
    let delivery = request
        .header(DELIVERY_HEADER)
        .map(str::trim)
        .filter(|delivery| !delivery.is_empty())
        .map_or_else(|| body_hash(&event, &request.body), str::to_owned);
    let normalized = match event.as_str() {
        "workflow_run" => workflow_run(&payload),
        "check_run" => check_run(&payload),
        "deployment_status" => deployment_status(&payload),
        "push" => push(&payload),
        _ => None,
    };
    let events = normalized
        .map(|change| change.into_alert(&event, delivery, &payload))
        .into_iter()
        .collect();
    Ok(WebhookOutcome {
        events,
        reply: None,
    })
}

/// The JSON payload: the body itself, or the `payload` field of a form body.
fn parse_body(request: &InboundWebhook) -> Result<Value> {
    let form = request
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"));
    let invalid = |message: String| {
        Error::invalid_input("body", message)
            .with_connector(CONNECTOR_ID)
            .with_hint("set the webhook's content type to application/json in GitHub")
    };
    if form {
        let payload = url::form_urlencoded::parse(&request.body)
            .find(|(key, _)| key == "payload")
            .map(|(_, value)| value.into_owned())
            .ok_or_else(|| {
                invalid("the form-encoded delivery has no `payload` field".to_owned())
            })?;
        serde_json::from_str(&payload)
            .map_err(|error| invalid(format!("the form `payload` is not JSON: {error}")))
    } else {
        serde_json::from_slice(&request.body)
            .map_err(|error| invalid(format!("the delivery body is not JSON: {error}")))
    }
}

fn body_hash(event: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(event.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// What a delivery says, before it becomes an alert.
struct Change {
    external_id: String,
    title: String,
    status: AlertStatus,
    severity: AlertSeverity,
    started_at: Option<DateTime<Utc>>,
    ended_at: Option<DateTime<Utc>>,
    url: Option<String>,
    labels: Vec<(&'static str, Option<String>)>,
}

impl Change {
    fn into_alert(self, event: &str, delivery: String, payload: &Value) -> NormalizedAlert {
        let repository = text(payload, "/repository/full_name");
        let mut labels: BTreeMap<String, String> = self
            .labels
            .into_iter()
            .filter_map(|(key, value)| value.map(|value| (key.to_owned(), value)))
            .collect();
        labels.insert("event".into(), event.to_owned());
        labels.insert("delivery".into(), delivery.clone());
        if let Some(action) = text(payload, "/action") {
            labels.insert("action".into(), action);
        }
        if let Some(repository) = &repository {
            labels.insert("repository".into(), repository.clone());
        }
        if let Some(sender) = text(payload, "/sender/login") {
            labels.insert("sender".into(), sender);
        }
        NormalizedAlert {
            source: CONNECTOR_ID.to_owned(),
            kind: EventKind::Change,
            external_id: self.external_id,
            dedup_key: delivery,
            title: self.title,
            status: self.status,
            severity: self.severity,
            service: repository,
            started_at: self.started_at,
            ended_at: self.ended_at,
            url: self.url,
            labels,
            tags: Vec::new(),
            raw: payload.clone(),
        }
    }
}

fn text(payload: &Value, pointer: &str) -> Option<String> {
    match payload.pointer(pointer)? {
        Value::String(text) if !text.is_empty() => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn time(payload: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let raw = payload.pointer(pointer)?;
    match raw {
        Value::String(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|time| time.with_timezone(&Utc)),
        // Push payloads give `repository.pushed_at` as epoch seconds.
        Value::Number(number) => number
            .as_i64()
            .and_then(|seconds| DateTime::from_timestamp(seconds, 0)),
        _ => None,
    }
}

/// How a completed run or check ended, on the alert scale.
fn conclusion_outcome(conclusion: &str) -> Option<(AlertStatus, AlertSeverity)> {
    match conclusion {
        "failure" | "timed_out" | "startup_failure" => {
            Some((AlertStatus::Firing, AlertSeverity::Medium))
        }
        "cancelled" => Some((AlertStatus::Firing, AlertSeverity::Low)),
        "success" => Some((AlertStatus::Resolved, AlertSeverity::Low)),
        _ => None,
    }
}

fn repo_key(payload: &Value) -> String {
    text(payload, "/repository/full_name").unwrap_or_else(|| "unknown".to_owned())
}

fn workflow_run(payload: &Value) -> Option<Change> {
    if text(payload, "/action").as_deref() != Some("completed") {
        return None;
    }
    let conclusion = text(payload, "/workflow_run/conclusion")?;
    let (status, severity) = conclusion_outcome(&conclusion)?;
    let name = text(payload, "/workflow_run/name").unwrap_or_else(|| "workflow".to_owned());
    let branch = text(payload, "/workflow_run/head_branch");
    let workflow = text(payload, "/workflow_run/workflow_id").unwrap_or_else(|| name.clone());
    let on_branch = branch
        .as_deref()
        .map(|branch| format!(" on {branch}"))
        .unwrap_or_default();
    Some(Change {
        external_id: format!(
            "workflow_run:{}:{workflow}:{}",
            repo_key(payload),
            branch.clone().unwrap_or_default()
        ),
        title: format!("Workflow {name}{on_branch}: {conclusion}"),
        status,
        severity,
        started_at: time(payload, "/workflow_run/run_started_at")
            .or_else(|| time(payload, "/workflow_run/created_at")),
        ended_at: time(payload, "/workflow_run/updated_at"),
        url: text(payload, "/workflow_run/html_url"),
        labels: vec![
            ("workflow", Some(name)),
            ("conclusion", Some(conclusion)),
            ("branch", branch),
            ("sha", text(payload, "/workflow_run/head_sha")),
            ("run_id", text(payload, "/workflow_run/id")),
            ("trigger", text(payload, "/workflow_run/event")),
        ],
    })
}

fn check_run(payload: &Value) -> Option<Change> {
    if text(payload, "/action").as_deref() != Some("completed") {
        return None;
    }
    let conclusion = text(payload, "/check_run/conclusion")?;
    let (status, severity) = conclusion_outcome(&conclusion)?;
    let name = text(payload, "/check_run/name").unwrap_or_else(|| "check".to_owned());
    let branch = text(payload, "/check_run/check_suite/head_branch");
    Some(Change {
        external_id: format!(
            "check_run:{}:{name}:{}",
            repo_key(payload),
            branch.clone().unwrap_or_default()
        ),
        title: format!("Check {name}: {conclusion}"),
        status,
        severity,
        started_at: time(payload, "/check_run/started_at"),
        ended_at: time(payload, "/check_run/completed_at"),
        url: text(payload, "/check_run/html_url"),
        labels: vec![
            ("check", Some(name)),
            ("conclusion", Some(conclusion)),
            ("branch", branch),
            ("sha", text(payload, "/check_run/head_sha")),
            ("app", text(payload, "/check_run/app/slug")),
        ],
    })
}

fn deployment_status(payload: &Value) -> Option<Change> {
    let state = text(payload, "/deployment_status/state")?;
    let (status, severity) = match state.as_str() {
        "failure" | "error" => (AlertStatus::Firing, AlertSeverity::High),
        "success" => (AlertStatus::Resolved, AlertSeverity::Low),
        _ => return None,
    };
    let environment = text(payload, "/deployment_status/environment")
        .or_else(|| text(payload, "/deployment/environment"))
        .unwrap_or_else(|| "default".to_owned());
    let git_ref = text(payload, "/deployment/ref");
    let of_ref = git_ref
        .as_deref()
        .map(|git_ref| format!(" of {git_ref}"))
        .unwrap_or_default();
    Some(Change {
        external_id: format!("deployment:{}:{environment}", repo_key(payload)),
        title: format!("Deployment{of_ref} to {environment}: {state}"),
        status,
        severity,
        started_at: time(payload, "/deployment/created_at"),
        ended_at: time(payload, "/deployment_status/created_at"),
        url: text(payload, "/deployment_status/target_url")
            .or_else(|| text(payload, "/deployment_status/log_url"))
            .or_else(|| text(payload, "/deployment/url")),
        labels: vec![
            ("environment", Some(environment)),
            ("state", Some(state)),
            ("ref", git_ref),
            ("sha", text(payload, "/deployment/sha")),
            ("deployment_id", text(payload, "/deployment/id")),
            (
                "description",
                text(payload, "/deployment_status/description"),
            ),
        ],
    })
}

fn push(payload: &Value) -> Option<Change> {
    let git_ref = text(payload, "/ref")?;
    let after = text(payload, "/after").unwrap_or_default();
    let branch = git_ref
        .strip_prefix("refs/heads/")
        .unwrap_or(&git_ref)
        .to_owned();
    let commits = payload
        .get("commits")
        .and_then(Value::as_array)
        .map_or(0, Vec::len);
    let pusher = text(payload, "/pusher/name").or_else(|| text(payload, "/sender/login"));
    let deleted = payload.get("deleted").and_then(Value::as_bool) == Some(true);
    let forced = payload.get("forced").and_then(Value::as_bool) == Some(true);
    let what = if deleted {
        "deleted".to_owned()
    } else {
        let plural = if commits == 1 { "" } else { "s" };
        format!(
            "{commits} commit{plural}{}",
            if forced { " (force push)" } else { "" }
        )
    };
    let by = pusher
        .as_deref()
        .map(|pusher| format!(" by {pusher}"))
        .unwrap_or_default();
    Some(Change {
        external_id: format!("push:{}:{git_ref}:{after}", repo_key(payload)),
        title: format!("Push to {branch}{by}: {what}"),
        status: AlertStatus::Resolved,
        severity: AlertSeverity::Low,
        started_at: time(payload, "/head_commit/timestamp")
            .or_else(|| time(payload, "/repository/pushed_at")),
        ended_at: None,
        url: text(payload, "/compare"),
        labels: vec![
            ("branch", Some(branch)),
            ("ref", Some(git_ref)),
            ("sha", Some(after).filter(|after| !after.is_empty())),
            ("before", text(payload, "/before")),
            ("pusher", pusher),
            ("commits", Some(commits.to_string())),
            ("forced", Some(forced.to_string())),
        ],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_matches_githubs_published_vector() {
        assert_eq!(
            sign(b"It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }
}
