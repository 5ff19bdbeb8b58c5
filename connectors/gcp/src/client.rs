//! Google Cloud's HTTP APIs through `patchbay-http`: the fixed endpoints, bearer
//! authentication, the service-account token exchange, and Google's error bodies
//! (`SERVICE_DISABLED` and `PERMISSION_DENIED` details) mapped to Patchbay errors.

use chrono::{DateTime, Duration, Utc};
use patchbay_core::{Error, ErrorKind, Result, SecretString};
use patchbay_http::{HttpClient, Method, Response};
use serde::Deserialize;
use serde_json::Value;

use crate::auth::{messages, ServiceAccountKey, JWT_BEARER_GRANT};
use crate::CONNECTOR_ID;

/// Google's authorization endpoint.
pub const AUTHORIZE_URL: &str = "https://accounts.google.com/o/oauth2/v2/auth";
/// Google's token endpoint (code, refresh and JWT-bearer grants).
pub const TOKEN_URL: &str = "https://oauth2.googleapis.com/token";
/// Google's revocation endpoint.
pub const REVOKE_URL: &str = "https://oauth2.googleapis.com/revoke";
/// The userinfo endpoint that names the Google account.
pub const USERINFO_URL: &str = "https://www.googleapis.com/oauth2/v2/userinfo";
/// Cloud Resource Manager v3.
pub const RESOURCE_MANAGER: &str = "https://cloudresourcemanager.googleapis.com";
/// Compute Engine v1.
pub const COMPUTE: &str = "https://compute.googleapis.com";
/// Cloud Logging v2.
pub const LOGGING: &str = "https://logging.googleapis.com";
/// Cloud Monitoring v3.
pub const MONITORING: &str = "https://monitoring.googleapis.com";
/// Google Kubernetes Engine v1.
pub const CONTAINER: &str = "https://container.googleapis.com";
/// Cloud Asset Inventory v1.
pub const CLOUD_ASSET: &str = "https://cloudasset.googleapis.com";

/// The read-only scope every query needs.
pub const READ_ONLY_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform.read-only";
/// The scope that lets userinfo name the account.
pub const EMAIL_SCOPE: &str = "https://www.googleapis.com/auth/userinfo.email";

/// Which Google API a call reaches and the IAM permission it needs, so a refusal
/// names them even when Google's answer does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// The service name, e.g. `compute.googleapis.com`.
    pub service: &'static str,
    /// The permission the call needs, e.g. `compute.instances.list`.
    pub permission: Option<&'static str>,
}

impl Needs {
    /// `service`, needing `permission`.
    pub const fn new(service: &'static str, permission: &'static str) -> Self {
        Self {
            service,
            permission: Some(permission),
        }
    }
}

/// The guide's words for a disabled API.
pub const API_NOT_ENABLED: &str = "API not enabled";

/// The console page where `service` is enabled for `project`.
pub fn enable_api_url(service: &str, project: &str) -> String {
    format!("https://console.cloud.google.com/apis/library/{service}?project={project}")
}

/// An access token minted from a service-account key, with its expiry.
#[derive(Debug, Clone)]
pub struct MintedToken {
    /// The bearer token.
    pub access_token: SecretString,
    /// When Google says it expires.
    pub expires_at: DateTime<Utc>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// Exchanges an RS256 JWT-bearer assertion signed by `key` at the key's own
/// `token_uri` (checked against the address policy) for an access token.
pub async fn mint_token(http: &HttpClient, key: &ServiceAccountKey) -> Result<MintedToken> {
    let assertion = key.assertion(READ_ONLY_SCOPE)?;
    let response = http
        .request(Method::POST, &key.token_uri)
        .connector(CONNECTOR_ID)
        .operation("token")
        .tenant_url("token_uri")
        .idempotent(true)
        .form(&[
            ("grant_type", JWT_BEARER_GRANT),
            ("assertion", assertion.expose().as_str()),
        ])
        .send()
        .await
        .map_err(|error| refresh_failed(&error))?;
    if !response.status.is_success() {
        let refused = matches!(response.status.as_u16(), 400 | 401 | 403);
        let google = oauth_error_text(&response);
        let error = response
            .error_for_status()
            .err()
            .unwrap_or_else(|| Error::internal("unexpected token answer"));
        if refused {
            return Err(Error::new(ErrorKind::AuthFailed, messages::REJECTED)
                .with_connector(CONNECTOR_ID)
                .with_provider_status(error.provider_status().unwrap_or(400))
                .with_hint(format!(
                    "Google answered {google}; create a new key for the service account, or check that it is enabled"
                )));
        }
        return Err(refresh_failed(&error));
    }
    let answer: TokenAnswer = response.json()?;
    if answer.access_token.is_empty() {
        return Err(Error::new(ErrorKind::Unavailable, messages::REFRESH_FAILED)
            .with_connector(CONNECTOR_ID)
            .with_hint("Google answered without an access token; try again"));
    }
    Ok(MintedToken {
        access_token: answer.access_token,
        expires_at: Utc::now()
            + Duration::seconds(answer.expires_in.unwrap_or(3600).clamp(60, 3600)),
    })
}

fn refresh_failed(error: &Error) -> Error {
    let mut failed = Error::new(
        match error.kind() {
            ErrorKind::InvalidConfig => ErrorKind::InvalidConfig,
            ErrorKind::RateLimited => ErrorKind::RateLimited,
            _ => ErrorKind::Unavailable,
        },
        format!("{}: {}", messages::REFRESH_FAILED, error.message()),
    )
    .with_connector(CONNECTOR_ID)
    .with_hint("try again shortly");
    if let Some(status) = error.provider_status() {
        failed = failed.with_provider_status(status);
    }
    if let Some(wait) = error.retry_after() {
        failed = failed.with_retry_after(wait);
    }
    failed
}

/// `error` and `error_description` of an OAuth error answer (never a token).
fn oauth_error_text(response: &Response) -> String {
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    let code = body
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("an error");
    match body.get("error_description").and_then(Value::as_str) {
        Some(description) => format!("`{code}`: {description}"),
        None => format!("`{code}`"),
    }
}

/// What a Google error body says, from `error.status` and its `ErrorInfo` details.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct GoogleError {
    /// `error.status` (`PERMISSION_DENIED`, `NOT_FOUND`, ...).
    pub status: Option<String>,
    /// `error.message`.
    pub message: Option<String>,
    /// `ErrorInfo.reason` (`SERVICE_DISABLED`, `IAM_PERMISSION_DENIED`, ...).
    pub reason: Option<String>,
    /// `metadata.service` (`compute.googleapis.com`).
    pub service: Option<String>,
    /// `metadata.serviceTitle` (`Compute Engine API`).
    pub service_title: Option<String>,
    /// `metadata.permission` (`compute.instances.list`).
    pub permission: Option<String>,
}

impl GoogleError {
    /// Reads `{"error": {"code", "message", "status", "details": [...]}}`.
    pub fn parse(body: &[u8]) -> Self {
        let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let error = &body["error"];
        let text = |value: &Value| value.as_str().map(str::to_owned);
        let mut parsed = Self {
            status: text(&error["status"]),
            message: text(&error["message"]),
            ..Self::default()
        };
        let details = error["details"].as_array().cloned().unwrap_or_default();
        if let Some(info) = details.iter().find(|detail| {
            detail["@type"]
                .as_str()
                .is_some_and(|kind| kind.ends_with("google.rpc.ErrorInfo"))
        }) {
            parsed.reason = text(&info["reason"]);
            parsed.service = text(&info["metadata"]["service"]);
            parsed.service_title = text(&info["metadata"]["serviceTitle"]);
            parsed.permission = text(&info["metadata"]["permission"]);
        }
        if parsed.permission.is_none() {
            parsed.permission = parsed.message.as_deref().and_then(permission_in_message);
        }
        parsed
    }
}

/// The permission named in "Permission 'x.y.z' denied on resource ..." or
/// "Required 'x.y.z' permission for ...".
fn permission_in_message(message: &str) -> Option<String> {
    let quoted: Vec<&str> = message.split(['\'', '"']).collect();
    quoted
        .iter()
        .skip(1)
        .step_by(2)
        .find(|candidate| {
            candidate.split('.').count() >= 3
                && candidate
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '.')
        })
        .map(|permission| (*permission).to_owned())
}

/// The name a person knows a service by.
fn service_title(service: &str) -> &'static str {
    match service {
        "cloudresourcemanager.googleapis.com" => "Cloud Resource Manager API",
        "compute.googleapis.com" => "Compute Engine API",
        "logging.googleapis.com" => "Cloud Logging API",
        "monitoring.googleapis.com" => "Cloud Monitoring API",
        "container.googleapis.com" => "Kubernetes Engine API",
        "cloudasset.googleapis.com" => "Cloud Asset API",
        _ => "the API",
    }
}

/// Maps a failed Google answer to an error: `SERVICE_DISABLED` is the guide's "API
/// not enabled" naming the API and the console link, a `PERMISSION_DENIED` names
/// the permission, and other statuses map by kind with Google's text.
pub fn google_error(response: Response, needs: Needs, project: Option<&str>) -> Error {
    let service = needs.service;
    let google = GoogleError::parse(&response.body);
    let base = match response.error_for_status() {
        Ok(_) => return Error::internal("a successful answer is not an error"),
        Err(error) => error,
    };
    let status = base.provider_status().unwrap_or(0);
    if matches!(google.reason.as_deref(), Some("SERVICE_DISABLED"))
        || (status == 403
            && google.message.as_deref().is_some_and(|m| {
                m.contains("has not been used in project") || m.contains("is disabled")
            }))
    {
        let service = google.service.clone().unwrap_or_else(|| service.to_owned());
        let title = google
            .service_title
            .clone()
            .unwrap_or_else(|| service_title(&service).to_owned());
        let project = project.unwrap_or("your project");
        return Error::new(
            ErrorKind::PermissionDenied,
            format!("{API_NOT_ENABLED}: {title} ({service}) is not enabled in project {project}"),
        )
        .with_connector(CONNECTOR_ID)
        .with_provider_status(status)
        .with_hint(format!(
            "Enable required APIs in GCP Console: {}",
            enable_api_url(&service, project)
        ));
    }
    if status == 403 {
        let permission = google
            .permission
            .clone()
            .or_else(|| needs.permission.map(str::to_owned));
        let on = project
            .map(|p| format!(" on project {p}"))
            .unwrap_or_default();
        let message = match &permission {
            Some(permission) => format!(
                "Permission denied: the credentials lack `{permission}`{on} ({})",
                google.message.as_deref().unwrap_or("PERMISSION_DENIED")
            ),
            None => format!(
                "Permission denied{on}: {}",
                google.message.as_deref().unwrap_or("PERMISSION_DENIED")
            ),
        };
        return Error::new(ErrorKind::PermissionDenied, message)
            .with_connector(CONNECTOR_ID)
            .with_provider_status(status)
            .with_hint(match permission {
                Some(permission) => format!(
                    "grant a role with `{permission}` (such as roles/viewer) to the connected account on the project"
                ),
                None => "grant the connected account roles/viewer (or narrower read roles) on the project".to_owned(),
            });
    }
    base
}

/// Talks to Google Cloud's APIs with one access token.
#[derive(Debug, Clone)]
pub struct GcpClient<'a> {
    http: &'a HttpClient,
    token: SecretString,
}

impl<'a> GcpClient<'a> {
    /// A client sending `token` as the bearer token.
    pub fn new(http: &'a HttpClient, token: SecretString) -> Self {
        Self { http, token }
    }

    /// `GET url?query` as JSON; `service` and `project` name the API and project
    /// in errors.
    pub async fn get(
        &self,
        operation: &'static str,
        url: &str,
        query: &[(&str, String)],
        needs: Needs,
        project: Option<&str>,
    ) -> Result<Value> {
        let mut request = self
            .http
            .get(url)
            .connector(CONNECTOR_ID)
            .operation(operation)
            .header("Accept", "application/json")
            .bearer_auth(&self.token);
        if !query.is_empty() {
            request = request.query(query);
        }
        let response = request.send().await?;
        answer(response, needs, project)
    }

    /// A read-only `POST url` with a JSON body (Logging's `entries:list`).
    pub async fn post_read(
        &self,
        operation: &'static str,
        url: &str,
        body: &Value,
        needs: Needs,
        project: Option<&str>,
    ) -> Result<Value> {
        let response = self
            .http
            .post(url)
            .connector(CONNECTOR_ID)
            .operation(operation)
            .idempotent(true)
            .header("Accept", "application/json")
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        answer(response, needs, project)
    }

    /// The Google account's email from userinfo.
    pub async fn userinfo_email(&self) -> Result<String> {
        let body = self
            .get(
                "validate",
                USERINFO_URL,
                &[],
                Needs {
                    service: "www.googleapis.com",
                    permission: None,
                },
                None,
            )
            .await?;
        body.get("email")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::new(ErrorKind::PermissionDenied, "userinfo named no email")
                    .with_connector(CONNECTOR_ID)
                    .with_hint("the grant lacks the userinfo.email scope")
            })
    }
}

fn answer(response: Response, needs: Needs, project: Option<&str>) -> Result<Value> {
    if response.status.is_success() {
        return response.json();
    }
    Err(google_error(response, needs, project))
}

/// Revokes `token` at Google's revocation endpoint (form body, never the URL).
/// A token Google no longer knows (`invalid_token`) counts as revoked.
pub async fn revoke(http: &HttpClient, token: &SecretString) -> Result<()> {
    let response = http
        .post(REVOKE_URL)
        .connector(CONNECTOR_ID)
        .operation("revoke")
        .idempotent(true)
        .form(&[("token", token.expose().as_str())])
        .send()
        .await?;
    if response.status.is_success() {
        return Ok(());
    }
    let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    if response.status.as_u16() == 400
        && body.get("error").and_then(Value::as_str) == Some("invalid_token")
    {
        return Ok(());
    }
    let status = response.status.as_u16();
    Err(Error::new(
        if status >= 500 {
            ErrorKind::Unavailable
        } else {
            ErrorKind::InvalidInput
        },
        format!(
            "Google did not revoke the grant (HTTP {status}, {})",
            oauth_error_text(&response)
        ),
    )
    .with_connector(CONNECTOR_ID)
    .with_provider_status(status)
    .with_hint("remove Patchbay's access at https://myaccount.google.com/permissions"))
}

/// Words Google's OAuth errors where the engine's generic wording would hide the fix:
/// `redirect_uri_mismatch` becomes the guide's "Redirect URI mismatch" naming the URI
/// to register. Other codes keep the engine's wording.
pub fn explain_oauth_error(
    error: &str,
    description: Option<&str>,
    redirect_uri: Option<&str>,
) -> Option<Error> {
    if error != "redirect_uri_mismatch" {
        return None;
    }
    let message = match description.map(str::trim).filter(|text| !text.is_empty()) {
        Some(description) => format!("{} ({description})", messages::REDIRECT_URI_MISMATCH),
        None => messages::REDIRECT_URI_MISMATCH.to_owned(),
    };
    let hint = match redirect_uri {
        Some(uri) => format!(
            "Ensure the redirect URI in GCP Console exactly matches {uri}, and that every \
             replica uses the same PATCHBAY_PUBLIC_URL"
        ),
        None => "Ensure the redirect URI in GCP Console exactly matches Patchbay's".to_owned(),
    };
    Some(
        Error::new(ErrorKind::InvalidConfig, message)
            .with_connector(CONNECTOR_ID)
            .with_hint(hint),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn google_error_details_name_the_reason_service_and_permission() {
        let body = json!({"error": {"code": 403, "message": "Compute Engine API has not been used in project 42 before or it is disabled.", "status": "PERMISSION_DENIED", "details": [
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED", "domain": "googleapis.com",
             "metadata": {"service": "compute.googleapis.com", "consumer": "projects/42", "serviceTitle": "Compute Engine API"}}]}});
        let parsed = GoogleError::parse(body.to_string().as_bytes());
        assert_eq!(parsed.reason.as_deref(), Some("SERVICE_DISABLED"));
        assert_eq!(parsed.service.as_deref(), Some("compute.googleapis.com"));
        let denied = json!({"error": {"code": 403, "message": "Permission 'logging.logEntries.list' denied on resource (or it may not exist).", "status": "PERMISSION_DENIED"}});
        assert_eq!(
            GoogleError::parse(denied.to_string().as_bytes())
                .permission
                .as_deref(),
            Some("logging.logEntries.list")
        );
    }
}
