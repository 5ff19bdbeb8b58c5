//! Connections of an organisation and of a user with the same id keep their secrets in
//! separate Vault folders (`orgs/<id>/…` and `users/<id>/…`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use patchbay_core::{
    AuthKind, Category, ConnectorDescriptor, ConnectorEnv, Registry, SecretString, Tenant,
};
use patchbay_host::{HostBuilder, HostConfig};
use patchbay_store::vault::VaultAuth;
use patchbay_store::{RecordStore, SqliteRecordStore, VaultConfig, VaultSecretStore};
use serde_json::json;
use tower::ServiceExt;

mod support;

use patchbay_testkit::services;

use support::FormEcho;

const INTERNAL_SECRET: &str = "internal-secret-for-tests-0123456789";

static DESCRIPTOR: ConnectorDescriptor = ConnectorDescriptor {
    id: "keyed",
    display_name: "Keyed",
    category: Category::Observability,
    auth_kinds: &[AuthKind::ApiKey],
    env_vars: &[],
    feature_flag: None,
    disabled_message: None,
    webhook: None,
    oauth: None,
    connect_schema: schemars::Schema::default,
    operations: Vec::new,
    build: |_| Ok(Box::new(FormEcho(&DESCRIPTOR))),
};

#[tokio::test]
async fn needs_vault_an_org_and_a_user_with_the_same_id_get_separate_folders() {
    let services::Vault { addr, token } = services::vault();
    let base = format!("paths-{}", uuid::Uuid::new_v4().simple());
    let vault = VaultSecretStore::connect(VaultConfig {
        mount: "patchbay".into(),
        base_path: base.clone(),
        cache_ttl: Duration::ZERO,
        ..VaultConfig::new(addr, VaultAuth::Token(SecretString::from(token)))
    })
    .await
    .unwrap();
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let mut env = ConnectorEnv::from_pairs([("INTERNAL_API_SECRET", INTERNAL_SECRET)]);
    env.set("PATCHBAY_PUBLIC_URL", "http://patchbay.test");
    let registry = Registry::build([&DESCRIPTOR], &env).unwrap();
    let router = HostBuilder::new(HostConfig::from_env(&env).unwrap(), env)
        .registry(registry)
        .records(Arc::clone(&records))
        .secrets(Arc::new(vault))
        .build()
        .await
        .unwrap()
        .router();

    let as_org = Tenant {
        user_id: "u-1".into(),
        org_id: Some("alice".into()),
    };
    let as_user = Tenant::user("alice");
    for tenant in [&as_org, &as_user] {
        let mut request = Request::post("/api/connections")
            .header("content-type", "application/json")
            .header("x-user-id", tenant.user_id.as_str())
            .header("x-internal-secret", INTERNAL_SECRET);
        if let Some(org) = &tenant.org_id {
            request = request.header("x-org-id", org.as_str());
        }
        let body = json!({ "connector": "keyed", "fields": { "api_key": "k" } });
        let response = router
            .clone()
            .oneshot(request.body(Body::from(body.to_string())).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&bytes)
        );
    }

    let org_ref = records.list_connections(&as_org).await.unwrap()[0]
        .secret_ref
        .clone();
    let user_ref = records.list_connections(&as_user).await.unwrap()[0]
        .secret_ref
        .clone();
    assert!(
        org_ref
            .0
            .starts_with(&format!("vault:patchbay/{base}/orgs/alice/keyed/")),
        "{org_ref}"
    );
    assert!(
        user_ref
            .0
            .starts_with(&format!("vault:patchbay/{base}/users/alice/keyed/")),
        "{user_ref}"
    );
}
