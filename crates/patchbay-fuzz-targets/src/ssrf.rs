//! The SSRF policy for tenant-supplied URLs: the address rules, the operator's
//! allowlist and the URL check made at connect time. Nothing here resolves a name
//! or connects.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::LazyLock;

use patchbay_core::{ConnectorEnv, ErrorKind};
use patchbay_http::{AddressPolicy, HttpClient, ALLOWED_PRIVATE_NETWORKS_VAR};
use url::{Host, Url};

/// The allowlist of the second client the URL target checks with.
pub const ALLOWLIST: &str = "10.20.0.0/16,192.168.5.10,fd12:3456::/48";

/// The public address the Teredo forms name as their server.
const TEREDO_SERVER: Ipv4Addr = Ipv4Addr::new(65, 54, 227, 120);

/// Clients without and with [`ALLOWLIST`], and their policies.
static CLIENTS: LazyLock<[(HttpClient, AddressPolicy); 2]> = LazyLock::new(|| {
    let client = |allowlist: &str| {
        let env = ConnectorEnv::from_pairs([(ALLOWED_PRIVATE_NETWORKS_VAR, allowlist)]);
        let client = HttpClient::from_env(&env).expect("the allowlist parses");
        let policy = AddressPolicy::parse(allowlist).expect("the allowlist parses");
        (client, policy)
    };
    [client(""), client(ALLOWLIST)]
});

/// The IPv6 forms that carry `ipv4` and may reach it: IPv4-mapped,
/// IPv4-compatible, NAT64 (64:ff9b::/96), 6to4 and Teredo (as the client).
fn ipv6_forms(ipv4: Ipv4Addr) -> [Ipv6Addr; 5] {
    let [a, b, c, d] = ipv4.octets();
    let high = u16::from_be_bytes([a, b]);
    let low = u16::from_be_bytes([c, d]);
    let [sa, sb, sc, sd] = TEREDO_SERVER.octets();
    [
        ipv4.to_ipv6_mapped(),
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, high, low),
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, high, low),
        Ipv6Addr::new(0x2002, high, low, 0, 0, 0, 0, 0),
        Ipv6Addr::new(
            0x2001,
            0,
            u16::from_be_bytes([sa, sb]),
            u16::from_be_bytes([sc, sd]),
            0,
            0,
            !high,
            !low,
        ),
    ]
}

/// Checks one address under `policy`: a refusal's suggested allowlist entry
/// admits the address it names; an IPv4 address and its IPv4-mapped form (the
/// same address) are admitted alike under any policy; and under the default
/// policy every IPv6 form of an IPv4 address is refused exactly when the address
/// is. (An operator's allowlist may name a NAT64 or 6to4 prefix on purpose.)
fn check_address(policy: &AddressPolicy, address: IpAddr, default_policy: bool) {
    let verdict = policy.check(address);
    if let Err(blocked) = &verdict {
        assert_eq!(blocked.address(), address);
        assert!(!blocked.reason().is_empty());
        let opened = AddressPolicy::parse(&blocked.allow_entry())
            .unwrap_or_else(|error| panic!("the suggested entry does not parse: {error}"));
        assert!(
            opened.check(address).is_ok(),
            "{}: the suggested entry {} does not admit it",
            blocked,
            blocked.allow_entry()
        );
    }
    let IpAddr::V4(ipv4) = address else {
        return;
    };
    let mapped = IpAddr::V6(ipv4.to_ipv6_mapped());
    assert_eq!(
        policy.check(mapped).is_ok(),
        verdict.is_ok(),
        "{mapped} and {ipv4}, the same address, are not judged alike"
    );
    if default_policy {
        for form in ipv6_forms(ipv4) {
            assert_eq!(
                policy.check(IpAddr::V6(form)).is_ok(),
                verdict.is_ok(),
                "{form} and {ipv4}, which it carries, are not judged alike"
            );
        }
    }
}

/// The address target: the first 16 bytes as an IPv6 address and the first 4 as
/// an IPv4 address, the rest as an allowlist, each address checked under the
/// default policy and under the allowlist when it parses.
pub fn ssrf_address(data: &[u8]) {
    let mut octets = [0u8; 16];
    let taken = data.len().min(16);
    octets[..taken].copy_from_slice(&data[..taken]);
    let ipv6 = Ipv6Addr::from(octets);
    let ipv4 = Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]);
    let spec = String::from_utf8_lossy(&data[taken..]);
    let default = AddressPolicy::default();
    for address in [IpAddr::V4(ipv4), IpAddr::V6(ipv6)] {
        check_address(&default, address, true);
    }
    match AddressPolicy::parse(&spec) {
        Ok(policy) => {
            for network in policy.networks() {
                assert!(
                    policy.is_allowlisted(network.addr()),
                    "{network} from {spec:?} does not allow its own address"
                );
                assert!(policy.check(network.addr()).is_ok());
            }
            for address in [IpAddr::V4(ipv4), IpAddr::V6(ipv6)] {
                check_address(&policy, address, false);
            }
        }
        Err(error) => {
            assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
            assert_eq!(error.field(), Some(ALLOWED_PRIVATE_NETWORKS_VAR));
        }
    }
}

/// The URL target: the input as a tenant's base URL, checked by a client without
/// and with an allowlist. What passes has no user info, uses https (plain http
/// only with an allowlist), and an IP-literal host the policy admits.
pub fn tenant_url(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    for (client, policy) in CLIENTS.iter() {
        match client.check_tenant_url("api_url", input) {
            Ok(url) => check_admitted(&url, policy, input),
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{error}");
                assert_eq!(error.field(), Some("api_url"), "{error}");
            }
        }
    }
}

/// Checks a URL `check_tenant_url` admitted under `policy`.
fn check_admitted(url: &Url, policy: &AddressPolicy, input: &str) {
    assert!(
        url.username().is_empty() && url.password().is_none(),
        "admitted user info in {input:?}"
    );
    let plain_http = match url.scheme() {
        "https" => false,
        "http" => true,
        other => panic!("admitted scheme {other} in {input:?}"),
    };
    let address = match url.host() {
        Some(Host::Ipv4(address)) => Some(IpAddr::V4(address)),
        Some(Host::Ipv6(address)) => Some(IpAddr::V6(address)),
        Some(Host::Domain(_)) => None,
        None => panic!("admitted a URL without a host: {input:?}"),
    };
    if let Some(address) = address {
        assert!(
            policy.check(address).is_ok(),
            "admitted {address}, which the policy refuses, in {input:?}"
        );
        if plain_http {
            assert!(
                policy.is_allowlisted(address),
                "admitted plain http to {address}, which is not allowlisted"
            );
        }
    } else if plain_http {
        assert!(
            !policy.networks().is_empty(),
            "admitted plain http to a name without any allowlist: {input:?}"
        );
    }
}
