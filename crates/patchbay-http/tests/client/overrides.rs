use patchbay_core::{ConnectorEnv, ErrorKind};
use patchbay_http::{HttpClient, UpstreamOverrides};
use url::Url;

use crate::support::{Reply, ScriptedServer};

fn rewrite(overrides: &UpstreamOverrides, url: &str) -> Option<String> {
    overrides
        .rewrite(&Url::parse(url).unwrap())
        .map(|url| url.to_string())
}

#[test]
fn rewrite_takes_scheme_host_and_port_from_the_base_and_keeps_the_query() {
    let overrides = UpstreamOverrides::parse("api.datadoghq.com=http://127.0.0.1:9000").unwrap();
    assert_eq!(
        rewrite(&overrides, "https://api.datadoghq.com/api/v1/validate?x=1").as_deref(),
        Some("http://127.0.0.1:9000/api/v1/validate?x=1")
    );
    assert_eq!(rewrite(&overrides, "https://api.github.com/user"), None);
}

#[test]
fn rewrite_prefixes_the_base_path() {
    let overrides = UpstreamOverrides::parse(
        " api.datadoghq.com=https://proxy/dd/ , api.github.com=https://proxy.internal:8443/github ,",
    )
    .unwrap();
    assert_eq!(
        rewrite(&overrides, "https://api.datadoghq.com/api/v1/validate?x=1").as_deref(),
        Some("https://proxy/dd/api/v1/validate?x=1")
    );
    assert_eq!(
        rewrite(
            &overrides,
            "https://api.github.com/repos/a%20b/issues?state=open&page=2"
        )
        .as_deref(),
        Some("https://proxy.internal:8443/github/repos/a%20b/issues?state=open&page=2")
    );
}

#[test]
fn a_key_with_a_port_matches_only_that_port() {
    let overrides = UpstreamOverrides::parse("grafana.local:3000=http://localhost:4000").unwrap();
    assert_eq!(
        rewrite(&overrides, "https://grafana.local:3000/api/health").as_deref(),
        Some("http://localhost:4000/api/health")
    );
    assert_eq!(
        rewrite(&overrides, "https://grafana.local/api/health"),
        None
    );
    let default_port = UpstreamOverrides::parse("API.Example.com:443=https://proxy/x").unwrap();
    assert_eq!(
        rewrite(&default_port, "https://api.example.com/y").as_deref(),
        Some("https://proxy/x/y")
    );
}

#[test]
fn empty_spec_means_no_overrides() {
    assert!(UpstreamOverrides::parse("").unwrap().is_empty());
    assert!(UpstreamOverrides::parse("  ,  ").unwrap().is_empty());
}

#[test]
fn plain_http_is_allowed_only_to_loopback() {
    for spec in [
        "a.example=http://127.0.0.1:9000",
        "a.example=http://127.8.9.10",
        "a.example=http://[::1]:9000/x",
        "a.example=http://localhost:9000",
    ] {
        UpstreamOverrides::parse(spec).unwrap_or_else(|error| panic!("{spec}: {error}"));
    }
    for spec in [
        "api.datadoghq.com=http://10.0.0.5:9000",
        "api.datadoghq.com=http://proxy.internal",
        "api.datadoghq.com=http://localhost.evil.example",
    ] {
        let error = UpstreamOverrides::parse(spec).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig);
        assert_eq!(error.field(), Some("PATCHBAY_UPSTREAM_OVERRIDES"));
        assert!(
            error.message().contains("PATCHBAY_UPSTREAM_OVERRIDES"),
            "{error}"
        );
        assert!(error.message().contains("use https"), "{error}");
    }
}

#[test]
fn malformed_entries_name_the_variable() {
    for spec in [
        "api.datadoghq.com",
        "api.datadoghq.com=ftp://proxy",
        "api.datadoghq.com=not a url",
        "https://api.datadoghq.com=https://proxy",
        "=https://proxy",
        "api.datadoghq.com=https://proxy/x?token=1",
    ] {
        let error = UpstreamOverrides::parse(spec).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{spec}");
        assert_eq!(error.field(), Some("PATCHBAY_UPSTREAM_OVERRIDES"), "{spec}");
        assert!(error.hint().is_some(), "{spec}");
    }
}

#[test]
fn base_urls_with_credentials_are_rejected_without_echoing_them() {
    let error =
        UpstreamOverrides::parse("api.github.com=https://user:hunter2-canary@proxy").unwrap_err();
    assert_eq!(error.field(), Some("PATCHBAY_UPSTREAM_OVERRIDES"));
    assert!(!format!("{error} {error:?}").contains("hunter2-canary"));
}

#[test]
fn insert_replaces_an_existing_rewrite() {
    let mut overrides = UpstreamOverrides::default();
    overrides
        .insert("api.example.test", "https://one/")
        .unwrap();
    overrides
        .insert("api.example.test", "http://127.0.0.1:1/two")
        .unwrap();
    assert_eq!(
        rewrite(&overrides, "https://api.example.test/x").as_deref(),
        Some("http://127.0.0.1:1/two/x")
    );
}

#[tokio::test]
async fn request_to_an_overridden_host_reaches_the_local_server() {
    let server = ScriptedServer::start(vec![Reply::status(200).body("local")]).await;
    let env = ConnectorEnv::from_pairs([(
        "PATCHBAY_UPSTREAM_OVERRIDES",
        format!("api.example.test=http://{}/prefix", server.addr),
    )]);
    let response = HttpClient::from_env(&env)
        .unwrap()
        .get("https://api.example.test/x?page=2")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text(), "local");
    let hits = server.hits();
    assert_eq!(hits[0].uri, "/prefix/x?page=2");
    assert_eq!(
        hits[0].headers.get("host").unwrap().to_str().unwrap(),
        server.addr.to_string()
    );
}
