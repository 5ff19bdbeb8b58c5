//! Token requests (code exchange and refresh) through the `oauth2` crate, sent by
//! the shared [`HttpClient`], with provider habits normalised first: form-encoded
//! answers, JSON-body client authentication, and errors reported at HTTP 200.

use std::borrow::Cow;
use std::time::Duration;

use chrono::{DateTime, Utc};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, AuthUrl, AuthorizationCode, ClientId, ClientSecret, HttpRequest,
    HttpResponse, PkceCodeVerifier, RedirectUrl, RefreshToken, RequestTokenError, Scope,
    StandardRevocableToken, TokenUrl,
};
use patchbay_core::{
    ClientAuthStyle, ConnectorDescriptor, Error, OAuthClientCredentials, OAuthSpec, Result,
    SecretString,
};
use patchbay_http::{Bytes, HttpClient, StatusCode};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::errors;

/// Tokens a token endpoint issued.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The access token.
    pub access_token: SecretString,
    /// The refresh token, when one was issued.
    pub refresh_token: Option<SecretString>,
    /// When the access token expires, when the provider says.
    pub expires_at: Option<DateTime<Utc>>,
    /// The scopes granted.
    pub scopes: Vec<String>,
    /// The token type (`bearer`, `bot`).
    pub token_type: Option<String>,
    /// The other fields of the answer, with every token-like field removed.
    pub extra: Map<String, Value>,
}

/// A failed token request: the error for people, and the provider's OAuth error
/// code when it sent one (`invalid_grant`, `bad_redirect_uri`).
#[derive(Debug)]
pub struct TokenRequestFailure {
    /// The provider's error code, if the endpoint answered with one.
    pub provider_code: Option<String>,
    /// What to tell people.
    pub error: Error,
}

impl From<TokenRequestFailure> for Error {
    fn from(failure: TokenRequestFailure) -> Self {
        failure.error
    }
}

impl TokenRequestFailure {
    fn transport(error: Error) -> Self {
        Self {
            provider_code: None,
            error,
        }
    }
}

/// A token endpoint answer, lenient where providers differ from RFC 6749: the token
/// type may be missing, and scopes may be separated by commas (Slack).
#[derive(Debug, Serialize, Deserialize)]
struct ProviderTokenResponse {
    access_token: AccessToken,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
    #[serde(default)]
    refresh_token: Option<RefreshToken>,
    #[serde(default, deserialize_with = "scope_list")]
    scope: Option<Vec<Scope>>,
    #[serde(flatten)]
    extra: Map<String, Value>,
}

fn scope_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<Scope>>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    Ok(text.map(|text| {
        text.split([' ', ','])
            .filter(|scope| !scope.is_empty())
            .map(|scope| Scope::new(scope.to_owned()))
            .collect()
    }))
}

/// Every answer is treated as a bearer token for the `oauth2` crate's bookkeeping;
/// the provider's own token type is kept in `token_type`.
static BEARER: BasicTokenType = BasicTokenType::Bearer;

impl oauth2::TokenResponse for ProviderTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &AccessToken {
        &self.access_token
    }

    fn token_type(&self) -> &BasicTokenType {
        &BEARER
    }

    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        self.refresh_token.as_ref()
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scope.as_ref()
    }
}

impl ProviderTokenResponse {
    fn into_token_set(self, now: DateTime<Utc>) -> TokenSet {
        let mut extra = self.extra;
        extra.remove("ok");
        strip_tokens(&mut extra);
        TokenSet {
            access_token: SecretString::new(self.access_token.into_secret()),
            refresh_token: self
                .refresh_token
                .map(|token| SecretString::new(token.into_secret())),
            expires_at: self.expires_in.and_then(|seconds| {
                chrono::TimeDelta::try_seconds(i64::try_from(seconds).ok()?)
                    .map(|lifetime| now + lifetime)
            }),
            scopes: self
                .scope
                .unwrap_or_default()
                .into_iter()
                .map(|scope| scope.to_string())
                .collect(),
            token_type: self.token_type,
            extra,
        }
    }
}

/// Removes every field whose name ends in `token` (Slack's `authed_user.access_token`),
/// at any depth, so what remains is safe to keep as metadata.
fn strip_tokens(fields: &mut Map<String, Value>) {
    fields.retain(|name, _| !name.ends_with("token"));
    for value in fields.values_mut() {
        strip_value(value);
    }
}

fn strip_value(value: &mut Value) {
    match value {
        Value::Object(fields) => strip_tokens(fields),
        Value::Array(items) => items.iter_mut().for_each(strip_value),
        _ => {}
    }
}

type ProviderClient = oauth2::Client<
    BasicErrorResponse,
    ProviderTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointNotSet,
    oauth2::EndpointSet,
>;

fn invalid_spec(
    descriptor: &ConnectorDescriptor,
    what: &str,
    error: impl std::fmt::Display,
) -> Error {
    Error::internal(format!(
        "the {} OAuth description has an invalid {what}: {error}",
        descriptor.display_name
    ))
    .with_connector(descriptor.id)
}

fn token_client(
    descriptor: &ConnectorDescriptor,
    spec: &OAuthSpec,
    credentials: &OAuthClientCredentials,
) -> Result<ProviderClient> {
    let token_url = TokenUrl::new(spec.token_url.to_owned())
        .map_err(|error| invalid_spec(descriptor, "token URL", error))?;
    let auth_type = match spec.client_auth {
        ClientAuthStyle::BasicHeader => AuthType::BasicAuth,
        ClientAuthStyle::RequestBody | ClientAuthStyle::JsonBody => AuthType::RequestBody,
    };
    let secret = credentials
        .secret_for(token_url.url())
        .map_err(|error| error.with_connector(descriptor.id))?;
    Ok(
        oauth2::Client::new(ClientId::new(credentials.client_id.clone()))
            .set_client_secret(ClientSecret::new(secret.expose().clone()))
            .set_token_uri(token_url)
            .set_auth_type(auth_type),
    )
}

/// Builds the authorize URL for `state`, with the S256 challenge of `pkce_verifier` when given.
pub fn authorize_url(
    descriptor: &ConnectorDescriptor,
    spec: &OAuthSpec,
    client_id: &str,
    redirect_uri: &str,
    state: &str,
    pkce_verifier: Option<&str>,
) -> Result<String> {
    let auth_url = AuthUrl::new(spec.authorize_url.to_owned())
        .map_err(|error| invalid_spec(descriptor, "authorize URL", error))?;
    let redirect = RedirectUrl::new(redirect_uri.to_owned())
        .map_err(|error| invalid_spec(descriptor, "redirect URI", error))?;
    let client = oauth2::basic::BasicClient::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(auth_url)
        .set_redirect_uri(redirect);
    let state = state.to_owned();
    let mut request = client.authorize_url(move || oauth2::CsrfToken::new(state));
    let scopes = spec.scope_parameter();
    if !scopes.is_empty() {
        // One pre-joined value keeps the provider's separator (commas for Slack).
        request = request.add_scope(Scope::new(scopes));
    }
    for (name, value) in spec.extra_authorize_params {
        request = request.add_extra_param(*name, *value);
    }
    if let Some(verifier) = pkce_verifier {
        let verifier = PkceCodeVerifier::new(verifier.to_owned());
        request = request.set_pkce_challenge(oauth2::PkceCodeChallenge::from_code_verifier_sha256(
            &verifier,
        ));
    }
    Ok(request.url().0.to_string())
}

/// Exchanges an authorization code at the token endpoint.
#[allow(clippy::too_many_arguments)]
pub async fn exchange_code(
    http: &HttpClient,
    descriptor: &'static ConnectorDescriptor,
    spec: &OAuthSpec,
    credentials: &OAuthClientCredentials,
    code: &str,
    redirect_uri: &str,
    pkce_verifier: Option<&str>,
    now: DateTime<Utc>,
) -> std::result::Result<TokenSet, TokenRequestFailure> {
    let client =
        token_client(descriptor, spec, credentials).map_err(TokenRequestFailure::transport)?;
    let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|error| {
        TokenRequestFailure::transport(invalid_spec(descriptor, "redirect URI", error))
    })?;
    let mut request = client
        .exchange_code(AuthorizationCode::new(code.to_owned()))
        .set_redirect_uri(Cow::Owned(redirect));
    if let Some(verifier) = pkce_verifier {
        request = request.set_pkce_verifier(PkceCodeVerifier::new(verifier.to_owned()));
    }
    let sender = Sender {
        http,
        descriptor,
        style: spec.client_auth,
        credentials,
    };
    request
        .request_async(&sender)
        .await
        .map(|response| response.into_token_set(now))
        .map_err(|error| failure(descriptor, error, Some(redirect_uri)))
}

/// Trades a refresh token for a new access token.
pub async fn refresh_token(
    http: &HttpClient,
    descriptor: &'static ConnectorDescriptor,
    spec: &OAuthSpec,
    credentials: &OAuthClientCredentials,
    refresh_token: &SecretString,
    now: DateTime<Utc>,
) -> std::result::Result<TokenSet, TokenRequestFailure> {
    let client =
        token_client(descriptor, spec, credentials).map_err(TokenRequestFailure::transport)?;
    let token = RefreshToken::new(refresh_token.expose().clone());
    let sender = Sender {
        http,
        descriptor,
        style: spec.client_auth,
        credentials,
    };
    client
        .exchange_refresh_token(&token)
        .request_async(&sender)
        .await
        .map(|response| response.into_token_set(now))
        .map_err(|error| failure(descriptor, error, None))
}

fn failure(
    descriptor: &ConnectorDescriptor,
    error: RequestTokenError<Error, BasicErrorResponse>,
    redirect_uri: Option<&str>,
) -> TokenRequestFailure {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let code = response.error().as_ref().to_owned();
            TokenRequestFailure {
                error: errors::token_endpoint_refused(
                    descriptor,
                    &code,
                    response.error_description().map(String::as_str),
                    redirect_uri,
                ),
                provider_code: Some(code),
            }
        }
        RequestTokenError::Request(error) => TokenRequestFailure::transport(error),
        // Only the path is shown: the offending value could be a token.
        RequestTokenError::Parse(error, _) => TokenRequestFailure::transport(
            Error::internal(format!(
                "{} answered the token request with an unexpected body (at `{}`)",
                descriptor.display_name,
                error.path()
            ))
            .with_connector(descriptor.id),
        ),
        RequestTokenError::Other(message) => TokenRequestFailure::transport(
            Error::internal(format!(
                "{} token request failed: {message}",
                descriptor.display_name
            ))
            .with_connector(descriptor.id),
        ),
    }
}

/// The `oauth2` crate's HTTP client: [`send`] over the shared [`HttpClient`].
struct Sender<'a> {
    http: &'a HttpClient,
    descriptor: &'static ConnectorDescriptor,
    style: ClientAuthStyle,
    credentials: &'a OAuthClientCredentials,
}

impl<'c> oauth2::AsyncHttpClient<'c> for Sender<'_> {
    type Error = Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<HttpResponse>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(
            self.http,
            self.descriptor,
            self.style,
            self.credentials,
            request,
        ))
    }
}

/// Sends one `oauth2` request through the shared client and normalises the answer
/// into what RFC 6749 expects: JSON, 200 for tokens, 400 with `error` for refusals.
///
/// The request carries the client credentials, so it is only sent to one of the
/// provider's own origins.
async fn send(
    http: &HttpClient,
    descriptor: &'static ConnectorDescriptor,
    style: ClientAuthStyle,
    credentials: &OAuthClientCredentials,
    request: HttpRequest,
) -> Result<HttpResponse> {
    let (parts, body) = request.into_parts();
    let mut builder = http
        .request(parts.method, &parts.uri.to_string())
        .connector(descriptor.id)
        .operation("oauth_token")
        .idempotent(false)
        .carries_client_credentials(credentials)
        .header("accept", "application/json");
    if let Some(authorization) = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    {
        builder = builder.secret_header("authorization", &SecretString::from(authorization));
    }
    builder = match style {
        ClientAuthStyle::JsonBody => {
            let fields: Map<String, Value> = form_fields(&body)
                .into_iter()
                .map(|(name, value)| (name, Value::String(value)))
                .collect();
            builder.json(&fields)
        }
        ClientAuthStyle::BasicHeader | ClientAuthStyle::RequestBody => {
            builder.body("application/x-www-form-urlencoded", Bytes::from(body))
        }
    };
    let response = builder.send().await?;
    let body = answer_json(&response);
    let refusal = body.as_ref().and_then(refusal_code);
    let status = response.status;
    if status.is_success() {
        let body = body.ok_or_else(|| {
            Error::internal(format!(
                "{} answered the token request with neither JSON nor a form",
                descriptor.display_name
            ))
            .with_connector(descriptor.id)
        })?;
        let has_token = body.get("access_token").is_some_and(Value::is_string);
        return match refusal {
            // An error reported at 200 (GitHub, Slack) becomes the standard 400 refusal.
            Some(code) if !has_token => Ok(json_response(
                StatusCode::BAD_REQUEST,
                &standard_error(&code, &body),
            )),
            _ => Ok(json_response(StatusCode::OK, &body)),
        };
    }
    match (status.as_u16(), refusal, body) {
        // Atlassian answers a refused refresh token with 403 `invalid_grant`.
        (400 | 401 | 403, Some(code), Some(body)) => Ok(json_response(
            StatusCode::BAD_REQUEST,
            &standard_error(&code, &body),
        )),
        _ => Err(response
            .error_for_status()
            .err()
            .unwrap_or_else(|| Error::internal("unexpected token endpoint status"))),
    }
}

fn form_fields(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

/// The answer as a JSON object: parsed as JSON, or as a form (GitHub without
/// `Accept: application/json`).
fn answer_json(response: &patchbay_http::Response) -> Option<Value> {
    if let Ok(value @ Value::Object(_)) = serde_json::from_slice::<Value>(&response.body) {
        return Some(value);
    }
    let is_form = response
        .header("content-type")
        .is_some_and(|kind| kind.starts_with("application/x-www-form-urlencoded"))
        || response.header("content-type").is_none()
        || response
            .header("content-type")
            .is_some_and(|kind| kind.starts_with("text/plain"));
    if !is_form {
        return None;
    }
    let fields = form_fields(&response.body);
    if fields.is_empty() {
        return None;
    }
    Some(Value::Object(
        fields
            .into_iter()
            .map(|(name, value)| {
                // Form answers carry numbers as text; `expires_in` must be a number.
                let value = match (name.as_str(), value.parse::<u64>()) {
                    ("expires_in" | "refresh_token_expires_in", Ok(number)) => Value::from(number),
                    _ => Value::String(value),
                };
                (name, value)
            })
            .collect(),
    ))
}

/// The provider's error code, when the body says the request failed: an `error`
/// string, or Slack's `ok: false`.
fn refusal_code(body: &Value) -> Option<String> {
    match body.get("error") {
        Some(Value::String(code)) if !code.is_empty() => Some(code.clone()),
        _ if body.get("ok") == Some(&Value::Bool(false)) => Some("unknown_error".to_owned()),
        _ => None,
    }
}

fn standard_error(code: &str, body: &Value) -> Value {
    let mut error = Map::new();
    error.insert("error".into(), Value::String(code.to_owned()));
    if let Some(description) = body.get("error_description").and_then(Value::as_str) {
        error.insert(
            "error_description".into(),
            Value::String(description.to_owned()),
        );
    }
    Value::Object(error)
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = http::Response::new(serde_json::to_vec(body).unwrap_or_default());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slack_ok_false_is_a_refusal_by_name() {
        let body = serde_json::json!({ "ok": false, "error": "bad_redirect_uri" });
        assert_eq!(refusal_code(&body).as_deref(), Some("bad_redirect_uri"));
        let body = serde_json::json!({ "ok": false });
        assert_eq!(refusal_code(&body).as_deref(), Some("unknown_error"));
        let body = serde_json::json!({ "ok": true, "access_token": "x" });
        assert_eq!(refusal_code(&body), None);
    }

    #[test]
    fn token_like_fields_are_stripped_from_metadata_at_any_depth() {
        let mut fields = serde_json::json!({
            "team": { "id": "T1", "name": "Acme" },
            "authed_user": { "id": "U1", "access_token": "xoxp-secret", "token_type": "user" },
            "id_token": "jwt",
            "bot_user_id": "U2",
        });
        strip_tokens(fields.as_object_mut().unwrap());
        let text = fields.to_string();
        assert!(!text.contains("xoxp-secret"), "{text}");
        assert!(!text.contains("jwt"), "{text}");
        assert!(text.contains("\"team\""));
        assert!(text.contains("token_type"));
    }
}
