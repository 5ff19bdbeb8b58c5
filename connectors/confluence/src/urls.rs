//! Page URLs: which page a Confluence link points at, without trusting links to
//! other sites.
//!
//! Accepted: full page URLs (`…/spaces/KEY/pages/123/Title`), `viewpage.action?pageId=123`
//! (any URL with a numeric `pageId`), Data Center `/display/KEY/Title` (looked up
//! by title) and Data Center short links `/x/…` (resolved through one authenticated
//! request whose redirect is read, not followed). Cloud short links cannot be
//! resolved through the API, as the guide says.

use patchbay_core::{Error, Result};
use percent_encoding::percent_decode_str;
use url::Url;

use crate::config::ConfluenceConfig;

/// The guide's message for a URL without a page id (a Cloud short link, …).
pub const UNPARSABLE_URL: &str = "Unable to parse Confluence page ID from URL";
/// The guide's remedy for [`UNPARSABLE_URL`].
pub const UNPARSABLE_HINT: &str = "Use full page URL instead of short link (Cloud only)";
/// The guide's message for a page on another site.
pub const FOREIGN_URL: &str = "Confluence page URL does not match configured base URL";
/// The guide's remedy for [`FOREIGN_URL`].
pub const FOREIGN_HINT: &str = "Verify the page is from your connected Confluence instance";

/// The longest authority (`user@host:port`) a page URL may be written with. A host
/// name has at most 253 bytes, so a longer one is not the connection's site; it is
/// refused before parsing, whose IDNA decoding costs time in proportion to its length.
pub const MAX_AUTHORITY_LEN: usize = 320;

/// What a page URL points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageRef {
    /// A page id, read from the URL.
    Id(String),
    /// A Data Center `/display/KEY/Title` URL: the page is found by title.
    Display {
        /// The space key.
        space_key: String,
        /// The page title.
        title: String,
    },
    /// A Data Center short link `/x/<code>`, resolved by its redirect.
    ShortLink(String),
}

impl PageRef {
    /// How the URL was recognised, for the answer of `resolve_page_url`:
    /// `page_url` (an id in the path or `pageId`), `display` or `short_link`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Id(_) => "page_url",
            Self::Display { .. } => "display",
            Self::ShortLink(_) => "short_link",
        }
    }
}

/// A URL that does not parse; its text is not echoed (it may carry a token).
fn invalid() -> Error {
    Error::invalid_input("url", "Invalid Confluence page URL").with_hint(
        "give the page's full address, such as https://company.atlassian.net/wiki/spaces/SPACE/pages/123456/Page+Title",
    )
}

fn unparsable(config: &ConfluenceConfig, short_link: bool) -> Error {
    let base = config
        .base_url
        .as_deref()
        .unwrap_or("https://company.atlassian.net");
    let wiki = if config.is_cloud() { "/wiki" } else { "" };
    let reason = if short_link {
        "Confluence Cloud short links cannot be resolved via the API"
    } else {
        "the URL has no page id"
    };
    Error::invalid_input("url", UNPARSABLE_URL).with_hint(format!(
        "{UNPARSABLE_HINT}: {reason}; use {base}{wiki}/spaces/SPACE/pages/123456/Page+Title or \
         {base}{wiki}/pages/viewpage.action?pageId=123456"
    ))
}

fn foreign(config: &ConfluenceConfig, host: &str) -> Error {
    Error::invalid_input("url", FOREIGN_URL).with_hint(format!(
        "{FOREIGN_HINT}: this connection reads {}, the URL is on {host}",
        config.base_url.as_deref().unwrap_or("another site")
    ))
}

fn decode(segment: &str) -> String {
    percent_decode_str(&segment.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}

fn is_page_id(text: &str) -> bool {
    !text.is_empty() && text.len() <= 20 && text.bytes().all(|byte| byte.is_ascii_digit())
}

/// The path of `url` below the connection's base URL, or the guide's mismatch error
/// when scheme, host (case-insensitive), port or the base's path differ.
fn relative_path(url: &Url, config: &ConfluenceConfig) -> Result<String> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let Some(base) = config
        .base_url
        .as_deref()
        .and_then(|base| Url::parse(base).ok())
    else {
        return Err(foreign(config, &host));
    };
    let same_origin = url.scheme() == base.scheme()
        && url.host_str().map(str::to_ascii_lowercase)
            == base.host_str().map(str::to_ascii_lowercase)
        && url.port_or_known_default() == base.port_or_known_default();
    let base_path = base.path().trim_end_matches('/');
    let path = url.path();
    let under_base = base_path.is_empty()
        || path.eq_ignore_ascii_case(base_path)
        || path
            .get(..base_path.len() + 1)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case(&format!("{base_path}/")));
    if !same_origin || !under_base {
        return Err(foreign(config, &host));
    }
    Ok(path[base_path.len()..].to_owned())
}

/// The authority as written: what follows the scheme's `:` and any slashes, up to
/// the path, query or fragment. Never shorter than the authority the URL parser
/// reads, which also skips backslashes and drops tabs and line breaks.
fn written_authority(text: &str) -> &str {
    let after_scheme = text.split_once(':').map_or(text, |(_, rest)| rest);
    after_scheme
        .trim_start_matches(['/', '\\', '\t', '\n', '\r'])
        .split(['/', '\\', '?', '#'])
        .next()
        .unwrap_or_default()
}

/// Reads a page URL against the connection's site.
pub fn parse_page_url(input: &str, config: &ConfluenceConfig) -> Result<PageRef> {
    let text = input.trim();
    if written_authority(text).len() > MAX_AUTHORITY_LEN {
        return Err(invalid());
    }
    let url = Url::parse(text).map_err(|_| invalid())?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid());
    }
    let mut path = relative_path(&url, config)?;
    if config.is_cloud() {
        if let Some(rest) = path.strip_prefix("/wiki") {
            path = rest.to_owned();
        }
    }
    if let Some((_, id)) = url
        .query_pairs()
        .find(|(name, value)| name.eq_ignore_ascii_case("pageId") && is_page_id(value))
    {
        return Ok(PageRef::Id(id.into_owned()));
    }
    let segments: Vec<&str> = path
        .split('/')
        .filter(|segment| !segment.is_empty())
        .collect();
    // `…/pages/123/Title`, `…/pages/edit-v2/123`, `…/pages/viewinfo.action` (no id).
    for (index, segment) in segments.iter().enumerate() {
        if segment.eq_ignore_ascii_case("pages") {
            let candidates = segments.iter().skip(index + 1).take(2);
            for candidate in candidates {
                if is_page_id(candidate) {
                    return Ok(PageRef::Id((*candidate).to_owned()));
                }
            }
        }
    }
    match segments.as_slice() {
        [x, code] if x.eq_ignore_ascii_case("x") => {
            if config.is_cloud() {
                Err(unparsable(config, true))
            } else {
                Ok(PageRef::ShortLink((*code).to_owned()))
            }
        }
        [display, key, .., title] if display.eq_ignore_ascii_case("display") => {
            Ok(PageRef::Display {
                space_key: decode(key),
                title: decode(title),
            })
        }
        _ => Err(unparsable(config, false)),
    }
}

/// Where a Data Center short link's redirect `location` leads, resolved against
/// the short link's own URL.
pub fn redirect_url(short_link: &Url, location: &str) -> Result<Url> {
    short_link.join(location.trim()).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use patchbay_core::ErrorKind;

    fn cloud() -> ConfluenceConfig {
        let mut config = ConfluenceConfig::cloud(None, Vec::new());
        config.base_url = Some("https://acme.atlassian.net".to_owned());
        config.cloud_id = Some("c1".to_owned());
        config
    }

    fn dc() -> ConfluenceConfig {
        ConfluenceConfig::data_center("https://wiki.example.com/confluence".to_owned())
    }

    #[test]
    fn full_cloud_urls_give_their_page_id() {
        for url in [
            "https://acme.atlassian.net/wiki/spaces/OPS/pages/123456/Checkout+Runbook",
            "https://ACME.atlassian.net/wiki/spaces/OPS/pages/123456",
            "https://acme.atlassian.net/wiki/pages/viewpage.action?pageId=123456",
            "https://acme.atlassian.net/wiki/spaces/OPS/pages/edit-v2/123456",
        ] {
            assert_eq!(
                parse_page_url(url, &cloud()).unwrap(),
                PageRef::Id("123456".into()),
                "{url}"
            );
        }
    }

    #[test]
    fn cloud_short_links_get_the_guide_message_and_fix() {
        let error =
            parse_page_url("https://acme.atlassian.net/wiki/x/ABC123", &cloud()).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::InvalidInput);
        assert_eq!(error.message(), UNPARSABLE_URL);
        let hint = error.hint().unwrap();
        assert!(hint.starts_with(UNPARSABLE_HINT), "{hint}");
        assert!(hint.contains("viewpage.action?pageId=123456"), "{hint}");
    }

    #[test]
    fn data_center_urls_cover_display_short_links_and_context_paths() {
        assert_eq!(
            parse_page_url(
                "https://wiki.example.com/confluence/display/OPS/Checkout+Runbook",
                &dc()
            )
            .unwrap(),
            PageRef::Display {
                space_key: "OPS".into(),
                title: "Checkout Runbook".into()
            }
        );
        assert_eq!(
            parse_page_url("https://wiki.example.com/confluence/x/AbC1", &dc()).unwrap(),
            PageRef::ShortLink("AbC1".into())
        );
        assert_eq!(
            parse_page_url(
                "https://wiki.example.com/confluence/pages/viewpage.action?pageId=42",
                &dc()
            )
            .unwrap(),
            PageRef::Id("42".into())
        );
    }

    #[test]
    fn other_sites_get_the_guide_mismatch_message() {
        for url in [
            "https://evil.atlassian.net/wiki/spaces/OPS/pages/1",
            "http://acme.atlassian.net/wiki/spaces/OPS/pages/1",
            "https://acme.atlassian.net:8443/wiki/spaces/OPS/pages/1",
        ] {
            let error = parse_page_url(url, &cloud()).unwrap_err();
            assert_eq!(error.message(), FOREIGN_URL, "{url}");
            assert!(error.hint().unwrap().starts_with(FOREIGN_HINT));
        }
        let error =
            parse_page_url("https://wiki.example.com/other/display/OPS/X", &dc()).unwrap_err();
        assert_eq!(error.message(), FOREIGN_URL);
    }

    #[test]
    fn nonsense_is_an_invalid_url_and_id_less_pages_are_unparsable() {
        assert_eq!(
            parse_page_url("not a url", &cloud()).unwrap_err().message(),
            "Invalid Confluence page URL"
        );
        assert_eq!(
            parse_page_url(
                "https://acme.atlassian.net/wiki/spaces/OPS/overview",
                &cloud()
            )
            .unwrap_err()
            .message(),
            UNPARSABLE_URL
        );
    }

    #[test]
    fn hosts_longer_than_a_host_name_are_refused_before_parsing() {
        let labels = |bytes: usize| format!("{}example.com", "label12.".repeat(bytes / 8));
        let longest_name = format!("https://{}/wiki/spaces/OPS/pages/1", labels(240));
        assert_eq!(
            parse_page_url(&longest_name, &cloud())
                .unwrap_err()
                .message(),
            FOREIGN_URL,
            "a host name of legal length is read, and is another site"
        );
        for written in [
            format!("https://{}/wiki/spaces/OPS/pages/1", labels(400)),
            format!("https:\\\\{}?pageId=1", labels(400)),
            format!("https:/\t/{}#x", labels(400)),
            format!("https:{}", labels(400)),
        ] {
            let error = parse_page_url(&written, &cloud()).unwrap_err();
            assert_eq!(error.kind(), ErrorKind::InvalidInput);
            assert_eq!(error.field(), Some("url"));
            assert_eq!(
                error.message(),
                "Invalid Confluence page URL",
                "{written:?}"
            );
        }
    }
}
