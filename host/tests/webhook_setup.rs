//! A connector's own webhook set-up instructions: the connect answer shows them
//! with the URL and the one-time secret filled in, the connection view without the
//! secret, and a rotation with the new secret. A webhook declared for POST and PUT
//! takes deliveries by both methods.

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use patchbay_core::{
    AlertSeverity, AlertStatus, AuthKind, AuthRequest, Category, Connector, ConnectorContext,
    ConnectorDescriptor, ConnectorEnv, Credentials, Error, ErrorKind, EventKind, NormalizedAlert,
    QueryOutput, Registry, Result, UnverifiedDelivery, ValidationReport, VerifiedDelivery,
    WebhookAuth, WebhookDescriptor, WebhookMethod, WebhookOutcome, WebhookSetup, WebhookSetupField,
};
use patchbay_host::{HostBuilder, HostConfig};
use patchbay_store::{LocalSecretStore, MasterKey, RecordStore, SqliteRecordStore};
use serde_json::{json, Value};
use subtle::ConstantTimeEq;
use tower::ServiceExt;

const INTERNAL_SECRET: &str = "internal-secret-for-tests-0123456789";

static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: "instructed",
    display_name: "Instructed",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: Some(WebhookDescriptor {
        path: "/instructed/webhook/{user_id}",
        methods: &[WebhookMethod::Post, WebhookMethod::Put],
        auth: WebhookAuth::Signature,
    }),
    oauth: None,
    connect_schema: schemars::Schema::default,
    operations: Vec::new,
    build: |_| Ok(Box::new(Instructed)),
};

/// Takes the connect form's `method` as settings; verifies deliveries carrying the
/// webhook secret in `X-Secret`; gives set-up instructions naming that header.
struct Instructed;

#[async_trait]
impl Connector for Instructed {
    type Config = Value;
    type Secrets = Value;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        &DESCRIPTOR
    }

    async fn authenticate(&self, request: AuthRequest) -> Result<Credentials<Value, Value>> {
        let AuthRequest::Form(fields) = request else {
            return Err(Error::unsupported("form only"));
        };
        Ok(Credentials::new(Value::Object(fields.0), json!({})))
    }

    async fn validate(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &mut Credentials<Value, Value>,
    ) -> Result<ValidationReport> {
        Ok(ValidationReport::new(DESCRIPTOR.id, Vec::new()))
    }

    async fn query(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &Credentials<Value, Value>,
        _operation: &str,
        _params: Value,
    ) -> Result<QueryOutput> {
        Ok(QueryOutput::default())
    }

    async fn verify(
        &self,
        _ctx: &ConnectorContext,
        credentials: Option<&Credentials<Value, Value>>,
        delivery: UnverifiedDelivery,
    ) -> Result<VerifiedDelivery> {
        let secret = credentials.and_then(|credentials| credentials.webhook_secret.as_ref());
        let given = delivery.header("x-secret").unwrap_or_default();
        match secret {
            Some(secret) if bool::from(secret.expose().as_bytes().ct_eq(given.as_bytes())) => {
                Ok(delivery.mark_verified())
            }
            _ => Err(Error::new(ErrorKind::AuthFailed, "wrong secret")),
        }
    }

    async fn normalize(
        &self,
        _ctx: &ConnectorContext,
        _config: &Value,
        delivery: &VerifiedDelivery,
    ) -> Result<WebhookOutcome> {
        let raw: Value = serde_json::from_slice(delivery.body()).unwrap_or(Value::Null);
        let id = raw["id"].as_str().unwrap_or("none").to_owned();
        Ok(WebhookOutcome {
            events: vec![NormalizedAlert {
                source: DESCRIPTOR.id.to_owned(),
                kind: EventKind::Alert,
                external_id: id.clone(),
                dedup_key: id,
                title: "test".to_owned(),
                status: AlertStatus::Firing,
                severity: AlertSeverity::Unknown,
                service: None,
                started_at: None,
                ended_at: None,
                url: None,
                labels: Default::default(),
                tags: Vec::new(),
                raw,
            }],
            reply: None,
        })
    }

    fn webhook_setup(&self, config: &Value) -> Option<WebhookSetup> {
        let method = config.get("method").and_then(Value::as_str)?;
        Some(WebhookSetup {
            location: "Instructed > Webhooks".to_owned(),
            fields: vec![
                WebhookSetupField::url("URL"),
                WebhookSetupField::text("HTTP Method", method),
                WebhookSetupField::text("Header", "X-Secret"),
                WebhookSetupField::credential("Header value"),
            ],
            steps: vec!["send a test delivery".to_owned()],
        })
    }
}

async fn send(
    router: &Router,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json")
        .header("x-user-id", "alice")
        .header("x-internal-secret", INTERNAL_SECRET);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
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

async fn router() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let secrets = Arc::new(LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap());
    let mut env = ConnectorEnv::from_pairs([("INTERNAL_API_SECRET", INTERNAL_SECRET)]);
    env.set("PATCHBAY_PUBLIC_URL", "http://patchbay.test");
    let registry = Registry::build([&DESCRIPTOR], &env).unwrap();
    let host = HostBuilder::new(HostConfig::from_env(&env).unwrap(), env)
        .registry(registry)
        .records(records)
        .secrets(secrets)
        .build()
        .await
        .unwrap();
    (host.router(), dir)
}

#[tokio::test]
async fn the_connect_answer_carries_the_connectors_setup_with_url_and_secret_filled_in() {
    let (router, _dir) = router().await;
    let (status, connected) = send(
        &router,
        "POST",
        "/api/connections",
        &[],
        Some(json!({"connector": "instructed", "fields": {"method": "PUT"}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{connected}");
    let url = "http://patchbay.test/instructed/webhook/alice";
    let secret = connected["webhook"]["secret"].as_str().unwrap().to_owned();
    assert_eq!(connected["webhook"]["url"], url);
    assert_eq!(
        connected["webhook"]["setup"],
        json!({
            "location": "Instructed > Webhooks",
            "fields": [
                {"name": "URL", "value": url},
                {"name": "HTTP Method", "value": "PUT"},
                {"name": "Header", "value": "X-Secret"},
                {"name": "Header value", "value": secret},
            ],
            "steps": ["send a test delivery"],
        })
    );

    // The connection view repeats the instructions but never the secret.
    let id = connected["connection"]["id"].as_str().unwrap().to_owned();
    let (status, shown) = send(&router, "GET", &format!("/api/connections/{id}"), &[], None).await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    let setup = &shown["connection"]["webhook"]["setup"];
    assert_eq!(setup["fields"][1]["value"], "PUT");
    assert_eq!(setup["fields"][3]["value"], Value::Null);
    assert!(!shown.to_string().contains(&secret));

    // A rotation shows the new secret in the same place.
    let (status, rotated) = send(
        &router,
        "POST",
        &format!("/api/connections/{id}/webhook/rotate"),
        &[],
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_secret = rotated["webhook"]["secret"].as_str().unwrap();
    assert_ne!(new_secret, secret);
    assert_eq!(
        rotated["webhook"]["setup"]["fields"][3]["value"],
        new_secret
    );
}

#[tokio::test]
async fn connectors_without_setup_answer_as_before() {
    let (router, _dir) = router().await;
    let (status, connected) = send(
        &router,
        "POST",
        "/api/connections",
        &[],
        Some(json!({"connector": "instructed", "fields": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{connected}");
    assert!(connected["webhook"].get("setup").is_none(), "{connected}");
    assert!(connected["connection"]["webhook"].get("setup").is_none());
}

#[tokio::test]
async fn a_webhook_declared_for_post_and_put_takes_both() {
    let (router, _dir) = router().await;
    let (_, connected) = send(
        &router,
        "POST",
        "/api/connections",
        &[],
        Some(json!({"connector": "instructed", "fields": {"method": "PUT"}})),
    )
    .await;
    let secret = connected["webhook"]["secret"].as_str().unwrap().to_owned();
    let path = "/instructed/webhook/alice";
    for (method, id) in [("PUT", "d-put"), ("POST", "d-post")] {
        let (status, answer) = send(
            &router,
            method,
            path,
            &[("x-secret", &secret)],
            Some(json!({"id": id})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{method}: {answer}");
        assert_eq!(answer, json!({"accepted": 1, "duplicates": 0}), "{method}");
    }
    let (status, _) = send(
        &router,
        "PUT",
        path,
        &[("x-secret", "wrong")],
        Some(json!({"id": "d-forged"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(&router, "PATCH", path, &[("x-secret", &secret)], None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
}
