//! Requests to the GitHub REST API and the mapping of its answers to errors.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use patchbay_core::{Error, ErrorKind, Result, SecretString};
use patchbay_http::{parse_retry_after, HttpClient, Method, Response};
use serde_json::Value;
use url::Url;

use crate::config::{GitHubConfig, TokenKind, DEFAULT_API_URL};
use crate::CONNECTOR_ID;

/// The media type GitHub recommends for REST calls.
pub const ACCEPT: &str = "application/vnd.github+json";
/// The REST API version every request pins.
pub const API_VERSION: &str = "2022-11-28";

/// What to do about a rejected token.
pub const TOKEN_HINT: &str = "regenerate the client secret / token and reconnect GitHub";

/// Longest piece of GitHub's own error text kept in a message.
const MESSAGE_LIMIT: usize = 300;

/// One answer from GitHub: the JSON body and the headers callers use.
#[derive(Debug, Clone)]
pub struct GitHubResponse {
    /// The JSON body (`null` when empty).
    pub body: Value,
    /// The `page` of the `Link: <...>; rel="next"` URL, if any, as GitHub wrote it.
    pub next_page: Option<String>,
    /// `X-RateLimit-Remaining`.
    pub rate_limit_remaining: Option<u64>,
    /// `X-OAuth-Scopes`; absent for fine-grained personal access tokens.
    pub oauth_scopes: Option<String>,
}

/// Talks to one GitHub API base with one token.
pub struct GitHubClient<'a> {
    http: &'a HttpClient,
    api_url: &'a str,
    token: &'a SecretString,
    /// Whether `api_url` is a tenant's Enterprise Server rather than github.com.
    tenant_url: bool,
}

impl<'a> GitHubClient<'a> {
    /// A client for the connection's API base and token. OAuth tokens always go to
    /// github.com; a personal access token goes to the stored base, which is
    /// treated as a tenant URL unless it is github.com.
    pub fn new(http: &'a HttpClient, config: &'a GitHubConfig, token: &'a SecretString) -> Self {
        let api_url = match config.auth_kind {
            TokenKind::Oauth => DEFAULT_API_URL,
            TokenKind::Pat => config.api_url.trim_end_matches('/'),
        };
        Self {
            http,
            api_url,
            token,
            tenant_url: api_url != DEFAULT_API_URL,
        }
    }

    /// `GET <api_url>/<segments>?query`; each segment is percent-encoded.
    pub async fn get(
        &self,
        operation: &'static str,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<GitHubResponse> {
        let url = api_url_with(self.api_url, segments)?;
        let path = display_path(segments);
        let mut request = self
            .http
            .request(Method::GET, url.as_str())
            .connector(CONNECTOR_ID)
            .operation(operation)
            .header("Accept", ACCEPT)
            .header("X-GitHub-Api-Version", API_VERSION)
            .bearer_auth(self.token);
        if !query.is_empty() {
            request = request.query(query);
        }
        if self.tenant_url {
            request = request.tenant_url("api_url");
        }
        let response = map_status(request.send().await?, &path)?;
        let body = if response.body.is_empty() {
            Value::Null
        } else {
            response.json()?
        };
        Ok(GitHubResponse {
            body,
            next_page: response.header("link").and_then(next_page),
            rate_limit_remaining: rate_limit_remaining(&response),
            oauth_scopes: response.header("x-oauth-scopes").map(str::to_owned),
        })
    }
}

/// `base` followed by percent-encoded `segments`.
pub(crate) fn api_url_with(base: &str, segments: &[&str]) -> Result<Url> {
    let mut url = Url::parse(base).map_err(|error| {
        Error::invalid_config(
            "api_url",
            format!("stored GitHub API URL is invalid: {error}"),
        )
        .with_connector(CONNECTOR_ID)
        .with_hint("reconnect GitHub with a valid api_url")
    })?;
    url.path_segments_mut()
        .map_err(|()| {
            Error::invalid_config("api_url", "stored GitHub API URL cannot take a path")
                .with_connector(CONNECTOR_ID)
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

fn display_path(segments: &[&str]) -> String {
    format!("/{}", segments.join("/"))
}

fn rate_limit_remaining(response: &Response) -> Option<u64> {
    response
        .header("x-ratelimit-remaining")
        .and_then(|value| value.trim().parse().ok())
}

/// Maps a GitHub answer: 401 is "Bad credentials", 403 with no requests left (or
/// a `Retry-After`, GitHub's secondary limit) and 429 are rate limiting, other 403s
/// are missing permissions, 404 names the path.
pub(crate) fn map_status(response: Response, path: &str) -> Result<Response> {
    if response.status.is_success() {
        return Ok(response);
    }
    let status = response.status.as_u16();
    let github_message = github_message(&response);
    let error = match status {
        401 => Error::new(
            ErrorKind::AuthFailed,
            "Bad credentials: GitHub rejected the token",
        )
        .with_hint(TOKEN_HINT),
        429 => rate_limited(&response, path),
        403 if rate_limit_remaining(&response) == Some(0)
            || response.header("retry-after").is_some() =>
        {
            rate_limited(&response, path)
        }
        403 => Error::new(
            ErrorKind::PermissionDenied,
            format!("GitHub returned 403 for {path}: {github_message}"),
        )
        .with_hint(
            "the token lacks a scope or permission for this resource: OAuth tokens need `repo` \
             (and `read:org` for organisation repositories); fine-grained tokens need read access \
             to the repository's Contents, Pull requests, Actions or Deployments",
        ),
        404 => Error::not_found(format!(
            "GitHub returned 404 for {path} (the repository is private to this token or the path is wrong)"
        ))
        .with_hint("check the owner, repository and path, and that the token can see the repository"),
        _ => return response.with_connector(CONNECTOR_ID).error_for_status(),
    };
    Err(error
        .with_connector(CONNECTOR_ID)
        .with_provider_status(status))
}

fn rate_limited(response: &Response, path: &str) -> Error {
    let now = SystemTime::now();
    let wait = parse_retry_after(&response.headers, now).or_else(|| {
        let reset: u64 = response.header("x-ratelimit-reset")?.trim().parse().ok()?;
        let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
        Some(Duration::from_secs(reset.saturating_sub(now)))
    });
    let resource = response
        .header("x-ratelimit-resource")
        .map(|resource| format!(" (`{resource}` limit)"))
        .unwrap_or_default();
    let error = Error::new(
        ErrorKind::RateLimited,
        format!("GitHub rate limit exceeded for {path}{resource}"),
    )
    .with_hint(
        "wait until the limit resets and try again; code search allows far fewer requests per minute than other calls",
    );
    match wait {
        Some(wait) => error.with_retry_after(wait),
        None => error,
    }
}

/// GitHub's `message` field, cut short; GitHub never echoes tokens in it.
fn github_message(response: &Response) -> String {
    let text = response
        .json::<Value>()
        .ok()
        .and_then(|body| {
            body.get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .unwrap_or_else(|| response.status.canonical_reason().unwrap_or("").to_owned());
    match text.char_indices().nth(MESSAGE_LIMIT) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

/// The `page` of the `rel="next"` URL in a `Link` header: the provider cursor of
/// the next page.
///
/// Hand-written: GitHub's `Link` format is fixed and only `rel="next"` is read, so
/// a general RFC 8288 parser would add a dependency for a few lines.
pub fn next_page(link: &str) -> Option<String> {
    link.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let is_next = params
            .split(';')
            .any(|param| param.trim().replace(' ', "") == "rel=\"next\"");
        if !is_next {
            return None;
        }
        let url = Url::parse(target.trim().trim_start_matches('<').trim_end_matches('>')).ok()?;
        url.query_pairs()
            .find(|(key, _)| key == "page")
            .map(|(_, value)| value.into_owned())
            .filter(|page| !page.is_empty())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_page_reads_only_the_next_relation() {
        let link = "<https://api.github.com/user/repos?per_page=2&page=3>; rel=\"next\", \
                    <https://api.github.com/user/repos?per_page=2&page=9>; rel=\"last\"";
        assert_eq!(next_page(link).as_deref(), Some("3"));
        let last_only = "<https://api.github.com/user/repos?page=1>; rel=\"prev\"";
        assert_eq!(next_page(last_only), None);
    }

    #[test]
    fn segments_are_encoded_under_the_base_path() {
        let url = api_url_with(
            "https://ghe.example.com/api/v3",
            &["repos", "o", "r", "contents", "dir with space", "a#b.md"],
        )
        .unwrap();
        assert_eq!(
            url.as_str(),
            "https://ghe.example.com/api/v3/repos/o/r/contents/dir%20with%20space/a%23b.md"
        );
        let url = api_url_with("https://api.github.com", &["user"]).unwrap();
        assert_eq!(url.as_str(), "https://api.github.com/user");
    }
}
