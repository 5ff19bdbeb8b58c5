//! The secret slots every connector shares: the access tokens the OAuth engine
//! refreshes and the webhook key the host generates. Connectors and the host reach
//! them through these types, never by field name, so a connector cannot store its
//! token under a name the refresh engine does not read.
//!
//! In a stored secret they sit at the top level (`access_token`, `refresh_token`,
//! `expires_at`, `token_type`, `webhook_secret`, `webhook_secrets`) beside the connector's own
//! secret fields, which may not use these names.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, ErrorKind};
use crate::oauth::OAuthGrant;
use crate::secret::{RevealedJson, SecretString};

const ACCESS_TOKEN: &str = "access_token";
const REFRESH_TOKEN: &str = "refresh_token";
const EXPIRES_AT: &str = "expires_at";
const TOKEN_TYPE: &str = "token_type";
const WEBHOOK_SECRET: &str = "webhook_secret";
const WEBHOOK_SECRETS: &str = "webhook_secrets";

/// The most provider-issued signing secrets one connection keeps.
pub const MAX_WEBHOOK_SECRETS: usize = 5;

/// The keys the shared slots take in a stored secret.
pub const RESERVED_SECRET_KEYS: &[&str] = &[
    ACCESS_TOKEN,
    REFRESH_TOKEN,
    EXPIRES_AT,
    TOKEN_TYPE,
    WEBHOOK_SECRET,
    WEBHOOK_SECRETS,
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

/// A webhook signing secret the provider issued (PagerDuty's subscription secret),
/// one entry of the `webhook_secrets` list. `Debug` shows the id and date only.
#[derive(Debug, Clone)]
pub struct ProviderWebhookSecret {
    /// A stable id naming the secret in the API without revealing it (`whs_…`).
    pub id: String,
    /// The secret, used as the provider gave it.
    pub secret: SecretString,
    /// When it was added.
    pub added_at: DateTime<Utc>,
}

impl ProviderWebhookSecret {
    /// An entry for `secret` added at `added_at`, with its id derived from it.
    pub fn new(secret: SecretString, added_at: DateTime<Utc>) -> Self {
        Self {
            id: webhook_secret_id(&secret),
            secret,
            added_at,
        }
    }

    /// The entry as stored: `{id, secret, added_at}`.
    fn stored(&self) -> Value {
        json!({
            "id": self.id,
            "secret": self.secret.expose(),
            "added_at": self.added_at.to_rfc3339_opts(SecondsFormat::Secs, true),
        })
    }

    fn read(value: &Value) -> Option<Self> {
        let secret = value
            .get("secret")?
            .as_str()
            .filter(|text| !text.is_empty())?;
        let secret = SecretString::from(secret);
        Some(Self {
            id: value
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| webhook_secret_id(&secret), str::to_owned),
            added_at: value
                .get("added_at")
                .and_then(Value::as_str)
                .and_then(|time| DateTime::parse_from_rfc3339(time).ok())
                .map_or(DateTime::UNIX_EPOCH, |time| time.with_timezone(&Utc)),
            secret,
        })
    }
}

/// The id of a provider-issued signing secret: `whs_` and 64 bits of a domain-separated
/// SHA-256 of it, so the same secret added twice is recognised without storing or
/// showing anything that would let it be recovered.
pub fn webhook_secret_id(secret: &SecretString) -> String {
    let digest = Sha256::new()
        .chain_update(b"patchbay webhook secret id\0")
        .chain_update(secret.expose().as_bytes())
        .finalize();
    format!("whs_{}", hex::encode(&digest[..8]))
}

/// The provider-issued signing secrets in a stored secret, oldest first.
pub fn webhook_secrets(secrets: &RevealedJson) -> Vec<ProviderWebhookSecret> {
    secrets
        .expose()
        .get(WEBHOOK_SECRETS)
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(ProviderWebhookSecret::read)
                .collect()
        })
        .unwrap_or_default()
}

fn with_webhook_secret_list(
    secrets: &RevealedJson,
    list: &[ProviderWebhookSecret],
) -> RevealedJson {
    let mut value = secrets.expose().clone();
    if !value.is_object() {
        value = Value::Object(Map::new());
    }
    if let Some(fields) = value.as_object_mut() {
        if list.is_empty() {
            fields.remove(WEBHOOK_SECRETS);
        } else {
            fields.insert(
                WEBHOOK_SECRETS.into(),
                Value::Array(list.iter().map(ProviderWebhookSecret::stored).collect()),
            );
        }
    }
    RevealedJson::new(value)
}

/// `secrets` with `secret` appended to the provider-issued signing secrets and every
/// other field kept. A secret already there is a `Conflict` naming its id; more than
/// [`MAX_WEBHOOK_SECRETS`] is `InvalidInput`.
pub fn with_added_webhook_secret(
    secrets: &RevealedJson,
    secret: &ProviderWebhookSecret,
) -> Result<RevealedJson, Error> {
    let mut list = webhook_secrets(secrets);
    if list.iter().any(|existing| existing.id == secret.id) {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("this signing secret was already added as {}", secret.id),
        )
        .with_field("secret")
        .with_hint("nothing to do: deliveries signed with it are accepted"));
    }
    if list.len() >= MAX_WEBHOOK_SECRETS {
        return Err(Error::invalid_input(
            "secret",
            format!("a connection keeps at most {MAX_WEBHOOK_SECRETS} webhook signing secrets"),
        )
        .with_hint("remove a secret the provider no longer signs with, then add the new one"));
    }
    list.push(secret.clone());
    Ok(with_webhook_secret_list(secrets, &list))
}

/// `secrets` without the provider-issued signing secret `id`, every other field kept;
/// `None` when there is no such secret.
pub fn without_webhook_secret(secrets: &RevealedJson, id: &str) -> Option<RevealedJson> {
    let mut list = webhook_secrets(secrets);
    let before = list.len();
    list.retain(|existing| existing.id != id);
    (list.len() != before).then(|| with_webhook_secret_list(secrets, &list))
}

/// A stored secret split into the connector's own fields and the shared slots.
pub(crate) struct SplitSecrets {
    pub(crate) own: RevealedJson,
    pub(crate) tokens: Option<OAuthTokens>,
    pub(crate) webhook_secret: Option<SecretString>,
    pub(crate) webhook_secrets: Vec<ProviderWebhookSecret>,
}

/// Splits a stored secret into the connector's own fields and the shared slots.
pub(crate) fn split(secrets: &RevealedJson) -> SplitSecrets {
    let tokens = OAuthTokens::read(secrets);
    let webhook_secret = webhook_secret(secrets);
    let webhook_secrets = webhook_secrets(secrets);
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
        webhook_secrets,
    }
}

/// Joins a connector's own secret fields and the shared slots into one stored
/// secret. Fails, naming the key, when the connector's own fields use a reserved key.
pub(crate) fn join(
    own: RevealedJson,
    tokens: Option<&OAuthTokens>,
    webhook_secret: Option<&SecretString>,
    webhook_secrets: &[ProviderWebhookSecret],
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
    if !webhook_secrets.is_empty() {
        fields.insert(
            WEBHOOK_SECRETS.into(),
            Value::Array(
                webhook_secrets
                    .iter()
                    .map(ProviderWebhookSecret::stored)
                    .collect(),
            ),
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
            &[],
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
        let refused = join(
            RevealedJson::new(json!({"access_token": "x"})),
            None,
            None,
            &[],
        );
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

    #[test]
    fn provider_secrets_are_a_list_added_and_removed_by_id() {
        let at: DateTime<Utc> = "2026-01-02T03:04:05Z".parse().unwrap();
        let first = ProviderWebhookSecret::new("secret-one".into(), at);
        let second = ProviderWebhookSecret::new("secret-two".into(), at);
        assert!(
            first.id.starts_with("whs_") && first.id.len() == 20,
            "{}",
            first.id
        );
        assert!(!first.id.contains("secret-one"));
        assert!(!format!("{first:?}").contains("secret-one"));
        let stored = RevealedJson::new(json!({"access_token": "at"}));
        let stored = with_added_webhook_secret(&stored, &first).unwrap();
        let stored = with_added_webhook_secret(&stored, &second).unwrap();
        let again = with_added_webhook_secret(&stored, &first).unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Conflict);
        assert!(!again.to_string().contains("secret-one"));
        let ids: Vec<String> = webhook_secrets(&stored).into_iter().map(|s| s.id).collect();
        assert_eq!(ids, [first.id.clone(), second.id.clone()]);
        assert_eq!(stored.expose()["access_token"], "at");

        let parts = split(&stored);
        assert_eq!(parts.webhook_secrets.len(), 2);
        assert_eq!(parts.own.expose(), &json!({}));
        let joined = join(
            parts.own,
            parts.tokens.as_ref(),
            None,
            &parts.webhook_secrets,
        )
        .unwrap();
        assert_eq!(joined.expose(), stored.expose());

        let removed = without_webhook_secret(&stored, &first.id).unwrap();
        let left = webhook_secrets(&removed);
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].secret.expose(), "secret-two");
        assert_eq!(left[0].added_at, at);
        assert!(without_webhook_secret(&removed, &first.id).is_none());
        let empty = without_webhook_secret(&removed, &second.id).unwrap();
        assert!(empty.expose().get("webhook_secrets").is_none());
    }
}
