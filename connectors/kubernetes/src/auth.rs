//! The "Add Cluster" form and the settings it yields.

use patchbay_core::{Error, FormFields, NoSecrets, Result};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::KubernetesConfig;

/// The longest cluster name.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest notes.
pub const MAX_NOTES_CHARS: usize = 2000;
/// The longest token lifetime, in days.
pub const MAX_EXPIRES_DAYS: u32 = 3650;

/// What a person types to add a cluster. The server generates the cluster id and
/// the agent token; neither is typed.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// The cluster's display name (1 to 100 characters), e.g. `prod-eu-west-1`.
    pub cluster_name: String,
    /// Free notes about the cluster (at most 2000 characters).
    #[serde(default)]
    pub notes: Option<String>,
    /// Days until the agent token stops authenticating (1 to 3650); no expiry when absent.
    #[serde(default)]
    #[schemars(range(min = 1, max = 3650))]
    pub expires_days: Option<u32>,
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        let cluster_name = fields.filled("cluster_name")?.ok_or_else(|| {
            Error::invalid_config("cluster_name", "the cluster name is required")
                .with_hint("name the cluster as people know it, e.g. prod-eu-west-1")
        })?;
        if cluster_name.chars().count() > MAX_NAME_CHARS
            || cluster_name.chars().any(char::is_control)
        {
            return Err(Error::invalid_config(
                "cluster_name",
                format!("the cluster name must be at most {MAX_NAME_CHARS} characters, without control characters"),
            )
            .with_hint("use a short name such as prod-eu-west-1"));
        }
        let notes = fields.filled("notes")?;
        if notes
            .as_ref()
            .is_some_and(|notes| notes.chars().count() > MAX_NOTES_CHARS)
        {
            return Err(Error::invalid_config(
                "notes",
                format!("notes may hold at most {MAX_NOTES_CHARS} characters"),
            )
            .with_hint("shorten the notes"));
        }
        let expires_days = match fields.0.get("expires_days") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Number(number)) => Some(days(number.as_u64())?),
            Some(serde_json::Value::String(text)) if text.trim().is_empty() => None,
            Some(serde_json::Value::String(text)) => Some(days(text.trim().parse().ok())?),
            Some(_) => return Err(days_error()),
        };
        Ok(Self {
            cluster_name,
            notes,
            expires_days,
        })
    }

    /// Splits the form into settings and (no) secrets.
    pub fn into_parts(self) -> (KubernetesConfig, NoSecrets) {
        let config = KubernetesConfig {
            cluster_name: self.cluster_name,
            notes: self.notes,
            token_expires_days: self.expires_days,
        };
        (config, NoSecrets {})
    }
}

fn days(value: Option<u64>) -> Result<u32> {
    value
        .and_then(|days| u32::try_from(days).ok())
        .filter(|days| (1..=MAX_EXPIRES_DAYS).contains(days))
        .ok_or_else(days_error)
}

fn days_error() -> Error {
    Error::invalid_config(
        "expires_days",
        format!("expires_days must be a whole number of days from 1 to {MAX_EXPIRES_DAYS}"),
    )
    .with_hint("leave it out for a token that does not expire")
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use serde_json::{json, Value};

    fn fields(value: Value) -> FormFields {
        match value {
            Value::Object(map) => FormFields(map),
            other => panic!("test forms are objects, got {other}"),
        }
    }

    #[test]
    fn every_bad_field_is_named() {
        for (form, field) in [
            (json!({"cluster_name": " "}), "cluster_name"),
            (json!({}), "cluster_name"),
            (json!({"cluster_name": "a\u{7}b"}), "cluster_name"),
            (json!({"cluster_name": "x".repeat(101)}), "cluster_name"),
            (
                json!({"cluster_name": "p", "notes": "n".repeat(2001)}),
                "notes",
            ),
            (
                json!({"cluster_name": "p", "expires_days": 0}),
                "expires_days",
            ),
            (
                json!({"cluster_name": "p", "expires_days": 3651}),
                "expires_days",
            ),
            (
                json!({"cluster_name": "p", "expires_days": "soon"}),
                "expires_days",
            ),
            (
                json!({"cluster_name": "p", "expires_days": 1.5}),
                "expires_days",
            ),
            (
                json!({"cluster_name": "p", "expires_days": true}),
                "expires_days",
            ),
        ] {
            let error = ConnectForm::from_fields(fields(form.clone())).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{form}");
            assert_eq!(error.field(), Some(field), "{form}");
        }
    }

    #[test]
    fn the_form_becomes_settings() {
        let form = ConnectForm::from_fields(fields(
            json!({"cluster_name": " prod ", "notes": "eu", "expires_days": "30"}),
        ))
        .unwrap();
        let (config, _) = form.into_parts();
        assert_eq!(config.cluster_name, "prod");
        assert_eq!(config.notes.as_deref(), Some("eu"));
        assert_eq!(config.token_expires_days, Some(30));
        let form =
            ConnectForm::from_fields(fields(json!({"cluster_name": "prod", "expires_days": 7})))
                .unwrap();
        assert_eq!(form.expires_days, Some(7));
    }
}
