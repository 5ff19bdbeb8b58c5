//! Webhook-secret rotation under a concurrent token write: the rotation changes only
//! `webhook_secret` and never restores an older refresh token.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use patchbay_core::{
    AuthKind, Category, ConnectorDescriptor, ConnectorEnv, Registry, Result, RevealedJson, Tenant,
    WebhookAuth, WebhookDescriptor, WebhookMethod,
};
use patchbay_host::{HostBuilder, HostConfig};
use patchbay_store::{
    modify, LocalSecretStore, MasterKey, RecordStore, SecretLocation, SecretRef, SecretStore,
    SecretVersion, SqliteRecordStore,
};
use serde_json::{json, Value};
use tower::ServiceExt;

mod support;

use support::FormEcho;

const INTERNAL_SECRET: &str = "internal-secret-for-tests-0123456789";

static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: "signer",
    display_name: "Signer",
    category: Category::Communication,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/signer/webhook/{user_id}",
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::Signature,
    }),
    oauth: None,
    connect_schema: schemars::Schema::default,
    operations: Vec::new,
    build: |_| Ok(Box::new(FormEcho(&DESCRIPTOR))),
};

/// A secret store that, right after the next read, lets another writer store a
/// newer refresh token behind the reader's back.
struct RacingStore {
    inner: LocalSecretStore,
    pending: Mutex<Option<String>>,
}

impl RacingStore {
    fn arm(&self, refresh_token: &str) {
        *self.pending.lock().unwrap() = Some(refresh_token.to_owned());
    }

    async fn race(&self, reference: &SecretRef) {
        let Some(refresh_token) = self.pending.lock().unwrap().take() else {
            return;
        };
        modify(&self.inner, reference, |latest| {
            let mut latest = latest.expose().clone();
            latest["refresh_token"] = json!(refresh_token);
            Ok(RevealedJson::new(latest))
        })
        .await
        .unwrap();
    }
}

#[async_trait]
impl SecretStore for RacingStore {
    async fn put(&self, location: &SecretLocation, value: &RevealedJson) -> Result<SecretRef> {
        self.inner.put(location, value).await
    }

    fn reference_for(&self, location: &SecretLocation) -> Option<SecretRef> {
        self.inner.reference_for(location)
    }

    async fn get_versioned(&self, reference: &SecretRef) -> Result<(RevealedJson, SecretVersion)> {
        let read = self.inner.get_versioned(reference).await;
        self.race(reference).await;
        read
    }

    async fn update_if_version(
        &self,
        reference: &SecretRef,
        expected: SecretVersion,
        value: &RevealedJson,
    ) -> Result<SecretVersion> {
        self.inner
            .update_if_version(reference, expected, value)
            .await
    }

    async fn get(&self, reference: &SecretRef) -> Result<RevealedJson> {
        let read = self.inner.get(reference).await;
        self.race(reference).await;
        read
    }

    async fn get_uncached(&self, reference: &SecretRef) -> Result<RevealedJson> {
        let read = self.inner.get_uncached(reference).await;
        self.race(reference).await;
        read
    }

    async fn delete(&self, reference: &SecretRef) -> Result<()> {
        self.inner.delete(reference).await
    }

    async fn list(&self) -> Result<Vec<SecretRef>> {
        self.inner.list().await
    }

    async fn health(&self) -> Result<()> {
        self.inner.health().await
    }

    fn backend(&self) -> &'static str {
        self.inner.backend()
    }
}

async fn send(
    router: &Router,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("x-user-id", "alice")
        .header("x-org-id", "acme")
        .header("x-internal-secret", INTERNAL_SECRET)
        .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn rotation_racing_a_token_write_keeps_the_newer_refresh_token() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(RacingStore {
        inner: LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap(),
        pending: Mutex::new(None),
    });
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let mut env = ConnectorEnv::from_pairs([("INTERNAL_API_SECRET", INTERNAL_SECRET)]);
    env.set("PATCHBAY_PUBLIC_URL", "http://patchbay.test");
    let config = HostConfig::from_env(&env).unwrap();
    let registry = Registry::build([&DESCRIPTOR], &env).unwrap();
    let host = HostBuilder::new(config, env)
        .registry(registry)
        .records(Arc::clone(&records))
        .secrets(secrets.clone())
        .build()
        .await
        .unwrap();
    let router = host.router();

    let (status, connected) = send(
        &router,
        "POST",
        "/api/connections",
        Some(json!({
            "connector": "signer",
            "fields": { "access_token": "a1", "refresh_token": "r1" }
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{connected}");
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    let first_secret = connected["webhook"]["secret"].as_str().unwrap().to_owned();

    secrets.arm("r2");
    let (status, rotated) = send(
        &router,
        "POST",
        &format!("/api/connections/{id}/webhook/rotate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["webhook"]["secret"].as_str().unwrap();
    assert_ne!(new_secret, first_secret);

    let tenant = Tenant {
        user_id: "alice".into(),
        org_id: Some("acme".into()),
    };
    let record = records.get_connection(&tenant, &id).await.unwrap().unwrap();
    let stored = secrets.inner.get(&record.secret_ref).await.unwrap();
    assert_eq!(
        stored.expose(),
        &json!({ "access_token": "a1", "refresh_token": "r2", "webhook_secret": new_secret }),
        "the rotation kept the token written meanwhile and changed only the webhook secret"
    );
}

static PROVIDER_SIGNED: ConnectorDescriptor = ConnectorDescriptor {
    id: "issuer",
    display_name: "Issuer",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/issuer/webhook/{user_id}",
        methods: &[WebhookMethod::Post],
        auth: WebhookAuth::ProviderSignature,
    }),
    oauth: None,
    connect_schema: schemars::Schema::default,
    operations: Vec::new,
    build: |_| Ok(Box::new(FormEcho(&PROVIDER_SIGNED))),
};

#[tokio::test]
async fn provider_issued_secrets_are_added_and_removed_without_losing_a_token_written_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = Arc::new(RacingStore {
        inner: LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap(),
        pending: Mutex::new(None),
    });
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let mut env = ConnectorEnv::from_pairs([("INTERNAL_API_SECRET", INTERNAL_SECRET)]);
    env.set("PATCHBAY_PUBLIC_URL", "http://patchbay.test");
    let config = HostConfig::from_env(&env).unwrap();
    let registry = Registry::build([&PROVIDER_SIGNED, &DESCRIPTOR], &env).unwrap();
    let host = HostBuilder::new(config, env)
        .registry(registry)
        .records(Arc::clone(&records))
        .secrets(secrets.clone())
        .build()
        .await
        .unwrap();
    let router = host.router();

    let (status, connected) = send(
        &router,
        "POST",
        "/api/connections",
        Some(json!({
            "connector": "issuer",
            "fields": { "access_token": "a1", "refresh_token": "r1" }
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{connected}");
    assert!(connected["webhook"].get("secret").is_none(), "{connected}");
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    let secrets_path = format!("/api/connections/{id}/webhook/secrets");

    // The host cannot mint a secret the provider issues.
    let (status, _) = send(
        &router,
        "POST",
        &format!("/api/connections/{id}/webhook/rotate"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);

    let old_secret = "issued-secret-old-5d1c";
    let new_secret = "issued-secret-new-8e2f";
    let (status, first) = send(
        &router,
        "POST",
        &secrets_path,
        Some(json!({ "secret": old_secret })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    secrets.arm("r2");
    let (status, second) = send(
        &router,
        "POST",
        &secrets_path,
        Some(json!({ "secret": new_secret })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{second}");
    for answer in [&first, &second] {
        let text = answer.to_string();
        assert!(
            !text.contains(old_secret) && !text.contains(new_secret),
            "{text}"
        );
        assert!(answer["webhook_secret"]["id"]
            .as_str()
            .unwrap()
            .starts_with("whs_"));
        assert!(answer["webhook_secret"]["added_at"].is_string());
    }
    let (status, again) = send(
        &router,
        "POST",
        &secrets_path,
        Some(json!({ "secret": new_secret })),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");

    let (status, refused) = send(
        &router,
        "POST",
        &secrets_path,
        Some(json!({ "secret": 987_654_321 })),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(refused["error"]["field"], "secret");
    assert!(!refused.to_string().contains("987654321"), "{refused}");

    let (status, listed) = send(&router, "GET", &secrets_path, None).await;
    assert_eq!(status, StatusCode::OK);
    let first_id = first["webhook_secret"]["id"].as_str().unwrap();
    let second_id = second["webhook_secret"]["id"].as_str().unwrap();
    let ids: Vec<&str> = listed["webhook_secrets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|secret| secret["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [first_id, second_id]);
    assert!(!listed.to_string().contains("issued-secret"));

    let (status, removed) = send(
        &router,
        "DELETE",
        &format!("{secrets_path}/{first_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{removed}");
    let (status, _) = send(
        &router,
        "DELETE",
        &format!("{secrets_path}/{first_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let tenant = Tenant {
        user_id: "alice".into(),
        org_id: Some("acme".into()),
    };
    let record = records.get_connection(&tenant, &id).await.unwrap().unwrap();
    let stored = secrets.inner.get(&record.secret_ref).await.unwrap();
    assert_eq!(
        stored.expose()["refresh_token"],
        "r2",
        "the token written meanwhile is kept"
    );
    let list = stored.expose()["webhook_secrets"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], second_id);
    assert_eq!(list[0]["secret"], new_secret);

    // A connector whose webhooks the host signs has no provider-issued secrets.
    let (_, signer) = send(
        &router,
        "POST",
        "/api/connections",
        Some(json!({ "connector": "signer", "fields": {} })),
    )
    .await;
    let signer_id = signer["connection"]["id"].as_str().unwrap();
    let (status, _) = send(
        &router,
        "POST",
        &format!("/api/connections/{signer_id}/webhook/secrets"),
        Some(json!({ "secret": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_IMPLEMENTED);
}
