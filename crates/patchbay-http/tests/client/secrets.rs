use base64::Engine as _;
use patchbay_core::{ErrorKind, SecretString};
use patchbay_http::{HttpClient, HttpConfig};

use crate::support::{closed_port, fast_config, Reply, ScriptedServer};

const CANARY: &str = "canary-7f3a9b2e";

fn canary_forms() -> Vec<String> {
    vec![
        CANARY.to_owned(),
        base64::engine::general_purpose::STANDARD.encode(format!("me:{CANARY}")),
    ]
}

fn assert_no_canary(text: &str) {
    for form in canary_forms() {
        assert!(!text.contains(&form), "secret leaked: {text}");
    }
}

fn client() -> HttpClient {
    HttpClient::new(HttpConfig {
        max_retries: 1,
        ..fast_config()
    })
    .unwrap()
}

#[tokio::test]
async fn secret_headers_are_sent_but_never_printed() {
    let server = ScriptedServer::start(vec![Reply::status(401).echo_headers()]).await;
    let secret = SecretString::from(CANARY);
    let builder = client()
        .get(&server.url("/api/v1/validate?api_key_hint=1"))
        .connector("datadog")
        .secret_header("DD-API-KEY", &secret)
        .bearer_auth(&secret);
    assert_no_canary(&format!("{builder:?}"));
    assert!(!format!("{builder:?}").contains("api_key_hint"));

    let response = builder.send().await.unwrap();
    let received = &server.hits()[0].headers;
    assert_eq!(received["dd-api-key"], CANARY);
    assert_eq!(received["authorization"], format!("Bearer {CANARY}"));
    assert!(
        response.text().contains(CANARY),
        "the server echoed the headers"
    );
    assert_no_canary(&format!("{response:?}"));

    let error = response.error_for_status().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::AuthFailed);
    assert!(error.message().contains("[redacted]"), "{error}");
    assert_no_canary(&format!("{error} {error:?} {:?}", error.hint()));
}

#[tokio::test]
async fn basic_auth_is_redacted_in_its_encoded_form_too() {
    let server = ScriptedServer::start(vec![Reply::status(403).echo_headers()]).await;
    let builder = client()
        .get(&server.url("/wiki/rest/api/space"))
        .basic_auth("me", &SecretString::from(CANARY));
    assert_no_canary(&format!("{builder:?}"));
    let response = builder.send().await.unwrap();
    let expected = format!("Basic {}", canary_forms()[1]);
    assert_eq!(server.hits()[0].headers["authorization"], expected.as_str());
    let error = response.error_for_status().unwrap_err();
    assert_no_canary(&format!("{error} {error:?}"));
}

#[tokio::test]
async fn transport_errors_do_not_leak_secrets_or_query_strings() {
    let port = closed_port();
    let error = client()
        .get(&format!("http://127.0.0.1:{port}/v1?token={CANARY}"))
        .secret_header("x-api-key", &SecretString::from(CANARY))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    let mut chain = format!("{error} {error:?}");
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert_no_canary(&chain);
}

#[tokio::test]
async fn a_secret_that_is_not_a_valid_header_value_is_rejected_without_echo() {
    let server = ScriptedServer::start(vec![Reply::status(200)]).await;
    let error = client()
        .get(&server.url("/"))
        .secret_header("DD-API-KEY", &SecretString::from(format!("{CANARY}\n")))
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("DD-API-KEY"));
    assert_no_canary(&format!("{error} {error:?}"));
    assert!(server.hits().is_empty());
}

#[tokio::test]
async fn spans_record_host_and_path_but_no_query_headers_or_bodies() {
    let logs = patchbay_testkit::logs::capture();

    let server = ScriptedServer::start(vec![Reply::status(503), Reply::status(200)]).await;
    client()
        .post(&server.url(&format!("/api/v2/logs/events/search?token={CANARY}")))
        .connector("datadog")
        .operation("search_logs")
        .idempotent(true)
        .secret_header("DD-API-KEY", &SecretString::from(CANARY))
        .json(&serde_json::json!({"filter": CANARY}))
        .send()
        .await
        .unwrap();

    let output = logs.text();
    assert!(output.contains("http.request"), "{output}");
    assert!(output.contains("connector=\"datadog\""), "{output}");
    assert!(output.contains("operation=\"search_logs\""), "{output}");
    assert!(
        output.contains("path=\"/api/v2/logs/events/search\""),
        "{output}"
    );
    assert!(output.contains("host=\"127.0.0.1\""), "{output}");
    assert!(output.contains("status=200"), "{output}");
    assert!(output.contains("attempts=2"), "{output}");
    assert_no_canary(&output);
    assert!(!output.contains("token="), "{output}");
}

#[tokio::test]
async fn sensitive_paths_are_redacted_from_spans_and_debug() {
    let logs = patchbay_testkit::logs::capture();

    let server = ScriptedServer::start(vec![Reply::status(200)]).await;
    let builder = client()
        .post(&server.url(&format!("/services/T000/B000/{CANARY}")))
        .sensitive_path();
    assert_no_canary(&format!("{builder:?}"));
    builder.send().await.unwrap();
    assert_eq!(
        server.hits()[0].uri,
        format!("/services/T000/B000/{CANARY}")
    );
    let output = logs.text();
    assert!(output.contains("path=\"[redacted]\""), "{output}");
    assert_no_canary(&output);
}
