//! The connect form and the credentials it yields.

use patchbay_core::{Error, FormFields, Result, SecretString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::AwsConfig;

/// What a user types to connect Amazon Web Services.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// The Amazon Web Services API key.
    pub api_key: SecretString,
}

/// The secrets of a connection to Amazon Web Services, stored only in a secret store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AwsSecrets {
    /// Sent as `X-Api-Key`.
    pub api_key: SecretString,
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        Ok(Self {
            api_key: SecretString::new(
                fields.filled("api_key")?.ok_or_else(|| {
                    required("api_key", "Amazon Web Services API key is required")
                })?,
            ),
        })
    }

    /// Splits the form into settings and secrets.
    pub fn into_parts(self) -> (AwsConfig, AwsSecrets) {
        let config = AwsConfig { account_name: None };
        let secrets = AwsSecrets {
            api_key: self.api_key,
        };
        (config, secrets)
    }
}

/// The error for a required field left empty.
fn required(field: &str, message: &str) -> Error {
    Error::invalid_config(field, message)
        .with_hint("fill in every required field of the connect form")
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
    fn missing_fields_name_their_field() {
        let error = ConnectForm::from_fields(fields(json!({}))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("api_key"));
        let error = ConnectForm::from_fields(fields(json!({"api_key": 12345678}))).unwrap_err();
        assert_eq!(error.field(), Some("api_key"));
        assert!(!error.to_string().contains("12345678"));
    }

    #[test]
    fn secrets_are_trimmed_and_write_only() {
        let form = ConnectForm::from_fields(fields(json!({"api_key": " key-1 "}))).unwrap();
        let (_, secrets) = form.into_parts();
        assert_eq!(secrets.api_key.expose(), "key-1");
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(schema["properties"]["api_key"]["writeOnly"], json!(true));
    }
}
