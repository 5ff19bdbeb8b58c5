//! The team service over HTTP: its own routes and sign-in, Patchbay under
//! `/patchbay`, the third-party `hello` connector beside the built-in Datadog, both
//! reached through the team's own sessions and answered by loopback fakes.

use patchbay_connector_datadog::fake::FakeDatadog;
use patchbay_connector_hello::fake::FakeHello;
use patchbay_core::ConnectorEnv;
use patchbay_example_embed_host::{app, build_patchbay, TeamSessions, SESSION_HEADER};
use patchbay_testkit::fake_server::ProviderFake;
use serde_json::{json, Value};

const SESSION: &str = "session-of-alice-5d1e";
const HELLO_KEY: &str = "hello-api-key-canary-71c4";
const DD_API_KEY: &str = "dd-api-key-canary-0b93";
const DD_APP_KEY: &str = "dd-app-key-canary-4e27";

struct TeamService {
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
    _fakes: (FakeHello, FakeDatadog),
}

impl TeamService {
    async fn start() -> Self {
        let hello = FakeHello::start(HELLO_KEY).await;
        let datadog = FakeDatadog::start(DD_API_KEY, DD_APP_KEY).await;
        let data = tempfile::tempdir().unwrap();
        let overrides = format!("{},{}", hello.override_spec(), datadog.override_spec());
        let env = ConnectorEnv::from_pairs([
            ("PATCHBAY_DATA_DIR", data.path().to_str().unwrap()),
            ("PATCHBAY_PUBLIC_URL", "http://team.test/patchbay"),
            ("PATCHBAY_UPSTREAM_OVERRIDES", overrides.as_str()),
        ]);
        let sessions = TeamSessions::new([(SESSION, "alice", "sre")]);
        let patchbay = build_patchbay(env, sessions.clone()).await.unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let router = app(&patchbay, sessions);
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self {
            base,
            http: reqwest::Client::new(),
            _data: data,
            _fakes: (hello, datadog),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        session: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(session) = session {
            request = request.header(SESSION_HEADER, session);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }

    async fn connect(&self, connector: &str, fields: Value) -> String {
        let (status, body) = self
            .call(
                "POST",
                "/patchbay/api/connections",
                Some(SESSION),
                Some(json!({"connector": connector, "label": connector, "fields": fields})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["connection"]["id"].as_str().unwrap().to_owned()
    }
}

#[tokio::test]
async fn the_team_service_serves_its_own_routes_and_patchbay_under_its_prefix() {
    let service = TeamService::start().await;
    let (status, body) = service.call("GET", "/whoami", Some(SESSION), None).await;
    assert_eq!(
        (status, body),
        (200, json!({"user": "alice", "team": "sre"}))
    );

    let (status, body) = service
        .call("GET", "/patchbay/api/connectors", Some(SESSION), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|connector| connector["id"].as_str())
        .collect();
    assert!(
        ids.contains(&"hello"),
        "the linked third-party connector is listed: {ids:?}"
    );
    assert!(
        ids.contains(&"datadog"),
        "the built-in connectors are listed: {ids:?}"
    );
}

#[tokio::test]
async fn patchbay_knows_the_caller_only_through_the_team_sessions() {
    let service = TeamService::start().await;
    for session in [None, Some("not-a-session")] {
        let (status, body) = service
            .call("GET", "/patchbay/api/connections", session, None)
            .await;
        assert_eq!(status, 401, "{body}");
        assert!(body.to_string().contains("X-Team-Session"), "{body}");
    }
    // Patchbay's own API keys mean nothing to this service.
    let (status, _) = service
        .call(
            "GET",
            "/patchbay/api/connections",
            Some("pbk_abcdefgh12345678"),
            None,
        )
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_third_party_and_a_built_in_connector_connect_and_answer_queries() {
    let service = TeamService::start().await;

    let hello = service
        .connect("hello", json!({"api_key": HELLO_KEY}))
        .await;
    let (status, body) = service
        .call(
            "POST",
            &format!("/patchbay/api/connections/{hello}/query/get_greeting"),
            Some(SESSION),
            Some(json!({"language": "fr"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.to_string().contains("Bonjour"), "{body}");

    let datadog = service
        .connect(
            "datadog",
            json!({"api_key": DD_API_KEY, "app_key": DD_APP_KEY}),
        )
        .await;
    let (status, body) = service
        .call(
            "POST",
            &format!("/patchbay/api/connections/{datadog}/query/list_monitors"),
            Some(SESSION),
            Some(json!({"page_size": 5})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body["data"]["monitors"].as_array().unwrap().is_empty(),
        "{body}"
    );

    let (status, body) = service
        .call("GET", "/patchbay/api/connections", Some(SESSION), None)
        .await;
    assert_eq!(status, 200);
    let listed = body.to_string();
    assert!(
        listed.contains(&hello) && listed.contains(&datadog),
        "{listed}"
    );
    for secret in [HELLO_KEY, DD_API_KEY, DD_APP_KEY] {
        assert!(
            !listed.contains(secret),
            "a secret came back in the connection list"
        );
    }
}
