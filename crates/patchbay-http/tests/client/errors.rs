use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue, StatusCode};
use patchbay_core::ErrorKind;
use patchbay_http::{parse_retry_after, HttpClient, HttpConfig, Response};

use crate::support::{fast_config, Reply, ScriptedServer};

async fn answer(reply: Reply) -> Response {
    let server = ScriptedServer::start(vec![reply]).await;
    let config = HttpConfig {
        max_retries: 0,
        ..fast_config()
    };
    HttpClient::new(config)
        .unwrap()
        .get(&server.url("/api/v1/thing"))
        .connector("datadog")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn statuses_map_to_error_kinds_with_provider_text() {
    let cases = [
        (
            Reply::status(401).body(r#"{"errors":["Forbidden"]}"#),
            ErrorKind::AuthFailed,
            "datadog returned 401 Unauthorized: Forbidden",
        ),
        (
            Reply::status(403).body(r#"{"errors":["Insufficient permissions","logs_read_data"]}"#),
            ErrorKind::PermissionDenied,
            "datadog returned 403 Forbidden: Insufficient permissions; logs_read_data",
        ),
        (
            Reply::status(404).body(r#"{"message":"Not Found"}"#),
            ErrorKind::NotFound,
            "datadog returned 404 Not Found: Not Found",
        ),
        (
            Reply::status(429)
                .header("retry-after", "7")
                .body("slow down"),
            ErrorKind::RateLimited,
            "datadog returned 429 Too Many Requests: slow down",
        ),
        (
            Reply::status(500).body("<html>\n  <b>upstream   broke</b>\n</html>"),
            ErrorKind::Unavailable,
            "datadog returned 500 Internal Server Error: <html> <b>upstream broke</b> </html>",
        ),
        (
            Reply::status(400).body(r#"{"error":{"code":400,"message":"bad query"}}"#),
            ErrorKind::InvalidInput,
            "datadog returned 400 Bad Request: bad query",
        ),
        (
            Reply::status(422)
                .body(r#"{"error":"invalid_grant","error_description":"code expired"}"#),
            ErrorKind::InvalidInput,
            "datadog returned 422 Unprocessable Entity: invalid_grant: code expired",
        ),
        (
            Reply::status(409),
            ErrorKind::InvalidInput,
            "datadog returned 409 Conflict: Conflict",
        ),
    ];
    for (reply, kind, message) in cases {
        let status = reply.status.as_u16();
        let error = answer(reply).await.error_for_status().unwrap_err();
        assert_eq!(error.kind(), kind, "{status}");
        assert_eq!(error.message(), message);
        assert_eq!(error.provider_status(), Some(status));
        assert_eq!(error.connector(), Some("datadog"));
        let expected_wait = (status == 429).then(|| Duration::from_secs(7));
        assert_eq!(error.retry_after(), expected_wait, "{status}");
    }
}

#[tokio::test]
async fn success_passes_through_error_for_status() {
    let response = answer(Reply::status(200).body(r#"{"valid":true}"#))
        .await
        .error_for_status()
        .unwrap();
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["valid"], true);
}

#[test]
fn long_provider_text_is_cut_to_500_chars() {
    let body = format!("{{\"message\":\"{}\"}}", "a".repeat(2000));
    let error = Response::new(StatusCode::BAD_GATEWAY, HeaderMap::new(), body)
        .with_connector("grafana")
        .error_for_status()
        .unwrap_err();
    let text = error
        .message()
        .strip_prefix("grafana returned 502 Bad Gateway: ")
        .unwrap();
    assert_eq!(text.chars().count(), 501);
    assert!(text.ends_with('…'));
}

#[test]
fn retry_after_accepts_seconds_and_http_dates() {
    let now = SystemTime::now();
    let mut headers = HeaderMap::new();
    assert_eq!(parse_retry_after(&headers, now), None);
    headers.insert("retry-after", HeaderValue::from_static(" 30 "));
    assert_eq!(
        parse_retry_after(&headers, now),
        Some(Duration::from_secs(30))
    );
    let later = httpdate::fmt_http_date(now + Duration::from_secs(90));
    headers.insert("retry-after", HeaderValue::from_str(&later).unwrap());
    let wait = parse_retry_after(&headers, now).unwrap();
    assert!(
        wait > Duration::from_secs(88) && wait <= Duration::from_secs(90),
        "{wait:?}"
    );
    let earlier = httpdate::fmt_http_date(now - Duration::from_secs(90));
    headers.insert("retry-after", HeaderValue::from_str(&earlier).unwrap());
    assert_eq!(parse_retry_after(&headers, now), Some(Duration::ZERO));
    headers.insert("retry-after", HeaderValue::from_static("soon"));
    assert_eq!(parse_retry_after(&headers, now), None);
}

#[tokio::test]
async fn http_date_retry_after_reaches_the_rate_limited_error() {
    let date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(600));
    let error = answer(Reply::status(429).header("retry-after", &date))
        .await
        .error_for_status()
        .unwrap_err();
    let wait = error.retry_after().unwrap();
    assert!(wait > Duration::from_secs(590), "{wait:?}");
}
