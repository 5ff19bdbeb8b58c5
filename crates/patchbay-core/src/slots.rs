//! The secret slots every connector shares: the access tokens the OAuth engine
//! refreshes and the webhook key the host generates. Connectors and the host reach
//! them through these types, never by field name, so a connector cannot store its
//! token under a name the refresh engine does not read.
//!
//! In a stored secret they sit at the top level (`access_token`, `refresh_token`,
//! `expires_at`, `token_type`, `webhook_secret`) beside the connector's own
//! secret fields, which may not use these names.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

use crate::oauth::OAuthGrant;
use crate::secret::{RevealedJson, SecretString};

const ACCESS_TOKEN: &str = "access_token";
const REFRESH_TOKEN: &str = "refresh_token";
const EXPIRES_AT: &str = "expires_at";
const TOKEN_TYPE: &str = "token_type";
const WEBHOOK_SECRET: &str = "webhook_secret";

/// The keys the shared slots take in a stored secret.
pub const RESERVED_SECRET_KEYS: &[&str] = &[
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    EXPIRES_AT,
    TOKEN_TYPE,
    WEBHOOK_SECRET,
];

/// The tokens a connection authenticates with: an OAuth grant's, or a personal
/// access token. The OAuth engine refreshes them in place.
#[derive(Debug, Clone)]
pub struct OAuthTokens {
    /// Sent to the provider on every call.
    pub access_token: SecretString,
    /// Exchanged for a new access token, when the provider issues one.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, when the provider says.
    pub expires_at: Option<DateTime<Utc>>,
    /// The token type the provider reported (`bearer`, `bot`).
    pub token_type: Option<String>,
}

impl OAuthTokens {
    /// Tokens holding only an access token that does not expire (a personal access token).
    pub fn bearer(access_token: SecretString) -> Self {
        Self {
            access_token,
            refresh_token: None,
            expires_at: None,
            token_type: None,
        }
    }

    /// The tokens of a finished authorization-code flow.
    pub fn from_grant(grant: &OAuthGrant) -> Self {
        Self {
            access_token: grant.access_token.clone(),
            refresh_token: grant.refresh_token.clone(),
            expires_at: grant.expires_at,
            token_type: grant.token_type.clone(),
        }
    }

    /// The tokens in a stored secret, if it holds an access token.
    pub fn read(secrets: &RevealedJson) -> Option<Self> {
        let fields = secrets.expose().as_object()?;
        let text = |key: &str| {
            fields
                .get(key)
                .and_then(Value::as_str)
                .filter(|text| !text.is_empty())
        };
        Some(Self {
            access_token: SecretString::from(text(ACCESS_TOKEN)?),
            refresh_token: text(REFRESH_TOKEN).map(SecretString::from),
            expires_at: text(EXPIRES_AT)
                .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
                .map(|time| time.with_timezone(&Utc)),
            token_type: text(TOKEN_TYPE).map(str::to_owned),
        })
    }

    /// `secrets` with these tokens written in and every other field kept; the
    /// stored refresh token is kept when these carry none (providers that do not
    /// rotate refresh tokens return none on refresh).
    pub fn written_into(&self, secrets: &RevealedJson) -> RevealedJson {
        let mut value = secrets.expose().clone();
        if !value.is_object() {
            value = Value::Object(Map::new());
        }
        if let Some(fields) = value.as_object_mut() {
            self.insert(fields, false);
        }
        RevealedJson::new(value)
    }

    fn insert(&self, fields: &mut Map<String, Value>, replace_refresh: bool) {
        fields.insert(
            ACCESS_TOKEN.into(),
            Value::String(self.access_token.expose().clone()),
        );
        match &self.refresh_token {
            Some(refresh) => {
                fields.insert(
                    REFRESH_TOKEN.into(),
                    Value::String(refresh.expose().clone()),
                );
            }
            None if replace_refresh => {
                fields.remove(REFRESH_TOKEN);
            }
            None => {}
        }
        match self.expires_at {
            Some(time) => {
                fields.insert(
                    EXPIRES_AT.into(),
                    Value::String(time.to_rfc3339_opts(SecondsFormat::Secs, true)),
                );
            }
            None => {
                fields.remove(EXPIRES_AT);
            }
        }
        match &self.token_type {
            Some(kind) => {
                fields.insert(TOKEN_TYPE.into(), Value::String(kind.clone()));
            }
            None if replace_refresh => {
                fields.remove(TOKEN_TYPE);
            }
            None => {}
        }
    }
}

/// The webhook key in a stored secret (the HMAC key of signed deliveries).
pub fn webhook_secret(secrets: &RevealedJson) -> Option<SecretString> {
    secrets
        .expose()
        .get(WEBHOOK_SECRET)
        .and_then(Value::as_str)
        .filter(|text| !text.is_empty())
        .map(SecretString::from)
}

/// `secrets` with the webhook key set to `secret` and every other field kept.
pub fn with_webhook_secret(secrets: &RevealedJson, secret: &SecretString) -> RevealedJson {
    let mut value = secrets.expose().clone();
    if !value.is_object() {
        value = Value::Object(Map::new());
    }
    if let Some(fields) = value.as_object_mut() {
        fields.insert(
            WEBHOOK_SECRET.into(),
            Value::String(secret.expose().clone()),
        );
    }
    RevealedJson::new(value)
}

/// A stored secret split into the connector's own fields and the shared slots.
pub(crate) struct SplitSecrets {
    pub(crate) own: RevealedJson,
    pub(crate) tokens: Option<OAuthTokens>,
    pub(crate) webhook_secret: Option<SecretString>,
}

/// Splits a stored secret into the connector's own fields and the shared slots.
pub(crate) fn split(secrets: &RevealedJson) -> SplitSecrets {
    let tokens = OAuthTokens::read(secrets);
    let webhook_secret = webhook_secret(secrets);
    let mut own = secrets.expose().clone();
    if let Some(fields) = own.as_object_mut() {
        for key in RESERVED_SECRET_KEYS {
            fields.remove(*key);
        }
    }
    SplitSecrets {
        own: RevealedJson::new(own),
        tokens,
        webhook_secret,
    }
}

/// Joins a connector's own secret fields and the shared slots into one stored
/// secret. Fails, naming the key, when the connector's own fields use a reserved key.
pub(crate) fn join(
    own: RevealedJson,
    tokens: Option<&OAuthTokens>,
    webhook_secret: Option<&SecretString>,
) -> std::result::Result<RevealedJson, &'static str> {
    let mut value = own.into_exposed();
    if value.is_null() {
        value = Value::Object(Map::new());
    }
    let Some(fields) = value.as_object_mut() else {
        return Err("the connector's secrets are not a JSON object");
    };
    if let Some(key) = RESERVED_SECRET_KEYS
        .iter()
        .find(|key| fields.contains_key(**key))
    {
        return Err(key);
    }
    if let Some(tokens) = tokens {
        tokens.insert(fields, true);
    }
    if let Some(secret) = webhook_secret {
        fields.insert(
            WEBHOOK_SECRET.into(),
            Value::String(secret.expose().clone()),
        );
    }
    Ok(RevealedJson::new(value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slots_round_trip_beside_the_connectors_own_fields() {
        let tokens = OAuthTokens {
            access_token: "at".into(),
            refresh_token: Some("rt".into()),
            expires_at: Some("2030-01-01T00:00:00Z".parse().unwrap()),
            token_type: Some("bearer".into()),
        };
        let stored = join(
            RevealedJson::new(json!({"api_key": "k"})),
            Some(&tokens),
            Some(&"whsec".into()),
        )
        .unwrap();
        assert_eq!(
            stored.expose(),
            &json!({
                "api_key": "k",
                "access_token": "at",
                "refresh_token": "rt",
                "expires_at": "2030-01-01T00:00:00Z",
                "token_type": "bearer",
                "webhook_secret": "whsec",
            })
        );
        let parts = split(&stored);
        assert_eq!(parts.own.expose(), &json!({"api_key": "k"}));
        let read = parts.tokens.unwrap();
        assert_eq!(read.access_token.expose(), "at");
        assert_eq!(read.refresh_token.unwrap().expose(), "rt");
        assert_eq!(read.expires_at, tokens.expires_at);
        assert_eq!(parts.webhook_secret.unwrap().expose(), "whsec");
    }

    #[test]
    fn a_connector_field_may_not_take_a_reserved_key() {
        let refused = join(RevealedJson::new(json!({"access_token": "x"})), None, None);
        assert_eq!(refused.err(), Some("access_token"));
    }

    #[test]
    fn refreshing_keeps_the_old_refresh_token_and_other_fields() {
        let stored = RevealedJson::new(json!({
            "access_token": "old", "refresh_token": "keep", "webhook_secret": "w",
            "expires_at": "2020-01-01T00:00:00Z"
        }));
        let fresh = OAuthTokens::bearer("new".into());
        let written = fresh.written_into(&stored);
        assert_eq!(
            written.expose(),
            &json!({"access_token": "new", "refresh_token": "keep", "webhook_secret": "w"})
        );
        let secret = with_webhook_secret(&written, &"w2".into());
        assert_eq!(webhook_secret(&secret).unwrap().expose(), "w2");
        assert_eq!(secret.expose()["access_token"], "new");
    }
}
