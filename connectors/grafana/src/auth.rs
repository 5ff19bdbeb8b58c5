//! The connect form (service-account token, Grafana URL, webhook settings) and
//! the credentials it yields.

use patchbay_core::{Error, FormFields, Result, SecretString};
use patchbay_http::HttpClient;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{check_header_name, normalize_base_url, GrafanaConfig, WebhookAuthMode};

/// What a user types to connect Grafana.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// The Grafana URL: `https://<stack>.grafana.net` for Grafana Cloud, or your
    /// self-hosted Grafana's https address.
    pub base_url: String,
    /// A service account token (Administration > Service accounts, role Viewer),
    /// starting with `glsa_`.
    pub api_token: SecretString,
    /// How the Grafana contact point authenticates its deliveries: `hmac` (Grafana
    /// 12.0+, default) signs each body with the webhook secret; `bearer` sends the
    /// webhook secret as `Authorization: Bearer`.
    #[serde(default)]
    pub webhook_auth: Option<String>,
    /// The header the contact point's HMAC signature is in (default
    /// `X-Grafana-Alerting-Signature`).
    #[serde(default)]
    pub signature_header: Option<String>,
    /// The timestamp header set in the contact point's HMAC settings, if any; the
    /// signed timestamp must then be within 300 seconds.
    #[serde(default)]
    pub timestamp_header: Option<String>,
    /// Allow a plain http Grafana URL (a self-hosted Grafana on a private network the
    /// operator allows in PATCHBAY_ALLOWED_PRIVATE_NETWORKS). Off by default.
    #[serde(default)]
    pub allow_http: Option<bool>,
}

/// The secrets of a Grafana connection, stored only in a secret store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GrafanaSecrets {
    /// The service account token, sent as `Authorization: Bearer`.
    pub api_token: SecretString,
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        let api_token = fields.filled("api_token")?.ok_or_else(|| {
            Error::invalid_config("api_token", "Grafana API token is required").with_hint(
                "create a service account with the Viewer role in Grafana (Administration > \
                 Service accounts), add a token and paste it here",
            )
        })?;
        let base_url = fields.filled("base_url")?.ok_or_else(|| {
            Error::invalid_config(
                "base_url",
                "A valid Grafana baseUrl is required (https://your-stack.grafana.net)",
            )
            .with_hint("give your Grafana Cloud stack URL or your self-hosted Grafana's address")
        })?;
        let allow_http = match fields.0.get("allow_http") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::Bool(allow)) => Some(*allow),
            Some(_) => {
                return Err(Error::invalid_config(
                    "allow_http",
                    "`allow_http` must be true or false",
                ))
            }
        };
        Ok(Self {
            base_url,
            api_token: SecretString::new(api_token),
            webhook_auth: fields.filled("webhook_auth")?,
            signature_header: fields.filled("signature_header")?,
            timestamp_header: fields.filled("timestamp_header")?,
            allow_http,
        })
    }

    /// Splits the form into settings (the URL checked against `http`'s address
    /// policy) and secrets.
    pub fn into_parts(self, http: &HttpClient) -> Result<(GrafanaConfig, GrafanaSecrets)> {
        let base_url = normalize_base_url(&self.base_url, self.allow_http.unwrap_or(false), http)?;
        let mut config = GrafanaConfig::new(base_url);
        config.webhook_auth = match self.webhook_auth.as_deref().map(str::trim) {
            None | Some("hmac") => WebhookAuthMode::Hmac,
            Some("bearer") => WebhookAuthMode::Bearer,
            Some(_) => {
                return Err(Error::invalid_config(
                    "webhook_auth",
                    "`webhook_auth` must be `hmac` or `bearer`",
                )
                .with_hint(
                    "use `hmac` for Grafana 12.0+ (HMAC signature), `bearer` for an \
                     Authorization header",
                ))
            }
        };
        if let Some(header) = &self.signature_header {
            config.signature_header = check_header_name("signature_header", header)?;
        }
        if let Some(header) = &self.timestamp_header {
            let header = check_header_name("timestamp_header", header)?;
            if header.eq_ignore_ascii_case(&config.signature_header) {
                return Err(Error::invalid_config(
                    "timestamp_header",
                    "`timestamp_header` must differ from `signature_header`",
                ));
            }
            config.timestamp_header = Some(header);
        }
        if config.webhook_auth == WebhookAuthMode::Bearer
            && (self.signature_header.is_some() || self.timestamp_header.is_some())
        {
            return Err(Error::invalid_config(
                "webhook_auth",
                "signature and timestamp headers apply only to `hmac` webhooks",
            )
            .with_hint("drop signature_header and timestamp_header, or use webhook_auth `hmac`"));
        }
        Ok((
            config,
            GrafanaSecrets {
                api_token: self.api_token,
            },
        ))
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

    fn parts(value: Value) -> Result<(GrafanaConfig, GrafanaSecrets)> {
        let http = HttpClient::new(HttpConfig::default()).unwrap();
        ConnectForm::from_fields(fields(value))?.into_parts(&http)
    }

    #[test]
    fn missing_fields_name_their_field_with_the_reference_messages() {
        let error = parts(json!({"base_url": "https://acme.grafana.net"})).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("api_token"));
        assert_eq!(error.message(), "Grafana API token is required");
        let error = parts(json!({"api_token": "glsa_x"})).unwrap_err();
        assert_eq!(error.field(), Some("base_url"));
        assert_eq!(
            error.message(),
            "A valid Grafana baseUrl is required (https://your-stack.grafana.net)"
        );
        let error = ConnectForm::from_fields(fields(json!({"api_token": 12345678}))).unwrap_err();
        assert_eq!(error.field(), Some("api_token"));
        assert!(!error.to_string().contains("12345678"));
    }

    #[test]
    fn the_form_yields_settings_and_a_trimmed_token() {
        let (config, secrets) = parts(json!({
            "base_url": "https://acme.grafana.net/",
            "api_token": " glsa_abc ",
            "timestamp_header": "X-Grafana-Alerting-Timestamp",
        }))
        .unwrap();
        assert_eq!(config.base_url, "https://acme.grafana.net");
        assert_eq!(config.webhook_auth, WebhookAuthMode::Hmac);
        assert_eq!(config.signature_header, "X-Grafana-Alerting-Signature");
        assert_eq!(
            config.timestamp_header.as_deref(),
            Some("X-Grafana-Alerting-Timestamp")
        );
        assert_eq!(secrets.api_token.expose(), "glsa_abc");
        let (config, _) = parts(json!({
            "base_url": "https://acme.grafana.net",
            "api_token": "glsa_abc",
            "webhook_auth": "bearer",
        }))
        .unwrap();
        assert_eq!(config.webhook_auth, WebhookAuthMode::Bearer);
    }

    #[test]
    fn bad_webhook_settings_name_their_field() {
        for (form, field) in [
            (json!({"webhook_auth": "basic"}), "webhook_auth"),
            (
                json!({"signature_header": "Authorization"}),
                "signature_header",
            ),
            (
                json!({"timestamp_header": "x-grafana-alerting-signature"}),
                "timestamp_header",
            ),
            (
                json!({"webhook_auth": "bearer", "timestamp_header": "X-Ts"}),
                "webhook_auth",
            ),
            (json!({"allow_http": "yes"}), "allow_http"),
        ] {
            let mut value = json!({"base_url": "https://acme.grafana.net", "api_token": "glsa_x"});
            for (key, entry) in form.as_object().unwrap() {
                value[key] = entry.clone();
            }
            let error = parts(value).unwrap_err();
            assert_eq!(error.field(), Some(field), "{form}");
        }
    }

    #[test]
    fn the_schema_marks_token_and_url_required_and_the_token_write_only() {
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(schema["required"], json!(["base_url", "api_token"]));
        assert_eq!(schema["properties"]["api_token"]["writeOnly"], json!(true));
    }
}
