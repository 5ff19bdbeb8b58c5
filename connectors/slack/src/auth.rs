//! Turning a finished `oauth.v2.access` exchange into connection settings and secrets.

use patchbay_core::{Error, OAuthGrant, OAuthTokens, Result, SecretString};
use serde_json::{Map, Value};

use crate::config::SlackConfig;
use crate::CONNECTOR_ID;

/// The bot scopes the setup guide asks for, in its order; requested at install.
pub const BOT_SCOPES: &[&str] = &[
    "chat:write",
    "channels:read",
    "channels:history",
    "channels:join",
    "app_mentions:read",
    "users:read",
];

/// Reads settings and tokens from Slack's `oauth.v2.access` answer.
pub fn from_grant(grant: OAuthGrant) -> Result<(SlackConfig, OAuthTokens)> {
    if grant.access_token.is_empty() {
        return Err(grant_error(
            "access_token",
            "Slack's oauth.v2.access answer has no bot access token",
        ));
    }
    let user_token = grant.token_type.as_deref() == Some("user")
        || grant.access_token.expose().starts_with("xoxp-");
    if user_token {
        return Err(grant_error(
            "access_token",
            "Slack issued a user token, but the connector needs the bot token (`xoxb-`)",
        ));
    }
    let extra = &grant.extra;
    let team_id = nested_text(extra, "team", "id").ok_or_else(|| {
        grant_error(
            "team",
            "Slack's oauth.v2.access answer has no `team.id`, so events cannot be routed",
        )
    })?;
    let mut granted_scopes = grant.scopes.clone();
    if granted_scopes.is_empty() {
        if let Some(scope) = extra.get("scope").and_then(Value::as_str) {
            granted_scopes = split_scopes(scope);
        }
    }
    let config = SlackConfig {
        team_id,
        team_name: nested_text(extra, "team", "name"),
        enterprise_id: nested_text(extra, "enterprise", "id"),
        bot_user_id: text(extra, "bot_user_id"),
        app_id: text(extra, "app_id"),
        installer_user_id: nested_text(extra, "authed_user", "id"),
        granted_scopes,
    };
    // The bot token (`xoxb-…`, or `xoxe.xoxb-…` with token rotation, which also
    // issues a refresh token and an expiry).
    let mut tokens = OAuthTokens::from_grant(&grant);
    tokens.access_token = SecretString::new(grant.access_token.expose().trim().to_owned());
    Ok((config, tokens))
}

/// Splits Slack's comma-separated scope list (`X-OAuth-Scopes`, `scope`).
pub fn split_scopes(list: &str) -> Vec<String> {
    list.split([',', ' '])
        .map(str::trim)
        .filter(|scope| !scope.is_empty())
        .map(str::to_owned)
        .collect()
}

fn grant_error(field: &str, message: &str) -> Error {
    Error::invalid_config(field, message)
        .with_connector(CONNECTOR_ID)
        .with_hint("reinstall the Slack app through the OAuth flow (Connect Slack) and make sure it requests the bot scopes")
}

fn text(fields: &Map<String, Value>, key: &str) -> Option<String> {
    fields
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .map(str::to_owned)
}

fn nested_text(fields: &Map<String, Value>, object: &str, key: &str) -> Option<String> {
    fields
        .get(object)
        .and_then(Value::as_object)
        .and_then(|inner| text(inner, key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn grant(token: &str, extra: Value) -> OAuthGrant {
        OAuthGrant {
            access_token: token.into(),
            refresh_token: None,
            expires_at: None,
            scopes: Vec::new(),
            token_type: Some("bot".to_owned()),
            extra: extra.as_object().cloned().unwrap_or_default(),
            options: Map::new(),
        }
    }

    #[test]
    fn the_grant_fills_every_setting() {
        let (config, tokens) = from_grant(grant(
            "xoxb-1-2-abc",
            json!({
                "team": {"id": "T1", "name": "Ops"},
                "enterprise": null,
                "bot_user_id": "U9",
                "app_id": "A1",
                "authed_user": {"id": "U2"},
                "scope": "chat:write,users:read",
            }),
        ))
        .unwrap();
        assert_eq!(config.team_id, "T1");
        assert_eq!(config.team_name.as_deref(), Some("Ops"));
        assert_eq!(config.enterprise_id, None);
        assert_eq!(config.bot_user_id.as_deref(), Some("U9"));
        assert_eq!(config.installer_user_id.as_deref(), Some("U2"));
        assert_eq!(config.granted_scopes, ["chat:write", "users:read"]);
        assert_eq!(tokens.access_token.expose(), "xoxb-1-2-abc");
    }

    #[test]
    fn a_grant_without_team_or_with_a_user_token_is_rejected() {
        let error = from_grant(grant("xoxb-1", json!({}))).unwrap_err();
        assert_eq!(error.field(), Some("team"));
        let error = from_grant(grant("xoxp-1", json!({"team": {"id": "T1"}}))).unwrap_err();
        assert_eq!(error.field(), Some("access_token"));
        assert!(!error.to_string().contains("xoxp-1"));
    }
}
