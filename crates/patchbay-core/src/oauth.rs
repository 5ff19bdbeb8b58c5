//! OAuth 2.0 as data: what a connector declares, and what the engine hands back.
//!
//! Connectors describe their provider with an [`OAuthSpec`]; the host's OAuth
//! engine runs the authorization-code flow (state, PKCE, code exchange, refresh)
//! from it and passes the resulting [`OAuthGrant`] to the connector's
//! `authenticate` hook.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use url::{Origin, Url};

use crate::error::{Error, ErrorKind, Result};
use crate::secret::SecretString;

/// How a client authenticates to the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuthStyle {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1, preferred).
    BasicHeader,
    /// `client_id` and `client_secret` in the form body.
    RequestBody,
    /// A JSON body with the client credentials (Atlassian).
    JsonBody,
}

/// A provider's OAuth 2.0 endpoints and habits, as data.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OAuthSpec {
    /// The authorization endpoint a person's browser is sent to.
    pub authorize_url: &'static str,
    /// The token endpoint (code exchange and refresh).
    pub token_url: &'static str,
    /// The token revocation endpoint, when the provider has a fixed one.
    pub revoke_url: Option<&'static str>,
    /// The provider API base the minted tokens are used against
    /// (`https://api.github.com`, `https://slack.com/api`).
    pub api_base_url: Option<&'static str>,
    /// Names of the options `POST .../oauth/{connector}/start` accepts; any other
    /// option is refused, so a tenant cannot steer the flow (empty: none).
    pub start_options: &'static [&'static str],
    /// The scopes requested.
    pub scopes: &'static [&'static str],
    /// How scopes are joined (`" "` in the standard, `","` for Slack).
    pub scope_separator: &'static str,
    /// Extra authorize parameters (Google's `access_type=offline`).
    pub extra_authorize_params: &'static [(&'static str, &'static str)],
    /// How the client authenticates to the token endpoint.
    pub client_auth: ClientAuthStyle,
    /// Whether the provider supports PKCE (S256 is then always sent).
    pub pkce: bool,
    /// Environment variables holding the client id, first set wins.
    pub client_id_env: &'static [&'static str],
    /// Environment variables holding the client secret, first set wins.
    pub client_secret_env: &'static [&'static str],
    /// The callback route, e.g. `/github/callback`; the redirect URI is the
    /// public URL plus this path.
    pub callback_path: &'static str,
    /// The `NEXT_PUBLIC_ENABLE_*` flag gating the OAuth flow alone, when the
    /// connector has other ways to connect that stay open while it is off.
    pub feature_flag: Option<&'static str>,
    /// What OAuth start and callback answer while that flag is off.
    pub disabled_message: Option<&'static str>,
}

impl OAuthSpec {
    /// Whether the OAuth flow's own feature flag (if any) is on.
    pub fn is_enabled(&self, env: &crate::env::ConnectorEnv) -> bool {
        self.feature_flag.is_none_or(|flag| env.flag(flag))
    }

    /// The scopes joined the way the provider wants them.
    pub fn scope_parameter(&self) -> String {
        self.scopes.join(self.scope_separator)
    }

    /// The origins (scheme, host, port) of the spec's fixed endpoints: authorize,
    /// token, revoke and API base. A URL that does not parse contributes none.
    pub fn origins(&self) -> Vec<Origin> {
        let mut origins = Vec::new();
        let urls = [
            Some(self.authorize_url),
            Some(self.token_url),
            self.revoke_url,
            self.api_base_url,
        ];
        for url in urls.into_iter().flatten() {
            let Ok(url) = Url::parse(url) else { continue };
            let origin = url.origin();
            if origin.is_tuple() && !origins.contains(&origin) {
                origins.push(origin);
            }
        }
        origins
    }
}

/// One region of a connector that has a separate OAuth client in each region
/// (OVHcloud: EU, CA, US), with that region's own endpoints and client variables.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OAuthRegion {
    /// The region's name, as the start option and the connection's settings give it (`ovh-eu`).
    pub name: &'static str,
    /// The region's endpoints and client variables; its callback path is the connector's.
    pub spec: OAuthSpec,
    /// The variable holding the exact redirect URI registered for this region's client;
    /// when set, it is sent unchanged instead of the public URL plus the callback path.
    pub redirect_uri_env: Option<&'static str>,
}

/// A connector's OAuth clients per region, registered with [`register_regional_oauth!`].
///
/// The region is chosen with the start option `option` and kept in the connection's
/// settings under the same name, so a refresh goes to the region that issued the token.
/// Each region's client credentials are only ever sent to that region's own endpoints.
#[derive(Debug)]
pub struct RegionalOAuth {
    /// The connector id.
    pub connector: &'static str,
    /// The start option (and settings field) naming the region (`region`).
    pub option: &'static str,
    /// The regions, in the order they are offered.
    pub regions: &'static [OAuthRegion],
    /// The message for a region whose client id or secret is unset; `{region}` is
    /// replaced by the region's name.
    pub not_configured_message: &'static str,
}

inventory::collect!(RegionalOAuth);

impl RegionalOAuth {
    /// The regional OAuth clients registered for `connector`, if it has any.
    pub fn of(connector: &str) -> Option<&'static RegionalOAuth> {
        inventory::iter::<RegionalOAuth>
            .into_iter()
            .find(|regional| regional.connector == connector)
    }

    /// The region named `name`.
    pub fn region(&self, name: &str) -> Option<&'static OAuthRegion> {
        self.regions.iter().find(|region| region.name == name)
    }
}

/// Registers a connector's per-region OAuth clients (a `const` [`RegionalOAuth`]).
///
/// ```ignore
/// patchbay_core::register_regional_oauth!(REGIONAL_OAUTH);
/// ```
#[macro_export]
macro_rules! register_regional_oauth {
    ($regional:path) => {
        $crate::__inventory::submit! { $regional }
    };
}

/// The OAuth client's own credentials (for token calls and revocation), pinned to
/// the origins of the provider's own endpoints.
///
/// The client secret belongs to the platform, not to a tenant, so it must never
/// follow a URL a tenant chose: it can only be read for a URL whose origin is one
/// of the spec's ([`OAuthClientCredentials::secret_for`]), and the HTTP client
/// refuses to send a request carrying it anywhere else.
#[derive(Clone)]
pub struct OAuthClientCredentials {
    /// The client id (public: it appears in authorize URLs).
    pub client_id: String,
    client_secret: SecretString,
    origins: Vec<Origin>,
}

impl OAuthClientCredentials {
    /// Credentials that may be sent only to the origins of `spec`'s endpoints.
    pub fn for_spec(
        client_id: impl Into<String>,
        client_secret: SecretString,
        spec: &OAuthSpec,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            origins: spec.origins(),
        }
    }

    /// The origins these credentials may be sent to.
    pub fn origins(&self) -> &[Origin] {
        &self.origins
    }

    /// `Ok` when `url` is on one of the provider's own origins; otherwise a
    /// `PermissionDenied` error naming the host.
    pub fn check_destination(&self, url: &Url) -> Result<()> {
        if self.origins.contains(&url.origin()) {
            return Ok(());
        }
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{}://{host}:{port}", url.scheme()),
            (Some(host), None) => format!("{}://{host}", url.scheme()),
            (None, _) => url.scheme().to_owned(),
        };
        let allowed: Vec<String> = self
            .origins
            .iter()
            .map(Origin::ascii_serialization)
            .collect();
        Err(Error::new(
            ErrorKind::PermissionDenied,
            format!(
                "refused to send the OAuth client credentials to {host}: client credentials are \
                 only sent to the provider's own endpoints ({})",
                allowed.join(", ")
            ),
        )
        .with_hint(
            "client credentials belong to the platform; requests to other hosts must not carry them",
        ))
    }

    /// The client secret, for a request to `url` on one of the provider's own
    /// origins; an error naming the host otherwise.
    ///
    /// For code that must place the secret itself (an OAuth library building the
    /// token request); the request must also be marked as carrying client
    /// credentials so the HTTP client checks where it really goes.
    pub fn secret_for(&self, url: &Url) -> Result<&SecretString> {
        self.check_destination(url)?;
        Ok(&self.client_secret)
    }
}

impl fmt::Debug for OAuthClientCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthClientCredentials")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret)
            .field(
                "origins",
                &self
                    .origins
                    .iter()
                    .map(Origin::ascii_serialization)
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Tokens obtained by a finished authorization-code flow.
#[derive(Debug, Clone)]
pub struct OAuthGrant {
    /// The access token.
    pub access_token: SecretString,
    /// The refresh token, when the provider issues one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, when the provider says.
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes granted (which may differ from those requested).
    pub scopes: Vec<String>,
    /// The token type (`bearer`, `bot`).
    pub token_type: Option<String>,
    /// Other fields of the token response with every token-like field removed
    /// (Slack's `team`, `bot_user_id`); safe to keep as metadata.
    pub extra: serde_json::Map<String, serde_json::Value>,
    /// Connector options given when the flow started (an Enterprise base URL).
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// How a connector words its provider's OAuth errors (Entra's `AADSTSnnnnn`
/// codes), where the engine's generic wording would hide the provider's fix.
/// Submitted with [`register_oauth_errors!`](crate::register_oauth_errors); the
/// OAuth engine asks it before wording a refused authorization or token request.
pub struct OAuthErrorWording {
    /// The connector id.
    pub connector: &'static str,
    /// `(error code, error description, redirect URI used)` to an error for people;
    /// `None` keeps the engine's wording.
    pub explain: fn(&str, Option<&str>, Option<&str>) -> Option<Error>,
}

inventory::collect!(OAuthErrorWording);

/// Submits a connector's [`OAuthErrorWording`].
///
/// ```ignore
/// patchbay_core::register_oauth_errors!(CONNECTOR_ID, explain_oauth_error);
/// ```
#[macro_export]
macro_rules! register_oauth_errors {
    ($connector:expr, $explain:path) => {
        $crate::__inventory::submit! {
            $crate::oauth::OAuthErrorWording { connector: $connector, explain: $explain }
        }
    };
}

/// The connector's own wording of an OAuth error, when it registered one.
pub fn connector_oauth_error(
    connector: &str,
    code: &str,
    description: Option<&str>,
    redirect_uri: Option<&str>,
) -> Option<Error> {
    inventory::iter::<OAuthErrorWording>
        .into_iter()
        .filter(|wording| wording.connector == connector)
        .find_map(|wording| (wording.explain)(code, description, redirect_uri))
}

/// What disconnecting did at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeOutcome {
    /// The provider revoked the grant.
    Revoked,
    /// The provider offers no revocation for these credentials.
    NotOffered,
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: OAuthSpec = OAuthSpec {
        authorize_url: "https://provider.example/oauth/authorize",
        token_url: "https://provider.example/oauth/token",
        revoke_url: Some("https://revoke.provider.example:8443/revoke"),
        api_base_url: Some("https://api.provider.example/v1"),
        start_options: &[],
        scopes: &["read"],
        scope_separator: " ",
        extra_authorize_params: &[],
        client_auth: ClientAuthStyle::BasicHeader,
        pkce: true,
        client_id_env: &["PROVIDER_CLIENT_ID"],
        client_secret_env: &["PROVIDER_CLIENT_SECRET"],
        callback_path: "/provider/callback",
        feature_flag: None,
        disabled_message: None,
    };

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn the_origins_are_those_of_the_spec_endpoints() {
        let origins: Vec<String> = SPEC
            .origins()
            .iter()
            .map(Origin::ascii_serialization)
            .collect();
        assert_eq!(
            origins,
            [
                "https://provider.example",
                "https://revoke.provider.example:8443",
                "https://api.provider.example"
            ]
        );
    }

    #[test]
    fn the_secret_is_given_out_only_for_the_provider_origins() {
        let credentials =
            OAuthClientCredentials::for_spec("id", SecretString::from("canary-5150"), &SPEC);
        for allowed in [
            "https://provider.example/oauth/token",
            "https://provider.example:443/other",
            "https://api.provider.example/applications/id/grant",
            "https://revoke.provider.example:8443/revoke",
        ] {
            assert_eq!(
                credentials.secret_for(&url(allowed)).unwrap().expose(),
                "canary-5150"
            );
        }
        for refused in [
            "https://attacker.example/oauth/token",
            "http://provider.example/oauth/token",
            "https://provider.example:8443/oauth/token",
            "https://revoke.provider.example/revoke",
            "https://provider.example.attacker.example/",
        ] {
            let error = credentials.secret_for(&url(refused)).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{refused}");
            let host = url(refused).host_str().unwrap().to_owned();
            assert!(error.message().contains(&host), "{error}");
            assert!(
                error
                    .message()
                    .contains("only sent to the provider's own endpoints"),
                "{error}"
            );
            assert!(!error.to_string().contains("canary-5150"));
        }
    }

    fn explain_for_test(code: &str, description: Option<&str>, uri: Option<&str>) -> Option<Error> {
        (code == "special").then(|| {
            Error::new(
                ErrorKind::InvalidConfig,
                format!(
                    "worded: {} {}",
                    description.unwrap_or("-"),
                    uri.unwrap_or("-")
                ),
            )
        })
    }

    crate::register_oauth_errors!("wording-test", explain_for_test);

    #[test]
    fn a_connector_words_only_its_own_oauth_errors() {
        let error =
            connector_oauth_error("wording-test", "special", Some("why"), Some("https://cb"))
                .unwrap();
        assert_eq!(error.message(), "worded: why https://cb");
        assert!(connector_oauth_error("wording-test", "other", None, None).is_none());
        assert!(connector_oauth_error("another-connector", "special", None, None).is_none());
    }

    #[test]
    fn debug_shows_the_origins_but_not_the_secret() {
        let credentials =
            OAuthClientCredentials::for_spec("id", SecretString::from("canary-5150"), &SPEC);
        let debug = format!("{credentials:?}");
        assert!(!debug.contains("canary-5150"), "{debug}");
        assert!(debug.contains("https://api.provider.example"), "{debug}");
    }
}
