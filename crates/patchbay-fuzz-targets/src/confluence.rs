//! The Confluence page-URL resolver: which page a link points at, for a Cloud site
//! and for Data Center sites with and without a context path.
//!
//! Whatever it accepts must be on the connection's own site (scheme, host and port
//! of its base URL, below the base's path), and a page id must be the digits the
//! API takes; a refusal is an `invalid_input` naming `url`.

use std::sync::LazyLock;

use patchbay_connector_confluence::config::ConfluenceConfig;
use patchbay_connector_confluence::urls::{parse_page_url, redirect_url, PageRef};
use patchbay_core::ErrorKind;
use url::Url;

/// The sites the target resolves URLs against.
static SITES: LazyLock<Vec<ConfluenceConfig>> = LazyLock::new(|| {
    let mut cloud = ConfluenceConfig::cloud(None, Vec::new());
    cloud.base_url = Some("https://acme.atlassian.net".to_owned());
    cloud.cloud_id = Some("11111111-2222-3333-4444-555555555555".to_owned());
    vec![
        cloud,
        ConfluenceConfig::data_center("https://wiki.example.com/confluence".to_owned()),
        ConfluenceConfig::data_center("http://wiki.example.com:8090".to_owned()),
    ]
});

/// Whether `url` is on `site`'s origin and below its base path.
fn on_site(url: &Url, site: &ConfluenceConfig) -> bool {
    let base = Url::parse(site.base_url.as_deref().expect("every site has a base URL"))
        .expect("the sites' base URLs parse");
    let base_path = base.path().trim_end_matches('/').to_ascii_lowercase();
    url.scheme() == base.scheme()
        && url.host_str().map(str::to_ascii_lowercase) == base.host_str().map(str::to_owned)
        && url.port_or_known_default() == base.port_or_known_default()
        && url.path().to_ascii_lowercase().starts_with(&base_path)
}

/// The target's body: the input as a page URL, on every site.
pub fn confluence_page_url(data: &[u8]) {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    for site in SITES.iter() {
        match parse_page_url(input, site) {
            Ok(page) => {
                let url = Url::parse(input.trim()).expect("an accepted page URL parses");
                assert!(
                    on_site(&url, site),
                    "accepted {input:?}, which is not on {:?}",
                    site.base_url
                );
                match &page {
                    PageRef::Id(id) => assert!(
                        !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()),
                        "page id {id:?} from {input:?}"
                    ),
                    PageRef::ShortLink(code) => {
                        assert!(!site.is_cloud(), "a Cloud short link was resolved");
                        assert!(!code.is_empty(), "an empty short-link code");
                        // The redirect is read against the short link's own URL.
                        let _ = redirect_url(&url, input);
                    }
                    PageRef::Display { .. } => {}
                }
            }
            Err(error) => {
                assert_eq!(error.kind(), ErrorKind::InvalidInput, "{error}");
                assert_eq!(error.field(), Some("url"), "{error}");
            }
        }
    }
}
