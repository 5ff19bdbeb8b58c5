use std::net::IpAddr;

use patchbay_core::{ConnectorEnv, ErrorKind};
use patchbay_http::{AddressPolicy, HttpClient, HttpConfig};

use crate::support::{fast_config, Reply, ScriptedServer};

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn allowing(networks: &str) -> HttpClient {
    HttpClient::new(HttpConfig {
        address_policy: AddressPolicy::parse(networks).unwrap(),
        max_retries: 2,
        ..fast_config()
    })
    .unwrap()
}

#[test]
fn internal_addresses_are_refused_with_the_rule_they_break() {
    let policy = AddressPolicy::default();
    for (address, rule) in [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("127.8.9.10", "127.8.9.10 is a loopback address"),
        ("10.0.0.1", "10.0.0.1 is a private address (RFC 1918)"),
        ("172.16.4.2", "172.16.4.2 is a private address (RFC 1918)"),
        ("192.168.1.1", "192.168.1.1 is a private address (RFC 1918)"),
        ("169.254.169.254", "169.254.169.254 is a cloud metadata address"),
        ("169.254.170.2", "169.254.170.2 is a cloud metadata address"),
        ("169.254.1.1", "169.254.1.1 is a link-local address"),
        ("100.64.0.1", "100.64.0.1 is a shared address (RFC 6598, carrier-grade NAT)"),
        ("100.100.100.200", "100.100.100.200 is a cloud metadata address"),
        ("168.63.129.16", "168.63.129.16 is a cloud metadata address"),
        ("0.0.0.0", "0.0.0.0 is an unspecified address"),
        ("0.1.2.3", "0.1.2.3 is a \"this network\" address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),
        ("255.255.255.255", "255.255.255.255 is the broadcast address"),
        ("240.0.0.1", "240.0.0.1 is a reserved address"),
        ("::1", "::1 is a loopback address"),
        ("::", ":: is an unspecified address"),
        ("fe80::1", "fe80::1 is a link-local address"),
        ("fc00::1", "fc00::1 is a unique local address (RFC 4193)"),
        ("fd00:ec2::254", "fd00:ec2::254 is a cloud metadata address"),
        ("fd20:ce::254", "fd20:ce::254 is a cloud metadata address"),
        ("ff02::1", "ff02::1 is a multicast address"),
        (
            "::ffff:10.0.0.1",
            "::ffff:10.0.0.1 is an IPv4-mapped form of 10.0.0.1, a private address (RFC 1918)",
        ),
        (
            "::ffff:169.254.169.254",
            "::ffff:169.254.169.254 is an IPv4-mapped form of 169.254.169.254, a cloud metadata address",
        ),
        (
            "::127.0.0.1",
            "::7f00:1 is an IPv4-compatible form of 127.0.0.1, a loopback address",
        ),
        (
            "64:ff9b::a00:1",
            "64:ff9b::a00:1 is a NAT64 form of 10.0.0.1, a private address (RFC 1918)",
        ),
        (
            "2002:a9fe:a9fe::",
            "2002:a9fe:a9fe:: is a 6to4 form of 169.254.169.254, a cloud metadata address",
        ),
    ] {
        let refusal = policy.check(ip(address)).unwrap_err();
        assert_eq!(refusal.address(), ip(address));
        assert_eq!(refusal.to_string(), rule, "{address}");
    }
}

#[test]
fn reserved_ipv6_ranges_are_refused_like_their_ipv4_counterparts() {
    // Documentation (3fff::/20, RFC 9637) and benchmarking (2001:2::/48, RFC 5180)
    // ranges, refused in IPv4, and SRv6 segment identifiers (5f00::/16, RFC 9602),
    // which are not globally reachable.
    let policy = AddressPolicy::default();
    for (address, rule) in [
        ("3fff::", "3fff:: is a documentation address"),
        (
            "3fff:fff:ffff::1",
            "3fff:fff:ffff::1 is a documentation address",
        ),
        (
            "2001:2::5",
            "2001:2::5 is a benchmarking address (RFC 2544)",
        ),
        (
            "5f00:1:2::3",
            "5f00:1:2::3 is an SRv6 segment identifier (RFC 9602)",
        ),
    ] {
        let refusal = policy.check(ip(address)).unwrap_err();
        assert_eq!(refusal.to_string(), rule, "{address}");
    }
    // Their neighbours stay open.
    for address in ["3fff:1000::1", "2001:3::1", "5f01::1"] {
        assert!(policy.check(ip(address)).is_ok(), "{address}");
    }
}

#[test]
fn public_addresses_are_admitted() {
    let policy = AddressPolicy::default();
    for address in [
        "140.82.112.6",
        "8.8.8.8",
        "172.32.0.1",
        "100.128.0.1",
        "169.255.0.1",
        "2606:4700:4700::1111",
        "2a01:4f8::1",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::",
    ] {
        assert!(policy.check(ip(address)).is_ok(), "{address}");
    }
}

#[test]
fn the_allowlist_admits_exactly_what_it_names() {
    let policy = AddressPolicy::parse(" 127.0.0.1/32 , 10.20.0.0/16, fd12::5 ").unwrap();
    for admitted in ["127.0.0.1", "::ffff:127.0.0.1", "10.20.255.1", "fd12::5"] {
        assert!(policy.check(ip(admitted)).is_ok(), "{admitted}");
        assert!(policy.is_allowlisted(ip(admitted)), "{admitted}");
    }
    for refused in ["127.0.0.2", "10.21.0.1", "fd12::6", "169.254.169.254"] {
        assert!(policy.check(ip(refused)).is_err(), "{refused}");
        assert!(!policy.is_allowlisted(ip(refused)), "{refused}");
    }
    assert!(!policy.is_allowlisted(ip("8.8.8.8")));
}

#[test]
fn invalid_allowlist_entries_name_the_variable_and_the_entry() {
    for (spec, entry) in [
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("127.0.0.1/32,banana", "banana"),
        ("10.0.0.0/8;192.168.0.0/16", "10.0.0.0/8;192.168.0.0/16"),
    ] {
        let env = ConnectorEnv::from_pairs([("PATCHBAY_ALLOWED_PRIVATE_NETWORKS", spec)]);
        let error = HttpConfig::from_env(&env).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{spec}");
        assert_eq!(error.field(), Some("PATCHBAY_ALLOWED_PRIVATE_NETWORKS"));
        assert!(
            error.message().contains(&format!("`{entry}`")),
            "{spec}: {error}"
        );
        assert!(error.hint().is_some(), "{spec}");
    }
    let env =
        ConnectorEnv::from_pairs([("PATCHBAY_ALLOWED_PRIVATE_NETWORKS", "10.0.0.0/8, 127.0.0.1")]);
    let config = HttpConfig::from_env(&env).unwrap();
    assert!(config.address_policy.is_allowlisted(ip("10.9.9.9")));
    assert!(config.address_policy.is_allowlisted(ip("127.0.0.1")));
    assert!(!config.address_policy.is_allowlisted(ip("127.0.0.2")));
}

#[test]
fn connect_time_checks_name_the_field() {
    let client = HttpClient::new(HttpConfig::default()).unwrap();
    let error = client
        .check_tenant_url("api_url", "https://10.0.0.5/api/v3")
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("api_url"));
    assert_eq!(
        error.message(),
        "refused https://10.0.0.5/api/v3: 10.0.0.5 is a private address (RFC 1918); \
         allow it with PATCHBAY_ALLOWED_PRIVATE_NETWORKS=10.0.0.5/32"
    );
    assert!(error.hint().is_some());

    let error = client
        .check_tenant_url("base_url", "https://[::1]:8443/x?token=canary")
        .unwrap_err();
    assert_eq!(error.field(), Some("base_url"));
    assert!(
        error
            .message()
            .starts_with("refused https://[::1]:8443/x: ::1 is a loopback address"),
        "{error}"
    );
    assert!(
        error
            .message()
            .contains("PATCHBAY_ALLOWED_PRIVATE_NETWORKS=::1/128"),
        "{error}"
    );
    assert!(!error.to_string().contains("canary"));

    for (url, reason) in [
        ("https://2130706433/api", "127.0.0.1 is a loopback address"),
        ("https://0x0a.0.0.1/api", "10.0.0.1 is a private address"),
        (
            "https://user:hunter2@ghe.example.com/",
            "user name or password",
        ),
        ("http://93.184.216.34/api", "plain http"),
        ("http://ghe.example.com/api/v3", "plain http"),
        ("ftp://ghe.example.com/", "https"),
        ("not a url", "not a valid URL"),
    ] {
        let error = client.check_tenant_url("api_url", url).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{url}");
        assert_eq!(error.field(), Some("api_url"), "{url}");
        assert!(error.message().contains(reason), "{url}: {error}");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    let admitted = client
        .check_tenant_url("api_url", "https://ghe.example.com/api/v3")
        .unwrap();
    assert_eq!(admitted.as_str(), "https://ghe.example.com/api/v3");
    let loopback = allowing("127.0.0.1/32")
        .check_tenant_url("api_url", "http://127.0.0.1:8080/api/v3")
        .unwrap();
    assert_eq!(loopback.as_str(), "http://127.0.0.1:8080/api/v3");
}

#[tokio::test]
async fn requests_to_refused_addresses_send_nothing() {
    let server = ScriptedServer::start(vec![Reply::status(200)]).await;
    let client = HttpClient::new(fast_config()).unwrap();
    let error = client
        .get(&server.url("/api/v3/user"))
        .tenant_url("api_url")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert_eq!(error.field(), Some("api_url"));
    assert_eq!(
        error.message(),
        format!(
            "refused {}: 127.0.0.1 is a loopback address; allow it with \
             PATCHBAY_ALLOWED_PRIVATE_NETWORKS=127.0.0.1/32",
            server.url("/api/v3/user")
        )
    );
    assert!(server.hits().is_empty());

    // Not marked as a tenant URL: operator-configured loopback fakes keep working.
    client.get(&server.url("/")).send().await.unwrap();
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn a_host_name_resolving_to_loopback_is_refused_at_the_resolver() {
    let server = ScriptedServer::start(vec![Reply::status(200)]).await;
    let port = server.addr.port();
    let error = allowing("")
        .get(&format!("https://localhost:{port}/api/v3/user"))
        .tenant_url("api_url")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
    assert_eq!(error.field(), Some("api_url"));
    assert!(
        error.message().starts_with(&format!(
            "refused https://localhost:{port}/api/v3/user: localhost resolves to "
        )),
        "{error}"
    );
    assert!(error.message().contains("a loopback address"), "{error}");
    assert!(server.hits().is_empty());

    // Allowed, the name reaches the server over plain http, at the checked address.
    allowing("127.0.0.1/32")
        .get(&format!("http://localhost:{port}/api/v3/user"))
        .tenant_url("api_url")
        .send()
        .await
        .unwrap();
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn plain_http_to_a_public_address_is_refused_without_opt_in() {
    let error = allowing("127.0.0.1/32")
        .get("http://93.184.216.34/api/v3/user")
        .tenant_url("api_url")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidConfig);
    assert!(
        error.message().starts_with(
            "refused http://93.184.216.34/api/v3/user: plain http is only allowed to addresses in \
             PATCHBAY_ALLOWED_PRIVATE_NETWORKS"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn the_allowlist_admits_loopback_fakes_and_nothing_next_to_them() {
    let server = ScriptedServer::start(vec![Reply::status(200).body("fake")]).await;
    let client = allowing("127.0.0.1/32");
    let response = client
        .get(&server.url("/api/v3/user"))
        .tenant_url("api_url")
        .send()
        .await
        .unwrap();
    assert_eq!(response.text(), "fake");
    let error = client
        .get(&format!("http://127.0.0.2:{}/", server.addr.port()))
        .tenant_url("api_url")
        .send()
        .await
        .unwrap_err();
    assert!(
        error.message().contains("127.0.0.2 is a loopback address"),
        "{error}"
    );
    assert_eq!(server.hits().len(), 1);
}

#[tokio::test]
async fn the_policy_applies_to_the_address_an_override_leads_to() {
    let server = ScriptedServer::start(vec![Reply::status(200)]).await;
    let env = ConnectorEnv::from_pairs([(
        "PATCHBAY_UPSTREAM_OVERRIDES",
        format!("ghe.example.com=http://{}", server.addr),
    )]);
    let error = HttpClient::from_env(&env)
        .unwrap()
        .get("https://ghe.example.com/api/v3/user")
        .tenant_url("api_url")
        .send()
        .await
        .unwrap_err();
    assert!(
        error.message().contains("127.0.0.1 is a loopback address"),
        "{error}"
    );
    assert!(error.message().contains("ghe.example.com"), "{error}");
    assert!(server.hits().is_empty());
}

#[tokio::test]
async fn tenant_servers_errors_show_only_a_short_extracted_message() {
    let page = format!(
        "<html><body>internal admin console {}</body></html>",
        "x".repeat(400)
    );
    let long_message = "m".repeat(1000);
    let server = ScriptedServer::start(vec![
        Reply::status(500).body(&page),
        Reply::status(400).body(&format!(r#"{{"message":"{long_message}"}}"#)),
        Reply::status(403).body(r#"{"error":"not allowed here","secret_field":"internal"}"#),
    ])
    .await;
    let client = HttpClient::new(HttpConfig {
        address_policy: AddressPolicy::parse("127.0.0.1/32").unwrap(),
        max_retries: 0,
        ..fast_config()
    })
    .unwrap();
    let mut errors = Vec::new();
    for _ in 0..3 {
        let response = client
            .get(&server.url("/api/v3/user"))
            .connector("github")
            .tenant_url("api_url")
            .send()
            .await
            .unwrap();
        errors.push(response.error_for_status().unwrap_err());
    }
    assert_eq!(
        errors[0].message(),
        "github returned 500 Internal Server Error: Internal Server Error"
    );
    let cut = errors[1].message();
    assert!(
        cut.starts_with("github returned 400 Bad Request: mmm"),
        "{cut}"
    );
    assert!(cut.ends_with('…'), "{cut}");
    assert!(cut.chars().filter(|c| *c == 'm').count() <= 200, "{cut}");
    assert_eq!(
        errors[2].message(),
        "github returned 403 Forbidden: not allowed here"
    );
}
