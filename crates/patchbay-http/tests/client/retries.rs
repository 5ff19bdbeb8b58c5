use std::sync::{Arc, Mutex};
use std::time::Duration;

use patchbay_core::ErrorKind;
use patchbay_http::{HttpClient, HttpConfig, Pause};

use crate::support::{closed_port, fast_config, Reply, ScriptedServer};

fn client(config: HttpConfig) -> HttpClient {
    HttpClient::new(config).unwrap()
}

#[tokio::test]
async fn get_is_retried_after_503_then_succeeds() {
    let server =
        ScriptedServer::start(vec![Reply::status(503), Reply::status(200).body("ok")]).await;
    let response = client(fast_config())
        .get(&server.url("/v1"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.text(), "ok");
    assert_eq!(response.attempts, 2);
    assert_eq!(server.hits().len(), 2);
}

/// A pause that records what the client asked to wait and returns at once.
fn recording_pause() -> (Pause, Arc<Mutex<Vec<Duration>>>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let recorded = Arc::clone(&waits);
    let pause = Pause::new(move |duration| {
        recorded.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    });
    (pause, waits)
}

#[tokio::test]
async fn retry_after_on_429_is_waited_for_even_on_post() {
    let server = ScriptedServer::start(vec![
        Reply::status(429).header("retry-after", "25"),
        Reply::status(200),
    ])
    .await;
    let (pause, waits) = recording_pause();
    let response = client(HttpConfig {
        pause,
        ..fast_config()
    })
    .post(&server.url("/search"))
    .json(&serde_json::json!({"q": "x"}))
    .send()
    .await
    .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.attempts, 2);
    assert_eq!(
        *waits.lock().unwrap(),
        [Duration::from_secs(25)],
        "the client waits exactly what Retry-After asks, not its own backoff"
    );
    let hits = server.hits();
    assert_eq!(hits.len(), 2);
    assert_eq!(hits[1].method, http::Method::POST);
    assert_eq!(
        hits[1].body, br#"{"q":"x"}"#,
        "the body is re-sent on retry"
    );
}

#[tokio::test]
async fn retry_after_beyond_the_limit_returns_rate_limited_without_retrying() {
    let server = ScriptedServer::start(vec![Reply::status(429).header("retry-after", "120")]).await;
    let response = client(fast_config())
        .get(&server.url("/v1/logs"))
        .connector("datadog")
        .send()
        .await
        .unwrap();
    assert_eq!(response.attempts, 1);
    assert_eq!(server.hits().len(), 1);
    let error = response.error_for_status().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::RateLimited);
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(error.provider_status(), Some(429));
}

#[tokio::test]
async fn post_is_not_retried_on_503() {
    let server = ScriptedServer::start(vec![Reply::status(503), Reply::status(200)]).await;
    let response = client(fast_config())
        .post(&server.url("/create"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status, 503);
    assert_eq!(response.attempts, 1);
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn idempotent_post_is_retried_on_503() {
    let server = ScriptedServer::start(vec![Reply::status(503), Reply::status(200)]).await;
    let response = client(fast_config())
        .post(&server.url("/search"))
        .idempotent(true)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.attempts, 2);
}

#[tokio::test]
async fn get_marked_not_idempotent_is_not_retried() {
    let server = ScriptedServer::start(vec![Reply::status(502), Reply::status(200)]).await;
    let response = client(fast_config())
        .get(&server.url("/trigger"))
        .idempotent(false)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status, 502);
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn retries_are_bounded_by_max_retries() {
    for status in [502, 503, 504] {
        let server = ScriptedServer::start(vec![Reply::status(status)]).await;
        let config = HttpConfig {
            max_retries: 3,
            ..fast_config()
        };
        let response = client(config)
            .get(&server.url("/down"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status, status);
        assert_eq!(response.attempts, 4);
        assert_eq!(server.hits().len(), 4, "status {status}");
    }
}

#[tokio::test]
async fn internal_server_error_is_not_retried() {
    let server = ScriptedServer::start(vec![Reply::status(500), Reply::status(200)]).await;
    let response = client(fast_config())
        .get(&server.url("/bug"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status, 500);
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn closed_port_is_unavailable_after_retries() {
    let port = closed_port();
    let config = HttpConfig {
        max_retries: 2,
        ..fast_config()
    };
    let error = client(config)
        .get(&format!("http://127.0.0.1:{port}/api/v1/validate"))
        .connector("datadog")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert_eq!(error.connector(), Some("datadog"));
    let message = error.message();
    assert!(
        message.starts_with(&format!("could not reach 127.0.0.1:{port}: ")),
        "{message}"
    );
    assert!(message.contains("3 attempts"), "{message}");
}

#[tokio::test]
async fn post_is_not_retried_on_connection_failure() {
    let port = closed_port();
    let error = client(fast_config())
        .post(&format!("http://127.0.0.1:{port}/create"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        error.message().contains("1 attempt)"),
        "{}",
        error.message()
    );
}

#[tokio::test]
async fn a_timed_out_get_is_retried() {
    let server = ScriptedServer::start(vec![
        Reply::status(200).delay(Duration::from_secs(2)),
        Reply::status(200).body("fast"),
    ])
    .await;
    let config = HttpConfig {
        total_timeout: Duration::from_millis(200),
        ..fast_config()
    };
    let response = client(config)
        .get(&server.url("/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text(), "fast");
    assert_eq!(response.attempts, 2);
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let server = ScriptedServer::start(vec![
        Reply::status(302).header("location", "/elsewhere"),
        Reply::status(200),
    ])
    .await;
    let response = client(fast_config())
        .get(&server.url("/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status, 302);
    assert_eq!(response.header("location"), Some("/elsewhere"));
    assert_eq!(server.hits().len(), 1);
}
