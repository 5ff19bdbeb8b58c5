//! OAuth 2.0 as data: what a connector declares, and what the engine hands back.
//!
//! Connectors describe their provider with an [`OAuthSpec`]; the host's OAuth
//! engine runs the authorization-code flow (state, PKCE, code exchange, refresh)
//! from it and passes the resulting [`OAuthGrant`] to the connector's
//! `authenticate` hook.

use chrono::{DateTime, Utc};
use serde::Serialize;

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
}

impl OAuthSpec {
    /// The scopes joined the way the provider wants them.
    pub fn scope_parameter(&self) -> String {
        self.scopes.join(self.scope_separator)
    }
}

/// The OAuth client's own credentials (for token calls and revocation).
#[derive(Debug, Clone)]
pub struct OAuthClientCredentials {
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: SecretString,
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

/// What disconnecting did at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RevokeOutcome {
    /// The provider revoked the grant.
    Revoked,
    /// The provider offers no revocation for these credentials.
    NotOffered,
}
