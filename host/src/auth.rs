//! Who is calling: bearer API keys, trusted gateway headers, or an embedder's own extractor.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use base64::Engine;
use chrono::{DateTime, Utc};
use patchbay_core::{Result, SecretString, Tenant};
use patchbay_store::{ApiKeyRecord, RecordStore, API_KEY_USE_PRECISION};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

/// The prefix of every Patchbay API key, so leaked keys are easy to scan for.
pub const API_KEY_PREFIX: &str = "pbk_";

/// How many leading characters of a key are stored and shown to tell keys apart:
/// `pbk_` and 8 random characters (48 bits), far too few to authenticate.
pub const API_KEY_SHOWN_LEN: usize = 12;

/// Turns request headers into the calling tenant.
///
/// Embedding services that authenticate callers themselves supply their own.
#[async_trait]
pub trait PrincipalExtractor: Send + Sync + 'static {
    /// The tenant making the request, or a 401.
    async fn principal(&self, headers: &HeaderMap) -> Result<Tenant, ApiError>;
}

/// Every request as one tenant: the CLI beside the data acts for the user it is
/// given (`--user`, `--org`), as the operator who can read the data directory can.
pub struct FixedPrincipal(pub Tenant);

#[async_trait]
impl PrincipalExtractor for FixedPrincipal {
    async fn principal(&self, _headers: &HeaderMap) -> Result<Tenant, ApiError> {
        Ok(self.0.clone())
    }
}

/// Bearer API keys (hash lookup) and, when `INTERNAL_API_SECRET` is set, trusted
/// `X-User-ID`/`X-Org-ID` headers accompanied by a matching `X-Internal-Secret`.
pub struct DefaultPrincipalExtractor {
    records: Arc<dyn RecordStore>,
    internal_secret: Option<SecretString>,
}

impl DefaultPrincipalExtractor {
    /// An extractor over the records store.
    pub fn new(records: Arc<dyn RecordStore>, internal_secret: Option<SecretString>) -> Self {
        Self {
            records,
            internal_secret,
        }
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|value| !value.is_empty())
}

/// SHA-256 of a value, hex-encoded: how API keys and webhook tokens are stored
/// (the same function the webhook token check uses).
pub fn hash_token(token: &str) -> String {
    patchbay_core::token_hash(token)
}

/// Compares two secrets in constant time (over their digests, so lengths leak nothing).
pub fn secrets_match(given: &str, expected: &str) -> bool {
    Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(expected.as_bytes()))
        .into()
}

/// A fresh random token: 32 bytes, URL-safe base64, with a prefix naming its use.
pub fn generate_token(prefix: &str) -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    SecretString::from(format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Creates an API key for a tenant, stores its hash and prefix, and returns the key
/// (shown once).
pub async fn create_api_key(records: &dyn RecordStore, tenant: Tenant) -> Result<SecretString> {
    let key = generate_token(API_KEY_PREFIX);
    records
        .insert_api_key(&ApiKeyRecord {
            id: uuid::Uuid::new_v4().to_string(),
            key_hash: hash_token(key.expose()),
            prefix: Some(key.expose()[..API_KEY_SHOWN_LEN].to_owned()),
            tenant,
            created_at: Utc::now(),
            last_used_at: None,
        })
        .await?;
    Ok(key)
}

/// Whether a use at `now` should be written, given the last one recorded: at most once
/// per [`API_KEY_USE_PRECISION`], so busy keys do not write on every request.
pub fn use_is_worth_recording(last_used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_used_at.is_none_or(|last| last <= now - API_KEY_USE_PRECISION)
}

const MISSING_CREDENTIALS_HINT: &str =
    "send `Authorization: Bearer <key>`; create a key with `patchbay api-keys create --user <id>`";

#[async_trait]
impl PrincipalExtractor for DefaultPrincipalExtractor {
    async fn principal(&self, headers: &HeaderMap) -> Result<Tenant, ApiError> {
        if let Some(authorization) = header(headers, "authorization") {
            let Some(key) = authorization
                .strip_prefix("Bearer ")
                .or_else(|| authorization.strip_prefix("bearer "))
            else {
                return Err(ApiError::unauthenticated(
                    "the Authorization header must use the Bearer scheme",
                    MISSING_CREDENTIALS_HINT,
                ));
            };
            let Some(found) = self.records.find_api_key(&hash_token(key.trim())).await? else {
                return Err(ApiError::unauthenticated(
                    "unknown or revoked API key",
                    MISSING_CREDENTIALS_HINT,
                ));
            };
            let now = Utc::now();
            if use_is_worth_recording(found.last_used_at, now) {
                // Bookkeeping only: a failed write must not fail the request.
                if let Err(error) = self.records.touch_api_key(&found.id, now).await {
                    tracing::warn!(key = %found.id, error = %error, "could not record an API key's use");
                }
            }
            return Ok(found.tenant);
        }
        if let Some(user_id) = header(headers, "x-user-id") {
            let trusted = match (&self.internal_secret, header(headers, "x-internal-secret")) {
                (Some(expected), Some(given)) => secrets_match(given, expected.expose()),
                _ => false,
            };
            if !trusted {
                return Err(ApiError::unauthenticated(
                    "X-User-ID is accepted only with a matching X-Internal-Secret",
                    "set INTERNAL_API_SECRET on the server and send it as X-Internal-Secret from your gateway",
                ));
            }
            return Ok(Tenant {
                user_id: user_id.to_owned(),
                org_id: header(headers, "x-org-id").map(str::to_owned),
            });
        }
        Err(ApiError::unauthenticated(
            "authentication required",
            MISSING_CREDENTIALS_HINT,
        ))
    }
}

/// The authenticated caller, as an axum extractor.
#[derive(Debug, Clone)]
pub struct Principal(pub Tenant);

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(crate::session::LinkSession(link)) = parts.extensions.get() {
            return Ok(Principal(link.tenant.clone()));
        }
        state
            .principals
            .principal(&parts.headers)
            .await
            .map(Principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_use_is_written_at_most_once_per_precision_interval() {
        let now = Utc::now();
        assert!(use_is_worth_recording(None, now));
        assert!(!use_is_worth_recording(Some(now), now));
        assert!(!use_is_worth_recording(
            Some(now - chrono::TimeDelta::seconds(59)),
            now
        ));
        assert!(use_is_worth_recording(
            Some(now - API_KEY_USE_PRECISION),
            now
        ));
        assert!(!use_is_worth_recording(
            Some(now + chrono::TimeDelta::seconds(5)),
            now
        ));
    }

    #[tokio::test]
    async fn keys_store_a_short_prefix_and_only_a_hash() {
        let records = patchbay_store::SqliteRecordStore::open_in_memory()
            .await
            .unwrap();
        let key = create_api_key(&records, Tenant::user("alice"))
            .await
            .unwrap();
        let stored = records
            .find_api_key(&hash_token(key.expose()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.prefix.as_deref(),
            Some(&key.expose()[..API_KEY_SHOWN_LEN])
        );
        assert!(stored
            .prefix
            .as_deref()
            .unwrap()
            .starts_with(API_KEY_PREFIX));
        assert_ne!(stored.key_hash, key.expose().as_str());
        assert_eq!(stored.last_used_at, None);
    }

    #[test]
    fn tokens_are_random_prefixed_and_hash_stably() {
        let a = generate_token(API_KEY_PREFIX);
        let b = generate_token(API_KEY_PREFIX);
        assert!(a.expose().starts_with(API_KEY_PREFIX));
        assert_ne!(a.expose(), b.expose());
        assert_eq!(hash_token(a.expose()), hash_token(a.expose()));
        assert_ne!(hash_token(a.expose()), hash_token(b.expose()));
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert!(secrets_match("same-secret", "same-secret"));
        assert!(!secrets_match("same-secret", "same-secreT"));
    }
}
