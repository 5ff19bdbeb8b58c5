use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use futures::stream;
use patchbay_core::ErrorKind;
use patchbay_http::{HttpClient, HttpConfig};

use crate::support::{fast_config, serve, Reply, ScriptedServer};

const CAP: usize = 64 * 1024;

fn capped_client() -> HttpClient {
    HttpClient::new(HttpConfig {
        max_response_bytes: CAP,
        ..fast_config()
    })
    .unwrap()
}

#[tokio::test]
async fn streamed_body_over_the_cap_is_an_error() {
    let router = Router::new().route(
        "/big",
        get(|| async {
            let chunks = stream::iter(
                (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 16 * 1024]))),
            );
            Body::from_stream(chunks)
        }),
    );
    let addr = serve(router).await;
    let error = capped_client()
        .get(&format!("http://{addr}/big"))
        .connector("grafana")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert!(
        error.message().starts_with("response too large"),
        "{}",
        error.message()
    );
    assert_eq!(error.connector(), Some("grafana"));
}

#[tokio::test]
async fn declared_length_over_the_cap_is_an_error() {
    let server = ScriptedServer::start(vec![Reply::status(200).body(&"y".repeat(CAP + 1))]).await;
    let error = capped_client()
        .get(&server.url("/big"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Internal);
    assert!(
        error.message().contains("response too large"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn body_exactly_at_the_cap_is_read() {
    let server = ScriptedServer::start(vec![Reply::status(200).body(&"z".repeat(CAP))]).await;
    let response = capped_client()
        .get(&server.url("/edge"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.body.len(), CAP);
}

#[tokio::test]
async fn slow_server_times_out_as_unavailable() {
    let server =
        ScriptedServer::start(vec![Reply::status(200).delay(Duration::from_secs(5))]).await;
    let config = HttpConfig {
        total_timeout: Duration::from_millis(200),
        max_retries: 1,
        ..fast_config()
    };
    let error = HttpClient::new(config)
        .unwrap()
        .get(&server.url("/slow"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.message().contains("timed out"), "{}", error.message());
    assert_eq!(server.hits().len(), 2);
}

#[tokio::test]
async fn per_request_timeout_overrides_the_config() {
    let server =
        ScriptedServer::start(vec![Reply::status(200).delay(Duration::from_secs(5))]).await;
    let config = HttpConfig {
        max_retries: 0,
        ..fast_config()
    };
    let error = HttpClient::new(config)
        .unwrap()
        .post(&server.url("/slow"))
        .timeout(Duration::from_millis(150))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(error.message().contains("timed out"), "{}", error.message());
}
