//! The engine against the real `oauth2-mock-server`, which `cargo xtask test` starts
//! on loopback and names in `PATCHBAY_TEST_OAUTH_ISSUER` (the tests fail without it):
//! the authorization-code flow with PKCE, refresh through `TokenRefresher`, and the
//! provider's refusals.
//!
//! The mock accepts any client and any code or refresh token, but it does check PKCE:
//! a `code_verifier` must match the `code_challenge` its code was issued for. The
//! start script (`xtask/assets/oauth-mock-server.mjs`) adds two hooks used here: a
//! denied consent (`mock_consent=deny` on `/authorize`) and a revoked refresh token.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, TimeDelta, Utc};
use patchbay_core::{
    AuthKind, Category, ClientAuthStyle, ConnectorDescriptor, ConnectorEnv, ErrorKind, OAuthSpec,
    RevealedJson, SecretString, Tenant,
};
use patchbay_http::{HttpClient, HttpConfig};
use patchbay_oauth::state::{generate_pkce_verifier, pkce_challenge};
use patchbay_oauth::AuthorizationStart;
use patchbay_oauth::{CallbackParams, OAuthEngine, StartRequest, TokenRefresher};
use patchbay_store::{
    ConnectionRecord, ConnectionStatus, LocalSecretStore, MasterKey, RecordStore, SecretLocation,
    SecretStore, SecretTenant, SqliteRecordStore,
};
use serde_json::{json, Value};

/// The refresh token the start script's hook refuses with `invalid_grant`.
const REVOKED_REFRESH_TOKEN: &str = "revoked-refresh-token";
/// Patchbay's public URL in these tests; redirect URIs live under it.
const PUBLIC_URL: &str = "http://patchbay.test";
/// The test connector's id and callback route.
const CONNECTOR_ID: &str = "mock-oauth";
const CALLBACK_PATH: &str = "/mock-oauth/callback";
/// The access-token lifetime the mock issues (its `defaultTokenTtl`).
const MOCK_TOKEN_LIFETIME: TimeDelta = TimeDelta::seconds(3600);

/// The running mock, as its discovery document describes it.
struct MockProvider {
    issuer: String,
    descriptor: &'static ConnectorDescriptor,
}

fn no_schema() -> schemars::Schema {
    schemars::Schema::default()
}

/// A connector whose OAuth endpoints are the mock's. `OAuthSpec` holds
/// `&'static str`, so the discovered URLs are leaked (once per test).
fn leak_descriptor(authorize_url: &str, token_url: &str) -> &'static ConnectorDescriptor {
    let spec = OAuthSpec {
        authorize_url: Box::leak(authorize_url.to_owned().into_boxed_str()),
        token_url: Box::leak(token_url.to_owned().into_boxed_str()),
        revoke_url: None,
        api_base_url: None,
        start_options: &[],
        scopes: &["openid", "offline_access"],
        scope_separator: " ",
        extra_authorize_params: &[],
        client_auth: ClientAuthStyle::BasicHeader,
        pkce: true,
        client_id_env: &["MOCK_OAUTH_CLIENT_ID"],
        client_secret_env: &["MOCK_OAUTH_CLIENT_SECRET"],
        callback_path: CALLBACK_PATH,
        feature_flag: None,
        disabled_message: None,
    };
    Box::leak(Box::new(ConnectorDescriptor {
        id: CONNECTOR_ID,
        display_name: "Mock OAuth",
        category: Category::Communication,
        auth_kinds: &[AuthKind::Oauth2],
        env_vars: &[],
        feature_flag: None,
        disabled_message: None,
        webhook: None,
        oauth: Some(spec),
        connect_schema: no_schema,
        operations: Vec::new,
        build: |_| {
            Err(patchbay_core::Error::unsupported(
                "not built in these tests",
            ))
        },
    }))
}

/// The mock named by `PATCHBAY_TEST_OAUTH_ISSUER` (the test fails when it is unset).
async fn mock_provider() -> MockProvider {
    let issuer = patchbay_testkit::services::oauth_issuer();
    let discovery: Value = reqwest::get(format!("{issuer}/.well-known/openid-configuration"))
        .await
        .expect("the mock's discovery document answers")
        .error_for_status()
        .expect("the discovery document is served")
        .json()
        .await
        .expect("the discovery document is JSON");
    let endpoint = |name: &str| {
        discovery[name]
            .as_str()
            .unwrap_or_else(|| panic!("discovery names the {name}: {discovery}"))
            .to_owned()
    };
    assert_eq!(endpoint("issuer"), issuer);
    let descriptor = leak_descriptor(
        &endpoint("authorization_endpoint"),
        &endpoint("token_endpoint"),
    );
    MockProvider { issuer, descriptor }
}

fn engine(records: Arc<dyn RecordStore>) -> Arc<OAuthEngine> {
    let http = HttpClient::new(HttpConfig::default()).unwrap();
    let env = ConnectorEnv::from_pairs([
        ("MOCK_OAUTH_CLIENT_ID", "patchbay-client"),
        ("MOCK_OAUTH_CLIENT_SECRET", "patchbay-client-secret"),
    ]);
    Arc::new(OAuthEngine::new(
        http,
        records,
        env,
        format!("{PUBLIC_URL}/"),
    ))
}

async fn sqlite_records(dir: &Path) -> Arc<dyn RecordStore> {
    let path = dir.join("records.db");
    Arc::new(
        SqliteRecordStore::open(path.to_str().unwrap())
            .await
            .unwrap(),
    )
}

fn local_secrets(dir: &Path) -> Arc<dyn SecretStore> {
    Arc::new(LocalSecretStore::open(&dir.join("secrets"), MasterKey::generate()).unwrap())
}

fn alice() -> Tenant {
    Tenant {
        user_id: "alice".into(),
        org_id: Some("acme".into()),
    }
}

fn query_of(url: &str) -> HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect()
}

/// Replaces (or with `None` removes) one query parameter of `url`.
fn with_query_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut url = url::Url::parse(url).unwrap();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, _)| key != name)
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    {
        let mut pairs = url.query_pairs_mut();
        pairs.clear().extend_pairs(kept);
        if let Some(value) = value {
            pairs.append_pair(name, value);
        }
    }
    url.to_string()
}

/// Plays the browser: opens the authorize URL at the mock and returns the
/// callback parameters of the redirect it answers with, which must go to our
/// redirect URI.
/// Opens a started flow's begin URL as the browser would: the provider's authorize
/// URL it redirects to, and the binding cookie it sets.
async fn begin(
    engine: &OAuthEngine,
    mock: &MockProvider,
    start: &AuthorizationStart,
) -> (String, String) {
    let state = start
        .begin_url
        .rsplit('/')
        .next()
        .expect("the begin URL ends in the state");
    let descriptor = mock.descriptor;
    let begun = engine
        .begin(state, |id| (id == descriptor.id).then_some(descriptor))
        .await
        .unwrap();
    (begun.authorize_url, begun.cookie.value.expose().clone())
}

async fn authorize_in_browser(authorize_url: &str) -> CallbackParams {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let answer = browser.get(authorize_url).send().await.unwrap();
    assert!(
        answer.status().is_redirection(),
        "the mock redirects back; it answered {}: {}",
        answer.status(),
        answer.text().await.unwrap_or_default()
    );
    let location = answer.headers()["location"].to_str().unwrap().to_owned();
    let query = location
        .strip_prefix(&format!("{PUBLIC_URL}{CALLBACK_PATH}?"))
        .unwrap_or_else(|| panic!("redirected to {location}, not to our redirect URI"));
    serde_urlencoded::from_str(query).unwrap()
}

/// The claims of a JWT, unverified: enough to see which issuer minted it.
fn jwt_claims(token: &SecretString) -> Value {
    let payload = token
        .expose()
        .split('.')
        .nth(1)
        .expect("the mock issues JWT access tokens");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn assert_lifetime_from_mock(expires_at: DateTime<Utc>, requested_at: DateTime<Utc>) {
    let lifetime = expires_at - requested_at;
    assert!(
        lifetime > MOCK_TOKEN_LIFETIME - TimeDelta::minutes(1)
            && lifetime <= MOCK_TOKEN_LIFETIME + TimeDelta::minutes(1),
        "expires_at {expires_at} is about an hour after {requested_at}"
    );
}

#[tokio::test]
async fn needs_oauth_mock_code_flow_with_pkce_yields_the_mock_s_tokens() {
    let mock = mock_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(sqlite_records(dir.path()).await);

    let start = engine
        .start(
            &alice(),
            mock.descriptor,
            StartRequest {
                label: Some("Mock".into()),
                ..StartRequest::default()
            },
        )
        .await
        .unwrap();
    let (authorize_url, cookie) = begin(&engine, &mock, &start).await;
    let provider_authorize_url = mock.descriptor.oauth.unwrap().authorize_url;
    assert!(
        authorize_url.starts_with(&format!("{provider_authorize_url}?")),
        "{authorize_url}"
    );
    let query = query_of(&authorize_url);
    let state = query["state"].clone();
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"].len(), 43);
    assert_eq!(
        query["redirect_uri"],
        format!("{PUBLIC_URL}{CALLBACK_PATH}")
    );

    let callback = authorize_in_browser(&authorize_url).await;
    assert_eq!(callback.state.as_deref(), Some(state.as_str()));
    assert!(callback
        .code
        .as_deref()
        .is_some_and(|code| !code.is_empty()));
    assert_eq!(callback.error, None);

    let requested_at = Utc::now();
    let done = engine
        .complete(mock.descriptor, callback.clone(), Some(&cookie))
        .await
        .unwrap();
    assert_eq!(done.tenant, alice());
    assert_eq!(done.label.as_deref(), Some("Mock"));
    let claims = jwt_claims(&done.grant.access_token);
    assert_eq!(claims["iss"], mock.issuer.as_str(), "{claims}");
    assert_eq!(claims["sub"], "johndoe", "{claims}");
    let refresh = done.grant.refresh_token.as_ref().expect("a refresh token");
    assert!(!refresh.expose().is_empty());
    assert_lifetime_from_mock(done.grant.expires_at.expect("an expiry"), requested_at);
    assert_eq!(done.grant.token_type.as_deref(), Some("Bearer"));
    assert!(
        !done.grant.extra.contains_key("id_token"),
        "the OpenID id_token is not kept as metadata"
    );

    let replay = engine
        .complete(mock.descriptor, callback, Some(&cookie))
        .await
        .unwrap_err();
    assert_eq!(replay.message(), "This authorization link was already used");
}

#[tokio::test]
async fn needs_oauth_mock_the_mock_refuses_a_verifier_that_does_not_match_the_challenge() {
    let mock = mock_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(sqlite_records(dir.path()).await);

    // The code is issued for another verifier's challenge; the engine then sends
    // the verifier it stored for the flow, which the mock must reject.
    let start = engine
        .start(&alice(), mock.descriptor, StartRequest::default())
        .await
        .unwrap();
    let (authorize_url, cookie) = begin(&engine, &mock, &start).await;
    let foreign_challenge = pkce_challenge(&generate_pkce_verifier());
    let tampered = with_query_param(&authorize_url, "code_challenge", Some(&foreign_challenge));
    let callback = authorize_in_browser(&tampered).await;
    let mismatch = engine
        .complete(mock.descriptor, callback, Some(&cookie))
        .await
        .unwrap_err();
    assert_eq!(mismatch.kind(), ErrorKind::AuthFailed, "{mismatch}");
    assert!(
        mismatch
            .message()
            .contains("code_verifier provided does not match code_challenge"),
        "{mismatch}"
    );

    // A code issued without any challenge: the verifier the engine always sends is refused.
    let start = engine
        .start(&alice(), mock.descriptor, StartRequest::default())
        .await
        .unwrap();
    let (authorize_url, cookie) = begin(&engine, &mock, &start).await;
    let without_challenge = with_query_param(&authorize_url, "code_challenge", None);
    let callback = authorize_in_browser(&without_challenge).await;
    let unbound = engine
        .complete(mock.descriptor, callback, Some(&cookie))
        .await
        .unwrap_err();
    assert_eq!(unbound.kind(), ErrorKind::AuthFailed, "{unbound}");
    assert!(
        unbound.message().contains("code_challenge required"),
        "{unbound}"
    );
}

#[tokio::test]
async fn needs_oauth_mock_a_denied_consent_reaches_the_user_as_access_denied() {
    let mock = mock_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(sqlite_records(dir.path()).await);
    let start = engine
        .start(&alice(), mock.descriptor, StartRequest::default())
        .await
        .unwrap();
    let (authorize_url, cookie) = begin(&engine, &mock, &start).await;
    let state = query_of(&authorize_url)["state"].clone();

    let denied_url = with_query_param(&authorize_url, "mock_consent", Some("deny"));
    let callback = authorize_in_browser(&denied_url).await;
    assert_eq!(callback.state.as_deref(), Some(state.as_str()));
    assert_eq!(callback.code, None);
    assert_eq!(callback.error.as_deref(), Some("access_denied"));

    let denied = engine
        .complete(mock.descriptor, callback, Some(&cookie))
        .await
        .unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        denied.message(),
        "Mock OAuth authorization was denied (access_denied): The user denied the request"
    );
}

async fn expired_connection(
    records: &Arc<dyn RecordStore>,
    secrets: &Arc<dyn SecretStore>,
    refresh_token: &str,
) -> ConnectionRecord {
    let id = patchbay_oauth::state::generate_state();
    let secret_ref = secrets
        .put(
            &SecretLocation {
                tenant: SecretTenant::Org("acme".into()),
                connector: CONNECTOR_ID.into(),
                connection_id: id.clone(),
            },
            &RevealedJson::new(json!({
                "access_token": "access-old",
                "refresh_token": refresh_token,
                "expires_at": (Utc::now() - TimeDelta::minutes(1)).to_rfc3339(),
                "webhook_secret": "kept",
            })),
        )
        .await
        .unwrap();
    let record = ConnectionRecord {
        id,
        tenant: alice(),
        connector: CONNECTOR_ID.into(),
        label: "Mock".into(),
        metadata: json!({}),
        secret_ref,
        status: ConnectionStatus::Active,
        webhook_token_hash: None,
        routing_key: None,
        allow_writes: false,
        last_report: None,
        created_at: Utc::now(),
        validated_at: None,
    };
    records.insert_connection(&record).await.unwrap();
    record
}

fn refresher(records: &Arc<dyn RecordStore>, secrets: &Arc<dyn SecretStore>) -> TokenRefresher {
    TokenRefresher::new(
        engine(Arc::clone(records)),
        Arc::clone(records),
        Arc::clone(secrets),
        Duration::from_secs(300),
    )
}

#[tokio::test]
async fn needs_oauth_mock_an_expired_token_is_refreshed_at_the_mock_and_saved() {
    let mock = mock_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let records = sqlite_records(dir.path()).await;
    let secrets = local_secrets(dir.path());
    let record = expired_connection(&records, &secrets, "refresh-old").await;
    let refresher = refresher(&records, &secrets);

    let current = secrets.get_uncached(&record.secret_ref).await.unwrap();
    let requested_at = Utc::now();
    let fresh = refresher
        .fresh_secrets(mock.descriptor, &record, current)
        .await
        .unwrap();
    assert_eq!(refresher.token_requests(), 1);

    let fields = fresh.expose();
    let access_token = SecretString::from(fields["access_token"].as_str().unwrap());
    assert_eq!(jwt_claims(&access_token)["iss"], mock.issuer.as_str());
    let refresh_token = fields["refresh_token"].as_str().unwrap();
    assert!(
        !refresh_token.is_empty() && refresh_token != "refresh-old",
        "the mock rotates refresh tokens and the new one is kept"
    );
    let expires_at = DateTime::parse_from_rfc3339(fields["expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc);
    // The stored expiry is whole seconds; allow for the truncation.
    assert_lifetime_from_mock(expires_at + TimeDelta::seconds(1), requested_at);
    assert_eq!(fields["webhook_secret"], "kept");

    let stored = secrets.get_uncached(&record.secret_ref).await.unwrap();
    assert_eq!(stored.expose(), fresh.expose(), "saved before use");

    let again = refresher
        .fresh_secrets(mock.descriptor, &record, stored)
        .await
        .unwrap();
    assert_eq!(again.expose(), fresh.expose());
    assert_eq!(
        refresher.token_requests(),
        1,
        "a fresh token is not refreshed"
    );
}

#[tokio::test]
async fn needs_oauth_mock_a_revoked_refresh_token_marks_the_connection_for_reauthorization() {
    let mock = mock_provider().await;
    let dir = tempfile::tempdir().unwrap();
    let records = sqlite_records(dir.path()).await;
    let secrets = local_secrets(dir.path());
    let record = expired_connection(&records, &secrets, REVOKED_REFRESH_TOKEN).await;
    let refresher = refresher(&records, &secrets);

    let current = secrets.get_uncached(&record.secret_ref).await.unwrap();
    let error = refresher
        .fresh_secrets(mock.descriptor, &record, current)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth, "{error}");
    assert_eq!(
        refresher.token_requests(),
        1,
        "invalid_grant is not retried"
    );

    let stored = records
        .get_connection(&alice(), &record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ConnectionStatus::NeedsReauth);
    let secrets_after = secrets.get_uncached(&record.secret_ref).await.unwrap();
    assert_eq!(secrets_after.expose()["access_token"], "access-old");
}
