//! Webhook routes in process, one per authentication style: a good delivery is
//! stored and acknowledged; a missing, wrong or forged credential, an altered body
//! and a stale timestamp all get the same 401 and store nothing.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use patchbay_core::{
    AuthRequest, ConnectorEnv, FormFields, OAuthGrant, Registry, SecretString, Tenant,
    ValidationReport,
};
use patchbay_host::{AppState, HostBuilder, HostConfig};
use patchbay_store::{LocalSecretStore, MasterKey, RecordStore, SqliteRecordStore};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

const SIGNING_SECRET: &str = "host-test-signing-secret-51c0";
const TEAM_ID: &str = "T0HOSTTEST";

struct TestHost {
    router: Router,
    state: AppState,
    _dir: tempfile::TempDir,
}

async fn host() -> TestHost {
    let env = ConnectorEnv::from_pairs([
        ("PATCHBAY_PUBLIC_URL", "http://patchbay.test"),
        ("NEXT_PUBLIC_ENABLE_SLACK", "true"),
        ("SLACK_CLIENT_ID", "host-test-client"),
        ("SLACK_CLIENT_SECRET", "host-test-client-secret"),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let secrets = Arc::new(LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap());
    let registry = Registry::build(
        [
            &patchbay_connector_datadog::DESCRIPTOR,
            &patchbay_connector_github::DESCRIPTOR,
            &patchbay_connector_slack::DESCRIPTOR,
        ],
        &env,
    )
    .unwrap();
    let host = HostBuilder::new(HostConfig::from_env(&env).unwrap(), env)
        .registry(registry)
        .records(records)
        .secrets(secrets)
        .build()
        .await
        .unwrap();
    TestHost {
        router: host.router(),
        state: host.state().clone(),
        _dir: dir,
    }
}

fn tenant(user: &str) -> Tenant {
    Tenant {
        user_id: user.to_owned(),
        org_id: None,
    }
}

/// Connects `user` to `connector` the way the API does, returning the webhook
/// token or secret shown once.
async fn connect(
    host: &TestHost,
    user: &str,
    connector: &str,
    request: AuthRequest,
) -> Option<SecretString> {
    let connector = host.state.registry.get(connector).unwrap().clone();
    let credentials = connector.authenticate(request).await.unwrap();
    let id = connector.descriptor().id;
    let stored = host
        .state
        .connections()
        .store(
            connector.as_ref(),
            tenant(user),
            None,
            false,
            credentials,
            ValidationReport::new(id, Vec::new()),
        )
        .await
        .unwrap();
    stored.webhook_token.or(stored.webhook_secret)
}

fn form(fields: Value) -> AuthRequest {
    AuthRequest::Form(FormFields(fields.as_object().unwrap().clone()))
}

async fn post(host: &TestHost, path: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = host
        .router
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn alert_count(host: &TestHost, user: &str) -> usize {
    host.state
        .records
        .list_alerts(&tenant(user), None, 100)
        .await
        .unwrap()
        .alerts
        .len()
}

/// Asserts every refusal is the same 401 (no reason an attacker could tell apart).
fn assert_same_401(refusals: &[(&str, (u16, String))]) {
    let (_, (_, first)) = &refusals[0];
    for (name, (status, body)) in refusals {
        assert_eq!(*status, StatusCode::UNAUTHORIZED.as_u16(), "{name}: {body}");
        assert_eq!(body, first, "{name} must look like every other refusal");
    }
    let body: Value = serde_json::from_str(first).unwrap();
    assert_eq!(body["error"]["kind"], "auth_failed", "{body}");
    assert_eq!(body["error"]["message"], "webhook authentication failed");
}

#[tokio::test]
async fn token_webhooks_store_good_deliveries_and_refuse_every_bad_token_alike() {
    let host = host().await;
    let connect_form =
        || form(json!({"api_key": "host-test-api-key", "app_key": "host-test-app-key"}));
    let token = connect(&host, "alice", "datadog", connect_form())
        .await
        .unwrap();
    connect(&host, "mallory", "datadog", connect_form())
        .await
        .unwrap();
    let body =
        json!({"id": "4020", "title": "[Triggered] CPU high", "date": "1591216985000"}).to_string();
    let json = ("content-type", "application/json");

    let (status, answer) = post(
        &host,
        "/datadog/webhook/alice",
        &[json, ("x-patchbay-token", token.expose())],
        &body,
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"accepted": 1, "duplicates": 0})
    );
    let bearer = format!("Bearer {}", token.expose());
    let (status, answer) = post(
        &host,
        "/datadog/webhook/alice",
        &[json, ("authorization", &bearer)],
        &body,
    )
    .await;
    assert_eq!(status, 202, "a bearer token works too: {answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"accepted": 0, "duplicates": 1})
    );

    let wrong = format!("{}x", token.expose());
    let refusals = [
        (
            "a missing token",
            post(&host, "/datadog/webhook/alice", &[json], &body).await,
        ),
        (
            "a wrong token",
            post(
                &host,
                "/datadog/webhook/alice",
                &[json, ("x-patchbay-token", &wrong)],
                &body,
            )
            .await,
        ),
        (
            "another user's path",
            post(
                &host,
                "/datadog/webhook/mallory",
                &[json, ("x-patchbay-token", token.expose())],
                &body,
            )
            .await,
        ),
        (
            "an unknown user",
            post(
                &host,
                "/datadog/webhook/nobody",
                &[json, ("x-patchbay-token", token.expose())],
                &body,
            )
            .await,
        ),
    ];
    assert_same_401(&refusals);
    assert_eq!(alert_count(&host, "alice").await, 1);
    assert_eq!(alert_count(&host, "mallory").await, 0);
}

#[tokio::test]
async fn signature_webhooks_store_good_deliveries_and_refuse_forged_or_altered_ones_alike() {
    let host = host().await;
    let secret = connect(
        &host,
        "alice",
        "github",
        form(json!({"token": "github_pat_host_test_0001"})),
    )
    .await
    .unwrap();
    let sign = |body: &str| {
        patchbay_connector_github::webhook::sign(secret.expose().as_bytes(), body.as_bytes())
    };
    let delivery = |event: &'static str, signature: Option<String>| {
        let mut headers = vec![
            ("content-type", "application/json".to_owned()),
            ("x-github-event", event.to_owned()),
            ("x-github-delivery", format!("host-test-{event}")),
        ];
        if let Some(signature) = signature {
            headers.push(("x-hub-signature-256", signature));
        }
        headers
    };
    let send = |headers: Vec<(&'static str, String)>, path: &'static str, body: String| {
        let host = &host;
        async move {
            let headers: Vec<(&str, &str)> = headers
                .iter()
                .map(|(name, value)| (*name, value.as_str()))
                .collect();
            post(host, path, &headers, &body).await
        }
    };

    let ping = json!({"zen": "Keep it logically awesome.", "hook_id": 1}).to_string();
    let (status, answer) = send(
        delivery("ping", Some(sign(&ping))),
        "/github/webhook/alice",
        ping.clone(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"ok": true, "zen": "Keep it logically awesome."})
    );

    let run = json!({
        "action": "completed",
        "workflow_run": {"id": 7, "name": "CI", "conclusion": "failure", "head_branch": "main"},
        "repository": {"full_name": "octo-org/checkout"},
    })
    .to_string();
    let (status, answer) = send(
        delivery("workflow_run", Some(sign(&run))),
        "/github/webhook/alice",
        run.clone(),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"accepted": 1, "duplicates": 0})
    );

    let forged =
        patchbay_connector_github::webhook::sign(b"not-the-webhook-secret", run.as_bytes());
    let refusals = [
        (
            "a forged signature",
            send(
                delivery("workflow_run", Some(forged)),
                "/github/webhook/alice",
                run.clone(),
            )
            .await,
        ),
        (
            "a missing signature",
            send(
                delivery("workflow_run", None),
                "/github/webhook/alice",
                run.clone(),
            )
            .await,
        ),
        (
            "an altered body",
            send(
                delivery("workflow_run", Some(sign(&run))),
                "/github/webhook/alice",
                run.replace("failure", "success"),
            )
            .await,
        ),
        (
            "an unknown user",
            send(
                delivery("workflow_run", Some(sign(&run))),
                "/github/webhook/nobody",
                run.clone(),
            )
            .await,
        ),
    ];
    assert_same_401(&refusals);
    assert_eq!(alert_count(&host, "alice").await, 1);
}

fn slack_grant() -> OAuthGrant {
    let extra = json!({"team": {"id": TEAM_ID, "name": "Host Test"}, "bot_user_id": "U0HOSTBOT"});
    OAuthGrant {
        access_token: SecretString::from("xoxb-host-test-token"),
        refresh_token: None,
        expires_at: None,
        scopes: vec!["app_mentions:read".to_owned()],
        token_type: Some("bot".to_owned()),
        extra: extra.as_object().cloned().unwrap(),
        options: Map::new(),
    }
}

#[tokio::test]
async fn app_webhooks_store_good_deliveries_and_refuse_forged_altered_or_stale_ones_alike() {
    let host = host().await;
    connect(&host, "alice", "slack", AuthRequest::OAuth(slack_grant())).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let secret = SecretString::from(SIGNING_SECRET);
    let sign = |timestamp: &str, body: &str| {
        patchbay_connector_slack::webhook::signature(&secret, timestamp, body.as_bytes())
    };
    let send = |timestamp: Option<String>, signature: Option<String>, body: String| {
        let host = &host;
        async move {
            let mut headers = vec![("content-type", "application/json")];
            if let Some(timestamp) = &timestamp {
                headers.push(("x-slack-request-timestamp", timestamp.as_str()));
            }
            if let Some(signature) = &signature {
                headers.push(("x-slack-signature", signature.as_str()));
            }
            post(host, "/slack/events", &headers, &body).await
        }
    };
    let fresh = now.to_string();

    let challenge =
        json!({"token": "x", "challenge": "host-test-challenge", "type": "url_verification"})
            .to_string();
    let (status, answer) = send(
        Some(fresh.clone()),
        Some(sign(&fresh, &challenge)),
        challenge.clone(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer, "host-test-challenge");

    let mention = json!({
        "type": "event_callback",
        "team_id": TEAM_ID,
        "event_id": "Ev0HOSTTEST1",
        "event": {
            "type": "app_mention",
            "channel": "C0HOSTTEST",
            "user": "U0HOSTUSER",
            "ts": "1714564900.000200",
            "text": "<@U0HOSTBOT> why is checkout failing?",
        },
    })
    .to_string();
    let (status, answer) = send(
        Some(fresh.clone()),
        Some(sign(&fresh, &mention)),
        mention.clone(),
    )
    .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        serde_json::from_str::<Value>(&answer).unwrap(),
        json!({"accepted": 1, "duplicates": 0})
    );

    let stale = (now - 600).to_string();
    let forged = patchbay_connector_slack::webhook::signature(
        &SecretString::from("not-the-signing-secret"),
        &fresh,
        mention.as_bytes(),
    );
    let refusals = [
        (
            "a forged signature",
            send(Some(fresh.clone()), Some(forged), mention.clone()).await,
        ),
        (
            "a missing signature",
            send(Some(fresh.clone()), None, mention.clone()).await,
        ),
        (
            "a missing timestamp",
            send(None, Some(sign(&fresh, &mention)), mention.clone()).await,
        ),
        (
            "an altered body",
            send(
                Some(fresh.clone()),
                Some(sign(&fresh, &mention)),
                mention.replace("failing", "fine"),
            )
            .await,
        ),
        (
            "a stale timestamp",
            send(
                Some(stale.clone()),
                Some(sign(&stale, &mention)),
                mention.clone(),
            )
            .await,
        ),
        (
            "a forged challenge",
            send(Some(fresh.clone()), None, challenge.clone()).await,
        ),
    ];
    assert_same_401(&refusals);
    assert_eq!(alert_count(&host, "alice").await, 1);
}
