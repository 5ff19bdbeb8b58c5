//! The personal-access-token connect form, OAuth grants, and the tokens they yield.

use patchbay_core::{Error, FormFields, OAuthGrant, OAuthTokens, Result, SecretString};
use patchbay_http::HttpClient;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::config::{normalize_api_url, GitHubConfig, TokenKind, DEFAULT_API_URL};

/// What a user types to connect GitHub with a personal access token.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct ConnectForm {
    /// A GitHub personal access token (fine-grained recommended: read-only Contents, Metadata, Pull requests, Actions and Deployments).
    pub token: SecretString,
    /// GitHub Enterprise Server API base, e.g. https://ghe.example.com/api/v3; leave empty for github.com. Private addresses need the operator's PATCHBAY_ALLOWED_PRIVATE_NETWORKS.
    #[serde(default)]
    pub api_url: Option<String>,
}

impl ConnectForm {
    /// Reads the form from submitted fields, naming the field at fault.
    pub fn from_fields(fields: FormFields) -> Result<Self> {
        let token = fields.text("token")?.unwrap_or_default();
        let form = Self {
            token: SecretString::new(token.trim().to_owned()),
            api_url: fields.text("api_url")?.map(str::to_owned),
        };
        if form.token.is_empty() {
            return Err(
                Error::invalid_config("token", "GitHub personal access token is required")
                    .with_hint(
                    "create one at GitHub > Settings > Developer settings > Personal access tokens",
                ),
            );
        }
        Ok(form)
    }

    /// Splits the form into settings (with the API base resolved and checked
    /// against `http`'s address policy) and the token.
    pub fn into_parts(self, http: &HttpClient) -> Result<(GitHubConfig, OAuthTokens)> {
        let api_url = normalize_api_url(self.api_url.as_deref(), http)?;
        Ok((
            GitHubConfig::new(api_url, TokenKind::Pat, Vec::new()),
            OAuthTokens::bearer(self.token),
        ))
    }
}

/// Settings and secrets for an OAuth App grant, always against the public API.
///
/// The OAuth App belongs to github.com, so a grant naming another API base (an
/// option a tenant could set) is refused: GitHub Enterprise Server connects with
/// a personal access token.
pub fn from_grant(grant: OAuthGrant) -> Result<(GitHubConfig, OAuthTokens)> {
    if let Some(name) = grant
        .options
        .iter()
        .find(|(_, value)| !value.is_null())
        .map(|(name, _)| name)
    {
        return Err(Error::invalid_config(
            name.as_str(),
            format!(
                "GitHub OAuth connections are for github.com only and take no options; \
                 `{name}` is not accepted"
            ),
        )
        .with_hint(
            "connect GitHub Enterprise Server with a personal access token and its api_url",
        ));
    }
    if grant.access_token.is_empty() {
        return Err(
            Error::invalid_config("access_token", "GitHub returned no access token")
                .with_hint("start the GitHub connection again"),
        );
    }
    Ok((
        GitHubConfig::new(
            DEFAULT_API_URL.to_owned(),
            TokenKind::Oauth,
            split_scopes(&grant.scopes),
        ),
        OAuthTokens::from_grant(&grant),
    ))
}

/// Splits scope lists that GitHub writes comma-separated (`repo,read:org`) and the
/// `X-OAuth-Scopes` header writes as `repo, read:org`.
pub fn split_scopes<S: AsRef<str>>(scopes: &[S]) -> Vec<String> {
    let mut split: Vec<String> = scopes
        .iter()
        .flat_map(|scope| {
            scope
                .as_ref()
                .split(|c: char| c == ',' || c.is_whitespace())
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|scope| !scope.is_empty())
        .collect();
    split.sort();
    split.dedup();
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;
    use serde_json::json;
    use serde_json::Value;

    fn fields(value: Value) -> FormFields {
        match value {
            Value::Object(map) => FormFields(map),
            _ => unreachable!("test forms are objects"),
        }
    }

    #[test]
    fn a_missing_token_names_the_field_with_the_guide_message() {
        let error = ConnectForm::from_fields(fields(json!({"token": "  "}))).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("token"));
        assert_eq!(error.message(), "GitHub personal access token is required");
        let error = ConnectForm::from_fields(fields(json!({"token": 12345678}))).unwrap_err();
        assert_eq!(error.field(), Some("token"));
        assert!(!error.to_string().contains("12345678"));
    }

    #[test]
    fn the_form_yields_a_pat_config_and_a_trimmed_token() {
        let form = ConnectForm::from_fields(fields(
            json!({"token": " ghp_abc ", "api_url": "https://ghe.example.com/api/v3/"}),
        ))
        .unwrap();
        let http = HttpClient::new(patchbay_http::HttpConfig::default()).unwrap();
        let (config, tokens) = form.into_parts(&http).unwrap();
        assert_eq!(config.api_url, "https://ghe.example.com/api/v3");
        assert_eq!(config.auth_kind, TokenKind::Pat);
        assert_eq!(tokens.access_token.expose(), "ghp_abc");
    }

    #[test]
    fn scopes_split_on_commas_and_spaces() {
        assert_eq!(
            split_scopes(&["repo,read:org", "read:user repo"]),
            vec!["read:org", "read:user", "repo"]
        );
        assert!(split_scopes::<&str>(&[]).is_empty());
    }

    #[test]
    fn the_schema_marks_the_token_required_and_write_only() {
        let schema = serde_json::to_value(schemars::schema_for!(ConnectForm)).unwrap();
        assert_eq!(schema["required"], json!(["token"]));
        assert_eq!(schema["properties"]["token"]["writeOnly"], json!(true));
        assert!(schema["properties"]["api_url"].get("writeOnly").is_none());
    }
}
