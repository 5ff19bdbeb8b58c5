//! The orphaned-secret sweep: it removes secrets no connection points to, keeps every
//! connection's secret, and spares a secret written during its wait (a connect still
//! in progress).

use std::sync::Arc;
use std::time::Duration;

use patchbay_core::{
    AuthRequest, ConnectorEnv, FormFields, Registry, RevealedJson, Tenant, ValidationReport,
};
use patchbay_host::{AppState, HostBuilder, HostConfig};
use patchbay_store::{LocalSecretStore, MasterKey, RecordStore, SecretLocation, SqliteRecordStore};
use serde_json::json;

async fn state(dir: &tempfile::TempDir) -> AppState {
    let env = ConnectorEnv::from_pairs([("PATCHBAY_PUBLIC_URL", "http://patchbay.test")]);
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let secrets = Arc::new(LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap());
    let registry = Registry::build([&patchbay_connector_datadog::DESCRIPTOR], &env).unwrap();
    HostBuilder::new(HostConfig::from_env(&env).unwrap(), env)
        .registry(registry)
        .records(records)
        .secrets(secrets)
        .build()
        .await
        .unwrap()
        .state()
        .clone()
}

fn tenant() -> Tenant {
    Tenant {
        user_id: "alice".to_owned(),
        org_id: None,
    }
}

/// A Datadog connection stored the way the API stores one; its secret reference.
async fn connect(state: &AppState) -> patchbay_store::SecretRef {
    let connector = state.registry.get("datadog").unwrap().clone();
    let form = json!({ "api_key": "sweep-api-key-0001", "app_key": "sweep-app-key-0001", "site": "datadoghq.com" });
    let credentials = connector
        .authenticate(AuthRequest::Form(FormFields(
            form.as_object().unwrap().clone(),
        )))
        .await
        .unwrap();
    let stored = state
        .connections()
        .store(
            connector.as_ref(),
            tenant(),
            None,
            false,
            credentials,
            ValidationReport::new("datadog", Vec::new()),
        )
        .await
        .unwrap();
    stored.record.secret_ref
}

/// A secret written as a connect writes one, with no record after it.
async fn orphan(state: &AppState, connection_id: &str) -> patchbay_store::SecretRef {
    state
        .secrets
        .put(
            &SecretLocation::new(&tenant(), "datadog", connection_id),
            &RevealedJson::new(json!({ "api_key": "orphaned-key" })),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn the_sweep_removes_only_secrets_without_a_connection() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    let kept = connect(&state).await;
    let orphaned = orphan(&state, "killed-mid-connect").await;

    let sweep = state
        .connections()
        .sweep_orphaned_secrets(Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(sweep.listed, 2);
    assert_eq!(sweep.removed, vec![orphaned.clone()]);
    assert!(
        state.secrets.get(&orphaned).await.is_err(),
        "the orphan is gone"
    );
    assert_eq!(
        state.secrets.get(&kept).await.unwrap().expose()["api_key"],
        "sweep-api-key-0001",
        "the connection keeps its secret"
    );

    let again = state
        .connections()
        .sweep_orphaned_secrets(Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((again.listed, again.removed.len()), (1, 0));
}

#[tokio::test]
async fn a_secret_written_during_the_wait_is_spared() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir).await;
    let old = orphan(&state, "left-behind").await;

    let sweeping = {
        let state = state.clone();
        tokio::spawn(async move {
            state
                .connections()
                .sweep_orphaned_secrets(Duration::from_millis(300))
                .await
        })
    };
    // A connect that has stored its secret and not yet its record.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let in_progress = orphan(&state, "connect-in-progress").await;

    let sweep = sweeping.await.unwrap().unwrap();
    assert_eq!(sweep.removed, vec![old]);
    assert!(
        state.secrets.get(&in_progress).await.is_ok(),
        "a secret newer than the wait is left for the connect to finish"
    );
}
