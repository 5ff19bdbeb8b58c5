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
use patchbay_oauth::state::{hash_state, pkce_challenge, pkce_verifier};
use patchbay_oauth::{CallbackParams, OAuthEngine, TokenRefresher};
use patchbay_store::{
    ConnectionRecord, ConnectionStatus, LocalSecretStore, MasterKey, PendingAuthorization,
    RecordStore, SecretLocation, SecretStore, SqliteRecordStore,
};
use serde_json::{json, Value};

/// How the fake token endpoint answers.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Issue,
    InvalidGrant,
    ErrorAt200,
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
        Mode::ErrorAt200 => (
            StatusCode::OK,
            Json(json!({ "ok": false, "error": "bad_redirect_uri" })),
        ),
        Mode::Issue => {
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
        scopes: &["chat:write", "channels:read"],
        scope_separator: ",",
        extra_authorize_params: &[("access_type", "offline")],
        client_auth: ClientAuthStyle::BasicHeader,
        pkce: true,
        client_id_env: &["TOY_CLIENT_ID", "TOY_LEGACY_CLIENT_ID"],
        client_secret_env: &["TOY_CLIENT_SECRET"],
        callback_path: Box::leak(format!("/{id}/callback").into_boxed_str()),
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

#[tokio::test]
async fn authorize_url_carries_state_pkce_scopes_and_redirect_uri() {
    let fixture = fixture().await;
    let engine = engine(&fixture, memory_records().await);
    let start = engine
        .start(&alice(), fixture.descriptor, None, Default::default())
        .await
        .unwrap();
    let query = query_of(&start.authorize_url);
    let state = &query["state"];
    assert_eq!(state.len(), 43);
    assert_eq!(query["client_id"], "toy-client");
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["redirect_uri"], "http://patchbay.test/toy/callback");
    assert_eq!(query["scope"], "chat:write,channels:read");
    assert_eq!(query["access_type"], "offline");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(
        query["code_challenge"],
        pkce_challenge(&pkce_verifier(state))
    );
    let remaining = start.expires_at - Utc::now();
    assert!(
        remaining > chrono::TimeDelta::minutes(9) && remaining <= chrono::TimeDelta::minutes(10)
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
        .start(&alice(), fixture.descriptor, None, Default::default())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(
        error.message(),
        "Toy OAuth credentials not configured: set TOY_CLIENT_ID and TOY_CLIENT_SECRET"
    );
}

async fn started_state(engine: &OAuthEngine, descriptor: &'static ConnectorDescriptor) -> String {
    let start = engine
        .start(
            &alice(),
            descriptor,
            Some("work".into()),
            serde_json::Map::from_iter([("base_url".to_owned(), json!("https://ghe.example"))]),
        )
        .await
        .unwrap();
    query_of(&start.authorize_url)["state"].clone()
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
async fn code_exchange_sends_the_derived_verifier_and_the_same_redirect_uri() {
    let fixture = fixture().await;
    let engine = engine(&fixture, memory_records().await);
    let state = started_state(&engine, fixture.descriptor).await;
    let done = engine
        .complete(
            fixture.descriptor,
            callback(Some(&state), Some("good-code")),
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
    assert_eq!(form["code_verifier"], pkce_verifier(&state));
    assert!(
        !form.contains_key("client_secret"),
        "basic auth keeps the secret out of the body"
    );

    let error = engine
        .complete(
            fixture.descriptor,
            callback(Some(&state), Some("good-code")),
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
        .complete(fixture.descriptor, callback(None, Some("good-code")))
        .await
        .unwrap_err();
    assert_eq!(missing.message(), "Missing state parameter");

    let forged = engine
        .complete(
            fixture.descriptor,
            callback(Some("forged"), Some("good-code")),
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
            created_at: Utc::now() - chrono::TimeDelta::minutes(11),
            expires_at: Utc::now() - chrono::TimeDelta::minutes(1),
        })
        .await
        .unwrap();
    let expired = engine
        .complete(
            fixture.descriptor,
            callback(Some(expired_state), Some("good-code")),
        )
        .await
        .unwrap_err();
    assert!(
        expired
            .message()
            .starts_with("The authorization request expired"),
        "{expired}"
    );

    let for_other = started_state(&engine, fixture.other).await;
    let wrong = engine
        .complete(
            fixture.descriptor,
            callback(Some(&for_other), Some("good-code")),
        )
        .await
        .unwrap_err();
    assert!(wrong.message().contains("started for `other`"), "{wrong}");
    let reused = engine
        .complete(fixture.other, callback(Some(&for_other), Some("good-code")))
        .await
        .unwrap_err();
    assert_eq!(
        reused.message(),
        "This authorization link was already used",
        "consumed anyway"
    );

    let denied_state = started_state(&engine, fixture.descriptor).await;
    let denied = engine
        .complete(
            fixture.descriptor,
            CallbackParams {
                code: None,
                state: Some(denied_state),
                error: Some("access_denied".into()),
                error_description: Some("The user denied".into()),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(denied.kind(), ErrorKind::PermissionDenied);
    assert!(denied.message().contains("access_denied"), "{denied}");

    let no_code_state = started_state(&engine, fixture.descriptor).await;
    let no_code = engine
        .complete(fixture.descriptor, callback(Some(&no_code_state), None))
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
async fn errors_reported_at_200_reach_the_user_by_name() {
    let fixture = fixture().await;
    let engine = engine(&fixture, memory_records().await);
    *fixture.provider.mode.lock().unwrap() = Mode::ErrorAt200;
    let state = started_state(&engine, fixture.descriptor).await;
    let error = engine
        .complete(
            fixture.descriptor,
            callback(Some(&state), Some("good-code")),
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
    let state = started_state(&engine, fixture.descriptor).await;
    let error = engine
        .complete(
            fixture.descriptor,
            callback(Some(&state), Some("wrong-code")),
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
                tenant: "acme".into(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refresh_storm_sends_one_token_request() {
    let fixture = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let records = memory_records().await;
    let secrets = local_secrets(dir.path());
    let record = expired_connection(&records, &secrets).await;
    let current = secrets.get(&record.secret_ref).await.unwrap();
    let replicas = [replica(&fixture, &records, &secrets)];
    storm(&fixture, &replicas, &record, current).await;
    assert_eq!(fixture.provider.requests.load(Ordering::SeqCst), 1);
    assert_eq!(replicas[0].refresher.token_requests(), 1);
    let forms = fixture.provider.forms.lock().unwrap().clone();
    assert_eq!(forms[0]["grant_type"], "refresh_token");
    assert_eq!(forms[0]["refresh_token"], "refresh-old");
    assert_rotated(&secrets, &record).await;
}

async fn two_replica_storm(records: Arc<dyn RecordStore>) {
    let fixture = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let secrets = local_secrets(dir.path());
    let record = expired_connection(&records, &secrets).await;
    let current = secrets.get(&record.secret_ref).await.unwrap();
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
    let dir = tempfile::tempdir().unwrap();
    let records = memory_records().await;
    let secrets = local_secrets(dir.path());
    let record = expired_connection(&records, &secrets).await;
    let current = secrets.get(&record.secret_ref).await.unwrap();
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
async fn a_rejected_token_is_refreshed_once_unless_it_changed_meanwhile() {
    let fixture = fixture().await;
    let dir = tempfile::tempdir().unwrap();
    let records = memory_records().await;
    let secrets = local_secrets(dir.path());
    let record = expired_connection(&records, &secrets).await;
    let rejected = secrets.get(&record.secret_ref).await.unwrap();
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
