//! The bodies of Patchbay's fuzz targets, one function per target.
//!
//! libFuzzer runs them from `fuzz/` (`cargo xtask fuzz`), where each
//! `fuzz_targets/<name>.rs` calls the function of [`TARGETS`] with that name, and
//! this crate's tests replay every committed seed and regression on stable Rust.
//! Each body checks what the code under test promises, beyond not panicking:
//! refusals of the right kind naming their field, no verified delivery without
//! the provider's signature, no secret in stored settings, and the like.
#![deny(missing_docs)]

pub mod confluence;
pub mod connect_form;
pub mod cursor;
pub mod delivery;
pub mod harness;
pub mod signatures;
pub mod ssrf;
pub mod webhooks;

/// One fuzz target: its name (of its `fuzz/fuzz_targets/<name>.rs`, its
/// `fuzz/corpus/<name>/` seeds and its `fuzz/regressions/<name>/` crashes),
/// what it covers, and its body.
#[derive(Clone, Copy)]
pub struct Target {
    /// The target's name.
    pub name: &'static str,
    /// What it feeds the input to, for people.
    pub covers: &'static str,
    /// The body libFuzzer calls with each input.
    pub run: fn(&[u8]),
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.name).finish()
    }
}

/// Every fuzz target.
pub const TARGETS: &[Target] = &[
    Target {
        name: "webhook_github",
        covers: "GitHub webhook verify (X-Hub-Signature-256) and normalize",
        run: webhooks::webhook_github,
    },
    Target {
        name: "webhook_pagerduty",
        covers: "PagerDuty webhook verify (X-PagerDuty-Signature) and normalize",
        run: webhooks::webhook_pagerduty,
    },
    Target {
        name: "webhook_slack",
        covers: "Slack Events API verify (v0 signature, timestamp window), route and normalize",
        run: webhooks::webhook_slack,
    },
    Target {
        name: "webhook_grafana",
        covers: "Grafana contact-point verify (HMAC, HMAC with timestamp, bearer) and normalize",
        run: webhooks::webhook_grafana,
    },
    Target {
        name: "webhook_datadog",
        covers: "Datadog token check and normalize (JSON and form templates)",
        run: webhooks::webhook_datadog,
    },
    Target {
        name: "webhook_netdata",
        covers: "Netdata bearer-token check and normalize (payload versions 1 and 2)",
        run: webhooks::webhook_netdata,
    },
    Target {
        name: "signature_github",
        covers: "X-Hub-Signature-256 parsing against GitHub's published example",
        run: signatures::signature_github,
    },
    Target {
        name: "signature_pagerduty",
        covers: "X-PagerDuty-Signature v1= lists against go-pagerduty's example",
        run: signatures::signature_pagerduty,
    },
    Target {
        name: "signature_slack",
        covers: "X-Slack-Request-Timestamp and X-Slack-Signature against Slack's example",
        run: signatures::signature_slack,
    },
    Target {
        name: "signature_grafana",
        covers: "Grafana's hex signature and signed timestamp",
        run: signatures::signature_grafana,
    },
    Target {
        name: "confluence_page_url",
        covers: "Confluence page-URL resolution (Cloud and Data Center sites)",
        run: confluence::confluence_page_url,
    },
    Target {
        name: "tenant_url",
        covers: "HttpClient::check_tenant_url, without and with an allowlist",
        run: ssrf::tenant_url,
    },
    Target {
        name: "ssrf_address",
        covers: "the SSRF address rules, IPv6 forms of IPv4 addresses, allowlist parsing",
        run: ssrf::ssrf_address,
    },
    Target {
        name: "operation_cursor",
        covers: "opening and sealing paged operations' cursors",
        run: cursor::operation_cursor,
    },
    Target {
        name: "connect_form",
        covers: "every connector's connect-form parsing (authenticate with form fields)",
        run: connect_form::connect_form,
    },
];

/// The target named `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|target| target.name == name)
}
