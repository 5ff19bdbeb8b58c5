//! Which addresses requests to tenant-supplied URLs may reach (the SSRF policy).
//!
//! A base URL a tenant types (a GitHub Enterprise Server, a self-hosted Grafana)
//! must not lead into the platform's own network: loopback, private ranges,
//! link-local and cloud metadata endpoints are refused, in IPv4 and IPv6 and in
//! the IPv6 forms that embed an IPv4 address. Host names are checked after DNS
//! resolution by [`CheckedResolver`], which hands the connector only addresses
//! it checked, so a name cannot be re-pointed between the check and the connect.
//! Operators open private networks with `PATCHBAY_ALLOWED_PRIVATE_NETWORKS`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use patchbay_core::{Error, Result};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// The variable holding the networks tenant URLs may reach despite the policy:
/// comma-separated CIDRs or single addresses.
pub const ALLOWED_PRIVATE_NETWORKS_VAR: &str = "PATCHBAY_ALLOWED_PRIVATE_NETWORKS";

const ALLOWLIST_HINT: &str = "write PATCHBAY_ALLOWED_PRIVATE_NETWORKS as comma-separated CIDRs \
     or addresses, e.g. 10.20.0.0/16,192.168.5.10,fd12:3456::/48";

/// The operator's allowlist of networks that requests to tenant URLs may reach
/// even though the policy would refuse them; empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// Parses comma-separated CIDRs (`10.0.0.0/8`) or addresses (`10.0.0.5`, a
    /// single host); an empty string allows nothing extra.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut allowed = Vec::new();
        for entry in spec
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
        {
            let network = entry
                .parse::<IpNet>()
                .map(|network| network.trunc())
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    Error::invalid_config(
                        ALLOWED_PRIVATE_NETWORKS_VAR,
                        format!(
                            "{ALLOWED_PRIVATE_NETWORKS_VAR} entry `{entry}` is not a CIDR \
                             network or an IP address"
                        ),
                    )
                    .with_hint(ALLOWLIST_HINT)
                })?;
            allowed.push(network);
        }
        Ok(Self { allowed })
    }

    /// The allowed networks.
    pub fn networks(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether `ip` is in an allowed network. An IPv4-mapped `ip` is the IPv4
    /// address it stands for, so only an entry holding that IPv4 address admits it:
    /// an IPv6 entry such as `::/32` must not open every IPv4 address in mapped form.
    pub fn is_allowlisted(&self, ip: IpAddr) -> bool {
        let canonical = ip.to_canonical();
        self.allowed
            .iter()
            .any(|network| network.contains(&canonical))
    }

    /// `Ok` when a request to a tenant URL may connect to `ip`: it is allowlisted
    /// or breaks none of the rules.
    pub fn check(&self, ip: IpAddr) -> std::result::Result<(), BlockedAddress> {
        if self.is_allowlisted(ip) {
            return Ok(());
        }
        match blocked(ip) {
            Some(blocked) => Err(blocked),
            None => Ok(()),
        }
    }
}

/// An address the policy refuses, with the rule it breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockedAddress {
    address: IpAddr,
    rule: Rule,
    embedded: Option<(Embedding, Ipv4Addr)>,
}

impl BlockedAddress {
    /// The refused address.
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// What the address is, e.g. "a private address (RFC 1918)" or "an
    /// IPv4-mapped form of 10.0.0.1, a private address (RFC 1918)".
    pub fn reason(&self) -> String {
        match self.embedded {
            Some((embedding, ipv4)) => {
                format!("{} form of {ipv4}, {}", embedding.name(), self.rule.name())
            }
            None => self.rule.name().to_owned(),
        }
    }

    /// The allowlist entry that would admit exactly this address (`10.0.0.5/32`);
    /// for an IPv4-mapped address, its IPv4 address, which is what the allowlist reads.
    pub fn allow_entry(&self) -> String {
        host_network(self.address.to_canonical())
    }
}

impl fmt::Display for BlockedAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is {}", self.address, self.reason())
    }
}

fn host_network(address: IpAddr) -> String {
    match address {
        IpAddr::V4(_) => format!("{address}/32"),
        IpAddr::V6(_) => format!("{address}/128"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Unspecified,
    ThisNetwork,
    Loopback,
    Private,
    Shared,
    LinkLocal,
    CloudMetadata,
    ProtocolAssignment,
    Benchmarking,
    Documentation,
    Multicast,
    Broadcast,
    Reserved,
    UniqueLocal,
    SiteLocal,
    DiscardOnly,
    LocalNat64,
    SegmentRouting,
}

impl Rule {
    fn name(self) -> &'static str {
        match self {
            Self::Unspecified => "an unspecified address",
            Self::ThisNetwork => "a \"this network\" address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address (RFC 1918)",
            Self::Shared => "a shared address (RFC 6598, carrier-grade NAT)",
            Self::LinkLocal => "a link-local address",
            Self::CloudMetadata => "a cloud metadata address",
            Self::ProtocolAssignment => "an IETF protocol assignment address (192.0.0.0/24)",
            Self::Benchmarking => "a benchmarking address (RFC 2544)",
            Self::Documentation => "a documentation address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Reserved => "a reserved address",
            Self::UniqueLocal => "a unique local address (RFC 4193)",
            Self::SiteLocal => "a site-local address (deprecated)",
            Self::DiscardOnly => "a discard-only address (RFC 6666)",
            Self::LocalNat64 => "a local-use NAT64 address (RFC 8215)",
            Self::SegmentRouting => "an SRv6 segment identifier (RFC 9602)",
        }
    }
}

/// IPv6 forms that carry an IPv4 address and may reach it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Embedding {
    Mapped,
    Translated,
    Compatible,
    Nat64,
    SixToFour,
    Teredo,
}

impl Embedding {
    fn name(self) -> &'static str {
        match self {
            Self::Mapped => "an IPv4-mapped",
            Self::Translated => "an IPv4-translated",
            Self::Compatible => "an IPv4-compatible",
            Self::Nat64 => "a NAT64",
            Self::SixToFour => "a 6to4",
            Self::Teredo => "a Teredo",
        }
    }
}

/// Metadata services: AWS (IMDS, ECS, EKS pod identity), GCP, Azure (IMDS is
/// 169.254.169.254; the WireServer is public), Alibaba Cloud, Oracle Cloud.
const METADATA_V4: &[Ipv4Addr] = &[
    Ipv4Addr::new(169, 254, 169, 254),
    Ipv4Addr::new(169, 254, 170, 2),
    Ipv4Addr::new(169, 254, 170, 23),
    Ipv4Addr::new(168, 63, 129, 16),
    Ipv4Addr::new(100, 100, 100, 200),
    Ipv4Addr::new(192, 0, 0, 192),
];

/// IPv6 metadata services: AWS IMDS and EKS pod identity, GCP.
const METADATA_V6: &[Ipv6Addr] = &[
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
    Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
    Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254),
];

/// The rule `ip` breaks, ignoring any allowlist; `None` for a public address.
fn blocked(ip: IpAddr) -> Option<BlockedAddress> {
    match ip {
        IpAddr::V4(ipv4) => ipv4_rule(ipv4).map(|rule| BlockedAddress {
            address: ip,
            rule,
            embedded: None,
        }),
        IpAddr::V6(ipv6) => {
            if let Some(rule) = ipv6_rule(ipv6) {
                return Some(BlockedAddress {
                    address: ip,
                    rule,
                    embedded: None,
                });
            }
            embedded_ipv4(ipv6)
                .into_iter()
                .find_map(|(embedding, ipv4)| {
                    ipv4_rule(ipv4).map(|rule| BlockedAddress {
                        address: ip,
                        rule,
                        embedded: Some((embedding, ipv4)),
                    })
                })
        }
    }
}

fn in_v4(ip: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    u32::from(ip) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn ipv4_rule(ip: Ipv4Addr) -> Option<Rule> {
    let rule = if METADATA_V4.contains(&ip) {
        Rule::CloudMetadata
    } else if ip.is_unspecified() {
        Rule::Unspecified
    } else if in_v4(ip, [0, 0, 0, 0], 8) {
        Rule::ThisNetwork
    } else if ip.is_loopback() {
        Rule::Loopback
    } else if ip.is_private() {
        Rule::Private
    } else if in_v4(ip, [100, 64, 0, 0], 10) {
        Rule::Shared
    } else if ip.is_link_local() {
        Rule::LinkLocal
    } else if in_v4(ip, [192, 0, 0, 0], 24) {
        Rule::ProtocolAssignment
    } else if in_v4(ip, [198, 18, 0, 0], 15) {
        Rule::Benchmarking
    } else if ip.is_documentation() {
        Rule::Documentation
    } else if ip.is_multicast() {
        Rule::Multicast
    } else if ip.is_broadcast() {
        Rule::Broadcast
    } else if in_v4(ip, [240, 0, 0, 0], 4) || in_v4(ip, [192, 88, 99, 0], 24) {
        Rule::Reserved
    } else {
        return None;
    };
    Some(rule)
}

fn ipv6_rule(ip: Ipv6Addr) -> Option<Rule> {
    let s = ip.segments();
    let rule = if METADATA_V6.contains(&ip) {
        Rule::CloudMetadata
    } else if ip.is_unspecified() {
        Rule::Unspecified
    } else if ip.is_loopback() {
        Rule::Loopback
    } else if s[0] & 0xfe00 == 0xfc00 {
        Rule::UniqueLocal
    } else if s[0] & 0xffc0 == 0xfe80 {
        Rule::LinkLocal
    } else if s[0] & 0xffc0 == 0xfec0 {
        Rule::SiteLocal
    } else if s[0] & 0xff00 == 0xff00 {
        Rule::Multicast
    } else if s[..4] == [0x100, 0, 0, 0] {
        Rule::DiscardOnly
    } else if s[..3] == [0x64, 0xff9b, 1] {
        Rule::LocalNat64
    } else if s[..2] == [0x2001, 0xdb8] || (s[0] == 0x3fff && s[1] < 0x1000) {
        // 2001:db8::/32 and 3fff::/20 (RFC 9637).
        Rule::Documentation
    } else if s[..3] == [0x2001, 0x2, 0] {
        // 2001:2::/48 (RFC 5180), like 198.18.0.0/15.
        Rule::Benchmarking
    } else if s[0] == 0x5f00 {
        Rule::SegmentRouting
    } else {
        return None;
    };
    Some(rule)
}

/// The IPv4 addresses an IPv6 address stands for or tunnels to.
fn embedded_ipv4(ip: Ipv6Addr) -> Vec<(Embedding, Ipv4Addr)> {
    let s = ip.segments();
    let join = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    if let Some(ipv4) = ip.to_ipv4_mapped() {
        return vec![(Embedding::Mapped, ipv4)];
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return vec![(Embedding::Translated, join(s[6], s[7]))];
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return vec![(Embedding::Compatible, join(s[6], s[7]))];
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return vec![(Embedding::Nat64, join(s[6], s[7]))];
    }
    if s[0] == 0x2002 {
        return vec![(Embedding::SixToFour, join(s[1], s[2]))];
    }
    if s[..2] == [0x2001, 0] {
        // Teredo: the server in bits 32-63, the client's address inverted in the last 32.
        return vec![
            (Embedding::Teredo, join(!s[6], !s[7])),
            (Embedding::Teredo, join(s[2], s[3])),
        ];
    }
    Vec::new()
}

/// Why a request to a tenant URL was not sent; carried through reqwest's error
/// chain when the resolver refuses, so it can be told apart from network failures.
#[derive(Clone, Debug)]
pub(crate) struct Refusal {
    /// The host name that resolved to the address, when it was not a literal.
    pub(crate) resolved_from: Option<String>,
    pub(crate) kind: RefusalKind,
}

#[derive(Clone, Debug)]
pub(crate) enum RefusalKind {
    Blocked(BlockedAddress),
    /// Plain http to an address that is not allowlisted (`None`: no host checked yet).
    PlainHttp(Option<IpAddr>),
}

impl Refusal {
    /// The sentence after "refused <url>: ".
    pub(crate) fn explanation(&self) -> String {
        match &self.kind {
            RefusalKind::Blocked(blocked) => {
                let what = match &self.resolved_from {
                    Some(host) => format!(
                        "{host} resolves to {}, {}",
                        blocked.address(),
                        blocked.reason()
                    ),
                    None => blocked.to_string(),
                };
                format!(
                    "{what}; allow it with {ALLOWED_PRIVATE_NETWORKS_VAR}={}",
                    blocked.allow_entry()
                )
            }
            RefusalKind::PlainHttp(address) => {
                let which = match (address, &self.resolved_from) {
                    (Some(address), Some(host)) => {
                        format!("{host} resolves to {address}, which is not")
                    }
                    (Some(address), None) => format!("{address} is not one"),
                    (None, _) => "none are allowed".to_owned(),
                };
                format!(
                    "plain http is only allowed to addresses in {ALLOWED_PRIVATE_NETWORKS_VAR}, \
                     and {which}; use https"
                )
            }
        }
    }

    /// The error for people: names the URL (without its query), the host and
    /// the rule, and the field the URL came from.
    pub(crate) fn into_error(self, field: &str, shown_url: &str) -> Error {
        Error::invalid_config(
            field,
            format!("refused {shown_url}: {}", self.explanation()),
        )
        .with_hint(format!(
            "use the server's public https address, or ask the operator to allow its network \
             in {ALLOWED_PRIVATE_NETWORKS_VAR}"
        ))
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.explanation())
    }
}

impl std::error::Error for Refusal {}

/// Checks an address a tenant URL leads to; plain http needs an allowlisted address.
pub(crate) fn check_address(
    policy: &AddressPolicy,
    address: IpAddr,
    plain_http: bool,
    resolved_from: Option<&str>,
) -> std::result::Result<(), Refusal> {
    let refusal = |kind| Refusal {
        resolved_from: resolved_from.map(str::to_owned),
        kind,
    };
    policy
        .check(address)
        .map_err(|blocked| refusal(RefusalKind::Blocked(blocked)))?;
    if plain_http && !policy.is_allowlisted(address) {
        return Err(refusal(RefusalKind::PlainHttp(Some(address))));
    }
    Ok(())
}

/// Keeps the resolved addresses the policy admits; when none is left, the first
/// refusal.
pub(crate) fn admit(
    policy: &AddressPolicy,
    plain_http: bool,
    host: &str,
    resolved: impl IntoIterator<Item = SocketAddr>,
) -> std::result::Result<Vec<SocketAddr>, Refusal> {
    let mut admitted = Vec::new();
    let mut first_refusal = None;
    for address in resolved {
        match check_address(policy, address.ip(), plain_http, Some(host)) {
            Ok(()) => admitted.push(address),
            Err(refusal) => {
                first_refusal.get_or_insert(refusal);
            }
        }
    }
    match first_refusal {
        Some(refusal) if admitted.is_empty() => Err(refusal),
        _ => Ok(admitted),
    }
}

/// The DNS resolver of the tenant-URL clients: resolves with the system resolver
/// and returns only addresses the policy admits, so the connection goes to an
/// address that was checked.
pub(crate) struct CheckedResolver {
    pub(crate) policy: Arc<AddressPolicy>,
    pub(crate) plain_http: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let plain_http = self.plain_http;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let admitted = admit(&policy, plain_http, &host, resolved)?;
            if admitted.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("{host} resolves to no address"),
                )
                .into());
            }
            Ok(Box::new(admitted.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(text: &str) -> SocketAddr {
        SocketAddr::new(text.parse().unwrap(), 0)
    }

    #[test]
    fn resolved_addresses_are_filtered_and_refused_when_none_is_left() {
        let policy = AddressPolicy::parse("127.0.0.1/32").unwrap();
        let admitted = admit(
            &policy,
            true,
            "localhost",
            [socket("::1"), socket("127.0.0.1")],
        )
        .unwrap();
        assert_eq!(admitted, [socket("127.0.0.1")]);

        let refusal = admit(
            &AddressPolicy::default(),
            false,
            "localhost",
            [socket("127.0.0.1"), socket("::1")],
        )
        .unwrap_err();
        assert_eq!(
            refusal.explanation(),
            "localhost resolves to 127.0.0.1, a loopback address; \
             allow it with PATCHBAY_ALLOWED_PRIVATE_NETWORKS=127.0.0.1/32"
        );

        let refusal = admit(
            &AddressPolicy::default(),
            true,
            "ghe.example.com",
            [socket("140.82.112.6")],
        )
        .unwrap_err();
        assert_eq!(
            refusal.explanation(),
            "plain http is only allowed to addresses in PATCHBAY_ALLOWED_PRIVATE_NETWORKS, \
             and ghe.example.com resolves to 140.82.112.6, which is not; use https"
        );
    }

    #[test]
    fn an_ipv6_entry_does_not_admit_ipv4_addresses_in_mapped_form() {
        // `::/32` holds ::ffff:0:0/96: it once admitted every IPv4 address written
        // in mapped form, the metadata endpoint and loopback among them.
        let policy = AddressPolicy::parse("::/32").unwrap();
        assert!(policy.check("::1".parse().unwrap()).is_ok());
        for text in [
            "::ffff:169.254.169.254",
            "::ffff:127.0.0.1",
            "::ffff:252.0.14.194",
        ] {
            let address: IpAddr = text.parse().unwrap();
            let blocked = policy.check(address).unwrap_err();
            assert_eq!(
                blocked.allow_entry(),
                format!("{}/32", address.to_canonical())
            );
            let opened = AddressPolicy::parse(&blocked.allow_entry()).unwrap();
            assert!(opened.check(address).is_ok(), "{text}");
        }
    }

    #[tokio::test]
    async fn the_resolver_refuses_a_name_for_a_loopback_address() {
        let resolver = CheckedResolver {
            policy: Arc::new(AddressPolicy::default()),
            plain_http: false,
        };
        let error = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(addresses) => panic!("admitted {:?}", addresses.collect::<Vec<_>>()),
            Err(error) => error,
        };
        let refusal = error.downcast_ref::<Refusal>().expect("a policy refusal");
        assert!(
            matches!(&refusal.kind, RefusalKind::Blocked(blocked) if blocked.address().is_loopback()),
            "{refusal:?}"
        );
        assert_eq!(refusal.resolved_from.as_deref(), Some("localhost"));
    }
}
