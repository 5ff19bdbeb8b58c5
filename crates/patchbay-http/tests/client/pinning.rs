use base64::Engine as _;
use patchbay_core::{
    ClientAuthStyle, ConnectorEnv, ErrorKind, OAuthClientCredentials, OAuthSpec, SecretString,
};
use patchbay_http::HttpClient;

use crate::support::{Reply, ScriptedServer};

const CLIENT_SECRET: &str = "client-secret-canary-31f0";

const SPEC: OAuthSpec = OAuthSpec {
    authorize_url: "https://provider.example/oauth/authorize",
    token_url: "https://provider.example/oauth/token",
    revoke_url: None,
    api_base_url: Some("https://api.provider.example"),
    start_options: &[],
    scopes: &["read"],
    scope_separator: " ",
    extra_authorize_params: &[],
    client_auth: ClientAuthStyle::BasicHeader,
    pkce: true,
    client_id_env: &["PROVIDER_CLIENT_ID"],
    client_secret_env: &["PROVIDER_CLIENT_SECRET"],
    callback_path: "/provider/callback",
    feature_flag: None,
    disabled_message: None,
};

fn credentials() -> OAuthClientCredentials {
    OAuthClientCredentials::for_spec("client-id", SecretString::from(CLIENT_SECRET), &SPEC)
}

/// A client sending the provider's hosts and `attacker.example` to local servers.
fn client(provider: &ScriptedServer, attacker: &ScriptedServer) -> HttpClient {
    let env = ConnectorEnv::from_pairs([(
        "PATCHBAY_UPSTREAM_OVERRIDES",
        format!(
            "provider.example=http://{0},api.provider.example=http://{0},attacker.example=http://{1}",
            provider.addr, attacker.addr
        ),
    )]);
    HttpClient::from_env(&env).unwrap()
}

fn assert_refused(error: &patchbay_core::Error, host: &str) {
    assert_eq!(error.kind(), ErrorKind::PermissionDenied, "{error}");
    assert!(error.message().contains(host), "{error}");
    assert!(
        error
            .message()
            .contains("client credentials are only sent to the provider's own endpoints"),
        "{error}"
    );
    assert!(!format!("{error} {error:?}").contains(CLIENT_SECRET));
}

#[tokio::test]
async fn client_basic_auth_reaches_the_provider_through_an_override() {
    let provider = ScriptedServer::start(vec![Reply::status(204)]).await;
    let attacker = ScriptedServer::start(vec![Reply::status(204)]).await;
    client(&provider, &attacker)
        .delete("https://api.provider.example/applications/client-id/grant")
        .client_basic_auth(&credentials())
        .send()
        .await
        .unwrap();
    let expected =
        base64::engine::general_purpose::STANDARD.encode(format!("client-id:{CLIENT_SECRET}"));
    assert_eq!(
        provider.hits()[0].headers["authorization"],
        format!("Basic {expected}").as_str()
    );
    assert!(attacker.hits().is_empty());
}

#[tokio::test]
async fn client_credentials_are_never_sent_to_another_origin() {
    let provider = ScriptedServer::start(vec![Reply::status(204)]).await;
    let attacker = ScriptedServer::start(vec![Reply::status(204)]).await;
    let http = client(&provider, &attacker);
    let error = http
        .delete("https://attacker.example/applications/client-id/grant")
        .client_basic_auth(&credentials())
        .send()
        .await
        .unwrap_err();
    assert_refused(&error, "attacker.example");
    // Same host, other scheme or port: another origin.
    for url in [
        "http://provider.example/oauth/token",
        "https://provider.example:8443/oauth/token",
    ] {
        let error = http
            .post(url)
            .carries_client_credentials(&credentials())
            .form(&[("client_secret", CLIENT_SECRET)])
            .send()
            .await
            .unwrap_err();
        assert_refused(&error, "provider.example");
    }
    // The loopback address itself is not the provider, even though the override
    // sends the provider's requests there.
    let error = http
        .post(&provider.url("/oauth/token"))
        .carries_client_credentials(&credentials())
        .form(&[("client_secret", CLIENT_SECRET)])
        .send()
        .await
        .unwrap_err();
    assert_refused(&error, "127.0.0.1");
    assert!(attacker.hits().is_empty());
    assert!(provider.hits().is_empty());
}

#[tokio::test]
async fn a_request_carrying_client_credentials_to_the_token_endpoint_is_sent() {
    let provider = ScriptedServer::start(vec![Reply::status(200).body("{}")]).await;
    let attacker = ScriptedServer::start(vec![Reply::status(204)]).await;
    client(&provider, &attacker)
        .post("https://provider.example/oauth/token")
        .carries_client_credentials(&credentials())
        .form(&[("client_id", "client-id"), ("client_secret", CLIENT_SECRET)])
        .send()
        .await
        .unwrap();
    let hits = provider.hits();
    assert_eq!(hits[0].uri, "/oauth/token");
    assert!(String::from_utf8_lossy(&hits[0].body).contains(CLIENT_SECRET));
}
