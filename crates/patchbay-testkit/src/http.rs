//! The HTTP client a connector test points at its provider fake.

use std::time::Duration;

use patchbay_http::{HttpClient, HttpConfig, UpstreamOverrides};

/// An HTTP client whose requests to the provider go to a fake, through the same
/// `PATCHBAY_UPSTREAM_OVERRIDES` rewriting an operator would use (`override_spec`
/// is `host=base_url[,…]`), with retries kept but their backoff cut to milliseconds
/// so tests of `429` and `503` handling stay fast.
pub fn client_for_fake(override_spec: &str) -> HttpClient {
    let overrides = UpstreamOverrides::parse(override_spec)
        .unwrap_or_else(|error| panic!("bad override spec `{override_spec}`: {error}"));
    HttpClient::new(HttpConfig {
        overrides,
        base_backoff: Duration::from_millis(5),
        max_backoff: Duration::from_millis(20),
        max_retries: 2,
        ..HttpConfig::default()
    })
    .expect("the test HTTP client builds")
}
