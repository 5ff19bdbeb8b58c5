//! The Kubernetes connector end to end: "Add Cluster" over the API, the real
//! kubectl agent (in process, and its binary) connecting to the host's
//! `/kubectl-agent`, the real kubectl reading the fake Kubernetes API, and
//! revocation. Needs kubectl on `PATH` (Debian's `kubernetes-client`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use futures::StreamExt;
use http_body_util::BodyExt;
use patchbay_connector_kubernetes::client::{AgentState, Relay, RelayError, RelaySettings};
use patchbay_core::{metrics, ConnectorEnv};
use patchbay_host::{AppState, HostBuilder, HostConfig};
use patchbay_kubectl_agent::backoff::SystemClock;
use patchbay_kubectl_agent::config::Config;
use patchbay_kubectl_agent::health::Health;
use patchbay_kubectl_agent::Exit;
use patchbay_kubectl_protocol::fake::FakeKubeApi;
use patchbay_kubectl_protocol::{CloseReason, ErrorCode, PROTOCOL_HEADER};
use patchbay_store::{
    AgentTokenRecord, AgentTokenStatus, LocalSecretStore, MasterKey, RecordStore, SecretStore,
    SqliteRecordStore,
};
use patchbay_testkit::metrics::Scrape;
use rand::SeedableRng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message as Frame;
use tower::ServiceExt;

const INTERNAL_SECRET: &str = "internal-secret-for-tests-0123456789";

/// Fails clearly, never skips, when kubectl is missing.
fn require_kubectl() {
    let found = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join("kubectl").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "these tests run the real kubectl: install Debian's kubernetes-client (apt-get install kubernetes-client) so that kubectl is on PATH"
    );
}

/// A host serving on loopback, with a SQLite records file.
struct Service {
    router: Router,
    state: AppState,
    records: Arc<dyn RecordStore>,
    base: String,
    dir: tempfile::TempDir,
    _server: JoinHandle<()>,
}

impl Service {
    async fn start() -> Service {
        Self::start_with(Relay::default()).await
    }

    async fn start_with(relay: Relay) -> Service {
        Self::start_full(relay, None).await
    }

    /// A replica on the PostgreSQL database at `url`, sharing `secrets` with the others.
    async fn replica(url: &str, secrets: Arc<dyn SecretStore>) -> Service {
        Self::start_full(Relay::default(), Some((url, secrets))).await
    }

    async fn start_full(relay: Relay, postgres: Option<(&str, Arc<dyn SecretStore>)>) -> Service {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let mut env = ConnectorEnv::from_pairs([("INTERNAL_API_SECRET", INTERNAL_SECRET)]);
        env.set("PATCHBAY_PUBLIC_URL", base.clone());
        env.set("PATCHBAY_DATA_DIR", dir.path().display().to_string());
        let builder = match postgres {
            Some((url, secrets)) => {
                env.set("DATABASE_URL", url);
                HostBuilder::new(HostConfig::from_env(&env).unwrap(), env).secrets(secrets)
            }
            None => {
                let database = dir.path().join("records.db");
                let records: Arc<dyn RecordStore> = Arc::new(
                    SqliteRecordStore::open(&format!("sqlite://{}", database.display()))
                        .await
                        .unwrap(),
                );
                HostBuilder::new(HostConfig::from_env(&env).unwrap(), env).records(records)
            }
        };
        let host = builder
            .kubectl_relay(Arc::new(relay))
            .build()
            .await
            .unwrap();
        let state = host.state().clone();
        let records = Arc::clone(&state.records);
        let router = host.router();
        let server = tokio::spawn({
            let router = router.clone();
            async move {
                let _ = axum::serve(listener, router).await;
            }
        });
        Service {
            router,
            state,
            records,
            base,
            dir,
            _server: server,
        }
    }

    fn ws_url(&self) -> String {
        format!("{}/kubectl-agent", self.base.replace("http://", "ws://"))
    }

    fn relay(&self) -> &Relay {
        &self.state.kubectl_relay
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header("x-user-id", "alice")
            .header("x-internal-secret", INTERNAL_SECRET)
            .body(body.map_or_else(Body::empty, |body| Body::from(body.to_string())))
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Scrapes `/metrics`.
    async fn scrape(&self) -> Scrape {
        let request = Request::builder()
            .uri("/metrics")
            .body(Body::empty())
            .unwrap();
        let response = self.router.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        Scrape::new(String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// Adds a cluster; returns its id, the token and the whole answer.
    async fn add_cluster(&self, fields: Value) -> (String, String, Value) {
        let (status, body) = self
            .send(
                "POST",
                "/api/connections",
                Some(json!({"connector": "kubernetes", "label": "Production", "fields": fields})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let id = body["connection"]["id"].as_str().unwrap().to_owned();
        let token = body["agent"]["token"].as_str().unwrap().to_owned();
        (id, token, body)
    }

    /// Waits until an agent of `id` registered (its version is known).
    async fn wait_registered(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.relay().status(id);
            if status.state == AgentState::Connected && status.agent_version.is_some() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the agent of {id} registers within 20 s: {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_disconnected(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while self.relay().status(id).state != AgentState::Disconnected {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the agent of {id} detaches"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The environment of an agent reaching `service` with `token` and running
/// kubectl against `api`.
fn agent_env(
    service: &Service,
    token: &str,
    api: &FakeKubeApi,
    home: &std::path::Path,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let mut pairs = vec![
        ("PATCHBAY_WS_URL".to_owned(), service.ws_url()),
        ("PATCHBAY_AGENT_TOKEN".to_owned(), token.to_owned()),
        ("AGENT_VERSION".to_owned(), "9.9.9-test".to_owned()),
        ("PATH".to_owned(), std::env::var("PATH").unwrap_or_default()),
        ("HOME".to_owned(), home.display().to_string()),
        (
            "KUBECONFIG".to_owned(),
            api.kubeconfig(home).display().to_string(),
        ),
        (
            "PATCHBAY_BACKOFF_INITIAL_SECONDS".to_owned(),
            "0.05".to_owned(),
        ),
        ("PATCHBAY_BACKOFF_MAX_SECONDS".to_owned(), "0.2".to_owned()),
    ];
    pairs.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    pairs
}

/// The agent's library entry point, running in this process.
struct Agent {
    stop: watch::Sender<bool>,
    task: JoinHandle<Exit>,
}

impl Agent {
    fn start(pairs: &[(String, String)]) -> Agent {
        let map: HashMap<String, String> = pairs.iter().cloned().collect();
        let config =
            Config::from_lookup(|name| map.get(name).cloned()).expect("a valid agent config");
        let (stop, shutdown) = watch::channel(false);
        let task = tokio::spawn(async move {
            patchbay_kubectl_agent::run(
                &config,
                Arc::new(Health::default()),
                Arc::new(SystemClock),
                rand::rngs::StdRng::seed_from_u64(7),
                shutdown,
            )
            .await
        });
        Agent { stop, task }
    }

    async fn exit(self) -> Exit {
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the agent exits within 10 s")
            .expect("the agent does not panic")
    }

    async fn stop(self) -> Exit {
        let _ = self.stop.send(true);
        self.exit().await
    }
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[tokio::test]
async fn add_cluster_answers_the_token_once_and_stores_only_its_hash() {
    let service = Service::start().await;
    let (id, token, body) = service
        .add_cluster(json!({"cluster_name": "prod-eu", "notes": "primary", "expires_days": 30}))
        .await;
    // pbk8s_ and 32 random bytes, URL-safe base64 without padding.
    let random = token
        .strip_prefix("pbk8s_")
        .expect("the agent token prefix");
    assert!(random.len() >= 43, "{token}");
    assert!(random
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));

    let agent = &body["agent"];
    assert_eq!(
        agent["install"]["helm_install"],
        "helm install patchbay-kubectl-agent ./connectors/kubernetes/chart -n patchbay --create-namespace -f values.yaml"
    );
    assert_eq!(
        agent["install"]["helm_uninstall"],
        "helm uninstall patchbay-kubectl-agent -n patchbay"
    );
    let values: serde_yaml::Value =
        serde_yaml::from_str(agent["values_yaml"].as_str().unwrap()).unwrap();
    for root in ["patchbay", "aurora"] {
        assert_eq!(
            values[root]["backendUrl"].as_str(),
            Some(service.base.as_str())
        );
        assert_eq!(
            values[root]["wsEndpoint"].as_str(),
            Some(service.ws_url().as_str())
        );
        assert_eq!(values[root]["agentToken"].as_str(), Some(token.as_str()));
    }
    assert_eq!(body["connection"]["metadata"]["cluster_name"], "prod-eu");
    assert_eq!(body["connection"]["agent"]["state"], "disconnected");

    let stored = service.records.agent_token_of(&id).await.unwrap().unwrap();
    assert_eq!(stored.token_hash, sha256_hex(&token));
    assert_eq!(stored.token_prefix, token[..12]);
    assert_eq!(stored.connection_id, id, "the cluster id is the server's");
    assert_eq!(stored.status, AgentTokenStatus::Active);
    let expires = stored.expires_at.unwrap() - stored.created_at;
    assert_eq!(expires.num_days(), 30);

    // Never shown again.
    for path in [
        format!("/api/connections/{id}"),
        "/api/connections".to_owned(),
        "/api/connectors/status".to_owned(),
    ] {
        let (status, body) = service.send("GET", &path, None).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(!body.to_string().contains(random), "{path} shows the token");
    }

    // Form errors name their field.
    for (fields, field) in [
        (json!({}), "cluster_name"),
        (
            json!({"cluster_name": "x", "expires_days": 0}),
            "expires_days",
        ),
    ] {
        let (status, body) = service
            .send(
                "POST",
                "/api/connections",
                Some(json!({"connector": "kubernetes", "fields": fields})),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"]["field"], field, "{body}");
    }
}

/// Connects with `token` (none when `None`), with or without the protocol
/// header, and returns the close frame's code and reason.
async fn refused_close(service: &Service, token: Option<&str>, extensions: bool) -> (u16, String) {
    let mut request = service.ws_url().into_client_request().unwrap();
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    if extensions {
        request
            .headers_mut()
            .insert(PROTOCOL_HEADER, "1".parse().unwrap());
    }
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
        .await
        .expect("a close frame within 5 s");
    match frame {
        Some(Ok(Frame::Close(Some(close)))) => (u16::from(close.code), close.reason.to_string()),
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn rotating_the_token_closes_the_old_agent_and_the_new_token_connects() {
    require_kubectl();
    let service = Service::start().await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, old_token, _) = service.add_cluster(json!({"cluster_name": "prod"})).await;
    let old_agent = Agent::start(&agent_env(&service, &old_token, &api, home.path(), &[]));
    service.wait_registered(&id).await;

    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/agent-token/rotate"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let agent = &body["agent"];
    assert_eq!(agent["revoked"]["tokens_revoked"], 1, "{body}");
    assert_eq!(agent["revoked"]["sockets_closed"], 1, "{body}");
    assert!(
        agent["helm_upgrade"]
            .as_str()
            .unwrap()
            .starts_with("helm upgrade patchbay-kubectl-agent "),
        "{body}"
    );
    let new_token = agent["token"].as_str().unwrap().to_owned();
    assert!(new_token.starts_with("pbk8s_") && new_token != old_token);
    assert!(
        agent["values_yaml"].as_str().unwrap().contains(&new_token),
        "{body}"
    );
    assert_eq!(
        old_agent.exit().await,
        Exit::Terminal(CloseReason::TokenRevoked)
    );
    assert_eq!(
        refused_close(&service, Some(&old_token), true).await.0,
        4003
    );

    // The same cluster, served again with the new token.
    let new_agent = Agent::start(&agent_env(&service, &new_token, &api, home.path(), &[]));
    service.wait_registered(&id).await;
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/version"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    new_agent.stop().await;

    // Only clusters have agent tokens.
    let (status, body) = service
        .send(
            "POST",
            "/api/connections/no-such-connection/agent-token/rotate",
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn each_refused_token_closes_with_its_own_reason() {
    let service = Service::start().await;
    let (revoked_id, revoked, _) = service.add_cluster(json!({"cluster_name": "old"})).await;
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{revoked_id}/agent-token/revoke"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["agent"]["tokens_revoked"], 1);
    // An expired token, as it would be once its days have passed.
    let expired = "pbk8s_expired-token-0123456789abcdefghijklmnopq";
    service
        .records
        .insert_agent_token(&AgentTokenRecord {
            connection_id: "expired-cluster".into(),
            cluster_name: "expired".into(),
            token_hash: sha256_hex(expired),
            token_prefix: expired[..12].into(),
            status: AgentTokenStatus::Active,
            created_at: chrono::Utc::now() - chrono::TimeDelta::days(2),
            expires_at: Some(chrono::Utc::now() - chrono::TimeDelta::days(1)),
            last_connected_at: None,
            last_heartbeat: None,
            agent_version: None,
            capabilities: None,
        })
        .await
        .unwrap();
    let cases = [
        (None, CloseReason::MissingAuthorization),
        (
            Some("pbk8s_not-a-token-we-issued-0123456789abcdefghij"),
            CloseReason::InvalidToken,
        ),
        (Some("some-other-token"), CloseReason::InvalidToken),
        (Some(revoked.as_str()), CloseReason::TokenRevoked),
        (Some(expired), CloseReason::TokenExpired),
    ];
    for (token, reason) in cases {
        assert_eq!(
            refused_close(&service, token, false).await,
            (1008, reason.text().to_owned()),
            "a v1 agent gets 1008 for {reason:?}"
        );
        assert_eq!(
            refused_close(&service, token, true).await,
            (reason.terminal_code(), reason.text().to_owned()),
            "an agent speaking the extensions gets the terminal code for {reason:?}"
        );
    }
    assert_eq!(
        service
            .records
            .find_agent_token(&sha256_hex(expired))
            .await
            .unwrap()
            .unwrap()
            .status,
        AgentTokenStatus::Expired,
        "an expired token is marked so when presented"
    );
    assert_eq!(
        service.relay().status("expired-cluster").state,
        AgentState::Disconnected
    );
    assert_eq!(
        service.relay().status(&revoked_id).state,
        AgentState::Disconnected
    );
}

#[tokio::test]
async fn the_real_agent_registers_and_serves_every_operation_and_validation() {
    require_kubectl();
    let service = Service::start().await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, token, _) = service.add_cluster(json!({"cluster_name": "prod"})).await;
    let agent = Agent::start(&agent_env(&service, &token, &api, home.path(), &[]));
    service.wait_registered(&id).await;

    let (status, body) = service.send("GET", "/api/connectors/status", None).await;
    assert_eq!(status, StatusCode::OK);
    let connection = &body["connectors"]["kubernetes"]["connections"][0];
    assert_eq!(connection["agent"]["state"], "connected", "{body}");
    assert_eq!(connection["agent"]["agents"], 1);
    assert_eq!(connection["agent"]["agent_version"], "9.9.9-test");
    let stored = service.records.agent_token_of(&id).await.unwrap().unwrap();
    assert!(stored.last_connected_at.is_some() && stored.last_heartbeat.is_some());
    assert_eq!(stored.agent_version.as_deref(), Some("9.9.9-test"));

    let operations = [
        (
            "get",
            json!({"resource": "pods", "all_namespaces": true, "output": "wide"}),
            "coredns-6f8d-k2m4p",
        ),
        (
            "describe",
            json!({"resource": "pod", "name": "web-7d4b9c-abcde", "namespace": "default"}),
            "Restart Count:  1",
        ),
        (
            "logs",
            json!({"pod": "web-7d4b9c-abcde", "namespace": "default", "container": "app", "tail": 2}),
            "web app line 300",
        ),
        ("list_events", json!({"namespace": "default"}), "BackOff"),
        ("top", json!({"kind": "nodes"}), "850m"),
        ("api_resources", json!({"api_group": "apps"}), "deployments"),
        ("explain", json!({"resource": "pods"}), "KIND:       Pod"),
        ("version", json!({}), "v1.32.4"),
        (
            "auth_can_i",
            json!({"verb": "list", "resource": "pods", "all_namespaces": true}),
            "yes",
        ),
    ];
    for (operation, params, expected) in operations {
        let (status, body) = service
            .send(
                "POST",
                &format!("/api/connections/{id}/query/{operation}"),
                Some(params),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{operation}: {body}");
        let output = body["data"]["output"].as_str().unwrap();
        assert!(output.contains(expected), "{operation} printed {output}");
        assert!(body["data"]["command"]
            .as_str()
            .unwrap()
            .starts_with("kubectl "));
    }
    // `auth can-i` answering no is an answer, not an error.
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/auth_can_i"),
            Some(json!({"verb": "delete", "resource": "pods"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["data"]["output"].as_str().unwrap().starts_with("no"),
        "{body}"
    );
    // The service's gate refuses before anything reaches the agent.
    api.clear_requests();
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/get"),
            Some(json!({"resource": "secrets"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("refused by the service"),
        "{body}"
    );
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/get"),
            Some(json!({"resource": "--raw=/"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "resource");
    assert_eq!(api.requests(), Vec::new(), "kubectl never ran");
    // A kubectl failure carries kubectl's message.
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/get"),
            Some(json!({"resource": "pods", "name": "no-such-pod", "namespace": "default"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-pod"),
        "{body}"
    );

    // Validation through the agent: every line passes on the fake cluster...
    let (status, body) = service
        .send("POST", &format!("/api/connections/{id}/validate"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let outcomes = |body: &Value| -> HashMap<String, String> {
        body["report"]["checks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|check| {
                (
                    check["id"].as_str().unwrap().to_owned(),
                    check["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let checks = outcomes(&body);
    assert_eq!(body["status"], "active", "{body}");
    for id in [
        "agent_connected",
        "kubectl_version",
        "can_list_pods",
        "can_get_pod_logs",
        "can_list_events",
        "can_list_nodes",
        "can_list_namespaces",
        "can_list_deployments",
        "can_list_services",
        "secrets_not_readable",
        "metrics_server",
    ] {
        assert_eq!(
            checks.get(id).map(String::as_str),
            Some("ok"),
            "{id}: {body}"
        );
    }
    // ...and each fails on its own cause.
    api.set_metrics_enabled(false);
    api.set_access("get", "secrets", true);
    api.set_access("list", "events", false);
    let (_, body) = service
        .send("POST", &format!("/api/connections/{id}/validate"), None)
        .await;
    let checks = outcomes(&body);
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(checks["metrics_server"], "error", "{body}");
    assert_eq!(checks["secrets_not_readable"], "failed", "{body}");
    assert_eq!(checks["can_list_events"], "failed", "{body}");
    assert_eq!(checks["can_list_pods"], "ok", "{body}");
    let text = body.to_string();
    assert!(text.contains("metrics-server does not answer"), "{text}");
    assert!(text.contains("can read Secrets"), "{text}");

    assert_eq!(agent.stop().await, Exit::Shutdown);
    service.wait_disconnected(&id).await;
    let (_, body) = service
        .send("POST", &format!("/api/connections/{id}/validate"), None)
        .await;
    let checks = outcomes(&body);
    assert_eq!(checks["agent_connected"], "error", "{body}");
    assert_eq!(checks["kubectl_version"], "skipped", "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/version"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
}

#[tokio::test]
async fn the_agent_refuses_on_its_own_when_the_service_gate_is_off() {
    require_kubectl();
    let service = Service::start_with(Relay::new(RelaySettings {
        service_allowlist: None,
        ..RelaySettings::default()
    }))
    .await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, token, _) = service.add_cluster(json!({"cluster_name": "prod"})).await;
    let agent = Agent::start(&agent_env(&service, &token, &api, home.path(), &[]));
    service.wait_registered(&id).await;
    let argv = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    for line in [
        "delete pod web-7d4b9c-abcde",
        "get secrets -A",
        "get pods --kubeconfig /etc/passwd",
        "get pods --as system:admin",
        "exec web-7d4b9c-abcde -- sh",
    ] {
        match service.relay().run(&id, argv(line), 10).await {
            Err(RelayError::RefusedByAgent { code, .. }) => {
                assert_eq!(code, ErrorCode::VerbNotAllowed, "{line}")
            }
            other => panic!("kubectl {line}: the agent must refuse, got {other:?}"),
        }
    }
    assert_eq!(api.requests(), Vec::new(), "kubectl never ran");
    let allowed = service
        .relay()
        .run(&id, argv("get nodes"), 10)
        .await
        .unwrap();
    assert!(allowed.output.contains("node-a"));
    agent.stop().await;
}

#[tokio::test]
async fn busy_cancel_output_cap_and_timeout_through_the_host() {
    require_kubectl();
    let service = Service::start().await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, token, _) = service.add_cluster(json!({"cluster_name": "prod"})).await;
    let agent = Agent::start(&agent_env(
        &service,
        &token,
        &api,
        home.path(),
        &[
            ("PATCHBAY_MAX_CONCURRENCY", "1"),
            ("PATCHBAY_MAX_OUTPUT_BYTES", "2000"),
        ],
    ));
    service.wait_registered(&id).await;
    let before = service.scrape().await;
    let relay = Arc::clone(&service.state.kubectl_relay);
    let argv = |line: &str| {
        line.split_whitespace()
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };

    // The cap: the agent cuts the logs and says so; the API passes it on.
    let lines = (1..=1000)
        .map(|n| format!("a long log line number {n}"))
        .collect();
    api.set_logs("default", "web-7d4b9c-fghij", "app", lines);
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/logs"),
            Some(json!({"pod": "web-7d4b9c-fghij", "namespace": "default", "tail": 10000})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["agent_truncated"], true, "{body}");
    assert_eq!(body["truncated"], true, "{body}");
    assert!(body["data"]["output"].as_str().unwrap().len() <= 2000);

    // Busy: one slot, one slow command.
    api.set_response_delay(Duration::from_secs(4));
    let slow = tokio::spawn({
        let relay = Arc::clone(&relay);
        let id = id.clone();
        async move { relay.run(&id, vec!["get".into(), "nodes".into()], 60).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    match relay.run(&id, argv("get pods"), 30).await {
        Err(RelayError::RefusedByAgent {
            code: ErrorCode::Busy,
            ..
        }) => {}
        other => panic!("a second command is busy, got {other:?}"),
    }
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/version"),
            Some(json!({})),
        )
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // Cancel: giving up on the slow command kills it and frees the slot.
    slow.abort();
    let _ = slow.await;
    api.set_response_delay(Duration::ZERO);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let freed = loop {
        match relay.run(&id, argv("get nodes"), 30).await {
            Ok(outcome) => break outcome,
            Err(RelayError::RefusedByAgent {
                code: ErrorCode::Busy,
                ..
            }) if tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await
            }
            other => panic!("the cancelled command frees its slot, got {other:?}"),
        }
    };
    assert!(freed.success && freed.output.contains("node-a"));

    // Timeout: the agent kills kubectl at the command's timeout and answers 124.
    api.set_response_delay(Duration::from_secs(5));
    let started = std::time::Instant::now();
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/get"),
            Some(json!({"resource": "pods", "timeout_seconds": 1})),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("exit code 124"),
        "{body}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped at the timeout"
    );
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/query/get"),
            Some(json!({"resource": "pods", "timeout_seconds": 301})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["field"], "timeout_seconds");

    // The metrics saw each outcome (other tests share the process, hence "at least").
    let after = service.scrape().await;
    let moved = |outcome: &str| {
        let labels = [("outcome", outcome)];
        after.sum(metrics::AGENT_COMMANDS, &labels) - before.sum(metrics::AGENT_COMMANDS, &labels)
    };
    assert!(moved("ok") >= 2.0, "{}", after.text);
    assert!(moved("busy") >= 1.0, "{}", after.text);
    assert!(
        moved("kubectl_failed") >= 1.0,
        "the timed-out command: {}",
        after.text
    );
    assert!(
        after.sum(metrics::AGENT_CONNECTIONS, &[]) >= 1.0,
        "{}",
        after.text
    );
    api.set_response_delay(Duration::ZERO);
    agent.stop().await;
}

#[tokio::test]
async fn revoke_closes_the_live_socket_fails_commands_in_flight_and_stops_the_agent() {
    require_kubectl();
    let service = Service::start().await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, token, _) = service.add_cluster(json!({"cluster_name": "prod"})).await;
    // Two agent replicas of one cluster: either serves.
    let first = Agent::start(&agent_env(&service, &token, &api, home.path(), &[]));
    let second = Agent::start(&agent_env(&service, &token, &api, home.path(), &[]));
    service.wait_registered(&id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while service.relay().status(&id).agents < 2 {
        assert!(tokio::time::Instant::now() < deadline, "both agents attach");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    api.set_response_delay(Duration::from_secs(30));
    let in_flight = tokio::spawn({
        let relay = Arc::clone(&service.state.kubectl_relay);
        let id = id.clone();
        async move { relay.run(&id, vec!["get".into(), "pods".into()], 60).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (status, body) = service
        .send("DELETE", &format!("/api/connections/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["agent"]["helm_uninstall"],
        "helm uninstall patchbay-kubectl-agent -n patchbay"
    );
    assert_eq!(body["agent"]["sockets_closed"], 2, "{body}");
    assert_eq!(body["agent"]["tokens_revoked"], 1, "{body}");
    let failed = tokio::time::timeout(Duration::from_secs(2), in_flight)
        .await
        .expect("the command in flight fails at once")
        .unwrap();
    assert!(matches!(failed, Err(RelayError::Lost(_))), "{failed:?}");
    for agent in [first, second] {
        let exit = agent.exit().await;
        assert_eq!(exit, Exit::Terminal(CloseReason::TokenRevoked));
        assert_eq!(exit.code(), 3, "the agent exits non-zero");
    }
    assert_eq!(service.relay().status(&id).state, AgentState::Disconnected);
    api.set_response_delay(Duration::ZERO);
}

/// The agent binary next to this test's executable; `cargo test --workspace`
/// builds it, `cargo build -p patchbay-kubectl-agent` does on its own.
fn agent_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = dir.join("patchbay-kubectl-agent");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p patchbay-kubectl-agent` first (cargo test --workspace builds it)",
        binary.display()
    );
    binary
}

#[tokio::test]
async fn the_agent_binary_exits_3_when_its_token_is_revoked() {
    require_kubectl();
    let binary = agent_binary();
    let service = Service::start().await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, token, _) = service.add_cluster(json!({"cluster_name": "prod"})).await;
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new(binary)
        .env_clear()
        .envs(agent_env(
            &service,
            &token,
            &api,
            home.path(),
            &[
                ("PATCHBAY_HEALTH_PORT", &port.to_string()),
                ("PATCHBAY_LOG", "trace"),
            ],
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    service.wait_registered(&id).await;
    let (status, body) = service
        .send(
            "POST",
            &format!("/api/connections/{id}/agent-token/revoke"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["agent"]["sockets_closed"], 1, "{body}");
    let exit = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the agent exits within 10 s")
        .unwrap();
    assert_eq!(exit.code(), Some(3), "a revoked token is terminal");
    let mut logs = String::new();
    if let Some(mut stderr) = child.stderr.take() {
        use tokio::io::AsyncReadExt;
        stderr.read_to_string(&mut logs).await.unwrap();
    }
    if let Some(mut stdout) = child.stdout.take() {
        use tokio::io::AsyncReadExt;
        stdout.read_to_string(&mut logs).await.unwrap();
    }
    assert!(logs.contains("Token revoked"), "{logs}");
    assert!(logs.contains("TRACE"), "the agent logged at trace level");
    assert!(
        !logs.contains(&token[6..]),
        "the agent never logs its token, even at trace level"
    );
    // The connection stays; a new agent with the old token is refused.
    assert_eq!(refused_close(&service, Some(&token), true).await.0, 4003);
}

#[tokio::test]
async fn the_agent_token_appears_only_in_the_connect_answer() {
    require_kubectl();
    let logs = patchbay_testkit::logs::capture();
    let service = Service::start().await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, token, connect_answer) = service.add_cluster(json!({"cluster_name": "prod"})).await;
    assert!(
        connect_answer.to_string().contains(&token),
        "shown once, at connect"
    );
    let canary = token["pbk8s_".len()..].to_owned();
    let agent = Agent::start(&agent_env(&service, &token, &api, home.path(), &[]));
    service.wait_registered(&id).await;

    let mut answers = Vec::new();
    for (method, path, body) in [
        ("GET", format!("/api/connections/{id}"), None),
        ("GET", "/api/connections".to_owned(), None),
        ("GET", "/api/connectors/status".to_owned(), None),
        ("GET", "/api/connectors".to_owned(), None),
        ("POST", format!("/api/connections/{id}/validate"), None),
        (
            "POST",
            format!("/api/connections/{id}/query/get"),
            Some(json!({"resource": "pods"})),
        ),
        (
            "POST",
            format!("/api/connections/{id}/query/version"),
            Some(json!({})),
        ),
        (
            "POST",
            format!("/api/connections/{id}/agent-token/revoke"),
            None,
        ),
        ("DELETE", format!("/api/connections/{id}"), None),
    ] {
        let (_, answer) = service.send(method, &path, body).await;
        answers.push(format!("{method} {path}: {answer}"));
    }
    let exit = agent.exit().await;
    assert_eq!(exit, Exit::Terminal(CloseReason::TokenRevoked));
    let stored = service
        .records
        .find_agent_token(&sha256_hex(&token))
        .await
        .unwrap()
        .unwrap();
    let debug = format!(
        "{stored:?} {:?} {:?}",
        service.state.kubectl_relay, service.state.env
    );

    let mut database = Vec::new();
    for entry in std::fs::read_dir(service.dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            database.extend(std::fs::read(&path).unwrap());
        }
    }
    let database = String::from_utf8_lossy(&database);
    assert!(
        database.contains(&stored.token_hash),
        "the scan reads the database"
    );
    // The in-process agent logs through this test's subscriber, where tungstenite
    // traces its raw upgrade request; the agent binary filters that target out
    // (`the_agent_binary_exits_3_when_its_token_is_revoked` runs it at trace level).
    let logs: String = logs
        .text()
        .lines()
        .filter(|line| !line.contains("tungstenite::handshake::client"))
        .map(|line| format!("{line}\n"))
        .collect();
    assert!(
        logs.contains("kubectl agent connected"),
        "the scan reads the logs: {logs}"
    );
    for (what, text) in [
        ("the logs", logs.as_str()),
        ("the API answers", &answers.join("\n")),
        ("Debug output", &debug),
        ("the database", &database),
    ] {
        let leak = text.lines().find(|line| line.contains(&canary));
        assert!(leak.is_none(), "{what} hold the agent token: {leak:?}");
    }
}

/// A fresh schema in the PostgreSQL database of `PATCHBAY_TEST_DATABASE_URL`;
/// fails the test, naming the fix, when none is configured.
async fn postgres_schema() -> String {
    use sqlx::Connection;
    let server = patchbay_testkit::services::postgres_url();
    let schema = format!("patchbay_k8s_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(&server)
        .await
        .unwrap_or_else(|error| panic!("cannot reach PATCHBAY_TEST_DATABASE_URL: {error}"));
    sqlx::query(&format!("CREATE SCHEMA \"{schema}\""))
        .execute(&mut admin)
        .await
        .unwrap();
    let mut url = url::Url::parse(&server).unwrap();
    url.query_pairs_mut()
        .append_pair("options", &format!("-c search_path={schema}"));
    url.to_string()
}

#[tokio::test]
async fn needs_postgres_a_replica_without_the_socket_relays_to_the_one_holding_it() {
    require_kubectl();
    let url = postgres_schema().await;
    let shared = tempfile::tempdir().unwrap();
    let secrets: Arc<dyn SecretStore> =
        Arc::new(LocalSecretStore::open(shared.path(), MasterKey::generate()).unwrap());
    let first = Service::replica(&url, Arc::clone(&secrets)).await;
    let second = Service::replica(&url, secrets).await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, token, _) = first.add_cluster(json!({"cluster_name": "prod"})).await;
    // The agent connects to the first replica only.
    let agent = Agent::start(&agent_env(&first, &token, &api, home.path(), &[]));
    first.wait_registered(&id).await;
    assert_eq!(second.relay().status(&id).state, AgentState::Disconnected);
    // Its view still shows the cluster connected: the first replica serves it.
    let (status, body) = second
        .send("GET", &format!("/api/connections/{id}"), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["connection"]["agent"]["state"], "connected", "{body}");
    assert_eq!(body["connection"]["agent"]["via_replica"], true, "{body}");

    let (status, body) = second
        .send(
            "POST",
            &format!("/api/connections/{id}/query/get"),
            Some(json!({"resource": "pods", "all_namespaces": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body["data"]["output"]
            .as_str()
            .unwrap()
            .contains("coredns-6f8d-k2m4p"),
        "{body}"
    );
    // Refusals and failures come back as they are.
    let (status, body) = second
        .send(
            "POST",
            &format!("/api/connections/{id}/query/get"),
            Some(json!({"resource": "pods", "name": "no-such-pod", "namespace": "default"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // Several at once over the bus.
    let path = format!("/api/connections/{id}/query/version");
    let queries = (0..5).map(|_| second.send("POST", &path, Some(json!({}))));
    for (status, body) in futures::future::join_all(queries).await {
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    // Revoking on the replica without the socket closes it on the one holding it.
    api.set_response_delay(Duration::from_secs(30));
    let in_flight = tokio::spawn({
        let relay = Arc::clone(&second.state.kubectl_relay);
        let id = id.clone();
        async move { relay.run(&id, vec!["get".into(), "pods".into()], 60).await }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, body) = second
        .send(
            "POST",
            &format!("/api/connections/{id}/agent-token/revoke"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["agent"]["sockets_closed"], 1, "{body}");
    assert_eq!(
        agent.exit().await,
        Exit::Terminal(CloseReason::TokenRevoked)
    );
    let failed = tokio::time::timeout(Duration::from_secs(5), in_flight)
        .await
        .expect("the relayed command fails at once")
        .unwrap();
    assert!(matches!(failed, Err(RelayError::Lost(_))), "{failed:?}");
    api.set_response_delay(Duration::ZERO);
    // When the socket goes, so does the lease.
    first.wait_disconnected(&id).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = second
            .send(
                "POST",
                &format!("/api/connections/{id}/query/version"),
                Some(json!({})),
            )
            .await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            assert!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("no kubectl agent"),
                "{body}"
            );
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the lease goes with the socket: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn needs_postgres_a_lease_is_removed_only_by_its_own_epoch() {
    let url = postgres_schema().await;
    let relay = Arc::new(Relay::default());
    let bus = patchbay_host::kubectl_agent::start_bus(&url, &relay)
        .await
        .unwrap();
    let first = bus.acquire("cluster-a").await.unwrap();
    let second = bus.acquire("cluster-a").await.unwrap();
    assert!(second > first, "a takeover raises the epoch");
    assert!(
        !bus.release("cluster-a", first).await.unwrap(),
        "an old epoch removes nothing"
    );
    assert!(!bus.heartbeat("cluster-a", first).await.unwrap());
    assert!(bus.heartbeat("cluster-a", second).await.unwrap());
    let holder = bus
        .holder("cluster-a", Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(holder, Some((bus.replica_id().to_owned(), second)));
    assert!(bus.release("cluster-a", second).await.unwrap());
    assert_eq!(
        bus.holder("cluster-a", Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn a_token_revoked_elsewhere_closes_the_socket_at_the_next_heartbeat() {
    require_kubectl();
    let service = Service::start().await;
    let api = FakeKubeApi::start().await;
    let home = tempfile::tempdir().unwrap();
    let (id, token, _) = service.add_cluster(json!({"cluster_name": "prod"})).await;
    let agent = Agent::start(&agent_env(
        &service,
        &token,
        &api,
        home.path(),
        &[("PATCHBAY_HEARTBEAT_SECONDS", "0.2")],
    ));
    service.wait_registered(&id).await;
    // As another replica would: the database only, not this replica's relay.
    service
        .records
        .set_agent_token_status(&id, AgentTokenStatus::Revoked)
        .await
        .unwrap();
    assert_eq!(
        agent.exit().await,
        Exit::Terminal(CloseReason::TokenRevoked)
    );
    service.wait_disconnected(&id).await;
}
