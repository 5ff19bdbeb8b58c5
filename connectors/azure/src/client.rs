//! Tokens and requests: client-credentials tokens from the Microsoft identity
//! platform (one per audience, cached until five minutes before expiry), and
//! Resource Manager, Graph and Log Analytics calls through `patchbay-http`, with
//! AADSTS and ARM errors mapped to the setup guide's messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeDelta, Utc};
use patchbay_core::{Error, ErrorKind, OAuthClientCredentials, Result, SecretString};
use patchbay_http::{parse_retry_after, HttpClient, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

use crate::config::Endpoints;
use crate::CONNECTOR_ID;

/// The guide's message for rejected service-principal credentials.
pub const INVALID_CREDENTIALS: &str = "Invalid Azure credentials";
/// The guide's message for a reply URL that differs from the registration.
pub const REPLY_URL_MISMATCH: &str = "AADSTS50011: Reply URL mismatch";
/// The guide's message for missing admin consent or a missing role.
pub const INSUFFICIENT_PRIVILEGES: &str = "Insufficient privileges";
/// The reference system's message for any other token failure.
pub const TOKEN_FAILED: &str = "Failed to get Azure token";
/// The hint for a missing role assignment.
pub const ROLE_HINT: &str =
    "assign the Reader role (or Contributor) to the app on the subscription \
     (Subscriptions > Access control (IAM) > Add role assignment); it can take 1–2 minutes for \
     Azure permissions to propagate";
/// The hint for missing admin consent.
pub const CONSENT_HINT: &str = "Grant admin consent for API permissions (App registrations > API \
     permissions > Azure Service Management > user_impersonation > Grant admin consent)";
/// Refresh cached tokens when this little time is left.
pub const TOKEN_SKEW: TimeDelta = TimeDelta::seconds(300);

/// The API a token is for; each needs its own token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Audience {
    /// Azure Resource Manager.
    Arm,
    /// Microsoft Graph.
    Graph,
    /// Log Analytics.
    LogAnalytics,
}

impl Audience {
    /// The `.default` scope that asks for a client-credentials token for this API.
    pub fn scope(self) -> &'static str {
        match self {
            Self::Arm => "https://management.azure.com/.default",
            Self::Graph => "https://graph.microsoft.com/.default",
            Self::LogAnalytics => "https://api.loganalytics.io/.default",
        }
    }

    /// The API's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Arm => "Azure Resource Manager",
            Self::Graph => "Microsoft Graph",
            Self::LogAnalytics => "Log Analytics",
        }
    }
}

/// Client-credentials tokens, one per principal and audience, kept in this process
/// only. Keys hold a SHA-256 of the secret, so a changed secret never reuses a token.
#[derive(Debug, Default, Clone)]
pub struct TokenCache {
    tokens: Arc<Mutex<HashMap<String, CachedToken>>>,
}

/// A cached token and when it expires.
type CachedToken = (SecretString, DateTime<Utc>);

impl TokenCache {
    fn get(&self, key: &str, now: DateTime<Utc>) -> Option<SecretString> {
        let tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        tokens
            .get(key)
            .filter(|(_, expires_at)| *expires_at - TOKEN_SKEW > now)
            .map(|(token, _)| token.clone())
    }

    fn put(&self, key: String, token: SecretString, expires_at: DateTime<Utc>) {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        tokens.retain(|_, (_, at)| *at > Utc::now());
        tokens.insert(key, (token, expires_at));
    }

    fn evict(&self, key: &str) {
        let mut tokens = self
            .tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        tokens.remove(key);
    }

    /// How many tokens are cached (for tests).
    pub fn len(&self) -> usize {
        self.tokens
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .len()
    }

    /// Whether no token is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A service principal: tenant, application id and client secret.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The tenant (checked GUID or domain).
    pub tenant: String,
    /// The application (client) id.
    pub client_id: String,
    /// The client secret.
    pub secret: SecretString,
}

/// How requests are authorised.
#[derive(Debug, Clone)]
pub enum Auth {
    /// Client-credentials tokens of a service principal, per audience.
    Principal(Principal),
    /// A delegated ARM access token from the OAuth flow (refreshed by the host).
    Delegated(SecretString),
}

/// Talks to Azure as one principal or delegated user.
#[derive(Debug, Clone)]
pub struct AzureClient<'a> {
    http: &'a HttpClient,
    endpoints: &'a Endpoints,
    cache: &'a TokenCache,
    auth: Auth,
    /// Delegated connections: the refresh token and Patchbay's app, to get tokens
    /// for APIs other than Resource Manager.
    delegated_refresh: Option<(SecretString, &'a OAuthClientCredentials)>,
}

/// The parts of an Entra token error body.
struct TokenError {
    error: String,
    code: Option<u64>,
    /// The first line of `error_description` (without trace and correlation ids).
    description: String,
}

fn token_error(body: &[u8]) -> Option<TokenError> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let error = json.get("error")?.as_str()?.to_owned();
    let full = json
        .get("error_description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let description = full.lines().next().unwrap_or_default().trim().to_owned();
    let code = json
        .get("error_codes")
        .and_then(Value::as_array)
        .and_then(|codes| codes.first())
        .and_then(Value::as_u64)
        .or_else(|| {
            let digits: String = description
                .strip_prefix("AADSTS")?
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok()
        });
    Some(TokenError {
        error,
        code,
        description,
    })
}

/// Maps an AADSTS error to the guide's message, kind and fix. `redirect_uri` is
/// the URI Patchbay used, for the reply-URL message.
pub fn aadsts_error(
    code: Option<u64>,
    error: &str,
    description: &str,
    redirect_uri: Option<&str>,
) -> Error {
    let detail = if description.is_empty() {
        error.to_owned()
    } else {
        description.to_owned()
    };
    let (kind, message, hint): (ErrorKind, &str, String) = match code {
        Some(50011) => (
            ErrorKind::InvalidConfig,
            REPLY_URL_MISMATCH,
            match redirect_uri {
                Some(uri) => {
                    format!("Verify redirect URI exactly matches in App Registration: {uri}")
                }
                None => "Verify redirect URI exactly matches in App Registration".to_owned(),
            },
        ),
        Some(7000215) => (
            ErrorKind::AuthFailed,
            INVALID_CREDENTIALS,
            "the client secret is wrong: copy the secret's Value (not its Secret ID) from \
             Certificates & secrets"
                .to_owned(),
        ),
        Some(7000222) => (
            ErrorKind::AuthFailed,
            INVALID_CREDENTIALS,
            "the client secret expired: create a new one under Certificates & secrets and \
             connect again"
                .to_owned(),
        ),
        Some(700016) => (
            ErrorKind::AuthFailed,
            INVALID_CREDENTIALS,
            "no application with this client id exists in the tenant: check the Application \
             (client) ID and the Directory (tenant) ID"
                .to_owned(),
        ),
        Some(90002 | 900023) => (
            ErrorKind::AuthFailed,
            INVALID_CREDENTIALS,
            "the tenant was not found: check the Directory (tenant) ID".to_owned(),
        ),
        Some(65001 | 90094 | 90008 | 500011 | 50105) => (
            ErrorKind::PermissionDenied,
            INSUFFICIENT_PRIVILEGES,
            CONSENT_HINT.to_owned(),
        ),
        _ if error == "invalid_client" || error == "unauthorized_client" => (
            ErrorKind::AuthFailed,
            INVALID_CREDENTIALS,
            "check the Directory (tenant) ID, Application (client) ID and client secret".to_owned(),
        ),
        _ => (
            ErrorKind::AuthFailed,
            TOKEN_FAILED,
            "check the app registration and try again".to_owned(),
        ),
    };
    Error::new(kind, format!("{message} ({detail})"))
        .with_connector(CONNECTOR_ID)
        .with_hint(hint)
}

/// The OAuth engine's hook (delegated flow): AADSTS codes the guide names get its
/// message and fix; any other code keeps the engine's wording.
pub fn explain_oauth_error(
    error: &str,
    description: Option<&str>,
    redirect_uri: Option<&str>,
) -> Option<Error> {
    let first_line = description?.lines().next()?.trim();
    let digits: String = first_line
        .strip_prefix("AADSTS")?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    let code: u64 = digits.parse().ok()?;
    match code {
        50011 | 65001 | 90094 | 90008 | 500011 | 50105 => {
            Some(aadsts_error(Some(code), error, first_line, redirect_uri))
        }
        7000215 | 7000222 | 700016 => Some(
            aadsts_error(Some(code), error, first_line, redirect_uri).with_hint(
                "the delegated flow uses Patchbay's own app registration: check AZURE_CLIENT_ID \
                 and AZURE_CLIENT_SECRET (a current secret's Value), then restart Patchbay",
            ),
        ),
        _ => None,
    }
}

/// The `{"error": {"code", "message"}}` of an ARM, Graph or Log Analytics answer.
fn api_error(body: &[u8]) -> Option<(String, String)> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let error = json.get("error")?;
    let code = error
        .get("code")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut message = error
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    // Resource Graph and Log Analytics put the useful part in details or innererror.
    for pointer in ["/details/0", "/innererror"] {
        if let Some(inner) = error.pointer(pointer) {
            let inner_code = inner
                .get("code")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let inner_message = inner
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !inner_message.is_empty() {
                message = format!("{message} {inner_code}: {inner_message}");
            }
        }
    }
    Some((code, message))
}

fn cut(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match text.char_indices().nth(max) {
        Some((index, _)) => format!("{}…", &text[..index]),
        None => text,
    }
}

/// Maps a non-2xx answer of an Azure API: 401 the token was refused, 403
/// "Insufficient privileges" (`AuthorizationFailed`), 404, 429 with the wait, 5xx;
/// the provider's code and message follow each.
pub fn map_api_status(response: Response, audience: Audience, what: &str) -> Result<Response> {
    if response.status.is_success() {
        return Ok(response);
    }
    let status = response.status.as_u16();
    let (code, message) = api_error(&response.body).unwrap_or_else(|| {
        (
            String::new(),
            cut(&String::from_utf8_lossy(&response.body), 300),
        )
    });
    let detail = match (code.is_empty(), message.is_empty()) {
        (false, false) => format!("{code}: {}", cut(&message, 500)),
        (false, true) => code.clone(),
        (true, false) => cut(&message, 500),
        (true, true) => format!("HTTP {status}"),
    };
    let api = audience.name();
    let error = match status {
        401 => Error::new(
            ErrorKind::AuthFailed,
            format!("{api} rejected the access token ({detail})"),
        )
        .with_hint("connect again if the client secret or the sign-in was revoked"),
        403 => {
            let hint = match audience {
                Audience::Graph => "grant the app the Microsoft Graph Application.Read.All \
                                    permission with admin consent to let Patchbay read the \
                                    secret's expiry date"
                    .to_owned(),
                Audience::LogAnalytics => "assign the Log Analytics Reader role on the workspace \
                                           (or Reader on its resource group)"
                    .to_owned(),
                Audience::Arm => ROLE_HINT.to_owned(),
            };
            Error::new(
                ErrorKind::PermissionDenied,
                format!("{INSUFFICIENT_PRIVILEGES} for {what} ({detail})"),
            )
            .with_hint(hint)
        }
        404 => Error::not_found(format!("{api} has no {what} ({detail})"))
            .with_hint("check the id; list the collection first to find it"),
        429 => {
            let error = Error::new(
                ErrorKind::RateLimited,
                format!("{api} throttled the request ({detail})"),
            )
            .with_hint("wait for the time Azure asks, then try again");
            match parse_retry_after(&response.headers, std::time::SystemTime::now()) {
                Some(wait) => error.with_retry_after(wait),
                None => error,
            }
        }
        400 | 409 | 422 => Error::invalid_input(
            "params",
            format!("{api} rejected the request for {what} ({detail})"),
        )
        .with_hint("fix the parameter the message names and try again"),
        500..=599 => Error::new(
            ErrorKind::Unavailable,
            format!("{api} is unavailable ({detail})"),
        )
        .with_hint("Azure is having trouble; try again later (status.azure.com)"),
        _ => Error::internal(format!("{api} answered HTTP {status} ({detail})")),
    };
    Err(error
        .with_connector(CONNECTOR_ID)
        .with_provider_status(status))
}

impl<'a> AzureClient<'a> {
    /// A client for one principal or delegated token.
    pub fn new(
        http: &'a HttpClient,
        endpoints: &'a Endpoints,
        cache: &'a TokenCache,
        auth: Auth,
    ) -> Self {
        Self {
            http,
            endpoints,
            cache,
            auth,
            delegated_refresh: None,
        }
    }

    /// Lets a delegated client trade its refresh token for tokens of other APIs
    /// (Log Analytics) at the sign-in's token endpoint, with Patchbay's own app.
    pub fn with_delegated_refresh(
        mut self,
        refresh_token: SecretString,
        app: &'a OAuthClientCredentials,
    ) -> Self {
        self.delegated_refresh = Some((refresh_token, app));
        self
    }

    /// The endpoints in use.
    pub fn endpoints(&self) -> &Endpoints {
        self.endpoints
    }

    /// Whether this client acts for a service principal.
    pub fn is_principal(&self) -> bool {
        matches!(self.auth, Auth::Principal(_))
    }

    fn cache_key(principal: &Principal, endpoints: &Endpoints, audience: Audience) -> String {
        let digest = Sha256::digest(principal.secret.expose().as_bytes());
        format!(
            "{}|{}|{}|{}|{}",
            endpoints.authority,
            principal.tenant,
            principal.client_id,
            hex::encode(digest),
            audience.scope()
        )
    }

    /// An access token for `audience`: the cached one while it has more than five
    /// minutes left, else a new client-credentials token.
    pub async fn token(&self, audience: Audience) -> Result<SecretString> {
        let principal = match &self.auth {
            Auth::Delegated(token) if audience == Audience::Arm => return Ok(token.clone()),
            Auth::Delegated(_) if self.delegated_refresh.is_some() => {
                return self.delegated_token(audience).await
            }
            Auth::Delegated(_) => {
                return Err(Error::unsupported(format!(
                    "a delegated (OAuth) Azure connection holds a token for Azure Resource \
                     Manager only, not for {}",
                    audience.name()
                ))
                .with_connector(CONNECTOR_ID)
                .with_hint(
                    "connect Azure with a service principal to use Log Analytics and Graph",
                ))
            }
            Auth::Principal(principal) => principal,
        };
        let key = Self::cache_key(principal, self.endpoints, audience);
        let now = Utc::now();
        if let Some(token) = self.cache.get(&key, now) {
            return Ok(token);
        }
        let (token, expires_at) = self.client_credentials(principal, audience, now).await?;
        self.cache.put(key, token.clone(), expires_at);
        Ok(token)
    }

    /// A delegated token for `audience`: the refresh token traded at the sign-in's
    /// token endpoint (the only place Patchbay's client secret goes), cached per
    /// refresh token and audience. Microsoft keeps the old refresh token valid, so
    /// the rotated one it returns is not needed here.
    async fn delegated_token(&self, audience: Audience) -> Result<SecretString> {
        let Some((refresh, app)) = &self.delegated_refresh else {
            return Err(Error::internal("no refresh token for a delegated token"));
        };
        let key = format!(
            "delegated|{}|{}",
            hex::encode(Sha256::digest(refresh.expose().as_bytes())),
            audience.scope()
        );
        let now = Utc::now();
        if let Some(token) = self.cache.get(&key, now) {
            return Ok(token);
        }
        let url = Url::parse(crate::TOKEN_URL)
            .map_err(|error| Error::internal(format!("bad Azure token URL: {error}")))?;
        let secret = app.secret_for(&url)?;
        let form = [
            ("grant_type", "refresh_token"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", secret.expose().as_str()),
            ("refresh_token", refresh.expose().as_str()),
            ("scope", audience.scope()),
        ];
        let response = self
            .http
            .post(url.as_str())
            .connector(CONNECTOR_ID)
            .operation("token")
            .idempotent(false)
            .carries_client_credentials(app)
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await?;
        let (token, expires_at) = Self::token_answer(response, &[secret, refresh], now)?;
        self.cache.put(key, token.clone(), expires_at);
        Ok(token)
    }

    /// Reads a token endpoint's answer: the token and its expiry, or the mapped
    /// AADSTS error with `secrets` removed from Microsoft's text.
    fn token_answer(
        response: Response,
        secrets: &[&SecretString],
        now: DateTime<Utc>,
    ) -> Result<(SecretString, DateTime<Utc>)> {
        let status = response.status.as_u16();
        if !response.status.is_success() {
            let redact = |text: &str| {
                secrets.iter().fold(text.to_owned(), |text, secret| {
                    text.replace(secret.expose().as_str(), "[redacted]")
                })
            };
            if status == 429 || status >= 500 {
                let kind = if status == 429 {
                    ErrorKind::RateLimited
                } else {
                    ErrorKind::Unavailable
                };
                return Err(Error::new(
                    kind,
                    format!(
                        "{TOKEN_FAILED} (the Microsoft identity platform answered HTTP {status})"
                    ),
                )
                .with_connector(CONNECTOR_ID)
                .with_provider_status(status)
                .with_hint("try again in a minute"));
            }
            let error = match token_error(&response.body) {
                Some(parsed) => aadsts_error(
                    parsed.code,
                    &parsed.error,
                    &redact(&parsed.description),
                    None,
                ),
                None => Error::new(
                    ErrorKind::AuthFailed,
                    format!("{TOKEN_FAILED} (HTTP {status})"),
                )
                .with_connector(CONNECTOR_ID),
            };
            return Err(error.with_provider_status(status));
        }
        let body: Value = response.json()?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                Error::internal(format!("{TOKEN_FAILED}: the answer has no access_token"))
                    .with_connector(CONNECTOR_ID)
            })?;
        let lifetime = body
            .get("expires_in")
            .and_then(|value| value.as_i64().or_else(|| value.as_str()?.parse().ok()))
            .unwrap_or(3599);
        Ok((
            SecretString::from(token),
            now + TimeDelta::seconds(lifetime.clamp(0, 86_400)),
        ))
    }

    fn forget_token(&self, audience: Audience) {
        if let Auth::Principal(principal) = &self.auth {
            self.cache
                .evict(&Self::cache_key(principal, self.endpoints, audience));
        }
    }

    /// `POST <authority>/<tenant>/oauth2/v2.0/token` with `grant_type=client_credentials`.
    async fn client_credentials(
        &self,
        principal: &Principal,
        audience: Audience,
        now: DateTime<Utc>,
    ) -> Result<(SecretString, DateTime<Utc>)> {
        let url = self.endpoints.token_url(&principal.tenant)?;
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", principal.client_id.as_str()),
            ("client_secret", principal.secret.expose().as_str()),
            ("scope", audience.scope()),
        ];
        let response = self
            .http
            .post(url.as_str())
            .connector(CONNECTOR_ID)
            .operation("token")
            // A client-credentials request changes nothing: retrying it is safe.
            .idempotent(true)
            .header("Accept", "application/json")
            .form(&form)
            .send()
            .await?;
        Self::token_answer(response, &[&principal.secret], now)
    }

    /// A request to `url` with a token for `audience`; a refused cached token is
    /// dropped and the request tried once more with a new one.
    pub async fn call(
        &self,
        audience: Audience,
        operation: &'static str,
        url: &Url,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value> {
        let mut retried = false;
        loop {
            let token = self.token(audience).await?;
            let request = match body {
                Some(body) => self.http.post(url.as_str()).json(body).idempotent(true),
                None => self.http.get(url.as_str()),
            };
            let response = request
                .connector(CONNECTOR_ID)
                .operation(operation)
                .header("Accept", "application/json")
                .bearer_auth(&token)
                .send()
                .await?;
            match map_api_status(response, audience, what) {
                Ok(response) if response.body.is_empty() => return Ok(Value::Null),
                Ok(response) => return response.json(),
                Err(error)
                    if error.kind() == ErrorKind::AuthFailed && self.is_principal() && !retried =>
                {
                    retried = true;
                    self.forget_token(audience);
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// An ARM URL: the base, the percent-encoded segments and `api-version`.
    pub fn arm_url(&self, segments: &[&str], api_version: &str) -> Result<Url> {
        let mut url = crate::config::join(&self.endpoints.arm, segments)?;
        url.query_pairs_mut()
            .append_pair("api-version", api_version);
        Ok(url)
    }

    /// A `nextLink` to follow: only on the Resource Manager's own origin, so the
    /// token never goes to a host an answer names.
    pub fn next_link(&self, link: &str) -> Result<Url> {
        let url = Url::parse(link).map_err(|_| {
            Error::invalid_input("cursor", "the page link is not a URL")
                .with_connector(CONNECTOR_ID)
        })?;
        let arm = Url::parse(&self.endpoints.arm)
            .map_err(|error| Error::internal(format!("bad Azure base URL: {error}")))?;
        if url.origin() != arm.origin() {
            return Err(Error::new(
                ErrorKind::Internal,
                format!(
                    "refused to follow a page link to {}: pages are only read from {}",
                    url.host_str().unwrap_or("another host"),
                    arm.origin().ascii_serialization()
                ),
            )
            .with_connector(CONNECTOR_ID));
        }
        Ok(url)
    }

    /// Reads a `{value, nextLink}` collection from `url`, following `nextLink` for
    /// up to `max_pages` pages or `max_items` items; returns the items and the link
    /// to the next page when there is more.
    pub async fn list(
        &self,
        operation: &'static str,
        url: Url,
        what: &str,
        max_pages: usize,
        max_items: usize,
    ) -> Result<(Vec<Value>, Option<String>)> {
        let mut items = Vec::new();
        let mut url = url;
        for _ in 0..max_pages {
            let page = self
                .call(Audience::Arm, operation, &url, None, what)
                .await?;
            if let Some(values) = page.get("value").and_then(Value::as_array) {
                items.extend(values.iter().cloned());
            }
            let next = page
                .get("nextLink")
                .and_then(Value::as_str)
                .filter(|link| !link.is_empty())
                .map(str::to_owned);
            match next {
                Some(link) if items.len() < max_items => url = self.next_link(&link)?,
                other => return Ok((items, other)),
            }
        }
        Ok((items, Some(url.to_string())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aadsts_codes_map_to_the_guide_messages() {
        let error = aadsts_error(
            Some(50011),
            "invalid_request",
            "AADSTS50011: The redirect URI",
            Some("http://localhost:5080/azure/callback"),
        );
        assert!(error.message().starts_with(REPLY_URL_MISMATCH));
        assert!(error.hint().unwrap().contains("/azure/callback"));
        let error = aadsts_error(Some(65001), "invalid_grant", "AADSTS65001: consent", None);
        assert!(error.message().starts_with(INSUFFICIENT_PRIVILEGES));
        assert_eq!(error.kind(), ErrorKind::PermissionDenied);
        for code in [7000215, 7000222, 700016, 90002] {
            let error = aadsts_error(Some(code), "invalid_client", "x", None);
            assert!(error.message().starts_with(INVALID_CREDENTIALS), "{code}");
            assert_eq!(error.kind(), ErrorKind::AuthFailed);
        }
    }

    #[test]
    fn the_code_is_read_from_the_description_when_error_codes_is_absent() {
        let parsed = token_error(
            br#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x"}"#,
        )
        .unwrap();
        assert_eq!(parsed.code, Some(7000215));
        assert_eq!(
            parsed.description,
            "AADSTS7000215: Invalid client secret provided."
        );
    }
}
