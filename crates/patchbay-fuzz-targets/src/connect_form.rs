//! Every connector's connect form: the fields a person submits, parsed by the
//! connector's `authenticate` hook into settings and secrets (no network call).
//!
//! The input is the connector's id on the first line and the form's fields as a
//! JSON object after it. A refusal must name the field at fault (a 400), and no
//! secret the form carried may reach the stored settings or an error's text;
//! secrets are the connect schema's `writeOnly` fields, and a value is followed
//! when it holds [`CANARY`], so no other text can be mistaken for it. The AWS
//! connector takes part with the `aws` feature only (on here, off in `fuzz/`).

use std::collections::BTreeSet;
use std::sync::LazyLock;

use patchbay_core::{AuthRequest, ConnectorDescriptor, DynConnector, ErrorKind, FormFields};
use serde_json::{Map, Value};

use crate::harness::{self, run};

/// The marker of secret values the target follows.
pub const CANARY: &str = "pbcanary";

/// A connector and the fields of its connect form that hold secrets.
pub struct FormConnector {
    /// The connector.
    pub connector: Box<dyn DynConnector>,
    /// The connect schema's `writeOnly` fields.
    pub secret_fields: BTreeSet<String>,
}

/// Every connector with a connect form.
pub static CONNECTORS: LazyLock<Vec<FormConnector>> = LazyLock::new(|| {
    let descriptors: Vec<&ConnectorDescriptor> = vec![
        #[cfg(feature = "aws")]
        &patchbay_connector_aws::DESCRIPTOR,
        &patchbay_connector_azure::DESCRIPTOR,
        &patchbay_connector_confluence::DESCRIPTOR,
        &patchbay_connector_datadog::DESCRIPTOR,
        &patchbay_connector_gcp::DESCRIPTOR,
        &patchbay_connector_github::DESCRIPTOR,
        &patchbay_connector_grafana::DESCRIPTOR,
        &patchbay_connector_kubernetes::DESCRIPTOR,
        &patchbay_connector_netdata::DESCRIPTOR,
        &patchbay_connector_ovh::DESCRIPTOR,
        &patchbay_connector_pagerduty::DESCRIPTOR,
        &patchbay_connector_slack::DESCRIPTOR,
    ];
    descriptors
        .into_iter()
        .map(|descriptor| {
            let schema = (descriptor.connect_schema)();
            let mut secrets = BTreeSet::new();
            secret_fields(schema.as_value(), &mut secrets);
            FormConnector {
                connector: harness::build(descriptor),
                secret_fields: secrets,
            }
        })
        .collect()
});

/// The names of the properties marked `writeOnly` anywhere in `schema`.
fn secret_fields(schema: &Value, found: &mut BTreeSet<String>) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::Object(properties)) = object.get("properties") {
                for (name, property) in properties {
                    if property.get("writeOnly") == Some(&Value::Bool(true)) {
                        found.insert(name.clone());
                    }
                }
            }
            for value in object.values() {
                secret_fields(value, found);
            }
        }
        Value::Array(items) => {
            for item in items {
                secret_fields(item, found);
            }
        }
        _ => {}
    }
}

/// The secret values of `fields` to follow: those holding [`CANARY`] that no
/// other field also holds (a settings field may legitimately repeat it).
fn followed_secrets(fields: &Map<String, Value>, secrets: &BTreeSet<String>) -> Vec<String> {
    let text_of = |value: &Value| match value {
        Value::String(text) => Some(text.clone()),
        _ => None,
    };
    let others: Vec<String> = fields
        .iter()
        .filter(|(name, _)| !secrets.contains(*name))
        .map(|(_, value)| value.to_string())
        .collect();
    fields
        .iter()
        .filter(|(name, _)| secrets.contains(*name))
        .filter_map(|(_, value)| text_of(value))
        .filter(|secret| secret.contains(CANARY))
        .filter(|secret| !others.iter().any(|other| other.contains(secret.as_str())))
        .collect()
}

/// The target's body.
pub fn connect_form(data: &[u8]) {
    let Some(newline) = data.iter().position(|byte| *byte == b'\n') else {
        return;
    };
    let (Ok(id), Ok(Value::Object(fields))) = (
        std::str::from_utf8(&data[..newline]),
        serde_json::from_slice::<Value>(&data[newline + 1..]),
    ) else {
        return;
    };
    let Some(FormConnector {
        connector,
        secret_fields,
    }) = CONNECTORS
        .iter()
        .find(|candidate| candidate.connector.descriptor().id == id.trim())
    else {
        return;
    };
    let followed = followed_secrets(&fields, secret_fields);
    match run(connector.authenticate(AuthRequest::Form(FormFields(fields)))) {
        Ok(credentials) => {
            let stored = credentials.config.to_string();
            for secret in &followed {
                assert!(
                    !stored.contains(secret.as_str()),
                    "{id}: a secret reached the stored settings: {stored}"
                );
            }
            assert!(
                credentials.secrets.expose().is_object(),
                "{id}: the secrets are not an object"
            );
            let _ = connector.webhook_setup(&credentials.config);
            let _ = connector.routing_key(&credentials.config);
        }
        Err(error) => {
            match error.kind() {
                ErrorKind::InvalidConfig | ErrorKind::InvalidInput => assert!(
                    error.field().is_some(),
                    "{id}: a refused form names no field: {error}"
                ),
                ErrorKind::Unsupported => {}
                other => panic!("{id}: a form was refused with {other:?}: {error}"),
            }
            let shown = format!("{error} {error:?} {}", error.hint().unwrap_or_default());
            for secret in &followed {
                assert!(
                    !shown.contains(secret.as_str()),
                    "{id}: a refusal echoes a secret: {shown}"
                );
            }
        }
    }
}
