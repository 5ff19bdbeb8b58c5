//! The Data Center connect form, Cloud OAuth grants, and the credentials they yield.
//!
//! Both kinds of token live in the shared token slot: the OAuth engine refreshes
//! Cloud tokens there (Atlassian rotates refresh tokens), and a personal access
//! token is stored as a bearer token without expiry.

use patchbay_core::{Error, FormFields, OAuthGrant, OAuthTokens, Result, SecretString};
use patchbay_http::HttpClient;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::config::{normalize_base_url, ConfluenceConfig};

/// The OAuth start option naming the Cloud site to connect when the Atlassian
/// account can reach several.
pub const SITE_OPTION: &str = "site";

/// What a user types to connect Confluence Data Center with a personal access token.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// Base URL of your Confluence Data Center, e.g. https://confluence.yourcompany.com (https is assumed). Private addresses need the operator's PATCHBAY_ALLOWED_PRIVATE_NETWORKS.
    pub base_url: String,
    /// A Confluence personal access token (profile > Settings > Personal Access Tokens).
    pub personal_access_token: SecretString,
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        let token = fields.filled("personal_access_token")?.ok_or_else(|| {
            Error::invalid_config("personal_access_token", "Confluence PAT token is required")
                .with_hint(
                "create one in Confluence under your profile > Settings > Personal Access Tokens",
            )
        })?;
        let base_url = fields.text("base_url")?.unwrap_or_default().to_owned();
        Ok(Self {
            base_url,
            personal_access_token: SecretString::new(token),
        })
    }

    /// Splits the form into settings (the base URL normalised and checked against
    /// `http`'s address policy) and the token.
    pub fn into_parts(self, http: &HttpClient) -> Result<(ConfluenceConfig, OAuthTokens)> {
        let base_url = normalize_base_url(&self.base_url, http)?;
        Ok((
            ConfluenceConfig::data_center(base_url),
            OAuthTokens::bearer(self.personal_access_token),
        ))
    }
}

/// Settings and tokens from a finished Atlassian OAuth flow. The site is chosen
/// by validation from `accessible-resources`, using the `site` start option when
/// the account reaches several.
pub fn from_grant(grant: OAuthGrant) -> Result<(ConfluenceConfig, OAuthTokens)> {
    if grant.access_token.is_empty() {
        return Err(
            Error::invalid_config("access_token", "Confluence returned no access token")
                .with_hint("start the Confluence connection again"),
        );
    }
    let mut requested_site = None;
    for (name, value) in &grant.options {
        match (name.as_str(), value) {
            (_, Value::Null) => {}
            (SITE_OPTION, Value::String(site)) if !site.trim().is_empty() => {
                requested_site = Some(site.trim().to_owned());
            }
            (SITE_OPTION, Value::String(_)) => {}
            (SITE_OPTION, _) => {
                return Err(Error::invalid_config(
                    SITE_OPTION,
                    "the `site` option must be the site URL (https://yourcompany.atlassian.net) or its cloud id",
                ))
            }
            (other, _) => {
                return Err(Error::invalid_config(
                    other,
                    format!("Confluence OAuth takes only the `site` option; `{other}` is not accepted"),
                ))
            }
        }
    }
    let scopes = grant
        .scopes
        .iter()
        .flat_map(|scope| scope.split_whitespace())
        .map(str::to_owned)
        .collect();
    Ok((
        ConfluenceConfig::cloud(requested_site, scopes),
        OAuthTokens::from_grant(&grant),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuthType;
    use patchbay_core::ErrorKind;
    use serde_json::json;

    fn fields(value: Value) -> FormFields {
        match value {
            Value::Object(map) => FormFields(map),
            other => panic!("test forms are objects, got {other}"),
        }
    }

    fn grant(options: Value) -> OAuthGrant {
        OAuthGrant {
            access_token: "at".into(),
            refresh_token: None,
            expires_at: None,
            scopes: vec!["read:page:confluence offline_access".to_owned()],
            token_type: None,
            extra: serde_json::Map::new(),
            options: options.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn missing_fields_name_their_field() {
        let error =
            ConnectForm::from_fields(fields(json!({"base_url": "https://wiki.example.com"})))
                .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("personal_access_token"));
        let error = ConnectForm::from_fields(fields(json!({"personal_access_token": 12345678})))
            .unwrap_err();
        assert_eq!(error.field(), Some("personal_access_token"));
        assert!(!error.to_string().contains("12345678"));
        let http = HttpClient::new(patchbay_http::HttpConfig::default()).unwrap();
        let error = ConnectForm::from_fields(fields(json!({"personal_access_token": "pat"})))
            .unwrap()
            .into_parts(&http)
            .unwrap_err();
        assert_eq!(error.field(), Some("base_url"));
    }

    #[test]
    fn the_form_yields_a_data_center_config_and_a_bearer_token() {
        let form = ConnectForm::from_fields(fields(
            json!({"base_url": "confluence.example.com/", "personal_access_token": " pat-1 "}),
        ))
        .unwrap();
        let http = HttpClient::new(patchbay_http::HttpConfig::default()).unwrap();
        let (config, tokens) = form.into_parts(&http).unwrap();
        assert_eq!(config.auth_type, AuthType::Pat);
        assert_eq!(
            config.base_url.as_deref(),
            Some("https://confluence.example.com")
        );
        assert_eq!(tokens.access_token.expose(), "pat-1");
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(
            schema["properties"]["personal_access_token"]["writeOnly"],
            json!(true)
        );
    }

    #[test]
    fn grants_keep_the_site_option_and_refuse_others() {
        let (config, _) = from_grant(grant(json!({"site": " https://b.atlassian.net "}))).unwrap();
        assert_eq!(
            config.requested_site.as_deref(),
            Some("https://b.atlassian.net")
        );
        assert_eq!(
            config.granted_scopes,
            ["read:page:confluence", "offline_access"]
        );
        let error = from_grant(grant(json!({"api_url": "https://evil.example"}))).unwrap_err();
        assert_eq!(error.field(), Some("api_url"));
        let error = from_grant(grant(json!({"site": 7}))).unwrap_err();
        assert_eq!(error.field(), Some("site"));
        let mut empty = grant(json!({}));
        empty.access_token = "".into();
        assert_eq!(from_grant(empty).unwrap_err().field(), Some("access_token"));
    }
}
