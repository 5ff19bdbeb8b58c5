//! Properties of the SSRF policy for tenant URLs, against generated addresses and
//! URLs. Only the policy's checks are called ([`AddressPolicy::check`],
//! [`HttpClient::check_tenant_url`]); nothing is resolved or connected to.
//!
//! The refused ranges are written out here from the IANA special-purpose address
//! registries, independently of the policy's own rules: every address in one is
//! refused, in IPv4 and in each IPv6 form that embeds an IPv4 address, and every
//! other global unicast address is admitted. A URL reaches the address check
//! however its host is spelled (decimal, octal or hex IPv4 parts, a trailing dot,
//! percent-encoding, bracketed IPv6 with an embedded IPv4), and user info is
//! always refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use patchbay_core::ErrorKind;
use patchbay_http::{AddressPolicy, HttpClient, HttpConfig};
use proptest::prelude::*;

/// IPv4 networks no tenant URL may reach: (network, prefix length).
const REFUSED_V4: &[([u8; 4], u32)] = &[
    ([0, 0, 0, 0], 8),       // "this network", including the unspecified address
    ([10, 0, 0, 0], 8),      // private (RFC 1918)
    ([100, 64, 0, 0], 10),   // shared, carrier-grade NAT (RFC 6598)
    ([127, 0, 0, 0], 8),     // loopback
    ([169, 254, 0, 0], 16),  // link-local, with the metadata services
    ([172, 16, 0, 0], 12),   // private (RFC 1918)
    ([192, 0, 0, 0], 24),    // IETF protocol assignments
    ([192, 0, 2, 0], 24),    // documentation
    ([192, 88, 99, 0], 24),  // deprecated 6to4 relay anycast
    ([192, 168, 0, 0], 16),  // private (RFC 1918)
    ([198, 18, 0, 0], 15),   // benchmarking
    ([198, 51, 100, 0], 24), // documentation
    ([203, 0, 113, 0], 24),  // documentation
    ([224, 0, 0, 0], 4),     // multicast
    ([240, 0, 0, 0], 4),     // reserved, with the broadcast address
];

/// Cloud metadata services outside the ranges above.
const METADATA_V4: &[[u8; 4]] = &[[168, 63, 129, 16]];

/// IPv6 networks no tenant URL may reach (besides the IPv4 forms): (network, prefix).
const REFUSED_V6: &[(u128, u32)] = &[
    (0, 128),                          // unspecified
    (1, 128),                          // loopback
    (0x0064_ff9b_0001_u128 << 80, 48), // local-use NAT64 (RFC 8215)
    (0x0100_u128 << 112, 64),          // discard-only (RFC 6666)
    (0x2001_0002_0000_u128 << 80, 48), // benchmarking (RFC 5180)
    (0x2001_0db8_u128 << 96, 32),      // documentation (RFC 3849)
    (0x3fff_u128 << 112, 20),          // documentation (RFC 9637)
    (0x5f00_u128 << 112, 16),          // SRv6 segment identifiers (RFC 9602)
    (0xfc00_u128 << 112, 7),           // unique local (RFC 4193)
    (0xfe80_u128 << 112, 10),          // link-local
    (0xfec0_u128 << 112, 10),          // site-local (deprecated)
    (0xff00_u128 << 112, 8),           // multicast
];

fn in_v4(address: Ipv4Addr, (network, prefix): ([u8; 4], u32)) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(address) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn in_v6(address: Ipv6Addr, (network, prefix): (u128, u32)) -> bool {
    let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    u128::from(address) & mask == network & mask
}

/// Whether the registries say a tenant URL must not reach `address`.
fn refused_v4(address: Ipv4Addr) -> bool {
    REFUSED_V4.iter().any(|&range| in_v4(address, range)) || METADATA_V4.contains(&address.octets())
}

fn private_v4() -> impl Strategy<Value = Ipv4Addr> {
    let ranges: Vec<_> = REFUSED_V4.to_vec();
    (prop::sample::select(ranges), any::<u32>())
        .prop_map(|((network, prefix), host)| {
            let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
            Ipv4Addr::from(u32::from(Ipv4Addr::from(network)) & mask | host & !mask)
        })
        .boxed()
        .prop_union(
            prop::sample::select(vec![
                Ipv4Addr::new(169, 254, 169, 254),
                Ipv4Addr::new(169, 254, 170, 2),
                Ipv4Addr::new(100, 100, 100, 200),
                Ipv4Addr::new(168, 63, 129, 16),
                Ipv4Addr::new(127, 0, 0, 1),
                Ipv4Addr::new(0, 0, 0, 0),
                Ipv4Addr::new(255, 255, 255, 255),
            ])
            .boxed(),
        )
}

fn public_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("a globally reachable address", |address| {
            !refused_v4(*address)
        })
}

fn any_v4() -> impl Strategy<Value = Ipv4Addr> {
    prop_oneof![
        private_v4(),
        public_v4(),
        any::<u32>().prop_map(Ipv4Addr::from)
    ]
}

/// Global unicast IPv6 (2000::/3) outside every special-purpose range and outside
/// the forms that tunnel to an IPv4 address (6to4, Teredo).
fn public_v6() -> impl Strategy<Value = Ipv6Addr> {
    any::<u128>()
        .prop_map(|bits| Ipv6Addr::from((0x2000 << 112) | (bits >> 3)))
        .prop_filter("a globally reachable address", |address| {
            let first = address.segments()[0];
            first != 0x2002
                && !(first == 0x2001 && address.segments()[1] < 0x200)
                && !REFUSED_V6.iter().any(|&range| in_v6(*address, range))
        })
}

fn special_v6() -> impl Strategy<Value = Ipv6Addr> {
    (prop::sample::select(REFUSED_V6.to_vec()), any::<u128>()).prop_map(
        |((network, prefix), host)| {
            let mask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
            Ipv6Addr::from(network & mask | host & !mask)
        },
    )
}

/// The IPv6 forms that carry `v4`: mapped, translated, compatible, NAT64, 6to4.
fn embeddings(v4: Ipv4Addr, prefix_bits: u128) -> Vec<(&'static str, Ipv6Addr)> {
    let low = u128::from(u32::from(v4));
    vec![
        ("IPv4-mapped", v4.to_ipv6_mapped()),
        ("IPv4-translated", Ipv6Addr::from((0xffff << 48) | low)),
        ("IPv4-compatible", Ipv6Addr::from(low)),
        ("NAT64", Ipv6Addr::from((0x0064_ff9b << 96) | low)),
        (
            "6to4",
            Ipv6Addr::from((0x2002 << 112) | (low << 80) | (prefix_bits & ((1 << 80) - 1))),
        ),
    ]
}

/// A Teredo address with `server` and the (inverted) client address `client`.
fn teredo(server: Ipv4Addr, client: Ipv4Addr, flags_and_port: u32) -> Ipv6Addr {
    let bits = (0x2001_0000u128 << 96)
        | (u128::from(u32::from(server)) << 64)
        | (u128::from(flags_and_port) << 32)
        | u128::from(!u32::from(client));
    Ipv6Addr::from(bits)
}

/// The policy as it stands without `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`.
fn policy() -> AddressPolicy {
    AddressPolicy::default()
}

/// A client with the default policy, built once: only its URL check is used.
fn client() -> &'static HttpClient {
    static CLIENT: OnceLock<HttpClient> = OnceLock::new();
    CLIENT.get_or_init(|| HttpClient::new(HttpConfig::default()).expect("a client"))
}

/// How one part of a dotted IPv4 host is written.
#[derive(Clone, Copy, Debug)]
enum Radix {
    Decimal,
    Octal,
    Hex {
        upper_prefix: bool,
        upper_digits: bool,
    },
}

fn radix() -> impl Strategy<Value = Radix> {
    prop_oneof![
        Just(Radix::Decimal),
        Just(Radix::Octal),
        (any::<bool>(), any::<bool>()).prop_map(|(upper_prefix, upper_digits)| Radix::Hex {
            upper_prefix,
            upper_digits
        }),
    ]
}

fn write_part(value: u32, radix: Radix) -> String {
    match radix {
        Radix::Decimal => value.to_string(),
        Radix::Octal => format!("0{value:o}"),
        Radix::Hex {
            upper_prefix,
            upper_digits,
        } => {
            let prefix = if upper_prefix { "0X" } else { "0x" };
            if upper_digits {
                format!("{prefix}{value:X}")
            } else {
                format!("{prefix}{value:x}")
            }
        }
    }
}

/// How an IPv4 host is spelled besides its parts and radixes.
#[derive(Clone, Copy, Debug)]
enum Characters {
    Ascii,
    /// Fullwidth digits and letters with ideographic full stops, which IDNA maps
    /// to ASCII.
    Fullwidth,
}

/// `address` as a URL host the WHATWG parser reads as that IPv4 address: in one to
/// four parts (the last holding the remaining bytes), each in its own radix,
/// perhaps with a trailing dot, in ASCII with some characters percent-encoded or
/// in fullwidth characters.
fn spelled_v4(
    address: Ipv4Addr,
    parts: usize,
    radixes: &[Radix],
    trailing_dot: bool,
    percent: &[bool],
    characters: Characters,
) -> String {
    let octets = address.octets().map(u32::from);
    let value = u32::from(address);
    let numbers: Vec<u32> = match parts {
        1 => vec![value],
        2 => vec![octets[0], value & 0x00ff_ffff],
        3 => vec![octets[0], octets[1], value & 0xffff],
        _ => octets.to_vec(),
    };
    let mut host = numbers
        .iter()
        .zip(radixes.iter().cycle())
        .map(|(number, radix)| write_part(*number, *radix))
        .collect::<Vec<_>>()
        .join(".");
    if trailing_dot {
        host.push('.');
    }
    match characters {
        Characters::Ascii => host
            .chars()
            .zip(percent.iter().cycle())
            .map(|(character, encode)| {
                if *encode && character.is_ascii_alphanumeric() {
                    format!("%{:02X}", character as u32)
                } else {
                    character.to_string()
                }
            })
            .collect(),
        Characters::Fullwidth => host
            .chars()
            .map(|character| match character {
                '.' => '\u{3002}',
                ascii => char::from_u32(ascii as u32 - 0x20 + 0xff00).unwrap_or(ascii),
            })
            .collect(),
    }
}

type HostSpelling = (usize, Vec<Radix>, bool, Vec<bool>, Characters);

fn spelled_v4_host() -> impl Strategy<Value = HostSpelling> {
    (
        1usize..=4,
        prop::collection::vec(radix(), 1..=4),
        any::<bool>(),
        prop::collection::vec(prop::bool::weighted(0.15), 1..8),
        prop_oneof![3 => Just(Characters::Ascii), 1 => Just(Characters::Fullwidth)],
    )
}

/// `address` in brackets, written in one of the textual IPv6 forms.
fn spelled_v6(address: Ipv6Addr, form: u8) -> String {
    let segments = address.segments();
    match form % 4 {
        0 => format!("[{address}]"),
        1 => format!(
            "[{}]",
            segments
                .iter()
                .map(|segment| format!("{segment:04X}"))
                .collect::<Vec<_>>()
                .join(":")
        ),
        2 => {
            // The low 32 bits as a dotted quad.
            let v4 = Ipv4Addr::from(u32::from(segments[6]) << 16 | u32::from(segments[7]));
            let high = segments[..6]
                .iter()
                .map(|segment| format!("{segment:x}"))
                .collect::<Vec<_>>()
                .join(":");
            format!("[{high}:{v4}]")
        }
        _ => format!("[{}]", address.to_string().to_uppercase()),
    }
}

/// Fails unless `url` is refused as a tenant URL, with the field named.
fn assert_url_refused(url: &str, address: IpAddr) {
    let error = match client().check_tenant_url("api_url", url) {
        Ok(parsed) => panic!(
            "{url} was admitted (host {:?}), yet it reaches {address}",
            parsed.host_str()
        ),
        Err(error) => error,
    };
    assert_eq!(error.kind(), ErrorKind::InvalidConfig, "{url}: {error}");
    assert_eq!(error.field(), Some("api_url"), "{url}: {error}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn refused_ipv4_ranges_are_refused(address in private_v4()) {
        let refusal = policy().check(IpAddr::V4(address));
        prop_assert!(refusal.is_err(), "{} was admitted", address);
        prop_assert_eq!(refusal.unwrap_err().address(), IpAddr::V4(address));
    }

    #[test]
    fn public_ipv4_addresses_are_admitted(address in public_v4()) {
        prop_assert!(policy().check(IpAddr::V4(address)).is_ok(), "{} was refused", address);
    }

    #[test]
    fn special_ipv6_ranges_are_refused(address in special_v6()) {
        prop_assert!(policy().check(IpAddr::V6(address)).is_err(), "{} was admitted", address);
    }

    #[test]
    fn public_ipv6_addresses_are_admitted(address in public_v6()) {
        prop_assert!(policy().check(IpAddr::V6(address)).is_ok(), "{} was refused", address);
    }

    #[test]
    fn ipv6_forms_of_an_ipv4_address_follow_it(address in any_v4(), bits in any::<u128>()) {
        for (form, embedded) in embeddings(address, bits) {
            let outcome = policy().check(IpAddr::V6(embedded));
            prop_assert_eq!(
                outcome.is_err(),
                refused_v4(address),
                "the {} form {} of {}: {:?}", form, embedded, address, outcome
            );
        }
    }

    #[test]
    fn teredo_is_refused_when_its_server_or_client_is(
        server in any_v4(),
        client in any_v4(),
        flags_and_port in any::<u32>(),
    ) {
        let address = teredo(server, client, flags_and_port);
        prop_assert_eq!(
            policy().check(IpAddr::V6(address)).is_err(),
            refused_v4(server) || refused_v4(client),
            "Teredo {} (server {}, client {})", address, server, client
        );
    }

    #[test]
    fn an_allowlisted_network_opens_only_itself(
        address in private_v4(),
        prefix in 8u8..=32,
        other in private_v4(),
    ) {
        let network = ipnet_of(address, prefix);
        let policy = AddressPolicy::parse(&network).expect("a CIDR");
        prop_assert!(policy.check(IpAddr::V4(address)).is_ok());
        prop_assert!(policy.check(IpAddr::V6(address.to_ipv6_mapped())).is_ok());
        let inside = in_v4(other, (address.octets(), u32::from(prefix)));
        prop_assert_eq!(policy.check(IpAddr::V4(other)).is_ok(), inside, "{} under {}", other, network);
    }

    #[test]
    fn a_refused_ipv4_address_is_refused_however_the_url_spells_it(
        address in private_v4(),
        (parts, radixes, trailing_dot, percent, characters) in spelled_v4_host(),
        https in any::<bool>(),
    ) {
        let host = spelled_v4(address, parts, &radixes, trailing_dot, &percent, characters);
        let scheme = if https { "https" } else { "http" };
        assert_url_refused(&format!("{scheme}://{host}/api/v3"), IpAddr::V4(address));
        assert_url_refused(&format!("{scheme}://{host}:8443/"), IpAddr::V4(address));
    }

    #[test]
    fn a_public_ipv4_address_is_read_back_however_the_url_spells_it(
        address in public_v4(),
        (parts, radixes, trailing_dot, percent, characters) in spelled_v4_host(),
    ) {
        // The same spellings of a public address parse to that very address, so
        // the refusals above are the policy's and not parse failures.
        let host = spelled_v4(address, parts, &radixes, trailing_dot, &percent, characters);
        let url = format!("https://{host}/api/v3");
        let parsed = client().check_tenant_url("api_url", &url)
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        prop_assert_eq!(parsed.host(), Some(url::Host::Ipv4(address)));
        // Plain http needs an allowlisted address.
        assert_url_refused(&format!("http://{host}/"), IpAddr::V4(address));
    }

    #[test]
    fn a_refused_ipv6_address_is_refused_however_the_url_spells_it(
        address in prop_oneof![
            special_v6(),
            private_v4().prop_map(|v4| v4.to_ipv6_mapped()),
            private_v4().prop_map(|v4| Ipv6Addr::from((0x0064_ff9b << 96) | u128::from(u32::from(v4)))),
        ],
        form in any::<u8>(),
    ) {
        let host = spelled_v6(address, form);
        assert_url_refused(&format!("https://{host}/"), IpAddr::V6(address));
    }

    #[test]
    fn a_public_ipv6_address_is_read_back_however_the_url_spells_it(
        address in public_v6(),
        form in any::<u8>(),
    ) {
        let host = spelled_v6(address, form);
        let url = format!("https://{host}/");
        let parsed = client().check_tenant_url("api_url", &url)
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        prop_assert_eq!(parsed.host(), Some(url::Host::Ipv6(address)));
    }

    #[test]
    fn user_info_never_passes(
        address in any_v4(),
        user in "[a-z0-9.]{1,12}",
        password in proptest::option::of("[0-9]{8,12}"),
    ) {
        // `https://example.com@10.0.0.1/` names 10.0.0.1, not example.com: any user
        // info is refused, whatever the host.
        let userinfo = match &password {
            Some(password) => format!("{user}:{password}"),
            None => user.clone(),
        };
        for url in [
            format!("https://{userinfo}@{address}/"),
            format!("https://example.com@{address}/"),
            format!("https://{address}@example.com/"),
        ] {
            let error = client().check_tenant_url("api_url", &url).expect_err(&url);
            prop_assert_eq!(error.kind(), ErrorKind::InvalidConfig);
            if let Some(password) = &password {
                prop_assert!(!error.to_string().contains(password.as_str()), "{}", error);
            }
        }
    }

    #[test]
    fn host_confusions_resolve_to_the_address_actually_reached(address in private_v4()) {
        // Whatever follows a `#`, `?` or backslash is not the host for an https URL.
        for url in [
            format!("https://{address}#@example.com/"),
            format!("https://{address}?@example.com/"),
            format!("https://{address}\\@example.com/"),
            format!("https://{address}/@example.com/"),
            format!("HTTPS://{address}/"),
            format!("https://[::ffff:{address}]/"),
            format!("  https://{address}/  "),
        ] {
            assert_url_refused(&url, IpAddr::V4(address));
        }
    }
}

/// `address/prefix`, written as `PATCHBAY_ALLOWED_PRIVATE_NETWORKS` takes it.
fn ipnet_of(address: Ipv4Addr, prefix: u8) -> String {
    format!("{address}/{prefix}")
}
