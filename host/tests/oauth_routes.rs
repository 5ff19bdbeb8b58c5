//! The OAuth routes in process: start (auth, feature flag, client credentials) and
//! the callback page (stores for the starting tenant only, escapes, never shows a token).

use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use http_body_util::BodyExt;
use patchbay_core::{
    AuthKind, AuthRequest, Category, ClientAuthStyle, Connector, ConnectorContext,
    ConnectorDescriptor, ConnectorEnv, Credentials, OAuthSpec, OAuthTokens, OperationDescriptor,
    QueryOutput, Registry, Result, Tenant, ValidationReport,
};
use patchbay_host::{HostBuilder, HostConfig};
use patchbay_store::{LocalSecretStore, MasterKey, RecordStore, SqliteRecordStore};
use serde_json::{json, Value};
use tower::ServiceExt;

const INTERNAL_SECRET: &str = "internal-secret-for-tests-0123456789";
const ACCESS_TOKEN: &str = "canary-access-token-9d2f";

struct Toy;

#[async_trait]
impl Connector for Toy {
    type Config = Value;
    type Secrets = Value;

    fn descriptor(&self) -> &'static ConnectorDescriptor {
        descriptor()
    }

    async fn authenticate(&self, request: AuthRequest) -> Result<Credentials<Value, Value>> {
        let AuthRequest::OAuth(grant) = request else {
            return Err(patchbay_core::Error::unsupported("OAuth only"));
        };
        Ok(
            Credentials::new(json!({ "scopes": grant.scopes }), json!({}))
                .with_tokens(OAuthTokens::from_grant(&grant)),
        )
    }

    async fn validate(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &mut Credentials<Value, Value>,
    ) -> Result<ValidationReport> {
        Ok(ValidationReport::new("toy", Vec::new()))
    }

    async fn query(
        &self,
        _ctx: &ConnectorContext,
        _credentials: &Credentials<Value, Value>,
        operation: &str,
        _params: Value,
    ) -> Result<QueryOutput> {
        Ok(QueryOutput {
            data: json!({ "ran": operation }),
            ..QueryOutput::default()
        })
    }
}

#[derive(schemars::JsonSchema)]
struct NoParams {}

fn toy_operations() -> Vec<OperationDescriptor> {
    vec![
        OperationDescriptor::new::<NoParams>("peek", "Reads something.", true),
        OperationDescriptor::new::<NoParams>("poke", "Changes something.", false),
    ]
}

static TOKEN_URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
static DESCRIPTOR: std::sync::OnceLock<ConnectorDescriptor> = std::sync::OnceLock::new();

fn descriptor() -> &'static ConnectorDescriptor {
    DESCRIPTOR.get_or_init(|| ConnectorDescriptor {
        id: "toy",
        display_name: "Toy",
        category: Category::Communication,
        auth_kinds: &[AuthKind::Oauth2],
        env_vars: &[],
        feature_flag: Some("NEXT_PUBLIC_ENABLE_TOY"),
        disabled_message: Some("Toy connector not enabled"),
        webhook: None,
        oauth: Some(OAuthSpec {
            authorize_url: "https://toy.example/authorize",
            token_url: TOKEN_URL.get().expect("token endpoint started").as_str(),
            revoke_url: None,
            api_base_url: None,
            start_options: &[],
            scopes: &["read"],
            scope_separator: " ",
            extra_authorize_params: &[],
            client_auth: ClientAuthStyle::RequestBody,
            pkce: true,
            client_id_env: &["TOY_CLIENT_ID"],
            client_secret_env: &["TOY_CLIENT_SECRET"],
            callback_path: "/toy/callback",
            feature_flag: None,
            disabled_message: None,
        }),
        connect_schema: schemars::Schema::default,
        operations: toy_operations,
        build: |_| Ok(Box::new(Toy)),
    })
}

async fn start_token_endpoint() {
    if TOKEN_URL.get().is_some() {
        return;
    }
    let app = Router::new().route(
        "/token",
        post(|| async {
            Json(json!({ "access_token": ACCESS_TOKEN, "token_type": "bearer", "scope": "read" }))
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    // Each test has its own runtime: serve from a thread that outlives them all.
    let std_listener = listener.into_std().unwrap();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                axum::serve(listener, app).await.unwrap();
            });
    });
    let _ = TOKEN_URL.set(url);
}

struct TestHost {
    router: Router,
    records: Arc<dyn RecordStore>,
    _dir: tempfile::TempDir,
}

async fn host(pairs: &[(&str, &str)]) -> TestHost {
    host_at("http://patchbay.test", pairs).await
}

async fn host_at(public_url: &str, pairs: &[(&str, &str)]) -> TestHost {
    start_token_endpoint().await;
    let mut env = ConnectorEnv::from_pairs(pairs.iter().copied());
    env.set("INTERNAL_API_SECRET", INTERNAL_SECRET);
    env.set("PATCHBAY_PUBLIC_URL", public_url);
    let dir = tempfile::tempdir().unwrap();
    let records: Arc<dyn RecordStore> =
        Arc::new(SqliteRecordStore::open_in_memory().await.unwrap());
    let secrets = Arc::new(LocalSecretStore::open(dir.path(), MasterKey::generate()).unwrap());
    let config = HostConfig::from_env(&env).unwrap();
    let registry = Registry::build([descriptor()], &env).unwrap();
    let host = HostBuilder::new(config, env)
        .registry(registry)
        .records(Arc::clone(&records))
        .secrets(secrets)
        .build()
        .await
        .unwrap();
    TestHost {
        router: host.router(),
        records,
        _dir: dir,
    }
}

const CONFIGURED: &[(&str, &str)] = &[
    ("NEXT_PUBLIC_ENABLE_TOY", "true"),
    ("TOY_CLIENT_ID", "toy-client"),
    ("TOY_CLIENT_SECRET", "toy-secret"),
];

async fn send(router: &Router, request: Request<Body>) -> (StatusCode, String) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn start_request(authenticated: bool) -> Request<Body> {
    start_request_with(authenticated, json!({ "label": "mine" }))
}

fn start_request_with(authenticated: bool, body: Value) -> Request<Body> {
    let mut request = Request::post("/api/connections/oauth/toy/start")
        .header("content-type", "application/json");
    if authenticated {
        request = as_alice(request);
    }
    request.body(Body::from(body.to_string())).unwrap()
}

fn as_alice(request: axum::http::request::Builder) -> axum::http::request::Builder {
    request
        .header("x-user-id", "alice")
        .header("x-org-id", "acme")
        .header("x-internal-secret", INTERNAL_SECRET)
}

/// A flow begun the way a browser begins it: the state, the `Cookie` header the
/// browser would send back, and the `Set-Cookie` header as received.
struct BegunFlow {
    state: String,
    cookie: String,
    set_cookie: String,
}

async fn begin_flow(host: &TestHost) -> BegunFlow {
    begin_flow_with(host, start_request(true)).await
}

async fn begin_flow_with(host: &TestHost, start: Request<Body>) -> BegunFlow {
    let (status, body) = send(&host.router, start).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body.get("authorize_url").is_none(),
        "only the begin URL is handed out"
    );
    let begin_url = url::Url::parse(body["begin_url"].as_str().unwrap()).unwrap();
    let response = host
        .router
        .clone()
        .oneshot(Request::get(begin_url.path()).body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://toy.example/authorize?"),
        "{location}"
    );
    let state = url::Url::parse(location)
        .unwrap()
        .query_pairs()
        .find(|(name, _)| name == "state")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(begin_url.path(), format!("/oauth/begin/{state}"));
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    BegunFlow {
        state,
        cookie,
        set_cookie,
    }
}

fn callback_request(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn the_begin_url_sets_a_short_lived_http_only_cookie_once() {
    let host = host(CONFIGURED).await;
    let flow = begin_flow(&host).await;
    let attributes: Vec<&str> = flow.set_cookie.split("; ").collect();
    assert!(attributes.contains(&"HttpOnly"), "{}", flow.set_cookie);
    assert!(attributes.contains(&"SameSite=Lax"), "{}", flow.set_cookie);
    assert!(
        attributes.contains(&"Path=/toy/callback"),
        "{}",
        flow.set_cookie
    );
    assert!(!attributes.contains(&"Secure"), "plain http public URL");
    let max_age: i64 = attributes
        .iter()
        .find_map(|attribute| attribute.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((500..=600).contains(&max_age), "{max_age}");

    let (status, page) = send(
        &host.router,
        callback_request(&format!("/oauth/begin/{}", flow.state), None),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("This sign-in link was already opened"),
        "{page}"
    );

    let secure_host = host_at("https://patchbay.example", CONFIGURED).await;
    let flow = begin_flow(&secure_host).await;
    assert!(
        flow.set_cookie.split("; ").any(|a| a == "Secure"),
        "{}",
        flow.set_cookie
    );
}

#[tokio::test]
async fn a_callback_in_a_browser_without_the_begin_cookie_is_refused_and_stores_nothing() {
    let host = host(CONFIGURED).await;
    let flow = begin_flow(&host).await;
    // The victim's browser followed the provider's redirect, but never opened the
    // begin URL: it has no binding cookie.
    let (status, page) = send(
        &host.router,
        callback_request(
            &format!("/toy/callback?state={}&code=good", flow.state),
            None,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{page}");
    assert!(
        page.contains("This Toy authorization was not started in this browser"),
        "{page}"
    );
    assert!(!page.contains(ACCESS_TOKEN));
    let alice = Tenant {
        user_id: "alice".into(),
        org_id: Some("acme".into()),
    };
    assert!(host
        .records
        .list_connections(&alice)
        .await
        .unwrap()
        .is_empty());

    let other = begin_flow(&host).await;
    let (status, page) = send(
        &host.router,
        callback_request(
            &format!("/toy/callback?state={}&code=good", other.state),
            Some(&flow.cookie),
        ),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "another flow's cookie: {page}"
    );
    assert!(host
        .records
        .list_connections(&alice)
        .await
        .unwrap()
        .is_empty());
}

/// Connects Toy through the flow with `allow_writes` as given; the connection id.
async fn connect_toy(host: &TestHost, allow_writes: Option<bool>) -> String {
    let mut body = json!({ "label": "mine" });
    if let Some(allow) = allow_writes {
        body["allow_writes"] = json!(allow);
    }
    let flow = begin_flow_with(host, start_request_with(true, body)).await;
    let callback = format!("/toy/callback?state={}&code=good", flow.state);
    let (status, page) = send(
        &host.router,
        callback_request(&callback, Some(&flow.cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let (_, listed) = send(
        &host.router,
        as_alice(Request::get("/api/connections"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let newest = listed["connections"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(newest["allow_writes"], json!(allow_writes == Some(true)));
    newest["id"].as_str().unwrap().to_owned()
}

async fn run(host: &TestHost, connection: &str, operation: &str) -> (StatusCode, Value) {
    let (status, body) = send(
        &host.router,
        as_alice(Request::post(format!(
            "/api/connections/{connection}/query/{operation}"
        )))
        .header("content-type", "application/json")
        .body(Body::from("{}"))
        .unwrap(),
    )
    .await;
    (status, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn write_operations_run_only_where_the_owner_allowed_writes() {
    let host = host(CONFIGURED).await;
    let read_only = connect_toy(&host, None).await;
    let (status, body) = run(&host, &read_only, "peek").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = run(&host, &read_only, "poke").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["kind"], "permission_denied", "{body}");
    assert_eq!(body["error"]["field"], "allow_writes", "{body}");
    assert_eq!(
        body["error"]["message"],
        "`poke` changes Toy state, and this connection was made without allow_writes"
    );

    let writable = connect_toy(&host, Some(true)).await;
    let (status, body) = run(&host, &writable, "poke").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["data"]["ran"], "poke");
}

#[tokio::test]
async fn start_refuses_options_the_connector_does_not_declare() {
    let host = host(CONFIGURED).await;
    let (status, body) = send(
        &host.router,
        start_request_with(
            true,
            json!({ "options": { "api_url": "https://attacker.example" } }),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"]["field"], "options.api_url", "{body}");
    assert_eq!(
        body["error"]["message"],
        "Toy OAuth does not accept the option `api_url`; it takes no options"
    );
}

#[tokio::test]
async fn start_requires_authentication() {
    let host = host(CONFIGURED).await;
    let (status, _) = send(&host.router, start_request(false)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_disabled_connector_answers_start_and_callback_with_its_message() {
    let host = host(&[("TOY_CLIENT_ID", "a"), ("TOY_CLIENT_SECRET", "b")]).await;
    let (status, body) = send(&host.router, start_request(true)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("Toy connector not enabled"), "{body}");
    let callback = Request::get("/toy/callback?state=x&code=y")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&host.router, callback).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("Toy connector not enabled"), "{body}");
}

#[tokio::test]
async fn unconfigured_client_credentials_name_the_variables() {
    let host = host(&[("NEXT_PUBLIC_ENABLE_TOY", "true")]).await;
    let (status, body) = send(&host.router, start_request(true)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        body["error"]["message"],
        "Toy OAuth credentials not configured: set TOY_CLIENT_ID and TOY_CLIENT_SECRET"
    );
}

#[tokio::test]
async fn the_callback_connects_the_starting_tenant_once_and_shows_no_token() {
    let host = host(CONFIGURED).await;
    let flow = begin_flow(&host).await;
    let callback = format!("/toy/callback?state={}&code=good", flow.state);

    let response = host
        .router
        .clone()
        .oneshot(callback_request(&callback, Some(&flow.cookie)))
        .await
        .unwrap();
    let status = response.status();
    let cleared = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cleared.starts_with(&format!("{}=;", flow.cookie.split('=').next().unwrap()))
            && cleared.contains("Max-Age=0"),
        "the binding cookie is cleared: {cleared}"
    );
    let page = response.into_body().collect().await.unwrap().to_bytes();
    let page = String::from_utf8_lossy(&page).into_owned();
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Toy connected"), "{page}");
    assert!(!page.contains(ACCESS_TOKEN));
    let alice = Tenant {
        user_id: "alice".into(),
        org_id: Some("acme".into()),
    };
    let connections = host.records.list_connections(&alice).await.unwrap();
    assert_eq!(connections.len(), 1);
    assert_eq!(connections[0].label, "mine");
    let mallory = Tenant {
        user_id: "mallory".into(),
        org_id: Some("evil".into()),
    };
    assert!(host
        .records
        .list_connections(&mallory)
        .await
        .unwrap()
        .is_empty());

    let (status, page) = send(
        &host.router,
        callback_request(&callback, Some(&flow.cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        page.contains("This authorization link was already used"),
        "{page}"
    );
    assert_eq!(
        host.records.list_connections(&alice).await.unwrap().len(),
        1
    );
}

#[tokio::test]
async fn the_callback_page_escapes_provider_text() {
    let host = host(CONFIGURED).await;
    let flow = begin_flow(&host).await;
    let callback = format!(
        "/toy/callback?state={}&error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        flow.state
    );
    let (status, page) = send(
        &host.router,
        callback_request(&callback, Some(&flow.cookie)),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("access_denied"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)"), "{page}");
    assert!(!page.contains("<script>alert"), "{page}");

    let (status, page) = send(
        &host.router,
        Request::get("/toy/callback?code=x")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Missing state parameter"), "{page}");
}
