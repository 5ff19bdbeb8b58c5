use std::time::Duration;

use patchbay_core::{ConnectorEnv, ErrorKind};
use patchbay_http::{HttpClient, HttpConfig};

use crate::support::{Reply, ScriptedServer};

#[test]
fn defaults_match_the_documented_values() {
    let config = HttpConfig::default();
    assert_eq!(config.connect_timeout, Duration::from_secs(5));
    assert_eq!(config.read_timeout, Duration::from_secs(30));
    assert_eq!(config.total_timeout, Duration::from_secs(60));
    assert_eq!(config.max_retries, 3);
    assert_eq!(config.base_backoff, Duration::from_millis(200));
    assert_eq!(config.max_backoff, Duration::from_secs(10));
    assert_eq!(config.max_retry_after, Duration::from_secs(30));
    assert_eq!(config.max_response_bytes, 10 * 1024 * 1024);
    assert_eq!(
        config.user_agent,
        format!(
            "patchbay/{} (+https://github.com/patchbay-dev/patchbay)",
            env!("CARGO_PKG_VERSION")
        )
    );
    assert!(config.overrides.is_empty());
}

#[test]
fn from_env_reads_timeouts_and_retries() {
    let env = ConnectorEnv::from_pairs([
        ("PATCHBAY_HTTP_CONNECT_TIMEOUT_SECS", "2"),
        ("PATCHBAY_HTTP_TIMEOUT_SECS", " 90 "),
        ("PATCHBAY_HTTP_MAX_RETRIES", "0"),
        ("PATCHBAY_UPSTREAM_OVERRIDES", ""),
    ]);
    let config = HttpConfig::from_env(&env).unwrap();
    assert_eq!(config.connect_timeout, Duration::from_secs(2));
    assert_eq!(config.total_timeout, Duration::from_secs(90));
    assert_eq!(config.max_retries, 0);
    assert!(config.overrides.is_empty());
}

#[test]
fn invalid_env_values_name_the_variable() {
    for (var, value) in [
        ("PATCHBAY_HTTP_CONNECT_TIMEOUT_SECS", "soon"),
        ("PATCHBAY_HTTP_TIMEOUT_SECS", "0"),
        ("PATCHBAY_HTTP_TIMEOUT_SECS", "-5"),
        ("PATCHBAY_HTTP_MAX_RETRIES", "many"),
        (
            "PATCHBAY_UPSTREAM_OVERRIDES",
            "api.datadoghq.com=http://10.1.1.1",
        ),
    ] {
        let env = ConnectorEnv::from_pairs([(var, value)]);
        let error = HttpConfig::from_env(&env).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{var}={value}");
        assert_eq!(error.field(), Some(var));
        assert!(error.message().contains(var), "{error}");
        assert!(
            error.hint().is_some_and(|hint| hint.contains(var)),
            "{error:?}"
        );
    }
}

#[tokio::test]
async fn requests_carry_the_configured_user_agent() {
    let server = ScriptedServer::start(vec![Reply::status(204)]).await;
    let client = HttpClient::new(HttpConfig {
        user_agent: "patchbay-test/1".into(),
        ..HttpConfig::default()
    })
    .unwrap();
    client.get(&server.url("/")).send().await.unwrap();
    assert_eq!(server.hits()[0].headers["user-agent"], "patchbay-test/1");
}
