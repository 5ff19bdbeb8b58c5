//! The connect form, OAuth grants, and the credentials they yield.

use patchbay_core::{Error, FormFields, OAuthGrant, OAuthTokens, Result, SecretString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::AzureConfig;

/// What a user types to connect Microsoft Azure.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// The Microsoft Azure API key.
    pub api_key: SecretString,
}

/// The secrets of a connection to Microsoft Azure, stored only in a secret store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AzureSecrets {
    /// Sent as `X-Api-Key`; set for connections made with an API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<SecretString>,
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        Ok(Self {
            api_key: SecretString::new(
                fields
                    .filled("api_key")?
                    .ok_or_else(|| required("api_key", "Microsoft Azure API key is required"))?,
            ),
        })
    }

    /// Splits the form into settings and secrets.
    pub fn into_parts(self) -> (AzureConfig, AzureSecrets) {
        let config = AzureConfig { account_name: None };
        let secrets = AzureSecrets {
            api_key: Some(self.api_key),
        };
        (config, secrets)
    }
}

/// The error for a required field left empty.
fn required(field: &str, message: &str) -> Error {
    Error::invalid_config(field, message)
        .with_hint("fill in every required field of the connect form")
}

/// Settings and tokens from a finished OAuth flow.
pub fn from_grant(grant: OAuthGrant) -> Result<(AzureConfig, OAuthTokens)> {
    if grant.access_token.is_empty() {
        return Err(Error::invalid_config(
            "access_token",
            "Microsoft Azure returned no access token",
        )
        .with_hint("start the Microsoft Azure connection again"));
    }
    Ok((AzureConfig::default(), OAuthTokens::from_grant(&grant)))
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
        assert_eq!(secrets.api_key.unwrap().expose(), "key-1");
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(schema["properties"]["api_key"]["writeOnly"], json!(true));
    }

    #[test]
    fn a_grant_without_an_access_token_is_refused() {
        let grant = OAuthGrant {
            access_token: "".into(),
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            token_type: None,
            extra: serde_json::Map::new(),
            options: serde_json::Map::new(),
        };
        let error = from_grant(grant).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("access_token"));
    }
}
