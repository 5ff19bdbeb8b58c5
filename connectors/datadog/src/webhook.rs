//! Normalising Datadog webhook deliveries into the common alert model.
//!
//! Datadog posts whatever template the webhook is configured with: the default
//! template (`id`, `title`, `date`, `body`, ...) or a custom one carrying monitor
//! variables (`alert_id`, `alert_cycle_key`, `alert_transition`, ...). Both are
//! read, as JSON or as a flat form (`encode_as: form`). Deliveries are unsigned:
//! the host verifies their token, and only a [`VerifiedDelivery`] is normalised.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use patchbay_core::{
    AlertSeverity, AlertStatus, Error, EventKind, InboundWebhook, NormalizedAlert, Result,
    VerifiedDelivery,
};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::config::DatadogConfig;
use crate::CONNECTOR_ID;

const TEMPLATE_HINT: &str = "configure the Datadog webhook with the default payload or the \
     recommended custom payload (see the connector README), which carry `id`, `alert_id` and `title`";

/// Normalises one verified delivery.
pub fn normalize(config: &DatadogConfig, delivery: &VerifiedDelivery) -> Result<NormalizedAlert> {
    let body = parse_body(delivery.request())?;
    let fields = Fields(&body);
    let id = fields.text(&["id"]);
    let alert_id = fields.text(&["alert_id"]);
    let title = fields.text(&["alert_title", "title", "event_title"]);
    if id.is_none() && alert_id.is_none() && title.is_none() {
        return Err(Error::invalid_input(
            "body",
            "not a Datadog webhook payload: it has none of `id`, `alert_id` or `title`",
        )
        .with_connector(CONNECTOR_ID)
        .with_hint(TEMPLATE_HINT));
    }
    let scope = fields.text(&["alert_scope", "scope"]);
    let transition = fields.text(&["alert_transition", "transition"]);
    let alert_type = fields.text(&["alert_type"]);
    let priority = fields
        .text(&["alert_priority", "priority"])
        .filter(|priority| priority_severity(priority).is_some());
    let date = fields.text(&["date", "last_updated"]);
    let host = fields.text(&["hostname", "host"]);
    let tags = fields.list(&["tags"]);
    let scope_tags = scope.as_deref().map(split_list).unwrap_or_default();

    let dedup_key = id.clone().unwrap_or_else(|| {
        delivery_hash(
            &body,
            [
                ("alert_id", alert_id.as_deref()),
                ("scope", scope.as_deref()),
                ("transition", transition.as_deref()),
                ("date", date.as_deref()),
            ],
        )
    });
    let external_id = fields
        .text(&["alert_cycle_key"])
        .or_else(|| {
            alert_id.as_ref().map(|alert_id| match &scope {
                Some(scope) => format!("{alert_id}:{scope}"),
                None => alert_id.clone(),
            })
        })
        .or_else(|| id.clone())
        .unwrap_or_else(|| dedup_key.clone());

    let resolved = transition
        .as_deref()
        .is_some_and(|transition| transition.eq_ignore_ascii_case("recovered"))
        || title
            .as_deref()
            .is_some_and(|title| title.starts_with("[Recovered"))
        || alert_type
            .as_deref()
            .is_some_and(|alert_type| alert_type.eq_ignore_ascii_case("success"));
    let status = if resolved {
        AlertStatus::Resolved
    } else {
        AlertStatus::Firing
    };
    let severity = priority
        .as_deref()
        .and_then(priority_severity)
        .or_else(|| alert_type.as_deref().and_then(alert_type_severity))
        .unwrap_or(AlertSeverity::Unknown);
    let service = tag_value(&tags, "service")
        .or_else(|| tag_value(&scope_tags, "service"))
        .or(host)
        .or_else(|| tag_value(&scope_tags, "host"));
    let occurred_at = date.as_deref().and_then(parse_date);
    let url = fields
        .text(&["link", "url"])
        .filter(|link| link.starts_with("https://") || link.starts_with("http://"))
        .or_else(|| {
            alert_id
                .as_ref()
                .map(|alert_id| format!("{}/monitors/{alert_id}", config.app_base()))
        });

    let mut labels = BTreeMap::new();
    for tag in tags.iter().chain(&scope_tags) {
        if let Some((key, value)) = tag.split_once(':') {
            labels.insert(key.trim().to_owned(), value.trim().to_owned());
        }
    }
    let named = [
        ("monitor_id", alert_id.clone()),
        ("metric", fields.text(&["alert_metric"])),
        ("query", fields.text(&["alert_query"])),
        ("priority", priority),
        ("transition", transition),
        ("alert_type", alert_type),
        ("event_type", fields.text(&["event_type"])),
        (
            "org_id",
            fields
                .nested_text("org", "id")
                .or_else(|| fields.text(&["org_id"])),
        ),
        (
            "org_name",
            fields
                .nested_text("org", "name")
                .or_else(|| fields.text(&["org_name"])),
        ),
    ];
    for (key, value) in named {
        if let Some(value) = value {
            labels.insert(key.to_owned(), value);
        }
    }

    let title = title.unwrap_or_else(|| match (&alert_id, &id) {
        (Some(alert_id), _) => format!("Datadog monitor {alert_id}"),
        (None, Some(id)) => format!("Datadog event {id}"),
        (None, None) => "Datadog alert".to_owned(),
    });
    Ok(NormalizedAlert {
        source: CONNECTOR_ID.to_owned(),
        kind: EventKind::Alert,
        external_id,
        dedup_key,
        title,
        status,
        severity,
        service,
        started_at: occurred_at,
        ended_at: occurred_at.filter(|_| resolved),
        url,
        labels,
        tags,
        raw: body,
    })
}

/// The body as a JSON object, from JSON or a flat form.
fn parse_body(request: &InboundWebhook) -> Result<Value> {
    let is_form = request.header("content-type").is_some_and(|content_type| {
        content_type
            .trim()
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if is_form {
        let fields: Map<String, Value> = url::form_urlencoded::parse(&request.body)
            .map(|(key, value)| (key.into_owned(), Value::String(value.into_owned())))
            .collect();
        return Ok(Value::Object(fields));
    }
    let body: Value = serde_json::from_slice(&request.body).map_err(|error| {
        Error::invalid_input("body", format!("Datadog webhook body is not valid JSON: {error}"))
            .with_connector(CONNECTOR_ID)
            .with_hint(
                "check the webhook's custom payload in Datadog: it must be valid JSON once variables are filled in \
                 (quote variables such as \"$ALERT_TITLE\")",
            )
    })?;
    if body.is_object() {
        Ok(body)
    } else {
        Err(Error::invalid_input(
            "body",
            "not a Datadog webhook payload: the body is not a JSON object",
        )
        .with_connector(CONNECTOR_ID)
        .with_hint(TEMPLATE_HINT))
    }
}

/// Read access to the payload's fields under their aliases.
struct Fields<'a>(&'a Value);

impl Fields<'_> {
    /// The first present, non-empty value among `names`, as text.
    fn text(&self, names: &[&str]) -> Option<String> {
        names
            .iter()
            .find_map(|name| self.0.get(*name).and_then(scalar_text))
    }

    fn nested_text(&self, parent: &str, name: &str) -> Option<String> {
        self.0.get(parent)?.get(name).and_then(scalar_text)
    }

    /// A list given as a JSON array or a comma-separated string.
    fn list(&self, names: &[&str]) -> Vec<String> {
        let Some(value) = names.iter().find_map(|name| self.0.get(*name)) else {
            return Vec::new();
        };
        match value {
            Value::Array(items) => items.iter().filter_map(scalar_text).collect(),
            other => scalar_text(other)
                .map(|text| split_list(&text))
                .unwrap_or_default(),
        }
    }
}

/// A scalar as trimmed text; empty strings and variables Datadog left unfilled
/// (`$ALERT_PRIORITY`) count as absent.
fn scalar_text(value: &Value) -> Option<String> {
    let text = match value {
        Value::String(text) => text.trim().to_owned(),
        Value::Number(number) => number.to_string(),
        Value::Bool(flag) => flag.to_string(),
        _ => return None,
    };
    let unfilled = text.len() > 1
        && text.starts_with('$')
        && text[1..]
            .bytes()
            .all(|byte| byte.is_ascii_uppercase() || byte.is_ascii_digit() || byte == b'_');
    (!text.is_empty() && !unfilled).then_some(text)
}

fn split_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

fn tag_value(tags: &[String], key: &str) -> Option<String> {
    tags.iter().find_map(|tag| {
        let (name, value) = tag.split_once(':')?;
        (name.trim() == key && !value.trim().is_empty()).then(|| value.trim().to_owned())
    })
}

fn priority_severity(priority: &str) -> Option<AlertSeverity> {
    match priority.trim().to_ascii_uppercase().as_str() {
        "P1" => Some(AlertSeverity::Critical),
        "P2" => Some(AlertSeverity::High),
        "P3" => Some(AlertSeverity::Medium),
        "P4" | "P5" => Some(AlertSeverity::Low),
        _ => None,
    }
}

fn alert_type_severity(alert_type: &str) -> Option<AlertSeverity> {
    match alert_type.trim().to_ascii_lowercase().as_str() {
        "error" => Some(AlertSeverity::Critical),
        "warning" => Some(AlertSeverity::High),
        "info" => Some(AlertSeverity::Low),
        _ => None,
    }
}

/// `$DATE` is epoch milliseconds; values too small to be milliseconds of this era
/// are read as seconds, and RFC 3339 text is accepted too.
fn parse_date(text: &str) -> Option<DateTime<Utc>> {
    const SECONDS_BELOW: i64 = 100_000_000_000;
    if let Ok(number) = text.parse::<i64>() {
        return if number < SECONDS_BELOW {
            DateTime::from_timestamp(number, 0)
        } else {
            DateTime::from_timestamp_millis(number)
        };
    }
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// SHA-256 over the delivery's identifying fields; over the whole body when it
/// carries none of them, so distinct deliveries never collapse into one.
fn delivery_hash<const N: usize>(body: &Value, fields: [(&str, Option<&str>); N]) -> String {
    let mut hasher = Sha256::new();
    if fields.iter().all(|(_, value)| value.is_none()) {
        hasher.update(body.to_string().as_bytes());
    } else {
        for (name, value) in fields {
            // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
            for part in [name, value.unwrap_or_default()] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part.as_bytes());
            }
        }
    }
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unfilled_variables_and_blanks_are_absent() {
        assert_eq!(scalar_text(&Value::from("$ALERT_PRIORITY")), None);
        assert_eq!(scalar_text(&Value::from("  ")), None);
        assert_eq!(
            scalar_text(&Value::from("$5 off")),
            Some("$5 off".to_owned())
        );
        assert_eq!(scalar_text(&Value::from(42)), Some("42".to_owned()));
    }

    #[test]
    fn dates_read_as_milliseconds_seconds_or_rfc3339() {
        let expected = DateTime::from_timestamp(1_591_216_985, 0).unwrap();
        assert_eq!(parse_date("1591216985000"), Some(expected));
        assert_eq!(parse_date("1591216985"), Some(expected));
        assert_eq!(parse_date("2020-06-03T20:43:05Z"), Some(expected));
        assert_eq!(parse_date("soon"), None);
    }

    #[test]
    fn the_delivery_hash_changes_with_each_identifying_field() {
        let body = Value::Null;
        let base = delivery_hash(
            &body,
            [("alert_id", Some("1")), ("transition", Some("Triggered"))],
        );
        assert_eq!(
            base,
            delivery_hash(
                &body,
                [("alert_id", Some("1")), ("transition", Some("Triggered"))]
            )
        );
        assert_ne!(
            base,
            delivery_hash(
                &body,
                [("alert_id", Some("1")), ("transition", Some("Recovered"))]
            )
        );
        assert_eq!(base.len(), 64);
    }
}
