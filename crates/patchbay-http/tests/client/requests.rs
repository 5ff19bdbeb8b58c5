use http::Method;
use patchbay_core::{ErrorKind, SecretString};
use patchbay_http::{Bytes, HttpClient};

use crate::support::{fast_config, Reply, ScriptedServer};

fn client() -> HttpClient {
    HttpClient::new(fast_config()).unwrap()
}

#[tokio::test]
async fn query_is_appended_to_the_existing_query_string() {
    let server = ScriptedServer::start(vec![Reply::status(200)]).await;
    client()
        .get(&server.url("/api/v1/query?a=1"))
        .query(&[("from", "now-1h"), ("q", "a b&c")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        server.hits()[0].uri,
        "/api/v1/query?a=1&from=now-1h&q=a+b%26c"
    );
}

#[tokio::test]
async fn bodies_carry_their_content_type() {
    let server = ScriptedServer::start(vec![Reply::status(200)]).await;
    let client = client();
    client
        .post(&server.url("/token"))
        .form(&[("grant_type", "client_credentials"), ("scope", "a b")])
        .send()
        .await
        .unwrap();
    client
        .put(&server.url("/json"))
        .json(&serde_json::json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    client
        .request(Method::PATCH, &server.url("/raw"))
        .body("text/plain", Bytes::from_static(b"hello"))
        .header("X-Trace", "abc")
        .send()
        .await
        .unwrap();
    let hits = server.hits();
    assert_eq!(hits[0].method, Method::POST);
    assert_eq!(
        hits[0].headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(hits[0].body, b"grant_type=client_credentials&scope=a+b");
    assert_eq!(hits[1].method, Method::PUT);
    assert_eq!(hits[1].headers["content-type"], "application/json");
    assert_eq!(hits[1].body, br#"{"enabled":true}"#);
    assert_eq!(hits[2].method, Method::PATCH);
    assert_eq!(hits[2].headers["content-type"], "text/plain");
    assert_eq!(hits[2].headers["x-trace"], "abc");
    assert_eq!(hits[2].body, b"hello");
}

#[tokio::test]
async fn delete_is_sent_and_retried_as_idempotent() {
    let server = ScriptedServer::start(vec![Reply::status(503), Reply::status(204)]).await;
    let response = client()
        .delete(&server.url("/thing/1"))
        .bearer_auth(&SecretString::from("token"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status, 204);
    assert_eq!(server.hits()[1].method, Method::DELETE);
}

#[tokio::test]
async fn build_mistakes_are_reported_by_send() {
    let error = client()
        .get("not a url?token=secret-in-query")
        .connector("github")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert_eq!(error.connector(), Some("github"));
    assert!(!error.to_string().contains("secret-in-query"), "{error}");

    let error = client()
        .get("ftp://files.example.test/x")
        .send()
        .await
        .unwrap_err();
    assert!(error.message().contains("http or https"), "{error}");

    let error = client()
        .get("https://api.example.test/")
        .header("bad header", "x")
        .send()
        .await
        .unwrap_err();
    assert!(error.message().contains("`bad header`"), "{error}");
}
