//! The connect form and the secrets it yields.

use patchbay_core::{Error, FormFields, Result, SecretString};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::DatadogConfig;

/// What a user types to connect Datadog.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// The Datadog API key (Organization Settings > API Keys).
    #[serde(alias = "apiKey")]
    pub api_key: SecretString,
    /// The Datadog application key (Organization Settings > Application Keys).
    #[serde(alias = "appKey")]
    pub app_key: SecretString,
    /// The Datadog site of the account, e.g. datadoghq.com (US1, the default), us3.datadoghq.com, us5.datadoghq.com, datadoghq.eu, ap1.datadoghq.com or ddog-gov.com.
    #[serde(default)]
    pub site: Option<String>,
}

/// The secret half of a Datadog connection, stored only in a secret store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatadogSecrets {
    /// Sent as `DD-API-KEY`.
    pub api_key: SecretString,
    /// Sent as `DD-APPLICATION-KEY`.
    pub app_key: SecretString,
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        // Each field also answers to its camelCase alias.
        let text = |name: &str, alias: &str| -> Result<Option<String>> {
            Ok(match fields.text(name)? {
                Some(text) => Some(text.to_owned()),
                None => fields.text(alias)?.map(str::to_owned),
            })
        };
        let form = Self {
            api_key: text("api_key", "apiKey")?.unwrap_or_default().into(),
            app_key: text("app_key", "appKey")?.unwrap_or_default().into(),
            site: fields.text("site")?.map(str::to_owned),
        };
        if form.api_key.is_empty() {
            return Err(
                Error::invalid_config("api_key", "Datadog API key is required")
                    .with_hint("copy it from Datadog > Organization Settings > API Keys"),
            );
        }
        if form.app_key.is_empty() {
            return Err(
                Error::invalid_config("app_key", "Datadog application key is required")
                    .with_hint("copy it from Datadog > Organization Settings > Application Keys"),
            );
        }
        Ok(form)
    }

    /// Splits the form into settings (with the site resolved) and secrets.
    pub fn into_parts(self) -> Result<(DatadogConfig, DatadogSecrets)> {
        let config = DatadogConfig::for_site(self.site.as_deref())?;
        let secrets = DatadogSecrets {
            api_key: SecretString::new(self.api_key.expose().trim().to_owned()),
            app_key: SecretString::new(self.app_key.expose().trim().to_owned()),
        };
        Ok((config, secrets))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use serde_json::json;

    fn fields(value: serde_json::Value) -> FormFields {
        match value {
            serde_json::Value::Object(map) => FormFields(map),
            _ => unreachable!("test forms are objects"),
        }
    }

    #[test]
    fn camel_case_aliases_are_accepted() {
        let form = ConnectForm::from_fields(fields(
            json!({"apiKey": " key-1 ", "appKey": "app-1", "site": "eu"}),
        ))
        .unwrap();
        let (config, secrets) = form.into_parts().unwrap();
        assert_eq!(config.site, "datadoghq.eu");
        assert_eq!(secrets.api_key.expose(), "key-1");
        assert_eq!(secrets.app_key.expose(), "app-1");
    }

    #[test]
    fn missing_keys_name_their_field() {
        let error = ConnectForm::from_fields(fields(json!({"app_key": "x"}))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("api_key"));
        assert_eq!(error.message(), "Datadog API key is required");
        let error =
            ConnectForm::from_fields(fields(json!({"api_key": "x", "app_key": " "}))).unwrap_err();
        assert_eq!(error.field(), Some("app_key"));
        assert_eq!(error.message(), "Datadog application key is required");
        let error = ConnectForm::from_fields(fields(json!({"api_key": 424242, "app_key": "x"})))
            .unwrap_err();
        assert_eq!(error.field(), Some("api_key"));
        assert!(!error.to_string().contains("424242"));
    }

    #[test]
    fn the_schema_marks_keys_required_and_write_only() {
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(schema["required"], json!(["api_key", "app_key"]));
        assert_eq!(schema["properties"]["api_key"]["writeOnly"], json!(true));
        assert_eq!(schema["properties"]["app_key"]["writeOnly"], json!(true));
        assert!(schema["properties"]["site"].get("writeOnly").is_none());
        assert!(schema.get("$defs").is_none(), "{schema}");
    }
}
