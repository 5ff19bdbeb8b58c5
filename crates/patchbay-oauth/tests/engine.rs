//! The engine and the refresher against a fake provider on loopback: state
//! attacks, PKCE, error-at-200, refresh storms across replicas, `invalid_grant`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use chrono::Utc;
use patchbay_core::{
    AuthKind, Category, ClientAuthStyle, ConnectorDescriptor, ConnectorEnv, ErrorKind, OAuthSpec,
    RevealedJson, Tenant,
};
use patchbay_http::{HttpClient, HttpConfig};
use patchbay_oauth::state::{binding_cookie_name, hash_state, pkce_challenge};
use patchbay_oauth::{CallbackParams, OAuthEngine, StartRequest, TokenRefresher};
use patchbay_store::{
    ConnectionRecord, ConnectionStatus, LocalSecretStore, MasterKey, PendingAuthorization,
    RecordStore, SecretLocation, SecretRef, SecretStore, SecretTenant, SecretVersion,
    SqliteRecordStore,
};
use patchbay_testkit::fault_proxy::FaultProxy;
use serde_json::{json, Value};

/// How the fake token endpoint answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Issue,
    InvalidGrant,
    /// `invalid_grant` with HTTP 403, as Atlassian refuses a refresh token.
    InvalidGrantForbidden,
    ErrorAt200,
    /// Issues tokens on receipt, but answers the first request only after this long.
    StallFirstAnswer(Duration),
}

struct Provider {
    requests: AtomicU64,
    mode: Mutex<Mode>,
    forms: Mutex<Vec<HashMap<String, String>>>,
    issued: AtomicU64,
}

async fn token(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    body: String,
) -> impl IntoResponse {
    provider.requests.fetch_add(1, Ordering::SeqCst);
    let form: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
    provider.forms.lock().unwrap().push(form.clone());
    assert!(headers.get("authorization").is_some(), "basic client auth");
    // Widen the window in which concurrent refreshers could race.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mode = *provider.mode.lock().unwrap();
    match mode {
        Mode::InvalidGrant => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "error": "invalid_grant", "error_description": "revoked" })),
        ),
        Mode::InvalidGrantForbidden => (
            StatusCode::FORBIDDEN,
            Json(
                json!({ "error": "invalid_grant", "error_description": "Unknown or invalid refresh token." }),
            ),
        ),
        Mode::ErrorAt200 => (
            StatusCode::OK,
            Json(json!({ "ok": false, "error": "bad_redirect_uri" })),
        ),
        Mode::Issue | Mode::StallFirstAnswer(_) => {
            if form.get("grant_type").map(String::as_str) == Some("authorization_code") {
                let verifier_len = form.get("code_verifier").map_or(0, String::len);
                if form.get("code").map(String::as_str) != Some("good-code") || verifier_len != 43 {
                    return (
                        StatusCode::OK,
                        Json(json!({ "error": "bad_verification_code" })),
                    );
                }
            }
            let n = provider.issued.fetch_add(1, Ordering::SeqCst) + 1;
            if let (Mode::StallFirstAnswer(stall), 1) = (mode, n) {
                tokio::time::sleep(stall).await;
            }
            (
                StatusCode::OK,
                Json(json!({
                    "ok": true,
                    "access_token": format!("access-{n}"),
                    "refresh_token": format!("refresh-{n}"),
                    "expires_in": 3600,
                    "token_type": "bot",
                    "scope": "chat:write,channels:read",
                    "team": { "id": "T1", "name": "Acme" },
                    "authed_user": { "id": "U1", "access_token": "xoxp-user-secret" },
                })),
            )
        }
    }
}

struct Fixture {
    provider: Arc<Provider>,
    descriptor: &'static ConnectorDescriptor,
    other: &'static ConnectorDescriptor,
    env: ConnectorEnv,
}

fn no_schema() -> schemars::Schema {
    schemars::Schema::default()
}

fn leak_descriptor(id: &'static str, base: &str) -> &'static ConnectorDescriptor {
    let spec = OAuthSpec {
        authorize_url: Box::leak(format!("{base}/authorize").into_boxed_str()),
        token_url: Box::leak(format!("{base}/token").into_boxed_str()),
        revoke_url: None,
        api_base_url: None,
        start_options: &["base_url"],
        scopes: &["chat:write", "channels:read"],
        scope_separator: ",",
        extra_authorize_params: &[("access_type", "offline")],
        client_auth: ClientAuthStyle::BasicHeader,
        pkce: true,
        client_id_env: &["TOY_CLIENT_ID", "TOY_LEGACY_CLIENT_ID"],
        client_secret_env: &["TOY_CLIENT_SECRET"],
        callback_path: Box::leak(format!("/{id}/callback").into_boxed_str()),
        feature_flag: None,
        disabled_message: None,
    };
    Box::leak(Box::new(ConnectorDescriptor {
        id,
        display_name: "Toy",
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

async fn fixture() -> Fixture {
    let provider = Arc::new(Provider {
        requests: AtomicU64::new(0),
        mode: Mutex::new(Mode::Issue),
        forms: Mutex::new(Vec::new()),
        issued: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/token", post(token))
        .with_state(Arc::clone(&provider));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Fixture {
        provider,
        descriptor: leak_descriptor("toy", &base),
        other: leak_descriptor("other", &base),
        env: ConnectorEnv::from_pairs([
            ("TOY_LEGACY_CLIENT_ID", "toy-client"),
            ("TOY_CLIENT_SECRET", "toy-secret"),
        ]),
    }
}

fn engine(fixture: &Fixture, records: Arc<dyn RecordStore>) -> Arc<OAuthEngine> {
    let http = HttpClient::new(HttpConfig::default()).unwrap();
    Arc::new(OAuthEngine::new(
        http,
        records,
        fixture.env.clone(),
        "http://patchbay.test/".into(),
    ))
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

async fn memory_records() -> Arc<dyn RecordStore> {
    Arc::new(SqliteRecordStore::open_in_memory().await.unwrap())
}

/// The state a begin URL carries (its last path segment).
fn state_of(begin_url: &str) -> String {
    let prefix = "http://patchbay.test/oauth/begin/";
    assert!(begin_url.starts_with(prefix), "{begin_url}");
    begin_url[prefix.len()..].to_owned()
}

fn descriptor_lookup(
    fixture: &Fixture,
) -> impl Fn(&str) -> Option<&'static ConnectorDescriptor> + '_ {
    |id| {
        [fixture.descriptor, fixture.other]
            .into_iter()
            .find(|d| d.id == id)
    }
}

/// The verifier the engine once derived from the state, which anyone who saw the
/// callback URL could compute.
fn state_derived_verifier(state: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(
        format!("patchbay-pkce:{state}").as_bytes(),
    ))
}

#[tokio::test]
async fn the_begin_url_opens_once_and_sends_the_browser_to_the_provider() {
    let fixture = fixture().await;
    let engine = engine(&fixture, memory_records().await);
    let start = engine
        .start(&alice(), fixture.descriptor, StartRequest::default())
        .await
        .unwrap();
    let state = state_of(&start.begin_url);
    assert_eq!(state.len(), 43);
    let begun = engine
        .begin(&state, descriptor_lookup(&fixture))
        .await
        .unwrap();
    assert_eq!(begun.connector.id, "toy");
    assert_eq!(begun.cookie.name, binding_cookie_name(&state));
    assert_eq!(begun.cookie.path, "/toy/callback");
    assert_eq!(begun.cookie.expires_at, start.expires_at);
    assert_eq!(begun.cookie.value.expose().len(), 43);
    let query = query_of(&begun.authorize_url);
    assert_eq!(query["state"], state);
    assert_eq!(query["client_id"], "toy-client");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["redirect_uri"], "http://patchbay.test/toy/callback");
    assert_eq!(query["scope"], "chat:write,channels:read");
    assert_eq!(query["access_type"], "offline");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_ne!(
        query["code_challenge"],
        pkce_challenge(&state_derived_verifier(&state)),
        "the PKCE verifier must not be computable from the state"
    );
    let remaining = start.expires_at - Utc::now();
    assert!(
        remaining > chrono::TimeDelta::minutes(9) && remaining <= chrono::TimeDelta::minutes(10)
    );

    let again = engine
        .begin(&state, descriptor_lookup(&fixture))
        .await
        .unwrap_err();
    assert!(
        again
            .message()
            .starts_with("This sign-in link was already opened"),
        "{again}"
    );
    let forged = engine
        .begin("forged", descriptor_lookup(&fixture))
        .await
        .unwrap_err();
    assert!(forged.message().starts_with("Unknown authorization state"));
}

#[tokio::test]
async fn start_options_the_spec_does_not_declare_are_refused_naming_them() {
    let fixture = fixture().await;
    let engine = engine(&fixture, memory_records().await);
    let error = engine
        .start(
            &alice(),
            fixture.descriptor,
            StartRequest {
                options: serde_json::Map::from_iter([(
                    "api_url".to_owned(),
                    json!("https://attacker.example"),
                )]),
                ..StartRequest::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidInput);
    assert_eq!(error.field(), Some("options.api_url"));
    assert_eq!(
        error.message(),
        "Toy OAuth does not accept the option `api_url`; it takes: base_url"
    );
}

#[tokio::test]
async fn missing_client_credentials_name_the_variables() {
    let fixture = fixture().await;
    let http = HttpClient::new(HttpConfig::default()).unwrap();
    let engine = OAuthEngine::new(
        http,
        memory_records().await,
        ConnectorEnv::default(),
        "http://localhost:5080".into(),
    );
    let error = engine
        .start(&alice(), fixture.descriptor, StartRequest::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(
        error.message(),
        "Toy OAuth credentials not configured: set TOY_CLIENT_ID and TOY_CLIENT_SECRET"
    );
}

/// A flow started for alice and begun in a browser: its state and binding cookie,
/// and the PKCE challenge the authorize URL carried.
struct Begun {
    state: String,
    cookie: String,
    challenge: String,
}

async fn begun_flow(
    engine: &OAuthEngine,
    fixture: &Fixture,
    descriptor: &'static ConnectorDescriptor,
) -> Begun {
    let start = engine
        .start(
            &alice(),
            descriptor,
            StartRequest {
                label: Some("work".into()),
                options: serde_json::Map::from_iter([(
                    "base_url".to_owned(),
                    json!("https://ghe.example"),
                )]),
                allow_writes: false,
            },
        )
        .await
        .unwrap();
    let state = state_of(&start.begin_url);
    let begun = engine
        .begin(&state, descriptor_lookup(fixture))
        .await
        .unwrap();
    Begun {
        challenge: query_of(&begun.authorize_url)["code_challenge"].clone(),
        cookie: begun.cookie.value.expose().clone(),
        state,
    }
}

fn callback(state: Option<&str>, code: Option<&str>) -> CallbackParams {
    CallbackParams {
        code: code.map(str::to_owned),
        state: state.map(str::to_owned),
        error: None,
        error_description: None,
    }
}

#[tokio::test]
async fn code_exchange_sends_the_random_verifier_and_the_same_redirect_uri() {
    let fixture = fixture().await;
    let engine = engine(&fixture, memory_records().await);
    let flow = begun_flow(&engine, &fixture, fixture.descriptor).await;
    let done = engine
        .complete(
            fixture.descriptor,
            callback(Some(&flow.state), Some("good-code")),
            Some(&flow.cookie),
        )
        .await
        .unwrap();
    assert_eq!(done.tenant, alice());
    assert_eq!(done.label.as_deref(), Some("work"));
    assert_eq!(done.grant.options["base_url"], "https://ghe.example");
    assert_eq!(done.grant.access_token.expose(), "access-1");
    assert_eq!(
        done.grant.refresh_token.as_ref().unwrap().expose(),
        "refresh-1"
    );
    assert_eq!(done.grant.scopes, ["chat:write", "channels:read"]);
    assert_eq!(done.grant.token_type.as_deref(), Some("bot"));
    assert!(done.grant.expires_at.unwrap() > Utc::now() + chrono::TimeDelta::minutes(59));
    let extra = Value::Object(done.grant.extra.clone()).to_string();
    assert!(extra.contains("\"T1\""), "{extra}");
    assert!(!extra.contains("xoxp-user-secret"), "{extra}");

    let forms = fixture.provider.forms.lock().unwrap().clone();
    let form = forms.last().unwrap();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["redirect_uri"], "http://patchbay.test/toy/callback");
    let verifier = &form["code_verifier"];
    assert_eq!(pkce_challenge(verifier), flow.challenge);
    assert_ne!(*verifier, state_derived_verifier(&flow.state));
    let other = begun_flow(&engine, &fixture, fixture.descriptor).await;
    assert_ne!(
        other.challenge, flow.challenge,
        "each flow has its own verifier"
    );
    assert!(
        !form.contains_key("client_secret"),
        "basic auth keeps the secret out of the body"
    );

    let error = engine
        .complete(
            fixture.descriptor,
            callback(Some(&flow.state), Some("good-code")),
            Some(&flow.cookie),
        )
        .await
        .unwrap_err();
    assert_eq!(error.message(), "This authorization link was already used");
    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn state_attacks_are_refused_with_distinct_messages_and_no_token_request() {
    let fixture = fixture().await;
    let records = memory_records().await;
    let engine = engine(&fixture, Arc::clone(&records));

    let missing = engine
        .complete(fixture.descriptor, callback(None, Some("good-code")), None)
        .await
        .unwrap_err();
    assert_eq!(missing.message(), "Missing state parameter");

    let forged = engine
        .complete(
            fixture.descriptor,
            callback(Some("forged"), Some("good-code")),
            Some("cookie"),
        )
        .await
        .unwrap_err();
    assert!(
        forged.message().starts_with("Unknown authorization state"),
        "{forged}"
    );

    let expired_state = "expired-state";
    records
        .insert_oauth_state(&PendingAuthorization {
            state_hash: hash_state(expired_state),
            tenant: alice(),
            connector: "toy".into(),
            redirect_uri: "http://patchbay.test/toy/callback".into(),
            label: None,
            options: Default::default(),
            allow_writes: false,
            pkce_verifier: None,
            binding_hash: Some(hash_state("cookie")),
            created_at: Utc::now() - chrono::TimeDelta::minutes(11),
            expires_at: Utc::now() - chrono::TimeDelta::minutes(1),
        })
        .await
        .unwrap();
    let expired = engine
        .complete(
            fixture.descriptor,
            callback(Some(expired_state), Some("good-code")),
            Some("cookie"),
        )
        .await
        .unwrap_err();
    assert!(
        expired
            .message()
            .starts_with("The authorization request expired"),
        "{expired}"
    );

    let for_other = begun_flow(&engine, &fixture, fixture.other).await;
    let wrong = engine
        .complete(
            fixture.descriptor,
            callback(Some(&for_other.state), Some("good-code")),
            Some(&for_other.cookie),
        )
        .await
        .unwrap_err();
    assert!(wrong.message().contains("started for `other`"), "{wrong}");
    let reused = engine
        .complete(
            fixture.other,
            callback(Some(&for_other.state), Some("good-code")),
            Some(&for_other.cookie),
        )
        .await
        .unwrap_err();
    assert_eq!(
        reused.message(),
        "This authorization link was already used",
        "consumed anyway"
    );

    let denied_flow = begun_flow(&engine, &fixture, fixture.descriptor).await;
    let denied = engine
        .complete(
            fixture.descriptor,
            CallbackParams {
                code: None,
                state: Some(denied_flow.state),
                error: Some("access_denied".into()),
                error_description: Some("The user denied".into()),
            },
            Some(&denied_flow.cookie),
        )
        .await
        .unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
    assert!(denied.message().contains("access_denied"), "{denied}");

    let no_code_flow = begun_flow(&engine, &fixture, fixture.descriptor).await;
    let no_code = engine
        .complete(
            fixture.descriptor,
            callback(Some(&no_code_flow.state), None),
            Some(&no_code_flow.cookie),
        )
        .await
        .unwrap_err();
    assert_eq!(no_code.message(), "No authorization code provided");
    assert_eq!(
        no_code.hint(),
        Some("Verify callback URL matches exactly: http://patchbay.test/toy/callback")
    );

    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_callback_in_a_browser_that_did_not_begin_the_flow_is_refused_without_a_token_request() {
    let fixture = fixture().await;
    let engine = engine(&fixture, memory_records().await);

    let victim = begun_flow(&engine, &fixture, fixture.descriptor).await;
    let no_cookie = engine
        .complete(
            fixture.descriptor,
            callback(Some(&victim.state), Some("good-code")),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(no_cookie.kind(), ErrorKind::PermissionDenied);
    assert_eq!(
        no_cookie.message(),
        "This Toy authorization was not started in this browser, so Patchbay refused it"
    );
    let replay = engine
        .complete(
            fixture.descriptor,
            callback(Some(&victim.state), Some("good-code")),
            Some(&victim.cookie),
        )
        .await
        .unwrap_err();
    assert_eq!(
        replay.message(),
        "This authorization link was already used",
        "a refused callback burns the state"
    );

    let other_browser = begun_flow(&engine, &fixture, fixture.descriptor).await;
    let wrong_cookie = engine
        .complete(
            fixture.descriptor,
            callback(Some(&other_browser.state), Some("good-code")),
            Some(&victim.cookie),
        )
        .await
        .unwrap_err();
    assert_eq!(wrong_cookie.kind(), ErrorKind::PermissionDenied);

    // An authorize URL built from the state alone, skipping the begin URL.
    let start = engine
        .start(&alice(), fixture.descriptor, StartRequest::default())
        .await
        .unwrap();
    let never_begun = engine
        .complete(
            fixture.descriptor,
            callback(Some(&state_of(&start.begin_url)), Some("good-code")),
            Some("guessed"),
        )
        .await
        .unwrap_err();
    assert_eq!(never_begun.kind(), ErrorKind::PermissionDenied);

    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn errors_reported_at_200_reach_the_user_by_name() {
    let fixture = fixture().await;
    let engine = engine(&fixture, memory_records().await);
    *fixture.provider.mode.lock().unwrap() = Mode::ErrorAt200;
    let flow = begun_flow(&engine, &fixture, fixture.descriptor).await;
    let error = engine
        .complete(
            fixture.descriptor,
            callback(Some(&flow.state), Some("good-code")),
            Some(&flow.cookie),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(error.message().contains("bad_redirect_uri"), "{error}");
    assert_eq!(
        error.hint(),
        Some("Redirect URL must match exactly in Toy App settings: http://patchbay.test/toy/callback")
    );

    *fixture.provider.mode.lock().unwrap() = Mode::Issue;
    let flow = begun_flow(&engine, &fixture, fixture.descriptor).await;
    let error = engine
        .complete(
            fixture.descriptor,
            callback(Some(&flow.state), Some("wrong-code")),
            Some(&flow.cookie),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(error.message().contains("bad_verification_code"), "{error}");
}

struct Replica {
    refresher: Arc<TokenRefresher>,
}

async fn expired_connection(
    records: &Arc<dyn RecordStore>,
    secrets: &Arc<dyn SecretStore>,
) -> ConnectionRecord {
    let id = uuid_like();
    let secret_ref = secrets
        .put(
            &SecretLocation {
                tenant: SecretTenant::Org("acme".into()),
                connector: "toy".into(),
                connection_id: id.clone(),
            },
            &RevealedJson::new(json!({
                "access_token": "access-old",
                "refresh_token": "refresh-old",
                "expires_at": (Utc::now() - chrono::TimeDelta::minutes(1)).to_rfc3339(),
                "webhook_secret": "kept",
            })),
        )
        .await
        .unwrap();
    let record = ConnectionRecord {
        id,
        tenant: alice(),
        connector: "toy".into(),
        label: "Toy".into(),
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

fn uuid_like() -> String {
    patchbay_oauth::state::generate_state()
}

fn replica(
    fixture: &Fixture,
    records: &Arc<dyn RecordStore>,
    secrets: &Arc<dyn SecretStore>,
) -> Replica {
    Replica {
        refresher: Arc::new(TokenRefresher::new(
            engine(fixture, Arc::clone(records)),
            Arc::clone(records),
            Arc::clone(secrets),
            Duration::from_secs(300),
        )),
    }
}

async fn storm(
    fixture: &Fixture,
    replicas: &[Replica],
    record: &ConnectionRecord,
    current: RevealedJson,
) {
    let mut callers = Vec::new();
    for n in 0..500 {
        let refresher = Arc::clone(&replicas[n % replicas.len()].refresher);
        let record = record.clone();
        let current = current.clone();
        let descriptor = fixture.descriptor;
        callers.push(tokio::spawn(async move {
            refresher.fresh_secrets(descriptor, &record, current).await
        }));
    }
    for caller in callers {
        let secrets = caller.await.unwrap().unwrap();
        assert_eq!(secrets.expose()["access_token"], "access-1");
    }
}

async fn assert_rotated(secrets: &Arc<dyn SecretStore>, record: &ConnectionRecord) {
    let stored = secrets.get(&record.secret_ref).await.unwrap();
    assert_eq!(stored.expose()["access_token"], "access-1");
    assert_eq!(
        stored.expose()["refresh_token"],
        "refresh-1",
        "rotated token saved"
    );
    assert_eq!(stored.expose()["webhook_secret"], "kept");
    let expires_at = stored.expose()["expires_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(expires_at).unwrap() > Utc::now());
}

fn local_secrets(dir: &std::path::Path) -> Arc<dyn SecretStore> {
    Arc::new(LocalSecretStore::open(&dir.join("secrets"), MasterKey::generate()).unwrap())
}

/// An expired connection in `records` with its secret in a local store under a
/// temporary folder (kept while the folder is), and the secret as first read.
async fn expired_with_local_secrets(
    records: &Arc<dyn RecordStore>,
) -> (
    tempfile::TempDir,
    Arc<dyn SecretStore>,
    ConnectionRecord,
    RevealedJson,
) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = local_secrets(dir.path());
    let record = expired_connection(records, &secrets).await;
    let current = secrets.get(&record.secret_ref).await.unwrap();
    (dir, secrets, record, current)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_storm_sends_one_token_request() {
    let fixture = fixture().await;
    let records = memory_records().await;
    let (_dir, secrets, record, current) = expired_with_local_secrets(&records).await;
    let replicas = [replica(&fixture, &records, &secrets)];
    storm(&fixture, &replicas, &record, current).await;
    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 1);
    assert_eq!(replicas[0].refresher.token_requests(), 1);
    let forms = fixture.provider.forms.lock().unwrap().clone();
    assert_eq!(forms[0]["grant_type"], "refresh_token");
    assert_eq!(forms[0]["refresh_token"], "refresh-old");
    assert_rotated(&secrets, &record).await;
}

/// Waits (without a fixed sleep) until `condition` holds, failing after ten seconds.
async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_stalled_past_its_lease_never_overwrites_the_newer_tokens() {
    let fixture = fixture().await;
    let lease = Duration::from_secs(2);
    // The provider issues refresh-1 to replica A but answers only after A's lease.
    *fixture.provider.mode.lock().unwrap() = Mode::StallFirstAnswer(lease * 2);
    let records = memory_records().await;
    let (_dir, secrets, record, current) = expired_with_local_secrets(&records).await;
    let leased_replica = || {
        let refresher = TokenRefresher::new(
            engine(&fixture, Arc::clone(&records)),
            Arc::clone(&records),
            Arc::clone(&secrets),
            Duration::from_secs(300),
        )
        .with_lease_duration(lease);
        Arc::new(refresher)
    };
    let (replica_a, replica_b) = (leased_replica(), leased_replica());

    let stalled = refresh_in_flight(&fixture, &replica_a, &record, current.clone()).await;
    let took_over = tokio::spawn({
        let (refresher, record) = (replica_b, record.clone());
        let descriptor = fixture.descriptor;
        async move { refresher.fresh_secrets(descriptor, &record, current).await }
    });

    let abandoned = stalled.await.unwrap().unwrap_err();
    assert_eq!(abandoned.kind(), ErrorKind::Unavailable, "{abandoned}");
    let fresh = took_over.await.unwrap().unwrap();
    assert_eq!(fresh.expose()["access_token"], "access-2");
    assert_eq!(fixture.provider.issued.load(Ordering::SeqCst), 2);
    let stored = secrets.get_uncached(&record.secret_ref).await.unwrap();
    assert_eq!(
        stored.expose()["refresh_token"],
        "refresh-2",
        "the newest refresh token issued is the one kept"
    );
    assert_eq!(stored.expose()["webhook_secret"], "kept");
}

/// Polls the stored secret until it holds `refresh_token`, failing after ten seconds.
async fn wait_until_stored(
    secrets: &Arc<dyn SecretStore>,
    record: &ConnectionRecord,
    refresh_token: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let stored = secrets.get_uncached(&record.secret_ref).await.unwrap();
        if stored.expose()["refresh_token"] == refresh_token {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the secret never held {refresh_token}: {}",
            stored.expose()["refresh_token"]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts a refresh of `record` on `refresher` and waits until its token request
/// has reached the provider.
async fn refresh_in_flight(
    fixture: &Fixture,
    refresher: &Arc<TokenRefresher>,
    record: &ConnectionRecord,
    current: RevealedJson,
) -> tokio::task::JoinHandle<patchbay_core::Result<RevealedJson>> {
    let refresh = tokio::spawn({
        let (refresher, record) = (Arc::clone(refresher), record.clone());
        let descriptor = fixture.descriptor;
        async move { refresher.fresh_secrets(descriptor, &record, current).await }
    });
    let provider = Arc::clone(&fixture.provider);
    wait_until("the token request", || {
        provider.requests.load(Ordering::SeqCst) == 1
    })
    .await;
    refresh
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_whose_caller_gives_up_still_saves_the_rotated_tokens() {
    let fixture = fixture().await;
    // The provider rotates the refresh token on receipt and answers 400 ms later,
    // by which time the caller (an HTTP client that timed out) has gone.
    *fixture.provider.mode.lock().unwrap() = Mode::StallFirstAnswer(Duration::from_millis(400));
    let records = memory_records().await;
    let (_dir, secrets, record, current) = expired_with_local_secrets(&records).await;
    let replica = replica(&fixture, &records, &secrets);
    let caller = refresh_in_flight(&fixture, &replica.refresher, &record, current).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());

    wait_until_stored(&secrets, &record, "refresh-1").await;
    assert_rotated(&secrets, &record).await;
    let until = Utc::now() + chrono::TimeDelta::seconds(30);
    assert!(
        records
            .try_acquire_refresh_lease(&record.id, "another-replica", until)
            .await
            .unwrap()
            .is_some(),
        "the lease was released"
    );
    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 1);
}

/// A secret store whose next `failing` writes fail as if it could not be reached
/// (a Vault restart), counting the writes it refused.
struct UnreachableForWrites {
    inner: Arc<dyn SecretStore>,
    failing: AtomicU64,
    refused: AtomicU64,
}

#[async_trait::async_trait]
impl SecretStore for UnreachableForWrites {
    async fn put(
        &self,
        location: &SecretLocation,
        value: &RevealedJson,
    ) -> patchbay_core::Result<SecretRef> {
        self.inner.put(location, value).await
    }

    fn reference_for(&self, location: &SecretLocation) -> Option<SecretRef> {
        self.inner.reference_for(location)
    }

    async fn get_versioned(
        &self,
        reference: &SecretRef,
    ) -> patchbay_core::Result<(RevealedJson, SecretVersion)> {
        self.inner.get_versioned(reference).await
    }

    async fn update_if_version(
        &self,
        reference: &SecretRef,
        expected: SecretVersion,
        value: &RevealedJson,
    ) -> patchbay_core::Result<SecretVersion> {
        let refuse = self
            .failing
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                left.checked_sub(1)
            })
            .is_ok();
        if refuse {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(patchbay_core::Error::unavailable(
                "credential store unavailable",
            ));
        }
        self.inner
            .update_if_version(reference, expected, value)
            .await
    }

    async fn get(&self, reference: &SecretRef) -> patchbay_core::Result<RevealedJson> {
        self.inner.get(reference).await
    }

    async fn get_uncached(&self, reference: &SecretRef) -> patchbay_core::Result<RevealedJson> {
        self.inner.get_uncached(reference).await
    }

    async fn delete(&self, reference: &SecretRef) -> patchbay_core::Result<()> {
        self.inner.delete(reference).await
    }

    async fn list(&self) -> patchbay_core::Result<Vec<SecretRef>> {
        self.inner.list().await
    }

    async fn health(&self) -> patchbay_core::Result<()> {
        self.inner.health().await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotated_tokens_are_saved_through_a_secret_store_outage() {
    let fixture = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let records = memory_records().await;
    let unreachable = Arc::new(UnreachableForWrites {
        inner: local_secrets(dir.path()),
        failing: AtomicU64::new(3),
        refused: AtomicU64::new(0),
    });
    let secrets: Arc<dyn SecretStore> = unreachable.clone();
    let record = expired_connection(&records, &secrets).await;
    let current = secrets.get(&record.secret_ref).await.unwrap();
    let replica = replica(&fixture, &records, &secrets);
    let fresh = replica
        .refresher
        .fresh_secrets(fixture.descriptor, &record, current)
        .await
        .unwrap();
    assert_eq!(fresh.expose()["access_token"], "access-1");
    assert_eq!(unreachable.refused.load(Ordering::SeqCst), 3);
    assert_rotated(&secrets, &record).await;
    assert_eq!(
        fixture.provider.requests.load(Ordering::SeqCst),
        1,
        "the tokens were saved, not asked for again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_rotated_tokens_are_saved_through_a_records_database_outage() {
    let server = url::Url::parse(&patchbay_testkit::services::postgres_url()).unwrap();
    let address =
        tokio::net::lookup_host((server.host_str().unwrap(), server.port().unwrap_or(5432)))
            .await
            .unwrap()
            .next()
            .unwrap();
    let proxy = FaultProxy::start(address).await.unwrap();
    let mut proxied = server.clone();
    proxied.set_host(Some("127.0.0.1")).unwrap();
    proxied.set_port(Some(proxy.address().port())).unwrap();
    let records = patchbay_store::open_record_store(proxied.as_str())
        .await
        .unwrap();

    let fixture = fixture().await;
    // The database goes away while the provider is answering, so the lease check
    // before the save finds it down.
    *fixture.provider.mode.lock().unwrap() = Mode::StallFirstAnswer(Duration::from_millis(300));
    let (_dir, secrets, record, current) = expired_with_local_secrets(&records).await;
    let replica = replica(&fixture, &records, &secrets);
    let refresh = refresh_in_flight(&fixture, &replica.refresher, &record, current).await;
    // Longer than the store waits for a connection, so a save attempt fails.
    proxy.cut();
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(!refresh.is_finished(), "the save waits for the database");
    proxy.restore();

    let fresh = refresh.await.unwrap().unwrap();
    assert_eq!(fresh.expose()["access_token"], "access-1");
    assert_rotated(&secrets, &record).await;
    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 1);
}

async fn two_replica_storm(records: Arc<dyn RecordStore>) {
    let fixture = fixture().await;
    let (_dir, secrets, record, current) = expired_with_local_secrets(&records).await;
    let replicas = [
        replica(&fixture, &records, &secrets),
        replica(&fixture, &records, &secrets),
    ];
    storm(&fixture, &replicas, &record, current).await;
    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 1);
    assert_rotated(&secrets, &record).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_sqlite_file_send_one_token_request() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
    let records: Arc<dyn RecordStore> = Arc::new(SqliteRecordStore::open(&url).await.unwrap());
    two_replica_storm(records).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn needs_postgres_two_replicas_send_one_token_request() {
    let url = patchbay_testkit::services::postgres_url();
    let records = patchbay_store::open_record_store(&url).await.unwrap();
    two_replica_storm(records).await;
}

#[tokio::test]
async fn invalid_grant_marks_the_connection_needs_reauth() {
    let fixture = fixture().await;
    let records = memory_records().await;
    let (_dir, secrets, record, current) = expired_with_local_secrets(&records).await;
    *fixture.provider.mode.lock().unwrap() = Mode::InvalidGrant;
    let replica = replica(&fixture, &records, &secrets);
    let error = replica
        .refresher
        .fresh_secrets(fixture.descriptor, &record, current)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth);
    assert_eq!(
        error.message(),
        "the Toy authorization expired or was revoked; reconnect Toy"
    );
    let stored = records
        .get_connection(&alice(), &record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ConnectionStatus::NeedsReauth);
    assert_eq!(
        fixture.provider.requests.load(Ordering::SeqCst),
        1,
        "no retry of a refusal"
    );
}

#[tokio::test]
async fn invalid_grant_at_403_is_a_refusal_too() {
    let fixture = fixture().await;
    let records = memory_records().await;
    let (_dir, secrets, record, current) = expired_with_local_secrets(&records).await;
    *fixture.provider.mode.lock().unwrap() = Mode::InvalidGrantForbidden;
    let replica = replica(&fixture, &records, &secrets);
    let error = replica
        .refresher
        .fresh_secrets(fixture.descriptor, &record, current)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NeedsReauth, "{error}");
    let stored = records
        .get_connection(&alice(), &record.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status, ConnectionStatus::NeedsReauth);
}

#[tokio::test]
async fn a_rejected_token_is_refreshed_once_unless_it_changed_meanwhile() {
    let fixture = fixture().await;
    let records = memory_records().await;
    let (_dir, secrets, record, rejected) = expired_with_local_secrets(&records).await;
    let replica = replica(&fixture, &records, &secrets);
    let fresh = replica
        .refresher
        .refresh_after_rejection(fixture.descriptor, &record, &rejected)
        .await
        .unwrap();
    assert_eq!(fresh.expose()["access_token"], "access-1");
    let again = replica
        .refresher
        .refresh_after_rejection(fixture.descriptor, &record, &rejected)
        .await
        .unwrap();
    assert_eq!(again.expose()["access_token"], "access-1");
    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 1);
}
