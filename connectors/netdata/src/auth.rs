//! The connect form and the credentials it yields.

use patchbay_core::{Error, FormFields, Result, SecretString};
use patchbay_http::HttpClient;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{parse_space_url, NetdataConfig};

/// What a user types to connect Netdata.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// A Netdata Cloud API token (Space settings > API tokens; `scope:all`).
    pub api_token: SecretString,
    /// The space URL; leave empty for Netdata Cloud (`https://app.netdata.cloud`).
    /// A URL copied from the browser (`.../spaces/<slug>/...`) also names the space.
    #[serde(default)]
    pub space_url: Option<String>,
    /// The space to use (its name, slug or id); may be left empty when the token
    /// sees only one space.
    #[serde(default)]
    pub space_name: Option<String>,
}

/// The secrets of a connection to Netdata, stored only in a secret store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetdataSecrets {
    /// The Netdata Cloud API token, sent as `Authorization: Bearer`.
    pub api_token: SecretString,
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        let api_token = fields.filled("api_token")?.ok_or_else(|| {
            Error::invalid_config("api_token", "Netdata API token is required").with_hint(
                "create a token in Netdata Cloud under Space settings > API tokens and paste it",
            )
        })?;
        Ok(Self {
            api_token: SecretString::new(api_token),
            space_url: fields.filled("space_url")?,
            space_name: fields.filled("space_name")?,
        })
    }

    /// Splits the form into settings and secrets; the space URL passes `http`'s
    /// address policy unless it is Netdata Cloud's own.
    pub fn into_parts(self, http: &HttpClient) -> Result<(NetdataConfig, NetdataSecrets)> {
        let space_url = parse_space_url(self.space_url.as_deref(), http)?;
        let config = NetdataConfig {
            base_url: space_url.base_url,
            space: self.space_name.or(space_url.space),
            ..NetdataConfig::default()
        };
        let secrets = NetdataSecrets {
            api_token: self.api_token,
        };
        Ok((config, secrets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use patchbay_http::HttpConfig;
    use serde_json::{json, Value};

    fn fields(value: Value) -> FormFields {
        match value {
            Value::Object(map) => FormFields(map),
            other => panic!("test forms are objects, got {other}"),
        }
    }

    fn http() -> HttpClient {
        HttpClient::new(HttpConfig::default()).unwrap()
    }

    #[test]
    fn missing_fields_name_their_field() {
        let error = ConnectForm::from_fields(fields(json!({}))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("api_token"));
        assert_eq!(error.message(), "Netdata API token is required");
        let error = ConnectForm::from_fields(fields(json!({"api_token": 12345678}))).unwrap_err();
        assert_eq!(error.field(), Some("api_token"));
        assert!(!error.to_string().contains("12345678"));
    }

    #[test]
    fn secrets_are_trimmed_and_write_only() {
        let form = ConnectForm::from_fields(fields(json!({"api_token": " tok-1 "}))).unwrap();
        let (config, secrets) = form.into_parts(&http()).unwrap();
        assert_eq!(secrets.api_token.expose(), "tok-1");
        assert_eq!(config.base_url, crate::config::DEFAULT_BASE_URL);
        assert_eq!(config.space, None);
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(schema["properties"]["api_token"]["writeOnly"], json!(true));
    }

    #[test]
    fn the_space_name_wins_over_the_slug_in_the_url() {
        let form = ConnectForm::from_fields(fields(json!({
            "api_token": "tok",
            "space_url": "https://app.netdata.cloud/spaces/from-url",
        })))
        .unwrap();
        let (config, _) = form.into_parts(&http()).unwrap();
        assert_eq!(config.space.as_deref(), Some("from-url"));
        let form = ConnectForm::from_fields(fields(json!({
            "api_token": "tok",
            "space_url": "https://app.netdata.cloud/spaces/from-url",
            "space_name": "Typed Space",
        })))
        .unwrap();
        let (config, _) = form.into_parts(&http()).unwrap();
        assert_eq!(config.space.as_deref(), Some("Typed Space"));
    }
}
