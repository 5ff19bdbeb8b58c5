//! The API-token connect form, OAuth grants, and the credentials they yield.

use chrono::Utc;
use patchbay_core::{
    Error, FormFields, OAuthGrant, OAuthTokens, ProviderWebhookSecret, Result, SecretString,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::{AuthType, PagerdutyConfig, Region};
use crate::OAUTH_SCOPES;

/// What a user types to connect PagerDuty with a REST API key.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// A PagerDuty REST API key (Integrations > API Access Keys > Create New API Key); a read-only key is enough.
    pub api_token: SecretString,
    /// `us` (default) for accounts at app.pagerduty.com, `eu` for accounts at app.eu.pagerduty.com.
    #[serde(default)]
    pub region: Option<Region>,
    /// A name for this connection, shown on the Connectors page.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The signing secret PagerDuty shows when the Generic Webhooks (v3) subscription is created; more can be added later.
    #[serde(default)]
    pub webhook_secret: Option<SecretString>,
}

/// The secrets of a PagerDuty connection made with an API key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PagerdutySecrets {
    /// The REST API key, sent as `Authorization: Token token=<key>`; absent for OAuth
    /// connections, whose tokens live in the shared token slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token: Option<SecretString>,
}

/// What connecting with the form yields.
pub struct FormParts {
    /// Settings.
    pub config: PagerdutyConfig,
    /// The API key.
    pub secrets: PagerdutySecrets,
    /// The webhook signing secret, when one was given.
    pub webhook_secret: Option<ProviderWebhookSecret>,
}

/// Reads the region from a form field or OAuth option, naming the field when it is neither `us` nor `eu`.
pub fn region_field(field: &str, text: Option<&str>) -> Result<Region> {
    let text = text.unwrap_or_default();
    Region::parse(text).ok_or_else(|| {
        Error::invalid_config(field, format!("`{field}` must be `us` or `eu`"))
            .with_hint("use `eu` for accounts at app.eu.pagerduty.com, otherwise `us`")
    })
}

impl ConnectForm {
    /// Reads the form from submitted fields with the reference system's messages:
    /// "Token required" and "Invalid token format".
    pub fn from_fields(fields: &FormFields) -> Result<Self> {
        let token = fields.filled("api_token")?.ok_or_else(|| {
            Error::invalid_config("api_token", "Token required").with_hint(
                "create a key in PagerDuty: Integrations > API Access Keys > Create New API Key",
            )
        })?;
        if token.len() < 8 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(Error::invalid_config("api_token", "Invalid token format")
                .with_hint("paste the whole API key as PagerDuty shows it, without spaces"));
        }
        Ok(Self {
            api_token: SecretString::new(token),
            region: Some(region_field("region", fields.text("region")?)?),
            display_name: fields.filled("display_name")?,
            webhook_secret: fields.filled("webhook_secret")?.map(SecretString::new),
        })
    }

    /// Splits the form into settings, the API key and the first webhook secret.
    pub fn into_parts(self) -> FormParts {
        let mut config = PagerdutyConfig::new(AuthType::ApiToken, self.region.unwrap_or_default());
        config.display_name = self.display_name;
        FormParts {
            config,
            secrets: PagerdutySecrets {
                api_token: Some(self.api_token),
            },
            webhook_secret: self
                .webhook_secret
                .map(|secret| ProviderWebhookSecret::new(secret, Utc::now())),
        }
    }
}

/// Splits OAuth scope lists (`openid incidents.read`) into single scopes, sorted.
pub fn split_scopes<S: AsRef<str>>(scopes: &[S]) -> Vec<String> {
    let mut split: Vec<String> = scopes
        .iter()
        .flat_map(|scope| {
            scope
                .as_ref()
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    split.sort();
    split.dedup();
    split
}

/// The requested scopes PagerDuty did not grant (it drops unknown scopes silently
/// instead of refusing the grant). Classic apps grant `read` or `write`, which cover
/// every read scope.
pub fn missing_scopes(granted: &[String]) -> Vec<&'static str> {
    if granted
        .iter()
        .any(|scope| scope == "read" || scope == "write")
    {
        return Vec::new();
    }
    OAUTH_SCOPES
        .iter()
        .copied()
        .filter(|scope| !granted.iter().any(|granted| granted == scope))
        .collect()
}

/// Settings and tokens from a finished OAuth flow; the region comes from the
/// `region` start option.
pub fn from_grant(grant: OAuthGrant) -> Result<(PagerdutyConfig, OAuthTokens)> {
    if let Some(name) = grant.options.keys().find(|name| name.as_str() != "region") {
        return Err(Error::invalid_config(
            name.as_str(),
            format!("PagerDuty OAuth takes only the `region` option; `{name}` is not accepted"),
        ));
    }
    let region = region_field(
        "region",
        grant
            .options
            .get("region")
            .and_then(serde_json::Value::as_str),
    )?;
    if grant.access_token.is_empty() {
        return Err(
            Error::invalid_config("access_token", "PagerDuty returned no access token")
                .with_hint("start the PagerDuty connection again"),
        );
    }
    let mut config = PagerdutyConfig::new(AuthType::Oauth, region);
    config.granted_scopes = split_scopes(&grant.scopes);
    Ok((config, OAuthTokens::from_grant(&grant)))
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
    fn the_form_gives_the_guide_messages_naming_the_field() {
        let error = ConnectForm::from_fields(&fields(json!({}))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("api_token"));
        assert_eq!(error.message(), "Token required");
        let error =
            ConnectForm::from_fields(&fields(json!({"api_token": "abc def ghi"}))).unwrap_err();
        assert_eq!(error.message(), "Invalid token format");
        assert!(!error.to_string().contains("abc def"));
        let error = ConnectForm::from_fields(&fields(json!({"api_token": 123456789}))).unwrap_err();
        assert_eq!(error.field(), Some("api_token"));
        let error = ConnectForm::from_fields(&fields(
            json!({"api_token": "u+abcdefgh", "region": "https://x.example"}),
        ))
        .unwrap_err();
        assert_eq!(error.field(), Some("region"));
    }

    #[test]
    fn the_form_yields_a_token_connection_in_its_region() {
        let form = ConnectForm::from_fields(&fields(json!({
            "api_token": " u+abcdefgh ", "region": "eu", "display_name": "On-call",
            "webhook_secret": "whsec-1"
        })))
        .unwrap();
        let parts = form.into_parts();
        assert_eq!(parts.config.api_region, Region::Eu);
        assert_eq!(parts.config.auth_type, AuthType::ApiToken);
        assert_eq!(parts.config.display_name.as_deref(), Some("On-call"));
        assert_eq!(parts.secrets.api_token.unwrap().expose(), "u+abcdefgh");
        assert_eq!(parts.webhook_secret.unwrap().secret.expose(), "whsec-1");
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(schema["properties"]["api_token"]["writeOnly"], json!(true));
        assert_eq!(
            schema["properties"]["webhook_secret"]["writeOnly"],
            json!(true)
        );
    }

    #[test]
    fn a_narrower_grant_names_the_missing_scopes() {
        assert_eq!(
            missing_scopes(&["openid".to_owned()]).len(),
            OAUTH_SCOPES.len() - 1
        );
        assert!(missing_scopes(&["openid".to_owned(), "read".to_owned()]).is_empty());
        let all: Vec<String> = OAUTH_SCOPES.iter().map(|s| (*s).to_owned()).collect();
        assert!(missing_scopes(&all).is_empty());
        assert_eq!(
            split_scopes(&["openid incidents.read", "services.read"]),
            ["incidents.read", "openid", "services.read"]
        );
    }
}
